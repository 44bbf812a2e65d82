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
#include <unistd.h>

#include "clusterdir.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "os.h"

#define SIGN_NAME ".lockbroker-cluster"
#define SIGN_TEXT "lockbroker: the locks under this directory are " \
    "cluster-wide (lockbrokerd's cluster_dir); without the daemon the " \
    "library refuses them rather than take them on this host alone.\n"

/* Whether the file at sign is a sign the library counts: a regular file
 * of root's or of the daemon's user (never followed). */
static int
sign_counts(const char *sign)
{
	struct lockfs_fs_info fi;

	return lockfs_fs_info_at(LOCKFS_FS_CWD, sign, 0, &fi) == 0 &&
	    fi.type == LOCKFS_FS_FILE && (fi.uid == 0 ||
	    fi.uid == lbd_os_files_uid_of(lbd_os_euid()));
}

/* Writes the sign whole under tmp (made anew: O_EXCL, whatever lay at
 * that name removed first), then renames it over sign (a file another
 * user planted there goes).  0, or -1 with errno (tmp removed). */
static int
sign_write(const char *tmp, const char *sign)
{
	int fd, ok, e;

	(void)lockfs_fs_unlink(tmp);    /* a killed daemon's, or planted */
	if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, tmp, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL)) == -1)
		return -1;
	ok = lockfs_fs_write(fd, SIGN_TEXT, strlen(SIGN_TEXT)) ==
	    (ssize_t)strlen(SIGN_TEXT);
	e = errno;
	if (lockfs_fs_close_written(fd) == 0 && ok &&
	    lockfs_fs_rename_at(LOCKFS_FS_CWD, tmp, sign) == 0)
		return 0;
	e = ok ? errno : e;
	(void)lockfs_fs_unlink(tmp);
	errno = e;
	return -1;
}

/* lbd_cluster_dir_sign: see clusterdir.h.  A file at the sign's name that
 * the library would not count (another user's, planted before the
 * daemon's first start in a directory anyone may write) is replaced. */
void
lbd_cluster_dir_sign(struct lbd *d)
{
	char sign[PATH_MAX], tmp[PATH_MAX];

	if (d->cfg.cluster_dir[0] == '\0')
		return;
	if (snprintf(sign, sizeof(sign), "%s/" SIGN_NAME,
	    d->cfg.cluster_dir) >= (int)sizeof(sign) ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld", sign,
	    (long)getpid()) >= (int)sizeof(tmp)) {
		log_warn("cluster_dir %s: the path of its sign is too long",
		    d->cfg.cluster_dir);
		return;
	}
	if (sign_counts(sign))
		return;
	if (sign_write(tmp, sign) != 0 || !sign_counts(sign))
		log_warn("%s cannot be made (%s): without this daemon the "
		    "library would take the locks under %s on this host "
		    "alone", sign, strerror(errno), d->cfg.cluster_dir);
	else
		log_info("%s made: without this daemon the library refuses "
		    "the locks under %s", sign, d->cfg.cluster_dir);
}
