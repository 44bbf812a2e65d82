/*
 * cluster_none.c: a daemon built without etcd (configure found no libcurl
 * or jansson, or was told --without-etcd) takes no cluster lock
 * (cluster.h).
 */
#include "cluster.h"

const char *
lbd_cluster_refusal(void)
{
	return "cluster locks need lockbrokerd built with etcd (configure "
	    "--with-etcd, with libcurl and jansson), and this one was "
	    "built without";
}
