/*
 * check_child.c: running COMMAND for `lockbroker lock` (tools/child.h),
 * on the host's system: child_unix.c on Unix, child_win32.c on Windows
 * (under wine).  COMMAND is this program again, in one of its child
 * modes (main): it exits with a given status, or writes the arguments
 * it got, as its C runtime read them, to a file, or prints a text.
 */
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <shellapi.h>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "say.h"
#include "testlib.h"

/* This program's path, for COMMAND. */
static char self[PATH_MAX];

/* ------------------------------------------------------------------ */
/* What differs by system: this program's path, the arguments as the    */
/* runtime reads them, standard output sent to a file for a while.      */

#ifdef _WIN32
static void
self_find(const char *argv0)
{
	DWORD n = GetModuleFileNameA(NULL, self, sizeof(self));

	(void)argv0;
	if (n == 0 || n >= sizeof(self))
		abort();
}

/* The arguments after the first skip ones, as UTF-8 (the wide command
 * line as CommandLineToArgvW, the runtime's rules, reads it), written to
 * file as LENGTH:BYTES each. */
static int
args_write(int argc, char **argv, int skip, const char *file)
{
	wchar_t **w;
	FILE     *f;
	char      buf[4096];
	int       n, i, len;

	(void)argc;
	(void)argv;
	if ((w = CommandLineToArgvW(GetCommandLineW(), &n)) == NULL ||
	    (f = fopen(file, "wb")) == NULL)
		return 2;
	for (i = skip; i < n; i++) {
		len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, buf,
		    sizeof(buf), NULL, NULL);
		if (len <= 0)
			return 2;
		fprintf(f, "%d:%s", len - 1, buf);
	}
	LocalFree(w);
	return fclose(f) == 0 ? 0 : 2;
}

#else
static void
self_find(const char *argv0)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		snprintf(self, sizeof(self), "%s", argv0);
		return;
	}
	self[n] = '\0';
}

static int
args_write(int argc, char **argv, int skip, const char *file)
{
	FILE *f;
	int   i;

	if ((f = fopen(file, "wb")) == NULL)
		return 2;
	for (i = skip; i < argc; i++)
		fprintf(f, "%zu:%s", strlen(argv[i]), argv[i]);
	return fclose(f) == 0 ? 0 : 2;
}

#endif

/* ------------------------------------------------------------------ */

#ifndef O_BINARY
#define O_BINARY 0
#endif

/* Descriptor fd (1 or 2) to file from now on, for this process and the
 * commands it starts (the C runtime's dup2 sets the system's standard
 * handle too on Windows); back with file NULL. */
static int saved_fd[3] = { -1, -1, -1 };

static void
stream_to(int fd, const char *file)
{
	int f;

	fflush(NULL);
	if (file == NULL) {
		ck_assert(dup2(saved_fd[fd], fd) != -1);
		close(saved_fd[fd]);
		saved_fd[fd] = -1;
		return;
	}
	ck_assert((saved_fd[fd] = dup(fd)) != -1);
	ck_assert((f = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_BINARY,
	    0644)) != -1);
	ck_assert(dup2(f, fd) != -1);   /* Windows: 0 */
	close(f);
}

/* Runs argv (NULL-terminated) with a guard; its status. */
static int
run_argv(char **argv)
{
	struct child_guard *g = child_guard_begin();
	int                 r;

	ck_assert(g != NULL);
	r = child_run(g, NULL, argv);
	child_guard_end(g);
	return r;
}

/* Runs shell_cmd with a guard; its status. */
static int
run_shell(const char *cmd)
{
	struct child_guard *g = child_guard_begin();
	int                 r;

	ck_assert(g != NULL);
	r = child_run(g, cmd, NULL);
	child_guard_end(g);
	return r;
}

/* The expected contents of an arguments file for the n args. */
static void
args_expected(char *out, size_t size, const char *const *args, size_t n)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, size - len, "%zu:%s",
		    strlen(args[i]), args[i]);
		ck_assert(len < size);
	}
}

START_TEST(test_child_exit_status_passed_through)
{
	static const char *codes[] = { "0", "1", "7", "42", "255" };
	char              *argv[4];
	size_t             i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		argv[0] = self;
		argv[1] = (char *)"child-exit";
		argv[2] = (char *)codes[i];
		argv[3] = NULL;
		ck_assert_int_eq(run_argv(argv), atoi(codes[i]));
	}
}
END_TEST

/* Arguments that a careless command line would change: blanks, empty,
 * quotes, backslashes before a quote or at the end, tabs, non-ASCII. */
START_TEST(test_child_arguments_arrive_exactly)
{
	static const char *args[] = {
		"plain", "two words", "", "quote\"inside", "\"", "trailing\\",
		"trailing two\\\\", "back\\\\slash\\\"quote", "tab\there",
		"a\\b c\\", "\\\\server\\share\\", "caf\xc3\xa9 \xe2\x82\xac",
		"--", "-c", "%PATH%", "$HOME", "'single'", "x y\"z",
	};
	const size_t n = sizeof(args) / sizeof(args[0]);
	struct tl_place p;
	char           *argv[64], want[4096], got[4096];
	size_t          i, len;

	tl_place_make(&p, "args");
	argv[0] = self;
	argv[1] = (char *)"child-args";
	argv[2] = p.path;
	for (i = 0; i < n; i++)
		argv[3 + i] = (char *)args[i];
	argv[3 + n] = NULL;
	ck_assert_int_eq(run_argv(argv), 0);
	args_expected(want, sizeof(want), args, n);
	len = tl_read_file(p.path, got, sizeof(got) - 1);
	got[len] = '\0';
	ck_assert_str_eq(got, want);
	tl_place_remove(p.dir);
}
END_TEST

/* Not found: 127, and stderr names the command and the reason. */
START_TEST(test_child_not_found_is_127)
{
	struct tl_place p;
	char           *argv[2];
	char            missing[PATH_MAX], err[PATH_MAX], said[4096];
	size_t          len;
	int             r;

	tl_place_make(&p, "x");
	tl_path_join(err, sizeof(err), p.dir, "stderr");
	argv[0] = (char *)"lockbroker-no-such-command";
	argv[1] = NULL;
	stream_to(2, err);
	r = run_argv(argv);
	stream_to(2, NULL);
	ck_assert_int_eq(r, EXIT_NOT_FOUND);
	len = tl_read_file(err, said, sizeof(said) - 1);
	said[len] = '\0';
	ck_assert_msg(strstr(said, "lockbroker: cannot run "
	    "lockbroker-no-such-command: ") != NULL && strchr(said, '%') ==
	    NULL, "stderr: %s", said);
	tl_path_join(missing, sizeof(missing), p.dir, "missing.exe");
	argv[0] = missing;
	ck_assert_int_eq(run_argv(argv), EXIT_NOT_FOUND);
	tl_place_remove(p.dir);
}
END_TEST

/* A file that is there but is no program (and, on Unix, not executable):
 * 126. */
START_TEST(test_child_not_runnable_is_126)
{
	struct tl_place p;
	char           *argv[2], err[PATH_MAX], said[4096], want[PATH_MAX + 64];
	size_t          len;
	int             r;

	tl_place_make(&p, "bad.exe");
	tl_path_join(err, sizeof(err), p.dir, "stderr");
	tl_write_text(p.path, "this is not a program\n");
	argv[0] = p.path;
	argv[1] = NULL;
	stream_to(2, err);
	r = run_argv(argv);
	stream_to(2, NULL);
	ck_assert_int_eq(r, EXIT_CANNOT_EXEC);
	len = tl_read_file(err, said, sizeof(said) - 1);
	said[len] = '\0';
	snprintf(want, sizeof(want), "lockbroker: cannot run %s: ", p.path);
	ck_assert_msg(strstr(said, want) != NULL && strchr(said, '%') ==
	    NULL, "stderr: %s", said);
	tl_place_remove(p.dir);
}
END_TEST

START_TEST(test_child_shell_command_status)
{
	ck_assert_int_eq(run_shell("exit 0"), 0);
	ck_assert_int_eq(run_shell("exit 5"), 5);
}
END_TEST

/* The shell gets the command string whole: quotes in it group words. */
START_TEST(test_child_shell_command_quotes)
{
	static const char *args[] = { "x y", "z" };
	struct tl_place    p;
	char               cmd[3 * PATH_MAX], want[256], got[256];
	size_t             len;

	tl_place_make(&p, "args");
	snprintf(cmd, sizeof(cmd), "\"%s\" child-args \"%s\" \"x y\" z",
	    self, p.path);
	ck_assert_int_eq(run_shell(cmd), 0);
	args_expected(want, sizeof(want), args, 2);
	len = tl_read_file(p.path, got, sizeof(got) - 1);
	got[len] = '\0';
	ck_assert_str_eq(got, want);
	tl_place_remove(p.dir);
}
END_TEST

/* COMMAND writes to lockbroker's standard output, wherever it goes. */
START_TEST(test_child_gets_standard_output)
{
	struct tl_place p;
	char           *argv[4], got[64];
	size_t          len;
	int             r;

	tl_place_make(&p, "out");
	argv[0] = self;
	argv[1] = (char *)"child-print";
	argv[2] = (char *)"printed by the command";
	argv[3] = NULL;
	stream_to(1, p.path);
	r = run_argv(argv);
	stream_to(1, NULL);
	ck_assert_int_eq(r, 0);
	len = tl_read_file(p.path, got, sizeof(got) - 1);
	got[len] = '\0';
	ck_assert_str_eq(got, "printed by the command");
	tl_place_remove(p.dir);
}
END_TEST

#ifdef _WIN32
/* An exit code beyond 255 passes through whole. */
START_TEST(test_child_exit_code_whole)
{
	char *argv[] = { self, (char *)"child-exit", (char *)"300", NULL };

	ck_assert_int_eq(run_argv(argv), 300);
}
END_TEST

/* A program whose path has blanks (quoted as the program's name, where
 * the runtime takes backslashes as they are). */
START_TEST(test_child_program_path_with_blanks)
{
	struct tl_place p;
	char            dir[PATH_MAX], prog[PATH_MAX];
	char           *argv[4];

	tl_place_make(&p, "x");
	tl_path_join(dir, sizeof(dir), p.dir, "with blanks");
	tl_mkdir(dir);
	tl_path_join(prog, sizeof(prog), dir, "child copy.exe");
	ck_assert(CopyFileA(self, prog, TRUE));
	argv[0] = prog;
	argv[1] = (char *)"child-exit";
	argv[2] = (char *)"9";
	argv[3] = NULL;
	ck_assert_int_eq(run_argv(argv), 9);
	tl_place_remove(p.dir);
}
END_TEST
#else
/* Killed by signal N: 128+N. */
START_TEST(test_child_killed_by_signal)
{
	ck_assert_int_eq(run_shell("kill -TERM $$"), EXIT_SIGNAL_BASE + 15);
}
END_TEST
#endif

static Suite *
child_suite(void)
{
	Suite *s = suite_create("child");
	TCase *tc = tcase_create("run");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_child_exit_status_passed_through);
	tcase_add_test(tc, test_child_arguments_arrive_exactly);
	tcase_add_test(tc, test_child_not_found_is_127);
	tcase_add_test(tc, test_child_not_runnable_is_126);
	tcase_add_test(tc, test_child_shell_command_status);
	tcase_add_test(tc, test_child_shell_command_quotes);
	tcase_add_test(tc, test_child_gets_standard_output);
#ifdef _WIN32
	tcase_add_test(tc, test_child_exit_code_whole);
	tcase_add_test(tc, test_child_program_path_with_blanks);
#else
	tcase_add_test(tc, test_child_killed_by_signal);
#endif
	suite_add_tcase(s, tc);
	return s;
}

/*
 * main: the child modes (child-exit N: exits N; child-args FILE ARG...:
 * writes the ARGs to FILE; child-print TEXT: prints TEXT), else runs the
 * suite (tl_main); exit 0 when every test passed.
 */
int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "child-exit") == 0)
		return atoi(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "child-args") == 0)
		return args_write(argc, argv, 3, argv[2]);
	if (argc >= 3 && strcmp(argv[1], "child-print") == 0)
		return fputs(argv[2], stdout) == EOF || fflush(stdout) != 0;
	self_find(argv[0]);
	return tl_main("check_child", child_suite(), CK_ENV);
}
