/*
 * check_lockfs.c: unit tests of the lockfs layer (lockfs/lockfs.h): path
 * normalisation against Python's os.path.abspath, lock names, unique names
 * (ours and Python lockfile's), pid files, holder liveness, the five
 * methods' steps, hostile files in lock directories, and breaking stale
 * locks.
 *
 * Every test runs in its own process (check's CK_FORK default) and in its
 * own directory, made by testdir_make() and removed at the test's end.
 * main() points TMPDIR at one private directory for the whole run and
 * removes that last, so that a test failing half way leaves nothing behind
 * either.  Second owners, and dead or live holders, are real processes
 * forked from the test: they report back through a pipe, never call check's
 * assertions, and die with the test (PR_SET_PDEATHSIG).
 *
 * Tests whose comment starts "Regression" keep fixed bugs fixed; each says
 * what was wrong and how it was fixed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lockfs.h"
#include "testdir.h"

#define NOBODY     65534
#define SQLITE_DB  ".lockbroker.sqlite"

/* A step result no lockfs step returns: the child could not drop to
 * nobody. */
#define STEP_NOPRIV 1000

static const unsigned all_methods[] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE, LB_SQLITE
};
#define NMETHODS ((int)(sizeof(all_methods) / sizeof(all_methods[0])))

/* The methods whose unique names are more than the path (not pidfile). */
static const unsigned named_methods[] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_SQLITE
};
#define NNAMED ((int)(sizeof(named_methods) / sizeof(named_methods[0])))

/* ------------------------------------------------------------------ */
/* Helpers.                                                             */

/* Joins dir and name into out (PATH_MAX bytes). */
static void
join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir,
	    name);
}

/* Creates file with the given text, failing the test on error. */
static void
write_text(const char *file, const char *text)
{
	size_t len = strlen(text);
	int    fd;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd != -1, "cannot create %s: %s", file,
	    strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Reads file into buf (NUL-terminated); the length, or -1. */
static ssize_t
read_text(const char *file, char *buf, size_t size)
{
	ssize_t n;
	int     fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* 1 when something (of any type) is at file. */
static int
exists(const char *file)
{
	struct stat st;

	return lstat(file, &st) == 0;
}

/* The entries left in dir, not counting the sqlite method's database. */
static int
artefacts_left(const char *dir)
{
	char db[PATH_MAX];

	join(db, dir, SQLITE_DB);
	return testdir_count(dir) - exists(db);
}

/* Makes this test's private directory, and PATH = DIR/res in it. */
static void
setup_dir(char *dir, char *path)
{
	testdir_make(dir, PATH_MAX);
	join(path, dir, "res");
}

/* Removes this test's private directory. */
static void
cleanup_dir(const char *dir)
{
	if (chdir("/") == -1)
		ck_abort_msg("chdir /: %s", strerror(errno));
	ck_assert_msg(testdir_remove(dir) == 0, "cannot remove %s", dir);
}

/* lockfs_init that must succeed. */
static void
init_ok(struct lockfs_lock *l, const char *path, unsigned method, pid_t tid)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_init(l, path, method, tid, &err);
	ck_assert_msg(r == 0, "lockfs_init(%s, %s): %d %s", path,
	    lockfs_method_name(method), r, err.msg);
}

/* lockfs_try_acquire that must succeed. */
static void
acquire_ok(struct lockfs_lock *l)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_try_acquire(l, &err);
	ck_assert_msg(r == 0, "try_acquire %s (%s): %d %s", l->path,
	    lockfs_method_name(l->method), r, err.msg);
}

/* Writes all of buf to fd; -1 on error.  Used in children. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t     n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to len bytes from fd until EOF; the count read. */
static size_t
read_all(int fd, void *buf, size_t len)
{
	char   *p = buf;
	size_t  got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* A pid that belonged to a process of ours that has exited and been
 * reaped. */
static pid_t
dead_pid(void)
{
	pid_t pid;
	int   status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return pid;
}

/* In a child: dies with the test process, so that no child outlives it. */
static void
die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
}

/* In a child: becomes user and group nobody when root; 0 or -1. */
static int
drop_to_nobody(void)
{
	if (geteuid() != 0)
		return 0;       /* unprivileged already */
	if (setgroups(0, NULL) == -1 ||
	    setresgid(NOBODY, NOBODY, NOBODY) == -1 ||
	    setresuid(NOBODY, NOBODY, NOBODY) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Second owners in child processes.                                   */

enum step {
	STEP_TRY,               /* try_acquire (abandon on failure) */
	STEP_RELEASE,
	STEP_BREAK,
	STEP_IS_LOCKED,
	STEP_I_AM_LOCKING,
	STEP_BREAK_STALE
};

struct step_reply {
	int               r;
	struct lockfs_err err;
};

/* Runs one step on a fresh unthreaded handle for path; the step's result. */
static int
step_run(const char *path, unsigned method, enum step what,
    struct lockfs_err *err)
{
	struct lockfs_lock l;
	int                r;

	if ((r = lockfs_init(&l, path, method, 0, err)) != 0)
		return r;
	switch (what) {
	case STEP_TRY:
		if ((r = lockfs_try_acquire(&l, err)) != 0)
			lockfs_abandon(&l);
		break;
	case STEP_RELEASE:
		r = lockfs_release(&l, err);
		break;
	case STEP_BREAK:
		r = lockfs_break_lock(&l, err);
		break;
	case STEP_IS_LOCKED:
		r = lockfs_is_locked(&l, err);
		break;
	case STEP_I_AM_LOCKING:
		r = lockfs_i_am_locking(&l, err);
		break;
	case STEP_BREAK_STALE:
		r = lockfs_break_stale(&l, err);
		break;
	}
	lockfs_fini(&l);
	return r;
}

/*
 * step_in_child: runs one step on the lock on path as another process (as
 * user nobody when as_nobody and root).  Returns the step's result and, when
 * err is not NULL, the child's err.  A lock the child takes stays taken
 * after it exits.
 */
static int
step_in_child(const char *path, unsigned method, enum step what,
    int as_nobody, struct lockfs_err *err)
{
	struct step_reply reply;
	pid_t             parent = getpid(), pid;
	size_t            n;
	int               fds[2], status;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		die_with_parent(parent);
		close(fds[0]);
		memset(&reply, 0, sizeof(reply));
		if (as_nobody && drop_to_nobody() == -1)
			reply.r = STEP_NOPRIV;
		else
			reply.r = step_run(path, method, what, &reply.err);
		_exit(write_all(fds[1], &reply, sizeof(reply)) == 0 ? 0 : 1);
	}
	close(fds[1]);
	n = read_all(fds[0], &reply, sizeof(reply));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "step child failed: status %#x", status);
	ck_assert_uint_eq(n, sizeof(reply));
	ck_assert_msg(reply.r != STEP_NOPRIV, "cannot become nobody");
	if (err != NULL)
		*err = reply.err;
	return reply.r;
}

/*
 * holder_spawn: a child process takes the lock on path (unthreaded).  When
 * keep, it then holds it until holder_kill(); otherwise it exits at once
 * without releasing and is reaped here, leaving a dead holder's artefact.
 * Returns the child's pid.
 */
static pid_t
holder_spawn(const char *path, unsigned method, int keep)
{
	struct step_reply reply;
	pid_t             parent = getpid(), pid;
	size_t            n;
	int               fds[2], status;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		die_with_parent(parent);
		close(fds[0]);
		memset(&reply, 0, sizeof(reply));
		reply.r = step_run(path, method, STEP_TRY, &reply.err);
		if (write_all(fds[1], &reply, sizeof(reply)) == -1)
			_exit(1);
		close(fds[1]);
		while (keep)
			pause();
		_exit(0);
	}
	close(fds[1]);
	n = read_all(fds[0], &reply, sizeof(reply));
	close(fds[0]);
	ck_assert_uint_eq(n, sizeof(reply));
	ck_assert_msg(reply.r == 0, "holder child's acquire of %s: %d %s",
	    path, reply.r, reply.err.msg);
	if (!keep) {
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return pid;
}

/* Kills a holder that holder_spawn() kept alive, and reaps it. */
static void
holder_kill(pid_t pid)
{
	int status;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

/* ------------------------------------------------------------------ */
/* lockfs_abspath.                                                      */

/* The Python interpreter the build was configured with. */
static const char *
python3(void)
{
	const char *p = getenv("PYTHON3");

	return p != NULL && *p != '\0' ? p : "/usr/bin/python3";
}

#define PY_MAX 32

/*
 * python_abspath: runs the real os.path.abspath on paths[0..n) in this
 * process's working directory and writes each answer into out[i].
 */
static void
python_abspath(const char *const *paths, size_t n, char (*out)[PATH_MAX])
{
	static const char script[] =
	    "import os, sys\n"
	    "for a in sys.argv[1:]:\n"
	    "    sys.stdout.write(os.path.abspath(a) + '\\0')\n";
	static char buf[PY_MAX * PATH_MAX];
	char       *argv[PY_MAX + 4], *p;
	size_t      i, len;
	pid_t       pid;
	int         fds[2], status;

	ck_assert_uint_le(n, PY_MAX);
	argv[0] = (char *)"python3";
	argv[1] = (char *)"-c";
	argv[2] = (char *)script;
	for (i = 0; i < n; i++)
		argv[3 + i] = (char *)paths[i];
	argv[3 + n] = NULL;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], STDOUT_FILENO) == -1)
			_exit(126);
		execv(python3(), argv);
		_exit(127);
	}
	close(fds[1]);
	len = read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "%s failed (status %#x)", python3(), status);
	for (i = 0, p = buf; i < n; i++) {
		ck_assert_msg(p < buf + len, "python gave %zu answers, not %zu",
		    i, n);
		ck_assert_int_lt(snprintf(out[i], PATH_MAX, "%s", p),
		    PATH_MAX);
		p += strlen(p) + 1;
	}
}

/* Checks lockfs_abspath against Python on each of paths[0..n). */
static void
abspath_like_python(const char *const *paths, size_t n)
{
	static char expect[PY_MAX][PATH_MAX];
	char        got[PATH_MAX];
	size_t      i;

	python_abspath(paths, n, expect);
	for (i = 0; i < n; i++) {
		ck_assert_msg(lockfs_abspath(paths[i], got, sizeof(got)) == 0,
		    "lockfs_abspath(\"%s\"): %s", paths[i], strerror(errno));
		ck_assert_msg(strcmp(got, expect[i]) == 0,
		    "lockfs_abspath(\"%s\") = \"%s\", Python says \"%s\"",
		    paths[i], got, expect[i]);
	}
}

/* Relative and absolute paths, in a working directory of our own. */
START_TEST(test_abspath_like_python)
{
	static const char *const paths[] = {
		"a", "a/b/", "./a/./b/.", "a//b", "a/../b", ".", "..",
		"../..", "a/b/../../..", "...", "a/.../b", ".hidden/",
		"x/./../y//", "a/b/c/../../../../../..",
		"/", "/a/", "/a/b/..", "/..", "/../a", "/./a/.", "///a",
		"/a///b//", "/a/b/../../..", "////", "/a/./b/./",
	};
	static const struct {
		const char *in, *out;   /* "@" stands for the cwd */
	} fixed[] = {
		{ "a", "@/a" }, { "a/b/", "@/a/b" }, { ".", "@" },
		{ "a/../b", "@/b" }, { "./a/./b/.", "@/a/b" },
		{ "/", "/" }, { "/a/", "/a" }, { "/a/b/..", "/a" },
		{ "/..", "/" }, { "/../a", "/a" }, { "///a", "/a" },
		{ "/a///b//", "/a/b" }, { "/a/b/../../..", "/" },
	};
	char   dir[PATH_MAX], path[PATH_MAX], cwd[PATH_MAX];
	char   want[PATH_MAX], got[PATH_MAX];
	size_t i;

	setup_dir(dir, path);
	join(path, dir, "sub");
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(chdir(path), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));

	abspath_like_python(paths, sizeof(paths) / sizeof(paths[0]));
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (fixed[i].out[0] == '@')
			snprintf(want, sizeof(want), "%s%s", cwd,
			    fixed[i].out + 1);
		else
			snprintf(want, sizeof(want), "%s", fixed[i].out);
		ck_assert_int_eq(lockfs_abspath(fixed[i].in, got,
		    sizeof(got)), 0);
		ck_assert_str_eq(got, want);
	}
	cleanup_dir(dir);
}
END_TEST

/* ".." cannot climb above "/". */
START_TEST(test_abspath_from_root)
{
	static const char *const paths[] = {
		".", "..", "../..", "a/../..", "./a", "../a/", "a/b/../c",
	};
	char got[PATH_MAX];

	ck_assert_int_eq(chdir("/"), 0);
	abspath_like_python(paths, sizeof(paths) / sizeof(paths[0]));
	ck_assert_int_eq(lockfs_abspath("../..", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "/");
	ck_assert_int_eq(lockfs_abspath("../a/", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "/a");
}
END_TEST

/*
 * Regression: Python keeps exactly two leading slashes (posixpath.normpath:
 * os.path.abspath("//a") == "//a", "//" == "//"; three or more become
 * one), so lockfile's lock file for "//a" is "//a.lock".  lockfs_abspath
 * turned them into one.  On Linux both name the same file, so this only
 * shows in names (lb_lock_file(), sqlite rows), but path.c promises
 * Python's result.  Fixed: in lockfs_abspath, when joined starts with "//"
 * and not "///", start out with "//" (and let ".." not remove it).
 */
START_TEST(test_abspath_double_slash)
{
	static const char *const paths[] = {
		"//", "//a", "//a//b/", "//a/..", "//..",
	};

	ck_assert_int_eq(chdir("/"), 0);
	abspath_like_python(paths, sizeof(paths) / sizeof(paths[0]));
}
END_TEST

/* EINVAL for no path; ENAMETOOLONG when the answer does not fit. */
START_TEST(test_abspath_errors)
{
	static char long_path[PATH_MAX * 3];
	char        out[PATH_MAX];

	errno = 0;
	ck_assert_int_eq(lockfs_abspath("", out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(lockfs_abspath(NULL, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(lockfs_abspath("/a", out, 1), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* "/ab" needs 4 bytes. */
	ck_assert_int_eq(lockfs_abspath("/ab", out, 4), 0);
	ck_assert_str_eq(out, "/ab");
	errno = 0;
	ck_assert_int_eq(lockfs_abspath("/ab", out, 3), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(lockfs_abspath("/", out, 2), 0);
	ck_assert_str_eq(out, "/");

	/* Longer than any buffer, absolute and relative. */
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	errno = 0;
	ck_assert_int_eq(lockfs_abspath(long_path, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	errno = 0;
	ck_assert_int_eq(lockfs_abspath(long_path + 1, out, sizeof(out)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lockfs_init.                                                         */

/* The names of every method's lock on DIR/res, and who owns it. */
START_TEST(test_init_names)
{
	unsigned           method = all_methods[_i];
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX];
	char               unique[PATH_MAX];
	pid_t              tid = lockfs_gettid();

	setup_dir(dir, path);
	init_ok(&l, path, method, tid);
	ck_assert_uint_eq(l.method, method);
	ck_assert_str_eq(l.path, path);
	ck_assert_str_eq(l.dir, dir);
	if (method == LB_PIDFILE)
		ck_assert_str_eq(l.lock_file, path);
	else {
		ck_assert_int_lt(snprintf(want, sizeof(want), "%s.lock",
		    path), (int)sizeof(want));
		ck_assert_str_eq(l.lock_file, want);
	}
	if (method == LB_SQLITE) {
		join(want, dir, SQLITE_DB);
		ck_assert_str_eq(l.db, want);
	} else
		ck_assert_ptr_null(l.db);
	ck_assert_int_eq(l.owner.pid, getpid());
	ck_assert_int_eq(l.owner.tid, method == LB_PIDFILE ? 0 : tid);
	ck_assert_str_eq(l.owner.host, lockfs_hostname());
	ck_assert_uint_ne(l.owner.start, 0);
	ck_assert_int_eq(lockfs_unique_format(&l.owner, method, l.lock_file,
	    unique, sizeof(unique)), 0);
	ck_assert_str_eq(l.unique, unique);
	lockfs_fini(&l);
	ck_assert_ptr_null(l.path);
	ck_assert_ptr_null(l.lock_file);

	/* Unthreaded: no thread in the owner. */
	init_ok(&l, path, method, 0);
	ck_assert_int_eq(l.owner.tid, 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A relative path is taken from the working directory, normalised. */
START_TEST(test_init_relative)
{
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], cwd[PATH_MAX];
	char               want[PATH_MAX];

	setup_dir(dir, path);
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	init_ok(&l, "sub/./../res/", LB_LINK, 0);
	join(want, cwd, "res");
	ck_assert_str_eq(l.path, want);
	ck_assert_str_eq(l.dir, cwd);
	ck_assert_int_lt(snprintf(want, sizeof(want), "%s/res.lock", cwd),
	    (int)sizeof(want));
	ck_assert_str_eq(l.lock_file, want);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A lock in "/" lives in "/", not in "". */
START_TEST(test_init_in_root)
{
	struct lockfs_lock l;

	init_ok(&l, "/res", LB_SQLITE, 0);
	ck_assert_str_eq(l.dir, "/");
	ck_assert_str_eq(l.lock_file, "/res.lock");
	ck_assert_str_eq(l.db, "/" SQLITE_DB);
	lockfs_fini(&l);
	init_ok(&l, "/res", LB_PIDFILE, 0);
	ck_assert_str_eq(l.dir, "/");
	ck_assert_str_eq(l.lock_file, "/res");
	lockfs_fini(&l);
}
END_TEST

/* lockfs_names_drop leaves a lock its path only (and owner, method, the
 * sqlite row flag); lockfs_names_make gives it back the very names
 * lockfs_init made, in a directory and in "/". */
START_TEST(test_names_drop_make)
{
	unsigned           method = all_methods[_i];
	struct lockfs_lock l, before;
	char               dir[PATH_MAX], path[PATH_MAX];
	const char        *paths[2];
	size_t             i;

	setup_dir(dir, path);
	paths[0] = path;
	paths[1] = "/res";
	for (i = 0; i < 2; i++) {
		init_ok(&l, paths[i], method, lockfs_gettid());
		before = l;
		before.lock_file = strdup(l.lock_file);
		before.dir = strdup(l.dir);
		before.db = l.db != NULL ? strdup(l.db) : NULL;
		before.unique = strdup(l.unique);
		l.sqlite_row_ours = 1;
		lockfs_names_drop(&l);
		ck_assert_str_eq(l.path, paths[i]);
		ck_assert_ptr_null(l.lock_file);
		ck_assert_ptr_null(l.dir);
		ck_assert_ptr_null(l.db);
		ck_assert_ptr_null(l.unique);
		ck_assert_int_eq(lockfs_names_make(&l), 0);
		ck_assert_int_eq(lockfs_names_make(&l), 0);    /* kept */
		ck_assert_str_eq(l.lock_file, before.lock_file);
		ck_assert_str_eq(l.dir, before.dir);
		if (before.db != NULL)
			ck_assert_str_eq(l.db, before.db);
		else
			ck_assert_ptr_null(l.db);
		ck_assert_str_eq(l.unique, before.unique);
		ck_assert_int_eq(l.sqlite_row_ours, 1);
		free(before.lock_file);
		free(before.dir);
		free(before.db);
		free(before.unique);
		lockfs_fini(&l);
	}
	cleanup_dir(dir);
}
END_TEST

/* $LOCKBROKER_SQLITE_DB names the database; empty means the default. */
START_TEST(test_init_sqlite_db_env)
{
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	char               dflt[PATH_MAX];

	setup_dir(dir, path);
	join(db, dir, "custom.db");
	join(dflt, dir, SQLITE_DB);
	ck_assert_int_eq(setenv("LOCKBROKER_SQLITE_DB", db, 1), 0);
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_str_eq(l.db, db);
	acquire_ok(&l);
	ck_assert(exists(db));
	ck_assert(!exists(dflt));
	/* Another process sees the lock in the same database. */
	ck_assert_int_eq(step_in_child(path, LB_SQLITE, STEP_TRY, 0, NULL),
	    LB_EALREADY);
	ck_assert_int_eq(lockfs_release(&l, NULL), 0);
	lockfs_fini(&l);

	ck_assert_int_eq(setenv("LOCKBROKER_SQLITE_DB", "", 1), 0);
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_str_eq(l.db, dflt);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Checks that a failed lockfs_init left nothing allocated. */
static void
assert_init_fails(const char *path, unsigned method, int sys_errno)
{
	struct lockfs_lock l;
	struct lockfs_err  err;

	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_init(&l, path, method, 0, &err), LB_EINVAL);
	ck_assert_int_eq(err.code, LB_EINVAL);
	ck_assert_int_eq(err.sys_errno, sys_errno);
	ck_assert_str_ne(err.msg, "");
	ck_assert_ptr_null(l.path);
	ck_assert_ptr_null(l.lock_file);
	ck_assert_ptr_null(l.dir);
	ck_assert_ptr_null(l.db);
}

/* Bad method, no path, a component or a path too long: LB_EINVAL. */
START_TEST(test_init_invalid)
{
	static char        name[NAME_MAX + 2], deep[PATH_MAX + 512];
	struct lockfs_lock l;
	char               path[PATH_MAX * 2];
	size_t             n;

	assert_init_fails("/tmp/x", 7, 0);
	assert_init_fails("/tmp/x", LB_METHOD_MASK, 0);
	assert_init_fails(NULL, LB_LINK, 0);
	assert_init_fails("", LB_LINK, 0);

	/* A basename of 250 bytes still has room for ".lock"; 251 not. */
	memset(name, 'n', 250);
	name[250] = '\0';
	snprintf(path, sizeof(path), "/nonexistent/%s", name);
	init_ok(&l, path, LB_LINK, 0);
	ck_assert_uint_eq(strlen(strrchr(l.lock_file, '/') + 1), NAME_MAX);
	lockfs_fini(&l);
	name[250] = 'n';
	name[251] = '\0';
	snprintf(path, sizeof(path), "/nonexistent/%s", name);
	assert_init_fails(path, LB_LINK, ENAMETOOLONG);
	assert_init_fails(path, LB_PIDFILE, ENAMETOOLONG);

	/* A whole path longer than PATH_MAX. */
	for (n = 0; n + 201 < sizeof(deep); n += 201) {
		deep[n] = '/';
		memset(deep + n + 1, 'd', 200);
	}
	deep[n] = '\0';
	assert_init_fails(deep, LB_MKDIR, ENAMETOOLONG);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Unique names.                                                        */

/* Formats o's name for method, parses it back and compares. */
static void
assert_roundtrip(const struct lockfs_owner *o, unsigned method)
{
	const char          *lock_file = method == LB_PIDFILE ?
	    "/var/lock/res" : "/var/lock/res.lock";
	struct lockfs_holder h;
	char                 name[PATH_MAX];

	ck_assert_int_eq(lockfs_unique_format(o, method, lock_file, name,
	    sizeof(name)), 0);
	switch (method) {
	case LB_PIDFILE:
		ck_assert_str_eq(name, lock_file);
		return;
	case LB_LINK:
	case LB_SQLITE:
		ck_assert_msg(strncmp(name, "/var/lock/", 10) == 0 &&
		    strchr(name + 10, '/') == NULL, "%s", name);
		break;
	case LB_SYMLINK:
		ck_assert_ptr_null(strchr(name, '/'));
		break;
	case LB_MKDIR:
		ck_assert_msg(strncmp(name, "/var/lock/res.lock/", 19) == 0 &&
		    strchr(name + 19, '/') == NULL, "%s", name);
		break;
	}
	lockfs_holder_clear(&h);
	ck_assert_msg(lockfs_unique_parse(name, method, &h) == 0,
	    "cannot parse our own name %s", name);
	ck_assert_str_eq(h.unique, name);
	ck_assert_str_eq(h.host, o->host);
	ck_assert_int_eq(h.pid, o->pid);
	ck_assert_int_eq(h.tid, o->tid);
	ck_assert_uint_eq(h.start, o->start);
	ck_assert_str_eq(h.boot, o->boot);
}

/* Format then parse, for every method, threaded and unthreaded. */
START_TEST(test_unique_roundtrip)
{
	unsigned            method = all_methods[_i / 2];
	int                 threaded = _i % 2;
	struct lockfs_owner o;
	char                a[PATH_MAX], b[PATH_MAX];

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = 4321;
	o.tid = threaded ? 0x1234abcd : 0;
	o.start = 9876543210ULL;
	snprintf(o.boot, sizeof(o.boot), "0123abcd");
	assert_roundtrip(&o, method);

	/* A host name with dots and dashes, and the largest pid. */
	snprintf(o.host, sizeof(o.host), "db-1.example.org");
	o.pid = 0x7fffffff;
	assert_roundtrip(&o, method);

	/* This process, as lockfs_init sees it. */
	ck_assert_int_eq(lockfs_owner_self(&o, threaded), 0);
	ck_assert_int_eq(o.pid, getpid());
	ck_assert_int_eq(o.tid, threaded ? lockfs_gettid() : 0);
	assert_roundtrip(&o, method);

	/* Two locks in one directory get two names. */
	if (method != LB_PIDFILE && method != LB_MKDIR) {
		ck_assert_int_eq(lockfs_unique_format(&o, method,
		    "/var/lock/a.lock", a, sizeof(a)), 0);
		ck_assert_int_eq(lockfs_unique_format(&o, method,
		    "/var/lock/b.lock", b, sizeof(b)), 0);
		ck_assert_str_ne(a, b);
	}

	/* No room: ENAMETOOLONG. */
	errno = 0;
	ck_assert_int_eq(lockfs_unique_format(&o, method, "/var/lock/a.lock",
	    a, 8), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* Parses name with method into a fresh holder; returns the parse result. */
static int
parse(const char *name, unsigned method, struct lockfs_holder *h)
{
	lockfs_holder_clear(h);
	return lockfs_unique_parse(name, method, h);
}

/* The names Python's lockfile 0.12.2 itself writes. */
START_TEST(test_unique_python_names)
{
	const char          *host = lockfs_hostname();
	struct lockfs_holder h;
	char                 name[PATH_MAX];

	/* link/symlink: HOST[-TID].PID<hash>, a negative hash tells the pid */
	snprintf(name, sizeof(name), "/d/%s-7f3a2b.1234-5678", host);
	ck_assert_int_eq(parse(name, LB_LINK, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.tid, 0x7f3a2b);
	ck_assert_int_eq(h.pid, 1234);
	ck_assert_uint_eq(h.start, 0);
	ck_assert_str_eq(h.boot, "");
	ck_assert_str_eq(h.unique, name);

	snprintf(name, sizeof(name), "%s-7f3a2b.1234-5678", host);
	ck_assert_int_eq(parse(name, LB_SYMLINK, &h), 0);
	ck_assert_int_eq(h.pid, 1234);
	ck_assert_int_eq(h.tid, 0x7f3a2b);

	/* a positive hash runs into the pid: unknown */
	snprintf(name, sizeof(name), "/d/%s-7f3a2b.12345678", host);
	ck_assert_int_eq(parse(name, LB_LINK, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);

	/* unthreaded */
	snprintf(name, sizeof(name), "/d/%s.1234-5678", host);
	ck_assert_int_eq(parse(name, LB_SQLITE, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.tid, 0);
	ck_assert_int_eq(h.pid, 1234);

	/* another host: taken whole, dashes and all */
	ck_assert_int_eq(parse("/d/other-7f3a2b.1234-5678", LB_LINK, &h), 0);
	ck_assert_str_eq(h.host, "other-7f3a2b");
	ck_assert_int_eq(h.pid, 1234);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);

	/* mkdir marker: HOST.[-TID]PID */
	snprintf(name, sizeof(name), "/d/res.lock/%s.4242", host);
	ck_assert_int_eq(parse(name, LB_MKDIR, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.pid, 4242);
	ck_assert_int_eq(h.tid, 0);

	/* threaded: tid and pid run together, pid unknown */
	snprintf(name, sizeof(name), "/d/res.lock/%s.-7f3a4242", host);
	ck_assert_int_eq(parse(name, LB_MKDIR, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);
}
END_TEST

/* Malformed names: -1, or no pid; never a crash, never a negative pid. */
START_TEST(test_unique_malformed)
{
	static const char *const names[] = {
		"", ".", "..", "~", ".~", "a~", "-", ".-", "nodots", "/",
		"dir/", "host.", "host.-", "host.-5", "host.abc", "host.12ab",
		"host.1 2", "host. 12", "host.-0000000g12", "host.~",
		"host.~1.deadbeef.00000000", "host.12~", "host.12~x.deadbeef",
		"host.12~1.", "host.12~1.dead", "host.12~1.deadbeeg",
		"host.12~.deadbeef", "host.12~1deadbeef",
		"host.12~99999999999999999999999.deadbeef.00000000",
		"host.99999999999999999999", "host.99999999999999999999-5",
		"host.4294967297-5", "host.2147483648-1", "host.0-5",
		"host.-12345678~1.deadbeef.00000000",
		"host.-1234567~1.deadbeef.00000000",
		"host-.~1.deadbeef", "a/b/c/", "~/.~/..~",
		/* fuzz: a thread id beyond pid_t read as negative */
		"host.-8008a7050~53369.7c075ed1.",
	};
	static char          long_name[4096];
	struct lockfs_holder h;
	size_t               i;
	int                  m, r;

	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (m = 0; m < NNAMED; m++) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			r = parse(names[i], named_methods[m], &h);
			ck_assert_msg(r == -1 || h.pid == 0,
			    "%s name \"%s\": r %d, pid %ld",
			    lockfs_method_name(named_methods[m]), names[i], r,
			    (long)h.pid);
			ck_assert_int_ge(h.pid, 0);
			ck_assert_int_ge(h.tid, 0);
			ck_assert_uint_lt(strlen(h.unique), sizeof(h.unique));
			ck_assert_uint_lt(strlen(h.host), sizeof(h.host));
		}
		r = parse(long_name, named_methods[m], &h);
		ck_assert_int_eq(r, -1);
		ck_assert_uint_eq(strlen(h.unique), sizeof(h.unique) - 1);
	}
}
END_TEST

/*
 * Regression: the mkdir marker's pid is taken without the range check the other
 * shapes have, so "HOST.4294967297" names pid 1 (init: "alive") and
 * "HOST.2147483648" a negative pid.  Fixed (owner.c, lockfs_unique_parse,
 * mkdir branch): `if (parse_decimal(p, end, &v) == 0 && v <= 0x7fffffff)`.
 */
START_TEST(test_unique_mkdir_pid_range)
{
	static const char *const names[] = {
		"host.4294967297", "host.2147483648", "host.4294967297~1.deadbeef",
		"host.-0000abcd4294967297~1.deadbeef",
	};
	struct lockfs_holder h;
	size_t               i;
	int                  r;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		r = parse(names[i], LB_MKDIR, &h);
		ck_assert_msg(r == -1 || h.pid == 0,
		    "mkdir name \"%s\": r %d, pid %ld", names[i], r,
		    (long)h.pid);
	}
}
END_TEST

/*
 * Regression: with no boot id (/proc/sys/kernel/random/boot_id unreadable),
 * lockfs_unique_format writes "~START.0.HASH", which lockfs_unique_parse
 * rejects (it wants 8 hex digits), so the holder's pid is lost and a dead
 * holder is never found stale.  Fixed: write "00000000" for an unknown boot
 * (and let liveness treat it as unknown), or accept "0" in the parser.
 */
START_TEST(test_unique_unknown_boot)
{
	struct lockfs_owner o;
	int                 m;

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = 4321;
	o.start = 777;
	for (m = 0; m < NNAMED; m++)
		assert_roundtrip(&o, named_methods[m]);
}
END_TEST

/*
 * Regression: a mkdir marker is HOST.[-TID]PID: its thread id comes after the dot,
 * never in the host part.  But the parser splits "-HEX" off the host part
 * when the rest is this host's name, so the lock of host "LOCAL-cafe" (a
 * real, other host sharing the directory) is read as this host's thread
 * 0xcafe, and judged by a local pid: break_stale may then break another
 * host's live lock.  Fixed (owner.c, lockfs_unique_parse, mkdir branch):
 * copy the host part verbatim instead of calling parse_host_tid().
 */
START_TEST(test_unique_mkdir_foreign_host)
{
	struct lockfs_owner  o;
	struct lockfs_holder h;
	char                 host[LOCKFS_HOST_MAX], name[PATH_MAX];

	snprintf(host, sizeof(host), "%s-cafe", lockfs_hostname());

	/* Python's marker */
	snprintf(name, sizeof(name), "/d/res.lock/%s.%ld", host,
	    (long)dead_pid());
	ck_assert_int_eq(parse(name, LB_MKDIR, &h), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_int_eq(h.tid, 0);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);

	/* ours */
	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", host);
	o.pid = 4321;
	o.start = 777;
	snprintf(o.boot, sizeof(o.boot), "0123abcd");
	assert_roundtrip(&o, LB_MKDIR);
}
END_TEST

/*
 * Regression: our unthreaded name "HOST.PID~..." on a host whose name ends in "-"
 * and 8 hex digits ("build-20240101") parses as host "build", thread
 * 0x20240101: the holder is then on "another host", its liveness unknown,
 * and break_stale never breaks its locks on that machine.  Fixed (owner.c,
 * parse_host_tid): when the whole part equals this host's name, take it as
 * the host with no thread; or always write a thread field in our names.
 * Runs in a private UTS namespace (needs root); skipped otherwise.
 */
START_TEST(test_unique_hostname_hex_tail)
{
	static const char    hostname[] = "build-20240101";
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;
	int                  status, code;

	setup_dir(dir, path);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* Nothing in this process has asked lockfs for the host name
		 * yet, so it reads the new one. */
		if (unshare(CLONE_NEWUTS) == -1 ||
		    sethostname(hostname, strlen(hostname)) == -1)
			_exit(77);
		if (lockfs_init(&l, path, LB_LINK, 0, &err) != 0 ||
		    lockfs_try_acquire(&l, &err) != 0)
			_exit(10);
		code = 0;
		if (lockfs_holder(&l, &h, &err) != 1)
			code = 11;
		else if (strcmp(h.host, hostname) != 0)
			code = 12;
		else if (h.tid != 0)
			code = 13;
		else if (lockfs_holder_liveness(&h) != LB_HOLDER_ALIVE)
			code = 14;
		lockfs_release(&l, &err);
		_exit(code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	code = WEXITSTATUS(status);
	if (code == 77)
		fprintf(stderr, "test_unique_hostname_hex_tail: skipped, "
		    "cannot set a host name in a new UTS namespace\n");
	else
		ck_assert_msg(code == 0, "on host %s: %s", hostname,
		    code == 10 ? "cannot take the lock" :
		    code == 11 ? "holder() does not see our lock" :
		    code == 12 ? "holder's host is not the host name" :
		    code == 13 ? "an unthreaded holder has a thread" :
		    "our own lock's holder is not alive");
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lockfs_pid_parse and lockfs_holder_liveness.                         */

START_TEST(test_pid_parse)
{
	static const struct {
		const char *text;
		int         r;
		pid_t       pid;
	} cases[] = {
		{ "123\n", 0, 123 },
		{ "  123  \n", 0, 123 },
		{ "123\nextra", 0, 123 },
		{ "123", 0, 123 },
		{ "\t42\r\n", 0, 42 },
		{ "2147483647\n", 0, 2147483647 },
		{ "", -1, 0 },
		{ "\n", -1, 0 },
		{ "   \n", -1, 0 },
		{ "abc", -1, 0 },
		{ "12abc\n", -1, 0 },
		{ "12 3\n", -1, 0 },
		{ "-5\n", -1, 0 },
		{ "0", -1, 0 },
		{ "0\n", -1, 0 },
		{ "\n123", -1, 0 },
		{ "2147483648", -1, 0 },
		{ "4294967297", -1, 0 },
		{ "99999999999999999999", -1, 0 },
		{ "999999999999999999999999999999\n", -1, 0 },
	};
	size_t i;
	pid_t  pid;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid = -7;
		ck_assert_msg(lockfs_pid_parse(cases[i].text,
		    strlen(cases[i].text), &pid) == cases[i].r,
		    "\"%s\": not %d", cases[i].text, cases[i].r);
		if (cases[i].r == 0)
			ck_assert_int_eq(pid, cases[i].pid);
	}
	/* Only len bytes are read. */
	ck_assert_int_eq(lockfs_pid_parse("1234", 2, &pid), 0);
	ck_assert_int_eq(pid, 12);
	ck_assert_int_eq(lockfs_pid_parse("12\n34", 5, &pid), 0);
	ck_assert_int_eq(pid, 12);
}
END_TEST

START_TEST(test_liveness)
{
	struct lockfs_owner  self;
	struct lockfs_holder h;
	pid_t                gone = dead_pid();

	ck_assert_int_eq(lockfs_owner_self(&self, 0), 0);

	/* This process, with and without its start time and boot. */
	lockfs_holder_clear(&h);
	snprintf(h.host, sizeof(h.host), "%s", self.host);
	h.pid = getpid();
	h.start = self.start;
	memcpy(h.boot, self.boot, sizeof(h.boot));
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	h.start = 0;
	h.boot[0] = '\0';
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	h.host[0] = '\0';       /* a pid file names no host */
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);

	/* Our pid, but another start time: the pid was reused. */
	snprintf(h.host, sizeof(h.host), "%s", self.host);
	h.start = self.start + 12345;
	memcpy(h.boot, self.boot, sizeof(h.boot));
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);

	/* Our pid and start, but an earlier boot. */
	h.start = self.start;
	ck_assert_str_ne(self.boot, "");
	h.boot[0] = self.boot[0] == '0' ? '1' : '0';
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);

	/* A reaped child's pid. */
	lockfs_holder_clear(&h);
	snprintf(h.host, sizeof(h.host), "%s", self.host);
	h.pid = gone;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	h.host[0] = '\0';
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);

	/* Another host: we cannot tell, whatever the pid. */
	snprintf(h.host, sizeof(h.host), "other-host.invalid");
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);
	h.pid = getpid();
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);
	memcpy(h.boot, "00000000", 9);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);

	/* No pid: unknown. */
	lockfs_holder_clear(&h);
	snprintf(h.host, sizeof(h.host), "%s", self.host);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);

	/* init, which is not ours to signal when we are not root. */
	h.pid = 1;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The five methods.                                                    */

/* Checks that l's artefact is on disk in lockfile's format, ours. */
static void
assert_artefact_is_mine(struct lockfs_lock *l)
{
	struct stat lk, un;
	char        buf[PATH_MAX], want[64];
	ssize_t     n;

	switch (l->method) {
	case LB_LINK:
		ck_assert_int_eq(lstat(l->lock_file, &lk), 0);
		ck_assert_int_eq(lstat(l->unique, &un), 0);
		ck_assert(S_ISREG(lk.st_mode));
		ck_assert_uint_eq(lk.st_nlink, 2);
		ck_assert(lk.st_ino == un.st_ino && lk.st_dev == un.st_dev);
		break;
	case LB_SYMLINK:
		n = readlink(l->lock_file, buf, sizeof(buf) - 1);
		ck_assert_int_gt(n, 0);
		buf[n] = '\0';
		ck_assert_str_eq(buf, l->unique);
		break;
	case LB_MKDIR:
		ck_assert_int_eq(lstat(l->lock_file, &lk), 0);
		ck_assert(S_ISDIR(lk.st_mode));
		ck_assert_int_eq(testdir_count(l->lock_file), 1);
		ck_assert_int_eq(lstat(l->unique, &un), 0);
		ck_assert(S_ISREG(un.st_mode));
		ck_assert_int_eq(un.st_size, 0);
		break;
	case LB_PIDFILE:
		ck_assert_int_gt(read_text(l->lock_file, buf, sizeof(buf)), 0);
		snprintf(want, sizeof(want), "%ld\n", (long)getpid());
		ck_assert_str_eq(buf, want);
		break;
	case LB_SQLITE:
		ck_assert(exists(l->db));
		ck_assert(!exists(l->lock_file));
		break;
	}
}

/* Take, take again, query, holder, release, release again. */
START_TEST(test_method_cycle)
{
	unsigned             method = all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                tid = lockfs_gettid();
	time_t               t0;

	setup_dir(dir, path);
	init_ok(&l, path, method, tid);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 0);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_str_eq(h.host, "");
	ck_assert(h.uid == (uid_t)-1);

	t0 = time(NULL);
	acquire_ok(&l);
	acquire_ok(&l);                         /* re-entrant */
	assert_artefact_is_mine(&l);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);

	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, getpid());
	ck_assert_int_eq(h.tid, method == LB_PIDFILE ? 0 : tid);
	ck_assert_str_eq(h.host, lockfs_hostname());
	ck_assert_str_eq(h.unique, l.unique);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	if (method != LB_PIDFILE) {
		ck_assert_uint_eq(h.start, l.owner.start);
		ck_assert_str_eq(h.boot, l.owner.boot);
	}
	if (method != LB_SQLITE) {      /* a row has no owner or mtime */
		ck_assert_uint_eq(h.uid, geteuid());
		ck_assert_msg(h.since >= (double)t0 - 2 &&
		    h.since <= (double)time(NULL) + 2, "since %f, now %ld",
		    h.since, (long)time(NULL));
	}

	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(err.code, LB_ENOTLOCKED);
	ck_assert_int_eq(artefacts_left(dir), 0);

	/* And once more, after a release. */
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/*
 * Regression: a busy sqlite database (another process inside a write
 * transaction) made try_acquire wait 5 s and then fail with LB_EFAILED, so
 * lb_acquire(LB_FOREVER) gave up.  Now a busy database reads as held:
 * LB_EALREADY, promptly, and the lock is taken once the database is free.
 */
START_TEST(test_sqlite_busy_reads_as_held)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	struct timespec    t0, t1;
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	sqlite3           *other;
	double             took;

	setup_dir(dir, path);
	init_ok(&l, path, LB_SQLITE, 0);
	join(db, dir, SQLITE_DB);
	ck_assert_int_eq(sqlite3_open(db, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "CREATE TABLE IF NOT EXISTS locks "
	    "(lock_file varchar(32), unique_name varchar(32)); "
	    "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(took < 3.0, "a busy database held us %.1f s", took);
	ck_assert_msg(strstr(err.msg, "busy") != NULL, "reason: %s", err.msg);

	ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(other);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/*
 * Regression: the sqlite method's looks and removals (is_locked,
 * i_am_locking, holder, release, break) created the database where there
 * was none: the daemon, running them for any user, made root-owned files
 * in any directory.  Only try_acquire makes it now; without it the lock
 * is free.
 */
START_TEST(test_sqlite_looks_make_no_database)
{
	struct lockfs_holder h;
	struct lockfs_lock   l;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_eq(testdir_count(dir), 0);
	acquire_ok(&l);
	ck_assert_int_eq(testdir_count(dir), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/*
 * Regression: a writer that keeps others from reading the sqlite database
 * (EXCLUSIVE while it commits, or PENDING while it waits for readers to
 * leave) made a try's plain look fail with LB_EFAILED ("cannot begin:
 * database is locked") once the step's wait ran out: the daemon, which
 * waits 200 ms, refused ACQUIREs of the sqlite method under load.  It
 * reads as held now.
 */
START_TEST(test_sqlite_unreadable_reads_as_held)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	sqlite3           *other;

	lockfs_sqlite_busy(5, 200);     /* the daemon's waits */
	setup_dir(dir, path);
	init_ok(&l, path, LB_SQLITE, 0);
	join(db, dir, SQLITE_DB);
	ck_assert_int_eq(sqlite3_open(db, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "CREATE TABLE IF NOT EXISTS locks "
	    "(lock_file varchar(32), unique_name varchar(32)); "
	    "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_msg(strstr(err.msg, "busy") != NULL, "reason: %s", err.msg);

	ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(other);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
	lockfs_sqlite_busy(50, 10000);  /* the defaults again */
}
END_TEST

/*
 * Regression: a reader inside the sqlite database (a read transaction, as
 * every waiter's plain look has for a moment) made a try's COMMIT fail
 * with LB_EFAILED.  It reads as held now, and the row is not left behind.
 */
START_TEST(test_sqlite_reader_at_commit_reads_as_held)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	sqlite3           *other;
	sqlite3_stmt      *st;

	setup_dir(dir, path);
	init_ok(&l, path, LB_SQLITE, 0);
	join(db, dir, SQLITE_DB);
	ck_assert_int_eq(sqlite3_open(db, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "CREATE TABLE IF NOT EXISTS locks "
	    "(lock_file varchar(32), unique_name varchar(32)); BEGIN",
	    NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(other, "SELECT * FROM locks", -1,
	    &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);  /* SHARED held */

	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_msg(strstr(err.msg, "busy") != NULL, "reason: %s", err.msg);

	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(other);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);   /* rolled back */
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Another process is another owner. */
START_TEST(test_method_other_process)
{
	unsigned           method = all_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, method, lockfs_gettid());
	acquire_ok(&l);
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 0, &err),
	    LB_EALREADY);
	ck_assert_int_eq(err.code, LB_EALREADY);
	ck_assert_int_eq(step_in_child(path, method, STEP_RELEASE, 0, &err),
	    LB_ENOTMINE);
	ck_assert_int_eq(err.code, LB_ENOTMINE);
	ck_assert_int_eq(step_in_child(path, method, STEP_IS_LOCKED, 0, NULL),
	    1);
	ck_assert_int_eq(step_in_child(path, method, STEP_I_AM_LOCKING, 0,
	    NULL), 0);
	/* The failed attempts took nothing from us and left nothing. */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	assert_artefact_is_mine(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);

	ck_assert_int_eq(step_in_child(path, method, STEP_IS_LOCKED, 0, NULL),
	    0);
	ck_assert_int_eq(step_in_child(path, method, STEP_RELEASE, 0, &err),
	    LB_ENOTLOCKED);
	ck_assert_int_eq(step_in_child(path, method, STEP_BREAK, 0, NULL), 0);

	/* The other way round: the child's lock outlives the child. */
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 0, NULL), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Another thread is another owner, except for the pidfile method. */
START_TEST(test_method_other_thread)
{
	unsigned             method = all_methods[_i];
	struct lockfs_lock   a, b, c;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&a, path, method, 0x1111);
	init_ok(&b, path, method, 0x2222);
	init_ok(&c, path, method, 0);           /* the unthreaded owner */
	acquire_ok(&a);
	if (method == LB_PIDFILE) {
		/* One owner per process: b and c are a. */
		ck_assert_str_eq(b.unique, a.unique);
		acquire_ok(&b);
		ck_assert_int_eq(lockfs_i_am_locking(&c, &err), 1);
		ck_assert_int_eq(lockfs_release(&b, &err), 0);
		ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 0);
		goto out;
	}
	ck_assert_str_ne(b.unique, a.unique);
	ck_assert_str_ne(c.unique, a.unique);
	ck_assert_int_eq(lockfs_try_acquire(&b, &err), LB_EALREADY);
	lockfs_abandon(&b);
	ck_assert_int_eq(lockfs_try_acquire(&c, &err), LB_EALREADY);
	lockfs_abandon(&c);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&c, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&b, &err), 1);
	ck_assert_int_eq(lockfs_release(&b, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_release(&c, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 1);
	assert_artefact_is_mine(&a);
	ck_assert_int_eq(lockfs_holder(&b, &h, &err), 1);
	ck_assert_int_eq(h.tid, 0x1111);

	/* b breaks a's lock and takes it. */
	ck_assert_int_eq(lockfs_break_lock(&b, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&a, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 0);
	acquire_ok(&b);
	ck_assert_int_eq(lockfs_holder(&a, &h, &err), 1);
	ck_assert_int_eq(h.tid, 0x2222);
	ck_assert_int_eq(h.pid, getpid());
	ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 0);
	ck_assert_int_eq(lockfs_release(&a, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 1);
	ck_assert_int_eq(lockfs_release(&b, &err), 0);
out:
	ck_assert_int_eq(artefacts_left(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	lockfs_fini(&c);
	cleanup_dir(dir);
}
END_TEST

/* break_lock removes anyone's lock, and is 0 on a free one. */
START_TEST(test_method_break)
{
	unsigned             method = all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	setup_dir(dir, path);
	init_ok(&l, path, method, 0);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);

	/* Ours, broken by another process. */
	acquire_ok(&l);
	ck_assert_int_eq(step_in_child(path, method, STEP_BREAK, 0, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(artefacts_left(dir), 0);

	/* A live process's, broken by us. */
	pid = holder_spawn(path, method, 1);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.tid, 0);
	ck_assert_str_eq(h.host, lockfs_hostname());
	if (method != LB_SQLITE)
		ck_assert_uint_eq(h.uid, geteuid());
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	holder_kill(pid);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A missing directory fails at once, and says which. */
START_TEST(test_method_missing_dir)
{
	unsigned           method = all_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], missing[PATH_MAX];

	setup_dir(dir, path);
	join(missing, dir, "missing");
	join(path, missing, "res");
	init_ok(&l, path, method, 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_int_eq(err.code, LB_EFAILED);
	ck_assert_msg(strstr(err.msg, missing) != NULL,
	    "message does not name %s: %s", missing, err.msg);
	if (method != LB_SQLITE)
		ck_assert_int_eq(err.sys_errno, ENOENT);
	lockfs_abandon(&l);
	/* Nothing there, and (sqlite) no database made to say so. */
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(testdir_count(dir), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A directory we may not write fails at once with EACCES.  As root, the
 * attempt runs in a child that became nobody. */
START_TEST(test_method_unwritable_dir)
{
	unsigned          method = all_methods[_i];
	struct lockfs_err err;
	char              dir[PATH_MAX], path[PATH_MAX], ro[PATH_MAX];

	setup_dir(dir, path);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	join(ro, dir, "ro");
	ck_assert_int_eq(mkdir(ro, 0555), 0);
	ck_assert_int_eq(chmod(ro, 0555), 0);   /* whatever the umask */
	join(path, ro, "res");
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 1, &err),
	    LB_EFAILED);
	ck_assert_int_eq(err.code, LB_EFAILED);
	ck_assert_msg(strstr(err.msg, ro) != NULL,
	    "message does not name %s: %s", ro, err.msg);
	if (method != LB_SQLITE)
		ck_assert_msg(err.sys_errno == EACCES, "errno %d: %s",
		    err.sys_errno, err.msg);
	ck_assert_int_eq(testdir_count(ro), 0);
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The link method.                                                     */

/* The lockfile bug we fix: after break_lock, the old owner's late release
 * must not remove the new holder's lock. */
START_TEST(test_link_late_release_after_break)
{
	struct lockfs_lock a, b;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	acquire_ok(&a);
	ck_assert_int_eq(step_in_child(path, LB_LINK, STEP_BREAK, 0, NULL), 0);
	ck_assert(!exists(a.unique));   /* break removes the holder's file */
	acquire_ok(&b);
	ck_assert_int_lt(lockfs_release(&a, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 1);
	assert_artefact_is_mine(&b);
	ck_assert_int_eq(testdir_count(dir), 2);
	ck_assert_int_eq(lockfs_release(&b, &err), 0);
	ck_assert_int_eq(testdir_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	cleanup_dir(dir);
}
END_TEST

/* The same when the breaker was Python's lockfile, whose break_lock
 * removes only PATH.lock and leaves the old owner's unique file. */
START_TEST(test_link_late_release_after_python_break)
{
	struct lockfs_lock a, b;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	acquire_ok(&a);
	ck_assert_int_eq(unlink(a.lock_file), 0);
	ck_assert(exists(a.unique));
	acquire_ok(&b);
	ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 0);
	ck_assert_int_eq(lockfs_release(&a, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 1);
	assert_artefact_is_mine(&b);
	ck_assert(!exists(a.unique));   /* the failed release tidied up */
	ck_assert_int_eq(lockfs_release(&b, &err), 0);
	ck_assert_int_eq(testdir_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	cleanup_dir(dir);
}
END_TEST

/* abandon removes a failed attempt's unique file, and only that. */
START_TEST(test_link_abandon)
{
	struct lockfs_lock a, b;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	lockfs_abandon(&a);                     /* nothing to undo */
	ck_assert_int_eq(testdir_count(dir), 0);
	acquire_ok(&a);
	ck_assert_int_eq(lockfs_try_acquire(&b, &err), LB_EALREADY);
	/* A try on a held lock makes nothing (a watcher of the directory is
	 * not woken by waiters that try again and again). */
	ck_assert(!exists(b.unique));
	ck_assert_int_eq(testdir_count(dir), 2);
	/* What a try that lost the race to link(2) leaves, abandon removes. */
	close(open(b.unique, O_WRONLY | O_CREAT | O_EXCL, 0644));
	ck_assert(exists(b.unique));
	lockfs_abandon(&b);
	ck_assert(!exists(b.unique));
	ck_assert_int_eq(testdir_count(dir), 2);
	/* Abandoning a lock we hold does not drop it. */
	lockfs_abandon(&a);
	assert_artefact_is_mine(&a);
	ck_assert_int_eq(lockfs_release(&a, &err), 0);
	ck_assert_int_eq(testdir_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile files.                                                       */

/* A symlink planted where the link method's unique file goes is not
 * followed: no file is created or truncated through it. */
START_TEST(test_hostile_link_unique_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	char               buf[64];

	setup_dir(dir, path);
	init_ok(&l, path, LB_LINK, 0);
	join(target, dir, "target");
	ck_assert_int_eq(symlink(target, l.unique), 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_msg(strstr(err.msg, l.unique) != NULL, "%s", err.msg);
	ck_assert(!exists(target));
	ck_assert(!exists(l.lock_file));

	/* An existing target keeps its contents. */
	write_text(target, "precious\n");
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_int_eq(read_text(target, buf, sizeof(buf)), 9);
	ck_assert_str_eq(buf, "precious\n");
	ck_assert(!exists(l.lock_file));
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* PATH.lock a directory (the mkdir method's, or anyone's): the link
 * method sees it locked, never its own. */
START_TEST(test_hostile_link_lock_is_dir)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_LINK, 0);
	ck_assert_int_eq(mkdir(l.lock_file, 0755), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(testdir_count(dir), 1);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* An mkdir lock whose holder finds the next holder's marker beside its
 * own when it releases (a handoff that added it and did not get to remove
 * the old one): its marker goes, the lock stays, now the other's. */
START_TEST(test_mkdir_release_after_handoff_marker)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], next[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_MKDIR, 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	join(next, l.lock_file, "otherhost.-00000001999");
	write_text(next, "");
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert(!exists(l.unique));
	ck_assert(exists(next));
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A pidfile PATH that is a directory: locked; break_lock refuses it and
 * its contents survive. */
START_TEST(test_hostile_pidfile_is_dir)
{
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], inner[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_PIDFILE, 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	join(inner, path, "data");
	write_text(inner, "keep me\n");
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_break_lock(&l, &err), LB_EUNLOCK);
	ck_assert_int_eq(err.code, LB_EUNLOCK);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert(exists(inner));
	ck_assert_int_eq(testdir_count(path), 1);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A pid file holding garbage: locked by an unknown holder, not us. */
START_TEST(test_hostile_pidfile_garbage)
{
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], buf[64];

	setup_dir(dir, path);
	init_ok(&l, path, LB_PIDFILE, 0);
	write_text(path, "not a pid\n");
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_gt(read_text(path, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "not a pid\n");
	/* Empty: the same. */
	write_text(path, "");
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert(exists(path));
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A pidfile PATH that is a symlink: never written through, and a break
 * removes the link, not its target. */
START_TEST(test_hostile_pidfile_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	char               buf[64];

	setup_dir(dir, path);
	init_ok(&l, path, LB_PIDFILE, 0);
	join(target, dir, "target");
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	write_text(target, buf);        /* even naming us */
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!exists(path));
	ck_assert_int_gt(read_text(target, buf, sizeof(buf)), 0);
	ck_assert_int_eq(atoi(buf), getpid());
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A mkdir PATH.lock that is a symlink to a directory: not ours, and a break
 * removes the link, not the directory it points at. */
START_TEST(test_hostile_mkdir_lock_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
	char               inner[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_MKDIR, 0);
	join(other, dir, "other");
	ck_assert_int_eq(mkdir(other, 0755), 0);
	join(inner, other, "data");
	write_text(inner, "keep me\n");
	ck_assert_int_eq(symlink(other, l.lock_file), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!exists(l.lock_file));
	ck_assert(exists(inner));
	ck_assert_int_eq(testdir_count(other), 1);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Forged artefacts: another user's, under our unique name.             */

/* The file methods, whose artefacts have an owner uid. */
static const unsigned file_methods[] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE
};
#define NFILE ((int)(sizeof(file_methods) / sizeof(file_methods[0])))

/*
 * Plants l's artefact, carrying l's exact unique name (names are
 * predictable: host, pid, start time and boot id are public), as this
 * process's files; forged_give then makes them another user's, as if
 * that user had made them.
 */
static void
forged_plant(struct lockfs_lock *l)
{
	char text[32];

	switch (l->method) {
	case LB_LINK:
		write_text(l->unique, "");
		ck_assert_int_eq(link(l->unique, l->lock_file), 0);
		break;
	case LB_SYMLINK:
		ck_assert_int_eq(symlink(l->unique, l->lock_file), 0);
		break;
	case LB_MKDIR:
		ck_assert_int_eq(mkdir(l->lock_file, 0777), 0);
		write_text(l->unique, "");
		break;
	default:        /* LB_PIDFILE */
		snprintf(text, sizeof(text), "%ld\n", (long)getpid());
		write_text(l->lock_file, text);
		break;
	}
}

/* Gives file (not followed) to uid. */
static void
give(const char *file, uid_t uid)
{
	ck_assert_msg(lchown(file, uid, (gid_t)-1) == 0, "lchown %s: %s",
	    file, strerror(errno));
}

/* Checks that l does not take the planted artefact for its own: not
 * "mine", not taken (held by another), not released, still there. */
static void
assert_forged_not_mine(struct lockfs_lock *l)
{
	struct lockfs_err err;
	int               r;

	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 0);
	r = lockfs_try_acquire(l, &err);
	/* link: the planted unique file is refused outright */
	ck_assert_msg(r == LB_EALREADY ||
	    (l->method == LB_LINK && r == LB_EFAILED),
	    "try_acquire of a forged %s artefact: %d %s",
	    lockfs_method_name(l->method), r, err.msg);
	lockfs_abandon(l);
	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 0);
	ck_assert_int_eq(lockfs_release(l, &err), LB_ENOTMINE);
	ck_assert(exists(l->lock_file));
}

/*
 * Regression: an artefact was judged ours by its name alone.  Another
 * user who may write the directory (a sticky /tmp) planted a link,
 * symlink, mkdir or pid-file artefact carrying our unique name: we took
 * the lock as ours (try_acquire 0, i_am_locking 1), and once the planter
 * removed its file a second owner got the lock too.  Now an artefact is
 * ours only when it is also a file of our uid (and, for link, our unique
 * file's inode; for mkdir, the directory and the marker both).  One of
 * our uid under our name still is ours.
 */
START_TEST(test_forged_artefact_not_mine)
{
	unsigned           method = file_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	if (geteuid() != 0)
		return;         /* only root can make another user's files */
	setup_dir(dir, path);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, method, method == LB_PIDFILE ? 0 : 0x4242);
	forged_plant(&l);
	/* Of our uid: ours (a grant a dead daemon did not record). */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	switch (method) {
	case LB_LINK:
		give(l.unique, NOBODY);         /* the one inode */
		break;
	case LB_MKDIR:
		give(l.unique, NOBODY);
		give(l.lock_file, NOBODY);
		break;
	default:
		give(l.lock_file, NOBODY);
		break;
	}
	assert_forged_not_mine(&l);
	/* The planter removes its file: the lock is free for the next
	 * owner, and we never thought we held it. */
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 0, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/*
 * Regression (with test_forged_artefact_not_mine): the mkdir method's
 * lock is ours only when the directory and the marker are both ours.  A
 * directory of another user holding a marker of ours (a hard link of one
 * of our markers, where hard links to others' files are allowed) is that
 * user's to empty and remove; a marker of another's in our directory is
 * not ours either.
 */
START_TEST(test_forged_mkdir_halves)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	if (geteuid() != 0)
		return;
	setup_dir(dir, path);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, LB_MKDIR, 0);
	forged_plant(&l);
	give(l.lock_file, NOBODY);              /* theirs, our marker */
	assert_forged_not_mine(&l);
	give(l.lock_file, geteuid());
	give(l.unique, NOBODY);                 /* ours, their marker */
	assert_forged_not_mine(&l);
	give(l.unique, geteuid());
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Inserts (lock_file, unique) into the sqlite method's table in db,
 * making db and the table when needed. */
static void
sqlite_insert(const char *db, const char *lock_file, const char *unique)
{
	sqlite3      *h;
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TABLE IF NOT EXISTS locks ("
	    "lock_file varchar(32), unique_name varchar(32))", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "INSERT INTO locks VALUES "
	    "(?1, ?2)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, lock_file, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, unique, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/*
 * Regression: a sqlite row under our name was ours, whoever wrote it.  In
 * a database others may write, another user inserted a row with our
 * unique name: we took the lock as ours.  A row names no user, so now it
 * is ours only when we wrote it through this lock, or when the database
 * is a file of our uid that nobody else may write.
 */
START_TEST(test_forged_sqlite_row_not_mine)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	setup_dir(dir, path);
	init_ok(&l, path, LB_SQLITE, 0x4242);
	sqlite_insert(l.db, l.lock_file, l.unique);
	ck_assert_int_eq(chmod(l.db, 0666), 0);         /* shared */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_msg(strstr(err.msg, l.db) != NULL, "%s", err.msg);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	/* Only our uid can write it: the row is ours. */
	ck_assert_int_eq(chmod(l.db, 0644), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	/* In a shared database, what we wrote ourselves is ours. */
	ck_assert_int_eq(chmod(l.db, 0666), 0);
	acquire_ok(&l);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Copies file from to file to (made, or truncated). */
static void
copy_file(const char *from, const char *to)
{
	char    buf[65536];
	ssize_t n;
	int     in, out;

	ck_assert_int_ne(in = open(from, O_RDONLY | O_CLOEXEC), -1);
	ck_assert_int_ne(out = open(to, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644), -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		write_all(out, buf, (size_t)n);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

/*
 * Makes journal a hot rollback journal that puts back the pages of copy,
 * a copy of a lock database: a child writes to copy in a transaction big
 * enough to spill its pages (the originals go to copy's journal first)
 * and dies before it commits; its journal is then moved to journal.
 * Nothing in a journal names its database.
 */
static void
make_hot_journal(const char *copy, const char *journal)
{
	char    cj[PATH_MAX + 8];
	pid_t   kid;
	int     status;

	ck_assert_int_ne(kid = fork(), -1);
	if (kid == 0) {
		sqlite3 *h;
		int      i;

		if (sqlite3_open(copy, &h) != SQLITE_OK ||
		    sqlite3_exec(h, "PRAGMA cache_size=2; BEGIN; DELETE FROM "
		    "locks", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		for (i = 0; i < 200; i++)
			if (sqlite3_exec(h, "INSERT INTO locks VALUES "
			    "(hex(randomblob(500)), hex(randomblob(500)))",
			    NULL, NULL, NULL) != SQLITE_OK)
				_exit(1);
		_exit(0);       /* no COMMIT: the journal stays hot */
	}
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "journal maker failed");
	snprintf(cj, sizeof(cj), "%s-journal", copy);
	ck_assert_msg(exists(cj), "no hot journal %s", cj);
	ck_assert_int_eq(rename(cj, journal), 0);
}

/*
 * Regression: a hot journal another user put beside a lock database was
 * rolled back into it by the next open: with a journal made from a copy of
 * the database taken before our row was there, our row vanished and a
 * second owner could take the lock.  Now a journal that is neither the
 * database owner's nor the opener's is refused, the step fails naming it,
 * and our row stays.  Our own hot journal (a crash of ours) is still
 * rolled back: shown with the same journal, which would have erased the
 * row.
 */
START_TEST(test_sqlite_foreign_journal_refused)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], copy[PATH_MAX];
	char               journal[PATH_MAX];
	int                r;

	if (geteuid() != 0)
		return;
	setup_dir(dir, path);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, LB_SQLITE, 0x4242);
	acquire_ok(&l);                 /* makes the database ... */
	ck_assert_int_eq(lockfs_release(&l, &err), 0);  /* ... empty */
	join(copy, dir, "copy.sqlite");
	copy_file(l.db, copy);
	acquire_ok(&l);
	snprintf(journal, sizeof(journal), "%s-journal", l.db);
	make_hot_journal(copy, journal);
	give(journal, NOBODY);

	r = lockfs_i_am_locking(&l, &err);
	ck_assert_msg(r < 0, "a planted journal was used: %d %s", r, err.msg);
	ck_assert_msg(strstr(err.msg, journal) != NULL &&
	    strstr(err.msg, "uid 65534") != NULL,
	    "the message does not name the journal and its user: %s",
	    err.msg);
	ck_assert(exists(journal));     /* not rolled back */
	ck_assert_int_eq(lockfs_is_locked(&l, &err), LB_ERROR);
	ck_assert_int_ne(lockfs_try_acquire(&l, &err), 0);

	/* The very journal, as ours: rolled back, and the row is gone. */
	give(journal, geteuid());
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert(!exists(journal));

	/* A write-ahead log is never opened. */
	acquire_ok(&l);
	snprintf(journal, sizeof(journal), "%s-wal", l.db);
	write_text(journal, "not a log\n");      /* sqlite ignores empty */
	r = lockfs_is_locked(&l, &err);
	ck_assert_msg(r < 0 && strstr(err.msg, journal) != NULL, "%d %s", r,
	    err.msg);
	ck_assert_int_eq(unlink(journal), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lockfs_break_stale.                                                  */

/* A dead process's lock is broken, then ours to take. */
START_TEST(test_stale_dead_holder)
{
	unsigned             method = all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	setup_dir(dir, path);
	init_ok(&l, path, method, 0);
	pid = holder_spawn(path, method, 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_msg(lockfs_break_stale(&l, &err) == 1, "%s", err.msg);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);      /* link: its file too */
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);     /* we live */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);     /* not held */
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* A live process's lock is never broken, from here or from another
 * process; once it dies, it is. */
START_TEST(test_stale_live_holder)
{
	unsigned             method = all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder before, after;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	setup_dir(dir, path);
	init_ok(&l, path, method, 0);
	pid = holder_spawn(path, method, 1);
	ck_assert_int_eq(lockfs_holder(&l, &before, &err), 1);
	ck_assert_int_eq(before.pid, pid);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_eq(step_in_child(path, method, STEP_BREAK_STALE, 0,
	    NULL), 0);
	ck_assert_int_eq(lockfs_holder(&l, &after, &err), 1);
	ck_assert_str_eq(after.unique, before.unique);
	ck_assert_int_eq(after.pid, pid);
	ck_assert(after.ino == before.ino && after.dev == before.dev);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);

	holder_kill(pid);
	ck_assert_msg(lockfs_break_stale(&l, &err) == 1, "%s", err.msg);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* Takes the lock on path with the method as an owner of the given unique
 * name (a Python lockfile name), in this process. */
static void
forge_holder(const char *path, unsigned method, const char *unique)
{
	struct lockfs_lock f;

	init_ok(&f, path, method, 0);
	free(f.unique);
	ck_assert_ptr_nonnull(f.unique = strdup(unique));
	acquire_ok(&f);
	lockfs_fini(&f);
}

/* Python lockfile's names: broken only when they name a dead pid on this
 * host. */
START_TEST(test_stale_python_names)
{
	unsigned             method = named_methods[_i];
	const char          *host = lockfs_hostname();
	struct lockfs_lock   l;
	struct lockfs_holder before, after;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], name[PATH_MAX];
	char                 base[NAME_MAX + 1];
	const char          *prefix, *who;
	long                 gone = (long)dead_pid();
	int                  i;

	setup_dir(dir, path);
	init_ok(&l, path, method, 0);
	prefix = method == LB_SYMLINK ? "" : method == LB_MKDIR ?
	    l.lock_file : dir;
	for (i = 0; i < 3; i++) {
		/* 0: pid unknown; 1: another host's; 2: our dead pid */
		who = i == 1 ? "other.invalid" : host;
		if (i == 0)
			snprintf(base, sizeof(base), "%s.%s", who,
			    method == LB_MKDIR ? "-7f3a4242" : "12345678");
		else
			snprintf(base, sizeof(base), "%s.%ld%s", who, gone,
			    method == LB_MKDIR ? "" : "-5678");
		if (*prefix != '\0')
			join(name, prefix, base);
		else
			snprintf(name, sizeof(name), "%s", base);
		forge_holder(path, method, name);
		ck_assert_int_eq(lockfs_holder(&l, &before, &err), 1);
		ck_assert_str_eq(before.unique, name);
		ck_assert_int_eq(before.pid, i == 0 ? 0 : gone);
		if (i < 2) {
			ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
			ck_assert_int_eq(lockfs_holder(&l, &after, &err), 1);
			ck_assert_str_eq(after.unique, name);
			ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
		} else
			ck_assert_msg(lockfs_break_stale(&l, &err) == 1,
			    "%s: %s", name, err.msg);
		ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
		ck_assert_int_eq(artefacts_left(dir), 0);
	}
	lockfs_fini(&l);
	cleanup_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
lockfs_suite(void)
{
	Suite *s = suite_create("lockfs");
	TCase *tc;

	tc = tcase_create("abspath");
	tcase_add_test(tc, test_abspath_like_python);
	tcase_add_test(tc, test_abspath_from_root);
	tcase_add_test(tc, test_abspath_double_slash);
	tcase_add_test(tc, test_abspath_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("init");
	tcase_add_loop_test(tc, test_init_names, 0, NMETHODS);
	tcase_add_test(tc, test_init_relative);
	tcase_add_test(tc, test_init_in_root);
	tcase_add_loop_test(tc, test_names_drop_make, 0, NMETHODS);
	tcase_add_test(tc, test_init_sqlite_db_env);
	tcase_add_test(tc, test_init_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("owner");
	tcase_add_loop_test(tc, test_unique_roundtrip, 0, NMETHODS * 2);
	tcase_add_test(tc, test_unique_python_names);
	tcase_add_test(tc, test_unique_malformed);
	tcase_add_test(tc, test_unique_mkdir_pid_range);
	tcase_add_test(tc, test_unique_unknown_boot);
	tcase_add_test(tc, test_unique_mkdir_foreign_host);
	tcase_add_test(tc, test_unique_hostname_hex_tail);
	tcase_add_test(tc, test_pid_parse);
	tcase_add_test(tc, test_liveness);
	suite_add_tcase(s, tc);

	tc = tcase_create("methods");
	tcase_add_loop_test(tc, test_method_cycle, 0, NMETHODS);
	tcase_add_loop_test(tc, test_method_other_process, 0, NMETHODS);
	tcase_add_loop_test(tc, test_method_other_thread, 0, NMETHODS);
	tcase_add_loop_test(tc, test_method_break, 0, NMETHODS);
	tcase_add_loop_test(tc, test_method_missing_dir, 0, NMETHODS);
	tcase_add_loop_test(tc, test_method_unwritable_dir, 0, NMETHODS);
	tcase_add_test(tc, test_sqlite_busy_reads_as_held);
	tcase_add_test(tc, test_sqlite_reader_at_commit_reads_as_held);
	tcase_add_test(tc, test_sqlite_looks_make_no_database);
	tcase_add_test(tc, test_sqlite_unreadable_reads_as_held);
	suite_add_tcase(s, tc);

	tc = tcase_create("link");
	tcase_add_test(tc, test_link_late_release_after_break);
	tcase_add_test(tc, test_link_late_release_after_python_break);
	tcase_add_test(tc, test_link_abandon);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_test(tc, test_hostile_link_unique_symlink);
	tcase_add_test(tc, test_hostile_link_lock_is_dir);
	tcase_add_test(tc, test_hostile_pidfile_is_dir);
	tcase_add_test(tc, test_mkdir_release_after_handoff_marker);
	tcase_add_test(tc, test_hostile_pidfile_garbage);
	tcase_add_test(tc, test_hostile_pidfile_symlink);
	tcase_add_test(tc, test_hostile_mkdir_lock_symlink);
	suite_add_tcase(s, tc);

	tc = tcase_create("forged");
	tcase_add_loop_test(tc, test_forged_artefact_not_mine, 0, NFILE);
	tcase_add_test(tc, test_forged_mkdir_halves);
	tcase_add_test(tc, test_forged_sqlite_row_not_mine);
	tcase_add_test(tc, test_sqlite_foreign_journal_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("stale");
	tcase_add_loop_test(tc, test_stale_dead_holder, 0, NMETHODS);
	tcase_add_loop_test(tc, test_stale_live_holder, 0, NMETHODS);
	tcase_add_loop_test(tc, test_stale_python_names, 0, NNAMED);
	suite_add_tcase(s, tc);

	return s;
}

/*
 * main: runs the suite with TMPDIR pointing at a private directory that is
 * removed at the end, whatever the tests left.  Exit 0 when every test
 * passed.
 */
int
main(void)
{
	SRunner *sr;
	char     top[PATH_MAX];
	int      failed;

	/* The sqlite tests use the per-directory database. */
	unsetenv("LOCKBROKER_SQLITE_DB");
	testdir_make(top, sizeof(top));
	/* Reachable by the child that becomes nobody. */
	if (chmod(top, 0755) == -1 || setenv("TMPDIR", top, 1) == -1) {
		perror(top);
		testdir_remove(top);
		return EXIT_FAILURE;
	}
	sr = srunner_create(lockfs_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (testdir_remove(top) == -1) {
		fprintf(stderr, "cannot remove %s\n", top);
		failed++;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
