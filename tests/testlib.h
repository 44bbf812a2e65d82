/*
 * testlib.h: the harness the C check suites share.
 *
 *   running   tl_main: a suite run in a private directory of its own
 *             (tl_main_around: with what the whole run shares set up
 *             before it and taken down after it)
 *   places    a fresh directory per test and the path of a lock in it
 *   clocks    monotonic seconds, sleeping
 *   guarded   a copy of some bytes that ends at an inaccessible page
 *   files     joining paths, reading and writing small files, counting
 *   methods   the lock methods the loop tests run over, with their names
 *   children  forked processes that report back through a pipe: holders,
 *             agents, checks run in another process or as user nobody,
 *             sleepers, dead pids, Python
 *   daemon    a lockbrokerd of a test's own, started and stopped from C,
 *             with an environment of its own (a preload, say)
 *
 * Helpers that run in a test assert with check's ck_assert (a failure
 * fails the test, in the test's process).  Those meant for children or
 * for main() say so and never assert.  Every child dies with the process
 * that forked it (PR_SET_PDEATHSIG), so that none outlives its test.
 *
 * testlib.c holds the portable part, testlib_unix.c the rest.  On Windows
 * (testlib_win32.c) there are so far: running, places and directories,
 * clocks, guarded memory, tl_path_join, tl_exists, tl_write_text,
 * tl_read_text (which follows a link there), tl_read_file, the methods,
 * and of the children tl_sleeper_start, tl_dead_pid and tl_kill (a
 * suspended process of the test program, which dies with the test), and
 * tl_self_start (a copy of the test program that runs); and, Windows
 * only, tl_lock_path and tl_tmpdir_here.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <sys/types.h>

#include <check.h>
#include <limits.h>
#include <stddef.h>

#include "lockbroker/codes.h"

/* ------------------------------------------------------------------ */
/* Running a suite.                                                     */

/* The run's private directory: absolute, without symlinks, reachable by
 * user nobody; set by tl_main() and removed when the run ends. */
extern char tl_top[PATH_MAX];

/*
 * tl_main: runs suite s (which it frees) and returns main()'s exit
 * status: 0 when every test passed and the private directory could be
 * removed, else 1; 99 when the run could not be set up.  Before the
 * run it makes tl_top (mode 0755), points TMPDIR at it, unsets
 * LOCKBROKER_SQLITE_DB (the sqlite method's database goes beside each
 * test's locks) and ignores SIGPIPE; mode is check's print mode (CK_ENV
 * lets CK_VERBOSITY choose).  name (the program) prefixes its messages.
 */
int tl_main(const char *name, Suite *s, enum print_output mode);

/* What a suite sets up before its run and takes down after it: arg is
 * tl_main_around's; 0, or -1 with a message on stderr. */
typedef int tl_hook_fn(void *arg);

/*
 * tl_main_around: tl_main, with before(arg) called once tl_top exists and
 * before the first test (when it fails, no test runs and the status is
 * 99), and after(arg) once the last test ran, before tl_top is removed
 * (when it fails, the run fails).  Either may be NULL.  For a suite whose
 * tests share something of the whole run, such as a daemon.
 */
int tl_main_around(const char *name, Suite *s, enum print_output mode,
    tl_hook_fn *before, tl_hook_fn *after, void *arg);

/* ------------------------------------------------------------------ */
/* Places and directories.                                              */

/* A directory of one test and the path of a lock in it. */
struct tl_place {
	char dir[PATH_MAX];
	char path[PATH_MAX];
};

/* tl_place_make: makes a fresh directory under tl_top for one test
 * (mode 0700) and sets p->path to NAME in it; asserts. */
void tl_place_make(struct tl_place *p, const char *name);

/* tl_place_in: tl_place_make into two buffers of PATH_MAX bytes. */
void tl_place_in(char *dir, char *path, const char *name);

/* tl_place_remove: leaves dir (chdir /) and removes it with everything in
 * it; asserts that all went. */
void tl_place_remove(const char *dir);

/* tl_mkdir: makes directory path (mode 0700 where there are modes);
 * asserts. */
void tl_mkdir(const char *path);

/* tl_dir_make: makes a fresh directory under $TMPDIR (or /tmp) and writes
 * its path into out (size bytes).  Aborts the run on failure; no check
 * assertion, so main() may call it. */
void tl_dir_make(char *out, size_t size);

/* tl_dir_remove: removes dir and everything under it, following no
 * symlink.  0, or -1 when something could not be removed.  No
 * assertion. */
int tl_dir_remove(const char *dir);

/* ------------------------------------------------------------------ */
/* Clocks.                                                              */

/* tl_now: seconds on the monotonic clock (comparable between processes of
 * one boot). */
double tl_now(void);

/* tl_sleep: sleeps s seconds (0 or less: not at all), through signals. */
void tl_sleep(double s);

/* ------------------------------------------------------------------ */
/* Guarded memory.                                                      */

/* A copy of some bytes that ends just before an inaccessible page, so
 * that a read past its end faults. */
struct tl_guarded {
	void  *map;             /* the whole mapping */
	size_t maplen;
	char  *data;            /* the copy */
};

/* tl_guard_copy: copies len bytes at data (NULL when len is 0) into new
 * memory of g's, ending just before an inaccessible page; returns the
 * copy (g->data), freed by tl_guard_free(g).  Asserts. */
char *tl_guard_copy(struct tl_guarded *g, const void *data, size_t len);

/* tl_guard_free: frees the memory of tl_guard_copy(g, ...). */
void tl_guard_free(struct tl_guarded *g);

/* ------------------------------------------------------------------ */
/* Files.                                                               */

/* tl_path_join: writes DIR/NAME into out (size bytes); asserts it fits. */
void tl_path_join(char *out, size_t size, const char *dir, const char *name);

/* tl_exists: 1 when something of any type is at file (not followed), else
 * 0. */
int tl_exists(const char *file);

/* tl_count: the number of entries in dir, without . and ..; -1 when it
 * cannot be read.  No assertion. */
int tl_count(const char *dir);

/* tl_write_text: creates file (mode 0644, truncated) holding text;
 * asserts. */
void tl_write_text(const char *file, const char *text);

/* tl_read_text: reads up to size - 1 bytes of file (not followed when a
 * symlink) into buf and NUL-terminates them.  The length, or -1.  No
 * assertion. */
ssize_t tl_read_text(const char *file, char *buf, size_t size);

/* tl_read_file: reads all of file (a binary file too) into buf (size
 * bytes, not terminated) and returns its length; asserts that it could
 * be read and is shorter than size. */
size_t tl_read_file(const char *file, char *buf, size_t size);

/* tl_file_count: how many times what occurs in file (a log: its first
 * 16 MiB, as tl_read_file reads it); asserts. */
unsigned tl_file_count(const char *file, const char *what);

/* tl_copy_file: copies file from to file to (made, or truncated);
 * asserts. */
void tl_copy_file(const char *from, const char *to);

/* tl_write_all: writes all of buf to fd, through EINTR.  0, or -1.  No
 * assertion: for children. */
int tl_write_all(int fd, const void *buf, size_t len);

/* tl_read_all: reads from fd until len bytes came or EOF (or an error);
 * the count read.  No assertion. */
size_t tl_read_all(int fd, void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Methods.                                                             */

/* The five methods, in the order of their flags: a loop test's failure
 * of method tl_all_methods[_i] is reported as "test:_i" (0 link,
 * 1 symlink, 2 mkdir, 3 pidfile, 4 sqlite). */
#define TL_NMETHODS 5
extern const unsigned tl_all_methods[TL_NMETHODS];

/* The methods whose artefacts are files with an owner, which Python's
 * lockfile shares between processes (all but sqlite). */
#define TL_NFILE 4
extern const unsigned tl_file_methods[TL_NFILE];

/* The methods whose unique names are more than the path (all but
 * pidfile). */
#define TL_NNAMED 4
extern const unsigned tl_named_methods[TL_NNAMED];

/* tl_method_name: "link", "symlink", "mkdir", "pidfile" or "sqlite" for
 * the method in flags; "?" for no method. */
const char *tl_method_name(unsigned flags);

/* tl_leftovers: what a method leaves in a directory when no lock is held:
 * 1 for the sqlite method's shared database, else 0. */
int tl_leftovers(unsigned flags);

/* ------------------------------------------------------------------ */
/* Children.                                                            */

/* The uid and gid of user nobody, which tl_become_nobody() drops to. */
#define TL_NOBODY 65534

/* A forked child with a pipe each way; an end is -1 once closed. */
struct tl_child {
	pid_t pid;
	int   to;       /* the parent's end of the pipe to the child */
	int   from;     /* the parent's end of the pipe from the child */
};

/* What a child runs: reads orders from in (EOF: the parent is done with
 * it), writes reports to out.  What it returns is the child's exit
 * status. */
typedef int tl_child_fn(void *arg, int in, int out);

/* tl_child_start flags. */
#define TL_CLOSE_FDS 0x1u       /* close every other descriptor from 3 up */

/*
 * tl_child_start: forks a child that runs fn(arg, in, out) and exits with
 * its result.  With TL_CLOSE_FDS the child first closes every descriptor
 * but stdio and its two pipe ends (so that it does not hold open pipes
 * the parent uses with other children); without, it keeps what the
 * test has open (a handle the test made goes with it).  Asserts.
 */
void tl_child_start(struct tl_child *c, unsigned flags, tl_child_fn *fn,
    void *arg);

/* tl_child_ready: 1 when the child has written something (or closed its
 * end) within seconds, else 0. */
int tl_child_ready(struct tl_child *c, double seconds);

/* tl_child_send: writes all of buf to the child; asserts. */
void tl_child_send(struct tl_child *c, const void *buf, size_t len);

/* tl_child_receive: reads exactly len bytes from the child into buf;
 * asserts that they came within seconds. */
void tl_child_receive(struct tl_child *c, void *buf, size_t len,
    double seconds);

/* tl_child_finish: closes the pipe to the child, which reads EOF. */
void tl_child_finish(struct tl_child *c);

/* tl_child_detach: closes both pipe ends, leaving the child running (to
 * be ended by its pid: tl_kill). */
void tl_child_detach(struct tl_child *c);

/* tl_child_wait: waits for the child to exit (blocks), then closes the
 * pipe ends still open.  Returns its wait status; asserts. */
int tl_child_wait(struct tl_child *c);

/* tl_child_kill: kills the child with SIGKILL, reaps it and closes the
 * pipe ends.  Returns its wait status; asserts. */
int tl_child_kill(struct tl_child *c);

/* tl_kill: kills process pid (a child) with SIGKILL and reaps it, so that
 * it no longer counts as alive.  Returns its wait status; asserts. */
int tl_kill(pid_t pid);

/* tl_sleeper_start: a live child that only waits to be killed (tl_kill):
 * a process to take locks for.  Returns its pid; asserts. */
pid_t tl_sleeper_start(void);

/* tl_dead_pid: the pid of a child that has exited and been reaped (until
 * the system reuses it, nobody's).  Asserts. */
pid_t tl_dead_pid(void);

/* tl_self_start: Windows only (no fork there): a copy of the test
 * program run with the command-line arguments args (quoted as Windows
 * quotes them), whose main does what they say, in the job that ends it
 * with the test program.  Returns its pid, to be ended by tl_kill
 * (TerminateProcess); asserts. */
pid_t tl_self_start(const char *args);

/* tl_lock_path: Windows only: the lock path of p's path as the suites
 * give it, rooted on the current drive, which is made p's (the working
 * directory then its root: the test's own directory could not be removed
 * while it is the working directory): "C:\a\b" is "/a/b" with C: current.
 * Asserts. */
void tl_lock_path(const struct tl_place *p, char *out, size_t size);

/* tl_wide: Windows only: the UTF-8 string s as UTF-16 into out (n wide
 * characters); asserts that it converts. */
void tl_wide(const char *s, wchar_t *out, int n);

/* A program run by tl_run_start (Windows only), till tl_run_finish. */
struct tl_run {
	void         *process;      /* its process's HANDLE */
	unsigned long pid;
	char          out[PATH_MAX * 3];    /* its standard output and error */
};

/* tl_run_start: Windows only: starts the program prog with args (UTF-8,
 * quoted as the C runtime reads them; the wide command line, so any
 * character passes), its standard output and error going to a new file
 * OUT-N in dir (r->out), its standard input none, inheriting this
 * process's environment; asserts. */
void tl_run_start(struct tl_run *r, const char *dir, const char *prog,
    const char *args);

/* tl_run_finish: waits for r's end (a minute at most): its exit code,
 * and its output into out (size bytes, NUL-terminated); asserts. */
unsigned long tl_run_finish(struct tl_run *r, char *out, size_t size);

/* tl_tmpdir_here: Windows only, for main(): unless TMPDIR says
 * otherwise, the run's directory is made in the working directory (on
 * Z: under make check), where a lock path rooted on the current drive
 * names the same file for wine's Unix side.  0, or -1.  No assertion. */
int tl_tmpdir_here(void);

/* tl_die_with_parent: in a child forked from parent: dies (SIGKILL) when
 * parent does, and exits at once if it already has. */
void tl_die_with_parent(pid_t parent);

/* tl_become_nobody: in a child: becomes user and group nobody, with no
 * supplementary groups, when root; unprivileged already, changes
 * nothing.  0, or -1 with errno. */
int tl_become_nobody(void);

/*
 * A check run in another process (tl_in_child): leaves "" in why when all
 * held, else the first thing that did not, or TL_SKIP and why it cannot
 * run here.  TL_EXPECT is its assertion.
 */
typedef void tl_check_fn(void *arg, char *why, size_t size);

#define TL_SKIP "skipped: "

/* In a tl_check_fn: fails with both values unless a equals b. */
#define TL_EXPECT(a, b) do {						\
	long got_ = (long)(a), want_ = (long)(b);			\
									\
	if (got_ != want_) {						\
		snprintf(why, size, "line %d: %s is %ld, expected %ld",	\
		    __LINE__, #a, got_, want_);				\
		return;							\
	}								\
} while (0)

/*
 * tl_in_child: runs fn in a forked child (which keeps what the test has
 * open) and asserts that all held; when fn skipped, prints why on
 * stdout and returns.  With TL_AS_NOBODY the child first becomes user
 * nobody (tl_become_nobody), and the check fails when it cannot.
 */
#define TL_AS_NOBODY 0x1u
void tl_in_child(unsigned flags, tl_check_fn *fn, void *arg);

/* ------------------------------------------------------------------ */
/* The daemon (the twin of tests/lbdaemon.py).                          */

/* A lockbrokerd of a test's own, in a directory of its own. */
struct tl_daemon {
	pid_t pid;              /* 0: not running */
	char  socket[PATH_MAX];
	char  state[PATH_MAX];
	char  log[PATH_MAX];    /* its standard output and error */
};

/*
 * tl_daemon_start: starts $LB_BUILDDIR/daemon/lockbrokerd (in debug mode)
 * on the socket dir/sock with the state database dir/state (another name
 * makes a daemon that knows nothing of an earlier one's holds), logging
 * to dir/log, and waits until it answers a HELLO (10 s at most).  0, or
 * -1 with a message on stderr.  No assertion: main() may call it.  The
 * daemon is killed when the process that started it dies.
 */
int tl_daemon_start(struct tl_daemon *d, const char *dir, const char *sock,
    const char *state);

/*
 * tl_daemon_start_env: tl_daemon_start with the daemon's environment
 * changed first: env is a NULL-terminated list of "NAME=value" strings
 * (NULL: none) that the daemon's process sets before it runs the daemon
 * (a preload and its settings, say); this process's own environment is
 * left as it was.  0, or -1 with a message on stderr.  No assertion.
 */
int tl_daemon_start_env(struct tl_daemon *d, const char *dir,
    const char *sock, const char *state, const char *const *env);

/* tl_daemon_stop: sends sig to the daemon and reaps it (SIGKILL after
 * 10 s).  0 when it ended as sig wants (exit 0 for SIGTERM, killed for
 * SIGKILL), else -1; 0 when it was not running.  No assertion. */
int tl_daemon_stop(struct tl_daemon *d, int sig);

/* tl_daemon_stopped: 1 when the daemon has stopped (SIGSTOP, as a
 * preload may stop it) within seconds, else 0; when it exited instead,
 * reaps it and sets d->pid to 0.  It stays stopped: tl_daemon_stop with
 * SIGKILL ends it.  No assertion. */
int tl_daemon_stopped(struct tl_daemon *d, double seconds);

/*
 * tl_exchange: connects to the daemon at socket_path, sends request
 * (whole lines) and reads its answers into reply (size bytes,
 * NUL-terminated) until a whole line starting with until came, or
 * timeout seconds passed.  0 when that line came, else -1.  No
 * assertion.
 */
int tl_exchange(const char *socket_path, const char *request,
    const char *until, char *reply, size_t size, double timeout);

/* tl_daemon_answers: 1 when the daemon at socket_path answers a HELLO
 * within 2 s, else 0. */
int tl_daemon_answers(const char *socket_path);

/* tl_python3: the Python interpreter the build was configured with
 * ($PYTHON3, else /usr/bin/python3). */
const char *tl_python3(void);

/* tl_python_start: starts `python3 -c script args[0..n)` (n at most 32)
 * with its standard output on c->from; c->to is -1.  Asserts. */
void tl_python_start(struct tl_child *c, const char *script,
    const char *const *args, size_t n);

#endif
