/*
 * dirs.h: making the directories that hold the daemon's own files (its
 * state database, its socket) at start (dirs.c).
 */
#ifndef LBD_DIRS_H
#define LBD_DIRS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * lbd_dirs_parent: the directory that holds file (one of the daemon's own
 * files, spelled as the system takes paths: on Windows with '\\' or '/',
 * a drive or a share), made absolute as lockfs makes paths
 * (lockfs_os_path_join: '/' its one separator), into dir (size bytes),
 * a root kept whole ("/", "C:/", "//server/share/").  0, or -1 with
 * errno (ENAMETOOLONG; EINVAL, a path that names no file; an error of
 * the working directory).
 */
int lbd_dirs_parent(const char *file, char *dir, size_t size);

/*
 * lbd_dirs_make_parent: makes the directory that will hold file, and any
 * missing directory above it, with mode (as mkdir -p does); one that
 * exists is left as it is, a root never made (lbd_dirs_parent).  0, or
 * -1 with why (size bytes) naming the directory and the reason.
 */
int lbd_dirs_make_parent(const char *file, mode_t mode, char *why,
    size_t size);

#endif
