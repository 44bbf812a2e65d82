/*
 * fs_unix.c: lockfs's file-system steps (fs.h) on POSIX with Linux's
 * O_PATH: each call one libc call (two where fs.h says), the very ones
 * the methods made before they went through fs.h, so that what a request
 * costs in system calls does not change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#if LOCKFS_FS_CWD != AT_FDCWD
#error "LOCKFS_FS_CWD must be AT_FDCWD"
#endif

/* The status st as fs.h tells it, into *fi. */
static void
info_of(const struct stat *st, struct lockfs_fs_info *fi)
{
	fi->dev = st->st_dev;
	fi->ino = st->st_ino;
	fi->uid = st->st_uid;
	fi->nlink = st->st_nlink;
	fi->size = (unsigned long long)st->st_size;
	if (S_ISREG(st->st_mode))
		fi->type = LOCKFS_FS_FILE;
	else if (S_ISDIR(st->st_mode))
		fi->type = LOCKFS_FS_DIRECTORY;
	else if (S_ISLNK(st->st_mode))
		fi->type = LOCKFS_FS_SYMLINK;
	else
		fi->type = LOCKFS_FS_OTHER;
	fi->perm = (unsigned)(st->st_mode & 07777);
	fi->mtime.sec = st->st_mtim.tv_sec;
	fi->mtime.nsec = st->st_mtim.tv_nsec;
	fi->ctime.sec = st->st_ctim.tv_sec;
	fi->ctime.nsec = st->st_ctim.tv_nsec;
}

/* lockfs_fs_open: see fs.h.  openat(2) (open(2) by name: glibc makes it
 * openat). */
int
lockfs_fs_open(int at, const char *name, int how)
{
	int flags = O_CLOEXEC;

	if (how & LOCKFS_FS_WRITE)
		flags |= O_WRONLY;
	else
		flags |= how & LOCKFS_FS_READ ? O_RDONLY : O_PATH;
	if (how & LOCKFS_FS_DIR)
		flags |= O_DIRECTORY;
	if (!(how & LOCKFS_FS_FOLLOW))
		flags |= O_NOFOLLOW;
	if (how & LOCKFS_FS_CREATE)
		flags |= O_CREAT;
	if (how & LOCKFS_FS_EXCL)
		flags |= O_EXCL;
	if (how & LOCKFS_FS_NONBLOCK)
		flags |= O_NONBLOCK;
	if (how & LOCKFS_FS_NOCTTY)
		flags |= O_NOCTTY;
	return openat(at, name, flags, 0644);
}

/* lockfs_fs_close: see fs.h. */
void
lockfs_fs_close(int fd)
{
	int saved = errno;

	if (fd != -1)
		close(fd);
	errno = saved;
}

/* lockfs_fs_info: see fs.h. */
int
lockfs_fs_info(int fd, struct lockfs_fs_info *fi)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	info_of(&st, fi);
	return 0;
}

/* lockfs_fs_info_at: see fs.h.  lstat(2) and stat(2) where at is
 * LOCKFS_FS_CWD, as the methods always called them (glibc makes all three
 * fstatat). */
int
lockfs_fs_info_at(int at, const char *name, int how,
    struct lockfs_fs_info *fi)
{
	struct stat st;
	int         r;

	if (at == AT_FDCWD)
		r = how & LOCKFS_FS_FOLLOW ? stat(name, &st) :
		    lstat(name, &st);
	else
		r = fstatat(at, name, &st, how & LOCKFS_FS_FOLLOW ? 0 :
		    AT_SYMLINK_NOFOLLOW);
	if (r == -1)
		return -1;
	info_of(&st, fi);
	return 0;
}

/* lockfs_fs_make_at: see fs.h.  mknod(2) where at is LOCKFS_FS_CWD, as
 * the link method always called it (glibc makes both mknodat). */
int
lockfs_fs_make_at(int at, const char *name, mode_t mode)
{
	if (at == AT_FDCWD)
		return mknod(name, S_IFREG | mode, 0);
	return mknodat(at, name, S_IFREG | mode, 0);
}

/* lockfs_fs_link: see fs.h.  link(2), which follows no symbolic link at
 * from on Linux. */
int
lockfs_fs_link(const char *from, const char *to)
{
	return link(from, to);
}

/* lockfs_fs_unlink: see fs.h. */
int
lockfs_fs_unlink(const char *path)
{
	return unlink(path);
}

/* lockfs_fs_mkdir: see fs.h. */
int
lockfs_fs_mkdir(const char *path)
{
	return mkdir(path, 0777);
}

/* lockfs_fs_rmdir: see fs.h. */
int
lockfs_fs_rmdir(const char *path)
{
	return rmdir(path);
}

/* lockfs_fs_unlink_at: see fs.h. */
int
lockfs_fs_unlink_at(int at, const char *name)
{
	return unlinkat(at, name, 0);
}

/* lockfs_fs_rmdir_at: see fs.h. */
int
lockfs_fs_rmdir_at(int at, const char *name)
{
	return unlinkat(at, name, AT_REMOVEDIR);
}

/* lockfs_fs_may_remove_in: see fs.h.  AT_EACCESS: as the file-system
 * credentials in force (glibc asks the kernel, faccessat2, for them). */
int
lockfs_fs_may_remove_in(const char *dir)
{
	return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS);
}

/* lockfs_fs_reopen: see fs.h.  lockfs_os_reopen (an open of
 * /proc/self/fd/N). */
int
lockfs_fs_reopen(int fd, int how)
{
	int flags = O_CLOEXEC;

	flags |= how & LOCKFS_FS_WRITE ? O_WRONLY : O_RDONLY;
	if (how & LOCKFS_FS_NONBLOCK)
		flags |= O_NONBLOCK;
	if (how & LOCKFS_FS_NOCTTY)
		flags |= O_NOCTTY;
	return lockfs_os_reopen(fd, flags);
}

/* lockfs_fs_read: see fs.h.  read(2). */
ssize_t
lockfs_fs_read(int fd, void *buf, size_t size)
{
	return read(fd, buf, size);
}

/* lockfs_fs_write: see fs.h.  write(2). */
ssize_t
lockfs_fs_write(int fd, const void *buf, size_t size)
{
	return write(fd, buf, size);
}

/* lockfs_fs_close_written: see fs.h.  close(2). */
int
lockfs_fs_close_written(int fd)
{
	return close(fd);
}

/* lockfs_fs_rename_at: see fs.h.  rename(2) where at is LOCKFS_FS_CWD,
 * as the handoffs always called it, else renameat(2). */
int
lockfs_fs_rename_at(int at, const char *from, const char *to)
{
	if (at == AT_FDCWD)
		return rename(from, to);
	return renameat(at, from, at, to);
}

/* lockfs_fs_symlink: see fs.h.  symlink(2). */
int
lockfs_fs_symlink(const char *target, const char *path)
{
	return symlink(target, path);
}

/* lockfs_fs_readlink_at: see fs.h.  readlink(2) where at is
 * LOCKFS_FS_CWD, as the methods always called it, else readlinkat(2). */
ssize_t
lockfs_fs_readlink_at(int at, const char *name, char *buf, size_t size)
{
	ssize_t n;

	if (at == AT_FDCWD)
		n = readlink(name, buf, size - 1);
	else
		n = readlinkat(at, name, buf, size - 1);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* lockfs_fs_realpath: see fs.h.  realpath(3). */
int
lockfs_fs_realpath(const char *path, char *out)
{
	return realpath(path, out) == NULL ? -1 : 0;
}

/* A directory stream is the C library's: a DIR, by another name. */

/* lockfs_fs_dir_open: see fs.h.  opendir(3). */
struct lockfs_fs_dir *
lockfs_fs_dir_open(const char *path)
{
	return (struct lockfs_fs_dir *)opendir(path);
}

/* lockfs_fs_dir_open_fd: see fs.h.  fdopendir(3) of a dup(2) of fd
 * (fdopendir takes the descriptor it is given). */
struct lockfs_fs_dir *
lockfs_fs_dir_open_fd(int fd)
{
	return (struct lockfs_fs_dir *)fdopendir(dup(fd));
}

/* lockfs_fs_dir_next: see fs.h.  readdir(3). */
int
lockfs_fs_dir_next(struct lockfs_fs_dir *d, struct lockfs_fs_entry *e)
{
	struct dirent *de;

	if ((de = readdir((DIR *)d)) == NULL)
		return 0;
	e->name = de->d_name;
	e->ino = de->d_ino;
	e->type = de->d_type;
	return 1;
}

/* lockfs_fs_dir_rewind: see fs.h.  rewinddir(3). */
void
lockfs_fs_dir_rewind(struct lockfs_fs_dir *d)
{
	rewinddir((DIR *)d);
}

/* lockfs_fs_dir_fd: see fs.h.  dirfd(3). */
int
lockfs_fs_dir_fd(struct lockfs_fs_dir *d)
{
	return dirfd((DIR *)d);
}

/* lockfs_fs_dir_close: see fs.h.  closedir(3). */
void
lockfs_fs_dir_close(struct lockfs_fs_dir *d)
{
	int saved = errno;

	if (d != NULL)
		closedir((DIR *)d);
	errno = saved;
}
