/*
 * handoff.c: handoff latency, measured one way for every kind of lock:
 * two processes pass one lock back and forth.  In round k the holder waits
 * for the waiter's word that it is about to acquire, then until the waiter
 * is really blocked in its acquire (the lock kind's queued()), notes the
 * time in shared memory and releases; the waiter notes the time its
 * acquire returns and says so.  The sample is the difference: from the
 * release call to the waiter's return, on the clock both processes share.
 *
 *      holder                          waiter
 *        |  <----------- 'W' ------------ |  about to acquire
 *        |  queued(waiter)? ... yes       |  acquire() blocks
 *   t0 = now; release() ----------------> |  returns; t1 = now
 *        |  <----------- 'G' ------------ |  sample[k] = t1 - t0
 *      waiter in round k+1             holder in round k+1
 *
 * This file is the game, built for every system; handoff_unix.c and
 * handoff_win32.c start its other process.
 */

#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define QUEUED_WAIT_NS (10ull * 1000000000u)   /* a waiter that never
	                                           blocks is a broken stage */

/* The game's words (bench.h). */
#define say(fd, c)  word_say(fd, c, "handoff")
#define hear(fd, c) word_hear(fd, c, "handoff")

/* handoff_play: see bench.h. */
void
handoff_play(int side, pid_t other, int in, int out,
    const struct handoff_ops *ops, const char *path,
    const struct bench_opts *o, struct handoff_shared *sh, int rounds)
{
	void    *lock = ops->open(path, o);
	uint64_t start;
	int      k;

	srand((unsigned)(now_ns() ^ (uint64_t)side * 0x9e3779b9u));
	if (side == 0) {
		ops->acquire(lock);
		say(out, 'R');
	} else
		hear(in, 'R');
	for (k = 0; k < rounds; k++) {
		if (k % 2 == side) {
			hear(in, 'W');
			start = now_ns();
			if (o->release_random)
				sleep_ns(HANDOFF_SETTLE_NS + (uint64_t)((double)
				    rand() / ((double)RAND_MAX + 1) *
				    (double)HANDOFF_POLL_MAX_NS));
			while (!o->release_random &&
			    !ops->queued(lock, other)) {
				if (now_ns() - start > QUEUED_WAIT_NS)
					die("handoff: pid %ld never blocked in "
					    "its acquire", (long)other);
				sleep_ns(20000);
			}
			sh->t0 = now_ns();
			ops->release(lock);
			hear(in, 'G');
		} else {
			say(out, 'W');
			ops->acquire(lock);
			sh->sample[k] = now_ns() - sh->t0;
			say(out, 'G');
		}
	}
	if (rounds % 2 == side)
		ops->release(lock);     /* the last round's waiter holds */
	ops->close(lock);
}

/* handoff_report: see bench.h. */
void
handoff_report(const char *metric, int rep,
    const struct handoff_shared *sh, int rounds)
{
	struct samples s;
	char           name[256];
	double         sum = 0;
	int            k;

	samples_init(&s, (size_t)(rounds - HANDOFF_WARMUP));
	for (k = HANDOFF_WARMUP; k < rounds; k++) {
		samples_add(&s, sh->sample[k]);
		sum += (double)sh->sample[k];
	}
	report_latency(metric, rep, &s);
	samples_free(&s);
	if (rounds > HANDOFF_WARMUP) {
		snprintf(name, sizeof(name), "%s.mean", metric);
		report_value(name, rep, sum / (rounds - HANDOFF_WARMUP) / 1e3,
		    "us");
	}
}

/* handoff_shared_size: see bench.h. */
size_t
handoff_shared_size(int rounds)
{
	return sizeof(struct handoff_shared) + (size_t)rounds *
	    sizeof(uint64_t);
}
