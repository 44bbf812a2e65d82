/*
 * intents.c: the grants the daemon is about to make, noted before their
 * artefacts are.
 *
 * A grant's artefact is made first and recorded by the iteration's
 * commit, before its reply (reply.c).  A daemon killed in between left
 * an artefact no record knew of: its client, never told, asks again and
 * is recognised (hold.c, lbd_own_artefact_adopt), or, when it is alive
 * but does not ask, or has died too, the lock stayed held by nobody for
 * good.  So each fresh grant is noted first, in a file beside the state
 * database (STATE-intents, 0600, the daemon's own), with what a record
 * holds (the holder, its credentials, its lock directory's identity, its
 * token), by one pwrite(2) that also writes an end mark after it:
 *
 *   note (pwrite at off) --> artefact made --> hold recorded in the
 *     iteration's transaction --> commit --> an end mark at the start,
 *     off = 0 (the next notes are written over these; the end mark after
 *     them hides the older ones)
 *
 * At start, before reconcile, every note up to the end mark whose lock
 * the state database does not record (a grant noted and not committed),
 * or records with an older token (a hold that ended before the grant, in
 * the same iteration, uncommitted), is recorded as it would have been,
 * the newest note of a lock first, and
 * reconcile judges it as any record: its artefact gone or not its
 * holder's, forgotten, nothing touched; its holder dead, released as its
 * user; alive, an orphan (which never loses its artefact while its process
 * lives).  Then the file is emptied.  A note whose artefact was never made
 * (the daemon killed before, or the try found the lock held) is judged
 * gone.  Where users are numbered by token (Windows), a note whose uid
 * the state database does not know (a database made anew numbers from
 * 1 again) is not recorded at all (note_user_known).  No fsync: a
 * daemon's death leaves the page cache as it was, and
 * after a reboot every hold is void anyway.
 *
 * A handoff whose artefact changes hands before the commit is noted too:
 * the sqlite method's, whose row is handed over in one transaction of its
 * lock database (the other methods' last step, the rename, comes after
 * the commit: a restart finds the old holder's artefact and the new
 * holder's record, and swap.c's resume judges them).  Its note is the
 * next holder's, marked as a handoff; the old holder's record stays in
 * the state database until the commit.  At start such a note is recorded
 * (in place of the old holder's record) only when the lock's artefact
 * names its holder, looked at as that holder's user: the daemon killed
 * before the row changed hands leaves the old holder's record to stand,
 * killed after, the new holder's, so that a lock is never left held by a
 * holder no record knows of.
 *
 * A note is [head][groups][path][lock file][unique name][checksum]; the
 * file is read only by the daemon that wrote it (same build, same host),
 * in the host's byte order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "daemon.h"
#include "fs.h"
#include "intents.h"
#include "locktable.h"
#include "log.h"
#include "loop.h"
#include "os.h"
#include "store.h"

#define INTENT_MAGIC    0x32544e49u     /* "INT2" */
#define INTENT_END      0u
#define INTENTS_MAX     (64u << 20)     /* bytes read at start */

struct intent_head {
	uint32_t magic;
	uint32_t size;          /* head to checksum, both included */
	uint64_t token;         /* increasing across restarts: newest last */
	int64_t  pid, tid, uid, gid;
	uint64_t start, dir_dev, dir_ino;
	double   since;
	uint32_t method, kept;
	uint32_t handoff;       /* its lock handed to it in place */
	uint32_t ngroups, path_len, file_len, unique_len;
	char     boot[16];
};

static int     fd = -1;
static off_t   off;             /* where the next note goes */
static off_t   last = -1;       /* where the last note went, till its
                                   artefact is made or not */
static char   *buf;             /* a note and its end mark */
static int     failing;         /* the last note could not be written */
static uint64_t generation;     /* the state database's, when opened */
static size_t  bufsize;

/* FNV-1a, 64 bits, over n bytes of p. */
static uint64_t
checksum(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t             h = 0xcbf29ce484222325ull;

	while (n-- > 0)
		h = (h ^ *c++) * 0x100000001b3ull;
	return h;
}

/* A note read back: its head (copied: notes lie at any byte offset of
 * the file) and where it starts. */
struct note {
	struct intent_head  head;
	const char         *p;
};

/* Reads the note at p (n bytes left in the file) into *nt when it is
 * whole, its checksum right: 0; else -1 (an end mark, or what was never
 * written whole). */
static int
note_at(const char *p, size_t n, struct note *nt)
{
	struct intent_head h;
	uint64_t           sum;
	size_t             want;

	if (n < sizeof(h))
		return -1;
	memcpy(&h, p, sizeof(h));
	want = sizeof(h) + (size_t)h.ngroups * sizeof(gid_t) + h.path_len +
	    h.file_len + h.unique_len + sizeof(sum);
	if (h.magic != INTENT_MAGIC || h.size != want || want > n ||
	    h.ngroups > 65536 || h.path_len >= PATH_MAX ||
	    h.file_len >= PATH_MAX || h.unique_len >= PATH_MAX)
		return -1;
	memcpy(&sum, p + want - sizeof(sum), sizeof(sum));
	if (checksum(p, want - sizeof(sum)) != sum)
		return -1;
	nt->head = h;
	nt->p = p;
	return 0;
}

/* Newest first. */
static int
newest_first(const void *a, const void *b)
{
	const struct note *x = a, *y = b;

	return x->head.token < y->head.token ? 1 :
	    x->head.token > y->head.token ? -1 : 0;
}

/* Whether the artefact of the lock of rec (a handoff's note) names rec's
 * holder, looked at as its user (a sqlite row carries no owner: the note
 * says this daemon wrote it for that owner, as a record does): 1, 0, or
 * -1 when it cannot be told (logged). */
static int
note_handed(const struct lbd_store_hold *rec)
{
	struct lockfs_owner o;
	struct lockfs_lock  fs;
	struct lockfs_err   err;
	struct lbd_creds   *cr;
	int                 r = -1;

	memset(&o, 0, sizeof(o));
	snprintf(o.host, sizeof(o.host), "%s", lockfs_hostname());
	o.pid = rec->pid;
	o.tid = rec->tid;
	o.start = rec->start;
	memcpy(o.boot, rec->boot, sizeof(o.boot));
	o.uid = lbd_os_files_uid_of(rec->uid);
	if ((cr = lbd_creds_new(rec->uid, rec->gid, rec->ngroups,
	    rec->groups)) == NULL) {
		log_err("%s: out of memory to judge a handoff noted and not "
		    "recorded", rec->path);
		return -1;
	}
	if (lockfs_init_for(&fs, rec->path, rec->method, &o, &err) == 0) {
		fs.sqlite_row_ours = rec->method == LB_SQLITE;
		if (lbd_creds_enter(cr, &err) == 0) {
			r = lockfs_i_am_locking(&fs, &err);
			lbd_creds_leave();
		}
		lockfs_fini(&fs);
	}
	if (r < 0)
		log_warn("%s: cannot tell whether a handoff noted and not "
		    "recorded took place (%s); the previous holder's record "
		    "stands", rec->path, err.msg);
	lbd_creds_unref(cr);
	return r;
}

/* Whether the uid of rec (a note's) may be acted for: always where the
 * OS numbers its users; where the daemon numbers them by token
 * (Windows), only when the state database knows its number.  A database
 * made anew (moved aside as damaged, or removed) numbers users from 1
 * again while the notes keep the numbers of the one they were written
 * beside: such a note would be acted on as whoever has its number now
 * (with that user's token), so it is not recorded, and said so; its
 * artefact, if made, stays where it is, a lock held outside the broker
 * (its waiters wait for it; its holder, alive, is refused its RECLAIM
 * and judges it itself; once the holder is gone, anyone who may remove
 * it breaks it as a stale lock). */
static int
note_user_known(const struct lbd_store_hold *rec)
{
	if (!lbd_os_users_by_token() || lbd_store_uid_known(rec->uid))
		return 1;
	log_warn("%s: a grant to pid %ld noted for uid %ld, a number the "
	    "state database gives no user (made anew since?): not recorded "
	    "nor acted on; its lock file, if made, stays until broken as a "
	    "stale lock", rec->path, (long)rec->pid, (long)rec->uid);
	return 0;
}

/* Records note h as the grant it announced, unless its lock is recorded
 * already with a token as new (by then, or by a newer note), or it is a
 * pid file of a connection's thread whose process still runs (a pid file
 * names the process only: it may be another thread's, held in-process;
 * the library judges such a leftover itself, see client/reader.c), or it
 * is a handoff's whose artefact does not name its holder (the daemon died
 * before the artefact changed hands: the old holder's record stands): 1
 * when recorded, 0 when not, -1 when the state database failed. */
static int
note_record(struct lbd *d, const struct note *nt)
{
	struct lbd_store_hold    rec;
	const struct intent_head head = nt->head;
	unsigned long long       start;
	const char              *p = nt->p + sizeof(head);
	char                     file[PATH_MAX];

	if (head.method == LB_PIDFILE && !head.kept &&
	    lockfs_os_start_time((pid_t)head.pid, &start) == 0 &&
	    start == head.start)
		return 0;
	memset(&rec, 0, sizeof(rec));
	rec.groups = p;
	rec.ngroups = head.ngroups;
	rec.groups_known = 1;
	p += (size_t)head.ngroups * sizeof(gid_t);
	memcpy(rec.path, p, head.path_len);
	p += head.path_len;
	memcpy(file, p, head.file_len);
	file[head.file_len] = '\0';
	p += head.file_len;
	memcpy(rec.unique, p, head.unique_len);
	rec.method = head.method;
	rec.pid = (pid_t)head.pid;
	rec.tid = (pid_t)head.tid;
	rec.uid = (uid_t)head.uid;
	rec.gid = (gid_t)head.gid;
	rec.start = head.start;
	memcpy(rec.boot, head.boot, sizeof(rec.boot) - 1);
	rec.token = head.token;
	rec.since = head.since;
	rec.kept = (int)head.kept;
	rec.dir_dev = head.dir_dev;
	rec.dir_ino = head.dir_ino;
	if (!note_user_known(&rec))
		return 0;
	if (head.handoff && note_handed(&rec) != 1)
		return 0;
	return lbd_store_hold_add_new(d, file, &rec);
}

/* Reads the notes of the file (up to its end mark) and records those
 * the state database does not: 0, or -1 with why filled. */
static int
notes_record(struct lbd *d, char *why, size_t size)
{
	struct note *notes = NULL;
	off_t        st_size;
	size_t       n = 0, i, at = 0, len;
	ssize_t      got;
	char        *all = NULL;
	int          r = -1, added = 0, a;

	if (lbd_os_file_size(fd, &st_size) == -1) {
		snprintf(why, size, "%s-intents: %s", d->cfg.state,
		    strerror(errno));
		goto out;
	}
	len = st_size > (off_t)INTENTS_MAX ? INTENTS_MAX : (size_t)st_size;
	if (len == 0) {
		r = 0;
		goto out;
	}
	if ((all = malloc(len)) == NULL ||
	    (notes = calloc(len / sizeof(struct intent_head) + 1,
	    sizeof(*notes))) == NULL) {
		snprintf(why, size, "%s-intents: out of memory", d->cfg.state);
		goto out;
	}
	if ((got = lbd_os_read_at(fd, all, len, 0)) == -1) {
		snprintf(why, size, "%s-intents: %s", d->cfg.state,
		    strerror(errno));
		goto out;
	}
	while (note_at(all + at, (size_t)got - at, &notes[n]) == 0)
		at += notes[n++].head.size;
	qsort(notes, n, sizeof(*notes), newest_first);
	for (i = 0; i < n; i++) {
		if ((a = note_record(d, &notes[i])) < 0) {
			snprintf(why, size, "state database: cannot record "
			    "the grants noted in %s-intents", d->cfg.state);
			goto out;
		}
		added += a;
	}
	if (lbd_store_commit(d) != 0) {
		snprintf(why, size, "state database: cannot record the "
		    "grants noted in %s-intents", d->cfg.state);
		goto out;
	}
	if (added > 0)
		log_notice("%d grant(s) made and not recorded before the "
		    "previous daemon died: recorded now, to be judged as any",
		    added);
	r = 0;
out:
	free(notes);
	free(all);
	return r;
}

/* Opens (creating) the intents file: a regular file of the daemon's
 * user, never followed, made 0600.  Its descriptor, or -1 with why
 * filled. */
static int
file_open(struct lbd *d, char *why, size_t size)
{
	struct lockfs_fs_info st;
	char                  file[PATH_MAX + 16];
	int                   f;

	snprintf(file, sizeof(file), "%s-intents", d->cfg.state);
	if ((f = lbd_os_open_own(file, LBD_OS_UPDATE)) == -1 ||
	    lockfs_fs_info(f, &st) == -1) {
		snprintf(why, size, "%s: %s", file, strerror(errno));
		goto fail;
	}
	if (st.type != LOCKFS_FS_FILE || st.uid != lbd_os_euid()) {
		snprintf(why, size, "%s: not a regular file of the daemon's "
		    "user", file);
		goto fail;
	}
	if (lbd_os_fchmod(f, 0600) == -1)
		log_warn("cannot make %s private: %s", file, strerror(errno));
	return f;
fail:
	lockfs_fs_close(f);
	return -1;
}

/* lbd_intents_open: see intents.h. */
int
lbd_intents_open(struct lbd *d, char *why, size_t size)
{
	if ((fd = file_open(d, why, size)) == -1 ||
	    notes_record(d, why, size) != 0)
		goto fail;
	off = 0;
	generation = d->generation;
	return 0;
fail:
	lockfs_fs_close(fd);
	fd = -1;
	return -1;
}

/* The state database was made anew while the daemon ran (store.c), with
 * every hold in memory recorded in it and committed: the intents file
 * beside it, when it went too (deleted or replaced), is opened anew
 * (empty), so that the next notes go where the next daemon reads them;
 * failing that (logged), the old file stays in use.  Still the file
 * opened (only the database went): nothing to do. */
static void
reopen(struct lbd *d)
{
	struct lockfs_fs_info st, at;
	char                  why[PATH_MAX + 64], file[PATH_MAX + 16];
	int                   f;

	snprintf(file, sizeof(file), "%s-intents", d->cfg.state);
	if (fd != -1 && lockfs_fs_info(fd, &st) == 0 &&
	    lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &at) == 0 &&
	    st.dev == at.dev && st.ino == at.ino)
		return;
	if ((f = file_open(d, why, sizeof(why))) == -1) {
		log_err("%s; grants are noted in the file as it was", why);
		return;
	}
	if (lbd_os_truncate(f, 0) == -1)
		log_warn("%s: %s", file, strerror(errno));
	lockfs_fs_close(fd);
	fd = f;
	off = 0;
	last = -1;
}

/* lbd_intents_clear: see intents.h. */
void
lbd_intents_clear(struct lbd *d)
{
	if (fd != -1 && lbd_os_truncate(fd, 0) == -1)
		log_warn("%s-intents: %s", d->cfg.state, strerror(errno));
	off = 0;
}

/* Room for n bytes in buf: 0, or -1. */
static int
buf_room(size_t n)
{
	char *p;

	if (n <= bufsize)
		return 0;
	if ((p = realloc(buf, n)) == NULL)
		return -1;
	buf = p;
	bufsize = n;
	return 0;
}

/* lbd_intent_note: see intents.h.  One pwrite: the note, and the end mark
 * after it that the next note of the iteration writes over. */
int
lbd_intent_note(struct lbd *d, const struct lbd_hold *h, int handoff,
    struct lockfs_err *err)
{
	struct intent_head head;
	char               file[PATH_MAX], unique[PATH_MAX];
	uint64_t           sum;
	uint32_t           end = INTENT_END;
	size_t             groups, n;
	ssize_t            w;
	char              *p;

	if (fd == -1)
		return 0;       /* no state: nothing recorded either */
	lbd_lock_file(h->lock, file);
	if (lockfs_unique_format(&h->fs.owner, h->fs.method, file, unique,
	    sizeof(unique)) == -1)
		return lockfs_fail(err, LB_EFAILED, errno, "%s: unique name",
		    h->lock->path);
	memset(&head, 0, sizeof(head));
	head.magic = INTENT_MAGIC;
	head.token = h->token;
	head.pid = h->fs.owner.pid;
	head.tid = h->tid;
	head.uid = h->uid;
	head.gid = h->gid;
	head.start = h->fs.owner.start;
	head.dir_dev = h->dir_dev;
	head.dir_ino = h->dir_ino;
	head.since = lbd_now();
	head.method = h->fs.method;
	head.kept = (uint32_t)h->kept;
	head.handoff = (uint32_t)(handoff != 0);
	head.ngroups = (uint32_t)h->creds->ngroups;
	head.path_len = (uint32_t)strlen(h->fs.path);
	head.file_len = (uint32_t)strlen(file);
	head.unique_len = (uint32_t)strlen(unique);
	snprintf(head.boot, sizeof(head.boot), "%s", h->fs.owner.boot);
	groups = (size_t)head.ngroups * sizeof(gid_t);
	n = sizeof(head) + groups + head.path_len + head.file_len +
	    head.unique_len + sizeof(sum);
	head.size = (uint32_t)n;
	if (buf_room(n + sizeof(end)) != 0)
		return lockfs_fail(err, LB_ENOMEM, ENOMEM, "%s: noting the "
		    "grant", h->lock->path);
	p = buf;
	memcpy(p, &head, sizeof(head));
	p += sizeof(head);
	memcpy(p, h->creds->groups, groups);
	p += groups;
	memcpy(p, h->fs.path, head.path_len);
	p += head.path_len;
	memcpy(p, file, head.file_len);
	p += head.file_len;
	memcpy(p, unique, head.unique_len);
	p += head.unique_len;
	sum = checksum(buf, n - sizeof(sum));
	memcpy(p, &sum, sizeof(sum));
	memcpy(p + sizeof(sum), &end, sizeof(end));
	if ((w = lbd_os_write_at(fd, buf, n + sizeof(end), off)) != (ssize_t)(n +
	    sizeof(end))) {
		/* Most likely the state's file system is full, when the
		 * commit fails too and refuses the grant (reply.c): not
		 * refused here, only less guarded (said once). */
		if (!failing)
			log_warn("%s-intents: cannot note grants (%s): a "
			    "daemon killed before a grant is recorded may "
			    "leave its lock held by nobody", d->cfg.state,
			    w == -1 ? strerror(errno) : "short write");
		failing = 1;
		last = -1;
		return 0;
	}
	if (failing)
		log_notice("%s-intents: grants are noted again",
		    d->cfg.state);
	failing = 0;
	last = off;
	off += (off_t)n;
	return 0;
}

/* lbd_intent_undo: see intents.h.  The end mark written over the note,
 * which the next note takes the place of. */
void
lbd_intent_undo(struct lbd *d)
{
	uint32_t end = INTENT_END;

	if (fd == -1 || last < 0)
		return;
	off = last;
	last = -1;
	if (lbd_os_write_at(fd, &end, sizeof(end), off) !=
	    (ssize_t)sizeof(end))
		log_warn("%s-intents: %s", d->cfg.state, strerror(errno));
}

/* lbd_intents_covered: see intents.h.  The notes the commit recorded are
 * hidden at once, by an end mark at the file's start: left to be written
 * over by the next note, they would be read again by the next daemon
 * when none comes before it dies, as grants noted and not recorded, and
 * judged as holds of their holders, which by then may have ended them
 * long ago (their lock files another's since, made by a process that
 * has the pid of one that exited). */
void
lbd_intents_covered(struct lbd *d)
{
	uint32_t end = INTENT_END;

	if (fd != -1 && off > 0 && lbd_os_write_at(fd, &end, sizeof(end), 0) !=
	    (ssize_t)sizeof(end))
		log_warn("%s-intents: %s", d->cfg.state, strerror(errno));
	off = 0;
	last = -1;
	if (fd != -1 && d->generation != generation) {
		generation = d->generation;
		reopen(d);
	}
}

/* lbd_intents_close: see intents.h.  Emptied when every note was
 * committed since (a clean stop): a note left would be a grant the next
 * daemon records again and judges (forgotten when it finds it gone). */
void
lbd_intents_close(struct lbd *d)
{
	if (fd != -1 && off == 0)
		lbd_intents_clear(d);
	lockfs_fs_close(fd);
	fd = -1;
	free(buf);
	buf = NULL;
	bufsize = 0;
}
