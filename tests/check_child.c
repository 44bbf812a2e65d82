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
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

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

/* Standard output to file from now on (NULL: back); the old handle. */
static HANDLE saved_out;

static void
stdout_to(const char *file)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, TRUE };
	HANDLE              h;

	fflush(stdout);
	if (file == NULL) {
		h = GetStdHandle(STD_OUTPUT_HANDLE);
		ck_assert(SetStdHandle(STD_OUTPUT_HANDLE, saved_out));
		CloseHandle(h);
		return;
	}
	saved_out = GetStdHandle(STD_OUTPUT_HANDLE);
	/* Not inheritable, as a handle the caller opened may be: the
	 * command gets it all the same. */
	sa.bInheritHandle = FALSE;
	h = CreateFileA(file, GENERIC_WRITE, FILE_SHARE_READ, &sa,
	    CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
	ck_assert(h != INVALID_HANDLE_VALUE);
	ck_assert(SetStdHandle(STD_OUTPUT_HANDLE, h));
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

static int saved_out = -1;

static void
stdout_to(const char *file)
{
	int fd;

	fflush(stdout);
	if (file == NULL) {
		ck_assert(dup2(saved_out, 1) == 1);
		close(saved_out);
		return;
	}
	ck_assert((saved_out = dup(1)) != -1);
	ck_assert((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) != -1);
	ck_assert(dup2(fd, 1) == 1);
	close(fd);
}
#endif

/* ------------------------------------------------------------------ */

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

START_TEST(test_child_not_found_is_127)
{
	struct tl_place p;
	char           *argv[2];
	char            missing[PATH_MAX];

	tl_place_make(&p, "x");
	argv[0] = (char *)"lockbroker-no-such-command";
	argv[1] = NULL;
	ck_assert_int_eq(run_argv(argv), EXIT_NOT_FOUND);
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
	char           *argv[2];

	tl_place_make(&p, "bad.exe");
	tl_write_text(p.path, "this is not a program\n");
	argv[0] = p.path;
	argv[1] = NULL;
	ck_assert_int_eq(run_argv(argv), EXIT_CANNOT_EXEC);
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
	stdout_to(p.path);
	r = run_argv(argv);
	stdout_to(NULL);
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
