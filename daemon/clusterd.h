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

struct lbd;
struct lbd_clusterd;

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
 * lbd_clusterd_refusal: why d does not take a cluster lock (yet), one
 * sentence naming the thing and the reason (the lease's state and its
 * id, or its last trouble), for the ERR its client gets: buf (size
 * bytes) filled, or static text; never NULL.
 */
const char *lbd_clusterd_refusal(const struct lbd *d, char *buf,
    size_t size);

#endif
