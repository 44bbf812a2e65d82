/*
 * testlib_win32.c: the part of the test harness (testlib.h) that needs
 * the operating system, on Windows, for the suites built there so far:
 * the run's set-up (testlib_os.h), the run's directory, clocks and
 * guarded memory.  The rest of testlib.h (places, files by descriptor,
 * children, the daemon) is Unix only for now (testlib_unix.c).
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
	if (GetFullPathNameA(made, sizeof(tl_top), tl_top, NULL) == 0 ||
	    strlen(tl_top) >= sizeof(tl_top) - 1 ||
	    _putenv_s("TMPDIR", tl_top) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The run's directory.                                                 */

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
