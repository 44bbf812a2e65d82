/*
 * say.h: what the lockbroker command says and the statuses it exits with,
 * besides the command's own and sysexits.h's; shared by every file of the
 * command, including those that know nothing of liblockbroker (the
 * per-OS ways of running COMMAND, child_*.c), so that they build and are
 * tested alone.
 */
#ifndef LB_SAY_H
#define LB_SAY_H

/* sysexits.h's statuses the command uses, with BSD's values where the
 * system has no sysexits.h (Windows). */
#if defined(__has_include) && !__has_include(<sysexits.h>)
#define EX_USAGE       64
#define EX_UNAVAILABLE 69
#define EX_OSERR       71
#define EX_IOERR       74
#else
#include <sysexits.h>
#endif

#define PROGRAM "lockbroker"

#define EXIT_CONFLICT_DEFAULT 1   /* lock held by another (flock's -E) */
#define EXIT_NOT_LOCKED       1   /* status: nobody holds the lock */
#define EXIT_REFUSED          1   /* break --stale: holder not dead */
#define EXIT_NOT_HELD         1   /* release: the lock is not PID's */
#define EXIT_CANNOT_EXEC      126 /* COMMAND found but not runnable */
#define EXIT_NOT_FOUND        127 /* COMMAND not found */
#define EXIT_SIGNAL_BASE      128 /* COMMAND killed by signal N: 128+N */

/* say.c: prints "lockbroker: MESSAGE\n" on stderr. */
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* LB_SAY_H */
