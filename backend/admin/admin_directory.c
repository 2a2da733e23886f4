/* admin_directory.c - portico-admin's view of a deployment, from a
 * frontend's configuration: the backends in LDAP with their health
 * (backends), a frontend's live sessions (sessions), and the LDAP and
 * network helpers the account commands share (admin.h).
 *
 * Everything here blocks: one operator, one command, bounded by
 * ldap.timeout (LDAP, the backend probes) and http.request_timeout (the
 * frontend's /sessions).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend/admin/admin.h"
#include "common/buf.h"
#include "common/conn.h"
#include "common/tls.h"

/* -- LDAP -----------------------------------------------------------------*/

int
admin_ldap_open(const struct config *cfg, const char *dn,
		const char *password, LDAP **ld_r)
{
	LDAP *ld;
	int rc = ldap_initialize(&ld, cfg->ldap_uris);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: ldap.uris \"%s\": %s\n",
			cfg->ldap_uris, ldap_err2string(rc));
		return -1;
	}
	int version = LDAP_VERSION3;
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	/* TLS as the frontend has it: ldaps:// URIs, or StartTLS with
	   ldap.starttls; the directory's certificate always verified. */
	int demand = LDAP_OPT_X_TLS_DEMAND, newctx = 0;
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (cfg->ldap_tls_ca_file[0] != '\0')
		ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE,
				cfg->ldap_tls_ca_file);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &newctx);
	rc = ldap_connect(ld);
	if (rc == LDAP_SUCCESS && cfg->ldap_starttls && !ldap_tls_inplace(ld))
		rc = ldap_start_tls_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		char *diag = NULL;
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		fprintf(stderr, "portico-admin: LDAP %s%s: %s%s%s\n",
			cfg->ldap_uris, cfg->ldap_starttls ? " (StartTLS)" : "",
			ldap_err2string(rc), diag && diag[0] ? ": " : "",
			diag ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	struct berval cred = {strlen(password), (char *)password};
	rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
			      NULL);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: LDAP bind as \"%s\" (%s): %s\n",
			dn, cfg->ldap_uris, ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return -1;
	}
	*ld_r = ld;
	return 0;
}

LDAPMessage *
admin_ldap_read(const struct config *cfg, LDAP *ld, const char *cmd,
		const char *dn, const char *const *attrs, LDAPMessage **entry_r)
{
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)",
				   (char **)(uintptr_t)attrs, 0, NULL, NULL,
				   &tv, 0, &res);
	*entry_r = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	if (*entry_r == NULL) {
		fprintf(stderr, "portico-admin: %s: read %s: %s\n", cmd, dn,
			ldap_err2string(rc));
		ldap_msgfree(res);
		return NULL;
	}
	return res;
}

void
admin_ldap_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out,
		 size_t outsize)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	out[0] = '\0';
	if (v != NULL && v[0] != NULL)
		snprintf(out, outsize, "%.*s", (int)v[0]->bv_len,
			 v[0]->bv_val);
	ldap_value_free_len(v);
}

/* -- network --------------------------------------------------------------*/

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int
admin_connect(const char *addr, int64_t timeout_s, char *why,
	      size_t whysize)
{
	struct sockaddr_storage ss;
	const char *err;
	if (conn_parse_addr(addr, &ss, &err) < 0) {
		snprintf(why, whysize, "address \"%s\": %s", addr, err);
		return -1;
	}
	/* A wildcard listener is reached on the loopback address. */
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whysize, "socket: %s", strerror(errno));
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	socklen_t len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	int rc = connect(fd, (struct sockaddr *)&ss, len);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd p = {fd, POLLOUT, 0};
		rc = poll(&p, 1, (int)(timeout_s * 1000));
		if (rc == 0) {
			snprintf(why, whysize, "connect: timed out after %llds",
				 (long long)timeout_s);
			close(fd);
			return -1;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		errno = soerr;
		rc = soerr == 0 ? 0 : -1;
	}
	if (rc < 0) {
		snprintf(why, whysize, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = {(time_t)timeout_s, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A TLS handshake on fd, checking the peer's certificate for host (the
 * address's host part, as the frontend's link does). */
static SSL *
tls_handshake(int fd, SSL_CTX *ctx, const char *addr, char *why,
	      size_t whysize)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", addr);
	char *colon = strrchr(host, ':');
	if (colon != NULL)
		*colon = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		char *rb = strchr(host, ']');
		if (rb != NULL)
			*rb = '\0';
	}
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL) {
		snprintf(why, whysize, "tls: SSL_new failed");
		return NULL;
	}
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, host);
	SSL_set1_host(ssl, host);
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		unsigned long e = ERR_get_error();
		if (v != X509_V_OK)
			snprintf(why, whysize, "tls: certificate: %s",
				 X509_verify_cert_error_string(v));
		else if (e != 0)
			snprintf(why, whysize, "tls: %s",
				 ERR_reason_error_string(e)
					 ? ERR_reason_error_string(e)
					 : "handshake failed");
		else
			snprintf(why, whysize, "tls: handshake failed (%s)",
				 errno ? strerror(errno) : "connection closed");
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* -- backends -------------------------------------------------------------*/

struct backend_row {
	char id[64];
	long site;
	char address[128];
	char dn[512];
};

static int
backend_cmp(const void *x, const void *y)
{
	const struct backend_row *a = x, *b = y;
	if (a->site != b->site)
		return a->site < b->site ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* What the frontend's health probe does: TCP connect and a TLS handshake
 * with the link certificate; *ms_r the time it took. */
static int
backend_probe(SSL_CTX *ctx, const char *address, int64_t timeout_s,
	      double *ms_r, char *why, size_t whysize)
{
	double t0 = now_ms();
	int fd = admin_connect(address, timeout_s, why, whysize);
	if (fd < 0) {
		*ms_r = now_ms() - t0;
		return -1;
	}
	SSL *ssl = tls_handshake(fd, ctx, address, why, whysize);
	*ms_r = now_ms() - t0;
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
	return ssl != NULL ? 0 : -1;
}

/* backends: every porticoBackend entry under ldap.backends_dn, probed.
 * Exit 0 when every one answered, 1 otherwise. */
int
admin_backends(struct admin *a, int argc, char **argv)
{
	const struct config *cfg = &a->cfg;
	if (argc != 0)
		return ADMIN_USAGE;
	if (cfg->ldap_backends_dn[0] == '\0') {
		fprintf(stderr, "portico-admin: backends: ldap.backends_dn is "
				"not set in %s (give a frontend's "
				"configuration)\n",
			a->config_path);
		return 1;
	}
	const char *err;
	SSL_CTX *ctx = tls_link_client_ctx(cfg->tls_ca_file,
					   cfg->tls_link_cert_file,
					   cfg->tls_link_key_file, &err);
	if (ctx == NULL) {
		fprintf(stderr, "portico-admin: backends: link certificate "
				"(tls.link_cert_file): %s\n",
			err);
		return 1;
	}
	LDAP *ld;
	if (admin_ldap_open(cfg, cfg->ldap_bind_dn, cfg->ldap_bind_password,
			    &ld) < 0) {
		SSL_CTX_free(ctx);
		return 1;
	}
	char *attrs[] = {"cn", "porticoSite", "porticoLinkAddress", NULL};
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, cfg->ldap_backends_dn,
				   LDAP_SCOPE_SUBTREE,
				   "(objectClass=porticoBackend)", attrs, 0,
				   NULL, NULL, &tv, 0, &res);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: backends: search under %s: "
				"%s\n",
			cfg->ldap_backends_dn, ldap_err2string(rc));
		ldap_msgfree(res);
		ldap_unbind_ext_s(ld, NULL, NULL);
		SSL_CTX_free(ctx);
		return 1;
	}
	int count = ldap_count_entries(ld, res);
	size_t n = 0, cap = count > 0 ? (size_t)count : 0;
	struct backend_row *rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (rows == NULL)
		abort();
	for (LDAPMessage *e = ldap_first_entry(ld, res); e != NULL && n < cap;
	     e = ldap_next_entry(ld, e)) {
		struct backend_row *r = &rows[n++];
		char site[32];
		char *dn = ldap_get_dn(ld, e);
		snprintf(r->dn, sizeof(r->dn), "%s", dn ? dn : "");
		ldap_memfree(dn);
		admin_ldap_value(ld, e, "cn", r->id, sizeof(r->id));
		admin_ldap_value(ld, e, "porticoSite", site, sizeof(site));
		admin_ldap_value(ld, e, "porticoLinkAddress", r->address,
				 sizeof(r->address));
		r->site = strtol(site, NULL, 10);
	}
	ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	qsort(rows, n, sizeof(*rows), backend_cmp);
	printf("%-16s %5s  %-24s %s\n", "backend", "site", "link-address",
	       "health");
	unsigned failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct backend_row *r = &rows[i];
		char why[256];
		double ms;
		int ok = backend_probe(ctx, r->address, cfg->ldap_timeout, &ms,
				       why, sizeof(why)) == 0;
		printf("%-16s %5ld  %-24s ", r->id, r->site, r->address);
		if (ok)
			printf("ok %.1f ms\n", ms);
		else
			printf("fail %s (%.1f ms)\n", why, ms);
		failed += !ok;
	}
	printf("%zu backends, %u failing\n", n, failed);
	free(rows);
	SSL_CTX_free(ctx);
	return failed == 0 ? 0 : 1;
}

/* -- sessions -------------------------------------------------------------*/

int
admin_http(const struct config *cfg, const char *addr, int tls,
	   const char *method, const char *path, int *status_r,
	   struct buf *body)
{
	char why[256];
	int fd = admin_connect(addr, cfg->http_request_timeout, why,
			       sizeof(why));
	if (fd < 0) {
		fprintf(stderr, "portico-admin: %s: %s\n", addr, why);
		return -1;
	}
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	if (tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL ||
		    SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file,
						  NULL) != 1) {
			fprintf(stderr, "portico-admin: tls.ca_file %s: "
					"cannot load\n",
				cfg->tls_ca_file);
			SSL_CTX_free(ctx);
			close(fd);
			return -1;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		ssl = tls_handshake(fd, ctx, addr, why, sizeof(why));
		if (ssl == NULL) {
			fprintf(stderr, "portico-admin: %s: %s\n", addr, why);
			SSL_CTX_free(ctx);
			close(fd);
			return -1;
		}
	}
	struct buf req = BUF_INIT, resp = BUF_INIT;
	buf_printf(&req,
		   "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close"
		   "\r\nUser-Agent: portico-admin\r\n%s\r\n",
		   method, path, addr,
		   strcmp(method, "POST") == 0 ? "Content-Length: 0\r\n" : "");
	int rc = -1;
	ssize_t w = ssl ? SSL_write(ssl, buf_ptr(&req), (int)buf_used(&req))
			: write(fd, buf_ptr(&req), buf_used(&req));
	if (w == (ssize_t)buf_used(&req)) {
		char tmp[16384];
		for (;;) {
			ssize_t r = ssl ? SSL_read(ssl, tmp, sizeof(tmp))
					: read(fd, tmp, sizeof(tmp));
			if (r <= 0)
				break;
			buf_append(&resp, tmp, (size_t)r);
		}
		size_t len = buf_used(&resp);
		buf_append(&resp, "", 1); /* for sscanf */
		const char *d = buf_ptr(&resp);
		const char *hend = memmem(d, len, "\r\n\r\n", 4);
		int st = 0;
		if (hend != NULL &&
		    sscanf(d, "HTTP/1.%*d %d", &st) == 1) {
			*status_r = st;
			buf_append(body, hend + 4, len - (size_t)(hend + 4 - d));
			rc = 0;
		} else {
			fprintf(stderr,
				"portico-admin: %s: no HTTP answer to "
				"%s %s\n",
				addr, method, path);
		}
	} else {
		fprintf(stderr, "portico-admin: %s: cannot send: %s\n", addr,
			strerror(errno));
	}
	buf_free(&req);
	buf_free(&resp);
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

/* GET path from the frontend's HTTP listener (http.listen, else
 * http.tls_listen with tls.ca_file): status and body. */
static int
http_get(const struct config *cfg, const char *path, int *status_r,
	 struct buf *body)
{
	const char *addr = cfg->http_listen;
	int tls = 0;
	if (addr[0] == '\0') {
		addr = cfg->http_tls_listen;
		tls = 1;
	}
	if (addr[0] == '\0') {
		fprintf(stderr, "portico-admin: neither http.listen nor "
				"http.tls_listen is set\n");
		return -1;
	}
	return admin_http(cfg, addr, tls, "GET", path, status_r, body);
}

#define TABLE_FIELDS 16

/* Tab-separated lines, a header first, as a table with aligned columns;
 * returns the lines after the header. */
static unsigned
print_table(const struct buf *body)
{
	size_t width[TABLE_FIELDS] = {0};
	unsigned lines = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *p = buf_ptr(body), *end = p + buf_used(body);
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			for (int f = 0; f < TABLE_FIELDS && p <= le; f++) {
				const char *tab = memchr(p, '\t',
							 (size_t)(le - p));
				const char *fe = tab ? tab : le;
				size_t fl = (size_t)(fe - p);
				if (pass == 0 && fl > width[f])
					width[f] = fl;
				if (pass == 1)
					printf("%s%-*.*s", f ? "  " : "",
					       tab == NULL ? 0 : (int)width[f],
					       (int)fl, p);
				p = fe + 1;
			}
			if (pass == 1)
				printf("\n");
			lines += pass == 1;
			p = le + 1;
		}
	}
	return lines > 0 ? lines - 1 : 0;
}

int
admin_backend_http(struct admin *a, const char *cmd, const char *method,
		   const char *path, const char *mailbox_id, int *status_r,
		   struct buf *body)
{
	const char *addr = a->cfg.backend_http_listen;
	if (addr[0] == '\0') {
		fprintf(stderr,
			"portico-admin: %s: backend.http_listen is "
			"not set (the backend is asked over it)\n",
			cmd);
		return -1;
	}
	struct buf url = BUF_INIT;
	buf_append_str(&url, path);
	if (mailbox_id != NULL) {
		buf_append_str(&url,
			       strchr(path, '?') ? "&mailbox=" : "?mailbox=");
		for (const unsigned char *p = (const unsigned char *)mailbox_id;
		     *p; p++) {
			if ((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') ||
			    strchr("-._~", *p) != NULL)
				buf_append(&url, p, 1);
			else
				buf_printf(&url, "%%%02X", *p);
		}
	}
	buf_append(&url, "", 1);
	int rc = admin_http(&a->cfg, addr, 0, method, buf_ptr(&url), status_r,
			    body);
	buf_free(&url);
	return rc;
}

/* sessions MAILBOX_ID given BACKEND.ini (backend.id set): the backend's
 * sessions through every frontend (GET /sessions on backend.http_listen),
 * of one mailbox if given. */
static int
backend_sessions(struct admin *a, int argc, char **argv)
{
	if (argc > 1)
		return ADMIN_USAGE;
	struct buf body = BUF_INIT;
	int status = 0, rc = 1;
	if (admin_backend_http(a, "sessions", "GET", "/sessions",
			       argc == 1 ? argv[0] : NULL, &status,
			       &body) == 0) {
		if (status == 200) {
			printf("%u sessions\n", print_table(&body));
			rc = 0;
		} else {
			fprintf(stderr,
				"portico-admin: sessions: the backend "
				"answered %d: %.*s",
				status, (int)buf_used(&body), buf_ptr(&body));
		}
	}
	buf_free(&body);
	return rc;
}

/* sessions: given FRONTEND.ini, the frontend's connections (GET
 * /sessions), as a table; given BACKEND.ini, the backend's sessions. */
int
admin_sessions(struct admin *a, int argc, char **argv)
{
	if (a->cfg.backend_id[0] != '\0')
		return backend_sessions(a, argc, argv);
	if (argc != 0)
		return ADMIN_USAGE;
	struct buf body = BUF_INIT;
	int status = 0;
	if (http_get(&a->cfg, "/sessions", &status, &body) < 0) {
		buf_free(&body);
		return 1;
	}
	if (status != 200) {
		fprintf(stderr,
			"portico-admin: sessions: the frontend "
			"answered %d: %.*s",
			status, (int)buf_used(&body), buf_ptr(&body));
		buf_free(&body);
		return 1;
	}
	printf("%u sessions\n", print_table(&body));
	buf_free(&body);
	return 0;
}
