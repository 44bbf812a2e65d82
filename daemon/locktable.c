/*
 * locktable.c: the table of locks the broker knows: a hash table keyed by
 * (path, method), which names one lock file, holding each lock while it
 * has a holder or waiters, and no longer.  A lock keeps its path only:
 * its lock file is made from it when a step needs it (lbd_lock_file).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "daemon.h"
#include "locktable.h"
#include "os.h"
#include "log.h"
#include "readers.h"
#include "watch.h"

#define LOCKS_MIN_BUCKETS 1024

/* FNV-1a of the key. */
static size_t
lock_hash(const char *path, unsigned method)
{
	size_t h = 14695981039346656037ull;

	for (; *path != '\0'; path++) {
		h ^= (unsigned char)*path;
		h *= 1099511628211ull;
	}
	return h ^ method;
}

/* lbd_locks_init: an empty table.  0, or -1 when out of memory. */
int
lbd_locks_init(struct lbd *d)
{
	d->nbuckets = LOCKS_MIN_BUCKETS;
	d->nlocks = 0;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	return d->buckets == NULL ? -1 : 0;
}

/* Doubles the table when it is fuller than one lock per bucket. */
static void
locks_grow(struct lbd *d)
{
	struct lbd_lock **b, *l, *next;
	size_t            n = d->nbuckets * 2, i, h;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return;         /* longer chains; still correct */
	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = next) {
			next = l->hash_next;
			h = lock_hash(l->path, l->method) % n;
			l->hash_next = b[h];
			b[h] = l;
		}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
}

/* lbd_lock_find: the lock on path (absolute, normalised: a lockfs_lock's
 * path) with method, or NULL. */
struct lbd_lock *
lbd_lock_find(struct lbd *d, const char *path, unsigned method)
{
	struct lbd_lock *l;

	l = d->buckets[lock_hash(path, method) % d->nbuckets];
	for (; l != NULL; l = l->hash_next)
		if (l->method == method && strcmp(l->path, path) == 0)
			return l;
	return NULL;
}

/*
 * lbd_lock_get: the lock on path (absolute; normalised here) with method,
 * made and entered into the table if it is not there.  The caller gives it
 * a holder or a waiter, or returns it with lbd_lock_put.  NULL with err
 * filled (LB_EINVAL: a bad path; LB_ENOMEM).
 */
struct lbd_lock *
lbd_lock_get(struct lbd *d, const char *path, unsigned method,
    struct lockfs_err *err)
{
	struct lockfs_lock fs;
	struct lbd_lock   *l = NULL;
	size_t             h;

	if (lbd_os_path_is_relative(path)) {
		lockfs_fail(err, LB_EINVAL, 0, "path %s is not absolute", path);
		return NULL;
	}
	/* Only the names are wanted: the daemon as their owner, looked at
	 * once (lockfs_init would look at its pid and fsuid each time). */
	if (!d->self_known && lockfs_owner_self(&d->self, 0) == 0)
		d->self_known = 1;
	if (lockfs_init_as(&fs, path, method, 0, d->self_known ? &d->self :
	    NULL, err) != 0)
		return NULL;
	if ((l = lbd_lock_find(d, fs.path, method)) != NULL)
		goto out;
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->path = strdup(fs.path)) == NULL) {
		free(l);
		l = NULL;
		lockfs_fail(err, LB_ENOMEM, ENOMEM, "lock on %s", path);
		goto out;
	}
	l->d = d;
	l->method = method;
	TAILQ_INIT(&l->waiters);
	TAILQ_INIT(&l->readers);
	TAILQ_INIT(&l->awaited);
	if (d->nlocks >= d->nbuckets)
		locks_grow(d);
	h = lock_hash(l->path, method) % d->nbuckets;
	l->hash_next = d->buckets[h];
	d->buckets[h] = l;
	d->nlocks++;
out:
	lockfs_fini(&fs);
	return l;
}

/* lbd_lock_put: removes l from the table and frees it when it has neither
 * holder nor waiters nor riders and is not being served (lbd_lock_serve);
 * otherwise does nothing. */
void
lbd_lock_put(struct lbd_lock *l)
{
	struct lbd       *d = l->d;
	struct lbd_lock **pp;

	if (l->holder != NULL || !TAILQ_EMPTY(&l->waiters) ||
	    !TAILQ_EMPTY(&l->readers) || l->serving > 0)
		return;
	lbd_cohort_drop(l);     /* a cluster lock's key deleted */
	lbd_readers_unawait(l);
	lbd_lock_unwatch(l);
	pp = &d->buckets[lock_hash(l->path, l->method) % d->nbuckets];
	while (*pp != l)
		pp = &(*pp)->hash_next;
	*pp = l->hash_next;
	d->nlocks--;
	free(l->path);
	free(l);
}
