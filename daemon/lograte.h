/*
 * lograte.h: a kind of log line that a client can make the daemon write
 * at will (a refused connection), bounded per interval and per user
 * (lograte.c): at most so many lines of one user an interval, and so
 * many of all users, then, when the interval ends, one line per user
 * that counts that user's lines not written.
 */
#ifndef LBD_LOGRATE_H
#define LBD_LOGRATE_H

#include <stdint.h>
#include <uv.h>

/* The users an interval counts apart; the lines of users beyond them
 * are counted together. */
#define LBD_LOGRATE_USERS 64

/* The uid of a line whose user is not known (a connection whose peer
 * could not be read). */
#define LBD_LOGRATE_NOBODY_KNOWN (-1L)

/* One user's lines in an interval. */
struct lbd_lograte_user {
	long        uid;
	unsigned    written;
	unsigned    held;        /* not written: beyond the user's bound
	                            or the daemon's */
};

/* One kind of line and its bounds (lbd_lograte_init). */
struct lbd_lograte {
	uv_timer_t  timer;       /* the end of an interval with lines held
	                            back (unreferenced) */
	const char *what;        /* the lines, counted: "refusals of
	                            connections" */
	unsigned    lines_per_uid; /* one user's written an interval, at
	                            most */
	unsigned    lines;       /* all users' written an interval, at most */
	uint64_t    interval_ms;
	uint64_t    start;       /* the interval's, uv_now's ms */
	unsigned    written;     /* in it, all users' */
	unsigned    held;        /* in it, all users', not written */
	unsigned    others_held; /* in it, of users beyond users[] */
	unsigned    nusers;      /* in users[] */
	struct lbd_lograte_user users[LBD_LOGRATE_USERS];
	int         open;        /* timer initialized, not closed */
};

/* lbd_lograte_init: r bounds lines called what (a static string) to
 * lines_per_uid of one user and lines of all users an interval of
 * interval_ms (0 taken as 1), on loop. */
void lbd_lograte_init(struct lbd_lograte *r, uv_loop_t *loop,
         const char *what, unsigned lines_per_uid, unsigned lines,
         uint64_t interval_ms);

/* lbd_lograte_set: r's bounds changed (a reload), from the next
 * interval on; the current one ends at its old end. */
void lbd_lograte_set(struct lbd_lograte *r, unsigned lines_per_uid,
         unsigned lines, uint64_t interval_ms);

/* lbd_lograte_take: 1 when a line of r about uid
 * (LBD_LOGRATE_NOBODY_KNOWN: none known) may be written now (the caller
 * writes it); 0 when uid's interval has had its lines, or all users'
 * have: the line is counted instead, for uid, and the counts written
 * when the interval ends. */
int  lbd_lograte_take(struct lbd_lograte *r, long uid);

/* lbd_lograte_close: the daemon stops: the counts of lines held back,
 * if any, written now; r's timer closed.  Idempotent. */
void lbd_lograte_close(struct lbd_lograte *r);

#endif
