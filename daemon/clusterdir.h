/*
 * clusterdir.h: the sign in the daemon's cluster_dir for the library
 * (clusterdir.c).
 */
#ifndef LBD_CLUSTERDIR_H
#define LBD_CLUSTERDIR_H

struct lbd;

/*
 * lbd_cluster_dir_sign: with cluster_dir set, makes its sign
 * CLUSTER_DIR/.lockbroker-cluster (a regular file of the daemon's user,
 * mode 0644, one line saying what it is) unless it is there already, so
 * that the library, when no daemon answers, never takes a lock under it
 * in-process on this host alone (client/clusterguard.c).  What cannot
 * be done is logged (a cluster_dir that does not exist, a file at the
 * name that is not the daemon's); the daemon serves on.
 */
void lbd_cluster_dir_sign(struct lbd *d);

#endif
