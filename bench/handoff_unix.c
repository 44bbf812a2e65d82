/*
 * handoff_unix.c: the handoff game (handoff.c) between this process and
 * a forked child, and how a game on Linux tells that a process is
 * blocked in a system call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* blocked_in_syscall: see bench.h. */
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

/* handoff_run: see bench.h (the other process forked). */
void
handoff_run(const char *metric, const struct handoff_ops *ops,
    const char *path, const struct bench_opts *o)
{
	struct handoff_shared *sh;
	int                    rounds = o->samples + HANDOFF_WARMUP;
	int                    rep, a2b[2], b2a[2];
	pid_t                  parent = getpid(), child;

	sh = shared_map(handoff_shared_size(rounds));
	for (rep = 0; rep < o->reps; rep++) {
		if (pipe(a2b) == -1 || pipe(b2a) == -1)
			die("pipe: %s", strerror(errno));
		if ((child = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (child == 0) {
			close(a2b[1]);
			close(b2a[0]);
			handoff_play(1, parent, a2b[0], b2a[1], ops, path, o,
			    sh, rounds);
			_exit(0);
		}
		close(a2b[0]);
		close(b2a[1]);
		handoff_play(0, child, b2a[0], a2b[1], ops, path, o, sh,
		    rounds);
		close(a2b[1]);
		close(b2a[0]);
		wait_child(child, metric);
		handoff_report(metric, rep, sh, rounds);
	}
}
