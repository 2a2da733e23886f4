/* http.h - a small HTTP/1.1 server on a libuv loop, plain or TLS.
 *
 * Requests are parsed by http-parser (nodejs' http_parser) within named
 * bounds: request line plus headers (431 beyond), body (413), time to
 * receive a request (408) and idle time between keep-alive requests.  A
 * request the parser refuses gets 400 and the connection closes; nothing
 * else is disturbed.  One request is handled at a time per connection:
 * pipelined requests wait in the input buffer until the answer of the
 * one before is queued.
 *
 * A handler answers with http_respond(), at once or later (after an
 * LDAP lookup); the request stays valid until then.  If the connection
 * goes away before a late answer, the cancel function given to
 * http_defer() runs instead and http_respond() must not be called.
 */
#ifndef PORTICO_HTTP_H
#define PORTICO_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "common/buf.h"
#include "common/tls.h"

struct http_conn;
struct http_server;

struct http_request {
	const char *method; /* "GET", "POST", ... */
	int head;           /* HEAD: answer without a body */
	char path[1024];    /* as sent, without the query */
	char query[2048];   /* after '?', "" if none */
	char host[256];     /* Host header, "" if none */
	char content_type[128];
	/* Origin header as sent, "" if none; has_origin: one was sent (an
	   empty, repeated or over-long one leaves origin ""). */
	char origin[256];
	int has_origin;
	char fetch_site[32]; /* Sec-Fetch-Site, "" if none */
	struct buf body;
	int tls;            /* arrived over TLS */
	struct sockaddr_storage peer;
	char peer_name[64]; /* "ip:port" */
};

typedef void http_handler_fn(struct http_conn *hc, struct http_request *req,
			     void *ctx);

struct http_server_conf {
	size_t max_header;            /* request line + headers */
	size_t max_body;
	uint64_t request_timeout_ms;  /* first byte to complete request */
	uint64_t keepalive_timeout_ms;
	unsigned max_requests;        /* per connection */
	unsigned long max_connections;
	/* Seconds of Strict-Transport-Security on every answer of a TLS
	   listener; 0: none. */
	uint64_t hsts_max_age;
	/* Open connections, shared by every server of a process (atomic);
	   may be NULL (no limit). */
	unsigned long *connections;
	http_handler_fn *handler;
	void *ctx;
	/* TLS listeners: a reference to the certificate set to use for a new
	   connection (released when the connection ends). */
	struct tls_server *(*tls_certs)(void *ctx);
	/* Optional: whether a connection from sa must begin with a PROXY
	   protocol header (v1 or v2, before TLS); the client address in it
	   becomes the request's peer.  NULL: never. */
	int (*proxy_required)(void *ctx, const struct sockaddr *sa);
	/* Optional: a place for one more connection from sa (the client's
	   address, after a PROXY header); -1 refuses the connection (plain
	   HTTP gets 503).  addr_release gives it back when the connection
	   ends. */
	int (*addr_acquire)(void *ctx, const struct sockaddr *sa);
	void (*addr_release)(void *ctx, const struct sockaddr *sa);
};

struct config;
/* The http.* sizes, timeouts, counts and HSTS of cfg into conf (at start
 * and at each reload; the other fields are left as they are). */
void http_server_conf_settings(struct http_server_conf *conf,
			       const struct config *cfg);

/* A server of one loop; listeners are added with http_server_listen(). */
struct http_server *http_server_create(uv_loop_t *loop,
				       const struct http_server_conf *conf);
/* Listens on "host:port" (SO_REUSEPORT, so every loop of a process may
 * listen on the same port), with TLS or without: one listener of each.
 * Returns -1 with *error_r (static) on failure. */
int http_server_listen(struct http_server *s, const char *addr, int tls,
		       const char **error_r);
/* The same on a socket conn_listen_socket() made (taken over, closed on
 * failure). */
int http_server_listen_fd(struct http_server *s, int fd, int tls,
			  const char **error_r);
/* Closes the listener with TLS or without, if any (a reload that moves
 * or removes it); connections accepted from it go on. */
void http_server_unlisten(struct http_server *s, int tls);
/* A reload: conf's sizes, timeouts, counts and hsts_max_age apply from
 * now on (to a request begun before, its timer as it was started). */
void http_server_set_limits(struct http_server *s,
			    const struct http_server_conf *conf);
/* Closes the listeners and every connection (handlers' cancel runs). */
void http_server_stop(struct http_server *s);
/* After the loop has closed every handle. */
void http_server_free(struct http_server **s);
/* Open connections of this server. */
unsigned http_server_connections(const struct http_server *s);

/* Answers the current request.  extra_headers: "Name: value\r\n" lines
 * or NULL.  Over TLS, Strict-Transport-Security is added when
 * conf.hsts_max_age is set.  Status 4xx/5xx other than 404/401/403 close
 * the connection after the answer. */
void http_respond(struct http_conn *hc, int status, const char *content_type,
		  const void *body, size_t len, const char *extra_headers);
/* The handler answers later; cancel(arg) runs if the connection closes
 * before. */
void http_defer(struct http_conn *hc, void (*cancel)(void *arg), void *arg);
/* The loop of the connection (for the handler's timers). */
uv_loop_t *http_conn_loop(struct http_conn *hc);

/* Reason phrase of a status code. */
const char *http_status_text(int status);

/* Looks up name in a query string or an
 * application/x-www-form-urlencoded body and decodes it (%XX, '+') into
 * out.  Returns 1 when found, 0 when absent, -1 when malformed, longer
 * than outsize - 1 or holding a NUL byte. */
int http_param(const char *params, size_t len, const char *name, char *out,
	       size_t outsize);
/* Whether origin, an Origin header's value (RFC 6454 6.1:
 * scheme "://" host [":" port]), is the origin scheme "://" host: host
 * as a Host header gives it (uri-host [":" port]), a missing port being
 * the scheme's default (http 80, https 443).  Scheme and host compare
 * without regard to case.  1 when it is, 0 otherwise ("null", "",
 * anything malformed). */
int http_origin_matches(const char *origin, const char *scheme,
			const char *host);
/* Appends s with & < > " ' escaped (HTML text and attributes, XML). */
void http_escape(struct buf *b, const char *s);

#endif
