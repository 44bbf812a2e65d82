/*
 * transport_win32.c: the library's transport (transport.h) on a Windows
 * named pipe, through wire/ (pipe_win32.c), the protocol client shared
 * with the command.  The only file of the library that knows what a pipe
 * is.
 *
 * How it keeps transport.h's guarantees:
 *   - lb__tp_shutdown (lbw_shutdown) cancels every read and write pending
 *     on the pipe, of any thread (CancelIoEx), and marks the connection
 *     shut, so that a blocked lb__tp_fill returns -1 and every later fill
 *     and send fails at once.  A pipe cannot be half closed: the daemon
 *     sees the end when the connection is closed (lb__tp_close), which
 *     the reader does as soon as its fill has returned -1.
 *   - on_handle is called as soon as the pipe is open, before HELLO; the
 *     handle is never inheritable, so nothing needs recording before it
 *     exists.
 *   - There is no fork on Windows: lb__tp_drop is never called (it
 *     closes the connection, should it ever be).
 */
#include <stdlib.h>

#include "transport.h"
#include "wire.h"

_Static_assert(LB__WHERE_MAX == sizeof(((struct lbw_conn *)0)->where),
    "a place for where the daemon listens holds a pipe's name");

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

/* lbw_open's hook: the pipe is open, nothing said on it yet. */
static void
hook_pipe(int fd, void *arg)
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

/* lb__tp_where: see transport.h: $LOCKBROKER_SOCKET (a pipe's name), else
 * \\.\pipe\lockbroker. */
const char *
lb__tp_where(char *out, size_t size)
{
	return lbw_socket_path(out, size);
}

/* lb__tp_open: see transport.h.  After a failed HELLO the pipe stays
 * open when the caller was told of it: the caller closes it. */
int
lb__tp_open(struct lb__tp *t, const char *where, uint64_t hello_id,
    const char *client, double until, void (*on_handle)(void *arg),
    void *arg, char *why, size_t size)
{
	struct hook h = { on_handle, arg, 0 };
	int         r = -1;

	if (lbw_open(&t->w, where, on_handle != NULL ? hook_pipe : NULL,
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

/* lb__tp_fill: see transport.h.  Overlapped: the wait ends at until, or
 * when lb__tp_shutdown cancels the read. */
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

/* lb__tp_shutdown: see transport.h and the top of this file.  Reads only
 * the descriptor, which the reader's lb__tp_fill does not change. */
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

/* lb__tp_drop: see transport.h: never called on Windows, which has no
 * fork; should it be, it closes t. */
void
lb__tp_drop(struct lb__tp *t)
{
	lbw_close(&t->w);
}
