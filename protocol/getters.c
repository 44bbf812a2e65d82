/*
 * getters.c: reading a parsed message's fields, as text or as numbers.
 * Numbers are read by hand, not with strtoull/strtod, so that the locale
 * (a ',' decimal point) and their laxer syntax (spaces, signs, hex,
 * exponents, "nan") play no part.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "protocol.h"

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
	1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};
#define NEXACT ((long)(sizeof(exact_pow10) / sizeof(exact_pow10[0])))

/* lbp_get: see protocol.h.  The value is NUL-terminated, in m->store. */
const char *
lbp_get(const struct lbp_msg *m, const char *key)
{
	int i;

	for (i = 0; i < m->nfields; i++)
		if (strcmp(m->fields[i].key, key) == 0)
			return m->fields[i].value;
	return NULL;
}

/*
 * lbp_get_u64: see protocol.h.  Valid: "0", or 1 to 20 digits without a
 * leading zero whose value is at most UINT64_MAX.
 */
int
lbp_get_u64(const struct lbp_msg *m, const char *key, uint64_t *out)
{
	const char *s = lbp_get(m, key);
	uint64_t    v = 0, d;

	if (s == NULL)
		return -1;
	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -2;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -2;
		d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/*
 * Reads s, [-]DIGITS[.DIGITS], into *out.  Returns 0, or -1 when s has
 * another shape or its value is beyond a double's range.  The first 19
 * significant digits are kept: exact (correctly rounded) for up to 15
 * digits and a fraction of up to 22, close enough for a timeout beyond.
 */
static int
decimal_to_double(const char *s, double *out)
{
	uint64_t mant = 0;
	long     scale = 0, i;
	int      neg = 0, frac = 0;
	double   x;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s == '.' && !frac) {
			frac = 1;
			if (s[1] < '0' || s[1] > '9')
				return -1;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -1;
		if (mant < 1000000000000000000ULL) {
			mant = mant * 10 + (uint64_t)(*s - '0');
			scale -= frac;
		} else if (!frac)
			scale++;
	}
	x = (double)mant;
	if (scale < 0 && -scale < NEXACT)
		x /= exact_pow10[-scale];
	else
		for (i = 0; i < (scale < 0 ? -scale : scale) && x != 0; i++) {
			x = scale < 0 ? x / 10 : x * 10;
			if (x > DBL_MAX)
				return -1;
		}
	*out = neg ? -x : x;
	return 0;
}

/*
 * lbp_get_timeout: see protocol.h.  Valid: "inf", or [-]DIGITS[.DIGITS]
 * within a double's range; no "+", exponent, hex, "nan" or "-inf".
 */
int
lbp_get_timeout(const struct lbp_msg *m, const char *key, double *out)
{
	const char *s = lbp_get(m, key);
	double      x;

	if (s == NULL)
		return -1;
	if (strcmp(s, "inf") == 0)
		x = INFINITY;
	else if (decimal_to_double(s, &x) == -1)
		return -2;
	*out = x;
	return 0;
}
