/*
 * request.h: the requests of the broker transport (broker.c), as the
 * reader thread (reader.c) sees them: it hands each reply to its request,
 * and moves the requests when the connection is lost and comes back.
 * Internal: not installed.  Everything here is under lb__conn.mu
 * (session.h), except as said.
 */
#ifndef LB_REQUEST_H
#define LB_REQUEST_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "broker.h"
#include "lockfs.h"
#include "os.h"
#include "protocol.h"

/* UNSENT: queued while the connection is being re-established (or a
 * waiting ACQUIRE to send again); SENT: on the current connection; DONE:
 * answered, or in no queue (see broker.c). */
enum req_state { REQ_UNSENT, REQ_SENT, REQ_DONE };

struct req {
	TAILQ_ENTRY(req)  entry;        /* in lb__conn.pending */
	uint64_t          id;
	enum lbp_verb     verb;
	char             *path;
	char             *lock_file;
	unsigned          method;
	pid_t             tid;
	int               broker_only;
	int               break_stale;  /* ACQUIRE: stale=1 */
	int               shared;       /* ACQUIRE: mode=shared */
	uint64_t          set_key;      /* ACQUIRE: set=, a member of a set */
	unsigned          set_of;       /* ACQUIRE: of=, its members not yet
	                                   granted; 0: not a set's */
	double            timeout;      /* ACQUIRE, UPGRADE: as asked */
	double            deadline;     /* ACQUIRE, UPGRADE: monotonic end, or
	                                   INFINITY */
	enum req_state    state;
	double            unsent_since;
	double            sent_at;      /* SENT: when */
	int               abandoned;    /* SENT: its caller gave up waiting;
	                                   the reader frees it (and releases
	                                   a late grant) */
	int               fail;         /* the code of a failure of this verb */
	int               result;       /* DONE: 0 or an LB_E* code */
	struct lockfs_err err;          /* DONE with a failure: why */
	struct lb__wait  *wait;         /* ACQUIRE: what may end it early
	                                   (cancel.h), its caller's; NULL
	                                   for others, never looked at once
	                                   abandoned */
	int               canceling;    /* SENT: its caller ended the wait,
	                                   CANCEL went out ... */
	uint64_t          cancel_gen;   /* ... on this connection ... */
	double            cancel_at;    /* ... at this time */
	struct lb__status st;           /* DONE STATUS */
	uint64_t          token;        /* DONE ACQUIRE, UPGRADE, DOWNGRADE */
	int               fresh;        /* DONE ACQUIRE granted: 1 when the
	                                   owner held no live hold of it with
	                                   that token (not re-entrant) */
	struct lb__note  *note;         /* ACQUIRE begun asynchronously: set
	                                   whenever its caller is to look
	                                   again (its handle's; NULL when
	                                   none, and once abandoned) */
	struct lbp_out   *out;          /* scratch for its lines: the
	                                   request, CANCEL */
	int               pending;      /* DONE RELEASE: answered pending=1 */
	int               culprit;      /* DONE ACQUIRE of a set, refused:
	                                   for its own lock (lock=) */
	pthread_cond_t    cv;           /* signalled when state changes */
};

/* lb__req_free: frees q (which is in no list; NULL: nothing). */
void lb__req_free(struct req *q);

/* lb__req_format: formats q's line into o, ended (an ACQUIRE with what is
 * left of its timeout).  0, or -1 when the line cannot be made (a path too
 * long for it). */
int lb__req_format(const struct req *q, struct lbp_out *o);

/* lb__req_finish: ends q with result r (and, for a failure, the reason
 * msg), takes it out of lb__conn.pending and wakes its thread (or sets
 * its note). */
void lb__req_finish(struct req *q, int r, const char *msg);

/* lb__req_wake_all: wakes every waiting request, and the waiters on
 * lb__conn.changed, so that each looks at the state again. */
void lb__req_wake_all(void);

/*
 * lb__reqs_deliver: hands the parsed reply m to the SENT request with its
 * id, if one waits (updating the registry, holds.h, in the order the daemon
 * answered); for one whose caller gave up, a late grant is released (o is
 * scratch space for the RELEASE).  Called by the reader without lb__conn.mu
 * (it takes it, and send_mu for a release, after).
 */
void lb__reqs_deliver(const struct lbp_msg *m, struct lbp_out *o);

#endif /* LB_REQUEST_H */
