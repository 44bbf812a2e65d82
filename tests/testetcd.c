/*
 * testetcd.c: a real etcd for the cluster suites (testetcd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "testetcd.h"
#include "testlib.h"

#define ETCD_WAIT_S 20.0

const char *
tl_etcd_prog(void)
{
	const char *p = getenv("ETCD");

	if (p == NULL || *p == '\0')
		p = TL_ETCD;
	if (*p == '\0' || access(p, X_OK) != 0)
		return NULL;
	return p;
}

int
tl_free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Collects a reply's bytes into a bounded buffer. */
struct sink {
	char  *buf;
	size_t len, size;
};

static size_t
sink_write(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n, room = s->size - 1 - s->len;

	if (len > room)
		len = room;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return size * n;
}

long
tl_etcd_post(const struct tl_etcd *e, const char *path, const char *body,
    char *out, size_t size)
{
	struct sink s = { out, 0, size };
	char url[256];
	long status = -1;
	CURL *c;

	out[0] = '\0';
	snprintf(url, sizeof(url), "%s%s", e->url, path);
	if ((c = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

int
tl_etcd_start(struct tl_etcd *e, const char *dir)
{
	e->port = tl_free_port();
	e->peer_port = tl_free_port();
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	return tl_etcd_restart(e);
}

int
tl_etcd_restart(struct tl_etcd *e)
{
	const char *prog = tl_etcd_prog(), *dir = e->dir;
	char client[64], peer[64], cluster[96], data[PATH_MAX + 8],
	    log[PATH_MAX + 8], out[512];
	int cport = e->port, pport = e->peer_port, status;
	pid_t parent = getpid();
	double end;

	if (prog == NULL || cport <= 0 || pport <= 0 || cport == pport) {
		fprintf(stderr, "etcd: no program, or no free ports\n");
		return -1;
	}
	snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", cport);
	snprintf(client, sizeof(client), "http://127.0.0.1:%d", cport);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "t=%s", peer);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	if ((e->pid = fork()) == -1)
		return -1;
	if (e->pid == 0) {
		int fd;

		tl_die_with_parent(parent);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600))
		    >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(prog, "etcd", "--name", "t", "--data-dir", data,
		    "--listen-client-urls", client,
		    "--advertise-client-urls", client,
		    "--listen-peer-urls", peer,
		    "--initial-advertise-peer-urls", peer,
		    "--initial-cluster", cluster,
		    "--log-level", "warn", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	for (end = tl_now() + ETCD_WAIT_S; tl_now() < end; tl_sleep(0.05)) {
		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			fprintf(stderr, "etcd exited (status %#x); see %s\n",
			    status, log);
			e->pid = 0;
			return -1;
		}
		/* Ready when it serves a read through raft's leader. */
		if (tl_etcd_post(e, "/v3/kv/range", "{\"key\":\"AA==\"}", out,
		    sizeof(out)) == 200)
			return 0;
	}
	fprintf(stderr, "etcd did not answer on %s; see %s\n", e->url, log);
	tl_etcd_stop(e);
	return -1;
}

void
tl_etcd_signal(struct tl_etcd *e, int sig)
{
	ck_assert_int_gt(e->pid, 0);
	ck_assert_int_eq(kill(e->pid, sig), 0);
}

void
tl_etcd_stop(struct tl_etcd *e)
{
	int status;

	if (e->pid <= 0)
		return;
	kill(e->pid, SIGKILL);
	waitpid(e->pid, &status, 0);
	e->pid = 0;
}

const char *
tl_etcdctl_prog(void)
{
	const char *p = getenv("ETCDCTL");

	if (p == NULL || *p == '\0')
		p = TL_ETCDCTL;
	if (*p == '\0' || access(p, X_OK) != 0)
		return NULL;
	return p;
}

pid_t
tl_etcdctl_lock(const struct tl_etcd *e, const char *name, int *out)
{
	const char *prog = tl_etcdctl_prog();
	pid_t parent = getpid(), pid;
	int fds[2];

	ck_assert_ptr_nonnull(prog);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		tl_die_with_parent(parent);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		setenv("ETCDCTL_API", "3", 1);
		execl(prog, "etcdctl", "--endpoints", e->url, "lock", name,
		    (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	*out = fds[0];
	return pid;
}
