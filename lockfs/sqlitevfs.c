/*
 * sqlitevfs.c: the sqlite VFS the lock databases are opened with: sqlite's
 * own VFS for this system ("unix", "win32": lockfs_os_sqlite_vfs), except
 * that it will not open a journal another user planted.
 *
 * Why.  Before it reads a database, sqlite rolls back a "hot" journal it
 * finds beside it (DB-journal), and it reads a write-ahead log (DB-wal)
 * whenever one is there, whatever the database's header says.  In a
 * directory others may write (a sticky /tmp), another user can put either
 * there under the database's name, and the next open by the database's
 * user (the daemon, as root, on any STATUS) would write that user's pages
 * into the database: a lock's row vanishes, and a second holder gets in.
 *
 * The rule.  A rollback journal (and a super-journal) is opened only when
 * it is a regular file of the database file's owner or of the user who
 * opens it (sqlite's own journals are one or the other); anything else is
 * refused, with a reason naming the file (lockfs_sqlite_vfs_refused), and
 * sqlite then fails the step with SQLITE_CANTOPEN without reading it.  A
 * write-ahead log is never opened: lock databases stay in rollback mode,
 * so the log, and the -shm index that goes with it (opened by sqlite only
 * for a log it has opened), can only be planted.
 *
 * No race.  sqlite opens the file by its name, so the name is judged
 * before and after sqlite's open, and the two judgements must agree (same
 * file, when one was there before).  Nobody but the database's user and
 * root can make a file of theirs, and in a sticky directory nobody else
 * can remove or rename one of theirs; so when both looks see the same such
 * file, that is what sqlite opened.  When nothing was there before, the
 * file sqlite found or made must be one of those users' too.  (In a
 * directory that is not sticky, whoever may write it may remove the
 * database itself: no lock there is safe from them, whatever the method.)
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

static sqlite3_vfs    vfs;              /* ours: a copy of the system's */
static sqlite3_vfs   *sys_vfs;         /* ... whose xOpen we wrap */
static char           vfs_name[32];     /* "lockbroker-" and its name */
static int            vfs_ready;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;

/* Why the last open in this thread was refused; "" when it was not. */
static __thread char refused[PATH_MAX + 256];

/* Told of every refusal (lockfs_sqlite_vfs_on_refuse). */
static void (*on_refuse)(const char *why);

/* Records why name was refused (name, then fmt); returns
 * SQLITE_CANTOPEN. */
static int __attribute__((format(printf, 2, 3)))
refuse(const char *name, const char *fmt, ...)
{
	char    why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(refused, sizeof(refused), "%s %s", name, why);
	if (on_refuse != NULL)
		on_refuse(refused);
	return SQLITE_CANTOPEN;
}

/* The owner of the database whose journal name is: (uid_t)-1 when it
 * cannot be told. */
static uid_t
database_owner(const char *name)
{
	char                  db[PATH_MAX];
	struct lockfs_fs_info fi;
	int                   n;
#if SQLITE_VERSION_NUMBER >= 3031000
	const char *p = sqlite3_filename_database(name);

	n = p == NULL ? -1 : snprintf(db, sizeof(db), "%s", p);
#else
	size_t      len = strlen(name);

	if (len > 8 && strcmp(name + len - 8, "-journal") == 0)
		len -= 8;
	n = snprintf(db, sizeof(db), "%.*s", (int)len, name);
#endif
	if (n < 0 || (size_t)n >= sizeof(db) ||
	    lockfs_fs_info_at(LOCKFS_FS_CWD, db, 0, &fi) == -1 ||
	    fi.type != LOCKFS_FS_FILE)
		return (uid_t)-1;
	return fi.uid;
}

/* Judges what is at a journal's name (fi): 0 when sqlite may use it,
 * else SQLITE_CANTOPEN with the reason recorded. */
static int
judge(const char *name, const struct lockfs_fs_info *fi, uid_t db_uid,
    uid_t self)
{
	if (fi->type != LOCKFS_FS_FILE)
		return refuse(name, "is not a regular file: not a journal of "
		    "this lock database");
	if (fi->uid != db_uid && fi->uid != self)
		return refuse(name, "is a file of uid %ld, neither the lock "
		    "database's owner (uid %ld) nor this user (uid %ld): a "
		    "journal planted beside it, which would be rolled back "
		    "into it; refused (remove it to use the database)",
		    (long)fi->uid, (long)db_uid, (long)self);
	return 0;
}

/* xOpen: the system VFS's, for every file but journals, which are judged
 * before and after (see the top of this file), and logs, which are
 * refused. */
static int
vfs_open(sqlite3_vfs *self_vfs, const char *name, sqlite3_file *file,
    int flags, int *out_flags)
{
	struct lockfs_fs_info before, after;
	uid_t                 db_uid, self;
	int                   had, rc;

	(void)self_vfs;
	if (name == NULL || !(flags & (SQLITE_OPEN_MAIN_JOURNAL |
	    SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL)))
		return sys_vfs->xOpen(sys_vfs, name, file, flags, out_flags);
	file->pMethods = NULL;
	if (flags & SQLITE_OPEN_WAL)
		return refuse(name, "is a write-ahead log, which lock "
		    "databases never have (it can only have been put there); "
		    "refused (remove it to use the database)");
	self = lockfs_os_files_uid();
	/* A super-journal (never one of ours: lock databases are never
	 * attached to others) is not named after a database. */
	db_uid = flags & SQLITE_OPEN_MAIN_JOURNAL ? database_owner(name) :
	    (uid_t)-1;
	had = lockfs_fs_info_at(LOCKFS_FS_CWD, name, 0, &before) == 0;
	if (had && (rc = judge(name, &before, db_uid, self)) != 0)
		return rc;
	if ((rc = sys_vfs->xOpen(sys_vfs, name, file, flags, out_flags)) !=
	    SQLITE_OK)
		return rc;
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, name, 0, &after) == -1)
		rc = refuse(name, "went away while it was opened (errno "
		    "%d)", errno);
	else if (had && (after.dev != before.dev ||
	    after.ino != before.ino))
		rc = refuse(name, "was replaced while it was opened");
	else
		rc = judge(name, &after, db_uid, self);
	if (rc != 0 && file->pMethods != NULL) {
		file->pMethods->xClose(file);
		file->pMethods = NULL;
	}
	return rc;
}

/* Registers our VFS, "lockbroker-unix" (or "-win32"): a copy of the
 * system's with xOpen wrapped.  Every other entry is the system VFS's
 * own, which takes its VFS argument as unused or reads the fields copied
 * with it (pAppData: "win32" keeps its own there). */
static void
vfs_init(void)
{
	if ((sys_vfs = sqlite3_vfs_find(lockfs_os_sqlite_vfs())) == NULL)
		return;
	snprintf(vfs_name, sizeof(vfs_name), "lockbroker-%s",
	    lockfs_os_sqlite_vfs());
	vfs = *sys_vfs;
	vfs.pNext = NULL;
	vfs.zName = vfs_name;
	vfs.xOpen = vfs_open;
	vfs_ready = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
}

/* lockfs_sqlite_vfs: see lockfs.h. */
const char *
lockfs_sqlite_vfs(void)
{
	pthread_once(&vfs_once, vfs_init);
	return vfs_ready ? vfs_name : NULL;
}

/* lockfs_sqlite_vfs_refused: see lockfs.h. */
const char *
lockfs_sqlite_vfs_refused(void)
{
	return refused;
}

/* lockfs_sqlite_vfs_clear: see lockfs.h. */
void
lockfs_sqlite_vfs_clear(void)
{
	refused[0] = '\0';
}

/* lockfs_sqlite_vfs_on_refuse: see lockfs.h. */
void
lockfs_sqlite_vfs_on_refuse(void (*fn)(const char *why))
{
	on_refuse = fn;
}
