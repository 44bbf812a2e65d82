/*
 * daemon.h: lockbrokerd's shared state: the daemon, its connections, its
 * locks, and the holds and waits that tie them together.  Internal.
 *
 *   struct lbd         one per process: the loop, settings, tables
 *   struct lbd_conn    one per client connection
 *   struct lbd_lock    one per (lock file, method) the broker knows of:
 *                      with a holder, or with waiters, or both
 *   struct lbd_hold    a grant: a lock held by (connection, thread), or
 *                      kept for a process (ACQUIRE pid=): it outlives the
 *                      connection and ends when that process exits
 *   struct lbd_wait    an ACQUIRE waiting in a lock's FIFO queue
 *   struct lbd_ack     an OK owed for a grant the state database has not
 *                      recorded yet
 *   struct lbd_reqid   a request id a connection owes a reply to (a
 *                      wait's, an ack's): another request with it gets
 *                      EID
 */
#ifndef LBD_DAEMON_H
#define LBD_DAEMON_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uv.h>

#include "settings.h"
#include "lockfs.h"
#include "protocol.h"

struct lbd;
struct lbd_conn;
struct lbd_lock;
struct lbd_uid_conns;
struct lbd_dirwatch;
struct lbd_relq;
struct lbd_relqs;

/* The most supplementary groups a client's credentials carry (Linux's
 * NGROUPS_MAX). */
#define LBD_GROUPS_MAX 65536

/* Whose filesystem credentials a step runs with (creds.c): a client's
 * uid, gid and supplementary groups, shared (reference counted) by its
 * connection and its holds, recorded with each hold. */
struct lbd_creds {
	unsigned                 refs;
	uid_t                    uid;
	gid_t                    gid;
	size_t                   ngroups;
	gid_t                    groups[];
};

struct lbd_pidwatch;

struct lbd_hold {
	struct lbd_lock         *lock;
	struct lbd_conn         *conn;
	pid_t                    tid;       /* 0: the connection's process */
	uid_t                    uid;       /* creds->uid, creds->gid */
	gid_t                    gid;
	struct lbd_creds        *creds;     /* its client's: every step on
	                                       its artefact runs with them */
	dev_t                    dir_dev;   /* the lock directory, as the */
	ino_t                    dir_ino;   /* holder saw it at the grant
	                                       (0: not known) */
	uint64_t                 token;
	double                   since;     /* epoch seconds */
	struct lockfs_lock       fs;        /* the artefact, as this holder's:
	                                       between steps without its
	                                       names but the path (made for
	                                       a step: lbd_hold_names) */
	LIST_ENTRY(lbd_hold)     conn_entry; /* conn's holds, d->orphans or
	                                       d->releasing */
	int                      kept;      /* held for fs.owner.pid, past any
	                                       connection (conn NULL) */
	struct lbd_pidwatch     *pidwatch;  /* kept holds and orphans: the
	                                       watch of fs.owner's process
	                                       (pidwatch.c) */
	LIST_ENTRY(lbd_hold)     pw_entry;  /* in pidwatch->holds */
	int                      unsettled; /* installed in this iteration:
	                                       not known to be recorded */
	unsigned                 acks;      /* replies owed until recorded */
	int                      borrowed;  /* fs.path is the lock's (a hold
	                                       never outlives its lock) */
	struct lbd_uid_conns    *user;      /* counted in its locks_per_uid
	                                       (NULL: a hold of the previous
	                                       run, not yet reclaimed) */
	int                      releasing; /* ended, but its sqlite row not
	                                       yet removed: in d->releasing
	                                       (hold.c) */
	struct lbd_relq         *relq;      /* releasing: the queue it is
	                                       retried in (releasing.c) */
	TAILQ_ENTRY(lbd_hold)    relq_entry; /* in relq's holds */
};

/* A request id a connection owes a reply to (reqids.c). */
struct lbd_reqid {
	uint64_t                 id;
	LIST_ENTRY(lbd_reqid)    entry;     /* in its connection's table */
};

LIST_HEAD(lbd_reqid_list, lbd_reqid);

struct lbd_reqids {
	struct lbd_reqid_list   *buckets;   /* NULL until the first id */
	size_t                   nbuckets, n;
};

struct lbd_ack;                     /* reply.c */

TAILQ_HEAD(lbd_acks, lbd_ack);

struct lbd_wait {
	struct lbd_lock         *lock;
	struct lbd_conn         *conn;
	uint64_t                 id;        /* the ACQUIRE's request id */
	struct lbd_reqid         inuse;     /* id, in conn's ids in use */
	uint64_t                 deadline;  /* uv_hrtime(), with timer */
	pid_t                    tid;
	pid_t                    kept_pid;  /* 0, or the process to keep the
	                                       hold for (ACQUIRE pid=) */
	int                      stale;     /* stale=1: break a provably dead
	                                       holder's artefact */
	uv_timer_t              *timer;     /* NULL: waits without deadline */
	TAILQ_ENTRY(lbd_wait)    lock_entry;
	LIST_ENTRY(lbd_wait)     conn_entry;
};

TAILQ_HEAD(lbd_waitq, lbd_wait);

struct lbd_lock {
	struct lbd              *d;
	char                    *path;      /* the key, with method (its
	                                       lock file: lbd_lock_file) */
	unsigned                 method;
	struct lbd_hold         *holder;    /* NULL: free, or held outside */
	struct lbd_waitq         waiters;   /* FIFO */
	unsigned                 nwaiters;
	struct lbd_dirwatch     *watch;     /* while held outside, waiters:
	                                       its directory's (watch.c) */
	struct lbd_uid_conns    *watch_user; /* the watch is counted as this
	                                       user's */
	LIST_ENTRY(lbd_lock)     watch_entry; /* in watch->locks */
	int                      due;       /* in d->due: to look at */
	TAILQ_ENTRY(lbd_lock)    due_entry;
	uv_timer_t              *poll;      /* the watch's safety net, or
	                                       with no watch, the only look */
	struct lbd_lock         *hash_next;
};

LIST_HEAD(lbd_locklist, lbd_lock);
TAILQ_HEAD(lbd_lockq, lbd_lock);

LIST_HEAD(lbd_holds, lbd_hold);
LIST_HEAD(lbd_waits, lbd_wait);

/* A watched process (pidwatch.c): the holds that end when it exits. */
struct lbd_pidwatch {
	struct lbd              *d;
	pid_t                    pid;
	unsigned long long       start;     /* its start time: not a reused
	                                       pid's process */
	unsigned                 refs;      /* its holds, and a callback
	                                       running */
	struct lbd_holds         holds;     /* by pw_entry */
	int                      fd;        /* its pidfd, or -1 */
	struct lbd_uid_conns    *user;      /* with fd: the user it counts
	                                       for (pidfds_per_uid) */
	uv_poll_t               *poll;      /* on fd */
	uv_timer_t              *timer;     /* without fd: a look a second */
	int                      listed;    /* in d->pidwatches */
	LIST_ENTRY(lbd_pidwatch) entry;
};

LIST_HEAD(lbd_pidwatches, lbd_pidwatch);

enum lbd_conn_state {
	LBD_CONN_NEW,           /* accepted; only HELLO is allowed */
	LBD_CONN_READY,         /* after HELLO */
	LBD_CONN_CLOSING        /* closed or to be closed; nothing more read */
};

/* What one user has in the daemon: open connections (conns_per_uid),
 * holds and waits (locks_per_uid), directories watched for its waits
 * (watches_per_uid), pidfds of processes watched for its kept holds and
 * orphans (pidfds_per_uid).  Freed when all four are 0. */
struct lbd_uid_conns {
	uid_t                         uid;
	unsigned                      n;
	unsigned                      nlocks;    /* holds, kept ones too,
	                                            and waits */
	unsigned                      nwatches;
	unsigned                      npidfds;   /* watches' pidfds that
	                                            count for it */
	unsigned                      turn;      /* the iteration turn_ns is */
	uint64_t                      turn_ns;   /* time its requests took in
	                                            it */
	LIST_ENTRY(lbd_uid_conns)     entry;     /* in d->uids */
};

LIST_HEAD(lbd_uids, lbd_uid_conns);

struct lbd_conn {
	uv_pipe_t                pipe;      /* first: callbacks cast back */
	struct lbd              *d;
	enum lbd_conn_state      state;
	pid_t                    pid;       /* SO_PEERCRED */
	uid_t                    uid;       /* creds->uid, creds->gid */
	gid_t                    gid;
	struct lbd_creds        *creds;     /* SO_PEERCRED, SO_PEERGROUPS */
	struct lbd_uid_conns    *uid_conns; /* NULL until counted */
	struct lockfs_owner      owner;     /* the peer process (start time
	                                       read once, at accept) */
	int                      owner_known; /* 0: read at each grant */
	char                     in[LBP_LINE_MAX];
	size_t                   inlen;
	char                    *out;       /* replies not yet handed to libuv:
	                                       outlen bytes used of outcap */
	size_t                   outlen, outcap;
	size_t                   inflight;  /* memory the write handed to
	                                       libuv holds (its buffer and
	                                       request); 0: none in flight */
	int                      reading;   /* 0 while back-pressure holds,
	                                       or while throttled */
	int                      throttled; /* its turn's requests handled:
	                                       read again next iteration */
	int                      skipped;   /* throttled before any request
	                                       in its turn (its user's was
	                                       over): first in the next */
	unsigned                 turn;      /* the iteration turn_lines is */
	unsigned                 turn_lines; /* requests handled in it */
	TAILQ_ENTRY(lbd_conn)    throttle_entry; /* in d->throttled */
	int                      releasing; /* closed; its holds are being
	                                       released (d->closing): not
	                                       freed till they are */
	int                      handle_closed; /* libuv is done with pipe */
	TAILQ_ENTRY(lbd_conn)    closing_entry; /* in d->closing */
	struct lbd_holds         holds;
	struct lbd_waits         waits;
	unsigned                 nholds, nwaits;
	struct lbd_reqids        reqids;    /* ids owed a reply (EID) */
	TAILQ_ENTRY(lbd_conn)    entry;     /* in d->conns */
	TAILQ_ENTRY(lbd_conn)    flush_entry; /* in d->flush, when out has data */
	int                      flushing;
	int                      listing;   /* a LIST is being sent (list.c) */
	uint64_t                 list_id;
	size_t                   list_cursor; /* its next bucket */
	uint64_t                 list_count;  /* ITEMs sent */
	TAILQ_ENTRY(lbd_conn)    list_entry; /* in d->listings */
};

TAILQ_HEAD(lbd_conns, lbd_conn);

struct lbd_store;

struct lbd {
	uv_loop_t               *loop;
	struct lbd_config        cfg;
	uv_pipe_t                listener;
	int                      listening;
	uv_signal_t              sig[4];    /* TERM, INT, HUP, USR1 */
	uv_check_t               check;     /* end of iteration: commit, flush */
	uv_idle_t                idle;      /* keeps poll from blocking while
	                                       output waits for the check */
	struct lbd_conns         conns;
	struct lbd_conns         flush;
	struct lbd_conns         listings;  /* sending a LIST (list.c) */
	struct lbd_conns         throttled; /* to read again next iteration */
	struct lbd_conns         closing;   /* closed, holds to release */
	unsigned                 turn;      /* loop iterations, counted */
	unsigned                 nconns;
	struct lbd_uids          uids;      /* open connections per user */
	unsigned                 fd_conns;  /* connections and pidfds the
	                                       descriptor limit affords
	                                       (main.c) */
	struct lbd_pidwatches   *pidwatches; /* watched processes, by pid
	                                       (pidwatch.c; NULL: none yet) */
	unsigned                 npidfds;   /* pidfds open for them: at most
	                                       half of fd_conns */
	struct lbd_lock        **buckets;   /* the lock table */
	size_t                   nbuckets, nlocks;
	struct lbd_dirwatch    **wbuckets;  /* the watched directories */
	size_t                   nwbuckets;
	unsigned                 nwatches;  /* directories watched */
	unsigned                 watches_max; /* limits.watches, capped below
	                                       the kernel's limit (main.c) */
	unsigned                 npolled;   /* locks looked at by timer */
	struct lbd_lockq         due;       /* sqlite locks to look at, a
	                                       turn at a time (watch.c) */
	unsigned                 looks_turn; /* the iteration looks_ns is */
	uint64_t                 looks_ns;  /* time looks took in it
	                                       (looks.c) */
	struct lbd_store        *store;
	struct lbd_holds         orphans;   /* holds of the previous run, not
	                                       yet reclaimed, and kept holds */
	struct lbd_holds         releasing; /* holds whose end waits for a
	                                       busy sqlite database (hold.c) */
	struct lbd_relqs        *relqs;     /* their retry queues
	                                       (releasing.c; NULL: none) */
	uv_timer_t               grace;     /* ends the orphans' grace */
	uv_timer_t               store_watch; /* is the state database
	                                       still there? (main.c) */
	int                      store_lost; /* 1: it was, and store is
	                                       NULL until it is made anew;
	                                       2: and that failed (logged) */
	struct lbd_acks          acks;      /* grants not yet recorded */
	unsigned                 ack_round;
	uint64_t                 generation; /* high half of fencing tokens */
	uint64_t                 counter;    /* low half */
	int                      stopping;
	uv_timer_t               stop_flush; /* ends a stop's last flush */
	char                     server[64];
};

/* conn.c */
void lbd_conn_accept(struct lbd *d);
void lbd_conn_send(struct lbd_conn *c, const struct lbp_out *o);
void lbd_conn_close(struct lbd_conn *c);
void lbd_conn_flush_all(struct lbd *d);
void lbd_conns_resume(struct lbd *d);
void lbd_conns_release(struct lbd *d, int all);
unsigned lbd_conns_of_uid(struct lbd_conn *c);
size_t lbd_conn_output_held(struct lbd_conn *c);

/* list.c */
int  lbd_list_start(struct lbd_conn *c, uint64_t id);
void lbd_lists_more(struct lbd *d);
int  lbd_lists_waiting(struct lbd *d);
void lbd_lists_shutdown(struct lbd *d);
void lbd_list_forget(struct lbd_conn *c);
struct lbd_uid_conns *lbd_uid_get(struct lbd *d, uid_t uid);
void lbd_uid_put(struct lbd_uid_conns *u);

/* request.c */
void lbd_request(struct lbd_conn *c, const struct lbp_msg *m);
void lbd_add_holder(struct lbp_out *o, const struct lbd_hold *h,
         const struct lockfs_holder *fh, unsigned waiters);

/* locktable.c */
int  lbd_locks_init(struct lbd *d);
struct lbd_lock *lbd_lock_find(struct lbd *d, const char *path,
         unsigned method);
/* lbd_lock_file: l's lock file (its artefact's name: PATH.lock, or PATH
 * for the pidfile method), into buf of PATH_MAX bytes; buf.  (Inline: the
 * store and the tests use it without the lock table.) */
static inline const char *
lbd_lock_file(const struct lbd_lock *l, char *buf)
{
	snprintf(buf, PATH_MAX, "%s%s", l->path,
	    l->method == LB_PIDFILE ? "" : ".lock");
	return buf;
}
struct lbd_lock *lbd_lock_get(struct lbd *d, const char *path,
         unsigned method, struct lockfs_err *err);
void lbd_lock_put(struct lbd_lock *l);

/* lock.c */
int  lbd_acquire(struct lbd_conn *c, uint64_t id, const char *path,
         unsigned method, pid_t kept_pid, pid_t tid, double timeout,
         int stale);
int  lbd_release(struct lbd_conn *c, struct lbd_lock *l, pid_t kept_pid,
         pid_t tid, struct lockfs_err *err);
int  lbd_break(struct lbd_conn *c, struct lbd_lock *l, struct lockfs_err *err);
void lbd_lock_serve(struct lbd_lock *l);

/* hold.c */
struct lbd_hold *lbd_hold_new(struct lbd_lock *l, struct lbd_conn *c,
         pid_t pid, pid_t tid, const struct lockfs_owner *owner,
         struct lockfs_err *err);
void lbd_hold_free(struct lbd_hold *h);
int  lbd_hold_names(struct lbd_hold *h, struct lockfs_err *err);
void lbd_hold_adopt(struct lbd_lock *l, struct lbd_hold *h);
struct lbd_hold *lbd_hold_uninstall(struct lbd_lock *l);
int  lbd_lock_try(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
         pid_t tid, struct lockfs_err *err);
int  lbd_own_artefact_adopt(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid);
struct lbd_hold *lbd_hold_find(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid);
int  lbd_hold_end(struct lbd_lock *l, struct lockfs_err *err);
void lbd_hold_detach(struct lbd_lock *l);
void lbd_hold_forget(struct lbd_lock *l);
int  lbd_conn_release_some(struct lbd_conn *c, uint64_t deadline);

/* wait.c */
int  lbd_wait_add(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
         pid_t kept_pid, pid_t tid, double timeout, int stale);
void lbd_wait_remove(struct lbd_wait *w);
int  lbd_cancel(struct lbd_conn *c, uint64_t target);
void lbd_conn_drop_all(struct lbd_conn *c, int keep_holds);
void lbd_locks_shutdown(struct lbd *d);

/* reply.c */
void lbd_conn_error(struct lbd_conn *c, uint64_t id, enum lbp_error code,
         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void lbd_grant_reply(struct lbd_hold *h, struct lbd_conn *c, uint64_t id);
void lbd_hold_pay(struct lbd_hold *h);
void lbd_acks_forget(struct lbd_conn *c);
void lbd_grants_settle(struct lbd *d, int recorded, const char *why);

/* reconcile.c */
void lbd_reconcile(struct lbd *d);
void lbd_orphan_exited(struct lbd_hold *h);
void lbd_orphans_detach(struct lbd *d);
int  lbd_orphan_adopt(struct lbd_conn *c, struct lbd_lock *l, pid_t tid);
int  lbd_reclaim(struct lbd_conn *c, const char *path, unsigned method,
         pid_t tid, uint64_t token);

/* pidwatch.c */
void lbd_orphan_watch(struct lbd *d, struct lbd_hold *h);
void lbd_orphan_unwatch(struct lbd_hold *h);

/* reqids.c */
int  lbd_reqid_add(struct lbd_conn *c, struct lbd_reqid *r);
void lbd_reqid_del(struct lbd_conn *c, struct lbd_reqid *r);
int  lbd_reqid_busy(const struct lbd_conn *c, uint64_t id);
void lbd_reqids_free(struct lbd_conn *c);
/* watch.c */
int  lbd_watches_init(struct lbd *d);
void lbd_lock_watch(struct lbd_lock *l, struct lbd_conn *c);
void lbd_lock_unwatch(struct lbd_lock *l);
void lbd_watches_due(struct lbd *d);

/* looks.c */
uint64_t lbd_looks_delay_ms(double s, double n);
int  lbd_looks_turn_spent(struct lbd *d);
void lbd_looks_turn_took(struct lbd *d, uint64_t t0);
uint64_t lbd_looks_later_ms(void);

/* releasing.c */
int  lbd_releasing_add(struct lbd_hold *h);
void lbd_releasing_del(struct lbd_hold *h);
void lbd_releasing_due(struct lbd *d);
int  lbd_releasing_waiting(struct lbd *d);

/* creds.c */
int  lbd_creds_init(char *why, size_t size);
struct lbd_creds *lbd_creds_new(uid_t uid, gid_t gid, size_t n,
         const gid_t *groups);
struct lbd_creds *lbd_creds_of_peer(int fd, uid_t uid, gid_t gid);
struct lbd_creds *lbd_creds_ref(struct lbd_creds *cr);
void lbd_creds_unref(struct lbd_creds *cr);
int  lbd_creds_enter(const struct lbd_creds *cr, struct lockfs_err *err);
void lbd_creds_leave(void);
int  lbd_creds_may_look(const struct lbd_creds *cr, const char *file,
         struct lockfs_err *err);

/* main.c */
double lbd_now(void);
void   lbd_want_flush(struct lbd *d);

#endif
