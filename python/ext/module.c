/*
 * module.c: the extension module _lockbroker: the Lock, Holder and
 * Cluster types, the functions acquire_all and set_lost_hook, the method
 * flags, and the library's failures raised as the package's
 * exceptions.  The exception classes live in Python (lockbroker._errors,
 * where they also derive from lockfile's classes when lockfile is
 * installed); the module takes them at import, by the name of lockfile's
 * class for each code.
 */
#include "ext.h"

/* The class of each code, by -code (LB_ERROR is 1): lockfile's name,
 * and lockbroker's own for LB_ECANCELED and LB_EDEADLK; the codes that are Python's own
 * errors have none (see lbpy_raise). */
static const char *const error_names[] = {
	NULL, "Error", "LockError", "LockTimeout", "AlreadyLocked",
	"LockFailed", "UnlockError", "NotLocked", "NotMyLock",
	NULL /* LB_EINVAL */, NULL /* LB_ENOMEM */, "LockCanceled",
	"Deadlock"
};
#define N_ERRORS ((int)(sizeof error_names / sizeof error_names[0]))

static PyObject *error_classes[N_ERRORS];

PyObject *
lbpy_raise(int code, const char *reason)
{
	PyObject *cls;

	if (code == LB_EINVAL)
		cls = PyExc_ValueError;
	else if (code == LB_ENOMEM)
		cls = PyExc_MemoryError;
	else if (code < 0 && -code < N_ERRORS && error_classes[-code] != NULL)
		cls = error_classes[-code];
	else
		cls = error_classes[-LB_ERROR];
	if (reason == NULL || reason[0] == '\0')
		reason = lb_strerror(code);
	PyErr_SetString(cls, reason);
	return NULL;
}

/* Takes the exception classes from lockbroker._errors; 0, or -1 with an
 * exception set. */
static int
errors_load(void)
{
	PyObject *mod;
	int       i, r = -1;

	mod = PyImport_ImportModule("lockbroker._errors");
	if (mod == NULL)
		goto out;
	for (i = 1; i < N_ERRORS; i++) {
		if (error_names[i] == NULL)
			continue;
		Py_XDECREF(error_classes[i]);
		error_classes[i] = PyObject_GetAttrString(mod, error_names[i]);
		if (error_classes[i] == NULL)
			goto out;
	}
	r = 0;
out:
	Py_XDECREF(mod);
	return r;
}

static PyMethodDef lbpy_functions[] = {
	{"acquire_all", (PyCFunction)(void (*)(void))lbpy_acquire_all,
	    METH_VARARGS | METH_KEYWORDS,
	    "acquire_all(locks, timeout=None)\n--\n\n"
	    "Take every lock of the sequence locks (lock objects, 1 to 256),\n"
	    "exclusive, all or none, within timeout seconds (None: no limit;\n"
	    "0: one try of each).  Raises as acquire does, naming the lock\n"
	    "that failed, holding none of them."},
	{"set_lost_hook", lbpy_set_lost_hook, METH_O,
	    "set_lost_hook(fn)\n--\n\n"
	    "Call fn(path, why), on a thread of the package's own, as soon as\n"
	    "the library learns that a lock this process held through the\n"
	    "daemon was lost (a cluster lock whose etcd lease could not be\n"
	    "renewed, a shared hold whose lock file went, a hold a restarted\n"
	    "daemon did not give back); the owner's next call on that lock\n"
	    "raises NotLocked.  An exception fn raises is told as unraisable\n"
	    "(sys.unraisablehook).  None removes the hook."},
	{"_lost_at_exit", lbpy_lost_at_exit, METH_NOARGS,
	    "_lost_at_exit()\n--\n\n"
	    "At the interpreter's end: the lost hook removed, a call of it\n"
	    "that runs waited for."},
	{"_lost_after_fork", lbpy_lost_after_fork, METH_NOARGS,
	    "_lost_after_fork()\n--\n\n"
	    "In a forked child: the lost hook's thread started again."},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef lbpy_module = {
	PyModuleDef_HEAD_INIT,
	"_lockbroker",
	"liblockbroker's lock handles for the package lockbroker "
	"(import lockbroker, not this).",
	-1,
	lbpy_functions, NULL, NULL, NULL, NULL
};

/* The module, once its types are ready and its classes loaded. */
PyMODINIT_FUNC
PyInit__lockbroker(void)
{
	PyObject *m = NULL, *method = NULL;

	if (errors_load() < 0 || lbpy_holder_type_init() < 0 ||
	    lbpy_cluster_type_init() < 0)
		goto out;
	/* The C type's own method is lockfile's default one; each class of
	 * the package names its own (lockbroker._base). */
	if (lbpy_lock_type.tp_dict == NULL && PyType_Ready(&lbpy_lock_type) < 0)
		goto out;
	method = PyLong_FromUnsignedLong(LB_LINK);
	if (method == NULL ||
	    PyDict_SetItemString(lbpy_lock_type.tp_dict, "_method", method) < 0)
		goto out;
	PyType_Modified(&lbpy_lock_type);
	m = PyModule_Create(&lbpy_module);
	if (m == NULL)
		goto out;
	Py_INCREF(&lbpy_lock_type);
	Py_INCREF(lbpy_holder_type());
	Py_INCREF(lbpy_cluster_type());
	if (PyModule_AddObject(m, "Lock", (PyObject *)&lbpy_lock_type) < 0 ||
	    PyModule_AddObject(m, "Holder", (PyObject *)lbpy_holder_type()) < 0 ||
	    PyModule_AddObject(m, "Cluster",
	    (PyObject *)lbpy_cluster_type()) < 0 ||
	    PyModule_AddIntConstant(m, "LINK", LB_LINK) < 0 ||
	    PyModule_AddIntConstant(m, "SYMLINK", LB_SYMLINK) < 0 ||
	    PyModule_AddIntConstant(m, "MKDIR", LB_MKDIR) < 0 ||
	    PyModule_AddIntConstant(m, "PIDFILE", LB_PIDFILE) < 0 ||
	    PyModule_AddIntConstant(m, "SQLITE", LB_SQLITE) < 0)
		Py_CLEAR(m);
out:
	Py_XDECREF(method);
	return m;
}
