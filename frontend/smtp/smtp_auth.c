/* smtp_auth.c - AUTH PLAIN and LOGIN with an initial response (RFC 4954)
 * through the frontend's login: directory, penalty, cache and account
 * policy as for IMAP4 and POP3. */
#include "frontend/smtp/smtp_session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static void
smtp_sasl_result(struct smtp_session *s, int rc, const char *challenge)
{
	struct client *c = s->c;
	c->sasl_wait = 0;
	switch (rc) {
	case SASL_OK:
		return; /* the login runs; smtp_auth_failed/logged_in answer */
	case SASL_CONTINUE:
		c->sasl_wait = 1;
		client_printf(c, "334 %s\r\n", challenge);
		return;
	case SASL_MALFORMED:
		smtp_reply(s, 501, "5.5.2", "Invalid SASL response");
		break;
	case SASL_AUTHZ:
		smtp_reply(s, 535, "5.7.8", "Authorization identity must equal "
					    "the login name");
		break;
	case SASL_UNSUPPORTED:
		smtp_reply(s, 504, "5.5.4", "Unrecognized authentication "
					    "mechanism");
		break;
	case SASL_CANCELLED:
		smtp_reply(s, 501, "5.0.0", "Authentication cancelled");
		break;
	}
	smtp_count_error(s);
}

void
smtp_cmd_auth(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	if (!s->esmtp) {
		smtp_reply(s, 503, "5.5.1", "Send EHLO first");
		smtp_count_error(s);
		return;
	}
	if (s->authenticated) {
		smtp_reply(s, 503, "5.5.1", "Already authenticated");
		smtp_count_error(s);
		return;
	}
	if (s->state != SMTP_S_IDLE) {
		smtp_reply(s, 503, "5.5.1", "AUTH is not allowed during a mail "
					    "transaction");
		smtp_count_error(s);
		return;
	}
	if (args[0] == '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism "
					    "[initial-response]");
		smtp_count_error(s);
		return;
	}
	if (!client_plaintext_allowed(c)) {
		smtp_reply(s, 538, "5.7.11", "Encryption required for "
					     "requested authentication "
					     "mechanism; use STARTTLS");
		smtp_count_error(s);
		return;
	}
	char mech[32];
	const char *ir = strchr(args, ' ');
	size_t mlen = ir ? (size_t)(ir - args) : strlen(args);
	if (mlen >= sizeof(mech)) {
		smtp_sasl_result(s, SASL_UNSUPPORTED, NULL);
		return;
	}
	memcpy(mech, args, mlen);
	mech[mlen] = '\0';
	const char *challenge = "";
	int rc = client_sasl_start(c, mech, ir ? ir + 1 : NULL,
				   ir ? strlen(ir + 1) : 0, &challenge);
	smtp_sasl_result(s, rc, challenge);
}

void
smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
	const char *challenge = "";
	int rc = client_sasl_step(s->c, line, len, &challenge);
	smtp_sasl_result(s, rc, challenge);
}

void
smtp_auth_failed(struct client *c, enum login_failure why, const char *msg)
{
	struct smtp_session *s = smtp_session(c);
	c->user[0] = '\0';
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		smtp_reply(s, 535, "5.7.8", "Authentication credentials "
					    "invalid");
		smtp_count_error(s);
		return;
	case LOGIN_FAIL_TEMPORARY:
		smtp_reply(s, 454, "4.7.0", "Temporary authentication "
					    "failure; try again later");
		return;
	case LOGIN_FAIL_DISABLED:
		smtp_reply(s, 535, "5.7.13", "%s",
			   msg ? msg : "This account is disabled");
		smtp_count_error(s);
		return;
	case LOGIN_FAIL_PRIVILEGED:
		smtp_reply(s, 535, "5.7.8", "Anonymous, guest and administrator "
					    "accounts cannot use SMTP "
					    "submission");
		smtp_count_error(s);
		return;
	case LOGIN_FAIL_LIMIT:
		smtp_reply(s, 454, "4.7.0", "Too many connections for this "
					    "account");
		return;
	case LOGIN_FAILURE_COUNT:
		break;
	}
}

void
smtp_auth_logged_in(struct client *c)
{
	struct smtp_session *s = smtp_session(c);
	s->authenticated = 1;
	s->login_at = uv_hrtime() / 1000000;
	smtp_reply(s, 235, "2.7.0", "Authentication successful");
}
