/*
 * os.h: what the daemon asks of the operating system beyond lockfs's
 * (lockfs/os.h) and libuv's: who the peer of a connection is, taking on a
 * client's file-system credentials for a step and giving them back, the
 * privileges a root daemon keeps, a watch that tells when a process
 * exits, the signals it takes as events, the paths that lead into the
 * daemon's own process entries, and what its budgets of descriptors and
 * watches must leave to others.
 * The policy (when to switch, what to refuse, the messages) stays in the
 * daemon's other files (creds.c, conn.c, request.c, pidwatch.c, main.c).
 *
 * One implementation per OS: os_unix.c (Linux: SO_PEERCRED,
 * SO_PEERGROUPS, setfsuid, the setgroups system call, capabilities,
 * pidfd_open, /proc, openat2, and the POSIX calls of the daemon's own
 * files), os_win32.c and os_users_win32.c (Windows:
 * GetNamedPipeClientProcessId, users by their tokens' SIDs, acting as a
 * client by its token, the daemon's own files by CreateFileA (their
 * private modes a DACL of their own: private_win32.c), process
 * handles waited for by the thread pool, console events; what it
 * cannot yet answers as its contract lets an OS that cannot, and says
 * so).  A port adds its own file and builds it instead.
 *
 * Error convention, as lockfs's OS layer: 0 (or a count) on success, -1
 * with errno set on failure; the caller names the reason.  Nothing here
 * depends on daemon.h, so that it can be tested alone (tests/check_os.c).
 * The credential calls act on the calling thread only.
 */
#ifndef LBD_OS_H
#define LBD_OS_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>                 /* uv_os_fd_t: a connection's descriptor
                                   (an int on Linux, a HANDLE on Windows) */

#include "lockfs.h"             /* uid_t, gid_t (lockfs/os.h: placeholders
                                   where the OS has no numeric users) */

/* What a signal the daemon takes as a loop event asks of it (main.c). */
enum lbd_os_signal_means {
	LBD_OS_SIGNAL_STOP,     /* the graceful stop (loop.c, lbd_stop) */
	LBD_OS_SIGNAL_RELOAD,   /* reload the config file */
	LBD_OS_SIGNAL_DEBUG     /* debug lines on or off */
};

/* A signal the daemon takes as a loop event, and what it asks. */
struct lbd_os_signal {
	int                      signum;
	enum lbd_os_signal_means means;
};

/* The most signals lbd_os_signals gives. */
#define LBD_OS_SIGNALS_MAX 4

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
 * Windows: the pipe's client process, and placeholders (0) for the ids
 * (lbd_os_peer_user names the user).
 */
int  lbd_os_peer_ids(uv_os_fd_t fd, pid_t *pid, uid_t *uid, gid_t *gid);

/*
 * lbd_os_peer_groups: the supplementary groups of the peer of socket fd,
 * as they were when it connected, at most max, into *groups (allocated,
 * the caller frees it; NULL when none).  Returns how many, or -1 with
 * errno: ENOMEM, or another when the OS cannot tell (then ask
 * lbd_os_user_groups).
 */
int  lbd_os_peer_groups(uv_os_fd_t fd, size_t max, gid_t **groups);

/*
 * lbd_os_user_groups: the supplementary groups user uid with primary
 * group gid gets at a login (its user-database entry), at most max, into
 * *groups (allocated, the caller frees it; NULL when none).  Returns how
 * many: 0 when the uid has no entry or more than max; -1 with errno
 * ENOMEM.
 */
int  lbd_os_user_groups(uid_t uid, gid_t gid, size_t max, gid_t **groups);

/* lbd_os_user_gid: the primary group of user uid, from its user-database
 * entry, into *gid.  0, or -1 when it has none (Windows: 0, gid 0: no
 * numbered groups). */
int  lbd_os_user_gid(uid_t uid, gid_t *gid);

/*
 * lbd_os_files_uid_of: the owner uid lockfs (fs.h) reads on the files
 * a step acting as user uid makes: uid on Linux; 0 on Windows, where
 * lockfs says every file is uid 0 (no numeric owners), so that lockfs's
 * "a file of the owner's uid" checks hold there as they can.
 */
uid_t lbd_os_files_uid_of(uid_t uid);

/* Users named by a token (Windows).  Where the OS numbers its users
 * (Linux), lbd_os_peer_ids's uid is the user, and none of this is used. */

/* A client's token: what the daemon acts with for it (opaque; os_win32.c:
 * an impersonation token's handle). */
struct lbd_os_token;

/* The longest user name lbd_os_peer_user and lbd_os_proc_user give (a SID
 * as a string, "S-1-5-21-...", and its integrity level's label SID,
 * "+S-1-16-12288": peertoken.h), its NUL included. */
#define LBD_OS_USER_MAX 256

/*
 * lbd_os_peer_user: the user of the peer of connection fd, whose
 * process is pid (lbd_os_peer_ids), as a string of at most
 * LBD_OS_USER_MAX bytes into user, and a token to act as it with
 * (lbd_os_token_enter) into *token, the caller's to free
 * (lbd_os_token_free).  1 when the OS names users so; 0 when it does not
 * (Linux: the uid of lbd_os_peer_ids is the user; nothing filled); -1
 * with why (size bytes) saying why the peer cannot be acted as, and
 * errno (ENOMEM, EPERM, EACCES, ESRCH).  Windows: the user is the SID
 * and integrity level (lbd_user_key, peertoken.h) of the client
 * process's own token (OpenProcessToken, duplicated for impersonation),
 * taken only when its SID, logon session, level and restrictedness are
 * those of the token the pipe's client gave (ImpersonateNamedPipeClient,
 * at any level: the client opens at the identification level), its
 * level is not below medium (lbd_peer_tokens_agree), and the process
 * was created before the call (lbd_peer_started_before).
 */
int  lbd_os_peer_user(uv_os_fd_t fd, pid_t pid, char *user,
         struct lbd_os_token **token, char *why, size_t size);

/*
 * lbd_os_proc_user: the user of process pid (as lbd_os_peer_user names
 * users) into user (LBD_OS_USER_MAX bytes), looked at with the calling
 * thread's credentials.  1, 0 where the OS numbers its users (ask
 * lockfs_os_process_uid), or -1 with errno (ESRCH: no such process, or
 * hidden from the caller; EACCES: the caller may not look at it or its
 * token: another user's; EIO: it cannot be told).
 */
int  lbd_os_proc_user(pid_t pid, char *user);

/* lbd_os_users_by_token: 1 where the OS names users by token and acts
 * for them only so (Windows: no uid, the daemon's own included, is ever
 * acted as by number), 0 where it numbers them (Linux). */
int  lbd_os_users_by_token(void);

/* lbd_os_token_dup: another reference to token (the same user, rights
 * and lifetime), or NULL with errno. */
struct lbd_os_token *lbd_os_token_dup(const struct lbd_os_token *token);

/* The most words lbd_os_token_groups gives. */
#define LBD_OS_GROUPS_WORDS 8

/*
 * lbd_os_token_groups: a digest of what in token bears on its rights
 * beside its user and level, into words (LBD_OS_GROUPS_WORDS at most):
 * how many it fills (Windows: the SHA-256 of its groups, restricting
 * SIDs and enabled privileges as peertoken.h's lbd_token_groups_text
 * writes them, read when its client connected; 0 where the OS has no
 * tokens).  A client's credentials carry it as their groups (creds.c).
 */
size_t lbd_os_token_groups(const struct lbd_os_token *token, gid_t *words);

/* lbd_os_token_free: releases token (nothing when NULL); errno kept. */
void lbd_os_token_free(struct lbd_os_token *token);

/*
 * lbd_os_token_enter: the calling thread acts as token until
 * lbd_os_token_leave (Windows: SetThreadToken; every file-system step is
 * then checked against the token's rights).  0, or -1 with errno.
 */
int  lbd_os_token_enter(const struct lbd_os_token *token);

/* lbd_os_token_leave: the calling thread acts as the daemon again
 * (RevertToSelf).  Never fails; errno kept. */
void lbd_os_token_leave(void);

/*
 * lbd_os_token_user: the user the calling thread acts as now, as
 * lbd_os_peer_user names users, read from its own token (Windows:
 * OpenThreadToken; "" when it acts as the daemon).  For the daemon's
 * debug log: what a step really ran as.  0, or -1 with errno.
 */
int  lbd_os_token_user(char *user);

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
 * lbd_os_fs_ids_restore), ENOSYS where users are acted as by token only
 * (Windows: lbd_os_token_enter).
 */
int  lbd_os_fs_ids_set(uid_t uid, gid_t gid);

/*
 * lbd_os_fs_ids_restore: the calling thread's file-system steps run as
 * uid and gid again, the process's effective ones, which the caller
 * passes (read once: they do not change) (uid first, which gives back
 * the right to set groups).  Never fails; errno is kept.
 */
void lbd_os_fs_ids_restore(uid_t uid, gid_t gid);

/* Processes. */

/* A watch of a process's exit (lbd_os_proc_watch). */
struct lbd_os_proc_watch;

/*
 * lbd_os_proc_watch: watches process pid, the one that started at start
 * (lockfs_os_start_time's number), from loop: exited(arg) is called in
 * the loop, once, when it has exited (never after lbd_os_proc_unwatch).
 * The watch, or NULL with errno when the OS gives none: ESRCH when pid
 * names no process or another one (the caller looks for itself: it has
 * gone), ENOSYS, ENOMEM, EMFILE or another when the OS cannot or
 * refuses (the caller then looks with lockfs_os_start_time now and
 * then).  Linux: a pidfd polled by the loop; Windows: the process's
 * handle waited for by the thread pool (RegisterWaitForSingleObject),
 * whose callback wakes the loop (uv_async_send).  Each watch counts as
 * one descriptor of the budget (main.c, fd_budget): a pidfd on Linux, a
 * handle and a wait on Windows.
 */
struct lbd_os_proc_watch *lbd_os_proc_watch(uv_loop_t *loop, pid_t pid,
    unsigned long long start, void (*exited)(void *arg), void *arg);

/* lbd_os_proc_unwatch: ends watch w (its callback not called after this
 * returns: it may wait for one running in another thread) and frees
 * it, once the loop is done with it; nothing when NULL.  errno is
 * kept. */
void lbd_os_proc_unwatch(struct lbd_os_proc_watch *w);

/* Signals. */

/*
 * lbd_os_signals_take: readies the process to take the signals the
 * daemon takes as loop events (libuv's signal handles; once, at start),
 * and returns them with what each asks, *n of them (at most
 * LBD_OS_SIGNALS_MAX).  Never fails.  Linux: SIGTERM and SIGINT stop,
 * SIGHUP reloads, SIGUSR1 switches debug lines.  Windows, where libuv
 * gives a console's events as signals: SIGINT (Ctrl-C), SIGBREAK
 * (Ctrl-Break) and SIGHUP (the console closed) stop; nothing reloads nor
 * switches debug lines (no signal can be sent for them).
 */
const struct lbd_os_signal *lbd_os_signals_take(size_t *n);

/* The daemon's own process and files. */

/*
 * lbd_os_euid, lbd_os_egid: the daemon's effective uid and gid (read once
 * at start: they do not change).  Never fail.  Windows: 0, the daemon
 * counting as the system's (its clients' users are numbered from 1:
 * creds.c, store.c).
 */
uid_t lbd_os_euid(void);
gid_t lbd_os_egid(void);

/*
 * lbd_os_gmtime: time t as UTC, into *tm (thread-safe).  Never fails for
 * a time of this era.
 */
void lbd_os_gmtime(time_t t, struct tm *tm);

/*
 * lbd_os_umask: sets the mask of the modes files and directories the
 * daemon makes are made without; the mask before.  Windows: nothing,
 * 0: no mask narrows an ACL; what the daemon makes for itself gets the
 * private DACL of its mode (lbd_os_mkdir), and what sqlite makes beside
 * the state database inherits the state directory's.
 */
mode_t lbd_os_umask(mode_t mask);

/*
 * lbd_os_sigpipe_ignore: a write to a connection its peer has closed
 * fails with an error instead of ending the process.  Never fails.
 * Windows: nothing to do (no such signal).
 */
void lbd_os_sigpipe_ignore(void);

/*
 * Modes on Windows (lbd_os_mkdir, lbd_os_chmod, lbd_os_fchmod,
 * lbd_os_open_own): a private mode, one that gives the group and others
 * nothing (0700, 0600: every one the daemon gives its own files), is
 * the private DACL (private_win32.h): protected from inheritance, full
 * control to the system, the administrators and the daemon's own user,
 * nothing to anybody else; on a directory, inherited by what is made in
 * it.  Any other mode leaves the ACL Windows gives (inherited from the
 * parent): the daemon uses none on Windows (the socket's directory,
 * 0755, is Linux's).
 */

/*
 * lbd_os_mkdir: makes directory dir with mode (less the umask).  0, or
 * -1 with errno (EEXIST when something is at dir).
 */
int  lbd_os_mkdir(const char *dir, mode_t mode);

/*
 * lbd_os_chmod: sets the mode of file, one of the daemon's own files or
 * directories (Linux: following a symbolic link; Windows: a link at
 * the name changed itself, never followed).  0, or -1 with errno
 * (ENOENT when there is none).
 */
int  lbd_os_chmod(const char *file, mode_t mode);

/* How lbd_os_open_own opens one of the daemon's own files. */
#define LBD_OS_REWRITE 1        /* to write it, emptied */
#define LBD_OS_UPDATE  2        /* to read and write it, kept */

/*
 * lbd_os_open_own: opens file, one of the daemon's own (the state
 * database's companions), as how says, made 0600 (less the umask) when
 * missing, close-on-exec, never following a symbolic link at the name.
 * The descriptor (lockfs's fs.h reads, writes, closes it and tells what
 * it is), or -1 with errno.
 */
int  lbd_os_open_own(const char *file, int how);

/* lbd_os_file_size: the size in bytes of the file open as fd, into
 * *size.  0, or -1 with errno. */
int  lbd_os_file_size(int fd, off_t *size);

/* lbd_os_fchmod: sets the mode of the file open as fd.  0, or -1 with
 * errno. */
int  lbd_os_fchmod(int fd, mode_t mode);

/* lbd_os_truncate: makes the file open as fd (to write) size bytes long.
 * 0, or -1 with errno. */
int  lbd_os_truncate(int fd, off_t size);

/* lbd_os_read_at, lbd_os_write_at: one read (write) of size bytes at
 * offset at of the file open as fd, its position unchanged.  How many,
 * or -1 with errno. */
ssize_t lbd_os_read_at(int fd, void *buf, size_t size, off_t at);
ssize_t lbd_os_write_at(int fd, const void *buf, size_t size, off_t at);

/* lbd_os_sync: what was written to the file open as fd is on its disk
 * when this returns 0; -1 with errno. */
int  lbd_os_sync(int fd);

/* lbd_os_sync_dir: the names made in and removed from directory dir are
 * on its disk (as far as the OS can tell: nothing is said of a failure).
 * Windows: nothing (NTFS journals its names). */
void lbd_os_sync_dir(const char *dir);

/* A stream of a directory's entries (lbd_os_dir_adopt). */
struct lbd_os_dir;

/*
 * lbd_os_dir_adopt: a stream of the entries of the directory open (to
 * read) as fd, which it takes: fd stays open, for steps in the directory
 * by the caller, until lbd_os_dir_close closes both.  NULL with errno,
 * fd then still the caller's to close.  Linux: fdopendir(3), no
 * descriptor duplicated.
 */
struct lbd_os_dir *lbd_os_dir_adopt(int fd);

/* lbd_os_dir_next: the name of the stream's next entry ("." and ".."
 * among them where the OS lists them), valid until the next call; NULL
 * at the end or on an error. */
const char *lbd_os_dir_next(struct lbd_os_dir *d);

/* lbd_os_dir_close: closes the stream and the descriptor it took
 * (nothing when NULL); errno is kept. */
void lbd_os_dir_close(struct lbd_os_dir *d);

/*
 * lbd_os_events_waiting: whether events wait on descriptor fd (the
 * loop's backend) now, without waiting for any: 1 when some do or the
 * look failed, 0 when none.  Windows: 1, always (the loop has no such
 * descriptor: the caller then yields at once, never delaying events).
 */
int  lbd_os_events_waiting(int fd);

/* Budgets. */

/*
 * lbd_os_fds_limit: how many descriptors the process may have open (its
 * soft limit), first raised towards the hard limit as far as need when
 * below it (to the hard limit when need is beyond it; a refused raise
 * leaves the limit as it was).  1 with *limit set, or 0 when there is no
 * limit or the OS cannot tell it.  Windows: 0 (libuv's handles are no
 * descriptors of a limited table).
 */
int  lbd_os_fds_limit(unsigned long long need, unsigned long long *limit);

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

/* lbd_os_path_is_relative: 1 when path is relative to the working
 * directory (Linux: it does not start with '/'; Windows: it has no
 * drive's or share's root and does not start with a separator), 0 when
 * it is absolute. */
int  lbd_os_path_is_relative(const char *path);

/* Paths the daemon may not take for a client. */

/*
 * lbd_os_fd_path: a path that leads into the file (a directory) open as
 * fd, through the daemon's own process entries (Linux: /proc/self/fd/N),
 * into out (size bytes), for the daemon's own steps to act in the very
 * directory it opened; whether it leads there is for the caller to try.
 * 0, or -1 with errno: ENAMETOOLONG, or ENOSYS where the OS has no such
 * path (Windows).
 */
int  lbd_os_fd_path(int fd, char *out, size_t size);

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
