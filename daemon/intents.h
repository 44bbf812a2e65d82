/*
 * intents.h: the grants the daemon is about to make, noted before their
 * artefacts are, for a restarted daemon to find the artefacts of grants
 * it made and never recorded (see intents.c).
 */
#ifndef LBD_INTENTS_H
#define LBD_INTENTS_H

#include "daemon.h"

/* lbd_intents_open: opens (creating, 0600) the intents file beside the
 * state database and records, in the state database, every grant noted
 * there that it does not record, for reconcile to judge.  0, or -1 with
 * why filled.  Before lbd_reconcile. */
int  lbd_intents_open(struct lbd *d, char *why, size_t size);

/* lbd_intents_clear: reconcile has judged what the file held and its
 * outcome is committed: the file is emptied. */
void lbd_intents_clear(struct lbd *d);

/* lbd_intent_note: notes that h's artefact is about to be made (h not yet
 * installed, its token and lock directory known); with handoff, that the
 * lock is about to be handed to h in place, before the commit (the sqlite
 * method: see intents.c).  0 (also when the file cannot be written:
 * logged once; the commit that follows, which a full file system fails
 * too, then refuses the grant), or LB_ENOMEM with err filled. */
int  lbd_intent_note(struct lbd *d, const struct lbd_hold *h, int handoff,
         struct lockfs_err *err);

/* lbd_intent_undo: the artefact of the grant noted last was not made (the
 * lock held, or a failure): its note is taken back, so that the next
 * daemon never judges a lock held by someone else as that grant's. */
void lbd_intent_undo(struct lbd *d);

/* lbd_intents_covered: the state database has committed every hold
 * installed so far: the notes written until now are no longer needed:
 * hidden (an end mark at the start), and the next written over them.
 * When the state database was made anew since (a new generation:
 * store.c), the intents file is too, if it went with it. */
void lbd_intents_covered(struct lbd *d);

/* lbd_intents_close: closes the file, emptied when every note in it was
 * committed; else it stays as it is, for the next daemon. */
void lbd_intents_close(struct lbd *d);

#endif
