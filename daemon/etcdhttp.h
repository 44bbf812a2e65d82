/*
 * etcdhttp.h: HTTP POST requests on the daemon's libuv loop, through
 * libcurl's multi-socket interface (docs/CLUSTER.md, "Talking to etcd").
 *
 * One client (struct lbd_etcd_http) per loop: a curl multi handle whose
 * sockets are uv_poll_t handles and whose timeout is one uv_timer_t.
 * Nothing here blocks: a request is started, and its callback is called
 * from the loop once, with the reply's body or the reason there is none.
 * Every request has a deadline (its timeout, connecting included) and a
 * bound on its reply's size: a server that stops answering, or answers
 * without end, costs a bounded time and memory.  The client knows
 * nothing of etcd: etcdapi.h builds the bodies and judges the replies.
 */
#ifndef LBD_ETCDHTTP_H
#define LBD_ETCDHTTP_H

#include <stddef.h>
#include <uv.h>

struct lbd_etcd_http;
struct lbd_etcd_req;

/*
 * A request's end.  ok is 1 when an HTTP reply came whole (whatever its
 * status: status is the HTTP status, body its bytes, len of them, NUL-
 * terminated, owned by the client and valid during the call only), and 0
 * when none did: why says what failed (the connection refused, the
 * timeout, a reply beyond its bound), status is 0, body NULL.  Called
 * from the loop, never from within lbd_etcd_http_post; the request is
 * gone when it is called, and the callback may start others.
 */
typedef void lbd_etcd_http_cb(void *arg, int ok, long status,
    const char *body, size_t len, const char *why);

/*
 * lbd_etcd_http_new: a client on loop.  Returns it, or NULL with why (size
 * bytes) filled.  curl_global_init must have been called (the daemon's
 * start, or the test's main).
 */
struct lbd_etcd_http *lbd_etcd_http_new(uv_loop_t *loop, char *why,
    size_t size);

/*
 * lbd_etcd_http_post: starts a POST of body (copied; JSON) to url, which
 * must end within timeout_ms milliseconds (connecting included), and
 * whose reply may be max_reply bytes at most.  cb(arg, ...) is called
 * once, from the loop, unless the request is canceled first.  Returns the
 * request (owned by the client; valid until its callback is called or it
 * is canceled), or NULL with why filled (out of memory, curl refused an
 * option); cb is then never called.
 */
struct lbd_etcd_req *lbd_etcd_http_post(struct lbd_etcd_http *h,
    const char *url, const char *body, long timeout_ms, size_t max_reply,
    lbd_etcd_http_cb *cb, void *arg, char *why, size_t size);

/*
 * A stream's line: each line of the reply (without its newline,
 * NUL-terminated, len bytes; valid during the call only) as it comes,
 * from the loop, never from within curl; the callback may cancel the
 * stream (its end callback is then never called), or start others.
 */
typedef void lbd_etcd_line_cb(void *arg, const char *line, size_t len);

/*
 * lbd_etcd_http_stream: starts a POST of body to url whose reply is a
 * stream of lines (etcd's watch), ended by the client after life_ms (0:
 * no end in time once connected), connecting within connect_ms, each
 * line max_line bytes at most (a longer one ends the stream).  line_cb is called for each line ended by
 * a newline, then cb once at the stream's end (ok 1 with the status and
 * what followed the last newline as its body: the server ended it; ok 0
 * with why) unless it is canceled.  Returns as lbd_etcd_http_post.
 */
struct lbd_etcd_req *lbd_etcd_http_stream(struct lbd_etcd_http *h,
    const char *url, const char *body, long connect_ms, long life_ms,
    size_t max_line,
    lbd_etcd_line_cb *line_cb, lbd_etcd_http_cb *cb, void *arg, char *why,
    size_t size);

/* lbd_etcd_http_cancel: ends req at once; its callback is never called. */
void lbd_etcd_http_cancel(struct lbd_etcd_req *req);

/* lbd_etcd_http_pending: how many requests have not ended. */
unsigned lbd_etcd_http_pending(const struct lbd_etcd_http *h);

/*
 * lbd_etcd_http_close: cancels every request (no callback is called) and
 * frees the client; its handles close through the loop, which must run
 * once more before it is closed.  h may be NULL.
 */
void lbd_etcd_http_close(struct lbd_etcd_http *h);

#endif
