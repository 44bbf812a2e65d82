/*
 * lograte.c: log lines a client can make at will, bounded per interval
 * (as chrony's LOG_RateLimited bounds its lines about clients, and with
 * a count of those left out, as Tor's ratelim does): a user who
 * connects in a loop, each connection refused,
 * would otherwise grow the log (a journal, a service's file) without
 * end, and bury the lines that matter.
 *
 * An interval starts with the first line after the previous one ended.
 * Its first r->lines lines are written; the rest are counted, and at
 * the interval's end (a timer, unreferenced: it keeps no stopping loop
 * alive) one line says how many were not written.  So an interval
 * writes at most r->lines + 1 lines, whatever the flood; the lines
 * written are the first of each interval, which name the flood's
 * source.
 */
#include <inttypes.h>

#include "log.h"
#include "lograte.h"

/* Writes how many lines of r were held back, if any, and starts a new
 * interval at now. */
static void
lograte_flush(struct lbd_lograte *r, uint64_t now)
{
	if (r->held > 0)
		log_notice("%u %s not logged in the last %" PRIu64 " s (%u "
		    "logged at most in %" PRIu64 " s)", r->held, r->what,
		    (now - r->start + 999) / 1000, r->lines,
		    r->interval_ms / 1000);
	r->start = now;
	r->written = r->held = 0;
}

/* The interval with lines held back ended. */
static void
lograte_over(uv_timer_t *t)
{
	struct lbd_lograte *r = t->data;

	lograte_flush(r, uv_now(t->loop));
}

/* lbd_lograte_init: see lograte.h. */
void
lbd_lograte_init(struct lbd_lograte *r, uv_loop_t *loop, const char *what,
    unsigned lines, uint64_t interval_ms)
{
	uv_timer_init(loop, &r->timer);
	uv_unref((uv_handle_t *)&r->timer);
	r->timer.data = r;
	r->what = what;
	r->lines = lines;
	r->interval_ms = interval_ms;
	r->start = uv_now(loop);
	r->written = r->held = 0;
	r->open = 1;
}

/*
 * lbd_lograte_take: see lograte.h.  An interval starts with its first
 * line; one over with nothing held back ends here (no timer ran for
 * it); one with lines held back ends at its timer, or here should the
 * line come first.
 */
int
lbd_lograte_take(struct lbd_lograte *r)
{
	uint64_t now = uv_now(r->timer.loop);

	if (r->written == 0 && r->held == 0)
		r->start = now;
	else if (now - r->start >= r->interval_ms) {
		uv_timer_stop(&r->timer);
		lograte_flush(r, now);
	}
	if (r->written < r->lines) {
		r->written++;
		return 1;
	}
	if (r->held++ == 0 && r->open)
		uv_timer_start(&r->timer, lograte_over,
		    r->start + r->interval_ms - now, 0);
	return 0;
}

/* lbd_lograte_close: see lograte.h. */
void
lbd_lograte_close(struct lbd_lograte *r)
{
	if (!r->open)
		return;
	lograte_flush(r, uv_now(r->timer.loop));
	uv_close((uv_handle_t *)&r->timer, NULL);
	r->open = 0;
}
