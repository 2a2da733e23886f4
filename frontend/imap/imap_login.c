/* imap_login.c - IMAP4 before login: CAPABILITY, NOOP, ID, STARTTLS,
 * LOGIN, AUTHENTICATE, LOGOUT.  After a successful login the backend
 * answers the LOGIN/AUTHENTICATE tag itself, with its capabilities. */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/imap_parser.h"
#include "common/log.h"

struct imap_login_cmd {
	const char *name;
	void (*func)(struct client *c, const char *tag,
		     const struct imap_arg *args, unsigned argc);
};

/* What this code implements before login and a backend must also offer
 * after it to be announced: the pre-login list is a subset of the
 * post-login one, apart from STARTTLS, AUTH=, LOGINDISABLED and SASL-IR
 * (which only make sense before login). */
static const char *imap_shared_caps[] = {"IMAP4rev1", "LITERAL+", "ID"};
#define IMAP_CAP_LITERAL 1 /* LITERAL+, or LITERAL- as configured */

static void
imap_capability_string(struct client *c, char *out, size_t outsize)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0;
	     i < sizeof(imap_shared_caps) / sizeof(imap_shared_caps[0]); i++) {
		const char *cap = imap_shared_caps[i];
		if (i == IMAP_CAP_LITERAL && !c->fe->cfg.limits_literal_plus)
			cap = "LITERAL-";
		/* IMAP4rev1 always: a backend without it is not one. */
		if (i > 0 && !link_pool_backends_offer(c->fe, cap))
			continue;
		used += (size_t)snprintf(out + used, outsize - used, "%s%s",
					 used ? " " : "", cap);
	}
	snprintf(out + used, outsize - used, " SASL-IR%s%s",
		 !c->tls ? " STARTTLS" : "",
		 client_plaintext_allowed(c) ? " AUTH=PLAIN AUTH=LOGIN"
					     : " LOGINDISABLED");
}

static void
imap_greet(struct client *c)
{
	char caps[256];
	if (!c->fe->cfg.frontend_imap_enabled) {
		client_printf(c, "* BYE [UNAVAILABLE] IMAP4 is not offered on "
				 "this server.\r\n");
		client_close(c, "imap disabled");
		return;
	}
	imap_capability_string(c, caps, sizeof(caps));
	client_printf(c, "* OK [CAPABILITY %s] Portico ready.\r\n", caps);
}

static void
cmd_capability(struct client *c, const char *tag, const struct imap_arg *args,
	       unsigned argc)
{
	char caps[256];
	if (argc != 0) {
		client_bad_command(c);
		client_printf(c, "%s BAD CAPABILITY takes no arguments\r\n",
			      tag);
		return;
	}
	imap_capability_string(c, caps, sizeof(caps));
	client_printf(c, "* CAPABILITY %s\r\n%s OK Capability completed.\r\n",
		      caps, tag);
}

static void
cmd_noop(struct client *c, const char *tag, const struct imap_arg *args,
	 unsigned argc)
{
	client_printf(c, "%s OK NOOP completed.\r\n", tag);
}

static void
cmd_id(struct client *c, const char *tag, const struct imap_arg *args,
       unsigned argc)
{
	if (argc != 1 ||
	    (!imap_arg_is_nil(&args[0]) && args[0].type != IMAP_ARG_LIST)) {
		client_bad_command(c);
		client_printf(c, "%s BAD ID takes a list or NIL\r\n", tag);
		return;
	}
	/* the backend matches it against imap.client_capabilities_off */
	imap_id_client(&args[0], c->client_id, sizeof(c->client_id));
	client_printf(c, "* ID (\"name\" \"Portico\" \"vendor\" \"Portico\")\r\n"
			 "%s OK ID completed.\r\n",
		      tag);
}

static void
cmd_logout(struct client *c, const char *tag, const struct imap_arg *args,
	   unsigned argc)
{
	client_printf(c, "* BYE Logging out\r\n%s OK Logout completed.\r\n",
		      tag);
	client_close(c, "logout");
}

static void
cmd_starttls(struct client *c, const char *tag, const struct imap_arg *args,
	     unsigned argc)
{
	if (c->tls) {
		client_bad_command(c);
		client_printf(c, "%s BAD TLS is already active.\r\n", tag);
		return;
	}
	if (argc != 0) {
		client_bad_command(c);
		client_printf(c, "%s BAD STARTTLS takes no arguments\r\n", tag);
		return;
	}
	client_printf(c, "%s OK Begin TLS negotiation now.\r\n", tag);
	client_start_tls(c);
}

static void
cmd_login(struct client *c, const char *tag, const struct imap_arg *args,
	  unsigned argc)
{
	if (argc != 2 || !imap_arg_is_astring(&args[0]) ||
	    !imap_arg_is_astring(&args[1])) {
		client_bad_command(c);
		client_printf(c, "%s BAD LOGIN expects user name and "
				 "password\r\n",
			      tag);
		return;
	}
	if (!client_plaintext_allowed(c)) {
		client_printf(c, "%s NO [PRIVACYREQUIRED] Plain-text login is "
				 "disabled on connections without TLS; use "
				 "STARTTLS.\r\n",
			      tag);
		return;
	}
	if (strlen(args[0].str) != args[0].len ||
	    strlen(args[1].str) != args[1].len) {
		client_printf(c, "%s NO [AUTHENTICATIONFAILED] "
				 "Authentication failed.\r\n",
			      tag);
		return;
	}
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	client_login(c, args[0].str, args[1].str);
}

static void
imap_sasl_result(struct client *c, int rc, const char *challenge)
{
	switch (rc) {
	case SASL_OK:
		break;
	case SASL_CONTINUE:
		c->sasl_wait = 1;
		lp_set_mode(&c->lp, LP_MODE_LINE);
		client_printf(c, "+ %s\r\n", challenge);
		return;
	case SASL_MALFORMED:
		client_bad_command(c);
		client_printf(c, "%s BAD Invalid SASL response.\r\n", c->tag);
		break;
	case SASL_AUTHZ:
		client_printf(c, "%s NO [AUTHORIZATIONFAILED] Authorization "
				 "identity must equal the login name.\r\n",
			      c->tag);
		break;
	case SASL_UNSUPPORTED:
		client_printf(c, "%s NO [CANNOT] Unsupported authentication "
				 "mechanism.\r\n",
			      c->tag);
		break;
	case SASL_CANCELLED:
		client_printf(c, "%s BAD Authentication cancelled.\r\n",
			      c->tag);
		break;
	}
	c->sasl_wait = 0;
	lp_set_mode(&c->lp, LP_MODE_IMAP);
}

static void
imap_sasl_response(struct client *c, const char *line, size_t len)
{
	const char *challenge = "";
	int rc = client_sasl_step(c, line, len, &challenge);
	imap_sasl_result(c, rc, challenge);
}

static void
cmd_authenticate(struct client *c, const char *tag,
		 const struct imap_arg *args, unsigned argc)
{
	if (argc < 1 || argc > 2 || args[0].type != IMAP_ARG_ATOM ||
	    (argc == 2 && args[1].type != IMAP_ARG_ATOM)) {
		client_bad_command(c);
		client_printf(c, "%s BAD AUTHENTICATE expects a mechanism\r\n",
			      tag);
		return;
	}
	if (!client_plaintext_allowed(c)) {
		client_printf(c, "%s NO [PRIVACYREQUIRED] Plain-text "
				 "authentication is disabled on connections "
				 "without TLS; use STARTTLS.\r\n",
			      tag);
		return;
	}
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	const char *challenge = "";
	int rc = client_sasl_start(c, args[0].str,
				   argc == 2 ? args[1].str : NULL,
				   argc == 2 ? args[1].len : 0, &challenge);
	imap_sasl_result(c, rc, challenge);
}

/* clang-format off */
static const struct imap_login_cmd imap_login_cmds[] = {
	{ "CAPABILITY",   cmd_capability },
	{ "NOOP",         cmd_noop },
	{ "ID",           cmd_id },
	{ "LOGOUT",       cmd_logout },
	{ "STARTTLS",     cmd_starttls },
	{ "LOGIN",        cmd_login },
	{ "AUTHENTICATE", cmd_authenticate },
};
/* clang-format on */

static void
imap_command(struct client *c, const char *line, size_t len)
{
	if (c->sasl_wait) {
		imap_sasl_response(c, line, len);
		return;
	}
	struct arena a;
	struct imap_arg *args;
	unsigned argc;
	const char *err;
	char tag[128];
	struct imap_parse_limits lim = {8, 64,
					c->fe->cfg.limits_prelogin_max_line};
	arena_init(&a, 1024);
	a.secret = 1; /* may hold a password */
	lp_tag(line, len, tag, sizeof(tag));
	if (imap_parse(line, len, &a, &lim, &args, &argc, &err) < 0) {
		client_bad_command(c);
		client_printf(c, "%s BAD %s\r\n", tag, err);
		arena_free(&a);
		return;
	}
	if (strcmp(tag, "*") == 0 || argc < 2 || args[1].type != IMAP_ARG_ATOM) {
		client_bad_command(c);
		client_printf(c, "%s BAD %s\r\n", tag,
			      argc < 2 ? "Missing command" : "Invalid tag");
		arena_free(&a);
		return;
	}
	for (size_t i = 0; i < sizeof(imap_login_cmds) / sizeof(imap_login_cmds[0]);
	     i++) {
		if (strcasecmp(imap_login_cmds[i].name, args[1].str) == 0) {
			imap_login_cmds[i].func(c, tag, args + 2, argc - 2);
			arena_free(&a);
			return;
		}
	}
	client_bad_command(c);
	client_printf(c, "%s BAD Command unknown or not allowed before "
			 "authentication.\r\n",
		      tag);
	arena_free(&a);
}

static void
imap_input_error(struct client *c, const char *line, size_t len,
		 const char *msg, int fatal)
{
	char tag[128];
	if (fatal) {
		client_printf(c, "* BYE %s\r\n", msg);
		return;
	}
	if (c->sasl_wait) {
		c->sasl_wait = 0;
		lp_set_mode(&c->lp, LP_MODE_IMAP);
		client_printf(c, "%s BAD %s\r\n", c->tag, msg);
		return;
	}
	lp_tag(line, len, tag, sizeof(tag));
	client_printf(c, "%s BAD %s\r\n", tag, msg);
}

static void
imap_continuation(struct client *c)
{
	client_printf(c, "+ OK\r\n");
}

static void
imap_login_failed(struct client *c, enum login_failure why, const char *msg)
{
	switch (why) {
	case LOGIN_FAIL_CREDENTIALS:
		client_printf(c, "%s NO [AUTHENTICATIONFAILED] Authentication "
				 "failed.\r\n",
			      c->tag);
		return;
	case LOGIN_FAIL_TEMPORARY:
		client_printf(c, "%s NO [UNAVAILABLE] %s\r\n", c->tag,
			      msg ? msg
				  : "Authentication service temporarily "
				    "unavailable; try again later.");
		return;
	case LOGIN_FAIL_DISABLED:
	case LOGIN_FAIL_PRIVILEGED:
		client_printf(c, "%s NO [AUTHORIZATIONFAILED] %s.\r\n", c->tag,
			      msg ? msg : "Login not allowed");
		return;
	case LOGIN_FAIL_LIMIT:
		client_printf(c, "%s NO [LIMIT] %s.\r\n", c->tag,
			      msg ? msg : "Too many connections");
		return;
	case LOGIN_FAILURE_COUNT:
		break;
	}
	abort();
}

static void
imap_bye_unavailable(struct client *c, const char *msg)
{
	client_printf(c, "* BYE [UNAVAILABLE] %s\r\n", msg);
}

static void
imap_timeout(struct client *c)
{
	client_printf(c, "* BYE Disconnected for inactivity.\r\n");
}

static void
imap_login_expired(struct client *c)
{
	client_printf(c, "* BYE Login time limit reached.\r\n");
}

const struct client_proto imap_login_proto = {
    .name = "imap",
    .mode = LP_MODE_IMAP,
    .greet = imap_greet,
    .command = imap_command,
    .input_error = imap_input_error,
    .continuation = imap_continuation,
    .login_failed = imap_login_failed,
    .bye_unavailable = imap_bye_unavailable,
    .timeout = imap_timeout,
    .login_expired = imap_login_expired,
    .kick = client_park_kick,
};
