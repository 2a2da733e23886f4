/* direct.c - a plain IMAP listener on the backend's session host, for
 * benchmarks and tests only.
 *
 * With backend.direct_imap_listen set (empty, the default, leaves it
 * off), the backend accepts IMAP clients itself, on a loopback address,
 * without TLS, without a frontend and without the directory: it is what
 * `make bench` compares a session through a frontend with, to show the
 * cost of the hop.  Before login it knows CAPABILITY, NOOP, LOGOUT and
 * LOGIN; LOGIN takes a mailbox id (the store's key of a user, what the
 * directory's porticoMailboxId holds) as the user name and the shared
 * secret backend.direct_imap_password as the password.  It is not an
 * authentication service: one password opens every mailbox.  After LOGIN
 * the session runs on the same IMAP engine as the sessions frontends
 * open over links (link_server.c), fed from the socket instead of Data
 * frames, with the socket's send queue as its flow control.
 */
#include "backend/backend.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/arena.h"
#include "common/imap_parser.h"
#include "common/log.h"

/* Pre-login commands are short: a LOGIN with a mailbox id. */
#define DIRECT_MAX_LINE 1024
/* One read of the socket (conn.c) beyond the window: reading stops once
 * the session holds more than its window of unprocessed input. */
#define DIRECT_MAX_READ 65536

struct direct_conn {
	struct backend *be;
	struct conn conn;
	struct lp_reader lp;      /* before login */
	struct bsession *s;       /* after login */
	char peer[64];
	unsigned serial;
	struct direct_conn *next;
};

struct direct_listener {
	uv_tcp_t tcp;
	struct direct_conn *conns;
	unsigned serial;
};

static void
direct_unlink(struct direct_conn *d)
{
	struct direct_conn **pp = &d->be->direct->conns;
	while (*pp != NULL && *pp != d)
		pp = &(*pp)->next;
	if (*pp == d)
		*pp = d->next;
}

/* -- the session after LOGIN ----------------------------------------------*/

void
direct_session_flush(struct bsession *s)
{
	struct direct_conn *d = s->direct;
	if (d == NULL || d->conn.closing)
		return;
	size_t window = (size_t)s->window;
	while (buf_used(&s->out) > 0 && conn_queued(&d->conn) < window) {
		size_t n = buf_used(&s->out);
		if (n > window)
			n = window;
		conn_write(&d->conn, buf_ptr(&s->out), n);
		buf_consume(&s->out, n);
	}
	if (s->ending && buf_used(&s->out) == 0) {
		log_info("session=%s direct closed", s->id);
		conn_close(&d->conn);
		return;
	}
	/* Reading paused on a full input buffer: resume once consumed. */
	if (!d->conn.reading && buf_used(&s->in) <= s->window)
		conn_read_start(&d->conn);
}

static void
direct_drained(struct conn *c)
{
	struct direct_conn *d = c->data;
	if (d->s == NULL)
		return;
	session_run(d->s);
}

static int
direct_login(struct direct_conn *d, const char *tag, const char *mailbox_id,
	     const char *password)
{
	struct backend *be = d->be;
	const char *secret = be->cfg.backend_direct_imap_password;
	size_t sl = strlen(secret), pl = strlen(password);
	if (pl != sl || CRYPTO_memcmp(secret, password, sl) != 0) {
		log_info("direct peer=%s login refused: wrong password",
			 d->peer);
		conn_printf(&d->conn,
			    "%s NO [AUTHENTICATIONFAILED] Wrong password\r\n",
			    tag);
		return -1;
	}
	struct bsession *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->be = be;
	s->direct = d;
	s->engine = &imap_engine;
	s->window = be->cfg.limits_link_window;
	snprintf(s->id, sizeof(s->id), "direct-%u", d->serial);
	snprintf(s->user, sizeof(s->user), "%s", mailbox_id);
	snprintf(s->mailbox_id, sizeof(s->mailbox_id), "%s", mailbox_id);
	be->sessions++;
	Portico__Open o = PORTICO__OPEN__INIT;
	o.user = s->user;
	o.mailbox_id = s->mailbox_id;
	o.protocol = PORTICO__PROTOCOL__PROTOCOL_IMAP;
	o.client_addr = d->peer;
	o.session_id = s->id;
	o.tag = (char *)(uintptr_t)tag;
	const char *code = "UNAVAILABLE", *reason = "internal error";
	if (s->engine->open(s, &o, &code, &reason) < 0) {
		log_info("session=%s direct mailbox=%s refused code=%s "
			 "reason=\"%s\"",
			 s->id, s->mailbox_id, code, reason);
		conn_printf(&d->conn, "%s NO [%s] %s\r\n", tag,
			    strcmp(code, "UNAVAILABLE") == 0
				    ? "AUTHENTICATIONFAILED"
				    : code,
			    reason);
		s->engine = NULL;
		s->direct = NULL;
		session_free(s);
		return -1;
	}
	d->s = s;
	log_info("session=%s user=%s protocol=imap client=%s direct opened",
		 s->id, s->user, d->peer);
	return 0;
}

/* -- before LOGIN --------------------------------------------------------*/

/* One pre-login command; 1 when the session started, -1 when the
 * connection is to close, else 0. */
static int
direct_command(struct direct_conn *d, const char *line, size_t len)
{
	struct arena a;
	arena_init(&a, 2048);
	struct imap_parse_limits lim = {2, 8, DIRECT_MAX_LINE};
	struct imap_arg *args;
	unsigned argc;
	const char *err;
	char tag[128];
	int rc = 0;
	lp_tag(line, len, tag, sizeof(tag));
	if (imap_parse(line, len, &a, &lim, &args, &argc, &err) < 0) {
		conn_printf(&d->conn, "%s BAD %s\r\n", tag, err);
	} else if (argc < 2 || args[1].type != IMAP_ARG_ATOM ||
		   strcmp(tag, "*") == 0) {
		conn_printf(&d->conn, "%s BAD Missing command\r\n", tag);
	} else if (imap_arg_is_atom(&args[1], "CAPABILITY") && argc == 2) {
		conn_printf(&d->conn,
			    "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
			    "%s OK CAPABILITY completed\r\n",
			    tag);
	} else if (imap_arg_is_atom(&args[1], "NOOP") && argc == 2) {
		conn_printf(&d->conn, "%s OK NOOP completed\r\n", tag);
	} else if (imap_arg_is_atom(&args[1], "LOGOUT") && argc == 2) {
		conn_printf(&d->conn,
			    "* BYE Logging out\r\n%s OK LOGOUT completed\r\n",
			    tag);
		rc = -1;
	} else if (imap_arg_is_atom(&args[1], "LOGIN")) {
		if (argc != 4 || args[2].type == IMAP_ARG_LITERAL ||
		    args[3].type == IMAP_ARG_LITERAL ||
		    !imap_arg_is_astring(&args[2]) ||
		    !imap_arg_is_astring(&args[3]) ||
		    strlen(args[2].str) != args[2].len ||
		    strlen(args[3].str) != args[3].len) {
			conn_printf(&d->conn,
				    "%s BAD LOGIN takes a mailbox id and a "
				    "password\r\n",
				    tag);
		} else if (direct_login(d, tag, args[2].str, args[3].str) ==
			   0) {
			rc = 1;
		}
	} else {
		conn_printf(&d->conn,
			    "%s BAD Only CAPABILITY, NOOP, LOGIN and LOGOUT "
			    "before login\r\n",
			    tag);
	}
	arena_free(&a);
	return rc;
}

static void
direct_read(struct conn *c, const char *data, size_t len)
{
	struct direct_conn *d = c->data;
	while (d->s == NULL && len > 0 && !c->closing) {
		size_t used;
		enum lp_status st = lp_feed(&d->lp, data, len, &used);
		data += used;
		len -= used;
		size_t n;
		const char *line;
		char tag[128];
		switch (st) {
		case LP_MORE:
			break;
		case LP_ERROR:
			line = lp_command(&d->lp, &n);
			lp_tag(line, n, tag, sizeof(tag));
			conn_printf(c, "%s BAD %s\r\n", tag, lp_error(&d->lp));
			lp_next(&d->lp);
			break;
		case LP_CONTINUE: /* not in line mode */
		case LP_FATAL:
			conn_printf(c, "* BYE %s\r\n", lp_error(&d->lp));
			conn_close(c);
			return;
		case LP_COMMAND:
			line = lp_command(&d->lp, &n);
			int rc = direct_command(d, line, n);
			lp_next(&d->lp);
			if (rc < 0) {
				conn_close(c);
				return;
			}
			break;
		case LP_STATUS_COUNT:
			abort();
		}
	}
	if (d->s == NULL || c->closing)
		return;
	/* After LOGIN: what follows is the session's. */
	if (buf_used(&d->s->in) + len > d->s->window + DIRECT_MAX_READ) {
		/* A client that does not read its responses. */
		log_warn("session=%s direct input over the window", d->s->id);
		conn_close(c);
		return;
	}
	buf_append(&d->s->in, data, len);
	session_run(d->s);
	if (buf_used(&d->s->in) > d->s->window)
		conn_read_stop(c);
}

static void
direct_error(struct conn *c, const char *why)
{
	struct direct_conn *d = c->data;
	log_debug("direct peer=%s closed: %s", d->peer, why);
}

static void
direct_closed(struct conn *c)
{
	struct direct_conn *d = c->data;
	direct_unlink(d);
	if (d->s != NULL) {
		d->s->direct = NULL;
		session_free(d->s);
	}
	lp_free(&d->lp);
	free(d);
}

static const struct conn_ops direct_ops = {
	.read = direct_read,
	.error = direct_error,
	.drained = direct_drained,
	.closed = direct_closed,
};

static void
direct_on_connection(uv_stream_t *server, int status)
{
	struct backend *be = server->data;
	if (status < 0) {
		log_warn("direct accept error=\"%s\"", uv_strerror(status));
		return;
	}
	struct direct_conn *d = calloc(1, sizeof(*d));
	if (d == NULL)
		abort();
	d->be = be;
	d->serial = ++be->direct->serial;
	struct lp_limits lim = {DIRECT_MAX_LINE, 0, DIRECT_MAX_LINE, 0};
	lp_init(&d->lp, LP_MODE_LINE, &lim);
	if (conn_init(be->loop, &d->conn, &direct_ops, d) < 0) {
		lp_free(&d->lp);
		free(d);
		return;
	}
	d->next = be->direct->conns;
	be->direct->conns = d;
	if (conn_accept(server, &d->conn) < 0) {
		conn_abort(&d->conn);
		return;
	}
	conn_peer_name(&d->conn, d->peer, sizeof(d->peer));
	static const char greeting[] = "* OK Portico backend direct IMAP "
				       "listener (benchmarks and tests "
				       "only)\r\n";
	conn_write(&d->conn, greeting, sizeof(greeting) - 1);
	conn_read_start(&d->conn);
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)ss;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return 0;
}

int
direct_check_config(const struct config *cfg, const char **error_r)
{
	const char *listen = cfg->backend_direct_imap_listen;
	if (listen[0] == '\0')
		return 0;
	struct sockaddr_storage ss;
	if (conn_parse_addr(listen, &ss, error_r) < 0)
		return -1;
	if (!is_loopback(&ss)) {
		*error_r = "backend.direct_imap_listen must be a loopback "
			   "address (it is for benchmarks and tests only)";
		return -1;
	}
	if (cfg->backend_direct_imap_password[0] == '\0') {
		*error_r = "backend.direct_imap_listen needs "
			   "backend.direct_imap_password";
		return -1;
	}
	return 0;
}

int
direct_start(struct backend *be, const char **error_r)
{
	const char *listen = be->cfg.backend_direct_imap_listen;
	if (listen[0] == '\0')
		return 0;
	struct sockaddr_storage ss;
	if (direct_check_config(&be->cfg, error_r) < 0 ||
	    conn_parse_addr(listen, &ss, error_r) < 0)
		return -1;
	struct direct_listener *dl = calloc(1, sizeof(*dl));
	if (dl == NULL)
		abort();
	be->direct = dl;
	uv_tcp_init(be->loop, &dl->tcp);
	dl->tcp.data = be;
	int rc = uv_tcp_bind(&dl->tcp, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&dl->tcp, 511,
			       direct_on_connection);
	if (rc < 0) {
		*error_r = uv_strerror(rc);
		return -1;
	}
	log_warn("direct IMAP listener on %s: for benchmarks and tests only",
		 listen);
	return 0;
}

void
direct_mailbox_changed(struct backend *be, uint64_t mbox_id)
{
	if (be->direct == NULL)
		return;
	for (struct direct_conn *d = be->direct->conns; d != NULL;
	     d = d->next) {
		struct bsession *s = d->s;
		if (s == NULL || s->engine->notify == NULL || s->dead ||
		    s->ending)
			continue;
		s->engine->notify(s, mbox_id);
		direct_session_flush(s);
	}
}

void
direct_tick(struct backend *be, uint64_t now)
{
	if (be->direct == NULL)
		return;
	for (struct direct_conn *d = be->direct->conns; d != NULL;
	     d = d->next) {
		struct bsession *s = d->s;
		if (s == NULL || s->engine->tick == NULL || s->dead ||
		    s->ending)
			continue;
		s->engine->tick(s, now);
		direct_session_flush(s);
	}
}

void
direct_stop(struct backend *be)
{
	if (be->direct == NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&be->direct->tcp))
		uv_close((uv_handle_t *)&be->direct->tcp, NULL);
	for (struct direct_conn *d = be->direct->conns; d != NULL;
	     d = d->next)
		conn_close(&d->conn);
}

void
direct_free(struct backend *be)
{
	free(be->direct);
	be->direct = NULL;
}
