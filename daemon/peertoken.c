/*
 * peertoken.c: what the daemon decides about its clients' tokens where
 * the OS names users by token (Windows): see peertoken.h.
 *
 * Which token acts.  The daemon acts for a client with its process's
 * token (the pipe's client process: os_users_win32.c), not with the one
 * the client connected with, which is at the identification level.  A
 * pid may have been reused between the connection and the look at its
 * process, and a thread may connect acting as another token than its
 * process's: so the process's token is taken only when its process was
 * created before the connection was noticed (a time taken after it was
 * made: lbd_peer_started_before), and it is of the same user, the same
 * logon session, the same integrity level and the same restrictedness
 * as the pipe's.  Otherwise another process of that user, elevated
 * (high), unrestricted where the client ran restricted, or of another
 * logon (a scheduled task, a service, another desktop's session), that
 * got the pid would lend the client its rights.  What is left: a
 * process of the same user, logon, level and restrictedness that got
 * the pid between the connection and its being noticed (the client
 * exited at once, and its pid was given out again within that time).  A
 * process below medium (low, untrusted: a sandbox) is not served at
 * all: the pipe carries no integrity label of its own, so Windows gives
 * it medium's and keeps such processes from opening it to write anyway;
 * refusing them here too keeps the keys below sound whatever the label.
 *
 * Who a record is.  The daemon numbers users by key, a SID at one
 * integrity level (lbd_user_key), not by SID alone.  A record of a hold
 * (a previous run's, a grant noted in the intents file) carries a
 * number and no token, and is acted for with a token of a live
 * connection of the same number (creds.c, creds_token): so it borrows
 * only a token of its holder's SID at its holder's level, never an
 * elevated token for a hold taken at medium.  What follows from the
 * number being the key:
 *
 * - a user's elevated process and its ordinary ones are two users:
 *   LIST shows each the other's holds only where it could look at
 *   their artefacts itself, and neither releases nor breaks the
 *   other's through the daemon;
 * - conns_per_uid and locks_per_uid count per key: a user has one
 *   budget per level its processes run at (medium, high; the system's
 *   SID at its own);
 * - ACQUIRE pid= is for a process of the caller's key: an ordinary
 *   process may not keep a lock for its user's elevated one;
 * - lockfs judges a file the client's by the acting token's user or
 *   owner (lockfs/sid_win32.h): an elevated administrator's files are
 *   owned by the administrators, and a record of its hold now acts only
 *   with an elevated token, whose owner that is, where before it could
 *   borrow an ordinary token and judge its own artefacts another's;
 * - a state database written before levels were told apart numbers
 *   bare SIDs: they are read as medium keys.  Its holds were all taken
 *   at medium or above (nothing below could connect), so acting for one
 *   at medium never gives more rights than its holder had (an elevated
 *   holder's record acts with fewer, and may fail to remove what only
 *   the administrators may: its lock file then stays, to be broken as a
 *   stale lock).
 *
 * Two tokens of one SID at one level may still differ in their groups
 * (the logon's kind, INTERACTIVE, BATCH, SERVICE; two restricted
 * tokens' restricting SIDs) and in the privileges they enable: each
 * client's credentials carry a digest of what in its token bears on an
 * access check (lbd_token_groups_text, hashed by os_users_win32.c), kept
 * with its holds, and a record borrows only a token of the same digest
 * (creds.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peertoken.h"

/* The mandatory labels' authority (SECURITY_MANDATORY_LABEL_AUTHORITY):
 * level RID's label SID is S-1-16-RID. */
#define LABEL_SID_PREFIX "S-1-16-"

/* lbd_user_key: see peertoken.h. */
int
lbd_user_key(const char *sid, unsigned long level, char *key, size_t size)
{
	int n;

	if (level == LBD_LEVEL_MEDIUM)
		n = snprintf(key, size, "%s", sid);
	else
		n = snprintf(key, size, "%s+" LABEL_SID_PREFIX "%lu", sid,
		    level);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Orders two lines of a groups text (qsort). */
static int
line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The line entry e gives in a groups text, allocated into *line; NULL
 * there when it gives none.  0, or -1 when out of memory. */
static int
groups_line(const struct lbd_token_entry *e, char **line)
{
	const char *mark = NULL;
	size_t      len;

	*line = NULL;
	if (e->kind == 'G' &&
	    (e->attrs & LBD_GROUP_LOGON_ID) != LBD_GROUP_LOGON_ID)
		mark = e->attrs & LBD_GROUP_ENABLED ? "+" :
		    e->attrs & LBD_GROUP_DENY_ONLY ? "-" : NULL;
	else if (e->kind == 'R')
		mark = "R ";
	else if (e->kind == 'P' && e->attrs & LBD_PRIVILEGE_ENABLED)
		mark = "P ";
	if (mark == NULL)
		return 0;
	len = strlen(mark) + strlen(e->name) + 2;
	if ((*line = malloc(len)) == NULL)
		return -1;
	snprintf(*line, len, "%s%s\n", mark, e->name);
	return 0;
}

/*
 * lbd_token_groups_text: see peertoken.h.  What bears on a check: a
 * group enabled grants what entries for it allow and is refused what
 * they deny; one for deny only is refused alone; restricting SIDs make
 * a second check that both must pass; an enabled privilege (backup,
 * restore, take ownership) passes checks by itself.  The logon SID is
 * left out: each logon has its own, it names the logon's desktop and
 * window station, never a file, and with it no record could borrow the
 * token of its user's next logon of the same kind.  The kind of logon
 * stays: INTERACTIVE (S-1-5-4), BATCH (S-1-5-3), SERVICE (S-1-5-6) and
 * NETWORK (S-1-5-2) are groups.
 */
char *
lbd_token_groups_text(const struct lbd_token_entry *e, size_t n)
{
	char  **lines = NULL, *text = NULL;
	size_t  i, k = 0, len = 1;

	if ((lines = calloc(n + 1, sizeof(*lines))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (groups_line(&e[i], &lines[k]) != 0)
			goto out;
		if (lines[k] != NULL)
			len += strlen(lines[k++]);
	}
	qsort(lines, k, sizeof(*lines), line_cmp);
	if ((text = malloc(len)) == NULL)
		goto out;
	text[0] = '\0';
	for (i = 0; i < k; i++)
		strcat(text, lines[i]);
out:
	for (i = 0; lines != NULL && i <= n; i++)
		free(lines[i]);
	free(lines);
	return text;
}

/* lbd_peer_tokens_agree: see peertoken.h and the top of this file. */
int
lbd_peer_tokens_agree(const struct lbd_token_facts *pipe,
    const struct lbd_token_facts *proc, pid_t pid, char *why, size_t size)
{
	int r = -1;

	if (strcmp(pipe->sid, proc->sid) != 0)
		snprintf(why, size, "it connected as user %s but its process "
		    "%ld runs as %s (a thread acting as another user is not "
		    "served)", pipe->sid, (long)pid, proc->sid);
	else if (pipe->logon != proc->logon)
		snprintf(why, size, "user %s: it connected in logon session "
		    "0x%llx but its process %ld runs in logon session 0x%llx "
		    "(another logon's process is not acted as)", pipe->sid,
		    pipe->logon, (long)pid, proc->logon);
	else if (pipe->level != proc->level)
		snprintf(why, size, "user %s: it connected at integrity level "
		    "0x%lx but its process %ld runs at 0x%lx (a process at "
		    "another level is not acted as)", pipe->sid, pipe->level,
		    (long)pid, proc->level);
	else if (pipe->restricted != proc->restricted)
		snprintf(why, size, "user %s: it connected with a%s token but "
		    "its process %ld runs with a%s one (a process of other "
		    "rights is not acted as)", pipe->sid, pipe->restricted ?
		    " restricted" : "n unrestricted", (long)pid,
		    proc->restricted ? " restricted" : "n unrestricted");
	else if (proc->level < LBD_LEVEL_MEDIUM)
		snprintf(why, size, "user %s: its process %ld runs at "
		    "integrity level 0x%lx, below medium (0x%lx): not served",
		    pipe->sid, (long)pid, proc->level, LBD_LEVEL_MEDIUM);
	else
		r = 0;
	return r;
}

/*
 * lbd_peer_local: see peertoken.h.  The pipe's DACL denies network
 * logons everything (listen_win32.c), and a client that comes over the
 * network has a token of a network logon, which holds the NETWORK
 * group: this is the daemon's second guard, in case the DACL is changed
 * or bypassed, since libuv makes its pipe instances without
 * PIPE_REJECT_REMOTE_CLIENTS.  A pipe names its client's computer only
 * for a client that came through the network redirector (for one on
 * this computer the call fails with ERROR_PIPE_LOCAL): a client of this
 * very computer that opened \\HOST\pipe\NAME is a network logon too,
 * so any name given is refused, whatever computer it names.
 */
int
lbd_peer_local(const struct lbd_token_facts *pipe, const char *computer,
    char *why, size_t size)
{
	int r = -1;

	if (pipe->network)
		snprintf(why, size, "user %s: it connected over the network "
		    "(its token has the NETWORK group, S-1-5-2): only this "
		    "computer's processes are served", pipe->sid);
	else if (computer != NULL)
		snprintf(why, size, "user %s: it connected from computer %s, "
		    "through the network: only this computer's processes are "
		    "served", pipe->sid, computer);
	else
		r = 0;
	return r;
}

/* lbd_peer_started_before: see peertoken.h and the top of this file. */
int
lbd_peer_started_before(unsigned long long created,
    unsigned long long noticed, const char *sid, pid_t pid, char *why,
    size_t size)
{
	if (created <= noticed)
		return 0;
	snprintf(why, size, "user %s: its process %ld was created (at %llu) "
	    "after its connection was there (at %llu): another process got "
	    "the pid of one that exited, and is not acted as", sid, (long)pid,
	    created, noticed);
	return -1;
}
