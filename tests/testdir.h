/*
 * testdir.h: the temporary-directory calls of testlib.h under their
 * former names, for a suite not yet moved onto testlib.h.
 */
#ifndef TESTDIR_H
#define TESTDIR_H

#include "testlib.h"

#define testdir_make   tl_dir_make
#define testdir_remove tl_dir_remove
#define testdir_count  tl_count

#endif
