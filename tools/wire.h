/*
 * wire.h: a small synchronous client of lockbrokerd's wire protocol
 * (docs/PROTOCOL.md) for the lockbroker command, for what the public
 * library has no call for: holds kept for a process (ACQUIRE, RELEASE
 * with pid=) and LIST.  One connection, one request at a time: send a
 * line, read the lines up to its reply.  Lines are formatted and parsed
 * by the protocol library (protocol.h).
 */
#ifndef LB_WIRE_H
#define LB_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "protocol.h"

/* The socket of the system instance. */
#define WIRE_SYSTEM_SOCKET "/run/lockbroker/socket"

/* One connection to the daemon.  Filled by wire_open; no other field is
 * for the caller but socket (the path it was made to) and server. */
struct wire {
	int      fd;                /* -1: closed */
	uint64_t next_id;
	char     socket[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
	char     server[128];       /* the HELLO reply's server field */
	size_t   len;               /* bytes in buf */
	char     buf[LBP_LINE_MAX]; /* read, not yet taken */
};

/*
 * wire_socket_path: the socket the library would connect to, into out
 * (size bytes): $LOCKBROKER_SOCKET when set and not empty; else
 * $XDG_RUNTIME_DIR/lockbroker/socket when XDG_RUNTIME_DIR is absolute and
 * that socket exists; else WIRE_SYSTEM_SOCKET.  Returns out.
 */
const char *wire_socket_path(char *out, size_t size);

/*
 * wire_open: connects to wire_socket_path()'s socket and says HELLO
 * (client=lockbroker), waiting at most WIRE_ANSWER_WAIT_S for the reply.
 * Returns 0 with *w ready, or -1 with w->fd -1 and why (size bytes)
 * saying what failed, naming the socket ("no lockbroker daemon answers on
 * SOCKET: REASON").  Blocks.
 */
#define WIRE_ANSWER_WAIT_S 5.0
int wire_open(struct wire *w, char *why, size_t size);

/* wire_close: closes the connection (the daemon then drops what it holds
 * and waits for on this connection, but not holds kept for a pid).  Safe
 * on a closed one. */
void wire_close(struct wire *w);

/* wire_begin: starts request line o with verb and a fresh id of w, which
 * it returns; the caller adds the fields (lbp_add_*). */
uint64_t wire_begin(struct wire *w, struct lbp_out *o, enum lbp_verb verb);

/*
 * wire_call: ends line o (begun by wire_begin with id), sends it, and
 * reads lines until the reply to id, waiting at most wait seconds
 * (INFINITY: no limit) for it.  Every ITEM line of id before the reply is
 * passed to on_item(item, arg) when on_item is not NULL; a non-zero
 * return of on_item stops the call with -1 (why: "stopped").  Lines of
 * other ids are skipped.  Returns 0 with *reply the OK or ERR for id
 * (reply->verb says which); or -1 with why filled, naming the socket: the
 * line could not be formatted, I/O failed, the daemon closed the
 * connection, did not answer in time, sent a line too long or malformed,
 * or refused the whole connection (an ERR with id "-").  After -1 the
 * connection is no longer usable: close it.
 */
int wire_call(struct wire *w, struct lbp_out *o, uint64_t id, double wait,
    int (*on_item)(const struct lbp_msg *, void *), void *arg,
    struct lbp_msg *reply, char *why, size_t size);

/* wire_error: a person's text for an ERR reply: its message when it has
 * one, else its code's meaning (protocol.h).  Points into m or to a
 * static text. */
const char *wire_error(const struct lbp_msg *m);

/* wire_code: an ERR reply's code (LBP_EALREADY ...), or LBP_EINTERNAL
 * for a code this version does not know (a client treats it as a
 * failure). */
enum lbp_error wire_code(const struct lbp_msg *m);

#endif /* LB_WIRE_H */
