/* testclient.c: helpers over the client library's API (testclient.h). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "testclient.h"

lb_lock *
lock_new(const char *path, unsigned flags)
{
	lb_lock *lock = lb_lock_new(path, flags);

	ck_assert_msg(lock != NULL, "lb_lock_new(%s, %#x): %s", path, flags,
	    strerror(errno));
	return lock;
}

void
take_and_release(lb_lock *lock)
{
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
}

void
lock_free_clean(lb_lock *lock, const char *dir, unsigned flags)
{
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(dir), tl_leftovers(flags));
}

void
host_name(char *host, size_t size)
{
	ck_assert_int_eq(gethostname(host, size), 0);
	host[size - 1] = '\0';
}

void
assert_no_holder(lb_lock *lock, lb_holder *who)
{
	memset(who, 0x5a, sizeof(*who));
	ck_assert_int_eq(lb_get_holder(lock, who), 0);
	ck_assert_int_eq(who->pid, 0);
}

void
assert_probes_keep(lb_lock *h, const char *path, unsigned flags)
{
	lb_lock *q = lock_new(path, flags);

	ck_assert_int_eq(lb_is_locked(q), 1);
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(h), 1);
	ck_assert_int_eq(lb_i_am_locking(h), 1);
	q = lock_new(path, flags);
	ck_assert_int_eq(lb_acquire(q, 0), 0);          /* re-entrant */
	lb_lock_free(q);
}

void
assert_forget_keeps(const char *path, unsigned flags)
{
	lb_lock *h = lock_new(path, flags), *q, *other, *spare;

	new_in_thread(path, flags, &other, &spare);
	lb_lock_free(spare);
	ck_assert_int_eq(lb_acquire(h, 0), 0);
	lb_lock_forget(h);
	q = lock_new(path, flags);
	ck_assert_int_eq(lb_is_locked(q), 1);
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	ck_assert_int_eq(lb_acquire(other, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(other), LB_ENOTMINE);
	ck_assert_int_eq(lb_is_locked(q), 1);
	ck_assert_int_eq(lb_release(q), 0);
	ck_assert_int_eq(lb_is_locked(other), 0);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_forget(lock_new(path, flags));
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	ck_assert_int_eq(lb_release(q), 0);
	lb_lock_free(other);
	lb_lock_free(q);
}

void
assert_reason_names(lb_lock *lock, const char *what)
{
	const char *why = lb_lock_error(lock);

	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, what) != NULL,
	    "reason \"%s\" does not name %s", why, what);
}

/* What new_in_thread's thread makes. */
struct made {
	const char *path;
	unsigned    flags;
	lb_lock    *lock[2];
};

/* new_in_thread's thread: makes the two handles. */
static void *
make_locks(void *arg)
{
	struct made *m = arg;

	m->lock[0] = lb_lock_new(m->path, m->flags);
	m->lock[1] = lb_lock_new(m->path, m->flags);
	return NULL;
}

void
new_in_thread(const char *path, unsigned flags, lb_lock **a, lb_lock **b)
{
	struct made m = { path, flags, { NULL, NULL } };
	pthread_t   t;

	ck_assert_int_eq(pthread_create(&t, NULL, make_locks, &m), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_nonnull(m.lock[0]);
	ck_assert_ptr_nonnull(m.lock[1]);
	*a = m.lock[0];
	*b = m.lock[1];
}

void *
peek_and_release(void *arg)
{
	struct peek *p = arg;

	p->mine = lb_i_am_locking(p->lock);
	p->released = lb_release(p->lock);
	return NULL;
}

void
locked_fn(void *arg)
{
	struct locked_call *c = arg;

	c->calls++;
	if ((c->peer = lb_lock_new(c->path, 0)) == NULL)
		return;
	c->locked = lb_is_locked(c->peer);
	c->mine = lb_i_am_locking(c->peer);
}

void
locked_probe_fn(void *arg)
{
	struct locked_call *c = arg;
	lb_lock            *probe;

	c->calls++;
	if ((probe = lb_lock_new(c->path, 0)) == NULL)
		return;
	c->locked = lb_is_locked(probe);
	c->mine = lb_i_am_locking(probe);
	lb_lock_free(probe);
}
