/*
 * etcdapi.c: etcd's JSON gateway, the bodies and the replies (etcdapi.h),
 * with jansson.  Replies are untrusted: every field is looked up, its type
 * checked and its value range-checked before it is used.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "etcdapi.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
lbd_etcd_b64_encode(const void *in, size_t len, char *out, size_t size)
{
	const unsigned char *p = in;
	size_t i, o = 0;

	if (size == 0 || (len + 2) / 3 * 4 >= size)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = b64[p[i] >> 2];
		out[o++] = b64[(p[i] & 3) << 4 | p[i + 1] >> 4];
		out[o++] = b64[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		out[o++] = b64[p[i + 2] & 63];
	}
	if (i < len) {
		out[o++] = b64[p[i] >> 2];
		if (i + 1 < len) {
			out[o++] = b64[(p[i] & 3) << 4 | p[i + 1] >> 4];
			out[o++] = b64[(p[i + 1] & 15) << 2];
		} else {
			out[o++] = b64[(p[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* The value of base64 digit c, or -1. */
static int
b64_value(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

int
lbd_etcd_b64_decode(const char *in, unsigned char *out, size_t size)
{
	size_t n = strlen(in), i, o = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int v[4], k, pad = 0;

		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad > 0 || (v[k] = b64_value(in[i + k])) < 0)
				return -1;
		}
		if (o + 3 - (size_t)pad > size)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (int)o;
}

char *
lbd_etcd_body_grant(int64_t ttl)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "{\"TTL\":\"%" PRId64 "\"}", ttl);
	return strdup(buf);
}

char *
lbd_etcd_body_lease(int64_t id)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "{\"ID\":\"%" PRId64 "\"}", id);
	return strdup(buf);
}

/*
 * int64_get: the 64-bit integer field name of object o into *v: a string
 * of decimal digits (protobuf's JSON), or a JSON integer; absent is 0
 * (left out as zero).  0, or -1 with why when it is of another type or
 * out of range.
 */
static int
int64_get(json_t *o, const char *name, int64_t *v, char *why, size_t size)
{
	json_t *f = json_object_get(o, name);
	const char *s;
	char *end;
	long long n;

	*v = 0;
	if (f == NULL)
		return 0;
	if (json_is_integer(f)) {
		*v = json_integer_value(f);
		return 0;
	}
	if (!json_is_string(f))
		goto bad;
	s = json_string_value(f);
	if (*s == '\0' || strlen(s) > 20 ||
	    strspn(s + (*s == '-'), "0123456789") != strlen(s + (*s == '-')))
		goto bad;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		goto bad;
	*v = n;
	return 0;
bad:
	snprintf(why, size, "field %s is not a 64-bit integer", name);
	return -1;
}

/*
 * reply_open: the JSON object of a reply, or NULL with *outcome set (an
 * error etcd sent: LBD_ETCD_ERROR with *code; otherwise LBD_ETCD_BAD)
 * and why filled.  The caller owns the object.
 */
static json_t *
reply_open(long status, const char *body, size_t len, int *code,
    enum lbd_etcd_outcome *outcome, char *why, size_t size)
{
	json_error_t jerr;
	json_t *o, *e, *m;
	int64_t c;

	*outcome = LBD_ETCD_BAD;
	*code = 0;
	if (body == NULL ||
	    (o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr))
	    == NULL) {
		snprintf(why, size, "HTTP %ld, a reply that is not JSON", status);
		return NULL;
	}
	if (!json_is_object(o)) {
		snprintf(why, size, "HTTP %ld, a reply that is not a JSON "
		    "object", status);
		goto out;
	}
	/* A streaming call's error: {"error":{"grpc_code":N,...}}. */
	e = json_object_get(o, "error");
	if (json_is_object(e)) {
		if (int64_get(e, "grpc_code", &c, why, size) < 0)
			goto out;
		m = json_object_get(e, "message");
	} else if (e != NULL) {
		if (int64_get(o, "code", &c, why, size) < 0)
			goto out;
		m = json_object_get(o, "message");
		if (m == NULL)
			m = e;
	} else if (status != 200) {
		snprintf(why, size, "HTTP %ld without an error", status);
		goto out;
	} else
		return o;
	if (c <= 0 || c > 16) {
		snprintf(why, size, "HTTP %ld, an error without a gRPC code",
		    status);
		goto out;
	}
	*code = (int)c;
	*outcome = LBD_ETCD_ERROR;
	snprintf(why, size, "etcd: %.200s (gRPC code %d)",
	    json_is_string(m) ? json_string_value(m) : "(no message)",
	    *code);
out:
	json_decref(o);
	return NULL;
}

/* header_revision: the revision of o's header into *rev (0 if none). */
static int
header_revision(json_t *o, int64_t *rev, char *why, size_t size)
{
	json_t *h = json_object_get(o, "header");

	*rev = 0;
	if (h == NULL)
		return 0;
	if (!json_is_object(h)) {
		snprintf(why, size, "header is not an object");
		return -1;
	}
	if (int64_get(h, "revision", rev, why, size) < 0)
		return -1;
	if (*rev < 0) {
		snprintf(why, size, "header's revision is negative");
		return -1;
	}
	return 0;
}

enum lbd_etcd_outcome
lbd_etcd_parse_grant(long status, const char *body, size_t len, int64_t *id,
    int64_t *ttl, int64_t *revision, int *code, char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o;

	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	if (header_revision(o, revision, why, size) < 0 ||
	    int64_get(o, "ID", id, why, size) < 0 ||
	    int64_get(o, "TTL", ttl, why, size) < 0)
		goto out;
	if (*id <= 0 || *ttl <= 0) {
		snprintf(why, size, "a grant without a lease id or a TTL");
		goto out;
	}
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_keepalive(long status, const char *body, size_t len,
    int64_t id, int64_t *ttl, int *code, char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o, *res;
	int64_t got, rev;

	*ttl = 0;
	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	res = json_object_get(o, "result");
	if (!json_is_object(res)) {
		snprintf(why, size, "a keepalive reply without a result");
		goto out;
	}
	if (header_revision(res, &rev, why, size) < 0 ||
	    int64_get(res, "ID", &got, why, size) < 0 ||
	    int64_get(res, "TTL", ttl, why, size) < 0)
		goto out;
	if (got != id) {
		snprintf(why, size, "a keepalive reply about lease %" PRId64
		    ", not %" PRId64, got, id);
		goto out;
	}
	if (*ttl < 0)
		*ttl = 0;
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_revoke(long status, const char *body, size_t len, int *code,
    char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o;
	int64_t rev;

	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = header_revision(o, &rev, why, size) < 0 ? LBD_ETCD_BAD :
	    LBD_ETCD_OK;
	json_decref(o);
	return r;
}

/* The base64 of the text s, malloc'd; NULL when out of memory. */
static char *
b64dup(const char *s, size_t len)
{
	size_t size = (len + 2) / 3 * 4 + 1;
	char *out = malloc(size);

	if (out != NULL && lbd_etcd_b64_encode(s, len, out, size) < 0) {
		free(out);
		out = NULL;
	}
	return out;
}

/* The end of prefix's range, in base64 (prefix's last byte + 1), and
 * prefix's own; both malloc'd, or -1. */
static int
prefix_range(const char *prefix, char **key, char **end)
{
	size_t n = strlen(prefix);
	char *e = strdup(prefix);

	*key = *end = NULL;
	if (e == NULL || n == 0 || (unsigned char)e[n - 1] == 0xff) {
		free(e);
		return -1;
	}
	e[n - 1]++;
	*key = b64dup(prefix, n);
	*end = b64dup(e, n);
	free(e);
	if (*key == NULL || *end == NULL) {
		free(*key);
		free(*end);
		return -1;
	}
	return 0;
}

/* Serialises o (whose reference it takes) into a malloc'd string. */
static char *
dump(json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* A string of the 64-bit integer v, as protobuf's JSON writes it. */
#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

char *
lbd_etcd_body_lock_txn(const char *prefix, const char *key,
    const char *value, int64_t lease)
{
	char *k = b64dup(key, strlen(key)), *v = b64dup(value, strlen(value));
	char *p = NULL, *e = NULL, *r = NULL, l[24];
	json_t *first;

	if (k == NULL || v == NULL || prefix_range(prefix, &p, &e) < 0)
		goto out;
	first = json_pack("{s:{s:s,s:s,s:s,s:s,s:s}}", "request_range",
	    "key", p, "range_end", e, "sort_order", "ASCEND",
	    "sort_target", "CREATE", "limit", "1");
	r = dump(json_pack("{s:[{s:s,s:s,s:s}],s:[{s:{s:s,s:s,s:s}},O],"
	    "s:[{s:{s:s}},o]}",
	    "compare", "target", "CREATE", "key", k, "create_revision", "0",
	    "success", "request_put", "key", k, "value", v, "lease",
	    I64(l, lease), first,
	    "failure", "request_range", "key", k, first));
out:
	free(k);
	free(v);
	free(p);
	free(e);
	return r;
}

char *
lbd_etcd_body_predecessor(const char *prefix, int64_t rev)
{
	char *p = NULL, *e = NULL, *r = NULL, m[24];

	if (prefix_range(prefix, &p, &e) < 0)
		return NULL;
	r = dump(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "key", p,
	    "range_end", e, "max_create_revision", I64(m, rev - 1),
	    "sort_order", "DESCEND", "sort_target", "CREATE", "limit", "1"));
	free(p);
	free(e);
	return r;
}

char *
lbd_etcd_body_watch(const char *key, int64_t start)
{
	char *k = b64dup(key, strlen(key)), *r = NULL, s[24];

	if (k != NULL)
		r = dump(json_pack("{s:{s:s,s:s,s:[s]}}", "create_request",
		    "key", k, "start_revision", I64(s, start), "filters",
		    "NOPUT"));
	free(k);
	return r;
}

char *
lbd_etcd_body_delete(const char *key)
{
	char *k = b64dup(key, strlen(key)), *r = NULL;

	if (k != NULL)
		r = dump(json_pack("{s:s}", "key", k));
	free(k);
	return r;
}

/*
 * range_first: the first kv of the range response rr: *rev its create
 * revision (0 when there is none) and, when key is not NULL, its key
 * decoded.  0, or -1 with why.
 */
static int
range_first(json_t *rr, int64_t *rev, char *key, size_t keysize, char *why,
    size_t size)
{
	json_t *kvs, *kv, *k;
	int n;

	*rev = 0;
	if (key != NULL)
		key[0] = '\0';
	if (!json_is_object(rr)) {
		snprintf(why, size, "a range response that is not an object");
		return -1;
	}
	kvs = json_object_get(rr, "kvs");
	if (kvs == NULL || (json_is_array(kvs) && json_array_size(kvs) == 0))
		return 0;
	if (!json_is_array(kvs) || !json_is_object(kv = json_array_get(kvs, 0))) {
		snprintf(why, size, "a range response's kvs are not objects");
		return -1;
	}
	if (int64_get(kv, "create_revision", rev, why, size) < 0)
		return -1;
	if (*rev <= 0) {
		snprintf(why, size, "a key without a create revision");
		return -1;
	}
	if (key == NULL)
		return 0;
	k = json_object_get(kv, "key");
	if (!json_is_string(k) || keysize == 0 ||
	    (n = lbd_etcd_b64_decode(json_string_value(k),
	    (unsigned char *)key, keysize - 1)) < 0) {
		snprintf(why, size, "a key that is not base64, or too long");
		return -1;
	}
	key[n] = '\0';
	if (memchr(key, '\0', (size_t)n) != NULL) {
		snprintf(why, size, "a key with a NUL byte");
		return -1;
	}
	return 0;
}

/* The i-th of o's responses, its member name (response_range, ...). */
static json_t *
response(json_t *o, size_t i, const char *name)
{
	json_t *rs = json_object_get(o, "responses");

	if (!json_is_array(rs) || json_array_size(rs) <= i)
		return NULL;
	return json_object_get(json_array_get(rs, i), name);
}

enum lbd_etcd_outcome
lbd_etcd_parse_lock_txn(long status, const char *body, size_t len,
    int64_t *mine, int64_t *owner, int64_t *revision, int *code, char *why,
    size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o, *ok;

	*mine = *owner = 0;
	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	if (header_revision(o, revision, why, size) < 0)
		goto out;
	ok = json_object_get(o, "succeeded");
	if (ok != NULL && !json_is_boolean(ok)) {
		snprintf(why, size, "succeeded is not a boolean");
		goto out;
	}
	if (json_is_true(ok))
		*mine = *revision;
	else if (range_first(response(o, 0, "response_range"), mine, NULL, 0,
	    why, size) < 0)
		goto out;
	if (range_first(response(o, 1, "response_range"), owner, NULL, 0,
	    why, size) < 0)
		goto out;
	if (*mine <= 0) {
		snprintf(why, size, "a lock transaction without the key's "
		    "create revision");
		goto out;
	}
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_predecessor(long status, const char *body, size_t len,
    const char *prefix, char *key, size_t keysize, int64_t *revision,
    int *code, char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	int64_t rev;
	json_t *o;

	key[0] = '\0';
	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	if (header_revision(o, revision, why, size) < 0 ||
	    range_first(o, &rev, key, keysize, why, size) < 0)
		goto out;
	if (key[0] != '\0' && strncmp(key, prefix, strlen(prefix)) != 0) {
		snprintf(why, size, "a key outside the lock's prefix");
		key[0] = '\0';
		goto out;
	}
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_watch_line(const char *line, size_t len, int *deleted,
    int *code, char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o, *res, *evs, *ev, *t;
	size_t i;

	*deleted = 0;
	if ((o = reply_open(200, line, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	res = json_object_get(o, "result");
	if (!json_is_object(res)) {
		snprintf(why, size, "a watch line without a result");
		goto out;
	}
	if (json_is_true(json_object_get(res, "canceled")) ||
	    json_object_get(res, "compact_revision") != NULL) {
		*code = 0;
		snprintf(why, size, "etcd canceled the watch");
		r = LBD_ETCD_ERROR;
		goto out;
	}
	evs = json_object_get(res, "events");
	if (evs != NULL && !json_is_array(evs)) {
		snprintf(why, size, "a watch's events are not an array");
		goto out;
	}
	json_array_foreach(evs, i, ev) {
		if (!json_is_object(ev)) {
			snprintf(why, size, "a watch event is not an object");
			goto out;
		}
		t = json_object_get(ev, "type");
		if (t != NULL && !json_is_string(t)) {
			snprintf(why, size, "a watch event's type is not a "
			    "string");
			goto out;
		}
		if (t != NULL && strcmp(json_string_value(t), "DELETE") == 0)
			*deleted = 1;
	}
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_delete(long status, const char *body, size_t len, int *code,
    char *why, size_t size)
{
	return lbd_etcd_parse_revoke(status, body, len, code, why, size);
}

char *
lbd_etcd_body_lease_keys(int64_t id)
{
	char i[24];

	return dump(json_pack("{s:s,s:b}", "ID", I64(i, id), "keys", 1));
}

enum lbd_etcd_outcome
lbd_etcd_parse_lease_keys(long status, const char *body, size_t len,
    char ***keys, size_t *n, int *code, char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	json_t *o, *a, *k;
	size_t i, cap;
	char **v = NULL, key[1024];
	int m;

	*keys = NULL;
	*n = 0;
	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	a = json_object_get(o, "keys");
	if (a == NULL) {                /* none: omitted */
		r = LBD_ETCD_OK;
		goto out;
	}
	if (!json_is_array(a) || (cap = json_array_size(a)) >
	    LBD_ETCD_LEASE_KEYS_MAX) {
		snprintf(why, size, "a lease's keys that are not a list, or "
		    "more than %d", LBD_ETCD_LEASE_KEYS_MAX);
		goto out;
	}
	if (cap > 0 && (v = calloc(cap, sizeof(*v))) == NULL) {
		snprintf(why, size, "out of memory");
		goto out;
	}
	json_array_foreach(a, i, k) {
		if (!json_is_string(k) || (m = lbd_etcd_b64_decode(
		    json_string_value(k), (unsigned char *)key,
		    sizeof(key) - 1)) < 0 || memchr(key, '\0', (size_t)m)
		    != NULL) {
			snprintf(why, size, "a lease's key that is not base64, "
			    "too long, or with a NUL byte");
			goto out;
		}
		key[m] = '\0';
		if ((v[*n] = strdup(key)) == NULL) {
			snprintf(why, size, "out of memory");
			goto out;
		}
		(*n)++;
	}
	*keys = v;
	v = NULL;
	r = LBD_ETCD_OK;
out:
	if (v != NULL) {
		for (i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		*n = 0;
	}
	json_decref(o);
	return r;
}

char *
lbd_etcd_body_first(const char *prefix)
{
	char *p = NULL, *e = NULL, *r = NULL;

	if (prefix_range(prefix, &p, &e) < 0)
		return NULL;
	r = dump(json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", p, "range_end", e,
	    "sort_order", "ASCEND", "sort_target", "CREATE", "limit", "1"));
	free(p);
	free(e);
	return r;
}

enum lbd_etcd_outcome
lbd_etcd_parse_first(long status, const char *body, size_t len,
    const char *prefix, char *key, size_t keysize, char *value,
    size_t valsize, int64_t *revision, int64_t *count, int *code,
    char *why, size_t size)
{
	enum lbd_etcd_outcome r;
	unsigned char buf[PATH_MAX + 1024];     /* a daemon's value names a
	                                           path; cut to valsize */
	json_t *o, *v, *kvs;
	int n, i;

	key[0] = value[0] = '\0';
	*count = 0;
	if ((o = reply_open(status, body, len, code, &r, why, size)) == NULL)
		return r;
	r = LBD_ETCD_BAD;
	if (range_first(o, revision, key, keysize, why, size) < 0 ||
	    (json_object_get(o, "count") != NULL &&
	    int64_get(o, "count", count, why, size) < 0))
		goto out;
	if (key[0] != '\0' && strncmp(key, prefix, strlen(prefix)) != 0) {
		snprintf(why, size, "a key outside the lock's prefix");
		goto out;
	}
	if (*count < (key[0] != '\0')) {
		snprintf(why, size, "a range with a key and a count under one");
		goto out;
	}
	kvs = json_object_get(o, "kvs");
	v = key[0] != '\0' ? json_object_get(json_array_get(kvs, 0),
	    "value") : NULL;
	if (v != NULL && (!json_is_string(v) || (n = lbd_etcd_b64_decode(
	    json_string_value(v), buf, sizeof(buf))) < 0)) {
		snprintf(why, size, "a value that is not base64, or too long");
		goto out;
	}
	for (i = 0; v != NULL && i < n && (size_t)i + 1 < valsize; i++)
		value[i] = buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : '?';
	if (v != NULL)
		value[i] = '\0';
	r = LBD_ETCD_OK;
out:
	json_decref(o);
	return r;
}
