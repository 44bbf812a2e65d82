/*
 * cluster.c: cluster locks' names and their keys in etcd (cluster.h).
 * Pure: no I/O, no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "cluster.h"

int
lbd_cluster_name(const char *dir, const char *path, char *name, size_t size)
{
	size_t n = strlen(dir);

	if (n == 0 || strncmp(path, dir, n) != 0 || path[n] != '/' ||
	    path[n + 1] == '\0')
		return 0;
	if (strlen(path + n + 1) >= size)
		return -1;
	memcpy(name, path + n + 1, strlen(path + n + 1) + 1);
	return 1;
}

int
lbd_cluster_prefix(const char *prefix, const char *name, char *out,
    size_t size)
{
	size_t o, need = strlen(prefix) + 2;
	const char *p;

	for (p = name; *p != '\0'; p++)
		need += *p == '/' || *p == '%' ? 3 : 1;
	if (need >= size)
		return -1;
	o = (size_t)snprintf(out, size, "%s/", prefix);
	for (p = name; *p != '\0'; p++) {
		if (*p == '/' || *p == '%') {
			memcpy(out + o, *p == '/' ? "%2F" : "%25", 3);
			o += 3;
		} else
			out[o++] = *p;
	}
	out[o++] = '/';
	out[o] = '\0';
	return (int)o;
}
