/*
 * clock.c: the benchmark programs' clock and sleep.  Built for every
 * system (on Windows, winpthreads' monotonic clock, QueryPerformanceCounter,
 * which every process shares too).
 */
#include <errno.h>
#include <time.h>

#include "bench.h"

/* now_ns: the monotonic clock in nanoseconds (the clock every process on
 * the host shares, so that two processes' readings compare). */
uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* sleep_ns: sleeps about ns nanoseconds. */
void
sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
	    (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
