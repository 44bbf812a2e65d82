/*
 * etcdlock.c: one lock key in etcd (etcdlock.h), etcd's own algorithm:
 *
 *   take --> TXN: the key put on the lease unless it exists; the
 *             |   prefix's first key by create revision read back
 *             |  ours first ---------------------------------> HELD
 *             v  else
 *            FIND: the key created last before ours -- none --> HELD
 *             ^    | one
 *             |    v
 *             |   WATCH it (WAITING told) from the range's header revision + 1 (a
 *             +-- watch from an older one is caught up only by etcd's
 *    deleted, or  100 ms loop)
 *    etcd canceled
 *    the watch
 *
 *   any call failing, or a reply that is not etcd's: FAILED (told)
 *   release, from any state: DELETING (the key deleted) --> RELEASED
 *   (told), freed
 *
 * One request at most is in flight (k->req).  Events go to the owner
 * last in each handler.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi.h"
#include "etcdlock.h"

enum lock_state { TXN, FIND, WATCH, HELD, FAILED, DELETING };

struct lbd_etcd_lock {
	struct lbd_etcd_http *h;
	char                 *endpoint, *prefix, *key, *value;
	int64_t               lease;
	int64_t               mine;       /* the key's create revision */
	uint64_t              watch_at;   /* WATCH: its start (uv_hrtime) */
	long                  timeout_ms;
	enum lock_state       state;
	struct lbd_etcd_req  *req;
	lbd_etcd_lock_cb     *cb;
	void                 *arg;
};

static void find(struct lbd_etcd_lock *k);

/* Fails the lock: the owner told why. */
static void
fail(struct lbd_etcd_lock *k, const char *what, const char *why)
{
	char msg[768];

	k->state = FAILED;
	snprintf(msg, sizeof(msg), "lock key %s: %s at %s: %s", k->key, what,
	    k->endpoint, why);
	k->cb(k->arg, LBD_ETCD_LOCK_FAILED, 0, msg);
}

/* Posts body (freed) to the endpoint's path; fails the lock when it
 * cannot start. */
static void
post(struct lbd_etcd_lock *k, const char *path, char *body,
    lbd_etcd_http_cb *cb)
{
	char url[1024], why[256];

	if (body == NULL) {
		fail(k, path, "out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s%s", k->endpoint, path);
	k->req = lbd_etcd_http_post(k->h, url, body, k->timeout_ms,
	    LBD_ETCD_REPLY_MAX, cb, k, why, sizeof(why));
	free(body);
	if (k->req == NULL)
		fail(k, path, why);
}

static void
held(struct lbd_etcd_lock *k)
{
	k->state = HELD;
	k->cb(k->arg, LBD_ETCD_LOCK_HELD, k->mine, NULL);
}

static void
on_txn(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail_why)
{
	struct lbd_etcd_lock *k = arg;
	int64_t owner, rev;
	int code;
	char why[512];

	k->req = NULL;
	if (!ok) {
		fail(k, "the lock transaction", fail_why);
		return;
	}
	if (lbd_etcd_parse_lock_txn(status, body, len, &k->mine, &owner, &rev,
	    &code, why, sizeof(why)) != LBD_ETCD_OK) {
		fail(k, "the lock transaction", why);
		return;
	}
	if (owner == k->mine)
		held(k);
	else
		find(k);
}

static void
on_deleted_line(void *arg, const char *line, size_t len)
{
	struct lbd_etcd_lock *k = arg;
	enum lbd_etcd_outcome r;
	int deleted, code;
	char why[512];

	r = lbd_etcd_parse_watch_line(line, len, &deleted, &code, why,
	    sizeof(why));
	if (r == LBD_ETCD_OK && !deleted)
		return;
	lbd_etcd_http_cancel(k->req);
	k->req = NULL;
	if (r == LBD_ETCD_BAD)
		fail(k, "the watch", why);
	else
		find(k);        /* deleted, or etcd canceled the watch */
}

static void
on_watch_end(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail_why)
{
	struct lbd_etcd_lock *k = arg;
	char why[64];

	(void)body;
	(void)len;
	k->req = NULL;
	/* Its life over: looked for again and watched anew, so that a
	 * member that hangs, its connection open, holds no wait for ever
	 * (the look through it fails within its timeout). */
	if (!ok && uv_hrtime() - k->watch_at >=
	    (uint64_t)(LBD_ETCD_WATCH_LIFE_MS - 100) * 1000000) {
		find(k);
		return;
	}
	snprintf(why, sizeof(why), "HTTP %ld, the stream ended", status);
	fail(k, "the watch", ok ? why : fail_why);
}

static void
on_find(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail_why)
{
	struct lbd_etcd_lock *k = arg;
	char before[1024], url[1024], why[512], *b;
	int64_t rev;
	int code;

	k->req = NULL;
	if (!ok) {
		fail(k, "the range before the key", fail_why);
		return;
	}
	if (lbd_etcd_parse_predecessor(status, body, len, k->prefix, before,
	    sizeof(before), &rev, &code, why, sizeof(why)) != LBD_ETCD_OK) {
		fail(k, "the range before the key", why);
		return;
	}
	if (before[0] == '\0') {
		held(k);
		return;
	}
	if ((b = lbd_etcd_body_watch(before, rev + 1)) == NULL) {
		fail(k, "the watch", "out of memory");
		return;
	}
	k->state = WATCH;
	snprintf(url, sizeof(url), "%s/v3/watch", k->endpoint);
	k->watch_at = uv_hrtime();
	k->req = lbd_etcd_http_stream(k->h, url, b, k->timeout_ms,
	    LBD_ETCD_WATCH_LIFE_MS, LBD_ETCD_REPLY_MAX, on_deleted_line,
	    on_watch_end, k, why, sizeof(why));
	free(b);
	if (k->req == NULL)
		fail(k, "the watch", why);
	else
		k->cb(k->arg, LBD_ETCD_LOCK_WAITING, k->mine, NULL);
}

/* Looks for the key created last before ours. */
static void
find(struct lbd_etcd_lock *k)
{
	k->state = FIND;
	post(k, "/v3/kv/range", lbd_etcd_body_predecessor(k->prefix, k->mine),
	    on_find);
}

static void
lock_free(struct lbd_etcd_lock *k)
{
	if (k->req != NULL)
		lbd_etcd_http_cancel(k->req);
	free(k->endpoint);
	free(k->prefix);
	free(k->key);
	free(k->value);
	free(k);
}

static void
on_delete(void *arg, int ok, long status, const char *body, size_t len,
    const char *fail_why)
{
	struct lbd_etcd_lock *k = arg;
	int code;
	char why[512], msg[768];

	k->req = NULL;
	if (ok && lbd_etcd_parse_delete(status, body, len, &code, why,
	    sizeof(why)) == LBD_ETCD_OK)
		k->cb(k->arg, LBD_ETCD_LOCK_RELEASED, k->mine, NULL);
	else {
		snprintf(msg, sizeof(msg), "lock key %s: the delete at %s: "
		    "%s; it ends with its lease", k->key, k->endpoint,
		    ok ? why : fail_why);
		k->cb(k->arg, LBD_ETCD_LOCK_RELEASED, k->mine, msg);
	}
	lock_free(k);
}

struct lbd_etcd_lock *
lbd_etcd_lock_take(struct lbd_etcd_http *h, const char *endpoint,
    const char *prefix, int64_t lease, const char *value, long timeout_ms,
    lbd_etcd_lock_cb *cb, void *arg, char *why, size_t size)
{
	struct lbd_etcd_lock *k;
	char *b;

	if (lease <= 0) {
		snprintf(why, size, "a lock key needs a live lease");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->endpoint = strdup(endpoint)) == NULL ||
	    (k->prefix = strdup(prefix)) == NULL ||
	    (k->value = strdup(value)) == NULL ||
	    (k->key = malloc(strlen(prefix) + 17)) == NULL)
		goto out;
	sprintf(k->key, "%s%" PRIx64, prefix, (uint64_t)lease);
	k->h = h;
	k->lease = lease;
	k->timeout_ms = timeout_ms;
	k->cb = cb;
	k->arg = arg;
	k->state = TXN;
	if ((b = lbd_etcd_body_lock_txn(prefix, k->key, value, lease))
	    == NULL)
		goto out;
	{
		char url[1024];

		snprintf(url, sizeof(url), "%s/v3/kv/txn", endpoint);
		k->req = lbd_etcd_http_post(h, url, b, timeout_ms,
		    LBD_ETCD_REPLY_MAX, on_txn, k, why, size);
	}
	free(b);
	if (k->req == NULL) {
		lock_free(k);
		return NULL;
	}
	return k;
out:
	snprintf(why, size, "a lock key: out of memory");
	if (k != NULL)
		lock_free(k);
	return NULL;
}

const char *
lbd_etcd_lock_key(const struct lbd_etcd_lock *k)
{
	return k->key;
}

int
lbd_etcd_lock_waiting(const struct lbd_etcd_lock *k)
{
	return k->state == WATCH;
}

int
lbd_etcd_lock_release(struct lbd_etcd_lock *k, char *why, size_t size)
{
	char url[1024], *b;

	if (k->req != NULL) {
		lbd_etcd_http_cancel(k->req);
		k->req = NULL;
	}
	k->state = DELETING;
	snprintf(url, sizeof(url), "%s/v3/kv/deleterange", k->endpoint);
	if ((b = lbd_etcd_body_delete(k->key)) != NULL)
		k->req = lbd_etcd_http_post(k->h, url, b, k->timeout_ms,
		    LBD_ETCD_REPLY_MAX, on_delete, k, why, size);
	else
		snprintf(why, size, "out of memory");
	free(b);
	if (k->req != NULL)
		return 0;
	lock_free(k);
	return -1;
}

void
lbd_etcd_lock_abandon(struct lbd_etcd_lock *k)
{
	lock_free(k);
}
