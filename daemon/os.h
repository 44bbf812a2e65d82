/*
 * os.h: what the daemon asks of the operating system beyond lockfs's
 * (lockfs/os.h) and libuv's: who the peer of a connection is, taking on a
 * client's file-system credentials for a step and giving them back, the
 * privileges a root daemon keeps, a descriptor that tells when a process
 * exits, the paths that lead into the daemon's own process entries,
 * and what its budgets of descriptors and watches must leave to others.
 * The policy (when to switch, what to refuse, the messages) stays in the
 * daemon's other files (creds.c, conn.c, request.c, pidwatch.c, main.c).
 *
 * One implementation per OS: os_unix.c (Linux: SO_PEERCRED,
 * SO_PEERGROUPS, setfsuid, the setgroups system call, capabilities,
 * pidfd_open, /proc, openat2).  A port adds its own file and builds it
 * instead.
 *
 * Error convention, as lockfs's OS layer: 0 (or a count) on success, -1
 * with errno set on failure; the caller names the reason.  Nothing here
 * depends on daemon.h, so that it can be tested alone (tests/check_os.c).
 * The credential calls act on the calling thread only.
 */
#ifndef LBD_OS_H
#define LBD_OS_H

#include <stddef.h>
#include <sys/types.h>

/* Privileges. */

/*
 * lbd_os_privileges_drop: at start, before any client and before any
 * other thread: a daemon running as root leaves behind the supplementary
 * groups it was started with and every capability but those it needs to
 * act for clients (setting its fsuid and groups, overriding file modes
 * for itself).  Nothing when not root.  0, or -1 with why filled.
 */
int  lbd_os_privileges_drop(char *why, size_t size);

/* The peer of a connection. */

/*
 * lbd_os_peer_ids: the process id, uid and gid of the peer of connected
 * local socket fd, as they were when it connected.  0, or -1 with errno.
 */
int  lbd_os_peer_ids(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/*
 * lbd_os_peer_groups: the supplementary groups of the peer of socket fd,
 * as they were when it connected, at most max, into *groups (allocated,
 * the caller frees it; NULL when none).  Returns how many, or -1 with
 * errno: ENOMEM, or another when the OS cannot tell (then ask
 * lbd_os_user_groups).
 */
int  lbd_os_peer_groups(int fd, size_t max, gid_t **groups);

/*
 * lbd_os_user_groups: the supplementary groups user uid with primary
 * group gid gets at a login (its user-database entry), at most max, into
 * *groups (allocated, the caller frees it; NULL when none).  Returns how
 * many: 0 when the uid has no entry or more than max; -1 with errno
 * ENOMEM.
 */
int  lbd_os_user_groups(uid_t uid, gid_t gid, size_t max, gid_t **groups);

/* File-system credentials of the calling thread. */

/*
 * lbd_os_fs_groups_set: sets the calling thread's supplementary groups
 * only (n of them; n 0: none), leaving other threads' alone.  0, or -1
 * with errno.
 */
int  lbd_os_fs_groups_set(size_t n, const gid_t *groups);

/*
 * lbd_os_fs_ids_set: makes the calling thread's file-system steps run as
 * uid and gid (its effective ids otherwise unchanged).  Set the groups
 * first: the switch of uid takes away the right to set them.  0, or -1
 * with errno EPERM when the switch did not take (partly made: call
 * lbd_os_fs_ids_restore).
 */
int  lbd_os_fs_ids_set(uid_t uid, gid_t gid);

/*
 * lbd_os_fs_ids_restore: the calling thread's file-system steps run as
 * the process's effective uid and gid again (uid first, which gives back
 * the right to set groups).  Never fails; errno is kept.
 */
void lbd_os_fs_ids_restore(void);

/* Processes. */

/*
 * lbd_os_proc_exit_fd: a new descriptor (close-on-exec) that becomes
 * readable when process pid exits, for the loop to poll.  -1 with errno
 * when the OS gives none (ENOSYS, or refused: the caller then looks
 * with lockfs_os_start_time now and then).
 */
int  lbd_os_proc_exit_fd(pid_t pid);


/* Budgets. */

/*
 * lbd_os_fds_open: how many descriptors the process has open now; -1 when
 * the OS cannot tell.
 */
int  lbd_os_fds_open(void);

/*
 * lbd_os_fs_watches_max: how many directories the daemon's user may watch
 * for changes in all (Linux: fs.inotify.max_user_watches, which libuv's
 * file-system events use); 0 when the OS tells no limit.
 */
unsigned long lbd_os_fs_watches_max(void);

/* Paths the daemon may not take for a client. */

/*
 * lbd_os_path_in_own_proc: whether the normalised absolute path abs names
 * something under the daemon's own process entries (Linux: /proc/self,
 * /proc/thread-self, /proc/N for the daemon or one of its threads), which
 * the OS lets the daemon into whoever's credentials it has taken on.
 * 1 or 0.
 */
int  lbd_os_path_in_own_proc(const char *abs);

/*
 * lbd_os_path_through_magic_link: whether resolving file, with the
 * calling thread's file-system credentials, passes through a link the OS
 * resolves by magic rather than by its text (Linux: /proc/PID/fd/N, cwd,
 * root) or a loop of symbolic links.  1 or 0; 0 also where the OS cannot
 * tell.
 */
int  lbd_os_path_through_magic_link(const char *file);

#endif /* LBD_OS_H */
