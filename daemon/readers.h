/*
 * readers.h: shared holds (readers.c, docs/SHARED.md): the riders beside
 * a lock's artefact's reader, the readers granted together, UPGRADE and
 * DOWNGRADE.
 */
#ifndef LBD_READERS_H
#define LBD_READERS_H

#include "daemon.h"

/* lbd_hold_mode: sets the mode of h, its lock's artefact's hold (1:
 * shared), recorded with it in the state database (a restart keeps it);
 * made exclusive with no rider left to come, the lock's readers' sign is
 * removed. */
void lbd_hold_mode(struct lbd_hold *h, int shared);

/* lbd_reader_find: l's rider owned by (c, tid), or NULL. */
struct lbd_hold *lbd_reader_find(struct lbd_lock *l, struct lbd_conn *c,
         pid_t tid);

/* lbd_reader_find_kept: l's rider kept for process pid (the one that
 * runs with that pid now, not exiting), if c may act for it (c's user
 * is the rider's, or root), or NULL.
 * lbd_reader_of: lbd_reader_find_kept for kept_pid when not 0, else
 * lbd_reader_find for (c, tid). */
struct lbd_hold *lbd_reader_find_kept(struct lbd_lock *l,
         const struct lbd_conn *c, pid_t pid);
struct lbd_hold *lbd_reader_of(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid);

/* lbd_reader_keep: rider r (in its lock's riders, of no connection's)
 * becomes kept for its process (r->fs.owner): out of any connection, in
 * d->kept_riders, counted in its user's locks_per_uid, recorded in the
 * riders table when record is set (its OK owed until then:
 * lbd_grant_reply), its process watched (it ends when that process
 * exits: lbd_orphan_exited). */
void lbd_reader_keep(struct lbd_hold *r, int record);

/* lbd_reader_adopt_kept: at start, rec (a kept rider's record of the
 * previous run) rides l again, kept for its process, when l is held
 * shared with rec's token (the same read), rec's process runs (its pid
 * and start time) and its marker, a file of its user, lies beside the
 * lock file (looked at as that user), or the lock file is its own (a
 * handoff to it the previous run did not record: lbd_reader_owner).  0 when adopted, else -1 (the
 * record to be forgotten: lbd_reader_forget_kept). */
struct lbd_store_hold;
int  lbd_reader_adopt_kept(struct lbd_lock *l,
         const struct lbd_store_hold *rec);

/* lbd_reader_owner: at start, the kept rider of l whose artefact l's
 * lock file is (its name and owner, looked at as its user), or NULL: l's
 * recorded hold was found not to own it (reconcile.c), and a handoff to
 * that rider was made before the previous run recorded it.
 * lbd_reader_promote: r, so found, becomes l's holder, kept for its
 * process, shared, with its token (recorded; its process still
 * watched); l's hold was uninstalled first. */
struct lbd_hold *lbd_reader_owner(struct lbd_lock *l);
void lbd_reader_promote(struct lbd_hold *r);

/* lbd_reader_await: at start, rec (the record of the previous run's
 * connections riding l on one marker, conn_riders) is awaited: while
 * l's hold is the one rec rode (its token) and rec's process runs (its
 * pid and start time), rec's connections may RECLAIM in the grace
 * period (lbd_reader_rejoin: nobody else may, when the database records
 * riders), and their marker stays until the last of them has reclaimed
 * and left; at the grace period's end it is removed unless a rider of
 * this run has it (lbd_readers_grace_over).  Nothing outside the grace
 * period, nor for a rider whose marker is gone.  lbd_readers_unawait: l
 * is going (lock table): its awaited riders are forgotten, their
 * records deleted and their markers removed (both kept when the daemon
 * stops). */
void lbd_reader_await(struct lbd_lock *l, const struct lbd_store_hold *rec);
void lbd_readers_unawait(struct lbd_lock *l);

/* lbd_readers_await_take: l's hold of the previous run is forgotten at
 * start (its artefact handed to a rider before the previous run recorded
 * that, reconcile.c): l's awaited riders, taken out of it (nothing on
 * disk, no record changed), as a list to give to the hold that rider
 * reclaims (lbd_readers_await_give, which frees it; or
 * lbd_readers_await_free); NULL when none.  lbd_readers_await_give: l,
 * reclaimed shared by that rider (l->holder), awaits the list's riders
 * again (lbd_reader_await), its holder's connection taken out, their
 * records written. */
struct lbd_awaited;
struct lbd_awaited *lbd_readers_await_take(struct lbd_lock *l);
void lbd_readers_await_give(struct lbd_lock *l, struct lbd_awaited *list);
void lbd_readers_await_free(struct lbd_awaited *list);

/* lbd_reader_conns: how many connections ride r's lock on r's marker as
 * r's user (its process, thread and uid): its riders of connections,
 * and the connections of the previous run still to reclaim
 * (l->awaited); r itself counted when it is one of them.  The number
 * the conn_riders table keeps for that marker (store.c). */
unsigned lbd_reader_conns(const struct lbd_hold *r);

/* lbd_reader_forget_kept: at start, rec (a kept rider's record of the
 * previous run) was not adopted (lbd_reader_adopt_kept): its marker,
 * if it lies there, is removed as its user.  Nothing when it was. */
void lbd_reader_forget_kept(struct lbd_lock *l,
         const struct lbd_store_hold *rec);

/* lbd_reader_joinable: 1 when a shared request may be granted l at once
 * beside its holders: l is held shared by a connected reader, or one kept
 * for a process and judged (not a hold
 * of the previous run not reclaimed yet, whose end hands nothing to a
 * rider: reconcile.c; not releasing, not lingering) and nobody waits;
 * else 0. */
int  lbd_reader_joinable(const struct lbd_lock *l);

/* lbd_readers_serving: 1 when l's readers serve its queue's shared
 * requests (as lbd_reader_joinable, whoever waits): those at the head
 * wait then only for readers_per_lock's room, or for a busy directory or
 * a cluster key's gate; else 0. */
int  lbd_readers_serving(const struct lbd_lock *l);

/* lbd_reader_join: grants c's shared ACQUIRE id of l (thread tid; or kept
 * for process kept_pid, not 0: lbd_reader_keep) beside
 * the readers that hold it (the caller checked lbd_reader_joinable and
 * the limits): the rider is made once c is known to be able to take the
 * artefact over (docs/SHARED.md); its marker is made, then the lock file
 * is seen to name the artefact's reader still and that reader's process
 * to live (only when it is gone, under the lock of the directory, tried
 * once); its OK is owed as the artefact's reader's.  0; LBD_JOIN_BUSY
 * when the reader's process is gone and another process holds the
 * directory's lock now (nothing granted, nothing replied: the request
 * waits and tries again); or an LB_E* code with err filled (nothing
 * granted; the caller replies): LB_ENOTLOCKED when the lock file is not
 * the artefact's reader's any more (the caller ends that hold:
 * lbd_readers_artefact_lost). */
#define LBD_JOIN_BUSY 2
int  lbd_reader_join(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid, uint64_t id, struct lockfs_err *err);

/* lbd_reader_rejoin: RECLAIM by (c, tid) with token of a shared hold of
 * the previous run that was a rider's (docs/SHARED.md): when l is held
 * shared with that token, the previous run recorded (c's process, tid,
 * c's user) riding it with a connection that has not reclaimed yet
 * (lbd_reader_await; any, with a database of an earlier release, which
 * recorded none), and c's marker, a file of c's user, lies beside its
 * lock file, c rides again; when
 * l's hold was kept for such readers (lbd_reader_keep_for_readers), its
 * artefact is handed to c at once.  0, or -1 (refused, nothing
 * changed; logged). */
int  lbd_reader_rejoin(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
         uint64_t token);

/* lbd_reader_keep_for_readers: h, l's artefact's hold of the previous
 * run (its token's generation older than this start), shared and with no
 * rider, is ending (its client's RELEASE or close, its process's exit)
 * during the grace period after a restart (or while the previous run's
 * holds are judged at start): when a live reader's marker
 * lies beside l's lock file (a reader of the previous run that has not
 * reclaimed yet), or the directory cannot be read to tell
 * (lockfs_readers_live: -1, never taken for "no reader"), h becomes an
 * orphan held for those readers (for_readers; its RELEASE is answered
 * OK; a kept hold is kept no more, its process done with it): handed to
 * the first that reclaims, ended with the grace period.
 * 1 when so kept, else 0 (the caller ends h; with no live reader's
 * marker seen, the readers' sign is removed first). */
int  lbd_reader_keep_for_readers(struct lbd_lock *l, struct lbd_hold *h);

/* lbd_reader_next: the rider l's artefact goes to when its reader leaves:
 * the newest kept for a process (no connection would RECLAIM it: a
 * killed daemon's start finds it by its own lock file,
 * lbd_reader_owner, and the other riders ride on it again), else the
 * one whose UPGRADE waits, else the newest (the one likely to read
 * longest: readers that came before it leave as riders, with no
 * handoff); NULL when none. */
struct lbd_hold *lbd_reader_next(struct lbd_lock *l);

/* lbd_reader_end: takes rider r out of its lock and connection, ends the
 * UPGRADE it may have waiting (ECANCELED) and frees it; its marker is
 * removed (unless another rider of its thread has it) and, with the
 * lock's last rider gone, the readers' sign.
 * The caller serves the lock after (lbd_readers_serve). */
void lbd_reader_end(struct lbd_hold *r);

/* lbd_reader_lost: rider r loses its hold, the daemon's doing (why: its
 * artefact's hold is gone and it could not take the artefact over): logs
 * it, tells its connection at once with "LOST - path= method= thread=
 * message=" (version 2: docs/PROTOCOL.md), before any writer can be
 * granted the lock, then ends it as lbd_reader_end. */
void lbd_reader_lost(struct lbd_hold *r, const char *why);

/* lbd_lost_send: tells hold h's connection (there; a version-2 session:
 * an older one is not told) that h is lost, with why: the LOST line
 * (docs/PROTOCOL.md), for a rider, the artefact's reader, or a cluster
 * lock's holder whose etcd lease was lost (cohort.c). */
void lbd_lost_send(struct lbd_hold *h, const char *why);

/* lbd_reader_handed: rider r has taken its lock's artefact over (a new
 * hold of the same owner is the holder now): takes it out and frees it,
 * its UPGRADE, if any, kept for the new hold. */
void lbd_reader_handed(struct lbd_hold *r);

/* lbd_upgrade_drop: ends the UPGRADE that (c, tid) may have waiting for
 * l with code and why (the hold it upgrades is going). */
void lbd_upgrade_drop(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
         enum lbp_error code, const char *why);

/* lbd_readers_lost: l's artefact's hold is gone (broken, forgotten,
 * released with no rider able to take the artefact): its riders and any
 * UPGRADE lose it too, each logged.  l is not freed. */
void lbd_readers_lost(struct lbd_lock *l);

/* lbd_readers_artefact_lost: l's artefact's hold, shared, is found not
 * to be its reader's any more (its lock file broken as stale, or
 * another's) when a reader was to join it (why says so): the hold ends
 * (nothing on disk: the lock file is not its own), its connection told
 * LOST, and its riders and any UPGRADE lose it too (lbd_readers_lost).
 * The waiters are not served (the caller does).  l is not freed. */
void lbd_readers_artefact_lost(struct lbd_lock *l, const char *why);

/* lbd_readers_unclaimed: 1 when l, held shared by its artefact's reader
 * with a hold of the previous run (its token's generation older than
 * this start) and no rider in memory, has a live reader's marker beside
 * its lock file (looked at as that reader) while the previous run's
 * holds are judged (at start, in the grace period): a rider of the
 * previous run that has not reclaimed yet, which holds as much as a
 * rider in memory; -1 when it cannot be told (lockfs_readers_live -1),
 * which callers that wait or keep take for a reader, and a RECLAIM's
 * mode=exclusive for none.  Else 0. */
int  lbd_readers_unclaimed(struct lbd_lock *l);

/* lbd_readers_grace_over: the grace period is over: every lock whose
 * queue's head is an UPGRADE is served (it may have waited for riders
 * of the previous run that never reclaimed), and a previous run's shared
 * hold with no rider loses its readers' sign. */
void lbd_readers_grace_over(struct lbd *d);

/* lbd_readers_detach: the daemon stops: l's riders are forgotten in
 * memory, their markers left for them to reclaim from the next daemon
 * (lbd_reader_rejoin); an UPGRADE waiting is told ESHUTDOWN.
 * lbd_conn_readers_detach: the same for c's riders. */
void lbd_readers_detach(struct lbd_lock *l);
void lbd_conn_readers_detach(struct lbd_conn *c);

/* lbd_readers_bound_changed: readers_per_lock was changed from old (a
 * reload): raised, the locks whose readers serve a shared request at the
 * head of their queue serve them now (room has come); lowered, the
 * owners of the shared requests in those runs are searched from again
 * (lbd_waits_recheck: their waits need more room now, and may close a
 * cycle of waits, which is refused as one a new hold closes). */
void lbd_readers_bound_changed(struct lbd *d, unsigned old);

/* lbd_readers_serve: l is held shared: grants the UPGRADE at the head
 * once its owner is the only holder, or else the shared requests at the
 * head (up to the first exclusive one) as riders.  Nothing when l is not
 * held shared by a connected reader (see lbd_reader_joinable; served
 * again when its hold is reclaimed).  l is not freed. */
void lbd_readers_serve(struct lbd_lock *l);

/* lbd_conn_readers_drop: c is going away: ends its riders (and serves
 * their locks). */
void lbd_conn_readers_drop(struct lbd_conn *c);

/* lbd_upgrade: UPGRADE id of (c, tid)'s hold of path (method), waiting
 * up to timeout.  Replies (OK, an error) or queues; always 0. */
int  lbd_upgrade(struct lbd_conn *c, uint64_t id, const char *path,
         unsigned method, pid_t tid, double timeout);

/* lbd_downgrade: DOWNGRADE id of (c, tid)'s hold of path (method),
 * which its client waits for until by (the host's monotonic clock,
 * lockfs_now; INFINITY: for as long as the connection lives): read at or
 * past by, an exclusive hold stays exclusive (ETIMEOUT), since its client
 * has told its owner that it was not done.  Replies; always 0. */
int  lbd_downgrade(struct lbd_conn *c, uint64_t id, const char *path,
         unsigned method, pid_t tid, double by);

/* lbd_hold_marker_drop: removes, as h's client, the marker of h's own
 * process and thread beside l's lock file, when h is l's shared hold and
 * no rider of l has that marker: the artefact's reader rides on nothing,
 * so such a marker is left over (a grant to a rider, or a rider's join,
 * that a killed daemon did not finish) and would count as a live reader
 * for whoever judges the lock.  A step that fails is logged. */
void lbd_hold_marker_drop(struct lbd_lock *l, struct lbd_hold *h);

#endif
