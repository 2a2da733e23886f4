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
#include "common/protolog.h"
#include "common/proxy_proto.h"

#define CLIENT_DATA_CHUNK 65536
/* RFC 3501 5.4 / RFC 9051 5.4: an autologout timer of at least 30
 * minutes, which also lets IDLE (RFC 2177) run its 29 minutes. */
#define CLIENT_IMAP_MIN_SESSION_TIMEOUT (30 * 60)

static const char *client_state_names[] = {"prelogin", "auth", "opening",
					   "relay", "local", "closing"};
_Static_assert(sizeof(client_state_names) / sizeof(client_state_names[0]) ==
		       CLIENT_STATE_COUNT,
	       "client state names");

static void client_process(struct client *c);
static void client_on_timeout(uv_timer_t *t);
static void client_relay_flush(struct client *c);
static void client_conn_read(struct conn *conn, const char *data,
			     size_t len);

void
client_set_state(struct client *c, enum client_state state)
{
	if (c->state == state)
		return;
	log_debug("session=%s state %s -> %s", c->id,
		  client_state_names[c->state], client_state_names[state]);
	frontend_metrics_state(c, state);
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
		client_write(c, small, (size_t)n);
		return;
	}
	struct buf b = BUF_INIT;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	client_write(c, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
}

void
client_write(struct client *c, const void *data, size_t len)
{
	protolog_output(c->plog, data, len);
	conn_write(&c->conn, data, len);
}

int
client_plaintext_allowed(const struct client *c)
{
	const struct config *cfg = &c->fe->cfg;
	if (c->tls)
		return 1;
	const char *type = c->protocol == CLIENT_IMAP ? cfg->frontend_imap_login_type
			   : c->protocol == CLIENT_POP3
				   ? cfg->frontend_pop3_login_type
				   : cfg->frontend_smtp_login_type;
	return strcasecmp(type, "plaintext") == 0;
}

void
client_timer_reset(struct client *c)
{
	const struct config *cfg = &c->fe->cfg;
	int64_t secs = c->state == CLIENT_RELAY ? cfg->limits_session_timeout
						: cfg->limits_prelogin_timeout;
	/* After login IMAP never gets less than 30 minutes, whatever
	   limits.session_timeout says: a client in IDLE is silent for up
	   to 29 minutes. */
	if (c->state == CLIENT_RELAY && c->protocol == CLIENT_IMAP &&
	    secs < CLIENT_IMAP_MIN_SESSION_TIMEOUT)
		secs = CLIENT_IMAP_MIN_SESSION_TIMEOUT;
	if (c->state == CLIENT_LOCAL)
		secs = cfg->smtp_timeout;
	uint64_t ms = (uint64_t)secs * 1000;
	/* While the server has the login (a penalty delay, the directory, a
	   backend opening the session) the client is not idle: only the
	   login deadline runs. */
	if (c->state == CLIENT_AUTH || c->state == CLIENT_OPENING)
		ms = UINT64_MAX;
	if (c->state != CLIENT_RELAY && c->state != CLIENT_LOCAL) {
		/* Before authentication activity does not buy more than
		   limits.login_deadline from the connection. */
		uint64_t now = uv_now(c->fe->loop);
		uint64_t left = c->login_by > now ? c->login_by - now : 0;
		if (left < ms)
			ms = left;
	}
	uv_timer_start(&c->idle, client_on_timeout, ms, ms ? ms : 1);
}

static void
client_on_timeout(uv_timer_t *t)
{
	struct client *c = t->data;
	if (c->state != CLIENT_RELAY && c->state != CLIENT_LOCAL &&
	    uv_now(c->fe->loop) >= c->login_by) {
		log_info("session=%s client=%s state=%s login deadline "
			 "reached", c->id, c->peer,
			 client_state_names[c->state]);
		if (c->proto->login_expired != NULL)
			c->proto->login_expired(c);
		else
			c->proto->timeout(c);
		client_close(c, "login deadline");
		return;
	}
	log_info("session=%s client=%s state=%s idle timeout", c->id, c->peer,
		 client_state_names[c->state]);
	c->proto->timeout(c);
	client_close(c, "timeout");
}

static void
client_handle_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	struct frontend *fe = c->fe;
	if (--c->handles > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		fe->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	fe->nclients--;
	if (c->proto->free != NULL)
		c->proto->free(c);
	lp_free(&c->lp);
	tls_server_unref(&c->tls_certs);
	buf_wipe(&c->in);
	buf_wipe(&c->secret);
	protolog_free(&c->plog);
	frontend_metrics_closed(c);
	free(c);
}

static void
client_conn_closed(struct conn *conn)
{
	struct client *c = conn->data;
	c->handles = 2;
	uv_close((uv_handle_t *)&c->idle, client_handle_closed);
	uv_close((uv_handle_t *)&c->delay, client_handle_closed);
}

static void
client_release_user(struct client *c)
{
	if (c->counted_user) {
		limits_user_release(c->fe->policy, c->duser.dn);
		c->counted_user = 0;
	}
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
	c->reviving = 0;
	client_park_clear(c);
	if (c->proto->detach != NULL)
		c->proto->detach(c);
	uv_timer_stop(&c->delay);
	buf_wipe(&c->secret);
	client_release_user(c);
	if (c->counted_addr) {
		limits_addr_release(c->fe->policy,
				    (struct sockaddr *)&c->addr);
		c->counted_addr = 0;
	}
	if (c->counted_conn) {
		limits_conn_release(c->fe->policy);
		c->counted_conn = 0;
	}
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

/* TLS with the current certificate set, which this client keeps (a
 * reload does not change a handshake under way). */
static int
client_tls_begin(struct client *c)
{
	c->tls_certs = tls_server_ref(c->fe->tls);
	c->t_tls = uv_hrtime();
	return conn_start_tls(&c->conn, tls_server_default(c->tls_certs), 1,
			      NULL);
}

/* The connection may proceed now that the client's address is known:
 * limits, then the greeting (implicit TLS: after the handshake, which
 * starts with the client's first bytes). */
static void
client_admit(struct client *c)
{
	struct frontend *fe = c->fe;
	const struct sockaddr *sa = (const struct sockaddr *)&c->addr;
	int rate_refused = 0;
	c->trusted = policy_trusted(fe->policy, sa);
	if (!c->counted_conn) {
		c->refuse = "Too many connections to this server; try again "
			    "later.";
	} else if (!c->trusted) {
		/* Not counted: LMTP (mail transfer agents, listed in
		   lmtp.trusted_networks), and a load balancer's own
		   connections (PROXY LOCAL: its health checks) */
		if (c->protocol != CLIENT_LMTP &&
		    !policy_proxy_allowed(fe->policy, sa) &&
		    limits_rate_admit(fe->policy, sa, lru_now()) < 0) {
			c->refuse = "Too many new connections from your "
				    "address; slow down.";
			rate_refused = 1;
		} else if (limits_addr_acquire(fe->policy, sa) == 0)
			c->counted_addr = 1;
		else
			c->refuse = "Too many connections from your address.";
	}
	if (c->refuse != NULL)
		log_warn("session=%s client=%s refused: %s", c->id, c->peer,
			 c->refuse);
	c->first_read = 1;
	if (rate_refused) {
		metrics_add(&fe->metrics.rate_refused, 1);
		if (c->implicit_tls) {
			/* no handshake for it: a flood of handshakes is what
			   the limit is against */
			client_close(c, "connection rate");
			return;
		}
	}
	if (c->implicit_tls)
		return;
	if (c->refuse != NULL) {
		c->proto->bye_unavailable(c, c->refuse);
		client_close(c, "connection limit");
		return;
	}
	c->proto->greet(c);
}

/* Input from a proxy_networks peer before its PROXY header is complete. */
static void
client_proxy_input(struct client *c, const char *data, size_t len)
{
	struct proxy_hdr h;
	size_t used = 0;
	const char *err = "";
	buf_append(&c->in, data, len);
	switch (proxy_parse(buf_ptr(&c->in), buf_used(&c->in), &h, &used,
			    &err)) {
	case PROXY_MORE:
		return;
	case PROXY_ERROR:
		log_warn("session=%s proxy=%s invalid PROXY header: %s", c->id,
			 c->peer, err);
		client_close(c, "invalid PROXY header");
		return;
	case PROXY_DONE:
		break;
	case PROXY_STATUS_COUNT:
		abort();
	}
	buf_consume(&c->in, used);
	c->proxy_wait = 0;
	char proxy[64];
	snprintf(proxy, sizeof(proxy), "%s", c->peer);
	if (!h.local) {
		memcpy(&c->addr, &h.src, sizeof(c->addr));
		conn_addr_name((struct sockaddr *)&c->addr, c->peer,
			       sizeof(c->peer));
	}
	log_info("session=%s client=%s proxy=%s proxy_protocol=v%d%s "
		 "protocol=%s%s worker=%u connected",
		 c->id, c->peer, proxy, h.version, h.local ? " local" : "",
		 c->proto->name, c->implicit_tls ? "s" : "", c->fe->index);
	client_admit(c);
	if (c->state == CLIENT_CLOSING || buf_used(&c->in) == 0)
		return;
	struct buf rest = c->in;
	memset(&c->in, 0, sizeof(c->in));
	client_conn_read(&c->conn, buf_ptr(&rest), buf_used(&rest));
	buf_wipe(&rest);
}

static void
client_conn_read(struct conn *conn, const char *data, size_t len)
{
	struct client *c = conn->data;
	if (c->state == CLIENT_CLOSING)
		return;
	if (c->proxy_wait) {
		client_proxy_input(c, data, len);
		return;
	}
	if (c->first_read) {
		c->first_read = 0;
		/* A PROXY header from an address not in proxy_networks is
		   refused, not taken for commands (or a TLS hello). */
		if (len >= 5 && proxy_signature(data, len)) {
			log_warn("session=%s client=%s PROXY protocol header "
				 "from an untrusted address refused",
				 c->id, c->peer);
			if (!c->implicit_tls)
				client_printf(c,
					      c->protocol == CLIENT_IMAP
						      ? "* BYE PROXY protocol "
							"is not accepted from "
							"your address.\r\n"
					      : c->protocol == CLIENT_POP3
						      ? "-ERR PROXY protocol "
							"is not accepted from "
							"your address.\r\n"
						      : "554 5.7.0 PROXY protocol "
							"is not accepted from "
							"your address\r\n");
			client_close(c, "PROXY header refused");
			return;
		}
		if (c->implicit_tls) {
			if (client_tls_begin(c) < 0) {
				client_close(c, "TLS setup failed");
				return;
			}
			conn_feed(&c->conn, data, len);
			return;
		}
	}
	buf_append(&c->in, data, len);
	client_timer_reset(c);
	if (c->state == CLIENT_RELAY) {
		client_relay_flush(c);
		return;
	}
	if ((c->state != CLIENT_PRELOGIN && c->state != CLIENT_LOCAL) ||
	    c->hold) {
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
	if (c->state == CLIENT_RELAY &&
	    c->recv_uncredited >= c->recv_window / 2) {
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
	c->t_mark = c->t_tls;
	frontend_metrics_phase(c, FM_PHASE_TLS);
	metrics_add(
	    &c->fe->metrics
		 .tls_handshakes[c->protocol][SSL_session_reused(conn->ssl)],
	    1);
	if (!c->implicit_tls)
		return;
	if (c->refuse != NULL) {
		c->proto->bye_unavailable(c, c->refuse);
		client_close(c, "connection limit");
		return;
	}
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

void
client_bad_command(struct client *c)
{
	c->cmd_bad = 1;
}

/* One more invalid command: beyond limits.max_bad_commands the client is
 * told goodbye and the connection closes (1). */
static int
client_too_many_bad(struct client *c)
{
	if (++c->bad_commands < (unsigned)c->fe->cfg.limits_max_bad_commands)
		return 0;
	if (c->state == CLIENT_CLOSING)
		return 1;
	c->proto->bye_unavailable(c, "Too many invalid commands");
	client_close(c, "too many invalid commands");
	return 1;
}

static void
client_process_input(struct client *c)
{
	while ((c->state == CLIENT_PRELOGIN || c->state == CLIENT_LOCAL) &&
	       buf_used(&c->in) > 0 && !c->hold) {
		if (c->raw) {
			size_t before = buf_used(&c->in);
			c->proto->content(c);
			protolog_content(c->plog, before - buf_used(&c->in),
					 !c->raw);
			continue;
		}
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
			/* A SASL response is never logged (protolog). */
			protolog_command(c->plog, copy, len, c->sasl_wait);
			c->cmd_bad = 0;
			c->proto->command(c, copy, len);
			OPENSSL_cleanse(copy, len);
			free(copy);
			if (c->cmd_bad && client_too_many_bad(c))
				return;
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
			if (client_too_many_bad(c))
				return;
			continue;
		case LP_STATUS_COUNT:
			abort();
		}
	}
}

/* Whether c is between commands: nothing of a command read or running. */
static int
client_idle(const struct client *c)
{
	return (c->state == CLIENT_PRELOGIN || c->state == CLIENT_LOCAL) &&
	       !c->hold && !c->raw && !c->sasl_wait && !c->proxy_wait &&
	       buf_used(&c->in) == 0 && buf_used(&c->lp.cmd) == 0 &&
	       c->lp.literal_left == 0;
}

void
client_drain(struct client *c)
{
	if (c->state == CLIENT_RELAY && c->parked) {
		client_park_drain(c);
		return;
	}
	if (c->state == CLIENT_RELAY) {
		/* The backend knows when the session is between commands
		   or in IDLE: it says goodbye then. */
		if (!c->drain_sent) {
			c->drain_sent = 1;
			link_pool_send_drain(c);
		}
		return;
	}
	if (c->state == CLIENT_CLOSING || !client_idle(c))
		return;
	if (c->implicit_tls && !c->tls) {
		client_close(c, "shutdown");
		return;
	}
	c->proto->bye_unavailable(c, "Server shutting down.");
	client_close(c, "shutdown");
}

static void
client_process(struct client *c)
{
	client_process_input(c);
	if (c->fe->draining)
		client_drain(c);
}

void
client_resume(struct client *c)
{
	if (c->input_paused && c->state != CLIENT_CLOSING) {
		c->input_paused = 0;
		conn_read_start(&c->conn);
	}
	client_process(c);
}

/* STARTTLS/STLS: what the client told us in clear text does not count
 * under TLS (RFC 3207 4.2, RFC 2595 4): a POP3 USER, an SMTP AUTH with
 * its directory entry and its place in the per-user connection count.
 * An SMTP session authenticated before TLS is back before login, with a
 * login deadline of its own (it has shown its credentials once). */
static void
client_forget_login(struct client *c)
{
	c->user[0] = '\0';
	memset(&c->duser, 0, sizeof(c->duser));
	buf_wipe(&c->secret);
	client_release_user(c);
	if (c->state == CLIENT_LOCAL && c->protocol == CLIENT_SUBMISSION) {
		client_set_state(c, CLIENT_PRELOGIN);
		c->login_by = uv_now(c->fe->loop) +
			      (uint64_t)c->fe->cfg.limits_login_deadline * 1000;
		client_timer_reset(c);
	}
}

void
client_start_tls(struct client *c)
{
	/* Bytes the client sent after STARTTLS and before the handshake
	   are discarded, never executed under TLS (CVE-2011-0411 class). */
	buf_reset(&c->in);
	lp_reset(&c->lp);
	client_forget_login(c);
	if (client_tls_begin(c) < 0)
		client_close(c, "TLS setup failed");
}

/* -- login ----------------------------------------------------------------*/

static void
client_login_failed(struct client *c, enum login_failure why,
		    const char *msg)
{
	client_set_state(c, CLIENT_PRELOGIN);
	frontend_metrics_login(c->fe, c->protocol, why);
	client_release_user(c);
	buf_wipe(&c->secret);
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
	struct policy *policy = c->fe->policy;
	int cached = c->cached >= 0;
	c->dreq = NULL;
	c->cached = -1;
	c->login_cached = cached && res == DIR_OK;
	if (!cached) {
		frontend_metrics_phase(c, FM_PHASE_LDAP);
		c->auth_at = lru_now();
	}
	if (res == DIR_TEMPFAIL)
		frontend_metrics_ldap_error(c->fe, why);
	if (res != DIR_TEMPFAIL) {
		if (!cached)
			auth_cache_put(policy, &c->keys, res == DIR_OK, u);
		if (!c->trusted)
			penalty_record(policy, &c->keys, res == DIR_FAIL, u);
	}
	if (res != DIR_OK) {
		log_info("session=%s client=%s user=%s login failed "
			 "result=%s cache=%s reason=\"%s\"",
			 c->id, c->peer, c->user,
			 res == DIR_FAIL ? "fail" : "tempfail",
			 cached ? "hit" : "miss", why ? why : "");
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
	    (c->protocol == CLIENT_POP3 && !u->pop3_enabled) ||
	    (c->protocol == CLIENT_SUBMISSION && !u->smtp_enabled)) {
		log_info("session=%s user=%s login refused: %s disabled",
			 c->id, c->user, c->proto->name);
		client_login_failed(c, LOGIN_FAIL_DISABLED,
				    c->protocol == CLIENT_IMAP
					    ? "IMAP4 is disabled for this "
					      "account"
				    : c->protocol == CLIENT_POP3
					    ? "POP3 is disabled for this "
					      "account"
					    : "SMTP submission is disabled for "
					      "this account");
		return;
	}
	if (client_entry_refused(c->fe, u)) {
		log_info("session=%s client=%s user=%s login refused: "
			 "privileged account (directory)",
			 c->id, c->peer, c->user);
		client_login_failed(c, LOGIN_FAIL_PRIVILEGED,
				    "Anonymous, guest and administrator "
				    "accounts cannot use POP3/IMAP4");
		return;
	}
	if (u->mailbox_server[0] == '\0' || u->mailbox_id[0] == '\0') {
		log_warn("session=%s user=%s has no mailbox server", c->id,
			 c->user);
		client_login_failed(c, LOGIN_FAIL_TEMPORARY,
				    "No mailbox server for this account");
		return;
	}
	if (limits_user_acquire(policy, u->dn) < 0) {
		log_warn("session=%s client=%s user=%s login refused: more "
			 "than %lld sessions",
			 c->id, c->peer, c->user,
			 (long long)c->fe->cfg.limits_max_connections_per_user);
		client_login_failed(c, LOGIN_FAIL_LIMIT,
				    "Too many connections for this account");
		return;
	}
	c->counted_user = 1;
	log_info("session=%s client=%s user=%s authenticated cache=%s "
		 "backend=%s",
		 c->id, c->peer, c->user, cached ? "hit" : "miss",
		 u->mailbox_server);
	if (c->proto->logged_in != NULL) {
		client_set_state(c, CLIENT_LOCAL);
		client_timer_reset(c);
		c->proto->logged_in(c);
		client_resume(c);
		return;
	}
	client_set_state(c, CLIENT_OPENING);
	c->t_mark = uv_hrtime();
	link_pool_open(c->fe, c);
}

static void
client_cached_cb(uv_timer_t *t)
{
	struct client *c = t->data;
	client_auth_done(c, c->cached ? DIR_OK : DIR_FAIL,
			 c->cached ? &c->duser : NULL,
			 c->cached ? NULL : "invalid credentials (cached)");
}

/* The penalty (if any) is served: the cache, else the directory. */
static void
client_auth_start(struct client *c)
{
	struct dir_user u;
	int hit = auth_cache_get(c->fe->policy, &c->keys, &u, &c->auth_at);
	if (hit >= 0) {
		buf_wipe(&c->secret);
		c->cached = hit;
		if (hit)
			c->duser = u;
		/* Answer from the loop, as the directory would. */
		uv_timer_start(&c->delay, client_cached_cb, 0, 0);
		return;
	}
	c->cached = -1;
	c->t_mark = uv_hrtime(); /* the penalty wait is not LDAP's */
	c->dreq = dir_authenticate(c->fe->dir, c->user, buf_ptr(&c->secret),
				   client_auth_done, c);
	buf_wipe(&c->secret);
}

static void
client_auth_start_cb(uv_timer_t *t)
{
	client_auth_start(t->data);
}

/* Login names are matched case-insensitively, with or without a domain. */
int
client_privileged(const struct frontend *fe, const char *user)
{
	return config_account_listed(fe->cfg.frontend_refused_accounts, user);
}

int
client_entry_refused(const struct frontend *fe, const struct dir_user *u)
{
	return u->privileged || (u->uid[0] && client_privileged(fe, u->uid)) ||
	       (u->mail[0] && client_privileged(fe, u->mail));
}

int
client_login_name(const char *in, char *out, size_t outsize)
{
	size_t o = 0;
	int space = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (*p < 0x20 && *p != '\t')
			return -1;
		if (*p == 0x7f)
			return -1;
		if (*p == ' ' || *p == '\t') {
			space = o > 0;
			continue;
		}
		if (o + (size_t)space + 1 >= outsize)
			return -1;
		if (space)
			out[o++] = ' ';
		space = 0;
		out[o++] = (char)*p;
	}
	if (o == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

void
client_login(struct client *c, const char *typed, const char *password)
{
	frontend_metrics_phase(c, FM_PHASE_CREDENTIALS);
	/* Spellings the directory takes for the same entry ("admin ",
	   " alice") are one name here: for the refused accounts, the
	   penalty, the cache and the logs. */
	char user[sizeof(c->user)];
	if (client_login_name(typed, user, sizeof(user)) < 0) {
		snprintf(c->user, sizeof(c->user), "%s", "-");
		client_login_failed(c, LOGIN_FAIL_CREDENTIALS, NULL);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
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
	client_timer_reset(c);
	policy_login_keys(c->fe->policy, (struct sockaddr *)&c->addr, user,
			  password, &c->keys);
	buf_wipe(&c->secret);
	buf_append(&c->secret, password, strlen(password) + 1);
	struct penalty_wait w;
	uint64_t delay = c->trusted
			     ? 0
			     : penalty_delay(c->fe->policy, &c->keys, &w);
	if (delay > 0) {
		metrics_add(&c->fe->metrics.auth_penalties[w.address_delay >
							   w.login_delay],
			    1);
		if (w.address_delay > w.login_delay)
			log_info("session=%s client=%s user=%s auth address "
				 "penalty delay_ms=%llu address_failures=%u "
				 "failures=%u",
				 c->id, c->peer, c->user,
				 (unsigned long long)delay, w.address_failures,
				 w.failures);
		else
			log_info("session=%s client=%s user=%s auth penalty "
				 "delay_ms=%llu failures=%u",
				 c->id, c->peer, c->user,
				 (unsigned long long)delay, w.failures);
		uv_timer_start(&c->delay, client_auth_start_cb, delay, 0);
		return;
	}
	client_auth_start(c);
}

/* -- relay ----------------------------------------------------------------*/

void
client_link_opened(struct client *c, uint32_t window)
{
	if (c->reviving) {
		/* a parked session is back on its backend: what the client
		   sent meanwhile follows */
		c->reviving = 0;
		client_park_clear(c);
		c->send_credit = window;
		client_relay_flush(c);
		if (c->fe->draining && c->state == CLIENT_RELAY)
			client_drain(c);
		return;
	}
	c->send_credit = window;
	c->login_at = uv_hrtime() / 1000000;
	client_set_state(c, CLIENT_RELAY);
	frontend_metrics_phase(c, FM_PHASE_BACKEND);
	frontend_metrics_phase(c, FM_PHASE_TOTAL);
	frontend_metrics_login(c->fe, c->protocol, FM_LOGIN_OK);
	metrics_add(&c->fe->metrics.link_sessions, 1);
	client_timer_reset(c);
	lp_reset(&c->lp);
	if (c->input_paused) {
		c->input_paused = 0;
		conn_read_start(&c->conn);
	}
	/* What the client pipelined after its login goes to the backend. */
	client_relay_flush(c);
	if (c->fe->draining && c->state == CLIENT_RELAY)
		client_drain(c);
}

void
client_link_refused(struct client *c, const char *code, const char *reason)
{
	if (c->reviving && strcmp(code, "UNAVAILABLE") == 0 &&
	    c->link != NULL) {
		/* a backend that is stopping: its successor takes it */
		log_info("session=%s user=%s backend=%s parked session waits: "
			 "%s",
			 c->id, c->user, c->duser.mailbox_server, reason);
		link_pool_resume_later(c);
		return;
	}
	if (c->reviving) {
		log_warn("session=%s user=%s backend=%s parked session refused "
			 "code=%s reason=\"%s\"",
			 c->id, c->user, c->duser.mailbox_server, code, reason);
		c->reviving = 0;
		c->proto->bye_unavailable(c, "Mailbox server unavailable");
		client_close(c, "parked session refused");
		return;
	}
	log_warn("session=%s user=%s backend=%s refused code=%s reason=\"%s\"",
		 c->id, c->user, c->duser.mailbox_server, code, reason);
	if (strcmp(code, "LIMIT") == 0) {
		/* backend.max_sessions_per_user */
		client_login_failed(c, LOGIN_FAIL_LIMIT, reason);
		return;
	}
	snprintf(c->fail_code, sizeof(c->fail_code), "%s", code);
	client_login_failed(c, LOGIN_FAIL_TEMPORARY, reason);
	c->fail_code[0] = '\0';
}

void
client_link_data(struct client *c, const void *data, size_t len)
{
	if (c->state != CLIENT_RELAY)
		return;
	/* Corked until the link's read is processed: the answers of one
	   read, and a session's last answer with its close_notify, leave in
	   one write. */
	if (!c->conn.corked) {
		conn_cork(&c->conn);
		if (c->conn.corked) {
			c->cork_next = c->fe->corked;
			c->fe->corked = c;
		}
	}
	conn_write(&c->conn, data, len);
	c->recv_uncredited += len;
	metrics_add(&c->fe->metrics.link_bytes_from_backend, len);
	/* Credit goes back in halves of the window: the backend always has
	   at least half of it to send in, and a change shown to thousands
	   of sessions in IDLE costs no frame back per session.  While the
	   client lags (more than half a window queued for it), the credit
	   waits until its socket drains. */
	if (c->recv_uncredited >= c->recv_window / 2 &&
	    conn_queued(&c->conn) <= c->recv_window / 2) {
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
			/* the session's own line: the link's says no session */
			log_warn("session=%s user=%s backend=%s login failed: "
				 "%s",
				 c->id, c->user, c->duser.mailbox_server,
				 reason);
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
	/* a parked session is taken up again by what the client says */
	if (c->parked && !c->reviving && buf_used(&c->in) > 0)
		client_park_revive(c);
	while (buf_used(&c->in) > 0 && c->send_credit > 0 &&
	       c->state == CLIENT_RELAY) {
		size_t n = buf_used(&c->in);
		if (n > c->send_credit)
			n = (size_t)c->send_credit;
		if (n > CLIENT_DATA_CHUNK)
			n = CLIENT_DATA_CHUNK;
		link_pool_send_data(c, buf_ptr(&c->in), n);
		metrics_add(&c->fe->metrics.link_bytes_to_backend, n);
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
	static const struct client_proto *protos[] = {
		&imap_login_proto, &pop3_login_proto, &smtp_session_proto,
		&lmtp_session_proto};
	_Static_assert(sizeof(protos) / sizeof(protos[0]) ==
			       CLIENT_PROTOCOL_COUNT,
		       "a session per protocol");
	c->proto = protos[protocol];
	c->implicit_tls = implicit_tls;
	if (conn_init(fe->loop, &c->conn, &client_conn_ops, c) < 0) {
		free(c);
		return;
	}
	c->conn.writes = &fe->metrics.client_writes;
	uv_timer_init(fe->loop, &c->idle);
	uv_timer_init(fe->loop, &c->delay);
	c->idle.data = c->delay.data = c;
	c->cached = -1;
	frontend_metrics_accept(c);
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
				cfg->limits_prelogin_max_line * 2, 4,
				cfg->limits_literal_plus ? 0 : 4096};
	if (protocol == CLIENT_POP3) {
		lim.max_line = lim.max_command = cfg->pop3_max_command_size;
		lim.max_literal = 0;
	} else if (protocol == CLIENT_SUBMISSION || protocol == CLIENT_LMTP) {
		lim.max_line = lim.max_command = cfg->smtp_max_line;
		lim.max_literal = 0;
	}
	lp_init(&c->lp, c->proto->mode, &lim);
	const int64_t logged[] = {cfg->log_protocol_imap, cfg->log_protocol_pop3,
				  cfg->log_protocol_smtp,
				  cfg->log_protocol_lmtp};
	_Static_assert(sizeof(logged) / sizeof(logged[0]) ==
			       CLIENT_PROTOCOL_COUNT,
		       "a protocol log setting per protocol");
	_Static_assert((int)CLIENT_IMAP == (int)PROTOLOG_IMAP &&
			       (int)CLIENT_LMTP == (int)PROTOLOG_LMTP,
		       "protocols in the same order");
	if (logged[protocol])
		c->plog = protolog_new((enum protolog_proto)protocol, c->id,
				       (size_t)cfg->log_protocol_max_line);
	if (conn_accept(server, &c->conn) < 0) {
		client_close(c, "accept failed");
		return;
	}
	/* a client gone without a word (a NAT that forgot it, a laptop
	   closed) is found by the kernel instead of its session's timeout */
	if (cfg->limits_tcp_keepalive > 0)
		uv_tcp_keepalive(&c->conn.tcp, 1,
				 (unsigned)cfg->limits_tcp_keepalive);
	conn_peer_addr(&c->conn, &c->addr);
	conn_addr_name((struct sockaddr *)&c->addr, c->peer, sizeof(c->peer));
	c->counted_conn = limits_conn_acquire(fe->policy) == 0;
	c->login_by = uv_now(fe->loop) +
		      (uint64_t)cfg->limits_login_deadline * 1000;
	client_timer_reset(c);
	if (policy_proxy_allowed(fe->policy, (struct sockaddr *)&c->addr)) {
		/* The load balancer speaks first: the PROXY header. */
		c->proxy_wait = 1;
		conn_read_start(&c->conn);
		return;
	}
	log_info("session=%s client=%s protocol=%s%s worker=%u connected",
		 c->id, c->peer, c->proto->name, implicit_tls ? "s" : "",
		 fe->index);
	client_admit(c);
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
