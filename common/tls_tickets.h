/* tls_tickets.h - the keys that seal TLS session tickets (RFC 5077;
 * RFC 8446 4.6.1).
 *
 * A frontend seals the tickets it gives mail clients with the first key of
 * a set and opens tickets sealed with any key of it.  Frontends that read
 * the same key file (tls.ticket_key_file) therefore resume each other's
 * sessions, so that a client sent to another frontend by a load balancer
 * skips the certificate and its signature.  Without a file a frontend makes
 * one random key at start and keeps it across reloads.
 *
 * The file: one key per line, TLS_TICKET_KEY_HEX hexadecimal digits (80
 * bytes: a 16-byte name, a 32-byte HMAC-SHA256 secret, a 32-byte AES-256
 * key; `openssl rand -hex 80` makes one); blank lines and lines that start
 * with '#' are skipped; at most TLS_TICKET_KEYS_MAX keys.  To rotate, put a
 * new key first, keep the previous ones for the session lifetime, reload.
 *
 * A set is immutable and reference counted (atomically), like the
 * certificate sets that use it (tls.h).
 */
#ifndef PORTICO_TLS_TICKETS_H
#define PORTICO_TLS_TICKETS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define TLS_TICKET_KEYS_MAX 16
#define TLS_TICKET_NAME_LEN 16
#define TLS_TICKET_KEY_LEN 80 /* name, HMAC secret, AES key */
#define TLS_TICKET_KEY_HEX (2 * TLS_TICKET_KEY_LEN)
/* The largest key file read (keys, comments and blank lines). */
#define TLS_TICKET_FILE_MAX (64 * 1024)

struct tls_tickets;

/* Keys from text in the file's format; NULL and *error_r (naming the
 * line) when it holds no key, a malformed line, a repeated key name or
 * more than TLS_TICKET_KEYS_MAX keys. */
struct tls_tickets *tls_tickets_parse(const char *text, size_t len,
				      const char **error_r);
/* tls_tickets_parse() of a file; the error names the file too. */
struct tls_tickets *tls_tickets_load(const char *path, const char **error_r);
/* One random key. */
struct tls_tickets *tls_tickets_random(const char **error_r);

unsigned tls_tickets_count(const struct tls_tickets *k);
/* The name of key i (TLS_TICKET_NAME_LEN bytes), i < count. */
const unsigned char *tls_tickets_name(const struct tls_tickets *k, unsigned i);

struct tls_tickets *tls_tickets_ref(struct tls_tickets *k);
void tls_tickets_unref(struct tls_tickets **k);

/* ctx seals and opens its tickets with k; the caller keeps k referenced
 * as long as connections of ctx may run (tls_server does). */
void tls_tickets_use(SSL_CTX *ctx, struct tls_tickets *k);

#endif
