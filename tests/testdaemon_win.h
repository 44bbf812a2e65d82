/*
 * testdaemon_win.h: what the suites of lockbrokerd.exe under wine
 * (check_daemon_win, check_service_win) share: the daemon's program,
 * a job that ends the daemons with the test, files that mark a child's
 * steps, a handle on a lock through the daemon, and the copies of the
 * test program that hold and wait for a lock:
 *
 *   --hold PATH READY      takes the lock on PATH through the daemon,
 *                          makes READY and waits to be ended;
 *   --wait PATH BUSY GOT   finds the lock taken (makes BUSY), waits for
 *                          it, makes GOT and waits to be ended.
 *
 * Nothing here asserts but td_broker_lock and td_daemon_spawn: the
 * children run outside any test (check's asserts report to a runner they
 * do not have).
 */
#ifndef TESTDAEMON_WIN_H
#define TESTDAEMON_WIN_H

#include <windows.h>

#include "lockbroker.h"

/* td_daemon_exe: the full path of the daemon's program ($LOCKBROKERD,
 * else daemon\lockbrokerd.exe from the working directory), found at
 * the first call (make it in main: the tests change the working
 * directory); "" when it cannot be told. */
const char *td_daemon_exe(void);

/* td_job: a new job whose end (its last handle closed: the test's end)
 * ends the processes in it; NULL when it cannot be made. */
HANDLE td_job(void);

/* td_daemon_spawn: starts the daemon's program with the arguments args
 * (after its name), its standard output and error appended to log, in
 * job (td_job); the handle of its process.  Asserts. */
HANDLE td_daemon_spawn(HANDLE job, const char *args, const char *log);

/* td_appears: waits up to a minute until file exists; whether it
 * does. */
int td_appears(const char *file);

/* td_touch: makes file, empty; 0, or 1 when it cannot (it exists). */
int td_touch(const char *file);

/* td_marker: the path of file name in directory dir into out (size
 * bytes), removed first. */
void td_marker(char *out, size_t size, const char *dir, const char *name);

/* td_broker_lock: a handle on path through the daemon (the link
 * method); asserts. */
lb_lock *td_broker_lock(const char *path);

/* td_child: runs the child argv names (above), which never returns but
 * by failing (1); -1 when argv names none. */
int td_child(int argc, char **argv);

#endif
