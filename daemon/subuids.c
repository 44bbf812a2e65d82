/*
 * subuids.c: users' subordinate uids, from subuid(5) (see subuids.h).
 * The table is the file's usable ranges sorted by their first uid, none
 * overlapping another, so that a uid's owner is one binary search away.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "log.h"
#include "subuids.h"

/* The system's file, for the setting's "". */
#define SUBUIDS_FILE "/etc/subuid"

/* The file is read whole, up to this: a larger one is refused. */
#define SUBUIDS_FILE_MAX (16 * 1024 * 1024)
/* Lines logged as skipped, at most, each time the file is read. */
#define SUBUIDS_LOGGED 10
/* The file is looked at for changes once a second at most (ms). */
#define SUBUIDS_LOOK_MS 1000

/* One range: uids first .. first + count - 1 count in owner's budgets. */
struct range {
	unsigned long long first;
	unsigned long long count;
	uid_t              owner;
};

struct lbd_subuids {
	struct range *r;
	size_t        n;
	char          file[PATH_MAX];  /* "none": no file */
	int           seen;            /* the file's identity below is known */
	struct stat   st;              /* the file as read last */
	uint64_t      looked;          /* uv_now of the last look (ms) */
	int           told;            /* a failed read was logged */
};

/* Orders ranges by their first uid. */
static int
range_order(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Parses a plain decimal number of at most 10 digits from s into *v: 0,
 * or -1. */
static int
parse_id(const char *s, unsigned long long *v)
{
	size_t i;

	*v = 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		*v = *v * 10 + (unsigned long long)(s[i] - '0');
	}
	return i == 0 ? -1 : 0;
}

/* The uid of owner (a user name, or a uid in decimal) into *uid: 0, or
 * -1 when there is no such user. */
static int
owner_uid(const char *owner, uid_t *uid)
{
	struct passwd      pw, *found = NULL;
	char               buf[4096];
	unsigned long long v;

	if (parse_id(owner, &v) == 0) {
		if (v > (uid_t)-2)
			return -1;
		*uid = (uid_t)v;
		return 0;
	}
	if (getpwnam_r(owner, &pw, buf, sizeof(buf), &found) != 0 ||
	    found == NULL)
		return -1;
	*uid = found->pw_uid;
	return 0;
}

/* Parses one line (NUL-terminated, without its newline) into *r: 0; 1
 * for a line that says nothing (blank, a comment); or -1 with why set
 * to what is wrong with it. */
static int
parse_line(char *line, struct range *r, const char **why)
{
	char              *owner = line, *first, *count;
	unsigned long long end;

	while (*owner == ' ' || *owner == '\t')
		owner++;
	if (*owner == '\0' || *owner == '#')
		return 1;
	if ((first = strchr(owner, ':')) == NULL ||
	    (count = strchr(first + 1, ':')) == NULL ||
	    strchr(count + 1, ':') != NULL) {
		*why = "not OWNER:FIRST:COUNT";
		return -1;
	}
	*first++ = '\0';
	*count++ = '\0';
	if (parse_id(first, &r->first) != 0 ||
	    parse_id(count, &r->count) != 0 || r->count == 0) {
		*why = "FIRST and COUNT are not decimal uids (COUNT above 0)";
		return -1;
	}
	end = r->first + r->count - 1;
	if (end > (uid_t)-2) {
		*why = "the range goes past the last uid";
		return -1;
	}
	if (owner_uid(owner, &r->owner) != 0) {
		*why = "no such user";
		return -1;
	}
	if (r->first == 0 || (r->owner >= r->first && r->owner <= end)) {
		*why = "the range holds uid 0 or its owner's own uid";
		return -1;
	}
	return 0;
}

/* Reads f's whole text (a regular file of at most SUBUIDS_FILE_MAX
 * bytes) into a new NUL-terminated buffer: it, or NULL with errno set. */
static char *
read_all(FILE *f, const struct stat *st)
{
	char  *text;
	size_t n;

	if (!S_ISREG(st->st_mode) || st->st_size > SUBUIDS_FILE_MAX) {
		errno = S_ISREG(st->st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	if ((text = malloc((size_t)st->st_size + 1)) == NULL)
		return NULL;
	n = fread(text, 1, (size_t)st->st_size, f);
	if (ferror(f)) {
		free(text);
		errno = EIO;
		return NULL;
	}
	text[n] = '\0';
	return text;
}

/*
 * Parses text into t's ranges (t->r, t->n, allocated here): sorted, a
 * range that overlaps one before it skipped.  0, or -1 when out of
 * memory.
 */
static int
table_parse(struct lbd_subuids *t, char *text)
{
	char        *line, *next;
	const char  *why;
	size_t       lines = 1, n = 0, kept, i, logged = 0;
	int          lineno = 0, r;

	for (line = text; *line != '\0'; line++)
		lines += *line == '\n';
	if ((t->r = calloc(lines, sizeof(*t->r))) == NULL)
		return -1;
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		lineno++;
		if ((r = parse_line(line, &t->r[n], &why)) == 0)
			n++;
		else if (r < 0 && logged++ < SUBUIDS_LOGGED)
			log_warn("%s: line %d skipped: %s", t->file, lineno,
			    why);
	}
	qsort(t->r, n, sizeof(*t->r), range_order);
	for (i = kept = 0; i < n; i++) {
		if (kept > 0 && t->r[i].first < t->r[kept - 1].first +
		    t->r[kept - 1].count) {
			if (logged++ < SUBUIDS_LOGGED)
				log_warn("%s: the range from uid %llu skipped: "
				    "it overlaps the one from uid %llu",
				    t->file, t->r[i].first,
				    t->r[kept - 1].first);
			continue;
		}
		t->r[kept++] = t->r[i];
	}
	t->n = kept;
	return 0;
}

/* Frees t and its ranges. */
static void
table_free(struct lbd_subuids *t)
{
	if (t != NULL)
		free(t->r);
	free(t);
}

/* lbd_subuids_load: see subuids.h. */
int
lbd_subuids_load(struct lbd *d, const char *file, char *why, size_t size)
{
	struct lbd_subuids *t;
	FILE               *f = NULL;
	char               *text = NULL;
	int                 r = -1;

	if (*file == '\0')
		file = SUBUIDS_FILE;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    strlen(file) >= sizeof(t->file)) {
		snprintf(why, size, "cannot read %s: %s", file, t == NULL ?
		    strerror(ENOMEM) : "name too long");
		goto out;
	}
	memcpy(t->file, file, strlen(file) + 1);
	t->looked = d->loop != NULL ? uv_now(d->loop) : 0;
	if (strcmp(file, "none") != 0 &&
	    (f = fopen(file, "re")) == NULL && errno != ENOENT) {
		snprintf(why, size, "cannot read %s: %s", file,
		    strerror(errno));
		goto out;
	}
	if (f != NULL) {
		if (fstat(fileno(f), &t->st) == -1 ||
		    (text = read_all(f, &t->st)) == NULL ||
		    table_parse(t, text) != 0) {
			snprintf(why, size, "cannot read %s: %s", file,
			    strerror(errno));
			goto out;
		}
		t->seen = 1;
	}
	table_free(d->subuids);
	d->subuids = t;
	t = NULL;
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	free(text);
	table_free(t);
	return r;
}

/* 1 when file is not the one t read (its identity, size or times
 * changed, or it came or went), else 0. */
static int
changed(const struct lbd_subuids *t, const struct stat *st, int there)
{
	if (there != t->seen)
		return 1;
	return there && (st->st_dev != t->st.st_dev ||
	    st->st_ino != t->st.st_ino || st->st_size != t->st.st_size ||
	    st->st_mtim.tv_sec != t->st.st_mtim.tv_sec ||
	    st->st_mtim.tv_nsec != t->st.st_mtim.tv_nsec ||
	    st->st_ctim.tv_sec != t->st.st_ctim.tv_sec ||
	    st->st_ctim.tv_nsec != t->st.st_ctim.tv_nsec);
}

/* lbd_subuids_refresh: see subuids.h. */
void
lbd_subuids_refresh(struct lbd *d)
{
	struct lbd_subuids *t = d->subuids;
	struct stat         st;
	char                why[PATH_MAX + 128];
	uint64_t            now = uv_now(d->loop);
	int                 there;

	if (t == NULL || strcmp(t->file, "none") == 0 ||
	    now - t->looked < SUBUIDS_LOOK_MS)
		return;
	t->looked = now;
	there = stat(t->file, &st) == 0;
	if (!changed(t, &st, there))
		return;
	if (lbd_subuids_load(d, t->file, why, sizeof(why)) == 0) {
		log_info("%s read again: %zu ranges of subordinate uids",
		    d->subuids->file, d->subuids->n);
		return;
	}
	if (!t->told)
		log_warn("%s; the ranges read before stay", why);
	t->told = 1;
	if (there)
		t->st = st;     /* told once for this change */
}

/* lbd_subuids_owner: see subuids.h. */
uid_t
lbd_subuids_owner(const struct lbd *d, uid_t uid)
{
	const struct lbd_subuids *t = d->subuids;
	size_t                    lo = 0, hi, mid;

	if (t == NULL || t->n == 0)
		return uid;
	hi = t->n;
	while (hi - lo > 1) {           /* the last range from <= uid */
		mid = lo + (hi - lo) / 2;
		if (t->r[mid].first <= uid)
			lo = mid;
		else
			hi = mid;
	}
	if (t->r[lo].first <= uid && uid - t->r[lo].first < t->r[lo].count)
		return t->r[lo].owner;
	return uid;
}

/* lbd_subuids_free: see subuids.h. */
void
lbd_subuids_free(struct lbd *d)
{
	table_free(d->subuids);
	d->subuids = NULL;
}
