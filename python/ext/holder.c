/*
 * holder.c: the Holder type, what lb_get_holder() tells of a lock's
 * holder, as a read-only struct sequence (a named tuple).  What the
 * library leaves unknown (an empty host, pid 0, uid -1, since 0, no
 * token, no count of holders) is None.
 */
#include "ext.h"

static PyStructSequence_Field holder_fields[] = {
	{"host", "the host the artefact names, or None"},
	{"unique_name", "the holder's unique name, or None"},
	{"pid", "the holder's process id, or None when unknown"},
	{"tid", "the holder's thread as its name gives it, or None for a "
	    "process owner or when unknown"},
	{"uid", "the artefact's owner, or the holder's user through the "
	    "broker; None when unknown"},
	{"since", "when the lock was taken (seconds since the epoch), or "
	    "None when unknown"},
	{"liveness", "'alive', 'dead' (provably gone) or 'unknown'"},
	{"waiters", "acquires queued at the broker (0 in-process)"},
	{"token", "the hold's fencing token when the broker granted it, "
	    "else None"},
	{"broker", "True when the broker answered, False for the in-process "
	    "view"},
	{"unclaimed", "True when the broker holds the lock for a process "
	    "that has not claimed it back since the daemon restarted"},
	{"shared", "True when the broker says the lock is held shared (the "
	    "holder described is then the one its lock file names)"},
	{"holders", "how many hold the lock (1 for an exclusive hold), or "
	    "None when not known (the in-process view)"},
	{NULL, NULL}
};

static PyStructSequence_Desc holder_desc = {
	"lockbroker.Holder",
	"Who holds a lock, as lock.holder() tells it.",
	holder_fields,
	13
};

static PyTypeObject holder_type;
static int          holder_ready;

int
lbpy_holder_type_init(void)
{
	int r = 0;

	if (!holder_ready) {
		r = PyStructSequence_InitType2(&holder_type, &holder_desc);
		if (r == 0)
			holder_ready = 1;
	}
	return r;
}

PyTypeObject *
lbpy_holder_type(void)
{
	return &holder_type;
}

/* A string the library gave, or None when empty. */
static PyObject *
text_or_none(const char *s)
{
	if (s[0] == '\0')
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefault(s);
}

/* A number the library gave, or None when it is the unknown value. */
static PyObject *
number_or_none(long long value, long long unknown)
{
	if (value == unknown)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(value);
}

PyObject *
lbpy_holder_new(const lb_holder *h)
{
	static const char *const liveness[] = {"unknown", "alive", "dead"};
	PyObject   *out = NULL, *items[13];
	Py_ssize_t  i, n = 13;
	unsigned    l = (unsigned)h->liveness;

	items[0] = text_or_none(h->host);
	items[1] = text_or_none(h->unique_name);
	items[2] = number_or_none(h->pid, 0);
	items[3] = number_or_none(h->tid, 0);
	items[4] = number_or_none((long long)h->uid,
	    (long long)(lb_uid_t)-1);
	items[5] = h->since == 0 ? (Py_INCREF(Py_None), Py_None) :
	    PyFloat_FromDouble(h->since);
	items[6] = PyUnicode_FromString(l < 3 ? liveness[l] : "unknown");
	items[7] = PyLong_FromUnsignedLong(h->waiters);
	items[8] = h->token == 0 ? (Py_INCREF(Py_None), Py_None) :
	    PyLong_FromUnsignedLongLong(h->token);
	items[9] = PyBool_FromLong(h->broker);
	items[10] = PyBool_FromLong(h->unclaimed);
	items[11] = PyBool_FromLong(h->shared);
	items[12] = h->holders == 0 ? (Py_INCREF(Py_None), Py_None) :
	    PyLong_FromUnsignedLong(h->holders);
	for (i = 0; i < n; i++)
		if (items[i] == NULL)
			goto out;
	out = PyStructSequence_New(&holder_type);
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
