/*
 * walshm.c: the state database's WAL-index locks in fewer system calls.
 *
 * sqlite's unix VFS takes the WAL-index locks (bytes 120 to 127 of the
 * database's -shm file: the write lock at 120, the read marks at 123 to
 * 127) with one fcntl(F_SETLK) each.  A transaction of the daemon costs
 * six of them (sqlite 3.40):
 *
 *   WRLCK 124   a read mark moved up to the end of the WAL, which grew
 *   UNLCK 124     with the last commit
 *   RDLCK 124   the read lock on that mark
 *   WRLCK 120   the write lock
 *   UNLCK 120   at the commit
 *   UNLCK 124
 *
 * The VFS lets its system calls be replaced (xSetSystemCall); the fcntl
 * put in here makes the same locks in four: an exclusive lock given up
 * and at once taken again as a shared one is changed in place (one
 * F_SETLK F_RDLCK on the range held F_WRLCK, which POSIX makes atomic),
 * and two unlocks in a row become one over both ranges when nothing the
 * process holds lies between them.  So an unlock of a range held
 * exclusively is held back until the next call on the -shm file says
 * which it is, or until lbd_walshm_flush, which the store calls before it
 * returns to the loop.  The locks other processes see are the same or
 * held a little longer (a shared read lock never missing in between, as it
 * may be for them otherwise); never fewer.  Every other call, on any
 * other descriptor or of another kind, goes through unchanged.
 *
 * Only the state database's -shm file is treated so (its descriptor,
 * found once it is open: lbd_walshm_watch), on the loop's thread; the
 * sqlite method's lock databases, in rollback mode, never come here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "walshm.h"

#define SHM_FIRST 120           /* sqlite's WAL_LOCK_OFFSET ... */
#define SHM_END   128           /* ... up to its DMS byte */

typedef int (*fcntl_fn)(int, int, ...);

/* The VFS's own fcntl, called for every real lock. */
static fcntl_fn real_fcntl;

/* The -shm file's locks as this process holds them, and the unlock held
 * back: on the loop's thread only. */
static __thread struct {
	int           fd;       /* the -shm file; -1: none watched */
	unsigned char held;     /* bit i: byte SHM_FIRST + i locked */
	unsigned char excl;     /* of those, locked F_WRLCK */
	int           pending;  /* an unlock of [start, start + len) held
	                           back */
	off_t         start, len;
} shm = { -1, 0, 0, 0, 0, 0 };

/* The bits of bytes [start, start + len), within SHM_FIRST..SHM_END. */
static unsigned char
bits(off_t start, off_t len)
{
	return (unsigned char)(((1u << len) - 1) << (start - SHM_FIRST));
}

/* Calls F_SETLK of type on [start, start + len) of fd, and notes what it
 * holds then.  Returns as fcntl. */
static int
shm_setlk(int fd, short type, off_t start, off_t len)
{
	struct flock f;
	unsigned char b = bits(start, len);
	int          r;

	memset(&f, 0, sizeof(f));
	f.l_type = type;
	f.l_whence = SEEK_SET;
	f.l_start = start;
	f.l_len = len;
	if ((r = real_fcntl(fd, F_SETLK, &f)) == 0) {
		if (type == F_UNLCK) {
			shm.held &= (unsigned char)~b;
			shm.excl &= (unsigned char)~b;
		} else {
			shm.held |= b;
			if (type == F_WRLCK)
				shm.excl |= b;
			else
				shm.excl &= (unsigned char)~b;
		}
	}
	return r;
}

/* lbd_walshm_flush: see walshm.h. */
void
lbd_walshm_flush(void)
{
	if (!shm.pending)
		return;
	shm.pending = 0;
	shm_setlk(shm.fd, F_UNLCK, shm.start, shm.len);
}

/* A lock call on the watched -shm file (F_SETLK of f within the lock
 * bytes): made, merged with the unlock held back, or held back itself. */
static int
shm_lock(int fd, struct flock *f)
{
	off_t         lo, hi;
	unsigned char between;
	int           r, saved;

	if (shm.pending) {
		/* Given up exclusive, taken shared: changed in place. */
		if (f->l_type == F_RDLCK && f->l_start == shm.start &&
		    f->l_len == shm.len) {
			shm.pending = 0;
			if ((r = shm_setlk(fd, F_RDLCK, f->l_start,
			    f->l_len)) == -1) {
				saved = errno;  /* given up, as sqlite thinks */
				shm_setlk(fd, F_UNLCK, f->l_start, f->l_len);
				errno = saved;
			}
			return r;
		}
		/* Two unlocks: one, when nothing held lies between. */
		if (f->l_type == F_UNLCK) {
			lo = f->l_start < shm.start ? f->l_start : shm.start;
			hi = f->l_start + f->l_len > shm.start + shm.len ?
			    f->l_start + f->l_len : shm.start + shm.len;
			between = (unsigned char)(bits(lo, hi - lo) &
			    ~bits(f->l_start, f->l_len) &
			    ~bits(shm.start, shm.len));
			if ((shm.held & between) == 0) {
				shm.pending = 0;
				return shm_setlk(fd, F_UNLCK, lo, hi - lo);
			}
		}
		lbd_walshm_flush();
	}
	/* An exclusive lock given up: held back, to see what comes next. */
	if (f->l_type == F_UNLCK && (shm.excl & bits(f->l_start, f->l_len)) ==
	    bits(f->l_start, f->l_len)) {
		shm.pending = 1;
		shm.start = f->l_start;
		shm.len = f->l_len;
		return 0;
	}
	return shm_setlk(fd, f->l_type, f->l_start, f->l_len);
}

/* The fcntl the unix VFS calls (glibc's shape: one pointer-sized
 * argument, whatever the command). */
static int
walshm_fcntl(int fd, int cmd, ...)
{
	struct flock *f;
	va_list       ap;
	void         *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd == shm.fd && fd != -1 && cmd == F_SETLK) {
		f = arg;
		if (f->l_whence == SEEK_SET && f->l_len > 0 &&
		    f->l_start >= SHM_FIRST &&
		    f->l_start + f->l_len <= SHM_END &&
		    (f->l_type == F_RDLCK || f->l_type == F_WRLCK ||
		    f->l_type == F_UNLCK))
			return shm_lock(fd, f);
	}
	if (fd == shm.fd)
		lbd_walshm_flush();
	return real_fcntl(fd, cmd, arg);
}

/* lbd_walshm_install: see walshm.h. */
int
lbd_walshm_install(void)
{
	sqlite3_vfs *vfs;

	if (real_fcntl != NULL)
		return 0;
	if ((vfs = sqlite3_vfs_find("unix")) == NULL ||
	    vfs->iVersion < 3 || vfs->xGetSystemCall == NULL ||
	    (real_fcntl = (fcntl_fn)vfs->xGetSystemCall(vfs, "fcntl")) ==
	    NULL)
		return -1;
	if (vfs->xSetSystemCall(vfs, "fcntl",
	    (sqlite3_syscall_ptr)walshm_fcntl) != SQLITE_OK) {
		real_fcntl = NULL;
		return -1;
	}
	return 0;
}

/* lbd_walshm_watch: see walshm.h.  The -shm file is found among this
 * process's descriptors by its identity (the names in /proc/self/fd are
 * the kernel's, which need not be the database's as given). */
void
lbd_walshm_watch(const char *db)
{
	struct dirent *e;
	struct stat    want, st;
	char           name[PATH_MAX + 8];
	DIR           *d;
	int            fd;

	lbd_walshm_flush();
	shm.fd = -1;
	shm.held = shm.excl = 0;
	if (db == NULL || real_fcntl == NULL)
		return;
	snprintf(name, sizeof(name), "%s-shm", db);
	if (stat(name, &want) != 0 || (d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || (fd = atoi(e->d_name)) == dirfd(d))
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_dev == want.st_dev && st.st_ino == want.st_ino) {
			shm.fd = fd;
			break;
		}
	}
	closedir(d);
	if (shm.fd == -1)
		log_debug("%s: not found open; its locks are taken as sqlite "
		    "takes them", name);
}
