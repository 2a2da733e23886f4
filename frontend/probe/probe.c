/* probe.c - the connectivity probe engine (probe.h): one client session
 * of IMAP4, POP3 or SMTP submission on a libuv loop, each step timed.
 *
 * The probe reads replies through one bounded line reader (IMAP literals
 * are counted and skipped, never kept); each reply goes to the handler of
 * the protocol, which ends the current step and starts the next one by
 * sending its command.  The first failure ends the probe: the verdict
 * names the step and holds the server's reply, sanitized.
 */
#include "frontend/probe/probe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/conn.h"
#include "common/log.h"

/* Longest reply line read (an IMAP line with its literals skipped). */
#define PROBE_MAX_LINE 65536

static const char *probe_step_names[] = {
	[PROBE_STEP_CONNECT] = "connect", [PROBE_STEP_TLS] = "tls",
	[PROBE_STEP_GREETING] = "greeting", [PROBE_STEP_EHLO] = "ehlo",
	[PROBE_STEP_STARTTLS] = "starttls", [PROBE_STEP_LOGIN] = "login",
	[PROBE_STEP_SELECT] = "select", [PROBE_STEP_FETCH] = "fetch",
	[PROBE_STEP_STAT] = "stat", [PROBE_STEP_TOP] = "top",
	[PROBE_STEP_MAIL] = "mail", [PROBE_STEP_RCPT] = "rcpt",
	[PROBE_STEP_DATA] = "data", [PROBE_STEP_CLEANUP] = "cleanup",
	[PROBE_STEP_LOGOUT] = "logout",
};
_Static_assert(sizeof(probe_step_names) / sizeof(probe_step_names[0]) ==
		       PROBE_STEP_COUNT,
	       "probe step names");

static const char *probe_protocol_names[] = {
	[PROBE_IMAP] = "imap",
	[PROBE_POP3] = "pop3",
	[PROBE_SUBMISSION] = "submission",
};
_Static_assert(sizeof(probe_protocol_names) /
			       sizeof(probe_protocol_names[0]) ==
		       PROBE_PROTOCOL_COUNT,
	       "probe protocol names");

static const char *probe_tls_names[] = {
	[PROBE_TLS_NONE] = "none",
	[PROBE_TLS_STARTTLS] = "starttls",
	[PROBE_TLS_IMPLICIT] = "implicit",
};
_Static_assert(sizeof(probe_tls_names) / sizeof(probe_tls_names[0]) ==
		       PROBE_TLS_COUNT,
	       "probe tls names");

struct probe {
	uv_loop_t *loop;
	struct conn conn;
	uv_timer_t timer;       /* the probe's deadline; also defers cb */
	unsigned handles;       /* conn (as one) + timer, still open */
	probe_done_cb *cb;
	void *ctx;

	/* options, copied */
	struct sockaddr_storage addr;
	SSL_CTX *ssl_ctx;
	enum probe_protocol protocol;
	enum probe_tls tls;
	int light;
	int cleanup;
	uint64_t timeout_ms;
	char *tls_name, *user, *password, *rcpt, *helo, *tag;

	struct probe_result r;
	enum probe_step step;   /* in progress */
	uint64_t t_start, t_step;
	int done;               /* verdict reached */
	int deferred;           /* failed inside probe_start(): timer ends it */
	int tls_up;
	int sub;                /* sub-step: POP3 PASS, DATA's content */
	int saw_bye;            /* IMAP * BYE seen (LOGOUT, or a goodbye) */
	int saw_fetch;          /* IMAP * n FETCH seen */
	unsigned tagn;
	char ctag[16];          /* IMAP tag of the command in progress */
	char bye[160];          /* IMAP * BYE text, for a closed connection */
	struct buf in;
	uint64_t literal;       /* IMAP literal bytes still to skip */
	uint64_t octets;        /* message bytes read (FETCH, TOP) */
	uint64_t count;         /* EXISTS / STAT messages */
	int multiline;          /* POP3 TOP answer in progress */
	unsigned in_use;        /* POP3 [IN-USE] answers to PASS so far */
	struct buf uids;        /* IMAP cleanup: "1,5,9" */
	uint64_t nuids;
};

static void probe_timeout(uv_timer_t *t);

const char *
probe_step_name(enum probe_step s)
{
	return (unsigned)s < PROBE_STEP_COUNT ? probe_step_names[s] : "?";
}

const char *
probe_protocol_name(enum probe_protocol p)
{
	return (unsigned)p < PROBE_PROTOCOL_COUNT ? probe_protocol_names[p]
						  : "?";
}

const char *
probe_tls_name(enum probe_tls t)
{
	return (unsigned)t < PROBE_TLS_COUNT ? probe_tls_names[t] : "?";
}

int
probe_protocol_parse(const char *s, enum probe_protocol *p_r)
{
	if (strcasecmp(s, "smtp") == 0) {
		*p_r = PROBE_SUBMISSION;
		return 0;
	}
	for (unsigned i = 0; i < PROBE_PROTOCOL_COUNT; i++) {
		if (strcasecmp(s, probe_protocol_names[i]) == 0) {
			*p_r = (enum probe_protocol)i;
			return 0;
		}
	}
	return -1;
}

int
probe_tls_parse(const char *s, enum probe_tls *t_r)
{
	if (strcasecmp(s, "stls") == 0) {
		*t_r = PROBE_TLS_STARTTLS;
		return 0;
	}
	if (strcasecmp(s, "ssl") == 0 || strcasecmp(s, "tls") == 0) {
		*t_r = PROBE_TLS_IMPLICIT;
		return 0;
	}
	for (unsigned i = 0; i < PROBE_TLS_COUNT; i++) {
		if (strcasecmp(s, probe_tls_names[i]) == 0) {
			*t_r = (enum probe_tls)i;
			return 0;
		}
	}
	return -1;
}

SSL_CTX *
probe_ssl_ctx(const char *ca_file, int verify, const char **error_r)
{
	static _Thread_local char err[300];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = "cannot create a TLS context";
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	int ok = ca_file != NULL && ca_file[0] != '\0'
			 ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			 : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		unsigned long e = ERR_get_error();
		char text[200];
		ERR_error_string_n(e, text, sizeof(text));
		ERR_clear_error();
		snprintf(err, sizeof(err), "cannot load CA %s: %s",
			 ca_file != NULL && ca_file[0] ? ca_file : "(system)",
			 text);
		*error_r = err;
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* -- steps and the verdict --------------------------------------------------*/

static void probe_finish(struct probe *p);

static void
probe_step_begin(struct probe *p, enum probe_step step)
{
	p->step = step;
	p->t_step = uv_hrtime();
	p->sub = 0;
}

static void
probe_step_record(struct probe *p, int ok, const char *detail)
{
	if (p->r.nsteps >= PROBE_MAX_STEPS)
		return;
	struct probe_step_result *s = &p->r.steps[p->r.nsteps++];
	uint64_t now = uv_hrtime();
	s->step = p->step;
	s->ok = ok;
	s->us = now > p->t_step ? (now - p->t_step) / 1000 : 0;
	snprintf(s->detail, sizeof(s->detail), "%s",
		 detail != NULL ? detail : "");
}

static void
probe_step_ok(struct probe *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
probe_step_ok(struct probe *p, const char *fmt, ...)
{
	char detail[96] = "";
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	probe_step_record(p, 1, detail);
}

/* The current step failed; reason is sanitized here (server text). */
static void
probe_fail_text(struct probe *p, const char *reason, size_t len)
{
	if (p->done)
		return;
	probe_step_record(p, 0, NULL);
	p->r.pass = 0;
	p->r.failed_step = p->step;
	log_sanitize(p->r.reason, sizeof(p->r.reason), reason, len, 200);
	probe_finish(p);
}

static void
probe_fail(struct probe *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
probe_fail(struct probe *p, const char *fmt, ...)
{
	char reason[PROBE_REASON_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	probe_fail_text(p, reason, strlen(reason));
}

static void
probe_pass(struct probe *p)
{
	p->r.pass = 1;
	probe_finish(p);
}

static void
probe_free(struct probe *p)
{
	buf_free(&p->in);
	buf_free(&p->uids);
	if (p->password != NULL) {
		OPENSSL_cleanse(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->tls_name);
	free(p->user);
	free(p->rcpt);
	free(p->helo);
	free(p->tag);
	free(p);
}

static void
probe_handle_closed(struct probe *p)
{
	if (--p->handles == 0)
		probe_free(p);
}

static void
probe_timer_closed(uv_handle_t *h)
{
	probe_handle_closed(h->data);
}

static void
probe_conn_closed(struct conn *c)
{
	probe_handle_closed(c->data);
}

/* The verdict is in: close everything, tell the owner. */
static void
probe_finish(struct probe *p)
{
	if (p->done)
		return;
	p->done = 1;
	uint64_t now = uv_hrtime();
	p->r.total_us = now > p->t_start ? (now - p->t_start) / 1000 : 0;
	uv_timer_stop(&p->timer);
	if (!uv_is_closing((uv_handle_t *)&p->timer))
		uv_close((uv_handle_t *)&p->timer, probe_timer_closed);
	if (p->r.pass)
		conn_close(&p->conn);
	else
		conn_abort(&p->conn);
	probe_done_cb *cb = p->cb;
	p->cb = NULL;
	if (cb != NULL)
		cb(p->ctx, &p->r);
}

static void
probe_send(struct probe *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
probe_send(struct probe *p, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		probe_fail(p, "command too long");
		return;
	}
	if (conn_write(&p->conn, line, (size_t)n) < 0)
		probe_fail(p, "write failed");
}

/* Starts the TLS handshake (implicit, or after STARTTLS/STLS). */
static void
probe_start_tls(struct probe *p)
{
	probe_step_begin(p, PROBE_STEP_TLS);
	/* Nothing the server sent before the handshake counts after it. */
	buf_reset(&p->in);
	const char *name = p->tls_name;
	struct in6_addr a6;
	int ip = name != NULL && (inet_pton(AF_INET, name, &a6) == 1 ||
				  inet_pton(AF_INET6, name, &a6) == 1);
	if (conn_start_tls(&p->conn, p->ssl_ctx, 0, ip ? NULL : name) < 0) {
		probe_fail(p, "TLS setup failed: %s", "no TLS session");
		return;
	}
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->conn.ssl),
					      name);
}

/* -- IMAP4 ---------------------------------------------------------------*/

static void
imap_command(struct probe *p, enum probe_step step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
imap_command(struct probe *p, enum probe_step step, const char *fmt, ...)
{
	if (step != p->step)
		probe_step_begin(p, step);
	snprintf(p->ctag, sizeof(p->ctag), "p%u", ++p->tagn);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s ", p->ctag);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append(&b, "\r\n", 2);
	int rc = conn_write(&p->conn, buf_ptr(&b), buf_used(&b));
	buf_wipe(&b); /* LOGIN carries the password */
	if (rc < 0)
		probe_fail(p, "write failed");
}

/* A quoted string (RFC 3501): backslash before " and \. */
static void
imap_quote(const char *s, char *out, size_t outsize)
{
	size_t o = 0;
	out[o++] = '"';
	for (; *s != '\0' && o + 3 < outsize; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void
imap_login(struct probe *p)
{
	char u[1024], pw[1024]; /* each at most 400 characters, doubled */
	imap_quote(p->user, u, sizeof(u));
	imap_quote(p->password, pw, sizeof(pw));
	imap_command(p, PROBE_STEP_LOGIN, "LOGIN %s %s", u, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
}

static void
imap_after_greeting(struct probe *p)
{
	if (p->tls == PROBE_TLS_STARTTLS && !p->tls_up)
		imap_command(p, PROBE_STEP_STARTTLS, "STARTTLS");
	else
		imap_login(p);
}

/* The tagged reply of the command in progress; rest is after the tag. */
static void
imap_tagged(struct probe *p, const char *line, size_t len, const char *rest)
{
	if (strncasecmp(rest, "OK", 2) != 0 ||
	    (rest[2] != ' ' && rest[2] != '\0')) {
		probe_fail_text(p, rest, len - (size_t)(rest - line));
		return;
	}
	switch (p->step) {
	case PROBE_STEP_STARTTLS:
		probe_step_ok(p, NULL);
		probe_start_tls(p);
		return;
	case PROBE_STEP_LOGIN:
		probe_step_ok(p, NULL);
		if (p->light)
			imap_command(p, PROBE_STEP_LOGOUT, "LOGOUT");
		else
			imap_command(p, PROBE_STEP_SELECT, "SELECT INBOX");
		return;
	case PROBE_STEP_SELECT:
		probe_step_ok(p, "%" PRIu64 " message%s", p->count,
			      p->count == 1 ? "" : "s");
		if (p->count == 0) {
			imap_command(p, PROBE_STEP_LOGOUT, "LOGOUT");
			return;
		}
		p->octets = 0;
		p->saw_fetch = 0;
		imap_command(p, PROBE_STEP_FETCH, "FETCH %" PRIu64 " BODY.PEEK[]",
			     p->count);
		return;
	case PROBE_STEP_FETCH:
		if (!p->saw_fetch) {
			probe_fail(p, "no FETCH response for message %" PRIu64,
				   p->count);
			return;
		}
		probe_step_ok(p, "message %" PRIu64 ", %" PRIu64 " octets",
			      p->count, p->octets);
		if (p->cleanup && p->count > 1) {
			uint64_t from = p->count > PROBE_CLEANUP_MAX
						? p->count - PROBE_CLEANUP_MAX
						: 1;
			buf_reset(&p->uids);
			p->nuids = 0;
			imap_command(p, PROBE_STEP_CLEANUP,
				     "UID SEARCH %" PRIu64 ":%" PRIu64
				     " HEADER X-Portico-Probe \"\"",
				     from, p->count - 1);
			return;
		}
		imap_command(p, PROBE_STEP_LOGOUT, "LOGOUT");
		return;
	case PROBE_STEP_CLEANUP:
		if (p->sub == 0 && p->nuids > 0) {
			p->sub = 1;
			imap_command(p, PROBE_STEP_CLEANUP,
				     "UID STORE %.*s +FLAGS.SILENT (\\Deleted)",
				     (int)buf_used(&p->uids), buf_ptr(&p->uids));
			return;
		}
		if (p->sub == 1) {
			p->sub = 2;
			imap_command(p, PROBE_STEP_CLEANUP, "UID EXPUNGE %.*s",
				     (int)buf_used(&p->uids), buf_ptr(&p->uids));
			return;
		}
		probe_step_ok(p, "%" PRIu64 " probe message%s deleted",
			      p->nuids, p->nuids == 1 ? "" : "s");
		imap_command(p, PROBE_STEP_LOGOUT, "LOGOUT");
		return;
	case PROBE_STEP_LOGOUT:
		probe_step_ok(p, NULL);
		probe_pass(p);
		return;
	case PROBE_STEP_CONNECT:
	case PROBE_STEP_TLS:
	case PROBE_STEP_GREETING:
	case PROBE_STEP_EHLO:
	case PROBE_STEP_STAT:
	case PROBE_STEP_TOP:
	case PROBE_STEP_MAIL:
	case PROBE_STEP_RCPT:
	case PROBE_STEP_DATA:
	case PROBE_STEP_COUNT:
		break;
	}
	probe_fail(p, "unexpected tagged reply");
}

/* The UIDs of "* SEARCH 3 7 9" into p->uids, at most
 * PROBE_CLEANUP_MAX. */
static void
imap_search_uids(struct probe *p, const char *s)
{
	for (;;) {
		while (*s == ' ')
			s++;
		char *end;
		unsigned long long uid = strtoull(s, &end, 10);
		if (end == s || uid == 0 || p->nuids >= PROBE_CLEANUP_MAX)
			return;
		buf_printf(&p->uids, "%s%llu", p->nuids ? "," : "", uid);
		p->nuids++;
		s = end;
	}
}

static void
imap_line(struct probe *p, const char *line, size_t len)
{
	if (p->step == PROBE_STEP_GREETING) {
		if (strncasecmp(line, "* OK", 4) == 0) {
			probe_step_ok(p, NULL);
			imap_after_greeting(p);
		} else {
			probe_fail_text(p, line, len);
		}
		return;
	}
	if (strncmp(line, "* ", 2) == 0) {
		const char *s = line + 2;
		if (strncasecmp(s, "BYE", 3) == 0) {
			p->saw_bye = 1;
			log_sanitize(p->bye, sizeof(p->bye), line, len, 120);
			return;
		}
		char *end;
		unsigned long long n = strtoull(s, &end, 10);
		if (end != s && p->step == PROBE_STEP_SELECT &&
		    strncasecmp(end, " EXISTS", 7) == 0)
			p->count = n;
		if (end != s && p->step == PROBE_STEP_FETCH &&
		    strncasecmp(end, " FETCH", 6) == 0 && n == p->count)
			p->saw_fetch = 1;
		if (p->step == PROBE_STEP_CLEANUP && p->sub == 0 &&
		    strncasecmp(s, "SEARCH", 6) == 0)
			imap_search_uids(p, s + 6);
		return;
	}
	size_t tl = strlen(p->ctag);
	if (p->ctag[0] != '\0' && len > tl && strncmp(line, p->ctag, tl) == 0 &&
	    line[tl] == ' ') {
		imap_tagged(p, line, len, line + tl + 1);
		return;
	}
	if (line[0] == '+')
		probe_fail(p, "unexpected continuation request");
	/* other lines (continued literals) carry nothing we need */
}

/* -- POP3 ----------------------------------------------------------------*/

static void
pop3_command(struct probe *p, enum probe_step step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
pop3_command(struct probe *p, enum probe_step step, const char *fmt, ...)
{
	char cmd[900];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (step != p->step || p->sub == 0)
		probe_step_begin(p, step);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		probe_fail(p, "command too long");
		return;
	}
	probe_send(p, "%s\r\n", cmd);
	OPENSSL_cleanse(cmd, sizeof(cmd));
}

static void
pop3_login(struct probe *p)
{
	pop3_command(p, PROBE_STEP_LOGIN, "USER %s", p->user);
}

/* The maildrop was locked by another POP3 session ([IN-USE], RFC 2449):
 * often another frontend's probe of the same account in the same second.
 * The login is tried again on the same connection after a pause (the
 * deadline timer doubles as the pause, then gets what is left), up to
 * PROBE_IN_USE_RETRIES times; the step's time includes the pauses. */
#define PROBE_IN_USE_RETRIES 3
#define PROBE_IN_USE_PAUSE_MS 150

static void
pop3_relogin(uv_timer_t *t)
{
	struct probe *p = t->data;
	if (p->done)
		return;
	uint64_t spent = (uv_hrtime() - p->t_start) / 1000000;
	if (spent >= p->timeout_ms) {
		probe_fail(p, "timed out after %.1f s",
			   (double)p->timeout_ms / 1000);
		return;
	}
	uv_timer_start(&p->timer, probe_timeout, p->timeout_ms - spent, 0);
	p->sub = 0;
	probe_send(p, "USER %s\r\n", p->user);
}

static int
pop3_in_use(struct probe *p, const char *line, size_t len)
{
	static const char code[] = "[IN-USE]";
	if (p->step != PROBE_STEP_LOGIN || p->sub != 1 ||
	    p->in_use >= PROBE_IN_USE_RETRIES || len < 5 + sizeof(code) - 1 ||
	    strncmp(line, "-ERR ", 5) != 0 ||
	    strncmp(line + 5, code, sizeof(code) - 1) != 0)
		return 0;
	p->in_use++;
	uv_timer_stop(&p->timer);
	uv_timer_start(&p->timer, pop3_relogin,
		       (uint64_t)PROBE_IN_USE_PAUSE_MS * p->in_use, 0);
	return 1;
}

static void
pop3_line(struct probe *p, const char *line, size_t len)
{
	if (p->multiline) {
		if (len == 1 && line[0] == '.') {
			p->multiline = 0;
			probe_step_ok(p, "message %" PRIu64 ", %" PRIu64
					 " octets",
				      p->count, p->octets);
			pop3_command(p, PROBE_STEP_LOGOUT, "QUIT");
			return;
		}
		p->octets += len + 2;
		return;
	}
	if (strncmp(line, "+OK", 3) != 0) {
		if (!pop3_in_use(p, line, len))
			probe_fail_text(p, line, len);
		return;
	}
	switch (p->step) {
	case PROBE_STEP_GREETING:
		probe_step_ok(p, NULL);
		if (p->tls == PROBE_TLS_STARTTLS && !p->tls_up)
			pop3_command(p, PROBE_STEP_STARTTLS, "STLS");
		else
			pop3_login(p);
		return;
	case PROBE_STEP_STARTTLS:
		probe_step_ok(p, NULL);
		probe_start_tls(p);
		return;
	case PROBE_STEP_LOGIN:
		if (p->sub == 0) {
			p->sub = 1;
			pop3_command(p, PROBE_STEP_LOGIN, "PASS %s",
				     p->password);
			return;
		}
		if (p->in_use > 0)
			probe_step_ok(p, "mailbox in use %u time%s, tried again",
				      p->in_use, p->in_use == 1 ? "" : "s");
		else
			probe_step_ok(p, NULL);
		if (p->light)
			pop3_command(p, PROBE_STEP_LOGOUT, "QUIT");
		else
			pop3_command(p, PROBE_STEP_STAT, "STAT");
		return;
	case PROBE_STEP_STAT: {
		char *end;
		const char *s = line + 3;
		while (*s == ' ')
			s++;
		unsigned long long n = strtoull(s, &end, 10);
		if (end == s) {
			probe_fail_text(p, line, len);
			return;
		}
		p->count = n;
		probe_step_ok(p, "%llu message%s", n, n == 1 ? "" : "s");
		if (n == 0) {
			pop3_command(p, PROBE_STEP_LOGOUT, "QUIT");
			return;
		}
		p->octets = 0;
		pop3_command(p, PROBE_STEP_TOP, "TOP %llu 100", n);
		return;
	}
	case PROBE_STEP_TOP:
		p->multiline = 1;
		return;
	case PROBE_STEP_LOGOUT:
		probe_step_ok(p, NULL);
		probe_pass(p);
		return;
	case PROBE_STEP_CONNECT:
	case PROBE_STEP_TLS:
	case PROBE_STEP_EHLO:
	case PROBE_STEP_SELECT:
	case PROBE_STEP_FETCH:
	case PROBE_STEP_MAIL:
	case PROBE_STEP_RCPT:
	case PROBE_STEP_DATA:
	case PROBE_STEP_CLEANUP:
	case PROBE_STEP_COUNT:
		break;
	}
	probe_fail(p, "unexpected reply");
}

/* -- SMTP submission --------------------------------------------------------*/

static void
smtp_command(struct probe *p, enum probe_step step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
smtp_command(struct probe *p, enum probe_step step, const char *fmt, ...)
{
	char cmd[900];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	probe_step_begin(p, step);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		probe_fail(p, "command too long");
		return;
	}
	probe_send(p, "%s\r\n", cmd);
	OPENSSL_cleanse(cmd, sizeof(cmd));
}

static void
smtp_auth(struct probe *p)
{
	size_t ul = strlen(p->user), pl = strlen(p->password);
	size_t rawlen = ul + pl + 2;
	unsigned char *raw = malloc(rawlen);
	char *b64 = malloc(4 * ((rawlen + 2) / 3) + 1);
	if (raw == NULL || b64 == NULL)
		abort();
	raw[0] = '\0';
	memcpy(raw + 1, p->user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, p->password, pl);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
	smtp_command(p, PROBE_STEP_LOGIN, "AUTH PLAIN %s", b64);
	OPENSSL_cleanse(raw, rawlen);
	OPENSSL_cleanse(b64, strlen(b64));
	free(raw);
	free(b64);
}

/* The probe message, dot-stuffed already (no line starts with a dot). */
static void
smtp_message(struct probe *p)
{
	char date[64], host[80];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	conn_addr_name((const struct sockaddr *)&p->addr, host, sizeof(host));
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "Date: %s\r\n"
		   "From: <%s>\r\n"
		   "To: <%s>\r\n"
		   "Subject: Portico connectivity probe\r\n"
		   "Message-ID: <probe.%llx.%" PRIx64 "@%s>\r\n"
		   "X-Portico-Probe: %s\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n"
		   "\r\n"
		   "Sent by a Portico connectivity probe to check SMTP\r\n"
		   "submission through %s.  It can be deleted.\r\n"
		   ".\r\n",
		   date, p->user, p->rcpt, (unsigned long long)now,
		   uv_hrtime(), p->helo, p->tag, host);
	p->octets = buf_used(&b) - 3;
	if (conn_write(&p->conn, buf_ptr(&b), buf_used(&b)) < 0)
		probe_fail(p, "write failed");
	buf_free(&b);
}

static void
smtp_reply_final(struct probe *p, unsigned code, const char *line,
		 size_t len)
{
	unsigned want = 250;
	switch (p->step) {
	case PROBE_STEP_GREETING:
	case PROBE_STEP_STARTTLS:
		want = 220;
		break;
	case PROBE_STEP_LOGIN:
		want = 235;
		break;
	case PROBE_STEP_DATA:
	case PROBE_STEP_CLEANUP:
		want = p->sub == 0 ? 354 : 250;
		break;
	case PROBE_STEP_LOGOUT:
		want = 221;
		break;
	case PROBE_STEP_RCPT:
		want = code == 251 ? 251 : 250;
		break;
	case PROBE_STEP_EHLO:
	case PROBE_STEP_MAIL:
	case PROBE_STEP_CONNECT:
	case PROBE_STEP_TLS:
	case PROBE_STEP_SELECT:
	case PROBE_STEP_FETCH:
	case PROBE_STEP_STAT:
	case PROBE_STEP_TOP:
	case PROBE_STEP_COUNT:
		break;
	}
	if (code != want) {
		probe_fail_text(p, line, len);
		return;
	}
	switch (p->step) {
	case PROBE_STEP_GREETING:
		probe_step_ok(p, NULL);
		smtp_command(p, PROBE_STEP_EHLO, "EHLO %s", p->helo);
		return;
	case PROBE_STEP_EHLO:
		probe_step_ok(p, NULL);
		if (p->tls == PROBE_TLS_STARTTLS && !p->tls_up)
			smtp_command(p, PROBE_STEP_STARTTLS, "STARTTLS");
		else
			smtp_auth(p);
		return;
	case PROBE_STEP_STARTTLS:
		probe_step_ok(p, NULL);
		probe_start_tls(p);
		return;
	case PROBE_STEP_LOGIN:
		probe_step_ok(p, NULL);
		if (p->light)
			smtp_command(p, PROBE_STEP_LOGOUT, "QUIT");
		else
			smtp_command(p, PROBE_STEP_MAIL, "MAIL FROM:<%s>",
				     p->user);
		return;
	case PROBE_STEP_MAIL:
		probe_step_ok(p, NULL);
		smtp_command(p, PROBE_STEP_RCPT, "RCPT TO:<%s>", p->rcpt);
		return;
	case PROBE_STEP_RCPT:
		probe_step_ok(p, NULL);
		smtp_command(p, PROBE_STEP_DATA, "DATA");
		return;
	case PROBE_STEP_DATA:
	case PROBE_STEP_CLEANUP:
		if (p->sub == 0) {
			p->sub = 1;
			smtp_message(p);
			return;
		}
		probe_step_ok(p, "%" PRIu64 " octets", p->octets);
		smtp_command(p, PROBE_STEP_LOGOUT, "QUIT");
		return;
	case PROBE_STEP_LOGOUT:
		probe_step_ok(p, NULL);
		probe_pass(p);
		return;
	case PROBE_STEP_CONNECT:
	case PROBE_STEP_TLS:
	case PROBE_STEP_SELECT:
	case PROBE_STEP_FETCH:
	case PROBE_STEP_STAT:
	case PROBE_STEP_TOP:
	case PROBE_STEP_COUNT:
		break;
	}
	probe_fail(p, "unexpected reply");
}

static void
smtp_line(struct probe *p, const char *line, size_t len)
{
	if (len < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		probe_fail_text(p, line, len);
		return;
	}
	if (len > 3 && line[3] == '-')
		return; /* continued */
	unsigned code = (unsigned)(line[0] - '0') * 100 +
			(unsigned)(line[1] - '0') * 10 +
			(unsigned)(line[2] - '0');
	smtp_reply_final(p, code, line, len);
}

/* -- input ---------------------------------------------------------------*/

/* "{n}" or "{n+}" at the end of an IMAP line: n, or -1. */
static int64_t
imap_literal_size(const char *line, size_t len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	size_t i = len - 1;
	if (line[i - 1] == '+')
		i--;
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{' || end - i > 15)
		return -1;
	int64_t n = 0;
	for (; i < end; i++)
		n = n * 10 + (line[i] - '0');
	return n;
}

static void
probe_input(struct probe *p)
{
	while (!p->done) {
		size_t used = buf_used(&p->in);
		if (p->literal > 0) {
			size_t n = used < p->literal ? used : (size_t)p->literal;
			if (n == 0)
				return;
			buf_consume(&p->in, n);
			p->literal -= n;
			p->octets += n;
			continue;
		}
		char *s = buf_ptr(&p->in);
		char *nl = used > 0 ? memchr(s, '\n', used) : NULL;
		if (nl == NULL) {
			if (used > PROBE_MAX_LINE)
				probe_fail(p, "reply line longer than %d "
					      "octets",
					   PROBE_MAX_LINE);
			return;
		}
		size_t linelen = (size_t)(nl - s) + 1;
		size_t len = linelen - 1;
		if (len > 0 && s[len - 1] == '\r')
			len--;
		char line[PROBE_MAX_LINE + 1];
		if (len > PROBE_MAX_LINE) {
			probe_fail(p, "reply line longer than %d octets",
				   PROBE_MAX_LINE);
			return;
		}
		memcpy(line, s, len);
		line[len] = '\0';
		buf_consume(&p->in, linelen);
		if (memchr(line, '\0', len) != NULL) {
			probe_fail(p, "NUL byte in a reply");
			return;
		}
		if (p->protocol == PROBE_IMAP) {
			int64_t lit = imap_literal_size(line, len);
			if (lit > 0)
				p->literal = (uint64_t)lit;
		}
		switch (p->protocol) {
		case PROBE_IMAP:
			imap_line(p, line, len);
			break;
		case PROBE_POP3:
			pop3_line(p, line, len);
			break;
		case PROBE_SUBMISSION:
			smtp_line(p, line, len);
			break;
		case PROBE_PROTOCOL_COUNT:
			abort();
		}
	}
}

static void
probe_read(struct conn *c, const char *data, size_t len)
{
	struct probe *p = c->data;
	if (p->done)
		return;
	if (p->step == PROBE_STEP_TLS) {
		/* plaintext before the handshake ended: not ours */
		return;
	}
	buf_append(&p->in, data, len);
	probe_input(p);
}

static void
probe_error(struct conn *c, const char *why)
{
	struct probe *p = c->data;
	if (p->done)
		return;
	if (p->step == PROBE_STEP_LOGOUT && p->saw_bye) {
		/* the server said goodbye and closed before its tagged OK */
		probe_step_ok(p, NULL);
		probe_pass(p);
		return;
	}
	if (p->step == PROBE_STEP_TLS && c->ssl != NULL) {
		long v = SSL_get_verify_result(c->ssl);
		if (v != X509_V_OK) {
			probe_fail(p, "%s (certificate: %s)", why,
				   X509_verify_cert_error_string(v));
			return;
		}
	}
	if (p->bye[0] != '\0')
		probe_fail(p, "%s after %s", why, p->bye);
	else
		probe_fail(p, "%s", why);
}

static void
probe_tls_ready(struct conn *c)
{
	struct probe *p = c->data;
	if (p->done)
		return;
	char desc[96];
	conn_tls_desc(c, desc, sizeof(desc));
	probe_step_ok(p, "%s", desc);
	int implicit = !p->tls_up && p->tls == PROBE_TLS_IMPLICIT;
	p->tls_up = 1;
	if (implicit) {
		probe_step_begin(p, PROBE_STEP_GREETING);
		return;
	}
	switch (p->protocol) {
	case PROBE_IMAP:
		imap_login(p);
		break;
	case PROBE_POP3:
		pop3_login(p);
		break;
	case PROBE_SUBMISSION:
		smtp_command(p, PROBE_STEP_EHLO, "EHLO %s", p->helo);
		break;
	case PROBE_PROTOCOL_COUNT:
		abort();
	}
}

static const struct conn_ops probe_conn_ops = {
	.read = probe_read,
	.error = probe_error,
	.tls_ready = probe_tls_ready,
	.closed = probe_conn_closed,
};

static void
probe_connected(struct conn *c, int status)
{
	struct probe *p = c->data;
	if (p->done)
		return;
	if (status < 0) {
		probe_fail(p, "%s", uv_strerror(status));
		return;
	}
	probe_step_ok(p, NULL);
	if (conn_read_start(c) < 0) {
		probe_fail(p, "cannot read");
		return;
	}
	if (p->tls == PROBE_TLS_IMPLICIT)
		probe_start_tls(p);
	else
		probe_step_begin(p, PROBE_STEP_GREETING);
}

static void
probe_timeout(uv_timer_t *t)
{
	struct probe *p = t->data;
	if (p->deferred) {
		probe_finish(p);
		return;
	}
	probe_fail(p, "timed out after %.1f s", (double)p->timeout_ms / 1000);
}

static char *
probe_strdup(const char *s)
{
	char *d = strdup(s != NULL ? s : "");
	if (d == NULL)
		abort();
	return d;
}

struct probe *
probe_start(uv_loop_t *loop, const struct probe_opts *o, probe_done_cb *cb,
	    void *ctx, const char **error_r)
{
	if ((unsigned)o->protocol >= PROBE_PROTOCOL_COUNT ||
	    (unsigned)o->tls >= PROBE_TLS_COUNT) {
		*error_r = "unknown protocol or TLS mode";
		return NULL;
	}
	if (o->tls != PROBE_TLS_NONE && o->ssl_ctx == NULL) {
		*error_r = "TLS asked for without a TLS context";
		return NULL;
	}
	const char *strs[] = {o->user, o->password, o->rcpt, o->helo, o->tag};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strs[i] != NULL && (strpbrk(strs[i], "\r\n") != NULL ||
					strlen(strs[i]) > 400)) {
			*error_r = "user, password or names hold a line break "
				   "or are too long";
			return NULL;
		}
	}
	if (o->user == NULL || o->user[0] == '\0' || o->password == NULL) {
		*error_r = "no user or password";
		return NULL;
	}
	struct probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		abort();
	p->loop = loop;
	p->cb = cb;
	p->ctx = ctx;
	p->addr = o->addr;
	p->ssl_ctx = o->ssl_ctx;
	p->protocol = o->protocol;
	p->tls = o->tls;
	p->light = o->light;
	p->cleanup = o->cleanup;
	p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	p->tls_name = o->tls_name != NULL ? probe_strdup(o->tls_name) : NULL;
	p->user = probe_strdup(o->user);
	p->password = probe_strdup(o->password);
	p->rcpt = probe_strdup(o->rcpt != NULL && o->rcpt[0] ? o->rcpt
							     : o->user);
	p->helo = probe_strdup(o->helo != NULL && o->helo[0] ? o->helo
							     : "portico-probe");
	p->tag = probe_strdup(o->tag != NULL && o->tag[0] ? o->tag : "cli");
	p->t_start = uv_hrtime();
	if (uv_timer_init(loop, &p->timer) < 0) {
		probe_free(p);
		*error_r = "cannot create a timer";
		return NULL;
	}
	p->timer.data = p;
	p->handles = 1;
	int rc = conn_init(loop, &p->conn, &probe_conn_ops, p);
	if (rc < 0 && p->conn.handles == 0) {
		p->done = 1;
		uv_close((uv_handle_t *)&p->timer, probe_timer_closed);
		*error_r = uv_strerror(rc);
		return NULL;
	}
	p->handles++;
	probe_step_begin(p, PROBE_STEP_CONNECT);
	if (rc == 0)
		rc = conn_connect(&p->conn, (const struct sockaddr *)&p->addr,
				  probe_connected);
	if (rc < 0) {
		/* the verdict, but the callback must not run from here */
		probe_step_record(p, 0, NULL);
		p->r.failed_step = PROBE_STEP_CONNECT;
		snprintf(p->r.reason, sizeof(p->r.reason), "%s",
			 uv_strerror(rc));
		p->deferred = 1;
		uv_timer_start(&p->timer, probe_timeout, 0, 0);
		return p;
	}
	uv_timer_start(&p->timer, probe_timeout, p->timeout_ms, 0);
	return p;
}

void
probe_cancel(struct probe **pp)
{
	struct probe *p = *pp;
	*pp = NULL;
	if (p == NULL)
		return;
	p->cb = NULL;
	if (!p->done) {
		p->r.pass = 0;
		probe_finish(p);
	}
}
