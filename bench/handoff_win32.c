/*
 * handoff_win32.c: the handoff game (handoff.c) on Windows, between this
 * process and a copy of the program started for it (no fork): the words
 * go on two anonymous pipes and the samples into a file mapping, whose
 * handles the copy inherits and is told on its command line:
 *
 *   lbbench-win --handoff-side METHOD MAPPING IN OUT ROUNDS PID PATH
 *
 * (METHOD "-" for the library's default).  The copy plays liblockbroker
 * through the broker (lb_handoff_ops) only, the one lock kind the
 * Windows program measures; it finds the daemon as this process does,
 * through LOCKBROKER_SOCKET, which it inherits.
 */
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_win32.h"

/* A C runtime descriptor of pipe handle h, for word_say and word_hear
 * (flags: _O_RDONLY or _O_WRONLY); dies when it cannot. */
static int
handle_fd(HANDLE h, int flags)
{
	int fd = _open_osfhandle((intptr_t)h, flags | _O_BINARY);

	if (fd == -1)
		die("handoff: _open_osfhandle: %s", strerror(errno));
	return fd;
}

/* A handle told on the command line (a decimal number); dies on
 * another word. */
static HANDLE
handle_arg(const char *s)
{
	char              *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0)
		die("handoff: not a handle: %s", s);
	return (HANDLE)(uintptr_t)v;
}

/* The shared samples of a game of rounds rounds, in mapping map; dies
 * when it cannot be mapped. */
static struct handoff_shared *
shared_view(HANDLE map, int rounds)
{
	void *p = MapViewOfFile(map, FILE_MAP_ALL_ACCESS, 0, 0,
	    handoff_shared_size(rounds));

	if (p == NULL)
		die("handoff: MapViewOfFile: error %lu",
		    (unsigned long)GetLastError());
	return p;
}

/* handoff_side_main: see bench_win32.h. */
int
handoff_side_main(int argc, char **argv)
{
	struct bench_opts o;
	int               rounds;

	if (argc != 9 || (rounds = atoi(argv[6])) <= HANDOFF_WARMUP)
		die("usage: lbbench-win --handoff-side METHOD MAPPING IN OUT "
		    "ROUNDS PID PATH");
	memset(&o, 0, sizeof(o));
	o.arg = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	handoff_play(1, (pid_t)atol(argv[7]),
	    handle_fd(handle_arg(argv[4]), _O_RDONLY),
	    handle_fd(handle_arg(argv[5]), _O_WRONLY), &lb_handoff_ops,
	    argv[8], &o, shared_view(handle_arg(argv[3]), rounds), rounds);
	return 0;
}

/* handoff_run: see bench.h (the other process a copy of the program). */
void
handoff_run(const char *metric, const struct handoff_ops *ops,
    const char *path, const struct bench_opts *o)
{
	SECURITY_ATTRIBUTES    sa = { sizeof(sa), NULL, TRUE };
	struct handoff_shared *sh;
	HANDLE                 map, a2b[2], b2a[2], child;
	char                   args[8192];
	int                    rounds = o->samples + HANDOFF_WARMUP;
	int                    rep, in, out;

	if (ops != &lb_handoff_ops)
		die("%s: on Windows the other side plays liblockbroker "
		    "through the broker only", metric);
	map = CreateFileMappingA(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE,
	    0, (DWORD)handoff_shared_size(rounds), NULL);
	if (map == NULL)
		die("handoff: CreateFileMapping: error %lu",
		    (unsigned long)GetLastError());
	sh = shared_view(map, rounds);
	for (rep = 0; rep < o->reps; rep++) {
		/* The child's ends inheritable, this process's not. */
		if (!CreatePipe(&a2b[0], &a2b[1], &sa, 0) ||
		    !CreatePipe(&b2a[0], &b2a[1], &sa, 0) ||
		    !SetHandleInformation(a2b[1], HANDLE_FLAG_INHERIT, 0) ||
		    !SetHandleInformation(b2a[0], HANDLE_FLAG_INHERIT, 0))
			die("handoff: CreatePipe: error %lu",
			    (unsigned long)GetLastError());
		if ((size_t)snprintf(args, sizeof(args), "--handoff-side %s "
		    "%llu %llu %llu %d %lu \"%s\"", o->arg != NULL ? o->arg :
		    "-", (unsigned long long)(uintptr_t)map,
		    (unsigned long long)(uintptr_t)a2b[0],
		    (unsigned long long)(uintptr_t)b2a[1], rounds,
		    (unsigned long)GetCurrentProcessId(), path) >=
		    sizeof(args))
			die("handoff: path too long: %s", path);
		child = proc_self(args);
		CloseHandle(a2b[0]);
		CloseHandle(b2a[1]);
		in = handle_fd(b2a[0], _O_RDONLY);
		out = handle_fd(a2b[1], _O_WRONLY);
		handoff_play(0, (pid_t)GetProcessId(child), in, out, ops,
		    path, o, sh, rounds);
		close(in);
		close(out);
		proc_wait(child, metric);
		handoff_report(metric, rep, sh, rounds);
	}
	UnmapViewOfFile(sh);
	CloseHandle(map);
}
