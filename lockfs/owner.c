/*
 * owner.c: who holds a lock.  Builds this owner's unique name in lockfile's
 * shape, parses the names found in artefacts (ours and Python's), and tells
 * whether a named holder is provably dead.
 *
 * Unique names (lockfile 0.12.2 makes the first column; we add a suffix
 * after '~' that lockfile never produces, so that ours parse unambiguously
 * and carry what guards against pid reuse and reboots):
 *
 *   method           lockfile                  lockbroker
 *   link, sqlite     DIR/HOST[-TID].PID<hash>  DIR/HOST[-TID8].PID~START.BOOT.HASH
 *   symlink          HOST[-TID].PID<hash>      HOST[-TID8].PID~START.BOOT.HASH
 *   mkdir marker     HOST.[-TID]PID            HOST.[-TID8]PID~START.BOOT.HASH
 *   pidfile          PATH (holds "PID\n")      the same
 *
 * TID8 is the kernel thread id in 8 zero-padded hex digits, START the
 * process start time (lockfs_os_start_time: on Linux clock ticks since boot),
 * BOOT the first 8 hex digits of the boot id, HASH a 32-bit FNV-1a hash of
 * the lock file's path in 8 hex digits (lockfile's hash(path) keeps two
 * locks in one directory apart; ours does the same, stably).
 * Python's <hash> is a signed decimal, so a Python name tells its pid only
 * when the hash is negative ("PID-HASH"); otherwise the pid is unknown.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfs.h"

static char           self_host[LOCKFS_HOST_MAX];
static char           self_boot[9];
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

/* This process's start time, read once per process and thread (every
 * lockfs_init asks for it: the daemon's on every request).  Kept per
 * thread, so that no lock is needed and a forked child, whose pid
 * differs, reads its own. */
static __thread pid_t              self_start_pid;
static __thread unsigned long long self_start;

/* Reads the host name and boot id once per process. */
static void
self_init(void)
{
	lockfs_os_hostname(self_host, sizeof(self_host));
	lockfs_os_boot_id(self_boot, sizeof(self_boot));
}

/* lockfs_hostname: this host's name, as gethostname() tells it. */
const char *
lockfs_hostname(void)
{
	pthread_once(&self_once, self_init);
	return self_host;
}

/*
 * lockfs_owner_self: fills *o with this process (and, when threaded, the
 * calling thread), whose artefacts are files of the uid it makes files
 * with.  Returns 0, or -1 with errno set when the process start time
 * cannot be read.
 */
int
lockfs_owner_self(struct lockfs_owner *o, int threaded)
{
	pthread_once(&self_once, self_init);
	memset(o, 0, sizeof(*o));
	snprintf(o->host, sizeof(o->host), "%s", self_host);
	memcpy(o->boot, self_boot, sizeof(o->boot));
	o->pid = lockfs_os_pid();
	o->tid = threaded ? lockfs_gettid() : 0;
	o->uid = lockfs_os_files_uid();
	if (self_start_pid != o->pid) {
		if (lockfs_os_start_time(o->pid, &self_start) == -1)
			return -1;
		self_start_pid = o->pid;
	}
	o->start = self_start;
	return 0;
}

/*
 * lockfs_owner_of_pid: fills *o with process pid on this host and, when tid
 * is not 0, that thread (taken as given, not checked): host and boot id as
 * lockfs_owner_self has them, the start time lockfs_os_start_time tells, and as
 * uid the one this thread makes files with (the artefacts are made here):
 * the daemon, which takes locks on behalf of its clients, sets the
 * client's uid instead.  Returns 0, or -1
 * with errno EINVAL (pid <= 0 or tid < 0), ESRCH (no such process), or
 * another errno when the process exists but its start cannot be read.
 */
int
lockfs_owner_of_pid(struct lockfs_owner *o, pid_t pid, pid_t tid)
{
	int r = -1;

	pthread_once(&self_once, self_init);
	memset(o, 0, sizeof(*o));
	if (pid <= 0 || tid < 0) {
		errno = EINVAL;
		goto out;
	}
	snprintf(o->host, sizeof(o->host), "%s", self_host);
	memcpy(o->boot, self_boot, sizeof(o->boot));
	o->pid = pid;
	o->tid = tid;
	o->uid = lockfs_os_files_uid();
	if (lockfs_os_start_time(pid, &o->start) == 0)
		r = 0;
out:
	return r;
}

/* FNV-1a, 32 bits: a stable hash of a lock file's path. */
static unsigned int
path_hash(const char *s)
{
	unsigned int h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * lockfs_unique_format: writes owner o's unique name for the lock whose
 * artefact is lock_file, in the shape of the table above.  Returns 0, or -1
 * with errno ENAMETOOLONG.
 */
int
lockfs_unique_format(const struct lockfs_owner *o, unsigned method,
    const char *lock_file, char *out, size_t size)
{
	char        tid[16] = "", tail[64];
	const char *slash = strrchr(lock_file, '/');
	int         dirlen = slash == NULL ? 0 : (int)(slash - lock_file);
	int         r;

	if (o->tid != 0)
		snprintf(tid, sizeof(tid), "-%08x", (unsigned int)o->tid);
	snprintf(tail, sizeof(tail), "%ld~%llu.%s.%08x", (long)o->pid,
	    o->start, o->boot[0] != '\0' ? o->boot : "0",
	    path_hash(lock_file));
	switch (method) {
	case LB_LINK:
	case LB_SQLITE:
		r = snprintf(out, size, "%.*s/%s%s.%s", dirlen, lock_file,
		    o->host, tid, tail);
		break;
	case LB_SYMLINK:
		r = snprintf(out, size, "%s%s.%s", o->host, tid, tail);
		break;
	case LB_MKDIR:
		r = snprintf(out, size, "%s/%s.%s%s", lock_file, o->host, tid,
		    tail);
		break;
	default:        /* LB_PIDFILE: lockfile's unique_name is the path */
		r = snprintf(out, size, "%s", lock_file);
		break;
	}
	if (r < 0 || (size_t)r >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * lockfs_unique_make: sets l->unique to owner o's unique name for l's
 * method and lock file (lockfs_unique_format), allocated to its length,
 * and frees the name l had (and forgets that l wrote a sqlite row under
 * it).  Returns 0, or -1 with errno ENAMETOOLONG or ENOMEM and l->unique
 * unchanged.
 */
int
lockfs_unique_make(struct lockfs_lock *l, const struct lockfs_owner *o)
{
	char  name[PATH_MAX];
	char *copy = NULL;
	int   r = -1;

	if (lockfs_unique_format(o, l->method, l->lock_file, name,
	    sizeof(name)) == -1 || (copy = strdup(name)) == NULL)
		goto out;
	free(l->unique);
	l->unique = copy;
	l->sqlite_row_ours = 0;         /* a row of the old name's, if any */
	r = 0;
out:
	return r;
}

/* Parses a run of decimal digits [p, end) into *v; -1 if not all digits. */
static int
parse_decimal(const char *p, const char *end, unsigned long long *v)
{
	unsigned long long x = 0;

	if (p >= end || end - p > 19)
		return -1;
	for (; p < end; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		x = x * 10 + (unsigned long long)(*p - '0');
	}
	*v = x;
	return 0;
}

/* Parses exactly n hex digits at p into *v; -1 if they are not. */
static int
parse_hex(const char *p, size_t n, unsigned long long *v)
{
	unsigned long long x = 0;
	size_t             i;

	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return -1;
		x = x * 16 + (unsigned long long)(isdigit((unsigned char)p[i]) ?
		    p[i] - '0' : tolower((unsigned char)p[i]) - 'a' + 10);
	}
	*v = x;
	return 0;
}

/*
 * lockfs_pid_parse: a pid from a pid file's text, as lockfile reads it: the
 * first line, surrounding white space ignored.  0 with *pid set, or -1.
 */
int
lockfs_pid_parse(const char *text, size_t len, pid_t *pid)
{
	const char         *p = text, *end = text + len, *nl;
	unsigned long long  v;

	if ((nl = memchr(text, '\n', len)) != NULL)
		end = nl;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (parse_decimal(p, end, &v) == -1 || v == 0 || v > 0x7fffffff)
		return -1;
	*pid = (pid_t)v;
	return 0;
}

/* Splits "HOST[-TID]" (len bytes at s) into h->host and h->tid. */
static void
parse_host_tid(const char *s, size_t len, int ours, struct lockfs_holder *h)
{
	const char         *local = lockfs_hostname();
	size_t              ll = strlen(local);
	unsigned long long  v;
	size_t              hl = len;

	if (len == ll && memcmp(s, local, ll) == 0)
		;       /* this host's name, whatever it ends with */
	else if (ours && len > 9 && s[len - 9] == '-' &&
	    parse_hex(s + len - 8, 8, &v) == 0 && v <= 0x7fffffff) {
		h->tid = (pid_t)v;
		hl = len - 9;
	} else if (!ours && len > ll + 1 && memcmp(s, local, ll) == 0 &&
	    s[ll] == '-' && len - ll - 1 <= 16 &&
	    parse_hex(s + ll + 1, len - ll - 1, &v) == 0) {
		h->tid = (pid_t)(v & 0x7fffffff);
		hl = ll;
	}
	if (hl >= sizeof(h->host))
		hl = sizeof(h->host) - 1;
	memcpy(h->host, s, hl);
	h->host[hl] = '\0';
}

/*
 * lockfs_unique_parse: what a unique name (a basename, or a path whose last
 * component, after a '/' or a '\', is taken: no host name has either)
 * says of its holder, for the given method.  Fills what
 * it can tell of *h (host, pid, tid, start, boot) and leaves the rest as
 * found.  Returns 0 when the name has a known shape, else -1.
 */
int
lockfs_unique_parse(const char *name, unsigned method,
    struct lockfs_holder *h)
{
	const char         *base = strrchr(name, '/'), *bs = strrchr(name, '\\');
	const char         *tilde, *end, *dot, *p, *dash;
	unsigned long long  v;
	size_t              len;
	int                 ours;

	if (bs != NULL && (base == NULL || bs > base))
		base = bs;      /* Windows' spelling (a sqlite row's) */
	base = base == NULL ? name : base + 1;
	snprintf(h->unique, sizeof(h->unique), "%s", name);
	tilde = strchr(base, '~');
	ours = tilde != NULL;
	end = ours ? tilde : base + strlen(base);

	if (ours) {
		/* START.BOOT[.HASH] */
		p = tilde + 1;
		if ((dot = strchr(p, '.')) == NULL ||
		    parse_decimal(p, dot, &v) == -1)
			return -1;
		h->start = v;
		p = dot + 1;
		if (p[0] == '0' && (p[1] == '.' || p[1] == '\0'))
			h->boot[0] = '\0';     /* the writer knew no boot id */
		else if (strlen(p) < 8 || parse_hex(p, 8, &v) == -1)
			return -1;
		else {
			memcpy(h->boot, p, 8);
			h->boot[8] = '\0';
		}
	}

	/* The last '.' before the suffix separates the host from the rest. */
	for (dot = end; dot > base && dot[-1] != '.'; dot--)
		;
	if (dot == base)
		return -1;
	dot--;
	if (method == LB_MKDIR) {
		/* HOST.[-TID]PID: the thread is never in the host part */
		len = (size_t)(dot - base) < sizeof(h->host) - 1 ?
		    (size_t)(dot - base) : sizeof(h->host) - 1;
		memcpy(h->host, base, len);
		h->host[len] = '\0';
		p = dot + 1;
		if (*p == '-') {
			if (!ours || end - p < 10 ||
			    parse_hex(p + 1, 8, &v) == -1 || v > 0x7fffffff)
				return 0;       /* Python's: tid and pid run
				                   together; or no thread id */
			h->tid = (pid_t)v;
			p += 9;
		}
		if (parse_decimal(p, end, &v) == 0 && v <= 0x7fffffff)
			h->pid = (pid_t)v;
		return 0;
	}

	/* HOST[-TID].PID<hash> */
	parse_host_tid(base, (size_t)(dot - base), ours, h);
	p = dot + 1;
	if (ours)
		dash = end;
	else if ((dash = memchr(p + 1, '-', (size_t)(end - p))) == NULL)
		return 0;               /* Python's positive hash: pid unknown */
	if (parse_decimal(p, dash, &v) == 0 && v <= 0x7fffffff)
		h->pid = (pid_t)v;
	return 0;
}

/*
 * lockfs_holder_liveness: whether the holder *h names is provably dead.
 * DEAD only when it is on this host and its artefact is from an earlier boot,
 * or its pid does not exist, or that pid now belongs to a process started
 * at another time.  ALIVE when the pid exists (and, when the name carries a
 * start time, it matches).  UNKNOWN otherwise: another host, or no pid.
 */
lb_liveness
lockfs_holder_liveness(const struct lockfs_holder *h)
{
	unsigned long long start;

	pthread_once(&self_once, self_init);
	if (h->host[0] != '\0' && strcmp(h->host, self_host) != 0)
		return LB_HOLDER_UNKNOWN;
	if (h->boot[0] != '\0' && self_boot[0] != '\0' &&
	    strcmp(h->boot, self_boot) != 0)
		return LB_HOLDER_DEAD;
	if (h->pid <= 0)
		return LB_HOLDER_UNKNOWN;
	if (lockfs_os_pid_liveness(h->pid) == LB_HOLDER_DEAD)
		return LB_HOLDER_DEAD;
	if (h->start == 0)
		return LB_HOLDER_ALIVE;
	if (lockfs_os_start_time(h->pid, &start) == 0)
		return start == h->start ? LB_HOLDER_ALIVE : LB_HOLDER_DEAD;
	/* Unreadable: gone since it was looked for, or hidden from us. */
	return errno == ESRCH ? LB_HOLDER_DEAD : LB_HOLDER_ALIVE;
}
