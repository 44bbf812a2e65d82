/*
 * check_os.c: the OS layers, each call against what the system really
 * does: lockfs's (lockfs/os.h), the Unix part of its contract (process
 * owners, thread ids, pid reuse, boot id, the uid files are made with,
 * reopening, files made whole, directory locks; the part every OS keeps
 * is in check_lockfs_os) and the daemon's
 * (daemon/os.h: peer credentials, taking on a user's file-system
 * credentials and giving them back, process exit descriptors, the
 * daemon's own /proc, the descriptor count and limit, the daemon's own
 * files and directories).  The credential tests need root and user nobody;
 * without root they say so and pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "fs.h"
#include "lockfs.h"
#include "../daemon/os.h"
#include "testlib.h"

/* ------------------------------------------------------------------ */
/* Process identity.                                                    */

/* Whose a process is: ours for us, root's for init (pid 1), nobody's
 * for a process of nobody's as seen by nobody; none for a pid that has
 * exited and been reaped, or one that is no pid at all. */
static void
process_uid_as_nobody(void *arg, char *why, size_t size)
{
	uid_t uid = 12345;

	(void)arg;
	TL_EXPECT(lockfs_os_process_uid(getpid(), &uid), 0);
	TL_EXPECT(uid, geteuid());
	uid = 12345;
	TL_EXPECT(lockfs_os_process_uid(1, &uid), 0);
	TL_EXPECT(uid, 0);
}

START_TEST(process_uid)
{
	uid_t uid = 12345;

	ck_assert_int_eq(lockfs_os_process_uid(getpid(), &uid), 0);
	ck_assert_int_eq(uid, geteuid());
	uid = 12345;
	ck_assert_int_eq(lockfs_os_process_uid(1, &uid), 0);
	ck_assert_int_eq(uid, 0);
	errno = 0;
	ck_assert_int_eq(lockfs_os_process_uid(tl_dead_pid(), &uid), -1);
	ck_assert_int_eq(errno, ESRCH);
	errno = 0;
	ck_assert_int_eq(lockfs_os_process_uid(0, &uid), -1);
	ck_assert_int_eq(errno, ESRCH);
	errno = 0;
	ck_assert_int_eq(lockfs_os_process_uid(-1, &uid), -1);
	ck_assert_int_eq(errno, ESRCH);
	if (geteuid() == 0)
		tl_in_child(TL_AS_NOBODY, process_uid_as_nobody, NULL);
}
END_TEST

/* As nobody, the process of another user (init, pid 1) is alive: a
 * process the caller may not signal still exists. */
static void
other_users_pid_check(void *arg, char *why, size_t size)
{
	(void)arg;
	if (getuid() == 0) {
		snprintf(why, size, TL_SKIP "not run as nobody");
		return;
	}
	TL_EXPECT(lockfs_os_pid_liveness(1), LB_HOLDER_ALIVE);
}

START_TEST(other_users_pid_alive)
{
	if (geteuid() != 0) {
		printf("other_users_pid_alive: " TL_SKIP "needs root\n");
		return;
	}
	tl_in_child(TL_AS_NOBODY, other_users_pid_check, NULL);
}
END_TEST

/* A holder naming a live pid but another start time is another process
 * that had the pid before (reused): dead.  With the right start time,
 * alive. */
START_TEST(reused_pid_not_same)
{
	struct lockfs_holder h;
	unsigned long long   start = 0;
	pid_t                pid = tl_sleeper_start();

	ck_assert_int_eq(lockfs_os_start_time(pid, &start), 0);
	lockfs_holder_clear(&h);
	snprintf(h.host, sizeof(h.host), "%s", lockfs_hostname());
	h.pid = pid;
	h.start = start;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);
	h.start = start + 1;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	h.start = start - 1;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	tl_kill(pid);
	h.start = start;
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
}
END_TEST

/* Our own pid and thread ids: the main thread's id is the pid, another
 * thread's is not, and a forked child's pid is its own. */
static void *
tid_of_thread(void *arg)
{
	*(pid_t *)arg = lockfs_gettid();
	return NULL;
}

START_TEST(own_pid_and_tid)
{
	pthread_t t;
	pid_t     other = 0, child;
	int       status;

	ck_assert_int_eq(lockfs_os_pid(), getpid());
	ck_assert_int_eq(lockfs_gettid(), getpid());   /* the main thread */
	ck_assert_int_eq(pthread_create(&t, NULL, tid_of_thread, &other), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert(other > 0);
	ck_assert_int_ne(other, getpid());
	if ((child = fork()) == 0)
		_exit(lockfs_os_pid() == getpid() &&
		    lockfs_os_pid() != getppid() ? 0 : 1);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* The boot id: 8 lower-case hex digits, the same each time; the host
 * name: not empty, and what gethostname says. */
START_TEST(boot_id_and_host)
{
	char a[9], b[9], small[4], host[LOCKFS_HOST_MAX], want[LOCKFS_HOST_MAX];
	size_t i;

	lockfs_os_boot_id(a, sizeof(a));
	lockfs_os_boot_id(b, sizeof(b));
	ck_assert_uint_eq(strlen(a), 8);
	for (i = 0; i < 8; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
	ck_assert_str_eq(a, b);
	lockfs_os_boot_id(small, sizeof(small));        /* truncated */
	ck_assert_uint_eq(strlen(small), 3);
	ck_assert(strncmp(small, a, 3) == 0);
	lockfs_os_hostname(host, sizeof(host));
	ck_assert_int_eq(gethostname(want, sizeof(want)), 0);
	ck_assert_str_eq(host, want);
	ck_assert_str_eq(lockfs_hostname(), want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Files and directory locks.                                           */

/* The reopened descriptor is the file the first one names, even after
 * its name has gone to another file. */
START_TEST(reopen_same_file)
{
	struct tl_place p;
	char            moved[PATH_MAX + 8], buf[16];
	int             fd, rfd;
	ssize_t         n;

	tl_place_make(&p, "file");
	tl_write_text(p.path, "first");
	ck_assert((fd = open(p.path, O_PATH | O_CLOEXEC)) != -1);
	snprintf(moved, sizeof(moved), "%s.old", p.path);
	ck_assert_int_eq(rename(p.path, moved), 0);
	tl_write_text(p.path, "second");
	ck_assert((rfd = lockfs_os_reopen(fd, O_RDONLY | O_CLOEXEC)) != -1);
	ck_assert((n = read(rfd, buf, sizeof(buf) - 1)) > 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "first");
	close(rfd);
	close(fd);
}
END_TEST

/* Entries of dir other than "." and "..". */
static int
entries(const char *dir)
{
	struct dirent *de;
	DIR           *d = opendir(dir);
	int            n = 0;

	ck_assert(d != NULL);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* A file made whole: there with its contents and mode; EEXIST when its
 * name is taken, which keeps what it holds; nothing else left in its
 * directory either way. */
START_TEST(create_whole_named_once_written)
{
	struct tl_place p;
	struct stat     st;
	char            buf[16];
	mode_t          mask = umask(022);

	umask(mask);
	tl_place_make(&p, "pid");
	ck_assert_int_eq(lockfs_os_create_whole(p.dir, p.path, "1234\n", 5,
	    0644), 0);
	ck_assert_int_eq(tl_read_text(p.path, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "1234\n");
	ck_assert_int_eq(stat(p.path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644 & ~mask);
	errno = 0;
	ck_assert_int_eq(lockfs_os_create_whole(p.dir, p.path, "99\n", 3,
	    0644), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(tl_read_text(p.path, buf, sizeof(buf)), 5);
	ck_assert_int_eq(entries(p.dir), 1);
	tl_place_remove(p.dir);
}
END_TEST

/* A directory's lock excludes a second open of the directory, in this
 * process and in another, until it is dropped. */
START_TEST(dirlock_excludes)
{
	struct tl_place       p;
	struct lockfs_dirlock a = { -1 }, b = { -1 };
	pid_t                 child;
	int                   status;

	tl_place_make(&p, "x");
	ck_assert_int_eq(lockfs_dirlock_open(&a, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_open(&b, p.dir), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);
	ck_assert_int_eq(lockfs_dirlock_try(&a), 0);    /* held through a */
	errno = 0;
	ck_assert_int_eq(lockfs_dirlock_try(&b), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	if ((child = fork()) == 0) {
		struct lockfs_dirlock c = { -1 };

		_exit(lockfs_dirlock_open(&c, p.dir) == 0 &&
		    lockfs_dirlock_try(&c) == -1 && errno == EWOULDBLOCK ?
		    0 : 1);
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	errno = EXDEV;
	lockfs_dirlock_close(&a);
	ck_assert_int_eq(errno, EXDEV);                 /* kept */
	ck_assert_int_eq(a.fd, -1);
	lockfs_dirlock_close(&a);                       /* again: nothing */
	ck_assert_int_eq(lockfs_dirlock_try(&b), 0);
	lockfs_dirlock_close(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lockfs's file-system layer (fs.h).                                  */

/* Opens follow no symbolic link unless asked: a link is refused (ELOOP)
 * when opened to read, is no directory (ENOTDIR) when opened as one, and
 * is named itself when only named; followed when asked.  A file is no
 * directory; nothing there is ENOENT. */
START_TEST(fs_open_follows_no_link)
{
	struct tl_place       p;
	struct lockfs_fs_info fi;
	char                  file[PATH_MAX + 8], link[PATH_MAX + 8];
	char                  dlink[PATH_MAX + 8];
	int                   fd;

	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_path_join(link, sizeof(link), p.dir, "link");
	tl_path_join(dlink, sizeof(dlink), p.dir, "dlink");
	tl_write_text(file, "x");
	ck_assert_int_eq(symlink(file, link), 0);
	ck_assert_int_eq(symlink(p.dir, dlink), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, link, LOCKFS_FS_READ),
	    -1);
	ck_assert_int_eq(errno, ELOOP);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, dlink, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, dlink, LOCKFS_FS_DIR),
	    -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, link, 0)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &fi), 0);
	ck_assert_int_eq(fi.type, LOCKFS_FS_SYMLINK);
	lockfs_fs_close(fd);
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, dlink, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR | LOCKFS_FS_FOLLOW)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &fi), 0);
	ck_assert_int_eq(fi.type, LOCKFS_FS_DIRECTORY);
	lockfs_fs_close(fd);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_DIR),
	    -1);
	ck_assert_int_eq(errno, ENOTDIR);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(LOCKFS_FS_CWD, p.path, 0), -1);
	ck_assert_int_eq(errno, ENOENT);
	errno = EXDEV;
	lockfs_fs_close(-1);
	ck_assert_int_eq(errno, EXDEV);                 /* kept */
	tl_place_remove(p.dir);
}
END_TEST

/* A file's identity and owner are the same through a descriptor and by
 * name (relative to a directory or not); a directory counts its
 * subdirectories in its links; a link is looked at itself unless
 * followed. */
START_TEST(fs_info_identity)
{
	struct tl_place       p;
	struct lockfs_fs_info a, b, c;
	char                  file[PATH_MAX + 8], link[PATH_MAX + 8];
	char                  sub[PATH_MAX + 8];
	int                   dfd, fd;

	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_path_join(link, sizeof(link), p.dir, "link");
	tl_path_join(sub, sizeof(sub), p.dir, "sub");
	tl_write_text(file, "x");
	ck_assert_int_eq(symlink(file, link), 0);
	tl_mkdir(sub);
	ck_assert((dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir,
	    LOCKFS_FS_DIR)) != -1);
	ck_assert((fd = lockfs_fs_open(dfd, "file", LOCKFS_FS_READ)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &a), 0);
	ck_assert_int_eq(lockfs_fs_info_at(dfd, "file", 0, &b), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, link,
	    LOCKFS_FS_FOLLOW, &c), 0);
	ck_assert(a.dev == b.dev && a.ino == b.ino && a.dev == c.dev &&
	    a.ino == c.ino);
	ck_assert_int_eq(a.type, LOCKFS_FS_FILE);
	ck_assert_int_eq(a.uid, geteuid());
	ck_assert_int_eq(a.nlink, 1);
	ck_assert_int_eq(lockfs_fs_info_at(dfd, "link", 0, &c), 0);
	ck_assert_int_eq(c.type, LOCKFS_FS_SYMLINK);
	ck_assert(c.ino != a.ino);
	ck_assert_int_eq(lockfs_fs_info(dfd, &c), 0);
	ck_assert_int_eq(c.type, LOCKFS_FS_DIRECTORY);
	ck_assert(c.nlink <= 1 || c.nlink == 3);        /* ., .., sub */
	errno = 0;
	ck_assert_int_eq(lockfs_fs_info_at(dfd, "none", 0, &c), -1);
	ck_assert_int_eq(errno, ENOENT);
	lockfs_fs_close(fd);
	lockfs_fs_close(dfd);
	tl_place_remove(p.dir);
}
END_TEST

/* Files and directories made and removed: a file made only where nothing
 * is (a dangling link there is neither followed nor reused), with its
 * mode; a second name by link, which must be free; removals that take a
 * link away, never what it points to, and leave a directory that is not
 * empty. */
START_TEST(fs_make_and_remove)
{
	struct tl_place       p;
	struct lockfs_fs_info a, b;
	char                  file[PATH_MAX + 8], other[PATH_MAX + 8];
	char                  dangling[PATH_MAX + 8], target[PATH_MAX + 8];
	char                  sub[PATH_MAX + 8];
	mode_t                mask = umask(022);
	int                   dfd, fd;

	umask(mask);
	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_path_join(other, sizeof(other), p.dir, "other");
	tl_path_join(dangling, sizeof(dangling), p.dir, "dangling");
	tl_path_join(target, sizeof(target), p.dir, "target");
	tl_path_join(sub, sizeof(sub), p.dir, "sub");
	ck_assert((dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir,
	    LOCKFS_FS_DIR)) != -1);
	ck_assert_int_eq(lockfs_fs_make_at(dfd, "file", 0644), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &a), 0);
	ck_assert_int_eq(a.type, LOCKFS_FS_FILE);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_make_at(LOCKFS_FS_CWD, file, 0644), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(symlink(target, dangling), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_make_at(dfd, "dangling", 0644), -1);
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(dfd, "dangling", LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_NONBLOCK), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert(!tl_exists(target));
	ck_assert((fd = lockfs_fs_open(dfd, "new", LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &b), 0);
	ck_assert_int_eq(b.type, LOCKFS_FS_FILE);
	lockfs_fs_close(fd);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_open(dfd, "new", LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lockfs_fs_link(file, other), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, other, 0, &b), 0);
	ck_assert(a.dev == b.dev && a.ino == b.ino && b.nlink == 2);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_link(file, other), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lockfs_fs_unlink(other), 0);
	ck_assert_int_eq(lockfs_fs_unlink_at(dfd, "dangling"), 0);
	ck_assert(!tl_exists(dangling));
	ck_assert_int_eq(lockfs_fs_mkdir(sub), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_mkdir(sub), -1);
	ck_assert_int_eq(errno, EEXIST);
	tl_write_text(target, "x");
	ck_assert_int_eq(lockfs_fs_rmdir_at(dfd, "sub"), 0);
	ck_assert_int_eq(lockfs_fs_mkdir(sub), 0);
	ck_assert_int_eq(lockfs_fs_rmdir(sub), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_rmdir_at(LOCKFS_FS_CWD, p.dir), -1);
	ck_assert(errno == ENOTEMPTY || errno == EEXIST);
	ck_assert_int_eq(lockfs_fs_unlink(file), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_unlink(file), -1);
	ck_assert_int_eq(errno, ENOENT);
	lockfs_fs_close(dfd);
	tl_place_remove(p.dir);
}
END_TEST

/* What a file keeps besides its identity: its permission bits (a sticky
 * directory's, a file others may write) and its times, as stat(2) tells
 * them. */
START_TEST(fs_info_perm_and_times)
{
	struct tl_place       p;
	struct lockfs_fs_info fi;
	struct stat           st;
	char                  file[PATH_MAX + 8];

	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_write_text(file, "x");
	ck_assert_int_eq(chmod(file, 0622), 0);
	ck_assert_int_eq(chmod(p.dir, 01755), 0);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &fi), 0);
	ck_assert_int_eq(fi.perm, 0622);
	ck_assert(fi.perm & LOCKFS_FS_WGROUP && fi.perm & LOCKFS_FS_WOTHER);
	ck_assert_int_eq(lstat(file, &st), 0);
	ck_assert(fi.mtime.sec == st.st_mtim.tv_sec &&
	    fi.mtime.nsec == st.st_mtim.tv_nsec);
	ck_assert(fi.ctime.sec == st.st_ctim.tv_sec &&
	    fi.ctime.nsec == st.st_ctim.tv_nsec);
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, p.dir, 0, &fi), 0);
	ck_assert_int_eq(fi.perm, 01755);
	ck_assert(fi.perm & LOCKFS_FS_STICKY);
	ck_assert_int_eq(chmod(p.dir, 0755), 0);
	tl_place_remove(p.dir);
}
END_TEST

/* Symbolic links made (never over a name that is taken) and read, by
 * name and through a descriptor naming the link, cut to the room given;
 * a file is no link. */
START_TEST(fs_symlink_made_and_read)
{
	struct tl_place p;
	char            link[PATH_MAX + 8], file[PATH_MAX + 8], buf[16];
	int             fd;

	tl_place_make(&p, "x");
	tl_path_join(link, sizeof(link), p.dir, "link");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_write_text(file, "x");
	ck_assert_int_eq(lockfs_fs_symlink("no-such-target", link), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_symlink("other", link), -1);
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_symlink("other", file), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lockfs_fs_readlink_at(LOCKFS_FS_CWD, link, buf,
	    sizeof(buf)), 14);
	ck_assert_str_eq(buf, "no-such-target");
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, link, 0)) != -1);
	ck_assert_int_eq(lockfs_fs_readlink_at(fd, "", buf, 8), 7);
	ck_assert_str_eq(buf, "no-such");              /* cut */
	lockfs_fs_close(fd);
	errno = 0;
	ck_assert_int_eq(lockfs_fs_readlink_at(LOCKFS_FS_CWD, file, buf,
	    sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	tl_place_remove(p.dir);
}
END_TEST

/* Written, read back through a reopened descriptor and by name, and
 * renamed over another name at once, by path and relative to a
 * directory; a FIFO opened never blocking. */
START_TEST(fs_write_read_rename)
{
	struct tl_place       p;
	struct lockfs_fs_info a, b;
	char                  file[PATH_MAX + 8], other[PATH_MAX + 8];
	char                  fifo[PATH_MAX + 8], buf[16];
	int                   dfd, fd, rfd;

	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_path_join(other, sizeof(other), p.dir, "other");
	tl_path_join(fifo, sizeof(fifo), p.dir, "fifo");
	tl_write_text(other, "old");
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL)) != -1);
	ck_assert_int_eq(lockfs_fs_write(fd, "12345\n", 6), 6);
	ck_assert_int_eq(lockfs_fs_close_written(fd), 0);
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, file, 0)) != -1);
	ck_assert((rfd = lockfs_fs_reopen(fd, LOCKFS_FS_READ |
	    LOCKFS_FS_NONBLOCK | LOCKFS_FS_NOCTTY)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &a), 0);
	ck_assert_int_eq(lockfs_fs_info(rfd, &b), 0);
	ck_assert(a.dev == b.dev && a.ino == b.ino);
	ck_assert_int_eq(lockfs_fs_read(rfd, buf, sizeof(buf)), 6);
	ck_assert_int_eq(lockfs_fs_read(rfd, buf, sizeof(buf)), 0);
	ck_assert_int_eq(memcmp(buf, "12345\n", 6), 0);
	lockfs_fs_close(rfd);
	lockfs_fs_close(fd);
	ck_assert_int_eq(lockfs_fs_rename_at(LOCKFS_FS_CWD, file, other), 0);
	ck_assert(!tl_exists(file));
	ck_assert_int_eq(lockfs_fs_info_at(LOCKFS_FS_CWD, other, 0, &b), 0);
	ck_assert(a.dev == b.dev && a.ino == b.ino);
	ck_assert((dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir,
	    LOCKFS_FS_DIR)) != -1);
	ck_assert_int_eq(lockfs_fs_rename_at(dfd, "other", "file"), 0);
	ck_assert(tl_exists(file) && !tl_exists(other));
	errno = 0;
	ck_assert_int_eq(lockfs_fs_rename_at(dfd, "other", "file"), -1);
	ck_assert_int_eq(errno, ENOENT);
	lockfs_fs_close(dfd);
	ck_assert_int_eq(mkfifo(fifo, 0644), 0);
	ck_assert((fd = lockfs_fs_open(LOCKFS_FS_CWD, fifo, LOCKFS_FS_READ |
	    LOCKFS_FS_NONBLOCK | LOCKFS_FS_NOCTTY)) != -1);
	ck_assert_int_eq(lockfs_fs_info(fd, &a), 0);
	ck_assert_int_eq(a.type, LOCKFS_FS_OTHER);
	lockfs_fs_close(fd);
	tl_place_remove(p.dir);
}
END_TEST

/* A directory stream: every entry with its file number and type as the
 * directory tells them, "." and ".." too, again after a rewind, by path
 * and through a copy of a descriptor (which stays the caller's); the
 * stream's descriptor serves as a directory to look in. */
START_TEST(fs_dir_stream)
{
	struct tl_place        p;
	struct lockfs_fs_entry e;
	struct lockfs_fs_info  fi;
	struct lockfs_fs_dir  *d;
	char                   file[PATH_MAX + 8], sub[PATH_MAX + 8];
	int                    pass, seen, dots, dfd;

	tl_place_make(&p, "x");
	tl_path_join(file, sizeof(file), p.dir, "file");
	tl_path_join(sub, sizeof(sub), p.dir, "sub");
	tl_write_text(file, "x");
	tl_mkdir(sub);
	ck_assert((d = lockfs_fs_dir_open(p.dir)) != NULL);
	for (pass = 0; pass < 2; pass++) {
		seen = dots = 0;
		while (lockfs_fs_dir_next(d, &e) == 1) {
			if (strcmp(e.name, ".") == 0 ||
			    strcmp(e.name, "..") == 0) {
				dots++;
				continue;
			}
			ck_assert_int_eq(lockfs_fs_info_at(lockfs_fs_dir_fd(d),
			    e.name, 0, &fi), 0);
			ck_assert(e.ino == 0 || e.ino == fi.ino);
			if (strcmp(e.name, "file") == 0) {
				ck_assert(e.type == DT_REG ||
				    e.type == DT_UNKNOWN);
				seen |= 1;
			} else if (strcmp(e.name, "sub") == 0) {
				ck_assert(e.type == DT_DIR ||
				    e.type == DT_UNKNOWN);
				seen |= 2;
			} else
				ck_abort_msg("unexpected entry %s", e.name);
		}
		ck_assert_int_eq(seen, 3);
		ck_assert_int_eq(dots, 2);
		lockfs_fs_dir_rewind(d);
	}
	errno = EXDEV;
	lockfs_fs_dir_close(d);
	ck_assert_int_eq(errno, EXDEV);                 /* kept */
	lockfs_fs_dir_close(NULL);
	ck_assert((dfd = lockfs_fs_open(LOCKFS_FS_CWD, p.dir, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR)) != -1);
	ck_assert((d = lockfs_fs_dir_open_fd(dfd)) != NULL);
	ck_assert(lockfs_fs_dir_fd(d) != dfd);
	seen = 0;
	while (lockfs_fs_dir_next(d, &e) == 1)
		seen++;
	ck_assert_int_eq(seen, 4);
	lockfs_fs_dir_close(d);
	ck_assert_int_eq(lockfs_fs_info(dfd, &fi), 0);  /* still open */
	lockfs_fs_close(dfd);
	errno = 0;
	ck_assert(lockfs_fs_dir_open(file) == NULL);
	ck_assert_int_eq(errno, ENOTDIR);
	tl_place_remove(p.dir);
}
END_TEST

/* The file-system credentials' groups, more than a caller's buffer
 * holds: too many for max (EINVAL), all of them with room, and their
 * number alone with max 0 (what a caller sizes its buffer by). */
START_TEST(files_creds_many_groups)
{
	gid_t set[70], got[70], saved[70];
	uid_t uid;
	gid_t gid;
	int   i, nsaved;

	if (geteuid() != 0) {
		printf("files_creds_many_groups: " TL_SKIP "needs root\n");
		return;
	}
	ck_assert((nsaved = getgroups(70, saved)) >= 0);
	for (i = 0; i < 70; i++)
		set[i] = (gid_t)(5000 + i);
	ck_assert_int_eq(setgroups(70, set), 0);
	errno = 0;
	ck_assert_int_eq(lockfs_os_files_creds(&uid, &gid, got, 64), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(lockfs_os_files_creds(&uid, &gid, NULL, 0), 70);
	ck_assert_int_eq(lockfs_os_files_creds(&uid, &gid, got, 70), 70);
	ck_assert_int_eq(uid, 0);
	ck_assert(memcmp(set, got, sizeof(set)) == 0);
	ck_assert_int_eq(setgroups((size_t)nsaved, saved), 0);
}
END_TEST

/* Who may make and remove names in a directory: its owner, and not
 * nobody in root's 0755 directory. */
static void
may_remove_as_nobody(void *arg, char *why, size_t size)
{
	const char *dir = arg;

	errno = 0;
	TL_EXPECT(lockfs_fs_may_remove_in(dir), -1);
	TL_EXPECT(errno, EACCES);
}

START_TEST(fs_may_remove_in)
{
	struct tl_place p;

	tl_place_make(&p, "x");
	ck_assert_int_eq(lockfs_fs_may_remove_in(p.dir), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chmod(p.dir, 0755), 0);
		tl_in_child(TL_AS_NOBODY, may_remove_as_nobody, p.dir);
	}
	tl_place_remove(p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The daemon's: credentials.                                           */

/* The uid files are made with is the effective one until the switch,
 * nobody's during it, and ours again after it: a file made during it is
 * nobody's, and a directory only root may enter is closed to it. */
START_TEST(fs_ids_switch_and_back)
{
	struct tl_place p;
	char            file[PATH_MAX + 8], closed[PATH_MAX + 8];
	char            inside[2 * PATH_MAX];
	struct stat     st;
	int             fd, e;

	if (geteuid() != 0) {
		printf("fs_ids_switch_and_back: " TL_SKIP "needs root\n");
		return;
	}
	tl_place_make(&p, "made");
	ck_assert_int_eq(chmod(p.dir, 0777), 0);
	snprintf(closed, sizeof(closed), "%s/closed", p.dir);
	ck_assert_int_eq(mkdir(closed, 0700), 0);
	snprintf(inside, sizeof(inside), "%s/f", closed);
	tl_write_text(inside, "root's");
	snprintf(file, sizeof(file), "%s", p.path);

	ck_assert_int_eq(lockfs_os_files_uid(), geteuid());
	ck_assert_int_eq(lbd_os_fs_groups_set(0, NULL), 0);
	ck_assert_int_eq(lbd_os_fs_ids_set(TL_NOBODY, TL_NOBODY), 0);
	ck_assert_int_eq(lockfs_os_files_uid(), TL_NOBODY);
	ck_assert_int_eq(geteuid(), 0);                 /* only the fs ids */
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	e = errno;
	ck_assert_msg(fd != -1, "create as nobody: %s", strerror(e));
	close(fd);
	errno = 0;
	ck_assert_int_eq(open(inside, O_RDONLY | O_CLOEXEC), -1);
	ck_assert_int_eq(errno, EACCES);
	errno = EXDEV;
	lbd_os_fs_ids_restore(geteuid(), getegid());
	ck_assert_int_eq(errno, EXDEV);                 /* kept */

	ck_assert_int_eq(lockfs_os_files_uid(), geteuid());
	ck_assert_int_eq(lstat(file, &st), 0);
	ck_assert_int_eq(st.st_uid, TL_NOBODY);
	ck_assert_int_eq(st.st_gid, TL_NOBODY);
	ck_assert((fd = open(inside, O_RDONLY | O_CLOEXEC)) != -1);
	close(fd);
}
END_TEST

/* The groups taken on open a directory of that group to nobody, and are
 * the calling thread's only: the others keep theirs. */
struct groups_seen {
	gid_t gid;              /* the group to take on */
	int   opened;           /* the thread could open the directory */
	int   n_during;         /* its number of groups meanwhile */
	const char *dir;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int   stage;            /* 1: groups set; 2: may go back */
};

static void *
groups_thread(void *arg)
{
	struct groups_seen *g = arg;
	int                 fd;

	if (lbd_os_fs_groups_set(1, &g->gid) == 0 &&
	    lbd_os_fs_ids_set(TL_NOBODY, TL_NOBODY) == 0) {
		fd = open(g->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		g->opened = fd != -1;
		if (fd != -1)
			close(fd);
		g->n_during = getgroups(0, NULL);
	}
	pthread_mutex_lock(&g->mu);
	g->stage = 1;
	pthread_cond_broadcast(&g->cv);
	while (g->stage != 2)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	lbd_os_fs_ids_restore(geteuid(), getegid());
	lbd_os_fs_groups_set(0, NULL);
	return NULL;
}

START_TEST(fs_groups_per_thread)
{
	struct tl_place    p;
	struct groups_seen g;
	pthread_t          t;
	gid_t              before[64], during[64];
	int                nb, nd, fd;

	if (geteuid() != 0) {
		printf("fs_groups_per_thread: " TL_SKIP "needs root\n");
		return;
	}
	tl_place_make(&p, "x");
	ck_assert_int_eq(chmod(p.dir, 0755), 0);
	/* A directory for group 4321 only (no user or group has it). */
	ck_assert_int_eq(mkdir(p.path, 0070), 0);
	ck_assert_int_eq(chown(p.path, 0, 4321), 0);
	ck_assert_int_eq(chmod(p.path, 0070), 0);

	memset(&g, 0, sizeof(g));
	g.gid = 4321;
	g.dir = p.path;
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	ck_assert((nb = getgroups(64, before)) >= 0);
	ck_assert_int_eq(pthread_create(&t, NULL, groups_thread, &g), 0);
	pthread_mutex_lock(&g.mu);
	while (g.stage != 1)
		pthread_cond_wait(&g.cv, &g.mu);
	/* While the thread has group 4321, this one has its own. */
	nd = getgroups(64, during);
	g.stage = 2;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(g.opened, 1);
	ck_assert_int_eq(g.n_during, 1);
	ck_assert_int_eq(nd, nb);
	ck_assert(memcmp(before, during, (size_t)nb * sizeof(gid_t)) == 0);

	/* Without the group, nobody may not open it. */
	ck_assert_int_eq(lbd_os_fs_groups_set(0, NULL), 0);
	ck_assert_int_eq(lbd_os_fs_ids_set(TL_NOBODY, TL_NOBODY), 0);
	fd = open(p.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	lbd_os_fs_ids_restore(geteuid(), getegid());
	ck_assert_int_eq(fd, -1);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}
END_TEST

/* A user's groups from the user database: root's include gid 0 (its
 * primary group) and nothing past the maximum. */
START_TEST(user_groups_of_root)
{
	gid_t *groups = NULL;
	int    n, i, has0 = 0;

	ck_assert((n = lbd_os_user_groups(0, 0, 64, &groups)) > 0);
	for (i = 0; i < n; i++)
		has0 |= groups[i] == 0;
	ck_assert(has0);
	free(groups);
	/* A uid without an entry: none. */
	ck_assert_int_eq(lbd_os_user_groups(4000000000u, 4000000000u, 64,
	    &groups), 0);
	free(groups);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The daemon's: peers and processes.                                   */

/* The peer of one end of a socket pair is this process, with our ids
 * and our groups; as nobody, nobody's. */
static void
peer_check(void *arg, char *why, size_t size)
{
	gid_t *groups = NULL, mine[64];
	pid_t  pid = 0;
	uid_t  uid = 0;
	gid_t  gid = 0;
	int    sv[2], n, nm, i;

	(void)arg;
	TL_EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	TL_EXPECT(lbd_os_peer_ids(sv[0], &pid, &uid, &gid), 0);
	TL_EXPECT(pid, getpid());
	TL_EXPECT(uid, geteuid());
	TL_EXPECT(gid, getegid());
	n = lbd_os_peer_groups(sv[0], 64, &groups);
	nm = getgroups(64, mine);
	if (n == -1 && errno != ENOMEM) {
		snprintf(why, size, TL_SKIP "no peer groups here");
		goto out;
	}
	TL_EXPECT(n, nm);
	for (i = 0; i < n; i++)
		TL_EXPECT(groups[i], mine[i]);
out:
	free(groups);
	close(sv[0]);
	close(sv[1]);
}

START_TEST(peer_ids_and_groups)
{
	tl_in_child(0, peer_check, NULL);
	if (geteuid() == 0)
		tl_in_child(TL_AS_NOBODY, peer_check, NULL);
}
END_TEST

/* Counts the exits a watch told (lbd_os_proc_watch's callback). */
static void
exit_told(void *arg)
{
	(*(int *)arg)++;
}

/* Runs loop until *told is set or seconds have passed. */
static void
loop_until_told(uv_loop_t *loop, const int *told, double seconds)
{
	double until = tl_now() + seconds;

	while (*told == 0 && tl_now() < until) {
		uv_run(loop, UV_RUN_NOWAIT);
		tl_sleep(0.01);
	}
}

/* The watch of a live child tells nothing until it dies, then once; a
 * process of another start time, or none, is not watched (ESRCH). */
START_TEST(proc_watch_told_at_exit)
{
	struct lbd_os_proc_watch *w;
	struct lockfs_owner       o;
	uv_loop_t                 loop;
	pid_t                     pid = tl_sleeper_start();
	int                       told = 0;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(lockfs_owner_of_pid(&o, pid, 0), 0);
	if ((w = lbd_os_proc_watch(&loop, pid, o.start, exit_told,
	    &told)) == NULL) {
		ck_assert_int_eq(errno, ENOSYS);
		printf("proc_watch: " TL_SKIP "no such watches here\n");
		tl_kill(pid);
		goto out;
	}
	loop_until_told(&loop, &told, 0.1);
	ck_assert_int_eq(told, 0);
	tl_kill(pid);
	loop_until_told(&loop, &told, 10);
	ck_assert_int_eq(told, 1);
	lbd_os_proc_unwatch(w);
	pid = tl_sleeper_start();
	ck_assert_int_eq(lockfs_owner_of_pid(&o, pid, 0), 0);
	errno = 0;
	ck_assert_ptr_null(lbd_os_proc_watch(&loop, pid, o.start + 1,
	    exit_told, &told));
	ck_assert_int_eq(errno, ESRCH);
	tl_kill(pid);
	errno = 0;
	ck_assert_ptr_null(lbd_os_proc_watch(&loop, tl_dead_pid(), 1,
	    exit_told, &told));
	ck_assert_int_eq(errno, ESRCH);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(told, 1);
out:
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST


/* The daemon's own process entries, by every name they have, and not
 * another process's or another place. */
static void *
tid_wait(void *arg)
{
	*(pid_t *)arg = lockfs_gettid();
	pause();
	return NULL;
}

START_TEST(own_proc_paths)
{
	char      path[64];
	pthread_t t;
	pid_t     tid = 0, other = tl_sleeper_start();

	ck_assert_int_eq(lbd_os_path_in_own_proc("/proc/self"), 1);
	ck_assert_int_eq(lbd_os_path_in_own_proc("/proc/self/fd/3"), 1);
	ck_assert_int_eq(lbd_os_path_in_own_proc("/proc/thread-self/cwd"), 1);
	snprintf(path, sizeof(path), "/proc/%ld/root", (long)getpid());
	ck_assert_int_eq(lbd_os_path_in_own_proc(path), 1);
	ck_assert_int_eq(pthread_create(&t, NULL, tid_wait, &tid), 0);
	while (__atomic_load_n(&tid, __ATOMIC_SEQ_CST) == 0)
		tl_sleep(0.001);
	snprintf(path, sizeof(path), "/proc/%ld/cwd", (long)tid);
	ck_assert_int_eq(lbd_os_path_in_own_proc(path), 1);
	snprintf(path, sizeof(path), "/proc/%ld/cwd", (long)other);
	ck_assert_int_eq(lbd_os_path_in_own_proc(path), 0);
	ck_assert_int_eq(lbd_os_path_in_own_proc("/proc/selfish"), 0);
	ck_assert_int_eq(lbd_os_path_in_own_proc("/proc"), 0);
	ck_assert_int_eq(lbd_os_path_in_own_proc("/tmp/proc/self"), 0);
	pthread_cancel(t);
	pthread_join(t, NULL);
	tl_kill(other);
}
END_TEST

/* A path through a magic link, also by a symbolic link of the caller's
 * making; a plain path is not. */
START_TEST(magic_links)
{
	struct tl_place p;

	tl_place_make(&p, "via");
	ck_assert_int_eq(lbd_os_path_through_magic_link(p.dir), 0);
	ck_assert_int_eq(symlink("/proc/self/cwd", p.path), 0);
	if (lbd_os_path_through_magic_link("/proc/self/cwd") == 0) {
		printf("magic_links: " TL_SKIP "the kernel cannot tell\n");
		return;
	}
	ck_assert_int_eq(lbd_os_path_through_magic_link("/proc/self/root/tmp"),
	    1);
	ck_assert_int_eq(lbd_os_path_through_magic_link(p.path), 1);
}
END_TEST

/* The count of open descriptors follows what the process opens and
 * closes; the watch limit is some number. */
START_TEST(fds_open_counts)
{
	int before, fd;

	ck_assert((before = lbd_os_fds_open()) >= 3);
	ck_assert((fd = open("/", O_RDONLY | O_CLOEXEC)) != -1);
	ck_assert_int_eq(lbd_os_fds_open(), before + 1);
	close(fd);
	ck_assert_int_eq(lbd_os_fds_open(), before);
	ck_assert(lbd_os_fs_watches_max() > 0);
}
END_TEST

/* The daemon's own files: made 0600 (less the umask), emptied to be
 * rewritten or kept to be updated, read and written at offsets, sized,
 * truncated, their mode set; a symbolic link at the name is never
 * followed (its target is untouched). */
START_TEST(own_files)
{
	struct tl_place p;
	struct stat     st;
	char            target[PATH_MAX + 8], link[PATH_MAX + 8], buf[16];
	off_t           size;
	mode_t          old = umask(022);
	int             fd;

	tl_place_make(&p, "own");
	ck_assert((fd = lbd_os_open_own(p.path, LBD_OS_REWRITE)) != -1);
	ck_assert(fstat(fd, &st) == 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(lockfs_fs_write(fd, "hello", 5), 5);
	ck_assert_int_eq(lbd_os_sync(fd), 0);
	close(fd);
	ck_assert((fd = lbd_os_open_own(p.path, LBD_OS_UPDATE)) != -1);
	ck_assert_int_eq(lbd_os_file_size(fd, &size), 0);
	ck_assert_int_eq((int)size, 5);
	ck_assert_int_eq(lbd_os_write_at(fd, "J", 1, 0), 1);
	ck_assert_int_eq(lbd_os_read_at(fd, buf, sizeof(buf), 0), 5);
	ck_assert(memcmp(buf, "Jello", 5) == 0);
	ck_assert_int_eq(lbd_os_truncate(fd, 2), 0);
	ck_assert_int_eq(lbd_os_file_size(fd, &size), 0);
	ck_assert_int_eq((int)size, 2);
	ck_assert_int_eq(lbd_os_fchmod(fd, 0640), 0);
	ck_assert(fstat(fd, &st) == 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	close(fd);
	ck_assert((fd = lbd_os_open_own(p.path, LBD_OS_REWRITE)) != -1);
	ck_assert_int_eq(lbd_os_file_size(fd, &size), 0);
	ck_assert_int_eq((int)size, 0);
	close(fd);
	snprintf(target, sizeof(target), "%s/target", p.dir);
	snprintf(link, sizeof(link), "%s/link", p.dir);
	tl_write_text(target, "kept");
	ck_assert(symlink(target, link) == 0);
	errno = 0;
	ck_assert_int_eq(lbd_os_open_own(link, LBD_OS_REWRITE), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_int_eq(lbd_os_open_own(link, LBD_OS_UPDATE), -1);
	ck_assert_int_eq(tl_read_text(target, buf, sizeof(buf)), 4);
	lbd_os_sync_dir(p.dir);
	umask(old);
	tl_place_remove(p.dir);
}
END_TEST

/* Directories and modes of the daemon's own files; the umask set and
 * given back; the time in UTC. */
START_TEST(own_dirs_modes_umask_time)
{
	struct tl_place p;
	struct stat     st;
	struct tm       tm;
	mode_t          old;

	tl_place_make(&p, "made");
	old = lbd_os_umask(0077);
	ck_assert_int_eq(lbd_os_umask(old), 0077);
	ck_assert_int_eq(lbd_os_mkdir(p.path, 0750), 0);
	ck_assert(stat(p.path, &st) == 0 && S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0750 & ~old);
	errno = 0;
	ck_assert_int_eq(lbd_os_mkdir(p.path, 0750), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(lbd_os_chmod(p.path, 0700), 0);
	ck_assert(stat(p.path, &st) == 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	errno = 0;
	ck_assert_int_eq(lbd_os_chmod(p.path, 0700), 0);
	ck_assert_int_eq(rmdir(p.path), 0);
	ck_assert_int_eq(lbd_os_chmod(p.path, 0600), -1);
	ck_assert_int_eq(errno, ENOENT);
	lbd_os_gmtime(86400 * 365 + 3600, &tm);
	ck_assert_int_eq(tm.tm_year, 71);
	ck_assert_int_eq(tm.tm_hour, 1);
	ck_assert(lbd_os_euid() == geteuid() && lbd_os_egid() == getegid());
	tl_place_remove(p.dir);
}
END_TEST

/* Events waiting on a descriptor: none on an empty pipe, some once it
 * is written (and once its writer is gone). */
START_TEST(events_waiting_on_fd)
{
	int fds[2];

	ck_assert(pipe(fds) == 0);
	ck_assert_int_eq(lbd_os_events_waiting(fds[0]), 0);
	ck_assert(write(fds[1], "x", 1) == 1);
	ck_assert_int_eq(lbd_os_events_waiting(fds[0]), 1);
	close(fds[1]);
	ck_assert_int_eq(lbd_os_events_waiting(fds[0]), 1);
	close(fds[0]);
}
END_TEST

/* The descriptor limit: told as it is when it is enough, raised as far
 * as needed when below (never beyond the hard limit), the soft limit
 * given back after. */
START_TEST(fds_limit_raised)
{
	struct rlimit saved, rl;
	unsigned long long limit;

	ck_assert(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 200)
		return;
	rl = saved;
	rl.rlim_cur = 64;
	ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	ck_assert_int_eq(lbd_os_fds_limit(10, &limit), 1);
	ck_assert(limit == 64);
	ck_assert_int_eq(lbd_os_fds_limit(150, &limit), 1);
	ck_assert(limit == 150);
	ck_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 150);
	if (saved.rlim_max != RLIM_INFINITY) {
		ck_assert_int_eq(lbd_os_fds_limit(
		    (unsigned long long)saved.rlim_max + 10, &limit), 1);
		ck_assert(limit == (unsigned long long)saved.rlim_max);
	}
	ck_assert(setrlimit(RLIMIT_NOFILE, &saved) == 0);
}
END_TEST

/* A path through a descriptor leads into the directory opened, even
 * once the directory is renamed; too small a buffer is refused. */
START_TEST(fd_path_leads_in)
{
	struct tl_place p;
	char            moved[PATH_MAX + 8], path[64], in[PATH_MAX + 16];
	int             fd;

	tl_place_make(&p, "pinned");
	tl_mkdir(p.path);
	tl_path_join(in, sizeof(in), p.path, "marker");
	tl_write_text(in, "x");
	ck_assert((fd = open(p.path, O_PATH | O_DIRECTORY | O_CLOEXEC)) != -1);
	ck_assert_int_eq(lbd_os_fd_path(fd, path, sizeof(path)), 0);
	snprintf(moved, sizeof(moved), "%s/moved", p.dir);
	ck_assert(rename(p.path, moved) == 0);
	snprintf(in, sizeof(in), "%s/marker", path);
	ck_assert_int_eq(access(in, F_OK), 0);
	errno = 0;
	ck_assert_int_eq(lbd_os_fd_path(fd, path, 5), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	close(fd);
	tl_place_remove(p.dir);
}
END_TEST

/* A directory's stream over a descriptor it takes: every entry listed,
 * the descriptor usable for steps in the directory meanwhile, closed
 * with the stream. */
START_TEST(dir_adopted)
{
	struct tl_place    p;
	struct lbd_os_dir *d;
	const char        *name;
	char               file[PATH_MAX + 16];
	int                fd, seen = 0, dots = 0;

	tl_place_make(&p, "listed");
	tl_mkdir(p.path);
	tl_path_join(file, sizeof(file), p.path, "a");
	tl_write_text(file, "a");
	tl_path_join(file, sizeof(file), p.path, "b");
	tl_write_text(file, "b");
	ck_assert((fd = open(p.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1);
	ck_assert((d = lbd_os_dir_adopt(fd)) != NULL);
	while ((name = lbd_os_dir_next(d)) != NULL)
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			dots++;
		else {
			ck_assert(strcmp(name, "a") == 0 ||
			    strcmp(name, "b") == 0);
			ck_assert_int_eq(unlinkat(fd, name, 0), 0);
			seen++;
		}
	ck_assert_int_eq(seen, 2);
	ck_assert_int_eq(dots, 2);
	lbd_os_dir_close(d);
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(tl_count(p.path), 0);
	lbd_os_dir_close(NULL);
	tl_place_remove(p.dir);
}
END_TEST

/* The suite: one case per layer. */
static Suite *
os_suite(void)
{
	Suite *s = suite_create("os");
	TCase *lockfs = tcase_create("lockfs");
	TCase *daemon = tcase_create("daemon");

	tcase_add_test(lockfs, other_users_pid_alive);
	tcase_add_test(lockfs, process_uid);
	tcase_add_test(lockfs, reused_pid_not_same);
	tcase_add_test(lockfs, own_pid_and_tid);
	tcase_add_test(lockfs, boot_id_and_host);
	tcase_add_test(lockfs, reopen_same_file);
	tcase_add_test(lockfs, create_whole_named_once_written);
	tcase_add_test(lockfs, dirlock_excludes);
	tcase_add_test(lockfs, fs_open_follows_no_link);
	tcase_add_test(lockfs, fs_info_identity);
	tcase_add_test(lockfs, fs_make_and_remove);
	tcase_add_test(lockfs, fs_may_remove_in);
	tcase_add_test(lockfs, fs_info_perm_and_times);
	tcase_add_test(lockfs, fs_symlink_made_and_read);
	tcase_add_test(lockfs, fs_write_read_rename);
	tcase_add_test(lockfs, fs_dir_stream);
	tcase_add_test(lockfs, files_creds_many_groups);
	suite_add_tcase(s, lockfs);
	tcase_add_test(daemon, fs_ids_switch_and_back);
	tcase_add_test(daemon, fs_groups_per_thread);
	tcase_add_test(daemon, user_groups_of_root);
	tcase_add_test(daemon, peer_ids_and_groups);
	tcase_add_test(daemon, proc_watch_told_at_exit);
	tcase_add_test(daemon, own_proc_paths);
	tcase_add_test(daemon, magic_links);
	tcase_add_test(daemon, fds_open_counts);
	tcase_add_test(daemon, own_files);
	tcase_add_test(daemon, own_dirs_modes_umask_time);
	tcase_add_test(daemon, events_waiting_on_fd);
	tcase_add_test(daemon, fds_limit_raised);
	tcase_add_test(daemon, fd_path_leads_in);
	tcase_add_test(daemon, dir_adopted);
	suite_add_tcase(s, daemon);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_os", os_suite(), CK_ENV);
}
