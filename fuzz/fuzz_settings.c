/*
 * fuzz_settings.c: libFuzzer target for lockbrokerd.conf's parser: any
 * text is accepted or refused with a reason, never read past its end, and
 * leaves every limit within its documented range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lbd_config c;
	char              why[256] = "";

	lbd_config_defaults(&c);
	if (lbd_config_parse((const char *)data, size, &c, why,
	    sizeof(why)) != 0) {
		if (why[0] == '\0')
			abort();
		return 0;
	}
	if (c.limits.holds_per_conn == 0 || c.limits.conns == 0 ||
	    !(c.grace > 0) || !(c.foreign_poll > 0) ||
	    memchr(c.socket, '\0', sizeof(c.socket)) == NULL ||
	    memchr(c.state, '\0', sizeof(c.state)) == NULL)
		abort();
	return 0;
}
