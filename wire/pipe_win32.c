/*
 * pipe_win32.c: the transport of wire.h on a Windows named pipe: where the
 * daemon listens, open, send, wait for bytes, shut down, close.  The only
 * file of the module that knows what a pipe is.
 *
 * The pipe is opened for overlapped I/O, so that every wait has a
 * deadline and can be ended from another thread: a read or a write is
 * started, then waited for on an event of its own (never a busy loop);
 * when the time is up it is cancelled (CancelIoEx) and whatever it read
 * meanwhile is kept.  lbw_shutdown cancels every I/O on the pipe and
 * marks the connection shut, which makes later reads and writes fail.
 * c->fd is a C runtime descriptor of the pipe's handle (_open_osfhandle),
 * so that the struct means what it means on Unix (-1: closed), and
 * _close() closes the handle.
 */
#include <windows.h>
#include <aclapi.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfs.h"
#include "sid_win32.h"
#include "protocol.h"
#include "wire.h"

/* The longest pipe name Windows takes, in characters. */
#define PIPE_NAME_MAX 256

/* The prefix of a local pipe's name. */
#define PIPE_PREFIX "\\\\.\\pipe\\"

/* The pipe's handle behind c's descriptor. */
static HANDLE
conn_handle(const struct lbw_conn *c)
{
	return (HANDLE)_get_osfhandle(c->fd);
}

/* Whether lbw_shutdown was called on c. */
static int
conn_shut(struct lbw_conn *c)
{
	return __atomic_load_n(&c->shut, __ATOMIC_SEQ_CST);
}

/* The system's text for error e, without its final period and line end,
 * and the error's number, into out (size bytes).  Returns out. */
static const char *
error_text(DWORD e, char *out, size_t size)
{
	char  text[200];
	DWORD n;

	n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
	    FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
	    MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), text, sizeof(text),
	    NULL);
	while (n > 0 && strchr("\r\n. ", text[n - 1]) != NULL)
		text[--n] = '\0';
	if (n == 0)
		snprintf(out, size, "error %lu", (unsigned long)e);
	else
		snprintf(out, size, "%s (error %lu)", text, (unsigned long)e);
	return out;
}

/* Why opening a pipe failed with e, into out (size bytes), in words for
 * the person who runs the client.  Returns out. */
static const char *
open_reason(DWORD e, char *out, size_t size)
{
	if (e == ERROR_FILE_NOT_FOUND)
		snprintf(out, size, "no such pipe (error %lu)",
		    (unsigned long)e);
	else if (e == ERROR_PIPE_BUSY || e == ERROR_SEM_TIMEOUT)
		snprintf(out, size, "every instance of the pipe stayed busy "
		    "for %g s (error %lu)", LBW_ANSWER_WAIT_S,
		    (unsigned long)e);
	else
		error_text(e, out, size);
	return out;
}

/* Whether e, the end of an I/O on the pipe, means the daemon closed it. */
static int
is_closed(DWORD e)
{
	return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED ||
	    e == ERROR_NO_DATA;
}

/*
 * Waits for the I/O ov (started on c's pipe h, ov->hEvent its event)
 * until the monotonic time until (INFINITY: no limit), or until
 * lbw_shutdown cancels it.  1 when it completed, with *n the bytes it
 * moved; 0 when the time came first (it was cancelled, having moved
 * nothing); -1 with *e the error (ERROR_OPERATION_ABORTED: shut down).
 * The I/O is over in every case: ov may be reused or go.
 */
static int
io_wait(struct lbw_conn *c, HANDLE h, OVERLAPPED *ov, double until,
    DWORD *n, DWORD *e)
{
	double left;
	DWORD  ms, w;
	int    late = 0;

	/* A shutdown before the I/O started cancelled nothing: it is
	 * cancelled here.  One after this load cancels it itself
	 * (lbw_shutdown sets c->shut before it cancels). */
	if (conn_shut(c))
		CancelIoEx(h, ov);
	for (;;) {
		ms = INFINITE;
		if (!isinf(until)) {
			if ((left = until - lockfs_now()) <= 0) {
				late = 1;
				CancelIoEx(h, ov);
				break;
			}
			ms = left > 3600 ? 3600 * 1000 : (DWORD)(left * 1000) + 1;
		}
		w = WaitForSingleObject(ov->hEvent, ms);
		if (w == WAIT_OBJECT_0)
			break;
		if (w != WAIT_TIMEOUT) {
			CancelIoEx(h, ov);
			break;
		}
	}
	*n = 0;
	if (GetOverlappedResult(h, ov, n, TRUE))
		return 1;
	*e = GetLastError();
	if (*e == ERROR_OPERATION_ABORTED && late && !conn_shut(c))
		return 0;
	return -1;
}

/* lbw_socket_path: see wire.h. */
const char *
lbw_socket_path(char *out, size_t size)
{
	const char *env = getenv("LOCKBROKER_SOCKET");

	snprintf(out, size, "%s", env != NULL && *env != '\0' ? env :
	    LBP_SYSTEM_PIPE);
	return out;
}

/* Whether path is a local pipe's name: \\.\pipe\ and a name after it. */
static int
is_pipe_name(const char *path)
{
	size_t n = strlen(PIPE_PREFIX);

	return strlen(path) > n && strlen(path) <= PIPE_NAME_MAX &&
	    strncmp(path, PIPE_PREFIX, 4) == 0 &&
	    _strnicmp(path + 4, PIPE_PREFIX + 4, n - 4) == 0;
}

/* Whether the server of pipe h may be trusted as a daemon: the pipe's
 * owner is the system, the administrators or this process's user (a
 * user who made the pipe's name while no daemon ran could otherwise
 * answer "granted" to locks that exist nowhere); a pipe with no owner
 * (wine's, made without a descriptor: every Windows object has one) is
 * taken.  1, or 0 with why (size bytes) filled. */
static int
server_trusted(HANDLE h, const char *path, char *why, size_t size)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID                 owner = NULL;
	DWORD                err;
	int                  r = 0;

	if ((err = GetSecurityInfo(h, SE_KERNEL_OBJECT,
	    OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL, &sd)) !=
	    ERROR_SUCCESS)
		snprintf(why, size, "no lockbroker daemon answers on %s: its "
		    "owner cannot be read (error %lu): not used", path,
		    (unsigned long)err);
	else if (!(r = owner == NULL || lockfs_sid_is_trusted(owner)))
		snprintf(why, size, "no lockbroker daemon answers on %s: the "
		    "pipe is owned by another user than the system, the "
		    "administrators or this one: not used", path);
	if (sd != NULL)
		LocalFree(sd);
	return r;
}

/* lbw_open: see wire.h. */
int
lbw_open(struct lbw_conn *c, const char *path,
    void (*on_socket)(int fd, void *arg), void *arg, char *why, size_t size)
{
	wchar_t name[PIPE_NAME_MAX + 1];
	HANDLE  h = INVALID_HANDLE_VALUE;
	double  until = lockfs_now() + LBW_ANSWER_WAIT_S, left;
	char    reason[256];
	DWORD   e = 0;
	int     r = -1;

	c->fd = -1;
	c->shut = 0;
	c->len = 0;
	snprintf(c->where, sizeof(c->where), "%s", path);
	if (!is_pipe_name(path)) {
		snprintf(why, size, "no lockbroker daemon answers on %s: not "
		    "the name of a local named pipe (%sNAME)", path,
		    PIPE_PREFIX);
		goto out;
	}
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1,
	    name, PIPE_NAME_MAX + 1) == 0) {
		snprintf(why, size, "no lockbroker daemon answers on %s: the "
		    "name is not UTF-8", path);
		goto out;
	}
	for (;;) {
		/* Reading and writing data only: GENERIC_WRITE holds
		 * FILE_APPEND_DATA, which on a pipe is the right to make
		 * instances of it, which the daemon's pipe grants its owner
		 * alone (daemon/listen_win32.c): asked by another user, the
		 * open would be refused.  At the identification level: the
		 * server learns who connects and cannot act as this
		 * process, whoever made the pipe's name (a user may make it
		 * while no daemon runs); the daemon acts on lock files with
		 * this process's own token, which it opens itself
		 * (daemon/os_users_win32.c). */
		h = CreateFileW(name, GENERIC_READ | FILE_WRITE_DATA, 0, NULL,
		    OPEN_EXISTING, FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
		    SECURITY_IDENTIFICATION, NULL);
		if (h != INVALID_HANDLE_VALUE)
			break;
		if ((e = GetLastError()) != ERROR_PIPE_BUSY ||
		    (left = until - lockfs_now()) <= 0)
			goto fail;
		/* Every instance is taken: wait for one to be free, then
		 * race the other waiters for it. */
		if (!WaitNamedPipeW(name, (DWORD)(left * 1000) + 1) &&
		    (e = GetLastError()) != ERROR_SEM_TIMEOUT)
			goto fail;
	}
	if (!server_trusted(h, path, why, size)) {
		CloseHandle(h);
		goto out;
	}
	if ((c->fd = _open_osfhandle((intptr_t)h, _O_RDWR | _O_BINARY |
	    _O_NOINHERIT)) == -1) {
		CloseHandle(h);
		snprintf(why, size, "no lockbroker daemon answers on %s: no C "
		    "runtime descriptor for the pipe: %s", path,
		    strerror(errno));
		goto out;
	}
	if (on_socket != NULL)
		on_socket(c->fd, arg);
	r = 0;
	goto out;
fail:
	snprintf(why, size, "no lockbroker daemon answers on %s: %s", path,
	    open_reason(e, reason, sizeof(reason)));
out:
	return r;
}

/* lbw_send: see wire.h.  Waits for each write as long as it takes (a
 * daemon that reads nothing blocks it, as on Unix), or until
 * lbw_shutdown. */
int
lbw_send(struct lbw_conn *c, const char *buf, size_t len)
{
	OVERLAPPED ov;
	HANDLE     h, ev = NULL;
	DWORD      n, e = 0, chunk;
	int        r = -1;

	if (c->fd == -1 || conn_shut(c)) {
		errno = EPIPE;
		goto out;
	}
	h = conn_handle(c);
	if ((ev = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	while (len > 0) {
		chunk = len > 65536 ? 65536 : (DWORD)len;
		memset(&ov, 0, sizeof(ov));
		ov.hEvent = ev;
		if ((!WriteFile(h, buf, chunk, NULL, &ov) &&
		    (e = GetLastError()) != ERROR_IO_PENDING) ||
		    io_wait(c, h, &ov, INFINITY, &n, &e) != 1) {
			errno = is_closed(e) || e == ERROR_OPERATION_ABORTED ?
			    EPIPE : EIO;
			goto out;
		}
		buf += n;
		len -= n;
	}
	r = 0;
out:
	if (ev != NULL)
		CloseHandle(ev);
	return r;
}

/* lbw_fill: see wire.h. */
long
lbw_fill(struct lbw_conn *c, double until, char *why, size_t size)
{
	OVERLAPPED ov;
	HANDLE     h, ev = NULL;
	DWORD      n, e = 0;
	char       reason[256];
	long       r = -1;
	int        got;

	if (c->len == sizeof(c->buf)) {
		snprintf(why, size, "a line longer than %d bytes",
		    LBP_LINE_MAX);
		goto out;
	}
	if (c->fd == -1 || conn_shut(c)) {
		snprintf(why, size, c->fd == -1 ? "not connected" :
		    "the connection was shut down");
		goto out;
	}
	h = conn_handle(c);
	if ((ev = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
		snprintf(why, size, "CreateEvent: %s",
		    error_text(GetLastError(), reason, sizeof(reason)));
		goto out;
	}
	for (;;) {
		if (!isinf(until) && until - lockfs_now() <= 0) {
			r = 0;
			goto out;
		}
		memset(&ov, 0, sizeof(ov));
		ov.hEvent = ev;
		if (!ReadFile(h, c->buf + c->len,
		    (DWORD)(sizeof(c->buf) - c->len), NULL, &ov) &&
		    (e = GetLastError()) != ERROR_IO_PENDING)
			break;
		if ((got = io_wait(c, h, &ov, until, &n, &e)) == 0) {
			r = 0;
			goto out;
		}
		if (got == -1)
			break;
		if (n > 0) {
			c->len += n;
			r = (long)n;
			goto out;
		}
	}
	if (is_closed(e))
		snprintf(why, size, "the daemon closed the connection");
	else if (e == ERROR_OPERATION_ABORTED && conn_shut(c))
		snprintf(why, size, "the connection was shut down");
	else
		snprintf(why, size, "read: %s",
		    error_text(e, reason, sizeof(reason)));
out:
	if (ev != NULL)
		CloseHandle(ev);
	return r;
}

/* lbw_shutdown: see wire.h.  Every I/O on the pipe, of any thread, is
 * cancelled; one not started yet sees c->shut (see io_wait). */
void
lbw_shutdown(struct lbw_conn *c)
{
	int fd = c->fd;

	if (fd == -1)
		return;
	__atomic_store_n(&c->shut, 1, __ATOMIC_SEQ_CST);
	CancelIoEx((HANDLE)_get_osfhandle(fd), NULL);
}

/* lbw_close: see wire.h.  Keeps the thread's last error too. */
void
lbw_close(struct lbw_conn *c)
{
	DWORD saved_error = GetLastError();
	int   saved = errno, fd = c->fd;

	c->fd = -1;
	c->len = 0;
	if (fd != -1)
		_close(fd);
	SetLastError(saved_error);
	errno = saved;
}
