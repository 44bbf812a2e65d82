/*
 * statedir_win32.c: statedir.h on Windows: the state under
 * %ProgramData% for a daemon of the system or an administrator (a
 * service's), under %LOCALAPPDATA% for a user's; the state directory,
 * the state database and the files beside it judged by their owners
 * and DACLs (private_win32.h), before the daemon opens anything there.
 *
 * Why judge: the daemon runs as the system for every local user and
 * acts on what its state says with its clients' tokens; a state
 * directory another user may write would let that user forge the
 * users table or the intents file (a hold, a handoff) and have the
 * daemon act on them as someone else; so would a file of his left
 * beside the database (a WAL, an intents file) from a time the
 * directory was open to him, whose DACL he may rewrite as its owner
 * whenever the daemon has made it private.  The directories above the
 * state directory are not judged (C:\ lets every user make folders);
 * one another user may rename is the administrator's choice to avoid,
 * as on Linux.  The default's parent, %ProgramData%, lets users make
 * folders too: one made there first by another user is refused by its
 * owner, a junction made there by its being a link.
 */
#include <winsock2.h>
#include <windows.h>
#include <aclapi.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfs.h"
#include "os.h"
#include "private_win32.h"
#include "reclaim_win32.h"
#include "statedir.h"

/* Whether the daemon runs as the system or an administrator: its
 * token's user SYSTEM, or the Administrators enabled in its token (an
 * elevated one's; a token UAC filtered has them for denying only). */
static int
privileged(void)
{
	BYTE  ba[SECURITY_MAX_SID_SIZE];
	DWORD n = sizeof(ba);
	BOOL  member = FALSE;
	PSID  self = lbd_private_self();

	if (self != NULL && IsWellKnownSid(self, WinLocalSystemSid))
		return 1;
	return CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, ba, &n) &&
	    CheckTokenMembership(NULL, ba, &member) && member;
}

/* lbd_statedir_default: see statedir.h.  The variable's '\' written
 * '/' too: one separator throughout, as lockfs's paths have. */
int
lbd_statedir_default(char *state, size_t size, char *why, size_t why_size)
{
	const char *var = privileged() ? "ProgramData" : "LOCALAPPDATA";
	const char *root = getenv(var);
	char       *c;
	size_t      len;
	int         n, r = -1;

	if (root == NULL || root[0] == '\0' || lbd_os_path_is_relative(root)) {
		snprintf(why, why_size, "no state path: give --state or set %s "
		    "to an absolute path (%s)", var, root == NULL ? "unset" :
		    root);
		goto out;
	}
	len = strlen(root);
	if (root[len - 1] == '\\' || root[len - 1] == '/')
		len--;          /* "C:\": no separator doubled */
	n = snprintf(state, size, "%.*s/lockbroker/state.sqlite", (int)len,
	    root);
	if (n < 0 || (size_t)n >= size) {
		snprintf(why, why_size, "state path too long: %s", root);
		goto out;
	}
	for (c = state; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	r = 0;
out:
	return r;
}

/* Judges the directory or file path (kind; what names it), opened as
 * itself (a link at the name not followed), by its owner and DACL: 0
 * when only the trusted may change it, or when it is a file that is not
 * there; -1 with why, also for a link (a reparse point), which whoever
 * owns it may point elsewhere at any time. */
static int
judge(const char *what, const char *path, int kind, char *why, size_t size)
{
	BY_HANDLE_FILE_INFORMATION fi;
	PSECURITY_DESCRIPTOR       sd = NULL;
	HANDLE                     h;
	DWORD                      err;
	int                        r = -1;

	h = CreateFileA(path, READ_CONTROL, FILE_SHARE_READ | FILE_SHARE_WRITE |
	    FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS |
	    FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		err = GetLastError();
		if (kind == LBD_PRIVATE_FILE && err == ERROR_FILE_NOT_FOUND)
			r = 0;
		else
			snprintf(why, size, "cannot read who may change the "
			    "%s %s: %s (error %lu)", what, path,
			    err == ERROR_FILE_NOT_FOUND ||
			    err == ERROR_PATH_NOT_FOUND ? "it is not there" :
			    "cannot open it", (unsigned long)err);
		goto out;
	}
	if (GetFileInformationByHandle(h, &fi) &&
	    (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
		snprintf(why, size, "the %s %s is a link (a junction or "
		    "symbolic link), which whoever made it may point "
		    "elsewhere: give the %s itself", what, path,
		    kind == LBD_PRIVATE_DIR ? "directory" : "file");
		goto out;
	}
	if ((err = GetSecurityInfo(h, SE_FILE_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, NULL,
	    NULL, NULL, NULL, &sd)) != ERROR_SUCCESS) {
		snprintf(why, size, "cannot read who may change the %s %s: "
		    "error %lu", what, path, (unsigned long)err);
		goto out;
	}
	r = lbd_private_judge(what, path, kind, sd, lbd_private_self(), why,
	    size);
out:
	if (sd != NULL)
		LocalFree(sd);
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
	return r;
}

/* The files the daemon keeps beside the state database, named by what
 * follows its name: sqlite's journal, WAL and shared memory (store.c),
 * the intents file (intents.c), the generation's floor and the
 * temporary file it is written through (store.c), the single-instance
 * lock (listen_win32.c) and a service's log (main.c).  Each is read or
 * written as the daemon's own; one left by another user, or one he may
 * still change, would let him write what the daemon acts on. */
static const char *const companions[] = { "-wal", "-shm", "-journal",
    "-intents", ".generation", ".generation.tmp", ".lock", ".log" };

/* lbd_statedir_judge: see statedir.h.  The directory is state's up to
 * its last separator ('/' or '\'), named as state spells it; then
 * state, then each of its companions that is there. */
int
lbd_statedir_judge(const char *state, char *why, size_t size)
{
	char   dir[PATH_MAX], file[PATH_MAX + 16], *c;
	size_t i;
	int    r = -1;

	if (snprintf(dir, sizeof(dir), "%s", state) >= (int)sizeof(dir)) {
		snprintf(why, size, "state path too long: %s", state);
		goto out;
	}
	for (c = dir; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	snprintf(dir, sizeof(dir), "%.*s", (int)lockfs_dir_len(dir), state);
	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), ".");
	if (judge("state directory", dir, LBD_PRIVATE_DIR, why, size) != 0 ||
	    judge("state database", state, LBD_PRIVATE_FILE, why, size) != 0)
		goto out;
	for (i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", state, companions[i]);
		if (judge("file beside the state database", file,
		    LBD_PRIVATE_FILE, why, size) != 0)
			goto out;
	}
	r = 0;
out:
	return r;
}

/* lbd_statedir_reclaim: see statedir.h.  The directory's move aside
 * and its making at once with the daemon's own security descriptor are
 * reclaim_win32.c's (lbd_reclaim_dir), with the system's look at who
 * owns it. */
int
lbd_statedir_reclaim(const char *state, char *moved, char *why, size_t size)
{
	char dir[PATH_MAX];

	moved[0] = '\0';
	snprintf(dir, sizeof(dir), "%.*s", (int)lockfs_dir_len(state), state);
	if (!privileged() || dir[0] == '\0')
		return 0;
	return lbd_reclaim_dir(dir, &lbd_reclaim_system, moved, why, size);
}
