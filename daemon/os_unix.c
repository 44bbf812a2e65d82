/*
 * os_unix.c: the daemon's OS layer (os.h) for Linux.  The one file of the
 * daemon that knows SO_PEERCRED and SO_PEERGROUPS, setfsuid and setfsgid,
 * the raw setgroups, capget and capset system calls, pidfd_open, /proc
 * (processes, descriptors, inotify's limit) and openat2, and the POSIX
 * calls the daemon makes for its own files, signals and limits.
 *
 * setfsuid and setfsgid are per thread already; setgroups is too in the
 * kernel, but glibc's wrapper changes every thread of the process (and
 * libuv may have threads), so the system call is made directly.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif

#include "os.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59        /* Linux 4.13 */
#endif

/* The system call that sets this thread's groups with 32-bit gids. */
#ifdef SYS_setgroups32
#define LBD_SYS_SETGROUPS SYS_setgroups32
#else
#define LBD_SYS_SETGROUPS SYS_setgroups
#endif

/* The capabilities a root daemon keeps (those of its systemd unit): the
 * kernel takes them from the effective set while the fsuid is a
 * client's; any other one would still apply to that client's steps,
 * CAP_SYS_PTRACE above all, which lets /proc/PID/cwd, /proc/PID/root and
 * /proc/PID/fd/N of anyone's process lead past directories the client
 * may not search. */
static const int caps_kept[] = {
	CAP_SETUID, CAP_SETGID, CAP_DAC_OVERRIDE, CAP_FOWNER
};

/*
 * Leaves the process only the capabilities of caps_kept, in its effective
 * and permitted sets (none inheritable): raw capget and capset, for every
 * thread there is (at start: one).  0, or -1 with errno.
 */
static int
caps_drop(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct   data[_LINUX_CAPABILITY_U32S_3];
	__u32                           keep[_LINUX_CAPABILITY_U32S_3];
	size_t                          i;

	memset(&hdr, 0, sizeof(hdr));
	memset(keep, 0, sizeof(keep));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return -1;
	for (i = 0; i < sizeof(caps_kept) / sizeof(caps_kept[0]); i++)
		keep[caps_kept[i] / 32] |= 1u << (caps_kept[i] % 32);
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		data[i].effective &= keep[i];
		data[i].permitted &= keep[i];
		data[i].inheritable = 0;
	}
	return (int)syscall(SYS_capset, &hdr, data);
}

/* lbd_os_privileges_drop: see os.h.  setgroups(0, NULL) through glibc,
 * for the whole process. */
int
lbd_os_privileges_drop(char *why, size_t size)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) == -1) {
		snprintf(why, size, "cannot drop the supplementary groups: %s",
		    strerror(errno));
		return -1;
	}
	if (caps_drop() == -1) {
		snprintf(why, size, "cannot drop the capabilities it does not "
		    "need: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* lbd_os_peer_ids: see os.h.  SO_PEERCRED. */
int
lbd_os_peer_ids(uv_os_fd_t fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred cred;
	socklen_t    len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -1;
	*pid = cred.pid;
	*uid = cred.uid;
	*gid = cred.gid;
	return 0;
}

/* lbd_os_peer_groups: see os.h.  SO_PEERGROUPS (Linux 4.13), asked again
 * with room for as many as it says there are. */
int
lbd_os_peer_groups(uv_os_fd_t fd, size_t max, gid_t **groups)
{
	socklen_t  len = 64 * sizeof(gid_t);
	gid_t     *more;
	int        n = -1, saved;

	*groups = NULL;
	for (;;) {
		if ((more = realloc(*groups, len)) == NULL)
			goto out;
		*groups = more;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, *groups,
		    &len) == 0) {
			n = (int)(len / sizeof(gid_t));
			break;
		}
		if (errno != ERANGE || len > max * sizeof(gid_t))
			break;
	}
out:
	if (n == -1) {
		saved = errno;
		free(*groups);
		*groups = NULL;
		errno = saved;
	} else if ((size_t)n > max)
		n = (int)max;
	return n;
}

/* lbd_os_user_groups: see os.h.  getgrouplist of the passwd entry. */
int
lbd_os_user_groups(uid_t uid, gid_t gid, size_t max, gid_t **groups)
{
	struct passwd pw, *pwp = NULL;
	char          buf[1024];
	int           n = 0;

	*groups = NULL;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return 0;
	if ((*groups = malloc(max * sizeof(gid_t))) == NULL)
		return -1;
	n = (int)max;
	if (getgrouplist(pw.pw_name, gid, *groups, &n) == -1)
		n = 0;          /* more than the maximum: none */
	return n;
}

/* lbd_os_user_gid: see os.h.  The passwd entry's. */
int
lbd_os_user_gid(uid_t uid, gid_t *gid)
{
	struct passwd pw, *pwp = NULL;
	char          buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return -1;
	*gid = pw.pw_gid;
	return 0;
}

/* lbd_os_fs_groups_set: see os.h. */
int
lbd_os_fs_groups_set(size_t n, const gid_t *groups)
{
	return (int)syscall(LBD_SYS_SETGROUPS, n, groups);
}

/* lbd_os_fs_ids_set: see os.h.  setfsuid reports the previous value;
 * asking again tells whether the switch took. */
int
lbd_os_fs_ids_set(uid_t uid, gid_t gid)
{
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid ||
	    (gid_t)setfsgid((gid_t)-1) != gid) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* lbd_os_fs_ids_restore: see os.h. */
void
lbd_os_fs_ids_restore(uid_t uid, gid_t gid)
{
	int saved = errno;

	setfsuid(uid);
	setfsgid(gid);
	errno = saved;
}

/* A process's exit watched: its pidfd, polled by the loop. */
struct lbd_os_proc_watch {
	uv_poll_t poll;
	int       fd;
	void    (*exited)(void *arg);
	void     *arg;
};

/* The pidfd is readable: the process exited. */
static void
proc_polled(uv_poll_t *p, int status, int events)
{
	struct lbd_os_proc_watch *w = p->data;

	(void)status;
	(void)events;
	uv_poll_stop(p);
	w->exited(w->arg);
}

/* Frees a watch once libuv is done with its handle. */
static void
proc_watch_free(uv_handle_t *h)
{
	free(h->data);
}

/* lbd_os_proc_watch: see os.h.  A pidfd (Linux 5.3), taken before the
 * start time is compared (a pidfd names one process: the pid's reuse
 * after that cannot mislead it). */
struct lbd_os_proc_watch *
lbd_os_proc_watch(uv_loop_t *loop, pid_t pid, unsigned long long start,
    void (*exited)(void *arg), void *arg)
{
	struct lbd_os_proc_watch *w = NULL, *r = NULL;
	struct lockfs_owner       o;
	int                       fd = -1, saved;

#ifdef SYS_pidfd_open
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
#endif
	if (fd == -1)
		goto out;
	if (lockfs_owner_of_pid(&o, pid, 0) == -1 || o.start != start) {
		errno = ESRCH;
		goto out;
	}
	if ((w = malloc(sizeof(*w))) == NULL)
		goto out;
	if (uv_poll_init(loop, &w->poll, fd) != 0) {
		errno = EINVAL;
		goto out;
	}
	w->fd = fd;
	w->exited = exited;
	w->arg = arg;
	w->poll.data = w;
	uv_poll_start(&w->poll, UV_READABLE, proc_polled);
	r = w;
	w = NULL;
	fd = -1;
out:
	saved = errno;
	free(w);
	if (fd != -1)
		close(fd);
	errno = saved;
	return r;
}

/* lbd_os_proc_unwatch: see os.h.  The handle closed (libuv polls it no
 * more), then the pidfd; the memory freed at the handle's close. */
void
lbd_os_proc_unwatch(struct lbd_os_proc_watch *w)
{
	int saved = errno;

	if (w != NULL) {
		uv_close((uv_handle_t *)&w->poll, proc_watch_free);
		close(w->fd);
	}
	errno = saved;
}

/* lbd_os_signals_take: see os.h.  Nothing to ready. */
const struct lbd_os_signal *
lbd_os_signals_take(size_t *n)
{
	static const struct lbd_os_signal signals[] = {
		{ SIGTERM, LBD_OS_SIGNAL_STOP },
		{ SIGINT,  LBD_OS_SIGNAL_STOP },
		{ SIGHUP,  LBD_OS_SIGNAL_RELOAD },
		{ SIGUSR1, LBD_OS_SIGNAL_DEBUG },
	};

	*n = sizeof(signals) / sizeof(signals[0]);
	return signals;
}

/* lbd_os_fds_open: see os.h.  The entries of /proc/self/fd. */
int
lbd_os_fds_open(void)
{
	struct dirent *de;
	DIR           *dir;
	int            n = 0;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1;           /* without the directory's own */
}

/* lbd_os_fs_watches_max: see os.h. */
unsigned long
lbd_os_fs_watches_max(void)
{
	unsigned long kernel = 0;
	FILE         *f;

	if ((f = fopen("/proc/sys/fs/inotify/max_user_watches", "re")) !=
	    NULL) {
		if (fscanf(f, "%lu", &kernel) != 1)
			kernel = 0;
		fclose(f);
	}
	return kernel;
}

/* lbd_os_path_in_own_proc: see os.h.  /proc/N is the daemon's own when
 * N is one of its threads (/proc/self/task/N exists). */
int
lbd_os_path_in_own_proc(const char *abs)
{
	static const char *const selves[] = { "self", "thread-self" };
	const char  *p, *end;
	char         task[64];
	struct stat  st;
	size_t       i, n;

	if (strncmp(abs, "/proc/", 6) != 0)
		return 0;
	p = abs + 6;
	n = strcspn(p, "/");
	for (i = 0; i < sizeof(selves) / sizeof(selves[0]); i++)
		if (n == strlen(selves[i]) && memcmp(p, selves[i], n) == 0)
			return 1;
	if (n == 0 || n > 10 || strspn(p, "0123456789") != n)
		return 0;
	end = p + n;
	snprintf(task, sizeof(task), "/proc/self/task/%.*s", (int)(end - p),
	    p);
	return stat(task, &st) == 0;
}

/* lbd_os_path_through_magic_link: see os.h.  openat2 with
 * RESOLVE_NO_MAGICLINKS (Linux 5.6) fails with ELOOP on either. */
int
lbd_os_path_through_magic_link(const char *file)
{
#if defined(SYS_openat2) && defined(RESOLVE_NO_MAGICLINKS)
	struct open_how how;
	int             fd, e = 0;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_NO_MAGICLINKS;
	if ((fd = (int)syscall(SYS_openat2, AT_FDCWD, file, &how,
	    sizeof(how))) == -1)
		e = errno;
	if (fd != -1)
		close(fd);
	return e == ELOOP;
#else
	(void)file;
	return 0;
#endif
}

/* lbd_os_fd_path: see os.h.  /proc/self/fd/N, made without a system
 * call. */
int
lbd_os_fd_path(int fd, char *out, size_t size)
{
	int n = snprintf(out, size, "/proc/self/fd/%d", fd);

	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* lbd_os_euid: see os.h.  geteuid(2). */
uid_t
lbd_os_euid(void)
{
	return geteuid();
}

/* lbd_os_egid: see os.h.  getegid(2). */
gid_t
lbd_os_egid(void)
{
	return getegid();
}

/* lbd_os_gmtime: see os.h.  gmtime_r(3). */
void
lbd_os_gmtime(time_t t, struct tm *tm)
{
	gmtime_r(&t, tm);
}

/* lbd_os_umask: see os.h.  umask(2). */
mode_t
lbd_os_umask(mode_t mask)
{
	return umask(mask);
}

/* lbd_os_sigpipe_ignore: see os.h.  signal(2): SIG_IGN. */
void
lbd_os_sigpipe_ignore(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/* lbd_os_mkdir: see os.h.  mkdir(2). */
int
lbd_os_mkdir(const char *dir, mode_t mode)
{
	return mkdir(dir, mode);
}

/* lbd_os_chmod: see os.h.  chmod(2). */
int
lbd_os_chmod(const char *file, mode_t mode)
{
	return chmod(file, mode);
}

/* lbd_os_open_own: see os.h.  open(2), O_NOFOLLOW. */
int
lbd_os_open_own(const char *file, int how)
{
	int flags = O_CLOEXEC | O_NOFOLLOW | O_CREAT;

	flags |= how == LBD_OS_REWRITE ? O_WRONLY | O_TRUNC : O_RDWR;
	return open(file, flags, 0600);
}

/* lbd_os_file_size: see os.h.  fstat(2). */
int
lbd_os_file_size(int fd, off_t *size)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	*size = st.st_size;
	return 0;
}

/* lbd_os_fchmod: see os.h.  fchmod(2). */
int
lbd_os_fchmod(int fd, mode_t mode)
{
	return fchmod(fd, mode);
}

/* lbd_os_truncate: see os.h.  ftruncate(2). */
int
lbd_os_truncate(int fd, off_t size)
{
	return ftruncate(fd, size);
}

/* lbd_os_read_at: see os.h.  pread(2). */
ssize_t
lbd_os_read_at(int fd, void *buf, size_t size, off_t at)
{
	return pread(fd, buf, size, at);
}

/* lbd_os_write_at: see os.h.  pwrite(2). */
ssize_t
lbd_os_write_at(int fd, const void *buf, size_t size, off_t at)
{
	return pwrite(fd, buf, size, at);
}

/* lbd_os_sync: see os.h.  fsync(2). */
int
lbd_os_sync(int fd)
{
	return fsync(fd);
}

/* lbd_os_sync_dir: see os.h.  open(2) and fsync(2) of the directory. */
void
lbd_os_sync_dir(const char *dir)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
}

/* lbd_os_dir_adopt: see os.h.  fdopendir(3): the stream is a DIR. */
struct lbd_os_dir *
lbd_os_dir_adopt(int fd)
{
	return (struct lbd_os_dir *)fdopendir(fd);
}

/* lbd_os_dir_next: see os.h.  readdir(3). */
const char *
lbd_os_dir_next(struct lbd_os_dir *d)
{
	struct dirent *de = readdir((DIR *)d);

	return de != NULL ? de->d_name : NULL;
}

/* lbd_os_dir_close: see os.h.  closedir(3). */
void
lbd_os_dir_close(struct lbd_os_dir *d)
{
	int saved = errno;

	if (d != NULL)
		closedir((DIR *)d);
	errno = saved;
}

/* lbd_os_events_waiting: see os.h.  poll(2), not waiting. */
int
lbd_os_events_waiting(int fd)
{
	struct pollfd p;

	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) != 0;
}

/* lbd_os_fds_limit: see os.h.  getrlimit(2) and setrlimit(2) of
 * RLIMIT_NOFILE. */
int
lbd_os_fds_limit(unsigned long long need, unsigned long long *limit)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > need ? (rlim_t)need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	*limit = (unsigned long long)rl.rlim_cur;
	return 1;
}

/* lbd_os_path_is_relative: see os.h. */
int
lbd_os_path_is_relative(const char *path)
{
	return path[0] != '/';
}

/* lbd_os_peer_user: see os.h. 0: Linux numbers its users (SO_PEERCRED's
 * uid is the user); no token. */
int
lbd_os_peer_user(uv_os_fd_t fd, pid_t pid, char *user,
    struct lbd_os_token **token, char *why, size_t size)
{
	(void)fd;
	(void)pid;
	(void)user;
	(void)why;
	(void)size;
	*token = NULL;
	return 0;
}

/* lbd_os_proc_user: see os.h. 0: ask lockfs_os_process_uid. */
int
lbd_os_proc_user(pid_t pid, char *user)
{
	(void)pid;
	(void)user;
	return 0;
}

/* lbd_os_token_dup: see os.h.  No tokens here (lbd_os_peer_user makes
 * none): ENOSYS. */
struct lbd_os_token *
lbd_os_token_dup(const struct lbd_os_token *token)
{
	(void)token;
	errno = ENOSYS;
	return NULL;
}

/* lbd_os_token_groups: see os.h.  No tokens here: none. */
size_t
lbd_os_token_groups(const struct lbd_os_token *token, gid_t *words)
{
	(void)token;
	(void)words;
	return 0;
}

/* lbd_os_token_free: see os.h.  No tokens here: nothing to free. */
void
lbd_os_token_free(struct lbd_os_token *token)
{
	(void)token;
}

/* lbd_os_token_enter: see os.h.  No tokens here: ENOSYS. */
int
lbd_os_token_enter(const struct lbd_os_token *token)
{
	(void)token;
	errno = ENOSYS;
	return -1;
}

/* lbd_os_token_leave: see os.h.  Nothing was entered. */
void
lbd_os_token_leave(void)
{
}

/* lbd_os_token_user: see os.h.  "": no tokens here. */
int
lbd_os_token_user(char *user)
{
	user[0] = '\0';
	return 0;
}

/* lbd_os_files_uid_of: see os.h.  The uid itself (setfsuid's). */
uid_t
lbd_os_files_uid_of(uid_t uid)
{
	return uid;
}

/* lbd_os_users_by_token: see os.h. 0: uids. */
int
lbd_os_users_by_token(void)
{
	return 0;
}
