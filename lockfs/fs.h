/*
 * fs.h: the file-system steps lockfs's methods take, in one small
 * contract beside os.h: opening a name (relative to a directory, never
 * following a symbolic link unless asked), a file's identity, owner and
 * link count, and making and removing files and directories by name or
 * relative to a directory.  The methods take every such step through
 * here, so that the steps inside a directory go through a descriptor of
 * it (a symlink swapped in for it is not followed) on every OS that can.
 *
 * One implementation per OS: fs_unix.c (POSIX: openat with O_PATH,
 * fstatat, unlinkat, mknodat, link, faccessat), fs_win32.c (Windows:
 * ntdll's NtCreateFile, relative to a directory's handle, no link
 * followed; no owners, every file of uid 0; renames that replace,
 * symbolic links and paths resolved not yet: ENOSYS).  A port adds its
 * own file and builds it instead; no method changes for it.  Every file
 * of lockfs takes its file-system steps through here and os.h, none
 * directly (WINDOWS.md says what a Windows build still lacks).
 *
 * Descriptors are ints, as os.h's: what lockfs_fs_open gives, which the
 * rest of lockfs (os.h's directory reader, lockfs_fs_close) takes.
 * Directory-relative calls take such a descriptor of a directory as at,
 * or LOCKFS_FS_CWD for a name relative to the working directory (an
 * absolute path, in lockfs).  Error convention, as os.h's: 0 (or a
 * descriptor) on success, -1 with errno set on failure; the caller names
 * the file and the reason in a struct lockfs_err.  Each call is one step
 * of the OS (on Linux one system call, two where the contract says, the
 * C library's for a path resolved and a directory stream), taken with
 * the calling thread's file-system credentials.
 */
#ifndef LOCKFS_FS_H
#define LOCKFS_FS_H

#include <errno.h>
#include <limits.h>
#include <sys/types.h>

#include "os.h"

/* The longest name of a directory entry, in bytes (NAME_MAX; 255 where
 * limits.h has none: mingw-w64). */
#ifdef NAME_MAX
#define LOCKFS_FS_NAME_MAX NAME_MAX
#else
#define LOCKFS_FS_NAME_MAX 255
#endif

/* ESTALE, which lockfs gives for a file that is no longer the one it
 * judged, where errno.h has none (mingw-w64): a value beyond its
 * others. */
#ifndef ESTALE
#define ESTALE 1001
#endif

/* at: names relative to the working directory (Linux's AT_FDCWD). */
#define LOCKFS_FS_CWD (-100)

/* How lockfs_fs_open opens a name (or-ed; 0: only to name the file, not
 * following a symbolic link at the name). */
#define LOCKFS_FS_READ     0x01 /* to read it (a directory: its entries) */
#define LOCKFS_FS_DIR      0x02 /* only a directory (else ENOTDIR) */
#define LOCKFS_FS_FOLLOW   0x04 /* a symbolic link at the name is followed
                                   (lockfs_fs_info_at too) */
#define LOCKFS_FS_WRITE    0x08 /* to write it (not with _READ) */
#define LOCKFS_FS_CREATE   0x10 /* made, mode 0644 less the umask, when
                                   nothing is at the name */
#define LOCKFS_FS_EXCL     0x20 /* with _CREATE: only made (else EEXIST) */
#define LOCKFS_FS_NONBLOCK 0x40 /* never waits to open (a FIFO planted at
                                   the name) */
#define LOCKFS_FS_NOCTTY   0x80 /* a terminal opened never becomes the
                                   process's controlling one */

/* What a file is, as lockfs tells files apart. */
enum lockfs_fs_type {
	LOCKFS_FS_OTHER = 0,    /* a device, fifo, socket, ... */
	LOCKFS_FS_FILE,         /* a regular file */
	LOCKFS_FS_DIRECTORY,
	LOCKFS_FS_SYMLINK,      /* only where not followed */
};

/* A time a file keeps: seconds and nanoseconds since the epoch. */
struct lockfs_fs_time {
	long long sec;
	long      nsec;
};

/* Permission bits of lockfs_fs_info's perm that lockfs asks about, with
 * POSIX's values. */
#define LOCKFS_FS_STICKY 01000  /* a directory whose names only their
                                   owner (or the directory's) may remove
                                   or replace */
#define LOCKFS_FS_WGROUP 00020  /* its group may write it */
#define LOCKFS_FS_WOTHER 00002  /* every user may write it */

/* A file's identity and what lockfs judges it by. */
struct lockfs_fs_info {
	unsigned long long  dev, ino;   /* the same pair: the same file, as
	                                   long as it exists */
	uid_t               uid;        /* its owner */
	unsigned long       nlink;      /* names it has; a directory's on
	                                   Linux: 2 + its subdirectories
	                                   (1 or less: not counted so) */
	enum lockfs_fs_type type;
	unsigned long long  size;       /* its length in bytes */
	unsigned            perm;       /* its permission bits (POSIX's
	                                   07777: LOCKFS_FS_STICKY, ...; 0
	                                   where the OS has none) */
	struct lockfs_fs_time mtime;    /* its contents last changed */
	struct lockfs_fs_time ctime;    /* it last changed at all (status
	                                   too: a name, an owner) */
};

/*
 * lockfs_fs_open: opens name (relative to at) as how says, close-on-exec.
 * The descriptor, or -1 with errno: ENOENT (nothing there), ENOTDIR (a
 * component, or with LOCKFS_FS_DIR the file itself, is no directory; so
 * is a symbolic link at the name, not followed), ELOOP (without
 * LOCKFS_FS_DIR, a symbolic link at the name, not followed, opened to
 * read or write), EEXIST (LOCKFS_FS_EXCL), EACCES, another errno of the
 * open.  Without LOCKFS_FS_READ or _WRITE the descriptor only names the
 * file (Linux: O_PATH; a symbolic link at the name, not followed, is
 * named itself): for lockfs_fs_info and as the at of the other calls; it
 * needs no right to read it.
 */
int   lockfs_fs_open(int at, const char *name, int how);

/* lockfs_fs_close: closes descriptor fd (nothing when -1); errno is
 * kept. */
void  lockfs_fs_close(int fd);

/* lockfs_fs_info: the file open as fd, into *fi.  0, or -1 with errno. */
int   lockfs_fs_info(int fd, struct lockfs_fs_info *fi);

/*
 * lockfs_fs_info_at: the file at name (relative to at; a symbolic link
 * there is itself looked at, unless how has LOCKFS_FS_FOLLOW), into *fi.
 * 0, or -1 with errno (ENOENT, ENOTDIR: nothing there).
 */
int   lockfs_fs_info_at(int at, const char *name, int how,
          struct lockfs_fs_info *fi);

/*
 * lockfs_fs_make_at: makes an empty regular file at name (relative to at)
 * with mode (less the umask), only when nothing is at the name (a
 * symbolic link there is neither followed nor reused), in one step and
 * without opening it (Linux: mknodat(2)).  0, or -1 with errno: EEXIST
 * when the name is taken; another (EPERM, EINVAL, ENOSYS) where the OS or
 * file system makes no file so: the caller opens it with
 * LOCKFS_FS_CREATE instead.
 */
int   lockfs_fs_make_at(int at, const char *name, mode_t mode);

/* lockfs_fs_mkdir: makes directory path (mode 0777 less the umask, where
 * the OS has modes).  0, or -1 with errno (EEXIST: path exists). */
int   lockfs_fs_mkdir(const char *path);

/* lockfs_fs_rmdir: removes the empty directory path.  0, or -1 with
 * errno (ENOTEMPTY or EEXIST: not empty; ENOTDIR). */
int   lockfs_fs_rmdir(const char *path);

/* lockfs_fs_link: gives the file at from (not followed) the further name
 * to, which must not exist.  0, or -1 with errno (EEXIST: to exists;
 * EPERM, EXDEV, EMLINK: no hard link can be made there). */
int   lockfs_fs_link(const char *from, const char *to);

/* lockfs_fs_unlink: removes the file (not a directory) path; a symbolic
 * link there is removed, not followed.  0, or -1 with errno (ENOENT). */
int   lockfs_fs_unlink(const char *path);

/* lockfs_fs_unlink_at: removes the file (not a directory) name, relative
 * to at; a symbolic link there is removed, not followed.  0, or -1 with
 * errno (ENOENT: nothing there). */
int   lockfs_fs_unlink_at(int at, const char *name);

/* lockfs_fs_rmdir_at: removes the empty directory name, relative to at.
 * 0, or -1 with errno (ENOENT; ENOTEMPTY or EEXIST: not empty). */
int   lockfs_fs_rmdir_at(int at, const char *name);

/*
 * lockfs_fs_may_remove_in: whether the calling thread's file-system
 * credentials may make and remove names in directory dir (write and
 * search it; followed), as the OS would judge those steps now.  0, or -1
 * with errno (EACCES, EPERM, EROFS: may not; another errno when it
 * cannot tell).
 */
int   lockfs_fs_may_remove_in(const char *dir);

/*
 * Reading, writing, renaming, symbolic links and directory streams: the
 * steps the other methods (symlink, pidfile), the handoffs and the
 * readers of artefacts take.
 */

/*
 * lockfs_fs_reopen: a new descriptor on the very file that descriptor fd
 * (from lockfs_fs_open, only naming it) is open on, opened as how says
 * (LOCKFS_FS_READ or _WRITE, _NONBLOCK, _NOCTTY; close-on-exec), without
 * looking its name up again.  The descriptor, or -1 with errno: ENOENT
 * when the OS cannot reopen so (the caller opens the name again and
 * checks it is the same file), another errno of the open.
 */
int   lockfs_fs_reopen(int fd, int how);

/* lockfs_fs_read: reads at most size bytes of fd at its offset into buf
 * (one read: fewer bytes than asked is no error).  The bytes read (0 at
 * the end), or -1 with errno (EINTR: call again). */
ssize_t lockfs_fs_read(int fd, void *buf, size_t size);

/* lockfs_fs_write: writes at most size bytes of buf to fd at its offset
 * (one write).  The bytes written, which may be fewer (a full file
 * system), or -1 with errno. */
ssize_t lockfs_fs_write(int fd, const void *buf, size_t size);

/* lockfs_fs_close_written: closes fd, which was written to, and says
 * whether what was written is lost by the close's account (a network
 * file system reports a failed write only there): 0, or -1 with errno;
 * fd is closed either way. */
int   lockfs_fs_close_written(int fd);

/*
 * lockfs_fs_rename_at: gives the file name from (relative to at) the name
 * to (relative to at too), replacing at once what is at to, if anything,
 * so that to is never missing to another process; a symbolic link at
 * either name is the link itself.  0, or -1 with errno (ENOENT: nothing
 * at from; EPERM or EACCES: may not replace to, a sticky directory's
 * name of another user, say; EBUSY: another handle has the file at to
 * open, which Windows replaces only where it has POSIX semantics).
 */
int   lockfs_fs_rename_at(int at, const char *from, const char *to);

/* lockfs_fs_symlink: makes a symbolic link at path whose target is the
 * text target (which need not exist), only when nothing is at path.  0,
 * or -1 with errno (EEXIST: path is taken; EPERM where the OS or its user
 * may make no symbolic link). */
int   lockfs_fs_symlink(const char *target, const char *path);

/*
 * lockfs_fs_readlink_at: the target of the symbolic link name (relative
 * to at; "" with at a descriptor that names the link itself: lockfs_fs_open
 * without LOCKFS_FS_FOLLOW), at most size - 1 bytes (a longer one is cut),
 * NUL-terminated into buf (size at least 1).  Its length, or -1 with
 * errno (EINVAL: not a symbolic link; ENOENT).
 */
ssize_t lockfs_fs_readlink_at(int at, const char *name, char *buf,
          size_t size);

/* lockfs_fs_realpath: the absolute name of the file at path, with every
 * symbolic link on the way followed and no "." or ".." left, into out
 * (PATH_MAX bytes), as the calling thread's credentials resolve it now.
 * 0, or -1 with errno (ENOENT: a component missing; EACCES). */
int   lockfs_fs_realpath(const char *path, char *out);

/* DT_REG, of lockfs_fs_entry's type, where dirent.h has none (mingw-w64),
 * with Linux's value (os.h gives DT_UNKNOWN and DT_DIR). */
#ifndef DT_REG
#define DT_REG 8
#endif

/*
 * A directory stream: a directory's entries, "." and ".." among them, in
 * the OS's order, with what the directory itself says of each (its file
 * number and type), and rewound to read it again.  os.h's reader
 * (lockfs_os_dir_*) is the lighter one for a name at a time; this one
 * is the C library's (opendir(3): its calls, and its buffer, allocated).
 */
struct lockfs_fs_dir;

/* One entry of a directory stream, valid until the next read. */
struct lockfs_fs_entry {
	const char         *name;
	unsigned long long  ino;        /* its file number as the directory
	                                   says (0: not told); may differ
	                                   from lockfs_fs_info's ino on some
	                                   file systems */
	unsigned char       type;       /* DT_REG, DT_DIR, another DT_*, or
	                                   DT_UNKNOWN where not told */
};

/* lockfs_fs_dir_open: a stream of directory path's entries (a symbolic
 * link at path is followed).  The stream, freed by lockfs_fs_dir_close,
 * or NULL with errno (ENOENT, ENOTDIR, EACCES, ENOMEM). */
struct lockfs_fs_dir *lockfs_fs_dir_open(const char *path);

/* lockfs_fs_dir_open_fd: a stream of the entries of the directory open
 * as fd (read through a copy of fd: the caller still closes fd).  As
 * lockfs_fs_dir_open. */
struct lockfs_fs_dir *lockfs_fs_dir_open_fd(int fd);

/* lockfs_fs_dir_next: the next entry into *e: 1, or 0 at the end or when
 * the directory cannot be read (errno then set, else kept). */
int   lockfs_fs_dir_next(struct lockfs_fs_dir *d, struct lockfs_fs_entry *e);

/* lockfs_fs_dir_rewind: d read again from its first entry. */
void  lockfs_fs_dir_rewind(struct lockfs_fs_dir *d);

/* lockfs_fs_dir_fd: the descriptor d reads the directory through, as the
 * at of the directory-relative calls; d's own, valid until it is closed. */
int   lockfs_fs_dir_fd(struct lockfs_fs_dir *d);

/* lockfs_fs_dir_close: frees d and closes its descriptor (nothing when
 * NULL); errno is kept. */
void  lockfs_fs_dir_close(struct lockfs_fs_dir *d);

#endif /* LOCKFS_FS_H */
