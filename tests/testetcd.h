/*
 * testetcd.h: a real etcd for the cluster suites: one member started
 * from etcd-server's etcd on 127.0.0.1, on ports free at its start, with
 * its data in a directory of the test's, and stopped (SIGKILL at the
 * latest) by the test or when the test's process dies.
 */
#ifndef TESTETCD_H
#define TESTETCD_H

#include <limits.h>
#include <sys/types.h>

struct tl_etcd {
	pid_t pid;
	int   port, peer_port;
	char  url[64];          /* the client URL, "http://127.0.0.1:PORT" */
	char  dir[PATH_MAX];    /* its data and its log (DIR/log) */
};

/* tl_etcd_prog: the etcd to start ($ETCD, else configure's), or NULL
 * when there is none. */
const char *tl_etcd_prog(void);

/*
 * tl_etcd_start: starts etcd with its data under dir (made by the
 * caller) and waits until it answers on e->url (20 s at most).  0, or -1
 * with a message on stderr (and etcd's log named).
 */
int tl_etcd_start(struct tl_etcd *e, const char *dir);

/* tl_etcd_restart: starts a stopped etcd again, on its ports and its
 * data (as tl_etcd_start). */
int tl_etcd_restart(struct tl_etcd *e);

/* tl_etcd_signal: sends sig (SIGSTOP, SIGCONT, ...) to etcd; asserts. */
void tl_etcd_signal(struct tl_etcd *e, int sig);

/* tl_etcd_stop: kills etcd (SIGKILL) and reaps it; e->pid 0 after.
 * A stopped one is fine. */
void tl_etcd_stop(struct tl_etcd *e);

/*
 * tl_etcd_post: a blocking POST of body to e->url's path (1 s at most);
 * the reply's body into out (size bytes, NUL-terminated).  Returns the
 * HTTP status, or -1 when there was no reply.
 */
long tl_etcd_post(const struct tl_etcd *e, const char *path,
    const char *body, char *out, size_t size);

/* tl_etcdctl_prog: etcdctl ($ETCDCTL, else configure's), or NULL. */
const char *tl_etcdctl_prog(void);

/*
 * tl_etcdctl_lock: starts `etcdctl lock NAME` (ETCDCTL_API=3) against e,
 * which prints the key it holds once it holds the lock, and holds it until
 * SIGTERM; its standard output is *out (non-blocking).  Returns its pid;
 * asserts.
 */
pid_t tl_etcdctl_lock(const struct tl_etcd *e, const char *name, int *out);

/* tl_free_port: a TCP port of 127.0.0.1 free now (bound and let go). */
int tl_free_port(void);

#endif
