/*
 * owners.c: the registry of who in this process holds each lock, and
 * through which handle (see owners.h).  A list under one mutex: a process
 * holds few locks at once, and every step is short.
 *
 * An entry's life, for one (lock file, method, owner):
 *
 *            acquire ok (serial: the acquiring handle)
 *   (none) ------------------------------------------> held
 *     |  ^                                              |  ^
 *     |  +---- release, break, acquire failed ----------+  |
 *     | asking (pidfile, the broker)      ^       release  |
 *     v                                   |  lost, its     |
 *   asking (asks > 0) --------------------+  in-process    |
 *                           asked, granted   step not done v
 *                                            held, lost (its release
 *                                            owed under the directory's
 *                                            lock): release, break,
 *                                            acquire afresh -> as above
 *
 * Beside those, an entry may carry a mark (lb__owners_unfinished): its
 * owner's RELEASE was answered pending, and the lock file may name it
 * still.  A mark outlives its hold:
 *
 *                  RELEASE answered pending
 *   (none), held ---------------------------> marked
 *        ^                                     |  |
 *        |  seen naming it no more, acquired   |  | past the bound (its
 *        +-- afresh, the daemon shows the -----+  | owner holding
 *            handoff over (lb__owners_finished)   | nothing): spilled
 *                                                 v
 *                          its lock in the spilled table, for good
 *
 * A freed handle's serial is cleared from the entries it acquired; the
 * holds stay with their owners.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "os.h"
#include "owners.h"

struct entry {
	LIST_ENTRY(entry) link;
	char             *lock_file;
	unsigned          method;
	pid_t             tid;
	int               held;
	uint64_t          serial;       /* held: the acquiring handle, 0 none */
	uint64_t          epoch;        /* changes with each fresh hold */
	unsigned          asks;         /* pidfile ACQUIREs out at the broker */
	uint64_t          unfinished;   /* released, answered pending: the
	                                   lock file may name the owner still
	                                   (lb__owners_unfinished); the mark's
	                                   number, 0 none */
	int               lost;         /* held: its release after a lost
	                                   RELEASE is owed, in-process under
	                                   the directory's lock
	                                   (lb__owners_lost_release) */
	unsigned          settling;     /* pidfile: its dropped broker hold
	                                   is being given back to a daemon
	                                   (lb__owners_pidfile_settle_begin) */
};

/* The spilled marks (lb__owners_unfinished): one bit per lock, by a
 * hash of its file and method, set for good.  A lock whose bit another
 * lock set is spilled too: more waiting, never less exclusion. */
#define SPILL_BITS 1024

LIST_HEAD(entries, entry);

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct entries  reg = LIST_HEAD_INITIALIZER(reg);
static pthread_once_t  reg_once = PTHREAD_ONCE_INIT;
static uint64_t        next_serial;
static uint64_t        next_epoch;     /* under reg_mu */
static uint64_t        spilled[SPILL_BITS / 64];        /* under reg_mu */

/* fork(): the child starts with an empty registry and a new mutex (the
 * parent's entries are not the child's; their memory is left). */
static void
reg_fork_prepare(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void
reg_fork_parent(void)
{
	pthread_mutex_unlock(&reg_mu);
}

static void
reg_fork_child(void)
{
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_init(&reg_mu, NULL);
	LIST_INIT(&reg);
	/* The parent's pending releases are of lock files naming the
	 * parent, which never name an owner of the child. */
	memset(spilled, 0, sizeof(spilled));
}

/* The fork handlers, once.  lockfs's sqlite fork gate first: steps run
 * under this registry's mutex and the connection's (session.c), so a
 * fork must take those before it waits at the gate (lockfs.h). */
static void
reg_init(void)
{
	lockfs_sqlite_fork_init();
	lb__os_atfork(reg_fork_prepare, reg_fork_parent, reg_fork_child);
}

/* lb__owners_init: see owners.h. */
void
lb__owners_init(void)
{
	pthread_once(&reg_once, reg_init);
}

static void
reg_lock(void)
{
	lb__owners_init();
	pthread_mutex_lock(&reg_mu);
}

static void
reg_unlock(void)
{
	pthread_mutex_unlock(&reg_mu);
}

/* k's entry, or NULL.  Under reg_mu. */
static struct entry *
find(const struct lb__owner_key *k)
{
	struct entry *e;

	LIST_FOREACH(e, &reg, link)
		if (e->tid == k->tid && e->method == k->method &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			return e;
	return NULL;
}

/* k's entry, made when missing; NULL when out of memory.  Under reg_mu. */
static struct entry *
find_or_make(const struct lb__owner_key *k)
{
	struct entry *e;

	if ((e = find(k)) != NULL)
		return e;
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->lock_file = strdup(k->lock_file)) == NULL) {
		free(e);
		return NULL;
	}
	e->method = k->method;
	e->tid = k->tid;
	LIST_INSERT_HEAD(&reg, e, link);
	return e;
}

/* The bit of the spilled table for (lock_file, method): FNV-1a. */
static unsigned
spill_bit(const char *lock_file, unsigned method)
{
	uint32_t h = 2166136261u ^ method;

	for (; *lock_file != '\0'; lock_file++)
		h = (h ^ (unsigned char)*lock_file) * 16777619u;
	return h % SPILL_BITS;
}

/* Spills the mark of (lock_file, method) into the table, for good.
 * Under reg_mu. */
static void
spill(const char *lock_file, unsigned method)
{
	unsigned b = spill_bit(lock_file, method);

	spilled[b / 64] |= (uint64_t)1 << (b % 64);
}

/* Whether (lock_file, method) is in the spilled table.  Under reg_mu. */
static int
is_spilled(const char *lock_file, unsigned method)
{
	unsigned b = spill_bit(lock_file, method);

	return (spilled[b / 64] & ((uint64_t)1 << (b % 64))) != 0;
}

/* How many entries are kept for their mark alone (their owner holding
 * and asking for nothing).  Under reg_mu. */
static unsigned
marks_alone(void)
{
	struct entry *e;
	unsigned      n = 0;

	LIST_FOREACH(e, &reg, link)
		if (e->unfinished != 0 && !e->held && e->asks == 0)
			n++;
	return n;
}

/* Frees e when it records nothing any more; spills its mark when it is
 * kept for that alone past LB__OWNERS_MARKS_MAX.  Under reg_mu. */
static void
tidy(struct entry *e)
{
	if (e == NULL)
		return;
	if (!e->held)
		e->lost = 0;    /* owed only while held */
	if (e->held || e->asks > 0 || e->settling > 0)
		return;
	if (e->unfinished != 0 && marks_alone() <= LB__OWNERS_MARKS_MAX)
		return;
	if (e->unfinished != 0)
		spill(e->lock_file, e->method);
	LIST_REMOVE(e, link);
	free(e->lock_file);
	free(e);
}

/* Records that e's owner holds its lock through serial (fresh: taken
 * now, so serial is the acquiring handle).  Under reg_mu. */
static void
mark_held(struct entry *e, uint64_t serial, int fresh)
{
	if (fresh || !e->held) {
		e->serial = serial;
		e->epoch = ++next_epoch;
		e->lost = 0;    /* a new lock file: nothing owed on it */
	} else if (e->serial == 0)
		e->serial = serial;
	e->held = 1;
	e->unfinished = 0;      /* the lock file is its own again */
}

/* The other owner of this process that holds or asks for k's lock, or
 * NULL.  Under reg_mu. */
static struct entry *
other_of(const struct lb__owner_key *k)
{
	struct entry *e;

	LIST_FOREACH(e, &reg, link)
		if (e->tid != k->tid && e->method == k->method &&
		    (e->held || e->asks > 0) &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			return e;
	return NULL;
}

/* The owner of this process whose dropped broker hold of k's pid file
 * is being given back to a daemon, or NULL.  Under reg_mu. */
static struct entry *
settling_of(const struct lb__owner_key *k)
{
	struct entry *e;

	LIST_FOREACH(e, &reg, link)
		if (e->settling > 0 && e->method == k->method &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			return e;
	return NULL;
}

/* k's owner was just given the pid file k names (created now, or granted
 * by the daemon, which creates it): any other owner of this process that
 * the registry still has holding it lost it meanwhile (broken, unnoticed)
 * and holds it no more, and a pending release's mark on it is over (the
 * file is made anew for k's owner).  Under reg_mu. */
static void
others_lost(const struct lb__owner_key *k)
{
	struct entry *e, *next;

	for (e = LIST_FIRST(&reg); e != NULL; e = next) {
		next = LIST_NEXT(e, link);
		if (e->tid == k->tid || e->method != k->method ||
		    (!e->held && e->unfinished == 0) ||
		    strcmp(e->lock_file, k->lock_file) != 0)
			continue;
		e->held = 0;
		e->serial = 0;
		e->unfinished = 0;
		tidy(e);
	}
}

/* lb__owners_serial: see owners.h. */
uint64_t
lb__owners_serial(void)
{
	return __atomic_add_fetch(&next_serial, 1, __ATOMIC_RELAXED);
}

/* lb__owners_holds: see owners.h. */
int
lb__owners_holds(const struct lb__owner_key *k)
{
	struct entry *e;
	int           r;

	reg_lock();
	r = (e = find(k)) != NULL && e->held;
	reg_unlock();
	return r;
}

/* lb__owners_acquired: see owners.h. */
void
lb__owners_acquired(const struct lb__owner_key *k, uint64_t serial,
    int fresh)
{
	struct entry *e;

	reg_lock();
	if ((e = find_or_make(k)) != NULL)
		mark_held(e, serial, fresh);
	reg_unlock();
}

/* lb__owners_epoch: see owners.h. */
uint64_t
lb__owners_epoch(const struct lb__owner_key *k)
{
	struct entry *e;
	uint64_t      r;

	reg_lock();
	r = (e = find(k)) != NULL && e->held ? e->epoch : 0;
	reg_unlock();
	return r;
}

/* lb__owners_released: see owners.h. */
void
lb__owners_released(const struct lb__owner_key *k, uint64_t epoch)
{
	struct entry *e;

	reg_lock();
	if ((e = find(k)) != NULL && e->epoch == epoch) {
		e->held = 0;
		e->serial = 0;
		tidy(e);
	}
	reg_unlock();
}

/* The marks of lb__owners_unfinished are numbered, so that a look that
 * found a file no longer naming its owner drops only the mark it saw,
 * not one set again meanwhile. */
static uint64_t next_mark;

/* lb__owners_unfinished: see owners.h.  Past the bound, or out of
 * memory, the mark is spilled (tidy). */
void
lb__owners_unfinished(const struct lb__owner_key *k)
{
	struct entry *e;

	reg_lock();
	if ((e = find_or_make(k)) != NULL) {
		e->unfinished = ++next_mark;
		tidy(e);
	} else
		spill(k->lock_file, k->method);
	reg_unlock();
}

/* Whether the registry has k's owner holding or asking for k's lock (for
 * the pidfile method: any owner of this process).  Under reg_mu. */
static int
holding(const struct lb__owner_key *k)
{
	struct entry *e;

	LIST_FOREACH(e, &reg, link)
		if ((e->held || e->asks > 0) && e->method == k->method &&
		    (e->tid == k->tid || k->method == LB_PIDFILE) &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			return 1;
	return 0;
}

/* The entry whose pending release k's owner must respect, or NULL: k's
 * own, marked; for the pidfile method, whose file names only the
 * process, any owner's of this process on k's file, marked.  Under
 * reg_mu. */
static struct entry *
unfinished_of(const struct lb__owner_key *k)
{
	struct entry *e;

	LIST_FOREACH(e, &reg, link)
		if (e->unfinished != 0 && e->method == k->method &&
		    (e->tid == k->tid || k->method == LB_PIDFILE) &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			return e;
	return NULL;
}

/* lb__owners_unfinished_named: see owners.h.  The look is made outside
 * the registry's mutex: a file step.  A mark is dropped only as it was
 * seen (its number), and only while its owner holds nothing. */
int
lb__owners_unfinished_named(const struct lb__owner_key *k,
    struct lockfs_lock *fs)
{
	struct lockfs_err err;
	struct entry     *e;
	uint64_t          mark = 0;
	int               spilt = 0;

	reg_lock();
	if ((e = unfinished_of(k)) != NULL)
		mark = e->unfinished;
	else
		spilt = is_spilled(k->lock_file, k->method) && !holding(k);
	reg_unlock();
	if (mark == 0 && !spilt)
		return 0;
	if (lockfs_i_am_locking(fs, &err) != 0)
		return 1;       /* named still (or unknown) */
	if (mark == 0)
		return 0;       /* spilled: kept for good */
	reg_lock();
	LIST_FOREACH(e, &reg, link)
		if (e->unfinished == mark)
			break;
	if (e != NULL && !e->held) {
		e->unfinished = 0;
		tidy(e);
	}
	reg_unlock();
	return 0;
}

/* lb__owners_finished: see owners.h. */
void
lb__owners_finished(const struct lb__owner_key *k, int all)
{
	struct entry *e, *next;

	reg_lock();
	for (e = LIST_FIRST(&reg); e != NULL; e = next) {
		next = LIST_NEXT(e, link);
		if (e->unfinished == 0 || e->method != k->method ||
		    (!all && e->tid != k->tid) ||
		    strcmp(e->lock_file, k->lock_file) != 0)
			continue;
		e->unfinished = 0;
		tidy(e);
	}
	reg_unlock();
}

/* lb__owners_marks: see owners.h. */
unsigned
lb__owners_marks(void)
{
	struct entry *e;
	unsigned      n = 0;

	reg_lock();
	LIST_FOREACH(e, &reg, link)
		if (e->unfinished != 0)
			n++;
	reg_unlock();
	return n;
}

/* lb__owners_lost_release: see owners.h. */
void
lb__owners_lost_release(const struct lb__owner_key *k)
{
	struct entry *e;

	reg_lock();
	if ((e = find(k)) != NULL && e->held)
		e->lost = 1;
	reg_unlock();
}

/* lb__owners_lost_owed: see owners.h. */
int
lb__owners_lost_owed(const struct lb__owner_key *k)
{
	struct entry *e;
	int           r;

	reg_lock();
	r = (e = find(k)) != NULL && e->held && e->lost;
	reg_unlock();
	return r;
}

/* lb__owners_broken: see owners.h. */
void
lb__owners_broken(const char *lock_file, unsigned method)
{
	struct entry *e, *next;

	reg_lock();
	for (e = LIST_FIRST(&reg); e != NULL; e = next) {
		next = LIST_NEXT(e, link);
		if (e->method != method || strcmp(e->lock_file, lock_file) != 0)
			continue;
		e->held = 0;
		e->serial = 0;
		tidy(e);
	}
	reg_unlock();
}

/* lb__owners_acquired_by: see owners.h. */
int
lb__owners_acquired_by(const struct lb__owner_key *k, uint64_t serial)
{
	struct entry *e;
	int           r;

	reg_lock();
	r = (e = find(k)) != NULL && e->held && e->serial == serial;
	reg_unlock();
	return r;
}

/* lb__owners_forget_handle: see owners.h. */
void
lb__owners_forget_handle(uint64_t serial)
{
	struct entry *e;

	reg_lock();
	LIST_FOREACH(e, &reg, link)
		if (e->serial == serial)
			e->serial = 0;
	reg_unlock();
}

/* lb__owners_asking: see owners.h. */
int
lb__owners_asking(const struct lb__owner_key *k)
{
	struct entry *e;
	int           r = 0;

	reg_lock();
	if ((e = find_or_make(k)) == NULL)
		r = LB_ENOMEM;
	else
		e->asks++;
	reg_unlock();
	return r;
}

/* lb__owners_asked: see owners.h. */
void
lb__owners_asked(const struct lb__owner_key *k, uint64_t serial,
    int granted, int fresh)
{
	struct entry *e;

	reg_lock();
	if (granted)
		others_lost(k);
	if ((e = find(k)) != NULL) {
		e->asks--;
		if (granted)
			mark_held(e, serial, fresh);
		tidy(e);
	} else if (granted && (e = find_or_make(k)) != NULL)
		mark_held(e, serial, fresh);
	reg_unlock();
}

/* lb__owners_other: see owners.h. */
int
lb__owners_other(const struct lb__owner_key *k)
{
	int r;

	reg_lock();
	r = other_of(k) != NULL;
	reg_unlock();
	return r;
}

/* lb__owners_pidfile_try: see owners.h. */
int
lb__owners_pidfile_try(const struct lb__owner_key *k, struct lockfs_lock *fs,
    uint64_t serial, struct lockfs_err *err)
{
	struct entry *self, *other;
	int           r, fresh = 1;

	reg_lock();
	if ((other = settling_of(k)) != NULL) {
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is being handed back "
		    "to lockbrokerd by another owner in this process (thread "
		    "%ld)", k->lock_file, (long)other->tid);
		goto out;
	}
	self = find(k);
	other = other_of(k);
	if (self != NULL && self->held) {
		if ((r = lockfs_i_am_locking(fs, err)) < 0)
			goto out;
		fresh = r == 0;         /* 0: broken meanwhile */
		if (!fresh)
			goto take;
	}
	if ((r = lockfs_pidfile_create(fs, err)) != LB_EALREADY)
		goto took;
	/* There: ours only as a leftover nobody here holds or asks for. */
	if (other != NULL)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner in this process (thread %ld)", k->lock_file,
		    (long)other->tid);
	else if ((r = lockfs_i_am_locking(fs, err)) == 1)
		goto take;
	else if (r == 0)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "process", k->lock_file);
	goto out;
took:
	if (r != 0)
		goto out;
	others_lost(k);
take:
	r = 0;
	if ((self = find_or_make(k)) != NULL)
		mark_held(self, serial, fresh);
out:
	reg_unlock();
	return r;
}

/* lb__owners_pidfile_mine: see owners.h. */
int
lb__owners_pidfile_mine(const struct lb__owner_key *k, struct lockfs_lock *fs,
    struct lockfs_err *err)
{
	struct entry *self;
	int           r = 0;

	reg_lock();
	if ((self = find(k)) != NULL && self->held)
		r = lockfs_i_am_locking(fs, err);
	reg_unlock();
	return r;
}

/* lb__owners_pidfile_release: see owners.h. */
int
lb__owners_pidfile_release(const struct lb__owner_key *k,
    struct lockfs_lock *fs, struct lockfs_err *err)
{
	struct entry *self;
	int           r;

	reg_lock();
	self = find(k);
	if (self != NULL && self->held)
		r = lockfs_release(fs, err);
	else if ((r = lockfs_is_locked(fs, err)) == 1)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not by "
		    "this owner", k->lock_file);
	else if (r == 0)
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    k->lock_file);
	if (self != NULL && r != LB_EUNLOCK && r != LB_ERROR) {
		self->held = 0;
		self->serial = 0;
		tidy(self);
	}
	reg_unlock();
	return r;
}

/* lb__owners_pidfile_forget_leftover: see owners.h. */
void
lb__owners_pidfile_forget_leftover(const char *path, const char *lock_file)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	struct entry      *e;

	reg_lock();
	LIST_FOREACH(e, &reg, link)
		if (e->method == LB_PIDFILE && e->held &&
		    strcmp(e->lock_file, lock_file) == 0)
			goto out;
	if (lockfs_init(&fs, path, LB_PIDFILE, 0, &err) != 0)
		goto out;
	if (lockfs_i_am_locking(&fs, &err) == 1)
		(void)lockfs_release(&fs, &err);
	lockfs_fini(&fs);
out:
	reg_unlock();
}

/*
 * lb__owners_pidfile_settle_begin: see owners.h.  Any owner's hold
 * counts, k's own too (a hold in-process since the drop): the file is
 * then that hold's.
 */
int
lb__owners_pidfile_settle_begin(const struct lb__owner_key *k)
{
	struct entry *e;
	int           r = 0;

	reg_lock();
	LIST_FOREACH(e, &reg, link)
		if (e->held && e->method == k->method &&
		    strcmp(e->lock_file, k->lock_file) == 0)
			goto out;
	if ((e = find_or_make(k)) != NULL) {
		e->settling++;
		r = 1;
	}
out:
	reg_unlock();
	return r;
}

/* lb__owners_pidfile_settle_end: see owners.h. */
void
lb__owners_pidfile_settle_end(const struct lb__owner_key *k)
{
	struct entry *e;

	reg_lock();
	if ((e = find(k)) != NULL && e->settling > 0) {
		e->settling--;
		tidy(e);
	}
	reg_unlock();
}
