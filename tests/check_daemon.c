/*
 * check_daemon.c: unit tests of the daemon's modules that stand alone:
 * the settings (daemon/settings.c: defaults, lbd_config_parse on good and
 * bad input, lbd_config_load), the retries of handoffs waiting for
 * readers (daemon/swapwait.c: each one's growing waits, the daemon's
 * budget of them at full speed, a user's share), the bound on refusal
 * lines (daemon/lograte.c: per user, in all, the counts at an
 * interval's end) and the state database (daemon/store.c,
 * against a temporary database: generations, holds recorded and
 * forgotten, a damaged database moved aside, one deleted while open made
 * anew from memory).
 *
 * The lock table (daemon/locktable.c) is not here: it calls the
 * directory watches (watch.c), which need the rest of the daemon.
 *
 * Every test runs in its own process (check's CK_FORK default) and in its
 * own directory under the run's private one (testlib.h).
 */
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creds.h"
#include "daemon.h"
#include "log.h"
#include "lograte.h"
#include "settings.h"
#include "store.h"
#include "readers.h"
#include "swapwait.h"
#include "testlib.h"

/* store.c asks readers.c (not linked here) how many connections ride a
 * marker when it writes the conn_riders table from memory; the stores of
 * these tests have no rider, so it is never asked. */
unsigned
lbd_reader_conns(const struct lbd_hold *r)
{
	(void)r;
	ck_abort_msg("lbd_reader_conns: no rider in these tests");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Settings.                                                            */

/* lbd_config_parse on the C string text into *c (from the defaults);
 * its result, with why (size bytes) filled on failure. */
static int
parse(const char *text, struct lbd_config *c, char *why, size_t size)
{
	lbd_config_defaults(c);
	why[0] = '\0';
	return lbd_config_parse(text, strlen(text), c, why, size);
}

/* Asserts that text is refused with a reason that holds each of the
 * strings in want (NULL-terminated). */
static void
assert_refused(const char *text, const char *const *want)
{
	struct lbd_config c;
	char              why[512];

	ck_assert_msg(parse(text, &c, why, sizeof(why)) == -1,
	    "accepted: \"%s\"", text);
	for (; *want != NULL; want++)
		ck_assert_msg(strstr(why, *want) != NULL, "\"%s\": the reason "
		    "\"%s\" does not say \"%s\"", text, why, *want);
}

/* The defaults are the documented ones; socket and state are empty. */
START_TEST(test_config_defaults)
{
	struct lbd_config c;

	memset(&c, 0x5a, sizeof(c));
	lbd_config_defaults(&c);
	ck_assert_str_eq(c.socket, "");
	ck_assert_str_eq(c.state, "");
	ck_assert(c.grace == LBD_DEFAULT_GRACE);
	ck_assert(c.foreign_poll == LBD_DEFAULT_FOREIGN_POLL);
	ck_assert(c.release_wait == LBD_DEFAULT_RELEASE_WAIT);
	ck_assert(c.release_wait == 3.0);
	ck_assert_int_eq(c.debug, 0);
	ck_assert_uint_eq(c.limits.holds_per_conn, LBD_DEFAULT_HOLDS_PER_CONN);
	ck_assert_uint_eq(c.limits.waits_per_conn, LBD_DEFAULT_WAITS_PER_CONN);
	ck_assert_uint_eq(c.limits.output_per_conn,
	    LBD_DEFAULT_OUTPUT_PER_CONN);
	ck_assert_uint_eq(c.limits.conns_per_uid, LBD_DEFAULT_CONNS_PER_UID);
	ck_assert_uint_eq(c.limits.conns, LBD_DEFAULT_CONNS);
	ck_assert_uint_eq(c.limits.locks_per_uid, LBD_DEFAULT_LOCKS_PER_UID);
	ck_assert_uint_eq(c.limits.watches_per_uid,
	    LBD_DEFAULT_WATCHES_PER_UID);
	ck_assert_uint_eq(c.limits.watches, LBD_DEFAULT_WATCHES);
	ck_assert_uint_eq(c.limits.turn_us, LBD_DEFAULT_TURN_US);
	ck_assert_uint_eq(c.limits.refusals_logged_per_uid, 10);
	ck_assert_uint_eq(c.limits.refusals_logged, 100);
	ck_assert(c.refusals_interval == 60.0);
	ck_assert_uint_eq(c.limits.swap_readers_fast, 64);
	ck_assert_str_eq(c.subuids, "");
	ck_assert_str_eq(c.cluster_dir, "");
	ck_assert_str_eq(c.etcd_endpoints, "");
	ck_assert_str_eq(c.etcd_prefix, "/lockbroker/locks");
	ck_assert_uint_eq(c.etcd_ttl, 10);
}
END_TEST

/* Every key, with comments, blank lines, spaces and a last line without
 * a newline; the limits at the ends of their ranges. */
START_TEST(test_config_every_key)
{
	static const char text[] =
	    "# lockbrokerd.conf\n"
	    "\n"
	    "socket = /run/lb/sock\n"
	    "  state=/var/lib/lb/state.db  \n"
	    "grace = 2.5\n"
	    "foreign_poll = 86400\n"
	    "release_wait = 0.5\n"
	    "debug = yes\n"
	    "holds_per_conn = 1\n"
	    "waits_per_conn = 1000000\n"
	    "output_per_conn = 4294967296\n"
	    "\t# indented comment\n"
	    "conns_per_uid = 7\n"
	    "conns = 8\n"
	    "locks_per_uid = 9\n"
	    "watches_per_uid = 0\n"
	    "turn_us = 100000\n"
	    "refusals_logged_per_uid = 1\n"
	    "refusals_logged = 1000000\n"
	    "refusals_interval = 0.25\n"
	    "swap_readers_fast = 0\n"
	    "subordinate_uids = /etc/lockbroker/subuid\n"
	    "readers_per_lock = 1000\n"
	    "cluster_dir = /srv/cluster-locks\n"
	    "etcd_endpoints = http://10.0.0.1:2379,http://etcd-2:2379,"
	    "http://[::1]:2379\n"
	    "etcd_prefix = /app/locks\n"
	    "etcd_ttl = 2\n"
	    "watches = 10";
	struct lbd_config c;
	char              why[512];

	ck_assert_msg(parse(text, &c, why, sizeof(why)) == 0, "%s", why);
	ck_assert_str_eq(c.socket, "/run/lb/sock");
	ck_assert_str_eq(c.state, "/var/lib/lb/state.db");
	ck_assert(c.grace == 2.5);
	ck_assert(c.foreign_poll == 86400);
	ck_assert(c.release_wait == 0.5);
	ck_assert_int_eq(c.debug, 1);
	ck_assert_uint_eq(c.limits.holds_per_conn, 1);
	ck_assert_uint_eq(c.limits.waits_per_conn, 1000000);
	ck_assert_uint_eq(c.limits.output_per_conn, (size_t)1 << 32);
	ck_assert_uint_eq(c.limits.conns_per_uid, 7);
	ck_assert_uint_eq(c.limits.conns, 8);
	ck_assert_uint_eq(c.limits.locks_per_uid, 9);
	ck_assert_uint_eq(c.limits.watches_per_uid, 0);
	ck_assert_uint_eq(c.limits.watches, 10);
	ck_assert_uint_eq(c.limits.turn_us, 100000);
	ck_assert_uint_eq(c.limits.refusals_logged_per_uid, 1);
	ck_assert_uint_eq(c.limits.refusals_logged, 1000000);
	ck_assert(c.refusals_interval == 0.25);
	ck_assert_uint_eq(c.limits.swap_readers_fast, 0);
	ck_assert_str_eq(c.subuids, "/etc/lockbroker/subuid");
	ck_assert_uint_eq(c.limits.readers_per_lock, 1000);
	ck_assert_str_eq(c.cluster_dir, "/srv/cluster-locks");
	ck_assert_str_eq(c.etcd_endpoints, "http://10.0.0.1:2379,"
	    "http://etcd-2:2379,http://[::1]:2379");
	ck_assert_str_eq(c.etcd_prefix, "/app/locks");
	ck_assert_uint_eq(c.etcd_ttl, 2);
	ck_assert_int_eq(parse("turn_us = 0\n", &c, why, sizeof(why)), 0);
	ck_assert_uint_eq(c.limits.turn_us, 0);

	/* The booleans' other spellings; a later line wins. */
	ck_assert_int_eq(parse("debug = true\ndebug = 0\n", &c, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(c.debug, 0);
	ck_assert_int_eq(parse("debug = no\ndebug = 1\n", &c, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(c.debug, 1);
	/* Nothing at all changes nothing. */
	ck_assert_int_eq(parse("", &c, why, sizeof(why)), 0);
	ck_assert_uint_eq(c.limits.conns, LBD_DEFAULT_CONNS);
	ck_assert_uint_eq(c.limits.readers_per_lock,
	    LBD_DEFAULT_READERS_PER_LOCK);
	/* Unset, readers_per_lock is what output_per_conn has room for: a
	 * LIST sends a lock's ITEMs (8 KiB each at most) together. */
	ck_assert_int_eq(parse("output_per_conn = 65536\n", &c, why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(c.limits.readers_per_lock, 3);
	ck_assert_int_eq(parse("output_per_conn = 16384\n", &c, why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(c.limits.readers_per_lock, 0);
	ck_assert_int_eq(parse("readers_per_lock = 0\n", &c, why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(c.limits.readers_per_lock, 0);
}
END_TEST

/* Bad values: the reason names the line and the key, and for seconds
 * the range. */
START_TEST(test_config_bad_values)
{
	static const struct {
		const char *text;
		const char *want[4];
	} bad[] = {
		{ "grace = 0\n", { "line 1", "grace", "at most 86400" } },
		{ "grace = 86401\n", { "grace", "greater than 0" } },
		{ "grace = -1\n", { "grace", "plain decimal" } },
		{ "grace = 1e3\n", { "grace", "at most 86400" } },
		{ "release_wait = 20.5\n", { "release_wait", "at most 20",
		    "below the library's wait" } },
		{ "release_wait = 0\n", { "release_wait", "greater than 0" } },
		{ "\nforeign_poll = soon\n", { "line 2", "foreign_poll",
		    "seconds" } },
		{ "debug = maybe\n", { "line 1", "debug", "maybe" } },
		{ "holds_per_conn = 0\n", { "holds_per_conn", "\"0\"" } },
		{ "waits_per_conn = 1000001\n", { "waits_per_conn" } },
		{ "conns = 12abc\n", { "conns", "12abc" } },
		{ "conns_per_uid = +3\n", { "conns_per_uid" } },
		{ "locks_per_uid = \n", { "locks_per_uid" } },
		{ "watches = -1\n", { "watches" } },
		{ "output_per_conn = 4294967297\n", { "output_per_conn" } },
		{ "turn_us = 100001\n", { "turn_us", "microseconds",
		    "from 0 to 100000" } },
		{ "turn_us = -1\n", { "turn_us", "from 0 to 100000" } },
		{ "turn_us = 0.5\n", { "turn_us", "0.5" } },
		{ "refusals_logged_per_uid = 0\n",
		    { "refusals_logged_per_uid", "from 1 to 1000000" } },
		{ "refusals_logged = 1000001\n", { "refusals_logged" } },
		{ "refusals_interval = 0\n", { "refusals_interval",
		    "greater than 0" } },
		{ "swap_readers_fast = -1\n", { "swap_readers_fast",
		    "from 0 to 1000000" } },
		{ "readers_per_lock = 64\n", { "readers_per_lock 64",
		    "half of output_per_conn" } },
		{ "output_per_conn = 65536\nreaders_per_lock = 4\n",
		    { "readers_per_lock 4", "(65536)" } },
		{ "readers_per_lock = -1\n", { "readers_per_lock",
		    "from 0 to 1000000" } },
		{ "socket = relative/sock\n", { "socket", "relative/sock" } },
		{ "state = state.db\n", { "state", "state.db" } },
		{ "subordinate_uids = etc/subuid\n", { "subordinate_uids",
		    "absolute file name, or none" } },
		{ "subordinate_uids = \n", { "subordinate_uids" } },
		{ "cluster_dir = rel\n", { "cluster_dir", "absolute" } },
		{ "cluster_dir = /\n", { "cluster_dir", "not /" } },
		{ "cluster_dir = /a/\n", { "cluster_dir", "trailing" } },
		{ "cluster_dir = /a/../b\n", { "cluster_dir", ".." } },
		{ "cluster_dir = /a/.\n", { "cluster_dir" } },
		{ "cluster_dir = /a//b\n", { "cluster_dir" } },
		{ "etcd_endpoints = https://e:2379\n", { "etcd_endpoints",
		    "TLS", "not supported yet" } },
		{ "etcd_endpoints = e:2379\n", { "etcd_endpoints",
		    "http://HOST" } },
		{ "etcd_endpoints = http://e:2379/v3\n", { "etcd_endpoints",
		    "no path" } },
		{ "etcd_endpoints = http://u@e:2379\n", { "etcd_endpoints" } },
		{ "etcd_endpoints = http://a,http://b,http://c,http://d,"
		    "http://e,http://f,http://g,http://h,http://i\n",
		    { "etcd_endpoints", "at most 8" } },
		{ "etcd_endpoints = http://a,\n", { "etcd_endpoints" } },
		{ "etcd_prefix = locks\n", { "etcd_prefix" } },
		{ "etcd_prefix = /locks/\n", { "etcd_prefix", "trailing" } },
		{ "etcd_prefix = /lo cks\n", { "etcd_prefix" } },
		{ "etcd_ttl = 1\n", { "etcd_ttl", "from 2 to 3600" } },
		{ "etcd_ttl = 3601\n", { "etcd_ttl", "from 2 to 3600" } },
		{ "etcd_ttl = 2.5\n", { "etcd_ttl" } },
	};
	size_t k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_refused(bad[k].text, bad[k].want);
}
END_TEST

/* Lines that are not settings: the reason names the line and what is
 * wrong (an unknown key by its name). */
START_TEST(test_config_bad_lines)
{
	static const char *const unknown[] = { "line 3", "unknown key",
		"\"colour\"", NULL };
	static const char *const no_eq[] = { "line 1", "key = value", NULL };
	static const char *const too_long[] = { "line 1", "too long", NULL };
	static char       text[PATH_MAX + 64];
	struct lbd_config c;
	char              why[512];

	assert_refused("debug = 1\n# fine\ncolour = blue\n", unknown);
	assert_refused("just words\n", no_eq);
	ck_assert_int_eq(lbd_config_parse("debug = 1\nde\0bug = 1\n", 21,
	    &c, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "line 2") != NULL && strstr(why, "NUL") !=
	    NULL, "%s", why);
	snprintf(text, sizeof(text), "state = /");
	memset(text + strlen(text), 'x', PATH_MAX);
	text[sizeof(text) - 1] = '\0';
	assert_refused(text, too_long);
}
END_TEST

/* lbd_config_load reads a file, and names it in every failure. */
START_TEST(test_config_load)
{
	static const char *const named[] = { "line 1", "conns", "none", NULL };
	const char *const *w;
	struct lbd_config c;
	struct tl_place   p;
	char              why[PATH_MAX + 600];

	tl_place_make(&p, "lockbrokerd.conf");
	lbd_config_defaults(&c);
	ck_assert_int_eq(lbd_config_load(p.path, &c, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, p.path) != NULL &&
	    strstr(why, strerror(ENOENT)) != NULL, "%s", why);

	tl_write_text(p.path, "conns = 5\ngrace = 1.5\n");
	ck_assert_msg(lbd_config_load(p.path, &c, why, sizeof(why)) == 0,
	    "%s", why);
	ck_assert_uint_eq(c.limits.conns, 5);
	ck_assert(c.grace == 1.5);

	tl_write_text(p.path, "conns = none\n");
	ck_assert_int_eq(lbd_config_load(p.path, &c, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, p.path) != NULL, "%s", why);
	for (w = named; *w != NULL; w++)
		ck_assert_msg(strstr(why, *w) != NULL, "%s", why);
	tl_place_remove(p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The state database.                                                  */

/* A daemon with nothing but what the store uses: its configuration (the
 * database's path) and empty lists of connections and holds. */
static void
store_daemon(struct lbd *d, const char *file)
{
	memset(d, 0, sizeof(*d));
	lbd_config_defaults(&d->cfg);
	ck_assert_int_lt(snprintf(d->cfg.state, sizeof(d->cfg.state), "%s",
	    file), (int)sizeof(d->cfg.state));
	TAILQ_INIT(&d->conns);
	LIST_INIT(&d->orphans);
	LIST_INIT(&d->releasing);
	TAILQ_INIT(&d->acks);
}

/* lbd_store_open that must succeed. */
static void
store_open_ok(struct lbd *d)
{
	char why[PATH_MAX + 512];

	ck_assert_msg(lbd_store_open(d, d->cfg.state, why, sizeof(why)) == 0,
	    "%s", why);
}

/* A hold of this process on path (as a made-up thread), with two
 * supplementary groups, and its lock; freed by hold_free. */
static struct lbd_hold *
hold_make(const char *path, unsigned method, uint64_t token)
{
	struct lockfs_err err;
	struct lbd_hold  *h;

	ck_assert_ptr_nonnull(h = calloc(1, sizeof(*h)));
	ck_assert_ptr_nonnull(h->creds = calloc(1, sizeof(*h->creds) +
	    2 * sizeof(gid_t)));
	ck_assert_msg(lockfs_init(&h->fs, path, method, 0x4242, &err) == 0,
	    "%s", err.msg);
	h->tid = 0x4242;
	h->uid = h->creds->uid = 1234;
	h->gid = h->creds->gid = 5678;
	h->creds->ngroups = 2;
	h->creds->groups[0] = 100;
	h->creds->groups[1] = 200;
	h->token = token;
	h->since = 1700000000.25;
	h->dir_dev = 3;
	h->dir_ino = 77;
	/* Its lock, which names the lock file the store records. */
	ck_assert_ptr_nonnull(h->lock = calloc(1, sizeof(*h->lock)));
	h->lock->path = h->fs.path;
	h->lock->method = method;
	return h;
}

/* Frees a hold of hold_make. */
static void
hold_free(struct lbd_hold *h)
{
	free(h->lock);
	lockfs_fini(&h->fs);
	free(h->creds);
	free(h);
}

/* The holds a store records, as lbd_store_each_hold gives them. */
#define SEEN_MAX 8
static struct lbd_store_hold seen[SEEN_MAX];
static gid_t                 seen_groups[SEEN_MAX][2];
static int                   nseen;

/* lbd_store_each_hold's callback: keeps a copy of h in seen[]. */
static void
see_hold(struct lbd *d, const struct lbd_store_hold *h)
{
	(void)d;
	ck_assert_int_lt(nseen, SEEN_MAX);
	seen[nseen] = *h;
	ck_assert_uint_le(h->ngroups, 2);
	if (h->ngroups > 0)
		memcpy(seen_groups[nseen], h->groups, h->ngroups *
		    sizeof(gid_t));
	seen[nseen].groups = seen_groups[nseen];
	nseen++;
}

/* The recorded holds, into seen[0..nseen); asserts that they could be
 * read. */
static int
holds_recorded(struct lbd *d)
{
	nseen = 0;
	ck_assert_int_eq(lbd_store_each_hold(d, see_hold), 0);
	return nseen;
}

/* Asserts that r is h as recorded. */
static void
assert_recorded(const struct lbd_store_hold *r, const struct lbd_hold *h)
{
	const gid_t *g = r->groups;

	ck_assert_str_eq(r->path, h->fs.path);
	ck_assert_uint_eq(r->method, h->fs.method);
	ck_assert_str_eq(r->unique, h->fs.unique);
	ck_assert_int_eq(r->pid, getpid());
	ck_assert_int_eq(r->tid, h->tid);
	ck_assert_uint_eq(r->uid, h->uid);
	ck_assert_uint_eq(r->gid, h->gid);
	ck_assert_uint_eq(r->start, h->fs.owner.start);
	ck_assert_str_eq(r->boot, h->fs.owner.boot);
	ck_assert_uint_eq(r->token, h->token);
	ck_assert(r->since == h->since);
	ck_assert_int_eq(r->kept, h->kept);
	ck_assert_int_eq(r->groups_known, 1);
	ck_assert_uint_eq(r->ngroups, 2);
	ck_assert_uint_eq(g[0], 100);
	ck_assert_uint_eq(g[1], 200);
	ck_assert_uint_eq(r->dir_dev, h->dir_dev);
	ck_assert_uint_eq(r->dir_ino, h->dir_ino);
}

/* Each open takes a generation above every earlier one, durably; the
 * database is readable by the daemon's user only. */
START_TEST(test_store_generations)
{
	struct tl_place p;
	struct lbd      d;
	struct stat     st;
	uint64_t        g[3];
	int             k;

	tl_place_make(&p, "state.db");
	store_daemon(&d, p.path);
	for (k = 0; k < 3; k++) {
		store_open_ok(&d);
		g[k] = d.generation;
		ck_assert_uint_gt(g[k], 0);
		if (k > 0)
			ck_assert_uint_gt(g[k], g[k - 1]);
		lbd_store_close(&d);
		ck_assert_ptr_null(d.store);
	}
	ck_assert_int_eq(stat(p.path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0077, 0);
	/* Taking one more while open, too. */
	store_open_ok(&d);
	g[0] = d.generation;
	ck_assert_int_eq(lbd_store_next_generation(&d), 0);
	ck_assert_uint_gt(d.generation, g[0]);
	lbd_store_close(&d);
	tl_place_remove(p.dir);
}
END_TEST

/* A hold recorded and committed is there for the next daemon, with every
 * field; one forgotten is gone. */
START_TEST(test_store_holds)
{
	struct lbd_hold *a, *b;
	struct tl_place  p;
	struct lbd       d;
	char             why[512], lk[PATH_MAX];

	tl_place_make(&p, "state.db");
	tl_path_join(lk, sizeof(lk), p.dir, "lk");
	store_daemon(&d, p.path);
	store_open_ok(&d);
	a = hold_make(lk, LB_LINK, 41);
	b = hold_make(lk, LB_PIDFILE, 42);
	b->kept = 1;
	ck_assert_int_eq(lbd_store_hold_add(&d, a), 0);
	ck_assert_int_eq(lbd_store_hold_add(&d, b), 0);
	ck_assert_int_eq(lbd_store_settle(&d, why, sizeof(why)), 0);
	lbd_store_close(&d);

	store_open_ok(&d);
	ck_assert_int_eq(holds_recorded(&d), 2);
	if (seen[0].method != LB_LINK) {
		struct lbd_store_hold t = seen[0];

		seen[0] = seen[1];
		seen[1] = t;
		seen[0].groups = seen_groups[1];
		seen[1].groups = seen_groups[0];
	}
	assert_recorded(&seen[0], a);
	assert_recorded(&seen[1], b);

	ck_assert_int_eq(lbd_store_hold_del(&d, a), 0);
	ck_assert_int_eq(lbd_store_commit(&d), 0);
	ck_assert_int_eq(holds_recorded(&d), 1);
	assert_recorded(&seen[0], b);
	/* A deletion that matches nothing (another token) changes
	 * nothing. */
	b->token = 99;
	ck_assert_int_eq(lbd_store_hold_del(&d, b), 0);
	ck_assert_int_eq(lbd_store_commit(&d), 0);
	ck_assert_int_eq(holds_recorded(&d), 1);
	lbd_store_close(&d);
	hold_free(a);
	hold_free(b);
	tl_place_remove(p.dir);
}
END_TEST

/* 1 when dir has an entry whose name starts with prefix, else 0. */
static int
entry_starting(const char *dir, const char *prefix)
{
	struct dirent *de;
	DIR           *d;
	int            found = 0;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			found = 1;
	closedir(d);
	return found;
}

/* A damaged database is moved aside (kept, named .damaged-) and a new one
 * made, whose generation is still above the old one's. */
START_TEST(test_store_damaged_moved_aside)
{
	struct tl_place p;
	struct lbd      d;
	uint64_t        old;
	char            garbage[8192];
	int             fd;

	tl_place_make(&p, "state.db");
	store_daemon(&d, p.path);
	store_open_ok(&d);
	old = d.generation;
	lbd_store_close(&d);
	/* Its header and first pages overwritten. */
	memset(garbage, 0xa5, sizeof(garbage));
	ck_assert_int_ne(fd = open(p.path, O_WRONLY), -1);
	ck_assert_int_eq(write(fd, garbage, sizeof(garbage)),
	    (ssize_t)sizeof(garbage));
	close(fd);

	store_open_ok(&d);
	ck_assert_uint_gt(d.generation, old);
	ck_assert_int_eq(holds_recorded(&d), 0);
	lbd_store_close(&d);
	ck_assert_msg(entry_starting(p.dir, "state.db.damaged-"),
	    "nothing moved aside in %s", p.dir);
	tl_place_remove(p.dir);
}
END_TEST

/* A database deleted while the daemon runs is made anew at the next
 * check, with a higher generation and every hold in memory. */
START_TEST(test_store_deleted_made_anew)
{
	struct lbd_conn  conn;
	struct lbd_hold *h;
	struct tl_place  p;
	struct lbd       d;
	uint64_t         old;
	char             lk[PATH_MAX], side[PATH_MAX + 8];

	tl_place_make(&p, "state.db");
	tl_path_join(lk, sizeof(lk), p.dir, "lk");
	store_daemon(&d, p.path);
	store_open_ok(&d);
	old = d.generation;
	ck_assert_int_eq(lbd_store_check(&d), 0);       /* the same file */

	/* One connection holding one lock, in memory only. */
	memset(&conn, 0, sizeof(conn));
	LIST_INIT(&conn.holds);
	TAILQ_INSERT_TAIL(&d.conns, &conn, entry);
	h = hold_make(lk, LB_MKDIR, 7);
	LIST_INSERT_HEAD(&conn.holds, h, conn_entry);

	ck_assert_int_eq(unlink(p.path), 0);
	snprintf(side, sizeof(side), "%s-wal", p.path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", p.path);
	unlink(side);
	ck_assert_int_eq(lbd_store_check(&d), 1);
	ck_assert_ptr_nonnull(d.store);
	ck_assert_uint_gt(d.generation, old);
	ck_assert(tl_exists(p.path));
	ck_assert_int_eq(holds_recorded(&d), 1);
	assert_recorded(&seen[0], h);
	lbd_store_close(&d);
	hold_free(h);
	tl_place_remove(p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Handoffs waiting for readers: their retries (swapwait.c).            */

/* A handoff at full speed waits 2 ms, doubling, up to 100 ms, counted
 * in the daemon's budget; after LBD_SWAPWAIT_FAST_WAITS waits it leaves
 * the budget and its waits grow on, doubling, to 1 s, then 1 s each
 * time. */
START_TEST(test_swapwait_grows)
{
	static const uint64_t first[] = { 2, 4, 8, 16, 32, 64, 100, 100 };
	static const uint64_t then[] = { 200, 400, 800, 1000, 1000, 1000 };
	struct lbd_swapwait w;
	unsigned            nfast = 0, i;

	ck_assert_int_eq(lbd_swapwait_begin(&w, &nfast, 1, 1),
	    LBD_SWAPWAIT_FAST);
	ck_assert_uint_eq(nfast, 1);
	for (i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		ck_assert_msg(lbd_swapwait_next(&w, &nfast) == first[i],
		    "wait %u is not %llu ms", i, (unsigned long long)first[i]);
	for (; i < LBD_SWAPWAIT_FAST_WAITS - 1; i++) {
		ck_assert_uint_eq(lbd_swapwait_next(&w, &nfast), 100);
		ck_assert_uint_eq(nfast, 1);
	}
	/* The last wait at full speed: its place freed. */
	ck_assert_uint_eq(lbd_swapwait_next(&w, &nfast), 100);
	ck_assert_uint_eq(nfast, 0);
	for (i = 0; i < sizeof(then) / sizeof(then[0]); i++)
		ck_assert_msg(lbd_swapwait_next(&w, &nfast) == then[i],
		    "wait %u after full speed is not %llu ms", i,
		    (unsigned long long)then[i]);
	ck_assert_uint_eq(nfast, 0);
	lbd_swapwait_end(&w, &nfast);
	ck_assert_uint_eq(nfast, 0);
	/* Ended at full speed: its place freed, once. */
	ck_assert_int_eq(lbd_swapwait_begin(&w, &nfast, 1, 1),
	    LBD_SWAPWAIT_FAST);
	ck_assert_uint_eq(lbd_swapwait_next(&w, &nfast), 2);
	lbd_swapwait_end(&w, &nfast);
	lbd_swapwait_end(&w, &nfast);
	ck_assert_uint_eq(nfast, 0);
}
END_TEST

/* The daemon's budget: beyond it a handoff waits 1 s from its first
 * wait, and counts nowhere; a place freed (a handoff ended, or past its
 * time at full speed) goes to the next one; a budget of 0 lets none at
 * full speed. */
START_TEST(test_swapwait_budget)
{
	struct lbd_swapwait w[4];
	unsigned            nfast = 0, i;

	for (i = 0; i < 2; i++)
		ck_assert_int_eq(lbd_swapwait_begin(&w[i], &nfast, 2, 1),
		    LBD_SWAPWAIT_FAST);
	ck_assert_int_eq(lbd_swapwait_begin(&w[2], &nfast, 2, 1),
	    LBD_SWAPWAIT_BUDGET);
	ck_assert_uint_eq(nfast, 2);
	ck_assert_uint_eq(lbd_swapwait_next(&w[2], &nfast), LBD_SWAPWAIT_MAX_MS);
	ck_assert_uint_eq(lbd_swapwait_next(&w[2], &nfast), LBD_SWAPWAIT_MAX_MS);
	lbd_swapwait_end(&w[2], &nfast);        /* not counted: no change */
	ck_assert_uint_eq(nfast, 2);
	lbd_swapwait_end(&w[0], &nfast);
	ck_assert_uint_eq(nfast, 1);
	ck_assert_int_eq(lbd_swapwait_begin(&w[0], &nfast, 2, 1),
	    LBD_SWAPWAIT_FAST);
	/* w[1]'s time at full speed ends: its place is free. */
	for (i = 0; i < LBD_SWAPWAIT_FAST_WAITS; i++)
		ck_assert_uint_le(lbd_swapwait_next(&w[1], &nfast),
		    LBD_SWAPWAIT_FAST_MAX_MS);
	ck_assert_uint_eq(nfast, 1);
	ck_assert_int_eq(lbd_swapwait_begin(&w[3], &nfast, 2, 1),
	    LBD_SWAPWAIT_FAST);
	ck_assert_uint_eq(nfast, 2);
	/* A reload that lowers the budget below those at full speed. */
	ck_assert_int_eq(lbd_swapwait_begin(&w[2], &nfast, 1, 1),
	    LBD_SWAPWAIT_BUDGET);
	nfast = 0;
	ck_assert_int_eq(lbd_swapwait_begin(&w[2], &nfast, 0, 1),
	    LBD_SWAPWAIT_BUDGET);
	ck_assert_uint_eq(lbd_swapwait_next(&w[2], &nfast), LBD_SWAPWAIT_MAX_MS);
	ck_assert_uint_eq(nfast, 0);
}
END_TEST

/* A user's share: its 17th handoff waiting for readers, and one whose
 * user is not known, wait 1 s from the first, whatever the budget. */
START_TEST(test_swapwait_user_share)
{
	struct lbd_swapwait w;
	unsigned            nfast = 0;

	ck_assert_int_eq(lbd_swapwait_begin(&w, &nfast, 100,
	    LBD_SWAPWAIT_PER_UID), LBD_SWAPWAIT_FAST);
	ck_assert_int_eq(lbd_swapwait_begin(&w, &nfast, 100,
	    LBD_SWAPWAIT_PER_UID + 1), LBD_SWAPWAIT_USER);
	ck_assert_uint_eq(lbd_swapwait_next(&w, &nfast), LBD_SWAPWAIT_MAX_MS);
	ck_assert_int_eq(lbd_swapwait_begin(&w, &nfast, 100, 0),
	    LBD_SWAPWAIT_USER);
	ck_assert_uint_eq(nfast, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Refusal lines, bounded per user (lograte.c).                         */

/* A log file in a new place, which lbd_log writes from now on; its
 * path into file (PATH_MAX bytes). */
static void
log_to_file(struct tl_place *p, char *file)
{
	char why[512];

	tl_place_make(p, "log");
	snprintf(file, PATH_MAX, "%s", p->path);
	ck_assert_msg(lbd_log_open(file, why, sizeof(why)) == 0, "%s", why);
}

/* Each user's first lines are written, up to its bound and the
 * daemon's: one user's flood leaves another's first line written; what
 * is held back is counted per user and told, once per user, when the
 * interval ends (here: the stop). */
START_TEST(test_lograte_per_user)
{
	struct lbd_lograte r;
	struct tl_place    p;
	uv_loop_t          loop;
	char               file[PATH_MAX];
	unsigned           written = 0, i;

	log_to_file(&p, file);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	lbd_lograte_init(&r, &loop, "refusals of things", 2, 3, 60000);
	for (i = 0; i < 50; i++)
		written += lbd_lograte_take(&r, 7);
	ck_assert_uint_eq(written, 2);
	ck_assert_int_eq(lbd_lograte_take(&r, 8), 1);    /* not hidden */
	ck_assert_int_eq(lbd_lograte_take(&r, 8), 0);    /* 3 in all */
	ck_assert_int_eq(lbd_lograte_take(&r, 9), 0);
	ck_assert_int_eq(lbd_lograte_take(&r, LBD_LOGRATE_NOBODY_KNOWN), 0);
	ck_assert_uint_eq(tl_file_count(file, "not logged"), 0);
	lbd_lograte_close(&r);
	lbd_lograte_close(&r);
	ck_assert_uint_eq(tl_file_count(file, "48 refusals of things not "
	    "logged for uid 7 in the last"), 1);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for uid 8 in the last"), 1);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for uid 9 in the last"), 1);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for peers whose user is not known"), 1);
	ck_assert_uint_eq(tl_file_count(file, "(at most 2 logged a user, 3 "
	    "in all, in 60 s)"), 4);
	ck_assert_uint_eq(tl_file_count(file, "not logged"), 4);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* More users in an interval than the table holds: those beyond are
 * counted together, in one line, and none of their lines written. */
START_TEST(test_lograte_users_bounded)
{
	struct lbd_lograte r;
	struct tl_place    p;
	uv_loop_t          loop;
	char               file[PATH_MAX], text[128];
	long               uid;

	log_to_file(&p, file);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	lbd_lograte_init(&r, &loop, "refusals of things", 1, 1000, 60000);
	for (uid = 0; uid < LBD_LOGRATE_USERS; uid++) {
		ck_assert_int_eq(lbd_lograte_take(&r, uid), 1);
		ck_assert_int_eq(lbd_lograte_take(&r, uid), 0);
	}
	for (uid = 1000; uid < 1010; uid++)
		ck_assert_int_eq(lbd_lograte_take(&r, uid), 0);
	lbd_lograte_close(&r);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for uid"), LBD_LOGRATE_USERS);
	snprintf(text, sizeof(text), "10 refusals of things not logged for "
	    "users beyond the first %d", LBD_LOGRATE_USERS);
	ck_assert_uint_eq(tl_file_count(file, text), 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* A timer that only keeps a loop running until it fires. */
static void
hold_over(uv_timer_t *t)
{
	(void)t;
}

/* An interval's end: its timer writes the counts, and the next interval
 * writes each user's first lines again. */
START_TEST(test_lograte_interval_ends)
{
	struct lbd_lograte r;
	struct tl_place    p;
	uv_loop_t          loop;
	uv_timer_t         hold;
	char               file[PATH_MAX];

	log_to_file(&p, file);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	lbd_lograte_init(&r, &loop, "refusals of things", 1, 10, 20);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 1);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 0);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 0);
	/* The rate's timer is unreferenced: a timer of the test's keeps
	 * the loop running until past the interval's end. */
	uv_timer_init(&loop, &hold);
	uv_timer_start(&hold, hold_over, 100, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_uint_eq(tl_file_count(file, "2 refusals of things not "
	    "logged for uid 5 in the last"), 1);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 1);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 0);
	lbd_lograte_close(&r);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for uid 5 in the last"), 1);
	uv_close((uv_handle_t *)&hold, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* An interval below uv_now's millisecond is one: two lines of a user at
 * the same loop time are one interval's, the second held back. */
START_TEST(test_lograte_interval_at_least_1ms)
{
	struct lbd_lograte r;
	struct tl_place    p;
	uv_loop_t          loop;
	char               file[PATH_MAX];

	log_to_file(&p, file);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	lbd_lograte_init(&r, &loop, "refusals of things", 1, 10, 0);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 1);
	ck_assert_int_eq(lbd_lograte_take(&r, 5), 0);
	lbd_lograte_close(&r);
	ck_assert_uint_eq(tl_file_count(file, "1 refusals of things not "
	    "logged for uid 5"), 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The suite: its test cases in the order they run. */
static Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("settings");
	tcase_add_test(tc, test_config_defaults);
	tcase_add_test(tc, test_config_every_key);
	tcase_add_test(tc, test_config_bad_values);
	tcase_add_test(tc, test_config_bad_lines);
	tcase_add_test(tc, test_config_load);
	suite_add_tcase(s, tc);

	tc = tcase_create("swapwait");
	tcase_add_test(tc, test_swapwait_grows);
	tcase_add_test(tc, test_swapwait_budget);
	tcase_add_test(tc, test_swapwait_user_share);
	suite_add_tcase(s, tc);

	tc = tcase_create("lograte");
	tcase_add_test(tc, test_lograte_per_user);
	tcase_add_test(tc, test_lograte_users_bounded);
	tcase_add_test(tc, test_lograte_interval_ends);
	tcase_add_test(tc, test_lograte_interval_at_least_1ms);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_test(tc, test_store_generations);
	tcase_add_test(tc, test_store_holds);
	tcase_add_test(tc, test_store_damaged_moved_aside);
	tcase_add_test(tc, test_store_deleted_made_anew);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_daemon", daemon_suite(), CK_ENV);
}
