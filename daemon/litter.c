/*
 * litter.c: the next holders' unique files that a tidy at start left to
 * their live processes, and old holders' unique files of another user
 * than the tidy's (docs/RELIABILITY.md).  A handoff the previous
 * daemon prepared and never recorded leaves the next holder's unique file
 * (a file with one link, no lock); the tidy of its directory removes it
 * when its process is gone, and leaves it to a live one, which may ask
 * again and take the name back (then its release removes it).  One that
 * dies first would leave it for good: each is watched here, in one list,
 * looked at once a second by one timer (stopped while none is), and
 * removed under the directory's lock as the user the tidy ran as once its
 * process is gone, while it is still that very file with one link
 * (lockfs_unique_litter).  An old holder's unique file of another user
 * than the tidy's (a finished handoff between two users; its name from
 * the record) is watched the same and looked at as its owner, with the
 * credentials a login gives it (lbd_creds_of_user): what that user could
 * remove itself.
 *
 *   watched --(its process gone)--> removed, forgotten
 *      |
 *      +--(gone, reused as a lock, another file there, its directory
 *          replaced)--> forgotten, nothing touched
 */
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "fs.h"
#include "litter.h"
#include "log.h"

/* One file watched. */
struct litter {
	struct litter        *next;
	struct lbd_creds     *creds;    /* its owner's, looked at as */
	uid_t                 uid;      /* that owner */
	char                 *dir;      /* its directory, as lockfs names it */
	struct lockfs_fs_info dir_fi;   /* that directory's identity */
	struct lockfs_fs_info fi;       /* the file's identity */
	char                  base[];   /* its name in dir */
};

/* Every file watched, and their timer. */
struct lbd_litters {
	struct litter *head;
	unsigned       n;
	int            full_told;       /* the first file left unwatched
	                                   was logged */
	uv_timer_t     timer;
};

/* How many of ls's files are uid's. */
static unsigned
litters_of(const struct lbd_litters *ls, uid_t uid)
{
	const struct litter *e;
	unsigned             n = 0;

	for (e = ls->head; e != NULL; e = e->next)
		n += e->uid == uid;
	return n;
}

#define LITTER_LOOK_MS 1000

/* Frees e. */
static void
litter_free(struct litter *e)
{
	lbd_creds_unref(e->creds);
	free(e->dir);
	free(e);
}

/* Frees the watch once libuv has closed its timer. */
static void
litters_closed(uv_handle_t *t)
{
	free(t->data);
}

/* The timer: each file looked at once, as its user; those done with
 * (removed, or nothing to do any more) forgotten; the timer stopped when
 * none is left. */
static void
litters_look(uv_timer_t *t)
{
	struct lbd_litters *ls = t->data;
	struct litter     **pe = &ls->head, *e;
	struct lockfs_err   err;
	int                 r;

	while ((e = *pe) != NULL) {
		r = 0;
		if (lbd_creds_enter(e->creds, &err) == 0) {
			r = lockfs_unique_litter(e->dir, &e->dir_fi, e->base,
			    &e->fi);
			lbd_creds_leave();
		}
		if (r == 0) {
			pe = &e->next;
			continue;
		}
		if (r == 1)
			log_info("%s/%s: removed, the unique file of a handoff "
			    "the previous daemon did not finish, its process "
			    "gone", e->dir, e->base);
		*pe = e->next;
		ls->n--;
		litter_free(e);
	}
	if (ls->head == NULL)
		uv_timer_stop(&ls->timer);      /* lbd_litter_left starts it */
}

/* d's watch, made (its timer started) when there is none; NULL when out
 * of memory. */
static struct lbd_litters *
litters_get(struct lbd *d)
{
	struct lbd_litters *ls = d->litters;

	if (ls != NULL)
		return ls;
	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return NULL;
	uv_timer_init(d->loop, &ls->timer);
	ls->timer.data = ls;
	/* Never what keeps the loop running. */
	uv_unref((uv_handle_t *)&ls->timer);
	d->litters = ls;
	return ls;
}

/* lbd_litter_left: see litter.h. */
void
lbd_litter_left(void *arg, const struct lockfs_fs_info *dir,
    const char *base, const struct lockfs_fs_info *fi)
{
	struct lbd_hold    *h = arg;
	struct lbd         *d = h->lock->d;
	struct lbd_litters *ls = NULL;
	struct lockfs_lock  fs;
	struct lockfs_err   err;
	struct litter      *e = NULL;
	size_t              len = strlen(base);
	const char         *why = "out of memory";

	/* The directory by its own name (h's may be pinned to a descriptor
	 * for the judgement: /proc/self/fd/N). */
	if (lockfs_init(&fs, h->lock->path, LB_LINK, 0, &err) != 0) {
		why = err.msg;
		goto fail;      /* e NULL */
	}
	if ((ls = litters_get(d)) != NULL && (ls->n >= LBD_LITTER_MAX ||
	    litters_of(ls, fi->uid) >= LBD_LITTER_PER_UID))
		why = "too many watched";
	else if (ls != NULL &&
	    (e = calloc(1, sizeof(*e) + len + 1)) != NULL &&
	    (e->dir = strdup(fs.dir)) != NULL) {
		/* Looked at as its owner: the tidy's user, or another (a
		 * handoff between two users) as its login makes it. */
		e->creds = fi->uid == h->uid ? lbd_creds_ref(h->creds) :
		    lbd_creds_of_user(fi->uid);
		why = e->creds != NULL ? NULL : "its owner has no "
		    "user-database entry to act as";
	}
	lockfs_fini(&fs);
	if (why != NULL)
		goto fail;
	memcpy(e->base, base, len + 1);
	e->dir_fi = *dir;
	e->fi = *fi;
	e->uid = fi->uid;
	e->next = ls->head;
	ls->head = e;
	ls->n++;
	if (!uv_is_active((uv_handle_t *)&ls->timer))
		uv_timer_start(&ls->timer, litters_look, LITTER_LOOK_MS,
		    LITTER_LOOK_MS);
	log_debug("%s: %s (uid %ld's) left to its live process, or to a look "
	    "as its owner; removed once it is gone", h->lock->path, base,
	    (long)fi->uid);
	return;
fail:
	if (e != NULL)
		free(e->dir);
	free(e);
	if (ls != NULL && ls->full_told)
		return;
	if (ls != NULL)
		ls->full_told = 1;
	log_info("%s: %s, left by a handoff the previous daemon did not "
	    "finish, is left to its live process, not watched: %s (at most "
	    "%u files, %u of one user's; this is the first of those left "
	    "so, the others are not logged)", h->lock->path, base, why,
	    LBD_LITTER_MAX, LBD_LITTER_PER_UID);
}

/* lbd_litter_close: see litter.h. */
void
lbd_litter_close(struct lbd *d)
{
	struct lbd_litters *ls = d->litters;
	struct litter      *e;

	if (ls == NULL)
		return;
	while ((e = ls->head) != NULL) {
		ls->head = e->next;
		log_info("%s/%s: left at the stop, its process alive",
		    e->dir, e->base);
		litter_free(e);
	}
	d->litters = NULL;
	uv_close((uv_handle_t *)&ls->timer, litters_closed);
}
