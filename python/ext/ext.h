/*
 * ext.h: the extension module _lockbroker, the C half of the Python
 * package lockbroker: liblockbroker's handles as lockfile's lock objects.
 * Its parts and what they share:
 *
 *   module.c      the module: its types and constants, and liblockbroker's
 *                 failures raised as the package's exceptions (_errors.py)
 *   args.c        arguments taken from Python: paths, timeouts, transports
 *   lockobject.c  the Lock type: one handle with lockfile's methods
 *   holder.c      the Holder type: what lb_get_holder tells of a holder
 *   cluster.c     the Cluster type: what lb_get_cluster tells of a
 *                 cluster lock's side in etcd
 *   lost.c        set_lost_hook: the library's lost hook, told on a
 *                 thread of the package's own
 *   acquire_all.c acquire_all: several locks at once (lb_acquire_all)
 *
 * Every call into the library that may wait (for the daemon, or for a
 * lock) runs with the GIL released, so other threads of the interpreter
 * go on meanwhile.
 */
#ifndef LBPY_EXT_H
#define LBPY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <lockbroker.h>

/* A lock object: one liblockbroker handle, made by __init__ (in the
 * thread that is then its owner) and freed with the object, the owner
 * keeping its hold (lb_lock_forget). */
typedef struct {
	PyObject_HEAD
	lb_lock  *lock;         /* NULL until __init__ has succeeded */
	PyObject *path;         /* the path as given */
	PyObject *timeout;      /* acquire's default: None or seconds */
} lbpy_lock;

extern PyTypeObject lbpy_lock_type;

/* PyInit__lockbroker: the module's init, which Python calls at import. */
PyMODINIT_FUNC PyInit__lockbroker(void);

/* lbpy_raise: sets the exception for the library's code (lockfile's
 * class of that name from lockbroker._errors; ValueError for LB_EINVAL,
 * MemoryError for LB_ENOMEM), with reason as its message, or the code's
 * own message when reason is NULL or empty.  Returns NULL. */
PyObject *lbpy_raise(int code, const char *reason);

/* lbpy_path: the lock path obj (str, bytes or os.PathLike) as a new bytes
 * object holding its UTF-8 form, or NULL with TypeError (another type) or
 * ValueError (empty, a NUL byte, not UTF-8) set, naming the path. */
PyObject *lbpy_path(PyObject *obj);

/* lbpy_timeout: a timeout obj (None, or seconds as a number) into
 * *seconds, None being LB_FOREVER; 0, or -1 with TypeError (not a number)
 * or ValueError (NaN) set. */
int lbpy_timeout(PyObject *obj, double *seconds);

/* lbpy_transport: the transport obj ("auto", "broker" or "local") as
 * lb_lock_new's flags (0, LB_BROKER, LB_LOCAL) into *flags; 0, or -1
 * with TypeError or ValueError set. */
int lbpy_transport(PyObject *obj, unsigned *flags);

/* lbpy_holder_type_init: makes the Holder type, once; 0, or -1 with an
 * exception set.  lbpy_holder_type: the type, after a successful init. */
int lbpy_holder_type_init(void);
PyTypeObject *lbpy_holder_type(void);

/* lbpy_holder_new: a new Holder from *h (fields the library left unknown
 * are None), or NULL with an exception set. */
PyObject *lbpy_holder_new(const lb_holder *h);

/* lbpy_cluster_type_init: makes the Cluster type, once; 0, or -1 with an
 * exception set.  lbpy_cluster_type: the type, after a successful init. */
int lbpy_cluster_type_init(void);
PyTypeObject *lbpy_cluster_type(void);

/* lbpy_cluster_new: a new Cluster from *c (what the daemon left unknown
 * is None), or NULL with an exception set. */
PyObject *lbpy_cluster_new(const lb_cluster *c);

/* lbpy_set_lost_hook: the module function set_lost_hook(fn) (lost.c).
 * lbpy_lost_after_fork: _lost_after_fork(), called in a forked child
 * (os.register_at_fork): the thread that tells fn the losses, started
 * again when a hook is set. */
PyObject *lbpy_set_lost_hook(PyObject *module, PyObject *fn);
PyObject *lbpy_lost_after_fork(PyObject *module, PyObject *unused);

/* lbpy_lost_at_exit: _lost_at_exit(), at the main interpreter's end
 * (atexit): the hook removed, and a call of it that runs waited for, 10
 * s at most.  Nothing at a sub-interpreter's end. */
PyObject *lbpy_lost_at_exit(PyObject *module, PyObject *unused);

/* lbpy_acquire_all: the module function acquire_all(locks,
 * timeout=None) (acquire_all.c). */
PyObject *lbpy_acquire_all(PyObject *module, PyObject *args,
    PyObject *kwds);

#endif /* LBPY_EXT_H */
