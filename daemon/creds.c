/*
 * creds.c: acting on the filesystem with a client's credentials.  The
 * broker never does for a client what the client could not do itself: it
 * creates, removes, reads and looks at artefacts with the client's
 * filesystem uid, gid and supplementary groups, all three.
 *
 * A struct lbd_creds is read from the peer at accept (lbd_os_peer_ids and
 * lbd_os_peer_groups: SO_PEERCRED and SO_PEERGROUPS on Linux), shared by the connection and each of its holds
 * (reference counted: a hold outlives its connection when kept), and
 * recorded in the state database, so that a restarted daemon acts on the
 * previous run's holds with their clients' credentials too.
 *
 * The switch is per thread (os.h: lbd_os_fs_groups_set, lbd_os_fs_ids_set;
 * on Linux setfsuid, setfsgid and the raw setgroups system call).  The
 * daemon has one thread doing this, between lbd_creds_enter and
 * lbd_creds_leave, and no callback runs in between.
 *
 * A daemon started as root drops its own supplementary groups at start
 * (lbd_creds_init): a client taken on as root (uid 0) then acts with no
 * group it did not bring, and nothing the daemon inherited from the shell
 * that started it leaks to a client.  It also keeps only the capabilities
 * it needs to act for clients (os_unix.c names them): any other one would
 * still apply to a client's steps.  A daemon that does not run as root
 * (a per-user instance) serves only its own user and needs no switch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "daemon.h"
#include "fs.h"
#include "log.h"
#include "os.h"

/* Whether lbd_creds_enter switched (the daemon has one thread): a client
 * of the daemon's own uid needs no switch, and then no switch back.  And
 * whether it set groups: the daemon's own are none (lbd_creds_init), so a
 * client without supplementary groups needs no setgroups either way. */
static int creds_switched;
static int groups_set;

/* The daemon's effective uid and gid, read once (creds_self): they never
 * change (only the filesystem ids do), so no request pays a geteuid or a
 * getegid. */
static int   self_known;
static uid_t self_uid;
static gid_t self_gid;

/* Reads the daemon's effective uid and gid the first time. */
static void
creds_self(void)
{
	if (self_known)
		return;
	self_uid = lbd_os_euid();
	self_gid = lbd_os_egid();
	self_known = 1;
}

/*
 * lbd_creds_init: at start, before any client: a daemon running as root
 * drops the supplementary groups it was started with (for the whole
 * process) and every capability but those it needs to act for clients
 * (lbd_os_privileges_drop).  0, or -1 with why filled.
 */
int
lbd_creds_init(char *why, size_t size)
{
	return lbd_os_privileges_drop(why, size);
}

/*
 * lbd_creds_new: credentials (uid, gid, n groups copied from groups, which
 * may be NULL when n is 0), with one reference.  NULL when out of memory.
 */
struct lbd_creds *
lbd_creds_new(uid_t uid, gid_t gid, size_t n, const gid_t *groups)
{
	struct lbd_creds *cr;

	if (n > LBD_GROUPS_MAX)
		n = LBD_GROUPS_MAX;
	if ((cr = malloc(sizeof(*cr) + n * sizeof(gid_t))) == NULL)
		return NULL;
	cr->refs = 1;
	cr->uid = uid;
	cr->gid = gid;
	cr->ngroups = n;
	if (n > 0)
		memcpy(cr->groups, groups, n * sizeof(gid_t));
	return cr;
}

/*
 * lbd_creds_of_peer: the credentials of the peer of socket fd: uid and
 * gid as lbd_os_peer_ids read them (by the caller), its supplementary
 * groups as they were when it connected (lbd_os_peer_groups).  Where the
 * OS cannot tell those (Linux before 4.13), the groups of the uid's
 * passwd entry (lbd_os_user_groups): what the user would have after a
 * login, which may differ from the process's; none when the uid has no
 * entry.  NULL when out of memory.
 */
struct lbd_creds *
lbd_creds_of_peer(uv_os_fd_t fd, uid_t uid, gid_t gid)
{
	struct lbd_creds *cr = NULL;
	gid_t            *groups = NULL;
	int               n;

	if ((n = lbd_os_peer_groups(fd, LBD_GROUPS_MAX, &groups)) == -1) {
		if (errno == ENOMEM)
			goto out;
		log_debug("uid %ld: no peer groups (%s); the groups of its "
		    "passwd entry", (long)uid, strerror(errno));
		if ((n = lbd_os_user_groups(uid, gid, LBD_GROUPS_MAX,
		    &groups)) == -1)
			goto out;
	}
	cr = lbd_creds_new(uid, gid, (size_t)n, groups);
out:
	free(groups);
	return cr;
}

/* lbd_creds_ref: one more reference to cr; returns cr. */
struct lbd_creds *
lbd_creds_ref(struct lbd_creds *cr)
{
	cr->refs++;
	return cr;
}

/* lbd_creds_unref: drops a reference to cr (may be NULL); frees it with
 * the last. */
void
lbd_creds_unref(struct lbd_creds *cr)
{
	if (cr != NULL && --cr->refs == 0)
		free(cr);
}

/* What runs before any client's credentials are taken on next
 * (lbd_creds_before_enter), and its argument. */
static void (*before_enter)(void *);
static void  *before_enter_arg;

/* lbd_creds_before_enter: see creds.h. */
void
lbd_creds_before_enter(void (*fn)(void *), void *arg)
{
	before_enter = fn;
	before_enter_arg = arg;
}

/*
 * lbd_creds_enter: takes on cr's uid, gid and groups for filesystem
 * access.  Returns 0, or LB_EFAILED with err filled when the switch cannot
 * be made (a daemon not running as root serving another user).  Pair with
 * lbd_creds_leave.
 */
int
lbd_creds_enter(const struct lbd_creds *cr, struct lockfs_err *err)
{
	void (*fn)(void *) = before_enter;
	uid_t self;

	if (fn != NULL) {       /* once, then it is the hook's to set again */
		before_enter = NULL;
		fn(before_enter_arg);
	}
	creds_self();
	self = self_uid;
	if (cr->uid == self)
		return 0;
	if (self != 0)
		return lockfs_fail(err, LB_EFAILED, EPERM, "this broker runs as "
		    "uid %ld and cannot act for uid %ld", (long)self,
		    (long)cr->uid);
	creds_switched = 1;
	if (cr->ngroups > 0) {
		groups_set = 1;
		if (lbd_os_fs_groups_set(cr->ngroups, cr->groups) == -1) {
			lbd_creds_leave();
			return lockfs_fail(err, LB_EFAILED, errno, "cannot "
			    "take on the groups of uid %ld", (long)cr->uid);
		}
	}
	if (lbd_os_fs_ids_set(cr->uid, cr->gid) == -1) {
		lbd_creds_leave();
		return lockfs_fail(err, LB_EFAILED, EPERM, "cannot take on uid "
		    "%ld gid %ld", (long)cr->uid, (long)cr->gid);
	}
	return 0;
}

/* lbd_creds_leave: back to the daemon's own filesystem credentials (a
 * no-op when lbd_creds_enter did not switch): uid first, which gives the
 * daemon back the capability to set its groups. */
void
lbd_creds_leave(void)
{
	int saved = errno;

	if (!creds_switched)
		return;
	lbd_os_fs_ids_restore(self_uid, self_gid);
	if (groups_set)
		lbd_os_fs_groups_set(0, NULL);
	creds_switched = groups_set = 0;
	errno = saved;
}

/*
 * lbd_creds_may_look: whether cr's user could look at file itself (lstat
 * it, as the user: every directory on the way searchable): 1 when lstat
 * finds it or finds nothing there (ENOENT, ENOTDIR), else 0 with err
 * filled (LB_EFAILED, sys_errno the reason, the same whether or not file
 * exists: the refusal comes from a directory on the way).
 */
int
lbd_creds_may_look(const struct lbd_creds *cr, const char *file,
    struct lockfs_err *err)
{
	struct lockfs_fs_info fi;
	int                   r, e = 0;

	if (lbd_creds_enter(cr, err) != 0)
		return 0;
	if ((r = lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &fi)) == -1)
		e = errno;
	lbd_creds_leave();
	if (r == 0 || e == ENOENT || e == ENOTDIR)
		return 1;
	lockfs_fail(err, LB_EFAILED, e, "%s: cannot look at it", file);
	return 0;
}
