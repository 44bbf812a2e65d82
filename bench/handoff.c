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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define WARMUP_ROUNDS 10
#define QUEUED_WAIT_NS (10ull * 1000000000u)   /* a waiter that never
	                                           blocks is a broken stage */

struct handoff_shared {
	volatile uint64_t t0;
	uint64_t          sample[];
};

/* blocked_in_syscall: 1 when process pid's main thread is blocked in
 * system call nr (from /proc/PID/syscall), else 0. */
int
blocked_in_syscall(pid_t pid, long nr)
{
	char  file[64], buf[64];
	FILE *f;
	long  cur = -1;

	snprintf(file, sizeof(file), "/proc/%ld/syscall", (long)pid);
	if ((f = fopen(file, "r")) == NULL)
		die("cannot read %s: %s", file, strerror(errno));
	if (fgets(buf, sizeof(buf), f) != NULL)
		cur = strtol(buf, NULL, 10);
	fclose(f);
	return cur == nr;
}

/* The game's words (bench.h). */
#define say(fd, c)  word_say(fd, c, "handoff")
#define hear(fd, c) word_hear(fd, c, "handoff")

/* One side of the game: side 0 holds first.  Runs rounds rounds (the
 * first WARMUP_ROUNDS not recorded). */
static void
play(int side, pid_t other, int in, int out, const struct handoff_ops *ops,
    const char *path, const struct bench_opts *o,
    struct handoff_shared *sh, int rounds)
{
	void    *lock = ops->open(path, o);
	uint64_t start;
	int      k;

	if (side == 0) {
		ops->acquire(lock);
		say(out, 'R');
	} else
		hear(in, 'R');
	for (k = 0; k < rounds; k++) {
		if (k % 2 == side) {
			hear(in, 'W');
			start = now_ns();
			while (!ops->queued(lock, other)) {
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

/*
 * handoff_run: o->reps repetitions of o->samples handoffs with the lock
 * kind ops on path, each between two fresh processes (this one and a
 * child); prints one R line per repetition.  Dies when a side fails.
 */
void
handoff_run(const char *metric, const struct handoff_ops *ops,
    const char *path, const struct bench_opts *o)
{
	struct handoff_shared *sh;
	struct samples         s;
	int                    rounds = o->samples + WARMUP_ROUNDS;
	int                    rep, k, a2b[2], b2a[2];
	pid_t                  parent = getpid(), child;

	sh = shared_map(sizeof(*sh) + (size_t)rounds * sizeof(uint64_t));
	for (rep = 0; rep < o->reps; rep++) {
		if (pipe(a2b) == -1 || pipe(b2a) == -1)
			die("pipe: %s", strerror(errno));
		if ((child = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (child == 0) {
			close(a2b[1]);
			close(b2a[0]);
			play(1, parent, a2b[0], b2a[1], ops, path, o, sh,
			    rounds);
			_exit(0);
		}
		close(a2b[0]);
		close(b2a[1]);
		play(0, child, b2a[0], a2b[1], ops, path, o, sh, rounds);
		close(a2b[1]);
		close(b2a[0]);
		wait_child(child, metric);
		samples_init(&s, (size_t)o->samples);
		for (k = WARMUP_ROUNDS; k < rounds; k++)
			samples_add(&s, sh->sample[k]);
		report_latency(metric, rep, &s);
		samples_free(&s);
	}
}
