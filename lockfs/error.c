/*
 * error.c: recording why a lockfs step failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lockfs.h"

/*
 * lockfs_fail: records code, sys_errno and a message built from fmt into
 * *err (which may be NULL), appending ": strerror(sys_errno)" when sys_errno
 * is not 0.  Returns code, so that callers can write
 * `return lockfs_fail(err, LB_EFAILED, errno, "...")`.  Preserves errno.
 */
int
lockfs_fail(struct lockfs_err *err, int code, int sys_errno,
    const char *fmt, ...)
{
	int     saved = errno;
	va_list ap;
	size_t  n;

	if (err != NULL) {
		err->code = code;
		err->sys_errno = sys_errno;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		n = strlen(err->msg);
		if (sys_errno != 0 && n < sizeof(err->msg))
			snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
			    strerror(sys_errno));
	}
	errno = saved;
	return code;
}
