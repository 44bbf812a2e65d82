/*
 * status.c: lockbroker status and break: who holds a lock, and removing
 * it (with --stale only when its holder is provably dead).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "cli.h"
#include "os.h"

/* user_name: see cli.h. */
const char *
user_name(lb_uid_t uid, char *buf, size_t size)
{
	return os_user_name(uid, buf, size);
}

/* iso_time: see cli.h. */
const char *
iso_time(double epoch, char *buf, size_t size)
{
	struct tm tm;
	time_t    t = (time_t)epoch;
	long      off, a;
	char      date[32];

	if (epoch <= 0 || os_local_time(t, &tm, &off) == -1 ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, size, "unknown");
		return buf;
	}
	a = off < 0 ? -off : off;
	snprintf(buf, size, "%s.%03d%c%02ld:%02ld", date,
	    (int)((epoch - (double)t) * 1000), off < 0 ? '-' : '+',
	    a / 3600, a / 60 % 60);
	return buf;
}

/* The word for a holder's liveness. */
static const char *
liveness_word(lb_liveness l)
{
	switch (l) {
	case LB_HOLDER_ALIVE:
		return "alive";
	case LB_HOLDER_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

/* Says in a few words who h is: "pid 42 on host (alive)". */
static const char *
holder_brief(const lb_holder *h, char *buf, size_t size)
{
	char pid[32];

	if (h->pid > 0)
		snprintf(pid, sizeof(pid), "pid %ld", (long)h->pid);
	else
		snprintf(pid, sizeof(pid), "an unknown pid");
	snprintf(buf, size, "%s on %s (%s)", pid,
	    h->host[0] != '\0' ? h->host : "an unknown host",
	    liveness_word(h->liveness));
	return buf;
}

/* Prints the holder h of lock on stdout, one "key: value" a line; the
 * mode when the broker said it, and for a lock held shared how many hold
 * it (the holder shown is the one its lock file names). */
static void
print_holder(lb_lock *lock, const lb_holder *h)
{
	char user[256], since[64];

	printf("%s: locked\n", lb_lock_path(lock));
	printf("  lock file: %s\n", lb_lock_file(lock));
	printf("  holder:    %s\n", liveness_word(h->liveness));
	printf("  host:      %s\n", h->host[0] != '\0' ? h->host : "unknown");
	if (h->pid > 0)
		printf("  pid:       %ld\n", (long)h->pid);
	else
		printf("  pid:       unknown\n");
	if (h->tid > 0)
		printf("  thread:    %ld\n", (long)h->tid);
	else
		printf("  thread:    none\n");
	if (h->uid != (lb_uid_t)-1)
		printf("  user:      %lu (%s)\n", (unsigned long)h->uid,
		    user_name(h->uid, user, sizeof(user)));
	else
		printf("  user:      unknown\n");
	printf("  since:     %s\n", iso_time(h->since, since, sizeof(since)));
	printf("  unique:    %s\n", h->unique_name[0] != '\0' ?
	    h->unique_name : "unknown");
	if (h->broker) {
		printf("  broker:    %s\n", h->token != 0 ? "granted by the "
		    "broker" : "held outside the broker");
		if (h->token != 0)
			printf("  token:     %llu\n",
			    (unsigned long long)h->token);
		printf("  waiters:   %u\n", h->waiters);
		if (h->holders != 0)
			printf("  mode:      %s\n", h->shared ? "shared" :
			    "exclusive");
		if (h->holders != 0 && h->shared)
			printf("  holders:   %u (the holder above is the one "
			    "the lock file names)\n", h->holders);
		if (h->unclaimed)
			printf("  unclaimed: held for its process, whose "
			    "connection ended with the previous daemon, until "
			    "it claims it back or exits\n");
	} else
		printf("  broker:    not asked (in-process view)\n");
}

/* Whether cluster lock c is held by a key in etcd that is not this
 * daemon's: one holds (its revision known) while this daemon's side
 * neither holds nor is taking or giving up its key. */
static int
held_elsewhere(const lb_cluster *c)
{
	return c->revision != 0 && strcmp(c->state, "held") != 0 &&
	    strcmp(c->state, "taking") != 0 &&
	    strcmp(c->state, "releasing") != 0;
}

/* Prints cluster lock c's side in etcd (lb_get_cluster) on stdout, one
 * "key: value" a line, after its local holder. */
static void
print_cluster(const lb_cluster *c)
{
	printf("  cluster:   %s\n", c->state);
	if (c->key[0] != '\0')
		printf("  etcd key:  %s\n", c->key);
	if (c->error[0] != '\0') {
		printf("  etcd:      %s\n", c->error);
		return;
	}
	if (c->revision != 0) {
		printf("  etcd holder: %s\n", c->holder[0] != '\0' ?
		    c->holder : "(not told)");
		printf("  revision:  %llu\n", (unsigned long long)c->revision);
	} else
		printf("  etcd holder: none\n");
	printf("  other hosts waiting: %u\n", c->waiters);
}

/*
 * status: prints whether the lock is held and by whom; for a cluster lock
 * also its side in etcd, where held by another host counts as held, and
 * free here while etcd (or the daemon) cannot be asked, as not known.
 * Returns 0 when locked, EXIT_NOT_LOCKED when not, EX_UNAVAILABLE when it
 * cannot tell.
 */
int
cmd_status(const struct opts *o)
{
	lb_holder  h;
	lb_cluster c;
	lb_lock   *lock;
	int        r, cluster = 0;

	if ((lock = open_lock(o, 0, &r)) == NULL)
		goto out;
	if ((r = lb_get_holder(lock, &h)) >= 0)
		cluster = lb_get_cluster(lock, &c) == 1;
	if (r < 0) {
		complain_lock(lock, "read the lock on", r);
		r = EX_UNAVAILABLE;
	} else if (r == 0 && cluster && held_elsewhere(&c)) {
		printf("%s: locked by another host\n", o->path);
		print_cluster(&c);
		r = 0;
	} else if (r == 0 && cluster && c.error[0] != '\0') {
		printf("%s: free on this host; whether another host "
		    "holds it cannot be told\n", o->path);
		print_cluster(&c);
		r = EX_UNAVAILABLE;
	} else if (r == 0) {
		printf("%s: not locked\n", o->path);
		if (cluster)
			print_cluster(&c);
		r = EXIT_NOT_LOCKED;
	} else {
		print_holder(lock, &h);
		if (cluster)
			print_cluster(&c);
		r = 0;
	}
out:
	lb_lock_free(lock);
	return r;
}

/*
 * Breaks the lock of a holder judged dead, safely: an acquire with
 * LB_BREAK_STALE, which judges again under the library's breakers' lock
 * and removes only that very artefact, then a release.  (Breaking after
 * our own judgement could remove the lock of someone who took it in
 * between.)  Returns 0 when the lock is free now, EXIT_REFUSED when
 * someone live holds it, or EX_UNAVAILABLE.
 */
static int
break_stale(lb_lock *lock)
{
	int r;

	if ((r = lb_acquire(lock, 0)) == 0) {
		if ((r = lb_release(lock)) != 0) {
			complain_lock(lock, "release", r);
			r = EX_UNAVAILABLE;
		}
	} else if (r == LB_EALREADY) {
		complain("not breaking %s: it is held by a live owner now",
		    lb_lock_path(lock));
		r = EXIT_REFUSED;
	} else {
		complain_lock(lock, "break the stale lock on", r);
		r = EX_UNAVAILABLE;
	}
	return r;
}

/*
 * break: removes the lock whoever holds it, or with --stale only when its
 * holder is provably dead.  Says what it did on stdout.  Returns 0 when the
 * lock is free afterwards, EXIT_REFUSED when --stale and the holder is not
 * dead, EX_UNAVAILABLE when it cannot read or remove the lock.
 */
int
cmd_break(const struct opts *o)
{
	lb_holder h;
	lb_lock  *lock;
	char      who[512];
	int       r;

	if ((lock = open_lock(o, o->stale ? LB_BREAK_STALE : 0, &r)) == NULL)
		goto out;
	if ((r = lb_get_holder(lock, &h)) < 0) {
		complain_lock(lock, "read the lock on", r);
		r = EX_UNAVAILABLE;
		goto out;
	}
	if (r == 0) {
		printf("%s: not locked, nothing to break\n", o->path);
		goto out;
	}
	holder_brief(&h, who, sizeof(who));
	if (o->stale && h.liveness != LB_HOLDER_DEAD) {
		complain("not breaking %s: its holder, %s, is not provably "
		    "dead", o->path, who);
		r = EXIT_REFUSED;
		goto out;
	}
	if (o->stale)
		r = break_stale(lock);
	else if ((r = lb_break_lock(lock)) != 0) {
		complain_lock(lock, "break the lock on", r);
		r = EX_UNAVAILABLE;
	}
	if (r == 0)
		printf("%s: broke the lock held by %s\n", o->path, who);
out:
	lb_lock_free(lock);
	return r;
}

