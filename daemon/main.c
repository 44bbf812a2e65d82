/*
 * main.c: lockbrokerd's start-up: the command line, settings (defaults,
 * config file, command line; reloaded on SIGHUP), the default paths, the
 * log (stderr, or a file), the state directory judged (statedir.h) and
 * the state database made private, the listening socket (its own,
 * bound by listen.h, or one passed by systemd), the descriptor and
 * inotify budgets, privileges (creds.c), and signals (os.h says which,
 * and what each asks) and a service manager's stop (service.h) as loop
 * events.  The loop's iteration and the stop are loop.c's.  The
 * daemon's life (daemon_run) runs in the main thread, or, with
 * --service, in the service's thread (service.h).
 *
 * The daemon's life:
 *
 *   start: settings -> log (--log) -> supplementary groups dropped (as
 *          root: creds.c) -> state directory made and judged
 *          (statedir.h) -> a service's log (STATE.log) -> state database
 *          -> reconcile the previous run's holds -> the sign in
 *          cluster_dir for the library (clusterdir.h) -> the etcd
 *          client and lease, with cluster_dir and etcd_endpoints set
 *          (clusterd.h: their grant not waited for) -> listen ->
 *          READY=1 (a service: running)
 *   run:   each loop iteration: events (requests, timers, watches) ->
 *          commit -> replies out (loop.c)
 *   SIGHUP: reload the config file (limits, grace, polling, debug)
 *   SIGTERM/SIGINT (Windows: Ctrl-C, Ctrl-Break, the console's close; a
 *   service's stop or shutdown):
 *          STOPPING=1 -> stop accepting -> waiters get ESHUTDOWN
 *          -> replies flushed (for at most LBD_STOP_FLUSH_MS: a client that
 *          does not read loses the rest) -> connections closed, holds kept
 *          on disk and in the database for the next daemon, and the etcd
 *          lease revoked (one request's timeout at most) -> exit 0
 *          (loop.c, lbd_stop)
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clusterd.h"
#include "clusterdir.h"
#include "cohort.h"
#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "dirs.h"
#include "intents.h"
#include "listen.h"
#include "locktable.h"
#include "log.h"
#include "readers.h"
#include "loop.h"
#include "os.h"
#include "reconcile.h"
#include "service.h"
#include "settings.h"
#include "statedir.h"
#include "store.h"
#include "subuids.h"
#include "systemd.h"
#include "watch.h"

#ifndef LBD_SYSCONFDIR
#define LBD_SYSCONFDIR "/etc"
#endif
#define LBD_CONFIG_FILE LBD_SYSCONFDIR "/lockbroker/lockbrokerd.conf"

/* How long the sqlite method may wait in the loop for a database that
 * another process keeps busy (ms; any user who may read a lock database
 * can keep it busy for as long as it likes): a busy database then reads
 * as held (the waiter keeps waiting), a look (STATUS) or a BREAK fails
 * saying the database is locked, and a release or handoff leaves the
 * hold releasing, retried later (releasing.c). */
#define LBD_SQLITE_TRY_MS  1
#define LBD_SQLITE_STEP_MS 2

/* Descriptors kept free for the daemon's own work while connections take
 * the rest: a request opens a few at a time (a unique file, a directory to
 * lock or read, /proc/PID/stat, an sqlite lock database and its journal),
 * and inotify's is made at the first watch; and the sqlite connections
 * kept open (LBD_SQLITE_KEEP, half of these). */
#define LBD_FD_RESERVE 32

/* The sqlite method's connections the daemon keeps open between steps
 * (lockfs/sqlite.c, "Kept connections": each of one database and one
 * client's credentials, one descriptor each, taken from LBD_FD_RESERVE:
 * half of it, the other half left to a request's own opens), and how long
 * one may go unused before the timer (every LBD_SQLITE_PRUNE_MS) closes
 * it: a database deleted, or a file system its user wants to unmount, is
 * not held open for long. */
#define LBD_SQLITE_KEEP         (LBD_FD_RESERVE / 2)
#define LBD_SQLITE_KEEP_IDLE_MS 10000
#define LBD_SQLITE_PRUNE_MS     2000

/* The timer that closes the sqlite connections kept too long unused. */
static uv_timer_t sqlite_prune;
static int        sqlite_prune_started;

/* What the command line says, over the config file's settings; its paths
 * made absolute at start (the daemon then works from "/"). */
struct args {
	const char *config;
	const char *socket;
	const char *state;
	const char *log;
	int         debug;
	int         service;
	char        config_abs[PATH_MAX];
	char        socket_abs[PATH_MAX];
	char        state_abs[PATH_MAX];
	char        log_abs[PATH_MAX];
};

static const char usage_text[] =
"usage: lockbrokerd [options]\n"
"  -f, --foreground     run in the foreground (always the case; accepted\n"
"                       for init systems that pass it)\n"
"  -s, --socket PATH    listen on PATH (default: see lockbrokerd(8))\n"
"  -S, --state PATH     the state database (default: see lockbrokerd(8))\n"
"  -c, --config FILE    read settings from FILE (default\n"
"                       " LBD_CONFIG_FILE ", if present)\n"
"  -d, --debug          log debug lines (SIGUSR1 toggles them)\n"
"  -l, --log FILE       append log lines to FILE, each with its time,\n"
"                       instead of writing them to stderr\n"
"      --service        run as the Windows service the service control\n"
"                       manager started (logging to --log FILE, else to\n"
"                       STATE.log); see lockbrokerd(8)\n"
"  -h, --help           show this help\n"
"  -V, --version        show the version\n";

/* Resolves the default socket and state paths: the system instance's when
 * run as root, else the user's (the state's: statedir.h). */
static int
default_paths(struct lbd_config *c, char *why, size_t size)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	int         r = 0;

	if (c->socket[0] == '\0') {
		if (lbd_os_euid() == 0)
			r = snprintf(c->socket, sizeof(c->socket), "%s",
			    lbd_listen_default());
		else if (run != NULL && run[0] == '/')
			r = snprintf(c->socket, sizeof(c->socket),
			    "%s/%s", run, LBP_USER_SOCKET);
		else {
			snprintf(why, size, "no socket path: give --socket or "
			    "set XDG_RUNTIME_DIR");
			return -1;
		}
	}
	if (r < 0 || (size_t)r >= sizeof(c->socket)) {
		snprintf(why, size, "socket path too long");
		return -1;
	}
	if (c->state[0] != '\0')
		return 0;
	c->state_default = 1;
	return lbd_statedir_default(c->state, sizeof(c->state), why, size);
}

/*
 * Opens the state database readable by the daemon's user only (0600,
 * its journal and WAL files too: sqlite gives them the database's mode;
 * files of an earlier run are made so here, a new one by lbd_store_open).
 * The directory that holds it is private, but the kernel lets the daemon
 * into its own open files through /proc/self/fd whoever's credentials it
 * has taken on: the files' own modes must keep clients out.  One that
 * cannot be made so refuses the start (-1 with why naming it; the log
 * names it too should why cut it short).
 */
static int
store_open_private(struct lbd *d, char *why, size_t size)
{
	static const char *const suffixes[] = { "", "-wal", "-shm",
	    "-journal", "-intents" };
	char   file[PATH_MAX + 16];
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", d->cfg.state,
		    suffixes[i]);
		if (lbd_os_chmod(file, 0600) == -1 && errno != ENOENT)
			goto refused;
	}
	return lbd_store_open(d, d->cfg.state, why, size);
refused:
	if (snprintf(why, size, "cannot make %s private: %s", file,
	    strerror(errno)) >= (int)size)
		log_err("cannot make %s private", file);  /* why cut short */
	return -1;
}

/* Settings: defaults, then the config file, then the command line. */
static int
settings(struct lbd_config *c, const struct args *a, char *why, size_t size)
{
	lbd_config_defaults(c);
	if (a->config != NULL) {
		if (lbd_config_load(a->config, c, why, size) != 0)
			return -1;
	} else if (access(LBD_CONFIG_FILE, F_OK) == 0 &&
	    lbd_config_load(LBD_CONFIG_FILE, c, why, size) != 0)
		return -1;
	if (a->socket != NULL &&
	    snprintf(c->socket, sizeof(c->socket), "%s", a->socket) >=
	    (int)sizeof(c->socket)) {
		snprintf(why, size, "socket path too long: %s", a->socket);
		return -1;
	}
	if (a->state != NULL)
		snprintf(c->state, sizeof(c->state), "%s", a->state);
	if (a->debug)
		c->debug = 1;
	return default_paths(c, why, size);
}

/* A new connection on the listener. */
static void
listener_connection(uv_stream_t *s, int status)
{
	struct lbd *d = s->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	lbd_conns_accept(d);
}

/* Listens: on the socket systemd passed, else on our own. */
static int
listener_start(struct lbd *d, char *why, size_t size)
{
	int fd, r;

	uv_pipe_init(d->loop, &d->listener, 0);
	d->listener.data = d;
	if ((fd = lbd_sd_listen_fd(why, size)) == -1)
		return -1;
	if (fd >= 0) {
		if ((r = uv_pipe_open(&d->listener, fd)) != 0) {
			snprintf(why, size, "socket activation: %s",
			    uv_strerror(r));
			return -1;
		}
		log_notice("listening on the socket systemd passed");
	} else if (lbd_listen_bind(&d->listener, d->cfg.socket, why,
	    size) != 0)
		return -1;
	if ((r = uv_listen((uv_stream_t *)&d->listener, 511,
	    listener_connection)) != 0) {
		snprintf(why, size, "cannot listen: %s", uv_strerror(r));
		return -1;
	}
	d->listening = 1;
	return 0;
}

/*
 * Sets d->fd_conns, how many connections and pidfds (one per process
 * watched for kept holds and orphans, pidwatch.c) the descriptor limit
 * (RLIMIT_NOFILE) affords: what is left of it once the other descriptors
 * open now (state database, listener, loop) and LBD_FD_RESERVE (for the
 * lock files and databases a request opens for a moment) are set aside.
 * Beyond that a connection is refused with ELIMIT, rather than accepted
 * into a daemon that could then open no lock file for anybody.  Pidfds
 * take at most half of it (pidwatch.c: beyond, a process is looked at by
 * timer), so the other half is always the connections'.  First raises
 * the soft limit towards the hard one as far as the conns limit needs.
 */
static void
fd_budget(struct lbd *d)
{
	unsigned long long limit, left;
	int                open_now = lbd_os_fds_open();

	d->fd_conns = UINT_MAX;
	if (open_now < 0)
		open_now = LBD_FD_RESERVE;
	else if ((unsigned)open_now >= d->npidfds)
		open_now -= (int)d->npidfds; /* orphans' pidfds: budgeted */
	if (d->cluster != NULL)         /* its etcd keys' connections */
		open_now += LBD_COHORT_KEYS + 8;
	if (!lbd_os_fds_limit((unsigned long long)d->cfg.limits.conns +
	    (unsigned long long)open_now + LBD_FD_RESERVE, &limit))
		return;
	left = limit > (unsigned long long)open_now + LBD_FD_RESERVE ?
	    limit - (unsigned long long)open_now - LBD_FD_RESERVE : 0;
	d->fd_conns = left > UINT_MAX ? UINT_MAX : (unsigned)left;
	if (d->fd_conns < d->cfg.limits.conns)
		log_notice("the file descriptor limit (%llu) affords %u "
		    "connections, fewer than conns (%u)", limit, d->fd_conns,
		    d->cfg.limits.conns);
}

/*
 * How many directories the daemon watches at most: the watches limit, but
 * never more than half of what the kernel allows the daemon's user
 * (fs.inotify.max_user_watches), the rest being left to other programs
 * of that user; beyond it, waits are polled (watch.c).
 */
static void
watch_budget(struct lbd *d)
{
	unsigned long kernel;

	d->watches_max = d->cfg.limits.watches;
	kernel = lbd_os_fs_watches_max();
	if (kernel > 0 && d->watches_max > kernel / 2) {
		d->watches_max = (unsigned)(kernel / 2);
		log_notice("fs.inotify.max_user_watches (%lu) affords %u "
		    "watched directories, fewer than watches (%u)", kernel,
		    d->watches_max, d->cfg.limits.watches);
	}
}

/* SIGHUP: reload what can change while running. */
static void
reload(struct lbd *d, const struct args *a)
{
	struct lbd_config c;
	char              why[512];
	unsigned          bound = d->cfg.limits.readers_per_lock;

	if (settings(&c, a, why, sizeof(why)) != 0) {
		log_err("reload: %s; keeping the current settings", why);
		return;
	}
	if (strcmp(c.socket, d->cfg.socket) != 0 ||
	    strcmp(c.state, d->cfg.state) != 0)
		log_warn("reload: socket and state take effect at restart");
	if (strcmp(c.cluster_dir, d->cfg.cluster_dir) != 0 ||
	    strcmp(c.etcd_endpoints, d->cfg.etcd_endpoints) != 0 ||
	    strcmp(c.etcd_prefix, d->cfg.etcd_prefix) != 0 ||
	    c.etcd_ttl != d->cfg.etcd_ttl)
		log_warn("reload: cluster_dir and the etcd settings take "
		    "effect at restart");
	d->cfg.grace = c.grace;
	d->cfg.foreign_poll = c.foreign_poll;
	d->cfg.release_wait = c.release_wait;
	d->cfg.debug = c.debug;
	d->cfg.limits = c.limits;
	d->cfg.refusals_interval = c.refusals_interval;
	if (lbd_subuids_load(d, c.subuids, why, sizeof(why)) != 0)
		log_err("reload: %s; the subordinate uids read before stay",
		    why);
	else
		memcpy(d->cfg.subuids, c.subuids, sizeof(c.subuids));
	lbd_lograte_set(&d->refusals, c.limits.refusals_logged_per_uid,
	    c.limits.refusals_logged, (uint64_t)(c.refusals_interval * 1000));
	lbd_lograte_set(&d->deadlocks, c.limits.refusals_logged_per_uid,
	    c.limits.refusals_logged, (uint64_t)(c.refusals_interval * 1000));
	watch_budget(d);
	lbd_log_debug = c.debug;
	lbd_readers_bound_changed(d, bound);
	log_notice("reloaded");
}

/* One of the signals we take as events (d->sigs: what it asks). */
static void
on_signal(uv_signal_t *h, int signum)
{
	struct lbd *d = h->data;

	switch (d->sigs[h - d->sig].means) {
	case LBD_OS_SIGNAL_STOP:
		log_notice("signal %d asks for the stop", signum);
		lbd_stop(d);
		break;
	case LBD_OS_SIGNAL_RELOAD:
		reload(d, h->loop->data);
		break;
	case LBD_OS_SIGNAL_DEBUG:
		lbd_log_debug = !lbd_log_debug;
		log_notice("debug lines %s", lbd_log_debug ? "on" : "off");
		break;
	}
}

/* The service manager asks the daemon to stop (service.h). */
static void
on_service_stop(void *arg)
{
	log_notice("the service manager stops the service");
	lbd_stop(arg);
}

/* Starts taking the OS's signals (lbd_os_signals_take) as loop events. */
static void
signals_start(struct lbd *d)
{
	size_t i;

	d->sigs = lbd_os_signals_take(&d->nsig);
	for (i = 0; i < d->nsig; i++) {
		uv_signal_init(d->loop, &d->sig[i]);
		d->sig[i].data = d;
		uv_signal_start(&d->sig[i], on_signal, d->sigs[i].signum);
	}
}

/* Sends the log's lines to the file --log names, at once (what follows
 * is logged there); nothing otherwise.  0, or -1 with why. */
static int
log_start(const struct args *a, char *why, size_t size)
{
	return a->log != NULL ? lbd_log_open(a->log, why, size) : 0;
}

/*
 * In a service (which has no stderr) without --log: the log's lines to
 * STATE.log, once the state directory is made and judged (nothing is
 * opened there before; a service refused its state directory logs
 * nowhere: give --log to see why).  0, or -1 with why.
 */
static int
service_log_start(const struct args *a, const struct lbd_config *c,
    char *why, size_t size)
{
	char file[PATH_MAX + 8];

	if (a->log != NULL || !a->service)
		return 0;
	snprintf(file, sizeof(file), "%s.log", c->state);
	return lbd_log_open(file, why, size);
}

/* A lock database's journal was refused (a file another user put
 * there: see lockfs/sqlitevfs.c): worth an administrator's look. */
static void
sqlite_refused(const char *why)
{
	log_warn("refused to open %s", why);
}

/* Closes the sqlite connections unused for LBD_SQLITE_KEEP_IDLE_MS. */
static void
on_sqlite_prune(uv_timer_t *t)
{
	(void)t;
	lockfs_sqlite_keep_prune();
}

/* Keeps sqlite connections (see LBD_SQLITE_KEEP), with the timer that
 * closes them once unused; the timer does not keep the loop running. */
static void
sqlite_keep_start(uv_loop_t *loop)
{
	lockfs_sqlite_keep(LBD_SQLITE_KEEP, LBD_SQLITE_KEEP_IDLE_MS);
	uv_timer_init(loop, &sqlite_prune);
	uv_timer_start(&sqlite_prune, on_sqlite_prune, LBD_SQLITE_PRUNE_MS,
	    LBD_SQLITE_PRUNE_MS);
	uv_unref((uv_handle_t *)&sqlite_prune);
	sqlite_prune_started = 1;
}

/*
 * Makes *path (a command-line path, or NULL) absolute in buf (size bytes)
 * by joining it to the working directory as it is given (the kernel
 * resolves it later as it would have from there), so that the daemon can
 * leave that directory: its own working directory is reachable through
 * /proc/self/cwd, which the kernel lets it enter whoever's credentials
 * it has taken on.  0, or -1 with why filled.
 */
static int
absolute(const char **path, char *buf, size_t size, char *why,
    size_t why_size)
{
	char cwd[PATH_MAX];
	int  r;

	if (*path == NULL || !lbd_os_path_is_relative(*path))
		return 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		snprintf(why, why_size, "%s: cannot tell the working "
		    "directory: %s", *path, strerror(errno));
		return -1;
	}
	r = snprintf(buf, size, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd,
	    *path);
	if (r < 0 || (size_t)r >= size) {
		snprintf(why, why_size, "%s: path too long", *path);
		return -1;
	}
	*path = buf;
	return 0;
}

/* Makes the command line's paths absolute, then leaves the working
 * directory for "/" (see absolute).  0, or -1 with why filled. */
static int
leave_cwd(struct args *a, char *why, size_t size)
{
	if (absolute(&a->config, a->config_abs, sizeof(a->config_abs), why,
	    size) != 0 ||
	    (a->socket != NULL && lbd_listen_is_relative(a->socket) &&
	    absolute(&a->socket, a->socket_abs, sizeof(a->socket_abs), why,
	    size) != 0) ||
	    absolute(&a->state, a->state_abs, sizeof(a->state_abs), why,
	    size) != 0 ||
	    absolute(&a->log, a->log_abs, sizeof(a->log_abs), why, size) != 0)
		return -1;
	if (chdir("/") == -1) {
		snprintf(why, size, "cannot change directory to /: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads the command line; exits on --help, --version and bad usage. */
static void
parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument,       NULL, 'f' },
		{ "socket",     required_argument, NULL, 's' },
		{ "state",      required_argument, NULL, 'S' },
		{ "config",     required_argument, NULL, 'c' },
		{ "debug",      no_argument,       NULL, 'd' },
		{ "log",        required_argument, NULL, 'l' },
		{ "service",    no_argument,       NULL, 'W' },
		{ "help",       no_argument,       NULL, 'h' },
		{ "version",    no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(a, 0, sizeof(*a));
	while ((ch = getopt_long(argc, argv, "fs:S:c:dl:hV", longopts, NULL)) !=
	    -1)
		switch (ch) {
		case 'f':
			break;
		case 's':
			a->socket = optarg;
			break;
		case 'S':
			a->state = optarg;
			break;
		case 'c':
			a->config = optarg;
			break;
		case 'd':
			a->debug = 1;
			break;
		case 'l':
			a->log = optarg;
			break;
		case 'W':
			a->service = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("lockbrokerd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			fputs(usage_text, stderr);
			exit(64);
		}
	if (optind != argc) {
		fprintf(stderr, "lockbrokerd: unexpected argument %s\n",
		    argv[optind]);
		fputs(usage_text, stderr);
		exit(64);
	}
}

/*
 * The daemon's life (see the top of this file) with the command line a
 * (whose paths it makes absolute), in a console's process or in a
 * service's thread (service.h); returns the exit status: 0 after a
 * stop, 1 when it could not start.
 */
static int
daemon_run(void *arg)
{
	struct args *a = arg;
	struct lbd   d;
	char         why[1024], moved[sizeof(why)];
	int          r = 1;

	moved[0] = '\0';
	lbd_os_sigpipe_ignore();
	memset(&d, 0, sizeof(d));
	TAILQ_INIT(&d.conns);
	TAILQ_INIT(&d.flush);
	TAILQ_INIT(&d.listings);
	TAILQ_INIT(&d.acks);
	TAILQ_INIT(&d.swaps);
	LIST_INIT(&d.uids);
	TAILQ_INIT(&d.throttled);
	TAILQ_INIT(&d.endings);
	LIST_INIT(&d.orphans);
	LIST_INIT(&d.unclaimed);
	LIST_INIT(&d.tokenless);
	LIST_INIT(&d.releasing);
	LIST_INIT(&d.handed);
	snprintf(d.server, sizeof(d.server), "lockbrokerd/%s",
	    PACKAGE_VERSION);
	d.loop = uv_default_loop();
	d.loop->data = a;
	if (leave_cwd(a, why, sizeof(why)) != 0 ||
	    settings(&d.cfg, a, why, sizeof(why)) != 0 ||
	    log_start(a, why, sizeof(why)) != 0)
		goto fail;
	if (lbd_creds_init(why, sizeof(why)) != 0 ||
	    lbd_subuids_load(&d, d.cfg.subuids, why, sizeof(why)) != 0)
		goto fail;
	lbd_log_debug = d.cfg.debug;
	/* The sqlite method's steps run in the loop: a database another
	 * process keeps busy must not stall every other client for long. */
	lockfs_sqlite_busy(LBD_SQLITE_TRY_MS, LBD_SQLITE_STEP_MS);
	lockfs_handoff_wait(0);        /* never in the loop: one try */
	lockfs_sqlite_vfs_on_refuse(sqlite_refused);
	watch_budget(&d);
	if (lbd_locks_init(&d) != 0 || lbd_watches_init(&d) != 0) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	/* A state directory moved aside is told once the log is the
	 * service's too. */
	if ((d.cfg.state_default && lbd_statedir_reclaim(d.cfg.state, moved,
	    why, sizeof(why)) != 0) ||
	    lbd_dirs_make_parent(d.cfg.state, 0700, why, sizeof(why)) != 0 ||
	    lbd_statedir_judge(d.cfg.state, why, sizeof(why)) != 0 ||
	    service_log_start(a, &d.cfg, why, sizeof(why)) != 0)
		goto fail;
	if (moved[0] != '\0')
		log_warn("%s", moved);
	if (lbd_listen_claim(d.cfg.socket, d.cfg.state, why, sizeof(why)) != 0 ||
	    store_open_private(&d, why, sizeof(why)) != 0 ||
	    lbd_intents_open(&d, why, sizeof(why)) != 0)
		goto fail;
	lbd_loop_start(&d);
	sqlite_keep_start(d.loop);
	signals_start(&d);
	lbd_service_on_stop(d.loop, on_service_stop, &d);
	fd_budget(&d);          /* the orphans' pidfds, within it */
	lbd_reconcile(&d);
	lbd_settle(&d, 0);      /* what reconciling changed is recorded */
	lbd_intents_clear(&d);  /* and judged: the notes are done with */
	lbd_cluster_dir_sign(&d);       /* for the library, without us */
	if (lbd_clusterd_start(&d, why, sizeof(why)) != 0 ||
	    listener_start(&d, why, sizeof(why)) != 0) {
		lbd_stop(&d);
		uv_run(d.loop, UV_RUN_DEFAULT);
		goto fail;
	}
	fd_budget(&d);          /* again, the listener open */
	log_notice("%s ready on %s (state %s, generation %llu)", d.server,
	    d.cfg.socket, d.cfg.state, (unsigned long long)d.generation);
	lbd_sd_notify("READY=1");
	lbd_service_ready();
	uv_run(d.loop, UV_RUN_DEFAULT);
	r = 0;
	goto out;
fail:
	log_err("%s", why);
out:
	if (sqlite_prune_started) {
		uv_close((uv_handle_t *)&sqlite_prune, NULL);
		lockfs_sqlite_keep(0, 0);       /* closes every one kept */
	}
	if (d.stopping)
		uv_close((uv_handle_t *)&d.stop_flush, NULL);
	lbd_service_close();
	if (d.stopping || sqlite_prune_started)
		uv_run(d.loop, UV_RUN_DEFAULT);
	lbd_clusterd_free(&d);
	lbd_intents_close(&d);
	lbd_store_close(&d);
	lbd_subuids_free(&d);
	free(d.buckets);
	free(d.pidwatches);
	free(d.wbuckets);
	uv_loop_close(d.loop);
	if (r == 0)
		log_notice("stopped");
	return r;
}

int
main(int argc, char **argv)
{
	struct args a;
	char        why[1024];
	int         r;

	parse_args(argc, argv, &a);
	if (!a.service)
		return daemon_run(&a);
	if (lbd_service_run(daemon_run, &a, &r, why, sizeof(why)) != 0) {
		fprintf(stderr, "lockbrokerd: --service: %s\n", why);
		r = 1;
	}
	return r;
}
