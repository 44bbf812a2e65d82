/*
 * check_lockfs_win.c: lockfs on Windows, run under wine: the file-system
 * layer (lockfs/fs.h, fs_win32.c) against what the system really does
 * (files made only where nothing is, identity and link counts, steps
 * relative to a directory that was renamed meanwhile, removal, the
 * refusals fs.h names), the directory reader and the directory lock
 * (os.h: between two opens in one process, two paths to one directory,
 * and another process, freed when that process is ended with
 * TerminateProcess, leaving nothing on disk).
 *
 * And the link, mkdir, pidfile and sqlite methods (lockfs.h), each:
 * acquire, release, is_locked, i_am_locking, break_lock, a waiter that
 * gives up at its deadline and leaves nothing behind; the artefacts in
 * Python lockfile's shapes (PATH.lock a hard link of HOST.PID~... beside
 * it, a directory holding the marker HOST.PID~..., or a row (PATH.lock,
 * DIR\HOST.PID~...) of the table locks in DIR/.lockbroker.sqlite, spelled
 * as Python's os.path.abspath spells paths on Windows), and a lockfile
 * artefact read as a holder; exclusion by another process, whose lock is
 * judged stale (and broken) only once it is ended, and a holder named
 * with a live pid but another creation time judged stale (link, mkdir,
 * sqlite; a pid file names only the pid, PIDLockFile's "PID\n").  The
 * symlink method answers LB_EFAILED, saying why.
 *
 * Handoffs (handoff.c) for each: A to B and back, prepared then
 * cancelled or finished (not sqlite's, one transaction), the last step refused while a reader has the
 * lock file open (link, pidfile: EBUSY, done once it is closed), the
 * lock never seen free by another process polling is_locked during
 * handoffs, no owner for a dead process and a dead next holder's traces
 * tidied.
 *
 * The other process is a copy of this program, started with
 * "--hold-dirlock DIR READY" (it locks DIR) or "--hold-lock METHOD PATH
 * READY" (it takes the lock on PATH), which then makes the file READY and
 * waits to be ended, or "--poll-lock METHOD PATH READY STOP OUT" (it
 * polls is_locked until STOP exists, then writes what it saw into OUT).
 *
 * Lock paths (path.c, as Python's os.path.abspath on Windows): each
 * spelling (drives, '\' and '/', drive-relative, rooted on the current
 * drive, relative, UNC) gives the absolute path and lock file expected,
 * what cannot be a lock's path is refused with the reason, and a lock
 * held through one spelling excludes every other.
 *
 * The methods' tests give lock paths rooted on the current drive
 * ("/dir/...", the working directory on the drive of the test's
 * directory).  Wine reads a rooted path as a Unix path, which is the same
 * file only on its drive Z: (the Unix root): the test's directory is made
 * in the working directory (on Z: under make check) unless TMPDIR says
 * where.
 */
#include <windows.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sqlite3.h>

#include "fs.h"
#include "lockfs.h"
#include "os.h"
#include "testlib.h"

/* A directory of the test's own: its path, and name's path in it. */
static void
in_dir(const struct tl_place *p, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", p->dir, name);
}

/* ------------------------------------------------------------------ */
/* The file-system layer.                                               */

/* A file made at a name relative to an open directory: there once, not
 * made again (EEXIST); the same identity looked at by name and through a
 * descriptor; a regular file with one link. */
START_TEST(fs_make_at_once)
{
	struct tl_place       p;
	struct lockfs_fs_info a, b;
	char                  file[PATH_MAX];
	int                   dfd, fd;

	tl_place_make(&p, "x");
	in_dir(&p, "m", file, sizeof(file));
	dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir, LOCKFS_FS_DIR);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(lockfs_fs_make_at(dfd, "m", 0644), 0);
	ck_assert(tl_exists(file));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_make_at(dfd, "m", 0644), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lockfs_fs_info_at(dfd, "m", 0, &a), 0);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, file, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lockfs_fs_info(fd, &b), 0);
	lockfs_fs_close(fd);
	ck_assert(a.dev == b.dev && a.ino == b.ino);
	ck_assert_int_eq(a.type, LOCKFS_FS_FILE);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_int_eq(lockfs_fs_info(dfd, &b), 0);
	ck_assert_int_eq(b.type, LOCKFS_FS_DIRECTORY);
	ck_assert(b.ino != a.ino);
	lockfs_fs_close(dfd);
	tl_place_remove(p.dir);
}
END_TEST

/* A hard link: the second name is the same file, both count two links;
 * a link onto a name that exists is refused (EEXIST) and changes
 * nothing; removing one name leaves the other with one link. */
START_TEST(fs_link_same_file)
{
	struct tl_place       p;
	struct lockfs_fs_info a, b, c;
	char                  from[PATH_MAX], to[PATH_MAX], other[PATH_MAX];
	char                  buf[16];

	tl_place_make(&p, "x");
	in_dir(&p, "unique", from, sizeof(from));
	in_dir(&p, "x.lock", to, sizeof(to));
	in_dir(&p, "other", other, sizeof(other));
	ck_assert_int_eq(lockfs_fs_make_at(LOCKFS_FS_CWD, from, 0644), 0);
	ck_assert_int_eq(lockfs_fs_link(from, to), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, from, 0, &a), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, to, 0, &b), 0);
	ck_assert(a.dev == b.dev && a.ino == b.ino);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(b.nlink, 2);
	tl_write_text(other, "other");
	errno = 0;
	ck_assert_int_eq(lockfs_fs_link(other, to), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, to, 0, &c), 0);
	ck_assert(c.ino == a.ino);
	ck_assert_int_eq(lockfs_fs_unlink(from), 0);
	ck_assert(!tl_exists(from));
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, to, 0, &c), 0);
	ck_assert_uint_eq(c.nlink, 1);
	ck_assert_int_eq(tl_read_text(other, buf, sizeof(buf)), 5);
	tl_place_remove(p.dir);
}
END_TEST

/* The refusals of fs.h's opens: nothing there (ENOENT, also under a
 * missing directory), a file opened as a directory (ENOTDIR), a
 * directory opened to write (EISDIR), an exclusive create of a name
 * that is taken (EEXIST); a create where nothing is makes the file. */
START_TEST(fs_open_refusals)
{
	struct tl_place p;
	char            file[PATH_MAX], deep[PATH_MAX];
	int             fd;

	tl_place_make(&p, "x");
	in_dir(&p, "f", file, sizeof(file));
	in_dir(&p, "missing/f", deep, sizeof(deep));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, file, 0), -1);
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, deep, 0), -1);
	ck_assert_int_eq(errno, ENOENT);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL);
	ck_assert_int_ge(fd, 0);
	lockfs_fs_close(fd);
	ck_assert(tl_exists(file));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL), -1);
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_DIR),
	    -1);
	ck_assert_int_eq(errno, ENOTDIR);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, p.dir,
	    LOCKFS_FS_WRITE), -1);
	ck_assert_int_eq(errno, EISDIR);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE);
	ck_assert_int_ge(fd, 0);               /* there: opened, not made */
	lockfs_fs_close(fd);
	tl_place_remove(p.dir);
}
END_TEST

/* A step relative to an open directory acts in that directory after it
 * was renamed, not at its old path, where another directory now is: a
 * file made and looked at there; its removal either done or refused
 * (wine 8.0 cannot remove it, see fs_win32.c), never said to be done
 * while the file stays, and never taking the file at the old path. */
START_TEST(fs_at_follows_the_directory)
{
	struct tl_place       p;
	struct lockfs_fs_info st, made;
	char                  d[PATH_MAX], moved[PATH_MAX], file[PATH_MAX];
	char                  old[PATH_MAX];
	int                   dfd, r;

	tl_place_make(&p, "x");
	in_dir(&p, "d", d, sizeof(d));
	in_dir(&p, "moved", moved, sizeof(moved));
	tl_mkdir(d);
	dfd = lockfs_fs_open(LOCKFS_FS_CWD, d, LOCKFS_FS_DIR);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(lockfs_os_rename_noreplace(d, moved), 0);
	tl_mkdir(d);                            /* another at the old path */
	snprintf(old, sizeof(old), "%s/m", d);
	tl_write_text(old, "old");
	ck_assert_int_eq(lockfs_fs_make_at(dfd, "m", 0644), 0);
	snprintf(file, sizeof(file), "%s/m", moved);
	ck_assert(tl_exists(file));
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &made), 0);
	ck_assert_msg(lockfs_fs_info_at(dfd, "m", 0, &st) == 0, "info_at: %s",
	    strerror(errno));
	ck_assert(st.dev == made.dev && st.ino == made.ino);
	errno = 0;
	r = lockfs_fs_unlink_at(dfd, "m");
	ck_assert_msg(r == 0 ? !tl_exists(file) : tl_exists(file) &&
	    errno == EBUSY, "unlink_at: %d (%s), file %s", r, strerror(errno),
	    tl_exists(file) ? "stays" : "gone");
	ck_assert(tl_exists(old));
	lockfs_fs_close(dfd);
	tl_place_remove(p.dir);
}
END_TEST

/* Removal: a file by name relative to a directory; a directory is no
 * file (EISDIR) and a file no directory (ENOTDIR); a directory that is
 * not empty stays (ENOTEMPTY); nothing there: ENOENT; a file open by a
 * descriptor can be removed, and its name is then gone. */
START_TEST(fs_remove)
{
	struct tl_place p;
	char            f[PATH_MAX], sub[PATH_MAX], in[PATH_MAX];
	int             dfd, fd;

	tl_place_make(&p, "x");
	in_dir(&p, "f", f, sizeof(f));
	in_dir(&p, "sub", sub, sizeof(sub));
	in_dir(&p, "sub/in", in, sizeof(in));
	tl_write_text(f, "f");
	ck_assert_int_eq(lockfs_fs_mkdir(sub), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_mkdir(sub), -1);
	ck_assert_int_eq(errno, EEXIST);
	tl_write_text(in, "in");
	dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir, LOCKFS_FS_DIR);
	ck_assert_int_ge(dfd, 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_unlink_at(dfd, "sub"), -1);
	ck_assert_int_eq(errno, EISDIR);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_rmdir_at(dfd, "f"), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_rmdir_at(dfd, "sub"), -1);
	ck_assert_int_eq(errno, ENOTEMPTY);
	ck_assert(tl_exists(in));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_rmdir(sub), -1);
	ck_assert_int_eq(errno, ENOTEMPTY);
	ck_assert_int_eq(lockfs_fs_unlink(in), 0);
	ck_assert_int_eq(lockfs_fs_rmdir_at(dfd, "sub"), 0);
	ck_assert(!tl_exists(sub));
	fd = lockfs_fs_open(LOCKFS_FS_CWD, f, LOCKFS_FS_READ);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lockfs_fs_unlink_at(dfd, "f"), 0);
	lockfs_fs_close(fd);
	ck_assert(!tl_exists(f));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_unlink_at(dfd, "f"), -1);
	ck_assert_int_eq(errno, ENOENT);
	lockfs_fs_close(dfd);
	tl_place_remove(p.dir);
}
END_TEST

/* The directory reader: every entry once, with its type, without "."
 * and ".."; then the end, with errno 0. */
START_TEST(dir_read_entries)
{
	struct lockfs_os_dir d;
	struct tl_place      p;
	const char          *name;
	unsigned char        type;
	char                 path[PATH_MAX];
	int                  fd, seen_file = 0, seen_dir = 0, n = 0;

	tl_place_make(&p, "x");
	in_dir(&p, "a-file", path, sizeof(path));
	tl_write_text(path, "a");
	in_dir(&p, "a-dir", path, sizeof(path));
	tl_mkdir(path);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR);
	ck_assert_int_ge(fd, 0);
	lockfs_os_dir_start(&d, fd, NULL, 0);
	while ((name = lockfs_os_dir_next(&d, &type)) != NULL) {
		n++;
		if (strcmp(name, "a-file") == 0 && type == DT_REG)
			seen_file++;
		else if (strcmp(name, "a-dir") == 0 && type == DT_DIR)
			seen_dir++;
		else
			ck_abort_msg("unexpected entry %s (type %u)", name,
			    type);
	}
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(seen_file, 1);
	ck_assert_int_eq(seen_dir, 1);
	lockfs_fs_close(fd);
	tl_place_remove(p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The directory lock.                                                  */

/* In one process: a second open of the directory cannot take the lock
 * (EWOULDBLOCK), nor an open by another path to the same directory; the
 * holder takes it again at once; once it is closed, the other takes it.
 * Nothing is left in the directory. */
START_TEST(dirlock_in_process)
{
	struct lockfs_dirlock a, b, c;
	struct lockfs_os_dir  d;
	struct tl_place       p;
	char                  other[PATH_MAX];
	int                   fd;

	tl_place_make(&p, "x");
	snprintf(other, sizeof(other), "%s/../%s", p.dir,
	    strrchr(p.dir, '\\') + 1);
	ck_assert_int_eq(lockfs_dirlock_open(&a, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_open(&b, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_open(&c, other), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&b), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&c), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	lockfs_dirlock_close(&a);
	ck_assert_int_eq(a.fd, -1);
	ck_assert_int_eq(lockfs_dirlock_try(&c), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&b), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	lockfs_dirlock_close(&c);
	ck_assert_int_eq(lockfs_dirlock_try(&b), 0);
	/* The lock's descriptor reads the directory: nothing in it. */
	fd = b.fd;
	lockfs_os_dir_start(&d, fd, NULL, 0);
	ck_assert(lockfs_os_dir_next(&d, NULL) == NULL);
	ck_assert_int_eq(errno, 0);
	lockfs_dirlock_close(&b);
	tl_place_remove(p.dir);
}
END_TEST

/* Another directory's lock is another lock. */
START_TEST(dirlock_per_directory)
{
	struct lockfs_dirlock a, b;
	struct tl_place       p, q;

	tl_place_make(&p, "x");
	tl_place_make(&q, "x");
	ck_assert_int_eq(lockfs_dirlock_open(&a, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_open(&b, q.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&b), 0);
	lockfs_dirlock_close(&a);
	lockfs_dirlock_close(&b);
	tl_place_remove(p.dir);
	tl_place_remove(q.dir);
}
END_TEST

/* A thread that closes the directory lock given to it. */
static DWORD WINAPI
close_dirlock(void *arg)
{
	lockfs_dirlock_close(arg);
	return 0;
}

/* The lock taken in one thread is dropped by its close in another (a
 * handoff's two steps may run in two threads): then another open takes
 * it. */
START_TEST(dirlock_closed_in_another_thread)
{
	struct lockfs_dirlock a, b;
	struct tl_place       p;
	HANDLE                t;

	tl_place_make(&p, "x");
	ck_assert_int_eq(lockfs_dirlock_open(&a, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_open(&b, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&b), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	t = CreateThread(NULL, 0, close_dirlock, &a, 0, NULL);
	ck_assert(t != NULL);
	ck_assert(WaitForSingleObject(t, 10000) == WAIT_OBJECT_0);
	CloseHandle(t);
	ck_assert_int_eq(a.fd, -1);
	ck_assert_int_eq(lockfs_dirlock_try(&b), 0);
	lockfs_dirlock_close(&b);
	tl_place_remove(p.dir);
}
END_TEST

/* Another process holding the directory's lock excludes this one until
 * it is ended (TerminateProcess): then the lock is free, and nothing of
 * it is left in the directory. */
START_TEST(dirlock_other_process)
{
	struct lockfs_dirlock dl;
	struct lockfs_os_dir  d;
	struct tl_place       p;
	char                  ready[PATH_MAX], args[3 * PATH_MAX];
	double                until;
	pid_t                 pid;

	tl_place_make(&p, "x");
	snprintf(ready, sizeof(ready), "%s\\ready", tl_top);
	snprintf(args, sizeof(args), "--hold-dirlock \"%s\" \"%s\"", p.dir,
	    ready);
	DeleteFileA(ready);
	pid = tl_self_start(args);
	for (until = tl_now() + 20; !tl_exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(tl_exists(ready), "the child did not lock %s", p.dir);
	ck_assert_int_eq(lockfs_dirlock_open(&dl, p.dir), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&dl), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	tl_kill(pid);
	ck_assert_int_eq(lockfs_dirlock_try(&dl), 0);
	lockfs_os_dir_start(&d, dl.fd, NULL, 0);
	ck_assert(lockfs_os_dir_next(&d, NULL) == NULL);
	ck_assert_int_eq(errno, 0);
	lockfs_dirlock_close(&dl);
	DeleteFileA(ready);
	tl_place_remove(p.dir);
}
END_TEST

/* The child of dirlock_other_process: locks dir, makes the file ready,
 * and waits to be ended.  Never returns but by failing (1). */
static int
hold_dirlock(const char *dir, const char *ready)
{
	struct lockfs_dirlock dl;
	HANDLE                h;

	if (lockfs_dirlock_open(&dl, dir) == -1 ||
	    lockfs_dirlock_try(&dl) == -1) {
		fprintf(stderr, "cannot lock %s: %s\n", dir, strerror(errno));
		return 1;
	}
	h = CreateFileA(ready, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 1;
	CloseHandle(h);
	for (;;)
		Sleep(INFINITE);
}

/* ------------------------------------------------------------------ */
/* The link and mkdir methods.                                          */

/* The methods on Windows, and those whose owners may be threads
 * (pidfile's is the process) and whose artefacts name the holder's
 * creation time. */
static const unsigned methods[] = { LB_LINK, LB_MKDIR, LB_PIDFILE,
    LB_SQLITE };
static const unsigned threaded[] = { LB_LINK, LB_MKDIR, LB_SQLITE };
#define N_THREADED 3

/* The sqlite method's database name in a lock's directory. */
#define SQ_DB ".lockbroker.sqlite"


/* This host's name as Python's socket.gethostname() gives it on
 * Windows. */
static void
host_name(char *out, DWORD size)
{
	ck_assert(GetComputerNameExA(ComputerNamePhysicalDnsHostname, out,
	    &size));
}

/* The number of entries of directory dir (not "." and ".."), the first
 * one's name into first (when not NULL). */
static int
entries(const char *dir, char *first, size_t size)
{
	struct lockfs_os_dir d;
	const char          *name;
	int                  fd, n = 0;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_READ | LOCKFS_FS_DIR);
	ck_assert_msg(fd >= 0, "open %s: %s", dir, strerror(errno));
	lockfs_os_dir_start(&d, fd, NULL, 0);
	while ((name = lockfs_os_dir_next(&d, NULL)) != NULL)
		if (n++ == 0 && first != NULL)
			snprintf(first, size, "%s", name);
	ck_assert_int_eq(errno, 0);
	lockfs_fs_close(fd);
	return n;
}

/* path as Python's os.path.abspath spells it on Windows (it calls
 * GetFullPathNameW): '\\' its separator. */
static void
full_path(const char *path, char *out, DWORD size)
{
	DWORD n = GetFullPathNameA(path, size, out, NULL);

	ck_assert_msg(n > 0 && n < size, "GetFullPathName %s", path);
}

/* The number of rows of table locks in the sqlite database db (0 when
 * there is no database or no table), the first one's lock_file and
 * unique_name (of PATH_MAX bytes) into lock_file and unique when not
 * NULL.  Read with sqlite's own VFS, as another program would. */
static int
db_rows(const char *db, char *lock_file, char *unique)
{
	sqlite3      *h = NULL;
	sqlite3_stmt *st = NULL;
	int           n = 0, rc;

	if (!tl_exists(db))
		return 0;
	ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	rc = sqlite3_prepare_v2(h, "SELECT lock_file, unique_name, "
	    "(SELECT count(*) FROM locks) FROM locks", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		ck_assert_msg(strstr(sqlite3_errmsg(h), "no such table") !=
		    NULL, "%s: %s", db, sqlite3_errmsg(h));
		goto out;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int(st, 2);
		if (lock_file != NULL)
			snprintf(lock_file, PATH_MAX, "%s",
			    sqlite3_column_text(st, 0));
		if (unique != NULL)
			snprintf(unique, PATH_MAX, "%s",
			    sqlite3_column_text(st, 1));
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Writes the row Python's SQLiteLockFile writes, (lock_file, unique),
 * into the sqlite database db, making it and its table when needed. */
static void
db_insert(const char *db, const char *lock_file, const char *unique)
{
	sqlite3 *h = NULL;
	char    *sql = sqlite3_mprintf("CREATE TABLE IF NOT EXISTS locks "
	    "(lock_file varchar(32), unique_name varchar(32)); INSERT INTO "
	    "locks VALUES (%Q, %Q)", lock_file, unique);

	ck_assert(sql != NULL);
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
}

/* Nothing of a released lock of method's is left in dir: no entry; for
 * the sqlite method its database alone (kept, as lockfile's), no row in
 * it, no journal beside it. */
static void
assert_left_nothing(const char *dir, unsigned method)
{
	char name[300], db[PATH_MAX];

	if (method != LB_SQLITE) {
		ck_assert_int_eq(entries(dir, NULL, 0), 0);
		return;
	}
	ck_assert_int_eq(entries(dir, name, sizeof(name)), 1);
	ck_assert_str_eq(name, SQ_DB);
	snprintf(db, sizeof(db), "%s/%s", dir, SQ_DB);
	ck_assert_int_eq(db_rows(db, NULL, NULL), 0);
}

/* l's row, the one row of its database: lockfile's columns with the
 * values Python's SQLiteLockFile writes on Windows, PATH.lock and
 * DIR\HOST[-TID].PID... (os.path.abspath's spellings, '\\'); no
 * PATH.lock on disk, and the database alone in the directory. */
static void
assert_row(const struct lockfs_lock *l)
{
	char lock_file[PATH_MAX], unique[PATH_MAX], want[PATH_MAX];
	char name[300];

	ck_assert_int_eq(db_rows(l->db, lock_file, unique), 1);
	full_path(l->lock_file, want, sizeof(want));
	ck_assert_str_eq(lock_file, want);
	full_path(l->unique, want, sizeof(want));
	ck_assert_str_eq(unique, want);
	ck_assert(strchr(unique, '/') == NULL);
	ck_assert(!tl_exists(l->lock_file));
	ck_assert_int_eq(entries(l->dir, name, sizeof(name)), 1);
	ck_assert_str_eq(name, SQ_DB);
}

/* The artefact of l, held by this process (unthreaded), in lockfile's
 * shape: link: PATH.lock and the unique file HOST.PID~... beside it, one
 * empty file with two links; mkdir: PATH.lock a directory holding one
 * marker, HOST.PID~..., an empty file; sqlite: its row (assert_row),
 * DIR\HOST.PID~...; pidfile: PATH holding "PID\n". */
static void
assert_artefact(const struct lockfs_lock *l)
{
	struct lockfs_fs_info lk, un;
	char                  host[256], want[300], name[300], path[PATH_MAX];
	char                  buf[16];

	host_name(host, sizeof(host));
	snprintf(want, sizeof(want), "%s.%lu~", host,
	    (unsigned long)GetCurrentProcessId());
	if (l->method == LB_SQLITE) {
		assert_row(l);
		ck_assert_msg(strncmp(strrchr(l->unique, '/') + 1, want,
		    strlen(want)) == 0, "%s is not %s...", l->unique, want);
		return;
	}
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0,
	    &lk), 0);
	if (l->method == LB_PIDFILE) {
		/* PATH itself, holding the pid and a newline, as lockfile's
		 * PIDLockFile writes it. */
		ck_assert_str_eq(l->lock_file, l->path);
		ck_assert_int_eq(lk.type, LOCKFS_FS_FILE);
		snprintf(want, sizeof(want), "%lu\n",
		    (unsigned long)GetCurrentProcessId());
		ck_assert_int_gt(tl_read_text(l->lock_file, name,
		    sizeof(name)), 0);
		ck_assert_str_eq(name, want);
		ck_assert_int_eq(entries(l->dir, NULL, 0), 1);
	} else if (l->method == LB_LINK) {
		ck_assert_int_eq(lk.type, LOCKFS_FS_FILE);
		ck_assert_uint_eq(lk.nlink, 2);
		ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, l->unique, 0,
		    &un), 0);
		ck_assert(un.dev == lk.dev && un.ino == lk.ino);
		/* DIR/HOST.PID~..., DIR the lock file's. */
		ck_assert(strncmp(l->unique, l->lock_file,
		    strrchr(l->lock_file, '/') - l->lock_file + 1) == 0);
		ck_assert_msg(strncmp(strrchr(l->unique, '/') + 1, want,
		    strlen(want)) == 0, "%s is not %s...", l->unique, want);
		ck_assert_int_eq(tl_read_text(l->unique, buf, sizeof(buf)), 0);
		/* The directory holds the lock file and the unique file. */
		ck_assert_int_eq(entries(l->dir, NULL, 0), 2);
	} else {
		ck_assert_int_eq(lk.type, LOCKFS_FS_DIRECTORY);
		ck_assert_int_eq(entries(l->lock_file, name, sizeof(name)), 1);
		ck_assert_msg(strncmp(name, want, strlen(want)) == 0, "%s is "
		    "not %s...", name, want);
		snprintf(path, sizeof(path), "%s/%s", l->lock_file, name);
		ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, path, 0,
		    &un), 0);
		ck_assert_int_eq(un.type, LOCKFS_FS_FILE);
		ck_assert_int_eq(tl_read_text(path, buf, sizeof(buf)), 0);
		ck_assert_int_eq(entries(l->dir, NULL, 0), 1);
	}
}

/* The owner of a live other process (a sleeper), for locks taken as it. */
static pid_t
other_owner(struct lockfs_owner *o)
{
	pid_t pid = tl_sleeper_start();

	ck_assert_int_eq(lockfs_owner_of_pid(o, pid, 0), 0);
	return pid;
}

/* Acquire, is_locked, i_am_locking, release; another owner refused
 * (LB_EALREADY), not holding it, not releasing it (LB_ENOTMINE); after
 * the release nothing is left, and a second release is LB_ENOTLOCKED. */
START_TEST(method_cycle)
{
	struct lockfs_lock  l, other;
	struct lockfs_owner o;
	struct lockfs_err   err;
	struct tl_place     p;
	char                path[PATH_MAX];
	pid_t               pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	ck_assert_int_eq(lockfs_init(&l, path, methods[_i], 0, &err), 0);
	pid = other_owner(&o);
	ck_assert_int_eq(lockfs_init_as(&other, path, methods[_i], 0, &o,
	    &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_msg(lockfs_try_acquire(&l, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);  /* ours: again */
	assert_artefact(&l);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_is_locked(&other, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&other, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&other, &err), LB_EALREADY);
	lockfs_abandon(&other);
	ck_assert_int_eq(lockfs_release(&other, &err), LB_ENOTMINE);
	assert_artefact(&l);
	ck_assert_msg(lockfs_release(&l, &err) == 0, "%s", err.msg);
	ck_assert(!tl_exists(l.lock_file));
	assert_left_nothing(p.dir, methods[_i]);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	/* Now the other owner takes it. */
	ck_assert_int_eq(lockfs_try_acquire(&other, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&other, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&other, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	lockfs_fini(&l);
	lockfs_fini(&other);
	tl_kill(pid);
	tl_place_remove(p.dir);
}
END_TEST

/* A waiter that gives up at its deadline (the caller's loop over
 * try_acquire, as the library's timeout is) gets LB_EALREADY until then,
 * and its abandon leaves nothing of it: the holder's artefact alone. */
START_TEST(method_timeout_leaves_nothing)
{
	struct lockfs_lock    l, waiter;
	struct lockfs_owner   o;
	struct lockfs_backoff b;
	struct lockfs_err     err;
	struct tl_place       p;
	char                  path[PATH_MAX];
	double                start, deadline;
	int                   r, tries = 0;
	pid_t                 pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	ck_assert_int_eq(lockfs_init(&l, path, methods[_i], 0, &err), 0);
	pid = other_owner(&o);
	ck_assert_int_eq(lockfs_init_as(&waiter, path, methods[_i], 0, &o,
	    &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	start = lockfs_now();
	deadline = start + 0.3;
	lockfs_backoff_init(&b, 0.01, 0.05);
	do {
		r = lockfs_try_acquire(&waiter, &err);
		tries++;
	} while (r == LB_EALREADY && lockfs_backoff_sleep(&b, deadline) == 0);
	ck_assert_int_eq(r, LB_EALREADY);
	ck_assert(lockfs_now() >= deadline);
	ck_assert_int_gt(tries, 1);
	lockfs_abandon(&waiter);
	assert_artefact(&l);                    /* the holder's, alone */
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	lockfs_fini(&l);
	lockfs_fini(&waiter);
	tl_kill(pid);
	tl_place_remove(p.dir);
}
END_TEST

/* break_lock by another owner removes the lock whole (for the link
 * method the holder's unique file too); the old holder's release finds
 * nothing (LB_ENOTLOCKED); nothing is left. */
START_TEST(method_break)
{
	struct lockfs_lock  l, breaker;
	struct lockfs_owner o;
	struct lockfs_err   err;
	struct tl_place     p;
	char                path[PATH_MAX];
	pid_t               pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	ck_assert_int_eq(lockfs_init(&l, path, methods[_i], 0, &err), 0);
	pid = other_owner(&o);
	ck_assert_int_eq(lockfs_init_as(&breaker, path, methods[_i], 0, &o,
	    &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_msg(lockfs_break_lock(&breaker, &err) == 0, "%s", err.msg);
	ck_assert(!tl_exists(l.lock_file));
	assert_left_nothing(p.dir, methods[_i]);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(lockfs_break_lock(&breaker, &err), 0); /* none */
	lockfs_fini(&l);
	lockfs_fini(&breaker);
	tl_kill(pid);
	tl_place_remove(p.dir);
}
END_TEST

/* Another process holding the lock excludes this one; its lock is not
 * stale while it lives, and is once it is ended (TerminateProcess):
 * then it is broken, and this process takes the lock. */
START_TEST(method_other_process)
{
	struct lockfs_holder h;
	struct lockfs_lock   l;
	struct lockfs_err    err;
	struct tl_place      p;
	char                 path[PATH_MAX], ready[PATH_MAX];
	char                 args[3 * PATH_MAX];
	double               until;
	pid_t                pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	snprintf(ready, sizeof(ready), "%s\\ready", tl_top);
	DeleteFileA(ready);
	snprintf(args, sizeof(args), "--hold-lock %u \"%s\" \"%s\"",
	    methods[_i], path, ready);
	pid = tl_self_start(args);
	for (until = tl_now() + 20; !tl_exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(tl_exists(ready), "the child did not lock %s", path);
	ck_assert_int_eq(lockfs_init(&l, path, methods[_i], 0, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, pid);
	/* pidfile: a pid file names no creation time. */
	ck_assert(h.start != 0 || methods[_i] == LB_PIDFILE);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	tl_kill(pid);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	ck_assert_msg(lockfs_break_stale(&l, &err) == 1, "%s", err.msg);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	assert_artefact(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	lockfs_fini(&l);
	DeleteFileA(ready);
	tl_place_remove(p.dir);
}
END_TEST

/* A holder named with a live process's pid but another creation time
 * (the pid reused by another process since) is stale: broken. */
START_TEST(method_reused_pid_stale)
{
	struct lockfs_holder h;
	struct lockfs_lock   l, mine;
	struct lockfs_owner  o;
	struct lockfs_err    err;
	struct tl_place      p;
	char                 path[PATH_MAX];
	pid_t                pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pid = other_owner(&o);
	o.start++;                              /* not that process */
	ck_assert_int_eq(lockfs_init_as(&l, path, threaded[_i], 0, &o, &err),
	    0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(lockfs_os_pid_liveness(pid), LB_HOLDER_ALIVE);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	ck_assert_int_eq(lockfs_init(&mine, path, threaded[_i], 0, &err), 0);
	ck_assert_msg(lockfs_break_stale(&mine, &err) == 1, "%s", err.msg);
	ck_assert_int_eq(lockfs_try_acquire(&mine, &err), 0);
	ck_assert_int_eq(lockfs_release(&mine, &err), 0);
	assert_left_nothing(p.dir, threaded[_i]);
	lockfs_fini(&l);
	lockfs_fini(&mine);
	tl_kill(pid);
	tl_place_remove(p.dir);
}
END_TEST

/* A thread of this process trying the lock its owner thread holds. */
struct thread_try {
	const char *path;
	unsigned    method;
	int         r;                  /* try_acquire's answer */
	pid_t       tid;
};

static DWORD WINAPI
thread_try(void *arg)
{
	struct thread_try *t = arg;
	struct lockfs_lock l;
	struct lockfs_err  err;

	t->tid = lockfs_gettid();
	t->r = lockfs_init(&l, t->path, t->method, t->tid, &err);
	if (t->r == 0) {
		t->r = lockfs_try_acquire(&l, &err);
		lockfs_abandon(&l);
		lockfs_fini(&l);
	}
	return 0;
}

/* Threaded owners: the unique name carries the thread's id (HOST-TID8.
 * PID~...: lockfile's HOST-TID.PID with the id in 8 hex digits), and
 * another thread of the same process is another owner: LB_EALREADY. */
START_TEST(method_threads)
{
	struct thread_try  t;
	struct lockfs_lock l;
	struct lockfs_err  err;
	struct tl_place    p;
	char               path[PATH_MAX], host[256], want[300];
	HANDLE             th;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	host_name(host, sizeof(host));
	ck_assert_int_eq(lockfs_init(&l, path, threaded[_i], lockfs_gettid(),
	    &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	/* link: HOST-TID8.PID~...; mkdir's marker: HOST.-TID8PID~... */
	snprintf(want, sizeof(want), threaded[_i] == LB_MKDIR ?
	    "%s.-%08lx%lu~" : "%s-%08lx.%lu~", host,
	    (unsigned long)GetCurrentThreadId(),
	    (unsigned long)GetCurrentProcessId());
	ck_assert_msg(strstr(l.unique, want) != NULL, "%s has no %s",
	    l.unique, want);
	t.path = path;
	t.method = threaded[_i];
	th = CreateThread(NULL, 0, thread_try, &t, 0, NULL);
	ck_assert(th != NULL);
	ck_assert(WaitForSingleObject(th, 10000) == WAIT_OBJECT_0);
	CloseHandle(th);
	ck_assert(t.tid != lockfs_gettid());
	ck_assert_int_eq(t.r, LB_EALREADY);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	assert_left_nothing(p.dir, threaded[_i]);
	lockfs_fini(&l);
	tl_place_remove(p.dir);
}
END_TEST

/* The mkdir method's temporary left by a process that died half way
 * (DIR/.lockbroker-mkdir.MARKER, holding its marker) is no lock, and the
 * next lock taken in the directory removes it once that process is
 * gone (read through the directory's handle, judged by pid and creation
 * time). */
START_TEST(mkdir_dead_leftover_tidied)
{
	struct lockfs_lock  dead, l;
	struct lockfs_owner o;
	struct lockfs_err   err;
	struct tl_place     p;
	char                path[PATH_MAX], tmp[PATH_MAX], marker[PATH_MAX];
	pid_t               pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pid = other_owner(&o);
	ck_assert_int_eq(lockfs_init_as(&dead, path, LB_MKDIR, 0, &o, &err),
	    0);
	ck_assert_int_eq(lockfs_lockdir_tmp_name(&dead, tmp, sizeof(tmp)), 0);
	tl_mkdir(tmp);
	snprintf(marker, sizeof(marker), "%s/%s", tmp,
	    strrchr(dead.unique, '/') + 1);
	tl_write_text(marker, "");
	ck_assert_int_eq(lockfs_init(&l, path, LB_MKDIR, 0, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	/* Its process alive: kept. */
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert(tl_exists(marker));
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert(tl_exists(marker));
	/* Gone: removed by the next lock taken. */
	tl_kill(pid);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert(!tl_exists(tmp));
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(entries(p.dir, NULL, 0), 0);
	lockfs_fini(&dead);
	lockfs_fini(&l);
	tl_place_remove(p.dir);
}
END_TEST

/* Python lockfile's own artefacts (its unique names: HOST.PID<hash>, the
 * pid told when the hash is negative; the mkdir marker HOST.PID;
 * SQLiteLockFile's row, threaded as it is by default, its paths spelled
 * with '\\') are locks held by another: LB_EALREADY, its holder's host
 * and pid read. */
START_TEST(method_lockfile_artefact)
{
	struct lockfs_holder h;
	struct lockfs_lock   l;
	struct lockfs_err    err;
	struct tl_place      p;
	char                 path[PATH_MAX], host[256], file[PATH_MAX];
	char                 lock[PATH_MAX], row[PATH_MAX], dir[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	host_name(host, sizeof(host));
	ck_assert_int_eq(lockfs_init(&l, path, methods[_i], 0, &err), 0);
	snprintf(lock, sizeof(lock), "%s.lock", p.path);
	if (methods[_i] == LB_PIDFILE) {
		/* PIDLockFile: PATH holding "%s\n" % pid. */
		snprintf(lock, sizeof(lock), "%s", p.path);
		snprintf(file, sizeof(file), "%s", p.path);
		tl_write_text(file, "4242\n");
	} else if (methods[_i] == LB_LINK) {
		/* os.path.join(dirname, "%s%s.%s%s" % (hostname, tname, pid,
		 * hash(path))), unthreaded, a negative hash. */
		snprintf(file, sizeof(file), "%s\\%s.4242-123456789", p.dir,
		    host);
		tl_write_text(file, "");
		ck_assert(CreateHardLinkA(lock, file, NULL));
	} else if (methods[_i] == LB_SQLITE) {
		/* (abspath(path) + ".lock", os.path.join(dirname, "%s%s.%s%s"
		 * % (hostname, "-%x" % thread id, pid, hash(path)))): a
		 * row, no file. */
		full_path(p.path, row, sizeof(row));
		snprintf(lock, sizeof(lock), "%s.lock", row);
		full_path(p.dir, dir, sizeof(dir));
		snprintf(row, sizeof(row), "%s\\%s-1a2b.4242-123456789", dir,
		    host);
		db_insert(l.db, lock, row);
		snprintf(file, sizeof(file), "%s", l.db);
	} else {
		/* os.path.join(lock_file, "%s.%s%s" % (hostname, tname,
		 * pid)), unthreaded. */
		tl_mkdir(lock);
		snprintf(file, sizeof(file), "%s\\%s.4242", lock, host);
		tl_write_text(file, "");
	}
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 4242);
	ck_assert_str_eq(h.host, host);        /* pidfile: taken as ours */
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert(tl_exists(file));
	if (methods[_i] == LB_SQLITE) {
		ck_assert_int_eq(h.tid, 0x1a2b);
		ck_assert_int_eq(db_rows(l.db, NULL, NULL), 1);
	}
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!tl_exists(lock));
	ck_assert_int_eq(db_rows(l.db, NULL, NULL), 0);
	lockfs_fini(&l);
	tl_place_remove(p.dir);
}
END_TEST

/* The symlink method is refused at every step, LB_EFAILED, saying why
 * (the privilege symbolic links need) and what to use instead; it makes
 * nothing (wine's CreateSymbolicLinkW would say it made a link). */
START_TEST(symlink_refused)
{
	static const char *const says[] = { "symlink method", "Windows",
	    "privilege", "link or mkdir method" };
	struct lockfs_holder h;
	struct lockfs_lock   l;
	struct lockfs_err    err;
	struct tl_place      p;
	char                 path[PATH_MAX];
	size_t               i;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	ck_assert_int_eq(lockfs_init(&l, path, LB_SYMLINK, 0, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	for (i = 0; i < sizeof(says) / sizeof(says[0]); i++)
		ck_assert_msg(strstr(err.msg, says[i]) != NULL, "\"%s\" does "
		    "not say %s", err.msg, says[i]);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), LB_EFAILED);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), LB_EFAILED);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_EFAILED);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), LB_EFAILED);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), LB_EFAILED);
	lockfs_fini(&l);
	ck_assert_int_eq(entries(p.dir, NULL, 0), 0);
	tl_place_remove(p.dir);
}
END_TEST

/* The child of method_other_process: takes the lock on path with
 * method, makes the file ready, and waits to be ended.  Never returns
 * but by failing (1). */
static int
hold_lock(const char *method, const char *path, const char *ready)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	HANDLE             h;

	if (lockfs_init(&l, path, (unsigned)atoi(method), 0, &err) != 0 ||
	    lockfs_try_acquire(&l, &err) != 0) {
		fprintf(stderr, "cannot lock %s: %s\n", path, err.msg);
		return 1;
	}
	h = CreateFileA(ready, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 1;
	CloseHandle(h);
	for (;;)
		Sleep(INFINITE);
}

/* ------------------------------------------------------------------ */
/* Handoffs.                                                            */

/* The handles of a test's handoffs on path: a (this process), b (a
 * sleeper's, whose pid is kept to end it), for method. */
struct pair {
	struct lockfs_lock a, b;
	pid_t              kid;
};

static void
pair_make(struct pair *pr, const char *path, unsigned method)
{
	struct lockfs_owner o;
	struct lockfs_err   err;

	ck_assert_int_eq(lockfs_init(&pr->a, path, method, 0, &err), 0);
	pr->kid = other_owner(&o);
	ck_assert_msg(lockfs_init_for(&pr->b, path, method, &o, &err) == 0,
	    "%s", err.msg);
}

static void
pair_free(struct pair *pr)
{
	lockfs_fini(&pr->a);
	lockfs_fini(&pr->b);
	if (pr->kid != 0)
		tl_kill(pr->kid);
}

/* Only l's traces are in l's directory: link: the lock file and l's
 * unique file (two names of one file); mkdir: the lock directory
 * holding l's marker alone. */
static void
assert_only(struct lockfs_lock *l)
{
	struct lockfs_err err;
	char              name[300];

	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 1);
	if (l->method == LB_SQLITE)
		assert_row(l);
	else if (l->method == LB_PIDFILE) {
		ck_assert_int_eq(entries(l->dir, NULL, 0), 1);
		ck_assert(tl_exists(l->lock_file));
	} else if (l->method == LB_LINK) {
		ck_assert_int_eq(entries(l->dir, NULL, 0), 2);
		ck_assert(tl_exists(l->unique));
	} else {
		ck_assert_int_eq(entries(l->dir, NULL, 0), 1);
		ck_assert_int_eq(entries(l->lock_file, name, sizeof(name)), 1);
		ck_assert_str_eq(name, strrchr(l->unique, '/') + 1);
	}
}

/* A to B and back (lockfs_handoff): each time the next holder holds it
 * and the previous does not, may not take nor release it, and its
 * traces go with lockfs_abandon; the last release leaves nothing. */
START_TEST(handoff_cycle)
{
	struct pair       pr;
	struct lockfs_err err;
	struct tl_place   p;
	char              path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pair_make(&pr, path, methods[_i]);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), 0);
	assert_artefact(&pr.a);
	ck_assert_msg(lockfs_handoff(&pr.a, &pr.b, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(lockfs_i_am_locking(&pr.a, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_release(&pr.a, &err), LB_ENOTMINE);
	lockfs_abandon(&pr.a);
	assert_only(&pr.b);
	ck_assert_msg(lockfs_handoff(&pr.b, &pr.a, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(lockfs_i_am_locking(&pr.b, &err), 0);
	lockfs_abandon(&pr.b);
	assert_artefact(&pr.a);
	ck_assert_int_eq(lockfs_release(&pr.a, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	pair_free(&pr);
	tl_place_remove(p.dir);
}
END_TEST

/* Prepared and not finished, the lock is still A's (a third owner is
 * refused); cancelled, A's as before with nothing of B's left; prepared
 * again and finished, B's. */
START_TEST(handoff_prepare_cancel_finish)
{
	struct pair         pr;
	struct lockfs_lock  c;
	struct lockfs_owner o;
	struct lockfs_swap  sw;
	struct lockfs_err   err;
	struct tl_place     p;
	char                path[PATH_MAX];
	pid_t               pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pair_make(&pr, path, methods[_i]);
	pid = other_owner(&o);
	ck_assert_int_eq(lockfs_init_for(&c, path, methods[_i], &o, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), 0);
	ck_assert_msg(lockfs_handoff_prepare(&pr.a, &pr.b, &sw, &err) == 0,
	    "%s", err.msg);
	ck_assert(sw.pending);
	ck_assert_int_eq(lockfs_i_am_locking(&pr.a, &err), 1);
	/* mkdir: both markers are in for now (handoff.c). */
	ck_assert_int_eq(lockfs_i_am_locking(&pr.b, &err),
	    methods[_i] == LB_MKDIR);
	ck_assert_int_eq(lockfs_try_acquire(&c, &err), LB_EALREADY);
	lockfs_abandon(&c);
	lockfs_handoff_cancel(&sw);
	ck_assert(!sw.pending);
	assert_artefact(&pr.a);
	ck_assert_int_eq(lockfs_handoff_prepare(&pr.a, &pr.b, &sw, &err), 0);
	ck_assert_msg(lockfs_handoff_finish(&sw, &err) == 0, "%s", err.msg);
	ck_assert(!sw.pending);
	lockfs_abandon(&pr.a);
	assert_only(&pr.b);
	ck_assert_int_eq(lockfs_release(&pr.b, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	lockfs_fini(&c);
	tl_kill(pid);
	pair_free(&pr);
	tl_place_remove(p.dir);
}
END_TEST

/* What close_later closes, and when. */
struct later {
	int    fd;
	double after;
};

/* A thread: closes l->fd after l->after seconds. */
static DWORD WINAPI
close_later(void *arg)
{
	struct later *l = arg;

	tl_sleep(l->after);
	lockfs_fs_close(l->fd);
	return 0;
}

/*
 * The link (_i 0) and pidfile (1) methods' last step replaces the lock
 * file (PATH.lock, PATH), which Windows refuses
 * while another handle (a reader's) has it open, unless it has POSIX
 * semantics (wine has not): the finish fails, EBUSY, with the lock still
 * A's and the handoff still pending, and succeeds once the reader has
 * closed it; lockfs_handoff tries again meanwhile (up to
 * lockfs_handoff_wait), and gives up, A's, nothing of B's left, when the
 * reader keeps it open.
 */
START_TEST(handoff_reader_has_it_open)
{
	struct pair        pr;
	struct lockfs_swap sw;
	struct lockfs_err  err;
	struct tl_place    p;
	struct later       l;
	char               path[PATH_MAX];
	HANDLE             t;
	int                fd;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pair_make(&pr, path, methods[_i == 0 ? 0 : 2]);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), 0);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, pr.a.lock_file, LOCKFS_FS_READ);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lockfs_handoff_prepare(&pr.a, &pr.b, &sw, &err), 0);
	errno = 0;
	if (lockfs_handoff_finish(&sw, &err) == 0) {
		/* POSIX semantics (Windows 10 1709 on, NTFS). */
		ck_assert_int_eq(lockfs_i_am_locking(&pr.b, &err), 1);
		lockfs_fs_close(fd);
		goto done;
	}
	ck_assert_int_eq(err.code, LB_EFAILED);
	ck_assert_int_eq(err.sys_errno, EBUSY);
	ck_assert(sw.pending);
	ck_assert_int_eq(lockfs_i_am_locking(&pr.a, &err), 1);
	lockfs_fs_close(fd);
	ck_assert_msg(lockfs_handoff_finish(&sw, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(lockfs_i_am_locking(&pr.b, &err), 1);
	/* And back, through lockfs_handoff: a reader that keeps it open
	 * makes it fail, B's, nothing of A's left... */
	lockfs_abandon(&pr.a);
	fd = lockfs_fs_open(LOCKFS_FS_CWD, pr.b.lock_file, LOCKFS_FS_READ);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lockfs_handoff(&pr.b, &pr.a, &err), LB_EFAILED);
	ck_assert_int_eq(err.sys_errno, EBUSY);
	assert_only(&pr.b);
	/* ...one that closes it soon does not. */
	lockfs_handoff_wait(30);
	l.fd = fd;
	l.after = 0.05;
	t = CreateThread(NULL, 0, close_later, &l, 0, NULL);
	ck_assert(t != NULL);
	ck_assert_msg(lockfs_handoff(&pr.b, &pr.a, &err) == 0, "%s", err.msg);
	lockfs_handoff_wait(0.2);
	ck_assert(WaitForSingleObject(t, INFINITE) == WAIT_OBJECT_0);
	CloseHandle(t);
	lockfs_abandon(&pr.b);
	assert_artefact(&pr.a);
	ck_assert_int_eq(lockfs_release(&pr.a, &err), 0);
done:
	lockfs_abandon(&pr.a);
	lockfs_release(&pr.b, &err);
	ck_assert_int_eq(entries(p.dir, NULL, 0), 0);
	pair_free(&pr);
	tl_place_remove(p.dir);
}
END_TEST

/* Handoffs between A and B, as many as can be made in a second and at
 * least 50, while another process polls is_locked: it never sees the
 * lock free, nor fails to tell. */
START_TEST(handoff_never_free)
{
	struct pair        pr;
	struct lockfs_err  err;
	struct tl_place    p;
	struct lockfs_lock *from, *to, *t;
	char               path[PATH_MAX], ready[PATH_MAX], stop[PATH_MAX];
	char               out[PATH_MAX], args[4 * PATH_MAX], buf[64];
	unsigned long      polls = 0, frees = 1, fails = 1;
	double             until;
	pid_t              pid;
	HANDLE             poller;
	DWORD              code = 1;
	int                n;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pair_make(&pr, path, methods[_i]);
	snprintf(ready, sizeof(ready), "%s\\ready", tl_top);
	snprintf(stop, sizeof(stop), "%s\\stop", tl_top);
	snprintf(out, sizeof(out), "%s\\polled", tl_top);
	DeleteFileA(ready);
	DeleteFileA(stop);
	DeleteFileA(out);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), 0);
	snprintf(args, sizeof(args), "--poll-lock %u \"%s\" \"%s\" \"%s\" "
	    "\"%s\"", methods[_i], path, ready, stop, out);
	pid = tl_self_start(args);
	/* Held open: the poller ends by itself once it has written out. */
	poller = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
	    FALSE, (DWORD)pid);
	ck_assert(poller != NULL);
	for (until = tl_now() + 20; !tl_exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(tl_exists(ready), "the poller did not start");
	lockfs_handoff_wait(30);
	from = &pr.a;
	to = &pr.b;
	until = tl_now() + 1;
	for (n = 0; n < 50 || tl_now() < until; n++) {
		ck_assert_msg(lockfs_handoff(from, to, &err) == 0,
		    "handoff %d: %s", n, err.msg);
		lockfs_abandon(from);
		t = from;
		from = to;
		to = t;
	}
	lockfs_handoff_wait(0.2);
	tl_write_text(stop, "");
	for (until = tl_now() + 20; !tl_exists(out) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert(WaitForSingleObject(poller, 20000) == WAIT_OBJECT_0);
	ck_assert(GetExitCodeProcess(poller, &code));
	CloseHandle(poller);
	ck_assert_int_eq(code, 0);
	ck_assert(tl_read_text(out, buf, sizeof(buf)) > 0);
	ck_assert_int_eq(sscanf(buf, "%lu %lu %lu", &polls, &frees, &fails),
	    3);
	ck_assert_msg(polls > 0 && frees == 0 && fails == 0, "%d handoffs: "
	    "%lu polls, free %lu times, failed %lu times", n, polls, frees,
	    fails);
	assert_only(from);
	ck_assert_int_eq(lockfs_release(from, &err), 0);
	assert_left_nothing(p.dir, methods[_i]);
	DeleteFileA(ready);
	DeleteFileA(stop);
	DeleteFileA(out);
	pair_free(&pr);
	tl_place_remove(p.dir);
}
END_TEST

/*
 * No owner can be made for a dead process: a handoff to it is never
 * prepared.  A link handoff prepared by a process that dies before its
 * last step (its directory's lock goes with it; here dropped without the
 * cancel) leaves its temporary and the next holder's unique file: when
 * that holder is dead too (_i == 0) the tidy removes both; a live one's
 * unique file stays (1), for it to take again or remove.
 */
START_TEST(handoff_dead_next_holder)
{
	struct pair         pr;
	struct lockfs_owner o;
	struct lockfs_swap  sw;
	struct lockfs_err   err;
	struct lockfs_fs_info fi;
	struct tl_place     p;
	char                path[PATH_MAX];

	errno = 0;
	ck_assert_int_eq(lockfs_owner_of_pid(&o, tl_dead_pid(), 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pair_make(&pr, path, LB_LINK);
	ck_assert_int_eq(lockfs_try_acquire(&pr.a, &err), 0);
	ck_assert_int_eq(lockfs_handoff_prepare(&pr.a, &pr.b, &sw, &err), 0);
	/* Its preparer dies: what it held goes, what it made stays. */
	lockfs_dirlock_close(&sw.dl);
	free(sw.tmp);
	free(sw.lock_file);
	free(sw.made);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, pr.b.unique, 0,
	    &fi), 0);
	ck_assert_uint_eq(fi.nlink, 2);         /* and its temporary */
	if (_i == 0) {
		tl_kill(pr.kid);
		pr.kid = 0;
	}
	ck_assert_int_eq(lockfs_i_am_locking(&pr.a, &err), 1);
	ck_assert_int_eq(lockfs_release(&pr.a, &err), 0);
	ck_assert_int_eq(lockfs_handoff_tidy(&pr.a, NULL, NULL, &err), 1);
	ck_assert_int_eq(tl_exists(pr.b.unique), _i == 1);
	if (_i == 1) {
		ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD,
		    pr.b.unique, 0, &fi), 0);
		ck_assert_uint_eq(fi.nlink, 1);
		lockfs_abandon(&pr.b);
	}
	ck_assert_int_eq(entries(p.dir, NULL, 0), 0);
	pair_free(&pr);
	tl_place_remove(p.dir);
}
END_TEST

/* The child of handoff_never_free: polls is_locked on path until the
 * file stop exists, having made the file ready after its first poll,
 * then writes "POLLS FREES FAILS" into out.  0, or 1 when it cannot. */
static int
poll_lock(const char *method, const char *path, const char *ready,
    const char *stop, const char *out)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	unsigned long      polls = 0, frees = 0, fails = 0;
	FILE              *f;
	HANDLE             h;
	int                r;

	if (lockfs_init(&l, path, (unsigned)atoi(method), 0, &err) != 0)
		return 1;
	do {
		r = lockfs_is_locked(&l, &err);
		if (r == 0)
			frees++;
		else if (r < 0)
			fails++;
		if (polls++ == 0) {
			h = CreateFileA(ready, GENERIC_WRITE, 0, NULL,
			    CREATE_NEW, 0, NULL);
			if (h == INVALID_HANDLE_VALUE)
				return 1;
			CloseHandle(h);
		}
	} while (GetFileAttributesA(stop) == INVALID_FILE_ATTRIBUTES);
	if ((f = fopen(out, "w")) == NULL)
		return 1;
	fprintf(f, "%lu %lu %lu\n", polls, frees, fails);
	return fclose(f) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* Lock paths.                                                          */

/* path's absolute form is want. */
static void
assert_abs(const char *path, const char *want)
{
	char out[PATH_MAX];

	ck_assert_msg(lockfs_abspath(path, out, sizeof(out)) == 0, "%s: %s",
	    path, strerror(errno));
	ck_assert_msg(strcmp(out, want) == 0, "%s gives %s, not %s", path,
	    out, want);
}

/* Into out, the working directory as lockfs spells it ("Z:/a/b"). */
static void
cwd_slashed(char *out, size_t size)
{
	DWORD n = GetCurrentDirectoryA((DWORD)size, out);
	char *c;

	ck_assert(n > 3 && n < size);
	for (c = out; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	if (out[n - 1] == '/')
		out[n - 1] = '\0';
}

/* Leaves the test's directory dir, for the drive's root, and removes
 * it. */
static void
place_leave(const char *dir)
{
	char root[4];

	snprintf(root, sizeof(root), "%.2s\\", dir);
	ck_assert(SetCurrentDirectoryA(root));
	tl_place_remove(dir);
}

/* Each spelling of a Windows path has the absolute form Python's
 * os.path.abspath gives it, '/' its separator: a drive with '\' or '/',
 * "." and ".." and doubled separators dropped (never above the root), a
 * drive-relative path (the current drive's working directory; another
 * drive's root when it has none), a path rooted on the current drive, a
 * relative one, UNC paths (".." never above the share). */
START_TEST(path_forms)
{
	struct tl_place p;
	char            cwd[PATH_MAX], in[PATH_MAX], want[PATH_MAX];

	tl_place_make(&p, "x");
	ck_assert(SetCurrentDirectoryA(p.dir));
	cwd_slashed(cwd, sizeof(cwd));
	assert_abs("C:\\dir\\f", "C:/dir/f");
	assert_abs("C:/dir/f", "C:/dir/f");
	assert_abs("C:\\dir/.\\sub\\..\\\\f", "C:/dir/f");
	assert_abs("C:\\..\\f", "C:/f");
	snprintf(in, sizeof(in), "%c:f", cwd[0]);
	snprintf(want, sizeof(want), "%s/f", cwd);
	assert_abs(in, want);
	snprintf(in, sizeof(in), "%c:sub\\..\\f", cwd[0]);
	assert_abs(in, want);
	assert_abs(cwd[0] == 'C' ? "D:f" : "C:f", cwd[0] == 'C' ? "D:/f" :
	    "C:/f");
	snprintf(want, sizeof(want), "%c:/dir/f", cwd[0]);
	assert_abs("\\dir\\f", want);
	assert_abs("\\dir\\.\\f", want);
	snprintf(want, sizeof(want), "%s/f", cwd);
	assert_abs("f", want);
	assert_abs(".\\sub\\..\\f", want);
	assert_abs("\\\\server\\share\\dir\\f", "//server/share/dir/f");
	assert_abs("//server/share/dir/../f", "//server/share/f");
	assert_abs("\\\\server\\share\\..\\..\\f", "//server/share/f");
	place_leave(p.dir);
}
END_TEST

/* A lock's file is PATH.lock beside PATH, its directory PATH's (the root
 * keeping its separator: "C:/", "//server/share/"), its unique name in
 * that directory (link, sqlite) or in PATH.lock (mkdir), the sqlite
 * method's database DIR/.lockbroker.sqlite. */
START_TEST(path_lock_names)
{
	static const struct {
		const char *path, *abs, *dir, *db;
	} t[] = {
		{ "C:\\f", "C:/f", "C:/", "C:/" SQ_DB },
		{ "C:/d\\f", "C:/d/f", "C:/d", "C:/d/" SQ_DB },
		{ "C:\\d\\e\\..\\f", "C:/d/f", "C:/d", "C:/d/" SQ_DB },
		{ "\\\\s\\sh\\f", "//s/sh/f", "//s/sh/", "//s/sh/" SQ_DB },
		{ "//s/sh/d/f", "//s/sh/d/f", "//s/sh/d", "//s/sh/d/" SQ_DB },
	};
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               want[PATH_MAX];
	const char        *udir;
	size_t             i, m;

	for (m = 0; m < N_THREADED; m++)
		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			ck_assert_msg(lockfs_init(&l, t[i].path, threaded[m], 0,
			    &err) == 0, "%s: %s", t[i].path, err.msg);
			ck_assert_str_eq(l.path, t[i].abs);
			ck_assert_str_eq(l.dir, t[i].dir);
			snprintf(want, sizeof(want), "%s.lock", t[i].abs);
			ck_assert_str_eq(l.lock_file, want);
			ck_assert_uint_eq(lockfs_dir_len(l.lock_file),
			    strlen(t[i].dir));
			/* link, sqlite: beside the lock file; mkdir: in
			 * it.  sqlite's database in the directory, no
			 * second '/' after a root. */
			udir = threaded[m] == LB_MKDIR ? l.lock_file : l.dir;
			if (threaded[m] == LB_SQLITE)
				ck_assert_str_eq(l.db, t[i].db);
			ck_assert_uint_eq(lockfs_dir_len(l.unique),
			    strlen(udir));
			ck_assert(strncmp(l.unique, udir, strlen(udir)) == 0);
			lockfs_fini(&l);
		}
}
END_TEST

/* What cannot be a lock's path is refused, LB_EINVAL with the path and
 * the reason: device and native paths, devices' names, a separator at
 * the end, a stream's name, characters names cannot hold, UNC paths
 * without a share or a name. */
START_TEST(path_refused)
{
	static const struct {
		const char *path, *why;
	} t[] = {
		{ "\\\\.\\C:\\f", "device" },
		{ "\\\\?\\C:\\f", "native" },
		{ "//./pipe/x", "device" },
		{ "\\\\?\\UNC\\s\\sh\\f", "native" },
		{ "\\??\\C:\\f", "native" },
		{ "NUL", "device's name" },
		{ "con", "device's name" },
		{ "C:\\d\\CON.txt", "device's name" },
		{ "C:\\d\\lpt1", "device's name" },
		{ "C:\\d\\nul ", "device's name" },
		{ "C:\\d\\f\\", "separator" },
		{ "C:/d/f/", "separator" },
		{ "C:\\", "separator" },
		{ "\\\\server", "UNC" },
		{ "\\\\server\\share", "UNC" },
		{ "\\\\server\\share\\", "separator" },
		{ "\\\\\\share\\f", "UNC" },
		{ "C:\\d\\f:s", "stream" },
		{ "C:\\d\\f?", "character" },
		{ "C:\\d\\f*", "character" },
		{ "C:\\d\\f\t", "character" },
	};
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               out[PATH_MAX];
	size_t             i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		errno = 0;
		ck_assert_msg(lockfs_abspath(t[i].path, out, sizeof(out)) ==
		    -1, "%s taken as %s", t[i].path, out);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(lockfs_init(&l, t[i].path, LB_LINK, 0, &err),
		    LB_EINVAL);
		ck_assert_msg(strstr(err.msg, t[i].path) != NULL &&
		    strstr(err.msg, t[i].why) != NULL, "%s: \"%s\" does not "
		    "say %s", t[i].path, err.msg, t[i].why);
	}
}
END_TEST

/* A lock held by another process through one spelling of its path
 * excludes every other spelling of it (the same PATH.lock): drive and
 * '\', drive and '/', relative, drive-relative, rooted on the current
 * drive, with "." and "..", and another case of its name; through one of
 * them it is broken once its holder is ended, taken, and released
 * through another, leaving nothing. */
START_TEST(path_spellings_exclude)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	struct tl_place    p;
	char               abs[PATH_MAX], want[PATH_MAX], ready[PATH_MAX];
	char               sp[8][PATH_MAX], args[3 * PATH_MAX], *c;
	double             until;
	pid_t              pid;
	size_t             i, n = sizeof(sp) / sizeof(sp[0]);

	tl_place_make(&p, "x");
	ck_assert(SetCurrentDirectoryA(p.dir));
	ck_assert_int_eq(lockfs_abspath(p.path, abs, sizeof(abs)), 0);
	ck_assert(abs[1] == ':' && abs[2] == '/');
	snprintf(want, sizeof(want), "%s.lock", abs);
	snprintf(sp[0], PATH_MAX, "%s", p.path);
	snprintf(sp[1], PATH_MAX, "%s", abs);
	snprintf(sp[2], PATH_MAX, "x");
	snprintf(sp[3], PATH_MAX, "%c:x", abs[0]);
	snprintf(sp[4], PATH_MAX, "%s", abs + 2);
	for (c = sp[4]; *c != '\0'; c++)
		if (*c == '/')
			*c = '\\';
	snprintf(sp[5], PATH_MAX, "%s\\sub\\..\\.\\\\x", p.dir);
	snprintf(sp[6], PATH_MAX, ".\\x");
	snprintf(sp[7], PATH_MAX, "%s\\X", p.dir);      /* another case */
	for (i = 0; i < n - 1; i++) {
		ck_assert_int_eq(lockfs_init(&l, sp[i], threaded[_i], 0, &err),
		    0);
		ck_assert_msg(strcmp(l.lock_file, want) == 0, "%s: %s, not %s",
		    sp[i], l.lock_file, want);
		lockfs_fini(&l);
	}

	snprintf(ready, sizeof(ready), "%s\\ready", tl_top);
	DeleteFileA(ready);
	snprintf(args, sizeof(args), "--hold-lock %u \"%s\" \"%s\"",
	    threaded[_i], sp[0], ready);
	pid = tl_self_start(args);
	for (until = tl_now() + 20; !tl_exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(tl_exists(ready), "the child did not lock %s", sp[0]);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(lockfs_init(&l, sp[i], threaded[_i], 0, &err),
		    0);
		ck_assert_msg(lockfs_try_acquire(&l, &err) == LB_EALREADY,
		    "%s taken while another holds %s", sp[i], sp[0]);
		lockfs_abandon(&l);
		ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
		ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
		lockfs_fini(&l);
	}
	tl_kill(pid);
	DeleteFileA(ready);
	ck_assert_int_eq(lockfs_init(&l, sp[3], threaded[_i], 0, &err), 0);
	ck_assert_msg(lockfs_break_stale(&l, &err) == 1, "%s", err.msg);
	lockfs_fini(&l);
	ck_assert_int_eq(lockfs_init(&l, sp[2], threaded[_i], 0, &err), 0);
	ck_assert_msg(lockfs_try_acquire(&l, &err) == 0, "%s", err.msg);
	assert_artefact(&l);
	lockfs_fini(&l);
	ck_assert_int_eq(lockfs_init(&l, sp[4], threaded[_i], 0, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_msg(lockfs_release(&l, &err) == 0, "%s", err.msg);
	lockfs_fini(&l);
	assert_left_nothing(p.dir, threaded[_i]);
	place_leave(p.dir);
}
END_TEST

/* The suite. */
static Suite *
lockfs_win_suite(void)
{
	Suite *s = suite_create("lockfs_win");
	TCase *fs = tcase_create("fs");
	TCase *dl = tcase_create("dirlock");
	TCase *m = tcase_create("methods");
	TCase *pa = tcase_create("paths");
	TCase *ho = tcase_create("handoffs");
	int    n = sizeof(methods) / sizeof(methods[0]);

	tcase_add_test(fs, fs_make_at_once);
	tcase_add_test(fs, fs_link_same_file);
	tcase_add_test(fs, fs_open_refusals);
	tcase_add_test(fs, fs_at_follows_the_directory);
	tcase_add_test(fs, fs_remove);
	tcase_add_test(fs, dir_read_entries);
	suite_add_tcase(s, fs);
	tcase_add_test(dl, dirlock_in_process);
	tcase_add_test(dl, dirlock_per_directory);
	tcase_add_test(dl, dirlock_closed_in_another_thread);
	tcase_add_test(dl, dirlock_other_process);
	suite_add_tcase(s, dl);
	tcase_add_loop_test(m, method_cycle, 0, n);
	tcase_add_loop_test(m, method_timeout_leaves_nothing, 0, n);
	tcase_add_loop_test(m, method_break, 0, n);
	tcase_add_loop_test(m, method_other_process, 0, n);
	tcase_add_loop_test(m, method_reused_pid_stale, 0, N_THREADED);
	tcase_add_loop_test(m, method_threads, 0, N_THREADED);
	tcase_add_loop_test(m, method_lockfile_artefact, 0, n);
	tcase_add_test(m, mkdir_dead_leftover_tidied);
	tcase_add_test(m, symlink_refused);
	suite_add_tcase(s, m);
	tcase_add_test(pa, path_forms);
	tcase_add_test(pa, path_lock_names);
	tcase_add_test(pa, path_refused);
	tcase_add_loop_test(pa, path_spellings_exclude, 0, N_THREADED);
	suite_add_tcase(s, pa);
	tcase_add_loop_test(ho, handoff_cycle, 0, n);
	/* Not sqlite's: its handoff is one transaction, nothing pending. */
	tcase_add_loop_test(ho, handoff_prepare_cancel_finish, 0, n - 1);
	tcase_add_loop_test(ho, handoff_reader_has_it_open, 0, 2);
	tcase_add_loop_test(ho, handoff_never_free, 0, n);
	tcase_add_loop_test(ho, handoff_dead_next_holder, 0, 2);
	suite_add_tcase(s, ho);
	return s;
}

/* main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say. */
int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--hold-dirlock") == 0)
		return hold_dirlock(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--hold-lock") == 0)
		return hold_lock(argv[2], argv[3], argv[4]);
	if (argc == 7 && strcmp(argv[1], "--poll-lock") == 0)
		return poll_lock(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_lockfs_win", lockfs_win_suite(), CK_ENV);
}
