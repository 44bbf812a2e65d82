/*
 * walshm.h: the state database's WAL-index locks in fewer system calls
 * (walshm.c).
 */
#ifndef LBD_WALSHM_H
#define LBD_WALSHM_H

/* lbd_walshm_install: puts walshm.c's fcntl into sqlite's unix VFS, once
 * per process, before any database is opened.  0, or -1 when the VFS
 * does not let it (the locks are then sqlite's own calls). */
int  lbd_walshm_install(void);

/* lbd_walshm_watch: the -shm file of the WAL database db (open, on this
 * thread, outside any transaction) is the one whose locks are made in
 * fewer calls; NULL: none any more (call it before the database is
 * closed).  A -shm file not found open is left to sqlite. */
void lbd_walshm_watch(const char *db);

/* lbd_walshm_flush: makes the unlock held back, if any.  The store calls
 * it before it returns to the loop, so that no lock outlives sqlite's
 * giving it up by more than one call into the store. */
void lbd_walshm_flush(void);

#endif
