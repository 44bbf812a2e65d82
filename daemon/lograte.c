/*
 * lograte.c: log lines a client can make at will, bounded per interval
 * and per user (as chrony's LOG_RateLimited bounds its lines about
 * clients, and with a count of those left out, as Tor's ratelim does):
 * a user who connects in a loop, each connection refused, would
 * otherwise grow the log (a journal, a service's file) without end,
 * and bury the lines that matter; and with one bound for all users, his
 * flood would take every line of each interval, hiding every other
 * user's refusals.
 *
 * An interval starts with the first line after the previous one ended.
 * In it, each user's first r->lines_per_uid lines are written, as long
 * as all users' written stay within r->lines; the rest are counted per
 * user (the first LBD_LOGRATE_USERS users of the interval apart, those
 * beyond together), and at the interval's end (a timer, unreferenced:
 * it keeps no stopping loop alive) one line per user says how many of
 * that user's were not written (the users beyond the table: one line
 * for all, none of their lines written).  So an interval writes at most
 * r->lines + LBD_LOGRATE_USERS + 1 lines, whatever the flood and
 * however many users make it; the lines written are the first of each
 * user's, which name the flood's source, and another user's first
 * lines are written whatever one user does (up to r->lines in all).
 *
 *   idle (nothing in the interval)
 *   | a line: the interval starts
 *   v
 *   counting: lines written while the user's and the daemon's bounds
 *   |         allow, else held (the timer started at the first held)
 *   | the interval's end: its timer (lines held), or the next line
 *   | after it, or the stop: one count line per user with lines held
 *   v
 *   idle
 */
#include <inttypes.h>

#include "log.h"
#include "lograte.h"

/* Writes how many lines of r were held back, per user, if any, and
 * starts a new interval at now. */
static void
lograte_flush(struct lbd_lograte *r, uint64_t now)
{
	struct lbd_lograte_user *u;
	double                   secs = (double)(now - r->start) / 1000;
	double                   interval = (double)r->interval_ms / 1000;
	unsigned                 i;

	for (i = 0; i < r->nusers; i++) {
		u = &r->users[i];
		if (u->held == 0)
			continue;
		if (u->uid == LBD_LOGRATE_NOBODY_KNOWN)
			log_notice("%u %s not logged for peers whose user is "
			    "not known in the last %.3g s (at most %u logged "
			    "a user, %u in all, in %.3g s)", u->held, r->what,
			    secs, r->lines_per_uid, r->lines, interval);
		else
			log_notice("%u %s not logged for uid %ld in the last "
			    "%.3g s (at most %u logged a user, %u in all, in "
			    "%.3g s)", u->held, r->what, u->uid, secs,
			    r->lines_per_uid, r->lines, interval);
	}
	if (r->others_held > 0)
		log_notice("%u %s not logged for users beyond the first %d "
		    "in the last %.3g s (at most %u logged a user, %u in all, "
		    "in %.3g s)", r->others_held, r->what, LBD_LOGRATE_USERS,
		    secs, r->lines_per_uid, r->lines, interval);
	r->start = now;
	r->written = r->held = r->others_held = r->nusers = 0;
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
    unsigned lines_per_uid, unsigned lines, uint64_t interval_ms)
{
	uv_timer_init(loop, &r->timer);
	uv_unref((uv_handle_t *)&r->timer);
	r->timer.data = r;
	r->what = what;
	r->start = uv_now(loop);
	r->written = r->held = r->others_held = r->nusers = 0;
	r->open = 1;
	lbd_lograte_set(r, lines_per_uid, lines, interval_ms);
}

/* lbd_lograte_set: see lograte.h. */
void
lbd_lograte_set(struct lbd_lograte *r, unsigned lines_per_uid,
    unsigned lines, uint64_t interval_ms)
{
	r->lines_per_uid = lines_per_uid;
	r->lines = lines;
	r->interval_ms = interval_ms > 0 ? interval_ms : 1;    /* uv_now's
	                                           unit: an interval of 0
	                                           would bound nothing */
}

/* uid's counts in r's interval: found, or made when there is room;
 * NULL when LBD_LOGRATE_USERS users have counts already. */
static struct lbd_lograte_user *
lograte_user(struct lbd_lograte *r, long uid)
{
	struct lbd_lograte_user *u;
	unsigned                 i;

	for (i = 0; i < r->nusers; i++)
		if (r->users[i].uid == uid)
			return &r->users[i];
	if (r->nusers == LBD_LOGRATE_USERS)
		return NULL;
	u = &r->users[r->nusers++];
	u->uid = uid;
	u->written = u->held = 0;
	return u;
}

/*
 * lbd_lograte_take: see lograte.h.  An interval starts with its first
 * line; one over with nothing held back ends here (no timer ran for
 * it); one with lines held back ends at its timer, or here should the
 * line come first.  The lines of a user beyond the table (whose own
 * bound cannot be told) are counted, never written.
 */
int
lbd_lograte_take(struct lbd_lograte *r, long uid)
{
	struct lbd_lograte_user *u;
	uint64_t                 now = uv_now(r->timer.loop);

	if (r->written == 0 && r->held == 0)
		r->start = now;
	else if (now - r->start >= r->interval_ms) {
		uv_timer_stop(&r->timer);
		lograte_flush(r, now);
	}
	u = lograte_user(r, uid);
	if (u != NULL && u->written < r->lines_per_uid &&
	    r->written < r->lines) {
		r->written++;
		u->written++;
		return 1;
	}
	if (u != NULL)
		u->held++;
	else
		r->others_held++;
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
