/*
 * walshm_none.c: walshm.h where sqlite's VFS is not the unix one
 * (Windows): the state database's WAL-index locks stay sqlite's own
 * calls, as walshm.h lets a VFS that takes no fcntl of ours.
 */
#include <stddef.h>

#include "walshm.h"

/* lbd_walshm_install: see walshm.h.  No unix VFS to put into: -1. */
int
lbd_walshm_install(void)
{
	return -1;
}

/* lbd_walshm_watch: see walshm.h.  Nothing watched. */
void
lbd_walshm_watch(const char *db)
{
	(void)db;
}

/* lbd_walshm_flush: see walshm.h.  Nothing held back. */
void
lbd_walshm_flush(void)
{
}
