/* main.c - portico-backend: link server, session host, mail store. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/transport/queue.h"
#include "common/log.h"
#include "common/tls.h"

static void
usage(void)
{
	fprintf(stderr, "usage: portico-backend -c CONFIG\n");
	exit(2);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct backend *be = h->data;
	log_info("signal=%d stopping", signum);
	uv_signal_stop(&be->sigterm);
	uv_signal_stop(&be->sigint);
	link_server_stop(be);
	backend_http_stop(be);
	queue_stop(be);
	direct_stop(be);
	uv_stop(be->loop);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
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

	static struct backend be;
	config_defaults(&be.cfg);
	if (config_load(&be.cfg, config_path, &err) < 0) {
		fprintf(stderr, "portico-backend: %s\n", err);
		return 1;
	}
	enum log_level level = LOG_LEVEL_INFO;
	if (log_level_parse(be.cfg.global_log_level, &level) < 0) {
		fprintf(stderr, "portico-backend: invalid log_level\n");
		return 1;
	}
	log_init(be.cfg.global_name, level);
	if (be.cfg.backend_id[0] == '\0' || be.cfg.backend_store_dir[0] == '\0' ||
	    be.cfg.backend_link_listen[0] == '\0') {
		log_error("backend.id, backend.store_dir and backend.link_listen "
			  "are required");
		return 1;
	}
	if (direct_check_config(&be.cfg, &err) < 0) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	backend_imap_capabilities_init(&be.cfg);
	be.imap_rev2 = 1;
	if (store_open(be.cfg.backend_store_dir, be.cfg.backend_store_map_size,
		       &be.store, &err) < 0) {
		log_error("store error=\"%s\"", err);
		return 1;
	}
	be.link_ctx = tls_link_server_ctx(be.cfg.tls_ca_file,
					  be.cfg.tls_link_cert_file,
					  be.cfg.tls_link_key_file, &err);
	if (be.link_ctx == NULL) {
		log_error("link TLS error=\"%s\"", err);
		return 1;
	}
	be.loop = uv_default_loop();
	if (store_writer_start(be.store, be.loop, &err) < 0) {
		log_error("store writer error=\"%s\"", err);
		return 1;
	}
	if (link_server_start(&be, &err) < 0) {
		log_error("link listen=%s error=\"%s\"",
			  be.cfg.backend_link_listen, err);
		return 1;
	}
	if (direct_start(&be, &err) < 0) {
		log_error("direct listen=%s error=\"%s\"",
			  be.cfg.backend_direct_imap_listen, err);
		return 1;
	}
	if (queue_start(&be, &err) < 0) {
		log_error("transport queue error=\"%s\"", err);
		return 1;
	}
	if (backend_http_start(&be, &err) < 0) {
		log_error("http listen=%s error=\"%s\"",
			  be.cfg.backend_http_listen, err);
		return 1;
	}
	uv_signal_init(be.loop, &be.sigterm);
	uv_signal_init(be.loop, &be.sigint);
	be.sigterm.data = be.sigint.data = &be;
	uv_signal_start(&be.sigterm, on_signal, SIGTERM);
	uv_signal_start(&be.sigint, on_signal, SIGINT);
	log_info("backend id=%s site=%lld link=%s store=%s ready",
		 be.cfg.backend_id, (long long)be.cfg.global_site,
		 be.cfg.backend_link_listen, be.cfg.backend_store_dir);
	uv_run(be.loop, UV_RUN_DEFAULT);

	/* Let closing links finish, then close what is left. */
	uv_run(be.loop, UV_RUN_NOWAIT);
	store_writer_stop(be.store);
	uv_walk(be.loop, close_walk, NULL);
	uv_run(be.loop, UV_RUN_DEFAULT);
	uv_loop_close(be.loop);
	backend_http_free(&be);
	queue_free(&be);
	direct_free(&be);
	SSL_CTX_free(be.link_ctx);
	store_close(&be.store);
	config_free(&be.cfg);
	log_info("stopped");
	return 0;
}
