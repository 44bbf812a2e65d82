/*
 * os_win32.c: lockfs's OS layer (os.h) for Windows: process identity from
 * the process and thread ids, a process's creation time (GetProcessTimes)
 * and whether it has exited (WaitForSingleObject on it, not OpenProcess
 * alone: wine opens a process that exited a moment ago), the host's DNS
 * name as Python's socket.gethostname() gives it there, and renames that
 * replace nothing (MoveFileExW without MOVEFILE_REPLACE_EXISTING).  Paths
 * are UTF-8, turned into the wide names Windows takes.
 *
 * What Windows does not offer in the shape of the contract answers as the
 * contract allows for an OS that cannot: no boot id (""; the creation
 * time still tells a reused pid), no numeric users (every uid is 0, as the
 * C runtime's stat reports for every file; the access check says ENOSYS),
 * no reopening by descriptor (ENOENT), no file made whole (EOPNOTSUPP),
 * and so far no directory reading through a descriptor nor directory lock
 * (ENOSYS: LockFileEx takes no directory handle).
 */
#include <windows.h>

#include <errno.h>
#include <io.h>
#include <stdio.h>
#include <string.h>

#include "os.h"

/* errno for the Win32 error err, for the failures these calls meet. */
static int
errno_of(DWORD err)
{
	switch (err) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_NAME:
		return ENOENT;
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS:
		return EEXIST;
	case ERROR_DIR_NOT_EMPTY:
		return ENOTEMPTY;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		return EACCES;
	case ERROR_NOT_SAME_DEVICE:
		return EXDEV;
	case ERROR_FILENAME_EXCED_RANGE:
		return ENAMETOOLONG;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return ENOMEM;
	default:
		return EIO;
	}
}

/* The wide form of UTF-8 path into out (size wide characters): 0, or -1
 * with errno (ENAMETOOLONG, or EINVAL when it is not UTF-8). */
static int
wide_path(const char *path, wchar_t *out, int size)
{
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, out,
	    size) == 0) {
		errno = GetLastError() == ERROR_INSUFFICIENT_BUFFER ?
		    ENAMETOOLONG : EINVAL;
		return -1;
	}
	return 0;
}

/*
 * open_live: a handle on process pid that tells whether it has exited,
 * or NULL with errno: ESRCH when there is no such process, or it has
 * exited (wine still opens a process for a moment after its exit; so
 * would Windows while someone holds a handle on it), EACCES when it
 * exists but may not be looked at, EIO otherwise.  The caller closes it.
 */
static HANDLE
open_live(pid_t pid)
{
	HANDLE h;
	DWORD  err;

	if (pid <= 0) {
		errno = ESRCH;
		return NULL;
	}
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE,
	    FALSE, (DWORD)pid);
	if (h == NULL) {
		err = GetLastError();
		errno = err == ERROR_INVALID_PARAMETER ? ESRCH :
		    err == ERROR_ACCESS_DENIED ? EACCES : EIO;
		return NULL;
	}
	if (WaitForSingleObject(h, 0) != WAIT_TIMEOUT) {
		CloseHandle(h);
		errno = ESRCH;  /* signalled: it has exited */
		return NULL;
	}
	return h;
}

/* Process identity. */

/* lockfs_os_pid: see os.h. */
pid_t
lockfs_os_pid(void)
{
	return (pid_t)GetCurrentProcessId();
}

/* lockfs_gettid: see os.h.  Thread ids are unique among the live threads
 * of the host, as on Linux (but the main thread's is not the pid). */
pid_t
lockfs_gettid(void)
{
	return (pid_t)GetCurrentThreadId();
}

/* lockfs_os_start_time: see os.h.  The creation time, in 100 ns since
 * 1601 (never 0), of a process that has not exited. */
int
lockfs_os_start_time(pid_t pid, unsigned long long *start)
{
	FILETIME created, exited, kernel, user;
	HANDLE   h;
	int      r = -1;

	if ((h = open_live(pid)) == NULL)
		goto out;
	if (!GetProcessTimes(h, &created, &exited, &kernel, &user)) {
		errno = EIO;
		goto out;
	}
	*start = (unsigned long long)created.dwHighDateTime << 32 |
	    created.dwLowDateTime;
	if (*start == 0)
		errno = EIO;
	else
		r = 0;
out:
	if (h != NULL)
		CloseHandle(h);
	return r;
}

/* lockfs_os_process_uid: see os.h.  Windows has no numeric users: 0 for
 * a process that exists (the uid files are made with, below). */
int
lockfs_os_process_uid(pid_t pid, uid_t *uid)
{
	HANDLE h;

	if ((h = open_live(pid)) == NULL)
		return -1;
	CloseHandle(h);
	*uid = 0;
	return 0;
}

/* lockfs_os_pid_liveness: see os.h.  A process that may not be looked at
 * (another user's) exists. */
lb_liveness
lockfs_os_pid_liveness(pid_t pid)
{
	HANDLE h;

	if (pid <= 0)
		return LB_HOLDER_UNKNOWN;
	if ((h = open_live(pid)) != NULL) {
		CloseHandle(h);
		return LB_HOLDER_ALIVE;
	}
	return errno == ESRCH ? LB_HOLDER_DEAD :
	    errno == EACCES ? LB_HOLDER_ALIVE : LB_HOLDER_UNKNOWN;
}

/* lockfs_os_boot_id: see os.h.  Windows names no boot: "". */
void
lockfs_os_boot_id(char *out, size_t size)
{
	if (size > 0)
		out[0] = '\0';
}

/* lockfs_os_hostname: see os.h.  The physical DNS host name, which
 * Python's socket.gethostname() returns on Windows, in UTF-8, cut to
 * what fits as gethostname(2) cuts it. */
void
lockfs_os_hostname(char *out, size_t size)
{
	wchar_t name[256];
	char    utf8[4 * 256];
	DWORD   n = sizeof(name) / sizeof(name[0]);

	if (size == 0)
		return;
	if (!GetComputerNameExW(ComputerNamePhysicalDnsHostname, name, &n) ||
	    n == 0 || WideCharToMultiByte(CP_UTF8, 0, name, -1, utf8,
	    sizeof(utf8), NULL, NULL) == 0)
		snprintf(utf8, sizeof(utf8), "localhost");
	snprintf(out, size, "%s", utf8);
}

/* File-system credentials. */

/* lockfs_os_files_uid: see os.h.  No numeric users: 0. */
uid_t
lockfs_os_files_uid(void)
{
	return 0;
}

/* lockfs_os_files_creds: see os.h.  No numeric users or groups: 0 and 0,
 * with no supplementary groups. */
int
lockfs_os_files_creds(uid_t *uid, gid_t *gid, gid_t *groups, int max)
{
	(void)groups;
	(void)max;
	*uid = 0;
	*gid = 0;
	return 0;
}

/* lockfs_os_files_access: see os.h.  Not answered here: ENOSYS. */
int
lockfs_os_files_access(const char *file, int mode)
{
	(void)file;
	(void)mode;
	errno = ENOSYS;
	return -1;
}

/* Files. */

/* lockfs_os_reopen: see os.h.  Not offered: ENOENT (the caller opens by
 * name and checks). */
int
lockfs_os_reopen(int fd, int flags)
{
	(void)fd;
	(void)flags;
	errno = ENOENT;
	return -1;
}

/* lockfs_os_rename_noreplace: see os.h.  MoveFileExW without
 * MOVEFILE_REPLACE_EXISTING fails when to exists, file or directory. */
int
lockfs_os_rename_noreplace(const char *from, const char *to)
{
	wchar_t wfrom[MAX_PATH], wto[MAX_PATH];
	DWORD   err;

	if (wide_path(from, wfrom, MAX_PATH) == -1 ||
	    wide_path(to, wto, MAX_PATH) == -1)
		return -1;
	if (!MoveFileExW(wfrom, wto, 0)) {
		err = GetLastError();
		/* A directory in the way may answer "access denied": look. */
		errno = err == ERROR_ACCESS_DENIED &&
		    GetFileAttributesW(wto) != INVALID_FILE_ATTRIBUTES ?
		    EEXIST : errno_of(err);
		return -1;
	}
	return 0;
}

/* lockfs_os_create_whole: see os.h.  Not offered: EOPNOTSUPP (the caller
 * creates the file in place). */
int
lockfs_os_create_whole(const char *dir, const char *path, const void *data,
    size_t len, mode_t mode)
{
	(void)dir;
	(void)path;
	(void)data;
	(void)len;
	(void)mode;
	errno = EOPNOTSUPP;
	return -1;
}

/* lockfs_os_dir_start: see os.h. */
void
lockfs_os_dir_start(struct lockfs_os_dir *d, int fd, void *buf, size_t size)
{
	d->fd = fd;
	d->buf = buf != NULL ? buf : d->own;
	d->size = buf != NULL ? size : sizeof(d->own);
	d->pos = d->len = 0;
}

/* lockfs_os_dir_next: see os.h.  Not yet on Windows: ENOSYS. */
const char *
lockfs_os_dir_next(struct lockfs_os_dir *d, unsigned char *type)
{
	(void)d;
	(void)type;
	errno = ENOSYS;
	return NULL;
}

/* Directory locking. */

/* lockfs_dirlock_open: see os.h.  A handle on the directory (which
 * FILE_FLAG_BACKUP_SEMANTICS lets CreateFileW open), as a C runtime
 * descriptor. */
int
lockfs_dirlock_open(struct lockfs_dirlock *dl, const char *dir)
{
	wchar_t wdir[MAX_PATH];
	HANDLE  h;

	dl->fd = -1;
	if (wide_path(dir, wdir, MAX_PATH) == -1)
		return -1;
	h = CreateFileW(wdir, GENERIC_READ, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
	    FILE_FLAG_BACKUP_SEMANTICS, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		errno = errno_of(GetLastError());
		return -1;
	}
	if ((dl->fd = _open_osfhandle((intptr_t)h, 0)) == -1) {
		CloseHandle(h);
		errno = EMFILE;
		return -1;
	}
	return 0;
}

/* lockfs_dirlock_try: see os.h.  Not yet on Windows (LockFileEx refuses
 * a directory's handle): ENOSYS. */
int
lockfs_dirlock_try(struct lockfs_dirlock *dl)
{
	(void)dl;
	errno = ENOSYS;
	return -1;
}

/* lockfs_dirlock_close: see os.h. */
void
lockfs_dirlock_close(struct lockfs_dirlock *dl)
{
	int saved = errno;

	if (dl->fd != -1)
		_close(dl->fd);         /* closes the handle too */
	dl->fd = -1;
	errno = saved;
}
