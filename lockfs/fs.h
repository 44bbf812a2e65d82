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
 * fstatat, unlinkat, mknodat, link, faccessat), fs_win32.c (Windows: not yet;
 * every call fails with ENOSYS).  A port adds its own file and builds it
 * instead; no method changes for it.  So far the mkdir and link methods
 * (mkdir.c, lockdir.c, link.c) take their steps through here; the rest of
 * lockfs still calls POSIX directly (WINDOWS.md lists what).
 *
 * Descriptors are ints, as os.h's: what lockfs_fs_open gives, which the
 * rest of lockfs (os.h's directory reader, lockfs_fs_close) takes.
 * Directory-relative calls take such a descriptor of a directory as at,
 * or LOCKFS_FS_CWD for a name relative to the working directory (an
 * absolute path, in lockfs).  Error convention, as os.h's: 0 (or a
 * descriptor) on success, -1 with errno set on failure; the caller names
 * the file and the reason in a struct lockfs_err.  Each call is one step
 * of the OS (on Linux one system call, two where the contract says),
 * taken with the calling thread's file-system credentials.
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

/* What a file is, as lockfs tells files apart. */
enum lockfs_fs_type {
	LOCKFS_FS_OTHER = 0,    /* a device, fifo, socket, ... */
	LOCKFS_FS_FILE,         /* a regular file */
	LOCKFS_FS_DIRECTORY,
	LOCKFS_FS_SYMLINK,      /* only where not followed */
};

/* A file's identity and what lockfs judges it by. */
struct lockfs_fs_info {
	unsigned long long  dev, ino;   /* the same pair: the same file, as
	                                   long as it exists */
	uid_t               uid;        /* its owner */
	unsigned long       nlink;      /* names it has; a directory's on
	                                   Linux: 2 + its subdirectories
	                                   (1 or less: not counted so) */
	enum lockfs_fs_type type;
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

#endif /* LOCKFS_FS_H */
