/*
 * clusterguard.h: the in-process fallback's guard for cluster locks
 * (clusterguard.c).
 */
#ifndef LB_CLUSTERGUARD_H
#define LB_CLUSTERGUARD_H

#include "lockfs.h"

/*
 * lb__cluster_guard: whether the lock on path (absolute) may be taken
 * in-process when no daemon answers (AUTO): 0, or LB_EFAILED with err
 * filled when the sign of a daemon's cluster_dir lies in its directory or
 * one above it (a regular file of root's or of this process's user): a
 * cluster lock, never taken on this host alone.
 */
int lb__cluster_guard(const char *path, struct lockfs_err *err);

#endif
