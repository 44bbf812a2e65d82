/*
 * private_win32.h: the daemon's own directories and files kept to
 * itself on Windows (private_win32.c): the DACL it makes them with,
 * and the judgement whether a directory or file it is to keep its
 * state in may be changed by others.  Windows only: os_win32.c gives
 * the modes of os.h their meaning through it, statedir_win32.c judges
 * the state directory with it.
 *
 * Trusted, here: the system (SY), the administrators (BA) and the
 * daemon's own user (its process token's user: SY for a service of
 * LocalSystem), who may do anything to the daemon's files anyway.
 */
#ifndef LBD_PRIVATE_WIN32_H
#define LBD_PRIVATE_WIN32_H

#include <windows.h>
#include <stddef.h>

/* What lbd_private_sd is made for. */
#define LBD_PRIVATE_FILE 0
#define LBD_PRIVATE_DIR  1

/*
 * lbd_private_sd: a security descriptor whose DACL is protected (no
 * entry inherited from the parent) and allows the system, the
 * administrators and the daemon's own user full control, nobody else
 * anything; for LBD_PRIVATE_DIR each entry is inherited by what is made
 * in the directory ((OI)(CI)).  The descriptor, the caller's to free
 * (LocalFree), or NULL with errno (ENOMEM, or EACCES when the daemon's
 * token cannot be read).
 */
PSECURITY_DESCRIPTOR lbd_private_sd(int kind);

/*
 * lbd_private_sd_owned: lbd_private_sd with an owner too: the daemon's
 * own user (lbd_private_self), for a directory the daemon makes where
 * others may make one first (the default state directory,
 * reclaim_win32.c): its owner then is the daemon's whatever the
 * token's default owner.  The caller frees it (LocalFree); NULL with
 * errno as lbd_private_sd.
 */
PSECURITY_DESCRIPTOR lbd_private_sd_owned(int kind);

/*
 * lbd_private_set: gives the directory or file open as h (with
 * WRITE_DAC) the DACL of lbd_private_sd for its kind.  0, or -1 with
 * errno.
 */
int lbd_private_set(HANDLE h);

/*
 * lbd_private_self: the daemon's own user (its process token's), read
 * once; NULL with errno EACCES when it cannot be read.  Not to be
 * freed.
 */
PSID lbd_private_self(void);

/*
 * lbd_private_judge: whether sd, the security descriptor (owner and
 * DACL) of path (what names it: "state directory"; kind says whether it
 * is a directory or a file, for the fix it tells), lets only the
 * trusted change it, self being the daemon's user: its owner the
 * system, the administrators or self (an owner may rewrite the DACL),
 * and no entry of its DACL allowing another SID a right that changes
 * it or what it holds: FILE_WRITE_DATA (a directory's FILE_ADD_FILE),
 * FILE_APPEND_DATA (FILE_ADD_SUBDIRECTORY), DELETE, FILE_DELETE_CHILD,
 * WRITE_DAC, WRITE_OWNER, GENERIC_WRITE, GENERIC_ALL.  Entries that
 * only deny are no matter; an entry only inherited counts (it is what
 * a file made there gets), but CREATOR OWNER's (which becomes the
 * maker's, a trusted one's) and TrustedInstaller's (the system's
 * installer) are allowed, as is OWNER RIGHTS' (the owner's, judged
 * first).  A NULL DACL (no DACL) allows everyone everything.  No file
 * is looked at: sd may be made up.  0 when only the trusted may change
 * it; -1 with why (size bytes) naming what and path, the SID (and its
 * account's name when it has one), the rights, and how to put it
 * right (icacls).
 */
int lbd_private_judge(const char *what, const char *path, int kind,
    PSECURITY_DESCRIPTOR sd, PSID self, char *why, size_t size);

/*
 * lbd_private_owned: whether sd's owner is one of the trusted (the
 * system, the administrators, or self, the daemon's user): 1 if so, 0
 * if another's or none.  No file is looked at: sd may be made up.
 */
int lbd_private_owned(PSECURITY_DESCRIPTOR sd, PSID self);

#endif
