/*
 * os_win32.c: the daemon's OS layer (os.h) for Windows
 * (docs/WINDOWS.md, "The daemon on Windows").  What it answers truly:
 * the peer's process (GetNamedPipeClientProcessId on the accepted pipe),
 * the daemon's own files (the C runtime's descriptors of their handles,
 * as lockfs's fs_win32.c keeps them), the time in UTC.
 *
 * Users: a client's user is its token's SID and the daemon acts as its
 * token (os_users_win32.c); lbd_os_peer_ids answers placeholders (0)
 * for the uid and gid, which the daemon replaces by the SID's number
 * (creds.c), and the numeric switches refuse (ENOSYS): no step runs
 * with the daemon's rights for a client whose token it lacks.
 *
 * Processes that exit: the process's handle waited for by the thread
 * pool, whose callback wakes the loop (lbd_os_proc_watch).  Signals:
 * the console's events as libuv gives them (lbd_os_signals_take).
 */
#include <winsock2.h>
#include <windows.h>
#include <errno.h>
#include <fcntl.h>
#include <direct.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"
#include "os.h"
#include "private_win32.h"

/* lbd_os_privileges_drop: see os.h.  Nothing to drop: no supplementary
 * groups or capabilities to leave. */
int
lbd_os_privileges_drop(char *why, size_t size)
{
	(void)why;
	(void)size;
	return 0;
}

/* lbd_os_peer_ids: see os.h.  The client's process by
 * GetNamedPipeClientProcessId on the accepted pipe (fd, its handle); its
 * uid and gid placeholders (lbd_os_euid, lbd_os_egid), for
 * lbd_os_peer_user names the user.  EINVAL when the pipe names no
 * client process. */
int
lbd_os_peer_ids(uv_os_fd_t fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	ULONG id = 0;

	if (!GetNamedPipeClientProcessId(fd, &id) || id == 0) {
		errno = EINVAL;
		return -1;
	}
	*pid = (pid_t)id;
	*uid = lbd_os_euid();
	*gid = lbd_os_egid();
	return 0;
}

/* lbd_os_peer_groups: see os.h.  ENOSYS: the OS cannot tell (the caller
 * asks lbd_os_user_groups). */
int
lbd_os_peer_groups(uv_os_fd_t fd, size_t max, gid_t **groups)
{
	(void)fd;
	(void)max;
	*groups = NULL;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_user_groups: see os.h. 0: no user-database entry (no numbered
 * groups on Windows). */
int
lbd_os_user_groups(uid_t uid, gid_t gid, size_t max, gid_t **groups)
{
	(void)uid;
	(void)gid;
	(void)max;
	*groups = NULL;
	return 0;
}

/* lbd_os_user_gid: see os.h. */
int
lbd_os_user_gid(uid_t uid, gid_t *gid)
{
	(void)uid;
	*gid = 0;
	return 0;
}

/* lbd_os_fs_groups_set: see os.h.  Nothing: no groups to set (acting as
 * a client is to be impersonation); 0. */
int
lbd_os_fs_groups_set(size_t n, const gid_t *groups)
{
	(void)n;
	(void)groups;
	return 0;
}

/* lbd_os_fs_ids_set: see os.h.  ENOSYS, always: a Windows user is acted
 * as by its token (os_users_win32.c), never by a number; credentials
 * without a token are refused here rather than served with the
 * daemon's rights. */
int
lbd_os_fs_ids_set(uid_t uid, gid_t gid)
{
	(void)uid;
	(void)gid;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_fs_ids_restore: see os.h.  Nothing was taken on: nothing to give
 * back. */
void
lbd_os_fs_ids_restore(uid_t uid, gid_t gid)
{
	(void)uid;
	(void)gid;
}

/* lbd_os_fd_path: see os.h.  ENOSYS: no process entries in the file
 * system (the caller pins nothing). */
int
lbd_os_fd_path(int fd, char *out, size_t size)
{
	(void)fd;
	(void)out;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_euid: see os.h. 0: counts as the system's (users are not numbered
 * yet). */
uid_t
lbd_os_euid(void)
{
	return 0;
}

/* lbd_os_egid: see os.h. */
gid_t
lbd_os_egid(void)
{
	return 0;
}

/* lbd_os_gmtime: see os.h.  gmtime_s: the C runtime's thread-safe gmtime. */
void
lbd_os_gmtime(time_t t, struct tm *tm)
{
	gmtime_s(tm, &t);
}

/* lbd_os_umask: see os.h.  No modes: nothing set, 0. */
mode_t
lbd_os_umask(mode_t mask)
{
	(void)mask;
	return 0;
}

/* lbd_os_sigpipe_ignore: see os.h.  No SIGPIPE: a write to a closed pipe
 * fails with an error. */
void
lbd_os_sigpipe_ignore(void)
{
}

/* Whether mode is private: nothing for the group and others (0700,
 * 0600), which os.h maps to the private DACL (private_win32.h). */
static int
mode_private(mode_t mode)
{
	return (mode & 077) == 0;
}

/* errno for a Win32 error of a step on the daemon's own files. */
static int
errno_of(DWORD err)
{
	switch (err) {
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS:
		return EEXIST;
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return ENOENT;
	case ERROR_ACCESS_DENIED:
		return EACCES;
	case ERROR_NOT_ENOUGH_MEMORY:
		return ENOMEM;
	default:
		return EIO;
	}
}

/* lbd_os_mkdir: see os.h.  CreateDirectoryA, with the private DACL for
 * a private mode; EEXIST for a directory that is there, a drive's root
 * ("C:") among them. */
int
lbd_os_mkdir(const char *dir, mode_t mode)
{
	SECURITY_ATTRIBUTES sa;
	int                 r = -1, saved;

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	if (GetFileAttributesA(dir) != INVALID_FILE_ATTRIBUTES) {
		errno = EEXIST;
		goto out;
	}
	if (mode_private(mode) && (sa.lpSecurityDescriptor =
	    lbd_private_sd(LBD_PRIVATE_DIR)) == NULL)
		goto out;
	if (!CreateDirectoryA(dir, &sa)) {
		errno = errno_of(GetLastError());
		goto out;
	}
	r = 0;
out:
	saved = errno;
	if (sa.lpSecurityDescriptor != NULL)
		LocalFree(sa.lpSecurityDescriptor);
	errno = saved;
	return r;
}

/* Gives what h is open as (with WRITE_DAC, for a private mode) the
 * DACL mode maps to (os.h: nothing for a mode that is not private),
 * then closes h; h INVALID_HANDLE_VALUE: its open failed (the error
 * GetLastError's).  0, or -1 with errno. */
static int
mode_set_closing(HANDLE h, mode_t mode)
{
	int r = -1, saved;

	if (h == INVALID_HANDLE_VALUE) {
		errno = errno_of(GetLastError());
		goto out;
	}
	r = mode_private(mode) ? lbd_private_set(h) : 0;
out:
	saved = errno;
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
	errno = saved;
	return r;
}

/* lbd_os_chmod: see os.h.  The file opened (to change its DACL for a
 * private mode; a directory too), a link at the name (a reparse point)
 * opened as itself, never followed: the daemon's own files are never
 * links, and what one points at is not the daemon's to change. */
int
lbd_os_chmod(const char *file, mode_t mode)
{
	return mode_set_closing(CreateFileA(file, mode_private(mode) ?
	    READ_CONTROL | WRITE_DAC : FILE_READ_ATTRIBUTES, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
	    FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL),
	    mode);
}

/* lbd_os_open_own: see os.h.  CreateFileA, never inherited, shared for
 * reading, writing and deleting (as sqlite's own opens are), a new file
 * made with the private DACL (0600); a reparse point at the name is
 * opened as itself, never followed; the handle given a C runtime
 * descriptor (_open_osfhandle), as lockfs's are. */
int
lbd_os_open_own(const char *file, int how)
{
	SECURITY_ATTRIBUTES sa;
	HANDLE              h = INVALID_HANDLE_VALUE;
	int                 fd = -1, saved;

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	if ((sa.lpSecurityDescriptor = lbd_private_sd(LBD_PRIVATE_FILE)) ==
	    NULL)
		goto out;
	h = CreateFileA(file, GENERIC_READ | GENERIC_WRITE,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
	    how == LBD_OS_REWRITE ? CREATE_ALWAYS : OPEN_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		errno = errno_of(GetLastError());
		goto out;
	}
	if ((fd = _open_osfhandle((intptr_t)h, _O_BINARY)) == -1) {
		errno = EMFILE;
		goto out;
	}
	h = INVALID_HANDLE_VALUE;       /* the descriptor's now */
out:
	saved = errno;
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
	if (sa.lpSecurityDescriptor != NULL)
		LocalFree(sa.lpSecurityDescriptor);
	errno = saved;
	return fd;
}

/* lbd_os_file_size: see os.h.  GetFileSizeEx. */
int
lbd_os_file_size(int fd, off_t *size)
{
	LARGE_INTEGER n;

	if (!GetFileSizeEx((HANDLE)_get_osfhandle(fd), &n)) {
		errno = EBADF;
		return -1;
	}
	*size = (off_t)n.QuadPart;
	return 0;
}

/* lbd_os_fchmod: see os.h.  The file's handle opened again with
 * WRITE_DAC (ReOpenFile: lbd_os_open_own's handles may read and write
 * only). */
int
lbd_os_fchmod(int fd, mode_t mode)
{
	return mode_set_closing(ReOpenFile((HANDLE)_get_osfhandle(fd),
	    READ_CONTROL | WRITE_DAC, FILE_SHARE_READ | FILE_SHARE_WRITE |
	    FILE_SHARE_DELETE, 0), mode);
}

/* lbd_os_truncate: see os.h.  _chsize_s. */
int
lbd_os_truncate(int fd, off_t size)
{
	int e;

	if ((e = _chsize_s(fd, size)) != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

/* The position of the file open as fd, into *pos (a read or write at
 * an offset on a synchronous handle moves it: lbd_os_read_at and
 * lbd_os_write_at put it back).  0, or -1 with errno EBADF. */
static int
position_get(int fd, LARGE_INTEGER *pos)
{
	LARGE_INTEGER zero;

	zero.QuadPart = 0;
	if (!SetFilePointerEx((HANDLE)_get_osfhandle(fd), zero, pos,
	    FILE_CURRENT)) {
		errno = EBADF;
		return -1;
	}
	return 0;
}

/* Puts the position of the file open as fd back at pos. */
static void
position_set(int fd, LARGE_INTEGER pos)
{
	SetFilePointerEx((HANDLE)_get_osfhandle(fd), pos, NULL, FILE_BEGIN);
}

/* lbd_os_read_at: see os.h.  ReadFile at an offset (OVERLAPPED's, on a
 * handle opened for synchronous steps: the call waits), the position
 * put back. */
ssize_t
lbd_os_read_at(int fd, void *buf, size_t size, off_t at)
{
	OVERLAPPED    o;
	LARGE_INTEGER pos;
	DWORD         got = 0, err;
	BOOL          ok;

	memset(&o, 0, sizeof(o));
	o.Offset = (DWORD)((unsigned long long)at & 0xffffffffu);
	o.OffsetHigh = (DWORD)((unsigned long long)at >> 32);
	if (size > 0x7fffffff)
		size = 0x7fffffff;
	if (position_get(fd, &pos) != 0)
		return -1;
	ok = ReadFile((HANDLE)_get_osfhandle(fd), buf, (DWORD)size, &got, &o);
	err = GetLastError();
	position_set(fd, pos);
	if (!ok) {
		if (err == ERROR_HANDLE_EOF)
			return 0;
		errno = EIO;
		return -1;
	}
	return (ssize_t)got;
}

/* lbd_os_write_at: see os.h.  WriteFile at an offset (see
 * lbd_os_read_at). */
ssize_t
lbd_os_write_at(int fd, const void *buf, size_t size, off_t at)
{
	OVERLAPPED    o;
	LARGE_INTEGER pos;
	DWORD         put = 0, err;
	BOOL          ok;

	memset(&o, 0, sizeof(o));
	o.Offset = (DWORD)((unsigned long long)at & 0xffffffffu);
	o.OffsetHigh = (DWORD)((unsigned long long)at >> 32);
	if (size > 0x7fffffff)
		size = 0x7fffffff;
	if (position_get(fd, &pos) != 0)
		return -1;
	ok = WriteFile((HANDLE)_get_osfhandle(fd), buf, (DWORD)size, &put, &o);
	err = GetLastError();
	position_set(fd, pos);
	if (!ok) {
		errno = err == ERROR_DISK_FULL ? ENOSPC : EIO;
		return -1;
	}
	return (ssize_t)put;
}

/* lbd_os_sync: see os.h.  FlushFileBuffers. */
int
lbd_os_sync(int fd)
{
	if (!FlushFileBuffers((HANDLE)_get_osfhandle(fd))) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* lbd_os_sync_dir: see os.h.  Nothing: NTFS journals its names. */
void
lbd_os_sync_dir(const char *dir)
{
	(void)dir;
}

/* A stream over lockfs's (fs.h), which reads a directory through a
 * descriptor of its own, and the descriptor taken. */
struct lbd_os_dir {
	struct lockfs_fs_dir *stream;
	int                   fd;
};

/* lbd_os_dir_adopt: see os.h.  lockfs_fs_dir_open_fd. */
struct lbd_os_dir *
lbd_os_dir_adopt(int fd)
{
	struct lbd_os_dir *d;

	if ((d = malloc(sizeof(*d))) == NULL)
		return NULL;
	if ((d->stream = lockfs_fs_dir_open_fd(fd)) == NULL) {
		free(d);
		return NULL;
	}
	d->fd = fd;
	return d;
}

/* lbd_os_dir_next: see os.h.  lockfs_fs_dir_next. */
const char *
lbd_os_dir_next(struct lbd_os_dir *d)
{
	struct lockfs_fs_entry e;

	return lockfs_fs_dir_next(d->stream, &e) == 1 ? e.name : NULL;
}

/* lbd_os_dir_close: see os.h. */
void
lbd_os_dir_close(struct lbd_os_dir *d)
{
	int saved = errno;

	if (d != NULL) {
		lockfs_fs_dir_close(d->stream);
		lockfs_fs_close(d->fd);
		free(d);
	}
	errno = saved;
}

/* lbd_os_events_waiting: see os.h. 1: no backend descriptor to look at;
 * the caller yields at once. */
int
lbd_os_events_waiting(int fd)
{
	(void)fd;
	return 1;
}

/* lbd_os_fds_limit: see os.h.  0: no descriptor limit to tell. */
int
lbd_os_fds_limit(unsigned long long need, unsigned long long *limit)
{
	(void)need;
	(void)limit;
	return 0;
}

/* lbd_os_fds_open: see os.h.  -1: cannot tell. */
int
lbd_os_fds_open(void)
{
	return -1;
}

/* lbd_os_fs_watches_max: see os.h.  0: no limit told. */
unsigned long
lbd_os_fs_watches_max(void)
{
	return 0;
}

/* lbd_os_path_in_own_proc: see os.h. 0: no process entries in the file
 * system. */
int
lbd_os_path_in_own_proc(const char *abs)
{
	(void)abs;
	return 0;
}

/* lbd_os_path_through_magic_link: see os.h. 0: cannot tell (no magic
 * links). */
int
lbd_os_path_through_magic_link(const char *file)
{
	(void)file;
	return 0;
}

/* lbd_os_path_is_relative: see os.h.  "C:\d", "C:/d", "\d", "/d" and
 * "\\server\share" are not; "C:d" (the drive's own working directory)
 * counts as relative. */
int
lbd_os_path_is_relative(const char *path)
{
	if (path[0] == '/' || path[0] == '\\')
		return 0;
	if (((path[0] >= 'A' && path[0] <= 'Z') ||
	    (path[0] >= 'a' && path[0] <= 'z')) && path[1] == ':' &&
	    (path[2] == '/' || path[2] == '\\'))
		return 0;
	return 1;
}

/*
 * A process's exit watched: its handle (SYNCHRONIZE and the right to
 * read its times), a wait of the thread pool on it
 * (RegisterWaitForSingleObject, once), and the async handle whose send,
 * from the pool's thread, has the loop call exited.
 *
 *   watching --the handle is signalled: the pool's callback sends the
 *      |       async--> sent --the loop's async callback--> exited(arg)
 *      | lbd_os_proc_unwatch (either state): the wait unregistered,
 *      v       waiting for a callback running (UnregisterWaitEx)
 *   closing --the async handle closed--> freed
 */
struct lbd_os_proc_watch {
	uv_async_t async;
	HANDLE     proc;
	HANDLE     wait;
	void     (*exited)(void *arg);
	void      *arg;
};

/* The thread pool's callback: the process has exited; wakes the loop
 * (the only libuv call made from another thread). */
static void CALLBACK
proc_signalled(void *arg, BOOLEAN timed_out)
{
	struct lbd_os_proc_watch *w = arg;

	(void)timed_out;
	uv_async_send(&w->async);
}

/* In the loop: the process has exited. */
static void
proc_exited(uv_async_t *a)
{
	struct lbd_os_proc_watch *w = a->data;

	w->exited(w->arg);
}

/* Frees a watch once libuv is done with its async handle. */
static void
proc_watch_free(uv_handle_t *h)
{
	free(h->data);
}

/* lbd_os_proc_watch: see os.h.  OpenProcess, then the creation time
 * compared (the handle names one process: the pid's reuse after that
 * cannot mislead it); an exited process's handle is signalled already,
 * so that the callback comes at once. */
struct lbd_os_proc_watch *
lbd_os_proc_watch(uv_loop_t *loop, pid_t pid, unsigned long long start,
    void (*exited)(void *arg), void *arg)
{
	struct lbd_os_proc_watch *w = NULL, *r = NULL;
	FILETIME                  created, gone, kernel, user;
	HANDLE                    h;
	int                       async = 0, saved;

	h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
	    FALSE, (DWORD)pid);
	if (h == NULL) {
		errno = GetLastError() == ERROR_INVALID_PARAMETER ? ESRCH :
		    GetLastError() == ERROR_ACCESS_DENIED ? EACCES : EIO;
		goto out;
	}
	if (!GetProcessTimes(h, &created, &gone, &kernel, &user) ||
	    ((unsigned long long)created.dwHighDateTime << 32 |
	    created.dwLowDateTime) != start) {
		errno = ESRCH;
		goto out;
	}
	if ((w = malloc(sizeof(*w))) == NULL)
		goto out;
	if (uv_async_init(loop, &w->async, proc_exited) != 0) {
		errno = ENOMEM;
		goto out;
	}
	async = 1;
	w->async.data = w;
	w->proc = h;
	w->exited = exited;
	w->arg = arg;
	if (!RegisterWaitForSingleObject(&w->wait, h, proc_signalled, w,
	    INFINITE, WT_EXECUTEONLYONCE)) {
		errno = ENOMEM;
		goto out;
	}
	r = w;
	w = NULL;
	h = NULL;
	async = 0;
out:
	saved = errno;
	if (async)
		uv_close((uv_handle_t *)&w->async, proc_watch_free);
	else
		free(w);
	if (h != NULL)
		CloseHandle(h);
	errno = saved;
	return r;
}

/* lbd_os_proc_unwatch: see os.h.  The wait unregistered, waiting for a
 * callback of the pool's that runs (it sends the async handle: nothing
 * is sent once this returns), the process's handle closed, the async
 * handle closed (the memory freed then). */
void
lbd_os_proc_unwatch(struct lbd_os_proc_watch *w)
{
	int saved = errno;

	if (w != NULL) {
		UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
		CloseHandle(w->proc);
		uv_close((uv_handle_t *)&w->async, proc_watch_free);
	}
	errno = saved;
}

/* lbd_os_signals_take: see os.h.  libuv's console events: Ctrl-C
 * (SIGINT), Ctrl-Break (SIGBREAK), the console's close (SIGHUP: libuv's
 * handler then holds the process for the loop to stop, until Windows
 * ends it some seconds later).  Ctrl-C is taken even where the process
 * was started ignoring it (in a process group of its own, which Windows
 * starts so). */
const struct lbd_os_signal *
lbd_os_signals_take(size_t *n)
{
	static const struct lbd_os_signal signals[] = {
		{ SIGINT,   LBD_OS_SIGNAL_STOP },
		{ SIGBREAK, LBD_OS_SIGNAL_STOP },
		{ SIGHUP,   LBD_OS_SIGNAL_STOP },
	};

	SetConsoleCtrlHandler(NULL, FALSE);
	*n = sizeof(signals) / sizeof(signals[0]);
	return signals;
}
