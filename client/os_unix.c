/*
 * os_unix.c: the client library's OS layer (os.h) on POSIX systems.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "lockfs.h"
#include "os.h"

/* lb__os_atfork: see os.h. */
void
lb__os_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void))
{
	pthread_atfork(prepare, parent, child);
}

/* lb__os_thread_start: see os.h.  Every signal is blocked while the
 * thread is created, so that it starts (and stays) with all of them
 * blocked; the caller's mask is put back after. */
int
lb__os_thread_start(void *(*main)(void *), void *arg, size_t stack)
{
	pthread_attr_t attr;
	pthread_t      thread;
	sigset_t       all, old;
	int            r;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, stack);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&thread, &attr, main, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return r;
}

/* lb__os_cond_init: see os.h.  The condition variable waits by the
 * monotonic clock, lockfs_now's. */
void
lb__os_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* lb__os_cond_wait_until: see os.h. */
void
lb__os_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double until)
{
	struct timespec ts;

	if (isinf(until) || until > 2 * LB__TIMEOUT_MAX_S + lockfs_now()) {
		/* (A deadline that far would overflow time_t below.) */
		pthread_cond_wait(cv, mu);
		return;
	}
	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* lb__os_note_open: see os.h.  A pipe; pipe2 is not everywhere, so the
 * flags are set after (a fork in between leaves the child ends it closes
 * with the handle's renewal: lock.c). */
int
lb__os_note_open(struct lb__note *n)
{
	int k, r = 0;

	n->fd[0] = n->fd[1] = -1;
	if (pipe(n->fd) == -1) {
		r = errno;
		n->fd[0] = n->fd[1] = -1;
		goto out;
	}
	for (k = 0; k < 2; k++)
		if (fcntl(n->fd[k], F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(n->fd[k], F_SETFL, O_NONBLOCK) == -1) {
			r = errno;
			lb__os_note_close(n);
			goto out;
		}
out:
	return r;
}

/* lb__os_note_set: see os.h.  A full pipe is readable already. */
void
lb__os_note_set(struct lb__note *n)
{
	char    b = 1;
	ssize_t w;

	if (n->fd[1] != -1)
		do
			w = write(n->fd[1], &b, 1);
		while (w == -1 && errno == EINTR);
}

/* lb__os_note_clear: see os.h. */
void
lb__os_note_clear(struct lb__note *n)
{
	char    b[64];
	ssize_t got;

	if (n->fd[0] != -1)
		do
			got = read(n->fd[0], b, sizeof(b));
		while (got > 0 || (got == -1 && errno == EINTR));
}

/* lb__os_note_close: see os.h. */
void
lb__os_note_close(struct lb__note *n)
{
	int k;

	for (k = 0; k < 2; k++)
		if (n->fd[k] != -1) {
			close(n->fd[k]);
			n->fd[k] = -1;
		}
}

/* lb__os_euid: see os.h. */
lb_uid_t
lb__os_euid(void)
{
	return geteuid();
}

/* lb__os_holder_uid: see os.h. */
lb_uid_t
lb__os_holder_uid(lb_uid_t uid)
{
	return uid;
}
