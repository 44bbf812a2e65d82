/*
 * fuzz_protocol.c: libFuzzer target for the wire protocol's parser.  Every
 * input is a line as a client could send it; a parse that succeeds is
 * formatted again and must parse to the same message (round trip), and the
 * typed getters must accept or refuse each field without harm.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lbp_msg m, again;
	static struct lbp_out o;
	const char           *why = NULL;
	uint64_t              u;
	double                t;
	int                   i;

	if (lbp_parse((const char *)data, size, &m, &why) != LBP_OK) {
		if (why == NULL)
			abort();        /* every refusal says why */
		return 0;
	}
	for (i = 0; i < m.nfields; i++) {
		lbp_get_u64(&m, m.fields[i].key, &u);
		lbp_get_timeout(&m, m.fields[i].key, &t);
		if (strlen(m.fields[i].value) != m.fields[i].len)
			abort();        /* values hold no NUL */
	}
	lbp_begin(&o, m.verb, m.has_id, m.id);
	for (i = 0; i < m.nfields; i++)
		lbp_add_mem(&o, m.fields[i].key, m.fields[i].value,
		    m.fields[i].len);
	if (lbp_end(&o) != 0)
		return 0;       /* longer once re-encoded: allowed */
	if (lbp_parse(o.buf, o.len, &again, &why) != LBP_OK ||
	    again.verb != m.verb || again.id != m.id ||
	    again.nfields != m.nfields)
		abort();
	for (i = 0; i < m.nfields; i++)
		if (strcmp(again.fields[i].key, m.fields[i].key) != 0 ||
		    again.fields[i].len != m.fields[i].len ||
		    memcmp(again.fields[i].value, m.fields[i].value,
		    m.fields[i].len) != 0)
			abort();
	return 0;
}
