/*
 * os_unix.c: lockfs's OS layer (os.h) for Linux: process identity (start
 * times, owners, liveness) from /proc and kill(2), the thread id from
 * gettid, the boot id from /proc/sys/kernel/random/boot_id, the uid files
 * are made with from setfsuid, reopening a file through /proc/self/fd,
 * renames that replace nothing (renameat2), files made whole (O_TMPFILE,
 * linked through /proc/self/fd), directories read with getdents64(2), and
 * directory locks with flock(2).  The
 * one file of lockfs that knows these.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

/* Reads the whole of a small file into buf (NUL-terminated); -1 on error. */
static ssize_t
read_small_file(const char *file, char *buf, size_t size)
{
	ssize_t n = -1;
	int     fd, saved;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	do
		n = read(fd, buf, size - 1);
	while (n == -1 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* lockfs_os_pid: see os.h. */
pid_t
lockfs_os_pid(void)
{
	return getpid();
}

/* lockfs_gettid: see os.h. */
pid_t
lockfs_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * proc_start_time: the start time of process pid, in clock ticks since
 * boot, from /proc/PID/stat.  Returns 0 when it cannot be read (errno set
 * by the read, or left as it was when the text is not understood).
 */
static unsigned long long
proc_start_time(pid_t pid)
{
	char                file[64], buf[1024];
	char               *p;
	int                 field;
	unsigned long long  start = 0;

	snprintf(file, sizeof(file), "/proc/%ld/stat", (long)pid);
	if (read_small_file(file, buf, sizeof(buf)) <= 0)
		return 0;
	/* The command name is in parentheses and may hold anything. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	/* Fields after it start at 3 (state); starttime is field 22. */
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

/* What /proc/PID missing means: the process is gone (ESRCH), or hidden
 * from us (hidepid: EACCES); kill(2) with no signal tells which. */
static int
gone_or_hidden(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM ? EACCES : ESRCH;
}

/* lockfs_os_start_time: see os.h.  /proc/PID missing means gone, or
 * hidden from us (hidepid): kill(2) tells which. */
int
lockfs_os_start_time(pid_t pid, unsigned long long *start)
{
	int r = -1;

	if (pid <= 0) {
		errno = ESRCH;
		goto out;
	}
	errno = 0;
	if ((*start = proc_start_time(pid)) != 0)
		r = 0;
	else if (errno == 0)
		errno = EIO;            /* read, but not understood */
	else if (errno == ENOENT)
		errno = gone_or_hidden(pid);
out:
	return r;
}

/* lockfs_os_process_uid: see os.h.  /proc/PID missing means gone, or
 * hidden from us (hidepid): kill(2) tells which. */
int
lockfs_os_process_uid(pid_t pid, uid_t *uid)
{
	struct stat st;
	char        proc[32];
	int         r = -1;

	if (pid <= 0) {
		errno = ESRCH;
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/%ld", (long)pid);
	if (stat(proc, &st) == 0) {
		*uid = st.st_uid;
		r = 0;
	} else if (errno == ENOENT)
		errno = gone_or_hidden(pid);
out:
	return r;
}

/* lockfs_os_pid_liveness: see os.h.  kill(pid, 0) sends nothing; EPERM
 * means the process exists but is another user's. */
lb_liveness
lockfs_os_pid_liveness(pid_t pid)
{
	if (pid <= 0)
		return LB_HOLDER_UNKNOWN;
	if (kill(pid, 0) == 0 || errno == EPERM)
		return LB_HOLDER_ALIVE;
	return errno == ESRCH ? LB_HOLDER_DEAD : LB_HOLDER_UNKNOWN;
}

/* lockfs_os_boot_id: see os.h.  The boot id is a UUID; its first 8 hex
 * digits are kept. */
void
lockfs_os_boot_id(char *out, size_t size)
{
	char   buf[64];
	size_t i, j = 0;

	if (size == 0)
		return;
	if (read_small_file("/proc/sys/kernel/random/boot_id", buf,
	    sizeof(buf)) > 0)
		for (i = 0; buf[i] != '\0' && j < 8 && j + 1 < size; i++)
			if (isxdigit((unsigned char)buf[i]))
				out[j++] = (char)tolower((unsigned char)buf[i]);
	out[j] = '\0';
}

/* lockfs_os_hostname: see os.h.  Read whole, then cut to what fits
 * (gethostname(2) itself fails when the name does not fit). */
void
lockfs_os_hostname(char *out, size_t size)
{
	char name[HOST_NAME_MAX + 1];

	if (size == 0)
		return;
	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		snprintf(name, sizeof(name), "localhost");
	name[sizeof(name) - 1] = '\0';
	snprintf(out, size, "%s", name);
}

/* lockfs_os_files_uid: see os.h.  setfsuid(-1) changes nothing and tells
 * the current fsuid. */
uid_t
lockfs_os_files_uid(void)
{
	return (uid_t)setfsuid((uid_t)-1);
}

/* lockfs_os_files_creds: see os.h.  setfsgid(-1) tells the fsgid as
 * setfsuid(-1) the fsuid; getgroups reads the calling thread's groups
 * (the daemon sets them per thread, with the raw system call). */
int
lockfs_os_files_creds(uid_t *uid, gid_t *gid, gid_t *groups, int max)
{
	*uid = (uid_t)setfsuid((uid_t)-1);
	*gid = (gid_t)setfsgid((gid_t)-1);
	return getgroups(max, groups);
}

/* lockfs_os_files_access: see os.h.  faccessat2 with AT_EACCESS checks
 * with the thread's credentials as they are (fsuid, fsgid, groups), where
 * access(2) and faccessat without it take the real uid and gid; glibc's
 * faccessat would emulate it with the effective ids where the kernel
 * lacks it (before 5.8), so the system call is made here, and ENOSYS
 * told. */
int
lockfs_os_files_access(const char *file, int mode)
{
#ifdef SYS_faccessat2
	return (int)syscall(SYS_faccessat2, AT_FDCWD, file, mode,
	    AT_EACCESS | AT_SYMLINK_NOFOLLOW);
#else
	(void)file;
	(void)mode;
	errno = ENOSYS;
	return -1;
#endif
}

/* lockfs_os_reopen: see os.h.  Through /proc/self/fd/N, which is
 * missing (ENOENT) where /proc is not mounted. */
int
lockfs_os_reopen(int fd, int flags)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, flags);
}

/* lockfs_os_path_join: see os.h.  getcwd(3) for a relative path only;
 * POSIX leaves a leading "//" (not "///") to the system, and Python
 * keeps it: it is then the root.  Every path names a file here. */
int
lockfs_os_path_join(const char *path, char *out, size_t size, size_t *root,
    const char **why)
{
	char cwd[PATH_MAX];
	int  n, r = -1;

	*why = NULL;
	*root = 0;
	if (*path == '/') {
		n = snprintf(out, size, "%s", path);
		if (path[1] == '/' && path[2] != '/')
			*root = 1;
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			goto out;
		n = snprintf(out, size, "%s/%s", cwd, path);
	}
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lockfs_os_path_root: see os.h.  "/". */
size_t
lockfs_os_path_root(const char *abs)
{
	(void)abs;
	return 1;
}

/* lockfs_os_path_native: see os.h.  path itself: '/' is the separator. */
const char *
lockfs_os_path_native(const char *path, char *buf, size_t size)
{
	(void)buf;
	(void)size;
	return path;
}

/* lockfs_os_names_cmp: see os.h.  Byte by byte, the shorter first. */
int
lockfs_os_names_cmp(const char *a, int alen, const char *b, int blen)
{
	int r = memcmp(a, b, (size_t)(alen < blen ? alen : blen));

	return r != 0 ? r : alen - blen;
}

/* lockfs_os_sqlite_vfs: see os.h. */
const char *
lockfs_os_sqlite_vfs(void)
{
	return "unix";
}

/* lockfs_os_rename_noreplace: see os.h.  renameat2(2), Linux 3.15 on;
 * EINVAL from file systems without RENAME_NOREPLACE. */
int
lockfs_os_rename_noreplace(const char *from, const char *to)
{
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

/* lockfs_os_create_whole: see os.h.  An O_TMPFILE file in dir, linked as
 * path through /proc/self/fd (linkat(2) fails while path exists; no
 * AT_EMPTY_PATH, which needs a privilege). */
int
lockfs_os_create_whole(const char *dir, const char *path, const void *data,
    size_t len, mode_t mode)
{
	char    proc[64];
	ssize_t n;
	int     fd, r = -1, saved;

	if ((fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode)) == -1) {
		if (errno == EISDIR || errno == EINVAL || errno == ENOTSUP)
			errno = EOPNOTSUPP;     /* no O_TMPFILE here */
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	do
		n = write(fd, data, len);
	while (n == -1 && errno == EINTR);
	if (n >= 0 && (size_t)n != len)
		errno = EIO;
	else if (n >= 0 && linkat(AT_FDCWD, proc, AT_FDCWD, path,
	    AT_SYMLINK_FOLLOW) == 0)
		r = 0;
	else if (n >= 0 && errno == ENOENT && access(proc, F_OK) != 0)
		errno = EOPNOTSUPP;             /* no /proc */
	saved = errno;
	close(fd);
	errno = saved;
	return r;
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

/* lockfs_os_dir_next: see os.h.  getdents64(2) into d->buf, refilled
 * when used up; a read that gives nothing is the end. */
const char *
lockfs_os_dir_next(struct lockfs_os_dir *d, unsigned char *type)
{
	struct dirent64 *de;
	ssize_t          n;

	for (;;) {
		if (d->pos >= d->len) {
			do
				n = getdents64(d->fd, d->buf, d->size);
			while (n == -1 && errno == EINTR);
			if (n <= 0) {
				if (n == 0)
					errno = 0;
				d->pos = d->len = 0;
				return NULL;
			}
			d->pos = 0;
			d->len = (size_t)n;
		}
		de = (struct dirent64 *)(void *)(d->buf + d->pos);
		d->pos += de->d_reclen;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (type != NULL)
			*type = de->d_type;
		return de->d_name;
	}
}

/* lockfs_dirlock_open: see os.h. */
int
lockfs_dirlock_open(struct lockfs_dirlock *dl, const char *dir)
{
	dl->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return dl->fd == -1 ? -1 : 0;
}

/* lockfs_dirlock_try: see os.h.  flock(2) locks belong to the open file
 * description, so a second open of the directory conflicts even in the
 * same process. */
int
lockfs_dirlock_try(struct lockfs_dirlock *dl)
{
	int r;

	while ((r = flock(dl->fd, LOCK_EX | LOCK_NB)) == -1 && errno == EINTR)
		;
	return r;
}

/* lockfs_dirlock_close: see os.h. */
void
lockfs_dirlock_close(struct lockfs_dirlock *dl)
{
	int saved = errno;

	if (dl->fd != -1)
		close(dl->fd);  /* also drops the flock */
	dl->fd = -1;
	errno = saved;
}
