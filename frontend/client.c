/* client.c - a mail client's connection to the frontend: input, login,
 * routing and the relay to its backend session. */
#include "frontend/frontend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "common/log.h"

#define CLIENT_DATA_CHUNK 65536

static const char *client_state_names[] = {"prelogin", "auth", "opening",
					   "relay", "closing"};
_Static_assert(sizeof(client_state_names) / sizeof(client_state_names[0]) ==
		       CLIENT_STATE_COUNT,
	       "client state names");

static void client_process(struct client *c);
static void client_on_timeout(uv_timer_t *t);
static void client_relay_flush(struct client *c);

void
client_set_state(struct client *c, enum client_state state)
{
	if (c->state == state)
		return;
	log_debug("session=%s state %s -> %s", c->id,
		  client_state_names[c->state], client_state_names[state]);
	c->state = state;
}

void
client_printf(struct client *c, const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		conn_write(&c->conn, small, (size_t)n);
		return;
	}
	struct buf b = BUF_INIT;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	conn_write(&c->conn, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
}

int
client_plaintext_allowed(const struct client *c)
{
	const struct config *cfg = &c->fe->cfg;
	if (c->tls)
		return 1;
	const char *type = c->protocol == CLIENT_IMAP ? cfg->frontend_imap_login_type
						      : cfg->frontend_pop3_login_type;
	return strcasecmp(type, "plaintext") == 0;
}

static void
client_timer_reset(struct client *c)
{
	const struct config *cfg = &c->fe->cfg;
	int64_t secs = c->state == CLIENT_RELAY ? cfg->limits_session_timeout
						: cfg->limits_prelogin_timeout;
	uv_timer_start(&c->idle, client_on_timeout, (uint64_t)secs * 1000,
		       (uint64_t)secs * 1000);
}

static void
client_on_timeout(uv_timer_t *t)
{
	struct client *c = t->data;
	log_info("session=%s client=%s state=%s idle timeout", c->id, c->peer,
		 client_state_names[c->state]);
	c->proto->timeout(c);
	client_close(c, "timeout");
}

static void
client_idle_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	struct frontend *fe = c->fe;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		fe->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	fe->nclients--;
	lp_free(&c->lp);
	buf_wipe(&c->in);
	buf_wipe(&c->secret);
	free(c);
}

static void
client_conn_closed(struct conn *conn)
{
	struct client *c = conn->data;
	uv_close((uv_handle_t *)&c->idle, client_idle_closed);
}

static void
client_detach(struct client *c)
{
	if (c->dreq != NULL) {
		dir_cancel(c->dreq);
		c->dreq = NULL;
	}
	if (c->link != NULL)
		link_pool_detach(c);
}

void
client_close(struct client *c, const char *reason)
{
	if (c->state == CLIENT_CLOSING)
		return;
	log_info("session=%s client=%s user=%s disconnected reason=\"%s\"",
		 c->id, c->peer, c->user[0] ? c->user : "-", reason);
	client_detach(c);
	client_set_state(c, CLIENT_CLOSING);
	uv_timer_stop(&c->idle);
	conn_close(&c->conn);
}

static void
client_conn_error(struct conn *conn, const char *why)
{
	struct client *c = conn->data;
	if (c->state == CLIENT_CLOSING)
		return;
	log_info("session=%s client=%s user=%s disconnected reason=\"%s\"",
		 c->id, c->peer, c->user[0] ? c->user : "-", why);
	client_detach(c);
	client_set_state(c, CLIENT_CLOSING);
	uv_timer_stop(&c->idle);
}

static void
client_conn_read(struct conn *conn, const char *data, size_t len)
{
	struct client *c = conn->data;
	if (c->state == CLIENT_CLOSING)
		return;
	buf_append(&c->in, data, len);
	client_timer_reset(c);
	if (c->state == CLIENT_RELAY) {
		client_relay_flush(c);
		return;
	}
	if (c->state != CLIENT_PRELOGIN) {
		/* Waiting for LDAP or the backend: hold what the client
		   pipelines, within bounds. */
		if (buf_used(&c->in) > c->fe->cfg.limits_prelogin_max_line * 4) {
			conn_read_stop(&c->conn);
			c->input_paused = 1;
		}
		return;
	}
	client_process(c);
}

static void
client_conn_drained(struct conn *conn)
{
	struct client *c = conn->data;
	if (c->state == CLIENT_RELAY && c->recv_uncredited > 0) {
		link_pool_send_credit(c, (uint32_t)c->recv_uncredited);
		c->recv_uncredited = 0;
	}
}

static void
client_tls_ready(struct conn *conn)
{
	struct client *c = conn->data;
	char desc[128];
	conn_tls_desc(conn, desc, sizeof(desc));
	log_debug("session=%s client=%s tls=\"%s\"", c->id, c->peer, desc);
	c->tls = 1;
	if (c->implicit_tls)
		c->proto->greet(c);
}

static const struct conn_ops client_conn_ops = {
	.read = client_conn_read,
	.error = client_conn_error,
	.tls_ready = client_tls_ready,
	.drained = client_conn_drained,
	.closed = client_conn_closed,
};

/* Runs the pre-login reader over buffered input. */
static void
client_process(struct client *c)
{
	while (c->state == CLIENT_PRELOGIN && buf_used(&c->in) > 0) {
		size_t used, len;
		enum lp_status st = lp_feed(&c->lp, buf_ptr(&c->in),
					    buf_used(&c->in), &used);
		buf_consume(&c->in, used);
		const char *line;
		switch (st) {
		case LP_MORE:
			return;
		case LP_CONTINUE:
			c->proto->continuation(c);
			continue;
		case LP_COMMAND: {
			line = lp_command(&c->lp, &len);
			/* The handler may start TLS (which resets the
			   reader) or a login (which changes state). */
			char *copy = malloc(len + 1);
			if (copy == NULL)
				abort();
			memcpy(copy, line, len);
			copy[len] = '\0';
			lp_next(&c->lp);
			c->proto->command(c, copy, len);
			OPENSSL_cleanse(copy, len);
			free(copy);
			continue;
		}
		case LP_ERROR:
		case LP_FATAL:
			line = lp_command(&c->lp, &len);
			c->proto->input_error(c, line, len, lp_error(&c->lp),
					      st == LP_FATAL);
			lp_next(&c->lp);
			if (st == LP_FATAL) {
				client_close(c, "fatal input error");
				return;
			}
			if (++c->bad_commands >=
			    (unsigned)c->fe->cfg.limits_max_bad_commands) {
				c->proto->bye_unavailable(
					c, "Too many invalid commands");
				client_close(c, "too many invalid commands");
				return;
			}
			continue;
		case LP_STATUS_COUNT:
			abort();
		}
	}
}

void
client_start_tls(struct client *c)
{
	/* Bytes the client sent after STARTTLS and before the handshake
	   are discarded, never executed under TLS (CVE-2011-0411 class). */
	buf_reset(&c->in);
	lp_reset(&c->lp);
	if (conn_start_tls(&c->conn, c->fe->client_ctx, 1, NULL) < 0)
		client_close(c, "TLS setup failed");
}

/* -- login ----------------------------------------------------------------*/

static void
client_login_failed(struct client *c, enum login_failure why,
		    const char *msg)
{
	client_set_state(c, CLIENT_PRELOGIN);
	c->proto->login_failed(c, why, msg);
	if (c->input_paused) {
		c->input_paused = 0;
		conn_read_start(&c->conn);
	}
	client_process(c);
}

static void
client_auth_done(void *ctx, enum dir_result res, const struct dir_user *u,
		 const char *why)
{
	struct client *c = ctx;
	c->dreq = NULL;
	if (res != DIR_OK) {
		log_info("session=%s client=%s user=%s login failed "
			 "result=%s reason=\"%s\"",
			 c->id, c->peer, c->user,
			 res == DIR_FAIL ? "fail" : "tempfail",
			 why ? why : "");
		client_login_failed(c, res == DIR_FAIL ? LOGIN_FAIL_CREDENTIALS
						       : LOGIN_FAIL_TEMPORARY,
				    NULL);
		return;
	}
	c->duser = *u;
	if (u->account_state[0] != '\0' &&
	    strcasecmp(u->account_state, "active") != 0) {
		log_info("session=%s user=%s login refused: account %s", c->id,
			 c->user, u->account_state);
		client_login_failed(c, LOGIN_FAIL_DISABLED,
				    "This account is disabled");
		return;
	}
	if ((c->protocol == CLIENT_IMAP && !u->imap_enabled) ||
	    (c->protocol == CLIENT_POP3 && !u->pop3_enabled)) {
		log_info("session=%s user=%s login refused: %s disabled",
			 c->id, c->user, c->proto->name);
		client_login_failed(c, LOGIN_FAIL_DISABLED,
				    c->protocol == CLIENT_IMAP
					    ? "IMAP4 is disabled for this "
					      "account"
					    : "POP3 is disabled for this "
					      "account");
		return;
	}
	if (u->mailbox_server[0] == '\0' || u->mailbox_id[0] == '\0') {
		log_warn("session=%s user=%s has no mailbox server", c->id,
			 c->user);
		client_login_failed(c, LOGIN_FAIL_TEMPORARY,
				    "No mailbox server for this account");
		return;
	}
	log_info("session=%s client=%s user=%s authenticated backend=%s",
		 c->id, c->peer, c->user, u->mailbox_server);
	client_set_state(c, CLIENT_OPENING);
	link_pool_open(c->fe, c);
}

/* Login names are matched case-insensitively, with or without a domain. */
static int
client_privileged(const struct frontend *fe, const char *user)
{
	char list[1024];
	snprintf(list, sizeof(list), "%s", fe->cfg.frontend_refused_accounts);
	const char *at = strchr(user, '@');
	size_t local = at ? (size_t)(at - user) : strlen(user);
	char *save = NULL;
	for (char *tok = strtok_r(list, " ,", &save); tok != NULL;
	     tok = strtok_r(NULL, " ,", &save)) {
		if (strcasecmp(tok, user) == 0)
			return 1;
		if (strchr(tok, '@') == NULL && strlen(tok) == local &&
		    strncasecmp(tok, user, local) == 0)
			return 1;
	}
	return 0;
}

void
client_login(struct client *c, const char *user, const char *password)
{
	snprintf(c->user, sizeof(c->user), "%s", user);
	if (strlen(user) >= sizeof(c->user) || user[0] == '\0') {
		client_login_failed(c, LOGIN_FAIL_CREDENTIALS, NULL);
		return;
	}
	if (client_privileged(c->fe, user)) {
		log_info("session=%s client=%s user=%s login refused: "
			 "privileged account",
			 c->id, c->peer, user);
		client_login_failed(c, LOGIN_FAIL_PRIVILEGED,
				    "Anonymous, guest and administrator "
				    "accounts cannot use POP3/IMAP4");
		return;
	}
	client_set_state(c, CLIENT_AUTH);
	c->dreq = dir_authenticate(c->fe->dir, user, password,
				   client_auth_done, c);
}

/* -- relay ----------------------------------------------------------------*/

void
client_link_opened(struct client *c, uint32_t window)
{
	c->send_credit = window;
	client_set_state(c, CLIENT_RELAY);
	client_timer_reset(c);
	lp_reset(&c->lp);
	if (c->input_paused) {
		c->input_paused = 0;
		conn_read_start(&c->conn);
	}
	/* What the client pipelined after its login goes to the backend. */
	client_relay_flush(c);
}

void
client_link_refused(struct client *c, const char *code, const char *reason)
{
	log_warn("session=%s user=%s backend=%s refused code=%s reason=\"%s\"",
		 c->id, c->user, c->duser.mailbox_server, code, reason);
	snprintf(c->fail_code, sizeof(c->fail_code), "%s", code);
	client_login_failed(c, LOGIN_FAIL_TEMPORARY, reason);
	c->fail_code[0] = '\0';
}

void
client_link_data(struct client *c, const void *data, size_t len)
{
	if (c->state != CLIENT_RELAY)
		return;
	conn_write(&c->conn, data, len);
	c->recv_uncredited += len;
	/* Return credit at once while the client keeps up; otherwise when
	   its socket drains. */
	if (conn_queued(&c->conn) <= c->fe->cfg.limits_link_window / 2) {
		link_pool_send_credit(c, (uint32_t)c->recv_uncredited);
		c->recv_uncredited = 0;
	}
}

void
client_link_credit(struct client *c, uint32_t bytes)
{
	c->send_credit += bytes;
	client_relay_flush(c);
}

void
client_link_closed(struct client *c, const char *reason, int lost)
{
	if (c->state == CLIENT_CLOSING)
		return;
	if (lost) {
		if (c->state == CLIENT_OPENING) {
			client_login_failed(c, LOGIN_FAIL_TEMPORARY,
					    "Mailbox server unavailable");
			return;
		}
		c->proto->bye_unavailable(c, "Mailbox server unavailable");
	}
	client_close(c, reason);
}

static void
client_relay_flush(struct client *c)
{
	while (buf_used(&c->in) > 0 && c->send_credit > 0 &&
	       c->state == CLIENT_RELAY) {
		size_t n = buf_used(&c->in);
		if (n > c->send_credit)
			n = (size_t)c->send_credit;
		if (n > CLIENT_DATA_CHUNK)
			n = CLIENT_DATA_CHUNK;
		link_pool_send_data(c, buf_ptr(&c->in), n);
		buf_consume(&c->in, n);
		c->send_credit -= n;
	}
	if (c->state != CLIENT_RELAY)
		return;
	/* Stop reading while the backend has not taken what we hold. */
	if (buf_used(&c->in) > 0 && !c->input_paused) {
		conn_read_stop(&c->conn);
		c->input_paused = 1;
	} else if (buf_used(&c->in) == 0 && c->input_paused) {
		c->input_paused = 0;
		conn_read_start(&c->conn);
	}
}

/* -- accept ---------------------------------------------------------------*/

void
client_accept(struct frontend *fe, uv_stream_t *server,
	      enum client_protocol protocol, int implicit_tls)
{
	struct client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	c->fe = fe;
	c->protocol = protocol;
	c->proto = protocol == CLIENT_IMAP ? &imap_login_proto
					   : &pop3_login_proto;
	c->implicit_tls = implicit_tls;
	if (conn_init(fe->loop, &c->conn, &client_conn_ops, c) < 0) {
		free(c);
		return;
	}
	uv_timer_init(fe->loop, &c->idle);
	c->idle.data = c;
	c->next = fe->clients;
	if (fe->clients != NULL)
		fe->clients->prev = c;
	fe->clients = c;
	fe->nclients++;
	unsigned char rnd[8];
	RAND_bytes(rnd, sizeof(rnd));
	for (int i = 0; i < 8; i++)
		snprintf(c->id + i * 2, 3, "%02x", rnd[i]);
	const struct config *cfg = &fe->cfg;
	struct lp_limits lim = {cfg->limits_prelogin_max_line,
				cfg->limits_prelogin_max_line,
				cfg->limits_prelogin_max_line * 2, 4};
	if (protocol == CLIENT_POP3) {
		lim.max_line = lim.max_command = cfg->pop3_max_command_size;
		lim.max_literal = 0;
	}
	lp_init(&c->lp, c->proto->mode, &lim);
	if (conn_accept(server, &c->conn) < 0) {
		client_close(c, "accept failed");
		return;
	}
	conn_peer_name(&c->conn, c->peer, sizeof(c->peer));
	log_info("session=%s client=%s protocol=%s%s connected", c->id,
		 c->peer, c->proto->name, implicit_tls ? "s" : "");
	uv_timer_start(&c->idle, client_on_timeout,
		       (uint64_t)cfg->limits_prelogin_timeout * 1000,
		       (uint64_t)cfg->limits_prelogin_timeout * 1000);
	if (implicit_tls) {
		if (conn_start_tls(&c->conn, fe->client_ctx, 1, NULL) < 0) {
			client_close(c, "TLS setup failed");
			return;
		}
	} else {
		c->proto->greet(c);
	}
	conn_read_start(&c->conn);
}

/* -- base64 ---------------------------------------------------------------*/

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_decode(const char *in, size_t len, struct buf *out)
{
	unsigned v = 0, bits = 0;
	size_t i, pad = 0;
	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == '=') {
			pad++;
			if (i < len - 2)
				return -1;
			continue;
		}
		if (pad > 0)
			return -1;
		const char *p = ch ? strchr(b64, ch) : NULL;
		if (p == NULL)
			return -1;
		v = (v << 6) | (unsigned)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char byte = (char)((v >> bits) & 0xff);
			buf_append(out, &byte, 1);
		}
	}
	return 0;
}

void
base64_encode(const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
			     i + 1 < len ? b64[(v >> 6) & 63] : '=',
			     i + 2 < len ? b64[v & 63] : '='};
		buf_append(out, q, 4);
	}
}

/* -- SASL -----------------------------------------------------------------*/

enum sasl_step {
	SASL_STEP_NONE,
	SASL_STEP_PLAIN,      /* waiting for the PLAIN response */
	SASL_STEP_LOGIN_USER, /* LOGIN: waiting for the user name */
	SASL_STEP_LOGIN_PASS, /* LOGIN: waiting for the password */
};

const char *
client_sasl_mechanisms(void)
{
	return "PLAIN LOGIN";
}

static int
sasl_decode(const char *resp, size_t len, struct buf *out)
{
	if (len == 1 && resp[0] == '=')
		len = 0; /* empty response */
	return base64_decode(resp, len, out);
}

static int
sasl_plain(struct client *c, const char *resp, size_t len)
{
	struct buf raw = BUF_INIT;
	if (sasl_decode(resp, len, &raw) < 0) {
		buf_wipe(&raw);
		return SASL_MALFORMED;
	}
	const char *p = buf_ptr(&raw);
	size_t n = buf_used(&raw);
	const char *nul1 = n ? memchr(p, '\0', n) : NULL;
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0',
					 n - (size_t)(nul1 + 1 - p))
				: NULL;
	if (nul1 == NULL || nul2 == NULL ||
	    memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - p)) != NULL) {
		buf_wipe(&raw);
		return SASL_MALFORMED;
	}
	size_t off1 = (size_t)(nul1 - p), off2 = (size_t)(nul2 - p);
	/* NUL-terminate the password inside the buffer. */
	buf_append(&raw, "", 1);
	p = buf_ptr(&raw);
	const char *authz = p;
	const char *authc = p + off1 + 1;
	const char *pass = p + off2 + 1;
	if (off1 > 0 && strcmp(authz, authc) != 0) {
		log_info("session=%s client=%s user=%s login refused: "
			 "authorization identity differs",
			 c->id, c->peer, authc);
		buf_wipe(&raw);
		return SASL_AUTHZ;
	}
	client_login(c, authc, pass);
	buf_wipe(&raw);
	return SASL_OK;
}

/* LOGIN: one decoded value without NULs, NUL-terminated in out. */
static int
sasl_login_value(const char *resp, size_t len, struct buf *out)
{
	if (sasl_decode(resp, len, out) < 0 ||
	    memchr(buf_ptr(out), '\0', buf_used(out)) != NULL)
		return -1;
	buf_append(out, "", 1);
	return 0;
}

int
client_sasl_step(struct client *c, const char *resp, size_t len,
		 const char **challenge_r)
{
	int step = c->sasl_step;
	c->sasl_step = SASL_STEP_NONE;
	if (len == 1 && resp[0] == '*')
		return SASL_CANCELLED;
	struct buf v = BUF_INIT;
	int rc;
	switch (step) {
	case SASL_STEP_PLAIN:
		return sasl_plain(c, resp, len);
	case SASL_STEP_LOGIN_USER:
		if (sasl_login_value(resp, len, &v) < 0 ||
		    buf_used(&v) > sizeof(c->user)) {
			buf_wipe(&v);
			return SASL_MALFORMED;
		}
		snprintf(c->user, sizeof(c->user), "%s", buf_ptr(&v));
		buf_wipe(&v);
		c->sasl_step = SASL_STEP_LOGIN_PASS;
		*challenge_r = "UGFzc3dvcmQ6"; /* "Password:" */
		return SASL_CONTINUE;
	case SASL_STEP_LOGIN_PASS: {
		if (sasl_login_value(resp, len, &v) < 0) {
			buf_wipe(&v);
			return SASL_MALFORMED;
		}
		char user[sizeof(c->user)];
		snprintf(user, sizeof(user), "%s", c->user);
		client_login(c, user, buf_ptr(&v));
		buf_wipe(&v);
		return SASL_OK;
	}
	default:
		rc = SASL_MALFORMED;
		break;
	}
	return rc;
}

int
client_sasl_start(struct client *c, const char *mech, const char *ir,
		  size_t irlen, const char **challenge_r)
{
	if (strcasecmp(mech, "PLAIN") == 0) {
		c->sasl_step = SASL_STEP_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		c->sasl_step = SASL_STEP_LOGIN_USER;
	} else {
		return SASL_UNSUPPORTED;
	}
	if (ir != NULL)
		return client_sasl_step(c, ir, irlen, challenge_r);
	*challenge_r = c->sasl_step == SASL_STEP_PLAIN ? ""
						       : "VXNlcm5hbWU6";
	return SASL_CONTINUE;
}
