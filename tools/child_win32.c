/*
 * child_win32.c: running COMMAND on Windows (child.h): CreateProcessW,
 * then a wait for its end.
 *
 *   guard: Ctrl-C/Ctrl-Break left to COMMAND --- CreateProcessW ---> running
 *                               |                                      |
 *                               | not found: 127, else 126             | ends
 *                               v                                      v
 *                            (said why)                   its exit code
 *
 * COMMAND shares lockbroker's console, so a Ctrl-C or Ctrl-Break reaches
 * it directly; lockbroker's handler (installed by the guard, not
 * inherited) only keeps lockbroker alive meanwhile, so that it waits for
 * COMMAND and releases the lock after it.  The console closing, a logoff
 * or a shutdown end lockbroker as usual: its connection ends and the
 * daemon frees the lock; an in-process lock is left to stale detection
 * (its holder's process is gone).  There are no signals: the status is
 * COMMAND's whole exit code (a process ended by TerminateProcess exits
 * with the code it was given).
 *
 * COMMAND gets lockbroker's standard handles (made inheritable for it)
 * and every other inheritable handle; liblockbroker's own handles are not
 * inheritable.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "say.h"

struct child_guard {
	int installed;              /* the handler is installed */
};

/* Keeps lockbroker alive through Ctrl-C and Ctrl-Break while COMMAND,
 * which gets them too, runs; the other events take their usual course. */
static BOOL WINAPI
ctrl_ignore(DWORD type)
{
	return type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT;
}

/* child_guard_begin: see child.h. */
struct child_guard *
child_guard_begin(void)
{
	struct child_guard *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		complain("cannot set up console events: out of memory");
		goto out;
	}
	if (!SetConsoleCtrlHandler(ctrl_ignore, TRUE)) {
		complain("cannot set up console events: error %lu",
		    (unsigned long)GetLastError());
		free(g);
		g = NULL;
		goto out;
	}
	g->installed = 1;
out:
	return g;
}

/* child_guard_end: see child.h. */
void
child_guard_end(struct child_guard *g)
{
	if (g == NULL)
		return;
	if (g->installed)
		SetConsoleCtrlHandler(ctrl_ignore, FALSE);
	free(g);
}

/* A growing wide string. */
struct wbuf {
	wchar_t *s;
	size_t   len;
	size_t   size;
	int      failed;    /* out of memory, or not UTF-8 */
};

/* Appends n copies of c to b. */
static void
wb_put(struct wbuf *b, wchar_t c, size_t n)
{
	wchar_t *s;
	size_t   size;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->size) {
		size = b->size * 2 > b->len + n + 1 ? b->size * 2 :
		    b->len + n + 1 + 64;
		if ((s = realloc(b->s, size * sizeof(*s))) == NULL) {
			b->failed = 1;
			return;
		}
		b->s = s;
		b->size = size;
	}
	while (n-- > 0)
		b->s[b->len++] = c;
	b->s[b->len] = L'\0';
}

/* utf8_to_wide: str (UTF-8) as a new wide string; NULL when it is not
 * UTF-8 or memory is short. */
static wchar_t *
utf8_to_wide(const char *str)
{
	wchar_t *w = NULL;
	int      n;

	n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, str, -1, NULL,
	    0);
	if (n <= 0 || (w = malloc((size_t)n * sizeof(*w))) == NULL)
		goto out;
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, str, -1, w,
	    n) != n) {
		free(w);
		w = NULL;
	}
out:
	return w;
}

/*
 * Appends argument arg (UTF-8) to b, quoted as the C runtime's
 * CommandLineToArgvW rules read it back: as it is when it is not empty
 * and has no blank or quote; else between quotes, with a quote escaped by
 * a backslash and backslashes doubled where they come before a quote (the
 * closing one included).  The program's name (first) is only put between
 * quotes: the runtime takes it up to the next quote, backslashes as they
 * are (a file name cannot hold a quote).
 */
static void
wb_arg(struct wbuf *b, const char *arg, int first)
{
	wchar_t *w, *p;
	size_t   slashes;

	if ((w = utf8_to_wide(arg)) == NULL) {
		b->failed = 1;
		return;
	}
	if (b->len > 0)
		wb_put(b, L' ', 1);
	if (*w != L'\0' && wcspbrk(w, L" \t\n\v\"") == NULL) {
		for (p = w; *p != L'\0'; p++)
			wb_put(b, *p, 1);
		goto out;
	}
	wb_put(b, L'"', 1);
	for (p = w; ; p++) {
		slashes = 0;
		while (!first && *p == L'\\') {
			slashes++;
			p++;
		}
		if (*p == L'\0') {
			wb_put(b, L'\\', slashes * 2);
			break;
		}
		if (*p == L'"' && !first)
			wb_put(b, L'\\', slashes * 2 + 1);
		else
			wb_put(b, L'\\', slashes);
		wb_put(b, *p, 1);
	}
	wb_put(b, L'"', 1);
out:
	free(w);
}

/* The system's error text for code, into buf (size bytes, UTF-8), with
 * name (UTF-8; NULL: "it") where the text has a place for one ("%1"). */
static const char *
error_text(DWORD code, const char *name, char *buf, size_t size)
{
	DWORD_PTR args[9];
	wchar_t   w[512], *wname = NULL;
	DWORD     n;
	size_t    i;
	int       m;

	if (name == NULL || (wname = utf8_to_wide(name)) == NULL)
		wname = _wcsdup(L"it");
	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		args[i] = (DWORD_PTR)(wname != NULL ? wname : L"it");
	n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM |
	    FORMAT_MESSAGE_ARGUMENT_ARRAY, NULL, code, 0, w,
	    sizeof(w) / sizeof(w[0]), (va_list *)args);
	while (n > 0 && (w[n - 1] == L'\r' || w[n - 1] == L'\n' ||
	    w[n - 1] == L'.' || w[n - 1] == L' '))
		n--;
	m = n > 0 ? WideCharToMultiByte(CP_UTF8, 0, w, (int)n, buf,
	    (int)size - 1, NULL, NULL) : 0;
	if (m <= 0)
		snprintf(buf, size, "error %lu", (unsigned long)code);
	else
		buf[m] = '\0';
	free(wname);
	return buf;
}

/* Makes the standard handles inheritable (where they are handles that can
 * be), and puts them into si. */
static void
std_handles(STARTUPINFOW *si)
{
	static const DWORD which[] = { STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
	    STD_ERROR_HANDLE };
	HANDLE             h[3];
	size_t             i;

	for (i = 0; i < 3; i++) {
		h[i] = GetStdHandle(which[i]);
		if (h[i] != NULL && h[i] != INVALID_HANDLE_VALUE)
			SetHandleInformation(h[i], HANDLE_FLAG_INHERIT,
			    HANDLE_FLAG_INHERIT);
	}
	si->dwFlags |= STARTF_USESTDHANDLES;
	si->hStdInput = h[0];
	si->hStdOutput = h[1];
	si->hStdError = h[2];
}

/* child_run: see child.h. */
int
child_run(const struct child_guard *g, const char *shell_cmd,
    char *const argv[])
{
	PROCESS_INFORMATION pi;
	STARTUPINFOW        si;
	struct wbuf         line = { NULL, 0, 0, 0 };
	wchar_t            *app = NULL;
	const char         *shell = getenv("COMSPEC"), *what;
	char                why[256];
	DWORD               code;
	size_t              i;
	int                 r;

	(void)g;
	if (shell == NULL || *shell == '\0')
		shell = "cmd.exe";
	what = shell_cmd != NULL ? shell : argv[0];
	if (shell_cmd != NULL) {
		/* cmd /s takes what follows /c, less its outer quotes, as
		 * it is. */
		wb_arg(&line, shell, 1);
		wb_put(&line, L' ', 1);
		wb_put(&line, L'/', 1);
		wb_put(&line, L'd', 1);
		wb_put(&line, L' ', 1);
		wb_put(&line, L'/', 1);
		wb_put(&line, L's', 1);
		wb_put(&line, L' ', 1);
		wb_put(&line, L'/', 1);
		wb_put(&line, L'c', 1);
		wb_put(&line, L' ', 1);
		wb_put(&line, L'"', 1);
		if (!line.failed && (app = utf8_to_wide(shell_cmd)) == NULL)
			line.failed = 1;
		for (i = 0; app != NULL && app[i] != L'\0'; i++)
			wb_put(&line, app[i], 1);
		wb_put(&line, L'"', 1);
		free(app);
		app = NULL;
	} else {
		for (i = 0; argv[i] != NULL; i++)
			wb_arg(&line, argv[i], i == 0);
	}
	if (line.failed) {
		complain("cannot run %s: %s", what, "out of memory, or not "
		    "UTF-8");
		r = EXIT_CANNOT_EXEC;
		goto out;
	}
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	std_handles(&si);
	fflush(NULL);
	if (!CreateProcessW(NULL, line.s, NULL, NULL, TRUE, 0, NULL, NULL,
	    &si, &pi)) {
		code = GetLastError();
		complain("cannot run %s: %s", what, error_text(code, what,
		    why, sizeof(why)));
		r = code == ERROR_FILE_NOT_FOUND ||
		    code == ERROR_PATH_NOT_FOUND ||
		    code == ERROR_INVALID_NAME ? EXIT_NOT_FOUND :
		    EXIT_CANNOT_EXEC;
		goto out;
	}
	CloseHandle(pi.hThread);
	if (WaitForSingleObject(pi.hProcess, INFINITE) != WAIT_OBJECT_0 ||
	    !GetExitCodeProcess(pi.hProcess, &code)) {
		complain("cannot wait for the command: %s",
		    error_text(GetLastError(), NULL, why, sizeof(why)));
		r = EX_OSERR;
	} else
		r = (int)code;
	CloseHandle(pi.hProcess);
out:
	free(line.s);
	return r;
}
