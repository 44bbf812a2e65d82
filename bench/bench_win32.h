/*
 * bench_win32.h: what the Windows benchmark program (lbbench_win.c) adds
 * to bench.h: its other processes, copies of itself in a job that ends
 * them with it, and the floor it measures lockbroker against, a plain
 * named pipe's round trip.
 */
#ifndef LBBENCH_WIN32_H
#define LBBENCH_WIN32_H

#include <windows.h>

/* proc_win32.c */

/* proc_start: runs command line cmdline in the benchmark's job (ended
 * with this process), its standard output and error going to out (a
 * handle of this process's, which it may close after), inheriting this
 * process's inheritable handles; the process's handle.  Dies when it
 * cannot start. */
HANDLE   proc_start(const char *cmdline, HANDLE out);

/* proc_self: proc_start of this program with arguments args (already
 * quoted where they need it), its output to this process's standard
 * error. */
HANDLE   proc_self(const char *args);

/* proc_wait: waits for process p to end and closes its handle; dies
 * (what names it) unless it exited 0. */
void     proc_wait(HANDLE p, const char *what);

/* pipefloor_win32.c */

/* The client's end of the floor's pipe and its echoing process. */
struct pipefloor {
	wchar_t name[128];      /* \\.\pipe\lbbench-echo-PID */
	HANDLE  proc;           /* the echoing process */
	HANDLE  pipe;           /* this process's end */
	size_t  size;           /* the message's bytes */
};

/* pipefloor_open: starts the echoing process on a pipe of its own and
 * connects to it, for messages of size bytes (1 to 8192).  Dies when it
 * cannot. */
void     pipefloor_open(struct pipefloor *f, size_t size);

/* pipefloor_series: times samples round trips (after warmup more): a
 * message written with WriteFile, then read back whole with ReadFile;
 * prints them as floor.pipe_rtt's repetition rep.  Dies when the echoing
 * process is gone. */
void     pipefloor_series(struct pipefloor *f, int rep, int samples,
             int warmup);

/* pipefloor_close: closes this end, which ends the echoing process, and
 * waits for it; dies unless it ended well. */
void     pipefloor_close(struct pipefloor *f);

/* pipefloor_echo_main: the echoing process (lbbench-win --echo NAME
 * SIZE): makes the pipe NAME, takes one client and sends back each SIZE
 * bytes it reads until the client closes; main's exit status. */
int      pipefloor_echo_main(int argc, char **argv);

/* handoff_win32.c */

/* handoff_side_main: the other process of handoff_run (lbbench-win
 * --handoff-side ...); main's exit status. */
int      handoff_side_main(int argc, char **argv);

#endif
