/*
 * list.c: lb_list: every lock the broker knows, from one LIST request
 * (docs/PROTOCOL.md) on a connection of its own, each ITEM passed to the
 * caller as an lb_list_entry while the reply is read.  A version-2
 * session's LIST sends one ITEM per holder of a lock held shared, each
 * with its mode, and so does lb_list pass them (docs/SHARED.md).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockbroker.h"
#include "lockfs.h"
#include "protocol.h"
#include "wire.h"
#include "broker.h"

/* struct lb_list_entry as version 0.2 had it: the fields added since
 * took their room from reserved[], and the size must not change. */
struct lb_list_entry_v0_2 {
	const char *path;
	unsigned    method;
	unsigned    known;
	pid_t       pid;
	pid_t       tid;
	lb_uid_t    uid;
	const char *host;
	double      since;
	uint64_t    token;
	unsigned    waiters;
	int         releasing;
	int         unclaimed;
	int         reserved[7];
};
_Static_assert(sizeof(lb_list_entry) == sizeof(struct lb_list_entry_v0_2),
    "struct lb_list_entry changed size");
_Static_assert(offsetof(lb_list_entry, shared) ==
    offsetof(struct lb_list_entry_v0_2, reserved),
    "struct lb_list_entry's new fields must start in the old reserved room");

/* The answer to LIST (the daemon sends it as the client reads it). */
#define LIST_WAIT_S 30.0

/* One listing: the caller's callback, and whether it stopped. */
struct listing {
	int  (*fn)(const lb_list_entry *, void *);
	void  *arg;
	int    stopped;
};

/* Whether s is a time as the protocol writes it: DIGITS[.DIGITS]. */
static int
is_time_text(const char *s)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0)
		return 0;
	if (s[n] == '\0')
		return 1;
	return s[n] == '.' && s[n + 1] != '\0' &&
	    s[n + 1 + strspn(s + n + 1, "0123456789")] == '\0';
}

/* The LB_CLUSTER_* code of an ITEM's cluster_state (NULL: not a cluster
 * lock, 0); a state this library does not know is taken as none. */
static int
cluster_state(const char *name)
{
	static const char *const names[] = {
		"idle", "taking", "waiting", "held", "lost", "releasing"
	};
	int i;

	for (i = 0; name != NULL && i < 6; i++)
		if (strcmp(name, names[i]) == 0)
			return LB_CLUSTER_IDLE + i;
	return 0;
}

/*
 * lbw_call's ITEM callback: passes the lock of item m to the caller's
 * callback.  0 to go on; 1 when the callback stopped the listing.  An
 * item of a method this library does not know is left out; a mode other
 * than "shared" or "exclusive" is left unknown.
 */
static int
item_pass(const struct lbp_msg *m, void *arg)
{
	struct listing *l = arg;
	lb_list_entry   e;
	const char     *since = lbp_get(m, "since");
	const char     *mode = lbp_get(m, "mode");
	uint64_t        v;

	memset(&e, 0, sizeof(e));
	e.path = lbp_get(m, "path");
	if (e.path == NULL || lbp_get(m, "method") == NULL ||
	    lockfs_method_parse(lbp_get(m, "method"), &e.method) != 0)
		return 0;
	if (lbp_get_u64(m, "holder_pid", &v) == 0 && v <= INT32_MAX) {
		e.pid = (pid_t)v;
		e.known |= LB_LIST_PID;
	}
	if (lbp_get_u64(m, "holder_tid", &v) == 0 && v <= INT32_MAX) {
		e.tid = (pid_t)v;
		e.known |= LB_LIST_TID;
	}
	if (lbp_get_u64(m, "holder_uid", &v) == 0 && v <= UINT32_MAX) {
		e.uid = (uid_t)v;
		e.known |= LB_LIST_UID;
	}
	if ((e.host = lbp_get(m, "host")) != NULL)
		e.known |= LB_LIST_HOST;
	if (since != NULL && is_time_text(since) &&
	    lbp_get_timeout(m, "since", &e.since) == 0 && !isinf(e.since))
		e.known |= LB_LIST_SINCE;
	else
		e.since = 0;
	if (lbp_get_u64(m, "token", &e.token) == 0)
		e.known |= LB_LIST_TOKEN;
	else
		e.token = 0;
	if (lbp_get_u64(m, "waiters", &v) == 0 && v <= UINT32_MAX) {
		e.waiters = (unsigned)v;
		e.known |= LB_LIST_WAITERS;
	}
	e.releasing = lbp_get_u64(m, "releasing", &v) == 0 && v == 1;
	e.unclaimed = lbp_get_u64(m, "unclaimed", &v) == 0 && v == 1;
	if (mode != NULL && (strcmp(mode, "shared") == 0 ||
	    strcmp(mode, "exclusive") == 0)) {
		e.shared = strcmp(mode, "shared") == 0;
		e.known |= LB_LIST_MODE;
	}
	e.cluster = cluster_state(lbp_get(m, "cluster_state"));
	if (l->fn(&e, l->arg) != 0) {
		l->stopped = 1;
		return 1;
	}
	return 0;
}

/* lb_list: see lockbroker.h. */
int
lb_list(int (*fn)(const lb_list_entry *entry, void *arg), void *arg,
    lb_list_info *info, char *error, size_t error_size)
{
	struct listing   l = { fn, arg, 0 };
	struct lbw_conn *w = NULL;
	struct lbp_msg  *m = NULL;
	struct lbp_out   o;
	uint64_t         id = 2;
	char             why[1024], server[128] = "";
	int              r = 0;

	why[0] = '\0';
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (fn == NULL) {
		snprintf(why, sizeof(why), "no callback function (NULL)");
		r = LB_EINVAL;
		goto out;
	}
	if ((w = malloc(sizeof(*w))) == NULL ||
	    (m = malloc(sizeof(*m))) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		r = LB_ENOMEM;
		goto out;
	}
	w->fd = -1;
	if (lbw_dial(w, NULL, LB__CLIENT_NAME, LBW_ANSWER_WAIT_S, server,
	    sizeof(server), why, sizeof(why)) == -1) {
		if (info != NULL)
			snprintf(info->socket, sizeof(info->socket), "%s",
			    w->where);
		r = LB_ERROR;
		goto out;
	}
	if (info != NULL) {
		snprintf(info->socket, sizeof(info->socket), "%s", w->where);
		snprintf(info->server, sizeof(info->server), "%s", server);
	}
	lbp_begin(&o, LBP_MSG_LIST, 1, id);
	if (lbw_call(w, &o, id, lockfs_now() + LIST_WAIT_S, item_pass, &l, m,
	    why, sizeof(why)) == -1) {
		r = l.stopped ? 1 : LB_ERROR;
		goto out;
	}
	if (m->verb != LBP_MSG_OK) {
		snprintf(why, sizeof(why), "lockbroker daemon on %s: %s (%s)",
		    w->where, lbw_error(m), lbp_error_name(lbw_code(m)));
		r = LB_ERROR;
	}
out:
	if (r < 0 && error != NULL && error_size > 0)
		snprintf(error, error_size, "%s", why);
	if (w != NULL)
		lbw_close(w);
	free(w);
	free(m);
	return r;
}
