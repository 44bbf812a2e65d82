/*
 * say.c: what a benchmark program says: to the person running it (die,
 * progress, on standard error) and to the other process of a two-process
 * game (word_say, word_hear: one byte on a pipe).  Built for every system.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* die: prints "lbbench: MESSAGE" and exits 1. */
void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("lbbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* progress: a line on standard error, for the person watching. */
void
progress(const char *fmt, ...)
{
	va_list ap;

	fputs("  ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* word_say: sends the one-byte word c to the other process of a game
 * (what: the game, for the message); dies when it cannot. */
void
word_say(int fd, char c, const char *what)
{
	while (write(fd, &c, 1) != 1)
		if (errno != EINTR)
			die("%s: write: %s", what, strerror(errno));
}

/* word_hear: waits for the one-byte word c from the other process; dies
 * when it is gone or says something else. */
void
word_hear(int fd, char c, const char *what)
{
	char    got;
	ssize_t n;

	while ((n = read(fd, &got, 1)) != 1)
		if (n == 0 || errno != EINTR)
			die("%s: the other process is gone", what);
	if (got != c)
		die("%s: expected '%c', got '%c'", what, c, got);
}
