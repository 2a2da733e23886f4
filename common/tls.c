/* tls.c - OpenSSL contexts. */
#include "common/tls.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static char tls_error[256];

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
	static char msg[512];
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
