/*
 * testserver_win32.c: the OS part of the daemon's stand-in (testserver.h)
 * on a named pipe of one instance, in byte mode as the daemon's: while
 * it serves a client, another finds every instance busy.  The instance
 * is both the listener and the connection: a client ends, the instance
 * is disconnected and waits for the next.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>

#include "protocol.h"
#include "testlib.h"
#include "testserver.h"

/* ts_os_default_where: see testserver.h. */
const char ts_os_default_where[] = LBP_SYSTEM_PIPE;

/* ts_os_where: see testserver.h.  The pipe's name tells the process, so
 * that two runs at once do not meet. */
int
ts_os_where(char *out, size_t size, const char *name)
{
	int n;

	n = snprintf(out, size, "\\\\.\\pipe\\lockbroker-test-%lu-%s",
	    (unsigned long)GetCurrentProcessId(), name);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* ts_os_setenv: see testserver.h. */
int
ts_os_setenv(const char *name, const char *value)
{
	/* An empty value unsets it in the C runtime's environment. */
	return _putenv_s(name, value != NULL ? value : "") == 0 ? 0 : -1;
}

/* ts_os_listen: see testserver.h. */
int
ts_os_listen(struct ts_os *o, const char *where, char *why, size_t size)
{
	wchar_t name[300];
	HANDLE  h;

	o->conn = -1;
	o->listener = -1;
	if (MultiByteToWideChar(CP_UTF8, 0, where, -1, name, 300) == 0) {
		snprintf(why, size, "a name too long");
		return -1;
	}
	h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX |
	    FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_TYPE_BYTE |
	    PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
	    65536, 65536, 0, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		snprintf(why, size, "CreateNamedPipeW: error %lu",
		    (unsigned long)GetLastError());
		return -1;
	}
	o->listener = (intptr_t)h;
	return 0;
}

/* ts_os_may_act: see testserver.h.  The level of the token that
 * ImpersonateNamedPipeClient gives: below SecurityImpersonation (the
 * client opened the pipe at the identification level) it can be read,
 * not used.  Wine (8.0) ignores the level a client asks for and always
 * gives SecurityImpersonation: there, -1. */
int
ts_os_may_act(struct ts_os *o)
{
	SECURITY_IMPERSONATION_LEVEL level = SecurityAnonymous;
	HANDLE                       t;
	DWORD                        n;
	int                          r = 0;

	if (GetProcAddress(GetModuleHandleA("ntdll.dll"),
	    "wine_get_version") != NULL)
		return -1;
	if (!ImpersonateNamedPipeClient((HANDLE)o->conn))
		return 0;
	if (OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t)) {
		if (GetTokenInformation(t, TokenImpersonationLevel, &level,
		    sizeof(level), &n))
			r = level >= SecurityImpersonation;
		CloseHandle(t);
	}
	RevertToSelf();
	return r;
}

/* ts_os_accept: see testserver.h. */
int
ts_os_accept(struct ts_os *o, char *why, size_t size)
{
	HANDLE h = (HANDLE)o->listener;

	if (!ConnectNamedPipe(h, NULL) &&
	    GetLastError() != ERROR_PIPE_CONNECTED) {
		snprintf(why, size, "ConnectNamedPipe: error %lu",
		    (unsigned long)GetLastError());
		return -1;
	}
	o->conn = o->listener;
	return 0;
}

/* ts_os_read: see testserver.h.  The client's end is a broken pipe. */
long
ts_os_read(struct ts_os *o, char *buf, size_t size)
{
	DWORD n = 0;

	if (ReadFile((HANDLE)o->conn, buf, (DWORD)size, &n, NULL))
		return (long)n;
	return GetLastError() == ERROR_BROKEN_PIPE ? 0 : -1;
}

/* ts_os_write: see testserver.h. */
int
ts_os_write(struct ts_os *o, const char *buf, size_t len)
{
	DWORD n;

	while (len > 0) {
		if (!WriteFile((HANDLE)o->conn, buf, (DWORD)len, &n, NULL) ||
		    n == 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* ts_os_hangup: see testserver.h. */
void
ts_os_hangup(struct ts_os *o)
{
	if (o->conn != -1) {
		FlushFileBuffers((HANDLE)o->conn);
		DisconnectNamedPipe((HANDLE)o->conn);
	}
	o->conn = -1;
}

/* ts_os_close: see testserver.h. */
void
ts_os_close(struct ts_os *o)
{
	if (o->listener != -1)
		CloseHandle((HANDLE)o->listener);
	o->listener = -1;
}
