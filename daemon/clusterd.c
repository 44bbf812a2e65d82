/*
 * clusterd.c: the daemon's cluster side with etcd (clusterd.h): its etcd
 * client (etcdhttp.c) and its one lease (etcdlease.c), run from the
 * daemon's start to its stop, their events in the daemon's log, the
 * lease's state for a refused try, and the judgement of the previous
 * run's cluster holds; the locks' keys are the cohorts' (cohort.c).
 *
 * What the log says of the lease (etcdlease.c draws its states):
 *
 *   ADOPTED  notice: the previous run's lease (its id kept in the state
 *            database) kept alive: etcd still had it; GONE: it had not
 *            (that run's holds lost at once)
 *   GRANTED  notice: the id (16 hex digits, as etcdctl lease list shows
 *            it) and the TTL etcd granted; "anew",
 *            with the lost lease's id (revoked, or etcd had it no
 *            more), after a loss
 *   TROUBLE  warning: the call, the endpoint and the reason (etcd's
 *            own text); the lease, if live, stays live to its deadline;
 *            the same trouble again (etcd down: every try) is logged
 *            once every TROUBLE_REPEAT_NS, its count with the next line
 *   LOST     notice: the id, the reason, and where its deadline lies
 *            from now; then the revoke and a new grant
 *   stop     notice: the revoke of the live or lost lease
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clusterd.h"
#include "daemon.h"
#include "etcdhttp.h"
#include "etcdlease.h"
#include "log.h"
#include "os.h"
#include "store.h"

/* The lease's id kept in the state database (lbd_store_meta_*), for the
 * next run to keep it alive rather than leave it to expire. */
#define LEASE_KEY "etcd_lease"

/* The live lease's deadline (the last acknowledged keepalive's send +
 * TTL) on this boot's clock (CLOCK_BOOTTIME, ns), and the boot (its id's
 * first 8 hex digits + 1): a next run that etcd does not answer judges
 * the holds it gives back by it, on the same boot. */
#define UNTIL_KEY "etcd_lease_until"
#define BOOT_KEY  "etcd_lease_boot"

struct lbd_clusterd {
	struct lbd            *d;
	struct lbd_etcd_http  *http;
	struct lbd_etcd_lease *lease;      /* NULL once closed */
	int64_t                lost;       /* the last lease lost, 0: none */
	int64_t                adopt;      /* the previous run's lease, kept
	                                      alive if etcd has it; 0: none */
	char                   trouble[512]; /* the last trouble since the
	                                      last grant ("": none) */
	char                   said[512];  /* the last trouble logged */
	uint64_t               said_at;    /* when (uv_hrtime) */
	unsigned               unsaid;     /* the same since, not logged */
	int                    curl_inited;
	const char            *endpoints[LBD_ETCD_ENDPOINTS_MAX];
	unsigned               nendpoints, endpoint; /* the keys' one */
	char                   ebuf[sizeof(((struct lbd_config *)0)->
	                           etcd_endpoints)];
	uv_timer_t             retry;      /* lbd_cohort_retry_soon's */
	uv_timer_t             adopting;   /* a TTL from the start, with a
	                                      previous run's lease */
	int                    retry_made;
	int                    judged;     /* the previous run's cluster
	                                      holds judged (kept or lost) */
	int64_t                boot;       /* BOOT_KEY's value here, or 0 */
	int                    by_deadline; /* adopting ends at the previous
	                                      lease's deadline, before a
	                                      TTL; 2: that deadline had
	                                      passed at the start */
};

/* This boot's clock, CLOCK_BOOTTIME (ns; it counts a suspend, as etcd's
 * clock does). */
static int64_t
boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This boot, as BOOT_KEY keeps it: 0 when it has no id. */
static int64_t
boot_key(void)
{
	char id[16];

	lockfs_os_boot_id(id, sizeof(id));
	return id[0] != '\0' ? strtoll(id, NULL, 16) + 1 : 0;
}

/* Keeps the live lease's deadline in the state database, on this boot's
 * clock, in the loop's iteration (committed with it): a run killed after
 * a later keepalive leaves an earlier deadline, never a later one. */
static void
deadline_keep(struct lbd_clusterd *cd)
{
	uint64_t deadline = lbd_etcd_lease_deadline(cd->lease);

	if (deadline == 0 || cd->boot == 0)
		return;
	(void)lbd_store_meta_set(cd->d, UNTIL_KEY, boot_ns() +
	    ((int64_t)deadline - (int64_t)uv_hrtime()));
	(void)lbd_store_meta_set(cd->d, BOOT_KEY, cd->boot);
}

/* A trouble the same as the last one logged is logged again after this
 * long at the soonest (each try fails alike while etcd is down: one a
 * TTL/3). */
#define TROUBLE_REPEAT_NS (300 * (uint64_t)1000000000)

/* Whether troubles a and b are the same but for their numbers (curl
 * says how long a connect took: "after 0 ms", "after 1 ms"). */
static int
same_trouble(const char *a, const char *b)
{
	for (;;) {
		while (*a >= '0' && *a <= '9')
			a++;
		while (*b >= '0' && *b <= '9')
			b++;
		if (*a != *b)
			return 0;
		if (*a == '\0')
			return 1;
		a++;
		b++;
	}
}

/* Logs trouble why, unless it is the last one logged (but for its
 * numbers), less than TROUBLE_REPEAT_NS ago: then it is counted, and the
 * count said with the next line logged. */
static void
trouble_log(struct lbd_clusterd *cd, const char *why)
{
	uint64_t now = uv_hrtime();

	if (same_trouble(why, cd->said) &&
	    now - cd->said_at < TROUBLE_REPEAT_NS) {
		cd->unsaid++;
		return;
	}
	if (cd->unsaid > 0)
		log_warn("etcd: %s (the last trouble, \"%s\", came %u more "
		    "times, not logged)", why, cd->said, cd->unsaid);
	else
		log_warn("etcd: %s", why);
	snprintf(cd->said, sizeof(cd->said), "%s", why);
	cd->said_at = now;
	cd->unsaid = 0;
}

/* The lease's events, into the log and the refusal's state. */
static void
on_lease(void *arg, enum lbd_etcd_lease_event ev, int64_t id,
    const char *why)
{
	struct lbd_clusterd *cd = arg;
	uint64_t now, deadline;

	switch (ev) {
	case LBD_ETCD_LEASE_ADOPTED:
		log_notice("etcd lease %016" PRIx64 " of the previous run kept "
		    "(TTL %" PRId64 " s)", (uint64_t)id,
		    lbd_etcd_lease_ttl(cd->lease));
		cd->adopt = 0;
		cd->trouble[0] = '\0';
		cd->said[0] = '\0';
		cd->unsaid = 0;
		(void)lbd_store_meta_set(cd->d, LEASE_KEY, id);
		deadline_keep(cd);
		cd->judged = 1;
		lbd_cohorts_adopted(cd->d, id);
		break;
	case LBD_ETCD_LEASE_RENEWED:
		deadline_keep(cd);
		break;
	case LBD_ETCD_LEASE_GONE:
		/* etcd's word: that run's holds are lost now, not at the
		 * grant of a new lease (which may be refused meanwhile). */
		if (!cd->judged) {
			cd->judged = 1;
			lbd_cohorts_previous_lost(cd->d, id, "is gone");
		}
		break;
	case LBD_ETCD_LEASE_GRANTED:
		if (cd->adopt != 0)
			log_notice("etcd lease %016" PRIx64 " granted (TTL %"
			    PRId64 " s); the previous run's lease %016" PRIx64
			    " is gone", (uint64_t)id,
			    lbd_etcd_lease_ttl(cd->lease),
			    (uint64_t)cd->adopt);
		else if (cd->lost != 0)
			log_notice("etcd lease %016" PRIx64 " granted anew (TTL "
			    "%" PRId64 " s); the lost lease %016" PRIx64 " is "
			    "revoked or gone", (uint64_t)id,
			    lbd_etcd_lease_ttl(cd->lease), (uint64_t)cd->lost);
		else
			log_notice("etcd lease %016" PRIx64 " granted (TTL %"
			    PRId64 " s)", (uint64_t)id,
			    lbd_etcd_lease_ttl(cd->lease));
		cd->trouble[0] = '\0';
		cd->said[0] = '\0';    /* a trouble after it is news */
		cd->unsaid = 0;
		if (!cd->judged) {      /* its holds, given back: lost */
			cd->judged = 1;
			lbd_cohorts_previous_lost(cd->d, cd->adopt, "is gone");
		}
		cd->adopt = 0;
		(void)lbd_store_meta_set(cd->d, LEASE_KEY, id);
		deadline_keep(cd);
		lbd_cohorts_lease(cd->d, 0);
		break;
	case LBD_ETCD_LEASE_TROUBLE:
		trouble_log(cd, why);
		snprintf(cd->trouble, sizeof(cd->trouble), "%s", why);
		break;
	case LBD_ETCD_LEASE_LOST:
		now = uv_hrtime();
		deadline = lbd_etcd_lease_lost_deadline(cd->lease);
		log_notice("etcd lease %016" PRIx64 " lost, its deadline "
		    "%.1f s %s: %s; revoking it, then asking for a new one",
		    (uint64_t)id, (deadline > now ? deadline - now :
		    now - deadline) / 1e9, deadline > now ? "from now" :
		    "ago", why);
		cd->lost = id;
		snprintf(cd->trouble, sizeof(cd->trouble), "%s", why);
		(void)lbd_store_meta_set(cd->d, LEASE_KEY, 0);
		(void)lbd_store_meta_set(cd->d, UNTIL_KEY, 0);
		lbd_cohorts_lease(cd->d, id);   /* holders told */
		break;
	}
}

/* Splits etcd_endpoints (checked by settings.c: 1 to
 * LBD_ETCD_ENDPOINTS_MAX, comma-separated) in buf, into e; their count. */
static unsigned
endpoints_split(const char *list, char *buf, size_t size, const char **e)
{
	unsigned n = 0;
	char *p, *save = NULL;

	snprintf(buf, size, "%s", list);
	for (p = strtok_r(buf, ",", &save); p != NULL &&
	    n < LBD_ETCD_ENDPOINTS_MAX; p = strtok_r(NULL, ",", &save))
		e[n++] = p;
	return n;
}

/* At the start's first turn without a previous run's lease, or, with
 * one that is not kept alive by now (etcd has not answered: it may have
 * expired), at its deadline as the previous run kept it (less the
 * margin the live lease is declared lost by), or a TTL after the start
 * when that comes first or the deadline is not known: that run's
 * cluster locks are gone with it, and their holds given back are
 * lost. */
static void
on_adopting(uv_timer_t *t)
{
	struct lbd_clusterd *cd = t->data;

	if (cd->judged)
		return;
	cd->judged = 1;
	lbd_cohorts_previous_lost(cd->d, cd->adopt, cd->adopt == 0 ? NULL :
	    cd->by_deadline == 2 ? "had passed its deadline (the previous "
	    "run's last acknowledged keepalive + the TTL) at this start" :
	    cd->by_deadline ? "could not be asked of etcd before its deadline "
	    "(the previous run's last acknowledged keepalive + the TTL)" :
	    "could not be asked of etcd within a TTL of the start");
}

/* How long (ms) the previous run's lease may be waited for, unanswered,
 * from now: a TTL, or less when that run kept its deadline on this boot
 * (by_deadline set); logged. */
static uint64_t
adopt_wait_ms(struct lbd_clusterd *cd)
{
	int64_t  until = lbd_store_meta_get(cd->d, UNTIL_KEY), left;
	int64_t  margin = LBD_ETCD_LOST_MARGIN_MS;
	uint64_t ms = (uint64_t)cd->d->cfg.etcd_ttl * 1000;

	if (margin > (int64_t)cd->d->cfg.etcd_ttl * 100)
		margin = (int64_t)cd->d->cfg.etcd_ttl * 100;
	if (until == 0 || cd->boot == 0 ||
	    lbd_store_meta_get(cd->d, BOOT_KEY) != cd->boot)
		return ms;
	left = until - boot_ns();
	if (left - margin * 1000000 < (int64_t)ms * 1000000) {
		cd->by_deadline = left > 0 ? 1 : 2;
		ms = left > margin * 1000000 ? (uint64_t)(left - margin *
		    1000000) / 1000000 : 0;
	}
	log_info("etcd: the previous run's lease %016" PRIx64 ": its "
	    "deadline %.1f s %s (its last acknowledged keepalive + the TTL)",
	    (uint64_t)cd->adopt, (double)(left < 0 ? -left : left) / 1e9,
	    left < 0 ? "ago" : "from now");
	return ms;
}

int
lbd_clusterd_start(struct lbd *d, char *why, size_t size)
{
	struct lbd_clusterd *cd = NULL;
	uint64_t             ms;

	if (d->cfg.cluster_dir[0] == '\0' || d->cfg.etcd_endpoints[0] == '\0')
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		snprintf(why, size, "the etcd client: out of memory");
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		snprintf(why, size, "the etcd client: curl's global init "
		    "failed");
		goto fail;
	}
	cd->curl_inited = 1;
	cd->d = d;
	cd->adopt = lbd_store_meta_get(d, LEASE_KEY);
	cd->boot = boot_key();
	cd->nendpoints = endpoints_split(d->cfg.etcd_endpoints, cd->ebuf,
	    sizeof(cd->ebuf), cd->endpoints);
	if ((cd->http = lbd_etcd_http_new(d->loop, why, size)) == NULL ||
	    (cd->lease = lbd_etcd_lease_new(d->loop, cd->http,
	    cd->endpoints, cd->nendpoints,
	    (int64_t)d->cfg.etcd_ttl, cd->adopt, on_lease, cd, why,
	    size)) == NULL)
		goto fail;
	if (cd->adopt != 0)
		log_notice("etcd: asking %s to keep the previous run's lease "
		    "%016" PRIx64 ", else for a lease of %u s (cluster locks "
		    "under %s)", d->cfg.etcd_endpoints, (uint64_t)cd->adopt,
		    d->cfg.etcd_ttl, d->cfg.cluster_dir);
	else
		log_notice("etcd: asking %s for a lease of %u s (cluster "
		    "locks under %s)", d->cfg.etcd_endpoints,
		    d->cfg.etcd_ttl, d->cfg.cluster_dir);
	uv_timer_init(d->loop, &cd->retry);
	uv_timer_init(d->loop, &cd->adopting);
	cd->retry_made = 1;
	/* The previous run's lease revoked (a clean stop) or lost: its
	 * cluster locks' holds given back are lost, from the loop's first
	 * turn; kept: judged once etcd says, or at its deadline, or a TTL
	 * from now. */
	cd->adopting.data = cd;
	ms = cd->adopt != 0 ? adopt_wait_ms(cd) : 0;
	if (cd->adopt != 0)
		lbd_etcd_lease_adopt_by(cd->lease, uv_hrtime() + ms *
		    1000000);
	uv_timer_start(&cd->adopting, on_adopting, ms, 0);
	d->cluster = cd;
	return 0;
fail:
	if (cd != NULL) {
		lbd_etcd_http_close(cd->http);  /* its handles close through
		                                   the loop's next run */
		if (cd->curl_inited)
			curl_global_cleanup();
	}
	free(cd);
	return -1;
}

/* The lease is closed (its revoke over, whatever its outcome): the client
 * goes too, its handles closed through the loop. */
static void
lease_closed(void *arg)
{
	struct lbd_clusterd *cd = arg;

	log_debug("etcd lease closed");
	lbd_etcd_http_close(cd->http);
	cd->http = NULL;
}

void
lbd_clusterd_stop(struct lbd *d)
{
	struct lbd_clusterd *cd = d->cluster;
	int64_t id;

	if (cd == NULL || cd->lease == NULL)
		return;
	if ((id = lbd_etcd_lease_id(cd->lease)) != 0)
		log_notice("etcd lease %016" PRIx64 ": revoking it",
		    (uint64_t)id);
	(void)lbd_store_meta_set(d, LEASE_KEY, 0);      /* nothing to keep */
	lbd_cohorts_stop(d);
	lbd_etcd_lease_close(cd->lease, lease_closed, cd);
	cd->lease = NULL;
	if (cd->retry_made) {
		uv_close((uv_handle_t *)&cd->retry, NULL);
		uv_close((uv_handle_t *)&cd->adopting, NULL);
	}
	cd->retry_made = 0;
}

int64_t
lbd_clusterd_lease(const struct lbd *d)
{
	const struct lbd_clusterd *cd = d->cluster;

	return cd != NULL && cd->lease != NULL ?
	    lbd_etcd_lease_id(cd->lease) : 0;
}

struct lbd_etcd_http *
lbd_clusterd_http(const struct lbd *d)
{
	return d->cluster->http;
}

const char *
lbd_clusterd_endpoint(const struct lbd *d)
{
	const struct lbd_clusterd *cd = d->cluster;
	const char *e;
	unsigned    i = 0;

	/* The lease's (it moves to the next member when one does not
	 * answer), and one further for each lock key's call that failed
	 * since (lbd_cohort_retry_soon). */
	if (cd->lease != NULL) {
		e = lbd_etcd_lease_endpoint(cd->lease);
		while (i < cd->nendpoints && strcmp(cd->endpoints[i], e) != 0)
			i++;
	}
	return cd->endpoints[(i + cd->endpoint) % cd->nendpoints];
}

static void
on_retry(uv_timer_t *t)
{
	struct lbd_clusterd *cd = t->data;

	lbd_cohorts_retry(cd->d);
}

void
lbd_cohort_retry_soon(struct lbd *d)
{
	struct lbd_clusterd *cd = d->cluster;

	if (cd == NULL || !cd->retry_made || uv_is_active(
	    (uv_handle_t *)&cd->retry))
		return;
	cd->endpoint++;         /* the next endpoint for the next take */
	cd->retry.data = cd;
	uv_timer_start(&cd->retry, on_retry, 1000, 0);
}

void
lbd_clusterd_free(struct lbd *d)
{
	struct lbd_clusterd *cd = d->cluster;

	if (cd == NULL)
		return;
	/* The loop has ended: the lease is closed, and the client with it. */
	lbd_cohorts_free(d);
	if (cd->curl_inited)
		curl_global_cleanup();
	free(cd);
	d->cluster = NULL;
}

const char *
lbd_clusterd_refusal(const struct lbd *d, char *buf, size_t size)
{
	const struct lbd_clusterd *cd = d->cluster;
	int64_t id;

	if (cd == NULL)
		return "cluster locks are not served by this lockbrokerd: its "
		    "settings give no etcd_endpoints, so it has no etcd lease";
	if (cd->lease == NULL)
		return "cluster locks are not served by this lockbrokerd: it "
		    "is stopping, its etcd lease closed";
	if ((id = lbd_etcd_lease_id(cd->lease)) != 0)
		snprintf(buf, size, "its etcd lease is live (id %016" PRIx64
		    ")", (uint64_t)id);
	else if (cd->lost != 0)
		snprintf(buf, size, "it has no etcd lease since lease %016"
		    PRIx64 " was lost: %s", (uint64_t)cd->lost, cd->trouble);
	else
		snprintf(buf, size, "it has no etcd lease yet: %s",
		    cd->trouble[0] != '\0' ? cd->trouble : "its grant is "
		    "in flight");
	return buf;
}
