/*
 * lograte.h: a kind of log line that a client can make the daemon write
 * at will (a refused connection), bounded per interval (lograte.c): at
 * most so many lines an interval, then, when it ends, one line that
 * counts those not written.
 */
#ifndef LBD_LOGRATE_H
#define LBD_LOGRATE_H

#include <stdint.h>
#include <uv.h>

/* One kind of line and its bound (lbd_lograte_init). */
struct lbd_lograte {
	uv_timer_t  timer;       /* the end of an interval with lines held
	                            back (unreferenced) */
	const char *what;        /* the lines, counted: "refusals of
	                            connections" */
	unsigned    lines;       /* written an interval, at most */
	uint64_t    interval_ms;
	uint64_t    start;       /* the interval's, uv_now's ms */
	unsigned    written;     /* in it */
	unsigned    held;        /* in it, not written */
	int         open;        /* timer initialized, not closed */
};

/* lbd_lograte_init: r bounds lines called what (a static string) to
 * lines an interval of interval_ms, on loop. */
void lbd_lograte_init(struct lbd_lograte *r, uv_loop_t *loop,
         const char *what, unsigned lines, uint64_t interval_ms);

/* lbd_lograte_take: 1 when a line of r may be written now (the caller
 * writes it); 0 when r's interval has had its lines: the line is
 * counted instead, and the count written when the interval ends. */
int  lbd_lograte_take(struct lbd_lograte *r);

/* lbd_lograte_close: the daemon stops: the count of lines held back, if
 * any, written now; r's timer closed.  Idempotent. */
void lbd_lograte_close(struct lbd_lograte *r);

#endif
