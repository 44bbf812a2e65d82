/*
 * watch.c: how the waiters of a lock held outside the broker learn that
 * its artefact is gone: a watch of its directory, and a poll.
 *
 * One inotify watch (a uv_fs_event_t) per directory, shared by every lock
 * of that directory that has waiters while held outside.  An event is
 * dispatched by its name to the one lock whose artefact has that name (the
 * sqlite method: to the directory's sqlite locks, when the database file
 * changes); every other name is ignored, so the unique files that the
 * daemon's own tries make and remove wake nobody, and an event costs one
 * table look-up, not one call per waiting lock.
 *
 * Watches are bounded: per user (watches_per_uid: the directories its
 * waits are watched in, counted once per directory) and in all (watches,
 * and never more than half the kernel's fs.inotify.max_user_watches).  A
 * lock that gets no watch (a bound reached, or the directory cannot be
 * watched with its waiter's credentials) is not refused: it is polled.
 *
 * A change of a sqlite lock database may free any of the directory's
 * sqlite locks: they are looked at a turn at a time (about
 * LBD_DUE_TURN_NS of looks per loop iteration, lbd_watches_due), and a
 * lock already due is not looked at twice, so that a user who keeps
 * writing a database its many waits are on costs a bounded share of the
 * daemon's time.
 *
 * Every watched lock is polled too, as a safety net (network file systems
 * send no events): about every foreign_poll seconds, but polls are looks
 * (looks.c): at most LBD_LOOKS_PER_SECOND of them a second in all, spread
 * over time, and about LBD_LOOKS_TURN_NS of them per loop iteration, so
 * that many waits cost a bounded amount of work whoever makes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "looks.h"
#include "loop.h"
#include "watch.h"

#define WATCH_BUCKETS        4096
#define LBD_DUE_TURN_NS      500000ull  /* 0.5 ms */

/* A user's share of a watch: how many of its locks use it. */
struct watch_charge {
	struct lbd_uid_conns *user;
	unsigned              n;
	struct watch_charge  *next;
};

struct lbd_dirwatch {
	struct lbd           *d;
	char                 *dir;
	uv_fs_event_t        *ev;
	struct lbd_locklist   locks;
	unsigned              nlocks;
	unsigned              busy;      /* dispatching: not freed till done */
	struct watch_charge  *charges;
	struct lbd_dirwatch  *hash_next;
};

/* FNV-1a of a directory name. */
static size_t
dir_hash(const char *dir)
{
	size_t h = 14695981039346656037ull;

	for (; *dir != '\0'; dir++) {
		h ^= (unsigned char)*dir;
		h *= 1099511628211ull;
	}
	return h % WATCH_BUCKETS;
}

/*
 * lbd_watches_init: an empty table of watched directories.  0, or -1 when
 * out of memory.
 */
int
lbd_watches_init(struct lbd *d)
{
	d->nwbuckets = WATCH_BUCKETS;
	d->nwatches = 0;
	d->npolled = 0;
	TAILQ_INIT(&d->due);
	d->wbuckets = calloc(d->nwbuckets, sizeof(*d->wbuckets));
	return d->wbuckets == NULL ? -1 : 0;
}

/* Frees a handle once libuv is done with it. */
static void
handle_free(uv_handle_t *h)
{
	free(h);
}

/* How long until the next look at a polled lock, in ms: about
 * foreign_poll, or longer when more locks are polled than the looks'
 * rate allows. */
static uint64_t
poll_delay(struct lbd *d)
{
	return lbd_looks_delay_ms(d->cfg.foreign_poll, d->npolled);
}

/* The poll's turn: look again (l may be freed by the look); or, when
 * this loop iteration's looks have taken their budget already (all
 * timers due fire in one iteration; a look at a busy sqlite database
 * waits for it), a little later. */
static void
poll_tick(uv_timer_t *t)
{
	struct lbd_lock *l = t->data;
	struct lbd      *d = l->d;
	uint64_t         t0 = uv_hrtime();

	if (lbd_looks_turn_spent(d)) {
		uv_timer_start(t, poll_tick, lbd_looks_later_ms(), 0);
		return;
	}
	uv_timer_start(t, poll_tick, poll_delay(d), 0);
	lbd_lock_serve(l);
	lbd_looks_turn_took(d, t0);
}

/* Frees w once it has no locks and is not dispatching an event. */
static void
dirwatch_put(struct lbd_dirwatch *w)
{
	struct lbd           *d = w->d;
	struct lbd_dirwatch **pp;

	if (w->nlocks > 0 || w->busy > 0)
		return;
	pp = &d->wbuckets[dir_hash(w->dir)];
	while (*pp != w)
		pp = &(*pp)->hash_next;
	*pp = w->hash_next;
	d->nwatches--;
	if (w->ev != NULL)
		uv_close((uv_handle_t *)w->ev, handle_free);
	free(w->dir);
	free(w);
}

/* Serves every lock of w (an event without a name, or an error). */
static void
dirwatch_serve_all(struct lbd_dirwatch *w)
{
	struct lbd_lock *l, *next;

	for (l = LIST_FIRST(&w->locks); l != NULL; l = next) {
		next = LIST_NEXT(l, watch_entry);
		lbd_lock_serve(l);      /* may leave w, or be freed */
	}
}

/* Something changed in w's directory: the lock whose artefact is called
 * name may be free now. */
static void
dirwatch_event(uv_fs_event_t *e, const char *name, int events, int status)
{
	static const unsigned methods[] = { LB_LINK, LB_SYMLINK, LB_MKDIR,
	    LB_PIDFILE };
	struct lbd_dirwatch *w = e->data;
	struct lbd_lock     *l;
	char                 file[PATH_MAX];
	size_t               i;
	int                  n;

	(void)events;
	w->busy++;
	if (status < 0 || name == NULL) {
		dirwatch_serve_all(w);
		goto out;
	}
	n = snprintf(file, sizeof(file), "%s%s%s", w->dir,
	    lockfs_os_path_root(w->dir) == strlen(w->dir) ? "" : "/", name);
	if (n < 0 || (size_t)n >= sizeof(file))
		goto out;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		/* The table is keyed by path: the lock of an artefact
		 * PATH.lock is PATH's, but for the pidfile method, whose
		 * artefact is its path. */
		if (methods[i] != LB_PIDFILE) {
			if (n < 5 || strcmp(file + n - 5, ".lock") != 0)
				continue;
			file[n - 5] = '\0';
		}
		if ((l = lbd_lock_find(w->d, file, methods[i])) != NULL &&
		    l->watch == w)
			lbd_lock_serve(l);
		if (methods[i] != LB_PIDFILE)
			file[n - 5] = '.';
	}
	if (strcmp(name, ".lockbroker.sqlite") != 0)
		goto out;
	LIST_FOREACH(l, &w->locks, watch_entry)
		if (l->method == LB_SQLITE && !l->due) {
			l->due = 1;
			TAILQ_INSERT_TAIL(&w->d->due, l, due_entry);
			lbd_want_flush(w->d);   /* the iteration must end */
		}
out:
	w->busy--;
	dirwatch_put(w);
}

/* The directory that holds l's artefact (and the sqlite database), into
 * buf: a root kept whole ("/", "C:/"; lockfs_dir_len). */
static void
lock_dir(const struct lbd_lock *l, char *buf, size_t size)
{
	size_t n = lockfs_dir_len(l->path);

	if (n >= size)
		n = size - 1;
	memcpy(buf, l->path, n);
	buf[n] = '\0';
}

/* w's directory's watch, made for user u as c's credentials allow.  NULL
 * when there is none to be had (bounds, permissions, memory). */
static struct lbd_dirwatch *
dirwatch_get(struct lbd *d, const char *dir, struct lbd_conn *c)
{
	struct lockfs_err    err;
	struct lbd_dirwatch *w;
	size_t               h = dir_hash(dir);
	int                  r = -1;

	for (w = d->wbuckets[h]; w != NULL; w = w->hash_next)
		if (strcmp(w->dir, dir) == 0)
			return w;
	if (d->nwatches >= d->watches_max)
		return NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->dir = strdup(dir)) == NULL ||
	    (w->ev = malloc(sizeof(*w->ev))) == NULL)
		goto out;
	w->d = d;
	LIST_INIT(&w->locks);
	uv_fs_event_init(d->loop, w->ev);
	w->ev->data = w;
	/* As the waiter: the daemon watches only what it could read. */
	if (lbd_creds_enter(c->creds, &err) == 0) {
		r = uv_fs_event_start(w->ev, dirwatch_event, dir, 0);
		lbd_creds_leave();
	}
	if (r != 0) {
		log_debug("cannot watch %s for uid %ld (%s); polling", dir,
		    (long)c->uid, r < 0 ? uv_strerror(r) : err.msg);
		uv_close((uv_handle_t *)w->ev, handle_free);
		w->ev = NULL;
	}
out:
	if (r != 0) {
		if (w != NULL && w->ev != NULL)
			free(w->ev);
		if (w != NULL)
			free(w->dir);
		free(w);
		return NULL;
	}
	w->hash_next = d->wbuckets[h];
	d->wbuckets[h] = w;
	d->nwatches++;
	return w;
}

/* Counts a lock of user u in w: 0, or -1 when u may not watch one more
 * directory (watches_per_uid) or no memory is left. */
static int
charge_add(struct lbd_dirwatch *w, struct lbd_uid_conns *u)
{
	struct watch_charge *ch;

	for (ch = w->charges; ch != NULL; ch = ch->next)
		if (ch->user == u) {
			ch->n++;
			return 0;
		}
	if (u->nwatches >= w->d->cfg.limits.watches_per_uid ||
	    (ch = calloc(1, sizeof(*ch))) == NULL)
		return -1;
	ch->user = u;
	ch->n = 1;
	ch->next = w->charges;
	w->charges = ch;
	u->nwatches++;
	return 0;
}

/* Takes a lock of user u out of w's count. */
static void
charge_del(struct lbd_dirwatch *w, struct lbd_uid_conns *u)
{
	struct watch_charge **pp, *ch;

	for (pp = &w->charges; (ch = *pp) != NULL; pp = &ch->next)
		if (ch->user == u)
			break;
	if (ch == NULL || --ch->n > 0)
		return;
	*pp = ch->next;
	free(ch);
	u->nwatches--;
	lbd_uid_put(u);
}

/*
 * lbd_lock_watch: l is held outside the broker and has waiters, c's the
 * head one: has l polled, and watched in its directory's watch when the
 * bounds allow (counted as c's user's).  Does nothing when l is watched
 * or polled already.
 */
void
lbd_lock_watch(struct lbd_lock *l, struct lbd_conn *c)
{
	struct lbd          *d = l->d;
	struct lbd_dirwatch *w;
	char                 dir[PATH_MAX];

	if (l->poll == NULL && (l->poll = malloc(sizeof(*l->poll))) != NULL) {
		uv_timer_init(d->loop, l->poll);
		l->poll->data = l;
		d->npolled++;
		uv_timer_start(l->poll, poll_tick, poll_delay(d), 0);
	}
	if (l->watch != NULL || c->uid_conns == NULL)
		return;
	lock_dir(l, dir, sizeof(dir));
	if ((w = dirwatch_get(d, dir, c)) == NULL)
		return;
	if (charge_add(w, c->uid_conns) != 0) {
		dirwatch_put(w);
		return;
	}
	l->watch = w;
	l->watch_user = c->uid_conns;
	LIST_INSERT_HEAD(&w->locks, l, watch_entry);
	w->nlocks++;
}

/*
 * lbd_watches_due: the end of a loop iteration: looks at the sqlite locks
 * due (see above) for about LBD_DUE_TURN_NS, the rest in the next turns.
 */
void
lbd_watches_due(struct lbd *d)
{
	struct lbd_lock *l;
	uint64_t         deadline = uv_hrtime() + LBD_DUE_TURN_NS;

	while ((l = TAILQ_FIRST(&d->due)) != NULL) {
		TAILQ_REMOVE(&d->due, l, due_entry);
		l->due = 0;
		lbd_lock_serve(l);      /* may free l */
		if (uv_hrtime() >= deadline)
			break;
	}
	if (!TAILQ_EMPTY(&d->due))
		lbd_want_flush(d);
}

/* lbd_lock_unwatch: l is no longer watched, nor polled. */
void
lbd_lock_unwatch(struct lbd_lock *l)
{
	struct lbd_dirwatch *w = l->watch;

	if (l->due) {
		TAILQ_REMOVE(&l->d->due, l, due_entry);
		l->due = 0;
	}

	if (w != NULL) {
		LIST_REMOVE(l, watch_entry);
		w->nlocks--;
		l->watch = NULL;
		charge_del(w, l->watch_user);
		l->watch_user = NULL;
		dirwatch_put(w);
	}
	if (l->poll != NULL) {
		uv_close((uv_handle_t *)l->poll, handle_free);
		l->poll = NULL;
		l->d->npolled--;
	}
}
