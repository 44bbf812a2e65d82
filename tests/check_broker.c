/*
 * check_broker.c: the check suite of liblockbroker's broker transport,
 * against the real daemon ($LB_BUILDDIR/daemon/lockbrokerd), one
 * test case per subject, each in a file of its own (check_broker.h): the
 * API's semantics over the broker (check_broker_api.c), ownership
 * (check_broker_owners.c), choosing the transport
 * (check_broker_transport.c), what the broker adds
 * (check_broker_handoff.c), ending a wait from outside
 * (check_broker_cancel.c), several locks at once
 * (check_broker_sets.c), daemon restarts (check_broker_restart.c,
 * check_broker_pidfile.c).
 *
 * tl_main() makes the run's private directory; before the first test
 * main() starts one daemon in it with its own socket and state database
 * (LOCKBROKER_SOCKET points the library there), and stops it with
 * SIGTERM after the last.  Tests that stop or restart a daemon start a
 * private one of their own (private_daemon).
 *
 * Other owners are real processes (agents: forked children that make a
 * handle and obey orders over a pipe, check_broker_agents.c) and real
 * threads.  Timing is asserted only with generous bounds: a handoff
 * within HANDOFF_S, nothing hung for HANG_S; a wait of WAIT_S lasted at
 * least WAIT_MIN.
 */
#include <sys/stat.h>

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_broker.h"

TCase *
broker_case(const char *name, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	return tc;
}

/* The suite: its test cases in the order they run. */
static Suite *
broker_suite(void)
{
	Suite *s = suite_create("broker");

	suite_add_tcase(s, broker_api_case());
	suite_add_tcase(s, broker_ownership_case());
	suite_add_tcase(s, broker_transport_case());
	suite_add_tcase(s, broker_handoff_case());
	suite_add_tcase(s, broker_cancel_case());
	suite_add_tcase(s, broker_async_case());
	suite_add_tcase(s, broker_shared_case());
	suite_add_tcase(s, broker_sets_case());
	suite_add_tcase(s, broker_restart_case());
	return s;
}

/* The daemon of the whole run (arg of the hooks below). */
static struct tl_daemon run_daemon;

/* Before the run (tl_hook_fn): starts the run's daemon in tl_top/daemon
 * and points the library at it. */
static int
run_start(void *arg)
{
	struct tl_daemon *d = arg;
	char              dir[PATH_MAX];

	unsetenv("LOCKBROKER_TRANSPORT");
	if (snprintf(dir, sizeof(dir), "%.*s/daemon", PATH_MAX - 16,
	    tl_top) < 0 || mkdir(dir, 0700) == -1 ||
	    tl_daemon_start(d, dir, "sock", "state.db") != 0) {
		fprintf(stderr, "check_broker: cannot start the daemon\n");
		return -1;
	}
	return setenv("LOCKBROKER_SOCKET", d->socket, 1);
}

/* After the run (tl_hook_fn): stops the run's daemon, which must end
 * cleanly. */
static int
run_stop(void *arg)
{
	struct tl_daemon *d = arg;

	if (tl_daemon_stop(d, SIGTERM) != 0) {
		fprintf(stderr, "check_broker: the daemon did not stop "
		    "cleanly; see %s\n", d->log);
		return -1;
	}
	return 0;
}

/* main: runs the suite around the run's daemon (tl_main_around); exit 0
 * when every test passed. */
int
main(void)
{
	return tl_main_around("check_broker", broker_suite(), CK_ENV,
	    run_start, run_stop, &run_daemon);
}
