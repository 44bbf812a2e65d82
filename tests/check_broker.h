/*
 * check_broker.h: what the files of the broker suite share: the bounds
 * its timing assertions use, agents (processes that own a handle and do
 * what they are told), private daemons, and the test cases, one file per
 * subject; check_broker.c puts them together.
 */
#ifndef CHECK_BROKER_H
#define CHECK_BROKER_H

#include <check.h>
#include <stdint.h>

#include "testclient.h"
#include "testlib.h"

#define PROMPT_S  5.0   /* a call that should return at once */
#define HANG_S    10.0  /* a wait that should end long before */
#define HANDOFF_S 2.0   /* from a release (or a death) to the next grant */
#define WAIT_S    0.3   /* a wait that should time out ... */
#define WAIT_MIN  0.25  /* ... and lasted at least this long */

/* ------------------------------------------------------------------ */
/* Agents (check_broker_agents.c).                                      */

/* What an agent answers: the call's result (r2: a second one), the
 * fencing token or a pid, when the call returned (tl_now, comparable
 * between processes), and lb_lock_error. */
struct answer {
	int64_t  r;
	int64_t  r2;
	uint64_t token;
	int64_t  pid;
	double   at;
	char     why[512];
};

/* A forked process with a handle of its own, which obeys orders. */
struct agent {
	struct tl_child c;
};

/*
 * agent_start: forks an agent that makes a handle on path with flags,
 * talking to the daemon at socket_path (NULL: this process's
 * LOCKBROKER_SOCKET), and obeys orders (agent_send) until agent_stop:
 *   'a' lb_acquire(arg)   'r' lb_release      'i' lb_i_am_locking
 *   's' lb_acquire_shared(arg)  'u' lb_upgrade(arg)  'd' lb_downgrade
 *   'l' lb_is_locked      't' lb_fencing_token (answer's token)
 *   'b' lb_break_lock     'k' lb_acquire_for(pid arg, LB_FOREVER)
 *   'f' lb_lock_forget, then a new handle as the first (r: 0, or
 *       -errno when it could not be made)
 *   'F' forks a child that inherits the handle and answers (r its
 *       lb_i_am_locking, r2 its lb_release, pid its pid), then lives on
 *       until killed by its pid
 * The agent dies with this process.  Asserts.
 */
void agent_start(struct agent *a, const char *path, unsigned flags,
    const char *socket_path);

/* agent_start_nobody: agent_start, the agent user nobody
 * (tl_become_nobody) before it makes its handle. */
void agent_start_nobody(struct agent *a, const char *path, unsigned flags,
    const char *socket_path);

/* agent_send: gives the agent an order without waiting for its answer. */
void agent_send(struct agent *a, char op, double arg);

/* agent_ready: 1 when the agent has an answer ready within seconds. */
int agent_ready(struct agent *a, double seconds);

/* agent_answer: the agent's next answer; asserts that it came within
 * seconds. */
struct answer agent_answer(struct agent *a, double seconds);

/* agent_expect: the agent's next answer, asserted to come within seconds
 * with the result want; a failure names what and the agent's reason. */
struct answer agent_expect(struct agent *a, double seconds, int64_t want,
    const char *what);

/* agent_do: gives an order and returns the call's result (asserted to
 * come within HANG_S). */
int64_t agent_do(struct agent *a, char op, double arg);

/* agent_stop: ends the agent (its handle freed, so its lock released;
 * SIGKILL when it does not answer within HANG_S) and reaps it. */
void agent_stop(struct agent *a);

/* agent_kill: kills the agent with SIGKILL and reaps it. */
void agent_kill(struct agent *a);

/* wait_for_waiters: waits (PROMPT_S at most, asserted) until the broker
 * counts want waiters on lock's path. */
void wait_for_waiters(lb_lock *lock, unsigned want);

/* agent_queues: agent a asks for the lock (timeout seconds), and the
 * broker then counts waiters waiters on it (wait_for_waiters through
 * probe, a handle on the same lock). */
void agent_queues(struct agent *a, double timeout, lb_lock *probe,
    unsigned waiters);

/* ------------------------------------------------------------------ */
/* Private daemons (check_broker_agents.c).                             */

/*
 * private_daemon_env: in a test, a daemon of the test's own in a fresh
 * directory under tl_top (written into dir, PATH_MAX bytes), on the
 * socket dir/sock with the state dir/state.db, started with env as
 * tl_daemon_start_env (NULL: as it is), which this test process's
 * library then uses (LOCKBROKER_SOCKET).  Asserts.
 */
void private_daemon_env(struct tl_daemon *d, char *dir,
    const char *const *env);

/* private_daemon: private_daemon_env with the environment as it is. */
void private_daemon(struct tl_daemon *d, char *dir);

/* private_daemon_preloaded: private_daemon_env with the test preload so
 * (its path under $LB_BUILDDIR, "tests/.libs/NAME.so") and the variables
 * vars ("NAME=value", NULL-terminated, five at most; NULL: none) set for
 * the daemon alone. */
void private_daemon_preloaded(struct tl_daemon *d, char *dir,
    const char *so, const char *const *vars);

/* daemon_again: starts the daemon again in dir (its socket dir/sock) with
 * the state dir/STATE; asserts. */
void daemon_again(struct tl_daemon *d, const char *dir, const char *state);

/* daemon_restart: kills the daemon (SIGKILL) and starts it again
 * (daemon_again); asserts both. */
void daemon_restart(struct tl_daemon *d, const char *dir, const char *state);

/* order_to_stopped: stops the daemon (SIGSTOP) and gives agent a the
 * order op(arg), which then waits for its answer (none within 0.3 s). */
void order_to_stopped(struct tl_daemon *d, struct agent *a, char op,
    double arg);

/* private_daemon_end: asserts that the directory lockdir was left empty
 * and that the private daemon stops cleanly (SIGTERM: exit 0). */
void private_daemon_end(struct tl_daemon *d, const char *lockdir);

/* ------------------------------------------------------------------ */
/* The test cases, in the order they run.                               */

/* check_broker_api.c: the API's semantics over LB_BROKER. */
TCase *broker_api_case(void);
/* check_broker_owners.c: threads of one process, probes, huge timeouts. */
TCase *broker_ownership_case(void);
/* check_broker_transport.c: choosing the transport and the socket. */
TCase *broker_transport_case(void);
/* check_broker_handoff.c: FIFO, prompt handoff, dead holders, fork. */
TCase *broker_handoff_case(void);
/* check_broker_restart.c: daemon restarts. */
TCase *broker_restart_case(void);
/* check_broker_cancel.c: ending a waiting acquire from outside. */
TCase *broker_cancel_case(void);
/* check_broker_async.c: the asynchronous acquire, fresh grants. */
TCase *broker_async_case(void);
/* check_broker_shared.c: shared locks through the library. */
TCase *broker_shared_case(void);
/* check_broker_sets.c: several locks at once (lb_acquire_all). */
TCase *broker_sets_case(void);

/* check_broker_pidfile.c: pidfile grants across a restart, added to the
 * restart case in their order. */
void broker_pidfile_restart_tests(TCase *tc);

/* broker_case: a test case named name with timeout seconds. */
TCase *broker_case(const char *name, int timeout);

#endif
