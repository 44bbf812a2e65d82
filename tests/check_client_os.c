/*
 * check_client_os.c: the client library's OS layer (client/os.h), the
 * contract every system keeps, on Linux (os_unix.c) and under wine
 * (os_win32.c): a condition wait until a monotonic deadline waits (it
 * does not spin) and ends once the deadline has passed, or at once when
 * signalled; a thread started by the layer runs.  (A holder's user on
 * Windows: check_client_win, through the API.)
 */
#include <math.h>
#include <pthread.h>

#include <check.h>

#include "lockfs.h"
#include "client/os.h"     /* (lockfs/os.h is "os.h" here) */
#include "testlib.h"

/* Waiting on a condition nobody signals until a deadline 0.3 s ahead:
 * the deadline has passed when the waits end, and they were few (each
 * wait blocks; a wait that took the monotonic deadline for a time of
 * another clock would return at once, again and again, or never). */
START_TEST(cond_wait_until_deadline)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t  cv;
	double          until;
	int             waits = 0;

	lb__os_cond_init(&cv);
	pthread_mutex_lock(&mu);
	until = lockfs_now() + 0.3;
	while (lockfs_now() < until && waits < 1000) {
		lb__os_cond_wait_until(&cv, &mu, until);
		waits++;
	}
	pthread_mutex_unlock(&mu);
	ck_assert(lockfs_now() >= until);
	ck_assert_msg(waits <= 5, "%d waits for one deadline", waits);
	pthread_cond_destroy(&cv);
}
END_TEST

/* What a signalling thread shares with the waiter. */
struct signal {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int             done;
};

/* Sets done and signals, after a short while. */
static void *
signaller(void *arg)
{
	struct signal *s = arg;

	tl_sleep(0.1);
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* A wait with no deadline (INFINITY), and one far away, end when a
 * thread started by lb__os_thread_start signals. */
START_TEST(cond_wait_signalled)
{
	static const double far[] = { INFINITY, 3600 };
	struct signal s;
	double        until;
	int           i;

	for (i = 0; i < 2; i++) {
		pthread_mutex_init(&s.mu, NULL);
		lb__os_cond_init(&s.cv);
		s.done = 0;
		until = isinf(far[i]) ? far[i] : lockfs_now() + far[i];
		pthread_mutex_lock(&s.mu);
		ck_assert_int_eq(lb__os_thread_start(signaller, &s, 256 * 1024),
		    0);
		while (!s.done)
			lb__os_cond_wait_until(&s.cv, &s.mu, until);
		pthread_mutex_unlock(&s.mu);
		/* The detached thread may still be returning: let it. */
		tl_sleep(0.05);
		pthread_cond_destroy(&s.cv);
		pthread_mutex_destroy(&s.mu);
	}
}
END_TEST

/* The suite. */
static Suite *
client_os_suite(void)
{
	Suite *s = suite_create("client_os");
	TCase *t = tcase_create("os");

	tcase_add_test(t, cond_wait_until_deadline);
	tcase_add_test(t, cond_wait_signalled);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	return tl_main("check_client_os", client_os_suite(), CK_ENV);
}
