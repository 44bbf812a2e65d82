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

/*
 * lbd_deadlock_find: whether owner (c, tid), whose newest wait was just
 * queued, now waits for itself through a cycle of waits: 1, the cycle
 * told in why (size bytes: each owner, the lock it waits for and who is
 * in its way; of a lock c may not look at, nothing but that), else 0 (also when out of memory, or past the waits one
 * search looks at: never a false cycle).  Never blocks; costs the part
 * of the graph the owner reaches, 65536 waits at most.
 */
int lbd_deadlock_find(struct lbd *d, struct lbd_conn *c, pid_t tid,
        char *why, size_t size);

#endif /* LBD_DEADLOCK_H */
