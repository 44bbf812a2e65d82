/*
 * os.h: what the lockbroker command asks of the system beyond C and
 * liblockbroker, one implementation per OS, chosen by the build:
 *   os_unix.c   POSIX: the arguments as given, getppid, getpwuid_r,
 *               localtime_r and tm_gmtoff, programs looked up in $PATH
 *               as execvp does
 *   os_win32.c  Windows: the arguments read again from the wide command
 *               line as UTF-8, the parent from a process snapshot, no
 *               user names (no numeric users), the offset from the local
 *               time's difference with UTC, programs looked up with
 *               SearchPathW as CreateProcessW finds them
 * The command's files use these and never the system's own calls for
 * them.
 */
#ifndef LB_TOOLS_OS_H
#define LB_TOOLS_OS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "lockbroker.h"

/*
 * os_args: makes *argc and *argv main's arguments as UTF-8 strings with
 * every character of the command line.  On POSIX they are left as they
 * are (bytes, as given); on Windows main's are in the ANSI code page,
 * which cannot hold every character, so they are replaced by the wide
 * command line's, converted (kept for the life of the process).  Returns
 * 0, or -1 after saying why (then nothing changed).
 */
int os_args(int *argc, char ***argv);

/* os_parent_pid: the pid of the process that started this one, or 0 when
 * the system cannot tell (on Windows, when it has ended). */
pid_t os_parent_pid(void);

/* os_user_name: the user name of uid into buf (size > 1), or "?" when it
 * has none (always on Windows, which has no numeric users). */
const char *os_user_name(lb_uid_t uid, char *buf, size_t size);

/*
 * os_local_time: t as local time into *tm, and the local time's offset
 * east of UTC at t in seconds into *utcoff.  Returns 0, or -1 when t
 * cannot be represented.
 */
int os_local_time(time_t t, struct tm *tm, long *utcoff);

/*
 * os_is_command: 1 when name (UTF-8 on Windows) names a program that the
 * system would run, as a shell finds it: a name with a directory in it
 * (a '/'; on Windows also '\\' or a drive's ':') when that file is a
 * regular file this process may execute; a bare name when one such file
 * is found in a directory of $PATH (on Windows where CreateProcessW looks,
 * ".exe" added when the name has no extension).  0 otherwise, and for "".
 * Blocks only on the file system.
 */
int os_is_command(const char *name);

#endif /* LB_TOOLS_OS_H */
