/*
 * readers.c: shared holds (docs/SHARED.md).  A lock held shared has one
 * artefact, made for and naming its *artefact's reader* (l->holder,
 * shared), and any number of *riders* (l->readers): shared holds with no
 * artefact of their own, in memory only, each with its owner, its
 * user's credentials and the token of the read (the artefact reader's).
 *
 *                 shared ACQUIRE, nobody waits, the requester may make
 *                 and remove names where the artefact is: a rider
 *   HELD shared ----------------------------------------------------+
 *   (holder,    <---------------------------------------------------+
 *    riders)    a rider's RELEASE, its connection's close: the rider
 *     |   |     goes (nothing on disk); an UPGRADE at the head whose
 *     |   |     owner is then the only holder is granted (HELD alone)
 *     |   |
 *     |   | the artefact's reader leaves (RELEASE, close): the artefact
 *     |   | handed to a rider (the upgrader, else the newest) by the
 *     |   | usual handoff (hold.c, swap.c), made as that rider; a rider
 *     |   | that cannot take it is lost (logged) and the next tried
 *     |   v
 *     |  HELD shared by the rider that took it (same token)
 *     |
 *     | the artefact's hold gone with no rider to take it (BREAK, its
 *     | artefact gone, no rider could): every rider and the UPGRADE
 *     v lost (lbd_readers_lost), the waiters served (lock.c)
 *   FREE or HELD by the head waiter
 *
 * Over a restart a rider's records are its row in the state database
 * (conn_riders: its process, thread and user, and how many connections
 * ride on its marker, written as riders join and leave, committed before
 * the join's or the leave's reply goes out: the commit of a few
 * iterations' joins and leaves at once, lbd_store_carry) and its marker
 * beside the lock file (the artefact's hold is in the holds table).  At
 * start the rows of the live holds are awaited (l->awaited); a RECLAIM
 * rides again when its row awaits a connection and its marker is there
 * (lbd_reader_rejoin), and the marker stays while a connection may
 * still come; at the grace period's end the riders that never came are
 * forgotten, their markers removed.  An artefact's reader released
 * during the grace period before any rider reclaimed, while one may
 * come, leaves its hold an orphan held for them (for_readers:
 * lbd_reader_keep_for_readers), handed to the first that reclaims,
 * ended with the grace; a stopping daemon forgets its riders and
 * leaves their markers and rows (lbd_readers_detach).
 *
 * Whenever the lock is held shared and its queue's head may go
 * (lbd_readers_serve): an UPGRADE at the head waits for its owner to be
 * the only holder; otherwise the shared requests at the head, up to the
 * first exclusive one, are granted as riders.  Steps in the file system
 * run as the client they are for (creds.c); a rider never keeps another
 * user's artefact: it takes it over, as itself, when its reader leaves.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "cohort.h"
#include "creds.h"
#include "daemon.h"
#include "fs.h"
#include "hold.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "loop.h"
#include "pidwatch.h"
#include "readers.h"
#include "reply.h"
#include "store.h"
#include "wait.h"
#include "watch.h"


static void hold_unsign(struct lbd_lock *l, struct lbd_hold *h);
static void reader_unlist(struct lbd_hold *r, int keep_record);
static int  sign_may_go(const struct lbd_lock *l);

/* lbd_hold_mode: see readers.h.  Made exclusive with no rider (an
 * UPGRADE, a RECLAIM's mode), the lock loses its readers' sign. */
void
lbd_hold_mode(struct lbd_hold *h, int shared)
{
	struct lbd_lock *l = h->lock;

	if (h->shared == shared)
		return;
	h->shared = shared;
	lbd_store_hold_add(l->d, h);
	if (!shared && l->holder == h && sign_may_go(l))
		hold_unsign(l, h);
}

/* lbd_reader_find: see readers.h.  Looks through c's riders (at most
 * holds_per_conn), never through l's: a lock's riders may be many. */
struct lbd_hold *
lbd_reader_find(struct lbd_lock *l, struct lbd_conn *c, pid_t tid)
{
	struct lbd_hold *r;

	if (l->nreaders == 0)
		return NULL;
	LIST_FOREACH(r, &c->readers, conn_entry)
		if (r->lock == l && r->tid == tid)
			return r;
	return NULL;
}

/* lbd_reader_find_kept: see readers.h.  Walks l's riders (at most
 * readers_per_lock): kept ones are few, asked for by a command. */
struct lbd_hold *
lbd_reader_find_kept(struct lbd_lock *l, const struct lbd_conn *c,
    pid_t pid)
{
	struct lbd_hold *r;

	TAILQ_FOREACH(r, &l->readers, reader_entry)
		if (r->kept && r->fs.owner.pid == pid &&
		    (c->uid == 0 || c->uid == r->uid) &&
		    !lbd_orphan_exiting(r) && lbd_hold_kept_running(r))
			return r;
	return NULL;
}

/* lbd_reader_of: see readers.h. */
struct lbd_hold *
lbd_reader_of(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid)
{
	return kept_pid != 0 ? lbd_reader_find_kept(l, c, kept_pid) :
	    lbd_reader_find(l, c, tid);
}

/* Whether l's artefact's hold h is one riders may join and be served
 * beside: a connected reader's, or one kept for a process (judged: not
 * a previous run's whose artefact could not be looked at), neither
 * releasing nor lingering. */
static int
holder_serves(const struct lbd_hold *h)
{
	return h != NULL && h->shared && (h->conn != NULL ||
	    (h->kept && h->unjudged == 0)) && !h->releasing && !h->lingering;
}

/* lbd_readers_serving: see readers.h. */
int
lbd_readers_serving(const struct lbd_lock *l)
{
	return holder_serves(l->holder);
}

/* lbd_reader_joinable: see readers.h. */
int
lbd_reader_joinable(const struct lbd_lock *l)
{
	return holder_serves(l->holder) && TAILQ_EMPTY(&l->waiters);
}

/*
 * Whether c could take l's artefact over from its reader: may make and
 * remove names in the artefact's directory, as c (the handoff's steps);
 * for the mkdir method, whose lock directory is its owner's to empty, and
 * in a sticky directory, where only a name's owner may replace it
 * (lockfs/handoff.c), c must be of the reader's user.  0, or LB_EFAILED
 * with err filled.
 */
static int
reader_may_take(struct lbd_lock *l, struct lbd_conn *c,
    struct lockfs_err *err)
{
	struct lockfs_fs_info fi;
	struct lockfs_lock    fs;
	int                   r, e = 0;

	if (l->method == LB_MKDIR && c->uid != l->holder->uid)
		return lockfs_fail(err, LB_EFAILED, EPERM, "%s is held shared "
		    "by uid %ld: a mkdir lock is shared within one user (its "
		    "directory is its owner's)", l->path,
		    (long)l->holder->uid);
	if ((r = lockfs_init(&fs, l->path, l->method, 0, err)) != 0)
		return r;
	if ((r = lbd_creds_enter(c->creds, err)) == 0) {
		if ((r = lockfs_fs_may_remove_in(fs.dir)) == -1 ||
		    (r = lockfs_fs_info_at(LOCKFS_FS_CWD, fs.dir,
		    LOCKFS_FS_FOLLOW, &fi)) == -1)
			e = errno;
		lbd_creds_leave();
		if (r == -1)
			r = lockfs_fail(err, LB_EFAILED, e, "%s: cannot make "
			    "and remove names there, which every reader of a "
			    "shared lock must be able to", fs.dir);
		else if (lockfs_readers_guarded(&fi) &&
		    c->uid != l->holder->uid)
			/* Only a name's owner may replace it there: the
			 * readers' handoffs hold between one user's. */
			r = lockfs_fail(err, LB_EFAILED, EPERM, "%s is held "
			    "shared by uid %ld in %s, which is sticky: a lock "
			    "there is shared within one user", l->path,
			    (long)l->holder->uid, fs.dir);
	}
	lockfs_fini(&fs);
	return r;
}

/* One kept reader per process and lock: a process kept reading l by
 * one user (root for another's process, say), as the artefact's reader
 * or a rider, is refused to another user (who may not act for that
 * hold: lbd_hold_find, lbd_reader_find_kept), so that each process has
 * one marker, of one user, and one record.  0, or LB_EFAILED with err
 * filled. */
static int
reader_kept_once(struct lbd_lock *l, const struct lbd_conn *c, pid_t pid,
    struct lockfs_err *err)
{
	const struct lbd_hold *r = l->holder;

	if (r == NULL || !r->kept || r->fs.owner.pid != pid)
		TAILQ_FOREACH(r, &l->readers, reader_entry)
			if (r->kept && r->fs.owner.pid == pid)
				break;
	if (r == NULL)
		return 0;
	return lockfs_fail(err, LB_EFAILED, EEXIST, "pid %ld reads %s "
	    "already, kept for it by uid %ld: one kept reader a process "
	    "(uid %ld may not act for that one)", (long)pid, l->path,
	    (long)r->uid, (long)c->uid);
}

/* A rider's marker is named by its process and thread: a rider of
 * (pid, tid) of another user than uid already, whose marker it would
 * have to share (a marker is a file of one user's: lockfs_reader_mark),
 * refuses the join (root keeping a process reading, and that process
 * reading over its own connection, say).  0, or LB_EFAILED with err
 * filled. */
static int
reader_one_user(struct lbd_lock *l, const struct lockfs_owner *o,
    pid_t tid, uid_t uid, struct lockfs_err *err)
{
	const struct lbd_hold *r;

	TAILQ_FOREACH(r, &l->readers, reader_entry)
		if (r->tid == tid && r->fs.owner.pid == o->pid &&
		    r->fs.owner.start == o->start && r->uid != uid)
			return lockfs_fail(err, LB_EFAILED, EEXIST, "pid %ld "
			    "%s%.0ld reads %s already as uid %ld: a process "
			    "(and thread) reads a lock as one user (its "
			    "marker is that user's)", (long)o->pid, tid != 0 ?
			    "thread " : "", (long)tid, l->path, (long)r->uid);
	return 0;
}

/* What reader_marker does beside a rider's lock file. */
enum reader_step {
	READER_UNMARK,          /* removes its marker */
	READER_MARK,            /* makes the readers' sign, then its marker */
	READER_UNSIGN           /* removes the readers' sign */
};

/*
 * Takes step on rider r's trace beside its lock file (lockfs/readers.c:
 * the riders' own trace on disk, which a judge of the lock without the
 * daemon sees), as r's client.  0, or an LB_E* code with err filled.
 */
static int
reader_marker(struct lbd_hold *r, enum reader_step step,
    struct lockfs_err *err)
{
	int rc;

	if (lockfs_names_make(&r->fs) != 0)
		return lockfs_fail(err, LB_EFAILED, errno, "%s: the names of "
		    "a reader's marker", r->lock->path);
	if ((rc = lbd_creds_enter(r->creds, err)) == 0) {
		if (step == READER_MARK)
			rc = lockfs_reader_mark(&r->fs, &r->fs.owner, err);
		else if (step == READER_UNMARK)
			rc = lockfs_reader_unmark(&r->fs, &r->fs.owner, err);
		else
			rc = lockfs_readers_unsign(&r->fs, err);
		lbd_creds_leave();
	}
	lockfs_names_drop(&r->fs);      /* made for a step, none till then */
	return rc;
}

/* Whether d judges its previous run's holds: while it reconciles them
 * at start (a first reader found dead there is judged in the grace
 * period too), or in the grace period. */
static int
in_grace(struct lbd *d)
{
	return d->reconciling || uv_is_active((uv_handle_t *)&d->grace);
}

/* Whether holds x and h have one marker: the same process (pid, start
 * time, boot) and thread. */
static int
same_marker(const struct lbd_hold *x, const struct lbd_hold *h)
{
	const struct lockfs_owner *o = &h->fs.owner, *p = &x->fs.owner;

	return x->tid == h->tid && p->pid == o->pid && p->start == o->start &&
	    strcmp(p->boot, o->boot) == 0;
}

/* Whether a rider of l but skip has the marker of hold h, through
 * another connection, or a rider of the previous run that may still
 * reclaim has it (l->awaited).  Walks the lock's riders (at most
 * readers_per_lock). */
static int
rider_has_marker_of(const struct lbd_lock *l, const struct lbd_hold *skip,
    const struct lbd_hold *h)
{
	const struct lbd_hold *x;

	TAILQ_FOREACH(x, &l->readers, reader_entry)
		if (x != skip && same_marker(x, h))
			return 1;
	TAILQ_FOREACH(x, &l->awaited, reader_entry)
		if (x != skip && x->awaited > 0 && same_marker(x, h))
			return 1;
	return 0;
}

/* lbd_reader_conns: see readers.h. */
unsigned
lbd_reader_conns(const struct lbd_hold *r)
{
	const struct lbd_hold *x;
	unsigned               n = 0;

	TAILQ_FOREACH(x, &r->lock->readers, reader_entry)
		if (!x->kept && x->uid == r->uid && same_marker(x, r))
			n++;
	TAILQ_FOREACH(x, &r->lock->awaited, reader_entry)
		if (x->uid == r->uid && same_marker(x, r))
			n += x->awaited;
	return n;
}

/* Records how many connections ride r's lock on the marker of r, a rider
 * of a connection (lbd_reader_conns), after r joined or left. */
static void
reader_record(const struct lbd_hold *r)
{
	if (!r->kept)
		lbd_store_conn_rider(r->lock->d, r, lbd_reader_conns(r));
}

/* The rider of the previous run in l->awaited that r, asking for its
 * shared hold back, is: its marker and user, with a connection still to
 * reclaim; or NULL. */
static struct lbd_hold *
reader_awaited(struct lbd_lock *l, const struct lbd_hold *r)
{
	struct lbd_hold *a;

	TAILQ_FOREACH(a, &l->awaited, reader_entry)
		if (a->awaited > 0 && a->uid == r->uid && same_marker(a, r))
			return a;
	return NULL;
}

/* Whether another rider of r's lock has r's marker. */
static int
reader_marker_shared(const struct lbd_hold *r)
{
	return rider_has_marker_of(r->lock, r, r);
}

/* Whether riders of the previous run may still reclaim l (their markers
 * counting till then): a previous run's hold held shared, in the grace
 * period. */
static int
previous_riders_may_come(const struct lbd_lock *l)
{
	const struct lbd_hold *h = l->holder;

	return h != NULL && h->shared && in_grace(l->d) && h->previous;
}

/* Whether l's readers' sign may go: no rider rides on it, and none of a
 * previous run can still reclaim. */
static int
sign_may_go(const struct lbd_lock *l)
{
	return l->nreaders == 0 && !previous_riders_may_come(l);
}

/* Removes the trace of rider r, which rides no more (out of its lock's
 * riders): its record (one connection fewer on its marker) and on disk
 * its marker, unless another rider of its thread has it (of this run,
 * or of the previous run still to reclaim), and, when the lock has no
 * rider left (sign_may_go), the readers' sign; a step that fails is
 * logged (a marker or sign left behind keeps no lock: it only has judges
 * look for markers). */
static void
reader_trace_drop(struct lbd_hold *r)
{
	struct lockfs_err err;
	struct lbd_lock  *l = r->lock;

	reader_record(r);
	if (!reader_marker_shared(r) &&
	    reader_marker(r, READER_UNMARK, &err) != 0)
		log_info("%s: %s (left, naming pid %ld)", l->path, err.msg,
		    (long)r->fs.owner.pid);
	if (sign_may_go(l) && reader_marker(r, READER_UNSIGN, &err) != 0)
		log_info("%s: %s (left: its judges look for markers)",
		    l->path, err.msg);
}

/*
 * Whether l's lock file names its artefact's reader h still (its name and
 * owner, looked at as h's user), under the lock of its directory when
 * locked (taken by the caller, or here: *dl); 1, 0 (not h's any more), or
 * LBD_JOIN_BUSY / -1 when locked is asked for and that lock is held by
 * another process / cannot be taken (never waited for: anyone who may
 * read the directory can hold it for good), err filled for -1.
 */
static int
reader_named(struct lbd_lock *l, int locked, struct lockfs_dirlock *dl,
    struct lockfs_err *err)
{
	struct lockfs_err why;
	struct lbd_hold  *h = l->holder;
	int               taken = 0, left = 0, named = 0, made = 0, rc;

	/* Credentials first: a step owed on h (a handoff's last) is taken
	 * then, before its names are looked at here. */
	if ((rc = lbd_creds_enter(h->creds, err)) != 0)
		return -1;
	if (h->fs.lock_file == NULL) {
		if (lockfs_names_make(&h->fs) != 0) {
			lockfs_fail(err, LB_EFAILED, errno, "%s: the names "
			    "of its artefact", l->path);
			lbd_creds_leave();
			return -1;
		}
		made = 1;
	}
	if (locked)
		taken = lbd_hold_dirlock_take(h, dl, &left);
	if (taken == 0 && left)
		rc = lbd_creds_enter(h->creds, err);
	if (rc == 0 && taken == 0)
		named = lockfs_i_am_locking(&h->fs, &why) == 1;
	if (rc == 0 && !(taken != 0 && left))
		lbd_creds_leave();
	if (made)
		lockfs_names_drop(&h->fs);      /* only those made here */
	if (rc != 0)
		return -1;
	if (taken == 1)
		return LBD_JOIN_BUSY;
	if (taken != 0) {
		lockfs_fail(err, LB_EFAILED, EACCES, "%s: cannot lock its "
		    "directory %s to join its readers", l->path, h->fs.dir);
		return -1;
	}
	return named;
}

/* Whether the process of l's artefact's reader h lives, with its start
 * time (looked at as the daemon). */
static int
reader_first_lives(const struct lbd_hold *h)
{
	struct lockfs_holder fh;

	memset(&fh, 0, sizeof(fh));
	fh.pid = h->fs.owner.pid;
	fh.start = h->fs.owner.start;
	memcpy(fh.boot, h->fs.owner.boot, sizeof(fh.boot));
	return lockfs_holder_liveness(&fh) == LB_HOLDER_ALIVE;
}

/*
 * Makes rider r's marker for a join beside l's artefact's reader h, then
 * checks that the lock file names h still and that h's process lives
 * (pid, start time): a stale-breaker, which judges the artefact's process
 * dead and then looks for live readers' markers (lockfs_break_stale),
 * either broke it before (then it is not h's: no rider) or judges after
 * h's death, after the marker was made, and sees it.  Only when h's
 * process is gone (its connection lives on in a child) is the lock of
 * the lock's directory, which stale-breakers hold across their judgement
 * and removal, taken to look again under it; it is tried once, never
 * waited for.  0 (joined, marker made); LB_ENOTLOCKED with err filled
 * when the lock file is not h's any more (broken, taken by another):
 * h's hold to be ended (lbd_readers_artefact_lost); LBD_JOIN_BUSY when
 * the directory's lock is held by another process now (the request to
 * wait and try again); another LB_E* code with err filled when the
 * marker cannot be made or the directory's lock cannot be taken.  No
 * marker is left but on 0.  Never blocks.
 */
static int
reader_mark_judged(struct lbd_lock *l, struct lbd_hold *r,
    struct lockfs_err *err)
{
	struct lockfs_dirlock dl = { -1 };
	struct lbd_hold      *h = l->holder;
	int                   named, rc;

	if ((rc = reader_marker(r, READER_MARK, err)) != 0) {
		reader_trace_drop(r);   /* the sign, made for it alone */
		return rc;
	}
	named = reader_named(l, 0, &dl, err);
	if (named == 1 && !reader_first_lives(h))
		named = reader_named(l, 1, &dl, err);
	lockfs_dirlock_close(&dl);      /* also drops the lock */
	if (named == 1)
		return 0;
	reader_trace_drop(r);
	if (named == 0)
		return lockfs_fail(err, LB_ENOTLOCKED, 0, "%s: its lock file "
		    "no longer names its artefact's reader, pid %ld (broken "
		    "as stale, or another's)", l->path,
		    (long)h->fs.owner.pid);
	if (named == LBD_JOIN_BUSY)
		return LBD_JOIN_BUSY;
	return err->code != 0 ? err->code : LB_EFAILED;
}

/*
 * Whether rider r's marker lies beside its lock file already, a file of
 * r's user (lockfs_reader_marked), looked at as r's client.
 */
static int
reader_marked(struct lbd_hold *r)
{
	struct lockfs_err err;
	int               marked = 0;

	if (lockfs_names_make(&r->fs) != 0)
		return 0;
	if (lbd_creds_enter(r->creds, &err) == 0) {
		marked = lockfs_reader_marked(&r->fs, &r->fs.owner);
		lbd_creds_leave();
	}
	lockfs_names_drop(&r->fs);
	return marked;
}

/*
 * Makes (c, tid) a rider of l, held shared by its artefact's reader, once
 * c is known to be able to take the artefact over: with its marker made
 * (make 1), or found there already, of a reader of the previous run
 * (make 0; the readers' sign made again should it have gone).  With
 * kept_pid not 0, the rider is kept for that process (thread 0) instead,
 * past c (conn NULL, in d->kept_riders, its process watched: pidwatch.c,
 * recorded in the riders table).  0 with *rp the rider; or an LB_E* code
 * with err filled (LB_ENOTLOCKED: no such marker), nothing joined.
 */
static int
reader_add(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid, int make, struct lbd_hold **rp, struct lockfs_err *err)
{
	struct lbd_hold *r, *a = NULL;
	int              rc;

	if ((rc = reader_may_take(l, c, err)) != 0 ||
	    (kept_pid != 0 && (rc = reader_kept_once(l, c, kept_pid,
	    err)) != 0))
		return rc;
	if ((r = lbd_hold_new(l, c, kept_pid != 0 ? kept_pid : c->pid,
	    kept_pid != 0 ? 0 : tid, NULL, err)) == NULL)
		return err->code;
	if ((rc = reader_one_user(l, &r->fs.owner, r->tid, r->uid,
	    err)) != 0) {
		lbd_hold_free(r);
		return rc;
	}
	if (make)
		rc = reader_mark_judged(l, r, err);
	else if ((a = reader_awaited(l, r)) == NULL &&
	    lbd_store_conn_riders_known(l->d))
		rc = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s: the previous "
		    "run recorded no shared hold of this reader", l->path);
	else if (!reader_marked(r))
		rc = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s: no marker of "
		    "this reader beside it", l->path);
	else    /* the readers' sign, should it have gone meanwhile */
		rc = reader_marker(r, READER_MARK, err);
	if (rc != 0) {
		lbd_hold_free(r);
		return rc;
	}
	r->shared = r->rider = 1;
	r->token = l->holder->token;    /* the read's token */
	r->previous = l->holder->previous;
	r->since = lbd_now();
	TAILQ_INSERT_TAIL(&l->readers, r, reader_entry);
	l->nreaders++;
	*rp = r;
	if (kept_pid != 0) {
		lbd_reader_keep(r, 1);
		return 0;
	}
	if ((r->user = c->uid_conns) != NULL)
		r->user->nlocks++;
	LIST_INSERT_HEAD(&c->readers, r, conn_entry);
	c->nreaders++;
	if (a != NULL && --a->awaited == 0) {   /* its record says as much */
		TAILQ_REMOVE(&l->awaited, a, reader_entry);
		lbd_hold_free(a);
	} else if (a == NULL)
		reader_record(r);
	return 0;
}

/* lbd_reader_keep: see readers.h. */
void
lbd_reader_keep(struct lbd_hold *r, int record)
{
	struct lbd *d = r->lock->d;

	r->kept = 1;
	r->conn = NULL;
	r->lock->nkept++;
	if ((r->user = lbd_uid_get(d, r->uid)) != NULL)
		r->user->nlocks++;
	LIST_INSERT_HEAD(&d->kept_riders, r, conn_entry);
	if (record) {
		r->unsettled = 1;       /* its OK owed until recorded */
		lbd_store_rider(d, r, 1);
	}
	lbd_orphan_watch(d, r);
}

/* A rider of l as rec, a rider's record (kept, or of a connection),
 * says: its process and thread, its user's credentials (not in l's
 * riders).  NULL with err filled. */
static struct lbd_hold *
reader_of_record(struct lbd_lock *l, const struct lbd_store_hold *rec,
    struct lockfs_err *err)
{
	struct lockfs_owner o;
	struct lbd_hold    *r;

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = rec->pid;
	o.tid = rec->tid;
	o.start = rec->start;
	memcpy(o.boot, rec->boot, sizeof(o.boot));
	o.uid = lbd_os_files_uid_of(rec->uid);  /* its marker was made as
	                                           its user */
	if ((r = lbd_hold_new(l, NULL, rec->pid, rec->tid, &o, err)) == NULL)
		return NULL;
	r->uid = rec->uid;
	r->gid = rec->gid;
	if ((r->creds = lbd_creds_new(rec->uid, rec->gid, rec->ngroups,
	    rec->groups)) == NULL) {
		lockfs_fail(err, LB_ENOMEM, ENOMEM, "%s: a kept reader's "
		    "credentials", l->path);
		lbd_hold_free(r);
		return NULL;
	}
	return r;
}

/* Whether the lock file of rider r's lock names r (its name and owner),
 * looked at as r's user. */
static int
reader_owns_artefact(struct lbd_hold *r)
{
	struct lockfs_err err;
	int               mine = 0;

	if (lockfs_names_make(&r->fs) != 0)
		return 0;
	if (lbd_creds_enter(r->creds, &err) == 0) {
		mine = lockfs_i_am_locking(&r->fs, &err) == 1;
		lbd_creds_leave();
	}
	lockfs_names_drop(&r->fs);
	return mine;
}

/* lbd_reader_owner: see readers.h. */
struct lbd_hold *
lbd_reader_owner(struct lbd_lock *l)
{
	struct lbd_hold *r;

	TAILQ_FOREACH(r, &l->readers, reader_entry)
		if (r->kept && reader_owns_artefact(r))
			return r;
	return NULL;
}

/* lbd_reader_promote: see readers.h. */
void
lbd_reader_promote(struct lbd_hold *r)
{
	struct lbd_lock *l = r->lock;

	TAILQ_REMOVE(&l->readers, r, reader_entry);
	l->nreaders--;
	l->nkept--;
	LIST_REMOVE(r, conn_entry);     /* out of d->kept_riders */
	r->rider = 0;
	lbd_hold_adopt(l, r);           /* kept: into d->orphans, watched */
	lbd_store_hold_add(l->d, r);
	log_info("%s: its lock file is pid %ld's, kept for it, shared, "
	    "handed to it before the previous run recorded that", l->path,
	    (long)r->fs.owner.pid);
}

/* lbd_reader_adopt_kept: see readers.h. */
int
lbd_reader_adopt_kept(struct lbd_lock *l, const struct lbd_store_hold *rec)
{
	struct lockfs_err  err;
	struct lbd_hold   *h = l->holder, *r;
	unsigned long long start;

	if (h == NULL || !h->shared || h->token != rec->token ||
	    lockfs_os_start_time(rec->pid, &start) != 0 ||
	    start != rec->start)
		return -1;      /* its read is over, or its process */
	if ((r = reader_of_record(l, rec, &err)) == NULL) {
		log_warn("%s", err.msg);
		return -1;
	}
	/* Its marker; or none, the lock file its own: the artefact was
	 * handed to it before the previous run recorded that (its marker
	 * removed), and it takes the artefact over from h
	 * (lbd_reader_promote) once h is found not to own it. */
	if (!reader_marked(r) && !reader_owns_artefact(r)) {
		log_info("%s: pid %ld's shared hold, kept for it, has no "
		    "marker beside the lock file (removed): it ends",
		    l->path, (long)rec->pid);
		lbd_hold_free(r);
		return -1;
	}
	r->shared = r->rider = 1;
	r->token = rec->token;
	r->previous = 1;
	r->since = rec->since;
	TAILQ_INSERT_TAIL(&l->readers, r, reader_entry);
	l->nreaders++;
	lbd_reader_keep(r, 0);
	log_info("%s: kept for pid %ld, shared, as in the previous run",
	    l->path, (long)rec->pid);
	return 0;
}

/* lbd_reader_await: see readers.h. */
void
lbd_reader_await(struct lbd_lock *l, const struct lbd_store_hold *rec)
{
	struct lockfs_err  err;
	struct lbd_hold   *h = l->holder, *a;
	unsigned long long start;

	if (h == NULL || !h->shared || h->token != rec->token ||
	    rec->conns == 0 || !in_grace(l->d) ||
	    lockfs_os_start_time(rec->pid, &start) != 0 ||
	    start != rec->start)
		return;         /* its read is over, or its process */
	if ((a = reader_of_record(l, rec, &err)) == NULL) {
		log_warn("%s", err.msg);
		return;
	}
	if (!reader_marked(a)) {        /* released in-process meanwhile */
		lbd_hold_free(a);
		return;
	}
	a->shared = 1;
	a->token = rec->token;
	a->previous = 1;
	a->since = rec->since;
	a->awaited = rec->conns;
	TAILQ_INSERT_TAIL(&l->awaited, a, reader_entry);
}

/* Ends the wait for l's riders of the previous run (l->awaited), the
 * grace period over, or l going: their records say the connections of
 * this run alone (kept whole while the daemon stops); with forget, the
 * markers no rider of this run has are removed, as their users. */
static void
awaited_end(struct lbd_lock *l, int forget)
{
	struct lockfs_err err;
	struct lbd_hold  *a;

	while ((a = TAILQ_FIRST(&l->awaited)) != NULL) {
		TAILQ_REMOVE(&l->awaited, a, reader_entry);
		if (forget && !rider_has_marker_of(l, NULL, a) &&
		    reader_marker(a, READER_UNMARK, &err) != 0)
			log_info("%s: %s (left, naming pid %ld)", l->path,
			    err.msg, (long)a->fs.owner.pid);
		if (!l->d->stopping)
			lbd_store_conn_rider(l->d, a, lbd_reader_conns(a));
		lbd_hold_free(a);
	}
}

/* lbd_readers_unawait: see readers.h. */
void
lbd_readers_unawait(struct lbd_lock *l)
{
	awaited_end(l, !l->d->stopping);
}

/* A rider of the previous run awaited (l->awaited), kept apart from its
 * lock while the lock is not (lbd_readers_await_take). */
struct lbd_awaited {
	struct lbd_awaited *next;
	struct lbd_store_hold rec;      /* path, unique and from_unique "" */
	gid_t              *groups;     /* rec.groups' own copy */
};

/* lbd_readers_await_take: see readers.h. */
struct lbd_awaited *
lbd_readers_await_take(struct lbd_lock *l)
{
	struct lbd_awaited *list = NULL, *w;
	struct lbd_hold    *a;

	while ((a = TAILQ_FIRST(&l->awaited)) != NULL) {
		TAILQ_REMOVE(&l->awaited, a, reader_entry);
		if ((w = calloc(1, sizeof(*w))) != NULL &&
		    (a->creds->ngroups == 0 || (w->groups = malloc(
		    a->creds->ngroups * sizeof(gid_t))) != NULL)) {
			w->rec.pid = a->fs.owner.pid;
			w->rec.tid = a->tid;
			w->rec.start = a->fs.owner.start;
			memcpy(w->rec.boot, a->fs.owner.boot,
			    sizeof(w->rec.boot));
			w->rec.uid = a->uid;
			w->rec.gid = a->gid;
			w->rec.ngroups = a->creds->ngroups;
			if (w->groups != NULL)
				memcpy(w->groups, a->creds->groups,
				    a->creds->ngroups * sizeof(gid_t));
			w->rec.groups = w->groups;
			w->rec.groups_known = 1;
			w->rec.token = a->token;
			w->rec.since = a->since;
			w->rec.shared = 1;
			w->rec.conns = a->awaited;
			w->next = list;
			list = w;
		} else
			free(w);        /* out of memory: not awaited */
		lbd_hold_free(a);
	}
	return list;
}

/* lbd_readers_await_give: see readers.h. */
void
lbd_readers_await_give(struct lbd_lock *l, struct lbd_awaited *list)
{
	struct lbd_awaited *w;
	struct lbd_hold    *h = l->holder, *a;

	for (w = list; w != NULL; w = w->next)
		lbd_reader_await(l, &w->rec);
	lbd_readers_await_free(list);
	/* The holder was one of them: it holds the artefact now. */
	TAILQ_FOREACH(a, &l->awaited, reader_entry)
		if (h != NULL && a->uid == h->uid && same_marker(a, h)) {
			if (--a->awaited == 0) {
				TAILQ_REMOVE(&l->awaited, a, reader_entry);
				lbd_hold_free(a);
			}
			break;
		}
	TAILQ_FOREACH(a, &l->awaited, reader_entry)
		lbd_store_conn_rider(l->d, a, lbd_reader_conns(a));
}

/* lbd_readers_await_free: see readers.h. */
void
lbd_readers_await_free(struct lbd_awaited *list)
{
	struct lbd_awaited *w;

	while ((w = list) != NULL) {
		list = w->next;
		free(w->groups);
		free(w);
	}
}

/* Whether a rider of the previous run may still come to l, whose
 * artefact's hold h is the previous run's, shared, in the grace period:
 * one of its recorded riders (l->awaited) whose process lives and whose
 * marker lies there (without it, its RECLAIM is refused), when the
 * state database records them; else a live reader's marker beside the
 * lock file (lockfs_readers_live, looked at as h's user).  1, 0, or -1
 * (cannot tell). */
static int
riders_to_come(struct lbd_lock *l, struct lbd_hold *h)
{
	struct lockfs_err  err;
	struct lbd_hold   *a;
	unsigned long long start;
	int                live = -1, made;

	if (lbd_store_conn_riders_known(l->d)) {
		TAILQ_FOREACH(a, &l->awaited, reader_entry)
			if (a->awaited > 0 && lockfs_os_start_time(
			    a->fs.owner.pid, &start) == 0 &&
			    start == a->fs.owner.start && reader_marked(a))
				return 1;
		return 0;
	}
	/* Credentials first: a step owed on h (a handoff's last) is taken
	 * then, before its names are looked at here. */
	if (lbd_creds_enter(h->creds, &err) != 0)
		return -1;
	made = h->fs.lock_file == NULL;
	if (lockfs_names_make(&h->fs) == 0)
		live = lockfs_readers_live(&h->fs);
	if (made)
		lockfs_names_drop(&h->fs);      /* only those made here */
	lbd_creds_leave();
	return live;
}

/* lbd_reader_forget_kept: see readers.h. */
void
lbd_reader_forget_kept(struct lbd_lock *l, const struct lbd_store_hold *rec)
{
	struct lockfs_err err;
	struct lbd_hold  *r;

	TAILQ_FOREACH(r, &l->readers, reader_entry)
		if (r->kept && r->fs.owner.pid == rec->pid &&
		    r->fs.owner.start == rec->start && r->uid == rec->uid)
			return;         /* adopted */
	if ((r = reader_of_record(l, rec, &err)) == NULL) {
		log_warn("%s", err.msg);
		return;
	}
	if (!rider_has_marker_of(l, NULL, r) && reader_marked(r) &&
	    reader_marker(r, READER_UNMARK, &err) != 0)
		log_info("%s: %s (left, naming pid %ld)", l->path, err.msg,
		    (long)rec->pid);
	lbd_hold_free(r);
}

/* lbd_reader_join: see readers.h. */
int
lbd_reader_join(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid, uint64_t id, struct lockfs_err *err)
{
	struct lbd_hold *r;
	int              rc;

	if ((rc = reader_add(l, c, kept_pid, tid, 1, &r, err)) != 0)
		return rc;
	/* Owed as the artefact's grant; a kept rider's until it is
	 * recorded too (the same commit). */
	lbd_grant_reply(r->kept ? r : l->holder, c, id);
	return 0;
}

/* lbd_reader_rejoin: see readers.h. */
int
lbd_reader_rejoin(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
    uint64_t token)
{
	struct lockfs_err err;
	struct lbd_hold  *h = l->holder, *r;
	struct lbd       *d = l->d;
	unsigned          method = l->method;
	char              path[PATH_MAX];

	/* Only a previous run's rider (the hold's token the previous
	 * run's, h->previous: granted before this start), only while that run's
	 * holds are judged: in this run a reader joins by ACQUIRE, behind
	 * the writers queued before it, never by a marker its user made. */
	if (h == NULL || !h->shared || h->token != token || h->releasing ||
	    !in_grace(d) || !h->previous ||
	    (h->conn == c && h->tid == tid) ||
	    lbd_reader_find(l, c, tid) != NULL ||
	    l->nreaders >= l->d->cfg.limits.readers_per_lock)
		return -1;
	if (c->uid_conns == NULL ||
	    c->uid_conns->nlocks >= d->cfg.limits.locks_per_uid) {
		log_info("%s: pid %ld asks for its shared hold of the "
		    "previous run back: refused (locks_per_uid)", l->path,
		    (long)c->pid);
		return -1;
	}
	if (reader_add(l, c, 0, tid, 0, &r, &err) != 0) {
		log_info("%s: pid %ld asks for its shared hold of the "
		    "previous run back: refused (%s)", l->path, (long)c->pid,
		    err.msg);
		return -1;
	}
	log_info("%s: pid %ld reads on beside pid %ld (reclaimed, its "
	    "marker there)", l->path, (long)c->pid, (long)h->fs.owner.pid);
	lbd_waits_recheck(c, tid);      /* a cycle it closes, if it waits */
	if (!h->for_readers)
		return 0;
	/* Held for it: handed to it now (l may go: found again). */
	snprintf(path, sizeof(path), "%s", l->path);
	if (lbd_hold_end(l, &err) < 0)
		log_info("%s", err.msg);
	l = lbd_lock_find(d, path, method);
	return l != NULL && l->holder != NULL && l->holder->conn == c &&
	    l->holder->tid == tid ? 0 : -1;
}

/* lbd_readers_unclaimed: see readers.h. */
int
lbd_readers_unclaimed(struct lbd_lock *l)
{
	struct lbd_hold *h = l->holder;

	/* Only a previous run's hold (its token the previous run's)
	 * can have a previous run's rider. */
	if (h == NULL || !h->shared || l->nreaders != 0 || !in_grace(l->d) ||
	    !h->previous)
		return 0;
	return riders_to_come(l, h);
}

/* Removes the readers' sign beside the lock file of l's artefact's hold
 * h, no rider left (sign_may_go), as h's user; a step that fails is
 * logged (left behind, a sign keeps no lock). */
static void
hold_unsign(struct lbd_lock *l, struct lbd_hold *h)
{
	struct lockfs_err err;
	int               made, rc = -1;

	/* Credentials first: a step owed on h (a handoff's last) is taken
	 * then, before its names are looked at here. */
	if (lbd_creds_enter(h->creds, &err) != 0)
		return;
	made = h->fs.lock_file == NULL;
	if (lockfs_names_make(&h->fs) == 0)
		rc = lockfs_readers_unsign(&h->fs, &err);
	if (made)
		lockfs_names_drop(&h->fs);      /* only those made here */
	lbd_creds_leave();
	if (rc > 0)
		log_info("%s: %s (left: its judges look for markers)",
		    l->path, err.msg);
}

/* lbd_hold_marker_drop: see readers.h.  Kept while a rider of l has the
 * same marker (the same process and thread, over another connection). */
void
lbd_hold_marker_drop(struct lbd_lock *l, struct lbd_hold *h)
{
	struct lockfs_err err;
	int               made;

	if (!h->shared || rider_has_marker_of(l, NULL, h))
		return;
	/* Credentials first: a step owed on h (a handoff's last) is taken
	 * then, before its names are looked at here. */
	if (lbd_creds_enter(h->creds, &err) != 0)
		return;
	made = h->fs.lock_file == NULL;
	if (lockfs_names_make(&h->fs) == 0 &&
	    lockfs_reader_unmark(&h->fs, &h->fs.owner, &err) != 0)
		log_info("%s: %s (left, naming pid %ld)", l->path, err.msg,
		    (long)h->fs.owner.pid);
	if (made)
		lockfs_names_drop(&h->fs);      /* only those made here */
	lbd_creds_leave();
}

/* lbd_readers_grace_over: see readers.h.  A previous run's shared hold
 * with no rider loses its readers' sign: no rider can reclaim now. */
void
lbd_readers_grace_over(struct lbd *d)
{
	struct lbd_lock *l;
	struct lbd_wait *w;
	size_t           i;

	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = l->hash_next) {
			awaited_end(l, 1);
			if (l->holder != NULL && l->holder->shared &&
			    sign_may_go(l))
				hold_unsign(l, l->holder);
			if ((w = TAILQ_FIRST(&l->waiters)) != NULL &&
			    w->upgrade)
				lbd_readers_serve(l);
		}
}

/* lbd_reader_keep_for_readers: see readers.h. */
int
lbd_reader_keep_for_readers(struct lbd_lock *l, struct lbd_hold *h)
{
	int live;

	if (!h->shared || h->for_readers || h->releasing ||
	    l->nreaders != 0 || !in_grace(l->d) ||
	    !h->previous)                       /* of this run */
		return 0;
	/* Its own marker, if one lies there, is none of a reader's (left
	 * by a grant to a rider or a rider's join that a killed daemon did
	 * not finish): never counted as one that may still come.  (Only
	 * here, before the look: any other end of the hold drops it in
	 * lbd_hold_end.) */
	lbd_hold_marker_drop(l, h);
	live = riders_to_come(l, h);    /* -1, cannot tell: kept */
	if (live == 0) {
		hold_unsign(l, h);      /* no reader to come: released */
		return 0;       /* -1, cannot tell: never "no reader" */
	}
	if (h->conn != NULL) {          /* else an orphan already */
		/* Its owner holds it no more: its UPGRADE ends with it. */
		lbd_upgrade_drop(l, h->conn, h->tid, LBP_ECANCELED, "its "
		    "shared hold was released");
		LIST_REMOVE(h, conn_entry);
		h->conn->nholds--;
		h->conn = NULL;
		LIST_INSERT_HEAD(&l->d->orphans, h, conn_entry);
	}
	if (h->kept) {          /* its process is done with it */
		h->kept = 0;
		lbd_orphan_unwatch(h);
	}
	h->for_readers = 1;
	log_info("%s: pid %ld's shared hold ends while readers of the "
	    "previous run have not reclaimed yet (their markers lie beside "
	    "it): held for them until one does, or the grace period ends",
	    l->path, (long)h->fs.owner.pid);
	return 1;
}

/* lbd_reader_next: see readers.h.  Riders are listed oldest first: the
 * newest is their last. */
struct lbd_hold *
lbd_reader_next(struct lbd_lock *l)
{
	struct lbd_wait *w = TAILQ_FIRST(&l->waiters);
	struct lbd_hold *r;

	if (l->nkept > 0)
		TAILQ_FOREACH_REVERSE(r, &l->readers, lbd_riders,
		    reader_entry)
			if (r->kept)
				return r;

	if (w != NULL && w->upgrade &&
	    (r = lbd_reader_find(l, w->conn, w->tid)) != NULL)
		return r;
	return TAILQ_LAST(&l->readers, lbd_riders);
}

/* Takes rider r out of its lock and connection, removes its trace on
 * disk (reader_trace_drop) and frees it. */
static void
reader_free(struct lbd_hold *r)
{
	TAILQ_REMOVE(&r->lock->readers, r, reader_entry);
	r->lock->nreaders--;
	reader_trace_drop(r);
	reader_unlist(r, 0);
	lbd_hold_free(r);
}

/* Takes rider r, out of its lock's riders already, out of its
 * connection's (or, kept, out of d->kept_riders: its owed OK paid, its
 * record forgotten unless keep_record, as when the daemon stops). */
static void
reader_unlist(struct lbd_hold *r, int keep_record)
{
	LIST_REMOVE(r, conn_entry);
	if (!r->kept) {
		r->conn->nreaders--;
		return;
	}
	r->lock->nkept--;
	lbd_hold_pay(r);
	if (!keep_record)
		lbd_store_rider(r->lock->d, r, 0);
}

/* lbd_upgrade_drop: see readers.h.  c NULL: whoever's. */
void
lbd_upgrade_drop(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
    enum lbp_error code, const char *why)
{
	struct lbd_wait *w = TAILQ_FIRST(&l->waiters);

	if (w == NULL || !w->upgrade || (c != NULL && (w->conn != c ||
	    w->tid != tid)))
		return;
	lbd_conn_error(w->conn, w->id, code, "UPGRADE of %s: %s", l->path,
	    why);
	lbd_wait_remove(w);
}

/* lbd_reader_end: see readers.h. */
void
lbd_reader_end(struct lbd_hold *r)
{
	if (r->conn != NULL)    /* (a kept rider has none: NULL is anyone's) */
		lbd_upgrade_drop(r->lock, r->conn, r->tid, LBP_ECANCELED,
		    "its shared hold was released");
	reader_free(r);
}

/* lbd_reader_lost: see readers.h. */
void
lbd_reader_lost(struct lbd_hold *r, const char *why)
{
	struct lbd_lock *l = r->lock;

	log_info("%s: pid %ld lost its shared hold%s: %s", l->path,
	    (long)r->fs.owner.pid, r->kept ? " (kept for it)" : "", why);
	if (r->conn != NULL)
		lbd_lost_send(r, why);
	lbd_reader_end(r);
}

/* lbd_lost_send: see readers.h. */
void
lbd_lost_send(struct lbd_hold *r, const char *why)
{
	struct lbd_lock *l = r->lock;
	struct lbp_out   o;
	int              i;

	if (r->conn->version < 2)
		return;         /* LOST is version 2's */

	for (i = 0; i < 2; i++) {       /* the reason cut when too long */
		lbp_begin(&o, LBP_MSG_LOST, 0, 0);
		lbp_add_str(&o, "path", l->path);
		lbp_add_str(&o, "method", lockfs_method_name(l->method));
		if (r->tid != 0)
			lbp_add_u64(&o, "thread", (uint64_t)r->tid);
		if (i == 0)
			lbp_add_str(&o, "message", why);
		if (lbp_end(&o) == 0) {
			lbd_conn_send(r->conn, &o);
			break;
		}
	}
}

/* lbd_readers_artefact_lost: see readers.h. */
void
lbd_readers_artefact_lost(struct lbd_lock *l, const char *why)
{
	struct lbd_hold *h = l->holder;

	log_info("%s: pid %ld's shared hold ends: %s", l->path,
	    (long)h->fs.owner.pid, why);
	if (h->conn != NULL)
		lbd_lost_send(h, why);
	lbd_hold_free(lbd_hold_uninstall(l));
	lbd_readers_lost(l);
}

/* lbd_reader_handed: see readers.h. */
void
lbd_reader_handed(struct lbd_hold *r)
{
	reader_free(r);
}

/* lbd_readers_detach: see readers.h. */
void
lbd_readers_detach(struct lbd_lock *l)
{
	struct lbd_hold *r;

	lbd_upgrade_drop(l, NULL, 0, LBP_ESHUTDOWN, "the daemon is "
	    "stopping");
	while ((r = TAILQ_FIRST(&l->readers)) != NULL) {
		TAILQ_REMOVE(&l->readers, r, reader_entry);
		l->nreaders--;
		reader_unlist(r, 1);
		lbd_hold_free(r);       /* its marker (and record) stays */
	}
}

/* lbd_conn_readers_detach: see readers.h. */
void
lbd_conn_readers_detach(struct lbd_conn *c)
{
	struct lbd_hold *r;

	while ((r = LIST_FIRST(&c->readers)) != NULL) {
		lbd_upgrade_drop(r->lock, c, r->tid, LBP_ESHUTDOWN,
		    "the daemon is stopping");
		TAILQ_REMOVE(&r->lock->readers, r, reader_entry);
		r->lock->nreaders--;
		LIST_REMOVE(r, conn_entry);
		c->nreaders--;
		lbd_hold_free(r);       /* its marker stays */
	}
}

/* lbd_readers_lost: see readers.h. */
void
lbd_readers_lost(struct lbd_lock *l)
{
	struct lbd_hold *r;

	lbd_upgrade_drop(l, NULL, 0, LBP_ENOTLOCKED, "the lock was lost "
	    "while it waited");
	while ((r = TAILQ_FIRST(&l->readers)) != NULL)
		lbd_reader_lost(r, "the lock's artefact went with its "
		    "reader's hold");
}

/* lbd_readers_serve: see readers.h. */
void
lbd_readers_serve(struct lbd_lock *l)
{
	struct lockfs_err err;
	struct lbd_hold  *h = l->holder;
	struct lbd_wait  *w;
	struct lbd_conn  *c;
	pid_t             tid;
	int               rc;

	if (!holder_serves(h))
		return;
	if ((w = TAILQ_FIRST(&l->waiters)) != NULL && w->upgrade) {
		if (l->nreaders == 0 && h->conn == w->conn &&
		    h->tid == w->tid && !lbd_readers_unclaimed(l)) {
			lbd_hold_mode(h, 0);
			lbd_grant_reply(h, w->conn, w->id);
			lbd_wait_remove(w);
		}
		return;
	}
	/* Past readers_per_lock, the head waits for a reader to go: a
	 * waiter that reached the head is never refused in place of a
	 * grant. */
	while ((w = TAILQ_FIRST(&l->waiters)) != NULL && w->shared) {
		/* An owner that holds the lock already (its earlier shared
		 * request granted in this turn) is granted re-entrantly: it
		 * never rides on its own hold. */
		if (!lbd_wait_current(w))
			lbd_conn_error(w->conn, w->id, LBP_EFAILED, "process "
			    "%ld exited while its ACQUIRE of %s waited",
			    (long)w->kept_pid, l->path);
		else if (lbd_hold_find(l, w->conn, w->kept_pid, w->tid) !=
		    NULL || lbd_reader_of(l, w->conn, w->kept_pid, w->tid) !=
		    NULL)
			lbd_grant_reply(h, w->conn, w->id);
		else if (l->nreaders >= l->d->cfg.limits.readers_per_lock ||
		    lbd_cohort_gate(l, &err) != 0)
			break;  /* (a cluster lock: its key's bound) */
		else if ((rc = lbd_reader_join(l, w->conn, w->kept_pid,
		    w->tid, w->id, &err)) == 0) {
			/* Its owner's other waits for l: answered now. */
			lbd_cohort_handed(l);
			c = w->conn;
			tid = w->tid;
			rc = w->kept_pid != 0;
			lbd_wait_remove(w);
			if (!rc)
				lbd_lock_own_waits(l, c, tid);
			continue;
		} else if (rc == LBD_JOIN_BUSY) {
			/* The directory's lock is another process's now: w
			 * waits on at the head (its timeout runs), and l is
			 * looked at again (polled, its directory watched). */
			lbd_lock_watch(l, w->conn);
			return;
		} else if (rc == LB_ENOTLOCKED) {
			/* Its artefact is not its reader's any more: that
			 * hold ends, w waits on, l watched (never freed
			 * here: w is queued). */
			lbd_readers_artefact_lost(l, err.msg);
			lbd_lock_watch(l, w->conn);
			return;
		} else if (rc != 0)
			lbd_conn_error(w->conn, w->id, LBP_EFAILED, "%s",
			    err.msg);
		lbd_wait_remove(w);
	}
}

/* An owner whose shared request waits for room (bound_owners). */
struct bound_owner {
	struct lbd_conn *c;
	pid_t            tid;
};

/* The owners of the shared requests at the head of the queues of the
 * locks whose readers serve them (each once per lock), in *out (count
 * *n; NULL when there is none): 0, or -1 when out of memory. */
static int
bound_owners(struct lbd *d, struct bound_owner **out, size_t *n)
{
	struct bound_owner *grown;
	struct lbd_lock    *l;
	struct lbd_wait    *w;
	size_t              i, size = 0;

	*out = NULL;
	*n = 0;
	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = l->hash_next) {
			if (!holder_serves(l->holder))
				continue;
			for (w = TAILQ_FIRST(&l->waiters); w != NULL &&
			    w->shared && !w->upgrade;
			    w = TAILQ_NEXT(w, lock_entry)) {
				if (w->kept_pid != 0)
					continue;
				if (*n == size) {
					size = size != 0 ? size * 2 : 16;
					if ((grown = realloc(*out, size *
					    sizeof(**out))) == NULL)
						return -1;
					*out = grown;
				}
				(*out)[*n].c = w->conn;
				(*out)[(*n)++].tid = w->tid;
			}
		}
	return 0;
}

/* The locks whose readers serve a shared request at the head of their
 * queue, in *out (count *n). */
static int
bound_locks(struct lbd *d, struct lbd_lock ***out, size_t *n)
{
	struct lbd_lock **grown, *l;
	struct lbd_wait  *w;
	size_t            i, size = 0;

	*out = NULL;
	*n = 0;
	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = l->hash_next) {
			w = TAILQ_FIRST(&l->waiters);
			if (w == NULL || !w->shared || w->upgrade ||
			    !holder_serves(l->holder))
				continue;
			if (*n == size) {
				size = size != 0 ? size * 2 : 16;
				if ((grown = realloc(*out, size *
				    sizeof(**out))) == NULL)
					return -1;
				*out = grown;
			}
			(*out)[(*n)++] = l;
		}
	return 0;
}

/* lbd_readers_bound_changed: see readers.h.  What it walks is gathered
 * first: serving a lock and refusing a wait change the table and the
 * queues it walks. */
void
lbd_readers_bound_changed(struct lbd *d, unsigned old)
{
	struct bound_owner *o = NULL;
	struct lbd_lock   **ls = NULL;
	size_t              i, n = 0;
	unsigned            now = d->cfg.limits.readers_per_lock;

	if (now > old) {
		if (bound_locks(d, &ls, &n) != 0)
			log_err("reload: out of memory: readers waiting for "
			    "room are served at the next change of their "
			    "locks");
		for (i = 0; i < n; i++)
			ls[i]->serving++;       /* each stays meanwhile */
		for (i = 0; i < n; i++)
			lbd_readers_serve(ls[i]);
		for (i = 0; i < n; i++) {
			ls[i]->serving--;
			lbd_lock_put(ls[i]);
		}
	} else if (now < old) {
		if (bound_owners(d, &o, &n) != 0)
			log_err("reload: out of memory: the waits for room "
			    "are not searched for cycles again");
		for (i = 0; i < n; i++)
			lbd_waits_recheck(o[i].c, o[i].tid);
	}
	free(ls);
	free(o);
}

/* lbd_conn_readers_drop: see readers.h. */
void
lbd_conn_readers_drop(struct lbd_conn *c)
{
	struct lbd_hold *r;
	struct lbd_lock *l;

	while ((r = LIST_FIRST(&c->readers)) != NULL) {
		l = r->lock;
		lbd_reader_end(r);
		lbd_readers_serve(l);
	}
}

/*
 * The lock of path (method) as (c, tid) holds it: *hp its artefact's
 * hold, or *rp its rider.  The lock, or NULL with the error replied
 * (EPERM: c may not look at the lock's artefact, whether it is held or
 * not, as RELEASE and STATUS answer; ENOTLOCKED: not held; ENOTMINE: not
 * by this owner).
 */
static struct lbd_lock *
owned_lock(struct lbd_conn *c, uint64_t id, const char *path,
    unsigned method, pid_t tid, struct lbd_hold **hp, struct lbd_hold **rp)
{
	struct lbd_lock   *l = lbd_lock_find(c->d, path, method);
	struct lockfs_lock fs;
	struct lockfs_err  err;
	int                may;

	*hp = *rp = NULL;
	if (l != NULL && (*hp = lbd_hold_find(l, c, 0, tid)) == NULL)
		*rp = lbd_reader_find(l, c, tid);
	if (*hp != NULL || *rp != NULL)
		return l;
	/* Not the requester's: nothing of the lock shows where it may
	 * not look (not whether it is held). */
	if (lockfs_init(&fs, path, method, 0, &err) != 0) {
		lbd_conn_error(c, id, lbp_from_lb(err.code), "%s", err.msg);
		return NULL;
	}
	may = lbd_creds_may_look(c->creds, fs.lock_file, &err);
	lockfs_fini(&fs);
	if (!may)
		lbd_conn_error(c, id, LBP_EPERM, "%s", err.msg);
	else if (l != NULL && l->holder != NULL)
		lbd_conn_error(c, id, LBP_ENOTMINE, "%s is locked, but not by "
		    "you", path);
	else
		lbd_conn_error(c, id, LBP_ENOTLOCKED, "you hold no lock of %s",
		    path);
	return NULL;
}

/* lbd_upgrade: see readers.h. */
int
lbd_upgrade(struct lbd_conn *c, uint64_t id, const char *path,
    unsigned method, pid_t tid, double timeout)
{
	struct lbd_hold *h, *r;
	struct lbd_lock *l;
	struct lbd_wait *w;

	if ((l = owned_lock(c, id, path, method, tid, &h, &r)) == NULL)
		return 0;
	if (h != NULL && (!h->shared || (l->nreaders == 0 &&
	    !lbd_readers_unclaimed(l)))) {
		lbd_hold_mode(h, 0);    /* the only holder: at once */
		lbd_grant_reply(h, c, id);
		return 0;
	}
	if (!(timeout > 0)) {
		lbd_conn_error(c, id, LBP_EALREADY, "%s is held shared by "
		    "%u others%s", path, l->nreaders, l->nreaders == 0 ?
		    " and readers of the previous run not reclaimed yet "
		    "(their markers beside it)" : "");
		return 0;
	}
	if ((w = TAILQ_FIRST(&l->waiters)) != NULL && w->upgrade &&
	    w->conn == c && w->tid == tid) {
		lbd_conn_error(c, id, LBP_EFAILED, "an UPGRADE of %s by this "
		    "owner waits already", path);
		return 0;
	}
	if (w != NULL && w->upgrade) {
		/* The two upgraders of one lock: each waits for the other
		 * to stop reading (deadlock.c would find it too; one
		 * UPGRADE waits at a time at the queue's head). */
		lbd_conn_error(c, id, c->version >= 2 ? LBP_EDEADLK :
		    LBP_EFAILED, "waiting for %s would deadlock: pid %ld%s%.0ld "
		    "waits for %s (to upgrade), read by pid %ld%s%.0ld; pid "
		    "%ld%s%.0ld waits for %s (to upgrade), read by pid "
		    "%ld%s%.0ld", path, (long)c->pid, tid != 0 ? " thread " :
		    "", (long)tid, path, (long)w->conn->pid, w->tid != 0 ?
		    " thread " : "", (long)w->tid, (long)w->conn->pid,
		    w->tid != 0 ? " thread " : "", (long)w->tid, path,
		    (long)c->pid, tid != 0 ? " thread " : "", (long)tid);
		return 0;
	}
	if (c->nwaits >= c->d->cfg.limits.waits_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "waits_per_conn: this "
		    "connection waits for %u locks", c->nwaits);
		return 0;
	}
	if (lbd_wait_add_mode(l, c, id, 0, tid, timeout, 1, 1) != 0)
		lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
	else    /* at the head: a cycle it closes fails it at once */
		(void)lbd_wait_deadlocked(TAILQ_FIRST(&l->waiters));
	return 0;
}

/* lbd_downgrade: see readers.h. */
int
lbd_downgrade(struct lbd_conn *c, uint64_t id, const char *path,
    unsigned method, pid_t tid, double by)
{
	struct lbd_hold *h, *r;
	struct lbd_lock *l;

	if ((l = owned_lock(c, id, path, method, tid, &h, &r)) == NULL)
		return 0;
	if (h == NULL) {
		lbd_grant_reply(l->holder, c, id);      /* a rider: shared */
		return 0;
	}
	if (method == LB_SQLITE) {
		lbd_conn_error(c, id, LBP_EINVAL, "%s: shared locks are not "
		    "there yet for the sqlite method", path);
		return 0;
	}
	if (!h->shared && lockfs_now() >= by) {
		/* Its client gave up on it, and told its owner that it
		 * writes alone still: so it does. */
		lbd_conn_error(c, id, LBP_ETIMEOUT, "the DOWNGRADE of %s was "
		    "read after its client stopped waiting for it: not done, "
		    "the hold is exclusive", path);
		return 0;
	}
	lbd_hold_mode(h, 1);
	lbd_grant_reply(h, c, id);
	lbd_readers_serve(l);   /* the readers at the head, with it */
	return 0;
}
