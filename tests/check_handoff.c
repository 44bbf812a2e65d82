/*
 * check_handoff.c: tests of locks taken on behalf of other processes
 * (lockfs_owner_of_pid, lockfs_init_for) and of handing a held lock from
 * one owner to the next (lockfs_handoff): the state after a handoff, the
 * refusals (not the holder, not the same lock) that change nothing, failures
 * injected half way that leave the old holder holding, the serialisation
 * with stale breakers, and, the point of it all, a real Python lockfile
 * process polling the lock while it is handed back and forth thousands of
 * times, which must never find it free.
 *
 * Every test runs in its own process (check's CK_FORK default) and in its
 * own directory (tl_place_in), removed at the test's end; tl_main() makes
 * one private directory for the whole run and removes that last.  The
 * owners are live child processes that only wait to be killed
 * (tl_sleeper_start; they die with the test), or this process under
 * made-up thread ids.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fs.h"
#include "testlockfs.h"

#define HANDOFF_PREFIX  ".lockbroker-handoff."
#define SNAPSHOT_MAX    65536

/* Handoffs under the Python poller: at least this many, and for at least
 * POLL_MIN_SECONDS, but never more than POLL_MAX_HANDOFFS. */
#define POLL_MIN_HANDOFFS 2000
#define POLL_MIN_SECONDS  1.0
#define POLL_MAX_HANDOFFS 50000

/* The methods whose lock a temporary is renamed over. */
static const unsigned rename_methods[] = {
	LB_LINK, LB_SYMLINK, LB_PIDFILE
};
#define NRENAME ((int)(sizeof(rename_methods) / sizeof(rename_methods[0])))

/* ------------------------------------------------------------------ */
/* Helpers.                                                             */

/* lockfs_owner_of_pid that must succeed. */
static void
owner_ok(struct lockfs_owner *o, pid_t pid, pid_t tid)
{
	ck_assert_msg(lockfs_owner_of_pid(o, pid, tid) == 0,
	    "lockfs_owner_of_pid(%ld, %ld): %s", (long)pid, (long)tid,
	    strerror(errno));
}

/* lockfs_init_for that must succeed. */
static void
init_for_ok(struct lockfs_lock *l, const char *path, unsigned method,
    const struct lockfs_owner *o)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_init_for(l, path, method, o, &err);
	ck_assert_msg(r == 0, "lockfs_init_for(%s, %s): %d %s", path,
	    lockfs_method_name(method), r, err.msg);
}

/* lockfs_handoff that must succeed. */
static void
handoff_ok(struct lockfs_lock *from, struct lockfs_lock *to)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_handoff(from, to, &err);
	ck_assert_msg(r == 0, "handoff of %s (%s): %d %s", from->path,
	    lockfs_method_name(from->method), r, err.msg);
	lockfs_abandon(from);   /* its traces, as the daemon removes them */
}

/*
 * Three owners of one lock, A, B and C, each with its own handle: live
 * child processes, or (by_thread) this process under made-up thread ids.
 */
struct owners {
	pid_t              kid[3];      /* 0: this process */
	struct lockfs_lock l[3];
};

#define FAKE_TID 0x5eed0

static void
owners_make(struct owners *o, const char *path, unsigned method,
    int by_thread)
{
	struct lockfs_owner who;
	int                 i;

	for (i = 0; i < 3; i++) {
		if (by_thread) {
			o->kid[i] = 0;
			owner_ok(&who, getpid(), FAKE_TID + i);
		} else {
			o->kid[i] = tl_sleeper_start();
			owner_ok(&who, o->kid[i], 0);
		}
		init_for_ok(&o->l[i], path, method, &who);
	}
}

static void
owners_free(struct owners *o)
{
	int i;

	for (i = 0; i < 3; i++) {
		lockfs_fini(&o->l[i]);
		if (o->kid[i] != 0)
			tl_kill(o->kid[i]);
	}
}

/* The rows of the sqlite method's database in dir, one "lock_file
 * unique_name" line each, sorted, into buf; the count, or 0 when there is
 * no database. */
static int
sqlite_rows(const char *dir, char *buf, size_t size)
{
	sqlite3_stmt *st;
	sqlite3      *db;
	char          file[PATH_MAX];
	size_t        len = 0;
	int           n = 0, rc;

	buf[0] = '\0';
	tl_path_join(file, PATH_MAX, dir, SQLITE_DB);
	if (!tl_exists(file))
		return 0;
	ck_assert_int_eq(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT lock_file, "
	    "unique_name FROM locks ORDER BY 1, 2", -1, &st, NULL), SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		len += (size_t)snprintf(buf + len, size - len, "%s %s\n",
		    (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1));
		ck_assert_uint_lt(len, size);
		n++;
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Appends to buf (at *len) a line per entry of dir, sorted, and of the
 * directories in it: name, type, inode, link count, and a symlink's target
 * or a small file's text. */
static void
snapshot_dir(const char *dir, const char *prefix, int depth, char *buf,
    size_t *len)
{
	struct dirent **names;
	struct stat     st;
	char            file[PATH_MAX], extra[PATH_MAX], sub[PATH_MAX];
	ssize_t         n;
	int             count, i;

	count = scandir(dir, &names, NULL, alphasort);
	ck_assert_msg(count >= 0, "scandir %s: %s", dir, strerror(errno));
	for (i = 0; i < count; i++) {
		const char *name = names[i]->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			free(names[i]);
			continue;
		}
		tl_path_join(file, PATH_MAX, dir, name);
		ck_assert_int_eq(lstat(file, &st), 0);
		extra[0] = '\0';
		if (S_ISLNK(st.st_mode)) {
			n = readlink(file, extra, sizeof(extra) - 1);
			extra[n > 0 ? n : 0] = '\0';
		} else if (S_ISREG(st.st_mode) && st.st_size < 64 &&
		    strcmp(name, SQLITE_DB) != 0)
			tl_read_text(file, extra, sizeof(extra));
		*len += (size_t)snprintf(buf + *len, SNAPSHOT_MAX - *len,
		    "%s%s %o %lu %lu [%s]\n", prefix, name,
		    (unsigned)(st.st_mode & S_IFMT), (unsigned long)st.st_ino,
		    (unsigned long)st.st_nlink, extra);
		ck_assert_uint_lt(*len, SNAPSHOT_MAX);
		if (S_ISDIR(st.st_mode) && depth == 0) {
			snprintf(sub, sizeof(sub), "%s/", name);
			snapshot_dir(file, sub, 1, buf, len);
		}
		free(names[i]);
	}
	free(names);
}

/* What is in dir (and the sqlite database's rows), so that two snapshots
 * differ when anything changed; buf has SNAPSHOT_MAX bytes. */
static void
snapshot(const char *dir, char *buf)
{
	char   rows[4096];
	size_t len = 0;

	buf[0] = '\0';
	snapshot_dir(dir, "", 0, buf, &len);
	sqlite_rows(dir, rows, sizeof(rows));
	snprintf(buf + len, SNAPSHOT_MAX - len, "rows:\n%s", rows);
}

/* Asserts that dir has not changed since the snapshot before. */
static void
assert_unchanged(const char *dir, const char *before)
{
	static char after[SNAPSHOT_MAX];

	snapshot(dir, after);
	ck_assert_msg(strcmp(before, after) == 0, "%s changed:\n--- before\n"
	    "%s--- after\n%s", dir, before, after);
}

/*
 * Asserts that l's owner holds the lock and that its artefact is all there
 * is in dir: in its method's form, and (link) its unique file beside it;
 * no temporary, nothing of any other owner.
 */
static void
assert_only_holder(const char *dir, struct lockfs_lock *l)
{
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 buf[PATH_MAX], want[PATH_MAX + 64];

	ck_assert_int_eq(lockfs_is_locked(l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 1);
	ck_assert_int_eq(lockfs_holder(l, &h, &err), 1);
	ck_assert_int_eq(h.pid, l->owner.pid);
	if (l->method != LB_PIDFILE) {
		ck_assert_str_eq(h.unique, l->unique);
		ck_assert_int_eq(h.tid, l->owner.tid);
		ck_assert_uint_eq(h.start, l->owner.start);
	}
	ck_assert_int_eq(tl_count(dir), l->method == LB_LINK ? 2 : 1);
	assert_artefact_is_mine(l);
	if (l->method == LB_SQLITE) {
		ck_assert_int_eq(sqlite_rows(dir, buf, sizeof(buf)), 1);
		snprintf(want, sizeof(want), "%s %s\n", l->lock_file,
		    l->unique);
		ck_assert_str_eq(buf, want);
	}
}

/* The temporary name a handoff to `to` uses, as handoff.c makes it. */
static void
tmp_name_of(const struct lockfs_lock *to, char *out)
{
	const char *base = strrchr(to->unique, '/');
	int         n;

	base = base == NULL ? to->unique : base + 1;
	if (to->method == LB_PIDFILE)
		n = snprintf(out, PATH_MAX, "%s/" HANDOFF_PREFIX "%ld",
		    to->dir, (long)to->owner.pid);
	else
		n = snprintf(out, PATH_MAX, "%s/" HANDOFF_PREFIX "%s",
		    to->dir, base);
	ck_assert_int_lt(n, PATH_MAX);
}

/* ------------------------------------------------------------------ */
/* Owners of other processes.                                          */

/* lockfs_owner_of_pid: this process, a child, a dead child, bad input. */
START_TEST(test_owner_of_pid)
{
	struct lockfs_owner  self, o;
	struct lockfs_holder h;
	struct lockfs_lock   l;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                kid;

	ck_assert_int_eq(lockfs_owner_self(&self, 0), 0);
	owner_ok(&o, getpid(), 0);
	ck_assert_str_eq(o.host, self.host);
	ck_assert_str_eq(o.boot, self.boot);
	ck_assert_int_eq(o.pid, self.pid);
	ck_assert_int_eq(o.tid, 0);
	ck_assert_uint_eq(o.start, self.start);
	owner_ok(&o, getpid(), 4242);
	ck_assert_int_eq(o.tid, 4242);

	/* A child: its own pid and start, which names it alive... */
	tl_place_in(dir, path, "res");
	kid = tl_sleeper_start();
	owner_ok(&o, kid, 0);
	ck_assert_int_eq(o.pid, kid);
	ck_assert_str_eq(o.host, self.host);
	ck_assert_str_eq(o.boot, self.boot);
	ck_assert_uint_ge(o.start, self.start);
	init_for_ok(&l, path, LB_LINK, &o);
	lockfs_holder_clear(&h);
	ck_assert_int_eq(lockfs_unique_parse(l.unique, LB_LINK, &h), 0);
	ck_assert_int_eq(h.pid, kid);
	ck_assert_uint_eq(h.start, o.start);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);

	/* ...and, once it is gone, dead; no owner can be made for it. */
	tl_kill(kid);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_DEAD);
	errno = 0;
	ck_assert_int_eq(lockfs_owner_of_pid(&o, kid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);

	errno = 0;
	ck_assert_int_eq(lockfs_owner_of_pid(&o, 0, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(lockfs_owner_of_pid(&o, getpid(), -1), -1);
	ck_assert_int_eq(errno, EINVAL);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* lockfs_init_for names the given owner, as lockfs_init names us. */
START_TEST(test_init_for_names)
{
	unsigned            method = tl_all_methods[_i];
	struct lockfs_owner o;
	struct lockfs_lock  l, mine;
	struct lockfs_err   err;
	char                dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX];

	tl_place_in(dir, path, "res");
	owner_ok(&o, getpid(), 0x4242);
	init_for_ok(&l, path, method, &o);
	ck_assert_int_eq(lockfs_init(&mine, path, method, 0, &err), 0);
	ck_assert_str_eq(l.path, mine.path);
	ck_assert_str_eq(l.lock_file, mine.lock_file);
	ck_assert_str_eq(l.dir, mine.dir);
	if (method == LB_SQLITE)
		ck_assert_str_eq(l.db, mine.db);
	ck_assert_int_eq(l.owner.pid, getpid());
	ck_assert_int_eq(l.owner.tid, method == LB_PIDFILE ? 0 : 0x4242);
	ck_assert_uint_eq(l.owner.start, o.start);
	o.tid = l.owner.tid;
	ck_assert_int_eq(lockfs_unique_format(&o, method, l.lock_file, want,
	    sizeof(want)), 0);
	ck_assert_str_eq(l.unique, want);
	lockfs_fini(&l);
	lockfs_fini(&mine);
	tl_place_remove(dir);
}
END_TEST

/* lockfs_init_for refuses no owner, a bad owner and a bad path. */
START_TEST(test_init_for_invalid)
{
	struct lockfs_owner o, bad;
	struct lockfs_lock  l;
	struct lockfs_err   err;
	char                dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	owner_ok(&o, getpid(), 0);
	ck_assert_int_eq(lockfs_init_for(&l, path, LB_LINK, NULL, &err),
	    LB_EINVAL);
	ck_assert_int_eq(err.code, LB_EINVAL);
	ck_assert_ptr_null(l.path);
	lockfs_fini(&l);                /* harmless after a failure */

	bad = o;
	bad.pid = 0;
	ck_assert_int_eq(lockfs_init_for(&l, path, LB_LINK, &bad, &err),
	    LB_EINVAL);
	bad = o;
	snprintf(bad.host, sizeof(bad.host), "../evil");
	ck_assert_int_eq(lockfs_init_for(&l, path, LB_LINK, &bad, &err),
	    LB_EINVAL);
	bad = o;
	bad.host[0] = '\0';
	ck_assert_int_eq(lockfs_init_for(&l, path, LB_LINK, &bad, &err),
	    LB_EINVAL);
	ck_assert_int_eq(lockfs_init_for(&l, "", LB_LINK, &o, &err),
	    LB_EINVAL);
	ck_assert_int_eq(lockfs_init_for(&l, path, 99, &o, &err), LB_EINVAL);
	ck_assert_int_eq(tl_count(dir), 0);
	tl_place_remove(dir);
}
END_TEST

/* A lock taken for another process is that process's, not ours. */
START_TEST(test_init_for_other_process)
{
	unsigned             method = tl_all_methods[_i];
	struct lockfs_owner  o;
	struct lockfs_lock   l, mine;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX];
	pid_t                kid;

	tl_place_in(dir, path, "res");
	kid = tl_sleeper_start();
	owner_ok(&o, kid, 0);
	init_for_ok(&l, path, method, &o);
	acquire_ok(&l);
	assert_only_holder(dir, &l);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, kid);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_ALIVE);

	ck_assert_int_eq(lockfs_init(&mine, path, method, 0, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&mine, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&mine, &err), LB_EALREADY);
	lockfs_abandon(&mine);
	ck_assert_int_eq(lockfs_release(&mine, &err), LB_ENOTMINE);
	assert_only_holder(dir, &l);

	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(tl_count(dir), method == LB_SQLITE);
	lockfs_fini(&mine);
	lockfs_fini(&l);
	tl_kill(kid);
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Handoff.                                                             */

/* A to B and back, for owners that are processes (even _i) or threads of
 * this one (odd _i; not pidfile, whose owner is the process). */
START_TEST(test_handoff)
{
	unsigned           method = tl_all_methods[_i / 2];
	struct owners      o;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	if (method == LB_PIDFILE && _i % 2 == 1)
		return;         /* test_handoff_same_owner has it */
	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, _i % 2);
	acquire_ok(a);
	assert_only_holder(dir, a);

	handoff_ok(a, b);
	assert_only_holder(dir, b);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 0);

	handoff_ok(b, a);
	assert_only_holder(dir, a);
	ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);
	handoff_ok(a, b);

	/* The new holder's lock is an ordinary one: A cannot release or
	 * take it, B can release it, and nothing is left. */
	ck_assert_int_eq(lockfs_release(a, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_try_acquire(a, &err), LB_EALREADY);
	lockfs_abandon(a);
	assert_only_holder(dir, b);
	ck_assert_int_eq(lockfs_release(b, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(b, &err), 0);
	ck_assert_int_eq(tl_count(dir), method == LB_SQLITE);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* The methods whose handoff has a last step (lockfs_handoff_finish). */
static const unsigned swap_methods[] = {
	LB_LINK, LB_SYMLINK, LB_PIDFILE, LB_MKDIR
};
#define NSWAP ((int)(sizeof(swap_methods) / sizeof(swap_methods[0])))

/*
 * A handoff prepared and not finished (the daemon tells the next holder
 * in between): the lock is still A's on disk and nobody else can take
 * it; cancelled, it is A's as before with nothing left; prepared again
 * and finished, it is B's.
 */
START_TEST(test_handoff_prepare_cancel_finish)
{
	unsigned           method = swap_methods[_i];
	struct owners      o;
	struct lockfs_swap s;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1], *c = &o.l[2];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(a);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff_prepare(a, b, &s, &err), 0);
	ck_assert(s.pending);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	ck_assert_int_eq(lockfs_is_locked(c, &err), 1);
	ck_assert_int_eq(lockfs_try_acquire(c, &err), LB_EALREADY);
	lockfs_abandon(c);
	lockfs_handoff_cancel(&s);
	ck_assert(!s.pending);
	assert_unchanged(dir, before);
	assert_only_holder(dir, a);

	ck_assert_int_eq(lockfs_handoff_prepare(a, b, &s, &err), 0);
	ck_assert_int_eq(lockfs_handoff_finish(&s, &err), 0);
	ck_assert(!s.pending);
	lockfs_abandon(a);
	assert_only_holder(dir, b);
	ck_assert_int_eq(lockfs_release(b, &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/*
 * A handoff prepared by a process that dies before the last step (a
 * daemon killed between the commit that recorded the next holder and the
 * swap): lockfs_handoff_resume finishes it while the lock file is still
 * A's, the one the preparation found (_i % 3 == 0); it leaves alone a
 * lock that was broken and taken by C since (1), and one that A let go
 * of and took anew since (2: a library client whose daemon died takes
 * its locks in-process; its lock file has the same name and owner, but
 * is another file).
 */
START_TEST(test_handoff_resume)
{
	unsigned           method = rename_methods[_i / 3];
	struct owners      o;
	struct lockfs_swap s;
	struct lockfs_err  err;
	struct lockfs_file_id id;
	struct stat        st;
	char               dir[PATH_MAX], path[PATH_MAX], keep[PATH_MAX + 8];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1], *c = &o.l[2];
	pid_t              kid;
	int                status;

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(a);
	if ((kid = fork()) == 0)
		_exit(lockfs_handoff_prepare(a, b, &s, &err) == 0 &&
		    s.pending ? 0 : 1);
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	/* What the preparation recorded (s.from_id, in the dead child). */
	ck_assert_int_eq(lstat(a->lock_file, &st), 0);
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL +
	    st.st_ctim.tv_nsec;
	if (_i % 3 == 1) {
		ck_assert_int_eq(lockfs_break_lock(a, &err), 0);
		acquire_ok(c);
	} else if (_i % 3 == 2) {
		/* The old file kept alive meanwhile: the new one is another
		 * inode, whatever the file system's reuse of numbers. */
		snprintf(keep, sizeof(keep), "%s/keep", dir);
		ck_assert_int_eq(link(a->lock_file, keep), 0);
		ck_assert_int_eq(lockfs_release(a, &err), 0);
		acquire_ok(a);
		ck_assert_int_eq(unlink(keep), 0);
	}
	ck_assert_int_eq(lockfs_handoff_resume(b, a->unique, a->owner.pid,
	    a->owner.uid, NULL, &err), 0);
	ck_assert_int_eq(lockfs_handoff_resume(b, a->unique, a->owner.pid,
	    a->owner.uid, &id, &err), _i % 3 == 0);
	ck_assert_int_eq(lockfs_handoff_resume(b, a->unique, a->owner.pid,
	    a->owner.uid, &id, &err), 0);
	if (_i % 3 == 2) {
		ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);
		ck_assert_int_eq(lockfs_handoff_tidy(a, NULL, NULL, &err), 1);
		lockfs_abandon(b);
		assert_only_holder(dir, a);
		ck_assert_int_eq(lockfs_release(a, &err), 0);
	} else if (_i % 3 == 0) {
		lockfs_abandon(a);
		assert_only_holder(dir, b);
		ck_assert_int_eq(lockfs_release(b, &err), 0);
	} else {
		lockfs_abandon(a);
		ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);
		ck_assert_int_eq(lockfs_handoff_tidy(c, NULL, NULL, &err), 1);
		lockfs_abandon(b);
		assert_only_holder(dir, c);
		ck_assert_int_eq(lockfs_release(c, &err), 0);
	}
	ck_assert_int_eq(tl_count(dir), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* What lockfs_handoff_tidy told its left callback (tidy_left). */
struct left_seen {
	int                   n;
	struct lockfs_fs_info dir, fi;
	char                  base[PATH_MAX];
};

/* lockfs_left_fn: notes what the tidy left into the left_seen arg. */
static void
tidy_left(void *arg, const struct lockfs_fs_info *dir, const char *base,
    const struct lockfs_fs_info *fi)
{
	struct left_seen *seen = arg;

	seen->n++;
	seen->dir = *dir;
	seen->fi = *fi;
	snprintf(seen->base, sizeof(seen->base), "%s", base);
}

/*
 * A link handoff prepared by a process that dies before its commit (a
 * daemon killed), whose next holder, never told, dies too (_i == 0) or
 * lives on (1): the tidy removes the temporary, and the next holder's
 * unique file with it only when that holder is gone (nothing else would
 * ever remove it); a live one's stays, for it to take again or remove,
 * and is told to the tidy's caller, whose later look
 * (lockfs_unique_litter) leaves it while its process lives and removes
 * it once that is gone (_i == 2: it dies without taking it again).
 */
START_TEST(test_handoff_tidy_next_holders_unique)
{
	struct owners      o;
	struct lockfs_swap s;
	struct lockfs_err  err;
	struct stat        st;
	struct left_seen   seen;
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];
	pid_t              kid;
	int                status;

	memset(&seen, 0, sizeof(seen));

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_LINK, 0);
	acquire_ok(a);
	if ((kid = fork()) == 0)
		_exit(lockfs_handoff_prepare(a, b, &s, &err) == 0 &&
		    s.pending ? 0 : 1);
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(lstat(b->unique, &st), 0);
	ck_assert_int_eq(st.st_nlink, 2);       /* and its temporary */
	if (_i == 0) {
		tl_kill(o.kid[1]);
		o.kid[1] = 0;
	}
	ck_assert_int_eq(lockfs_release(a, &err), 0);
	ck_assert_int_eq(lockfs_handoff_tidy(a, tidy_left, &seen, &err), 1);
	ck_assert_int_eq(lstat(b->unique, &st) == 0, _i != 0);
	ck_assert_int_eq(seen.n, _i != 0);
	if (_i != 0) {
		ck_assert_int_eq(st.st_nlink, 1);
		ck_assert_str_eq(seen.base, strrchr(b->unique, '/') + 1);
		ck_assert(seen.fi.ino == (unsigned long long)st.st_ino);
		/* Its process lives: left, however often it is looked at. */
		ck_assert_int_eq(lockfs_unique_litter(dir, &seen.dir,
		    seen.base, &seen.fi), 0);
		ck_assert_int_eq(lockfs_unique_litter(dir, &seen.dir,
		    seen.base, &seen.fi), 0);
		ck_assert_int_eq(lstat(b->unique, &st), 0);
	}
	if (_i == 1)
		lockfs_abandon(b);
	if (_i == 2) {
		tl_kill(o.kid[1]);
		o.kid[1] = 0;
		ck_assert_int_eq(lockfs_unique_litter(dir, &seen.dir,
		    seen.base, &seen.fi), 1);
		ck_assert_int_eq(lstat(b->unique, &st), -1);
		ck_assert_int_eq(lockfs_unique_litter(dir, &seen.dir,
		    seen.base, &seen.fi), -1);
	}
	if (_i == 1) {
		/* Gone (taken back and let go by its owner): nothing to do. */
		ck_assert_int_eq(lockfs_unique_litter(dir, &seen.dir,
		    seen.base, &seen.fi), -1);
	}
	ck_assert_int_eq(tl_count(dir), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* Handing a lock to its own owner (the same handle, another handle, or
 * for pidfile another thread of the holding process) changes nothing. */
START_TEST(test_handoff_same_owner)
{
	unsigned           method = tl_all_methods[_i];
	struct owners      o;
	struct lockfs_lock again;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, method == LB_PIDFILE);
	init_for_ok(&again, path, method, &o.l[0].owner);
	acquire_ok(&o.l[0]);
	snapshot(dir, before);
	handoff_ok(&o.l[0], &o.l[0]);
	assert_unchanged(dir, before);
	handoff_ok(&o.l[0], &again);
	assert_unchanged(dir, before);
	assert_only_holder(dir, &again);
	if (method == LB_PIDFILE) {
		/* Threads of one process are one pid file owner. */
		handoff_ok(&o.l[0], &o.l[1]);
		assert_unchanged(dir, before);
		assert_only_holder(dir, &o.l[1]);
	}
	lockfs_fini(&again);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* Handoff by an owner that does not hold the lock: LB_ENOTMINE, and
 * nothing changes, whether the lock is free, another's, or was handed on. */
START_TEST(test_handoff_not_mine)
{
	unsigned           method = tl_all_methods[_i];
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1], *c = &o.l[2];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);

	/* Free (for sqlite, the database made by a first look). */
	ck_assert_int_eq(lockfs_is_locked(a, &err), 0);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_ENOTMINE);
	ck_assert_int_eq(err.code, LB_ENOTMINE);
	assert_unchanged(dir, before);

	/* Held by C. */
	acquire_ok(c);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_ENOTMINE);
	ck_assert_int_eq(err.code, LB_ENOTMINE);
	assert_unchanged(dir, before);
	assert_only_holder(dir, c);

	/* C handed it to A: C no longer holds it and cannot hand it on. */
	handoff_ok(c, a);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(c, b, &err), LB_ENOTMINE);
	assert_unchanged(dir, before);
	assert_only_holder(dir, a);
	ck_assert_int_eq(lockfs_release(a, &err), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* Handles on different locks: LB_EINVAL, nothing changed. */
START_TEST(test_handoff_not_same_lock)
{
	struct lockfs_owner o;
	struct lockfs_lock  a, other_method, other_path, sq_a, sq_b;
	struct lockfs_err   err;
	static char         before[SNAPSHOT_MAX];
	char                dir[PATH_MAX], path[PATH_MAX], path2[PATH_MAX];
	char                db[PATH_MAX];

	tl_place_in(dir, path, "res");
	tl_path_join(path2, PATH_MAX, dir, "other");
	owner_ok(&o, getpid(), FAKE_TID);
	init_for_ok(&a, path, LB_LINK, &o);
	o.tid++;
	init_for_ok(&other_method, path, LB_SYMLINK, &o);
	init_for_ok(&other_path, path2, LB_LINK, &o);
	acquire_ok(&a);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(&a, &other_method, &err), LB_EINVAL);
	ck_assert_int_eq(err.code, LB_EINVAL);
	ck_assert_int_eq(lockfs_handoff(&a, &other_path, &err), LB_EINVAL);
	ck_assert_int_eq(lockfs_handoff(&a, NULL, &err), LB_EINVAL);
	ck_assert_int_eq(lockfs_handoff(NULL, &a, &err), LB_EINVAL);
	assert_unchanged(dir, before);
	assert_only_holder(dir, &a);

	/* sqlite: the same path in another database is another lock. */
	tl_path_join(db, PATH_MAX, dir, "elsewhere.sqlite");
	init_for_ok(&sq_a, path, LB_SQLITE, &o);
	ck_assert_int_eq(setenv("LOCKBROKER_SQLITE_DB", db, 1), 0);
	o.tid++;
	init_for_ok(&sq_b, path, LB_SQLITE, &o);
	ck_assert_int_eq(unsetenv("LOCKBROKER_SQLITE_DB"), 0);
	acquire_ok(&sq_a);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(&sq_a, &sq_b, &err), LB_EINVAL);
	assert_unchanged(dir, before);
	ck_assert_int_eq(lockfs_i_am_locking(&sq_a, &err), 1);

	lockfs_fini(&a);
	lockfs_fini(&other_method);
	lockfs_fini(&other_path);
	lockfs_fini(&sq_a);
	lockfs_fini(&sq_b);
	tl_place_remove(dir);
}
END_TEST

/* Failure injected: a directory where the temporary goes.  LB_EFAILED,
 * and A still holds the lock, with nothing else changed. */
START_TEST(test_handoff_tmp_is_dir)
{
	unsigned           method = rename_methods[_i];
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(a);
	tmp_name_of(b, tmp);
	ck_assert_int_eq(mkdir(tmp, 0755), 0);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_int_eq(err.code, LB_EFAILED);
	ck_assert_int_ne(err.sys_errno, 0);
	ck_assert_msg(strstr(err.msg, tmp) != NULL, "reason: %s", err.msg);
	assert_unchanged(dir, before);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);

	/* Once the obstacle is gone, the handoff goes through. */
	ck_assert_int_eq(rmdir(tmp), 0);
	handoff_ok(a, b);
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* The leftover of a handoff that died half way (a file, or a symlink
 * pointing anywhere, at the temporary name) is removed, not followed. */
START_TEST(test_handoff_tmp_leftover)
{
	unsigned           method = rename_methods[_i / 2];
	struct owners      o;
	char               dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	char               target[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(a);
	tmp_name_of(b, tmp);
	tl_path_join(target, PATH_MAX, dir, "target");
	if (_i % 2 == 0)
		tl_write_text(tmp, "leftover\n");
	else
		ck_assert_int_eq(symlink(target, tmp), 0);
	handoff_ok(a, b);
	ck_assert(!tl_exists(tmp));
	ck_assert(!tl_exists(target));
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* mkdir: a marker of B's already in the lock (a handoff that died between
 * its two steps) is used, and A's goes. */
START_TEST(test_handoff_mkdir_marker_leftover)
{
	struct owners      o;
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_MKDIR, 0);
	acquire_ok(a);
	tl_write_text(b->unique, "");
	handoff_ok(a, b);
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* Failure injected for mkdir: the next marker's name is taken (here by a
 * directory).  LB_EFAILED, and A still holds the lock. */
START_TEST(test_handoff_mkdir_marker_taken)
{
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_MKDIR, 0);
	acquire_ok(a);
	ck_assert_int_eq(mkdir(b->unique, 0755), 0);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_int_ne(err.sys_errno, 0);
	assert_unchanged(dir, before);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	ck_assert_int_eq(rmdir(b->unique), 0);
	handoff_ok(a, b);
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/*
 * Failure injected for link: the next holder's unique name is a directory,
 * a symlink (never followed), or a file with another name (so a rename
 * could be one of the same inode).  LB_EFAILED, A still holds the lock.
 */
START_TEST(test_handoff_link_unique_taken)
{
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_LINK, 0);
	acquire_ok(a);
	tl_path_join(target, PATH_MAX, dir, "target");
	switch (_i) {
	case 0:
		ck_assert_int_eq(mkdir(b->unique, 0755), 0);
		break;
	case 1:
		ck_assert_int_eq(symlink(target, b->unique), 0);
		break;
	case 2:
		tl_write_text(target, "");
		ck_assert_int_eq(link(target, b->unique), 0);
		break;
	}
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_int_ne(err.sys_errno, 0);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);
	if (_i == 2) {
		/* Not a fresh file, so ours to remove; the other name stays. */
		ck_assert(!tl_exists(b->unique));
		ck_assert(tl_exists(target));
	} else
		assert_unchanged(dir, before);
	ck_assert(_i == 2 || !tl_exists(target));
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/*
 * Regression: a handoff took whatever regular file was at the next
 * holder's (predictable) unique file or marker name, so another user could
 * plant one there and the lock handed over was a file of theirs, which
 * they could remove from a sticky directory at will (the next holder's
 * lock gone, a second holder in).  Now the file must be of the next
 * holder's uid: LB_EFAILED, A still holds the lock, and the planted file
 * is not ours to remove.  Likewise an mkdir lock is not handed to an owner
 * of another uid than its directory's (that user could empty it).
 */
START_TEST(test_handoff_planted_by_another_user)
{
	struct owners      o;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];
	unsigned           method = _i == 0 ? LB_LINK : LB_MKDIR;
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	if (geteuid() != 0)
		return;         /* only root can make another user's files */
	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 01777), 0);
	owners_make(&o, path, method, 0);
	acquire_ok(a);
	if (_i < 2) {
		tl_write_text(b->unique, "");
		ck_assert_int_eq(lchown(b->unique, 65534, 65534), 0);
	} else
		b->owner.uid = 65534;   /* b is another user */
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_msg(strstr(err.msg, "uid") != NULL, "%s", err.msg);
	ck_assert_int_eq(lockfs_i_am_locking(a, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(b, &err), 0);
	if (_i < 2) {
		ck_assert(tl_exists(b->unique));
		ck_assert_int_eq(unlink(b->unique), 0);
		handoff_ok(a, b);
		assert_only_holder(dir, b);
	} else
		ck_assert_int_eq(lockfs_release(a, &err), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* Failure injected for sqlite: the UPDATE aborts (a trigger).  LB_EFAILED
 * with sqlite's reason, and A's row stands. */
START_TEST(test_handoff_sqlite_update_fails)
{
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX], db[PATH_MAX];
	sqlite3           *h;
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_SQLITE, 1);
	acquire_ok(a);
	tl_path_join(db, PATH_MAX, dir, SQLITE_DB);
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TRIGGER no_handoff BEFORE "
	    "UPDATE ON locks BEGIN SELECT RAISE(ABORT, 'injected'); END",
	    NULL, NULL, NULL), SQLITE_OK);
	snapshot(dir, before);
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_msg(strstr(err.msg, "injected") != NULL, "reason: %s",
	    err.msg);
	assert_unchanged(dir, before);
	assert_only_holder(dir, a);

	ck_assert_int_eq(sqlite3_exec(h, "DROP TRIGGER no_handoff", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	handoff_ok(a, b);
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* A handoff for handoff_child to make, and the directory descriptor
 * (with the test's flock) that it must not keep. */
struct handoff_run {
	struct lockfs_lock *from, *to;
	int                 dfd;
};

/* In a child: hands h->from's lock to h->to and reports the result. */
static int
handoff_child(void *arg, int in, int out)
{
	struct handoff_run *h = arg;
	struct lockfs_err   err;
	int                 r;

	(void)in;
	close(h->dfd);          /* else the flock lives on in us */
	if ((r = lockfs_handoff(h->from, h->to, &err)) == 0)
		lockfs_abandon(h->from);
	return write(out, &r, sizeof(r)) == sizeof(r) ? 0 : 1;
}

/*
 * A handoff waits while a stale breaker holds the directory's flock (so a
 * breaker cannot remove the lock between the handoff's check and its
 * rename, letting a third party take what the rename then overwrites), and
 * goes through once it is released.  The handoff runs in a child.
 */
START_TEST(test_handoff_waits_for_breakers)
{
	unsigned           method = tl_file_methods[_i];
	struct owners      o;
	struct lockfs_err  err;
	struct handoff_run h;
	struct tl_child    c;
	char               dir[PATH_MAX], path[PATH_MAX];
	int                dfd, r;

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(&o.l[0]);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ne(dfd, -1);
	ck_assert_int_eq(flock(dfd, LOCK_EX), 0);

	h.from = &o.l[0];
	h.to = &o.l[1];
	h.dfd = dfd;
	tl_child_start(&c, 0, handoff_child, &h);
	ck_assert_msg(!tl_child_ready(&c, 0.1),
	    "the handoff went ahead while the directory was locked");
	ck_assert_int_eq(lockfs_i_am_locking(&o.l[0], &err), 1);

	close(dfd);             /* the breaker is done */
	ck_assert_msg(tl_child_ready(&c, 10), "the handoff still waits");
	ck_assert_uint_eq(tl_read_all(c.from, &r, sizeof(r)), sizeof(r));
	tl_child_wait(&c);
	ck_assert_int_eq(r, 0);
	assert_only_holder(dir, &o.l[1]);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* A directory flocked for good (by anyone who can read it) makes the
 * handoff fail, not hang: LB_EFAILED, and A still holds the lock. */
START_TEST(test_handoff_dir_locked_for_good)
{
	struct owners      o;
	struct lockfs_err  err;
	static char        before[SNAPSHOT_MAX];
	char               dir[PATH_MAX], path[PATH_MAX];
	double             t0;
	int                dfd;
	struct lockfs_lock *a = &o.l[0], *b = &o.l[1];

	tl_place_in(dir, path, "res");
	owners_make(&o, path, LB_LINK, 0);
	acquire_ok(a);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ne(dfd, -1);
	ck_assert_int_eq(flock(dfd, LOCK_EX), 0);
	snapshot(dir, before);
	t0 = tl_now();
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_msg(tl_now() - t0 < 10.0, "the handoff waited %.1f s",
	    tl_now() - t0);
	ck_assert_int_eq(err.sys_errno, EWOULDBLOCK);
	ck_assert_msg(strstr(err.msg, dir) != NULL, "reason: %s", err.msg);
	assert_unchanged(dir, before);
	assert_only_holder(dir, a);
	/* The wait is the process's setting: 2 s, then one try (the
	 * daemon's), which does not wait for it. */
	lockfs_handoff_wait(2);
	t0 = tl_now();
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_msg(tl_now() - t0 >= 1.9, "waited %.3f s, not 2",
	    tl_now() - t0);
	lockfs_handoff_wait(0);
	t0 = tl_now();
	ck_assert_int_eq(lockfs_handoff(a, b, &err), LB_EFAILED);
	ck_assert_msg(tl_now() - t0 < 1.9, "one try took %.3f s",
	    tl_now() - t0);
	lockfs_handoff_wait(0.2);
	assert_unchanged(dir, before);
	close(dfd);
	handoff_ok(a, b);
	assert_only_holder(dir, b);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The real Python lockfile, polling during handoffs.                  */

/*
 * The poller: argv[1] the lockfile class, argv[2] the path.  Tries
 * acquire(timeout=0) and is_locked() in a tight loop until SIGTERM, prints
 * "ready" after its first round and, at the end, what it saw.  It exits 2
 * when it ever took the lock, 3 when is_locked() ever said False.
 */
static const char poller_script[] =
    "import signal, sys\n"
    "import lockfile\n"
    "from lockfile.linklockfile import LinkLockFile\n"
    "from lockfile.symlinklockfile import SymlinkLockFile\n"
    "from lockfile.mkdirlockfile import MkdirLockFile\n"
    "from lockfile.pidlockfile import PIDLockFile\n"
    "cls = {'LinkLockFile': LinkLockFile,\n"
    "       'SymlinkLockFile': SymlinkLockFile,\n"
    "       'MkdirLockFile': MkdirLockFile,\n"
    "       'PIDLockFile': PIDLockFile}[sys.argv[1]]\n"
    "lock = cls(sys.argv[2], threaded=False)\n"
    "stop = False\n"
    "def on_term(sig, frame):\n"
    "    global stop\n"
    "    stop = True\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "tries = acquired = unlocked = other = 0\n"
    "first = ''\n"
    "while not stop:\n"
    "    try:\n"
    "        lock.acquire(timeout=0)\n"
    "    except lockfile.AlreadyLocked:\n"
    "        pass\n"
    "    except Exception as e:\n"
    "        other += 1\n"
    "        first = first or repr(e)\n"
    "    else:\n"
    "        acquired += 1\n"
    "        try:\n"
    "            lock.release()\n"
    "        except Exception:\n"
    "            pass       # a handoff has overwritten it already\n"
    "    if not lock.is_locked():\n"
    "        unlocked += 1\n"
    "    tries += 1\n"
    "    if tries == 1:\n"
    "        print('ready', flush=True)\n"
    "print('tries=%d acquired=%d unlocked=%d other=%d %s' %\n"
    "      (tries, acquired, unlocked, other, first), flush=True)\n"
    "sys.exit(2 if acquired else 3 if unlocked else 0)\n";

/* What the poller saw. */
struct poll_result {
	int  status;        /* its wait status */
	long tries, acquired, unlocked, other;
	char text[1024];
};

/* The lockfile class of a method. */
static const char *
python_class(unsigned method)
{
	switch (method) {
	case LB_LINK:
		return "LinkLockFile";
	case LB_SYMLINK:
		return "SymlinkLockFile";
	case LB_MKDIR:
		return "MkdirLockFile";
	default:
		return "PIDLockFile";
	}
}

/* Starts the poller on path and waits until it has made its first try. */
static void
poller_start(struct tl_child *p, unsigned method, const char *path)
{
	const char *args[2] = { python_class(method), path };
	char        line[64];
	size_t      n = 0;

	tl_python_start(p, poller_script, args, 2);
	/* "ready\n", a byte at a time: what follows is for poller_stop. */
	while (n < sizeof(line) - 1 && read(p->from, line + n, 1) == 1 &&
	    line[n] != '\n')
		n++;
	line[n] = '\0';
	ck_assert_msg(strcmp(line, "ready") == 0, "%s did not start polling: "
	    "\"%s\"", tl_python3(), line);
}

/* Stops the poller and collects what it saw. */
static void
poller_stop(struct tl_child *p, struct poll_result *res)
{
	size_t n;

	ck_assert_int_eq(kill(p->pid, SIGTERM), 0);
	n = tl_read_all(p->from, res->text, sizeof(res->text) - 1);
	res->text[n] = '\0';
	res->status = tl_child_wait(p);
	ck_assert_msg(sscanf(res->text, "tries=%ld acquired=%ld unlocked=%ld "
	    "other=%ld", &res->tries, &res->acquired, &res->unlocked,
	    &res->other) == 4, "the poller said \"%s\" (status %#x)",
	    res->text, res->status);
}

/*
 * THE KEY TEST: while Python's lockfile polls the lock (acquire with no
 * wait, and is_locked) as fast as it can, the lock is handed from A to B
 * and back thousands of times.  The poller must never take it, and never
 * see it free.
 */
START_TEST(test_handoff_under_python_poller)
{
	unsigned           method = tl_file_methods[_i];
	struct owners      o;
	struct tl_child    p;
	struct poll_result res;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];
	double             t0;
	long               done;
	int                r = 0;

	tl_place_in(dir, path, "res");
	owners_make(&o, path, method, 0);
	acquire_ok(&o.l[0]);
	poller_start(&p, method, o.l[0].path);

	t0 = tl_now();
	for (done = 0; done < POLL_MAX_HANDOFFS; done++) {
		if (done >= POLL_MIN_HANDOFFS && tl_now() - t0 >= POLL_MIN_SECONDS)
			break;
		r = lockfs_handoff(&o.l[done % 2], &o.l[(done + 1) % 2], &err);
		if (r != 0)
			break;
		lockfs_abandon(&o.l[done % 2]);
	}
	poller_stop(&p, &res);
	fprintf(stderr, "%s: %ld handoffs in %.1f s; Python's %s: %s",
	    lockfs_method_name(method), done, tl_now() - t0,
	    python_class(method), res.text);

	ck_assert_msg(res.acquired == 0 && res.unlocked == 0,
	    "Python's %s slipped in during %ld handoffs: %s",
	    python_class(method), done, res.text);
	ck_assert_msg(r == 0, "handoff %ld of %s (%s) failed: %d %s", done,
	    path, lockfs_method_name(method), r, err.msg);
	ck_assert_msg(res.other == 0, "Python's poller failed: %s", res.text);
	ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
	    "poller status %#x: %s", res.status, res.text);
	/* Enough rounds of polling to have met many handoffs. */
	ck_assert_msg(res.tries >= 100, "the poller tried only %ld times",
	    res.tries);

	/* The last one handed to holds it, and nothing else is left (the
	 * poller's own unique file included). */
	assert_only_holder(dir, &o.l[done % 2]);
	ck_assert_int_eq(lockfs_release(&o.l[done % 2], &err), 0);
	ck_assert_int_eq(tl_count(dir), 0);
	owners_free(&o);
	tl_place_remove(dir);
}
END_TEST

static Suite *
handoff_suite(void)
{
	Suite *s = suite_create("handoff");
	TCase *tc;

	tc = tcase_create("owner");
	tcase_add_test(tc, test_owner_of_pid);
	tcase_add_loop_test(tc, test_init_for_names, 0, TL_NMETHODS);
	tcase_add_test(tc, test_init_for_invalid);
	tcase_add_loop_test(tc, test_init_for_other_process, 0, TL_NMETHODS);
	suite_add_tcase(s, tc);

	tc = tcase_create("handoff");
	tcase_add_loop_test(tc, test_handoff, 0, TL_NMETHODS * 2);
	tcase_add_loop_test(tc, test_handoff_same_owner, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_handoff_prepare_cancel_finish, 0, NSWAP);
	tcase_add_loop_test(tc, test_handoff_resume, 0, NRENAME * 3);
	tcase_add_loop_test(tc, test_handoff_tidy_next_holders_unique, 0, 3);
	tcase_add_loop_test(tc, test_handoff_not_mine, 0, TL_NMETHODS);
	tcase_add_test(tc, test_handoff_not_same_lock);
	tcase_add_loop_test(tc, test_handoff_waits_for_breakers, 0, TL_NFILE);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_add_loop_test(tc, test_handoff_tmp_is_dir, 0, NRENAME);
	tcase_add_loop_test(tc, test_handoff_tmp_leftover, 0, NRENAME * 2);
	tcase_add_test(tc, test_handoff_mkdir_marker_leftover);
	tcase_add_test(tc, test_handoff_mkdir_marker_taken);
	tcase_add_test(tc, test_handoff_dir_locked_for_good);
	tcase_add_loop_test(tc, test_handoff_link_unique_taken, 0, 3);
	tcase_add_loop_test(tc, test_handoff_planted_by_another_user, 0, 3);
	tcase_add_test(tc, test_handoff_sqlite_update_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("python");
	tcase_add_loop_test(tc, test_handoff_under_python_poller, 0, TL_NFILE);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_handoff", handoff_suite(), CK_ENV);
}
