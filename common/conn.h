/* conn.h - a TCP connection on a libuv loop, with optional TLS.
 *
 * Over TLS, ciphertext moves between the socket and OpenSSL in this
 * module (through a BIO of its own: conn.c), and owners only ever see
 * plaintext.  A conn is embedded in its owner; the owner frees it from
 * the closed callback, never earlier (libuv handles live until their
 * close callback).
 *
 * Callbacks never run after conn_close()/conn_abort() except closed.
 */
#ifndef PORTICO_CONN_H
#define PORTICO_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/buf.h"

struct conn;

struct conn_ops {
	/* Plaintext bytes from the peer.  data is valid only during the
	   call. */
	void (*read)(struct conn *c, const char *data, size_t len);
	/* The peer closed or the connection failed; the conn is already
	   closing.  why is for logs. */
	void (*error)(struct conn *c, const char *why);
	/* Optional: the TLS handshake finished. */
	void (*tls_ready)(struct conn *c);
	/* Optional: every queued write reached the kernel. */
	void (*drained)(struct conn *c);
	/* The handles are closed: the owner may free the conn now. */
	void (*closed)(struct conn *c);
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;       /* close guard */
	SSL *ssl;
	BIO *rbio, *wbio;   /* the same BIO: in_ptr/tls_in -> SSL -> tls_out */
	const char *in_ptr; /* network bytes OpenSSL has not read yet */
	size_t in_len;
	struct buf tls_in;      /* ... kept between reads (rare) */
	struct buf tls_out;     /* TLS records not yet given to the socket */
	struct buf tls_pending; /* plaintext written before the handshake */
	const struct conn_ops *ops;
	void *data;             /* owner */
	void (*connect_cb)(struct conn *c, int status);
	size_t queued;          /* bytes handed to uv_write, not yet done */
	uint64_t *writes;       /* optional: counts write syscalls */
	unsigned handles;       /* handles still open */
	unsigned tls : 1;
	unsigned handshaking : 1;
	unsigned closing : 1;
	unsigned reading : 1;
	unsigned connected : 1;
	unsigned lingering : 1; /* closed for writing, draining the peer */
	unsigned corked : 1;    /* TLS records wait in tls_out (conn_cork) */
};

/* Initialises the handles; call before uv_accept() or conn_connect(). */
int conn_init(uv_loop_t *loop, struct conn *c, const struct conn_ops *ops,
	      void *data);
/* Connects to addr; on success the connect_cb gets status 0. */
int conn_connect(struct conn *c, const struct sockaddr *addr,
		 void (*connect_cb)(struct conn *c, int status));
/* Accepts a pending connection of server into c (after conn_init()). */
int conn_accept(uv_stream_t *server, struct conn *c);
/* Starts reading (after accept or connect). */
int conn_read_start(struct conn *c);
void conn_read_stop(struct conn *c);
/* Starts TLS on the connection.  Writes made before this call go out in
 * plaintext first (the STARTTLS reply).  hostname: client side, the name
 * to verify and send as SNI (NULL: no name check). */
int conn_start_tls(struct conn *c, SSL_CTX *ctx, int server,
		   const char *hostname);
/* Client side, offering session (may be NULL) for resumption; the
 * connection's SSL holds its own reference. */
int conn_start_tls_resume(struct conn *c, SSL_CTX *ctx, const char *hostname,
			  SSL_SESSION *session);
/* Queues bytes for the peer (copied).  Returns -1 if the conn is closing. */
int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bytes queued and not yet taken by the kernel. */
size_t conn_queued(const struct conn *c);
/* Over TLS, after the handshake: the records of the writes that follow
 * wait until conn_uncork() (or conn_close(), with the close_notify) and
 * leave in one write.  Whoever corks uncorks before its callback returns
 * to the loop.  A no-op without TLS or during the handshake. */
void conn_cork(struct conn *c);
void conn_uncork(struct conn *c);
/* Sends what is queued (TLS close_notify included), then closes.  After
 * our FIN, what the peer still sends is read and dropped until its own
 * FIN (at most a few seconds), so that closing never resets the
 * connection under data the peer has not read yet (a last BYE). */
void conn_close(struct conn *c);
/* Closes at once, dropping queued bytes. */
void conn_abort(struct conn *c);
/* "ip:port" of the peer into out. */
void conn_peer_name(struct conn *c, char *out, size_t outsize);
/* The peer's address; -1 if unknown. */
int conn_peer_addr(struct conn *c, struct sockaddr_storage *ss);
/* "ip:port" of an AF_INET/AF_INET6 address into out. */
void conn_addr_name(const struct sockaddr *sa, char *out, size_t outsize);
/* The address of a conn_addr_name() string ("192.0.2.1:587",
 * "2001:db8::1:587", also "[2001:db8::1]:587" or an address without a
 * port when it has no colon) as an RFC 5321 4.1.3 address literal:
 * "[192.0.2.1]", "[IPv6:2001:db8::1]" (Received: TCP-info, RFC 5321
 * 4.4).  -1 with "unknown" in out when it is not an address. */
int conn_addr_literal(const char *name, char *out, size_t outsize);
/* Processes bytes as if they had just been read from the socket (through
 * TLS when it is on): for bytes the owner read before starting TLS, e.g.
 * after a PROXY protocol header.  Callbacks may run. */
void conn_feed(struct conn *c, const char *data, size_t len);
/* TLS facts for logs and the link ("TLSv1.3 TLS_AES_256_GCM_SHA384"). */
void conn_tls_desc(struct conn *c, char *out, size_t outsize);
/* Parses "host:port" into a sockaddr (numeric hosts and localhost). */
int conn_parse_addr(const char *hostport, struct sockaddr_storage *ss,
		    const char **error_r);
/* A non-blocking socket bound to "host:port": the descriptor, for
 * uv_tcp_open() and uv_listen(), or -1 with why in *error_r.  share: other
 * sockets of this user may bind the port too (SO_REUSEPORT: one per event
 * loop); 0: the port is this socket's alone, so that a second process
 * configured alike fails to start instead of splitting the connections. */
int conn_listen_socket(const char *hostport, int share, const char **error_r);

#endif
