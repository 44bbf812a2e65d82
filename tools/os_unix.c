/*
 * os_unix.c: the lockbroker command's system calls on POSIX (os.h).
 */
#include "config.h"

#include <pwd.h>
#include <stdio.h>
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
