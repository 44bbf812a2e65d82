/*
 * dirs.h: making the directories that hold the daemon's own files (its
 * state database, its socket) at start (dirs.c).
 */
#ifndef LBD_DIRS_H
#define LBD_DIRS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * lbd_dirs_make_parent: makes the directory that will hold file, and any
 * missing directory above it, with mode (as mkdir -p does); one that
 * exists is left as it is.  0, or -1 with why (size bytes) naming the
 * directory and the reason.
 */
int lbd_dirs_make_parent(const char *file, mode_t mode, char *why,
    size_t size);

#endif
