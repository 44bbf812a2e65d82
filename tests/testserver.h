/*
 * testserver.h: a daemon's stand-in for the transport suite
 * (check_transport): a thread of the test program that serves one
 * address, where the daemon would listen, for a given number of clients
 * in turn, and answers HELLO as lockbrokerd does (docs/PROTOCOL.md:
 * "OK ID version=1 server=... pid=..."), or never, or in pieces.
 *
 * Two parts: testserver.c, the portable part (the thread, the protocol,
 * what was seen), on the OS part below: testserver_unix.c (a Unix stream
 * socket) and testserver_win32.c (a named pipe of one instance, so that
 * a second client finds it busy while the first is served).
 *
 * The calls for a suite assert (check's ck_assert) where they say so.
 */
#ifndef TESTSERVER_H
#define TESTSERVER_H

#include <stddef.h>
#include <stdint.h>

/* What the server does with a HELLO. */
enum ts_mode {
	TS_ANSWER,      /* answers it in one write */
	TS_SPLIT,       /* answers it in three writes, 0.1 s apart */
	TS_SILENT       /* never answers anything */
};

struct ts_server;

/* ts_where: a fresh address for a server of this run named name, into out
 * (size bytes): a socket's path in tl_top, or a pipe's name that tells
 * the run's process.  Nothing listens there yet.  Asserts. */
void ts_where(char *out, size_t size, const char *name);

/* ts_start: listens at where (ts_where's) and starts the thread that
 * serves clients clients, one after the other, in mode mode.  Returns
 * the server, for ts_stop.  Asserts. */
struct ts_server *ts_start(const char *where, enum ts_mode mode,
    int clients);

/* ts_hellos: the number of HELLO lines the server has read so far. */
int ts_hellos(struct ts_server *s);

/* ts_may_act: of the clients whose HELLO the server read, how many it
 * could have acted as (on Windows: impersonating the client gave it a
 * token at the impersonation level or above; a Unix socket's server
 * never can); -1 when that cannot be told (under wine, which ignores
 * the level a client asks for). */
int ts_may_act(struct ts_server *s);

/* ts_wait_ended: waits up to wait seconds until the server has seen
 * clients clients end their connection; 1 when it has, else 0. */
int ts_wait_ended(struct ts_server *s, int clients, double wait);

/* ts_stop: waits for the thread (every client must have ended: see
 * ts_wait_ended), stops listening and frees s.  Asserts. */
void ts_stop(struct ts_server *s);

/* ------------------------------------------------------------------ */
/* The OS part (testserver_unix.c, testserver_win32.c), for
 * testserver.c.  None of these asserts. */

/* Where the server listens and the client it serves (descriptors on
 * Unix, handles on Windows; -1: none). */
struct ts_os {
	intptr_t listener;
	intptr_t conn;
};

/* The default address a client uses when LOCKBROKER_SOCKET (and on Unix
 * XDG_RUNTIME_DIR) is not set. */
extern const char ts_os_default_where[];

/* ts_os_where: see ts_where; 0, or -1 when it does not fit. */
int ts_os_where(char *out, size_t size, const char *name);

/* ts_os_setenv: sets the environment variable name to value (NULL:
 * unsets it).  0, or -1. */
int ts_os_setenv(const char *name, const char *value);

/* ts_os_listen: listens at where, before any client comes, with o->conn
 * -1.  0, or -1 with a message into why (size bytes). */
int ts_os_listen(struct ts_os *o, const char *where, char *why,
    size_t size);

/* ts_os_may_act: 1 when the server, taking on o->conn's client (after
 * reading from it), could act as that client (a token it may use to
 * reach resources); else 0; -1 when it cannot be told. */
int ts_os_may_act(struct ts_os *o);

/* ts_os_accept: waits for the next client and makes it o->conn.  0, or
 * -1 with a message into why. */
int ts_os_accept(struct ts_os *o, char *why, size_t size);

/* ts_os_read: reads what o->conn sent, size bytes at most: > 0 bytes; 0
 * when the client ended the connection; -1 on an error. */
long ts_os_read(struct ts_os *o, char *buf, size_t size);

/* ts_os_write: writes the len bytes of buf on o->conn.  0, or -1. */
int ts_os_write(struct ts_os *o, const char *buf, size_t len);

/* ts_os_hangup: ends the connection with o->conn, ready for the next
 * client (o->conn -1). */
void ts_os_hangup(struct ts_os *o);

/* ts_os_close: stops listening (after ts_os_hangup). */
void ts_os_close(struct ts_os *o);

#endif
