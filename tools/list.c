/*
 * list.c: lockbroker list: every lock the broker knows (held through it,
 * or waited for), from the library's lb_list, as a table for people (in
 * the manner of lslocks(8)) or, with --json, as one JSON document for
 * programs.  The JSON document's keys are stable and documented in
 * lockbroker(1):
 *
 *   { "socket": "...", "server": "lockbrokerd/0.3.0",
 *     "locks": [ { "path": "...", "method": "link", "mode": "exclusive",
 *                  "holder_pid": 42, "holder_uid": 1000,
 *                  "holder_user": "alice", "holder_tid": 0,
 *                  "host": "box", "since": 1732761600.25,
 *                  "since_iso": "2024-11-28T03:40:00.250+01:00",
 *                  "token": 7, "waiters": 0, "state": "held",
 *                  "cluster": null },
 *                ... ] }
 *
 * Every key is always there; a value the daemon did not give is null
 * ("cluster": a cluster lock's side in etcd, "held", "waiting", ...).
 * A lock held shared has one row (one object) per holder, each with its
 * mode, the holder its lock file names first.  Locks are sorted by path,
 * then method.  Strings are UTF-8; a byte that
 * is not part of valid UTF-8 (a path is bytes) is written \udcXX, as
 * Python's surrogateescape does, so os.fsencode() gives the bytes back.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockbroker.h"
#include "cli.h"
#include "os.h"

/* One holder of a lock (or a lock only waited for), as lb_list passed
 * it, with its strings copied; a have_* flag is 0 when the field was
 * absent.  A lock held shared has one item per holder. */
struct item {
	char     *path;
	unsigned  method;
	size_t    seq;              /* the order lb_list passed it in */
	int       have_mode, shared;
	char     *host;             /* NULL: absent */
	int       have_since;
	double    since;
	uint64_t  pid, uid, tid, token, waiters;
	int       have_pid, have_uid, have_tid, have_token, have_waiters;
	const char *state;          /* item_state: NULL when nobody holds it */
	const char *cluster;        /* a cluster lock's side in etcd, or NULL */
};

/* The items collected from the listing. */
struct items {
	struct item *v;
	size_t       n, cap;
	int          nomem;
};

/* strdup of value, or NULL for NULL; sets *nomem on failure. */
static char *
dup_or_null(const char *value, int *nomem)
{
	char *s;

	if (value == NULL)
		return NULL;
	if ((s = strdup(value)) == NULL)
		*nomem = 1;
	return s;
}

/* The state of the hold of e, as the list shows it: "releasing" (its
 * release answered, its artefact not yet removed), "unclaimed" (held for
 * a process that has not claimed it back from the previous daemon),
 * "held"; NULL when nobody holds the lock (it is only waited for). */
static const char *
item_state(const lb_list_entry *e)
{
	if ((e->known & LB_LIST_PID) == 0)
		return NULL;
	if (e->releasing)
		return "releasing";
	return e->unclaimed ? "unclaimed" : "held";
}

/* The name of a cluster lock's side in etcd (lb_list_entry's cluster),
 * or NULL for a lock of this host alone. */
static const char *
item_cluster(const lb_list_entry *e)
{
	static const char *const names[] = {
		"idle", "taking", "waiting", "held", "lost", "releasing"
	};

	return e->cluster >= LB_CLUSTER_IDLE &&
	    e->cluster <= LB_CLUSTER_RELEASING ?
	    names[e->cluster - LB_CLUSTER_IDLE] : NULL;
}

/* lb_list's callback: adds the lock to the struct items at arg.  0, or 1
 * (stop) when out of memory. */
static int
item_add(const lb_list_entry *e, void *arg)
{
	struct items *all = arg;
	struct item  *it, *v;
	size_t        cap;

	if (all->n == all->cap) {
		cap = all->cap == 0 ? 16 : all->cap * 2;
		if ((v = realloc(all->v, cap * sizeof(*v))) == NULL) {
			all->nomem = 1;
			return 1;
		}
		all->v = v;
		all->cap = cap;
	}
	it = &all->v[all->n++];
	memset(it, 0, sizeof(*it));
	it->path = dup_or_null(e->path, &all->nomem);
	it->method = e->method;
	it->seq = all->n;
	it->have_mode = (e->known & LB_LIST_MODE) != 0;
	it->shared = e->shared;
	it->host = dup_or_null(e->host, &all->nomem);
	it->have_since = (e->known & LB_LIST_SINCE) != 0;
	it->since = e->since;
	it->have_pid = (e->known & LB_LIST_PID) != 0;
	it->pid = (uint64_t)e->pid;
	it->have_uid = (e->known & LB_LIST_UID) != 0;
	it->uid = (uint64_t)e->uid;
	it->have_tid = (e->known & LB_LIST_TID) != 0;
	it->tid = (uint64_t)e->tid;
	it->have_token = (e->known & LB_LIST_TOKEN) != 0;
	it->token = e->token;
	it->have_waiters = (e->known & LB_LIST_WAITERS) != 0;
	it->waiters = e->waiters;
	it->state = item_state(e);
	it->cluster = item_cluster(e);
	return all->nomem ? 1 : 0;
}

/* qsort order: by path (bytes), then method name, then as lb_list
 * passed them (a shared lock's holders: the lock file's first). */
static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int                c = strcmp(x->path, y->path);

	if (c == 0)
		c = strcmp(lb_method_name(x->method),
		    lb_method_name(y->method));
	if (c == 0)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return c;
}

static void
items_free(struct items *all)
{
	size_t i;

	for (i = 0; i < all->n; i++) {
		free(all->v[i].path);
		free(all->v[i].host);
	}
	free(all->v);
}

/* ------------------------------------------------------------------ */
/* The table.                                                          */

/* s with each control byte (and DEL) written \xHH, so that one lock is
 * one line; into buf (size bytes, cut to fit). */
static const char *
printable(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	for (; *s != '\0' && n + 5 < size; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x",
			    (unsigned char)*s);
		else
			buf[n++] = *s;
	}
	buf[n] = '\0';
	return buf;
}

/* A table cell of number v, or "-" when absent; into buf. */
static const char *
number_cell(int have, uint64_t v, char *buf, size_t size)
{
	if (have)
		snprintf(buf, size, "%llu", (unsigned long long)v);
	else
		snprintf(buf, size, "-");
	return buf;
}

/* The USER cell: the holder's user name, else its uid, else "-". */
static const char *
user_cell(const struct item *it, char *buf, size_t size)
{
	if (!it->have_uid)
		snprintf(buf, size, "-");
	else if (strcmp(user_name((lb_uid_t)it->uid, buf, size), "?") == 0)
		snprintf(buf, size, "%llu", (unsigned long long)it->uid);
	return buf;
}

/* The SINCE cell: local time to the second, ISO 8601 without the offset
 * (2024-11-28T03:40:00), or "-". */
static const char *
since_cell(const struct item *it, char *buf, size_t size)
{
	struct tm tm;
	time_t    t = (time_t)it->since;
	long      off;

	if (!it->have_since || os_local_time(t, &tm, &off) == -1 ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(buf, size, "-");
	return buf;
}

/* The MODE cell: "shared", "exclusive", or "-" when not given. */
static const char *
mode_cell(const struct item *it)
{
	if (!it->have_mode)
		return "-";
	return it->shared ? "shared" : "exclusive";
}

#define NCOLS 9

/* The cells of one row (or of the heading, when it is NULL). */
static void
row_cells(const struct item *it, char cells[NCOLS][4096 + 64])
{
	static const char *heading[NCOLS] = {
		"PATH", "METHOD", "MODE", "PID", "USER", "SINCE", "TOKEN",
		"WAITERS", "STATE"
	};
	size_t size = sizeof(cells[0]);
	int    i;

	if (it == NULL) {
		for (i = 0; i < NCOLS; i++)
			snprintf(cells[i], size, "%s", heading[i]);
		return;
	}
	printable(it->path, cells[0], size);
	printable(lb_method_name(it->method), cells[1], size);
	snprintf(cells[2], size, "%s", mode_cell(it));
	number_cell(it->have_pid, it->pid, cells[3], size);
	user_cell(it, cells[4], size);
	since_cell(it, cells[5], size);
	number_cell(it->have_token, it->token, cells[6], size);
	number_cell(it->have_waiters, it->waiters, cells[7], size);
	if (it->cluster != NULL)
		snprintf(cells[8], size, "%s, cluster %s", it->state != NULL ?
		    it->state : "waited for", it->cluster);
	else
		snprintf(cells[8], size, "%s", it->state != NULL ? it->state :
		    "-");
}

/*
 * Prints the table: a heading, then one line a holder (a lock held
 * exclusive, or waited for, has one), columns separated
 * by a space and aligned (numbers to the right); the last column is not
 * padded.  0, or -1 when out of memory.
 */
static int
print_table(const struct items *all)
{
	static const int right[NCOLS] = { 0, 0, 0, 1, 0, 0, 1, 1, 0 };
	char   (*cells)[4096 + 64];
	size_t width[NCOLS] = { 0 }, i, len;
	int    c;

	if ((cells = malloc(NCOLS * sizeof(*cells))) == NULL)
		return -1;
	for (i = 0; i <= all->n; i++) {
		row_cells(i == 0 ? NULL : &all->v[i - 1], cells);
		for (c = 0; c < NCOLS; c++)
			if ((len = strlen(cells[c])) > width[c])
				width[c] = len;
	}
	for (i = 0; i <= all->n; i++) {
		row_cells(i == 0 ? NULL : &all->v[i - 1], cells);
		for (c = 0; c < NCOLS; c++) {
			if (c == NCOLS - 1 && !right[c])
				printf("%s", cells[c]);
			else
				printf(right[c] ? "%*s" : "%-*s",
				    (int)width[c], cells[c]);
			putchar(c == NCOLS - 1 ? '\n' : ' ');
		}
	}
	free(cells);
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON.                                                               */

/*
 * The length of the valid UTF-8 sequence at s (1 to 4 bytes, the first
 * byte >= 0x80), or 0 when it is not one: a stray continuation byte, a
 * sequence cut short, an overlong form, a surrogate or beyond U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) ||    /* overlong */
	    (s[0] == 0xed && s[1] >= 0xa0) ||   /* surrogate */
	    (s[0] == 0xf0 && s[1] < 0x90) ||    /* overlong */
	    (s[0] == 0xf4 && s[1] >= 0x90))     /* beyond U+10FFFF */
		return 0;
	return n;
}

/* Prints s as a JSON string, or null for NULL. */
static void
json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t               n;

	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			putchar('\\');
			putchar(*p++);
		} else if (*p == '\n') {
			fputs("\\n", stdout);
			p++;
		} else if (*p == '\t') {
			fputs("\\t", stdout);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p++);
		} else if (*p < 0x80) {
			putchar(*p++);
		} else if ((n = utf8_len(p)) != 0) {
			fwrite(p, 1, n, stdout);
			p += n;
		} else
			printf("\\udc%02x", *p++);
	}
	putchar('"');
}

/*
 * Prints a time (epoch seconds, not negative) as a JSON number, as the
 * daemon sends it: rounded to 6 decimals, trailing zeros (and a bare '.')
 * trimmed, whatever the locale; null when absent.
 */
static void
json_time(int have, double since)
{
	uint64_t ip, fp, div;

	if (!have || !(since >= 0) || since >= 18446744073709551616.0) {
		fputs("null", stdout);
		return;
	}
	ip = (uint64_t)since;
	if ((fp = (uint64_t)((since - (double)ip) * 1e6 + 0.5)) >= 1000000) {
		fp -= 1000000;
		ip++;
	}
	printf("%llu", (unsigned long long)ip);
	if (fp != 0) {
		putchar('.');
		for (div = 100000; fp != 0; div /= 10) {
			putchar((int)('0' + fp / div));
			fp %= div;
		}
	}
}

/* Prints a JSON number, or null when absent. */
static void
json_number(int have, uint64_t v)
{
	if (have)
		printf("%llu", (unsigned long long)v);
	else
		fputs("null", stdout);
}

/* Prints the member "key": (with its indent) before a value. */
static void
json_key(const char *key, int first)
{
	printf("%s\n      \"%s\": ", first ? "" : ",", key);
}

/* Prints one holder of a lock (or a lock waited for) as a JSON object. */
static void
json_item(const struct item *it)
{
	char user[256], since[64];

	fputs("    {", stdout);
	json_key("path", 1);
	json_string(it->path);
	json_key("method", 0);
	json_string(lb_method_name(it->method));
	json_key("mode", 0);
	json_string(it->have_mode ? mode_cell(it) : NULL);
	json_key("holder_pid", 0);
	json_number(it->have_pid, it->pid);
	json_key("holder_uid", 0);
	json_number(it->have_uid, it->uid);
	json_key("holder_user", 0);
	if (it->have_uid && strcmp(user_name((lb_uid_t)it->uid, user,
	    sizeof(user)), "?") != 0)
		json_string(user);
	else
		json_string(NULL);
	json_key("holder_tid", 0);
	json_number(it->have_tid, it->tid);
	json_key("host", 0);
	json_string(it->host);
	json_key("since", 0);
	json_time(it->have_since, it->since);
	json_key("since_iso", 0);
	json_string(it->have_since ? iso_time(it->since, since,
	    sizeof(since)) : NULL);
	json_key("token", 0);
	json_number(it->have_token, it->token);
	json_key("waiters", 0);
	json_number(it->have_waiters, it->waiters);
	json_key("state", 0);
	json_string(it->state);
	json_key("cluster", 0);
	json_string(it->cluster);
	fputs("\n    }", stdout);
}

/* Prints the whole JSON document. */
static void
print_json(const lb_list_info *info, const struct items *all)
{
	size_t i;

	fputs("{\n  \"socket\": ", stdout);
	json_string(info->socket);
	fputs(",\n  \"server\": ", stdout);
	json_string(info->server[0] != '\0' ? info->server : NULL);
	fputs(",\n  \"locks\": [", stdout);
	for (i = 0; i < all->n; i++) {
		fputs(i == 0 ? "\n" : ",\n", stdout);
		json_item(&all->v[i]);
	}
	fputs(all->n > 0 ? "\n  ]\n}\n" : "]\n}\n", stdout);
}

/* ------------------------------------------------------------------ */

/*
 * list: asks the daemon for every lock it knows and prints them.
 * Returns 0, EX_UNAVAILABLE when no daemon answers or the daemon fails
 * the request, EX_OSERR when out of memory.
 */
int
cmd_list(const struct opts *o)
{
	struct items  all = { NULL, 0, 0, 0 };
	lb_list_info *info = NULL;
	char          why[1024];
	int           r = 0, code;

	if ((info = malloc(sizeof(*info))) == NULL) {
		complain("cannot list the locks: out of memory");
		r = EX_OSERR;
		goto out;
	}
	code = lb_list(item_add, &all, info, why, sizeof(why));
	if (code < 0 || all.nomem) {
		complain("cannot list the locks: %s", all.nomem ?
		    "out of memory" : why);
		r = code == LB_ENOMEM || all.nomem ? EX_OSERR : EX_UNAVAILABLE;
		goto out;
	}
	/* With no lock, all.v is NULL, which qsort may not be given. */
	if (all.n > 0)
		qsort(all.v, all.n, sizeof(*all.v), item_cmp);
	if (o->json)
		print_json(info, &all);
	else if (print_table(&all) == -1) {
		complain("cannot list the locks: out of memory");
		r = EX_OSERR;
	}
out:
	items_free(&all);
	free(info);
	return r;
}
