/*
 * acquire_all.c: lb_acquire_all, several exclusive locks at once, all of
 * them or none (docs/SHARED.md, "Several locks at once").
 *
 * The handles are put in one global order, by the identity of the file
 * that makes each lock (below: struct member_key), which also finds one
 * lock named twice.  Through a daemon that takes sets, they go as one
 * (lb__acquire_set, lock.c; the daemon's set.c grants it whole, FIFO
 * with single acquires).  Otherwise it is built on lb_acquire alone, the
 * same through an older daemon and in-process, drawn:
 *
 *              wait for `target` (an ordinary lb_acquire, with what
 *   none  ---> is left of the timeout), holding none of the set
 *   held   |        |
 *     ^    |        | granted
 *     |    |        v
 *     |    |   try each of the others once, in order (timeout 0)
 *     |    |        |                  |                  |
 *     |    |        | all granted      | one busy         | other error,
 *     |    |        v                  | (LB_EALREADY)    | timeout,
 *     |    |      done: 0              v                  | cancel
 *     |    +--- release those taken; target = the busy one|
 *     |                                                   v
 *     +------------------------------- release those taken; fail
 *
 * It never waits while it holds one of the set, so two sets can never
 * wait for each other (no deadlock, whatever their order), and it never
 * sleeps on a timer of its own: every wait is an lb_acquire's (the
 * daemon's queue, or the in-process back-off).  What it does not do: no
 * one keeps its place while it waits for one lock, so under constant
 * contention it can wait longer than single acquires asked after it
 * (which the daemon's sets do not).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockbroker.h"
#include "lockfs.h"
#include "fs.h"
#include "broker.h"
#include "cancel.h"
#include "handle.h"

/* The most handles one lb_acquire_all takes (lockbroker.h). */
#define ACQUIRE_ALL_MAX 256

/* What makes a lock one lock: the directory that holds its file (dev,
 * ino: the same directory however it was named, symbolic links
 * followed, as lockfs opens it), the file's name in it and, for the
 * sqlite method, whose file is the database, the row's lock file name
 * (rows are told apart by name only).  Two handles with one key name
 * one lock. */
struct member_key {
	unsigned long long dev, ino;    /* the directory */
	const char        *name;        /* the file's name in it */
	const char        *row;         /* sqlite: the row's lock_file; else
	                                   NULL */
	size_t             index;       /* in the caller's array */
};

/* The basename of file (a path with '/' separators). */
static const char *
base_of(const char *file)
{
	const char *slash = strrchr(file, '/');

	return slash != NULL ? slash + 1 : file;
}

/* Compares names a and b as the system's file systems tell them apart
 * (lockfs_os_names_cmp). */
static int
names_cmp(const char *a, const char *b)
{
	return lockfs_os_names_cmp(a, (int)strlen(a), b, (int)strlen(b));
}

/* qsort's comparison of two member_keys: directory, name, row (a file
 * before the rows of a database of the same name); the caller's index
 * last, so that the order is total. */
static int
key_cmp(const void *pa, const void *pb)
{
	const struct member_key *a = pa, *b = pb;
	int                      c;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	if ((c = names_cmp(a->name, b->name)) != 0)
		return c;
	if ((a->row == NULL) != (b->row == NULL))
		return a->row == NULL ? -1 : 1;
	if (a->row != NULL && (c = names_cmp(a->row, b->row)) != 0)
		return c;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

/* Fills *k for lock (index i of the caller's array): 0, or LB_EFAILED
 * (recorded on lock) when the directory cannot be looked at. */
static int
key_make(lb_lock *lock, size_t i, struct member_key *k)
{
	struct lb__handle_view v;
	struct lockfs_fs_info  fi;
	struct lockfs_err      err;
	char                   dir[PATH_MAX];
	const char            *file;
	size_t                 len;
	int                    fd = -1, r;

	lb__lock_view(lock, &v);
	file = v.method == LB_SQLITE ? v.db : v.lock_file;
	len = lockfs_dir_len(file);
	if (len == 0)
		memcpy(dir, ".", 2);
	else if (len < sizeof(dir)) {
		memcpy(dir, file, len);
		dir[len] = '\0';
	} else {
		r = lockfs_fail(&err, LB_EFAILED, ENAMETOOLONG, "cannot look "
		    "at the directory of %s", file);
		goto out;
	}
	if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW)) == -1 || lockfs_fs_info(fd, &fi) == -1) {
		r = lockfs_fail(&err, LB_EFAILED, errno, "cannot look at the "
		    "directory %s of %s", dir, v.given);
		goto out;
	}
	k->dev = fi.dev;
	k->ino = fi.ino;
	k->name = base_of(file);
	k->row = v.method == LB_SQLITE ? v.lock_file : NULL;
	k->index = i;
	r = 0;
out:
	lockfs_fs_close(fd);
	return r != 0 ? lb__lock_failed(lock, r, &err) : 0;
}

/* Gives back the locks of the set that this call took (taken[i] set),
 * in the caller's array; the failure that made it give them up stays
 * the one reported (a release's own is not). */
static void
give_back(lb_lock **locks, size_t n, unsigned char *taken)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (taken[i]) {
			(void)lb_release(locks[i]);
			taken[i] = 0;
		}
	}
}

/* The failure of a lock this owner held before the call: LB_EINVAL,
 * recorded on lock. */
static int
held_before(lb_lock *lock)
{
	struct lb__handle_view v;
	struct lockfs_err      err;

	lb__lock_view(lock, &v);
	return lb__lock_failed(lock, lockfs_fail(&err, LB_EINVAL, 0, "%s is "
	    "already held by this owner: lb_acquire_all takes only locks "
	    "it does not hold", v.given), &err);
}

/* The failure of two handles naming one lock (a and b of the caller's
 * array, a < b): LB_EINVAL, recorded on both. */
static int
named_twice(lb_lock *a, lb_lock *b)
{
	struct lb__handle_view va, vb;
	struct lockfs_err      err;

	lb__lock_view(a, &va);
	lb__lock_view(b, &vb);
	lockfs_fail(&err, LB_EINVAL, 0, "one lock file named twice: %s (%s) "
	    "and %s (%s)", va.given, lb_method_name(va.method), vb.given,
	    lb_method_name(vb.method));
	(void)lb__lock_failed(a, LB_EINVAL, &err);
	return lb__lock_failed(b, LB_EINVAL, &err);
}

/* The failure of a wait whose time was up before it began: LB_ETIMEOUT,
 * recorded on lock. */
static int
timed_out(lb_lock *lock, double timeout)
{
	struct lb__handle_view v;
	struct lockfs_err      err;

	lb__lock_view(lock, &v);
	return lb__lock_failed(lock, lockfs_fail(&err, LB_ETIMEOUT, 0,
	    "timed out after %g s waiting for %s (and the rest of its set)",
	    timeout, v.given), &err);
}

/* The arguments' failure: LB_EINVAL, recorded on the first handle
 * given when there is one. */
static int
bad_arguments(lb_lock **locks, size_t n, const char *why)
{
	struct lockfs_err err;
	int               r;

	r = lockfs_fail(&err, LB_EINVAL, 0, "lb_acquire_all: %s", why);
	if (locks != NULL && n > 0 && locks[0] != NULL)
		r = lb__lock_failed(locks[0], r, &err);
	return r;
}

/*
 * The steps drawn at the top, over the handles in order (indexes into
 * locks, sorted) with the waits of the set begun.  Returns 0 with every
 * lock taken (taken[] all set), or the failure with none taken by it and
 * *failed the index of the lock whose acquire failed.
 */
static int
take_all(lb_lock **locks, size_t n, const size_t *order, double timeout,
    const struct lb__wait *set, unsigned char *taken, size_t *failed)
{
	double deadline = INFINITY, left;
	size_t target = order[0], j, i;
	int    r, fresh;

	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = INFINITY;
	if (timeout > 0 && !isinf(timeout))
		deadline = lockfs_now() + timeout;
	for (;;) {
		/* Wait for target, holding none of the set. */
		left = timeout <= 0 || isinf(timeout) ? timeout :
		    deadline - lockfs_now();
		if (timeout > 0 && left <= 0) {
			r = timed_out(locks[target], timeout);
			goto fail;
		}
		fresh = 1;
		r = lb__acquire_member(locks[target], left, set, n, &fresh);
		if (r == 0 && !fresh)
			r = held_before(locks[target]);
		if (r != 0)
			goto fail;
		taken[target] = 1;
		/* Then each of the others, once. */
		for (j = 0; j < n; j++) {
			if ((i = order[j]) == target)
				continue;
			fresh = 1;
			r = lb__acquire_member(locks[i], 0, set, n, &fresh);
			if (r == 0 && !fresh) {
				r = held_before(locks[i]);
				target = i;
				goto fail;
			}
			if (r != 0)
				break;
			taken[i] = 1;
		}
		if (j == n)
			return 0;
		give_back(locks, n, taken);
		target = i;
		/* Busy: wait for it next (one try only: that was it). */
		if (r != LB_EALREADY || timeout <= 0)
			goto fail;
	}
fail:
	give_back(locks, n, taken);
	*failed = target;
	return r;
}

/* lb_acquire_all: see lockbroker.h. */
int
lb_acquire_all(lb_lock **locks, size_t n, double timeout, size_t *failed)
{
	struct member_key *keys = NULL;
	struct lb__wait   *set = NULL;
	size_t            *order = NULL, i, begun = 0, bad = SIZE_MAX;
	unsigned char     *taken = NULL;
	int                r;

	if (locks == NULL || n == 0) {
		r = bad_arguments(locks, n, "no locks given");
		goto out;
	}
	if (n > ACQUIRE_ALL_MAX) {
		r = bad_arguments(locks, n, "more than 256 locks given");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (locks[i] == NULL) {
			bad = i;
			r = LB_EINVAL;
			goto out;
		}
	}
	if (isnan(timeout)) {
		r = bad_arguments(locks, n, "the timeout is not a number");
		goto out;
	}
	if ((keys = calloc(n, sizeof(*keys))) == NULL ||
	    (set = calloc(n, sizeof(*set))) == NULL ||
	    (order = calloc(n, sizeof(*order))) == NULL ||
	    (taken = calloc(n, 1)) == NULL) {
		r = LB_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = key_make(locks[i], i, &keys[i])) != 0) {
			bad = i;
			goto out;
		}
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 0; i < n; i++) {
		order[i] = keys[i].index;
		if (i > 0 && keys[i - 1].dev == keys[i].dev &&
		    keys[i - 1].ino == keys[i].ino &&
		    names_cmp(keys[i - 1].name, keys[i].name) == 0 &&
		    (keys[i - 1].row == NULL) == (keys[i].row == NULL) &&
		    (keys[i].row == NULL ||
		    names_cmp(keys[i - 1].row, keys[i].row) == 0)) {
			bad = keys[i - 1].index > keys[i].index ?
			    keys[i - 1].index : keys[i].index;
			r = named_twice(locks[keys[i - 1].index < bad ?
			    keys[i - 1].index : keys[i].index], locks[bad]);
			goto out;
		}
	}
	/* In progress on every handle of the set, for lb_lock_cancel. */
	for (begun = 0; begun < n; begun++)
		lb__wait_begin(&set[begun], lb__lock_cancel(locks[begun]));
	/* The daemon's set, when it takes one; else lock by lock. */
	if ((r = lb__acquire_set(locks, n, order, timeout, set, &bad)) ==
	    LB__FALLBACK)
		r = take_all(locks, n, order, timeout, set, taken, &bad);
out:
	while (begun > 0)
		lb__wait_end(&set[--begun]);
	if (r != 0 && failed != NULL && bad != SIZE_MAX)
		*failed = bad;
	free(keys);
	free(set);
	free(order);
	free(taken);
	return r;
}
