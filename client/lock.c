/*
 * lock.c: the lb_lock handle and the LockFile API over the in-process
 * transport (lockfs).  The broker transport joins here later; the API does
 * not change.
 *
 * A handle is shared safely between threads: its mutex guards its state
 * (the owner identity, renewed in a forked child, and the last failure) and
 * serialises the single filesystem steps, but is never held while an
 * acquire sleeps, so other threads may query the handle meanwhile.
 *
 * Acquire, drawn for one handle (held = the artefact names this owner):
 *
 *          try_acquire ok / already ours
 *   free ---------------------------------> held
 *     |  ^                                  |
 *     |  | timeout <= 0: LB_EALREADY        | lb_release, lb_lock_free
 *     |  | deadline passed: LB_ETIMEOUT     v
 *     |  +------ waiting <-----------+     free
 *     |          (sleep with back-off,|
 *     +--------> try again; a stale  -+
 *   held by other   holder is broken only with LB_BREAK_STALE)
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "lockfs.h"

/* Back-off between tries while another owner holds the lock: from
 * BACKOFF_MIN, doubling, to BACKOFF_MAX, with jitter so that waiters do not
 * move in step. */
#define BACKOFF_MIN 0.0005
#define BACKOFF_MAX 0.020

struct lb_lock {
	pthread_mutex_t    mu;
	char              *given;      /* the path as given */
	unsigned           flags;
	int                threaded;
	struct lockfs_lock fs;
	struct lockfs_err  err;        /* the last failure */
};

static __thread char error_copy[sizeof(((struct lockfs_err *)0)->msg)];

/* Seconds on the monotonic clock. */
static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static __thread unsigned int jitter_state;

/* A factor in [0.75, 1.25) for the back-off, from a per-thread xorshift
 * seeded by pid, thread and time, so that processes do not draw in step
 * (and the application's rand() is left alone). */
static double
jitter(void)
{
	unsigned int x = jitter_state;

	if (x == 0)
		x = ((unsigned int)getpid() * 2654435761u ^
		    (unsigned int)lockfs_gettid() * 40503u ^
		    (unsigned int)(now_mono() * 1e6)) | 1u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	jitter_state = x;
	return 0.75 + 0.5 * (double)(x >> 8) / (double)(1u << 24);
}

/* Sleeps for seconds (> 0), resuming after signals. */
static void
sleep_for(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Begins a step on a handle: takes its mutex and, in a forked child, makes
 * the child a new owner (a child never holds its parent's locks).  Returns
 * 0, or an LB_E* code with the reason recorded (mutex released).
 */
static int
step_begin(lb_lock *lock)
{
	struct lockfs_owner o;
	int                 r = 0;

	pthread_mutex_lock(&lock->mu);
	if (lock->fs.owner.pid == getpid())
		goto out;
	if (lockfs_owner_self(&o, lock->threaded &&
	    lock->fs.method != LB_PIDFILE) == -1 ||
	    lockfs_unique_format(&o, lock->fs.method, lock->fs.lock_file,
	    lock->fs.unique, sizeof(lock->fs.unique)) == -1) {
		r = lockfs_fail(&lock->err, LB_ERROR, errno,
		    "cannot tell who holds %s after fork", lock->given);
		pthread_mutex_unlock(&lock->mu);
		goto out;
	}
	lock->fs.owner = o;
out:
	return r;
}

/* Ends a step: records a failure's reason from err, releases the mutex,
 * returns r. */
static int
step_end(lb_lock *lock, int r, const struct lockfs_err *err)
{
	if (r < 0 && err != NULL)
		lock->err = *err;
	pthread_mutex_unlock(&lock->mu);
	return r;
}

/* Refuses the broker transport, which this build does not have. */
static int
broker_refuse(lb_lock *lock, int code)
{
	int r;

	if (lock == NULL)
		return LB_EINVAL;
	if ((lock->flags & LB_BROKER) == 0)
		return 0;
	pthread_mutex_lock(&lock->mu);
	r = lockfs_fail(&lock->err, code, 0, "%s: LB_BROKER asked for, but no "
	    "broker transport is available", lock->given);
	pthread_mutex_unlock(&lock->mu);
	return r;
}

/* lb_lock_new: see lockbroker.h. */
lb_lock *
lb_lock_new(const char *path, unsigned flags)
{
	struct lockfs_err err;
	lb_lock          *lock = NULL;
	unsigned          method = flags & LB_METHOD_MASK;
	unsigned          known = LB_METHOD_MASK | LB_UNTHREADED | LB_LOCAL |
	                      LB_BROKER | LB_BREAK_STALE;

	if (path == NULL || *path == '\0' || (flags & ~known) != 0 ||
	    lockfs_ops_for(method) == NULL ||
	    (flags & (LB_LOCAL | LB_BROKER)) == (LB_LOCAL | LB_BROKER)) {
		errno = EINVAL;
		goto fail;
	}
	if ((lock = calloc(1, sizeof(*lock))) == NULL ||
	    (lock->given = strdup(path)) == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	lock->flags = flags;
	lock->threaded = (flags & LB_UNTHREADED) == 0 && method != LB_PIDFILE;
	if (lockfs_init(&lock->fs, path, method,
	    lock->threaded ? lockfs_gettid() : 0, &err) != 0)
		goto fail;      /* errno from lockfs_init */
	pthread_mutex_init(&lock->mu, NULL);
	return lock;

fail:
	if (lock != NULL) {
		int saved = errno;

		free(lock->given);
		free(lock);
		errno = saved;
	}
	return NULL;
}

/* lb_lock_free: see lockbroker.h.  Releases only what this handle's owner
 * holds (in a forked child: nothing of the parent's). */
void
lb_lock_free(lb_lock *lock)
{
	int saved = errno;

	if (lock == NULL)
		return;
	if (lb_i_am_locking(lock) == 1)
		lb_release(lock);
	pthread_mutex_destroy(&lock->mu);
	lockfs_fini(&lock->fs);
	free(lock->given);
	free(lock);
	errno = saved;
}

/* One try, under the handle's mutex; breaks a stale holder's lock and
 * tries again when the flags ask for it. */
static int
acquire_once(lb_lock *lock, struct lockfs_err *err)
{
	int r;

	if ((r = step_begin(lock)) != 0)
		return r;
	r = lockfs_try_acquire(&lock->fs, err);
	if (r == LB_EALREADY && (lock->flags & LB_BREAK_STALE) != 0 &&
	    lockfs_break_stale(&lock->fs, err) == 1)
		r = lockfs_try_acquire(&lock->fs, err);
	if (r != 0 && r != LB_EALREADY)
		lockfs_abandon(&lock->fs);
	return step_end(lock, r, err);
}

/* lb_acquire: see lockbroker.h.  Blocks up to timeout, polling with a
 * bounded back-off. */
int
lb_acquire(lb_lock *lock, double timeout)
{
	struct lockfs_err err;
	double            deadline = 0, backoff = BACKOFF_MIN, left, pause;
	int               r;

	if ((r = broker_refuse(lock, LB_EFAILED)) != 0)
		goto out;
	if (isnan(timeout)) {
		pthread_mutex_lock(&lock->mu);
		r = step_end(lock, lockfs_fail(&err, LB_EINVAL, 0,
		    "timeout for %s is not a number", lock->given), &err);
		goto out;
	}
	if (timeout > 0 && !isinf(timeout))
		deadline = now_mono() + timeout;
	while ((r = acquire_once(lock, &err)) == LB_EALREADY) {
		if (timeout <= 0)
			break;
		left = isinf(timeout) ? BACKOFF_MAX : deadline - now_mono();
		if (left <= 0) {
			pthread_mutex_lock(&lock->mu);
			lockfs_abandon(&lock->fs);
			r = step_end(lock, lockfs_fail(&err, LB_ETIMEOUT, 0,
			    "timed out after %g s waiting for %s", timeout,
			    lock->given), &err);
			break;
		}
		pause = backoff * jitter();
		sleep_for(pause < left ? pause : left);
		if ((backoff *= 2) > BACKOFF_MAX)
			backoff = BACKOFF_MAX;
	}
	if (r == LB_EALREADY) {
		pthread_mutex_lock(&lock->mu);
		lockfs_abandon(&lock->fs);
		pthread_mutex_unlock(&lock->mu);
	}
out:
	return r;
}

/* lb_release: see lockbroker.h. */
int
lb_release(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if ((r = broker_refuse(lock, LB_EUNLOCK)) != 0 ||
	    (r = step_begin(lock)) != 0)
		return r;
	return step_end(lock, lockfs_release(&lock->fs, &err), &err);
}

/* lb_is_locked: see lockbroker.h. */
int
lb_is_locked(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if ((r = broker_refuse(lock, LB_ERROR)) != 0 ||
	    (r = step_begin(lock)) != 0)
		return r;
	return step_end(lock, lockfs_is_locked(&lock->fs, &err), &err);
}

/* lb_i_am_locking: see lockbroker.h. */
int
lb_i_am_locking(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if ((r = broker_refuse(lock, LB_ERROR)) != 0 ||
	    (r = step_begin(lock)) != 0)
		return r;
	return step_end(lock, lockfs_i_am_locking(&lock->fs, &err), &err);
}

/* lb_break_lock: see lockbroker.h. */
int
lb_break_lock(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if ((r = broker_refuse(lock, LB_EUNLOCK)) != 0 ||
	    (r = step_begin(lock)) != 0)
		return r;
	return step_end(lock, lockfs_break_lock(&lock->fs, &err), &err);
}

/* lb_get_holder: see lockbroker.h. */
int
lb_get_holder(lb_lock *lock, lb_holder *out)
{
	struct lockfs_holder h;
	struct lockfs_err    err;
	int                  r;

	if (lock == NULL || out == NULL)
		return LB_EINVAL;
	memset(out, 0, sizeof(*out));
	out->uid = (uid_t)-1;
	if ((r = broker_refuse(lock, LB_ERROR)) != 0 ||
	    (r = step_begin(lock)) != 0)
		return r;
	if ((r = lockfs_holder(&lock->fs, &h, &err)) == 1) {
		snprintf(out->host, sizeof(out->host), "%s", h.host);
		snprintf(out->unique_name, sizeof(out->unique_name), "%s",
		    h.unique);
		out->pid = h.pid;
		out->tid = h.tid;
		out->uid = h.uid;
		out->since = h.since;
		out->liveness = lockfs_holder_liveness(&h);
	}
	return step_end(lock, r, &err);
}

const char *
lb_lock_path(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->given;
}

const char *
lb_lock_file(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->fs.lock_file;
}

const char *
lb_unique_name(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->fs.unique;
}

/* lb_lock_error: see lockbroker.h. */
const char *
lb_lock_error(lb_lock *lock)
{
	if (lock == NULL)
		return "no lock handle (NULL)";
	pthread_mutex_lock(&lock->mu);
	snprintf(error_copy, sizeof(error_copy), "%s", lock->err.msg);
	pthread_mutex_unlock(&lock->mu);
	return error_copy;
}

/* lb_locked: see lockbroker.h.  Returns the release's failure, if any,
 * after fn has run. */
int
lb_locked(const char *path, double timeout, void (*fn)(void *), void *arg)
{
	lb_lock *lock;
	int      r;

	if (fn == NULL)
		return LB_EINVAL;
	if ((lock = lb_lock_new(path, 0)) == NULL)
		return errno == ENOMEM ? LB_ENOMEM : LB_EINVAL;
	if ((r = lb_acquire(lock, timeout)) == 0) {
		fn(arg);
		r = lb_release(lock);
	}
	lb_lock_free(lock);
	return r;
}
