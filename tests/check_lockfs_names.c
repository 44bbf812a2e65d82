/*
 * check_lockfs_names.c: lockfs path normalisation against Python's
 * os.path.abspath, and the names lockfs_init gives a lock (lock file,
 * directory, unique name, database) and refuses.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_lockfs.h"
#include "testlockfs.h"

/* ------------------------------------------------------------------ */
/* lockfs_abspath.                                                      */

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
	static char     buf[PY_MAX * PATH_MAX];
	struct tl_child c;
	char           *p;
	size_t          i, len;
	int             status;

	ck_assert_uint_le(n, PY_MAX);
	tl_python_start(&c, script, paths, n);
	len = tl_read_all(c.from, buf, sizeof(buf));
	status = tl_child_wait(&c);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "%s failed (status %#x)", tl_python3(), status);
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

	tl_place_in(dir, path, "res");
	tl_path_join(path, PATH_MAX, dir, "sub");
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
	tl_place_remove(dir);
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
	unsigned           method = tl_all_methods[_i];
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX];
	char               unique[PATH_MAX];
	pid_t              tid = lockfs_gettid();

	tl_place_in(dir, path, "res");
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
		tl_path_join(want, PATH_MAX, dir, SQLITE_DB);
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
	tl_place_remove(dir);
}
END_TEST

/* A relative path is taken from the working directory, normalised. */
START_TEST(test_init_relative)
{
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], cwd[PATH_MAX];
	char               want[PATH_MAX];

	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	init_ok(&l, "sub/./../res/", LB_LINK, 0);
	tl_path_join(want, PATH_MAX, cwd, "res");
	ck_assert_str_eq(l.path, want);
	ck_assert_str_eq(l.dir, cwd);
	ck_assert_int_lt(snprintf(want, sizeof(want), "%s/res.lock", cwd),
	    (int)sizeof(want));
	ck_assert_str_eq(l.lock_file, want);
	lockfs_fini(&l);
	tl_place_remove(dir);
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
	unsigned           method = tl_all_methods[_i];
	struct lockfs_lock l, before;
	char               dir[PATH_MAX], path[PATH_MAX];
	const char        *paths[2];
	size_t             i;

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
}
END_TEST

/* $LOCKBROKER_SQLITE_DB names the database; empty means the default. */
START_TEST(test_init_sqlite_db_env)
{
	struct lockfs_lock l;
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	char               dflt[PATH_MAX];

	tl_place_in(dir, path, "res");
	tl_path_join(db, PATH_MAX, dir, "custom.db");
	tl_path_join(dflt, PATH_MAX, dir, SQLITE_DB);
	ck_assert_int_eq(setenv("LOCKBROKER_SQLITE_DB", db, 1), 0);
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_str_eq(l.db, db);
	acquire_ok(&l);
	ck_assert(tl_exists(db));
	ck_assert(!tl_exists(dflt));
	/* Another process sees the lock in the same database. */
	ck_assert_int_eq(step_in_child(path, LB_SQLITE, STEP_TRY, 0, NULL),
	    LB_EALREADY);
	ck_assert_int_eq(lockfs_release(&l, NULL), 0);
	lockfs_fini(&l);

	ck_assert_int_eq(setenv("LOCKBROKER_SQLITE_DB", "", 1), 0);
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_str_eq(l.db, dflt);
	lockfs_fini(&l);
	tl_place_remove(dir);
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

/* The "abspath" test case. */
TCase *
lockfs_abspath_case(void)
{
	TCase *tc = tcase_create("abspath");

	tcase_add_test(tc, test_abspath_like_python);
	tcase_add_test(tc, test_abspath_from_root);
	tcase_add_test(tc, test_abspath_double_slash);
	tcase_add_test(tc, test_abspath_errors);
	return tc;
}

/* The "init" test case. */
TCase *
lockfs_init_case(void)
{
	TCase *tc = tcase_create("init");

	tcase_add_loop_test(tc, test_init_names, 0, TL_NMETHODS);
	tcase_add_test(tc, test_init_relative);
	tcase_add_test(tc, test_init_in_root);
	tcase_add_loop_test(tc, test_names_drop_make, 0, TL_NMETHODS);
	tcase_add_test(tc, test_init_sqlite_db_env);
	tcase_add_test(tc, test_init_invalid);
	return tc;
}
