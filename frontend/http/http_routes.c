/* http_routes.c - the frontend's HTTP listeners and the table of what
 * they serve. */
#include "frontend/http/http_routes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cidr.h"
#include "common/log.h"
#include "frontend/frontend.h"

typedef void http_route_fn(struct frontend *fe, struct http_conn *hc,
			   struct http_request *req);

struct http_route {
	const char *path;
	int nocase;        /* Outlook capitalises at will */
	http_route_fn *fn;
};

/* clang-format off */
static const struct http_route http_routes[] = {
	{ "/mail/config-v1.1.xml",                      0, http_autoconfig },
	{ "/.well-known/autoconfig/mail/config-v1.1.xml", 0, http_autoconfig },
	{ "/mail/apple.mobileconfig",                   0, http_mobileconfig },
	{ "/autodiscover/autodiscover.xml",             1, http_autodiscover },
	{ "/",                                          0, http_settings_page },
	{ "/settings",                                  0, http_settings_page },
	{ "/metrics",                                   0, http_metrics },
	{ "/sessions",                                  0, http_sessions },
	{ "/health",                                    0, http_health },
	{ "/health/imap",                               0, http_health },
	{ "/health/pop3",                               0, http_health },
};
/* clang-format on */

static void
http_routes_handle(struct http_conn *hc, struct http_request *req, void *ctx)
{
	struct frontend *fe = ctx;
	for (size_t i = 0; i < sizeof(http_routes) / sizeof(http_routes[0]);
	     i++) {
		const struct http_route *r = &http_routes[i];
		if (r->nocase ? strcasecmp(r->path, req->path) == 0
			      : strcmp(r->path, req->path) == 0) {
			r->fn(fe, hc, req);
			return;
		}
	}
	static const char nf[] = "Not found.\n";
	http_respond(hc, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1,
		     NULL);
}

static struct tls_server *
http_routes_certs(void *ctx)
{
	struct frontend *fe = ctx;
	return tls_server_ref(fe->tls);
}

static int
http_routes_proxy(void *ctx, const struct sockaddr *sa)
{
	struct frontend *fe = ctx;
	return policy_proxy_allowed(fe->policy, sa);
}

void
http_routes_apply(struct frontend *fe)
{
	if (fe->http == NULL)
		return;
	struct http_server_conf conf = {0};
	http_server_conf_settings(&conf, &fe->cfg);
	http_server_set_limits(fe->http, &conf);
}

/* limits.max_connections_per_address and connection_rate_per_address
 * count HTTP connections too, but for frontend.trusted_networks (and a
 * load balancer's own connections for the rate), as for mail. */
static int
http_routes_addr_acquire(void *ctx, const struct sockaddr *sa)
{
	struct frontend *fe = ctx;
	if (policy_trusted(fe->policy, sa))
		return 0;
	if (!policy_proxy_allowed(fe->policy, sa) &&
	    limits_rate_admit(fe->policy, sa, lru_now()) < 0) {
		metrics_add(&fe->metrics.rate_refused, 1);
		return -1;
	}
	return limits_addr_acquire(fe->policy, sa);
}

static void
http_routes_addr_release(void *ctx, const struct sockaddr *sa)
{
	struct frontend *fe = ctx;
	if (!policy_trusted(fe->policy, sa))
		limits_addr_release(fe->policy, sa);
}

int
http_routes_start(struct frontend *fe)
{
	const struct config *cfg = &fe->cfg;
	/* made with no listener too: a reload may give it one */
	struct http_server_conf conf = {
	    .connections = fe->http_connections,
	    .handler = http_routes_handle,
	    .ctx = fe,
	    .tls_certs = http_routes_certs,
	    .proxy_required = http_routes_proxy,
	    .addr_acquire = http_routes_addr_acquire,
	    .addr_release = http_routes_addr_release,
	};
	http_server_conf_settings(&conf, cfg);
	http_sessions_start(fe);
	fe->http = http_server_create(fe->loop, &conf);
	const char *addrs[2] = {cfg->http_listen, cfg->http_tls_listen};
	for (int tls = 0; tls < 2; tls++) {
		const char *err;
		if (addrs[tls][0] == '\0')
			continue;
		if (http_server_listen(fe->http, addrs[tls], tls, &err) < 0) {
			log_error("http.%s=%s error=\"%s\"",
				  tls ? "tls_listen" : "listen", addrs[tls],
				  err);
			return -1;
		}
		if (fe->index == 0)
			log_info("listening protocol=%s address=%s",
				 tls ? "https" : "http", addrs[tls]);
	}
	return 0;
}

void
http_routes_move(struct frontend *fe, int tls, int fd, const char *addr)
{
	const char *err;
	http_server_unlisten(fe->http, tls);
	if (fd < 0)
		return;
	if (http_server_listen_fd(fe->http, fd, tls, &err) < 0)
		log_error("http.%s=%s error=\"%s\"",
			  tls ? "tls_listen" : "listen", addr, err);
	else if (fe->index == 0)
		log_info("listening protocol=%s address=%s",
			 tls ? "https" : "http", addr);
}

void
http_routes_stop(struct frontend *fe)
{
	http_server_stop(fe->http);
	http_sessions_stop(fe);
}

void
http_routes_free(struct frontend *fe)
{
	if (fe->http != NULL)
		http_server_free(&fe->http);
	http_sessions_free(fe);
}

int
http_get_only(struct http_conn *hc, const struct http_request *req)
{
	if (strcmp(req->method, "GET") == 0 || req->head)
		return 1;
	static const char m[] = "Use GET.\n";
	http_respond(hc, 405, "text/plain; charset=utf-8", m, sizeof(m) - 1,
		     "Allow: GET, HEAD\r\n");
	return 0;
}

int
http_mail_address_valid(const char *addr, const char **domain_r)
{
	size_t len = strlen(addr);
	const char *at = strrchr(addr, '@');
	if (len == 0 || len > 254 || at == NULL || at == addr ||
	    at[1] == '\0')
		return 0;
	for (const char *p = addr; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>' ||
		    ch == '"' || ch == '\\')
			return 0;
	}
	for (const char *p = at + 1; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return 0;
	if (domain_r != NULL)
		*domain_r = at + 1;
	return 1;
}

const struct connset *
http_public_settings(const struct frontend *fe, enum connset_proto p)
{
	static const struct connset none;
	const struct config *cfg = &fe->cfg;
	if (!connsets_shown(fe->connsets, p) ||
	    (p == CONNSET_IMAP && !cfg->frontend_imap_enabled) ||
	    (p == CONNSET_POP3 && !cfg->frontend_pop3_enabled))
		return &none;
	return &fe->connsets->external[p];
}
