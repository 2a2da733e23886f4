/* main.c - portico-frontend: listeners, TLS, directory, link pool. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls.h"
#include "frontend/frontend.h"

struct listener {
	uv_tcp_t tcp;
	struct frontend *fe;
	enum client_protocol protocol;
	int implicit_tls;
	const char *setting;
};

static struct listener listeners[4];
static unsigned nlisteners;

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

static int
listener_start(struct frontend *fe, const char *addr, const char *setting,
	       enum client_protocol protocol, int implicit_tls)
{
	if (addr[0] == '\0')
		return 0;
	struct listener *l = &listeners[nlisteners];
	struct sockaddr_storage ss;
	const char *err;
	if (conn_parse_addr(addr, &ss, &err) < 0) {
		log_error("frontend.%s=\"%s\" error=\"%s\"", setting, addr, err);
		return -1;
	}
	uv_tcp_init(fe->loop, &l->tcp);
	l->tcp.data = l;
	l->fe = fe;
	l->protocol = protocol;
	l->implicit_tls = implicit_tls;
	l->setting = setting;
	int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	if (rc < 0) {
		log_error("frontend.%s=%s error=\"%s\"", setting, addr,
			  uv_strerror(rc));
		return -1;
	}
	nlisteners++;
	log_info("listening protocol=%s%s address=%s",
		 protocol == CLIENT_IMAP ? "imap" : "pop3",
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

/* SIGHUP: the certificates for mail clients are read again (same
 * paths); sessions keep theirs, new connections get the new ones. */
static void
on_reload(uv_signal_t *h, int signum)
{
	struct frontend *fe = h->data;
	const char *err;
	struct tls_server *t = tls_server_load(fe->cfg.tls_cert_file,
					       fe->cfg.tls_key_file,
					       fe->cfg.tls_sni_dir, &err);
	if (t == NULL) {
		log_error("reload: certificates kept, error=\"%s\"", err);
		return;
	}
	tls_server_unref(&fe->tls);
	fe->tls = t;
	log_info("reload: certificates loaded count=%u",
		 tls_server_count(t));
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct frontend *fe = h->data;
	log_info("signal=%d stopping", signum);
	fe->stopping = 1;
	uv_signal_stop(&fe->sigterm);
	uv_signal_stop(&fe->sigint);
	uv_signal_stop(&fe->sighup);
	for (unsigned i = 0; i < nlisteners; i++)
		uv_close((uv_handle_t *)&listeners[i].tcp, NULL);
	for (struct client *c = fe->clients, *next; c != NULL; c = next) {
		next = c->next;
		if (c->state != CLIENT_CLOSING) {
			c->proto->bye_unavailable(c, "Server shutting down.");
			client_close(c, "shutdown");
		}
	}
	link_pool_stop(fe);
	dir_shutdown(fe->dir);
}

int
main(int argc, char **argv)
{
	const char *config_path = NULL, *err;
	int opt;
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt == 'c')
			config_path = optarg;
		else
			usage();
	}
	if (config_path == NULL)
		usage();

	static struct frontend fe;
	config_defaults(&fe.cfg);
	if (config_load(&fe.cfg, config_path, &err) < 0) {
		fprintf(stderr, "portico-frontend: %s\n", err);
		return 1;
	}
	enum log_level level = LOG_LEVEL_INFO;
	if (log_level_parse(fe.cfg.global_log_level, &level) < 0) {
		fprintf(stderr, "portico-frontend: invalid log_level\n");
		return 1;
	}
	log_init(fe.cfg.global_name, level);
	const char *types[] = {fe.cfg.frontend_imap_login_type,
			       fe.cfg.frontend_pop3_login_type};
	for (int i = 0; i < 2; i++) {
		if (strcmp(types[i], "secure") != 0 &&
		    strcmp(types[i], "plaintext") != 0) {
			log_error("login type \"%s\": expected secure or "
				  "plaintext",
				  types[i]);
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	fe.tls = tls_server_load(fe.cfg.tls_cert_file, fe.cfg.tls_key_file,
				 fe.cfg.tls_sni_dir, &err);
	if (fe.tls == NULL) {
		log_error("client TLS error=\"%s\"", err);
		return 1;
	}
	fe.link_ctx = tls_link_client_ctx(fe.cfg.tls_ca_file,
					  fe.cfg.tls_link_cert_file,
					  fe.cfg.tls_link_key_file, &err);
	if (fe.link_ctx == NULL) {
		log_error("link TLS error=\"%s\"", err);
		return 1;
	}
	static struct policy policy;
	if (policy_create(&policy, &fe.cfg, &err) < 0) {
		log_error("frontend policy error=\"%s\"", err);
		return 1;
	}
	fe.policy = &policy;
	fe.loop = uv_default_loop();
	if (dir_create(fe.loop, &fe.cfg, &fe.dir, &err) < 0) {
		log_error("ldap error=\"%s\"", err);
		return 1;
	}
	if (listener_start(&fe, fe.cfg.frontend_imap_listen, "imap_listen",
			   CLIENT_IMAP, 0) < 0 ||
	    listener_start(&fe, fe.cfg.frontend_imaps_listen, "imaps_listen",
			   CLIENT_IMAP, 1) < 0 ||
	    listener_start(&fe, fe.cfg.frontend_pop3_listen, "pop3_listen",
			   CLIENT_POP3, 0) < 0 ||
	    listener_start(&fe, fe.cfg.frontend_pop3s_listen, "pop3s_listen",
			   CLIENT_POP3, 1) < 0)
		return 1;
	if (nlisteners == 0) {
		log_error("no listener configured");
		return 1;
	}
	uv_signal_init(fe.loop, &fe.sigterm);
	uv_signal_init(fe.loop, &fe.sigint);
	fe.sigterm.data = fe.sigint.data = &fe;
	uv_signal_start(&fe.sigterm, on_signal, SIGTERM);
	uv_signal_start(&fe.sigint, on_signal, SIGINT);
	uv_signal_init(fe.loop, &fe.sighup);
	fe.sighup.data = &fe;
	uv_signal_start(&fe.sighup, on_reload, SIGHUP);
	log_info("frontend name=%s site=%lld ready", fe.cfg.global_name,
		 (long long)fe.cfg.global_site);
	uv_run(fe.loop, UV_RUN_DEFAULT);
	uv_walk(fe.loop, close_walk, NULL);
	uv_run(fe.loop, UV_RUN_DEFAULT);
	uv_loop_close(fe.loop);
	dir_free(&fe.dir);
	link_pool_free(&fe);
	tls_server_unref(&fe.tls);
	SSL_CTX_free(fe.link_ctx);
	policy_free(&policy);
	config_free(&fe.cfg);
	log_info("stopped");
	return 0;
}
