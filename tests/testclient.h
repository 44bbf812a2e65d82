/*
 * testclient.h: helpers over the client library's public API
 * (lockbroker.h) that the suites linking liblockbroker share
 * (check_client, check_broker): handles asserted to exist, reasons that
 * name something, handles made in another thread and looked at from
 * another thread.  They assert with check's ck_assert, in a test.
 */
#ifndef TESTCLIENT_H
#define TESTCLIENT_H

#include <stddef.h>

#include "lockbroker.h"
#include "testlib.h"

/* lock_new: a handle on path with flags; asserts that it was made. */
lb_lock *lock_new(const char *path, unsigned flags);

/* take_and_release: asserts that lock is taken at once (timeout 0) and
 * released. */
void take_and_release(lb_lock *lock);

/* lock_free_clean: frees lock, the last handle on a lock in dir, and
 * asserts that dir then holds no more than what lock's method leaves
 * (tl_leftovers of flags). */
void lock_free_clean(lb_lock *lock, const char *dir, unsigned flags);

/* host_name: this machine's host name, as lb_get_holder tells it, into
 * host (size bytes, NUL-terminated); asserts. */
void host_name(char *host, size_t size);

/* assert_no_holder: asserts that lb_get_holder of lock says nobody holds
 * it (0, pid 0), who filled with junk first so that a field left unset
 * shows; who keeps the answer for the caller's further checks. */
void assert_no_holder(lb_lock *lock, lb_holder *who);

/*
 * assert_probes_keep: with h holding the lock at path, a probe (another
 * handle with flags, of the same owner) sees it locked and its own, and
 * freeing it releases nothing (h still holds); another that acquires
 * again (re-entrant, granted at once) is then made and freed.  What that
 * last free left is for the caller to check.
 */
void assert_probes_keep(lb_lock *h, const char *path, unsigned flags);

/*
 * assert_forget_keeps: a hold taken through a handle with flags on path
 * that is then forgotten (lb_lock_forget) stays with its owner: another
 * handle of the owner sees it as its own and releases it; a handle of
 * another thread neither takes nor releases it meanwhile.  A forgotten
 * handle that took nothing changes nothing.  The lock is free at the end.
 */
void assert_forget_keeps(const char *path, unsigned flags);

/* assert_reason_names: asserts that the last failure on lock has a reason
 * (lb_lock_error) that names what. */
void assert_reason_names(lb_lock *lock, const char *what);

/* new_in_thread: makes two handles on path with flags in one new thread
 * (so, with threaded ownership, both that thread's and nobody else's)
 * and asserts both were made. */
void new_in_thread(const char *path, unsigned flags, lb_lock **a,
    lb_lock **b);

/* What another thread sees through a shared handle (lb_i_am_locking), and
 * the result of its lb_release. */
struct peek {
	lb_lock *lock;
	int      mine;
	int      released;
};

/* peek_and_release: a thread's function (arg: a struct peek) that fills
 * in mine and released. */
void *peek_and_release(void *arg);

/* What lb_locked's functions below saw (their arg). */
struct locked_call {
	const char *path;       /* the lock */
	int         calls;      /* how often the function was called */
	int         locked;     /* lb_is_locked, through its own handle */
	int         mine;       /* lb_i_am_locking, through that handle */
	lb_lock    *peer;       /* locked_fn's handle, for the caller to free */
};

/* locked_fn: an lb_locked function that counts its call and looks at the
 * lock through a second handle of the same thread (the same owner),
 * which it leaves in peer. */
void locked_fn(void *arg);

/* locked_probe_fn: an lb_locked function that counts its call and looks
 * at the lock through a handle of its own, freed before it returns. */
void locked_probe_fn(void *arg);

#endif
