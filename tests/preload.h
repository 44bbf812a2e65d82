/*
 * preload.h: what the test-only preloads for lockbrokerd (stopstep.c,
 * busyrename.c; LD_PRELOAD, never installed) share: how they export the
 * calls they interpose, and the real call behind each.
 */
#ifndef LB_TEST_PRELOAD_H
#define LB_TEST_PRELOAD_H

#include <dlfcn.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

/* preload_real: the real function called name (the next one, dlsym
 * RTLD_NEXT); aborts when there is none. */
static inline void *
preload_real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort();
	return f;
}

#endif
