/*
 * check_lockfs.c: unit tests of the lockfs layer (lockfs/lockfs.h), one
 * test case per subject, each in a file of its own (check_lockfs.h):
 * path normalisation against Python's os.path.abspath, lock names
 * (check_lockfs_names.c); unique names (ours and Python lockfile's), pid
 * files, holder liveness (check_lockfs_owner.c); the five methods' steps
 * (check_lockfs_methods.c); hostile and forged files in lock directories
 * (check_lockfs_hostile.c); and breaking stale locks
 * (check_lockfs_stale.c).
 *
 * Every test runs in its own process (check's CK_FORK default) and in its
 * own directory (tl_place_in), removed at the test's end; tl_main() makes
 * one private directory for the whole run and removes that last, so that
 * a test failing half way leaves nothing behind either.  Second owners,
 * and dead or live holders, are real processes forked from the test
 * (testlockfs.h): they report back through a pipe, never call check's
 * assertions, and die with the test.
 *
 * Tests whose comment starts "Regression" keep fixed bugs fixed; each says
 * what was wrong and how it was fixed.
 */
#include <check.h>

#include "check_lockfs.h"
#include "testlib.h"

/* The suite: its test cases in the order they run. */
static Suite *
lockfs_suite(void)
{
	Suite *s = suite_create("lockfs");

	suite_add_tcase(s, lockfs_abspath_case());
	suite_add_tcase(s, lockfs_init_case());
	suite_add_tcase(s, lockfs_owner_case());
	suite_add_tcase(s, lockfs_methods_case());
	suite_add_tcase(s, lockfs_link_case());
	suite_add_tcase(s, lockfs_hostile_case());
	suite_add_tcase(s, lockfs_forged_case());
	suite_add_tcase(s, lockfs_stale_case());
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_lockfs", lockfs_suite(), CK_ENV);
}
