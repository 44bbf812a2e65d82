/*
 * etcdlease.h: the daemon's one etcd lease (docs/CLUSTER.md, "The
 * lease"): granted, kept alive by one keepalive request every TTL/3, its
 * deadline tracked, declared lost at that deadline at the latest, revoked
 * once etcd answers again, and granted anew.
 *
 * The deadline is the send time of the last keepalive etcd acknowledged
 * (or of the grant) plus the TTL etcd gave in that reply: etcd counts the
 * TTL from when the request reached it, after it was sent, so until the
 * deadline etcd cannot have expired the lease.  The lease is declared
 * lost a margin before the deadline (LBD_ETCD_LOST_MARGIN_MS, at most a
 * tenth of the TTL), so that the daemon can tell its holders before
 * another host may be granted their locks; at once when a keepalive's
 * reply says etcd no longer has it.  Times are the loop's monotonic clock
 * (uv_hrtime).
 */
#ifndef LBD_ETCDLEASE_H
#define LBD_ETCDLEASE_H

#include <stdint.h>
#include <uv.h>

#include "etcdhttp.h"

#define LBD_ETCD_LOST_MARGIN_MS 500

/* The longest the revoke at the daemon's stop is waited for (a third of
 * the TTL, less a tenth, when that is shorter): etcd hung must not hold
 * a stop for minutes when the TTL is long. */
#define LBD_ETCD_STOP_WAIT_MS 3000

struct lbd_etcd_lease;

enum lbd_etcd_lease_event {
	LBD_ETCD_LEASE_GRANTED,   /* a lease is live: id is its id */
	LBD_ETCD_LEASE_ADOPTED,   /* the previous run's lease, id, is live
	                             again (lbd_etcd_lease_new's adopt) */
	LBD_ETCD_LEASE_LOST,      /* the lease id may have expired in etcd,
	                             or has: every lock key on it is gone */
	LBD_ETCD_LEASE_TROUBLE,   /* a call failed (why says which and why);
	                             the lease is still live until its
	                             deadline */
	LBD_ETCD_LEASE_RENEWED,   /* a keepalive of the live lease id was
	                             acknowledged: its deadline moved
	                             (lbd_etcd_lease_deadline) */
	LBD_ETCD_LEASE_GONE       /* etcd says the previous run's lease, id
	                             (lbd_etcd_lease_new's adopt), is gone: a
	                             new one is asked for */
};

/* What the lease tells its owner, from the loop; never from within a
 * call of this header. */
typedef void lbd_etcd_lease_cb(void *arg, enum lbd_etcd_lease_event ev,
    int64_t id, const char *why);

/*
 * lbd_etcd_lease_new: a lease of ttl seconds (> 0) on client h, asked of
 * the endpoints (count n, each a URL such as "http://127.0.0.1:2379",
 * copied), the next one after each that fails to answer.  Starts granting
 * at once; with adopt not 0, first keeps that lease (the previous run's)
 * alive when etcd still has it (ADOPTED), and grants a new one when it is
 * gone or etcd has not answered within ttl.  Returns it, or NULL with why (size bytes) filled.  h must
 * outlive it.
 */
struct lbd_etcd_lease *lbd_etcd_lease_new(uv_loop_t *loop,
    struct lbd_etcd_http *h, const char *const *endpoints, unsigned n,
    int64_t ttl, int64_t adopt, lbd_etcd_lease_cb *cb, void *arg,
    char *why, size_t size);

/* lbd_etcd_lease_adopt_by: an ADOPTING lease (lbd_etcd_lease_new's
 * adopt) gives the previous run's lease up, unanswered, at until
 * (uv_hrtime, ns) when that comes before its TTL from the start: that
 * lease's own deadline, as the previous run knew it.  Nothing in another
 * state. */
void lbd_etcd_lease_adopt_by(struct lbd_etcd_lease *l, uint64_t until);

/* lbd_etcd_lease_id: the live lease's id, 0 while there is none. */
int64_t lbd_etcd_lease_id(const struct lbd_etcd_lease *l);

/* lbd_etcd_lease_deadline: the live lease's deadline (uv_hrtime's
 * nanoseconds), 0 while there is none. */
uint64_t lbd_etcd_lease_deadline(const struct lbd_etcd_lease *l);

/* lbd_etcd_lease_ttl: the live lease's TTL as etcd granted it (seconds),
 * 0 while there is none. */
int64_t lbd_etcd_lease_ttl(const struct lbd_etcd_lease *l);

/* lbd_etcd_lease_lost_deadline: the deadline (uv_hrtime's nanoseconds)
 * the last lost lease had when it was declared lost, 0 when none was. */
uint64_t lbd_etcd_lease_lost_deadline(const struct lbd_etcd_lease *l);

/* lbd_etcd_lease_endpoint: the endpoint the lease's next call goes to
 * (the next after each that failed to answer). */
const char *lbd_etcd_lease_endpoint(const struct lbd_etcd_lease *l);

/* lbd_etcd_lease_keepalives: keepalives etcd has acknowledged. */
uint64_t lbd_etcd_lease_keepalives(const struct lbd_etcd_lease *l);

/*
 * lbd_etcd_lease_close: stops the lease and frees it.  A live lease is
 * revoked first, within one request's timeout (under a third of the
 * TTL): done
 * (if not NULL) is called from the loop once that is over, whatever its
 * outcome; otherwise done is called from the loop's next iteration.
 * The lease's callback is never called again.  l may be NULL (done is
 * then not called).
 */
void lbd_etcd_lease_close(struct lbd_etcd_lease *l, void (*done)(void *),
    void *arg);

#endif
