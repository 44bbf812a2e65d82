/*
 * reply.c: the replies that wait for the state database, and the one
 * place that queues an ERR for a request (and a bare OK).
 *
 * A grant is recorded in the state database before its reply goes out:
 * its OK is owed (struct lbd_ack, in d->acks, oldest first) until the
 * iteration's commit, then sent (lbd_grants_settle); a grant that cannot
 * be recorded (a full disk) is refused with EINTERNAL instead and ends as
 * a release would, so that no client holds a lock a restarted daemon
 * would not know of.  An owed OK keeps its request id in use on its
 * connection (reqids.c): another request with it gets EID.
 *
 *   grant (hold.c) --> OWED (d->acks) --commit recorded--> OK sent
 *                        |    |   (and its handoff's last step taken)
 *                        |    +--commit failed, or the last step of its
 *                        |    |  handoff (swap.c)--> ERR EINTERNAL, the
 *                        |    |                   hold ends (lbd_hold_end)
 *                        |    +--the last step refused for a reader's sake
 *                        |       (swap.c: READERS): owed still, to the
 *                        |       settle after the retry that takes it
 *                        +--the hold ends first (RELEASE, BREAK, close in
 *                        |  the same iteration; a kept hold's process
 *                        |  exits, or it is forgotten): OK sent at once,
 *                        |  ahead of what ends it (lbd_hold_pay); ERR
 *                        |  EINTERNAL if its handoff's last step failed
 *                        +--its connection closes (a kept hold): owed to
 *                           nobody (lbd_acks_forget)
 *
 * No reply goes out before the commit of the changes made before it:
 * replies are handed to the sockets only after the iteration's settle
 * (loop.c), and not at all while its transaction of riders' rows is
 * carried over to a later iteration (lbd_store_carry), whose settle
 * commits it; so a rider's join and leave, answered at once here, are
 * recorded before their OKs are read.
 *
 * Every ERR a request gets goes through lbd_conn_error; conn.c writes
 * the connection's own (a line that does not parse, one too long, a
 * connection refused at accept).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "conn.h"
#include "daemon.h"
#include "hold.h"
#include "log.h"
#include "loop.h"
#include "reply.h"
#include "reqids.h"
#include "swap.h"

/* An OK owed for a grant the state database has not recorded yet. */
struct lbd_ack {
	struct lbd_hold         *hold;
	struct lbd_conn         *conn;      /* to reply to (a kept hold has
	                                       none of its own) */
	uint64_t                 id;        /* the ACQUIRE's request id */
	struct lbd_reqid         inuse;     /* id, in conn's ids in use */
	unsigned                 round;     /* settled by the settle after */
	TAILQ_ENTRY(lbd_ack)     entry;     /* in d->acks, oldest first */
};

/* lbd_conn_error: queues "ERR ID code=... message=..." for c. */
void
lbd_conn_error(struct lbd_conn *c, uint64_t id, enum lbp_error code,
    const char *fmt, ...)
{
	struct lbp_out o;
	char           msg[LBP_LINE_MAX];  /* cut to fit the line */
	va_list        ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lbp_error_reply(&o, 1, id, code, msg);
	lbd_conn_send(c, &o);
}

/* lbd_conn_ok: see reply.h. */
void
lbd_conn_ok(struct lbd_conn *c, uint64_t id)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, id);
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

/* lbd_conn_ok_pending: see reply.h. */
void
lbd_conn_ok_pending(struct lbd_conn *c, uint64_t id)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, id);
	lbp_add_u64(&o, "pending", 1);
	lbp_end(&o);
	lbd_conn_send(c, &o);
}

/* Replies OK with the hold's token to request id on c. */
static void
reply_granted(struct lbd_conn *c, uint64_t id, const struct lbd_hold *h)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, id);
	lbp_add_u64(&o, "token", h->token);
	lbp_end(&o);
	lbd_conn_send(c, &o);
	lbd_conn_flush_first(c);        /* a waiter's before the others' */
}

/* Owes c the OK to request id for h until the state database has
 * recorded h; at once when no memory is left to wait with. */
static void
hold_owe(struct lbd_hold *h, struct lbd_conn *c, uint64_t id)
{
	struct lbd     *d = h->lock->d;
	struct lbd_ack *a;

	if ((a = malloc(sizeof(*a))) != NULL) {
		a->inuse.id = id;
		if (lbd_reqid_add(c, &a->inuse) != 0) {
			free(a);
			a = NULL;
		}
	}
	if (a == NULL) {
		log_err("%s: out of memory; granted before it is recorded",
		    h->lock->path);
		reply_granted(c, id, h);
		return;
	}
	a->hold = h;
	a->conn = c;
	a->id = id;
	a->round = d->ack_round;
	TAILQ_INSERT_TAIL(&d->acks, a, entry);
	h->acks++;
	lbd_want_flush(d);
}

/* lbd_grant_reply: replies OK to c's request id for h: at once when h is
 * recorded, else once it is (a grant of this iteration, or a re-entrant
 * ACQUIRE of one). */
void
lbd_grant_reply(struct lbd_hold *h, struct lbd_conn *c, uint64_t id)
{
	if (h->unsettled || h->acks > 0)
		hold_owe(h, c, id);
	else
		reply_granted(c, id, h);
}

/* lbd_hold_pay: h ends before its record was settled (released, broken,
 * its connection closed in the same iteration): its owed OKs go out now,
 * ahead of what ends it; refused (EINTERNAL) when the last step of its
 * handoff failed (its lock file never its own). */
void
lbd_hold_pay(struct lbd_hold *h)
{
	struct lbd_ack *a, *next;
	struct lbd     *d = h->lock->d;

	for (a = TAILQ_FIRST(&d->acks); a != NULL && h->acks > 0; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (a->hold != h)
			continue;
		TAILQ_REMOVE(&d->acks, a, entry);
		lbd_reqid_del(a->conn, &a->inuse);
		h->acks--;
		if (lbd_swap_failed(h))
			lbd_conn_error(a->conn, a->id, LBP_EINTERNAL, "%s is "
			    "not granted: its hold ended with its handoff "
			    "unfinished", h->lock->path);
		else
			reply_granted(a->conn, a->id, h);
		free(a);
	}
	h->unsettled = 0;
}

/*
 * lbd_acks_forget: c closes: the OKs still owed to it (for holds that
 * outlive it: kept holds) are owed to nobody now.  Their holds stay, and
 * are recorded with the next commit that succeeds.
 */
void
lbd_acks_forget(struct lbd_conn *c)
{
	struct lbd_ack *a, *next;

	for (a = TAILQ_FIRST(&c->d->acks); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (a->conn != c)
			continue;
		TAILQ_REMOVE(&c->d->acks, a, entry);
		lbd_reqid_del(c, &a->inuse);
		a->hold->acks--;
		free(a);
	}
}

/*
 * lbd_grants_settle: the iteration's commit has recorded every grant it
 * owes replies for (recorded), and the last steps of their handoffs were
 * taken (swap.c), or the commit has failed for the reason why.  Sends
 * the owed OKs; or refuses each such grant (ERR EINTERNAL naming the
 * state database and why), and each whose handoff's last step failed
 * (its lock file still the old holder's: never told as held), and ends
 * its hold, which hands the lock to the next waiter (owed again, until
 * the next settle) or removes its artefact (the old holder's lock file,
 * as that user).  A grant whose handoff waits for its lock file's
 * readers (lbd_swap_waiting) stays owed, for a later settle.  Grants made
 * while settling are left for the next settle.
 */
void
lbd_grants_settle(struct lbd *d, int recorded, const char *why)
{
	struct lockfs_err err;
	struct lbd_ack   *a;
	struct lbd_hold  *h;
	struct lbd_conn  *c;
	char              path[PATH_MAX], reason[64];
	uint64_t          id;
	unsigned          round = ++d->ack_round;

	while ((a = TAILQ_FIRST(&d->acks)) != NULL && a->round != round) {
		TAILQ_REMOVE(&d->acks, a, entry);
		if (recorded && lbd_swap_waiting(a->hold)) {
			/* Owed until its lock file's readers let the last
			 * step be taken (swap.c): a later settle's. */
			a->round = round;
			TAILQ_INSERT_TAIL(&d->acks, a, entry);
			continue;
		}
		h = a->hold;
		c = a->conn;
		id = a->id;
		lbd_reqid_del(c, &a->inuse);
		free(a);
		if (--h->acks == 0)
			h->unsettled = 0;
		if (recorded && !lbd_swap_failed(h)) {
			reply_granted(c, id, h);
			continue;
		}
		snprintf(path, sizeof(path), "%s", h->lock->path);
		snprintf(reason, sizeof(reason), "%s", recorded ? "the last "
		    "step of its handoff failed" : "the state database cannot "
		    "record it");
		if (h->acks == 0) {
			log_err("%s: grant to pid %ld refused: %s: %s", path,
			    (long)h->fs.owner.pid, reason, recorded ? "see "
			    "above" : why);
			if (lbd_hold_end(h->lock, &err) < 0)    /* h is gone */
				log_info("%s", err.msg);
		}
		lbd_conn_error(c, id, LBP_EINTERNAL, "%s is not granted: %s: "
		    "%s", path, reason, recorded ? "ask again" : why);
	}
}
