/*
 * clock.c: time for every part of lockbroker: the monotonic clock that
 * deadlines are measured on, sleeping, and the randomised back-off of
 * anything that polls (see lockfs.h).
 */
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "lockfs.h"

/* lockfs_now: see lockfs.h. */
double
lockfs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* lockfs_sleep: see lockfs.h. */
void
lockfs_sleep(double seconds)
{
	struct timespec ts;

	if (!(seconds > 0))
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* lockfs_jitter: see lockfs.h.  A per-thread xorshift32 seeded by pid,
 * thread and time, so that processes do not draw in step (and the
 * application's rand() is left alone). */
double
lockfs_jitter(void)
{
	static __thread unsigned int x;

	if (x == 0)
		x = ((unsigned int)getpid() * 2654435761u ^
		    (unsigned int)lockfs_gettid() * 40503u ^
		    (unsigned int)(unsigned long long)(lockfs_now() * 1e6)) |
		    1u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return 0.75 + 0.5 * (double)(x >> 8) / (double)(1u << 24);
}

/* lockfs_backoff_init: see lockfs.h. */
void
lockfs_backoff_init(struct lockfs_backoff *b, double first, double max)
{
	b->next = first;
	b->max = max;
}

/* lockfs_backoff_pause: see lockfs.h. */
double
lockfs_backoff_pause(struct lockfs_backoff *b, double deadline)
{
	double left = isinf(deadline) ? b->max : deadline - lockfs_now();
	double pause = b->next * lockfs_jitter();

	if (left <= 0)
		return -1;
	if ((b->next *= 2) > b->max)
		b->next = b->max;
	return pause < left ? pause : left;
}

/* lockfs_backoff_sleep: see lockfs.h. */
int
lockfs_backoff_sleep(struct lockfs_backoff *b, double deadline)
{
	double pause = lockfs_backoff_pause(b, deadline);

	if (pause < 0)
		return -1;
	lockfs_sleep(pause);
	return 0;
}
