/*
 * cluster_none.c: a daemon built without etcd (configure found no libcurl
 * or jansson, or was told --without-etcd) takes no cluster lock, and has
 * no etcd client and no lease (clusterd.h): starting and stopping its
 * cluster side does nothing, and no lock is a cluster lock's cohort
 * (cohort.h: every gate open; request.c refuses cluster locks first).
 */
#include "clusterd.h"
#include "cohort.h"

int
lbd_cohort_gate(struct lbd_lock *l, struct lockfs_err *err)
{
	(void)l;
	(void)err;
	return 0;
}

const char *
lbd_cohort_parked(const struct lbd_lock *l)
{
	(void)l;
	return NULL;
}

int
lbd_cohort_may_make(struct lbd_lock *l, struct lbd_conn *c,
    struct lockfs_err *err)
{
	(void)l;
	(void)c;
	(void)err;
	return 1;
}

const char *
lbd_cohort_leaseless(const struct lbd *d, char *buf, size_t size)
{
	(void)d;
	(void)buf;
	(void)size;
	return NULL;
}

uint64_t
lbd_cohort_token(struct lbd_lock *l)
{
	(void)l;
	return 0;
}

const char *
lbd_cohort_list_state(const struct lbd_lock *l)
{
	(void)l;
	return NULL;
}

int
lbd_cohort_status(struct lbd_conn *c, const char *path, struct lbd_lock *l,
    struct lbp_out *o)
{
	(void)c;
	(void)path;
	(void)l;
	(void)o;
	return 0;
}

void
lbd_cohort_status_forget(struct lbd_conn *c)
{
	(void)c;
}

void
lbd_cohort_handed(struct lbd_lock *l)
{
	(void)l;
}

void
lbd_cohort_unheld(struct lbd_lock *l)
{
	(void)l;
}

void
lbd_cohort_drop(struct lbd_lock *l)
{
	(void)l;
}

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
