/*
 * subuids_none.c: where the system has no subordinate uids (Windows): the
 * table is always empty, and every uid counts in its own budgets.
 */
#include "daemon.h"
#include "subuids.h"

/* lbd_subuids_load: see subuids.h.  Nothing to read. */
int
lbd_subuids_load(struct lbd *d, const char *file, char *why, size_t size)
{
	(void)d;
	(void)file;
	(void)why;
	(void)size;
	return 0;
}

/* lbd_subuids_refresh: see subuids.h.  Nothing to read. */
void
lbd_subuids_refresh(struct lbd *d)
{
	(void)d;
}

/* lbd_subuids_owner: see subuids.h.  Each uid its own. */
uid_t
lbd_subuids_owner(const struct lbd *d, uid_t uid)
{
	(void)d;
	return uid;
}

/* lbd_subuids_free: see subuids.h. */
void
lbd_subuids_free(struct lbd *d)
{
	(void)d;
}
