/*
 * reconcile.c: a restarted daemon and the holds of the previous run.
 *
 * At start, every hold the state database records is judged against the
 * filesystem and the process table:
 *
 *   artefact gone, or no longer the one recorded  -> forget the record
 *       (another's artefact in its place whose holder is provably dead:
 *       a handoff not recorded: broken)
 *   earlier boot, holder's pid gone or reused      -> remove the artefact
 *                                                     (as the holder's
 *                                                     user), forget it
 *   a releasing hold (its RELEASE was answered,   -> released now, as its
 *       its sqlite row not yet removed: hold.c)       user; left releasing
 *                                                     (retried) while the
 *                                                     database is busy;
 *                                                     never its holder's
 *                                                     again, alive or not
 *   holder alive, a kept hold (ACQUIRE pid=)       -> kept, watched
 *   holder alive                                   -> an orphan hold (an
 *       mkdir lock's stray markers of an unfinished handoff removed): the
 *       lock stays held; its process may RECLAIM it (same pid, thread and
 *       token) over a new connection within the grace period; it is
 *       released when the process exits (watched: pidwatch.c) or when
 *       the grace period ends unclaimed.
 *
 * Handoff temporaries left beside a recorded lock are removed first.
 *
 * Every step runs with the recorded client's credentials (uid, gid and
 * supplementary groups; a record of a daemon that did not keep groups:
 * none), never the daemon's own and never an artefact owner's: a client
 * may have swapped a directory on the lock's path while no daemon ran.
 * For the same reason a hold whose lock directory is no longer the one
 * recorded at the grant (another inode, or not there) is forgotten and
 * nothing in that directory is touched.
 *
 * No lock is granted to two holders: an orphan is the lock's holder in the
 * table, so ACQUIREs queue behind it as behind any holder.  A releasing
 * hold is its lock's holder too until its row is gone, but nobody's: no
 * RECLAIM, ACQUIRE or RELEASE finds it (hold.c, lbd_hold_find).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "hold.h"
#include "locktable.h"
#include "log.h"
#include "pidwatch.h"
#include "reconcile.h"
#include "store.h"

/* Ends an orphan hold: releases it (or hands it on) and logs why. */
static void
orphan_end(struct lbd_hold *h, const char *why)
{
	struct lockfs_err err;
	struct lbd_lock  *l = h->lock;

	log_info("%s: hold of pid %ld from the previous run ends: %s",
	    l->path, (long)h->fs.owner.pid, why);
	if (lbd_hold_end(l, &err) < 0)         /* l may be gone */
		log_info("%s", err.msg);
}

/* lbd_orphan_exited: h's process exited (pidwatch.c): h ends. */
void
lbd_orphan_exited(struct lbd_hold *h)
{
	orphan_end(h, "its process exited");
}

/* The grace period is over: unclaimed orphans lose their locks (kept
 * holds stay: they end with their process). */
static void
grace_over(uv_timer_t *t)
{
	struct lbd      *d = t->data;
	struct lbd_hold *h, *next;

	for (h = LIST_FIRST(&d->orphans); h != NULL; h = next) {
		next = LIST_NEXT(h, conn_entry);
		if (h->kept)
			continue;
		orphan_end(h, "not reclaimed within the grace period");
		next = LIST_FIRST(&d->orphans);  /* a handoff may change it */
	}
}

/*
 * An mkdir lock that holds markers besides its recorded holder's is a
 * handoff the previous daemon did not finish: it adds the next holder's
 * marker before it removes the old one, and dies before its commit.  The
 * next holder was never told (replies follow the commit), so its marker
 * goes, as the recorded holder's user; it will ask again.
 */
static void
mkdir_undo_handoff(struct lbd_hold *h)
{
	const char        *mine;
	struct lockfs_err  err;
	struct dirent     *de;
	DIR               *dir;

	if (lbd_hold_names(h, &err) != 0)
		return;
	mine = strrchr(h->fs.unique, '/') + 1;
	if (lbd_creds_enter(h->creds, &err) != 0) {
		lockfs_names_drop(&h->fs);
		return;
	}
	if ((dir = opendir(h->fs.lock_file)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0 ||
			    strcmp(de->d_name, mine) == 0)
				continue;
			if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
				log_info("%s: removed %s, left by a handoff "
				    "the previous daemon did not finish",
				    h->fs.path, de->d_name);
		}
		closedir(dir);
	}
	lbd_creds_leave();
	lockfs_names_drop(&h->fs);
}

/*
 * The recorded hold's artefact is not its holder's any more, but is there:
 * the previous daemon handed it on (or it was released and taken outside)
 * and died before its commit.  A holder that is alive keeps it (a broker
 * client asks again and is recognised, see hold.c); one that is provably
 * dead (pid gone or reused, earlier boot) would block the lock for ever,
 * so its artefact is broken, as `lockbroker break --stale` would, with
 * the recorded holder's credentials (never the artefact owner's: what
 * lies there now may be anybody's, reached through anybody's path): where
 * that user may not remove it, it stays.  Called with h's credentials on.
 */
static void
reconcile_successor(struct lbd_hold *h)
{
	struct lockfs_holder fh;
	struct lockfs_err    err;

	if (lockfs_holder(&h->fs, &fh, &err) != 1 ||
	    lockfs_holder_liveness(&fh) != LB_HOLDER_DEAD)
		return;
	if (lockfs_break_stale(&h->fs, &err) == 1)
		log_info("%s: removed the artefact of pid %ld, who is gone "
		    "(a handoff or grant the previous daemon did not record)",
		    h->fs.path, (long)fh.pid);
}

/* Whether h's lock directory is still the one recorded at the grant (or
 * the record does not tell); as h's user. */
static int
same_dir(const struct lbd_hold *h)
{
	struct stat st;

	if (h->dir_ino == 0)
		return 1;
	return stat(h->fs.dir, &st) == 0 && st.st_dev == h->dir_dev &&
	    st.st_ino == h->dir_ino;
}

/* Judges one recorded hold (see the table above). */
static void
reconcile_one(struct lbd *d, const struct lbd_store_hold *sh)
{
	struct lockfs_owner  o;
	struct lockfs_holder jh;
	struct lockfs_err    err;
	struct lbd_lock     *l = NULL;
	struct lbd_hold     *h = NULL;
	int                  mine;

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = sh->pid;
	o.tid = sh->tid;
	o.start = sh->start;
	memcpy(o.boot, sh->boot, sizeof(o.boot));
	o.uid = sh->uid;        /* its artefacts were made as its user */
	if ((l = lbd_lock_get(d, sh->path, sh->method, &err)) == NULL ||
	    (h = lbd_hold_new(l, NULL, sh->pid, sh->tid, &o, &err)) == NULL) {
		log_warn("%s: cannot judge its recorded hold: %s", sh->path,
		    err.msg);
		goto out;
	}
	h->uid = sh->uid;
	h->gid = sh->gid;
	h->token = sh->token;
	h->since = sh->since;
	h->kept = sh->kept;
	h->releasing = sh->releasing;
	/* A sqlite row names no user: the record says this daemon wrote it,
	 * as that owner's (sqlite.c). */
	h->fs.sqlite_row_ours = sh->method == LB_SQLITE;
	h->dir_dev = sh->dir_dev;
	h->dir_ino = sh->dir_ino;
	h->creds = lbd_creds_new(sh->uid, sh->gid, sh->ngroups, sh->groups);
	lbd_hold_adopt(l, h);   /* the record and the table agree again */
	if (h->creds == NULL) {
		log_err("%s: out of memory for its recorded hold; forgotten, "
		    "nothing removed", sh->path);
		lbd_hold_forget(l);
		l = NULL;
		goto out;
	}
	if (!sh->groups_known)
		log_info("%s: its record has no supplementary groups; acting "
		    "for uid %ld with none", sh->path, (long)sh->uid);
	if (lbd_creds_enter(h->creds, &err) != 0) {
		log_warn("%s: cannot act for uid %ld: %s; forgotten, nothing "
		    "removed", sh->path, (long)sh->uid, err.msg);
		lbd_hold_forget(l);
		l = NULL;
		goto out;
	}
	if (!same_dir(h)) {
		lbd_creds_leave();
		log_warn("%s: its directory is not the one it was locked in "
		    "(replaced, or gone); forgotten, nothing there touched",
		    sh->path);
		lbd_hold_forget(l);
		l = NULL;
		goto out;
	}
	if (lockfs_handoff_tidy(&h->fs, &err) > 0)
		log_info("%s: removed the temporaries of a handoff the "
		    "previous daemon did not finish", sh->path);
	mine = lockfs_i_am_locking(&h->fs, &err);
	if (mine != 1)
		reconcile_successor(h);
	lbd_creds_leave();
	lockfs_names_drop(&h->fs);      /* made again for each step */
	memset(&jh, 0, sizeof(jh));
	snprintf(jh.host, sizeof(jh.host), "%s", o.host);
	jh.pid = o.pid;
	jh.start = o.start;
	memcpy(jh.boot, o.boot, sizeof(jh.boot));
	if (h->releasing && mine != 0) {
		/* Ended by releasing_resume once every record is read (a
		 * busy database records it again); mine < 0: the database
		 * cannot be read now (busy, maybe), the release itself
		 * checks whose the row is. */
		log_info("%s: pid %ld released it in the previous run, which "
		    "could not remove its row yet (a busy database); it is "
		    "removed now, or once the database lets it", sh->path,
		    (long)sh->pid);
	} else if (mine != 1) {
		log_info("%s: artefact of pid %ld's hold is gone; forgotten",
		    sh->path, (long)sh->pid);
		lbd_hold_forget(l);
	} else if (lockfs_holder_liveness(&jh) == LB_HOLDER_DEAD)
		orphan_end(h, "its process is gone");
	else {
		if (sh->method == LB_MKDIR)
			mkdir_undo_handoff(h);
		if (h->kept)
			log_info("%s: kept for pid %ld, as in the previous "
			    "run", sh->path, (long)sh->pid);
		else
			log_info("%s: pid %ld holds it from the previous run; "
			    "it may reclaim it for %g s", sh->path,
			    (long)sh->pid, d->cfg.grace);
		lbd_orphan_watch(d, h);
	}
	l = NULL;
out:
	if (l != NULL)
		lbd_lock_put(l);
}

/*
 * Ends the releasing holds of the previous run that reconcile_one left
 * among the orphans, after the scan of the records (ending one may
 * record it again, releasing, when its database is still busy: releasing.c
 * retries it then, as its user).  Each counts in its user's
 * locks_per_uid until it ends, as it did in the previous run.
 */
static void
releasing_resume(struct lbd *d)
{
	struct lbd_holds ending;
	struct lbd_hold *h, *next;

	LIST_INIT(&ending);
	for (h = LIST_FIRST(&d->orphans); h != NULL; h = next) {
		next = LIST_NEXT(h, conn_entry);
		if (!h->releasing)
			continue;
		LIST_REMOVE(h, conn_entry);
		LIST_INSERT_HEAD(&ending, h, conn_entry);
		if ((h->user = lbd_uid_get(d, h->uid)) != NULL)
			h->user->nlocks++;
	}
	while ((h = LIST_FIRST(&ending)) != NULL)
		orphan_end(h, "its release was answered in the previous "
		    "run");
}

/*
 * lbd_reconcile: judges every hold of the previous run (see above) and
 * starts the grace period for those that stay.  Run once at start, before
 * the daemon accepts connections.
 */
void
lbd_reconcile(struct lbd *d)
{
	LIST_INIT(&d->orphans);
	uv_timer_init(d->loop, &d->grace);
	d->grace.data = d;
	lbd_store_each_hold(d, reconcile_one);
	releasing_resume(d);
	lbd_store_commit(d);
	if (!LIST_EMPTY(&d->orphans))
		uv_timer_start(&d->grace, grace_over,
		    (uint64_t)(d->cfg.grace * 1000), 0);
}

/*
 * lbd_orphan_adopt: l's holder is an orphan of c's process (same pid,
 * same start time: not a reused pid; same user) and thread tid: it becomes
 * c's hold, token and record unchanged.  0, or -1 when it is not such an
 * orphan.  Used by RECLAIM, and by ACQUIRE (a grant whose reply was lost
 * when the previous daemon died).
 */
int
lbd_orphan_adopt(struct lbd_conn *c, struct lbd_lock *l, pid_t tid)
{
	struct lockfs_owner o;
	struct lbd_hold    *h = l->holder;

	if (h == NULL || h->conn != NULL || h->kept || h->releasing ||
	    h->fs.owner.pid != c->pid ||
	    h->tid != tid || h->uid != c->uid ||
	    lockfs_owner_of_pid(&o, c->pid, 0) != 0 ||
	    o.start != h->fs.owner.start)
		return -1;
	LIST_REMOVE(h, conn_entry);
	lbd_orphan_unwatch(h);
	h->conn = c;
	lbd_hold_adopt(l, h);
	log_debug("%s: taken back by pid %ld", l->path, (long)c->pid);
	return 0;
}

/*
 * lbd_reclaim: RECLAIM by c of the hold of path (method, tid) it had in
 * the previous run with token.  0, or -1 when there is no such orphan of
 * c's process with that token.
 */
int
lbd_reclaim(struct lbd_conn *c, const char *path, unsigned method,
    pid_t tid, uint64_t token)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	struct lbd_lock   *l;

	if (lockfs_init(&fs, path, method, 0, &err) != 0)
		return -1;
	l = lbd_lock_find(c->d, fs.path, method);
	lockfs_fini(&fs);
	if (l == NULL || l->holder == NULL || l->holder->token != token)
		return -1;
	return lbd_orphan_adopt(c, l, tid);
}

/* lbd_orphans_detach: the daemon stops: unclaimed orphans stay recorded
 * (and their artefacts on disk) for the next daemon; the grace ends. */
void
lbd_orphans_detach(struct lbd *d)
{
	struct lbd_hold *h;

	while ((h = LIST_FIRST(&d->orphans)) != NULL)
		lbd_hold_detach(h->lock);
	uv_close((uv_handle_t *)&d->grace, NULL);
}
