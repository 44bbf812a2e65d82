/*
 * check_protocol.c: unit tests of the wire protocol module
 * (protocol/protocol.h): the names tables, percent-encoding, parsing
 * against each verb's schema, the corpus of bad lines in
 * tests/data/protocol (listed in its MANIFEST, found through $LB_SRCDIR),
 * the typed getters, formatting and its limits, error replies, and a
 * randomized round trip (fixed seed) of formatted, parsed and mutated
 * lines.
 *
 * Every line handed to lbp_parse lies at the very end of a readable
 * mapping, just before an inaccessible page (tl_guard_copy), so that a
 * read past its length faults and fails the test.
 */
#include <check.h>
#include <dirent.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockbroker/codes.h"
#include "protocol.h"
#include "testlib.h"

/* The bytes a value carries unencoded. */
#define PLAIN_SET \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/+:,@-"

#define ID_LIMIT 1000000000000000000ULL

/* One verb of LBP_VERB_MAP: its enumerator, sender, and keys. */
struct verb_row {
	enum lbp_verb verb;
	const char   *dir;
	const char   *req;
	const char   *opt;
};

static const struct verb_row verb_rows[] = {
#define VERB_ROW(verb, dir, req, opt) { LBP_MSG_##verb, #dir, req, opt },
	LBP_VERB_MAP(VERB_ROW)
#undef VERB_ROW
};
#define NVERB_ROWS ((int)(sizeof(verb_rows) / sizeof(verb_rows[0])))

/* ------------------------------------------------------------------ */
/* Helpers.                                                             */

/* Asserts what every parse result must satisfy: a code in range, a
 * non-empty reason on error, and, on success, well-formed fields whose
 * NUL-terminated values lie in m->store. */
static void
check_sane(const struct lbp_msg *m, enum lbp_error r, const char *why)
{
	const struct lbp_field *f;
	int                     i;
	size_t                  k;

	ck_assert_int_ge(r, LBP_OK);
	ck_assert_int_lt(r, LBP_NERRORS);
	if (!m->has_id)
		ck_assert(m->id == 0);
	ck_assert(m->id < ID_LIMIT);
	if (r != LBP_OK) {
		ck_assert_ptr_nonnull(why);
		ck_assert_int_gt(strlen(why), 0);
		return;
	}
	ck_assert_int_gt(m->verb, LBP_NONE);
	ck_assert_int_lt(m->verb, LBP_NVERBS);
	ck_assert_int_ge(m->nfields, 0);
	ck_assert_int_le(m->nfields, LBP_FIELDS_MAX);
	for (i = 0; i < m->nfields; i++) {
		f = &m->fields[i];
		k = strlen(f->key);
		ck_assert(k >= 1 && k <= LBP_KEY_MAX);
		ck_assert(f->key[0] >= 'a' && f->key[0] <= 'z');
		ck_assert(f->value >= m->store &&
		    f->value + f->len < m->store + sizeof(m->store));
		ck_assert(f->value[f->len] == '\0');
		ck_assert_uint_eq(strlen(f->value), f->len);
	}
}

/* lbp_parse on a guarded copy of len bytes at line, checked for sanity. */
static enum lbp_error
parse_guarded(const void *line, size_t len, struct lbp_msg *m,
    const char **why)
{
	struct tl_guarded g;
	enum lbp_error r;

	*why = NULL;
	r = lbp_parse(tl_guard_copy(&g, line, len), len, m, why);
	tl_guard_free(&g);
	check_sane(m, r, *why);
	return r;
}

/* lbp_parse on a guarded copy of the C string line. */
static enum lbp_error
parse_str(const char *line, struct lbp_msg *m, const char **why)
{
	return parse_guarded(line, strlen(line), m, why);
}

/* Splits a space-separated key list into keys; returns their number. */
static int
split_keys(const char *list, char keys[][LBP_KEY_MAX + 1], int max)
{
	int n = 0;
	size_t len;

	while (*list != '\0') {
		while (*list == ' ')
			list++;
		len = strcspn(list, " ");
		if (len == 0)
			break;
		ck_assert(n < max && len <= LBP_KEY_MAX);
		memcpy(keys[n], list, len);
		keys[n++][len] = '\0';
		list += len;
	}
	return n;
}

/* The row of verb in verb_rows. */
static const struct verb_row *
verb_row(enum lbp_verb verb)
{
	int i;

	for (i = 0; i < NVERB_ROWS; i++)
		if (verb_rows[i].verb == verb)
			return &verb_rows[i];
	ck_abort_msg("no row for verb %d", verb);
	return NULL;
}

/* The length of the encoding of len bytes at s. */
static size_t
encoded_len(const char *s, size_t len)
{
	static char out[3 * 70000 + 1];
	int         n;

	ck_assert(len < 70000);
	n = lbp_encode(s, len, out, sizeof(out));
	ck_assert_int_ge(n, 0);
	return (size_t)n;
}

/* A small deterministic generator (xorshift64*), the same everywhere. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A number in [0, n). */
static size_t
rng_below(size_t n)
{
	return (size_t)(rng() % n);
}

/* ------------------------------------------------------------------ */
/* Names.                                                               */

/* The verbs, in the order of the map and as docs/PROTOCOL.md names them;
 * each maps back to itself, exactly and case-sensitively. */
START_TEST(test_verb_names)
{
	static const char *const names[] = { "HELLO", "ACQUIRE", "RELEASE",
	    "STATUS", "BREAK", "LIST", "CANCEL", "RECLAIM", "PING", "UPGRADE",
	    "DOWNGRADE", "OK",
	    "ITEM", "ERR", "LOST" };
	char  lower[32], longer[40];
	size_t i, n;
	int   v;

	ck_assert_int_eq(LBP_NVERBS, 1 + (int)(sizeof(names) / sizeof(names[0])));
	for (v = LBP_NONE + 1; v < LBP_NVERBS; v++) {
		const char *name = lbp_verb_name((enum lbp_verb)v);

		ck_assert_str_eq(name, names[v - 1]);
		n = strlen(name);
		ck_assert_int_eq(lbp_verb_parse(name, n), v);
		ck_assert_int_eq(lbp_verb_parse(name, n - 1), LBP_NONE);
		for (i = 0; i <= n; i++)
			lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
			    name[i] - 'A' + 'a' : name[i]);
		ck_assert_int_eq(lbp_verb_parse(lower, n), LBP_NONE);
		snprintf(longer, sizeof(longer), "%sX", name);
		ck_assert_int_eq(lbp_verb_parse(longer, n + 1), LBP_NONE);
		/* Only len bytes count: the X after them is not read. */
		ck_assert_int_eq(lbp_verb_parse(longer, n), v);
	}
	ck_assert_str_eq(lbp_verb_name(LBP_NONE), "?");
	ck_assert_str_eq(lbp_verb_name(LBP_NVERBS), "?");
	ck_assert_str_eq(lbp_verb_name((enum lbp_verb)-1), "?");
	ck_assert_int_eq(lbp_verb_parse(NULL, 0), LBP_NONE);
	ck_assert_int_eq(lbp_verb_parse("", 0), LBP_NONE);
	ck_assert_int_eq(lbp_verb_parse("?", 1), LBP_NONE);
	ck_assert_int_eq(lbp_verb_parse("PINGPONG", 4), LBP_MSG_PING);
}
END_TEST

/* The error codes: names back to codes, texts, "OK" for success only one
 * way, "?" out of range. */
START_TEST(test_error_names)
{
	int e;

	for (e = LBP_OK + 1; e < LBP_NERRORS; e++) {
		const char *name = lbp_error_name((enum lbp_error)e);
		const char *text = lbp_error_text((enum lbp_error)e);

		ck_assert_msg(name[0] == 'E' && strlen(name) > 1,
		    "code %d is named %s", e, name);
		ck_assert_int_eq(lbp_error_parse(name), e);
		ck_assert_int_gt(strlen(text), 5);
		ck_assert_str_ne(text, "?");
	}
	ck_assert_str_eq(lbp_error_name(LBP_OK), "OK");
	ck_assert_str_eq(lbp_error_text(LBP_OK), "success");
	ck_assert_int_eq(lbp_error_parse("OK"), -1);
	ck_assert_int_eq(lbp_error_parse(NULL), -1);
	ck_assert_int_eq(lbp_error_parse(""), -1);
	ck_assert_int_eq(lbp_error_parse("eproto"), -1);
	ck_assert_int_eq(lbp_error_parse("EPROTO "), -1);
	ck_assert_int_eq(lbp_error_parse("LBP_EPROTO"), -1);
	ck_assert_str_eq(lbp_error_name(LBP_NERRORS), "?");
	ck_assert_str_eq(lbp_error_name((enum lbp_error)-1), "?");
	ck_assert_str_eq(lbp_error_text(LBP_NERRORS), "?");
	ck_assert_str_eq(lbp_error_name(LBP_EPROTO), "EPROTO");
	ck_assert_str_eq(lbp_error_name(LBP_EINTERNAL), "EINTERNAL");
}
END_TEST

/* The first group of codes mirrors the library's LB_E* codes of the same
 * name: this does not compile when one of them is missing there. */
START_TEST(test_error_names_mirror_library)
{
#define MIRROR(name) { LBP_##name, LB_##name, #name }
	static const struct {
		enum lbp_error code;
		int            lb;
		const char    *name;
	} mirrors[] = {
		MIRROR(EALREADY), MIRROR(ETIMEOUT), MIRROR(EFAILED),
		MIRROR(ENOTLOCKED), MIRROR(ENOTMINE), MIRROR(EUNLOCK),
		MIRROR(EINVAL),
	};
#undef MIRROR
	size_t i;

	for (i = 0; i < sizeof(mirrors) / sizeof(mirrors[0]); i++) {
		ck_assert_str_eq(lbp_error_name(mirrors[i].code),
		    mirrors[i].name);
		ck_assert_int_lt(mirrors[i].lb, 0);
		/* The same position: the first group comes first. */
		ck_assert_int_eq(mirrors[i].code, (int)i + 1);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Percent-encoding.                                                    */

/* Every byte: the plain set as itself, every other byte as %XX in
 * uppercase, and back. */
START_TEST(test_encode_every_byte)
{
	char in[1], out[8], back[4], expect[4];
	int  c, n, nplain = 0;

	for (c = 0; c < 256; c++) {
		in[0] = (char)c;
		n = lbp_encode(in, 1, out, sizeof(out));
		if (c != 0 && strchr(PLAIN_SET, c) != NULL) {
			nplain++;
			ck_assert_int_eq(n, 1);
			ck_assert_int_eq((unsigned char)out[0], c);
		} else {
			snprintf(expect, sizeof(expect), "%%%02X", c);
			ck_assert_int_eq(n, 3);
			ck_assert_str_eq(out, expect);
		}
		n = lbp_decode(out, (size_t)n, back, sizeof(back));
		if (c == 0)
			ck_assert_int_eq(n, -1);
		else {
			ck_assert_int_eq(n, 1);
			ck_assert_int_eq((unsigned char)back[0], c);
			ck_assert_int_eq(back[1], '\0');
		}
	}
	ck_assert_int_eq(nplain, (int)strlen(PLAIN_SET));
}
END_TEST

/* All bytes 1..255 in one value survive a round trip; decoding takes
 * either case of hex digit. */
START_TEST(test_encode_round_trip)
{
	char in[255], enc[1024], dec[512];
	int  i, n;

	for (i = 0; i < 255; i++)
		in[i] = (char)(i + 1);
	n = lbp_encode(in, sizeof(in), enc, sizeof(enc));
	ck_assert_int_eq(n, (int)(strlen(PLAIN_SET) + 3 * (255 - strlen(PLAIN_SET))));
	ck_assert_uint_eq(strlen(enc), (size_t)n);
	ck_assert_int_eq(lbp_decode(enc, (size_t)n, dec, sizeof(dec)), 255);
	ck_assert(memcmp(in, dec, 255) == 0);
	ck_assert_int_eq(lbp_decode("%2f%2F%c3%A9", 12, dec, sizeof(dec)), 4);
	ck_assert_str_eq(dec, "//\xc3\xa9");
	ck_assert_int_eq(lbp_encode("", 0, enc, 1), 0);
	ck_assert_str_eq(enc, "");
	ck_assert_int_eq(lbp_encode(NULL, 0, enc, 1), 0);
	ck_assert_int_eq(lbp_decode("", 0, dec, 1), 0);
	/* A NUL is encodable (it is a byte), never decodable. */
	ck_assert_int_eq(lbp_encode("a\0b", 3, enc, sizeof(enc)), 5);
	ck_assert_str_eq(enc, "a%00b");
}
END_TEST

/* Decoding refuses malformed escapes, %00 and bytes that should have been
 * encoded; it reads only len bytes. */
START_TEST(test_decode_refuses)
{
	static const char *const bad[] = { "%", "%4", "a%", "%G0", "%0G",
	    "%%41", "%00", "a%00", "% 1", "a b", "a=b", "a\"b", "a%b",
	    "\x01", "\x7f", "\xc3\xa9", "a\tb", "#", "?", "*", "[", "a\nb" };
	char   out[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(lbp_decode(bad[i], strlen(bad[i]), out,
		    sizeof(out)) == -1, "decoded \"%s\"", bad[i]);
	/* "%41" cut after 2 bytes is a malformed escape. */
	ck_assert_int_eq(lbp_decode("%41", 2, out, sizeof(out)), -1);
	ck_assert_int_eq(lbp_decode("ab%41", 2, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "ab");
}
END_TEST

/* Room: the result and its NUL must fit, or -1. */
START_TEST(test_encode_room)
{
	char out[16];

	ck_assert_int_eq(lbp_encode("a/b c", 5, out, 8), 7);
	ck_assert_str_eq(out, "a/b%20c");
	ck_assert_int_eq(lbp_encode("a/b c", 5, out, 7), -1);
	ck_assert_int_eq(lbp_encode("a/b c", 5, out, 5), -1);
	ck_assert_int_eq(lbp_encode("", 0, out, 0), -1);
	ck_assert_int_eq(lbp_encode(" ", 1, out, 3), -1);
	ck_assert_int_eq(lbp_encode(" ", 1, out, 4), 3);
	ck_assert_int_eq(lbp_decode("ab%41", 5, out, 4), 3);
	ck_assert_str_eq(out, "abA");
	ck_assert_int_eq(lbp_decode("ab%41", 5, out, 3), -1);
	ck_assert_int_eq(lbp_decode("", 0, out, 0), -1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parsing.                                                             */

/* A line, its expected code and (for errors) a part of the reason. */
struct parse_case {
	const char    *line;
	enum lbp_error code;
	const char    *reason;
};

/* Each fault gets its code and its own reason, whatever comes after it. */
START_TEST(test_parse_reasons)
{
	static const struct parse_case cases[] = {
		{ "", LBP_EPROTO, "empty line" },
		{ "\n", LBP_EPROTO, "empty line" },
		{ "\r\n", LBP_EPROTO, "empty line" },
		{ "PING", LBP_EPROTO, "missing request id" },
		{ "PING ", LBP_EPROTO, "missing request id" },
		{ "PING  1", LBP_EPROTO, "missing request id" },
		{ "ping 1", LBP_EPROTO, "malformed verb" },
		{ "Ping 1", LBP_EPROTO, "malformed verb" },
		{ "PING2 1", LBP_EPROTO, "malformed verb" },
		{ " PING 1", LBP_EPROTO, "malformed verb" },
		{ "FROB 1", LBP_EVERB, "unknown verb" },
		{ "FROB", LBP_EVERB, "unknown verb" },
		{ "PING x", LBP_EPROTO, "not a decimal" },
		{ "PING -1", LBP_EPROTO, "not a decimal" },
		{ "PING +1", LBP_EPROTO, "not a decimal" },
		{ "PING 01", LBP_EPROTO, "leading zero" },
		{ "PING 00", LBP_EPROTO, "leading zero" },
		{ "PING 1234567890123456789", LBP_EPROTO, "too many digits" },
		{ "PING -", LBP_EPROTO, "for replies only" },
		{ "PING 1 ", LBP_EPROTO, "trailing space" },
		{ "ACQUIRE 1 path=/a ", LBP_EPROTO, "trailing space" },
		{ "ACQUIRE 1  path=/a", LBP_EPROTO, "double space" },
		{ "ACQUIRE 1 path=/a\tb", LBP_EPROTO, "control character" },
		{ "ACQUIRE 1 path=/a\x7f", LBP_EPROTO, "control character" },
		{ "ACQUIRE 1 path=/\xc3\xa9", LBP_EPROTO, "non-ASCII" },
		{ "ACQUIRE 1 path=/a\r", LBP_OK, NULL },
		{ "ACQUIRE 1 path=/a\r\r", LBP_EPROTO, "control character" },
		{ "ACQUIRE 1 path", LBP_EPROTO, "without '='" },
		{ "ACQUIRE 1 =/a", LBP_EPROTO, "empty key" },
		{ "ACQUIRE 1 Path=/a", LBP_EPROTO, "malformed key" },
		{ "ACQUIRE 1 1path=/a", LBP_EPROTO, "malformed key" },
		{ "ACQUIRE 1 pa-th=/a", LBP_EPROTO, "malformed key" },
		{ "OK 1 abcdefghijklmnopq=1", LBP_EPROTO, "key too long" },
		{ "OK 1 abcdefghijklmnop=1", LBP_OK, NULL },
		{ "ACQUIRE 1 path=/a color=red", LBP_EPROTO, "unknown field" },
		{ "PING 1 x=1", LBP_EPROTO, "unknown field" },
		{ "ACQUIRE 1 path=/a path=/b", LBP_EPROTO, "repeated field" },
		{ "OK 1 token=1 token=2", LBP_EPROTO, "repeated field" },
		{ "OK 1 x=1 x=2", LBP_EPROTO, "repeated field" },
		{ "ACQUIRE 1 path=/a%", LBP_EPROTO, "malformed %-escape" },
		{ "ACQUIRE 1 path=/a%4", LBP_EPROTO, "malformed %-escape" },
		{ "ACQUIRE 1 path=/a%4g", LBP_EPROTO, "malformed %-escape" },
		{ "ACQUIRE 1 path=/a%00", LBP_EPROTO, "%00" },
		{ "ACQUIRE 1 path=/a=b", LBP_EPROTO, "must be %-encoded" },
		{ "ACQUIRE 1 path=/a#b", LBP_EPROTO, "must be %-encoded" },
		{ "ACQUIRE 1 method=link", LBP_EPROTO, "ACQUIRE needs: path" },
		{ "RECLAIM 1 path=/a", LBP_EPROTO, "RECLAIM needs: path token" },
		{ "CANCEL 1", LBP_EPROTO, "CANCEL needs: target" },
		{ "HELLO 1 client=x", LBP_EPROTO, "HELLO needs: version" },
		{ "ITEM 1 path=/a", LBP_EPROTO, "ITEM needs: path method" },
		{ "ERR 1 message=x", LBP_EPROTO, "ERR needs: code" },
		{ "ERR -", LBP_EPROTO, "ERR needs: code" },
		{ "ERR - code=EPROTO", LBP_OK, NULL },
		{ "OK -", LBP_OK, NULL },
		{ "OK 3 future_field=x token=4", LBP_OK, NULL },
		{ "HELLO 1 version=", LBP_OK, NULL },
		{ "PING 0", LBP_OK, NULL },
		{ "PING 999999999999999999", LBP_OK, NULL },
		{ "PING 1\n", LBP_OK, NULL },
		{ "PING 1\r\n", LBP_OK, NULL },
		{ "PING 1\n\n", LBP_EPROTO, "control character" },
	};
	struct lbp_msg m;
	const char    *why;
	size_t         i;
	enum lbp_error r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = parse_str(cases[i].line, &m, &why);
		ck_assert_msg(r == cases[i].code, "\"%s\": %s (%s), not %s",
		    cases[i].line, lbp_error_name(r), why ? why : "",
		    lbp_error_name(cases[i].code));
		if (cases[i].reason != NULL)
			ck_assert_msg(strstr(why, cases[i].reason) != NULL,
			    "\"%s\": reason \"%s\", not \"%s\"",
			    cases[i].line, why, cases[i].reason);
	}
}
END_TEST

/* On error the request can still be answered: the id is set whenever it
 * was read, the verb whenever it is known. */
START_TEST(test_parse_error_names_request)
{
	struct lbp_msg m;
	const char    *why;

	ck_assert_int_eq(parse_str("FROB 12 x=y", &m, &why), LBP_EVERB);
	ck_assert(m.has_id && m.id == 12 && m.verb == LBP_NONE);
	ck_assert_int_eq(parse_str("ping 7", &m, &why), LBP_EPROTO);
	ck_assert(m.has_id && m.id == 7 && m.verb == LBP_NONE);
	ck_assert_int_eq(parse_str("ACQUIRE 5 path=/a path=/b", &m, &why),
	    LBP_EPROTO);
	ck_assert(m.has_id && m.id == 5 && m.verb == LBP_MSG_ACQUIRE);
	ck_assert_int_eq(parse_str("ACQUIRE 6 method=link", &m, &why),
	    LBP_EPROTO);
	ck_assert(m.has_id && m.id == 6 && m.verb == LBP_MSG_ACQUIRE);
	ck_assert_int_eq(parse_str("ACQUIRE 06 path=/a", &m, &why),
	    LBP_EPROTO);
	ck_assert(!m.has_id && m.verb == LBP_MSG_ACQUIRE);
	ck_assert_int_eq(parse_str("PING -", &m, &why), LBP_EPROTO);
	ck_assert(!m.has_id && m.verb == LBP_MSG_PING);
	/* Fields after a fault are not kept. */
	ck_assert_int_eq(parse_str("STATUS 8 path=/a x=1 method=link", &m,
	    &why), LBP_EPROTO);
	ck_assert(m.has_id && m.id == 8 && m.nfields == 1);
	/* why may be NULL. */
	ck_assert_int_eq(lbp_parse("FROB 1", 6, &m, NULL), LBP_EVERB);
	ck_assert_int_eq(lbp_parse("PING 1", 6, &m, NULL), LBP_OK);
}
END_TEST

/* Only len bytes are read; the line need not be NUL-terminated, its '\n'
 * (and a '\r' before it) is optional. */
START_TEST(test_parse_reads_len_bytes)
{
	struct lbp_msg m;
	const char    *why;

	ck_assert_int_eq(parse_guarded("PING 1 x=y", 6, &m, &why), LBP_OK);
	ck_assert(m.has_id && m.id == 1 && m.nfields == 0);
	ck_assert_int_eq(parse_guarded("PING 12", 6, &m, &why), LBP_OK);
	ck_assert(m.id == 1);
	ck_assert_int_eq(parse_guarded("ACQUIRE 3 path=/a/b", 17, &m, &why),
	    LBP_OK);
	ck_assert_str_eq(lbp_get(&m, "path"), "/a");
	ck_assert_int_eq(parse_guarded("ACQUIRE 3 path=/a%41", 19, &m, &why),
	    LBP_EPROTO);
	ck_assert_int_eq(parse_guarded("ACQUIRE 3 path=/a\r\n", 19, &m,
	    &why), LBP_OK);
	ck_assert_str_eq(lbp_get(&m, "path"), "/a");
	ck_assert_int_eq(parse_guarded("ACQUIRE 3 path=/a\r", 18, &m, &why),
	    LBP_OK);
	ck_assert_str_eq(lbp_get(&m, "path"), "/a");
}
END_TEST

/* Fills line with "ACQUIRE 1 path=/aaa..." of total bytes, the last
 * tail_len of which are tail ("\n", "\r\n" or ""). */
static void
long_line(char *line, size_t total, const char *tail)
{
	size_t t = strlen(tail);

	ck_assert(total > 20 + t);
	memset(line, 'a', total);
	memcpy(line, "ACQUIRE 1 path=/", 16);
	memcpy(line + total - t, tail, t);
}

/* The limit: LBP_LINE_MAX bytes with the '\n' (a '\r' counts too), one
 * fewer without it; beyond, ELIMIT before anything else is read. */
START_TEST(test_parse_length_limit)
{
	static char    line[LBP_LINE_MAX + 2];
	struct lbp_msg m;
	const char    *why;

	long_line(line, LBP_LINE_MAX, "\n");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX, &m, &why), LBP_OK);
	ck_assert_uint_eq(strlen(lbp_get(&m, "path")), LBP_LINE_MAX - 16);
	long_line(line, LBP_LINE_MAX, "\r\n");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX, &m, &why), LBP_OK);
	long_line(line, LBP_LINE_MAX - 1, "");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX - 1, &m, &why),
	    LBP_OK);
	long_line(line, LBP_LINE_MAX, "");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX, &m, &why),
	    LBP_ELIMIT);
	ck_assert_str_eq(why, "line too long");
	ck_assert(!m.has_id && m.verb == LBP_NONE);
	long_line(line, LBP_LINE_MAX + 1, "\n");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX + 1, &m, &why),
	    LBP_ELIMIT);
	long_line(line, LBP_LINE_MAX + 1, "\r\n");
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX + 1, &m, &why),
	    LBP_ELIMIT);
	/* Length first: garbage beyond the limit is not looked at. */
	memset(line, '\x01', sizeof(line));
	ck_assert_int_eq(parse_guarded(line, LBP_LINE_MAX + 1, &m, &why),
	    LBP_ELIMIT);
}
END_TEST

/* The store holds the biggest values a line can carry: LBP_FIELDS_MAX
 * fields filling the line. */
START_TEST(test_parse_full_store)
{
	static char    line[LBP_LINE_MAX];
	struct lbp_msg m;
	const char    *why;
	size_t         n = 0, each;
	int            i;

	n += (size_t)snprintf(line, sizeof(line), "OK 1");
	each = (LBP_LINE_MAX - 1 - n) / LBP_FIELDS_MAX - 4;
	for (i = 0; i < LBP_FIELDS_MAX; i++) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, " k%c=",
		    'a' + i);
		memset(line + n, '0' + i % 10, each);
		n += each;
	}
	line[n++] = '\n';
	ck_assert_uint_le(n, LBP_LINE_MAX);
	ck_assert_uint_gt(n, LBP_LINE_MAX - LBP_FIELDS_MAX - 1);
	ck_assert_int_eq(parse_guarded(line, n, &m, &why), LBP_OK);
	ck_assert_int_eq(m.nfields, LBP_FIELDS_MAX);
	for (i = 0; i < LBP_FIELDS_MAX; i++) {
		ck_assert_uint_eq(m.fields[i].len, each);
		ck_assert_int_eq(m.fields[i].value[each - 1], '0' + i % 10);
	}
	/* One more field is one too many. */
	n = (size_t)snprintf(line, sizeof(line), "OK 1");
	for (i = 0; i <= LBP_FIELDS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " k%c=1",
		    'a' + i);
	ck_assert_int_eq(parse_guarded(line, n, &m, &why), LBP_EPROTO);
	ck_assert_str_eq(why, "too many fields");
	ck_assert_int_eq(m.nfields, LBP_FIELDS_MAX);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The corpus of bad (and some good) lines.                              */

#define MAX_CORPUS 256

/* Every line of the corpus parses to the code its MANIFEST says, and every
 * file of the corpus is in the manifest. */
START_TEST(test_corpus)
{
	static char    names[MAX_CORPUS][128];
	static char    data[4 * LBP_LINE_MAX];
	const char    *srcdir = getenv("LB_SRCDIR"), *why;
	char           dir[4096], path[4400], text[512], file[128], code[32];
	struct lbp_msg m;
	struct dirent *de;
	enum lbp_error r;
	FILE          *mf;
	DIR           *d;
	size_t         len;
	int            n = 0, i, expect, errors_seen[LBP_NERRORS] = { 0 };

	ck_assert_msg(srcdir != NULL, "LB_SRCDIR is not set (make check "
	    "sets it to the source tree)");
	snprintf(dir, sizeof(dir), "%s/tests/data/protocol", srcdir);
	snprintf(path, sizeof(path), "%s/MANIFEST", dir);
	mf = fopen(path, "r");
	ck_assert_msg(mf != NULL, "cannot open %s", path);
	while (fgets(text, sizeof(text), mf) != NULL) {
		if (text[0] == '#' || text[strspn(text, " \t\n")] == '\0')
			continue;
		ck_assert_msg(sscanf(text, "%127s %31s", file, code) == 2,
		    "MANIFEST: bad line: %s", text);
		expect = strcmp(code, "OK") == 0 ? LBP_OK :
		    lbp_error_parse(code);
		ck_assert_msg(expect != -1, "MANIFEST: %s: no code %s", file,
		    code);
		for (i = 0; i < n; i++)
			ck_assert_msg(strcmp(names[i], file) != 0,
			    "MANIFEST: %s twice", file);
		ck_assert(n < MAX_CORPUS);
		snprintf(names[n++], sizeof(names[0]), "%s", file);
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		len = tl_read_file(path, data, sizeof(data));
		r = parse_guarded(data, len, &m, &why);
		ck_assert_msg(r == (enum lbp_error)expect,
		    "%s: %s (%s), expected %s", file, lbp_error_name(r),
		    r == LBP_OK ? "accepted" : why, code);
		errors_seen[r]++;
	}
	fclose(mf);
	ck_assert_int_ge(n, 40);
	/* The codes a line alone can earn all occur. */
	ck_assert_int_gt(errors_seen[LBP_OK], 0);
	ck_assert_int_gt(errors_seen[LBP_EPROTO], 0);
	ck_assert_int_gt(errors_seen[LBP_EVERB], 0);
	ck_assert_int_gt(errors_seen[LBP_ELIMIT], 0);

	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "MANIFEST") == 0)
			continue;
		for (i = 0; i < n && strcmp(names[i], de->d_name) != 0; i++)
			;
		ck_assert_msg(i < n, "%s/%s is not in the MANIFEST", dir,
		    de->d_name);
	}
	closedir(d);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Getters.                                                             */

/* Parses "OK 1 KEY=VALUE" with value encoded; asserts it parses. */
static void
parse_one_field(struct lbp_msg *m, const char *key, const char *value)
{
	struct lbp_out o;
	const char    *why;

	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_str(&o, key, value);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_int_eq(parse_guarded(o.buf, o.len, m, &why), LBP_OK);
	ck_assert_str_eq(lbp_get(m, key), value);
}

START_TEST(test_get)
{
	struct lbp_msg m;
	const char    *why;

	ck_assert_int_eq(parse_str("OK 1 token=5 a=%20 b=", &m, &why), LBP_OK);
	ck_assert_str_eq(lbp_get(&m, "token"), "5");
	ck_assert_str_eq(lbp_get(&m, "a"), " ");
	ck_assert_str_eq(lbp_get(&m, "b"), "");
	ck_assert_ptr_null(lbp_get(&m, "c"));
	ck_assert_ptr_null(lbp_get(&m, "tok"));
	ck_assert_ptr_null(lbp_get(&m, "token5"));
	ck_assert_ptr_null(lbp_get(&m, ""));
}
END_TEST

START_TEST(test_get_u64)
{
	static const struct {
		const char *text;
		int         r;
		uint64_t    value;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "4294967296", 0, 4294967296ULL },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551614", 0, UINT64_MAX - 1 },
		{ "18446744073709551616", -2, 0 },
		{ "18446744073709551620", -2, 0 },
		{ "99999999999999999999", -2, 0 },
		{ "184467440737095516150", -2, 0 },
		{ "-1", -2, 0 },
		{ "-0", -2, 0 },
		{ "+1", -2, 0 },
		{ "01", -2, 0 },
		{ "00", -2, 0 },
		{ "", -2, 0 },
		{ "1a", -2, 0 },
		{ "0x10", -2, 0 },
		{ " 1", -2, 0 },
		{ "1 ", -2, 0 },
		{ "1.0", -2, 0 },
		{ "1e3", -2, 0 },
	};
	struct lbp_msg m;
	uint64_t       v;
	size_t         i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_one_field(&m, "token", cases[i].text);
		v = 12345;
		ck_assert_msg(lbp_get_u64(&m, "token", &v) == cases[i].r,
		    "\"%s\"", cases[i].text);
		ck_assert_msg(v == (cases[i].r == 0 ? cases[i].value : 12345),
		    "\"%s\": %llu", cases[i].text, (unsigned long long)v);
	}
	v = 12345;
	ck_assert_int_eq(lbp_get_u64(&m, "pid", &v), -1);
	ck_assert(v == 12345);
}
END_TEST

START_TEST(test_get_timeout)
{
	static const struct {
		const char *text;
		int         r;
		double      value;
	} cases[] = {
		{ "inf", 0, INFINITY },
		{ "0", 0, 0 },
		{ "-1", 0, -1 },
		{ "-0", 0, 0 },
		{ "1.5", 0, 1.5 },
		{ "0.25", 0, 0.25 },
		{ "-0.5", 0, -0.5 },
		{ "10", 0, 10 },
		{ "0.1", 0, 0.1 },
		{ "0.3", 0, 0.3 },
		{ "123.456", 0, 123.456 },
		{ "0.000001", 0, 0.000001 },
		{ "007.50", 0, 7.5 },
		{ "86400", 0, 86400 },
		{ "18446744073709551616", 0, 18446744073709551616.0 },
		{ "nan", -2, 0 },
		{ "NaN", -2, 0 },
		{ "1e3", -2, 0 },
		{ "1E3", -2, 0 },
		{ "1e-3", -2, 0 },
		{ "0x10", -2, 0 },
		{ "", -2, 0 },
		{ "Inf", -2, 0 },
		{ "INF", -2, 0 },
		{ "-inf", -2, 0 },
		{ "+inf", -2, 0 },
		{ "infinity", -2, 0 },
		{ "+1", -2, 0 },
		{ "1.", -2, 0 },
		{ ".5", -2, 0 },
		{ "-.5", -2, 0 },
		{ "1..2", -2, 0 },
		{ "1.2.3", -2, 0 },
		{ "--1", -2, 0 },
		{ "-", -2, 0 },
		{ "1,5", -2, 0 },
		{ "1 ", -2, 0 },
		{ " 1", -2, 0 },
	};
	static char    big[512];
	struct lbp_msg m;
	double         v;
	size_t         i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_one_field(&m, "timeout", cases[i].text);
		v = 12345;
		ck_assert_msg(lbp_get_timeout(&m, "timeout", &v) == cases[i].r,
		    "\"%s\"", cases[i].text);
		ck_assert_msg(v == (cases[i].r == 0 ? cases[i].value : 12345),
		    "\"%s\": %.17g", cases[i].text, v);
	}
	/* Beyond a double's range: not a finite number. */
	big[0] = '1';
	memset(big + 1, '0', 400);
	parse_one_field(&m, "timeout", big);
	ck_assert_int_eq(lbp_get_timeout(&m, "timeout", &v), -2);
	/* Many digits: close to the value. */
	memset(big, '9', 300);
	big[300] = '\0';
	parse_one_field(&m, "timeout", big);
	ck_assert_int_eq(lbp_get_timeout(&m, "timeout", &v), 0);
	ck_assert(fabs(v / 1e300 - 1) < 1e-12);
	snprintf(big, sizeof(big), "0.%0300d1", 0);
	parse_one_field(&m, "timeout", big);
	ck_assert_int_eq(lbp_get_timeout(&m, "timeout", &v), 0);
	ck_assert(v >= 0 && v < 1e-299);
	snprintf(big, sizeof(big), "3.14159265358979323846264338327950288");
	parse_one_field(&m, "timeout", big);
	ck_assert_int_eq(lbp_get_timeout(&m, "timeout", &v), 0);
	ck_assert(fabs(v - 3.14159265358979323846) < 1e-15);
	v = 12345;
	ck_assert_int_eq(lbp_get_timeout(&m, "thread", &v), -1);
	ck_assert(v == 12345);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Formatting.                                                          */

/* Formats "OK 1 v=<value>" with lbp_add_double; asserts the line is
 * "OK 1 v=<expect>\n", or refused when expect is NULL. */
static void
check_double(double value, const char *expect)
{
	struct lbp_out o;
	char           want[512];

	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_double(&o, "v", value);
	if (expect == NULL) {
		ck_assert_msg(o.overflow, "%.17g written as %s", value, o.buf);
		ck_assert_int_eq(lbp_end(&o), -1);
		return;
	}
	ck_assert_int_eq(lbp_end(&o), 0);
	snprintf(want, sizeof(want), "OK 1 v=%s\n", expect);
	ck_assert_msg(strcmp(o.buf, want) == 0, "%.17g: \"%s\", not \"%s\"",
	    value, o.buf, want);
}

START_TEST(test_add_double)
{
	struct lbp_msg m;
	struct lbp_out o;
	const char    *why;
	double         v, back;
	int            i;

	check_double(0.25, "0.25");
	check_double(5, "5");
	check_double(INFINITY, "inf");
	check_double(0, "0");
	check_double(-0.0, "0");
	check_double(-1, "-1");
	check_double(0.1, "0.1");
	check_double(1.5, "1.5");
	check_double(-2.75, "-2.75");
	check_double(0.000001, "0.000001");
	check_double(1e-7, "0");
	check_double(-1e-7, "0");
	check_double(0.9999996, "1");
	check_double(-0.9999996, "-1");
	check_double(123456.5, "123456.5");
	check_double(30.000001, "30.000001");
	check_double(1e15, "1000000000000000");
	check_double(9007199254740993.0, "9007199254740992");
	check_double(18446744073709549568.0, "18446744073709549568");
	check_double(18446744073709551616.0, "18446744073709551616");
	check_double(1e20, "100000000000000000000");
	check_double(-1e20, "-100000000000000000000");
	check_double(NAN, NULL);
	check_double(-INFINITY, NULL);
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_double(&o, "v", DBL_MAX);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_uint_eq(strlen(o.buf), strlen("OK 1 v=\n") + 309);
	ck_assert(strncmp(o.buf, "OK 1 v=17976931348623157", 24) == 0);

	/* Back through lbp_get_timeout: within half a millionth. */
	rng_state = 42;
	for (i = 0; i < 2000; i++) {
		v = (double)(int64_t)rng() / (double)(1ULL << (rng() % 63));
		lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
		lbp_add_str(&o, "path", "/a");
		lbp_add_double(&o, "timeout", v);
		ck_assert_int_eq(lbp_end(&o), 0);
		ck_assert_int_eq(parse_guarded(o.buf, o.len, &m, &why), LBP_OK);
		ck_assert_int_eq(lbp_get_timeout(&m, "timeout", &back), 0);
		ck_assert_msg(fabs(back - v) <= 5e-7 + fabs(v) * 1e-15,
		    "%.17g came back as %.17g (%s)", v, back, o.buf);
	}
}
END_TEST

/* Whatever the locale says about decimal points, the point is '.'. */
START_TEST(test_add_double_locale)
{
	static const char *const locales[] = { "de_DE.UTF-8", "fr_FR.UTF-8",
	    "de_DE", "fr_FR" };
	size_t i;

	for (i = 0; i < sizeof(locales) / sizeof(locales[0]); i++)
		if (setlocale(LC_NUMERIC, locales[i]) != NULL)
			break;
	/* Without such a locale, this checks the C locale only. */
	check_double(0.25, "0.25");
	check_double(1e20 + 0.5, "100000000000000000000");
	setlocale(LC_NUMERIC, "C");
}
END_TEST

START_TEST(test_add_integers)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, 18);
	lbp_add_u64(&o, "a", UINT64_MAX);
	lbp_add_u64(&o, "b", 0);
	lbp_add_i64(&o, "c", INT64_MIN);
	lbp_add_i64(&o, "d", INT64_MAX);
	lbp_add_i64(&o, "e", -1);
	lbp_add_i64(&o, "f", 0);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_str_eq(o.buf, "OK 18 a=18446744073709551615 b=0 "
	    "c=-9223372036854775808 d=9223372036854775807 e=-1 f=0\n");
	ck_assert_uint_eq(o.len, strlen(o.buf));
}
END_TEST

/* lbp_begin: the verb's name and the id; refuses what lbp_parse would. */
START_TEST(test_begin)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_PING, 1, ID_LIMIT - 1);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_str_eq(o.buf, "PING 999999999999999999\n");
	lbp_begin(&o, LBP_MSG_PING, 1, 0);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_str_eq(o.buf, "PING 0\n");
	lbp_begin(&o, LBP_MSG_OK, 0, 77);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_str_eq(o.buf, "OK -\n");
	lbp_begin(&o, LBP_MSG_PING, 1, ID_LIMIT);
	ck_assert(o.overflow);
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_MSG_PING, 1, UINT64_MAX);
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_NONE, 1, 1);
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_NVERBS, 1, 1);
	ck_assert_int_eq(lbp_end(&o), -1);
	/* "-" is for replies. */
	lbp_begin(&o, LBP_MSG_PING, 0, 0);
	ck_assert(!o.overflow);
	ck_assert_int_eq(lbp_end(&o), -1);
	ck_assert(o.overflow);
	/* A new line starts afresh. */
	lbp_begin(&o, LBP_MSG_LIST, 1, 3);
	ck_assert(!o.overflow);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_str_eq(o.buf, "LIST 3\n");
}
END_TEST

/* lbp_end refuses lines lbp_parse refuses. */
START_TEST(test_end_checks_schema)
{
	static const char *const bad_keys[] = { "Path", "1a", "a-b", "",
	    "abcdefghijklmnopq", "a b", "a=b" };
	struct lbp_out o;
	size_t         i;
	int            k;
	char           key[8];

	for (i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		lbp_begin(&o, LBP_MSG_OK, 1, 1);
		lbp_add_str(&o, bad_keys[i], "x");
		ck_assert_msg(lbp_end(&o) == -1, "key \"%s\"", bad_keys[i]);
	}
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_str(&o, "abcdefghijklmnop", "x");
	ck_assert_int_eq(lbp_end(&o), 0);
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_str(&o, "method", "link");
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_str(&o, "path", "/a");
	lbp_add_str(&o, "path", "/b");
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_str(&o, "path", "/a");
	lbp_add_str(&o, "color", "red");
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_str(&o, "color", "red");
	ck_assert_int_eq(lbp_end(&o), 0);
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	for (k = 0; k <= LBP_FIELDS_MAX; k++) {
		snprintf(key, sizeof(key), "k%d", k);
		lbp_add_u64(&o, key, (uint64_t)k);
	}
	ck_assert(!o.overflow);
	ck_assert_int_eq(lbp_end(&o), -1);
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_str(&o, "message", NULL);
	ck_assert(o.overflow);
	ck_assert_int_eq(lbp_end(&o), -1);
}
END_TEST

/* The line fits exactly, or the field that would not fit is refused and
 * leaves the buffer as it was; later calls do nothing. */
START_TEST(test_format_limit)
{
	static char    value[LBP_LINE_MAX];
	struct lbp_out o;
	struct lbp_msg m;
	const char    *why;
	size_t         fit = LBP_LINE_MAX - strlen("ACQUIRE 1 path=\n");

	memset(value, 'a', sizeof(value));
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_mem(&o, "path", value, fit);
	ck_assert(!o.overflow);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_uint_eq(o.len, LBP_LINE_MAX);
	ck_assert_int_eq(o.buf[LBP_LINE_MAX - 1], '\n');
	ck_assert_int_eq(o.buf[LBP_LINE_MAX], '\0');
	ck_assert_int_eq(parse_guarded(o.buf, o.len, &m, &why), LBP_OK);
	ck_assert_uint_eq(m.fields[0].len, fit);

	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_mem(&o, "path", value, fit + 1);
	ck_assert(o.overflow);
	ck_assert_str_eq(o.buf, "ACQUIRE 1");
	ck_assert_uint_eq(o.len, 9);
	lbp_add_str(&o, "method", "link");
	ck_assert_str_eq(o.buf, "ACQUIRE 1");
	ck_assert_int_eq(lbp_end(&o), -1);

	/* An escape does not straddle the limit. */
	value[fit - 2] = ' ';
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_mem(&o, "path", value, fit - 1);
	ck_assert(o.overflow);
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1);
	lbp_add_mem(&o, "path", value, fit - 2);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_uint_eq(o.len, LBP_LINE_MAX - 2);
	value[fit - 2] = 'a';

	/* The key counts too. */
	lbp_begin(&o, LBP_MSG_OK, 1, 1);
	lbp_add_mem(&o, "a", value, LBP_LINE_MAX - strlen("OK 1 a=\n"));
	lbp_add_str(&o, "b", "");
	ck_assert(o.overflow);
	ck_assert_int_eq(lbp_end(&o), -1);
}
END_TEST

/* Every verb with all its fields, each field in turn carrying every byte
 * 1..255, formats and parses back to the same message. */
START_TEST(test_round_trip_every_verb)
{
	char           keys[2 * LBP_FIELDS_MAX][LBP_KEY_MAX + 1];
	char           all[255], small[64];
	struct lbp_out o;
	struct lbp_msg m;
	const char    *why, *value;
	size_t         len;
	int            v, nkeys, t, k, has_id;

	for (k = 0; k < 255; k++)
		all[k] = (char)(k + 1);
	for (v = 0; v < NVERB_ROWS; v++) {
		const struct verb_row *row = &verb_rows[v];

		nkeys = split_keys(row->req, keys, 2 * LBP_FIELDS_MAX);
		nkeys += split_keys(row->opt, keys + nkeys,
		    2 * LBP_FIELDS_MAX - nkeys);
		ck_assert_int_le(nkeys, LBP_FIELDS_MAX);
		for (t = 0; t < (nkeys > 0 ? nkeys : 1); t++)
		for (has_id = 1; has_id >= (row->dir[0] == 'D' ? 0 : 1);
		    has_id--) {
			lbp_begin(&o, row->verb, has_id, 100 + (uint64_t)t);
			for (k = 0; k < nkeys; k++) {
				if (k == t)
					lbp_add_mem(&o, keys[k], all, 255);
				else {
					snprintf(small, sizeof(small),
					    "v %.16s/%d", keys[k], k);
					lbp_add_str(&o, keys[k], small);
				}
			}
			ck_assert_msg(lbp_end(&o) == 0, "%s: refused",
			    lbp_verb_name(row->verb));
			ck_assert_int_eq(parse_guarded(o.buf, o.len, &m,
			    &why), LBP_OK);
			ck_assert_int_eq(m.verb, row->verb);
			ck_assert_int_eq(m.has_id, has_id);
			ck_assert(m.id == (has_id ? 100 + (uint64_t)t : 0));
			ck_assert_int_eq(m.nfields, nkeys);
			for (k = 0; k < nkeys; k++) {
				value = lbp_get(&m, keys[k]);
				ck_assert_ptr_nonnull(value);
				len = strlen(value);
				if (k == t) {
					ck_assert_uint_eq(len, 255);
					ck_assert(memcmp(value, all, 255) == 0);
				} else {
					snprintf(small, sizeof(small),
					    "v %.16s/%d", keys[k], k);
					ck_assert_str_eq(value, small);
				}
			}
			/* Without its '\n', the same. */
			ck_assert_int_eq(parse_guarded(o.buf, o.len - 1, &m,
			    &why), LBP_OK);
			ck_assert_int_eq(m.nfields, nkeys);
		}
	}
}
END_TEST

/* Each required field is required, of requests and replies alike. */
START_TEST(test_required_fields)
{
	char           keys[LBP_FIELDS_MAX][LBP_KEY_MAX + 1];
	struct lbp_out o;
	struct lbp_msg m;
	const char    *why;
	char           line[256];
	size_t         len;
	int            v, n, skip, k;

	for (v = 0; v < NVERB_ROWS; v++) {
		n = split_keys(verb_rows[v].req, keys, LBP_FIELDS_MAX);
		for (skip = -1; skip < n; skip++) {
			lbp_begin(&o, verb_rows[v].verb, 1, 9);
			len = (size_t)snprintf(line, sizeof(line), "%s 9",
			    lbp_verb_name(verb_rows[v].verb));
			for (k = 0; k < n; k++) {
				if (k == skip)
					continue;
				lbp_add_str(&o, keys[k], "x");
				len += (size_t)snprintf(line + len,
				    sizeof(line) - len, " %s=x", keys[k]);
			}
			if (skip == -1) {
				ck_assert_int_eq(lbp_end(&o), 0);
				ck_assert_str_eq(o.buf, strcat(line, "\n"));
				continue;
			}
			/* The formatter refuses it; so does the parser. */
			ck_assert_int_eq(lbp_end(&o), -1);
			ck_assert_int_eq(parse_str(line, &m, &why),
			    LBP_EPROTO);
			ck_assert(strstr(why, "missing required field") !=
			    NULL);
			ck_assert(strstr(why, keys[skip]) != NULL);
			ck_assert(m.has_id && m.id == 9);
		}
	}
	/* A client sending a reply's verb is the daemon's business. */
	ck_assert_int_eq(parse_str("OK 4 token=1", &m, &why), LBP_OK);
	ck_assert_int_eq(parse_str("ITEM 4 path=/a method=link", &m, &why),
	    LBP_OK);
	ck_assert_int_eq(m.verb, LBP_MSG_ITEM);
	ck_assert(verb_row(LBP_MSG_ITEM)->dir[0] == 'D');
}
END_TEST

/* ------------------------------------------------------------------ */
/* Error replies.                                                       */

START_TEST(test_error_reply_basic)
{
	struct lbp_out o;

	lbp_error_reply(&o, 1, 7, LBP_EALREADY, "held by 123");
	ck_assert_str_eq(o.buf, "ERR 7 code=EALREADY message=held%20by%20123\n");
	ck_assert_uint_eq(o.len, strlen(o.buf));
	lbp_error_reply(&o, 1, 7, LBP_EALREADY, NULL);
	ck_assert_str_eq(o.buf, "ERR 7 code=EALREADY\n");
	lbp_error_reply(&o, 0, 7, LBP_EPROTO, "");
	ck_assert_str_eq(o.buf, "ERR - code=EPROTO message=\n");
	lbp_error_reply(&o, 1, ID_LIMIT, LBP_EPROTO, "x");
	ck_assert_str_eq(o.buf, "ERR - code=EPROTO message=x\n");
	lbp_error_reply(&o, 1, 0, LBP_OK, "x");
	ck_assert_str_eq(o.buf, "ERR 0 code=EINTERNAL message=x\n");
	lbp_error_reply(&o, 1, 1, LBP_NERRORS, "x");
	ck_assert_str_eq(o.buf, "ERR 1 code=EINTERNAL message=x\n");
	lbp_error_reply(&o, 1, 1, (enum lbp_error)-3, "x");
	ck_assert_str_eq(o.buf, "ERR 1 code=EINTERNAL message=x\n");
	ck_assert(!o.overflow);
}
END_TEST

/* Long messages are cut to fit, whole escapes and whole UTF-8 characters
 * only, and the line is always valid. */
START_TEST(test_error_reply_cut)
{
	static char    msg[100000];
	static const char *const units[] = { "a", " ", "\xc3\xa9",
	    "\xe2\x82\xac", "\xf0\x9f\x94\x92", "a\x01\xff" };
	struct lbp_out o;
	struct lbp_msg m;
	const char    *why, *got;
	size_t         u, len, n, ul;

	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		ul = strlen(units[u]);
		for (len = 2600; len < 8300; len += len < 2800 || len > 7900 ?
		    1 : 97) {
			for (n = 0; n + ul <= len; n += ul)
				memcpy(msg + n, units[u], ul);
			msg[n] = '\0';
			lbp_error_reply(&o, 1, 123456789, LBP_EFAILED, msg);
			ck_assert(!o.overflow);
			ck_assert_uint_le(o.len, LBP_LINE_MAX);
			ck_assert_int_eq(o.buf[o.len - 1], '\n');
			ck_assert_int_eq(parse_guarded(o.buf, o.len, &m, &why),
			    LBP_OK);
			ck_assert_int_eq(m.verb, LBP_MSG_ERR);
			ck_assert(m.id == 123456789);
			ck_assert_str_eq(lbp_get(&m, "code"), "EFAILED");
			got = lbp_get(&m, "message");
			ck_assert_ptr_nonnull(got);
			ck_assert(strncmp(got, msg, strlen(got)) == 0);
			if (strlen(got) < n) {
				/* Cut: nearly full, at a character start. */
				ck_assert_uint_gt(o.len, LBP_LINE_MAX - 13);
				ck_assert(((unsigned char)msg[strlen(got)] &
				    0xc0) != 0x80);
			}
		}
	}
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	lbp_error_reply(&o, 0, 0, LBP_EINTERNAL, msg);
	ck_assert_uint_eq(o.len, LBP_LINE_MAX);
	ck_assert_int_eq(parse_guarded(o.buf, o.len, &m, &why), LBP_OK);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Randomized round trip.                                               */

/* A random value of at most max bytes: plain bytes, any bytes 1..255, or a
 * mix. */
static size_t
random_value(char *buf, size_t max)
{
	size_t len, i, kind = rng_below(3);

	switch (rng_below(20)) {
	case 0:
		len = rng_below(max + 1);
		break;
	case 1:
	case 2:
	case 3:
	case 4:
		len = rng_below(max < 200 ? max + 1 : 201);
		break;
	default:
		len = rng_below(17);
		break;
	}
	for (i = 0; i < len; i++) {
		if (kind == 0 || (kind == 2 && rng_below(2)))
			buf[i] = PLAIN_SET[rng_below(strlen(PLAIN_SET))];
		else
			buf[i] = (char)(1 + rng_below(255));
	}
	return len;
}

/* A random key, not one of the n in keys. */
static void
random_key(char *key, char keys[][LBP_KEY_MAX + 1], int n)
{
	static const char first[] = "abcdefghijklmnopqrstuvwxyz";
	static const char rest[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
	size_t            len, i;
	int               k;

	do {
		len = 1 + rng_below(LBP_KEY_MAX);
		key[0] = first[rng_below(sizeof(first) - 1)];
		for (i = 1; i < len; i++)
			key[i] = rest[rng_below(sizeof(rest) - 1)];
		key[len] = '\0';
		for (k = 0; k < n && strcmp(keys[k], key) != 0; k++)
			;
	} while (k < n);
}

/* One random message. */
struct random_msg {
	enum lbp_verb verb;
	int           has_id;
	uint64_t      id;
	int           n;
	char          keys[LBP_FIELDS_MAX][LBP_KEY_MAX + 1];
	char          values[LBP_FIELDS_MAX][3000];
	size_t        lens[LBP_FIELDS_MAX];
};

/* Fills r with a random message its verb's schema accepts. */
static void
random_msg(struct random_msg *r)
{
	char                   opt[LBP_FIELDS_MAX][LBP_KEY_MAX + 1];
	char                   tmp[LBP_KEY_MAX + 1];
	const struct verb_row *row = &verb_rows[rng_below(NVERB_ROWS)];
	int                    nopt, i, j, extra;

	r->verb = row->verb;
	r->has_id = row->dir[0] == 'C' || rng_below(8) != 0;
	r->id = !r->has_id ? 0 : rng_below(4) == 0 ? rng() % ID_LIMIT :
	    rng_below(1000);
	r->n = split_keys(row->req, r->keys, LBP_FIELDS_MAX);
	nopt = split_keys(row->opt, opt, LBP_FIELDS_MAX);
	for (i = 0; i < nopt; i++)
		if (rng_below(2))
			memcpy(r->keys[r->n++], opt[i], sizeof(opt[i]));
	if (row->dir[0] == 'D')
		for (extra = (int)rng_below(4); extra > 0 &&
		    r->n < LBP_FIELDS_MAX; extra--, r->n++)
			random_key(r->keys[r->n], r->keys, r->n);
	for (i = r->n - 1; i > 0; i--) {
		j = (int)rng_below((size_t)i + 1);
		memcpy(tmp, r->keys[i], sizeof(tmp));
		memcpy(r->keys[i], r->keys[j], sizeof(tmp));
		memcpy(r->keys[j], tmp, sizeof(tmp));
	}
	for (i = 0; i < r->n; i++)
		r->lens[i] = random_value(r->values[i],
		    sizeof(r->values[i]));
}

/* Formats r into o; returns lbp_end's result. */
static int
format_msg(const struct random_msg *r, struct lbp_out *o)
{
	int i;

	lbp_begin(o, r->verb, r->has_id, r->id);
	for (i = 0; i < r->n; i++)
		lbp_add_mem(o, r->keys[i], r->values[i], r->lens[i]);
	return lbp_end(o);
}

/* The length r's line has when formatted, '\n' included. */
static size_t
line_length(const struct random_msg *r)
{
	char   id[32];
	size_t n;
	int    i;

	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->id);
	n = strlen(lbp_verb_name(r->verb)) + 1 +
	    (r->has_id ? strlen(id) : 1) + 1;
	for (i = 0; i < r->n; i++)
		n += 2 + strlen(r->keys[i]) +
		    encoded_len(r->values[i], r->lens[i]);
	return n;
}

/* Mutates len bytes of line in place (room for one more byte); returns
 * the new length. */
static size_t
mutate(char *line, size_t len)
{
	size_t at = rng_below(len);

	switch (rng_below(6)) {
	case 0:         /* flip a bit */
		line[at] ^= (char)(1 << rng_below(8));
		break;
	case 1:         /* any byte */
		line[at] = (char)rng_below(256);
		break;
	case 2:         /* a byte of the grammar */
		line[at] = " =%\r\n-0aA"[rng_below(10)];
		break;
	case 3:         /* drop a byte */
		memmove(line + at, line + at + 1, len - at - 1);
		len--;
		break;
	case 4:         /* insert a byte */
		memmove(line + at + 1, line + at, len - at);
		line[at] = " =%-0a\x01\x80"[rng_below(8)];
		len++;
		break;
	default:        /* cut */
		len = at;
		break;
	}
	return len;
}

/* Formats the parsed m again and asserts it parses to the same message. */
static void
check_reformat(const struct lbp_msg *m)
{
	struct lbp_out o;
	struct lbp_msg again;
	const char    *why;
	int            i;

	lbp_begin(&o, m->verb, m->has_id, m->id);
	for (i = 0; i < m->nfields; i++)
		lbp_add_mem(&o, m->fields[i].key, m->fields[i].value,
		    m->fields[i].len);
	ck_assert_int_eq(lbp_end(&o), 0);
	ck_assert_int_eq(parse_guarded(o.buf, o.len, &again, &why), LBP_OK);
	ck_assert_int_eq(again.verb, m->verb);
	ck_assert(again.id == m->id && again.has_id == m->has_id);
	ck_assert_int_eq(again.nfields, m->nfields);
	for (i = 0; i < m->nfields; i++) {
		ck_assert_str_eq(again.fields[i].key, m->fields[i].key);
		ck_assert_uint_eq(again.fields[i].len, m->fields[i].len);
		ck_assert(memcmp(again.fields[i].value, m->fields[i].value,
		    m->fields[i].len) == 0);
	}
}

/* A few thousand random messages format to the length expected (or are
 * refused exactly when they would not fit) and parse back to themselves;
 * each, mutated, parses to a sane result, and a mutated line that parses
 * formats back to the same message. */
START_TEST(test_random_round_trip)
{
	static struct random_msg r;
	static char              line[LBP_LINE_MAX + 2];
	struct lbp_out           o;
	struct lbp_msg           m;
	const char              *why;
	size_t                   want, len;
	int                      i, k, fits = 0, refused = 0, mutants_ok = 0;

	rng_state = 0x5eed1e55u;
	for (i = 0; i < 4000; i++) {
		random_msg(&r);
		want = line_length(&r);
		if (format_msg(&r, &o) != 0) {
			ck_assert_msg(want > LBP_LINE_MAX,
			    "refused a line of %zu bytes", want);
			refused++;
			continue;
		}
		fits++;
		ck_assert_uint_le(want, LBP_LINE_MAX);
		ck_assert_uint_eq(o.len, want);
		ck_assert_int_eq(parse_guarded(o.buf, o.len, &m, &why), LBP_OK);
		ck_assert_int_eq(m.verb, r.verb);
		ck_assert_int_eq(m.has_id, r.has_id);
		ck_assert(m.id == r.id);
		ck_assert_int_eq(m.nfields, r.n);
		for (k = 0; k < r.n; k++) {
			ck_assert_str_eq(m.fields[k].key, r.keys[k]);
			ck_assert_uint_eq(m.fields[k].len, r.lens[k]);
			ck_assert(memcmp(m.fields[k].value, r.values[k],
			    r.lens[k]) == 0);
		}
		memcpy(line, o.buf, o.len);
		len = mutate(line, o.len);
		if (len > LBP_LINE_MAX) {
			ck_assert_int_eq(parse_guarded(line, len, &m, &why),
			    LBP_ELIMIT);
			continue;
		}
		if (parse_guarded(line, len, &m, &why) == LBP_OK) {
			mutants_ok++;
			check_reformat(&m);
		}
	}
	/* The generator makes both kinds, and mutants of both outcomes. */
	ck_assert_int_gt(fits, 3000);
	ck_assert_int_gt(refused, 0);
	ck_assert_int_gt(mutants_ok, 100);
	ck_assert_int_lt(mutants_ok, fits - 100);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_verb_names);
	tcase_add_test(tc, test_error_names);
	tcase_add_test(tc, test_error_names_mirror_library);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_test(tc, test_encode_every_byte);
	tcase_add_test(tc, test_encode_round_trip);
	tcase_add_test(tc, test_decode_refuses);
	tcase_add_test(tc, test_encode_room);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_reasons);
	tcase_add_test(tc, test_parse_error_names_request);
	tcase_add_test(tc, test_parse_reads_len_bytes);
	tcase_add_test(tc, test_parse_length_limit);
	tcase_add_test(tc, test_parse_full_store);
	tcase_add_test(tc, test_corpus);
	tcase_add_test(tc, test_required_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("getters");
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_get_u64);
	tcase_add_test(tc, test_get_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_add_double);
	tcase_add_test(tc, test_add_double_locale);
	tcase_add_test(tc, test_add_integers);
	tcase_add_test(tc, test_begin);
	tcase_add_test(tc, test_end_checks_schema);
	tcase_add_test(tc, test_format_limit);
	tcase_add_test(tc, test_round_trip_every_verb);
	tcase_add_test(tc, test_error_reply_basic);
	tcase_add_test(tc, test_error_reply_cut);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_test(tc, test_random_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_protocol", protocol_suite(), CK_ENV);
}
