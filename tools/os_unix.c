/*
 * os_unix.c: the lockbroker command's system calls on POSIX (os.h).
 */
#include "config.h"

#include <sys/stat.h>

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

/* os_args: see os.h. */
int
os_args(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* os_parent_pid: see os.h. */
pid_t
os_parent_pid(void)
{
	return getppid();
}

/* os_user_name: see os.h. */
const char *
os_user_name(lb_uid_t uid, char *buf, size_t size)
{
	struct passwd pw, *found = NULL;
	char          pwbuf[4096];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &found) != 0 ||
	    found == NULL)
		snprintf(buf, size, "?");
	else
		snprintf(buf, size, "%s", found->pw_name);
	return buf;
}

/* os_local_time: see os.h. */
int
os_local_time(time_t t, struct tm *tm, long *utcoff)
{
	if (localtime_r(&t, tm) == NULL)
		return -1;
	*utcoff = tm->tm_gmtoff;
	return 0;
}

/* 1 when path is a regular file this process may execute. */
static int
is_executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/* os_is_command: see os.h.  $PATH as execvp reads it: unset means
 * confstr's default path; an empty element is the current directory. */
int
os_is_command(const char *name)
{
	const char *dirs, *p, *end;
	char        buf[PATH_MAX], defpath[PATH_MAX];
	size_t      dlen, nlen = strlen(name);
	int         n;

	if (nlen == 0)
		return 0;
	if (strchr(name, '/') != NULL)
		return is_executable_file(name);
	if ((dirs = getenv("PATH")) == NULL) {
		if (confstr(_CS_PATH, defpath, sizeof(defpath)) == 0 ||
		    strlen(defpath) >= sizeof(defpath) - 1)
			snprintf(defpath, sizeof(defpath), "/bin:/usr/bin");
		dirs = defpath;
	}
	for (p = dirs;; p = end + 1) {
		if ((end = strchr(p, ':')) == NULL)
			end = p + strlen(p);
		dlen = (size_t)(end - p);
		if (dlen == 0)
			n = snprintf(buf, sizeof(buf), "%s", name);
		else
			n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)dlen,
			    p, name);
		if (n > 0 && (size_t)n < sizeof(buf) &&
		    is_executable_file(buf))
			return 1;
		if (*end == '\0')
			break;
	}
	return 0;
}
