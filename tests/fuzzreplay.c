/*
 * fuzzreplay.c: a main for a libFuzzer target built with the normal
 * compiler, so that `make check` replays every regression case and seed
 * without libFuzzer: each FILE, and each regular file in each DIRECTORY
 * (in name order), is read whole and handed to LLVMFuzzerTestOneInput
 * once.  A target that finds an input wrong aborts, which fails the run;
 * the input's name is printed before it is replayed, so the log names it.
 *
 *   replay_TARGET FILE|DIRECTORY...
 *
 * Exit status: 0 when every input was replayed, 1 when one could not be
 * read, 2 on bad usage.  Prints how many inputs it replayed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not seeds (fuzz/run uses -max_len=9000). */
#define REPLAY_MAX (1024 * 1024)

static unsigned long replayed;

/*
 * Reads the regular file path whole and hands it to the target.  Returns 0,
 * or -1 after saying why it could not be read.
 */
static int
replay_file(const char *path)
{
	FILE    *f;
	uint8_t *buf = NULL;
	size_t   len;
	int      rv = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "fuzzreplay: %s: %s\n", path, strerror(errno));
		goto out;
	}
	/* One byte more than the bound tells a too large file. */
	if ((buf = malloc(REPLAY_MAX + 1)) == NULL) {
		fprintf(stderr, "fuzzreplay: %s: out of memory\n", path);
		goto out;
	}
	len = fread(buf, 1, REPLAY_MAX + 1, f);
	if (ferror(f) || len > REPLAY_MAX) {
		fprintf(stderr, "fuzzreplay: %s: %s\n", path, ferror(f) ?
		    "cannot be read" : "larger than 1 MiB");
		goto out;
	}
	printf("replay %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	replayed++;
	rv = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rv;
}

/* Replays path: a file, or each regular file of a directory in name
 * order.  Returns 0, or -1 when something could not be read. */
static int
replay_path(const char *path)
{
	struct dirent **names = NULL;
	struct stat     st;
	char            file[4096];
	int             n = 0, i, rv = -1;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzzreplay: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		rv = replay_file(path);
		goto out;
	}
	if ((n = scandir(path, &names, NULL, alphasort)) < 0) {
		fprintf(stderr, "fuzzreplay: %s: %s\n", path, strerror(errno));
		n = 0;
		goto out;
	}
	rv = 0;
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path,
		    names[i]->d_name) >= sizeof(file)) {
			fprintf(stderr, "fuzzreplay: %s/%s: name too long\n",
			    path, names[i]->d_name);
			rv = -1;
			continue;
		}
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(file) != 0)
			rv = -1;
	}
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rv;
}

int
main(int argc, char **argv)
{
	int i, status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i]) != 0)
			status = 1;
	printf("replayed %lu inputs\n", replayed);
	return status;
}
