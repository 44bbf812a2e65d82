/*
 * settings.h: the daemon's settings and limits, with their defaults, and the
 * parser of lockbrokerd.conf ("key = value" lines, '#' comments).  Every
 * limit lives in struct lbd_limits; lockbrokerd.conf(5) documents each key.
 */
#ifndef LBD_CONFIG_H
#define LBD_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "listen.h"            /* LBD_LISTEN_NAME_MAX */

/* The limits one client or all clients may not exceed.  A client that
 * would exceed one gets ERR ELIMIT naming it. */
struct lbd_limits {
	unsigned holds_per_conn;        /* locks held on one connection, with
	                                   those it waits for */
	unsigned waits_per_conn;        /* ACQUIREs waiting on one connection */
	size_t   output_per_conn;       /* replies queued for a client that
	                                   does not read; reading from it stops
	                                   beyond this */
	unsigned conns_per_uid;         /* connections of one user at once */
	unsigned conns;                 /* connections in all */
	unsigned locks_per_uid;         /* locks one user holds (kept holds
	                                   too) or waits for, over all its
	                                   connections */
	unsigned watches_per_uid;       /* directories watched for one user's
	                                   waits (0: poll only) */
	unsigned watches;               /* directories watched in all (0:
	                                   poll only); never more than half
	                                   fs.inotify.max_user_watches */
	unsigned pidfds_per_uid;        /* processes watched with a pidfd for
	                                   one user's kept holds and orphans
	                                   (0: none); beyond it, a look a
	                                   second.  In all, pidfds take at
	                                   most half the descriptor budget */
	unsigned turn_us;               /* a loop iteration's time for one
	                                   user's requests, and for the
	                                   releases of closed connections'
	                                   holds, before the others' turn
	                                   (microseconds; 0: one request,
	                                   one release).  Never ELIMIT:
	                                   the rest waits for the next
	                                   iteration */
	unsigned refusals_logged_per_uid; /* refused connections of one user
	                                   logged an interval
	                                   (refusals_interval), at most; the
	                                   rest counted, per user, in a line
	                                   at its end (lograte.c) */
	unsigned refusals_logged;       /* refused connections of all users
	                                   logged an interval, at most */
	unsigned readers_per_lock;      /* riders beside a shared lock's
	                                   artefact's reader (readers.c);
	                                   a shared ACQUIRE that would join
	                                   more is refused, a queued one
	                                   waits.  Its ITEMs, one per holder,
	                                   must fit in half of
	                                   output_per_conn: a LIST sends a
	                                   lock's whole.  Unset: as many as
	                                   fit, 63 at most; 0: no riders */
	unsigned swap_readers_fast;     /* handoffs waiting for their lock
	                                   file's readers retried at full
	                                   speed, in all (swap.c); the rest
	                                   once a second each */
};

#define LBD_DEFAULT_HOLDS_PER_CONN  1024
#define LBD_DEFAULT_WAITS_PER_CONN  1024
#define LBD_DEFAULT_OUTPUT_PER_CONN (1024 * 1024)
#define LBD_DEFAULT_CONNS_PER_UID   256
#define LBD_DEFAULT_CONNS           16384
#define LBD_DEFAULT_LOCKS_PER_UID   16384
#define LBD_DEFAULT_WATCHES_PER_UID 1024
#define LBD_DEFAULT_WATCHES         8192
#define LBD_DEFAULT_PIDFDS_PER_UID  256
#define LBD_DEFAULT_TURN_US         50
#define LBD_TURN_US_MAX             100000  /* 0.1 s */
#define LBD_DEFAULT_REFUSALS_LOGGED_PER_UID 10
#define LBD_DEFAULT_REFUSALS_LOGGED 100
#define LBD_DEFAULT_REFUSALS_INTERVAL 60.0 /* seconds */
#define LBD_DEFAULT_SWAP_READERS_FAST 64
#define LBD_DEFAULT_READERS_PER_LOCK 63  /* with its reader, 64 ITEMs of
	                                    8 KiB at most: half of the
	                                    default output_per_conn */
#define LBD_DEFAULT_GRACE           30.0    /* seconds to reclaim after a
	                                           restart */
#define LBD_DEFAULT_FOREIGN_POLL    1.0     /* seconds between looks at a
	                                           lock held outside the broker */
#define LBD_DEFAULT_RELEASE_WAIT    3.0     /* seconds a RELEASE waits for
	                                           its handoff's last step
	                                           (swap.c) before its OK goes
	                                           out marked pending */
#define LBD_RELEASE_WAIT_MAX        20      /* seconds: below the library's
	                                           30 s wait for any answer, so
	                                           that a pending one is read */

/* Cluster locks through etcd (docs/CLUSTER.md). */
#define LBD_DEFAULT_ETCD_TTL     10            /* seconds */
#define LBD_ETCD_TTL_MIN         2             /* etcd's least, by default */
#define LBD_ETCD_TTL_MAX         3600
#define LBD_DEFAULT_ETCD_PREFIX  "/lockbroker/locks"
#define LBD_ETCD_ENDPOINTS_MAX   8             /* URLs in etcd_endpoints */

struct lbd_config {
	char              socket[LBD_LISTEN_NAME_MAX];
	char              state[PATH_MAX];
	int               state_default; /* state is statedir.h's default */
	double            grace;
	double            foreign_poll;
	double            release_wait;
	double            refusals_interval; /* seconds: refusals_logged's
	                                        interval */
	int               debug;
	struct lbd_limits limits;
	char              subuids[PATH_MAX]; /* the subordinate uids' file
	                                        (subuids.h): "" the system's,
	                                        "none" none */
	/* Locks under cluster_dir are cluster-wide ("" for none); etcd's
	 * endpoints (comma-separated http:// URLs), the key prefix, the
	 * lease's TTL in seconds. */
	char              cluster_dir[PATH_MAX];
	char              etcd_endpoints[1024];
	char              etcd_prefix[256];
	unsigned          etcd_ttl;
};

/* lbd_config_defaults: the built-in settings; socket and state empty
 * (resolved at start: see main.c). */
void lbd_config_defaults(struct lbd_config *c);

/*
 * lbd_config_parse: applies the settings in text (len bytes, need not be
 * NUL-terminated) to *c.  Returns 0, or -1 with why (size bytes) saying
 * which line and what is wrong; *c may then be partly changed.  Pure: no
 * I/O, no allocation.
 */
int lbd_config_parse(const char *text, size_t len, struct lbd_config *c,
    char *why, size_t size);

/* lbd_config_load (conffile.c): reads file and applies it with
 * lbd_config_parse.
 * 0, or -1 with why filled (including the file's name). */
int lbd_config_load(const char *file, struct lbd_config *c, char *why,
    size_t size);

#endif
