/*
 * readers.c: the markers of a shared lock's readers (docs/SHARED.md).
 * A lock held shared has one artefact, naming one reader; every other
 * reader (a rider) has an empty file of its own beside the lock file,
 *
 *     LOCKFILE.reader.PID.START.BOOT.TID
 *
 * (LOCKFILE the lock file's name, START the reader's process start time,
 * BOOT the boot id's first 8 hex digits, TID 0 when unthreaded), made and
 * removed as the reader's user.  Python's lockfile never looks at these
 * names.  They are the riders' own trace on disk, for whoever judges the
 * lock without the daemon: a lock with the marker of a live reader is not
 * stale, whatever the artefact's pid (stale.c), and its artefact's reader
 * keeps the artefact when it releases in-process (the library).
 *
 * Before the first marker, the daemon makes the readers' sign, an empty
 *
 *     LOCKFILE.readers
 *
 * and removes it once the lock has no rider left.  A judge looks for
 * markers only while the sign is there: a lock that was never shared costs
 * it one look at a name, and no names made in its directory can keep it
 * from being broken stale.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"
#include "os.h"

#define READER_INFIX ".reader."
#define READERS_SIGN ".readers"

/* What a readers' sign holds, and nothing else: a file at its name that
 * does not (another lock's pid file, say) is no sign, never taken for
 * one nor removed as one. */
#define READERS_SIGN_TEXT "lockbroker readers' sign\n"

/* Entries of a directory read, at most, for its readers' markers (only
 * while its readers' sign is there): every judge (the daemon's stale
 * breaks, in its loop, too) stays cheap, about a millisecond, however
 * many names lie there (lockfs_readers_live: -1, EFBIG, past them). */
#define READERS_DIR_MAX 4096

/* lockfs_readers_guarded: see lockfs.h. */
int
lockfs_readers_guarded(const struct lockfs_fs_info *dir)
{
	return (dir->perm & LOCKFS_FS_STICKY) != 0 ||
	    (dir->perm & 07777) == 0;
}

/* The lock file's last component (the whole name when it has no '/'). */
static const char *
base_of(const char *file)
{
	const char *slash = strrchr(file, '/');

	return slash != NULL ? slash + 1 : file;
}

/* lockfs_reader_name: see lockfs.h. */
int
lockfs_reader_name(const struct lockfs_lock *l, const struct lockfs_owner *o,
    char *out, size_t size)
{
	int n;

	n = snprintf(out, size, "%s" READER_INFIX "%ld.%llu.%s.%ld",
	    base_of(l->lock_file), (long)o->pid, o->start,
	    o->boot[0] != '\0' ? o->boot : "0", (long)o->tid);
	return n < 0 || (size_t)n >= size || (size_t)n > LOCKFS_FS_NAME_MAX ?
	    -1 : 0;
}

/* Opens l's directory (a symbolic link at it followed, as every step on
 * the lock does); a descriptor, or -1 with errno. */
static int
dir_open(const struct lockfs_lock *l)
{
	return lockfs_fs_open(LOCKFS_FS_CWD, l->dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW);
}

/* The readers' sign's name of l into out (size bytes); 0, or -1 when it
 * does not fit. */
static int
sign_name(const struct lockfs_lock *l, char *out, size_t size)
{
	int n;

	n = snprintf(out, size, "%s" READERS_SIGN, base_of(l->lock_file));
	return n < 0 || (size_t)n >= size || (size_t)n > LOCKFS_FS_NAME_MAX ?
	    -1 : 0;
}

/*
 * Whether a readers' sign lies at name sign in the directory open as dfd:
 * a regular file, never through a symbolic link, of uid (any uid when
 * uid is (uid_t)-1), holding READERS_SIGN_TEXT and nothing else.  1: it
 * does; 0: nothing is there, or something else is; -1 (errno) when it
 * cannot be looked at.
 */
static int
sign_there(int dfd, const char *sign, uid_t uid)
{
	struct lockfs_fs_info fi, fo;
	char                  buf[sizeof(READERS_SIGN_TEXT) + 1];
	ssize_t               n;
	int                   fd, r = 0;

	if (lockfs_fs_info_at(dfd, sign, 0, &fi) != 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	if (fi.type != LOCKFS_FS_FILE || (uid != (uid_t)-1 && fi.uid != uid))
		return 0;
	/* Never waits (a FIFO swapped in), never follows a link. */
	if ((fd = lockfs_fs_open(dfd, sign, LOCKFS_FS_READ |
	    LOCKFS_FS_NONBLOCK)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (lockfs_fs_info(fd, &fo) != 0)
		r = -1;
	else if (fo.dev == fi.dev && fo.ino == fi.ino &&
	    (n = lockfs_fs_read(fd, buf, sizeof(buf))) ==
	    (ssize_t)sizeof(READERS_SIGN_TEXT) - 1 &&
	    memcmp(buf, READERS_SIGN_TEXT, (size_t)n) == 0)
		r = 1;
	lockfs_fs_close(fd);
	return r;
}

/*
 * Whether the readers' sign of l lies in the directory open as dfd
 * (information *dir; its lock file's owner lock_uid, (uid_t)-1 when the
 * lock file is not there) and counts: a sign (sign_there); in a guarded
 * directory a file of the lock file's owner, as a marker
 * (reader_candidate).  1: it counts; 0: it is not there, or counts for
 * nothing (no reader of the daemon's rides without one that counts); -1
 * (errno) when it cannot be looked at.
 */
static int
sign_counts(int dfd, const struct lockfs_lock *l,
    const struct lockfs_fs_info *dir, uid_t lock_uid)
{
	char sign[LOCKFS_FS_NAME_MAX + 1];

	if (sign_name(l, sign, sizeof(sign)) != 0)
		return 0;       /* never made */
	if (lockfs_readers_guarded(dir) && lock_uid == (uid_t)-1)
		return 0;       /* no lock file: no owner's sign */
	return sign_there(dfd, sign, lockfs_readers_guarded(dir) ? lock_uid :
	    (uid_t)-1);
}

/* The name (in out, size bytes) a readers' sign sign is written under
 * by the caller's user before it is linked in: one per user, so that the
 * next sign that user makes (or removes) removes one a killed maker left
 * (a maker's pid would die with it).  0, or -1 when it does not fit. */
static int
sign_tmp_name(const char *sign, char *out, size_t size)
{
	int n;

	n = snprintf(out, size, "%s.%ld.new", sign,
	    (long)lockfs_os_files_uid());
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Makes the readers' sign at name sign in the directory open as dfd,
 * only where nothing is: written under a name of its own first, then
 * linked in, so that it is never seen half written.  0 (also when
 * something is there already: the caller judges it), or -1 with errno. */
static int
sign_make(int dfd, const struct lockfs_lock *l, const char *sign)
{
	char    tmp[LOCKFS_FS_NAME_MAX + 1], from[PATH_MAX], to[PATH_MAX];
	ssize_t n = -1;
	int     fd, e, r = -1;

	if (sign_tmp_name(sign, tmp, sizeof(tmp)) != 0 ||
	    snprintf(from, sizeof(from), "%s/%s", l->dir, tmp) >=
	    (int)sizeof(from) ||
	    snprintf(to, sizeof(to), "%s/%s", l->dir, sign) >=
	    (int)sizeof(to)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)lockfs_fs_unlink_at(dfd, tmp);    /* an earlier try's */
	if ((fd = lockfs_fs_open(dfd, tmp, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL)) == -1)
		return -1;
	n = lockfs_fs_write(fd, READERS_SIGN_TEXT,
	    sizeof(READERS_SIGN_TEXT) - 1);
	lockfs_fs_close(fd);
	if (n == (ssize_t)sizeof(READERS_SIGN_TEXT) - 1 &&
	    (lockfs_fs_link(from, to) == 0 || errno == EEXIST))
		r = 0;
	e = errno;
	(void)lockfs_fs_unlink_at(dfd, tmp);
	errno = e;
	return r;
}

/* Makes an empty regular file at name in the directory open as dfd, never
 * through a symbolic link; 0 (also when something is there: EEXIST), or
 * -1 with errno. */
static int
empty_make(int dfd, const char *name)
{
	int fd;

	if (lockfs_fs_make_at(dfd, name, 0644) == 0 || errno == EEXIST)
		return 0;
	if ((fd = lockfs_fs_open(dfd, name, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL)) != -1) {
		lockfs_fs_close(fd);
		return 0;
	}
	return errno == EEXIST ? 0 : -1;
}

/* lockfs_reader_mark: see lockfs.h. */
int
lockfs_reader_mark(const struct lockfs_lock *l, const struct lockfs_owner *o,
    struct lockfs_err *err)
{
	struct lockfs_fs_info dir, lf;
	char                  name[LOCKFS_FS_NAME_MAX + 1];
	char                  sign[LOCKFS_FS_NAME_MAX + 1];
	int                   dfd = -1, r = 0, counts;

	if (lockfs_reader_name(l, o, name, sizeof(name)) != 0 ||
	    sign_name(l, sign, sizeof(sign)) != 0) {
		r = lockfs_fail(err, LB_EFAILED, ENAMETOOLONG, "%s: no room "
		    "for a reader's marker beside it", l->lock_file);
		goto out;
	}
	if ((dfd = dir_open(l)) == -1 || lockfs_fs_info(dfd, &dir) != 0 ||
	    lockfs_fs_info_at(dfd, base_of(l->lock_file), 0, &lf) != 0) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot look at %s to "
		    "mark a reader of it", l->lock_file);
		goto out;
	}
	/* The sign first: a judge that finds no sign looks for no marker.
	 * One that counts already is left as it is (made again, it would
	 * only be found there: the link fails EEXIST), so that the readers
	 * joining a lock held shared do not each write a sign. */
	if ((counts = sign_counts(dfd, l, &dir, lf.uid)) == 0) {
		if (sign_make(dfd, l, sign) != 0) {
			r = lockfs_fail(err, LB_EFAILED, errno, "cannot make "
			    "%s/%s, the sign of %s's readers", l->dir, sign,
			    l->lock_file);
			goto out;
		}
		counts = sign_counts(dfd, l, &dir, lf.uid);
	}
	if (counts != 1) {
		r = lockfs_fail(err, LB_EFAILED, counts == -1 ? errno : EEXIST,
		    "%s/%s is in the way: the sign of %s's readers is a "
		    "regular file of lockbroker's%s", l->dir, sign, l->lock_file,
		    lockfs_readers_guarded(&dir) ? " of the lock file's "
		    "owner in a sticky directory" : "");
		goto out;
	}
	/* EEXIST: its own, from a join before (a regular file of this
	 * user's); anything else at its name is in the way, never taken
	 * for its own: a name any user can spell ahead would otherwise
	 * stand for a reader that a judge, or a restarted daemon, does not
	 * count as one. */
	if (empty_make(dfd, name) != 0)
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot make %s/%s, "
		    "the marker of a reader of %s", l->dir, name,
		    l->lock_file);
	else if (lockfs_fs_info_at(dfd, name, 0, &lf) != 0 ||
	    lf.type != LOCKFS_FS_FILE || lf.uid != lockfs_os_files_uid())
		r = lockfs_fail(err, LB_EFAILED, EEXIST, "%s/%s is in the way: "
		    "the marker of a reader of %s is a regular file of the "
		    "reader's user, made by lockbroker", l->dir, name,
		    l->lock_file);
out:
	if (dfd != -1)
		lockfs_fs_close(dfd);
	return r;
}

/* lockfs_readers_unsign: see lockfs.h. */
int
lockfs_readers_unsign(const struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info dir;
	char                  sign[LOCKFS_FS_NAME_MAX + 1];
	char                  tmp[LOCKFS_FS_NAME_MAX + 1];
	int                   dfd = -1, r = 0, there;

	if (sign_name(l, sign, sizeof(sign)) != 0)
		goto out;       /* never made */
	if ((dfd = dir_open(l)) == -1 || lockfs_fs_info(dfd, &dir) != 0)
		goto fail;
	/* Only a sign (another lock's file may bear its name), in a
	 * guarded directory the caller's own (another user's name there is
	 * left as the kernel would leave it to anyone but root). */
	if ((there = sign_there(dfd, sign, lockfs_readers_guarded(&dir) ?
	    lockfs_os_files_uid() : (uid_t)-1)) == -1)
		goto fail;
	/* One this user's killed maker left, if any. */
	if (sign_tmp_name(sign, tmp, sizeof(tmp)) == 0)
		(void)lockfs_fs_unlink_at(dfd, tmp);
	if (there == 0)
		goto out;
	if (lockfs_fs_unlink_at(dfd, sign) == 0 || errno == ENOENT)
		goto out;
fail:
	r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s/%s, the "
	    "sign of %s's readers", l->dir, sign, l->lock_file);
out:
	if (dfd != -1)
		lockfs_fs_close(dfd);
	return r;
}

/* lockfs_reader_marked: see lockfs.h. */
int
lockfs_reader_marked(const struct lockfs_lock *l,
    const struct lockfs_owner *o)
{
	struct lockfs_fs_info fi;
	char                  name[LOCKFS_FS_NAME_MAX + 1];
	int                   dfd, r = 0;

	if (lockfs_reader_name(l, o, name, sizeof(name)) != 0 ||
	    (dfd = dir_open(l)) == -1)
		return 0;
	if (lockfs_fs_info_at(dfd, name, 0, &fi) == 0 &&
	    fi.type == LOCKFS_FS_FILE && fi.uid == lockfs_os_files_uid())
		r = 1;
	lockfs_fs_close(dfd);
	return r;
}

/* lockfs_reader_unmark: see lockfs.h. */
int
lockfs_reader_unmark(const struct lockfs_lock *l,
    const struct lockfs_owner *o, struct lockfs_err *err)
{
	char name[LOCKFS_FS_NAME_MAX + 1];
	int  dfd = -1, r = 0;

	if (lockfs_reader_name(l, o, name, sizeof(name)) != 0)
		goto out;       /* never made */
	if ((dfd = dir_open(l)) == -1 || (lockfs_fs_unlink_at(dfd, name) ==
	    -1 && errno != ENOENT))
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s/%s, "
		    "the marker of a reader of %s", l->dir, name,
		    l->lock_file);
out:
	if (dfd != -1)
		lockfs_fs_close(dfd);
	return r;
}

/* Parses a marker's name past the infix into *h; 0, or -1 when it is no
 * marker's. */
static int
reader_parse(const char *s, struct lockfs_holder *h)
{
	char          *end;
	long           pid, tid;
	unsigned long long start;
	const char    *boot;
	size_t         blen;

	memset(h, 0, sizeof(*h));
	h->uid = (uid_t)-1;
	errno = 0;
	pid = strtol(s, &end, 10);
	if (end == s || *end != '.' || pid <= 0 || errno != 0)
		return -1;
	s = end + 1;
	start = strtoull(s, &end, 10);
	if (end == s || *end != '.' || errno != 0)
		return -1;
	boot = end + 1;
	if ((end = strchr(boot, '.')) == NULL)
		return -1;
	blen = (size_t)(end - boot);
	if (blen == 0 || blen >= sizeof(h->boot))
		return -1;
	s = end + 1;
	tid = strtol(s, &end, 10);
	if (end == s || *end != '\0' || tid < 0 || errno != 0)
		return -1;
	h->pid = (pid_t)pid;
	h->tid = (pid_t)tid;
	h->start = start;
	if (!(blen == 1 && boot[0] == '0'))
		memcpy(h->boot, boot, blen);
	return 0;
}

/*
 * Whether the name in the directory open as dfd (information *dir; its
 * lock file's owner lock_uid, (uid_t)-1 when the lock file is not there),
 * named as a marker (parsed into *h), could be a reader's marker: a
 * regular file, never through a symbolic link, whose start time is not
 * 0; in a sticky directory, where any user may make a name and only its
 * owner remove it, also a file of the lock file's owner, so that no user
 * keeps another user's lock held with a file of their own
 * (docs/SHARED.md).  1: it could; 0: it counts for nothing.
 */
static int
reader_candidate(int dfd, const char *name, const struct lockfs_holder *h,
    const struct lockfs_fs_info *dir, uid_t lock_uid)
{
	struct lockfs_fs_info fi;

	if (h->start == 0 || lockfs_fs_info_at(dfd, name, 0, &fi) != 0 ||
	    fi.type != LOCKFS_FS_FILE)
		return 0;
	if (lockfs_readers_guarded(dir) && fi.uid != lock_uid)
		return 0;
	return 1;
}

/* Whether candidate marker *h is a live reader's: the process it names
 * lives with the marker's start time (lockfs_holder_liveness; one whose
 * start time cannot be read, hidden from the judge, counts: "cannot
 * tell" is never "no reader").  Who owns the process now is not asked: a
 * reader may change its uid after it joined, and another user's process
 * may be hidden (hidepid).  1: it is; 0: it counts for nothing. */
static int
reader_counts(const struct lockfs_holder *h)
{
	return lockfs_holder_liveness(h) == LB_HOLDER_ALIVE;
}

/* lockfs_readers_live: see lockfs.h. */
int
lockfs_readers_live(const struct lockfs_lock *l)
{
	struct lockfs_fs_dir  *d = NULL;
	struct lockfs_fs_entry e;
	struct lockfs_fs_info  dir, lf, rdir;
	struct lockfs_holder   h;
	const char            *base = base_of(l->lock_file);
	size_t                 blen = strlen(base), ilen = strlen(READER_INFIX);
	unsigned long          n = 0;
	uid_t                  lock_uid = (uid_t)-1;
	int                    dfd, rfd = -1, live = -1;

	if ((dfd = dir_open(l)) == -1 || lockfs_fs_info(dfd, &dir) != 0)
		goto out;
	if (lockfs_fs_info_at(dfd, base, 0, &lf) == 0)
		lock_uid = lf.uid;
	else if (errno != ENOENT)
		goto out;
	/* No sign, no reader: the directory is not read at all (so that a
	 * lock never shared is judged as before markers were, even in a
	 * directory its judge may search and not list). */
	if ((live = sign_counts(dfd, l, &dir, lock_uid)) != 1)
		goto out;
	/* Opened again to be read: the very directory looked at. */
	live = -1;
	if ((rfd = lockfs_fs_open(LOCKFS_FS_CWD, l->dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW | LOCKFS_FS_READ)) == -1 ||
	    lockfs_fs_info(rfd, &rdir) != 0 || rdir.dev != dir.dev ||
	    rdir.ino != dir.ino || (d = lockfs_fs_dir_open_fd(rfd)) == NULL)
		goto out;
	live = 0;
	for (;;) {
		errno = 0;
		if (live != 0 || lockfs_fs_dir_next(d, &e) != 1)
			break;
		if (++n > READERS_DIR_MAX) {
			live = -1;
			errno = EFBIG;
			break;
		}
		if (strncmp(e.name, base, blen) != 0 ||
		    strncmp(e.name + blen, READER_INFIX, ilen) != 0 ||
		    reader_parse(e.name + blen + ilen, &h) != 0 ||
		    !reader_candidate(lockfs_fs_dir_fd(d), e.name, &h, &dir,
		    lock_uid))
			continue;
		/* Same host: the markers are made by this host's daemon. */
		live = reader_counts(&h);
	}
	/* A listing that failed part way cannot tell either. */
	if (live == 0 && errno != 0)
		live = -1;
out:
	lockfs_fs_dir_close(d);
	if (rfd != -1)
		lockfs_fs_close(rfd);
	if (dfd != -1)
		lockfs_fs_close(dfd);
	return live;
}
