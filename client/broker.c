/*
 * broker.c: the requests of the broker transport (see request.h), and the
 * calls lock.c makes to have them done (broker.h).  The connection they
 * travel on is session.c's, the reader that hands out their replies
 * reader.c's, the registry of holds they update holds.c's.
 *
 * Requests (struct req) are made by the calling thread, which waits on
 * its own condition variable; the reader thread reads every reply line,
 * parses it, and hands it to the request with its id.  A request is
 * UNSENT (queued while the connection is being re-established, or a
 * waiting ACQUIRE to send again), SENT (on the current connection) or
 * DONE.  When the connection is lost, SENT ACQUIREs become UNSENT, to be
 * sent again with what is left of their timeout, and SENT STATUSes too
 * (asked again once the holds are settled with the next daemon: an
 * LB_BROKER lb_i_am_locking waits for the reconnect, an AUTO one falls
 * back to the in-process look); every other SENT request fails
 * ("connection lost").  ERR ESHUTDOWN on an ACQUIRE (the daemon is
 * stopping) also makes it UNSENT: it waits for the next daemon.  The
 * daemon keeps the time of a waiting ACQUIRE; as a backstop against a
 * daemon that stops answering, a caller gives up ANSWER_GRACE_S after its
 * timeout (other requests: after REQUEST_WAIT_S), sends CANCEL, and
 * leaves the request ABANDONED to the reader, which releases a grant that
 * comes later.  A DOWNGRADE says by when (by=, DOWNGRADE_BY_S after it
 * goes out, ANSWER_GRACE_S before its caller gives up): read later, the
 * daemon leaves the hold exclusive, as its caller is told.  A hold's
 * mode, as its owner was told it, goes with its RECLAIM to a restarted
 * daemon (mode=), which settles the hold to it (docs/SHARED.md).
 *
 * A waiting ACQUIRE whose caller ends the wait (lb_lock_cancel, or the
 * interrupt hook, which the waiting thread calls every
 * LB__INTERRUPT_EVERY_S with the connection's mutex released: cancel.h)
 * sends CANCEL and waits on for the daemon's word: ERR ECANCELED (the
 * wait is withdrawn: LB_ECANCELED), or the grant, which crossed the
 * CANCEL (the caller holds the lock).  Unsent, it is dropped.  A daemon
 * that does not answer within ANSWER_GRACE_S leaves it abandoned, as
 * above.
 *
 * A request is run in two halves: req_start puts it on its way, req_look
 * looks at it once without waiting (ending its wait when its caller
 * stops it, giving up on a silent daemon, timing out or falling back
 * while the connection is being re-established) and says by when to
 * look again.  req_run, for the blocking calls, looks and waits on the
 * request's condition variable in turn; the asynchronous acquire
 * (lb__broker_acquire_start, _look, _drop) leaves the waiting to its
 * caller, whom the request's note (os.h) wakes wherever the condition
 * variable would be signalled (req_wake).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker.h"
#include "cancel.h"
#include "holds.h"
#include "lockfs.h"
#include "os.h"
#include "owners.h"
#include "protocol.h"
#include "reader.h"
#include "request.h"
#include "session.h"
#include "transport.h"

#define ANSWER_GRACE_S    5.0   /* a waiting ACQUIRE's answer, after its
	                           timeout (the daemon's timer) ends */
#define REQUEST_WAIT_S    30.0  /* the answer to any other request */
#define DOWNGRADE_BY_S    (REQUEST_WAIT_S - ANSWER_GRACE_S) /* the
	                           DOWNGRADE's by=, after it is formatted:
	                           its answer has ANSWER_GRACE_S to come */

/* lb__transport_from_env: see broker.h. */
enum lb__transport
lb__transport_from_env(char *why, size_t size)
{
	const char *v = getenv("LOCKBROKER_TRANSPORT");

	if (v == NULL || *v == '\0' || strcmp(v, "auto") == 0)
		return LB__AUTO;
	if (strcmp(v, "broker") == 0)
		return LB__BROKER;
	if (strcmp(v, "local") == 0)
		return LB__LOCAL;
	snprintf(why, size, "LOCKBROKER_TRANSPORT=\"%.64s\" is not auto, "
	    "broker or local; using auto", v);
	return LB__AUTO;
}

/* ------------------------------------------------------------------ */
/* Requests.                                                           */

/* lb__req_free: see request.h. */
void
lb__req_free(struct req *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->cv);
	free(q->out);
	free(q->path);
	free(q->lock_file);
	free(q);
}

/* A new request verb for t; fail is the code its failures get.  NULL when
 * out of memory. */
static struct req *
req_new(enum lbp_verb verb, const struct lb__target *t, int fail)
{
	struct req *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->path = strdup(t->path)) == NULL ||
	    (q->lock_file = strdup(t->lock_file)) == NULL) {
		free(q->path);
		free(q);
		return NULL;
	}
	lb__os_cond_init(&q->cv);
	q->verb = verb;
	q->method = t->method;
	q->tid = t->tid;
	q->break_stale = t->break_stale;
	q->shared = verb == LBP_MSG_ACQUIRE && t->shared;
	if (verb == LBP_MSG_ACQUIRE && t->set_of > 0) {
		q->set_key = t->set_key;
		q->set_of = t->set_of;
	}
	q->broker_only = t->broker_only;
	q->fail = fail;
	q->timeout = 0;
	q->deadline = INFINITY;
	q->wait = verb == LBP_MSG_ACQUIRE || verb == LBP_MSG_UPGRADE ?
	    t->wait : NULL;
	q->state = REQ_DONE;    /* in no queue yet */
	return q;
}

/* lb__req_format: see request.h. */
int
lb__req_format(const struct req *q, struct lbp_out *o)
{
	double left;

	lbp_begin(o, q->verb, 1, q->id);
	lbp_add_str(o, "path", q->path);
	lbp_add_str(o, "method", lockfs_method_name(q->method));
	if (q->verb != LBP_MSG_BREAK && q->tid != 0)
		lbp_add_u64(o, "thread", (uint64_t)q->tid);
	if (q->verb == LBP_MSG_ACQUIRE || q->verb == LBP_MSG_UPGRADE) {
		if (isinf(q->timeout) && q->timeout > 0)
			left = INFINITY;
		else if (!(q->timeout > 0))
			left = 0;       /* one try */
		else if ((left = q->deadline - lockfs_now()) < 0.001)
			left = 0.001;   /* a wait that ends at once */
		else if (left > 1e9)
			left = 1e9;     /* decimals the daemon reads: 30 years */
		lbp_add_double(o, "timeout", left);
	}
	if (q->verb == LBP_MSG_ACQUIRE && q->break_stale)
		lbp_add_u64(o, "stale", 1);
	if (q->verb == LBP_MSG_ACQUIRE && q->shared)
		lbp_add_str(o, "mode", "shared");
	if (q->verb == LBP_MSG_ACQUIRE && q->set_of > 0) {
		lbp_add_u64(o, "set", q->set_key);
		lbp_add_u64(o, "of", q->set_of);
	}
	/* Read past that, the daemon leaves the hold exclusive: its
	 * caller has given up on it by then (req_answer_by) and been told
	 * that it was not done. */
	if (q->verb == LBP_MSG_DOWNGRADE)
		lbp_add_double(o, "by", lockfs_now() + DOWNGRADE_BY_S);
	return lbp_end(o);
}

/* Wakes q's caller: the thread that waits for it, or, for one begun
 * asynchronously, its note. */
static void
req_wake(struct req *q)
{
	pthread_cond_signal(&q->cv);
	if (q->note != NULL)
		lb__os_note_set(q->note);
}

/* lb__req_finish: see request.h. */
void
lb__req_finish(struct req *q, int r, const char *msg)
{
	q->result = r;
	if (r < 0)
		lockfs_fail(&q->err, r, 0, "%s", msg);
	q->state = REQ_DONE;
	TAILQ_REMOVE(&lb__conn.pending, q, entry);
	req_wake(q);
}

/* lb__req_wake_all: see request.h. */
void
lb__req_wake_all(void)
{
	struct req *q;

	TAILQ_FOREACH(q, &lb__conn.pending, entry)
		req_wake(q);
	pthread_cond_broadcast(&lb__conn.changed);
}

/* Reads a STATUS reply's cluster_* fields into *st. */
static void
status_read_cluster(const struct lbp_msg *m, struct lb__status *st)
{
	const char *v;
	uint64_t    n;

	if ((v = lbp_get(m, "cluster_state")) == NULL)
		return;
	st->cluster = 1;
	snprintf(st->cstate, sizeof(st->cstate), "%s", v);
	if ((v = lbp_get(m, "cluster_key")) != NULL)
		snprintf(st->ckey, sizeof(st->ckey), "%s", v);
	if ((v = lbp_get(m, "cluster_holder")) != NULL)
		snprintf(st->cholder, sizeof(st->cholder), "%s", v);
	if ((v = lbp_get(m, "cluster_error")) != NULL)
		snprintf(st->cerror, sizeof(st->cerror), "%s", v);
	if (lbp_get_u64(m, "cluster_revision", &n) == 0)
		st->crevision = n;
	if (lbp_get_u64(m, "cluster_waiters", &n) == 0 && n <= 0xffffffffu)
		st->cwaiters = (unsigned)n;
}

/* Reads a STATUS reply's fields into *st. */
static void
status_read(const struct lbp_msg *m, struct lb__status *st)
{
	const char *host = lbp_get(m, "host");
	uint64_t    v;
	double      since = 0;

	memset(st, 0, sizeof(*st));
	st->uid = (uid_t)-1;
	st->locked = lbp_get_u64(m, "locked", &v) == 0 && v == 1;
	st->mine = lbp_get_u64(m, "mine", &v) == 0 && v == 1;
	if (lbp_get_u64(m, "holder_pid", &v) == 0 && v <= 0x7fffffff)
		st->pid = (pid_t)v;
	if (lbp_get_u64(m, "holder_tid", &v) == 0 && v <= 0x7fffffff)
		st->tid = (pid_t)v;
	if (lbp_get_u64(m, "holder_uid", &v) == 0 && v < (uid_t)-1)
		st->uid = (uid_t)v;
	if (host != NULL)
		snprintf(st->host, sizeof(st->host), "%s", host);
	if (lbp_get_timeout(m, "since", &since) == 0 && since > 0 &&
	    !isinf(since))
		st->since = since;
	if (lbp_get_u64(m, "token", &v) == 0)
		st->token = v;
	if (lbp_get_u64(m, "waiters", &v) == 0 && v <= 0xffffffffu)
		st->waiters = (unsigned)v;
	st->unclaimed = lbp_get_u64(m, "unclaimed", &v) == 0 && v == 1;
	st->shared = (host = lbp_get(m, "mode")) != NULL &&
	    strcmp(host, "shared") == 0;
	if (st->locked && lbp_get_u64(m, "holders", &v) == 0 &&
	    v <= 0xffffffffu)
		st->holders = (unsigned)v;
	status_read_cluster(m, st);
}

/* The owner of q's lock released it, and its lock file may name it until
 * the daemon's handoff is done: marked so (lb__owners_unfinished), never
 * to be taken or removed in-process as its own meanwhile. */
static void
unfinished(const struct req *q)
{
	struct lb__owner_key k = { q->lock_file, q->method, q->tid };

	lb__owners_unfinished(&k);
}

/* The daemon shows that q's lock file does not name q's owner, and that
 * no handoff from it is owed: its mark (unfinished), if any, is dropped;
 * with all, every owner's of this process on the lock. */
static void
finished(const struct req *q, int all)
{
	struct lb__owner_key k = { q->lock_file, q->method, q->tid };

	lb__owners_finished(&k, all);
}

/*
 * Whether the STATUS answer st shows that no lock file on q's lock names
 * an owner of this process with a handoff owed: the lock free (no hold
 * at the daemon, no artefact on disk), or held outside the broker (no
 * hold at the daemon, so no handoff of its; no token) by an artefact
 * naming another process.  A broker hold says nothing of the kind: its
 * handoff's last step may be owed (the lock file still the previous
 * holder's, while readers keep it open), or it may be a previous run's
 * hold whose handoff a restarted daemon could not finish.
 */
static int
status_finished(const struct lb__status *st)
{
	if (st->mine)
		return 0;
	if (!st->locked)
		return 1;
	return st->token == 0 && st->pid != 0 && st->pid != lockfs_os_pid();
}

/* Forward: the replies of requests whose callers wait. */
static void req_deliver(struct req *q, const struct lbp_msg *m);

/*
 * The reply m to q, whose caller gave up waiting (under lb__conn.mu): the
 * registry learns from it as from any reply, and q is freed; but a
 * grant (not a re-entrant one of a hold the owner still has) is to be
 * released: then 1, with the RELEASE line in *o.
 */
static int
req_deliver_abandoned(struct req *q, const struct lbp_msg *m,
    struct lbp_out *o)
{
	struct hold *h = lb__hold_find(q->lock_file, q->method, q->tid);
	int          r = 0;

	if (q->verb != LBP_MSG_ACQUIRE) {
		req_deliver(q, m);
		if (q->state == REQ_DONE)
			lb__req_free(q);
		goto out;
	}
	if (m->verb == LBP_MSG_OK && (h == NULL || h->state != HOLD_LIVE)) {
		/* Its answer may be pending: marked until it comes (then
		 * req_deliver, above, keeps or drops the mark as the
		 * answer says).  q, abandoned still, waits for it. */
		unfinished(q);
		q->verb = LBP_MSG_RELEASE;
		q->wait = NULL;         /* its caller's, gone */
		q->id = lb__next_id();
		q->sent_at = lockfs_now();
		if ((r = lb__req_format(q, o) == 0))
			goto out;
	}
	if (m->verb == LBP_MSG_OK || m->verb == LBP_MSG_ERR) {
		TAILQ_REMOVE(&lb__conn.pending, q, entry);
		lb__req_free(q);
	}
out:
	return r;
}

/*
 * Hands the reply m to its request q (SENT), updating the registry in the
 * order the daemon answered; the reader calls it under lb__conn.mu.
 */
static void
req_deliver(struct req *q, const struct lbp_msg *m)
{
	struct lb__target t;
	struct hold      *h;
	const char       *msg, *name;
	char              text[PATH_MAX + 256]; /* as lockfs_err's */
	enum lbp_error    code;
	uint64_t          token = 0;
	int               r;

	if (m->verb == LBP_MSG_ERR) {
		name = lbp_get(m, "code");
		code = (enum lbp_error)lbp_error_parse(name != NULL ? name :
		    "");
		msg = lbp_get(m, "message");
		if (code == LBP_ESHUTDOWN && q->verb == LBP_MSG_ACQUIRE) {
			/* The daemon stops: wait for the next one. */
			q->state = REQ_UNSENT;
			q->unsent_since = lockfs_now();
			req_wake(q);
			return;
		}
		r = lbp_to_lb(code, q->fail);
		/* A set refused: lock= names the lock it was refused for. */
		q->culprit = q->set_of > 0 && lbp_get(m, "lock") != NULL &&
		    strcmp(lbp_get(m, "lock"), q->path) == 0;
		if (q->verb == LBP_MSG_RELEASE &&
		    (r == LB_ENOTLOCKED || r == LB_ENOTMINE))
			lb__hold_ended(q->lock_file, q->method, q->tid);
		if (r == q->fail || r == LB_EINVAL)
			snprintf(text, sizeof(text), "lockbrokerd refused %s of "
			    "%s: %s (%s)", lbp_verb_name(q->verb), q->path,
			    msg != NULL ? msg : "?", name != NULL ? name : "?");
		else
			snprintf(text, sizeof(text), "%s", msg != NULL ? msg :
			    lbp_error_text(code));
		lb__req_finish(q, r, text);
		return;
	}
	if (m->verb != LBP_MSG_OK)
		return;         /* an ITEM: not asked for */
	switch ((int)q->verb) {
	case LBP_MSG_ACQUIRE:
		lbp_get_u64(m, "token", &token);
		q->token = token;
		/* Re-entrant: the daemon gives an owner that holds the lock
		 * its hold's token again.  The registry follows the daemon's
		 * answers in their order, so this tells, race-free, what the
		 * daemon did for this request. */
		h = lb__hold_find(q->lock_file, q->method, q->tid);
		q->fresh = h == NULL || h->state != HOLD_LIVE ||
		    h->token != token;
		t = (struct lb__target){ q->path, q->lock_file, q->method,
		    q->tid, q->broker_only, 0, NULL, q->shared, 0, 0 };
		lb__hold_granted(&t, token);
		break;
	case LBP_MSG_RELEASE:
		lbp_get_u64(m, "pending", &token);
		q->pending = token == 1;
		if (q->pending)
			unfinished(q);  /* whether or not its caller waits */
		else
			finished(q, 0); /* handed on, or removed */
		lb__hold_ended(q->lock_file, q->method, q->tid);
		break;
	case LBP_MSG_STATUS:
		status_read(m, &q->st);
		if (!q->st.mine)
			lb__hold_ended(q->lock_file, q->method, q->tid);
		else if (lbp_get(m, "mode") != NULL)
			lb__hold_mode(q->lock_file, q->method, q->tid,
			    q->st.shared);
		if (status_finished(&q->st))
			finished(q, 1);
		break;
	case LBP_MSG_BREAK:
		lb__hold_ended_all(q->lock_file, q->method);
		break;
	case LBP_MSG_UPGRADE:
	case LBP_MSG_DOWNGRADE:
		lbp_get_u64(m, "token", &token);
		q->token = token;
		lb__hold_mode(q->lock_file, q->method, q->tid,
		    q->verb == LBP_MSG_DOWNGRADE);
		break;
	}
	lb__req_finish(q, 0, NULL);
}

/*
 * The caller gives up waiting for the connection and does q's work
 * in-process: takes q out of the queue and, for a release or a break,
 * marks the holds it ends as DROPPED, to be settled with the next daemon.
 * Under lb__conn.mu, while the reader is not settling holds.
 */
static void
req_fall_back(struct req *q)
{
	if (q->state == REQ_UNSENT)
		TAILQ_REMOVE(&lb__conn.pending, q, entry);
	q->state = REQ_DONE;
	if (q->verb == LBP_MSG_RELEASE || q->verb == LBP_MSG_BREAK)
		lb__holds_drop(q->lock_file, q->method, q->tid,
		    q->verb == LBP_MSG_BREAK);
}

/* Writes a request's line (buf, len) if the connection it was meant for
 * (gen) is still the current one; on a failed write, shuts the
 * connection down so that the reader sees the loss. */
static void
req_send_line(const char *buf, size_t len, uint64_t gen)
{
	pthread_mutex_lock(&lb__conn.send_mu);
	if (lb__conn.gen == gen && lb__conn.state == CONN_READY &&
	    lb__conn.tp != NULL &&
	    lb__tp_send(lb__conn.tp, buf, len) == -1)
		lb__tp_shutdown(lb__conn.tp);
	pthread_mutex_unlock(&lb__conn.send_mu);
}

/* req_send_line of the line o. */
static void
req_send(const struct lbp_out *o, uint64_t gen)
{
	req_send_line(o->buf, o->len, gen);
}

/* When the caller of q (SENT) stops waiting for its answer: a waiting
 * ACQUIRE's timeout plus ANSWER_GRACE_S (never, for LB_FOREVER: the
 * daemon answers when it grants), else REQUEST_WAIT_S after it went out;
 * a canceled one's, ANSWER_GRACE_S after its CANCEL went out. */
static double
req_answer_by(const struct req *q)
{
	double by;

	if ((q->verb != LBP_MSG_ACQUIRE && q->verb != LBP_MSG_UPGRADE) ||
	    !(q->timeout > 0))
		by = q->sent_at + REQUEST_WAIT_S;
	else if (isinf(q->timeout))
		by = INFINITY;
	else
		by = q->deadline + ANSWER_GRACE_S;
	if (q->canceling && q->cancel_at + ANSWER_GRACE_S < by)
		by = q->cancel_at + ANSWER_GRACE_S;
	return by;
}

/* Sends CANCEL of q, a waiting ACQUIRE, on the current connection (under
 * lb__conn.mu, released while it is written); o is scratch space.  Whose
 * answer nobody reads: the ACQUIRE's tells.  The line is written from a
 * copy: once the mutex is released, q may be the reader's to free (an
 * abandoned request: req_abandon), and o with it when it is q->out; q is
 * not used after. */
static void
req_cancel(struct req *q, struct lbp_out *o)
{
	uint64_t gen = lb__conn.gen;
	char     line[128];
	size_t   len;

	q->canceling = 1;
	q->cancel_gen = gen;
	q->cancel_at = lockfs_now();
	lbp_begin(o, LBP_MSG_CANCEL, 1, lb__next_id());
	lbp_add_u64(o, "target", q->id);
	if (lbp_end(o) != 0 || o->len > sizeof(line))
		return;
	memcpy(line, o->buf, len = o->len);
	lb__conn_unlock();
	req_send_line(line, len, gen);
	lb__conn_lock();
}

/* Whether q's caller ends its wait (q->wait, not NULL): canceled, or the
 * interrupt hook, when due, says so; the hook is called with lb__conn.mu
 * released (held on entry and on return). */
static int
req_stopping(struct req *q)
{
	int r;

	if (lb__wait_canceled(q->wait))
		return 1;
	if (lockfs_now() < lb__wait_due(q->wait))
		return 0;
	lb__conn_unlock();
	r = lb__wait_stopped(q->wait);
	lb__conn_lock();
	return r;
}

/* The failure of q, an ACQUIRE whose caller ended its wait, into err. */
static int
req_stopped(const struct req *q, struct lockfs_err *err)
{
	return lb__wait_fail(q->wait, q->path, err);
}

/*
 * The daemon did not answer q in time (under lb__conn.mu): q is left to the
 * reader (abandoned); a waiting ACQUIRE is canceled (CANCEL, whose answer
 * nobody reads).  o is scratch space.  Returns the failure for the
 * caller, with err filled.
 */
static int
req_abandon(struct req *q, struct lbp_out *o, struct lockfs_err *err)
{
	int r;

	q->abandoned = 1;
	q->note = NULL;         /* its caller looks no more */
	r = (q->verb == LBP_MSG_ACQUIRE || q->verb == LBP_MSG_UPGRADE) &&
	    q->timeout > 0 ? LB_ETIMEOUT : q->fail;
	lockfs_fail(err, r, 0, "%s: lockbrokerd on %s did not answer %s "
	    "within %g s", q->path, lb__conn.socket, lbp_verb_name(q->verb),
	    lockfs_now() - q->sent_at);
	if (q->canceling && q->wait != NULL)
		r = req_stopped(q, err);
	if (q->verb == LBP_MSG_ACQUIRE || q->verb == LBP_MSG_UPGRADE)
		req_cancel(q, o);
	return r;
}

/*
 * Puts q on its way, under lb__conn.mu (released while it connects or
 * writes): connects first when there is no connection (only when
 * fallback is infinite; otherwise LB__FALLBACK), sends q, or queues it
 * while the connection is being re-established.  LB__INPROGRESS when q
 * is in lb__conn.pending (req_look follows it), else its outcome: a
 * failure with err filled, or LB__FALLBACK.
 */
static int
req_start(struct req *q, double fallback, struct lockfs_err *err)
{
	char            why[512];
	uint64_t        gen;
	int             r;

	while (lb__conn.state != CONN_READY && lb__conn.state != CONN_RECONNECTING) {
		if (lb__conn.state == CONN_CONNECTING) {
			pthread_cond_wait(&lb__conn.changed, &lb__conn.mu);
			continue;
		}
		if (!isinf(fallback)) {
			r = LB__FALLBACK;
			goto out;
		}
		lb__conn_unlock();
		r = lb__conn_establish(why, sizeof(why));
		lb__conn_lock();
		if (r != 0) {
			r = lockfs_fail(err, q->fail, 0, "%s: %s", q->path,
			    why);
			goto out;
		}
	}
	if (lb__conn.state == CONN_RECONNECTING && fallback == 0 &&
	    !lb__conn.reclaiming) {
		req_fall_back(q);
		r = LB__FALLBACK;
		goto out;
	}
	if (q->wait != NULL && lb__wait_canceled(q->wait)) {
		r = req_stopped(q, err);
		goto out;
	}
	q->id = lb__next_id();
	if ((q->out = malloc(sizeof(*q->out))) == NULL ||
	    lb__req_format(q, q->out) != 0) {
		r = lockfs_fail(err, q->out == NULL ? LB_ENOMEM : LB_EINVAL,
		    0, "%s: %s", q->path, q->out == NULL ? "out of memory" :
		    "too long for the broker protocol");
		goto out;
	}
	TAILQ_INSERT_TAIL(&lb__conn.pending, q, entry);
	r = LB__INPROGRESS;
	if (lb__conn.state == CONN_READY) {
		q->state = REQ_SENT;
		q->sent_at = lockfs_now();
		gen = lb__conn.gen;
		lb__conn_unlock();
		req_send(q->out, gen);
		lb__conn_lock();
	} else {
		q->state = REQ_UNSENT;
		q->unsent_since = lockfs_now();
	}
out:
	return r;
}

/*
 * Looks at q, put on its way by req_start, under lb__conn.mu (released
 * while the hook runs or CANCEL is written): ends its wait when its
 * caller stops it (CANCEL, or dropped unsent), gives up on a daemon that
 * does not answer (abandoned: *gone set, the reader frees it), times out
 * or falls back while the connection is being re-established.
 * LB__INPROGRESS with *until the monotonic time by which to look again
 * (earlier when q's condition variable or note is signalled); else q's
 * outcome (err filled on failure), or LB__FALLBACK.  Never waits.
 */
static int
req_look(struct req *q, double fallback, double *until, int *gone,
    struct lockfs_err *err)
{
	double now;
	int    r;

	while (q->state != REQ_DONE) {
		if (q->wait != NULL && req_stopping(q)) {
			if (q->state == REQ_UNSENT) {
				TAILQ_REMOVE(&lb__conn.pending, q, entry);
				q->state = REQ_DONE;
				lb__suspect_add(q);
				r = req_stopped(q, err);
				goto out;
			}
			if (q->state == REQ_SENT && (!q->canceling ||
			    q->cancel_gen != lb__conn.gen)) {
				req_cancel(q, q->out);
				continue;
			}
		}
		if (q->state == REQ_DONE)
			break;          /* answered while the hook ran */
		if (q->state == REQ_SENT) {
			if (lockfs_now() < (*until = req_answer_by(q))) {
				if (q->wait != NULL &&
				    lb__wait_due(q->wait) < *until)
					*until = lb__wait_due(q->wait);
				r = LB__INPROGRESS;
				goto out;
			}
			r = req_abandon(q, q->out, err);
			*gone = 1;
			goto out;
		}
		/* Unsent: the connection is being re-established.  A one-try
		 * ACQUIRE or UPGRADE waits for it too: it cannot tell "held"
		 * yet; one with a timeout, until its deadline. */
		now = lockfs_now();
		*until = (q->verb == LBP_MSG_ACQUIRE ||
		    q->verb == LBP_MSG_UPGRADE) && q->timeout > 0 ?
		    q->deadline : INFINITY;
		if (now >= *until) {
			TAILQ_REMOVE(&lb__conn.pending, q, entry);
			q->state = REQ_DONE;
			lb__suspect_add(q);
			r = lockfs_fail(err, LB_ETIMEOUT, 0, "timed out after "
			    "%g s waiting for %s (the connection to lockbrokerd "
			    "on %s was being re-established)", q->timeout,
			    q->path, lb__conn.socket);
			goto out;
		}
		if (!isinf(fallback) && !lb__conn.reclaiming) {
			if (now >= q->unsent_since + fallback) {
				req_fall_back(q);
				r = LB__FALLBACK;
				goto out;
			}
			if (q->unsent_since + fallback < *until)
				*until = q->unsent_since + fallback;
		}
		if (q->wait != NULL && lb__wait_due(q->wait) < *until)
			*until = lb__wait_due(q->wait);
		r = LB__INPROGRESS;
		goto out;
	}
	r = q->result;
	if (r < 0 && q->canceling)
		r = req_stopped(q, err);
	else if (r < 0)
		*err = q->err;
out:
	return r;
}

/* Looks at q (req_look) until it has an outcome, waiting on its
 * condition variable in between, under lb__conn.mu. */
static int
req_wait(struct req *q, double fallback, int *gone, struct lockfs_err *err)
{
	double until;
	int    r;

	while ((r = req_look(q, fallback, &until, gone, err)) ==
	    LB__INPROGRESS)
		lb__os_cond_wait_until(&q->cv, &lb__conn.mu, until);
	return r;
}

/*
 * Runs q: req_start, then req_wait.  Returns q's result (err filled on
 * failure), or LB__FALLBACK when q waited unsent for fallback seconds.
 * Blocks; on return q belongs to the caller again, unless *gone is set
 * (abandoned: the reader frees it).
 */
static int
req_run(struct req *q, double fallback, int *gone, struct lockfs_err *err)
{
	int r;

	lb__conn_lock();
	if ((r = req_start(q, fallback, err)) == LB__INPROGRESS)
		r = req_wait(q, fallback, gone, err);
	lb__conn_unlock();
	return r;
}

/* lb__broker_wake: see broker.h. */
void
lb__broker_wake(void)
{
	lb__conn_lock();
	lb__req_wake_all();
	lb__conn_unlock();
}

/* A LOST from the daemon (docs/SHARED.md): the shared hold it names is
 * gone, the daemon's doing; recorded as lost (holds.h). */
static void
reqs_lost(const struct lbp_msg *m)
{
	const char *path = lbp_get(m, "path"), *method = lbp_get(m, "method");
	const char *why = lbp_get(m, "message");
	uint64_t    tid = 0;
	unsigned    meth;

	if (path == NULL || method == NULL ||
	    lockfs_method_parse(method, &meth) != 0 ||
	    (lbp_get(m, "thread") != NULL &&
	    (lbp_get_u64(m, "thread", &tid) != 0 || tid > INT32_MAX)))
		return;
	lb__hold_lost(path, meth, (pid_t)tid, why != NULL ? why :
	    "the daemon ended its shared hold");
}

/* lb__reqs_deliver: see request.h. */
void
lb__reqs_deliver(const struct lbp_msg *m, struct lbp_out *o)
{
	struct req *q;
	uint64_t    gen = 0;
	int         release = 0;

	if (m->verb == LBP_MSG_LOST) {
		lb__conn_lock();
		reqs_lost(m);
		lb__conn_unlock();
		return;
	}
	if (!m->has_id)
		return;         /* about the connection: EOF follows */
	lb__conn_lock();
	TAILQ_FOREACH(q, &lb__conn.pending, entry)
		if (q->id == m->id && q->state == REQ_SENT) {
			if (q->abandoned)
				release = req_deliver_abandoned(q, m, o);
			else
				req_deliver(q, m);
			break;
		}
	gen = lb__conn.gen;
	lb__conn_unlock();
	if (release)
		req_send(o, gen);
}

/* ------------------------------------------------------------------ */
/* The calls lock.c makes (broker.h).                                  */

/* Runs a request of verb for t; the common part of the calls below.
 * Fills *done (when not NULL) with the finished request's answer. */
static int
broker_call(enum lbp_verb verb, const struct lb__target *t, int fail,
    double timeout, double deadline, double fallback, struct req *done,
    struct lockfs_err *err)
{
	struct req *q = NULL;
	int         r = LB__FALLBACK, gone = 0;

	/* Not worth a request: AUTO, and no connection at all. */
	if (!isinf(fallback) && lb__conn_idle())
		goto out;
	if ((q = req_new(verb, t, fail)) == NULL) {
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "request for %s",
		    t->path);
		goto out;
	}
	q->timeout = timeout;
	q->deadline = timeout > 0 && !isinf(timeout) ? deadline : INFINITY;
	r = req_run(q, fallback, &gone, err);
	if (gone)
		q = NULL;       /* the reader's now */
	else if (r == 0 && done != NULL) {
		done->token = q->token;
		done->fresh = q->fresh;
		done->st = q->st;
		done->pending = q->pending;
	}
out:
	lb__req_free(q);
	return r;
}

/* lb__broker_acquire: see broker.h. */
int
lb__broker_acquire(const struct lb__target *t, double timeout,
    double deadline, double fallback, uint64_t *token, int *fresh,
    struct lockfs_err *err)
{
	struct req done;
	int        r;

	r = broker_call(LBP_MSG_ACQUIRE, t, LB_EFAILED, timeout, deadline,
	    fallback, &done, err);
	if (r == 0 && token != NULL)
		*token = done.token;
	if (r == 0 && fresh != NULL)
		*fresh = done.fresh;
	return r;
}

/* lb__broker_acquire_start: see broker.h. */
int
lb__broker_acquire_start(const struct lb__target *t, double timeout,
    double deadline, double fallback, struct lb__note *note,
    struct req **qp, struct lockfs_err *err)
{
	struct req *q = NULL;
	int         r = LB__FALLBACK;

	*qp = NULL;
	/* Not worth a request: AUTO, and no connection at all. */
	if (!isinf(fallback) && lb__conn_idle())
		goto out;
	if ((q = req_new(LBP_MSG_ACQUIRE, t, LB_EFAILED)) == NULL) {
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "request for %s",
		    t->path);
		goto out;
	}
	q->timeout = timeout;
	q->deadline = timeout > 0 && !isinf(timeout) ? deadline : INFINITY;
	q->note = note;
	lb__conn_lock();
	r = req_start(q, fallback, err);
	lb__conn_unlock();
	if (r == LB__INPROGRESS) {
		*qp = q;
		q = NULL;       /* the caller's to look at */
	}
out:
	lb__req_free(q);
	return r;
}

/* lb__broker_acquire_look: see broker.h. */
int
lb__broker_acquire_look(struct req **qp, double fallback, int block,
    double *until, uint64_t *token, int *fresh, int *culprit,
    struct lockfs_err *err)
{
	struct req *q = *qp;
	int         r, gone = 0;

	lb__conn_lock();
	r = block ? req_wait(q, fallback, &gone, err) :
	    req_look(q, fallback, until, &gone, err);
	if (r != LB__INPROGRESS && !gone)
		q->note = NULL;
	lb__conn_unlock();
	if (r == LB__INPROGRESS)
		goto out;
	if (r == 0) {
		*token = q->token;
		*fresh = q->fresh;
	}
	if (culprit != NULL)
		*culprit = !gone && r < 0 && q->culprit;
	if (!gone)
		lb__req_free(q);
	*qp = NULL;
out:
	return r;
}

/* lb__broker_acquire_drop: see broker.h.  A request sent is left to the
 * reader as one the daemon did not answer in time is (req_abandon),
 * which releases a late grant. */
int
lb__broker_acquire_drop(struct req **qp, int *fresh)
{
	struct lockfs_err ignored;
	struct req       *q = *qp;
	int               granted = 0;

	lb__conn_lock();
	q->note = NULL;
	if (q->state == REQ_SENT) {
		q->wait = NULL;
		(void)req_abandon(q, q->out, &ignored);
		q = NULL;       /* the reader's now */
	} else if (q->state == REQ_UNSENT) {
		TAILQ_REMOVE(&lb__conn.pending, q, entry);
		q->state = REQ_DONE;
		lb__suspect_add(q);
	} else if (q->result == 0) {
		granted = 1;
		*fresh = q->fresh;
	}
	lb__conn_unlock();
	lb__req_free(q);
	*qp = NULL;
	return granted;
}

/* lb__broker_upgrade: see broker.h. */
int
lb__broker_upgrade(const struct lb__target *t, double timeout,
    double deadline, double fallback, struct lockfs_err *err)
{
	return broker_call(LBP_MSG_UPGRADE, t, LB_EFAILED, timeout, deadline,
	    fallback, NULL, err);
}

/* lb__broker_downgrade: see broker.h. */
int
lb__broker_downgrade(const struct lb__target *t, double fallback,
    struct lockfs_err *err)
{
	return broker_call(LBP_MSG_DOWNGRADE, t, LB_EFAILED, 0, 0, fallback,
	    NULL, err);
}

/* lb__broker_release: see broker.h. */
int
lb__broker_release(const struct lb__target *t, double fallback,
    struct lockfs_err *err)
{
	struct req done;
	int        r;

	r = broker_call(LBP_MSG_RELEASE, t, LB_EUNLOCK, 0, 0, fallback,
	    &done, err);
	return r == 0 && done.pending ? LB__RELEASE_PENDING : r;
}

/* lb__broker_status: see broker.h. */
int
lb__broker_status(const struct lb__target *t, double fallback,
    struct lb__status *st, struct lockfs_err *err)
{
	struct req done;
	int        r;

	r = broker_call(LBP_MSG_STATUS, t, LB_ERROR, 0, 0, fallback, &done,
	    err);
	if (r == 0)
		*st = done.st;
	return r;
}

/* lb__broker_break: see broker.h. */
int
lb__broker_break(const struct lb__target *t, double fallback,
    struct lockfs_err *err)
{
	return broker_call(LBP_MSG_BREAK, t, LB_EUNLOCK, 0, 0, fallback,
	    NULL, err);
}
