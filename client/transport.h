/*
 * transport.h: how liblockbroker reaches lockbrokerd: one connection, a
 * stream of protocol lines.  Internal: not installed.
 *
 * The connection's life cycle, the reader thread and the requests reach
 * the daemon through these calls and nothing else (no descriptor, socket
 * or path syntax leaks out of the implementation).  Lines are formatted
 * and parsed by the pure protocol library (protocol.h); a transport only
 * moves them.  The implementation is transport_wire.c, on wire/ (the
 * synchronous protocol client shared with the command), whose system half
 * the build chooses: a Unix stream socket or a Windows named pipe;
 * tests/check_transport tests it on both.
 *
 * Another would be a file that provides every call below and struct
 * lb__tp, with these guarantees, on which the rest relies:
 *   - Threads: the caller serialises opening, reading (lb__tp_fill,
 *     lb__tp_take, lb__tp_call) and closing of one connection, and
 *     serialises the sends; but one thread may send, or shut the
 *     connection down, while another blocks reading it.
 *   - lb__tp_shutdown, from any thread, ends a blocked lb__tp_fill with -1
 *     (the reader's cue that the connection is lost) and makes later sends
 *     fail; the daemon sees the connection end.
 *   - lb__tp_open calls on_handle once the system object exists and before
 *     it blocks, so that the caller can record the connection for its fork
 *     handler before it can be inherited.
 *   - lb__tp_drop is safe in a fork child on a connection in any state
 *     (open, being opened, closed), takes no lock and frees nothing: the
 *     child then holds nothing of the parent's connection (the daemon ends
 *     the parent's holds when the parent ends).  Where there is no fork, it
 *     is never called.
 *   - The deadlines are monotonic times of lockfs_now (INFINITY: none);
 *     signals (EINTR) never end a wait early.
 */
#ifndef LB_TRANSPORT_H
#define LB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* How long the client waits for the answer to HELLO, RECLAIM and the
 * other requests it makes while it settles with a daemon, in seconds: the
 * implementation's (wire.h's LBW_ANSWER_WAIT_S for transport_wire.c). */
extern const double lb__answer_wait_s;

/* The size of a place to write where the daemon listens (with its NUL). */
#define LB__WHERE_MAX 160

/* One connection to the daemon, with the bytes read from it that are not
 * yet a whole line.  Opaque. */
struct lb__tp;

/* lb__tp_new: a closed connection; NULL when out of memory.
 * lb__tp_free: closes t when it is open, and frees it (NULL: nothing). */
struct lb__tp *lb__tp_new(void);
void           lb__tp_free(struct lb__tp *t);

/* lb__tp_where: where the daemon listens, for lb__tp_open and messages,
 * into out (size bytes; LB__WHERE_MAX is enough): $LOCKBROKER_SOCKET, or
 * the user instance's when it runs, or the system instance's.  Returns
 * out. */
const char *lb__tp_where(char *out, size_t size);

/*
 * lb__tp_open: connects t to the daemon at where and says HELLO (request
 * id hello_id, as client), waiting until the monotonic time until for the
 * answer; on_handle(arg) is called as described at the top (when not
 * NULL).  0 with t open, holding what was read after the reply; or -1
 * with why filled, naming where: then t is closed, unless on_handle was
 * called, in which case the caller closes it (lb__tp_close).
 */
int lb__tp_open(struct lb__tp *t, const char *where, uint64_t hello_id,
    const char *client, double until, void (*on_handle)(void *arg),
    void *arg, char *why, size_t size);

/* lb__tp_version: the protocol version t's HELLO agreed (t open). */
unsigned lb__tp_version(const struct lb__tp *t);

/* lb__tp_send: writes the len bytes of buf (whole lines) on t.  0, or -1
 * (then the connection is to be shut down).  Never raises SIGPIPE. */
int lb__tp_send(struct lb__tp *t, const char *buf, size_t len);

/*
 * lb__tp_take: takes the first whole line out of what was read on t and
 * parses it into *m (*e: the parse result).  1 when there was a line, 0
 * when there is no whole line yet, -1 when a line is longer than the
 * protocol allows (the connection is to be given up).
 */
int lb__tp_take(struct lb__tp *t, struct lbp_msg *m, enum lbp_error *e);

/*
 * lb__tp_fill: waits until the monotonic time until for bytes from the
 * daemon and keeps them for lb__tp_take.  The number of bytes (> 0); 0
 * when the time is up; or -1 with why filled (the daemon or
 * lb__tp_shutdown ended the connection, an I/O error, no room).
 */
long lb__tp_fill(struct lb__tp *t, double until, char *why, size_t size);

/*
 * lb__tp_call: ends line o (begun with lbp_begin and the id id), sends
 * it, and reads until its reply (OK or ERR, into *m), waiting until the
 * monotonic time until; lines of other ids are skipped.  Only while
 * nothing else is in flight on t.  0, or -1 with why filled (the line
 * could not be made, I/O, no answer in time, a refusal of the whole
 * connection).
 */
int lb__tp_call(struct lb__tp *t, struct lbp_out *o, uint64_t id,
    double until, struct lbp_msg *m, char *why, size_t size);

/* lb__tp_shutdown: ends t's connection both ways, from any thread, as
 * said at the top; t stays open until lb__tp_close. */
void lb__tp_shutdown(struct lb__tp *t);

/* lb__tp_close: closes t (the daemon ends what it held and waited for on
 * it) and empties its buffer; safe on a closed one; keeps errno. */
void lb__tp_close(struct lb__tp *t);

/* lb__tp_drop: in a fork child, lets go of the parent's connection t, as
 * said at the top. */
void lb__tp_drop(struct lb__tp *t);

#endif /* LB_TRANSPORT_H */
