/*
 * locktable.h: the table of locks the broker knows (locktable.c), keyed
 * by (path, method); a lock is in it while it has a holder or waiters.
 */
#ifndef LBD_LOCKTABLE_H
#define LBD_LOCKTABLE_H

#include <limits.h>
#include <stdio.h>

#include "daemon.h"

/* lbd_locks_init: an empty table.  0, or -1 when out of memory. */
int  lbd_locks_init(struct lbd *d);

/* lbd_lock_find: the lock on path (absolute, normalised: a lockfs_lock's
 * path) with method, or NULL. */
struct lbd_lock *lbd_lock_find(struct lbd *d, const char *path,
         unsigned method);

/* lbd_lock_file: l's lock file (its artefact's name: PATH.lock, or PATH
 * for the pidfile method), into buf of PATH_MAX bytes; buf.  (Inline: the
 * store and the tests use it without the lock table.) */
static inline const char *
lbd_lock_file(const struct lbd_lock *l, char *buf)
{
	snprintf(buf, PATH_MAX, "%s%s", l->path,
	    l->method == LB_PIDFILE ? "" : ".lock");
	return buf;
}

/* lbd_lock_get: the lock on path (absolute; normalised here) with
 * method, entered into the table if it is not there; the caller gives it
 * a holder or a waiter, or returns it with lbd_lock_put.  NULL with err
 * filled (LB_EINVAL: a bad path; LB_ENOMEM). */
struct lbd_lock *lbd_lock_get(struct lbd *d, const char *path,
         unsigned method, struct lockfs_err *err);

/* lbd_lock_put: removes l from the table and frees it when it has neither
 * holder nor waiters nor riders and is not being served (lbd_lock_serve,
 * which puts it when it ends); otherwise does nothing. */
void lbd_lock_put(struct lbd_lock *l);

#endif
