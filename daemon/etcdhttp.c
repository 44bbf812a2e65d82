/*
 * etcdhttp.c: HTTP POST requests on the daemon's libuv loop through
 * libcurl's multi-socket interface, in the pattern of curl's multi-uv.c
 * example:
 *
 *   curl asks to watch a socket  -> socket_cb: a uv_poll_t for it
 *                                   (started, changed, or stopped and
 *                                   closed before curl closes the socket)
 *   curl asks for a timeout      -> timer_cb: the one uv_timer_t, started
 *                                   for exactly what curl asks (0 ms runs
 *                                   in the loop's next timers phase: not
 *                                   rounded up to 1 ms), or stopped
 *   a socket is ready, the timer -> curl_multi_socket_action, then the
 *   expires                         finished transfers' callbacks
 *                                   (dispatch)
 *
 * curl's callbacks never call back into curl, and a request's callback is
 * never called from within curl: only from dispatch, after
 * curl_multi_socket_action has returned, so a callback may start, cancel
 * and even close.  A close during dispatch is finished when dispatch
 * ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "etcdhttp.h"

/* The watch of one socket curl uses (curl_multi_assign's pointer). */
struct sock {
	uv_poll_t             poll;
	curl_socket_t         fd;
	struct lbd_etcd_http *h;
	struct sock          *next, **prevp;
};

struct lbd_etcd_req {
	struct lbd_etcd_http *h;
	CURL                 *easy;
	struct curl_slist    *headers;
	lbd_etcd_http_cb     *cb;
	lbd_etcd_line_cb     *line_cb;     /* a stream's: each line */
	void                 *arg;
	char                 *buf;         /* the reply so far */
	size_t                len, cap, max;
	int                   too_long;    /* the reply passed max */
	char                  errbuf[CURL_ERROR_SIZE];
	struct lbd_etcd_req  *next, **prevp;
};

struct lbd_etcd_http {
	uv_loop_t           *loop;
	CURLM               *multi;
	uv_timer_t          *timer;        /* freed by its close callback */
	struct sock         *socks;
	struct lbd_etcd_req *reqs;
	unsigned             pending;
	int                  dispatching;  /* inside dispatch */
	int                  closed;       /* closed during dispatch */
};

static void timer_closed(uv_handle_t *t) { free(t); }
static void sock_closed(uv_handle_t *p) { free(p->data); }

/* Stops watching s and frees it once its handle has closed. */
static void
sock_drop(struct sock *s)
{
	*s->prevp = s->next;
	if (s->next != NULL)
		s->next->prevp = s->prevp;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

/* Takes req out of curl and the list; its reply and memory stay. */
static void
req_detach(struct lbd_etcd_req *req)
{
	struct lbd_etcd_http *h = req->h;

	*req->prevp = req->next;
	if (req->next != NULL)
		req->next->prevp = req->prevp;
	h->pending--;
	curl_multi_remove_handle(h->multi, req->easy);
	curl_easy_cleanup(req->easy);
	req->easy = NULL;
	curl_slist_free_all(req->headers);
	req->headers = NULL;
}

/* Ends req: out of curl and the list, its memory freed. */
static void
req_free(struct lbd_etcd_req *req)
{
	req_detach(req);
	free(req->buf);
	free(req);
}

/* The client's memory, once no request and no dispatch is left. */
static void
http_free(struct lbd_etcd_http *h)
{
	while (h->reqs != NULL)
		req_free(h->reqs);
	/* curl closes its cached connections here, telling socket_cb. */
	curl_multi_cleanup(h->multi);
	while (h->socks != NULL)
		sock_drop(h->socks);
	uv_timer_stop(h->timer);
	uv_close((uv_handle_t *)h->timer, timer_closed);
	free(h);
}

/*
 * Hands the streams' complete lines to their callbacks, one at a time
 * (a callback may cancel any request, or close the client: the list is
 * walked again from its head after each).
 */
static void
deliver_lines(struct lbd_etcd_http *h)
{
	struct lbd_etcd_req *req;
	char *nl, *line;
	size_t n;

again:
	for (req = h->reqs; req != NULL && !h->closed; req = req->next) {
		if (req->line_cb == NULL ||
		    (nl = memchr(req->buf, '\n', req->len)) == NULL)
			continue;
		n = (size_t)(nl - req->buf);
		if ((line = malloc(n + 1)) == NULL)
			return;         /* delivered at the next turn */
		memcpy(line, req->buf, n);
		line[n] = '\0';
		memmove(req->buf, nl + 1, req->len - n - 1);
		req->len -= n + 1;
		req->line_cb(req->arg, line, n);
		free(line);
		goto again;
	}
}

/* Calls the callbacks of the streams' lines, then of the transfers curl
 * has finished. */
static void
dispatch(struct lbd_etcd_http *h)
{
	CURLMsg *m;
	int left;

	h->dispatching++;
	deliver_lines(h);
	while (!h->closed && (m = curl_multi_info_read(h->multi, &left))) {
		struct lbd_etcd_req *req = NULL;
		long status = 0;
		CURLcode res;
		char why[CURL_ERROR_SIZE + 64];

		if (m->msg != CURLMSG_DONE)
			continue;
		res = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		    (char **)&req);
		if (req == NULL)
			continue;
		if (res == CURLE_OK)
			curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE,
			    &status);
		/* Gone before its callback, which may close the client. */
		req_detach(req);
		if (res == CURLE_OK) {
			req->buf[req->len] = '\0';
			req->cb(req->arg, 1, status, req->buf, req->len, NULL);
		} else {
			if (req->too_long)
				snprintf(why, sizeof(why),
				    "the reply is longer than %zu bytes",
				    req->max);
			else
				snprintf(why, sizeof(why), "%s",
				    req->errbuf[0] != '\0' ? req->errbuf :
				    curl_easy_strerror(res));
			req->cb(req->arg, 0, 0, NULL, 0, why);
		}
		free(req->buf);
		free(req);
	}
	if (--h->dispatching == 0 && h->closed)
		http_free(h);
}

static void
on_timer(uv_timer_t *t)
{
	struct lbd_etcd_http *h = t->data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	dispatch(h);
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
	struct sock *s = p->data;
	struct lbd_etcd_http *h = s->h;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	dispatch(h);
}

/* curl's CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 runs it in the
 * loop's next timers phase (never from here: curl may not be entered
 * from its own callback). */
static int
timer_cb(CURLM *multi, long ms, void *arg)
{
	struct lbd_etcd_http *h = arg;

	(void)multi;
	if (ms < 0)
		uv_timer_stop(h->timer);
	else
		uv_timer_start(h->timer, on_timer, (uint64_t)ms, 0);
	return 0;
}

/* curl's CURLMOPT_SOCKETFUNCTION: watches s for what curl asks, or stops
 * watching it before curl closes it.  -1 (curl then fails the transfer)
 * when it cannot be watched. */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct lbd_etcd_http *h = arg;
	struct sock *s = sockp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(h->multi, fd, NULL);
			sock_drop(s);
		}
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->fd = fd;
		s->h = h;
		s->poll.data = s;
		s->next = h->socks;
		if (s->next != NULL)
			s->next->prevp = &s->next;
		s->prevp = &h->socks;
		h->socks = s;
		curl_multi_assign(h->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

/* curl's CURLOPT_WRITEFUNCTION: the reply's bytes, up to its bound. */
static size_t
write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct lbd_etcd_req *req = arg;
	size_t len = size * n;

	if (len > req->max - req->len) {
		req->too_long = 1;
		return 0;
	}
	if (req->len + len + 1 > req->cap) {
		size_t cap = req->cap * 2;
		char *p;

		while (cap < req->len + len + 1)
			cap *= 2;
		if (cap > req->max + 1)
			cap = req->max + 1;
		if ((p = realloc(req->buf, cap)) == NULL)
			return 0;
		req->buf = p;
		req->cap = cap;
	}
	memcpy(req->buf + req->len, data, len);
	req->len += len;
	return len;
}

struct lbd_etcd_http *
lbd_etcd_http_new(uv_loop_t *loop, char *why, size_t size)
{
	struct lbd_etcd_http *h = NULL;
	const char *fail = "out of memory";

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->timer = malloc(sizeof(*h->timer))) == NULL)
		goto out;
	h->loop = loop;
	if ((h->multi = curl_multi_init()) == NULL) {
		fail = "curl_multi_init failed";
		goto out;
	}
	uv_timer_init(loop, h->timer);
	h->timer->data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
out:
	snprintf(why, size, "the HTTP client for etcd: %s", fail);
	if (h != NULL)
		free(h->timer);
	free(h);
	return NULL;
}

/* Starts a POST: a whole reply (line_cb NULL) within timeout_ms, or a
 * stream of lines (timeout_ms 0: none once connected). */
static struct lbd_etcd_req *
start(struct lbd_etcd_http *h, const char *url, const char *body,
    long timeout_ms, long connect_ms, size_t max_reply,
    lbd_etcd_line_cb *line_cb, lbd_etcd_http_cb *cb, void *arg, char *why,
    size_t size)
{
	struct lbd_etcd_req *req = NULL;
	struct curl_slist *l;
	CURL *e;
	int ok = 1;

	if ((req = calloc(1, sizeof(*req))) == NULL ||
	    (req->buf = malloc(256)) == NULL ||
	    (req->easy = curl_easy_init()) == NULL)
		goto out;
	req->cap = 256;
	req->max = max_reply;
	req->h = h;
	req->cb = cb;
	req->line_cb = line_cb;
	req->arg = arg;
	/* "Expect:" off: no 100-continue round trip for a long body. */
	if ((l = curl_slist_append(NULL, "Content-Type: application/json"))
	    == NULL)
		goto out;
	req->headers = l;
	if ((l = curl_slist_append(req->headers, "Expect:")) == NULL)
		goto out;
	req->headers = l;
	e = req->easy;
	ok &= curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
	    == CURLE_OK;
#else
	ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK;
#endif
	ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers)
	    == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms)
	    == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb)
	    == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, req) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf)
	    == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)req) == CURLE_OK;
	if (!ok) {
		snprintf(why, size, "POST %s: curl refused an option", url);
		goto fail;
	}
	req->next = h->reqs;
	if (req->next != NULL)
		req->next->prevp = &req->next;
	req->prevp = &h->reqs;
	h->reqs = req;
	h->pending++;
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		snprintf(why, size, "POST %s: curl refused the request", url);
		req_free(req);
		return NULL;
	}
	return req;
out:
	snprintf(why, size, "POST %s: out of memory", url);
fail:
	if (req != NULL) {
		if (req->easy != NULL)
			curl_easy_cleanup(req->easy);
		curl_slist_free_all(req->headers);
		free(req->buf);
	}
	free(req);
	return NULL;
}

struct lbd_etcd_req *
lbd_etcd_http_post(struct lbd_etcd_http *h, const char *url,
    const char *body, long timeout_ms, size_t max_reply,
    lbd_etcd_http_cb *cb, void *arg, char *why, size_t size)
{
	return start(h, url, body, timeout_ms, timeout_ms, max_reply, NULL,
	    cb, arg, why, size);
}

struct lbd_etcd_req *
lbd_etcd_http_stream(struct lbd_etcd_http *h, const char *url,
    const char *body, long connect_ms, long life_ms, size_t max_line,
    lbd_etcd_line_cb *line_cb, lbd_etcd_http_cb *cb, void *arg, char *why,
    size_t size)
{
	return start(h, url, body, life_ms, connect_ms, max_line, line_cb, cb,
	    arg, why, size);
}

void
lbd_etcd_http_cancel(struct lbd_etcd_req *req)
{
	req_free(req);
}

unsigned
lbd_etcd_http_pending(const struct lbd_etcd_http *h)
{
	return h->pending;
}

void
lbd_etcd_http_close(struct lbd_etcd_http *h)
{
	if (h == NULL)
		return;
	if (h->dispatching > 0) {
		while (h->reqs != NULL)
			req_free(h->reqs);
		h->closed = 1;
		return;
	}
	http_free(h);
}
