/*
 * etcdlease.c: the daemon's one etcd lease (etcdlease.h).
 *
 *   new, with the previous run's lease id: ADOPTING (a keepalive of it,
 *   a tick at a time, until etcd answers or its TTL has passed, or the
 *   deadline lbd_etcd_lease_adopt_by set): alive, LIVE as below; gone
 *   (told: GONE), or no answer in time: GRANTING
 *
 *            new
 *             |
 *             v       reply: a lease                tick (TTL/3):
 *        +-> GRANTING ------------------> LIVE <--- keepalive; its reply
 *        |    |   ^                        |  |     moves the deadline to
 *        |    +---+ no lease: TROUBLE,     |  |     its send time + TTL
 *        |      the next endpoint, again   |  |     (no reply: TROUBLE,
 *        |      at the next tick           |  |     the next endpoint)
 *        |                                 |  |
 *        |     the deadline (less a margin) |  | a reply: etcd has no
 *        |     passes: LOST <---------------+  | such lease: LOST
 *        |                 \                   |
 *        |                  v                  v
 *        +------------ REVOKING <--------------+
 *          etcd answered   (the lost lease revoked, a tick at a time,
 *          (revoked, or    until etcd answers: etcd restores a lease
 *          not found)      with a fresh TTL after its restart, and a
 *                          dead holder's keys would keep their locks)
 *
 *   any state --close--> CLOSING (a live or lost lease revoked, one
 *                        request's time at most) --> done, freed
 *
 * One request at most is in flight (l->req), and a tick finds it gone:
 * each request's timeout is nine tenths of the tick's interval.  Events go to the owner
 * last in each handler, from the loop; the lease is freed only from a
 * loop callback of its own after close, so the owner may close it from
 * its callback.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi.h"
#include "etcdlease.h"

enum lease_state { ADOPTING, GRANTING, LIVE, REVOKING, CLOSING };

struct lbd_etcd_lease {
	uv_loop_t            *loop;
	struct lbd_etcd_http *h;
	char                **endpoints;
	unsigned              n, cur;
	enum lease_state      state;
	int64_t               ttl_asked;      /* seconds */
	int64_t               ttl;            /* granted, seconds */
	int64_t               id;             /* live lease, or 0 */
	int64_t               revoke_id;      /* a lost lease to revoke */
	uint64_t              deadline;       /* ns, uv_hrtime */
	uint64_t              lost_deadline;  /* the lost lease's, ns */
	uint64_t              keepalives;
	uint64_t              sent;           /* the request's send time */
	uint64_t              adopt_until;    /* ADOPTING: given up then, ns */
	struct lbd_etcd_req  *req;
	uv_timer_t           *tick, *lost;
	lbd_etcd_lease_cb    *cb;
	void                 *arg;
	void                (*done)(void *);
	void                 *done_arg;
};

static void start_grant(struct lbd_etcd_lease *l);
static void start_adopt(struct lbd_etcd_lease *l);
static void start_revoke(struct lbd_etcd_lease *l, int64_t id);
static void on_lost_timer(uv_timer_t *t);

static void timer_closed(uv_handle_t *t) { free(t); }

/* The interval between ticks, and each request's timeout (ms). */
static uint64_t
interval_ms(const struct lbd_etcd_lease *l)
{
	int64_t ttl = l->ttl > 0 ? l->ttl : l->ttl_asked;
	uint64_t ms = (uint64_t)ttl * 1000 / 3;

	return ms > 0 ? ms : 1;
}

/* A failed keepalive is sent again this soon (ms; a quarter of the
 * interval when that is less), through the next endpoint, rather than at
 * the next tick: an outage shorter than the TTL must not lose the lease
 * for want of a try between two ticks. */
#define KEEPALIVE_RETRY_MS 500

static void on_tick(uv_timer_t *t);

/* The tick again soon, then at the interval: a failed keepalive's. */
static void
tick_soon(struct lbd_etcd_lease *l)
{
	uint64_t ms = interval_ms(l) / 4;

	if (ms > KEEPALIVE_RETRY_MS)
		ms = KEEPALIVE_RETRY_MS;
	uv_timer_start(l->tick, on_tick, ms > 0 ? ms : 1, interval_ms(l));
}

/* Tells the owner, unless the lease is closing. */
static void
emit(struct lbd_etcd_lease *l, enum lbd_etcd_lease_event ev, int64_t id,
    const char *why)
{
	if (l->state != CLOSING && l->cb != NULL)
		l->cb(l->arg, ev, id, why);
}

/* The next endpoint, after one that did not answer as etcd does. */
static void
rotate(struct lbd_etcd_lease *l)
{
	l->cur = (l->cur + 1) % l->n;
}

/* Posts body to the current endpoint's path; NULL with why filled. */
static struct lbd_etcd_req *
post(struct lbd_etcd_lease *l, const char *path, char *body,
    lbd_etcd_http_cb *cb, char *why, size_t size)
{
	struct lbd_etcd_req *req = NULL;
	uint64_t ms;
	char url[1024];

	if (body == NULL) {
		snprintf(why, size, "out of memory");
		return NULL;
	}
	snprintf(url, sizeof(url), "%s%s", l->endpoints[l->cur], path);
	l->sent = uv_hrtime();
	/* Ended before the next tick, which then finds it gone; the stop's
	 * revoke, within LBD_ETCD_STOP_WAIT_MS whatever the TTL. */
	ms = interval_ms(l) - interval_ms(l) / 10;
	if (l->state == CLOSING && ms > LBD_ETCD_STOP_WAIT_MS)
		ms = LBD_ETCD_STOP_WAIT_MS;
	req = lbd_etcd_http_post(l->h, url, body, (long)ms,
	    LBD_ETCD_REPLY_MAX, cb, l, why, size);
	free(body);
	return req;
}

/* Declares the live lease lost: the owner told, its revoke begun. */
static void
lose(struct lbd_etcd_lease *l, const char *why)
{
	int64_t old = l->id;

	if (l->req != NULL) {
		lbd_etcd_http_cancel(l->req);
		l->req = NULL;
	}
	uv_timer_stop(l->lost);
	l->lost_deadline = l->deadline;
	l->id = 0;
	l->deadline = 0;
	l->revoke_id = old;
	l->state = REVOKING;
	start_revoke(l, old);
	emit(l, LBD_ETCD_LEASE_LOST, old, why);
}

/* Moves the deadline to the last acknowledged send time + TTL, and the
 * timer that declares the lease lost to a margin before it. */
static void
set_deadline(struct lbd_etcd_lease *l, uint64_t sent, int64_t ttl)
{
	uint64_t margin = LBD_ETCD_LOST_MARGIN_MS, now = uv_hrtime(), at;

	if (margin > (uint64_t)ttl * 100)
		margin = (uint64_t)ttl * 100;
	l->ttl = ttl;
	l->deadline = sent + (uint64_t)ttl * 1000000000u;
	at = l->deadline - margin * 1000000u;
	/* uv's timers count from the loop's cached time, which is never
	 * ahead of uv_hrtime: the timer expires at `at` or before. */
	uv_timer_start(l->lost, on_lost_timer,
	    at > now ? (at - now) / 1000000u : 0, 0);
}

static void
on_lost_timer(uv_timer_t *t)
{
	struct lbd_etcd_lease *l = t->data;
	char why[160];

	if (l->state != LIVE)
		return;
	snprintf(why, sizeof(why), "lease %016" PRIx64 ": no keepalive "
	    "acknowledged in time; its deadline (the last acknowledged "
	    "send + %" PRId64 " s) is near", (uint64_t)l->id, l->ttl);
	lose(l, why);
}

static void
on_grant(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd_etcd_lease *l = arg;
	int64_t id, ttl, rev;
	int code;
	char why[512], msg[600];

	l->req = NULL;
	if (!ok) {
		snprintf(msg, sizeof(msg), "lease grant at %s: %s",
		    l->endpoints[l->cur], fail);
		rotate(l);
		emit(l, LBD_ETCD_LEASE_TROUBLE, 0, msg);
		return;
	}
	if (lbd_etcd_parse_grant(status, body, len, &id, &ttl, &rev, &code,
	    why, sizeof(why)) != LBD_ETCD_OK) {
		snprintf(msg, sizeof(msg), "lease grant at %s: %s",
		    l->endpoints[l->cur], why);
		rotate(l);
		emit(l, LBD_ETCD_LEASE_TROUBLE, 0, msg);
		return;
	}
	l->id = id;
	l->state = LIVE;
	set_deadline(l, l->sent, ttl);
	/* Ticks at the granted TTL's third from now on. */
	uv_timer_set_repeat(l->tick, interval_ms(l));
	uv_timer_again(l->tick);
	emit(l, LBD_ETCD_LEASE_GRANTED, id, NULL);
}

static void
on_keepalive(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd_etcd_lease *l = arg;
	enum lbd_etcd_outcome r;
	int64_t ttl;
	int code;
	char why[512], msg[600];

	l->req = NULL;
	if (!ok) {
		snprintf(msg, sizeof(msg), "lease %016" PRIx64 " keepalive at "
		    "%s: %s", (uint64_t)l->id, l->endpoints[l->cur], fail);
		rotate(l);
		tick_soon(l);
		emit(l, LBD_ETCD_LEASE_TROUBLE, l->id, msg);
		return;
	}
	r = lbd_etcd_parse_keepalive(status, body, len, l->id, &ttl, &code,
	    why, sizeof(why));
	if (r == LBD_ETCD_OK && ttl > 0) {
		l->keepalives++;
		set_deadline(l, l->sent, ttl);
		emit(l, LBD_ETCD_LEASE_RENEWED, l->id, NULL);
		return;
	}
	if (r == LBD_ETCD_OK ||
	    (r == LBD_ETCD_ERROR && code == LBD_ETCD_NOT_FOUND)) {
		snprintf(msg, sizeof(msg), "lease %016" PRIx64 ": etcd no "
		    "longer has it (expired)", (uint64_t)l->id);
		lose(l, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "lease %016" PRIx64 " keepalive at "
	    "%s: %s", (uint64_t)l->id, l->endpoints[l->cur], why);
	if (r == LBD_ETCD_BAD)
		rotate(l);
	tick_soon(l);
	emit(l, LBD_ETCD_LEASE_TROUBLE, l->id, msg);
}

/* The previous run's lease (ADOPTING): kept alive, it is live again;
 * gone, a new one is asked for; no answer, asked again at the next tick
 * (on_tick gives up once its TTL has passed). */
static void
on_adopt(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd_etcd_lease *l = arg;
	enum lbd_etcd_outcome r;
	int64_t ttl, gone;
	int code;
	char why[512], msg[600];

	l->req = NULL;
	r = ok ? lbd_etcd_parse_keepalive(status, body, len, l->id, &ttl,
	    &code, why, sizeof(why)) : LBD_ETCD_BAD;
	if (r == LBD_ETCD_OK && ttl > 0) {
		l->state = LIVE;
		l->keepalives++;
		set_deadline(l, l->sent, ttl);
		uv_timer_set_repeat(l->tick, interval_ms(l));
		uv_timer_again(l->tick);
		emit(l, LBD_ETCD_LEASE_ADOPTED, l->id, NULL);
		return;
	}
	if (r == LBD_ETCD_OK ||
	    (r == LBD_ETCD_ERROR && code == LBD_ETCD_NOT_FOUND)) {
		gone = l->id;
		l->id = 0;
		l->state = GRANTING;
		start_grant(l);
		emit(l, LBD_ETCD_LEASE_GONE, gone, NULL);
		return;
	}
	snprintf(msg, sizeof(msg), "lease %016" PRIx64 " of the previous run: "
	    "keepalive at %s: %s", (uint64_t)l->id, l->endpoints[l->cur],
	    ok ? why : fail);
	if (r == LBD_ETCD_BAD)
		rotate(l);
	emit(l, LBD_ETCD_LEASE_TROUBLE, 0, msg);
}

/* Frees the lease once closed; its timers close through the loop. */
static void
finish(struct lbd_etcd_lease *l)
{
	unsigned i;

	if (l->done != NULL)
		l->done(l->done_arg);
	uv_close((uv_handle_t *)l->tick, timer_closed);
	uv_close((uv_handle_t *)l->lost, timer_closed);
	for (i = 0; i < l->n; i++)
		free(l->endpoints[i]);
	free(l->endpoints);
	free(l);
}

static void
on_revoke(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd_etcd_lease *l = arg;
	enum lbd_etcd_outcome r = LBD_ETCD_BAD;
	int code = 0;
	char why[512], msg[600];

	l->req = NULL;
	if (l->state == CLOSING) {
		finish(l);
		return;
	}
	if (ok)
		r = lbd_etcd_parse_revoke(status, body, len, &code, why,
		    sizeof(why));
	if (r == LBD_ETCD_OK ||
	    (r == LBD_ETCD_ERROR && code == LBD_ETCD_NOT_FOUND)) {
		l->revoke_id = 0;
		l->state = GRANTING;
		start_grant(l);
		return;
	}
	snprintf(msg, sizeof(msg), "revoke of the lost lease %016" PRIx64
	    " at %s: %s", (uint64_t)l->revoke_id, l->endpoints[l->cur],
	    ok ? why : fail);
	if (r != LBD_ETCD_ERROR)
		rotate(l);
	emit(l, LBD_ETCD_LEASE_TROUBLE, 0, msg);
}

/* Starts a grant; a failure to start is retried at the next tick. */
static void
start_grant(struct lbd_etcd_lease *l)
{
	char why[256];

	l->ttl = 0;
	uv_timer_set_repeat(l->tick, interval_ms(l));
	uv_timer_again(l->tick);
	l->req = post(l, "/v3/lease/grant", lbd_etcd_body_grant(l->ttl_asked),
	    on_grant, why, sizeof(why));
}

/* Starts a keepalive of the previous run's lease (ADOPTING); a failure
 * to start is retried at the next tick. */
static void
start_adopt(struct lbd_etcd_lease *l)
{
	char why[256];

	l->req = post(l, "/v3/lease/keepalive", lbd_etcd_body_lease(l->id),
	    on_adopt, why, sizeof(why));
}

/* Starts a revoke of id; a failure to start is retried at the next
 * tick. */
static void
start_revoke(struct lbd_etcd_lease *l, int64_t id)
{
	char why[256];

	l->req = post(l, "/v3/lease/revoke", lbd_etcd_body_lease(id),
	    on_revoke, why, sizeof(why));
}

static void
on_tick(uv_timer_t *t)
{
	struct lbd_etcd_lease *l = t->data;
	char why[256];

	if (l->req != NULL)
		return;
	switch (l->state) {
	case ADOPTING:
		if (uv_hrtime() < l->adopt_until) {
			start_adopt(l);
			break;
		}
		l->id = 0;      /* expired by now, whatever etcd says */
		l->state = GRANTING;
		/* FALLTHROUGH */
	case GRANTING:
		start_grant(l);
		break;
	case LIVE:
		l->req = post(l, "/v3/lease/keepalive",
		    lbd_etcd_body_lease(l->id), on_keepalive, why,
		    sizeof(why));
		break;
	case REVOKING:
		start_revoke(l, l->revoke_id);
		break;
	case CLOSING:
		finish(l);
		break;
	}
}

struct lbd_etcd_lease *
lbd_etcd_lease_new(uv_loop_t *loop, struct lbd_etcd_http *h,
    const char *const *endpoints, unsigned n, int64_t ttl, int64_t adopt,
    lbd_etcd_lease_cb *cb, void *arg, char *why, size_t size)
{
	struct lbd_etcd_lease *l;
	unsigned i;

	if (n == 0 || ttl <= 0) {
		snprintf(why, size, "an etcd lease needs an endpoint and a "
		    "TTL above 0");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->endpoints = calloc(n, sizeof(char *))) == NULL ||
	    (l->tick = malloc(sizeof(*l->tick))) == NULL ||
	    (l->lost = malloc(sizeof(*l->lost))) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if ((l->endpoints[i] = strdup(endpoints[i])) == NULL)
			goto out;
	l->n = n;
	l->loop = loop;
	l->h = h;
	l->ttl_asked = ttl;
	l->cb = cb;
	l->arg = arg;
	l->state = adopt != 0 ? ADOPTING : GRANTING;
	l->id = adopt;
	l->adopt_until = uv_hrtime() + (uint64_t)ttl * 1000000000u;
	uv_timer_init(loop, l->tick);
	uv_timer_init(loop, l->lost);
	l->tick->data = l;
	l->lost->data = l;
	uv_timer_start(l->tick, on_tick, interval_ms(l), interval_ms(l));
	if (adopt != 0)
		start_adopt(l);
	else
		start_grant(l);
	return l;
out:
	snprintf(why, size, "an etcd lease: out of memory");
	if (l != NULL) {
		if (l->endpoints != NULL)
			for (i = 0; i < n; i++)
				free(l->endpoints[i]);
		free(l->endpoints);
		free(l->tick);
		free(l->lost);
	}
	free(l);
	return NULL;
}

void
lbd_etcd_lease_adopt_by(struct lbd_etcd_lease *l, uint64_t until)
{
	if (l->state == ADOPTING && until < l->adopt_until)
		l->adopt_until = until;
}

int64_t
lbd_etcd_lease_id(const struct lbd_etcd_lease *l)
{
	return l->state == LIVE ? l->id : 0;
}

uint64_t
lbd_etcd_lease_deadline(const struct lbd_etcd_lease *l)
{
	return l->state == LIVE ? l->deadline : 0;
}

int64_t
lbd_etcd_lease_ttl(const struct lbd_etcd_lease *l)
{
	return l->state == LIVE ? l->ttl : 0;
}

uint64_t
lbd_etcd_lease_lost_deadline(const struct lbd_etcd_lease *l)
{
	return l->lost_deadline;
}

uint64_t
lbd_etcd_lease_keepalives(const struct lbd_etcd_lease *l)
{
	return l->keepalives;
}

void
lbd_etcd_lease_close(struct lbd_etcd_lease *l, void (*done)(void *),
    void *arg)
{
	int64_t id;
	char why[256];

	if (l == NULL || l->state == CLOSING)
		return;
	id = l->state == LIVE || l->state == ADOPTING ? l->id :
	    l->state == REVOKING ? l->revoke_id : 0;
	if (l->req != NULL) {
		lbd_etcd_http_cancel(l->req);
		l->req = NULL;
	}
	uv_timer_stop(l->lost);
	l->state = CLOSING;
	l->done = done;
	l->done_arg = arg;
	if (id != 0)
		l->req = post(l, "/v3/lease/revoke", lbd_etcd_body_lease(id),
		    on_revoke, why, sizeof(why));
	/* No revoke in flight: the tick, at once, finishes. */
	if (l->req == NULL)
		uv_timer_start(l->tick, on_tick, 0, 0);
}

const char *
lbd_etcd_lease_endpoint(const struct lbd_etcd_lease *l)
{
	return l->endpoints[l->cur];
}
