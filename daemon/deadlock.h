/*
 * deadlock.h: the wait-for graph, looked at when a wait is queued
 * (deadlock.c; docs/DEADLOCK.md).
 */
#ifndef LBD_DEADLOCK_H
#define LBD_DEADLOCK_H

#include <stddef.h>
#include <sys/types.h>

struct lbd;
struct lbd_conn;
struct lbd_wait;

/*
 * lbd_deadlock_find: whether owner (c, tid) waits for itself through a
 * cycle of waits that leaves it by wait from (one it just queued; NULL:
 * by any of its waits, as after it was given a hold): 1, the wait the
 * cycle leaves it by in *first and the cycle told in why (size bytes:
 * each owner, the lock it waits for and who is in its way; of a lock c
 * may not look at, neither its path nor the owners beside it in the
 * cycle), else 0 (also when out of memory, or past the entries one
 * search looks at: never a false cycle).  Never blocks; costs the part
 * of the graph the owner reaches, 262144 entries at most, and nothing
 * when from is at its queue's tail and nothing can wait for the owner
 * (it holds nothing, and nothing waits behind its waits).
 */
int lbd_deadlock_find(struct lbd *d, struct lbd_conn *c, pid_t tid,
        struct lbd_wait *from, struct lbd_wait **first, char *why,
        size_t size);

/* lbd_deadlock_end: frees the searches' tables d keeps (at its end). */
void lbd_deadlock_end(struct lbd *d);

#endif /* LBD_DEADLOCK_H */
