/*
 * testlib_os.h: what the test harness's portable part (testlib.c) asks of
 * the operating system, and what its parts share.  testlib_unix.c
 * provides these on Unix, testlib_win32.c on Windows, each with the
 * functions of testlib.h that need the system (testlib.h says which
 * exist on Windows so far).
 */
#ifndef TESTLIB_OS_H
#define TESTLIB_OS_H

/* The program's name for messages, set by tl_main(). */
extern const char *tl_name;

/* tl_os_run_begin: prepares the process for a run: LOCKBROKER_SQLITE_DB
 * unset (the sqlite method's database goes beside each test's locks),
 * and on Unix SIGPIPE ignored. */
void tl_os_run_begin(void);

/* tl_os_top_settle: makes tl_top the absolute path of made (a directory
 * tl_dir_make made), without symlinks, reachable by a child that becomes
 * nobody where there is one, and points TMPDIR at it.  0, or -1 with
 * errno. */
int tl_os_top_settle(const char *made);

#endif
