/*
 * check_lockfs_stale.c: lockfs_break_stale: a dead holder's lock is
 * broken, a live holder's never, Python lockfile's names included.
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
/* lockfs_break_stale.                                                  */

/* A dead process's lock is broken, then ours to take. */
START_TEST(test_stale_dead_holder)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
}
END_TEST

/* A live process's lock is never broken, from here or from another
 * process; once it dies, it is. */
START_TEST(test_stale_live_holder)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder before, after;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
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
	unsigned             method = tl_named_methods[_i];
	const char          *host = lockfs_hostname();
	struct lockfs_lock   l;
	struct lockfs_holder before, after;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], name[PATH_MAX];
	char                 base[NAME_MAX + 1];
	const char          *prefix, *who;
	long                 gone = (long)tl_dead_pid();
	int                  i;

	tl_place_in(dir, path, "res");
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
			tl_path_join(name, PATH_MAX, prefix, base);
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
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The "stale" test case. */
TCase *
lockfs_stale_case(void)
{
	TCase *tc = tcase_create("stale");

	tcase_add_loop_test(tc, test_stale_dead_holder, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_stale_live_holder, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_stale_python_names, 0, TL_NNAMED);
	return tc;
}
