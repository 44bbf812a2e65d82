/*
 * cluster.h: which locks are cluster-wide, and their names in etcd
 * (docs/CLUSTER.md).  A lock whose path lies under the setting
 * cluster_dir is a cluster lock; its name is the rest of the path, and
 * its keys in etcd are etcd's own lock layout under etcd_prefix:
 * PREFIX/NAME/<lease in hex>, with '/' and '%' in NAME escaped (%2F,
 * %25) so that a lock's keys never fall under another's.
 *
 * cluster.c is pure (names and keys); the daemon's etcd client and lease,
 * and why it refuses a cluster lock, are clusterd.h's (clusterd.c with
 * configure's --with-etcd, cluster_none.c without).
 */
#ifndef LBD_CLUSTER_H
#define LBD_CLUSTER_H

#include <stddef.h>

/*
 * lbd_cluster_name: whether the lock at path (absolute and normalised,
 * as lockfs_abspath makes it) is cluster-wide under dir (the setting
 * cluster_dir; "" for none): 1 with its name (the path below dir) in
 * name (size bytes), 0 when it is not, -1 when its name does not fit.
 */
int lbd_cluster_name(const char *dir, const char *path, char *name,
    size_t size);

/*
 * lbd_cluster_prefix: etcd's key prefix of the lock named name under
 * prefix (the setting etcd_prefix): "PREFIX/ESCAPED/", where ESCAPED is
 * name with '%' as "%25" and '/' as "%2F".  The lock's keys are this
 * prefix and a lease id in lower-case hex, as etcd's own lock (etcdctl
 * lock PREFIX/ESCAPED) makes them.  Returns the length written to out
 * (size bytes, NUL-terminated), or -1 when it does not fit.
 */
int lbd_cluster_prefix(const char *prefix, const char *name, char *out,
    size_t size);

#endif
