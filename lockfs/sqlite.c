/*
 * sqlite.c: the sqlite method (lockfile's SQLiteLockFile): a row
 * (lock_file, unique_name) in the table `locks` of a database file.
 * lockfile keeps that database per process, so it excludes nothing between
 * processes; ours is one file shared by every process (see
 * lockfs_sqlite_db for where), and every step is one IMMEDIATE
 * transaction, so it really excludes.
 *
 * Each step opens the database and closes it again (a handle then holds no
 * sqlite connection that a fork could share), unless the process keeps
 * connections (lockfs_sqlite_keep, the daemon: see "Kept connections"
 * below, keyed by the file and the whole credentials that opened them).
 * The database stays in rollback-journal mode (see "Why not WAL" below).
 * It is never opened through a
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
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
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

/* Writes into path (size bytes) the name lockfs_sqlite_open opens file
 * by: its directory resolved now (lockfs_fs_realpath, with the calling
 * thread's credentials), then its last component.  0, or -1 when the directory
 * cannot be resolved or the name does not fit. */
static int
sq_resolved(const char *file, char *path, size_t size)
{
	char        dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(file, '/'), *name = file;
	int         n;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    (int)lockfs_dir_len(file), file);
	if (slash != NULL)
		name = slash + 1;
	if (*name == '\0' || lockfs_fs_realpath(dir, real) == -1)
		return -1;
	n = snprintf(path, size, "%s%s%s", real,
	    strcmp(real, "/") == 0 ? "" : "/", name);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The collation LOCKFS_SQLITE_NAMES: names compared as the system's
 * file systems compare them (lockfs_os_names_cmp). */
static int
sq_names_cmp(void *arg, int alen, const void *a, int blen, const void *b)
{
	(void)arg;
	return lockfs_os_names_cmp(a, alen, b, blen);
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
 * later step, leaves its reason in lockfs_sqlite_vfs_refused()), and
 * given the collation LOCKFS_SQLITE_NAMES, which lockfs's statements
 * compare names with.
 */
int
lockfs_sqlite_open(const char *file, int flags, sqlite3 **db,
    const char **why)
{
	char                  path[PATH_MAX];
	const char           *vfs;
	struct lockfs_fs_info fi;
	int                   rc;

	if (sq_resolved(file, path, sizeof(path)) != 0)
		snprintf(path, sizeof(path), "%s", file);
	*db = NULL;
	*why = NULL;
	lockfs_sqlite_vfs_clear();
	if ((vfs = lockfs_sqlite_vfs()) == NULL) {
		*why = "sqlite has no VFS of this system's to open it with";
		return SQLITE_CANTOPEN;
	}
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, path, 0, &fi) == 0 &&
	    fi.type != LOCKFS_FS_FILE) {
		*why = fi.type == LOCKFS_FS_SYMLINK ? "it is a symbolic link" :
		    fi.type == LOCKFS_FS_DIRECTORY ? "it is a directory" :
		    "it is not a regular file";
		return SQLITE_CANTOPEN;
	}
#ifdef SQLITE_OPEN_NOFOLLOW
	flags |= SQLITE_OPEN_NOFOLLOW;
#endif
	if ((rc = sqlite3_open_v2(path, db, flags, vfs)) == SQLITE_OK)
		rc = sqlite3_create_collation(*db, LOCKFS_SQLITE_NAMES,
		    SQLITE_UTF8, NULL, sq_names_cmp);
	return rc;
}

/*
 * Forks and steps (lockfs_sqlite_step_enter, lockfs_sqlite_step_leave).
 *
 * While a connection is open sqlite keeps process-wide state: its table
 * of open files and the locks each holds, and its mutexes.  A fork
 * copies that state as it finds it; a fork in the middle of another
 * thread's step would give the child a table naming locks no process of
 * its holds, or a mutex that nobody will unlock, and the child's own
 * steps would then fail or hang.  So each step that opens a connection
 * runs inside this gate, and a fork waits at the gate (its prepare
 * handler) until the steps in progress have ended, keeping new ones out
 * meanwhile; the parent and the child open it again after.  A step that
 * does not keep its connection (every process's but the daemon's, which
 * keeps them: lockfs_sqlite_keep) closes it before it leaves the gate,
 * so a child inherits no sqlite connection, no file sqlite has open and
 * no mutex of sqlite's held; it opens connections of its own.
 *
 *   enter:    wait while a fork is at the gate; steps++
 *   leave:    steps--; at 0, wake the fork waiting
 *   prepare:  wait while another fork is at the gate; forking = 1;
 *             wait until steps == 0; return holding gate_mu
 *   parent:   forking = 0; wake the steps waiting; unlock gate_mu
 *   child:    the same, with the gate made anew (no other thread)
 *
 * A thread already inside a step enters again without waiting (depth),
 * so that a nested step cannot wait for a fork that waits for it.  A
 * fork waits at most as long as the longest step in progress (a step
 * waits for a busy database at most lockfs_sqlite_step_ms).  The lock
 * order is: whatever a caller holds around its steps, then gate_mu; so
 * a process registers this gate's handlers (lockfs_sqlite_fork_init)
 * before its own that take such mutexes, for pthread_atfork runs the
 * prepare handlers last registered first.
 */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  gate_cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t  gate_once = PTHREAD_ONCE_INIT;
static int             gate_steps;      /* steps in progress */
static int             gate_forking;    /* a fork is at the gate */
static __thread int    gate_depth;      /* this thread's steps entered */

static void
gate_fork_prepare(void)
{
	pthread_mutex_lock(&gate_mu);
	while (gate_forking)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_forking = 1;
	while (gate_steps > 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
}

static void
gate_fork_parent(void)
{
	gate_forking = 0;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/* The child's only thread is the one that forked, in no step: the
 * threads that waited at the gate are not the child's. */
static void
gate_fork_child(void)
{
	gate_forking = 0;
	gate_steps = 0;
	pthread_mutex_unlock(&gate_mu);
	pthread_mutex_init(&gate_mu, NULL);
	pthread_cond_init(&gate_cv, NULL);
}

/* Registers the gate's fork handlers, once.  (Where there is no fork,
 * pthread_atfork may be a macro that registers nothing: mingw-w64's.) */
static void
gate_init(void)
{
	(void)gate_fork_prepare;
	(void)gate_fork_parent;
	(void)gate_fork_child;
	pthread_atfork(gate_fork_prepare, gate_fork_parent, gate_fork_child);
}

/* lockfs_sqlite_fork_init: see lockfs.h. */
void
lockfs_sqlite_fork_init(void)
{
	pthread_once(&gate_once, gate_init);
}

/* lockfs_sqlite_step_enter: see lockfs.h.  Blocks while a fork is at
 * the gate (not in a step already). */
void
lockfs_sqlite_step_enter(void)
{
	if (gate_depth++ > 0)
		return;
	lockfs_sqlite_fork_init();
	pthread_mutex_lock(&gate_mu);
	while (gate_forking)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_steps++;
	pthread_mutex_unlock(&gate_mu);
}

/* lockfs_sqlite_step_leave: see lockfs.h. */
void
lockfs_sqlite_step_leave(void)
{
	if (--gate_depth > 0)
		return;
	pthread_mutex_lock(&gate_mu);
	if (--gate_steps == 0 && gate_forking)
		pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/*
 * Kept connections (lockfs_sqlite_keep: the daemon; off by default).
 *
 * Opening a lock database costs a step about fifty system calls (the
 * name resolved, looked at, opened, its header read, closed), and a kept
 * connection also keeps its parsed schema, its prepared statements and
 * its page cache (sqlite checks the cache against the file's change
 * counter at each transaction).  So a process that keeps connections
 * takes one from here for a step and puts it back after; a step that
 * finds none opens one as without keeping, and keeps it when it may.
 *
 * A connection was opened with the file-system credentials of the thread
 * that opened it (the daemon's: a client's), and it is only ever used
 * again under exactly those: it is keyed by the database's name as the
 * lock gives it, the file's identity (device, inode) and the whole
 * credentials (uid, gid, every supplementary group: the ones the thread
 * has now, read from the OS, never told by the caller).  Before each
 * use:
 *   - the name is looked at (lstat, with the step's credentials) and
 *     must still be that very file: a database replaced, renamed away or
 *     deleted is never reached through a connection to the old one, whose
 *     inode the open descriptor keeps from being reused (and the step
 *     that finds it so closes the connections to the old one, whoever's);
 *   - the name sqlite opened it by (its directory resolved then),
 *     beside which sqlite puts and reads the journal, must be the name
 *     an open would use now (kept_journal_beside): a directory renamed
 *     while a connection is kept, the lock's name leading to it through
 *     a link, would leave its old name to whoever makes it again, with a
 *     database and a hot journal of theirs;
 *   - the credentials must still be allowed what the connection was
 *     opened for (read and write, or read only: lockfs_os_files_access,
 *     which sees modes, owners and ACLs as an open would), and a
 *     read-only one must still be refused writing; otherwise the
 *     connection is closed and the step opens anew, and gets what an
 *     open gets.  So a user who could not open the database gets today's
 *     answer, and a chmod or a changed ACL counts at the next step.
 * Where the OS cannot answer for the credentials (ENOSYS), nothing is
 * kept.  A connection is put back only outside any transaction, and only
 * after a step that did not fail (a busy database is not a failure).
 *
 * Bounds: at most keep_max connections (the least recently used closed
 * first) and none unused for longer than keep_idle_ms, closed by
 * lockfs_sqlite_keep_prune (the daemon calls it from a timer), so that a
 * database deleted or a file system to unmount is not held open for long.
 * A connection is taken out of the list while in use: two threads never
 * share one.  None may be closed while another connection of the process
 * holds a lock on the same file: sqlite's unix VFS then sets its
 * descriptor aside (closing it would drop the other's POSIX locks) and
 * hands it to the next open of that file by any name that stats to it,
 * whatever that open's credentials (measured with sqlite 3.40: a
 * connection opened as nobody read a 0600 database of root's so).  The
 * daemon takes its steps on lock databases on one thread, one at a
 * time, and every connection here is closed outside a transaction; steps
 * run on several threads at once would have to keep that.  A forked
 * child forgets the parent's (never closing them: their locks are the
 * parent's).
 *
 * Why not WAL.  A database in WAL mode commits without the three or four
 * fsyncs of a rollback journal, but journal_mode=WAL stays in the file
 * for every later user, and then:
 *   - a user who may only read the database (no write on its directory)
 *     gets "attempt to write a readonly database" whenever no -wal and
 *     -shm are there (sqlite removes them when the last connection
 *     closes), where a rollback-journal database always answers;
 *   - the -wal and -shm files are made by whichever user opens first,
 *     with their gid, so another user of a group-shared database may be
 *     unable to open them, and sqlitevfs.c could no longer refuse a
 *     planted log by its owner;
 *   - WAL's index is shared memory, which a network file system does not
 *     share between hosts: processes on two hosts would no longer exclude
 *     each other.
 * So lock databases stay in rollback-journal mode (and sqlitevfs.c keeps
 * refusing any log), and each write step pays the journal's fsyncs: four
 * fdatasync (the journal twice, its directory, the database), about three
 * quarters of a broker acquire+release (measured with synchronous=OFF on
 * the kept connections: some 0.5 ms a cycle instead of 2).  They stay:
 * with synchronous=OFF a power loss in the middle of a step can leave the
 * database corrupt, every lock in it then failing for every user (Python's
 * too) until someone removes it; synchronous=NORMAL saves one of the four,
 * at a risk sqlite documents for older file systems, and Python's lockfile
 * writes the same database with FULL.
 */
#define SQ_KEEP_GROUPS 64       /* groups kept inline (more: allocated) */

/* The statements a kept connection keeps prepared. */
enum sq_stmt {
	SQ_HOLDER,      /* ?1: the first holder's unique name */
	SQ_LOOK,        /* ?1, ?2: a row, "1" when one is ours */
	SQ_INSERT,
	SQ_DELETE_MINE,
	SQ_DELETE_ALL,
	SQ_NSTMT
};

/* Names compare as the system's file systems compare them (the collation
 * lockfs_sqlite_open gives every connection: on Windows regardless of
 * case, one lock whatever the case of its path's spelling). */
static const char *const sq_sql[SQ_NSTMT] = {
	[SQ_HOLDER] = "SELECT unique_name FROM locks WHERE lock_file = ?1 "
	    "COLLATE " LOCKFS_SQLITE_NAMES " LIMIT 1",
	[SQ_LOOK] = "SELECT unique_name = ?2 COLLATE " LOCKFS_SQLITE_NAMES
	    " AS mine FROM locks WHERE lock_file = ?1 COLLATE "
	    LOCKFS_SQLITE_NAMES " ORDER BY mine DESC LIMIT 1",
	[SQ_INSERT] = "INSERT INTO locks (lock_file, unique_name) VALUES "
	    "(?1, ?2)",
	[SQ_DELETE_MINE] = "DELETE FROM locks WHERE lock_file = ?1 COLLATE "
	    LOCKFS_SQLITE_NAMES " AND unique_name = ?2 COLLATE "
	    LOCKFS_SQLITE_NAMES,
	[SQ_DELETE_ALL] = "DELETE FROM locks WHERE lock_file = ?1 COLLATE "
	    LOCKFS_SQLITE_NAMES,
};

/* File-system credentials, the key of a kept connection with the
 * database's name and identity. */
struct sq_creds {
	uid_t  uid;
	gid_t  gid;
	int    ngroups;
	gid_t *groups;                  /* inline, or allocated */
	gid_t  inline_groups[SQ_KEEP_GROUPS];
};

/* A kept connection. */
struct sq_kept {
	struct sq_kept *prev, *next;    /* the list, most recent first */
	sqlite3        *db;
	sqlite3_stmt   *st[SQ_NSTMT];
	char           *file;           /* the name it was opened by */
	unsigned long long dev;         /* the file it has open */
	unsigned long long ino;
	struct sq_creds cr;             /* whose it is */
	int             readonly;       /* sqlite opened it read-only */
	double          used;           /* put back at (lockfs_now) */
};

static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t  kept_once = PTHREAD_ONCE_INIT;
static struct sq_kept *kept_head, *kept_tail;
static int             kept_n;
static int             keep_max;        /* 0: nothing kept */
static int             keep_idle_ms;

/* In a forked child: the parent's connections are forgotten, unclosed. */
static void
kept_forget_in_child(void)
{
	pthread_mutex_init(&kept_mu, NULL);
	kept_head = kept_tail = NULL;
	kept_n = 0;
}

/* Registers kept_forget_in_child, once.  (Where there is no fork,
 * pthread_atfork may be a macro that registers nothing: mingw-w64's.) */
static void
kept_init(void)
{
	(void)kept_forget_in_child;
	pthread_atfork(NULL, NULL, kept_forget_in_child);
}

/*
 * lockfs_sqlite_keep: from now on keep up to max connections to lock
 * databases open between steps, each closed once unused for idle_ms (by
 * lockfs_sqlite_keep_prune); max 0 keeps none (the default) and closes
 * those kept.  For a process that takes many steps (the daemon); see
 * "Kept connections" above.
 */
void
lockfs_sqlite_keep(int max, int idle_ms)
{
	pthread_once(&kept_once, kept_init);
	pthread_mutex_lock(&kept_mu);
	keep_max = max > 0 ? max : 0;
	keep_idle_ms = idle_ms;
	pthread_mutex_unlock(&kept_mu);
	lockfs_sqlite_keep_prune();
}

/* Frees a connection out of the list: statements, connection, key. */
static void
kept_free(struct sq_kept *k)
{
	int i;

	for (i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(k->st[i]);
	sqlite3_close(k->db);
	if (k->cr.groups != k->cr.inline_groups)
		free(k->cr.groups);
	free(k->file);
	free(k);
}

/* Unlinks k from the list (the lock held). */
static void
kept_unlink(struct sq_kept *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		kept_head = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	else
		kept_tail = k->prev;
	k->prev = k->next = NULL;
	kept_n--;
}

/*
 * lockfs_sqlite_keep_prune: closes the kept connections unused for
 * keep_idle_ms, and all of them when keeping is off.  Takes no step in
 * any database (closing a connection outside a transaction writes
 * nothing), so any credentials do.  The number still kept.
 */
int
lockfs_sqlite_keep_prune(void)
{
	struct sq_kept *k, *gone = NULL;
	double          now = lockfs_now();
	int             n;

	pthread_mutex_lock(&kept_mu);
	while ((k = kept_tail) != NULL && (keep_max == 0 ||
	    (now - k->used) * 1000 >= keep_idle_ms)) {
		kept_unlink(k);
		k->next = gone;
		gone = k;
	}
	n = kept_n;
	pthread_mutex_unlock(&kept_mu);
	while ((k = gone) != NULL) {
		gone = k->next;
		kept_free(k);
	}
	return n;
}

/* Reads the calling thread's credentials into cr: 0, or -1 (nothing to
 * key a connection by: none is kept). */
static int
creds_get(struct sq_creds *cr)
{
	int n;

	cr->groups = cr->inline_groups;
	n = lockfs_os_files_creds(&cr->uid, &cr->gid, cr->groups,
	    SQ_KEEP_GROUPS);
	if (n == -1 && errno == EINVAL) {
		uid_t u;
		gid_t g;

		if ((n = lockfs_os_files_creds(&u, &g, NULL, 0)) <= 0 ||
		    (cr->groups = malloc((size_t)n * sizeof(gid_t))) == NULL)
			return -1;
		n = lockfs_os_files_creds(&u, &g, cr->groups, n);
		if (n == -1 || u != cr->uid || g != cr->gid) {
			free(cr->groups);
			cr->groups = cr->inline_groups;
			return -1;
		}
	}
	if (n < 0)
		return -1;
	cr->ngroups = n;
	return 0;
}

/* Frees what creds_get allocated. */
static void
creds_free(struct sq_creds *cr)
{
	if (cr->groups != cr->inline_groups)
		free(cr->groups);
	cr->groups = cr->inline_groups;
}

/* Whether a and b are the same credentials (the OS lists groups sorted). */
static int
creds_same(const struct sq_creds *a, const struct sq_creds *b)
{
	return a->uid == b->uid && a->gid == b->gid &&
	    a->ngroups == b->ngroups && (a->ngroups == 0 ||
	    memcmp(a->groups, b->groups, (size_t)a->ngroups *
	    sizeof(gid_t)) == 0);
}

/* Takes out of the list the connection to file (st: what is at its name
 * now) of cr's credentials, or NULL. */
static struct sq_kept *
kept_take(const char *file, const struct lockfs_fs_info *st,
    const struct sq_creds *cr)
{
	struct sq_kept *k;

	pthread_mutex_lock(&kept_mu);
	for (k = kept_head; k != NULL; k = k->next)
		if (k->dev == st->dev && k->ino == st->ino &&
		    creds_same(&k->cr, cr) && strcmp(k->file, file) == 0)
			break;
	if (k != NULL)
		kept_unlink(k);
	pthread_mutex_unlock(&kept_mu);
	return k;
}

/* Closes the kept connections to file (by that name, for any
 * credentials) that are not to the file now at its name (st; NULL when
 * nothing is there): a database replaced or deleted is let go at once,
 * not when unused for long. */
static void
kept_drop_stale(const char *file, const struct lockfs_fs_info *st)
{
	struct sq_kept *k, *next, *gone = NULL;

	pthread_mutex_lock(&kept_mu);
	for (k = kept_head; k != NULL; k = next) {
		next = k->next;
		if (strcmp(k->file, file) != 0 || (st != NULL &&
		    k->dev == st->dev && k->ino == st->ino))
			continue;
		kept_unlink(k);
		k->next = gone;
		gone = k;
	}
	pthread_mutex_unlock(&kept_mu);
	while ((k = gone) != NULL) {
		gone = k->next;
		kept_free(k);
	}
}

/* Whether sqlite, using k, would put and read the journal where an open
 * now would: beside the name it opened k's database by (its directory
 * resolved then), which must be the name lockfs_sqlite_open would open
 * the lock's database by now.  sqlitevfs.c judges a journal by the owner
 * of the database at that name; were the directory renamed while k is
 * kept (the lock's name leading to it through a link), its old name could
 * be made again by another user, with a database and a hot journal of
 * that user's, which would be rolled back into k's.  A lock's name with
 * no link on the way is that name itself (looked at by the step); one
 * through a link is resolved again, as an open does. */
static int
kept_journal_beside(const struct sq_kept *k)
{
	const char *real = sqlite3_db_filename(k->db, "main");
	char        path[PATH_MAX];

	if (real == NULL)
		return 0;
	if (strcmp(real, k->file) == 0)
		return 1;
	return sq_resolved(k->file, path, sizeof(path)) == 0 &&
	    strcmp(real, path) == 0;
}

/* Whether k's credentials are still allowed what k was opened for, and
 * no more: read and write, or only read (see "Kept connections"). */
static int
kept_allowed(const struct sq_kept *k)
{
	if (k->readonly)
		return lockfs_os_files_access(k->file, R_OK) == 0 &&
		    lockfs_os_files_access(k->file, W_OK) == -1 &&
		    errno != ENOSYS;
	return lockfs_os_files_access(k->file, R_OK | W_OK) == 0;
}

/* A new kept connection (checked out) for db, opened by file (st: the
 * file it has open) with cr's credentials, which it takes; NULL (and
 * nothing taken) when it cannot be kept. */
static struct sq_kept *
kept_new(sqlite3 *db, const char *file, const struct lockfs_fs_info *st,
    struct sq_creds *cr)
{
	struct sq_kept *k;

	if (lockfs_os_files_access(file, R_OK) == -1 && errno == ENOSYS)
		return NULL;    /* the OS cannot check it again: never kept */
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->file = strdup(file)) == NULL) {
		free(k);
		return NULL;
	}
	k->db = db;
	k->dev = st->dev;
	k->ino = st->ino;
	k->cr = *cr;
	if (cr->groups == cr->inline_groups)
		k->cr.groups = k->cr.inline_groups;
	cr->groups = cr->inline_groups;         /* taken */
	k->readonly = sqlite3_db_readonly(db, "main") == 1;
	return k;
}

/* Puts k back at the head of the list, closing the least recently used
 * beyond keep_max (or k itself when keeping went off meanwhile). */
static void
kept_put(struct sq_kept *k)
{
	struct sq_kept *gone = NULL;

	k->used = lockfs_now();
	pthread_mutex_lock(&kept_mu);
	if (keep_max == 0) {
		gone = k;
		k = NULL;
	} else {
		k->prev = NULL;
		k->next = kept_head;
		if (kept_head != NULL)
			kept_head->prev = k;
		else
			kept_tail = k;
		kept_head = k;
		if (++kept_n > keep_max) {
			gone = kept_tail;
			kept_unlink(gone);
		}
	}
	pthread_mutex_unlock(&kept_mu);
	if (gone != NULL)
		kept_free(gone);
}

/* A step's connection and the code its failures are reported with. */
struct sq {
	sqlite3        *db;
	struct sq_kept *k;         /* a kept connection (db is its), or NULL */
	struct lockfs_fs_info st;  /* l->db looked at before the step ... */
	int             have_st;   /* ... when it could be */
	int             fail;
	int             busy_ok;   /* a try: busy at any step reads as held */
	int             absent;    /* no database (and none made): no lock */
	int             gated;     /* inside the fork gate (see above) */
	const char     *why;       /* why the database was not opened */
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

static void sq_disconnect(struct sq *q, int r);

/*
 * Connects q to l's database: a kept connection when there is one for
 * these credentials and it may still be used, else a new one (kept after
 * the step when it may be: the file at the name the same before and
 * after the open).  Without create, no database there is q->absent (0,
 * q->db NULL).  0, or q->fail with err filled.
 */
static int
sq_connect(struct lockfs_lock *l, struct sq *q, int create,
    struct lockfs_err *err)
{
	struct sq_creds       cr;
	struct lockfs_fs_info after;
	int                   keep = 0;

	lockfs_sqlite_step_enter();      /* left by sq_disconnect */
	q->gated = 1;
	lockfs_sqlite_vfs_clear();
	q->have_st = lockfs_fs_info_at(LOCKFS_FS_CWD, l->db, 0, &q->st) == 0;
	if (!q->have_st && (errno == ENOENT || errno == ENOTDIR)) {
		if (keep_max > 0)
			kept_drop_stale(l->db, NULL);   /* deleted */
		if (!create) {
			q->absent = 1;
			sq_disconnect(q, 0);    /* leaves the gate */
			return 0;
		}
	}
	if (keep_max > 0 && q->have_st && q->st.type == LOCKFS_FS_FILE &&
	    creds_get(&cr) == 0) {
		keep = 1;
		if ((q->k = kept_take(l->db, &q->st, &cr)) != NULL &&
		    (!kept_journal_beside(q->k) || !kept_allowed(q->k))) {
			kept_free(q->k);        /* open as anyone would now */
			q->k = NULL;
		}
		if (q->k != NULL) {
			creds_free(&cr);
			q->db = q->k->db;
			return 0;
		}
		kept_drop_stale(l->db, &q->st); /* replaced, if it was */
	}
	if (lockfs_sqlite_open(l->db, SQLITE_OPEN_READWRITE |
	    (create ? SQLITE_OPEN_CREATE : 0), &q->db, &q->why) !=
	    SQLITE_OK) {
		if (keep)
			creds_free(&cr);
		return sq_fail(l, q, "cannot open", err);
	}
	if (keep && lockfs_fs_info_at(LOCKFS_FS_CWD, l->db, 0, &after) == 0 &&
	    after.type == LOCKFS_FS_FILE && after.dev == q->st.dev &&
	    after.ino == q->st.ino)
		q->k = kept_new(q->db, l->db, &after, &cr);
	if (keep)
		creds_free(&cr);
	return 0;
}

/* Ends q's use of its connection: a kept one goes back to the list when
 * the step did not fail (r is not q->fail) and no transaction is open,
 * else it is closed, as a connection not kept is; then leaves the fork
 * gate, when sq_connect entered it. */
static void
sq_disconnect(struct sq *q, int r)
{
	int i;

	if (q->db == NULL)
		;       /* no connection: only the gate to leave */
	else if (q->k != NULL && r != q->fail &&
	    sqlite3_get_autocommit(q->db)) {
		for (i = 0; i < SQ_NSTMT; i++)
			if (q->k->st[i] != NULL) {
				sqlite3_reset(q->k->st[i]);
				sqlite3_clear_bindings(q->k->st[i]);
			}
		kept_put(q->k);
	} else if (q->k != NULL)
		kept_free(q->k);
	else
		sqlite3_close(q->db);
	q->k = NULL;
	q->db = NULL;
	if (q->gated)
		lockfs_sqlite_step_leave();
	q->gated = 0;
}

/*
 * Begins a transaction on q's connection (IMMEDIATE: with the write lock)
 * and makes lockfile's table in it if needed (create), letting sqlite
 * wait busy_ms for other processes' steps.  0, or q->fail with err filled
 * (the connection kept by q); with q->busy_ok, a database still busy is
 * LB_EALREADY instead.
 */
static int
sq_tx(struct lockfs_lock *l, struct sq *q, const char *begin, int busy_ms,
    int create, struct lockfs_err *err)
{
	int rc;

	sqlite3_busy_timeout(q->db, busy_ms);
	rc = sqlite3_exec(q->db, begin, NULL, NULL, NULL);
	/* Inside the write transaction: no transaction of its own. */
	if (rc == SQLITE_OK && create)
		rc = sqlite3_exec(q->db, "CREATE TABLE IF NOT EXISTS locks ("
		    "lock_file varchar(32), unique_name varchar(32))",
		    NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc == SQLITE_BUSY && q->busy_ok)
		return lockfs_fail(err, LB_EALREADY, 0, "sqlite database %s is "
		    "busy", l->db);
	return sq_fail(l, q, "cannot begin", err);
}

/*
 * Connects to l's database (making it when create) and, unless begin is
 * NULL, begins a transaction with sq_tx; for a read (begin NULL), each
 * statement is then a transaction of its own, waiting busy_ms for other
 * processes' steps.  0 (without create, and no database there:
 * q->absent, q->db NULL), or q->fail with err filled (q->db let go); with
 * busy_ok, a database still busy is LB_EALREADY instead.
 */
static int
sq_begin(struct lockfs_lock *l, struct sq *q, int fail, const char *begin,
    int busy_ms, int busy_ok, int create, struct lockfs_err *err)
{
	int r;

	memset(q, 0, sizeof(*q));
	q->fail = fail;
	q->busy_ok = busy_ok;
	if ((r = sq_connect(l, q, create, err)) != 0 || q->absent)
		goto out;
	sqlite3_busy_timeout(q->db, busy_ms);
	if (begin != NULL)
		r = sq_tx(l, q, begin, busy_ms, create, err);
out:
	if (r != 0)
		sq_disconnect(q, r == LB_EALREADY ? 0 : q->fail);
	return r;
}

/* Commits (rolls back when r is q->fail; nothing for a read) and lets
 * the connection go.  Returns r, or q->fail when the commit fails
 * (LB_EALREADY when a try's commit finds the database still busy:
 * readers keep the commit waiting too). */
static int
sq_end(struct lockfs_lock *l, struct sq *q, int r, struct lockfs_err *err)
{
	int rc;

	if (sqlite3_get_autocommit(q->db))
		;       /* a read: no transaction */
	else if (r == q->fail)
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
	sq_disconnect(q, r);
	return r;
}

/*
 * lockfs_sqlite_bind_path: binds parameter i of st to path (a lock file
 * or a unique name, as lockfs spells them) spelled as the system's own
 * programs spell it (lockfs_os_path_native: on Windows with '\'), the
 * values Python's lockfile writes in its rows there; path itself,
 * unchanged and not copied, on Unix (it must outlive the step).  sqlite's
 * result code (SQLITE_TOOBIG when the spelling does not fit).
 */
int
lockfs_sqlite_bind_path(sqlite3_stmt *st, int i, const char *path)
{
	char        buf[PATH_MAX];
	const char *native = lockfs_os_path_native(path, buf, sizeof(buf));

	if (native == NULL)
		return SQLITE_TOOBIG;
	return sqlite3_bind_text(st, i, native, -1, native == path ?
	    SQLITE_STATIC : SQLITE_TRANSIENT);
}

/*
 * sq_run: runs statement which with ?1 = l->lock_file and ?2 = our unique
 * name (prepared once on a kept connection).  For a query, copies the
 * first column of the first row into out (when out is not NULL) and
 * returns 1 when there was a row, 0 when none; for a change, returns 0.
 * A database without lockfile's table has no row.  q->fail on error.
 */
static int
sq_run(struct lockfs_lock *l, struct sq *q, enum sq_stmt which, char *out,
    size_t size, struct lockfs_err *err)
{
	sqlite3_stmt        *st = q->k != NULL ? q->k->st[which] : NULL;
	const unsigned char *text;
	int                  rc, r;

	if (st == NULL && (rc = sqlite3_prepare_v3(q->db, sq_sql[which], -1,
	    q->k != NULL ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL)) !=
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
	if (q->k != NULL)
		q->k->st[which] = st;
	if (st == NULL ||
	    lockfs_sqlite_bind_path(st, 1, l->lock_file) != SQLITE_OK ||
	    (sqlite3_bind_parameter_count(st) > 1 &&
	    lockfs_sqlite_bind_path(st, 2, l->unique) != SQLITE_OK)) {
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
	else if (strncmp(sqlite3_errmsg(q->db), "no such table", 13) == 0)
		r = 0;  /* the table went since it was prepared */
	else
		r = sq_fail(l, q, "cannot run a statement", err);
out:
	if (q->k == NULL)
		sqlite3_finalize(st);
	else if (st != NULL) {
		sqlite3_reset(st);      /* ends a read's transaction */
		sqlite3_clear_bindings(st);
	}
	return r;
}

/* Runs one query, a transaction of its own: 1, 0, or LB_ERROR; with
 * busy_ok (a try's look), a database still busy is LB_EALREADY.  *st
 * (when st is not NULL) is l->db as looked at before, nlink 0 when it
 * could not be. */
static int
sqlite_query(struct lockfs_lock *l, enum sq_stmt which, char *out,
    size_t size, int busy_ok, struct lockfs_fs_info *st,
    struct lockfs_err *err)
{
	struct sq q;
	int       r;

	if (st != NULL)
		memset(st, 0, sizeof(*st));
	if ((r = sq_begin(l, &q, LB_ERROR, NULL, step_busy_ms, busy_ok, 0,
	    err)) != 0 || q.absent)
		return r;
	if (st != NULL && q.have_st)
		*st = q.st;
	r = sq_run(l, &q, which, out, size, err);
	return sq_end(l, &q, r, err);
}

/* Whether a row naming us is proven ours (see the top of this file):
 * written through l, or in a database of the owner's uid that no group
 * or other user may write.  st: the database as the step looked at it
 * (nlink 0: look now). */
static int
row_proven(struct lockfs_lock *l, const struct lockfs_fs_info *st)
{
	struct lockfs_fs_info now;

	if (l->sqlite_row_ours)
		return 1;
	if (st == NULL || st->nlink == 0) {
		if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->db, 0, &now) == -1)
			return 0;
		st = &now;
	}
	return st->type == LOCKFS_FS_FILE && st->uid == l->owner.uid &&
	    (st->perm & (LOCKFS_FS_WGROUP | LOCKFS_FS_WOTHER)) == 0;
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

/* What SQ_LOOK found: 0 no row, 1 a row of another, 2 a row of ours; or
 * r itself when it is an error. */
static int
look_result(int r, const char *mine)
{
	if (r != 1)
		return r;
	return strcmp(mine, "1") == 0 ? 2 : 1;
}

/*
 * One connection for both parts: a plain look first, so that waiters need
 * not fight for the write lock; then, when the lock looks free (or ours),
 * the write transaction, which looks again and inserts our row.
 */
static int
sqlite_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	char      mine[4] = "";
	int       inserted = 0, r;

	if ((r = sq_begin(l, &q, LB_EFAILED, NULL, step_busy_ms, 1, 1,
	    err)) != 0)
		return r;
	r = look_result(sq_run(l, &q, SQ_LOOK, mine, sizeof(mine), err),
	    mine);
	if (r == 1)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner", l->path);
	else if (r == 2 && !row_proven(l, q.have_st ? &q.st : NULL))
		r = row_unproven(l, LB_EALREADY, err);
	if (r < 0)
		goto out;
	if ((r = sq_tx(l, &q, "BEGIN IMMEDIATE", try_busy_ms, 1, err)) != 0)
		goto out;
	r = look_result(sq_run(l, &q, SQ_LOOK, mine, sizeof(mine), err),
	    mine);
	if (r == 0) {
		r = sq_run(l, &q, SQ_INSERT, NULL, 0, err);
		inserted = r == 0;
	} else if (r == 2)
		r = row_proven(l, q.have_st ? &q.st : NULL) ? 0 :
		    row_unproven(l, LB_EALREADY, err);
	else if (r == 1)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner", l->path);
out:
	if ((r = sq_end(l, &q, r, err)) == 0 && inserted)
		l->sqlite_row_ours = 1;
	return r;
}

static int
sqlite_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	char      mine[4] = "";
	int       r;

	if ((r = sq_begin(l, &q, LB_EUNLOCK, "BEGIN IMMEDIATE", step_busy_ms, 0,
	    0, err)) != 0)
		return r;
	if (q.absent)
		return lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    l->path);
	r = look_result(sq_run(l, &q, SQ_LOOK, mine, sizeof(mine), err),
	    mine);
	if (r == 0)
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    l->path);
	else if (r == 1)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not "
		    "by me", l->path);
	else if (r == 2 && !row_proven(l, q.have_st ? &q.st : NULL))
		r = row_unproven(l, LB_ENOTMINE, err);
	else if (r == 2)
		r = sq_run(l, &q, SQ_DELETE_MINE, NULL, 0, err);
	if ((r = sq_end(l, &q, r, err)) == 0)
		l->sqlite_row_ours = 0;
	return r;
}


static int
sqlite_is_locked(struct lockfs_lock *l, struct lockfs_err *err)
{
	return sqlite_query(l, SQ_HOLDER, NULL, 0, 0, NULL, err);
}

static int
sqlite_i_am_locking(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info st;
	char                  mine[4] = "";
	int                   r = look_result(sqlite_query(l, SQ_LOOK, mine,
	    sizeof(mine), 0, &st, err), mine);

	if (r == 1)
		return 0;
	return r == 2 ? row_proven(l, &st) : r;
}

static int
sqlite_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct sq q;
	int       r;

	if ((r = sq_begin(l, &q, LB_EUNLOCK, "BEGIN IMMEDIATE", step_busy_ms, 0,
	    0, err)) != 0 || q.absent)
		return r;
	r = sq_run(l, &q, SQ_DELETE_ALL, NULL, 0, err);
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
	if ((r = sqlite_query(l, SQ_HOLDER, name, sizeof(name), 0, NULL,
	    err)) == 1)
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
