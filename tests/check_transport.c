/*
 * check_transport.c: the library's transport (client/transport.h) against
 * a daemon's stand-in served by a thread of this program (testserver.h):
 * opening says HELLO and gets the answer, a daemon that is not there or
 * never answers, deadlines, a shutdown from another thread, the end of a
 * connection as the daemon sees it, a line that comes in pieces, a
 * daemon that is busy with another client, and LOCKBROKER_SOCKET.
 *
 * One suite for both systems: built for every host with the transport
 * (transport_wire.c) on the host's half of wire/ (a Unix socket, or a
 * named pipe, run under wine), and the server's OS part beside it
 * (testserver_unix.c, testserver_win32.c).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "lockfs.h"
#include "protocol.h"
#include "testlib.h"
#include "testserver.h"
#include "transport.h"

/* How long a test waits for what must come soon (a generous bound, so
 * that a loaded machine does not fail a test). */
#define SOON_S 10.0

/* The start of the reason a failed open gives. */
#define NO_DAEMON "no lockbroker daemon answers on "

/* on_handle's count of its calls. */
static void
count_call(void *arg)
{
	(*(int *)arg)++;
}

/* Opens a new connection to where, saying HELLO as request 1; asserts
 * that it worked and that on_handle was called once. */
static struct lb__tp *
open_ok(const char *where)
{
	struct lb__tp *t = lb__tp_new();
	char           why[512] = "";
	int            calls = 0;

	ck_assert_ptr_nonnull(t);
	ck_assert_msg(lb__tp_open(t, where, 1, "check_transport",
	    lockfs_now() + SOON_S, count_call, &calls, why,
	    sizeof(why)) == 0, "open %s: %s", where, why);
	ck_assert_int_eq(calls, 1);
	return t;
}

/* Asserts that why says that no daemon answers on where. */
static void
assert_no_daemon(const char *why, const char *where)
{
	char start[600];

	snprintf(start, sizeof(start), "%s%s: ", NO_DAEMON, where);
	ck_assert_msg(strncmp(why, start, strlen(start)) == 0 &&
	    strlen(why) > strlen(start), "why: %s", why);
}

/* ------------------------------------------------------------------ */
/* Opening.                                                             */

/* Open says HELLO, gets the answer, and calls on_handle once; the server
 * learns who connected but could never act as the client (on Windows the
 * pipe is opened at the identification level: whoever made the pipe's
 * name, a daemon or not, gets no token to use). */
START_TEST(open_says_hello)
{
	struct ts_server *s;
	struct lb__tp    *t;
	char              where[LB__WHERE_MAX];

	ts_where(where, sizeof(where), "hello");
	s = ts_start(where, TS_ANSWER, 1);
	t = open_ok(where);
	ck_assert_int_eq(ts_hellos(s), 1);
	if (ts_may_act(s) == -1)
		fprintf(stderr, "check_transport: whether the server could act "
		    "as its client cannot be told here (wine gives every "
		    "server an impersonation token)\n");
	else
		ck_assert_int_eq(ts_may_act(s), 0);
	lb__tp_free(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ts_stop(s);
}
END_TEST

/* A place where nobody serves: open fails at once, saying where and why;
 * on_handle was called at most once (on Unix the socket exists before the
 * connect fails), and the caller's close is then harmless. */
START_TEST(open_nobody_fails)
{
	struct lb__tp *t = lb__tp_new();
	char           where[LB__WHERE_MAX], why[512] = "";
	int            calls = 0;

	ck_assert_ptr_nonnull(t);
	ts_where(where, sizeof(where), "nobody");
	ck_assert_int_eq(lb__tp_open(t, where, 1, "check_transport",
	    lockfs_now() + SOON_S, count_call, &calls, why, sizeof(why)), -1);
	assert_no_daemon(why, where);
	ck_assert_int_le(calls, 1);
	lb__tp_close(t);
	lb__tp_free(t);
}
END_TEST

/* A plain file where the daemon should be: open fails, saying where and
 * why, and the file is left as it was. */
START_TEST(open_file_fails)
{
	struct tl_place p;
	struct lb__tp  *t = lb__tp_new();
	char            why[512] = "", text[64];

	ck_assert_ptr_nonnull(t);
	tl_place_make(&p, "not-a-daemon");
	tl_write_text(p.path, "text\n");
	ck_assert_int_eq(lb__tp_open(t, p.path, 1, "check_transport",
	    lockfs_now() + SOON_S, NULL, NULL, why, sizeof(why)), -1);
	assert_no_daemon(why, p.path);
	ck_assert_int_eq(tl_read_text(p.path, text, sizeof(text)), 5);
	ck_assert_str_eq(text, "text\n");
	lb__tp_free(t);
	tl_place_remove(p.dir);
}
END_TEST

/* A daemon that never answers HELLO: open fails once its deadline has
 * passed, and not before. */
START_TEST(open_no_answer_deadline)
{
	struct ts_server *s;
	struct lb__tp    *t = lb__tp_new();
	char              where[LB__WHERE_MAX], why[512] = "";
	double            until;

	ck_assert_ptr_nonnull(t);
	ts_where(where, sizeof(where), "silent");
	s = ts_start(where, TS_SILENT, 1);
	until = lockfs_now() + 0.3;
	ck_assert_int_eq(lb__tp_open(t, where, 1, "check_transport", until,
	    NULL, NULL, why, sizeof(why)), -1);
	ck_assert(lockfs_now() >= until);
	ck_assert_msg(strstr(why, "no answer in time") != NULL, "why: %s",
	    why);
	ck_assert_int_eq(ts_hellos(s), 1);
	lb__tp_free(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ts_stop(s);
}
END_TEST

/* The answer to HELLO in three writes with pauses: the line is put
 * together, and open succeeds. */
START_TEST(open_split_answer)
{
	struct ts_server *s;
	struct lb__tp    *t;
	char              where[LB__WHERE_MAX];

	ts_where(where, sizeof(where), "split");
	s = ts_start(where, TS_SPLIT, 1);
	t = open_ok(where);
	ck_assert_int_eq(ts_hellos(s), 1);
	lb__tp_free(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ts_stop(s);
}
END_TEST

/* What a second opener passes on to the test. */
struct opener {
	const char *where;
	int         r;
	char        why[512];
	struct lb__tp *t;
};

/* A thread that opens a connection to o->where (o->r: lb__tp_open's). */
static void *
opener_main(void *arg)
{
	struct opener *o = arg;

	o->r = lb__tp_open(o->t, o->where, 1, "check_transport",
	    lockfs_now() + SOON_S, NULL, NULL, o->why, sizeof(o->why));
	return NULL;
}

/* A daemon busy with a client (on Windows every instance of its pipe is
 * taken): a second client's open waits, and gets through once the first
 * has gone. */
START_TEST(open_waits_for_busy)
{
	struct ts_server *s;
	struct lb__tp    *first;
	struct opener     o = { 0 };
	pthread_t         th;
	char              where[LB__WHERE_MAX];

	ts_where(where, sizeof(where), "busy");
	s = ts_start(where, TS_ANSWER, 2);
	first = open_ok(where);
	o.where = where;
	o.r = 1;
	o.t = lb__tp_new();
	ck_assert_ptr_nonnull(o.t);
	ck_assert_int_eq(pthread_create(&th, NULL, opener_main, &o), 0);
	tl_sleep(0.3);
	ck_assert_int_eq(ts_hellos(s), 1);
	lb__tp_free(first);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(o.r == 0, "second open: %s", o.why);
	ck_assert_int_eq(ts_hellos(s), 2);
	lb__tp_free(o.t);
	ck_assert(ts_wait_ended(s, 2, SOON_S));
	ts_stop(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reading, sending, ending.                                            */

/* A daemon that says nothing more: fill returns 0 once its deadline has
 * passed, and not before. */
START_TEST(fill_deadline)
{
	struct ts_server *s;
	struct lb__tp    *t;
	char              where[LB__WHERE_MAX], why[512] = "";
	double            until;

	ts_where(where, sizeof(where), "quiet");
	s = ts_start(where, TS_ANSWER, 1);
	t = open_ok(where);
	until = lockfs_now() + 0.3;
	ck_assert_int_eq(lb__tp_fill(t, until, why, sizeof(why)), 0);
	ck_assert(lockfs_now() >= until);
	/* A deadline already gone: 0 at once. */
	ck_assert_int_eq(lb__tp_fill(t, lockfs_now() - 1, why, sizeof(why)),
	    0);
	lb__tp_free(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ts_stop(s);
}
END_TEST

/* What the reader thread of a test passes back. */
struct reader {
	struct lb__tp  *t;
	pthread_mutex_t mu;
	int             done;
	long            r;
	char            why[512];
};

/* A reader thread: one fill without a deadline. */
static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	char           why[512] = "";
	long           r;

	r = lb__tp_fill(rd->t, INFINITY, why, sizeof(why));
	pthread_mutex_lock(&rd->mu);
	rd->r = r;
	snprintf(rd->why, sizeof(rd->why), "%s", why);
	rd->done = 1;
	pthread_mutex_unlock(&rd->mu);
	return NULL;
}

/* Whether the reader rd has returned, waiting up to wait seconds. */
static int
reader_wait(struct reader *rd, double wait)
{
	double until = tl_now() + wait;
	int    done;

	for (;;) {
		pthread_mutex_lock(&rd->mu);
		done = rd->done;
		pthread_mutex_unlock(&rd->mu);
		if (done || tl_now() >= until)
			return done;
		tl_sleep(0.01);
	}
}

/* A shutdown from another thread ends a fill blocked without a deadline
 * with -1; later sends and fills fail; the daemon sees the end once the
 * connection is closed. */
START_TEST(shutdown_ends_fill)
{
	static const char ping[] = "PING 2\n";
	struct ts_server *s;
	struct reader     rd = { 0 };
	pthread_t         th;
	char              where[LB__WHERE_MAX], why[512] = "";

	ts_where(where, sizeof(where), "shutdown");
	s = ts_start(where, TS_ANSWER, 1);
	rd.t = open_ok(where);
	pthread_mutex_init(&rd.mu, NULL);
	ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
	tl_sleep(0.3);
	ck_assert_int_eq(reader_wait(&rd, 0), 0);       /* still blocked */
	lb__tp_shutdown(rd.t);
	ck_assert_msg(reader_wait(&rd, SOON_S), "the fill did not return");
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(rd.r == -1, "fill: %ld", rd.r);
	ck_assert(rd.why[0] != '\0');
	ck_assert_int_eq(lb__tp_send(rd.t, ping, strlen(ping)), -1);
	ck_assert_int_eq(lb__tp_fill(rd.t, lockfs_now() + SOON_S, why,
	    sizeof(why)), -1);
	lb__tp_close(rd.t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	lb__tp_free(rd.t);
	pthread_mutex_destroy(&rd.mu);
	ts_stop(s);
}
END_TEST

/* The daemon sees the client end when the client closes its connection,
 * with what was sent before read. */
START_TEST(close_seen_by_daemon)
{
	static const char hello[] = "HELLO 2 version=1\n";
	struct ts_server *s;
	struct lb__tp    *t = lb__tp_new();
	char              where[LB__WHERE_MAX], why[512];
	int               calls = 0;

	ck_assert_ptr_nonnull(t);
	ts_where(where, sizeof(where), "close");
	s = ts_start(where, TS_SILENT, 1);
	/* Open fails at once (its deadline is now) and leaves the
	 * connection open, since on_handle was called. */
	ck_assert_int_eq(lb__tp_open(t, where, 1, "check_transport",
	    lockfs_now(), count_call, &calls, why, sizeof(why)), -1);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(lb__tp_send(t, hello, strlen(hello)), 0);
	ck_assert_int_eq(ts_wait_ended(s, 1, 0.2), 0);
	lb__tp_close(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ck_assert_int_eq(ts_hellos(s), 2);
	lb__tp_close(t);                /* closing twice is harmless */
	lb__tp_free(t);
	ts_stop(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Where the daemon listens.                                            */

/* LOCKBROKER_SOCKET names where the daemon listens, and open there
 * works; without it (nor, on Unix, XDG_RUNTIME_DIR), the system
 * instance's place. */
START_TEST(where_from_environment)
{
	struct ts_server *s;
	struct lb__tp    *t;
	char              where[LB__WHERE_MAX], got[LB__WHERE_MAX];

	ts_where(where, sizeof(where), "environment");
	s = ts_start(where, TS_ANSWER, 1);
	ck_assert_int_eq(ts_os_setenv("LOCKBROKER_SOCKET", where), 0);
	ck_assert_str_eq(lb__tp_where(got, sizeof(got)), where);
	t = open_ok(got);
	ck_assert_int_eq(ts_hellos(s), 1);
	lb__tp_free(t);
	ck_assert(ts_wait_ended(s, 1, SOON_S));
	ts_stop(s);
	ck_assert_int_eq(ts_os_setenv("LOCKBROKER_SOCKET", NULL), 0);
	ck_assert_int_eq(ts_os_setenv("XDG_RUNTIME_DIR", NULL), 0);
	ck_assert_str_eq(lb__tp_where(got, sizeof(got)), ts_os_default_where);
}
END_TEST

/* The suite. */
static Suite *
transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("open");

	tcase_add_test(tc, open_says_hello);
	tcase_add_test(tc, open_nobody_fails);
	tcase_add_test(tc, open_file_fails);
	tcase_add_test(tc, open_no_answer_deadline);
	tcase_add_test(tc, open_split_answer);
	tcase_add_test(tc, open_waits_for_busy);
	suite_add_tcase(s, tc);
	tc = tcase_create("io");
	tcase_add_test(tc, fill_deadline);
	tcase_add_test(tc, shutdown_ends_fill);
	tcase_add_test(tc, close_seen_by_daemon);
	suite_add_tcase(s, tc);
	tc = tcase_create("where");
	tcase_add_test(tc, where_from_environment);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_transport", transport_suite(), CK_ENV);
}
