/*
 * swap.c: the handoffs whose last step waits for the iteration's commit.
 *
 * A handoff (hold.c, lbd_hold_end) prepares every step that can fail for
 * want of permission or room as the next holder (lockfs_handoff_prepare:
 * the directory's lock taken, the next holder's artefact made beside the
 * lock), installs the next holder and owes it its OK; the iteration's
 * commit records the grant, with the previous holder's identity; then the
 * last step is taken: the next holder's artefact renamed over the lock
 * file (mkdir: the old holder's marker removed), the directory's lock
 * dropped; only then do the OKs go out (reply.c; the waiter's before the
 * old holder's), and after them the old holder's traces are removed as
 * its own user (lbd_swaps_tidy): nobody
 * told of the handoff ever finds the lock file still the old holder's,
 * which the old holder, told it released or cut off from a dead daemon,
 * would take for its own (docs/DESIGN.md).
 *
 *   prepared (d->swaps; the lock's artefact still the old holder's name,
 *   |         the directory locked, so no breaker acts)
 *   | the iteration's settle, its commit done, before its OKs (loop.c);
 *   | or earlier: before any step for anyone else (another request, the
 *   | hold's end, BREAK, the stop, another handoff)
 *   v
 *   finished: the lock file is the next holder's -----> freed
 *   | the last step refused for a reader's sake (EBUSY: where renames
 *   | replace no name another handle has open, Windows without POSIX
 *   | semantics): READERS below
 *   | the last step fails (an I/O error, or the next holder's artefact
 *   | gone from beside the lock: its owner may remove it; permission and
 *   | room were checked by the preparation)
 *   v
 *   FAILED: the next holder's artefact beside the lock removed; the lock
 *           file stays the old holder's, held on disk all the same; the
 *           next holder's grant, owed, is refused (reply.c: never told
 *           it holds a lock whose file is the old holder's) and its hold
 *           ends; the old holder's artefact is released, as its user,
 *           when it does (a grant already told, or owed to nobody: when
 *           that hold ends later)
 *
 *   READERS: still prepared (the lock file the old holder's, the
 *   |        directory locked, the next holder installed and recorded),
 *   |        out of d->swaps; the next holder's OK stays owed (reply.c:
 *   |        lbd_swap_waiting), its waiter not lost, the lock never free
 *   | its timer: the last step tried again (swapwait.c: at full speed
 *   | 2 ms, twice as long after each refusal, up to 100 ms, for about
 *   | 10 s, then on up to 1 s; beyond the daemon's budget of handoffs
 *   | at full speed, limits.swap_readers_fast, or a user's beyond
 *   | LBD_SWAPWAIT_PER_UID: every second from the first)
 *   | until the readers have closed the lock file: finished, and the
 *   | iteration's settle sends the OK; the next holder's hold ends first
 *   | (its connection closed, BREAK, the stop, forgotten): tried once
 *   | more, else FAILED and ended with it (lbd_hold_uninstall)
 *   v
 *   finished, or FAILED
 *
 *   The old holder's RELEASE, when one ended its hold, is not answered
 *   meanwhile (lbd_swap_owe_release): its OK goes out with the next
 *   holder's, once the lock file is the next holder's (or, FAILED, once
 *   it is released).  Answered at once, it would let the old holder,
 *   told "released", find its own name in the lock file: were the daemon
 *   to die then, an AUTO handle of that process acquiring in-process
 *   takes the lock file naming it for its own lock, and the restarted
 *   daemon, finding the very file the handoff left, takes the last step
 *   and gives the lock back to the next holder: two holders.  Unanswered,
 *   a daemon that dies leaves the old holder's RELEASE lost with its
 *   connection: its library removes the lock file in-process if it is
 *   still its own (so the restarted daemon finds no file to finish the
 *   handoff on, and the next holder, never told, asks afresh), or finds
 *   it the next holder's.  A reader that never closes the lock file
 *   would hold the old holder's RELEASE up as long as the next holder's
 *   OK: once release_wait is over it is answered OK pending=1 instead
 *   (readers_wait), which tells the library never to take a lock file
 *   naming that owner for its own in-process (client/owners.c), so the
 *   two holders above cannot be made either; the library's release
 *   after a RELEASE lost with the daemon is done under the directory's
 *   lock, which the restarted daemon's last step takes too.
 *
 * One at a time, and before any other step for anyone: while a handoff is
 * owed its last step the daemon keeps its lock directory open (its
 * flock), and a client's path could lead into an open directory through
 * the daemon's /proc/self/fd (a magic link swapped in after the check of
 * the path); so a new handoff finishes the one owed first, and the one
 * owed is finished before any client's credentials are taken on
 * (lbd_creds_before_enter): no client step ever runs while the daemon
 * has a directory open but the one it is acting in.  The exception is a
 * handoff waiting for its readers (READERS), which keeps its directory
 * open across iterations: that happens only where a rename is refused
 * because another handle has the file replaced open, Windows, where no
 * path leads through the daemon's descriptors (lbd_os_fd_path answers
 * ENOSYS); Linux's rename() replaces a name whoever has the file open
 * (EBUSY there only for a mount point, which only root can make).
 *
 * Why nobody can take the lock in between: the lock file exists all the
 * time (its old holder's name until the last step), so every party sees
 * the lock held; the only party that removes another's lock file, a
 * breaker of stale locks (lockfs_break_stale), needs the directory's
 * lock, which the prepared handoff holds until its last step; the broker
 * itself knows the next holder as the holder.  A daemon that dies in
 * between has recorded the next holder and the old holder's identity: a
 * restarted daemon takes the last step before anything else when the
 * lock file is still the old holder's (reconcile.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "creds.h"
#include "daemon.h"
#include "hold.h"
#include "log.h"
#include "loop.h"
#include "pidwatch.h"
#include "reply.h"
#include "reqids.h"
#include "swap.h"
#include "swapwait.h"

/* How the RELEASE owed its answer by a handoff is answered (swap_answer). */
enum swap_told {
	SWAP_TOLD_NOBODY,       /* its connection closed, or the daemon stops */
	SWAP_TOLD_OK,           /* the lock file is not the old holder's */
	SWAP_TOLD_PENDING       /* release_wait is over: OK pending=1, the
	                           lock file naming the old holder still */
};

struct lbd_swap {
	struct lockfs_swap       fs;
	struct lbd_hold         *from;      /* the old holder, uninstalled,
	                                       its names made */
	struct lbd_hold         *to;
	int                      failed;    /* the last step failed: the
	                                       lock file is still from's */
	uv_timer_t              *readers;   /* READERS: the retry's timer
	                                       (its data: this swap) */
	struct lbd_swapwait      wait;      /* READERS: its waits
	                                       (swapwait.h) */
	uint64_t                 since_ms;  /* READERS: when it began
	                                       (uv_now) */
	struct lbd_uid_conns    *user;      /* READERS: counted in its
	                                       nreaders (to's user, which
	                                       outlives the swap; NULL:
	                                       none) */
	TAILQ_ENTRY(lbd_swap)    entry;     /* in d->swaps while owed */
	struct lbd_conn         *answer;    /* the RELEASE that ended from,
	                                       owed its OK until the lock
	                                       file is not from's (NULL:
	                                       none, or owed to nobody) */
	struct lbd_reqid         answer_id; /* its id, in answer's ids in
	                                       use */
	LIST_ENTRY(lbd_swap)     answer_entry; /* in answer->releases */
};

/* Prepares, as creds: see lbd_swap_prepare.  s filled. */
static int
swap_prepare_as(struct lbd_swap *s, struct lbd_creds *creds,
    struct lockfs_err *err)
{
	int r;

	if ((r = lbd_creds_enter(creds, err)) == 0) {
		r = lockfs_handoff_prepare(&s->from->fs, &s->to->fs, &s->fs,
		    err);
		lbd_creds_leave();
	}
	return r;
}

/* Before any step for a client: the handoff owed its last step takes it
 * (lbd_creds_before_enter). */
static void
swaps_hook(void *arg)
{
	lbd_swaps_finish(arg);
}

/* lbd_swap_prepare: see swap.h.  The handoff owed its last step, if any,
 * takes it first: one at a time. */
int
lbd_swap_prepare(struct lbd_hold *h, struct lbd_hold *next,
    struct lbd_creds *creds, struct lockfs_err *err)
{
	struct lbd      *d = h->lock->d;
	struct lbd_swap *s;
	int              r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return lockfs_fail(err, LB_ENOMEM, ENOMEM, "%s: handoff",
		    h->lock->path);
	s->from = h;
	s->to = next;
	lbd_orphan_unwatch(h);  /* a kept holder's exit no longer matters */
	lbd_swaps_finish(d);
	r = swap_prepare_as(s, creds, err);
	if (r != 0 || !s->fs.pending) {
		free(s);
		return r;
	}
	next->swap = s;
	next->swap_from = h;
	next->swap_from_id = &s->fs.from_id;
	next->dir_dev = s->fs.dir_dev;  /* the directory it is granted in */
	next->dir_ino = s->fs.dir_ino;
	TAILQ_INSERT_TAIL(&d->swaps, s, entry);
	lbd_creds_before_enter(swaps_hook, d);
	return 0;
}

/* lbd_swap_owe_release: see swap.h.  When no memory is left to keep
 * the id in use with, answered at once (logged: the lock file may still
 * name the releaser). */
void
lbd_swap_owe_release(struct lbd_hold *next, struct lbd_conn *c, uint64_t id)
{
	struct lbd_swap *s = next->swap;

	s->answer_id.id = id;
	if (lbd_reqid_add(c, &s->answer_id) != 0) {
		log_err("%s: out of memory; release answered before the "
		    "handoff is done", next->lock->path);
		lbd_conn_ok(c, id);
		return;
	}
	s->answer = c;
	LIST_INSERT_HEAD(&c->releases, s, answer_entry);
}

/* The RELEASE owed its answer by s, if any: answered as tell says. */
static void
swap_answer(struct lbd_swap *s, enum swap_told tell)
{
	struct lbd_conn *c = s->answer;

	if (c == NULL)
		return;
	LIST_REMOVE(s, answer_entry);
	lbd_reqid_del(c, &s->answer_id);
	s->answer = NULL;
	if (tell == SWAP_TOLD_OK)
		lbd_conn_ok(c, s->answer_id.id);
	else if (tell == SWAP_TOLD_PENDING)
		lbd_conn_ok_pending(c, s->answer_id.id);
}

/* lbd_swap_answers_forget: see swap.h. */
void
lbd_swap_answers_forget(struct lbd_conn *c)
{
	struct lbd_swap *s;

	while ((s = LIST_FIRST(&c->releases)) != NULL)
		swap_answer(s, SWAP_TOLD_NOBODY);
}

/* The old holder, its handoff finished: its traces (the link method's
 * old unique file, no lock any more) are removed after the iteration's
 * replies (lbd_swaps_tidy). */
static void
swap_drop_from(struct lbd_swap *s)
{
	LIST_INSERT_HEAD(&s->to->lock->d->handed, s->from, conn_entry);
}

/* lbd_swaps_tidy: see swap.h. */
void
lbd_swaps_tidy(struct lbd *d)
{
	struct lockfs_err err;
	struct lbd_hold  *h;

	while ((h = LIST_FIRST(&d->handed)) != NULL) {
		LIST_REMOVE(h, conn_entry);
		if (lbd_creds_enter(h->creds, &err) == 0) {
			lockfs_abandon(&h->fs);
			lbd_creds_leave();
		}
		lbd_hold_free(h);
	}
}

/* s failed, and its next holder's hold ends: the lock file, still the old
 * holder's, is released as that user, under the lock of its directory
 * (lbd_hold_release_artefact: while another holds that lock, a gone old
 * holder's lock file stays, a stale lock for a breaker). */
static void
swap_release_from(struct lbd_swap *s)
{
	struct lockfs_err err;
	int               r;

	r = lbd_hold_release_artefact(s->from, 0, &err);
	if (r != 0)
		log_err("%s: releasing the lock file that a failed handoff "
		    "left to pid %ld: %s", s->to->lock->path,
		    (long)s->from->fs.owner.pid, err.msg);
	lbd_hold_free(s->from);
}

/* Frees a retry timer once libuv has closed it. */
static void
readers_closed(uv_handle_t *t)
{
	free(t);
}

/* s leaves READERS (finished, failed or forgotten): its timer goes, and
 * it no longer counts for its user nor in the daemon's budget. */
static void
readers_stop(struct lbd_swap *s)
{
	if (s->readers == NULL)
		return;
	uv_close((uv_handle_t *)s->readers, readers_closed);
	s->readers = NULL;
	lbd_swapwait_end(&s->wait, &s->to->lock->d->swaps_fast);
	if (s->user != NULL)
		s->user->nreaders--;
	s->user = NULL;
}

static void readers_retry(uv_timer_t *t);

/* s enters READERS: its timer made, counted for its next holder's user
 * and, at full speed, in the daemon's budget (swapwait.h: beyond the
 * budget, beyond LBD_SWAPWAIT_PER_UID of its user's, or its user not
 * known, once a second; logged).  0, or -1 when no timer can be had. */
static int
readers_begin(struct lbd_swap *s)
{
	struct lbd           *d = s->to->lock->d;
	enum lbd_swapwait_why why;

	if ((s->readers = malloc(sizeof(*s->readers))) == NULL)
		return -1;
	uv_timer_init(d->loop, s->readers);
	s->readers->data = s;
	s->since_ms = uv_now(d->loop);
	if ((s->user = s->to->user) != NULL)
		s->user->nreaders++;
	why = lbd_swapwait_begin(&s->wait, &d->swaps_fast,
	    d->cfg.limits.swap_readers_fast,
	    s->user != NULL ? s->user->nreaders : 0);
	if (why == LBD_SWAPWAIT_BUDGET)
		log_debug("%s: the handoff to pid %ld is tried once a second: "
		    "beyond swap_readers_fast (%u handoffs waiting for readers "
		    "at full speed)", s->to->lock->path,
		    (long)s->to->fs.owner.pid, d->cfg.limits.swap_readers_fast);
	else if (why == LBD_SWAPWAIT_USER)
		log_debug("%s: the handoff to pid %ld is tried once a second: "
		    "its user has %d handoffs waiting for readers already",
		    s->to->lock->path, (long)s->to->fs.owner.pid,
		    LBD_SWAPWAIT_PER_UID);
	return 0;
}

/* s's last step was refused for a reader's sake: READERS (see the top of
 * this file), its timer started or started again; the old holder's
 * RELEASE, owed its answer for release_wait seconds, is answered OK
 * pending=1.  0, or -1 when no timer can be had (s is then failed as any
 * other last step). */
static int
readers_wait(struct lbd_swap *s)
{
	struct lbd *d = s->to->lock->d;
	uint64_t    ms;

	if (s->readers == NULL && readers_begin(s) != 0)
		return -1;
	ms = lbd_swapwait_next(&s->wait, &d->swaps_fast);
	if (s->answer != NULL && uv_now(d->loop) - s->since_ms >=
	    (uint64_t)(d->cfg.release_wait * 1000)) {
		log_info("%s: the handoff from pid %ld to pid %ld still waits "
		    "for the lock file's readers after %g s: its release is "
		    "answered pending", s->to->lock->path,
		    (long)s->from->fs.owner.pid, (long)s->to->fs.owner.pid,
		    d->cfg.release_wait);
		swap_answer(s, SWAP_TOLD_PENDING);
	}
	uv_timer_start(s->readers, readers_retry, ms, 0);
	return 0;
}

/* Takes the last step of s, owed to h (out of d->swaps), as h's user:
 * finished (s freed, the old holder's traces to go); READERS when it is
 * refused for a reader's sake and readers may wait; else FAILED. */
static void
swap_step(struct lbd_hold *h, struct lbd_swap *s, int readers)
{
	struct lockfs_err err;
	int               r;

	if ((r = lbd_creds_enter(h->creds, &err)) == 0) {
		r = lockfs_handoff_finish(&s->fs, &err);
		lbd_creds_leave();
	}
	if (r != 0 && readers && err.sys_errno == EBUSY && s->fs.pending &&
	    readers_wait(s) == 0) {
		log_debug("%s: the handoff from pid %ld to pid %ld waits for "
		    "the lock file's readers (%s)", h->lock->path,
		    (long)s->from->fs.owner.pid, (long)h->fs.owner.pid,
		    err.msg);
		return;
	}
	readers_stop(s);
	if (r != 0) {
		if (lbd_creds_enter(h->creds, &err) == 0) {
			lockfs_handoff_cancel(&s->fs);
			lbd_creds_leave();
		}
		log_err("%s: the handoff from pid %ld to pid %ld cannot be "
		    "finished (%s): the lock file stays the old holder's, "
		    "released when the new holder's hold ends",
		    h->lock->path, (long)s->from->fs.owner.pid,
		    (long)h->fs.owner.pid, err.msg);
		s->failed = 1;
		h->swap_from = NULL;
		h->swap_from_id = NULL;
		return;
	}
	h->swap = NULL;
	h->swap_from = NULL;
	h->swap_from_id = NULL;
	swap_answer(s, SWAP_TOLD_OK);   /* the lock file is h's now */
	swap_drop_from(s);
	free(s);
}

/* READERS: the timer of a handoff waiting for its lock file's readers:
 * the last step tried again; once taken, the iteration's settle sends
 * the next holder's OK (lbd_want_flush). */
static void
readers_retry(uv_timer_t *t)
{
	struct lbd_swap *s = t->data;
	struct lbd      *d = s->to->lock->d;

	swap_step(s->to, s, 1);
	lbd_want_flush(d);
}

/* lbd_swap_finish: see swap.h.  A handoff waiting for its readers
 * (READERS) is tried once more, and fails if still refused: its next
 * holder's hold ends. */
void
lbd_swap_finish(struct lbd_hold *h)
{
	struct lbd_swap *s;

	if (h == NULL || (s = h->swap) == NULL)
		return;
	lbd_creds_before_enter(NULL, NULL);     /* the one owed: this one */
	if (s->failed) {
		h->swap = NULL;
		h->swap_from = NULL;
		h->swap_from_id = NULL;
		swap_release_from(s);
		swap_answer(s, SWAP_TOLD_OK);   /* the lock file released */
		free(s);
		return;
	}
	if (s->readers == NULL)
		TAILQ_REMOVE(&h->lock->d->swaps, s, entry);
	swap_step(h, s, 0);
}

/* lbd_swap_waiting: see swap.h. */
int
lbd_swap_waiting(const struct lbd_hold *h)
{
	return h->swap != NULL && h->swap->readers != NULL;
}

/* lbd_swap_failed: see swap.h. */
int
lbd_swap_failed(const struct lbd_hold *h)
{
	return h->swap != NULL && h->swap->failed;
}

/* lbd_swaps_finish: see swap.h. */
void
lbd_swaps_finish(struct lbd *d)
{
	struct lbd_swap *s;

	while ((s = TAILQ_FIRST(&d->swaps)) != NULL) {
		lbd_creds_before_enter(NULL, NULL);
		TAILQ_REMOVE(&d->swaps, s, entry);
		swap_step(s->to, s, 1);
	}
}

/* lbd_swap_forget: see swap.h. */
void
lbd_swap_forget(struct lbd_hold *h)
{
	struct lbd_swap *s = h->swap;

	if (s == NULL)
		return;
	if (!s->failed) {
		lbd_swap_finish(h);     /* may fail: forgotten then */
		if ((s = h->swap) == NULL)
			return;
	}
	h->swap = NULL;
	h->swap_from = NULL;
	h->swap_from_id = NULL;
	swap_answer(s, SWAP_TOLD_NOBODY);       /* the lock file still the
	                                           old holder's */
	lbd_hold_free(s->from);
	free(s);
}
