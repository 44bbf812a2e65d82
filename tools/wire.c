/*
 * wire.c: the lockbroker command's own connection to lockbrokerd (see
 * wire.h): connect, HELLO, then one request at a time, its ITEM lines and
 * its reply read in the calling thread.  No threads, no reconnection: the
 * command decides what a lost connection means.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "wire.h"

#define CLIENT_NAME "lockbroker"

/* Seconds on the monotonic clock. */
static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* wire_socket_path: see wire.h.  The same resolution as the library's
 * (client/broker.c), so that the command and the library meet the same
 * daemon. */
const char *
wire_socket_path(char *out, size_t size)
{
	const char *env = getenv("LOCKBROKER_SOCKET");
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (env != NULL && *env != '\0') {
		snprintf(out, size, "%s", env);
		return out;
	}
	if (run != NULL && run[0] == '/' &&
	    snprintf(out, size, "%s/lockbroker/socket", run) < (int)size &&
	    access(out, F_OK) == 0)
		return out;
	snprintf(out, size, "%s", WIRE_SYSTEM_SOCKET);
	return out;
}

/* Writes all of buf; 0, or -1 with errno.  Never raises SIGPIPE. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Takes the first whole line out of w's buffer and parses it into *m.
 * Returns 1 when there was one (*e: its parse result), 0 when there is no
 * whole line yet, -1 when the buffer is full without one.
 */
static int
line_take(struct wire *w, struct lbp_msg *m, enum lbp_error *e)
{
	char  *nl = memchr(w->buf, '\n', w->len);
	size_t n;

	if (nl == NULL)
		return w->len == sizeof(w->buf) ? -1 : 0;
	n = (size_t)(nl - w->buf) + 1;
	*e = lbp_parse(w->buf, n, m, NULL);
	memmove(w->buf, w->buf + n, w->len - n);
	w->len -= n;
	return 1;
}

/*
 * Reads the next line into *m, waiting until the monotonic time until
 * (INFINITY: no limit).  0, or -1 with why filled (timeout, EOF, a read
 * error, a line too long or malformed).
 */
static int
line_read(struct wire *w, double until, struct lbp_msg *m, char *why,
    size_t size)
{
	struct pollfd  pfd = { .fd = w->fd, .events = POLLIN };
	enum lbp_error e = LBP_OK;
	double         left;
	ssize_t        n;
	int            got, ms, r = -1;

	while ((got = line_take(w, m, &e)) == 0) {
		ms = -1;
		if (!isinf(until)) {
			if ((left = until - now_mono()) <= 0) {
				snprintf(why, size, "no answer in time");
				goto out;
			}
			ms = left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1;
		}
		if (poll(&pfd, 1, ms) == -1 && errno != EINTR) {
			snprintf(why, size, "poll: %s", strerror(errno));
			goto out;
		}
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		n = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);
		if (n == 0) {
			snprintf(why, size, "the daemon closed the connection");
			goto out;
		}
		if (n == -1 && errno != EINTR && errno != EAGAIN) {
			snprintf(why, size, "read: %s", strerror(errno));
			goto out;
		}
		if (n > 0)
			w->len += (size_t)n;
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

/* wire_begin: see wire.h. */
uint64_t
wire_begin(struct wire *w, struct lbp_out *o, enum lbp_verb verb)
{
	uint64_t id = ++w->next_id;

	lbp_begin(o, verb, 1, id);
	return id;
}

/* wire_call: see wire.h. */
int
wire_call(struct wire *w, struct lbp_out *o, uint64_t id, double wait,
    int (*on_item)(const struct lbp_msg *, void *), void *arg,
    struct lbp_msg *reply, char *why, size_t size)
{
	const char *msg;
	double      until = isinf(wait) ? INFINITY : now_mono() + wait;
	char        what[256];
	int         r = -1;

	if (w->fd == -1) {
		snprintf(why, size, "lockbroker daemon on %s: not connected",
		    w->socket);
		goto out;
	}
	if (lbp_end(o) == -1) {
		snprintf(why, size, "the request does not fit in a line of "
		    "%d bytes (a path too long?)", LBP_LINE_MAX);
		goto out;
	}
	if (write_all(w->fd, o->buf, o->len) == -1) {
		snprintf(why, size, "lockbroker daemon on %s: write: %s",
		    w->socket, strerror(errno));
		goto out;
	}
	for (;;) {
		if (line_read(w, until, reply, what, sizeof(what)) == -1) {
			snprintf(why, size, "lockbroker daemon on %s: %s",
			    w->socket, what);
			goto out;
		}
		if (!reply->has_id) {
			msg = lbp_get(reply, "message");
			snprintf(why, size, "lockbroker daemon on %s refused "
			    "the connection: %s", w->socket,
			    msg != NULL ? msg : wire_error(reply));
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

/* wire_open: see wire.h. */
int
wire_open(struct wire *w, char *why, size_t size)
{
	struct sockaddr_un sun;
	struct lbp_msg    *m = NULL;
	struct lbp_out     o;
	const char        *server;
	char               what[512];
	uint64_t           id;
	int                r = -1;

	w->fd = -1;
	w->next_id = 0;
	w->len = 0;
	w->server[0] = '\0';
	wire_socket_path(w->socket, sizeof(w->socket));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(w->socket) >= sizeof(sun.sun_path)) {
		snprintf(why, size, "no lockbroker daemon on %s: the socket "
		    "path is too long", w->socket);
		goto out;
	}
	memcpy(sun.sun_path, w->socket, strlen(w->socket));
	if ((w->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(w->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(why, size, "no lockbroker daemon answers on %s: %s",
		    w->socket, strerror(errno));
		goto out;
	}
	if ((m = malloc(sizeof(*m))) == NULL) {
		snprintf(why, size, "lockbroker daemon on %s: out of memory",
		    w->socket);
		goto out;
	}
	id = wire_begin(w, &o, LBP_MSG_HELLO);
	lbp_add_u64(&o, "version", LBP_VERSION);
	lbp_add_str(&o, "client", CLIENT_NAME);
	if (wire_call(w, &o, id, WIRE_ANSWER_WAIT_S, NULL, NULL, m, what,
	    sizeof(what)) == -1) {
		snprintf(why, size, "%s (after HELLO)", what);
		goto out;
	}
	if (m->verb != LBP_MSG_OK) {
		snprintf(why, size, "lockbroker daemon on %s refused HELLO: %s",
		    w->socket, wire_error(m));
		goto out;
	}
	if ((server = lbp_get(m, "server")) != NULL)
		snprintf(w->server, sizeof(w->server), "%s", server);
	r = 0;
out:
	free(m);
	if (r == -1)
		wire_close(w);
	return r;
}

/* wire_close: see wire.h. */
void
wire_close(struct wire *w)
{
	int saved = errno;

	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	w->len = 0;
	errno = saved;
}

/* wire_error: see wire.h. */
const char *
wire_error(const struct lbp_msg *m)
{
	const char *msg = lbp_get(m, "message");

	if (msg != NULL && *msg != '\0')
		return msg;
	return lbp_error_text(wire_code(m));
}

/* wire_code: see wire.h. */
enum lbp_error
wire_code(const struct lbp_msg *m)
{
	const char *code = lbp_get(m, "code");
	int         e;

	if (code == NULL || (e = lbp_error_parse(code)) <= 0)
		return LBP_EINTERNAL;
	return (enum lbp_error)e;
}
