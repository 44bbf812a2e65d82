/*
 * settings.c: lockbrokerd.conf.  One "key = value" per line; blank lines and
 * lines starting with '#' are ignored; white space around key and value is
 * too.  Unknown keys and bad values are errors (a typo must not silently
 * leave a default in place).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "settings.h"

/* lbd_config_defaults: see config.h. */
void
lbd_config_defaults(struct lbd_config *c)
{
	memset(c, 0, sizeof(*c));
	c->grace = LBD_DEFAULT_GRACE;
	c->foreign_poll = LBD_DEFAULT_FOREIGN_POLL;
	c->release_wait = LBD_DEFAULT_RELEASE_WAIT;
	c->limits.holds_per_conn = LBD_DEFAULT_HOLDS_PER_CONN;
	c->limits.waits_per_conn = LBD_DEFAULT_WAITS_PER_CONN;
	c->limits.output_per_conn = LBD_DEFAULT_OUTPUT_PER_CONN;
	c->limits.conns_per_uid = LBD_DEFAULT_CONNS_PER_UID;
	c->limits.conns = LBD_DEFAULT_CONNS;
	c->limits.locks_per_uid = LBD_DEFAULT_LOCKS_PER_UID;
	c->limits.watches_per_uid = LBD_DEFAULT_WATCHES_PER_UID;
	c->limits.watches = LBD_DEFAULT_WATCHES;
	c->limits.pidfds_per_uid = LBD_DEFAULT_PIDFDS_PER_UID;
	c->limits.turn_us = LBD_DEFAULT_TURN_US;
	c->limits.refusals_logged_per_uid = LBD_DEFAULT_REFUSALS_LOGGED_PER_UID;
	c->limits.refusals_logged = LBD_DEFAULT_REFUSALS_LOGGED;
	c->limits.swap_readers_fast = LBD_DEFAULT_SWAP_READERS_FAST;
	c->limits.readers_per_lock = LBD_DEFAULT_READERS_PER_LOCK;
	c->refusals_interval = LBD_DEFAULT_REFUSALS_INTERVAL;
	c->etcd_ttl = LBD_DEFAULT_ETCD_TTL;
	snprintf(c->etcd_prefix, sizeof(c->etcd_prefix), "%s",
	    LBD_DEFAULT_ETCD_PREFIX);
}

/* Value kinds a key may take. */
enum kind { K_PATH_SOCKET, K_PATH_STATE, K_SECONDS, K_WAIT, K_BOOL,
    K_COUNT, K_COUNT0, K_SIZE, K_MICROS, K_CLUSTER_DIR, K_ENDPOINTS,
    K_PREFIX, K_TTL, K_SUBUIDS };

static const struct key {
	const char *name;
	enum kind   kind;
	size_t      offset;
} keys[] = {
	{ "socket",          K_PATH_SOCKET, offsetof(struct lbd_config, socket) },
	{ "state",           K_PATH_STATE,  offsetof(struct lbd_config, state) },
	{ "grace",           K_SECONDS, offsetof(struct lbd_config, grace) },
	{ "foreign_poll",    K_SECONDS, offsetof(struct lbd_config, foreign_poll) },
	{ "release_wait",    K_WAIT,    offsetof(struct lbd_config, release_wait) },
	{ "debug",           K_BOOL,    offsetof(struct lbd_config, debug) },
	{ "holds_per_conn",  K_COUNT,
	    offsetof(struct lbd_config, limits.holds_per_conn) },
	{ "waits_per_conn",  K_COUNT,
	    offsetof(struct lbd_config, limits.waits_per_conn) },
	{ "output_per_conn", K_SIZE,
	    offsetof(struct lbd_config, limits.output_per_conn) },
	{ "conns_per_uid",   K_COUNT,
	    offsetof(struct lbd_config, limits.conns_per_uid) },
	{ "conns",           K_COUNT, offsetof(struct lbd_config, limits.conns) },
	{ "locks_per_uid",   K_COUNT,
	    offsetof(struct lbd_config, limits.locks_per_uid) },
	{ "watches_per_uid", K_COUNT0,
	    offsetof(struct lbd_config, limits.watches_per_uid) },
	{ "watches",         K_COUNT0,
	    offsetof(struct lbd_config, limits.watches) },
	{ "pidfds_per_uid",  K_COUNT0,
	    offsetof(struct lbd_config, limits.pidfds_per_uid) },
	{ "turn_us",         K_MICROS,
	    offsetof(struct lbd_config, limits.turn_us) },
	{ "refusals_logged_per_uid", K_COUNT,
	    offsetof(struct lbd_config, limits.refusals_logged_per_uid) },
	{ "refusals_logged", K_COUNT,
	    offsetof(struct lbd_config, limits.refusals_logged) },
	{ "refusals_interval", K_SECONDS,
	    offsetof(struct lbd_config, refusals_interval) },
	{ "readers_per_lock", K_COUNT0,
	    offsetof(struct lbd_config, limits.readers_per_lock) },
	{ "swap_readers_fast", K_COUNT0,
	    offsetof(struct lbd_config, limits.swap_readers_fast) },
	{ "subordinate_uids", K_SUBUIDS,
	    offsetof(struct lbd_config, subuids) },
	{ "cluster_dir",     K_CLUSTER_DIR,
	    offsetof(struct lbd_config, cluster_dir) },
	{ "etcd_endpoints",  K_ENDPOINTS,
	    offsetof(struct lbd_config, etcd_endpoints) },
	{ "etcd_prefix",     K_PREFIX,
	    offsetof(struct lbd_config, etcd_prefix) },
	{ "etcd_ttl",        K_TTL, offsetof(struct lbd_config, etcd_ttl) },
};

/* The range of a count key (1 or 0 to this) and of a size key (bytes,
 * 1 to this); a microseconds key is 0 to LBD_TURN_US_MAX. */
#define LBD_COUNT_MAX 1000000ULL
#define LBD_SIZE_MAX  (1ULL << 32)

/* Parses a plain decimal integer 1..max from v (NUL-terminated). */
static int
parse_count(const char *v, unsigned long long max, unsigned long long *out)
{
	unsigned long long x = 0;

	if (*v == '\0' || strlen(v) > 19)
		return -1;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		x = x * 10 + (unsigned long long)(*v - '0');
	}
	if (x == 0 || x > max)
		return -1;
	*out = x;
	return 0;
}

/* The range of a seconds key (grace, foreign_poll, release_wait): a day at most, so
 * that its milliseconds always fit the timers (and a typo of a few digits
 * is caught). */
#define LBD_SECONDS_MAX 86400

/* Parses seconds: a plain decimal number (digits and a point, no sign or
 * exponent), > 0 and at most LBD_SECONDS_MAX. */
static int
parse_seconds(const char *v, double *out)
{
	char  *end;
	double x;
	size_t i;

	for (i = 0; v[i] != '\0'; i++)
		if (!isdigit((unsigned char)v[i]) && v[i] != '.')
			return -1;
	errno = 0;
	x = strtod(v, &end);
	if (i == 0 || *end != '\0' || errno != 0 || !(x > 0) ||
	    x > LBD_SECONDS_MAX)
		return -1;
	*out = x;
	return 0;
}

/*
 * Checks etcd_endpoints: 1 to LBD_ETCD_ENDPOINTS_MAX comma-separated
 * URLs http://HOST[:PORT], without a path, white space or anything a URL
 * would take as more; https:// (TLS) is refused as not supported yet.
 * 0, or -1 with what (size bytes) saying why.
 */
static int
check_endpoints(const char *v, char *what, size_t size)
{
	const char *p = v, *e;
	unsigned n = 0;

	for (;;) {
		size_t len, host;

		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len >= 8 && strncmp(p, "https://", 8) == 0) {
			snprintf(what, size, "TLS (https://) to etcd is not "
			    "supported yet");
			return -1;
		}
		if (len <= 7 || strncmp(p, "http://", 7) != 0) {
			snprintf(what, size, "each endpoint is http://HOST"
			    "[:PORT]");
			return -1;
		}
		host = strspn(p + 7, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]");
		if (host != len - 7 || host == 0 || host > 255) {
			snprintf(what, size, "each endpoint is http://HOST"
			    "[:PORT], with no path or user");
			return -1;
		}
		if (++n > LBD_ETCD_ENDPOINTS_MAX) {
			snprintf(what, size, "at most %d endpoints",
			    LBD_ETCD_ENDPOINTS_MAX);
			return -1;
		}
		if (e == NULL)
			return 0;
		p = e + 1;
	}
}

/* Applies one key's value to c; 0, or -1 with why filled. */
static int
apply(struct lbd_config *c, const struct key *k, const char *v, int lineno,
    char *why, size_t size)
{
	unsigned long long n;
	double             x;
	char              *field = (char *)c + k->offset;
	size_t             cap;
	int                r = 0;

	switch (k->kind) {
	case K_PATH_SOCKET:
	case K_PATH_STATE:
		cap = k->kind == K_PATH_SOCKET ? sizeof(c->socket) :
		    sizeof(c->state);
		if (v[0] != '/' || strlen(v) >= cap)
			r = -1;
		else
			memcpy(field, v, strlen(v) + 1);
		break;
	case K_SECONDS:
		r = parse_seconds(v, (double *)(void *)field);
		break;
	case K_WAIT:
		r = parse_seconds(v, &x);
		if (r == 0 && x > LBD_RELEASE_WAIT_MAX)
			r = -1;
		else if (r == 0)
			*(double *)(void *)field = x;
		break;
	case K_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
		    strcmp(v, "1") == 0)
			*(int *)(void *)field = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
		    strcmp(v, "0") == 0)
			*(int *)(void *)field = 0;
		else
			r = -1;
		break;
	case K_COUNT:
		if ((r = parse_count(v, LBD_COUNT_MAX, &n)) == 0)
			*(unsigned *)(void *)field = (unsigned)n;
		break;
	case K_COUNT0:
	case K_MICROS:
		if (strcmp(v, "0") == 0)
			*(unsigned *)(void *)field = 0;
		else if ((r = parse_count(v, k->kind == K_MICROS ?
		    LBD_TURN_US_MAX : LBD_COUNT_MAX, &n)) == 0)
			*(unsigned *)(void *)field = (unsigned)n;
		break;
	case K_SIZE:
		if ((r = parse_count(v, LBD_SIZE_MAX, &n)) == 0)
			*(size_t *)(void *)field = (size_t)n;
		break;
	case K_SUBUIDS:
		if ((v[0] != '/' && strcmp(v, "none") != 0) ||
		    strlen(v) >= sizeof(c->subuids)) {
			snprintf(why, size, "line %d: bad value for %s: "
			    "\"%.64s\" (an absolute file name, or none)",
			    lineno, k->name, v);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		break;
	case K_CLUSTER_DIR:
		/* Absolute, without a trailing '/', "." or ".." part, so
		 * that a lock's path is matched by its plain prefix. */
		if (v[0] != '/' || strlen(v) >= sizeof(c->cluster_dir) ||
		    strcmp(v, "/") == 0 || v[strlen(v) - 1] == '/' ||
		    strstr(v, "//") != NULL || strstr(v, "/./") != NULL ||
		    strstr(v, "/../") != NULL ||
		    (strlen(v) >= 2 && strcmp(v + strlen(v) - 2, "/.") == 0) ||
		    (strlen(v) >= 3 && strcmp(v + strlen(v) - 3, "/..") == 0)) {
			snprintf(why, size, "line %d: bad value for %s: "
			    "\"%.64s\" (an absolute directory, not /, without "
			    "a trailing /, . or ..)", lineno, k->name, v);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		break;
	case K_ENDPOINTS: {
		char what[128];

		if (strlen(v) >= sizeof(c->etcd_endpoints) ||
		    check_endpoints(v, what, sizeof(what)) != 0) {
			if (strlen(v) >= sizeof(c->etcd_endpoints))
				snprintf(what, sizeof(what), "too long");
			snprintf(why, size, "line %d: bad value for %s: "
			    "\"%.64s\" (%s)", lineno, k->name, v, what);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		break;
	}
	case K_PREFIX:
		if (v[0] != '/' || strlen(v) >= sizeof(c->etcd_prefix) ||
		    v[strlen(v) - 1] == '/' ||
		    strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != strlen(v)) {
			snprintf(why, size, "line %d: bad value for %s: "
			    "\"%.64s\" (/ then letters, digits, / . _ -; no "
			    "trailing /; at most %zu bytes)", lineno, k->name,
			    v, sizeof(c->etcd_prefix) - 1);
			return -1;
		}
		memcpy(field, v, strlen(v) + 1);
		break;
	case K_TTL:
		if ((r = parse_count(v, LBD_ETCD_TTL_MAX, &n)) == 0 &&
		    n >= LBD_ETCD_TTL_MIN)
			*(unsigned *)(void *)field = (unsigned)n;
		else {
			snprintf(why, size, "line %d: bad value for %s: "
			    "\"%.64s\" (whole seconds from %d to %d)", lineno,
			    k->name, v, LBD_ETCD_TTL_MIN, LBD_ETCD_TTL_MAX);
			return -1;
		}
		break;
	}
	if (r != 0 && k->kind == K_SECONDS)
		snprintf(why, size, "line %d: bad value for %s: \"%.64s\" "
		    "(seconds: a plain decimal number greater than 0 and at "
		    "most %d)", lineno, k->name, v, LBD_SECONDS_MAX);
	else if (r != 0 && k->kind == K_WAIT)
		snprintf(why, size, "line %d: bad value for %s: \"%.64s\" "
		    "(seconds: a plain decimal number greater than 0 and at "
		    "most %d, below the library's wait for an answer)", lineno,
		    k->name, v, LBD_RELEASE_WAIT_MAX);
	else if (r != 0 && k->kind == K_MICROS)
		snprintf(why, size, "line %d: bad value for %s: \"%.64s\" "
		    "(microseconds: a plain decimal integer from 0 to %d)",
		    lineno, k->name, v, LBD_TURN_US_MAX);
	else if (r != 0 && (k->kind == K_COUNT || k->kind == K_COUNT0 ||
	    k->kind == K_SIZE))
		snprintf(why, size, "line %d: bad value for %s: \"%.64s\" "
		    "(a plain decimal integer from %d to %llu)", lineno,
		    k->name, v, k->kind == K_COUNT0 ? 0 : 1,
		    k->kind == K_SIZE ? LBD_SIZE_MAX : LBD_COUNT_MAX);
	else if (r != 0)
		snprintf(why, size, "line %d: bad value for %s: \"%.64s\"",
		    lineno, k->name, v);
	return r;
}

/* Trims white space from both ends of [*s, *e). */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* lbd_config_parse: see config.h. */
int
lbd_config_parse(const char *text, size_t len, struct lbd_config *c,
    char *why, size_t size)
{
	const char *p = text, *end = text + len, *eol, *eq, *ks, *ke, *vs, *ve;
	char        value[PATH_MAX];
	size_t      i, fit;
	int         lineno = 0, r = 0, readers_set = 0;

	for (; p < end && r == 0; p = eol + 1) {
		lineno++;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		ks = p;
		ve = eol;
		trim(&ks, &ve);
		if (ks == ve || *ks == '#')
			continue;
		if (memchr(ks, '\0', (size_t)(ve - ks)) != NULL) {
			snprintf(why, size, "line %d: NUL byte", lineno);
			r = -1;
			break;
		}
		if ((eq = memchr(ks, '=', (size_t)(ve - ks))) == NULL) {
			snprintf(why, size, "line %d: expected key = value",
			    lineno);
			r = -1;
			break;
		}
		ke = eq;
		vs = eq + 1;
		trim(&ks, &ke);
		trim(&vs, &ve);
		if ((size_t)(ve - vs) >= sizeof(value)) {
			snprintf(why, size, "line %d: value too long", lineno);
			r = -1;
			break;
		}
		memcpy(value, vs, (size_t)(ve - vs));
		value[ve - vs] = '\0';
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strlen(keys[i].name) == (size_t)(ke - ks) &&
			    memcmp(keys[i].name, ks, (size_t)(ke - ks)) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			snprintf(why, size, "line %d: unknown key \"%.*s\"",
			    lineno, (int)((ke - ks) > 64 ? 64 : (ke - ks)), ks);
			r = -1;
			break;
		}
		r = apply(c, &keys[i], value, lineno, why, size);
		if (keys[i].offset == offsetof(struct lbd_config,
		    limits.readers_per_lock))
			readers_set = 1;
		if (eol == end)
			break;
	}
	/* A LIST sends a lock's ITEMs (one per holder) together: unset,
	 * as many riders as fit (the default with output_per_conn's). */
	fit = c->limits.output_per_conn / 2 / LBP_LINE_MAX;
	if (r == 0 && !readers_set)
		c->limits.readers_per_lock = fit < 2 ? 0 :
		    fit - 1 < LBD_DEFAULT_READERS_PER_LOCK ? (unsigned)(fit - 1) :
		    LBD_DEFAULT_READERS_PER_LOCK;
	else if (r == 0 && ((unsigned long long)c->limits.readers_per_lock +
	    1) * LBP_LINE_MAX > c->limits.output_per_conn / 2) {
		snprintf(why, size, "readers_per_lock %u: a lock's %u ITEMs "
		    "(%d bytes each at most) must fit in half of "
		    "output_per_conn (%zu), which a LIST may fill",
		    c->limits.readers_per_lock, c->limits.readers_per_lock + 1,
		    LBP_LINE_MAX, c->limits.output_per_conn);
		r = -1;
	}
	return r;
}
