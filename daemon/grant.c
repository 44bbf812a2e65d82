/*
 * grant.c: granting, queueing, handing over and releasing locks: the lock
 * state machine.  A lock in the table is in one of these states (holder:
 * l->holder; waiters: l->waiters, FIFO):
 *
 *                     ACQUIRE, artefact made
 *        FREE --------------------------------> HELD
 *         ^  \                                 |  ^   ACQUIRE by another:
 *         |   \ ACQUIRE, artefact made by       |  |   queued (timeout > 0)
 *         |    \ someone outside the broker     |  |   or EALREADY
 *         |     v                               |  |
 *         |   FOREIGN (waiters; watching the    |  | RELEASE / holder's
 *         |   directory, polling as a safety    |  | connection closes,
 *         |   net) --- artefact gone: head -----+  | waiters: the head waiter
 *         |            waiter's made ---------->   | gets it, the artefact
 *         |                                        | replaced atomically
 *         +---- RELEASE / close, no waiters -------+ (never absent)
 *         |                                        |
 *         |           RELEASE / close / handoff,   | (sqlite only)
 *         |           database busy                v
 *         +---- row removed ---------------- RELEASING (no connection's;
 *                (or handed to the head         held, recorded, waiters
 *                waiter: HELD by it;            wait; queued with the
 *                BREAK: FREE)                   holder's user's other
 *                                               holds in that database,
 *                                               retried in turn as that
 *                                               user; busy again: back
 *                                               to the queue's tail)
 *
 * RELEASING: the sqlite method's row could not be removed or handed over
 * because another process keeps its database busy (any user who may read
 * it can).  The daemon does not wait for it in its loop, and does not
 * forget the hold either (the row would stay, held by nobody): the hold
 * stays the lock's holder, in d->releasing, owned by no connection (its
 * client's RELEASE was answered OK, its connection may close), and
 * releasing.c tries again, without waiting: one queue per user and
 * database, one try standing for the whole queue while the database is
 * busy (10 ms later, then twice as late each time up to 500 ms), within
 * a budget per loop iteration and a rate shared fairly by the users
 * (looks.c), so that what the retries cost does not grow with the number
 * of holds.  It counts in its user's locks_per_uid until it ends; BREAK
 * ends it as any hold.
 *
 * FREE locks leave the table (lbd_lock_put).  Every artefact operation
 * runs with the filesystem credentials of the client it is for (creds.c).
 * A grant is recorded in the state database before its reply goes out:
 * its OK is owed (struct lbd_ack) until the iteration's commit, then sent
 * (lbd_grants_settle); a grant that cannot be recorded (a full disk) is
 * refused with EINTERNAL instead and ends as a release would, so that no
 * client holds a lock a restarted daemon would not know of.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "log.h"
#include "store.h"

/* The next fencing token: generation in the high half, a counter that
 * only grows in the low half (a new generation is taken, durably, at each
 * start and when the counter would wrap). */
static uint64_t
next_token(struct lbd *d)
{
	if (++d->counter > 0xffffffffull) {
		if (lbd_store_next_generation(d) != 0)
			d->generation++;        /* in memory, at least */
		d->counter = 1;
	}
	return d->generation << 32 | d->counter;
}

/* Replies OK with the hold's token to request id on c. */
static void
reply_granted(struct lbd_conn *c, uint64_t id, const struct lbd_hold *h)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, id);
	lbp_add_u64(&o, "token", h->token);
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

/* Owes c the OK to request id for h until the state database has
 * recorded h; at once when no memory is left to wait with. */
static void
hold_owe(struct lbd_hold *h, struct lbd_conn *c, uint64_t id)
{
	struct lbd     *d = h->lock->d;
	struct lbd_ack *a;

	if ((a = malloc(sizeof(*a))) != NULL) {
		a->inuse.id = id;
		if (lbd_reqid_add(c, &a->inuse) != 0) {
			free(a);
			a = NULL;
		}
	}
	if (a == NULL) {
		log_err("%s: out of memory; granted before it is recorded",
		    h->lock->path);
		reply_granted(c, id, h);
		return;
	}
	a->hold = h;
	a->conn = c;
	a->id = id;
	a->round = d->ack_round;
	TAILQ_INSERT_TAIL(&d->acks, a, entry);
	h->acks++;
	lbd_want_flush(d);
}

/* Replies OK to c's request id for h: at once when h is recorded, else
 * once it is (a grant of this iteration, or a re-entrant ACQUIRE of
 * one). */
static void
grant_reply(struct lbd_hold *h, struct lbd_conn *c, uint64_t id)
{
	if (h->unsettled || h->acks > 0)
		hold_owe(h, c, id);
	else
		reply_granted(c, id, h);
}

/* h ends before its record was settled (released, broken, its connection
 * closed in the same iteration): its owed OKs go out now, ahead of what
 * ends it. */
static void
hold_pay(struct lbd_hold *h)
{
	struct lbd_ack *a, *next;
	struct lbd     *d = h->lock->d;

	for (a = TAILQ_FIRST(&d->acks); a != NULL && h->acks > 0; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (a->hold != h)
			continue;
		TAILQ_REMOVE(&d->acks, a, entry);
		lbd_reqid_del(a->conn, &a->inuse);
		h->acks--;
		reply_granted(a->conn, a->id, h);
		free(a);
	}
	h->unsettled = 0;
}

/*
 * lbd_acks_forget: c closes: the OKs still owed to it (for holds that
 * outlive it: kept holds) are owed to nobody now.  Their holds stay, and
 * are recorded with the next commit that succeeds.
 */
void
lbd_acks_forget(struct lbd_conn *c)
{
	struct lbd_ack *a, *next;

	for (a = TAILQ_FIRST(&c->d->acks); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (a->conn != c)
			continue;
		TAILQ_REMOVE(&c->d->acks, a, entry);
		lbd_reqid_del(c, &a->inuse);
		a->hold->acks--;
		free(a);
	}
}

/*
 * lbd_grants_settle: the iteration's commit has recorded every grant it
 * owes replies for (recorded), or has failed for the reason why.  Sends
 * the owed OKs; or refuses each such grant (ERR EINTERNAL naming the
 * state database and why) and ends its hold, which hands the lock to the
 * next waiter (owed again, until the next settle) or removes its
 * artefact.  Grants made while settling are left for the next settle.
 */
void
lbd_grants_settle(struct lbd *d, int recorded, const char *why)
{
	struct lockfs_err err;
	struct lbd_ack   *a;
	struct lbd_hold  *h;
	struct lbd_conn  *c;
	char              path[PATH_MAX];
	uint64_t          id;
	unsigned          round = ++d->ack_round;

	while ((a = TAILQ_FIRST(&d->acks)) != NULL && a->round != round) {
		TAILQ_REMOVE(&d->acks, a, entry);
		h = a->hold;
		c = a->conn;
		id = a->id;
		lbd_reqid_del(c, &a->inuse);
		free(a);
		if (--h->acks == 0)
			h->unsettled = 0;
		if (recorded) {
			reply_granted(c, id, h);
			continue;
		}
		snprintf(path, sizeof(path), "%s", h->lock->path);
		if (h->acks == 0) {
			log_err("%s: grant to pid %ld refused: the state "
			    "database cannot record it: %s", path,
			    (long)h->fs.owner.pid, why);
			if (lbd_hold_end(h->lock, &err) < 0)    /* h is gone */
				log_info("%s", err.msg);
		}
		lbd_conn_error(c, id, LBP_EINTERNAL, "%s is not granted: the "
		    "state database cannot record it: %s", path, why);
	}
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
		o.uid = c->uid; /* its artefacts are made as c's user */
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

/* Frees a timer handle once libuv is done with it. */
static void
timer_free(uv_handle_t *h)
{
	free(h);
}

/* Frees a hold that is not (or no longer) installed. */
static void
hold_free(struct lbd_hold *h)
{
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
 * credentials on, right after its artefact was made. */
static void
hold_note_dir(struct lbd_hold *h)
{
	struct stat st;
	int         r = stat(h->fs.dir, &st);

	h->dir_dev = r == 0 ? st.st_dev : 0;
	h->dir_ino = r == 0 ? st.st_ino : 0;
}

/* Installs h as l's holder: token, time, the connection's list (a kept
 * hold: no connection's, and its process watched), the state database,
 * where it is not known to be until the iteration's settle (grant_reply
 * owes its OKs till then). */
static void
hold_install(struct lbd_lock *l, struct lbd_hold *h)
{
	h->token = next_token(l->d);
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

/* Uninstalls l's holder (the artefact is the caller's business). */
static struct lbd_hold *
hold_uninstall(struct lbd_lock *l)
{
	struct lbd_hold *h = l->holder;

	hold_pay(h);
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
 * read the database can keep open).  h goes back as l's holder, releasing:
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
 * Tries to make the artefact of l for (c, tid), or kept for kept_pid, as
 * c's user.  0 with l
 * held by the new hold; LB_EALREADY when someone outside the broker holds
 * it; another code with err filled when it cannot be made.
 */
static int
lock_try(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid, pid_t tid,
    struct lockfs_err *err)
{
	struct lbd_hold *h;
	int              r;

	if ((h = hold_new(l, c, kept_pid, tid, err)) == NULL)
		return err->code;
	if ((r = lbd_creds_enter(c->creds, err)) == 0) {
		/* A pid file that is there already is never a connection's
		 * thread's: it names a process, not which of its owners
		 * (another thread may hold it in-process).  A kept hold's
		 * owner is the process itself. */
		r = l->method == LB_PIDFILE && kept_pid == 0 ?
		    lockfs_pidfile_create(&h->fs, err) :
		    lockfs_try_acquire(&h->fs, err);
		if (r != 0)
			lockfs_abandon(&h->fs);
		else
			hold_note_dir(h);
		lbd_creds_leave();
	}
	if (r == 0)
		hold_install(l, h);
	else
		hold_free(h);
	return r;
}

/*
 * Makes (c, tid) l's holder when l's artefact is already theirs although
 * the broker does not know of it: a grant of the previous daemon, which
 * died after it made the artefact and before it recorded the grant or sent
 * the reply (the requester sends its ACQUIRE again, or releases).  Such an
 * artefact blocks everyone else, so it is the requester's whatever the
 * queue.  0 with l held by the new hold (recorded, new token); -1 when
 * l's artefact is not (c, tid)'s (kept_pid's) or cannot be read, and
 * always for the pidfile method but for kept holds: its artefact cannot
 * say which thread (or whether an in-process hold of the client's) made
 * it.  Its name is not enough (names are predictable): the methods also
 * check that the artefact is a file of c's user (lockfs.h, struct
 * lockfs_owner).
 */
static int
own_artefact_adopt(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid)
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
		hold_free(h);
	return r;
}

/* Takes w out of its lock's queue and its connection's list, and frees
 * it; the lock may then leave the table (unless keep_lock). */
static void
wait_remove(struct lbd_wait *w)
{
	struct lbd_lock *l = w->lock;

	TAILQ_REMOVE(&l->waiters, w, lock_entry);
	l->nwaiters--;
	LIST_REMOVE(w, conn_entry);
	w->conn->nwaits--;
	lbd_reqid_del(w->conn, &w->inuse);
	if (w->conn->uid_conns != NULL)
		w->conn->uid_conns->nlocks--;
	if (w->timer != NULL)
		uv_close((uv_handle_t *)w->timer, timer_free);
	free(w);
}

/*
 * How long w's timer is to run (ms) to end no earlier than its deadline.
 * The loop's clock counts whole milliseconds, truncated, and is read once
 * per iteration: a timer may fire up to a millisecond (more with a coarse
 * clock) before its time on the precise one, hence the extra one here and
 * the look at the precise clock when it fires.
 */
static uint64_t
wait_ms(const struct lbd_wait *w)
{
	uint64_t now = uv_hrtime();

	if (now >= w->deadline)
		return 0;
	return (w->deadline - now + 999999) / 1000000 + 1;
}

/* A waiter's timer fired: ETIMEOUT once its deadline has passed on the
 * precise monotonic clock, else the timer runs on for the rest. */
static void
wait_expired(uv_timer_t *t)
{
	struct lbd_wait *w = t->data;
	struct lbd_lock *l = w->lock;

	if (uv_hrtime() < w->deadline) {
		uv_timer_start(t, wait_expired, wait_ms(w), 0);
		return;
	}
	lbd_conn_error(w->conn, w->id, LBP_ETIMEOUT, "timed out waiting "
	    "for %s", l->path);
	wait_remove(w);
	lbd_lock_put(l);
}

/*
 * l is held outside the broker: breaks its artefact if its holder is
 * provably dead (lockfs_break_stale), as c's user, for a requester that
 * asked so (stale=1).  1 when it broke it, else 0.
 */
static int
stale_break_as(struct lbd_lock *l, struct lbd_conn *c)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	int                r = 0;

	if (lockfs_init(&fs, l->path, l->method, 0, &err) != 0)
		return 0;
	if (lbd_creds_enter(c->creds, &err) == 0) {
		r = lockfs_break_stale(&fs, &err) == 1;
		lbd_creds_leave();
	}
	if (r)
		log_info("%s: broke the lock of a holder that is gone, for "
		    "pid %ld (stale=1)", l->path, (long)c->pid);
	lockfs_fini(&fs);
	return r;
}

/* The same for the first of l's waiters that asked for it, if any. */
static int
break_stale_for(struct lbd_lock *l)
{
	struct lbd_wait *w;

	TAILQ_FOREACH(w, &l->waiters, lock_entry)
		if (w->stale)
			return stale_break_as(l, w->conn);
	return 0;
}

/*
 * lbd_lock_serve: serves l's waiters while the lock is not held by a
 * broker client: the head waiter gets it when its artefact can be made; a
 * waiter whose artefact cannot be made at all gets the error and the next
 * one is tried; while someone outside holds it, the lock is watched (and a
 * provably dead holder's artefact broken, if a waiter asked for that).
 * l may be freed on return.
 */
void
lbd_lock_serve(struct lbd_lock *l)
{
	struct lockfs_err err;
	struct lbd_wait  *w;
	int               r = 0;

	while (l->holder == NULL && (w = TAILQ_FIRST(&l->waiters)) != NULL) {
		r = lock_try(l, w->conn, w->kept_pid, w->tid, &err);
		if (r == LB_EALREADY && break_stale_for(l))
			r = lock_try(l, w->conn, w->kept_pid, w->tid, &err);
		if (r == LB_EALREADY)
			break;
		if (r == 0)
			grant_reply(l->holder, w->conn, w->id);
		else
			lbd_conn_error(w->conn, w->id, LBP_EFAILED, "%s",
			    err.msg);
		wait_remove(w);
	}
	if (r == LB_EALREADY)
		lbd_lock_watch(l, w->conn);
	else
		lbd_lock_unwatch(l);
	lbd_lock_put(l);
}

/*
 * lbd_hold_find: l's hold by (c, tid), or, when kept_pid is not 0, l's
 * hold kept for that process, if c may act for it (root, or the hold's
 * user); or NULL.
 */
struct lbd_hold *
lbd_hold_find(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
    pid_t tid)
{
	struct lbd_hold *h = l->holder;

	if (h == NULL || h->releasing)
		return NULL;
	if (kept_pid != 0)
		return h->kept && h->fs.owner.pid == kept_pid &&
		    (c->uid == 0 || c->uid == h->uid) ? h : NULL;
	return h->conn == c && h->tid == tid ? h : NULL;
}

/*
 * lbd_acquire: the ACQUIRE request id of (c, tid) for path with method
 * and timeout; with kept_pid not 0, for a hold kept for that process (see
 * lbd_hold; the caller checked that c may ask for it).  Replies now (granted, or an error) or queues the request
 * and replies when it is granted, times out, is canceled, or the daemon
 * stops.  Returns 0 when it replied or queued; otherwise an LBP_E* code
 * the caller replies with (err-less: limits and bad paths are reported
 * here already).
 */
int
lbd_acquire(struct lbd_conn *c, uint64_t id, const char *path,
    unsigned method, pid_t kept_pid, pid_t tid, double timeout, int stale)
{
	struct lbd       *d = c->d;
	struct lockfs_err   err;
	struct lbd_lock    *l;
	struct lbd_wait    *w;
	char                file[PATH_MAX];
	int                 r;

	if ((l = lbd_lock_get(d, path, method, &err)) == NULL) {
		lbd_conn_error(c, id, err.code == LB_EINVAL ? LBP_EINVAL :
		    LBP_EINTERNAL, "%s", err.msg);
		return 0;
	}
	if (lbd_hold_find(l, c, kept_pid, tid) != NULL ||
	    (kept_pid == 0 && lbd_orphan_adopt(c, l, tid) == 0)) {
		/* Re-entrant; or granted by the previous daemon, which died
		 * before its reply went out. */
		grant_reply(l->holder, c, id);
		goto out;
	}
	/* Holds and waits alike: each wait may be granted later, and
	 * refusing it then would cost its place in the queue. */
	if (c->nholds + c->nwaits >= d->cfg.limits.holds_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "holds_per_conn: this "
		    "connection holds %u locks and waits for %u", c->nholds,
		    c->nwaits);
		goto out;
	}
	if (c->uid_conns == NULL ||
	    c->uid_conns->nlocks >= d->cfg.limits.locks_per_uid) {
		lbd_conn_error(c, id, LBP_ELIMIT, "locks_per_uid: uid %ld "
		    "holds or waits for %u locks", (long)c->uid,
		    c->uid_conns != NULL ? c->uid_conns->nlocks : 0);
		goto out;
	}
	/* Where c may not look, every answer is the same "cannot look at
	 * it": whether the lock is held must not show.  A free lock's try
	 * (as c) that grants or finds it held (EALREADY) has looked as c
	 * already; any other answer is checked.  (The limits above do not
	 * depend on the lock.) */
	if ((l->holder != NULL || !TAILQ_EMPTY(&l->waiters)) &&
	    !lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err)) {
		lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
		goto out;
	}
	if (l->holder == NULL && TAILQ_EMPTY(&l->waiters)) {
		r = lock_try(l, c, kept_pid, tid, &err);
		if (r == LB_EALREADY && stale &&
		    stale_break_as(l, c) == 1)
			r = lock_try(l, c, kept_pid, tid, &err);
		if (r == 0) {
			grant_reply(l->holder, c, id);
			goto out;
		}
		if (r != LB_EALREADY) {
			lbd_creds_may_look(c->creds, lbd_lock_file(l, file),
			    &err);
			lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
			goto out;
		}
	}
	if (own_artefact_adopt(l, c, kept_pid, tid) == 0) {
		grant_reply(l->holder, c, id);
		goto out;
	}
	if (!(timeout > 0)) {
		lbd_conn_error(c, id, LBP_EALREADY, "%s is locked by another "
		    "owner", l->path);
		goto out;
	}
	if (c->nwaits >= d->cfg.limits.waits_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "waits_per_conn: this "
		    "connection waits for %u locks", c->nwaits);
		goto out;
	}
	/* A timeout too long for the clock (LBP_TIMEOUT_FOREVER) is
	 * forever; a finite one ends at its deadline, never before: a wait
	 * whose timer cannot be had is refused, never left without one. */
	if ((w = calloc(1, sizeof(*w))) != NULL &&
	    timeout < LBP_TIMEOUT_FOREVER &&
	    (w->timer = malloc(sizeof(*w->timer))) == NULL) {
		free(w);
		w = NULL;
	}
	if (w != NULL) {
		w->inuse.id = id;
		if (lbd_reqid_add(c, &w->inuse) != 0) {
			free(w->timer);
			free(w);
			w = NULL;
		}
	}
	if (w == NULL) {
		lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
		goto out;
	}
	w->lock = l;
	w->conn = c;
	w->id = id;
	w->tid = tid;
	w->kept_pid = kept_pid;
	w->stale = stale;
	if (w->timer != NULL) {
		w->deadline = uv_hrtime() + (uint64_t)ceil(timeout * 1e9);
		uv_timer_init(d->loop, w->timer);
		w->timer->data = w;
		uv_timer_start(w->timer, wait_expired, wait_ms(w), 0);
	}
	TAILQ_INSERT_TAIL(&l->waiters, w, lock_entry);
	l->nwaiters++;
	LIST_INSERT_HEAD(&c->waits, w, conn_entry);
	c->nwaits++;
	c->uid_conns->nlocks++;
	if (l->holder == NULL)
		lbd_lock_watch(l, TAILQ_FIRST(&l->waiters)->conn);
out:
	lbd_lock_put(l);
	return 0;
}

/*
 * lbd_hold_end: ends l's hold: hands the lock to the head waiter when
 * there is one (replacing the artefact atomically; if that cannot be done,
 * releasing and letting the waiters try), else removes the artefact.  Returns the
 * result of the release as lockfs reports it (0; LB_ENOTLOCKED or
 * LB_ENOTMINE when someone broke the lock meanwhile; LB_EUNLOCK).
 */
int
lbd_hold_end(struct lbd_lock *l, struct lockfs_err *err)
{
	struct lbd_hold  *h, *next = NULL;
	struct lbd_wait  *w = TAILQ_FIRST(&l->waiters);
	struct lockfs_err herr;
	int               r = -1, named = lbd_hold_names(l->holder, err);

	h = hold_uninstall(l);
	if (named != 0) {       /* out of memory: tried again later */
		if (hold_releasing(l, h) == 0)
			return 0;
		hold_free(h);
		lbd_lock_serve(l);
		return named;
	}
	if (w != NULL &&
	    (next = hold_new(l, w->conn, w->kept_pid, w->tid, &herr)) != NULL &&
	    lbd_creds_enter(w->conn->creds, &herr) == 0) {
		if ((r = lockfs_handoff(&h->fs, &next->fs, &herr)) == 0)
			hold_note_dir(next);
		lbd_creds_leave();
	}
	if (r == 0) {
		/* The old holder's traces, removed as that holder. */
		if (lbd_creds_enter(h->creds, &herr) == 0) {
			lockfs_abandon(&h->fs);
			lbd_creds_leave();
		}
		hold_install(l, next);
		grant_reply(next, w->conn, w->id);
		wait_remove(w);
		log_debug("%s: handed from pid %ld to pid %ld", l->path,
		    (long)h->fs.owner.pid, (long)next->fs.owner.pid);
	} else {
		if (next != NULL) {
			log_debug("%s: no atomic handoff (%s); releasing",
			    l->path, herr.msg);
			hold_free(next);
		}
		if ((r = lbd_creds_enter(h->creds, err)) == 0) {
			r = lockfs_release(&h->fs, err);
			lbd_creds_leave();
		}
		lockfs_names_drop(&h->fs);
		if (r != 0 && err->sys_errno == EBUSY &&
		    hold_releasing(l, h) == 0) {
			log_debug("%s: %s; releasing it later", l->path,
			    err->msg);
			return 0;
		}
		lbd_lock_serve(l);
	}
	hold_free(h);
	return r;
}

/* lbd_hold_detach: forgets l's hold in memory only: its artefact and its
 * record stay, for its holder to reclaim from the next daemon.  l may be
 * freed on return. */
void
lbd_hold_detach(struct lbd_lock *l)
{
	struct lbd_hold *h = l->holder;

	hold_pay(h);
	l->holder = NULL;
	LIST_REMOVE(h, conn_entry);
	if (h->conn != NULL)
		h->conn->nholds--;
	hold_free(h);
	lbd_lock_put(l);
}

/* lbd_hold_forget: drops l's hold whose artefact is gone already, and
 * lets the waiters try.  l may be freed on return. */
void
lbd_hold_forget(struct lbd_lock *l)
{
	hold_free(hold_uninstall(l));
	lbd_lock_serve(l);
}

/*
 * lbd_release: RELEASE of l by (c, tid), or of its hold kept for
 * kept_pid (not 0).  0, or an LB_E* code with err
 * filled: LB_ENOTLOCKED (nobody holds it), LB_ENOTMINE (another does,
 * inside or outside the broker), LB_EUNLOCK.  l may be freed on return.
 * What is not c's is looked at with c's credentials (the caller has
 * checked that c may look at l's artefact at all).
 */
int
lbd_release(struct lbd_conn *c, struct lbd_lock *l, pid_t kept_pid,
    pid_t tid, struct lockfs_err *err)
{
	struct lockfs_lock fs;
	int                r;

	if (lbd_hold_find(l, c, kept_pid, tid) != NULL ||
	    own_artefact_adopt(l, c, kept_pid, tid) == 0)
		return lbd_hold_end(l, err);
	if (l->holder != NULL)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not by "
		    "you", l->path);
	else if ((r = lockfs_init(&fs, l->path, l->method, 0, err)) == 0) {
		if ((r = lbd_creds_enter(c->creds, err)) == 0) {
			r = lockfs_is_locked(&fs, err);
			lbd_creds_leave();
		}
		if (r == 1)
			r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked "
			    "outside the broker", l->path);
		else if (r == 0)
			r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not "
			    "locked", l->path);
		lockfs_fini(&fs);
	}
	lbd_lock_put(l);
	return r;
}

/*
 * lbd_break: BREAK of l by c: removes the artefact whoever holds it, if c
 * may (root, or the holder's user; for a lock held outside, the
 * artefact's owner).  1 when a lock was broken, 0 when none was held, or
 * an LB_E* code with err filled (a refusal is LB_EUNLOCK with sys_errno
 * EPERM).  l may be freed on return.
 */
int
lbd_break(struct lbd_conn *c, struct lbd_lock *l, struct lockfs_err *err)
{
	struct lockfs_holder fh;
	struct lockfs_lock   fs;
	struct lbd_hold     *h;
	uid_t                owner = (uid_t)-1;
	int                  r;

	if ((r = lockfs_init(&fs, l->path, l->method, 0, err)) != 0)
		goto out;
	if (l->holder != NULL) {
		owner = l->holder->uid;
		r = 1;
	} else if ((r = lbd_creds_enter(c->creds, err)) == 0) {
		r = lockfs_holder(&fs, &fh, err);
		lbd_creds_leave();
		owner = fh.uid;
	}
	if (r <= 0)
		goto out;       /* not held (0), or cannot tell */
	if (c->uid != 0 && owner != (uid_t)-1 && c->uid != owner) {
		r = lockfs_fail(err, LB_EUNLOCK, EPERM, "%s is held by uid %ld",
		    l->path, (long)owner);
		goto out;
	}
	if ((r = lbd_creds_enter(c->creds, err)) != 0)
		goto out;
	r = lockfs_break_lock(&fs, err);
	lbd_creds_leave();
	if (r != 0)
		goto out;
	if (l->holder != NULL) {
		h = hold_uninstall(l);
		log_info("%s: broken by pid %ld uid %ld; holder was pid %ld",
		    l->path, (long)c->pid, (long)c->uid,
		    (long)h->fs.owner.pid);
		hold_free(h);
	}
	r = 1;
out:
	lockfs_fini(&fs);
	lbd_lock_serve(l);      /* the waiters' turn, or l leaves */
	return r;
}

/* lbd_cancel: ends c's waiting ACQUIRE target with ECANCELED.  0, or -1
 * when c has no such waiting request. */
int
lbd_cancel(struct lbd_conn *c, uint64_t target)
{
	struct lbd_wait *w;
	struct lbd_lock *l;

	LIST_FOREACH(w, &c->waits, conn_entry)
		if (w->id == target)
			break;
	if (w == NULL)
		return -1;
	l = w->lock;
	lbd_conn_error(c, target, LBP_ECANCELED, "canceled");
	wait_remove(w);
	lbd_lock_put(l);
	return 0;
}

/*
 * lbd_conn_drop_all: c is going away: cancels its waits (silently: there
 * is nobody to tell); with keep_holds (the daemon is stopping), forgets
 * its holds but leaves their artefacts and records for the holders to
 * reclaim from the next daemon; else leaves them, held by c, for
 * lbd_conn_release_some.
 */
void
lbd_conn_drop_all(struct lbd_conn *c, int keep_holds)
{
	struct lbd_wait  *w;
	struct lbd_lock  *l;

	while ((w = LIST_FIRST(&c->waits)) != NULL) {
		l = w->lock;
		wait_remove(w);
		lbd_lock_serve(l);      /* the new head may be served now */
	}
	while (keep_holds && !LIST_EMPTY(&c->holds))
		lbd_hold_detach(LIST_FIRST(&c->holds)->lock);
}

/*
 * lbd_conn_release_some: c is closed: ends its holds, handing each to its
 * next waiter, until none is left or uv_hrtime() passes deadline (one at
 * least).  Until then they are held by c, as before it closed, so no new
 * client can take them or be told it holds them.  1 while holds are
 * left, else 0.
 */
int
lbd_conn_release_some(struct lbd_conn *c, uint64_t deadline)
{
	struct lockfs_err err;
	struct lbd_lock  *l;

	while (!LIST_EMPTY(&c->holds)) {
		l = LIST_FIRST(&c->holds)->lock;
		if (lbd_hold_end(l, &err) < 0)          /* l may be gone */
			log_info("release after pid %ld left: %s",
			    (long)c->pid, err.msg);
		if (uv_hrtime() >= deadline)
			break;
	}
	return !LIST_EMPTY(&c->holds);
}

/* lbd_locks_shutdown: the daemon stops: every waiter gets ESHUTDOWN.
 * Holds stay (their artefacts and records too), for the holders to reclaim
 * from the next daemon. */
void
lbd_locks_shutdown(struct lbd *d)
{
	struct lbd_conn *c;
	struct lbd_wait *w;
	struct lbd_lock *l;

	TAILQ_FOREACH(c, &d->conns, entry)
		while ((w = LIST_FIRST(&c->waits)) != NULL) {
			l = w->lock;
			lbd_conn_error(c, w->id, LBP_ESHUTDOWN,
			    "the daemon is stopping");
			wait_remove(w);
			lbd_lock_put(l);
		}
	/* Releasing holds stay recorded, as releasing, for the next daemon
	 * to end (reconcile.c): never its holder's again. */
	while (!LIST_EMPTY(&d->releasing))
		lbd_hold_detach(LIST_FIRST(&d->releasing)->lock);
}
