/*
 * cluster_none.c: a daemon built without etcd (configure found no libcurl
 * or jansson, or was told --without-etcd) takes no cluster lock, and has
 * no etcd client and no lease (clusterd.h): starting and stopping its
 * cluster side does nothing.
 */
#include "clusterd.h"

int
lbd_clusterd_start(struct lbd *d, char *why, size_t size)
{
	(void)d;
	(void)why;
	(void)size;
	return 0;
}

void
lbd_clusterd_stop(struct lbd *d)
{
	(void)d;
}

void
lbd_clusterd_free(struct lbd *d)
{
	(void)d;
}

const char *
lbd_clusterd_refusal(const struct lbd *d, char *buf, size_t size)
{
	(void)d;
	(void)buf;
	(void)size;
	return "cluster locks need lockbrokerd built with etcd (configure "
	    "--with-etcd, with libcurl and jansson), and this one was "
	    "built without";
}
