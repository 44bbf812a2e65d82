/*
 * session.c: the process's one connection to lockbrokerd: its life cycle
 * from IDLE to READY (connect, HELLO, the reader thread started) and the
 * fork handlers; the state the files of the broker transport share
 * (session.h).  The reader thread (reader.c) drives the other transitions.
 *
 * The connection, drawn (lb__conn.state; every transition under
 * lb__conn.mu):
 *
 *                caller: connect, HELLO
 *       IDLE ---------------------------> CONNECTING
 *        ^  ^                              |  |
 *        |  +------------- failed ---------+  | ok: reader thread started
 *        |                                    v
 *        |                                  READY <--------------------+
 *        |                                    |                        |
 *        |                 reader: EOF, error,| a line too long        |
 *        |                                    v                        |
 *        +--- 60 s and no daemon ------- RECONNECTING --- connect, ----+
 *             (reader: holds lost,        (reader: back-off, then   HELLO,
 *             requests fail; it exits)     try again)               RECLAIM
 *                                                                   each hold,
 *   fork(): the child starts over in IDLE, with new mutexes; the    resend the
 *   parent's connections are closed in the child at once, so that  waiting
 *   the parent's holds end when the parent does.                    ACQUIREs
 *
 *   IDLE -> CONNECTING -> READY or IDLE: lb__conn_establish, here.
 *   READY -> RECONNECTING -> READY or IDLE: the reader (reader.c).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "broker.h"
#include "holds.h"
#include "lockfs.h"
#include "os.h"
#include "owners.h"
#include "reader.h"
#include "session.h"
#include "transport.h"

#define ANSWER_WAIT_S     lb__answer_wait_s /* HELLO's reply */
#define READER_STACK      (256 * 1024)

struct lb__conn lb__conn;

static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------------ */
/* Set-up, fork.                                                      */

/* The state of a process that has never spoken to the broker. */
static void
conn_reset(void)
{
	pthread_mutex_init(&lb__conn.mu, NULL);
	pthread_mutex_init(&lb__conn.send_mu, NULL);
	pthread_mutex_init(&lb__conn.open_mu, NULL);
	lb__os_cond_init(&lb__conn.changed);
	lb__conn.state = CONN_IDLE;
	lb__conn.tp = NULL;
	lb__conn.opening = NULL;
	lb__conn.reclaiming = 0;
	TAILQ_INIT(&lb__conn.pending);
	TAILQ_INIT(&lb__conn.suspects);
	lb__holds_reset();
}

static void conn_init(void);

/* fork(), before: holds lb__conn.open_mu and lb__conn.mu, so that the
 * child sees whole state and no connection made but not yet recorded. */
static void
conn_fork_prepare(void)
{
	/* Done already (conn_init registered this handler): said again so
	 * that the thread sanitizer, which does not see the fork handlers'
	 * own ordering, sees the state made before it is locked. */
	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&lb__conn.open_mu);
	pthread_mutex_lock(&lb__conn.mu);
}

static void
conn_fork_parent(void)
{
	pthread_mutex_unlock(&lb__conn.mu);
	pthread_mutex_unlock(&lb__conn.open_mu);
}

/*
 * fork(), in the child: closes the parent's connections at once (a child
 * must not keep its parent's holds alive) and starts over with new
 * mutexes.  The parent's requests and holds are not the child's; their
 * memory is left (freeing it could race with nothing, but it is not worth
 * the code).  The handles notice the new pid themselves (lock.c).  The
 * mutexes taken by this thread in conn_fork_prepare are unlocked before
 * they are made anew: initialising a locked mutex is undefined.
 */
static void
conn_fork_child(void)
{
	pthread_mutex_unlock(&lb__conn.mu);
	pthread_mutex_unlock(&lb__conn.open_mu);
	if (lb__conn.tp != NULL)
		lb__tp_drop(lb__conn.tp);
	if (lb__conn.opening != NULL)
		lb__tp_drop(lb__conn.opening);
	lb__conn.gen++;
	conn_reset();
}

/* Once per process: the state, and the fork handlers. */
static void
conn_init(void)
{
	conn_reset();
	/* The owners' registry's fork handlers first, so that a fork takes
	 * lb__conn.mu before the owners' mutex, in the order the two are
	 * nested (lb__hold_unreclaimable). */
	lb__owners_init();
	lb__os_atfork(conn_fork_prepare, conn_fork_parent, conn_fork_child);
}

/* lb__conn_init: see session.h. */
void
lb__conn_init(void)
{
	pthread_once(&conn_once, conn_init);
}

/* lb__conn_lock: see session.h. */
void
lb__conn_lock(void)
{
	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&lb__conn.mu);
}

void
lb__conn_unlock(void)
{
	pthread_mutex_unlock(&lb__conn.mu);
}

/* lb__conn_lock_both: see session.h. */
void
lb__conn_lock_both(void)
{
	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&lb__conn.send_mu);
	pthread_mutex_lock(&lb__conn.mu);
}

void
lb__conn_unlock_both(void)
{
	pthread_mutex_unlock(&lb__conn.mu);
	pthread_mutex_unlock(&lb__conn.send_mu);
}

/* lb__conn_idle: see session.h. */
int
lb__conn_idle(void)
{
	int r;

	lb__conn_lock();
	r = lb__conn.state == CONN_IDLE;
	lb__conn_unlock();
	return r;
}

/* lb__next_id: see session.h. */
uint64_t
lb__next_id(void)
{
	return __atomic_add_fetch(&lb__conn.next_id, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Opening a connection, without the reader thread.                   */

/* What lb__conn_open's hook is told. */
struct opening {
	struct lb__tp   *c;
	int              recorded;      /* the hook ran: open_mu is free */
};

/* lb__tp_open's hook: records the connection whose handle was just made
 * as lb__conn.opening, under lb__conn.mu (so that no fork sees it open
 * but unrecorded), and lets forks go on (lb__conn_open took
 * lb__conn.open_mu before the handle was made). */
static void
opening_record(void *arg)
{
	struct opening *op = arg;

	lb__conn_lock();
	lb__conn.opening = op->c;
	lb__conn_unlock();
	op->recorded = 1;
	pthread_mutex_unlock(&lb__conn.open_mu);
}

/* lb__conn_opening_close: see session.h. */
void
lb__conn_opening_close(struct lb__tp *c)
{
	lb__conn_lock();
	lb__conn.opening = NULL;
	lb__tp_close(c);
	lb__conn_unlock();
}

/* lb__conn_open: see session.h. */
int
lb__conn_open(const char *path, struct lb__tp *c, char *why, size_t size)
{
	struct opening op = { c, 0 };
	int            r = -1;

	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&lb__conn.open_mu);
	r = lb__tp_open(c, path, lb__next_id(), LB__CLIENT_NAME,
	    lockfs_now() + ANSWER_WAIT_S, opening_record, &op, why, size);
	if (!op.recorded)
		pthread_mutex_unlock(&lb__conn.open_mu);
	else if (r == -1)
		lb__conn_opening_close(c);
	return r;
}

/* ------------------------------------------------------------------ */
/* From IDLE to READY.                                                 */

/* lb__conn_establish: see session.h. */
int
lb__conn_establish(char *why, size_t size)
{
	struct lb__tp   *c = NULL;
	struct lbp_msg  *m = NULL;
	char             path[sizeof(lb__conn.socket)];
	int              opened = -1, r = -1, e;

	lb__conn_lock();
	while (lb__conn.state == CONN_CONNECTING)
		pthread_cond_wait(&lb__conn.changed, &lb__conn.mu);
	if (lb__conn.state != CONN_IDLE) {
		r = lb__conn.state == CONN_READY ? 0 : -1;
		if (r != 0)
			snprintf(why, size, "the connection to lockbrokerd on "
			    "%s is being re-established", lb__conn.socket);
		lb__conn_unlock();
		goto out;
	}
	lb__conn.state = CONN_CONNECTING;
	lb__tp_where(lb__conn.socket, sizeof(lb__conn.socket));
	snprintf(path, sizeof(path), "%s", lb__conn.socket);
	lb__conn_unlock();

	if ((c = lb__tp_new()) == NULL)
		snprintf(why, size, "out of memory");
	else
		opened = lb__conn_open(path, c, why, size);

	lb__conn_lock_both();
	assert(lb__conn.state == CONN_CONNECTING);
	/* Pid files a daemon lost before the library gave up on it may
	 * have left (judged before anything else is said). */
	if (opened == 0 && !TAILQ_EMPTY(&lb__conn.suspects) &&
	    (m = malloc(sizeof(*m))) != NULL && lb__reader_judge(c, m) == -1) {
		snprintf(why, size, "lockbrokerd on %s: the connection failed "
		    "while pid files a lost daemon may have left were judged",
		    path);
		lb__conn.opening = NULL;
		lb__tp_close(c);
		opened = -1;
	}
	if (opened == 0) {
		lb__conn.tp = c;
		lb__conn.opening = NULL;
		if ((e = lb__os_thread_start(lb__reader_main, c,
		    READER_STACK)) == 0) {
			c = NULL;       /* the reader's now */
			lb__conn.gen++;
			lb__conn.state = CONN_READY;
			r = 0;
		} else {
			snprintf(why, size, "cannot start the lockbroker "
			    "reader thread: %s", strerror(e));
			lb__conn.tp = NULL;
			lb__tp_close(c);
		}
	}
	if (r != 0)
		lb__conn.state = CONN_IDLE;
	pthread_cond_broadcast(&lb__conn.changed);
	lb__conn_unlock_both();
	free(m);
	lb__tp_free(c);
out:
	return r;
}

/* ------------------------------------------------------------------ */
/* The calls lock.c makes about the connection (broker.h).             */

/* lb__broker_connect: see broker.h. */
int
lb__broker_connect(struct lockfs_err *err)
{
	char why[512];

	if (lb__conn_establish(why, sizeof(why)) == 0)
		return 0;
	return lockfs_fail(err, LB_EFAILED, 0, "%s", why);
}

/* lb__broker_sets: see broker.h. */
int
lb__broker_sets(void)
{
	int r;

	lb__conn_lock();
	r = lb__conn.state == CONN_READY && lb__conn.tp != NULL &&
	    lb__tp_version(lb__conn.tp) >= LBP_VERSION_SETS;
	lb__conn_unlock();
	return r;
}

/* lb__broker_ready: see broker.h. */
int
lb__broker_ready(void)
{
	int r;

	lb__conn_lock();
	r = lb__conn.state == CONN_READY;
	lb__conn_unlock();
	return r;
}
