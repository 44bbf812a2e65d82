/*
 * testlib_win32.c: the part of the test harness (testlib.h) that needs
 * the operating system, on Windows, for the suites built there so far:
 * the run's set-up (testlib_os.h), places and directories, clocks,
 * guarded memory, small files, and child processes to take the pids of
 * (suspended copies of the test program, in a job that ends them when
 * the test program ends), and programs run to their end with their
 * output kept (tl_run_start).  The rest of testlib.h (files by descriptor,
 * children that run code, the daemon) is Unix only for now
 * (testlib_unix.c).
 */
#include <windows.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "testlib_os.h"

/* ------------------------------------------------------------------ */
/* The run's set-up (testlib_os.h).                                     */

void
tl_os_run_begin(void)
{
	_putenv("LOCKBROKER_SQLITE_DB=");       /* empty: unset */
}

int
tl_os_top_settle(const char *made)
{
	DWORD n = GetFullPathNameA(made, sizeof(tl_top), tl_top, NULL);

	/* 0: failed; the size it needs when tl_top is too small. */
	if (n == 0 || n >= sizeof(tl_top)) {
		errno = n == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	if (_putenv_s("TMPDIR", tl_top) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Places and directories.                                              */

void
tl_place_in(char *dir, char *path, const char *name)
{
	static unsigned long n;
	DWORD               err = 0;
	unsigned            tries;

	for (tries = 0; tries < 1000; tries++) {
		snprintf(dir, PATH_MAX, "%s\\t.%lu", tl_top, ++n);
		if (CreateDirectoryA(dir, NULL))
			break;
		if ((err = GetLastError()) != ERROR_ALREADY_EXISTS)
			break;
	}
	ck_assert_msg(tries < 1000 && GetFileAttributesA(dir) !=
	    INVALID_FILE_ATTRIBUTES, "CreateDirectory %s: error %lu", dir,
	    (unsigned long)err);
	tl_path_join(path, PATH_MAX, dir, name);
}

void
tl_place_make(struct tl_place *p, const char *name)
{
	tl_place_in(p->dir, p->path, name);
}

void
tl_place_remove(const char *dir)
{
	ck_assert_msg(tl_dir_remove(dir) == 0, "cannot remove %s", dir);
}

void
tl_mkdir(const char *path)
{
	ck_assert_msg(CreateDirectoryA(path, NULL), "CreateDirectory %s: "
	    "error %lu", path, (unsigned long)GetLastError());
}

void
tl_dir_make(char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	char        base[MAX_PATH];
	unsigned    tries;

	if (tmp == NULL || *tmp == '\0') {
		if (GetTempPathA(sizeof(base), base) == 0)
			snprintf(base, sizeof(base), ".");
		tmp = base;
	}
	/* mkdtemp's loop: a name of the pid and a counter, made with
	 * CreateDirectory, which fails when the name exists. */
	for (tries = 0; tries < 1000; tries++) {
		snprintf(out, size, "%s\\lbtest.%lu.%u", tmp,
		    (unsigned long)GetCurrentProcessId(), tries);
		if (CreateDirectoryA(out, NULL))
			return;
		if (GetLastError() != ERROR_ALREADY_EXISTS)
			break;
	}
	fprintf(stderr, "CreateDirectory %s: error %lu\n", out,
	    (unsigned long)GetLastError());
	abort();
}

int
tl_dir_remove(const char *dir)
{
	WIN32_FIND_DATAA fd;
	HANDLE           h;
	char             pattern[PATH_MAX], path[PATH_MAX];
	int              r = 0;

	if (snprintf(pattern, sizeof(pattern), "%s\\*", dir) >=
	    (int)sizeof(pattern))
		return -1;
	h = FindFirstFileA(pattern, &fd);
	if (h != INVALID_HANDLE_VALUE) {
		do {
			if (strcmp(fd.cFileName, ".") == 0 ||
			    strcmp(fd.cFileName, "..") == 0)
				continue;
			if (snprintf(path, sizeof(path), "%s\\%s", dir,
			    fd.cFileName) >= (int)sizeof(path)) {
				r = -1;
				continue;
			}
			/* A directory (or a reparse point: removed itself,
			 * never followed) */
			if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
			    !(fd.dwFileAttributes &
			    FILE_ATTRIBUTE_REPARSE_POINT)) {
				if (tl_dir_remove(path) == -1)
					r = -1;
			} else if (fd.dwFileAttributes &
			    FILE_ATTRIBUTE_DIRECTORY) {
				if (!RemoveDirectoryA(path))
					r = -1;
			} else if (!DeleteFileA(path)) {
				r = -1;
			}
		} while (FindNextFileA(h, &fd));
		FindClose(h);
	}
	if (!RemoveDirectoryA(dir))
		r = -1;
	return r;
}

/* ------------------------------------------------------------------ */
/* Clocks.                                                              */

double
tl_now(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER        now;

	if (freq.QuadPart == 0)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	return (double)now.QuadPart / (double)freq.QuadPart;
}

void
tl_sleep(double s)
{
	if (!(s > 0))
		return;
	Sleep((DWORD)(s * 1000 + 0.5));
}

/* ------------------------------------------------------------------ */
/* Files.                                                               */

int
tl_exists(const char *file)
{
	return GetFileAttributesA(file) != INVALID_FILE_ATTRIBUTES;
}

void
tl_write_text(const char *file, const char *text)
{
	FILE  *f = fopen(file, "wb");
	size_t len = strlen(text);

	ck_assert_msg(f != NULL, "cannot create %s: %s", file,
	    strerror(errno));
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

ssize_t
tl_read_text(const char *file, char *buf, size_t size)
{
	FILE  *f = fopen(file, "rb");
	size_t n;
	int    bad;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	bad = ferror(f);
	fclose(f);
	if (bad)
		return -1;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* ------------------------------------------------------------------ */
/* Children: processes to take the pids of.                             */

/* The job every child is put in: closed, so its children ended, when
 * this process ends however it ends. */
static HANDLE
children_job(void)
{
	static HANDLE                        job;
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION limit;

	if (job != NULL)
		return job;
	job = CreateJobObjectA(NULL, NULL);
	ck_assert_msg(job != NULL, "CreateJobObject: error %lu",
	    (unsigned long)GetLastError());
	memset(&limit, 0, sizeof(limit));
	limit.BasicLimitInformation.LimitFlags =
	    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	ck_assert_msg(SetInformationJobObject(job,
	    JobObjectExtendedLimitInformation, &limit, sizeof(limit)),
	    "SetInformationJobObject: error %lu",
	    (unsigned long)GetLastError());
	return job;
}

/* A copy of this program run with the arguments args, in the children's
 * job (suspended when suspended).  Its process handle; *pid set. */
static HANDLE
child_self(const char *args, int suspended, pid_t *pid)
{
	STARTUPINFOA        si;
	PROCESS_INFORMATION pi;
	char                self[MAX_PATH], line[2 * MAX_PATH + 4096];
	DWORD               n, err;
	int                 tries;

	n = GetModuleFileNameA(NULL, self, sizeof(self));
	ck_assert(n > 0 && n < sizeof(self));
	ck_assert((size_t)snprintf(line, sizeof(line), "\"%s\" %s", self,
	    args) < sizeof(line));
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	/* Wine's CreateProcess has failed now and then with
	 * ERROR_INTERNAL_ERROR under load (once in about twenty runs of
	 * check_lockfs_win): tried again, a few times. */
	for (tries = 0; !CreateProcessA(self, line, NULL, NULL, FALSE,
	    CREATE_SUSPENDED, NULL, NULL, &si, &pi); tries++) {
		err = GetLastError();
		ck_assert_msg(err == ERROR_INTERNAL_ERROR && tries < 3,
		    "CreateProcess %s: error %lu", self, (unsigned long)err);
		Sleep(100);
	}
	if (!AssignProcessToJobObject(children_job(), pi.hProcess)) {
		TerminateProcess(pi.hProcess, 1);
		CloseHandle(pi.hThread);
		CloseHandle(pi.hProcess);
		ck_abort_msg("AssignProcessToJobObject: error %lu",
		    (unsigned long)GetLastError());
	}
	if (!suspended)
		ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	*pid = (pid_t)pi.dwProcessId;
	return pi.hProcess;
}

/* A suspended copy of this program, in the children's job: it runs no
 * code, and lives until killed.  Its process handle; *pid set. */
static HANDLE
child_suspended(pid_t *pid)
{
	return child_self("", 1, pid);
}

/* Ends process h, waits for its end and closes h; its exit status. */
static int
end_process(HANDLE h)
{
	DWORD code = 0;

	ck_assert(TerminateProcess(h, 137));
	ck_assert(WaitForSingleObject(h, 10000) == WAIT_OBJECT_0);
	ck_assert(GetExitCodeProcess(h, &code));
	CloseHandle(h);
	return (int)code;
}

int
tl_kill(pid_t pid)
{
	HANDLE h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE |
	    PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);

	ck_assert_msg(h != NULL, "OpenProcess %ld: error %lu", (long)pid,
	    (unsigned long)GetLastError());
	return end_process(h);
}

pid_t
tl_sleeper_start(void)
{
	pid_t pid;

	CloseHandle(child_suspended(&pid));
	return pid;
}

pid_t
tl_self_start(const char *args)
{
	pid_t pid;

	CloseHandle(child_self(args, 0, &pid));
	return pid;
}

pid_t
tl_dead_pid(void)
{
	pid_t pid;

	end_process(child_suspended(&pid));
	return pid;
}

/* ------------------------------------------------------------------ */
/* Guarded memory.                                                      */

char *
tl_guard_copy(struct tl_guarded *g, const void *data, size_t len)
{
	SYSTEM_INFO si;
	DWORD       old;
	size_t      page, pages;
	char       *map;

	GetSystemInfo(&si);
	page = si.dwPageSize;
	pages = len / page + 1;
	g->maplen = (pages + 1) * page;
	map = VirtualAlloc(NULL, g->maplen, MEM_COMMIT | MEM_RESERVE,
	    PAGE_READWRITE);
	ck_assert_ptr_nonnull(map);
	ck_assert(VirtualProtect(map + pages * page, page, PAGE_NOACCESS,
	    &old));
	g->map = map;
	g->data = map + pages * page - len;
	if (len > 0)
		memcpy(g->data, data, len);
	return g->data;
}

void
tl_guard_free(struct tl_guarded *g)
{
	VirtualFree(g->map, 0, MEM_RELEASE);
}

void
tl_lock_path(const struct tl_place *p, char *out, size_t size)
{
	char root[4], *c;

	ck_assert_msg(p->path[1] == ':', "no drive in %s", p->path);
	snprintf(root, sizeof(root), "%.2s\\", p->path);
	ck_assert(SetCurrentDirectoryA(root));
	ck_assert((size_t)snprintf(out, size, "%s", p->path + 2) < size);
	for (c = out; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
}

int
tl_tmpdir_here(void)
{
	const char *tmp = getenv("TMPDIR");
	char        cwd[MAX_PATH];

	if (tmp != NULL && *tmp != '\0')
		return 0;
	return GetCurrentDirectoryA(sizeof(cwd), cwd) == 0 ||
	    _putenv_s("TMPDIR", cwd) != 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Programs run to their end, their output kept.                        */

void
tl_wide(const char *s, wchar_t *out, int n)
{
	ck_assert_msg(MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s,
	    -1, out, n) > 0, "cannot convert %s to UTF-16", s);
}

void
tl_run_start(struct tl_run *r, const char *dir, const char *prog,
    const char *args)
{
	static int          seq;
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, TRUE };
	STARTUPINFOW        si;
	PROCESS_INFORMATION pi;
	wchar_t             wout[MAX_PATH], *line;
	char               *utf8;
	size_t              len;
	HANDLE              h;

	snprintf(r->out, sizeof(r->out), "%s\\out-%d", dir, ++seq);
	tl_wide(r->out, wout, MAX_PATH);
	h = CreateFileW(wout, GENERIC_WRITE, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, CREATE_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	ck_assert_msg(h != INVALID_HANDLE_VALUE, "cannot make %s", r->out);
	len = strlen(prog) + strlen(args) + 4;
	ck_assert((utf8 = malloc(len)) != NULL);
	snprintf(utf8, len, "\"%s\" %s", prog, args);
	ck_assert((line = malloc(len * sizeof(*line))) != NULL);
	tl_wide(utf8, line, (int)len);
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = NULL;
	si.hStdOutput = h;
	si.hStdError = h;
	ck_assert_msg(CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL,
	    NULL, &si, &pi), "cannot run %s: error %lu", utf8,
	    (unsigned long)GetLastError());
	CloseHandle(pi.hThread);
	CloseHandle(h);
	r->process = pi.hProcess;
	r->pid = pi.dwProcessId;
	free(line);
	free(utf8);
}

unsigned long
tl_run_finish(struct tl_run *r, char *out, size_t size)
{
	DWORD code;

	ck_assert_msg(WaitForSingleObject(r->process, 60000) == WAIT_OBJECT_0,
	    "%s did not end", r->out);
	ck_assert(GetExitCodeProcess(r->process, &code));
	CloseHandle(r->process);
	out[tl_read_file(r->out, out, size - 1)] = '\0';
	return code;
}
