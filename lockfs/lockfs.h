/*
 * lockfs.h: the on-disk lock artefacts, in the formats of Python's lockfile
 * 0.12.2 (link, symlink, mkdir, pidfile, sqlite).  Used by the client's
 * in-process transport and by the daemon.  Internal: not installed.
 *
 * Every function here is one non-blocking step; waiting and timeouts belong
 * to the caller.  Functions return 0 or a negative LB_E* code and, on
 * failure, leave the reason in a struct lockfs_err.
 */
#ifndef LOCKFS_H
#define LOCKFS_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "lockbroker/codes.h"
#include "os.h"                 /* the OS layer: process identity, the
                                   uid files are made with, directory locks */

#define LOCKFS_HOST_MAX   256
#define LOCKFS_UNIQUE_MAX 512

/* Why the last step failed: a message naming the file and errno's text. */
struct lockfs_err {
	int  code;              /* the LB_E* code returned */
	int  sys_errno;         /* errno behind it, 0 if none */
	char msg[PATH_MAX + 256];
};

/*
 * Who takes a lock: this process, and the thread that made the handle when
 * ownership is threaded.  start and boot make the unique name guard against
 * pid reuse and reboots.  uid is the user whose files the owner's artefacts
 * are (the file-system uid they are made with): names are predictable, so
 * an artefact is the owner's only when its name and its owner uid say so.
 */
struct lockfs_owner {
	char               host[LOCKFS_HOST_MAX];
	pid_t              pid;
	pid_t              tid;        /* 0: unthreaded */
	unsigned long long start;      /* process start, clock ticks since boot */
	char               boot[9];    /* first 8 hex digits of the boot id */
	uid_t              uid;        /* owner of the owner's artefacts */
};

/* One lock on one path, as the artefact layer sees it. */
struct lockfs_lock {
	unsigned            method;    /* LB_LINK ... LB_SQLITE */
	char               *path;      /* absolute, normalised PATH */
	char               *lock_file; /* PATH.lock, or PATH for pidfile */
	char               *dir;       /* directory holding lock_file */
	char               *db;        /* sqlite method: database file */
	struct lockfs_owner owner;
	char               *unique;    /* lockfile's unique_name, allocated to
	                                  its length (lockfs_unique_make) */
	int                 sqlite_row_ours; /* sqlite method: the row naming
	                                  unique was written through this very
	                                  lock (a row carries no owner uid; see
	                                  sqlite.c) */
};

/* What an artefact says about its holder (parsed, not verified). */
struct lockfs_holder {
	char               host[LOCKFS_HOST_MAX];
	char               unique[LOCKFS_UNIQUE_MAX];
	pid_t              pid;        /* 0: unknown */
	pid_t              tid;        /* 0: none or unknown */
	unsigned long long start;      /* 0: unknown */
	char               boot[9];    /* "": unknown */
	uid_t              uid;        /* (uid_t)-1: unknown */
	double             since;      /* 0: unknown */
	unsigned long long dev;        /* the artefact's identity, so that a */
	unsigned long long ino;        /* breaker can tell it is unchanged */
};

/* path.c */
int   lockfs_abspath(const char *path, char *out, size_t size);
size_t lockfs_dir_len(const char *file);
int   lockfs_init(struct lockfs_lock *l, const char *path, unsigned method,
          pid_t tid, struct lockfs_err *err);
int   lockfs_init_as(struct lockfs_lock *l, const char *path,
          unsigned method, pid_t tid, const struct lockfs_owner *owner,
          struct lockfs_err *err);
void  lockfs_fini(struct lockfs_lock *l);
int   lockfs_names_make(struct lockfs_lock *l);
void  lockfs_names_drop(struct lockfs_lock *l);
const char *lockfs_sqlite_db(const char *dir, char *buf, size_t size);

/*
 * readers.c: the marker of a reader of a shared lock beside its lock file
 * (docs/SHARED.md), made and removed with the caller's credentials.
 * lockfs_reader_name: the marker's name for owner o into out (size
 * bytes): 0, or -1 when it does not fit.  lockfs_reader_mark: makes the
 * readers' sign beside l's lock file (LOCKFILE.readers; there already:
 * it must count, as below, else LB_EFAILED), then o's marker (there
 * already: 0); lockfs_reader_unmark: removes o's marker (gone already:
 * 0); lockfs_readers_unsign: removes the sign (gone already, or not a
 * regular file, or in a sticky directory not the caller's: left, 0), for
 * the lock's last rider gone; each 0, or an LB_E* code with err filled.
 * lockfs_readers_guarded: 1 when, in directory dir, only the lock
 * file's owner's names count as its readers' (sign and markers), and
 * readers are of that one user: a sticky directory, where any user may
 * make a name and only its owner remove it, or one whose modes the OS
 * does not give (Windows: ACLs, perm 0), judged as sticky.
 * lockfs_reader_marked: 1 when o's marker lies beside l's lock
 * file, a regular file (never through a symbolic link) of the caller's
 * user, else 0 (also when it cannot be looked at).  lockfs_readers_live:
 * 0 when no sign that counts lies beside l's lock file (a regular file;
 * in a guarded directory a file of the lock file's owner): the directory
 * is not read; else 1 when a marker beside it is a live reader's (a regular
 * file naming a live process whose start time, not 0, it gives, or whose
 * start time cannot be read; in a guarded directory also a file of the
 * lock file's owner), 0 when none is, -1 (errno) when it cannot be told: the
 * directory cannot be opened or read, or holds more entries than are
 * read (EFBIG: 4096); callers that keep a shared hold take -1
 * as a live reader, never as none.  l's names are made
 * (lockfs_names_make).
 * Never block.
 */
int   lockfs_reader_name(const struct lockfs_lock *l,
          const struct lockfs_owner *o, char *out, size_t size);
int   lockfs_reader_mark(const struct lockfs_lock *l,
          const struct lockfs_owner *o, struct lockfs_err *err);
int   lockfs_reader_marked(const struct lockfs_lock *l,
          const struct lockfs_owner *o);
int   lockfs_reader_unmark(const struct lockfs_lock *l,
          const struct lockfs_owner *o, struct lockfs_err *err);
int   lockfs_readers_unsign(const struct lockfs_lock *l,
          struct lockfs_err *err);
struct lockfs_fs_info;
int   lockfs_readers_guarded(const struct lockfs_fs_info *dir);
int   lockfs_readers_live(const struct lockfs_lock *l);

/* owner.c */
int   lockfs_owner_self(struct lockfs_owner *o, int threaded);
int   lockfs_unique_format(const struct lockfs_owner *o, unsigned method,
          const char *lock_file, char *out, size_t size);
int   lockfs_unique_make(struct lockfs_lock *l,
          const struct lockfs_owner *o);
int   lockfs_unique_parse(const char *name, unsigned method,
          struct lockfs_holder *h);

int   lockfs_pid_parse(const char *text, size_t len, pid_t *pid);
lb_liveness lockfs_holder_liveness(const struct lockfs_holder *h);
const char *lockfs_hostname(void);

/*
 * Time (clock.c), for every part: lockfs_now is seconds on the monotonic
 * clock, which every deadline is measured on; lockfs_sleep sleeps that
 * long (nothing for <= 0 or NaN), resuming after signals; lockfs_jitter is
 * a factor in [0.75, 1.25), different per thread and process, so that
 * pollers do not move in step.
 */
double lockfs_now(void);
void   lockfs_sleep(double seconds);
double lockfs_jitter(void);

/*
 * A back-off between polls: pauses from `first`, doubling up to `max`,
 * each jittered.  lockfs_backoff_sleep sleeps for the next pause but not
 * beyond deadline (monotonic; INFINITY for none) and returns 0, or returns
 * -1 at once when the deadline has passed.  lockfs_backoff_pause is the
 * same without the sleep: the pause to take (cut at deadline), or -1
 * when the deadline has passed, for a caller that waits on its own.
 */
struct lockfs_backoff {
	double next;
	double max;
};
void lockfs_backoff_init(struct lockfs_backoff *b, double first, double max);
int  lockfs_backoff_sleep(struct lockfs_backoff *b, double deadline);
double lockfs_backoff_pause(struct lockfs_backoff *b, double deadline);

/* error.c */
int   lockfs_fail(struct lockfs_err *err, int code, int sys_errno,
          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * The per-method steps (lockfs.c dispatches on l->method):
 *   try_acquire  0 when taken now or already ours; LB_EALREADY when another
 *                owner holds it; LB_EFAILED when it cannot be taken at all.
 *   release      0; LB_ENOTLOCKED; LB_ENOTMINE; LB_EUNLOCK.
 *   is_locked    1 or 0, or a negative code.
 *   i_am_locking 1 or 0, or a negative code.
 *   break_lock   0 (also when not held) or LB_EUNLOCK.
 *   holder       1 with *h filled, 0 when not held, or a negative code.
 *   abandon      undo what a failed or timed-out acquire left (the link
 *                method's unique file); never fails.
 */
struct lockfs_ops {
	const char *name;
	int  (*try_acquire)(struct lockfs_lock *, struct lockfs_err *);
	int  (*release)(struct lockfs_lock *, struct lockfs_err *);
	int  (*is_locked)(struct lockfs_lock *, struct lockfs_err *);
	int  (*i_am_locking)(struct lockfs_lock *, struct lockfs_err *);
	int  (*break_lock)(struct lockfs_lock *, struct lockfs_err *);
	int  (*holder)(struct lockfs_lock *, struct lockfs_holder *,
	         struct lockfs_err *);
	void (*abandon)(struct lockfs_lock *);
};

extern const struct lockfs_ops lockfs_link_ops;
extern const struct lockfs_ops lockfs_symlink_ops;
extern const struct lockfs_ops lockfs_mkdir_ops;
extern const struct lockfs_ops lockfs_pidfile_ops;
extern const struct lockfs_ops lockfs_sqlite_ops;

const struct lockfs_ops *lockfs_ops_for(unsigned method);
const char *lockfs_method_name(unsigned method);
int   lockfs_method_parse(const char *name, unsigned *method);

int   lockfs_try_acquire(struct lockfs_lock *l, struct lockfs_err *err);
int   lockfs_release(struct lockfs_lock *l, struct lockfs_err *err);
int   lockfs_is_locked(struct lockfs_lock *l, struct lockfs_err *err);
int   lockfs_i_am_locking(struct lockfs_lock *l, struct lockfs_err *err);
int   lockfs_break_lock(struct lockfs_lock *l, struct lockfs_err *err);
int   lockfs_holder(struct lockfs_lock *l, struct lockfs_holder *h,
          struct lockfs_err *err);
void  lockfs_abandon(struct lockfs_lock *l);

/* artefact.c: helpers shared by the methods. */
int   lockfs_is_present(const char *file, struct lockfs_err *err);
int   lockfs_release_check(struct lockfs_lock *l,
          int (*is_mine)(struct lockfs_lock *, struct lockfs_err *),
          struct lockfs_err *err);
int   lockfs_release_file(struct lockfs_lock *l,
          int (*is_mine)(struct lockfs_lock *, struct lockfs_err *),
          struct lockfs_err *err);
int   lockfs_artefact_is_locked(struct lockfs_lock *l,
          struct lockfs_err *err);
void  lockfs_abandon_nothing(struct lockfs_lock *l);
int   lockfs_remove_artefact(const struct lockfs_lock *l, int dir_ok,
          struct lockfs_err *err);
int   lockfs_holder_of(struct lockfs_lock *l, struct lockfs_holder *h,
          struct lockfs_err *err);
int   lockfs_link_find_unique(const char *dir, const char *lock_file,
          unsigned long long dev, unsigned long long ino, char *out,
          size_t size);
void  lockfs_holder_clear(struct lockfs_holder *h);
ssize_t lockfs_read_regular(const char *file, char *buf, size_t size,
          uid_t *owner);

/*
 * lockdir.c: a lock directory (the mkdir method's format) put together
 * and taken away whole beside the lock, at the temporary name
 * DIR/.lockbroker-mkdir.MARKER (MARKER: the name l's owner's marker has
 * in PATH.lock), so that PATH.lock is never a directory without a marker;
 * and the leftovers of processes killed half way.  See lockdir.c.
 *
 * lockfs_lockdir_tmp_name: l's temporary name into out: 0, or -1 with
 *     errno ENAMETOOLONG.
 * lockfs_lockdir_empty: removes what is at file in place, not followed:
 *     a directory emptied of its files and removed (never descending), a
 *     file unlinked; for temporaries, which are no lock.  0 (also when
 *     nothing is there), or LB_EUNLOCK with err filled.
 * lockfs_lockdir_only_files: 1 when directory dir (not followed) holds
 *     nothing but files (markers), else 0 (a directory in it, or it
 *     cannot be read).
 * lockfs_lockdir_rename_away: renames l's lock directory (l's own,
 *     open as lfd and judged to hold nothing but l's marker) to the
 *     temporary tmp (a leftover there goes first) and removes it there:
 *     the marker through lfd, the temporary by name in the directory
 *     open as dfd (l's), anything else in it emptied out.  0, or -1 with
 *     errno of the rename when it could not be renamed (nothing changed;
 *     EINVAL or ENOSYS: no RENAME_NOREPLACE here).
 * lockfs_lockdir_remove: removes l's lock directory, whoever's, whole:
 *     refused (LB_EUNLOCK, nothing changed) when it holds more than files
 *     or cannot be renamed away; put back (LB_EUNLOCK) when, taken away,
 *     its markers may not be removed; in place only where the file system
 *     has no RENAME_NOREPLACE.  0 (also when nothing is there), or
 *     LB_EUNLOCK with err filled.
 * lockfs_lockdir_tidy: removes the temporaries of l's lock directory
 *     (l's PATH.lock, whatever l's owner) that processes of this host
 *     left when they died half way: only those whose marker names a
 *     process that is gone and that are directories (not followed) of
 *     the calling thread's file-system uid.  How many, or -1 when the
 *     directory cannot be read.  It is read only when its link count
 *     says it may hold a subdirectory besides PATH.lock (or does not
 *     count them): usually one look at it.
 * lockfs_lockdir_tidy_at: lockfs_lockdir_tidy, with l's directory open
 *     as dfd for reading (O_RDONLY | O_DIRECTORY; the caller keeps it;
 *     -1: looked at and opened by name), and lock_there 1 when the
 *     caller has just put its lock directory at PATH.lock, 0 when it has
 *     just taken it away (PATH.lock is counted so, not looked at), -1
 *     when not known (looked at).
 */
int   lockfs_lockdir_tmp_name(const struct lockfs_lock *l, char *out,
          size_t size);
int   lockfs_lockdir_empty(const char *file, struct lockfs_err *err);
int   lockfs_lockdir_only_files(const char *dir);
int   lockfs_lockdir_rename_away(const struct lockfs_lock *l,
          const char *tmp, int dfd, int lfd);
int   lockfs_lockdir_remove(const struct lockfs_lock *l,
          struct lockfs_err *err);
int   lockfs_lockdir_tidy(const struct lockfs_lock *l);
int   lockfs_lockdir_tidy_at(const struct lockfs_lock *l, int dfd,
          int lock_there);

/* sqlite.c: how long sqlite steps wait for a busy database (ms), for the
 * whole process; the defaults suit a client, the daemon shortens them. */
void  lockfs_sqlite_busy(int try_ms, int step_ms);
int   lockfs_sqlite_step_ms(void);
int   lockfs_sqlite_try_ms(void);

/* sqlite.c: keep up to max connections to lock databases open between
 * steps (0: none, the default), each closed once unused for idle_ms by
 * lockfs_sqlite_keep_prune, which returns how many are still kept.  A
 * connection is used again only by the file it was opened on and the
 * same file-system credentials (uid, gid, groups), and only while those
 * may still open it so.  For the daemon; thread-safe. */
void  lockfs_sqlite_keep(int max, int idle_ms);
int   lockfs_sqlite_keep_prune(void);

/* sqlite.c: the fork gate (sqlite.c, "Forks and steps"): a step that
 * opens a sqlite connection runs between lockfs_sqlite_step_enter and
 * lockfs_sqlite_step_leave, and a fork() waits until no step is in
 * progress, so that a child never inherits sqlite's state from inside
 * one.  enter blocks while a fork waits for the steps to end; a thread
 * may nest steps.  lockfs_sqlite_fork_init registers the gate's fork
 * handlers (once; enter does too): a process whose own fork handlers
 * take mutexes it holds around steps calls it before registering those,
 * so that a fork takes its mutexes before the gate. */
void  lockfs_sqlite_fork_init(void);
void  lockfs_sqlite_step_enter(void);
void  lockfs_sqlite_step_leave(void);

/* sqlite.c: sqlite3_open_v2 of a lock database, refusing anything but a
 * regular file (or nothing) at its name: a symlink is never followed, a
 * FIFO never opened; and through the VFS of sqlitevfs.c, which refuses a
 * rollback journal of another user and any WAL file; the connection has
 * the collation LOCKFS_SQLITE_NAMES (names compared as the system's file
 * systems do: os.h's lockfs_os_names_cmp), which every statement on
 * lock_file and unique_name uses.  sqlite's result code; *db NULL and
 * *why set when refused here.  sqlite3.h declares sqlite3. */
#define LOCKFS_SQLITE_NAMES "lockfs_names"
struct sqlite3;
int   lockfs_sqlite_open(const char *file, int flags, struct sqlite3 **db,
          const char **why);
/* sqlite.c: binds parameter i of st to path (a lock file or unique
 * name) as lockfile's rows spell it on this system (on Windows with
 * '\'), not copied when that is path itself: sqlite's result code. */
struct sqlite3_stmt;
int   lockfs_sqlite_bind_path(struct sqlite3_stmt *st, int i,
          const char *path);

/* pidfile.c: takes a pidfile lock only by creating PATH: 0; LB_EALREADY
 * when PATH exists, even when it names this process (for a caller that
 * knows which of its owners holds it: the pid cannot tell threads
 * apart); LB_EFAILED. */
int   lockfs_pidfile_create(struct lockfs_lock *l, struct lockfs_err *err);

/* sqlitevfs.c: the name of the VFS lock databases are opened with
 * (registered on first use; NULL when it cannot be, and then nothing may
 * be opened), and why it last refused a file in this thread ("" if it did
 * not), for error messages; lockfs_sqlite_vfs_clear forgets that. */
const char *lockfs_sqlite_vfs(void);
const char *lockfs_sqlite_vfs_refused(void);
void  lockfs_sqlite_vfs_clear(void);
/* sqlitevfs.c: fn (NULL: none) is called with the reason each time a file
 * is refused, for the whole process (the daemon logs it).  Call before
 * any lock is used. */
void  lockfs_sqlite_vfs_on_refuse(void (*fn)(const char *why));

/* stale.c: break the lock if its holder is provably dead.  1 when it broke
 * a stale lock, 0 when the holder is alive, unknown or gone already, or a
 * negative code.  Serialised against other breakers by the directory's
 * lock (lockfs_dirlock_try), and re-checks that the artefact is the same one it judged. */
int   lockfs_break_stale(struct lockfs_lock *l, struct lockfs_err *err);

/* ------------------------------------------------------------------ */
/* Locks taken on behalf of other processes, and handoff (the daemon's). */

/* owner.c: owner *o for process pid (thread tid, 0 for none) on this host;
 * 0, or -1 with errno (ESRCH when the process is gone). */
int   lockfs_owner_of_pid(struct lockfs_owner *o, pid_t pid, pid_t tid);

/* handoff.c: lockfs_init for the given owner instead of this process. */
int   lockfs_init_for(struct lockfs_lock *l, const char *path,
          unsigned method, const struct lockfs_owner *owner,
          struct lockfs_err *err);

/* handoff.c: the lock from holds passes to `to` without ever being free:
 * 0; LB_EINVAL (not the same lock); LB_ENOTMINE (from does not hold it,
 * nothing changed); LB_EFAILED (from still holds it).  Run with to's
 * owner's credentials; after 0 the caller removes from's traces (the link
 * method's old unique file) with lockfs_abandon(from), as from's owner.
 * See handoff.c. */
int   lockfs_handoff(struct lockfs_lock *from, struct lockfs_lock *to,
          struct lockfs_err *err);

/* A file as a handoff's preparation found it (the old holder's lock
 * file), for lockfs_handoff_resume to tell it from one made anew under
 * the same name by the same owner since; ino 0: not known. */
struct lockfs_file_id {
	unsigned long long    dev;
	unsigned long long    ino;
	long long             ctime_ns; /* its status change time, in ns */
};

/* A handoff prepared up to its last step (handoff.c): the directory's
 * lock held, the next holder's artefact made beside the lock. */
struct lockfs_swap {
	int                   pending;  /* a last step to take */
	struct lockfs_dirlock dl;       /* the directory, locked */
	char                 *tmp;      /* rename methods: to's artefact, */
	char                 *lock_file; /* to be renamed over lock_file */
	char                 *made;     /* to's file the preparation made
	                                   (link: its unique file; mkdir: its
	                                   marker), removed on cancel */
	char                 *from_marker; /* mkdir: from's marker, removed
	                                      by the finish */
	int                   marker_dir; /* mkdir: the lock directory
	                                     (O_PATH), where it is */
	unsigned long long    dir_dev;  /* the directory, as locked */
	unsigned long long    dir_ino;
	struct lockfs_file_id from_id;  /* the lock file, from's, as
	                                   prepared (for a record that a
	                                   restart resumes from) */
};

/* handoff.c: lockfs_handoff in two steps, so that the next holder may be
 * told before the last one, which only replaces a name: prepare (0 with
 * s->pending, or as lockfs_handoff), then finish (0, or LB_EFAILED with
 * s still pending) or cancel.  Each as to's owner.  See handoff.c. */
int   lockfs_handoff_prepare(struct lockfs_lock *from, struct lockfs_lock *to,
          struct lockfs_swap *s, struct lockfs_err *err);
int   lockfs_handoff_finish(struct lockfs_swap *s, struct lockfs_err *err);
void  lockfs_handoff_cancel(struct lockfs_swap *s);

/* handoff.c: finishes a prepared handoff to `to` whose last step was never
 * taken (its daemon died), when the lock file is still the previous
 * holder's, the very file the preparation found (from_id):
 * 1 finished, 0 nothing to finish, or a negative code. */
int   lockfs_handoff_resume(struct lockfs_lock *to, const char *from_unique,
          pid_t from_pid, uid_t from_uid,
          const struct lockfs_file_id *from_id, struct lockfs_err *err);
/* handoff_sqlite.c: the sqlite method's handoff, in one transaction; as
 * lockfs_handoff. */
int   lockfs_handoff_sqlite(struct lockfs_lock *from, struct lockfs_lock *to,
          struct lockfs_err *err);
/* handoff.c: how long, for the whole process, a handoff waits for its
 * directory's lock (seconds; 0.2 unless set; 0: one try). */
void  lockfs_handoff_wait(double s);

/* handoff.c: takes the lock of l's directory into *dl (closed with
 * lockfs_dirlock_close), polling for it while another holds it, up to
 * wait seconds (0: one try): so that no handoff nor breaker acts in the
 * directory meanwhile (a library's release after its RELEASE was lost,
 * against a restarted daemon's lockfs_handoff_resume).  0, or LB_EFAILED
 * with err filled (dl->fd -1; err->sys_errno EWOULDBLOCK when another
 * held it all that time).  Blocks up to wait. */
int   lockfs_handoff_exclude(const struct lockfs_lock *l, double wait,
          struct lockfs_dirlock *dl, struct lockfs_err *err);

/* handoff.c: removes the temporaries of handoffs that a dead daemon left
 * in l's directory (only under the directory's lock), and the link
 * method's unique files they named whose process is gone: how many
 * temporaries, or -1.  A unique file whose process lives is left to it,
 * and told to left (when not NULL): arg, the directory's identity dir,
 * the file's name base in it and its identity fi (its owner fi->uid).
 * (Only names a temporary gives: a file whose name merely parses as a
 * unique name may be anything, a pid file's lock among them.)  A
 * temporary of another user that the caller may not remove (a handoff
 * between two users in a sticky directory) is left: a name alone cannot
 * prove it one. */
typedef void lockfs_left_fn(void *arg, const struct lockfs_fs_info *dir,
    const char *base, const struct lockfs_fs_info *fi);
int   lockfs_handoff_tidy(const struct lockfs_lock *l, lockfs_left_fn *left,
          void *arg, struct lockfs_err *err);
/* handoff.c: the link method's old holder's unique file (from_unique's
 * name in to's directory, to's names possibly pinned) of a handoff that
 * was finished and recorded but whose old holder's traces were not
 * removed (its daemon died between): removed, under the directory's lock,
 * when it is a regular file with one link (no lock) of the caller's uid
 * named after a process that is gone; one whose process lives is left
 * to it (it removes it at its release) and told to left as
 * lockfs_handoff_tidy does; so is one of another user (a handoff between
 * two users), for a look as that user.  1 removed, 0 left, -1 nothing to
 * do (another method, not there, a lock, the directory busy). */
int   lockfs_handoff_tidy_from(const struct lockfs_lock *to,
          const char *from_unique, lockfs_left_fn *left, void *arg);
/* handoff.c: a unique file lockfs_handoff_tidy left to its live process
 * (base in directory dir, whose identity was dir_fi; its own identity
 * fi), looked at again as its user, under the directory's lock: removed
 * once its process is gone, while it is still that very file with one
 * link, of the caller's uid.  1 when removed; 0 when left for now (its
 * process lives, the directory's lock is busy, it cannot be looked at);
 * -1 when there is nothing to do any more (gone, changed, reused as a
 * lock, or dir is not that directory).  Never blocks. */
int   lockfs_unique_litter(const char *dir,
          const struct lockfs_fs_info *dir_fi, const char *base,
          const struct lockfs_fs_info *fi);

#endif /* LOCKFS_H */
