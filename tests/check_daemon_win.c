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
 * The tests: the pipe's DACL (authenticated users read and write it,
 * nobody but its owner, the system and administrators makes
 * instances); acquire and release; another process waiting for the lock
 * gets it at the release; a holder ended by TerminateProcess frees its
 * lock for a waiter, and the holder the daemon names is that process
 * (the pipe's client process); a second daemon on the same state is
 * refused, naming the state, and so is one on the same pipe, naming
 * the pipe, while the first goes on serving.
 *
 * The other processes are copies of this program: --hold and --wait
 * (testdaemon_win.h).  Lock paths are given rooted on the current drive
 * ("/dir/..."), as in check_client_win.
 */
#include <windows.h>
#include <aclapi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lockbroker.h"
#include "testdaemon_win.h"
#include "testlib.h"

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

/* Starts lockbrokerd on pipe and state, its output into log; the handle
 * of its process. */
static HANDLE
daemon_spawn(const char *pipe, const char *state, const char *log)
{
	SECURITY_ATTRIBUTES sa;
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	HANDLE              out;
	char                line[3 * PATH_MAX];

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	sa.bInheritHandle = TRUE;
	out = CreateFileA(log, FILE_APPEND_DATA, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, OPEN_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	ck_assert_msg(out != INVALID_HANDLE_VALUE, "%s: error %lu", log,
	    (unsigned long)GetLastError());
	ck_assert((size_t)snprintf(line, sizeof(line), "\"%s\" --socket %s "
	    "--state \"%s\" --debug", td_daemon_exe(), pipe, state) <
	    sizeof(line));
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = INVALID_HANDLE_VALUE;
	si.hStdOutput = out;
	si.hStdError = out;
	ck_assert_msg(CreateProcessA(NULL, line, NULL, NULL, TRUE,
	    CREATE_SUSPENDED, NULL, NULL, &si, &pi), "CreateProcess %s: "
	    "error %lu", line, (unsigned long)GetLastError());
	CloseHandle(out);
	if (!AssignProcessToJobObject(daemons_job(), pi.hProcess)) {
		TerminateProcess(pi.hProcess, 1);
		ck_abort_msg("AssignProcessToJobObject: error %lu",
		    (unsigned long)GetLastError());
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

/* Starts a daemon on a new pipe and a state database in a directory of
 * its own, and points the library at its pipe (LOCKBROKER_SOCKET); once
 * the pipe takes a connection. */
static void
daemon_start(struct daemon *d)
{
	static unsigned n;
	struct tl_place p;
	double          until;
	char           *c;

	tl_place_make(&p, "state.sqlite");
	snprintf(d->state, sizeof(d->state), "%s", p.path);
	for (c = d->state; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(d->log, sizeof(d->log), "%s\\lockbrokerd.log", p.dir);
	snprintf(d->pipe, sizeof(d->pipe), "\\\\.\\pipe\\lbtest-%lu-%u",
	    (unsigned long)GetCurrentProcessId(), n++);
	d->proc = daemon_spawn(d->pipe, d->state, d->log);
	for (until = tl_now() + 60; tl_now() < until;) {
		if (WaitNamedPipeA(d->pipe, 100))
			break;
		ck_assert_msg(WaitForSingleObject(d->proc, 0) == WAIT_TIMEOUT,
		    "lockbrokerd ended before it listened (see %s)", d->log);
		tl_sleep(0.05);
	}
	ck_assert_msg(WaitNamedPipeA(d->pipe, 100), "%s does not answer",
	    d->pipe);
	ck_assert_int_eq(_putenv_s("LOCKBROKER_SOCKET", d->pipe), 0);
}

/* Ends the daemon (TerminateProcess: see the top of this file). */
static void
daemon_end(struct daemon *d)
{
	TerminateProcess(d->proc, 137);
	WaitForSingleObject(d->proc, 10000);
	CloseHandle(d->proc);
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
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock "
	    "taken");
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
	ck_assert_msg(td_appears(busy), "the waiter did not find the lock "
	    "taken");
	ck_assert(!tl_exists(got));
	tl_kill(pid);
	ck_assert_msg(td_appears(got), "the waiter did not get the lock of the "
	    "ended holder");
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, waiter);
	tl_kill(waiter);
	ck_assert_msg(lb_acquire(l, 60) == 0, "%s", lb_lock_error(l));
	ck_assert_int_eq(lb_get_holder(l, &h), 1);
	ck_assert_int_eq(h.pid, (pid_t)GetCurrentProcessId());
	ck_assert_int_eq(lb_release(l), 0);
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

/* The pipe's DACL: while the daemon does not tell users apart (every
 * client's steps run with its rights), nobody but its own account, the
 * system and the administrators may open it: no entry for authenticated
 * users nor everyone gives any right, so none may make instances of it
 * (FILE_CREATE_PIPE_INSTANCE, FILE_APPEND_DATA's bit) either; its owner
 * may read and write. */
START_TEST(pipe_dacl)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL, au = NULL, world = NULL;
	PACL                 dacl = NULL;
	ACL_SIZE_INFORMATION si;
	ACCESS_ALLOWED_ACE  *ace;
	DWORD                i, sidlen, au_mask = 0;
	HANDLE               h;
	BYTE                 au_buf[SECURITY_MAX_SID_SIZE];
	BYTE                 world_buf[SECURITY_MAX_SID_SIZE];

	h = CreateFileA(the.pipe, READ_CONTROL, 0, NULL, OPEN_EXISTING,
	    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
	ck_assert_msg(h != INVALID_HANDLE_VALUE, "%s: error %lu", the.pipe,
	    (unsigned long)GetLastError());
	ck_assert_int_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	    NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
	ck_assert_ptr_nonnull(dacl);
	sidlen = sizeof(au_buf);
	au = au_buf;
	ck_assert(CreateWellKnownSid(WinAuthenticatedUserSid, NULL, au,
	    &sidlen));
	sidlen = sizeof(world_buf);
	world = world_buf;
	ck_assert(CreateWellKnownSid(WinWorldSid, NULL, world, &sidlen));
	ck_assert(GetAclInformation(dacl, &si, sizeof(si),
	    AclSizeInformation));
	for (i = 0; i < si.AceCount; i++) {
		ck_assert(GetAce(dacl, i, (void **)&ace));
		if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE)
			continue;
		ck_assert_msg(!EqualSid((PSID)&ace->SidStart, world) ||
		    ace->Mask == 0, "everyone: 0x%lx",
		    (unsigned long)ace->Mask);
		if (EqualSid((PSID)&ace->SidStart, au))
			au_mask |= ace->Mask;
	}
	ck_assert_msg(au_mask == 0, "authenticated users: 0x%lx",
	    (unsigned long)au_mask);
	LocalFree(sd);
	CloseHandle(h);
}
END_TEST

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
	tcase_add_test(t, second_daemon_refused);
	tcase_add_test(t, second_daemon_same_pipe_refused);
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
	if (td_daemon_exe()[0] == '\0' || tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_daemon_win", daemon_win_suite(), CK_ENV);
}
