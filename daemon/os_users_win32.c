/*
 * os_users_win32.c: the part of the daemon's OS layer (os.h) that tells
 * Windows users apart and acts as them: a client's user is a SID, its
 * token what the daemon's steps for it run with.
 *
 * Who the client is: the pipe's client opens it at the identification
 * level (wire/pipe_win32.c), so the token ImpersonateNamedPipeClient
 * gives can be read (its user's SID, logon session and integrity level)
 * but never acted with: whoever made the pipe's name, the daemon or a
 * user who made it first, learns who connected and nothing more.  What
 * the daemon acts with is the client process's own token
 * (OpenProcessToken on the pipe's client process, which a daemon
 * running as the system may open, one running as a user its own
 * user's), duplicated as an impersonation token, and taken only when
 * it is of the pipe token's SID, logon session, integrity level and
 * restrictedness, and its process was created before the connection was
 * noticed (peertoken.c says why and decides): a client whose thread
 * acts as another user than its process (an impersonating server, an
 * anonymous thread), or whose pid a process made after it connected, or
 * another logon's, another level's or otherwise restricted process got,
 * is refused rather than served as either.  A user is named by its
 * SID and its level (lbd_user_key): the daemon numbers users so.
 *
 * Acting as the client is SetThreadToken on the loop's thread and
 * RevertToSelf after: Windows itself then checks each file-system step
 * against the client's rights, as setfsuid makes Linux do.
 */
#include <winsock2.h>
#include <windows.h>
#include <bcrypt.h>
#include <sddl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"                 /* lockfs_os_start_time */
#include "os.h"
#include "peertoken.h"

/* A client's token: an impersonation token's handle, and the digest of
 * its groups (token_groups_digest). */
struct lbd_os_token {
	HANDLE h;
	gid_t  groups[LBD_OS_GROUPS_WORDS];
};

/* Token t's information of class c (TOKEN_QUERY), allocated into *out
 * (the caller frees it).  0, or -1 with the system's error in *err. */
static int
token_info(HANDLE t, TOKEN_INFORMATION_CLASS c, void **out, DWORD *err)
{
	DWORD n = 0;
	int   r = -1;

	*out = NULL;
	GetTokenInformation(t, c, NULL, 0, &n);
	if (n == 0)
		*err = GetLastError();
	else if ((*out = malloc(n)) == NULL)
		*err = ERROR_NOT_ENOUGH_MEMORY;
	else if (!GetTokenInformation(t, c, *out, n, &n)) {
		*err = GetLastError();
		free(*out);
		*out = NULL;
	} else
		r = 0;
	return r;
}

/* The SHA-256 of text into words (LBD_OS_GROUPS_WORDS, each four bytes
 * of it, the first the highest).  0, or -1 with the status in *err. */
static int
sha256_words(const char *text, gid_t *words, DWORD *err)
{
	BCRYPT_ALG_HANDLE  alg = NULL;
	BCRYPT_HASH_HANDLE h = NULL;
	UCHAR              md[4 * LBD_OS_GROUPS_WORDS];
	NTSTATUS           s;
	int                i, r = -1;

	if ((s = BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM,
	    NULL, 0)) != 0 || (s = BCryptCreateHash(alg, &h, NULL, 0, NULL, 0,
	    0)) != 0 || (s = BCryptHashData(h, (PUCHAR)text,
	    (ULONG)strlen(text), 0)) != 0 || (s = BCryptFinishHash(h, md,
	    sizeof(md), 0)) != 0) {
		*err = (DWORD)s;
		goto out;
	}
	for (i = 0; i < LBD_OS_GROUPS_WORDS; i++)
		words[i] = (gid_t)md[4 * i] << 24 | (gid_t)md[4 * i + 1] << 16 |
		    (gid_t)md[4 * i + 2] << 8 | (gid_t)md[4 * i + 3];
	r = 0;
out:
	if (h != NULL)
		BCryptDestroyHash(h);
	if (alg != NULL)
		BCryptCloseAlgorithmProvider(alg, 0);
	return r;
}

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

/*
 * The digest of what in token t (TOKEN_QUERY) bears on its rights
 * beside its user and level (peertoken.c, lbd_token_groups_text: its
 * groups, its restricting SIDs, its enabled privileges), into words
 * (LBD_OS_GROUPS_WORDS).  An unrestricted token whose restricting SIDs
 * cannot be read has none (wine's every token: ERROR_INVALID_FUNCTION,
 * measured); a restricted one's must be read.  0, or -1 with the
 * system's error in *err.
 */
static int
token_groups_digest(HANDLE t, gid_t *words, DWORD *err)
{
	struct lbd_token_entry *e = NULL;
	TOKEN_GROUPS           *g = NULL, *rs = NULL;
	TOKEN_PRIVILEGES       *p = NULL;
	char                   *names = NULL, *text = NULL;
	DWORD                   i, n, k = 0, rerr;
	int                     r = -1;

	if (token_info(t, TokenGroups, (void **)&g, err) != 0 ||
	    token_info(t, TokenPrivileges, (void **)&p, err) != 0)
		goto out;
	if (token_info(t, TokenRestrictedSids, (void **)&rs, &rerr) != 0 &&
	    IsTokenRestricted(t)) {
		*err = rerr;
		goto out;
	}
	n = g->GroupCount + (rs != NULL ? rs->GroupCount : 0) +
	    p->PrivilegeCount;
	if ((e = calloc(n + 1, sizeof(*e))) == NULL ||
	    (names = calloc(n + 1, LBD_OS_USER_MAX)) == NULL) {
		*err = ERROR_NOT_ENOUGH_MEMORY;
		goto out;
	}
	for (i = 0; i < g->GroupCount; i++, k++) {
		e[k].kind = 'G';
		e[k].attrs = g->Groups[i].Attributes;
		if (sid_string(g->Groups[i].Sid, names + k * LBD_OS_USER_MAX,
		    err) != 0)
			goto out;
	}
	for (i = 0; rs != NULL && i < rs->GroupCount; i++, k++) {
		e[k].kind = 'R';
		if (sid_string(rs->Groups[i].Sid, names + k * LBD_OS_USER_MAX,
		    err) != 0)
			goto out;
	}
	for (i = 0; i < p->PrivilegeCount; i++, k++) {
		e[k].kind = 'P';
		e[k].attrs = p->Privileges[i].Attributes;
		snprintf(names + k * LBD_OS_USER_MAX, LBD_OS_USER_MAX,
		    "%lx:%lx", (unsigned long)p->Privileges[i].Luid.HighPart,
		    (unsigned long)p->Privileges[i].Luid.LowPart);
	}
	for (i = 0; i < n; i++)
		e[i].name = names + i * LBD_OS_USER_MAX;
	if ((text = lbd_token_groups_text(e, n)) == NULL) {
		*err = ERROR_NOT_ENOUGH_MEMORY;
		goto out;
	}
	r = sha256_words(text, words, err);
out:
	free(text);
	free(names);
	free(e);
	free(rs);
	free(p);
	free(g);
	return r;
}

/* Whether token t (TOKEN_QUERY) holds the NETWORK group (S-1-5-2), in
 * whatever state (enabled, for deny only), into *network.  0, or -1
 * with the system's error in *err. */
static int
token_network(HANDLE t, int *network, DWORD *err)
{
	SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
	TOKEN_GROUPS            *g = NULL;
	PSID                     net = NULL;
	DWORD                    n = 0, i;
	int                      r = -1;

	GetTokenInformation(t, TokenGroups, NULL, 0, &n);
	if (n == 0 || (g = malloc(n)) == NULL ||
	    !GetTokenInformation(t, TokenGroups, g, n, &n) ||
	    !AllocateAndInitializeSid(&nt, 1, SECURITY_NETWORK_RID, 0, 0, 0,
	    0, 0, 0, 0, &net)) {
		*err = g == NULL && n != 0 ? ERROR_NOT_ENOUGH_MEMORY :
		    GetLastError();
		goto out;
	}
	*network = 0;
	for (i = 0; i < g->GroupCount; i++)
		if (EqualSid(g->Groups[i].Sid, net))
			*network = 1;
	r = 0;
out:
	if (net != NULL)
		FreeSid(net);
	free(g);
	return r;
}

/* What the daemon reads of token t (TOKEN_QUERY): its user's SID as a
 * string into sid (LBD_OS_USER_MAX bytes), its logon session, its
 * integrity level and whether it is restricted (IsTokenRestricted: one
 * whose restricting SIDs cannot be read reads as not, as wine's every
 * token, which has no TokenRestrictedSids; a client's two tokens are
 * read alike, and one read so while the other is restricted differs),
 * into *f (f->sid then sid).  0, or -1 with the system's error in
 * *err. */
static int
token_facts_read(HANDLE t, char *sid, struct lbd_token_facts *f, DWORD *err)
{
	union {
		TOKEN_MANDATORY_LABEL l;
		BYTE                  b[sizeof(TOKEN_MANDATORY_LABEL) +
		                        SECURITY_MAX_SID_SIZE];
	}                il;
	TOKEN_STATISTICS st;
	TOKEN_USER      *tu = NULL;
	PSID             label;
	DWORD            n;
	int              r = -1;

	if (token_user_get(t, &tu, err) != 0 ||
	    sid_string(tu->User.Sid, sid, err) != 0 ||
	    token_network(t, &f->network, err) != 0)
		goto out;
	if (!GetTokenInformation(t, TokenStatistics, &st, sizeof(st), &n) ||
	    !GetTokenInformation(t, TokenIntegrityLevel, &il, sizeof(il),
	    &n)) {
		*err = GetLastError();
		goto out;
	}
	f->restricted = IsTokenRestricted(t) ? 1 : 0;
	label = il.l.Label.Sid;
	f->sid = sid;
	f->logon = (unsigned long long)(DWORD)st.AuthenticationId.HighPart <<
	    32 | st.AuthenticationId.LowPart;
	f->level = *GetSidSubAuthorityCount(label) == 0 ? 0 :
	    *GetSidSubAuthority(label, *GetSidSubAuthorityCount(label) - 1u);
	r = 0;
out:
	free(tu);
	return r;
}

/* What the daemon reads of the token the pipe fd's client gave when it
 * opened it (at whatever level), into *f, its SID into sid
 * (LBD_OS_USER_MAX bytes).  0, or -1 with why. */
static int
pipe_client_facts(HANDLE fd, char *sid, struct lbd_token_facts *f,
    char *why, size_t size)
{
	HANDLE t = NULL;
	DWORD  err = 0;
	BOOL   ok;
	int    r = -1;

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
	else if (token_facts_read(t, sid, f, &err) != 0)
		snprintf(why, size, "the user, logon session or integrity "
		    "level of the token it connected with cannot be read "
		    "(error %lu)", (unsigned long)err);
	else
		r = 0;
out:
	if (t != NULL)
		CloseHandle(t);
	return r;
}

/* The computer the client of pipe fd connected from, as the pipe names
 * it (GetNamedPipeClientComputerNameW), into name (size bytes): name,
 * or NULL when the pipe names none (ERROR_PIPE_LOCAL: a client of this
 * computer) or cannot say.  Not asked under wine, where it is a stub
 * that ends its caller (wine 8, measured); there a client's token, which
 * never holds the NETWORK group, is what tells. */
static const char *
pipe_client_computer(HANDLE fd, char *name, size_t size)
{
	HMODULE ntdll = GetModuleHandleA("ntdll.dll");
	WCHAR   w[256];

	if (ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL)
		return NULL;
	if (!GetNamedPipeClientComputerNameW(fd, w, sizeof(w)) ||
	    WideCharToMultiByte(CP_UTF8, 0, w, -1, name, (int)size, NULL,
	    NULL) == 0)
		return NULL;
	return name;
}

/* lbd_os_peer_user: see os.h and the top of this file.  The time is
 * taken first, the connection there: a process created after it (its
 * creation time, lockfs_os_start_time's, read while the process is held
 * open, so that the pid names it still) got the pid of a client that
 * exited, and is refused (lbd_peer_started_before). */
int
lbd_os_peer_user(uv_os_fd_t fd, pid_t pid, char *user,
    struct lbd_os_token **token, char *why, size_t size)
{
	struct lbd_token_facts pf, qf;
	HANDLE                 proc = NULL, t = NULL, dup = NULL;
	FILETIME               now;
	ULARGE_INTEGER         noticed;
	unsigned long long     created;
	DWORD                  err = 0;
	char                   psid[LBD_OS_USER_MAX], qsid[LBD_OS_USER_MAX];
	char                   computer[256];
	gid_t                  groups[LBD_OS_GROUPS_WORDS];
	int                    r = -1, e = EACCES;

	GetSystemTimeAsFileTime(&now);
	noticed.LowPart = now.dwLowDateTime;
	noticed.HighPart = now.dwHighDateTime;
	*token = NULL;
	if (pipe_client_facts(fd, psid, &pf, why, size) != 0)
		goto out;
	if (lbd_peer_local(&pf, pipe_client_computer(fd, computer,
	    sizeof(computer)), why, size) != 0) {
		e = EPERM;
		goto out;
	}
	if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
	    (DWORD)pid)) == NULL || !OpenProcessToken(proc, TOKEN_QUERY |
	    TOKEN_DUPLICATE, &t) || token_facts_read(t, qsid, &qf, &err) != 0) {
		if (err == 0)
			err = GetLastError();
		snprintf(why, size, "user %s: the token of its process %ld "
		    "cannot be had (error %lu), to act as it with", psid,
		    (long)pid, (unsigned long)err);
		e = err == ERROR_INVALID_PARAMETER ? ESRCH : EACCES;
		goto out;
	}
	if (lockfs_os_start_time(pid, &created) != 0) {
		e = errno == ESRCH ? ESRCH : EACCES;
		snprintf(why, size, "user %s: when its process %ld was created "
		    "cannot be read (%s)", psid, (long)pid, strerror(e));
		goto out;
	}
	if (lbd_peer_started_before(created, noticed.QuadPart, psid, pid,
	    why, size) != 0 ||
	    lbd_peer_tokens_agree(&pf, &qf, pid, why, size) != 0) {
		e = EPERM;
		goto out;
	}
	if (lbd_user_key(qf.sid, qf.level, user, LBD_OS_USER_MAX) != 0) {
		snprintf(why, size, "user %s at level 0x%lx: its name is too "
		    "long", psid, qf.level);
		goto out;
	}
	if (token_groups_digest(t, groups, &err) != 0) {
		snprintf(why, size, "user %s: the groups and privileges of its "
		    "process's token cannot be read (error %lu)", psid,
		    (unsigned long)err);
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
	memcpy((*token)->groups, groups, sizeof(groups));
	dup = NULL;
	r = 1;
out:
	if (dup != NULL)
		CloseHandle(dup);
	if (t != NULL)
		CloseHandle(t);
	if (proc != NULL)
		CloseHandle(proc);
	if (r == -1)
		errno = e;
	return r;
}

/* The user of token t (TOKEN_QUERY) as lbd_os_peer_user names users
 * (lbd_user_key: its SID and level) into user (LBD_OS_USER_MAX bytes).
 * 0, or -1. */
static int
token_user_key(HANDLE t, char *user)
{
	struct lbd_token_facts f;
	DWORD                  err = 0;
	char                   sid[LBD_OS_USER_MAX];

	if (token_facts_read(t, sid, &f, &err) != 0)
		return -1;
	return lbd_user_key(f.sid, f.level, user, LBD_OS_USER_MAX);
}

/* lbd_os_proc_user: see os.h.  The user of the process's token
 * (OpenProcessToken), its SID and level (token_user_key), opened as the
 * calling thread acts: a process the caller may not open (its DACL
 * denies the caller: another user's, an elevated one's, a protected
 * one) is EACCES, as one whose token it may not read; no such pid
 * (ERROR_INVALID_PARAMETER) is ESRCH; any other failure EIO. */
int
lbd_os_proc_user(pid_t pid, char *user)
{
	HANDLE proc, t = NULL;
	DWORD  err;
	int    r = -1;

	if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
	    (DWORD)pid)) == NULL) {
		err = GetLastError();
		errno = err == ERROR_INVALID_PARAMETER ? ESRCH :
		    err == ERROR_ACCESS_DENIED ? EACCES : EIO;
		return -1;
	}
	if (!OpenProcessToken(proc, TOKEN_QUERY, &t) ||
	    token_user_key(t, user) != 0)
		errno = EACCES;
	else
		r = 1;
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
	memcpy(t->groups, token->groups, sizeof(t->groups));
	return t;
}

/* lbd_os_token_groups: see os.h.  Read at the connection
 * (token_groups_digest). */
size_t
lbd_os_token_groups(const struct lbd_os_token *token, gid_t *words)
{
	memcpy(words, token->groups, sizeof(token->groups));
	return LBD_OS_GROUPS_WORDS;
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
 * OpenAsSelf), its SID and level (token_user_key), "" when the thread
 * has no token of its own. */
int
lbd_os_token_user(char *user)
{
	HANDLE t;
	int    r = 0;

	if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &t)) {
		if (GetLastError() != ERROR_NO_TOKEN) {
			errno = EACCES;
			return -1;
		}
		user[0] = '\0';
		return 0;
	}
	if (token_user_key(t, user) != 0) {
		errno = EACCES;
		r = -1;
	}
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
