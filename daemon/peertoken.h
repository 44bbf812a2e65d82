/*
 * peertoken.h: what the daemon decides about its clients' tokens where
 * the OS names users by token (Windows; os_users_win32.c reads the
 * tokens, peertoken.c decides): the key a user is numbered by (its SID
 * and its integrity level), whether the token a client connected with
 * and its process's own token are of one user, one logon session, one
 * level and one restrictedness, and whether the process found at the
 * client's pid is not younger than its connection.  No system call:
 * tested alone (check_daemon_win).
 */
#ifndef LBD_PEERTOKEN_H
#define LBD_PEERTOKEN_H

#include <stddef.h>
#include <sys/types.h>

/* The medium integrity level's RID (SECURITY_MANDATORY_MEDIUM_RID): an
 * ordinary user's process; an elevated one runs at high (0x3000). */
#define LBD_LEVEL_MEDIUM 0x2000ul

/* What the daemon reads of a token (os_users_win32.c). */
struct lbd_token_facts {
	const char        *sid;     /* its user's SID, as a string */
	unsigned long long logon;   /* its logon session (TokenStatistics'
	                               AuthenticationId, high part first) */
	unsigned long      level;   /* its integrity level's RID
	                               (TokenIntegrityLevel) */
	int                restricted; /* 1 when restricting SIDs limit
	                               it (IsTokenRestricted), else 0 */
	int                network; /* 1 when the NETWORK group (S-1-5-2)
	                               is among its groups: a network
	                               logon's, else 0 */
};

/* What a token holds that bears on its rights beside its user and level
 * (lbd_token_groups_text): a group (TokenGroups), a restricting SID
 * (TokenRestrictedSids) or a privilege (TokenPrivileges, by its LUID
 * written "HIGH:LOW" in hex), with its attributes as Windows gives
 * them. */
struct lbd_token_entry {
	char               kind;    /* 'G', 'R' or 'P' */
	const char        *name;    /* a SID as a string, or a LUID */
	unsigned long      attrs;
};

/* The attributes lbd_token_groups_text reads (winnt.h's SE_GROUP_* and
 * SE_PRIVILEGE_ENABLED). */
#define LBD_GROUP_ENABLED       0x00000004ul
#define LBD_GROUP_DENY_ONLY     0x00000010ul
#define LBD_GROUP_LOGON_ID      0xc0000000ul
#define LBD_PRIVILEGE_ENABLED   0x00000002ul

/*
 * lbd_token_groups_text: the text a token's groups are known by
 * (os_users_win32.c digests it: two tokens of one user at one level
 * whose texts differ may differ in their rights), from its n entries:
 * one line per entry that bears on an access check, sorted, each ended
 * by '\n': "+SID" for a group enabled, "-SID" for a group only for
 * deny, "R SID" for a restricting SID, "P LUID" for a privilege
 * enabled; a logon SID, a group neither enabled nor for deny, and a
 * privilege not enabled, none.  Allocated (the caller frees it); NULL
 * when out of memory.
 */
char *lbd_token_groups_text(const struct lbd_token_entry *e, size_t n);

/*
 * lbd_user_key: the key the daemon numbers the user of a token by
 * (store.c's users table), into key (size bytes): the SID alone at
 * medium, the level a user's processes run at by default (and what
 * every key written before levels were told apart means: see
 * peertoken.c), else the SID, '+' and the level's label SID
 * ("S-1-5-21-...-1001+S-1-16-12288" at high).  0, or -1 when it does
 * not fit.
 */
int lbd_user_key(const char *sid, unsigned long level, char *key,
    size_t size);

/*
 * lbd_peer_tokens_agree: whether the daemon may act for a client with
 * its process's token, proc, given pipe, the token it connected with
 * (its process pid): both of one SID, one logon session and one
 * integrity level, that level not below medium, and both restricted or
 * neither.  0, or -1 with why (size bytes) naming what differs and both
 * values.
 */
int lbd_peer_tokens_agree(const struct lbd_token_facts *pipe,
    const struct lbd_token_facts *proc, pid_t pid, char *why, size_t size);

/*
 * lbd_peer_local: whether the client that connected with token pipe
 * runs on this computer: its token is no network logon's (pipe->network
 * 0) and the pipe names no computer of its client (computer NULL: the
 * pipe says its client is local, or cannot say).  0, or -1 with why
 * (size bytes) naming the user and what gave it away.
 */
int lbd_peer_local(const struct lbd_token_facts *pipe, const char *computer,
    char *why, size_t size);

/*
 * lbd_peer_started_before: whether the process found at a client's pid,
 * created at created, may be the one that connected as user sid, given
 * noticed, a time taken after the connection was made and before the
 * process was looked at (both in one clock's units: on Windows 100 ns
 * since 1601, lockfs_os_start_time's): a process created after noticed
 * cannot have made a connection that was there at noticed; it got the
 * pid of a client that exited.  0 when created is not after noticed, or
 * -1 with why (size bytes) naming the pid and both times.
 */
int lbd_peer_started_before(unsigned long long created,
    unsigned long long noticed, const char *sid, pid_t pid, char *why,
    size_t size);

#endif
