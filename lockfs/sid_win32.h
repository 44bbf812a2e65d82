/*
 * sid_win32.h: whose a Windows owner is, for lockfs's file-system layer
 * (fs_win32.c, a file's owner), the library's pipe (wire/pipe_win32.c,
 * the pipe's owner) and the daemon's single-instance mutex
 * (daemon/listen_win32.c, the mutex's owner).  Windows only.
 */
#ifndef LOCKFS_SID_WIN32_H
#define LOCKFS_SID_WIN32_H

#include <windows.h>

/* lockfs_sid_is_acting: whether sid is the calling thread's acting
 * token's user or owner (the thread's token when it has one, else the
 * process's): 1 or 0; -1 when the token cannot be read. */
int lockfs_sid_is_acting(PSID sid);

/* lockfs_sid_is_trusted: whether sid is the system's, the
 * administrators', or the calling thread's acting user or owner
 * (lockfs_sid_is_acting): the owners whose pipe or mutex may be taken
 * for a daemon's.  1 or 0. */
int lockfs_sid_is_trusted(PSID sid);

#endif
