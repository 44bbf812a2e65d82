/*
 * check_cli_win.c: the lockbroker command (tools/lockbroker.exe) on
 * Windows, run under wine: this suite runs it with CreateProcessW, as a
 * user would, and reads its exit status and what it says (standard output
 * and error, into a file).
 *
 * In-process (--local: no daemon on Windows yet), for each of the link
 * and mkdir methods: `lock PATH -- COMMAND` passes COMMAND's exit status
 * on (0, 3, and 300: Windows' exit codes go above 255); `lock -c "exit
 * 4"` runs through cmd.exe; while another process holds the lock, `lock
 * -n` exits 1 (with -E 42, 42) and `lock -w 0.3` gives up after at least
 * 0.3 s; `status` of a held lock (0, the holder's pid, since when in
 * local time with its offset from UTC) and of a free one (1); `break
 * --stale` refused while the holder lives, and `break --stale` and
 * `break` of a dead holder's lock (ended by TerminateProcess); a missing
 * COMMAND gives 127 and bad usage 64.  Lock paths are given with their
 * drive letter (the test's directory's), and one holds characters
 * outside every ANSI code page: the command reads its wide command line,
 * so that its lock file has that very name and COMMAND gets its
 * arguments exactly.
 *
 * COMMAND and the other holder's COMMAND are this program again, in one
 * of its child modes (main): exit with a status; make a file then wait
 * for another to appear; write an argument, as its C runtime reads it, to
 * a file.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <shellapi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "testlib.h"

/* The methods (--method) the command has on Windows. */
static const char *const methods[] = { "link", "mkdir" };

/* This program's path, and the command's (tools/lockbroker.exe beside
 * this program's directory, tests/), as UTF-8. */
static char self[MAX_PATH * 3];
static char tool[MAX_PATH * 3];

/* Finds this program's and the command's paths; aborts the run when it
 * cannot. */
static void
paths_find(void)
{
	wchar_t w[MAX_PATH];
	char   *slash;
	DWORD   n = GetModuleFileNameW(NULL, w, MAX_PATH);

	if (n == 0 || n >= MAX_PATH || WideCharToMultiByte(CP_UTF8, 0, w, -1,
	    self, sizeof(self), NULL, NULL) <= 0)
		abort();
	snprintf(tool, sizeof(tool), "%s", self);
	if ((slash = strrchr(tool, '\\')) == NULL)
		abort();
	*slash = '\0';
	if ((slash = strrchr(tool, '\\')) == NULL)
		abort();
	snprintf(slash, sizeof(tool) - (size_t)(slash - tool),
	    "\\tools\\lockbroker.exe");
}

/* Starts the command with args (tl_run_start). */
static void
start(struct tl_run *r, const char *dir, const char *args)
{
	tl_run_start(r, dir, tool, args);
}

/* Runs the command with args in dir to its end: its exit code, its output
 * into out (size bytes); asserts. */
static DWORD
run(const char *dir, const char *args, char *out, size_t size)
{
	struct tl_run r;

	start(&r, dir, args);
	return tl_run_finish(&r, out, size);
}

/* Whether the file or directory path (UTF-8) exists. */
static int
exists(const char *path)
{
	wchar_t w[MAX_PATH];

	tl_wide(path, w, MAX_PATH);
	return GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
}

/* Makes the empty file path (UTF-8): 0, or -1.  No assertion: COMMAND
 * (main) makes files too. */
static int
make_file(const char *path)
{
	wchar_t w[MAX_PATH];
	HANDLE  h;

	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w,
	    MAX_PATH) <= 0 || (h = CreateFileW(w, GENERIC_WRITE, 0, NULL,
	    CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL)) ==
	    INVALID_HANDLE_VALUE)
		return -1;
	CloseHandle(h);
	return 0;
}

/* Makes the empty file path (UTF-8); asserts. */
static void
touch(const char *path)
{
	ck_assert_msg(make_file(path) == 0, "cannot make %s", path);
}

/* Whether path (UTF-8) exists, without assertions (for COMMAND). */
static int
found(const char *path)
{
	wchar_t w[MAX_PATH];

	return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w,
	    MAX_PATH) > 0 && GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
}

/* Another holder of path: the command holding the lock with --method
 * method while its COMMAND (this program) waits for the file go. */
struct holder {
	struct tl_run run;
	char          ready[MAX_PATH * 3], go[MAX_PATH * 3];
};

/* Starts h: the command locks path and runs this program, which makes
 * READY and waits for GO; returns once READY is there; asserts. */
static void
holder_start(struct holder *h, const char *dir, const char *method,
    const char *path)
{
	char   args[4 * MAX_PATH * 3];
	double until;

	snprintf(h->ready, sizeof(h->ready), "%s\\ready", dir);
	snprintf(h->go, sizeof(h->go), "%s\\go", dir);
	snprintf(args, sizeof(args), "lock --local --method %s \"%s\" -- "
	    "\"%s\" --mark \"%s\" \"%s\"", method, path, self, h->ready,
	    h->go);
	start(&h->run, dir, args);
	for (until = tl_now() + 30; !exists(h->ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert_msg(exists(h->ready), "the holder did not lock %s", path);
}

/* Ends h's COMMAND (the file GO) and waits for h: its exit code. */
static DWORD
holder_finish(struct holder *h)
{
	char out[4096];

	touch(h->go);
	return tl_run_finish(&h->run, out, sizeof(out));
}

/* Ends the command of h at once (TerminateProcess: its lock left behind,
 * its holder dead), then its COMMAND; asserts. */
static void
holder_kill(struct holder *h)
{
	char out[4096];

	ck_assert(TerminateProcess(h->run.process, 9));
	ck_assert(WaitForSingleObject(h->run.process, 30000) ==
	    WAIT_OBJECT_0);
	touch(h->go);
	(void)tl_run_finish(&h->run, out, sizeof(out));
}

/* `lock PATH -- COMMAND` exits with COMMAND's status, 0, 3 and 300 (above
 * a byte), and leaves the lock free. */
START_TEST(lock_status_passed)
{
	static const int codes[] = { 0, 3, 300 };
	const char      *m = methods[_i];
	struct tl_place  p;
	char             args[4096], out[4096];
	size_t           k;

	tl_place_make(&p, "lock");
	for (k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
		snprintf(args, sizeof(args), "lock --local --method %s \"%s\" "
		    "-- \"%s\" --exit %d", m, p.path, self, codes[k]);
		ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)),
		    (DWORD)codes[k]);
	}
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	tl_place_remove(p.dir);
}
END_TEST

/* `lock -c "exit 4"` runs the string through cmd.exe: 4. */
START_TEST(lock_shell)
{
	struct tl_place p;
	char            args[4096], out[4096];

	tl_place_make(&p, "lock");
	snprintf(args, sizeof(args), "lock --local --method %s \"%s\" -c "
	    "\"exit 4\"", methods[_i], p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 4);
	tl_place_remove(p.dir);
}
END_TEST

/* While another process holds the lock: -n exits 1, -n -E 42 exits 42,
 * -w 0.3 exits 1 after at least 0.3 s, without running COMMAND; status
 * says held (0) by the holder's pid since a time with its offset; break --stale is refused (1); once
 * the holder is done, status says free (1). */
START_TEST(lock_held_by_another)
{
	const char     *m = methods[_i];
	struct tl_place p;
	struct holder   h;
	char            args[4096], out[4096], pid[32], ran[MAX_PATH * 3];
	char           *since, sign;
	int             y, mo, d, hh, mm, ss, ms, oh, om;
	double          t0;

	tl_place_make(&p, "lock");
	snprintf(ran, sizeof(ran), "%s\\ran", p.dir);
	holder_start(&h, p.dir, m, p.path);
	snprintf(args, sizeof(args), "lock --local --method %s -n \"%s\" -- "
	    "\"%s\" --mark \"%s\" \"%s\"", m, p.path, self, ran, h.go);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	snprintf(args, sizeof(args), "lock --local --method %s -n -E 42 "
	    "\"%s\" -- \"%s\" --exit 0", m, p.path, self);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 42);
	snprintf(args, sizeof(args), "lock --local --method %s -w 0.3 \"%s\" "
	    "-- \"%s\" --mark \"%s\" \"%s\"", m, p.path, self, ran, h.go);
	t0 = tl_now();
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	ck_assert_msg(tl_now() - t0 >= 0.3, "gave up after %.3f s",
	    tl_now() - t0);
	ck_assert_msg(!exists(ran), "COMMAND ran without the lock");
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
	snprintf(pid, sizeof(pid), "%lu", (unsigned long)h.run.pid);
	ck_assert_msg(strstr(out, pid) != NULL, "no pid %s in: %s", pid,
	    out);
	/* Since when, in local time with its offset from UTC. */
	ck_assert_msg((since = strstr(out, "since:")) != NULL &&
	    sscanf(since, "since: %4d-%2d-%2dT%2d:%2d:%2d.%3d%c%2d:%2d", &y,
	    &mo, &d, &hh, &mm, &ss, &ms, &sign, &oh, &om) == 10 &&
	    y >= 2024 && (sign == '+' || sign == '-') && oh <= 14 &&
	    om < 60, "no time of taking with its offset in: %s", out);
	snprintf(args, sizeof(args), "break --local --method %s --stale "
	    "\"%s\"", m, p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	ck_assert_uint_eq(holder_finish(&h), 0);
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	tl_place_remove(p.dir);
}
END_TEST

/* A holder ended by TerminateProcess leaves its lock held by a dead
 * holder: `break --stale` (first loop) or `break` (second) removes it,
 * and then the lock is free and can be taken. */
START_TEST(break_dead_holder)
{
	const char     *m = methods[_i % 2];
	const char     *stale = _i < 2 ? " --stale" : "";
	struct tl_place p;
	struct holder   h;
	char            args[4096], out[4096];

	tl_place_make(&p, "lock");
	holder_start(&h, p.dir, m, p.path);
	holder_kill(&h);
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "dead") != NULL, "not dead: %s", out);
	snprintf(args, sizeof(args), "break --local --method %s%s \"%s\"", m,
	    stale, p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	snprintf(args, sizeof(args), "lock --local --method %s -n \"%s\" -- "
	    "\"%s\" --exit 5", m, p.path, self);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 5);
	tl_place_remove(p.dir);
}
END_TEST

/* A COMMAND that does not exist: 127, naming it. */
START_TEST(command_missing)
{
	struct tl_place p;
	char            args[4096], out[4096];

	tl_place_make(&p, "lock");
	snprintf(args, sizeof(args), "lock --local --method %s \"%s\" -- "
	    "no-such-command-lb", methods[_i], p.path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 127);
	ck_assert_msg(strstr(out, "no-such-command-lb") != NULL,
	    "not named: %s", out);
	tl_place_remove(p.dir);
}
END_TEST

/* Bad usage: 64, saying why. */
START_TEST(bad_usage)
{
	static const char *const bad[] = {
		"", "frob", "lock", "lock --local PATH", "lock -w -1 P -- x",
		"status", "--local lock P -- x"
	};
	struct tl_place p;
	char            out[4096];
	size_t          k;

	tl_place_make(&p, "lock");
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		ck_assert_msg(run(p.dir, bad[k], out, sizeof(out)) == 64,
		    "'%s' did not exit 64: %s", bad[k], out);
		ck_assert_msg(strstr(out, "lockbroker") != NULL,
		    "'%s' said nothing", bad[k]);
	}
	tl_place_remove(p.dir);
}
END_TEST

/* A lock path with characters outside every ANSI code page (and the
 * drive letter): the lock file has that very name while it is held, its
 * status is read through it, and COMMAND gets such an argument exactly. */
START_TEST(non_ascii)
{
	/* "verrou-é-日本-Ω" */
	static const char name[] = "verrou-\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac-"
	    "\xce\xa9";
	const char     *m = methods[_i];
	struct tl_place p;
	struct holder   h;
	char            path[MAX_PATH * 3], lockfile[MAX_PATH * 3];
	char            args[4096], out[4096], file[MAX_PATH * 3];

	tl_place_make(&p, "lock");
	ck_assert_msg(p.path[1] == ':', "no drive letter in %s", p.path);
	snprintf(path, sizeof(path), "%s\\%s", p.dir, name);
	snprintf(lockfile, sizeof(lockfile), "%s.lock", path);
	holder_start(&h, p.dir, m, path);
	ck_assert_msg(exists(lockfile), "no %s", lockfile);
	snprintf(args, sizeof(args), "status --local --method %s \"%s\"", m,
	    path);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
	ck_assert_uint_eq(holder_finish(&h), 0);
	ck_assert_msg(!exists(lockfile), "%s left", lockfile);
	snprintf(file, sizeof(file), "%s\\arg", p.dir);
	snprintf(args, sizeof(args), "lock --local --method %s \"%s\" -- "
	    "\"%s\" --write \"%s\" \"%s\"", m, path, self, file, name);
	ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
	ck_assert_uint_eq(tl_read_file(file, out, sizeof(out)), strlen(name));
	ck_assert(memcmp(out, name, strlen(name)) == 0);
	tl_place_remove(p.dir);
}
END_TEST

/* acquire and release keep the lock for another process: --pid PID (a
 * live process), and without it the parent (this program): status says
 * held by that pid until release, then free. */
START_TEST(acquire_release_kept)
{
	const char     *m = methods[_i];
	struct tl_place p;
	struct tl_run   other;
	char            args[4096], out[4096], pid[48], ready[MAX_PATH * 3];
	char            go[MAX_PATH * 3];
	double          until;
	int             k;

	tl_place_make(&p, "lock");
	snprintf(ready, sizeof(ready), "%s\\ready", p.dir);
	snprintf(go, sizeof(go), "%s\\go", p.dir);
	snprintf(args, sizeof(args), "--mark \"%s\" \"%s\"", ready, go);
	tl_run_start(&other, p.dir, self, args);
	for (until = tl_now() + 30; !exists(ready) && tl_now() < until;)
		tl_sleep(0.02);
	ck_assert(exists(ready));
	for (k = 0; k < 2; k++) {
		if (k == 0)
			snprintf(pid, sizeof(pid), " --pid %lu",
			    (unsigned long)other.pid);
		else
			pid[0] = '\0';
		snprintf(args, sizeof(args), "acquire --local --method %s%s "
		    "\"%s\"", m, pid, p.path);
		ck_assert_msg(run(p.dir, args, out, sizeof(out)) == 0,
		    "%s: %s", args, out);
		snprintf(args, sizeof(args), "status --local --method %s "
		    "\"%s\"", m, p.path);
		ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 0);
		snprintf(pid, sizeof(pid), "pid:       %lu\r\n", k == 0 ?
		    (unsigned long)other.pid :
		    (unsigned long)GetCurrentProcessId());
		ck_assert_msg(strstr(out, pid) != NULL, "no %s in: %s", pid,
		    out);
		if (k == 0)
			snprintf(pid, sizeof(pid), " --pid %lu",
			    (unsigned long)other.pid);
		else
			pid[0] = '\0';
		snprintf(args, sizeof(args), "release --local --method %s%s "
		    "\"%s\"", m, pid, p.path);
		ck_assert_msg(run(p.dir, args, out, sizeof(out)) == 0,
		    "%s: %s", args, out);
		snprintf(args, sizeof(args), "status --local --method %s "
		    "\"%s\"", m, p.path);
		ck_assert_uint_eq(run(p.dir, args, out, sizeof(out)), 1);
	}
	touch(go);
	ck_assert_uint_eq(tl_run_finish(&other, out, sizeof(out)), 0);
	tl_place_remove(p.dir);
}
END_TEST

/* The suite. */
static Suite *
cli_win_suite(void)
{
	Suite *s = suite_create("cli_win");
	TCase *tc = tcase_create("local");
	int    n = sizeof(methods) / sizeof(methods[0]);

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, lock_status_passed, 0, n);
	tcase_add_loop_test(tc, lock_shell, 0, n);
	tcase_add_loop_test(tc, lock_held_by_another, 0, n);
	tcase_add_loop_test(tc, break_dead_holder, 0, 2 * n);
	tcase_add_loop_test(tc, command_missing, 0, n);
	tcase_add_test(tc, bad_usage);
	tcase_add_loop_test(tc, non_ascii, 0, n);
	tcase_add_loop_test(tc, acquire_release_kept, 0, n);
	suite_add_tcase(s, tc);
	return s;
}

/* The argument i of the wide command line as UTF-8 into out; -1 when there
 * is none. */
static int
wide_arg(int i, char *out, int size)
{
	wchar_t **w;
	int       n, r = -1;

	if ((w = CommandLineToArgvW(GetCommandLineW(), &n)) == NULL)
		return -1;
	if (i < n && WideCharToMultiByte(CP_UTF8, 0, w[i], -1, out, size,
	    NULL, NULL) > 0)
		r = 0;
	LocalFree(w);
	return r;
}

/*
 * main: runs the suite (tl_main), or, as COMMAND, what its arguments say:
 *   --exit N          exits with N
 *   --mark FILE GO    makes FILE, then waits (a minute at most) for GO
 *   --write FILE ARG  writes ARG as UTF-8 to FILE
 */
int
main(int argc, char **argv)
{
	char  file[MAX_PATH * 3], arg[MAX_PATH * 3];
	FILE *f;
	int   k;

	if (argc == 3 && strcmp(argv[1], "--exit") == 0)
		return atoi(argv[2]);
	if (argc == 4 && strcmp(argv[1], "--mark") == 0) {
		if (wide_arg(2, file, sizeof(file)) == -1 ||
		    wide_arg(3, arg, sizeof(arg)) == -1)
			return 2;
		if (make_file(file) == -1)
			return 2;
		for (k = 0; k < 6000 && !found(arg); k++)
			Sleep(10);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "--write") == 0) {
		if (wide_arg(2, file, sizeof(file)) == -1 ||
		    wide_arg(3, arg, sizeof(arg)) == -1 ||
		    (f = fopen(file, "wb")) == NULL)
			return 2;
		fputs(arg, f);
		return fclose(f) == 0 ? 0 : 2;
	}
	paths_find();
	if (tl_tmpdir_here() != 0)
		return 99;
	return tl_main("check_cli_win", cli_win_suite(), CK_ENV);
}
