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
 *   link-floor     the system calls of one link-method cycle, in-process
 *                  and without checks: create the unique file, link the
 *                  lock file to it, unlink both (what Python's
 *                  LinkLockFile does, and what the daemon does for a
 *                  client)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
