/* relay.c - SMTP/LMTP client: one message to the first host that answers. */
#include "backend/transport/relay.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netdb.h>

#include "common/buf.h"
#include "common/conn.h"
#include "common/log.h"

/* Longest reply line and lines per reply we read (RFC 5321 4.5.3.1.5:
 * 512 octets; servers send longer ones). */
#define RELAY_MAX_LINE 4096
#define RELAY_MAX_LINES 200

enum relay_state {
	R_CONNECT,
	R_GREETING,
	R_EHLO,
	R_STARTTLS,
	R_TLS,
	R_MAIL,
	R_RCPT,
	R_DATA,
	R_DOT,
	R_QUIT,
	R_CLOSED,
	R_STATE_COUNT
};

static const char *const relay_state_names[] = {
	"connect", "greeting", "ehlo", "starttls", "tls", "mail",
	"rcpt",    "data",     "dot",  "quit",     "closed",
};
_Static_assert(sizeof(relay_state_names) / sizeof(relay_state_names[0]) ==
		       R_STATE_COUNT,
	       "relay state names");

struct relay {
	struct relay_req *req;
	uv_loop_t *loop;
	struct conn conn;
	int conn_live;         /* conn initialised, closed callback pending */
	uv_timer_t timer;
	int timer_closing;
	enum relay_state state;
	char hosts[1024];
	char *next_host;       /* strtok position in hosts */
	char host[280];        /* the one being tried */
	int connected;         /* the current host accepted the connection */
	int aborted;
	uv_getaddrinfo_t gai;  /* a host name being resolved */
	int resolving;
	struct buf in;
	/* the reply being read */
	unsigned lines;
	char text[512];
	/* EHLO keywords */
	unsigned ext_starttls : 1, ext_size : 1, ext_8bit : 1, ext_dsn : 1,
		ext_utf8 : 1, ext_delivery_id : 1;
	size_t rcpt_i;
	size_t *accepted;      /* recipients accepted at RCPT */
	size_t n_accepted, dot_i;
	uint8_t *final;        /* recipient has its last reply */
};

static void relay_fail_pending(struct relay *r, uint32_t code,
			       const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
relay_enter(struct relay *r, enum relay_state st)
{
	log_debug("relay queue=%s host=%s state %s -> %s", r->req->log_id,
		  r->host, relay_state_names[r->state], relay_state_names[st]);
	r->state = st;
}

static void
set_reply(struct relay_rcpt *rc, uint32_t code, const char *status,
	  const char *text)
{
	rc->code = code;
	snprintf(rc->status, sizeof(rc->status), "%s", status);
	snprintf(rc->text, sizeof(rc->text), "%s", text);
}

static void
relay_fail_pending(struct relay *r, uint32_t code, const char *status,
		   const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < r->req->n; i++) {
		if (r->final[i])
			continue;
		set_reply(&r->req->rcpt[i], code, status, text);
		r->final[i] = 1;
	}
}

static int
all_final(const struct relay *r)
{
	for (size_t i = 0; i < r->req->n; i++)
		if (!r->final[i])
			return 0;
	return 1;
}

static void
timer_closed(uv_handle_t *h)
{
	struct relay *r = h->data;
	struct relay_req *req = r->req;
	buf_free(&r->in);
	free(r->accepted);
	free(r->final);
	req->relay = NULL;
	free(r);
	req->done(req);
}

/* Every handle is gone: report. */
static void
relay_finish(struct relay *r)
{
	if (r->timer_closing || r->resolving)
		return; /* the resolver's callback finishes */
	r->timer_closing = 1;
	relay_fail_pending(r, 451, "4.4.1", "No host reachable");
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, timer_closed);
}

static void relay_connect_next(struct relay *r);

static void
relay_send(struct relay *r, enum relay_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
relay_timeout(uv_timer_t *t)
{
	struct relay *r = t->data;
	if (r->conn_live && !r->conn.closing && !r->connected) {
		/* Connecting took too long: the next host. */
		snprintf(r->text, sizeof(r->text), "connection timed out");
		conn_abort(&r->conn);
		return;
	}
	if (r->conn_live && !r->conn.closing) {
		relay_fail_pending(r, 451, "4.4.2",
				   "Timed out waiting for %s (%s)", r->host,
				   relay_state_names[r->state]);
		relay_enter(r, R_CLOSED);
		conn_abort(&r->conn);
	}
}

static void
relay_arm(struct relay *r)
{
	uv_timer_start(&r->timer, relay_timeout, (uint64_t)r->req->timeout_ms,
		       0);
}

static void
relay_send(struct relay *r, enum relay_state st, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	conn_write(&r->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	relay_enter(r, st);
	relay_arm(r);
}

static void
relay_quit(struct relay *r)
{
	relay_send(r, R_QUIT, "QUIT\r\n");
}

/* xtext (RFC 3461 4): '+', '=' and what is not printable ASCII as +XX. */
static void
xtext(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			buf_printf(b, "+%02X", c);
		else
			buf_append(b, s, 1);
	}
}

static void
send_mail(struct relay *r)
{
	const struct relay_req *q = r->req;
	struct buf b = BUF_INIT;
	buf_printf(&b, "MAIL FROM:<%s>", q->mail_from);
	if (r->ext_size)
		buf_printf(&b, " SIZE=%zu", q->len);
	if (r->ext_8bit && q->body != NULL &&
	    strcasecmp(q->body, "8BITMIME") == 0)
		buf_printf(&b, " BODY=8BITMIME");
	if (r->ext_utf8 && q->smtputf8)
		buf_printf(&b, " SMTPUTF8");
	if (r->ext_dsn) {
		if (q->ret != NULL && q->ret[0] != '\0')
			buf_printf(&b, " RET=%s", q->ret);
		if (q->envid != NULL && q->envid[0] != '\0') {
			buf_printf(&b, " ENVID=");
			xtext(&b, q->envid);
		}
	}
	if (q->lmtp && r->ext_delivery_id && q->delivery_id != NULL &&
	    q->delivery_id[0] != '\0')
		buf_printf(&b, " XDELIVERYID=%s", q->delivery_id);
	buf_printf(&b, "\r\n");
	conn_write(&r->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	relay_enter(r, R_MAIL);
	relay_arm(r);
}

static void
send_rcpt(struct relay *r)
{
	const struct relay_rcpt *rc = &r->req->rcpt[r->rcpt_i];
	struct buf b = BUF_INIT;
	buf_printf(&b, "RCPT TO:<%s>", rc->address);
	if (r->ext_dsn) {
		if (rc->notify[0] != '\0')
			buf_printf(&b, " NOTIFY=%s", rc->notify);
		if (rc->orcpt[0] != '\0') {
			/* "rfc822;addr": the type as is, the address as
			   xtext. */
			const char *semi = strchr(rc->orcpt, ';');
			if (semi != NULL) {
				buf_printf(&b, " ORCPT=%.*s;",
					   (int)(semi - rc->orcpt), rc->orcpt);
				xtext(&b, semi + 1);
			}
		}
	}
	buf_printf(&b, "\r\n");
	conn_write(&r->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	relay_enter(r, R_RCPT);
	relay_arm(r);
}

/* The message, dot-stuffed, then the terminating dot. */
static void
send_data(struct relay *r)
{
	const char *p = r->req->data, *end = p + r->req->len;
	struct buf b = BUF_INIT;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		if (*p == '.')
			buf_append(&b, ".", 1);
		buf_append(&b, p, (size_t)(next - p));
		p = next;
	}
	if (r->req->len > 0 && r->req->data[r->req->len - 1] != '\n')
		buf_append(&b, "\r\n", 2);
	buf_append(&b, ".\r\n", 3);
	conn_write(&r->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
	relay_enter(r, R_DOT);
	relay_arm(r);
}

static void
status_of(uint32_t code, const char *text, char *status, size_t ssize,
	  const char **rest_r)
{
	/* "x.y.z " at the start of the text, x matching the code's class */
	const char *p = text;
	size_t i = 0;
	*rest_r = text;
	if (p[0] == (char)('0' + code / 100) && p[1] == '.') {
		i = 2;
		while (isdigit((unsigned char)p[i]))
			i++;
		if (p[i] == '.' && isdigit((unsigned char)p[i + 1])) {
			i++;
			while (isdigit((unsigned char)p[i]))
				i++;
			if ((p[i] == ' ' || p[i] == '\0') && i < ssize) {
				snprintf(status, ssize, "%.*s", (int)i, p);
				*rest_r = p[i] == ' ' ? p + i + 1 : p + i;
				return;
			}
		}
	}
	snprintf(status, ssize, "%u.0.0", code / 100);
}

/* The full reply has arrived: code and text (continuation lines joined). */
static void
relay_reply(struct relay *r, uint32_t code)
{
	const struct relay_req *q = r->req;
	char status[16];
	const char *text;
	int ok = code >= 200 && code < 300;
	uv_timer_stop(&r->timer);
	status_of(code, r->text, status, sizeof(status), &text);
	switch (r->state) {
	case R_GREETING:
		if (!ok) {
			relay_fail_pending(r, code >= 500 ? 451 : code, "4.4.0",
					   "%s refused the connection: %u %s",
					   r->host, code, r->text);
			relay_quit(r);
			return;
		}
		/* What this host offers, not the one before it. */
		r->ext_starttls = r->ext_size = r->ext_8bit = r->ext_dsn =
			r->ext_utf8 = r->ext_delivery_id = 0;
		relay_send(r, R_EHLO, "%s %s\r\n", q->lmtp ? "LHLO" : "EHLO",
			   q->helo);
		return;
	case R_EHLO:
		if (!ok) {
			relay_fail_pending(r, 451, "4.5.0",
					   "%s refused %s: %u %s", r->host,
					   q->lmtp ? "LHLO" : "EHLO", code,
					   r->text);
			relay_quit(r);
			return;
		}
		if (!r->req->tls_used && q->tls != RELAY_TLS_NONE &&
		    q->tls_ctx != NULL && r->ext_starttls) {
			relay_send(r, R_STARTTLS, "STARTTLS\r\n");
			return;
		}
		if (!r->req->tls_used && (q->tls == RELAY_TLS_ENCRYPT ||
					  q->tls == RELAY_TLS_VERIFY)) {
			relay_fail_pending(r, 451, "4.7.4",
					   "%s does not offer STARTTLS, which "
					   "is required",
					   r->host);
			relay_quit(r);
			return;
		}
		r->req->dsn_offered = r->ext_dsn;
		/* What the server cannot take is not sent (RFC 6531 3.4,
		   RFC 6152 3). */
		if (q->smtputf8 && !r->ext_utf8) {
			relay_fail_pending(r, 553, "5.6.7",
					   "%s does not support SMTPUTF8, "
					   "which this message needs",
					   r->host);
			relay_quit(r);
			return;
		}
		if (q->body != NULL && strcasecmp(q->body, "8BITMIME") == 0 &&
		    !r->ext_8bit) {
			relay_fail_pending(r, 554, "5.6.3",
					   "%s does not support 8BITMIME, "
					   "which this message needs",
					   r->host);
			relay_quit(r);
			return;
		}
		send_mail(r);
		return;
	case R_STARTTLS: {
		if (code != 220) {
			if (q->tls == RELAY_TLS_MAY) {
				send_mail(r);
				return;
			}
			relay_fail_pending(r, 451, "4.7.4",
					   "%s refused STARTTLS: %u %s",
					   r->host, code, r->text);
			relay_quit(r);
			return;
		}
		char name[280];
		snprintf(name, sizeof(name), "%s", r->host);
		char *colon = strrchr(name, ':');
		if (colon != NULL)
			*colon = '\0';
		relay_enter(r, R_TLS);
		r->ext_starttls = r->ext_size = r->ext_8bit = r->ext_dsn =
			r->ext_utf8 = r->ext_delivery_id = 0;
		if (conn_start_tls(&r->conn, q->tls_ctx, 0,
				   q->tls == RELAY_TLS_VERIFY ? name : NULL) <
		    0) {
			relay_fail_pending(r, 451, "4.7.5",
					   "TLS could not start with %s",
					   r->host);
			relay_enter(r, R_CLOSED);
			conn_abort(&r->conn);
			return;
		}
		relay_arm(r);
		return;
	}
	case R_MAIL:
		if (!ok) {
			relay_fail_pending(r, code, status, "%s", text);
			relay_quit(r);
			return;
		}
		r->rcpt_i = 0;
		send_rcpt(r);
		return;
	case R_RCPT:
		set_reply(&q->rcpt[r->rcpt_i], code, status, text);
		if (ok)
			r->accepted[r->n_accepted++] = r->rcpt_i;
		else
			r->final[r->rcpt_i] = 1;
		if (++r->rcpt_i < q->n) {
			send_rcpt(r);
			return;
		}
		if (r->n_accepted == 0) {
			relay_quit(r);
			return;
		}
		relay_send(r, R_DATA, "DATA\r\n");
		return;
	case R_DATA:
		if (code != 354) {
			relay_fail_pending(r, code >= 400 ? code : 451,
					   code >= 400 ? status : "4.5.0",
					   "%s", text);
			relay_quit(r);
			return;
		}
		r->dot_i = 0;
		send_data(r);
		return;
	case R_DOT:
		if (q->lmtp) {
			size_t i = r->accepted[r->dot_i++];
			set_reply(&q->rcpt[i], code, status, text);
			r->final[i] = 1;
			if (r->dot_i < r->n_accepted) {
				relay_arm(r);
				return;
			}
		} else {
			for (size_t k = 0; k < r->n_accepted; k++) {
				size_t i = r->accepted[k];
				set_reply(&q->rcpt[i], code, status, text);
				r->final[i] = 1;
			}
		}
		relay_quit(r);
		return;
	case R_QUIT:
		relay_enter(r, R_CLOSED);
		conn_close(&r->conn);
		return;
	case R_CONNECT:
	case R_TLS:
	case R_CLOSED:
	case R_STATE_COUNT:
		break;
	}
	/* A reply nobody asked for. */
	relay_fail_pending(r, 451, "4.5.0", "%s sent an unexpected reply: %u",
			   r->host, code);
	relay_enter(r, R_CLOSED);
	conn_abort(&r->conn);
}

static void
ehlo_keyword(struct relay *r, const char *kw)
{
	size_t n = strcspn(kw, " ");
	if (n == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
		r->ext_starttls = 1;
	else if (n == 4 && strncasecmp(kw, "SIZE", 4) == 0)
		r->ext_size = 1;
	else if (n == 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
		r->ext_8bit = 1;
	else if (n == 3 && strncasecmp(kw, "DSN", 3) == 0)
		r->ext_dsn = 1;
	else if (n == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0)
		r->ext_utf8 = 1;
	else if (n == 11 && strncasecmp(kw, "XDELIVERYID", 11) == 0)
		r->ext_delivery_id = 1;
}

static void
relay_read(struct conn *c, const char *data, size_t len)
{
	struct relay *r = c->data;
	buf_append(&r->in, data, len);
	while (r->state != R_CLOSED && !c->closing) {
		const char *p = buf_ptr(&r->in);
		const char *nl = memchr(p, '\n', buf_used(&r->in));
		if (nl == NULL) {
			if (buf_used(&r->in) > RELAY_MAX_LINE)
				goto bad;
			return;
		}
		size_t ll = (size_t)(nl - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll > RELAY_MAX_LINE || ll < 3 || !isdigit((unsigned char)p[0]) ||
		    !isdigit((unsigned char)p[1]) ||
		    !isdigit((unsigned char)p[2]) ||
		    (ll > 3 && p[3] != ' ' && p[3] != '-'))
			goto bad;
		uint32_t code = (uint32_t)((p[0] - '0') * 100 +
					   (p[1] - '0') * 10 + (p[2] - '0'));
		int more = ll > 3 && p[3] == '-';
		char line[RELAY_MAX_LINE + 1];
		size_t tl = ll > 4 ? ll - 4 : 0;
		if (tl > 0)
			memcpy(line, p + 4, tl);
		line[tl] = '\0';
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)line[i] < 0x20)
				line[i] = ' ';
		buf_consume(&r->in, (size_t)(nl - p) + 1);
		if (r->state == R_EHLO && r->lines > 0)
			ehlo_keyword(r, line);
		/* The reply's text: its lines joined by spaces, cut to
		   fit. */
		size_t used = r->lines == 0 ? 0 : strlen(r->text);
		if (r->lines > 0 && used + 1 < sizeof(r->text))
			r->text[used++] = ' ';
		size_t room = sizeof(r->text) - 1 - used;
		size_t take = tl < room ? tl : room;
		memcpy(r->text + used, line, take);
		r->text[used + take] = '\0';
		if (++r->lines > RELAY_MAX_LINES)
			goto bad;
		if (more)
			continue;
		r->lines = 0;
		relay_reply(r, code);
	}
	return;
bad:
	relay_fail_pending(r, 451, "4.5.0", "%s sent an invalid reply",
			   r->host);
	relay_enter(r, R_CLOSED);
	conn_abort(c);
}

static void
relay_error(struct conn *c, const char *why)
{
	struct relay *r = c->data;
	if (!r->connected)
		return; /* the next host is tried from closed */
	relay_fail_pending(r, 451, "4.4.2", "Connection with %s lost (%s): %s",
			   r->host, relay_state_names[r->state], why);
	relay_enter(r, R_CLOSED);
}

static void
relay_tls_ready(struct conn *c)
{
	struct relay *r = c->data;
	r->req->tls_used = 1;
	relay_send(r, R_EHLO, "%s %s\r\n", r->req->lmtp ? "LHLO" : "EHLO",
		   r->req->helo);
}

static void
relay_closed(struct conn *c)
{
	struct relay *r = c->data;
	r->conn_live = 0;
	uv_timer_stop(&r->timer);
	if (!r->connected && !r->aborted && !all_final(r)) {
		relay_connect_next(r);
		return;
	}
	relay_fail_pending(r, 451, "4.4.2", "Connection with %s lost",
			   r->host);
	relay_finish(r);
}

static const struct conn_ops relay_ops = {
	.read = relay_read,
	.error = relay_error,
	.tls_ready = relay_tls_ready,
	.closed = relay_closed,
};

static void
relay_connected(struct conn *c, int status)
{
	struct relay *r = c->data;
	if (status < 0) {
		log_info("relay queue=%s host=%s connect error=\"%s\"",
			 r->req->log_id, r->host, uv_strerror(status));
		snprintf(r->text, sizeof(r->text), "%s", uv_strerror(status));
		conn_abort(c);
		return;
	}
	r->connected = 1;
	snprintf(r->req->remote, sizeof(r->req->remote), "%s", r->host);
	relay_enter(r, R_GREETING);
	relay_arm(r);
	conn_read_start(c);
}

static void
connect_timer(uv_timer_t *t)
{
	relay_connect_next(t->data);
}

static void relay_connect_to(struct relay *r, const struct sockaddr *sa);

static void
relay_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct relay *r = req->data;
	r->resolving = 0;
	if (r->aborted) {
		if (res != NULL)
			uv_freeaddrinfo(res);
		relay_finish(r);
		return;
	}
	if (status < 0 || res == NULL) {
		log_info("relay queue=%s host=%s resolve error=\"%s\"",
			 r->req->log_id, r->host, uv_strerror(status));
		snprintf(r->text, sizeof(r->text), "%s",
			 status < 0 ? uv_strerror(status) : "no address");
		if (res != NULL)
			uv_freeaddrinfo(res);
		relay_connect_next(r);
		return;
	}
	struct sockaddr_storage ss;
	memcpy(&ss, res->ai_addr,
	       res->ai_addrlen < sizeof(ss) ? res->ai_addrlen : sizeof(ss));
	uv_freeaddrinfo(res);
	relay_connect_to(r, (struct sockaddr *)&ss);
}

/* Starts resolving "name:port"; -1 (with r->text) if it cannot. */
static int
relay_resolve(struct relay *r, const char *hostport)
{
	char name[256];
	const char *colon = strrchr(hostport, ':');
	if (colon == NULL || colon == hostport || colon[1] == '\0' ||
	    (size_t)(colon - hostport) >= sizeof(name)) {
		snprintf(r->text, sizeof(r->text), "expected host:port");
		return -1;
	}
	memcpy(name, hostport, (size_t)(colon - hostport));
	name[colon - hostport] = '\0';
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r->gai.data = r;
	int rc = uv_getaddrinfo(r->loop, &r->gai, relay_resolved, name,
				colon + 1, &hints);
	if (rc < 0) {
		snprintf(r->text, sizeof(r->text), "%s", uv_strerror(rc));
		return -1;
	}
	r->resolving = 1;
	return 0;
}

/* Tries the next host of the list; none left: finish. */
static void
relay_connect_next(struct relay *r)
{
	const char *err;
	struct sockaddr_storage ss;
	for (;;) {
		char *h = r->next_host;
		if (r->aborted || h == NULL) {
			relay_fail_pending(r, 451, "4.4.1",
					   "No host reachable (last: %s: %s)",
					   r->host[0] ? r->host : "none",
					   r->text[0] ? r->text : "no hosts");
			relay_finish(r);
			return;
		}
		h += strspn(h, " \t,");
		if (*h == '\0') {
			r->next_host = NULL;
			continue;
		}
		size_t n = strcspn(h, " \t,");
		r->next_host = h[n] != '\0' ? h + n + 1 : NULL;
		h[n] = '\0';
		snprintf(r->host, sizeof(r->host), "%s", h);
		if (conn_parse_addr(h, (struct sockaddr_storage *)&ss, &err) ==
		    0)
			break;
		if (relay_resolve(r, h) == 0)
			return; /* relay_resolved() goes on */
	}
	relay_connect_to(r, (struct sockaddr *)&ss);
}

/* Connects to the address of r->host. */
static void
relay_connect_to(struct relay *r, const struct sockaddr *sa)
{
	r->text[0] = '\0';
	r->connected = 0;
	r->state = R_CONNECT;
	if (conn_init(r->loop, &r->conn, &relay_ops, r) < 0) {
		relay_finish(r);
		return;
	}
	r->conn_live = 1;
	int rc = conn_connect(&r->conn, sa, relay_connected);
	if (rc < 0) {
		snprintf(r->text, sizeof(r->text), "%s", uv_strerror(rc));
		conn_abort(&r->conn);
		return;
	}
	relay_arm(r);
}

void
relay_start(uv_loop_t *loop, struct relay_req *req)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->req = req;
	r->loop = loop;
	req->relay = r;
	req->remote[0] = '\0';
	req->tls_used = 0;
	req->dsn_offered = 0;
	r->accepted = calloc(req->n ? req->n : 1, sizeof(*r->accepted));
	r->final = calloc(req->n ? req->n : 1, 1);
	if (r->accepted == NULL || r->final == NULL)
		abort();
	for (size_t i = 0; i < req->n; i++)
		req->rcpt[i].code = 0;
	snprintf(r->hosts, sizeof(r->hosts), "%s", req->hosts);
	r->next_host = r->hosts;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	/* Starts from the loop: done never runs inside relay_start(). */
	uv_timer_start(&r->timer, connect_timer, 0, 0);
}

void
relay_abort(struct relay_req *req)
{
	struct relay *r = req->relay;
	if (r == NULL || r->aborted)
		return;
	r->aborted = 1;
	relay_fail_pending(r, 451, "4.3.2", "Delivery interrupted: the "
					    "backend is stopping");
	if (r->conn_live) {
		r->state = R_CLOSED;
		conn_abort(&r->conn);
	} else if (r->resolving) {
		uv_cancel((uv_req_t *)&r->gai); /* relay_resolved() ends */
	} else {
		relay_finish(r);
	}
}
