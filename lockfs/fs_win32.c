/*
 * fs_win32.c: lockfs's file-system steps (fs.h) on Windows: not yet.
 * Every call fails with ENOSYS (lockfs_fs_close closes nothing), so that
 * what is built on fs.h links and says plainly that it cannot act; the
 * methods are not built for Windows yet (WINDOWS.md).  The port opens
 * names with CreateFileW (FILE_FLAG_OPEN_REPARSE_POINT: not followed;
 * FILE_FLAG_BACKUP_SEMANTICS for directories), tells identity from
 * GetFileInformationByHandle (volume serial, file index, link count), and
 * takes directory-relative steps through NtCreateFile's RootDirectory or
 * by the path of the directory judged.
 */
#include <errno.h>

#include "fs.h"

/* lockfs_fs_open: see fs.h. */
int
lockfs_fs_open(int at, const char *name, int how)
{
	(void)at;
	(void)name;
	(void)how;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_close: see fs.h.  No descriptor is ever given out. */
void
lockfs_fs_close(int fd)
{
	(void)fd;
}

/* lockfs_fs_info: see fs.h. */
int
lockfs_fs_info(int fd, struct lockfs_fs_info *fi)
{
	(void)fd;
	(void)fi;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_info_at: see fs.h. */
int
lockfs_fs_info_at(int at, const char *name, int how,
    struct lockfs_fs_info *fi)
{
	(void)at;
	(void)name;
	(void)how;
	(void)fi;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_make_at: see fs.h. */
int
lockfs_fs_make_at(int at, const char *name, mode_t mode)
{
	(void)at;
	(void)name;
	(void)mode;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_link: see fs.h. */
int
lockfs_fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_unlink: see fs.h. */
int
lockfs_fs_unlink(const char *path)
{
	(void)path;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_mkdir: see fs.h. */
int
lockfs_fs_mkdir(const char *path)
{
	(void)path;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_rmdir: see fs.h. */
int
lockfs_fs_rmdir(const char *path)
{
	(void)path;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_unlink_at: see fs.h. */
int
lockfs_fs_unlink_at(int at, const char *name)
{
	(void)at;
	(void)name;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_rmdir_at: see fs.h. */
int
lockfs_fs_rmdir_at(int at, const char *name)
{
	(void)at;
	(void)name;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_may_remove_in: see fs.h. */
int
lockfs_fs_may_remove_in(const char *dir)
{
	(void)dir;
	errno = ENOSYS;
	return -1;
}

/*
 * Reading, writing, renaming, symbolic links and directory streams (the
 * rest of fs.h): not yet either; each fails with ENOSYS.
 */

/* lockfs_fs_reopen: see fs.h. */
int
lockfs_fs_reopen(int fd, int how)
{
	(void)fd;
	(void)how;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_read: see fs.h. */
ssize_t
lockfs_fs_read(int fd, void *buf, size_t size)
{
	(void)fd;
	(void)buf;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_write: see fs.h. */
ssize_t
lockfs_fs_write(int fd, const void *buf, size_t size)
{
	(void)fd;
	(void)buf;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_close_written: see fs.h. */
int
lockfs_fs_close_written(int fd)
{
	(void)fd;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_rename_at: see fs.h. */
int
lockfs_fs_rename_at(int at, const char *from, const char *to)
{
	(void)at;
	(void)from;
	(void)to;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_symlink: see fs.h. */
int
lockfs_fs_symlink(const char *target, const char *path)
{
	(void)target;
	(void)path;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_readlink_at: see fs.h. */
ssize_t
lockfs_fs_readlink_at(int at, const char *name, char *buf, size_t size)
{
	(void)at;
	(void)name;
	(void)buf;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_realpath: see fs.h. */
int
lockfs_fs_realpath(const char *path, char *out)
{
	(void)path;
	(void)out;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_dir_open: see fs.h. */
struct lockfs_fs_dir *
lockfs_fs_dir_open(const char *path)
{
	(void)path;
	errno = ENOSYS;
	return NULL;
}

/* lockfs_fs_dir_open_fd: see fs.h. */
struct lockfs_fs_dir *
lockfs_fs_dir_open_fd(int fd)
{
	(void)fd;
	errno = ENOSYS;
	return NULL;
}

/* lockfs_fs_dir_next: see fs.h.  No stream is ever given out. */
int
lockfs_fs_dir_next(struct lockfs_fs_dir *d, struct lockfs_fs_entry *e)
{
	(void)d;
	(void)e;
	errno = ENOSYS;
	return 0;
}

/* lockfs_fs_dir_rewind: see fs.h. */
void
lockfs_fs_dir_rewind(struct lockfs_fs_dir *d)
{
	(void)d;
}

/* lockfs_fs_dir_fd: see fs.h. */
int
lockfs_fs_dir_fd(struct lockfs_fs_dir *d)
{
	(void)d;
	errno = ENOSYS;
	return -1;
}

/* lockfs_fs_dir_close: see fs.h. */
void
lockfs_fs_dir_close(struct lockfs_fs_dir *d)
{
	(void)d;
}
