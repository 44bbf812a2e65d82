/*
 * testlib_unix.c: the part of the test harness (testlib.h) that needs a
 * Unix system: the run's set-up (testlib_os.h), places and directories,
 * clocks, files by descriptor, guarded memory, children, the daemon and
 * Python.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "testlib_os.h"

/* ------------------------------------------------------------------ */
/* The run's set-up (testlib_os.h).                                     */

void
tl_os_run_begin(void)
{
	unsetenv("LOCKBROKER_SQLITE_DB");
	signal(SIGPIPE, SIG_IGN);
}

int
tl_os_top_settle(const char *made)
{
	/* Absolute and without symlinks, so that the libraries' normalised
	 * paths are the ones the tests build; reachable by a child that
	 * becomes nobody. */
	if (realpath(made, tl_top) == NULL || chmod(tl_top, 0755) == -1 ||
	    setenv("TMPDIR", tl_top, 1) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Places and directories.                                              */

void
tl_place_in(char *dir, char *path, const char *name)
{
	tl_path_join(dir, PATH_MAX, tl_top, "t.XXXXXX");
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir,
	    strerror(errno));
	tl_path_join(path, PATH_MAX, dir, name);
}

void
tl_place_make(struct tl_place *p, const char *name)
{
	tl_place_in(p->dir, p->path, name);
}

void
tl_place_remove(const char *dir)
{
	if (chdir("/") == -1)
		ck_abort_msg("chdir /: %s", strerror(errno));
	ck_assert_msg(tl_dir_remove(dir) == 0, "cannot remove %s", dir);
}

void
tl_mkdir(const char *path)
{
	ck_assert_msg(mkdir(path, 0700) == 0, "mkdir %s: %s", path,
	    strerror(errno));
}

void
tl_dir_make(char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, size, "%s/lbtest.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

/* Removes one entry met by the depth-first walk. */
static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) == -1 ? -1 : 0;
	return unlink(path) == -1 ? -1 : 0;
}

int
tl_dir_remove(const char *dir)
{
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ */
/* Clocks.                                                              */

double
tl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
tl_sleep(double s)
{
	struct timespec ts;

	if (!(s > 0))
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Guarded memory.                                                      */

char *
tl_guard_copy(struct tl_guarded *g, const void *data, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = len / page + 1;
	char  *map;

	g->maplen = (pages + 1) * page;
	map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(map != MAP_FAILED);
	ck_assert_int_eq(mprotect(map + pages * page, page, PROT_NONE), 0);
	g->map = map;
	g->data = map + pages * page - len;
	if (len > 0)
		memcpy(g->data, data, len);
	return g->data;
}

void
tl_guard_free(struct tl_guarded *g)
{
	munmap(g->map, g->maplen);
}

/* ------------------------------------------------------------------ */
/* Files by descriptor.                                                 */

int
tl_exists(const char *file)
{
	struct stat st;

	return lstat(file, &st) == 0;
}

int
tl_count(const char *dir)
{
	struct dirent *de;
	DIR           *d;
	int            n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

void
tl_write_text(const char *file, const char *text)
{
	size_t len = strlen(text);
	int    fd;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd != -1, "cannot create %s: %s", file,
	    strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

ssize_t
tl_read_text(const char *file, char *buf, size_t size)
{
	ssize_t n;
	int     fd;

	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

void
tl_copy_file(const char *from, const char *to)
{
	char    buf[65536];
	ssize_t n;
	int     in, out;

	ck_assert_int_ne(in = open(from, O_RDONLY | O_CLOEXEC), -1);
	ck_assert_int_ne(out = open(to, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644), -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(tl_write_all(out, buf, (size_t)n), 0);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

int
tl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t     n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

size_t
tl_read_all(int fd, void *buf, size_t len)
{
	char   *p = buf;
	size_t  got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* Children.                                                            */

/* In a child: closes every descriptor from 3 up but keep1 and keep2. */
static void
close_other_fds(int keep1, int keep2)
{
	long max = sysconf(_SC_OPEN_MAX);
	int  fd;

	if (max < 0 || max > 4096)
		max = 4096;
	for (fd = 3; fd < max; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

void
tl_die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
}

void
tl_child_start(struct tl_child *c, unsigned flags, tl_child_fn *fn,
    void *arg)
{
	pid_t parent = getpid();
	int   to[2], from[2];

	ck_assert_int_eq(pipe(to), 0);
	ck_assert_int_eq(pipe(from), 0);
	c->pid = fork();
	ck_assert_int_ne(c->pid, -1);
	if (c->pid == 0) {
		tl_die_with_parent(parent);
		close(to[1]);
		close(from[0]);
		if (flags & TL_CLOSE_FDS)
			close_other_fds(to[0], from[1]);
		_exit(fn(arg, to[0], from[1]));
	}
	close(to[0]);
	close(from[1]);
	c->to = to[1];
	c->from = from[0];
}

int
tl_child_ready(struct tl_child *c, double seconds)
{
	struct pollfd pfd = { .fd = c->from, .events = POLLIN };

	return poll(&pfd, 1, (int)(seconds * 1000)) == 1;
}

void
tl_child_send(struct tl_child *c, const void *buf, size_t len)
{
	ck_assert_msg(tl_write_all(c->to, buf, len) == 0, "cannot write to "
	    "child %ld: %s", (long)c->pid, strerror(errno));
}

void
tl_child_receive(struct tl_child *c, void *buf, size_t len, double seconds)
{
	ck_assert_msg(tl_child_ready(c, seconds), "child %ld did not answer "
	    "within %g s", (long)c->pid, seconds);
	ck_assert_msg(tl_read_all(c->from, buf, len) == len, "child %ld's "
	    "answer was cut short", (long)c->pid);
}

void
tl_child_finish(struct tl_child *c)
{
	if (c->to != -1)
		close(c->to);
	c->to = -1;
}

void
tl_child_detach(struct tl_child *c)
{
	tl_child_finish(c);
	if (c->from != -1)
		close(c->from);
	c->from = -1;
}

int
tl_child_wait(struct tl_child *c)
{
	int status;

	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	tl_child_detach(c);
	return status;
}

int
tl_child_kill(struct tl_child *c)
{
	int status = tl_kill(c->pid);

	tl_child_detach(c);
	return status;
}

int
tl_kill(pid_t pid)
{
	int status;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

pid_t
tl_sleeper_start(void)
{
	pid_t parent = getpid(), pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		tl_die_with_parent(parent);
		for (;;)
			pause();
	}
	return pid;
}

pid_t
tl_dead_pid(void)
{
	pid_t pid;
	int   status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return pid;
}

int
tl_become_nobody(void)
{
	if (geteuid() != 0)
		return 0;       /* unprivileged already */
	if (setgroups(0, NULL) == -1 ||
	    setresgid(TL_NOBODY, TL_NOBODY, TL_NOBODY) == -1 ||
	    setresuid(TL_NOBODY, TL_NOBODY, TL_NOBODY) == -1)
		return -1;
	return 0;
}

void
tl_in_child(unsigned flags, tl_check_fn *fn, void *arg)
{
	char    why[1024] = "";
	size_t  n = 0;
	ssize_t got;
	pid_t   pid;
	int     p[2], status;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[0]);
		if ((flags & TL_AS_NOBODY) && tl_become_nobody() == -1)
			snprintf(why, sizeof(why), "cannot become nobody: %s",
			    strerror(errno));
		else
			fn(arg, why, sizeof(why));
		n = strlen(why);
		if (n > 0 && write(p[1], why, n) != (ssize_t)n)
			_exit(2);
		if (strncmp(why, TL_SKIP, strlen(TL_SKIP)) == 0)
			_exit(77);
		_exit(n == 0 ? 0 : 1);
	}
	close(p[1]);
	while (n < sizeof(why) - 1 &&
	    (got = read(p[0], why + n, sizeof(why) - 1 - n)) > 0)
		n += (size_t)got;
	why[n] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "the child died (status %#x)",
	    status);
	if (WEXITSTATUS(status) == 77) {
		printf("%s: %s\n", tl_name, why);
		fflush(stdout);
		return;
	}
	ck_assert_msg(WEXITSTATUS(status) == 0 && why[0] == '\0',
	    "in the child (exit %d): %s", WEXITSTATUS(status), why);
}

/* ------------------------------------------------------------------ */
/* The daemon.                                                          */

/* How long a daemon may take to answer, or to stop. */
#define DAEMON_WAIT_S 10.0

/* 1 when a whole line of reply starts with until. */
static int
has_line(const char *reply, const char *until)
{
	const char *line, *nl;

	for (line = reply; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		if (strncmp(line, until, strlen(until)) == 0)
			return 1;
	return 0;
}

int
tl_exchange(const char *socket_path, const char *request, const char *until,
    char *reply, size_t size, double timeout)
{
	struct sockaddr_un sun;
	struct pollfd      pfd;
	double             end = tl_now() + timeout;
	size_t             n = 0;
	ssize_t            got;
	int                fd, r = -1;

	reply[0] = '\0';
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    tl_write_all(fd, request, strlen(request)) == -1)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (n < size - 1 && tl_now() < end) {
		if (has_line(reply, until)) {
			r = 0;
			goto out;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((got = read(fd, reply + n, size - 1 - n)) <= 0)
			break;
		n += (size_t)got;
		reply[n] = '\0';
	}
	if (has_line(reply, until))
		r = 0;
out:
	close(fd);
	return r;
}

int
tl_daemon_answers(const char *socket_path)
{
	char reply[512];

	return tl_exchange(socket_path, "HELLO 1 version=1\n", "OK 1 ",
	    reply, sizeof(reply), 2.0) == 0;
}

/* In the daemon's child: its output to log, nothing else open, then the
 * daemon. */
static void __attribute__((noreturn))
daemon_exec(const struct tl_daemon *d, pid_t parent, const char *const *env)
{
	const char *b = getenv("LB_BUILDDIR");
	char        binary[PATH_MAX];
	int         fd;

	/* SIGKILL: a wedged daemon would never handle SIGTERM. */
	tl_die_with_parent(parent);
	for (; env != NULL && *env != NULL; env++)
		if (putenv((char *)*env) != 0)
			_exit(126);
	snprintf(binary, sizeof(binary), "%s/daemon/lockbrokerd",
	    b != NULL && *b != '\0' ? b : ".");
	if ((fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1) {
		dup2(fd, 2);
		dup2(fd, 1);
	}
	close_other_fds(-1, -1);
	execl(binary, "lockbrokerd", "--socket", d->socket, "--state",
	    d->state, "-d", (char *)NULL);
	fprintf(stderr, "exec %s: %s\n", binary, strerror(errno));
	_exit(127);
}

int
tl_daemon_start(struct tl_daemon *d, const char *dir, const char *sock,
    const char *state)
{
	return tl_daemon_start_env(d, dir, sock, state, NULL);
}

int
tl_daemon_start_env(struct tl_daemon *d, const char *dir, const char *sock,
    const char *state, const char *const *env)
{
	pid_t  parent = getpid();
	double end;
	int    status;

	if (snprintf(d->socket, sizeof(d->socket), "%s/%s", dir, sock) >=
	    (int)sizeof(d->socket) ||
	    snprintf(d->state, sizeof(d->state), "%s/%s", dir, state) >=
	    (int)sizeof(d->state) ||
	    snprintf(d->log, sizeof(d->log), "%s/log", dir) >=
	    (int)sizeof(d->log)) {
		fprintf(stderr, "%s: path too long\n", dir);
		return -1;
	}
	if ((d->pid = fork()) == -1)
		return -1;
	if (d->pid == 0)
		daemon_exec(d, parent, env);
	for (end = tl_now() + DAEMON_WAIT_S; tl_now() < end; tl_sleep(0.01)) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "lockbrokerd exited (status %#x); see "
			    "%s\n", status, d->log);
			d->pid = 0;
			return -1;
		}
		if (tl_daemon_answers(d->socket))
			return 0;
	}
	fprintf(stderr, "lockbrokerd did not answer on %s\n", d->socket);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
	d->pid = 0;
	return -1;
}

int
tl_daemon_stop(struct tl_daemon *d, int sig)
{
	double end = tl_now() + DAEMON_WAIT_S;
	int    status = 0;

	if (d->pid <= 0)
		return 0;
	kill(d->pid, sig);
	while (waitpid(d->pid, &status, WNOHANG) == 0) {
		if (tl_now() > end) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = 0;
			return -1;
		}
		tl_sleep(0.01);
	}
	d->pid = 0;
	if (sig == SIGKILL)
		return WIFSIGNALED(status) ? 0 : -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
tl_daemon_stopped(struct tl_daemon *d, double seconds)
{
	double end = tl_now() + seconds;
	int    status;
	pid_t  r;

	do {
		r = waitpid(d->pid, &status, WNOHANG | WUNTRACED);
		if (r == d->pid && WIFSTOPPED(status))
			return 1;
		if (r == d->pid) {
			d->pid = 0;
			return 0;
		}
		tl_sleep(0.01);
	} while (tl_now() < end);
	return 0;
}

const char *
tl_python3(void)
{
	const char *p = getenv("PYTHON3");

	return p != NULL && *p != '\0' ? p : "/usr/bin/python3";
}

#define PY_ARGS_MAX 32

/* The argument vector of python_exec. */
struct py_argv {
	char *argv[PY_ARGS_MAX + 4];
};

/* In the Python child: its standard output to the parent, then Python. */
static int
python_exec(void *arg, int in, int out)
{
	struct py_argv *a = arg;

	close(in);
	if (dup2(out, STDOUT_FILENO) == -1)
		return 126;
	close(out);
	execv(tl_python3(), a->argv);
	return 127;
}

void
tl_python_start(struct tl_child *c, const char *script,
    const char *const *args, size_t n)
{
	struct py_argv a;
	size_t         i;

	ck_assert_uint_le(n, PY_ARGS_MAX);
	a.argv[0] = (char *)"python3";
	a.argv[1] = (char *)"-c";
	a.argv[2] = (char *)script;
	for (i = 0; i < n; i++)
		a.argv[3 + i] = (char *)args[i];
	a.argv[3 + n] = NULL;
	tl_child_start(c, 0, python_exec, &a);
	tl_child_finish(c);
}
