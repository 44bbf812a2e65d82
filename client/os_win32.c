/*
 * os_win32.c: the client library's OS layer (os.h) on Windows, on
 * winpthreads.  No fork: no handler is ever needed.  No asynchronous
 * signal reaches a thread (Ctrl-C runs a handler on a thread of its own),
 * so none is blocked.  winpthreads' timed waits read the wall clock
 * (pthread_condattr_setclock is not honoured), so a monotonic deadline
 * is waited for as the time left until it.  No notes (os.h): an
 * asynchronous acquire is polled (lb_acquire_finish says when).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "broker.h"
#include "lockfs.h"
#include "os.h"

/* lb__os_atfork: see os.h.  Nothing to register. */
void
lb__os_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void))
{
	(void)prepare;
	(void)parent;
	(void)child;
}

/* lb__os_thread_start: see os.h. */
int
lb__os_thread_start(void *(*main)(void *), void *arg, size_t stack)
{
	pthread_attr_t attr;
	pthread_t      thread;
	int            r;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, stack);
	r = pthread_create(&thread, &attr, main, arg);
	pthread_attr_destroy(&attr);
	return r;
}

/* lb__os_cond_init: see os.h. */
void
lb__os_cond_init(pthread_cond_t *cv)
{
	pthread_cond_init(cv, NULL);
}

/* lb__os_cond_wait_until: see os.h.  The time left, rounded up to the
 * millisecond winpthreads waits in, so that a wait never ends before its
 * deadline. */
void
lb__os_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double until)
{
	struct timespec ts;
	double          left;

	if (isinf(until) ||
	    (left = until - lockfs_now()) > 2 * LB__TIMEOUT_MAX_S) {
		pthread_cond_wait(cv, mu);
		return;
	}
	if (left < 0)
		left = 0;
	left = ceil(left * 1e3) / 1e3;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait_relative_np(cv, mu, &ts);
}

/* lb__os_note_open: see os.h.  None on Windows. */
int
lb__os_note_open(struct lb__note *n)
{
	n->fd[0] = n->fd[1] = -1;
	return ENOSYS;
}

/* lb__os_note_set, lb__os_note_clear, lb__os_note_close: see os.h;
 * a note is never open here. */
void
lb__os_note_set(struct lb__note *n)
{
	(void)n;
}

void
lb__os_note_clear(struct lb__note *n)
{
	(void)n;
}

void
lb__os_note_close(struct lb__note *n)
{
	n->fd[0] = n->fd[1] = -1;
}

/* lb__os_euid: see os.h. */
lb_uid_t
lb__os_euid(void)
{
	return 0;
}

/* lb__os_holder_uid: see os.h. */
lb_uid_t
lb__os_holder_uid(lb_uid_t uid)
{
	(void)uid;
	return (lb_uid_t)-1;
}
