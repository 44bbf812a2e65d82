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
 * no reopening by descriptor (ENOENT), no file made whole (EOPNOTSUPP).
 * A directory is read through its descriptor's handle
 * (GetFileInformationByHandleEx), and locked by a named event made after
 * its identity, not by LockFileEx, which takes no directory's handle
 * (the argument is above lockfs_dirlock_open).
 */
#include <windows.h>

#include <errno.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Whether c separates a Windows path's components. */
static int
is_sep(char c)
{
	return c == '/' || c == '\\';
}

/* Whether c is a drive's letter. */
static int
is_drive(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Whether the len bytes at name (one component) are a DOS device's name,
 * which Win32 opens as the device wherever the path puts it: CON, PRN,
 * AUX, NUL, COM1 to COM9, LPT1 to LPT9, CONIN$, CONOUT$, any case, also
 * followed by an extension or by spaces.
 */
static int
device_name(const char *name, size_t len)
{
	static const char *const dev[] = {
		"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
	};
	size_t stem = 0, i;

	while (stem < len && name[stem] != '.')
		stem++;
	while (stem > 0 && name[stem - 1] == ' ')
		stem--;
	for (i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
		if (strlen(dev[i]) == stem &&
		    _strnicmp(name, dev[i], stem) == 0)
			return 1;
	return stem == 4 && (_strnicmp(name, "COM", 3) == 0 ||
	    _strnicmp(name, "LPT", 3) == 0) && name[3] >= '1' &&
	    name[3] <= '9';
}

/* The length of the UNC root "//server/share" at the start of p (either
 * separator), or 0 when p does not start with one that names a file
 * beyond it. */
static size_t
unc_root(const char *p)
{
	size_t n = 2, server, share;

	if (!is_sep(p[0]) || !is_sep(p[1]))
		return 0;
	for (server = n; p[n] != '\0' && !is_sep(p[n]); n++)
		;
	if (n == server || p[n] == '\0')
		return 0;
	for (share = ++n; p[n] != '\0' && !is_sep(p[n]); n++)
		;
	if (n == share || p[n] == '\0' || p[n + 1] == '\0')
		return 0;
	return n;
}

/*
 * lockfs_os_path_join: see os.h.  What Win32 would open as something
 * else than a file at that path is refused first (a device's or the
 * native namespace's prefix, a stream's name after ':', a character
 * names cannot hold, a separator at the end: GetFullPathNameW would drop
 * or keep them where Python's lockfile would then make PATH.lock
 * somewhere else or nowhere); then GetFullPathNameW (what Python's
 * os.path.abspath calls: the drive's working directory for "C:f", the
 * current drive for "\d\f"), '\' turned into '/', and a device's name
 * (NUL, CON: GetFullPathNameW gives them as "\\.\NUL") refused.
 */
int
lockfs_os_path_join(const char *path, char *out, size_t size, size_t *root,
    const char **why)
{
	wchar_t     w[MAX_PATH * 4], full[MAX_PATH * 4];
	const char *c, *base;
	size_t      len = strlen(path), n;
	DWORD       got;
	int         r = -1;

	*why = NULL;
	*root = 0;
	errno = EINVAL;
	if ((is_sep(path[0]) && is_sep(path[1]) && (path[2] == '.' ||
	    path[2] == '?') && (is_sep(path[3]) || path[3] == '\0')) ||
	    strncmp(path, "\\??\\", 4) == 0) {
		*why = "a device's or the native namespace's path (\\\\.\\, "
		    "\\\\?\\ or \\??\\), not a file's";
		goto out;
	}
	if (len == 0 || is_sep(path[len - 1])) {
		*why = "it ends in a separator, naming no file";
		goto out;
	}
	for (c = path; *c != '\0'; c++) {
		if ((unsigned char)*c < 32 || strchr("<>\"|?*", *c) != NULL) {
			*why = "a character Windows names cannot hold "
			    "(<>\"|?* or a control character)";
			goto out;
		}
		if (*c == ':' && !(c == path + 1 && is_drive(path[0]))) {
			*why = "':' only after a drive's letter (a stream's "
			    "name is no lock's file)";
			goto out;
		}
	}
	if (is_sep(path[0]) && is_sep(path[1]) && unc_root(path) == 0) {
		*why = "a UNC path names a file as \\\\SERVER\\SHARE\\FILE";
		goto out;
	}
	if (wide_path(path, w, (int)(sizeof(w) / sizeof(w[0]))) == -1)
		goto out;
	got = GetFullPathNameW(w, sizeof(full) / sizeof(full[0]), full,
	    NULL);
	if (got == 0) {
		errno = errno_of(GetLastError());
		goto out;
	}
	if (got >= sizeof(full) / sizeof(full[0]) ||
	    WideCharToMultiByte(CP_UTF8, 0, full, -1, out, (int)size, NULL,
	    NULL) == 0) {
		errno = ENAMETOOLONG;
		goto out;
	}
	for (n = 0; out[n] != '\0'; n++)
		if (out[n] == '\\')
			out[n] = '/';
	base = strrchr(out, '/');
	base = base == NULL ? out : base + 1;
	errno = EINVAL;
	if (strncmp(out, "//./", 4) == 0 || strncmp(out, "//?/", 4) == 0 ||
	    device_name(base, strlen(base))) {
		*why = "a device's name (such as NUL, CON, COM1), not a "
		    "file's";
		goto out;
	}
	if (is_drive(out[0]) && out[1] == ':' && out[2] == '/')
		*root = 2;
	else if ((*root = unc_root(out)) == 0) {
		*why = "neither on a drive nor UNC";
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lockfs_os_path_root: see os.h.  "C:/", "//server/share/", else (not
 * absolute) none. */
size_t
lockfs_os_path_root(const char *abs)
{
	size_t n;

	if (is_drive(abs[0]) && abs[1] == ':')
		return abs[2] == '/' ? 3 : 2;
	if ((n = unc_root(abs)) != 0)
		return n + 1;
	return 0;
}

/* lockfs_os_path_native: see os.h.  A copy, backslashes for '/'. */
const char *
lockfs_os_path_native(const char *path, char *buf, size_t size)
{
	size_t i, len = strlen(path);

	if (len >= size) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	for (i = 0; i <= len; i++)
		buf[i] = path[i] == '/' ? '\\' : path[i];
	return buf;
}

/* lockfs_os_names_cmp: see os.h.  CompareStringOrdinal ignoring case, on
 * the names in UTF-16; byte by byte when they are not UTF-8 or too long
 * for that (no file's name then: the same as any other string). */
int
lockfs_os_names_cmp(const char *a, int alen, const char *b, int blen)
{
	wchar_t wa[MAX_PATH * 4], wb[MAX_PATH * 4];
	int     na, nb, r;

	wa[0] = wb[0] = 0;
	na = alen == 0 ? 0 : MultiByteToWideChar(CP_UTF8,
	    MB_ERR_INVALID_CHARS, a, alen, wa, MAX_PATH * 4);
	nb = blen == 0 ? 0 : MultiByteToWideChar(CP_UTF8,
	    MB_ERR_INVALID_CHARS, b, blen, wb, MAX_PATH * 4);
	if ((na == 0 && alen != 0) || (nb == 0 && blen != 0) ||
	    (r = CompareStringOrdinal(wa, na, wb, nb, TRUE)) == 0) {
		r = memcmp(a, b, (size_t)(alen < blen ? alen : blen));
		return r != 0 ? r : alen - blen;
	}
	return r - CSTR_EQUAL;
}

/* lockfs_os_sqlite_vfs: see os.h. */
const char *
lockfs_os_sqlite_vfs(void)
{
	return "win32";
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

/* Room at the end of a directory reader's buffer for the entry's name in
 * UTF-8 (255 UTF-16 units, each up to 3 bytes, and a NUL). */
#define DIR_NAME_ROOM 768

/* lockfs_os_dir_start: see os.h.  The entries as
 * GetFileInformationByHandleEx(FileIdBothDirectoryInfo) gives them, in
 * the buffer but its last DIR_NAME_ROOM bytes, which hold the name given
 * out. */
void
lockfs_os_dir_start(struct lockfs_os_dir *d, int fd, void *buf, size_t size)
{
	d->fd = fd;
	d->buf = buf != NULL ? buf : d->own;
	d->size = buf != NULL ? size : sizeof(d->own);
	d->pos = d->len = 0;
}

/* lockfs_os_dir_next: see os.h.  The type from the entry's attributes:
 * a reparse point (a junction, a symbolic link) DT_UNKNOWN, for the
 * caller to look at without following it; else a directory DT_DIR, and
 * anything else DT_REG.  A name that UTF-8 cannot carry is skipped. */
const char *
lockfs_os_dir_next(struct lockfs_os_dir *d, unsigned char *type)
{
	FILE_ID_BOTH_DIR_INFO *e;
	char                  *name = d->buf + d->size - DIR_NAME_ROOM;
	intptr_t               h = _get_osfhandle(d->fd);
	DWORD                  err;
	int                    n;

	for (;;) {
		if (d->pos >= d->len) {
			if (h == -1 || h == -2) {
				errno = EBADF;
				return NULL;
			}
			if (!GetFileInformationByHandleEx((HANDLE)h,
			    FileIdBothDirectoryInfo, d->buf,
			    (DWORD)(d->size - DIR_NAME_ROOM))) {
				err = GetLastError();
				errno = err == ERROR_NO_MORE_FILES ? 0 :
				    errno_of(err);
				return NULL;
			}
			d->pos = 0;
			d->len = d->size - DIR_NAME_ROOM;
		}
		e = (FILE_ID_BOTH_DIR_INFO *)(d->buf + d->pos);
		d->pos = e->NextEntryOffset == 0 ? d->len :
		    d->pos + e->NextEntryOffset;
		n = WideCharToMultiByte(CP_UTF8, 0, e->FileName,
		    (int)(e->FileNameLength / sizeof(WCHAR)), name,
		    DIR_NAME_ROOM - 1, NULL, NULL);
		if (n <= 0)
			continue;       /* cannot be named in UTF-8 */
		name[n] = '\0';
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (type != NULL)
			*type = e->FileAttributes &
			    FILE_ATTRIBUTE_REPARSE_POINT ? DT_UNKNOWN :
			    e->FileAttributes & FILE_ATTRIBUTE_DIRECTORY ?
			    DT_DIR : DT_REG;
		errno = 0;
		return name;
	}
}

/*
 * Directory locking.
 *
 * LockFileEx takes no directory's handle (wine refuses it),
 * so the lock is a named kernel object instead: an event named after the
 * directory's identity, Global\lockbroker-dir-SERIAL-INDEX (its volume's
 * serial number and its file index, as GetFileInformationByHandle gives
 * them: the same for every path to the directory, and another's for
 * another directory).  Taken is made: the try creates the event and holds
 * the lock exactly when it did not exist before (CreateEventExW's
 * ERROR_ALREADY_EXISTS: held; ERROR_ACCESS_DENIED: it exists, made by
 * another user, whose default DACL lets us not open it: held).  The event
 * lives as long as a handle on it: the holder's close, or its death
 * (Windows closes a dead process's handles), frees it; a try that met it
 * held keeps it for an instant, and a try in that instant finds it held
 * (never two holders: an event is made only where none exists).
 *
 * Why this and not the others:
 * - a mutex is owned by a thread, released only by that thread (lockfs
 *   may take the lock in one thread and drop it in another: a handoff's
 *   two steps), and taken again by the same thread without waiting, where
 *   os.h wants a second open of the directory in this process refused;
 *   an event has no owner;
 * - LockFileEx on a file of lockfs's own in the directory would leave
 *   that file behind for ever in every directory ever locked (litter
 *   beside the user's files), and would need a name that no lock file
 *   (PATH.lock) of Python's lockfile can ever be; the named event leaves
 *   nothing on disk, so nothing that lockfile could misread as a lock;
 * - the Global\ namespace, not Local\ (a session's): the daemon, a
 *   service, runs in session 0 and its clients' in-process fallback in
 *   their own sessions, and all must exclude one another.  Creating an
 *   event there needs no privilege (SeCreateGlobalPrivilege is asked for
 *   file mappings and symbolic links only).
 * The try keeps the event it made in a table of this process's, by the
 * directory's descriptor (os.h's struct has only the descriptor).
 * What it does not give: anyone may make the event of any directory
 *   whose identity they know (no right on the directory is checked),
 *   and hold it: breakers of stale locks and handoffs in that directory
 *   then find it busy ("not this time"), as on Unix anyone who can read
 *   the directory can hold its flock.  Under wine there is one session
 *   and one user.
 */

/* The events this process holds as directory locks, by the descriptor
 * of the directory they were taken through (unique while it is open;
 * lockfs_dirlock_close forgets it before it closes the descriptor). */
static SRWLOCK held_lock = SRWLOCK_INIT;
static struct held {
	int    fd;
	HANDLE event;
}             *held;
static size_t  held_n, held_max;

/* The event held through descriptor fd, or NULL; with remove, forgotten
 * too. */
static HANDLE
held_find(int fd, int remove)
{
	HANDLE ev = NULL;
	size_t i;

	AcquireSRWLockExclusive(&held_lock);
	for (i = 0; i < held_n; i++)
		if (held[i].fd == fd) {
			ev = held[i].event;
			if (remove)
				held[i] = held[--held_n];
			break;
		}
	ReleaseSRWLockExclusive(&held_lock);
	return ev;
}

/* Records event as held through descriptor fd: 0, or -1 with errno
 * ENOMEM. */
static int
held_add(int fd, HANDLE event)
{
	struct held *more;
	int          r = 0;

	AcquireSRWLockExclusive(&held_lock);
	if (held_n == held_max) {
		more = realloc(held, (held_max + 8) * sizeof(*held));
		if (more == NULL) {
			errno = ENOMEM;
			r = -1;
			goto out;
		}
		held = more;
		held_max += 8;
	}
	held[held_n].fd = fd;
	held[held_n].event = event;
	held_n++;
out:
	ReleaseSRWLockExclusive(&held_lock);
	return r;
}

/* lockfs_dirlock_open: see os.h.  A handle on the directory (which
 * FILE_FLAG_BACKUP_SEMANTICS lets CreateFileW open, followed as Unix's
 * open is), readable, as a C runtime descriptor; not locked. */
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

/* lockfs_dirlock_try: see os.h.  Makes the directory's named event (see
 * above); EWOULDBLOCK when it exists. */
int
lockfs_dirlock_try(struct lockfs_dirlock *dl)
{
	BY_HANDLE_FILE_INFORMATION bi;
	wchar_t                    name[64];
	intptr_t                   h;
	HANDLE                     ev;
	DWORD                      err;

	if (dl->fd != -1 && held_find(dl->fd, 0) != NULL)
		return 0;
	h = dl->fd == -1 ? -1 : _get_osfhandle(dl->fd);
	if (h == -1 || h == -2) {
		errno = EBADF;
		return -1;
	}
	if (!GetFileInformationByHandle((HANDLE)h, &bi)) {
		errno = errno_of(GetLastError());
		return -1;
	}
	_snwprintf(name, sizeof(name) / sizeof(name[0]),
	    L"Global\\lockbroker-dir-%08lx-%08lx%08lx",
	    (unsigned long)bi.dwVolumeSerialNumber,
	    (unsigned long)bi.nFileIndexHigh,
	    (unsigned long)bi.nFileIndexLow);
	ev = CreateEventExW(NULL, name, CREATE_EVENT_MANUAL_RESET,
	    SYNCHRONIZE);
	err = GetLastError();
	if (ev != NULL && err != ERROR_ALREADY_EXISTS) {
		if (held_add(dl->fd, ev) == 0)
			return 0;
		CloseHandle(ev);
		return -1;
	}
	if (ev != NULL)
		CloseHandle(ev);
	errno = ev != NULL || err == ERROR_ACCESS_DENIED ? EWOULDBLOCK :
	    errno_of(err);
	return -1;
}

/* lockfs_dirlock_close: see os.h.  The event first (the lock goes), then
 * the directory. */
void
lockfs_dirlock_close(struct lockfs_dirlock *dl)
{
	HANDLE ev;
	int    saved = errno;

	if (dl->fd != -1 && (ev = held_find(dl->fd, 1)) != NULL)
		CloseHandle(ev);
	if (dl->fd != -1)
		_close(dl->fd);         /* closes the handle too */
	dl->fd = -1;
	errno = saved;
}
