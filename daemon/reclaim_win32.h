/*
 * reclaim_win32.h: the default state directory taken back on Windows
 * (reclaim_win32.c), for statedir_win32.c's lbd_statedir_reclaim: one
 * another user made first, or a link there, moved aside, and the
 * directory made at once with the daemon's own owner and DACL; one made
 * again by another user between the move and the making judged again
 * and moved again, a bounded number of times.  Windows only.
 */
#ifndef LBD_RECLAIM_WIN32_H
#define LBD_RECLAIM_WIN32_H

#include <stddef.h>

/* How many times a directory made again by others is moved aside
 * before the daemon gives up (the first move included). */
#define LBD_RECLAIM_MOVES 5

/* What a look at the directory found (lbd_reclaim_ops.look). */
enum lbd_reclaim_found {
	LBD_RECLAIM_ABSENT,     /* nothing at the name */
	LBD_RECLAIM_TRUSTED,    /* a directory whose owner is trusted
	                           (private_win32.h): the system, the
	                           administrators or the daemon's user */
	LBD_RECLAIM_OTHERS      /* another's, one the daemon may not even
	                           look at, or a link (*link set) */
};

/* The steps lbd_reclaim_dir takes that a test replaces: the look at the
 * directory (wine gives every file one owner, so only a stand-in shows
 * another user's), and a hook after each move aside (where a test plays
 * the user who makes the directory again). */
struct lbd_reclaim_ops {
	/* What dir is, opened as itself (a link at the name not followed);
	 * *link set to 1 for a link (a reparse point). */
	enum lbd_reclaim_found (*look)(const char *dir, int *link, void *arg);
	/* Called after dir was moved aside to aside (NULL: nothing). */
	void (*moved)(const char *dir, const char *aside, void *arg);
	void *arg;
};

/* The system's look (owner and reparse point read through a handle
 * opened as itself) and no hook: the daemon's. */
extern const struct lbd_reclaim_ops lbd_reclaim_system;

/*
 * lbd_reclaim_dir: the state directory dir, when ops->look finds it
 * another's or a link, moved aside (NAME.refused-STAMP-RANDOM in its
 * parent, left to be looked at), and made at once with a security
 * descriptor of the daemon's (lbd_private_sd_owned: its user the owner,
 * the private DACL), so that nobody else's directory can stand in its
 * place afterwards.  When the making finds the name taken again, the
 * new directory is judged again (ops->look): a trusted one's is taken
 * as it is, another's or a link moved aside again, up to
 * LBD_RECLAIM_MOVES moves in all; then the start is refused.  When
 * nothing is there, dir is made so at once too (its parent missing:
 * left for the caller to make, with its parents).  A trusted one's
 * directory found first is left as it is (its DACL is for
 * lbd_statedir_judge).  0 when dir is now the daemon's or a trusted
 * one's (moved then says what was moved where, else it is empty); -1
 * with why naming dir and the reason: moved LBD_RECLAIM_MOVES times
 * and made again each time, or a move or the making failed.  moved
 * and why are size bytes each.  Blocks on the file system only.
 */
int lbd_reclaim_dir(const char *dir, const struct lbd_reclaim_ops *ops,
    char *moved, char *why, size_t size);

#endif
