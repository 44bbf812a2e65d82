/*
 * check_lockfs_methods.c: the five methods' steps (acquire, release,
 * is_locked, i_am_locking, break) by one owner, by other processes and
 * threads, in missing and unwritable directories; the sqlite method's
 * busy and unreadable databases; and the link method's late release and
 * abandon.
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
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check_lockfs.h"
#include "testlockfs.h"

/* ------------------------------------------------------------------ */
/* The five methods.                                                    */

/* Take, take again, query, holder, release, release again. */
START_TEST(test_method_cycle)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                tid = lockfs_gettid();
	time_t               t0;

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
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

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_SQLITE, 0);
	tl_path_join(db, PATH_MAX, dir, SQLITE_DB);
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
	tl_place_remove(dir);
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

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_SQLITE, 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	acquire_ok(&l);
	ck_assert_int_eq(tl_count(dir), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
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
	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_SQLITE, 0);
	tl_path_join(db, PATH_MAX, dir, SQLITE_DB);
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
	tl_place_remove(dir);
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

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_SQLITE, 0);
	tl_path_join(db, PATH_MAX, dir, SQLITE_DB);
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
	tl_place_remove(dir);
}
END_TEST

/* Another process is another owner. */
START_TEST(test_method_other_process)
{
	unsigned           method = tl_all_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
}
END_TEST

/* Another thread is another owner, except for the pidfile method. */
START_TEST(test_method_other_thread)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_lock   a, b, c;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
}
END_TEST

/* break_lock removes anyone's lock, and is 0 on a free one. */
START_TEST(test_method_break)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                pid;

	tl_place_in(dir, path, "res");
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
	tl_place_remove(dir);
}
END_TEST

/* A missing directory fails at once, and says which. */
START_TEST(test_method_missing_dir)
{
	unsigned           method = tl_all_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], missing[PATH_MAX];

	tl_place_in(dir, path, "res");
	tl_path_join(missing, PATH_MAX, dir, "missing");
	tl_path_join(path, PATH_MAX, missing, "res");
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
	ck_assert_int_eq(tl_count(dir), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A directory we may not write fails at once with EACCES.  As root, the
 * attempt runs in a child that became nobody. */
START_TEST(test_method_unwritable_dir)
{
	unsigned          method = tl_all_methods[_i];
	struct lockfs_err err;
	char              dir[PATH_MAX], path[PATH_MAX], ro[PATH_MAX];

	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 0755), 0);
	tl_path_join(ro, PATH_MAX, dir, "ro");
	ck_assert_int_eq(mkdir(ro, 0555), 0);
	ck_assert_int_eq(chmod(ro, 0555), 0);   /* whatever the umask */
	tl_path_join(path, PATH_MAX, ro, "res");
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 1, &err),
	    LB_EFAILED);
	ck_assert_int_eq(err.code, LB_EFAILED);
	ck_assert_msg(strstr(err.msg, ro) != NULL,
	    "message does not name %s: %s", ro, err.msg);
	if (method != LB_SQLITE)
		ck_assert_msg(err.sys_errno == EACCES, "errno %d: %s",
		    err.sys_errno, err.msg);
	ck_assert_int_eq(tl_count(ro), 0);
	tl_place_remove(dir);
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

	tl_place_in(dir, path, "res");
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	acquire_ok(&a);
	ck_assert_int_eq(step_in_child(path, LB_LINK, STEP_BREAK, 0, NULL), 0);
	ck_assert(!tl_exists(a.unique));   /* break removes the holder's file */
	acquire_ok(&b);
	ck_assert_int_lt(lockfs_release(&a, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 1);
	assert_artefact_is_mine(&b);
	ck_assert_int_eq(tl_count(dir), 2);
	ck_assert_int_eq(lockfs_release(&b, &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	tl_place_remove(dir);
}
END_TEST

/* The same when the breaker was Python's lockfile, whose break_lock
 * removes only PATH.lock and leaves the old owner's unique file. */
START_TEST(test_link_late_release_after_python_break)
{
	struct lockfs_lock a, b;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	acquire_ok(&a);
	ck_assert_int_eq(unlink(a.lock_file), 0);
	ck_assert(tl_exists(a.unique));
	acquire_ok(&b);
	ck_assert_int_eq(lockfs_i_am_locking(&a, &err), 0);
	ck_assert_int_eq(lockfs_release(&a, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_i_am_locking(&b, &err), 1);
	assert_artefact_is_mine(&b);
	ck_assert(!tl_exists(a.unique));   /* the failed release tidied up */
	ck_assert_int_eq(lockfs_release(&b, &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	tl_place_remove(dir);
}
END_TEST

/* abandon removes a failed attempt's unique file, and only that. */
START_TEST(test_link_abandon)
{
	struct lockfs_lock a, b;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&a, path, LB_LINK, 0x1111);
	init_ok(&b, path, LB_LINK, 0x2222);
	lockfs_abandon(&a);                     /* nothing to undo */
	ck_assert_int_eq(tl_count(dir), 0);
	acquire_ok(&a);
	ck_assert_int_eq(lockfs_try_acquire(&b, &err), LB_EALREADY);
	/* A try on a held lock makes nothing (a watcher of the directory is
	 * not woken by waiters that try again and again). */
	ck_assert(!tl_exists(b.unique));
	ck_assert_int_eq(tl_count(dir), 2);
	/* What a try that lost the race to link(2) leaves, abandon removes. */
	close(open(b.unique, O_WRONLY | O_CREAT | O_EXCL, 0644));
	ck_assert(tl_exists(b.unique));
	lockfs_abandon(&b);
	ck_assert(!tl_exists(b.unique));
	ck_assert_int_eq(tl_count(dir), 2);
	/* Abandoning a lock we hold does not drop it. */
	lockfs_abandon(&a);
	assert_artefact_is_mine(&a);
	ck_assert_int_eq(lockfs_release(&a, &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	lockfs_fini(&a);
	lockfs_fini(&b);
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The "methods" test case. */
TCase *
lockfs_methods_case(void)
{
	TCase *tc = tcase_create("methods");

	tcase_add_loop_test(tc, test_method_cycle, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_method_other_process, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_method_other_thread, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_method_break, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_method_missing_dir, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_method_unwritable_dir, 0, TL_NMETHODS);
	tcase_add_test(tc, test_sqlite_busy_reads_as_held);
	tcase_add_test(tc, test_sqlite_reader_at_commit_reads_as_held);
	tcase_add_test(tc, test_sqlite_looks_make_no_database);
	tcase_add_test(tc, test_sqlite_unreadable_reads_as_held);
	return tc;
}

/* The "link" test case. */
TCase *
lockfs_link_case(void)
{
	TCase *tc = tcase_create("link");

	tcase_add_test(tc, test_link_late_release_after_break);
	tcase_add_test(tc, test_link_late_release_after_python_break);
	tcase_add_test(tc, test_link_abandon);
	return tc;
}
