/*
 * dirs.c: making the directories that hold the daemon's own files
 * (dirs.h), through the OS layer's mkdir (os.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "dirs.h"
#include "lockfs.h"
#include "os.h"

/* Makes one directory unless it exists. */
static int
make_dir(const char *dir, mode_t mode, char *why, size_t size)
{
	if (lbd_os_mkdir(dir, mode) == -1 && errno != EEXIST) {
		snprintf(why, size, "cannot create %.512s: %s", dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* lbd_dirs_parent: see dirs.h. */
int
lbd_dirs_parent(const char *file, char *dir, size_t size)
{
	const char *why;
	size_t      root;

	if (lockfs_os_path_join(file, dir, size, &root, &why) != 0)
		return -1;
	dir[lockfs_dir_len(dir)] = '\0';
	return 0;
}

/* lbd_dirs_make_parent: see dirs.h.  Each directory below the root, from
 * the top down. */
int
lbd_dirs_make_parent(const char *file, mode_t mode, char *why, size_t size)
{
	char   dir[PATH_MAX];
	size_t i, root;

	if (lbd_dirs_parent(file, dir, sizeof(dir)) != 0) {
		snprintf(why, size, "%.512s: cannot tell its directory: %s",
		    file, strerror(errno));
		return -1;
	}
	root = lockfs_os_path_root(dir);
	if (dir[root] == '\0')
		return 0;
	for (i = root; dir[i] != '\0'; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (make_dir(dir, mode, why, size) != 0)
			return -1;
		dir[i] = '/';
	}
	return make_dir(dir, mode, why, size);
}
