/*
 * child.h: running COMMAND for `lockbroker lock` while the lock is held.
 * One implementation per OS, chosen by the build:
 *   child_unix.c   fork and exec; the stop signals (SIGINT, SIGTERM,
 *                  SIGHUP) blocked while the lock is held and passed on
 *                  to COMMAND
 *   child_win32.c  CreateProcessW; console control events (Ctrl-C,
 *                  Ctrl-Break, the console closing) left to COMMAND, which
 *                  shares the console, while lockbroker waits for it
 * The order, in run.c: the lock taken, child_guard_begin (from then on
 * what would stop lockbroker goes to COMMAND instead, so that the lock is
 * released after COMMAND whatever happens), child_run, the release,
 * child_guard_end.  What goes wrong is said on stderr (say.h's complain).
 */
#ifndef LB_CHILD_H
#define LB_CHILD_H

/* What lockbroker changed about itself while COMMAND runs, to be undone. */
struct child_guard;

/* child_guard_begin: stop signals or events go to COMMAND from now on.
 * The guard, or NULL after saying why (then nothing changed). */
struct child_guard *child_guard_begin(void);

/*
 * child_run: runs COMMAND and waits for it: shell_cmd through the system's
 * shell when not NULL (/bin/sh -c; on Windows %COMSPEC% /d /s /c, cmd.exe
 * when COMSPEC is not set), else argv (argv[0] looked up in PATH, as
 * execvp or CreateProcess finds it; on Windows the arguments are quoted so
 * that COMMAND's C runtime reads back exactly argv).  Strings are UTF-8 on
 * Windows.  Returns COMMAND's exit status (on Windows its whole exit
 * code); 128+N when signal N killed it; EXIT_NOT_FOUND (127) when it
 * cannot be found, EXIT_CANNOT_EXEC (126) when it cannot be run, after
 * saying why, naming it; EX_OSERR when waiting for it fails.
 */
int  child_run(const struct child_guard *g, const char *shell_cmd,
         char *const argv[]);

/* child_guard_end: undoes g and frees it (NULL: nothing). */
void child_guard_end(struct child_guard *g);

#endif /* LB_CHILD_H */
