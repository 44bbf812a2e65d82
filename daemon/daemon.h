/*
 * daemon.h: the types every part of lockbrokerd shares: the daemon, its
 * connections, its locks, and the holds that tie them together.
 * Internal.  Each module's functions, with their contracts, are in its
 * own header (conn.h, request.h, lock.h, hold.h, wait.h, reply.h, ...).
 *
 *   struct lbd         one per process: the loop, settings, tables
 *   struct lbd_conn    one per client connection (conn.c)
 *   struct lbd_uid_conns  what one user has in the daemon, counted
 *                      against its limits (conn.c)
 *   struct lbd_lock    one per (lock file, method) the broker knows of:
 *                      with a holder, or with waiters, or both
 *                      (locktable.c; its states: lock.c)
 *   struct lbd_hold    a grant: a lock held by (connection, thread), or
 *                      kept for a process (ACQUIRE pid=): it outlives the
 *                      connection and ends when that process exits
 *                      (hold.c, its life drawn there)
 *
 * Declared here, defined by the module that owns them: struct lbd_wait
 * (an ACQUIRE waiting in a lock's FIFO queue: wait.h), struct lbd_ack (an
 * OK owed for a grant the state database has not recorded yet: reply.c),
 * struct lbd_reqid (a request id a connection owes a reply to: reqids.h),
 * struct lbd_creds (a client's credentials: creds.h), and the private
 * ones of watch.c, releasing.c and pidwatch.c.
 */
#ifndef LBD_DAEMON_H
#define LBD_DAEMON_H

#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uv.h>

#include "os.h"                 /* LBD_OS_SIGNALS_MAX */
#include "settings.h"
#include "lockfs.h"
#include "protocol.h"
#include "reqids.h"
#include "lograte.h"

struct lbd;
struct lbd_conn;
struct lbd_deadlock_mem;
struct lbd_lock;
struct lbd_uid_conns;
struct lbd_store;                   /* store.c */
struct lbd_creds;                   /* creds.h */
struct lbd_wait;                    /* wait.h */
struct lbd_ack;                     /* reply.c */
struct lbd_dirwatch;                /* watch.c */
struct lbd_relq;                    /* releasing.c */
struct lbd_relqs;
struct lbd_litters;                  /* litter.c */
struct lbd_pidwatch;                /* pidwatch.c */
struct lbd_pidwatches;
struct lbd_clusterd;                /* clusterd.h */
struct lbd_cohort;                  /* cohort.c */
struct lbd_cstatus;                 /* cohort.c */

/* A holder that has gone with holds to end, a turn at a time at the end
 * of each loop iteration (ending.c): a closed connection (conn.c), an
 * exited process (pidwatch.c), the orphans whose grace period is over
 * (reconcile.c).  Embedded in what it stands for. */
struct lbd_ending {
	/* Ends holds (each handed to its next waiter, or released) until
	 * none is left: 0 (the holder may be freed before it returns); or
	 * until uv_hrtime() passes deadline, one hold at least: 1. */
	int                    (*end_some)(struct lbd_ending *e,
	                             uint64_t deadline);
	int                      queued;    /* in d->endings */
	TAILQ_ENTRY(lbd_ending)  entry;
};

TAILQ_HEAD(lbd_endings, lbd_ending);

struct lbd_hold {
	struct lbd_lock         *lock;
	struct lbd_conn         *conn;
	pid_t                    tid;       /* 0: the connection's process */
	uid_t                    uid;       /* creds->uid, creds->gid */
	gid_t                    gid;
	struct lbd_creds        *creds;     /* its client's: every step on
	                                       its artefact runs with them */
	unsigned long long       dir_dev;   /* the lock directory, as the */
	unsigned long long       dir_ino;   /* holder saw it at the grant
	                                       (0: not known) */
	uint64_t                 token;
	double                   since;     /* epoch seconds */
	struct lockfs_lock       fs;        /* the artefact, as this holder's:
	                                       between steps without its
	                                       names but the path (made for
	                                       a step: lbd_hold_names) */
	LIST_ENTRY(lbd_hold)     conn_entry; /* conn's holds, d->orphans,
	                                       d->unclaimed or d->releasing */
	int                      previous;  /* its token is the previous
	                                       run's (a hold given back from
	                                       the state database, a reader
	                                       of one, a hold handed on from
	                                       one): what a token's value
	                                       cannot tell of a cluster
	                                       lock's (cohort.c) */
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
	int                      unjudged;  /* an orphan whose artefact
	                                       could not be looked at (a
	                                       busy database, EACCES, EIO):
	                                       held, judged again before it
	                                       is reclaimed or ends; or
	                                       (LBD_ORPHAN_REFUSED) refused
	                                       to its process, forgotten at
	                                       its next try (reconcile.c) */
	uint64_t                 dir_busy_since; /* ms (uv_hrtime): the
	                                       first release try that found
	                                       its directory's lock taken
	                                       (hold.c,
	                                       lbd_hold_release_artefact);
	                                       0: none */
	int                      dir_busy_told; /* its holder gone: logged
	                                       that it waits for that lock */
	int                      for_readers; /* released by its process
	                                       during the grace period while
	                                       readers of the previous run,
	                                       their markers beside it, had
	                                       not reclaimed yet: an orphan
	                                       held for them, handed to the
	                                       first that does, ended with
	                                       the grace (readers.c) */
	int                      lingering; /* an orphan whose grace ended
	                                       while its process lived: held
	                                       for it until it exits, takes
	                                       it back, or its artefact goes
	                                       (reconcile.c) */
	struct lbd_relq         *relq;      /* releasing, or unjudged with
	                                       a busy database: the queue it
	                                       is retried in (releasing.c) */
	TAILQ_ENTRY(lbd_hold)    relq_entry; /* in relq's holds */
	struct lbd_swap         *swap;      /* a handoff to it whose last
	                                       step is owed (swap.c) */
	const struct lbd_hold   *swap_from; /* its previous holder then,
	                                       recorded with it (store.c) */
	const struct lockfs_file_id *swap_from_id; /* and the previous
	                                       holder's lock file as the
	                                       handoff found it */
	int                      pinned;    /* its names go through a
	                                       descriptor of its directory
	                                       as judged (reconcile.c):
	                                       released, never handed on */
	int                      shared;    /* a shared hold: the lock's
	                                       artefact's reader (l->holder),
	                                       or a rider (in l->readers, no
	                                       artefact: readers.c) */
	TAILQ_ENTRY(lbd_hold)    reader_entry; /* a rider: in l->readers */
	int                      rider;     /* in l->readers (readers.c); a
	                                       kept one (kept set, conn
	                                       NULL) is in d->kept_riders */
	unsigned                 awaited;   /* in l->awaited (readers.c): the
	                                       previous run's connections
	                                       that rode on its marker and
	                                       have not reclaimed yet */
	struct lbd_hold        **end_slot;  /* its place in its closed
	                                       connection's next holds to
	                                       end (hold.c), cleared when
	                                       it is freed first */
};

TAILQ_HEAD(lbd_acks, lbd_ack);
TAILQ_HEAD(lbd_waitq, lbd_wait);
LIST_HEAD(lbd_holds, lbd_hold);
TAILQ_HEAD(lbd_riders, lbd_hold);

struct lbd_lock {
	struct lbd              *d;
	char                    *path;      /* the key, with method (its
	                                       lock file: lbd_lock_file) */
	unsigned                 method;
	struct lbd_hold         *holder;    /* NULL: free, or held outside */
	unsigned                 serving;   /* lbd_lock_serve runs on it (a
	                                       set refused from its turn may
	                                       serve it again, nested): not
	                                       freed till the outer one ends */
	struct lbd_waitq         waiters;   /* FIFO */
	unsigned                 nwaiters;
	struct lbd_riders        readers;   /* riders, oldest first: shared holds beside
	                                       holder, which is shared then
	                                       (readers.c) */
	unsigned                 nreaders;
	unsigned                 nkept;     /* of them, kept for a process */
	struct lbd_riders        awaited;   /* riders of the previous run's
	                                       connections that may still
	                                       reclaim, in the grace period
	                                       (readers.c) */
	struct lbd_dirwatch     *watch;     /* while held outside, waiters:
	                                       its directory's (watch.c) */
	struct lbd_uid_conns    *watch_user; /* the watch is counted as this
	                                       user's */
	LIST_ENTRY(lbd_lock)     watch_entry; /* in watch->locks */
	int                      due;       /* in d->due: to look at */
	TAILQ_ENTRY(lbd_lock)    due_entry;
	uv_timer_t              *poll;      /* the watch's safety net, or
	                                       with no watch, the only look */
	struct lbd_cohort       *cohort;    /* a cluster lock's (cohort.c),
	                                       once its gate was asked */
	uint64_t                 room_stamp; /* the deadlock search that
	                                       summed up its room (deadlock.c) */
	size_t                   room;      /* that search's room of it */
	struct lbd_lock         *hash_next;
};

LIST_HEAD(lbd_locklist, lbd_lock);
TAILQ_HEAD(lbd_lockq, lbd_lock);

LIST_HEAD(lbd_waits, lbd_wait);

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
	unsigned                      nreaders;  /* handoffs to its holds
	                                            waiting for readers
	                                            (swap.c) */
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
	int                      uv_reading; /* libuv reads the socket: off
	                                       only for back-pressure and
	                                       EOF; a throttled connection
	                                       stays on, reading nothing */
	int                      eof;       /* its client has gone (end of
	                                       input, or its replies cannot be
	                                       written): the requests it sent
	                                       before are still handled, in
	                                       their turns, then it closes;
	                                       replies are dropped */
	int                      throttled; /* its turn's requests handled:
	                                       read again next iteration */
	int                      skipped;   /* throttled before any request
	                                       in its turn (its user's was
	                                       over): first in the next */
	unsigned                 turn;      /* the iteration turn_lines is */
	unsigned                 turn_lines; /* requests handled in it */
	TAILQ_ENTRY(lbd_conn)    throttle_entry; /* in d->throttled */
	int                      releasing; /* closed; its holds are being
	                                       released (ending): not freed
	                                       till they are */
	int                      handle_closed; /* libuv is done with pipe */
	struct lbd_ending        ending;    /* its holds' end, once closed
	                                       (in d->endings) */
	struct lbd_hold        **end_next;  /* closed: its next holds to
	                                       end, by lock file (hold.c) */
	size_t                   end_n, end_i;
	struct lbd_holds         holds;
	struct lbd_waits         waits;
	uint64_t                 deadlock_stamp; /* the last deadlock search
	                                       that sorted its waits out
	                                       (deadlock.c) */
	unsigned                 nholds, nwaits;
	LIST_HEAD(, lbd_set)     sets;      /* its sets, collected or
	                                       queued (set.c) */
	unsigned                 nset_members; /* members of sets being
	                                       collected */
	struct lbd_holds         readers;   /* its riders (readers.c) */
	unsigned                 nreaders;
	unsigned                 version;   /* agreed at HELLO */
	struct lbd_reqids        reqids;    /* ids owed a reply (EID) */
	LIST_HEAD(, lbd_swap)    releases;  /* handoffs owing its RELEASEs
	                                       their OKs (swap.c) */
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

struct lbd {
	uv_loop_t               *loop;
	struct lbd_subuids      *subuids;   /* users' subordinate uids
	                                       (subuids.c): whose budgets
	                                       each uid counts in */
	struct lockfs_owner      self;      /* the daemon, read once (it never
	                                       forks): the owner of the locks
	                                       lbd_lock_get only names */
	int                      self_known;
	struct lbd_config        cfg;
	uv_pipe_t                listener;
	int                      listening;
	uv_signal_t              sig[LBD_OS_SIGNALS_MAX]; /* the signals
	                                       taken as events (os.h,
	                                       lbd_os_signals_take) */
	const struct lbd_os_signal *sigs;   /* what each asks */
	size_t                   nsig;      /* how many of them */
	uv_check_t               check;     /* end of iteration: commit, flush */
	uv_idle_t                idle;      /* keeps poll from blocking while
	                                       output waits for the check */
	struct lbd_conns         conns;
	struct lbd_conns         flush;
	struct lbd_conns         listings;  /* sending a LIST (list.c) */
	struct lbd_conns         throttled; /* to read again next iteration */
	struct lbd_endings       endings;   /* holders gone (closed
	                                       connections, exited processes,
	                                       the grace over), holds to end
	                                       (ending.c) */
	unsigned                 turn;      /* loop iterations, counted */
	unsigned                 accept_turn; /* the iteration accept_ns
	                                       is of */
	uint64_t                 accept_ns; /* time accepting took in it */
	int                      accept_waiting; /* a connection waits on
	                                       the listener for the next
	                                       iteration (conn.c) */
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
	LIST_HEAD(, lbd_cohort)  cohorts;   /* cluster locks' (cohort.c) */
	LIST_HEAD(, lbd_cstatus) cstatus;   /* STATUS replies waiting for
	                                       etcd's word (cohort.c) */
	unsigned                 cohort_sweep; /* the previous run's keys'
	                                       calls in flight: no new key
	                                       taken till they end */
	struct lbd_holds         kept_riders; /* riders kept for a process
	                                       (ACQUIRE pid= mode=shared:
	                                       readers.c), recorded in the
	                                       riders table */
	struct lbd_holds         unclaimed; /* orphans not reclaimed within
	                                       the grace period, to end */
	struct lbd_holds         tokenless; /* orphans that ended with no
	                                       token of their user to act
	                                       with (Windows): ended when a
	                                       process of it connects */
	struct lbd_ending        grace_ending; /* their end (reconcile.c) */
	struct lbd_holds         handed;    /* old holders of finished
	                                       handoffs, their traces to
	                                       remove (swap.c) */
	struct lbd_holds         releasing; /* holds whose end waits for a
	                                       busy sqlite database (hold.c) */
	struct lbd_relqs        *relqs;     /* their retry queues
	                                       (releasing.c; NULL: none) */
	struct lbd_litters      *litters;   /* unique files left to live
	                                       processes at start, watched
	                                       (litter.c; NULL: none) */
	uv_timer_t               grace;     /* ends the orphans' grace */
	int                      reconciling; /* 1 while the previous run's
	                                       holds are judged at start
	                                       (reconcile.c): counted as the
	                                       grace period */
	struct lbd_lograte       refusals;  /* lines of refused connections,
	                                       bounded (conn.c, lograte.c) */
	struct lbd_lograte       deadlocks; /* lines of requests refused
	                                       EDEADLK, bounded as those
	                                       (wait.c) */
	uv_timer_t               store_watch; /* is the state database
	                                       still there? (loop.c) */
	int                      store_lost; /* 1: it was, and store is
	                                       NULL until it is made anew;
	                                       2: and that failed (logged) */
	struct lbd_acks          acks;      /* grants not yet recorded */
	TAILQ_HEAD(, lbd_swap)   swaps;     /* handoffs owed their last step
	                                       (swap.c) */
	unsigned                 swaps_fast; /* handoffs waiting for
	                                       readers at full speed
	                                       (swapwait.h) */
	unsigned                 ack_round;
	uint64_t                 generation; /* high half of fencing tokens */
	uint64_t                 deadlock_stamp; /* the last deadlock search
	                                       (deadlock.c) */
	struct lbd_deadlock_mem *deadlock_mem; /* its tables, kept */
	uint64_t                 counter;    /* low half */
	int                      riders_by_markers; /* the previous run's
	                                       riders of connections have no
	                                       rows (store.c): taken back on
	                                       their markers */
	int                      stopping;
	uv_timer_t               stop_flush; /* ends a stop's last flush */
	struct lbd_clusterd     *cluster;   /* its etcd client and lease
	                                       (clusterd.h); NULL: none */
	char                     server[64];
};

#endif
