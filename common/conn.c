/* conn.c - libuv TCP with TLS: OpenSSL reads the network's bytes where
 * libuv read them and writes its records into the connection's own
 * buffer, which is handed to the socket as it is. */
#include "common/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/tls.h"

#define CONN_READ_CHUNK 65536
#define CONN_CLOSE_GRACE_MS 3000
/* A connection's buffer of outgoing TLS records is kept between writes up
 * to this size, and given back when a larger answer made it grow. */
#define CONN_TLS_OUT_KEEP (2 * CONN_READ_CHUNK)

struct conn_wreq {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char *base;  /* the bytes: data[], or in owned */
	char *owned; /* a buffer handed over (conn_flush_tls), freed with w */
	char data[];
};

static void
conn_wreq_free(struct conn_wreq *w)
{
	free(w->owned);
	free(w);
}

/* The socket's bytes, read by libuv (and, over TLS, by OpenSSL from
 * there), and what SSL_read() decrypts. */
static _Thread_local char conn_read_buf[CONN_READ_CHUNK];
static _Thread_local char conn_plain_buf[CONN_READ_CHUNK];

/* -- TLS's BIO --------------------------------------------------------------
 * OpenSSL reads the network's bytes where libuv put them (c->in_ptr: the
 * read buffer, for the time of conn_tls_input()) and writes its records
 * into c->tls_out, which conn_flush_tls() hands to the socket as it is.
 * A pair of memory BIOs would cost two more copies of every byte: in
 * (BIO_write into it) and out (BIO_read out of it). */

static int
conn_bio_read(BIO *b, char *out, size_t outl, size_t *readbytes)
{
	struct conn *c = BIO_get_data(b);
	size_t n;
	BIO_clear_retry_flags(b);
	if (buf_used(&c->tls_in) > 0) {
		n = buf_used(&c->tls_in) < outl ? buf_used(&c->tls_in) : outl;
		memcpy(out, buf_ptr(&c->tls_in), n);
		buf_consume(&c->tls_in, n);
		if (buf_used(&c->tls_in) == 0)
			buf_free(&c->tls_in);
	} else if (c->in_len > 0) {
		n = c->in_len < outl ? c->in_len : outl;
		memcpy(out, c->in_ptr, n);
		c->in_ptr += n;
		c->in_len -= n;
	} else {
		BIO_set_retry_read(b); /* more comes with the next read */
		*readbytes = 0;
		return 0;
	}
	*readbytes = n;
	return 1;
}

static int
conn_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct conn *c = BIO_get_data(b);
	buf_append(&c->tls_out, data, len);
	*written = len;
	return 1;
}

static long
conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct conn *c = BIO_get_data(b);
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* conn_flush_tls() sends, when not corked */
	case BIO_CTRL_PENDING:
		return (long)(buf_used(&c->tls_in) + c->in_len);
	case BIO_CTRL_WPENDING:
		return (long)buf_used(&c->tls_out);
	default:
		return 0;
	}
}

static BIO_METHOD *conn_bio_method;
static pthread_once_t conn_bio_once = PTHREAD_ONCE_INIT;

static void
conn_bio_method_init(void)
{
	conn_bio_method = BIO_meth_new(
	    BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "conn");
	if (conn_bio_method == NULL ||
	    BIO_meth_set_read_ex(conn_bio_method, conn_bio_read) != 1 ||
	    BIO_meth_set_write_ex(conn_bio_method, conn_bio_write) != 1 ||
	    BIO_meth_set_ctrl(conn_bio_method, conn_bio_ctrl) != 1)
		abort();
}

static BIO *
conn_bio(struct conn *c)
{
	pthread_once(&conn_bio_once, conn_bio_method_init);
	BIO *b = BIO_new(conn_bio_method);
	if (b == NULL)
		abort();
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	return b;
}

static void conn_fail(struct conn *c, const char *why);
static void conn_close_handles(struct conn *c);

static void
conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles == 0) {
		if (c->ssl != NULL) {
			SSL_free(c->ssl); /* frees both BIOs */
			c->ssl = NULL;
		}
		buf_wipe(&c->tls_pending);
		buf_free(&c->tls_out);
		buf_free(&c->tls_in);
		c->ops->closed(c);
	}
}

int
conn_init(uv_loop_t *loop, struct conn *c, const struct conn_ops *ops,
	  void *data)
{
	memset(c, 0, sizeof(*c));
	c->ops = ops;
	c->data = data;
	int rc = uv_tcp_init(loop, &c->tcp);
	if (rc < 0)
		return rc;
	c->tcp.data = c;
	rc = uv_timer_init(loop, &c->timer);
	if (rc < 0) {
		/* The tcp handle must still be closed by the owner. */
		c->handles = 1;
		c->closing = 1;
		uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
		return rc;
	}
	c->timer.data = c;
	c->handles = 2;
	uv_tcp_nodelay(&c->tcp, 1);
	return 0;
}

static void
conn_write_done(uv_write_t *req, int status)
{
	struct conn_wreq *w = (struct conn_wreq *)req;
	struct conn *c = w->c;
	c->queued -= w->len;
	conn_wreq_free(w);
	if (c->closing)
		return;
	if (status < 0) {
		conn_fail(c, uv_strerror(status));
		return;
	}
	if (c->queued == 0 && c->ops->drained != NULL)
		c->ops->drained(c);
}

static int
conn_send_wreq(struct conn *c, struct conn_wreq *w)
{
	uv_buf_t b = uv_buf_init(w->base, (unsigned)w->len);
	w->c = c;
	c->queued += w->len;
	if (c->writes != NULL)
		metrics_add(c->writes, 1);
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1,
			  conn_write_done);
	if (rc < 0) {
		c->queued -= w->len;
		conn_wreq_free(w);
		return rc;
	}
	return 0;
}

/* How many of len bytes the kernel takes now (none while writes are
 * queued: they keep their order). */
static size_t
conn_try_send(struct conn *c, const void *data, size_t len)
{
	if (c->queued > 0)
		return 0;
	uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (c->writes != NULL)
		metrics_add(c->writes, 1);
	return n > 0 ? (size_t)n : 0;
}

/* Sends bytes, copied: when nothing is queued they go straight to the
 * kernel (no copy, no write request, no change to the poll set: one
 * syscall per response); what the kernel does not take now is queued
 * behind a write request.  A failed direct write is retried through the
 * queue, whose completion reports the error as before. */
static int
conn_send_raw(struct conn *c, const void *data, size_t len)
{
	size_t n = conn_try_send(c, data, len);
	if (n == len)
		return 0;
	data = (const char *)data + n;
	len -= n;
	struct conn_wreq *w = malloc(sizeof(*w) + len);
	if (w == NULL)
		abort();
	memcpy(w->data, data, len);
	w->base = w->data;
	w->owned = NULL;
	w->len = len;
	return conn_send_wreq(c, w);
}

/* Moves what OpenSSL produced to the socket, in one write; what the
 * kernel does not take now waits in the buffer itself, handed over to a
 * write request (not copied: a slow reader's answers are the large ones). */
static int
conn_flush_tls(struct conn *c)
{
	size_t len = buf_used(&c->tls_out);
	if (len == 0)
		return 0;
	size_t n = conn_try_send(c, buf_ptr(&c->tls_out), len);
	if (n == len) {
		buf_reset(&c->tls_out);
		if (c->tls_out.cap > CONN_TLS_OUT_KEEP)
			buf_free(&c->tls_out);
		return 0;
	}
	struct conn_wreq *w = malloc(sizeof(*w));
	if (w == NULL)
		abort();
	w->base = buf_ptr(&c->tls_out) + n;
	w->owned = c->tls_out.data;
	w->len = len - n;
	struct buf none = BUF_INIT;
	c->tls_out = none; /* the next records start a buffer of their own */
	return conn_send_wreq(c, w) < 0 ? -1 : 0;
}

static int
conn_tls_write(struct conn *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		int chunk = len > (1U << 30) ? 1 << 30 : (int)len;
		int n = SSL_write(c->ssl, p, chunk);
		if (n <= 0) {
			ERR_clear_error();
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return c->corked ? 0 : conn_flush_tls(c);
}

int
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->closing)
		return -1;
	if (len == 0)
		return 0;
	if (!c->tls)
		return conn_send_raw(c, data, len) < 0 ? -1 : 0;
	if (c->handshaking) {
		buf_append(&c->tls_pending, data, len);
		return 0;
	}
	if (conn_tls_write(c, data, len) < 0) {
		conn_fail(c, "TLS write failed");
		return -1;
	}
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return conn_write(c, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		abort();
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = conn_write(c, big, (size_t)n);
	free(big);
	return rc;
}

size_t
conn_queued(const struct conn *c)
{
	return c->queued;
}

void
conn_cork(struct conn *c)
{
	if (c->tls && !c->handshaking && !c->closing)
		c->corked = 1;
}

void
conn_uncork(struct conn *c)
{
	if (!c->corked)
		return;
	c->corked = 0;
	if (!c->closing && conn_flush_tls(c) < 0)
		conn_fail(c, "TLS write failed");
}

static void conn_tls_process(struct conn *c);

static void
conn_tls_input(struct conn *c, const char *data, size_t len)
{
	c->in_ptr = data;
	c->in_len = len;
	conn_tls_process(c);
	/* OpenSSL reads until it wants more, so bytes are left only when the
	   connection failed on the way (they are dropped with it); should
	   any be left otherwise, they wait for the next read (data is
	   libuv's buffer, reused). */
	if (c->in_len > 0 && !c->closing)
		buf_append(&c->tls_in, c->in_ptr, c->in_len);
	c->in_ptr = NULL;
	c->in_len = 0;
}

static void
conn_tls_process(struct conn *c)
{
	if (c->handshaking) {
		int rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			int err = SSL_get_error(c->ssl, rc);
			conn_flush_tls(c);
			if (err == SSL_ERROR_WANT_READ ||
			    err == SSL_ERROR_WANT_WRITE)
				return;
			char why[300];
			snprintf(why, sizeof(why), "TLS handshake failed: %s",
				 tls_last_error());
			conn_fail(c, why);
			return;
		}
		c->handshaking = 0;
		/* What the handshake's end produced (a server's session
		   tickets, a client's Finished) leaves with the first words
		   of the protocol (the greeting, the link's Hello): one
		   write, and one read for the peer, instead of two. */
		if (c->ops->tls_ready != NULL) {
			c->ops->tls_ready(c);
			if (c->closing)
				return;
		}
		if (buf_used(&c->tls_pending) > 0) {
			struct buf pending = c->tls_pending;
			memset(&c->tls_pending, 0, sizeof(c->tls_pending));
			int wr = conn_tls_write(c, buf_ptr(&pending),
						buf_used(&pending));
			buf_free(&pending);
			if (wr < 0) {
				conn_fail(c, "TLS write failed");
				return;
			}
		}
		if (conn_flush_tls(c) < 0) {
			conn_fail(c, "write failed");
			return;
		}
	}
	for (;;) {
		int n = SSL_read(c->ssl, conn_plain_buf,
				 sizeof(conn_plain_buf));
		if (n > 0) {
			c->ops->read(c, conn_plain_buf, (size_t)n);
			if (c->closing)
				return;
			continue;
		}
		int err = SSL_get_error(c->ssl, n);
		conn_flush_tls(c);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return;
		if (err == SSL_ERROR_ZERO_RETURN) {
			conn_fail(c, "TLS closed by peer");
			return;
		}
		char why[300];
		snprintf(why, sizeof(why), "TLS error: %s",
			 tls_last_error());
		conn_fail(c, why);
		return;
	}
}

static void
conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	*b = uv_buf_init(conn_read_buf, CONN_READ_CHUNK);
}

static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (c->lingering) {
		if (nread < 0)
			conn_close_handles(c);
		return;
	}
	if (c->closing)
		return;
	if (nread < 0) {
		conn_fail(c, nread == UV_EOF ? "connection closed by peer"
					     : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (c->tls)
		conn_tls_input(c, b->base, (size_t)nread);
	else
		c->ops->read(c, b->base, (size_t)nread);
}

int
conn_read_start(struct conn *c)
{
	if (c->closing || c->reading)
		return 0;
	int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc,
			       conn_on_read);
	if (rc == 0)
		c->reading = 1;
	return rc;
}

void
conn_read_stop(struct conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

static int
conn_tls_begin(struct conn *c, SSL_CTX *ctx, int server, const char *hostname,
	       SSL_SESSION *session)
{
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL)
		return -1;
	if (session != NULL && SSL_set_session(c->ssl, session) != 1)
		ERR_clear_error(); /* a full handshake then */
	c->rbio = c->wbio = conn_bio(c);
	SSL_set_bio(c->ssl, c->rbio, c->wbio); /* one reference for both */
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (hostname != NULL) {
			SSL_set_tlsext_host_name(c->ssl, hostname);
			SSL_set1_host(c->ssl, hostname);
		}
	}
	c->tls = 1;
	c->handshaking = 1;
	if (!server) {
		/* Send the ClientHello now. */
		int rc = SSL_do_handshake(c->ssl);
		(void)rc;
		ERR_clear_error();
		if (conn_flush_tls(c) < 0)
			return -1;
	}
	return 0;
}

int
conn_start_tls(struct conn *c, SSL_CTX *ctx, int server, const char *hostname)
{
	return conn_tls_begin(c, ctx, server, hostname, NULL);
}

int
conn_start_tls_resume(struct conn *c, SSL_CTX *ctx, const char *hostname,
		      SSL_SESSION *session)
{
	return conn_tls_begin(c, ctx, 0, hostname, session);
}

static void
conn_close_handles(struct conn *c)
{
	uv_timer_stop(&c->timer);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void
conn_shutdown_done(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	free(req);
	if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
		conn_close_handles(c);
		return;
	}
	/* Lingering close: drop what the peer still sends until it closes
	   too; the close guard timer bounds the wait. */
	c->lingering = 1;
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) <
	    0)
		conn_close_handles(c);
}

static void
conn_close_timeout(uv_timer_t *t)
{
	conn_close_handles(t->data);
}

void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->corked = 0; /* what waits leaves with the close_notify */
	conn_read_stop(c);
	if (c->tls && !c->handshaking) {
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		conn_flush_tls(c);
	}
	if (!c->connected) {
		conn_close_handles(c);
		return;
	}
	uv_shutdown_t *req = malloc(sizeof(*req));
	if (req == NULL)
		abort();
	req->data = c;
	if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_done) < 0) {
		free(req);
		conn_close_handles(c);
		return;
	}
	uv_timer_start(&c->timer, conn_close_timeout, CONN_CLOSE_GRACE_MS, 0);
}

void
conn_abort(struct conn *c)
{
	if (c->closing && uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	c->closing = 1;
	c->corked = 0;
	conn_read_stop(c);
	conn_close_handles(c);
}

static void
conn_fail(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = 1;
	conn_read_stop(c);
	conn_close_handles(c);
	c->ops->error(c, why);
}

int
conn_peer_addr(struct conn *c, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)ss, &len) == 0
		       ? 0
		       : -1;
}

void
conn_addr_name(const struct sockaddr *sa, char *out, size_t outsize)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		uv_ip4_name(sin, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
			(const struct sockaddr_in6 *)sa;
		uv_ip6_name(sin6, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		/* RFC 5952 6: the port cannot be told from the address
		   otherwise */
		snprintf(out, outsize, "[%s]:%d", host, port);
		return;
	}
	snprintf(out, outsize, "%s:%d", host, port);
}

int
conn_addr_literal(const char *name, char *out, size_t outsize)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	const char *p = name, *end;
	if (p[0] == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
	int v6 = memchr(p, ':', n) != NULL;
	if (n >= sizeof(host) || (p != name && end == NULL)) {
		snprintf(out, outsize, "unknown");
		return -1;
	}
	memcpy(host, p, n);
	host[n] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1) {
		snprintf(out, outsize, "unknown");
		return -1;
	}
	snprintf(out, outsize, "[%s%s]", v6 ? "IPv6:" : "", host);
	return 0;
}

void
conn_peer_name(struct conn *c, char *out, size_t outsize)
{
	struct sockaddr_storage ss;
	if (conn_peer_addr(c, &ss) < 0)
		ss.ss_family = AF_UNSPEC;
	conn_addr_name((struct sockaddr *)&ss, out, outsize);
}

void
conn_feed(struct conn *c, const char *data, size_t len)
{
	if (c->closing || len == 0)
		return;
	if (c->tls)
		conn_tls_input(c, data, len);
	else
		c->ops->read(c, data, len);
}

void
conn_tls_desc(struct conn *c, char *out, size_t outsize)
{
	if (!c->tls || c->ssl == NULL) {
		snprintf(out, outsize, "none");
		return;
	}
	snprintf(out, outsize, "%s %s", SSL_get_version(c->ssl),
		 SSL_get_cipher_name(c->ssl));
}

static void
conn_connected(uv_connect_t *req, int status)
{
	struct conn *c = req->handle->data;
	free(req);
	if (c->closing)
		return;
	if (status == 0)
		c->connected = 1;
	c->connect_cb(c, status);
}

int
conn_connect(struct conn *c, const struct sockaddr *addr,
	     void (*connect_cb)(struct conn *c, int status))
{
	uv_connect_t *req = malloc(sizeof(*req));
	if (req == NULL)
		abort();
	c->connect_cb = connect_cb;
	int rc = uv_tcp_connect(req, &c->tcp, addr, conn_connected);
	if (rc < 0)
		free(req);
	return rc;
}

int
conn_accept(uv_stream_t *server, struct conn *c)
{
	int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (rc == 0)
		c->connected = 1;
	return rc;
}

int
conn_parse_addr(const char *hostport, struct sockaddr_storage *ss,
		const char **error_r)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	if (colon == NULL || colon == hostport || colon[1] == '\0' ||
	    (size_t)(colon - hostport) >= sizeof(host)) {
		*error_r = "expected host:port";
		return -1;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535) {
		*error_r = "invalid port";
		return -1;
	}
	const char *h = host;
	if (strcmp(h, "localhost") == 0 || strcmp(h, "*") == 0)
		h = strcmp(h, "*") == 0 ? "0.0.0.0" : "127.0.0.1";
	size_t hl = strlen(h);
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		char v6[64];
		snprintf(v6, sizeof(v6), "%.*s", (int)(hl - 2), h + 1);
		if (uv_ip6_addr(v6, (int)port, (struct sockaddr_in6 *)ss) == 0)
			return 0;
	} else if (uv_ip4_addr(h, (int)port, (struct sockaddr_in *)ss) == 0) {
		return 0;
	}
	*error_r = "host must be a numeric address or localhost";
	return -1;
}

int
conn_listen_socket(const char *hostport, int share, const char **error_r)
{
	static _Thread_local char msg[160];
	struct sockaddr_storage ss;
	if (conn_parse_addr(hostport, &ss, error_r) < 0)
		return -1;
	int fd = socket(ss.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (share &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in)) < 0) {
		snprintf(msg, sizeof(msg), "%s", strerror(errno));
		*error_r = msg;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}
