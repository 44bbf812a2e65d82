/*
 * store.c: the state database.  WAL with synchronous=NORMAL: a commit
 * survives the daemon's death (kill -9) at no fsync; a power loss may lose
 * the last commits, but it also kills every holder and changes the boot
 * id, and every artefact of an earlier boot is cleared at start anyway.
 * Only the generation is written with a full sync, once per start: tokens
 * are (generation << 32 | counter), so they keep increasing even when the
 * last commits are lost.
 *
 * The generation is also kept beside the database, in FILE.generation
 * (written whole and synced, then renamed into place), and each new one
 * is above both: so tokens keep increasing when the database is lost (a
 * damaged one moved aside, or one deleted) as long as that small file
 * stays.
 *
 * At start the database's integrity is checked (PRAGMA quick_check).  A
 * damaged one is moved aside, kept as FILE.damaged-TIME (with its -wal
 * and -shm), and a new one made: the holds it recorded are unknown to
 * the new daemon, their lock files stay on disk and exclude others as any
 * lock held outside the broker does.
 *
 * While the daemon runs, the file at FILE is checked to be the one it
 * opened (device and inode), before each commit and now and then
 * (lbd_store_check): one deleted or replaced is made anew, with a new
 * generation, and every hold in memory recorded in it again.
 *
 * Changes of one loop iteration share one transaction, committed before
 * the iteration's replies go out (loop.c's check handle).  A transaction
 * that changes riders' rows alone (conn_riders: readers joining and
 * leaving) may be carried over, uncommitted, to the next iterations, at
 * most LBD_STORE_CARRY_MAX, while they bring more such changes and
 * nothing else (lbd_store_carry): the loop then holds every reply back
 * until the commit, so that several joins and leaves share one commit
 * and no reply ever announces a change not yet recorded.
 *
 * When a change or a commit fails (a full file system, an I/O error), the
 * iteration's changes are rolled back and lbd_store_settle reports it, so
 * that the grants they announced are refused (reply.c).  The database may
 * then still record holds that have ended since: the next commit rewrites
 * the holds table from the daemon's memory first (store_resync).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "daemon.h"
#include "dirs.h"
#include "fs.h"
#include "locktable.h"
#include "log.h"
#include "os.h"
#include "readers.h"
#include "statedir.h"
#include "store.h"
#include "walshm.h"

struct lbd_store {
	sqlite3      *db;
	sqlite3_stmt *add, *del;
	sqlite3_stmt *rider_put, *rider_del; /* conn_riders' rows */
	int           had_holds;    /* the holds table was there at the open */
	int           had_riders;   /* and the conn_riders table */
	sqlite3_stmt *begin, *commit;   /* the iteration's transaction */
	int           in_txn;
	int           riders_only;  /* it changes riders' rows alone */
	int           riders_new;   /* ... some since it was last carried */
	unsigned      carried;      /* iterations it was carried over */
	int           failed;   /* a change or commit failed since the last
	                           lbd_store_settle */
	int           resync;   /* the holds table may disagree with memory */
	char          why[PATH_MAX + 256]; /* the last failure */
	char          file[PATH_MAX];   /* the database */
	unsigned long long dev; /* the file opened, as first seen */
	unsigned long long ino;
	uint64_t      floor;    /* the highest generation taken or seen */
};

/* Notes why the database failed: sqlite's word and the system's. */
static void
store_failed(struct lbd_store *s)
{
	int sys = sqlite3_system_errno(s->db);

	snprintf(s->why, sizeof(s->why), "%s%s%s", sqlite3_errmsg(s->db),
	    sys != 0 ? ": " : "", sys != 0 ? strerror(sys) : "");
	s->failed = 1;
	s->resync = 1;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS holds ("
    "  lock_file TEXT NOT NULL, method INTEGER NOT NULL,"
    "  path TEXT NOT NULL, unique_name TEXT NOT NULL,"
    "  pid INTEGER NOT NULL, tid INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
    "  start INTEGER NOT NULL, boot TEXT NOT NULL,"
    "  token INTEGER NOT NULL, since REAL NOT NULL,"
    "  kept INTEGER NOT NULL DEFAULT 0,"
    "  supp_groups BLOB, dir_dev INTEGER, dir_ino INTEGER,"
    "  releasing INTEGER NOT NULL DEFAULT 0,"
    "  from_unique TEXT, from_pid INTEGER, from_uid INTEGER,"
    "  from_dev INTEGER, from_ino INTEGER, from_ctime INTEGER,"
    "  shared INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (lock_file, method)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS users ("
    "  uid INTEGER PRIMARY KEY, sid TEXT UNIQUE NOT NULL);"
    "CREATE TABLE IF NOT EXISTS riders ("
    "  lock_file TEXT NOT NULL, method INTEGER NOT NULL,"
    "  path TEXT NOT NULL, pid INTEGER NOT NULL, start INTEGER NOT NULL,"
    "  boot TEXT NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
    "  supp_groups BLOB, token INTEGER NOT NULL, since REAL NOT NULL,"
    "  PRIMARY KEY (lock_file, method, pid, start, uid)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS conn_riders ("
    "  lock_file TEXT NOT NULL, method INTEGER NOT NULL,"
    "  path TEXT NOT NULL, pid INTEGER NOT NULL, start INTEGER NOT NULL,"
    "  boot TEXT NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
    "  supp_groups BLOB, token INTEGER NOT NULL, since REAL NOT NULL,"
    "  tid INTEGER NOT NULL, conns INTEGER NOT NULL,"
    "  PRIMARY KEY (lock_file, method, pid, start, tid, uid)) "
    "  WITHOUT ROWID;";

/*
 * The riders table holds the riders kept for a process (ACQUIRE pid=
 * mode=shared, readers.c): a shared hold beside a lock's artefact's
 * reader that no connection will reclaim after a restart, so recorded
 * (the riders of connections are not: their markers are their record,
 * and their RECLAIM brings them back).  One process may be read for by
 * two users (root's kept reader for it, and its user's own): a record
 * each, one marker.  A daemon of an earlier release ignores the table.
 *
 * The conn_riders table holds the riders of connections: a row per
 * marker and user (process, start time, boot, thread, uid), with the
 * number of connections riding on it (conns: two connections of one
 * thread share a marker), written as they join and leave (readers.c),
 * committed before the join's or the leave's reply goes out (in a
 * commit those of a few iterations may share: lbd_store_carry).
 * After a restart, a rider's RECLAIM is taken only when a row says it
 * rode (not on a marker alone, which its user can make), and a marker
 * stays while a connection of the previous run may still reclaim it.  A
 * database made by an earlier release, without the table, records no
 * rider: its riders are taken back on their markers, as that release
 * did, until a grace period of this release has ended
 * (d->riders_by_markers, kept as the meta key RIDERS_BY_MARKERS through
 * a restart meanwhile, when the riders still to come have no row;
 * lbd_store_conn_riders_known).  A database made anew while the daemon
 * runs (deleted or replaced) keeps what the daemon knew.
 */
#define RIDERS_BY_MARKERS "riders_by_markers"

/*
 * Users the OS names by a string (Windows: a SID and its integrity
 * level, daemon/peertoken.c) get a number of the
 * daemon's own (lbd_store_user_uid), from 1 up (0 is root's), kept in
 * the users table: the same SID has the same uid after a restart (a
 * kept hold is its user's again), and two SIDs never share one.  The
 * numbers given are kept in memory too, for the daemon's run, whatever
 * becomes of the database: read from it at each open (merged: a number
 * given is never given again), written in the iteration's transaction,
 * and written again with the holds after a failed commit or into a
 * database made anew (store_resync).  Linux numbers its users itself:
 * the table stays empty there.
 */
struct store_user {
	uid_t uid;
	char *sid;
};
static struct store_user *users;
static size_t             nusers, users_size;
static uid_t              users_next = 1;

static int store_users_load(struct lbd_store *s);

/* Columns later releases added to holds, for databases made before: kept
 * (kept holds, ACQUIRE pid=); supp_groups (the client's supplementary
 * groups, native gid_t array; NULL: not known); dir_dev, dir_ino (the
 * identity of the lock's directory at the grant; NULL: not known);
 * releasing (1: a releasing hold, whose RELEASE was answered and whose
 * sqlite row is still to be removed, hold.c; a database of a daemon
 * that did not record it says 0); from_unique, from_pid, from_uid (the
 * previous holder, while a handoff to this one is owed its last step,
 * swap.c: the unique name, pid and uid its artefact has; NULL: none);
 * from_dev, from_ino, from_ctime (that artefact's file as the handoff
 * found it, lockfs_handoff_resume: without them, a restart does not
 * finish the handoff); shared (1: the artefact's reader of a lock held
 * shared, docs/SHARED.md; its other readers are not recorded).  A
 * daemon of an earlier release opens
 * a database with these columns too: it ignores them. */
static const char *const upgrades[] = {
	"ALTER TABLE holds ADD COLUMN kept INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE holds ADD COLUMN supp_groups BLOB",
	"ALTER TABLE holds ADD COLUMN dir_dev INTEGER",
	"ALTER TABLE holds ADD COLUMN dir_ino INTEGER",
	"ALTER TABLE holds ADD COLUMN releasing INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE holds ADD COLUMN from_unique TEXT",
	"ALTER TABLE holds ADD COLUMN from_pid INTEGER",
	"ALTER TABLE holds ADD COLUMN from_uid INTEGER",
	"ALTER TABLE holds ADD COLUMN from_dev INTEGER",
	"ALTER TABLE holds ADD COLUMN from_ino INTEGER",
	"ALTER TABLE holds ADD COLUMN from_ctime INTEGER",
	"ALTER TABLE holds ADD COLUMN shared INTEGER NOT NULL DEFAULT 0",
};

/* Adds the columns of upgrades[] that a database lacks; an error other
 * than "it is there already" is kept. */
static int
store_upgrade(struct lbd_store *s)
{
	char  *msg;
	size_t i;
	int    r = 0;

	for (i = 0; i < sizeof(upgrades) / sizeof(upgrades[0]); i++) {
		msg = NULL;
		if (sqlite3_exec(s->db, upgrades[i], NULL, NULL, &msg) !=
		    SQLITE_OK && (msg == NULL ||
		    strstr(msg, "duplicate column") == NULL)) {
			log_err("state database: %s: %s", upgrades[i],
			    msg != NULL ? msg : "?");
			r = -1;
		}
		sqlite3_free(msg);
	}
	return r;
}

/* Runs sql; 0, or -1 with the error logged. */
static int
store_exec(struct lbd_store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	store_failed(s);
	log_err("state database: %s: %s", sql, s->why);
	sqlite3_free(msg);
	return -1;
}

/* Whether the database has a table named name, into *known (1 or 0);
 * 0, or -1 with the error logged. */
static int
store_table_known(struct lbd_store *s, const char *name, int *known)
{
	sqlite3_stmt *st = NULL;
	int           rc;

	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_master WHERE "
	    "type = 'table' AND name = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW || rc == SQLITE_DONE) {
			*known = rc == SQLITE_ROW;
			sqlite3_finalize(st);
			return 0;
		}
	}
	store_failed(s);
	log_err("state database: its tables: %s", s->why);
	sqlite3_finalize(st);
	return -1;
}

/* Reads the generation kept beside the database into s->floor (0 when
 * there is none yet); a file that does not say a generation is logged
 * and taken as none. */
static void
floor_read(struct lbd_store *s)
{
	char     path[PATH_MAX + 16], buf[32], *end;
	uint64_t g;
	ssize_t  n;
	int      fd;

	s->floor = 0;
	snprintf(path, sizeof(path), "%s.generation", s->file);
	if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, path, LOCKFS_FS_READ)) == -1) {
		if (errno != ENOENT)
			log_warn("%s: %s", path, strerror(errno));
		return;
	}
	n = lockfs_fs_read(fd, buf, sizeof(buf) - 1);
	lockfs_fs_close(fd);
	buf[n > 0 ? n : 0] = '\0';
	errno = 0;
	g = strtoull(buf, &end, 10);
	if (n <= 0 || errno != 0 || end == buf || *end != '\n' ||
	    g > 0xffffffffull) {
		log_warn("%s does not hold a generation; ignored", path);
		return;
	}
	s->floor = g;
}

/* Writes generation g durably to FILE.generation: a temporary file,
 * synced, renamed over it, and the directory synced.  0, or -1 with
 * s->why set. */
static int
floor_write(struct lbd_store *s, uint64_t g)
{
	char  path[PATH_MAX + 16], tmp[PATH_MAX + 24], dir[PATH_MAX], buf[32];
	int   fd, len, r = -1;

	snprintf(path, sizeof(path), "%s.generation", s->file);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (lbd_dirs_parent(s->file, dir, sizeof(dir)) != 0)
		snprintf(dir, sizeof(dir), ".");
	len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", g);
	if ((fd = lbd_os_open_own(tmp, LBD_OS_REWRITE)) == -1) {
		snprintf(s->why, sizeof(s->why), "cannot write %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	errno = EIO;            /* a short write sets none */
	if (lockfs_fs_write(fd, buf, (size_t)len) != len ||
	    lbd_os_sync(fd) != 0) {
		snprintf(s->why, sizeof(s->why), "cannot write %s: %s", tmp,
		    strerror(errno));
		lockfs_fs_close(fd);
		goto out;
	}
	if (lockfs_fs_close_written(fd) != 0 ||
	    lockfs_fs_rename_at(LOCKFS_FS_CWD, tmp, path) != 0) {
		snprintf(s->why, sizeof(s->why), "cannot write %s: %s", path,
		    strerror(errno));
		goto out;
	}
	lbd_os_sync_dir(dir);
	r = 0;
out:
	if (r != 0)
		lockfs_fs_unlink(tmp);
	return r;
}

/* lbd_store_next_generation: see store.h. */
int
lbd_store_next_generation(struct lbd *d)
{
	struct lbd_store *s = d->store;
	sqlite3_stmt     *st = NULL;
	char              sql[160];
	uint64_t          g;
	int               r = -1, rc;

	if (s == NULL)
		return -1;
	if (s->in_txn && lbd_store_commit(d) != 0)
		goto out;
	if (store_exec(s, "PRAGMA synchronous=FULL") != 0 ||
	    store_exec(s, "BEGIN IMMEDIATE") != 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = "
	    "'generation'", -1, &st, NULL) != SQLITE_OK ||
	    ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE)) {
		store_failed(s);
		goto out;
	}
	g = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	if (g < s->floor)
		g = s->floor;
	if (g < d->generation)  /* a database made anew while running */
		g = d->generation;
	g++;
	snprintf(sql, sizeof(sql), "INSERT INTO meta (key, value) VALUES "
	    "('generation', %" PRIu64 ") ON CONFLICT(key) DO UPDATE SET "
	    "value = excluded.value", g);
	if (floor_write(s, g) != 0)
		goto out;
	s->floor = g;
	if (store_exec(s, sql) != 0 || store_exec(s, "COMMIT") != 0)
		goto out;
	d->generation = g;
	r = store_exec(s, "PRAGMA synchronous=NORMAL");
out:
	sqlite3_finalize(st);
	if (r != 0) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
		    NULL);
		s->failed = s->resync = 1;
		log_err("state database: cannot take a new generation: %s",
		    s->why);
	}
	lbd_walshm_flush();
	return r;
}

/*
 * Whether the database at s->file is damaged: 1 (what quick_check or
 * sqlite says in s->why; the generation it records, if it can still be
 * read, raises s->floor), 0 (sound, or not there yet), or -1 when it
 * cannot be looked at (s->why says why).
 */
static int
store_damaged(struct lbd_store *s)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	const char   *t;
	uint64_t      g;
	int           rc, r = -1;

	if (access(s->file, F_OK) != 0 && errno == ENOENT)
		return 0;
	if ((rc = sqlite3_open_v2(s->file, &db, SQLITE_OPEN_READWRITE, NULL)) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 5000);
	if ((rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st,
	    NULL)) != SQLITE_OK || ((rc = sqlite3_step(st)) != SQLITE_ROW &&
	    rc != SQLITE_DONE))
		goto fail;
	t = (const char *)sqlite3_column_text(st, 0);
	if (rc == SQLITE_ROW && t != NULL && strcmp(t, "ok") == 0) {
		r = 0;
		goto out;
	}
	snprintf(s->why, sizeof(s->why), "%s", rc == SQLITE_ROW && t != NULL ?
	    t : "quick_check failed");
	r = 1;
	goto out;
fail:
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
		r = 1;
		snprintf(s->why, sizeof(s->why), "%s", sqlite3_errstr(rc));
	} else if (db != NULL && sqlite3_system_errno(db) != 0)
		snprintf(s->why, sizeof(s->why), "%s: %s", sqlite3_errmsg(db),
		    strerror(sqlite3_system_errno(db)));
	else
		snprintf(s->why, sizeof(s->why), "%s", db != NULL ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
out:
	sqlite3_finalize(st);
	st = NULL;
	if (r == 1 && sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE "
	    "key = 'generation'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    (g = (uint64_t)sqlite3_column_int64(st, 0)) <= 0xffffffffull &&
	    g > s->floor)
		s->floor = g;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/*
 * Moves the damaged database at s->file aside, with its -wal and -shm, as
 * FILE.damaged-TIME (UTC), and logs it.  0, or -1 with why filled.
 */
static int
store_move_aside(struct lbd_store *s, char *why, size_t size)
{
	static const char *const ext[] = { "", "-wal", "-shm" };
	char       stamp[32], from[PATH_MAX + 8], to[PATH_MAX + 48];
	time_t     now = time(NULL);
	struct tm  tm;
	size_t     i;

	lbd_os_gmtime(now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(from, sizeof(from), "%s%s", s->file, ext[i]);
		snprintf(to, sizeof(to), "%s.damaged-%s%s", s->file, stamp,
		    ext[i]);
		if (lockfs_fs_rename_at(LOCKFS_FS_CWD, from, to) != 0 &&
		    (i == 0 || errno != ENOENT)) {
			snprintf(why, size, "state database %s is damaged (%s) "
			    "and cannot be moved aside: %s: %s", s->file,
			    s->why, from, strerror(errno));
			return -1;
		}
	}
	log_err("state database %s is damaged (%s): moved aside as "
	    "%s.damaged-%s; starting with a new one.  Locks held through "
	    "the previous daemon stay held by their lock files, unknown to "
	    "this one (see lockbrokerd(8), STATE DATABASE)", s->file, s->why,
	    s->file, stamp);
	return 0;
}

/* Judges at start whether the previous run's riders of connections are
 * recorded (d->riders_by_markers 0) or are taken on their markers: a
 * database of an earlier release (holds, no conn_riders), or one whose
 * meta says so still (a restart before a grace period of this release
 * ended); marked so in meta, in the iteration's transaction. */
static void
store_riders_judge(struct lbd *d)
{
	struct lbd_store *s = d->store;

	d->riders_by_markers = (s->had_holds && !s->had_riders) ||
	    lbd_store_meta_get(d, RIDERS_BY_MARKERS) != 0;
	if (d->riders_by_markers) {
		log_info("state database: the riders of shared holds of the "
		    "previous run are taken back on their markers (a "
		    "database of an earlier release records none)");
		lbd_store_meta_set(d, RIDERS_BY_MARKERS, 1);
	}
}

/* lbd_store_open: see store.h. */
int
lbd_store_open(struct lbd *d, const char *file, char *why, size_t size)
{
	struct lbd_store     *s;
	struct lockfs_fs_info sb;
	mode_t                old_mask;
	int               r = -1, damaged, rc;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(why, size, "out of memory");
		return -1;
	}
	d->store = s;
	if (snprintf(s->file, sizeof(s->file), "%s", file) >=
	    (int)sizeof(s->file)) {
		snprintf(why, size, "state database path too long: %s", file);
		goto out;
	}
	floor_read(s);
	if ((damaged = store_damaged(s)) == -1) {
		snprintf(why, size, "state database %s: %s", file, s->why);
		goto out;
	}
	if (damaged && store_move_aside(s, why, size) != 0)
		goto out;
	/* Made readable by the daemon's user only, at start and when made
	 * anew alike (sqlite gives its -wal and -shm the database's mode):
	 * the kernel lets clients' steps into the daemon's open files
	 * through /proc/self/fd, whoever's credentials it has taken on. */
	if (lbd_walshm_install() != 0)
		log_debug("sqlite's unix VFS takes no fcntl of ours: the state "
		    "database's locks are taken as it takes them");
	old_mask = lbd_os_umask(0077);
	rc = sqlite3_open_v2(file, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL);
	lbd_os_umask(old_mask);
	if (rc != SQLITE_OK) {
		if (s->db != NULL)
			store_failed(s);
		snprintf(why, size, "state database %s: %s", file,
		    s->db != NULL ? s->why : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (store_exec(s, "PRAGMA journal_mode=WAL") != 0 ||
	    store_table_known(s, "holds", &s->had_holds) != 0 ||
	    store_table_known(s, "conn_riders", &s->had_riders) != 0 ||
	    store_exec(s, schema) != 0 || store_upgrade(s) != 0 ||
	    sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO holds (lock_file,"
	    " method, path, unique_name, pid, tid, uid, gid, start, boot, "
	    "token, since, kept, supp_groups, dir_dev, dir_ino, releasing, "
	    "from_unique, from_pid, from_uid, from_dev, from_ino, from_ctime, "
	    "shared) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
	    "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)", -1,
	    &s->add,
	    NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM holds WHERE lock_file = ?1 "
	    "AND method = ?2 AND token = ?3", -1, &s->del, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO conn_riders "
	    "(lock_file, method, path, pid, start, boot, uid, gid, "
	    "supp_groups, token, since, tid, conns) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", -1, &s->rider_put,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM conn_riders WHERE "
	    "lock_file = ?1 AND method = ?2 AND pid = ?4 AND start = ?5 AND "
	    "uid = ?7 AND tid = ?12", -1, &s->rider_del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL) !=
	    SQLITE_OK) {
		if (!s->failed)
			store_failed(s);
		snprintf(why, size, "state database %s: %s", file, s->why);
		goto out;
	}
	if (store_users_load(s) != 0) {
		snprintf(why, size, "state database %s: its users: %s", file,
		    s->why);
		goto out;
	}
	if (lbd_store_next_generation(d) != 0) {
		snprintf(why, size, "state database %s: cannot write: %s",
		    file, s->why);
		goto out;
	}
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, file, LOCKFS_FS_FOLLOW, &sb) !=
	    0) {
		snprintf(why, size, "state database %s: %s", file,
		    strerror(errno));
		goto out;
	}
	s->dev = sb.dev;
	s->ino = sb.ino;
	s->failed = s->resync = 0;
	lbd_walshm_watch(file);
	if (!d->store_lost)     /* at start; a database made anew keeps it */
		store_riders_judge(d);
	r = 0;
out:
	if (r != 0)
		lbd_store_close(d);
	return r;
}

/* lbd_store_close: commits and closes; d->store becomes NULL. */
void
lbd_store_close(struct lbd *d)
{
	struct lbd_store *s = d->store;

	if (s == NULL)
		return;
	if (s->in_txn)
		lbd_store_commit(d);
	sqlite3_finalize(s->add);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->rider_put);
	sqlite3_finalize(s->rider_del);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	lbd_walshm_watch(NULL);         /* its -shm is closed next */
	sqlite3_close(s->db);
	free(s);
	d->store = NULL;
}

/* Runs a prepared change statement and resets it. */
static int
store_step(struct lbd_store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return 0;
	store_failed(s);
	log_err("state database: %s", s->why);
	return -1;
}

/* Opens the iteration's transaction if it is not open yet: one that
 * changes nothing so far (riders_only till another change). */
static int
store_open_txn(struct lbd_store *s)
{
	if (s->in_txn)
		return 0;
	if (store_step(s, s->begin) != 0)
		return -1;
	s->in_txn = 1;
	s->riders_only = 1;
	s->riders_new = 0;
	s->carried = 0;
	return 0;
}

/* Begins the iteration's transaction for a change that is not a rider's
 * row: committed by the iteration's settle, never carried over
 * (lbd_store_carry). */
static int
store_begin(struct lbd_store *s)
{
	if (store_open_txn(s) != 0)
		return -1;
	s->riders_only = 0;
	return 0;
}

/* Begins the iteration's transaction for a rider's row (conn_riders),
 * a change that may be carried over with the replies that announce it
 * (lbd_store_carry). */
static int
store_begin_riders(struct lbd_store *s)
{
	if (store_open_txn(s) != 0)
		return -1;
	s->riders_new = 1;
	return 0;
}

/* Notes that sid has number uid (users, users_next); 0, or -1 when out
 * of memory. */
static int
user_note(uid_t uid, const char *sid)
{
	struct store_user *u;
	size_t             size;

	if (nusers == users_size) {
		size = users_size == 0 ? 16 : users_size * 2;
		if ((u = realloc(users, size * sizeof(*u))) == NULL)
			return -1;
		users = u;
		users_size = size;
	}
	if ((users[nusers].sid = strdup(sid)) == NULL)
		return -1;
	users[nusers++].uid = uid;
	if (uid >= users_next)
		users_next = uid + 1;
	return 0;
}

/* The number of user sid, or NULL when it has none yet. */
static const struct store_user *
user_find(const char *sid)
{
	size_t i;

	for (i = 0; i < nusers; i++)
		if (strcmp(users[i].sid, sid) == 0)
			return &users[i];
	return NULL;
}

/* Whether number uid is given already. */
static int
uid_taken(uid_t uid)
{
	size_t i;

	for (i = 0; i < nusers; i++)
		if (users[i].uid == uid)
			return 1;
	return 0;
}

/* Records u in the database, inside the open transaction (begun if
 * need be).  0, or -1 (logged). */
static int
store_user_add(struct lbd_store *s, const struct store_user *u)
{
	sqlite3_stmt *st = NULL;
	int           r = -1;

	if (store_begin(s) != 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO users (uid, sid)"
	    " VALUES (?1, ?2)", -1, &st, NULL) != SQLITE_OK) {
		store_failed(s);
		log_err("state database: %s", s->why);
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)u->uid);
	sqlite3_bind_text(st, 2, u->sid, -1, SQLITE_STATIC);
	r = store_step(s, st);
out:
	sqlite3_finalize(st);
	return r;
}

/* Reads the users table into users (a number given in this run already
 * wins: it is written back with the next resync).  0, or -1 (s->why). */
static int
store_users_load(struct lbd_store *s)
{
	sqlite3_stmt *st = NULL;
	const char   *sid;
	uid_t         uid;
	int           rc, r = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT uid, sid FROM users", -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = (uid_t)sqlite3_column_int64(st, 0);
		sid = (const char *)sqlite3_column_text(st, 1);
		if (sid == NULL || uid == 0 || user_find(sid) != NULL ||
		    uid_taken(uid))
			continue;
		if (sqlite3_column_int64(st, 0) < 0 ||
		    sqlite3_column_int64(st, 0) >= LBD_STORE_UID_MAX) {
			log_warn("state database: user %s: uid %lld out of "
			    "range (1 to %ld): not taken", sid,
			    (long long)sqlite3_column_int64(st, 0),
			    (long)LBD_STORE_UID_MAX - 1);
			continue;
		}
		if (user_note(uid, sid) != 0)
			goto out;
	}
	if (rc == SQLITE_DONE)
		r = 0;
out:
	if (r != 0)
		store_failed(s);
	sqlite3_finalize(st);
	return r;
}

/* lbd_store_user_uid: see store.h. */
int
lbd_store_user_uid(struct lbd *d, const char *sid, uid_t *uid)
{
	const struct store_user *u;
	int                      r = -1;

	if ((u = user_find(sid)) == NULL) {
		if (users_next >= LBD_STORE_UID_MAX) {
			log_err("user %s: no number left to give (every one "
			    "below %ld is given)", sid,
			    (long)LBD_STORE_UID_MAX);
			errno = EOVERFLOW;
			goto out;
		}
		if (user_note(users_next, sid) != 0) {
			errno = ENOMEM;
			goto out;
		}
		u = &users[nusers - 1];
		log_info("user %s: uid %ld", sid, (long)u->uid);
		if (d->store != NULL)
			store_user_add(d->store, u);    /* else at the resync */
	}
	*uid = u->uid;
	r = 0;
out:
	return r;
}

/* lbd_store_uid_known: see store.h. */
int
lbd_store_uid_known(uid_t uid)
{
	return uid_taken(uid);
}

/* Binds h to the add statement and runs it.  (Its lock file and unique
 * name are made here: a hold keeps only its path between steps.) */
static int
store_add(struct lbd_store *s, const struct lbd_hold *h)
{
	const struct lbd_hold *from = h->swap_from;
	const struct lockfs_file_id *id = h->swap_from_id;
	sqlite3_stmt          *st = s->add;
	char                   file[PATH_MAX], unique[PATH_MAX];
	char                   from_unique[PATH_MAX];

	lbd_lock_file(h->lock, file);
	if (lockfs_unique_format(&h->fs.owner, h->fs.method, file, unique,
	    sizeof(unique)) == -1 || (from != NULL &&
	    lockfs_unique_format(&from->fs.owner, from->fs.method, file,
	    from_unique, sizeof(from_unique)) == -1)) {
		snprintf(s->why, sizeof(s->why), "%s: unique name: %s",
		    h->fs.path, strerror(errno));
		s->failed = s->resync = 1;
		log_err("state database: %s", s->why);
		return -1;
	}
	sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)h->fs.method);
	sqlite3_bind_text(st, 3, h->fs.path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, unique, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, h->fs.owner.pid);
	sqlite3_bind_int64(st, 6, h->tid);
	sqlite3_bind_int64(st, 7, h->uid);
	sqlite3_bind_int64(st, 8, h->gid);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)h->fs.owner.start);
	sqlite3_bind_text(st, 10, h->fs.owner.boot, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)h->token);
	sqlite3_bind_double(st, 12, h->since);
	sqlite3_bind_int(st, 13, h->kept);
	if (h->creds->ngroups > 0)
		sqlite3_bind_blob(st, 14, h->creds->groups,
		    (int)(h->creds->ngroups * sizeof(gid_t)), SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 14, 0);
	if (h->dir_ino != 0) {
		sqlite3_bind_int64(st, 15, (sqlite3_int64)h->dir_dev);
		sqlite3_bind_int64(st, 16, (sqlite3_int64)h->dir_ino);
	}
	sqlite3_bind_int(st, 17, h->releasing);
	sqlite3_bind_int(st, 24, h->shared);
	if (from != NULL) {
		sqlite3_bind_text(st, 18, from_unique, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 19, from->fs.owner.pid);
		sqlite3_bind_int64(st, 20, from->uid);
	}
	if (from != NULL && id != NULL && id->ino != 0) {
		sqlite3_bind_int64(st, 21, (sqlite3_int64)id->dev);
		sqlite3_bind_int64(st, 22, (sqlite3_int64)id->ino);
		sqlite3_bind_int64(st, 23, (sqlite3_int64)id->ctime_ns);
	}
	return store_step(s, st);
}

/* Records kept rider r (add 1) or forgets it (add 0) in the riders
 * table, inside the open transaction: 0, or -1 (logged). */
static int
store_rider(struct lbd_store *s, const struct lbd_hold *r, int add)
{
	sqlite3_stmt *st = NULL;
	char          file[PATH_MAX];
	int           rc;

	if (sqlite3_prepare_v2(s->db, add ? "INSERT OR REPLACE INTO riders "
	    "(lock_file, method, path, pid, start, boot, uid, gid, "
	    "supp_groups, token, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	    "?8, ?9, ?10, ?11)" : "DELETE FROM riders WHERE lock_file = ?1 "
	    "AND method = ?2 AND pid = ?4 AND start = ?5 AND uid = ?7", -1,
	    &st, NULL) !=
	    SQLITE_OK) {
		store_failed(s);
		log_err("state database: %s", s->why);
		return -1;
	}
	sqlite3_bind_text(st, 1, lbd_lock_file(r->lock, file), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)r->fs.method);
	sqlite3_bind_int64(st, 4, r->fs.owner.pid);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->fs.owner.start);
	sqlite3_bind_int64(st, 7, r->uid);
	if (add) {
		sqlite3_bind_text(st, 3, r->lock->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->fs.owner.boot, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, r->gid);
		sqlite3_bind_blob(st, 9, r->creds->ngroups > 0 ?
		    (const void *)r->creds->groups : "",
		    (int)(r->creds->ngroups * sizeof(gid_t)), SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, (sqlite3_int64)r->token);
		sqlite3_bind_double(st, 11, r->since);
	}
	rc = store_step(s, st);
	sqlite3_finalize(st);
	return rc;
}

/* Records that conns connections ride r's lock on rider r's marker as
 * r's user (conns 0: none, the row deleted) in the conn_riders table,
 * inside the open transaction: 0, or -1 (logged). */
static int
store_conn_rider(struct lbd_store *s, const struct lbd_hold *r,
    unsigned conns)
{
	sqlite3_stmt *st = conns > 0 ? s->rider_put : s->rider_del;
	char          file[PATH_MAX];

	sqlite3_bind_text(st, 1, lbd_lock_file(r->lock, file), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)r->fs.method);
	sqlite3_bind_int64(st, 4, r->fs.owner.pid);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->fs.owner.start);
	sqlite3_bind_int64(st, 7, r->uid);
	sqlite3_bind_int64(st, 12, r->fs.owner.tid);
	if (conns > 0) {
		sqlite3_bind_text(st, 3, r->lock->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->fs.owner.boot, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, r->gid);
		sqlite3_bind_blob(st, 9, r->creds->ngroups > 0 ?
		    (const void *)r->creds->groups : "",
		    (int)(r->creds->ngroups * sizeof(gid_t)), SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, (sqlite3_int64)r->token);
		sqlite3_bind_double(st, 11, r->since);
		sqlite3_bind_int64(st, 13, conns);
	}
	return store_step(s, st);
}

/* Rewrites the conn_riders table from memory (every lock's riders of
 * connections, and those of the previous run that may still reclaim,
 * readers.c), inside the open transaction: 0, or -1 (logged). */
static int
store_conn_riders_write(struct lbd *d)
{
	struct lbd_store *s = d->store;
	struct lbd_lock  *l;
	struct lbd_hold  *r;
	size_t            i;

	if (store_exec(s, "DELETE FROM conn_riders") != 0)
		return -1;
	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = l->hash_next) {
			TAILQ_FOREACH(r, &l->readers, reader_entry)
				if (!r->kept && store_conn_rider(s, r,
				    lbd_reader_conns(r)) != 0)
					return -1;
			TAILQ_FOREACH(r, &l->awaited, reader_entry)
				if (store_conn_rider(s, r,
				    lbd_reader_conns(r)) != 0)
					return -1;
		}
	return 0;
}

/* Rewrites the holds table from memory (every connection's holds, the
 * orphans and the releasing holds), inside the open transaction: 0, or
 * -1 (logged). */
static int
store_resync(struct lbd *d)
{
	struct lbd_store *s = d->store;
	struct lbd_conn  *c;
	struct lbd_hold  *h;
	size_t            i;

	if (store_exec(s, "DELETE FROM holds") != 0)
		return -1;
	for (i = 0; i < nusers; i++)
		if (store_user_add(s, &users[i]) != 0)
			return -1;
	TAILQ_FOREACH(c, &d->conns, entry)
		LIST_FOREACH(h, &c->holds, conn_entry)
			if (store_add(s, h) != 0)
				return -1;
	LIST_FOREACH(h, &d->orphans, conn_entry)
		if (store_add(s, h) != 0)
			return -1;
	LIST_FOREACH(h, &d->releasing, conn_entry)
		if (store_add(s, h) != 0)
			return -1;
	if (store_exec(s, "DELETE FROM riders") != 0)
		return -1;
	LIST_FOREACH(h, &d->kept_riders, conn_entry)
		if (store_rider(s, h, 1) != 0)
			return -1;
	if (d->riders_by_markers &&
	    store_exec(s, "INSERT OR REPLACE INTO meta (key, value) VALUES "
	    "('" RIDERS_BY_MARKERS "', 1)") != 0)
		return -1;
	return store_conn_riders_write(d);
}

/* lbd_store_hold_add: see store.h. */
int
lbd_store_hold_add(struct lbd *d, const struct lbd_hold *h)
{
	struct lbd_store *s = d->store;
	int               r;

	if (s == NULL || store_begin(s) != 0)
		r = -1;
	else
		r = store_add(s, h);
	lbd_walshm_flush();
	return r;
}

/* lbd_store_rider: see store.h. */
int
lbd_store_rider(struct lbd *d, const struct lbd_hold *r, int add)
{
	struct lbd_store *s = d->store;
	int               rc;

	if (s == NULL || store_begin(s) != 0)
		rc = -1;
	else
		rc = store_rider(s, r, add);
	lbd_walshm_flush();
	return rc;
}

/* lbd_store_conn_rider: see store.h. */
int
lbd_store_conn_rider(struct lbd *d, const struct lbd_hold *r,
    unsigned conns)
{
	struct lbd_store *s = d->store;
	int               rc;

	if (s == NULL || store_begin_riders(s) != 0)
		rc = -1;
	else
		rc = store_conn_rider(s, r, conns);
	lbd_walshm_flush();
	return rc;
}

/* lbd_store_carry: see store.h. */
int
lbd_store_carry(struct lbd *d)
{
	struct lbd_store *s = d->store;

	if (s == NULL || !s->in_txn || !s->riders_only || !s->riders_new ||
	    s->failed || s->carried >= LBD_STORE_CARRY_MAX)
		return 0;
	s->carried++;
	s->riders_new = 0;
	return 1;
}

/* lbd_store_conn_riders_known: see store.h. */
int
lbd_store_conn_riders_known(struct lbd *d)
{
	return !d->riders_by_markers;
}

/* lbd_store_conn_riders_recorded: see store.h. */
void
lbd_store_conn_riders_recorded(struct lbd *d)
{
	if (!d->riders_by_markers)
		return;
	d->riders_by_markers = 0;
	lbd_store_meta_set(d, RIDERS_BY_MARKERS, 0);
}

/* lbd_store_riders_rewrite: see store.h. */
int
lbd_store_riders_rewrite(struct lbd *d)
{
	struct lbd_store *s = d->store;
	struct lbd_hold  *r;
	int               rc = -1;

	if (s != NULL && store_begin(s) == 0 &&
	    store_exec(s, "DELETE FROM riders") == 0) {
		rc = 0;
		LIST_FOREACH(r, &d->kept_riders, conn_entry)
			if ((rc = store_rider(s, r, 1)) != 0)
				break;
		if (rc == 0)
			rc = store_conn_riders_write(d);
	}
	lbd_walshm_flush();
	return rc;
}

/* lbd_store_hold_add_new: see store.h. */
int
lbd_store_hold_add_new(struct lbd *d, const char *file,
    const struct lbd_store_hold *rec)
{
	struct lbd_store *s = d->store;
	sqlite3_stmt     *st = NULL;
	int               r = -1;

	if (s == NULL || store_begin(s) != 0)
		goto out;
	/* A recorded hold of the lock with an older token ended in the
	 * iteration the noted grant was made in (a fresh grant is tried only
	 * when the lock has no holder), its end not committed: replaced. */
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO holds (lock_file,"
	    " method, path, unique_name, pid, tid, uid, gid, start, boot, "
	    "token, since, kept, supp_groups, dir_dev, dir_ino) SELECT ?1, "
	    "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
	    "?16 WHERE NOT EXISTS (SELECT 1 FROM holds WHERE lock_file = ?1 "
	    "AND method = ?2 AND token >= ?11)", -1, &st, NULL) != SQLITE_OK) {
		store_failed(s);
		log_err("state database: %s", s->why);
		goto out;
	}
	sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)rec->method);
	sqlite3_bind_text(st, 3, rec->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rec->unique, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, rec->pid);
	sqlite3_bind_int64(st, 6, rec->tid);
	sqlite3_bind_int64(st, 7, rec->uid);
	sqlite3_bind_int64(st, 8, rec->gid);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)rec->start);
	sqlite3_bind_text(st, 10, rec->boot, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)rec->token);
	sqlite3_bind_double(st, 12, rec->since);
	sqlite3_bind_int(st, 13, rec->kept);
	sqlite3_bind_blob(st, 14, rec->ngroups > 0 ? rec->groups : "",
	    (int)(rec->ngroups * sizeof(gid_t)), SQLITE_STATIC);
	if (rec->dir_ino != 0) {
		sqlite3_bind_int64(st, 15, (sqlite3_int64)rec->dir_dev);
		sqlite3_bind_int64(st, 16, (sqlite3_int64)rec->dir_ino);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_failed(s);
		log_err("state database: %s", s->why);
		goto out;
	}
	r = sqlite3_changes(s->db) > 0;
out:
	sqlite3_finalize(st);
	lbd_walshm_flush();
	return r;
}

/* lbd_store_hold_del: see store.h. */
int
lbd_store_hold_del(struct lbd *d, const struct lbd_hold *h)
{
	struct lbd_store *s = d->store;
	sqlite3_stmt     *st;
	char              file[PATH_MAX];

	if (s == NULL || store_begin(s) != 0) {
		lbd_walshm_flush();
		return -1;
	}
	st = s->del;
	sqlite3_bind_text(st, 1, lbd_lock_file(h->lock, file), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)h->fs.method);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)h->token);
	return store_step(s, st);
}

/* lbd_store_meta_get: see store.h. */
int64_t
lbd_store_meta_get(struct lbd *d, const char *key)
{
	struct lbd_store *s = d->store;
	sqlite3_stmt     *st = NULL;
	int64_t           v = 0;

	if (s != NULL && sqlite3_prepare_v2(s->db, "SELECT value FROM meta "
	    "WHERE key = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

/* lbd_store_meta_set: see store.h. */
int
lbd_store_meta_set(struct lbd *d, const char *key, int64_t value)
{
	struct lbd_store *s = d->store;
	sqlite3_stmt     *st = NULL;
	int               r = -1;

	if (s == NULL || store_begin(s) != 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, value != 0 ? "INSERT INTO meta (key, "
	    "value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = "
	    "excluded.value" : "DELETE FROM meta WHERE key = ?1", -1, &st,
	    NULL) != SQLITE_OK) {
		store_failed(s);
		log_err("state database: %s", s->why);
		goto out;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (value != 0)
		sqlite3_bind_int64(st, 2, value);
	r = store_step(s, st);
out:
	sqlite3_finalize(st);
	lbd_walshm_flush();
	return r;
}

/* lbd_store_commit: see store.h.  A transaction one of whose changes
 * failed, or that sqlite rolled back itself (it does on a full disk), is
 * rolled back rather than committed in part. */
int
lbd_store_commit(struct lbd *d)
{
	struct lbd_store *s = d->store;
	int               r = -1;

	if (s == NULL || !s->in_txn)
		return 0;
	s->in_txn = 0;
	if (s->failed || sqlite3_get_autocommit(s->db)) {
		if (!s->failed) {
			snprintf(s->why, sizeof(s->why), "the transaction "
			    "was rolled back");
			s->failed = s->resync = 1;
		}
		log_err("state database: not committed: %s", s->why);
		goto out;
	}
	if (s->resync && store_resync(d) != 0)
		goto out;
	if (store_step(s, s->commit) == 0) {
		s->resync = 0;
		r = 0;
		goto done;
	}
out:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
done:
	lbd_walshm_flush();     /* the commit's unlocks, a checkpoint's */
	return r;
}

/* lbd_store_check: see store.h. */
int
lbd_store_check(struct lbd *d)
{
	struct lbd_store     *s = d->store;
	struct lockfs_fs_info sb;
	char              why[PATH_MAX + 512], dir[PATH_MAX];
	int               gone;

	if (s != NULL) {
		if (lockfs_fs_info_at(LOCKFS_FS_CWD, s->file,
		    LOCKFS_FS_FOLLOW, &sb) != 0)
			gone = errno == ENOENT;
		else if (sb.dev == s->dev && sb.ino == s->ino)
			return 0;
		else
			gone = 0;
		log_err("state database %s was %s while the daemon ran: "
		    "making it anew, with a new generation and every hold "
		    "recorded again", s->file, gone ? "deleted" : "replaced");
		/* Closed first: its -wal and -shm, at the same paths as the
		 * new one's, go with it.  Its open changes are in memory,
		 * to be written again. */
		if (s->in_txn) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			s->in_txn = 0;
		}
		lbd_store_close(d);
		d->store_lost = 1;
	}
	if (!d->store_lost)
		return 0;
	if (lbd_dirs_parent(d->cfg.state, dir, sizeof(dir)) == 0)
		lbd_os_mkdir(dir, 0700); /* gone with the file, maybe (a
		                            root: EEXIST) */
	/* Judged again: one made meanwhile by another is not taken. */
	if (lbd_statedir_judge(d->cfg.state, why, sizeof(why)) != 0 ||
	    lbd_store_open(d, d->cfg.state, why, sizeof(why)) != 0) {
		if (d->store_lost == 1)
			log_err("%s; grants are refused until it can be made "
			    "(tried again every few seconds)", why);
		d->store_lost = 2;
		return -1;
	}
	d->store_lost = 0;
	s = d->store;
	d->counter = 0;
	s->resync = 1;
	if (store_begin(s) != 0 || lbd_store_commit(d) != 0)
		return -1;      /* logged; the next commit tries again */
	log_notice("state database %s made anew (generation %llu), with "
	    "every hold", s->file, (unsigned long long)d->generation);
	return 1;
}

/* lbd_store_settle: see store.h. */
int
lbd_store_settle(struct lbd *d, char *why, size_t size)
{
	struct lbd_store *s = d->store;
	int               r;

	if (s == NULL && !d->store_lost)
		return 0;
	/* Changes or grants to record: is it still the same file? */
	if (s != NULL ? s->in_txn : !TAILQ_EMPTY(&d->acks))
		lbd_store_check(d);
	if ((s = d->store) == NULL) {
		snprintf(why, size, "the state database %s is gone and cannot "
		    "be made anew", d->cfg.state);
		return -1;
	}
	r = lbd_store_commit(d);
	if (s->failed) {
		snprintf(why, size, "%s", s->why);
		r = -1;
	}
	s->failed = 0;
	return r;
}

/* lbd_store_each_hold: see store.h.  Ordered by token, a column of no
 * index: sqlite sorts every row before the first comes back, so that
 * what fn changes in the table (a hold ended, handed to a kept reader
 * and recorded anew: reconcile.c) is never met again by this walk. */
int
lbd_store_each_hold(struct lbd *d,
    void (*fn)(struct lbd *, const struct lbd_store_hold *))
{
	struct lbd_store     *s = d->store;
	struct lbd_store_hold h;
	sqlite3_stmt         *st = NULL;
	const unsigned char  *t;
	int                   rc, n;

	if (sqlite3_prepare_v2(s->db, "SELECT path, method, unique_name, pid, "
	    "tid, uid, gid, start, boot, token, since, kept, supp_groups, "
	    "dir_dev, dir_ino, releasing, from_unique, from_pid, from_uid, "
	    "from_dev, from_ino, from_ctime, shared FROM holds ORDER BY token",
	    -1, &st, NULL) != SQLITE_OK) {
		log_err("state database: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&h, 0, sizeof(h));
		if ((t = sqlite3_column_text(st, 0)) != NULL)
			snprintf(h.path, sizeof(h.path), "%s", t);
		h.method = (unsigned)sqlite3_column_int(st, 1);
		if ((t = sqlite3_column_text(st, 2)) != NULL)
			snprintf(h.unique, sizeof(h.unique), "%s", t);
		h.pid = (pid_t)sqlite3_column_int64(st, 3);
		h.tid = (pid_t)sqlite3_column_int64(st, 4);
		h.uid = (uid_t)sqlite3_column_int64(st, 5);
		h.gid = (gid_t)sqlite3_column_int64(st, 6);
		h.start = (unsigned long long)sqlite3_column_int64(st, 7);
		if ((t = sqlite3_column_text(st, 8)) != NULL)
			snprintf(h.boot, sizeof(h.boot), "%s", t);
		h.token = (uint64_t)sqlite3_column_int64(st, 9);
		h.since = sqlite3_column_double(st, 10);
		h.kept = sqlite3_column_int(st, 11);
		h.groups_known = sqlite3_column_type(st, 12) != SQLITE_NULL;
		h.groups = sqlite3_column_blob(st, 12);
		n = sqlite3_column_bytes(st, 12);
		h.ngroups = h.groups != NULL ? (size_t)n / sizeof(gid_t) : 0;
		if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
			h.dir_dev = (unsigned long long)
			    sqlite3_column_int64(st, 13);
			h.dir_ino = (unsigned long long)
			    sqlite3_column_int64(st, 14);
		}
		h.releasing = sqlite3_column_int(st, 15);
		h.shared = sqlite3_column_int(st, 22);
		if ((t = sqlite3_column_text(st, 16)) != NULL &&
		    sqlite3_column_type(st, 18) != SQLITE_NULL) {
			snprintf(h.from_unique, sizeof(h.from_unique), "%s", t);
			h.from_pid = (pid_t)sqlite3_column_int64(st, 17);
			h.from_uid = (uid_t)sqlite3_column_int64(st, 18);
		}
		if (sqlite3_column_type(st, 20) != SQLITE_NULL &&
		    sqlite3_column_type(st, 21) != SQLITE_NULL) {
			h.from_id.dev = (unsigned long long)
			    sqlite3_column_int64(st, 19);
			h.from_id.ino = (unsigned long long)
			    sqlite3_column_int64(st, 20);
			h.from_id.ctime_ns = sqlite3_column_int64(st, 21);
		}
		fn(d, &h);
	}
	sqlite3_finalize(st);
	lbd_walshm_flush();
	if (rc != SQLITE_DONE)
		log_err("state database: %s", sqlite3_errmsg(s->db));
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Calls fn for every row of the riders table (conn 0) or the
 * conn_riders table (conn 1) of path with method (path NULL: of every
 * lock).  0, or -1 (logged). */
static int
store_each_rider(struct lbd *d, int conn, const char *path,
    unsigned method, void (*fn)(struct lbd *, const struct lbd_store_hold *))
{
	struct lbd_store     *s = d->store;
	struct lbd_store_hold h;
	sqlite3_stmt         *st = NULL;
	const unsigned char  *t;
	char                  sql[256];
	int                   rc, n;

	snprintf(sql, sizeof(sql), "SELECT path, method, pid, start, boot, "
	    "uid, gid, supp_groups, token, since%s FROM %s WHERE ?1 IS NULL "
	    "OR (path = ?1 AND method = ?2)", conn ? ", tid, conns" : "",
	    conn ? "conn_riders" : "riders");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_err("state database: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	if (path != NULL) {
		sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)method);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&h, 0, sizeof(h));
		if ((t = sqlite3_column_text(st, 0)) != NULL)
			snprintf(h.path, sizeof(h.path), "%s", t);
		h.method = (unsigned)sqlite3_column_int(st, 1);
		h.pid = (pid_t)sqlite3_column_int64(st, 2);
		h.start = (unsigned long long)sqlite3_column_int64(st, 3);
		if ((t = sqlite3_column_text(st, 4)) != NULL)
			snprintf(h.boot, sizeof(h.boot), "%s", t);
		h.uid = (uid_t)sqlite3_column_int64(st, 5);
		h.gid = (gid_t)sqlite3_column_int64(st, 6);
		h.groups_known = 1;
		h.groups = sqlite3_column_blob(st, 7);
		n = sqlite3_column_bytes(st, 7);
		h.ngroups = h.groups != NULL ? (size_t)n / sizeof(gid_t) : 0;
		h.token = (uint64_t)sqlite3_column_int64(st, 8);
		h.since = sqlite3_column_double(st, 9);
		h.shared = 1;
		h.kept = !conn;
		if (conn) {
			h.tid = (pid_t)sqlite3_column_int64(st, 10);
			h.conns = (unsigned)sqlite3_column_int64(st, 11);
		}
		fn(d, &h);
	}
	sqlite3_finalize(st);
	lbd_walshm_flush();
	if (rc != SQLITE_DONE)
		log_err("state database: %s", sqlite3_errmsg(s->db));
	return rc == SQLITE_DONE ? 0 : -1;
}

/* lbd_store_each_rider: see store.h. */
int
lbd_store_each_rider(struct lbd *d, const char *path, unsigned method,
    void (*fn)(struct lbd *, const struct lbd_store_hold *))
{
	return store_each_rider(d, 0, path, method, fn);
}

/* lbd_store_each_conn_rider: see store.h. */
int
lbd_store_each_conn_rider(struct lbd *d, const char *path, unsigned method,
    void (*fn)(struct lbd *, const struct lbd_store_hold *))
{
	return store_each_rider(d, 1, path, method, fn);
}
