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
 * Windows has no numeric users nor credentials to switch: a client's
 * user is its token's SID, numbered in the state database (store.c:
 * the same SID, the same uid, across restarts), and the switch acts as
 * its token (os.h: lbd_os_token_enter; SetThreadToken).  Credentials
 * read back from a record (a restarted daemon's holds, reconcile.c,
 * intents.c) have no token: they act with the token of an open
 * connection of the same uid (that user at the same integrity level:
 * users are numbered by SID and level there) whose token's groups have
 * the digest recorded with them (creds_token, creds_may_borrow; the
 * list of credentials with tokens below), and while there is none they
 * are not taken on at all (LB_EFAILED, and the daemon's OS layer refuses the
 * uid switch there): the step waits, as a step whose credentials cannot
 * be taken on does on Linux (a restarted daemon's hold is then
 * "unjudged", held for its process until that process, or another of
 * its user, connects).  The daemon never acts with its own rights for
 * a client.
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
#include "store.h"

/* Whether lbd_creds_enter switched (the daemon has one thread): a client
 * of the daemon's own uid needs no switch, and then no switch back.  And
 * whether it set groups: the daemon's own are none (lbd_creds_init), so a
 * client without supplementary groups needs no setgroups either way. */
static int creds_switched;
static int groups_set;
static int token_entered;       /* acting as a token (Windows) */

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
	cr->token = NULL;
	cr->tok_next = cr->tok_prev = NULL;
	cr->ngroups = n;
	if (n > 0)
		memcpy(cr->groups, groups, n * sizeof(gid_t));
	return cr;
}

/* lbd_creds_of_user: see creds.h. */
struct lbd_creds *
lbd_creds_of_user(uid_t uid)
{
	struct lbd_creds *cr = NULL;
	gid_t             gid, *groups = NULL;
	int               n;

	if (lbd_os_user_gid(uid, &gid) == 0 &&
	    (n = lbd_os_user_groups(uid, gid, LBD_GROUPS_MAX, &groups)) >= 0)
		cr = lbd_creds_new(uid, gid, (size_t)n, groups);
	free(groups);
	return cr;
}

/* The credentials that have a token and whose connection is open
 * (Windows: every open connection's), the newest first: those a
 * record's credentials borrow one from (creds_token). */
static struct lbd_creds *tokens;

/* Gives cr (no token yet) token, which it owns from now on, and lists
 * it among the credentials with a token. */
static void
creds_token_set(struct lbd_creds *cr, struct lbd_os_token *token)
{
	cr->token = token;
	cr->tok_prev = NULL;
	if ((cr->tok_next = tokens) != NULL)
		tokens->tok_prev = cr;
	tokens = cr;
}

/*
 * lbd_creds_unlist: see creds.h.  A hold outlives its connection
 * (released a turn at a time, kept for a process, left releasing): its
 * credentials and their token live on with it, and went on lending that
 * token to records of their uid, so that a record acted with the token
 * of a process long gone.  A token is lent only while its connection is
 * open: its user is there then, acting with those rights itself.
 * Idempotent; the token stays cr's own.
 */
void
lbd_creds_unlist(struct lbd_creds *cr)
{
	if (cr->token == NULL || (cr->tok_prev == NULL && tokens != cr))
		return;
	if (cr->tok_prev != NULL)
		cr->tok_prev->tok_next = cr->tok_next;
	else
		tokens = cr->tok_next;
	if (cr->tok_next != NULL)
		cr->tok_next->tok_prev = cr->tok_prev;
	cr->tok_next = cr->tok_prev = NULL;
}

/* Whether credentials cr (a record's, without a token) may act with the
 * token of o (an open connection's): of cr's uid and, where cr carries
 * the digest of its holder's token's groups (Windows: creds_of_token),
 * of the same digest; a record without one (written before digests were
 * kept) as before, by uid alone. */
static int
creds_may_borrow(const struct lbd_creds *cr, const struct lbd_creds *o)
{
	return o->uid == cr->uid && (cr->ngroups == 0 ||
	    (o->ngroups == cr->ngroups && memcmp(o->groups, cr->groups,
	    cr->ngroups * sizeof(gid_t)) == 0));
}

/* The token cr acts with: its own, else that of the newest credentials
 * of its uid whose connection is open (lbd_creds_unlist), else NULL
 * (always on Linux, where no credentials have one).  Where users are
 * named by token (Windows), a uid numbers a SID at one integrity level
 * (peertoken.c, lbd_user_key), so that a record borrows only a token of
 * its holder's SID at its holder's level: never one with more rights
 * than its holder had for being elevated; and only one whose groups are
 * its holder's (creds_may_borrow): never a batch logon's for an
 * interactive holder, say. */
static const struct lbd_os_token *
creds_token(const struct lbd_creds *cr)
{
	const struct lbd_creds *o;

	if (cr->token != NULL)
		return cr->token;
	for (o = tokens; o != NULL; o = o->tok_next)
		if (creds_may_borrow(cr, o))
			return o->token;
	return NULL;
}

/* Credentials of a peer whose OS names users by token (Windows): user
 * (a SID) numbered in d's state database into *uid and *gid (the same
 * number: there are no numeric groups), with token, which they own, and
 * for groups the digest of token's (lbd_os_token_groups), recorded with
 * their holds as a Linux client's supplementary groups are.  NULL with
 * why and errno (ENOMEM, or EOVERFLOW when no number is left to give
 * it: lbd_store_user_uid), token then freed. */
static struct lbd_creds *
creds_of_token(struct lbd *d, const char *user, struct lbd_os_token *token,
    uid_t *uid, gid_t *gid, char *why, size_t size)
{
	struct lbd_creds *cr = NULL;
	gid_t             groups[LBD_OS_GROUPS_WORDS];
	size_t            n;

	if (lbd_store_user_uid(d, user, uid) != 0) {
		snprintf(why, size, "%s", errno == ENOMEM ? "out of memory" :
		    "no user number left to give it");
		goto out;
	}
	*gid = (gid_t)*uid;
	n = lbd_os_token_groups(token, groups);
	if ((cr = lbd_creds_new(*uid, *gid, n, groups)) == NULL) {
		snprintf(why, size, "out of memory");
		errno = ENOMEM;
		goto out;
	}
	creds_token_set(cr, token);
	token = NULL;
out:
	lbd_os_token_free(token);
	return cr;
}

/*
 * lbd_creds_of_peer: the credentials of the peer of socket fd, process
 * pid.  Where the OS names users by token (lbd_os_peer_user, Windows):
 * its token, its user's number (creds_of_token).  Else uid and gid as
 * lbd_os_peer_ids read them (by the caller), its supplementary groups
 * as they were when it connected (lbd_os_peer_groups).  Where the OS
 * cannot tell those (Linux before 4.13), the groups of the uid's passwd
 * entry (lbd_os_user_groups): what the user would have after a login,
 * which may differ from the process's; none when the uid has no entry.
 * NULL with why and errno when out of memory or not to be acted as.
 */
struct lbd_creds *
lbd_creds_of_peer(struct lbd *d, uv_os_fd_t fd, pid_t pid, uid_t *uid,
    gid_t *gid, char *why, size_t size)
{
	struct lbd_creds    *cr = NULL;
	struct lbd_os_token *token = NULL;
	gid_t               *groups = NULL;
	char                 user[LBD_OS_USER_MAX];
	int                  n;

	snprintf(why, size, "out of memory");
	if ((n = lbd_os_peer_user(fd, pid, user, &token, why, size)) != 0) {
		if (n == 1)
			cr = creds_of_token(d, user, token, uid, gid, why,
			    size);
		goto out;
	}
	if ((n = lbd_os_peer_groups(fd, LBD_GROUPS_MAX, &groups)) == -1) {
		if (errno == ENOMEM)
			goto out;
		log_debug("uid %ld: no peer groups (%s); the groups of its "
		    "passwd entry", (long)*uid, strerror(errno));
		if ((n = lbd_os_user_groups(*uid, *gid, LBD_GROUPS_MAX,
		    &groups)) == -1)
			goto out;
	}
	cr = lbd_creds_new(*uid, *gid, (size_t)n, groups);
out:
	free(groups);
	return cr;
}

/* lbd_creds_tokenless: see creds.h. */
int
lbd_creds_tokenless(const struct lbd_creds *cr)
{
	return lbd_os_users_by_token() && creds_token(cr) == NULL;
}

/*
 * lbd_creds_uid_of_pid: see creds.h.  Where the OS names users by token
 * (lbd_os_proc_user): the process token's SID, numbered; a token the
 * caller may not read (EACCES) is another user's: (uid_t)-1.  Else
 * lockfs_os_process_uid.
 */
int
lbd_creds_uid_of_pid(struct lbd *d, pid_t pid, uid_t *uid)
{
	char user[LBD_OS_USER_MAX];
	int  r;

	if ((r = lbd_os_proc_user(pid, user)) == 0)
		r = lockfs_os_process_uid(pid, uid);
	else if (r == 1)
		r = lbd_store_user_uid(d, user, uid);
	else if (errno == EACCES) {
		*uid = (uid_t)-1;
		r = 0;
	}
	return r;
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
	if (cr == NULL || --cr->refs > 0)
		return;
	lbd_creds_unlist(cr);
	lbd_os_token_free(cr->token);
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

/* Acts as token for cr (creds_token) until lbd_creds_leave; in the
 * debug log, the user the thread then acts as, read back from its own
 * token (what a step really runs as).  0, or LB_EFAILED with err. */
static int
creds_token_enter(const struct lbd_creds *cr,
    const struct lbd_os_token *token, struct lockfs_err *err)
{
	char user[LBD_OS_USER_MAX];

	if (lbd_os_token_enter(token) != 0)
		return lockfs_fail(err, LB_EFAILED, errno, "cannot act as "
		    "uid %ld (its token)", (long)cr->uid);
	token_entered = 1;
	if (lbd_log_debug && lbd_os_token_user(user) == 0)
		log_debug("uid %ld: acting as %s", (long)cr->uid, user);
	return 0;
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
	const struct lbd_os_token *token;
	uid_t self;

	if (fn != NULL) {       /* once, then it is the hook's to set again */
		before_enter = NULL;
		fn(before_enter_arg);
	}
	if ((token = creds_token(cr)) != NULL)
		return creds_token_enter(cr, token, err);
	creds_self();
	self = self_uid;
	if (cr->uid == self && !lbd_os_users_by_token())
		return 0;       /* (Windows: a record of uid 0 acts as none) */
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
		if (errno == ENOSYS)    /* users by token: none of this one */
			return lockfs_fail(err, LB_EFAILED, EPERM, "no token "
			    "of uid %ld to act with: none of its processes is "
			    "connected", (long)cr->uid);
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

	if (token_entered) {
		lbd_os_token_leave();
		token_entered = 0;
	}
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
