/*
 * sqlite.c: the sqlite method (lockfile's SQLiteLockFile): a row
 * (lock_file, unique_name) in the table `locks` of a database file.
 * lockfile keeps that database per process, so it excludes nothing between
 * processes; ours is one file shared by every process (see
 * lockfs_sqlite_db for where), and every step is one IMMEDIATE
 * transaction, so it really excludes.
 *
 * Each step opens the database and closes it again: a handle then holds no
 * sqlite connection that a fork could share.  It is never opened through a
 * symlink at its name (lockfs_sqlite_open), and never with a journal
 * another user put beside it (sqlitevfs.c).  Only try_acquire creates the
 * database (and its table); a step that only looks or removes finds no
 * lock where there is no database, and makes none: the daemon runs
 * STATUS, RELEASE and BREAK for anyone.
 *
 * Whose row is it?  A row names its owner's unique name and nothing more:
 * anyone who may write the database can insert a row under another's
 * (predictable) name.  So a row naming us is taken as ours only when that
 * is proven: it was written through this very lock (l->sqlite_row_ours:
 * our insert, or a handoff to us), or the database is a file of the
 * owner's uid that no group or other user may write, so that only the
 * owner's uid (or root) can have written it.  Otherwise (a database shared
 * by several users, writable by them all) such a row is someone else's:
 * try_acquire waits, release is LB_ENOTMINE, i_am_locking 0.  In such a
 * database every user who may write it can also delete any row, that is,
 * break any lock: the method excludes cooperating processes only.
 *
 * A busy database (another process inside its own step) is not a failure.
 * try_acquire first looks with a plain read and takes the write lock only
 * when the lock looks free, waiting at most SQ_TRY_BUSY_MS for it; a
 * database still busy then reads as "held" (LB_EALREADY), so that
 * lb_acquire's own loop and deadline decide how long to wait.  Release,
 * break and the queries wait up to SQ_BUSY_MS, since giving up there would
 * leave a lock held or a question unanswered.  A process that must not
 * wait (the daemon) sets shorter waits (lockfs_sqlite_busy); a step that
 * then gives up on a busy database fails with sys_errno EBUSY, for it to
 * try again later.
 */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lockfs.h"

#define SQ_BUSY_MS     10000
#define SQ_TRY_BUSY_MS 50

/* The waits in use: the defaults above, or what the process set with
 * lockfs_sqlite_busy (the daemon, which must not wait long in its loop). */
static int step_busy_ms = SQ_BUSY_MS;
static int try_busy_ms = SQ_TRY_BUSY_MS;

/*
 * lockfs_sqlite_busy: sets, for the whole process, how long a step waits
 * for a database another process is writing: try_ms for try_acquire's
 * write lock, step_ms for the other steps.  Call before any lock is used.
 */
void
lockfs_sqlite_busy(int try_ms, int step_ms)
{
	try_busy_ms = try_ms;
	step_busy_ms = step_ms;
}

/* lockfs_sqlite_step_ms: how long a step other than a try waits for a
 * busy database (ms), as lockfs_sqlite_busy set it (handoff.c's too). */
int
lockfs_sqlite_step_ms(void)
{
	return step_busy_ms;
}

/* lockfs_sqlite_try_ms: how long a try waits for a busy database (ms). */
int
lockfs_sqlite_try_ms(void)
{
	return try_busy_ms;
}

/*
 * lockfs_sqlite_open: sqlite3_open_v2 of the lock database file with
 * flags, refusing a symlink at its name, and anything there but a regular
 * file.  sqlite resolves the links in a name itself, and would create a
 * database where a dangling one points (in a shared directory, wherever
 * another user chose).  So the directory is resolved here (its links are
 * its owners' doing), and the name in it may not be a link:
 * SQLITE_OPEN_NOFOLLOW, or, with an sqlite older than 3.31, the look
 * before.  That look also refuses a FIFO, which sqlite, falling back to
 * reading a file it may not write, would block on for ever.  Returns
 * sqlite's code, with *db as sqlite3_open_v2 leaves it (to be closed); or
 * SQLITE_CANTOPEN with *db NULL and *why saying what is at the name.
 * Opened with the VFS of sqlitevfs.c (a journal it refuses, here or in a
 * later step, leaves its reason in lockfs_sqlite_vfs_refused()).
 */
int
lockfs_sqlite_open(const char *file, int flags, sqlite3 **db,
    const char **why)
{
	char        dir[PATH_MAX], real[PATH_MAX], path[PATH_MAX];
	const char *slash = strrchr(file, '/'), *name = file, *vfs;
	struct stat st;
	int         n = -1;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == file ? 1 :
		    (int)(slash - file), file);
	if (slash != NULL)
		name = slash + 1;
	if (*name != '\0' && realpath(dir, real) != NULL)
		n = snprintf(path, sizeof(path), "%s%s%s", real,
		    strcmp(real, "/") == 0 ? "" : "/", name);
	if (n < 0 || (size_t)n >= sizeof(path))
		snprintf(path, sizeof(path), "%s", file);
	*db = NULL;
	*why = NULL;
	lockfs_sqlite_vfs_clear();
	if ((vfs = lockfs_sqlite_vfs()) == NULL) {
		*why = "sqlite has no \"unix\" VFS to open it with";
		return SQLITE_CANTOPEN;
	}
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		*why = S_ISLNK(st.st_mode) ? "it is a symbolic link" :
		    S_ISDIR(st.st_mode) ? "it is a directory" :
		    "it is not a regular file";
		return SQLITE_CANTOPEN;
	}
#ifdef SQLITE_OPEN_NOFOLLOW
	flags |= SQLITE_OPEN_NOFOLLOW;
#endif
	return sqlite3_open_v2(path, db, flags, vfs);
}

/* A step's connection and the code its failures are reported with. */
struct sq {
	sqlite3    *db;
	int         fail;
	int         busy_ok;   /* a try: busy at any step reads as held */
	int         absent;    /* no database (and none made): no lock */
	const char *why;       /* why the database was not opened */
};

/* Records a sqlite failure on *err: the database, what, and sqlite's
 * word (or q->why, when there is no connection); sys_errno EBUSY when
 * the database was still busy (another process's step), so that the
 * caller may try again later. */
static int
sq_fail(struct lockfs_lock *l, struct sq *q, const char *what,
    struct lockfs_err *err)
{
	int         sys = q->db != NULL ? sqlite3_system_errno(q->db) : 0;
	const char *why = q->db != NULL ? sqlite3_errmsg(q->db) :
	    q->why != NULL ? q->why : "out of memory";
	const char *refused = lockfs_sqlite_vfs_refused();
	int         busy = q->db != NULL &&
	    (sqlite3_errcode(q->db) & 0xff) == SQLITE_BUSY;
	int         r;

#ifdef SQLITE_CANTOPEN_SYMLINK
	if (q->db != NULL &&
	    sqlite3_extended_errcode(q->db) == SQLITE_CANTOPEN_SYMLINK)
		why = "it is a symbolic link";
#endif
	if (*refused != '\0') {        /* a planted journal: name it */
		why = refused;
		sys = 0;
	}
	r = lockfs_fail(err, q->fail, 0, "%s: %s in sqlite database %s: "
	    "%s%s%s", l->path, what, l->db, why,
	    sys != 0 ? ": " : "", sys != 0 ? strerror(sys) : "");
	if (busy && err != NULL)
		err->sys_errno = EBUSY; /* another process's step: try again */
	return r;
}

/*
 * Opens l's database, makes it and lockfile's table if needed (create)
 * and begins a transaction (IMMEDIATE: with the write lock, or DEFERRED
 * for a read), letting sqlite wait busy_ms for other processes' steps.
 * 0 (without create, and no database there: q->absent, q->db NULL), or
 * q->fail with err filled (q->db closed); with busy_ok, a database still
 * busy is LB_EALREADY instead.
 */
static int
sq_begin(struct lockfs_lock *l, struct sq *q, int fail, const char *begin,
    int busy_ms, int busy_ok, int create, struct lockfs_err *err)
{
	struct stat st;
	int         rc = SQLITE_OK, r = 0;

	q->fail = fail;
	q->busy_ok = busy_ok;
	q->absent = 0;
	q->db = NULL;
	q->why = NULL;
	if (!create && lstat(l->db, &st) == -1 &&
	    (errno == ENOENT || errno == ENOTDIR)) {
		q->absent = 1;
		return 0;
	}
	if (lockfs_sqlite_open(l->db, SQLITE_OPEN_READWRITE |
	    (create ? SQLITE_OPEN_CREATE : 0), &q->db, &q->why) !=
	    SQLITE_OK) {
		r = sq_fail(l, q, "cannot open", err);
		goto out;
	}
	sqlite3_busy_timeout(q->db, busy_ms);
	if (create)
		rc = sqlite3_exec(q->db, "CREATE TABLE IF NOT EXISTS locks ("
		    "lock_file varchar(32), unique_name varchar(32))",
		    NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, begin, NULL, NULL, NULL);
	if (rc == SQLITE_BUSY && busy_ok)
		r = lockfs_fail(err, LB_EALREADY, 0, "sqlite database %s is "
		    "busy", l->db);
	else if (rc != SQLITE_OK)
		r = sq_fail(l, q, "cannot begin", err);
out:
	if (r != 0) {
		sqlite3_close(q->db);
		q->db = NULL;
	}
	return r;
}

/* Rolls back when r is q->fail, else commits; closes.  Returns r, or
 * q->fail when the commit fails (LB_EALREADY when a try's commit finds
 * the database still busy: readers keep the commit waiting too). */
static int
sq_end(struct lockfs_lock *l, struct sq *q, int r, struct lockfs_err *err)
{
	int rc;

	if (r == q->fail)
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	else if ((rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		if (rc == SQLITE_BUSY && q->busy_ok)
			r = lockfs_fail(err, LB_EALREADY, 0, "sqlite database "
			    "%s is busy", l->db);
		else
			r = sq_fail(l, q, "cannot commit", err);
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	}
	sqlite3_close(q->db);
	q->db = NULL;
	return r;
}

/*
 * sq_run: runs sql with ?1 = l->lock_file and ?2 = our unique name.  For a
 * query, copies the first column of the first row into out (when out is
 * not NULL) and returns 1 when there was a row, 0 when none; for a change,
 * returns 0.  q->fail on error.
 */
static int
sq_run(struct lockfs_lock *l, struct sq *q, const char *sql, char *out,
    size_t size, struct lockfs_err *err)
{
	sqlite3_stmt        *st = NULL;
	const unsigned char *text;
	int                  rc, r;

	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) !=
	    SQLITE_OK) {
		if (strncmp(sqlite3_errmsg(q->db), "no such table", 13) == 0)
			r = 0;  /* a database no lock was taken in yet */
		else if ((rc & 0xff) == SQLITE_BUSY && q->busy_ok)
			r = lockfs_fail(err, LB_EALREADY, 0, "sqlite database "
			    "%s is busy", l->db);
		else
			r = sq_fail(l, q, "cannot prepare", err);
		goto out;
	}
	if (st == NULL ||
	    sqlite3_bind_text(st, 1, l->lock_file, -1, SQLITE_STATIC) !=
	    SQLITE_OK || (sqlite3_bind_parameter_count(st) > 1 &&
	    sqlite3_bind_text(st, 2, l->unique, -1, SQLITE_STATIC) !=
	    SQLITE_OK)) {
		r = sq_fail(l, q, "cannot prepare", err);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = 1;
		text = sqlite3_column_text(st, 0);
		if (out != NULL)
			snprintf(out, size, "%s", text != NULL ?
			    (const char *)text : "");
	} else if (rc == SQLITE_DONE)
		r = 0;
	else if (rc == SQLITE_BUSY && q->busy_ok)
		r = lockfs_fail(err, LB_EALREADY, 0, "sqlite database %s is "
		    "busy", l->db);
	else
		r = sq_fail(l, q, "cannot run a statement", err);
out:
	sqlite3_finalize(st);
	return r;
}

/* Runs one query in its own read transaction: 1, 0, or LB_ERROR; with
 * busy_ok (a try's look), a database still busy is LB_EALREADY. */
static int
sqlite_query(struct lockfs_lock *l, const char *sql, char *out, size_t size,
    int busy_ok, struct lockfs_err *err)
{
	struct sq q;
	int       r;

	if ((r = sq_begin(l, &q, LB_ERROR, "BEGIN", step_busy_ms, busy_ok, 0,
	    err)) != 0 || q.absent)
		return r;
	r = sq_run(l, &q, sql, out, size, err);
	return sq_end(l, &q, r, err);
}

static const char sql_holder[] =
    "SELECT unique_name FROM locks WHERE lock_file = ?1 LIMIT 1";
static const char sql_mine[] =
    "SELECT 1 FROM locks WHERE lock_file = ?1 AND unique_name = ?2";

/* Whether a row naming us is proven ours (see the top of this file):
 * written through l, or in a database of the owner's uid that no group
 * or other user may write. */
static int
row_proven(struct lockfs_lock *l)
{
	struct stat st;

	if (l->sqlite_row_ours)
		return 1;
	return lstat(l->db, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == l->owner.uid &&
	    (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* Records that a row under our name is not proven ours: code. */
static int
row_unproven(struct lockfs_lock *l, int code, struct lockfs_err *err)
{
	return lockfs_fail(err, code, 0, "%s is locked under this owner's "
	    "name by a row it did not write, in sqlite database %s, which "
	    "others may write (or is not of uid %ld): not taken as its own",
	    l->path, l->db, (long)l->owner.uid);
}

static int
sqlite_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	int       inserted = 0, r;

	/* A plain look first: waiters need not fight for the write lock. */
	if ((r = sqlite_query(l, sql_holder, NULL, 0, 1, err)) == 1 &&
	    (r = sqlite_query(l, sql_mine, NULL, 0, 1, err)) == 0)
		return lockfs_fail(err, LB_EALREADY, 0, "%s is locked by "
		    "another owner", l->path);
	if (r == 1 && !row_proven(l))
		return row_unproven(l, LB_EALREADY, err);
	if (r < 0 && r != LB_EALREADY) {
		r = LB_EFAILED;         /* the query's reason stands */
		if (err != NULL)
			err->code = r;
	}
	if (r < 0)
		return r;
	if ((r = sq_begin(l, &q, LB_EFAILED, "BEGIN IMMEDIATE", try_busy_ms,
	    1, 1, err)) != 0)
		return r;
	if ((r = sq_run(l, &q, sql_holder, NULL, 0, err)) == 0) {
		r = sq_run(l, &q, "INSERT INTO locks (lock_file, unique_name) "
		    "VALUES (?1, ?2)", NULL, 0, err);
		inserted = r == 0;
	} else if (r == 1 && (r = sq_run(l, &q, sql_mine, NULL, 0, err)) == 1)
		r = row_proven(l) ? 0 : row_unproven(l, LB_EALREADY, err);
	else if (r == 0)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner", l->path);
	if ((r = sq_end(l, &q, r, err)) == 0 && inserted)
		l->sqlite_row_ours = 1;
	return r;
}

static int
sqlite_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	int       r;

	if ((r = sq_begin(l, &q, LB_EUNLOCK, "BEGIN IMMEDIATE", step_busy_ms, 0,
	    0, err)) != 0)
		return r;
	if (q.absent)
		return lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    l->path);
	if ((r = sq_run(l, &q, sql_holder, NULL, 0, err)) == 0)
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    l->path);
	else if (r == 1 && (r = sq_run(l, &q, sql_mine, NULL, 0, err)) == 0)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not "
		    "by me", l->path);
	else if (r == 1 && !row_proven(l))
		r = row_unproven(l, LB_ENOTMINE, err);
	else if (r == 1)
		r = sq_run(l, &q, "DELETE FROM locks WHERE lock_file = ?1 AND "
		    "unique_name = ?2", NULL, 0, err);
	if ((r = sq_end(l, &q, r, err)) == 0)
		l->sqlite_row_ours = 0;
	return r;
}


static int
sqlite_is_locked(struct lockfs_lock *l, struct lockfs_err *err)
{
	return sqlite_query(l, sql_holder, NULL, 0, 0, err);
}

static int
sqlite_i_am_locking(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r = sqlite_query(l, sql_mine, NULL, 0, 0, err);

	return r == 1 ? row_proven(l) : r;
}

static int
sqlite_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	int       r;

	if ((r = sq_begin(l, &q, LB_EUNLOCK, "BEGIN IMMEDIATE", step_busy_ms, 0,
	    0, err)) != 0 || q.absent)
		return r;
	r = sq_run(l, &q, "DELETE FROM locks WHERE lock_file = ?1", NULL, 0,
	    err);
	if ((r = sq_end(l, &q, r, err)) == 0)
		l->sqlite_row_ours = 0;
	return r;
}

static int
sqlite_holder(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	char name[LOCKFS_UNIQUE_MAX];
	int  r;

	lockfs_holder_clear(h);
	if ((r = sqlite_query(l, sql_holder, name, sizeof(name), 0, err)) == 1)
		lockfs_unique_parse(name, LB_SQLITE, h);
	return r;
}

/* Nothing to undo: every step is a transaction. */
static void
sqlite_abandon(struct lockfs_lock *l)
{
	(void)l;
}

const struct lockfs_ops lockfs_sqlite_ops = {
	.name = "sqlite",
	.try_acquire = sqlite_try_acquire,
	.release = sqlite_release,
	.is_locked = sqlite_is_locked,
	.i_am_locking = sqlite_i_am_locking,
	.break_lock = sqlite_break,
	.holder = sqlite_holder,
	.abandon = sqlite_abandon,
};
