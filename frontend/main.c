/* main.c - portico-frontend: one event loop per core.
 *
 * The main thread loads the configuration and the shared state (policy,
 * TLS contexts), prepares frontend.workers loops (listeners bound with
 * SO_REUSEPORT so that the kernel spreads connections over them,
 * directory connections, link pool) and runs each in a thread of its
 * own.  It then only waits for signals: SIGTERM/SIGINT stop every loop
 * (clients get a clean goodbye), SIGHUP reloads the certificates for
 * mail clients and hands the new set to each loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls.h"
#include "frontend/frontend.h"
#include "frontend/http/http_routes.h"
#include "frontend/probe/probe_sched.h"

#define FRONTEND_MAX_LISTENERS 7
#define FRONTEND_MAX_WORKERS 256

struct listener {
	uv_tcp_t tcp;
	struct frontend *fe;
	enum client_protocol protocol;
	int implicit_tls;
	const char *setting;
};

struct process {
	struct config cfg;
	struct policy policy;
	struct connsets connsets;
	unsigned long http_connections;
	SSL_CTX *link_ctx;
	struct tls_server *tls;
	struct frontend *workers;
	unsigned nworkers;
	uv_loop_t *loop;
	uv_signal_t sigterm, sigint, sighup;
};

static void
usage(void)
{
	fprintf(stderr, "usage: portico-frontend -c CONFIG\n");
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
	client_accept(l->fe, server, l->protocol, l->implicit_tls);
}

/* A listening socket of its own for this loop, sharing the port with the
 * other loops' (SO_REUSEPORT). */
static int
listener_start(struct frontend *fe, const char *addr, const char *setting,
	       enum client_protocol protocol, int implicit_tls)
{
	if (addr[0] == '\0')
		return 0;
	struct listener *l = &fe->listeners[fe->nlisteners];
	struct sockaddr_storage ss;
	const char *err;
	if (conn_parse_addr(addr, &ss, &err) < 0) {
		log_error("frontend.%s=\"%s\" error=\"%s\"", setting, addr, err);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
					      SOCK_CLOEXEC,
			0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in)) < 0) {
		log_error("frontend.%s=%s error=\"%s\"", setting, addr,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	uv_tcp_init(fe->loop, &l->tcp);
	l->tcp.data = l;
	l->fe = fe;
	l->protocol = protocol;
	l->implicit_tls = implicit_tls;
	l->setting = setting;
	fe->nlisteners++;
	int rc = uv_tcp_open(&l->tcp, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	if (rc < 0) {
		log_error("frontend.%s=%s error=\"%s\"", setting, addr,
			  uv_strerror(rc));
		return -1;
	}
	if (fe->index == 0)
		log_info("listening protocol=%s%s address=%s",
			 protocol == CLIENT_IMAP	? "imap"
			 : protocol == CLIENT_POP3	? "pop3"
			 : protocol == CLIENT_SUBMISSION ? "submission"
							 : "lmtp",
			 implicit_tls ? "s" : "", addr);
	return 0;
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
	for (unsigned i = 0; i < fe->nlisteners; i++)
		uv_close((uv_handle_t *)&fe->listeners[i].tcp, NULL);
	http_routes_stop(fe);
	for (struct client *c = fe->clients, *next; c != NULL; c = next) {
		next = c->next;
		if (c->state != CLIENT_CLOSING) {
			c->proto->bye_unavailable(c, "Server shutting down.");
			client_close(c, "shutdown");
		}
	}
	probe_sched_stop(fe);
	link_pool_stop(fe);
	dir_shutdown(fe->dir);
	uv_close((uv_handle_t *)&fe->wakeup, NULL);
}

static void
worker_wakeup(uv_async_t *h)
{
	struct frontend *fe = h->data;
	pthread_mutex_lock(&fe->wake_lock);
	struct tls_server *t = fe->new_tls;
	fe->new_tls = NULL;
	int stop = fe->stop_requested;
	pthread_mutex_unlock(&fe->wake_lock);
	if (t != NULL) {
		tls_server_unref(&fe->tls);
		fe->tls = t;
	}
	if (stop)
		worker_stop(fe);
}

static void *
worker_run(void *arg)
{
	struct frontend *fe = arg;
	uv_run(fe->loop, UV_RUN_DEFAULT);
	uv_walk(fe->loop, close_walk, NULL);
	uv_run(fe->loop, UV_RUN_DEFAULT);
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
	fe->cfg = p->cfg; /* read-only copy; strings stay the process's */
	fe->policy = &p->policy;
	fe->link_ctx = p->link_ctx;
	fe->connsets = &p->connsets;
	fe->workers = p->workers;
	fe->nworkers = p->nworkers;
	fe->http_connections = &p->http_connections;
	fe->tls = tls_server_ref(p->tls);
	fe->loop = malloc(sizeof(*fe->loop));
	fe->listeners = calloc(FRONTEND_MAX_LISTENERS,
			       sizeof(*fe->listeners));
	if (fe->loop == NULL || fe->listeners == NULL)
		abort();
	uv_loop_init(fe->loop);
	pthread_mutex_init(&fe->wake_lock, NULL);
	uv_async_init(fe->loop, &fe->wakeup, worker_wakeup);
	fe->wakeup.data = fe;
	if (dir_create(fe->loop, &fe->cfg, &fe->dir, &err) < 0) {
		log_error("ldap error=\"%s\"", err);
		return -1;
	}
	const struct config *cfg = &fe->cfg;
	if (listener_start(fe, cfg->frontend_imap_listen, "imap_listen",
			   CLIENT_IMAP, 0) < 0 ||
	    listener_start(fe, cfg->frontend_imaps_listen, "imaps_listen",
			   CLIENT_IMAP, 1) < 0 ||
	    listener_start(fe, cfg->frontend_pop3_listen, "pop3_listen",
			   CLIENT_POP3, 0) < 0 ||
	    listener_start(fe, cfg->frontend_pop3s_listen, "pop3s_listen",
			   CLIENT_POP3, 1) < 0 ||
	    listener_start(fe, cfg->frontend_submission_listen,
			   "submission_listen", CLIENT_SUBMISSION, 0) < 0 ||
	    listener_start(fe, cfg->frontend_submissions_listen,
			   "submissions_listen", CLIENT_SUBMISSION, 1) < 0 ||
	    listener_start(fe, cfg->frontend_lmtp_listen, "lmtp_listen",
			   CLIENT_LMTP, 0) < 0 ||
	    http_routes_start(fe) < 0)
		return -1;
	if (fe->nlisteners == 0) {
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
	http_routes_free(fe);
	probe_sched_free(fe);
	tls_server_unref(&fe->tls);
	tls_server_unref(&fe->new_tls);
	pthread_mutex_destroy(&fe->wake_lock);
	free(fe->listeners);
	free(fe->loop);
	fe->loop = NULL;
}

static void
workers_wake(struct process *p, int stop, struct tls_server *t)
{
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct frontend *fe = &p->workers[i];
		pthread_mutex_lock(&fe->wake_lock);
		if (stop)
			fe->stop_requested = 1;
		if (t != NULL) {
			tls_server_unref(&fe->new_tls);
			fe->new_tls = tls_server_ref(t);
		}
		pthread_mutex_unlock(&fe->wake_lock);
		uv_async_send(&fe->wakeup);
	}
}

/* SIGHUP: the certificates for mail clients are read again (same
 * paths); sessions keep theirs, new connections get the new ones. */
static void
on_reload(uv_signal_t *h, int signum)
{
	struct process *p = h->data;
	const char *err;
	struct tls_server *t = tls_server_load(p->cfg.tls_cert_file,
					       p->cfg.tls_key_file,
					       p->cfg.tls_sni_dir, &err);
	if (t == NULL) {
		log_error("reload: certificates kept, error=\"%s\"", err);
		return;
	}
	workers_wake(p, 0, t);
	tls_server_unref(&p->tls);
	p->tls = t;
	log_info("reload: certificates loaded count=%u",
		 tls_server_count(t));
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct process *p = h->data;
	log_info("signal=%d stopping", signum);
	uv_close((uv_handle_t *)&p->sigterm, NULL);
	uv_close((uv_handle_t *)&p->sigint, NULL);
	uv_close((uv_handle_t *)&p->sighup, NULL);
	workers_wake(p, 1, NULL);
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
	int opt, rc = 1;
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt == 'c')
			config_path = optarg;
		else
			usage();
	}
	if (config_path == NULL)
		usage();

	static struct process p;
	config_defaults(&p.cfg);
	if (config_load(&p.cfg, config_path, &err) < 0) {
		fprintf(stderr, "portico-frontend: %s\n", err);
		return 1;
	}
	enum log_level level = LOG_LEVEL_INFO;
	if (log_level_parse(p.cfg.global_log_level, &level) < 0) {
		fprintf(stderr, "portico-frontend: invalid log_level\n");
		return 1;
	}
	log_init(p.cfg.global_name, level);
	const char *types[] = {p.cfg.frontend_imap_login_type,
			       p.cfg.frontend_pop3_login_type};
	for (int i = 0; i < 2; i++) {
		if (strcmp(types[i], "secure") != 0 &&
		    strcmp(types[i], "plaintext") != 0) {
			log_error("login type \"%s\": expected secure or "
				  "plaintext",
				  types[i]);
			return 1;
		}
	}
	if (connsets_load(&p.cfg, &p.connsets, &err) < 0) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	p.tls = tls_server_load(p.cfg.tls_cert_file, p.cfg.tls_key_file,
				p.cfg.tls_sni_dir, &err);
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
	if (policy_create(&p.policy, &p.cfg, &err) < 0) {
		log_error("frontend policy error=\"%s\"", err);
		return 1;
	}
	p.nworkers = workers_wanted(&p.cfg);
	p.workers = calloc(p.nworkers, sizeof(*p.workers));
	if (p.workers == NULL)
		abort();
	unsigned started = 0;
	for (unsigned i = 0; i < p.nworkers; i++)
		if (worker_init(&p, &p.workers[i], i) < 0)
			goto out;
	p.loop = uv_default_loop();
	uv_signal_init(p.loop, &p.sigterm);
	uv_signal_init(p.loop, &p.sigint);
	uv_signal_init(p.loop, &p.sighup);
	p.sigterm.data = p.sigint.data = p.sighup.data = &p;
	uv_signal_start(&p.sigterm, on_signal, SIGTERM);
	uv_signal_start(&p.sigint, on_signal, SIGINT);
	uv_signal_start(&p.sighup, on_reload, SIGHUP);
	for (; started < p.nworkers; started++) {
		if (pthread_create(&p.workers[started].thread, NULL, worker_run,
				   &p.workers[started]) != 0) {
			log_error("cannot start worker %u", started);
			workers_wake(&p, 1, NULL);
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
	if (p.loop != NULL) {
		uv_walk(p.loop, close_walk, NULL);
		uv_run(p.loop, UV_RUN_DEFAULT);
		uv_loop_close(p.loop);
	}
	tls_server_unref(&p.tls);
	SSL_CTX_free(p.link_ctx);
	policy_free(&p.policy);
	config_free(&p.cfg);
	log_info("stopped");
	return rc;
}
