/*
 * lost.c: set_lost_hook(fn), the library's lost hook (lb_set_lost_hook)
 * for Python: fn(path, why) is called on a thread of the package's own
 * soon after the library learns that a lock the process held through the
 * daemon was lost (docs/python.md).
 *
 * The library calls its hook on its reader thread, which must not wait
 * for the GIL (a thread that holds it may be waiting, GIL released or
 * not, for a reply that thread reads): the C hook copies the loss into a
 * queue of its own and wakes the teller, a thread started by the first
 * set_lost_hook (again in a forked child: lbpy_lost_after_fork), which
 * waits without the GIL, takes the queue and calls fn with each loss,
 * GIL held.  The queue holds LOST_QUEUE_MAX losses at most (a teller
 * that cannot get the GIL for long keeps them): past that, a loss is
 * counted, and told as one line after the others.  The hook is the main
 * interpreter's (its state is the process's): a sub-interpreter may not
 * set it, and its end leaves it.  At the interpreter's end
 * (lbpy_lost_at_exit) the hook is removed, and a call of it that runs
 * is waited for, LOST_EXIT_WAIT_MS at most.
 *
 *   reader thread: lost_hook --queue, signal--> teller: fn(path, why)
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ext.h"

#define LOST_QUEUE_MAX 1024
#define LOST_EXIT_WAIT_MS 10000

struct loss {
	struct loss *next;
	char        *path;
	char        *why;
};

static pthread_mutex_t lost_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  lost_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t  lost_told_cv = PTHREAD_COND_INITIALIZER;
static int             lost_telling;    /* lost_mu's: fn runs */
static struct loss    *lost_head;       /* lost_mu's, as the next three */
static struct loss   **lost_tail = &lost_head;
static size_t          lost_count;
static unsigned long   lost_dropped;    /* past LOST_QUEUE_MAX */
static PyObject       *lost_fn;         /* the GIL's, as the next three:
                                           fn, or NULL */
static int             lost_set;        /* the library's hook is ours */
static int             lost_teller;     /* the teller runs */
static int             lost_atfork;     /* pthread_atfork made */

/* Frees loss l. */
static void
loss_free(struct loss *l)
{
	free(l->path);
	free(l->why);
	free(l);
}

/* The library's hook, on its reader thread, without the GIL: queues the
 * loss and wakes the teller. */
static void
lost_hook(const char *path, const char *why, void *unused)
{
	struct loss *l = calloc(1, sizeof(*l));

	if (l != NULL && ((l->path = strdup(path)) == NULL ||
	    (l->why = strdup(why != NULL ? why : "")) == NULL)) {
		loss_free(l);
		l = NULL;
	}
	pthread_mutex_lock(&lost_mu);
	if (l == NULL || lost_count >= LOST_QUEUE_MAX) {
		lost_dropped++;
		if (l != NULL)
			loss_free(l);
	} else {
		*lost_tail = l;
		lost_tail = &l->next;
		lost_count++;
	}
	pthread_cond_signal(&lost_cv);
	pthread_mutex_unlock(&lost_mu);
}

/* Calls the hook set now, fn(path, why) (nothing when none is), its
 * exception (if any) told as unraisable, as a thread's is: a hook
 * replaced is never called for a loss told after. */
static void
lost_tell(const char *path, const char *why)
{
	PyObject *fn = lost_fn, *r;

	if (fn == NULL)
		return;
	Py_INCREF(fn);
	pthread_mutex_lock(&lost_mu);
	lost_telling = 1;
	pthread_mutex_unlock(&lost_mu);
	r = PyObject_CallFunction(fn, "O&O&", PyUnicode_DecodeFSDefault,
	    path, PyUnicode_DecodeFSDefault, why);
	if (r == NULL)
		PyErr_WriteUnraisable(fn);
	Py_XDECREF(r);
	Py_DECREF(fn);
	pthread_mutex_lock(&lost_mu);
	lost_telling = 0;
	pthread_cond_broadcast(&lost_told_cv);
	pthread_mutex_unlock(&lost_mu);
}

/* The teller: waits (GIL released) for losses, then tells each to the
 * hook (dropped when there is none), then the count of those the queue
 * had no room for.  Runs till the process ends. */
static void
lost_teller_run(void *unused)
{
	PyGILState_STATE gs = PyGILState_Ensure();
	struct loss     *list, *l;
	unsigned long    dropped;
	char             why[128];

	for (;;) {
		Py_BEGIN_ALLOW_THREADS
		pthread_mutex_lock(&lost_mu);
		while (lost_head == NULL && lost_dropped == 0)
			pthread_cond_wait(&lost_cv, &lost_mu);
		list = lost_head;
		lost_head = NULL;
		lost_tail = &lost_head;
		lost_count = 0;
		dropped = lost_dropped;
		lost_dropped = 0;
		pthread_mutex_unlock(&lost_mu);
		Py_END_ALLOW_THREADS
		while ((l = list) != NULL) {
			list = l->next;
			lost_tell(l->path, l->why);
			loss_free(l);
		}
		if (dropped > 0) {
			snprintf(why, sizeof(why), "%lu more losses were not "
			    "kept: the hook's thread could not run for long",
			    dropped);
			lost_tell("", why);
		}
	}
	PyGILState_Release(gs);         /* (never reached) */
}

/* In a forked child: the parent's losses are not its own, its teller is
 * not there, and the lock may have been held by the parent's reader
 * thread. */
static void
lost_child(void)
{
	struct loss *l;

	pthread_mutex_init(&lost_mu, NULL);
	pthread_cond_init(&lost_cv, NULL);
	pthread_cond_init(&lost_told_cv, NULL);
	while ((l = lost_head) != NULL) {
		lost_head = l->next;
		loss_free(l);
	}
	lost_telling = 0;
	lost_tail = &lost_head;
	lost_count = 0;
	lost_dropped = 0;
	lost_teller = 0;
}

/* Starts the teller unless it runs: 0, or -1 with RuntimeError set. */
static int
lost_teller_start(void)
{
	if (lost_teller)
		return 0;
	if (PyThread_start_new_thread(lost_teller_run, NULL) ==
	    PYTHREAD_INVALID_THREAD_ID) {
		PyErr_SetString(PyExc_RuntimeError, "set_lost_hook: cannot "
		    "start the thread that tells the losses");
		return -1;
	}
	lost_teller = 1;
	return 0;
}

/* Whether the running interpreter is the main one, whose the hook is. */
static int
lost_main(void)
{
	return PyInterpreterState_Get() == PyInterpreterState_Main();
}

/* lbpy_set_lost_hook: see ext.h. */
PyObject *
lbpy_set_lost_hook(PyObject *module, PyObject *fn)
{
	PyObject *old = lost_fn;

	if (!lost_main()) {
		PyErr_SetString(PyExc_RuntimeError, "set_lost_hook: the lost "
		    "hook is the main interpreter's (one per process), not a "
		    "sub-interpreter's");
		return NULL;
	}
	if (fn != Py_None && !PyCallable_Check(fn)) {
		PyErr_Format(PyExc_TypeError, "set_lost_hook: fn must be "
		    "callable or None, not %.100s", Py_TYPE(fn)->tp_name);
		return NULL;
	}
	if (!lost_atfork && pthread_atfork(NULL, NULL, lost_child) != 0) {
		PyErr_SetString(PyExc_MemoryError, "set_lost_hook: "
		    "pthread_atfork failed");
		return NULL;
	}
	lost_atfork = 1;
	if (fn == Py_None) {
		lost_fn = NULL;
		if (lost_set)
			lb_set_lost_hook(NULL, NULL);
		lost_set = 0;
	} else {
		if (lost_teller_start() < 0)
			return NULL;
		Py_INCREF(fn);
		lost_fn = fn;
		if (!lost_set)
			lb_set_lost_hook(lost_hook, NULL);
		lost_set = 1;
	}
	Py_XDECREF(old);
	Py_RETURN_NONE;
}

/* lbpy_lost_at_exit: see ext.h. */
PyObject *
lbpy_lost_at_exit(PyObject *module, PyObject *unused)
{
	PyObject        *old = lost_fn;
	struct timespec  until;

	if (!lost_main())
		Py_RETURN_NONE;         /* a sub-interpreter's end */
	lost_fn = NULL;
	if (lost_set)
		lb_set_lost_hook(NULL, NULL);
	lost_set = 0;
	Py_XDECREF(old);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LOST_EXIT_WAIT_MS / 1000;
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&lost_mu);
	while (lost_telling && pthread_cond_timedwait(&lost_told_cv,
	    &lost_mu, &until) == 0)
		;
	pthread_mutex_unlock(&lost_mu);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

/* lbpy_lost_after_fork: see ext.h. */
PyObject *
lbpy_lost_after_fork(PyObject *module, PyObject *unused)
{
	if (lost_fn != NULL && lost_teller_start() < 0)
		return NULL;
	Py_RETURN_NONE;
}
