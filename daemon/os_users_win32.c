/*
 * os_users_win32.c: the part of the daemon's OS layer (os.h) that tells
 * Windows users apart and acts as them: a client's user is a SID, its
 * token what the daemon's steps for it run with.
 *
 * Who the client is: the pipe's client opens it at the identification
 * level (wire/pipe_win32.c), so the token ImpersonateNamedPipeClient
 * gives can be read (its user's SID) but never acted with: whoever made
 * the pipe's name, the daemon or a user who made it first, learns who
 * connected and nothing more.  What the daemon acts with is the client
 * process's own token (OpenProcessToken on the pipe's client process,
 * which a daemon running as the system may open, one running as a user
 * its own user's), duplicated as an impersonation token, and taken only
 * when its user is the pipe token's SID: a client whose thread acts as
 * another user than its process (an impersonating server, an anonymous
 * thread) is refused rather than served as either.
 *
 * Acting as the client is SetThreadToken on the loop's thread and
 * RevertToSelf after: Windows itself then checks each file-system step
 * against the client's rights, as setfsuid makes Linux do.
 */
#include <winsock2.h>
#include <windows.h>
#include <sddl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

/* A client's token: an impersonation token's handle. */
struct lbd_os_token {
	HANDLE h;
};

/* The user of token t (TOKEN_QUERY), allocated into *tu (the caller
 * frees it).  0, or -1 with the system's error in *err. */
static int
token_user_get(HANDLE t, TOKEN_USER **tu, DWORD *err)
{
	DWORD n = 0;
	int   r = -1;

	*tu = NULL;
	GetTokenInformation(t, TokenUser, NULL, 0, &n);
	if (n == 0) {
		*err = GetLastError();
		goto out;
	}
	if ((*tu = malloc(n)) == NULL) {
		*err = ERROR_NOT_ENOUGH_MEMORY;
		goto out;
	}
	if (!GetTokenInformation(t, TokenUser, *tu, n, &n)) {
		*err = GetLastError();
		free(*tu);
		*tu = NULL;
		goto out;
	}
	r = 0;
out:
	return r;
}

/* The SID sid as a string into user (LBD_OS_USER_MAX bytes).  0, or -1
 * with the system's error in *err. */
static int
sid_string(PSID sid, char *user, DWORD *err)
{
	char *s = NULL;
	int   r = -1;

	if (!ConvertSidToStringSidA(sid, &s)) {
		*err = GetLastError();
		goto out;
	}
	if (strlen(s) >= LBD_OS_USER_MAX) {
		*err = ERROR_INSUFFICIENT_BUFFER;
		goto out;
	}
	snprintf(user, LBD_OS_USER_MAX, "%s", s);
	r = 0;
out:
	if (s != NULL)
		LocalFree(s);
	return r;
}

/* The user of the token the pipe fd's client gave when it opened it (at
 * whatever level), into *tu (allocated).  0, or -1 with why. */
static int
pipe_client_user(HANDLE fd, TOKEN_USER **tu, char *why, size_t size)
{
	HANDLE t = NULL;
	DWORD  err = 0;
	BOOL   ok;

	*tu = NULL;
	if (!ImpersonateNamedPipeClient(fd)) {
		snprintf(why, size, "the pipe gives no token of its client "
		    "(ImpersonateNamedPipeClient: error %lu)",
		    (unsigned long)GetLastError());
		goto out;
	}
	ok = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t);
	err = GetLastError();
	if (!RevertToSelf())
		abort();        /* never go on acting as a client */
	if (!ok)
		snprintf(why, size, "the token it connected with cannot be "
		    "read (OpenThreadToken: error %lu; an anonymous client?)",
		    (unsigned long)err);
	else if (token_user_get(t, tu, &err) != 0)
		snprintf(why, size, "the user of the token it connected with "
		    "cannot be read (error %lu)", (unsigned long)err);
out:
	if (t != NULL)
		CloseHandle(t);
	return *tu != NULL ? 0 : -1;
}

/* lbd_os_peer_user: see os.h and the top of this file. */
int
lbd_os_peer_user(uv_os_fd_t fd, pid_t pid, char *user,
    struct lbd_os_token **token, char *why, size_t size)
{
	TOKEN_USER *pipe_user = NULL, *proc_user = NULL;
	HANDLE      proc = NULL, t = NULL, dup = NULL;
	DWORD       err = 0;
	char        other[LBD_OS_USER_MAX];
	int         r = -1, e = EACCES;

	*token = NULL;
	if (pipe_client_user(fd, &pipe_user, why, size) != 0)
		goto out;
	if (sid_string(pipe_user->User.Sid, user, &err) != 0) {
		snprintf(why, size, "its SID cannot be spelt (error %lu)",
		    (unsigned long)err);
		goto out;
	}
	if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
	    (DWORD)pid)) == NULL || !OpenProcessToken(proc, TOKEN_QUERY |
	    TOKEN_DUPLICATE, &t) || token_user_get(t, &proc_user, &err) != 0) {
		if (err == 0)
			err = GetLastError();
		snprintf(why, size, "user %s: the token of its process %ld "
		    "cannot be had (error %lu), to act as it with", user,
		    (long)pid, (unsigned long)err);
		e = err == ERROR_INVALID_PARAMETER ? ESRCH : EACCES;
		goto out;
	}
	if (!EqualSid(pipe_user->User.Sid, proc_user->User.Sid)) {
		if (sid_string(proc_user->User.Sid, other, &err) != 0)
			snprintf(other, sizeof(other), "?");
		snprintf(why, size, "it connected as user %s but its process "
		    "%ld runs as %s (a thread acting as another user is not "
		    "served)", user, (long)pid, other);
		e = EPERM;
		goto out;
	}
	if (!DuplicateTokenEx(t, TOKEN_IMPERSONATE | TOKEN_QUERY, NULL,
	    SecurityImpersonation, TokenImpersonation, &dup)) {
		snprintf(why, size, "user %s: its process's token cannot be "
		    "made one to act with (DuplicateTokenEx: error %lu)", user,
		    (unsigned long)GetLastError());
		goto out;
	}
	if ((*token = malloc(sizeof(**token))) == NULL) {
		snprintf(why, size, "out of memory");
		e = ENOMEM;
		goto out;
	}
	(*token)->h = dup;
	dup = NULL;
	r = 1;
out:
	if (dup != NULL)
		CloseHandle(dup);
	if (t != NULL)
		CloseHandle(t);
	if (proc != NULL)
		CloseHandle(proc);
	free(pipe_user);
	free(proc_user);
	if (r == -1)
		errno = e;
	return r;
}

/* lbd_os_proc_user: see os.h.  The user of the process's token
 * (OpenProcessToken), opened as the calling thread acts. */
int
lbd_os_proc_user(pid_t pid, char *user)
{
	TOKEN_USER *tu = NULL;
	HANDLE      proc, t = NULL;
	DWORD       err = 0;
	int         r = -1;

	if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
	    (DWORD)pid)) == NULL) {
		errno = ESRCH;
		return -1;
	}
	if (!OpenProcessToken(proc, TOKEN_QUERY, &t) ||
	    token_user_get(t, &tu, &err) != 0 ||
	    sid_string(tu->User.Sid, user, &err) != 0)
		errno = EACCES;
	else
		r = 1;
	free(tu);
	if (t != NULL)
		CloseHandle(t);
	CloseHandle(proc);
	return r;
}

/* lbd_os_token_dup: see os.h.  DuplicateHandle: one more handle on the
 * same token. */
struct lbd_os_token *
lbd_os_token_dup(const struct lbd_os_token *token)
{
	struct lbd_os_token *t;

	if ((t = malloc(sizeof(*t))) == NULL)
		return NULL;
	if (!DuplicateHandle(GetCurrentProcess(), token->h,
	    GetCurrentProcess(), &t->h, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

/* lbd_os_token_free: see os.h. */
void
lbd_os_token_free(struct lbd_os_token *token)
{
	int saved = errno;

	if (token != NULL) {
		CloseHandle(token->h);
		free(token);
	}
	errno = saved;
}

/* lbd_os_token_enter: see os.h.  SetThreadToken on the calling thread. */
int
lbd_os_token_enter(const struct lbd_os_token *token)
{
	if (!SetThreadToken(NULL, token->h)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* lbd_os_token_leave: see os.h.  RevertToSelf; the process ends rather
 * than go on acting as a client when even that fails. */
void
lbd_os_token_leave(void)
{
	int saved = errno;

	if (!RevertToSelf())
		abort();
	errno = saved;
}

/* lbd_os_token_user: see os.h.  OpenThreadToken (as the daemon:
 * OpenAsSelf), "" when the thread has no token of its own. */
int
lbd_os_token_user(char *user)
{
	TOKEN_USER *tu = NULL;
	HANDLE      t;
	DWORD       err = 0;
	int         r = -1;

	if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t)) {
		if (GetLastError() != ERROR_NO_TOKEN) {
			errno = EACCES;
			return -1;
		}
		user[0] = '\0';
		return 0;
	}
	if (token_user_get(t, &tu, &err) == 0 &&
	    sid_string(tu->User.Sid, user, &err) == 0)
		r = 0;
	else
		errno = EACCES;
	free(tu);
	CloseHandle(t);
	return r;
}

/* lbd_os_files_uid_of: see os.h.  0: lockfs's fs_win32.c says every file
 * is uid 0. */
uid_t
lbd_os_files_uid_of(uid_t uid)
{
	(void)uid;
	return 0;
}

/* lbd_os_users_by_token: see os.h. 1: SIDs and tokens. */
int
lbd_os_users_by_token(void)
{
	return 1;
}
