/* http.c - HTTP/1.1 server connections over conn.c, parsed by
 * http-parser. */
#include "common/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "common/config.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/proxy_proto.h"

enum http_conn_state {
	HTTP_IDLE,     /* between requests */
	HTTP_READING,  /* a request has begun */
	HTTP_HANDLING, /* the handler has the request */
	HTTP_CLOSING,
	HTTP_CONN_STATE_COUNT
};

struct http_listener {
	uv_tcp_t tcp;
	struct http_server *srv;
	int tls;
};

struct http_server {
	uv_loop_t *loop;
	struct http_server_conf conf;
	struct http_listener *listeners[2]; /* plain, TLS; NULL: none */
	struct http_conn *conns;
	unsigned nconns;
	int stopping;
};

struct http_conn {
	struct conn conn;
	uv_timer_t timer;
	struct http_server *srv;
	enum http_conn_state state;
	http_parser parser;
	struct http_request req;
	struct buf in;          /* received, not parsed yet */
	struct buf url;
	struct buf hname, hval; /* header being received */
	int in_value;
	size_t header_bytes;
	int error_status;       /* 413/431 decided by a parser callback */
	int expect_continue;
	int have_host;
	int bad_host; /* a second Host, or one no host:port */
	int keep_alive;
	int counted;
	int tls_pending;        /* TLS starts after the PROXY header */
	int proxy_wait;         /* a PROXY header must come first */
	int addr_counted;       /* conf.addr_acquire gave a place ... */
	struct sockaddr_storage counted_addr; /* ... for this address */
	unsigned requests;
	void (*cancel)(void *arg);
	void *cancel_arg;
	struct tls_server *certs;
	struct http_conn *prev, *next;
};

static void hc_process(struct http_conn *hc);
static void hc_close(struct http_conn *hc, const char *why);

/* -- status texts ---------------------------------------------------------*/

const char *
http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* -- parser callbacks -----------------------------------------------------*/

static void
hc_header_done(struct http_conn *hc)
{
	if (buf_used(&hc->hname) == 0)
		return;
	buf_append(&hc->hname, "", 1);
	buf_append(&hc->hval, "", 1);
	const char *name = buf_ptr(&hc->hname);
	const char *value = buf_ptr(&hc->hval);
	struct http_request *r = &hc->req;
	if (strcasecmp(name, "Host") == 0) {
		/* RFC 9112 3.2: one Host, a uri-host [":" port] */
		hc->bad_host |= hc->have_host ||
				strlen(value) >= sizeof(r->host) ||
				strpbrk(value, " \t/\\@?#") != NULL;
		for (const char *v = value; *v; v++)
			hc->bad_host |= (unsigned char)*v < 0x21 ||
					(unsigned char)*v >= 0x7f;
		snprintf(r->host, sizeof(r->host), "%s", value);
		hc->have_host = 1;
	} else if (strcasecmp(name, "Origin") == 0) {
		/* one, whole, or none usable (http_origin_matches() then
		   refuses "") */
		if (r->has_origin || strlen(value) >= sizeof(r->origin))
			r->origin[0] = '\0';
		else
			snprintf(r->origin, sizeof(r->origin), "%s", value);
		r->has_origin = 1;
	} else if (strcasecmp(name, "Sec-Fetch-Site") == 0) {
		snprintf(r->fetch_site, sizeof(r->fetch_site), "%s", value);
	} else if (strcasecmp(name, "Content-Type") == 0) {
		snprintf(r->content_type, sizeof(r->content_type), "%s", value);
	} else if (strcasecmp(name, "Expect") == 0) {
		/* RFC 9110 10.1.1: not from an HTTP/1.0 client */
		hc->expect_continue = strcasecmp(value, "100-continue") == 0 &&
				      hc->parser.http_minor >= 1;
	} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
		/* chunked is the only coding read (RFC 9112 6.1: 501) */
		while (*value == ' ' || *value == '\t')
			value++;
		size_t n = strlen(value);
		while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
			n--;
		if (n != 7 || strncasecmp(value, "chunked", 7) != 0)
			hc->error_status = 501;
	}
	buf_reset(&hc->hname);
	buf_reset(&hc->hval);
	hc->in_value = 0;
}

static int
hc_count_header(struct http_conn *hc, size_t len)
{
	hc->header_bytes += len;
	if (hc->header_bytes > hc->srv->conf.max_header) {
		hc->error_status = 431;
		return -1;
	}
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct http_conn *hc = p->data;
	hc->state = HTTP_READING;
	uv_timer_stop(&hc->timer);
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	if (hc_count_header(hc, len) < 0)
		return -1;
	buf_append(&hc->url, at, len);
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	if (hc_count_header(hc, len + 4) < 0)
		return -1;
	if (hc->in_value)
		hc_header_done(hc);
	buf_append(&hc->hname, at, len);
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	if (hc_count_header(hc, len) < 0)
		return -1;
	hc->in_value = 1;
	buf_append(&hc->hval, at, len);
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct http_conn *hc = p->data;
	hc_header_done(hc);
	if (hc->error_status != 0)
		return -1;
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > hc->srv->conf.max_body) {
		hc->error_status = 413;
		return -1; /* stops the parser with an error */
	}
	if (hc->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		conn_write(&hc->conn, cont, sizeof(cont) - 1);
	}
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	if (buf_used(&hc->req.body) + len > hc->srv->conf.max_body) {
		hc->error_status = 413;
		return -1;
	}
	buf_append(&hc->req.body, at, len);
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings hc_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* -- requests -------------------------------------------------------------*/

static void
hc_timeout(uv_timer_t *t)
{
	struct http_conn *hc = t->data;
	if (hc->state == HTTP_READING) {
		hc->keep_alive = 0;
		http_respond(hc, 408, "text/plain; charset=utf-8",
			     "Request timeout.\n", 17, NULL);
		return;
	}
	hc_close(hc, "idle timeout");
}

/* Ready for the next request (or the first). */
static void
hc_request_reset(struct http_conn *hc)
{
	struct http_request *r = &hc->req;
	buf_wipe(&r->body); /* may hold a password */
	memset(r->path, 0, sizeof(r->path));
	r->query[0] = r->host[0] = r->content_type[0] = '\0';
	r->origin[0] = r->fetch_site[0] = '\0';
	r->has_origin = 0;
	r->method = "";
	r->head = 0;
	buf_reset(&hc->url);
	buf_reset(&hc->hname);
	buf_reset(&hc->hval);
	hc->in_value = 0;
	hc->header_bytes = 0;
	hc->error_status = 0;
	hc->expect_continue = 0;
	hc->have_host = 0;
	hc->bad_host = 0;
	hc->cancel = NULL;
	hc->cancel_arg = NULL;
	http_parser_init(&hc->parser, HTTP_REQUEST);
	hc->parser.data = hc;
	hc->state = HTTP_IDLE;
	uv_timer_start(&hc->timer, hc_timeout,
		       hc->srv->conf.keepalive_timeout_ms, 0);
}

static void
hc_dispatch(struct http_conn *hc)
{
	struct http_request *r = &hc->req;
	http_parser *p = &hc->parser;
	hc->state = HTTP_HANDLING;
	/* http.request_timeout is for receiving the request: the answer may
	   take longer (a sign-in waiting out its penalty). */
	uv_timer_stop(&hc->timer);
	hc->requests++;
	/* An Upgrade is ignored (RFC 9110 7.8); what follows it would not
	   be HTTP, so the connection closes after the answer. */
	hc->keep_alive = !p->upgrade && http_should_keep_alive(p) &&
			 hc->requests < hc->srv->conf.max_requests &&
			 !hc->srv->stopping;
	r->method = http_method_str((enum http_method)p->method);
	r->head = p->method == HTTP_HEAD;
	buf_append(&hc->url, "", 1);
	const char *url = buf_ptr(&hc->url);
	int absolute = 0;
	if (strncasecmp(url, "http://", 7) == 0 ||
	    strncasecmp(url, "https://", 8) == 0) {
		/* RFC 9112 3.2.2: the absolute form is accepted, its
		   authority taken for the Host */
		const char *auth = strstr(url, "//") + 2;
		const char *slash = strchr(auth, '/');
		size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
		if (alen == 0 || alen >= sizeof(r->host) ||
		    memchr(auth, '@', alen) != NULL) {
			hc->bad_host = 1;
		} else {
			memcpy(r->host, auth, alen);
			r->host[alen] = '\0';
			hc->bad_host = 0;
		}
		url = slash ? slash : "/";
		absolute = 1;
	}
	const char *q = strchr(url, '?');
	size_t plen = q ? (size_t)(q - url) : strlen(url);
	if (plen >= sizeof(r->path) ||
	    (q != NULL && strlen(q + 1) >= sizeof(r->query))) {
		hc->keep_alive = 0;
		http_respond(hc, 414, "text/plain; charset=utf-8",
			     "URI too long.\n", 14, NULL);
		return;
	}
	if (url[0] != '/' || hc->bad_host) {
		hc->keep_alive = 0;
		http_respond(hc, 400, "text/plain; charset=utf-8", "Bad request.\n", 13,
			     NULL);
		return;
	}
	if (p->http_major != 1) {
		hc->keep_alive = 0;
		http_respond(hc, 505, "text/plain; charset=utf-8",
			     "HTTP/1.1 only.\n", 15, NULL);
		return;
	}
	if (p->http_minor >= 1 && !hc->have_host && !absolute) {
		/* RFC 9112 3.2: a request without Host gets 400. */
		hc->keep_alive = 0;
		http_respond(hc, 400, "text/plain; charset=utf-8",
			     "Host header missing.\n", 21, NULL);
		return;
	}
	memcpy(r->path, url, plen);
	r->path[plen] = '\0';
	snprintf(r->query, sizeof(r->query), "%s", q ? q + 1 : "");
	/* One request at a time: what is pipelined waits. */
	conn_read_stop(&hc->conn);
	hc->srv->conf.handler(hc, r, hc->srv->conf.ctx);
}

static void
hc_parse_error(struct http_conn *hc)
{
	int status = hc->error_status ? hc->error_status : 400;
	const char *msg = status == 431   ? "Request headers too large.\n"
			  : status == 413 ? "Request body too large.\n"
			  : status == 501 ? "Transfer coding not implemented.\n"
					  : "Bad request.\n";
	log_info("http client=%s refused request error=\"%s\"",
		 hc->req.peer_name,
		 hc->error_status ? http_status_text(status)
				  : http_errno_description(
					    HTTP_PARSER_ERRNO(&hc->parser)));
	hc->state = HTTP_HANDLING;
	hc->keep_alive = 0;
	buf_reset(&hc->in);
	http_respond(hc, status, "text/plain; charset=utf-8", msg, strlen(msg),
		     NULL);
}

static void
hc_process(struct http_conn *hc)
{
	while ((hc->state == HTTP_IDLE || hc->state == HTTP_READING) &&
	       buf_used(&hc->in) > 0) {
		size_t n = http_parser_execute(&hc->parser, &hc_settings,
					       buf_ptr(&hc->in),
					       buf_used(&hc->in));
		enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
		buf_consume(&hc->in, n);
		if (e == HPE_PAUSED) {
			http_parser_pause(&hc->parser, 0);
			hc_dispatch(hc);
			return;
		}
		if (e != HPE_OK || hc->parser.upgrade) {
			hc_parse_error(hc);
			return;
		}
	}
	if (hc->state == HTTP_READING && !uv_is_active((uv_handle_t *)&hc->timer))
		uv_timer_start(&hc->timer, hc_timeout,
			       hc->srv->conf.request_timeout_ms, 0);
}

void
http_defer(struct http_conn *hc, void (*cancel)(void *arg), void *arg)
{
	hc->cancel = cancel;
	hc->cancel_arg = arg;
}

uv_loop_t *
http_conn_loop(struct http_conn *hc)
{
	return hc->srv->loop;
}

static void
http_date(char *out, size_t outsize)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, outsize, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void
http_respond(struct http_conn *hc, int status, const char *content_type,
	     const void *body, size_t len, const char *extra_headers)
{
	if (hc->state != HTTP_HANDLING && hc->state != HTTP_READING)
		return;
	hc->cancel = NULL;
	if (status >= 400 && status != 404 && status != 401 && status != 403 &&
	    status != 405)
		hc->keep_alive = 0;
	char date[64];
	http_date(date, sizeof(date));
	char hsts[64] = "";
	if (hc->req.tls && hc->srv->conf.hsts_max_age > 0)
		snprintf(hsts, sizeof(hsts),
			 "Strict-Transport-Security: max-age=%llu\r\n",
			 (unsigned long long)hc->srv->conf.hsts_max_age);
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "HTTP/1.1 %d %s\r\n"
		   "Date: %s\r\n"
		   "Content-Type: %s\r\n"
		   "Content-Length: %zu\r\n"
		   "Cache-Control: no-store\r\n"
		   "X-Content-Type-Options: nosniff\r\n"
		   "%s%s"
		   "Connection: %s\r\n\r\n",
		   status, http_status_text(status), date, content_type, len,
		   hsts, extra_headers ? extra_headers : "",
		   hc->keep_alive ? "keep-alive" : "close");
	if (!hc->req.head && len > 0)
		buf_append(&b, body, len);
	conn_write(&hc->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	char path[96];
	log_info("http client=%s method=%s path=\"%s\" status=%d bytes=%zu",
		 hc->req.peer_name, hc->req.method[0] ? hc->req.method : "-",
		 log_sanitize(path, sizeof(path), hc->req.path,
			      strlen(hc->req.path), 80),
		 status, len);
	if (!hc->keep_alive) {
		hc_close(hc, "done");
		return;
	}
	hc_request_reset(hc);
	conn_read_start(&hc->conn);
	hc_process(hc);
}

/* -- connections ----------------------------------------------------------*/

static void
hc_timer_closed(uv_handle_t *h)
{
	struct http_conn *hc = h->data;
	struct http_server *s = hc->srv;
	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		s->conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	s->nconns--;
	if (hc->counted && s->conf.connections != NULL)
		__atomic_fetch_sub(s->conf.connections, 1, __ATOMIC_RELAXED);
	if (hc->addr_counted)
		s->conf.addr_release(s->conf.ctx,
				     (struct sockaddr *)&hc->counted_addr);
	tls_server_unref(&hc->certs);
	buf_wipe(&hc->in);
	buf_wipe(&hc->req.body);
	buf_free(&hc->url);
	buf_free(&hc->hname);
	buf_free(&hc->hval);
	free(hc);
}

static void
hc_conn_closed(struct conn *conn)
{
	struct http_conn *hc = conn->data;
	uv_close((uv_handle_t *)&hc->timer, hc_timer_closed);
}

/* The connection is going: a handler still working gives up. */
static void
hc_detach(struct http_conn *hc, const char *why)
{
	if (hc->state == HTTP_CLOSING)
		return;
	hc->state = HTTP_CLOSING;
	uv_timer_stop(&hc->timer);
	if (hc->cancel != NULL) {
		void (*cancel)(void *) = hc->cancel;
		hc->cancel = NULL;
		cancel(hc->cancel_arg);
	}
	log_debug("http client=%s closed reason=\"%s\"", hc->req.peer_name,
		  why);
}

static void
hc_close(struct http_conn *hc, const char *why)
{
	hc_detach(hc, why);
	conn_close(&hc->conn);
}

static int hc_start_tls(struct http_conn *hc);

/* Input of a proxy_required peer until its PROXY header is complete. */
static const char http_busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				"Content-Length: 0\r\n"
				"Retry-After: 5\r\n"
				"Connection: close\r\n\r\n";

/* The client's address known: its place among conf.addr_acquire's.
 * Returns -1 after closing the connection (503 first on plain HTTP). */
static int
hc_admit(struct http_conn *hc, int tls)
{
	struct http_server *s = hc->srv;
	const struct sockaddr *sa = (const struct sockaddr *)&hc->req.peer;
	if (s->conf.addr_acquire == NULL)
		return 0;
	if (s->conf.addr_acquire(s->conf.ctx, sa) < 0) {
		log_warn("http client=%s refused: too many connections from "
			 "the address",
			 hc->req.peer_name);
		if (!tls)
			conn_write(&hc->conn, http_busy, sizeof(http_busy) - 1);
		hc_close(hc, "address connection limit");
		return -1;
	}
	hc->addr_counted = 1;
	memcpy(&hc->counted_addr, &hc->req.peer, sizeof(hc->counted_addr));
	return 0;
}

static void
hc_proxy_input(struct http_conn *hc, const char *data, size_t len)
{
	struct proxy_hdr h;
	size_t used = 0;
	const char *err = "";
	buf_append(&hc->in, data, len);
	switch (proxy_parse(buf_ptr(&hc->in), buf_used(&hc->in), &h, &used,
			    &err)) {
	case PROXY_MORE:
		return;
	case PROXY_ERROR:
		log_warn("http proxy=%s invalid PROXY header: %s",
			 hc->req.peer_name, err);
		hc_close(hc, "invalid PROXY header");
		return;
	case PROXY_DONE:
		break;
	case PROXY_STATUS_COUNT:
		abort();
	}
	buf_consume(&hc->in, used);
	hc->proxy_wait = 0;
	if (!h.local) {
		memcpy(&hc->req.peer, &h.src, sizeof(hc->req.peer));
		conn_addr_name((struct sockaddr *)&hc->req.peer,
			       hc->req.peer_name, sizeof(hc->req.peer_name));
	}
	if (hc_admit(hc, hc->tls_pending) < 0)
		return;
	if (hc->tls_pending) {
		struct buf rest = hc->in;
		memset(&hc->in, 0, sizeof(hc->in));
		if (hc_start_tls(hc) == 0 && buf_used(&rest) > 0)
			conn_feed(&hc->conn, buf_ptr(&rest), buf_used(&rest));
		buf_free(&rest);
		return;
	}
	hc_process(hc);
}

static void
hc_conn_read(struct conn *conn, const char *data, size_t len)
{
	struct http_conn *hc = conn->data;
	if (hc->state == HTTP_CLOSING)
		return;
	if (hc->proxy_wait) {
		hc_proxy_input(hc, data, len);
		return;
	}
	buf_append(&hc->in, data, len);
	hc_process(hc);
}

static void
hc_conn_error(struct conn *conn, const char *why)
{
	hc_detach(conn->data, why);
}

static const struct conn_ops hc_conn_ops = {
	.read = hc_conn_read,
	.error = hc_conn_error,
	.closed = hc_conn_closed,
};

static void
on_http_connection(uv_stream_t *server, int status)
{
	struct http_listener *l = server->data;
	struct http_server *s = l->srv;
	if (status < 0) {
		log_warn("http accept error=\"%s\"", uv_strerror(status));
		return;
	}
	struct http_conn *hc = calloc(1, sizeof(*hc));
	if (hc == NULL)
		abort();
	hc->srv = s;
	if (conn_init(s->loop, &hc->conn, &hc_conn_ops, hc) < 0) {
		free(hc);
		return;
	}
	uv_timer_init(s->loop, &hc->timer);
	hc->timer.data = hc;
	hc->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = hc;
	s->conns = hc;
	s->nconns++;
	hc->state = HTTP_IDLE;
	if (conn_accept(server, &hc->conn) < 0) {
		hc_close(hc, "accept failed");
		return;
	}
	hc->req.tls = l->tls;
	conn_peer_addr(&hc->conn, &hc->req.peer);
	conn_addr_name((struct sockaddr *)&hc->req.peer, hc->req.peer_name,
		       sizeof(hc->req.peer_name));
	if (s->conf.connections != NULL) {
		unsigned long n = __atomic_add_fetch(s->conf.connections, 1,
						     __ATOMIC_RELAXED);
		hc->counted = 1;
		if (n > s->conf.max_connections) {
			log_warn("http client=%s refused: more than %lu "
				 "connections",
				 hc->req.peer_name, s->conf.max_connections);
			if (!l->tls)
				conn_write(&hc->conn, http_busy,
					   sizeof(http_busy) - 1);
			hc_close(hc, "connection limit");
			return;
		}
	}
	hc_request_reset(hc);
	if (s->conf.proxy_required != NULL &&
	    s->conf.proxy_required(s->conf.ctx,
				   (struct sockaddr *)&hc->req.peer)) {
		/* The balancer speaks first: the PROXY header, then TLS. */
		hc->proxy_wait = 1;
		hc->tls_pending = l->tls;
	} else if (hc_admit(hc, l->tls) < 0 ||
		   (l->tls && hc_start_tls(hc) < 0)) {
		return;
	}
	conn_read_start(&hc->conn);
}

static int
hc_start_tls(struct http_conn *hc)
{
	struct http_server *s = hc->srv;
	hc->tls_pending = 0;
	hc->certs = s->conf.tls_certs(s->conf.ctx);
	if (conn_start_tls(&hc->conn, tls_server_default(hc->certs), 1, NULL) <
	    0) {
		hc_close(hc, "TLS setup failed");
		return -1;
	}
	return 0;
}

struct http_server *
http_server_create(uv_loop_t *loop, const struct http_server_conf *conf)
{
	struct http_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->loop = loop;
	s->conf = *conf;
	return s;
}

void
http_server_conf_settings(struct http_server_conf *conf,
			  const struct config *cfg)
{
	conf->max_header = cfg->http_max_header_size;
	conf->max_body = cfg->http_max_body_size;
	conf->request_timeout_ms = (uint64_t)cfg->http_request_timeout * 1000;
	conf->keepalive_timeout_ms = (uint64_t)cfg->http_keepalive_timeout *
				     1000;
	conf->max_requests = (unsigned)cfg->http_max_requests;
	conf->max_connections = (unsigned long)cfg->http_max_connections;
	conf->hsts_max_age = (uint64_t)cfg->http_hsts_max_age;
}

void
http_server_set_limits(struct http_server *s,
		       const struct http_server_conf *conf)
{
	s->conf.max_header = conf->max_header;
	s->conf.max_body = conf->max_body;
	s->conf.request_timeout_ms = conf->request_timeout_ms;
	s->conf.keepalive_timeout_ms = conf->keepalive_timeout_ms;
	s->conf.max_requests = conf->max_requests;
	s->conf.max_connections = conf->max_connections;
	s->conf.hsts_max_age = conf->hsts_max_age;
}

static void
http_listener_freed(uv_handle_t *h)
{
	free(h->data);
}

void
http_server_unlisten(struct http_server *s, int tls)
{
	struct http_listener *l = s->listeners[tls != 0];
	if (l == NULL)
		return;
	s->listeners[tls != 0] = NULL;
	uv_close((uv_handle_t *)&l->tcp, http_listener_freed);
}

int
http_server_listen_fd(struct http_server *s, int fd, int tls,
		      const char **error_r)
{
	static _Thread_local char msg[160];
	if (s->listeners[tls != 0] != NULL) {
		close(fd);
		*error_r = "already listening";
		return -1;
	}
	struct http_listener *l = calloc(1, sizeof(*l));
	if (l == NULL)
		abort();
	uv_tcp_init(s->loop, &l->tcp);
	l->tcp.data = l;
	l->srv = s;
	l->tls = tls != 0;
	s->listeners[tls != 0] = l;
	int rc = uv_tcp_open(&l->tcp, fd);
	if (rc < 0)
		close(fd); /* not the handle's */
	else
		rc = uv_listen((uv_stream_t *)&l->tcp, 1024,
			       on_http_connection);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s", uv_strerror(rc));
		*error_r = msg;
		http_server_unlisten(s, tls);
		return -1;
	}
	return 0;
}

int
http_server_listen(struct http_server *s, const char *addr, int tls,
		   const char **error_r)
{
	int fd = conn_listen_socket(addr, 1, error_r);
	return fd < 0 ? -1 : http_server_listen_fd(s, fd, tls, error_r);
}

void
http_server_stop(struct http_server *s)
{
	if (s == NULL || s->stopping)
		return;
	s->stopping = 1;
	http_server_unlisten(s, 0);
	http_server_unlisten(s, 1);
	for (struct http_conn *hc = s->conns, *next; hc != NULL; hc = next) {
		next = hc->next;
		hc_close(hc, "shutdown");
	}
}

unsigned
http_server_connections(const struct http_server *s)
{
	return s->nconns;
}

void
http_server_free(struct http_server **sp)
{
	free(*sp);
	*sp = NULL;
}
