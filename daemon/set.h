/*
 * set.h: several exclusive ACQUIREs of one owner, granted together or not
 * at all (set.c; docs/PROTOCOL.md, "Sets", version 3).
 */
#ifndef LBD_SET_H
#define LBD_SET_H

#include "daemon.h"
#include "protocol.h"
#include "reqids.h"

/* The most members one set has (of=). */
#define LBD_SET_MAX 256

/* One ACQUIRE of a set. */
struct lbd_set_member {
	uint64_t         id;        /* its request id */
	struct lbd_reqid inuse;     /* id, in its connection's ids in use,
	                               while the set is collected */
	int              collecting; /* inuse entered */
	char            *path;      /* as asked */
	unsigned         method;
	struct lbd_wait *w;         /* queued: its wait in its lock's queue */
};

/* A set: collected from its members' ACQUIREs (set=key of=of), then
 * granted at once or queued, one wait in each of its locks' queues. */
struct lbd_set {
	struct lbd_conn       *conn;
	uint64_t               key;         /* set= */
	unsigned               of;          /* of=: members announced */
	unsigned               n;           /* members arrived */
	pid_t                  tid;         /* the owner's thread */
	double                 timeout;
	int                    stale;
	int                    queued;      /* its members wait in queues */
	int                    trying;      /* lbd_set_try runs */
	unsigned               outside;     /* the member whose lock was last
	                                       found held outside the broker;
	                                       LBD_SET_MAX: none */
	struct lbd_set_member **m;          /* the n that came */
	LIST_ENTRY(lbd_set)    entry;       /* in its connection's sets */
};

/*
 * lbd_set_member: c's ACQUIRE id of path (method), for thread tid, is a
 * member of c's set key of of members, with timeout and stale as asked
 * (the set's timeout is its first member's; the caller parsed and
 * checked the request as any ACQUIRE's): collected
 * until the of-th arrives, then granted, queued or refused as one
 * (every member answered alike).  Replies to a member refused alone.
 */
void lbd_set_member(struct lbd_conn *c, uint64_t id, uint64_t key,
    uint64_t of, const char *path, unsigned method, pid_t tid,
    double timeout, int stale);

/*
 * lbd_set_try: set s, queued, is granted when each of its waits is at the
 * head of its lock's queue and each lock free: every artefact made, as
 * the owner, in this turn (one commit, every member's OK after it).
 * One that someone outside the broker holds: those made are released,
 * that lock watched, s waits on.  One that cannot be made: s refused.
 * serving: the lock whose serving called (never served again from
 * here), or NULL.  1 granted, 0 waits on, -1 refused (s gone).
 */
int lbd_set_try(struct lbd_set *s, struct lbd_lock *serving);

/*
 * lbd_set_refuse: refuses the set of queued wait w (its timeout,
 * CANCEL, a cycle of waits): every member answered code with the
 * message fmt and lock=culprit, the path of the lock it is refused for
 * (NULL: the one that keeps it waiting), its waits removed, each of its
 * locks but serving (NULL: none) served, s freed.
 */
void lbd_set_refuse(struct lbd_wait *w, struct lbd_lock *serving,
    enum lbp_error code, const char *culprit, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* lbd_set_expired, lbd_set_canceled: queued wait w's timeout ran out,
 * or CANCEL named it: its set refused (ETIMEOUT, ECANCELED), naming the
 * lock that kept it waiting. */
void lbd_set_expired(struct lbd_wait *w);
void lbd_set_canceled(struct lbd_wait *w);

/* lbd_set_cancel: CANCEL target by c: a member of a set of c's being
 * collected refuses it (ECANCELED).  0, or -1 when target is none. */
int  lbd_set_cancel(struct lbd_conn *c, uint64_t target);

/* lbd_set_wait_gone: w, a set's wait, is being removed (wait.c). */
void lbd_set_wait_gone(struct lbd_wait *w);

/* lbd_conn_sets_drop: c is going away: its sets are forgotten silently,
 * their waits removed and their locks served. */
void lbd_conn_sets_drop(struct lbd_conn *c);

#endif
