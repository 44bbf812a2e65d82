/*
 * format.c: writing lines.  A line is built in a struct lbp_out: a failing
 * step (no room, a value the protocol cannot carry) marks it refused
 * (`overflow`) and leaves the buffer as it was before that step; lbp_end
 * accepts only a line that lbp_parse reads back.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"

/* 10^LBP_ID_DIGITS: every id is below it. */
#define ID_LIMIT 1000000000000000000ULL

/* Room for the decimal digits of a uint64_t and a NUL. */
#define U64_DIGITS 21

/* Writes v's decimal digits and a NUL into buf (U64_DIGITS bytes);
 * returns their number. */
static size_t
u64_digits(char *buf, uint64_t v)
{
	char   tmp[U64_DIGITS];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/* Appends n bytes at s to o's line, or marks the line refused when they
 * would leave no room for its '\n'. */
static void
put(struct lbp_out *o, const char *s, size_t n)
{
	if (o->overflow)
		return;
	if (n > LBP_LINE_MAX - 1 - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/*
 * lbp_begin: see protocol.h.  Marks the line refused when verb is not a
 * verb or the id has more than LBP_ID_DIGITS digits.
 */
void
lbp_begin(struct lbp_out *o, enum lbp_verb verb, int has_id, uint64_t id)
{
	char        digits[U64_DIGITS];
	const char *name = lbp_verb_name(verb);

	o->len = 0;
	o->overflow = 0;
	o->buf[0] = '\0';
	if (verb <= LBP_NONE || verb >= LBP_NVERBS ||
	    (has_id && id >= ID_LIMIT)) {
		o->overflow = 1;
		return;
	}
	put(o, name, strlen(name));
	put(o, " ", 1);
	if (has_id)
		put(o, digits, u64_digits(digits, id));
	else
		put(o, "-", 1);
}

/*
 * lbp_add_mem: see protocol.h.  Appends " KEY=VALUE" with the len bytes at
 * value percent-encoded (value may be NULL when len is 0).  key must be a
 * valid key (lbp_end refuses the line otherwise).
 */
void
lbp_add_mem(struct lbp_out *o, const char *key, const void *value,
    size_t len)
{
	size_t start = o->len;
	int    n;

	if (o->overflow)
		return;
	put(o, " ", 1);
	put(o, key, strlen(key));
	put(o, "=", 1);
	if (!o->overflow) {
		n = lbp_encode(value, len, o->buf + o->len,
		    LBP_LINE_MAX - o->len);
		if (n == -1)
			o->overflow = 1;
		else
			o->len += (size_t)n;
	}
	if (o->overflow) {
		o->len = start;
		o->buf[start] = '\0';
	}
}

/* lbp_add_str: see protocol.h.  A NULL value marks the line refused. */
void
lbp_add_str(struct lbp_out *o, const char *key, const char *value)
{
	if (value == NULL)
		o->overflow = 1;
	else
		lbp_add_mem(o, key, value, strlen(value));
}

/* lbp_add_u64: see protocol.h.  Plain decimal. */
void
lbp_add_u64(struct lbp_out *o, const char *key, uint64_t value)
{
	char digits[U64_DIGITS];

	lbp_add_mem(o, key, digits, u64_digits(digits, value));
}

/* lbp_add_i64: see protocol.h.  Plain decimal, "-" before a negative. */
void
lbp_add_i64(struct lbp_out *o, const char *key, int64_t value)
{
	char     digits[U64_DIGITS + 1];
	uint64_t mag = value < 0 ? -(uint64_t)value : (uint64_t)value;
	size_t   n = 0;

	if (value < 0)
		digits[n++] = '-';
	n += u64_digits(digits + n, mag);
	lbp_add_mem(o, key, digits, n);
}

/*
 * lbp_add_double: see protocol.h.  "inf" for +infinity; otherwise value
 * rounded to 6 decimals (halves away from zero), in plain decimal whatever
 * the locale, with trailing zeros (and a bare '.') trimmed and no "-"
 * before a zero.  NaN
 * and -infinity, which no field carries, mark the line refused.  Below
 * 2^64 the digits are made by hand; above, the value is an integer and
 * "%.0f", which no locale changes, writes it exactly.
 */
void
lbp_add_double(struct lbp_out *o, const char *key, double value)
{
	char     text[512];
	double   mag = value < 0 ? -value : value;
	uint64_t ip, fp, div;
	size_t   n = 0;

	if (isnan(value) || value == -INFINITY) {
		o->overflow = 1;
		return;
	}
	if (value == INFINITY) {
		lbp_add_str(o, key, "inf");
		return;
	}
	if (mag >= 18446744073709551616.0) {
		snprintf(text, sizeof(text), "%s%.0f", value < 0 ? "-" : "",
		    mag);
		lbp_add_str(o, key, text);
		return;
	}
	ip = (uint64_t)mag;
	fp = (uint64_t)((mag - (double)ip) * 1e6 + 0.5);
	if (fp >= 1000000) {
		fp -= 1000000;
		ip++;           /* mag < 2^64 - 2048: no wrap */
	}
	if (value < 0 && (ip != 0 || fp != 0))
		text[n++] = '-';
	n += u64_digits(text + n, ip);
	if (fp != 0) {
		text[n++] = '.';
		for (div = 100000; fp != 0; div /= 10) {
			text[n++] = (char)('0' + fp / div);
			fp %= div;
		}
	}
	lbp_add_mem(o, key, text, n);
}

/*
 * lbp_end: see protocol.h.  Appends '\n' (and a NUL after it, not counted
 * in o->len).  Returns 0, or -1 and marks the line refused when a step
 * failed or lbp_parse does not accept the line (a bad key, too many or
 * repeated fields, a required field missing, an unknown field in a
 * request, "-" as a request's id).  Call it once per line.
 */
int
lbp_end(struct lbp_out *o)
{
	struct lbp_msg check;

	if (o->overflow)
		return -1;
	o->buf[o->len++] = '\n';
	o->buf[o->len] = '\0';
	if (lbp_parse(o->buf, o->len, &check, NULL) != LBP_OK) {
		o->overflow = 1;
		return -1;
	}
	return 0;
}

/*
 * lbp_error_reply: see protocol.h.  A code that is not an error becomes
 * EINTERNAL, an id of more than LBP_ID_DIGITS digits "-", and a NULL
 * message no message field.  The message is cut to the longest prefix
 * whose encoding fits, then back to a UTF-8 character's start.
 */
void
lbp_error_reply(struct lbp_out *o, int has_id, uint64_t id,
    enum lbp_error code, const char *message)
{
	lbp_error_reply_lock(o, has_id, id, code, NULL, message);
}

/* lbp_error_reply_lock: see protocol.h.  As lbp_error_reply, with the
 * lock field first (left out when it cannot fit with the code). */
void
lbp_error_reply_lock(struct lbp_out *o, int has_id, uint64_t id,
    enum lbp_error code, const char *lock, const char *message)
{
	static const char field[] = " message=";
	size_t            lo, hi, mid, len, room, was;

	if (code <= LBP_OK || code >= LBP_NERRORS)
		code = LBP_EINTERNAL;
	if (has_id && id >= ID_LIMIT)
		has_id = 0;
	lbp_begin(o, LBP_MSG_ERR, has_id, id);
	lbp_add_str(o, "code", lbp_error_name(code));
	if (lock != NULL) {
		was = o->len;
		lbp_add_str(o, "lock", lock);
		if (o->overflow || o->len + sizeof(field) + 2 >
		    LBP_LINE_MAX) {
			o->overflow = 0;        /* left out */
			o->len = was;
			o->buf[o->len] = '\0';
		}
	}
	if (message != NULL) {
		/* Trial encodings go where the value will go. */
		room = LBP_LINE_MAX - o->len - (sizeof(field) - 1);
		len = strlen(message);
		lo = 0;
		hi = len;
		while (lo < hi) {
			mid = lo + (hi - lo + 1) / 2;
			if (lbp_encode(message, mid, o->buf + o->len +
			    (sizeof(field) - 1), room) == -1)
				hi = mid - 1;
			else
				lo = mid;
		}
		while (lo > 0 && lo < len &&
		    ((unsigned char)message[lo] & 0xc0) == 0x80)
			lo--;
		o->buf[o->len] = '\0';
		lbp_add_mem(o, "message", message, lo);
	}
	lbp_end(o);
}
