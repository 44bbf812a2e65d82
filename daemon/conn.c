/*
 * conn.c: client connections: accepting them (with their kernel-verified
 * credentials), reading lines into a bounded buffer, handing each to
 * request.c, queueing replies, and closing, which releases every hold and
 * cancels every wait of the connection.
 *
 * A connection's states:
 *
 *            HELLO ok
 *     NEW ------------> READY
 *      |                  |
 *      | EOF, read error, | EOF, read error, write error,
 *      | line too long    | line too long, daemon stopping
 *      v                  v
 *     CLOSING  <----------+   (holds released, waits canceled, handle
 *                              closed, freed in the close callback)
 *
 * EOF or a write error with complete requests still buffered: the client
 * has gone (eof), but what it sent before is handled first, in its turns,
 * its replies dropped (conn_gone); then CLOSING.
 *
 * Reading: into c->in, at most LBP_LINE_MAX bytes; a full buffer without a
 * newline is a line too long: an ERR is written and the connection closed,
 * since the next line's start cannot be found.  Back-pressure: replies
 * collect in c->out and go to libuv once per loop iteration (after the
 * state database has committed what they announce), one write at a time:
 * while a write is in flight, replies gather in c->out and follow in one
 * write once it is done, so that many small replies never pin a buffer
 * each.  The output limit counts the memory held for a connection's
 * replies (c->out's capacity, the buffer of the write in flight, cut to
 * size, and its request), not the bytes in them; while more than the
 * limit is held for a client that does not read, the daemon stops reading
 * from it.  Fairness: one connection's requests are handled
 * LBD_LINES_PER_TURN at most per loop iteration, and one user's for the
 * turn_us setting at most (over all its connections: once that is spent,
 * none of them has another request handled; one request at least); then
 * the connection is throttled (not read) until the iteration ends, so
 * that a user who pipelines thousands of requests, over one connection
 * or many, delays the others by one turn, not by all of its requests (nor
 * by one request per connection).  The connections a turn skipped go
 * first in the next.  The releases of closed connections' holds take
 * turn_us per iteration too, in turns with those of exited processes
 * and of orphans whose grace is over (ending.c; 50 microseconds by
 * default, which keeps other users' waits within about 3 times idle): a
 * request that makes or removes files takes tens to hundreds of
 * microseconds of the kernel's time, and another user's request that
 * comes in meanwhile waits for the rest of the turn in progress.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "ending.h"
#include "hold.h"
#include "list.h"
#include "lograte.h"
#include "log.h"
#include "loop.h"
#include "os.h"
#include "reconcile.h"
#include "reply.h"
#include "reqids.h"
#include "request.h"
#include "subuids.h"
#include "swap.h"
#include "wait.h"

#define LBD_LINES_PER_TURN 64
#define LBD_OUT_STEP       4096         /* c->out's first size, and its
                                           least growth */

/* A write in flight: the request and the bytes it owns. */
struct conn_write {
	uv_write_t req;
	char      *buf;
	size_t     held;        /* its part of c->inflight */
};

static void conn_read_start(struct lbd_conn *c);

/* lbd_conn_output_held: the memory held for c's replies: c->out's
 * capacity, and what the write in flight holds (its buffer and request).
 * What output_per_conn bounds. */
size_t
lbd_conn_output_held(struct lbd_conn *c)
{
	return c->outcap + c->inflight;
}

/* A turn's time, in ns (the turn_us setting). */
static uint64_t
turn_budget_ns(struct lbd *d)
{
	return (uint64_t)d->cfg.limits.turn_us * 1000;
}

/* Puts c in this iteration's flush (once). */
static void
conn_flush_later(struct lbd_conn *c)
{
	if (!c->flushing) {
		TAILQ_INSERT_TAIL(&c->d->flush, c, flush_entry);
		c->flushing = 1;
		lbd_want_flush(c->d);
	}
}

/* lbd_conn_flush_first: c's replies go out first in this iteration's
 * flush (a grant: its waiter is waiting; the others' replies can wait
 * the few microseconds of a write). */
void
lbd_conn_flush_first(struct lbd_conn *c)
{
	if (!c->flushing)
		return;
	TAILQ_REMOVE(&c->d->flush, c, flush_entry);
	TAILQ_INSERT_HEAD(&c->d->flush, c, flush_entry);
}

/* The capacity c->out grows to from cap to hold need bytes: by an eighth
 * (LBD_OUT_STEP at the least) at a time, so that what it holds beyond
 * its bytes stays a small part of output_per_conn. */
static size_t
out_capacity(size_t cap, size_t need)
{
	if (cap == 0)
		cap = LBD_OUT_STEP;
	while (cap < need)
		cap += cap / 8 > LBD_OUT_STEP ? cap / 8 : LBD_OUT_STEP;
	return cap;
}

/* Frees c and what it owns (its handle closed, its holds released). */
static void
conn_destroy(struct lbd_conn *c)
{
	lbd_reqids_free(c);
	lbd_creds_unref(c->creds);
	free(c->out);
	free(c);
}

/* Frees a connection once libuv is done with its handle. */
static void
conn_free(uv_handle_t *h)
{
	struct lbd_conn *c = (struct lbd_conn *)h;

	if (c->releasing) {
		c->handle_closed = 1;   /* conn_end_some frees it */
		return;
	}
	conn_destroy(c);
}

/*
 * lbd_uid_get: what user uid has in the daemon (see struct lbd_uid_conns),
 * counted in its owner's when uid is another user's subordinate uid
 * (subuids.h), made when it has nothing yet; NULL when no memory is left.  Give it back
 * with lbd_uid_put after taking a count of it down.
 */
struct lbd_uid_conns *
lbd_uid_get(struct lbd *d, uid_t uid)
{
	struct lbd_uid_conns *u;

	uid = lbd_subuids_owner(d, uid);        /* its owner's budgets */
	LIST_FOREACH(u, &d->uids, entry)
		if (u->uid == uid)
			return u;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->uid = uid;
	LIST_INSERT_HEAD(&d->uids, u, entry);
	return u;
}

/* lbd_uid_put: frees u when the user has nothing left in the daemon. */
void
lbd_uid_put(struct lbd_uid_conns *u)
{
	if (u->n == 0 && u->nlocks == 0 && u->nwatches == 0 &&
	    u->npidfds == 0) {
		LIST_REMOVE(u, entry);
		free(u);
	}
}

/* Counts c among its user's open connections (c->uid_conns; left NULL
 * when no memory is left: the connection is then refused). */
static void
uid_count(struct lbd_conn *c)
{
	struct lbd_uid_conns *u;

	if ((u = lbd_uid_get(c->d, c->uid)) == NULL)
		return;
	u->n++;
	c->uid_conns = u;
}

/* Takes c out of its user's count. */
static void
uid_uncount(struct lbd_conn *c)
{
	struct lbd_uid_conns *u = c->uid_conns;

	if (u == NULL)
		return;
	c->uid_conns = NULL;
	u->n--;
	lbd_uid_put(u);
}

/* lbd_conns_of_uid: how many open connections c's user has (c among
 * them): kept per user, not counted, so that accepting stays cheap with
 * thousands open. */
unsigned
lbd_conns_of_uid(struct lbd_conn *c)
{
	return c->uid_conns != NULL ? c->uid_conns->n : 0;
}

/* c's turn in the holds' end (ending.c): ends c's holds until none is
 * left (then frees c, if libuv is done with its handle: 0) or deadline
 * passes (1). */
static int
conn_end_some(struct lbd_ending *e, uint64_t deadline)
{
	struct lbd_conn *c = (struct lbd_conn *)((char *)e -
	    offsetof(struct lbd_conn, ending));

	if (lbd_conn_release_some(c, deadline))
		return 1;
	c->releasing = 0;
	if (c->handle_closed)
		conn_destroy(c);
	return 0;
}

/*
 * lbd_conn_close: moves c to CLOSING: cancels its waits, has its holds
 * released (handed to waiters) a turn at a time (ending.c), c holding
 * them until then, and closes the handle (pending output is
 * dropped: the client is gone or has broken the protocol).  c is freed
 * once libuv is done with it and its holds are released.  Idempotent.
 */
void
lbd_conn_close(struct lbd_conn *c)
{
	struct lbd *d = c->d;

	if (c->state == LBD_CONN_CLOSING)
		return;
	c->state = LBD_CONN_CLOSING;
	lbd_conn_drop_all(c, d->stopping);
	if (!LIST_EMPTY(&c->holds)) {
		c->releasing = 1;
		c->ending.end_some = conn_end_some;
		lbd_ending_add(d, &c->ending);
	}
	if (c->creds != NULL)
		lbd_creds_unlist(c->creds);     /* lent to no record now */
	lbd_acks_forget(c);
	lbd_swap_answers_forget(c);
	lbd_list_forget(c);
	lbd_cohort_status_forget(c);
	TAILQ_REMOVE(&d->conns, c, entry);
	d->nconns--;
	uid_uncount(c);
	if (c->flushing) {
		TAILQ_REMOVE(&d->flush, c, flush_entry);
		c->flushing = 0;
	}
	if (c->throttled) {
		TAILQ_REMOVE(&d->throttled, c, throttle_entry);
		c->throttled = 0;
	}
	log_debug("pid %ld uid %ld: closed", (long)c->pid, (long)c->uid);
	uv_close((uv_handle_t *)&c->pipe, conn_free);
}

/* Writes a last line straight away, if the socket takes it, before a
 * close. */
static void
conn_last_words(struct lbd_conn *c, const struct lbp_out *o)
{
	uv_buf_t buf = uv_buf_init((char *)o->buf, (unsigned int)o->len);

	uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
}

/* lbd_conn_send: queues one formatted line for c (dropped when c is
 * closing).  Never blocks; the line goes out at the end of the loop
 * iteration. */
void
lbd_conn_send(struct lbd_conn *c, const struct lbp_out *o)
{
	size_t cap;
	char  *p;

	if (c->state == LBD_CONN_CLOSING || c->eof || o->overflow)
		return;
	if (c->outlen + o->len > c->outcap) {
		cap = out_capacity(c->outcap, c->outlen + o->len);
		if ((p = realloc(c->out, cap)) == NULL) {
			log_err("pid %ld: out of memory for replies; closing",
			    (long)c->pid);
			lbd_conn_close(c);
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, o->buf, o->len);
	c->outlen += o->len;
	conn_flush_later(c);
}

/* Stops libuv reading c's socket (back-pressure, end of input). */
static void
conn_read_stop(struct lbd_conn *c)
{
	if (c->uv_reading)
		uv_read_stop((uv_stream_t *)&c->pipe);
	c->uv_reading = 0;
	c->reading = 0;
}

/*
 * c's client has gone (end of input, or a write failed: it closed its
 * socket), with why for the log: closed now, unless requests it sent
 * before are still buffered, which are handled first, in their turns
 * (a kept hold asked for just before closing is kept); their replies are
 * dropped.  conn_read_start closes it once they are handled.
 */
static void
conn_gone(struct lbd_conn *c, const char *why)
{
	log_debug("pid %ld: %s", (long)c->pid, why);
	if (c->eof == 0 && memchr(c->in, '\n', c->inlen) == NULL) {
		lbd_conn_close(c);
		return;
	}
	c->eof = 1;
	free(c->out);
	c->out = NULL;
	c->outlen = c->outcap = 0;
	conn_read_stop(c);
	if (!c->throttled) {
		c->throttled = 1;
		TAILQ_INSERT_TAIL(&c->d->throttled, c, throttle_entry);
		lbd_want_flush(c->d);   /* the iteration must end */
	}
}

/* Called when a write has finished: frees it; on error closes the
 * connection; else the replies gathered meanwhile go in this iteration's
 * flush, and back-pressure lifts once what is held has dropped to half
 * the limit. */
static void
conn_written(uv_write_t *req, int status)
{
	struct conn_write *w = (struct conn_write *)req;
	struct lbd_conn   *c = (struct lbd_conn *)req->handle;

	c->inflight -= w->held;
	free(w->buf);
	free(w);
	if (status == UV_ECANCELED || c->state == LBD_CONN_CLOSING)
		return;
	if (status < 0) {
		conn_gone(c, uv_strerror(status));
		return;
	}
	if (c->outlen > 0)
		conn_flush_later(c);
	if (!c->reading && !c->throttled &&
	    lbd_conn_output_held(c) <= c->d->cfg.limits.output_per_conn / 2)
		conn_read_start(c);
}

/* c's replies have all gone to the socket: if it was paused for not
 * reading them, it is read again at the end of this iteration
 * (lbd_conns_resume), not here: its requests' replies wait for the next
 * commit.  (While a write is in flight, conn_written resumes it.) */
static void
conn_drained(struct lbd_conn *c)
{
	if (c->reading || c->throttled || c->state == LBD_CONN_CLOSING)
		return;
	c->throttled = 1;
	TAILQ_INSERT_TAIL(&c->d->throttled, c, throttle_entry);
}

/* Hands c's queued replies to the socket, unless a write is in flight
 * (they follow it, conn_written; not when the daemon stops: its last
 * replies must be queued before the connection is shut down): at once as
 * far as it takes them (uv_try_write: no write request, no change to the
 * poll set), the rest, in a buffer cut to their size, to libuv as one
 * write. */
static void
conn_flush(struct lbd_conn *c)
{
	struct conn_write *w;
	uv_buf_t           buf;
	char              *p;
	int                r;

	if (c->outlen == 0 || (c->inflight != 0 && !c->d->stopping) ||
	    c->state == LBD_CONN_CLOSING)
		return;
	buf = uv_buf_init(c->out, (unsigned int)c->outlen);
	r = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
	if (r == (int)c->outlen) {
		free(c->out);
		c->out = NULL;
		c->outlen = c->outcap = 0;
		conn_drained(c);
		return;
	}
	if (r < 0 && r != UV_EAGAIN) {
		conn_gone(c, uv_strerror(r));
		return;
	}
	if (r > 0) {
		memmove(c->out, c->out + r, c->outlen - (size_t)r);
		c->outlen -= (size_t)r;
	}
	if (c->outcap > c->outlen && (p = realloc(c->out, c->outlen)) != NULL) {
		c->out = p;
		c->outcap = c->outlen;
	}
	if ((w = malloc(sizeof(*w))) == NULL) {
		lbd_conn_close(c);
		return;
	}
	w->buf = c->out;
	buf = uv_buf_init(c->out, (unsigned int)c->outlen);
	w->held = c->outcap + sizeof(*w);
	c->inflight += w->held;
	c->out = NULL;
	c->outlen = c->outcap = 0;
	if ((r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1,
	    conn_written)) != 0) {
		c->inflight -= w->held;
		free(w->buf);
		free(w);
		conn_gone(c, uv_strerror(r));
	}
}

/* lbd_conn_flush_all: hands every connection's queued replies to libuv;
 * called once per loop iteration, after the state database commits. */
void
lbd_conn_flush_all(struct lbd *d)
{
	struct lbd_conn *c;

	while ((c = TAILQ_FIRST(&d->flush)) != NULL) {
		TAILQ_REMOVE(&d->flush, c, flush_entry);
		c->flushing = 0;
		conn_flush(c);
	}
}

/*
 * lbd_conns_resume: a loop iteration ends: the connections throttled in
 * it get their next turn (buffered requests first, then reading), unless
 * back-pressure holds them.
 */
void
lbd_conns_resume(struct lbd *d)
{
	struct lbd_conns turn = TAILQ_HEAD_INITIALIZER(turn);
	struct lbd_conns first = TAILQ_HEAD_INITIALIZER(first);
	struct lbd_conn *c;

	d->turn++;
	/* Those skipped in the last turn first, so that one connection of a
	 * user cannot take all of its user's turns. */
	while ((c = TAILQ_FIRST(&d->throttled)) != NULL) {
		TAILQ_REMOVE(&d->throttled, c, throttle_entry);
		if (c->skipped)
			TAILQ_INSERT_TAIL(&first, c, throttle_entry);
		else
			TAILQ_INSERT_TAIL(&turn, c, throttle_entry);
	}
	TAILQ_CONCAT(&first, &turn, throttle_entry);
	while ((c = TAILQ_FIRST(&first)) != NULL) {
		TAILQ_REMOVE(&first, c, throttle_entry);
		c->throttled = 0;
		if (lbd_conn_output_held(c) <= d->cfg.limits.output_per_conn)
			conn_read_start(c);
	}
	if (d->accept_waiting && d->listening && !d->stopping)
		lbd_conns_accept(d);
}

/*
 * lbd_conns_accept: see conn.h.  Accepting takes about turn_us per loop
 * iteration (one connection at least): libuv accepts, in one go, every
 * connection waiting on the listener, and a user who connects and closes
 * in a loop (each refused at conns_per_uid, say) keeps some waiting for
 * as long as it likes, which stalled every open connection's requests
 * for seconds.  Once the turn is spent, the one libuv offers is left to
 * it (not taken with uv_accept, so libuv stops watching the listener)
 * and taken at the iteration's end (lbd_conns_resume), which watches the
 * listener again.
 */
void
lbd_conns_accept(struct lbd *d)
{
	uint64_t t0;

	if (d->accept_turn != d->turn) {
		d->accept_turn = d->turn;
		d->accept_ns = 0;
	}
	if (d->accept_ns >= turn_budget_ns(d) && d->accept_ns > 0) {
		d->accept_waiting = 1;
		lbd_want_flush(d);      /* the iteration must end */
		return;
	}
	d->accept_waiting = 0;
	t0 = uv_hrtime();
	lbd_conn_accept(d);
	d->accept_ns += uv_hrtime() - t0;
	if (d->accept_ns == 0)
		d->accept_ns = 1;       /* one at least, even with turn_us 0 */
}

/* Handles one complete line (without its '\n'). */
static void
conn_line(struct lbd_conn *c, const char *line, size_t len)
{
	struct lbp_msg *m;
	const char     *why = NULL;
	enum lbp_error  e;
	struct lbp_out  o;

	if ((m = malloc(sizeof(*m))) == NULL) {
		lbd_conn_close(c);
		return;
	}
	if ((e = lbp_parse(line, len, m, &why)) != LBP_OK) {
		log_debug("pid %ld: %s: %s", (long)c->pid, lbp_error_name(e),
		    why);
		lbp_error_reply(&o, m->has_id, m->id, e, why);
		lbd_conn_send(c, &o);
	} else
		lbd_request(c, m);
	free(m);
}

/* Stops reading c until the iteration ends: its turn, or its user's, is
 * over; skipped: it had none of it, and goes first in the next.  libuv
 * keeps watching the socket (conn_alloc gives it no room meanwhile, so
 * nothing is read): stopping and starting it each turn would cost two
 * epoll_ctl calls per request, one failing. */
static void
conn_throttle(struct lbd_conn *c, int skipped)
{
	c->reading = 0;
	c->throttled = 1;
	c->skipped = skipped;
	TAILQ_INSERT_TAIL(&c->d->throttled, c, throttle_entry);
	lbd_want_flush(c->d);   /* the iteration must end */
}

/* Handles every complete line in c->in, unless back-pressure holds, the
 * turn is over or the connection closes; keeps the rest for the next
 * read. */
static void
conn_lines(struct lbd_conn *c)
{
	struct lbd_uid_conns *u = c->uid_conns;
	struct lbp_out        o;
	char                 *nl;
	size_t                off = 0, len;
	uint64_t              t0;

	while (c->state != LBD_CONN_CLOSING && c->reading &&
	    (nl = memchr(c->in + off, '\n', c->inlen - off)) != NULL) {
		/* Its user's turn is over (taken by its other connections):
		 * not even one line more. */
		if (u != NULL && u->turn == c->d->turn &&
		    u->turn_ns >= turn_budget_ns(c->d)) {
			conn_throttle(c, off == 0);
			break;
		}
		len = (size_t)(nl - (c->in + off));
		t0 = uv_hrtime();
		conn_line(c, c->in + off, len);
		off += len + 1;
		if (c->state == LBD_CONN_CLOSING)
			break;
		if (lbd_conn_output_held(c) >
		    c->d->cfg.limits.output_per_conn) {
			log_debug("pid %ld: not reading its replies; pausing",
			    (long)c->pid);
			conn_read_stop(c);
		}
		if (c->turn != c->d->turn) {
			c->turn = c->d->turn;
			c->turn_lines = 0;
		}
		if (u != NULL && u->turn != c->d->turn) {
			u->turn = c->d->turn;
			u->turn_ns = 0;
		}
		if (u != NULL)
			u->turn_ns += uv_hrtime() - t0;
		if ((++c->turn_lines >= LBD_LINES_PER_TURN || (u != NULL &&
		    u->turn_ns >= turn_budget_ns(c->d))) && c->reading)
			conn_throttle(c, 0);
	}
	if (c->state == LBD_CONN_CLOSING)
		return;
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	if (c->inlen == sizeof(c->in) &&
	    memchr(c->in, '\n', c->inlen) == NULL) {
		lbp_error_reply(&o, 0, 0, LBP_ELIMIT,
		    "line longer than 8192 bytes; closing");
		conn_last_words(c, &o);
		log_info("pid %ld uid %ld: line too long; closed",
		    (long)c->pid, (long)c->uid);
		lbd_conn_close(c);
	}
}

/* Gives libuv the free part of c->in to read into; none while c is
 * throttled (libuv then reads nothing: conn_read gets UV_ENOBUFS). */
static void
conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct lbd_conn *c = (struct lbd_conn *)h;

	(void)suggested;
	if (!c->reading)
		*buf = uv_buf_init(NULL, 0);
	else
		*buf = uv_buf_init(c->in + c->inlen,
		    (unsigned int)(sizeof(c->in) - c->inlen));
}

/* Data, EOF, or an error from the client: three different cases. */
static void
conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct lbd_conn *c = (struct lbd_conn *)s;

	(void)buf;
	if (nread > 0) {
		c->inlen += (size_t)nread;
		conn_lines(c);
	} else if (nread == UV_ENOBUFS && !c->reading) {
		/* Throttled: read at its next turn. */
	} else if (nread == UV_EOF) {
		conn_gone(c, "end of input");
	} else if (nread < 0) {
		log_debug("pid %ld: read: %s", (long)c->pid,
		    uv_strerror((int)nread));
		lbd_conn_close(c);
	}
	/* nread == 0: nothing to read after all (EAGAIN). */
}

/* Starts (or resumes) reading; first handles lines already buffered. */
static void
conn_read_start(struct lbd_conn *c)
{
	int r;

	c->reading = 1;
	conn_lines(c);
	if (c->state == LBD_CONN_CLOSING || !c->reading)
		return;
	if (c->eof) {           /* every request it sent is handled */
		lbd_conn_close(c);
		return;
	}
	if (c->uv_reading)
		return;
	if ((r = uv_read_start((uv_stream_t *)&c->pipe, conn_alloc,
	    conn_read)) != 0) {
		log_warn("pid %ld: read: %s", (long)c->pid, uv_strerror(r));
		lbd_conn_close(c);
		return;
	}
	c->uv_reading = 1;
}

/* Refuses c, just accepted, whose credentials cannot be had (why: it
 * cannot be acted as, creds.c): ERR EPERM with why, logged, closed. */
static void
conn_refuse_user(struct lbd_conn *c, const char *why)
{
	struct lbp_out o;

	lbp_error_reply(&o, 0, 0, LBP_EPERM, why);
	conn_last_words(c, &o);
	if (lbd_lograte_take(&c->d->refusals,
	    (long)lbd_subuids_owner(c->d, c->uid)))
		log_warn("pid %ld refused: %s", (long)c->pid, why);
	TAILQ_INSERT_TAIL(&c->d->conns, c, entry);
	c->d->nconns++;
	lbd_conn_close(c);
}

/*
 * lbd_conn_accept: accepts one pending connection on d's listener, reads
 * its peer credentials (groups included: see creds.c; on Windows its
 * token, or it is refused: ERR EPERM, then closed), and starts
 * reading, or refuses it (ERR ELIMIT, then closed) when a connection
 * limit is reached.
 */
void
lbd_conn_accept(struct lbd *d)
{
	struct lbd_conn *c;
	struct lbp_out   o;
	uv_os_fd_t       fd;
	const char      *limit = NULL;
	char             why[512];

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_err("out of memory for a connection");
		return;
	}
	c->d = d;
	c->state = LBD_CONN_NEW;
	LIST_INIT(&c->holds);
	LIST_INIT(&c->waits);
	LIST_INIT(&c->sets);
	LIST_INIT(&c->releases);
	uv_pipe_init(d->loop, &c->pipe, 0);
	if (uv_accept((uv_stream_t *)&d->listener, (uv_stream_t *)&c->pipe) !=
	    0 || uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
	    lbd_os_peer_ids(fd, &c->pid, &c->uid, &c->gid) == -1) {
		if (lbd_lograte_take(&d->refusals, LBD_LOGRATE_NOBODY_KNOWN))
			log_warn("cannot accept a connection: %s",
			    strerror(errno));
		uv_close((uv_handle_t *)&c->pipe, conn_free);
		return;
	}
	if ((c->creds = lbd_creds_of_peer(d, fd, c->pid, &c->uid, &c->gid,
	    why, sizeof(why))) == NULL && errno != ENOMEM) {
		conn_refuse_user(c, why);
		return;
	}
	c->owner_known = lockfs_owner_of_pid(&c->owner, c->pid, 0) == 0;
	TAILQ_INSERT_TAIL(&d->conns, c, entry);
	d->nconns++;
	lbd_subuids_refresh(d);
	uid_count(c);
	if (d->stopping)
		limit = "the daemon is stopping";
	else if (d->nconns > d->cfg.limits.conns)
		limit = "conns: too many connections";
	else if ((uint64_t)d->nconns + d->npidfds > d->fd_conns)
		limit = "conns: too many connections for the daemon's file "
		    "descriptor limit";
	else if (c->uid_conns == NULL || c->creds == NULL)
		limit = "out of memory";
	else if (lbd_conns_of_uid(c) > d->cfg.limits.conns_per_uid)
		limit = "conns_per_uid: too many connections of this user";
	if (limit != NULL) {
		lbp_error_reply(&o, 0, 0, d->stopping ? LBP_ESHUTDOWN :
		    LBP_ELIMIT, limit);
		conn_last_words(c, &o);
		if (lbd_lograte_take(&d->refusals,
		    (long)lbd_subuids_owner(d, c->uid)))
			log_info("pid %ld uid %ld refused: %s", (long)c->pid,
			    (long)c->uid, limit);
		lbd_conn_close(c);
		return;
	}
	log_debug("pid %ld uid %ld gid %ld: connected", (long)c->pid,
	    (long)c->uid, (long)c->gid);
	lbd_orphans_user_here(d, c->uid);      /* its token: see reconcile.h */
	conn_read_start(c);
}
