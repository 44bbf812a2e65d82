/*
 * transport_unix.c: the library's transport (transport.h) on a Unix stream
 * socket, through wire/, the protocol client shared with the command.
 * The only file of the library that knows what a socket is.
 */
#include <stdlib.h>

#include "transport.h"
#include "wire.h"

_Static_assert(LB__WHERE_MAX == sizeof(((struct lbw_conn *)0)->where),
    "a place for where the daemon listens holds a socket's path");

struct lb__tp {
	struct lbw_conn w;
};

/* lb__answer_wait_s: see transport.h. */
const double lb__answer_wait_s = LBW_ANSWER_WAIT_S;

/* What lbw_open's hook passes on to lb__tp_open's. */
struct hook {
	void (*on_handle)(void *);
	void  *arg;
	int    called;
};

/* lbw_open's hook: the socket exists, not yet connected. */
static void
hook_socket(int fd, void *arg)
{
	struct hook *h = arg;

	(void)fd;
	h->called = 1;
	h->on_handle(h->arg);
}

/* lb__tp_new: see transport.h. */
struct lb__tp *
lb__tp_new(void)
{
	struct lb__tp *t = malloc(sizeof(*t));

	if (t != NULL) {
		t->w.fd = -1;
		t->w.len = 0;
		t->w.where[0] = '\0';
	}
	return t;
}

/* lb__tp_free: see transport.h. */
void
lb__tp_free(struct lb__tp *t)
{
	if (t == NULL)
		return;
	lbw_close(&t->w);
	free(t);
}

/* lb__tp_where: see transport.h. */
const char *
lb__tp_where(char *out, size_t size)
{
	return lbw_socket_path(out, size);
}

/* lb__tp_open: see transport.h.  After a failed HELLO the socket stays
 * open when the caller was told of it: the caller closes it under its
 * own lock (fork safety). */
int
lb__tp_open(struct lb__tp *t, const char *where, uint64_t hello_id,
    const char *client, double until, void (*on_handle)(void *arg),
    void *arg, char *why, size_t size)
{
	struct hook h = { on_handle, arg, 0 };
	int         r = -1;

	if (lbw_open(&t->w, where, on_handle != NULL ? hook_socket : NULL,
	    &h, why, size) == -1)
		goto out;
	if (lbw_hello(&t->w, hello_id, client, until, NULL, 0, why,
	    size) == -1) {
		if (!h.called)
			lbw_close(&t->w);
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lb__tp_send: see transport.h. */
int
lb__tp_send(struct lb__tp *t, const char *buf, size_t len)
{
	return lbw_send(&t->w, buf, len);
}

/* lb__tp_take: see transport.h. */
int
lb__tp_take(struct lb__tp *t, struct lbp_msg *m, enum lbp_error *e)
{
	return lbw_take(&t->w, m, e, NULL, 0);
}

/* lb__tp_fill: see transport.h.  A shutdown(2) by another thread wakes
 * the poll with POLLHUP, and the read then finds the end. */
long
lb__tp_fill(struct lb__tp *t, double until, char *why, size_t size)
{
	return lbw_fill(&t->w, until, why, size);
}

/* lb__tp_call: see transport.h. */
int
lb__tp_call(struct lb__tp *t, struct lbp_out *o, uint64_t id, double until,
    struct lbp_msg *m, char *why, size_t size)
{
	return lbw_call(&t->w, o, id, until, NULL, NULL, m, why, size);
}

/* lb__tp_shutdown: see transport.h.  Reads only the descriptor, which the
 * reader's lb__tp_fill does not change (lbw_shutdown). */
void
lb__tp_shutdown(struct lb__tp *t)
{
	lbw_shutdown(&t->w);
}

/* lb__tp_close: see transport.h. */
void
lb__tp_close(struct lb__tp *t)
{
	lbw_close(&t->w);
}

/* lb__tp_drop: see transport.h.  The child's copy of the descriptor is
 * closed (lbw_close forgets a descriptor before it closes it, so the
 * number here is never one the parent freed). */
void
lb__tp_drop(struct lb__tp *t)
{
	lbw_close(&t->w);
}
