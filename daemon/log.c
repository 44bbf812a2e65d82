/*
 * log.c: the daemon's log lines: "<level>func: message" on stderr, which
 * journald files at that level; a terminal sees the same text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

int lbd_log_debug;

/* lbd_log: writes one line; never fails, preserves errno. */
void
lbd_log(enum lbd_log_level level, const char *func, const char *fmt, ...)
{
	char    line[2048];
	va_list ap;
	int     saved = errno;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>%s: %s\n", (int)level, func, line);
	errno = saved;
}
