/*
 * cohort.c: a cluster lock's local cohort (cohort.h; docs/CLUSTER.md,
 * "The local cohort").  One cohort a cluster lock name, in d->cohorts,
 * bound to the local lock (l->cohort, c->l) while that lock is in the
 * table.  Its states:
 *
 *          a waiter, no key: taken     +---- FAILED: IDLE, taken again
 *   IDLE -----------------------> TAKING      a second later while
 *    ^ ^  (no lease yet: taken     |  |       waiters are left; a try's
 *    | |   once one is granted)    |  +---- WAITING: another key holds;
 *    | |                           |        tries answered EALREADY
 *    | |                           v HELD (the key's create revision)
 *    | |                          HELD: local grants, handoffs counted;
 *    | |                           |    the gate shuts at the bound; no
 *    | |                           |    holder then, waiters here: etcd
 *    | |                           |    asked for the lock's keys (count):
 *    | |                           |    ours alone, handed on, counted anew
 *    | |  no holder here and       |
 *    | |  (nobody waits, or others +--- the lease lost --> LOST: the key
 *    | |  wait at the bound), or   |    abandoned (gone with the lease),
 *    | |  the lock leaves the      |    the holders told (LOST), their
 *    | |  table                    v    holds ended; no grants: IDLE
 *    | +------ RELEASED ------- RELEASING (the key's delete in flight;
 *    +------- (LOST, unheld)              waiters wait; taken again
 *                                         after, while they are left)
 *
 * A delete that fails leaves the cohort IDLE and stray: its key may be in
 * etcd still, on a lease kept alive; it is taken again by name a second
 * later and deleted, till a delete is done (or the lease is lost).  A
 * cohort with no lock, no key and nothing stray is freed.  The gate
 * (lbd_cohort_gate) is open in HELD below the bound only, so that no
 * local grant is made unless this daemon's key is the lowest under the
 * lock's prefix.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "clusterd.h"
#include "cohort.h"
#include "conn.h"
#include "etcdapi.h"
#include "etcdlock.h"
#include "fs.h"
#include "creds.h"
#include "locktable.h"
#include "hold.h"
#include "lock.h"
#include "log.h"
#include "readers.h"
#include "reply.h"
#include "wait.h"

enum cohort_state { C_IDLE, C_TAKING, C_HELD, C_LOST, C_RELEASING };

/* A token's low bits: the grant's count in its hold of the key. */
#define TOKEN_COUNT (((uint64_t)1 << 20) - 1)

struct lbd_cohort {
	struct lbd            *d;
	struct lbd_lock       *l;         /* its local lock; NULL: none now */
	char                  *path;      /* the local lock's path */
	char                  *prefix;    /* etcd's PREFIX/ESCAPED/ */
	enum cohort_state      state;
	struct lbd_etcd_lock  *key;       /* TAKING, HELD, RELEASING */
	int64_t                token;     /* HELD: the key's create revision */
	unsigned               handed;    /* local handoffs in this HELD */
	uint64_t               grants;    /* tokens given in this HELD */
	int                    retry;     /* IDLE: taken again at the next
	                                     retry tick */
	int                    failed;    /* RELEASING a key whose take
	                                     failed: taken again a second
	                                     later, not at once */
	struct lbd_etcd_req   *count;     /* HELD at the bound, waiters here:
	                                     asking etcd whether another
	                                     host's key waits */
	uid_t                  uid;       /* whose request took the key
	                                     (LBD_COHORT_KEYS_PER_UID) */
	char                   parked[PATH_MAX + 256]; /* IDLE, not taken
	                                     for want of a key: why ("":
	                                     not so) */
	int                    stray;     /* IDLE, its key's delete failed:
	                                     the key may be in etcd still, on
	                                     a live lease, holding the lock
	                                     from other hosts; taken again
	                                     (its name the same) and deleted,
	                                     a second later, through the next
	                                     endpoint, till a delete is done */
	LIST_ENTRY(lbd_cohort) entry;     /* in d->cohorts */
};

static void take(struct lbd_cohort *c);
static void count_cancel(struct lbd_cohort *c);
static void holders_end(struct lbd_lock *l, const char *why);

/* Whether anyone holds l here (a holder or a rider). */
static int
held_here(const struct lbd_lock *l)
{
	return l != NULL && (l->holder != NULL || !TAILQ_EMPTY(&l->readers));
}

/* The cohort of name's lock l (path, method): found, or made IDLE.
 * NULL with err filled (out of memory, a name too long). */
static struct lbd_cohort *
cohort_get(struct lbd_lock *l, const char *name, struct lockfs_err *err)
{
	struct lbd_cohort *c;
	char               prefix[PATH_MAX + 64];

	LIST_FOREACH(c, &l->d->cohorts, entry)
		if (strcmp(c->path, l->path) == 0)
			return c;
	if (lbd_cluster_prefix(l->d->cfg.etcd_prefix, name, prefix,
	    sizeof(prefix)) < 0) {
		lockfs_fail(err, LB_EINVAL, 0, "%s: its etcd key under %s is "
		    "too long", l->path, l->d->cfg.etcd_prefix);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(l->path)) == NULL ||
	    (c->prefix = strdup(prefix)) == NULL) {
		if (c != NULL)
			free(c->path);
		free(c);
		lockfs_fail(err, LB_EFAILED, 0, "%s: out of memory",
		    l->path);
		return NULL;
	}
	c->d = l->d;
	c->state = C_IDLE;
	LIST_INSERT_HEAD(&l->d->cohorts, c, entry);
	return c;
}

/* Frees c when it has neither lock nor key (nor a stray one). */
static void
cohort_put(struct lbd_cohort *c)
{
	if (c->l != NULL || c->key != NULL || c->stray)
		return;
	LIST_REMOVE(c, entry);
	free(c->path);
	free(c->prefix);
	free(c);
}

/* Answers the tries queued for c's lock (a timeout of 0 or less,
 * lbd_acquire) with code and why, and lets the lock go on. */
static void
tries_answer(struct lbd_cohort *c, enum lbp_error code, const char *why)
{
	struct lbd_wait *w, *next;
	struct lbd_lock *l = c->l;

	if (l == NULL)
		return;
	l->serving++;
	for (w = TAILQ_FIRST(&l->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, lock_entry);
		if (!w->cluster_try)
			continue;
		lbd_conn_error(w->conn, w->id, code, "%s", why);
		lbd_wait_remove(w);
	}
	l->serving--;
	lbd_lock_serve(l);      /* l may leave; so may c */
}

/* Stops c's question to etcd, if any. */
static void
count_cancel(struct lbd_cohort *c)
{
	if (c->count != NULL)
		lbd_etcd_http_cancel(c->count);
	c->count = NULL;
}

/* Deletes c's key; RELEASED brings it back to IDLE. */
static void
release(struct lbd_cohort *c)
{
	char why[256];

	count_cancel(c);
	c->state = C_RELEASING;
	if (lbd_etcd_lock_release(c->key, why, sizeof(why)) == 0)
		return;
	log_warn("%s: its etcd key could not be deleted (%s); deleted again "
	    "in a second", c->path, why);
	c->key = NULL;
	c->state = C_IDLE;
	c->stray = 1;
	c->retry = 1;
	lbd_cohort_retry_soon(c->d);
}

/* The key's events. */
static void
on_key(void *arg, enum lbd_etcd_lock_event ev, int64_t token,
    const char *why)
{
	struct lbd_cohort *c = arg;
	char               msg[1024];

	switch (ev) {
	case LBD_ETCD_LOCK_HELD:
		if ((uint64_t)token > UINT64_MAX >> 20) {
			/* A revision no token can carry: etcd's word is not
			 * taken (no grant), the key given up. */
			log_warn("%s: etcd key %s holds at revision %" PRId64
			    ", past what a token carries (2^44): given up",
			    c->path, lbd_etcd_lock_key(c->key), token);
			c->state = C_HELD;
			c->token = 0;
			release(c);
			c->failed = 1;  /* taken again a second later */
			break;
		}
		c->state = C_HELD;
		c->handed = 0;
		/* The same key again (a stray one taken back, or the
		 * previous run's): its grants' count goes on, never a
		 * token given twice; past a hold given back with it. */
		if (token != c->token)
			c->grants = 0;
		c->token = token;
		if (c->l != NULL && c->l->holder != NULL &&
		    c->l->holder->token >> 20 == (uint64_t)token &&
		    (c->l->holder->token & TOKEN_COUNT) > c->grants)
			c->grants = c->l->holder->token & TOKEN_COUNT;
		log_debug("%s: etcd key %s held (revision %" PRId64 ")",
		    c->path, lbd_etcd_lock_key(c->key), token);
		if (c->l == NULL || (c->l->holder == NULL &&
		    TAILQ_EMPTY(&c->l->waiters))) {
			release(c);     /* nobody wants it any more */
			break;
		}
		lbd_lock_serve(c->l);   /* the waiters' turn */
		break;
	case LBD_ETCD_LOCK_WAITING:
		if (c->l == NULL) {     /* a stray key's, or nobody waits */
			release(c);
			break;
		}
		snprintf(msg, sizeof(msg), "%s is held by another host (its "
		    "etcd key %s waits behind another)", c->path,
		    lbd_etcd_lock_key(c->key));
		if (held_here(c->l))    /* the previous run's: not held */
			holders_end(c->l, msg);
		tries_answer(c, LBP_EALREADY, msg);
		break;
	case LBD_ETCD_LOCK_FAILED:
		log_warn("%s: %s; trying again in a second", c->path, why);
		snprintf(msg, sizeof(msg), "%s is a cluster lock, and taking "
		    "its etcd key failed: %s", c->path, why);
		/* The key may exist (a put in flight, or made): stray, taken
		 * again by its name through the next endpoint a second
		 * later, not deleted through the one that failed. */
		lbd_etcd_lock_abandon(c->key);
		c->key = NULL;
		c->state = C_IDLE;
		c->stray = 1;
		c->retry = 1;
		lbd_cohort_retry_soon(c->d);
		if (held_here(c->l))    /* the previous run's: not known */
			holders_end(c->l, msg);
		tries_answer(c, LBP_EFAILED, msg);
		break;
	case LBD_ETCD_LOCK_RELEASED:
		if (why != NULL)
			log_warn("%s: %s; deleted again in a second", c->path,
			    why);
		c->key = NULL;
		c->state = C_IDLE;
		c->stray = why != NULL;
		if (!c->stray && (c->l == NULL ||
		    TAILQ_EMPTY(&c->l->waiters)))
			cohort_put(c);  /* (freed) */
		else if (c->failed || c->stray) {
			c->failed = 0;
			c->retry = 1;
			lbd_cohort_retry_soon(c->d);
		} else
			take(c);
		break;
	}
}

/*
 * Whether c's key may not be taken now: the daemon takes LBD_COHORT_KEYS
 * (each a call to etcd, a watch while it waits), or the user its head
 * waiter is (c->uid, set here) takes LBD_COHORT_KEYS_PER_UID; why in msg
 * (size bytes) then.  A key taken back for a hold here, or a stray one,
 * is the daemon's (uid 0's).
 */
static int
keys_spent(struct lbd_cohort *c, char *msg, size_t size)
{
	struct lbd_cohort *k;
	unsigned           all = 0, mine = 0;

	c->uid = c->l != NULL && !held_here(c->l) &&
	    !TAILQ_EMPTY(&c->l->waiters) ? TAILQ_FIRST(&c->l->waiters)->conn->
	    uid : 0;
	LIST_FOREACH(k, &c->d->cohorts, entry)
		if (k->state == C_TAKING) {     /* (a held key's calls end) */
			all++;
			mine += k->uid == c->uid;
		}
	/* Root's (and the daemon's own) may use the last
	 * LBD_COHORT_KEYS_ROOT: other users cannot crowd it out. */
	if (c->uid == 0 ? all < LBD_COHORT_KEYS : all < LBD_COHORT_KEYS -
	    LBD_COHORT_KEYS_ROOT && mine < LBD_COHORT_KEYS_PER_UID)
		return 0;
	snprintf(msg, size, "%s is a cluster lock, and this lockbrokerd is "
	    "taking as many etcd keys as it may now (at most %d at once, %d "
	    "for one user): the lock waits for one", c->path,
	    LBD_COHORT_KEYS, LBD_COHORT_KEYS_PER_UID);
	return 1;
}

/* Starts taking c's key (IDLE, waiters queued); with no lease yet, it is
 * taken once one is granted (lbd_cohorts_lease). */
static void
take(struct lbd_cohort *c)
{
	struct lbd *d = c->d;
	char        value[512], host[256], why[512];
	int64_t     lease = lbd_clusterd_lease(d);

	c->retry = 0;
	c->failed = 0;
	if (lease == 0 || (d->cohort_sweep > 0 && !held_here(c->l)))
		return;         /* lbd_cohorts_lease takes it */
	if (keys_spent(c, c->parked, sizeof(c->parked))) {
		c->retry = 1;   /* tried again a second later */
		lbd_cohort_retry_soon(d);
		return;
	}
	c->parked[0] = '\0';
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	snprintf(value, sizeof(value), "lockbrokerd host=%s pid=%ld path=%s",
	    host, (long)getpid(), c->path);
	c->key = lbd_etcd_lock_take(lbd_clusterd_http(d),
	    lbd_clusterd_endpoint(d), c->prefix, lease, value,
	    LBD_COHORT_CALL_MS, on_key, c, why, sizeof(why));
	if (c->key == NULL) {
		log_warn("%s: taking its etcd key: %s; trying again in a "
		    "second", c->path, why);
		c->retry = 1;
		lbd_cohort_retry_soon(d);
		return;
	}
	c->state = C_TAKING;
}

/* l's cohort, bound to l when it was not yet: 1 (in *cp); 0 when l is
 * not a cluster lock; -1 with err filled when it cannot be one here
 * (another method's lock of its name has the cohort; out of memory). */
static int
cohort_attach(struct lbd_lock *l, struct lbd_cohort **cp,
    struct lockfs_err *err)
{
	struct lbd_cohort *c = l->cohort;
	char               name[PATH_MAX];

	if (c == NULL) {
		if (l->d->cluster == NULL || lbd_cluster_name(
		    l->d->cfg.cluster_dir, l->path, name, sizeof(name)) != 1)
			return 0;       /* a local lock */
		if ((c = cohort_get(l, name, err)) == NULL)
			return -1;
		if (c->l != NULL) {
			lockfs_fail(err, LB_EFAILED, 0, "%s is a cluster lock "
			    "taken with method %s on this host; one method a "
			    "cluster lock", l->path,
			    lockfs_method_name(c->l->method));
			return -1;
		}
		c->l = l;
		l->cohort = c;
	}
	*cp = c;
	return 1;
}

/* lbd_cohort_gate: see cohort.h. */
int
lbd_cohort_gate(struct lbd_lock *l, struct lockfs_err *err)
{
	struct lbd_cohort *c;
	int                r;

	if ((r = cohort_attach(l, &c, err)) <= 0)
		return r;
	if (c->state == C_IDLE && !c->retry)
		take(c);
	return !(c->state == C_HELD && c->handed < LBD_COHORT_HANDOFFS &&
	    c->grants < TOKEN_COUNT / 2);      /* tokens to spare */
}

/* lbd_cohort_may_make: see cohort.h. */
int
lbd_cohort_may_make(struct lbd_lock *l, struct lbd_conn *c,
    struct lockfs_err *err)
{
	char file[PATH_MAX], *slash;
	int  r;

	if (l->d->cluster == NULL || lbd_cluster_name(l->d->cfg.cluster_dir,
	    l->path, file, sizeof(file)) != 1 || l->method == LB_SQLITE)
		return 1;       /* (sqlite: a row, its database's business) */
	lbd_lock_file(l, file);
	if ((slash = strrchr(file, '/')) == NULL || slash == file)
		return 1;
	*slash = '\0';
	if (lbd_creds_enter(c->creds, err) != 0)
		return 0;
	r = lockfs_fs_may_remove_in(file);
	lbd_creds_leave();
	if (r == 0)
		return 1;
	lockfs_fail(err, LB_EFAILED, errno, "cannot lock %s: cannot create in "
	    "%s: %s", l->path, file, strerror(errno));
	return 0;
}

/* lbd_cohort_parked: see cohort.h. */
const char *
lbd_cohort_parked(const struct lbd_lock *l)
{
	const struct lbd_cohort *c = l->cohort;

	return c != NULL && c->state == C_IDLE && c->parked[0] != '\0' ?
	    c->parked : NULL;
}

/* lbd_cohort_leaseless: see cohort.h. */
const char *
lbd_cohort_leaseless(const struct lbd *d, char *buf, size_t size)
{
	return lbd_clusterd_lease(d) != 0 ? NULL :
	    lbd_clusterd_refusal(d, buf, size);
}

/* lbd_cohort_token: see cohort.h. */
uint64_t
lbd_cohort_token(struct lbd_lock *l)
{
	struct lbd_cohort *c = l->cohort;

	if (c == NULL || c->state != C_HELD || c->token <= 0)
		return 0;
	if (c->grants >= TOKEN_COUNT)   /* never: 16 handoffs a hold */
		return 0;
	return (uint64_t)c->token << 20 | ++c->grants;
}

/* lbd_cohort_handed: see cohort.h. */
void
lbd_cohort_handed(struct lbd_lock *l)
{
	if (l->cohort != NULL)
		l->cohort->handed++;
}

/* etcd's word at the bound: the lock's keys.  Ours alone (no other host
 * waits): the lock is handed on here, the bound counted anew; else, or
 * no word, the key is given up, to be taken anew behind the others. */
static void
on_count(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd_cohort *c = arg;
	int64_t            rev, count = 2;
	int                code;
	char               key[1024], value[8], why[512];

	(void)fail;
	c->count = NULL;
	if (!ok || lbd_etcd_parse_first(status, body, len, c->prefix, key,
	    sizeof(key), value, sizeof(value), &rev, &count, &code, why,
	    sizeof(why)) != LBD_ETCD_OK)
		count = 2;
	if (count <= 1 && c->l != NULL && !held_here(c->l) &&
	    !TAILQ_EMPTY(&c->l->waiters)) {
		c->handed = 0;
		lbd_lock_serve(c->l);   /* no other host waits */
		return;
	}
	if (c->l == NULL || !held_here(c->l)) {
		log_debug("%s: %u local handoffs: its etcd key given up, "
		    "taken anew behind other hosts", c->path, c->handed);
		release(c);
	}
}

/* Asks etcd whether other hosts wait for c's lock (on_count); the key
 * given up at once when the question cannot be asked. */
static void
count_start(struct lbd_cohort *c)
{
	char url[1024], why[256], *b;

	snprintf(url, sizeof(url), "%s/v3/kv/range",
	    lbd_clusterd_endpoint(c->d));
	if ((b = lbd_etcd_body_first(c->prefix)) != NULL)
		c->count = lbd_etcd_http_post(lbd_clusterd_http(c->d), url, b,
		    LBD_COHORT_CALL_MS, LBD_ETCD_REPLY_MAX, on_count, c, why,
		    sizeof(why));
	free(b);
	if (c->count == NULL)
		release(c);
}

/* lbd_cohort_unheld: see cohort.h. */
void
lbd_cohort_unheld(struct lbd_lock *l)
{
	struct lbd_cohort *c = l->cohort;

	if (c == NULL || l->holder != NULL)
		return;
	if (c->state == C_HELD && !TAILQ_EMPTY(&l->waiters) &&
	    c->handed >= LBD_COHORT_HANDOFFS &&
	    c->grants < TOKEN_COUNT / 2) {
		if (c->count == NULL)   /* the gate shut meanwhile */
			count_start(c);
	} else if (c->state == C_HELD && (TAILQ_EMPTY(&l->waiters) ||
	    c->handed >= LBD_COHORT_HANDOFFS ||
	    c->grants >= TOKEN_COUNT / 2)) {
		release(c);
	} else if (c->state == C_LOST) {
		c->state = C_IDLE;
		if (!TAILQ_EMPTY(&l->waiters))
			take(c);
	}
}

/* lbd_cohort_drop: see cohort.h. */
void
lbd_cohort_drop(struct lbd_lock *l)
{
	struct lbd_cohort *c = l->cohort;

	if (c == NULL)
		return;
	l->cohort = NULL;
	c->l = NULL;
	if (c->state == C_HELD || c->state == C_TAKING)
		release(c);
	else if (c->state == C_LOST)
		c->state = C_IDLE;
	cohort_put(c);
}

/*
 * l's holders here lost it (why): each told (LOST; a kept hold, which
 * has no connection, in the log), and its hold ended, its artefact
 * removed: the lock is another host's now, and no local waiter is
 * granted it until a new key holds (the cohort is LOST meanwhile).
 * l may be freed on return.
 */
static void
holders_end(struct lbd_lock *l, const char *why)
{
	struct lbd_hold  *r;
	struct lockfs_err err;

	l->serving++;
	while ((r = TAILQ_FIRST(&l->readers)) != NULL)
		lbd_reader_lost(r, why);        /* told, ended */
	if (l->holder != NULL) {
		log_notice("%s: pid %ld lost it: %s", l->path,
		    (long)l->holder->fs.owner.pid, why);
		if (l->holder->conn != NULL)
			lbd_lost_send(l->holder, why);
		if (lbd_hold_end(l, &err) < 0)
			log_warn("%s: the lost hold's artefact: %s", l->path,
			    err.msg);
	}
	l->serving--;
	lbd_lock_serve(l);
}

/* lbd_cohorts_lease: see clusterd.h. */
void
lbd_cohorts_lease(struct lbd *d, int64_t lost)
{
	struct lbd_cohort *c, *next;
	char               why[256];

	for (c = LIST_FIRST(&d->cohorts); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (lost == 0) {        /* a lease granted */
			if (c->state == C_IDLE && (c->stray || (c->l != NULL &&
			    !TAILQ_EMPTY(&c->l->waiters))))
				take(c);
			continue;
		}
		c->stray = 0;           /* gone with the lease */
		count_cancel(c);
		if (c->key != NULL)
			lbd_etcd_lock_abandon(c->key);  /* gone with it */
		c->key = NULL;
		/* Whoever holds it here, whatever the key's state (held, or
		 * a hold given back whose key was being taken back). */
		if (held_here(c->l)) {
			if (c->state == C_HELD)
				snprintf(why, sizeof(why), "the daemon's etcd "
				    "lease %016" PRIx64 " was lost, and with it "
				    "the cluster lock (etcd revision %" PRId64
				    ")", (uint64_t)lost, c->token);
			else
				snprintf(why, sizeof(why), "the daemon's etcd "
				    "lease %016" PRIx64 " was lost before the "
				    "cluster lock's key was taken back",
				    (uint64_t)lost);
			c->state = C_LOST;
			holders_end(c->l, why);         /* c may go */
			continue;
		}
		c->state = C_IDLE;      /* taken again with the next lease */
		if (c->l == NULL)
			cohort_put(c);
	}
}

/* lbd_cohorts_retry: see clusterd.h. */
void
lbd_cohorts_retry(struct lbd *d)
{
	struct lbd_cohort *c, *next;

	for (c = LIST_FIRST(&d->cohorts); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->state != C_IDLE || !c->retry)
			continue;
		c->retry = 0;
		if (c->stray || (c->l != NULL && !TAILQ_EMPTY(&c->l->waiters)))
			take(c);        /* a stray key: taken, then deleted */
		else
			cohort_put(c);
	}
}

/* lbd_cohorts_stop: see clusterd.h. */
void
lbd_cohorts_stop(struct lbd *d)
{
	struct lbd_cohort *c;

	LIST_FOREACH(c, &d->cohorts, entry)
		if (c->key != NULL) {
			count_cancel(c);
			lbd_etcd_lock_abandon(c->key);  /* the revoke ends it */
			c->key = NULL;
			c->state = C_LOST;
		}
}

/* lbd_cohorts_free: see clusterd.h. */
void
lbd_cohorts_free(struct lbd *d)
{
	struct lbd_cohort *c;

	while ((c = LIST_FIRST(&d->cohorts)) != NULL) {
		if (c->l != NULL)
			c->l->cohort = NULL;
		c->l = NULL;
		count_cancel(c);
		if (c->key != NULL)
			lbd_etcd_lock_abandon(c->key);
		c->key = NULL;
		c->stray = 0;           /* the revoke ended it */
		cohort_put(c);
	}
}

/* Every lock in d's table held here that is a cluster lock: fn(c, why)
 * with its cohort (bound now when it was not), in turn; fn may free the
 * lock and the cohort. */
static void
each_held(struct lbd *d, void (*fn)(struct lbd_cohort *, const char *),
    const char *why)
{
	struct lbd_cohort *c, *next;
	struct lbd_lock   *l;
	struct lockfs_err  err;
	size_t             i;

	for (i = 0; i < d->nbuckets; i++)
		for (l = d->buckets[i]; l != NULL; l = l->hash_next)
			if (held_here(l) && cohort_attach(l, &c, &err) == -1)
				log_warn("%s: %s", l->path, err.msg);
	for (c = LIST_FIRST(&d->cohorts); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (held_here(c->l))
			fn(c, why);
	}
}

/* A held lock of the previous run whose lease is kept: its key taken
 * back (the put finds it there: its create revision unchanged). */
static void
take_back(struct lbd_cohort *c, const char *why)
{
	(void)why;
	if (c->state == C_IDLE)
		take(c);
}

/* A held lock of the previous run whose lease is gone: lost. */
static void
lose(struct lbd_cohort *c, const char *why)
{
	if (c->key != NULL) {
		lbd_etcd_lock_abandon(c->key);
		c->key = NULL;
	}
	c->state = C_LOST;
	holders_end(c->l, why);         /* c may go */
}

/* One of the sweep's calls is over: once all are, the keys waited for
 * meanwhile are taken (a put must never race a delete of its own key). */
static void
sweep_done(struct lbd *d)
{
	if (--d->cohort_sweep == 0)
		lbd_cohorts_lease(d, 0);
}

/* A previous run's key's delete: told when it failed. */
static void
on_key_deleted(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd *d = arg;
	int         code;
	char        why[512];

	sweep_done(d);
	if (!ok || lbd_etcd_parse_delete(status, body, len, &code, why,
	    sizeof(why)) != LBD_ETCD_OK)
		log_warn("etcd: a key of the previous run could not be "
		    "deleted (%s); it ends with the lease", ok ? why : fail);
}

/* The adopted lease's keys (lease_keys): each one whose lock is not held
 * here, or is being taken, deleted; a key is PREFIX/NAME/<lease>. */
static void
on_lease_keys(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail)
{
	struct lbd        *d = arg;
	struct lbd_cohort *c;
	char             **keys, url[1024], why[512], *b, *slash;
	size_t             n, i;
	int                code, ours;

	if (!ok || lbd_etcd_parse_lease_keys(status, body, len, &keys, &n,
	    &code, why, sizeof(why)) != LBD_ETCD_OK) {
		log_warn("etcd: the previous run's keys on its lease: %s; "
		    "they end with the lease", ok ? why : fail);
		sweep_done(d);
		return;
	}
	for (i = 0; i < n; i++) {
		ours = 0;
		if ((slash = strrchr(keys[i], '/')) != NULL)
			LIST_FOREACH(c, &d->cohorts, entry)
				if (c->key != NULL && strncmp(c->prefix,
				    keys[i], (size_t)(slash + 1 - keys[i])) ==
				    0 && c->prefix[slash + 1 - keys[i]] ==
				    '\0')
					ours = 1;
		if (!ours && strncmp(keys[i], d->cfg.etcd_prefix,
		    strlen(d->cfg.etcd_prefix)) == 0 &&
		    (b = lbd_etcd_body_delete(keys[i])) != NULL) {
			log_info("etcd: key %s of the previous run, held by "
			    "nobody here: deleted", keys[i]);
			snprintf(url, sizeof(url), "%s/v3/kv/deleterange",
			    lbd_clusterd_endpoint(d));
			if (lbd_etcd_http_post(lbd_clusterd_http(d), url, b,
			    LBD_COHORT_CALL_MS, LBD_ETCD_REPLY_MAX,
			    on_key_deleted, d, why, sizeof(why)) != NULL)
				d->cohort_sweep++;
			free(b);
		}
		free(keys[i]);
	}
	free(keys);
	sweep_done(d);          /* the range's own */
}

/* lbd_cohorts_adopted: see clusterd.h. */
void
lbd_cohorts_adopted(struct lbd *d, int64_t id)
{
	char url[1024], why[256], *b;

	each_held(d, take_back, NULL);
	snprintf(url, sizeof(url), "%s/v3/lease/timetolive",
	    lbd_clusterd_endpoint(d));
	if ((b = lbd_etcd_body_lease_keys(id)) == NULL ||
	    lbd_etcd_http_post(lbd_clusterd_http(d), url, b,
	    LBD_COHORT_CALL_MS, LBD_ETCD_REPLY_MAX, on_lease_keys, d, why,
	    sizeof(why)) == NULL) {
		log_warn("etcd: the previous run's keys on lease %016" PRIx64
		    ": %s; they end with the lease", (uint64_t)id,
		    b == NULL ? "out of memory" : why);
		lbd_cohorts_lease(d, 0);        /* the waiters' keys */
	} else
		d->cohort_sweep++;
	free(b);
}

/* lbd_cohorts_previous_lost: see clusterd.h. */
void
lbd_cohorts_previous_lost(struct lbd *d, int64_t id, const char *how)
{
	char why[320];

	if (id != 0)
		snprintf(why, sizeof(why), "the previous run's etcd lease %016"
		    PRIx64 " %s, and with it the cluster lock", (uint64_t)id,
		    how != NULL ? how : "is gone");
	else
		snprintf(why, sizeof(why), "the previous run kept no etcd "
		    "lease (revoked at its stop, or lost), and with it went "
		    "the cluster lock");
	each_held(d, lose, why);
}

/* The name of cohort k's state (STATUS, LIST): "waiting" for a key
 * taken that waits behind another. */
static const char *
state_name(const struct lbd_cohort *k)
{
	static const char *const names[] = {
		"idle", "taking", "held", "lost", "releasing"
	};

	return k->state == C_TAKING && k->key != NULL &&
	    lbd_etcd_lock_waiting(k->key) ? "waiting" : names[k->state];
}

/* lbd_cohort_list_state: see cohort.h. */
const char *
lbd_cohort_list_state(const struct lbd_lock *l)
{
	return l->cohort != NULL ? state_name(l->cohort) : NULL;
}

/* A STATUS reply waiting for etcd's word on a cluster lock. */
struct lbd_cstatus {
	struct lbd_conn        *c;
	struct lbd_etcd_req    *req;
	struct lbp_out          o;         /* the reply, begun */
	char                   *prefix;
	char                   *mine;      /* this daemon's key then, or "" */
	LIST_ENTRY(lbd_cstatus) entry;     /* in d->cstatus */
};


static void
cstatus_free(struct lbd_cstatus *s)
{
	LIST_REMOVE(s, entry);
	free(s->prefix);
	free(s->mine);
	free(s);
}

/* etcd's word on a STATUS's lock: its fields added, the reply sent. */
static void
on_status_first(void *arg, int ok, long status, const char *body,
    size_t len, const char *fail)
{
	struct lbd_cstatus *s = arg;
	struct lbp_out      o = s->o;
	int64_t             rev, count;
	int                 code;
	char                key[PATH_MAX + 256], value[512], why[512];

	key[0] = '\0';
	count = 0;
	s->req = NULL;
	if (ok && lbd_etcd_parse_first(status, body, len, s->prefix, key,
	    sizeof(key), value, sizeof(value), &rev, &count, &code, why,
	    sizeof(why)) == LBD_ETCD_OK) {
		/* Waiting keys, but this daemon's own. */
		lbp_add_u64(&o, "cluster_waiters", (uint64_t)(count -
		    (key[0] != '\0') - (s->mine[0] != '\0' &&
		    strcmp(s->mine, key) != 0 && count > 1)));
		if (key[0] != '\0') {
			lbp_add_u64(&o, "cluster_revision", (uint64_t)rev);
			lbp_add_str(&o, "cluster_holder", value);
		}
	} else
		lbp_add_str(&o, "cluster_error", ok ? why : fail);
	/* A line has LBP_FIELDS_MAX fields at most: the holder, then the
	 * revision, go first when they do not fit. */
	if (lbp_end(&o) != 0 && key[0] != '\0') {
		o = s->o;
		lbp_add_u64(&o, "cluster_waiters", (uint64_t)(count - 1 -
		    (s->mine[0] != '\0' && strcmp(s->mine, key) != 0 &&
		    count > 1)));
		lbp_add_u64(&o, "cluster_revision", (uint64_t)rev);
		if (lbp_end(&o) != 0) {
			o = s->o;
			(void)lbp_end(&o);
		}
	}
	lbd_conn_send(s->c, &o);
	cstatus_free(s);
}

/* lbd_cohort_status: see cohort.h. */
int
lbd_cohort_status(struct lbd_conn *c, const char *path, struct lbd_lock *l,
    struct lbp_out *o)
{
	struct lbd         *d = c->d;
	struct lbd_cohort  *k = l != NULL ? l->cohort : NULL;
	struct lbd_cstatus *s;
	char                name[PATH_MAX], prefix[PATH_MAX + 64], url[1024];
	char                why[1024], *b;

	if (d->cluster == NULL || c->version < 2 || lbd_cluster_name(
	    d->cfg.cluster_dir, path, name, sizeof(name)) != 1 ||
	    lbd_cluster_prefix(d->cfg.etcd_prefix, name, prefix,
	    sizeof(prefix)) < 0)
		return 0;
	if (k == NULL)
		LIST_FOREACH(k, &d->cohorts, entry)
			if (strcmp(k->path, path) == 0)
				break;
	lbp_add_str(o, "cluster_state", k == NULL ? "idle" : state_name(k));
	if (k != NULL && k->key != NULL)
		lbp_add_str(o, "cluster_key", lbd_etcd_lock_key(k->key));
	if (lbd_cohort_leaseless(d, why, sizeof(why)) != NULL) {
		lbp_add_str(o, "cluster_error", why);
		return 0;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->prefix = strdup(prefix)) == NULL ||
	    (s->mine = strdup(k != NULL && k->key != NULL ?
	    lbd_etcd_lock_key(k->key) : "")) == NULL ||
	    (b = lbd_etcd_body_first(prefix)) == NULL) {
		if (s != NULL) {
			free(s->prefix);
			free(s);
		}
		lbp_add_str(o, "cluster_error", "out of memory");
		return 0;
	}
	s->c = c;
	s->o = *o;
	snprintf(url, sizeof(url), "%s/v3/kv/range", lbd_clusterd_endpoint(d));
	s->req = lbd_etcd_http_post(lbd_clusterd_http(d), url, b,
	    LBD_COHORT_CALL_MS, LBD_ETCD_REPLY_MAX, on_status_first, s, why,
	    sizeof(why));
	free(b);
	if (s->req == NULL) {
		free(s->prefix);
		free(s->mine);
		free(s);
		lbp_add_str(o, "cluster_error", why);
		return 0;
	}
	LIST_INSERT_HEAD(&d->cstatus, s, entry);
	return 1;
}

/* lbd_cohort_status_forget: see cohort.h. */
void
lbd_cohort_status_forget(struct lbd_conn *c)
{
	struct lbd_cstatus *s, *next;

	for (s = LIST_FIRST(&c->d->cstatus); s != NULL; s = next) {
		next = LIST_NEXT(s, entry);
		if (s->c != c)
			continue;
		lbd_etcd_http_cancel(s->req);
		cstatus_free(s);
	}
}
