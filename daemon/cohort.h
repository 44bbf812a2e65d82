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

/* etcd keys this daemon is taking at once (each a connection to etcd
 * until held: a watch while it waits behind another host's; counted in
 * its descriptor budget), at most, and of them, at most those started
 * for one user; a lock past either waits (its waiters' timeouts
 * running), a try of it is refused.  Held keys are not counted. */
#define LBD_COHORT_KEYS          256
#define LBD_COHORT_KEYS_PER_UID  64
#define LBD_COHORT_KEYS_ROOT     32     /* of them, kept for root's */

/* lbd_cohort_parked: NULL, or why l's cohort waits for a key to be
 * free (LBD_COHORT_KEYS): a try of it is refused with that. */
const char *lbd_cohort_parked(const struct lbd_lock *l);

/* lbd_cohort_may_make: for a cluster lock, 1 when c's user may make l's
 * artefact in its directory (write and search), as far as a look tells,
 * else 0 with err filled: a request that cannot be granted takes no
 * etcd key.  1 for any other lock. */
int lbd_cohort_may_make(struct lbd_lock *l, struct lbd_conn *c,
    struct lockfs_err *err);

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

/* lbd_cohort_list_state: the state of cluster lock l's cohort, as
 * STATUS names it ("idle", "taking", "waiting", "held", "lost",
 * "releasing"), for LIST; NULL for a lock whose gate was never asked (not
 * a cluster lock, or none yet). */
const char *lbd_cohort_list_state(const struct lbd_lock *l);

/*
 * lbd_cohort_status: c's STATUS reply o (begun, not ended) of the lock at
 * path (l: its lock in the table, or NULL), in a version-2 session: for a
 * cluster lock, the cohort's fields added (cluster_state, cluster_key),
 * and, while the daemon has a lease, etcd asked for the lock's first key
 * and count: 1, o taken over, ended and sent once etcd answers (with
 * cluster_waiters, cluster_revision, cluster_holder, as many as a line
 * holds; or cluster_error), or dropped if c closes first.  0: the
 * caller ends and sends o.
 */
int  lbd_cohort_status(struct lbd_conn *c, const char *path,
    struct lbd_lock *l, struct lbp_out *o);

/* lbd_cohort_status_forget: c closes: its STATUS replies waiting for
 * etcd are dropped. */
void lbd_cohort_status_forget(struct lbd_conn *c);

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
