/*
 * parse.c: reading one line into a struct lbp_msg and checking it against
 * its verb's schema (LBP_VERB_MAP).  Every malformed line is refused with
 * an error code and a short static reason, at the first fault found, in
 * this order: length, stray bytes (control characters, non-ASCII), verb,
 * id, then each field in turn, and last the required fields.  The verb and
 * the id are read first all the same, so that the reply can name the
 * request.
 */
#include <string.h>

#include "protocol.h"

/* Who sends a verb (the map's C and D): the client (requests) or the
 * daemon (replies). */
enum {
	FROM_C = 1,
	FROM_D
};

/* 10^LBP_ID_DIGITS: every id is below it. */
#define ID_LIMIT 1000000000000000000ULL

/* A verb's schema: who sends it, its required and optional keys (space
 * separated), and the reason given when a required field is missing. */
static const struct schema {
	int         from;
	const char *required;
	const char *optional;
	const char *missing;
} schemas[LBP_NVERBS] = {
#define LBP_SCHEMA_ROW(verb, dir, req, opt)                            \
	[LBP_MSG_##verb] = { FROM_##dir, req, opt,                  \
	    "missing required field (" #verb " needs: " req ")" },
	LBP_VERB_MAP(LBP_SCHEMA_ROW)
#undef LBP_SCHEMA_ROW
};

/* The next word of a space-separated list at *list, with its length in
 * *len, stepping *list past it; NULL at the list's end. */
static const char *
next_word(const char **list, size_t *len)
{
	const char *w = *list, *end;

	while (*w == ' ')
		w++;
	if (*w == '\0')
		return NULL;
	for (end = w; *end != '\0' && *end != ' '; end++)
		;
	*len = (size_t)(end - w);
	*list = end;
	return w;
}

/* Whether the space-separated list holds the key of klen bytes. */
static int
list_has(const char *list, const char *key, size_t klen)
{
	const char *w;
	size_t      n;

	while ((w = next_word(&list, &n)) != NULL)
		if (n == klen && memcmp(w, key, klen) == 0)
			return 1;
	return 0;
}

/* Whether m has a field whose key is the klen bytes at key. */
static int
has_field(const struct lbp_msg *m, const char *key, size_t klen)
{
	int i;

	for (i = 0; i < m->nfields; i++)
		if (strlen(m->fields[i].key) == klen &&
		    memcmp(m->fields[i].key, key, klen) == 0)
			return 1;
	return 0;
}

/*
 * Reads the request id in [s, end) into m: 0 for digits (has_id 1), 1 for
 * "-" (has_id 0), or -1 with *why set when it is neither: 1 to
 * LBP_ID_DIGITS decimal digits, no leading zero unless the id is "0".
 */
static int
read_id(struct lbp_msg *m, const char *s, const char *end, const char **why)
{
	size_t   n = (size_t)(end - s), i;
	uint64_t id = 0;

	if (n == 0) {
		*why = "missing request id";
		return -1;
	}
	if (n == 1 && *s == '-')
		return 1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*why = "request id is not a decimal number";
			return -1;
		}
	}
	if (n > LBP_ID_DIGITS) {
		*why = "request id has too many digits";
		return -1;
	}
	if (n > 1 && *s == '0') {
		*why = "request id has a leading zero";
		return -1;
	}
	for (i = 0; i < n; i++)
		id = id * 10 + (uint64_t)(s[i] - '0');
	m->has_id = 1;
	m->id = id;
	return 0;
}

/* Whether [s, end) is a verb's shape: one or more uppercase letters. */
static int
verb_shaped(const char *s, const char *end)
{
	if (s == end)
		return 0;
	for (; s < end; s++)
		if (*s < 'A' || *s > 'Z')
			return 0;
	return 1;
}

/* The first byte in [s, end) no line may hold raw (a control character or
 * a non-ASCII byte), as a reason; NULL when there is none. */
static const char *
stray_byte(const char *s, const char *end)
{
	unsigned char c;

	for (; s < end; s++) {
		c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			return "control character in the line";
		if (c >= 0x80)
			return "non-ASCII byte (values must %-encode it)";
	}
	return NULL;
}

/* Why lbp_decode refused the value [s, end), which holds no stray byte. */
static const char *
value_fault(const char *s, const char *end)
{
	const char *hex = "0123456789ABCDEFabcdef";

	for (; s < end; s++) {
		if (*s != '%')
			continue;
		if (end - s < 3 || strchr(hex, s[1]) == NULL ||
		    strchr(hex, s[2]) == NULL)
			return "malformed %-escape in a value";
		if (s[1] == '0' && s[2] == '0')
			return "%00 in a value";
		s += 2;
	}
	return "byte in a value must be %-encoded";
}

/* The reason a key of klen bytes at key is malformed, or NULL: 1 to
 * LBP_KEY_MAX bytes, a lowercase letter then [a-z0-9_]. */
static const char *
key_fault(const char *key, size_t klen)
{
	size_t i;

	if (klen == 0)
		return "empty key";
	if (klen > LBP_KEY_MAX)
		return "key too long";
	if (key[0] < 'a' || key[0] > 'z')
		return "malformed key (a lowercase word)";
	for (i = 1; i < klen; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') ||
		    (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
			return "malformed key (a lowercase word)";
	return NULL;
}

/*
 * Adds the field KEY=VALUE in [s, end) to m, decoding its value into
 * m->store from *used on (advanced past the value's NUL).  Returns 0, or -1
 * with *why set when the field is malformed, one too many, repeated, or
 * (for a client's verb) unknown.
 */
static int
add_field(struct lbp_msg *m, const struct schema *sc, const char *s,
    const char *end, size_t *used, const char **why)
{
	struct lbp_field *f;
	const char       *eq;
	size_t            klen;
	int               n;

	if ((eq = memchr(s, '=', (size_t)(end - s))) == NULL) {
		*why = "field without '='";
		return -1;
	}
	klen = (size_t)(eq - s);
	if ((*why = key_fault(s, klen)) != NULL)
		return -1;
	if (m->nfields == LBP_FIELDS_MAX) {
		*why = "too many fields";
		return -1;
	}
	if (has_field(m, s, klen)) {
		*why = "repeated field";
		return -1;
	}
	if (sc->from == FROM_C && !list_has(sc->required, s, klen) &&
	    !list_has(sc->optional, s, klen)) {
		*why = "unknown field";
		return -1;
	}
	n = lbp_decode(eq + 1, (size_t)(end - eq - 1), m->store + *used,
	    sizeof(m->store) - *used);
	if (n == -1) {
		*why = value_fault(eq + 1, end);
		return -1;
	}
	f = &m->fields[m->nfields++];
	memcpy(f->key, s, klen);
	f->key[klen] = '\0';
	f->value = m->store + *used;
	f->len = (size_t)n;
	*used += (size_t)n + 1;
	return 0;
}

/*
 * lbp_parse: see protocol.h.  Reads exactly len bytes at line.  The store
 * always has room: each field takes at least its value's decoded length
 * plus two bytes (" k=") of the line, and the line is at most LBP_LINE_MAX.
 */
enum lbp_error
lbp_parse(const char *line, size_t len, struct lbp_msg *m, const char **why)
{
	const struct schema *sc;
	const char          *p, *end, *vend, *tok, *reason = NULL;
	const char          *id_why, *list;
	enum lbp_error       r = LBP_EPROTO;
	enum lbp_verb        verb;
	size_t               used = 0, klen;
	int                  id;

	m->verb = LBP_NONE;
	m->has_id = 0;
	m->id = 0;
	m->nfields = 0;

	/* The length first: a line of LBP_LINE_MAX bytes ends with '\n'. */
	if (len > LBP_LINE_MAX ||
	    (len == LBP_LINE_MAX && line[len - 1] != '\n')) {
		r = LBP_ELIMIT;
		reason = "line too long";
		goto out;
	}
	end = line + len;
	if (end > line && end[-1] == '\n')
		end--;
	if (end > line && end[-1] == '\r')
		end--;
	if (end == line) {
		reason = "empty line";
		goto out;
	}

	/* The verb and the id, both read before either is judged, so that
	 * an error about the verb can still name the request. */
	for (p = line; p < end && *p != ' '; p++)
		;
	vend = p;
	verb = lbp_verb_parse(line, (size_t)(vend - line));
	id = -1;
	id_why = "missing request id";
	if (p < end) {
		for (tok = ++p; p < end && *p != ' '; p++)
			;
		id = read_id(m, tok, p, &id_why);
	}
	m->verb = verb;
	if ((reason = stray_byte(line, end)) != NULL)
		goto out;
	if (!verb_shaped(line, vend)) {
		reason = "malformed verb (uppercase letters)";
		goto out;
	}
	if (verb == LBP_NONE) {
		r = LBP_EVERB;
		reason = "unknown verb";
		goto out;
	}
	sc = &schemas[verb];
	if (id == -1) {
		reason = id_why;
		goto out;
	}
	if (id == 1 && sc->from == FROM_C) {
		reason = "request id \"-\" is for replies only";
		goto out;
	}

	/* The fields, each after exactly one space. */
	while (p < end) {
		if (++p == end) {
			reason = "trailing space";
			goto out;
		}
		if (*p == ' ') {
			reason = "double space";
			goto out;
		}
		for (tok = p; p < end && *p != ' '; p++)
			;
		if (add_field(m, sc, tok, p, &used, &reason) == -1)
			goto out;
	}
	list = sc->required;
	while ((tok = next_word(&list, &klen)) != NULL) {
		if (!has_field(m, tok, klen)) {
			reason = sc->missing;
			goto out;
		}
	}
	r = LBP_OK;
out:
	if (r != LBP_OK && why != NULL)
		*why = reason;
	return r;
}
