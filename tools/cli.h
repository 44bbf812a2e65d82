/*
 * cli.h: what the lockbroker command's files share: the parsed command
 * line, the exit statuses, and the helpers that speak to the user.
 *
 *   lockbroker.c  main, the command line, lock, status, break
 *   kept.c        acquire, release: locks kept for a process
 *   list.c        list: every lock the broker knows, as a table or JSON
 *   wire.c        the command's own protocol client (for kept and list)
 */
#ifndef LB_CLI_H
#define LB_CLI_H

#include <stddef.h>
#include <sys/types.h>

#define PROGRAM "lockbroker"

/* Exit statuses besides the command's own and sysexits.h's. */
#define EXIT_CONFLICT_DEFAULT 1   /* lock held by another (flock's -E) */
#define EXIT_NOT_LOCKED       1   /* status: nobody holds the lock */
#define EXIT_REFUSED          1   /* break --stale: holder not dead */
#define EXIT_NOT_HELD         1   /* release: the lock is not PID's */
#define EXIT_CANNOT_EXEC      126 /* COMMAND found but not runnable */
#define EXIT_NOT_FOUND        127 /* COMMAND not found */
#define EXIT_SIGNAL_BASE      128 /* COMMAND killed by signal N: 128+N */

/* What the command line asked for. */
struct opts {
	unsigned    flags;      /* for lb_lock_new: method, LB_LOCAL, ... */
	double      timeout;    /* LB_FOREVER, or seconds (0: one try) */
	int         conflict;   /* exit status when the lock is held */
	int         verbose;
	int         stale;      /* break: only a dead holder's lock */
	int         json;       /* list: JSON instead of a table */
	pid_t       pid;        /* acquire, release: --pid, or 0 */
	const char *shell_cmd;  /* -c: run through sh -c */
	const char *path;
	char      **argv;       /* COMMAND [ARG...], NULL-terminated */
};

/* The commands of kept.c and list.c: each returns the exit status. */
int cmd_acquire(const struct opts *);
int cmd_release(const struct opts *);
int cmd_list(const struct opts *);

/* lockbroker.c: prints "lockbroker: MESSAGE\n" on stderr. */
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* lockbroker.c: seconds on the monotonic clock. */
double now_mono(void);

/* lockbroker.c: the user name of uid into buf, or "?" when it has none. */
const char *user_name(uid_t uid, char *buf, size_t size);

/* lockbroker.c: epoch seconds as ISO-8601 local time with milliseconds
 * and offset (2024-05-01T12:34:56.789+02:00) into buf, or "unknown" for
 * 0. */
const char *iso_time(double epoch, char *buf, size_t size);

/* lockbroker.c: the name of an LB_* method flag ("link" ...). */
const char *method_name(unsigned method);

#endif /* LB_CLI_H */
