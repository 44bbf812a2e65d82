/*
 * check_owners.c: the library's registry of owners (client/owners.c),
 * through its internal calls: the marks of releases answered pending
 * (lb__owners_unfinished) are dropped when the daemon shows the handoff
 * over (lb__owners_finished), and kept within their bound: past it a
 * mark is spilled, and a lock file on a spilled lock that still names
 * its owner is never taken for that owner's own while the owner holds
 * nothing there; and the release owed after a RELEASE lost with the
 * daemon (lb__owners_lost_release) lasts only while the owner holds the
 * lock.  The files are real lock files (the link method) in a private
 * directory, made by lockfs for this process.  The library's whole
 * behaviour over the daemon: check_broker.
 */
#include <check.h>
#include <stdio.h>

#include "lockfs.h"
#include "client/owners.h"
#include "testlib.h"

/* A lock of its own in a fresh place: its path, in-process handle (this
 * process, no thread) and registry key (owner: the process). */
struct one {
	struct tl_place      p;
	struct lockfs_lock   fs;
	struct lb__owner_key k;
};

/* Makes o's lock, named name, in a fresh place (not locked). */
static void
one_make(struct one *o, const char *name)
{
	struct lockfs_err err;

	tl_place_make(&o->p, name);
	ck_assert_int_eq(lockfs_init(&o->fs, o->p.path, LB_LINK, 0, &err), 0);
	o->k.lock_file = o->fs.lock_file;
	o->k.method = LB_LINK;
	o->k.tid = 0;
}

/* Takes o's lock file for this process, as a handoff not yet done would
 * have left it: naming the owner. */
static void
one_named(struct one *o)
{
	struct lockfs_err err;

	ck_assert_int_eq(lockfs_try_acquire(&o->fs, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&o->fs, &err), 1);
}

/* Removes o's lock file and frees its handle. */
static void
one_end(struct one *o)
{
	struct lockfs_err err;

	(void)lockfs_release(&o->fs, &err);
	lockfs_fini(&o->fs);
}

/* Marks n owners of locks named fill-N in their own directory, lock
 * files that do not exist (their marks are kept: nothing is looked at). */
static void
fill(unsigned n)
{
	struct lb__owner_key k = { NULL, LB_LINK, 0 };
	struct tl_place      p;
	char                 file[PATH_MAX + 32];
	unsigned             i;

	tl_place_make(&p, "fill");
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s-%u.lock", p.path, i);
		k.lock_file = file;
		lb__owners_unfinished(&k);
	}
}

/* A mark is set by a pending release and kept while the lock file names
 * its owner (looked at: still named); the daemon showing the handoff
 * over drops it: the owner's own (not another thread's), or with all
 * every owner's of the process on that lock; then the same lock file,
 * naming the owner, is its own again (no mark: 0). */
START_TEST(test_finished_drops_marks)
{
	struct lb__owner_key thread;
	struct one           o;

	one_make(&o, "lk");
	thread = o.k;
	thread.tid = 4242;
	one_named(&o);
	lb__owners_unfinished(&o.k);
	lb__owners_unfinished(&thread);
	ck_assert_uint_eq(lb__owners_marks(), 2);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	lb__owners_finished(&o.k, 0);
	ck_assert_uint_eq(lb__owners_marks(), 1);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 0);
	lb__owners_finished(&o.k, 1);
	ck_assert_uint_eq(lb__owners_marks(), 0);
	one_end(&o);
}
END_TEST

/* A mark is also dropped by a look that finds the lock file naming its
 * owner no more, and by a grant of the lock to the owner afresh. */
START_TEST(test_look_and_grant_drop_marks)
{
	struct one o;

	one_make(&o, "lk");
	lb__owners_unfinished(&o.k);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 0);
	ck_assert_uint_eq(lb__owners_marks(), 0);
	lb__owners_unfinished(&o.k);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	ck_assert_uint_eq(lb__owners_marks(), 0);
	one_end(&o);
}
END_TEST

/* Past LB__OWNERS_MARKS_MAX marks of owners that hold nothing, marks are
 * not kept (their number stays at the bound) but spilled: a lock file on
 * a spilled lock that names its owner is not its own (1, every time:
 * never dropped) while the owner holds nothing there; once the owner
 * takes it afresh it is (0), and after its release it is not again.
 * A lock file that names the owner no more is no matter (0). */
START_TEST(test_marks_bounded_spilled_kept)
{
	struct lockfs_err err;
	struct one        o;
	uint64_t          epoch;

	one_make(&o, "lk");
	fill(LB__OWNERS_MARKS_MAX + 20);
	ck_assert_uint_eq(lb__owners_marks(), LB__OWNERS_MARKS_MAX);
	one_named(&o);
	lb__owners_unfinished(&o.k);
	ck_assert_uint_eq(lb__owners_marks(), LB__OWNERS_MARKS_MAX);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	lb__owners_finished(&o.k, 1);   /* spilled: stays */
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 0);
	epoch = lb__owners_epoch(&o.k);
	lb__owners_released(&o.k, epoch);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 1);
	ck_assert_int_eq(lockfs_release(&o.fs, &err), 0);
	ck_assert_int_eq(lb__owners_unfinished_named(&o.k, &o.fs), 0);
	lockfs_fini(&o.fs);
}
END_TEST

/* Marks of owners that still hold their locks (the daemon answered the
 * release pending; the caller has not yet recorded the release) are
 * all kept, whatever their number: they cost no entry of their own.
 * As the releases are recorded, the marks past the bound are spilled:
 * the bound holds again. */
START_TEST(test_marks_of_holders_kept_then_bounded)
{
	enum { N = LB__OWNERS_MARKS_MAX + 10 };
	static char          files[N][PATH_MAX + 32];
	struct lb__owner_key k = { NULL, LB_LINK, 0 };
	struct tl_place      p;
	uint64_t             epochs[N];
	unsigned             i;

	tl_place_make(&p, "held");
	for (i = 0; i < N; i++) {
		snprintf(files[i], sizeof(files[i]), "%s-%u.lock", p.path, i);
		k.lock_file = files[i];
		lb__owners_acquired(&k, lb__owners_serial(), 1);
		epochs[i] = lb__owners_epoch(&k);
		lb__owners_unfinished(&k);
	}
	ck_assert_uint_eq(lb__owners_marks(), N);
	for (i = 0; i < N; i++) {
		k.lock_file = files[i];
		lb__owners_released(&k, epochs[i]);
	}
	ck_assert_uint_eq(lb__owners_marks(), LB__OWNERS_MARKS_MAX);
}
END_TEST

/* The release owed after a lost RELEASE is recorded only while the owner
 * holds the lock, and ends with the hold (released, broken) or when the
 * owner takes the lock afresh; a re-entrant acquire keeps it. */
START_TEST(test_lost_release_owed_while_held)
{
	struct one o;

	one_make(&o, "lk");
	lb__owners_lost_release(&o.k);
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 0);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	lb__owners_lost_release(&o.k);
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 1);
	lb__owners_acquired(&o.k, lb__owners_serial(), 0);
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 1);
	lb__owners_released(&o.k, lb__owners_epoch(&o.k));
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 0);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	lb__owners_lost_release(&o.k);
	lb__owners_broken(o.k.lock_file, o.k.method);
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 0);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	lb__owners_lost_release(&o.k);
	lb__owners_acquired(&o.k, lb__owners_serial(), 1);
	ck_assert_int_eq(lb__owners_lost_owed(&o.k), 0);
	one_end(&o);
}
END_TEST

static Suite *
owners_suite(void)
{
	Suite *s = suite_create("owners");
	TCase *tc = tcase_create("owners");

	tcase_add_test(tc, test_finished_drops_marks);
	tcase_add_test(tc, test_look_and_grant_drop_marks);
	tcase_add_test(tc, test_marks_bounded_spilled_kept);
	tcase_add_test(tc, test_marks_of_holders_kept_then_bounded);
	tcase_add_test(tc, test_lost_release_owed_while_held);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_main("check_owners", owners_suite(), CK_ENV);
}
