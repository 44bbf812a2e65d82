/*
 * check_etcd.c: the daemon's etcd client (daemon/etcdhttp.c, etcdapi.c,
 * etcdlease.c) on a real libuv loop, against a real etcd started by the
 * test (testetcd.h) and against a stand-in that answers what etcd never
 * would: the lease granted through a second endpoint when the first does
 * not answer, kept alive past its TTL (etcd itself says so), revoked at
 * close; declared lost before its deadline when etcd hangs (SIGSTOP),
 * and, once etcd is back from a restart that restored it, revoked and
 * replaced; the replies' parsers on malformed input; the lease on
 * malformed, failed, endless and missing replies.  Without etcd
 * (etcd-server) the tests that need it say so and pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <uv.h>

#include "../daemon/cluster.h"
#include "../daemon/etcdapi.h"
#include "../daemon/etcdhttp.h"
#include "../daemon/etcdlease.h"
#include "../daemon/etcdlock.h"
#include "testetcd.h"
#include "testlib.h"

#define TTL 2                 /* etcd's least with its default timing */
#define WATCHDOG_MS 60000     /* a test that has not ended by then fails */

/* ------------------------------------------------------------------ */
/* The replies' parsers, on what etcd sends and what it never would.   */

START_TEST(parse_replies)
{
	static const char grant[] = "{\"header\":{\"cluster_id\":\"1\","
	    "\"member_id\":\"2\",\"revision\":\"7\",\"raft_term\":\"2\"},"
	    "\"ID\":\"4111120466628830469\",\"TTL\":\"5\"}";
	static const char *const bad_grants[] = {
		"", "nope", "[]", "{\"ID\":\"12\"}", "{\"TTL\":\"5\"}",
		"{\"ID\":\"abc\",\"TTL\":\"5\"}",
		"{\"ID\":\"-3\",\"TTL\":\"5\"}",
		"{\"ID\":\"99999999999999999999\",\"TTL\":\"5\"}",
		"{\"ID\":\"12\",\"TTL\":\"5x\"}",
		"{\"ID\":{},\"TTL\":\"5\"}",
		"{\"ID\":\"12\",\"TTL\":true}",
		"{\"ID\":\"12\",\"TTL\":\"5\",\"header\":[]}",
		"{\"ID\":\"12\",\"TTL\":\"5\",\"header\":{\"revision\":\"-1\"}}",
		"{\"ID\":\"12\",\"ID\":\"13\",\"TTL\":\"5\"}",
		"{\"error\":\"x\"}", "{\"error\":\"x\",\"code\":\"y\"}",
		"{\"error\":\"x\",\"code\":99}",
		"{\"ID\":\"12\",\"TTL\":\"5\"", "{\"ID\":\"1\\u0000\"}",
	};
	int64_t id, ttl, rev;
	int code;
	char why[256];
	size_t i;

	ck_assert_int_eq(lbd_etcd_parse_grant(200, grant, strlen(grant), &id,
	    &ttl, &rev, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert(id == INT64_C(4111120466628830469));
	ck_assert(ttl == 5 && rev == 7);
	for (i = 0; i < sizeof(bad_grants) / sizeof(*bad_grants); i++) {
		why[0] = '\0';
		ck_assert_msg(lbd_etcd_parse_grant(200, bad_grants[i],
		    strlen(bad_grants[i]), &id, &ttl, &rev, &code, why,
		    sizeof(why)) == LBD_ETCD_BAD, "taken: %s", bad_grants[i]);
		ck_assert_msg(why[0] != '\0', "no reason: %s", bad_grants[i]);
	}
	/* A 200 that is not one, and a NULL body. */
	ck_assert_int_eq(lbd_etcd_parse_grant(500, grant, strlen(grant), &id,
	    &ttl, &rev, &code, why, sizeof(why)), LBD_ETCD_BAD);
	ck_assert_int_eq(lbd_etcd_parse_grant(200, NULL, 0, &id, &ttl, &rev,
	    &code, why, sizeof(why)), LBD_ETCD_BAD);
	/* etcd's errors, plain and streamed. */
	{
		static const char e1[] = "{\"error\":\"etcdserver: requested "
		    "lease not found\",\"message\":\"etcdserver: requested "
		    "lease not found\",\"code\":5}";
		static const char e2[] = "{\"error\":{\"grpc_code\":5,"
		    "\"http_code\":404,\"message\":\"gone\"}}";

		ck_assert_int_eq(lbd_etcd_parse_revoke(404, e1, strlen(e1),
		    &code, why, sizeof(why)), LBD_ETCD_ERROR);
		ck_assert_int_eq(code, LBD_ETCD_NOT_FOUND);
		ck_assert_ptr_nonnull(strstr(why, "lease not found"));
		ck_assert_int_eq(lbd_etcd_parse_keepalive(200, e2, strlen(e2),
		    12, &ttl, &code, why, sizeof(why)), LBD_ETCD_ERROR);
		ck_assert_int_eq(code, LBD_ETCD_NOT_FOUND);
	}
	/* Keepalives: live, expired (TTL left out), another lease's. */
	{
		static const char live[] = "{\"result\":{\"header\":{\"revision\":"
		    "\"1\"},\"ID\":\"12\",\"TTL\":\"5\"}}";
		static const char gone[] = "{\"result\":{\"ID\":\"12\"}}";
		static const char other[] = "{\"result\":{\"ID\":\"13\","
		    "\"TTL\":\"5\"}}";
		static const char none[] = "{\"ID\":\"12\",\"TTL\":\"5\"}";

		ck_assert_int_eq(lbd_etcd_parse_keepalive(200, live,
		    strlen(live), 12, &ttl, &code, why, sizeof(why)),
		    LBD_ETCD_OK);
		ck_assert(ttl == 5);
		ck_assert_int_eq(lbd_etcd_parse_keepalive(200, gone,
		    strlen(gone), 12, &ttl, &code, why, sizeof(why)),
		    LBD_ETCD_OK);
		ck_assert(ttl == 0);
		ck_assert_int_eq(lbd_etcd_parse_keepalive(200, other,
		    strlen(other), 12, &ttl, &code, why, sizeof(why)),
		    LBD_ETCD_BAD);
		ck_assert_int_eq(lbd_etcd_parse_keepalive(200, none,
		    strlen(none), 12, &ttl, &code, why, sizeof(why)),
		    LBD_ETCD_BAD);
	}
}
END_TEST

/* The lock key's replies: etcd's shapes, and what it never sends. */
START_TEST(parse_lock_replies)
{
	static const char won[] = "{\"header\":{\"revision\":\"4\"},"
	    "\"succeeded\":true,\"responses\":[{\"response_put\":{}},"
	    "{\"response_range\":{\"kvs\":[{\"key\":\"cGZ4L2FiYw==\","
	    "\"create_revision\":\"4\"}],\"count\":\"1\"}}]}";
	static const char behind[] = "{\"header\":{\"revision\":\"9\"},"
	    "\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"eA==\","
	    "\"create_revision\":\"7\"}]}},{\"response_range\":{\"kvs\":"
	    "[{\"key\":\"eQ==\",\"create_revision\":\"5\"}]}}]}";
	static const char *const bad_txns[] = {
		"{\"succeeded\":\"yes\"}",
		"{\"responses\":[]}",
		"{\"responses\":[{\"response_range\":{\"kvs\":[1]}}]}",
		"{\"responses\":[{\"response_range\":{\"kvs\":[{"
		    "\"create_revision\":\"x\"}]}}]}",
		"{\"responses\":[{\"response_range\":{\"kvs\":[{"
		    "\"create_revision\":\"0\"}]}}]}",
		"{\"responses\":[{\"response_range\":{}}]}",
		"{\"succeeded\":true,\"header\":{}}",
	};
	/* "/p/a" and "/q/a" in base64. */
	static const char pred[] = "{\"header\":{\"revision\":\"12\"},"
	    "\"kvs\":[{\"key\":\"L3AvYQ==\",\"create_revision\":\"3\"}]}";
	static const char outside[] = "{\"kvs\":[{\"key\":\"L3EvYQ==\","
	    "\"create_revision\":\"3\"}]}";
	static const char notb64[] = "{\"kvs\":[{\"key\":\"L3Av!Q==\","
	    "\"create_revision\":\"3\"}]}";
	int64_t mine, owner, rev;
	int code, deleted;
	char why[256], key[64];
	size_t i;

	ck_assert_int_eq(lbd_etcd_parse_lock_txn(200, won, strlen(won), &mine,
	    &owner, &rev, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert(mine == 4 && owner == 4);
	ck_assert_int_eq(lbd_etcd_parse_lock_txn(200, behind, strlen(behind),
	    &mine, &owner, &rev, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert(mine == 7 && owner == 5 && rev == 9);
	for (i = 0; i < sizeof(bad_txns) / sizeof(*bad_txns); i++)
		ck_assert_msg(lbd_etcd_parse_lock_txn(200, bad_txns[i],
		    strlen(bad_txns[i]), &mine, &owner, &rev, &code, why,
		    sizeof(why)) == LBD_ETCD_BAD, "taken: %s", bad_txns[i]);

	ck_assert_int_eq(lbd_etcd_parse_predecessor(200, pred, strlen(pred),
	    "/p/", key, sizeof(key), &rev, &code, why, sizeof(why)),
	    LBD_ETCD_OK);
	ck_assert_str_eq(key, "/p/a");
	ck_assert(rev == 12);
	ck_assert_int_eq(lbd_etcd_parse_predecessor(200, "{}", 2, "/p/", key,
	    sizeof(key), &rev, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert_str_eq(key, "");
	ck_assert_int_eq(lbd_etcd_parse_predecessor(200, outside,
	    strlen(outside), "/p/", key, sizeof(key), &rev, &code, why,
	    sizeof(why)), LBD_ETCD_BAD);
	ck_assert_int_eq(lbd_etcd_parse_predecessor(200, notb64,
	    strlen(notb64), "/p/", key, sizeof(key), &rev, &code, why,
	    sizeof(why)), LBD_ETCD_BAD);
	ck_assert_int_eq(lbd_etcd_parse_predecessor(200, pred, strlen(pred),
	    "/p/", key, 4, &rev, &code, why, sizeof(why)), LBD_ETCD_BAD);

	ck_assert_int_eq(lbd_etcd_parse_watch_line("{\"result\":{"
	    "\"created\":true}}", 27, &deleted, &code, why, sizeof(why)),
	    LBD_ETCD_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(lbd_etcd_parse_watch_line("{\"result\":{\"events\":"
	    "[{\"kv\":{}},{\"type\":\"DELETE\",\"kv\":{}}]}}", 59, &deleted,
	    &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(lbd_etcd_parse_watch_line("{\"result\":{"
	    "\"canceled\":true}}", 28, &deleted, &code, why, sizeof(why)),
	    LBD_ETCD_ERROR);
	ck_assert_int_eq(lbd_etcd_parse_watch_line("{\"result\":{\"events\":"
	    "{}}}", 24, &deleted, &code, why, sizeof(why)), LBD_ETCD_BAD);
	ck_assert_int_eq(lbd_etcd_parse_watch_line("{\"result\":{\"events\":"
	    "[{\"type\":5}]}}", 34, &deleted, &code, why, sizeof(why)),
	    LBD_ETCD_BAD);
	ck_assert_int_eq(lbd_etcd_parse_watch_line("[", 1, &deleted, &code,
	    why, sizeof(why)), LBD_ETCD_BAD);
}
END_TEST

/* A lease's keys (timetolive with keys): decoded, or refused. */
START_TEST(parse_lease_keys)
{
	/* "/p/a" and "/q/b" in base64. */
	static const char two[] = "{\"ID\":\"5\",\"TTL\":\"4\",\"keys\":"
	    "[\"L3AvYQ==\",\"L3EvYg==\"]}";
	static const char *const bad[] = {
		"{\"keys\":\"L3AvYQ==\"}",
		"{\"keys\":[1]}",
		"{\"keys\":[\"L3Av!Q==\"]}",
		"{\"keys\":[\"AA==\"]}",           /* a NUL byte */
		"[",
	};
	char **keys, why[256], *body;
	size_t n, i;
	int code;

	ck_assert_int_eq(lbd_etcd_parse_lease_keys(200, two, strlen(two),
	    &keys, &n, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(keys[0], "/p/a");
	ck_assert_str_eq(keys[1], "/q/b");
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	ck_assert_int_eq(lbd_etcd_parse_lease_keys(200, "{\"ID\":\"5\"}", 10,
	    &keys, &n, &code, why, sizeof(why)), LBD_ETCD_OK);
	ck_assert(n == 0 && keys == NULL);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert_msg(lbd_etcd_parse_lease_keys(200, bad[i],
		    strlen(bad[i]), &keys, &n, &code, why, sizeof(why)) ==
		    LBD_ETCD_BAD, "taken: %s", bad[i]);
		ck_assert(n == 0 && keys == NULL);
	}
	body = lbd_etcd_body_lease_keys(7);
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_nonnull(strstr(body, "\"ID\": \"7\"") != NULL ? body :
	    strstr(body, "\"ID\":\"7\""));
	ck_assert_ptr_nonnull(strstr(body, "true"));
	free(body);
}
END_TEST

START_TEST(base64)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob",
	    "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v",
	    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	static const char *const bad[] = { "Z", "Zg=", "Zg=a", "Z===",
	    "Zm9v!A==", "=Zg=", "Zg==Zg==" };
	unsigned char out[16];
	char text[16];
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
		ck_assert_int_eq(lbd_etcd_b64_encode(plain[i],
		    strlen(plain[i]), text, sizeof(text)),
		    (int)strlen(coded[i]));
		ck_assert_str_eq(text, coded[i]);
		ck_assert_int_eq(lbd_etcd_b64_decode(coded[i], out,
		    sizeof(out)), (int)strlen(plain[i]));
		ck_assert(memcmp(out, plain[i], strlen(plain[i])) == 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(lbd_etcd_b64_decode(bad[i], out, sizeof(out))
		    == -1, "decoded: %s", bad[i]);
	ck_assert_int_eq(lbd_etcd_b64_encode("foobar", 6, text, 8), -1);
	ck_assert_int_eq(lbd_etcd_b64_decode("Zm9vYmFy", out, 5), -1);
}
END_TEST

/* Cluster locks' names under cluster_dir, and their keys' prefix in
 * etcd: '/' and '%' escaped, so that no lock's keys fall under
 * another's. */
START_TEST(cluster_names)
{
	char name[64], key[64];

	ck_assert_int_eq(lbd_cluster_name("/c", "/c/x", name, sizeof(name)),
	    1);
	ck_assert_str_eq(name, "x");
	ck_assert_int_eq(lbd_cluster_name("/c", "/c/x/y", name,
	    sizeof(name)), 1);
	ck_assert_str_eq(name, "x/y");
	ck_assert_int_eq(lbd_cluster_name("/c", "/c", name, sizeof(name)), 0);
	ck_assert_int_eq(lbd_cluster_name("/c", "/c/", name, sizeof(name)),
	    0);
	ck_assert_int_eq(lbd_cluster_name("/c", "/cx/y", name, sizeof(name)),
	    0);
	ck_assert_int_eq(lbd_cluster_name("", "/c/x", name, sizeof(name)), 0);
	ck_assert_int_eq(lbd_cluster_name("/c", "/c/abcdef", name, 4), -1);

	ck_assert_int_eq(lbd_cluster_prefix("/p", "x", key, sizeof(key)), 5);
	ck_assert_str_eq(key, "/p/x/");
	ck_assert_int_gt(lbd_cluster_prefix("/p", "x/y", key, sizeof(key)),
	    0);
	ck_assert_str_eq(key, "/p/x%2Fy/");
	ck_assert_int_gt(lbd_cluster_prefix("/p", "x%2Fy", key, sizeof(key)),
	    0);
	ck_assert_str_eq(key, "/p/x%252Fy/");
	/* x's keys and x/y's never share a prefix. */
	{
		char x[64], xy[64];

		lbd_cluster_prefix("/p", "x", x, sizeof(x));
		lbd_cluster_prefix("/p", "x/y", xy, sizeof(xy));
		ck_assert(strncmp(xy, x, strlen(x)) != 0);
	}
	ck_assert_int_eq(lbd_cluster_prefix("/p", "x/y", key, 9), -1);
	ck_assert_int_eq(lbd_cluster_prefix("/p", "x/y", key, 10), 9);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A lease on a loop.                                                   */

/* What a test's lease has told it, and where the test stands. */
struct run {
	uv_loop_t              loop;
	uv_timer_t             step, watchdog;
	struct lbd_etcd_http  *h;
	struct lbd_etcd_lease *l;
	struct tl_etcd        *etcd;
	unsigned               granted, lost, trouble, renewed;
	int64_t                first_id, id, lost_id;
	uint64_t               granted_at, lost_at;
	uint64_t               deadline;      /* the last one seen live */
	int                    phase;
	int                    closed;
	char                   last_why[600];
	void                 (*on_step)(struct run *);
};

static void
lease_event(void *arg, enum lbd_etcd_lease_event ev, int64_t id,
    const char *why)
{
	struct run *r = arg;

	switch (ev) {
	case LBD_ETCD_LEASE_GRANTED:
		r->granted++;
		r->id = id;
		if (r->first_id == 0)
			r->first_id = id;
		r->granted_at = uv_hrtime();
		r->deadline = lbd_etcd_lease_deadline(r->l);
		break;
	case LBD_ETCD_LEASE_LOST:
		r->lost++;
		r->lost_id = id;
		r->lost_at = uv_hrtime();
		ck_assert_ptr_nonnull(why);
		snprintf(r->last_why, sizeof(r->last_why), "%s", why);
		break;
	case LBD_ETCD_LEASE_ADOPTED:
		ck_abort_msg("lease %lld adopted, none given to adopt",
		    (long long)id);
		break;
	case LBD_ETCD_LEASE_GONE:
		ck_abort_msg("lease %lld gone, none given to adopt",
		    (long long)id);
		break;
	case LBD_ETCD_LEASE_RENEWED:
		ck_assert_int_eq(id, r->id);
		r->renewed++;
		break;
	case LBD_ETCD_LEASE_TROUBLE:
		r->trouble++;
		ck_assert_ptr_nonnull(why);
		ck_assert(why[0] != '\0');
		snprintf(r->last_why, sizeof(r->last_why), "%s", why);
		break;
	}
}

static void
on_step(uv_timer_t *t)
{
	struct run *r = t->data;

	if (r->l != NULL && lbd_etcd_lease_deadline(r->l) != 0)
		r->deadline = lbd_etcd_lease_deadline(r->l);
	r->on_step(r);
}

static void
on_watchdog(uv_timer_t *t)
{
	struct run *r = t->data;

	ck_abort_msg("the test did not end in %d ms (phase %d, granted %u, "
	    "lost %u, trouble %u, last: %s)", WATCHDOG_MS, r->phase,
	    r->granted, r->lost, r->trouble, r->last_why);
}

static void
closed_done(void *arg)
{
	struct run *r = arg;

	r->closed = 1;
	lbd_etcd_http_close(r->h);
	r->h = NULL;
	uv_timer_stop(&r->step);
	uv_timer_stop(&r->watchdog);
	uv_close((uv_handle_t *)&r->step, NULL);
	uv_close((uv_handle_t *)&r->watchdog, NULL);
}

/* Ends the run: the lease closed (revoked), then the client. */
static void
run_end(struct run *r)
{
	struct lbd_etcd_lease *l = r->l;

	r->l = NULL;
	uv_timer_stop(&r->step);
	lbd_etcd_lease_close(l, closed_done, r);
}

/* Runs a lease on endpoints until on_step ends it; asserts every handle
 * closed. */
static void
run_lease(struct run *r, const char *const *endpoints, unsigned n,
    void (*step)(struct run *))
{
	char why[256];

	ck_assert_int_eq(uv_loop_init(&r->loop), 0);
	r->on_step = step;
	r->h = lbd_etcd_http_new(&r->loop, why, sizeof(why));
	ck_assert_msg(r->h != NULL, "%s", why);
	r->l = lbd_etcd_lease_new(&r->loop, r->h, endpoints, n, TTL, 0,
	    lease_event, r, why, sizeof(why));
	ck_assert_msg(r->l != NULL, "%s", why);
	uv_timer_init(&r->loop, &r->step);
	uv_timer_init(&r->loop, &r->watchdog);
	r->step.data = r;
	r->watchdog.data = r;
	uv_timer_start(&r->step, on_step, 20, 20);
	uv_timer_start(&r->watchdog, on_watchdog, WATCHDOG_MS, 0);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	ck_assert(r->closed);
	ck_assert_int_eq(uv_loop_close(&r->loop), 0);
}

/* The lease id's TTL as etcd tells it now: -1 when etcd has no such
 * lease. */
static long long
etcd_ttl(struct tl_etcd *e, int64_t id)
{
	char body[64], out[1024], *p;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
	ck_assert_int_eq(tl_etcd_post(e, "/v3/lease/timetolive", body, out,
	    sizeof(out)), 200);
	if ((p = strstr(out, "\"TTL\":\"")) == NULL)
		return 0;
	return strtoll(p + 7, NULL, 10);
}

static int
etcd_begin(struct tl_etcd *e, const char *test)
{
	struct tl_place p;

	if (tl_etcd_prog() == NULL) {
		printf("%s: " TL_SKIP "etcd (etcd-server) is not installed\n",
		    test);
		return 0;
	}
	tl_place_make(&p, "etcd");
	ck_assert_int_eq(tl_etcd_start(e, p.dir), 0);
	return 1;
}

/* kept_alive: granted (through the second endpoint), then kept alive
 * past twice its TTL, then revoked at close. */
static void
kept_alive_step(struct run *r)
{
	if (r->granted == 0)
		return;
	if ((uv_hrtime() - r->granted_at) / 1000000u < 2 * TTL * 1000 + 500)
		return;
	ck_assert_uint_eq(r->granted, 1);
	ck_assert_uint_eq(r->lost, 0);
	ck_assert_uint_ge(lbd_etcd_lease_keepalives(r->l), 3);
	/* Each acknowledged keepalive told (RENEWED). */
	ck_assert_uint_eq(r->renewed, lbd_etcd_lease_keepalives(r->l));
	ck_assert(lbd_etcd_lease_id(r->l) == r->id);
	ck_assert_int_gt(etcd_ttl(r->etcd, r->id), 0);
	run_end(r);
}

START_TEST(lease_kept_alive)
{
	struct tl_etcd e;
	struct run r;
	char dead[64];
	const char *endpoints[2];

	if (!etcd_begin(&e, "lease_kept_alive"))
		return;
	memset(&r, 0, sizeof(r));
	r.etcd = &e;
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", tl_free_port());
	endpoints[0] = dead;
	endpoints[1] = e.url;
	run_lease(&r, endpoints, 2, kept_alive_step);
	/* The first endpoint refused: said so, and the second granted. */
	ck_assert_uint_ge(r.trouble, 1);
	/* Revoked at close: etcd no longer has it. */
	ck_assert_int_eq(etcd_ttl(&e, r.id), -1);
	tl_etcd_stop(&e);
}
END_TEST

/* lost: etcd hangs (SIGSTOP) after a keepalive: the lease is declared
 * lost no later than its deadline; etcd killed and started again (which
 * restores the lease with a fresh TTL): the lost lease is revoked and a
 * new one granted. */
static void
lost_step(struct run *r)
{
	switch (r->phase) {
	case 0:
		if (r->granted == 1 && lbd_etcd_lease_keepalives(r->l) >= 1) {
			tl_etcd_signal(r->etcd, SIGSTOP);
			r->phase = 1;
		}
		break;
	case 1:
		if (r->lost == 0)
			break;
		/* Told at the deadline at the latest: the last acknowledged
		 * keepalive's send time + TTL. */
		ck_assert_msg(r->lost_at <= r->deadline, "lost %" PRIu64
		    " ns after the deadline", r->lost_at - r->deadline);
		ck_assert(r->lost_id == r->first_id);
		ck_assert_int_eq(lbd_etcd_lease_id(r->l), 0);
		tl_etcd_stop(r->etcd);
		ck_assert_int_eq(tl_etcd_restart(r->etcd), 0);
		r->phase = 2;
		break;
	case 2:
		if (r->granted < 2)
			break;
		ck_assert(r->id != r->first_id);
		/* The old lease, restored by etcd's restart, was revoked
		 * before the new one was asked for. */
		ck_assert_int_eq(etcd_ttl(r->etcd, r->first_id), -1);
		ck_assert_int_gt(etcd_ttl(r->etcd, r->id), 0);
		run_end(r);
		break;
	}
}

START_TEST(lease_lost)
{
	struct tl_etcd e;
	struct run r;
	const char *endpoints[1];

	if (!etcd_begin(&e, "lease_lost"))
		return;
	memset(&r, 0, sizeof(r));
	r.etcd = &e;
	endpoints[0] = e.url;
	run_lease(&r, endpoints, 1, lost_step);
	ck_assert_uint_eq(r.lost, 1);
	ck_assert_uint_ge(r.trouble, 1);
	tl_etcd_stop(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lock keys, against etcdctl lock.                                     */

/* What a test's lock key has told it. */
struct keyrun {
	struct lbd_etcd_lock *k;
	unsigned              held, failed, released, waiting;
	int64_t               token;
	char                  why[600];
};

static void
key_event(void *arg, enum lbd_etcd_lock_event ev, int64_t token,
    const char *why)
{
	struct keyrun *kr = arg;

	switch (ev) {
	case LBD_ETCD_LOCK_HELD:
		kr->held++;
		kr->token = token;
		break;
	case LBD_ETCD_LOCK_WAITING:
		kr->waiting++;
		break;
	case LBD_ETCD_LOCK_FAILED:
		kr->failed++;
		snprintf(kr->why, sizeof(kr->why), "%s", why);
		break;
	case LBD_ETCD_LOCK_RELEASED:
		kr->released++;
		kr->k = NULL;
		ck_assert_msg(why == NULL, "%s", why);
		break;
	}
}

static struct keyrun xy, x, xy2;
static pid_t ctl;
static int ctl_out;
static char ctl_key[256];
static unsigned settle;

/* The keys under etcd's prefix p, as etcd counts them. */
static long
prefix_count(struct tl_etcd *e, const char *p)
{
	char key[128], end[128], body[400], out[2048], *c, last[256];

	snprintf(last, sizeof(last), "%s", p);
	last[strlen(last) - 1]++;
	lbd_etcd_b64_encode(p, strlen(p), key, sizeof(key));
	lbd_etcd_b64_encode(last, strlen(last), end, sizeof(end));
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\","
	    "\"count_only\":true}", key, end);
	ck_assert_int_eq(tl_etcd_post(e, "/v3/kv/range", body, out,
	    sizeof(out)), 200);
	if ((c = strstr(out, "\"count\":\"")) == NULL)
		return 0;
	return strtol(c + 9, NULL, 10);
}

/* Takes a key of lock name on r's lease into kr. */
static void
key_take(struct run *r, struct keyrun *kr, const char *name)
{
	char prefix[256], why[256];

	ck_assert_int_gt(lbd_cluster_prefix("/lbtest", name, prefix,
	    sizeof(prefix)), 0);
	memset(kr, 0, sizeof(*kr));
	kr->k = lbd_etcd_lock_take(r->h, r->etcd->url, prefix, r->id,
	    "host=test pid=1", 2000, key_event, kr, why, sizeof(why));
	ck_assert_msg(kr->k != NULL, "%s", why);
}

static void
key_release(struct keyrun *kr)
{
	char why[256];

	ck_assert_msg(lbd_etcd_lock_release(kr->k, why, sizeof(why)) == 0,
	    "%s", why);
}

/* What etcdctl has printed: its key once it holds the lock. */
static int
ctl_holds(void)
{
	size_t n = strlen(ctl_key);
	ssize_t got;

	got = read(ctl_out, ctl_key + n, sizeof(ctl_key) - 1 - n);
	if (got > 0)
		ctl_key[n + (size_t)got] = '\0';
	return strchr(ctl_key, '\n') != NULL;
}

/*
 * lock_step: x/y held by us; x too (no collision with x/y's keys);
 * etcdctl lock on x/y's etcd name waits (its key made) and does not hold
 * while we do; released, etcdctl holds; we wait for it (watching); etcdctl
 * ends: we hold, with a token above the first and above etcdctl's key's.
 */
static void
lock_step(struct run *r)
{
	ck_assert_msg(xy.failed == 0 && x.failed == 0 && xy2.failed == 0,
	    "%s%s%s", xy.why, x.why, xy2.why);
	switch (r->phase) {
	case 0:
		if (r->granted == 0)
			break;
		key_take(r, &xy, "x/y");
		r->phase = 1;
		break;
	case 1:
		if (xy.held == 0)
			break;
		key_take(r, &x, "x");
		r->phase = 2;
		break;
	case 2:
		if (x.held == 0)
			break;
		ck_assert(x.token > xy.token);
		ctl = tl_etcdctl_lock(r->etcd, "/lbtest/x%2Fy", &ctl_out);
		r->phase = 3;
		break;
	case 3:
		/* etcdctl's key made: it waits behind ours. */
		if (prefix_count(r->etcd, "/lbtest/x%2Fy/") < 2)
			break;
		if (++settle < 10)      /* a few steps, for a wrong grant */
			break;
		ck_assert_msg(!ctl_holds(), "etcdctl holds x/y with us: %s",
		    ctl_key);
		key_release(&xy);
		r->phase = 4;
		break;
	case 4:
		if (xy.released == 0 || !ctl_holds())
			break;
		ck_assert_ptr_nonnull(strstr(ctl_key, "/lbtest/x%2Fy/"));
		key_take(r, &xy2, "x/y");
		r->phase = 5;
		break;
	case 5:
		ck_assert_uint_eq(xy2.held, 0);
		if (!lbd_etcd_lock_waiting(xy2.k))
			break;
		ck_assert_uint_eq(xy2.waiting, 1);      /* told once */
		kill(ctl, SIGTERM);
		r->phase = 6;
		break;
	case 6:
		if (xy2.held == 0)
			break;
		ck_assert(xy2.token > xy.token);
		ck_assert_int_eq(prefix_count(r->etcd, "/lbtest/x%2Fy/"), 1);
		key_release(&xy2);
		key_release(&x);
		r->phase = 7;
		break;
	case 7:
		if (xy2.released == 0 || x.released == 0)
			break;
		ck_assert_int_eq(prefix_count(r->etcd, "/lbtest/x%2Fy/"), 0);
		ck_assert_int_eq(prefix_count(r->etcd, "/lbtest/x/"), 0);
		run_end(r);
		break;
	}
}

START_TEST(lock_against_etcdctl)
{
	struct tl_etcd e;
	struct run r;
	const char *endpoints[1];
	int status;

	if (tl_etcdctl_prog() == NULL) {
		printf("lock_against_etcdctl: " TL_SKIP "etcdctl "
		    "(etcd-client) is not installed\n");
		return;
	}
	if (!etcd_begin(&e, "lock_against_etcdctl"))
		return;
	memset(&r, 0, sizeof(r));
	r.etcd = &e;
	endpoints[0] = e.url;
	run_lease(&r, endpoints, 1, lock_step);
	ck_assert_int_eq(waitpid(ctl, &status, 0), ctl);
	close(ctl_out);
	tl_etcd_stop(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A stand-in for etcd that answers what etcd never would.              */

#define HANG "hang"     /* read the request, answer nothing */

/* Each answer: an HTTP status line's end and a body ("200 OK", "{}"),
 * or one of the special ones. */
#define BIG "big"       /* a 200 longer than the bound */
#define MUTE "mute"     /* the connection closed without a word */
#define RAW "raw"       /* not HTTP at all */
static const char *const answers[][2] = {
	{ HANG, "" },
	{ "200 OK", "notjs" },
	{ "200 OK", "{\"ID\":\"abc\",\"TTL\":\"2\"}" },
	{ "200 OK", "{\"ID\":\"-5\",\"TTL\":\"2\"}" },
	{ "500 Oops", "" },
	{ BIG, "" },
	{ MUTE, "" },
	{ "200 OK", "{\"ID\":{\"x\":1},\"TTL\":[]}" },
	{ "200 OK", "{\"error\":\"b\",\"code\":\"x\"}" },
	{ RAW, "" },
	/* a lease at last */
	{ "200 OK", "{\"ID\":\"77\",\"TTL\":\"2\"}" },
	/* keepalives: another lease's, then one that says it is gone */
	{ "200 OK", "{\"result\":{\"ID\":\"78\",\"TTL\":\"2\"}}" },
	{ "200 OK", "{\"result\":{\"ID\":\"77\"}}" },
	/* the revoke of the lost lease: not found */
	{ "404 Not Found", "{\"error\":\"requested lease not found\","
	    "\"message\":\"requested lease not found\",\"code\":5}" },
};
#define N_ANSWERS (sizeof(answers) / sizeof(*answers))
#define N_BAD 10        /* answers before the lease */

struct standin {
	int        fd;
	int        port;
	pthread_t  thread;
	char       paths[N_ANSWERS][64];
	volatile unsigned served;
};

/* Reads a request's head and body (Content-Length); its path into
 * path. */
static void
read_request(int fd, char *path, size_t size)
{
	char buf[8192], *end, *cl;
	size_t len = 0;
	ssize_t n;
	long body = 0;

	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(buf, "Content-Length: ");
		body = cl != NULL ? strtol(cl + 16, NULL, 10) : 0;
		if ((size_t)(end + 4 - buf) + (size_t)body <= len)
			break;
	}
	buf[len] = '\0';
	if (sscanf(buf, "POST %63s", path) != 1)
		snprintf(path, size, "?");
	(void)size;
}

static void *
standin_serve(void *arg)
{
	struct standin *s = arg;
	unsigned i;

	for (i = 0; i < N_ANSWERS; i++) {
		int c = accept(s->fd, NULL, NULL);
		char big[LBD_ETCD_REPLY_MAX + 1024];

		if (c < 0)
			break;
		read_request(c, s->paths[i], sizeof(s->paths[i]));
		if (strcmp(answers[i][0], HANG) == 0) {
			/* Until the client gives up. */
			while (read(c, big, sizeof(big)) > 0)
				;
		} else if (strcmp(answers[i][0], BIG) == 0) {
			int h = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n"
			    "Content-Length: %d\r\n\r\n",
			    LBD_ETCD_REPLY_MAX + 512);

			memset(big + h, ' ', sizeof(big) - (size_t)h);
			tl_write_all(c, big, (size_t)h +
			    LBD_ETCD_REPLY_MAX + 512);
		} else if (strcmp(answers[i][0], RAW) == 0) {
			static const char raw[] = "garbage, not HTTP\r\n\r\n";

			tl_write_all(c, raw, strlen(raw));
		} else if (strcmp(answers[i][0], MUTE) != 0) {
			int h = snprintf(big, sizeof(big), "HTTP/1.1 %s\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n"
			    "\r\n%s", answers[i][0], strlen(answers[i][1]),
			    answers[i][1]);

			tl_write_all(c, big, (size_t)h);
		}
		close(c);
		s->served = i + 1;
	}
	return NULL;
}

static void
malformed_step(struct run *r)
{
	struct standin *s = (struct standin *)r->etcd;

	if (s->served < N_ANSWERS || r->lost == 0)
		return;
	run_end(r);
}

START_TEST(lease_malformed)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	struct standin s;
	struct run r;
	char url[64];
	const char *endpoints[1];
	unsigned i;

	memset(&s, 0, sizeof(s));
	ck_assert_int_ge(s.fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(s.fd, (struct sockaddr *)&a, &len), 0);
	ck_assert_int_eq(listen(s.fd, 8), 0);
	ck_assert_int_eq(pthread_create(&s.thread, NULL, standin_serve, &s),
	    0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	endpoints[0] = url;
	memset(&r, 0, sizeof(r));
	r.etcd = (struct tl_etcd *)&s;
	run_lease(&r, endpoints, 1, malformed_step);
	shutdown(s.fd, SHUT_RDWR);
	pthread_join(s.thread, NULL);
	close(s.fd);
	/* Each bad answer one TROUBLE, the lease granted once, then the
	 * other lease's keepalive one more TROUBLE, then lost. */
	ck_assert_uint_eq(r.granted, 1);
	ck_assert(r.first_id == 77);
	ck_assert_uint_eq(r.lost, 1);
	ck_assert(r.lost_id == 77);
	ck_assert_uint_ge(r.trouble, N_BAD + 1);
	for (i = 0; i < N_BAD + 1; i++)
		ck_assert_str_eq(s.paths[i], "/v3/lease/grant");
	ck_assert_str_eq(s.paths[N_BAD + 1], "/v3/lease/keepalive");
	ck_assert_str_eq(s.paths[N_BAD + 2], "/v3/lease/keepalive");
	ck_assert_str_eq(s.paths[N_BAD + 3], "/v3/lease/revoke");
}
END_TEST

static Suite *
etcd_suite(void)
{
	Suite *s = suite_create("etcd");
	TCase *tc;

	tc = tcase_create("replies");
	tcase_add_test(tc, parse_replies);
	tcase_add_test(tc, parse_lock_replies);
	tcase_add_test(tc, parse_lease_keys);
	tcase_add_test(tc, base64);
	tcase_add_test(tc, cluster_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("lease");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, lease_kept_alive);
	tcase_add_test(tc, lease_lost);
	tcase_add_test(tc, lease_malformed);
	suite_add_tcase(s, tc);
	tc = tcase_create("lock");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, lock_against_etcdctl);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "check_etcd: curl_global_init failed\n");
		return 99;
	}
	r = tl_main("check_etcd", etcd_suite(), CK_NORMAL);
	curl_global_cleanup();
	return r;
}
