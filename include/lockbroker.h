/*
 * lockbroker.h: the public API of liblockbroker.
 *
 * Named, exclusive locks between processes on one host, with the API of
 * Python's `lockfile` package.  A lock is held exactly when its on-disk
 * artefact exists, in one of lockfile's formats (see liblockbroker(3)), so C
 * programs using this library and Python programs using lockfile exclude
 * each other on the same paths.
 *
 * Conventions: every name has the prefix lb_ (LB_ for constants); handles are
 * opaque and come in new/free pairs; functions that can fail return an int,
 * 0 (or a documented non-negative answer) on success and a negative LB_E*
 * code on failure.  After a failure, lb_lock_error() tells why in words
 * (which file, which system error).
 *
 * Transports.  A handle takes its locks either through lockbrokerd, the
 * broker daemon (which queues waiters FIFO, hands a released lock to the
 * next waiter at once, and releases the locks of a process that dies), or
 * in-process, polling the artefact as lockfile does.  Both make the same
 * artefact under the same unique name, so they exclude each other and
 * each sees the other's holds.
 *   LB_LOCAL    in-process only.
 *   LB_BROKER   the broker only: calls fail (LB_EFAILED from lb_acquire,
 *               LB_EUNLOCK from release and break, LB_ERROR from queries)
 *               with a reason naming the socket when no daemon answers.
 *   neither     AUTO: each acquire uses the broker when its socket answers,
 *               else works in-process; release and lb_i_am_locking go the
 *               way the hold was taken; is_locked, get_holder and
 *               break_lock ask the broker when connected.
 * For programs that cannot be changed, the environment chooses for
 * handles whose flags name neither LB_LOCAL nor LB_BROKER:
 *   LOCKBROKER_TRANSPORT  "auto" (the default), "broker" or "local"; any
 *                         other value is taken as "auto", and
 *                         lb_lock_error() says so until a call fails.
 *   LOCKBROKER_SOCKET     the daemon's socket; unset: the user instance's
 *                         $XDG_RUNTIME_DIR/lockbroker/socket when it exists,
 *                         else the system's /run/lockbroker/socket.
 * The process keeps one connection to the broker, shared by all handles
 * and threads (close-on-exec; a forked child never uses its parent's);
 * lb_acquire_for, lb_release_for and lb_list open one of their own per
 * call.
 * When the daemon restarts, the library reconnects in the background (for
 * up to 60 s) and takes its locks back; a lock it cannot take back is
 * reported by the owner's next call on it: LB_ENOTLOCKED, with the reason.
 * A waiting lb_acquire survives a restart (the rest of its timeout is
 * waited for at the next daemon; in AUTO mode, in-process when no daemon
 * is back within a second).  LB_BROKER calls made while the library
 * reconnects wait for it.
 */
#ifndef LOCKBROKER_H
#define LOCKBROKER_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lockbroker/codes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On Windows the DLL exports what its symbol list names (and an import
 * library or a static link resolves it); elsewhere the library's
 * default visibility is hidden and these are its interface. */
#if defined(__GNUC__) && !defined(_WIN32) && !defined(LB_EXPORT)
#define LB_EXPORT __attribute__((visibility("default")))
#elif !defined(LB_EXPORT)
#define LB_EXPORT
#endif

/* A user, as the holders' fields give it: uid_t where there are numeric
 * users; on Windows, which has none, a placeholder that is always
 * (lb_uid_t)-1, unknown. */
#ifdef _WIN32
typedef unsigned int lb_uid_t;
#else
typedef uid_t lb_uid_t;
#endif

#define LB_VERSION_MAJOR 0
#define LB_VERSION_MINOR 5

/* Timeout for lb_acquire: wait until granted. */
#define LB_FOREVER INFINITY

typedef struct lb_lock lb_lock;

typedef struct lb_holder {
	char        host[256];    /* host named by the artefact, "" if none */
	char        unique_name[512]; /* the holder's unique name, "" if none */
	pid_t       pid;          /* 0 when the artefact does not tell */
	pid_t       tid;          /* thread as the name gives it (ours: the
	                             kernel tid; lockfile's: its thread ident,
	                             masked); 0 when unthreaded or unknown */
	lb_uid_t    uid;          /* owner of the artefact, (lb_uid_t)-1
	                             unknown */
	double      since;        /* artefact's mtime (epoch seconds), 0 unknown */
	lb_liveness liveness;
	/* Since 0.1 (room taken from reserved[]; the size is unchanged): */
	unsigned    waiters;      /* acquires queued at the broker; 0 unless
	                             broker is 1 */
	uint64_t    token;        /* the hold's fencing token when the broker
	                             granted it (see lb_fencing_token), else 0 */
	int         broker;       /* 1 when the broker answered (waiters and
	                             token are its), 0 for the in-process view */
	/* Since 0.2 (room taken from reserved[]; the size is unchanged): */
	int         unclaimed;    /* 1 when the broker holds the lock for a
	                             process whose connection ended with the
	                             previous daemon and that has not claimed
	                             it back since (see lockbrokerd(8)) */
	/* Since 0.4 (room taken from reserved[]; the size is unchanged): */
	int         shared;       /* 1 when the broker says the lock is held
	                             shared (docs/SHARED.md): the fields above
	                             are then the artefact's reader's, the
	                             holder its lock file names */
	unsigned    holders;      /* how many hold the lock: 1 for an
	                             exclusive hold, the readers' count for a
	                             shared one; 0 when not known (the
	                             in-process view, a daemon that does not
	                             say) */
	int         reserved[1];
} lb_holder;

/*
 * lb_lock_new: a handle for the lock on PATH.  Allocates; does not touch the
 * filesystem.  With threaded ownership (the default) the owner is the thread
 * that calls lb_lock_new, as with lockfile, for every method (LB_PIDFILE too:
 * the library tells the threads apart where the pid file cannot); with
 * LB_UNTHREADED it is the process.  Returns NULL with errno EINVAL (NULL or
 * empty path, bad flags), ENAMETOOLONG (path too long) or ENOMEM.
 * The caller frees the handle with lb_lock_free().
 */
LB_EXPORT lb_lock *lb_lock_new(const char *path, unsigned flags);

/* lb_lock_free: releases the lock if this very handle acquired it and its
 * owner still holds it (a handle that only looked, or re-acquired what its
 * owner held through another handle, releases nothing), then frees.  NULL
 * is allowed. */
LB_EXPORT void lb_lock_free(lb_lock *lock);

/*
 * lb_lock_forget: frees the handle and keeps its owner's hold, as
 * lockfile's objects do when they are dropped: the lock stays held by the
 * owner (the thread that made the handle, or the process), which releases
 * it through another handle on the same path (lb_release; lb_i_am_locking
 * says 1), or loses it when it is broken.  A hold taken through the broker
 * also ends when the process's connection does (the process exits, even
 * by kill -9); one taken in-process stays on disk until released or broken
 * (LB_BREAK_STALE breaks it once the process is dead).  No filesystem step
 * and no request: does not block.  NULL is allowed.  Since 0.3.
 */
LB_EXPORT void lb_lock_forget(lb_lock *lock);

/*
 * lb_acquire: take the lock.  timeout LB_FOREVER waits until granted; <= 0
 * tries once (LB_EALREADY when held by another); > 0 waits up to that many
 * seconds on the monotonic clock (LB_ETIMEOUT); a finite timeout over 1e9
 * seconds is taken as LB_FOREVER.  Taking a lock this owner already holds
 * returns 0 at once (no counter).  LB_EFAILED when the lock
 * cannot be taken at all (missing or unwritable directory, no hard links).
 * LB_EINVAL for a NaN timeout.  LB_ECANCELED when lb_lock_cancel or the
 * interrupt hook ended the wait (lb_lock_set_interrupt; since 0.3): the
 * lock is not held, and no request of it is left queued at the broker.
 * LB_EDEADLK (since 0.4) when its wait would close a cycle of waits among
 * the daemon's clients: refused at once, nothing held, lb_lock_error
 * naming the cycle (docs/DEADLOCK.md).
 * Blocks up to timeout (through the broker, plus the time to reach it, or
 * to reconnect to a restarted one).
 */
LB_EXPORT int lb_acquire(lb_lock *lock, double timeout);

/*
 * lb_acquire_shared: takes lock shared, as lb_acquire takes it exclusive:
 * any number of owners hold a lock shared at once, and none while an
 * owner holds it exclusive (docs/SHARED.md).  Granted in the daemon's
 * queue order: a shared request waits behind an exclusive one queued
 * before it; consecutive shared requests are granted together.  While
 * any owner holds it shared, its artefact exists (naming one of the
 * holders), so Python's lockfile and exclusive requests see it held.
 * Only through the daemon: LB_EFAILED ("shared locks need the daemon")
 * for an LB_LOCAL handle, or AUTO when no daemon answers, and when the
 * daemon cannot share it (the sqlite method; another user's reader in a
 * sticky directory or for the mkdir method: the reason says which);
 * never an exclusive lock instead.  An owner that holds the lock already
 * (in either mode) gets 0 at once, its mode unchanged.  Timeouts, errors
 * and lb_lock_cancel as lb_acquire's.  Blocks up to timeout.  Since 0.4.
 */
LB_EXPORT int lb_acquire_shared(lb_lock *lock, double timeout);

/*
 * lb_upgrade: makes the owner's shared hold of lock exclusive: at once
 * when the owner is its only holder, else once the other holders have
 * released it (waiting ahead of every queued request), up to timeout
 * (LB_EALREADY for timeout <= 0, LB_ETIMEOUT: the shared hold stays).
 * LB_EDEADLK (since 0.4) when its wait would close a cycle of waits, as
 * when another holder's upgrade of the lock waits already (both would
 * wait for ever); LB_EFAILED when no daemon answers;
 * LB_ENOTLOCKED/LB_ENOTMINE when the owner does not hold lock.  0 at once
 * for an exclusive hold.  Ended as an acquire is by lb_lock_cancel and
 * the interrupt hook: LB_ECANCELED, the shared hold staying
 * (0 when the daemon's grant crossed the cancel: the hold is exclusive).
 * Blocks up to timeout.  Since 0.4.
 *
 * lb_downgrade: makes the owner's exclusive hold of lock shared, at once
 * (the shared requests queued first are granted with it).  0 (also for a
 * shared hold); LB_ENOTLOCKED, LB_ENOTMINE, LB_EFAILED as lb_upgrade.
 * Blocks for the daemon's answer.  Since 0.4.
 */
LB_EXPORT int lb_upgrade(lb_lock *lock, double timeout);
LB_EXPORT int lb_downgrade(lb_lock *lock);

/*
 * lb_acquire_all: takes the n locks of locks[] exclusive, all of them or
 * none: 0 when this call took every one (each then released as usual,
 * lb_release on each handle); else a negative code with none of them held
 * by this call, and, when failed is not NULL, *failed the index in locks[]
 * of the lock that failed (the one it waited for when the time ran out;
 * or the one the daemon's set was refused for; lb_lock_error on that
 * handle tells why).  Each handle is an ordinary
 * one, with its own path, method and transport; n is 1 to 256.
 *
 * It never waits while it holds one of the set, so sets that overlap in
 * any order never deadlock one another.  Through a daemon that takes
 * sets (lockbrokerd 0.4 on), the set is one request: granted in one step
 * when every lock is free for it, else queued in every lock's queue at
 * once, first come, first served with single acquires (one asked after
 * the set waits behind it), the locks it waits for left free meanwhile.
 * Otherwise (in-process, an older daemon, handles of several owners or
 * with different LB_BREAK_STALE) it goes lock by lock: it waits for one
 * lock (an lb_acquire with what is left of the timeout), then tries each
 * of the others once; when one is busy it gives back those it took and
 * waits for that one next, holding none; no lock keeps a place for the
 * set then, so under constant contention it can wait longer than single
 * acquires asked after it.  The locks are taken in one global order, by
 * the identity of their files (the directory, however named, symbolic
 * links followed; the file's name; for LB_SQLITE the database and the
 * row's name).  docs/SHARED.md, "Several locks at once".
 *
 * timeout as for lb_acquire, for the whole call: <= 0 tries each lock
 * once (LB_EALREADY when one is held by another), > 0 seconds
 * (LB_ETIMEOUT, none held), LB_FOREVER.  Also LB_ECANCELED when
 * lb_lock_cancel is called on any handle of the set while the call is
 * in progress (it returns 1 then), or the interrupt hook of the handle
 * waited for says so; LB_EDEADLK when a wait of it would close a cycle
 * with locks the caller holds outside the set; LB_EFAILED, LB_ENOMEM as
 * lb_acquire's.  LB_EINVAL (nothing taken) for a NULL locks or n 0,
 * more than 256 locks, a NULL handle, a NaN timeout, one lock file named
 * by two handles (the same path twice; a directory reached through a
 * symbolic link, but for LB_SQLITE, whose rows are told apart by name;
 * two methods whose artefacts coincide): the reason, on both handles,
 * says "named twice" and names both paths, *failed the later of the two;
 * or a lock the handle's owner holds already (found at its turn: that
 * lock is left held, the others given back).  *failed is left as it is
 * for the failures that name no lock (the arguments as a whole,
 * LB_ENOMEM).
 * Blocks up to timeout (plus, through the broker, the time to reach it).
 * Since 0.4.
 */
LB_EXPORT int lb_acquire_all(lb_lock **locks, size_t n, double timeout,
    size_t *failed);

/*
 * lb_lock_cancel: ends every lb_acquire (and lb_upgrade: its shared hold
 * stays) on lock that is in progress when
 * it is called, from any thread (a signal handler excepted: it takes
 * mutexes), wherever the acquire is: waiting for the broker's grant (the
 * library sends CANCEL: the request leaves the daemon's queue), polling
 * in-process (ended before its next try, within about 20 ms), or not yet
 * waiting (it ends without waiting).  Each returns LB_ECANCELED, holding
 * nothing; but one whose grant crossed the cancel (the daemon granted it
 * before the CANCEL came) returns 0 and holds the lock, as any granted
 * acquire does: so "canceled" is never "held", and a caller that no
 * longer wants the lock releases it when lb_acquire returned 0.  An
 * acquire that begins after lb_lock_cancel has returned is not affected:
 * nothing is remembered.  Until a cancel, a waiting acquire keeps its
 * place in the daemon's queue.  (lb_acquire_for is not ended by it.)
 * Returns 1 when an acquire on lock was in progress, 0 when none was (the
 * cancel then did nothing), LB_EINVAL for a NULL lock.  Does not wait for
 * the acquires to return; blocks only on the library's mutexes.  Since
 * 0.3.
 */
LB_EXPORT int lb_lock_cancel(lb_lock *lock);

/*
 * lb_lock_set_interrupt: check(arg) becomes lock's interrupt hook, for
 * the lb_acquire calls that begin after this call (NULL: none, the
 * default).  An acquire that waits calls it from its own thread, with no
 * lock of the library held, once it has waited about 50 ms and then
 * about every 50 ms until it returns (while waiting for the broker's
 * grant, and between in-process tries); an acquire that does not wait
 * never calls it.  When check returns non-zero the acquire ends as
 * lb_lock_cancel ends it (LB_ECANCELED, or 0 when the grant came first).
 * So a program can stop a wait on its own condition: a signal's flag, a
 * deadline of its own, Python's pending signal handlers.  check must not
 * call lb_acquire on lock.  0, or LB_EINVAL for a NULL lock.  Since 0.3.
 */
LB_EXPORT int lb_lock_set_interrupt(lb_lock *lock, int (*check)(void *arg),
    void *arg);

/*
 * The asynchronous acquire (since 0.3), for event loops: lb_acquire
 * begun by lb_acquire_start and ended by lb_acquire_finish, called when
 * lb_lock_fd's descriptor is readable or when the previous call's *again
 * seconds have passed, whichever comes first; no thread waits meanwhile.
 *
 *     r = lb_acquire_start(lock, timeout);
 *     while (r == LB_INPROGRESS) {
 *             poll lb_lock_fd(lock) for reading, at most `again` seconds
 *             (the first time: 0);
 *             r = lb_acquire_finish(lock, &again);
 *     }
 *
 * Through the broker the ACQUIRE waits at the daemon, which keeps its
 * timeout, and the library's reader thread makes the descriptor readable
 * when the answer comes (or the connection is lost, or comes back).
 * In-process there is nothing to be told of: each lb_acquire_finish whose
 * time has come makes one more try, the pauses growing from 0.5 ms to
 * 50 ms (the caller's timer does the waiting); AUTO goes in-process as
 * lb_acquire does (no daemon answers, or a lost connection is not back
 * within about 1 s).  One asynchronous acquire at a time per handle; it
 * may be finished from another thread than the one that started it.
 * lb_lock_cancel ends it as it ends lb_acquire (and makes the descriptor
 * readable): the next lb_acquire_finish returns LB_ECANCELED, or, through
 * the broker, LB_INPROGRESS until the daemon has answered the CANCEL,
 * then LB_ECANCELED or 0 (the grant crossed it: held).  The interrupt
 * hook (lb_lock_set_interrupt) is not called.  lb_lock_free of a handle
 * with one in progress cancels it and waits for its end (a grant then is
 * released with the handle); lb_lock_forget withdraws it without
 * waiting.  In a forked child the parent's is not in progress.
 * It is exclusive only: there is no asynchronous lb_acquire_shared.
 */

/* What lb_acquire_start and lb_acquire_finish return while the acquire
 * goes on.  Positive: never an LB_E* code. */
#define LB_INPROGRESS 1

/*
 * lb_acquire_start: begins taking the lock, as lb_acquire(lock, timeout)
 * would, and returns without waiting for it: 0 when it was taken at once
 * (or the owner held it already); LB_INPROGRESS when it goes on (then
 * call lb_acquire_finish, see above); or lb_acquire's failures.  LB_EINVAL
 * also when an asynchronous acquire on lock is in progress already.
 * Blocks for the connect and HELLO when the handle asks the broker and
 * no connection is up yet, for one in-process try, and on the library's
 * mutexes; never for the lock.  Since 0.3.
 */
LB_EXPORT int lb_acquire_start(lb_lock *lock, double timeout);

/*
 * lb_acquire_finish: looks at the asynchronous acquire on lock: 0 when it
 * took the lock, lb_acquire's failures (LB_ETIMEOUT, LB_EALREADY,
 * LB_ECANCELED, LB_EFAILED, ...; lb_lock_error tells why), or
 * LB_INPROGRESS while it goes on: then, when again is not NULL, *again is
 * the number of seconds (0 or more; INFINITY when only the descriptor
 * will tell) after which it is to be called again even if lb_lock_fd's
 * descriptor has not become readable.  Calling it early or often does no
 * harm.  It empties the descriptor.  LB_EINVAL when no asynchronous
 * acquire is in progress on lock.  Does not block but on the library's
 * mutexes and one in-process try.  Since 0.3.
 */
LB_EXPORT int lb_acquire_finish(lb_lock *lock, double *again);

/*
 * lb_lock_fd: the descriptor that becomes readable when
 * lb_acquire_finish has something new to say (the outcome, or a cancel to
 * act on), for poll(2) or an event loop; the same one for every
 * asynchronous acquire of the handle, owned by it (do not close or read
 * it), valid from the first lb_acquire_start until lb_lock_free.  A
 * readable descriptor is a hint, not the outcome: call lb_acquire_finish.
 * LB_EINVAL before the first lb_acquire_start; LB_EFAILED where the
 * system offers no such descriptor (Windows): poll lb_acquire_finish by
 * the time it says (then at most 50 ms).  Since 0.3.
 */
LB_EXPORT int lb_lock_fd(lb_lock *lock);

/*
 * lb_acquire_fresh: whether the calling thread's last acquire on lock
 * that returned 0 (lb_acquire, lb_acquire_shared, lb_acquire_start,
 * lb_acquire_finish; not lb_upgrade, lb_downgrade) took the lock afresh:
 * 1; or found its owner holding it already, in either mode (a re-entrant
 * acquire: releasing now would end the owner's earlier hold): 0.  Through the broker the daemon's answer tells (it gives a
 * re-entrant grant the hold's token again), in the order it answered;
 * in-process, a look just before the try that took it, under the
 * handle's mutex.  LB_EINVAL when this thread has no such acquire on
 * lock.  So a caller that gives up a lock it no longer wants releases
 * it only when fresh.  Does not block.  Since 0.3.
 */
LB_EXPORT int lb_acquire_fresh(lb_lock *lock);

/* lb_release: 0 (through any handle of the holding owner); LB_ENOTLOCKED
 * when nobody holds it; LB_ENOTMINE when someone else does; LB_EUNLOCK when
 * the artefact cannot be removed. */
LB_EXPORT int lb_release(lb_lock *lock);

/* lb_is_locked: 1 when anyone holds the lock, 0 when nobody, or a negative
 * code. */
LB_EXPORT int lb_is_locked(lb_lock *lock);

/* lb_i_am_locking: 1 when this handle's owner holds the lock, else 0, or a
 * negative code. */
LB_EXPORT int lb_i_am_locking(lb_lock *lock);

/* lb_break_lock: removes the lock whoever holds it; 0 also when it was not
 * held.  LB_EUNLOCK when the artefact cannot be removed. */
LB_EXPORT int lb_break_lock(lb_lock *lock);

/*
 * lb_get_holder: fills *out with what is known of the lock's holder: from
 * the broker (STATUS: pid, uid, thread, host, since, token, and the number
 * of waiters; broker set to 1) when the handle asks the broker, else from
 * the artefact.  Through the broker also the mode (shared) and the number
 * of holders (since 0.4); for a lock held shared, the holder described is
 * the one its artefact names.  Returns 1 when the lock is held (out
 * filled), 0 when it is not (out zeroed but for broker and waiters), or a
 * negative code.
 */
LB_EXPORT int lb_get_holder(lb_lock *lock, lb_holder *out);

/*
 * What the daemon knows of a cluster lock's side in etcd (docs/CLUSTER.md),
 * filled by lb_get_cluster (since 0.5).
 */
typedef struct lb_cluster {
	int         cluster;      /* 1 when the daemon takes the lock through
	                             etcd (it lies under its cluster_dir), 0
	                             for a lock of this host alone (the other
	                             fields are then empty) */
	char        state[16];    /* this daemon's side: "idle" (no key),
	                             "taking", "waiting" (its key queued behind
	                             another host's), "held", "lost",
	                             "releasing"; "unknown" when no daemon
	                             answers (error says so) */
	char        key[512];     /* this daemon's etcd key for the lock, ""
	                             when it has none (cut to fit) */
	char        holder[256];  /* the holding key's value (the host, the
	                             daemon's pid, the lock's path; cut to
	                             fit), "" when no key holds, etcd did not
	                             answer, or STATUS had no room for it */
	uint64_t    revision;     /* the holding key's create revision (the
	                             high bits of its fencing tokens), 0 when
	                             not known */
	unsigned    waiters;      /* keys of other hosts queued in etcd */
	char        error[256];   /* why etcd's side is not known (no lease,
	                             etcd silent), "" when it answered */
	int         reserved[8];
} lb_cluster;

/*
 * lb_get_cluster (since 0.5): fills *out with the daemon's and etcd's view
 * of the lock when the daemon takes it cluster-wide: its state, its key,
 * the holding key's host and revision and the other hosts' waiting keys
 * (one etcd read; out->error says why when etcd cannot be asked).  The
 * lock's local holder is lb_get_holder's.  Returns 1 for a cluster lock,
 * 0 for a lock of this host alone, or a negative code.  When no daemon
 * answers (or for an LB_LOCAL handle), a lock lies under a daemon's
 * cluster_dir when the sign that daemon leaves there says so (see
 * lockbrokerd.conf(5), cluster_dir): 1, state "unknown" and error saying
 * that no daemon could be asked; else 0.
 */
LB_EXPORT int lb_get_cluster(lb_lock *lock, lb_cluster *out);

/*
 * lb_set_lost_hook (since 0.5): hook(path, why, arg) is called each time
 * the library learns that a lock this process holds through the daemon
 * was lost behind its owner's back: the daemon ended it (LOST: a cluster
 * lock whose etcd lease could not be renewed, a shared hold whose
 * artefact went), or a restarted daemon did not give it back.  It is
 * called at once, from the library's reader thread, before the owner's
 * next call on the lock reports the loss (LB_ENOTLOCKED, with why); path
 * is the lock's path.  The hook must return soon and must not call
 * liblockbroker functions that ask the daemon (their replies are read by
 * that thread): note the loss (a flag, a write to a pipe) and return.
 * One hook per process; NULL removes it.  lb_set_lost_hook returns once
 * no call of the hook it replaces runs (but when called from that hook):
 * after it, the old hook and its arg are never used again.  A loss is
 * told to the hook set when its turn comes.  The hook runs on the
 * library's thread, whose stack is 256 KiB.  A forked child keeps the
 * hook but not the parent's locks.
 */
typedef void (*lb_lost_hook)(const char *path, const char *why, void *arg);
LB_EXPORT void lb_set_lost_hook(lb_lost_hook hook, void *arg);

/*
 * lb_fencing_token: the fencing token of this owner's hold, into *token:
 * a number the broker gives each grant, larger for every later grant of
 * the same lock (also across daemon restarts), so that a resource can
 * refuse a request that carries an older token than one it has seen.
 * Returns 0; LB_ENOTLOCKED when this owner does not hold the lock;
 * LB_EFAILED when it holds it in-process, which has no tokens; LB_EINVAL
 * for NULL arguments.
 */
LB_EXPORT int lb_fencing_token(lb_lock *lock, uint64_t *token);

/* The path as given, the artefact's absolute path, and this owner's unique
 * name (lockfile's unique_name).  Owned by the handle; valid until
 * lb_lock_free (lb_unique_name: until a fork, in the child). */
LB_EXPORT const char *lb_lock_path(const lb_lock *lock);
LB_EXPORT const char *lb_lock_file(const lb_lock *lock);
LB_EXPORT const char *lb_unique_name(const lb_lock *lock);

/*
 * lb_lock_error: why the last failing call on this handle failed, in words,
 * or "" when none has (or, until one does, a note about an invalid
 * LOCKBROKER_TRANSPORT).  The string is a copy private to the calling thread,
 * valid until that thread's next call of lb_lock_error.
 */
LB_EXPORT const char *lb_lock_error(lb_lock *lock);

/*
 * lb_locked: lockfile's `locked` decorator.  Takes the lock on PATH (default
 * flags) within timeout, calls fn(arg), releases.  0; a negative code and
 * fn not called when the lock could not be taken; or, after fn has run,
 * the release's failure (the lock was broken meanwhile).
 */
LB_EXPORT int lb_locked(const char *path, double timeout,
    void (*fn)(void *), void *arg);

/* ------------------------------------------------------------------ */
/* Since 0.2: locks kept for another process, and the broker's list.    */

/* How a kept hold was taken or released (lb_acquire_for, lb_release_for). */
typedef struct lb_kept_info {
	int      broker;        /* 1: through the broker, which keeps the hold
	                           for pid, watches pid and releases the lock
	                           when pid exits; 0: in-process, where nobody
	                           watches pid (the lock stays until released
	                           or broken) */
	uint64_t token;         /* lb_acquire_for through the broker: the
	                           grant's fencing token; else 0 */
	char     socket[256];   /* the broker's socket when broker is 1, else
	                           "" */
	int      reserved[8];
} lb_kept_info;

/*
 * lb_acquire_for: takes the handle's lock for process pid (the holder),
 * which keeps it after this call returns and after the handle is freed,
 * until lb_release_for, or until pid exits when the broker holds it.
 * The handle's owner plays no part: it neither holds the lock nor may
 * release it with lb_release.  Transport as the handle's, per call:
 *   broker     the hold is kept by the daemon (ACQUIRE with pid=, see
 *              docs/PROTOCOL.md): it watches pid and releases the lock
 *              when pid exits, also across a restart of the daemon.
 *              When the connection is lost, or the daemon stops, while
 *              waiting, the request is sent again to the next daemon with
 *              what is left of the timeout (LB_BROKER: for up to 60 s;
 *              AUTO: for about 1 s, then in-process).
 *   in-process the artefact naming pid is made by this process; nobody
 *              watches pid (a stale hold is broken with LB_BREAK_STALE or
 *              lb_break_lock once pid is dead).
 * timeout as for lb_acquire.  Returns 0 when pid holds the lock (also when
 * it held it already); LB_EALREADY, LB_ETIMEOUT when another holds it;
 * LB_EINVAL when no process pid runs (or a NaN timeout); LB_EFAILED when it
 * cannot be taken (no daemon answers with LB_BROKER; pid is another user's
 * process and the caller is not root; the path cannot be locked);
 * LB_ENOMEM.  lb_lock_error() tells why.  When how is not NULL it is
 * filled on success.  Blocks up to timeout, plus the time to reach (or
 * reach again) the daemon.
 */
LB_EXPORT int lb_acquire_for(lb_lock *lock, pid_t pid, double timeout,
    lb_kept_info *how);

/*
 * lb_acquire_shared_for (since 0.5): lb_acquire_for, for a shared hold
 * (docs/SHARED.md): pid reads beside the lock's other readers until
 * lb_release_for or its exit.  Through the daemon only (kept as a
 * reader the daemon watches, across a restart of the daemon too):
 * without one (LB_LOCAL, or AUTO when none answers) it fails LB_EFAILED,
 * never taking the lock exclusive.  Returns as lb_acquire_for.
 */
LB_EXPORT int lb_acquire_shared_for(lb_lock *lock, pid_t pid,
    double timeout, lb_kept_info *how);

/*
 * lb_release_for: releases the handle's lock held for process pid (taken
 * with lb_acquire_for, here or by another process), with one request to
 * the broker, or in-process, as the handle's transport says (AUTO: the
 * broker when it answers, else in-process).  Returns 0; LB_ENOTLOCKED
 * when nobody holds the lock; LB_ENOTMINE when someone other than pid
 * does; LB_EINVAL when no process pid runs (in-process: its stale lock is
 * broken with lb_break_lock); LB_EUNLOCK when it cannot be released (no
 * daemon answers with LB_BROKER, another user's process, an I/O error);
 * LB_ENOMEM.  lb_lock_error() tells why; how as for lb_acquire_for.
 */
LB_EXPORT int lb_release_for(lb_lock *lock, pid_t pid, lb_kept_info *how);

/* Which fields of an lb_list_entry the daemon gave (lb_list_entry.known). */
#define LB_LIST_PID      0x01u  /* pid */
#define LB_LIST_TID      0x02u  /* tid */
#define LB_LIST_UID      0x04u  /* uid */
#define LB_LIST_HOST     0x08u  /* host (else NULL) */
#define LB_LIST_SINCE    0x10u  /* since */
#define LB_LIST_TOKEN    0x20u  /* token */
#define LB_LIST_WAITERS  0x40u  /* waiters */
#define LB_LIST_MODE     0x80u  /* shared (since 0.4) */

/* One lock the broker knows, as lb_list passes it.  A field absent from
 * known is 0 (host: NULL).  The strings are valid during the callback
 * only. */
typedef struct lb_list_entry {
	const char *path;       /* the lock's absolute path */
	unsigned    method;     /* LB_LINK ... LB_SQLITE */
	unsigned    known;      /* LB_LIST_* bits: the fields given */
	pid_t       pid;        /* the holder's process */
	pid_t       tid;        /* the holder's thread, 0 for a process */
	lb_uid_t    uid;        /* the holder's user */
	const char *host;       /* the holder's host */
	double      since;      /* held since (epoch seconds) */
	uint64_t    token;      /* the hold's fencing token */
	unsigned    waiters;    /* acquires queued for the lock */
	int         releasing;  /* 1: released, its artefact not yet removed
	                           (see docs/PROTOCOL.md, RELEASE) */
	int         unclaimed;  /* 1: held for a process that has not claimed
	                           its hold back from the previous daemon (see
	                           lb_holder) */
	/* Since 0.4 (room taken from reserved[]; the size is unchanged): */
	int         shared;     /* 1: this holder holds the lock shared, 0:
	                           exclusive (known has LB_LIST_MODE); a lock
	                           held shared is passed once per holder, the
	                           artefact's reader first (docs/SHARED.md) */
	/* Since 0.5 (room taken from reserved[]; the size is unchanged): */
	int         cluster;    /* a cluster lock: this daemon's side of it in
	                           etcd, LB_CLUSTER_*; 0 for a lock of this
	                           host alone (lb_get_cluster tells more) */
	int         reserved[5];
} lb_list_entry;

/* lb_list_entry's cluster: the daemon's side of a cluster lock, as
 * lb_cluster's state names it (since 0.5). */
#define LB_CLUSTER_IDLE      1
#define LB_CLUSTER_TAKING    2
#define LB_CLUSTER_WAITING   3
#define LB_CLUSTER_HELD      4
#define LB_CLUSTER_LOST      5
#define LB_CLUSTER_RELEASING 6

/* What lb_list tells of the daemon it asked. */
typedef struct lb_list_info {
	char socket[256];       /* the socket asked (also on failure) */
	char server[128];       /* the daemon's name and version from its
	                           answer to HELLO, "" when it gave none */
	int  reserved[8];
} lb_list_info;

/*
 * lb_list: asks the broker (always: there is no in-process list) for every
 * lock it knows, held or waited for, that the caller may see (root: every
 * lock; another user: its own holds and the locks whose artefacts it may
 * look at), and calls fn(entry, arg) once per lock, in no particular
 * order, until fn returns non-zero; a lock held shared is passed once per
 * holder, in a row, the holder its artefact names first, each entry with
 * its mode (shared, LB_LIST_MODE; since 0.4).  One connection of its own,
 * closed before the return; the socket is LOCKBROKER_SOCKET's, as for
 * handles.
 * Returns 0 when every lock was passed to fn; 1 when fn stopped the
 * list; LB_EINVAL for a NULL fn; LB_ENOMEM; LB_ERROR when no daemon
 * answers, the connection fails or the daemon refuses (fn may have been
 * called for some locks before).  On failure the reason, naming the
 * socket, is written into error (error_size bytes, cut to fit) when error
 * is not NULL.  When info is not NULL it is filled (socket also on
 * failure).  Blocks until the daemon has answered (at most about 35 s).
 */
LB_EXPORT int lb_list(int (*fn)(const lb_list_entry *entry, void *arg),
    void *arg, lb_list_info *info, char *error, size_t error_size);

/* lb_strerror: the message of an LB_E* code; "unknown error" otherwise. */
LB_EXPORT const char *lb_strerror(int code);

/* lb_error_name: "LB_ETIMEOUT" and so on; "LB_E?" for an unknown code. */
LB_EXPORT const char *lb_error_name(int code);

/* lb_error_is: 1 when code is base or descends from it in the hierarchy
 * (lb_error_is(LB_ETIMEOUT, LB_ELOCK) is 1), else 0. */
LB_EXPORT int lb_error_is(int code, int base);

/* lb_method_name: the name of the method in flags (flags & LB_METHOD_MASK):
 * "link", "symlink", "mkdir", "pidfile" or "sqlite", as lockbroker(1) and
 * the protocol spell them; "?" for none of them.  Since 0.2. */
LB_EXPORT const char *lb_method_name(unsigned flags);

/* lb_method_parse: the LB_* flag of the method called name into *method:
 * 0, or LB_EINVAL (nothing stored) for a name that is no method.  Since
 * 0.2. */
LB_EXPORT int lb_method_parse(const char *name, unsigned *method);

#ifdef __cplusplus
}
#endif
#endif /* LOCKBROKER_H */
