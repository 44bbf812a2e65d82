/*
 * stopcommit.c: a test-only preload for lockbrokerd (LD_PRELOAD), never
 * installed, that stops the daemon (SIGSTOP, so that its parent test can
 * see it with waitpid WUNTRACED and kill it) at a chosen point of a grant:
 * after it made the artefact, and before or after the iteration's commit
 * recorded the grant, in both cases before the grant's reply went out
 * (the daemon owes its OKs until the commit, reply.c).  No daemon code
 * knows of it.
 *
 *   LB_TEST_STOP_COMMIT  "before" or "after": which side of the COMMIT
 *                        of the state database to stop on
 *   LB_TEST_STOP_IF      a path: only a COMMIT while it exists (the
 *                        artefact of the grant in question) stops, once
 *
 * It interposes sqlite3_step and calls the real one (dlsym RTLD_NEXT).
 * Without both variables set it changes nothing.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sqlite3_stmt sqlite3_stmt;

#define SQLITE_DONE 101

/* Exported, whatever the build's default visibility. */
__attribute__((visibility("default"))) int sqlite3_step(sqlite3_stmt *st);

/* 1 until the daemon has stopped once. */
static int armed = 1;

/* 1 when st is the COMMIT to stop at (the trigger path exists). */
static int
is_the_commit(sqlite3_stmt *st, const char *trigger)
{
	static const char *(*sql_of)(sqlite3_stmt *);
	const char *sql;

	if (sql_of == NULL)
		*(void **)&sql_of = dlsym(RTLD_NEXT, "sqlite3_sql");
	return sql_of != NULL && (sql = sql_of(st)) != NULL &&
	    strcmp(sql, "COMMIT") == 0 && access(trigger, F_OK) == 0;
}

/* sqlite3_step, stopping the process before or after the COMMIT asked
 * for. */
__attribute__((visibility("default"))) int
sqlite3_step(sqlite3_stmt *st)
{
	static int (*real)(sqlite3_stmt *);
	const char *when = getenv("LB_TEST_STOP_COMMIT");
	const char *trigger = getenv("LB_TEST_STOP_IF");
	int         stop = 0, rc;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "sqlite3_step");
	if (real == NULL)
		abort();
	if (armed && when != NULL && trigger != NULL &&
	    is_the_commit(st, trigger)) {
		stop = strcmp(when, "after") == 0 ? 2 : 1;
		armed = 0;
	}
	if (stop == 1)
		raise(SIGSTOP);
	rc = real(st);
	if (stop == 2 && rc == SQLITE_DONE)
		raise(SIGSTOP);
	return rc;
}
