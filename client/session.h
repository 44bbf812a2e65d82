/*
 * session.h: the process's one connection to lockbrokerd, as the files of
 * the broker transport share it.  Internal: not installed.
 *
 * The files, one purpose each:
 *   session.c     the connection's life cycle (connect from IDLE, the
 *                 reader started) and the fork handlers; its states drawn
 *   reader.c      the reader thread: replies handed out, a lost
 *                 connection, reconnect, reclaim, resume, and the pid
 *                 files a lost daemon may have left (judged)
 *   holds.c       the registry of the holds taken through the broker
 *   broker.c      the requests, and the calls lock.c makes (broker.h)
 *   transport*.c  bytes to and from the daemon (transport.h)
 *
 * Locks: lb__conn.mu guards everything in struct lb__conn, the requests
 * (request.h) and the registry (holds.h); lb__conn.send_mu serialises
 * writes on the connection.  Where both are taken, send_mu comes first.
 * A write never happens under mu (except the reader's resend burst), so a
 * blocked write never stops replies from being handed out.  open_mu is
 * held only from before a connection's handle is made until it is
 * recorded (lb__conn_open).  A fork takes open_mu, then mu, then the
 * owners' registry's mutex (owners.h), the order in which they nest.
 */
#ifndef LB_SESSION_H
#define LB_SESSION_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "transport.h"

/* The connection's states: drawn at the top of session.c. */
enum lb__conn_state {
	CONN_IDLE,
	CONN_CONNECTING,
	CONN_READY,
	CONN_RECONNECTING
};

struct req;             /* request.h */
struct suspect;         /* reader.c */
TAILQ_HEAD(lb__reqs, req);
TAILQ_HEAD(lb__suspects, suspect);

struct lb__conn {
	pthread_mutex_t mu;
	pthread_mutex_t send_mu;
	pthread_mutex_t open_mu;        /* from before a connection's handle is
	                                   made until it is in opening */
	pthread_cond_t  changed;        /* state, reclaiming, pins */
	enum lb__conn_state state;
	struct lb__tp  *tp;             /* READY: the reader's connection (sent
	                                   on by the requests); else NULL */
	struct lb__tp  *opening;        /* a connection being set up, or NULL */
	uint64_t        gen;            /* changes with each connection */
	uint64_t        next_id;
	uint64_t        round;          /* reclaim rounds */
	int             reclaiming;     /* the reader is settling the holds */
	char            socket[LB__WHERE_MAX]; /* where the daemon is */
	struct lb__reqs pending;        /* UNSENT and SENT requests */
	struct lb__suspects suspects;   /* judged with the next daemon */
};

/* The connection (session.c).  Initialised on first use by the calls
 * below that take a lock. */
extern struct lb__conn lb__conn;

/* lb__conn_init: sets up the state and registers the fork handlers, once
 * per process; called by every lb_lock_new, so that this is done before
 * the threads that use a handle exist.  Done lazily, by another thread's
 * first call, a fork could find it half done: glibc's pthread_once then
 * starts it over in the child (registering the handlers twice), and the
 * thread sanitizer's waits in the child for ever. */
void lb__conn_init(void);

/* lb__conn_lock / lb__conn_unlock: lb__conn.mu (the first lock of a
 * process initialises the state and registers the fork handlers).
 * lb__conn_lock_both / lb__conn_unlock_both: send_mu, then mu. */
void lb__conn_lock(void);
void lb__conn_unlock(void);
void lb__conn_lock_both(void);
void lb__conn_unlock_both(void);

/* lb__conn_idle: 1 when there is no connection and none is being made or
 * re-made (takes mu). */
int lb__conn_idle(void);

/* lb__next_id: a fresh request id (no lock needed). */
uint64_t lb__next_id(void);

/*
 * lb__conn_open: opens t on where and says HELLO (t keeps what is read
 * after the reply), t recorded as lb__conn.opening for the fork handlers
 * from before it can be inherited.  0 with t open and recorded; or -1 with
 * t closed, not recorded, and why filled, naming where.  Blocks for the
 * connect and the HELLO.  Called without mu.
 */
int lb__conn_open(const char *where, struct lb__tp *t, char *why,
    size_t size);

/* lb__conn_opening_close: closes t, being opened, and forgets it, at once
 * (under mu, so that no fork sees it open but unrecorded).  Called
 * without mu. */
void lb__conn_opening_close(struct lb__tp *t);

/*
 * lb__conn_establish: connects from IDLE (see the drawing): the calling
 * thread connects and says HELLO, judges the pid files a lost daemon may
 * have left, then starts the reader.  0 when the connection is READY (made
 * here or by another thread meanwhile), else -1 with why filled (naming
 * where the daemon is).  Blocks for connect and HELLO.  Called without mu.
 */
int lb__conn_establish(char *why, size_t size);

#endif /* LB_SESSION_H */
