/*
 * fuzz_names.c: libFuzzer target for what lockfs reads from artefacts
 * others made: unique names (ours and Python lockfile's, for every method)
 * and pid files.  Nothing may crash, and what is parsed stays in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned methods[] = {
		LB_LINK, LB_SYMLINK, LB_MKDIR, LB_SQLITE
	};
	struct lockfs_holder h;
	char                 name[LOCKFS_UNIQUE_MAX];
	pid_t                pid;
	size_t               i, n = size < sizeof(name) - 1 ? size :
	                         sizeof(name) - 1;

	memcpy(name, data, n);
	name[n] = '\0';
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		lockfs_holder_clear(&h);
		lockfs_unique_parse(name, methods[i], &h);
		if (h.pid < 0 || h.tid < 0 ||
		    memchr(h.host, '\0', sizeof(h.host)) == NULL ||
		    memchr(h.boot, '\0', sizeof(h.boot)) == NULL)
			abort();
	}
	if (lockfs_pid_parse((const char *)data, size, &pid) == 0 && pid <= 0)
		abort();
	return 0;
}
