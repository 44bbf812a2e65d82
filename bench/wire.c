/*
 * wire.c: a bare client of the wire protocol (docs/PROTOCOL.md), one
 * blocking connection, with no library in between: for requests in bulk
 * (thousands of holds, connections, waiters) and to tell the library's
 * share of a round trip from the daemon's.  Lines are moved by the shared
 * wire module (wire/wire.h); this file only writes them as text and dies
 * on what a benchmark cannot go on after.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "protocol.h"

/*
 * wire_open: connects w to the daemon at socket and, with hello, opens
 * the session (w->daemon_pid from the reply).  0, or -1 with errno when
 * nobody answers.  Dies when the daemon refuses the HELLO.
 */
int
wire_open(struct wire *w, const char *socket_path, int hello)
{
	char why[512], line[512];
	int  saved;

	memset(w, 0, sizeof(*w));
	w->next_id = 1;
	if (lbw_open(&w->c, socket_path, NULL, NULL, why, sizeof(why)) ==
	    -1) {
		saved = errno;
		if (strstr(why, "too long") != NULL)
			die("%s", why);
		errno = saved;
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
	lbw_close(&w->c);
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
	if (lbw_send(&w->c, line, (size_t)n) == -1)
		die("write to the daemon: %s", strerror(errno));
}

/*
 * wire_reply: reads the next line the daemon sends into line (size
 * bytes, NUL-terminated, without its newline).  Returns its length, or -1
 * when the connection ends.  Blocks.
 */
int
wire_reply(struct wire *w, char *line, size_t size)
{
	char why[256];
	int  got;

	while ((got = lbw_take(&w->c, NULL, NULL, line, size)) == 0)
		if (lbw_fill(&w->c, INFINITY, why, sizeof(why)) == -1)
			return -1;
	if (got == -1)
		die("reply line too long");
	return (int)strlen(line);
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

/*
 * wire_ping_series: times samples PINGs on w (after warmup more), the
 * daemon's cost of its cheapest request, and prints them as broker.ping's
 * repetition rep.  Only while nothing else is in flight; dies when the
 * daemon refuses one or the connection ends.
 */
void
wire_ping_series(struct wire *w, int rep, int samples, int warmup)
{
	struct samples s;
	char           line[1024];
	uint64_t       t0;
	int            i;

	samples_init(&s, (size_t)samples);
	for (i = -warmup; i < samples; i++) {
		t0 = now_ns();
		if (wire_call(w, "PING", NULL, NULL, line, sizeof(line)) != 0)
			die("PING: %s", line);
		if (i >= 0)
			samples_add(&s, now_ns() - t0);
	}
	report_latency("broker.ping", rep, &s);
	samples_free(&s);
}
