/*
 * names.c: the names of the verbs and error codes, and the meanings of the
 * error codes, generated from LBP_VERB_MAP and LBP_ERRNO_MAP in protocol.h.
 */
#include <string.h>

#include "protocol.h"

static const char *const verb_names[LBP_NVERBS] = {
	[LBP_NONE] = "?",
#define LBP_VERB_NAME_ROW(verb, dir, req, opt) [LBP_MSG_##verb] = #verb,
	LBP_VERB_MAP(LBP_VERB_NAME_ROW)
#undef LBP_VERB_NAME_ROW
};

static const struct {
	const char *name;
	const char *text;
} errors[LBP_NERRORS] = {
	[LBP_OK] = { "OK", "success" },
#define LBP_ERROR_ROW(name, meaning) [LBP_##name] = { #name, meaning },
	LBP_ERRNO_MAP(LBP_ERROR_ROW)
#undef LBP_ERROR_ROW
};

/* lbp_verb_name: see protocol.h.  Never NULL; the string is static. */
const char *
lbp_verb_name(enum lbp_verb verb)
{
	if ((unsigned)verb >= LBP_NVERBS)
		return "?";
	return verb_names[verb];
}

/* lbp_error_name: see protocol.h.  "OK" for LBP_OK; never NULL. */
const char *
lbp_error_name(enum lbp_error code)
{
	if ((unsigned)code >= LBP_NERRORS)
		return "?";
	return errors[code].name;
}

/* lbp_error_text: see protocol.h.  "success" for LBP_OK; never NULL. */
const char *
lbp_error_text(enum lbp_error code)
{
	if ((unsigned)code >= LBP_NERRORS)
		return "?";
	return errors[code].text;
}

/* lbp_verb_parse: see protocol.h.  Exact and case-sensitive: name (len
 * bytes, not necessarily NUL-terminated) must be a whole verb. */
enum lbp_verb
lbp_verb_parse(const char *name, size_t len)
{
	int v;

	if (name == NULL)
		return LBP_NONE;
	for (v = LBP_NONE + 1; v < LBP_NVERBS; v++)
		if (strlen(verb_names[v]) == len &&
		    memcmp(verb_names[v], name, len) == 0)
			return (enum lbp_verb)v;
	return LBP_NONE;
}

/* lbp_error_parse: see protocol.h.  Knows the codes an ERR reply carries
 * (not "OK": -1 for it, as for NULL and unknown names). */
int
lbp_error_parse(const char *name)
{
	int e;

	if (name == NULL)
		return -1;
	for (e = LBP_OK + 1; e < LBP_NERRORS; e++)
		if (strcmp(errors[e].name, name) == 0)
			return e;
	return -1;
}
