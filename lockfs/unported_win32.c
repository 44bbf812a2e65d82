/*
 * unported_win32.c: the methods lockfs does not take on Windows yet
 * (symlink, sqlite: their files are not built there), each step
 * answering LB_EFAILED with the reason, so that the method table is
 * whole and a caller is told, never acted for in part; the sqlite
 * method's handoff, and its settings (the daemon's).  The link, mkdir
 * and pidfile methods are the real ones (link.c, mkdir.c, pidfile.c).
 */
#include <errno.h>

#include "lockfs.h"

/* The one answer: LB_EFAILED, naming the method. */
static int
unported(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_fail(err, LB_EFAILED, ENOSYS, "the %s method is not "
	    "available on Windows yet", lockfs_method_name(l->method));
}

static int
unported_holder(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	lockfs_holder_clear(h);
	return unported(l, err);
}

const struct lockfs_ops lockfs_symlink_ops = {
	.name = "symlink",
	.try_acquire = unported,
	.release = unported,
	.is_locked = unported,
	.i_am_locking = unported,
	.break_lock = unported,
	.holder = unported_holder,
	.abandon = lockfs_abandon_nothing,
};

const struct lockfs_ops lockfs_sqlite_ops = {
	.name = "sqlite",
	.try_acquire = unported,
	.release = unported,
	.is_locked = unported,
	.i_am_locking = unported,
	.break_lock = unported,
	.holder = unported_holder,
	.abandon = lockfs_abandon_nothing,
};

/* lockfs_handoff_sqlite: see lockfs.h.  LB_EFAILED: the sqlite method is
 * not built here. */
int
lockfs_handoff_sqlite(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_err *err)
{
	(void)from;
	return unported(to, err);
}

/* The sqlite method's settings (lockfs.h), which the daemon sets at start
 * and reads in its loop: kept, and answered, though no step of the
 * method runs; nothing is kept open (none is opened). */
static int unported_try_ms, unported_step_ms;

void
lockfs_sqlite_busy(int try_ms, int step_ms)
{
	unported_try_ms = try_ms;
	unported_step_ms = step_ms;
}

int
lockfs_sqlite_step_ms(void)
{
	return unported_step_ms;
}

int
lockfs_sqlite_try_ms(void)
{
	return unported_try_ms;
}

void
lockfs_sqlite_keep(int max, int idle_ms)
{
	(void)max;
	(void)idle_ms;
}

int
lockfs_sqlite_keep_prune(void)
{
	return 0;
}

void
lockfs_sqlite_vfs_on_refuse(void (*fn)(const char *why))
{
	(void)fn;
}
