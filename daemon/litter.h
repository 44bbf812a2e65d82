/*
 * litter.h: unique files that a handoff the previous daemon never
 * finished left to a next holder still alive at start (lockfs_handoff_tidy
 * leaves them to it), looked at again a second apart and removed, as the
 * user the tidy ran as, once their process is gone (litter.c).
 */
#ifndef LBD_LITTER_H
#define LBD_LITTER_H

#include "daemon.h"

/* At most this many are kept watched, and this many of one user's; one
 * more is left (a file with one link that is no lock, its owner's to
 * remove), the first such logged. */
#define LBD_LITTER_MAX         1024
#define LBD_LITTER_PER_UID     64

/*
 * lbd_litter_left: a lockfs_left_fn (arg: the hold whose judgement
 * tidied its directory, whose credentials the tidy ran with, and whose
 * lock path names that directory): the unique file base, of identity fi,
 * in that directory, of identity dir, is watched until its process is
 * gone, then removed as that hold's user.
 */
void lbd_litter_left(void *arg, const struct lockfs_fs_info *dir,
    const char *base, const struct lockfs_fs_info *fi);

/* lbd_litter_close: the daemon stops: the files still watched are left
 * (logged), the watch freed. */
void lbd_litter_close(struct lbd *d);

#endif
