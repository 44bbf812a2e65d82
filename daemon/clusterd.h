/*
 * clusterd.h: the daemon's cluster side (docs/CLUSTER.md): its etcd
 * client and its one etcd lease, run on the daemon's loop from its start
 * to its stop, and what a client whose ACQUIRE of a cluster lock is
 * refused is told.  Built with etcd (configure --with-etcd): clusterd.c;
 * without: cluster_none.c, where there is no client and no lease.
 *
 * The daemon's life with etcd_endpoints and cluster_dir set:
 *
 *   start -> lease granting (never waited for: local locks are served
 *   at once, whether etcd answers or not) -> granted (logged) -> ...
 *   -> stop: the lease closed (a live one revoked, within one request's
 *   timeout, under a third of the TTL) -> the client closed -> the
 *   loop ends
 */
#ifndef LBD_CLUSTERD_H
#define LBD_CLUSTERD_H

#include <stddef.h>
#include <stdint.h>

struct lbd;
struct lbd_clusterd;
struct lbd_etcd_http;

/*
 * lbd_clusterd_start: when d's settings set both cluster_dir and
 * etcd_endpoints (and the daemon is built with etcd), makes d->cluster:
 * its etcd HTTP client on d->loop and its lease of etcd_ttl seconds,
 * whose grant starts at once, and whose events (granted, trouble, lost)
 * are logged; otherwise leaves d->cluster NULL.  Does not block and
 * does not wait for etcd.  0, or -1 with why (size bytes) filled when
 * the client or the lease could not be made (out of memory, curl's
 * global init failed): nothing is left made then.
 */
int lbd_clusterd_start(struct lbd *d, char *why, size_t size);

/*
 * lbd_clusterd_stop: at the daemon's stop: closes the lease (a live or
 * lost one revoked, within one request's timeout) and, once that is over,
 * the client.  The lease's timers and the client's handles keep the loop
 * running until then, so the loop's end waits for the revoke, and no
 * longer than that request's timeout.  Idempotent; nothing without
 * d->cluster.
 */
void lbd_clusterd_stop(struct lbd *d);

/*
 * lbd_clusterd_free: after the loop's last run: frees d->cluster (NULL
 * after), and curl's global state when the start made it.  d->cluster
 * may be NULL.
 */
void lbd_clusterd_free(struct lbd *d);

/*
 * lbd_clusterd_refusal: why d does not take a cluster lock now, one
 * sentence naming the thing and the reason (no etcd client: built
 * without etcd, or no etcd_endpoints; else the lease's state and its
 * id, or its last trouble), for the ERR its client gets: buf (size
 * bytes) filled, or static text; never NULL.
 */
const char *lbd_clusterd_refusal(const struct lbd *d, char *buf,
    size_t size);

/*
 * For the cohorts (cohort.c, built with etcd only):
 *
 * lbd_clusterd_lease: the live lease's id, 0 while there is none;
 * lbd_clusterd_http: the etcd client; lbd_clusterd_endpoint: the
 * endpoint a lock key is taken through (the lease's first: a take that
 * fails is taken again a second later, through the next, as
 * lbd_cohort_retry_soon moves on); lbd_cohort_retry_soon: runs
 * lbd_cohorts_retry a second from now (once for all).
 *
 * Their calls from here: lbd_cohorts_lease(d, 0) when a lease is
 * granted or adopted (the cohorts that wait for one take their keys),
 * lbd_cohorts_lease(d, id) when lease id is lost (every key gone:
 * holders told, cohorts lost); lbd_cohorts_retry at the retry tick;
 * lbd_cohorts_stop at the daemon's stop (the keys left to the revoke).
 * At a start that holds cluster locks of the previous run (their holds
 * given back from the state database): lbd_cohorts_adopted(d, id) when
 * that run's lease id is kept alive (their keys taken back; the lease's
 * other keys deleted), lbd_cohorts_previous_lost(d, id, how) when it is
 * gone, or etcd has not said by its deadline as that run kept it, or
 * within a TTL of the start (their holders told that they lost them, how
 * saying why the lease is taken to be gone, their holds ended).
 */
int64_t               lbd_clusterd_lease(const struct lbd *d);
struct lbd_etcd_http *lbd_clusterd_http(const struct lbd *d);
const char           *lbd_clusterd_endpoint(const struct lbd *d);
void                  lbd_cohort_retry_soon(struct lbd *d);
void                  lbd_cohorts_lease(struct lbd *d, int64_t lost);
void                  lbd_cohorts_retry(struct lbd *d);
void                  lbd_cohorts_stop(struct lbd *d);
void                  lbd_cohorts_free(struct lbd *d);
void                  lbd_cohorts_adopted(struct lbd *d, int64_t id);
void                  lbd_cohorts_previous_lost(struct lbd *d, int64_t id,
                          const char *how);

#endif
