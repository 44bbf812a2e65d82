/*
 * handoff.c: locks held on behalf of other processes, and passing a held
 * lock from one owner to the next without ever letting go of it.  The
 * daemon takes a lock for a client (lockfs_init_for, with an owner from
 * lockfs_owner_of_pid) and, when the holder releases or goes away, gives it
 * straight to the first waiter (lockfs_handoff).
 *
 * Why nobody can slip in.  Every party, Python's lockfile included, takes a
 * free lock only by creating its artefact exclusively (link(2), symlink(2),
 * mkdir(2) and open(O_EXCL) fail with EEXIST while the name exists), and
 * sees it as held while the name exists.  So a handoff never removes the
 * artefact's name; it changes, in one step, what the name is:
 *
 *   link     the next holder's unique file is made and hard-linked to a
 *            temporary name beside the lock, and that is renamed over
 *            PATH.lock.  rename(2) replaces an existing name "atomically,
 *            so that there is no point at which another process attempting
 *            to access newpath will find it missing".  Then the old
 *            holder's unique file, now the last name of the old inode and
 *            so no lock, is removed.  (rename(2) of one name of an inode
 *            over another name of the same inode does nothing; the two
 *            inodes here always differ: the new unique file is checked to
 *            be a fresh file with one link.)
 *   symlink  a symlink to the next unique name, at a temporary name, is
 *            renamed over PATH.lock.
 *   pidfile  a temporary file already holding the next pid is renamed over
 *            PATH, so no reader sees PATH missing, nor empty.
 *   mkdir    the directory PATH.lock stays; the next holder's marker is
 *            made in it before the old one is removed.  For that instant
 *            both markers are there: both owners would say they hold it,
 *            but nobody else can take it.  Only between owners of one uid:
 *            a directory is its owner's to empty, so a lock is nobody's in
 *            another user's directory (mkdir.c), and a handoff to another
 *            user fails (the daemon then releases, and the next holder
 *            takes the lock anew).
 *   sqlite   one IMMEDIATE transaction rewrites the row's unique_name, and
 *            only when it still names the old holder.
 *
 * Temporaries are named .lockbroker-handoff.NAME beside the lock (NAME: the
 * next holder's unique base name, or its pid for pidfile), which no party
 * ever takes for a lock or a unique name; they are made exclusively, never
 * through a symlink.
 *
 * Who could still interfere.  Checking that `from` holds the lock and
 * replacing the artefact are two steps; a lock removed between them and
 * taken by a third party would be overwritten.  Everything in lockbroker
 * that removes another's lock (lockfs_break_stale) takes the lock of the
 * lock's directory (os.h: lockfs_dirlock_try, flock(2) on Unix), and a
 * handoff holds it across both steps, so neither can come between the
 * other's; so does the daemon's release of a lock whose holder it acted
 * for (daemon/hold.c, hold_release), whose holder may be dead, and so
 * fair game for a breaker, between its check and its unlink.  Only an
 * unconditional break_lock (Python's, or lb_break_lock)
 * still can: breaking a lock that is in use is unsafe with or without
 * handoffs.  Handoffs in one directory are
 * serialised by the same lock, so a temporary found at our name, or (mkdir)
 * a marker of the next holder's already in the lock, is the leftover of a
 * handoff that died half way: the temporary is removed, the marker used.
 * The directory's lock is waited for at most lockfs_handoff_wait's
 * seconds (0.2; the daemon: not at all): anyone who can read the
 * directory can take it, and must not stall the daemon.
 *
 * Failing half way.  Until the rename (the new marker; the commit) nothing
 * the old holder has is touched: a failure removes what was made and
 * leaves `from` holding the lock.  After it, `to` holds the lock; what is
 * left is undone on failure (mkdir: the new marker goes again) or is only
 * tidying (link: a unique file with one link is no lock).
 *
 * In two steps.  lockfs_handoff_prepare does everything that can fail for
 * want of permission or room, and keeps the directory's lock;
 * lockfs_handoff_finish takes the last step, which only replaces a name
 * (the rename; mkdir: the old marker removed).  Between the two the lock is
 * `from`'s on disk and no breaker acts, so the daemon records `to` in
 * between (daemon/swap.c).  A process that dies between them leaves `to`'s
 * artefact at its temporary name; lockfs_handoff_resume finishes such a
 * handoff, when the caller recorded `to` and the lock is still
 * `from`'s.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "lockfs.h"

#define HANDOFF_PREFIX  ".lockbroker-handoff."

static double dir_wait_s = 0.2; /* for the directory's lock: short */

/*
 * lockfs_handoff_wait: sets, for the whole process, how long a handoff
 * waits for its directory's lock while another holds it (seconds; 0: one
 * try).  The daemon, which serves everyone from one thread, sets 0: anyone
 * who can read a directory can hold its lock for good, and each handoff
 * there would stall everyone else for the wait.  Call before any handoff.
 */
void
lockfs_handoff_wait(double s)
{
	dir_wait_s = s;
}

/*
 * lockfs_init_for: lockfs_init for the lock on path held by *owner (filled
 * by the caller, usually with lockfs_owner_of_pid) instead of this process;
 * the pidfile method drops owner's thread, as lockfs_init does.  Allocates
 * l's strings (freed by lockfs_fini).  Returns 0, or LB_EINVAL (bad path,
 * method or owner; owner may not be NULL), LB_ENOMEM or LB_EFAILED (as
 * lockfs_init), with err filled.
 * Does not block.
 */
int
lockfs_init_for(struct lockfs_lock *l, const char *path, unsigned method,
    const struct lockfs_owner *owner, struct lockfs_err *err)
{
	int r;

	if (owner == NULL || owner->pid <= 0 || owner->tid < 0 ||
	    owner->host[0] == '\0' ||
	    memchr(owner->host, '\0', sizeof(owner->host)) == NULL ||
	    strchr(owner->host, '/') != NULL ||
	    memchr(owner->boot, '\0', sizeof(owner->boot)) == NULL) {
		memset(l, 0, sizeof(*l));
		errno = EINVAL;
		r = lockfs_fail(err, LB_EINVAL, 0, "lock on %s: no valid owner",
		    path != NULL ? path : "(null)");
		goto out;
	}
	r = lockfs_init_as(l, path, method, 0, owner, err);
out:
	return r;
}

/* Whether from and to are handles on one lock; 0, or LB_EINVAL. */
static int
check_same_lock(const struct lockfs_lock *from, const struct lockfs_lock *to,
    struct lockfs_err *err)
{
	if (from == NULL || to == NULL || from->lock_file == NULL ||
	    to->lock_file == NULL) {
		errno = EINVAL;
		return lockfs_fail(err, LB_EINVAL, 0, "handoff of an "
		    "uninitialised lock");
	}
	if (from->method != to->method ||
	    strcmp(from->lock_file, to->lock_file) != 0 ||
	    (from->method == LB_SQLITE && strcmp(from->db, to->db) != 0)) {
		errno = EINVAL;
		return lockfs_fail(err, LB_EINVAL, 0, "cannot hand %s (%s) "
		    "over as %s (%s): not the same lock", from->path,
		    lockfs_method_name(from->method), to->path,
		    lockfs_method_name(to->method));
	}
	return 0;
}

/* Whether from and to are one owner, to whom there is nothing to hand. */
static int
same_owner(const struct lockfs_lock *from, const struct lockfs_lock *to)
{
	if (from->method == LB_PIDFILE)
		return from->owner.pid == to->owner.pid;
	return strcmp(from->unique, to->unique) == 0;
}

/*
 * Takes the lock of l's directory into *dl: 0, or LB_EFAILED.  Breakers
 * and handoffs hold it for a few system calls, so it polls (never
 * blocking, with a growing pause) for up to wait seconds.
 */
static int
lock_directory_for(const struct lockfs_lock *l, double wait,
    struct lockfs_dirlock *dl, struct lockfs_err *err)
{
	struct timespec pause = { 0, 100000 };  /* 0.1 ms, up to 10 ms */
	double          deadline = lockfs_now() + wait;
	int             r = 0;

	if (lockfs_dirlock_open(dl, l->dir) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot open directory %s", l->path, l->dir);
		goto out;
	}
	while (lockfs_dirlock_try(dl) == -1) {
		if (errno != EWOULDBLOCK || lockfs_now() >= deadline) {
			r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s "
			    "over: cannot lock directory %s", l->path, l->dir);
			lockfs_dirlock_close(dl);
			goto out;
		}
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 10000000)
			pause.tv_nsec *= 2;
	}
out:
	return r;
}

/* Takes the lock of l's directory into *dl, waiting for it up to
 * lockfs_handoff_wait's seconds (see the top of this file): 0, or
 * LB_EFAILED. */
static int
lock_directory(const struct lockfs_lock *l, struct lockfs_dirlock *dl,
    struct lockfs_err *err)
{
	return lock_directory_for(l, dir_wait_s, dl, err);
}

/* lockfs_handoff_exclude: see lockfs.h. */
int
lockfs_handoff_exclude(const struct lockfs_lock *l, double wait,
    struct lockfs_dirlock *dl, struct lockfs_err *err)
{
	return lock_directory_for(l, wait, dl, err);
}

/* Writes the name beside the lock under which to's artefact is made before
 * it is renamed into place: 0, or LB_EFAILED (too long). */
static int
tmp_name(const struct lockfs_lock *to, char *out, size_t size,
    struct lockfs_err *err)
{
	const char *base = strrchr(to->unique, '/');
	char        name[LOCKFS_FS_NAME_MAX + 2];
	int         n, r = 0;

	base = base == NULL ? to->unique : base + 1;
	if (to->method == LB_PIDFILE)
		n = snprintf(name, sizeof(name), HANDOFF_PREFIX "%ld",
		    (long)to->owner.pid);
	else
		n = snprintf(name, sizeof(name), HANDOFF_PREFIX "%s", base);
	if (n > 0 && n <= LOCKFS_FS_NAME_MAX)
		n = snprintf(out, size, "%s%s%s", to->dir,
		    strcmp(to->dir, "/") == 0 ? "" : "/", name);
	if (n < 0 || n > LOCKFS_FS_NAME_MAX || (size_t)n >= size)
		r = lockfs_fail(err, LB_EFAILED, ENAMETOOLONG, "cannot hand "
		    "%s over: temporary name for %s", to->path, name);
	return r;
}

/* Creates file exclusively, holding "PID\n"; 0, or -1 with errno (and
 * nothing left behind). */
static int
write_pid_file(const char *file, pid_t pid)
{
	char buf[32];
	int  fd, len, r = 0, saved;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, file, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL);
	if (fd == -1)
		return -1;
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	errno = 0;
	if (lockfs_fs_write(fd, buf, (size_t)len) != len) {
		if (errno == 0)
			errno = ENOSPC;
		r = -1;
	}
	saved = errno;
	if (lockfs_fs_close_written(fd) == -1 && r == 0) {
		saved = errno;
		r = -1;
	}
	if (r == -1)
		lockfs_fs_unlink(file);
	errno = saved;
	return r;
}

/* Makes to's artefact at tmp in its method's form; 0, or -1 with errno. */
static int
make_artefact_at(const struct lockfs_lock *to, const char *tmp)
{
	switch (to->method) {
	case LB_LINK:
		return lockfs_fs_link(to->unique, tmp);
	case LB_SYMLINK:
		return lockfs_fs_symlink(to->unique, tmp);
	default:        /* LB_PIDFILE */
		return write_pid_file(tmp, to->owner.pid);
	}
}

/* Makes to's artefact at tmp, removing the leftover of a handoff that died
 * half way first when one is there: 0, or LB_EFAILED. */
static int
make_tmp(const struct lockfs_lock *to, const char *tmp,
    struct lockfs_err *err)
{
	int r = 0;

	if (make_artefact_at(to, tmp) == 0)
		goto out;
	if (errno != EEXIST) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot create %s", to->path, tmp);
		goto out;
	}
	/* Ours, and no other handoff's: we hold the directory's lock. */
	if (lockfs_fs_unlink(tmp) == -1 && errno != ENOENT) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot remove the leftover %s", to->path, tmp);
		goto out;
	}
	if (make_artefact_at(to, tmp) == -1)
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot create %s", to->path, tmp);
out:
	return r;
}

/* Makes to's unique file for the link method: a regular file of to's uid
 * with no other name (another user's file planted at to's predictable
 * name would make the lock theirs to remove).  0, or LB_EFAILED.  *made
 * says whether it is there, to's, to be removed on failure. */
static int
make_link_unique(const struct lockfs_lock *to, int *made,
    struct lockfs_err *err)
{
	struct lockfs_fs_info fi;
	int                   fd, r = 0;

	*made = 0;
	fd = -1;
	/* Made as a regular file without opening it, never following or
	 * reusing what is at the name (lockfs_fs_make_at); a taken name
	 * (litter, or something planted) is opened instead, never blocking:
	 * a FIFO planted there must not hang us. */
	if (lockfs_fs_make_at(LOCKFS_FS_CWD, to->unique, 0644) == 0)
		r = lockfs_fs_info_at(LOCKFS_FS_CWD, to->unique, 0, &fi);
	else if ((fd = lockfs_fs_open(LOCKFS_FS_CWD, to->unique,
	    LOCKFS_FS_WRITE | LOCKFS_FS_CREATE | LOCKFS_FS_NONBLOCK)) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot create %s", to->path, to->unique);
		goto out;
	} else
		r = lockfs_fs_info(fd, &fi);
	*made = 1;
	if (r == -1)
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot look at %s", to->path, to->unique);
	else if ((*made = fi.uid == to->owner.uid) == 0)
		r = lockfs_fail(err, LB_EFAILED, EEXIST, "cannot hand %s "
		    "over: %s is a file of uid %ld, not of the next holder's",
		    to->path, to->unique, (long)fi.uid);
	else if (fi.type != LOCKFS_FS_FILE || fi.nlink != 1 || fi.size != 0)
		r = lockfs_fail(err, LB_EFAILED, EEXIST, "cannot hand %s "
		    "over: %s is not a fresh file", to->path, to->unique);
	lockfs_fs_close(fd);
out:
	return r;
}

/*
 * Makes to's unique file for the link method and its temporary name in one
 * go, the temporary first: a fresh file of to's at tmp, then linked at
 * to->unique.  A daemon killed between the two leaves a temporary alone,
 * which lockfs_handoff_tidy removes; the other order would leave a unique
 * file no temporary names, which nobody would ever remove.  0 when both
 * are made (the file to's, with those two names); 1 when it cannot be
 * done so (the unique name taken: litter of to's, or planted; or no
 * such file can be made here), with nothing left: the caller then takes
 * the other order (make_link_unique, make_tmp), which reuses a fresh file
 * of to's at the name and says what is wrong.
 */
static int
make_link_pair(const struct lockfs_lock *to, const char *tmp)
{
	struct lockfs_fs_info fi;
	int                   r = 1;

	if (lockfs_fs_make_at(LOCKFS_FS_CWD, tmp, 0644) == -1)
		goto out;
	if (lockfs_fs_link(tmp, to->unique) == -1) {
		lockfs_fs_unlink(tmp);
		goto out;
	}
	/* Still the file made (nobody put another at tmp between). */
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, to->unique, 0, &fi) == 0 &&
	    fi.type == LOCKFS_FS_FILE && fi.nlink == 2 &&
	    fi.uid == to->owner.uid)
		r = 0;
	else {
		lockfs_fs_unlink(to->unique);
		lockfs_fs_unlink(tmp);
	}
out:
	return r;
}

/*
 * Whether the rename of to's artefact over the lock file can fail for
 * want of permission where making it succeeded: in a sticky directory
 * (/tmp) only the owner of the file renamed over, of the directory, or a
 * process that may override (to's fsuid 0) may replace a name.  The lock
 * file is the old holder's (of from_uid); dir is the directory as looked
 * at through its descriptor.  0 when it can go ahead, or LB_EFAILED,
 * before anything is made.
 */
static int
rename_allowed(const struct lockfs_lock *to, const struct lockfs_fs_info *dir,
    uid_t from_uid, struct lockfs_err *err)
{
	if ((dir->perm & LOCKFS_FS_STICKY) == 0 ||
	    from_uid == to->owner.uid || dir->uid == to->owner.uid ||
	    to->owner.uid == 0)
		return 0;
	return lockfs_fail(err, LB_EFAILED, EPERM, "cannot hand %s over: "
	    "%s is sticky, and %s is uid %ld's", to->path, to->dir,
	    to->lock_file, (long)from_uid);
}

/*
 * The link, symlink and pidfile methods, up to the last step: to's
 * artefact at a temporary name beside the lock (s->tmp), for
 * lockfs_handoff_finish to rename over the lock file.  0, or LB_EFAILED
 * with nothing changed.
 */
static int
prepare_by_rename(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_swap *s, const struct lockfs_fs_info *dir,
    struct lockfs_err *err)
{
	char tmp[PATH_MAX];
	int  made_unique = 0, made_tmp = 0, r, saved;

	if ((r = tmp_name(to, tmp, sizeof(tmp), err)) != 0 ||
	    (r = rename_allowed(to, dir, from->owner.uid, err)) != 0)
		goto out;
	if (to->method == LB_LINK && make_link_pair(to, tmp) == 0)
		made_unique = 1;
	else {
		if (to->method == LB_LINK &&
		    (r = make_link_unique(to, &made_unique, err)) != 0)
			goto out;
		if ((r = make_tmp(to, tmp, err)) != 0)
			goto out;
	}
	made_tmp = 1;
	if ((s->tmp = strdup(tmp)) == NULL ||
	    (s->lock_file = strdup(to->lock_file)) == NULL ||
	    (made_unique && (s->made = strdup(to->unique)) == NULL)) {
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "cannot hand %s over",
		    to->path);
		goto out;
	}
	made_tmp = made_unique = 0;     /* s's now */
out:
	saved = errno;
	if (made_tmp)
		lockfs_fs_unlink(tmp);
	if (made_unique)
		lockfs_fs_unlink(to->unique);
	errno = saved;
	return r;
}

/* The mkdir method, up to the last step: to's marker in (from's goes out
 * in lockfs_handoff_finish: s->from_marker).  A marker of to's already
 * there (a handoff that died between the two) is taken as made here.  0,
 * or LB_EFAILED with nothing of from's changed. */
static int
prepare_mkdir(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_swap *s, struct lockfs_err *err)
{
	struct lockfs_fs_info fi;
	int                   dfd, fd = -1, made = 0, r = 0, saved;

	/* Through a descriptor of the lock directory: a symlink swapped in
	 * for it is not followed.  Never blocking: a FIFO planted at the
	 * marker's name must not hang us. */
	dfd = lockfs_fs_open(LOCKFS_FS_CWD, to->lock_file, LOCKFS_FS_DIR);
	/* A lock is never anyone's in another user's directory (mkdir.c),
	 * so the marker goes in only where the directory is to's. */
	if (dfd != -1 && lockfs_fs_info(dfd, &fi) == 0 &&
	    fi.uid != to->owner.uid) {
		r = lockfs_fail(err, LB_EFAILED, EPERM, "cannot hand %s over: "
		    "%s is a directory of uid %ld, not of the next holder's "
		    "uid %ld", to->path, to->lock_file, (long)fi.uid,
		    (long)to->owner.uid);
		lockfs_fs_close(dfd);
		goto out;
	}
	if (dfd != -1) {
		fd = lockfs_fs_open(dfd, strrchr(to->unique, '/') + 1,
		    LOCKFS_FS_WRITE | LOCKFS_FS_CREATE | LOCKFS_FS_NONBLOCK);
		saved = errno;
		s->marker_dir = dfd;    /* the finish removes from's there */
		errno = saved;
	}
	if (fd == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot create %s", to->path, to->unique);
		goto out;
	}
	made = 1;
	if (lockfs_fs_info(fd, &fi) == -1)
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot look at %s", to->path, to->unique);
	else if ((made = fi.uid == to->owner.uid) == 0)
		r = lockfs_fail(err, LB_EFAILED, EEXIST, "cannot hand %s "
		    "over: %s is a file of uid %ld, not of the next holder's",
		    to->path, to->unique, (long)fi.uid);
	else if (fi.type != LOCKFS_FS_FILE)
		r = lockfs_fail(err, LB_EFAILED, EEXIST, "cannot hand %s "
		    "over: %s is not a marker", to->path, to->unique);
	else if ((s->from_marker = strdup(from->unique)) == NULL ||
	    (s->made = strdup(to->unique)) == NULL)
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "cannot hand %s over",
		    to->path);
out:
	saved = errno;
	lockfs_fs_close(fd);
	if (r != 0 && made)
		lockfs_fs_unlink(to->unique);
	errno = saved;
	return r;
}

/* The identity of the file fi describes (struct lockfs_file_id). */
static void
file_id_of(const struct lockfs_fs_info *fi, struct lockfs_file_id *id)
{
	id->dev = fi->dev;
	id->ino = fi->ino;
	id->ctime_ns = fi->ctime.sec * 1000000000LL + fi->ctime.nsec;
}

/* Frees what s keeps, closing its directory (which drops its lock). */
static void
swap_free(struct lockfs_swap *s)
{
	lockfs_fs_close(s->marker_dir);   /* keeps errno */
	s->marker_dir = -1;
	lockfs_dirlock_close(&s->dl);
	free(s->tmp);
	free(s->lock_file);
	free(s->made);
	free(s->from_marker);
	s->tmp = s->lock_file = s->made = s->from_marker = NULL;
	s->pending = 0;
}

/*
 * lockfs_handoff_prepare: every step of passing the lock that `from`
 * holds to `to` but the last, which lockfs_handoff_finish takes: see the
 * top of this file.  What can fail for want of permission or room is done
 * here (the directory's lock taken and kept in *s, `to`'s artefact made
 * beside the lock); the last step only replaces a name (rename(2) over
 * the lock file, or from's marker removed), so that a caller may tell
 * `to` it holds the lock between the two: the lock is held all along,
 * named `from`'s until the finish, and no breaker acts meanwhile.  0 with
 * *s to finish (s->pending; 0 when nothing is left to do: one owner, or
 * the sqlite method, whose one transaction is done here); LB_EINVAL
 * (not the same lock), LB_ENOTMINE (from does not hold it), LB_EFAILED
 * (it cannot be handed over, also when the directory's lock stays taken:
 * lockfs_handoff_wait), LB_ENOMEM, with err filled and nothing changed.
 * Run with to's owner's credentials.  Blocks as lockfs_handoff says.
 */
int
lockfs_handoff_prepare(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_swap *s, struct lockfs_err *err)
{
	struct lockfs_fs_info dir, fi;
	int                   r;

	memset(s, 0, sizeof(*s));
	s->dl.fd = -1;
	s->marker_dir = -1;
	if ((r = check_same_lock(from, to, err)) != 0)
		goto out;
	if (from->method != LB_SQLITE &&
	    (r = lock_directory(from, &s->dl, err)) != 0)
		goto out;
	if (from->method != LB_SQLITE &&
	    lockfs_fs_info(s->dl.fd, &dir) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s over: "
		    "cannot look at directory %s", to->path, to->dir);
		goto out;
	}
	if (from->method != LB_SQLITE) {
		s->dir_dev = dir.dev;
		s->dir_ino = dir.ino;
	}
	if ((r = lockfs_i_am_locking(from, err)) < 0) {
		r = LB_EFAILED;         /* the query's reason stands */
		if (err != NULL)
			err->code = r;
		goto out;
	}
	if (r == 0) {
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is not locked by the "
		    "owner handing it over", from->path);
		goto out;
	}
	r = 0;
	if (same_owner(from, to))
		goto out;
	/* The old holder's lock file, as it is now: a restart finishes the
	 * handoff only over this very file (lockfs_handoff_resume), never
	 * over one its owner made anew since under the same name. */
	if (from->method != LB_SQLITE) {
		if (lockfs_fs_info_at(s->dl.fd, strrchr(from->lock_file, '/') +
		    1, 0, &fi) == -1) {
			r = lockfs_fail(err, LB_EFAILED, errno, "cannot hand %s "
			    "over: cannot look at %s", to->path,
			    from->lock_file);
			goto out;
		}
		file_id_of(&fi, &s->from_id);
	}
	switch (from->method) {
	case LB_MKDIR:
		r = prepare_mkdir(from, to, s, err);
		break;
	case LB_SQLITE:
		r = lockfs_handoff_sqlite(from, to, err);
		break;
	default:
		r = prepare_by_rename(from, to, s, &dir, err);
		break;
	}
	s->pending = r == 0 && from->method != LB_SQLITE;
out:
	if (!s->pending)
		swap_free(s);   /* keeps errno */
	return r;
}

/*
 * lockfs_handoff_finish: the last step of the handoff s prepared
 * (lockfs_handoff_prepare): to's artefact renamed over the lock file, or
 * (mkdir) from's marker removed; then the directory's lock is dropped and
 * s emptied.  0 (also when s has nothing pending), or LB_EFAILED with err
 * filled: the lock is still from's on disk (held all the same), to's
 * artefact still beside it, and s kept pending, to finish again later or
 * cancel (errno EBUSY: another handle has the lock file open, which
 * Windows' renames that replace refuse, fs.h: a reader's, for a few
 * calls; again soon is likely to succeed).  Run with to's owner's
 * credentials.  Does not block.
 */
int
lockfs_handoff_finish(struct lockfs_swap *s, struct lockfs_err *err)
{
	int r = 0;

	if (!s->pending)
		return 0;
	/* Through the descriptors opened when it was prepared: a directory
	 * swapped on the path since is never acted in. */
	if (s->from_marker != NULL) {
		if (lockfs_fs_unlink_at(s->marker_dir,
		    strrchr(s->from_marker, '/') + 1) == -1 &&
		    errno != ENOENT) {
			r = lockfs_fail(err, LB_EFAILED, errno, "cannot finish "
			    "a handoff: cannot remove %s", s->from_marker);
			goto out;
		}
	} else if (lockfs_fs_rename_at(s->dl.fd, strrchr(s->tmp, '/') + 1,
	    strrchr(s->lock_file, '/') + 1) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot finish a "
		    "handoff: cannot rename %s to %s", s->tmp, s->lock_file);
		goto out;
	}
	/* The old lock's last name (link) is from's: its owner removes it
	 * (lockfs_abandon), with its own credentials. */
	swap_free(s);
out:
	return r;
}

/*
 * lockfs_handoff_cancel: undoes the handoff s prepared and did not finish:
 * to's artefact beside the lock goes (its unique file too, when the
 * preparation made it), the directory's lock is dropped, s emptied; the
 * lock stays from's.  Run with to's owner's credentials.
 */
void
lockfs_handoff_cancel(struct lockfs_swap *s)
{
	int saved = errno;

	if (s->pending) {
		if (s->tmp != NULL)
			lockfs_fs_unlink(s->tmp);
		if (s->made != NULL)
			lockfs_fs_unlink(s->made);
	}
	swap_free(s);
	errno = saved;
}

/*
 * lockfs_handoff: passes the lock that `from` holds to `to` (both
 * initialised for the same path and method, with lockfs_init or
 * lockfs_init_for), so that the lock is held at every instant: see the top
 * of this file; lockfs_handoff_prepare then lockfs_handoff_finish.
 * Afterwards `to` holds it, and from's traces are for lockfs_abandon.
 * Returns 0 (also when from and to are one owner: nothing to do);
 * LB_EINVAL when they are not handles on one lock; LB_ENOTMINE when
 * `from` does not hold it (nothing changed); LB_EFAILED when it cannot be
 * handed over (`from` still holds it, temporaries removed), also when the
 * directory's lock stays taken (lockfs_handoff_wait).  err says why.
 * Blocks while a breaker or another handoff in the directory holds its
 * lock (up to lockfs_handoff_wait), while the last step is refused for
 * a reader's sake (EBUSY: Windows replaces no name another handle has
 * open; up to lockfs_handoff_wait again), and, for sqlite, on a busy
 * database (as long as a release: lockfs_sqlite_step_ms).
 */
int
lockfs_handoff(struct lockfs_lock *from, struct lockfs_lock *to,
    struct lockfs_err *err)
{
	struct timespec    pause = { 0, 100000 };  /* 0.1 ms, up to 10 ms */
	struct lockfs_swap s;
	double             deadline;
	int                r;

	if ((r = lockfs_handoff_prepare(from, to, &s, err)) != 0)
		goto out;
	deadline = lockfs_now() + dir_wait_s;
	while ((r = lockfs_handoff_finish(&s, err)) != 0 && errno == EBUSY &&
	    lockfs_now() < deadline) {
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 10000000)
			pause.tv_nsec *= 2;
	}
	if (r != 0)
		lockfs_handoff_cancel(&s);
out:
	return r;
}

/* Whether the file at tmp is to's artefact as a handoff prepares it
 * (make_artefact_at): a name of to's unique file (link), a symbolic link
 * to it (symlink), a pid file holding to's pid (pidfile); of to's uid. */
static int
tmp_is_tos(const struct lockfs_lock *to, const char *tmp)
{
	struct lockfs_fs_info fi, ufi;
	char                  buf[PATH_MAX];
	ssize_t               n;
	int                   fd;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, tmp, 0, &fi) == -1 ||
	    fi.uid != to->owner.uid)
		return 0;
	switch (to->method) {
	case LB_LINK:
		return fi.type == LOCKFS_FS_FILE &&
		    lockfs_fs_info_at(LOCKFS_FS_CWD, to->unique, 0,
		    &ufi) == 0 && ufi.dev == fi.dev && ufi.ino == fi.ino;
	case LB_SYMLINK:
		n = lockfs_fs_readlink_at(LOCKFS_FS_CWD, tmp, buf,
		    sizeof(buf));
		if (fi.type != LOCKFS_FS_SYMLINK || n < 0)
			return 0;
		return strcmp(buf, to->unique) == 0;
	case LB_PIDFILE:
		if (fi.type != LOCKFS_FS_FILE ||
		    (fd = lockfs_fs_open(LOCKFS_FS_CWD, tmp, LOCKFS_FS_READ |
		    LOCKFS_FS_NONBLOCK)) == -1)
			return 0;
		n = lockfs_fs_read(fd, buf, 31);
		lockfs_fs_close(fd);
		if (n <= 0)
			return 0;
		buf[n] = '\0';
		return strtol(buf, NULL, 10) == (long)to->owner.pid;
	default:
		return 0;
	}
}

/*
 * lockfs_handoff_resume: finishes a handoff to `to` that was prepared and
 * recorded (the caller knows `to` was made its holder) but whose
 * last step was never taken (its daemon died between): when the lock is
 * still the previous holder's (from_unique, of uid from_uid, pid
 * from_pid: `to` with those), its lock file the very file the preparation
 * found (from_id: s->from_id; not one its owner, having let go of the
 * lock in-process meanwhile, made anew under the same name: nothing is
 * finished without it) and to's artefact is beside it at the
 * temporary name, it is renamed over the lock file, under the directory's
 * lock.  The link, symlink and pidfile methods (mkdir's unfinished
 * handoffs show as two markers: the caller removes the stray one).  1
 * when finished, 0 when there is nothing to finish (to holds it already,
 * or the lock is not from's any more: someone else's now, or free;
 * nothing is changed then), or a negative code with err filled.  Run
 * with to's owner's credentials; to's names may be pinned to a
 * descriptor of the directory (/proc/self/fd/N/...).
 */
int
lockfs_handoff_resume(struct lockfs_lock *to, const char *from_unique,
    pid_t from_pid, uid_t from_uid, const struct lockfs_file_id *from_id,
    struct lockfs_err *err)
{
	struct lockfs_dirlock dl = { -1 };
	struct lockfs_lock    from;
	struct lockfs_err     ignored;
	struct lockfs_file_id id;
	struct lockfs_fs_info fi;
	const char           *base = strrchr(from_unique, '/');
	char                  tmp[PATH_MAX], unique[PATH_MAX];
	int                   r = 0;

	if (to->method == LB_MKDIR || to->method == LB_SQLITE ||
	    from_id == NULL || from_id->ino == 0)
		return 0;
	/* A name in the directory (link) is made again in to's directory,
	 * which may be pinned; a symbolic link's target (symlink) is a bare
	 * name, as it is. */
	if (snprintf(unique, sizeof(unique), "%s%s%s", base == NULL ? "" :
	    to->dir, base == NULL ? "" : "/", base == NULL ? from_unique :
	    base + 1) >= (int)sizeof(unique) ||
	    (r = tmp_name(to, tmp, sizeof(tmp), err)) != 0) {
		r = lockfs_fail(err, LB_EFAILED, ENAMETOOLONG, "%s: names too "
		    "long", to->path);
		goto out;
	}
	if ((r = lock_directory(to, &dl, err)) != 0)
		goto out;
	from = *to;             /* its names, with from's unique and owner */
	from.unique = unique;
	from.owner.pid = from_pid;
	from.owner.uid = from_uid;
	r = 0;
	if (lockfs_i_am_locking(to, &ignored) == 1 ||
	    lockfs_i_am_locking(&from, &ignored) != 1 || !tmp_is_tos(to, tmp))
		goto out;
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, to->lock_file, 0, &fi) == -1)
		goto out;
	file_id_of(&fi, &id);
	if (id.dev != from_id->dev || id.ino != from_id->ino ||
	    id.ctime_ns != from_id->ctime_ns)
		goto out;       /* made anew since: not the handoff's */
	if (lockfs_fs_rename_at(LOCKFS_FS_CWD, tmp, to->lock_file) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot finish the "
		    "handoff of %s: cannot rename %s to %s", to->path, tmp,
		    to->lock_file);
		goto out;
	}
	/* The old lock's last name (link), removed when it is of to's user
	 * (another's is that user's to remove). */
	if (to->method == LB_LINK && from_uid == to->owner.uid &&
	    lockfs_fs_info_at(LOCKFS_FS_CWD, from.unique, 0, &fi) == 0 &&
	    fi.type == LOCKFS_FS_FILE && fi.nlink == 1 && fi.uid == from_uid)
		lockfs_fs_unlink(from.unique);
	r = 1;
out:
	lockfs_dirlock_close(&dl);
	return r;
}

/*
 * Removes, after its temporary name (in dfd) was, the link method's unique
 * file base the temporary was a link to (the next holder's of a handoff
 * never finished), when it is that very file (fi: the temporary's
 * identity), no lock's any more (one link left), of the caller's uid, and
 * named after a process of this host that is provably dead: a next holder
 * never told, and gone, would leave it there for good.  1 when removed;
 * 0 when it is all that but its process lives (it may take the name
 * again, and then removes it itself: the caller may look again later,
 * lockfs_unique_litter); -1 when it is not such a file (nothing to do).
 */
static int
tidy_unique(int dfd, const char *base, const struct lockfs_fs_info *fi)
{
	struct lockfs_holder  h;
	struct lockfs_fs_info u;

	lockfs_holder_clear(&h);
	if (lockfs_fs_info_at(dfd, base, 0, &u) != 0 ||
	    u.type != LOCKFS_FS_FILE || u.dev != fi->dev ||
	    u.ino != fi->ino || u.nlink != 1 ||
	    u.uid != lockfs_os_files_uid() ||
	    lockfs_unique_parse(base, LB_LINK, &h) != 0 ||
	    h.host[0] == '\0' || h.pid <= 0 || h.start == 0)
		return -1;
	if (lockfs_holder_liveness(&h) != LB_HOLDER_DEAD)
		return 0;
	return lockfs_fs_unlink_at(dfd, base) == 0 ? 1 : -1;
}

/* lockfs_handoff_tidy_from: see lockfs.h. */
int
lockfs_handoff_tidy_from(const struct lockfs_lock *to,
    const char *from_unique, lockfs_left_fn *left, void *arg)
{
	struct lockfs_dirlock dl = { -1 };
	struct lockfs_fs_info fi, dfi;
	const char           *base = strrchr(from_unique, '/');
	int                   r = -1;

	base = base == NULL ? from_unique : base + 1;
	if (to->method != LB_LINK || *base == '\0' ||
	    lockfs_dirlock_open(&dl, to->dir) == -1 ||
	    lockfs_dirlock_try(&dl) == -1 ||
	    lockfs_fs_info_at(dl.fd, base, 0, &fi) != 0)
		goto out;
	/* Another user's (the old holder of a handoff between two users):
	 * theirs to remove, told to left as one whose process lives. */
	if (fi.uid != lockfs_os_files_uid())
		r = fi.type == LOCKFS_FS_FILE && fi.nlink == 1 &&
		    fi.size == 0 ? 0 : -1;
	else
		r = tidy_unique(dl.fd, base, &fi);
	if (r == 0 && left != NULL && lockfs_fs_info(dl.fd, &dfi) == 0)
		left(arg, &dfi, base, &fi);
out:
	lockfs_dirlock_close(&dl);
	return r;
}

/*
 * lockfs_unique_litter: see lockfs.h.  Under the directory's lock, as
 * lockfs_handoff_tidy: a handoff in progress that reuses the name (the
 * next holder's unique file is reused when it is a fresh one of its) is
 * never disturbed.
 */
int
lockfs_unique_litter(const char *dir, const struct lockfs_fs_info *dir_fi,
    const char *base, const struct lockfs_fs_info *fi)
{
	struct lockfs_dirlock dl = { -1 };
	struct lockfs_fs_info d;
	int                   r = 0;

	if (lockfs_dirlock_open(&dl, dir) == -1) {
		r = errno == ENOENT || errno == ENOTDIR ? -1 : 0;
		goto out;
	}
	if (lockfs_fs_info(dl.fd, &d) != 0 || d.dev != dir_fi->dev ||
	    d.ino != dir_fi->ino) {
		r = -1;         /* not the directory it was left in */
		goto out;
	}
	if (lockfs_dirlock_try(&dl) == -1)
		goto out;       /* busy: another time */
	r = tidy_unique(dl.fd, base, fi);
out:
	lockfs_dirlock_close(&dl);
	return r;
}

/*
 * lockfs_handoff_tidy: removes the handoff temporaries (HANDOFF_PREFIX*)
 * in l's directory, left by a daemon that died in the middle of a
 * handoff, and (link method) the unique files they linked to whose
 * process is gone (tidy_unique); each such file whose process lives is
 * told to left (when not NULL) with arg, the directory's identity, its
 * name and identity, for a later look (lockfs_unique_litter).  A
 * temporary of another user's that the caller may not remove (a handoff
 * between two users in a sticky directory) is left as it is.  Only with
 * the directory's lock, which
 * every handoff holds while its temporary exists, so a handoff in
 * progress elsewhere is never disturbed (then nothing is removed now).
 * Returns the number of temporaries removed, or -1 with err filled when
 * the directory cannot be read or is busy.
 */
int
lockfs_handoff_tidy(const struct lockfs_lock *l, lockfs_left_fn *left,
    void *arg, struct lockfs_err *err)
{
	struct lockfs_dirlock  dl = { -1 };
	struct lockfs_fs_entry de;
	struct lockfs_fs_info  fi, dfi;
	struct lockfs_fs_dir  *dir = NULL;
	const char            *base;
	int                    n = -1, linked;

	if (lockfs_dirlock_open(&dl, l->dir) == -1 ||
	    lockfs_dirlock_try(&dl) == -1) {
		lockfs_fail(err, LB_EFAILED, errno, "cannot tidy %s: cannot "
		    "lock it", l->dir);
		goto out;
	}
	if ((dir = lockfs_fs_dir_open_fd(dl.fd)) == NULL) {
		lockfs_fail(err, LB_EFAILED, errno, "cannot read %s", l->dir);
		goto out;
	}
	n = 0;
	while (lockfs_fs_dir_next(dir, &de) == 1) {
		if (strncmp(de.name, HANDOFF_PREFIX,
		    strlen(HANDOFF_PREFIX)) != 0 ||
		    lockfs_fs_info_at(lockfs_fs_dir_fd(dir), de.name, 0,
		    &fi) != 0)
			continue;
		base = de.name + strlen(HANDOFF_PREFIX);
		linked = l->method == LB_LINK && fi.type == LOCKFS_FS_FILE;
		/* Another user's that this one may not remove (a handoff
		 * between two users in a sticky directory) is left: a name
		 * alone cannot prove a temporary, and a file of that user's
		 * named so may be a lock of its (Session21Review). */
		if (lockfs_fs_unlink_at(lockfs_fs_dir_fd(dir), de.name) != 0)
			continue;
		n++;
		if (linked && tidy_unique(lockfs_fs_dir_fd(dir), base,
		    &fi) == 0 && left != NULL &&
		    lockfs_fs_info(dl.fd, &dfi) == 0)
			left(arg, &dfi, base, &fi);
	}
out:
	lockfs_fs_dir_close(dir);
	lockfs_dirlock_close(&dl);      /* also drops the lock */
	return n;
}
