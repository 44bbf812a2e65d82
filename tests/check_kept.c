/*
 * check_kept.c: the check suite of liblockbroker's calls for locks kept
 * for another process (lb_acquire_for, lb_release_for) and of the
 * broker's list (lb_list), through the public API, against the real
 * daemon ($LB_BUILDDIR/daemon/lockbrokerd).
 *
 * main() makes a private temporary directory, starts one daemon in it
 * with its own socket and state database (LOCKBROKER_SOCKET points the
 * library there), waits until the socket answers a HELLO, runs the tests,
 * stops the daemon with SIGTERM and removes the directory.
 *
 * The holders are real processes: children that wait on a pipe and exit
 * when it closes (or when killed), reaped at once, so that their pid is
 * gone.  Waits are polled with generous deadlines; no test asserts speed.
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
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "testlib.h"

#define HANG_S    10.0  /* a wait that should end long before */

/* The methods a loop test runs over: a failure of method methods[_i] is
 * reported as "test_name:_i": 0 link, 1 symlink, 2 mkdir, 3 pidfile, 4
 * sqlite. */
static const unsigned methods[] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE, LB_SQLITE
};
#define NMETHODS ((int)(sizeof(methods) / sizeof(methods[0])))

/* The suite's private directory (absolute, no symlinks), and the socket
 * of its daemon. */
static char top[PATH_MAX];
static char daemon_socket[PATH_MAX];

/* ------------------------------------------------------------------ */
/* Helpers: places, clocks, handles, holders.                          */

/* A fresh directory under top for one test, and the lock path NAME in
 * it, into path. */
static void
place_make(char *path, size_t size, const char *name)
{
	char dir[PATH_MAX];
	int  n;

	n = snprintf(dir, sizeof(dir), "%s/t.XXXXXX", top);
	ck_assert(n > 0 && (size_t)n < sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	n = snprintf(path, size, "%s/%s", dir, name);
	ck_assert(n > 0 && (size_t)n < size);
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

/* A process that holds nothing itself and lives until holder_end. */
struct holder {
	pid_t pid;
	int   fd;           /* the write end of its pipe */
};

/* Starts a holder: a child that waits until its pipe closes (it keeps
 * no other descriptor). */
static void
holder_start(struct holder *h)
{
	int  p[2];
	char c;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ne(h->pid = fork(), -1);
	if (h->pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Other holders' pipes too: each ends with its own. */
		for (fd = 3; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		while (read(p[0], &c, 1) == -1 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	h->fd = p[1];
}

/* Ends a holder (its pipe closes, it exits) and reaps it: its pid is
 * gone when this returns. */
static void
holder_end(struct holder *h)
{
	int status;

	if (h->pid <= 0)
		return;
	close(h->fd);
	ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
	h->pid = 0;
}

/* The pid of a process that ran and is gone (started and reaped). */
static pid_t
gone_pid(void)
{
	struct holder h;
	pid_t         pid;

	holder_start(&h);
	pid = h.pid;
	holder_end(&h);
	return pid;
}

/* In a forked child: lb_acquire_for(pid) on path, waiting up to HANG_S.
 * The exit status: 0 when granted, else 1 (the reason on stderr). */
static int
acquire_for_in_child(const char *path, unsigned flags, pid_t pid)
{
	lb_lock *l = lb_lock_new(path, flags);
	int      r = l != NULL ? lb_acquire_for(l, pid, HANG_S, NULL) :
	    LB_ENOMEM;

	if (r != 0)
		fprintf(stderr, "lb_acquire_for(%s, %ld): %s\n", path,
		    (long)pid, l != NULL ? lb_lock_error(l) : "no handle");
	return r == 0 ? 0 : 1;
}

/* Waits up to HANG_S for child pid to exit: 1 with *status set when it
 * did, else 0. */
static int
wait_exit(pid_t pid, int *status)
{
	double end = now_mono() + HANG_S;

	for (; now_mono() < end; sleep_s(0.02))
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
	return 0;
}

/* Waits until lb_is_locked on lock says locked (1) or free (0), for up
 * to HANG_S.  1 when it did. */
static int
wait_locked(lb_lock *lock, int locked)
{
	double end = now_mono() + HANG_S;

	for (; now_mono() < end; sleep_s(0.02))
		if (lb_is_locked(lock) == locked)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The daemon.                                                         */

/* 1 when a HELLO on socket_path is answered with OK within 2 s. */
static int
daemon_answers(const char *socket_path)
{
	struct sockaddr_un sun;
	struct pollfd      pfd;
	const char        *hello = "HELLO 1 version=1\n";
	char               reply[512];
	ssize_t            n;
	int                fd, r = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    write(fd, hello, strlen(hello)) != (ssize_t)strlen(hello))
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 2000) == 1 &&
	    (n = read(fd, reply, sizeof(reply) - 1)) > 0) {
		reply[n] = '\0';
		r = strncmp(reply, "OK 1 ", 5) == 0;
	}
out:
	close(fd);
	return r;
}

/*
 * Starts the daemon in dir (socket dir/sock, written into sock, PATH_MAX
 * bytes; state dir/state.db, which a restarted daemon finds again; log
 * dir/log) and waits until it answers.  Its pid, or -1 with a message on
 * stderr.  No check assertions: main() uses it too.
 */
static pid_t
daemon_start(const char *dir, char *sock)
{
	const char *b = getenv("LB_BUILDDIR");
	char        binary[PATH_MAX], state[PATH_MAX], log[PATH_MAX];
	double      end;
	pid_t       pid;
	int         fd, status;

	snprintf(binary, sizeof(binary), "%s/daemon/lockbrokerd",
	    b != NULL && *b != '\0' ? b : ".");
	if (strlen(dir) > PATH_MAX - 16)
		return -1;
	snprintf(sock, PATH_MAX, "%.*s/sock", PATH_MAX - 16, dir);
	snprintf(state, sizeof(state), "%.*s/state.db", PATH_MAX - 16, dir);
	snprintf(log, sizeof(log), "%.*s/log", PATH_MAX - 16, dir);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) !=
		    -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Nothing of the test's: the holders' pipes above all. */
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		execl(binary, "lockbrokerd", "--socket", sock,
		    "--state", state, "-d", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", binary, strerror(errno));
		_exit(127);
	}
	for (end = now_mono() + HANG_S; now_mono() < end; sleep_s(0.01)) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "lockbrokerd exited (status %#x); see "
			    "%s\n", status, log);
			return -1;
		}
		if (daemon_answers(sock))
			return pid;
	}
	fprintf(stderr, "lockbrokerd did not answer on %s\n", sock);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Stops the daemon with SIGTERM and reaps it: 0 when it exited 0. */
static int
daemon_stop(pid_t pid)
{
	double end = now_mono() + HANG_S;
	int    status = 0;

	kill(pid, SIGTERM);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_mono() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_s(0.01);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* lb_acquire_for, lb_release_for through the broker.                  */

/* A lock kept for another process excludes every other owner (this one
 * included), and a second acquire for the same pid answers 0. */
START_TEST(test_acquire_for_excludes)
{
	struct holder h;
	lb_kept_info  how;
	lb_lock      *kept, *other;
	char          path[PATH_MAX];
	unsigned      m = methods[_i];

	place_make(path, sizeof(path), "lk");
	holder_start(&h);
	kept = lock_new(path, m | LB_BROKER);
	other = lock_new(path, m | LB_BROKER);
	memset(&how, 0x55, sizeof(how));
	ck_assert_msg(lb_acquire_for(kept, h.pid, 0, &how) == 0, "%s",
	    lb_lock_error(kept));
	ck_assert_int_eq(how.broker, 1);
	ck_assert(how.token > 0);
	ck_assert_str_eq(how.socket, daemon_socket);
	ck_assert_int_eq(lb_acquire(other, 0), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(kept), 0);
	ck_assert_int_eq(lb_release(kept), LB_ENOTMINE);
	ck_assert_msg(lb_acquire_for(kept, h.pid, 0, NULL) == 0, "again: %s",
	    lb_lock_error(kept));
	ck_assert_int_eq(lb_release_for(kept, h.pid, NULL), 0);
	ck_assert_int_eq(lb_acquire(other, 0), 0);
	ck_assert_int_eq(lb_release(other), 0);
	lb_lock_free(other);
	lb_lock_free(kept);
	holder_end(&h);
}
END_TEST

/* The hold outlives the handle that took it, names the holder, and ends
 * when the holder exits. */
START_TEST(test_hold_survives_free_ends_with_pid)
{
	struct holder h;
	lb_holder     who;
	lb_lock      *kept, *look;
	char          path[PATH_MAX];

	place_make(path, sizeof(path), "lk");
	holder_start(&h);
	kept = lock_new(path, LB_BROKER);
	ck_assert_msg(lb_acquire_for(kept, h.pid, 1.0, NULL) == 0, "%s",
	    lb_lock_error(kept));
	lb_lock_free(kept);
	look = lock_new(path, LB_BROKER);
	ck_assert_int_eq(lb_is_locked(look), 1);
	ck_assert_int_eq(lb_get_holder(look, &who), 1);
	ck_assert_int_eq(who.pid, h.pid);
	ck_assert_int_eq(lb_acquire(look, 0), LB_EALREADY);
	holder_end(&h);
	ck_assert_msg(wait_locked(look, 0), "the lock outlived its holder");
	lb_lock_free(look);
}
END_TEST

/* A waiting lb_acquire_for is granted when the holder's process exits. */
START_TEST(test_acquire_for_waits)
{
	struct holder h1, h2;
	lb_lock      *lock;
	char          path[PATH_MAX];
	pid_t         waiter;
	int           status;

	place_make(path, sizeof(path), "lk");
	holder_start(&h1);
	holder_start(&h2);
	lock = lock_new(path, LB_BROKER);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, NULL), 0);
	ck_assert_int_eq(lb_acquire_for(lock, h2.pid, 0, NULL), LB_EALREADY);
	ck_assert_int_eq(lb_acquire_for(lock, h2.pid, 0.2, NULL),
	    LB_ETIMEOUT);
	ck_assert_int_ne(waiter = fork(), -1);
	if (waiter == 0) {
		close(h1.fd);
		close(h2.fd);
		_exit(acquire_for_in_child(path, LB_BROKER, h2.pid));
	}
	sleep_s(0.2);
	ck_assert_int_eq(lb_release_for(lock, h1.pid, NULL), 0);
	ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the waiting lb_acquire_for failed (status %#x)", status);
	ck_assert_int_eq(lb_release_for(lock, h2.pid, NULL), 0);
	lb_lock_free(lock);
	holder_end(&h1);
	holder_end(&h2);
}
END_TEST

/* lb_release_for: 0, then LB_ENOTLOCKED; another pid's hold is
 * LB_ENOTMINE; each failure with its reason. */
START_TEST(test_release_for_errors)
{
	struct holder h1, h2;
	lb_lock      *lock;
	char          path[PATH_MAX], pid[32];
	unsigned      flags = _i == 0 ? LB_BROKER : LB_LOCAL;

	place_make(path, sizeof(path), "lk");
	holder_start(&h1);
	holder_start(&h2);
	lock = lock_new(path, flags);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, NULL), 0);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_msg(lb_release_for(lock, h1.pid, NULL) == 0, "%s",
	    lb_lock_error(lock));
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_release_for(lock, h1.pid, NULL), LB_ENOTLOCKED);
	assert_reason_names(lock, "not locked");
	assert_reason_names(lock, path);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, NULL), 0);
	ck_assert_int_eq(lb_release_for(lock, h2.pid, NULL), LB_ENOTMINE);
	snprintf(pid, sizeof(pid), "pid %ld", (long)h2.pid);
	assert_reason_names(lock, pid);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(lb_release_for(lock, h1.pid, NULL), 0);
	lb_lock_free(lock);
	holder_end(&h1);
	holder_end(&h2);
}
END_TEST

/* A pid that names no process: LB_EINVAL, with the reason; nothing is
 * left locked. */
START_TEST(test_no_such_pid)
{
	lb_lock *lock;
	char     path[PATH_MAX], pid[32];
	unsigned flags = _i == 0 ? LB_BROKER : LB_LOCAL;
	pid_t    gone = gone_pid();

	place_make(path, sizeof(path), "lk");
	snprintf(pid, sizeof(pid), "%ld", (long)gone);
	lock = lock_new(path, flags);
	ck_assert_int_eq(lb_acquire_for(lock, gone, 0, NULL), LB_EINVAL);
	assert_reason_names(lock, pid);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_release_for(lock, gone, NULL), LB_EINVAL);
	assert_reason_names(lock, pid);
	ck_assert_int_eq(lb_acquire_for(lock, 0, 0, NULL), LB_EINVAL);
	ck_assert_int_eq(lb_acquire_for(lock, getpid(), NAN, NULL),
	    LB_EINVAL);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* A private daemon for one test, in a fresh directory under top, which
 * this test's library uses (LOCKBROKER_SOCKET); its directory into dir,
 * its socket into sock. */
static pid_t
private_daemon(char *dir, size_t size, char *sock)
{
	pid_t pid;
	int   n;

	n = snprintf(dir, size, "%s/d.XXXXXX", top);
	ck_assert(n > 0 && (size_t)n < size);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg((pid = daemon_start(dir, sock)) != -1,
	    "cannot start lockbrokerd in %s", dir);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", sock, 1), 0);
	return pid;
}

/* A waiting lb_acquire_for survives a restart of the daemon (its
 * connection ends, or the daemon says it stops): it is sent again to the
 * next daemon, which keeps the first holder's hold, and is granted when
 * that is released.  LB_BROKER: no fallback in-process. */
START_TEST(test_acquire_for_across_restart)
{
	struct holder h1, h2;
	lb_holder     who;
	lb_lock      *lock;
	char          dir[PATH_MAX], sock[PATH_MAX], path[PATH_MAX];
	pid_t         d, waiter;
	int           status;

	d = private_daemon(dir, sizeof(dir), sock);
	place_make(path, sizeof(path), "lk");
	holder_start(&h1);
	holder_start(&h2);
	lock = lock_new(path, LB_BROKER);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, NULL), 0);
	ck_assert_int_ne(waiter = fork(), -1);
	if (waiter == 0) {
		close(h1.fd);
		close(h2.fd);
		_exit(acquire_for_in_child(path, LB_BROKER, h2.pid));
	}
	sleep_s(0.3);
	ck_assert_int_eq(daemon_stop(d), 0);
	/* Not in-process meanwhile: the waiter waits for a daemon. */
	sleep_s(1.5);
	ck_assert_int_eq(waitpid(waiter, &status, WNOHANG), 0);
	d = daemon_start(dir, sock);
	ck_assert_int_ne(d, -1);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h1.pid);
	ck_assert_int_eq(waitpid(waiter, &status, WNOHANG), 0);
	ck_assert_msg(lb_release_for(lock, h1.pid, NULL) == 0, "%s",
	    lb_lock_error(lock));
	ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the waiting lb_acquire_for failed (status %#x)", status);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h2.pid);
	ck_assert_int_eq(lb_release_for(lock, h2.pid, NULL), 0);
	lb_lock_free(lock);
	holder_end(&h1);
	holder_end(&h2);
	ck_assert_int_eq(daemon_stop(d), 0);
}
END_TEST

/* AUTO: when the daemon goes away while lb_acquire_for waits and none is
 * back within about a second, the wait goes on in-process, against the
 * artefact the daemon left for the first holder. */
START_TEST(test_acquire_for_auto_falls_back)
{
	struct holder h1, h2;
	lb_holder     who;
	lb_lock      *lock, *local;
	char          dir[PATH_MAX], sock[PATH_MAX], path[PATH_MAX];
	pid_t         d, waiter;
	int           status;

	d = private_daemon(dir, sizeof(dir), sock);
	place_make(path, sizeof(path), "lk");
	holder_start(&h1);
	holder_start(&h2);
	lock = lock_new(path, 0);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, NULL), 0);
	ck_assert_int_ne(waiter = fork(), -1);
	if (waiter == 0) {
		close(h1.fd);
		close(h2.fd);
		_exit(acquire_for_in_child(path, 0, h2.pid));
	}
	sleep_s(0.3);
	ck_assert_int_eq(daemon_stop(d), 0);
	sleep_s(1.5);
	ck_assert_int_eq(waitpid(waiter, &status, WNOHANG), 0);
	local = lock_new(path, LB_LOCAL);
	ck_assert_int_eq(lb_get_holder(local, &who), 1);
	ck_assert_int_eq(who.pid, h1.pid);
	ck_assert_msg(lb_release_for(local, h1.pid, NULL) == 0, "%s",
	    lb_lock_error(local));
	/* Waiting in-process by now: granted without a daemon. */
	ck_assert_msg(wait_exit(waiter, &status), "the waiter did not go on "
	    "in-process");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the waiting lb_acquire_for failed (status %#x)", status);
	ck_assert_int_eq(lb_get_holder(local, &who), 1);
	ck_assert_int_eq(who.pid, h2.pid);
	ck_assert_int_eq(lb_release_for(local, h2.pid, NULL), 0);
	lb_lock_free(local);
	lb_lock_free(lock);
	holder_end(&h1);
	holder_end(&h2);
}
END_TEST

/* In a forked child that has become user nobody: lb_acquire_for and
 * lb_release_for of path (flags) for pid, root's process, are refused
 * as another user's.  The exit status: 0 when both were, else 1 (the
 * reason on stderr). */
static int
refused_as_nobody(const char *path, unsigned flags, pid_t pid)
{
	lb_lock *l;
	int      a, r;

	if (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
	    setuid(65534) == -1 || (l = lb_lock_new(path, flags)) == NULL) {
		perror("becoming nobody");
		return 1;
	}
	a = lb_acquire_for(l, pid, 0, NULL);
	if (a != LB_EFAILED || (strstr(lb_lock_error(l), "another user") ==
	    NULL && strstr(lb_lock_error(l), "EPERM") == NULL)) {
		fprintf(stderr, "lb_acquire_for as nobody: %s: %s\n",
		    lb_error_name(a), lb_lock_error(l));
		return 1;
	}
	r = lb_release_for(l, pid, NULL);
	if (r != LB_EUNLOCK || (strstr(lb_lock_error(l), "another user") ==
	    NULL && strstr(lb_lock_error(l), "EPERM") == NULL)) {
		fprintf(stderr, "lb_release_for as nobody: %s: %s\n",
		    lb_error_name(r), lb_lock_error(l));
		return 1;
	}
	return 0;
}

/* Another user's process: a caller that is not root may neither take nor
 * release a lock for it, through the broker (the daemon refuses) or
 * in-process.  Runs as root only (the caller becomes nobody). */
START_TEST(test_another_users_pid)
{
	struct holder h;
	lb_lock      *lock;
	char          dir[PATH_MAX], sock[PATH_MAX], path[PATH_MAX];
	char         *slash;
	unsigned      flags = _i == 0 ? LB_BROKER : LB_LOCAL;
	pid_t         d = -1, child;
	int           status;

	if (geteuid() != 0)
		return;         /* no other user to become */
	/* Nobody reaches the lock's directory (and the daemon's socket). */
	ck_assert_int_eq(chmod(top, 0711), 0);
	if (flags == LB_BROKER) {
		d = private_daemon(dir, sizeof(dir), sock);
		ck_assert_int_eq(chmod(dir, 0711), 0);
	}
	place_make(path, sizeof(path), "lk");
	slash = strrchr(path, '/');
	*slash = '\0';
	ck_assert_int_eq(chmod(path, 01777), 0);
	*slash = '/';
	holder_start(&h);
	ck_assert_int_ne(child = fork(), -1);
	if (child == 0) {
		close(h.fd);
		_exit(refused_as_nobody(path, flags, h.pid));
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "nobody was not refused (status %#x)", status);
	lock = lock_new(path, flags);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	/* Root may. */
	ck_assert_int_eq(lb_acquire_for(lock, h.pid, 0, NULL), 0);
	ck_assert_int_eq(lb_release_for(lock, h.pid, NULL), 0);
	lb_lock_free(lock);
	holder_end(&h);
	if (d != -1)
		ck_assert_int_eq(daemon_stop(d), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* In-process.                                                         */

/* LB_LOCAL: the artefact names the holder's pid (lb_get_holder reads it
 * from the artefact), nobody watches it, and lb_release_for removes it. */
START_TEST(test_local_artefact_names_pid)
{
	struct holder h;
	lb_kept_info  how;
	lb_holder     who;
	lb_lock      *kept, *look;
	char          path[PATH_MAX];
	unsigned      m = methods[_i];

	place_make(path, sizeof(path), "lk");
	holder_start(&h);
	kept = lock_new(path, m | LB_LOCAL);
	memset(&how, 0x55, sizeof(how));
	ck_assert_msg(lb_acquire_for(kept, h.pid, 0, &how) == 0, "%s",
	    lb_lock_error(kept));
	ck_assert_int_eq(how.broker, 0);
	ck_assert(how.token == 0);
	ck_assert_str_eq(how.socket, "");
	lb_lock_free(kept);
	look = lock_new(path, m | LB_LOCAL);
	ck_assert_int_eq(lb_get_holder(look, &who), 1);
	ck_assert_int_eq(who.pid, h.pid);
	ck_assert_int_eq(who.liveness, LB_HOLDER_ALIVE);
	ck_assert_int_eq(lb_i_am_locking(look), 0);
	ck_assert_int_eq(lb_acquire(look, 0), LB_EALREADY);
	ck_assert_msg(lb_release_for(look, h.pid, NULL) == 0, "%s",
	    lb_lock_error(look));
	ck_assert_int_eq(lb_is_locked(look), 0);
	ck_assert_int_eq(lb_acquire_for(look, h.pid, 0, NULL), 0);
	holder_end(&h);
	/* Nobody watches the pid in-process: the lock stays, stale. */
	ck_assert_int_eq(lb_is_locked(look), 1);
	ck_assert_int_eq(lb_get_holder(look, &who), 1);
	ck_assert_int_eq(who.liveness, LB_HOLDER_DEAD);
	ck_assert_int_eq(lb_break_lock(look), 0);
	lb_lock_free(look);
}
END_TEST

/* No daemon: AUTO takes the lock in-process, LB_BROKER fails naming the
 * socket. */
START_TEST(test_no_daemon)
{
	struct holder h;
	lb_kept_info  how;
	lb_lock      *lock;
	char          path[PATH_MAX], nosock[PATH_MAX + 16];

	place_make(path, sizeof(path), "lk");
	snprintf(nosock, sizeof(nosock), "%s.nosock", path);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", nosock, 1), 0);
	holder_start(&h);
	lock = lock_new(path, LB_BROKER);
	ck_assert_int_eq(lb_acquire_for(lock, h.pid, 0, NULL), LB_EFAILED);
	assert_reason_names(lock, nosock);
	ck_assert_int_eq(lb_release_for(lock, h.pid, NULL), LB_EUNLOCK);
	assert_reason_names(lock, nosock);
	lb_lock_free(lock);
	lock = lock_new(path, 0);
	ck_assert_msg(lb_acquire_for(lock, h.pid, 0, &how) == 0, "%s",
	    lb_lock_error(lock));
	ck_assert_int_eq(how.broker, 0);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(lb_release_for(lock, h.pid, &how), 0);
	ck_assert_int_eq(how.broker, 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
	holder_end(&h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lb_list.                                                            */

/* What the list callback saw of one path. */
struct seen {
	const char   *path;     /* the lock looked for */
	int           calls;    /* callbacks in all */
	int           found;    /* entries of path */
	int           stop_at;  /* return 1 at this call (0: never) */
	lb_list_entry e;        /* path's entry (strings not kept) */
	char          host[256];
};

static int
seen_add(const lb_list_entry *e, void *arg)
{
	struct seen *s = arg;

	s->calls++;
	ck_assert_ptr_nonnull(e->path);
	if (s->path != NULL && strcmp(e->path, s->path) == 0) {
		s->found++;
		s->e = *e;
		snprintf(s->host, sizeof(s->host), "%s",
		    e->host != NULL ? e->host : "(null)");
	}
	return s->calls == s->stop_at;
}

/* A hold kept for a process is listed with its fields, and a waiter
 * counted. */
START_TEST(test_list_fields)
{
	struct holder h1, h2;
	struct seen   s;
	lb_kept_info  how;
	lb_list_info  info;
	lb_lock      *lock;
	char          path[PATH_MAX], error[512], host[256];
	time_t        before = time(NULL);
	pid_t         waiter;
	double        end;
	int           status;

	place_make(path, sizeof(path), "lk");
	holder_start(&h1);
	holder_start(&h2);
	lock = lock_new(path, LB_MKDIR | LB_BROKER);
	ck_assert_int_eq(lb_acquire_for(lock, h1.pid, 0, &how), 0);
	memset(&s, 0, sizeof(s));
	s.path = path;
	memset(&info, 0x55, sizeof(info));
	ck_assert_msg(lb_list(seen_add, &s, &info, error, sizeof(error)) ==
	    0, "%s", error);
	ck_assert_int_eq(s.found, 1);
	ck_assert_str_eq(info.socket, daemon_socket);
	ck_assert_msg(strncmp(info.server, "lockbrokerd", 11) == 0,
	    "server \"%s\"", info.server);
	ck_assert_uint_eq(s.e.method, LB_MKDIR);
	ck_assert(s.e.known & LB_LIST_PID);
	ck_assert_int_eq(s.e.pid, h1.pid);
	ck_assert(s.e.known & LB_LIST_UID);
	ck_assert_uint_eq(s.e.uid, geteuid());
	ck_assert(s.e.known & LB_LIST_TID);
	ck_assert_int_eq(s.e.tid, 0);
	ck_assert(s.e.known & LB_LIST_HOST);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	ck_assert_str_eq(s.host, host);
	ck_assert(s.e.known & LB_LIST_SINCE);
	ck_assert_msg(s.e.since >= (double)before - 1 &&
	    s.e.since <= (double)time(NULL) + 1, "since %f", s.e.since);
	ck_assert(s.e.known & LB_LIST_TOKEN);
	ck_assert(s.e.token == how.token);
	ck_assert(s.e.known & LB_LIST_WAITERS);
	ck_assert_uint_eq(s.e.waiters, 0);
	ck_assert_int_eq(s.e.releasing, 0);

	/* A waiter, kept for another process, is counted. */
	ck_assert_int_ne(waiter = fork(), -1);
	if (waiter == 0) {
		/* The holders' pipes are theirs: h1 must end when closed. */
		close(h1.fd);
		close(h2.fd);
		_exit(acquire_for_in_child(path, LB_MKDIR | LB_BROKER,
		    h2.pid));
	}
	for (end = now_mono() + HANG_S; now_mono() < end; sleep_s(0.02)) {
		memset(&s, 0, sizeof(s));
		s.path = path;
		ck_assert_int_eq(lb_list(seen_add, &s, NULL, NULL, 0), 0);
		if (s.found == 1 && s.e.waiters == 1)
			break;
	}
	ck_assert_msg(s.found == 1 && s.e.waiters == 1,
	    "the waiter was not listed");
	ck_assert_int_eq(s.e.pid, h1.pid);
	holder_end(&h1);
	ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the waiter was not granted (status %#x)", status);
	memset(&s, 0, sizeof(s));
	s.path = path;
	ck_assert_int_eq(lb_list(seen_add, &s, NULL, NULL, 0), 0);
	ck_assert_int_eq(s.found, 1);
	ck_assert_int_eq(s.e.pid, h2.pid);
	ck_assert_uint_eq(s.e.waiters, 0);
	ck_assert_int_eq(lb_release_for(lock, h2.pid, NULL), 0);
	memset(&s, 0, sizeof(s));
	s.path = path;
	ck_assert_int_eq(lb_list(seen_add, &s, NULL, NULL, 0), 0);
	ck_assert_int_eq(s.found, 0);
	lb_lock_free(lock);
	holder_end(&h2);
}
END_TEST

/* The callback stops the list: lb_list returns 1 after that call. */
START_TEST(test_list_stops)
{
	struct holder h;
	struct seen   s;
	lb_lock      *lock[3];
	char          path[3][PATH_MAX], error[512];
	int           i;

	holder_start(&h);
	for (i = 0; i < 3; i++) {
		place_make(path[i], sizeof(path[i]), "lk");
		lock[i] = lock_new(path[i], LB_BROKER);
		ck_assert_int_eq(lb_acquire_for(lock[i], h.pid, 0, NULL), 0);
	}
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(lb_list(seen_add, &s, NULL, error, sizeof(error)),
	    0);
	ck_assert_int_ge(s.calls, 3);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	ck_assert_int_eq(lb_list(seen_add, &s, NULL, error, sizeof(error)),
	    1);
	ck_assert_int_eq(s.calls, 2);
	ck_assert_int_eq(lb_list(NULL, NULL, NULL, error, sizeof(error)),
	    LB_EINVAL);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(lb_release_for(lock[i], h.pid, NULL), 0);
		lb_lock_free(lock[i]);
	}
	holder_end(&h);
}
END_TEST

/* No daemon: lb_list fails with a reason naming the socket. */
START_TEST(test_list_no_daemon)
{
	struct seen  s;
	lb_list_info info;
	char         path[PATH_MAX], nosock[PATH_MAX + 16], error[512];

	place_make(path, sizeof(path), "x");
	snprintf(nosock, sizeof(nosock), "%s.nosock", path);
	ck_assert_int_eq(setenv("LOCKBROKER_SOCKET", nosock, 1), 0);
	memset(&s, 0, sizeof(s));
	strcpy(error, "untouched");
	ck_assert_int_eq(lb_list(seen_add, &s, &info, error, sizeof(error)),
	    LB_ERROR);
	ck_assert_msg(strstr(error, nosock) != NULL, "reason \"%s\"", error);
	ck_assert_str_eq(info.socket, nosock);
	ck_assert_str_eq(info.server, "");
	ck_assert_int_eq(s.calls, 0);
	/* A short buffer is cut, not overrun. */
	memset(error, 'x', sizeof(error));
	ck_assert_int_eq(lb_list(seen_add, &s, NULL, error, 8), LB_ERROR);
	ck_assert_uint_eq(strlen(error), 7);
	ck_assert_int_eq(error[8], 'x');
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
kept_suite(void)
{
	Suite *s = suite_create("kept");
	TCase *tc;

	tc = new_case("kept", 60);
	tcase_add_loop_test(tc, test_acquire_for_excludes, 0, NMETHODS);
	tcase_add_test(tc, test_hold_survives_free_ends_with_pid);
	tcase_add_test(tc, test_acquire_for_waits);
	tcase_add_loop_test(tc, test_release_for_errors, 0, 2);
	tcase_add_loop_test(tc, test_no_such_pid, 0, 2);
	tcase_add_loop_test(tc, test_another_users_pid, 0, 2);
	tcase_add_loop_test(tc, test_local_artefact_names_pid, 0, NMETHODS);
	tcase_add_test(tc, test_no_daemon);
	suite_add_tcase(s, tc);

	tc = new_case("restart", 90);
	tcase_add_test(tc, test_acquire_for_across_restart);
	tcase_add_test(tc, test_acquire_for_auto_falls_back);
	suite_add_tcase(s, tc);

	tc = new_case("list", 60);
	tcase_add_test(tc, test_list_fields);
	tcase_add_test(tc, test_list_stops);
	tcase_add_test(tc, test_list_no_daemon);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	char     made[PATH_MAX], dir[PATH_MAX];
	pid_t    daemon;
	int      failed = 1;

	unsetenv("LOCKBROKER_SQLITE_DB");
	unsetenv("LOCKBROKER_TRANSPORT");
	signal(SIGPIPE, SIG_IGN);
	tl_dir_make(made, sizeof(made));
	if (realpath(made, top) == NULL) {
		perror(made);
		return 99;
	}
	if (snprintf(dir, sizeof(dir), "%.*s/daemon", PATH_MAX - 16, top) < 0 ||
	    mkdir(dir, 0700) == -1 ||
	    (daemon = daemon_start(dir, daemon_socket)) == -1) {
		fprintf(stderr, "check_kept: cannot start the daemon\n");
		tl_dir_remove(top);
		return 99;
	}
	setenv("LOCKBROKER_SOCKET", daemon_socket, 1);
	sr = srunner_create(kept_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (daemon_stop(daemon) != 0) {
		fprintf(stderr, "check_kept: the daemon did not stop cleanly; "
		    "see %s/log\n", dir);
		failed++;
	}
	if (tl_dir_remove(top) != 0)
		fprintf(stderr, "check_kept: cannot remove %s\n", top);
	return failed == 0 ? 0 : 1;
}
