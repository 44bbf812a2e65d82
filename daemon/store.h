/*
 * store.h: the daemon's state database (sqlite, WAL): which artefacts this
 * broker made and for whom, and the generation that keeps fencing tokens
 * increasing across restarts.
 */
#ifndef LBD_STORE_H
#define LBD_STORE_H

#include "daemon.h"

/* A hold as recorded: what a restarted daemon needs to judge it. */
struct lbd_store_hold {
	char               path[PATH_MAX];
	unsigned           method;
	char               unique[PATH_MAX];
	pid_t              pid, tid;
	uid_t              uid;
	gid_t              gid;
	unsigned long long start;
	char               boot[9];
	uint64_t           token;
	double             since;
	int                kept;       /* kept for pid (ACQUIRE pid=) */
	int                shared;     /* a shared hold: the artefact's
	                                  reader (docs/SHARED.md) */
	int                releasing;  /* released (its RELEASE answered),
	                                  its sqlite row not yet removed:
	                                  the hold is to end, never to be
	                                  its holder's again (hold.c) */
	int                groups_known; /* 0: recorded by a daemon that did
	                                    not record groups */
	const void        *groups;     /* the client's supplementary groups
	                                  (valid during the callback) */
	size_t             ngroups;
	char               from_unique[PATH_MAX]; /* the previous holder,
	                                  while a handoff to this one was
	                                  owed its last step (swap.c); "":
	                                  none */
	pid_t              from_pid;
	uid_t              from_uid;
	struct lockfs_file_id from_id; /* its lock file as the handoff
	                                  found it (ino 0: not known, not
	                                  resumed) */
	unsigned long long dir_dev;    /* the lock directory's identity at */
	unsigned long long dir_ino;    /* the grant; dir_ino 0: not known */
	unsigned           conns;      /* a rider of connections: how many
	                                  ride on its marker (conn_riders) */
};

/* lbd_store_open: opens (creating) the database at file and takes a new
 * generation, durably.  0, or -1 with why filled. */
int  lbd_store_open(struct lbd *d, const char *file, char *why, size_t size);
void lbd_store_close(struct lbd *d);

/* lbd_store_next_generation: takes the next generation durably (fsync)
 * into d->generation.  0, or -1 (logged). */
int  lbd_store_next_generation(struct lbd *d);

/* Record and forget a hold, inside the iteration's transaction (begun on
 * the first change, committed by lbd_store_commit).  0, or -1 (logged). */
int  lbd_store_hold_add(struct lbd *d, const struct lbd_hold *h);
int  lbd_store_hold_del(struct lbd *d, const struct lbd_hold *h);

/* lbd_store_rider: records rider r, kept for a process (readers.c), in
 * the riders table (add 1), or forgets it (add 0), inside the
 * iteration's transaction.  0, or -1 (logged). */
int  lbd_store_rider(struct lbd *d, const struct lbd_hold *r, int add);

/* lbd_store_conn_rider: records that conns connections ride r's lock
 * on the marker of r, a rider of a connection (readers.c): its process,
 * thread and user, with its read's token; conns 0: none (the record
 * deleted).  Inside the iteration's transaction.  0, or -1 (logged). */
int  lbd_store_conn_rider(struct lbd *d, const struct lbd_hold *r,
         unsigned conns);

/* lbd_store_carry: at an iteration's end, whether its open transaction
 * is carried over to the next iteration, uncommitted: 1 when it changes
 * riders' rows of connections alone (lbd_store_conn_rider: riders
 * joining and leaving), some of them since it was last carried, none
 * failed, and it has been carried fewer than LBD_STORE_CARRY_MAX times;
 * else 0 (to be committed now).  The caller holds back every reply
 * until the commit (loop.c): none may announce a row not recorded. */
int  lbd_store_carry(struct lbd *d);

/* How many iterations at most a transaction of riders' rows is carried
 * over: its replies wait that long at most for the commit they share. */
#define LBD_STORE_CARRY_MAX 4

/* lbd_store_conn_riders_known: 1 when the previous run's riders of
 * connections are recorded (conn_riders), else 0: the state database
 * found at start was an earlier release's, which records none (their
 * markers are their only record), and no grace period of this release
 * has ended since.  lbd_store_conn_riders_recorded: a grace period has
 * ended (or none was needed): every rider since is recorded. */
int  lbd_store_conn_riders_known(struct lbd *d);
void lbd_store_conn_riders_recorded(struct lbd *d);

/* lbd_store_hold_add_new: records rec, a hold whose lock file is file,
 * unless the state database records a hold of that lock with a token as
 * new already (at start: a grant noted in the intents file and never
 * committed, intents.c; a recorded hold of its lock with an older token
 * ended before it, uncommitted, and is replaced).  1 when recorded, 0
 * when not, -1 when the database failed (logged).  In the open
 * transaction. */
int  lbd_store_hold_add_new(struct lbd *d, const char *file,
         const struct lbd_store_hold *rec);

/* lbd_store_user_uid: the number of the user the OS names sid (Windows:
 * a SID and its integrity level, peertoken.h), into *uid: the one the
 * state database (or this run) gave it, else a new one, never given
 * before, from 1 and below LBD_STORE_UID_MAX, recorded in the
 * iteration's transaction (and again after a failed commit).  0, or -1
 * with errno: ENOMEM, or EOVERFLOW when every number is given. */
int  lbd_store_user_uid(struct lbd *d, const char *sid, uid_t *uid);

/* The numbers users are given lie below this: never 0 (root's), never
 * (uid_t)-1 ("another user's"), never negative as a signed id. */
#define LBD_STORE_UID_MAX ((uid_t)0x7fffffff)

/* lbd_store_uid_known: 1 when uid is a number the state database (or
 * this run) gave a user (lbd_store_user_uid), else 0. */
int  lbd_store_uid_known(uid_t uid);

/* lbd_store_meta_get: the value the daemon keeps under key (a name of
 * its own, such as "etcd_lease") in the state database, 0 when none. */
int64_t lbd_store_meta_get(struct lbd *d, const char *key);

/* lbd_store_meta_set: keeps value under key (0: none), in the
 * iteration's transaction (committed by lbd_store_commit).  0, or -1
 * (logged). */
int  lbd_store_meta_set(struct lbd *d, const char *key, int64_t value);

/* lbd_store_commit: commits the iteration's changes, if any.  0, or -1
 * (logged; the changes are rolled back). */
int  lbd_store_commit(struct lbd *d);

/* lbd_store_settle: commits the iteration's changes and tells whether
 * every change since the previous settle is recorded: 0, or -1 with why
 * (size bytes) saying what failed.  After a failure, the next commit
 * rewrites the holds table from memory. */
int  lbd_store_settle(struct lbd *d, char *why, size_t size);

/* lbd_store_check: whether the file at the database's path is still the
 * one opened (device, inode).  When it was deleted or replaced, makes it
 * anew (a new generation, above the old) and records every hold in
 * memory in it (the iteration's open changes are among them).  0: the
 * same file; 1: made anew; -1: it cannot be made or written (logged; the
 * next check or commit tries again). */
int  lbd_store_check(struct lbd *d);

/* lbd_store_each_hold: calls fn for every recorded hold (the previous
 * run's, at start).  0, or -1 (logged). */
int  lbd_store_each_hold(struct lbd *d,
         void (*fn)(struct lbd *, const struct lbd_store_hold *));

/* lbd_store_each_rider: calls fn for every recorded kept rider (the
 * previous run's, at start) of path with method (path NULL: of every
 * lock), its fields in a struct lbd_store_hold (path, method, pid,
 * start, boot, uid, gid, groups, token, since; kept and shared set).
 * fn changes nothing in the table.  0, or -1 (logged). */
int  lbd_store_each_rider(struct lbd *d, const char *path, unsigned method,
         void (*fn)(struct lbd *, const struct lbd_store_hold *));

/* lbd_store_each_conn_rider: as lbd_store_each_rider, for the recorded
 * riders of connections (conn_riders): tid and conns set, kept not. */
int  lbd_store_each_conn_rider(struct lbd *d, const char *path,
         unsigned method,
         void (*fn)(struct lbd *, const struct lbd_store_hold *));

/* lbd_store_riders_rewrite: makes the riders table say what
 * d->kept_riders holds, and the conn_riders table what the locks' riders
 * of connections and awaited riders are (lbd_reader_conns), inside the
 * iteration's transaction (at start, once the previous run's are
 * adopted).  0, or -1 (logged). */
int  lbd_store_riders_rewrite(struct lbd *d);

#endif
