/*
 * check_client_win.c: liblockbroker on Windows, run under wine, through
 * its public API only (<lockbroker.h>).
 *
 * In-process (LB_LOCAL), for each of the link, mkdir and sqlite methods
 * (sqlite's row is lockfile's, its paths spelled with '\\'): acquire,
 * release, is_locked, i_am_locking, break_lock, the holder (pid, host,
 * liveness, and the user unknown: Windows has no numeric users),
 * timeouts; two threads of this process are two owners that exclude
 * each other (also for several locks at once, lb_acquire_all); another
 * process holding the lock excludes this one until
 * it is ended (TerminateProcess), when its holder reads as dead and the
 * lock is broken as stale.  The symlink method fails with LB_EFAILED
 * and a reason that names the privilege symbolic links need and the
 * methods to use instead.
 *
 * With no daemon: LB_BROKER fails, naming the pipe LOCKBROKER_SOCKET
 * gives and saying that no daemon answers there; AUTO falls back to
 * in-process and locks.
 *
 * The same source is built twice (Makefile.am): check_client_win, linked
 * with the static library, and check_client_win_dll, linked with the
 * DLL's import library, which also checks that the DLL loaded exports
 * exactly the names of client/liblockbroker.sym (LB_SYMFILE).
 *
 * The other process is a copy of this program, started with "--hold
 * METHOD PATH READY": it takes the lock on PATH through the API, makes the
 * file READY and waits to be ended.
 *
 * Lock paths are given rooted on the current drive ("/dir/..."), as in
 * check_lockfs_win (lockfs's paths know no drive letters yet), and the
 * test's directory is made in the working directory unless TMPDIR says
 * where.
 */
#include <windows.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sqlite3.h>

#include "lockbroker.h"
#include "testlib.h"

static const unsigned methods[] = { LB_LINK, LB_MKDIR, LB_SQLITE };


/* A handle on path with flags; asserts. */
static lb_lock *
new_lock(const char *path, unsigned flags)
{
	lb_lock *l = lb_lock_new(path, flags);

	ck_assert_msg(l != NULL, "lb_lock_new %s: %s", path, strerror(errno));
	return l;
}

/* Whether l's artefact (method m's) is on disk: its lock file (the
 * library's absolute path); for the sqlite method a row naming it as
 * Python's lockfile does on Windows (os.path.abspath's spelling, '\\') in
 * the database DIR/.lockbroker.sqlite, and no lock file. */
static int
artefact_exists(lb_lock *l, unsigned m)
{
	sqlite3_stmt *st = NULL;
	sqlite3      *db = NULL;
	const char   *lf = lb_lock_file(l), *slash = strrchr(lf, '/');
	char          file[PATH_MAX], native[PATH_MAX];
	int           n = 0;

	if (m != LB_SQLITE)
		return GetFileAttributesA(lf) != INVALID_FILE_ATTRIBUTES;
	ck_assert(GetFileAttributesA(lf) == INVALID_FILE_ATTRIBUTES);
	ck_assert(slash != NULL);
	snprintf(file, sizeof(file), "%.*s/.lockbroker.sqlite",
	    (int)(slash - lf), lf);
	if (GetFileAttributesA(file) == INVALID_FILE_ATTRIBUTES)
		return 0;
	ck_assert(GetFullPathNameA(lf, sizeof(native), native, NULL) > 0);
	ck_assert_int_eq(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM locks WHERE "
	    "lock_file = ?", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, native, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n > 0;
}

/* What a released lock of method m's leaves in its directory: nothing,
 * or the sqlite method's database (kept, as lockfile's). */
static int
left(unsigned m)
{
	return m == LB_SQLITE;
}

/* The number of entries of dir, but . and .. */
static int
entries(const char *dir)
{
	WIN32_FIND_DATAA f;
	HANDLE           h;
	char             pattern[PATH_MAX];
	int              n = 0;

	snprintf(pattern, sizeof(pattern), "%s\\*", dir);
	h = FindFirstFileA(pattern, &f);
	if (h == INVALID_HANDLE_VALUE)
		return 0;
	do
		if (strcmp(f.cFileName, ".") != 0 &&
		    strcmp(f.cFileName, "..") != 0)
			n++;
	while (FindNextFileA(h, &f));
	FindClose(h);
	return n;
}

/* ------------------------------------------------------------------ */
/* In-process.                                                          */

/* A whole cycle: acquire (again: 0 at once), is_locked, i_am_locking,
 * the holder (this process, this host, alive, no user), release, and
 * then nothing held and nothing left in the directory. */
START_TEST(local_cycle)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	const char     *base;
	char            path[PATH_MAX];
	size_t          n;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_int_eq(lb_get_holder(l, &h), 0);
	ck_assert_msg(lb_acquire(l, 0) == 0, "%s", lb_lock_error(l));
	ck_assert(artefact_exists(l, methods[_i]));
	ck_assert_int_eq(lb_acquire(l, 0), 0);
	ck_assert_int_eq(lb_is_locked(l), 1);
	ck_assert_int_eq(lb_i_am_locking(l), 1);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(h.liveness, LB_HOLDER_ALIVE);
	ck_assert_int_eq(h.broker, 0);
	ck_assert_msg(h.uid == (lb_uid_t)-1, "uid %u: Windows has no numeric "
	    "users", (unsigned)h.uid);
	n = strlen(h.host);
	ck_assert_uint_gt(n, 0);
	base = strrchr(lb_unique_name(l), '/');
	base = base != NULL ? base + 1 : lb_unique_name(l);
	ck_assert_msg(strncmp(base, h.host, n) == 0, "host %s, unique name "
	    "%s", h.host, lb_unique_name(l));
	/* sqlite: the name as its row has it, os.path.abspath's spelling
	 * (GetFullPathName's, '\\'); the others: the file's name. */
	if (methods[_i] == LB_SQLITE)
		ck_assert(GetFullPathNameA(lb_unique_name(l), sizeof(path),
		    path, NULL) > 0);
	else
		snprintf(path, sizeof(path), "%s", lb_unique_name(l));
	ck_assert_str_eq(h.unique_name, path);
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert(!artefact_exists(l, methods[_i]));
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_release(l), LB_ENOTLOCKED);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* Another thread's handle, and what it sees and may do. */
struct other {
	const char *path;
	unsigned    flags;
	double      timeout;
	int         acquired, try_once, mine, release, waited_r;
	double      waited;
};

/* A thread that makes its own handle (its owner: that thread), tries
 * once, says whether it holds the lock, tries to release it, and then
 * waits for it up to o->timeout. */
static void *
other_thread(void *arg)
{
	struct other *o = arg;
	lb_lock      *l = lb_lock_new(o->path, o->flags);
	double        t;

	if (l == NULL)
		return NULL;
	o->try_once = lb_acquire(l, 0);
	o->mine = lb_i_am_locking(l);
	o->release = lb_release(l);
	t = tl_now();
	o->waited_r = lb_acquire(l, o->timeout);
	o->waited = tl_now() - t;
	o->acquired = lb_i_am_locking(l);
	if (o->waited_r == 0)
		lb_release(l);
	lb_lock_free(l);
	return NULL;
}

/* Another thread, with a handle of its own on path with flags, is kept
 * out while this thread holds the lock: LB_EALREADY at once, not its
 * lock, LB_ENOTMINE from release and LB_ETIMEOUT once its timeout (0.3
 * s) has passed, not before. */
static void
other_kept_out(const char *path, unsigned flags)
{
	struct other o = { 0 };
	pthread_t    t;

	o.path = path;
	o.flags = flags;
	o.timeout = 0.3;
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(o.try_once, LB_EALREADY);
	ck_assert_int_eq(o.mine, 0);
	ck_assert_int_eq(o.release, LB_ENOTMINE);
	ck_assert_int_eq(o.waited_r, LB_ETIMEOUT);
	/* (Not before the timeout: 1 ms for the two clocks' rounding.) */
	ck_assert_msg(o.waited >= 0.299, "gave up after %.3f s", o.waited);
	ck_assert_int_eq(o.acquired, 0);
}

/* Two threads of one process are two owners: while this thread holds
 * the lock the other gets LB_EALREADY at once, LB_ENOTMINE from release
 * and LB_ETIMEOUT once its timeout has passed (not before); the lock
 * still this thread's.  Released, the other takes it. */
START_TEST(local_threads_exclude)
{
	struct tl_place p;
	struct other    o = { 0 };
	pthread_t       t;
	lb_lock        *l;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	ck_assert_msg(lb_acquire(l, 0) == 0, "%s", lb_lock_error(l));
	other_kept_out(path, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_i_am_locking(l), 1);
	ck_assert_int_eq(lb_release(l), 0);

	memset(&o, 0, sizeof(o));
	o.path = path;
	o.flags = methods[_i] | LB_LOCAL;
	o.timeout = 5;
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(o.try_once, 0);
	ck_assert_int_eq(o.mine, 1);
	ck_assert_int_eq(o.release, 0);
	ck_assert_int_eq(o.waited_r, 0);
	ck_assert_int_eq(o.acquired, 1);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* A waiter in another thread is granted the lock once this one releases
 * it before the waiter's timeout. */
START_TEST(local_waiter_granted)
{
	struct tl_place p;
	struct other    o = { 0 };
	pthread_t       t;
	lb_lock        *l;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(l, 0), 0);
	o.path = path;
	o.flags = methods[_i] | LB_LOCAL;
	o.timeout = 30;
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
	tl_sleep(0.3);
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(o.try_once, LB_EALREADY);
	ck_assert_int_eq(o.waited_r, 0);
	ck_assert_int_eq(o.acquired, 1);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* lb_break_lock by another handle (another owner) removes the lock:
 * nobody holds it, its holder no longer does, and it can be taken. */
START_TEST(local_break)
{
	struct tl_place p;
	lb_lock        *l, *b;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	b = new_lock(path, methods[_i] | LB_LOCAL | LB_UNTHREADED);
	ck_assert_int_eq(lb_acquire(l, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(b), 0);
	ck_assert_msg(lb_break_lock(b) == 0, "%s", lb_lock_error(b));
	ck_assert_int_eq(lb_is_locked(b), 0);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_break_lock(b), 0);
	ck_assert_int_eq(lb_acquire(b, 0), 0);
	ck_assert_int_eq(lb_release(b), 0);
	lb_lock_free(b);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* Starts a copy of this program that holds the lock on path (method m)
 * and waits to be ended; returns its pid once it holds the lock. */
static pid_t
holder_start(unsigned m, const char *path, char *ready, size_t size)
{
	char   args[3 * PATH_MAX];
	double until;
	pid_t  pid;

	snprintf(ready, size, "%s\\ready", tl_top);
	DeleteFileA(ready);
	snprintf(args, sizeof(args), "--hold %u \"%s\" \"%s\"", m, path,
	    ready);
	pid = tl_self_start(args);
	for (until = tl_now() + 20; !tl_exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(tl_exists(ready), "the child did not lock %s", path);
	return pid;
}

/* Another process holding the lock excludes this one (at once, and
 * until a timeout); its holder is that process, alive, and not broken as
 * stale; once it is ended (TerminateProcess) its holder is dead, and
 * LB_BREAK_STALE breaks its lock and takes it. */
START_TEST(local_other_process)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l, *s;
	char            path[PATH_MAX], ready[PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pid = holder_start(methods[_i], path, ready, sizeof(ready));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	s = new_lock(path, methods[_i] | LB_LOCAL | LB_BREAK_STALE);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_acquire(l, 0.2), LB_ETIMEOUT);
	ck_assert_int_eq(lb_acquire(s, 0), LB_EALREADY);
	ck_assert_int_eq(lb_is_locked(l), 1);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_release(l), LB_ENOTMINE);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.liveness, LB_HOLDER_ALIVE);
	ck_assert_uint_gt(strlen(h.host), 0);
	tl_kill(pid);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.liveness, LB_HOLDER_DEAD);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_msg(lb_acquire(s, 0) == 0, "%s", lb_lock_error(s));
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(s), 0);
	lb_lock_free(s);
	lb_lock_free(l);
	DeleteFileA(ready);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* The symlink method: LB_EFAILED at every call, with a reason that says
 * why (the privilege symbolic links need on Windows) and what to use
 * instead; nothing made. */
START_TEST(local_symlink_refused)
{
	static const char *const says[] = { "symlink method", "Windows",
	    "privilege", "link or mkdir method" };
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX];
	size_t          i;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, LB_SYMLINK | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EFAILED);
	for (i = 0; i < sizeof(says) / sizeof(says[0]); i++)
		ck_assert_msg(strstr(lb_lock_error(l), says[i]) != NULL,
		    "\"%s\" does not say %s", lb_lock_error(l), says[i]);
	ck_assert_int_eq(lb_acquire(l, 1), LB_EFAILED);
	ck_assert_int_lt(lb_is_locked(l), 0);
	ck_assert_int_lt(lb_i_am_locking(l), 0);
	ck_assert_int_lt(lb_release(l), 0);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), 0);
	tl_place_remove(p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* No daemon.                                                           */

/* Points LOCKBROKER_SOCKET at a pipe nobody serves, into pipe. */
static void
no_daemon(char *pipe, size_t size)
{
	snprintf(pipe, size, "\\\\.\\pipe\\lockbroker-check-%lu",
	    (unsigned long)GetCurrentProcessId());
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", pipe), 0);
}

/* LB_BROKER with no daemon: acquire fails (LB_EFAILED) at once, naming the
 * pipe and saying that no daemon answers; the queries fail (LB_ERROR,
 * release LB_EUNLOCK); nothing is made. */
START_TEST(broker_no_daemon)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX], pipe[128];
	const char     *e;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	no_daemon(pipe, sizeof(pipe));
	l = new_lock(path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(l, 1), LB_EFAILED);
	e = lb_lock_error(l);
	ck_assert_msg(strstr(e, pipe) != NULL, "no pipe in: %s", e);
	ck_assert_msg(strstr(e, "daemon answers") != NULL, "%s", e);
	ck_assert_int_eq(lb_is_locked(l), LB_ERROR);
	ck_assert_msg(strstr(lb_lock_error(l), pipe) != NULL, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), LB_EUNLOCK);
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), 0);
	_putenv_s("LOCKBROKER_SOCKET", "");
	tl_place_remove(p.dir);
}
END_TEST

/* AUTO with no daemon: in-process, for each method: the lock is taken
 * (its artefact made), held, released. */
START_TEST(auto_no_daemon_local)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX], pipe[128];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	no_daemon(pipe, sizeof(pipe));
	l = new_lock(path, methods[_i]);
	ck_assert_msg(lb_acquire(l, 1) == 0, "%s", lb_lock_error(l));
	ck_assert(artefact_exists(l, methods[_i]));
	ck_assert_int_eq(lb_i_am_locking(l), 1);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.broker, 0);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert(!artefact_exists(l, methods[_i]));
	lb_lock_free(l);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	_putenv_s("LOCKBROKER_SOCKET", "");
	tl_place_remove(p.dir);
}
END_TEST

#ifdef LB_SYMFILE
/* ------------------------------------------------------------------ */
/* The DLL.                                                             */

/* Whether name is among the n names of list. */
static int
listed(char (*list)[64], int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

/* The import address table's entry of lb_acquire (the program's own
 * lb_acquire is the import library's stub that jumps through it). */
extern void *__imp_lb_acquire;

/* The DLL this program runs with (the one lb_acquire is in) exports
 * exactly the names of the version script, LB_SYMFILE. */
START_TEST(dll_exports)
{
	static char              want[64][64];
	PIMAGE_EXPORT_DIRECTORY  ex;
	PIMAGE_NT_HEADERS        nt;
	HMODULE                  m = NULL;
	FILE                    *f;
	DWORD                   *names, i;
	char                     line[256], name[64];
	int                      n = 0;
	unsigned char           *base;

	f = fopen(LB_SYMFILE, "r");
	ck_assert_msg(f != NULL, "%s: %s", LB_SYMFILE, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %63[a-z_0-9];", name) == 1 &&
		    strncmp(name, "lb_", 3) == 0 && n < 64)
			snprintf(want[n++], sizeof(want[0]), "%s", name);
	fclose(f);
	ck_assert_int_gt(n, 0);
	ck_assert(GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
	    GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
	    (LPCSTR)__imp_lb_acquire, &m));
	ck_assert_msg(m != GetModuleHandleA(NULL),
	    "lb_acquire is in the program, not in a DLL");
	base = (unsigned char *)m;
	nt = (PIMAGE_NT_HEADERS)(base + ((PIMAGE_DOS_HEADER)base)->e_lfanew);
	ex = (PIMAGE_EXPORT_DIRECTORY)(base + nt->OptionalHeader.DataDirectory
	    [IMAGE_DIRECTORY_ENTRY_EXPORT].VirtualAddress);
	names = (DWORD *)(base + ex->AddressOfNames);
	for (i = 0; i < ex->NumberOfNames; i++)
		ck_assert_msg(listed(want, n, (char *)base + names[i]),
		    "the DLL exports %s, not in %s", (char *)base + names[i],
		    LB_SYMFILE);
	ck_assert_msg(ex->NumberOfNames == (DWORD)n, "the DLL exports %lu "
	    "names, %s lists %d", (unsigned long)ex->NumberOfNames,
	    LB_SYMFILE, n);
	for (i = 0; i < (DWORD)n; i++)
		ck_assert_msg(GetProcAddress(m, want[i]) != NULL,
		    "%s not exported", want[i]);
}
END_TEST
#endif

/* The child of local_other_process: takes the lock on path with method
 * through the API, makes the file ready, and waits to be ended.  Never
 * returns but by failing (1). */
static int
hold(const char *method, const char *path, const char *ready)
{
	lb_lock *l;
	HANDLE   h;

	l = lb_lock_new(path, (unsigned)atoi(method) | LB_LOCAL);
	if (l == NULL || lb_acquire(l, 0) != 0) {
		fprintf(stderr, "cannot lock %s: %s\n", path,
		    l != NULL ? lb_lock_error(l) : strerror(errno));
		return 1;
	}
	h = CreateFileA(ready, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 1;
	CloseHandle(h);
	for (;;)
		Sleep(INFINITE);
}

/* A handle forgotten (lb_lock_forget) leaves its hold to its owner:
 * another handle of this thread sees the lock as its own and releases
 * it; another thread is kept out meanwhile. */
START_TEST(local_forget)
{
	char            path[PATH_MAX];
	struct tl_place p;
	lb_lock        *l, *q;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = new_lock(path, methods[_i] | LB_LOCAL);
	ck_assert_msg(lb_acquire(l, 0) == 0, "%s", lb_lock_error(l));
	lb_lock_forget(l);
	q = new_lock(path, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_is_locked(q), 1);
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	other_kept_out(path, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_release(q), 0);
	ck_assert_int_eq(lb_is_locked(q), 0);
	lb_lock_free(q);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* What set_thread does: lb_acquire_all of the locks on a and b, with
 * handles of its own (its owner: that thread), within timeout; then
 * whether a is held by anyone; then gives back what it took. */
struct set_try {
	const char *a, *b;
	unsigned    flags;
	double      timeout;
	int         r, a_locked;
	size_t      failed;
};

static void *
set_thread(void *arg)
{
	struct set_try *t = arg;
	lb_lock        *set[2];

	set[0] = lb_lock_new(t->a, t->flags);
	set[1] = lb_lock_new(t->b, t->flags);
	t->failed = 77;
	t->r = set[0] != NULL && set[1] != NULL ?
	    lb_acquire_all(set, 2, t->timeout, &t->failed) : LB_ENOMEM;
	t->a_locked = set[0] != NULL ? lb_is_locked(set[0]) : -1;
	if (t->r == 0) {
		lb_release(set[0]);
		lb_release(set[1]);
	}
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
	return NULL;
}

/* Several locks at once (lb_acquire_all), in-process: while this thread
 * holds b, another's set {a, b} times out holding neither, naming b;
 * once b is free it gets both.  One file named twice (the name in
 * another case: one file on Windows) is refused. */
START_TEST(local_set)
{
	struct tl_place p;
	struct set_try  t;
	pthread_t       th;
	lb_lock        *hb, *twice[2];
	char            a[PATH_MAX], b[PATH_MAX + 8], up[PATH_MAX];
	size_t          len, failed = 77;

	tl_place_make(&p, "x");
	tl_lock_path(&p, a, sizeof(a));
	snprintf(b, sizeof(b), "%s2", a);
	hb = new_lock(b, methods[_i] | LB_LOCAL);
	ck_assert_msg(lb_acquire(hb, 0) == 0, "%s", lb_lock_error(hb));
	memset(&t, 0, sizeof(t));
	t.a = a;
	t.b = b;
	t.flags = methods[_i] | LB_LOCAL;
	t.timeout = 0.3;
	ck_assert_int_eq(pthread_create(&th, NULL, set_thread, &t), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.r, LB_ETIMEOUT);
	ck_assert_uint_eq(t.failed, 1);
	ck_assert_int_eq(t.a_locked, 0);
	ck_assert_int_eq(lb_release(hb), 0);
	t.timeout = 5;
	ck_assert_int_eq(pthread_create(&th, NULL, set_thread, &t), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.r, 0);
	ck_assert_int_eq(t.a_locked, 1);
	lb_lock_free(hb);

	memcpy(up, a, sizeof(up));
	len = strlen(up);
	ck_assert(len > 0 && up[len - 1] == 'x');
	up[len - 1] = 'X';
	twice[0] = new_lock(a, methods[_i] | LB_LOCAL);
	twice[1] = new_lock(up, methods[_i] | LB_LOCAL);
	ck_assert_int_eq(lb_acquire_all(twice, 2, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 1);
	ck_assert_msg(strstr(lb_lock_error(twice[1]), "named twice") != NULL,
	    "%s", lb_lock_error(twice[1]));
	ck_assert_int_eq(lb_is_locked(twice[0]), 0);
	lb_lock_free(twice[0]);
	lb_lock_free(twice[1]);
	ck_assert_int_eq(entries(p.dir), left(methods[_i]));
	tl_place_remove(p.dir);
}
END_TEST

/* The suite. */
static Suite *
client_win_suite(void)
{
	Suite *s = suite_create("client_win");
	TCase *local = tcase_create("local");
	TCase *none = tcase_create("no_daemon");
	int    n = sizeof(methods) / sizeof(methods[0]);

	tcase_set_timeout(local, 120);
	tcase_add_loop_test(local, local_cycle, 0, n);
	tcase_add_loop_test(local, local_threads_exclude, 0, n);
	tcase_add_loop_test(local, local_waiter_granted, 0, n);
	tcase_add_loop_test(local, local_break, 0, n);
	tcase_add_loop_test(local, local_other_process, 0, n);
	tcase_add_test(local, local_symlink_refused);
	tcase_add_loop_test(local, local_forget, 0, n);
	tcase_add_loop_test(local, local_set, 0, n);
	suite_add_tcase(s, local);
	tcase_add_test(none, broker_no_daemon);
	tcase_add_loop_test(none, auto_no_daemon_local, 0, n);
	suite_add_tcase(s, none);
#ifdef LB_SYMFILE
	{
		TCase *dll = tcase_create("dll");

		tcase_add_test(dll, dll_exports);
		suite_add_tcase(s, dll);
	}
#endif
	return s;
}

/* main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say. */
int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--hold") == 0)
		return hold(argv[2], argv[3], argv[4]);
	if (tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_client_win", client_win_suite(), CK_ENV);
}
