/*
 * check_lockfs.h: the test cases of the lockfs suite, one file per
 * subject; check_lockfs.c puts them together.
 */
#ifndef CHECK_LOCKFS_H
#define CHECK_LOCKFS_H

#include <check.h>

/* check_lockfs_names.c */
TCase *lockfs_abspath_case(void);
TCase *lockfs_init_case(void);
/* check_lockfs_owner.c */
TCase *lockfs_owner_case(void);
/* check_lockfs_methods.c */
TCase *lockfs_methods_case(void);
TCase *lockfs_link_case(void);
/* check_lockfs_hostile.c */
TCase *lockfs_hostile_case(void);
TCase *lockfs_forged_case(void);
/* check_lockfs_stale.c */
TCase *lockfs_stale_case(void);

#endif
