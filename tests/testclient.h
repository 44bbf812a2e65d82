/*
 * testclient.h: helpers over the client library's public API
 * (lockbroker.h) that the suites linking liblockbroker share
 * (check_client, check_broker): handles asserted to exist, reasons that
 * name something, handles made in another thread and looked at from
 * another thread.  They assert with check's ck_assert, in a test.
 */
#ifndef TESTCLIENT_H
#define TESTCLIENT_H

#include "lockbroker.h"
#include "testlib.h"

/* lock_new: a handle on path with flags; asserts that it was made. */
lb_lock *lock_new(const char *path, unsigned flags);

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
