/*
 * conffile.c: reading lockbrokerd.conf (lbd_config_load, settings.h)
 * through lockfs's file-system layer (fs.h); the parser, pure, is
 * settings.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "settings.h"

/* lbd_config_load: see settings.h.  Refuses files over 64 KiB. */
int
lbd_config_load(const char *file, struct lbd_config *c, char *why,
    size_t size)
{
	char    buf[65536], inner[512];
	ssize_t n = 0, got;
	int     fd, r = -1;

	if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_READ |
	    LOCKFS_FS_FOLLOW)) == -1) {
		snprintf(why, size, "%s: %s", file, strerror(errno));
		goto out;
	}
	while ((got = lockfs_fs_read(fd, buf + n, sizeof(buf) - (size_t)n)) >
	    0)
		n += got;
	if (got == -1 || n == (ssize_t)sizeof(buf)) {
		snprintf(why, size, "%s: %s", file, got == -1 ?
		    strerror(errno) : "larger than 64 KiB");
		goto out;
	}
	if (lbd_config_parse(buf, (size_t)n, c, inner, sizeof(inner)) == -1) {
		snprintf(why, size, "%s: %s", file, inner);
		goto out;
	}
	r = 0;
out:
	lockfs_fs_close(fd);
	return r;
}
