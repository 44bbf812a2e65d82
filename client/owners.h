/*
 * owners.h: liblockbroker's registry of who in this process holds each
 * lock, and through which handle it was taken.  Internal: not installed.
 *
 * One entry per (lock file, method, owner), the owner being the thread
 * that made the handle, or 0 for the process (LB_UNTHREADED).  It answers
 * two questions the artefact cannot:
 *
 *   - Which handle acquired a hold (lb_lock_free releases only a hold its
 *     own handle acquired; a probe handle of the same owner releases
 *     nothing).
 *   - For the pidfile method, whose artefact names only the pid: which
 *     owner of this process holds it, or is asking the broker for it, so
 *     that another thread waits like any other owner instead of taking
 *     the pid file for its own.
 *
 * Handles are named by a serial number (lb__owners_serial), never by
 * address, so that a freed handle's entry is never mistaken for a new
 * handle's.  Every call takes the registry's mutex for a short while and
 * does not block otherwise (the pidfile steps do one filesystem step under
 * it); a forked child starts with an empty registry (a child holds none
 * of its parent's locks).
 */
#ifndef LB_OWNERS_H
#define LB_OWNERS_H

#include <stdint.h>
#include <sys/types.h>

#include "lockfs.h"

/* Which hold: the lock and its owner. */
struct lb__owner_key {
	const char *lock_file;  /* borrowed for the call */
	unsigned    method;
	pid_t       tid;        /* the owner thread, 0: the process */
};

/* lb__owners_init: registers the registry's fork handlers, once; every
 * call does it when needed.  A caller whose own fork handlers take a lock
 * it holds while it calls into the registry calls this first, so that a
 * fork takes the two locks in that order. */
void lb__owners_init(void);

/* lb__owners_serial: a number no other handle of this process has. */
uint64_t lb__owners_serial(void);

/* lb__owners_holds: 1 when the registry says k's owner holds the lock
 * (it may have been broken since, by someone else), else 0. */
int  lb__owners_holds(const struct lb__owner_key *k);

/*
 * lb__owners_acquired: k's owner has the lock now, through the handle
 * serial.  With fresh (it did not hold it before this acquire), serial
 * becomes the acquiring handle; otherwise (a re-entrant acquire) the
 * acquiring handle stays as it was.  Out of memory: not recorded (then
 * lb_lock_free of the handle releases nothing).
 */
void lb__owners_acquired(const struct lb__owner_key *k, uint64_t serial,
         int fresh);

/*
 * lb__owners_epoch / lb__owners_released: a release of k's hold begins
 * (epoch: which hold it is, 0 when none is recorded) and has ended it: k's
 * owner holds the lock no more, unless another thread acting for the same
 * owner took it afresh meanwhile (then the epoch differs, and the new hold
 * stays recorded).
 */
uint64_t lb__owners_epoch(const struct lb__owner_key *k);
void lb__owners_released(const struct lb__owner_key *k, uint64_t epoch);

/*
 * lb__owners_unfinished: the daemon answered the release of k's hold
 * pending (OK pending=1): the owner holds it no more, but its lock file
 * may still name it until the daemon's handoff (or removal) is done.
 * Until it is seen naming it no more, or the owner is granted the lock
 * afresh (lb__owners_acquired), or the daemon shows the handoff over
 * (lb__owners_finished), such a file is not its own: the marked owner,
 * told "released", must never take it for its own in-process nor remove
 * it (the daemon finishes the handoff under it, and a file removed
 * meanwhile would be replaced by the next holder's while another took
 * the lock).  Set when a RELEASE is answered pending, whoever waits for
 * the answer (the reader thread: broker.c), and before a grant that
 * came too late is released by the library.
 *
 * Bounded: at most LB__OWNERS_MARKS_MAX marks of owners that hold
 * nothing else on their lock are kept (a mark on an owner that holds
 * or asks for the lock costs nothing: its entry is there anyway).  A
 * mark past the bound, or one that cannot be kept for want of memory,
 * is not forgotten but spilled: its lock file's number goes into a
 * fixed table of spilled locks (lb__owners_unfinished_named), never
 * emptied in the process's life, so that no owner ever takes a lock
 * file still naming it, which the daemon is handing on, for its own.
 */
#define LB__OWNERS_MARKS_MAX 256
void lb__owners_unfinished(const struct lb__owner_key *k);

/*
 * lb__owners_unfinished_named: 1 when k's owner is marked
 * (lb__owners_unfinished), or for the pidfile method (whose file names
 * only the process) any owner of this process on k's file, and fs's lock
 * file still names it, or that cannot be told; 0 when none is marked, or
 * the file names it no more (the mark is then dropped).  A spilled mark
 * (see above) counts for every owner of this process on k's file that
 * the registry does not have holding or asking for it (pidfile: when no
 * owner of this process does), and is never dropped: for such an owner
 * a lock file on a spilled lock that names it is never its own (its
 * acquire in-process waits for it like any other holder's; it is not
 * removed).  Called under the handle's mutex, as the in-process steps
 * are.
 */
int  lb__owners_unfinished_named(const struct lb__owner_key *k,
         struct lockfs_lock *fs);

/*
 * lb__owners_finished: the daemon shows that the lock file of k's lock
 * does not name k's owner and that no handoff from it is owed (a plain
 * OK to its RELEASE; a STATUS that finds the lock free, or held outside
 * the broker by another process): k's mark is dropped; with all, the
 * marks of every owner of this process on k's lock (its file is gone, or
 * another's).  A spilled mark stays (lb__owners_unfinished).  The
 * reader thread calls it as the replies come, in the order the daemon
 * sent them, so that a mark set by a later answer is never dropped by
 * an earlier one.
 */
void lb__owners_finished(const struct lb__owner_key *k, int all);

/* lb__owners_marks: how many marks (lb__owners_unfinished) are kept now,
 * spilled ones aside; for the tests of the bound. */
unsigned lb__owners_marks(void);

/*
 * lb__owners_lost_release / lb__owners_lost_owed: the in-process release
 * of k's hold that a RELEASE lost with the daemon calls for could not be
 * done (the lock directory's lock not had in time, or the lock file
 * kept for the readers beside it: lock.c lost_release); k's owner
 * still holds the lock, and its next release is done in-process under
 * that lock again, unless the daemon releases a hold of its own.
 * Cleared when the owner holds it no more (lb__owners_released,
 * lb__owners_broken) or takes it afresh.  Set only while the registry
 * has k's owner holding it (else nothing is set); owed: 1 when set,
 * else 0.
 */
void lb__owners_lost_release(const struct lb__owner_key *k);
int  lb__owners_lost_owed(const struct lb__owner_key *k);

/* lb__owners_broken: nobody in this process holds (lock_file, method)
 * any more (it was broken). */
void lb__owners_broken(const char *lock_file, unsigned method);

/* lb__owners_acquired_by: 1 when the handle serial acquired k's hold (as
 * the registry has it), else 0. */
int  lb__owners_acquired_by(const struct lb__owner_key *k, uint64_t serial);

/* lb__owners_forget_handle: the handle serial is freed: it acquires
 * nothing any more (the holds stay, owned by their owners). */
void lb__owners_forget_handle(uint64_t serial);

/*
 * lb__owners_asking / lb__owners_asked: bracket a pidfile ACQUIRE that
 * goes to the broker for k: while it is out, the daemon may create the
 * pid file for k's owner at any moment, and another owner of this process
 * must not take that file for a leftover.  asked tells whether it was
 * granted (then k's owner holds it, through serial, as with
 * lb__owners_acquired).  0, or LB_ENOMEM from asking (then asked is not
 * called).
 */
int  lb__owners_asking(const struct lb__owner_key *k);
void lb__owners_asked(const struct lb__owner_key *k, uint64_t serial,
         int granted, int fresh);

/* lb__owners_other: 1 when another owner of this process holds the
 * pidfile lock k names, or is asking the broker for it, else 0. */
int  lb__owners_other(const struct lb__owner_key *k);

/*
 * The pidfile method's in-process steps, for the owner k (k->lock_file is
 * fs->lock_file), each atomic with respect to the other owners of this
 * process.  They return as the lockfs steps do:
 *   try_acquire   0 when k's owner took it now (recorded, through serial)
 *                 or holds it already; LB_EALREADY when another owner of
 *                 this process (or another process) holds it; a pid file
 *                 naming this process that no owner of it holds or asks
 *                 for is a leftover (of an earlier process with this pid)
 *                 and is taken over.
 *   i_am_locking  1 when the pid file names this process and k's owner
 *                 holds it, else 0.
 *   release       0; LB_ENOTMINE when another owner (or process) holds it;
 *                 LB_ENOTLOCKED; LB_EUNLOCK.
 */
int  lb__owners_pidfile_try(const struct lb__owner_key *k,
         struct lockfs_lock *fs, uint64_t serial, struct lockfs_err *err);
int  lb__owners_pidfile_mine(const struct lb__owner_key *k,
         struct lockfs_lock *fs, struct lockfs_err *err);
int  lb__owners_pidfile_release(const struct lb__owner_key *k,
         struct lockfs_lock *fs, struct lockfs_err *err);

/*
 * lb__owners_pidfile_forget_leftover: removes the pid file at path
 * (lock_file) when it names this process and no owner of the process holds
 * it: for the broker's reconnect, before it sends pidfile ACQUIREs again to
 * a new daemon.  Such a file is a grant the previous daemon made and never
 * confirmed (or a leftover), which the new daemon, unable to tell whose it
 * is, would otherwise wait on for ever.  No-op otherwise.
 */
void lb__owners_pidfile_forget_leftover(const char *path,
         const char *lock_file);

/*
 * lb__owners_pidfile_settle_begin / _end: bracket the reader's giving
 * back of k's owner's dropped broker hold of a pid file to a new daemon
 * (RECLAIM, then RELEASE).  A pid file names only the process, so that
 * daemon takes any file naming this process for that hold's, and its
 * RELEASE removes it (or hands it on).  begin returns 1 when no owner of
 * this process holds the file: it may be given back, and until end no
 * owner here takes it in-process (lb__owners_pidfile_try answers
 * LB_EALREADY: a wait of a few round trips).  It returns 0 when an owner
 * here holds it (taken in-process since, a leftover adopted): the file is
 * that owner's, and the hold must be forgotten untold; the daemon then
 * holds its record of it for this process until the file goes
 * (lockbrokerd's lingering holds), which is that owner's release.  0
 * also when out of memory (forgotten untold likewise).  end only after
 * a begin that returned 1.
 */
int  lb__owners_pidfile_settle_begin(const struct lb__owner_key *k);
void lb__owners_pidfile_settle_end(const struct lb__owner_key *k);

#endif /* LB_OWNERS_H */
