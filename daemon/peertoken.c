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
 * What this does not tell apart: two tokens of one SID at one level,
 * both restricted or both not, whose groups differ (the logon's kind,
 * INTERACTIVE, BATCH, SERVICE; two restricted tokens' restricting
 * SIDs).  docs/WINDOWS.md says what that leaves.
 */
#include <stdio.h>
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
