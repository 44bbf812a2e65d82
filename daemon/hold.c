/*
 * hold.c: a hold's life: made for a requester, installed as its lock's
 * holder once its artefact is made, ended by a handoff to the next
 * waiter or a release (or left releasing while its sqlite database is
 * busy), detached when the daemon stops; and the previous run's holds
 * adopted as they are (reconcile.c decides which).
 *
 *   lbd_hold_new --> NEW: not the lock's holder; freed (lbd_hold_free)
 *        |           when its artefact cannot be made
 *        | its artefact made as its client (lbd_lock_try), found made
 *        | already (lbd_own_artefact_adopt), or handed over to it
 *        | (lbd_hold_end): hold_install
 *        v
 *   UNSETTLED: the lock's holder, with a new token, in its connection's
 *        |     holds (a kept hold: d->orphans, its process watched),
 *        |     recorded in the iteration's transaction; its OKs owed
 *        |     (reply.c)
 *        | the iteration's settle (lbd_grants_settle)
 *        v
 *   HELD <------------- lbd_hold_adopt: a hold of the previous run (an
 *        |              orphan, d->orphans; d->unclaimed once its grace
 *        |              is over) or such a hold reclaimed
 *        |              over a new connection (reconcile.c)
 *        | lbd_hold_end: handed to a rider (a shared hold's: the
 *        | rider's new hold, its token kept, no reply owed) or else to
 *        | the head waiter (its new hold
 *        | installed; its artefact's last step after the commit, before
 *        | any reply: swap.c;
 *        | the old hold is the handoff's till then), or the artefact
 *        | removed; lbd_hold_forget: the
 *        | artefact was gone already; BREAK (lock.c): removed by whoever
 *        | may; a refused grant (reply.c), an exited kept hold's or
 *        | orphan's process, an orphan's grace over (reconcile.c); a
 *        | closed connection's holds, an exited process's and those
 *        | whose grace is over end in turns (ending.c), held till then,
 *        | an exited process's found by no request (lbd_hold_find)
 *        |----------------------------------------------------> freed
 *        | lbd_hold_end, the sqlite database busy: hold_releasing
 *        v
 *   RELEASING: still the holder and recorded, no connection's, in
 *        |     d->releasing and a retry queue (releasing.c)
 *        | lbd_hold_end again, once the database lets it
 *        +----------------------------------------------------> freed
 *
 *   HELD, RELEASING --lbd_hold_detach (the daemon stops)--> forgotten in
 *        memory only: the artefact and the record stay for the next
 *        daemon.
 *
 * A hold keeps only its path between steps (lbd_hold_names makes its
 * other names for one).  Every step on its artefact runs with its
 * client's credentials (creds.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "fs.h"
#include "hold.h"
#include "intents.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "loop.h"
#include "os.h"
#include "pidwatch.h"
#include "readers.h"
#include "releasing.h"
#include "reply.h"
#include "store.h"
#include "swap.h"
#include "wait.h"
#include "watch.h"

/* The next fencing token of a grant of l: a cluster lock's from its etcd
 * key (lbd_cohort_token); else the daemon's generation in the high half,
 * a counter that only grows in the low half (a new generation is taken,
 * durably, at each start and when the counter would wrap). */
static uint64_t
next_token(struct lbd_lock *l)
{
	struct lbd *d = l->d;
	uint64_t    t;

	if ((t = lbd_cohort_token(l)) != 0)
		return t;
	if (++d->counter > 0xffffffffull) {
		if (lbd_store_next_generation(d) != 0)
			d->generation++;        /* in memory, at least */
		d->counter = 1;
	}
	return d->generation << 32 | d->counter;
}

/*
 * lbd_hold_new: a new hold of l, not yet installed: asked for by c for
 * thread tid of process pid (c's own, or the one a kept hold is for),
 * which is read from /proc, its artefacts c's user's (owner uid c->uid),
 * or, when c is NULL (a hold of the previous run), for the given owner of
 * process pid (the caller then sets its uid, gid and creds).  NULL with
 * err filled.
 */
struct lbd_hold *
lbd_hold_new(struct lbd_lock *l, struct lbd_conn *c, pid_t pid, pid_t tid,
    const struct lockfs_owner *owner, struct lockfs_err *err)
{
	struct lockfs_owner o;
	struct lbd_hold    *h;

	if (c != NULL && pid == c->pid && c->owner_known) {
		o = c->owner;   /* read at accept: no /proc read per grant */
		o.tid = tid;
	} else if (c != NULL && lockfs_owner_of_pid(&o, pid, tid) == -1) {
		lockfs_fail(err, LB_EFAILED, errno, "cannot read process %ld",
		    (long)pid);
		return NULL;
	}
	if (c != NULL)
		o.uid = lbd_os_files_uid_of(c->uid);    /* its artefacts
		                                           are made as c's
		                                           user */
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		lockfs_fail(err, LB_ENOMEM, ENOMEM, "hold of %s", l->path);
		return NULL;
	}
	if (lockfs_init_for(&h->fs, l->path, l->method, c != NULL ? &o : owner,
	    err) != 0) {
		free(h);
		return NULL;
	}
	/* The lock's path serves the hold too (long paths would otherwise
	 * be kept twice per hold); its other names go when it is installed
	 * (hold_install), made again for each step (lbd_hold_names). */
	if (strcmp(h->fs.path, l->path) == 0) {
		free(h->fs.path);
		h->fs.path = l->path;
		h->borrowed = 1;
	}
	h->lock = l;
	h->conn = c;
	h->tid = tid;
	if (c != NULL) {
		h->uid = c->uid;
		h->gid = c->gid;
		h->creds = lbd_creds_ref(c->creds);
	}
	return h;
}

/* A new hold of l for (c, tid), or kept for process kept_pid (not 0). */
static struct lbd_hold *
hold_new(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid, pid_t tid,
    struct lockfs_err *err)
{
	struct lbd_hold *h;

	h = lbd_hold_new(l, c, kept_pid != 0 ? kept_pid : c->pid, tid, NULL,
	    err);
	if (h != NULL && kept_pid != 0)
		h->kept = 1;
	return h;
}

/* A new hold of l for kept rider r to take its lock's artefact over:
 * kept for r's process, as r's user (readers.c). */
static struct lbd_hold *
rider_hold_new(struct lbd_lock *l, const struct lbd_hold *r,
    struct lockfs_err *err)
{
	struct lbd_hold *h;

	if ((h = lbd_hold_new(l, NULL, r->fs.owner.pid, 0, &r->fs.owner,
	    err)) == NULL)
		return NULL;
	h->uid = r->uid;
	h->gid = r->gid;
	h->creds = lbd_creds_ref(r->creds);
	h->kept = 1;
	return h;
}

/* lbd_hold_free: frees a hold that is not (or no longer) installed. */
void
lbd_hold_free(struct lbd_hold *h)
{
	if (h->end_slot != NULL)
		*h->end_slot = NULL;    /* not to be ended by its connection */
	lbd_releasing_del(h);
	if (h->user != NULL) {
		h->user->nlocks--;
		lbd_uid_put(h->user);
	}
	lbd_orphan_unwatch(h);
	if (h->borrowed)
		h->fs.path = NULL;
	lockfs_fini(&h->fs);
	lbd_creds_unref(h->creds);
	free(h);
}

/*
 * lbd_hold_names: makes h's names for a step on its artefact (lock file,
 * directory, sqlite database, unique name; lockfs_names_make): a hold
 * keeps only its path between steps, so that its memory does not grow
 * with four times its path's length.  Whoever calls it drops them after
 * the step (lockfs_names_drop), or frees h.  0, or LB_ENOMEM with err
 * filled.
 */
int
lbd_hold_names(struct lbd_hold *h, struct lockfs_err *err)
{
	if (lockfs_names_make(&h->fs) == 0)
		return 0;
	return lockfs_fail(err, LB_ENOMEM, errno, "%s: names of its hold",
	    h->lock->path);
}

/* Notes the identity of h's lock directory, for a restarted daemon to
 * tell whether it is still the same (reconcile.c).  Called with h's
 * credentials on, right before its artefact is made (a fresh grant) or
 * right after (a handoff, an adopted artefact). */
static void
hold_note_dir(struct lbd_hold *h)
{
	struct lockfs_fs_info fi;
	int                   r = lockfs_fs_info_at(LOCKFS_FS_CWD, h->fs.dir,
	    LOCKFS_FS_FOLLOW, &fi);

	h->dir_dev = r == 0 ? fi.dev : 0;
	h->dir_ino = r == 0 ? fi.ino : 0;
}

/* Installs h as l's holder: token, time, the connection's list (a kept
 * hold: no connection's, and its process watched), the state database,
 * where it is not known to be until the iteration's settle (lbd_grant_reply
 * owes its OKs till then). */
static void
hold_install(struct lbd_lock *l, struct lbd_hold *h)
{
	if (h->token == 0)      /* else taken before its artefact was made */
		h->token = next_token(l);
	h->since = lbd_now();
	h->unsettled = 1;
	l->holder = h;
	h->user = h->kept ? lbd_uid_get(l->d, h->uid) : h->conn->uid_conns;
	if (h->user != NULL)
		h->user->nlocks++;
	if (h->kept) {
		h->conn = NULL;
		LIST_INSERT_HEAD(&l->d->orphans, h, conn_entry);
		lbd_orphan_watch(l->d, h);
	} else {
		LIST_INSERT_HEAD(&h->conn->holds, h, conn_entry);
		h->conn->nholds++;
	}
	lbd_store_hold_add(l->d, h);
	lockfs_names_drop(&h->fs);      /* made again for the next step */
}

/*
 * lbd_hold_adopt: installs h as l's holder as it is (token, since and
 * record kept): a hold of the previous run (h->conn NULL, into
 * d->orphans), or such a hold reclaimed by its process over a new
 * connection (into the connection's holds).
 */
void
lbd_hold_adopt(struct lbd_lock *l, struct lbd_hold *h)
{
	l->holder = h;
	if (h->conn == NULL)
		LIST_INSERT_HEAD(&l->d->orphans, h, conn_entry);
	else {
		LIST_INSERT_HEAD(&h->conn->holds, h, conn_entry);
		h->conn->nholds++;
		if (h->user == NULL && (h->user = h->conn->uid_conns) != NULL)
			h->user->nlocks++;
	}
}

/* lbd_hold_uninstall: uninstalls l's holder and returns it, the caller's
 * to free (the artefact is the caller's business).  A handoff to it owed
 * its last step takes it first; one that fails (or had failed) is ended
 * too: its grant, owed, refused, the old holder's lock file released as
 * that user and its RELEASE answered, before the hold goes. */
struct lbd_hold *
lbd_hold_uninstall(struct lbd_lock *l)
{
	struct lbd_hold *h = l->holder;

	/* A handoff that had failed already is not finished first: that
	 * would end it, and its grant would be told OK with no lock file
	 * of its own. */
	if (!lbd_swap_failed(h))
		lbd_swap_finish(h);     /* its artefact its own before it goes */
	lbd_hold_pay(h);        /* refused if that failed, or had */
	lbd_swap_finish(h);     /* failed: the old holder's file released */
	l->holder = NULL;
	h->releasing = 0;
	lbd_releasing_del(h);   /* a hold is queued only while it holds */
	LIST_REMOVE(h, conn_entry);
	if (h->conn != NULL)
		h->conn->nholds--;
	lbd_store_hold_del(l->d, h);
	return h;
}

/*
 * hold_releasing: h, just uninstalled from l, could not end: its sqlite
 * database is busy (another process's transaction, which any user who may
 * read the database can keep open), or its lock file (another handle
 * keeps it open where that forbids its removal: Windows).  The RELEASE
 * that ended it is answered OK pending=1 (request.c): its lock file or
 * row still names the releaser, whose library then never takes it for
 * its own in-process.  h goes back as l's holder, releasing:
 * the lock stays held (recorded, shown as held, its waiters waiting) but
 * no longer by any connection, and its queue (releasing.c) tries again,
 * as h's user, until the row is gone or handed over.  0, or -1 when it
 * cannot be queued (h is then still the caller's to end).
 */
static int
hold_releasing(struct lbd_lock *l, struct lbd_hold *h)
{
	if (lbd_releasing_add(h) != 0)
		return -1;
	h->releasing = 1;
	h->conn = NULL;
	lbd_orphan_unwatch(h);  /* a kept hold's process no longer matters */
	l->holder = h;
	LIST_INSERT_HEAD(&l->d->releasing, h, conn_entry);
	lbd_store_hold_add(l->d, h);
	return 0;
}

/*
 * lbd_lock_try: tries to make the artefact of l for (c, tid), or kept for
 * kept_pid, as c's user.  0 with l
 * held by the new hold; LB_EALREADY when someone outside the broker holds
 * it; another code with err filled when it cannot be made.
 */
int
lbd_lock_try(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid, struct lockfs_err *err)
{
	struct lbd_hold *h;
	int              r;

	if ((h = hold_new(l, c, kept_pid, tid, err)) == NULL)
		return err->code;
	if ((r = lbd_creds_enter(c->creds, err)) == 0) {
		/* Noted before its artefact is made, with its token and its
		 * directory's identity (intents.c): a daemon killed before
		 * the commit leaves no artefact its successor does not know
		 * of. */
		hold_note_dir(h);
		h->token = next_token(l);
		r = lbd_intent_note(l->d, h, 0, err);
		/* A pid file that is there already is never a connection's
		 * thread's: it names a process, not which of its owners
		 * (another thread may hold it in-process).  A kept hold's
		 * owner is the process itself. */
		if (r == 0 && (r = l->method == LB_PIDFILE && kept_pid == 0 ?
		    lockfs_pidfile_create(&h->fs, err) :
		    lockfs_try_acquire(&h->fs, err)) != 0) {
			/* Its traces first: a daemon killed in between leaves
			 * a note judged gone, not a file no note names. */
			lockfs_abandon(&h->fs);
			lbd_intent_undo(l->d);
		} else if (r != 0)
			lockfs_abandon(&h->fs);
		lbd_creds_leave();
	}
	if (r == 0)
		hold_install(l, h);
	else
		lbd_hold_free(h);
	return r;
}

/*
 * lbd_own_artefact_adopt: makes (c, tid) l's holder when l's artefact is
 * already theirs although the broker does not know of it: a grant of the
 * previous daemon, which died after it made the artefact and before it
 * recorded the grant or sent the reply (the requester sends its ACQUIRE
 * again, or releases).  Such an artefact blocks everyone else, so it is
 * the requester's whatever the queue.  0 with l held by the new hold
 * (recorded, new token); -1 when l's artefact is not (c, tid)'s
 * (kept_pid's) or cannot be read, and always for the pidfile method but
 * for kept holds: its artefact cannot say which thread (or whether an
 * in-process hold of the client's) made it.  Its name is not enough (names
 * are predictable): the methods also check that the artefact is a file of
 * c's user (lockfs.h, struct lockfs_owner).
 */
int
lbd_own_artefact_adopt(struct lbd_lock *l, struct lbd_conn *c,
    pid_t kept_pid, pid_t tid)
{
	struct lockfs_err err;
	struct lbd_hold  *h;
	int               r = -1;

	/* Not for the pidfile method (but for a kept hold, whose owner is
	 * the process): its artefact names the process only, and may be
	 * another thread's (or an in-process hold's). */
	if (l->holder != NULL || (l->method == LB_PIDFILE && kept_pid == 0) ||
	    (h = hold_new(l, c, kept_pid, tid, &err)) == NULL)
		return -1;
	if (lbd_creds_enter(c->creds, &err) == 0) {
		if (lockfs_i_am_locking(&h->fs, &err) == 1) {
			hold_note_dir(h);
			r = 0;
		}
		lbd_creds_leave();
	}
	if (r == 0) {
		hold_install(l, h);
		lbd_lock_unwatch(l);
		log_info("%s: pid %ld holds it already (a grant of the "
		    "previous daemon it was not told of); recorded",
		    l->path, (long)h->fs.owner.pid);
	} else
		lbd_hold_free(h);
	return r;
}

/* lbd_hold_kept_running: see hold.h.  A process is its pid and its start
 * time, never the pid alone. */
int
lbd_hold_kept_running(const struct lbd_hold *h)
{
	unsigned long long start;

	return lockfs_os_start_time(h->fs.owner.pid, &start) == 0 &&
	    start == h->fs.owner.start;
}

/*
 * lbd_hold_find: l's hold by (c, tid), or, when kept_pid is not 0, l's
 * hold kept for that process (the one that runs with that pid now), if c
 * may act for it (root, or the hold's user); or NULL.  A releasing hold,
 * and one whose process has exited (ending in its turn: its pid may be
 * another process's by then), is nobody's.
 */
struct lbd_hold *
lbd_hold_find(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid)
{
	struct lbd_hold *h = l->holder;

	if (h == NULL || h->releasing || lbd_orphan_exiting(h))
		return NULL;
	if (kept_pid != 0)
		return h->kept && h->fs.owner.pid == kept_pid &&
		    (c->uid == 0 || c->uid == h->uid) &&
		    lbd_hold_kept_running(h) ? h : NULL;
	return h->conn == c && h->tid == tid ? h : NULL;
}

/*
 * handoff_note: before a handoff from h to next whose artefact changes
 * hands ahead of the commit (the sqlite method's row, handed over in one
 * transaction of its database), next is noted as a grant (intents.c),
 * with its token and lock directory, so that a daemon killed before the
 * commit leaves no artefact its successor does not know of.  Nothing for
 * the other methods, whose artefact is renamed over the lock only after
 * the commit (swap.c).  0 (*noted set when a note was written, to be
 * taken back if the handoff fails), or a code with err filled.
 */
static int
handoff_note(struct lbd_hold *h, struct lbd_hold *next, int *noted,
    struct lockfs_err *err)
{
	int r;

	if (h->lock->method != LB_SQLITE)
		return 0;
	if ((r = lbd_creds_enter(next->creds, err)) != 0)
		return r;
	hold_note_dir(next);
	lbd_creds_leave();
	if (next->token == 0)   /* a reader's handoff keeps its token */
		next->token = next_token(h->lock);
	if ((r = lbd_intent_note(h->lock->d, next, 1, err)) == 0)
		*noted = 1;
	return r;
}

/* How long a release of a live holder's lock goes on finding its
 * directory's lock taken before it goes ahead without it (ms). */
#define LBD_DIRLOCK_PATIENCE_MS 2000

/*
 * lbd_hold_dirlock_take: see hold.h.
 * Takes the lock of h's directory into *dl, as h's user (entered), or,
 * when that user may not open the directory (it may write and search
 * it, not read it), as the daemon itself, through a descriptor of the
 * directory checked to be the one judged at the grant (h->dir_dev,
 * h->dir_ino): only to take its flock, nothing read.  *left is set when
 * h's user was left for that (the caller enters it again).  0 (taken);
 * 1 when another process holds it; -1 when it cannot be taken (the
 * directory gone, replaced, or not known): dl->fd is then -1.  Does not
 * block.
 */
int
lbd_hold_dirlock_take(struct lbd_hold *h, struct lockfs_dirlock *dl,
    int *left)
{
	struct lockfs_err     why;
	struct lockfs_fs_info fi;
	int                   r = -1;

	*left = 0;
	if (lockfs_handoff_exclude(&h->fs, 0, dl, &why) == 0)
		return 0;
	if (why.sys_errno == EWOULDBLOCK)
		return 1;
	if ((why.sys_errno != EACCES && why.sys_errno != EPERM) ||
	    h->dir_dev == 0)
		return -1;
	lbd_creds_leave();
	*left = 1;
	if (lockfs_dirlock_open(dl, h->fs.dir) == 0 &&
	    lockfs_fs_info(dl->fd, &fi) == 0 && fi.dev == h->dir_dev &&
	    fi.ino == h->dir_ino && fi.type == LOCKFS_FS_DIRECTORY)
		r = lockfs_dirlock_try(dl) == 0 ? 0 :
		    errno == EWOULDBLOCK ? 1 : -1;
	if (r != 0)
		lockfs_dirlock_close(dl);
	return r;
}

/*
 * lbd_hold_release_artefact: see hold.h.  The release of the link,
 * symlink and pidfile methods (the artefact judged h's by name and owner,
 * then unlinked) runs under the lock of its directory, which
 * lockfs_break_stale holds across its own judgement and removal: h's
 * holder may be dead (a closed connection, an orphan, a failed handoff's
 * old holder), and a breaker that removed the artefact and made its own
 * between the judgement and the unlink would lose its lock to that
 * unlink while it believes it holds it.  Never waits for it.  While
 * another holds it:
 *   - a live holder's lock (its process runs: no breaker judges it
 *     stale) is released without it once patient tries have found it
 *     taken for LBD_DIRLOCK_PATIENCE_MS;
 *   - a dead holder's never is: it stays held, as a stale lock is not
 *     broken while another holds that lock.
 * The mkdir method's release takes the directory's lock itself where it
 * needs it, and the sqlite method's is one transaction.
 */
int
lbd_hold_release_artefact(struct lbd_hold *h, int patient,
    struct lockfs_err *err)
{
	struct lockfs_dirlock dl = { -1 };
	uint64_t              now;
	int                   r, taken = 0, alive, left = 0;

	if ((r = lbd_creds_enter(h->creds, err)) != 0)
		return r;
	if (h->fs.method != LB_MKDIR && h->fs.method != LB_SQLITE)
		taken = lbd_hold_dirlock_take(h, &dl, &left);
	/* Every step on the artefact as h's user: entered again when the
	 * directory's lock was taken as the daemon; if it cannot be,
	 * nothing is touched. */
	if (left && (r = lbd_creds_enter(h->creds, err)) != 0) {
		lockfs_dirlock_close(&dl);
		return r;
	}
	if (taken == 1) {
		alive = lbd_hold_kept_running(h);
		now = uv_hrtime() / 1000000;
		if (h->dir_busy_since == 0)
			h->dir_busy_since = now;
		if (!alive || (patient &&
		    now - h->dir_busy_since < LBD_DIRLOCK_PATIENCE_MS)) {
			r = lockfs_fail(err, LB_EUNLOCK, EBUSY, "cannot release "
			    "%s now: the lock of its directory %s is held by "
			    "another process%s", h->lock->path, h->fs.dir,
			    alive ? "" : ", and its holder is gone");
			if (!alive && !h->dir_busy_told)
				log_info("%s: its holder, pid %ld, is gone, and "
				    "the lock of its directory %s is held by "
				    "another process: released once that lock "
				    "is free", h->lock->path,
				    (long)h->fs.owner.pid, h->fs.dir);
			h->dir_busy_told = !alive;
			goto out;
		}
		log_info("%s: the lock of its directory %s held by another "
		    "process%s; its holder, pid %ld, runs: released without "
		    "it", h->lock->path, h->fs.dir, patient ? " for 2 s" : "",
		    (long)h->fs.owner.pid);
	}
	r = lockfs_release(&h->fs, err);
out:
	lockfs_dirlock_close(&dl);      /* also drops the lock */
	lbd_creds_leave();
	return r;
}

/*
 * lbd_hold_end: ends l's hold: hands the lock to a rider when the hold is
 * shared and readers are left (readers.c: the upgrader, else the newest;
 * a rider it cannot be handed to loses its hold, and the next is tried),
 * else to the head waiter when there is one (replacing the artefact atomically; if that cannot be done,
 * releasing and letting the waiters try), else removes the artefact.  Returns 1
 * when handed on with the last step owed (swap.c), LBD_HOLD_LEFT_RELEASING
 * when left releasing (hold_releasing), else the result of the release
 * as lockfs reports it (0; LB_ENOTLOCKED or LB_ENOTMINE when someone
 * broke the lock meanwhile; LB_EUNLOCK).
 */
int
lbd_hold_end(struct lbd_lock *l, struct lockfs_err *err)
{
	struct lbd_hold  *h, *next = NULL, *rider;
	struct lbd_wait  *w;
	struct lbd_conn  *tc = NULL;
	pid_t             tkept = 0, ttid = 0;
	struct lockfs_err herr, gerr;
	char              why[sizeof(herr.msg) + 64];
	int               r = -1, named, noted = 0, owed;

	lbd_swap_finish(l->holder);     /* a handoff to it, finished first */
	lbd_hold_marker_drop(l, l->holder);     /* shared: left over */
	if (l->holder->conn != NULL)    /* its own UPGRADE ends with it */
		lbd_upgrade_drop(l, l->holder->conn, l->holder->tid,
		    LBP_ECANCELED, "its hold was released");
	/* An UPGRADE whose owner holds nothing of l (not a rider: its hold
	 * went another way) is never served as an ACQUIRE. */
	if ((w = TAILQ_FIRST(&l->waiters)) != NULL && w->upgrade &&
	    lbd_reader_find(l, w->conn, w->tid) == NULL)
		lbd_upgrade_drop(l, w->conn, w->tid, LBP_ENOTLOCKED, "its "
		    "hold of the lock is gone");
	w = TAILQ_FIRST(&l->waiters);
	/* A shared hold's artefact goes to a rider first (readers.c). */
	rider = l->holder->shared ? lbd_reader_next(l) : NULL;
	if (rider != NULL && l->holder->pinned) {
		/* An orphan's end, its names pinned to the directory just
		 * judged its own (reconcile.c): handed to the rider as any
		 * live reader's hold is, through the path (the handoff's
		 * steps check the directory), never left to lose it. */
		lockfs_names_drop(&l->holder->fs);
		l->holder->pinned = 0;
	}
	named = lbd_hold_names(l->holder, err);

	h = lbd_hold_uninstall(l);
	if (named != 0) {       /* out of memory: tried again later */
		if (hold_releasing(l, h) == 0)
			return LBD_HOLD_LEFT_RELEASING;
		lbd_hold_free(h);
		lbd_lock_serve(l);
		return named;
	}
again:
	/* A waiter for a process that has exited (lbd_wait_current) is
	 * refused by the waiters' turn that follows the release. */
	if (rider != NULL) {
		tc = rider->conn;       /* NULL: a kept rider */
		tkept = rider->kept ? rider->fs.owner.pid : 0;
		ttid = rider->tid;
	} else if (w != NULL && w->set == NULL && lbd_wait_current(w) &&
	    lbd_cohort_gate(l, &gerr) == 0) {
		/* Never a set's wait: its locks are made together, or not
		 * at all (set.c); released, the lock is served after.  A
		 * cluster lock only while its cohort may hand it on
		 * (cohort.h); released otherwise, its waiters served once
		 * it may. */
		tc = w->conn;
		tkept = w->kept_pid;
		ttid = w->tid;
	} else
		tc = NULL;
	if ((tc != NULL || rider != NULL) && !h->pinned &&
	    (next = rider != NULL && rider->kept ? rider_hold_new(l, rider,
	    &herr) : hold_new(l, tc, tkept, ttid, &herr)) != NULL &&
	    (next->token = rider != NULL ? rider->token : 0,
	    next->previous = rider != NULL && rider->previous,
	    r = handoff_note(h, next, &noted, &herr)) == 0 &&
	    (r = lbd_swap_prepare(h, next, next->creds, &herr)) == 0 &&
	    next->swap == NULL && next->dir_dev == 0 &&
	    lbd_creds_enter(next->creds, &herr) == 0) {
		hold_note_dir(next);
		lbd_creds_leave();
	}
	if (r != 0 && noted)
		lbd_intent_undo(l->d);  /* noted, not handed over */
	noted = 0;
	if (r != 0 && rider != NULL) {
		/* That reader cannot take the artefact over: it loses its
		 * hold (never kept on another's file); the next is tried. */
		snprintf(why, sizeof(why), "the artefact could not be "
		    "handed to it (%s)", next != NULL ? herr.msg :
		    "no memory");
		if (next != NULL)
			lbd_hold_free(next);
		next = NULL;
		lbd_reader_lost(rider, why);    /* told before any grant */
		w = TAILQ_FIRST(&l->waiters);
		rider = lbd_reader_next(l);
		r = -1;
		goto again;
	}
	if (r == 0) {
		log_debug("%s: handed from pid %ld thread %ld (token %llu) "
		    "to pid %ld thread %ld", l->path, (long)h->fs.owner.pid,
		    (long)h->tid, (unsigned long long)h->token,
		    (long)next->fs.owner.pid, (long)next->tid);
		/* The old holder's traces, removed as that holder, now or
		 * with the handoff's last step (swap.c). */
		if (next->swap == NULL && lbd_creds_enter(h->creds,
		    &herr) == 0) {
			lockfs_abandon(&h->fs);
			lbd_creds_leave();
		}
		if (rider != NULL) {
			/* A reader's handoff: no request waits for it. */
			next->shared = 1;       /* recorded shared */
			hold_install(l, next);
			next->since = rider->since;
		} else {
			next->shared = w->shared;
			hold_install(l, next);
			lbd_cohort_handed(l);
			lbd_grant_reply(next, w->conn, w->id);
			lbd_wait_remove(w);
			lbd_lock_own_waits(l, next->conn, next->tid);
		}
		/* The readers' steps (a handed rider's marker, the readers
		 * behind it) take credentials on, and so the handoff's last
		 * step first when it is owed (lbd_creds_before_enter). */
		owed = next->swap != NULL;
		if (rider != NULL)
			lbd_reader_handed(rider);
		lbd_readers_serve(l);   /* readers behind it; an UPGRADE */
		if (next->swap != NULL)
			return 1;       /* h is the handoff's (swap.c) */
		if (owed)
			return 0;       /* finished meanwhile: h went with its
			                   traces (lbd_swaps_tidy) */
	} else {
		if (next != NULL) {
			log_debug("%s: no atomic handoff (%s); releasing",
			    l->path, herr.msg);
			lbd_hold_free(next);
		}
		log_debug("%s: released by pid %ld thread %ld (token %llu)",
		    l->path, (long)h->fs.owner.pid, (long)h->tid,
		    (unsigned long long)h->token);
		r = lbd_hold_release_artefact(h, 1, err);
		lockfs_names_drop(&h->fs);
		h->pinned = 0;          /* its names are made anew */
		if (r != 0 && err->sys_errno == EBUSY &&
		    hold_releasing(l, h) == 0) {
			log_debug("%s: %s; releasing it later", l->path,
			    err->msg);
			return LBD_HOLD_LEFT_RELEASING;
		}
		lbd_lock_serve(l);
	}
	lbd_hold_free(h);
	return r;
}

/* lbd_hold_detach: forgets l's hold in memory only: its artefact and its
 * record stay, for its holder to reclaim from the next daemon.  l may be
 * freed on return. */
void
lbd_hold_detach(struct lbd_lock *l)
{
	struct lbd_hold *h = l->holder;

	if (!lbd_swap_failed(h))        /* see lbd_hold_uninstall */
		lbd_swap_finish(h);     /* a handoff to it takes its last step */
	lbd_hold_pay(h);        /* refused if that failed, or had */
	lbd_swap_forget(h);     /* failed: forgotten */
	l->holder = NULL;
	LIST_REMOVE(h, conn_entry);
	if (h->conn != NULL)
		h->conn->nholds--;
	lbd_hold_free(h);
	lbd_readers_detach(l);  /* their markers kept, to reclaim */
	lbd_lock_put(l);
}

/* lbd_hold_forget: drops l's hold whose artefact is gone already, and
 * lets the waiters try.  l may be freed on return. */
void
lbd_hold_forget(struct lbd_lock *l)
{
	lbd_hold_free(lbd_hold_uninstall(l));
	lbd_lock_serve(l);
}

/* How many of a closed connection's holds are taken at a time, sorted
 * by lock file, to be ended in that order (end_next_fill). */
#define LBD_END_BATCH 1024

/* Orders holds by lock file, last first: the state database keeps its
 * records in that order, so that the holds ended in one turn (one
 * transaction) are neighbours there, and a few of its pages are written
 * for many records; last first, so that the oldest hold of the batch
 * still ends last. */
static int
end_order(const void *a, const void *b)
{
	const struct lbd_hold *ha = *(struct lbd_hold *const *)a;
	const struct lbd_hold *hb = *(struct lbd_hold *const *)b;
	int                    r = strcmp(hb->lock->path, ha->lock->path);

	return r != 0 ? r : (int)hb->lock->method - (int)ha->lock->method;
}

/* Forgets closed c's batch of holds to end (each hold's place in it). */
static void
end_next_drop(struct lbd_conn *c)
{
	for (; c->end_i < c->end_n; c->end_i++)
		if (c->end_next[c->end_i] != NULL)
			c->end_next[c->end_i]->end_slot = NULL;
	free(c->end_next);
	c->end_next = NULL;
	c->end_n = c->end_i = 0;
}

/* Takes closed c's next holds to end (up to LBD_END_BATCH, the newest
 * first, as they come in its list), sorted by lock file (end_order):
 * each hold's place in the batch is cleared if it is freed first.  0 when
 * the batch cannot be had (out of memory: the list's order then). */
static int
end_next_fill(struct lbd_conn *c)
{
	struct lbd_hold *h;
	size_t           n = 0, i;

	end_next_drop(c);
	if ((c->end_next = malloc((c->nholds < LBD_END_BATCH ? c->nholds :
	    LBD_END_BATCH) * sizeof(*c->end_next))) == NULL)
		return 0;
	LIST_FOREACH(h, &c->holds, conn_entry) {
		if (n == LBD_END_BATCH || n == c->nholds)
			break;
		c->end_next[n++] = h;
	}
	qsort(c->end_next, n, sizeof(*c->end_next), end_order);
	for (i = 0; i < n; i++)
		c->end_next[i]->end_slot = &c->end_next[i];
	c->end_n = n;
	return 1;
}

/* Closed c's next hold to end: the next of its batch (a batch of 2 holds
 * at least; its holds freed meanwhile skipped), or its list's first. */
static struct lbd_hold *
end_next(struct lbd_conn *c)
{
	struct lbd_hold *h;

	for (;;) {
		while (c->end_i < c->end_n)
			if ((h = c->end_next[c->end_i++]) != NULL) {
				h->end_slot = NULL;
				if (h->conn == c)
					return h;
			}
		if (LIST_EMPTY(&c->holds) || c->nholds < 2 ||
		    !end_next_fill(c))
			return LIST_FIRST(&c->holds);
	}
}

/*
 * lbd_conn_release_some: c is closed: ends its holds, handing each to its
 * next waiter, until none is left or uv_hrtime() passes deadline (one at
 * least): LBD_END_BATCH of them at a time, the newest first, each batch
 * in the order of their lock files (end_next_fill).  Until then they are
 * held by c, as before it closed, so no new client can take them or be
 * told it holds them.  1 while holds are left, else 0.
 */
int
lbd_conn_release_some(struct lbd_conn *c, uint64_t deadline)
{
	struct lockfs_err err;
	struct lbd_hold  *h;

	while ((h = end_next(c)) != NULL) {
		if (lbd_reader_keep_for_readers(h->lock, h))
			continue;       /* held for the previous run's readers */
		if (lbd_hold_end(h->lock, &err) < 0)    /* its lock may be gone */
			log_info("release after pid %ld left: %s",
			    (long)c->pid, err.msg);
		if (uv_hrtime() >= deadline)
			break;
	}
	if (!LIST_EMPTY(&c->holds))
		return 1;
	end_next_drop(c);
	return 0;
}
