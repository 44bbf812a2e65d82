/*
 * creds.h: acting on the filesystem with a client's credentials
 * (creds.c): every step the daemon takes on an artefact for a client runs
 * between lbd_creds_enter and lbd_creds_leave with that client's uid,
 * gid and supplementary groups.
 */
#ifndef LBD_CREDS_H
#define LBD_CREDS_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>                 /* uv_os_fd_t */

#include "lockfs.h"             /* uid_t, gid_t (lockfs/os.h: placeholders
                                   where the OS has no numeric users) */

struct lockfs_err;

/* The most supplementary groups a client's credentials carry (Linux's
 * NGROUPS_MAX). */
#define LBD_GROUPS_MAX 65536

struct lbd;
struct lbd_os_token;

/* Whose filesystem credentials a step runs with (creds.c): a client's
 * uid, gid and supplementary groups, shared (reference counted) by its
 * connection and its holds, recorded with each hold; where the OS acts
 * for a user by a token (Windows), the client's token too, or NULL for
 * credentials read back from a record (a restarted daemon's), which
 * then act with a token of the same uid's while it has one (creds.c). */
struct lbd_creds {
	unsigned                 refs;
	uid_t                    uid;
	gid_t                    gid;
	struct lbd_os_token     *token;     /* owned; NULL: none */
	struct lbd_creds        *tok_next;  /* the credentials that have */
	struct lbd_creds        *tok_prev;  /* a token (creds.c) */
	size_t                   ngroups;
	gid_t                    groups[];
};
/* lbd_creds_init: at start, before any client: a daemon running as root
 * drops its supplementary groups and the capabilities it does not need.
 * 0, or -1 with why (size bytes) filled. */
int  lbd_creds_init(char *why, size_t size);

/* lbd_creds_new: credentials (uid, gid, n groups copied from groups,
 * NULL when n is 0) with one reference; NULL when out of memory. */
struct lbd_creds *lbd_creds_new(uid_t uid, gid_t gid, size_t n,
         const gid_t *groups);

/* lbd_creds_of_user: the credentials of user uid as a login gives them
 * (its user-database entry's primary group and groups), with one
 * reference, for a step the daemon takes for that user with no
 * connection of it (litter of its left by a killed daemon: litter.c).
 * NULL when it has no entry or out of memory. */
struct lbd_creds *lbd_creds_of_user(uid_t uid);

/* lbd_creds_of_peer: the credentials of the peer of socket fd, process
 * pid, with one reference.  Linux: uid and gid as SO_PEERCRED gave them
 * (*uid, *gid, read by the caller), its groups from SO_PEERGROUPS, or
 * the uid's passwd groups on an older kernel.  Windows: its token, and
 * its SID's number in d's state database into *uid and *gid.  NULL when
 * out of memory or when the peer cannot be acted as, with why (size
 * bytes) saying why and errno (ENOMEM when out of memory). */
struct lbd_creds *lbd_creds_of_peer(struct lbd *d, uv_os_fd_t fd, pid_t pid,
         uid_t *uid, gid_t *gid, char *why, size_t size);

/* lbd_creds_tokenless: 1 when cr cannot be taken on now for want of a
 * token (the OS names users by token, and neither cr nor a live
 * connection of its uid has one: a restarted daemon's record before a
 * process of its user connects); else 0 (always on Linux). */
int  lbd_creds_tokenless(const struct lbd_creds *cr);

/* lbd_creds_uid_of_pid: the uid of process pid, looked at with the
 * calling thread's credentials (Windows: its token's SID, numbered in
 * d's state database; (uid_t)-1 when its token may not be read: not the
 * caller's).  0, or -1 with errno (ESRCH: no such process). */
int  lbd_creds_uid_of_pid(struct lbd *d, pid_t pid, uid_t *uid);

/* lbd_creds_unlist: the connection of cr (a peer's) closed: its token
 * (Windows) is lent to no record from now on (lbd_creds_tokenless,
 * lbd_creds_enter), while cr still acts with it for its own holds.
 * Idempotent; nothing when cr has no token. */
void lbd_creds_unlist(struct lbd_creds *cr);

/* lbd_creds_ref: one more reference to cr; returns cr. */
struct lbd_creds *lbd_creds_ref(struct lbd_creds *cr);

/* lbd_creds_unref: drops a reference to cr (may be NULL); the last frees
 * it. */
void lbd_creds_unref(struct lbd_creds *cr);

/* lbd_creds_enter: takes on cr's uid, gid and groups for filesystem
 * access (Windows: acts as cr's token, or while cr has none as the token
 * of an open connection of cr's uid).  0, or LB_EFAILED with err filled
 * when the switch cannot be made (Windows: no token of cr's uid).  Pair
 * with lbd_creds_leave; no callback runs in between. */
int  lbd_creds_enter(const struct lbd_creds *cr, struct lockfs_err *err);

/* lbd_creds_before_enter: fn(arg) runs, once, at the next lbd_creds_enter,
 * before the switch (NULL: nothing): what must be done before any step
 * for a client (swap.c finishes the handoffs owed their last step, whose
 * lock directories it keeps open).  fn may enter credentials itself. */
void lbd_creds_before_enter(void (*fn)(void *), void *arg);

/* lbd_creds_leave: back to the daemon's own filesystem credentials. */
void lbd_creds_leave(void);

/* lbd_creds_may_look: 1 when cr's user could lstat file itself (it is
 * there, or nothing is), else 0 with err filled, the same whether or not
 * file exists. */
int  lbd_creds_may_look(const struct lbd_creds *cr, const char *file,
         struct lockfs_err *err);

#endif
