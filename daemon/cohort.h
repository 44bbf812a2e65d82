/*
 * cohort.h: a cluster lock's local cohort (docs/CLUSTER.md, "The local
 * cohort"): while any local client holds or waits for a cluster lock,
 * the daemon holds its etcd key once (etcdlock.h) and hands the lock
 * among its local waiters with its normal handoff; it deletes the key
 * when nobody here holds the lock, and after LBD_COHORT_HANDOFFS local
 * handoffs queues anew behind the other hosts.  The state machine is
 * drawn in cohort.c, which is built with etcd; without it
 * (cluster_none.c) no lock is a cluster lock here (request.c refuses
 * them first), and every gate is open.
 *
 * The rule the lock layer keeps: a cluster lock is granted to a local
 * waiter (made, handed over, joined) only while its cohort holds the
 * etcd key and is not lost.  lock.c and hold.c ask lbd_cohort_gate at
 * each grant, and tell the cohort when the lock has no holder
 * (lbd_cohort_unheld) and when it leaves the table (lbd_cohort_drop).
 */
#ifndef LBD_COHORT_H
#define LBD_COHORT_H

#include "daemon.h"

/* Local handoffs of a cluster lock in one hold of its etcd key, at most:
 * then the key is deleted once the local holder goes, and taken anew
 * behind the keys other hosts wait with. */
#define LBD_COHORT_HANDOFFS 16

/* Each etcd call of a key's take and delete ends within this (ms); the
 * wait behind another host's key has no end but the waiters'. */
#define LBD_COHORT_CALL_MS 3000

/* A try (timeout 0) of a cluster lock waits this long (s) at most for
 * its key's take to say whether another host holds it. */
#define LBD_COHORT_TRY_S 6

/*
 * lbd_cohort_gate: whether l may be granted to a local waiter now.  0:
 * yes (l is not a cluster lock, or its cohort holds the etcd key, is not
 * lost and has handed the lock on fewer than LBD_COHORT_HANDOFFS times);
 * 1: not now (the key is being taken, started here when nobody took it
 * yet, or deleted, or lost): the waiters wait in l's queue and are
 * served (lbd_lock_serve) once the key is held; -1 with err filled when
 * l cannot be a cluster lock here (another method's lock of the same
 * name has the cohort).
 */
int  lbd_cohort_gate(struct lbd_lock *l, struct lockfs_err *err);

/* lbd_cohort_leaseless: NULL while this daemon has a live etcd lease;
 * else why it has none (buf, size bytes), for a try that cannot wait. */
const char *lbd_cohort_leaseless(const struct lbd *d, char *buf,
    size_t size);

/* lbd_cohort_token: the fencing token of a grant of l now (its cohort
 * holding the key): the key's create revision times 2^20, plus the
 * grant's count in this hold of the key; strictly greater than every
 * earlier grant's on any host, since etcd's revision grows across the
 * cluster.  0 for a lock that is not a cluster lock. */
uint64_t lbd_cohort_token(struct lbd_lock *l);

/* lbd_cohort_handed: l, a cluster lock, was just granted to a waiter
 * after another local hold: counted towards LBD_COHORT_HANDOFFS. */
void lbd_cohort_handed(struct lbd_lock *l);

/* lbd_cohort_unheld: l has no holder now: its key is deleted when
 * nobody waits here, or the bound is reached, or the cohort is lost
 * (and taken anew after, while waiters are left); otherwise the waiters
 * are served as usual. */
void lbd_cohort_unheld(struct lbd_lock *l);

/* lbd_cohort_drop: l leaves the table (lbd_lock_put): its key, if held
 * or being taken, is deleted. */
void lbd_cohort_drop(struct lbd_lock *l);

#endif
