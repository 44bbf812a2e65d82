/*
 * check_daemon_win.c: lockbrokerd.exe on Windows, run under wine, with
 * liblockbroker's broker mode (LB_BROKER) as its client.
 *
 * The suite starts one daemon (daemon/lockbrokerd.exe, or $LOCKBROKERD)
 * on a private pipe (\\.\pipe\lbtest-PID-N) and a state database in a
 * directory of its own, waits until the pipe takes a connection, and
 * ends it with TerminateProcess after the last test (the daemon runs in
 * a job that ends it with this program, should that fail first).
 *
 * The tests: the pipe's DACL (network logons denied, authenticated
 * users and everyone no right: only its owner, the system and the
 * administrators connect); users (a client's SID numbered in the state database,
 * the same number after a restart, steps acting as that SID, nothing
 * done for a previous run's hold without a token of its user, a lock
 * kept for a process of the client's user), with daemons of their own
 * beside the suite's; acquire and release; another process waiting for the lock
 * gets it at the release; a holder ended by TerminateProcess frees its
 * lock for a waiter, and the holder the daemon names is that process
 * (the pipe's client process); four waiting processes granted in the
 * order they queued in; a timed wait ends with LB_ETIMEOUT, not before,
 * leaving nothing queued, and a timeout of 0 does not wait; the daemon
 * ended and started again on its state and pipe: a live holder keeps its
 * lock (its library reconnects and reclaims it), a holder that died
 * meanwhile loses it; handoffs back and forth while another process
 * keeps looking at the lock file in-process (a handoff's rename waits
 * for such readers on Windows): never seen free, every waiter granted;
 * a second daemon on the same state is refused, naming the state, and
 * so is one on the same pipe, naming the pipe, while the first goes on
 * serving.
 *
 * The other processes are copies of this program (main and
 * testdaemon_win.h say what each
 * mode does): holders, waiters, timed tries, a poller; each reports
 * through files in the test's directory.  Lock paths are given rooted on
 * the current drive ("/dir/..."), as in check_client_win.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sqlite3.h>

#include "lockbroker.h"
#include "testlib.h"
#include "testdaemon_win.h"

/* A daemon of a test. */
struct daemon {
	char   pipe[128];
	char   state[PATH_MAX];
	char   log[PATH_MAX];
	HANDLE proc;
};

/* The daemon of the suite (the library keeps its connection to the
 * pipe it first found, LOCKBROKER_SOCKET's: one daemon serves every
 * test). */
static struct daemon the;

/* The job the daemons run in: ended with this program. */
static HANDLE
daemons_job(void)
{
	static HANDLE job;

	if (job == NULL)
		ck_assert((job = td_job()) != NULL);
	return job;
}

/* The lockbroker command's full path (main: tools\lockbroker.exe, or
 * $LOCKBROKER), and this program's (COMMAND). */
static char tool_exe[MAX_PATH];
static char self_exe[MAX_PATH];

/* Starts lockbrokerd on pipe and state, its output into log; the handle
 * of its process. */
static HANDLE
daemon_spawn(const char *pipe, const char *state, const char *log)
{
	char args[3 * PATH_MAX];

	ck_assert((size_t)snprintf(args, sizeof(args), "--socket %s --state "
	    "\"%s\" --debug", pipe, state) < sizeof(args));
	return td_daemon_spawn(daemons_job(), args, log);
}

/* Waits (up to a minute) until d's pipe takes a connection; asserts
 * that it does before the daemon ends. */
static void
daemon_listening(struct daemon *d)
{
	double until;

	for (until = tl_now() + 60; tl_now() < until;) {
		if (WaitNamedPipeA(d->pipe, 100))
			break;
		ck_assert_msg(WaitForSingleObject(d->proc, 0) == WAIT_TIMEOUT,
		    "lockbrokerd ended before it listened (see %s)", d->log);
		tl_sleep(0.05);
	}
	ck_assert_msg(WaitNamedPipeA(d->pipe, 100), "%s does not answer",
	    d->pipe);
}

/* Starts a daemon on a new pipe and state database state (its log
 * beside it), and points the library at its pipe (LOCKBROKER_SOCKET);
 * once the pipe takes a connection. */
static void
daemon_start_on(struct daemon *d, const char *state)
{
	static unsigned n;
	char           *c;

	snprintf(d->state, sizeof(d->state), "%s", state);
	for (c = d->state; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(d->log, sizeof(d->log), "%s.%u.log", state, n);
	snprintf(d->pipe, sizeof(d->pipe), "\\\\.\\pipe\\lbtest-%lu-%u",
	    (unsigned long)GetCurrentProcessId(), n++);
	d->proc = daemon_spawn(d->pipe, d->state, d->log);
	daemon_listening(d);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
}

/* Ends d's daemon with TerminateProcess, as a crash would, and waits
 * for its end. */
static void
daemon_kill(struct daemon *d)
{
	TerminateProcess(d->proc, 137);
	ck_assert(WaitForSingleObject(d->proc, 10000) == WAIT_OBJECT_0);
	CloseHandle(d->proc);
	d->proc = NULL;
}

/* Starts d's daemon again, on its pipe and state; once the pipe takes a
 * connection. */
static void
daemon_again(struct daemon *d)
{
	d->proc = daemon_spawn(d->pipe, d->state, d->log);
	daemon_listening(d);
}

/* Starts a daemon on a new pipe and a state database in a directory of
 * its own (daemon_start_on). */
static void
daemon_start(struct daemon *d)
{
	struct tl_place p;

	tl_place_make(&p, "state.sqlite");
	daemon_start_on(d, p.path);
}

/* Ends the daemon (TerminateProcess: see the top of this file). */
static void
daemon_end(struct daemon *d)
{
	if (d->proc != NULL) {
		TerminateProcess(d->proc, 137);
		WaitForSingleObject(d->proc, 10000);
		CloseHandle(d->proc);
	}
	_putenv_s("LOCKBROKER_SOCKET", "");
}

/* Before the tests: the suite's daemon started. */
static void
setup(void)
{
	daemon_start(&the);
}

/* After the tests: the suite's daemon ended. */
static void
teardown(void)
{
	daemon_end(&the);
}


/* Waits (up to a minute) until the daemon queues n acquires for the
 * lock of l (lb_get_holder's waiters); whether it did. */
static int
queued(lb_lock *l, unsigned n)
{
	lb_holder h;
	double    until;

	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.02))
		if (lb_get_holder(l, &h) == 1 && h.broker && h.waiters == n)
			return 1;
	return 0;
}

/* Waits (up to a minute) until file is gone; whether it is. */
static int
vanishes(const char *file)
{
	double until;

	for (until = tl_now() + 60; tl_exists(file) && tl_now() < until;)
		tl_sleep(0.02);
	return !tl_exists(file);
}

/* The handle of process pid, to wait for its end; asserts. */
static HANDLE
process_open(pid_t pid)
{
	HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
	    FALSE, (DWORD)pid);

	ck_assert_msg(h != NULL, "OpenProcess %ld: error %lu", (long)pid,
	    (unsigned long)GetLastError());
	return h;
}

/* Waits (up to a minute) for process h to end, and closes h: its exit
 * code; asserts that it ended. */
static DWORD
process_wait(HANDLE h)
{
	DWORD code = 0;

	ck_assert_msg(WaitForSingleObject(h, 60000) == WAIT_OBJECT_0,
	    "a child did not end");
	ck_assert(GetExitCodeProcess(h, &code));
	CloseHandle(h);
	return code;
}

/* Waits (up to a minute) for the lock of l through the daemon, and
 * asserts that the daemon names this process as its holder. */
static void
take_next(lb_lock *l)
{
	lb_holder h;

	ck_assert_msg(lb_acquire(l, 60) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
}

/* Acquire and release through the daemon; the lock's state as the
 * daemon tells it. */
START_TEST(broker_cycle)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 1);
	ck_assert_int_eq(lb_i_am_locking(l), 1);
	ck_assert_int_eq(lb_acquire(l, 0), 0);  /* already its own */
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	lb_lock_free(l);
}
END_TEST

/* Another process finds the lock taken, waits for it, and gets it at
 * the release (not before). */
START_TEST(broker_waiter_granted)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX], busy[PATH_MAX], got[PATH_MAX];
	char            args[4 * PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(busy, sizeof(busy), p.dir, "busy");
	td_marker(got, sizeof(got), p.dir, "got");
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	pid = tl_self_start(args);
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock taken");
	tl_sleep(0.5);
	ck_assert_msg(!tl_exists(got), "the waiter got a lock held");
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	ck_assert_msg(td_appears(got), "the waiter did not get the lock");
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	tl_kill(pid);
	ck_assert_msg(lb_acquire(l, 30) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A holder ended by TerminateProcess: the daemon named it as the holder
 * (its pid, the pipe's client process), and its lock goes to the
 * process that waits for it, then, once that one is ended too, to this
 * one. */
START_TEST(broker_holder_killed)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX], ready[PATH_MAX], busy[PATH_MAX];
	char            got[PATH_MAX], args[4 * PATH_MAX];
	pid_t           pid, waiter;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(busy, sizeof(busy), p.dir, "busy");
	td_marker(got, sizeof(got), p.dir, "got");
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	pid = tl_self_start(args);
	ck_assert_msg(td_appears(ready), "the holder did not lock %s", path);
	l = td_broker_lock(path);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.liveness, LB_HOLDER_ALIVE);
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	waiter = tl_self_start(args);
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock taken");
	ck_assert(!tl_exists(got));
	tl_kill(pid);
	ck_assert_msg(td_appears(got), "the waiter did not get the lock of the "
	    "ended holder");
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, waiter);
	tl_kill(waiter);
	take_next(l);
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* Handoffs in FIFO order: four processes queued one after the other (each
 * seen queued by the daemon before the next starts) get the lock in that
 * order, each at the release of the one before; each writes its number
 * into the report while it holds the lock. */
START_TEST(broker_fifo)
{
	struct tl_place p;
	lb_lock        *l;
	HANDLE          child[4];
	char            path[PATH_MAX], report[PATH_MAX], text[64];
	char            args[4 * PATH_MAX];
	unsigned        i;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(report, sizeof(report), p.dir, "report");
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	for (i = 0; i < 4; i++) {
		snprintf(args, sizeof(args), "--queue \"%s\" \"%s\" %u", path,
		    report, i);
		child[i] = process_open(tl_self_start(args));
		ck_assert_msg(queued(l, i + 1), "waiter %u is not queued", i);
	}
	ck_assert(!tl_exists(report));
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(process_wait(child[i]), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	ck_assert_str_eq(text, "0\n1\n2\n3\n");
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(l);
}
END_TEST

/* Runs a child that tries the lock on path with timeout through the
 * daemon, and waits for its end: its result and how long its
 * lb_acquire took (its report). */
static int
try_in_child(lb_lock *l, const char *path, const char *dir, double timeout,
    double *took)
{
	HANDLE child;
	char   report[PATH_MAX], text[128], args[4 * PATH_MAX];
	int    r;

	td_marker(report, sizeof(report), dir, "tried");
	snprintf(args, sizeof(args), "--try \"%s\" %g \"%s\"", path, timeout,
	    report);
	child = process_open(tl_self_start(args));
	if (timeout > 0)
		ck_assert_msg(queued(l, 1), "the timed wait is not queued");
	ck_assert_int_eq(process_wait(child), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	ck_assert_msg(sscanf(text, "%d %lf", &r, took) == 2, "%s", text);
	return r;
}

/* Timeouts through the daemon: a wait with a timeout on a held lock
 * ends with LB_ETIMEOUT, not before its timeout, and leaves nothing
 * queued (the release finds no waiter: the lock is free after it); a
 * timeout of 0 does not wait (LB_EALREADY at once). */
START_TEST(broker_timeouts)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX];
	double          took;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(try_in_child(l, path, p.dir, 2.0, &took),
	    LB_ETIMEOUT);
	ck_assert_msg(took >= 2.0 && took < 30, "gave up after %g s", took);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.waiters, 0);
	ck_assert_int_eq(try_in_child(l, path, p.dir, 0, &took),
	    LB_EALREADY);
	ck_assert_msg(took < 1.0, "a try of 0 s took %g s", took);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.waiters, 0);
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_int_eq(lb_get_holder(l, &h), 0);
	lb_lock_free(l);
}
END_TEST

/* The identity of file (its file index, the inode under wine), 0 when
 * it cannot be opened. */
static unsigned long long
file_index(const char *file)
{
	BY_HANDLE_FILE_INFORMATION fi;
	HANDLE                     h;
	unsigned long long         r = 0;

	h = CreateFileA(file, 0, FILE_SHARE_READ | FILE_SHARE_WRITE |
	    FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS |
	    FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 0;
	if (GetFileInformationByHandle(h, &fi))
		r = (unsigned long long)fi.nFileIndexHigh << 32 |
		    fi.nFileIndexLow;
	CloseHandle(h);
	return r;
}

/* The daemon ended (TerminateProcess) and started again on the same
 * state and pipe while a live process holds a lock through it: the lock
 * file stays that holder's throughout, another process is refused and
 * told the same holder, the holder's library reconnects and gets its
 * hold back (it still locks, and its release through the daemon
 * succeeds), and that release gives the lock to the next. */
START_TEST(broker_restart_keeps_holder)
{
	struct tl_place    p;
	lb_holder          h;
	lb_lock           *l;
	char               path[PATH_MAX], ready[PATH_MAX], go[PATH_MAX];
	char               report[PATH_MAX], text[64], args[5 * PATH_MAX];
	unsigned long long id;
	HANDLE             child;
	pid_t              pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(go, sizeof(go), p.dir, "go");
	td_marker(report, sizeof(report), p.dir, "report");
	snprintf(args, sizeof(args), "--keep \"%s\" \"%s\" \"%s\" \"%s\"",
	    path, ready, go, report);
	pid = tl_self_start(args);
	child = process_open(pid);
	ck_assert_msg(td_appears(ready), "the holder did not lock %s", path);
	l = td_broker_lock(path);
	ck_assert((id = file_index(lb_lock_file(l))) != 0);
	daemon_kill(&the);
	ck_assert_msg(file_index(lb_lock_file(l)) == id, "the lock file "
	    "changed while no daemon ran");
	daemon_again(&the);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(h.liveness, LB_HOLDER_ALIVE);
	ck_assert_msg(file_index(lb_lock_file(l)) == id, "the lock file "
	    "changed at the restart");
	ck_assert(!tl_exists(report));
	tl_write_text(go, "");
	take_next(l);
	ck_assert_int_eq(process_wait(child), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	/* Its own still (lb_i_am_locking 1), and released (0). */
	ck_assert_str_eq(text, "1 0\n");
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A holder that dies while no daemon runs: the restarted daemon frees
 * its lock, which another process then takes. */
START_TEST(broker_restart_frees_dead_holder)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX], ready[PATH_MAX], args[4 * PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	pid = tl_self_start(args);
	ck_assert_msg(td_appears(ready), "the holder did not lock %s", path);
	l = td_broker_lock(path);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	daemon_kill(&the);
	tl_kill(pid);
	ck_assert(tl_exists(lb_lock_file(l)));
	daemon_again(&the);
	take_next(l);
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert(!tl_exists(lb_lock_file(l)));
	lb_lock_free(l);
}
END_TEST

/* Handoffs while a reader has the lock file open: a process polls
 * is_locked in-process (the link method's look opens the lock file,
 * which a rename over it must wait for on Windows) while the daemon
 * hands the lock between this process and another, back and forth,
 * fifty times: every acquire is granted, in turn, and the poller never
 * finds the lock free nor fails; the daemon's log says that handoffs
 * waited for the poller (its debug line). */
START_TEST(broker_handoffs_under_reader)
{
	enum { ROUNDS = 25 };
	struct tl_place p;
	lb_lock        *l;
	HANDLE          other;
	char            path[PATH_MAX], stop[PATH_MAX], polled[PATH_MAX];
	char            text[128], args[4 * PATH_MAX];
	unsigned long   polls, free_seen, failed;
	pid_t           poller;
	unsigned        i;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(stop, sizeof(stop), p.dir, "stop");
	td_marker(polled, sizeof(polled), p.dir, "polled");
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	snprintf(args, sizeof(args), "--poll \"%s\" \"%s\" \"%s\"", path,
	    stop, polled);
	poller = tl_self_start(args);
	snprintf(args, sizeof(args), "--pingpong \"%s\" %d", path, ROUNDS);
	other = process_open(tl_self_start(args));
	for (i = 0; i < ROUNDS; i++) {
		ck_assert_msg(queued(l, 1), "round %u: the other process does "
		    "not wait", i);
		ck_assert_msg(lb_release(l) == 0, "round %u: %s", i,
		    lb_lock_error(l));
		ck_assert_msg(lb_acquire(l, 60) == 0, "round %u: %s", i,
		    lb_lock_error(l));
	}
	ck_assert_int_eq(process_wait(other), 0);
	tl_write_text(stop, "");
	ck_assert_msg(td_appears(polled), "the poller did not report");
	ck_assert(tl_read_text(polled, text, sizeof(text)) > 0);
	ck_assert_msg(sscanf(text, "%lu %lu %lu", &polls, &free_seen,
	    &failed) == 3, "%s", text);
	ck_assert_msg(polls > 0 && free_seen == 0 && failed == 0, "%lu looks: "
	    "%lu found the lock free, %lu failed", polls, free_seen, failed);
	tl_kill(poller);
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
	ck_assert_msg(tl_file_count(the.log, "waits for the lock file's "
	    "readers") > 0, "no handoff waited for the poller (see %s)",
	    the.log);
}
END_TEST

/* Runs the lockbroker command with args in dir to its end: its exit
 * code, its output into out (size bytes). */
static unsigned long
command(const char *dir, char *out, size_t size, const char *fmt, ...)
{
	struct tl_run r;
	va_list       ap;
	char          args[4 * PATH_MAX];

	va_start(ap, fmt);
	ck_assert((size_t)vsnprintf(args, sizeof(args), fmt, ap) <
	    sizeof(args));
	va_end(ap);
	tl_run_start(&r, dir, tool_exe, args);
	return tl_run_finish(&r, out, size);
}

/* The row of path in `lockbroker list`'s table out: its cells (PATH
 * METHOD PID USER SINCE TOKEN WAITERS STATE) into cells; asserts that
 * there is one. */
static void
list_row(const char *out, const char *path, char cells[8][PATH_MAX])
{
	const char *row = strstr(out, path);

	ck_assert_msg(row != NULL, "%s not listed: %s", path, out);
	while (row > out && row[-1] != '\n')
		row--;
	ck_assert_msg(sscanf(row, "%s %s %s %s %s %s %s %s", cells[0],
	    cells[1], cells[2], cells[3], cells[4], cells[5], cells[6],
	    cells[7]) == 8, "a short row: %s", row);
}

/* The command through the daemon (LOCKBROKER_SOCKET naming its pipe):
 * `lock --broker -w N PATH -- CMD` holds the lock through the daemon
 * while CMD runs (the daemon names lockbroker as its holder) and passes
 * its exit status on; another `lock --broker -w 0.5` gives up (1) after
 * at least 0.5 s without running its CMD; `status --broker` names the
 * holder; `list` and `list --json` show the held lock, its holder and
 * the process waiting for it; that process gets the lock once CMD ends,
 * and `break --broker` frees it. */
START_TEST(command_through_daemon)
{
	struct tl_place p;
	struct tl_run   holder;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX], ready[PATH_MAX], go[PATH_MAX];
	char            ran[PATH_MAX], busy[PATH_MAX], got[PATH_MAX];
	char            args[4 * PATH_MAX], pid[64], out[16384];
	char            cells[8][PATH_MAX];
	pid_t           waiter;
	double          t0;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(go, sizeof(go), p.dir, "go");
	td_marker(ran, sizeof(ran), p.dir, "ran");
	td_marker(busy, sizeof(busy), p.dir, "busy");
	td_marker(got, sizeof(got), p.dir, "got");
	snprintf(args, sizeof(args), "lock --broker -w 5 \"%s\" -- \"%s\" "
	    "--mark \"%s\" \"%s\" 3", path, self_exe, ready, go);
	tl_run_start(&holder, p.dir, tool_exe, args);
	ck_assert_msg(td_appears(ready), "lock did not run COMMAND");
	l = td_broker_lock(path);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.broker, 1);
	ck_assert_int_eq(h.pid, (pid_t)holder.pid);
	t0 = tl_now();
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "lock --broker "
	    "-w 0.5 \"%s\" -- \"%s\" --mark \"%s\" \"%s\" 0", path,
	    self_exe, ran, go), 1);
	ck_assert_msg(tl_now() - t0 >= 0.5, "gave up after %.3f s",
	    tl_now() - t0);
	ck_assert_msg(!tl_exists(ran), "COMMAND ran without the lock");
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "status --broker "
	    "\"%s\"", path), 0);
	snprintf(pid, sizeof(pid), "pid:       %lu\r\n", holder.pid);
	ck_assert_msg(strstr(out, pid) != NULL, "no %s in: %s", pid, out);
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	waiter = tl_self_start(args);
	ck_assert_msg(queued(l, 1), "the waiter is not queued");
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "list"), 0);
	list_row(out, path, cells);
	snprintf(pid, sizeof(pid), "%lu", holder.pid);
	ck_assert_str_eq(cells[1], "link");
	ck_assert_str_eq(cells[2], pid);
	ck_assert_str_eq(cells[6], "1");
	ck_assert_str_eq(cells[7], "held");
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "list --json"), 0);
	ck_assert_msg(strstr(out, path) != NULL, "%s not listed: %s", path,
	    out);
	snprintf(pid, sizeof(pid), "\"holder_pid\": %lu,", holder.pid);
	ck_assert_msg(strstr(out, pid) != NULL && strstr(out,
	    "\"waiters\": 1,") != NULL && strstr(out, "\"state\": "
	    "\"held\"") != NULL, "not held by %lu with a waiter: %s",
	    holder.pid, out);
	tl_write_text(go, "");
	ck_assert_uint_eq(tl_run_finish(&holder, out, sizeof(out)), 3);
	ck_assert_msg(td_appears(got), "the waiter did not get the lock");
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, waiter);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "break --broker "
	    "\"%s\"", path), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "status --broker "
	    "\"%s\"", path), 1);
	tl_kill(waiter);
	lb_lock_free(l);
}
END_TEST

/* `acquire --broker` and `release --broker` keep the lock through the
 * daemon for the command's parent (this program): the daemon names it
 * as the holder, and so does `status`, until the release; with
 * LOCKBROKER_SOCKET naming a pipe nobody serves, the command fails (69)
 * naming that pipe. */
START_TEST(command_kept_through_daemon)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX], pid[64], out[16384], none[160];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "acquire --broker "
	    "\"%s\"", path), 0);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.broker, 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "status --broker "
	    "\"%s\"", path), 0);
	snprintf(pid, sizeof(pid), "pid:       %lu\r\n",
	    (unsigned long)GetCurrentProcessId());
	ck_assert_msg(strstr(out, pid) != NULL, "no %s in: %s", pid, out);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "release --broker "
	    "\"%s\"", path), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	snprintf(none, sizeof(none), "%s-none", the.pipe);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", none), 0);
	ck_assert_uint_eq(command(p.dir, out, sizeof(out), "status --broker "
	    "\"%s\"", path), 69);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	ck_assert_msg(strstr(out, strrchr(none, '\\') + 1) != NULL,
	    "the pipe is not named: %s", out);
	lb_lock_free(l);
}
END_TEST

/* A second daemon on the same state (another pipe) is refused, saying
 * so; the first goes on serving. */
START_TEST(second_daemon_refused)
{
	struct tl_place p;
	HANDLE          second;
	DWORD           code = 0;
	lb_lock        *l;
	char            path[PATH_MAX], log[PATH_MAX], text[8192];
	char            pipe[160];

	snprintf(log, sizeof(log), "%s.second.log", the.log);
	snprintf(pipe, sizeof(pipe), "%s-second", the.pipe);
	second = daemon_spawn(pipe, the.state, log);
	if (WaitForSingleObject(second, 60000) != WAIT_OBJECT_0) {
		TerminateProcess(second, 137);
		ck_abort_msg("a second daemon on %s runs", the.state);
	}
	ck_assert(GetExitCodeProcess(second, &code));
	CloseHandle(second);
	ck_assert_int_ne(code, 0);
	ck_assert(tl_read_text(log, text, sizeof(text)) > 0);
	ck_assert_msg(strstr(text, "another daemon runs on state") != NULL &&
	    strstr(text, the.state) != NULL, "%s", text);
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* A second daemon on the same pipe (another state) is refused, saying
 * so, and makes no state; the first goes on serving. */
START_TEST(second_daemon_same_pipe_refused)
{
	struct tl_place p, q;
	HANDLE          second;
	DWORD           code = 0;
	lb_lock        *l;
	char            path[PATH_MAX], log[PATH_MAX], text[8192], *c;

	tl_place_make(&q, "state.sqlite");
	for (c = q.path; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(log, sizeof(log), "%s\\second.log", q.dir);
	second = daemon_spawn(the.pipe, q.path, log);
	if (WaitForSingleObject(second, 60000) != WAIT_OBJECT_0) {
		TerminateProcess(second, 137);
		ck_abort_msg("a second daemon on %s runs", the.pipe);
	}
	ck_assert(GetExitCodeProcess(second, &code));
	CloseHandle(second);
	ck_assert_int_ne(code, 0);
	ck_assert(tl_read_text(log, text, sizeof(text)) > 0);
	/* The log doubles each backslash: the pipe's own name (after the last
	 * one) is looked for. */
	ck_assert_msg(strstr(text, "another daemon listens on") != NULL &&
	    strstr(text, strrchr(the.pipe, '\\') + 1) != NULL, "%s", text);
	ck_assert(!tl_exists(q.path));
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}
END_TEST

/* The pipe's DACL: network logons denied everything, by its first
 * entry; authenticated users and everyone (anonymous included) no
 * right (other users are kept out: listen_win32.c says why), so that
 * nobody but the system, the administrators and the daemon's account
 * may connect, nor make instances of it. */
START_TEST(pipe_dacl)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL;
	PACL                 dacl = NULL;
	ACL_SIZE_INFORMATION si;
	ACCESS_ALLOWED_ACE  *ace;
	DWORD                i, sidlen;
	HANDLE               h;
	BYTE                 au[SECURITY_MAX_SID_SIZE];
	BYTE                 world[SECURITY_MAX_SID_SIZE];
	BYTE                 net[SECURITY_MAX_SID_SIZE];

	h = CreateFileA(the.pipe, READ_CONTROL, 0, NULL, OPEN_EXISTING,
	    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
	ck_assert_msg(h != INVALID_HANDLE_VALUE, "%s: error %lu", the.pipe,
	    (unsigned long)GetLastError());
	ck_assert_int_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	    NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
	ck_assert_ptr_nonnull(dacl);
	sidlen = sizeof(au);
	ck_assert(CreateWellKnownSid(WinAuthenticatedUserSid, NULL, au,
	    &sidlen));
	sidlen = sizeof(world);
	ck_assert(CreateWellKnownSid(WinWorldSid, NULL, world, &sidlen));
	sidlen = sizeof(net);
	ck_assert(CreateWellKnownSid(WinNetworkSid, NULL, net, &sidlen));
	ck_assert(GetAclInformation(dacl, &si, sizeof(si),
	    AclSizeInformation));
	ck_assert_uint_ge(si.AceCount, 1);
	ck_assert(GetAce(dacl, 0, (void **)&ace));
	ck_assert_msg(ace->Header.AceType == ACCESS_DENIED_ACE_TYPE &&
	    EqualSid((PSID)&ace->SidStart, net), "the first entry does not "
	    "deny network logons");
	for (i = 0; i < si.AceCount; i++) {
		ck_assert(GetAce(dacl, i, (void **)&ace));
		if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
			continue;
		ck_assert_msg(!EqualSid((PSID)&ace->SidStart, world),
		    "everyone: 0x%lx", (unsigned long)ace->Mask);
		ck_assert_msg(!EqualSid((PSID)&ace->SidStart, au),
		    "authenticated users: 0x%lx", (unsigned long)ace->Mask);
	}
	LocalFree(sd);
	CloseHandle(h);
}
END_TEST

/* The SID of this process's user, as a string, into out. */
static void
own_sid(char *out, size_t size)
{
	HANDLE t;
	BYTE   buf[512];
	DWORD  n;
	char  *s;

	ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t));
	ck_assert(GetTokenInformation(t, TokenUser, buf, sizeof(buf), &n));
	ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)buf)->User.Sid, &s));
	ck_assert((size_t)snprintf(out, size, "%s", s) < size);
	LocalFree(s);
	CloseHandle(t);
}

/* Runs sql (statements) on the sqlite database file, made when
 * missing.  Asserts. */
static void
state_exec(const char *file, const char *sql)
{
	sqlite3 *db = NULL;
	char    *msg = NULL;

	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_close(db);
}

/* The first column of the last row sql gives on the sqlite database
 * file, as a number; -1 when it gives none.  Asserts. */
static long long
state_value(const char *file, const char *sql)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	long long     value = -1;
	int           rc;

	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return value;
}

/* The uid the state database gives user sid (-1: none). */
static long long
state_uid_of(const char *state, const char *sid)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "SELECT uid FROM users WHERE sid = '%s'",
	    sid);
	return state_value(state, sql);
}

/* Starts a copy of this program that holds the lock on path through
 * daemon d (LOCKBROKER_SOCKET set to d's pipe for it, then back to the
 * suite daemon's), and waits until it has it; its pid. */
static pid_t
holder_start(const struct daemon *d, const struct tl_place *p,
    const char *path, const char *name)
{
	char  ready[PATH_MAX], args[3 * PATH_MAX];
	pid_t pid;

	td_marker(ready, sizeof(ready), p->dir, name);
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
	pid = tl_self_start(args);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	ck_assert_msg(td_appears(ready), "the holder did not lock %s (see %s)",
	    path, d->log);
	return pid;
}

/* Starts daemon d on state beside the suite's (the library stays on
 * the suite's pipe). */
static void
other_daemon_start(struct daemon *d, const char *state)
{
	daemon_start_on(d, state);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
}

/* Starts daemon d on state and a copy of this program that holds a lock
 * through it, of a new place q (its path into path, size bytes); the
 * copy's pid. */
static pid_t
other_daemon_held(struct daemon *d, const char *state, struct tl_place *q,
    char *path, size_t size)
{
	other_daemon_start(d, state);
	tl_place_make(q, "x");
	tl_lock_path(q, path, size);
	return holder_start(d, q, path, "ready");
}

/* Ends daemon d (not the suite's: the library stays on the suite's
 * pipe). */
static void
other_daemon_end(struct daemon *d)
{
	TerminateProcess(d->proc, 137);
	WaitForSingleObject(d->proc, 10000);
	CloseHandle(d->proc);
}

/* Whether daemon d's log says text (waits up to a minute for it). */
static int
log_says(const struct daemon *d, const char *text)
{
	static char buf[1 << 16];
	double      until;

	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.05))
		if (tl_read_text(d->log, buf, sizeof(buf)) > 0 &&
		    strstr(buf, text) != NULL)
			return 1;
	return 0;
}

/* A client's user is its token's SID, numbered in the state database:
 * a number there already (another SID's) is never given again, the
 * client's holds are recorded with its SID's number, and a daemon
 * restarted on the same state gives that SID the same number.  The
 * daemon's steps for the client run acting as that SID (its debug log
 * says what the loop's thread's own token was during a step). */
START_TEST(users_numbered_across_restart)
{
	struct tl_place p, q;
	struct daemon   d1, d2;
	char            sid[256], path[PATH_MAX], text[400];
	char            lock[PATH_MAX + 8];
	long long       uid;
	pid_t           holder;

	own_sid(sid, sizeof(sid));
	tl_place_make(&p, "state.sqlite");
	state_exec(p.path, "CREATE TABLE users (uid INTEGER PRIMARY KEY, "
	    "sid TEXT UNIQUE NOT NULL); INSERT INTO users VALUES "
	    "(1, 'S-1-5-21-1-2-3-4444')");
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	uid = state_uid_of(p.path, sid);
	ck_assert_msg(uid > 1, "uid of %s: %ld", sid, (long)uid);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), uid);
	snprintf(text, sizeof(text), "uid %ld: acting as %s", (long)uid, sid);
	ck_assert_msg(log_says(&d1, text), "%s: no \"%s\"", d1.log, text);
	tl_kill(holder);
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(vanishes(lock), "%s: not released", lock);
	other_daemon_end(&d1);

	other_daemon_start(&d2, p.path);
	holder = holder_start(&d2, &q, path, "ready2");
	ck_assert_int_eq(state_uid_of(p.path, sid), uid);
	ck_assert_int_eq(state_uid_of(p.path, "S-1-5-21-1-2-3-4444"), 1);
	ck_assert_int_eq(state_value(p.path, "SELECT count(*) FROM users"), 2);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), uid);
	tl_kill(holder);
	other_daemon_end(&d2);
}
END_TEST

/* A lock kept for another process of the client's user (ACQUIRE pid=):
 * the daemon numbers that process's user by its token's SID, finds it
 * the client's, and keeps the lock for it (named its holder) until it
 * is released for it.  (Another user's process would be refused: only
 * a real Windows has one.) */
START_TEST(kept_for_own_process)
{
	struct tl_place p;
	lb_kept_info    how;
	lb_holder       h;
	lb_lock        *l;
	char            path[PATH_MAX];
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	pid = tl_sleeper_start();
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire_for(l, pid, 5, &how) == 0, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(how.broker, 1);
	ck_assert_msg(lb_get_holder(l, &h) == 1, "%s", lb_lock_error(l));
	ck_assert_int_eq(h.pid, pid);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_msg(lb_release_for(l, pid, &how) == 0, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(l);
	tl_kill(pid);
}
END_TEST

/* A restarted daemon has no token for the holds of the previous run
 * until their user connects: it does not act for them with its own
 * rights.  The hold of a live process is held for it, its artefact not
 * looked at (the daemon logs why) and left where it is. */
START_TEST(restart_acts_not_without_token)
{
	struct tl_place p, q;
	struct daemon   d1, d2;
	char            path[PATH_MAX], lock[PATH_MAX + 8], text[400];
	long long       uid;
	pid_t           holder;
	char            sid[256];

	own_sid(sid, sizeof(sid));
	tl_place_make(&p, "state.sqlite");
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	uid = state_uid_of(p.path, sid);
	ck_assert(uid >= 1);
	other_daemon_end(&d1);

	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(tl_exists(lock), "%s", lock);
	other_daemon_start(&d2, p.path);
	snprintf(text, sizeof(text), "no token of uid %ld to act with", (long)uid);
	ck_assert_msg(log_says(&d2, text), "%s: no \"%s\"", d2.log, text);
	ck_assert_msg(log_says(&d2, "held for it until that can be told"),
	    "%s", d2.log);
	ck_assert_msg(tl_exists(lock), "%s removed", lock);
	tl_kill(holder);
	other_daemon_end(&d2);
}
END_TEST

/* Adds the tests of users (SIDs, their numbers, acting as the client)
 * to t, whose fixture is the suite's daemon (the library keeps its
 * connection to the first daemon's pipe: one tcase serves them all). */
static void
users_tests_add(TCase *t)
{
	tcase_add_test(t, kept_for_own_process);
	tcase_add_test(t, users_numbered_across_restart);
	tcase_add_test(t, restart_acts_not_without_token);
}

/* Makes file; 0, or 1 when it cannot. */

/* The child of broker_fifo: waits for the lock on path, appends its
 * number to report while it holds it, and releases it.  0, or 1 when a
 * step fails. */
static int
queue_for(const char *path, const char *report, const char *number)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);
	FILE    *f;
	int      r;

	if (l == NULL || lb_acquire(l, 60) != 0) {
		fprintf(stderr, "cannot lock %s: %s\n", path,
		    l != NULL ? lb_lock_error(l) : strerror(errno));
		return 1;
	}
	r = (f = fopen(report, "ab")) == NULL || fprintf(f, "%s\n",
	    number) < 0;
	if (f != NULL && fclose(f) != 0)
		r = 1;
	if (lb_release(l) != 0)
		r = 1;
	lb_lock_free(l);
	return r;
}

/* In a child: writes text into report whole (beside it, then renamed),
 * for the test to read once it appears.  0, or 1 when it cannot. */
static int
report_write(const char *report, const char *text)
{
	FILE *f;
	char  tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s.tmp", report);
	if ((f = fopen(tmp, "wb")) == NULL)
		return 1;
	fputs(text, f);
	return fclose(f) != 0 || !MoveFileA(tmp, report);
}

/* The child of try_in_child: tries the lock on path with timeout (in
 * seconds) and writes the result and how long it took into report.
 * 0, or 1 when it cannot. */
static int
try_for(const char *path, const char *timeout, const char *report)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);
	char     text[64];
	double   start;
	int      r;

	if (l == NULL)
		return 1;
	start = tl_now();
	r = lb_acquire(l, atof(timeout));
	snprintf(text, sizeof(text), "%d %.6f\n", r, tl_now() - start);
	lb_lock_free(l);
	return report_write(report, text);
}

/* The child of broker_restart_keeps_holder: takes the lock on path
 * through the daemon, makes ready, waits for go to appear (the daemon
 * restarted meanwhile), then writes into report whether it still locks
 * and what its release gives ("1 0": its own, released).  0, or 1 when
 * a step fails before the report. */
static int
keep(const char *path, const char *ready, const char *go,
    const char *report)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);
	char     text[64];
	int      mine, r;

	if (l == NULL || lb_acquire(l, 30) != 0 || td_touch(ready) != 0)
		return 1;
	while (!tl_exists(go))
		Sleep(20);
	mine = lb_i_am_locking(l);
	r = lb_release(l);
	snprintf(text, sizeof(text), "%d %d\n", mine, r);
	lb_lock_free(l);
	return report_write(report, text);
}

/* The poller of broker_handoffs_under_reader: looks whether the lock on
 * path is held, in-process (LB_LOCAL: the lock file opened), without
 * pause until stop appears, then writes into report how many looks,
 * how many found it free and how many failed.  0, or 1 when it cannot;
 * then waits to be ended. */
static int
poll_lock(const char *path, const char *stop, const char *report)
{
	lb_lock      *l = lb_lock_new(path, LB_LINK | LB_LOCAL);
	unsigned long polls = 0, free_seen = 0, failed = 0;
	char          text[128];
	int           k, r;

	if (l == NULL)
		return 1;
	do {
		for (k = 0; k < 100; k++, polls++) {
			if ((r = lb_is_locked(l)) == 0)
				free_seen++;
			else if (r < 0)
				failed++;
		}
	} while (!tl_exists(stop));
	snprintf(text, sizeof(text), "%lu %lu %lu\n", polls, free_seen,
	    failed);
	if (report_write(report, text) != 0)
		return 1;
	for (;;)
		Sleep(INFINITE);
}

/* The other process of broker_handoffs_under_reader: rounds times, waits
 * for the lock on path through the daemon, waits until another waits for
 * it, and releases it.  0, or 1 when a step fails. */
static int
pingpong(const char *path, const char *rounds)
{
	lb_lock  *l = lb_lock_new(path, LB_LINK | LB_BROKER);
	lb_holder h;
	int       i, n = atoi(rounds);
	double    until;

	if (l == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		if (lb_acquire(l, 60) != 0) {
			fprintf(stderr, "round %d: %s\n", i, lb_lock_error(l));
			return 1;
		}
		for (until = tl_now() + 60; lb_get_holder(l, &h) == 1 &&
		    h.waiters == 0 && tl_now() < until;)
			Sleep(5);
		if (lb_release(l) != 0) {
			fprintf(stderr, "round %d: %s\n", i, lb_lock_error(l));
			return 1;
		}
	}
	lb_lock_free(l);
	return 0;
}

/* The COMMAND of command_through_daemon: makes file, waits (a minute at
 * most) for go to appear, and exits with code. */
static int
mark(const char *file, const char *go, const char *code)
{
	int k;

	if (td_touch(file) != 0)
		return 2;
	for (k = 0; k < 3000 && !tl_exists(go); k++)
		Sleep(20);
	return atoi(code);
}

/* The suite. */
static Suite *
daemon_win_suite(void)
{
	Suite *s = suite_create("daemon_win");
	TCase *t = tcase_create("broker");

	tcase_set_timeout(t, 240);
	tcase_add_unchecked_fixture(t, setup, teardown);
	tcase_add_test(t, pipe_dacl);
	tcase_add_test(t, broker_cycle);
	tcase_add_test(t, broker_waiter_granted);
	tcase_add_test(t, broker_holder_killed);
	tcase_add_test(t, broker_fifo);
	tcase_add_test(t, broker_timeouts);
	tcase_add_test(t, broker_restart_keeps_holder);
	tcase_add_test(t, broker_restart_frees_dead_holder);
	tcase_add_test(t, broker_handoffs_under_reader);
	tcase_add_test(t, command_through_daemon);
	tcase_add_test(t, command_kept_through_daemon);
	tcase_add_test(t, second_daemon_refused);
	tcase_add_test(t, second_daemon_same_pipe_refused);
	users_tests_add(t);
	suite_add_tcase(s, t);
	return s;
}

/*
 * main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say:
 *   --hold PATH READY              hold, make READY, wait to be ended
 *   --wait PATH BUSY GOT           find it taken, wait for it, make GOT
 *   --queue PATH REPORT N          wait for it, append N, release
 *   --keep PATH READY GO REPORT    hold until GO, report, release
 *   --try PATH TIMEOUT REPORT      acquire with TIMEOUT, report
 *   --poll PATH STOP REPORT        look in-process until STOP, report
 *   --pingpong PATH ROUNDS         take it, wait for a waiter, release
 *   --mark FILE GO CODE            make FILE, wait for GO, exit CODE
 */
int
main(int argc, char **argv)
{
	const char *tmp;
	int         r;

	if ((r = td_child(argc, argv)) != -1)
		return r;
	if (argc == 5 && strcmp(argv[1], "--queue") == 0)
		return queue_for(argv[2], argv[3], argv[4]);
	if (argc == 6 && strcmp(argv[1], "--keep") == 0)
		return keep(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 5 && strcmp(argv[1], "--poll") == 0)
		return poll_lock(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "--pingpong") == 0)
		return pingpong(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--mark") == 0)
		return mark(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "--try") == 0)
		return try_for(argv[2], argv[3], argv[4]);
	if (td_daemon_exe()[0] == '\0')
		return 99;
	if ((tmp = getenv("LOCKBROKER")) == NULL || *tmp == '\0')
		tmp = "tools\\lockbroker.exe";
	if (GetFullPathNameA(tmp, sizeof(tool_exe), tool_exe, NULL) == 0 ||
	    GetModuleFileNameA(NULL, self_exe, sizeof(self_exe)) == 0)
		return 99;
	if (tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_daemon_win", daemon_win_suite(), CK_ENV);
}
