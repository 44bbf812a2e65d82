/*
 * lines.c: the protocol on a wire.h connection: taking lines out of what
 * was read, reading one, a call with its ITEM lines and reply, HELLO, and
 * a person's text for an ERR reply.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfs.h"
#include "protocol.h"
#include "wire.h"

/* lbw_take: see wire.h. */
int
lbw_take(struct lbw_conn *c, struct lbp_msg *m, enum lbp_error *e,
    char *raw, size_t raw_size)
{
	char  *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (nl == NULL)
		return c->len == sizeof(c->buf) ? -1 : 0;
	n = (size_t)(nl - c->buf) + 1;
	if (m != NULL)
		*e = lbp_parse(c->buf, n, m, NULL);
	if (raw != NULL && raw_size > 0)
		snprintf(raw, raw_size, "%.*s", (int)(n - 1), c->buf);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return 1;
}

/* lbw_read: see wire.h. */
int
lbw_read(struct lbw_conn *c, double until, struct lbp_msg *m, char *why,
    size_t size)
{
	enum lbp_error e = LBP_OK;
	long           n;
	int            got, r = -1;

	while ((got = lbw_take(c, m, &e, NULL, 0)) == 0) {
		if ((n = lbw_fill(c, until, why, size)) == -1)
			goto out;
		if (n == 0) {
			snprintf(why, size, "no answer in time");
			goto out;
		}
	}
	if (got == -1)
		snprintf(why, size, "a reply longer than %d bytes",
		    LBP_LINE_MAX);
	else if (e != LBP_OK)
		snprintf(why, size, "a malformed reply (%s)",
		    lbp_error_name(e));
	else
		r = 0;
out:
	return r;
}

/* lbw_call: see wire.h. */
int
lbw_call(struct lbw_conn *c, struct lbp_out *o, uint64_t id, double until,
    int (*on_item)(const struct lbp_msg *, void *), void *arg,
    struct lbp_msg *reply, char *why, size_t size)
{
	const char *msg;
	char        what[256];
	int         r = -1;

	if (c->fd == -1) {
		snprintf(why, size, "lockbroker daemon on %s: not connected",
		    c->where);
		goto out;
	}
	if (lbp_end(o) == -1) {
		snprintf(why, size, "the request does not fit in a line of "
		    "%d bytes (a path too long?)", LBP_LINE_MAX);
		goto out;
	}
	if (lbw_send(c, o->buf, o->len) == -1) {
		snprintf(why, size, "lockbroker daemon on %s: write: %s",
		    c->where, strerror(errno));
		goto out;
	}
	for (;;) {
		if (lbw_read(c, until, reply, what, sizeof(what)) == -1) {
			snprintf(why, size, "lockbroker daemon on %s: %s",
			    c->where, what);
			goto out;
		}
		if (!reply->has_id) {
			msg = lbp_get(reply, "message");
			snprintf(why, size, "lockbroker daemon on %s refused "
			    "the connection: %s", c->where,
			    msg != NULL ? msg : lbw_error(reply));
			goto out;
		}
		if (reply->id != id)
			continue;
		if (reply->verb == LBP_MSG_OK || reply->verb == LBP_MSG_ERR)
			break;
		if (reply->verb == LBP_MSG_ITEM && on_item != NULL &&
		    on_item(reply, arg) != 0) {
			snprintf(why, size, "stopped");
			goto out;
		}
	}
	r = 0;
out:
	return r;
}

/* lbw_hello: see wire.h. */
int
lbw_hello(struct lbw_conn *c, uint64_t id, const char *client,
    double until, char *server, size_t server_size, char *why, size_t size)
{
	struct lbp_msg *m;
	struct lbp_out  o;
	const char     *v;
	char            what[512];
	uint64_t        version;
	int             r = -1;

	if ((m = malloc(sizeof(*m))) == NULL) {
		snprintf(why, size, "lockbroker daemon on %s: out of memory",
		    c->where);
		goto out;
	}
	/* The newest version first; a daemon that does not speak it (its
	 * EVERSION keeps the connection open) is asked for the one before,
	 * down to the oldest. */
	for (version = LBP_VERSION; ; version--) {
		lbp_begin(&o, LBP_MSG_HELLO, 1, id);
		lbp_add_u64(&o, "version", version);
		lbp_add_str(&o, "client", client);
		if (lbw_call(c, &o, id, until, NULL, NULL, m, what,
		    sizeof(what)) == -1) {
			snprintf(why, size, "%s (after HELLO)", what);
			goto out;
		}
		if (version == LBP_VERSION_MIN || m->verb != LBP_MSG_ERR ||
		    (v = lbp_get(m, "code")) == NULL ||
		    strcmp(v, "EVERSION") != 0)
			break;
	}
	if (m->verb == LBP_MSG_OK)
		lbp_get_u64(m, "version", &version);    /* the one agreed */
	c->version = (unsigned)version;
	if (m->verb != LBP_MSG_OK) {
		v = lbp_get(m, "code");
		snprintf(why, size, "lockbroker daemon on %s refused HELLO: %s "
		    "(%s)", c->where, lbw_error(m), v != NULL ? v : "?");
		goto out;
	}
	if (server != NULL && server_size > 0)
		snprintf(server, server_size, "%s", (v = lbp_get(m,
		    "server")) != NULL ? v : "");
	r = 0;
out:
	free(m);
	return r;
}

/* lbw_dial: see wire.h. */
int
lbw_dial(struct lbw_conn *c, const char *path, const char *client,
    double wait, char *server, size_t server_size, char *why, size_t size)
{
	char socket[sizeof(c->where)];
	int  r = -1;

	if (path == NULL)
		path = lbw_socket_path(socket, sizeof(socket));
	if (lbw_open(c, path, NULL, NULL, why, size) == -1)
		goto out;
	if (lbw_hello(c, 1, client, lockfs_now() + wait, server,
	    server_size, why, size) == -1) {
		lbw_close(c);
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lbw_error: see wire.h. */
const char *
lbw_error(const struct lbp_msg *m)
{
	const char *msg = lbp_get(m, "message");

	if (msg != NULL && *msg != '\0')
		return msg;
	return lbp_error_text(lbw_code(m));
}

/* lbw_code: see wire.h. */
enum lbp_error
lbw_code(const struct lbp_msg *m)
{
	const char *code = lbp_get(m, "code");
	int         e;

	if (code == NULL || (e = lbp_error_parse(code)) <= 0)
		return LBP_EINTERNAL;
	return (enum lbp_error)e;
}
