/*
 * statedir.h: where the daemon keeps its state when no path is given,
 * and whether the directory that holds the state may be trusted with
 * it: the state database, and beside it the files the daemon makes
 * (its journal and WAL, the intents file, the lock that keeps a second
 * daemon off, a service's log), from which it acts for its clients.
 * The conventions are each OS's: statedir_unix.c, statedir_win32.c.
 */
#ifndef LBD_STATEDIR_H
#define LBD_STATEDIR_H

#include <stddef.h>

/*
 * lbd_statedir_default: the state database's path when none is given,
 * into state (size bytes): the system instance's for a daemon of the
 * system (root; on Windows the system or an administrator), else its
 * user's.  0, or -1 with why (why_size bytes) saying what is missing.
 * Linux: /var/lib/lockbroker/state.sqlite as root, else
 * $XDG_STATE_HOME/lockbroker/state.sqlite, else
 * $HOME/.local/state/lockbroker/state.sqlite.  Windows:
 * %ProgramData%/lockbroker/state.sqlite for the system or an
 * administrator (its token's user SYSTEM, or its token a member of the
 * Administrators, elevated), else %LOCALAPPDATA%/lockbroker/state.sqlite
 * ('/' after the variable's value, as lockfs writes paths); the
 * variable must name an absolute path.
 */
int lbd_statedir_default(char *state, size_t size, char *why,
    size_t why_size);

/*
 * lbd_statedir_judge: whether the directory that holds state, and state
 * itself and each file the daemon keeps beside it (STATE-wal, -shm,
 * -journal, -intents, STATE.generation, .lock, .log) when it exists,
 * may be changed by nobody but the daemon's own user and those who may
 * do anything anyway.  0 when so; -1 with why
 * (size bytes) naming the directory or file, who else may change it,
 * how, and how to put it right.  Linux: 0, nothing judged (the daemon
 * makes the directory 0700 and its files 0600, and takes a directory
 * given to it as it is).  Windows: owner and DACL (private_win32.h,
 * lbd_private_judge), read through a handle of each, a link (a
 * reparse point) refused, never followed.
 */
int lbd_statedir_judge(const char *state, char *why, size_t size);

/*
 * lbd_statedir_reclaim: for the default state (lbd_statedir_default's
 * path; the caller asks for no other) of a daemon of the system: a
 * state directory in its place that another user made first (its
 * owner neither the system, the administrators nor the daemon's user)
 * or a link there (a junction, a symbolic link) is moved aside, renamed
 * NAME.refused-STAMP in its parent and left for an administrator to
 * look at, so that the daemon makes its own: a folder another user
 * makes in a parent every user may make folders in (%ProgramData%)
 * would otherwise keep the daemon from starting.  The directory is then
 * made at once with the daemon's own owner and private DACL (also when
 * nothing was there); one made again by another user between the move
 * and the making is judged again and moved again, a bounded number of
 * times (reclaim_win32.h), then the start is refused.  A directory of
 * the trusted whose DACL lets others change it is not moved: it may
 * hold a previous run's holds; lbd_statedir_judge refuses it.  0 when
 * the directory is the daemon's or a trusted one's (moved then says
 * what was moved from where to where, else it is empty); -1 with why
 * naming the directory and the reason when it could not be made so.
 * moved and why are size bytes each.  Linux: 0, nothing moved (the
 * system's default parent, /var/lib, lets nobody but root make
 * anything).
 */
int lbd_statedir_reclaim(const char *state, char *moved, char *why,
    size_t size);

#endif
