/*
 * testdaemon_win.c: what the suites of lockbrokerd.exe under wine share
 * (testdaemon_win.h).
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

/* td_daemon_exe: see testdaemon_win.h. */
const char *
td_daemon_exe(void)
{
	static char exe[MAX_PATH];
	const char *name;

	if (exe[0] != '\0')
		return exe;
	if ((name = getenv("LOCKBROKERD")) == NULL || *name == '\0')
		name = "daemon\\lockbrokerd.exe";
	if (GetFullPathNameA(name, sizeof(exe), exe, NULL) == 0)
		exe[0] = '\0';
	return exe;
}

/* td_job: see testdaemon_win.h. */
HANDLE
td_job(void)
{
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
	HANDLE                               job;

	if ((job = CreateJobObjectA(NULL, NULL)) == NULL)
		return NULL;
	memset(&li, 0, sizeof(li));
	li.BasicLimitInformation.LimitFlags =
	    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation,
	    &li, sizeof(li))) {
		CloseHandle(job);
		job = NULL;
	}
	return job;
}

/* td_daemon_spawn: see testdaemon_win.h.  Started suspended, put in
 * job, then resumed: it never runs outside it. */
HANDLE
td_daemon_spawn(HANDLE job, const char *args, const char *log)
{
	SECURITY_ATTRIBUTES sa;
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	HANDLE              out;
	char                line[4 * PATH_MAX];

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	sa.bInheritHandle = TRUE;
	out = CreateFileA(log, FILE_APPEND_DATA, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, OPEN_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	ck_assert_msg(out != INVALID_HANDLE_VALUE, "%s: error %lu", log,
	    (unsigned long)GetLastError());
	ck_assert((size_t)snprintf(line, sizeof(line), "\"%s\" %s",
	    td_daemon_exe(), args) < sizeof(line));
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
	if (!AssignProcessToJobObject(job, pi.hProcess)) {
		TerminateProcess(pi.hProcess, 1);
		ck_abort_msg("AssignProcessToJobObject: error %lu",
		    (unsigned long)GetLastError());
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

/* td_appears: see testdaemon_win.h. */
int
td_appears(const char *file)
{
	double until = tl_now() + 60;

	while (!tl_exists(file) && tl_now() < until)
		tl_sleep(0.02);
	return tl_exists(file);
}

/* td_touch: see testdaemon_win.h. */
int
td_touch(const char *file)
{
	HANDLE h;

	h = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return 1;
	CloseHandle(h);
	return 0;
}

/* td_marker: see testdaemon_win.h. */
void
td_marker(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s\\%s", dir, name);
	DeleteFileA(out);
}

/* td_broker_lock: see testdaemon_win.h. */
lb_lock *
td_broker_lock(const char *path)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	ck_assert_msg(l != NULL, "lb_lock_new %s: %s", path, strerror(errno));
	return l;
}

/* --hold PATH READY (testdaemon_win.h). */
static int
child_hold(const char *path, const char *ready)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	if (l == NULL || lb_acquire(l, 30) != 0 || td_touch(ready) != 0) {
		fprintf(stderr, "--hold %s: %s\n", path, l != NULL ?
		    lb_lock_error(l) : strerror(errno));
		return 1;
	}
	for (;;)
		Sleep(INFINITE);
}

/* --wait PATH BUSY GOT (testdaemon_win.h). */
static int
child_wait(const char *path, const char *busy, const char *got)
{
	lb_lock *l = lb_lock_new(path, LB_LINK | LB_BROKER);

	if (l == NULL || lb_acquire(l, 0) != LB_EALREADY ||
	    td_touch(busy) != 0 || lb_acquire(l, 60) != 0 ||
	    td_touch(got) != 0) {
		fprintf(stderr, "--wait %s: %s\n", path, l != NULL ?
		    lb_lock_error(l) : strerror(errno));
		return 1;
	}
	for (;;)
		Sleep(INFINITE);
}

/* td_child: see testdaemon_win.h. */
int
td_child(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--hold") == 0)
		return child_hold(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--wait") == 0)
		return child_wait(argv[2], argv[3], argv[4]);
	return -1;
}
