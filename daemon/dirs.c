/*
 * dirs.c: making the directories that hold the daemon's own files
 * (dirs.h), through the OS layer's mkdir (os.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "dirs.h"
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

int
lbd_dirs_make_parent(const char *file, mode_t mode, char *why, size_t size)
{
	char  dir[PATH_MAX];
	char *p;

	snprintf(dir, sizeof(dir), "%s", file);
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (make_dir(dir, mode, why, size) != 0)
			return -1;
		*p = '/';
	}
	return make_dir(dir, mode, why, size);
}
