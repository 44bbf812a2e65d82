/*
 * subuids.h: users' subordinate uids (subuid(5), /etc/subuid): the uids a
 * user may run processes as in user namespaces of its own (rootless
 * containers), without the administrator.  The daemon counts a
 * subordinate uid's connections, locks, watches, pidfds and logged
 * refusals in its owner's budgets (lbd_uid_get, conn.c), so that a user
 * with 65,536 subordinate uids has one budget of each, not 65,537.  Only
 * the budgets: every step for a client still runs with its own uid.
 *
 * The file is read at start, at SIGHUP, and again when it has changed,
 * looked at no more than once a second as connections come
 * (lbd_subuids_refresh: useradd gives new users a range there).  Where
 * the system has no subordinate uids (Windows: subuids_none.c), the
 * table is always empty.
 */
#ifndef LBD_SUBUIDS_H
#define LBD_SUBUIDS_H

#include <sys/types.h>

struct lbd;
struct lbd_subuids;

/*
 * lbd_subuids_load: reads file (subuid(5) lines "OWNER:FIRST:COUNT",
 * OWNER a user name or a uid) into d's table, replacing the one there;
 * "" for the system's file (/etc/subuid; none on Windows); "none" or a
 * missing file: an empty table.  A line that cannot be used
 * (malformed, an unknown user, a range that holds uid 0 or its owner's
 * own uid, or wraps) is skipped and logged.  0, or -1 with why filled
 * (the file cannot be read; d's table is then unchanged).  Blocks on the
 * user database (NSS) for names.
 */
int   lbd_subuids_load(struct lbd *d, const char *file, char *why,
          size_t size);

/* lbd_subuids_refresh: reads the file again when it changed since it
 * was read (looked at once a second at most); keeps the table when it
 * cannot be read, logging why once until it is read again. */
void  lbd_subuids_refresh(struct lbd *d);

/* lbd_subuids_owner: the uid whose budgets uid counts in: the owner of
 * the first range that holds it, else uid itself.  Does not block. */
uid_t lbd_subuids_owner(const struct lbd *d, uid_t uid);

/* lbd_subuids_free: frees d's table (the daemon's end). */
void  lbd_subuids_free(struct lbd *d);

#endif
