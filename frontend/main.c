/* main.c - portico-frontend: one event loop per core.
 *
 * The main thread loads the configuration and the shared state (policy,
 * TLS contexts), prepares frontend.workers loops (listeners bound with
 * SO_REUSEPORT so that the kernel spreads connections over them,
 * directory connections, link pool) and runs each in a thread of its
 * own.  It then only waits for signals:
 *
 *   SIGHUP   reads the configuration file again; what may change live
 *            (limits, timeouts, login types, logging ...) goes to each
 *            loop as a new immutable snapshot through its uv_async, with
 *            the certificates for mail clients read again; settings that
 *            only take effect at start keep their value (a warning names
 *            each), and a file that does not parse changes nothing.
 *   SIGTERM  drains: every loop closes its listeners, tells clients
 *            between commands before login goodbye, lets the others go
 *            on for frontend.shutdown_grace and then closes them with a
 *            goodbye.  A second SIGTERM, or SIGINT, stops at once.
 *
 * portico-frontend -t -c FILE checks a configuration and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config_reload.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/tls_tickets.h"
#include "frontend/frontend.h"
#include "frontend/http/http_routes.h"
#include "frontend/probe/probe_sched.h"

#define FRONTEND_MAX_WORKERS 256

/* The listeners: one slot per setting, in this order, the mail protocols'
 * first (FRONTEND_MAIL_LISTENERS), then HTTP's (http_routes.c's). */
static const struct listener_def {
	const char *section, *setting;
	size_t offset; /* of the address in struct config */
	enum client_protocol protocol;
	int implicit_tls;
} listener_defs[FRONTEND_MAX_LISTENERS] = {
    {"frontend", "imap_listen", offsetof(struct config, frontend_imap_listen),
     CLIENT_IMAP, 0},
    {"frontend", "imaps_listen", offsetof(struct config, frontend_imaps_listen),
     CLIENT_IMAP, 1},
    {"frontend", "pop3_listen", offsetof(struct config, frontend_pop3_listen),
     CLIENT_POP3, 0},
    {"frontend", "pop3s_listen", offsetof(struct config, frontend_pop3s_listen),
     CLIENT_POP3, 1},
    {"frontend", "submission_listen",
     offsetof(struct config, frontend_submission_listen), CLIENT_SUBMISSION, 0},
    {"frontend", "submissions_listen",
     offsetof(struct config, frontend_submissions_listen), CLIENT_SUBMISSION,
     1},
    {"frontend", "lmtp_listen", offsetof(struct config, frontend_lmtp_listen),
     CLIENT_LMTP, 0},
    {"http", "listen", offsetof(struct config, http_listen), CLIENT_IMAP, 0},
    {"http", "tls_listen", offsetof(struct config, http_tls_listen),
     CLIENT_IMAP, 1},
};

static const char *
listener_addr(const struct config *cfg, unsigned slot)
{
	return *(char *const *)((const char *)cfg + listener_defs[slot].offset);
}

struct listener {
	uv_tcp_t tcp;
	struct frontend *fe;
	const struct listener_def *def;
};

struct process {
	const char *config_path;
	struct config_snap *snap; /* the newest; older ones stay until exit */
	struct config cfg;        /* = snap->cfg (strings are the snap's) */
	struct policy policy;
	struct connsets connsets;
	unsigned long http_connections;
	SSL_CTX *link_ctx;
	struct tls_server *tls;
	/* the directory's servers, resolved once for every loop */
	struct dir_target *dir_target;
	/* session-ticket keys made at start, for while
	   tls.ticket_key_file is empty */
	struct tls_tickets *own_tickets;
	struct frontend *workers;
	unsigned nworkers;
	uv_loop_t *loop;
	uv_signal_t sigterm, sigint, sighup;
	uv_async_t worker_done;   /* a worker's loop has ended */
	unsigned workers_done;    /* atomic */
	unsigned reloads_applied; /* atomic: loops that took the newest */
	/* a reload's sockets for the listeners it moves, per loop, until
	   workers_wake() hands them over with the configuration */
	int (*staged_listen)[FRONTEND_MAX_LISTENERS];
	int draining;
	int stopping;
};

static void
usage(void)
{
	fprintf(stderr, "usage: portico-frontend [-t|--check] -c CONFIG\n");
	exit(2);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	if (status < 0) {
		log_warn("accept error=\"%s\"", uv_strerror(status));
		return;
	}
	client_accept(l->fe, server, l->def->protocol, l->def->implicit_tls);
}

/* A socket bound to the slot's address, sharing the port with the other
 * loops' (SO_REUSEPORT): the descriptor, or -1 after logging why. */
static int
listen_socket(unsigned slot, const char *addr)
{
	const char *err;
	int fd = conn_listen_socket(addr, 1, &err);
	if (fd < 0)
		log_error("%s.%s=%s error=\"%s\"", listener_defs[slot].section,
			  listener_defs[slot].setting, addr, err);
	return fd;
}

static void
listener_freed(uv_handle_t *h)
{
	free(h->data);
}

static void
listener_close(struct frontend *fe, unsigned slot)
{
	struct listener *l = fe->listeners[slot];
	if (l == NULL)
		return;
	fe->listeners[slot] = NULL;
	uv_close((uv_handle_t *)&l->tcp, listener_freed);
}

/* The loop's listener of the slot on fd (listen_socket()'s): 0, or -1
 * after logging why. */
static int
listener_open(struct frontend *fe, unsigned slot, int fd, const char *addr)
{
	const struct listener_def *def = &listener_defs[slot];
	struct listener *l = calloc(1, sizeof(*l));
	if (l == NULL)
		abort();
	uv_tcp_init(fe->loop, &l->tcp);
	l->tcp.data = l;
	l->fe = fe;
	l->def = def;
	fe->listeners[slot] = l;
	int rc = uv_tcp_open(&l->tcp, fd);
	if (rc < 0)
		close(fd); /* not the handle's */
	else
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	if (rc < 0) {
		log_error("frontend.%s=%s error=\"%s\"", def->setting, addr,
			  uv_strerror(rc));
		listener_close(fe, slot);
		return -1;
	}
	if (fe->index == 0)
		log_info("listening protocol=%s%s address=%s",
			 def->protocol == CLIENT_IMAP         ? "imap"
			 : def->protocol == CLIENT_POP3       ? "pop3"
			 : def->protocol == CLIENT_SUBMISSION ? "submission"
							      : "lmtp",
			 def->implicit_tls ? "s" : "", addr);
	return 0;
}

static void
listeners_close(struct frontend *fe)
{
	for (unsigned i = 0; i < FRONTEND_MAIL_LISTENERS; i++)
		listener_close(fe, i);
}

/* A reload moved listeners: each slot's new socket replaces the old
 * listener (whose accept queue goes with it), or the slot closes.  A
 * loop that drains or stops takes none. */
static void
listeners_apply(struct frontend *fe, const struct config *old, const int *fds)
{
	int moved = 0;
	for (unsigned i = 0; i < FRONTEND_MAX_LISTENERS; i++) {
		if (fds[i] == FRONTEND_LISTEN_SAME)
			continue;
		moved = 1;
		if (fe->draining || fe->stopping) {
			if (fds[i] >= 0)
				close(fds[i]);
			continue;
		}
		const struct listener_def *def = &listener_defs[i];
		if (listener_addr(old, i)[0] != '\0' && fe->index == 0)
			log_info("reload: %s.%s: no longer listening on %s",
				 def->section, def->setting,
				 listener_addr(old, i));
		if (i >= FRONTEND_MAIL_LISTENERS) {
			http_routes_move(fe, def->implicit_tls, fds[i],
					 listener_addr(&fe->cfg, i));
			continue;
		}
		listener_close(fe, i);
		if (fds[i] >= 0)
			listener_open(fe, i, fds[i],
				      listener_addr(&fe->cfg, i));
	}
	if (moved && !fe->draining && !fe->stopping)
		probe_sched_listeners_moved(fe);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* In the worker's thread: stop accepting, say goodbye, let the loop end. */
static void
worker_stop(struct frontend *fe)
{
	if (fe->stopping)
		return;
	fe->stopping = 1;
	listeners_close(fe);
	if (!fe->draining)
		http_routes_stop(fe);
	if (!uv_is_closing((uv_handle_t *)&fe->drain_timer))
		uv_close((uv_handle_t *)&fe->drain_timer, NULL);
	for (struct client *c = fe->clients, *next; c != NULL; c = next) {
		next = c->next;
		if (c->state != CLIENT_CLOSING) {
			c->proto->bye_unavailable(c, "Server shutting down.");
			client_close(c, "shutdown");
		}
	}
	probe_sched_stop(fe);
	kick_stop(fe);
	link_pool_stop(fe);
	dir_shutdown(fe->dir);
	uv_close((uv_handle_t *)&fe->wakeup, NULL);
}

/* While draining: the grace period is over, or nobody is left. */
static void
worker_drain_tick(uv_timer_t *t)
{
	struct frontend *fe = t->data;
	if (fe->nclients == 0 || uv_now(fe->loop) >= fe->drain_until) {
		if (fe->nclients > 0)
			log_info("worker=%u shutdown grace over: closing %u "
				 "sessions",
				 fe->index, fe->nclients);
		worker_stop(fe);
	}
}

/* SIGTERM: no new connections; clients between commands before login
 * are told now, the others when their command is done or the grace
 * period is over. */
static void
worker_drain(struct frontend *fe)
{
	if (fe->draining || fe->stopping)
		return;
	fe->draining = 1;
	listeners_close(fe);
	http_routes_stop(fe);
	probe_sched_stop(fe); /* its own listeners are closed */
	for (struct client *c = fe->clients, *next; c != NULL; c = next) {
		next = c->next;
		client_drain(c);
	}
	fe->drain_until = uv_now(fe->loop) +
			  (uint64_t)fe->cfg.frontend_shutdown_grace * 1000;
	uv_timer_start(&fe->drain_timer, worker_drain_tick, 0, 100);
}

/* A reload: the loop takes the new snapshot (its own copy of the struct;
 * the strings are the snapshot's, which outlives every loop). */
static void
worker_apply(struct frontend *fe, const struct config_snap *snap,
	     const int *listen_fds, struct dir_target *dir)
{
	struct config old = fe->cfg; /* its strings outlive the loop */
	fe->cfg = snap->cfg;
	fe->cfg_generation = snap->generation;
	listeners_apply(fe, &old, listen_fds);
	http_routes_apply(fe);
	dir_reconfigure(fe->dir, dir);
	unsigned n = __atomic_add_fetch(fe->reloads_applied, 1,
					__ATOMIC_ACQ_REL);
	if (n == fe->nworkers)
		log_info("reload: generation=%u applied by %u workers",
			 snap->generation, n);
}

static void
worker_wakeup(uv_async_t *h)
{
	struct frontend *fe = h->data;
	pthread_mutex_lock(&fe->wake_lock);
	struct tls_server *t = fe->new_tls;
	fe->new_tls = NULL;
	const struct config_snap *snap = fe->new_cfg;
	fe->new_cfg = NULL;
	struct dir_target *dir = fe->new_dir;
	fe->new_dir = NULL;
	int fds[FRONTEND_MAX_LISTENERS];
	for (unsigned i = 0; i < FRONTEND_MAX_LISTENERS; i++) {
		fds[i] = fe->new_listen[i];
		fe->new_listen[i] = FRONTEND_LISTEN_SAME;
	}
	int stop = fe->stop_requested;
	int drain = fe->drain_requested;
	pthread_mutex_unlock(&fe->wake_lock);
	if (fe->stopping)
		stop = 0; /* the async handle is closed already */
	if (snap != NULL && !fe->stopping)
		worker_apply(fe, snap, fds, dir);
	else if (snap != NULL)
		listeners_apply(fe, &fe->cfg, fds); /* closes what came */
	dir_target_unref(&dir);
	if (t != NULL) {
		tls_server_unref(&fe->tls);
		fe->tls = t;
	}
	if (stop)
		worker_stop(fe);
	else if (drain)
		worker_drain(fe);
}

static void *
worker_run(void *arg)
{
	struct frontend *fe = arg;
	uv_run(fe->loop, UV_RUN_DEFAULT);
	uv_walk(fe->loop, close_walk, NULL);
	uv_run(fe->loop, UV_RUN_DEFAULT);
	if (fe->done != NULL) {
		__atomic_add_fetch(fe->done_count, 1, __ATOMIC_ACQ_REL);
		uv_async_send(fe->done);
	}
	return NULL;
}

/* Everything of one loop but the thread; run in the main thread before
 * any worker starts. */
static int
worker_init(struct process *p, struct frontend *fe, unsigned index)
{
	const char *err;
	memset(fe, 0, sizeof(*fe));
	fe->index = index;
	fe->cfg = p->cfg; /* the loop's copy; strings are the snapshot's */
	fe->cfg_generation = p->snap->generation;
	fe->reloads_applied = &p->reloads_applied;
	fe->policy = &p->policy;
	fe->link_ctx = p->link_ctx;
	fe->connsets = &p->connsets;
	fe->workers = p->workers;
	fe->nworkers = p->nworkers;
	fe->http_connections = &p->http_connections;
	fe->tls = tls_server_ref(p->tls);
	for (unsigned i = 0; i < FRONTEND_MAX_LISTENERS; i++)
		fe->new_listen[i] = FRONTEND_LISTEN_SAME;
	fe->loop = malloc(sizeof(*fe->loop));
	if (fe->loop == NULL)
		abort();
	uv_loop_init(fe->loop);
	pthread_mutex_init(&fe->wake_lock, NULL);
	uv_async_init(fe->loop, &fe->wakeup, worker_wakeup);
	fe->wakeup.data = fe;
	uv_timer_init(fe->loop, &fe->drain_timer);
	fe->drain_timer.data = fe;
	link_pool_init(fe);
	kick_start(fe);
	if (dir_create(fe->loop, &fe->cfg, p->dir_target, &fe->dir, &err) < 0) {
		log_error("ldap error=\"%s\"", err);
		return -1;
	}
	unsigned listening = 0;
	for (unsigned i = 0; i < FRONTEND_MAIL_LISTENERS; i++) {
		const char *addr = listener_addr(&fe->cfg, i);
		if (addr[0] == '\0')
			continue;
		int fd = listen_socket(i, addr);
		if (fd < 0 || listener_open(fe, i, fd, addr) < 0)
			return -1;
		listening++;
	}
	if (http_routes_start(fe) < 0)
		return -1;
	if (listening == 0) {
		log_error("no listener configured");
		return -1;
	}
	/* scheduled probes of this frontend's listeners: first loop */
	if (index == 0 && probe_sched_start(fe, &err) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* After the worker's loop has ended (or never ran). */
static void
worker_free(struct frontend *fe)
{
	if (fe->loop == NULL)
		return;
	if (!fe->stopping) {
		/* Never ran: close what worker_init() opened. */
		worker_stop(fe);
		worker_run(fe);
	}
	uv_loop_close(fe->loop);
	dir_free(&fe->dir);
	link_pool_free(fe);
	kick_free(fe);
	http_routes_free(fe);
	probe_sched_free(fe);
	tls_server_unref(&fe->tls);
	tls_server_unref(&fe->new_tls);
	dir_target_unref(&fe->new_dir);
	pthread_mutex_destroy(&fe->wake_lock);
	for (unsigned i = 0; i < FRONTEND_MAX_LISTENERS; i++)
		if (fe->new_listen[i] >= 0)
			close(fe->new_listen[i]);
	free(fe->loop);
	fe->loop = NULL;
}

enum wake { WAKE_CONFIG, WAKE_DRAIN, WAKE_STOP };

static void
workers_wake(struct process *p, enum wake what, struct tls_server *t)
{
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct frontend *fe = &p->workers[i];
		pthread_mutex_lock(&fe->wake_lock);
		if (what == WAKE_STOP)
			fe->stop_requested = 1;
		if (what == WAKE_DRAIN)
			fe->drain_requested = 1;
		if (what == WAKE_CONFIG) {
			fe->new_cfg = p->snap;
			dir_target_unref(&fe->new_dir);
			fe->new_dir = dir_target_ref(p->dir_target);
			/* with the configuration that names them, never
			   before */
			for (unsigned l = 0; l < FRONTEND_MAX_LISTENERS; l++) {
				int fd = p->staged_listen[i][l];
				if (fd == FRONTEND_LISTEN_SAME)
					continue;
				if (fe->new_listen[l] >= 0) /* not taken up */
					close(fe->new_listen[l]);
				fe->new_listen[l] = fd;
				p->staged_listen[i][l] = FRONTEND_LISTEN_SAME;
			}
		}
		if (t != NULL) {
			tls_server_unref(&fe->new_tls);
			fe->new_tls = tls_server_ref(t);
		}
		pthread_mutex_unlock(&fe->wake_lock);
		uv_async_send(&fe->wakeup);
	}
}

/* What a configuration must satisfy beyond its syntax and ranges (at
 * start, for -t and for a reload).  The message names the setting. */
static int
frontend_config_check(const struct config *cfg, const char **error_r)
{
	static char msg[512];
	enum log_level level;
	if (log_level_parse(cfg->global_log_level, &level) < 0) {
		snprintf(msg, sizeof(msg),
			 "global.log_level: invalid value '%s' (debug, info, "
			 "warn or error)",
			 cfg->global_log_level);
		*error_r = msg;
		return -1;
	}
	const char *names[] = {"imap_login_type", "pop3_login_type",
			       "smtp_login_type"};
	const char *types[] = {cfg->frontend_imap_login_type,
			       cfg->frontend_pop3_login_type,
			       cfg->frontend_smtp_login_type};
	for (int i = 0; i < 3; i++) {
		if (strcmp(types[i], "secure") != 0 &&
		    strcmp(types[i], "plaintext") != 0) {
			snprintf(msg, sizeof(msg),
				 "frontend.%s: invalid value '%s' (secure or "
				 "plaintext)",
				 names[i], types[i]);
			*error_r = msg;
			return -1;
		}
	}
	if (dir_config_check(cfg, error_r) < 0)
		return -1;
	struct connsets sets;
	if (connsets_load(cfg, &sets, error_r) < 0)
		return -1;
	struct cidr_list nets;
	const char *lists[] = {cfg->frontend_trusted_networks,
			       cfg->frontend_proxy_networks,
			       cfg->lmtp_trusted_networks,
			       cfg->http_metrics_networks};
	const char *list_names[] = {"frontend.trusted_networks",
				    "frontend.proxy_networks",
				    "lmtp.trusted_networks",
				    "http.metrics_networks"};
	for (int i = 0; i < 4; i++) {
		const char *err;
		if (cidr_list_parse(lists[i], &nets, &err) < 0) {
			snprintf(msg, sizeof(msg), "%s: %s", list_names[i],
				 err);
			*error_r = msg;
			return -1;
		}
	}
	const char *listeners[] = {
		cfg->frontend_imap_listen,	 cfg->frontend_imaps_listen,
		cfg->frontend_pop3_listen,	 cfg->frontend_pop3s_listen,
		cfg->frontend_submission_listen, cfg->frontend_submissions_listen,
		cfg->frontend_lmtp_listen,	 cfg->http_listen,
		cfg->http_tls_listen};
	const char *listener_names[] = {
		"frontend.imap_listen",	      "frontend.imaps_listen",
		"frontend.pop3_listen",	      "frontend.pop3s_listen",
		"frontend.submission_listen", "frontend.submissions_listen",
		"frontend.lmtp_listen",	      "http.listen",
		"http.tls_listen"};
	int any = 0;
	for (int i = 0; i < 9; i++) {
		struct sockaddr_storage ss;
		const char *err;
		if (listeners[i][0] == '\0')
			continue;
		if (i < 7)
			any = 1;
		if (conn_parse_addr(listeners[i], &ss, &err) < 0) {
			snprintf(msg, sizeof(msg), "%s: '%s': %s",
				 listener_names[i], listeners[i], err);
			*error_r = msg;
			return -1;
		}
	}
	if (!any) {
		*error_r = "frontend: no listener configured (imap_listen, "
			   "imaps_listen, pop3_listen, ...)";
		return -1;
	}
	return probe_sched_check(cfg, error_r);
}

/* The certificates for mail clients with the session-ticket keys of the
 * configuration: tls.ticket_key_file's, or the process's own. */
static struct tls_server *
tls_load(struct process *p, const char **error_r)
{
	struct tls_tickets *k = p->cfg.tls_ticket_key_file[0] == '\0'
				    ? tls_tickets_ref(p->own_tickets)
				    : tls_tickets_load(
					  p->cfg.tls_ticket_key_file, error_r);
	if (k == NULL)
		return NULL;
	struct stat st;
	if (p->cfg.tls_ticket_key_file[0] != '\0' &&
	    stat(p->cfg.tls_ticket_key_file, &st) == 0 &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		log_warn("tls.ticket_key_file=%s is open to group or others "
			 "(mode %03o): whoever reads it can open every "
			 "session ticket",
			 p->cfg.tls_ticket_key_file, st.st_mode & 0777);
	struct tls_server *t = tls_server_load(
	    p->cfg.tls_cert_file, p->cfg.tls_key_file, p->cfg.tls_sni_dir, k,
	    (long)p->cfg.tls_session_lifetime, error_r);
	tls_tickets_unref(&k);
	return t;
}

/* A reload that moves a listener (frontend.*_listen, http.listen,
 * http.tls_listen): a socket bound for each loop, handed to it with the
 * new configuration.  When one cannot be
 * bound (an address taken by another process, one the host lacks), that
 * listener stays where it was, and so does its setting. */
static void
listeners_reload(struct process *p)
{
	struct config *cfg = &p->snap->cfg;
	for (unsigned i = 0; i < FRONTEND_MAX_LISTENERS; i++) {
		const char *old = listener_addr(&p->cfg, i);
		const char *addr = listener_addr(cfg, i);
		if (strcmp(old, addr) == 0)
			continue;
		int fds[FRONTEND_MAX_WORKERS];
		unsigned n = 0;
		while (addr[0] != '\0' && n < p->nworkers &&
		       (fds[n] = listen_socket(i, addr)) >= 0)
			n++;
		if (addr[0] != '\0' && n < p->nworkers) {
			while (n > 0)
				close(fds[--n]);
			log_error("reload: %s.%s kept at %s: %s cannot be "
				  "bound",
				  listener_defs[i].section,
				  listener_defs[i].setting,
				  old[0] != '\0' ? old : "(none)", addr);
			const char *err;
			if (config_set(cfg, listener_defs[i].section,
				       listener_defs[i].setting, old, &err) < 0)
				abort();
			continue;
		}
		for (unsigned w = 0; w < p->nworkers; w++)
			p->staged_listen[w][i] = addr[0] != '\0'
						     ? fds[w]
						     : FRONTEND_LISTEN_CLOSE;
	}
}

/* A directory address that cannot be taken up at a reload (a CA file
 * that does not load, a name that does not resolve): its settings go
 * back to those of the connections kept, which the event loops read
 * (ldap.starttls with a target made without TLS would fail every
 * connection made again). */
static void
dir_settings_keep(struct config *cfg, const struct config *old)
{
	const char *err;
	if (config_set(cfg, "ldap", "uris", old->ldap_uris, &err) < 0 ||
	    config_set(cfg, "ldap", "write_uris", old->ldap_write_uris, &err) <
		0 ||
	    config_set(cfg, "ldap", "tls_ca_file", old->ldap_tls_ca_file,
		       &err) < 0 ||
	    config_set(cfg, "ldap", "starttls",
		       old->ldap_starttls ? "true" : "false", &err) < 0)
		abort(); /* values it held before */
}

/* SIGHUP: the configuration file and the certificates for mail clients
 * are read again; sessions keep their certificates, new connections get
 * the new ones. */
static void
on_reload(uv_signal_t *h, int signum)
{
	struct process *p = h->data;
	const char *err;
	if (p->draining || p->stopping)
		return;
	log_info("signal=%d reloading config=%s", signum, p->config_path);
	unsigned live;
	if (config_reload(&p->snap, p->config_path, frontend_config_check,
			  &live) < 0)
		return;
	listeners_reload(p);
	if (!dir_target_matches(p->dir_target, &p->snap->cfg)) {
		/* names resolved here, once, not in the event loops */
		struct dir_target *dt = dir_target_load(&p->snap->cfg, &err);
		if (dt == NULL) {
			log_error("ldap reload: %s; ldap.uris, "
				  "ldap.write_uris, ldap.tls_ca_file and "
				  "ldap.starttls kept, and the directory "
				  "connections stay as they were",
				  err);
			dir_settings_keep(&p->snap->cfg, &p->cfg);
		} else {
			dir_target_unref(&p->dir_target);
			p->dir_target = dt;
		}
	}
	p->cfg = p->snap->cfg;
	policy_reload(&p->policy, &p->snap->cfg);
	struct tls_server *t = tls_load(p, &err);
	if (t == NULL)
		log_error("reload: certificates kept, error=\"%s\"", err);
	__atomic_store_n(&p->reloads_applied, 0, __ATOMIC_RELEASE);
	workers_wake(p, WAKE_CONFIG, t);
	if (t != NULL) {
		tls_server_unref(&p->tls);
		p->tls = t;
		log_info("reload: certificates loaded count=%u ticket_keys=%u",
			 tls_server_count(t), tls_server_ticket_keys(t));
	}
	log_info("reload: generation=%u settings_changed=%u",
		 p->snap->generation, live);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct process *p = h->data;
	if (signum == SIGTERM && !p->draining && !p->stopping) {
		log_info("signal=%d draining grace=%llds", signum,
			 (long long)p->cfg.frontend_shutdown_grace);
		p->draining = 1;
		workers_wake(p, WAKE_DRAIN, NULL);
		return;
	}
	if (p->stopping)
		return;
	log_info("signal=%d stopping", signum);
	p->stopping = 1;
	workers_wake(p, WAKE_STOP, NULL);
}

/* A worker's loop has ended; the last one ends the main loop. */
static void
on_worker_done(uv_async_t *h)
{
	struct process *p = h->data;
	if (__atomic_load_n(&p->workers_done, __ATOMIC_ACQUIRE) < p->nworkers)
		return;
	uv_close((uv_handle_t *)&p->sigterm, NULL);
	uv_close((uv_handle_t *)&p->sigint, NULL);
	uv_close((uv_handle_t *)&p->sighup, NULL);
	uv_close((uv_handle_t *)&p->worker_done, NULL);
}

static unsigned
workers_wanted(const struct config *cfg)
{
	long n = cfg->frontend_workers;
	if (n == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
	}
	if (n > FRONTEND_MAX_WORKERS)
		n = FRONTEND_MAX_WORKERS;
	return (unsigned)n;
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL, *err;
	int opt, rc = 1, check = 0;
	static const struct option longopts[] = {
		{"check", no_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0}};
	while ((opt = getopt_long(argc, argv, "c:t", longopts, NULL)) != -1) {
		if (opt == 'c')
			config_path = optarg;
		else if (opt == 't')
			check = 1;
		else
			usage();
	}
	if (config_path == NULL || optind != argc)
		usage();

	static struct process p;
	p.config_path = config_path;
	p.snap = config_snap_load(config_path, 1, &err);
	if (p.snap == NULL) {
		fprintf(stderr, "portico-frontend: %s\n", err);
		return 1;
	}
	p.cfg = p.snap->cfg;
	if (frontend_config_check(&p.cfg, &err) < 0) {
		fprintf(stderr, "portico-frontend: %s: %s\n", config_path, err);
		config_snap_free_all(&p.snap);
		return 1;
	}
	if (check) {
		printf("portico-frontend: %s: configuration OK\n", config_path);
		config_snap_free_all(&p.snap);
		return 0;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(p.cfg.global_log_level, &level);
	log_init(p.cfg.global_name, level);
	if (connsets_load(&p.cfg, &p.connsets, &err) < 0) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	p.own_tickets = tls_tickets_random(&err);
	if (p.own_tickets == NULL) {
		log_error("client TLS error=\"%s\"", err);
		return 1;
	}
	p.tls = tls_load(&p, &err);
	if (p.tls == NULL) {
		log_error("client TLS error=\"%s\"", err);
		return 1;
	}
	p.link_ctx = tls_link_client_ctx(p.cfg.tls_ca_file,
					 p.cfg.tls_link_cert_file,
					 p.cfg.tls_link_key_file, &err);
	if (p.link_ctx == NULL) {
		log_error("link TLS error=\"%s\"", err);
		return 1;
	}
	if (policy_create(&p.policy, &p.snap->cfg, &err) < 0) {
		log_error("frontend policy error=\"%s\"", err);
		return 1;
	}
	if ((p.dir_target = dir_target_load(&p.cfg, &err)) == NULL) {
		log_error("ldap error=\"%s\"", err);
		return 1;
	}
	p.nworkers = workers_wanted(&p.cfg);
	p.workers = calloc(p.nworkers, sizeof(*p.workers));
	p.staged_listen = calloc(p.nworkers, sizeof(*p.staged_listen));
	if (p.workers == NULL || p.staged_listen == NULL)
		abort();
	for (unsigned i = 0; i < p.nworkers; i++)
		for (unsigned l = 0; l < FRONTEND_MAX_LISTENERS; l++)
			p.staged_listen[i][l] = FRONTEND_LISTEN_SAME;
	unsigned started = 0;
	for (unsigned i = 0; i < p.nworkers; i++)
		if (worker_init(&p, &p.workers[i], i) < 0)
			goto out;
	p.loop = uv_default_loop();
	uv_signal_init(p.loop, &p.sigterm);
	uv_signal_init(p.loop, &p.sigint);
	uv_signal_init(p.loop, &p.sighup);
	uv_async_init(p.loop, &p.worker_done, on_worker_done);
	p.sigterm.data = p.sigint.data = p.sighup.data = &p;
	p.worker_done.data = &p;
	uv_signal_start(&p.sigterm, on_signal, SIGTERM);
	uv_signal_start(&p.sigint, on_signal, SIGINT);
	uv_signal_start(&p.sighup, on_reload, SIGHUP);
	for (unsigned i = 0; i < p.nworkers; i++) {
		p.workers[i].done = &p.worker_done;
		p.workers[i].done_count = &p.workers_done;
	}
	for (; started < p.nworkers; started++) {
		if (pthread_create(&p.workers[started].thread, NULL, worker_run,
				   &p.workers[started]) != 0) {
			log_error("cannot start worker %u", started);
			workers_wake(&p, WAKE_STOP, NULL);
			break;
		}
	}
	log_info("frontend name=%s site=%lld workers=%u ready",
		 p.cfg.global_name, (long long)p.cfg.global_site, started);
	if (started == p.nworkers) {
		uv_run(p.loop, UV_RUN_DEFAULT);
		rc = 0;
	}
out:
	for (unsigned i = 0; i < started; i++)
		pthread_join(p.workers[i].thread, NULL);
	for (unsigned i = 0; i < p.nworkers; i++) {
		if (i < started)
			p.workers[i].stopping = 1;
		worker_free(&p.workers[i]);
	}
	free(p.workers);
	free(p.staged_listen);
	if (p.loop != NULL) {
		uv_walk(p.loop, close_walk, NULL);
		uv_run(p.loop, UV_RUN_DEFAULT);
		uv_loop_close(p.loop);
	}
	tls_server_unref(&p.tls);
	dir_target_unref(&p.dir_target);
	tls_tickets_unref(&p.own_tickets);
	SSL_CTX_free(p.link_ctx);
	policy_free(&p.policy);
	config_snap_free_all(&p.snap);
	log_info("stopped");
	return rc;
}
