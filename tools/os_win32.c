/*
 * os_win32.c: the lockbroker command's system calls on Windows (os.h).
 */
#include "config.h"

#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <shellapi.h>
#include <tlhelp32.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <wchar.h>

#include "os.h"
#include "say.h"

/* os_args: see os.h. */
int
os_args(int *argc, char ***argv)
{
	LPWSTR *wargv = NULL;
	char  **out = NULL;
	int     wargc = 0, i, n, r = -1;

	if ((wargv = CommandLineToArgvW(GetCommandLineW(), &wargc)) == NULL) {
		complain("cannot read the command line: error %lu",
		    (unsigned long)GetLastError());
		goto out;
	}
	if ((out = calloc((size_t)wargc + 1, sizeof(*out))) == NULL) {
		complain("cannot read the command line: out of memory");
		goto out;
	}
	for (i = 0; i < wargc; i++) {
		n = WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, NULL, 0,
		    NULL, NULL);
		if (n <= 0 || (out[i] = malloc((size_t)n)) == NULL ||
		    WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, out[i], n,
		    NULL, NULL) != n) {
			complain("cannot read the command line's argument %d "
			    "as UTF-8: %s", i, n <= 0 || out[i] != NULL ?
			    "not valid UTF-16" : "out of memory");
			goto out;
		}
	}
	*argc = wargc;
	*argv = out;
	out = NULL;             /* kept for the life of the process */
	r = 0;
out:
	if (out != NULL) {
		for (i = 0; i < wargc; i++)
			free(out[i]);
		free(out);
	}
	if (wargv != NULL)
		LocalFree(wargv);
	return r;
}

/* The creation time of process pid, or 0 when it cannot be opened. */
static ULONGLONG
created_at(DWORD pid)
{
	HANDLE    h;
	FILETIME  c, e, k, u;
	ULONGLONG t = 0;

	if ((h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) ==
	    NULL)
		return 0;
	if (GetProcessTimes(h, &c, &e, &k, &u))
		t = ((ULONGLONG)c.dwHighDateTime << 32) | c.dwLowDateTime;
	CloseHandle(h);
	return t;
}

/* os_parent_pid: see os.h.  Windows keeps the parent's id after the parent
 * has ended (and may give it to another process): a parent created after
 * this process is not ours. */
pid_t
os_parent_pid(void)
{
	PROCESSENTRY32W pe;
	HANDLE          snap;
	DWORD           self = GetCurrentProcessId(), parent = 0;
	ULONGLONG       born;

	if ((snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0)) ==
	    INVALID_HANDLE_VALUE)
		return 0;
	pe.dwSize = sizeof(pe);
	if (Process32FirstW(snap, &pe)) {
		do {
			if (pe.th32ProcessID == self) {
				parent = pe.th32ParentProcessID;
				break;
			}
		} while (Process32NextW(snap, &pe));
	}
	CloseHandle(snap);
	if (parent == 0 || (born = created_at(parent)) == 0 ||
	    born > created_at(self))
		return 0;
	return (pid_t)parent;
}

/* os_user_name: see os.h. */
const char *
os_user_name(lb_uid_t uid, char *buf, size_t size)
{
	(void)uid;
	snprintf(buf, size, "?");
	return buf;
}

/* os_local_time: see os.h.  The offset is the local time's difference
 * with UTC's at t (the C runtime's %z gives the zone's name). */
int
os_local_time(time_t t, struct tm *tm, long *utcoff)
{
	struct tm utc;
	long      days;

	if (localtime_s(tm, &t) != 0 || gmtime_s(&utc, &t) != 0)
		return -1;
	if (tm->tm_year != utc.tm_year)
		days = tm->tm_year > utc.tm_year ? 1 : -1;
	else
		days = tm->tm_yday - utc.tm_yday;
	*utcoff = ((days * 24 + tm->tm_hour - utc.tm_hour) * 60 +
	    tm->tm_min - utc.tm_min) * 60 + tm->tm_sec - utc.tm_sec;
	return 0;
}

/* 1 when path (wide) is a file, not a directory. */
static int
is_file(const wchar_t *path)
{
	DWORD attr = GetFileAttributesW(path);

	return attr != INVALID_FILE_ATTRIBUTES &&
	    (attr & FILE_ATTRIBUTE_DIRECTORY) == 0;
}

/* os_is_command: see os.h.  A name with a directory in it is looked at as
 * it is, then with ".exe" added when its last part has no extension (as
 * CreateProcessW does); a bare name is searched for by SearchPathW (the
 * program's directory, the current one, the system's, then PATH). */
int
os_is_command(const char *name)
{
	wchar_t     found[MAX_PATH];
	wchar_t    *w = NULL;
	const char *base;
	DWORD       n;
	size_t      len;
	int         wn, r = 0;

	if (*name == '\0')
		goto out;
	wn = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1,
	    NULL, 0);
	/* Room for ".exe". */
	if (wn <= 0 || (w = malloc(((size_t)wn + 4) * sizeof(*w))) == NULL ||
	    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, w,
	    wn) != wn)
		goto out;
	if (strpbrk(name, "/\\:") == NULL) {
		n = SearchPathW(NULL, w, L".exe", MAX_PATH, found, NULL);
		r = n > 0 && n < MAX_PATH && is_file(found);
		goto out;
	}
	if ((r = is_file(w)))
		goto out;
	for (base = name + strlen(name); base > name; base--)
		if (strchr("/\\:", base[-1]) != NULL)
			break;
	if (strchr(base, '.') == NULL) {
		len = wcslen(w);
		wcscpy(w + len, L".exe");
		r = is_file(w);
	}
out:
	free(w);
	return r;
}
