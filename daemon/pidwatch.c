/*
 * pidwatch.c: the processes that kept holds and orphans are watched for.
 *
 * A kept hold (ACQUIRE pid=) and an orphan of the previous run end when
 * their process exits.  Each watched process (pid and start time: a
 * reused pid is another process) has one watch, shared by every such
 * hold of it and reference counted: the OS's watch of its exit (a pidfd
 * polled by the loop on Linux, the process's handle waited for by the
 * thread pool on Windows), or, where the OS gives none or refuses it
 * (valgrind), a timer that looks once a second.  When the process exits
 * every hold of the watch ends (reconcile.c, lbd_orphan_exited): in
 * turns with the holds of
 * closed connections (ending.c), about turn_us of them per loop
 * iteration, so that a process that exits with thousands of kept holds
 * does not stall everyone; until its turn each stays held by the exited
 * process, found by no request (lbd_orphan_exiting), and the watch goes
 * with its last hold.  The OS's watch comes from the OS layer (os.h:
 * lbd_os_proc_watch), the looks from lockfs's (lockfs_owner_of_pid); a
 * port without such watches watches by the timer alone.
 *
 *   WATCHED --its process exits (the OS's watch, or the look)--> EXITED
 *      |                                  (watch or timer gone, out of
 *      |                                  the table, in d->endings: its
 *      |                                  holds end a turn at a time)
 *      | its last hold gone (released,               |
 *      | broken, reclaimed)                          | its turn finds no
 *      v                                             | hold left
 *    freed <-----------------------------------------+
 *
 * A pidfd is a descriptor (and on Windows each watch a handle and a
 * wait: counted alike), and descriptors are the budget that new
 * connections need (d->fd_conns, main.c), so pidfds are bounded twice: in
 * all, to half of that budget (the other half is the connections' alone,
 * whatever any user's kept holds), and per user, to pidfds_per_uid (the
 * user of the hold that made the watch).  Beyond either bound a process
 * is watched all the same, by the timer, which takes no descriptor: an
 * ACQUIRE pid= is never refused for want of a pidfd.  The timers' first
 * looks are spread over the second (by pid), so that many processes
 * watched at once are not all looked at in one turn of the loop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "ending.h"
#include "log.h"
#include "os.h"
#include "pidwatch.h"
#include "reconcile.h"

/* A watched process: the holds that end when it exits. */
struct lbd_pidwatch {
	struct lbd              *d;
	pid_t                    pid;
	unsigned long long       start;     /* its start time: not a reused
	                                       pid's process */
	unsigned                 refs;      /* its holds, and a callback
	                                       running */
	struct lbd_holds         holds;     /* by pw_entry */
	struct lbd_os_proc_watch *exit;     /* the OS's watch of its exit
	                                       (a pidfd), or NULL */
	struct lbd_uid_conns    *user;      /* with exit: the user it counts
	                                       for (pidfds_per_uid) */
	uv_timer_t              *timer;     /* without exit: a look a
	                                       second */
	int                      listed;    /* in d->pidwatches */
	LIST_ENTRY(lbd_pidwatch) entry;
	int                      exited;    /* its holds end in turns */
	struct lbd_ending        ending;    /* their turns (ending.c) */
};

LIST_HEAD(lbd_pidwatches, lbd_pidwatch);

#define PW_BUCKETS 256

/* The bucket of (pid). */
static struct lbd_pidwatches *
pw_bucket(struct lbd *d, pid_t pid)
{
	return &d->pidwatches[(unsigned)pid % PW_BUCKETS];
}

/* The watch of process (pid, start), or NULL. */
static struct lbd_pidwatch *
pw_find(struct lbd *d, pid_t pid, unsigned long long start)
{
	struct lbd_pidwatch *w;

	if (d->pidwatches == NULL)
		return NULL;
	LIST_FOREACH(w, pw_bucket(d, pid), entry)
		if (w->pid == pid && w->start == start)
			return w;
	return NULL;
}

/* Frees a handle once libuv is done with it. */
static void
handle_free(uv_handle_t *h)
{
	free(h);
}

/* Stops watching: the OS's watch or the timer goes, and the watch leaves
 * the table (a later hold of the same process gets a watch of its
 * own). */
static void
pw_stop(struct lbd_pidwatch *w)
{
	if (w->timer != NULL) {
		uv_close((uv_handle_t *)w->timer, handle_free);
		w->timer = NULL;
	}
	if (w->exit != NULL) {
		lbd_os_proc_unwatch(w->exit);
		w->exit = NULL;
		w->d->npidfds--;
		w->user->npidfds--;
		lbd_uid_put(w->user);
		w->user = NULL;
	}
	if (w->listed) {
		LIST_REMOVE(w, entry);
		w->listed = 0;
	}
}

/* Drops a reference to w; the last one frees it. */
static void
pw_unref(struct lbd_pidwatch *w)
{
	if (--w->refs > 0)
		return;
	pw_stop(w);
	free(w);
}

/* Exited w's turn (ending.c): ends its holds until none is left (the
 * queue's reference dropped: 0) or deadline passes (1). */
static int
pw_end_some(struct lbd_ending *e, uint64_t deadline)
{
	struct lbd_pidwatch *w = (struct lbd_pidwatch *)((char *)e -
	    offsetof(struct lbd_pidwatch, ending));
	struct lbd_hold     *h;

	while ((h = LIST_FIRST(&w->holds)) != NULL) {
		lbd_orphan_unwatch(h);
		lbd_orphan_exited(h);
		if (uv_hrtime() >= deadline)
			break;
	}
	if (!LIST_EMPTY(&w->holds))
		return 1;
	pw_unref(w);
	return 0;
}

/* w's process exited: every hold of it ends, in turns (pw_end_some); w
 * is referenced by the queue until then. */
static void
pw_exited(struct lbd_pidwatch *w)
{
	pw_stop(w);
	w->exited = 1;
	w->refs++;
	w->ending.end_some = pw_end_some;
	lbd_ending_add(w->d, &w->ending);
}

/* The OS's watch says the process exited. */
static void
pw_exit_seen(void *arg)
{
	pw_exited(arg);
}

/* Without the OS's watch: has the process gone (or its pid been
 * reused)? */
static void
pw_look(uv_timer_t *t)
{
	struct lbd_pidwatch *w = t->data;
	struct lockfs_owner  o;

	if (lockfs_owner_of_pid(&o, w->pid, 0) == -1 ? errno == ESRCH :
	    o.start != w->start)
		pw_exited(w);
}

/* May user u's new watch have a pidfd: is there room in the pidfds'
 * half of the descriptor budget, in the budget itself, and in u's
 * pidfds_per_uid? */
static int
pw_pidfd_affordable(struct lbd *d, struct lbd_uid_conns *u)
{
	return u != NULL && u->npidfds < d->cfg.limits.pidfds_per_uid &&
	    d->npidfds < d->fd_conns / 2 &&
	    (uint64_t)d->nconns + d->npidfds < d->fd_conns;
}

/* Starts watching w's process for user uid: the OS's watch of its exit
 * when it gives one and the bounds afford it (pw_pidfd_affordable),
 * otherwise a timer. */
static void
pw_start(struct lbd *d, struct lbd_pidwatch *w, uid_t uid)
{
	struct lbd_uid_conns *u = lbd_uid_get(d, uid);

	if (pw_pidfd_affordable(d, u)) {
		if ((w->exit = lbd_os_proc_watch(d->loop, w->pid, w->start,
		    pw_exit_seen, w)) != NULL) {
			d->npidfds++;
			u->npidfds++;
			w->user = u;
			log_debug("process %ld: its exit watched",
			    (long)w->pid);
			return;
		}
		log_debug("process %ld: its exit not watched (%s): looked at "
		    "once a second", (long)w->pid, strerror(errno));
	}
	if (u != NULL)
		lbd_uid_put(u);
	if ((w->timer = malloc(sizeof(*w->timer))) == NULL)
		return;
	uv_timer_init(d->loop, w->timer);
	w->timer->data = w;
	uv_timer_start(w->timer, pw_look, 1 + (uint64_t)w->pid % 1000, 1000);
}

/* lbd_orphan_watch: h (an orphan or a kept hold) joins the watch of its
 * process (h->fs.owner: pid, start time), made if there is none (its
 * pidfd, if it gets one, counts for h's user).  Out of
 * memory: h is not watched (it ends with the grace period, or kept, when
 * its lock is released). */
void
lbd_orphan_watch(struct lbd *d, struct lbd_hold *h)
{
	struct lbd_pidwatch *w;
	size_t               i;

	if (h->pidwatch != NULL)
		return;
	if (d->pidwatches == NULL) {
		if ((d->pidwatches = calloc(PW_BUCKETS,
		    sizeof(*d->pidwatches))) == NULL)
			return;
		for (i = 0; i < PW_BUCKETS; i++)
			LIST_INIT(&d->pidwatches[i]);
	}
	if ((w = pw_find(d, h->fs.owner.pid, h->fs.owner.start)) == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return;
		w->d = d;
		w->pid = h->fs.owner.pid;
		w->start = h->fs.owner.start;
		LIST_INIT(&w->holds);
		LIST_INSERT_HEAD(pw_bucket(d, w->pid), w, entry);
		w->listed = 1;
		pw_start(d, w, h->uid);
	}
	w->refs++;
	LIST_INSERT_HEAD(&w->holds, h, pw_entry);
	h->pidwatch = w;
}

/* lbd_orphan_exiting: whether h's process has exited, h waiting for
 * its turn to end (nobody's meanwhile: no request finds it). */
int
lbd_orphan_exiting(const struct lbd_hold *h)
{
	return h->pidwatch != NULL && h->pidwatch->exited;
}

/* lbd_orphan_unwatch: h leaves its process's watch, if it is in one (the
 * last hold to leave ends the watch). */
void
lbd_orphan_unwatch(struct lbd_hold *h)
{
	struct lbd_pidwatch *w = h->pidwatch;

	if (w == NULL)
		return;
	LIST_REMOVE(h, pw_entry);
	h->pidwatch = NULL;
	pw_unref(w);
}
