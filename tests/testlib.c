/*
 * testlib.c: the harness the C check suites share (testlib.h): its
 * portable part, built for every system (running a suite, joining paths,
 * reading a file, the methods).  What needs the operating system is in
 * testlib_unix.c, and for the suites built for Windows so far in
 * testlib_win32.c (testlib_os.h says what each provides).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "testlib_os.h"

char tl_top[PATH_MAX];

const char *tl_name = "check";

/* ------------------------------------------------------------------ */
/* Running a suite.                                                     */

int
tl_main(const char *name, Suite *s, enum print_output mode)
{
	return tl_main_around(name, s, mode, NULL, NULL, NULL);
}

int
tl_main_around(const char *name, Suite *s, enum print_output mode,
    tl_hook_fn *before, tl_hook_fn *after, void *arg)
{
	SRunner *sr;
	char     made[PATH_MAX];
	int      failed;

	tl_name = name;
	tl_os_run_begin();
	tl_dir_make(made, sizeof(made));
	if (tl_os_top_settle(made) == -1) {
		fprintf(stderr, "%s: %s: %s\n", name, made, strerror(errno));
		tl_dir_remove(made);
		srunner_free(srunner_create(s));
		return 99;
	}
	if (before != NULL && before(arg) == -1) {
		fprintf(stderr, "%s: cannot set up the run\n", name);
		tl_dir_remove(tl_top);
		srunner_free(srunner_create(s));
		return 99;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, mode);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (after != NULL && after(arg) == -1)
		failed++;
	if (tl_dir_remove(tl_top) == -1) {
		fprintf(stderr, "%s: cannot remove %s\n", name, tl_top);
		failed++;
	}
	return failed == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* Files.                                                               */

void
tl_path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	ck_assert_msg(n >= 0 && (size_t)n < size, "%s/%s is too long", dir,
	    name);
}

size_t
tl_read_file(const char *file, char *buf, size_t size)
{
	FILE  *f = fopen(file, "rb");
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", file);
	n = fread(buf, 1, size, f);
	ck_assert_msg(n < size && !ferror(f), "cannot read %s", file);
	fclose(f);
	return n;
}

unsigned
tl_file_count(const char *file, const char *what)
{
	size_t      size = (size_t)1 << 24;
	char       *text = malloc(size);
	const char *c = text;
	unsigned    n = 0;

	ck_assert_ptr_nonnull(text);
	text[tl_read_file(file, text, size - 1)] = '\0';
	while ((c = strstr(c, what)) != NULL) {
		n++;
		c++;
	}
	free(text);
	return n;
}

/* ------------------------------------------------------------------ */
/* Methods.                                                             */

const unsigned tl_all_methods[TL_NMETHODS] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE, LB_SQLITE
};

const unsigned tl_file_methods[TL_NFILE] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_PIDFILE
};

const unsigned tl_named_methods[TL_NNAMED] = {
	LB_LINK, LB_SYMLINK, LB_MKDIR, LB_SQLITE
};

const char *
tl_method_name(unsigned flags)
{
	static const char *const names[] = {
		[LB_LINK] = "link",
		[LB_SYMLINK] = "symlink",
		[LB_MKDIR] = "mkdir",
		[LB_PIDFILE] = "pidfile",
		[LB_SQLITE] = "sqlite",
	};
	unsigned m = flags & LB_METHOD_MASK;

	return m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

int
tl_leftovers(unsigned flags)
{
	return (flags & LB_METHOD_MASK) == LB_SQLITE ? 1 : 0;
}
