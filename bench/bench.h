/*
 * bench.h: lbbench, the benchmark program that bench/run drives.  Each
 * stage measures one thing and prints its results on standard output, one
 * line each, for bench/report.py to gather:
 *
 *   R METRIC REP P50_US P99_US N     a latency distribution (N samples)
 *   V METRIC REP VALUE UNIT          one figure (ops/s, bytes, s, ...)
 *   M KEY=TEXT                       a note about the run (as why a
 *                                    stage measured nothing)
 *
 * Progress and errors go to standard error.  A stage that cannot do what it
 * measures exits non-zero with the reason: a benchmark that breaks fails,
 * a slow one never does.
 */
#ifndef LBBENCH_H
#define LBBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lockbroker.h"
#include "wire.h"

/* The format checks of the C library that runs the formats: mingw-w64's
 * (with _GNU_SOURCE, C99's: %zu too) names its own. */
#ifdef __MINGW_PRINTF_FORMAT
#define BENCH_PRINTF __MINGW_PRINTF_FORMAT
#else
#define BENCH_PRINTF printf
#endif

/* The options every stage sees (from the command line). */
struct bench_opts {
	const char *dir;        /* a private directory for lock files */
	const char *socket;     /* the daemon's socket */
	int         reps;       /* repetitions of each measurement */
	int         samples;    /* samples per repetition (latencies) */
	double      seconds;    /* duration of one throughput run */
	long        count;      /* the stage's size (locks, connections) */
	const char *arg;        /* the stage's own argument, or NULL */
	int         release_random; /* handoff: the holder releases at a
	                                   random moment (the Python peers'
	                                   game), not once the waiter is
	                                   queued */
};

/* One series of latency samples, in nanoseconds. */
struct samples {
	uint64_t *ns;
	size_t    n, cap;
};

/* say.c: messages to the person running a benchmark, and the one-byte
 * words of a two-process game. */
void     die(const char *fmt, ...)
             __attribute__((format(BENCH_PRINTF, 1, 2), noreturn));
void     progress(const char *fmt, ...)
             __attribute__((format(BENCH_PRINTF, 1, 2)));
void     word_say(int fd, char c, const char *what);
void     word_hear(int fd, char c, const char *what);

/* clock.c */
uint64_t now_ns(void);
void     sleep_ns(uint64_t ns);

/* lbbench.c: the Linux program's helpers. */
long     rss_bytes(pid_t pid);
void     raise_nofile(long want);
void    *shared_map(size_t size);
void     wait_child(pid_t pid, const char *what);
void     path_join(char *out, size_t size, const char *dir, const char *fmt,
             ...) __attribute__((format(BENCH_PRINTF, 4, 5)));
void     make_dir(const char *dir);

/* stats.c */
void     samples_init(struct samples *s, size_t cap);
void     samples_add(struct samples *s, uint64_t ns);
void     samples_free(struct samples *s);
void     report_latency(const char *metric, int rep, struct samples *s);
void     report_value(const char *metric, int rep, double value,
             const char *unit);

/* wire.c: a bare protocol client (docs/PROTOCOL.md), for the stages that
 * need thousands of requests or connections in flight. */
struct wire {
	struct lbw_conn c;
	uint64_t        next_id;
	long            daemon_pid;     /* from the HELLO reply */
};
int      wire_open(struct wire *w, const char *socket, int hello);
void     wire_close(struct wire *w);
void     wire_send(struct wire *w, const char *verb, const char *path,
             const char *extra);
int      wire_reply(struct wire *w, char *line, size_t size);
int      wire_call(struct wire *w, const char *verb, const char *path,
             const char *extra, char *line, size_t size);
long     wire_field(const char *line, const char *key);
void     wire_ping_series(struct wire *w, int rep, int samples,
             int warmup);

/* lbcalls.c: liblockbroker's calls that must succeed (each dies with
 * the library's reason otherwise), and the timed acquire+release loop. */
unsigned method_flag(const char *name);
lb_lock *lock_new(const char *path, unsigned flags);
void     must_acquire(lb_lock *l, double timeout);
void     must_release(lb_lock *l);
void     cycle_series(const char *metric, lb_lock *l, int rep, int samples,
             int warmup);

/* syscalls.c: the system calls of every thread of a process, counted by
 * the kernel (the raw_syscalls:sys_enter tracepoint). */
#define COUNTER_TASKS 64
struct counter {
	int fd[COUNTER_TASKS];
	int n;
};
long     tracepoint_id(char *why, size_t size);
int      counter_open(struct counter *c, pid_t pid, long id, char *why,
             size_t size);
uint64_t counter_read(const struct counter *c);
void     counter_close(struct counter *c);

/* The stages. */
int      stage_sockrtt(const struct bench_opts *o);
int      stage_flock(const struct bench_opts *o);
int      stage_flock_handoff(const struct bench_opts *o);
int      stage_wake_floor(const struct bench_opts *o);
int      stage_link_floor(const struct bench_opts *o);
int      stage_cycle(const struct bench_opts *o);
int      stage_wire_cycle(const struct bench_opts *o);
int      stage_broker_handoff(const struct bench_opts *o);
int      stage_broker_handoff_random(const struct bench_opts *o);
int      stage_throughput(const struct bench_opts *o);
int      stage_held(const struct bench_opts *o);
int      stage_conns(const struct bench_opts *o);
int      stage_daemon_pid(const struct bench_opts *o);
int      stage_syscalls(const struct bench_opts *o);
int      stage_rw_fair(const struct bench_opts *o);
int      stage_deadlock_cost(const struct bench_opts *o);
int      stage_set_fair(const struct bench_opts *o);

/* handoff.c: the two-process handoff game.  Two processes pass one lock
 * back and forth; in each round the holder waits until the other is
 * blocked in its acquire (queued()), notes the time and releases; the
 * waiter notes the time its acquire returns.  The difference is one
 * sample.  The first HANDOFF_WARMUP rounds are not recorded.  With
 * o->release_random the holder instead sleeps HANDOFF_SETTLE_NS plus a
 * random fraction of HANDOFF_POLL_MAX_NS before it releases: the game
 * bench/peers.py plays with the Python locks. */
struct handoff_ops {
	void *(*open)(const char *path, const struct bench_opts *o);
	void  (*acquire)(void *lock);
	void  (*release)(void *lock);
	int   (*queued)(void *lock, pid_t waiter);   /* 1 when waiter waits */
	void  (*close)(void *lock);
};
#define HANDOFF_WARMUP 10
#define HANDOFF_SETTLE_NS   150000000ull      /* peers.py's SETTLE_S */
#define HANDOFF_POLL_MAX_NS 100000000ull      /* peers.py's POLL_MAX_S */

/* What the two sides share (memory both map): the release's time and the
 * samples, one a round. */
struct handoff_shared {
	volatile uint64_t t0;
	uint64_t          sample[];
};

/* handoff_shared_size: the bytes of a struct handoff_shared of rounds
 * rounds. */
size_t   handoff_shared_size(int rounds);

/* handoff_play: one side of a game of rounds rounds with the lock kind
 * ops on path against process other: side 0 holds first; words come on
 * descriptor in and go on out.  Dies when the other side is gone or a
 * call fails. */
void     handoff_play(int side, pid_t other, int in, int out,
             const struct handoff_ops *ops, const char *path,
             const struct bench_opts *o, struct handoff_shared *sh,
             int rounds);

/* handoff_report: prints the recorded samples of a game of rounds rounds
 * as metric's repetition rep, and their mean (V METRIC.mean, µs). */
void     handoff_report(const char *metric, int rep,
             const struct handoff_shared *sh, int rounds);

/* handoff_unix.c, handoff_win32.c: handoff_run: o->reps repetitions of
 * o->samples handoffs with the lock kind ops on path, each between two
 * fresh processes (this one and a child: forked, or on Windows a copy of
 * the program, which plays only lb_handoff_ops); prints one R line per
 * repetition.  Dies when a side fails. */
void     handoff_run(const char *metric, const struct handoff_ops *ops,
             const char *path, const struct bench_opts *o);

/* handoff_unix.c: 1 when process pid's main thread is blocked in system
 * call nr (from /proc/PID/syscall), else 0. */
int      blocked_in_syscall(pid_t pid, long nr);

/* lbcalls.c: liblockbroker through the broker as a lock kind, with the
 * method o->arg names (the library's default when NULL). */
extern const struct handoff_ops lb_handoff_ops;

#endif
