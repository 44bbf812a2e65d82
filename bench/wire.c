/*
 * wire.c: a bare client of the wire protocol (docs/PROTOCOL.md), one
 * blocking connection, with no library in between: for requests in bulk
 * (thousands of holds, connections, waiters) and to tell the library's
 * share of a round trip from the daemon's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "protocol.h"

/* Writes all of buf; dies on error. */
static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write to the daemon: %s", strerror(errno));
		}
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * wire_open: connects w to the daemon at socket and, with hello, opens
 * the session (w->daemon_pid from the reply).  0, or -1 with errno when
 * nobody answers.  Dies when the daemon refuses the HELLO.
 */
int
wire_open(struct wire *w, const char *socket_path, int hello)
{
	struct sockaddr_un sun;
	char               line[512];

	memset(w, 0, sizeof(*w));
	w->next_id = 1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path))
		die("socket path too long: %s", socket_path);
	strcpy(sun.sun_path, socket_path);
	if ((w->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(w->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	if (!hello)
		return 0;
	if (wire_call(w, "HELLO", NULL, "version=1 client=lbbench", line,
	    sizeof(line)) != 0)
		die("HELLO refused: %s", line);
	w->daemon_pid = wire_field(line, "pid");
	return 0;
}

/* wire_close: closes the connection (the daemon then ends its holds and
 * waits). */
void
wire_close(struct wire *w)
{
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
}

/*
 * wire_send: sends "VERB ID [path=PATH] [EXTRA]" with the next id; extra
 * is already in wire form (or NULL).  Blocks until written; dies on error.
 */
void
wire_send(struct wire *w, const char *verb, const char *path,
    const char *extra)
{
	char enc[4096], line[8192];
	int  n;

	if (path != NULL && lbp_encode(path, strlen(path), enc,
	    sizeof(enc)) < 0)
		die("path too long: %s", path);
	n = snprintf(line, sizeof(line), "%s %llu%s%s%s%s\n", verb,
	    (unsigned long long)w->next_id++, path != NULL ? " path=" : "",
	    path != NULL ? enc : "", extra != NULL ? " " : "",
	    extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		die("request too long");
	write_all(w->fd, line, (size_t)n);
}

/*
 * wire_reply: reads the next line the daemon sends into line (size
 * bytes, NUL-terminated, without its newline).  Returns its length, or -1
 * when the connection ends.  Blocks.
 */
int
wire_reply(struct wire *w, char *line, size_t size)
{
	char   *nl;
	size_t  len;
	ssize_t n;

	while ((nl = memchr(w->buf, '\n', w->len)) == NULL) {
		if (w->len == sizeof(w->buf))
			die("reply line too long");
		n = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		w->len += (size_t)n;
	}
	len = (size_t)(nl - w->buf);
	if (len >= size)
		die("reply line longer than %zu bytes", size);
	memcpy(line, w->buf, len);
	line[len] = '\0';
	w->len -= len + 1;
	memmove(w->buf, nl + 1, w->len);
	return (int)len;
}

/*
 * wire_call: one request and its reply (the next line: use only while
 * nothing else is in flight).  0 when the reply is OK, 1 when it is ERR
 * (the line tells the code); dies when the connection ends.
 */
int
wire_call(struct wire *w, const char *verb, const char *path,
    const char *extra, char *line, size_t size)
{
	wire_send(w, verb, path, extra);
	if (wire_reply(w, line, size) < 0)
		die("the daemon closed the connection during %s", verb);
	return strncmp(line, "OK ", 3) == 0 ? 0 : 1;
}

/* wire_field: the decimal value of " key=" in a reply line, or -1. */
long
wire_field(const char *line, const char *key)
{
	char        pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	if ((p = strstr(line, pat)) == NULL)
		return -1;
	return strtol(p + strlen(pat), NULL, 10);
}
