/* testdir.h: private temporary directories for the check suites. */
#ifndef TESTDIR_H
#define TESTDIR_H

#include <stddef.h>

/* testdir_make: creates a fresh directory under $TMPDIR (or /tmp) and writes
 * its path into out.  Aborts the test run on failure. */
void testdir_make(char *out, size_t size);

/* testdir_remove: removes dir and everything under it (no symlinks are
 * followed).  Returns 0, or -1 when something could not be removed. */
int  testdir_remove(const char *dir);

/* testdir_count: the number of entries in dir (without . and ..). */
int  testdir_count(const char *dir);

#endif
