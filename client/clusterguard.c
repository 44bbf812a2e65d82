/*
 * clusterguard.c: the in-process fallback's guard for cluster locks
 * (docs/CLUSTER.md, "Clients").  A daemon with cluster_dir takes the
 * locks under it through etcd, cluster-wide; the library does not read
 * the daemon's settings, so when no daemon answers (AUTO) it would take
 * such a lock with its lock file, on this host alone, while another host
 * may hold it.  The daemon leaves a sign in its cluster_dir,
 *
 *     CLUSTER_DIR/.lockbroker-cluster
 *
 * (daemon/clusterdir.c), and the library, before it takes a lock
 * in-process in AUTO mode, looks for that sign in the lock's directory
 * and each directory above it: one there refuses the lock (LB_EFAILED,
 * naming it) rather than taking it on this host alone.  A sign counts
 * only as a regular file of root's or of this process's user (another
 * user's file would refuse this user's locks where that user chose); it
 * is never followed through a symbolic link.  LB_LOCAL, asked for, takes
 * the lock in-process all the same.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clusterguard.h"
#include "fs.h"
#include "lockfs.h"
#include "os.h"

#define SIGN_NAME "/.lockbroker-cluster"

/* lb__cluster_guard: see broker.h. */
int
lb__cluster_guard(const char *path, struct lockfs_err *err)
{
#ifdef _WIN32
	(void)path;             /* no cluster locks on Windows */
	(void)err;
	return 0;
#else
	struct lockfs_fs_info fi;
	char                  dir[PATH_MAX], sign[PATH_MAX];
	char                 *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return 0;       /* lockfs refuses such a path itself */
	while ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';  /* the directory above; "" for "/" */
		if (snprintf(sign, sizeof(sign), "%s" SIGN_NAME, dir) >=
		    (int)sizeof(sign))
			continue;
		if (lockfs_fs_info_at(LOCKFS_FS_CWD, sign, 0, &fi) == 0 &&
		    fi.type == LOCKFS_FS_FILE &&
		    (fi.uid == 0 || fi.uid == lb__os_euid()))
			return lockfs_fail(err, LB_EFAILED, 0, "%s is a "
			    "cluster lock (%s says so: lockbrokerd takes the "
			    "locks under %s through etcd), and no lockbroker "
			    "daemon answers: it is not taken on this host "
			    "alone", path, sign, dir[0] != '\0' ? dir : "/");
	}
	return 0;
#endif
}
