/*
 * floors.c: the physical floors, measured in the same run as lockbroker:
 * what the kernel charges for the steps a lock service cannot avoid.
 *
 *   sockrtt        a 64-byte request and its 64-byte reply between two
 *                  processes over a Unix stream socket (a broker request
 *                  can be no faster)
 *   flock          flock(2) lock+unlock of an open file, uncontended
 *   flock-handoff  flock(2): release to the return of a waiter blocked in
 *                  flock (the kernel's own handoff)
 *   wake-floor     the handoff game of the Python peers (released at a
 *                  random moment, 150 ms or more after the waiter slept),
 *                  with the two kinds of lock that cost only wake-ups:
 *                  flock(2) (one: the waiter's) and a relay, a lock server
 *                  of a dozen lines on a Unix socket, the daemon's floor
 *                  (two: the server's, then the waiter's); what waking a
 *                  process that slept that long costs on this machine
 *   link-floor     the system calls of one link-method cycle, in-process
 *                  and without checks: create the unique file, link the
 *                  lock file to it, unlink both (what Python's
 *                  LinkLockFile does, and what the daemon does for a
 *                  client)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define RTT_MSG 64

/* Reads exactly len bytes; 0, or -1 at end of file. */
static int
read_full(int fd, char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, buf, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes exactly len bytes; dies on error. */
static void
write_full(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* The echoing side of sockrtt: returns each message until end of file. */
static void
echo(int fd)
{
	char buf[RTT_MSG];

	while (read_full(fd, buf, sizeof(buf)) == 0)
		write_full(fd, buf, sizeof(buf));
	_exit(0);
}

/* stage_sockrtt: see the top of this file. */
int
stage_sockrtt(const struct bench_opts *o)
{
	struct samples s;
	char           msg[RTT_MSG];
	uint64_t       t0;
	pid_t          child;
	int            sv[2], rep, i;

	memset(msg, 'x', sizeof(msg));
	msg[sizeof(msg) - 1] = '\n';
	for (rep = 0; rep < o->reps; rep++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			die("socketpair: %s", strerror(errno));
		if ((child = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (child == 0) {
			close(sv[0]);
			echo(sv[1]);
		}
		close(sv[1]);
		samples_init(&s, (size_t)o->samples);
		for (i = -100; i < o->samples; i++) {   /* 100 to warm up */
			t0 = now_ns();
			write_full(sv[0], msg, sizeof(msg));
			if (read_full(sv[0], msg, sizeof(msg)) != 0)
				die("sockrtt: the echoing process is gone");
			if (i >= 0)
				samples_add(&s, now_ns() - t0);
		}
		close(sv[0]);
		wait_child(child, "sockrtt echo");
		report_latency("floor.sockrtt", rep, &s);
		samples_free(&s);
	}
	return 0;
}

/* stage_flock: see the top of this file. */
int
stage_flock(const struct bench_opts *o)
{
	struct samples s;
	char           path[4096];
	uint64_t       t0;
	int            fd, rep, i;

	path_join(path, sizeof(path), o->dir, "flock.lock");
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		die("open %s: %s", path, strerror(errno));
	for (rep = 0; rep < o->reps; rep++) {
		samples_init(&s, (size_t)o->samples);
		for (i = -100; i < o->samples; i++) {
			t0 = now_ns();
			if (flock(fd, LOCK_EX) == -1 ||
			    flock(fd, LOCK_UN) == -1)
				die("flock %s: %s", path, strerror(errno));
			if (i >= 0)
				samples_add(&s, now_ns() - t0);
		}
		report_latency("floor.flock", rep, &s);
		samples_free(&s);
	}
	close(fd);
	return 0;
}

/* flock as a handoff_ops lock kind: the open descriptor, boxed. */
static void *
flock_open(const char *path, const struct bench_opts *o)
{
	int *fd = malloc(sizeof(*fd));

	(void)o;
	if (fd == NULL)
		die("out of memory");
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		die("open %s: %s", path, strerror(errno));
	return fd;
}

/* Blocks in flock(2) until the lock is ours. */
static void
flock_acquire(void *lock)
{
	while (flock(*(int *)lock, LOCK_EX) == -1)
		if (errno != EINTR)
			die("flock: %s", strerror(errno));
}

/* Unlocks. */
static void
flock_release(void *lock)
{
	if (flock(*(int *)lock, LOCK_UN) == -1)
		die("flock unlock: %s", strerror(errno));
}

/* The waiter is queued once it sleeps in flock(2). */
static int
flock_queued(void *lock, pid_t waiter)
{
	(void)lock;
	return blocked_in_syscall(waiter, SYS_flock);
}

/* Closes the descriptor and frees the box. */
static void
flock_close(void *lock)
{
	close(*(int *)lock);
	free(lock);
}

static const struct handoff_ops flock_ops = {
	flock_open, flock_acquire, flock_release, flock_queued, flock_close
};

/* stage_flock_handoff: see the top of this file. */
int
stage_flock_handoff(const struct bench_opts *o)
{
	char path[4096];

	path_join(path, sizeof(path), o->dir, "flock-handoff.lock");
	handoff_run("floor.flock_handoff", &flock_ops, path, o);
	return 0;
}

/*
 * The relay: the least a lock server can do for a handoff.  One process
 * serves two clients on a Unix socket: 'A' asks for the lock (answered
 * 'G' once it is the asker's), 'R' gives it back (handed to the client
 * that waits, if one does), 'Q' asks whether a client waits (answered
 * '1' or '0').  No state but who holds and who waits; it runs until both
 * clients have gone.
 */
#define RELAY_CLIENTS 2

/* Writes the one byte c to fd; dies on error. */
static void
relay_say(int fd, char c)
{
	write_full(fd, &c, 1);
}

/* The relay's process: serves the clients that connect to l, two at a
 * time, until it is killed. */
static void
relay_serve(int l)
{
	struct pollfd p[RELAY_CLIENTS + 1];
	int           holder = -1, waiter = -1, i;
	char          c;

	p[0].fd = l;
	for (i = 0; i <= RELAY_CLIENTS; i++) {
		p[i].events = POLLIN;
		if (i > 0)
			p[i].fd = -1;
	}
	for (;;) {
		if (poll(p, RELAY_CLIENTS + 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			die("relay: poll: %s", strerror(errno));
		}
		for (i = 1; i <= RELAY_CLIENTS; i++) {
			if (p[i].fd == -1 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (read(p[i].fd, &c, 1) != 1) {
				close(p[i].fd);
				p[i].fd = -1;
				if (holder == i)
					holder = -1;
				if (waiter == i)
					waiter = -1;
			} else if (c == 'A' && holder == -1) {
				holder = i;
				relay_say(p[i].fd, 'G');
			} else if (c == 'A')
				waiter = i;
			else if (c == 'R' && (holder = waiter) != -1) {
				waiter = -1;
				relay_say(p[holder].fd, 'G');
			} else if (c == 'Q')
				relay_say(p[i].fd, waiter != -1 ? '1' : '0');
		}
		if (p[0].revents & POLLIN) {
			for (i = 1; i <= RELAY_CLIENTS && p[i].fd != -1; i++)
				;
			if (i > RELAY_CLIENTS)
				die("relay: a third client");
			if ((p[i].fd = accept(l, NULL, NULL)) == -1)
				die("relay: accept: %s", strerror(errno));
		}
	}
}

/* A client of the relay at path: its connection, boxed. */
static void *
relay_open(const char *path, const struct bench_opts *o)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int               *fd = malloc(sizeof(*fd));

	(void)o;
	if (fd == NULL || strlen(path) >= sizeof(sa.sun_path))
		die("relay: out of memory, or %s too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("relay: connect to %s: %s", path, strerror(errno));
	return fd;
}

/* Asks the relay for the lock; returns once it is granted. */
static void
relay_acquire(void *lock)
{
	char c;

	relay_say(*(int *)lock, 'A');
	if (read_full(*(int *)lock, &c, 1) != 0 || c != 'G')
		die("relay: no grant");
}

/* Gives the lock back to the relay. */
static void
relay_release(void *lock)
{
	relay_say(*(int *)lock, 'R');
}

/* Asks the relay whether the other client waits. */
static int
relay_queued(void *lock, pid_t waiter)
{
	char c;

	(void)waiter;
	relay_say(*(int *)lock, 'Q');
	if (read_full(*(int *)lock, &c, 1) != 0)
		die("relay: no answer");
	return c == '1';
}

/* Closes the connection and frees the box. */
static void
relay_close(void *lock)
{
	close(*(int *)lock);
	free(lock);
}

static const struct handoff_ops relay_ops = {
	relay_open, relay_acquire, relay_release, relay_queued, relay_close
};

/* Starts the relay listening at path for one game: its pid. */
static pid_t
relay_start(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pid_t              pid;
	int                l;

	if (strlen(path) >= sizeof(sa.sun_path))
		die("relay: %s too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	if ((l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(l, RELAY_CLIENTS) == -1)
		die("relay: listen at %s: %s", path, strerror(errno));
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		relay_serve(l);
	close(l);
	return pid;
}

/* stage_wake_floor: see the top of this file.  One game of o->samples
 * handoffs per repetition and kind (floor.flock_handoff_random,
 * floor.relay_handoff_random). */
int
stage_wake_floor(const struct bench_opts *o)
{
	struct bench_opts r = *o;
	char              path[4096];
	pid_t             relay;

	r.release_random = 1;
	path_join(path, sizeof(path), o->dir, "flock-random.lock");
	handoff_run("floor.flock_handoff_random", &flock_ops, path, &r);
	path_join(path, sizeof(path), o->dir, "relay.socket");
	relay = relay_start(path);
	handoff_run("floor.relay_handoff_random", &relay_ops, path, &r);
	if (kill(relay, SIGKILL) == -1 || waitpid(relay, NULL, 0) != relay)
		die("relay: cannot stop pid %ld", (long)relay);
	unlink(path);
	return 0;
}

/* stage_link_floor: see the top of this file. */
int
stage_link_floor(const struct bench_opts *o)
{
	struct samples s;
	char           unique[4096], lock[4096];
	uint64_t       t0;
	int            fd, rep, i;

	path_join(unique, sizeof(unique), o->dir, "floorhost.%ld",
	    (long)getpid());
	path_join(lock, sizeof(lock), o->dir, "floor.lock");
	for (rep = 0; rep < o->reps; rep++) {
		samples_init(&s, (size_t)o->samples);
		for (i = -100; i < o->samples; i++) {
			t0 = now_ns();
			if ((fd = open(unique, O_WRONLY | O_CREAT | O_CLOEXEC,
			    0644)) == -1)
				die("open %s: %s", unique, strerror(errno));
			close(fd);
			if (link(unique, lock) == -1)
				die("link %s: %s", lock, strerror(errno));
			if (unlink(lock) == -1 || unlink(unique) == -1)
				die("unlink: %s", strerror(errno));
			if (i >= 0)
				samples_add(&s, now_ns() - t0);
		}
		report_latency("floor.link", rep, &s);
		samples_free(&s);
	}
	return 0;
}
