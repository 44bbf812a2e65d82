/*
 * fuzz_pidfile.c: libFuzzer target for the pidfile method as it meets a
 * pid file someone else wrote: each input becomes the content of a real
 * pid file in a private directory, which lockfs then reads the ways the
 * library and the daemon do (holder, is it ours, try to take it, break it
 * if its holder is dead).  Nothing may crash, and what is read agrees with
 * lockfs_pid_parse on the same text:
 *  - the holder named is the pid the text gives, or unknown when none;
 *  - the lock is ours, and taking it succeeds, only when the text names
 *    this process; taking it never changes the file;
 *  - a stale break removes the file only when the pid named is dead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs longer than this are cut: the readers look at the first line of
 * the first few dozen bytes only, and their buffers differ in size. */
#define PIDFILE_FUZZ_MAX 60

static char              dir[64];
static char              path[128];
static struct lockfs_lock lock;

/* Removes the private directory at exit. */
static void
remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

/* Once: the private directory and the lock on dir/pid. */
static void
setup(void)
{
	struct lockfs_err err;
	const char       *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/lbfuzz-pid.XXXXXX",
	    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(path, sizeof(path), "%s/pid", dir);
	atexit(remove_dir);
	if (lockfs_init(&lock, path, LB_PIDFILE, 0, &err) != 0) {
		fprintf(stderr, "lockfs_init: %s\n", err.msg);
		abort();
	}
}

/* Makes the pid file hold exactly len bytes of text. */
static void
write_pidfile(const uint8_t *text, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len) {
		perror(path);
		abort();
	}
	close(fd);
}

/* The pid file still holds exactly len bytes of text. */
static int
pidfile_is(const uint8_t *text, size_t len)
{
	char    buf[PIDFILE_FUZZ_MAX + 1];
	ssize_t n;
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)len && memcmp(buf, text, len) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lockfs_holder h;
	struct lockfs_err    err;
	struct stat          st;
	pid_t                named = 0;
	int                  ours, r;

	if (dir[0] == '\0')
		setup();
	if (size > PIDFILE_FUZZ_MAX)
		size = PIDFILE_FUZZ_MAX;
	if (lockfs_pid_parse((const char *)data, size, &named) != 0)
		named = 0;
	else if (named <= 0)
		abort();        /* a parsed pid is positive */
	ours = named == getpid();
	write_pidfile(data, size);

	/* Who holds it: the pid the text names, on this host, or unknown. */
	if (lockfs_holder(&lock, &h, &err) != 1 || h.pid != named ||
	    memchr(h.host, '\0', sizeof(h.host)) == NULL ||
	    memchr(h.unique, '\0', sizeof(h.unique)) == NULL)
		abort();
	lockfs_holder_clear(&h);
	if (lockfs_holder_of(&lock, &h, &err) != 1 || h.pid != named)
		abort();

	/* Ours only when it names this process. */
	if (lockfs_i_am_locking(&lock, &err) != ours ||
	    lockfs_is_locked(&lock, &err) != 1)
		abort();

	/* Taking it: done already when ours, else held by another; the file
	 * is left as it was either way. */
	r = lockfs_try_acquire(&lock, &err);
	if (r != (ours ? 0 : LB_EALREADY) || !pidfile_is(data, size))
		abort();

	/* A stale break removes it only when the pid named is gone. */
	r = lockfs_break_stale(&lock, &err);
	if (r < 0 || (r == 1 && (named == 0 || kill(named, 0) == 0 ||
	    errno != ESRCH)) || (r == 0 && !pidfile_is(data, size)) ||
	    (r == 1 && stat(path, &st) == 0))
		abort();
	unlink(path);
	return 0;
}
