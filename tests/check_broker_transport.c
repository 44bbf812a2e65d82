/*
 * check_broker_transport.c: choosing the transport (AUTO with and
 * without a daemon, LB_BROKER without one, LOCKBROKER_TRANSPORT) and the
 * socket (LOCKBROKER_SOCKET, $XDG_RUNTIME_DIR, /run).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_broker.h"

/* AUTO with no daemon: in-process (no token), and the artefact is there
 * for everyone to see. */
START_TEST(test_auto_without_daemon)
{
	struct tl_place p;
	char            sock[PATH_MAX];
	lb_lock        *lock, *peer;
	lb_holder       who;
	uint64_t        token;

	tl_place_make(&p, "lk");
	tl_path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", sock, 1), 0);
	lock = lock_new(p.path, 0);
	peer = lock_new(p.path, LB_LOCAL | LB_UNTHREADED);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_fencing_token(lock, &token), LB_EFAILED);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.broker, 0);
	ck_assert_int_eq(who.pid, getpid());
	ck_assert_int_eq(lb_is_locked(peer), 1);
	ck_assert_int_eq(lb_acquire(peer, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), LB_ENOTLOCKED);
	ck_assert_int_eq(lb_is_locked(peer), 0);
	lb_lock_free(peer);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* AUTO with a daemon: through the broker, as the daemon itself shows. */
START_TEST(test_auto_with_daemon)
{
	const char     *sock = getenv("LOCKBROKER_SOCKET");
	struct tl_place p;
	lb_lock        *lock;
	lb_holder       who;
	uint64_t        token = 0;
	char            reply[8192], want[PATH_MAX + 16];

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), 0);
	ck_assert_uint_ne(token, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_msg(who.token == token, "holder's token differs");
	ck_assert_int_eq(tl_exchange(sock, "HELLO 1 version=1\nLIST 2\n",
	    "OK 2 ", reply, sizeof(reply), PROMPT_S), 0);
	snprintf(want, sizeof(want), "path=%s ", p.path);
	ck_assert_msg(strstr(reply, want) != NULL, "LIST does not show %s:\n%s",
	    p.path, reply);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(tl_exchange(sock, "HELLO 1 version=1\nLIST 2\n",
	    "OK 2 ", reply, sizeof(reply), PROMPT_S), 0);
	ck_assert_msg(strstr(reply, want) == NULL, "LIST still shows %s",
	    p.path);
	lb_lock_free(lock);
}
END_TEST

/* LB_BROKER with no daemon: every call fails, naming the socket; nothing
 * touches the disk. */
START_TEST(test_broker_without_daemon)
{
	struct tl_place p;
	char            sock[PATH_MAX];
	lb_lock        *lock;
	lb_holder       who;
	uint64_t        token;

	tl_place_make(&p, "lk");
	tl_path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", sock, 1), 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EFAILED);
	assert_reason_names(lock, sock);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), LB_EFAILED);
	ck_assert_int_eq(lb_release(lock), LB_EUNLOCK);
	assert_reason_names(lock, sock);
	ck_assert_int_eq(lb_is_locked(lock), LB_ERROR);
	ck_assert_int_eq(lb_i_am_locking(lock), LB_ERROR);
	ck_assert_int_eq(lb_break_lock(lock), LB_EUNLOCK);
	ck_assert_int_eq(lb_get_holder(lock, &who), LB_ERROR);
	ck_assert_int_eq(lb_fencing_token(lock, &token), LB_ERROR);
	assert_reason_names(lock, sock);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* The environment chooses for handles whose flags do not:
 * LOCKBROKER_TRANSPORT=local, =broker, and an invalid value (auto, with a
 * note); flags win over it. */
START_TEST(test_transport_environment)
{
	struct tl_place p;
	lb_lock        *lock, *forced;
	uint64_t        token;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "local", 1), 0);
	lock = lock_new(p.path, 0);
	forced = lock_new(p.path, LB_BROKER | LB_UNTHREADED);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), LB_EFAILED);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_acquire(forced, 0), 0);
	ck_assert_int_eq(lb_fencing_token(forced, &token), 0);
	ck_assert_int_eq(lb_release(forced), 0);
	lb_lock_free(forced);
	lb_lock_free(lock);

	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "sideways", 1), 0);
	lock = lock_new(p.path, 0);
	assert_reason_names(lock, "sideways");
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), 0);    /* auto */
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* LOCKBROKER_TRANSPORT=broker with no daemon (in a process that has not
 * connected yet): fails like LB_BROKER. */
START_TEST(test_transport_environment_broker)
{
	struct tl_place p;
	lb_lock        *lock;
	char            sock[PATH_MAX];

	tl_place_make(&p, "lk");
	tl_path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", sock, 1), 0);
	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "broker", 1), 0);
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EFAILED);
	assert_reason_names(lock, sock);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* Without LOCKBROKER_SOCKET: $XDG_RUNTIME_DIR/lockbroker/socket when it
 * exists, else /run/lockbroker/socket. */
START_TEST(test_socket_resolution)
{
	struct tl_daemon d;
	struct tl_place  p;
	char             run[PATH_MAX], sub[PATH_MAX], dir[PATH_MAX];
	lb_lock         *lock;
	uint64_t         token;
	pid_t            pid;
	int              status;

	tl_place_make(&p, "lk");
	tl_path_join(run, sizeof(run), tl_top, "run.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(run));
	tl_path_join(sub, sizeof(sub), run, "lockbroker");
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	unsetenv("LOCKBROKER_SOCKET");
	ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", run, 1), 0);

	/* No socket in the user's runtime directory: the system's. */
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		lock = lb_lock_new(p.path, LB_BROKER);
		if (lock == NULL)
			_exit(2);
		if (access("/run/lockbroker/socket", F_OK) == 0)
			_exit(0);       /* a system daemon: cannot tell */
		_exit(lb_acquire(lock, 0) == LB_EFAILED &&
		    strstr(lb_lock_error(lock), "/run/lockbroker/socket") !=
		    NULL ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "without $XDG_RUNTIME_DIR/lockbroker/socket the system socket "
	    "was not tried (status %#x)", status);

	/* A daemon there: used. */
	snprintf(dir, sizeof(dir), "%s", sub);
	ck_assert_int_eq(tl_daemon_start(&d, dir, "socket", "state.db"), 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The case's tests, in the order they run. */
TCase *
broker_transport_case(void)
{
	TCase *tc = broker_case("transport", 60);

	tcase_add_test(tc, test_auto_without_daemon);
	tcase_add_test(tc, test_auto_with_daemon);
	tcase_add_test(tc, test_broker_without_daemon);
	tcase_add_test(tc, test_transport_environment);
	tcase_add_test(tc, test_transport_environment_broker);
	tcase_add_test(tc, test_socket_resolution);
	return tc;
}
