/*
 * proc_win32.c: the Windows benchmark program's other processes (the
 * daemon, the floor's echoing process, a handoff's other side), each in
 * one job that ends them when this program ends, however it ends.
 */
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_win32.h"

/* The job of every process started here (made on first use). */
static HANDLE
proc_job(void)
{
	static HANDLE                        job;
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;

	if (job != NULL)
		return job;
	if ((job = CreateJobObjectA(NULL, NULL)) == NULL)
		die("CreateJobObject: error %lu",
		    (unsigned long)GetLastError());
	memset(&li, 0, sizeof(li));
	li.BasicLimitInformation.LimitFlags =
	    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation,
	    &li, sizeof(li)))
		die("SetInformationJobObject: error %lu",
		    (unsigned long)GetLastError());
	return job;
}

/* proc_start: see bench_win32.h. */
HANDLE
proc_start(const char *cmdline, HANDLE out)
{
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	HANDLE              self = GetCurrentProcess(), dup;
	char                line[8192];

	if ((size_t)snprintf(line, sizeof(line), "%s", cmdline) >=
	    sizeof(line))
		die("command line too long: %s", cmdline);
	/* The child's standard handles must be inheritable. */
	if (!DuplicateHandle(self, out, self, &dup, 0, TRUE,
	    DUPLICATE_SAME_ACCESS))
		die("DuplicateHandle: error %lu",
		    (unsigned long)GetLastError());
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = INVALID_HANDLE_VALUE;
	si.hStdOutput = dup;
	si.hStdError = dup;
	if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, CREATE_SUSPENDED,
	    NULL, NULL, &si, &pi))
		die("cannot start %s: error %lu", cmdline,
		    (unsigned long)GetLastError());
	CloseHandle(dup);
	if (!AssignProcessToJobObject(proc_job(), pi.hProcess)) {
		TerminateProcess(pi.hProcess, 1);
		die("AssignProcessToJobObject: error %lu",
		    (unsigned long)GetLastError());
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

/* proc_self: see bench_win32.h. */
HANDLE
proc_self(const char *args)
{
	char exe[MAX_PATH], line[8192];
	DWORD n = GetModuleFileNameA(NULL, exe, sizeof(exe));

	if (n == 0 || n >= sizeof(exe))
		die("GetModuleFileName: error %lu",
		    (unsigned long)GetLastError());
	if ((size_t)snprintf(line, sizeof(line), "\"%s\" %s", exe, args) >=
	    sizeof(line))
		die("command line too long: %s", args);
	return proc_start(line, GetStdHandle(STD_ERROR_HANDLE));
}

/* proc_wait: see bench_win32.h. */
void
proc_wait(HANDLE p, const char *what)
{
	DWORD code = 1;

	if (WaitForSingleObject(p, INFINITE) != WAIT_OBJECT_0 ||
	    !GetExitCodeProcess(p, &code))
		die("waiting for %s: error %lu", what,
		    (unsigned long)GetLastError());
	CloseHandle(p);
	if (code != 0)
		die("%s failed (exit status %lu)", what, (unsigned long)code);
}
