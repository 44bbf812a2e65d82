/*
 * clusterdir.c: the sign in the daemon's cluster_dir (clusterdir.h).  The
 * library does not read the daemon's settings: without a daemon (AUTO)
 * it takes a lock in-process, which excludes on this host only.  For a
 * lock under cluster_dir, which other hosts take through etcd, that
 * would be a second holder; so the daemon leaves in cluster_dir
 *
 *     .lockbroker-cluster
 *
 * and the library refuses, rather than takes, a lock in that directory
 * or below it when no daemon answers (client/clusterguard.c;
 * docs/CLUSTER.md, "Clients").  It is left when the daemon stops (the
 * library needs it most then) and when cluster_dir is changed: an
 * operator who no longer wants the locks there cluster-wide removes it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clusterdir.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "os.h"

#define SIGN_NAME ".lockbroker-cluster"
#define SIGN_TEXT "lockbroker: the locks under this directory are " \
    "cluster-wide (lockbrokerd's cluster_dir); without the daemon the " \
    "library refuses them rather than take them on this host alone.\n"

/* lbd_cluster_dir_sign: see clusterdir.h. */
void
lbd_cluster_dir_sign(struct lbd *d)
{
	struct lockfs_fs_info fi;
	char                  sign[PATH_MAX];
	int                   fd, ok;

	if (d->cfg.cluster_dir[0] == '\0')
		return;
	if (snprintf(sign, sizeof(sign), "%s/" SIGN_NAME,
	    d->cfg.cluster_dir) >= (int)sizeof(sign)) {
		log_warn("cluster_dir %s: the path of its sign is too long",
		    d->cfg.cluster_dir);
		return;
	}
	fd = lockfs_fs_open(LOCKFS_FS_CWD, sign, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL);
	if (fd != -1) {
		ok = lockfs_fs_write(fd, SIGN_TEXT, strlen(SIGN_TEXT)) ==
		    (ssize_t)strlen(SIGN_TEXT);
		if (lockfs_fs_close_written(fd) != 0 || !ok)
			log_warn("%s: cannot write it: %s", sign,
			    strerror(errno));
		else
			log_info("%s made: without this daemon the library "
			    "refuses the locks under %s", sign,
			    d->cfg.cluster_dir);
		return;
	}
	if (errno != EEXIST)
		log_warn("%s cannot be made (%s): without this daemon the "
		    "library would take the locks under %s on this host "
		    "alone", sign, strerror(errno), d->cfg.cluster_dir);
	else if (lockfs_fs_info_at(LOCKFS_FS_CWD, sign, 0, &fi) != 0 ||
	    fi.type != LOCKFS_FS_FILE || (fi.uid != 0 &&
	    fi.uid != lbd_os_files_uid_of(lbd_os_euid())))
		log_warn("%s is not a regular file of this daemon's user or "
		    "root: the library does not count it, and would take the "
		    "locks under %s on this host alone without this daemon",
		    sign, d->cfg.cluster_dir);
}
