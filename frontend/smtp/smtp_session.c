/* smtp_session.c - SMTP submission: greeting, command dispatch, EHLO,
 * HELO, STARTTLS, RSET, NOOP, QUIT, VRFY, HELP and the error budget
 * (RFC 5321, RFC 6409, RFC 3207, RFC 2034). */
#include "frontend/smtp/smtp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static const char *smtp_state_names[] = {"idle",    "mail",   "rcpt",
					 "content", "chunks", "result"};
_Static_assert(sizeof(smtp_state_names) / sizeof(smtp_state_names[0]) ==
		       SMTP_S_COUNT,
	       "smtp state names");

void
smtp_set_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	log_debug("session=%s smtp %s -> %s", s->c->id,
		  smtp_state_names[s->state], smtp_state_names[state]);
	s->state = state;
}

void
smtp_reply(struct smtp_session *s, unsigned code, const char *status,
	   const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (status == NULL)
		client_printf(s->c, "%u %s\r\n", code, text);
	else
		client_printf(s->c, "%u %s %s\r\n", code, status, text);
}

int
smtp_count_error(struct smtp_session *s)
{
	if (++s->errors < (unsigned)s->c->fe->cfg.smtp_max_errors)
		return 1;
	smtp_reply(s, 421, "4.7.0", "%s Too many errors; closing the "
				    "connection",
		   s->c->fe->cfg.global_name);
	client_close(s->c, "too many errors");
	return 0;
}

/* The recipients go (what each holds with them). */
static void
smtp_rcpts_clear(struct smtp_session *s)
{
	for (unsigned i = 0; i < s->nrcpt; i++) {
		dir_auto_reply_free(&s->rcpts[i].auto_reply);
		dir_forward_free(&s->rcpts[i].forward);
	}
	s->nrcpt = 0;
}

void
smtp_reset_transaction(struct smtp_session *s)
{
	smtp_data_abort(s);
	if (s->lookup != NULL) {
		dir_cancel(s->lookup);
		s->lookup = NULL;
	}
	memset(&s->mail, 0, sizeof(s->mail));
	smtp_rcpts_clear(s);
	s->bdat = 0;
	s->chunk_left = 0;
	s->chunk_last = 0;
	s->error = SMTP_CE_NONE;
	s->content_size = 0;
	s->c->raw = 0;
	smtp_set_state(s, SMTP_S_IDLE);
}

void
smtp_offer(const struct smtp_session *s, struct smtp_offer *o)
{
	memset(o, 0, sizeof(*o));
	o->max_size = s->c->fe->cfg.smtp_max_message_size;
	o->smtputf8 = 1;
	o->dsn = 1;
	o->eightbit = 1;
	o->auth = !s->lmtp;
	o->null_path_ok = s->lmtp;
	o->lmtp = s->lmtp;
}

/* -- commands -------------------------------------------------------------*/

/* A HELO/EHLO/LHLO argument: a domain or address literal, as sent (many
 * clients send bare host names; only the shape is checked). */
static int
smtp_helo_valid(const char *args)
{
	size_t n = strlen(args);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)args[i];
		if (ch <= ' ' || ch == 127)
			return 0;
	}
	return 1;
}

/* The EHLO / LHLO answer: the extensions offered now. */
static void
smtp_ehlo_reply(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	const struct config *cfg = &c->fe->cfg;
	char lines[12][64];
	unsigned n = 0;
	snprintf(lines[n++], sizeof(lines[0]), "PIPELINING");
	snprintf(lines[n++], sizeof(lines[0]), "SIZE %llu",
		 (unsigned long long)cfg->smtp_max_message_size);
	snprintf(lines[n++], sizeof(lines[0]), "8BITMIME");
	snprintf(lines[n++], sizeof(lines[0]), "ENHANCEDSTATUSCODES");
	snprintf(lines[n++], sizeof(lines[0]), "SMTPUTF8");
	snprintf(lines[n++], sizeof(lines[0]), "DSN");
	snprintf(lines[n++], sizeof(lines[0]), "CHUNKING");
	if (s->lmtp)
		snprintf(lines[n++], sizeof(lines[0]), "XDELIVERYID");
	if (!s->lmtp && !c->tls)
		snprintf(lines[n++], sizeof(lines[0]), "STARTTLS");
	if (!s->lmtp && !s->authenticated && client_plaintext_allowed(c))
		snprintf(lines[n++], sizeof(lines[0]), "AUTH %s",
			 client_sasl_mechanisms());
	struct buf b = BUF_INIT;
	buf_printf(&b, "250-%s Hello %s\r\n", cfg->global_name, args);
	for (unsigned i = 0; i < n; i++)
		buf_printf(&b, "250%c%s\r\n", i + 1 == n ? ' ' : '-', lines[i]);
	client_write(c, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
}

/* EHLO and LHLO: a new session greeting (RFC 5321 4.1.4: as RSET). */
void
smtp_hello(struct smtp_session *s, const char *args, int esmtp)
{
	if (!smtp_helo_valid(args)) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname",
			   s->lmtp ? "LHLO" : esmtp ? "EHLO" : "HELO");
		smtp_count_error(s);
		return;
	}
	smtp_reset_transaction(s);
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	s->esmtp = esmtp;
	if (esmtp)
		smtp_ehlo_reply(s, args);
	else /* RFC 5321 4.1.1.1: the domain first; no enhanced code */
		smtp_reply(s, 250, NULL, "%s Hello %s",
			   s->c->fe->cfg.global_name, args);
}

void
smtp_cmd_ehlo(struct smtp_session *s, const char *args)
{
	smtp_hello(s, args, 1);
}

void
smtp_cmd_helo(struct smtp_session *s, const char *args)
{
	smtp_hello(s, args, 0);
}

void
smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	if (c->tls) {
		smtp_reply(s, 503, "5.5.1", "TLS is already active");
		smtp_count_error(s);
		return;
	}
	if (args[0] != '\0') {
		smtp_reply(s, 501, "5.5.4", "STARTTLS takes no arguments");
		smtp_count_error(s);
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: the client starts afresh, its EHLO and an AUTH
	   before TLS (frontend.smtp_login_type = plaintext) forgotten;
	   pipelined input after STARTTLS is discarded, never executed
	   under TLS. */
	smtp_reset_transaction(s);
	s->helo[0] = '\0';
	s->esmtp = 0;
	s->authenticated = 0;
	client_start_tls(c);
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *args)
{
	smtp_reset_transaction(s);
	smtp_reply(s, 250, "2.0.0", "Reset");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 250, "2.0.0", "OK");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 221, "2.0.0", "%s Bye", s->c->fe->cfg.global_name);
	client_close(s->c, "quit");
}

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *args)
{
	/* RFC 5321 3.5.3: neither confirmed nor denied. */
	smtp_reply(s, 252, "2.5.0", "Cannot VRFY user; send the message "
				    "and delivery will be attempted");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 502, "5.5.1", "EXPN is not available");
	smtp_count_error(s);
}

static void
smtp_cmd_help(struct smtp_session *s, const char *args)
{
	smtp_reply(s, 214, "2.0.0",
		   s->lmtp ? "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP "
			     "QUIT VRFY HELP"
			   : "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT "
			     "DATA BDAT RSET NOOP QUIT VRFY HELP");
}

enum {
	SMTP_F_SUBMISSION = 1,
	SMTP_F_LMTP = 2,
	SMTP_F_BOTH = 3,
	SMTP_F_NOARGS = 4,
};

struct smtp_cmd_def {
	enum smtp_verb verb;
	void (*func)(struct smtp_session *s, const char *args);
	unsigned flags;
};

/* clang-format off */
static const struct smtp_cmd_def smtp_cmds[] = {
	{ SMTP_EHLO,     smtp_cmd_ehlo,     SMTP_F_SUBMISSION },
	{ SMTP_HELO,     smtp_cmd_helo,     SMTP_F_SUBMISSION },
	{ SMTP_LHLO,     lmtp_cmd_lhlo,     SMTP_F_LMTP },
	{ SMTP_STARTTLS, smtp_cmd_starttls, SMTP_F_SUBMISSION },
	{ SMTP_AUTH,     smtp_cmd_auth,     SMTP_F_SUBMISSION },
	{ SMTP_MAIL,     smtp_cmd_mail,     SMTP_F_BOTH },
	{ SMTP_RCPT,     smtp_cmd_rcpt,     SMTP_F_BOTH },
	{ SMTP_DATA,     smtp_cmd_data,     SMTP_F_BOTH | SMTP_F_NOARGS },
	{ SMTP_BDAT,     smtp_cmd_bdat,     SMTP_F_BOTH },
	{ SMTP_RSET,     smtp_cmd_rset,     SMTP_F_BOTH | SMTP_F_NOARGS },
	{ SMTP_NOOP,     smtp_cmd_noop,     SMTP_F_BOTH },
	{ SMTP_QUIT,     smtp_cmd_quit,     SMTP_F_BOTH | SMTP_F_NOARGS },
	{ SMTP_VRFY,     smtp_cmd_vrfy,     SMTP_F_BOTH },
	{ SMTP_EXPN,     smtp_cmd_expn,     SMTP_F_BOTH },
	{ SMTP_HELP,     smtp_cmd_help,     SMTP_F_BOTH },
};
/* clang-format on */

void
smtp_session_command(struct client *c, const char *line, size_t len)
{
	struct smtp_session *s = smtp_session(c);
	if (memchr(line, '\0', len) != NULL) {
		c->sasl_wait = 0;
		smtp_reply(s, 500, "5.5.2", "NUL byte in command");
		smtp_count_error(s);
		return;
	}
	if (c->sasl_wait) {
		smtp_auth_response(s, line, len);
		return;
	}
	const char *args;
	enum smtp_verb verb = smtp_parse_verb(line, len, &args);
	const struct smtp_cmd_def *def = NULL;
	for (size_t i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++)
		if (smtp_cmds[i].verb == verb)
			def = &smtp_cmds[i];
	unsigned want = s->lmtp ? SMTP_F_LMTP : SMTP_F_SUBMISSION;
	if (def == NULL || !(def->flags & want)) {
		smtp_reply(s, 500, "5.5.2", "Command not recognized");
		smtp_count_error(s);
		return;
	}
	if ((def->flags & SMTP_F_NOARGS) && args[0] != '\0') {
		smtp_reply(s, 501, "5.5.4", "%s takes no arguments",
			   smtp_verb_name(verb));
		smtp_count_error(s);
		return;
	}
	def->func(s, args);
}

void
smtp_session_input_error(struct client *c, const char *line, size_t len,
			 const char *msg, int fatal)
{
	struct smtp_session *s = smtp_session(c);
	c->sasl_wait = 0;
	if (fatal) {
		smtp_reply(s, 421, "4.7.0", "%s", msg);
		return;
	}
	/* "[TOOBIG] Command line too long": the code is IMAP's. */
	smtp_reply(s, 500, "5.5.2", "%s", lp_error_text(msg));
	smtp_count_error(s);
}

struct smtp_session *
smtp_session_new(struct client *c, int lmtp)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->c = c;
	s->lmtp = lmtp;
	c->smtp = s;
	return s;
}

void
smtp_session_detach(struct client *c)
{
	struct smtp_session *s = smtp_session(c);
	if (s == NULL)
		return;
	smtp_data_abort(s);
	if (s->lookup != NULL) {
		dir_cancel(s->lookup);
		s->lookup = NULL;
	}
}

void
smtp_session_free(struct client *c)
{
	struct smtp_session *s = smtp_session(c);
	if (s == NULL)
		return;
	smtp_data_abort(s);
	buf_free(&s->pending);
	smtp_rcpts_clear(s);
	free(s->rcpts);
	free(s);
	c->smtp = NULL;
}

/* The session of c, made if the connection ends before its greeting. */
struct smtp_session *
smtp_session_any(struct client *c)
{
	if (c->smtp == NULL)
		smtp_session_new(c, c->protocol == CLIENT_LMTP);
	return c->smtp;
}

void
smtp_session_timeout(struct client *c)
{
	smtp_reply(smtp_session_any(c), 421, "4.4.2",
		   "%s Error: timeout exceeded", c->fe->cfg.global_name);
}

/* In place of the greeting (a connection limit) the reply has the
 * greeting's shape, "421 domain text" (RFC 5321 3.1, 4.2; RFC 2034 4:
 * no enhanced code before EHLO); later (shutdown, too many invalid
 * commands) it keeps its enhanced code. */
void
smtp_session_bye(struct client *c, const char *msg)
{
	struct smtp_session *s = smtp_session_any(c);
	smtp_reply(s, 421, s->greeted ? "4.3.2" : NULL, "%s %s",
		   c->fe->cfg.global_name, msg);
}

void
smtp_session_kicked_bye(struct smtp_session *s)
{
	smtp_reply(s, 421, "4.7.0", "%s Session ended by an administrator",
		   s->c->fe->cfg.global_name);
	client_close(s->c, "kicked");
}

/* portico-admin kick named the account (kick.c): a session that logged
 * in before the kick ends with 421 (RFC 5321 3.8), whatever it was doing:
 * a message whose content is still coming is dropped (its streams Close,
 * never End); one that is complete and waits for its backend's Result
 * gets that reply first, since the backend may have taken it. */
static int
smtp_session_kick(struct client *c, uint64_t at)
{
	struct smtp_session *s = smtp_session(c);
	if (s == NULL || !s->authenticated || s->kicked || s->login_at > at ||
	    c->state == CLIENT_CLOSING)
		return 0;
	s->kicked = 1;
	log_info("session=%s user=%s kicked state=%s", c->id, c->user,
		 smtp_state_names[s->state]);
	if (s->state != SMTP_S_RESULT)
		smtp_session_kicked_bye(s);
	return 1;
}

static const char *
smtp_session_doing(const struct client *c)
{
	return c->smtp != NULL ? smtp_state_names[c->smtp->state] : NULL;
}

static void
smtp_greet(struct client *c)
{
	struct smtp_session *s = smtp_session_any(c);
	/* RFC 5321 4.2, 4.3.1: "220 domain text" or "554 domain text";
	   RFC 2034 4: the greeting has no enhanced status code. */
	s->greeted = 1;
	if (!c->fe->cfg.frontend_smtp_enabled) {
		smtp_reply(s, 554, NULL,
			   "%s SMTP submission is not offered "
			   "on this server",
			   c->fe->cfg.global_name);
		client_close(c, "smtp disabled");
		return;
	}
	smtp_reply(s, 220, NULL, "%s ESMTP Portico ready",
		   c->fe->cfg.global_name);
}

static void
smtp_continuation(struct client *c)
{
	abort(); /* LINE mode has no literals */
}

static void
smtp_login_expired(struct client *c)
{
	smtp_reply(smtp_session_any(c), 421, "4.7.0",
		   "%s Login time limit reached", c->fe->cfg.global_name);
}

const struct client_proto smtp_session_proto = {
	.name = "submission",
	.mode = LP_MODE_LINE,
	.greet = smtp_greet,
	.command = smtp_session_command,
	.input_error = smtp_session_input_error,
	.continuation = smtp_continuation,
	.login_failed = smtp_auth_failed,
	.bye_unavailable = smtp_session_bye,
	.timeout = smtp_session_timeout,
	.login_expired = smtp_login_expired,
	.logged_in = smtp_auth_logged_in,
	.content = smtp_data_content,
	.kick = smtp_session_kick,
	.doing = smtp_session_doing,
	.detach = smtp_session_detach,
	.free = smtp_session_free,
};
