/*
 * check_broker.c: the check suite of liblockbroker's broker transport,
 * against the real daemon ($LB_BUILDDIR/daemon/lockbrokerd).
 *
 * main() makes a private temporary directory, starts one daemon in it
 * with its own socket and state database (LOCKBROKER_SOCKET points the
 * library there), waits until the socket answers a HELLO, runs the tests,
 * stops the daemon with SIGTERM and removes the directory.  Tests that
 * stop or restart a daemon start a private one of their own.
 *
 * Other owners are real processes ("agents": forked children that make a
 * handle and obey commands over a pipe) and real threads.  Timing is
 * asserted only with generous bounds: a handoff within HANDOFF_S, nothing
 * hung for HANG_S; a wait of WAIT_S lasted at least WAIT_MIN.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "testdir.h"

#define PROMPT_S  5.0   /* a call that should return at once */
#define HANG_S    10.0  /* a wait that should end long before */
#define HANDOFF_S 2.0   /* from a release (or a death) to the next grant */
#define HOLD_S    0.3
#define WAIT_S    0.3
#define WAIT_MIN  0.25

/* The methods a loop test runs over: a failure of method methods[_i] is
 * reported as "test_name:_i": 0 link, 1 symlink, 2 mkdir, 3 pidfile, 4
 * sqlite. */
static const unsigned methods[] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE, LB_SQLITE
};
#define NMETHODS ((int)(sizeof(methods) / sizeof(methods[0])))

/* The suite's private directory (absolute, no symlinks). */
static char top[PATH_MAX];

/* ------------------------------------------------------------------ */
/* Helpers: places, clocks, handles.                                   */

struct place {
	char dir[PATH_MAX];
	char path[PATH_MAX];
};

/* Writes DIR/NAME into out, asserting that it fits. */
static void
path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	ck_assert_msg(n >= 0 && (size_t)n < size, "%s/%s is too long", dir,
	    name);
}

/* A fresh directory under top for one test, and the lock path NAME in
 * it. */
static void
place_make(struct place *p, const char *name)
{
	path_join(p->dir, sizeof(p->dir), top, "t.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(p->dir));
	path_join(p->path, sizeof(p->path), p->dir, name);
}

/* What a method leaves when no lock is held: the sqlite database. */
static int
leftovers(unsigned method)
{
	return method == LB_SQLITE ? 1 : 0;
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* A handle on path, asserted to exist. */
static lb_lock *
lock_new(const char *path, unsigned flags)
{
	lb_lock *lock = lb_lock_new(path, flags);

	ck_assert_msg(lock != NULL, "lb_lock_new(%s, %#x): %s", path, flags,
	    strerror(errno));
	return lock;
}

/* Asserts that the last failure on lock has a reason naming what. */
static void
assert_reason_names(lb_lock *lock, const char *what)
{
	const char *why = lb_lock_error(lock);

	ck_assert_msg(strstr(why, what) != NULL,
	    "reason \"%s\" does not name %s", why, what);
}

/* Closes every descriptor from 3 up except keep1 and keep2. */
static void
close_other_fds(int keep1, int keep2)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

/* ------------------------------------------------------------------ */
/* Daemons.                                                            */

struct daemon {
	pid_t pid;
	char  socket[PATH_MAX];
	char  state[PATH_MAX];
	char  log[PATH_MAX];
};

/*
 * Sends request (whole lines) to the daemon at socket and reads its
 * answers into reply until a line starting with until (or timeout
 * seconds).  0 when that line came, else -1.
 */
static int
raw_exchange(const char *socket_path, const char *request, const char *until,
    char *reply, size_t size, double timeout)
{
	struct sockaddr_un sun;
	struct pollfd      pfd;
	double             end = now_mono() + timeout;
	size_t             n = 0;
	ssize_t            got;
	char              *line;
	int                fd, r = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		goto out;
	reply[0] = '\0';
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (n < size - 1 && now_mono() < end) {
		for (line = reply; line != NULL && *line != '\0';
		    line = strchr(line, '\n') != NULL ?
		    strchr(line, '\n') + 1 : NULL)
			if (strncmp(line, until, strlen(until)) == 0 &&
			    strchr(line, '\n') != NULL) {
				r = 0;
				goto out;
			}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((got = read(fd, reply + n, size - 1 - n)) <= 0)
			break;
		n += (size_t)got;
		reply[n] = '\0';
	}
out:
	close(fd);
	return r;
}

/* 1 when the daemon at socket answers a HELLO, else 0. */
static int
daemon_answers(const char *socket_path)
{
	char reply[512];

	return raw_exchange(socket_path, "HELLO 1 version=1\n", "OK 1 ",
	    reply, sizeof(reply), 2.0) == 0;
}

/* The daemon binary: $LB_BUILDDIR/daemon/lockbrokerd. */
static void
daemon_binary(char *out, size_t size)
{
	const char *b = getenv("LB_BUILDDIR");

	snprintf(out, size, "%s/daemon/lockbrokerd",
	    b != NULL && *b != '\0' ? b : ".");
}

/* When set (daemon_start_stopping), the next daemon started stops itself
 * at a commit: see tests/stopcommit.c. */
static const char *stop_when, *stop_if;

/* In the daemon's child, before exec: the preload tests/stopcommit.c (in
 * $LB_BUILDDIR/tests/.libs), told to stop the daemon when (before or
 * after) the first COMMIT while the file trigger exists. */
static void
daemon_env_stopping(const char *when, const char *trigger)
{
	const char *b = getenv("LB_BUILDDIR"), *asan = getenv("ASAN_OPTIONS");
	char        so[PATH_MAX], opts[4096];

	snprintf(so, sizeof(so), "%s/tests/.libs/stopcommit.so",
	    b != NULL && *b != '\0' ? b : ".");
	setenv("LD_PRELOAD", so, 1);
	setenv("LB_TEST_STOP_COMMIT", when, 1);
	setenv("LB_TEST_STOP_IF", trigger, 1);
	/* A daemon built with a shared ASan runtime wants it first. */
	snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0",
	    asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" :
	    "");
	setenv("ASAN_OPTIONS", opts, 1);
}

/*
 * Starts the daemon on socket dir/SOCK with state dir/STATE (another name
 * makes a daemon that knows nothing of an earlier one's holds), logging
 * to dir/log, and waits until it answers a HELLO.  0, or -1 with a
 * message on stderr.  No check assertions: main() uses it too.  The
 * daemon is killed if the process that started it dies.
 */
static int
daemon_start_named(struct daemon *d, const char *dir, const char *sock,
    const char *state)
{
	char   binary[PATH_MAX];
	double end;
	int    fd, status;

	daemon_binary(binary, sizeof(binary));
	snprintf(d->socket, sizeof(d->socket), "%s/%s", dir, sock);
	snprintf(d->state, sizeof(d->state), "%s/%s", dir, state);
	snprintf(d->log, sizeof(d->log), "%s/log", dir);
	if ((d->pid = fork()) == -1)
		return -1;
	if (d->pid == 0) {
		/* SIGKILL: a wedged daemon would never handle SIGTERM. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644)) !=
		    -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		close_other_fds(-1, -1);
		if (stop_when != NULL)
			daemon_env_stopping(stop_when, stop_if);
		execl(binary, "lockbrokerd", "--socket", d->socket, "--state",
		    d->state, "-d", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", binary, strerror(errno));
		_exit(127);
	}
	for (end = now_mono() + HANG_S; now_mono() < end; sleep_s(0.01)) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "lockbrokerd exited (status %#x); see "
			    "%s\n", status, d->log);
			return -1;
		}
		if (daemon_answers(d->socket))
			return 0;
	}
	fprintf(stderr, "lockbrokerd did not answer on %s\n", d->socket);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
	return -1;
}

/* daemon_start_named with the socket dir/sock. */
static int
daemon_start(struct daemon *d, const char *dir, const char *state)
{
	return daemon_start_named(d, dir, "sock", state);
}

/* Sends sig to the daemon and reaps it (SIGKILL after HANG_S).  0 when
 * it exited as sig wants (0 for SIGTERM, killed for SIGKILL). */
static int
daemon_stop(struct daemon *d, int sig)
{
	double end = now_mono() + HANG_S;
	int    status = 0;

	if (d->pid <= 0)
		return 0;
	kill(d->pid, sig);
	while (waitpid(d->pid, &status, WNOHANG) == 0) {
		if (now_mono() > end) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = 0;
			return -1;
		}
		sleep_s(0.01);
	}
	d->pid = 0;
	if (sig == SIGKILL)
		return WIFSIGNALED(status) ? 0 : -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * Starts the daemon as daemon_start does, set to stop itself (SIGSTOP)
 * when (before or after) the first COMMIT of its state database while
 * the file trigger exists: after it made a grant's artefact, before its
 * reply went out (the daemon owes the OK until the commit).  0 or -1.
 */
static int
daemon_start_stopping(struct daemon *d, const char *dir, const char *when,
    const char *trigger)
{
	int r;

	stop_when = when;
	stop_if = trigger;
	r = daemon_start(d, dir, "state.db");
	stop_when = stop_if = NULL;
	return r;
}

/* 1 when the daemon is stopped (as daemon_start_stopping sets it to be)
 * within seconds, else 0 (it may have exited: then d->pid is 0). */
static int
daemon_stopped(struct daemon *d, double seconds)
{
	double end = now_mono() + seconds;
	int    status;
	pid_t  r;

	do {
		r = waitpid(d->pid, &status, WNOHANG | WUNTRACED);
		if (r == d->pid && WIFSTOPPED(status))
			return 1;
		if (r == d->pid) {
			d->pid = 0;
			return 0;
		}
		sleep_s(0.01);
	} while (now_mono() < end);
	return 0;
}

/* In a test: a private daemon in a fresh directory under top, which the
 * library of this test process uses (LOCKBROKER_SOCKET). */
static void
private_daemon(struct daemon *d, char *dir, size_t size)
{
	path_join(dir, size, top, "d.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(daemon_start(d, dir, "state.db") == 0,
	    "cannot start lockbrokerd in %s", dir);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", d->socket, 1), 0);
}

/* ------------------------------------------------------------------ */
/* Agents: processes that own a handle and do what they are told.     */

/* What an agent answers: the call's result, the fencing token or a pid,
 * when the call returned (monotonic, comparable between processes), and
 * lb_lock_error. */
struct answer {
	int64_t  r;
	int64_t  r2;
	uint64_t token;
	int64_t  pid;
	double   at;
	char     why[512];
};

struct order {
	char   op;
	double arg;
};

struct agent {
	pid_t pid;
	int   cmd;      /* orders to the agent */
	int   ans;      /* its answers */
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

/* The agent: makes its handle, then obeys orders until 'q' or EOF. */
static void __attribute__((noreturn))
agent_run(const char *path, unsigned flags, int cmd, int ans)
{
	struct answer a;
	struct order  o;
	lb_lock      *lock;
	pid_t         pid;
	int           p[2];

	lock = lb_lock_new(path, flags);
	while (read(cmd, &o, sizeof(o)) == (ssize_t)sizeof(o)) {
		memset(&a, 0, sizeof(a));
		switch (o.op) {
		case 'a':
			a.r = lb_acquire(lock, o.arg);
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
		case 'F':
			if (pipe(p) == -1 || (pid = fork()) == -1) {
				a.r = -1000;
				break;
			}
			if (pid == 0)
				agent_fork_child(lock, p[1]);
			if (read(p[0], &a, sizeof(a)) != (ssize_t)sizeof(a))
				a.r = -1001;
			close(p[0]);
			close(p[1]);
			break;
		case 'q':
			lb_lock_free(lock);
			_exit(0);
		}
		a.at = now_mono();
		if (o.op != 'F')
			snprintf(a.why, sizeof(a.why), "%s",
			    lb_lock_error(lock));
		if (write(ans, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(2);
	}
	_exit(0);
}

/* Starts an agent with a handle on path with flags, talking to the daemon
 * at socket_path (NULL: this process's LOCKBROKER_SOCKET). */
static void
agent_start(struct agent *a, const char *path, unsigned flags,
    const char *socket_path)
{
	int cmd[2], ans[2];

	ck_assert_int_eq(pipe(cmd), 0);
	ck_assert_int_eq(pipe(ans), 0);
	a->pid = fork();
	ck_assert_int_ne(a->pid, -1);
	if (a->pid == 0) {
		close(cmd[1]);
		close(ans[0]);
		close_other_fds(cmd[0], ans[1]);
		if (socket_path != NULL)
			setenv("LOCKBROKER_SOCKET", socket_path, 1);
		agent_run(path, flags, cmd[0], ans[1]);
	}
	close(cmd[0]);
	close(ans[1]);
	a->cmd = cmd[1];
	a->ans = ans[0];
}

/* Gives the agent an order without waiting for its answer. */
static void
agent_send(struct agent *a, char op, double arg)
{
	struct order o = { op, arg };

	ck_assert_int_eq(write(a->cmd, &o, sizeof(o)), (ssize_t)sizeof(o));
}

/* 1 when the agent has an answer ready within seconds, else 0. */
static int
agent_ready(struct agent *a, double seconds)
{
	struct pollfd pfd = { .fd = a->ans, .events = POLLIN };

	return poll(&pfd, 1, (int)(seconds * 1000)) == 1;
}

/* The agent's next answer, which must come within seconds. */
static struct answer
agent_answer(struct agent *a, double seconds)
{
	struct answer ans;

	ck_assert_msg(agent_ready(a, seconds), "agent %ld did not answer "
	    "within %g s", (long)a->pid, seconds);
	ck_assert_int_eq(read(a->ans, &ans, sizeof(ans)),
	    (ssize_t)sizeof(ans));
	return ans;
}

/* Gives an order and returns the call's result (within HANG_S). */
static int64_t
agent_do(struct agent *a, char op, double arg)
{
	agent_send(a, op, arg);
	return agent_answer(a, HANG_S).r;
}

/* Ends the agent (its handle freed, so its lock released) and reaps it. */
static void
agent_stop(struct agent *a)
{
	int status;

	agent_send(a, 'q', 0);
	if (!agent_ready(a, HANG_S))
		kill(a->pid, SIGKILL);
	ck_assert_int_eq(waitpid(a->pid, &status, 0), a->pid);
	close(a->cmd);
	close(a->ans);
}

/* Kills the agent with SIGKILL and reaps it. */
static void
agent_kill(struct agent *a)
{
	int status;

	ck_assert_int_eq(kill(a->pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(a->pid, &status, 0), a->pid);
	close(a->cmd);
	close(a->ans);
}

/* Waits until the broker counts want waiters on lock's path. */
static void
wait_for_waiters(lb_lock *lock, unsigned want)
{
	lb_holder who;
	double    end = now_mono() + PROMPT_S;

	do {
		ck_assert_int_ge(lb_get_holder(lock, &who), 0);
		ck_assert_int_eq(who.broker, 1);
		if (who.waiters == want)
			return;
		sleep_s(0.005);
	} while (now_mono() < end);
	ck_abort_msg("%u waiters, not %u, after %g s", who.waiters, want,
	    PROMPT_S);
}

/* ------------------------------------------------------------------ */
/* The API's semantics over LB_BROKER, for every method.               */

/* The timeout table: LB_FOREVER waits, <= 0 tries once, > 0 waits that
 * long; NaN is LB_EINVAL. */
START_TEST(test_timeouts)
{
	static const double tries[] = { 0, -1, -INFINITY };
	unsigned     m = methods[_i] | LB_BROKER;
	struct place p;
	struct agent h;
	lb_lock     *lock;
	double       t0, el;
	size_t       k;

	place_make(&p, "lk");
	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	lock = lock_new(p.path, m);
	for (k = 0; k < sizeof(tries) / sizeof(tries[0]); k++) {
		t0 = now_mono();
		ck_assert_int_eq(lb_acquire(lock, tries[k]), LB_EALREADY);
		ck_assert(now_mono() - t0 < PROMPT_S);
		assert_reason_names(lock, p.path);
	}
	t0 = now_mono();
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), LB_ETIMEOUT);
	el = now_mono() - t0;
	ck_assert_msg(el >= WAIT_MIN && el < HANG_S, "waited %.3f s", el);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, NAN), LB_EINVAL);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);

	/* LB_FOREVER and > 0: granted when the holder lets go. */
	agent_send(&h, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	agent_send(&h, 'a', HANG_S);
	wait_for_waiters(lock, 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_send(&h, 'a', 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	t0 = now_mono();
	agent_send(&h, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert(now_mono() - t0 < HANG_S);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

/* Re-entrant without a counter: one release frees it; then
 * LB_ENOTLOCKED; release of another's lock LB_ENOTMINE (checked before
 * "not locked" is possible only when nobody holds it). */
START_TEST(test_reentrant_and_release)
{
	unsigned     m = methods[_i] | LB_BROKER;
	struct place p;
	struct agent h;
	lb_lock     *lock;
	uint64_t     t1, t2;
	double       t0;

	place_make(&p, "lk");
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &t1), 0);
	t0 = now_mono();
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), 0);
	ck_assert(now_mono() - t0 < PROMPT_S);
	ck_assert_int_eq(lb_fencing_token(lock, &t2), 0);
	ck_assert_msg(t1 == t2, "re-entrant acquire changed the token");
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);

	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTMINE);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	agent_stop(&h);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

/* lb_break_lock takes the lock from its holder; the holder's late release
 * is LB_ENOTMINE and leaves the new holder's lock alone. */
START_TEST(test_break_then_late_release)
{
	unsigned     m = methods[_i] | LB_BROKER;
	struct place p;
	struct agent h;
	lb_lock     *lock;

	place_make(&p, "lk");
	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_break_lock(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), LB_ENOTMINE);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 0);
	ck_assert_int_eq(agent_do(&h, 't', 0), LB_ENOTLOCKED);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_break_lock(lock), 0);
	agent_stop(&h);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

/* lb_get_holder over the broker: who, since when, the hold's token (the
 * holder's own lb_fencing_token) and the number of waiters. */
START_TEST(test_holder_fields)
{
	unsigned      m = methods[_i] | LB_BROKER;
	struct place  p;
	struct agent  h, w;
	struct answer tok;
	lb_holder     who;
	lb_lock      *lock;
	char          host[256];

	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	place_make(&p, "lk");
	lock = lock_new(p.path, m);
	memset(&who, 0x5a, sizeof(who));
	ck_assert_int_eq(lb_get_holder(lock, &who), 0);
	ck_assert_int_eq(who.pid, 0);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_int_eq(who.waiters, 0);

	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&h, 't', 0);
	tok = agent_answer(&h, HANG_S);
	ck_assert_int_eq(tok.r, 0);
	ck_assert_uint_ne(tok.token, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_int_eq(who.pid, h.pid);
	ck_assert_int_eq(who.tid, h.pid);      /* the broker's, every method */
	ck_assert_str_eq(who.host, host);
	ck_assert_int_eq(who.uid, geteuid());
	ck_assert_msg(who.since > 0 && fabs(who.since - (double)time(NULL)) <
	    600, "since %f", who.since);
	ck_assert_msg(who.token == tok.token, "token %llu, holder's %llu",
	    (unsigned long long)who.token, (unsigned long long)tok.token);
	ck_assert_str_ne(who.unique_name, "");
	ck_assert_int_eq(who.liveness, LB_HOLDER_ALIVE);
	ck_assert_int_eq(who.waiters, 0);

	agent_start(&w, p.path, m, NULL);
	agent_send(&w, 'a', HANG_S);
	wait_for_waiters(lock, 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(agent_answer(&w, HANG_S).r, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, w.pid);
	ck_assert_int_eq(who.waiters, 0);
	ck_assert_msg(who.token > tok.token, "the next grant's token %llu "
	    "is not above %llu", (unsigned long long)who.token,
	    (unsigned long long)tok.token);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(lb_get_holder(lock, &who), 0);
	lb_lock_free(lock);
}
END_TEST

/* One thread's handles, made in a thread of their own. */
struct made {
	const char *path;
	unsigned    flags;
	lb_lock    *lock[2];
};

static void *
make_locks(void *arg)
{
	struct made *mk = arg;

	mk->lock[0] = lb_lock_new(mk->path, mk->flags);
	mk->lock[1] = lb_lock_new(mk->path, mk->flags);
	return NULL;
}

struct peek {
	lb_lock *lock;
	int      mine;
	int      released;
};

static void *
peek_and_release(void *arg)
{
	struct peek *pk = arg;

	pk->mine = lb_i_am_locking(pk->lock);
	pk->released = lb_release(pk->lock);
	return NULL;
}

/* Threads as owners: a handle made in another thread is another owner
 * (for every method, LB_PIDFILE too; LB_UNTHREADED: the process is); a
 * handle used from any thread acts as its maker's. */
START_TEST(test_threads_as_owners)
{
	unsigned     m = methods[_i] | LB_BROKER;
	struct made  mk;
	struct place p;
	struct peek  pk;
	pthread_t    t;
	lb_lock     *mine, *theirs, *theirs_too, *un1, *un2[2];

	place_make(&p, "lk");
	mine = lock_new(p.path, m);
	mk.path = p.path;
	mk.flags = m;
	ck_assert_int_eq(pthread_create(&t, NULL, make_locks, &mk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	theirs = mk.lock[0];
	theirs_too = mk.lock[1];
	ck_assert_ptr_nonnull(theirs);
	ck_assert_ptr_nonnull(theirs_too);

	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs), 0);
	ck_assert_int_eq(lb_acquire(theirs, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(theirs), LB_ENOTMINE);
	ck_assert_int_eq(lb_release(mine), 0);
	ck_assert_int_eq(lb_acquire(theirs, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs_too), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 0);
	pk.lock = theirs;
	ck_assert_int_eq(pthread_create(&t, NULL, peek_and_release, &pk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pk.mine, 1);
	ck_assert_int_eq(pk.released, 0);
	ck_assert_int_eq(lb_is_locked(mine), 0);

	/* LB_UNTHREADED: one owner across threads. */
	un1 = lock_new(p.path, m | LB_UNTHREADED);
	mk.flags = m | LB_UNTHREADED;
	ck_assert_int_eq(pthread_create(&t, NULL, make_locks, &mk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	un2[0] = mk.lock[0];
	un2[1] = mk.lock[1];
	ck_assert_int_eq(lb_acquire(un1, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(un2[0]), 1);
	ck_assert_int_eq(lb_release(un2[0]), 0);
	ck_assert_int_eq(lb_release(un1), LB_ENOTLOCKED);
	lb_lock_free(un2[1]);
	lb_lock_free(un2[0]);
	lb_lock_free(un1);
	lb_lock_free(theirs_too);
	lb_lock_free(theirs);
	lb_lock_free(mine);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

/* Broker holds and in-process holds (another process, LB_LOCAL) exclude
 * each other both ways; a broker waiter gets a lock an in-process holder
 * lets go. */
START_TEST(test_broker_and_local_exclude)
{
	unsigned     m = methods[_i];
	struct place p;
	struct agent loc;
	lb_lock     *lock;

	place_make(&p, "lk");
	lock = lock_new(p.path, m | LB_BROKER);
	agent_start(&loc, p.path, m | LB_LOCAL, NULL);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&loc, 'l', 0), 1);
	ck_assert_int_eq(agent_do(&loc, 'r', 0), LB_ENOTMINE);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&loc, 't', 0), LB_EFAILED);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	agent_send(&loc, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(agent_answer(&loc, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&loc);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(m));
}
END_TEST

/*
 * A broker waiter behind a holder outside the broker (an in-process
 * LB_LOCAL holder that keeps the lock), while something else happens in
 * the lock's directory: LB_ETIMEOUT on time, and the daemon serves other
 * clients meanwhile; once the holder lets go, the waiter gets the lock.
 * (A private daemon: this test has wedged one.)
 */
struct timed_acquire {
	lb_lock *lock;
	double   timeout;
	int      r;
	double   took;
};

static void *
timed_acquire_run(void *arg)
{
	struct timed_acquire *ta = arg;
	double                t0 = now_mono();

	ta->r = lb_acquire(ta->lock, ta->timeout);
	ta->took = now_mono() - t0;
	return NULL;
}

START_TEST(test_waiter_behind_local_holder)
{
	unsigned             m = methods[_i];
	struct timed_acquire ta;
	struct daemon        d;
	struct place         p;
	struct agent         loc;
	pthread_t            t;
	lb_lock             *lock;
	char                 reply[512], dir[PATH_MAX], other[PATH_MAX];
	double               t0;
	int                  fd;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	path_join(other, sizeof(other), p.dir, "unrelated");
	agent_start(&loc, p.path, m | LB_LOCAL, d.socket);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), 0);
	lock = lock_new(p.path, m | LB_BROKER);
	ta.lock = lock;
	ta.timeout = 1.0;
	ck_assert_int_eq(pthread_create(&t, NULL, timed_acquire_run, &ta), 0);
	sleep_s(0.3);
	/* Some other process's business in the same directory. */
	ck_assert_int_ne(fd = open(other, O_WRONLY | O_CREAT, 0644), -1);
	close(fd);
	ck_assert_int_eq(unlink(other), 0);
	t0 = now_mono();
	ck_assert_msg(raw_exchange(d.socket, "HELLO 1 version=1\nPING 2\n",
	    "OK 2", reply, sizeof(reply), HANDOFF_S) == 0, "the daemon did "
	    "not answer another client within %g s while a waiter waited "
	    "(%.3f s)", HANDOFF_S, now_mono() - t0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(ta.r == LB_ETIMEOUT, "acquire(1.0): %s (%s)",
	    lb_error_name(ta.r), lb_lock_error(lock));
	ck_assert_msg(ta.took >= 1.0 - 0.05 && ta.took < 1.0 + HANDOFF_S,
	    "acquire(1.0) returned after %.3f s (%s)", ta.took,
	    lb_lock_error(lock));
	agent_send(&loc, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(agent_answer(&loc, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&loc);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(m));
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Choosing the transport.                                             */

/* AUTO with no daemon: in-process (no token), and the artefact is there
 * for everyone to see. */
START_TEST(test_auto_without_daemon)
{
	struct place p;
	char         sock[PATH_MAX];
	lb_lock     *lock, *peer;
	lb_holder    who;
	uint64_t     token;

	place_make(&p, "lk");
	path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
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
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* AUTO with a daemon: through the broker, as the daemon itself shows. */
START_TEST(test_auto_with_daemon)
{
	const char  *sock = getenv("LOCKBROKER_SOCKET");
	struct place p;
	lb_lock     *lock;
	lb_holder    who;
	uint64_t     token = 0;
	char         reply[8192], want[PATH_MAX + 16];

	place_make(&p, "lk");
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), 0);
	ck_assert_uint_ne(token, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_msg(who.token == token, "holder's token differs");
	ck_assert_int_eq(raw_exchange(sock, "HELLO 1 version=1\nLIST 2\n",
	    "OK 2 ", reply, sizeof(reply), PROMPT_S), 0);
	snprintf(want, sizeof(want), "path=%s ", p.path);
	ck_assert_msg(strstr(reply, want) != NULL, "LIST does not show %s:\n%s",
	    p.path, reply);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(raw_exchange(sock, "HELLO 1 version=1\nLIST 2\n",
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
	struct place p;
	char         sock[PATH_MAX];
	lb_lock     *lock;
	lb_holder    who;
	uint64_t     token;

	place_make(&p, "lk");
	path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
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
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* The environment chooses for handles whose flags do not:
 * LOCKBROKER_TRANSPORT=local, =broker, and an invalid value (auto, with a
 * note); flags win over it. */
START_TEST(test_transport_environment)
{
	struct place p;
	lb_lock     *lock, *forced;
	uint64_t     token;

	place_make(&p, "lk");
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
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* LOCKBROKER_TRANSPORT=broker with no daemon (in a process that has not
 * connected yet): fails like LB_BROKER. */
START_TEST(test_transport_environment_broker)
{
	struct place p;
	lb_lock     *lock;
	char         sock[PATH_MAX];

	place_make(&p, "lk");
	path_join(sock, sizeof(sock), p.dir, "no-daemon.sock");
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", sock, 1), 0);
	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "broker", 1), 0);
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EFAILED);
	assert_reason_names(lock, sock);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* Without LOCKBROKER_SOCKET: $XDG_RUNTIME_DIR/lockbroker/socket when it
 * exists, else /run/lockbroker/socket. */
START_TEST(test_socket_resolution)
{
	struct daemon d;
	struct place  p;
	char          run[PATH_MAX], sub[PATH_MAX], dir[PATH_MAX];
	lb_lock      *lock;
	uint64_t      token;
	pid_t         pid;
	int           status;

	place_make(&p, "lk");
	path_join(run, sizeof(run), top, "run.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(run));
	path_join(sub, sizeof(sub), run, "lockbroker");
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
	ck_assert_int_eq(daemon_start_named(&d, dir, "socket", "state.db"), 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &token), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What the broker adds: FIFO, prompt handoff, dead holders.           */

/* Five waiting processes are served in the order they came. */
START_TEST(test_fifo_five_waiters)
{
	struct place  p;
	struct agent  h, w[5];
	lb_lock      *lock;
	int           k;

	place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	for (k = 0; k < 5; k++) {
		agent_start(&w[k], p.path, LB_BROKER, NULL);
		agent_send(&w[k], 'a', HANG_S * 3);
		wait_for_waiters(lock, (unsigned)k + 1);
	}
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	for (k = 0; k < 5; k++) {
		ck_assert_int_eq(agent_answer(&w[k], HANG_S).r, 0);
		if (k < 4)
			ck_assert_msg(!agent_ready(&w[k + 1], 0.05),
			    "waiter %d was served before waiter %d released",
			    k + 1, k);
		ck_assert_int_eq(agent_do(&w[k], 'r', 0), 0);
	}
	for (k = 0; k < 5; k++)
		agent_stop(&w[k]);
	agent_stop(&h);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* A waiter has the lock promptly after the holder's release (no polling
 * interval in between). */
START_TEST(test_handoff_prompt)
{
	struct place  p;
	struct agent  h, w;
	struct answer rel, got;
	lb_lock      *lock;
	int           round;

	place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	agent_start(&w, p.path, LB_BROKER, NULL);
	for (round = 0; round < 3; round++) {
		ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
		agent_send(&w, 'a', LB_FOREVER);
		wait_for_waiters(lock, 1);
		agent_send(&h, 'r', 0);
		rel = agent_answer(&h, HANG_S);
		ck_assert_int_eq(rel.r, 0);
		got = agent_answer(&w, HANG_S);
		ck_assert_int_eq(got.r, 0);
		ck_assert_msg(got.at - rel.at < HANDOFF_S, "handoff took "
		    "%.3f s", got.at - rel.at);
		ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	}
	agent_stop(&w);
	agent_stop(&h);
	lb_lock_free(lock);
}
END_TEST

/* kill -9 of a holder: its waiter has the lock promptly. */
START_TEST(test_holder_killed)
{
	struct place p;
	struct agent h, w;
	lb_lock     *lock;
	double       t0;

	place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	agent_start(&w, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&w, 'a', LB_FOREVER);
	wait_for_waiters(lock, 1);
	t0 = now_mono();
	agent_kill(&h);
	ck_assert_int_eq(agent_answer(&w, HANG_S).r, 0);
	ck_assert_msg(now_mono() - t0 < HANDOFF_S, "granted %.3f s after the "
	    "holder died", now_mono() - t0);
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	agent_stop(&w);
	lb_lock_free(lock);
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* A forked child neither owns its parent's lock nor keeps it alive: the
 * parent killed with SIGKILL, the lock goes to a waiter although the
 * child lives on. */
START_TEST(test_fork_child_keeps_nothing)
{
	struct place  p;
	struct agent  h;
	struct answer child;
	lb_lock      *lock;
	double        t0;
	int           status;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&h, 'F', 0);
	child = agent_answer(&h, HANG_S);
	ck_assert_int_gt(child.pid, 0);
	ck_assert_msg(child.r == 0, "the child owns its parent's lock: "
	    "i_am_locking %lld (%s)", (long long)child.r, child.why);
	ck_assert_msg(child.r2 == LB_ENOTMINE, "the child's release: %s",
	    lb_error_name((int)child.r2));
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	agent_kill(&h);
	t0 = now_mono();
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_msg(now_mono() - t0 < HANDOFF_S, "granted only after %.3f s",
	    now_mono() - t0);
	/* ... while the child still runs. */
	ck_assert_int_eq(waitpid((pid_t)child.pid, &status, WNOHANG), 0);
	ck_assert_int_eq(kill((pid_t)child.pid, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	kill((pid_t)child.pid, SIGKILL);
	ck_assert_int_eq(waitpid((pid_t)child.pid, &status, 0), child.pid);
	lb_lock_free(lock);
}
END_TEST

/* Many threads, each its own owner, over the one connection: exclusion
 * holds, and a thread blocked in a waiting acquire does not hold up the
 * others' requests. */
#define NWORKERS 6

struct worker {
	const char *path[2];
	double      until;
	int         rounds;
	int        *inside;     /* per lock: owners inside, must stay <= 1 */
	char        bad[160];
};

static pthread_mutex_t inside_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
worker_run(void *arg)
{
	struct worker *wk = arg;
	lb_lock       *lock[2];
	int            k, r, n;

	for (k = 0; k < 2; k++)
		if ((lock[k] = lb_lock_new(wk->path[k], LB_BROKER)) == NULL) {
			snprintf(wk->bad, sizeof(wk->bad), "lb_lock_new");
			return NULL;
		}
	while (now_mono() < wk->until && wk->bad[0] == '\0') {
		k = wk->rounds % 2;
		if ((r = lb_acquire(lock[k], HANG_S)) != 0) {
			snprintf(wk->bad, sizeof(wk->bad), "acquire: %s (%s)",
			    lb_error_name(r), lb_lock_error(lock[k]));
			break;
		}
		pthread_mutex_lock(&inside_mu);
		n = ++wk->inside[k];
		pthread_mutex_unlock(&inside_mu);
		if (n != 1)
			snprintf(wk->bad, sizeof(wk->bad), "%d owners inside",
			    n);
		if ((r = lb_i_am_locking(lock[k])) != 1)
			snprintf(wk->bad, sizeof(wk->bad), "i_am_locking %d",
			    r);
		pthread_mutex_lock(&inside_mu);
		wk->inside[k]--;
		pthread_mutex_unlock(&inside_mu);
		if ((r = lb_release(lock[k])) != 0)
			snprintf(wk->bad, sizeof(wk->bad), "release: %s",
			    lb_error_name(r));
		wk->rounds++;
	}
	lb_lock_free(lock[0]);
	lb_lock_free(lock[1]);
	return NULL;
}

struct blocked {
	const char *path;
	int         r;
	double      done;
};

static void *
blocked_run(void *arg)
{
	struct blocked *b = arg;
	lb_lock        *lock = lb_lock_new(b->path, LB_BROKER);

	b->r = lock == NULL ? LB_ENOMEM : lb_acquire(lock, HANG_S);
	b->done = now_mono();
	if (b->r == 0)
		b->r = lb_release(lock);
	lb_lock_free(lock);
	return NULL;
}

START_TEST(test_threads_share_connection)
{
	struct place   p, q, z;
	struct worker  wk[NWORKERS];
	struct blocked b;
	struct agent   h;
	pthread_t      t[NWORKERS], bt;
	lb_lock       *probe;
	int            inside[2] = { 0, 0 }, k, total = 0;
	double         released;

	place_make(&p, "a");
	place_make(&q, "b");
	place_make(&z, "held");
	agent_start(&h, z.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	probe = lock_new(z.path, LB_BROKER);
	b.path = z.path;
	ck_assert_int_eq(pthread_create(&bt, NULL, blocked_run, &b), 0);
	wait_for_waiters(probe, 1);
	for (k = 0; k < NWORKERS; k++) {
		memset(&wk[k], 0, sizeof(wk[k]));
		wk[k].path[0] = p.path;
		wk[k].path[1] = q.path;
		wk[k].until = now_mono() + 0.7;
		wk[k].inside = inside;
		ck_assert_int_eq(pthread_create(&t[k], NULL, worker_run,
		    &wk[k]), 0);
	}
	for (k = 0; k < NWORKERS; k++) {
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		ck_assert_msg(wk[k].bad[0] == '\0', "worker %d: %s", k,
		    wk[k].bad);
		total += wk[k].rounds;
	}
	/* The others made progress while one thread waited. */
	ck_assert_msg(total >= NWORKERS, "only %d rounds in all", total);
	ck_assert_int_eq(lb_is_locked(probe), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	released = now_mono();
	ck_assert_int_eq(pthread_join(bt, NULL), 0);
	ck_assert_int_eq(b.r, 0);
	ck_assert_msg(b.done - released < HANDOFF_S, "the blocked thread got "
	    "the lock %.3f s after its release", b.done - released);
	agent_stop(&h);
	lb_lock_free(probe);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Ownership: threads of one process, probes, huge timeouts.           */

#define NCOUNTERS 4

/* A thread that counts under the lock with a handle of its own. */
struct counter_thread {
	const char   *path;
	unsigned      flags;
	int           rounds;
	int          *counter;
	int          *inside;
	char          bad[200];
};

static void *
counter_run(void *arg)
{
	struct counter_thread *ct = arg;
	struct timespec        pause = { 0, 200 * 1000 };
	lb_lock               *lock;
	int                    k, r = 0, v, n;

	if ((lock = lb_lock_new(ct->path, ct->flags)) == NULL) {
		snprintf(ct->bad, sizeof(ct->bad), "lb_lock_new: %s",
		    strerror(errno));
		return NULL;
	}
	for (k = 0; k < ct->rounds; k++) {
		if ((r = lb_acquire(lock, HANG_S)) != 0)
			break;
		if ((n = __atomic_add_fetch(ct->inside, 1, __ATOMIC_SEQ_CST)) !=
		    1 && ct->bad[0] == '\0')
			snprintf(ct->bad, sizeof(ct->bad), "round %d: %d owners "
			    "inside", k, n);
		v = __atomic_load_n(ct->counter, __ATOMIC_SEQ_CST);
		nanosleep(&pause, NULL);
		__atomic_store_n(ct->counter, v + 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(ct->inside, 1, __ATOMIC_SEQ_CST);
		if ((r = lb_release(lock)) != 0)
			break;
	}
	if (r < 0 && ct->bad[0] == '\0')
		snprintf(ct->bad, sizeof(ct->bad), "round %d: %s (%s)", k,
		    lb_error_name(r), lb_lock_error(lock));
	lb_lock_free(lock);
	return NULL;
}

/* Runs NCOUNTERS counting threads on one fresh lock, thread k with
 * flags[k % nflags]: the count is exact, no two are inside at once, no
 * call fails. */
static void
count_in_threads(unsigned method, const unsigned *flags, int nflags)
{
	struct counter_thread ct[NCOUNTERS];
	struct place          p;
	pthread_t             t[NCOUNTERS];
	int                   counter = 0, inside = 0, k;
	int                   rounds = method == LB_SQLITE ? 10 : 30;

	place_make(&p, "lk");
	for (k = 0; k < NCOUNTERS; k++) {
		memset(&ct[k], 0, sizeof(ct[k]));
		ct[k].path = p.path;
		ct[k].flags = method | flags[k % nflags];
		ct[k].rounds = rounds;
		ct[k].counter = &counter;
		ct[k].inside = &inside;
		ck_assert_int_eq(pthread_create(&t[k], NULL, counter_run,
		    &ct[k]), 0);
	}
	for (k = 0; k < NCOUNTERS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	for (k = 0; k < NCOUNTERS; k++)
		ck_assert_msg(ct[k].bad[0] == '\0', "thread %d (%#x): %s", k,
		    ct[k].flags, ct[k].bad);
	ck_assert_int_eq(counter, NCOUNTERS * rounds);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(method));
}

/* Threads of one process, each with its own handle, through the broker:
 * separate owners for every method (pidfile too). */
START_TEST(test_threads_exclude)
{
	static const unsigned broker[] = { LB_BROKER };

	count_in_threads(methods[_i], broker, 1);
}
END_TEST

/* The same with the threads' transports mixed: through the broker and
 * in-process at once. */
START_TEST(test_threads_exclude_mixed)
{
	static const unsigned mixed[] = { LB_BROKER, LB_LOCAL, 0 };

	count_in_threads(methods[_i], mixed, 3);
}
END_TEST

/* A thread holds in-process, another asks the broker, and the other way
 * round: the second never gets the lock while the first holds it. */
START_TEST(test_threads_local_and_broker)
{
	struct made  mk;
	struct place p;
	pthread_t    t;
	lb_lock     *loc, *brk, *loc2, *brk2;

	place_make(&p, "lk");
	loc = lock_new(p.path, methods[_i] | LB_LOCAL);
	brk = lock_new(p.path, methods[_i] | LB_BROKER);
	mk.path = p.path;
	mk.flags = methods[_i] | LB_LOCAL;
	ck_assert_int_eq(pthread_create(&t, NULL, make_locks, &mk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	loc2 = mk.lock[0];
	lb_lock_free(mk.lock[1]);
	mk.flags = methods[_i] | LB_BROKER;
	ck_assert_int_eq(pthread_create(&t, NULL, make_locks, &mk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	brk2 = mk.lock[0];
	lb_lock_free(mk.lock[1]);

	ck_assert_int_eq(lb_acquire(loc, 0), 0);
	ck_assert_int_eq(lb_acquire(brk2, 0), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(brk2), 0);
	ck_assert_int_eq(lb_release(brk2), LB_ENOTMINE);
	ck_assert_int_eq(lb_i_am_locking(loc), 1);
	ck_assert_int_eq(lb_release(loc), 0);

	ck_assert_int_eq(lb_acquire(brk, 0), 0);
	ck_assert_int_eq(lb_acquire(loc2, 0), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(loc2), 0);
	ck_assert_int_eq(lb_release(loc2), LB_ENOTMINE);
	ck_assert_int_eq(lb_i_am_locking(brk), 1);
	ck_assert_int_eq(lb_release(brk), 0);
	lb_lock_free(brk2);
	lb_lock_free(loc2);
	lb_lock_free(brk);
	lb_lock_free(loc);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

/* A probe through the broker: another handle of the holder's owner,
 * made, used and freed, releases nothing (re-entrant acquire included);
 * the acquiring handle's free releases. */
START_TEST(test_probe_free_keeps_lock)
{
	unsigned     m = methods[_i] | LB_BROKER;
	struct place p;
	lb_lock     *h, *q, *other;

	place_make(&p, "lk");
	h = lock_new(p.path, m);
	other = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(h, 0), 0);
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_is_locked(q), 1);
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(h), 1);
	ck_assert_int_eq(lb_i_am_locking(h), 1);
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(other), 1);
	ck_assert_int_eq(lb_release(h), 0);
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(other), 0);
	lb_lock_free(other);
	lb_lock_free(h);
	ck_assert_int_eq(testdir_count(p.dir), leftovers(methods[_i]));
}
END_TEST

struct locked_probe {
	const char *path;
	int         calls, locked, mine;
};

/* lb_locked's fn: probes the lock with a handle of its own, freed. */
static void
locked_probe_fn(void *arg)
{
	struct locked_probe *c = arg;
	lb_lock             *probe;

	c->calls++;
	if ((probe = lb_lock_new(c->path, 0)) == NULL)
		return;
	c->locked = lb_is_locked(probe);
	c->mine = lb_i_am_locking(probe);
	lb_lock_free(probe);
}

/* lb_locked through the broker (LOCKBROKER_TRANSPORT=broker), whose
 * function probes the lock with its own handle: 0. */
START_TEST(test_locked_probe_freed)
{
	struct locked_probe c = { NULL, 0, -1, -1 };
	struct place        p;
	struct agent        a;

	place_make(&p, "lk");
	c.path = p.path;
	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "broker", 1), 0);
	ck_assert_int_eq(lb_locked(p.path, 0, locked_probe_fn, &c), 0);
	unsetenv("LOCKBROKER_TRANSPORT");
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.locked, 1);
	ck_assert_int_eq(c.mine, 1);
	agent_start(&a, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&a, 'l', 0), 0);
	agent_stop(&a);
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

struct timed {
	lb_lock *lock;
	double   timeout;
	int      r;
	int      done;
};

static void *
timed_run(void *arg)
{
	struct timed *tm = arg;

	tm->r = lb_acquire(tm->lock, tm->timeout);
	__atomic_store_n(&tm->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Waits up to seconds for tm's acquire to return: 1 when it did. */
static int
timed_wait(struct timed *tm, double seconds)
{
	double end = now_mono() + seconds;

	while (!__atomic_load_n(&tm->done, __ATOMIC_SEQ_CST) &&
	    now_mono() < end)
		sleep_s(0.01);
	return __atomic_load_n(&tm->done, __ATOMIC_SEQ_CST);
}

/* A finite timeout beyond what the clocks count (1e19 s, 1e300, DBL_MAX)
 * is forever through the broker: granted at once on a free lock, and on
 * a held one when its holder lets go; other broker calls of the process
 * go on meanwhile. */
START_TEST(test_timeout_huge)
{
	static const double huge[] = { 1e10, 1e19, 1e300, DBL_MAX };
	struct place p;
	struct agent h;
	struct timed tm;
	pthread_t    t;
	lb_lock     *lock, *probe;
	size_t       k;

	place_make(&p, "lk");
	lock = lock_new(p.path, methods[_i] | LB_BROKER);
	probe = lock_new(p.path, methods[_i] | LB_BROKER);
	for (k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
		memset(&tm, 0, sizeof(tm));
		tm.lock = lock;
		tm.timeout = huge[k];
		ck_assert_int_eq(pthread_create(&t, NULL, timed_run, &tm), 0);
		ck_assert_msg(timed_wait(&tm, PROMPT_S), "lb_acquire(%g) of a "
		    "free lock did not return", huge[k]);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_int_eq(tm.r, 0);
		ck_assert_int_eq(lb_release(lock), 0);
	}
	agent_start(&h, p.path, methods[_i] | LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	memset(&tm, 0, sizeof(tm));
	tm.lock = lock;
	tm.timeout = 1e19;
	ck_assert_int_eq(pthread_create(&t, NULL, timed_run, &tm), 0);
	wait_for_waiters(probe, 1);
	ck_assert(!timed_wait(&tm, WAIT_S));
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_msg(timed_wait(&tm, HANG_S), "not granted on release");
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(tm.r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Daemon restarts.                                                    */

/* The daemon killed with SIGKILL and restarted on the same socket and
 * state: the holder still holds (same token), nobody else gets it, a
 * waiter that waited through the crash waits on, and the holder's release
 * hands the lock to it. */
START_TEST(test_restart_after_kill)
{
	struct daemon d;
	struct place  p;
	struct agent  h, w;
	struct answer before, after, got;
	char          dir[PATH_MAX];
	lb_lock      *lock;
	double        released;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, LB_BROKER, d.socket);
	agent_start(&w, p.path, LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&h, 't', 0);
	before = agent_answer(&h, HANG_S);
	ck_assert_int_eq(before.r, 0);
	agent_send(&w, 'a', 30.0);
	ck_assert(!agent_ready(&w, 0.2));

	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	agent_send(&h, 't', 0);
	after = agent_answer(&h, HANG_S);
	ck_assert_int_eq(after.r, 0);
	ck_assert_msg(after.token == before.token, "token %llu became %llu",
	    (unsigned long long)before.token,
	    (unsigned long long)after.token);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert(!agent_ready(&w, 0.2));
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	released = now_mono();
	got = agent_answer(&w, HANG_S);
	ck_assert_msg(got.r == 0, "the waiter: %s (%s)",
	    lb_error_name((int)got.r), got.why);
	ck_assert_msg(got.at - released < HANDOFF_S, "granted %.3f s after "
	    "the release", got.at - released);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A graceful stop (SIGTERM) while a waiter waits, then a restart: the
 * waiter waits on at the next daemon and has the lock when the holder
 * releases it. */
START_TEST(test_restart_after_stop_with_waiter)
{
	struct daemon d;
	struct place  p;
	struct agent  h, w;
	char          dir[PATH_MAX];
	double        released;
	struct answer got;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, LB_BROKER, d.socket);
	agent_start(&w, p.path, LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&w, 'a', 30.0);
	ck_assert(!agent_ready(&w, 0.2));

	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
	ck_assert(!agent_ready(&w, 0.2));       /* still waiting */
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert(!agent_ready(&w, 0.2));
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	released = now_mono();
	got = agent_answer(&w, HANG_S);
	ck_assert_msg(got.r == 0, "the waiter: %s (%s)",
	    lb_error_name((int)got.r), got.why);
	ck_assert_msg(got.at - released < HANDOFF_S, "granted %.3f s after "
	    "the release", got.at - released);
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A restarted daemon that knows nothing of the hold (another state
 * database) does not give it back: the holder's next call says
 * LB_ENOTLOCKED with the reason, once; the lock is free for others. */
START_TEST(test_restart_hold_lost)
{
	struct daemon d;
	struct place  p;
	struct agent  h;
	struct answer a;
	char          dir[PATH_MAX];
	lb_lock      *lock;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "other-state.db"), 0);
	agent_send(&h, 'i', 0);
	a = agent_answer(&h, HANG_S);
	ck_assert_msg(a.r == LB_ENOTLOCKED, "i_am_locking: %lld (%s)",
	    (long long)a.r, a.why);
	ck_assert_msg(strstr(a.why, "lost") != NULL && strstr(a.why, p.path) !=
	    NULL, "reason: %s", a.why);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* lb_i_am_locking of an LB_BROKER handle asked while the daemon dies
 * (stopped first, so that the question is on its way, then killed and
 * restarted): waits for the reconnect and answers 1, not LB_ERROR. */
START_TEST(test_restart_i_am_locking_waits)
{
	struct daemon d;
	struct place  p;
	struct agent  h;
	struct answer a;
	char          dir[PATH_MAX];

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	agent_send(&h, 'i', 0);
	ck_assert(!agent_ready(&h, 0.3));
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);
	a = agent_answer(&h, HANG_S);
	ck_assert_msg(a.r == 1, "i_am_locking: %lld (%s)", (long long)a.r,
	    a.why);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A pidfile ACQUIRE whose grant the daemon made (the pid file, naming
 * the client) but never confirmed before it died: the client's library
 * removes that file before it asks the next daemon again (which cannot
 * tell it from another thread's hold), and is granted. */
START_TEST(test_restart_pidfile_unconfirmed_grant)
{
	struct daemon d;
	struct place  p;
	struct agent  h;
	struct answer a;
	char          dir[PATH_MAX];
	FILE         *f;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	agent_send(&h, 'a', HANG_S);
	ck_assert(!agent_ready(&h, 0.3));
	ck_assert_ptr_nonnull(f = fopen(p.path, "w"));
	fprintf(f, "%ld\n", (long)h.pid);
	fclose(f);
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);
	a = agent_answer(&h, HANG_S + PROMPT_S);
	ck_assert_msg(a.r == 0, "acquire: %s (%s)", lb_error_name((int)a.r),
	    a.why);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* What the pid file at path says: 1 when it names pid, 0 when it names
 * another process, -1 when there is none. */
static int
pidfile_names(const char *path, pid_t pid)
{
	FILE *f;
	long  v = 0;
	int   r = -1;

	if ((f = fopen(path, "r")) != NULL) {
		r = fscanf(f, "%ld", &v) == 1 && v == (long)pid;
		fclose(f);
	}
	return r;
}

/* In a test: a private daemon (as private_daemon) that stops itself when
 * (before or after) the first commit while trigger exists. */
static void
private_daemon_stopping(struct daemon *d, char *dir, size_t size,
    const char *when, const char *trigger)
{
	path_join(dir, size, top, "d.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(daemon_start_stopping(d, dir, when, trigger) == 0,
	    "cannot start lockbrokerd in %s", dir);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", d->socket, 1), 0);
}

/* Asserts that the pid file lock at path excludes a process that takes
 * it in-process (LB_LOCAL, as a lockfile PIDLockFile would): it is
 * really on disk. */
static void
assert_pidfile_excludes(const char *path)
{
	struct agent o;

	agent_start(&o, path, LB_PIDFILE | LB_LOCAL, NULL);
	ck_assert_int_eq(agent_do(&o, 'a', 0), LB_EALREADY);
	agent_stop(&o);
}

/*
 * A pidfile grant the daemon made and recorded (its commit done) but did
 * not confirm before it was killed: after the restart the client's
 * ACQUIRE, sent again, takes it back (the new daemon has it recorded for
 * that owner), and the pid file, which the library must not take for a
 * leftover, stays: the lock excludes in-process takers, the release
 * removes it.
 */
START_TEST(test_restart_pidfile_grant_recorded)
{
	struct daemon d;
	struct place  p;
	struct agent  h;
	struct answer a;
	char          dir[PATH_MAX];
	lb_lock      *lock;
	lb_holder     who;

	place_make(&p, "lk");
	private_daemon_stopping(&d, dir, sizeof(dir), "after", p.path);
	agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
	agent_send(&h, 'a', HANG_S);
	ck_assert_msg(daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d.log);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	ck_assert(!agent_ready(&h, 0.2));               /* no reply */
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	a = agent_answer(&h, HANG_S + PROMPT_S);
	ck_assert_msg(a.r == 0, "acquire: %s (%s)", lb_error_name((int)a.r),
	    a.why);
	ck_assert_msg(pidfile_names(p.path, h.pid) == 1, "the granted lock's "
	    "pid file is gone (taken for a leftover)");
	assert_pidfile_excludes(p.path);
	lock = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h.pid);
	agent_send(&h, 't', 0);
	a = agent_answer(&h, HANG_S);
	ck_assert_int_eq(a.r, 0);
	ck_assert_msg(who.token == a.token, "the daemon's token %llu, the "
	    "holder's %llu", (unsigned long long)who.token,
	    (unsigned long long)a.token);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), -1);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * The same grant, the daemon killed before its commit: the new daemon has
 * no record of it, so the pid file (naming the client) is a leftover the
 * library removes before it asks again; the ACQUIRE sent again takes the
 * lock properly (its pid file made anew, excluding others), and the
 * release removes it.
 */
START_TEST(test_restart_pidfile_grant_unrecorded)
{
	struct daemon d;
	struct place  p;
	struct agent  h;
	struct answer a;
	char          dir[PATH_MAX];

	place_make(&p, "lk");
	private_daemon_stopping(&d, dir, sizeof(dir), "before", p.path);
	agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
	agent_send(&h, 'a', HANG_S);
	ck_assert_msg(daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d.log);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	ck_assert(!agent_ready(&h, 0.2));               /* no reply */
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	a = agent_answer(&h, HANG_S + PROMPT_S);
	ck_assert_msg(a.r == 0, "acquire: %s (%s)", lb_error_name((int)a.r),
	    a.why);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	assert_pidfile_excludes(p.path);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 't', 0), 0);      /* the broker's */
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), -1);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * The same unrecorded grant, but its caller gave up before the next
 * daemon came: _i 0, its ACQUIRE timed out while the connection was being
 * re-established; _i 1, the stopped daemon never answered and the caller
 * gave up on it (then it was killed).  No ACQUIRE of it is left to send
 * again, yet the pid file naming the client is still a leftover of the
 * lost grant: the library removes it once it reaches the next daemon, so
 * that neither its process nor any other waits on it for as long as the
 * client lives.
 */
START_TEST(test_restart_pidfile_unrecorded_grant_given_up)
{
	struct daemon d;
	struct place  p;
	struct agent  h, o;
	struct answer a;
	char          dir[PATH_MAX];

	place_make(&p, "lk");
	private_daemon_stopping(&d, dir, sizeof(dir), "before", p.path);
	agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
	agent_send(&h, 'a', 0.5);
	ck_assert_msg(daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d.log);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	if (_i == 0)
		ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	a = agent_answer(&h, HANG_S);
	ck_assert_msg(a.r == LB_ETIMEOUT, "acquire: %s (%s)",
	    lb_error_name((int)a.r), a.why);
	if (_i == 1)
		ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	/* Answered once the library has reached the new daemon. */
	ck_assert_msg(agent_do(&h, 'l', 0) == 0, "the lost grant's pid file "
	    "is still there");
	ck_assert_int_eq(pidfile_names(p.path, h.pid), -1);
	agent_start(&o, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&o, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&o, 'r', 0), 0);
	agent_stop(&o);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.pid), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* Connects this process's library to the broker from the calling (main)
 * thread, before other threads use it, so that the library's state is
 * set up here: a fork of this thread (a daemon started) then runs the
 * library's fork handlers after its set-up, as ThreadSanitizer can
 * tell. */
static void
library_connect(const char *path)
{
	lb_lock *probe = lock_new(path, LB_PIDFILE | LB_BROKER);

	ck_assert_int_ge(lb_is_locked(probe), 0);
	lb_lock_free(probe);
}

/* A thread of this process: makes its own handle on path (unless it has
 * one) and makes one call on it. */
struct call {
	pthread_t   thread;
	const char *path;
	unsigned    flags;
	char        op;         /* 'a' acquire (arg), 'l' is_locked, 'r' */
	double      arg;
	lb_lock    *lock;
	int         r;
	char        why[512];
	int         done;       /* atomic */
};

static void *
call_run(void *arg)
{
	struct call *c = arg;

	if (c->lock == NULL)
		c->lock = lb_lock_new(c->path, c->flags);
	if (c->lock == NULL)
		c->r = -1000;
	else if (c->op == 'a')
		c->r = lb_acquire(c->lock, c->arg);
	else if (c->op == 'l')
		c->r = lb_is_locked(c->lock);
	else
		c->r = lb_release(c->lock);
	if (c->lock != NULL)
		snprintf(c->why, sizeof(c->why), "%s", lb_lock_error(c->lock));
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Starts a thread making the call op(arg) on path (flags), or on lock. */
static void
call_start(struct call *c, const char *path, unsigned flags, lb_lock *lock,
    char op, double arg)
{
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->flags = flags;
	c->lock = lock;
	c->op = op;
	c->arg = arg;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, call_run, c), 0);
}

/* Waits (at most seconds) for the call to end; its result. */
static int
call_end(struct call *c, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	ck_assert_msg(pthread_timedjoin_np(c->thread, NULL, &ts) == 0,
	    "a call '%c' on %s did not return within %g s", c->op, c->path,
	    seconds);
	return c->r;
}

/*
 * Pid-file locks of ANOTHER live owner are never leftovers: the daemon is
 * killed while this process's ACQUIRE waits (a) behind another process's
 * in-process hold, (b) behind another thread's in-process hold (a pid
 * file naming this process); after the restart the ACQUIRE sent again
 * waits and times out, and the pid file stays the holder's.
 */
START_TEST(test_restart_pidfile_other_owner)
{
	struct daemon d;
	struct place  p, q;
	struct agent  x;
	struct call   c1, c2;
	char          dir[PATH_MAX];
	lb_lock      *mine;

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	place_make(&q, "lk");
	agent_start(&x, p.path, LB_PIDFILE | LB_LOCAL, d.socket);
	ck_assert_int_eq(agent_do(&x, 'a', 0), 0);
	mine = lock_new(q.path, LB_PIDFILE | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	library_connect(p.path);
	call_start(&c1, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	call_start(&c2, q.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	sleep_s(0.3);   /* both ACQUIREs wait at the daemon (or are queued) */
	ck_assert(!__atomic_load_n(&c1.done, __ATOMIC_ACQUIRE));
	ck_assert(!__atomic_load_n(&c2.done, __ATOMIC_ACQUIRE));
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	ck_assert_msg(call_end(&c1, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "another process: %s (%s)", lb_error_name(c1.r), c1.why);
	ck_assert_msg(call_end(&c2, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "another thread: %s (%s)", lb_error_name(c2.r), c2.why);
	ck_assert_int_eq(pidfile_names(p.path, x.pid), 1);
	ck_assert_int_eq(pidfile_names(q.path, getpid()), 1);
	ck_assert_int_eq(agent_do(&x, 'i', 0), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 1);
	ck_assert_int_eq(agent_do(&x, 'r', 0), 0);
	ck_assert_int_eq(lb_release(mine), 0);
	lb_lock_free(mine);
	lb_lock_free(c1.lock);
	lb_lock_free(c2.lock);
	agent_stop(&x);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(testdir_count(q.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * A kept hold of the pid file for this very process (ACQUIRE pid=, whose
 * owner is the process, not a thread) is recorded, and a thread's
 * ACQUIRE of the same lock waits behind it when the daemon dies: after
 * the restart the kept hold's pid file, which names this process, is not
 * a leftover: the ACQUIRE times out, the pid file stays, and the kept
 * hold is released as such.
 */
START_TEST(test_restart_pidfile_kept_hold)
{
	struct daemon d;
	struct place  p;
	struct call   c;
	char          dir[PATH_MAX], req[PATH_MAX + 256], reply[1024];

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	snprintf(req, sizeof(req), "HELLO 1 version=1\nACQUIRE 2 path=%s "
	    "method=pidfile pid=%ld timeout=0\n", p.path, (long)getpid());
	ck_assert_msg(raw_exchange(d.socket, req, "OK 2 ", reply,
	    sizeof(reply), PROMPT_S) == 0, "kept ACQUIRE: %s", reply);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	library_connect(p.path);
	call_start(&c, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	sleep_s(0.3);   /* the ACQUIRE waits at the daemon (or is queued) */
	ck_assert(!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE));
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	ck_assert_msg(call_end(&c, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "the kept hold: %s (%s)", lb_error_name(c.r), c.why);
	ck_assert_msg(pidfile_names(p.path, getpid()) == 1, "the kept hold's "
	    "pid file is gone (taken for a leftover)");
	snprintf(req, sizeof(req), "HELLO 1 version=1\nRELEASE 2 path=%s "
	    "method=pidfile pid=%ld\n", p.path, (long)getpid());
	ck_assert_msg(raw_exchange(d.socket, req, "OK 2", reply,
	    sizeof(reply), PROMPT_S) == 0, "kept RELEASE: %s", reply);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), -1);
	ck_assert_int_eq(lb_acquire(c.lock, 0), 0);
	ck_assert_int_eq(lb_release(c.lock), 0);
	lb_lock_free(c.lock);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * Several threads of this process with requests in flight on its one
 * connection when the daemon dies, stopped after it recorded a pidfile
 * grant to the first and before the reply: the first's ACQUIRE, a second
 * owner's ACQUIRE of the same pid file behind it, a STATUS of it, an
 * ACQUIRE of another lock and a RELEASE of a third.  After the restart
 * each caller has its own proper answer, none hangs, and the first
 * grant's pid file stays (the second owner's look at it does not take it
 * for a leftover); the second owner has it once the first releases.
 */
START_TEST(test_restart_pidfile_pipelined)
{
	struct daemon d;
	struct place  p, q, r;
	struct call   first, second, look, other, held, rel;
	char          dir[PATH_MAX];
	uint64_t      token;

	place_make(&p, "lk");
	place_make(&q, "lk");
	place_make(&r, "lk");
	private_daemon_stopping(&d, dir, sizeof(dir), "after", p.path);
	call_start(&held, r.path, LB_BROKER, NULL, 'a', 0);
	ck_assert_int_eq(call_end(&held, HANG_S), 0);
	call_start(&first, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', HANG_S);
	ck_assert_msg(daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d.log);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	call_start(&second, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a',
	    HANG_S * 2);
	call_start(&look, p.path, LB_PIDFILE | LB_BROKER, NULL, 'l', 0);
	call_start(&other, q.path, LB_BROKER, NULL, 'a', HANG_S);
	call_start(&rel, r.path, LB_BROKER, held.lock, 'r', 0);
	sleep_s(0.3);   /* their requests go out to the stopped daemon */
	ck_assert(!__atomic_load_n(&first.done, __ATOMIC_ACQUIRE));
	ck_assert(!__atomic_load_n(&second.done, __ATOMIC_ACQUIRE));
	ck_assert(!__atomic_load_n(&look.done, __ATOMIC_ACQUIRE));
	ck_assert(!__atomic_load_n(&other.done, __ATOMIC_ACQUIRE));
	ck_assert_int_eq(daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(daemon_start(&d, dir, "state.db"), 0);

	ck_assert_msg(call_end(&first, HANG_S) == 0, "first: %s (%s)",
	    lb_error_name(first.r), first.why);
	ck_assert_msg(pidfile_names(p.path, getpid()) == 1, "the granted "
	    "lock's pid file is gone (taken for a leftover)");
	ck_assert_msg(call_end(&look, HANG_S) == 1, "is_locked: %d (%s)",
	    look.r, look.why);
	ck_assert_msg(call_end(&other, HANG_S) == 0, "other: %s (%s)",
	    lb_error_name(other.r), other.why);
	ck_assert_msg(call_end(&rel, HANG_S) == 0, "release: %s (%s)",
	    lb_error_name(rel.r), rel.why);
	ck_assert_int_eq(testdir_count(r.dir), 0);
	ck_assert(!__atomic_load_n(&second.done, __ATOMIC_ACQUIRE));
	assert_pidfile_excludes(p.path);
	ck_assert_int_eq(lb_i_am_locking(first.lock), 1);
	ck_assert_int_eq(lb_i_am_locking(second.lock), 0);
	ck_assert_int_eq(lb_fencing_token(first.lock, &token), 0);
	ck_assert_int_eq(lb_release(first.lock), 0);
	ck_assert_msg(call_end(&second, HANG_S) == 0, "second: %s (%s)",
	    lb_error_name(second.r), second.why);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	ck_assert_int_eq(lb_i_am_locking(second.lock), 1);
	ck_assert_int_eq(lb_release(second.lock), 0);
	ck_assert_int_eq(lb_release(other.lock), 0);
	lb_lock_free(first.lock);
	lb_lock_free(second.lock);
	lb_lock_free(look.lock);
	lb_lock_free(other.lock);
	lb_lock_free(held.lock);
	ck_assert_int_eq(testdir_count(p.dir), 0);
	ck_assert_int_eq(testdir_count(q.dir), 0);
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* AUTO, and the daemon stops for good while a holder holds and a waiter
 * waits through it: both go on in-process (the holder's release, the
 * waiter's wait) and the waiter gets the lock. */
START_TEST(test_auto_daemon_gone)
{
	struct daemon d;
	struct place  p;
	struct agent  h, w;
	struct answer got;
	char          dir[PATH_MAX];

	private_daemon(&d, dir, sizeof(dir));
	place_make(&p, "lk");
	agent_start(&h, p.path, 0, d.socket);
	agent_start(&w, p.path, 0, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&h, 't', 0), 0);      /* through the broker */
	agent_send(&w, 'a', 20.0);
	ck_assert(!agent_ready(&w, 0.2));
	ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
	ck_assert(!agent_ready(&w, 0.2));
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	got = agent_answer(&w, HANG_S);
	ck_assert_msg(got.r == 0, "the waiter: %s (%s)",
	    lb_error_name((int)got.r), got.why);
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&w, 't', 0), LB_EFAILED);   /* in-process */
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(testdir_count(p.dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *
new_case(const char *name, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	return tc;
}

static Suite *
broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc;

	tc = new_case("api", 60);
	tcase_add_loop_test(tc, test_timeouts, 0, NMETHODS);
	tcase_add_loop_test(tc, test_reentrant_and_release, 0, NMETHODS);
	tcase_add_loop_test(tc, test_break_then_late_release, 0, NMETHODS);
	tcase_add_loop_test(tc, test_holder_fields, 0, NMETHODS);
	tcase_add_loop_test(tc, test_threads_as_owners, 0, NMETHODS);
	tcase_add_loop_test(tc, test_broker_and_local_exclude, 0, NMETHODS);
	tcase_add_loop_test(tc, test_waiter_behind_local_holder, 0, NMETHODS);
	suite_add_tcase(s, tc);

	tc = new_case("ownership", 60);
	tcase_add_loop_test(tc, test_threads_exclude, 0, NMETHODS);
	tcase_add_loop_test(tc, test_threads_exclude_mixed, 0, NMETHODS);
	tcase_add_loop_test(tc, test_threads_local_and_broker, 0, NMETHODS);
	tcase_add_loop_test(tc, test_probe_free_keeps_lock, 0, NMETHODS);
	tcase_add_test(tc, test_locked_probe_freed);
	tcase_add_loop_test(tc, test_timeout_huge, 0, NMETHODS);
	suite_add_tcase(s, tc);

	tc = new_case("transport", 60);
	tcase_add_test(tc, test_auto_without_daemon);
	tcase_add_test(tc, test_auto_with_daemon);
	tcase_add_test(tc, test_broker_without_daemon);
	tcase_add_test(tc, test_transport_environment);
	tcase_add_test(tc, test_transport_environment_broker);
	tcase_add_test(tc, test_socket_resolution);
	suite_add_tcase(s, tc);

	tc = new_case("broker", 60);
	tcase_add_test(tc, test_fifo_five_waiters);
	tcase_add_test(tc, test_handoff_prompt);
	tcase_add_test(tc, test_holder_killed);
	tcase_add_test(tc, test_fork_child_keeps_nothing);
	tcase_add_test(tc, test_threads_share_connection);
	suite_add_tcase(s, tc);

	tc = new_case("restart", 90);
	tcase_add_test(tc, test_restart_after_kill);
	tcase_add_test(tc, test_restart_after_stop_with_waiter);
	tcase_add_test(tc, test_restart_hold_lost);
	tcase_add_test(tc, test_restart_i_am_locking_waits);
	tcase_add_test(tc, test_restart_pidfile_unconfirmed_grant);
	tcase_add_test(tc, test_restart_pidfile_grant_recorded);
	tcase_add_test(tc, test_restart_pidfile_grant_unrecorded);
	tcase_add_loop_test(tc, test_restart_pidfile_unrecorded_grant_given_up,
	    0, 2);
	tcase_add_test(tc, test_restart_pidfile_other_owner);
	tcase_add_test(tc, test_restart_pidfile_kept_hold);
	tcase_add_test(tc, test_restart_pidfile_pipelined);
	tcase_add_test(tc, test_auto_daemon_gone);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	struct daemon d;
	SRunner      *sr;
	char          made[PATH_MAX], dir[PATH_MAX];
	int           failed = 1;

	unsetenv("LOCKBROKER_SQLITE_DB");
	unsetenv("LOCKBROKER_TRANSPORT");
	signal(SIGPIPE, SIG_IGN);
	testdir_make(made, sizeof(made));
	if (realpath(made, top) == NULL) {
		perror(made);
		return 99;
	}
	if (snprintf(dir, sizeof(dir), "%.*s/daemon", PATH_MAX - 16, top) < 0 ||
	    mkdir(dir, 0700) == -1 || daemon_start(&d, dir, "state.db") != 0) {
		fprintf(stderr, "check_broker: cannot start the daemon\n");
		testdir_remove(top);
		return 99;
	}
	setenv("LOCKBROKER_SOCKET", d.socket, 1);
	sr = srunner_create(broker_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (daemon_stop(&d, SIGTERM) != 0) {
		fprintf(stderr, "check_broker: the daemon did not stop cleanly; "
		    "see %s\n", d.log);
		failed++;
	}
	if (testdir_remove(top) != 0)
		fprintf(stderr, "check_broker: cannot remove %s\n", top);
	return failed == 0 ? 0 : 1;
}
