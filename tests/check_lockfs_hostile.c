/*
 * check_lockfs_hostile.c: lock directories others can write: hostile
 * files where artefacts go (symlinks, directories, garbage), artefacts and
 * sqlite rows forged under our unique name, and a foreign hot journal.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check_lockfs.h"
#include "testlockfs.h"

/* ------------------------------------------------------------------ */
/* Hostile files.                                                       */

/* A symlink planted where the link method's unique file goes is not
 * followed: no file is created or truncated through it. */
START_TEST(test_hostile_link_unique_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	char               buf[64];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_LINK, 0);
	tl_path_join(target, PATH_MAX, dir, "target");
	ck_assert_int_eq(symlink(target, l.unique), 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_msg(strstr(err.msg, l.unique) != NULL, "%s", err.msg);
	ck_assert(!tl_exists(target));
	ck_assert(!tl_exists(l.lock_file));

	/* An existing target keeps its contents. */
	tl_write_text(target, "precious\n");
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_int_eq(tl_read_text(target, buf, sizeof(buf)), 9);
	ck_assert_str_eq(buf, "precious\n");
	ck_assert(!tl_exists(l.lock_file));
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A unique file made that is not of the owner's uid (as on a file system
 * that does not make files of the file-system uid; here the owner names
 * another uid than the one we make files with) is never made the lock:
 * the look at the new file's owner bites, whether the file was made anew
 * or found left by an earlier try. */
START_TEST(test_hostile_link_unique_not_of_owner)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];
	int                round;

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_LINK, 0);
	l.owner.uid = l.owner.uid == 0 ? 1 : 0;
	for (round = 0; round < 2; round++) {   /* made anew, then found */
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
		ck_assert_msg(strstr(err.msg, "not a file of ours") != NULL,
		    "%s", err.msg);
		ck_assert(tl_exists(l.unique));
		ck_assert(!tl_exists(l.lock_file));
		lockfs_abandon(&l);     /* not ours: left where it is */
		ck_assert(tl_exists(l.unique));
	}
	ck_assert_int_eq(unlink(l.unique), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A file of the owner's own at its unique name that is not a fresh one
 * (a pid file's lock spelt so, with its pid in it; or one with another
 * name) is never made the lock: the release would remove it.  Both
 * stay as they are, and the lock is not taken. */
START_TEST(test_hostile_link_unique_not_fresh)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
	char               buf[64];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_LINK, 0);
	tl_write_text(l.unique, "4242\n");        /* a pid file's lock */
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert_msg(strstr(err.msg, "not a fresh one") != NULL, "%s",
	    err.msg);
	ck_assert(!tl_exists(l.lock_file));
	ck_assert_int_eq(tl_read_text(l.unique, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "4242\n");
	ck_assert_int_eq(unlink(l.unique), 0);
	tl_write_text(l.unique, "");               /* empty, two names */
	tl_path_join(other, PATH_MAX, dir, "other");
	ck_assert_int_eq(link(l.unique, other), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EFAILED);
	ck_assert(!tl_exists(l.lock_file));
	ck_assert(tl_exists(other));
	ck_assert_int_eq(unlink(other), 0);
	ck_assert_int_eq(unlink(l.unique), 0);
	/* A fresh one (a try before left it) is taken. */
	tl_write_text(l.unique, "");
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert(!tl_exists(l.unique));
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* PATH.lock a directory (the mkdir method's, or anyone's): the link
 * method sees it locked, never its own. */
START_TEST(test_hostile_link_lock_is_dir)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_LINK, 0);
	ck_assert_int_eq(mkdir(l.lock_file, 0755), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	lockfs_abandon(&l);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(tl_count(dir), 1);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A lock directory holding a directory beside its marker: a break by
 * any method refuses it and changes nothing (emptied half way, it could
 * be left without its marker). */
START_TEST(test_hostile_lock_dir_with_dir_break_refused)
{
	unsigned           methods[] = { LB_LINK, LB_SYMLINK, LB_MKDIR };
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], marker[PATH_MAX];
	char               sub[PATH_MAX];
	size_t             i;

	tl_place_in(dir, path, "res");
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		init_ok(&l, path, methods[i], 0);
		if (i == 0) {
			ck_assert_int_eq(mkdir(l.lock_file, 0755), 0);
			tl_path_join(marker, PATH_MAX, l.lock_file,
			    "elsewhere.4242");
			tl_write_text(marker, "");
			tl_path_join(sub, PATH_MAX, l.lock_file, "sub");
			ck_assert_int_eq(mkdir(sub, 0755), 0);
		}
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(lockfs_break_lock(&l, &err), LB_EUNLOCK);
		ck_assert_int_eq(err.code, LB_EUNLOCK);
		ck_assert_msg(tl_exists(marker), "%s: the marker went",
		    lockfs_method_name(methods[i]));
		ck_assert(tl_exists(sub));
		ck_assert_int_eq(tl_count(l.lock_file), 2);
		ck_assert_int_eq(tl_count(dir), 1);
		lockfs_fini(&l);
	}
	tl_place_remove(dir);
}
END_TEST

/* Another user's lock directory in a directory open to all (not sticky):
 * a break by a user who may move it but not empty it leaves it whole, in
 * place, and nothing beside it; refused at once where the directory may
 * not be written, put back where it may be written but its markers not
 * removed (sticky). */
START_TEST(test_hostile_lock_dir_break_cannot_empty)
{
	unsigned           methods[] = { LB_LINK, LB_SYMLINK, LB_MKDIR };
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], marker[PATH_MAX];
	size_t             i;

	if (geteuid() != 0) {
		printf("lock_dir_break_cannot_empty: " TL_SKIP "needs root\n");
		return;
	}
	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 0777), 0);
	init_ok(&l, path, LB_MKDIR, 0);
	ck_assert_int_eq(mkdir(l.lock_file, 0755), 0);
	tl_path_join(marker, PATH_MAX, l.lock_file, "elsewhere.4242");
	tl_write_text(marker, "");
	for (i = 0; i < 2 * sizeof(methods) / sizeof(methods[0]); i++) {
		if (i == sizeof(methods) / sizeof(methods[0]))
			ck_assert_int_eq(chmod(l.lock_file, 01777), 0);
		ck_assert_int_eq(step_in_child(path, methods[i % 3], STEP_BREAK,
		    1, &err), LB_EUNLOCK);
		ck_assert_msg(tl_exists(marker), "%s: the marker went",
		    lockfs_method_name(methods[i % 3]));
		ck_assert_int_eq(tl_count(l.lock_file), 1);
		ck_assert_int_eq(tl_count(dir), 1);
	}
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* An mkdir lock whose holder finds the next holder's marker beside its
 * own when it releases (a handoff that added it and did not get to remove
 * the old one): its marker goes, the lock stays, now the other's. */
START_TEST(test_mkdir_release_after_handoff_marker)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], next[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), 0);
	tl_path_join(next, PATH_MAX, l.lock_file, "otherhost.-00000001999");
	tl_write_text(next, "");
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert(!tl_exists(l.unique));
	ck_assert(tl_exists(next));
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A pidfile PATH that is a directory: locked; break_lock refuses it and
 * its contents survive. */
START_TEST(test_hostile_pidfile_is_dir)
{
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], inner[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_PIDFILE, 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	tl_path_join(inner, PATH_MAX, path, "data");
	tl_write_text(inner, "keep me\n");
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_break_lock(&l, &err), LB_EUNLOCK);
	ck_assert_int_eq(err.code, LB_EUNLOCK);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert(tl_exists(inner));
	ck_assert_int_eq(tl_count(path), 1);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A pid file holding garbage: locked by an unknown holder, not us. */
START_TEST(test_hostile_pidfile_garbage)
{
	struct lockfs_lock   l;
	struct lockfs_holder h;
	struct lockfs_err    err;
	char                 dir[PATH_MAX], path[PATH_MAX], buf[64];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_PIDFILE, 0);
	tl_write_text(path, "not a pid\n");
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_holder_liveness(&h), LB_HOLDER_UNKNOWN);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert_int_gt(tl_read_text(path, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "not a pid\n");
	/* Empty: the same. */
	tl_write_text(path, "");
	ck_assert_int_eq(lockfs_holder(&l, &h, &err), 1);
	ck_assert_int_eq(h.pid, 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_stale(&l, &err), 0);
	ck_assert(tl_exists(path));
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A pidfile PATH that is a symlink: never written through, and a break
 * removes the link, not its target. */
START_TEST(test_hostile_pidfile_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	char               buf[64];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_PIDFILE, 0);
	tl_path_join(target, PATH_MAX, dir, "target");
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	tl_write_text(target, buf);        /* even naming us */
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!tl_exists(path));
	ck_assert_int_gt(tl_read_text(target, buf, sizeof(buf)), 0);
	ck_assert_int_eq(atoi(buf), getpid());
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* A mkdir PATH.lock that is a symlink to a directory: not ours, and a break
 * removes the link, not the directory it points at. */
START_TEST(test_hostile_mkdir_lock_symlink)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
	char               inner[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	tl_path_join(other, PATH_MAX, dir, "other");
	ck_assert_int_eq(mkdir(other, 0755), 0);
	tl_path_join(inner, PATH_MAX, other, "data");
	tl_write_text(inner, "keep me\n");
	ck_assert_int_eq(symlink(other, l.lock_file), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert(!tl_exists(l.lock_file));
	ck_assert(tl_exists(inner));
	ck_assert_int_eq(tl_count(other), 1);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/*
 * A release looks at PATH.lock once, not followed, for whether it is
 * there and whether it is ours: a symlink there, even to a directory
 * holding a marker of ours, and a file there are not our lock (nothing
 * removed); a DIR that is a file holds no lock.
 */
START_TEST(test_hostile_mkdir_release_not_a_lock_dir)
{
	struct lockfs_lock l, under;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], other[PATH_MAX];
	char               inner[PATH_MAX], file[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_MKDIR, 0);
	tl_path_join(other, PATH_MAX, dir, "other");
	ck_assert_int_eq(mkdir(other, 0755), 0);
	tl_path_join(inner, PATH_MAX, other, strrchr(l.unique, '/') + 1);
	tl_write_text(inner, "");
	ck_assert_int_eq(symlink(other, l.lock_file), 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(err.code, LB_ENOTMINE);
	ck_assert(tl_exists(inner));
	ck_assert_int_eq(unlink(l.lock_file), 0);
	tl_write_text(l.lock_file, "");
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert(tl_exists(l.lock_file));
	ck_assert_int_eq(unlink(l.lock_file), 0);
	/* DIR is a file. */
	tl_path_join(file, PATH_MAX, dir, "file");
	tl_write_text(file, "");
	tl_path_join(path, PATH_MAX, file, "res");
	init_ok(&under, path, LB_MKDIR, 0);
	ck_assert_int_eq(lockfs_release(&under, &err), LB_ENOTLOCKED);
	ck_assert_int_eq(err.code, LB_ENOTLOCKED);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTLOCKED);
	lockfs_fini(&under);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* As nobody: takes the mkdir lock on path, makes its directory
 * unreadable (write and search only) and releases it. */
static void
unreadable_release_child(void *arg, char *why, size_t size)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	const char        *path = arg;

	TL_EXPECT(lockfs_init(&l, path, LB_MKDIR, 0, &err), 0);
	TL_EXPECT(lockfs_try_acquire(&l, &err), 0);
	TL_EXPECT(chmod(l.lock_file, 0300), 0);
	/* The premise: this process may not read it. */
	TL_EXPECT(open(l.lock_file, O_RDONLY | O_DIRECTORY) == -1 &&
	    errno == EACCES, 1);
	TL_EXPECT(lockfs_i_am_locking(&l, &err), 1);
	TL_EXPECT(lockfs_release(&l, &err), 0);
	TL_EXPECT(tl_exists(l.lock_file), 0);
	TL_EXPECT(lockfs_release(&l, &err), LB_ENOTLOCKED);
	lockfs_fini(&l);
}

/* A lock directory its owner may not read (only write and search) is
 * still released by its owner: in place, as it cannot be read to see
 * that it holds nothing but the marker.  Run as an unprivileged child
 * (root reads anything). */
START_TEST(test_mkdir_release_unreadable_lock_dir)
{
	char dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(tl_top, 0711), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	tl_in_child(TL_AS_NOBODY, unreadable_release_child, path);
	ck_assert_int_eq(tl_count(dir), 0);
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Forged artefacts: another user's, under our unique name.             */

/*
 * Plants l's artefact, carrying l's exact unique name (names are
 * predictable: host, pid, start time and boot id are public), as this
 * process's files; forged_give then makes them another user's, as if
 * that user had made them.
 */
static void
forged_plant(struct lockfs_lock *l)
{
	char text[32];

	switch (l->method) {
	case LB_LINK:
		tl_write_text(l->unique, "");
		ck_assert_int_eq(link(l->unique, l->lock_file), 0);
		break;
	case LB_SYMLINK:
		ck_assert_int_eq(symlink(l->unique, l->lock_file), 0);
		break;
	case LB_MKDIR:
		ck_assert_int_eq(mkdir(l->lock_file, 0777), 0);
		tl_write_text(l->unique, "");
		break;
	default:        /* LB_PIDFILE */
		snprintf(text, sizeof(text), "%ld\n", (long)getpid());
		tl_write_text(l->lock_file, text);
		break;
	}
}

/* Gives file (not followed) to uid. */
static void
give(const char *file, uid_t uid)
{
	ck_assert_msg(lchown(file, uid, (gid_t)-1) == 0, "lchown %s: %s",
	    file, strerror(errno));
}

/* Checks that l does not take the planted artefact for its own: not
 * "mine", not taken (held by another), not released, still there. */
static void
assert_forged_not_mine(struct lockfs_lock *l)
{
	struct lockfs_err err;
	int               r;

	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 0);
	r = lockfs_try_acquire(l, &err);
	/* link: the planted unique file is refused outright */
	ck_assert_msg(r == LB_EALREADY ||
	    (l->method == LB_LINK && r == LB_EFAILED),
	    "try_acquire of a forged %s artefact: %d %s",
	    lockfs_method_name(l->method), r, err.msg);
	lockfs_abandon(l);
	ck_assert_int_eq(lockfs_i_am_locking(l, &err), 0);
	ck_assert_int_eq(lockfs_release(l, &err), LB_ENOTMINE);
	ck_assert(tl_exists(l->lock_file));
}

/*
 * Regression: an artefact was judged ours by its name alone.  Another
 * user who may write the directory (a sticky /tmp) planted a link,
 * symlink, mkdir or pid-file artefact carrying our unique name: we took
 * the lock as ours (try_acquire 0, i_am_locking 1), and once the planter
 * removed its file a second owner got the lock too.  Now an artefact is
 * ours only when it is also a file of our uid (and, for link, our unique
 * file's inode; for mkdir, the directory and the marker both).  One of
 * our uid under our name still is ours.
 */
START_TEST(test_forged_artefact_not_mine)
{
	unsigned           method = tl_file_methods[_i];
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	if (geteuid() != 0)
		return;         /* only root can make another user's files */
	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, method, method == LB_PIDFILE ? 0 : 0x4242);
	forged_plant(&l);
	/* Of our uid: ours (a grant a dead daemon did not record). */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	switch (method) {
	case LB_LINK:
		give(l.unique, TL_NOBODY);         /* the one inode */
		break;
	case LB_MKDIR:
		give(l.unique, TL_NOBODY);
		give(l.lock_file, TL_NOBODY);
		break;
	default:
		give(l.lock_file, TL_NOBODY);
		break;
	}
	assert_forged_not_mine(&l);
	/* The planter removes its file: the lock is free for the next
	 * owner, and we never thought we held it. */
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	ck_assert_int_eq(step_in_child(path, method, STEP_TRY, 0, &err), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_break_lock(&l, &err), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/*
 * Regression (with test_forged_artefact_not_mine): the mkdir method's
 * lock is ours only when the directory and the marker are both ours.  A
 * directory of another user holding a marker of ours (a hard link of one
 * of our markers, where hard links to others' files are allowed) is that
 * user's to empty and remove; a marker of another's in our directory is
 * not ours either.
 */
START_TEST(test_forged_mkdir_halves)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	if (geteuid() != 0)
		return;
	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, LB_MKDIR, 0);
	forged_plant(&l);
	give(l.lock_file, TL_NOBODY);              /* theirs, our marker */
	assert_forged_not_mine(&l);
	give(l.lock_file, geteuid());
	give(l.unique, TL_NOBODY);                 /* ours, their marker */
	assert_forged_not_mine(&l);
	give(l.unique, geteuid());
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(artefacts_left(dir), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* Inserts (lock_file, unique) into the sqlite method's table in db,
 * making db and the table when needed. */
static void
sqlite_insert(const char *db, const char *lock_file, const char *unique)
{
	sqlite3      *h;
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TABLE IF NOT EXISTS locks ("
	    "lock_file varchar(32), unique_name varchar(32))", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "INSERT INTO locks VALUES "
	    "(?1, ?2)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, lock_file, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, unique, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/*
 * Regression: a sqlite row under our name was ours, whoever wrote it.  In
 * a database others may write, another user inserted a row with our
 * unique name: we took the lock as ours.  A row names no user, so now it
 * is ours only when we wrote it through this lock, or when the database
 * is a file of our uid that nobody else may write.
 */
START_TEST(test_forged_sqlite_row_not_mine)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX];

	tl_place_in(dir, path, "res");
	init_ok(&l, path, LB_SQLITE, 0x4242);
	sqlite_insert(l.db, l.lock_file, l.unique);
	ck_assert_int_eq(chmod(l.db, 0666), 0);         /* shared */
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 0);
	ck_assert_int_eq(lockfs_try_acquire(&l, &err), LB_EALREADY);
	ck_assert_msg(strstr(err.msg, l.db) != NULL, "%s", err.msg);
	ck_assert_int_eq(lockfs_release(&l, &err), LB_ENOTMINE);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 1);
	/* Only our uid can write it: the row is ours. */
	ck_assert_int_eq(chmod(l.db, 0644), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	/* In a shared database, what we wrote ourselves is ours. */
	ck_assert_int_eq(chmod(l.db, 0666), 0);
	acquire_ok(&l);
	acquire_ok(&l);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/*
 * Makes journal a hot rollback journal that puts back the pages of copy,
 * a copy of a lock database: a child writes to copy in a transaction big
 * enough to spill its pages (the originals go to copy's journal first)
 * and dies before it commits; its journal is then moved to journal.
 * Nothing in a journal names its database.
 */
static void
make_hot_journal(const char *copy, const char *journal)
{
	char    cj[PATH_MAX + 8];
	pid_t   kid;
	int     status;

	ck_assert_int_ne(kid = fork(), -1);
	if (kid == 0) {
		sqlite3 *h;
		int      i;

		if (sqlite3_open(copy, &h) != SQLITE_OK ||
		    sqlite3_exec(h, "PRAGMA cache_size=2; BEGIN; DELETE FROM "
		    "locks", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		for (i = 0; i < 200; i++)
			if (sqlite3_exec(h, "INSERT INTO locks VALUES "
			    "(hex(randomblob(500)), hex(randomblob(500)))",
			    NULL, NULL, NULL) != SQLITE_OK)
				_exit(1);
		_exit(0);       /* no COMMIT: the journal stays hot */
	}
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "journal maker failed");
	snprintf(cj, sizeof(cj), "%s-journal", copy);
	ck_assert_msg(tl_exists(cj), "no hot journal %s", cj);
	ck_assert_int_eq(rename(cj, journal), 0);
}

/*
 * Regression: a hot journal another user put beside a lock database was
 * rolled back into it by the next open: with a journal made from a copy of
 * the database taken before our row was there, our row vanished and a
 * second owner could take the lock.  Now a journal that is neither the
 * database owner's nor the opener's is refused, the step fails naming it,
 * and our row stays.  Our own hot journal (a crash of ours) is still
 * rolled back: shown with the same journal, which would have erased the
 * row.
 */
START_TEST(test_sqlite_foreign_journal_refused)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	char               dir[PATH_MAX], path[PATH_MAX], copy[PATH_MAX];
	char               journal[PATH_MAX];
	int                r;

	if (geteuid() != 0)
		return;
	tl_place_in(dir, path, "res");
	ck_assert_int_eq(chmod(dir, 01777), 0);
	init_ok(&l, path, LB_SQLITE, 0x4242);
	acquire_ok(&l);                 /* makes the database ... */
	ck_assert_int_eq(lockfs_release(&l, &err), 0);  /* ... empty */
	tl_path_join(copy, PATH_MAX, dir, "copy.sqlite");
	tl_copy_file(l.db, copy);
	acquire_ok(&l);
	snprintf(journal, sizeof(journal), "%s-journal", l.db);
	make_hot_journal(copy, journal);
	give(journal, TL_NOBODY);

	r = lockfs_i_am_locking(&l, &err);
	ck_assert_msg(r < 0, "a planted journal was used: %d %s", r, err.msg);
	ck_assert_msg(strstr(err.msg, journal) != NULL &&
	    strstr(err.msg, "uid 65534") != NULL,
	    "the message does not name the journal and its user: %s",
	    err.msg);
	ck_assert(tl_exists(journal));     /* not rolled back */
	ck_assert_int_eq(lockfs_is_locked(&l, &err), LB_ERROR);
	ck_assert_int_ne(lockfs_try_acquire(&l, &err), 0);

	/* The very journal, as ours: rolled back, and the row is gone. */
	give(journal, geteuid());
	ck_assert_int_eq(lockfs_is_locked(&l, &err), 0);
	ck_assert(!tl_exists(journal));

	/* A write-ahead log is never opened. */
	acquire_ok(&l);
	snprintf(journal, sizeof(journal), "%s-wal", l.db);
	tl_write_text(journal, "not a log\n");      /* sqlite ignores empty */
	r = lockfs_is_locked(&l, &err);
	ck_assert_msg(r < 0 && strstr(err.msg, journal) != NULL, "%d %s", r,
	    err.msg);
	ck_assert_int_eq(unlink(journal), 0);
	ck_assert_int_eq(lockfs_i_am_locking(&l, &err), 1);
	ck_assert_int_eq(lockfs_release(&l, &err), 0);
	lockfs_fini(&l);
	tl_place_remove(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The "hostile" test case. */
TCase *
lockfs_hostile_case(void)
{
	TCase *tc = tcase_create("hostile");

	tcase_add_test(tc, test_hostile_link_unique_symlink);
	tcase_add_test(tc, test_hostile_link_unique_not_of_owner);
	tcase_add_test(tc, test_hostile_link_unique_not_fresh);
	tcase_add_test(tc, test_hostile_link_lock_is_dir);
	tcase_add_test(tc, test_hostile_pidfile_is_dir);
	tcase_add_test(tc, test_mkdir_release_after_handoff_marker);
	tcase_add_test(tc, test_hostile_lock_dir_with_dir_break_refused);
	tcase_add_test(tc, test_hostile_lock_dir_break_cannot_empty);
	tcase_add_test(tc, test_hostile_pidfile_garbage);
	tcase_add_test(tc, test_hostile_pidfile_symlink);
	tcase_add_test(tc, test_hostile_mkdir_lock_symlink);
	tcase_add_test(tc, test_hostile_mkdir_release_not_a_lock_dir);
	tcase_add_test(tc, test_mkdir_release_unreadable_lock_dir);
	return tc;
}

/* The "forged" test case. */
TCase *
lockfs_forged_case(void)
{
	TCase *tc = tcase_create("forged");

	tcase_add_loop_test(tc, test_forged_artefact_not_mine, 0, TL_NFILE);
	tcase_add_test(tc, test_forged_mkdir_halves);
	tcase_add_test(tc, test_forged_sqlite_row_not_mine);
	tcase_add_test(tc, test_sqlite_foreign_journal_refused);
	return tc;
}
