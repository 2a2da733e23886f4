/* main.c - portico-backend: link server, session host, mail store.
 *
 * Signals, on the one event loop:
 *
 *   SIGHUP   reads the configuration file again and applies what may
 *            change live (limits, timeouts, quotas, transport, logging);
 *            settings that only take effect at start keep their value (a
 *            warning names each); a file that does not parse changes
 *            nothing.
 *   SIGTERM  drains: the link listener closes, new sessions are refused,
 *            sessions between commands or in IDLE get their goodbye at
 *            once, the others after the command they are running, or when
 *            backend.shutdown_grace is over.  The store writer commits
 *            everything queued before the process exits.  A second
 *            SIGTERM, or SIGINT, stops at once.
 *
 * portico-backend -t -c FILE checks a configuration and exits.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/transport/queue.h"
#include "backend/transport/sendrate.h"
#include "common/config_reload.h"
#include "common/log.h"
#include "common/tls.h"

static void
usage(void)
{
	fprintf(stderr, "usage: portico-backend [-t|--check] -c CONFIG\n");
	exit(2);
}

/* Everything stops; the loop ends once handles are closed. */
static void
backend_stop(struct backend *be)
{
	if (!uv_is_closing((uv_handle_t *)&be->sigterm)) {
		uv_close((uv_handle_t *)&be->sigterm, NULL);
		uv_close((uv_handle_t *)&be->sigint, NULL);
		uv_close((uv_handle_t *)&be->sighup, NULL);
	}
	if (!uv_is_closing((uv_handle_t *)&be->drain_timer))
		uv_close((uv_handle_t *)&be->drain_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&be->external_timer))
		uv_close((uv_handle_t *)&be->external_timer, NULL);
	if (be->notify_ready &&
	    !uv_is_closing((uv_handle_t *)&be->notify_idle))
		uv_close((uv_handle_t *)&be->notify_idle, NULL);
	link_server_stop(be);
	backend_http_stop(be);
	queue_stop(be);
	autoexpunge_stop(be);
	direct_stop(be);
	uv_stop(be->loop);
}

/* The store's external generation, which portico-admin advances with each
 * commit; -1 on a store error (logged). */
static int
external_generation(struct backend *be, uint64_t *gen_r)
{
	MDB_txn *txn;
	const char *err;
	if (store_read_begin(be->store, &txn, &err) < 0) {
		log_error("store error=\"%s\"", err);
		return -1;
	}
	int rc = store_external_generation(be->store, txn, gen_r, &err);
	store_read_end(&txn);
	if (rc < 0)
		log_error("store error=\"%s\"", err);
	return rc;
}

/* backend.external_change_interval: another process (portico-admin) wrote
 * to the store; sessions in IDLE look at their mailbox again.  Re-armed
 * with the current value, so that a reload applies at the next tick. */
static void
external_tick(uv_timer_t *t)
{
	struct backend *be = t->data;
	uint64_t gen;
	int64_t every = be->cfg.backend_external_change_interval;
	if (every > 0 && external_generation(be, &gen) == 0 &&
	    gen != be->external_gen) {
		log_info("store changed by another process: sessions in IDLE "
			 "look again");
		be->external_gen = gen;
		backend_mailbox_changed(be, BACKEND_MBOX_ANY);
	}
	uv_timer_start(t, external_tick,
		       (uint64_t)(every > 0 ? every : 1) * 1000, 0);
}

/* Once a second: what sessions have due by time (IDLE's keepalive). */
static void
engines_tick(uv_timer_t *t)
{
	struct backend *be = t->data;
	uint64_t now = uv_now(be->loop);
	link_server_tick(be, now);
	direct_tick(be, now);
	if (now - be->sendrate_swept_at >= 60000) {
		be->sendrate_swept_at = now;
		sendrate_expire(be->sendrate, now);
	}
}

static void
drain_tick(uv_timer_t *t)
{
	struct backend *be = t->data;
	if (be->sessions > 0 && uv_now(be->loop) < be->drain_until)
		return;
	if (be->sessions > 0) {
		log_info("shutdown grace over: closing sessions=%u",
			 be->sessions);
		link_server_drain(be, 1);
	}
	backend_stop(be);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct backend *be = h->data;
	if (signum == SIGTERM && !be->draining) {
		log_info("signal=%d draining sessions=%u grace=%llds", signum,
			 be->sessions, (long long)be->cfg.backend_shutdown_grace);
		be->draining = 1;
		link_server_drain(be, 0);
		be->drain_until = uv_now(be->loop) +
				  (uint64_t)be->cfg.backend_shutdown_grace * 1000;
		uv_timer_start(&be->drain_timer, drain_tick, 0, 100);
		return;
	}
	log_info("signal=%d stopping", signum);
	backend_stop(be);
}

/* What a configuration must satisfy beyond its syntax and ranges. */
static int
backend_config_check(const struct config *cfg, const char **error_r)
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
	const char *required[] = {cfg->backend_id, cfg->backend_store_dir,
				  cfg->backend_link_listen};
	const char *names[] = {"backend.id", "backend.store_dir",
			       "backend.link_listen"};
	for (int i = 0; i < 3; i++) {
		if (required[i][0] == '\0') {
			snprintf(msg, sizeof(msg), "%s: required", names[i]);
			*error_r = msg;
			return -1;
		}
	}
	const char *addrs[] = {cfg->backend_link_listen, cfg->backend_http_listen};
	const char *addr_names[] = {"backend.link_listen",
				    "backend.http_listen"};
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		const char *err;
		if (addrs[i][0] != '\0' &&
		    conn_parse_addr(addrs[i], &ss, &err) < 0) {
			snprintf(msg, sizeof(msg), "%s: '%s': %s",
				 addr_names[i], addrs[i], err);
			*error_r = msg;
			return -1;
		}
	}
	if (strcmp(cfg->transport_quota_failure, "temporary") != 0 &&
	    strcmp(cfg->transport_quota_failure, "permanent") != 0) {
		snprintf(msg, sizeof(msg),
			 "transport.quota_failure: invalid value '%s' "
			 "(temporary or permanent)",
			 cfg->transport_quota_failure);
		*error_r = msg;
		return -1;
	}
	enum relay_tls tls;
	if (transport_tls_parse(cfg->transport_smarthost_tls, &tls) < 0) {
		snprintf(msg, sizeof(msg),
			 "transport.smarthost_tls: invalid value '%s' (none, "
			 "may, encrypt or verify)",
			 cfg->transport_smarthost_tls);
		*error_r = msg;
		return -1;
	}
	if (imap_caps_rules_check(cfg->imap_client_capabilities_off, error_r) <
	    0)
		return -1;
	unsigned levels[QUOTA_WARNING_LEVELS], nlevels;
	if (quota_warnings_parse(cfg->backend_quota_warnings, levels, &nlevels,
				 error_r) < 0 ||
	    quota_warning_from_check(cfg->backend_quota_warning_from, error_r) <
		0)
		return -1;
	char *tmpl;
	size_t tmpl_len;
	int typed;
	if (quota_warning_file_load(cfg->backend_quota_warning_file, &tmpl,
				    &tmpl_len, &typed, error_r) < 0)
		return -1;
	free(tmpl);
	return direct_check_config(cfg, error_r);
}

/* SIGHUP, on the loop: the new values are read by the next use. */
static void
on_reload(uv_signal_t *h, int signum)
{
	struct backend *be = h->data;
	if (be->draining)
		return;
	log_info("signal=%d reloading config=%s", signum, be->config_path);
	unsigned live;
	if (config_reload(&be->snap, be->config_path, backend_config_check,
			  &live) < 0)
		return;
	/* the old snapshot's strings stay until exit */
	const char *old_link = be->cfg.backend_link_listen;
	const char *old_http = be->cfg.backend_http_listen;
	be->cfg = be->snap->cfg;
	const char *err;
	/* a listener moved: the new address bound before the old one
	   closes; one that cannot be bound keeps the old, and its setting */
	if (strcmp(old_link, be->cfg.backend_link_listen) != 0 &&
	    link_server_move(be, old_link) < 0 &&
	    config_set(&be->snap->cfg, "backend", "link_listen", old_link,
		       &err) < 0)
		abort();
	if (backend_http_reload(be, old_http) < 0 &&
	    config_set(&be->snap->cfg, "backend", "http_listen", old_http,
		       &err) < 0)
		abort();
	be->cfg = be->snap->cfg;
	store_set_max_expunge_records(be->store,
				      (uint64_t)be->cfg.backend_max_expunge_records);
	autoexpunge_reload(be);
	queue_reload(be);
	quota_warnings_reload(&be->cfg);
	log_info("reload: generation=%u settings_changed=%u",
		 be->snap->generation, live);
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
	int opt, check = 0;
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

	static struct backend be;
	be.config_path = config_path;
	be.snap = config_snap_load(config_path, 1, &err);
	if (be.snap == NULL) {
		fprintf(stderr, "portico-backend: %s\n", err);
		return 1;
	}
	be.cfg = be.snap->cfg;
	be.cmd_budget.max = be.cfg.backend_max_command_memory;
	if (backend_config_check(&be.cfg, &err) < 0) {
		fprintf(stderr, "portico-backend: %s: %s\n", config_path, err);
		config_snap_free_all(&be.snap);
		return 1;
	}
	if (check) {
		printf("portico-backend: %s: configuration OK\n", config_path);
		config_snap_free_all(&be.snap);
		return 0;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(be.cfg.global_log_level, &level);
	log_init(be.cfg.global_name, level);
	signal(SIGPIPE, SIG_IGN);
	backend_imap_capabilities_init(&be.cfg);
	be.imap_rev2 = 1;
	int claim = store_claim(be.cfg.backend_store_dir, &err);
	if (claim == STORE_CLAIM_NO_LOCKS) {
		log_warn("store claim warning=\"%s\"", err);
	} else if (claim < 0) {
		log_error("store error=\"%s\"", err);
		return 1;
	}
	if (store_open(be.cfg.backend_store_dir, be.cfg.backend_store_map_size,
		       &be.store, &err) < 0) {
		log_error("store error=\"%s\"", err);
		return 1;
	}
	store_set_max_expunge_records(be.store,
				      (uint64_t)be.cfg.backend_max_expunge_records);
	be.link_ctx = tls_link_server_ctx(be.cfg.tls_ca_file,
					  be.cfg.tls_link_cert_file,
					  be.cfg.tls_link_key_file, &err);
	if (be.link_ctx == NULL) {
		log_error("link TLS error=\"%s\"", err);
		return 1;
	}
	if (link_server_kicks_load(&be, &err) < 0) {
		log_error("store error=\"%s\"", err);
		return 1;
	}
	be.loop = uv_default_loop();
	quota_warnings_start(&be);
	if (store_writer_start(be.store, be.loop, &err) < 0) {
		log_error("store writer error=\"%s\"", err);
		return 1;
	}
	quota_warnings_hook(&be);
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
	autoexpunge_start(&be);
	if (backend_http_start(&be, &err) < 0) {
		log_error("http listen=%s error=\"%s\"",
			  be.cfg.backend_http_listen, err);
		return 1;
	}
	uv_signal_init(be.loop, &be.sigterm);
	uv_signal_init(be.loop, &be.sigint);
	uv_signal_init(be.loop, &be.sighup);
	uv_timer_init(be.loop, &be.drain_timer);
	uv_timer_init(be.loop, &be.external_timer);
	uv_timer_init(be.loop, &be.tick_timer);
	be.sigterm.data = be.sigint.data = be.sighup.data = &be;
	be.drain_timer.data = be.external_timer.data = &be;
	be.tick_timer.data = &be;
	uv_timer_start(&be.tick_timer, engines_tick, 1000, 1000);
	if (external_generation(&be, &be.external_gen) < 0)
		return 1;
	uv_timer_start(&be.external_timer, external_tick, 1000, 0);
	uv_signal_start(&be.sigterm, on_signal, SIGTERM);
	uv_signal_start(&be.sigint, on_signal, SIGINT);
	uv_signal_start(&be.sighup, on_reload, SIGHUP);
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
	autoexpunge_free(&be);
	direct_free(&be);
	backend_watch_free(&be);
	link_server_kicks_free(&be);
	sendrate_table_free(&be.sendrate);
	user_sessions_free(&be.user_sessions);
	SSL_CTX_free(be.link_ctx);
	store_close(&be.store);
	quota_warnings_free();
	config_snap_free_all(&be.snap);
	log_info("stopped");
	return 0;
}
