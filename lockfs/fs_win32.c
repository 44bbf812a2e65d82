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
