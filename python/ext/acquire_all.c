/*
 * acquire_all.c: the module function acquire_all(locks, timeout=None),
 * liblockbroker's lb_acquire_all over the package's lock objects: every
 * lock of the set taken exclusive, or none.
 *
 * The sequence is copied to a tuple first, so that neither another thread
 * changing it nor its own __getitem__ can change the set under the call;
 * the tuple keeps each object, and with it its handle, alive while the
 * library waits without the GIL.  A signal handler that raises while it
 * waits ends the wait (each handle's interrupt hook, lockobject.c), and
 * a grant that crossed it is given back: acquire_all that raises holds
 * none of the set.
 */
#include "ext.h"

#include <string.h>

/* Raises the failure r of lb_acquire_all: the reason recorded on the
 * lock it names (index failed of n, its path put first when the reason
 * does not name it), else the code's own message.  Returns NULL. */
static PyObject *
acquire_all_raise(int r, lb_lock **handles, size_t n, size_t failed)
{
	const char *why, *path;
	char       *msg = NULL;
	size_t      len;

	if (failed >= n)
		return lbpy_raise(r, lb_lock_error(handles[0]));
	why = lb_lock_error(handles[failed]);
	path = lb_lock_path(handles[failed]);
	if (*why != '\0' && strstr(why, path) != NULL)
		return lbpy_raise(r, why);
	if (*why == '\0')
		why = lb_strerror(r);
	len = strlen(path) + strlen(why) + 3;
	if ((msg = PyMem_Malloc(len)) == NULL)
		return PyErr_NoMemory();
	PyOS_snprintf(msg, len, "%s: %s", path, why);
	lbpy_raise(r, msg);
	PyMem_Free(msg);
	return NULL;
}

/*
 * acquire_all(locks, timeout=None): takes every lock of the sequence
 * locks (the package's lock objects, 1 to 256 of them, each its own path,
 * method and transport) exclusive, all or none, within timeout seconds
 * (None: no limit; 0: one try of each), without the GIL.  None, or raises
 * as acquire does (LockTimeout, AlreadyLocked, LockFailed, LockCanceled,
 * Deadlock), the message naming the lock that failed (the one waited for
 * when the time ran out); ValueError for an empty set, more than 256
 * locks, one lock file named twice or a lock its owner already holds;
 * TypeError for an object that is not a lock.
 */
PyObject *
lbpy_acquire_all(PyObject *module, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"locks", "timeout", NULL};
	PyObject    *seq, *timeout = Py_None, *tuple = NULL, *item, *out = NULL;
	lb_lock    **handles = NULL;
	Py_ssize_t   n, i;
	size_t       failed;
	double       seconds;
	int          r, raised;

	(void)module;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:acquire_all",
	    kwlist, &seq, &timeout))
		goto out;
	if (lbpy_timeout(timeout, &seconds) < 0)
		goto out;
	if ((tuple = PySequence_Tuple(seq)) == NULL)
		goto out;
	if ((n = PyTuple_GET_SIZE(tuple)) == 0) {
		PyErr_SetString(PyExc_ValueError,
		    "acquire_all: no locks given");
		goto out;
	}
	if ((handles = PyMem_Calloc((size_t)n, sizeof(*handles))) == NULL) {
		PyErr_NoMemory();
		goto out;
	}
	for (i = 0; i < n; i++) {
		item = PyTuple_GET_ITEM(tuple, i);
		if (!PyObject_TypeCheck(item, &lbpy_lock_type)) {
			PyErr_Format(PyExc_TypeError, "acquire_all: item %zd "
			    "is %.100s, not a lockbroker lock", i,
			    Py_TYPE(item)->tp_name);
			goto out;
		}
		if ((handles[i] = ((lbpy_lock *)item)->lock) == NULL) {
			PyErr_Format(PyExc_RuntimeError, "acquire_all: item "
			    "%zd, %.100s object, was not initialised", i,
			    Py_TYPE(item)->tp_name);
			goto out;
		}
	}
	failed = (size_t)n;
	Py_BEGIN_ALLOW_THREADS
	r = lb_acquire_all(handles, (size_t)n, seconds, &failed);
	Py_END_ALLOW_THREADS
	/* Only the hooks set an exception while the library runs. */
	raised = PyErr_Occurred() != NULL;
	if (raised && r == 0) {
		Py_BEGIN_ALLOW_THREADS
		for (i = 0; i < n; i++)
			if (lb_acquire_fresh(handles[i]) == 1)
				(void)lb_release(handles[i]);
		Py_END_ALLOW_THREADS
	}
	if (raised)
		goto out;
	if (r < 0) {
		acquire_all_raise(r, handles, (size_t)n, failed);
		goto out;
	}
	out = Py_None;
	Py_INCREF(out);
out:
	PyMem_Free(handles);
	Py_XDECREF(tuple);
	return out;
}
