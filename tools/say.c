/*
 * say.c: what the lockbroker command says (say.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "say.h"

/* complain: see say.h. */
void
complain(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROGRAM);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
