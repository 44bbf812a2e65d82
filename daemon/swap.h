/*
 * swap.h: handoffs whose last step waits for the commit (swap.c, drawn
 * there): the artefact's name is replaced once the grant is recorded,
 * and the next holder's OK goes out right after.
 */
#ifndef LBD_SWAP_H
#define LBD_SWAP_H

#include "daemon.h"

/* lbd_swap_prepare: hands l's artefact from h (uninstalled, its names
 * made) to next (not installed) up to the last step, as next's user:
 * 0 with the last step owed to next (next->swap, in d->swaps: h is the
 * swap's until it is finished) or already done (next->swap NULL: the
 * caller removes h's traces and frees h); another code with err filled,
 * nothing changed. */
int  lbd_swap_prepare(struct lbd_hold *h, struct lbd_hold *next,
         struct lbd_creds *creds, struct lockfs_err *err);

/* lbd_swap_owe_release: c's RELEASE id ended the old holder of the
 * handoff to next (next->swap, its last step owed): its OK is owed until
 * the lock file is no longer the old holder's (the step taken, or the
 * step failed and the lock file released), so that nobody told of the
 * release finds its name there, or answered OK pending=1 once
 * release_wait is over with the step still refused for readers; owed to
 * nobody when c closes first, or
 * when the daemon stops with the step not taken (the releaser, its
 * connection lost, settles the lock file itself). */
void lbd_swap_owe_release(struct lbd_hold *next, struct lbd_conn *c,
         uint64_t id);

/* lbd_swap_answers_forget: c closes: the RELEASEs owed their answers by
 * handoffs (lbd_swap_owe_release) are owed to nobody. */
void lbd_swap_answers_forget(struct lbd_conn *c);

/* lbd_swap_finish: takes the last step of the handoff to h, if one is
 * owed (h may be NULL), also of one waiting for its lock file's readers:
 * finished (the old holder's traces go and it is freed) or failed. */
void lbd_swap_finish(struct lbd_hold *h);

/* lbd_swap_failed: whether the last step of the handoff to h failed (its
 * lock file still the old holder's): its grant is then refused, never
 * told (reply.c). */
int  lbd_swap_failed(const struct lbd_hold *h);

/* lbd_swap_waiting: whether the last step of the handoff to h was
 * refused for a reader's sake (EBUSY: another handle has the lock file
 * open, where renames cannot replace it then) and is tried again later:
 * its grant's OK stays owed meanwhile (reply.c). */
int  lbd_swap_waiting(const struct lbd_hold *h);

/* lbd_swaps_tidy: the old holders of the handoffs finished: their traces
 * removed, as their users, and they freed (after the iteration's
 * replies). */
void lbd_swaps_tidy(struct lbd *d);

/* lbd_swaps_finish: the same for every handoff still owed its last step
 * (the iteration's settle, its commit done, before its OKs), but one
 * refused for a reader's sake waits and is tried again (lbd_swap_waiting)
 * rather than failing. */
void lbd_swaps_finish(struct lbd *d);

/* lbd_swap_forget: the daemon stops: a handoff to h still owed its last
 * step takes it; one whose last step failed is forgotten, the lock file
 * left as it is for the next daemon. */
void lbd_swap_forget(struct lbd_hold *h);

#endif
