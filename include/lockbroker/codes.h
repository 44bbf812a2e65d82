/*
 * lockbroker/codes.h: the constants of lockbroker's contract, shared by the
 * library, the on-disk layer, the daemon and the tools: the error codes and
 * their hierarchy, the lock methods and flags, and what an artefact says of
 * its holder's liveness.  Installed; included by <lockbroker.h>, which is
 * the header programs include.  Values never change.
 */
#ifndef LOCKBROKER_CODES_H
#define LOCKBROKER_CODES_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes.  X(name, value, parent, message): the exception hierarchy of
 * lockfile, where parent is the code a caller may test with lb_error_is().
 * LB_ERROR is the root (lockfile's Error).  Values never change.
 */
#define LB_ERRNO_MAP(X)                                                      \
	X(ERROR,     -1, ERROR,  "lockbroker error")                          \
	X(ELOCK,     -2, ERROR,  "cannot acquire lock")                       \
	X(ETIMEOUT,  -3, ELOCK,  "timed out waiting for lock")                \
	X(EALREADY,  -4, ELOCK,  "lock is already held")                      \
	X(EFAILED,   -5, ELOCK,  "lock failed")                               \
	X(EUNLOCK,   -6, ERROR,  "cannot release lock")                       \
	X(ENOTLOCKED,-7, EUNLOCK,"lock is not held")                          \
	X(ENOTMINE,  -8, EUNLOCK,"lock is held by someone else")              \
	X(EINVAL,    -9, ERROR,  "invalid argument")                          \
	X(ENOMEM,   -10, ERROR,  "out of memory")                          \
	X(ECANCELED,-11, ELOCK,  "waiting for lock was canceled")           \
	X(EDEADLK,  -12, ELOCK,  "waiting for lock would deadlock")

enum lb_error {
#define LB_ERRNO_ENUM(name, value, parent, msg) LB_##name = (value),
	LB_ERRNO_MAP(LB_ERRNO_ENUM)
#undef LB_ERRNO_ENUM
};

/*
 * Flags for lb_lock_new, OR-ed together.  At most one method; the default
 * is LB_LINK.
 */
#define LB_LINK        0x0000u  /* PATH.lock hard-linked to a unique file */
#define LB_SYMLINK     0x0001u  /* PATH.lock a symlink to the unique name */
#define LB_MKDIR       0x0002u  /* PATH.lock a directory with a marker */
#define LB_PIDFILE     0x0003u  /* PATH itself, holding the pid */
#define LB_SQLITE      0x0004u  /* a row in a shared sqlite database */
#define LB_METHOD_MASK 0x000fu
#define LB_UNTHREADED  0x0010u  /* all threads of the process are one owner */
#define LB_LOCAL       0x0020u  /* never use the broker */
#define LB_BROKER      0x0040u  /* only the broker */
#define LB_BREAK_STALE 0x0080u  /* acquire breaks a provably dead holder's lock */

/* What the artefact of a lock says about its holder: see lb_get_holder(). */
typedef enum lb_liveness {
	LB_HOLDER_UNKNOWN = 0,  /* cannot tell (other host, or no pid) */
	LB_HOLDER_ALIVE   = 1,  /* the named process runs on this host */
	LB_HOLDER_DEAD    = 2   /* provably gone: no such pid, pid reused, or
	                           an earlier boot */
} lb_liveness;

#ifdef __cplusplus
}
#endif

#endif /* LOCKBROKER_CODES_H */
