/* tls.c - OpenSSL contexts. */
#include "common/tls.h"
#include "common/tls_tickets.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static _Thread_local char tls_error[256];

const char *
tls_last_error(void)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "unknown TLS error";
	ERR_error_string_n(e, tls_error, sizeof(tls_error));
	ERR_clear_error();
	return tls_error;
}

static const char *
tls_fail(const char *what, const char *file)
{
	static _Thread_local char msg[512];
	snprintf(msg, sizeof(msg), "%s %s: %s", what, file ? file : "",
		 tls_last_error());
	return msg;
}

static SSL_CTX *
tls_base_ctx(const SSL_METHOD *method)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

static int
tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key,
	      const char **error_r)
{
	if (cert == NULL || cert[0] == '\0') {
		*error_r = "no certificate configured";
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		*error_r = tls_fail("cannot load certificate", cert);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_fail("cannot load key", key);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_fail("key does not match certificate", key);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_server_ctx(const char *cert_file, const char *key_file,
	       const char **error_r)
{
	SSL_CTX *ctx = tls_base_ctx(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_fail("SSL_CTX_new", NULL);
		return NULL;
	}
	if (tls_load_pair(ctx, cert_file, key_file, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	return ctx;
}

static int
tls_load_ca(SSL_CTX *ctx, const char *ca_file, const char **error_r)
{
	if (ca_file == NULL || ca_file[0] == '\0') {
		*error_r = "no CA file configured for the link";
		return -1;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		*error_r = tls_fail("cannot load CA", ca_file);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_link_server_ctx(const char *ca_file, const char *cert_file,
		    const char *key_file, const char **error_r)
{
	SSL_CTX *ctx = tls_base_ctx(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_fail("SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (tls_load_pair(ctx, cert_file, key_file, error_r) < 0 ||
	    tls_load_ca(ctx, ca_file, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	/* Only certificates issued for TLS clients (the frontends). */
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	return ctx;
}

SSL_CTX *
tls_link_client_ctx(const char *ca_file, const char *cert_file,
		    const char *key_file, const char **error_r)
{
	SSL_CTX *ctx = tls_base_ctx(TLS_client_method());
	if (ctx == NULL) {
		*error_r = tls_fail("SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (tls_load_pair(ctx, cert_file, key_file, error_r) < 0 ||
	    tls_load_ca(ctx, ca_file, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	return ctx;
}

/* -- certificate sets for mail clients (SNI, reload) ---------------------*/

#define TLS_SNI_MAX 256

struct tls_server {
	int refs;
	struct tls_tickets *tickets; /* NULL: resumption off */
	SSL_CTX *def;
	unsigned nsni;
	SSL_CTX *sni[TLS_SNI_MAX];
};

SSL_CTX *
tls_server_for_name(struct tls_server *t, const char *name, size_t len)
{
	for (unsigned i = 0; i < t->nsni && len > 0; i++) {
		X509 *cert = SSL_CTX_get0_certificate(t->sni[i]);
		if (cert != NULL &&
		    X509_check_host(cert, name, len, 0, NULL) == 1)
			return t->sni[i];
	}
	return t->def;
}

static int
tls_sni_select(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	(void)alert;
	if (name == NULL || name[0] == '\0')
		return SSL_TLSEXT_ERR_OK;
	SSL_CTX *ctx = tls_server_for_name(t, name, strlen(name));
	if (ctx != t->def)
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
tls_load_sni_dir(struct tls_server *t, const char *dir, const char **error_r)
{
	static _Thread_local char msg[600];
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(msg, sizeof(msg), "cannot read SNI directory %s", dir);
		*error_r = msg;
		return -1;
	}
	/* Sorted, so that the choice among overlapping names is stable. */
	char *names[TLS_SNI_MAX];
	unsigned n = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len <= 4 || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - 4, ".pem") != 0)
			continue;
		if (n == TLS_SNI_MAX) {
			snprintf(msg, sizeof(msg),
				 "more than %d certificates in %s",
				 TLS_SNI_MAX, dir);
			*error_r = msg;
			rc = -1;
			break;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), tls_name_cmp);
	for (unsigned i = 0; i < n && rc == 0; i++) {
		char cert[4096], key[4096];
		size_t len = strlen(names[i]);
		snprintf(cert, sizeof(cert), "%s/%s", dir, names[i]);
		snprintf(key, sizeof(key), "%s/%.*s.key", dir, (int)(len - 4),
			 names[i]);
		SSL_CTX *ctx = tls_server_ctx(cert, key, error_r);
		if (ctx == NULL) {
			rc = -1;
			break;
		}
		t->sni[t->nsni++] = ctx;
	}
	for (unsigned i = 0; i < n; i++)
		free(names[i]);
	return rc;
}

/* Resumption for one context of a set: tickets sealed with the set's
 * keys, valid for lifetime seconds; none at all when lifetime is 0. */
static void
tls_server_sessions(SSL_CTX *ctx, struct tls_tickets *tickets, long lifetime)
{
	if (tickets == NULL) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		return;
	}
	SSL_CTX_set_timeout(ctx, lifetime);
	tls_tickets_use(ctx, tickets);
}

struct tls_server *
tls_server_load(const char *cert_file, const char *key_file,
		const char *sni_dir, struct tls_tickets *tickets,
		long session_lifetime, const char **error_r)
{
	struct tls_server *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	t->refs = 1;
	t->def = tls_server_ctx(cert_file, key_file, error_r);
	if (t->def == NULL) {
		free(t);
		return NULL;
	}
	if (sni_dir != NULL && sni_dir[0] != '\0') {
		if (tls_load_sni_dir(t, sni_dir, error_r) < 0) {
			tls_server_unref(&t);
			return NULL;
		}
		SSL_CTX_set_tlsext_servername_callback(t->def, tls_sni_select);
		SSL_CTX_set_tlsext_servername_arg(t->def, t);
	}
	if (tickets != NULL && session_lifetime > 0)
		t->tickets = tls_tickets_ref(tickets);
	tls_server_sessions(t->def, t->tickets, session_lifetime);
	for (unsigned i = 0; i < t->nsni; i++)
		tls_server_sessions(t->sni[i], t->tickets, session_lifetime);
	return t;
}

SSL_CTX *
tls_server_default(struct tls_server *t)
{
	return t->def;
}

unsigned
tls_server_count(const struct tls_server *t)
{
	return 1 + t->nsni;
}

unsigned
tls_server_ticket_keys(const struct tls_server *t)
{
	return t->tickets != NULL ? tls_tickets_count(t->tickets) : 0;
}

struct tls_server *
tls_server_ref(struct tls_server *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void
tls_server_unref(struct tls_server **tp)
{
	struct tls_server *t = *tp;
	*tp = NULL;
	if (t == NULL || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (unsigned i = 0; i < t->nsni; i++)
		SSL_CTX_free(t->sni[i]);
	SSL_CTX_free(t->def);
	tls_tickets_unref(&t->tickets);
	free(t);
}
