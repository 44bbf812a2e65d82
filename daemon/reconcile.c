/*
 * reconcile.c: a restarted daemon and the holds of the previous run.
 *
 * At start, every hold the state database records is judged against the
 * filesystem and the process table (its artefact looked at as its
 * client: "there" means its holder's by name and owner uid):
 *
 *   directory not the one recorded (another    -> forget the record,
 *       inode, or none: ENOENT, ENOTDIR)           nothing there touched
 *   artefact gone, or no longer the one recorded  -> forget the record
 *       (another's artefact in its place whose holder is provably dead:
 *       a handoff not recorded: broken; the holder itself dead: its
 *       unique file, left by a link release cut short, removed)
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
 *       released when the process exits (watched: pidwatch.c).  When the
 *       grace period ends unclaimed, it is released if its process is
 *       gone, and otherwise lingers (orphan_linger: never released for a
 *       live process, which may hold the lock in-process), until the
 *       process exits, takes it back, or its artefact goes.
 *   holder alive, cannot tell whether the          -> an orphan (or kept)
 *       artefact is there (its sqlite database        hold as above,
 *       busy, EACCES, EIO, the credentials not        "unjudged": never
 *       to be taken on)                               taken for gone, nor
 *                                                     for its holder's
 *
 * A handoff whose new holder was recorded and whose last step was never
 * taken (the record names the new holder and the old one: swap.c) is
 * finished first, when the lock file is still the old holder's, the very
 * file the handoff found (lockfs_handoff_resume).  Handoff temporaries left beside a recorded
 * lock are removed next, once per directory and user in a start (a
 * directory holding thousands of recorded locks is read once, not once
 * for each).
 *
 * An unjudged hold is looked at again: while its database is busy, by
 * the retry queues of releasing holds (releasing.c: bounded in rate and
 * per iteration, shared fairly by users; there are never more than the
 * records read at start); when its process asks for it back; and before
 * it ends (gone by then: forgotten, nothing touched).  Looked at again
 * and there, it is an orphan like any; gone, it is forgotten.
 *
 * Before an orphan is given back (RECLAIM, or ACQUIRE by its owner), its
 * artefact is looked at again, as its client: a user may have removed or
 * replaced it since the start.  Gone or replaced: the request is refused
 * and the orphan forgotten, nothing touched.  Not to be looked at now:
 * a RECLAIM is refused likewise (its process, told so, judges its
 * artefact itself: the library keeps the lock in-process, or reports it
 * lost; so the daemon never releases it on that process's behalf
 * afterwards); an ACQUIRE is not granted from it, and waits like any
 * other, the orphan held for its process as before, unjudged:
 *
 *              RECLAIM / ACQUIRE by its process
 *   ORPHAN ------------------------------------> that process's hold
 *    | |  \      artefact there and its holder's      (token kept)
 *    | |   \
 *    | |    +---------------------------------> REFUSED -> forgotten
 *    | |      gone, replaced; cannot tell          (at once for RECLAIM;
 *    | |      (RECLAIM)                             at the iteration's
 *    | |                                            end for ACQUIRE)
 *    | +-- cannot tell (ACQUIRE) --> UNJUDGED (looked at again, as above)
 *    +-- process exits / grace over, -----------> released (unjudged and
 *    |   its process gone                          gone: forgotten)
 *    +-- grace over, its process runs --> LINGERING: as ORPHAN, but its
 *          lock's waiters watch the directory; artefact gone or not its
 *          holder's (lbd_orphan_linger_look): forgotten, nothing touched
 *
 * Every step runs with the recorded client's credentials (uid, gid and
 * supplementary groups; a record of a daemon that did not keep groups:
 * none), never the daemon's own and never an artefact owner's: a client
 * may have swapped a directory on the lock's path while no daemon ran.
 * For the same reason a hold whose lock directory is no longer the one
 * recorded at the grant (another inode, or not there) is forgotten and
 * nothing in that directory is touched; and the directory checked is the
 * one acted in: the steps on a file method's artefact go through a
 * descriptor of it (pin_dir), so that a directory swapped on the path
 * between the check and the step is never acted in.
 *
 * No lock is granted to two holders: an orphan is the lock's holder in the
 * table, so ACQUIREs queue behind it as behind any holder.  A releasing
 * hold is its lock's holder too until its row is gone, but nobody's: no
 * RECLAIM, ACQUIRE or RELEASE finds it (hold.c, lbd_hold_find).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "ending.h"
#include "fs.h"
#include "hold.h"
#include "lock.h"
#include "litter.h"
#include "locktable.h"
#include "log.h"
#include "os.h"
#include "pidwatch.h"
#include "readers.h"
#include "reconcile.h"
#include "releasing.h"
#include "reply.h"
#include "store.h"
#include "wait.h"
#include "watch.h"

/* The directories whose handoff temporaries this start has tidied, each
 * with the user it did so as (another user may remove what that one could
 * not, in a sticky directory): an open-addressing set, alive only during
 * lbd_reconcile (the loop does not run meanwhile). */
struct tidied {
	unsigned long long dev;
	unsigned long long ino;
	uid_t              uid;
	int                used;
};
static struct tidied *tidied;
static size_t         tidied_size, tidied_count;

static int orphan_look(struct lbd_hold *h, const struct lbd_store_hold *rec,
    const char **why,
    struct lockfs_err *err);
static int orphan_pin(struct lbd_hold *h, int *pin, struct lockfs_err *err);
static int pin_dir(struct lbd_hold *h, int *pin, struct lockfs_err *err);
static void unpin(struct lbd_hold *h, int pin);
static void gone_unique_remove(struct lbd_hold *h);
static void forgot_add(struct lbd_lock *l, unsigned method, uint64_t token);

/* Ends an orphan hold: releases it (or hands it on) and logs why.  One
 * whose artefact could not be looked at yet is looked at first: gone (or
 * its directory replaced) it is forgotten, nothing touched; so is one
 * refused to its process (lbd_orphan_adopt). */
static void
orphan_end(struct lbd_hold *h, const char *why)
{
	struct lockfs_err err;
	struct lbd_lock  *l = h->lock;
	const char       *gone;
	int               pin = -1, r;
	int               try_ms = lockfs_sqlite_try_ms();
	int               step_ms = lockfs_sqlite_step_ms();

	/* Never waiting for a busy database: a release that finds it busy
	 * leaves the hold releasing, retried in its queue (releasing.c). */
	lockfs_sqlite_busy(0, 0);
	if (h->unjudged == LBD_ORPHAN_REFUSED ||
	    (h->unjudged && orphan_look(h, NULL, &gone, &err) == 0)) {
		log_info("%s: hold of pid %ld from the previous run ends "
		    "(%s): %s; forgotten, nothing touched", l->path,
		    (long)h->fs.owner.pid, why,
		    h->unjudged == LBD_ORPHAN_REFUSED ? "it was refused to "
		    "its process, which tells whether it holds it" : gone);
		lbd_hold_forget(l);
		goto out;
	}
	if (lbd_creds_tokenless(h->creds)) {
		/* Never acted for with the daemon's own rights: held until
		 * a process of its user connects (lbd_orphans_user_here) or
		 * the daemon stops (kept recorded, lbd_orphans_detach). */
		log_info("%s: hold of pid %ld from the previous run ends (%s) "
		    "once a process of uid %ld connects: no token of its "
		    "user to act with until then", l->path,
		    (long)h->fs.owner.pid, why, (long)h->uid);
		LIST_REMOVE(h, conn_entry);
		LIST_INSERT_HEAD(&l->d->tokenless, h, conn_entry);
		goto out;
	}
	if (lbd_reader_keep_for_readers(l, h))
		goto out;       /* held for its readers, not reclaimed yet */
	log_info("%s: hold of pid %ld from the previous run ends: %s",
	    l->path, (long)h->fs.owner.pid, why);
	/* Released in the directory judged (pin_dir), never handed on
	 * through it: the next holder's steps are its own. */
	if ((r = orphan_pin(h, &pin, &err)) != 1) {
		/* Not the directory judged, or it cannot be looked at now
		 * (which a user who may write a directory on the path can
		 * bring about): never released through the path. */
		log_info("%s: %s; forgotten, nothing there touched", l->path,
		    r == 0 ? "its directory is not the one it was locked in "
		    "(replaced, or gone)" : err.msg);
		lbd_hold_forget(l);
		goto out;
	}
	if (lbd_hold_end(l, &err) < 0)         /* l may be gone */
		log_info("%s", err.msg);
out:
	if (pin != -1)
		lockfs_fs_close(pin);
	lockfs_sqlite_busy(try_ms, step_ms);
}

/* lbd_orphan_exited: h's process exited (pidwatch.c): h ends (a kept
 * rider: nothing on disk but its marker; its lock served after). */
void
lbd_orphan_exited(struct lbd_hold *h)
{
	struct lbd_lock *l = h->lock;

	if (!h->rider) {
		orphan_end(h, "its process exited");
		return;
	}
	log_info("%s: pid %ld's shared hold, kept for it, ends: its process "
	    "exited", l->path, (long)h->fs.owner.pid);
	lbd_reader_end(h);
	lbd_readers_serve(l);
}

/*
 * Orphan h's grace is over, and its process still runs (same pid, same
 * start time): h lingers, held for that process until it exits (then it
 * ends as any orphan whose process exited), takes it back (RECLAIM, or
 * ACQUIRE), or its artefact goes.  Its artefact is never removed while
 * its process lives: that process may hold the lock in-process (a library
 * client whose ACQUIRE was granted and recorded but not answered before
 * the previous daemon died goes on waiting in-process, where the lock
 * file that names it is its own at once), and taking it from under it
 * would let a second holder in.  Its lock's waiters watch the directory,
 * as for a lock held outside, so that a release in-process serves them
 * at once (lbd_orphan_linger_look).
 */
static void
orphan_linger(struct lbd_hold *h)
{
	struct lbd_lock *l = h->lock;
	struct lbd_wait *w;

	LIST_REMOVE(h, conn_entry);
	LIST_INSERT_HEAD(&l->d->orphans, h, conn_entry);
	h->lingering = 1;
	/* Held for its user for as long as its process runs: counted in its
	 * locks_per_uid, or each restart would let the user hold as many
	 * more. */
	if (h->user == NULL && (h->user = lbd_uid_get(l->d, h->uid)) != NULL)
		h->user->nlocks++;
	log_info("%s: hold of pid %ld from the previous run not reclaimed "
	    "within the grace period; its process runs and may hold it "
	    "in-process: held for it until it exits or its artefact goes",
	    l->path, (long)h->fs.owner.pid);
	if ((w = TAILQ_FIRST(&l->waiters)) != NULL)
		lbd_lock_watch(l, w->conn);
}

/*
 * lbd_orphan_linger_look: see reconcile.h.  Looked at as its client, in
 * its directory as judged at the grant (pin_dir); nothing is touched:
 * whatever lies there now is someone else's business.
 */
int
lbd_orphan_linger_look(struct lbd_hold *h)
{
	struct lockfs_err err;
	struct lbd_lock  *l = h->lock;
	int               pin = -1, r;

	if (lbd_hold_names(h, &err) != 0)
		return 0;
	if (lbd_creds_enter(h->creds, &err) != 0) {
		lockfs_names_drop(&h->fs);
		return 0;
	}
	if ((r = pin_dir(h, &pin, &err)) == 1)
		r = lockfs_i_am_locking(&h->fs, &err);
	lbd_creds_leave();
	unpin(h, pin);
	if (r != 0)
		return 0;       /* its holder's still, or cannot be told */
	log_info("%s: the artefact of pid %ld's lingering hold is gone, or "
	    "not its own any more (released in-process): forgotten, nothing "
	    "touched", l->path, (long)h->fs.owner.pid);
	lbd_hold_forget(l);
	return 1;
}

/* The turn of the orphans whose grace period is over (ending.c): ends
 * them, the head's first, until none is left (0) or deadline passes (1).
 * Each end takes its orphan out of d->unclaimed (released, handed on,
 * left releasing or forgotten); so do a reclaim by its process and its
 * process's exit meanwhile. */
static int
grace_end_some(struct lbd_ending *e, uint64_t deadline)
{
	struct lbd      *d = (struct lbd *)((char *)e -
	    offsetof(struct lbd, grace_ending));
	struct lbd_hold *h;

	while ((h = LIST_FIRST(&d->unclaimed)) != NULL) {
		if (!h->for_readers && lbd_hold_kept_running(h) &&
		    !lbd_orphan_exiting(h))
			orphan_linger(h);
		else
			orphan_end(h, "not reclaimed within the grace period");
		if (uv_hrtime() >= deadline)
			break;
	}
	return !LIST_EMPTY(&d->unclaimed);
}

/* The grace period is over: unclaimed orphans lose their locks (kept
 * holds stay: they end with their process).  They leave d->orphans for
 * d->unclaimed, in one pass, and end there in turns with the holds of
 * closed connections and exited processes (ending.c): about turn_us of
 * them per loop iteration, so that thousands do not stall every client
 * at once, and none is looked for again among the kept holds. */
static void
grace_over(uv_timer_t *t)
{
	struct lbd      *d = t->data;
	struct lbd_hold *h, *next;

	for (h = LIST_FIRST(&d->orphans); h != NULL; h = next) {
		next = LIST_NEXT(h, conn_entry);
		if (h->kept)
			continue;
		LIST_REMOVE(h, conn_entry);
		LIST_INSERT_HEAD(&d->unclaimed, h, conn_entry);
	}
	/* An UPGRADE that waited for readers of the previous run that
	 * never reclaimed is served now. */
	lbd_readers_grace_over(d);
	lbd_store_conn_riders_recorded(d);      /* no rider to come now */
	if (LIST_EMPTY(&d->unclaimed))
		return;
	d->grace_ending.end_some = grace_end_some;
	lbd_ending_add(d, &d->grace_ending);
}

/*
 * Opens h's lock directory for reading when it is still its holder's: a
 * directory (never a symbolic link: a user who may write the lock's
 * directory can swap one in for it at any moment) of the holder's uid
 * holding the holder's marker, a regular file of that uid.  The
 * descriptor, or -1.  As h's user.
 */
static int
mkdir_open_holders(const struct lbd_hold *h, const char *mine)
{
	struct lockfs_fs_info st;
	int                   fd, r = -1;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, h->fs.lock_file, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR);
	if (fd == -1)
		goto out;
	if (lockfs_fs_info(fd, &st) == -1 || st.uid != h->fs.owner.uid ||
	    lockfs_fs_info_at(fd, mine, 0, &st) == -1 ||
	    st.type != LOCKFS_FS_FILE || st.uid != h->fs.owner.uid)
		goto out;
	r = fd;
	fd = -1;
out:
	lockfs_fs_close(fd);
	return r;
}

/*
 * An mkdir lock that holds markers besides its recorded holder's is a
 * handoff the previous daemon did not finish: it adds the next holder's
 * marker before it removes the old one, and dies before its commit.  The
 * next holder was never told (replies follow the commit), so its marker
 * goes, as the recorded holder's user; it will ask again.  The directory
 * emptied is the one opened and found the holder's (mkdir_open_holders),
 * never what its name leads to by then.
 */
static void
mkdir_undo_handoff(struct lbd_hold *h)
{
	const char         *mine, *name;
	struct lockfs_err   err;
	struct lbd_os_dir  *dir = NULL;
	int                 fd;

	if (lbd_hold_names(h, &err) != 0)
		return;
	mine = strrchr(h->fs.unique, '/') + 1;
	if (lbd_creds_enter(h->creds, &err) != 0) {
		lockfs_names_drop(&h->fs);
		return;
	}
	if ((fd = mkdir_open_holders(h, mine)) != -1 &&
	    (dir = lbd_os_dir_adopt(fd)) == NULL)
		lockfs_fs_close(fd);
	if (dir != NULL) {
		while ((name = lbd_os_dir_next(dir)) != NULL) {
			if (strcmp(name, ".") == 0 ||
			    strcmp(name, "..") == 0 ||
			    strcmp(name, mine) == 0)
				continue;
			if (lockfs_fs_unlink_at(fd, name) == 0)
				log_info("%s: removed %s, left by a handoff "
				    "the previous daemon did not finish",
				    h->fs.path, name);
		}
		lbd_os_dir_close(dir);
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

/* Rewrites name, when it lies in the directory dir (dirlen bytes), to
 * lie in the directory at path fd_path instead (a descriptor's, through
 * the daemon's /proc/self/fd: lbd_os_fd_path): 0, or -1 (out of memory;
 * name unchanged). */
static int
pin_name(char **name, const char *dir, size_t dirlen, const char *fd_path)
{
	char  *s = *name, *p;
	size_t n;

	if (s == NULL || strncmp(s, dir, dirlen) != 0 ||
	    (s[dirlen] != '/' && s[dirlen] != '\0'))
		return 0;
	n = strlen(fd_path) + strlen(s + dirlen) + 1;
	if ((p = malloc(n)) == NULL)
		return -1;
	snprintf(p, n, "%s%s", fd_path, s + dirlen);
	free(*name);
	*name = p;
	return 0;
}

/*
 * Opens h's lock directory and, when it is still the one recorded at the
 * grant (or the record does not tell), pins h's names to it: the lock
 * file, its directory and the unique name go through the descriptor
 * (/proc/self/fd/N/...), so that every step that follows acts in the
 * directory judged, whatever a user who may write a directory on the
 * path swaps in meanwhile.  Not the sqlite method's (sqlite resolves
 * symbolic links in its database's name itself, and its unique name is
 * a row's, not a file's: its steps remove rows, never files).  1 with
 * *pin the descriptor (-1 when nothing is pinned: the sqlite method, the
 * root ("/", "C:/"), or no path through a descriptor: lbd_os_fd_path), to
 * be closed after the steps and before h's names are dropped; 0 when
 * another directory is there, or none (ENOENT, ENOTDIR: nothing at the
 * lock's path is the hold's artefact); a negative code with err filled
 * when it cannot be looked at (EACCES, EIO: that cannot be told).  As
 * h's user, its names made.
 */
static int
pin_dir(struct lbd_hold *h, int *pin, struct lockfs_err *err)
{
	struct lockfs_fs_info st;
	size_t                dirlen = strlen(h->fs.dir);
	char                  proc[64];
	int                   fd, r;

	*pin = -1;
	if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, h->fs.dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW)) == -1 || lockfs_fs_info(fd, &st) == -1) {
		r = errno == ENOENT || errno == ENOTDIR ? 0 :
		    lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    h->fs.dir);
		goto out;
	}
	r = 0;
	if (h->dir_ino != 0 &&
	    (st.dev != h->dir_dev || st.ino != h->dir_ino))
		goto out;
	r = 1;
	if (h->lock->method == LB_SQLITE ||
	    lockfs_os_path_root(h->fs.dir) == dirlen ||
	    lbd_os_fd_path(fd, proc, sizeof(proc)) != 0 ||
	    access(proc, F_OK) != 0)
		goto out;
	if (pin_name(&h->fs.lock_file, h->fs.dir, dirlen, proc) != 0 ||
	    pin_name(&h->fs.unique, h->fs.dir, dirlen, proc) != 0 ||
	    pin_name(&h->fs.dir, h->fs.dir, dirlen, proc) != 0) {
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "%s: names of its "
		    "hold", h->lock->path);
		goto out;
	}
	*pin = fd;
	fd = -1;
out:
	lockfs_fs_close(fd);
	return r;
}

/* Drops h's names, pinned or not, and closes the pin (pin_dir). */
static void
unpin(struct lbd_hold *h, int pin)
{
	lockfs_names_drop(&h->fs);      /* made again for each step */
	if (pin != -1)
		lockfs_fs_close(pin);
}

/*
 * Makes h's names pinned to its lock directory (pin_dir), for its
 * release by lbd_hold_end, which uses names already made; h->pinned set
 * when they are.  What pin_dir returns; *pin to be closed once h is
 * released.  As h's user, entered and left here.
 */
static int
orphan_pin(struct lbd_hold *h, int *pin, struct lockfs_err *err)
{
	int r;

	*pin = -1;
	if (lbd_hold_names(h, err) != 0)
		return -1;
	if (lbd_creds_enter(h->creds, err) != 0) {
		lockfs_names_drop(&h->fs);
		return -1;
	}
	r = pin_dir(h, pin, err);
	lbd_creds_leave();
	if (r != 1 || *pin == -1)
		unpin(h, *pin);
	if (r != 1)
		*pin = -1;
	h->pinned = *pin != -1;
	return r;
}


/*
 * Looks at orphan h's artefact, as h's recorded client (see the top of
 * this file).  1 when it is there and its holder's (name and owner uid:
 * the methods' i_am_locking).  0 when it is gone or not its holder's any
 * more (a provably dead successor's artefact in its place is broken:
 * reconcile_successor), or when its directory is not the one recorded
 * (nothing in it touched); *why says which.  -1 with err filled when
 * that cannot be told now: the credentials cannot be taken on, the
 * directory or the artefact cannot be looked at (EACCES, EIO), or the
 * sqlite database is busy (err->sys_errno EBUSY); nothing is touched
 * then.  With its record rec (at start): a handoff to h that the
 * previous daemon recorded and did not finish is finished first
 * (swap.c), then handoff temporaries are removed.
 */
/* A slot of the set for (dev, ino, uid): its own, or the empty one it
 * would take.  The set is never full (grown at half). */
static struct tidied *
tidied_slot(unsigned long long dev, unsigned long long ino, uid_t uid)
{
	size_t i = ((size_t)dev * 31 + (size_t)ino * 17 + uid) %
	    tidied_size;

	while (tidied[i].used && (tidied[i].dev != dev ||
	    tidied[i].ino != ino || tidied[i].uid != uid))
		i = (i + 1) % tidied_size;
	return &tidied[i];
}

/*
 * Whether h's directory is still to be tidied in this start (as h's
 * user, whose credentials the caller has taken on); it is then counted
 * as tidied.  1 when it is to be (also when the set cannot grow: tidied
 * again, which is only slower), 0 when done already.
 */
static int
tidy_first(const struct lbd_hold *h)
{
	struct tidied        *t, *old = tidied;
	struct lockfs_fs_info st;
	size_t                i, old_size = tidied_size;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, h->fs.dir, LOCKFS_FS_FOLLOW,
	    &st) == -1)
		return 1;
	if (2 * (tidied_count + 1) > tidied_size) {
		tidied_size = tidied_size == 0 ? 64 : 2 * tidied_size;
		if ((tidied = calloc(tidied_size, sizeof(*tidied))) == NULL) {
			tidied = old;
			tidied_size = old_size;
			return 1;
		}
		for (i = 0; i < old_size; i++)
			if (old[i].used)
				*tidied_slot(old[i].dev, old[i].ino,
				    old[i].uid) = old[i];
		free(old);
	}
	if ((t = tidied_slot(st.dev, st.ino, h->uid))->used)
		return 0;
	t->dev = st.dev;
	t->ino = st.ino;
	t->uid = h->uid;
	t->used = 1;
	tidied_count++;
	return 1;
}

static int
orphan_look(struct lbd_hold *h, const struct lbd_store_hold *rec,
    const char **why, struct lockfs_err *err)
{
	struct lockfs_err terr;
	int               r, pin = -1;

	*why = "its artefact is gone, or is not its holder's any more";
	if (lbd_hold_names(h, err) != 0)
		return -1;
	if (lbd_creds_enter(h->creds, err) != 0) {
		lockfs_names_drop(&h->fs);
		return -1;
	}
	if ((r = pin_dir(h, &pin, err)) == 0)
		*why = "its directory is not the one it was locked in "
		    "(replaced, or gone); nothing there touched";
	if (r == 1 && rec != NULL && rec->from_unique[0] != '\0') {
		if (lockfs_handoff_resume(&h->fs, rec->from_unique,
		    rec->from_pid, rec->from_uid, &rec->from_id, &terr) == 1)
			log_info("%s: finished the handoff from pid %ld to pid "
			    "%ld that the previous daemon had recorded",
			    h->lock->path, (long)rec->from_pid,
			    (long)h->fs.owner.pid);
		/* Finished before, its old holder's traces not removed
		 * (the daemon died before its lbd_swaps_tidy): the old
		 * holder's unique file is litter (another user's is
		 * watched, looked at as that user: litter.c). */
		else if (lockfs_handoff_tidy_from(&h->fs, rec->from_unique,
		    lbd_litter_left, h) == 1)
			log_info("%s: removed pid %ld's unique file, its "
			    "handoff to pid %ld finished, its process gone",
			    h->lock->path, (long)rec->from_pid,
			    (long)h->fs.owner.pid);
	}
	if (r == 1 && rec != NULL && tidy_first(h) &&
	    lockfs_handoff_tidy(&h->fs, lbd_litter_left, h, &terr) > 0)
		log_info("%s: removed the temporaries of a handoff the "
		    "previous daemon did not finish", h->lock->path);
	if (r == 1 && (r = lockfs_i_am_locking(&h->fs, err)) == 0)
		reconcile_successor(h);
	lbd_creds_leave();
	unpin(h, pin);
	return r < 0 ? -1 : r;
}

/* Orphan h's artefact could not be looked at (err): h stays its lock's
 * holder, not yet reclaimable, and is looked at again: while its sqlite
 * database is busy, in its queue of retries (releasing.c); otherwise
 * when its process asks for it back, or when it ends. */
static void
orphan_unjudged(struct lbd_hold *h, const struct lockfs_err *err)
{
	int busy = err->sys_errno == EBUSY;

	h->unjudged = 1;
	if (busy && h->relq == NULL && lbd_releasing_add(h) != 0)
		busy = 0;               /* out of memory: not retried */
	log_info("%s: cannot tell whether the artefact of pid %ld's hold is "
	    "still there (%s); held for it until that can be told, %s",
	    h->lock->path, (long)h->fs.owner.pid, err->msg, busy ?
	    "looked at again while its database is busy" :
	    "looked at again when it asks for it back or it ends");
}

/* Orphan h's artefact is there and its holder's: h may be reclaimed
 * (an mkdir lock's stray markers of an unfinished handoff removed). */
static void
orphan_judged(struct lbd_hold *h)
{
	h->unjudged = 0;
	lbd_releasing_del(h);
	if (h->lock->method == LB_MKDIR)
		mkdir_undo_handoff(h);
}

/* Whether orphan h (not kept) is the hold of c's process (same pid, same
 * start time: not a reused pid; same user) and thread tid. */
static int
orphan_of(const struct lbd_hold *h, const struct lbd_conn *c, pid_t tid)
{
	struct lockfs_owner o;

	return h->conn == NULL && !h->kept && !h->releasing &&
	    !h->for_readers && h->unjudged != LBD_ORPHAN_REFUSED &&
	    h->fs.owner.pid == c->pid &&
	    h->tid == tid && h->uid == c->uid &&
	    lockfs_owner_of_pid(&o, c->pid, 0) == 0 &&
	    o.start == h->fs.owner.start;
}

/*
 * Orphan h, just judged its holder's, goes to the first of its lock's
 * waiters that asked for it before that could be told: an ACQUIRE of its
 * process and thread (the hold becomes that connection's, token and
 * record unchanged), or, a kept hold, an ACQUIRE pid= for its process by
 * its user or root (answered with its token; the hold stays kept).
 */
static void
orphan_to_waiter(struct lbd_hold *h)
{
	struct lbd_lock *l = h->lock;
	struct lbd_wait *w;
	struct lbd_conn *c;
	pid_t            tid;

	if (lbd_orphan_exiting(h))
		return;                 /* its process is gone: it ends */
	TAILQ_FOREACH(w, &l->waiters, lock_entry) {
		if (w->set != NULL)
			continue;       /* a set's: granted as a whole only */
		if (h->kept ? w->kept_pid == h->fs.owner.pid &&
		    (w->conn->uid == 0 || w->conn->uid == h->uid) &&
		    lbd_hold_kept_running(h) :
		    w->kept_pid == 0 && orphan_of(h, w->conn, w->tid))
			break;
	}
	if (w == NULL)
		return;
	if (!h->kept) {
		LIST_REMOVE(h, conn_entry);
		lbd_orphan_unwatch(h);
		h->conn = w->conn;
		h->lingering = 0;
		lbd_hold_adopt(l, h);
	}
	log_debug("%s: given to pid %ld, which asked for it back", l->path,
	    (long)w->conn->pid);
	c = w->conn;
	tid = w->tid;
	lbd_grant_reply(h, c, w->id);
	lbd_wait_remove(w);
	if (!h->kept)
		lbd_lock_own_waits(l, c, tid);
	lbd_readers_serve(l);   /* shared requests that waited for it */
	/* Given past the waiters ahead of its wait, who wait for its owner
	 * now: a cycle it closes, if it waits elsewhere. */
	if (!h->kept)
		lbd_waits_recheck(c, tid);
}

/*
 * lbd_orphan_judge: looks again at the artefact of orphan h, which could
 * not be told at start or when asked for (releasing.c's retry, without
 * waiting for a busy database): its holder's: h may be reclaimed; gone
 * or not its holder's: h is forgotten (l's waiters served); its
 * database still busy: queued again (releasing.c counts that as a busy
 * try); otherwise left as it is.  h may be freed on return.
 */
void
lbd_orphan_judge(struct lbd_hold *h)
{
	struct lockfs_err err;
	const char       *why;
	int               r;

	if (h->unjudged == LBD_ORPHAN_REFUSED) {
		log_info("%s: pid %ld's hold from the previous run, refused "
		    "to it: forgotten, nothing touched", h->lock->path,
		    (long)h->fs.owner.pid);
		lbd_hold_forget(h->lock);
		return;
	}
	if ((r = orphan_look(h, NULL, &why, &err)) == 1) {
		orphan_judged(h);
		log_info("%s: the artefact of pid %ld's hold is there: it "
		    "may reclaim it", h->lock->path, (long)h->fs.owner.pid);
		orphan_to_waiter(h);
	} else if (r == 0) {
		log_info("%s: pid %ld's hold from the previous run: %s; "
		    "forgotten", h->lock->path, (long)h->fs.owner.pid, why);
		lbd_hold_forget(h->lock);
	} else if (err.sys_errno == EBUSY && lbd_releasing_add(h) == 0)
		;                       /* busy still: tried again later */
	else
		log_debug("%s: %s", h->lock->path, err.msg);
}

/* The lock whose recorded kept riders rider_adopt adopts. */
static struct lbd_lock *adopting;

/* A kept rider's record of adopting's lock: adopted when it still rides
 * (lbd_reader_adopt_kept). */
static void
rider_adopt(struct lbd *d, const struct lbd_store_hold *rec)
{
	(void)d;
	(void)lbd_reader_adopt_kept(adopting, rec);
}

/* The record of connections riding adopting's lock: awaited, for their
 * RECLAIM (lbd_reader_await). */
static void
rider_await(struct lbd *d, const struct lbd_store_hold *rec)
{
	(void)d;
	lbd_reader_await(adopting, rec);
}

/* A kept rider's record, once every hold is judged: forgotten when not
 * adopted (its marker removed as its user; the table is rewritten from
 * memory after). */
static void
rider_leftover(struct lbd *d, const struct lbd_store_hold *rec)
{
	struct lockfs_err err;
	struct lbd_lock  *l;

	if ((l = lbd_lock_get(d, rec->path, rec->method, &err)) == NULL) {
		log_warn("%s: cannot judge its recorded kept reader: %s",
		    rec->path, err.msg);
		return;
	}
	lbd_reader_forget_kept(l, rec);
	lbd_lock_put(l);
}

/* Judges one recorded hold (see the table above). */
static void
reconcile_one(struct lbd *d, const struct lbd_store_hold *sh)
{
	struct lockfs_owner  o;
	struct lockfs_holder jh;
	struct lockfs_err    err;
	struct lbd_lock     *l = NULL;
	struct lbd_hold     *h = NULL, *r;
	const char          *why;
	int                  mine;

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = sh->pid;
	o.tid = sh->tid;
	o.start = sh->start;
	memcpy(o.boot, sh->boot, sizeof(o.boot));
	o.uid = lbd_os_files_uid_of(sh->uid);   /* its artefacts were
	                                           made as its user */
	if ((l = lbd_lock_get(d, sh->path, sh->method, &err)) == NULL ||
	    (h = lbd_hold_new(l, NULL, sh->pid, sh->tid, &o, &err)) == NULL) {
		log_warn("%s: cannot judge its recorded hold: %s", sh->path,
		    err.msg);
		goto out;
	}
	h->uid = sh->uid;
	h->gid = sh->gid;
	h->token = sh->token;
	h->previous = 1;
	h->since = sh->since;
	h->kept = sh->kept;
	h->shared = sh->shared;
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
	if (sh->shared) {       /* its riders first: its end hands to the
	                           kept ones, keeps it for those to come */
		adopting = l;
		lbd_store_each_rider(d, sh->path, sh->method, rider_adopt);
		lbd_store_each_conn_rider(d, sh->path, sh->method,
		    rider_await);
		adopting = NULL;
	}
	mine = orphan_look(h, sh, &why, &err);
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
	} else if (mine == 0 && (r = lbd_reader_owner(l)) != NULL) {
		/* Handed to its kept rider before the commit (no RECLAIM
		 * will come from one): the rider holds it, as told. */
		log_info("%s: pid %ld's hold: %s", sh->path, (long)sh->pid,
		    why);
		gone_unique_remove(h);  /* its traces, the handoff's to take */
		lbd_hold_free(lbd_hold_uninstall(l));
		lbd_reader_promote(r);
	} else if (mine == 0) {
		log_info("%s: pid %ld's hold: %s; forgotten", sh->path,
		    (long)sh->pid, why);
		if (sh->shared)         /* its awaited riders with it */
			forgot_add(l, sh->method, sh->token);
		if (lockfs_holder_liveness(&jh) == LB_HOLDER_DEAD)
			gone_unique_remove(h);
		lbd_hold_forget(l);
	} else if (lockfs_holder_liveness(&jh) == LB_HOLDER_DEAD)
		orphan_end(h, "its process is gone");   /* the release looks */
	else {
		/* Cannot tell (mine < 0) is not "gone": the lock stays held
		 * for its holder, who may well hold it still. */
		if (mine == 1)
			orphan_judged(h);
		else
			orphan_unjudged(h, &err);
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
 * Removes the unique file of h, a recorded hold whose artefact is gone and
 * whose holder is dead, when it is still there and not the lock (a link
 * release cut between its two unlinks, the daemon killed), or whose
 * artefact a kept rider was handed before the commit (the handoff's
 * last step, never taken): as h's user,
 * in its directory as judged (pin_dir), a file of that user's only
 * (lockfs_abandon).  Nothing else ever removes it.
 */
static void
gone_unique_remove(struct lbd_hold *h)
{
	struct lockfs_err err;
	int               pin = -1;

	if (h->lock->method != LB_LINK || lbd_hold_names(h, &err) != 0)
		return;
	if (lbd_creds_enter(h->creds, &err) != 0) {
		lockfs_names_drop(&h->fs);
		return;
	}
	if (pin_dir(h, &pin, &err) == 1)
		lockfs_abandon(&h->fs);
	lbd_creds_leave();
	unpin(h, pin);
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
	int try_ms = lockfs_sqlite_try_ms(), step_ms = lockfs_sqlite_step_ms();

	LIST_INIT(&d->orphans);
	LIST_INIT(&d->kept_riders);
	LIST_INIT(&d->unclaimed);
	LIST_INIT(&d->tokenless);
	uv_timer_init(d->loop, &d->grace);
	d->grace.data = d;
	/* A busy database is not waited for, once per hold, before anyone
	 * is served: its holds are judged again in the releasing queues. */
	lockfs_sqlite_busy(0, 0);
	d->reconciling = 1;     /* the grace period's, for the readers */
	lbd_store_each_hold(d, reconcile_one);
	lbd_store_each_rider(d, NULL, 0, rider_leftover);
	lbd_store_riders_rewrite(d);
	free(tidied);
	tidied = NULL;
	tidied_size = tidied_count = 0;
	lockfs_sqlite_busy(try_ms, step_ms);
	releasing_resume(d);
	lbd_store_commit(d);
	if (!LIST_EMPTY(&d->orphans))
		uv_timer_start(&d->grace, grace_over,
		    (uint64_t)(d->cfg.grace * 1000), 0);
	else
		lbd_store_conn_riders_recorded(d);      /* no rider to come */
	d->reconciling = 0;
}

/*
 * Looks again at the artefact of orphan h, which pid asks for back (its
 * process's RECLAIM, with reclaim set, or ACQUIRE; ACQUIRE pid= for a kept
 * hold), with the hold's credentials: a user may have removed or replaced
 * it since, or it could not be told before.  1 when it is there and its
 * holder's (h judged).  Otherwise -1:
 *
 * - gone or not its holder's: h is refused, and forgotten soon after (at
 *   its try in releasing.c, when its lock's waiters are served: the lock
 *   stays the caller's until then), nothing touched; at once by the
 *   caller with reclaim;
 * - it cannot be looked at now (a busy database): with reclaim, refused
 *   the same way (its process, told it is not given back, judges its
 *   artefact itself; the library then keeps the lock in-process, or
 *   reports it lost; so the daemon must never release it later on its
 *   behalf); else (the process does not know it holds it) h stays held,
 *   unjudged: the ACQUIRE waits like any other, and is handed h once h
 *   is judged its holder's (lbd_orphan_judge, while its database is
 *   busy), or gets the lock when h ends (its grace period; a kept hold:
 *   its process's exit).
 */
static int
orphan_recheck(struct lbd_hold *h, pid_t pid, int reclaim)
{
	struct lockfs_err err;
	const char       *why;
	int               r;

	if ((r = orphan_look(h, NULL, &why, &err)) < 0 && !reclaim) {
		log_info("%s: pid %ld asks for it again, but whether its "
		    "artefact is still there cannot be told (%s): held for "
		    "it as before, not given back yet", h->lock->path,
		    (long)pid, err.msg);
		h->unjudged = 1;
		if (err.sys_errno == EBUSY && h->relq == NULL)
			lbd_releasing_add(h);   /* else: with the grace */
		return -1;
	}
	if (r != 1) {
		log_info("%s: pid %ld asks for its hold back, but %s%s%s: "
		    "refused, and forgotten, nothing touched", h->lock->path,
		    (long)pid, r == 0 ? why : "whether its artefact is "
		    "still there cannot be told (", r == 0 ? "" : err.msg,
		    r == 0 ? "" : ")");
		h->unjudged = LBD_ORPHAN_REFUSED;
		if (reclaim)
			return -1;      /* forgotten at once: lbd_reclaim */
		if (h->relq == NULL && lbd_releasing_add(h) != 0)
			log_warn("%s: out of memory: its hold is forgotten "
			    "with the grace period", h->lock->path);
		lbd_releasing_soon(h);
		return -1;
	}
	if (h->unjudged)
		orphan_judged(h);
	return 1;
}

/*
 * Makes l's holder c's hold when it is an orphan of c's process (same
 * pid, same start time: not a reused pid; same user) and thread tid, and
 * its artefact is still there and its holder's (orphan_recheck): token
 * and record unchanged but for its mode, settled to mode when that is
 * not -1 (the mode its owner was told: 0 exclusive, when no other
 * reader holds beside it; 1 shared) before the readers waiting for it
 * are served.  0, or -1 when it is not such an orphan, or is refused or
 * not to be given back yet (orphan_recheck); LBD_RECLAIM_READERS when
 * mode 0 (exclusive) is asked of a shared hold while readers hold beside
 * it (nothing changed).
 */
static int
orphan_adopt(struct lbd_conn *c, struct lbd_lock *l, pid_t tid,
    int reclaim, int mode)
{
	struct lbd_hold *h = l->holder;

	if (h == NULL || !orphan_of(h, c, tid))
		return -1;
	/* Exclusive asked of a shared hold (a DOWNGRADE its owner was told
	 * is not done): given back exclusive only while no reader holds
	 * beside it, a rider reclaimed or a previous run's live marker
	 * there (lbd_readers_unclaimed 1; -1, cannot tell beside the
	 * readers' sign, counts as one); else refused, never settled
	 * shared behind its owner's back, never a reader beside a
	 * writer. */
	if (mode == 0 && h->shared && (l->nreaders != 0 ||
	    lbd_readers_unclaimed(l) != 0)) {
		log_info("%s: pid %ld asks for its hold back exclusive while "
		    "readers hold beside it: refused", l->path, (long)c->pid);
		return LBD_RECLAIM_READERS;
	}
	if (orphan_recheck(h, c->pid, reclaim) != 1)
		return -1;
	LIST_REMOVE(h, conn_entry);
	lbd_orphan_unwatch(h);
	h->conn = c;
	h->lingering = 0;
	lbd_hold_adopt(l, h);
	log_debug("%s: taken back by pid %ld", l->path, (long)c->pid);
	if (mode == 0 || mode == 1)
		lbd_hold_mode(h, mode);
	lbd_readers_serve(l);   /* shared requests that waited for it */
	lbd_waits_recheck(c, tid);      /* a cycle it closes, if it waits */
	return 0;
}

/*
 * lbd_kept_recheck: ACQUIRE pid= by c of kept hold h (lbd_hold_find),
 * the previous run's, whose artefact could not be told since (unjudged):
 * 0 when it is there and its holder's now (answered as a re-entrant
 * ACQUIRE); -1 when it is not given back (see orphan_recheck: refused,
 * or held for it and handed to the waiting ACQUIRE once judged).  0 for
 * any other hold.
 */
int
lbd_kept_recheck(struct lbd_conn *c, struct lbd_hold *h)
{
	if (!h->kept || h->conn != NULL || h->unjudged == 0)
		return 0;
	if (h->unjudged == LBD_ORPHAN_REFUSED)
		return -1;
	return orphan_recheck(h, c->pid, 0) == 1 ? 0 : -1;
}

/*
 * lbd_orphan_adopt: ACQUIRE by c (thread tid) of l, whose holder may be
 * an orphan of c's process, granted by the previous daemon, which died
 * before its reply went out: it becomes c's hold, token and record
 * unchanged, when its artefact is still there and its holder's (see
 * orphan_adopt).  0, or -1 when it is not such an orphan.
 */
int
lbd_orphan_adopt(struct lbd_conn *c, struct lbd_lock *l, pid_t tid)
{
	return orphan_adopt(c, l, tid, 0, -1);
}

/* A shared hold forgotten at start because its artefact was not its
 * holder's any more (reconcile_one): the killed daemon may have handed
 * that artefact to a rider, which may reclaim with the hold's token
 * (reclaim_own_artefact), and its other riders ride on it again (their
 * records kept with it).  At most FORGOT_MAX, freed at the stop. */
struct forgot {
	struct forgot      *next;
	uint64_t            token;
	unsigned            method;
	struct lbd_awaited *awaited;    /* its riders still to reclaim */
	char                path[];
};

#define FORGOT_MAX 4096

static struct forgot *forgot_head;
static unsigned       forgot_n;

/* Notes l's forgotten shared hold (method) with token, and takes its
 * awaited riders out of l with it (lbd_readers_await_take). */
static void
forgot_add(struct lbd_lock *l, unsigned method, uint64_t token)
{
	struct lbd_awaited *awaited = lbd_readers_await_take(l);
	struct forgot      *f;
	size_t              len = strlen(l->path);

	if (forgot_n >= FORGOT_MAX ||
	    (f = malloc(sizeof(*f) + len + 1)) == NULL) {
		lbd_readers_await_free(awaited);
		return;
	}
	memcpy(f->path, l->path, len + 1);
	f->method = method;
	f->token = token;
	f->awaited = awaited;
	f->next = forgot_head;
	forgot_head = f;
	forgot_n++;
}

/* Takes the note of path (method) with token out: 1 when there was one
 * (its awaited riders into *awaited, the caller's), else 0. */
static int
forgot_take(const char *path, unsigned method, uint64_t token,
    struct lbd_awaited **awaited)
{
	struct forgot **pf, *f;

	for (pf = &forgot_head; (f = *pf) != NULL; pf = &f->next)
		if (f->token == token && f->method == method &&
		    strcmp(f->path, path) == 0) {
			*pf = f->next;
			forgot_n--;
			*awaited = f->awaited;
			free(f);
			return 1;
		}
	return 0;
}

/* Frees every note (the stop). */
static void
forgot_free(void)
{
	struct forgot *f;

	while ((f = forgot_head) != NULL) {
		forgot_head = f->next;
		lbd_readers_await_free(f->awaited);
		free(f);
	}
	forgot_n = 0;
}

/*
 * A reader's RECLAIM (mode shared, token) of a lock that has no holder
 * now, whose artefact is the reader's own: the previous daemon handed it
 * the artefact as a rider (hold.c) and took the last step (the rename
 * over the lock file: swap.c, before its commit when another step came
 * in the same iteration), then died before its commit; the record it
 * left is the old reader's, forgotten at start (its artefact not its).
 * The rider was told it holds long before: its hold is given back, shared,
 * with its token, as the artefact's reader (the others' RECLAIMs ride on
 * it).  Only a token of a shared hold of a previous run forgotten at
 * start (forgot_take: once).  0, or -1 (no such hold, or the artefact is
 * not its own: nothing made).
 */
static int
reclaim_own_artefact(struct lbd_conn *c, const char *path, unsigned method,
    pid_t tid, uint64_t token)
{
	struct lockfs_err   err;
	struct lbd_lock    *l;
	struct lbd_awaited *awaited = NULL;

	/* Only where a shared hold of a previous run with that very token
	 * was forgotten at start, its artefact not its holder's any more:
	 * never a lock its owner holds exclusive in-process, whatever token
	 * it names (a hostile review had a writer and a reader hold one so).
	 * (The grace period, which a rider's marker needs, is not: the
	 * evidence is the record and the artefact, and the grace ends as
	 * soon as no orphan is left.) */
	if (token == 0)         /* (forgot_take: the previous run's only) */
		return -1;
	if ((l = lbd_lock_get(c->d, path, method, &err)) == NULL)
		return -1;
	if (l->holder != NULL ||
	    !forgot_take(l->path, method, token, &awaited) ||
	    lbd_own_artefact_adopt(l, c, 0, tid) != 0) {
		lbd_readers_await_free(awaited);
		lbd_lock_put(l);
		return -1;
	}
	l->holder->token = token;
	l->holder->previous = 1;
	lbd_hold_mode(l->holder, 1);    /* recorded shared */
	lbd_readers_await_give(l, awaited);     /* the other riders' */
	log_info("%s: pid %ld reclaims it shared, its own artefact (handed "
	    "to it as a rider by the previous daemon, which died before it "
	    "recorded that)", path, (long)c->pid);
	return 0;
}

/*
 * lbd_reclaim: RECLAIM by c of the hold of path (method, tid) it had in
 * the previous run with token, its mode settled to mode (-1: as
 * recorded; see orphan_adopt).  0, or -1 when there is no such orphan of
 * c's process with that token, or when it is refused (orphan_adopt:
 * forgotten here at once, nothing touched, its lock's waiters served).
 */
int
lbd_reclaim(struct lbd_conn *c, const char *path, unsigned method,
    pid_t tid, uint64_t token, int mode)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	struct lbd_lock   *l;
	int                rc;

	if (lockfs_init(&fs, path, method, 0, &err) != 0)
		return -1;
	l = lbd_lock_find(c->d, fs.path, method);
	if ((l == NULL || l->holder == NULL) && mode == 1) {
		rc = reclaim_own_artefact(c, fs.path, method, tid, token);
		lockfs_fini(&fs);
		return rc;
	}
	lockfs_fini(&fs);
	if (l == NULL || l->holder == NULL || l->holder->token != token)
		return -1;
	if ((rc = orphan_adopt(c, l, tid, 1, mode)) == 0 ||
	    rc == LBD_RECLAIM_READERS)
		return rc;
	if (l->holder->unjudged == LBD_ORPHAN_REFUSED) {
		lbd_hold_forget(l);     /* at once: l is not used after */
		return -1;
	}
	/* A rider of the previous run: its marker is its record.  Never
	 * for an owner told it holds exclusive: a rider is shared. */
	if (mode == 0)
		return -1;
	return lbd_reader_rejoin(l, c, tid, token);
}

/* lbd_orphans_user_here: see reconcile.h.  Taken out of d->tokenless
 * first: one that cannot be acted for even now goes back there. */
void
lbd_orphans_user_here(struct lbd *d, uid_t uid)
{
	struct lbd_holds here;
	struct lbd_hold *h, *next;

	LIST_INIT(&here);
	for (h = LIST_FIRST(&d->tokenless); h != NULL; h = next) {
		next = LIST_NEXT(h, conn_entry);
		if (h->uid != uid)
			continue;
		LIST_REMOVE(h, conn_entry);
		LIST_INSERT_HEAD(&here, h, conn_entry);
	}
	while ((h = LIST_FIRST(&here)) != NULL)
		orphan_end(h, "a process of its user connected");
}

/* lbd_orphans_detach: the daemon stops: unclaimed orphans (those whose
 * grace is over too, if any are left) stay recorded (and their artefacts
 * on disk) for the next daemon; the grace ends. */
void
lbd_orphans_detach(struct lbd *d)
{
	struct lbd_hold *h;

	while ((h = LIST_FIRST(&d->orphans)) != NULL)
		lbd_hold_detach(h->lock);
	while ((h = LIST_FIRST(&d->unclaimed)) != NULL)
		lbd_hold_detach(h->lock);
	while ((h = LIST_FIRST(&d->tokenless)) != NULL)
		lbd_hold_detach(h->lock);
	lbd_ending_del(d, &d->grace_ending);
	uv_close((uv_handle_t *)&d->grace, NULL);
	forgot_free();
}
