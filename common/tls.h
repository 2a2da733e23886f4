/* tls.h - OpenSSL contexts for Portico.
 *
 * TLS 1.2 and 1.3 only.  Server contexts present a certificate chain;
 * link contexts additionally verify the peer against the deployment CA
 * (mutual TLS).  Errors are returned as text in *error_r (static storage).
 */
#ifndef PORTICO_TLS_H
#define PORTICO_TLS_H

#include <openssl/ssl.h>

/* Context for mail clients: cert/key from the configuration. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
			const char **error_r);
/* Link server (backend): requires a client certificate signed by ca_file
 * whose extended key usage allows TLS client authentication. */
SSL_CTX *tls_link_server_ctx(const char *ca_file, const char *cert_file,
			     const char *key_file, const char **error_r);
/* Link client (frontend): presents cert/key, verifies the backend. */
SSL_CTX *tls_link_client_ctx(const char *ca_file, const char *cert_file,
			     const char *key_file, const char **error_r);
/* The last OpenSSL error as text. */
const char *tls_last_error(void);

#endif
