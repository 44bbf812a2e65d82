/*
 * creds.c: acting on the filesystem with a client's credentials.  The
 * broker never does for a client what the client could not do itself: it
 * creates, removes, reads and looks at artefacts with the client's
 * filesystem uid, gid and supplementary groups, all three.
 *
 * A struct lbd_creds is read from the peer at accept (SO_PEERCRED and
 * SO_PEERGROUPS), shared by the connection and each of its holds
 * (reference counted: a hold outlives its connection when kept), and
 * recorded in the state database, so that a restarted daemon acts on the
 * previous run's holds with their clients' credentials too.
 *
 * The switch is per thread and made with raw system calls: setfsuid and
 * setfsgid are per thread already; setgroups is too in the kernel, but
 * glibc's wrapper changes every thread of the process (and libuv may have
 * threads), so the system call is made directly.  The daemon has one
 * thread doing this, between lbd_creds_enter and lbd_creds_leave, and no
 * callback runs in between.
 *
 * A daemon started as root drops its own supplementary groups at start
 * (lbd_creds_init): a client taken on as root (uid 0) then acts with no
 * group it did not bring, and nothing the daemon inherited from the shell
 * that started it leaks to a client.  It also keeps only the capabilities
 * its systemd unit leaves it (setuid, setgid, DAC override, fowner), which
 * the kernel takes from the effective set while the fsuid is a client's:
 * any other one would still apply to that client's steps, CAP_SYS_PTRACE
 * above all, which lets /proc/PID/cwd, /proc/PID/root and /proc/PID/fd/N
 * of anyone's process lead past directories the client may not search.  A daemon that does not run as root
 * (a per-user instance) serves only its own user and needs no switch.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "creds.h"
#include "daemon.h"
#include "log.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59        /* Linux 4.13 */
#endif

/* The system call that sets this thread's groups with 32-bit gids. */
#ifdef SYS_setgroups32
#define LBD_SYS_SETGROUPS SYS_setgroups32
#else
#define LBD_SYS_SETGROUPS SYS_setgroups
#endif

/* Whether lbd_creds_enter switched (the daemon has one thread): a client
 * of the daemon's own uid needs no switch, and then no switch back.  And
 * whether it set groups: the daemon's own are none (lbd_creds_init), so a
 * client without supplementary groups needs no setgroups either way. */
static int creds_switched;
static int groups_set;

/* Sets the calling thread's supplementary groups only. */
static int
thread_setgroups(size_t n, const gid_t *groups)
{
	return (int)syscall(LBD_SYS_SETGROUPS, n, groups);
}

/* The capabilities a root daemon keeps (those of its systemd unit). */
static const int caps_kept[] = {
	CAP_SETUID, CAP_SETGID, CAP_DAC_OVERRIDE, CAP_FOWNER
};

/*
 * Leaves the process only the capabilities of caps_kept, in its effective
 * and permitted sets (none inheritable): raw capget and capset, for every
 * thread there is (at start: one).  0, or -1 with errno.
 */
static int
caps_drop(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct   data[_LINUX_CAPABILITY_U32S_3];
	__u32                           keep[_LINUX_CAPABILITY_U32S_3];
	size_t                          i;

	memset(&hdr, 0, sizeof(hdr));
	memset(keep, 0, sizeof(keep));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return -1;
	for (i = 0; i < sizeof(caps_kept) / sizeof(caps_kept[0]); i++)
		keep[caps_kept[i] / 32] |= 1u << (caps_kept[i] % 32);
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		data[i].effective &= keep[i];
		data[i].permitted &= keep[i];
		data[i].inheritable = 0;
	}
	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * lbd_creds_init: at start, before any client: a daemon running as root
 * drops the supplementary groups it was started with (setgroups(0, NULL),
 * for the whole process) and every capability but those of caps_kept.
 * 0, or -1 with why filled.
 */
int
lbd_creds_init(char *why, size_t size)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) == -1) {
		snprintf(why, size, "cannot drop the supplementary groups: %s",
		    strerror(errno));
		return -1;
	}
	if (caps_drop() == -1) {
		snprintf(why, size, "cannot drop the capabilities it does not "
		    "need: %s", strerror(errno));
		return -1;
	}
	return 0;
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
 * gid from SO_PEERCRED (*cred, read by the caller), its supplementary
 * groups from SO_PEERGROUPS (as they were when it connected).  On a
 * kernel without SO_PEERGROUPS (before 4.13), the groups of the uid's
 * passwd entry (getgrouplist): what the user would have after a login,
 * which may differ from the process's; none when the uid has no entry.
 * NULL when out of memory.
 */
struct lbd_creds *
lbd_creds_of_peer(int fd, uid_t uid, gid_t gid)
{
	struct lbd_creds *cr = NULL;
	struct passwd     pw, *pwp = NULL;
	socklen_t         len = 64 * sizeof(gid_t);
	gid_t            *groups = NULL, *more;
	char              buf[1024];
	int               n = 0;

	for (;;) {
		if ((more = realloc(groups, len)) == NULL)
			goto out;
		groups = more;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups,
		    &len) == 0) {
			n = (int)(len / sizeof(gid_t));
			break;
		}
		if (errno != ERANGE || len > LBD_GROUPS_MAX * sizeof(gid_t)) {
			n = -1;
			break;
		}
	}
	if (n == -1) {
		log_debug("uid %ld: no SO_PEERGROUPS (%s); the groups of its "
		    "passwd entry", (long)uid, strerror(errno));
		n = 0;
		if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) == 0 &&
		    pwp != NULL) {
			n = LBD_GROUPS_MAX;
			if ((more = realloc(groups, (size_t)n *
			    sizeof(gid_t))) == NULL)
				goto out;
			groups = more;
			if (getgrouplist(pw.pw_name, gid, groups, &n) == -1)
				n = 0;  /* more than the maximum: none */
		}
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

/*
 * lbd_creds_enter: takes on cr's uid, gid and groups for filesystem
 * access.  Returns 0, or LB_EFAILED with err filled when the switch cannot
 * be made (a daemon not running as root serving another user).  Pair with
 * lbd_creds_leave.
 */
int
lbd_creds_enter(const struct lbd_creds *cr, struct lockfs_err *err)
{
	uid_t self = geteuid();

	if (cr->uid == self)
		return 0;
	if (self != 0)
		return lockfs_fail(err, LB_EFAILED, EPERM, "this broker runs as "
		    "uid %ld and cannot act for uid %ld", (long)self,
		    (long)cr->uid);
	creds_switched = 1;
	if (cr->ngroups > 0) {
		groups_set = 1;
		if (thread_setgroups(cr->ngroups, cr->groups) == -1) {
			lbd_creds_leave();
			return lockfs_fail(err, LB_EFAILED, errno, "cannot "
			    "take on the groups of uid %ld", (long)cr->uid);
		}
	}
	setfsgid(cr->gid);
	setfsuid(cr->uid);
	/* setfsuid reports the previous value; asking again tells whether
	 * the switch took. */
	if ((uid_t)setfsuid((uid_t)-1) != cr->uid ||
	    (gid_t)setfsgid((gid_t)-1) != cr->gid) {
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
	setfsuid(geteuid());
	setfsgid(getegid());
	if (groups_set)
		thread_setgroups(0, NULL);
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
	struct stat st;
	int         r, e = 0;

	if (lbd_creds_enter(cr, err) != 0)
		return 0;
	if ((r = lstat(file, &st)) == -1)
		e = errno;
	lbd_creds_leave();
	if (r == 0 || e == ENOENT || e == ENOTDIR)
		return 1;
	lockfs_fail(err, LB_EFAILED, e, "%s: cannot look at it", file);
	return 0;
}
