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
