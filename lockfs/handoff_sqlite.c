/*
 * handoff_sqlite.c: the sqlite method's handoff (see handoff.c): one
 * IMMEDIATE transaction rewrites the row's unique_name, and only when it
 * still names the old holder.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "lockfs.h"

/* Records why the sqlite handoff failed: LB_EFAILED (sys_errno EBUSY when
 * the database was still busy). */
static int
sqlite_failed(const struct lockfs_lock *l, sqlite3 *db, const char *what,
    struct lockfs_err *err)
{
	const char *refused = lockfs_sqlite_vfs_refused();
	int         r;

	r = lockfs_fail(err, LB_EFAILED, 0, "cannot hand %s over: %s "
	    "sqlite database %s: %s", l->path, what, l->db,
	    *refused != '\0' ? refused : db != NULL ? sqlite3_errmsg(db) :
	    "out of memory");
	if (db != NULL && (sqlite3_errcode(db) & 0xff) == SQLITE_BUSY &&
	    err != NULL)
		err->sys_errno = EBUSY; /* still busy: try again later */
	return r;
}

/* lockfs_handoff_sqlite: the sqlite method's handoff (handoff.c):
 * from's row becomes to's, in one transaction.  0, LB_ENOTMINE (no row
 * of from's), or LB_EFAILED; nothing changed unless 0.  Waits for other
 * processes' steps as long as a release does (lockfs_sqlite_step_ms).
 * A step of sqlite.c's fork gate (lockfs_sqlite_step_enter). */
int
lockfs_handoff_sqlite(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_err *err)
{
	static const char sql[] = "UPDATE locks SET unique_name = ?3 "
	    "WHERE lock_file = ?1 COLLATE " LOCKFS_SQLITE_NAMES " AND "
	    "unique_name = ?2 COLLATE " LOCKFS_SQLITE_NAMES;
	sqlite3_stmt *st = NULL;
	sqlite3      *db = NULL;
	const char   *why;
	int           began = 0, r = 0;

	lockfs_sqlite_step_enter();     /* no fork inside (sqlite.c) */
	if (lockfs_sqlite_open(from->db, SQLITE_OPEN_READWRITE, &db, &why) !=
	    SQLITE_OK) {
		r = db != NULL ? sqlite_failed(from, db, "cannot open", err) :
		    lockfs_fail(err, LB_EFAILED, 0, "cannot hand %s over: "
		    "cannot open sqlite database %s: %s", from->path,
		    from->db, why);
		goto out;
	}
	sqlite3_busy_timeout(db, lockfs_sqlite_step_ms());
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		r = sqlite_failed(from, db, "cannot begin in", err);
		goto out;
	}
	began = 1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    lockfs_sqlite_bind_path(st, 1, from->lock_file) != SQLITE_OK ||
	    lockfs_sqlite_bind_path(st, 2, from->unique) != SQLITE_OK ||
	    lockfs_sqlite_bind_path(st, 3, to->unique) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		r = sqlite_failed(from, db, "cannot update", err);
		goto out;
	}
	if (sqlite3_changes(db) == 0) {
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is not locked by the "
		    "owner handing it over", from->path);
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		r = sqlite_failed(from, db, "cannot commit in", err);
		goto out;
	}
	began = 0;
	from->sqlite_row_ours = 0;
	to->sqlite_row_ours = 1;        /* written here, for to (sqlite.c) */
out:
	sqlite3_finalize(st);
	if (began)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	lockfs_sqlite_step_leave();
	return r;
}
