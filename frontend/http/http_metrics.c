/* http_metrics.c - GET /metrics (Prometheus text format, every loop of
 * the process summed) and GET /health[/PROTOCOL] for load balancers.
 *
 * /health answers 200 only when the directory answers a search now and a
 * backend link is up (on any loop), or, with none up, a TLS handshake
 * with http.health_backend's link address succeeds now; otherwise 503.
 * The body has one line per check with the reason of a failure.
 * /health/imap, /pop3 ... also require that protocol to be offered and
 * listened for by this frontend.
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"
#include "common/conn.h"
#include "common/log.h"
#include "frontend/frontend.h"
#include "frontend/probe/probe_sched.h"

#define HEALTH_PROBE_ID "portico-health-check"

static const char *
metrics_protocol_name(const struct frontend *fe, unsigned p)
{
	if (p == FM_PROTO_HTTP)
		return "http";
	if (p == CLIENT_IMAP)
		return "imap";
	if (p == CLIENT_POP3)
		return "pop3";
	for (unsigned i = 0; i < fe->nworkers; i++) {
		const char *n = __atomic_load_n(
			&fe->workers[i].metrics.protocol_name[p],
			__ATOMIC_ACQUIRE);
		if (n != NULL)
			return n;
	}
	return NULL;
}

static uint64_t
metrics_links_up(const struct frontend *fe)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < fe->nworkers; i++)
		n += metrics_get(&fe->workers[i].metrics.links_ready);
	return n;
}

static void
metrics_write(const struct frontend *fe, struct buf *b)
{
	char labels[160];
	unsigned nw = fe->nworkers;
	const struct frontend *w = fe->workers;
#define SUM(expr)                                      \
	({                                             \
		uint64_t s_ = 0;                       \
		for (unsigned i_ = 0; i_ < nw; i_++)   \
			s_ += metrics_get(&w[i_].expr); \
		s_;                                    \
	})
	metrics_family(b, "portico_frontend_connections_accepted_total",
		       "counter", "Client connections accepted.");
	for (unsigned p = 0; p < CLIENT_PROTOCOL_COUNT; p++) {
		const char *name = metrics_protocol_name(fe, p);
		if (name == NULL)
			continue;
		snprintf(labels, sizeof(labels), "protocol=\"%s\"", name);
		metrics_sample(b, "portico_frontend_connections_accepted_total",
			       labels, SUM(metrics.accepted[p]));
	}
	metrics_family(b, "portico_frontend_connections", "gauge",
		       "Client connections open, by protocol and state.");
	for (unsigned p = 0; p < CLIENT_PROTOCOL_COUNT; p++) {
		const char *name = metrics_protocol_name(fe, p);
		if (name == NULL)
			continue;
		for (unsigned s = 0; s < CLIENT_STATE_COUNT; s++) {
			snprintf(labels, sizeof(labels),
				 "protocol=\"%s\",state=\"%s\"", name,
				 frontend_metrics_state_name(s));
			metrics_sample(b, "portico_frontend_connections",
				       labels, SUM(metrics.connections[p][s]));
		}
	}
	metrics_family(b, "portico_frontend_logins_total", "counter",
		       "Logins by protocol (http: the settings page) and "
		       "result.");
	for (unsigned p = 0; p < FM_PROTOS; p++) {
		const char *name = metrics_protocol_name(fe, p);
		if (name == NULL)
			continue;
		for (unsigned r = 0; r < FM_LOGIN_RESULTS; r++) {
			snprintf(labels, sizeof(labels),
				 "protocol=\"%s\",result=\"%s\"", name,
				 frontend_metrics_login_name(r));
			metrics_sample(b, "portico_frontend_logins_total",
				       labels, SUM(metrics.logins[p][r]));
		}
	}
	static const char *phases[FM_PHASE_COUNT] = {
		[FM_PHASE_TLS] = "tls",         [FM_PHASE_CREDENTIALS] = "credentials",
		[FM_PHASE_LDAP] = "ldap",       [FM_PHASE_ROUTE] = "route",
		[FM_PHASE_BACKEND] = "backend", [FM_PHASE_TOTAL] = "total",
	};
	metrics_family(b, "portico_frontend_login_phase_seconds", "histogram",
		       "Time spent in each phase of a login: tls (handshake), "
		       "credentials (connected to credentials sent), ldap "
		       "(search and bind), route (authenticated to session "
		       "asked of the backend), backend (to session ready), "
		       "total (accepted to session ready).");
	for (unsigned p = 0; p < CLIENT_PROTOCOL_COUNT; p++) {
		const char *name = metrics_protocol_name(fe, p);
		if (name == NULL)
			continue;
		for (unsigned ph = 0; ph < FM_PHASE_COUNT; ph++) {
			struct metrics_hist h;
			memset(&h, 0, sizeof(h));
			for (unsigned i = 0; i < nw; i++)
				metrics_hist_sum(&h, &w[i].metrics.phase[p][ph]);
			snprintf(labels, sizeof(labels),
				 "protocol=\"%s\",phase=\"%s\"", name,
				 phases[ph]);
			metrics_hist_write(b,
					   "portico_frontend_login_phase_seconds",
					   labels, &h);
		}
	}
	metrics_family(b, "portico_frontend_tls_handshakes_total", "counter",
		       "TLS handshakes with mail clients by protocol, "
		       "resumed=\"yes\" for those that resumed a session "
		       "(tls.ticket_key_file, tls.session_lifetime).");
	for (unsigned p = 0; p < CLIENT_PROTOCOL_COUNT; p++) {
		const char *name = metrics_protocol_name(fe, p);
		if (name == NULL)
			continue;
		for (unsigned r = 0; r < 2; r++) {
			snprintf(labels, sizeof(labels),
				 "protocol=\"%s\",resumed=\"%s\"", name,
				 r ? "yes" : "no");
			metrics_sample(
			    b, "portico_frontend_tls_handshakes_total", labels,
			    SUM(metrics.tls_handshakes[p][r]));
		}
	}
	metrics_family(b, "portico_frontend_ldap_errors_total", "counter",
		       "Logins that met a directory failure, by kind.");
	metrics_sample(b, "portico_frontend_ldap_errors_total",
		       "kind=\"unavailable\"",
		       SUM(metrics.ldap_errors[FM_LDAP_UNAVAILABLE]));
	metrics_sample(b, "portico_frontend_ldap_errors_total",
		       "kind=\"timeout\"",
		       SUM(metrics.ldap_errors[FM_LDAP_TIMEOUT]));
	metrics_family(b, "portico_frontend_auth_penalties_total", "counter",
		       "Logins held back by the brute-force penalty, by the "
		       "count behind it: their (address, login) pair's or "
		       "directory entry's (login), their address's "
		       "(address: limits.auth_address_failures).");
	metrics_sample(b, "portico_frontend_auth_penalties_total",
		       "kind=\"login\"", SUM(metrics.auth_penalties[0]));
	metrics_sample(b, "portico_frontend_auth_penalties_total",
		       "kind=\"address\"", SUM(metrics.auth_penalties[1]));
	metrics_family(b, "portico_frontend_connection_rate_refusals_total",
		       "counter",
		       "Mail and HTTP connections closed at once because their "
		       "client address opened more than "
		       "limits.connection_rate_per_address a minute.");
	metrics_sample(b, "portico_frontend_connection_rate_refusals_total",
		       NULL, SUM(metrics.rate_refused));
	metrics_family(b, "portico_frontend_link_sessions_total", "counter",
		       "Sessions opened on backends over the links.");
	metrics_sample(b, "portico_frontend_link_sessions_total", NULL,
		       SUM(metrics.link_sessions));
	metrics_family(b, "portico_frontend_link_writes_total", "counter",
		       "Writes to the links (the frames of one loop iteration "
		       "go out in one write per link).");
	metrics_sample(b, "portico_frontend_link_writes_total", NULL,
		       SUM(metrics.link_writes));
	metrics_family(b, "portico_frontend_link_pings_total", "counter",
		       "Pings sent to links that had been quiet for "
		       "frontend.link_ping_interval.");
	metrics_sample(b, "portico_frontend_link_pings_total", NULL,
		       SUM(metrics.link_pings));
	metrics_family(b, "portico_frontend_link_timeouts_total", "counter",
		       "Links given up after frontend.link_timeout without a "
		       "frame from the backend.");
	metrics_sample(b, "portico_frontend_link_timeouts_total", NULL,
		       SUM(metrics.link_timeouts));
	metrics_family(b, "portico_frontend_client_writes_total", "counter",
		       "Writes to mail clients' sockets (what one read from a "
		       "link brings a client leaves in one write, a "
		       "session's last answer with its TLS close_notify).");
	metrics_sample(b, "portico_frontend_client_writes_total", NULL,
		       SUM(metrics.client_writes));
	metrics_family(b, "portico_frontend_kicked_sessions_total", "counter",
		       "SMTP submission sessions, and IMAP sessions parked "
		       "here, ended by portico-admin kick (the backend ends "
		       "the IMAP and POP3 sessions it runs).");
	metrics_sample(b, "portico_frontend_kicked_sessions_total", NULL,
		       SUM(metrics.kicked));
	metrics_family(b, "portico_frontend_parked_sessions", "gauge",
		       "IMAP sessions in IDLE parked at this frontend "
		       "(imap.park_after): the client connected, the backend "
		       "keeping only a watch of the mailbox.");
	metrics_sample(b, "portico_frontend_parked_sessions", NULL,
		       SUM(metrics.parked));
	metrics_family(b, "portico_frontend_park_revivals_total", "counter",
		       "Parked IMAP sessions taken up again on their backend "
		       "(the mailbox changed, the client spoke).");
	metrics_sample(b, "portico_frontend_park_revivals_total", NULL,
		       SUM(metrics.park_revivals));
	metrics_family(b, "portico_frontend_link_bytes_total", "counter",
		       "Session bytes relayed over the links.");
	metrics_sample(b, "portico_frontend_link_bytes_total",
		       "direction=\"to_backend\"",
		       SUM(metrics.link_bytes_to_backend));
	metrics_sample(b, "portico_frontend_link_bytes_total",
		       "direction=\"from_backend\"",
		       SUM(metrics.link_bytes_from_backend));
	metrics_family(b, "portico_frontend_backend_links_up", "gauge",
		       "Links to backends that are up (one per backend and "
		       "event loop).");
	metrics_sample(b, "portico_frontend_backend_links_up", NULL,
		       metrics_links_up(fe));
	metrics_family(b, "portico_frontend_http_connections", "gauge",
		       "Open HTTP(S) connections.");
	metrics_sample(b, "portico_frontend_http_connections", NULL,
		       __atomic_load_n(fe->http_connections,
				       __ATOMIC_RELAXED));
	metrics_family(b, "portico_frontend_workers", "gauge",
		       "Event loops of this frontend.");
	metrics_sample(b, "portico_frontend_workers", NULL, nw);
	probe_sched_metrics(fe, b);
#undef SUM
}

int
http_management_allowed(struct frontend *fe, struct http_conn *hc,
			const struct http_request *req)
{
	if (!http_get_only(hc, req))
		return 0;
	if (!policy_metrics_allowed(fe->policy,
				    (const struct sockaddr *)&req->peer)) {
		static const char m[] = "Not from this address "
					"(http.metrics_networks).\n";
		http_respond(hc, 403, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return 0;
	}
	return 1;
}

void
http_metrics(struct frontend *fe, struct http_conn *hc,
	     struct http_request *req)
{
	if (!http_management_allowed(fe, hc, req))
		return;
	struct buf b = BUF_INIT;
	metrics_write(fe, &b);
	http_respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8",
		     buf_ptr(&b), buf_used(&b), NULL);
	buf_free(&b);
}

/* -- health ---------------------------------------------------------------*/

struct health_probe;

struct health {
	struct frontend *fe;
	struct http_conn *hc;       /* NULL once answered or gone */
	struct dir_req *dreq;
	struct health_probe *probe;
	uv_timer_t timer;           /* bounds the backend probe */
	char protocol[16];          /* "" for every protocol */
	char address[128];          /* of the backend probed */
	char proto_line[160];
	char ldap[200];
	char backend[200];
};

struct health_probe {
	struct conn conn;
	struct health *h;           /* NULL once the check is over */
};

static void health_backend_done(struct health *h, int ok, const char *why);

/* A protocol asked for must be offered; /health alone only reports. */
static int
health_proto_ok(const struct health *h)
{
	return h->protocol[0] == '\0' ||
	       strstr(h->proto_line, " fail") == NULL;
}

static void
health_freed(uv_handle_t *t)
{
	free(t->data);
}

static void
health_end(struct health *h)
{
	if (h->dreq != NULL) {
		dir_cancel(h->dreq);
		h->dreq = NULL;
	}
	if (h->probe != NULL) {
		h->probe->h = NULL;
		conn_abort(&h->probe->conn);
		h->probe = NULL;
	}
	h->hc = NULL;
	uv_close((uv_handle_t *)&h->timer, health_freed);
}

static void
health_cancel(void *arg)
{
	health_end(arg);
}

static void
health_answer(struct health *h, int ok)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "status %s\n%s\n%s\n%s", ok ? "ok" : "fail", h->ldap,
		   h->backend, h->proto_line);
	http_respond(h->hc, ok ? 200 : 503, "text/plain; charset=utf-8",
		     buf_ptr(&b), buf_used(&b), NULL);
	buf_free(&b);
	health_end(h);
}

static void
probe_read(struct conn *c, const char *data, size_t len)
{
	(void)c;
	(void)data;
	(void)len;
}

static void
probe_error(struct conn *c, const char *why)
{
	struct health_probe *p = c->data;
	if (p->h != NULL) {
		struct health *h = p->h;
		h->probe = NULL;
		p->h = NULL;
		health_backend_done(h, 0, why);
	}
}

static void
probe_tls_ready(struct conn *c)
{
	struct health_probe *p = c->data;
	if (p->h != NULL) {
		struct health *h = p->h;
		h->probe = NULL;
		p->h = NULL;
		health_backend_done(h, 1, NULL);
	}
	conn_close(c);
}

static void
probe_closed(struct conn *c)
{
	free(c->data);
}

static const struct conn_ops probe_ops = {
	.read = probe_read,
	.error = probe_error,
	.tls_ready = probe_tls_ready,
	.closed = probe_closed,
};

static void
probe_connected(struct conn *c, int status)
{
	struct health_probe *p = c->data;
	if (p->h == NULL)
		return;
	if (status < 0) {
		probe_error(c, uv_strerror(status));
		conn_abort(c);
		return;
	}
	struct health *h = p->h;
	char host[128];
	snprintf(host, sizeof(host), "%s", h->address);
	char *colon = strrchr(host, ':');
	if (colon != NULL)
		*colon = '\0';
	if (conn_start_tls(c, h->fe->link_ctx, 0, host) < 0 ||
	    conn_read_start(c) < 0) {
		probe_error(c, "TLS setup failed");
		conn_abort(c);
	}
}

static void
health_timeout(uv_timer_t *t)
{
	struct health *h = t->data;
	if (h->probe != NULL) {
		h->probe->h = NULL;
		conn_abort(&h->probe->conn);
		h->probe = NULL;
	}
	health_backend_done(h, 0, "timeout");
}

static void
health_backend_done(struct health *h, int ok, const char *why)
{
	char id[64];
	snprintf(id, sizeof(id), "%s", h->fe->cfg.http_health_backend);
	if (ok)
		snprintf(h->backend, sizeof(h->backend),
			 "backend ok links_up=0 probe=%s", id);
	else
		snprintf(h->backend, sizeof(h->backend),
			 "backend fail no link up; probe=%s: %s", id,
			 why ? why : "failed");
	uv_timer_stop(&h->timer);
	health_answer(h, ok && health_proto_ok(h));
}

static void
health_probe_start(struct health *h, const char *address)
{
	struct sockaddr_storage ss;
	const char *err;
	/* the address, for the probe's TLS host name check */
	snprintf(h->address, sizeof(h->address), "%s", address);
	if (conn_parse_addr(address, &ss, &err) < 0) {
		health_backend_done(h, 0, err);
		return;
	}
	struct health_probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	if (conn_init(h->fe->loop, &p->conn, &probe_ops, p) < 0) {
		free(p);
		health_backend_done(h, 0, "no memory");
		return;
	}
	p->h = h;
	h->probe = p;
	uv_timer_start(&h->timer, health_timeout,
		       (uint64_t)h->fe->cfg.ldap_timeout * 1000, 0);
	int rc = conn_connect(&p->conn, (struct sockaddr *)&ss,
			      probe_connected);
	if (rc < 0) {
		h->probe = NULL;
		p->h = NULL;
		conn_abort(&p->conn);
		health_backend_done(h, 0, uv_strerror(rc));
	}
}

static void
health_ldap_done(void *ctx, enum dir_result res, const struct dir_backend *be,
		 const char *why)
{
	struct health *h = ctx;
	struct frontend *fe = h->fe;
	h->dreq = NULL;
	int proto_ok = health_proto_ok(h);
	if (res == DIR_TEMPFAIL) {
		snprintf(h->ldap, sizeof(h->ldap), "ldap fail %s",
			 why ? why : "unavailable");
		uint64_t up = metrics_links_up(fe);
		snprintf(h->backend, sizeof(h->backend), "backend %s links_up=%llu",
			 up > 0 ? "ok" : "fail", (unsigned long long)up);
		health_answer(h, 0);
		return;
	}
	snprintf(h->ldap, sizeof(h->ldap), "ldap ok");
	uint64_t up = metrics_links_up(fe);
	if (up > 0) {
		snprintf(h->backend, sizeof(h->backend),
			 "backend ok links_up=%llu", (unsigned long long)up);
		health_answer(h, proto_ok);
		return;
	}
	if (fe->cfg.http_health_backend[0] == '\0') {
		snprintf(h->backend, sizeof(h->backend),
			 "backend fail no link up (http.health_backend not "
			 "set)");
		health_answer(h, 0);
		return;
	}
	if (res != DIR_OK) {
		snprintf(h->backend, sizeof(h->backend),
			 "backend fail no link up; %s: %s",
			 fe->cfg.http_health_backend, why ? why : "not found");
		health_answer(h, 0);
		return;
	}
	health_probe_start(h, be->link_address);
}

/* Whether this frontend offers protocol name; fills h->proto_line. */
static int
health_protocol(struct health *h, const char *name)
{
	const struct config *cfg = &h->fe->cfg;
	const char *listen1 = "", *listen2 = "";
	int enabled = 1;
	if (strcmp(name, "imap") == 0) {
		enabled = cfg->frontend_imap_enabled;
		listen1 = cfg->frontend_imap_listen;
		listen2 = cfg->frontend_imaps_listen;
	} else if (strcmp(name, "pop3") == 0) {
		enabled = cfg->frontend_pop3_enabled;
		listen1 = cfg->frontend_pop3_listen;
		listen2 = cfg->frontend_pop3s_listen;
	} else {
		return -1;
	}
	int ok = enabled && (listen1[0] != '\0' || listen2[0] != '\0');
	size_t used = strlen(h->proto_line);
	snprintf(h->proto_line + used, sizeof(h->proto_line) - used,
		 "%s %s\n", name,
		 ok ? "ok" : enabled ? "fail no listener" : "fail disabled");
	return ok;
}

void
http_health(struct frontend *fe, struct http_conn *hc,
	    struct http_request *req)
{
	if (!http_get_only(hc, req))
		return;
	const char *proto = req->path + strlen("/health");
	if (*proto == '/')
		proto++;
	struct health *h = calloc(1, sizeof(*h));
	if (h == NULL)
		abort();
	h->fe = fe;
	h->hc = hc;
	uv_timer_init(fe->loop, &h->timer);
	h->timer.data = h;
	if (*proto != '\0') {
		if (strlen(proto) >= sizeof(h->protocol) ||
		    health_protocol(h, proto) < 0) {
			static const char m[] = "Unknown protocol.\n";
			http_respond(hc, 404, "text/plain; charset=utf-8", m,
				     sizeof(m) - 1, NULL);
			h->hc = NULL;
			uv_close((uv_handle_t *)&h->timer, health_freed);
			return;
		}
		snprintf(h->protocol, sizeof(h->protocol), "%s", proto);
	} else {
		health_protocol(h, "imap");
		health_protocol(h, "pop3");
	}
	http_defer(hc, health_cancel, h);
	const char *id = fe->cfg.http_health_backend[0]
				 ? fe->cfg.http_health_backend
				 : HEALTH_PROBE_ID;
	h->dreq = dir_lookup_backend(fe->dir, id, health_ldap_done, h);
}
