/*
 * wire.h: synchronous protocol I/O with lockbrokerd, shared by the library,
 * the command and the benchmarks: where the daemon listens, connecting,
 * sending a line, reading and taking lines, and one call (a request, its
 * ITEM lines and its reply).  Lines are formatted and parsed by the pure
 * protocol library (protocol.h); this module only moves them.
 *
 * Two halves, so that a second platform adds a transport and nothing else:
 *   transport (unix.c: a Unix stream socket; pipe_win32.c: a Windows
 *                        named pipe)
 *                        lbw_socket_path, lbw_open, lbw_send, lbw_fill,
 *                        lbw_shutdown, lbw_close: one stream to the daemon
 *   lines (lines.c)      lbw_take, lbw_read, lbw_call, lbw_hello,
 *                        lbw_dial, lbw_error, lbw_code: the protocol on
 *                        that stream
 * Nothing here starts a thread or keeps state beyond struct lbw_conn; the
 * caller serialises the calls on one connection.
 */
#ifndef LB_WIRE_H
#define LB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* How long a client waits for the answer to HELLO (and other quick
 * requests) before it takes the daemon for gone. */
#define LBW_ANSWER_WAIT_S 5.0

/* One connection to the daemon.  fd and where are for the caller to read
 * (a caller marks a connection closed before its first lbw_open by
 * setting fd to -1); the rest is the module's.  fd is a descriptor of the
 * C library: on Unix the socket; on Windows a C runtime descriptor
 * (_open_osfhandle) of the pipe's handle, which only this module uses. */
struct lbw_conn {
	int      fd;                /* -1: closed */
	int      shut;              /* lbw_shutdown was called (read and
	                               written atomically) */
	char     where[160];        /* the socket's path or the pipe's name,
	                               for messages */
	unsigned version;           /* the protocol's, agreed at HELLO */
	size_t   len;               /* bytes in buf */
	char     buf[LBP_LINE_MAX]; /* read, not yet taken */
};

/*
 * lbw_socket_path: the socket a client connects to, into out (size bytes):
 * $LOCKBROKER_SOCKET when set and not empty; else the user instance's
 * $XDG_RUNTIME_DIR/LBP_USER_SOCKET when XDG_RUNTIME_DIR is absolute and
 * that socket exists; else LBP_SYSTEM_SOCKET.  On Windows, the named
 * pipe: $LOCKBROKER_SOCKET when set and not empty, else LBP_SYSTEM_PIPE.
 * Returns out.
 */
const char *lbw_socket_path(char *out, size_t size);

/*
 * lbw_open: connects c to the socket at path (close-on-exec).  When
 * on_socket is not NULL it is called with the new descriptor before the
 * connect, so that a caller can record it (for its fork handlers).
 * Returns 0 with c open and empty; or -1 with c->fd -1 and why filled,
 * naming the socket ("no lockbroker daemon answers on PATH: REASON").
 * Blocks for the connect only.
 *
 * On Windows path is a local named pipe's name (\\.\pipe\NAME; anything
 * else is refused, and no file is opened), opened for overlapped I/O,
 * not inherited, at the identification level: the server may learn who
 * the client is, never act as it (a user may make the pipe's name while
 * no daemon runs; the daemon takes the client process's token to act on
 * files as the client, docs/WINDOWS.md).  When every instance of the pipe
 * is busy it waits for one (WaitNamedPipeW) for LBW_ANSWER_WAIT_S at
 * most; a pipe nobody serves fails at once.  on_socket is called once the
 * pipe is open (there is no descriptor before), before anything is read.
 */
int lbw_open(struct lbw_conn *c, const char *path,
    void (*on_socket)(int fd, void *arg), void *arg, char *why, size_t size);

/* lbw_send: writes all of buf on c.  0, or -1 with errno (never raises
 * SIGPIPE; EPIPE after lbw_shutdown). */
int lbw_send(struct lbw_conn *c, const char *buf, size_t len);

/*
 * lbw_fill: waits until the monotonic time until (lockfs_now(); INFINITY:
 * no limit) for bytes from the daemon and appends what came to c's buffer.
 * Returns the number of bytes read (> 0); 0 when the time is up; or -1
 * with why filled (the daemon closed the connection, an I/O error, the
 * buffer is full).
 */
long lbw_fill(struct lbw_conn *c, double until, char *why, size_t size);

/*
 * lbw_shutdown: ends c both ways, from any thread, while another may block
 * in lbw_fill or lbw_send on it: that call returns -1, and so does every
 * later one until lbw_close.  Reads only c->fd (which neither lbw_fill
 * nor lbw_send changes) and sets c->shut.  On Unix the daemon sees the
 * end at once (shutdown(2)); a Windows pipe cannot be half closed, so
 * there the daemon sees it at lbw_close.  Safe on a closed c.
 */
void lbw_shutdown(struct lbw_conn *c);

/* lbw_close: closes c (the daemon then ends what it held and waited for on
 * this connection, but not holds kept for a pid).  Safe on a closed one;
 * keeps errno. */
void lbw_close(struct lbw_conn *c);

/*
 * lbw_take: takes the first whole line out of c's buffer.  With m, parses
 * it into *m (*e: the parse result); with raw, copies it there instead,
 * without its newline and NUL-terminated (raw_size bytes at most; a longer
 * line is cut).  Returns 1 when there was a line, 0 when there is no whole
 * line yet, -1 when the buffer is full without one.
 */
int lbw_take(struct lbw_conn *c, struct lbp_msg *m, enum lbp_error *e,
    char *raw, size_t raw_size);

/*
 * lbw_read: reads the next line into *m, waiting until the monotonic time
 * until (INFINITY: no limit).  0, or -1 with why filled (no answer in time,
 * the connection closed, an I/O error, a line too long or malformed).
 */
int lbw_read(struct lbw_conn *c, double until, struct lbp_msg *m,
    char *why, size_t size);

/*
 * lbw_call: ends line o (begun with lbp_begin and the id id), sends it,
 * and reads lines until the reply to id, waiting until the monotonic time
 * until (INFINITY: no limit).  Every ITEM line of id before the reply is
 * passed to on_item(item, arg) when on_item is not NULL; a non-zero return
 * of on_item stops the call with -1 (why: "stopped").  Lines of other ids
 * are skipped.  Returns 0 with *reply the OK or ERR for id (reply->verb
 * says which); or -1 with why filled, naming the socket: the line could
 * not be formatted, I/O failed, the daemon closed the connection, did not
 * answer in time, sent a line too long or malformed, or refused the whole
 * connection (an ERR without an id).  After -1 the connection is no
 * longer usable: close it.
 */
int lbw_call(struct lbw_conn *c, struct lbp_out *o, uint64_t id,
    double until, int (*on_item)(const struct lbp_msg *, void *), void *arg,
    struct lbp_msg *reply, char *why, size_t size);

/*
 * lbw_hello: says HELLO on c (request id id, client=client) and waits
 * until the monotonic time until for the answer: version LBP_VERSION, or,
 * while the daemon does not speak the one asked (EVERSION), the one
 * before, down to LBP_VERSION_MIN; the one agreed in c->version.  Returns 0, with the
 * reply's server field in server (server_size bytes, "" without one) when
 * server is not NULL; or -1 with why filled, naming the socket (no answer,
 * or a refusal with its reason and code).
 */
int lbw_hello(struct lbw_conn *c, uint64_t id, const char *client,
    double until, char *server, size_t server_size, char *why, size_t size);

/*
 * lbw_dial: lbw_open on path (NULL: lbw_socket_path()'s), then lbw_hello
 * with request id 1, waiting at most wait seconds for the answer.  0 with
 * c ready (the next request id is 2); or -1 with c closed and why filled,
 * naming the socket.
 */
int lbw_dial(struct lbw_conn *c, const char *path, const char *client,
    double wait, char *server, size_t server_size, char *why, size_t size);

/* lbw_error: a person's text for an ERR reply: its message when it has
 * one, else its code's meaning.  Points into m or to a static text. */
const char *lbw_error(const struct lbp_msg *m);

/* lbw_code: an ERR reply's code (LBP_EALREADY ...), or LBP_EINTERNAL for
 * a code this version does not know (a client treats it as a failure). */
enum lbp_error lbw_code(const struct lbp_msg *m);

#endif /* LB_WIRE_H */
