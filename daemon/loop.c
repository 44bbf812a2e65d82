/*
 * loop.c: the loop's iteration bookkeeping: what every iteration ends
 * with (the state database's commit, then the replies it allows), the
 * watch of the state database, and the graceful stop.  main.c starts the
 * loop; conn.c, the timers and the watches feed it.
 *
 * One iteration of uv_run:
 *
 *   poll: requests read (a turn per connection and per user: conn.c),
 *   |     timers (wait timeouts, polls, retries, pid watches), directory
 *   |     watches, signals.  Grants install holds, recorded in the
 *   |     iteration's transaction; their OKs are owed (reply.c)
 *   v
 *   check (iteration_end):
 *     settle: a transaction of riders' rows alone (readers joining and
 *     |       leaving, nothing else, no grant owed) carried over to the
 *     |       next iteration instead, a few times at most while each
 *     |       brings more of them (lbd_store_carry): then no reply goes
 *     |       out this time (held back with the rows they announce), and
 *     |       the next iteration does not block in poll; else
 *     settle: commit -> the last step of each handoff recorded (swap.c:
 *     |       the next holder's artefact renamed over the lock file) ->
 *     |       the owed OKs queued; the commit failed, or a handoff's last
 *     |       step: those grants refused (their locks handed on: owed
 *     |       again, settled by the next round).  So a client told of a
 *     |       handoff (the next holder, or the old holder of its release)
 *     |       never finds the lock file still the old holder's, also when
 *     |       the daemon dies right after
 *     LISTs on, as far as their clients read (list.c)
 *     replies handed to libuv (conn.c), grants first
 *     the old holders' traces of the handoffs finished removed, as their
 *     |   users (swap.c: the link method's old unique files)
 *     the iteration end's work: the holds of closed connections, exited
 *     |   processes and orphans past their grace ended (a turn in all:
 *     |   ending.c), sqlite locks due a look (watch.c), releasing holds
 *     |   due a try (releasing.c): what it grants is committed and
 *     |   answered by the next iteration
 *     throttled connections' next turn (conn.c)
 *     work left, or a LIST that could go on: the next iteration does not
 *     block in poll (lbd_want_flush: the idle handle)
 *
 * The stop (SIGTERM, SIGINT; lbd_stop):
 *
 *   STOPPING=1 -> the listener closed -> the holds of closed
 *   connections, exited processes and orphans past their grace released
 *   -> waiters get ESHUTDOWN, LISTs end -> orphans detached -> settle ->
 *   (with the handoffs' last steps) -> replies out -> each connection shut
 *   down once its replies
 *   are written (or closed after LBD_STOP_FLUSH_MS) -> the loop's handles
 *   closed, and the etcd lease's close begun (clusterd.h: a live lease
 *   revoked, within one request's timeout): uv_run returns once the
 *   last connection is closed and that revoke is over.  Holds stay on
 *   disk and in the database for the next daemon.
 */
#include <stdlib.h>
#include <time.h>

#include "clusterd.h"
#include "conn.h"
#include "daemon.h"
#include "deadlock.h"
#include "ending.h"
#include "intents.h"
#include "list.h"
#include "litter.h"
#include "log.h"
#include "loop.h"
#include "reconcile.h"
#include "releasing.h"
#include "reply.h"
#include "store.h"
#include "swap.h"
#include "systemd.h"
#include "wait.h"
#include "watch.h"

/* How long a stop waits for clients to take their last replies. */
#define LBD_STOP_FLUSH_MS 5000

/* How often an idle daemon looks whether its state database was deleted
 * or replaced (a daemon that commits looks before each commit). */
#define LBD_STORE_WATCH_MS 2000

/* lbd_now: the wall clock, in seconds since the epoch. */
double
lbd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An idle handle that does nothing: while it runs, poll does not block,
 * so replies queued outside the poll phase go out in this iteration. */
static void
idle_nothing(uv_idle_t *h)
{
	(void)h;
}

/* lbd_want_flush: makes sure this iteration reaches its check step. */
void
lbd_want_flush(struct lbd *d)
{
	if (!uv_is_active((uv_handle_t *)&d->idle))
		uv_idle_start(&d->idle, idle_nothing);
}

/* lbd_settle: commits the iteration's changes, takes the last steps of
 * the handoffs it recorded (swap.c), and settles the grants they
 * announce: their OKs are owed until then; when the commit fails, or a
 * handoff's last step, they are refused, which may hand locks to
 * waiters, whose grants the next round settles.  With may_carry (an
 * iteration's end, the daemon not stopping), a transaction of riders'
 * rows alone, no grant owed, may be carried over instead
 * (lbd_store_carry): 1, nothing committed, and the caller holds every
 * reply back until a later settle commits; else 0. */
int
lbd_settle(struct lbd *d, int may_carry)
{
	char why[256];
	int  r;

	if (may_carry && !d->stopping && TAILQ_EMPTY(&d->acks) &&
	    lbd_store_carry(d))
		return 1;
	do {
		r = lbd_store_settle(d, why, sizeof(why));
		if (r == 0) {
			lbd_intents_covered(d);
			lbd_swaps_finish(d);
		}
		lbd_grants_settle(d, r == 0, why);
	} while (r != 0 && !TAILQ_EMPTY(&d->acks));
	return 0;
}

/* Now and then: is the state database still the file opened?  (One
 * made anew is recorded by this iteration's settle.) */
static void
store_watch(uv_timer_t *t)
{
	lbd_store_check(t->data);
}

/* The end of each iteration: commit, the last steps of the handoffs it
 * recorded (swap.c: lbd_settle), LISTs on as far as their clients read,
 * then replies out (not when the transaction was carried over: held
 * back until the commit), then the old holders' traces of those handoffs
 * removed (swap.c); only then the work of the iteration's end
 * (the holds of gone holders: ending.c; sqlite locks due a look,
 * releasing holds due a try), which the next iteration commits and
 * answers (handoffs), so that the replies of this one do not wait for it; then the throttled connections' next turn.
 * The next iteration comes without waiting while a LIST could go on or
 * that work left something to commit, or a transaction was carried. */
static void
iteration_end(uv_check_t *h)
{
	struct lbd *d = h->data;
	int         work = !TAILQ_EMPTY(&d->endings) ||
	    !TAILQ_EMPTY(&d->due) || lbd_releasing_waiting(d);
	int         carried;

	carried = lbd_settle(d, 1);
	lbd_lists_more(d);
	if (!carried)           /* else held back with what they announce */
		lbd_conn_flush_all(d);
	lbd_swaps_tidy(d);
	uv_idle_stop(&d->idle);
	lbd_endings_turn(d, 0);
	lbd_watches_due(d);
	lbd_releasing_due(d);
	lbd_conns_resume(d);
	if (carried || work || lbd_lists_waiting(d) ||
	    !TAILQ_EMPTY(&d->endings) ||
	    !TAILQ_EMPTY(&d->due) || lbd_releasing_waiting(d))
		lbd_want_flush(d);
}

/* lbd_loop_start: readies d's loop's iteration end (its check and idle
 * handles) and the watch of the state database. */
void
lbd_loop_start(struct lbd *d)
{
	uv_check_init(d->loop, &d->check);
	d->check.data = d;
	uv_check_start(&d->check, iteration_end);
	uv_idle_init(d->loop, &d->idle);
	uv_timer_init(d->loop, &d->store_watch);
	d->store_watch.data = d;
	uv_timer_start(&d->store_watch, store_watch, LBD_STORE_WATCH_MS,
	    LBD_STORE_WATCH_MS);
	uv_unref((uv_handle_t *)&d->store_watch);
	/* Refused connections are logged at most refusals_logged_per_uid
	 * of a user and refusals_logged in all an interval of
	 * refusals_interval, then counted per user (lograte.c): a user who
	 * connects in a loop can neither grow the log without end nor hide
	 * another user's refusals, and the first lines of each interval
	 * still name who did. */
	lbd_lograte_init(&d->refusals, d->loop, "refusals of connections",
	    d->cfg.limits.refusals_logged_per_uid,
	    d->cfg.limits.refusals_logged,
	    (uint64_t)(d->cfg.refusals_interval * 1000));
	/* Requests refused for a cycle of waits, the same way. */
	lbd_lograte_init(&d->deadlocks, d->loop, "requests refused for "
	    "deadlocks", d->cfg.limits.refusals_logged_per_uid,
	    d->cfg.limits.refusals_logged,
	    (uint64_t)(d->cfg.refusals_interval * 1000));
}

/* A connection has flushed its last replies: close it. */
static void
stop_shutdown_done(uv_shutdown_t *req, int status)
{
	struct lbd_conn *c = (struct lbd_conn *)req->handle;

	(void)status;
	free(req);
	lbd_conn_close(c);
}

/* The stop's flush is over: connections whose clients have still not
 * taken their last replies are closed without them. */
static void
stop_flush_over(uv_timer_t *t)
{
	struct lbd      *d = t->data;
	struct lbd_conn *c, *next;

	for (c = TAILQ_FIRST(&d->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		log_debug("pid %ld: replies not taken in %d ms; closing",
		    (long)c->pid, LBD_STOP_FLUSH_MS);
		lbd_conn_close(c);
	}
}

/* lbd_stop: begins the graceful stop (see the top of this file): the
 * loop ends once every connection is closed and the etcd lease's revoke
 * is over. */
void
lbd_stop(struct lbd *d)
{
	struct lbd_conn *c, *next;
	uv_shutdown_t   *req;
	size_t           i;

	if (d->stopping)
		return;
	d->stopping = 1;
	lbd_sd_notify("STOPPING=1");
	log_notice("stopping");
	if (d->listening) {
		uv_close((uv_handle_t *)&d->listener, NULL);
		d->listening = 0;
	}
	lbd_endings_turn(d, 1);         /* closed connections, exited
	                                   processes let go of theirs */
	lbd_locks_shutdown(d);
	lbd_lists_shutdown(d);
	lbd_orphans_detach(d);
	lbd_settle(d, 0);
	lbd_conn_flush_all(d);
	lbd_swaps_tidy(d);
	for (c = TAILQ_FIRST(&d->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if ((req = malloc(sizeof(*req))) == NULL ||
		    uv_shutdown(req, (uv_stream_t *)&c->pipe,
		    stop_shutdown_done) != 0) {
			free(req);
			lbd_conn_close(c);
		}
	}
	/* Unreferenced: the loop ends as soon as the connections are closed;
	 * main closes the timer then. */
	uv_timer_init(d->loop, &d->stop_flush);
	d->stop_flush.data = d;
	uv_timer_start(&d->stop_flush, stop_flush_over, LBD_STOP_FLUSH_MS, 0);
	uv_unref((uv_handle_t *)&d->stop_flush);
	for (i = 0; i < d->nsig; i++)
		uv_close((uv_handle_t *)&d->sig[i], NULL);
	uv_close((uv_handle_t *)&d->store_watch, NULL);
	uv_close((uv_handle_t *)&d->check, NULL);
	uv_close((uv_handle_t *)&d->idle, NULL);
	lbd_litter_close(d);
	lbd_lograte_close(&d->refusals);
	lbd_lograte_close(&d->deadlocks);
	lbd_deadlock_end(d);
	lbd_clusterd_stop(d);
}
