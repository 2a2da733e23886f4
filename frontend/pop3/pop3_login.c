/* pop3_login.c - POP3 in the AUTHORIZATION state: CAPA, STLS, USER,
 * PASS, AUTH, QUIT (RFC 1939, 2449, 2595, 5034).  After a successful
 * login the backend sends the +OK. */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

struct pop3_login_cmd {
	const char *name;
	void (*func)(struct client *c, const char *args);
};

static void
pop3_greet(struct client *c)
{
	if (!c->fe->cfg.frontend_pop3_enabled) {
		client_printf(c, "-ERR [SYS/PERM] POP3 is not offered on this "
				 "server.\r\n");
		client_close(c, "pop3 disabled");
		return;
	}
	client_printf(c, "+OK Portico ready.\r\n");
}

static void
cmd_capa(struct client *c, const char *args)
{
	const struct config *cfg = &c->fe->cfg;
	char expire[32];
	if (strcasecmp(cfg->pop3_expire, "never") == 0)
		snprintf(expire, sizeof(expire), "NEVER");
	else
		snprintf(expire, sizeof(expire), "%s", cfg->pop3_expire);
	client_printf(
	    c,
	    "+OK Capability list follows.\r\n"
	    "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
	    "AUTH-RESP-CODE\r\nPIPELINING\r\n"
	    "EXPIRE %s\r\nLOGIN-DELAY %lld\r\n%s%s"
	    "IMPLEMENTATION Portico\r\n.\r\n",
	    expire, (long long)cfg->pop3_login_delay,
	    client_plaintext_allowed(c) ? "USER\r\nSASL PLAIN LOGIN\r\n" : "",
	    !c->tls ? "STLS\r\n" : "");
}

static void
cmd_stls(struct client *c, const char *args)
{
	if (c->tls) {
		client_bad_command(c);
		client_printf(c, "-ERR TLS is already active.\r\n");
		return;
	}
	if (args != NULL) {
		client_bad_command(c);
		client_printf(c, "-ERR STLS takes no arguments.\r\n");
		return;
	}
	client_printf(c, "+OK Begin TLS negotiation now.\r\n");
	client_start_tls(c);
}

static int
pop3_plaintext_check(struct client *c)
{
	if (client_plaintext_allowed(c))
		return 1;
	client_printf(c, "-ERR [AUTH] Plain-text authentication is disabled "
			 "on connections without TLS; use STLS.\r\n");
	return 0;
}

static void
cmd_user(struct client *c, const char *args)
{
	if (args == NULL || args[0] == '\0') {
		client_bad_command(c);
		client_printf(c, "-ERR USER expects a user name.\r\n");
		return;
	}
	if (!pop3_plaintext_check(c))
		return;
	if (strlen(args) >= sizeof(c->user)) {
		client_bad_command(c);
		client_printf(c, "-ERR User name too long.\r\n");
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", args);
	client_printf(c, "+OK\r\n");
}

static void
cmd_pass(struct client *c, const char *args)
{
	if (c->user[0] == '\0') {
		client_bad_command(c);
		client_printf(c, "-ERR Send USER first.\r\n");
		return;
	}
	if (!pop3_plaintext_check(c))
		return;
	char user[sizeof(c->user)];
	snprintf(user, sizeof(user), "%s", c->user);
	client_login(c, user, args ? args : "");
}

static void
pop3_sasl_result(struct client *c, int rc, const char *challenge)
{
	c->sasl_wait = 0;
	switch (rc) {
	case SASL_OK:
		return;
	case SASL_CONTINUE:
		c->sasl_wait = 1;
		client_printf(c, "+ %s\r\n", challenge);
		return;
	case SASL_MALFORMED:
		client_bad_command(c);
		client_printf(c, "-ERR Invalid SASL response.\r\n");
		return;
	case SASL_AUTHZ:
		client_printf(c, "-ERR [AUTH] Authorization identity must "
				 "equal the login name.\r\n");
		return;
	case SASL_UNSUPPORTED:
		client_bad_command(c);
		client_printf(c, "-ERR Unsupported authentication "
				 "mechanism.\r\n");
		return;
	case SASL_CANCELLED:
		client_printf(c, "-ERR Authentication cancelled.\r\n");
		return;
	}
}

static void
pop3_sasl_response(struct client *c, const char *line, size_t len)
{
	const char *challenge = "";
	int rc = client_sasl_step(c, line, len, &challenge);
	pop3_sasl_result(c, rc, challenge);
}

static void
cmd_auth(struct client *c, const char *args)
{
	if (args == NULL) {
		client_printf(c, "+OK\r\n%s.\r\n",
			      client_plaintext_allowed(c) ? "PLAIN\r\nLOGIN\r\n"
							  : "");
		return;
	}
	char mech[32];
	const char *ir = strchr(args, ' ');
	size_t mlen = ir ? (size_t)(ir - args) : strlen(args);
	if (mlen >= sizeof(mech)) {
		client_bad_command(c);
		client_printf(c,
			      "-ERR Unsupported authentication mechanism.\r\n");
		return;
	}
	memcpy(mech, args, mlen);
	mech[mlen] = '\0';
	if (!pop3_plaintext_check(c))
		return;
	const char *challenge = "";
	int rc = client_sasl_start(c, mech, ir ? ir + 1 : NULL,
				   ir ? strlen(ir + 1) : 0, &challenge);
	pop3_sasl_result(c, rc, challenge);
}

static void
cmd_quit(struct client *c, const char *args)
{
	client_printf(c, "+OK Bye.\r\n");
	client_close(c, "quit");
}

/* clang-format off */
static const struct pop3_login_cmd pop3_login_cmds[] = {
	{ "CAPA", cmd_capa },
	{ "STLS", cmd_stls },
	{ "USER", cmd_user },
	{ "PASS", cmd_pass },
	{ "AUTH", cmd_auth },
	{ "QUIT", cmd_quit },
};
/* clang-format on */

static void
pop3_command(struct client *c, const char *line, size_t len)
{
	/* A NUL would cut a user name or password short: refuse it. */
	if (memchr(line, '\0', len) != NULL) {
		c->sasl_wait = 0;
		client_bad_command(c);
		client_printf(c, "-ERR NUL byte in command.\r\n");
		return;
	}
	if (c->sasl_wait) {
		pop3_sasl_response(c, line, len);
		return;
	}
	char name[16];
	const char *sp = memchr(line, ' ', len);
	size_t nlen = sp ? (size_t)(sp - line) : len;
	const char *args = sp ? sp + 1 : NULL;
	if (nlen == 0 || nlen >= sizeof(name)) {
		client_bad_command(c);
		client_printf(c, "-ERR Unknown command.\r\n");
		return;
	}
	memcpy(name, line, nlen);
	name[nlen] = '\0';
	for (size_t i = 0;
	     i < sizeof(pop3_login_cmds) / sizeof(pop3_login_cmds[0]); i++) {
		if (strcasecmp(pop3_login_cmds[i].name, name) == 0) {
			pop3_login_cmds[i].func(c, args);
			return;
		}
	}
	if (strcasecmp(name, "STAT") == 0 || strcasecmp(name, "LIST") == 0 ||
	    strcasecmp(name, "RETR") == 0 || strcasecmp(name, "UIDL") == 0 ||
	    strcasecmp(name, "DELE") == 0 || strcasecmp(name, "TOP") == 0)
		client_printf(c, "-ERR Authentication required.\r\n");
	else
		client_printf(c, "-ERR Unknown command.\r\n");
	client_bad_command(c);
}

static void
pop3_input_error(struct client *c, const char *line, size_t len,
		 const char *msg, int fatal)
{
	c->sasl_wait = 0;
	/* "[TOOBIG] ...": IMAP's response code, not POP3's (RFC 2449 8). */
	client_printf(c, "-ERR %s\r\n", lp_error_text(msg));
}

static void
pop3_continuation(struct client *c)
{
	abort(); /* LINE mode has no literals */
}

/* A backend's refusal code as a POP3 response code (RFC 2449, 3206): a
 * POP3 one as it is, an IMAP one (UNAVAILABLE at a drain or a kick) or
 * none SYS/TEMP. */
static const char *
pop3_code(const char *code)
{
	if (strcmp(code, "IN-USE") == 0 || strcmp(code, "LOGIN-DELAY") == 0 ||
	    strcmp(code, "SYS/TEMP") == 0 || strcmp(code, "SYS/PERM") == 0)
		return code;
	return "SYS/TEMP";
}

static void
pop3_login_failed(struct client *c, enum login_failure why, const char *msg)
{
	c->user[0] = '\0';
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		client_printf(c, "-ERR [AUTH] Authentication failed.\r\n");
		return;
	case LOGIN_FAIL_TEMPORARY:
		client_printf(c, "-ERR [%s] %s\r\n", pop3_code(c->fail_code),
			      msg ? msg
				  : "Authentication service temporarily "
				    "unavailable; try again later.");
		return;
	case LOGIN_FAIL_DISABLED:
	case LOGIN_FAIL_PRIVILEGED:
		client_printf(c, "-ERR [AUTH] %s.\r\n",
			      msg ? msg : "Login not allowed");
		return;
	case LOGIN_FAIL_LIMIT:
		client_printf(c, "-ERR [SYS/TEMP] %s.\r\n",
			      msg ? msg : "Too many connections");
		return;
	case LOGIN_FAILURE_COUNT:
		break;
	}
	abort();
}

static void
pop3_bye_unavailable(struct client *c, const char *msg)
{
	client_printf(c, "-ERR [SYS/TEMP] %s\r\n", msg);
}

static void
pop3_timeout(struct client *c)
{
	client_printf(c, "-ERR Disconnected for inactivity.\r\n");
}

static void
pop3_login_expired(struct client *c)
{
	client_printf(c, "-ERR Login time limit reached.\r\n");
}

const struct client_proto pop3_login_proto = {
    .name = "pop3",
    .mode = LP_MODE_LINE,
    .greet = pop3_greet,
    .command = pop3_command,
    .input_error = pop3_input_error,
    .continuation = pop3_continuation,
    .login_failed = pop3_login_failed,
    .bye_unavailable = pop3_bye_unavailable,
    .timeout = pop3_timeout,
    .login_expired = pop3_login_expired,
};
