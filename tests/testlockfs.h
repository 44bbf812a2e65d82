/*
 * testlockfs.h: what the lockfs suites (check_lockfs, check_handoff)
 * share beyond testlib.h: lockfs calls that must succeed, and steps run
 * on a lock by another process (a second owner, a holder alive or dead,
 * user nobody).
 */
#ifndef TESTLOCKFS_H
#define TESTLOCKFS_H

#include <sys/types.h>

#include "lockfs.h"
#include "testlib.h"

/* The sqlite method's database in a lock's directory. */
#define SQLITE_DB ".lockbroker.sqlite"

/* init_ok: lockfs_init that must succeed. */
void init_ok(struct lockfs_lock *l, const char *path, unsigned method,
    pid_t tid);

/* acquire_ok: lockfs_try_acquire that must succeed. */
void acquire_ok(struct lockfs_lock *l);

/* artefacts_left: the entries left in dir, not counting the sqlite
 * method's database. */
int artefacts_left(const char *dir);

/* assert_artefact_is_mine: asserts that l's artefact is on disk in
 * lockfile's format, naming l's owner: the link method's lock file a
 * hard link of its unique file, the symlink's target the unique name,
 * the mkdir method's directory holding only its empty marker, the pid
 * file the owner's pid, the sqlite database there (and no lock file). */
void assert_artefact_is_mine(struct lockfs_lock *l);

/* A step on a lock that step_in_child runs. */
enum step {
	STEP_TRY,               /* try_acquire (abandon on failure) */
	STEP_RELEASE,
	STEP_BREAK,
	STEP_IS_LOCKED,
	STEP_I_AM_LOCKING,
	STEP_BREAK_STALE
};

/*
 * step_in_child: runs one step on a fresh unthreaded handle for path as
 * another process (as user nobody when as_nobody and root; the test
 * fails when it cannot).  Returns the step's result and, when err is not
 * NULL, the child's err.  A lock the child takes stays taken after it
 * exits.
 */
int step_in_child(const char *path, unsigned method, enum step what,
    int as_nobody, struct lockfs_err *err);

/*
 * holder_spawn: a child process takes the lock on path (unthreaded).  When
 * keep, it then holds it until holder_kill(); otherwise it exits at once
 * without releasing and is reaped here, leaving a dead holder's artefact.
 * Returns the child's pid; asserts that it took the lock.
 */
pid_t holder_spawn(const char *path, unsigned method, int keep);

/* holder_kill: kills a holder that holder_spawn() kept alive, and reaps
 * it. */
void holder_kill(pid_t pid);

#endif
