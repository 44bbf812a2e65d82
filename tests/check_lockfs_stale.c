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
/* Temporaries of the mkdir method's left by processes killed half way. */

/*
 * Plants, beside lock_file, the temporary DIR/.lockbroker-mkdir.MARKER
 * that owner o would leave if killed half way through putting lock_file's
 * directory together or taking it away (a directory holding o's marker),
 * and writes its path into out.
 */
static void
plant_tmp(const char *dir, const char *lock_file,
    const struct lockfs_owner *o, char *out)
{
	char marker[PATH_MAX], name[NAME_MAX + 1], inner[PATH_MAX];

	ck_assert_int_eq(lockfs_unique_format(o, LB_MKDIR, lock_file, marker,
	    sizeof(marker)), 0);
	snprintf(name, sizeof(name), ".lockbroker-mkdir.%s",
	    strrchr(marker, '/') + 1);
	tl_path_join(out, PATH_MAX, dir, name);
	ck_assert_int_eq(mkdir(out, 0777), 0);
	tl_path_join(inner, PATH_MAX, out, strrchr(marker, '/') + 1);
	tl_write_text(inner, "");
}

/*
 * A lock taken with the mkdir method removes the temporaries of that lock
 * left by dead processes of this host that are the caller's own (by name
 * and by owner); a live process's, another user's (root only), another
 * lock's, and a symlink at such a name (not followed) stay.
 */
START_TEST(test_stale_mkdir_temporaries_tidied)
{
	struct lockfs_owner dead, live, other_user;
	struct lockfs_lock  l;
	struct lockfs_err   err;
	char                dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
	char                t_dead[PATH_MAX], t_live[PATH_MAX];
	char                t_user[PATH_MAX], t_other[PATH_MAX];
	char                t_link[PATH_MAX], target[PATH_MAX];
	char                inner[PATH_MAX];
	pid_t               sleeper = tl_sleeper_start();

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	ck_assert_int_eq(lockfs_owner_self(&dead, 0), 0);
	dead.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &dead, t_dead);
	ck_assert_int_eq(lockfs_owner_of_pid(&live, sleeper, 0), 0);
	plant_tmp(dir, l.lock_file, &live, t_live);
	tl_path_join(other, PATH_MAX, dir, "other.lock");
	plant_tmp(dir, other, &dead, t_other);
	other_user = dead;
	other_user.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &other_user, t_user);
	if (geteuid() == 0)
		ck_assert_int_eq(lchown(t_user, TL_NOBODY, (gid_t)-1), 0);
	/* A symlink named as a dead process's temporary, to a directory of
	 * ours: neither it nor what it points at is touched. */
	tl_path_join(target, PATH_MAX, dir, "target");
	ck_assert_int_eq(mkdir(target, 0755), 0);
	tl_path_join(inner, PATH_MAX, target, "keep");
	tl_write_text(inner, "");
	dead.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &dead, t_link);
	tl_place_remove(t_link);
	ck_assert_int_eq(symlink(target, t_link), 0);

	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_msg(!tl_exists(t_dead), "%s stayed", t_dead);
	ck_assert(tl_exists(t_live));
	ck_assert_int_eq(tl_count(t_live), 1);
	ck_assert(tl_exists(t_other));
	ck_assert(tl_exists(t_link));
	ck_assert(tl_exists(inner));
	if (geteuid() == 0)
		ck_assert_msg(tl_exists(t_user), "another user's %s went",
		    t_user);
	else
		ck_assert(!tl_exists(t_user));
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	tl_kill(sleeper);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/*
 * The tidy's guarantee, kept where a look at the directory's link count
 * spares it reading the directory: a dead process's temporary of the
 * lock goes at the next lock taken and at the next lock taken away by a
 * process of its uid, also when it is the one subdirectory besides
 * PATH.lock (counted as there just after the lock is taken, as gone just
 * after it is taken away); a live process's stays.
 */
START_TEST(test_stale_mkdir_temporary_alone_tidied)
{
	struct lockfs_owner dead, live;
	struct lockfs_lock  l;
	struct lockfs_err   err;
	char                dir[PATH_MAX], path[PATH_MAX];
	char                t_dead[PATH_MAX], t_live[PATH_MAX];
	pid_t               sleeper;

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	ck_assert_int_eq(lockfs_owner_self(&dead, 0), 0);
	/* Taken: the temporary, alone beside where PATH.lock goes. */
	dead.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &dead, t_dead);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_msg(!tl_exists(t_dead), "%s stayed at the acquire", t_dead);
	/* Taken away: the temporary, alone beside PATH.lock. */
	dead.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &dead, t_dead);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_msg(!tl_exists(t_dead), "%s stayed at the release", t_dead);
	ck_assert_int_eq(artefacts_left(dir), 0);
	/* A live process's, alone, stays through both. */
	sleeper = tl_sleeper_start();
	ck_assert_int_eq(lockfs_owner_of_pid(&live, sleeper, 0), 0);
	plant_tmp(dir, l.lock_file, &live, t_live);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert(tl_exists(t_live));
	ck_assert_int_eq(tl_count(t_live), 1);
	tl_kill(sleeper);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/*
 * Directories read in more than one call: a dead process's temporary
 * among 3,000 subdirectories still goes at the acquire (the tidy's
 * reads), and a lock directory holding 300 markers is broken whole (its
 * reads, then emptied at its temporary).
 */
START_TEST(test_stale_mkdir_large_directories)
{
	struct lockfs_owner dead;
	struct lockfs_lock  l;
	struct lockfs_err   err;
	char                dir[PATH_MAX], path[PATH_MAX], sub[PATH_MAX];
	char                t_dead[PATH_MAX], name[64];
	int                 i;

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	for (i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "subdirectory-%04d", i);
		tl_path_join(sub, PATH_MAX, dir, name);
		ck_assert_int_eq(mkdir(sub, 0755), 0);
	}
	ck_assert_int_eq(lockfs_owner_self(&dead, 0), 0);
	dead.pid = tl_dead_pid();
	plant_tmp(dir, l.lock_file, &dead, t_dead);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_msg(!tl_exists(t_dead), "%s stayed", t_dead);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "otherhost.-%011d", i);
		tl_path_join(sub, PATH_MAX, l.lock_file, name);
		tl_write_text(sub, "");
	}
	ck_assert_int_eq(tl_count(l.lock_file), 301);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!tl_exists(l.lock_file));
	ck_assert_int_eq(tl_count(dir), 3000);
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
	tcase_add_test(tc, test_stale_mkdir_temporaries_tidied);
	tcase_add_test(tc, test_stale_mkdir_temporary_alone_tidied);
	tcase_add_test(tc, test_stale_mkdir_large_directories);
	return tc;
}
