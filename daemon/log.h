/*
 * log.h: the daemon's logging.  Lines go to stderr (the journal, under
 * systemd, which reads the "<N>" level prefixes), or to a file
 * (lbd_log_open: each line then stamped with its time), each with the
 * function that logged it.  Debug output is built in and off by
 * default; --debug or SIGUSR1 (toggle) switches it at run time.
 */
#ifndef LBD_LOG_H
#define LBD_LOG_H

#include <stddef.h>

enum lbd_log_level {
	LBD_LOG_ERR = 3,
	LBD_LOG_WARNING = 4,
	LBD_LOG_NOTICE = 5,
	LBD_LOG_INFO = 6,
	LBD_LOG_DEBUG = 7
};

extern int lbd_log_debug;      /* 1: debug lines are written */

void lbd_log(enum lbd_log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * lbd_log_open: from now on, lines are appended to file (made when
 * missing), each after its time in UTC ("2026-01-31T23:59:59Z "), and
 * written out at once, rather than to stderr.  0, or -1 with why (size
 * bytes) naming file and the reason.
 */
int  lbd_log_open(const char *file, char *why, size_t size);

#define log_err(...)     lbd_log(LBD_LOG_ERR, __func__, __VA_ARGS__)
#define log_warn(...)    lbd_log(LBD_LOG_WARNING, __func__, __VA_ARGS__)
#define log_notice(...)  lbd_log(LBD_LOG_NOTICE, __func__, __VA_ARGS__)
#define log_info(...)    lbd_log(LBD_LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...)   do {                                             \
		if (lbd_log_debug)                                        \
			lbd_log(LBD_LOG_DEBUG, __func__, __VA_ARGS__);    \
	} while (0)

#endif
