/*
 * set.c: sets, several exclusive ACQUIREs of one owner granted together
 * or not at all (docs/PROTOCOL.md, "Sets"; docs/SHARED.md, "Several locks
 * at once").  A set's members are ACQUIREs with the same set= and of=,
 * collected on their connection until the last arrives; then, drawn:
 *
 *   collecting --- a member refused (bad, named twice, a limit, a lock it
 *       |          may not look at, held by its owner already) ---> refused
 *       | the of-th member                                    (each member
 *       v                                                      answered)
 *   every lock free, nobody queued: each artefact made now ---> granted
 *       | not so (held, queued for, or one made by someone outside)
 *       v                   timeout 0: EALREADY ---------------> refused
 *   queued: one wait at the tail of each lock's queue, each an ordinary
 *   wait (the deadlock search sees them: a cycle refuses the set)
 *       | each wait at its queue's head and each lock free (lbd_set_try,
 *       | from the serving of any of them): each artefact made in one
 *       | turn, every member's OK after its one commit ------> granted
 *       | timeout, CANCEL of a member, a cycle, an artefact that cannot
 *       v be made ------------------------------------------> refused
 *
 * A set never holds one lock while it waits for another: its locks are
 * made in one turn, or those made are released before the turn ends.
 * Its waits keep their places, FIFO with single ACQUIREs: a lock whose
 * head is a set's wait is not handed on at its release (hold.c), and
 * stays free, nobody's, until the set can have every lock; a program
 * outside the broker may take it meanwhile, as any free lock (the set
 * then waits for it, its directory watched).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "deadlock.h"
#include "fs.h"
#include "hold.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "lograte.h"
#include "readers.h"
#include "reconcile.h"
#include "reply.h"
#include "set.h"
#include "wait.h"
#include "watch.h"

/* Frees s, taken out of its connection's sets; its waits are gone. */
static void
set_free(struct lbd_set *s)
{
	unsigned i;

	LIST_REMOVE(s, entry);
	if (!s->queued)
		s->conn->nset_members -= s->n;
	for (i = 0; i < s->n; i++) {
		if (s->m[i]->collecting)
			lbd_reqid_del(s->conn, &s->m[i]->inuse);
		free(s->m[i]->path);
		free(s->m[i]);
	}
	free(s->m);
	free(s);
}

/*
 * The path of the lock that keeps queued s waiting: the first whose wait
 * is not at its queue's head, or whose lock is held; else the one last
 * found held outside the broker.  NULL when none can be told.
 */
static const char *
set_blocker(const struct lbd_set *s)
{
	struct lbd_wait *w;
	unsigned         i;

	for (i = 0; i < s->n; i++)
		if ((w = s->m[i]->w) != NULL &&
		    (TAILQ_FIRST(&w->lock->waiters) != w ||
		    w->lock->holder != NULL))
			return w->lock->path;
	if (s->outside < s->n && (w = s->m[s->outside]->w) != NULL)
		return w->lock->path;
	return NULL;
}

/*
 * Ends s: every member that arrived answered code with msg and the path
 * of the lock it was refused for, culprit (lock=, when not NULL; code 0:
 * none, its connection is going), its waits removed, then each of its
 * locks but serving served (the next waiter's turn), s freed.
 */
static void
set_end(struct lbd_set *s, struct lbd_lock *serving, enum lbp_error code,
    const char *culprit, const char *msg)
{
	struct lbd_lock **locks;
	struct lbd_wait  *w;
	struct lbp_out    o;
	unsigned          i, n = 0;

	locks = calloc(s->n, sizeof(*locks));
	for (i = 0; i < s->n; i++) {
		if (code != 0) {
			lbp_error_reply_lock(&o, 1, s->m[i]->id, code, culprit,
			    msg);
			lbd_conn_send(s->conn, &o);
		}
		if ((w = s->m[i]->w) == NULL)
			continue;
		if (locks != NULL && w->lock != serving)
			locks[n++] = w->lock;
		lbd_wait_remove(w);     /* s->m[i]->w = NULL */
	}
	set_free(s);
	/* Distinct locks (a set names each once): served one by one. */
	for (i = 0; i < n; i++)
		lbd_lock_serve(locks[i]);
	free(locks);
}

/* set_end with the message fmt formats with ap.  culprit is copied
 * first: it may be a path of one of s's locks, which serving them may
 * free. */
static void
set_refusev(struct lbd_set *s, struct lbd_lock *serving, enum lbp_error code,
    const char *culprit, const char *fmt, va_list ap)
{
	char msg[LBP_LINE_MAX / 2], lock[PATH_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (culprit != NULL)
		snprintf(lock, sizeof(lock), "%s", culprit);
	set_end(s, serving, code, culprit != NULL ? lock : NULL, msg);
}

/* set_end with a formatted message (set_refusev). */
static void
set_refuse(struct lbd_set *s, struct lbd_lock *serving, enum lbp_error code,
    const char *culprit, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void
set_refuse(struct lbd_set *s, struct lbd_lock *serving, enum lbp_error code,
    const char *culprit, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_refusev(s, serving, code, culprit, fmt, ap);
	va_end(ap);
}

/* lbd_set_refuse: see set.h. */
void
lbd_set_refuse(struct lbd_wait *w, struct lbd_lock *serving,
    enum lbp_error code, const char *culprit, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_refusev(w->set, serving, code, culprit != NULL ? culprit :
	    set_blocker(w->set), fmt, ap);
	va_end(ap);
}

/* lbd_set_expired: see set.h. */
void
lbd_set_expired(struct lbd_wait *w)
{
	const char *blocker = set_blocker(w->set);

	lbd_set_refuse(w, NULL, LBP_ETIMEOUT, blocker, "timed out waiting "
	    "for %s (and the rest of its set of %u locks)", blocker != NULL ?
	    blocker : w->lock->path, w->set->n);
}

/* lbd_set_canceled: see set.h. */
void
lbd_set_canceled(struct lbd_wait *w)
{
	const char *blocker = set_blocker(w->set);

	lbd_set_refuse(w, NULL, LBP_ECANCELED, blocker, "canceled while "
	    "waiting for %s (and the rest of its set of %u locks)",
	    blocker != NULL ? blocker : w->lock->path, w->set->n);
}

/* lbd_set_wait_gone: see set.h. */
void
lbd_set_wait_gone(struct lbd_wait *w)
{
	struct lbd_set *s = w->set;
	unsigned        i;

	for (i = 0; i < s->n; i++)
		if (s->m[i]->w == w)
			s->m[i]->w = NULL;
	w->set = NULL;
}

/*
 * Releases l's hold, made in this turn for a set that cannot have all
 * its locks now (never granted: nobody was told): as any release, the
 * set's wait at the head keeping it from a handoff (hold.c), its serving
 * finding the set trying (lbd_set_try: not again).
 */
static void
set_undo(struct lbd_lock *l)
{
	struct lockfs_err err;

	if (lbd_hold_end(l, &err) < 0)
		log_info("%s: %s", l->path, err.msg);
}

/*
 * Whether l's artefact is there now (someone outside the broker holds
 * it), looked at as c's user: 1, else 0 (free, or it cannot be told:
 * the try says).
 */
static int
set_held_outside(struct lbd_lock *l, struct lbd_conn *c)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	int                r = 0;

	if (lockfs_init(&fs, l->path, l->method, 0, &err) != 0)
		return 0;
	if (lbd_creds_enter(c->creds, &err) == 0) {
		r = lockfs_is_locked(&fs, &err) == 1;
		lbd_creds_leave();
	}
	lockfs_fini(&fs);
	return r;
}

/* lbd_set_try: see set.h.  The locks held outside the broker are looked
 * for first, the one found last first of all: an artefact made and
 * released again for nothing would wake the watch of its directory,
 * which serves the set again, for ever. */
int
lbd_set_try(struct lbd_set *s, struct lbd_lock *serving)
{
	struct lockfs_err err;
	struct lbd_conn  *c = s->conn;
	struct lbd_wait  *w;
	struct lbd_lock  *l = NULL;
	char              file[PATH_MAX];
	unsigned          i, j;
	int               r = 0;

	if (s->trying || !s->queued)
		return 0;
	for (i = 0; i < s->n; i++) {
		if ((w = s->m[i]->w) == NULL)
			return 0;       /* the daemon stops: never granted */
		l = w->lock;
		if (TAILQ_FIRST(&l->waiters) != w || l->holder != NULL)
			return 0;
	}
	for (j = 0; j < s->n; j++) {
		i = s->outside < s->n ? (s->outside + j) % s->n : j;
		l = s->m[i]->w->lock;
		if (set_held_outside(l, c) && !(s->stale &&
		    lbd_lock_break_stale(l, c) == 1 &&
		    !set_held_outside(l, c))) {
			s->outside = i;
			lbd_lock_watch(l, c);   /* looked at again when it goes */
			return 0;
		}
	}
	s->trying = 1;
	for (i = 0; i < s->n; i++) {
		l = s->m[i]->w->lock;
		if ((r = lbd_lock_try_stale(l, c, s->tid, s->stale, &err)) != 0)
			break;
	}
	if (i < s->n) {
		for (j = 0; j < i; j++)
			set_undo(s->m[j]->w->lock);
		s->trying = 0;
		if (r == LB_EALREADY) {
			s->outside = i;
			lbd_lock_watch(l, c);   /* looked at again when it goes */
			return 0;
		}
		lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err);
		set_refuse(s, serving, LBP_EFAILED, l->path, "%s", err.msg);
		return -1;
	}
	for (i = 0; i < s->n; i++) {
		w = s->m[i]->w;
		l = w->lock;
		lbd_hold_mode(l->holder, 0);
		lbd_grant_reply(l->holder, c, w->id);
		lbd_lock_unwatch(l);
		lbd_wait_remove(w);
		lbd_lock_own_waits(l, c, s->tid);
	}
	log_debug("pid %ld thread %ld: a set of %u locks granted",
	    (long)c->pid, (long)s->tid, s->n);
	set_free(s);
	return 1;
}

/*
 * Where one lock file is two members' of s (their locks, got: two
 * entries of the table, as a directory reached through a symbolic link,
 * or two methods whose artefacts coincide, are one lock file, which the
 * set would take for held outside by itself for ever): the index of the
 * later one (*peer the earlier), else s->n.  The files are told
 * apart by their directory's identity (looked at as the owner, symbolic
 * links followed) and name; rows of the sqlite method by their table
 * entry (their name).
 */
static unsigned
set_same_file(const struct lbd_set *s, struct lbd_lock **locks,
    unsigned *peer)
{
	struct lockfs_fs_info fi;
	struct lockfs_lock    fs;
	struct lockfs_err     err;
	unsigned long long   *dev, *ino;
	const char          **name;
	char                **file;
	unsigned              i, j, r = s->n;

	dev = calloc(s->n, sizeof(*dev));
	ino = calloc(s->n, sizeof(*ino));
	name = calloc(s->n, sizeof(*name));
	file = calloc(s->n, sizeof(*file));
	if (dev == NULL || ino == NULL || name == NULL || file == NULL)
		goto out;               /* the table's entries only, then */
	if (lbd_creds_enter(s->conn->creds, &err) != 0)
		goto out;
	for (i = 0; i < s->n; i++) {
		if (locks[i]->method == LB_SQLITE ||
		    lockfs_init(&fs, locks[i]->path, locks[i]->method, 0,
		    &err) != 0)
			continue;
		if (lockfs_fs_info_at(LOCKFS_FS_CWD, fs.dir, LOCKFS_FS_FOLLOW,
		    &fi) == 0 && (file[i] = strdup(fs.lock_file)) != NULL) {
			dev[i] = fi.dev;
			ino[i] = fi.ino;
			name[i] = strrchr(file[i], '/') != NULL ?
			    strrchr(file[i], '/') + 1 : file[i];
		}
		lockfs_fini(&fs);
	}
	lbd_creds_leave();
	for (i = 1; i < s->n && r == s->n; i++)
		for (j = 0; j < i && name[i] != NULL; j++)
			if (name[j] != NULL && dev[j] == dev[i] &&
			    ino[j] == ino[i] && lockfs_os_names_cmp(name[j],
			    (int)strlen(name[j]), name[i],
			    (int)strlen(name[i])) == 0) {
				*peer = j;
				r = i;
				break;
			}
out:
	for (i = 0; file != NULL && i < s->n; i++)
		free(file[i]);
	free(dev);
	free(ino);
	free(name);
	free(file);
	return r;
}

/*
 * Whether s may be granted or queued at all, each lock got into locks[]
 * (lbd_lock_get): 0; or -1 with s refused (every member answered; the
 * locks got put back).  Refused: a path that names no lock, one lock
 * named twice, one its owner holds already, one it may not look at while
 * it is held or queued for, and past holds_per_conn or locks_per_uid.
 */
static int
set_check(struct lbd_set *s, struct lbd_lock **locks)
{
	struct lbd       *d = s->conn->d;
	struct lbd_conn  *c = s->conn;
	struct lockfs_err err;
	struct lbd_lock  *l;
	char              file[PATH_MAX], culprit[PATH_MAX];
	unsigned          i = 0, j, got = 0, peer = 0;
	enum lbp_error    code = LBP_EINVAL;

	err.msg[0] = '\0';
	for (i = 0; i < s->n; i++) {
		if ((l = lbd_lock_get(d, s->m[i]->path, s->m[i]->method,
		    &err)) == NULL) {
			code = err.code == LB_EINVAL ? LBP_EINVAL :
			    LBP_EINTERNAL;
			goto fail;
		}
		for (j = 0; j < got; j++)
			if (locks[j] == l) {
				snprintf(err.msg, sizeof(err.msg), "%s is named "
				    "twice in one set", l->path);
				goto fail;      /* got once, put once */
			}
		locks[got++] = l;
		if (lbd_hold_find(l, c, 0, s->tid) != NULL ||
		    lbd_reader_find(l, c, s->tid) != NULL) {
			snprintf(err.msg, sizeof(err.msg), "%s is held by this "
			    "owner already: a set takes locks it does not "
			    "hold", l->path);
			goto fail;
		}
		/* Whatever the lock's state: what a set is told must not
		 * show whether one it may not look at is held. */
		if (!lbd_creds_may_look(c->creds, lbd_lock_file(l, file),
		    &err)) {
			code = LBP_EFAILED;
			goto fail;
		}
	}
	if ((i = set_same_file(s, locks, &peer)) < s->n) {
		snprintf(err.msg, sizeof(err.msg), "one lock file named "
		    "twice in one set: %s and %s", s->m[peer]->path,
		    s->m[i]->path);
		goto fail;
	}
	if (c->nholds + c->nreaders + c->nwaits + s->n >
	    d->cfg.limits.holds_per_conn) {
		code = LBP_ELIMIT;
		snprintf(err.msg, sizeof(err.msg), "holds_per_conn: this "
		    "connection holds %u locks and waits for %u, and asks for "
		    "%u more", c->nholds + c->nreaders, c->nwaits, s->n);
		goto fail;
	}
	if (c->uid_conns == NULL ||
	    c->uid_conns->nlocks + s->n > d->cfg.limits.locks_per_uid) {
		code = LBP_ELIMIT;
		snprintf(err.msg, sizeof(err.msg), "locks_per_uid: uid %ld "
		    "holds or waits for %u locks, and asks for %u more",
		    (long)c->uid, c->uid_conns != NULL ?
		    c->uid_conns->nlocks : 0, s->n);
		goto fail;
	}
	return 0;

fail:
	snprintf(culprit, sizeof(culprit), "%s", i < s->n ? s->m[i]->path :
	    "");
	for (j = 0; j < got; j++)
		lbd_lock_put(locks[j]);
	set_refuse(s, NULL, code, culprit[0] != '\0' ? culprit : NULL, "%s",
	    err.msg);
	return -1;
}

/*
 * Gives s its locks that the previous daemon granted it and died before
 * its replies went out (the owner asks again: lbd_orphan_adopt): 1 when
 * that is every one (s granted and freed); 0 when none (or some, given
 * back now: a set never holds some while it waits), the locks got again.
 */
static int
set_adopt(struct lbd_set *s, struct lbd_lock **locks)
{
	struct lockfs_err err;
	unsigned          i, adopted = 0;
	unsigned char    *mine;

	if ((mine = calloc(s->n, 1)) == NULL)
		return 0;
	for (i = 0; i < s->n; i++)
		if (locks[i]->holder != NULL &&
		    lbd_orphan_adopt(s->conn, locks[i], s->tid) == 0) {
			mine[i] = 1;
			adopted++;
		}
	if (adopted == s->n) {
		for (i = 0; i < s->n; i++)
			lbd_grant_reply(locks[i]->holder, s->conn,
			    s->m[i]->id);
		free(mine);
		set_free(s);
		return 1;
	}
	for (i = 0; i < s->n && adopted > 0; i++)
		if (mine[i] && lbd_hold_end(locks[i], &err) < 0)
			log_info("%s: %s", locks[i]->path, err.msg);
	free(mine);
	return 0;
}

/* The of-th member of s has arrived: s granted now, refused, or queued
 * (drawn at the top). */
static void
set_start(struct lbd_set *s)
{
	struct lbd       *d = s->conn->d;
	struct lbd_conn  *c = s->conn;
	struct lbd_lock **locks;
	struct lbd_wait  *first;
	struct lockfs_err err;
	char              why[LBP_LINE_MAX / 2], culprit[PATH_MAX];
	unsigned          i, j, busy;
	int               r;

	c->nset_members -= s->n;
	s->queued = 1;          /* no longer collecting */
	for (i = 0; i < s->n; i++) {
		/* Its wait, or the OK owed, holds its id from now. */
		lbd_reqid_del(c, &s->m[i]->inuse);
		s->m[i]->collecting = 0;
	}
	if ((locks = calloc(s->n, sizeof(*locks))) == NULL) {
		set_refuse(s, NULL, LBP_EINTERNAL, NULL, "out of memory");
		return;
	}
	if (set_check(s, locks) != 0)
		goto out;
	if (set_adopt(s, locks) == 1)
		goto out;
	/* Got again: a hold given back may have freed its lock. */
	for (i = 0; i < s->n; i++)
		if ((locks[i] = lbd_lock_get(d, s->m[i]->path, s->m[i]->method,
		    &err)) == NULL) {
			for (j = 0; j < i; j++)
				lbd_lock_put(locks[j]);
			set_refuse(s, NULL, LBP_EINTERNAL, NULL, "%s", err.msg);
			goto out;
		}
	/* Every lock free, nobody queued: made now, or not at all. */
	busy = 0;
	for (busy = 0; busy < s->n; busy++)
		if (locks[busy]->holder != NULL ||
		    !TAILQ_EMPTY(&locks[busy]->waiters))
			break;
	for (i = 0; busy == s->n && i < s->n; i++)
		if ((r = lbd_lock_try_stale(locks[i], c, s->tid, s->stale,
		    &err)) != 0) {
			for (j = 0; j < i; j++)
				if (lbd_hold_end(locks[j], &err) < 0)
					log_info("%s", err.msg);
			if (r != LB_EALREADY) {
				lbd_creds_may_look(c->creds,
				    lbd_lock_file(locks[i], why), &err);
				/* Those released were put by their release. */
				snprintf(culprit, sizeof(culprit), "%s",
				    locks[i]->path);
				for (j = i; j < s->n; j++)
					lbd_lock_put(locks[j]);
				set_refuse(s, NULL, LBP_EFAILED, culprit, "%s",
				    err.msg);
				goto out;
			}
			busy = i;
			/* Released: got again (still in the table or not). */
			for (j = 0; j < i; j++)
				locks[j] = lbd_lock_get(d, s->m[j]->path,
				    s->m[j]->method, &err);
			break;
		}
	if (busy == s->n) {
		for (i = 0; i < s->n; i++) {
			lbd_hold_mode(locks[i]->holder, 0);
			lbd_grant_reply(locks[i]->holder, c, s->m[i]->id);
		}
		set_free(s);
		goto out;
	}
	/* To wait, first in the queue of a lock nobody holds, it must be
	 * one its owner could take: each such lock is made and released
	 * (a lock held outside the broker is waited for). */
	for (i = 0; i < s->n; i++) {
		if (locks[i] == NULL || locks[i]->holder != NULL ||
		    !TAILQ_EMPTY(&locks[i]->waiters))
			continue;
		if ((r = lbd_lock_try_stale(locks[i], c, s->tid, s->stale,
		    &err)) == 0) {
			if (lbd_hold_end(locks[i], &err) < 0)
				log_info("%s", err.msg);
			locks[i] = lbd_lock_get(d, s->m[i]->path,
			    s->m[i]->method, &err);
		} else if (r != LB_EALREADY) {
			lbd_creds_may_look(c->creds,
			    lbd_lock_file(locks[i], why), &err);
			snprintf(culprit, sizeof(culprit), "%s",
			    locks[i]->path);
			for (j = 0; j < s->n; j++)
				if (locks[j] != NULL)
					lbd_lock_put(locks[j]);
			set_refuse(s, NULL, LBP_EFAILED, culprit, "%s",
			    err.msg);
			goto out;
		}
	}
	for (i = 0; i < s->n; i++)
		if (locks[i] == NULL) {
			for (j = 0; j < s->n; j++)
				if (locks[j] != NULL)
					lbd_lock_put(locks[j]);
			set_refuse(s, NULL, LBP_EINTERNAL, NULL,
			    "out of memory");
			goto out;
		}
	if (!(s->timeout > 0)) {
		snprintf(why, sizeof(why), "%s is locked by another owner",
		    locks[busy]->path);
		snprintf(culprit, sizeof(culprit), "%s", locks[busy]->path);
		for (j = 0; j < s->n; j++)
			lbd_lock_put(locks[j]);
		set_refuse(s, NULL, LBP_EALREADY, culprit, "%s", why);
		goto out;
	}
	if (c->nwaits + s->n > d->cfg.limits.waits_per_conn) {
		snprintf(why, sizeof(why), "waits_per_conn: this connection "
		    "waits for %u locks, and asks for %u more", c->nwaits,
		    s->n);
		for (j = 0; j < s->n; j++)
			lbd_lock_put(locks[j]);
		set_refuse(s, NULL, LBP_ELIMIT, NULL, "%s", why);
		goto out;
	}
	for (i = 0; i < s->n; i++) {
		if (lbd_wait_add(locks[i], c, s->m[i]->id, 0, s->tid,
		    s->timeout, s->stale) != 0) {
			for (j = i; j < s->n; j++)
				lbd_lock_put(locks[j]);
			set_refuse(s, NULL, LBP_EINTERNAL, NULL,
			    "out of memory");
			goto out;
		}
		s->m[i]->w = TAILQ_LAST(&locks[i]->waiters, lbd_waitq);
		s->m[i]->w->set = s;
	}
	/* A cycle of waits that one of its waits closes refuses it. */
	for (i = 0; i < s->n; i++)
		if (lbd_deadlock_find(d, c, s->tid, s->m[i]->w, &first, why,
		    sizeof(why))) {
			if (lbd_lograte_take(&d->deadlocks, (long)c->uid))
				log_info("%s: pid %ld's set refused: a cycle "
				    "of waits: %s", locks[i]->path,
				    (long)c->pid, why);
			set_refuse(s, NULL, LBP_EDEADLK, locks[i]->path,
			    "waiting for %s would deadlock: %s",
			    locks[i]->path, why);
			goto out;
		}
	/* Held outside the broker, or free: looked at now. */
	(void)lbd_set_try(s, NULL);
out:
	free(locks);
}

/* The set key of c being collected, or NULL. */
static struct lbd_set *
set_collecting(struct lbd_conn *c, uint64_t key)
{
	struct lbd_set *s;

	LIST_FOREACH(s, &c->sets, entry)
		if (!s->queued && s->key == key)
			return s;
	return NULL;
}

/* lbd_set_member: see set.h. */
void
lbd_set_member(struct lbd_conn *c, uint64_t id, uint64_t key, uint64_t of,
    const char *path, unsigned method, pid_t tid, double timeout, int stale)
{
	struct lbd_set         *s;
	struct lbd_set_member **mv, *m = NULL;

	if (of == 0 || of > LBD_SET_MAX) {
		lbd_conn_error(c, id, LBP_EINVAL, "of must be 1 to %d (the "
		    "members of a set)", LBD_SET_MAX);
		return;
	}
	if (c->nwaits + c->nset_members >= c->d->cfg.limits.waits_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "waits_per_conn: this "
		    "connection waits for %u locks and has %u members of "
		    "sets not complete", c->nwaits, c->nset_members);
		return;
	}
	if ((s = set_collecting(c, key)) == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
			return;
		}
		s->conn = c;
		s->key = key;
		s->of = (unsigned)of;
		s->tid = tid;
		s->timeout = timeout;
		s->stale = stale;
		s->outside = LBD_SET_MAX;
		LIST_INSERT_HEAD(&c->sets, s, entry);
	} else if (s->of != of || s->tid != tid || s->stale != stale) {
		/* (The timeout is the first member's: the others', sent
		 * after, say what was left of it then.) */
		lbd_conn_error(c, id, LBP_EINVAL, "set %llu: its members "
		    "must agree on of, thread and stale",
		    (unsigned long long)key);
		set_refuse(s, NULL, LBP_EINVAL, NULL, "set %llu: its members "
		    "must agree on of, thread and stale",
		    (unsigned long long)key);
		return;
	}
	/* Room for the members that came, not for those announced: a
	 * set's memory is counted by its members (waits_per_conn).  Each
	 * member's id is in use till it is answered or queued. */
	if ((mv = realloc(s->m, (s->n + 1) * sizeof(*mv))) != NULL)
		s->m = mv;
	if (mv == NULL || (m = calloc(1, sizeof(*m))) == NULL ||
	    (m->path = strdup(path)) == NULL ||
	    (m->inuse.id = id, lbd_reqid_add(c, &m->inuse)) != 0) {
		if (m != NULL)
			free(m->path);
		free(m);
		lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
		set_refuse(s, NULL, LBP_EINTERNAL, NULL, "out of memory");
		return;
	}
	m->collecting = 1;
	m->id = id;
	m->method = method;
	s->m[s->n++] = m;
	c->nset_members++;
	if (s->n == s->of)
		set_start(s);
}

/* lbd_set_cancel: see set.h. */
int
lbd_set_cancel(struct lbd_conn *c, uint64_t target)
{
	struct lbd_set *s;
	unsigned        i;

	LIST_FOREACH(s, &c->sets, entry)
		for (i = 0; !s->queued && i < s->n; i++)
			if (s->m[i]->id == target) {
				set_refuse(s, NULL, LBP_ECANCELED, NULL,
				    "canceled before the set was complete");
				return 0;
			}
	return -1;
}

/* lbd_conn_sets_drop: see set.h. */
void
lbd_conn_sets_drop(struct lbd_conn *c)
{
	while (!LIST_EMPTY(&c->sets))
		set_end(LIST_FIRST(&c->sets), NULL, 0, NULL, "");
}
