/*
 * testserver.c: the portable part of the daemon's stand-in (see
 * testserver.h): a thread that serves its clients in turn, reading lines
 * and answering HELLO as lockbrokerd does, and counts what it saw.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "protocol.h"
#include "testlib.h"
#include "testserver.h"

struct ts_server {
	struct ts_os    os;
	enum ts_mode    mode;
	int             clients;        /* to serve, in turn */
	pthread_t       thread;
	pthread_mutex_t mu;             /* guards what follows */
	int             hellos;         /* HELLO lines read */
	int             ended;          /* clients whose end was seen */
	int             may_act;        /* clients it could have acted as */
	char            failed[256];    /* what went wrong, "" when nothing */
	char            buf[LBP_LINE_MAX];      /* read, not yet a line */
};

/* ts_where: see testserver.h. */
void
ts_where(char *out, size_t size, const char *name)
{
	ck_assert_int_eq(ts_os_where(out, size, name), 0);
}

/* Notes under s's lock that the server read a HELLO (hello) or saw a
 * client end (end). */
static void
server_note(struct ts_server *s, int hello, int end)
{
	int act = hello ? ts_os_may_act(&s->os) : 0;

	pthread_mutex_lock(&s->mu);
	s->may_act = act < 0 || s->may_act < 0 ? -1 : s->may_act + act;
	s->hellos += hello;
	s->ended += end;
	pthread_mutex_unlock(&s->mu);
}

/* Answers the HELLO line m as the daemon does, in s's mode; 0, or -1. */
static int
server_answer(struct ts_server *s, const struct lbp_msg *m)
{
	struct lbp_out o;
	uint64_t       version = LBP_VERSION_MIN;
	size_t         third;

	lbp_get_u64(m, "version", &version);    /* the one asked */
	lbp_begin(&o, LBP_MSG_OK, 1, m->id);
	lbp_add_u64(&o, "version", version);
	lbp_add_str(&o, "server", "testserver/1");
	lbp_add_u64(&o, "pid", (uint64_t)getpid());
	if (lbp_end(&o) == -1)
		return -1;
	if (s->mode == TS_ANSWER)
		return ts_os_write(&s->os, o.buf, o.len);
	/* TS_SPLIT: the line in three writes, with pauses that let the
	 * client read each part alone. */
	third = o.len / 3;
	if (ts_os_write(&s->os, o.buf, third) == -1)
		return -1;
	tl_sleep(0.1);
	if (ts_os_write(&s->os, o.buf + third, third) == -1)
		return -1;
	tl_sleep(0.1);
	return ts_os_write(&s->os, o.buf + 2 * third, o.len - 2 * third);
}

/* Serves one client: reads its lines until it ends, answering HELLO.
 * 0 when it ended, -1 on an error (into s->failed). */
static int
server_serve(struct ts_server *s)
{
	char          *buf = s->buf;
	struct lbp_msg m;
	size_t         len = 0, n;
	char          *nl;
	long           got;

	for (;;) {
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			n = (size_t)(nl - buf) + 1;
			if (lbp_parse(buf, n, &m, NULL) == LBP_OK &&
			    m.verb == LBP_MSG_HELLO) {
				server_note(s, 1, 0);
				if (s->mode != TS_SILENT &&
				    server_answer(s, &m) == -1) {
					snprintf(s->failed, sizeof(s->failed),
					    "writing the answer to HELLO");
					return -1;
				}
			}
			memmove(buf, buf + n, len - n);
			len -= n;
		}
		if (len == sizeof(s->buf)) {
			snprintf(s->failed, sizeof(s->failed), "a line too long");
			return -1;
		}
		if ((got = ts_os_read(&s->os, buf + len,
		    sizeof(s->buf) - len)) == 0)
			return 0;
		if (got < 0) {
			snprintf(s->failed, sizeof(s->failed), "read failed");
			return -1;
		}
		len += (size_t)got;
	}
}

/* The server's thread: its clients in turn. */
static void *
server_main(void *arg)
{
	struct ts_server *s = arg;
	int               i;

	for (i = 0; i < s->clients; i++) {
		if (ts_os_accept(&s->os, s->failed, sizeof(s->failed)) == -1)
			break;
		if (server_serve(s) == -1) {
			ts_os_hangup(&s->os);
			break;
		}
		ts_os_hangup(&s->os);
		server_note(s, 0, 1);
	}
	return NULL;
}

/* ts_start: see testserver.h. */
struct ts_server *
ts_start(const char *where, enum ts_mode mode, int clients)
{
	struct ts_server *s = calloc(1, sizeof(*s));
	char              why[256];

	ck_assert_ptr_nonnull(s);
	s->mode = mode;
	s->clients = clients;
	s->os.listener = -1;
	s->os.conn = -1;
	pthread_mutex_init(&s->mu, NULL);
	if (ts_os_listen(&s->os, where, why, sizeof(why)) == -1)
		ck_abort_msg("testserver at %s: %s", where, why);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
	return s;
}

/* ts_hellos: see testserver.h. */
int
ts_hellos(struct ts_server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->hellos;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ts_may_act: see testserver.h. */
int
ts_may_act(struct ts_server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->may_act;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ts_wait_ended: see testserver.h.  Looks every 10 ms. */
int
ts_wait_ended(struct ts_server *s, int clients, double wait)
{
	double until = tl_now() + wait;
	int    n;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		n = s->ended;
		pthread_mutex_unlock(&s->mu);
		if (n >= clients)
			return 1;
		if (tl_now() >= until)
			return 0;
		tl_sleep(0.01);
	}
}

/* ts_stop: see testserver.h. */
void
ts_stop(struct ts_server *s)
{
	ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
	ts_os_close(&s->os);
	pthread_mutex_destroy(&s->mu);
	ck_assert_msg(s->failed[0] == '\0', "testserver: %s", s->failed);
	free(s);
}
