/*
 * etcdlock.h: one lock key in etcd (docs/CLUSTER.md, "Taking a lock
 * key"): taken with etcd's own lock algorithm and layout, so that
 * etcdctl lock and etcd's Go clients exclude each other with it, waited
 * for by watching the key created just before it, and released.
 *
 * The key is PREFIX/ESCAPED/<lease in hex> (cluster.h's prefix, and the
 * daemon's lease from etcdlease.h): it dies with the lease, so a lost
 * lease loses the key whatever this module does.  Its create revision is
 * the lock's fencing token.
 *
 * Each call but the watch ends within its timeout.  The watch has no end
 * in time (a wait may be long): what bounds it when etcd hangs is the
 * lease, whose loss the owner acts on by abandoning its lock keys.
 */
#ifndef LBD_ETCDLOCK_H
#define LBD_ETCDLOCK_H

#include <stdint.h>

#include "etcdhttp.h"

struct lbd_etcd_lock;

/* A watch of the key before ours is renewed (looked for again, watched
 * anew) this often (ms). */
#define LBD_ETCD_WATCH_LIFE_MS 5000

enum lbd_etcd_lock_event {
	LBD_ETCD_LOCK_HELD,       /* the key is the lowest: held; token is
	                             its create revision */
	LBD_ETCD_LOCK_WAITING,    /* the key is not the lowest: another key
	                             holds; watching the one before it
	                             (token: the key's create revision) */
	LBD_ETCD_LOCK_FAILED,     /* a call failed (why says which and why):
	                             the lock is neither held nor waited for;
	                             release it (its key may exist) */
	LBD_ETCD_LOCK_RELEASED    /* the release is over (why: NULL, or why
	                             the key may remain until the lease
	                             ends); the lock is freed after the call */
};

/* What the lock tells its owner, from the loop; never from within a
 * call of this header. */
typedef void lbd_etcd_lock_cb(void *arg, enum lbd_etcd_lock_event ev,
    int64_t token, const char *why);

/*
 * lbd_etcd_lock_take: starts taking the lock whose key prefix is prefix
 * ("PREFIX/ESCAPED/", copied) on lease (> 0) through endpoint (a URL,
 * copied), its key's value value (copied); each call's timeout is
 * timeout_ms.  Returns the lock (owned by the caller until it is
 * released), or NULL with why (size bytes) filled.
 */
struct lbd_etcd_lock *lbd_etcd_lock_take(struct lbd_etcd_http *h,
    const char *endpoint, const char *prefix, int64_t lease,
    const char *value, long timeout_ms, lbd_etcd_lock_cb *cb, void *arg,
    char *why, size_t size);

/* lbd_etcd_lock_key: the lock's key (NUL-terminated, the lock's). */
const char *lbd_etcd_lock_key(const struct lbd_etcd_lock *k);

/* lbd_etcd_lock_waiting: 1 while it watches the key before it. */
int lbd_etcd_lock_waiting(const struct lbd_etcd_lock *k);

/*
 * lbd_etcd_lock_release: stops whatever the lock is doing and deletes its
 * key (whether it holds, waits, failed or is still taking it: a put in
 * flight may have been applied).  0: RELEASED comes once etcd answered
 * or the call failed, and the lock is freed after it.  -1 with why
 * (size bytes) when the delete cannot even start (out of memory): the
 * lock is freed at once, no event, its key left to its lease.  Not again
 * on the same lock.
 */
int lbd_etcd_lock_release(struct lbd_etcd_lock *k, char *why, size_t size);

/* lbd_etcd_lock_abandon: frees the lock at once, no event, its key left
 * to its lease (which is lost, or is being revoked). */
void lbd_etcd_lock_abandon(struct lbd_etcd_lock *k);

#endif
