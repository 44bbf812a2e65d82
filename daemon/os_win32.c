/*
 * os_win32.c: the daemon's OS layer (os.h) for Windows, not ported yet
 * (docs/WINDOWS.md, "The daemon on Windows"): each call fails with
 * ENOSYS, or answers what its contract lets an OS that cannot, and says
 * which here.  What can be answered truly already is (the time in UTC,
 * the daemon's own process needing no privileges dropped).  Not a
 * daemon that serves anyone: the peer and credential calls refuse, so
 * that no client's step ever runs with the daemon's rights.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fs.h"
#include "os.h"

/* lbd_os_privileges_drop: see os.h.  Nothing to drop: no supplementary
 * groups or capabilities to leave. */
int
lbd_os_privileges_drop(char *why, size_t size)
{
	(void)why;
	(void)size;
	return 0;
}

/* lbd_os_peer_ids: see os.h.  ENOSYS: the client's process
 * (GetNamedPipeClientProcessId) and user (its token's SID) are not asked
 * yet. */
int
lbd_os_peer_ids(uv_os_fd_t fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	(void)fd;
	(void)pid;
	(void)uid;
	(void)gid;
	errno = ENOSYS;
	return -1;
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

/* lbd_os_fs_groups_set: see os.h.  ENOSYS: no groups to set; acting as a
 * client is impersonation. */
int
lbd_os_fs_groups_set(size_t n, const gid_t *groups)
{
	(void)n;
	(void)groups;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_fs_ids_set: see os.h.  EPERM: the switch does not take
 * (impersonation is not built yet), so the caller refuses the step. */
int
lbd_os_fs_ids_set(uid_t uid, gid_t gid)
{
	(void)uid;
	(void)gid;
	errno = EPERM;
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

/* lbd_os_proc_exit_fd: see os.h.  ENOSYS: the caller looks with
 * lockfs_os_start_time now and then (a process handle waited for by the
 * thread pool is the design). */
int
lbd_os_proc_exit_fd(pid_t pid)
{
	(void)pid;
	errno = ENOSYS;
	return -1;
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

/* lbd_os_mkdir: see os.h. */
int
lbd_os_mkdir(const char *dir, mode_t mode)
{
	(void)dir;
	(void)mode;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_chmod: see os.h. */
int
lbd_os_chmod(const char *file, mode_t mode)
{
	(void)file;
	(void)mode;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_open_own: see os.h. */
int
lbd_os_open_own(const char *file, int how)
{
	(void)file;
	(void)how;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_file_size: see os.h. */
int
lbd_os_file_size(int fd, off_t *size)
{
	(void)fd;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_fchmod: see os.h. */
int
lbd_os_fchmod(int fd, mode_t mode)
{
	(void)fd;
	(void)mode;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_truncate: see os.h. */
int
lbd_os_truncate(int fd, off_t size)
{
	(void)fd;
	(void)size;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_read_at: see os.h. */
ssize_t
lbd_os_read_at(int fd, void *buf, size_t size, off_t at)
{
	(void)fd;
	(void)buf;
	(void)size;
	(void)at;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_write_at: see os.h. */
ssize_t
lbd_os_write_at(int fd, const void *buf, size_t size, off_t at)
{
	(void)fd;
	(void)buf;
	(void)size;
	(void)at;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_sync: see os.h. */
int
lbd_os_sync(int fd)
{
	(void)fd;
	errno = ENOSYS;
	return -1;
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
