/*
 * check_broker_agents.c: the broker suite's agents (processes that own a
 * handle and do what they are told) and private daemons
 * (check_broker.h).
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

/* ------------------------------------------------------------------ */
/* Agents.                                                              */

/* An order to an agent. */
struct order {
	char   op;
	double arg;
};

/* What an agent is to be. */
struct agent_args {
	const char *path;
	unsigned    flags;
	const char *socket;     /* NULL: the inherited LOCKBROKER_SOCKET */
	int         nobody;     /* becomes user nobody first */
};

/*
 * The forked grandchild of the fork test: inherited the agent's handle
 * (and, but for the library, its connection).  Tells what it sees of the
 * lock, then lives until killed.
 */
static void __attribute__((noreturn))
agent_fork_child(lb_lock *lock, int report)
{
	struct answer a;

	memset(&a, 0, sizeof(a));
	a.r = lb_i_am_locking(lock);
	a.r2 = lb_release(lock);
	a.pid = getpid();
	snprintf(a.why, sizeof(a.why), "%s", lb_lock_error(lock));
	if (write(report, &a, sizeof(a)) != (ssize_t)sizeof(a))
		_exit(1);
	for (;;)
		pause();
}

/* The agent's 'F': forks a child with the handle and relays its
 * answer. */
static void
agent_fork(lb_lock *lock, struct answer *a)
{
	pid_t pid;
	int   p[2];

	if (pipe(p) == -1 || (pid = fork()) == -1) {
		a->r = -1000;
		return;
	}
	if (pid == 0)
		agent_fork_child(lock, p[1]);
	if (read(p[0], a, sizeof(*a)) != (ssize_t)sizeof(*a))
		a->r = -1001;
	close(p[0]);
	close(p[1]);
}

/* The agent (a tl_child_fn): makes its handle, then obeys orders until
 * 'q' or EOF. */
static int
agent_run(void *arg, int cmd, int ans)
{
	const struct agent_args *args = arg;
	struct answer            a;
	struct order             o;
	lb_lock                 *lock;

	if (args->socket != NULL)
		setenv("LOCKBROKER_SOCKET", args->socket, 1);
	if (args->nobody && tl_become_nobody() != 0)
		return 3;
	lock = lb_lock_new(args->path, args->flags);
	while (read(cmd, &o, sizeof(o)) == (ssize_t)sizeof(o)) {
		memset(&a, 0, sizeof(a));
		switch (o.op) {
		case 'a':
			a.r = lb_acquire(lock, o.arg);
			break;
		case 's':
			a.r = lb_acquire_shared(lock, o.arg);
			break;
		case 'u':
			a.r = lb_upgrade(lock, o.arg);
			break;
		case 'd':
			a.r = lb_downgrade(lock);
			break;
		case 'r':
			a.r = lb_release(lock);
			break;
		case 'i':
			a.r = lb_i_am_locking(lock);
			break;
		case 'l':
			a.r = lb_is_locked(lock);
			break;
		case 't':
			a.r = lb_fencing_token(lock, &a.token);
			break;
		case 'b':
			a.r = lb_break_lock(lock);
			break;
		case 'k':
			a.r = lb_acquire_for(lock, (pid_t)o.arg, LB_FOREVER,
			    NULL);
			break;
		case 'F':
			agent_fork(lock, &a);
			break;
		case 'f':
			lb_lock_forget(lock);
			lock = lb_lock_new(args->path, args->flags);
			a.r = lock != NULL ? 0 : -errno;
			break;
		case 'q':
			lb_lock_free(lock);
			return 0;
		}
		a.at = tl_now();
		if (o.op != 'F')
			snprintf(a.why, sizeof(a.why), "%s",
			    lb_lock_error(lock));
		if (write(ans, &a, sizeof(a)) != (ssize_t)sizeof(a))
			return 2;
	}
	return 0;
}

void
agent_start(struct agent *a, const char *path, unsigned flags,
    const char *socket_path)
{
	struct agent_args args = { path, flags, socket_path, 0 };

	tl_child_start(&a->c, TL_CLOSE_FDS, agent_run, &args);
}

void
agent_start_nobody(struct agent *a, const char *path, unsigned flags,
    const char *socket_path)
{
	struct agent_args args = { path, flags, socket_path, 1 };

	tl_child_start(&a->c, TL_CLOSE_FDS, agent_run, &args);
}

void
agent_send(struct agent *a, char op, double arg)
{
	struct order o = { op, arg };

	tl_child_send(&a->c, &o, sizeof(o));
}

int
agent_ready(struct agent *a, double seconds)
{
	return tl_child_ready(&a->c, seconds);
}

struct answer
agent_answer(struct agent *a, double seconds)
{
	struct answer ans;

	tl_child_receive(&a->c, &ans, sizeof(ans), seconds);
	return ans;
}

struct answer
agent_expect(struct agent *a, double seconds, int64_t want, const char *what)
{
	struct answer ans = agent_answer(a, seconds);

	ck_assert_msg(ans.r == want, "%s: %lld (%s), expected %lld (%s); %s",
	    what, (long long)ans.r, lb_error_name((int)ans.r),
	    (long long)want, lb_error_name((int)want), ans.why);
	return ans;
}

int64_t
agent_do(struct agent *a, char op, double arg)
{
	agent_send(a, op, arg);
	return agent_answer(a, HANG_S).r;
}

void
agent_stop(struct agent *a)
{
	agent_send(a, 'q', 0);
	if (!agent_ready(a, HANG_S))
		kill(a->c.pid, SIGKILL);
	tl_child_wait(&a->c);
}

void
agent_kill(struct agent *a)
{
	tl_child_kill(&a->c);
}

void
wait_for_waiters(lb_lock *lock, unsigned want)
{
	lb_holder who;
	double    end = tl_now() + PROMPT_S;

	do {
		ck_assert_int_ge(lb_get_holder(lock, &who), 0);
		ck_assert_int_eq(who.broker, 1);
		if (who.waiters == want)
			return;
		tl_sleep(0.005);
	} while (tl_now() < end);
	ck_abort_msg("%u waiters, not %u, after %g s", who.waiters, want,
	    PROMPT_S);
}

void
agent_queues(struct agent *a, double timeout, lb_lock *probe,
    unsigned waiters)
{
	agent_send(a, 'a', timeout);
	wait_for_waiters(probe, waiters);
}

/* ------------------------------------------------------------------ */
/* Private daemons.                                                     */

void
private_daemon_env(struct tl_daemon *d, char *dir, const char *const *env)
{
	tl_path_join(dir, PATH_MAX, tl_top, "d.XXXXXX");
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir,
	    strerror(errno));
	ck_assert_msg(tl_daemon_start_env(d, dir, "sock", "state.db", env) ==
	    0, "cannot start lockbrokerd in %s", dir);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", d->socket, 1), 0);
}

void
private_daemon(struct tl_daemon *d, char *dir)
{
	private_daemon_env(d, dir, NULL);
}

void
private_daemon_preloaded(struct tl_daemon *d, char *dir, const char *so,
    const char *const *vars)
{
	const char *b = getenv("LB_BUILDDIR"), *asan = getenv("ASAN_OPTIONS");
	char        preload[PATH_MAX + 16], opts[4096];
	const char *env[8] = { preload, opts };
	size_t      n = 2;

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s/%s",
	    b != NULL && *b != '\0' ? b : ".", so);
	/* A daemon built with a shared ASan runtime wants it first. */
	snprintf(opts, sizeof(opts), "ASAN_OPTIONS=%s%s"
	    "verify_asan_link_order=0", asan != NULL ? asan : "",
	    asan != NULL && *asan != '\0' ? ":" : "");
	for (; vars != NULL && *vars != NULL; vars++) {
		ck_assert(n < sizeof(env) / sizeof(env[0]) - 1);
		env[n++] = *vars;
	}
	env[n] = NULL;
	private_daemon_env(d, dir, env);
}

void
daemon_again(struct tl_daemon *d, const char *dir, const char *state)
{
	ck_assert_msg(tl_daemon_start(d, dir, "sock", state) == 0,
	    "cannot start lockbrokerd again in %s; see %s/log", dir, dir);
}

void
daemon_restart(struct tl_daemon *d, const char *dir, const char *state)
{
	ck_assert_msg(tl_daemon_stop(d, SIGKILL) == 0, "lockbrokerd did not "
	    "die of SIGKILL; see %s", d->log);
	daemon_again(d, dir, state);
}

void
private_daemon_end(struct tl_daemon *d, const char *lockdir)
{
	ck_assert_int_eq(tl_count(lockdir), 0);
	ck_assert_msg(tl_daemon_stop(d, SIGTERM) == 0, "lockbrokerd did not "
	    "stop cleanly; see %s", d->log);
}

void
order_to_stopped(struct tl_daemon *d, struct agent *a, char op, double arg)
{
	ck_assert_int_eq(kill(d->pid, SIGSTOP), 0);
	agent_send(a, op, arg);
	ck_assert(!agent_ready(a, 0.3));
}
