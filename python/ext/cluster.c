/*
 * cluster.c: the Cluster type, what lb_get_cluster() tells of a cluster
 * lock's side in etcd (docs/CLUSTER.md), as a read-only struct sequence
 * (a named tuple).  What the daemon leaves unknown (no key, no holding
 * key, no revision, no error) is None.
 */
#include "ext.h"

static PyStructSequence_Field cluster_fields[] = {
	{"state", "this host's daemon's side: 'idle' (no key), 'taking', "
	    "'waiting' (its key behind another host's), 'held', 'lost', "
	    "'releasing', or 'unknown' when no daemon answers"},
	{"key", "this daemon's etcd key for the lock, or None"},
	{"holder", "the holding key's value (host, daemon's pid, path), or "
	    "None when no key holds or etcd did not answer"},
	{"revision", "the holding key's create revision, or None when not "
	    "known"},
	{"waiters", "keys of other hosts queued in etcd"},
	{"error", "why etcd's side is not known, or None when it answered"},
	{NULL, NULL}
};

static PyStructSequence_Desc cluster_desc = {
	"lockbroker.Cluster",
	"A cluster lock's side in etcd, as lock.cluster() tells it.",
	cluster_fields,
	6
};

static PyTypeObject cluster_type;
static int          cluster_ready;

int
lbpy_cluster_type_init(void)
{
	int r = 0;

	if (!cluster_ready) {
		r = PyStructSequence_InitType2(&cluster_type, &cluster_desc);
		if (r == 0)
			cluster_ready = 1;
	}
	return r;
}

PyTypeObject *
lbpy_cluster_type(void)
{
	return &cluster_type;
}

/* A string the library gave (of at most size bytes), or None when
 * empty. */
static PyObject *
text_or_none(const char *s, size_t size)
{
	if (s[0] == '\0')
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefaultAndSize(s, (Py_ssize_t)strnlen(s,
	    size));
}

PyObject *
lbpy_cluster_new(const lb_cluster *c)
{
	PyObject   *out = NULL, *items[6];
	Py_ssize_t  i, n = 6;

	items[0] = PyUnicode_DecodeFSDefaultAndSize(c->state,
	    (Py_ssize_t)strnlen(c->state, sizeof(c->state)));
	items[1] = text_or_none(c->key, sizeof(c->key));
	items[2] = text_or_none(c->holder, sizeof(c->holder));
	items[3] = c->revision == 0 ? (Py_INCREF(Py_None), Py_None) :
	    PyLong_FromUnsignedLongLong(c->revision);
	items[4] = PyLong_FromUnsignedLong(c->waiters);
	items[5] = text_or_none(c->error, sizeof(c->error));
	for (i = 0; i < n; i++)
		if (items[i] == NULL)
			goto out;
	out = PyStructSequence_New(&cluster_type);
	if (out == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		PyStructSequence_SET_ITEM(out, i, items[i]);
		items[i] = NULL;
	}
out:
	for (i = 0; i < n; i++)
		Py_XDECREF(items[i]);
	return out;
}
