/*
 * reclaim_win32.c: the default state directory taken back from another
 * user on Windows (reclaim_win32.h).
 *
 * %ProgramData% lets every user make folders.  A lockbroker folder made
 * there before the daemon's first start by another user, or a link
 * there, is moved aside (lbd_statedir_reclaim's reason, statedir.h);
 * but between that move and the daemon's making of its own, the same
 * user may make it again, and a directory made so would stand for the
 * daemon's own (before, the daemon's mkdir took "it is there" for
 * success, and only the judgement of its DACL that followed, not of its
 * owner's rights, stood between that user and the state).  So the
 * daemon makes the directory at once after the move, with an explicit
 * security descriptor (its own user the owner, the private DACL:
 * CreateDirectoryA's, so the directory never exists with another
 * owner or DACL); and when the making finds the name taken, it looks
 * at what took it as at the first: a trusted one's is taken, another's
 * moved aside again.  A user who makes it again each time (a loop of
 * his own) is not raced for ever: after LBD_RECLAIM_MOVES moves the
 * start is refused, naming the directory and why.
 *
 *   look (ops->look)
 *   |-- trusted (first look): left as it is ------------------> 0
 *   |-- trusted (after a move): an administrator's, taken ----> 0
 *   |-- another's, or a link: moved aside (the moves counted;
 *   |   LBD_RECLAIM_MOVES already: refused ------------------> -1)
 *   |   then, as absent:
 *   `-- absent: made with the daemon's descriptor
 *       |-- made ------------------------------------------------> 0
 *       |-- the name taken (ERROR_ALREADY_EXISTS): look again
 *       |-- its parent missing: left to the caller --------------> 0
 *       `-- another error ---------------------------------------> -1
 */
#include <winsock2.h>
#include <windows.h>
#include <aclapi.h>
#include <bcrypt.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "private_win32.h"
#include "reclaim_win32.h"

/* The system's look: see reclaim_win32.h.  One the daemon may not open
 * to look at is another's: the trusted's own directory lets the system
 * read who owns it. */
static enum lbd_reclaim_found
reclaim_look(const char *dir, int *link, void *arg)
{
	PSECURITY_DESCRIPTOR       sd = NULL;
	BY_HANDLE_FILE_INFORMATION fi;
	HANDLE                     h;
	DWORD                      err;
	int                        owned;

	(void)arg;
	*link = 0;
	h = CreateFileA(dir, READ_CONTROL, FILE_SHARE_READ | FILE_SHARE_WRITE |
	    FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS |
	    FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		err = GetLastError();
		return err == ERROR_FILE_NOT_FOUND ||
		    err == ERROR_PATH_NOT_FOUND ? LBD_RECLAIM_ABSENT :
		    LBD_RECLAIM_OTHERS;
	}
	*link = GetFileInformationByHandle(h, &fi) &&
	    (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT);
	owned = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION,
	    NULL, NULL, NULL, NULL, &sd) == ERROR_SUCCESS &&
	    lbd_private_owned(sd, lbd_private_self());
	if (sd != NULL)
		LocalFree(sd);
	CloseHandle(h);
	return owned && !*link ? LBD_RECLAIM_TRUSTED : LBD_RECLAIM_OTHERS;
}

/* lbd_reclaim_system: see reclaim_win32.h. */
const struct lbd_reclaim_ops lbd_reclaim_system = { reclaim_look, NULL,
    NULL };

/* Moves dir aside to a name not taken yet (aside, size bytes):
 * MoveFileExA without MOVEFILE_REPLACE_EXISTING replaces nothing, and
 * the name has a random part, so that nobody makes it first; a rename
 * moves a link, not what it leads to.  0, or the error. */
static DWORD
reclaim_move(const char *dir, char *aside, size_t size)
{
	SYSTEMTIME st;
	unsigned   nonce;
	DWORD      err = 0;
	int        i;

	GetSystemTime(&st);
	for (i = 0; i < 100; i++) {
		if (BCryptGenRandom(NULL, (PUCHAR)&nonce, sizeof(nonce),
		    BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
			nonce = GetTickCount() ^ (unsigned)i;
		snprintf(aside, size, "%s.refused-%04u%02u%02uT%02u%02u%02uZ-"
		    "%08x", dir, st.wYear, st.wMonth, st.wDay, st.wHour,
		    st.wMinute, st.wSecond, nonce);
		if (MoveFileExA(dir, aside, 0))
			return 0;
		err = GetLastError();
		if (err != ERROR_ALREADY_EXISTS && err != ERROR_FILE_EXISTS)
			break;
	}
	return err;
}

/* Makes dir with the daemon's own owner and private DACL: 0, or the
 * error (ERROR_ALREADY_EXISTS: the name is taken; ERROR_NOT_ENOUGH_MEMORY
 * when no descriptor could be made). */
static DWORD
reclaim_make(const char *dir)
{
	SECURITY_ATTRIBUTES sa;
	DWORD               err = 0;

	memset(&sa, 0, sizeof(sa));
	sa.nLength = sizeof(sa);
	if ((sa.lpSecurityDescriptor = lbd_private_sd_owned(LBD_PRIVATE_DIR)) ==
	    NULL)
		return ERROR_NOT_ENOUGH_MEMORY;
	if (!CreateDirectoryA(dir, &sa))
		err = GetLastError();
	LocalFree(sa.lpSecurityDescriptor);
	return err;
}

/* What was found at the directory, said in a message. */
static const char *
reclaim_what(int link)
{
	return link ? "a link (a junction or symbolic link)" : "another "
	    "user's (its owner neither the system, the administrators nor "
	    "the daemon's user)";
}

/* lbd_reclaim_dir: see reclaim_win32.h. */
int
lbd_reclaim_dir(const char *dir, const struct lbd_reclaim_ops *ops,
    char *moved, char *why, size_t size)
{
	enum lbd_reclaim_found found;
	char                   first[PATH_MAX + 48], aside[PATH_MAX + 48];
	DWORD                  err;
	int                    moves = 0, link = 0, first_link = 0, r = -1;

	moved[0] = '\0';
	for (;;) {
		found = ops->look(dir, &link, ops->arg);
		if (found == LBD_RECLAIM_TRUSTED)
			break;
		if (found == LBD_RECLAIM_OTHERS) {
			if (moves == LBD_RECLAIM_MOVES) {
				snprintf(why, size, "the state directory %s is "
				    "%s again after it was moved aside %d "
				    "times (the first to %s, the last to %s): "
				    "another user makes it again each time; "
				    "not starting: stop what makes it, remove "
				    "it, or give --state", dir,
				    reclaim_what(link), moves, first, aside);
				goto out;
			}
			if ((err = reclaim_move(dir, aside, sizeof(aside))) !=
			    0) {
				snprintf(why, size, "the state directory %s is "
				    "%s, and it cannot be moved aside (error "
				    "%lu): remove it, or give --state", dir,
				    reclaim_what(link), (unsigned long)err);
				goto out;
			}
			if (moves++ == 0) {
				snprintf(first, sizeof(first), "%s", aside);
				first_link = link;
			}
			if (ops->moved != NULL)
				ops->moved(dir, aside, ops->arg);
		}
		err = reclaim_make(dir);
		if (err == 0 || err == ERROR_PATH_NOT_FOUND)
			break;  /* made; or its parent is missing: made with
			         * it by the caller (lbd_dirs_make_parent) */
		if (err != ERROR_ALREADY_EXISTS) {
			snprintf(why, size, "cannot make the state directory "
			    "%s: error %lu", dir, (unsigned long)err);
			goto out;
		}
	}
	if (moves == 1)
		snprintf(moved, size, "the state directory %s was %s: moved "
		    "aside to %s, left there to be looked at; a new one made",
		    dir, reclaim_what(first_link), first);
	else if (moves > 1)
		snprintf(moved, size, "the state directory %s was %s: moved "
		    "aside to %s, and made again by others %d times, moved "
		    "aside each time (the last to %s), all left there to be "
		    "looked at; a new one made", dir, reclaim_what(first_link),
		    first, moves - 1, aside);
	r = 0;
out:
	return r;
}
