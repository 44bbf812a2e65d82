/*
 * args.c: arguments taken from Python for the library: lock paths,
 * timeouts and transports, each refused with an exception that names the
 * argument and says what is wrong with it.
 */
#include "ext.h"

#include <math.h>
#include <string.h>

/* Lock paths are UTF-8, so that a path given as str and the same path
 * given as bytes name one lock, and the names the library gives back
 * (lock_file, unique_name, the holder's) are str. */
PyObject *
lbpy_path(PyObject *obj)
{
	PyObject   *fs = NULL, *out = NULL, *text = NULL;
	char       *bytes;
	Py_ssize_t  len;

	fs = PyOS_FSPath(obj);
	if (fs == NULL) {
		PyErr_Format(PyExc_TypeError,
		    "lock path must be str, bytes or os.PathLike, not %.100s",
		    Py_TYPE(obj)->tp_name);
		goto out;
	}
	if (PyUnicode_Check(fs)) {
		out = PyUnicode_AsUTF8String(fs);
		if (out == NULL) {
			PyErr_Clear();
			PyErr_Format(PyExc_ValueError,
			    "lock path %R is not valid Unicode text (it "
			    "holds surrogates, as os.fsdecode makes of bytes "
			    "that are not UTF-8): lock paths are UTF-8", obj);
			goto out;
		}
	} else {
		text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(fs),
		    PyBytes_GET_SIZE(fs), "strict");
		if (text == NULL) {
			PyErr_Clear();
			PyErr_Format(PyExc_ValueError,
			    "lock path %R is not UTF-8: lock paths are UTF-8",
			    obj);
			goto out;
		}
		out = fs;
		Py_INCREF(out);
	}
	bytes = PyBytes_AS_STRING(out);
	len = PyBytes_GET_SIZE(out);
	if (len == 0) {
		PyErr_SetString(PyExc_ValueError, "lock path is empty");
		Py_CLEAR(out);
	} else if (memchr(bytes, '\0', (size_t)len) != NULL) {
		PyErr_Format(PyExc_ValueError,
		    "lock path %R contains a NUL byte", obj);
		Py_CLEAR(out);
	}
out:
	Py_XDECREF(text);
	Py_XDECREF(fs);
	return out;
}

/* A number too large for a double is a wait that far out, or that far
 * back: for ever, or one try. */
int
lbpy_timeout(PyObject *obj, double *seconds)
{
	double t;
	int    positive, r = -1;

	if (obj == Py_None) {
		*seconds = LB_FOREVER;
		r = 0;
		goto out;
	}
	if (PyUnicode_Check(obj) || PyBytes_Check(obj) ||
	    !(PyFloat_Check(obj) || PyIndex_Check(obj) ||
	      PyNumber_Check(obj))) {
		PyErr_Format(PyExc_TypeError,
		    "timeout must be a number of seconds or None, not %.100s",
		    Py_TYPE(obj)->tp_name);
		goto out;
	}
	t = PyFloat_AsDouble(obj);
	if (t == -1.0 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError,
			    "timeout must be a number of seconds or None, "
			    "not %.100s", Py_TYPE(obj)->tp_name);
			goto out;
		}
		PyErr_Clear();
		positive = PyObject_RichCompareBool(obj, Py_False, Py_GT);
		if (positive < 0)
			goto out;
		t = positive ? LB_FOREVER : -LB_FOREVER;
	}
	if (isnan(t)) {
		PyErr_SetString(PyExc_ValueError,
		    "timeout is NaN: give seconds to wait (<= 0: try once), "
		    "or None to wait until granted");
		goto out;
	}
	*seconds = t;
	r = 0;
out:
	return r;
}

int
lbpy_transport(PyObject *obj, unsigned *flags)
{
	const char *name = NULL;
	int         r = -1;

	if (!PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError,
		    "transport must be 'auto', 'broker' or 'local', not "
		    "%.100s", Py_TYPE(obj)->tp_name);
		goto out;
	}
	name = PyUnicode_AsUTF8(obj);
	if (name == NULL)
		goto out;
	if (strcmp(name, "auto") == 0)
		*flags = 0;
	else if (strcmp(name, "broker") == 0)
		*flags = LB_BROKER;
	else if (strcmp(name, "local") == 0)
		*flags = LB_LOCAL;
	else {
		PyErr_Format(PyExc_ValueError,
		    "transport must be 'auto', 'broker' or 'local', not %R",
		    obj);
		goto out;
	}
	r = 0;
out:
	return r;
}
