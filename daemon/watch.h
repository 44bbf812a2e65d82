/*
 * watch.h: locks held outside the broker while clients wait for them
 * (watch.c): their directories watched (inotify, within bounds), a poll
 * as the safety net, sqlite locks looked at a turn at a time.
 */
#ifndef LBD_WATCH_H
#define LBD_WATCH_H

#include "daemon.h"

/* lbd_watches_init: an empty table of watched directories.  0, or -1
 * when out of memory. */
int  lbd_watches_init(struct lbd *d);

/* lbd_lock_watch: l is held outside the broker and has waiters, c's the
 * head one: l is polled, and watched in its directory when the bounds
 * allow (counted as c's user's).  Nothing when it is already. */
void lbd_lock_watch(struct lbd_lock *l, struct lbd_conn *c);

/* lbd_lock_unwatch: l is no longer watched, nor polled. */
void lbd_lock_unwatch(struct lbd_lock *l);

/* lbd_watches_due: the end of an iteration: looks at the sqlite locks
 * due for about a turn; the rest in the next ones. */
void lbd_watches_due(struct lbd *d);

#endif
