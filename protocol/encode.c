/*
 * encode.c: the percent-encoding of field values.  A value is written as
 * its bytes in [A-Za-z0-9._~/+:,@-] and %XX (uppercase hex) for every other
 * byte; a decoder takes either case of hex digit and refuses %00, a
 * malformed escape and any byte that should have been encoded.
 */
#include <limits.h>
#include <string.h>

#include "protocol.h"

/* Whether byte c stands for itself in an encoded value. */
static int
plain_byte(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("._~/+:,@-", c) != NULL;
}

/* The value of hex digit c (either case), or -1. */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * lbp_encode: see protocol.h.  Writes the encoding of len bytes at in (any
 * bytes, NUL included; in may be NULL when len is 0) and a NUL into out.
 * Returns the encoded length, or -1 when it and its NUL do not fit in size
 * bytes (or exceed INT_MAX); out's contents are then unspecified.
 */
int
lbp_encode(const char *in, size_t len, char *out, size_t size)
{
	static const char   hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)in;
	size_t               i, n = 0;

	for (i = 0; i < len; i++) {
		if (plain_byte(s[i])) {
			if (size - n < 2)
				return -1;
			out[n++] = (char)s[i];
		} else {
			if (size - n < 4)
				return -1;
			out[n++] = '%';
			out[n++] = hex[s[i] >> 4];
			out[n++] = hex[s[i] & 0xf];
		}
	}
	if (size - n < 1 || n > INT_MAX)
		return -1;
	out[n] = '\0';
	return (int)n;
}

/*
 * lbp_decode: see protocol.h.  Decodes len bytes at in (not necessarily
 * NUL-terminated; never read past len) and writes the bytes and a NUL into
 * out.  Returns the decoded length, or -1 on a malformed escape, %00, a byte
 * that should have been encoded, or no room for the result and its NUL;
 * out's contents are then unspecified.
 */
int
lbp_decode(const char *in, size_t len, char *out, size_t size)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t               i, n = 0;
	int                  hi, lo;
	unsigned char        c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '%') {
			if (len - i < 3 || (hi = hex_value(s[i + 1])) == -1 ||
			    (lo = hex_value(s[i + 2])) == -1)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == '\0')
				return -1;
			i += 2;
		} else if (!plain_byte(c))
			return -1;
		if (size - n < 2)
			return -1;
		out[n++] = (char)c;
	}
	if (size - n < 1 || n > INT_MAX)
		return -1;
	out[n] = '\0';
	return (int)n;
}
