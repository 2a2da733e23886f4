/* lmtp_session.c - LMTP (RFC 2033) for the deployment's MTA: only
 * lmtp.trusted_networks may connect; LHLO, then MAIL, RCPT (each
 * recipient looked up in the directory), DATA or BDAT with one reply per
 * accepted recipient.  The commands are SMTP's (smtp/), the session is
 * served by the frontend from the greeting on (no AUTH). */
#include "frontend/smtp/smtp_session.h"

#include <stdlib.h>

#include "common/log.h"

void
lmtp_cmd_lhlo(struct smtp_session *s, const char *args)
{
	smtp_hello(s, args, 1);
}

static void
lmtp_greet(struct client *c)
{
	struct smtp_session *s = smtp_session_any(c);
	/* RFC 2033 4.1, RFC 5321 4.2: "220 domain text" or "554 domain
	   text", without an enhanced status code (RFC 2034 4). */
	s->greeted = 1;
	if (!policy_lmtp_allowed(c->fe->policy,
				 (struct sockaddr *)&c->addr)) {
		log_warn("session=%s client=%s LMTP refused: not in "
			 "lmtp.trusted_networks",
			 c->id, c->peer);
		smtp_reply(s, 554, NULL,
			   "%s LMTP is not offered to your "
			   "address",
			   c->fe->cfg.global_name);
		client_close(c, "lmtp untrusted");
		return;
	}
	client_set_state(c, CLIENT_LOCAL);
	client_timer_reset(c); /* smtp.timeout from the greeting on */
	smtp_reply(s, 220, NULL, "%s LMTP Portico ready",
		   c->fe->cfg.global_name);
}

static void
lmtp_continuation(struct client *c)
{
	abort(); /* LINE mode has no literals */
}

static void
lmtp_login_failed(struct client *c, enum login_failure why, const char *msg)
{
	abort(); /* LMTP has no login */
}

static void
lmtp_logged_in(struct client *c)
{
	abort(); /* LMTP has no login */
}

const struct client_proto lmtp_session_proto = {
	.name = "lmtp",
	.mode = LP_MODE_LINE,
	.greet = lmtp_greet,
	.command = smtp_session_command,
	.input_error = smtp_session_input_error,
	.continuation = lmtp_continuation,
	.login_failed = lmtp_login_failed,
	.bye_unavailable = smtp_session_bye,
	.timeout = smtp_session_timeout,
	.login_expired = smtp_session_timeout,
	.logged_in = lmtp_logged_in,
	.content = smtp_data_content,
	.detach = smtp_session_detach,
	.free = smtp_session_free,
};
