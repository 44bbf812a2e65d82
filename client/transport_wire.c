/*
 * transport_wire.c: the library's transport (transport.h) on wire/, the
 * protocol client shared with the command, whichever system's half of it
 * the build has: a Unix stream socket (wire/unix.c) or a Windows named
 * pipe (wire/pipe_win32.c).  The only file of the library that knows
 * what wire/ is.
 *
 * How it keeps transport.h's guarantees:
 *   - lb__tp_shutdown is lbw_shutdown: on Unix shutdown(2), which wakes a
 *     poll of the reader with POLLHUP and makes its read find the end; on
 *     Windows every read and write pending on the pipe is cancelled
 *     (CancelIoEx) and the connection marked shut, so that a blocked
 *     lb__tp_fill returns -1 and every later fill and send fails at once.
 *     A pipe cannot be half closed: the daemon sees the end when the
 *     connection is closed (lb__tp_close), which the reader does as soon
 *     as its fill has returned -1.
 *   - on_handle is called once the socket exists, before the connect (on
 *     Windows once the pipe is open, before HELLO; its handle is never
 *     inheritable).
 *   - lb__tp_drop closes the child's copy of the descriptor; there is no
 *     fork on Windows, where it is never called.
 */
#include <stdlib.h>

#include "transport.h"
#include "wire.h"

_Static_assert(LB__WHERE_MAX == sizeof(((struct lbw_conn *)0)->where),
    "a place for where the daemon listens holds a socket's path or a "
    "pipe's name");

struct lb__tp {
	struct lbw_conn w;
};

/* lb__tp_version: see transport.h. */
unsigned
lb__tp_version(const struct lb__tp *t)
{
	return t->w.version;
}

/* lb__answer_wait_s: see transport.h. */
const double lb__answer_wait_s = LBW_ANSWER_WAIT_S;

/* What lbw_open's hook passes on to lb__tp_open's. */
struct hook {
	void (*on_handle)(void *);
	void  *arg;
	int    called;
};

/* lbw_open's hook: the socket exists, not yet connected (on Windows: the
 * pipe is open, nothing said on it yet). */
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
		t->w.shut = 0;
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

/* lb__tp_fill: see transport.h and the top of this file. */
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
