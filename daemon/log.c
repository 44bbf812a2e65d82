/*
 * log.c: the daemon's log lines: "<level>func: message" on stderr, which
 * journald files at that level; a terminal sees the same text.  In a
 * file (lbd_log_open: a Windows service, which has no stderr) each line
 * starts with its time.
 *
 * Messages carry what clients chose (lock paths, names from /proc and
 * from lock files), so each line is escaped as a whole before it is
 * written: control characters (a newline would start a line of the
 * client's making, "<0>..." at any level), DEL, C1 controls, bytes that
 * are not UTF-8, and the backslash itself become \n, \t, \xNN, \\.
 * A line is thus always one line, and reads back unambiguously.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "os.h"

int lbd_log_debug;

/* The file lines go to (lbd_log_open), or NULL: stderr. */
static FILE *log_file;

/* How many bytes at s (n left) form one well-formed UTF-8 character that
 * is not a C1 control (U+0080 to U+009F); 0 when none does. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xc2 && s[1] < 0xa0) ||           /* C1 controls */
	    (s[0] == 0xe0 && s[1] < 0xa0) ||           /* overlong */
	    (s[0] == 0xed && s[1] >= 0xa0) ||          /* surrogates */
	    (s[0] == 0xf0 && s[1] < 0x90) ||           /* overlong */
	    (s[0] == 0xf4 && s[1] >= 0x90))            /* beyond U+10FFFF */
		return 0;
	return len;
}

/*
 * Copies src (n bytes) into dst (size bytes, NUL-terminated), escaped as
 * the top of this file says; an escape that does not fit is left out
 * whole, with what follows.
 */
static void
log_escape(char *dst, size_t size, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t               o = 0, i = 0, len;
	char                 esc[5];

	while (i < n) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
			len = 1;
			esc[0] = (char)s[i];
		} else if ((len = utf8_len(s + i, n - i)) > 0) {
			if (o + len >= size)
				break;
			memcpy(dst + o, s + i, len);
			o += len;
			i += len;
			continue;
		} else if (s[i] == '\\' || s[i] == '\n' || s[i] == '\t') {
			len = 2;
			esc[0] = '\\';
			esc[1] = s[i] == '\n' ? 'n' : s[i] == '\t' ? 't' : '\\';
		} else {
			len = 4;
			snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
		}
		if (o + len >= size)
			break;
		memcpy(dst + o, esc, len);
		o += len;
		i++;
	}
	dst[o] = '\0';
}

/* lbd_log: writes one line; never fails, preserves errno. */
void
lbd_log(enum lbd_log_level level, const char *func, const char *fmt, ...)
{
	char      line[2048], safe[4 * sizeof(line)], stamp[32];
	struct tm tm;
	va_list   ap;
	int       saved = errno, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	log_escape(safe, sizeof(safe), line, (size_t)n);
	if (log_file != NULL) {
		lbd_os_gmtime(time(NULL), &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(log_file, "%s <%d>%s: %s\n", stamp, (int)level, func,
		    safe);
		fflush(log_file);
	} else
		fprintf(stderr, "<%d>%s: %s\n", (int)level, func, safe);
	errno = saved;
}

/* lbd_log_open: see log.h.  The file opened to append, by the C
 * runtime (on Windows shared with readers and writers). */
int
lbd_log_open(const char *file, char *why, size_t size)
{
	FILE *f;

	if ((f = fopen(file, "a")) == NULL) {
		snprintf(why, size, "cannot open the log %s: %s", file,
		    strerror(errno));
		return -1;
	}
	if (log_file != NULL)
		fclose(log_file);
	log_file = f;
	return 0;
}
