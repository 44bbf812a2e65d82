/*
 * check_daemon_win.c: lockbrokerd.exe on Windows, run under wine, with
 * liblockbroker's broker mode (LB_BROKER) as its client.
 *
 * The suite starts one daemon (daemon/lockbrokerd.exe, or $LOCKBROKERD)
 * on a private pipe (\\.\pipe\lbtest-PID-N) and a state database in a
 * directory of its own, waits until the pipe takes a connection, and
 * ends it with TerminateProcess after the last test (the daemon runs in
 * a job that ends it with this program, should that fail first).
 *
 * The tests: the pipe's DACL (authenticated users read and write it,
 * nobody but its owner, the system and administrators makes
 * instances); users (a client's SID numbered in the state database,
 * the same number after a restart, steps acting as that SID, nothing
 * done for a previous run's hold without a token of its user, a lock
 * kept for a process of the client's user), with daemons of their own
 * beside the suite's; acquire and release; another process waiting for the lock
 * gets it at the release; a holder ended by TerminateProcess frees its
 * lock for a waiter, and the holder the daemon names is that process
 * (the pipe's client process); a second daemon on the same state is
 * refused, naming the state, and so is one on the same pipe, naming
 * the pipe, while the first goes on serving.
 *
 * The other processes are copies of this program: "--hold PATH READY"
 * takes the lock, makes READY and waits to be ended; "--wait PATH BUSY
 * GOT" finds the lock taken (makes BUSY), waits for it, makes GOT and
 * waits to be ended.  Lock paths are given rooted on the current drive
 * ("/dir/..."), as in check_client_win.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sqlite3.h>

#include "lockbroker.h"
#include "testlib.h"

/* A daemon of a test. */
struct daemon {
	char   pipe[128];
	char   state[PATH_MAX];
	char   log[PATH_MAX];
	HANDLE proc;
};

/* The daemon of the suite (the library keeps its connection to the
 * pipe it first found, LOCKBROKER_SOCKET's: one daemon serves every
 * test). */
static struct daemon the;

/* The job the daemons run in: ended with this program. */
static HANDLE
daemons_job(void)
{
	static HANDLE                        job;
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;

	if (job != NULL)
		return job;
	ck_assert((job = CreateJobObjectA(NULL, NULL)) != NULL);
	memset(&li, 0, sizeof(li));
	li.BasicLimitInformation.LimitFlags =
	    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	ck_assert(SetInformationJobObject(job,
	    JobObjectExtendedLimitInformation, &li, sizeof(li)));
	return job;
}

/* The program of the daemon, its full path (main: the tests change
 * the working directory). */
static char daemon_exe[MAX_PATH];

static const char *
daemon_program(void)
{
	return daemon_exe;
}

/* Starts lockbrokerd on pipe and state, its output into log; the handle
 * of its process. */
static HANDLE
daemon_spawn(const char *pipe, const char *state, const char *log)
{
	SECURITY_ATTRIBUTES sa;
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	HANDLE              out;
	char                line[3 * PATH_MAX];

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	sa.bInheritHandle = TRUE;
	out = CreateFileA(log, FILE_APPEND_DATA, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, OPEN_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	ck_assert_msg(out != INVALID_HANDLE_VALUE, "%s: error %lu", log,
	    (unsigned long)GetLastError());
	ck_assert((size_t)snprintf(line, sizeof(line), "\"%s\" --socket %s "
	    "--state \"%s\" --debug", daemon_program(), pipe, state) <
	    sizeof(line));
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = INVALID_HANDLE_VALUE;
	si.hStdOutput = out;
	si.hStdError = out;
	ck_assert_msg(CreateProcessA(NULL, line, NULL, NULL, TRUE,
	    CREATE_SUSPENDED, NULL, NULL, &si, &pi), "CreateProcess %s: "
	    "error %lu", line, (unsigned long)GetLastError());
	CloseHandle(out);
	if (!AssignProcessToJobObject(daemons_job(), pi.hProcess)) {
		TerminateProcess(pi.hProcess, 1);
		ck_abort_msg("AssignProcessToJobObject: error %lu",
		    (unsigned long)GetLastError());
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

/* Starts a daemon on a new pipe and state database state (its log
 * beside it), and points the library at its pipe (LOCKBROKER_SOCKET);
 * once the pipe takes a connection. */
static void
daemon_start_on(struct daemon *d, const char *state)
{
	static unsigned n;
	double          until;
	char           *c;

	snprintf(d->state, sizeof(d->state), "%s", state);
	for (c = d->state; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(d->log, sizeof(d->log), "%s.%u.log", state, n);
	snprintf(d->pipe, sizeof(d->pipe), "\\\\.\\pipe\\lbtest-%lu-%u",
	    (unsigned long)GetCurrentProcessId(), n++);
	d->proc = daemon_spawn(d->pipe, d->state, d->log);
	for (until = tl_now() + 60; tl_now() < until;) {
		if (WaitNamedPipeA(d->pipe, 100))
			break;
		ck_assert_msg(WaitForSingleObject(d->proc, 0) == WAIT_TIMEOUT,
		    "lockbrokerd ended before it listened (see %s)", d->log);
		tl_sleep(0.05);
	}
	ck_assert_msg(WaitNamedPipeA(d->pipe, 100), "%s does not answer",
	    d->pipe);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
}

/* Starts a daemon on a new pipe and a state database in a directory of
 * its own (daemon_start_on). */
static void
daemon_start(struct daemon *d)
{
	struct tl_place p;

	tl_place_make(&p, "state.sqlite");
	daemon_start_on(d, p.path);
}

/* Ends the daemon (TerminateProcess: see the top of this file). */
static void
daemon_end(struct daemon *d)
{
	TerminateProcess(d->proc, 137);
	WaitForSingleObject(d->proc, 10000);
	CloseHandle(d->proc);
	_putenv_s("LOCKBROKER_SOCKET", "");
}

/* Before the tests: the suite's daemon started. */
static void
setup(void)
{
	daemon_start(&the);
}

/* After the tests: the suite's daemon ended. */
static void
teardown(void)
{
	daemon_end(&the);
}


/* A handle on path through the daemon (the link method); asserts. */
static lb_lock *
broker_lock(const char *path)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	ck_assert_msg(l != NULL, "lb_lock_new %s: %s", path, strerror(errno));
	return l;
}

/* Waits (up to a minute) until file exists; whether it does. */
static int
appears(const char *file)
{
	double until;

	for (until = tl_now() + 60; !tl_exists(file) && tl_now() < until;)
		tl_sleep(0.02);
	return tl_exists(file);
}

/* Waits (up to a minute) until file is gone; whether it is. */
static int
vanishes(const char *file)
{
	double until;

	for (until = tl_now() + 60; tl_exists(file) && tl_now() < until;)
		tl_sleep(0.02);
	return !tl_exists(file);
}

/* A file named name in the test's directory (removed first). */
static void
marker(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s\\%s", dir, name);
	DeleteFileA(out);
}

/* Acquire and release through the daemon; the lock's state as the
 * daemon tells it. */
START_TEST(broker_cycle)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 1);
	ck_assert_int_eq(lb_i_am_locking(l), 1);
	ck_assert_int_eq(lb_acquire(l, 0), 0);  /* already its own */
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	lb_lock_free(l);
}
END_TEST

/* Another process finds the lock taken, waits for it, and gets it at
 * the release (not before). */
START_TEST(broker_waiter_granted)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX], busy[PATH_MAX], got[PATH_MAX];
	char            args[4 * PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	marker(busy, sizeof(busy), p.dir, "busy");
	marker(got, sizeof(got), p.dir, "got");
	l = broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	pid = tl_self_start(args);
	ck_assert_msg(appears(busy), "the waiter did not find the lock taken");
	tl_sleep(0.5);
	ck_assert_msg(!tl_exists(got), "the waiter got a lock held");
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	ck_assert_msg(appears(got), "the waiter did not get the lock");
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	tl_kill(pid);
	ck_assert_msg(lb_acquire(l, 30) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A holder ended by TerminateProcess: the daemon named it as the holder
 * (its pid, the pipe's client process), and its lock goes to the
 * process that waits for it, then, once that one is ended too, to this
 * one. */
START_TEST(broker_holder_killed)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX], ready[PATH_MAX], busy[PATH_MAX];
	char            got[PATH_MAX], args[4 * PATH_MAX];
	pid_t           pid, waiter;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	marker(ready, sizeof(ready), p.dir, "ready");
	marker(busy, sizeof(busy), p.dir, "busy");
	marker(got, sizeof(got), p.dir, "got");
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	pid = tl_self_start(args);
	ck_assert_msg(appears(ready), "the holder did not lock %s", path);
	l = broker_lock(path);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.liveness, LB_HOLDER_ALIVE);
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	waiter = tl_self_start(args);
	ck_assert_msg(appears(busy), "the waiter did not find the lock taken");
	ck_assert(!tl_exists(got));
	tl_kill(pid);
	ck_assert_msg(appears(got), "the waiter did not get the lock of the "
	    "ended holder");
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, waiter);
	tl_kill(waiter);
	ck_assert_msg(lb_acquire(l, 60) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A second daemon on the same state (another pipe) is refused, saying
 * so; the first goes on serving. */
START_TEST(second_daemon_refused)
{
	struct tl_place p;
	HANDLE          second;
	DWORD           code = 0;
	lb_lock        *l;
	char            path[PATH_MAX], log[PATH_MAX], text[8192];
	char            pipe[160];

	snprintf(log, sizeof(log), "%s.second.log", the.log);
	snprintf(pipe, sizeof(pipe), "%s-second", the.pipe);
	second = daemon_spawn(pipe, the.state, log);
	if (WaitForSingleObject(second, 60000) != WAIT_OBJECT_0) {
		TerminateProcess(second, 137);
		ck_abort_msg("a second daemon on %s runs", the.state);
	}
	ck_assert(GetExitCodeProcess(second, &code));
	CloseHandle(second);
	ck_assert_int_ne(code, 0);
	ck_assert(tl_read_text(log, text, sizeof(text)) > 0);
	ck_assert_msg(strstr(text, "another daemon runs on state") != NULL &&
	    strstr(text, the.state) != NULL, "%s", text);
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A second daemon on the same pipe (another state) is refused, saying
 * so, and makes no state; the first goes on serving. */
START_TEST(second_daemon_same_pipe_refused)
{
	struct tl_place p, q;
	HANDLE          second;
	DWORD           code = 0;
	lb_lock        *l;
	char            path[PATH_MAX], log[PATH_MAX], text[8192], *c;

	tl_place_make(&q, "state.sqlite");
	for (c = q.path; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(log, sizeof(log), "%s\\second.log", q.dir);
	second = daemon_spawn(the.pipe, q.path, log);
	if (WaitForSingleObject(second, 60000) != WAIT_OBJECT_0) {
		TerminateProcess(second, 137);
		ck_abort_msg("a second daemon on %s runs", the.pipe);
	}
	ck_assert(GetExitCodeProcess(second, &code));
	CloseHandle(second);
	ck_assert_int_ne(code, 0);
	ck_assert(tl_read_text(log, text, sizeof(text)) > 0);
	/* The log doubles each backslash: the pipe's own name (after the last
	 * one) is looked for. */
	ck_assert_msg(strstr(text, "another daemon listens on") != NULL &&
	    strstr(text, strrchr(the.pipe, '\\') + 1) != NULL, "%s", text);
	ck_assert(!tl_exists(q.path));
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* The pipe's DACL: authenticated users may read and write data
 * (FILE_READ_DATA, FILE_WRITE_DATA), and nothing more: never make
 * instances of it (FILE_CREATE_PIPE_INSTANCE, FILE_APPEND_DATA's bit),
 * change its attributes or its descriptor, nor by a generic right;
 * everyone (anonymous included) has no right. */
START_TEST(pipe_dacl)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL, au = NULL, world = NULL;
	PACL                 dacl = NULL;
	ACL_SIZE_INFORMATION si;
	ACCESS_ALLOWED_ACE  *ace;
	DWORD                i, sidlen, au_mask = 0, extra;
	HANDLE               h;
	BYTE                 au_buf[SECURITY_MAX_SID_SIZE];
	BYTE                 world_buf[SECURITY_MAX_SID_SIZE];

	h = CreateFileA(the.pipe, READ_CONTROL, 0, NULL, OPEN_EXISTING,
	    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
	ck_assert_msg(h != INVALID_HANDLE_VALUE, "%s: error %lu", the.pipe,
	    (unsigned long)GetLastError());
	ck_assert_int_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	    NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
	ck_assert_ptr_nonnull(dacl);
	sidlen = sizeof(au_buf);
	au = au_buf;
	ck_assert(CreateWellKnownSid(WinAuthenticatedUserSid, NULL, au,
	    &sidlen));
	sidlen = sizeof(world_buf);
	world = world_buf;
	ck_assert(CreateWellKnownSid(WinWorldSid, NULL, world, &sidlen));
	ck_assert(GetAclInformation(dacl, &si, sizeof(si),
	    AclSizeInformation));
	for (i = 0; i < si.AceCount; i++) {
		ck_assert(GetAce(dacl, i, (void **)&ace));
		if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
			continue;
		ck_assert_msg(!EqualSid((PSID)&ace->SidStart, world) ||
		    ace->Mask == 0, "everyone: 0x%lx",
		    (unsigned long)ace->Mask);
		if (EqualSid((PSID)&ace->SidStart, au))
			au_mask |= ace->Mask;
	}
	ck_assert_msg((au_mask & (FILE_READ_DATA | FILE_WRITE_DATA)) ==
	    (FILE_READ_DATA | FILE_WRITE_DATA), "authenticated users: 0x%lx",
	    (unsigned long)au_mask);
	extra = au_mask & ~(DWORD)(FILE_GENERIC_READ | FILE_WRITE_DATA);
	ck_assert_msg(extra == 0, "authenticated users may also 0x%lx",
	    (unsigned long)extra);
	ck_assert(!(au_mask & FILE_CREATE_PIPE_INSTANCE));
	LocalFree(sd);
	CloseHandle(h);
}
END_TEST

/* The SID of this process's user, as a string, into out. */
static void
own_sid(char *out, size_t size)
{
	HANDLE t;
	BYTE   buf[512];
	DWORD  n;
	char  *s;

	ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t));
	ck_assert(GetTokenInformation(t, TokenUser, buf, sizeof(buf), &n));
	ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)buf)->User.Sid, &s));
	ck_assert((size_t)snprintf(out, size, "%s", s) < size);
	LocalFree(s);
	CloseHandle(t);
}

/* Runs sql (statements) on the sqlite database file, made when
 * missing.  Asserts. */
static void
state_exec(const char *file, const char *sql)
{
	sqlite3 *db = NULL;
	char    *msg = NULL;

	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_close(db);
}

/* The first column of the last row sql gives on the sqlite database
 * file, as a number; -1 when it gives none.  Asserts. */
static long long
state_value(const char *file, const char *sql)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	long long     value = -1;
	int           rc;

	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return value;
}

/* The uid the state database gives user sid (-1: none). */
static long long
state_uid_of(const char *state, const char *sid)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT uid FROM users WHERE sid = '%s'",
	    sid);
	return state_value(state, sql);
}

/* Starts a copy of this program that holds the lock on path through
 * daemon d (LOCKBROKER_SOCKET set to d's pipe for it, then back to the
 * suite daemon's), and waits until it has it; its pid. */
static pid_t
holder_start(const struct daemon *d, const struct tl_place *p,
    const char *path, const char *name)
{
	char  ready[PATH_MAX], args[3 * PATH_MAX];
	pid_t pid;

	marker(ready, sizeof(ready), p->dir, name);
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
	pid = tl_self_start(args);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	ck_assert_msg(appears(ready), "the holder did not lock %s (see %s)",
	    path, d->log);
	return pid;
}

/* Starts daemon d on state beside the suite's (the library stays on
 * the suite's pipe). */
static void
other_daemon_start(struct daemon *d, const char *state)
{
	daemon_start_on(d, state);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
}

/* Starts daemon d on state and a copy of this program that holds a lock
 * through it, of a new place q (its path into path, size bytes); the
 * copy's pid. */
static pid_t
other_daemon_held(struct daemon *d, const char *state, struct tl_place *q,
    char *path, size_t size)
{
	other_daemon_start(d, state);
	tl_place_make(q, "x");
	tl_lock_path(q, path, size);
	return holder_start(d, q, path, "ready");
}

/* Ends daemon d (not the suite's: the library stays on the suite's
 * pipe). */
static void
other_daemon_end(struct daemon *d)
{
	TerminateProcess(d->proc, 137);
	WaitForSingleObject(d->proc, 10000);
	CloseHandle(d->proc);
}

/* Whether daemon d's log says text (waits up to a minute for it). */
static int
log_says(const struct daemon *d, const char *text)
{
	static char buf[1 << 16];
	double      until;

	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.05))
		if (tl_read_text(d->log, buf, sizeof(buf)) > 0 &&
		    strstr(buf, text) != NULL)
			return 1;
	return 0;
}

/* A client's user is its token's SID, numbered in the state database:
 * a number there already (another SID's) is never given again, the
 * client's holds are recorded with its SID's number, and a daemon
 * restarted on the same state gives that SID the same number.  The
 * daemon's steps for the client run acting as that SID (its debug log
 * says what the loop's thread's own token was during a step). */
START_TEST(users_numbered_across_restart)
{
	struct tl_place p, q;
	struct daemon   d1, d2;
	char            sid[256], path[PATH_MAX], text[400];
	char            lock[PATH_MAX + 8];
	long long       uid;
	pid_t           holder;

	own_sid(sid, sizeof(sid));
	tl_place_make(&p, "state.sqlite");
	state_exec(p.path, "CREATE TABLE users (uid INTEGER PRIMARY KEY, "
	    "sid TEXT UNIQUE NOT NULL); INSERT INTO users VALUES "
	    "(1, 'S-1-5-21-1-2-3-4444')");
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	uid = state_uid_of(p.path, sid);
	ck_assert_msg(uid > 1, "uid of %s: %ld", sid, (long)uid);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), uid);
	snprintf(text, sizeof(text), "uid %ld: acting as %s", (long)uid, sid);
	ck_assert_msg(log_says(&d1, text), "%s: no \"%s\"", d1.log, text);
	tl_kill(holder);
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(vanishes(lock), "%s: not released", lock);
	other_daemon_end(&d1);

	other_daemon_start(&d2, p.path);
	holder = holder_start(&d2, &q, path, "ready2");
	ck_assert_int_eq(state_uid_of(p.path, sid), uid);
	ck_assert_int_eq(state_uid_of(p.path, "S-1-5-21-1-2-3-4444"), 1);
	ck_assert_int_eq(state_value(p.path, "SELECT count(*) FROM users"), 2);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), uid);
	tl_kill(holder);
	other_daemon_end(&d2);
}
END_TEST

/* A lock kept for another process of the client's user (ACQUIRE pid=):
 * the daemon numbers that process's user by its token's SID, finds it
 * the client's, and keeps the lock for it (named its holder) until it
 * is released for it.  (Another user's process would be refused: only
 * a real Windows has one.) */
START_TEST(kept_for_own_process)
{
	struct tl_place p;
	lb_kept_info    how;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pid = tl_sleeper_start();
	l = broker_lock(path);
	ck_assert_msg(lb_acquire_for(l, pid, 5, &how) == 0, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(how.broker, 1);
	ck_assert_msg(lb_get_holder(l, &h) == 1, "%s", lb_lock_error(l));
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_msg(lb_release_for(l, pid, &how) == 0, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(l);
	tl_kill(pid);
}
END_TEST

/* A restarted daemon has no token for the holds of the previous run
 * until their user connects: it does not act for them with its own
 * rights.  The hold of a live process is held for it, its artefact not
 * looked at (the daemon logs why) and left where it is. */
START_TEST(restart_acts_not_without_token)
{
	struct tl_place p, q;
	struct daemon   d1, d2;
	char            path[PATH_MAX], lock[PATH_MAX + 8], text[400];
	long long       uid;
	pid_t           holder;
	char            sid[256];

	own_sid(sid, sizeof(sid));
	tl_place_make(&p, "state.sqlite");
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	uid = state_uid_of(p.path, sid);
	ck_assert(uid >= 1);
	other_daemon_end(&d1);

	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(tl_exists(lock), "%s", lock);
	other_daemon_start(&d2, p.path);
	snprintf(text, sizeof(text), "no token of uid %ld to act with", (long)uid);
	ck_assert_msg(log_says(&d2, text), "%s: no \"%s\"", d2.log, text);
	ck_assert_msg(log_says(&d2, "held for it until that can be told"),
	    "%s", d2.log);
	ck_assert_msg(tl_exists(lock), "%s removed", lock);
	tl_kill(holder);
	other_daemon_end(&d2);
}
END_TEST

/* Adds the tests of users (SIDs, their numbers, acting as the client)
 * to t, whose fixture is the suite's daemon (the library keeps its
 * connection to the first daemon's pipe: one tcase serves them all). */
static void
users_tests_add(TCase *t)
{
	tcase_add_test(t, kept_for_own_process);
	tcase_add_test(t, users_numbered_across_restart);
	tcase_add_test(t, restart_acts_not_without_token);
}

/* Makes file; 0, or 1 when it cannot. */
static int
make_file(const char *file)
{
	HANDLE h;

	h = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 1;
	CloseHandle(h);
	return 0;
}

/* The child of broker_holder_killed: takes the lock on path through
 * the daemon, makes ready, and waits to be ended.  Never returns but by
 * failing (1). */
static int
hold(const char *path, const char *ready)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	if (l == NULL || lb_acquire(l, 30) != 0) {
		fprintf(stderr, "cannot lock %s: %s\n", path,
		    l != NULL ? lb_lock_error(l) : strerror(errno));
		return 1;
	}
	if (make_file(ready) != 0)
		return 1;
	for (;;)
		Sleep(INFINITE);
}

/* The child of broker_waiter_granted: finds the lock on path taken
 * (makes busy), waits for it, makes got, and waits to be ended.  Never
 * returns but by failing (1). */
static int
wait_for(const char *path, const char *busy, const char *got)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	if (l == NULL || lb_acquire(l, 0) != LB_EALREADY) {
		fprintf(stderr, "%s is not taken\n", path);
		return 1;
	}
	if (make_file(busy) != 0)
		return 1;
	if (lb_acquire(l, 60) != 0) {
		fprintf(stderr, "cannot lock %s: %s\n", path,
		    lb_lock_error(l));
		return 1;
	}
	if (make_file(got) != 0)
		return 1;
	for (;;)
		Sleep(INFINITE);
}

/* The suite. */
static Suite *
daemon_win_suite(void)
{
	Suite *s = suite_create("daemon_win");
	TCase *t = tcase_create("broker");

	tcase_set_timeout(t, 240);
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_add_test(t, pipe_dacl);
	tcase_add_test(t, broker_cycle);
	tcase_add_test(t, broker_waiter_granted);
	tcase_add_test(t, broker_holder_killed);
	tcase_add_test(t, second_daemon_refused);
	tcase_add_test(t, second_daemon_same_pipe_refused);
	users_tests_add(t);
	suite_add_tcase(s, t);
	return s;
}

/* main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say. */
int
main(int argc, char **argv)
{
	const char *tmp;

	if (argc == 4 && strcmp(argv[1], "--hold") == 0)
		return hold(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--wait") == 0)
		return wait_for(argv[2], argv[3], argv[4]);
	if ((tmp = getenv("LOCKBROKERD")) == NULL || *tmp == '\0')
		tmp = "daemon\\lockbrokerd.exe";
	if (GetFullPathNameA(tmp, sizeof(daemon_exe), daemon_exe, NULL) == 0)
		return 99;
	if (tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_daemon_win", daemon_win_suite(), CK_ENV);
}
