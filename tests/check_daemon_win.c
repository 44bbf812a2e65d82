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
 * The tests: the pipe's DACL, entry by entry (network logons denied
 * first; its owner, the system and the administrators all rights;
 * authenticated users reading and writing data only, never making
 * instances of the pipe nor changing its DACL or owner); users (a client's SID numbered in the state database,
 * the same number after a restart, steps acting as that SID, nothing
 * done for a previous run's hold without a token of its user, a lock
 * kept for a process of the client's user), with daemons of their own
 * beside the suite's; tokens (the daemon's decisions on a client's
 * tokens alone, a record of another integrity level borrowing no token
 * of the client's, a note of the intents file whose number a state
 * database made anew gives nobody not acted on); acquire and release; another process waiting for the lock
 * gets it at the release; a holder ended by TerminateProcess frees its
 * lock for a waiter, and the holder the daemon names is that process
 * (the pipe's client process); four waiting processes granted in the
 * order they queued in; a timed wait ends with LB_ETIMEOUT, not before,
 * leaving nothing queued, and a timeout of 0 does not wait; a wait
 * ended from outside (the interrupt hook, lb_lock_cancel), through the
 * daemon and in-process, leaving nothing queued; the daemon
 * ended and started again on its state and pipe: a live holder keeps its
 * lock (its library reconnects and reclaims it), a holder that died
 * meanwhile loses it; handoffs back and forth while another process
 * keeps looking at the lock file in-process (a handoff's rename waits
 * for such readers on Windows): never seen free, every waiter granted;
 * a second daemon on the same state is refused, naming the state, and
 * so is one on the same pipe, naming the pipe, while the first goes on
 * serving; a mutex of the pipe's name that a user made first, which the
 * daemon may not open, is passed over.
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
#include "../daemon/peertoken.h"

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

/* Starts lockbrokerd on pipe and state, its output into log, its
 * settings from the file config (NULL: none); the handle of its
 * process. */
static HANDLE
daemon_spawn_with(const char *pipe, const char *state, const char *log,
    const char *config)
{
	char args[4 * PATH_MAX];

	ck_assert((size_t)snprintf(args, sizeof(args), "--socket %s --state "
	    "\"%s\" --debug%s%s%s", pipe, state, config != NULL ?
	    " --config \"" : "", config != NULL ? config : "", config != NULL ?
	    "\"" : "") < sizeof(args));
	return td_daemon_spawn(daemons_job(), args, log);
}

/* Starts lockbrokerd on pipe and state, its output into log; the handle
 * of its process. */
static HANDLE
daemon_spawn(const char *pipe, const char *state, const char *log)
{
	return daemon_spawn_with(pipe, state, log, NULL);
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
daemon_start_on_with(struct daemon *d, const char *state, const char *config)
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
	d->proc = daemon_spawn_with(d->pipe, d->state, d->log, config);
	daemon_listening(d);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
}

/* daemon_start_on_with, no settings file. */
static void
daemon_start_on(struct daemon *d, const char *state)
{
	daemon_start_on_with(d, state, NULL);
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

/* This process holds the lock x of a fresh place p (its path into path,
 * PATH_MAX bytes) through the daemon (*l), and another process, which
 * found it taken, waits for it (--wait; the marker it makes once granted
 * into got, PATH_MAX bytes).  The waiter's pid. */
static pid_t
held_and_awaited(struct tl_place *p, char *path, char *got, lb_lock **l)
{
	char  busy[PATH_MAX], args[4 * PATH_MAX];
	pid_t pid;

	tl_place_make(p, "x");
	tl_lock_path(p, path, PATH_MAX);
	td_marker(busy, sizeof(busy), p->dir, "busy");
	td_marker(got, PATH_MAX, p->dir, "got");
	*l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(*l, 5) == 0, "%s", lb_lock_error(*l));
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	pid = tl_self_start(args);
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock taken");
	return pid;
}

/* Another process finds the lock taken, waits for it, and gets it at
 * the release (not before). */
START_TEST(broker_waiter_granted)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX], got[PATH_MAX];
	pid_t           pid;

	pid = held_and_awaited(&p, path, got, &l);
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

/* Runs a child that tries the lock on path (method's: "link",
 * "sqlite") with timeout through the daemon, and waits for its end: its
 * result and how long its lb_acquire took (its report). */
static int
try_method_in_child(lb_lock *l, const char *path, const char *dir,
    double timeout, const char *method, double *took)
{
	HANDLE child;
	char   report[PATH_MAX], text[128], args[4 * PATH_MAX];
	int    r;

	td_marker(report, sizeof(report), dir, "tried");
	snprintf(args, sizeof(args), "--try \"%s\" %g \"%s\" %s", path,
	    timeout, report, method);
	child = process_open(tl_self_start(args));
	if (timeout > 0)
		ck_assert_msg(queued(l, 1), "the timed wait is not queued");
	ck_assert_int_eq(process_wait(child), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	ck_assert_msg(sscanf(text, "%d %lf", &r, took) == 2, "%s", text);
	return r;
}

/* try_method_in_child for the link method's lock. */
static int
try_in_child(lb_lock *l, const char *path, const char *dir, double timeout,
    double *took)
{
	return try_method_in_child(l, path, dir, timeout, "link", took);
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

/* A thread's wait for a lock this thread holds (the thread's own handle:
 * another owner), ended from outside: first by its interrupt hook, which
 * says stop at its third call, then by lb_lock_cancel from this thread. */
struct ended {
	const char    *path;
	unsigned       flags;
	lb_lock       *h;
	volatile LONG  waiting;         /* 1 from before the second wait */
	int            by_hook;         /* the first lb_acquire's answer */
	int            by_cancel;       /* the second's */
	int            calls;           /* the hook's */
};

static int
third_call_stops(void *arg)
{
	struct ended *e = arg;

	return ++e->calls >= 3;
}

static DWORD WINAPI
ended_run(void *arg)
{
	struct ended *e = arg;

	e->by_hook = e->by_cancel = LB_ERROR;
	if ((e->h = lb_lock_new(e->path, e->flags)) == NULL)
		return 1;
	lb_lock_set_interrupt(e->h, third_call_stops, e);
	e->by_hook = lb_acquire(e->h, LB_FOREVER);
	lb_lock_set_interrupt(e->h, NULL, NULL);
	InterlockedExchange(&e->waiting, 1);
	e->by_cancel = lb_acquire(e->h, LB_FOREVER);
	return 0;
}

/* A wait ended from outside, through the daemon and in-process (the
 * loop's two runs): by the interrupt hook, which the waiting thread
 * calls, and by lb_lock_cancel from another thread; each LB_ECANCELED,
 * nothing held, no waiter left queued (the holder's release leaves the
 * lock free). */
START_TEST(wait_ended_from_outside)
{
	static const unsigned flags[] = { LB_BROKER, LB_LOCAL };
	struct tl_place p;
	struct ended    e;
	HANDLE          t;
	lb_lock        *l;
	char            path[PATH_MAX];
	double          until;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = lb_lock_new(path, flags[_i]);
	ck_assert_ptr_nonnull(l);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	memset(&e, 0, sizeof(e));
	e.path = path;
	e.flags = flags[_i];
	t = CreateThread(NULL, 0, ended_run, &e, 0, NULL);
	ck_assert(t != NULL);
	until = tl_now() + 60;
	while (InterlockedCompareExchange(&e.waiting, 0, 0) == 0 &&
	    tl_now() < until)
		tl_sleep(0.01);
	/* 1 once its second acquire is in progress: then it ends it. */
	while (lb_lock_cancel(e.h) == 0 && tl_now() < until)
		tl_sleep(0.01);
	ck_assert(WaitForSingleObject(t, 60000) == WAIT_OBJECT_0);
	CloseHandle(t);
	ck_assert_int_eq(e.by_hook, LB_ECANCELED);
	ck_assert_int_eq(e.calls, 3);
	ck_assert_int_eq(e.by_cancel, LB_ECANCELED);
	ck_assert_int_eq(lb_i_am_locking(e.h), 0);
	if (flags[_i] == LB_BROKER)
		ck_assert_msg(queued(l, 0), "a waiter is left queued");
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(e.h);
	lb_lock_free(l);
}
END_TEST

/* Makes a handle on the path of arg (a struct made) in a thread of its
 * own: its owner is that thread, another than the test's. */
struct made {
	const char *path;
	unsigned    flags;
	lb_lock    *h;
};

static DWORD WINAPI
made_run(void *arg)
{
	struct made *m = arg;

	m->h = lb_lock_new(m->path, m->flags);
	return 0;
}

/* Runs the asynchronous acquire of h, begun with r, as a loop with no
 * descriptor does: sleeps the time lb_acquire_finish gives (never more
 * than 50 ms here), until the outcome (within a minute, asserted). */
static int
async_polled(lb_lock *h, int r)
{
	double again = 0, until = tl_now() + 60;

	while (r == LB_INPROGRESS) {
		ck_assert(tl_now() < until);
		ck_assert_msg(again >= 0 && again <= 0.05, "again %g", again);
		tl_sleep(again);
		r = lb_acquire_finish(h, &again);
	}
	return r;
}

/* The asynchronous acquire through the daemon and in-process (the loop's
 * two runs), polled (Windows has no descriptor for it: lb_lock_fd says
 * LB_EFAILED): while this thread holds the lock it goes on (queued at the
 * daemon); lb_lock_cancel ends it (LB_ECANCELED, no waiter left); begun
 * again it takes the lock at the release, fresh. */
START_TEST(async_acquire_polled)
{
	static const unsigned flags[] = { LB_BROKER, LB_LOCAL };
	struct tl_place p;
	struct made     m;
	HANDLE          t;
	lb_lock        *l;
	char            path[PATH_MAX];
	double          again = 0;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = lb_lock_new(path, flags[_i]);
	ck_assert_ptr_nonnull(l);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	m.path = path;
	m.flags = flags[_i];
	m.h = NULL;
	t = CreateThread(NULL, 0, made_run, &m, 0, NULL);
	ck_assert(t != NULL);
	ck_assert(WaitForSingleObject(t, 60000) == WAIT_OBJECT_0);
	CloseHandle(t);
	ck_assert_ptr_nonnull(m.h);
	ck_assert_int_eq(lb_lock_fd(m.h), LB_EINVAL);
	ck_assert_int_eq(lb_acquire_start(m.h, LB_FOREVER), LB_INPROGRESS);
	ck_assert_int_eq(lb_lock_fd(m.h), LB_EFAILED);
	ck_assert_int_eq(lb_acquire_finish(m.h, &again), LB_INPROGRESS);
	ck_assert_msg(again >= 0 && again <= 0.05, "again %g", again);
	if (flags[_i] == LB_BROKER)
		ck_assert_msg(queued(l, 1), "the acquire is not queued");
	ck_assert_int_eq(lb_lock_cancel(m.h), 1);
	ck_assert_int_eq(async_polled(m.h, LB_INPROGRESS), LB_ECANCELED);
	ck_assert_int_eq(lb_i_am_locking(m.h), 0);
	if (flags[_i] == LB_BROKER)
		ck_assert_msg(queued(l, 0), "a waiter is left queued");
	ck_assert_int_eq(lb_acquire_start(m.h, LB_FOREVER), LB_INPROGRESS);
	if (flags[_i] == LB_BROKER)
		ck_assert_msg(queued(l, 1), "the acquire is not queued");
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_int_eq(async_polled(m.h, LB_INPROGRESS), 0);
	ck_assert_int_eq(lb_acquire_fresh(m.h), 1);
	ck_assert_int_eq(lb_i_am_locking(m.h), 1);
	ck_assert_int_eq(lb_release(m.h), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(m.h);
	lb_lock_free(l);
}
END_TEST

/* Starts a copy of this program with args, which waits for the lock of
 * l through the daemon; once the daemon has it queued, releases holder
 * (l, or an in-process handle); then waits for the copy's end (status
 * 0) and reads its report into text (size bytes).  Asserts. */
static void
waiter_served(lb_lock *l, lb_lock *holder, const char *args,
    const char *report, char *text, size_t size)
{
	HANDLE child = process_open(tl_self_start(args));

	ck_assert_msg(queued(l, 1), "%s: the waiter is not queued",
	    lb_lock_file(l));
	ck_assert_int_eq(lb_release(holder), 0);
	ck_assert_int_eq(process_wait(child), 0);
	ck_assert(tl_read_text(report, text, size) > 0);
}

/* A lock whose directory is a drive's root (C:\, the prefix's drive_c
 * under wine), its path spelled with '\' and with '/': acquired through
 * the daemon (its lock file in the root), another process refused, a
 * waiter granted at the release (the handoff's rename in the root), then
 * free with nothing left; held in-process, the daemon's waiter (which
 * watches the root) is granted once this process releases it. */
START_TEST(broker_drive_root)
{
	struct tl_place p;
	lb_lock        *l, *own;
	char            path[PATH_MAX], file[PATH_MAX], report[PATH_MAX];
	char            args[4 * PATH_MAX], text[64];
	double          took;
	int             k, r;

	tl_place_make(&p, "reports");
	for (k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), k == 0 ? "C:\\lbroot-%lu" :
		    "C:/lbroot-%lu", (unsigned long)GetCurrentProcessId());
		snprintf(file, sizeof(file), "C:\\lbroot-%lu.lock",
		    (unsigned long)GetCurrentProcessId());
		l = td_broker_lock(path);
		snprintf(text, sizeof(text), "C:/lbroot-%lu.lock",
		    (unsigned long)GetCurrentProcessId());
		ck_assert_str_eq(lb_lock_file(l), text);
		ck_assert_msg(lb_acquire(l, 5) == 0, "%s: %s", path,
		    lb_lock_error(l));
		ck_assert_msg(GetFileAttributesA(file) !=
		    INVALID_FILE_ATTRIBUTES, "no %s", file);
		ck_assert_int_eq(try_in_child(l, path, p.dir, 0, &took),
		    LB_EALREADY);
		td_marker(report, sizeof(report), p.dir, "queued");
		snprintf(args, sizeof(args), "--queue \"%s\" \"%s\" %d", path,
		    report, k);
		waiter_served(l, l, args, report, text, sizeof(text));
		ck_assert_int_eq(atoi(text), k);
		ck_assert_int_eq(lb_is_locked(l), 0);
		ck_assert_msg(GetFileAttributesA(file) ==
		    INVALID_FILE_ATTRIBUTES, "%s left", file);

		/* Held in-process: the daemon's waiter watches C:\. */
		own = lb_lock_new(path, LB_LINK | LB_LOCAL);
		ck_assert(own != NULL);
		ck_assert_int_eq(lb_acquire(own, 0), 0);
		td_marker(report, sizeof(report), p.dir, "tried");
		snprintf(args, sizeof(args), "--try \"%s\" 30 \"%s\"", path,
		    report);
		waiter_served(l, own, args, report, text, sizeof(text));
		ck_assert_msg(sscanf(text, "%d %lf", &r, &took) == 2, "%s",
		    text);
		ck_assert_int_eq(r, 0);
		lb_lock_free(own);
		lb_lock_free(l);
		ck_assert_msg(GetFileAttributesA(file) ==
		    INVALID_FILE_ATTRIBUTES, "%s left", file);
	}
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

/* A release whose handoff waits for a reader of the lock file (opened
 * without FILE_SHARE_DELETE, so that no rename may replace it): the
 * release returns long before the library's answer limit (30 s), the
 * daemon answering it pending once release_wait (3 s) is over, while
 * the lock file still names this process; the lock is not free
 * meanwhile, and the waiter is granted once the reader closes the
 * file.  (The daemon had held the release up for as long as the reader
 * kept the file open, and the library failed it after 30 s.) */
START_TEST(broker_release_under_reader)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	HANDLE          reader;
	char            path[PATH_MAX], lock_file[PATH_MAX + 8], got[PATH_MAX];
	double          began;
	pid_t           waiter;

	waiter = held_and_awaited(&p, path, got, &l);
	snprintf(lock_file, sizeof(lock_file), "%s.lock", path);
	ck_assert_msg(queued(l, 1), "the waiter does not wait");
	reader = CreateFileA(lock_file, GENERIC_READ, FILE_SHARE_READ |
	    FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
	ck_assert_msg(reader != INVALID_HANDLE_VALUE, "cannot open %s: %lu",
	    lock_file, (unsigned long)GetLastError());
	began = tl_now();
	ck_assert_msg(lb_release(l) == 0, "%s", lb_lock_error(l));
	ck_assert_msg(tl_now() - began < 15, "the release took %.1f s",
	    tl_now() - began);
	ck_assert_msg(tl_file_count(the.log, "answered pending") > 0,
	    "the release was not answered pending (see %s)", the.log);
	ck_assert_msg(!tl_exists(got), "the waiter was granted while the "
	    "lock file named the releaser");
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, waiter);
	CloseHandle(reader);
	ck_assert_msg(td_appears(got), "the waiter was not granted once the "
	    "reader closed the lock file");
	tl_kill(waiter);
	take_next(l);
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
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
 * METHOD MODE PID USER SINCE TOKEN WAITERS STATE) into cells; asserts
 * that there is one. */
static void
list_row(const char *out, const char *path, char cells[9][PATH_MAX])
{
	const char *row = strstr(out, path);

	ck_assert_msg(row != NULL, "%s not listed: %s", path, out);
	while (row > out && row[-1] != '\n')
		row--;
	ck_assert_msg(sscanf(row, "%s %s %s %s %s %s %s %s %s", cells[0],
	    cells[1], cells[2], cells[3], cells[4], cells[5], cells[6],
	    cells[7], cells[8]) == 9, "a short row: %s", row);
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
	char            cells[9][PATH_MAX];
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
	ck_assert_str_eq(cells[2], "exclusive");
	ck_assert_str_eq(cells[3], pid);
	ck_assert_str_eq(cells[7], "1");
	ck_assert_str_eq(cells[8], "held");
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

/* Asserts that the daemon LOCKBROKER_SOCKET names grants a new lock and
 * takes its release. */
static void
serves_a_lock(void)
{
	struct tl_place p;
	lb_lock        *l;
	char            path[PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
}

/* A second daemon on the same state (another pipe) is refused, saying
 * so; the first goes on serving. */
START_TEST(second_daemon_refused)
{
	HANDLE second;
	DWORD  code = 0;
	char   log[PATH_MAX], text[8192], pipe[160];

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
	serves_a_lock();
}
END_TEST

/* A second daemon on the same pipe (another state) is refused, saying
 * so, and makes no state; the first goes on serving. */
START_TEST(second_daemon_same_pipe_refused)
{
	struct tl_place q;
	HANDLE          second;
	DWORD           code = 0;
	char            log[PATH_MAX], text[8192], *c;

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
	serves_a_lock();
}
END_TEST

/* Makes the single-instance mutex of a new pipe's name first (an event
 * of that name when event), with the security descriptor sddl (as a
 * user could while no daemon runs), then
 * starts a daemon on that pipe: it starts, says in its log that it
 * passed the mutex over, and serves. */
static void
squat_then_start(const char *sddl, const char *tag, int event)
{
	struct tl_place      q;
	struct daemon        d;
	PSECURITY_DESCRIPTOR sd;
	SECURITY_ATTRIBUTES  sa = { sizeof(sa), NULL, FALSE };
	HANDLE               m;
	char                 obj[200], text[8192], *c;

	memset(&d, 0, sizeof(d));
	tl_place_make(&q, "state.sqlite");
	for (c = q.path; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(d.state, sizeof(d.state), "%s", q.path);
	snprintf(d.log, sizeof(d.log), "%s\\squat.log", q.dir);
	snprintf(d.pipe, sizeof(d.pipe), "\\\\.\\pipe\\lbtest-%lu-%s",
	    (unsigned long)GetCurrentProcessId(), tag);
	snprintf(obj, sizeof(obj), "Global\\lockbrokerd!%s", d.pipe);
	for (c = obj + strlen("Global\\"); *c != '\0'; c++)
		if (*c == '\\')
			*c = '!';
	ck_assert(ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl,
	    SDDL_REVISION_1, &sd, NULL));
	sa.lpSecurityDescriptor = sd;
	m = event ? CreateEventA(&sa, FALSE, FALSE, obj) :
	    CreateMutexA(&sa, FALSE, obj);
	LocalFree(sd);
	ck_assert_msg(m != NULL && GetLastError() != ERROR_ALREADY_EXISTS,
	    "%s: error %lu", obj, (unsigned long)GetLastError());

	d.proc = daemon_spawn(d.pipe, d.state, d.log);
	daemon_listening(&d);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d.pipe), 0);
	serves_a_lock();
	ck_assert(tl_read_text(d.log, text, sizeof(text)) > 0);
	ck_assert_msg(strstr(text, "passed over") != NULL, "%s", text);
	daemon_end(&d);
	CloseHandle(m);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
}

/* A mutex of the pipe's name that is not a daemon's is passed over: one
 * another user owns (anyone may open it), one the daemon may not open
 * at all (anonymous's, with an empty DACL), and an event of that name. */
START_TEST(squatted_name_passed_over)
{
	squat_then_start("O:S-1-5-21-1-2-3-1000D:P(A;;GA;;;WD)", "other", 0);
	squat_then_start("O:AND:P", "closed", 0);
	squat_then_start("D:P(A;;GA;;;WD)", "event", 1);
}
END_TEST

/* The pipe's DACL, entry by entry: network logons denied everything,
 * first (they are authenticated users too); the system, the
 * administrators and the pipe's owner all rights; authenticated users
 * reading and writing data only (0x0012008b: neither
 * FILE_CREATE_PIPE_INSTANCE, with which they could serve instances of
 * the pipe, nor WRITE_DAC nor WRITE_OWNER, nor any other write); no
 * entry for everyone (anonymous included) nor anyone else. */
START_TEST(pipe_dacl)
{
	static const struct {
		BYTE        type;
		const char *sid;
	} want[] = {
		{ ACCESS_DENIED_ACE_TYPE, "S-1-5-2" },          /* NU */
		{ ACCESS_ALLOWED_ACE_TYPE, "S-1-5-18" },        /* SY */
		{ ACCESS_ALLOWED_ACE_TYPE, "S-1-5-32-544" },    /* BA */
		{ ACCESS_ALLOWED_ACE_TYPE, "S-1-3-4" },         /* OW */
		{ ACCESS_ALLOWED_ACE_TYPE, "S-1-5-11" },        /* AU */
	};
	const DWORD          all = 0x001f01ff;  /* FILE_ALL_ACCESS */
	const DWORD          users = 0x0012008b;
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL, sid;
	PACL                 dacl = NULL;
	ACL_SIZE_INFORMATION si;
	ACCESS_ALLOWED_ACE  *ace;
	DWORD                i, n = sizeof(want) / sizeof(want[0]);
	HANDLE               h;

	h = CreateFileA(the.pipe, READ_CONTROL, 0, NULL, OPEN_EXISTING,
	    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
	ck_assert_msg(h != INVALID_HANDLE_VALUE, "%s: error %lu", the.pipe,
	    (unsigned long)GetLastError());
	ck_assert_int_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	    NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
	ck_assert_ptr_nonnull(dacl);
	ck_assert(GetAclInformation(dacl, &si, sizeof(si),
	    AclSizeInformation));
	ck_assert_uint_eq(si.AceCount, n);
	for (i = 0; i < n; i++) {
		ck_assert(GetAce(dacl, i, (void **)&ace));
		ck_assert(ConvertStringSidToSidA(want[i].sid, &sid));
		ck_assert_msg(ace->Header.AceType == want[i].type &&
		    EqualSid((PSID)&ace->SidStart, sid), "entry %lu is not "
		    "%s %s", (unsigned long)i, want[i].type ==
		    ACCESS_DENIED_ACE_TYPE ? "a denial to" : "a grant to",
		    want[i].sid);
		LocalFree(sid);
		if (i + 1 < n) {
			ck_assert_msg(ace->Mask == GENERIC_ALL ||
			    ace->Mask == all, "%s: 0x%08lx", want[i].sid,
			    (unsigned long)ace->Mask);
			continue;
		}
		ck_assert_msg(!(ace->Mask & (FILE_CREATE_PIPE_INSTANCE |
		    WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)),
		    "authenticated users: 0x%08lx", (unsigned long)ace->Mask);
		ck_assert_msg(ace->Mask == users, "authenticated users: "
		    "0x%08lx, not 0x%08lx", (unsigned long)ace->Mask,
		    (unsigned long)users);
	}
	LocalFree(sd);
	CloseHandle(h);
}
END_TEST

/* This process's user's SID, as a string, into sid, and its integrity
 * level's RID into *level. */
static void
own_token(char *sid, size_t size, unsigned long *level)
{
	HANDLE t;
	BYTE   buf[512];
	DWORD  n;
	PSID   label;
	char  *s;

	ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &t));
	ck_assert(GetTokenInformation(t, TokenUser, buf, sizeof(buf), &n));
	ck_assert(ConvertSidToStringSidA(((TOKEN_USER *)buf)->User.Sid, &s));
	ck_assert((size_t)snprintf(sid, size, "%s", s) < size);
	LocalFree(s);
	ck_assert(GetTokenInformation(t, TokenIntegrityLevel, buf,
	    sizeof(buf), &n));
	label = ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid;
	*level = *GetSidSubAuthority(label, *GetSidSubAuthorityCount(label) -
	    1u);
	CloseHandle(t);
}

/* This process's user as the daemon names users (its SID and level:
 * lbd_user_key), into out. */
static void
own_user(char *out, size_t size)
{
	unsigned long level;
	char          sid[256];

	own_token(sid, sizeof(sid), &level);
	ck_assert_int_eq(lbd_user_key(sid, level, out, size), 0);
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

/* path as Python's os.path.abspath spells it on Windows (GetFullPathNameW:
 * '\\' its separator), into out (PATH_MAX bytes); asserts. */
static void
python_path(const char *path, char *out)
{
	DWORD n = GetFullPathNameA(path, PATH_MAX, out, NULL);

	ck_assert_msg(n > 0 && n < PATH_MAX, "GetFullPathName %s", path);
}

/* The sqlite method's database of the lock on p (DIR/.lockbroker.sqlite),
 * into db (PATH_MAX bytes). */
static void
sqlite_db(const struct tl_place *p, char *db)
{
	snprintf(db, PATH_MAX, "%s/.lockbroker.sqlite", p->dir);
}

/* The unique_name of the row of lock_file (as Python's SQLiteLockFile
 * writes it: os.path.abspath's spelling) in the sqlite database db, read
 * with plain sqlite, into unique (PATH_MAX bytes); how many rows the
 * table has for it. */
static int
sqlite_row(const char *db, const char *lock_file, char *unique)
{
	sqlite3_stmt *st = NULL;
	sqlite3      *h = NULL;
	int           n = 0;

	*unique = '\0';
	ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(h, "SELECT unique_name FROM locks "
	    "WHERE lock_file = ?", -1, &st, NULL) == SQLITE_OK, "%s: %s", db,
	    sqlite3_errmsg(h));
	ck_assert_int_eq(sqlite3_bind_text(st, 1, lock_file, -1,
	    SQLITE_STATIC), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (n++ == 0)
			snprintf(unique, PATH_MAX, "%s",
			    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Asserts that unique, a row's unique_name, names a thread of process
 * pid on host, in directory dir (Python's spelling): lockfile's
 * DIR\HOST-TID.PID~... for a threaded handle. */
static void
row_names(const char *unique, const char *dir, const char *host, pid_t pid)
{
	char   want[PATH_MAX], tail[32];
	size_t n;

	n = (size_t)snprintf(want, sizeof(want), "%s\\%s-", dir, host);
	snprintf(tail, sizeof(tail), ".%lu~", (unsigned long)pid);
	ck_assert_msg(strncmp(unique, want, n) == 0 &&
	    strstr(unique + n, tail) != NULL, "the row names %s, not %s"
	    "TID%s... (pid %ld)", unique, want, tail, (long)pid);
}

/* The sqlite method through the daemon: the row the daemon writes for
 * its client is lockfile's (PATH.lock and DIR\HOST-TID.PID~..., as
 * os.path.abspath spells them), no lock file; another process is
 * refused at once and, waiting, gets the lock at the release (the row
 * then names it, and this process is refused); Python's SQLiteLockFile
 * holding the lock (its row, written with plain sqlite, another thread's
 * unique name, the path in another case) keeps the daemon's clients out
 * and is named as the holder, until its row is gone. */
START_TEST(broker_sqlite_method)
{
	struct tl_place p;
	lb_holder       h;
	lb_lock        *l;
	HANDLE          child;
	char            path[PATH_MAX], db[PATH_MAX], lock_file[PATH_MAX];
	char            unique[PATH_MAX], dir[PATH_MAX];
	char            ready[PATH_MAX], go[PATH_MAX], report[PATH_MAX];
	char            args[6 * PATH_MAX], text[64], *sql;
	double          took;
	pid_t           pid;

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	sqlite_db(&p, db);
	l = lb_lock_new(path, LB_SQLITE | LB_BROKER);
	ck_assert_msg(l != NULL, "lb_lock_new %s: %s", path, strerror(errno));
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.broker, 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	python_path(lb_lock_file(l), lock_file);
	python_path(p.dir, dir);
	ck_assert_int_eq(sqlite_row(db, lock_file, unique), 1);
	row_names(unique, dir, h.host, (pid_t)GetCurrentProcessId());
	ck_assert(GetFileAttributesA(lb_lock_file(l)) ==
	    INVALID_FILE_ATTRIBUTES);
	ck_assert_int_eq(try_method_in_child(l, path, p.dir, 0, "sqlite",
	    &took), LB_EALREADY);

	/* A waiter, granted at the release. */
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(go, sizeof(go), p.dir, "go");
	td_marker(report, sizeof(report), p.dir, "report");
	snprintf(args, sizeof(args), "--keep \"%s\" \"%s\" \"%s\" \"%s\" "
	    "sqlite", path, ready, go, report);
	pid = tl_self_start(args);
	child = process_open(pid);
	ck_assert_msg(queued(l, 1), "the waiter is not queued");
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_msg(td_appears(ready), "the waiter did not get the lock");
	ck_assert_int_eq(sqlite_row(db, lock_file, unique), 1);
	row_names(unique, dir, h.host, pid);
	ck_assert_int_eq(lb_i_am_locking(l), 0);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(td_touch(go), 0);
	ck_assert_int_eq(process_wait(child), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	ck_assert_str_eq(text, "1 0\n");
	ck_assert_int_eq(sqlite_row(db, lock_file, unique), 0);

	/* Python's SQLiteLockFile holds it: its row, abspath(PATH) + ".lock"
	 * (here in upper case: Windows names ignore it) and
	 * DIR\HOST-TID.PID<hash> (threaded, as it is by default). */
	ck_assert(CharUpperA(lock_file) != NULL);
	snprintf(unique, sizeof(unique), "%s\\%s-1a2b.4242-123456789", dir,
	    h.host);
	sql = sqlite3_mprintf("INSERT INTO locks VALUES (%Q, %Q)", lock_file,
	    unique);
	state_exec(db, sql);
	sqlite3_free(sql);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, 4242);
	ck_assert_int_eq(h.tid, 0x1a2b);
	ck_assert_int_eq(try_method_in_child(l, path, p.dir, 0, "sqlite",
	    &took), LB_EALREADY);
	sql = sqlite3_mprintf("DELETE FROM locks WHERE lock_file = %Q",
	    lock_file);
	state_exec(db, sql);
	sqlite3_free(sql);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_release(l), 0);
	ck_assert_int_eq(lb_is_locked(l), 0);
	lb_lock_free(l);
}
END_TEST

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

/* A daemon whose state database is named with '\' (as a Windows user
 * types it) in directories not made yet: it makes them, starts and
 * serves. */
START_TEST(state_in_new_directories)
{
	struct tl_place p, q;
	struct daemon   d;
	char            path[PATH_MAX], report[PATH_MAX], args[4 * PATH_MAX];
	char            text[64], *c;

	tl_place_make(&p, "new");
	tl_place_make(&q, "x");
	tl_lock_path(&q, path, sizeof(path));
	memset(&d, 0, sizeof(d));
	snprintf(d.state, sizeof(d.state), "%s\\below\\state.sqlite",
	    p.path);
	for (c = d.state; *c != '\0'; c++)
		if (*c == '/')
			*c = '\\';
	snprintf(d.log, sizeof(d.log), "%s.log", p.path);
	snprintf(d.pipe, sizeof(d.pipe), "\\\\.\\pipe\\lbtest-%lu-new",
	    (unsigned long)GetCurrentProcessId());
	d.proc = daemon_spawn(d.pipe, d.state, d.log);
	daemon_listening(&d);
	ck_assert_msg(GetFileAttributesA(d.state) != INVALID_FILE_ATTRIBUTES,
	    "no %s", d.state);
	/* A copy of this program locks through it. */
	td_marker(report, sizeof(report), q.dir, "tried");
	snprintf(args, sizeof(args), "--try \"%s\" 0 \"%s\"", path, report);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d.pipe), 0);
	ck_assert_int_eq(process_wait(process_open(tl_self_start(args))), 0);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	ck_assert(tl_read_text(report, text, sizeof(text)) > 0);
	ck_assert_msg(atoi(text) == 0, "the lock through it: %s", text);
	other_daemon_end(&d);
}
END_TEST

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

/* Asserts that daemon d's log says (within a minute) the text fmt
 * makes. */
static void __attribute__((format(printf, 2, 3)))
log_shows(const struct daemon *d, const char *fmt, ...)
{
	va_list ap;
	char    text[512];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ck_assert_msg(log_says(d, text), "%s: no \"%s\"", d->log, text);
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

	own_user(sid, sizeof(sid));
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

/* A state database whose users table gives a number out of range (one
 * that is (uid_t)-1 as an id, whose next would wrap to 0, root's): the
 * row is not taken (the log says so), and the client's user gets 1, not
 * 0. */
START_TEST(users_numbers_bounded)
{
	struct tl_place p, q;
	struct daemon   d;
	char            sid[256], path[PATH_MAX];
	pid_t           holder;

	own_user(sid, sizeof(sid));
	tl_place_make(&p, "state.sqlite");
	state_exec(p.path, "CREATE TABLE users (uid INTEGER PRIMARY KEY, "
	    "sid TEXT UNIQUE NOT NULL); INSERT INTO users VALUES "
	    "(4294967295, 'S-1-5-21-1-2-3-4444')");
	holder = other_daemon_held(&d, p.path, &q, path, sizeof(path));
	ck_assert_int_eq(state_uid_of(p.path, sid), 1);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), 1);
	ck_assert_msg(log_says(&d, "uid 4294967295 out of range"),
	    "%s: the row is not said to be passed over", d.log);
	tl_kill(holder);
	other_daemon_end(&d);
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

	own_user(sid, sizeof(sid));
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

/* Starts a daemon on a new state database (place p) and a copy of this
 * program that holds a lock through it (of a new place q, its path into
 * path, size bytes), then ends that daemon, as a crash would; the
 * holder's pid, its user's number into *uid. */
static pid_t
held_in_previous_run(struct tl_place *p, struct tl_place *q, char *path,
    size_t size, long long *uid)
{
	struct daemon d;
	char          sid[256];
	pid_t         holder;

	own_user(sid, sizeof(sid));
	tl_place_make(p, "state.sqlite");
	holder = other_daemon_held(&d, p->path, q, path, size);
	*uid = state_uid_of(p->path, sid);
	other_daemon_end(&d);
	return holder;
}

/* Runs `lockbroker VERB --broker PATH` in dir through daemon d (its
 * pipe in LOCKBROKER_SOCKET for the command); its exit code. */
static unsigned long
command_through(const struct daemon *d, const char *dir, const char *verb,
    const char *path)
{
	unsigned long code;
	char          out[4096];

	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
	code = command(dir, out, sizeof(out), "%s --broker \"%s\"", verb,
	    path);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	return code;
}

/* A connection's token is lent to records of its user only while it is
 * open: a restarted daemon's hold of a live process (no token) whose
 * process then exits is not released with the token of a connection
 * that closed, though a lock of that connection's, kept for this
 * process, still holds its credentials.  It is released once a process
 * of its user connects again. */
START_TEST(record_borrows_no_closed_token)
{
	struct tl_place p, q, r;
	struct daemon   d2;
	char            path[PATH_MAX], kept[PATH_MAX], lock[PATH_MAX + 8];
	long long       uid;
	pid_t           holder;

	holder = held_in_previous_run(&p, &q, path, sizeof(path), &uid);
	other_daemon_start(&d2, p.path);
	log_shows(&d2, "no token of uid %ld to act with", (long)uid);
	/* The command keeps a lock for this process and exits: its
	 * connection closes, its credentials live on with that hold. */
	tl_place_make(&r, "kept");
	tl_lock_path(&r, kept, sizeof(kept));
	ck_assert_uint_eq(command_through(&d2, r.dir, "acquire", kept), 0);
	tl_kill(holder);
	log_shows(&d2, "hold of pid %ld from the previous run ends (its "
	    "process exited) once a process of uid %ld connects",
	    (long)holder, (long)uid);
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(tl_exists(lock), "%s released with a closed "
	    "connection's token", lock);
	/* A process of its user connects: released as that user. */
	ck_assert_uint_eq(command_through(&d2, r.dir, "release", kept), 0);
	ck_assert_msg(vanishes(lock), "%s: not released once its user "
	    "connected", lock);
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
	tcase_add_test(t, users_numbers_bounded);
	tcase_add_test(t, restart_acts_not_without_token);
	tcase_add_test(t, record_borrows_no_closed_token);
}

/* Makes file; 0, or 1 when it cannot. */

/* The method a child's last argument names ("sqlite"; NULL, none: the
 * link method), as lb_lock_new's flag. */
static unsigned
method_flags(const char *method)
{
	return method != NULL && strcmp(method, "sqlite") == 0 ? LB_SQLITE :
	    LB_LINK;
}

/* The child of broker_fifo: waits for the lock on path (method's),
 * appends its number to report while it holds it, and releases it.  0,
 * or 1 when a step fails. */
static int
queue_for(const char *path, const char *report, const char *number,
    const char *method)
{
	lb_lock *l = lb_lock_new(path, method_flags(method) | LB_BROKER);
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

/* The child of try_in_child: tries the lock on path (method's) with
 * timeout (in seconds) and writes the result and how long it took into
 * report.  0, or 1 when it cannot. */
static int
try_for(const char *path, const char *timeout, const char *report,
    const char *method)
{
	lb_lock *l = lb_lock_new(path, method_flags(method) | LB_BROKER);
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
 * (method's) through the daemon, makes ready, waits for go to appear (the daemon
 * restarted meanwhile), then writes into report whether it still locks
 * and what its release gives ("1 0": its own, released).  0, or 1 when
 * a step fails before the report. */
static int
keep(const char *path, const char *ready, const char *go,
    const char *report, const char *method)
{
	lb_lock *l = lb_lock_new(path, method_flags(method) | LB_BROKER);
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

/* Asserts that the daemon refuses to act for a client that connected
 * with token a whose process (pid 42) has token b, its reason saying
 * one and two. */
static void
tokens_refused(const struct lbd_token_facts *a,
    const struct lbd_token_facts *b, const char *one, const char *two)
{
	char why[512];

	ck_assert_int_eq(lbd_peer_tokens_agree(a, b, 42, why, sizeof(why)),
	    -1);
	ck_assert_msg(strstr(why, one) != NULL && strstr(why, two) != NULL,
	    "%s", why);
}

/* The daemon's decisions on a client's tokens (peertoken.c), alone: the
 * pipe's token and its process's agree only when of one SID, one logon
 * session, one integrity level, not below medium, and both restricted
 * or neither, and the refusal names both values; the process at the
 * client's pid is taken only when made no later than the connection
 * was noticed; a user's key is its SID at medium and its SID with its
 * level's label otherwise, so that a record of one level never shares
 * a number (and a borrowed token) with another level's. */
START_TEST(peer_tokens_judged)
{
	const char            *me = "S-1-5-21-1-2-3-1001";
	struct lbd_token_facts a = { me, 0x1234, 0x2000, 0, 0 }, b;
	char                   why[512], key[64], high[64];

	b = a;
	ck_assert_int_eq(lbd_peer_tokens_agree(&a, &b, 42, why, sizeof(why)),
	    0);
	b.sid = "S-1-5-21-1-2-3-1002";
	tokens_refused(&a, &b, me, "process 42 runs as S-1-5-21-1-2-3-1002");
	b = a;
	b.logon = 0x5678;
	tokens_refused(&a, &b, "logon session 0x1234", "logon session 0x5678");
	b = a;
	b.level = 0x3000;
	tokens_refused(&a, &b, "level 0x2000", "runs at 0x3000");
	a.level = b.level = 0x3000;
	ck_assert_int_eq(lbd_peer_tokens_agree(&a, &b, 42, why, sizeof(why)),
	    0);
	a.level = b.level = 0x1000;
	tokens_refused(&a, &b, "level 0x1000", "below medium");
	a.level = b.level = 0x2000;
	a.restricted = 1;
	tokens_refused(&a, &b, "with a restricted token",
	    "process 42 runs with an unrestricted one");
	b.restricted = 1;
	ck_assert_int_eq(lbd_peer_tokens_agree(&a, &b, 42, why, sizeof(why)),
	    0);
	a.restricted = 0;
	tokens_refused(&a, &b, "with an unrestricted token",
	    "runs with a restricted one");

	ck_assert_int_eq(lbd_peer_started_before(1000, 1000, me, 42, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(lbd_peer_started_before(999, 1000, me, 42, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(lbd_peer_started_before(1001, 1000, me, 42, why,
	    sizeof(why)), -1);
	ck_assert_msg(strstr(why, "process 42 was created (at 1001)") !=
	    NULL && strstr(why, "(at 1000)") != NULL && strstr(why, me) !=
	    NULL, "%s", why);

	ck_assert_int_eq(lbd_user_key(me, 0x2000, key, sizeof(key)), 0);
	ck_assert_str_eq(key, me);
	ck_assert_int_eq(lbd_user_key(me, 0x3000, high, sizeof(high)), 0);
	ck_assert_str_eq(high, "S-1-5-21-1-2-3-1001+S-1-16-12288");
	ck_assert_str_ne(key, high);
	ck_assert_int_eq(lbd_user_key(me, 0x2100, key, sizeof(key)), 0);
	ck_assert_str_eq(key, "S-1-5-21-1-2-3-1001+S-1-16-8448");
	ck_assert_int_eq(lbd_user_key(me, 0x3000, key, 24), -1);
	ck_assert_int_eq(lbd_user_key(me, 0x2000, key, strlen(me)), -1);
}
END_TEST

/* The text a token's groups are digested by (lbd_token_groups_text):
 * groups enabled and for deny only, restricting SIDs and enabled
 * privileges, sorted; the logon SID, groups disabled and privileges
 * not enabled left out; the kind of logon (INTERACTIVE, BATCH) tells
 * two tokens apart, as does an enabled privilege. */
START_TEST(token_groups_text_judged)
{
	struct lbd_token_entry e[] = {
		{ 'G', "S-1-5-4", 0x7 },                /* INTERACTIVE */
		{ 'G', "S-1-1-0", 0x7 },
		{ 'G', "S-1-5-5-0-77", 0xc0000007ul },  /* logon SID */
		{ 'G', "S-1-5-32-545", 0x0 },           /* disabled */
		{ 'G', "S-1-5-32-544", 0x10 },          /* deny only */
		{ 'R', "S-1-5-12", 0x7 },
		{ 'P', "0:11", 0x0 },                   /* not enabled */
		{ 'P', "0:17", 0x3 },
	};
	struct lbd_token_entry f[8];
	char                  *a, *b;
	size_t                 i, n = sizeof(e) / sizeof(e[0]);

	ck_assert((a = lbd_token_groups_text(e, n)) != NULL);
	ck_assert_str_eq(a, "+S-1-1-0\n+S-1-5-4\n-S-1-5-32-544\nP 0:17\n"
	    "R S-1-5-12\n");
	for (i = 0; i < n; i++)
		f[i] = e[n - 1 - i];
	f[n - 1 - 2].name = "S-1-5-5-0-99";     /* another logon */
	ck_assert((b = lbd_token_groups_text(f, n)) != NULL);
	ck_assert_str_eq(a, b);
	free(b);
	f[n - 1].name = "S-1-5-3";              /* BATCH */
	ck_assert((b = lbd_token_groups_text(f, n)) != NULL);
	ck_assert_str_ne(a, b);
	free(b);
	f[n - 1].name = "S-1-5-4";
	f[1].attrs = 0x3;                       /* 0:11 enabled */
	ck_assert((b = lbd_token_groups_text(f, n)) != NULL);
	ck_assert_str_ne(a, b);
	free(b);
	free(a);
	ck_assert((a = lbd_token_groups_text(e, 0)) != NULL);
	ck_assert_str_eq(a, "");
	free(a);
}
END_TEST

/* A record whose holder's groups were not those of the client's token
 * (its digest in the state database made another) borrows no token of
 * the client's: its holder dead, the hold stays (no token of its
 * number and groups) while a process of this user connects, its lock
 * file in place.  A record written before digests were kept (none)
 * borrows as before: the next daemon frees it once this user connects. */
START_TEST(record_borrows_no_other_groups)
{
	struct tl_place p, q;
	struct daemon   d2, d3;
	char            path[PATH_MAX], lock[PATH_MAX + 8];
	long long       uid;

	tl_kill(held_in_previous_run(&p, &q, path, sizeof(path), &uid));
	ck_assert_int_eq(state_value(p.path, "SELECT length(supp_groups) "
	    "FROM holds"), 32);
	state_exec(p.path, "UPDATE holds SET supp_groups = zeroblob(32)");
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	other_daemon_start(&d2, p.path);
	command_through(&d2, q.dir, "status", path);
	log_shows(&d2, "(a process of its user connected) once a process of "
	    "uid %ld connects", (long)uid);
	ck_assert_msg(tl_exists(lock), "%s released with a token of other "
	    "groups", lock);
	other_daemon_end(&d2);

	state_exec(p.path, "UPDATE holds SET supp_groups = NULL");
	other_daemon_start(&d3, p.path);
	command_through(&d3, q.dir, "status", path);
	ck_assert_msg(vanishes(lock), "%s: a record without a digest not "
	    "released (see %s)", lock, d3.log);
	other_daemon_end(&d3);
}
END_TEST

/* Which clients are this computer's (lbd_peer_local): one whose token
 * has the NETWORK group, or whose pipe names a computer of its client,
 * is refused, the reason naming the user and the group or computer.
 * (Wine gives no network logon, and ends a caller of
 * GetNamedPipeClientComputerName: only the decision is tested.) */
START_TEST(peer_local_judged)
{
	struct lbd_token_facts t = { "S-1-5-21-1-2-3-1001", 0x1234, 0x2000,
	                             0, 0 };
	char                   why[512];

	ck_assert_int_eq(lbd_peer_local(&t, NULL, why, sizeof(why)), 0);
	t.network = 1;
	ck_assert_int_eq(lbd_peer_local(&t, NULL, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "NETWORK group, S-1-5-2") != NULL &&
	    strstr(why, t.sid) != NULL, "%s", why);
	t.network = 0;
	ck_assert_int_eq(lbd_peer_local(&t, "FARAWAY", why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "from computer FARAWAY") != NULL &&
	    strstr(why, t.sid) != NULL, "%s", why);
}
END_TEST

/* A process this client may not open (its DACL denies everyone
 * everything) is not "no such process" to ACQUIRE pid=: it is refused
 * as another user's, saying the client may not look at it. */
START_TEST(kept_for_unopenable_process_refused)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	struct tl_place     p;
	lb_kept_info        how;
	lb_lock            *l;
	char                path[PATH_MAX], ready[PATH_MAX], go[PATH_MAX];
	char                cmd[4 * PATH_MAX];

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(go, sizeof(go), p.dir, "go");
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	ck_assert(ConvertStringSecurityDescriptorToSecurityDescriptorA(
	    "D:(D;;GA;;;WD)", SDDL_REVISION_1, &sa.lpSecurityDescriptor,
	    NULL));
	snprintf(cmd, sizeof(cmd), "\"%s\" --mark \"%s\" \"%s\" 0", self_exe,
	    ready, go);
	ck_assert(CreateProcessA(NULL, cmd, &sa, NULL, FALSE, 0, NULL, NULL,
	    &si, &pi));
	LocalFree(sa.lpSecurityDescriptor);
	CloseHandle(pi.hThread);
	ck_assert(td_appears(ready));
	l = td_broker_lock(path);
	ck_assert_int_ne(lb_acquire_for(l, (pid_t)pi.dwProcessId, 5, &how), 0);
	ck_assert_msg(strstr(lb_lock_error(l), "process of another user "
	    "(this client may not look at it)") != NULL, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(lb_is_locked(l), 0);
	tl_write_text(go, "");
	ck_assert(WaitForSingleObject(pi.hProcess, 60000) == WAIT_OBJECT_0);
	CloseHandle(pi.hProcess);
	lb_lock_free(l);
}
END_TEST

/* A record of this process's SID at another integrity level than this
 * process's (a holder elevated where this one is not, or the other way
 * round; wine runs every process at high) borrows no token of this
 * process's: its holder dead, its hold stays (no token of its number),
 * its lock file in place, while a process of this SID at this level
 * connects, which numbers it apart. */
START_TEST(record_borrows_no_other_level)
{
	struct tl_place p, q, r;
	struct daemon   d1, d2;
	char            me[256], sid[256], other[300], sql[600];
	char            path[PATH_MAX], path2[PATH_MAX], lock[PATH_MAX + 8];
	unsigned long   level;
	long long       mine, theirs;
	pid_t           holder;

	own_user(me, sizeof(me));
	own_token(sid, sizeof(sid), &level);
	if (strcmp(me, sid) != 0)
		snprintf(other, sizeof(other), "%s", sid);
	else
		snprintf(other, sizeof(other), "%s+S-1-16-12288", sid);
	tl_place_make(&p, "state.sqlite");
	snprintf(sql, sizeof(sql), "CREATE TABLE users (uid INTEGER PRIMARY "
	    "KEY, sid TEXT UNIQUE NOT NULL); INSERT INTO users VALUES (1, "
	    "'%s')", other);
	state_exec(p.path, sql);
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	mine = state_uid_of(p.path, me);
	theirs = state_uid_of(p.path, other);
	ck_assert_msg(mine > 1 && theirs == 1, "%s: %ld, %s: %ld", me,
	    (long)mine, other, (long)theirs);
	ck_assert_int_eq(state_value(p.path, "SELECT uid FROM holds"), mine);
	other_daemon_end(&d1);
	tl_kill(holder);
	state_exec(p.path, "UPDATE holds SET uid = 1, gid = 1");

	other_daemon_start(&d2, p.path);
	log_shows(&d2, "once a process of uid %ld connects", (long)theirs);
	tl_place_make(&r, "y");
	tl_lock_path(&r, path2, sizeof(path2));
	holder = holder_start(&d2, &r, path2, "ready");
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	tl_sleep(1);
	ck_assert_msg(tl_exists(lock), "%s released with a token of %s",
	    lock, me);
	ck_assert_int_eq(state_uid_of(p.path, me), mine);
	tl_kill(holder);
	other_daemon_end(&d2);
}
END_TEST

/* Overwrites the start of file (a sqlite database's header, or its
 * write-ahead log's) with junk, as a damaged disk would. */
static void
file_damage(const char *file)
{
	FILE *f;
	char  junk[100];

	memset(junk, 'x', sizeof(junk));
	ck_assert_msg((f = fopen(file, "r+b")) != NULL, "%s", file);
	ck_assert_uint_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	ck_assert_int_eq(fclose(f), 0);
}

/* Makes the first note of intents file file readable again, as a daemon
 * killed between its note and its commit leaves it: the commit hid it
 * with an end mark over its magic ("INT2", daemon/intents.c). */
static void
intent_unhide(const char *file)
{
	FILE *f;

	ck_assert_msg((f = fopen(file, "r+b")) != NULL, "%s", file);
	ck_assert_uint_eq(fwrite("INT2", 1, 4, f), 4);
	ck_assert_int_eq(fclose(f), 0);
}

/* A state database moved aside as damaged numbers users from 1 again,
 * while the intents file beside it keeps a note (a grant noted and not
 * committed, to a holder that died while no daemon ran): the restarted
 * daemon records no note whose number the new database gives nobody,
 * and says so naming it, rather than acting on it as whoever gets that
 * number next; the lock file stays, held outside the broker. */
START_TEST(intent_of_unknown_uid_skipped)
{
	struct tl_place p, q;
	struct daemon   d1, d2;
	char            path[PATH_MAX], lock[PATH_MAX + 8], file[PATH_MAX + 16];
	char            text[PATH_MAX + 64];
	static char     log[1 << 16];
	long long       uid;
	pid_t           holder;

	tl_place_make(&p, "state.sqlite");
	holder = other_daemon_held(&d1, p.path, &q, path, sizeof(path));
	uid = state_value(p.path, "SELECT uid FROM holds");
	ck_assert(uid >= 1);
	other_daemon_end(&d1);
	tl_kill(holder);
	snprintf(file, sizeof(file), "%s-intents", p.path);
	ck_assert_msg(tl_read_text(file, log, sizeof(log)) > 0, "%s: empty",
	    file);
	intent_unhide(file);
	file_damage(p.path);
	snprintf(file, sizeof(file), "%s-wal", p.path);
	file_damage(file);

	other_daemon_start(&d2, p.path);
	ck_assert_msg(log_says(&d2, "moved aside"), "%s", d2.log);
	snprintf(text, sizeof(text), "noted for uid %ld, a number the state "
	    "database gives no user", (long)uid);
	ck_assert_msg(log_says(&d2, text), "%s: no \"%s\"", d2.log, text);
	ck_assert(tl_read_text(d2.log, log, sizeof(log)) > 0);
	ck_assert_msg(strstr(log, "recorded now") == NULL, "%s", log);
	ck_assert_int_eq(state_value(p.path, "SELECT count(*) FROM holds"), 0);
	snprintf(lock, sizeof(lock), "%s.lock", q.path);
	ck_assert_msg(tl_exists(lock), "%s removed", lock);
	other_daemon_end(&d2);
}
END_TEST

/* Adds the tests of tokens (which the daemon acts with, and which a
 * record may borrow) to t, whose fixture is the suite's daemon. */
static void
tokens_tests_add(TCase *t)
{
	tcase_add_test(t, peer_tokens_judged);
	tcase_add_test(t, peer_local_judged);
	tcase_add_test(t, token_groups_text_judged);
	tcase_add_test(t, record_borrows_no_other_groups);
	tcase_add_test(t, kept_for_unopenable_process_refused);
	tcase_add_test(t, record_borrows_no_other_level);
	tcase_add_test(t, intent_of_unknown_uid_skipped);
}

/* The suite. */
/* Waits (up to a minute) until `lockbroker list` through daemon d names
 * path with n waiters; whether it does. */
static int
listed_waiting(const struct daemon *d, const char *dir, const char *path,
    const char *n)
{
	char   out[16384], cells[9][PATH_MAX];
	double until;

	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.05)) {
		if (command(dir, out, sizeof(out), "list") == 0 &&
		    strstr(out, path) != NULL) {
			list_row(out, path, cells);
			if (strcmp(cells[7], n) == 0)
				break;
		}
	}
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	return tl_now() < until;
}

/* Handoffs beyond the daemon's budget of handoffs waiting for readers
 * at full speed (swap_readers_fast = 0, a daemon of its own): two
 * locks, each held by a process through that daemon with another
 * process waiting, each lock file kept open by this process without
 * FILE_SHARE_DELETE (no rename may replace it); both holders ended:
 * both handoffs wait for their readers, tried once a second from the
 * first, the daemon's log naming the budget for each; meanwhile the
 * lock files stay (the locks held), neither waiter granted; once the
 * files are closed, both waiters are granted: beyond the budget a
 * handoff is slower, never lost. */
START_TEST(broker_readers_beyond_budget)
{
	enum { N = 2 };
	struct tl_place p, conf, q[N];
	struct daemon   d;
	HANDLE          reader[N];
	char            path[N][PATH_MAX], got[N][PATH_MAX], busy[PATH_MAX];
	char            lock_file[PATH_MAX + 8], args[4 * PATH_MAX];
	pid_t           holder[N], waiter[N];
	double          until;
	int             k;

	tl_place_make(&conf, "lockbrokerd.conf");
	tl_write_text(conf.path, "swap_readers_fast = 0\n");
	tl_place_make(&p, "state.sqlite");
	daemon_start_on_with(&d, p.path, conf.path);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
	for (k = 0; k < N; k++) {
		tl_place_make(&q[k], "x");
		tl_lock_path(&q[k], path[k], PATH_MAX);
		holder[k] = holder_start(&d, &q[k], path[k], "ready");
		td_marker(busy, sizeof(busy), q[k].dir, "busy");
		td_marker(got[k], PATH_MAX, q[k].dir, "got");
		snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"",
		    path[k], busy, got[k]);
		ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d.pipe), 0);
		waiter[k] = tl_self_start(args);
		ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", the.pipe), 0);
		ck_assert_msg(td_appears(busy), "the waiter did not find %s "
		    "taken", path[k]);
		ck_assert_msg(listed_waiting(&d, q[k].dir, path[k], "1"),
		    "the waiter is not queued for %s", path[k]);
		snprintf(lock_file, sizeof(lock_file), "%s.lock", path[k]);
		reader[k] = CreateFileA(lock_file, GENERIC_READ,
		    FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
		    NULL);
		ck_assert_msg(reader[k] != INVALID_HANDLE_VALUE, "cannot open "
		    "%s: %lu", lock_file, (unsigned long)GetLastError());
	}
	for (k = 0; k < N; k++)
		tl_kill(holder[k]);
	for (until = tl_now() + 60; tl_now() < until; tl_sleep(0.05))
		if (tl_file_count(d.log, "beyond swap_readers_fast") >= N)
			break;
	ck_assert_msg(tl_file_count(d.log, "beyond swap_readers_fast (0 "
	    "handoffs waiting for readers at full speed)") == N, "not both "
	    "handoffs beyond the budget (see %s)", d.log);
	for (k = 0; k < N; k++) {
		snprintf(lock_file, sizeof(lock_file), "%s.lock", path[k]);
		ck_assert_msg(tl_exists(lock_file), "%s: the lock is free",
		    path[k]);
		ck_assert_msg(!tl_exists(got[k]), "%s: the waiter was granted "
		    "while the lock file named the old holder", path[k]);
	}
	for (k = 0; k < N; k++)
		CloseHandle(reader[k]);
	for (k = 0; k < N; k++) {
		ck_assert_msg(td_appears(got[k]), "%s: the waiter was not "
		    "granted once the reader closed the lock file (see %s)",
		    path[k], d.log);
		tl_kill(waiter[k]);
	}
	other_daemon_end(&d);
}
END_TEST

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
	tcase_add_loop_test(t, wait_ended_from_outside, 0, 2);
	tcase_add_loop_test(t, async_acquire_polled, 0, 2);
	tcase_add_test(t, broker_restart_keeps_holder);
	tcase_add_test(t, broker_restart_frees_dead_holder);
	tcase_add_test(t, broker_handoffs_under_reader);
	tcase_add_test(t, broker_release_under_reader);
	tcase_add_test(t, broker_readers_beyond_budget);
	tcase_add_test(t, broker_sqlite_method);
	tcase_add_test(t, broker_drive_root);
	tcase_add_test(t, state_in_new_directories);
	tcase_add_test(t, command_through_daemon);
	tcase_add_test(t, command_kept_through_daemon);
	tcase_add_test(t, second_daemon_refused);
	tcase_add_test(t, second_daemon_same_pipe_refused);
	tcase_add_test(t, squatted_name_passed_over);
	users_tests_add(t);
	tokens_tests_add(t);
	suite_add_tcase(s, t);
	return s;
}

/*
 * main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say:
 *   --hold PATH READY              hold, make READY, wait to be ended
 *   --wait PATH BUSY GOT           find it taken, wait for it, make GOT
 *   --queue PATH REPORT N [M]      wait for it, append N, release
 *   --keep PATH READY GO REPORT [M]  hold until GO, report, release
 *   --try PATH TIMEOUT REPORT [M]  acquire with TIMEOUT, report
 * (M: "sqlite" for that method; else the link method's lock)
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
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "--queue") == 0)
		return queue_for(argv[2], argv[3], argv[4], argv[5]);
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "--keep") == 0)
		return keep(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (argc == 5 && strcmp(argv[1], "--poll") == 0)
		return poll_lock(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "--pingpong") == 0)
		return pingpong(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--mark") == 0)
		return mark(argv[2], argv[3], argv[4]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "--try") == 0)
		return try_for(argv[2], argv[3], argv[4], argv[5]);
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
