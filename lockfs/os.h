/*
 * os.h: what lockfs asks of the operating system, in one small contract:
 * who this process and thread are, whether another process still runs
 * (and is still the one that was meant), which boot this is, which uid
 * files are made with, reopening a file by its descriptor, reading a
 * directory's entries, and an exclusive lock on a directory.  The steps
 * lockfs takes in the file system are fs.h's; everything else in lockfs
 * is C over these calls and fs.h's.
 *
 * One implementation per OS: os_unix.c (Linux: /proc, gettid, setfsuid,
 * flock), os_win32.c (Windows: process ids and creation times, renames
 * that replace nothing, directories read through their handle and locked
 * by a named event; the rest answers as an OS that cannot, which the
 * file says call by call).  A port adds its own file and builds it
 * instead; no other file of lockfs changes for it.
 *
 * Error convention, as the rest of lockfs below the lock steps: functions
 * that can fail return 0 or -1 with errno set (the caller names the file
 * and the reason in a struct lockfs_err); nothing here allocates, blocks
 * for long or keeps state between calls beyond what is documented.
 */
#ifndef LOCKFS_OS_H
#define LOCKFS_OS_H

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

#include "lockbroker/codes.h"

#ifdef _WIN32
/* Windows has no numeric users: the uids and gids of this contract are
 * placeholders there (os_win32.c says what it gives). */
typedef unsigned int uid_t;
typedef unsigned int gid_t;
#endif

/* The types of lockfs_os_dir_next that lockfs asks for, where dirent.h
 * has none (mingw-w64), with Linux's values. */
#ifndef DT_UNKNOWN
#define DT_UNKNOWN 0
#define DT_DIR     4
#define DT_REG     8
#endif

/* Process identity. */

/* lockfs_os_pid: the calling process's id (a forked child has its own). */
pid_t lockfs_os_pid(void);

/* lockfs_gettid: the calling thread's id, unique among the live threads
 * of the host (the kernel's, not pthread_self): what a threaded owner's
 * unique name carries. */
pid_t lockfs_gettid(void);

/*
 * lockfs_os_start_time: when process pid started, as a number that stays
 * the same for the life of the process and differs for another process
 * given the same pid later (on Linux clock ticks since boot, field 22 of
 * /proc/PID/stat); never 0.  Returns 0 with *start set, or -1 with errno:
 * ESRCH (no such process), EACCES (it exists but is hidden from the
 * caller), EIO (read but not understood), another errno of the read;
 * ESRCH also for pid <= 0.
 */
int   lockfs_os_start_time(pid_t pid, unsigned long long *start);

/*
 * lockfs_os_process_uid: the user process pid runs as (its effective
 * uid; on Linux the owner of /proc/PID, which is root's for a process
 * that made itself undumpable, a set-uid program's say).  Returns 0 with
 * *uid set, or -1 with errno: ESRCH (no such process; also for pid <= 0),
 * EACCES (it exists but is hidden from the caller, as hidepid hides
 * another user's), another errno of the look.  Says nothing of pid reuse:
 * compare start times for that.
 */
int   lockfs_os_process_uid(pid_t pid, uid_t *uid);

/*
 * lockfs_os_pid_liveness: whether a process with id pid exists now,
 * whoever's it is and whatever it runs: LB_HOLDER_DEAD when there is
 * none, LB_HOLDER_ALIVE when there is one (also one the caller may not
 * signal), LB_HOLDER_UNKNOWN when pid is not a process id (<= 0) or the
 * OS cannot tell.  Says nothing of pid reuse: compare start times for
 * that.
 */
lb_liveness lockfs_os_pid_liveness(pid_t pid);

/*
 * lockfs_os_boot_id: this boot's identity, as up to 8 lower-case hex
 * digits and a NUL in out (at least 9 bytes); "" when the OS tells none.
 * A process named with another boot's id is gone.  Reads the OS each
 * call: callers keep it.
 */
void  lockfs_os_boot_id(char *out, size_t size);

/*
 * lockfs_os_hostname: this host's name into out (NUL-terminated,
 * truncated to size - 1); "localhost" when the OS tells none.
 */
void  lockfs_os_hostname(char *out, size_t size);

/* File-system credentials. */

/*
 * lockfs_os_files_uid: the uid the calling thread makes files with: its
 * effective uid, unless the daemon has taken on a client's for file-system
 * steps (on Linux the thread's fsuid).  Never fails.
 */
uid_t lockfs_os_files_uid(void);

/*
 * lockfs_os_files_creds: the calling thread's whole file-system
 * credentials: the uid and gid it makes and opens files with (on Linux
 * its fsuid and fsgid) and its supplementary groups, at most max of them
 * into groups, as the OS lists them; max 0: only their number, groups
 * untouched (may be NULL).  The number of groups, or -1 with errno
 * (EINVAL: more than max).
 */
int   lockfs_os_files_creds(uid_t *uid, gid_t *gid, gid_t *groups, int max);

/*
 * lockfs_os_files_access: whether the calling thread's file-system
 * credentials (as lockfs_os_files_creds tells them, capabilities, ACLs)
 * allow mode (R_OK, W_OK, or both) on file, whose last component is not
 * followed: what an open of it would be allowed now.  0, or -1 with errno
 * (EACCES, EROFS, ...; ENOSYS where the OS cannot answer for those
 * credentials).
 */
int   lockfs_os_files_access(const char *file, int mode);

/* Files. */

/*
 * lockfs_os_reopen: a new descriptor on the very file that descriptor fd
 * (opened only to name it: O_PATH) is open on, opened with flags, without
 * looking its name up again.  The new descriptor, or -1 with errno: ENOENT
 * when the OS cannot reopen so (the caller opens by name and checks it is
 * the same file), another errno of the open.
 */
int   lockfs_os_reopen(int fd, int flags);

/*
 * Paths.  lockfs's absolute paths have '/' as their one separator on
 * every system (Windows takes '/' as well as '\'), and a root that the
 * normalisation of path.c keeps as it is.
 *
 * lockfs_os_path_join: path made absolute as this system does, without
 * normalising it, into out: on Unix joined to the working directory
 * unless it starts with '/'; on Windows as GetFullPathNameW does (and
 * so Python's os.path.abspath): a drive ("C:\d\f", "C:/d/f"), the
 * drive's own working directory for "C:f", the current drive for
 * "\d\f", a UNC path ("\\server\share\d\f"), '\' turned into
 * '/'.  *root is the length of out's root ("" or, for POSIX's "//", "/";
 * "C:"; "//server/share"): the components after it are what path.c
 * normalises.  0, or -1 with errno ENAMETOOLONG, an errno of the working
 * directory, or EINVAL when path cannot name a lock's file, with *why
 * saying why (Windows: a device's or the native namespace's prefix such
 * as "\\.\" or "\\?\", a device's name such as NUL or CON, a
 * separator at the end, a character Windows names cannot hold, a UNC
 * path without its share).
 */
int   lockfs_os_path_join(const char *path, char *out, size_t size,
          size_t *root, const char **why);

/*
 * lockfs_os_path_root: the length of the root of abs (an absolute path
 * as path.c leaves it), its separator included: the part of a file's
 * directory that keeps its separator when the file's name is cut off
 * ("/", "C:/", "//server/share/").
 */
size_t lockfs_os_path_root(const char *abs);

/*
 * lockfs_os_path_native: the address of path (one of lockfs's, with '/'
 * as its separator) spelled as this system's own programs spell it:
 * path itself on Unix; on Windows a copy in buf (size bytes) with '\'
 * for every '/' ("C:\d\f.lock", "\\server\share\d\f.lock"), as
 * Python's os.path.abspath gives it there (and so as Python's lockfile
 * writes its sqlite rows).  NULL with errno ENAMETOOLONG when the copy
 * does not fit.
 */
const char *lockfs_os_path_native(const char *path, char *buf, size_t size);

/*
 * lockfs_os_names_cmp: compares paths a and b, of alen and blen bytes
 * (UTF-8, not terminated), as this system's file systems tell names
 * apart: less than, equal to or greater than 0.  Byte by byte on Unix;
 * on Windows regardless of case (CompareStringOrdinal, the folding NTFS
 * names use), so that "C:/d/X" and "C:/d/x", one file there, are one
 * name (the sqlite method's rows: sqlite.c).
 */
int   lockfs_os_names_cmp(const char *a, int alen, const char *b, int blen);

/*
 * lockfs_os_sqlite_vfs: the name of sqlite's own VFS for this system,
 * which lockfs's (sqlitevfs.c) wraps: "unix", "win32".
 */
const char *lockfs_os_sqlite_vfs(void);

/*
 * lockfs_os_rename_noreplace: renames from to to (paths), at once and only
 * when nothing is at to: 0, or -1 with errno: EEXIST (or ENOTEMPTY) when
 * to exists; EINVAL or ENOSYS when the OS or file system cannot rename so
 * (the caller does its step another way); another errno of the rename.
 */
int   lockfs_os_rename_noreplace(const char *from, const char *to);

/*
 * lockfs_os_create_whole: creates file path (in directory dir, where it
 * is made first, unnamed) holding the len bytes of data, with mode, and
 * gives it its name only once written, and only when nothing is at path:
 * no one sees it, or it is killed half way leaves, a file without its
 * contents.  0, or -1 with errno: EEXIST when path exists; EOPNOTSUPP
 * when the OS or file system cannot make a file so (the caller creates it
 * in place); another errno of the steps.  Nothing is left on disk unless
 * 0.
 */
int   lockfs_os_create_whole(const char *dir, const char *path,
          const void *data, size_t len, mode_t mode);

/*
 * Reading a directory: its entries' names through a descriptor of it,
 * without the calls opendir(3) adds (glibc's fdopendir looks at the
 * descriptor three times: fstat and two fcntl).  The caller opens the
 * directory (O_RDONLY | O_DIRECTORY) and closes it; the reader holds no
 * other resource.  Its own buffer suits a directory of a few entries (a
 * lock directory); a large one is read in fewer calls into a buffer the
 * caller gives.
 */
struct lockfs_os_dir {
	int    fd;                      /* the open directory */
	char  *buf;                     /* entries as the OS gave them: own
	                                   or the caller's */
	size_t size, pos, len;          /* buf's size; its unread bytes */
	_Alignas(8) char own[2048];
};

/* lockfs_os_dir_start: starts reading directory fd (at its current offset:
 * the first entry when just opened) into *d, through buf (size bytes,
 * aligned for any type, at least 2048; kept by the caller while it
 * reads), or through d's own buffer when buf is NULL. */
void  lockfs_os_dir_start(struct lockfs_os_dir *d, int fd, void *buf,
          size_t size);

/*
 * lockfs_os_dir_next: the next entry's name, "." and ".." skipped, valid
 * until the next call; *type (when not NULL) set to its DT_* type
 * (DT_UNKNOWN where the file system does not tell).  NULL at the end,
 * with errno 0, or when the directory cannot be read, with errno set.
 */
const char *lockfs_os_dir_next(struct lockfs_os_dir *d, unsigned char *type);

/* Directory locking: one exclusive lock per directory, between the
 * breakers of stale locks and handoffs (advisory: only they take it). */

/* A directory opened for locking: closed when fd is -1. */
struct lockfs_dirlock {
	int fd;                 /* the open directory (Unix: a descriptor,
	                           which lockfs may also read the directory
	                           through) */
};

/*
 * lockfs_dirlock_open: opens directory dir into *dl for locking (not
 * locked yet).  0, or -1 with errno (from opening it) and dl->fd -1.
 */
int   lockfs_dirlock_open(struct lockfs_dirlock *dl, const char *dir);

/*
 * lockfs_dirlock_try: takes the exclusive lock on dl's directory without
 * waiting.  0 when taken (or already held through dl); -1 with errno
 * EWOULDBLOCK when another open of the directory holds it (in this
 * process or another), another errno when it cannot be locked at all.
 */
int   lockfs_dirlock_try(struct lockfs_dirlock *dl);

/*
 * lockfs_dirlock_close: drops the lock, if taken, and closes dl's
 * directory (nothing when dl->fd is -1); errno is kept.  The lock also
 * goes when the process dies.
 */
void  lockfs_dirlock_close(struct lockfs_dirlock *dl);

#endif /* LOCKFS_OS_H */
