/*
 * check_service_win.c: lockbrokerd.exe's life on Windows, under wine:
 * its stop from a console, its run as a service of the service control
 * manager, the exits of the processes it keeps holds for, and the name
 * that keeps a second daemon off its pipe in every session.
 *
 * Every daemon of the suite listens on one pipe (\\.\pipe\lbsvc-PID,
 * LOCKBROKER_SOCKET: the library keeps to the pipe it first found), one
 * at a time, each test starting its own on a state of its own and
 * ending it; it logs to a file (--log, or STATE.log as a service).  The
 * daemons a test starts run in a job that ends them with this program.
 *
 * The tests:
 *   console  Ctrl-C in the daemon's console (it runs in a process group
 *            of its own, which Windows starts ignoring Ctrl-C) stops it:
 *            status 0, its log says so, a live holder's lock is kept
 *            for the restarted daemon, which serves it, and frees it once
 *            the holder is ended.  Ctrl-Break, where the console sends
 *            it (wine 8 does not), stops it alike.
 *   exits    a hold kept for another process (lb_acquire_for) goes to a
 *            waiter once that process is ended with TerminateProcess,
 *            the daemon having watched its exit (not looked at it by its
 *            timer: its log says which).
 *   service  registered with sc.exe create (binPath= "... --service"),
 *            started with sc.exe start: RUNNING once its pipe answers,
 *            serving a client, logging to STATE.log; sc.exe stop stops it
 *            (STOPPED, exit code 0, its log says so); sc.exe delete.
 *            One that cannot start stops with exit code 1 (the service's
 *            own), its log saying why.
 *            Outside the SCM, --service is refused, saying why.
 *   names    the daemon's single-instance mutex is in the Global\
 *            namespace.
 *
 * The other processes are copies of this program: --hold and --wait
 * (testdaemon_win.h); "--console EXE PIPE STATE LOG GO RESULT", run in a
 * console of its own, starts the daemon in a process group of its own
 * in that console, and once GO exists sends it Ctrl-C (then Ctrl-Break
 * to a second daemon) and writes into RESULT how each ended.
 */
#include <windows.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lockbroker.h"
#include "testdaemon_win.h"
#include "testlib.h"

/* The suite's pipe, and the job its daemons run in. */
static char   suite_pipe[128];
static HANDLE suite_job;

/* A daemon's state database and log, in a directory of a test's. */
struct run {
	char dir[PATH_MAX];
	char state[PATH_MAX];
	char log[PATH_MAX];
};

/* Makes a run's directory: state.sqlite (its path with '/', as a user
 * would give it) and lockbrokerd.log in it. */
static void
run_make(struct run *r)
{
	struct tl_place p;
	char           *c;

	tl_place_make(&p, "state.sqlite");
	snprintf(r->dir, sizeof(r->dir), "%s", p.dir);
	snprintf(r->state, sizeof(r->state), "%s", p.path);
	for (c = r->state; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(r->log, sizeof(r->log), "%s\\lockbrokerd.log", p.dir);
}

/* Starts command line (changed in place) with flags, in job when not
 * NULL; its process's handle and *pid, or NULL with the error in *err. */
static HANDLE
spawn(char *line, DWORD flags, HANDLE job, pid_t *pid, DWORD *err)
{
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	HANDLE              r = NULL;
	int                 tries;

	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	/* Wine's CreateProcess fails now and then with ERROR_INTERNAL_ERROR
	 * under load (as testlib_win32.c's children do): tried again, a few
	 * times. */
	for (tries = 0; !CreateProcessA(NULL, line, NULL, NULL, FALSE,
	    flags | CREATE_SUSPENDED, NULL, NULL, &si, &pi); tries++) {
		*err = GetLastError();
		if (*err != ERROR_INTERNAL_ERROR || tries == 3)
			goto out;
		Sleep(100);
	}
	if (job != NULL)
		AssignProcessToJobObject(job, pi.hProcess);
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	*pid = (pid_t)pi.dwProcessId;
	r = pi.hProcess;
out:
	return r;
}

/* The daemon's command line on pipe, with state and log, into out
 * (size bytes); whether it fits.  Asserts nothing: the console's helper
 * (no test) makes one too. */
static int
daemon_line(char *out, size_t size, const char *exe, const char *pipe,
    const char *state, const char *log)
{
	return (size_t)snprintf(out, size, "\"%s\" --socket %s --state "
	    "\"%s\" --log \"%s\" --debug", exe, pipe, state, log) < size;
}

/* Waits (up to a minute) for the suite's pipe to take a connection while
 * proc (when not NULL) runs; whether it does. */
static int
pipe_answers(HANDLE proc)
{
	double until;

	for (until = tl_now() + 60; tl_now() < until;) {
		if (WaitNamedPipeA(suite_pipe, 100))
			return 1;
		if (proc != NULL && WaitForSingleObject(proc, 0) !=
		    WAIT_TIMEOUT)
			return 0;
		tl_sleep(0.05);
	}
	return 0;
}

/* Starts a daemon on the suite's pipe with r's state and log, in the
 * suite's job; once its pipe answers. */
static HANDLE
daemon_start(const struct run *r)
{
	HANDLE h;
	DWORD  err = 0;
	pid_t  pid;
	char   line[4 * PATH_MAX];

	ck_assert(daemon_line(line, sizeof(line), td_daemon_exe(),
	    suite_pipe, r->state, r->log));
	h = spawn(line, 0, suite_job, &pid, &err);
	ck_assert_msg(h != NULL, "%s: error %lu", line, (unsigned long)err);
	ck_assert_msg(pipe_answers(h), "the daemon does not answer (see %s)",
	    r->log);
	return h;
}

/* Ends daemon h (TerminateProcess) and waits for its end. */
static void
daemon_kill(HANDLE h)
{
	TerminateProcess(h, 137);
	WaitForSingleObject(h, 10000);
	CloseHandle(h);
}

/* Whether the text of file (read whole) holds what. */
static int
file_says(const char *file, const char *what)
{
	static char text[256 * 1024];

	return tl_read_text(file, text, sizeof(text)) > 0 &&
	    strstr(text, what) != NULL;
}

/* The pid the daemon names as path's holder (0: none). */
static pid_t
holder_of(lb_lock *l)
{
	lb_holder h;

	return lb_get_holder(l, &h) == 1 ? h.pid : 0;
}

/* Ctrl-C in the daemon's console stops it (status 0, its log says so);
 * a live holder keeps its lock for the restarted daemon, which frees it
 * once the holder is ended. */
START_TEST(console_ctrl_c_stops)
{
	struct tl_place p;
	struct run      r;
	HANDLE          helper, d;
	DWORD           err = 0;
	lb_lock        *l;
	pid_t           pid, holder;
	char            path[PATH_MAX], ready[PATH_MAX], go[PATH_MAX];
	char            result[PATH_MAX], line[8 * PATH_MAX], text[512];
	char            args[4 * PATH_MAX], self[MAX_PATH];

	run_make(&r);
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(ready, sizeof(ready), p.dir, "ready");
	td_marker(go, sizeof(go), p.dir, "go");
	td_marker(result, sizeof(result), p.dir, "result");
	ck_assert(GetModuleFileNameA(NULL, self, sizeof(self)) > 0);
	ck_assert((size_t)snprintf(line, sizeof(line), "\"%s\" --console "
	    "\"%s\" %s \"%s\" \"%s\" \"%s\" \"%s\"", self, td_daemon_exe(),
	    suite_pipe, r.state, r.log, go, result) < sizeof(line));
	helper = spawn(line, CREATE_NEW_CONSOLE, suite_job, &pid, &err);
	ck_assert_msg(helper != NULL, "%s: error %lu", line,
	    (unsigned long)err);
	ck_assert_msg(pipe_answers(helper), "the daemon in its console does "
	    "not answer (see %s)", r.log);
	snprintf(args, sizeof(args), "--hold \"%s\" \"%s\"", path, ready);
	holder = tl_self_start(args);
	ck_assert_msg(td_appears(ready), "the holder did not lock %s", path);
	l = td_broker_lock(path);
	ck_assert_int_eq(holder_of(l), holder);

	ck_assert_int_eq(td_touch(go), 0);
	ck_assert_msg(td_appears(result), "the console's helper did not "
	    "end");
	WaitForSingleObject(helper, 10000);
	CloseHandle(helper);
	ck_assert(tl_read_text(result, text, sizeof(text)) > 0);
	ck_assert_msg(strstr(text, "ctrl-c sent=1 ended=1 status=0") != NULL,
	    "%s", text);
	ck_assert_msg(file_says(r.log, "asks for the stop") &&
	    file_says(r.log, "daemon_run: stopped"), "see %s", r.log);
	if (strstr(text, "ctrl-break sent=0") != NULL)
		printf("console_ctrl_c_stops: " TL_SKIP "Ctrl-Break: the "
		    "console does not send it (wine 8)\n");
	else
		ck_assert_msg(strstr(text, "ctrl-break sent=1 ended=1 "
		    "status=0") != NULL, "%s", text);

	d = daemon_start(&r);
	ck_assert_int_eq(lb_acquire(l, 0), LB_EALREADY);
	ck_assert_int_eq(holder_of(l), holder);
	tl_kill(holder);
	ck_assert_msg(lb_acquire(l, 60) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(holder_of(l), (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
	daemon_kill(d);
}
END_TEST

/* A hold kept for a process (lb_acquire_for) goes to a waiter once the
 * process is ended; the daemon watched its exit (its log says so). */
START_TEST(kept_hold_freed_at_exit)
{
	struct tl_place p;
	struct run      r;
	lb_kept_info    how;
	HANDLE          d;
	lb_lock        *l;
	pid_t           kept, waiter;
	char            path[PATH_MAX], busy[PATH_MAX], got[PATH_MAX];
	char            args[4 * PATH_MAX], said[64];

	run_make(&r);
	d = daemon_start(&r);
	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	td_marker(busy, sizeof(busy), p.dir, "busy");
	td_marker(got, sizeof(got), p.dir, "got");
	kept = tl_sleeper_start();
	l = td_broker_lock(path);
	memset(&how, 0, sizeof(how));
	ck_assert_msg(lb_acquire_for(l, kept, 5, &how) == 0, "%s",
	    lb_lock_error(l));
	ck_assert_int_eq(how.broker, 1);
	ck_assert_int_eq(holder_of(l), kept);
	snprintf(args, sizeof(args), "--wait \"%s\" \"%s\" \"%s\"", path,
	    busy, got);
	waiter = tl_self_start(args);
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock "
	    "taken");
	ck_assert(!tl_exists(got));
	tl_kill(kept);
	ck_assert_msg(td_appears(got), "the waiter did not get the lock "
	    "kept for the ended process");
	ck_assert_int_eq(holder_of(l), waiter);
	snprintf(said, sizeof(said), "process %ld: its exit watched",
	    (long)kept);
	ck_assert_msg(file_says(r.log, said), "%s: not in %s", said, r.log);
	tl_kill(waiter);
	lb_lock_free(l);
	daemon_kill(d);
}
END_TEST

/* Runs sc.exe with args; its exit status. */
static int
sc(const char *args)
{
	HANDLE h;
	DWORD  code = 1, err = 0;
	pid_t  pid;
	char   line[8 * PATH_MAX];

	ck_assert((size_t)snprintf(line, sizeof(line), "sc.exe %s", args) <
	    sizeof(line));
	h = spawn(line, 0, NULL, &pid, &err);
	ck_assert_msg(h != NULL, "%s: error %lu", line, (unsigned long)err);
	ck_assert(WaitForSingleObject(h, 60000) == WAIT_OBJECT_0);
	GetExitCodeProcess(h, &code);
	CloseHandle(h);
	return (int)code;
}

/* The suite's service's name (lbtest-PID). */
static char service_name[64];

/* The service's status, into *st; whether it is registered. */
static int
service_status(SERVICE_STATUS_PROCESS *st)
{
	SC_HANDLE scm, svc = NULL;
	DWORD     n;
	int       r = 0;

	if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT)) == NULL)
		return 0;
	if ((svc = OpenServiceA(scm, service_name, SERVICE_QUERY_STATUS)) !=
	    NULL && QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO,
	    (BYTE *)st, sizeof(*st), &n))
		r = 1;
	if (svc != NULL)
		CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return r;
}

/* Waits (up to a minute) for the service to reach state; whether it
 * did, its last status in *st. */
static int
service_reaches(DWORD state, SERVICE_STATUS_PROCESS *st)
{
	double until = tl_now() + 60;

	while (service_status(st) && st->dwCurrentState != state &&
	    tl_now() < until)
		tl_sleep(0.1);
	return service_status(st) && st->dwCurrentState == state;
}

/* After a service test: the service stopped and deleted, whatever the
 * test left. */
static void
service_remove(void)
{
	SERVICE_STATUS_PROCESS st;
	char                   args[128];

	if (!service_status(&st))
		return;
	snprintf(args, sizeof(args), "stop %s", service_name);
	if (st.dwCurrentState != SERVICE_STOPPED) {
		sc(args);
		service_reaches(SERVICE_STOPPED, &st);
	}
	snprintf(args, sizeof(args), "delete %s", service_name);
	sc(args);
}

/* Registers the suite's service with sc.exe create, to be started on
 * demand: the daemon with --service on the suite's pipe and state,
 * then more (options quoted for sc.exe's binPath=, \" for "). */
static void
service_create(const char *state, const char *more)
{
	char args[8 * PATH_MAX];

	ck_assert((size_t)snprintf(args, sizeof(args), "create %s binPath= "
	    "\"\\\"%s\\\" --service --socket %s --state \\\"%s\\\" %s\" "
	    "start= demand", service_name, td_daemon_exe(), suite_pipe, state,
	    more) < sizeof(args));
	ck_assert_int_eq(sc(args), 0);
}

/* sc.exe create, start, a client served, stop (exit code 0), delete. */
START_TEST(service_by_sc)
{
	SERVICE_STATUS_PROCESS st;
	struct tl_place        p;
	struct run             r;
	lb_lock               *l;
	char                   path[PATH_MAX], args[8 * PATH_MAX];
	char                   log[PATH_MAX + 8];

	run_make(&r);
	snprintf(log, sizeof(log), "%s.log", r.state);
	service_create(r.state, "--debug");
	ck_assert(service_status(&st));
	ck_assert_int_eq(st.dwCurrentState, SERVICE_STOPPED);
	snprintf(args, sizeof(args), "start %s", service_name);
	ck_assert_int_eq(sc(args), 0);
	ck_assert_msg(pipe_answers(NULL), "the service does not answer (see "
	    "%s)", log);
	ck_assert_msg(service_reaches(SERVICE_RUNNING, &st), "state %lu",
	    (unsigned long)st.dwCurrentState);
	ck_assert_uint_ne(st.dwProcessId, 0);

	tl_place_make(&p, "x");
	tl_lock_path(&p, path, sizeof(path));
	l = td_broker_lock(path);
	ck_assert_msg(lb_acquire(l, 5) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(holder_of(l), (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(l), 0);
	lb_lock_free(l);
	ck_assert_msg(file_says(log, "ready on"), "see %s", log);

	snprintf(args, sizeof(args), "stop %s", service_name);
	ck_assert_int_eq(sc(args), 0);
	ck_assert_msg(service_reaches(SERVICE_STOPPED, &st), "state %lu",
	    (unsigned long)st.dwCurrentState);
	ck_assert_uint_eq(st.dwWin32ExitCode, NO_ERROR);
	ck_assert_msg(file_says(log, "the service manager stops the service")
	    && file_says(log, "daemon_run: stopped"), "see %s", log);
	snprintf(args, sizeof(args), "delete %s", service_name);
	ck_assert_int_eq(sc(args), 0);
	ck_assert(!service_status(&st));
}
END_TEST

/* A service that cannot start (its state database under a file) stops
 * with its status as the service's own exit code, its log saying why. */
START_TEST(service_start_fails)
{
	SERVICE_STATUS_PROCESS st;
	struct run             r;
	char                   args[128], state[PATH_MAX + 16];
	char                   more[PATH_MAX + 16];

	run_make(&r);
	tl_write_text(r.state, "");
	snprintf(state, sizeof(state), "%s/sub/state.sqlite", r.state);
	snprintf(more, sizeof(more), "--log \\\"%s\\\"", r.log);
	service_create(state, more);
	snprintf(args, sizeof(args), "start %s", service_name);
	sc(args);
	ck_assert_msg(service_reaches(SERVICE_STOPPED, &st), "state %lu",
	    (unsigned long)st.dwCurrentState);
	ck_assert_uint_eq(st.dwWin32ExitCode, ERROR_SERVICE_SPECIFIC_ERROR);
	ck_assert_uint_eq(st.dwServiceSpecificExitCode, 1);
	ck_assert_msg(file_says(r.log, "sub"), "see %s", r.log);
	ck_assert(!file_says(r.log, "ready on"));
}
END_TEST

/* --service outside the SCM: refused at once, saying why and how. */
START_TEST(service_refused_outside_scm)
{
	struct run r;
	HANDLE     h;
	DWORD      code = 0;
	char       line[4 * PATH_MAX], said[PATH_MAX], text[4096];

	run_make(&r);
	snprintf(said, sizeof(said), "%s\\said", r.dir);
	ck_assert((size_t)snprintf(line, sizeof(line), "--service --socket %s "
	    "--state \"%s\"", suite_pipe, r.state) < sizeof(line));
	h = td_daemon_spawn(suite_job, line, said);
	ck_assert(WaitForSingleObject(h, 60000) == WAIT_OBJECT_0);
	ck_assert(GetExitCodeProcess(h, &code));
	CloseHandle(h);
	ck_assert_uint_eq(code, 1);
	ck_assert(tl_read_text(said, text, sizeof(text)) > 0);
	ck_assert_msg(strstr(text, "--service: not started by the service "
	    "control manager") != NULL && strstr(text, "sc.exe create") !=
	    NULL, "%s", text);
	ck_assert(!tl_exists(r.state));
}
END_TEST

/* The daemon's single-instance mutex is Global\lockbrokerd!NAME ('\' as
 * '!'): a service (session 0) and a console's daemon meet there. */
START_TEST(mutex_is_global)
{
	struct run r;
	HANDLE     d, m;
	char       name[160], *c;

	run_make(&r);
	snprintf(name, sizeof(name), "Global\\lockbrokerd!%s", suite_pipe);
	for (c = name + strlen("Global\\"); *c != '\0'; c++)
		if (*c == '\\')
			*c = '!';
	ck_assert_ptr_null(OpenMutexA(SYNCHRONIZE, FALSE, name));
	d = daemon_start(&r);
	m = OpenMutexA(SYNCHRONIZE, FALSE, name);
	ck_assert_msg(m != NULL, "%s: error %lu", name,
	    (unsigned long)GetLastError());
	CloseHandle(m);
	daemon_kill(d);
}
END_TEST

/* In the console's helper: starts the daemon in a process group of its
 * own in this console, sends it event once it answers (and, with go,
 * once go exists), and appends to result "NAME sent=S ended=E
 * status=N": whether the console sent it, whether the daemon ended
 * within 30 s, and its exit status. */
static void
console_stop(const char *exe, const char *pipe, const char *state,
    const char *log, const char *go, DWORD event, const char *name,
    const char *result)
{
	HANDLE h = NULL, job = td_job();
	DWORD  status = 259, err = 0;
	FILE  *f;
	pid_t  pid;
	char   line[4 * PATH_MAX];
	int    sent = 0, ended = 0;

	snprintf(suite_pipe, sizeof(suite_pipe), "%s", pipe);
	if (daemon_line(line, sizeof(line), exe, pipe, state, log) &&
	    (h = spawn(line, CREATE_NEW_PROCESS_GROUP, job, &pid, &err)) !=
	    NULL && pipe_answers(h)) {
		while (go != NULL && !tl_exists(go))
			Sleep(20);
		sent = GenerateConsoleCtrlEvent(event, (DWORD)pid) != 0;
		ended = sent && WaitForSingleObject(h, 30000) ==
		    WAIT_OBJECT_0;
		GetExitCodeProcess(h, &status);
	}
	if (h != NULL) {
		TerminateProcess(h, 137);
		CloseHandle(h);
	}
	if ((f = fopen(result, "a")) != NULL) {
		fprintf(f, "%s sent=%d ended=%d status=%lu\n", name, sent,
		    ended, (unsigned long)status);
		fclose(f);
	}
	if (job != NULL)
		CloseHandle(job);
}

/* The child of console_ctrl_c_stops, in a console of its own: Ctrl-C
 * to the daemon on pipe and state once go exists, then Ctrl-Break to a
 * second one (on another pipe and state: the holder's library must not
 * find it), each told into a temporary file made result at the end. */
static int
child_console(const char *exe, const char *pipe, const char *state,
    const char *log, const char *go, const char *result)
{
	char part[PATH_MAX + 8], state2[PATH_MAX + 8], pipe2[160];

	snprintf(part, sizeof(part), "%s.part", result);
	snprintf(state2, sizeof(state2), "%s.break", state);
	snprintf(pipe2, sizeof(pipe2), "%s-break", pipe);
	console_stop(exe, pipe, state, log, go, CTRL_C_EVENT, "ctrl-c",
	    part);
	console_stop(exe, pipe2, state2, log, NULL, CTRL_BREAK_EVENT,
	    "ctrl-break", part);
	return MoveFileA(part, result) ? 0 : 1;
}

/* The suite. */
static Suite *
service_win_suite(void)
{
	Suite *s = suite_create("service_win");
	TCase *t;

	t = tcase_create("console");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, console_ctrl_c_stops);
	suite_add_tcase(s, t);
	t = tcase_create("exits");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, kept_hold_freed_at_exit);
	suite_add_tcase(s, t);
	t = tcase_create("service");
	tcase_set_timeout(t, 240);
	tcase_add_checked_fixture(t, NULL, service_remove);
	tcase_add_test(t, service_by_sc);
	tcase_add_test(t, service_start_fails);
	tcase_add_test(t, service_refused_outside_scm);
	suite_add_tcase(s, t);
	t = tcase_create("names");
	tcase_set_timeout(t, 240);
	tcase_add_test(t, mutex_is_global);
	suite_add_tcase(s, t);
	return s;
}

/* main: runs the suite (tl_main), or, as the child of a test, what its
 * arguments say. */
int
main(int argc, char **argv)
{
	int r;

	if ((r = td_child(argc, argv)) != -1)
		return r;
	if (argc == 8 && strcmp(argv[1], "--console") == 0)
		return child_console(argv[2], argv[3], argv[4], argv[5],
		    argv[6], argv[7]);
	snprintf(suite_pipe, sizeof(suite_pipe), "\\\\.\\pipe\\lbsvc-%lu",
	    (unsigned long)GetCurrentProcessId());
	snprintf(service_name, sizeof(service_name), "lbtest-%lu",
	    (unsigned long)GetCurrentProcessId());
	if (td_daemon_exe()[0] == '\0' ||
	    _putenv_s("LOCKBROKER_SOCKET", suite_pipe) != 0 ||
	    (suite_job = td_job()) == NULL || tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_service_win", service_win_suite(), CK_ENV);
}
