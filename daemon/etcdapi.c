/*
 * etcdapi.c: etcd's JSON gateway, the bodies and the replies (etcdapi.h),
 * with jansson.  Replies are untrusted: every field is looked up, its type
 * checked and its value range-checked before it is used.
 */
#include <errno.h>
#include <inttypes.h>
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
