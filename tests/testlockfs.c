/* testlockfs.c: what the lockfs suites share (testlockfs.h). */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testlockfs.h"

/* A step result no lockfs step returns: the child could not drop to
 * nobody. */
#define STEP_NOPRIV 1000

void
init_ok(struct lockfs_lock *l, const char *path, unsigned method, pid_t tid)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_init(l, path, method, tid, &err);
	ck_assert_msg(r == 0, "lockfs_init(%s, %s): %d %s", path,
	    lockfs_method_name(method), r, err.msg);
}

void
acquire_ok(struct lockfs_lock *l)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_try_acquire(l, &err);
	ck_assert_msg(r == 0, "try_acquire %s (%s): %d %s", l->path,
	    lockfs_method_name(l->method), r, err.msg);
}

int
artefacts_left(const char *dir)
{
	char db[PATH_MAX];

	tl_path_join(db, sizeof(db), dir, SQLITE_DB);
	return tl_count(dir) - tl_exists(db);
}

void
assert_artefact_is_mine(struct lockfs_lock *l)
{
	struct stat lk, un;
	char        buf[PATH_MAX], want[64];
	ssize_t     n;

	switch (l->method) {
	case LB_LINK:
		ck_assert_int_eq(lstat(l->lock_file, &lk), 0);
		ck_assert_int_eq(lstat(l->unique, &un), 0);
		ck_assert(S_ISREG(lk.st_mode));
		ck_assert_uint_eq(lk.st_nlink, 2);
		ck_assert(lk.st_ino == un.st_ino && lk.st_dev == un.st_dev);
		break;
	case LB_SYMLINK:
		n = readlink(l->lock_file, buf, sizeof(buf) - 1);
		ck_assert_int_gt(n, 0);
		buf[n] = '\0';
		ck_assert_str_eq(buf, l->unique);
		break;
	case LB_MKDIR:
		ck_assert_int_eq(lstat(l->lock_file, &lk), 0);
		ck_assert(S_ISDIR(lk.st_mode));
		ck_assert_int_eq(tl_count(l->lock_file), 1);
		ck_assert_int_eq(lstat(l->unique, &un), 0);
		ck_assert(S_ISREG(un.st_mode));
		ck_assert_int_eq(un.st_size, 0);
		break;
	case LB_PIDFILE:
		ck_assert_int_gt(tl_read_text(l->lock_file, buf, sizeof(buf)), 0);
		snprintf(want, sizeof(want), "%ld\n", (long)l->owner.pid);
		ck_assert_str_eq(buf, want);
		break;
	case LB_SQLITE:
		ck_assert(tl_exists(l->db));
		ck_assert(!tl_exists(l->lock_file));
		break;
	}
}

/* What a step child reports. */
struct step_reply {
	int               r;
	struct lockfs_err err;
};

/* A step for a child to run. */
struct step_order {
	const char *path;
	unsigned    method;
	enum step   what;
	int         as_nobody;
	int         keep;       /* a holder: stay alive until killed */
};

/* Runs one step on a fresh unthreaded handle for path; the step's result. */
static int
step_run(const char *path, unsigned method, enum step what,
    struct lockfs_err *err)
{
	struct lockfs_lock l;
	int                r;

	if ((r = lockfs_init(&l, path, method, 0, err)) != 0)
		return r;
	switch (what) {
	case STEP_TRY:
		if ((r = lockfs_try_acquire(&l, err)) != 0)
			lockfs_abandon(&l);
		break;
	case STEP_RELEASE:
		r = lockfs_release(&l, err);
		break;
	case STEP_BREAK:
		r = lockfs_break_lock(&l, err);
		break;
	case STEP_IS_LOCKED:
		r = lockfs_is_locked(&l, err);
		break;
	case STEP_I_AM_LOCKING:
		r = lockfs_i_am_locking(&l, err);
		break;
	case STEP_BREAK_STALE:
		r = lockfs_break_stale(&l, err);
		break;
	}
	lockfs_fini(&l);
	return r;
}

/* The step child: runs the order's step and reports it; a holder then
 * waits to be killed. */
static int
step_child(void *arg, int in, int out)
{
	const struct step_order *o = arg;
	struct step_reply        reply;

	(void)in;
	memset(&reply, 0, sizeof(reply));
	if (o->as_nobody && tl_become_nobody() == -1)
		reply.r = STEP_NOPRIV;
	else
		reply.r = step_run(o->path, o->method, o->what, &reply.err);
	if (tl_write_all(out, &reply, sizeof(reply)) == -1)
		return 1;
	close(out);
	while (o->keep)
		pause();
	return 0;
}

int
step_in_child(const char *path, unsigned method, enum step what,
    int as_nobody, struct lockfs_err *err)
{
	struct step_order o = { path, method, what, as_nobody, 0 };
	struct step_reply reply;
	struct tl_child   c;
	size_t            n;
	int               status;

	tl_child_start(&c, 0, step_child, &o);
	n = tl_read_all(c.from, &reply, sizeof(reply));
	status = tl_child_wait(&c);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "step child failed: status %#x", status);
	ck_assert_uint_eq(n, sizeof(reply));
	ck_assert_msg(reply.r != STEP_NOPRIV, "cannot become nobody");
	if (err != NULL)
		*err = reply.err;
	return reply.r;
}

pid_t
holder_spawn(const char *path, unsigned method, int keep)
{
	struct step_order o = { path, method, STEP_TRY, 0, keep };
	struct step_reply reply;
	struct tl_child   c;
	size_t            n;
	int               status;

	tl_child_start(&c, 0, step_child, &o);
	n = tl_read_all(c.from, &reply, sizeof(reply));
	ck_assert_uint_eq(n, sizeof(reply));
	ck_assert_msg(reply.r == 0, "holder child's acquire of %s: %d %s",
	    path, reply.r, reply.err.msg);
	if (!keep) {
		status = tl_child_wait(&c);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	} else
		tl_child_detach(&c);
	return c.pid;
}

void
holder_kill(pid_t pid)
{
	tl_kill(pid);
}
