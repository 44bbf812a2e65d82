/*
 * request.c: one handler per client message, and the single place that
 * checks a request before it acts: the connection's state (HELLO first,
 * once), the message's direction, and each field's value.  Every refusal
 * goes back as one ERR line with the request's id.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "clusterd.h"
#include "cohort.h"
#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "hold.h"
#include "list.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "os.h"
#include "reconcile.h"
#include "readers.h"
#include "reply.h"
#include "set.h"
#include "reqids.h"
#include "request.h"
#include "wait.h"

/* The fields every lock request shares, read and checked. */
struct lock_args {
	const char *path;
	unsigned    method;
	pid_t       tid;
	pid_t       kept_pid;   /* pid=: the process a kept hold is for */
	char        abs[PATH_MAX];      /* path, absolute and normalised */
};

/* What a request does to the files of a lock that its connection holds
 * (lock_args): whether the magic-link check may be left out for it. */
enum own_hold {
	OWN_NEVER,      /* the check always (BREAK, RECLAIM) */
	OWN_ANY,        /* not for the connection's own hold: no file step
	                   at all (a re-entrant ACQUIRE, STATUS) */
	OWN_ALONE,      /* not for its own hold without waiters: only the
	                   holder's own steps, as the holder (RELEASE) */
};

/*
 * Whether c may act for process pid (ACQUIRE, RELEASE, STATUS pid=): it
 * runs (and is not a zombie) and is c's user's, or c is root.  Its owner
 * is looked for as c (lbd_creds_uid_of_pid: /proc/PID on Linux), so that a
 * process hidden from c (hidepid, unless the daemon keeps CAP_SYS_PTRACE)
 * is "no such process" to it, and one c may not look at (Windows: its
 * DACL) another user's, before the daemon looks at it with its own
 * rights.  0, or an LBP_E* code with the reason already sent to c.
 */
static int
pid_allowed(struct lbd_conn *c, uint64_t id, pid_t pid)
{
	struct lockfs_owner o;
	struct lockfs_err   err;
	uid_t               owner = (uid_t)-1;
	int                 r = -1;

	if (lbd_creds_enter(c->creds, &err) == 0) {
		r = lbd_creds_uid_of_pid(c->d, pid, &owner);
		lbd_creds_leave();
	}
	if (r == 0 && c->uid != 0 && owner != c->uid) {
		lbd_conn_error(c, id, LBP_EPERM, "pid %ld: process of another "
		    "user%s", (long)pid, owner == (uid_t)-1 ? " (this client "
		    "may not look at it)" : "");
		return LBP_EPERM;
	}
	if (r == -1 || lockfs_owner_of_pid(&o, pid, 0) == -1) {
		lbd_conn_error(c, id, LBP_EINVAL, "pid %ld: no such process",
		    (long)pid);
		return LBP_EINVAL;
	}
	return 0;
}

/*
 * Whether the resolution of file or of lock, as c's user, passes through
 * a magic link (/proc/PID/fd/N, cwd, root, ...: a symbolic link of c's
 * own making may lead to the daemon's /proc/self):
 * lbd_os_path_through_magic_link (on Linux openat2 with
 * RESOLVE_NO_MAGICLINKS, 5.6), both under one switch of credentials.  0
 * where the kernel cannot tell (the prefix refusal and the daemon's
 * working from "/" are then what stands).  A check before the steps: a
 * client that swaps its own links meanwhile can pass it, and finds only
 * the daemon's open files, whose own modes still apply.
 */
static int
through_magic_link(const struct lbd_conn *c, const char *file,
    const char *lock)
{
	struct lockfs_err err;
	int               r;

	if (lbd_creds_enter(c->creds, &err) != 0)
		return 0;
	r = lbd_os_path_through_magic_link(file) ||
	    lbd_os_path_through_magic_link(lock);
	lbd_creds_leave();
	return r;
}

/*
 * Whether a request whose verb does own (see enum own_hold) to a's lock
 * is one on c's own hold that runs no file step but c's own, as c: then
 * the magic-link check is left out.  The hold was granted to c, on this
 * connection, after that check of its path; a magic link swapped into
 * the path since leads c's steps where a client that races the check
 * leads them anyway (docs/THREAT-MODEL.md, "What it does not promise"):
 * the daemon's working directory and root ("/"), and its open files,
 * none of them a directory, whose own modes apply.  Never for a kept
 * hold (pid=: its recheck may look at its artefact) nor for a RELEASE of
 * a lock with waiters (the handoff's steps run as the next holder).
 */
static int
own_hold(struct lbd_conn *c, const struct lock_args *a, enum own_hold own)
{
	struct lbd_lock *l;

	if (own == OWN_NEVER || a->kept_pid != 0 ||
	    (l = lbd_lock_find(c->d, a->abs, a->method)) == NULL ||
	    lbd_hold_find(l, c, 0, a->tid) == NULL)
		return 0;
	return own == OWN_ANY || TAILQ_EMPTY(&l->waiters);
}

/*
 * Reads path, method, thread and pid from m, and checks the path (the
 * daemon's own /proc; magic links, unless own_hold says the request
 * needs no such check).  0, or an LBP_E* code with the reason already
 * sent to c.
 */
static int
lock_args(struct lbd_conn *c, const struct lbp_msg *m, struct lock_args *a,
    enum own_hold own)
{
	const char *method = lbp_get(m, "method");
	uint64_t    tid = 0, pid = 0;
	char        lock[PATH_MAX + 8];

	a->path = lbp_get(m, "path");
	a->method = LB_LINK;
	if (a->path == NULL || lbd_os_path_is_relative(a->path)) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "path must be absolute");
		return LBP_EINVAL;
	}
	if (lockfs_abspath(a->path, a->abs, sizeof(a->abs)) != 0)
		snprintf(a->abs, sizeof(a->abs), "%s", a->path);
	if (lbd_os_path_in_own_proc(a->abs)) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "path %s is in the "
		    "daemon's own /proc entries, which it may not enter for a "
		    "client", a->abs);
		return LBP_EINVAL;
	}
	if (method != NULL && lockfs_method_parse(method, &a->method) != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "unknown method \"%.32s\"",
		    method);
		return LBP_EINVAL;
	}
	if (lbp_get_u64(m, "thread", &tid) == -2 || tid > 0x7fffffff) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "thread must be a "
		    "decimal thread id");
		return LBP_EINVAL;
	}
	if (lbp_get_u64(m, "pid", &pid) == -2 || pid > 0x7fffffff ||
	    (lbp_get(m, "pid") != NULL && (pid == 0 || tid != 0))) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "pid must be a decimal "
		    "process id, without thread");
		return LBP_EINVAL;
	}
	a->tid = (pid_t)tid;    /* for every method: the daemon, not the
	                           artefact, tells a pid file's threads apart */
	a->kept_pid = (pid_t)pid;
	if (!own_hold(c, a, own) && snprintf(lock, sizeof(lock), "%s.lock",
	    a->abs) < (int)sizeof(lock) &&
	    through_magic_link(c, a->abs, lock)) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "path %s leads through a "
		    "magic link (/proc/PID/fd, cwd, root) or a loop of "
		    "symbolic links, which the daemon may not follow for a "
		    "client", a->abs);
		return LBP_EINVAL;
	}
	if (pid != 0)
		return pid_allowed(c, m->id, a->kept_pid);
	return 0;
}

static void
req_hello(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lbp_out o;
	uint64_t       version = 0;

	if (c->state != LBD_CONN_NEW) {
		lbd_conn_error(c, m->id, LBP_EHELLO, "HELLO was already said");
		return;
	}
	if (lbp_get_u64(m, "version", &version) != 0 ||
	    version < LBP_VERSION_MIN || version > LBP_VERSION) {
		lbd_conn_error(c, m->id, LBP_EVERSION, "this daemon speaks "
		    "versions %d to %d", LBP_VERSION_MIN, LBP_VERSION);
		return;
	}
	c->state = LBD_CONN_READY;
	c->version = (unsigned)version;
	lbp_begin(&o, LBP_MSG_OK, 1, m->id);
	lbp_add_u64(&o, "version", version);
	lbp_add_str(&o, "server", c->d->server);
	lbp_add_u64(&o, "pid", (uint64_t)getpid());
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

/*
 * Reads m's mode (version 2: docs/SHARED.md) into *shared.  0, or -1
 * with the error replied: not a mode, not in a version-1 session, a
 * shared sqlite lock (not there yet).
 */
static int
mode_arg(struct lbd_conn *c, const struct lbp_msg *m,
    const struct lock_args *a, int *shared)
{
	const char *mode = lbp_get(m, "mode");

	*shared = 0;
	if (mode == NULL)
		return 0;
	if (c->version < LBP_VERSION_SHARED) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "mode needs protocol "
		    "version %d", LBP_VERSION_SHARED);
		return -1;
	}
	if (strcmp(mode, "shared") == 0)
		*shared = 1;
	else if (strcmp(mode, "exclusive") != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "mode must be exclusive "
		    "or shared");
		return -1;
	}
	if (*shared && a->method == LB_SQLITE) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "shared locks are not "
		    "there yet for the sqlite method");
		return -1;
	}
	return 0;
}

/* An ACQUIRE with set= and of= (version 3): a member of a set (set.c),
 * exclusive, for a thread of the connection's process. */
static void
acquire_member(struct lbd_conn *c, const struct lbp_msg *m,
    const struct lock_args *a, double timeout, int stale, int shared)
{
	uint64_t key = 0, of = 0;

	if (c->version < LBP_VERSION_SETS) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "set and of need "
		    "protocol version %d", LBP_VERSION_SETS);
		return;
	}
	if (lbp_get_u64(m, "set", &key) != 0 ||
	    lbp_get_u64(m, "of", &of) != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "a member of a set has "
		    "both set and of, decimal numbers");
		return;
	}
	if (shared || a->kept_pid != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "a set is taken "
		    "exclusive, by a thread of the connection's process "
		    "(no mode=shared, no pid=)");
		return;
	}
	lbd_set_member(c, m->id, key, of, a->path, a->method, a->tid,
	    timeout, stale);
}

static void
req_acquire(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lock_args a;
	double           timeout = INFINITY;
	uint64_t         stale = 0;
	int              shared, r;
	char             name[PATH_MAX], why[1024];

	if (lock_args(c, m, &a, OWN_ANY) != 0 ||
	    mode_arg(c, m, &a, &shared) != 0)
		return;
	/* A cluster lock (docs/CLUSTER.md) is taken through its cohort
	 * (lock.c, cohort.c) by a daemon that runs an etcd client. */
	if ((r = lbd_cluster_name(c->d->cfg.cluster_dir, a.abs, name,
	    sizeof(name))) != 0 && (c->d->cluster == NULL || r < 0 ||
	    c->version < 2 || lbp_get(m, "set") != NULL ||
	    lbp_get(m, "of") != NULL)) {
		lbd_conn_error(c, m->id, LBP_EFAILED, "%s is a cluster lock "
		    "(under cluster_dir %s): %s", a.abs, c->d->cfg.cluster_dir,
		    r < 0 ? "its name is too long" : c->d->cluster == NULL ?
		    lbd_clusterd_refusal(c->d, why, sizeof(why)) :
		    c->version < 2 ? "it needs a version-2 session (HELLO "
		    "version=2), which is told when the lock is lost (LOST)" :
		    "a cluster lock cannot be a member of a set (yet)");
		return;
	}
	if (lbp_get_timeout(m, "timeout", &timeout) == -2) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "timeout must be inf or "
		    "a decimal number of seconds");
		return;
	}
	if (lbp_get_u64(m, "stale", &stale) == -2 || stale > 1) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "stale must be 0 or 1");
		return;
	}
	if (c->d->stopping) {
		lbd_conn_error(c, m->id, LBP_ESHUTDOWN, "the daemon is "
		    "stopping");
		return;
	}
	if (lbp_get(m, "set") != NULL || lbp_get(m, "of") != NULL) {
		acquire_member(c, m, &a, timeout, (int)stale, shared);
		return;
	}
	lbd_acquire(c, m->id, a.path, a.method, a.kept_pid, a.tid, timeout,
	    (int)stale, shared);
}

/* UPGRADE and DOWNGRADE: version 2 (docs/SHARED.md). */
static void
req_upgrade(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lock_args a;
	double           timeout = INFINITY;

	if (c->version < LBP_VERSION_SHARED) {
		lbd_conn_error(c, m->id, LBP_EVERB, "UPGRADE needs protocol "
		    "version %d", LBP_VERSION_SHARED);
		return;
	}
	if (lock_args(c, m, &a, OWN_ANY) != 0)
		return;
	if (lbp_get_timeout(m, "timeout", &timeout) == -2) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "timeout must be inf or "
		    "a decimal number of seconds");
		return;
	}
	if (c->d->stopping) {
		lbd_conn_error(c, m->id, LBP_ESHUTDOWN, "the daemon is "
		    "stopping");
		return;
	}
	lbd_upgrade(c, m->id, a.abs, a.method, a.tid, timeout);
}

static void
req_downgrade(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lock_args a;
	double           by = INFINITY;

	if (c->version < LBP_VERSION_SHARED) {
		lbd_conn_error(c, m->id, LBP_EVERB, "DOWNGRADE needs protocol "
		    "version %d", LBP_VERSION_SHARED);
		return;
	}
	if (lock_args(c, m, &a, OWN_ANY) != 0)
		return;
	if (lbp_get_timeout(m, "by", &by) == -2) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "by must be inf or a "
		    "decimal number of seconds");
		return;
	}
	lbd_downgrade(c, m->id, a.abs, a.method, a.tid, by);
}

static void
req_release(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lockfs_err err;
	struct lock_args  a;
	struct lbd_lock  *l;
	char              file[PATH_MAX];
	int               r;

	if (lock_args(c, m, &a, OWN_ALONE) != 0)
		return;
	if ((l = lbd_lock_get(c->d, a.path, a.method, &err)) == NULL)
		r = err.code;
	else if (lbd_hold_find(l, c, a.kept_pid, a.tid) == NULL &&
	    lbd_reader_of(l, c, a.kept_pid, a.tid) == NULL &&
	    !lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err)) {
		lbd_lock_put(l);
		lbd_conn_error(c, m->id, LBP_EPERM, "%s", err.msg);
		return;
	} else
		r = lbd_release(c, l, a.kept_pid, a.tid, m->id, &err);
	if (r == 0)
		lbd_conn_ok(c, m->id);
	else if (r == LBD_HOLD_LEFT_RELEASING)
		lbd_conn_ok_pending(c, m->id);
	else if (r < 0)
		lbd_conn_error(c, m->id, lbp_from_lb(r), "%s", err.msg);
}

/* lbd_add_holder: adds what is known of a holder to a STATUS or ITEM
 * line: of the broker's hold h, or else of the artefact's holder fh (one
 * of them may be NULL), and the number of waiters. */
void
lbd_add_holder(struct lbp_out *o, const struct lbd_hold *h,
    const struct lockfs_holder *fh, unsigned waiters)
{
	if (h != NULL) {
		lbp_add_i64(o, "holder_pid", h->conn != NULL ?
		    (int64_t)h->conn->pid : (int64_t)h->fs.owner.pid);
		lbp_add_i64(o, "holder_uid", (int64_t)h->uid);
		lbp_add_i64(o, "holder_tid", (int64_t)h->tid);
		lbp_add_str(o, "host", h->fs.owner.host);
		lbp_add_double(o, "since", h->since);
		lbp_add_u64(o, "token", h->token);
		if (h->releasing)       /* its RELEASE answered: nobody's */
			lbp_add_u64(o, "releasing", 1);
		else if (h->conn == NULL && !h->kept)
			/* A hold of the previous run its process has not
			 * reclaimed (reconcile.c): held for that process. */
			lbp_add_u64(o, "unclaimed", 1);
	} else if (fh != NULL) {
		lbp_add_i64(o, "holder_pid", (int64_t)fh->pid);
		if (fh->uid != (uid_t)-1)
			lbp_add_i64(o, "holder_uid", (int64_t)fh->uid);
		lbp_add_i64(o, "holder_tid", (int64_t)fh->tid);
		lbp_add_str(o, "host", fh->host);
		if (fh->since > 0)
			lbp_add_double(o, "since", fh->since);
	}
	lbp_add_u64(o, "waiters", waiters);
}

static void
req_status(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lockfs_holder fh;
	struct lockfs_lock   fs;
	struct lockfs_err    err;
	struct lock_args     a;
	struct lbd_lock     *l;
	struct lbp_out       o;
	int                  held = 0;

	if (lock_args(c, m, &a, OWN_ANY) != 0)
		return;
	if (lockfs_init(&fs, a.path, a.method, 0, &err) != 0) {
		lbd_conn_error(c, m->id, lbp_from_lb(err.code), "%s", err.msg);
		return;
	}
	l = lbd_lock_find(c->d, fs.path, a.method);
	/* Nothing about a lock where c may not look: not whether it is
	 * there, held, by whom or since when (its own hold aside). */
	if ((l == NULL || (lbd_hold_find(l, c, a.kept_pid, a.tid) == NULL &&
	    lbd_reader_of(l, c, a.kept_pid, a.tid) == NULL)) &&
	    !lbd_creds_may_look(c->creds, fs.lock_file, &err)) {
		lockfs_fini(&fs);
		lbd_conn_error(c, m->id, LBP_EPERM, "%s", err.msg);
		return;
	}
	/* A lingering orphan (reconcile.c) whose artefact went is
	 * forgotten first, as for an ACQUIRE (l may be freed). */
	if (l != NULL && l->holder != NULL && l->holder->lingering &&
	    lbd_orphan_linger_look(l->holder) == 1)
		l = lbd_lock_find(c->d, fs.path, a.method);
	if ((l == NULL || l->holder == NULL) &&
	    (held = lbd_creds_enter(c->creds, &err)) == 0) {
		held = lockfs_holder(&fs, &fh, &err);
		lbd_creds_leave();
	}
	lockfs_fini(&fs);
	if (held < 0) {
		lbd_conn_error(c, m->id, LBP_EFAILED, "%s", err.msg);
		return;
	}
	lbp_begin(&o, LBP_MSG_OK, 1, m->id);
	if (l != NULL && l->holder != NULL) {
		lbp_add_u64(&o, "locked", 1);
		lbp_add_u64(&o, "mine", lbd_hold_find(l, c, a.kept_pid,
		    a.tid) != NULL || lbd_reader_of(l, c, a.kept_pid,
		    a.tid) != NULL);
		lbd_add_holder(&o, l->holder, NULL, l->nwaiters);
		if (c->version >= LBP_VERSION_SHARED) {
			lbp_add_str(&o, "mode", l->holder->shared ? "shared" :
			    "exclusive");
			lbp_add_u64(&o, "holders", 1 + (uint64_t)l->nreaders);
		}
	} else {
		lbp_add_u64(&o, "locked", held == 1);
		lbp_add_u64(&o, "mine", 0);
		if (held == 1)
			lbd_add_holder(&o, NULL, &fh,
			    l != NULL ? l->nwaiters : 0);
		else if (l != NULL && l->nwaiters > 0)
			/* Free, a set's wait first in its queue (set.c). */
			lbp_add_u64(&o, "waiters", l->nwaiters);
		if (held == 1 && c->version >= LBP_VERSION_SHARED) {
			/* Held outside the broker: one holder, as its
			 * artefact says; exclusive as far as anyone knows. */
			lbp_add_str(&o, "mode", "exclusive");
			lbp_add_u64(&o, "holders", 1);
		}
	}
	/* A cluster lock: etcd's word, sent with it (cohort.c). */
	if (lbd_cohort_status(c, a.abs, l, &o))
		return;
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

static void
req_break(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lockfs_err err;
	struct lock_args  a;
	struct lbd_lock  *l;
	struct lbp_out    o;
	char              file[PATH_MAX];
	int               r;

	if (lock_args(c, m, &a, OWN_NEVER) != 0)
		return;
	if ((l = lbd_lock_get(c->d, a.path, a.method, &err)) == NULL)
		r = err.code;
	else if (!lbd_creds_may_look(c->creds, lbd_lock_file(l, file),
	    &err)) {
		lbd_lock_put(l);
		lbd_conn_error(c, m->id, LBP_EPERM, "%s", err.msg);
		return;
	} else
		r = lbd_break(c, l, &err);
	if (r < 0) {
		lbd_conn_error(c, m->id, r == LB_EUNLOCK && err.sys_errno ==
		    EPERM ? LBP_EPERM : lbp_from_lb(r), "%s", err.msg);
		return;
	}
	lbp_begin(&o, LBP_MSG_OK, 1, m->id);
	lbp_add_u64(&o, "broken", (uint64_t)r);
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

/* LIST: sent as the client reads it (list.c). */
static void
req_list(struct lbd_conn *c, const struct lbp_msg *m)
{
	if (lbd_list_start(c, m->id) != 0)
		lbd_conn_error(c, m->id, LBP_ELIMIT, "a LIST of this "
		    "connection is still being sent (request %llu)",
		    (unsigned long long)c->list_id);
}

static void
req_cancel(struct lbd_conn *c, const struct lbp_msg *m)
{
	uint64_t target;

	if (lbp_get_u64(m, "target", &target) != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "target must be a "
		    "request id");
		return;
	}
	if (lbd_cancel(c, target) != 0) {
		lbd_conn_error(c, m->id, LBP_ENOENT, "no request %llu is "
		    "waiting", (unsigned long long)target);
		return;
	}
	lbd_conn_ok(c, m->id);
}

static void
req_reclaim(struct lbd_conn *c, const struct lbp_msg *m)
{
	struct lock_args a;
	struct lbd_lock *l;
	struct lbp_out   o;
	uint64_t         token;
	int              shared, r;

	if (lock_args(c, m, &a, OWN_NEVER) != 0 ||
	    mode_arg(c, m, &a, &shared) != 0)
		return;
	if (lbp_get_u64(m, "token", &token) != 0) {
		lbd_conn_error(c, m->id, LBP_EINVAL, "token must be a "
		    "decimal number");
		return;
	}
	/* Its riders count, as at ACQUIRE: a rider's RECLAIM makes one. */
	if (c->nholds + c->nreaders + c->nwaits >=
	    c->d->cfg.limits.holds_per_conn) {
		lbd_conn_error(c, m->id, LBP_ELIMIT, "holds_per_conn: this "
		    "connection holds %u locks and waits for %u",
		    c->nholds + c->nreaders, c->nwaits);
		return;
	}
	if ((r = lbd_reclaim(c, a.path, a.method, a.tid, token,
	    lbp_get(m, "mode") != NULL ? shared : -1)) ==
	    LBD_RECLAIM_READERS) {
		lbd_conn_error(c, m->id, LBP_ENOENT, "%s is held shared, "
		    "other readers beside this hold: not given back "
		    "exclusive (as its owner was told it is)", a.path);
		return;
	}
	if (r != 0) {
		lbd_conn_error(c, m->id, LBP_ENOENT, "no hold of %s with "
		    "token %llu to reclaim", a.path,
		    (unsigned long long)token);
		return;
	}
	/* Version 2: the mode the hold has now (docs/SHARED.md). */
	if (c->version < LBP_VERSION_SHARED ||
	    (l = lbd_lock_find(c->d, a.abs, a.method)) == NULL ||
	    l->holder == NULL) {
		lbd_conn_ok(c, m->id);
		return;
	}
	lbp_begin(&o, LBP_MSG_OK, 1, m->id);
	lbp_add_str(&o, "mode", l->holder->shared ? "shared" : "exclusive");
	if (lbp_end(&o) == 0)
		lbd_conn_send(c, &o);
}

static void
req_ping(struct lbd_conn *c, const struct lbp_msg *m)
{
	lbd_conn_ok(c, m->id);
}

static const struct {
	enum lbp_verb verb;
	void        (*handle)(struct lbd_conn *, const struct lbp_msg *);
} handlers[] = {
	{ LBP_MSG_HELLO,   req_hello },
	{ LBP_MSG_ACQUIRE, req_acquire },
	{ LBP_MSG_RELEASE, req_release },
	{ LBP_MSG_STATUS,  req_status },
	{ LBP_MSG_BREAK,   req_break },
	{ LBP_MSG_LIST,    req_list },
	{ LBP_MSG_CANCEL,  req_cancel },
	{ LBP_MSG_RECLAIM, req_reclaim },
	{ LBP_MSG_PING,    req_ping },
	{ LBP_MSG_UPGRADE, req_upgrade },
	{ LBP_MSG_DOWNGRADE, req_downgrade },
};

/*
 * lbd_request: handles one parsed message from c: refuses what may not
 * come now (anything before HELLO; a daemon's verb; an id whose request
 * has not had its reply yet), else runs its handler.  Every outcome is a
 * reply queued on c.
 */
void
lbd_request(struct lbd_conn *c, const struct lbp_msg *m)
{
	size_t i;

	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].verb == m->verb)
			break;
	if (i == sizeof(handlers) / sizeof(handlers[0]))
		lbd_conn_error(c, m->id, LBP_EVERB, "%s is not a request",
		    lbp_verb_name(m->verb));
	else if (c->state == LBD_CONN_NEW && m->verb != LBP_MSG_HELLO)
		lbd_conn_error(c, m->id, LBP_EHELLO, "say HELLO first");
	else if (lbd_reqid_busy(c, m->id))
		lbd_conn_error(c, m->id, LBP_EID, "request %llu has not had "
		    "its reply yet", (unsigned long long)m->id);
	else
		handlers[i].handle(c, m);
}
