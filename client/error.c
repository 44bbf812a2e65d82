/*
 * error.c: the messages, names and hierarchy of the LB_E* codes, generated
 * from LB_ERRNO_MAP in lockbroker/codes.h, and the names of the methods
 * (lockfs's table, the one there is).
 */
#include "lockbroker.h"
#include "lockfs.h"

static const struct {
	int         code;
	int         parent;
	const char *name;
	const char *msg;
} errors[] = {
#define LB_ERRNO_ROW(name, value, parent, msg) \
	{ LB_##name, LB_##parent, "LB_" #name, msg },
	LB_ERRNO_MAP(LB_ERRNO_ROW)
#undef LB_ERRNO_ROW
};

#define NERRORS (sizeof(errors) / sizeof(errors[0]))

/* The row of code, or -1. */
static int
error_row(int code)
{
	size_t i;

	for (i = 0; i < NERRORS; i++)
		if (errors[i].code == code)
			return (int)i;
	return -1;
}

/* lb_strerror: see lockbroker.h.  Never NULL; the string is static. */
const char *
lb_strerror(int code)
{
	int i = error_row(code);

	if (code == 0)
		return "success";
	return i == -1 ? "unknown error" : errors[i].msg;
}

/* lb_error_name: see lockbroker.h.  Never NULL; the string is static. */
const char *
lb_error_name(int code)
{
	int i = error_row(code);

	if (code == 0)
		return "0";
	return i == -1 ? "LB_E?" : errors[i].name;
}

/* lb_error_is: see lockbroker.h.  Walks up the hierarchy from code; the
 * root (LB_ERROR) is its own parent. */
int
lb_error_is(int code, int base)
{
	int i;

	while ((i = error_row(code)) != -1) {
		if (code == base)
			return 1;
		if (errors[i].parent == code)
			break;
		code = errors[i].parent;
	}
	return 0;
}

/* lb_method_name: see lockbroker.h. */
const char *
lb_method_name(unsigned flags)
{
	return lockfs_method_name(flags & LB_METHOD_MASK);
}

/* lb_method_parse: see lockbroker.h. */
int
lb_method_parse(const char *name, unsigned *method)
{
	if (name == NULL || method == NULL ||
	    lockfs_method_parse(name, method) != 0)
		return LB_EINVAL;
	return 0;
}
