/*
 * codes.c: the one map between the protocol's error codes (LBP_E*) and
 * the library's (LB_E*, include/lockbroker/codes.h), in both directions:
 * the daemon answers a lockfs failure with the first, and the library and
 * the command turn an ERR reply into the second.
 */
#include "lockbroker/codes.h"
#include "protocol.h"

/* The lock outcomes, which mean the same on both sides. */
static const struct {
	int            lb;
	enum lbp_error lbp;
} pairs[] = {
	{ LB_EALREADY,   LBP_EALREADY },
	{ LB_ETIMEOUT,   LBP_ETIMEOUT },
	{ LB_EFAILED,    LBP_EFAILED },
	{ LB_ENOTLOCKED, LBP_ENOTLOCKED },
	{ LB_ENOTMINE,   LBP_ENOTMINE },
	{ LB_EUNLOCK,    LBP_EUNLOCK },
	{ LB_EINVAL,     LBP_EINVAL },
	{ LB_ECANCELED,  LBP_ECANCELED },
	{ LB_EDEADLK,    LBP_EDEADLK },
};

#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

/* lbp_from_lb: see protocol.h. */
enum lbp_error
lbp_from_lb(int code)
{
	size_t i;

	for (i = 0; i < NPAIRS; i++)
		if (pairs[i].lb == code)
			return pairs[i].lbp;
	return LBP_EINTERNAL;
}

/* lbp_to_lb: see protocol.h. */
int
lbp_to_lb(enum lbp_error code, int fail)
{
	size_t i;

	for (i = 0; i < NPAIRS; i++)
		if (pairs[i].lbp == code)
			return pairs[i].lb;
	return fail;
}
