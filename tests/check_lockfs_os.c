/*
 * check_lockfs_os.c: lockfs's OS layer (lockfs/os.h), the part of its
 * contract every OS keeps, each call against what the system really
 * does: a process's start time and liveness (our own, a live child, one
 * that has exited, no pid at all), the shape of the boot id and the host
 * name, a rename that replaces nothing, and a missing directory refused
 * for locking.  Built for every host, with that
 * host's implementation (os_unix.c, os_win32.c), and run under wine for
 * Windows.  What only Unix gives (process owners, thread ids, the boot
 * id, reopening, files made whole, directory locks between processes) is
 * in check_os.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "os.h"
#include "testlib.h"

/* ------------------------------------------------------------------ */
/* Process identity.                                                    */

/* Our own start time reads the same each time, and is not 0. */
START_TEST(start_time_own_stable)
{
	unsigned long long a = 0, b = 0;

	ck_assert_int_eq(lockfs_os_start_time(lockfs_os_pid(), &a), 0);
	ck_assert(a != 0);
	tl_sleep(0.02);
	ck_assert_int_eq(lockfs_os_start_time(getpid(), &b), 0);
	ck_assert(a == b);
}
END_TEST

/* A pid that has exited and been reaped: dead, with no start time. */
START_TEST(dead_pid_dead)
{
	unsigned long long start = 0;
	pid_t              pid = tl_dead_pid();

	ck_assert_int_eq(lockfs_os_pid_liveness(pid), LB_HOLDER_DEAD);
	errno = 0;
	ck_assert_int_eq(lockfs_os_start_time(pid, &start), -1);
	ck_assert_int_eq(errno, ESRCH);
}
END_TEST

/* A live child: alive, its start time readable and its own; not a pid
 * at all: unknown. */
START_TEST(live_pid_alive)
{
	unsigned long long start = 0, again = 0;
	pid_t              pid = tl_sleeper_start();

	ck_assert_int_eq(lockfs_os_pid_liveness(pid), LB_HOLDER_ALIVE);
	ck_assert_int_eq(lockfs_os_start_time(pid, &start), 0);
	ck_assert(start != 0);
	ck_assert_int_eq(lockfs_os_start_time(pid, &again), 0);
	ck_assert(start == again);
	tl_kill(pid);
	ck_assert_int_eq(lockfs_os_pid_liveness(pid), LB_HOLDER_DEAD);
	ck_assert_int_eq(lockfs_os_pid_liveness(0), LB_HOLDER_UNKNOWN);
	ck_assert_int_eq(lockfs_os_pid_liveness(-1), LB_HOLDER_UNKNOWN);
}
END_TEST

/* The boot id: "" (the OS tells none) or 8 lower-case hex digits, the
 * same each time; the host name: not empty, the same each time, and cut
 * to what fits (its start) when the buffer is small. */
START_TEST(boot_id_and_host_shape)
{
	char   a[9], b[9], host[256], again[256], small[2];
	size_t i, n;

	lockfs_os_boot_id(a, sizeof(a));
	lockfs_os_boot_id(b, sizeof(b));
	n = strlen(a);
	ck_assert(n == 0 || n == 8);
	for (i = 0; i < n; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
	ck_assert_str_eq(a, b);
	lockfs_os_hostname(host, sizeof(host));
	lockfs_os_hostname(again, sizeof(again));
	ck_assert_uint_gt(strlen(host), 0);
	ck_assert_str_eq(host, again);
	lockfs_os_hostname(small, sizeof(small));
	n = strlen(host) < sizeof(small) - 1 ? strlen(host) : sizeof(small) - 1;
	ck_assert_uint_eq(strlen(small), n);
	ck_assert(strncmp(small, host, n) == 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Files and directory locks.                                           */

/* A rename that replaces nothing: done when the target is free, EEXIST
 * (or ENOTEMPTY) when a file or a directory is there, which stays. */
START_TEST(rename_noreplace_replaces_nothing)
{
	struct tl_place p;
	char            from[PATH_MAX + 8], buf[16];

	tl_place_make(&p, "to");
	snprintf(from, sizeof(from), "%s.from", p.path);
	tl_mkdir(from);
	ck_assert_int_eq(lockfs_os_rename_noreplace(from, p.path), 0);
	ck_assert(!tl_exists(from));
	tl_mkdir(from);
	errno = 0;
	ck_assert_int_eq(lockfs_os_rename_noreplace(from, p.path), -1);
	ck_assert(errno == EEXIST || errno == ENOTEMPTY);
	ck_assert_int_eq(tl_dir_remove(p.path), 0);
	tl_write_text(p.path, "there");
	errno = 0;
	ck_assert_int_eq(lockfs_os_rename_noreplace(from, p.path), -1);
	ck_assert(errno == EEXIST || errno == ENOTEMPTY);
	ck_assert_int_eq(tl_read_text(p.path, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "there");
	tl_place_remove(p.dir);
}
END_TEST

/* A directory that is not there cannot be opened for locking. */
START_TEST(dirlock_missing)
{
	struct tl_place       p;
	struct lockfs_dirlock dl = { 0 };

	tl_place_make(&p, "missing");
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_open(&dl, p.path), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(dl.fd, -1);
}
END_TEST

/* The suite. */
static Suite *
lockfs_os_suite(void)
{
	Suite *s = suite_create("lockfs_os");
	TCase *tc = tcase_create("portable");

	tcase_add_test(tc, start_time_own_stable);
	tcase_add_test(tc, dead_pid_dead);
	tcase_add_test(tc, live_pid_alive);
	tcase_add_test(tc, boot_id_and_host_shape);
	tcase_add_test(tc, rename_noreplace_replaces_nothing);
	tcase_add_test(tc, dirlock_missing);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_lockfs_os", lockfs_os_suite(), CK_ENV);
}
