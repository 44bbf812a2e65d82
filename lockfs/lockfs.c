/*
 * lockfs.c: the method table, and the entry points that dispatch on a
 * lock's method.
 */
#include <string.h>

#include "lockfs.h"

static const struct {
	unsigned                 method;
	const struct lockfs_ops *ops;
} methods[] = {
	{ LB_LINK,    &lockfs_link_ops },
	{ LB_SYMLINK, &lockfs_symlink_ops },
	{ LB_MKDIR,   &lockfs_mkdir_ops },
	{ LB_PIDFILE, &lockfs_pidfile_ops },
	{ LB_SQLITE,  &lockfs_sqlite_ops },
};

/* lockfs_ops_for: the steps of method, or NULL when there is no such. */
const struct lockfs_ops *
lockfs_ops_for(unsigned method)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].method == method)
			return methods[i].ops;
	return NULL;
}

/* lockfs_method_name: "link" ... "sqlite", or "?" for no such method. */
const char *
lockfs_method_name(unsigned method)
{
	const struct lockfs_ops *ops = lockfs_ops_for(method);

	return ops != NULL ? ops->name : "?";
}

/* lockfs_method_parse: the method called name; 0, or -1 when none is. */
int
lockfs_method_parse(const char *name, unsigned *method)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].ops->name, name) == 0) {
			*method = methods[i].method;
			return 0;
		}
	return -1;
}

int
lockfs_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->try_acquire(l, err);
}

int
lockfs_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->release(l, err);
}

int
lockfs_is_locked(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->is_locked(l, err);
}

int
lockfs_i_am_locking(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->i_am_locking(l, err);
}

int
lockfs_break_lock(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->break_lock(l, err);
}

int
lockfs_holder(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	return lockfs_ops_for(l->method)->holder(l, h, err);
}

void
lockfs_abandon(struct lockfs_lock *l)
{
	lockfs_ops_for(l->method)->abandon(l);
}
