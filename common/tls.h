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
/* The certificates shown to mail clients: a default context and, for
 * SNI, one per certificate of a directory.  A set is immutable and
 * reference counted (atomically): a reload builds a new set, and
 * connections that started TLS with the old one keep it until they end.
 *
 * tls_server_load(): cert/key as tls_server_ctx(); sni_dir (may be "")
 * holds NAME.pem (chain) + NAME.key pairs; during the handshake the
 * first certificate whose names match the client's SNI (wildcards
 * included) is used, the default one otherwise.  Every context of the
 * set seals its session tickets with tickets (tls_tickets.h; the set
 * keeps a reference), which clients may resume for session_lifetime
 * seconds; tickets NULL or a lifetime of 0: no resumption.  Returns NULL
 * and *error_r on any unreadable or mismatched file. */
struct tls_server;
struct tls_tickets;
struct tls_server *tls_server_load(const char *cert_file, const char *key_file,
				   const char *sni_dir,
				   struct tls_tickets *tickets,
				   long session_lifetime, const char **error_r);
SSL_CTX *tls_server_default(struct tls_server *t);
/* The context whose certificate names host name[0..len), as SNI picks
 * it, else the default one. */
SSL_CTX *tls_server_for_name(struct tls_server *t, const char *name,
			     size_t len);
/* Certificates in the set (1 + SNI ones). */
unsigned tls_server_count(const struct tls_server *t);
/* Session-ticket keys the set opens tickets with (0: no resumption). */
unsigned tls_server_ticket_keys(const struct tls_server *t);
struct tls_server *tls_server_ref(struct tls_server *t);
void tls_server_unref(struct tls_server **t);

/* The last OpenSSL error as text. */
const char *tls_last_error(void);

#endif
