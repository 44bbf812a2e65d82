/*
 * cluster_etcd.c: a daemon built with etcd (cluster.h).  Its etcd client
 * (etcdhttp.c, etcdapi.c) and lease (etcdlease.c) are built, and taking a
 * lock's key is not yet (docs/CLUSTER.md, "What is built"): cluster locks
 * are refused until it is.
 */
#include "cluster.h"

const char *
lbd_cluster_refusal(void)
{
	return "cluster locks are not served by this lockbrokerd yet (its "
	    "etcd client is built; taking a lock's key in etcd is not)";
}
