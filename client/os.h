/*
 * os.h: what the client library asks of the operating system beyond
 * lockfs's OS layer (lockfs/os.h: process and thread ids, liveness) and
 * its transport (transport.h).  Internal: not installed.
 *
 * os_unix.c is the POSIX side: fork handlers, signal masks, the monotonic
 * clock of condition variables.  os_win32.c is the Windows side, where
 * there is no fork (the handlers are never needed), no signal to keep
 * from a thread, and winpthreads' waits take a relative time.  The build
 * chooses one (Makefile.am).
 */
#ifndef LB_CLIENT_OS_H
#define LB_CLIENT_OS_H

#include <pthread.h>
#include <stddef.h>

#include "lockbroker.h"

/* lb__os_atfork: registers fork handlers run around fork() in the
 * parent (prepare, parent) and in the child (child), as pthread_atfork.
 * Where there is no fork it registers nothing.  Not blocking. */
void lb__os_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void));

/* lb__os_thread_start: starts main(arg) on a new detached thread with a
 * stack of stack bytes that receives no asynchronous signal (the
 * process's other threads handle them).  0, or an errno value (the
 * thread was not started). */
int  lb__os_thread_start(void *(*main)(void *), void *arg, size_t stack);

/* lb__os_cond_init: initialises *cv for lb__os_cond_wait_until. */
void lb__os_cond_init(pthread_cond_t *cv);

/* lb__os_cond_wait_until: waits on *cv (initialised by lb__os_cond_init)
 * with *mu held until it is signalled or the monotonic time of
 * lockfs_now until has passed (INFINITY: no limit); may return early
 * (spurious wake-ups), never late by more than the system's rounding. */
void lb__os_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
    double until);

/*
 * A note: a descriptor that becomes readable when it is set and stays so
 * until it is cleared, for a caller to watch with poll(2) or an event
 * loop while an asynchronous acquire goes on (lb_lock_fd).  fd[0] is the
 * end watched, fd[1] the end written; -1 when closed.  Both ends are
 * close-on-exec and non-blocking.  Where the system has no such
 * descriptor (Windows: an event loop there does not watch a pipe's end),
 * lb__os_note_open fails and the caller polls instead.
 */
struct lb__note {
	int fd[2];
};

/* lb__os_note_open: opens *n, cleared.  0, or an errno value (ENOSYS
 * where there are no notes) with *n closed.  Not blocking. */
int  lb__os_note_open(struct lb__note *n);

/* lb__os_note_set: makes *n readable (a no-op when it is already, or
 * closed).  Safe from any thread; never blocks. */
void lb__os_note_set(struct lb__note *n);

/* lb__os_note_clear: reads *n empty (a no-op when closed).  Never
 * blocks. */
void lb__os_note_clear(struct lb__note *n);

/* lb__os_note_close: closes *n's ends (a no-op when closed); *n is
 * closed on return. */
void lb__os_note_close(struct lb__note *n);

/* lb__os_euid: the user the process acts as, for comparing with a
 * process's owner (lockfs_os_process_uid): its effective uid; 0 on
 * Windows, where lockfs gives every process uid 0. */
lb_uid_t lb__os_euid(void);

/* lb__os_holder_uid: what uid, a file's owner as lockfs tells it, says
 * of a holder's user to the API (lb_holder's uid): uid itself; on
 * Windows, which has no numeric users (lockfs gives every file uid 0),
 * (lb_uid_t)-1, unknown, as lockbroker.h says. */
lb_uid_t lb__os_holder_uid(lb_uid_t uid);

#endif
