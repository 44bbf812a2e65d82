/*
 * lockobject.c: the Lock type, one liblockbroker handle with lockfile's
 * methods (acquire, release, is_locked, i_am_locking, break_lock, the
 * context manager) and attributes (path, lock_file, unique_name,
 * timeout), and lockbroker's own (holder, fencing_token; shared locks:
 * acquire's shared=True, upgrade, downgrade).  The method
 * (link, symlink, ...) is the class's _method; the package's classes
 * (lockbroker._base and the submodules) each name theirs.
 *
 * The handle is made by __init__, whose thread is then the lock's owner
 * (or the process, threaded=False), as lockfile's unique name is made
 * there; it is freed with the object and its hold kept (lb_lock_forget),
 * as lockfile's objects leave their lock when they go: another object of
 * the same owner on the path sees the hold as its own and releases it,
 * and, through the daemon, the hold ends with the process.  __init__ runs
 * once: a second call could free the handle under another thread's
 * waiting acquire.
 *
 * A waiting acquire runs the interpreter's signal handlers about every
 * 50 ms (the handle's interrupt hook, lock_check_signals): one that
 * raises, KeyboardInterrupt for Ctrl-C, ends the wait (its request
 * withdrawn from the daemon) and acquire raises its exception, holding
 * nothing.  cancel() ends the acquires in progress from another thread
 * (LockCanceled).  An acquire that raises releases a grant only when it
 * was fresh (lb_acquire_fresh), never the owner's earlier hold.
 *
 * The asynchronous acquire, for LockBase.acquire_async (_base.py):
 * _acquire_start, _acquire_fd, _acquire_finish and _acquire_fresh are
 * lb_acquire_start, lb_lock_fd, lb_acquire_finish and lb_acquire_fresh;
 * none waits for the lock, so the event loop's thread calls them.
 */
#include "ext.h"

#include <errno.h>

/* 0 when self has its handle; else -1 with an exception set. */
static int
lock_ready(lbpy_lock *self)
{
	int r = 0;

	if (self->lock == NULL) {
		PyErr_Format(PyExc_RuntimeError,
		    "%.100s object was not initialised (its __init__ did not "
		    "run or failed)", Py_TYPE(self)->tp_name);
		r = -1;
	}
	return r;
}

/* The class's method flag, from its _method; 0, or -1 with an exception
 * set. */
static int
lock_method(lbpy_lock *self, unsigned *method)
{
	PyObject     *obj;
	unsigned long m;
	int           r = -1;

	obj = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_method");
	if (obj == NULL)
		goto out;
	m = PyLong_AsUnsignedLong(obj);
	if (PyErr_Occurred() || m > LB_SQLITE) {
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError, "%.100s._method is %R, not a "
		    "lock method", Py_TYPE(self)->tp_name, obj);
		goto out;
	}
	*method = (unsigned)m;
	r = 0;
out:
	Py_XDECREF(obj);
	return r;
}

/* Raises the failure of lb_lock_new for path (errno). */
static void
lock_new_failed(PyObject *path)
{
	if (errno == ENOMEM)
		PyErr_NoMemory();
	else if (errno == EINVAL)
		PyErr_Format(PyExc_ValueError, "lock path %R is not valid",
		    path);
	else
		PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
}

/* The interrupt hook of every handle (lb_lock_set_interrupt), called by
 * the thread that waits in lb_acquire, without the GIL: runs the pending
 * signal handlers (Python runs them in the main thread only; elsewhere
 * this does nothing).  1 when one raised: its exception is then set in
 * the waiting thread, for acquire to raise. */
static int
lock_check_signals(void *unused)
{
	PyGILState_STATE gil = PyGILState_Ensure();
	int              r = PyErr_CheckSignals() < 0;

	PyGILState_Release(gil);
	return r;
}

static int
lock_init(lbpy_lock *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"path", "threaded", "timeout", "transport",
	    "break_stale", NULL};
	PyObject *path, *timeout = Py_None, *transport = NULL, *bytes = NULL;
	int       threaded = 1, break_stale = 0, r = -1;
	unsigned  flags, how = 0;
	double    seconds;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pO$Op:__init__",
	    kwlist, &path, &threaded, &timeout, &transport, &break_stale))
		goto out;
	if (self->lock != NULL) {
		PyErr_Format(PyExc_RuntimeError, "%.100s object is already "
		    "initialised", Py_TYPE(self)->tp_name);
		goto out;
	}
	if (lock_method(self, &flags) < 0 ||
	    lbpy_timeout(timeout, &seconds) < 0 ||
	    (transport != NULL && lbpy_transport(transport, &how) < 0))
		goto out;
	bytes = lbpy_path(path);
	if (bytes == NULL)
		goto out;
	flags |= how | (threaded ? 0 : LB_UNTHREADED) |
	    (break_stale ? LB_BREAK_STALE : 0);
	self->lock = lb_lock_new(PyBytes_AS_STRING(bytes), flags);
	if (self->lock == NULL) {
		lock_new_failed(path);
		goto out;
	}
	(void)lb_lock_set_interrupt(self->lock, lock_check_signals, NULL);
	Py_INCREF(path);
	Py_XSETREF(self->path, path);
	Py_INCREF(timeout);
	Py_XSETREF(self->timeout, timeout);
	r = 0;
out:
	Py_XDECREF(bytes);
	return r;
}

static int
lock_traverse(lbpy_lock *self, visitproc visit, void *arg)
{
	Py_VISIT(self->path);
	Py_VISIT(self->timeout);
	return 0;
}

static int
lock_clear(lbpy_lock *self)
{
	Py_CLEAR(self->path);
	Py_CLEAR(self->timeout);
	return 0;
}

/* Frees the handle, keeping its owner's hold (lb_lock_forget, which
 * does not block). */
static void
lock_dealloc(lbpy_lock *self)
{
	lb_lock *lock = self->lock;

	PyObject_GC_UnTrack(self);
	self->lock = NULL;
	lb_lock_forget(lock);
	lock_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The library's calls as lock_call calls them: arg is the call's own
 * argument (unused by the calls that take none). */
static int
call_release(lb_lock *lock, void *arg)
{
	return lb_release(lock);
}

static int
call_downgrade(lb_lock *lock, void *arg)
{
	return lb_downgrade(lock);
}

static int
call_break_lock(lb_lock *lock, void *arg)
{
	return lb_break_lock(lock);
}

static int
call_is_locked(lb_lock *lock, void *arg)
{
	return lb_is_locked(lock);
}

static int
call_i_am_locking(lb_lock *lock, void *arg)
{
	return lb_i_am_locking(lock);
}

static int
call_get_holder(lb_lock *lock, void *holder)
{
	return lb_get_holder(lock, holder);
}

static int
call_get_cluster(lb_lock *lock, void *cluster)
{
	return lb_get_cluster(lock, cluster);
}

static int
call_fencing_token(lb_lock *lock, void *token)
{
	return lb_fencing_token(lock, token);
}

/* Calls fn(handle, arg) without the GIL: its answer (>= 0), or -1 with
 * the exception of its failure set. */
static int
lock_call(lbpy_lock *self, int (*fn)(lb_lock *, void *), void *arg)
{
	const char *why = NULL;
	int         r = -1;

	if (lock_ready(self) < 0)
		goto out;
	Py_BEGIN_ALLOW_THREADS
	r = fn(self->lock, arg);
	if (r < 0)
		why = lb_lock_error(self->lock);
	Py_END_ALLOW_THREADS
	if (r < 0) {
		lbpy_raise(r, why);
		r = -1;
	}
out:
	return r;
}

/*
 * Takes the lock within timeout (None: the object's own timeout), shared
 * (lb_acquire_shared) or exclusive, without the GIL.  When a signal
 * handler raised while it waited, that exception is raised, and a grant
 * that crossed the withdrawal is released first when it was fresh
 * (lb_acquire_fresh): an acquire that raises holds nothing it took (a
 * hold its owner had before it began stays).
 */
static PyObject *
lock_acquire_timeout(lbpy_lock *self, PyObject *timeout, int shared)
{
	PyObject   *out = NULL;
	const char *why = NULL;
	double      seconds;
	int         r, raised;

	if (lock_ready(self) < 0 ||
	    lbpy_timeout(timeout == Py_None ? self->timeout : timeout,
	    &seconds) < 0)
		goto out;
	Py_BEGIN_ALLOW_THREADS
	r = shared ? lb_acquire_shared(self->lock, seconds) :
	    lb_acquire(self->lock, seconds);
	if (r < 0)
		why = lb_lock_error(self->lock);
	Py_END_ALLOW_THREADS
	/* Only the hook sets an exception while the library runs. */
	raised = PyErr_Occurred() != NULL;
	if (raised && r == 0 && lb_acquire_fresh(self->lock) == 1) {
		Py_BEGIN_ALLOW_THREADS
		(void)lb_release(self->lock);
		Py_END_ALLOW_THREADS
	}
	if (raised)
		goto out;
	if (r < 0) {
		lbpy_raise(r, why);
		goto out;
	}
	out = Py_None;
	Py_INCREF(out);
out:
	return out;
}

/*
 * _acquire_start(timeout): lb_acquire_start, without the GIL (it may
 * connect): True when the lock was taken at once, False when the
 * acquire goes on (then _acquire_finish), else the failure raised.
 * timeout None is the object's own.
 */
static PyObject *
lock_acquire_start(lbpy_lock *self, PyObject *timeout)
{
	const char *why = NULL;
	double      seconds;
	int         r;

	if (lock_ready(self) < 0 ||
	    lbpy_timeout(timeout == Py_None ? self->timeout : timeout,
	    &seconds) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = lb_acquire_start(self->lock, seconds);
	if (r < 0)
		why = lb_lock_error(self->lock);
	Py_END_ALLOW_THREADS
	if (r < 0)
		return lbpy_raise(r, why);
	return PyBool_FromLong(r == 0);
}

/*
 * _acquire_finish(): lb_acquire_finish, without the GIL: None when the
 * lock was taken; while the acquire goes on, the seconds after which to
 * call it again even if _acquire_fd() stays quiet (a float, inf when
 * only the descriptor will tell); else the failure raised.
 */
static PyObject *
lock_acquire_finish(lbpy_lock *self, PyObject *unused)
{
	const char *why = NULL;
	double      again = 0;
	int         r;

	if (lock_ready(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = lb_acquire_finish(self->lock, &again);
	if (r < 0)
		why = lb_lock_error(self->lock);
	Py_END_ALLOW_THREADS
	if (r < 0)
		return lbpy_raise(r, why);
	if (r == LB_INPROGRESS)
		return PyFloat_FromDouble(again);
	Py_RETURN_NONE;
}

/* _acquire_fd(): lb_lock_fd after _acquire_start: the descriptor to
 * watch for reading, or -1 where the system has none (then the times
 * _acquire_finish gives are the only ones). */
static PyObject *
lock_acquire_fd(lbpy_lock *self, PyObject *unused)
{
	int r;

	if (lock_ready(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = lb_lock_fd(self->lock);
	Py_END_ALLOW_THREADS
	if (r == LB_EINVAL)
		return lbpy_raise(r, "no asynchronous acquire was started");
	return PyLong_FromLong(r < 0 ? -1 : r);
}

/* _acquire_fresh(): lb_acquire_fresh: True when this thread's last
 * acquire that took the lock took it afresh, False when the owner held
 * it already; ValueError when this thread has none on the object. */
static PyObject *
lock_acquire_fresh(lbpy_lock *self, PyObject *unused)
{
	int r;

	if (lock_ready(self) < 0)
		return NULL;
	if ((r = lb_acquire_fresh(self->lock)) < 0)
		return lbpy_raise(r, lb_lock_error(self->lock));
	return PyBool_FromLong(r);
}

/* cancel(): lb_lock_cancel, without the GIL. */
static PyObject *
lock_cancel(lbpy_lock *self, PyObject *unused)
{
	if (lock_ready(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	(void)lb_lock_cancel(self->lock);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

static PyObject *
lock_acquire(lbpy_lock *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"timeout", "shared", NULL};
	PyObject *timeout = Py_None;
	int       shared = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$p:acquire", kwlist,
	    &timeout, &shared))
		return NULL;
	return lock_acquire_timeout(self, timeout, shared);
}

/* upgrade(timeout=None): lb_upgrade within timeout (None: the object's
 * own), without the GIL; its failure raised, or a signal handler's
 * exception (Ctrl-C): the hold then shared still when the upgrade was
 * ended, exclusive when it was granted as the exception came. */
static PyObject *
lock_upgrade(lbpy_lock *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject   *timeout = Py_None;
	const char *why = NULL;
	double      seconds;
	int         r;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:upgrade", kwlist,
	    &timeout))
		return NULL;
	if (lock_ready(self) < 0 ||
	    lbpy_timeout(timeout == Py_None ? self->timeout : timeout,
	    &seconds) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = lb_upgrade(self->lock, seconds);
	if (r < 0)
		why = lb_lock_error(self->lock);
	Py_END_ALLOW_THREADS
	/* Only the hook sets an exception while the library runs: raised
	 * as it is.  On r == 0 the hold is exclusive (granted as the
	 * exception came, or exclusive before the call): never downgraded
	 * here, which could make shared a hold its owner took exclusive. */
	if (PyErr_Occurred() != NULL)
		return NULL;
	if (r < 0)
		return lbpy_raise(r, why);
	Py_RETURN_NONE;
}

static PyObject *
lock_downgrade(lbpy_lock *self, PyObject *unused)
{
	if (lock_call(self, call_downgrade, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
lock_release(lbpy_lock *self, PyObject *unused)
{
	if (lock_call(self, call_release, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
lock_break_lock(lbpy_lock *self, PyObject *unused)
{
	if (lock_call(self, call_break_lock, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
lock_is_locked(lbpy_lock *self, PyObject *unused)
{
	int r = lock_call(self, call_is_locked, NULL);

	return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
lock_i_am_locking(lbpy_lock *self, PyObject *unused)
{
	int r = lock_call(self, call_i_am_locking, NULL);

	return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
lock_holder(lbpy_lock *self, PyObject *unused)
{
	PyObject  *out = NULL;
	lb_holder  h;
	int        r = lock_call(self, call_get_holder, &h);

	if (r == 0) {
		out = Py_None;
		Py_INCREF(out);
	} else if (r > 0)
		out = lbpy_holder_new(&h);
	return out;
}

static PyObject *
lock_cluster(lbpy_lock *self, PyObject *unused)
{
	PyObject   *out = NULL;
	lb_cluster  c;
	int         r = lock_call(self, call_get_cluster, &c);

	if (r == 0) {
		out = Py_None;
		Py_INCREF(out);
	} else if (r > 0)
		out = lbpy_cluster_new(&c);
	return out;
}

static PyObject *
lock_fencing_token(lbpy_lock *self, PyObject *unused)
{
	PyObject *out = NULL;
	uint64_t  token = 0;

	if (lock_call(self, call_fencing_token, &token) == 0)
		out = PyLong_FromUnsignedLongLong(token);
	return out;
}

static PyObject *
lock_enter(lbpy_lock *self, PyObject *unused)
{
	PyObject *r = lock_acquire_timeout(self, Py_None, 0);

	if (r == NULL)
		return NULL;
	Py_DECREF(r);
	Py_INCREF(self);
	return (PyObject *)self;
}

static PyObject *
lock_exit(lbpy_lock *self, PyObject *args)
{
	return lock_release(self, NULL);
}

/* lockfile's: <Class: unique_name -- path>. */
static PyObject *
lock_repr(lbpy_lock *self)
{
	if (self->lock == NULL)
		return PyUnicode_FromFormat("<%s: uninitialised>",
		    Py_TYPE(self)->tp_name);
	return PyUnicode_FromFormat("<%s: '%s' -- %R>",
	    Py_TYPE(self)->tp_name, lb_unique_name(self->lock), self->path);
}

static PyObject *
lock_get_path(lbpy_lock *self, void *closure)
{
	if (lock_ready(self) < 0)
		return NULL;
	Py_INCREF(self->path);
	return self->path;
}

static PyObject *
lock_get_lock_file(lbpy_lock *self, void *closure)
{
	if (lock_ready(self) < 0)
		return NULL;
	return PyUnicode_DecodeFSDefault(lb_lock_file(self->lock));
}

static PyObject *
lock_get_unique_name(lbpy_lock *self, void *closure)
{
	if (lock_ready(self) < 0)
		return NULL;
	return PyUnicode_DecodeFSDefault(lb_unique_name(self->lock));
}

static PyObject *
lock_get_timeout(lbpy_lock *self, void *closure)
{
	PyObject *t = self->timeout != NULL ? self->timeout : Py_None;

	Py_INCREF(t);
	return t;
}

static int
lock_set_timeout(lbpy_lock *self, PyObject *value, void *closure)
{
	double seconds;
	int    r = -1;

	if (value == NULL) {
		PyErr_SetString(PyExc_AttributeError,
		    "timeout cannot be deleted (set it to None)");
		goto out;
	}
	if (lbpy_timeout(value, &seconds) < 0)
		goto out;
	Py_INCREF(value);
	Py_XSETREF(self->timeout, value);
	r = 0;
out:
	return r;
}

static PyMethodDef lock_methods[] = {
	{"acquire", (PyCFunction)(void (*)(void))lock_acquire,
	    METH_VARARGS | METH_KEYWORDS,
	    "acquire(timeout=None, *, shared=False)\n--\n\n"
	    "Takes the lock.  timeout None (then the object's timeout, "
	    "None: wait until granted), <= 0: try once (AlreadyLocked), "
	    "> 0: wait up to that many seconds (LockTimeout).  A signal "
	    "handler that raises while it waits (Ctrl-C: "
	    "KeyboardInterrupt) ends the wait with its exception, holding "
	    "nothing; cancel() from another thread, with LockCanceled.  "
	    "shared=True takes it shared: any number of owners hold it "
	    "at once, none while one holds it exclusive; only through the "
	    "daemon (LockFailed without one, never an exclusive lock "
	    "instead).  An owner that holds the lock already, in either "
	    "mode, keeps it as it is."},
	{"upgrade", (PyCFunction)(void (*)(void))lock_upgrade,
	    METH_VARARGS | METH_KEYWORDS,
	    "upgrade(timeout=None)\n--\n\n"
	    "Makes this owner's shared hold exclusive: at once when it is "
	    "the only holder, else once the other holders have released, "
	    "waiting ahead of every queued request, up to timeout (as "
	    "acquire's; AlreadyLocked, LockTimeout: the shared hold stays).  "
	    "Nothing for an exclusive hold.  LockFailed when another "
	    "holder's upgrade waits already or no daemon answers; "
	    "NotLocked, NotMyLock when this owner does not hold the lock.  "
	    "Not ended by cancel() or a signal handler."},
	{"downgrade", (PyCFunction)lock_downgrade, METH_NOARGS,
	    "downgrade()\n--\n\n"
	    "Makes this owner's exclusive hold shared, at once (the shared "
	    "requests queued first are granted with it); nothing for a "
	    "shared hold.  LockFailed, NotLocked, NotMyLock as upgrade's."},
	{"release", (PyCFunction)lock_release, METH_NOARGS,
	    "release()\n--\n\nReleases the lock: NotLocked when nobody "
	    "holds it, NotMyLock when another owner does."},
	{"is_locked", (PyCFunction)lock_is_locked, METH_NOARGS,
	    "is_locked()\n--\n\nTrue when anyone holds the lock."},
	{"i_am_locking", (PyCFunction)lock_i_am_locking, METH_NOARGS,
	    "i_am_locking()\n--\n\nTrue when this lock's owner holds it."},
	{"break_lock", (PyCFunction)lock_break_lock, METH_NOARGS,
	    "break_lock()\n--\n\nRemoves the lock, whoever holds it."},
	{"holder", (PyCFunction)lock_holder, METH_NOARGS,
	    "holder()\n--\n\nWho holds the lock (a Holder), or None when "
	    "nobody does."},
	{"cluster", (PyCFunction)lock_cluster, METH_NOARGS,
	    "cluster()\n--\n\nA cluster lock's side in etcd (a Cluster: "
	    "this daemon's state and key, the holding key and its revision, "
	    "other hosts' waiting keys), or None for a lock of this host "
	    "alone."},
	{"fencing_token", (PyCFunction)lock_fencing_token, METH_NOARGS,
	    "fencing_token()\n--\n\nThe fencing token of this owner's hold "
	    "(broker grants only: LockFailed for an in-process hold, "
	    "NotLocked when not held)."},
	{"cancel", (PyCFunction)lock_cancel, METH_NOARGS,
	    "cancel()\n--\n\nEnds every acquire of this object that is in "
	    "progress, from any thread: each raises LockCanceled, holding "
	    "nothing, its request withdrawn from the daemon (but one whose "
	    "grant came first returns, holding the lock).  An acquire "
	    "begun after cancel() returned is not affected."},
	{"_acquire_start", (PyCFunction)lock_acquire_start, METH_O,
	    "_acquire_start(timeout)\n--\n\nBegins an acquire without "
	    "waiting (lb_acquire_start): True when the lock was taken at "
	    "once, False when it goes on (_acquire_finish)."},
	{"_acquire_finish", (PyCFunction)lock_acquire_finish, METH_NOARGS,
	    "_acquire_finish()\n--\n\nLooks at the acquire begun by "
	    "_acquire_start (lb_acquire_finish): None when it took the "
	    "lock, else the seconds after which to look again (inf: when "
	    "_acquire_fd() is readable); raises its failure."},
	{"_acquire_fd", (PyCFunction)lock_acquire_fd, METH_NOARGS,
	    "_acquire_fd()\n--\n\nThe descriptor that becomes readable "
	    "when _acquire_finish has news, or -1 where there is none."},
	{"_acquire_fresh", (PyCFunction)lock_acquire_fresh, METH_NOARGS,
	    "_acquire_fresh()\n--\n\nWhether this thread's last acquire "
	    "that took the lock took it afresh (False: its owner held it "
	    "already)."},
	{"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)lock_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}
};

static PyGetSetDef lock_getset[] = {
	{"path", (getter)lock_get_path, NULL, "the path as given", NULL},
	{"lock_file", (getter)lock_get_lock_file, NULL,
	    "the artefact's absolute path (PATH.lock; PATH for a pid file)",
	    NULL},
	{"unique_name", (getter)lock_get_unique_name, NULL,
	    "this owner's unique name", NULL},
	{"timeout", (getter)lock_get_timeout, (setter)lock_set_timeout,
	    "acquire's timeout when it is given none", NULL},
	{NULL, NULL, NULL, NULL, NULL}
};

PyTypeObject lbpy_lock_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "_lockbroker.Lock",
	.tp_basicsize = sizeof(lbpy_lock),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
	    Py_TPFLAGS_HAVE_GC,
	.tp_doc = "A lock on a path, through liblockbroker.",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)lock_init,
	.tp_dealloc = (destructor)lock_dealloc,
	.tp_traverse = (traverseproc)lock_traverse,
	.tp_clear = (inquiry)lock_clear,
	.tp_repr = (reprfunc)lock_repr,
	.tp_methods = lock_methods,
	.tp_getset = lock_getset,
};
