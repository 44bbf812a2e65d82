/*
 * reader.h: the reader thread of the broker transport (reader.c): it reads
 * every reply and hands it out (request.h), and when the connection is
 * lost, re-establishes it, settles the holds with the next daemon (holds.h)
 * and sends the waiting requests again; it judges the pid files a lost
 * daemon may have left.  Internal: not installed.
 */
#ifndef LB_READER_H
#define LB_READER_H

#include "protocol.h"
#include "request.h"
#include "transport.h"

/*
 * lb__reader_main: the reader thread, started by lb__conn_establish with
 * the connection just made READY (arg: its struct lb__tp, with what was
 * read after the HELLO reply; the thread frees it).  Runs, detached, with
 * every signal blocked, until RECONNECT_FOR_S seconds pass without a
 * daemon: then the connection is IDLE again and the thread ends.
 */
void *lb__reader_main(void *arg);

/*
 * lb__reader_judge: judges, with the daemon just reached on t, before
 * anything else is sent on it, the pid files a lost daemon may have made
 * for this process (see reader.c); m is scratch space.  Under lb__conn.mu.
 * 0, or -1 when t failed.
 */
int lb__reader_judge(struct lb__tp *t, struct lbp_msg *m);

/*
 * lb__suspect_add: q, a pidfile ACQUIRE that went out at least once, ends
 * unanswered while the connection is lost or being re-established: its
 * lock is remembered, to be judged with the next daemon.  Nothing for any
 * other request.  Under lb__conn.mu.
 */
void lb__suspect_add(const struct req *q);

#endif /* LB_READER_H */
