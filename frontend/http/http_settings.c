/* http_settings.c - the page "Settings for POP or IMAP access".
 *
 * GET shows a sign-in form; POST (mail address or login name, mail
 * password) checks the password like an IMAP login does: refused
 * account names, the brute-force penalties (penalty.c), the
 * authentication cache, then a search and a bind as the user
 * through this loop's directory connections; account state and
 * privileged accounts are refused the same way.  A signed-in user sees
 * the internal and external servers, ports and encryption of every
 * protocol offered to them, entries for their own site included (the
 * site of their mailbox server, from LDAP).
 *
 * A signed-in user also sees the automatic reply (out of office) the
 * directory holds, and may change it with a form that asks for the
 * password again (http_auto_reply.c): the user is signed in anew, checked
 * as above, and the directory changes the entry with the user's own
 * rights.  Nothing else changes state: no session, no cookie.  A form
 * posted from another site is still refused before its password is
 * looked at (a
 * hostile page could otherwise make a visitor's browser post wrong
 * passwords and so add penalty delay to someone's (address, login)
 * pair): a POST with Sec-Fetch-Site: cross-site, or with an Origin that
 * is not the request's own (https over TLS, http otherwise, host and
 * port of the Host header).  A POST without Origin (older clients,
 * scripts) is served, and so is one whose Origin is "null" (withheld by
 * the browser) with Sec-Fetch-Site: same-origin.  Over plain HTTP the password
 * is refused unless http.plaintext_login allows it; then the https:// origin of
 * the Host counts as the request's own too (a TLS-terminating proxy in front).
 * Every value echoed is HTML-escaped; the page has no script, and its
 * Content-Security-Policy forbids any.
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "frontend/frontend.h"

#define SETTINGS_TITLE "Settings for POP or IMAP access"

/* Referrer-Policy same-origin, not no-referrer: under no-referrer a
 * browser sends "Origin: null" with the page's own form (Fetch,
 * "serializing a request origin"), which settings_same_origin() takes
 * only with Sec-Fetch-Site: same-origin (older browsers send none). */
static const char settings_headers[] =
    "Content-Security-Policy: default-src 'none'; "
    "style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: same-origin\r\n";

struct settings_login {
	struct frontend *fe;
	struct http_conn *hc;   /* NULL once the connection has gone */
	uv_timer_t delay;       /* penalty; cached answers */
	struct dir_req *dreq;
	char user[256];
	char peer[64];
	struct buf secret;
	struct policy_login_keys keys;
	struct dir_user duser;
	int trusted;
	int cached;             /* 1 ok, 0 fail, -1 not cached */
	int site;               /* of the user's mailbox server, 0: unknown */
	/* The automatic reply: the form's change to make (set_ar), then
	   the entry's as read for the page (ar), and what to say */
	int set_ar, ar_changed, ar_saved, ar_read;
	struct dir_auto_reply ar_set;
	struct dir_auto_reply *ar;
	char ar_message[200];
	/* the entry's forwarding, shown (the directory's managers set it) */
	struct dir_forward *fw;
};

/* -- HTML -----------------------------------------------------------------*/

/* Where the user's mail is forwarded (docs/TRANSPORT.md, "Forwarding"):
 * shown, not changed here. */
static void
settings_forward(struct buf *b, const struct dir_forward *fw)
{
	int on = fw != NULL && fw->off == NULL && fw->n > 0;
	buf_printf(b,
		   "<section id=\"forwarding\">\n<h2>Forwarding</h2>\n"
		   "<p id=\"forward-state\" data-state=\"%s\">",
		   on ? "on" : "off");
	if (!on) {
		buf_append_str(b, "Your mail is not forwarded.");
	} else {
		buf_append_str(b, "Your mail is forwarded to ");
		for (size_t i = 0; i < fw->n; i++) {
			if (i > 0)
				buf_append_str(b,
					       i + 1 == fw->n ? " and " : ", ");
			buf_append_str(b, "<strong>");
			http_escape(b, fw->to[i]);
			buf_append_str(b, "</strong>");
		}
		buf_append_str(b, fw->keep ? "; a copy stays here."
					   : "; no copy stays here (only what "
					     "cannot be forwarded).");
	}
	buf_append_str(b, "</p>\n</section>\n");
}

static void
settings_head(struct buf *b, const struct frontend *fe)
{
	buf_append_str(b,
		       "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		       "<meta charset=\"utf-8\">\n"
		       "<meta name=\"viewport\" content=\"width=device-width, "
		       "initial-scale=1\">\n"
		       "<title>" SETTINGS_TITLE "</title>\n"
		       "<style>\n"
		       "body{font-family:sans-serif;margin:2em auto;"
		       "max-width:46em;padding:0 1em;color:#222}\n"
		       "h1{font-size:1.5em}h2{font-size:1.15em;"
		       "margin-top:1.5em}\n"
		       "label{display:block;margin-top:.8em}\n"
		       "input{font-size:1em;padding:.3em;width:20em;"
		       "max-width:100%}\n"
		       "input[type=checkbox]{width:auto}\n"
		       "textarea{font-size:1em;width:30em;max-width:100%}\n"
		       "button{margin-top:1em;font-size:1em;padding:.4em 1em}\n"
		       "table{border-collapse:collapse;margin-top:.5em}\n"
		       "th,td{border:1px solid #bbb;padding:.3em .7em;"
		       "text-align:left}\n"
		       ".message{padding:.6em;border:1px solid #c66;"
		       "background:#fee}\n"
		       ".done{padding:.6em;border:1px solid #6a6;"
		       "background:#efe}\n"
		       ".note{color:#555}\n"
		       "</style>\n</head>\n<body>\n<main>\n"
		       "<h1>" SETTINGS_TITLE "</h1>\n"
		       "<p class=\"service\">");
	http_escape(b, fe->cfg.http_display_name);
	buf_append_str(b, "</p>\n");
}

static void
settings_tail(struct buf *b)
{
	buf_append_str(b, "</main>\n</body>\n</html>\n");
}

static int
settings_login_allowed(const struct frontend *fe,
		       const struct http_request *req)
{
	return req->tls || fe->cfg.http_plaintext_login;
}

/* The sign-in form, with a message (may be NULL) and the login name
 * typed before (may be ""). */
static void
settings_form(struct buf *b, const struct frontend *fe,
	      const struct http_request *req, const char *message,
	      const char *user)
{
	if (message != NULL) {
		buf_append_str(b, "<p class=\"message\" id=\"message\">");
		http_escape(b, message);
		buf_append_str(b, "</p>\n");
	}
	if (!settings_login_allowed(fe, req)) {
		buf_append_str(b, "<p class=\"message\" id=\"insecure\">"
				  "Signing in needs a secure connection: "
				  "open this page with https://.</p>\n");
		return;
	}
	buf_append_str(b,
		       "<p>Sign in with your mail address (or login name) and "
		       "your mail password to see the servers, ports and "
		       "encryption to enter in your mail program.</p>\n"
		       "<form method=\"post\" action=\"/settings\">\n"
		       "<label for=\"user\">Mail address or login name</label>\n"
		       "<input id=\"user\" name=\"user\" type=\"text\" "
		       "autocomplete=\"username\" required value=\"");
	http_escape(b, user);
	buf_append_str(b, "\">\n"
			  "<label for=\"password\">Password</label>\n"
			  "<input id=\"password\" name=\"password\" "
			  "type=\"password\" autocomplete=\"current-password\" "
			  "required>\n"
			  "<button type=\"submit\">Show my settings</button>\n"
			  "</form>\n");
}

static void
settings_send(struct http_conn *hc, int status, struct buf *b)
{
	settings_tail(b);
	http_respond(hc, status, "text/html; charset=utf-8", buf_ptr(b),
		     buf_used(b), settings_headers);
	buf_free(b);
}

static void
settings_form_page(struct frontend *fe, struct http_conn *hc,
		   const struct http_request *req, int status,
		   const char *message, const char *user)
{
	struct buf b = BUF_INIT;
	settings_head(&b, fe);
	settings_form(&b, fe, req, message, user);
	settings_send(hc, status, &b);
}

static void
settings_rows(struct buf *b, const struct connset *set, int site,
	      const char *where, const char *label, enum connset_proto p,
	      unsigned *rows)
{
	for (unsigned i = 0; i < set->n; i++) {
		const struct connset_entry *e = &set->e[i];
		if (e->site != 0 && e->site != site)
			continue;
		buf_printf(b,
			   "<tr class=\"setting\" data-protocol=\"%s\" "
			   "data-where=\"%s\"><td>%s</td><td class=\"host\">",
			   connset_proto_name(p), where, label);
		http_escape(b, e->host);
		buf_printf(b,
			   "</td><td class=\"port\">%u</td>"
			   "<td class=\"encryption\">%s</td></tr>\n",
			   e->port, connset_enc_label(e->enc));
		(*rows)++;
	}
}

static void
settings_protocol(struct buf *b, const struct frontend *fe, int site,
		  enum connset_proto p, const char *title, int offered,
		  int for_user)
{
	const struct connsets *sets = fe->connsets;
	if (!offered || !connsets_shown(sets, p))
		return;
	buf_printf(b, "<section id=\"%s\">\n<h2>%s</h2>\n",
		   connset_proto_name(p), title);
	if (!for_user) {
		buf_printf(b, "<p class=\"note\">%s is not enabled for your "
			      "account.</p>\n</section>\n",
			   connset_proto_name(p));
		return;
	}
	struct buf rows = BUF_INIT;
	unsigned n = 0;
	settings_rows(&rows, &sets->internal[p], site, "internal",
		      "Inside the organisation's network", p, &n);
	settings_rows(&rows, &sets->external[p], site, "external",
		      "From anywhere else", p, &n);
	if (n == 0) {
		buf_append_str(b, "<p class=\"note\">No server is configured "
				  "for this protocol; ask your "
				  "administrator.</p>\n");
	} else {
		buf_append_str(b, "<table>\n<tr><th>Where you are</th>"
				  "<th>Server</th><th>Port</th>"
				  "<th>Encryption</th></tr>\n");
		buf_append(b, buf_ptr(&rows), buf_used(&rows));
		buf_append_str(b, "</table>\n");
	}
	buf_free(&rows);
	buf_append_str(b, "</section>\n");
}

/* A link to the configuration profile for Apple's Mail
 * (http_mobileconfig.c), for an account with a mail address and IMAP or
 * POP3, when the deployment has public settings for it. */
static void
settings_apple(struct buf *b, const struct frontend *fe,
	       const struct dir_user *u, int site)
{
	int imap = u->imap_enabled &&
		   http_public_settings(fe, CONNSET_IMAP)->n > 0;
	int pop3 = u->pop3_enabled &&
		   http_public_settings(fe, CONNSET_POP3)->n > 0;
	if ((!imap && !pop3) || !http_mail_address_valid(u->mail, NULL))
		return;
	buf_append_str(b, "<p id=\"apple\">On an iPhone, iPad or Mac, "
			  "<a href=\"/mail/apple.mobileconfig?emailaddress=");
	for (const unsigned char *p = (const unsigned char *)u->mail; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL)
			buf_append(b, p, 1);
		else
			buf_printf(b, "%%%02X", *p);
	}
	if (http_mobileconfig_site(fe, site))
		buf_printf(b, "&amp;site=%d", site);
	buf_printf(b,
		   "%s\">a configuration profile</a> sets up Mail for you "
		   "(%s); it asks for your password when you install it.</p>\n",
		   imap ? "" : "&amp;protocol=pop3", imap ? "IMAP" : "POP3");
}

static void
settings_result_page(struct settings_login *sl)
{
	struct frontend *fe = sl->fe;
	const struct config *cfg = &fe->cfg;
	const struct dir_user *u = &sl->duser;
	struct buf b = BUF_INIT;
	settings_head(&b, fe);
	buf_append_str(&b, "<p id=\"signed-in\">Signed in as <strong>");
	http_escape(&b, sl->user);
	buf_append_str(&b, "</strong>.  In your mail program, use the user "
			   "name <strong id=\"login\">");
	http_escape(&b, u->mail[0] ? u->mail : u->uid[0] ? u->uid : sl->user);
	buf_append_str(&b, "</strong> with your mail password, and these "
			   "servers:</p>\n");
	settings_protocol(&b, fe, sl->site, CONNSET_IMAP,
			  "IMAP (incoming mail, kept on the server)",
			  cfg->frontend_imap_enabled, u->imap_enabled);
	settings_protocol(&b, fe, sl->site, CONNSET_POP3,
			  "POP3 (incoming mail, downloaded)",
			  cfg->frontend_pop3_enabled, u->pop3_enabled);
	settings_protocol(&b, fe, sl->site, CONNSET_SMTP,
			  "SMTP (outgoing mail)", 1, 1);
	buf_append_str(&b, "<p class=\"note\">SSL/TLS: encrypted from the "
			   "start.  STARTTLS: the program switches to "
			   "encryption after connecting.</p>\n");
	settings_apple(&b, fe, u, sl->site);
	if (u->mail[0] != '\0' && cfg->lmtp_auto_reply_max_size > 0)
		http_auto_reply_section(&b, sl->user, sl->ar,
					sl->ar_message[0] ? sl->ar_message
							  : NULL,
					sl->ar_saved);
	if (u->mail[0] != '\0' && cfg->lmtp_forward_max_addresses > 0)
		settings_forward(&b, sl->fw);
	settings_send(sl->hc, 200, &b);
}

/* -- sign-in --------------------------------------------------------------*/

static void
settings_login_freed(uv_handle_t *h)
{
	struct settings_login *sl = h->data;
	buf_wipe(&sl->secret);
	OPENSSL_cleanse(&sl->keys, sizeof(sl->keys));
	free(sl->ar_set.text);
	free(sl->ar_set.subject);
	dir_auto_reply_free(&sl->ar);
	dir_forward_free(&sl->fw);
	free(sl);
}

static void
settings_login_end(struct settings_login *sl)
{
	if (sl->dreq != NULL) {
		dir_cancel(sl->dreq);
		sl->dreq = NULL;
	}
	sl->hc = NULL;
	buf_wipe(&sl->secret);
	uv_close((uv_handle_t *)&sl->delay, settings_login_freed);
}

/* The connection went away before the answer. */
static void
settings_login_cancel(void *arg)
{
	settings_login_end(arg);
}

static void
settings_refuse(struct settings_login *sl, int status, const char *message)
{
	struct http_conn *hc = sl->hc;
	struct http_request dummy;
	memset(&dummy, 0, sizeof(dummy));
	dummy.tls = 1; /* the form was acceptable for this request */
	settings_form_page(sl->fe, hc, &dummy, status, message, sl->user);
	settings_login_end(sl);
}

static void settings_next(struct settings_login *sl);

/* The automatic reply changed, or why not. */
static void
settings_changed_done(void *ctx, enum dir_result res,
		      const struct dir_user *u, const char *why)
{
	struct settings_login *sl = ctx;
	int on = sl->ar_set.text[0] != '\0';
	(void)u;
	sl->dreq = NULL;
	sl->ar_changed = 1;
	sl->ar_saved = res == DIR_OK && why == NULL;
	if (sl->ar_saved && on) {
		/* shown as set: a replica read back may not have it yet */
		struct dir_auto_reply *c = calloc(1, sizeof(*c));
		if (c == NULL || (c->text = strdup(sl->ar_set.text)) == NULL ||
		    (c->subject = strdup(sl->ar_set.subject)) == NULL)
			abort();
		c->start = sl->ar_set.start;
		c->end = sl->ar_set.end;
		sl->ar = c;
	}
	if (sl->ar_saved) {
		log_info("http settings client=%s user=%s auto-reply %s",
			 sl->peer, sl->user, on ? "on" : "off");
		snprintf(sl->ar_message, sizeof(sl->ar_message), "%s",
			 on ? "Your automatic reply is saved."
			    : "Your automatic reply is off.");
	} else {
		const char *reason =
		    res == DIR_OK     ? why
		    : res == DIR_FAIL ? "the password is wrong"
				      : "the directory is unavailable; try "
					"again in a moment";
		log_warn("http settings client=%s user=%s auto-reply not "
			 "changed: %s",
			 sl->peer, sl->user, why ? why : reason);
		snprintf(sl->ar_message, sizeof(sl->ar_message),
			 "Your automatic reply was not changed: %s.", reason);
	}
	settings_next(sl);
}

/* The entry's automatic reply, for the page. */
static void
settings_ar_read(void *ctx, enum dir_result res, const struct dir_user *u,
		 const char *why)
{
	struct settings_login *sl = ctx;
	sl->dreq = NULL;
	sl->ar_read = 1;
	if (res == DIR_OK) {
		/* a change just saved is shown as set: a replica read back
		   may not have it yet */
		if (!sl->ar_saved)
			sl->ar = dir_auto_reply_copy(u);
		sl->fw = dir_forward_copy(u);
	} else
		log_info("http settings user=%s auto-reply not read: %s",
			 sl->user, why ? why : "");
	settings_next(sl);
}

/* Signed in: the change the form asks for, the automatic reply read,
 * then the page. */
static void
settings_next(struct settings_login *sl)
{
	struct frontend *fe = sl->fe;
	if (sl->set_ar && !sl->ar_changed) {
		sl->dreq = dir_authenticate_auto_reply(
		    fe->dir, sl->user, buf_ptr(&sl->secret), &sl->ar_set,
		    settings_changed_done, sl);
		buf_wipe(&sl->secret);
		return;
	}
	buf_wipe(&sl->secret);
	if (!sl->ar_read && sl->duser.mail[0] != '\0' &&
	    (fe->cfg.lmtp_auto_reply_max_size > 0 ||
	     fe->cfg.lmtp_forward_max_addresses > 0)) {
		sl->dreq = dir_lookup_recipient(fe->dir, sl->duser.mail,
						settings_ar_read, sl);
		return;
	}
	settings_result_page(sl);
	settings_login_end(sl);
}

static void
settings_backend_done(void *ctx, enum dir_result res,
		      const struct dir_backend *be, const char *why)
{
	struct settings_login *sl = ctx;
	sl->dreq = NULL;
	if (res == DIR_OK)
		sl->site = be->site;
	else
		log_info("http settings user=%s backend=%s site unknown: %s",
			 sl->user, sl->duser.mailbox_server, why ? why : "");
	settings_next(sl);
}

/* Whether any setting depends on the site. */
static int
settings_site_dependent(const struct connsets *sets)
{
	for (int p = 0; p < CONNSET_PROTO_COUNT; p++)
		for (unsigned i = 0; i < CONNSET_MAX; i++)
			if ((i < sets->internal[p].n &&
			     sets->internal[p].e[i].site != 0) ||
			    (i < sets->external[p].n &&
			     sets->external[p].e[i].site != 0))
				return 1;
	return 0;
}

static void
settings_auth_done(void *ctx, enum dir_result res, const struct dir_user *u,
		   const char *why)
{
	struct settings_login *sl = ctx;
	struct policy *policy = sl->fe->policy;
	int cached = sl->cached >= 0;
	sl->dreq = NULL;
	if (res != DIR_TEMPFAIL) {
		if (!cached)
			auth_cache_put(policy, &sl->keys, res == DIR_OK, u);
		if (!sl->trusted)
			penalty_record(policy, &sl->keys, res == DIR_FAIL, u);
	}
	const char *peer = sl->peer;
	if (res == DIR_TEMPFAIL)
		frontend_metrics_ldap_error(sl->fe, why);
	if (res != DIR_OK) {
		frontend_metrics_login(sl->fe, FM_PROTO_HTTP,
				       res == DIR_FAIL ? LOGIN_FAIL_CREDENTIALS
						       : LOGIN_FAIL_TEMPORARY);
		log_info("http settings client=%s user=%s login failed "
			 "result=%s cache=%s reason=\"%s\"",
			 peer, sl->user, res == DIR_FAIL ? "fail" : "tempfail",
			 cached ? "hit" : "miss", why ? why : "");
		if (res == DIR_FAIL)
			settings_refuse(sl, 403,
					"The mail address or the password is "
					"wrong.");
		else
			settings_refuse(sl, 503,
					"The directory is unavailable; try "
					"again in a moment.");
		return;
	}
	sl->duser = *u;
	if (u->account_state[0] != '\0' &&
	    strcasecmp(u->account_state, "active") != 0) {
		log_info("http settings client=%s user=%s refused: account %s",
			 peer, sl->user, u->account_state);
		frontend_metrics_login(sl->fe, FM_PROTO_HTTP,
				       LOGIN_FAIL_DISABLED);
		settings_refuse(sl, 403, "This account is disabled.");
		return;
	}
	if (client_entry_refused(sl->fe, u)) {
		log_info("http settings client=%s user=%s refused: privileged "
			 "account (directory)",
			 peer, sl->user);
		frontend_metrics_login(sl->fe, FM_PROTO_HTTP,
				       LOGIN_FAIL_PRIVILEGED);
		settings_refuse(sl, 403,
				"Anonymous, guest and administrator accounts "
				"cannot use POP3/IMAP4.");
		return;
	}
	frontend_metrics_login(sl->fe, FM_PROTO_HTTP, FM_LOGIN_OK);
	log_info("http settings client=%s user=%s authenticated cache=%s",
		 peer, sl->user, cached ? "hit" : "miss");
	if (settings_site_dependent(sl->fe->connsets) &&
	    u->mailbox_server[0] != '\0') {
		sl->dreq = dir_lookup_backend(sl->fe->dir, u->mailbox_server,
					      settings_backend_done, sl);
		return;
	}
	settings_next(sl);
}

static void
settings_cached_cb(uv_timer_t *t)
{
	struct settings_login *sl = t->data;
	settings_auth_done(sl, sl->cached ? DIR_OK : DIR_FAIL,
			   sl->cached ? &sl->duser : NULL,
			   sl->cached ? NULL : "invalid credentials (cached)");
}

static void
settings_auth_start(struct settings_login *sl)
{
	struct dir_user u;
	uint64_t at; /* (a page opens no session) */
	int hit = auth_cache_get(sl->fe->policy, &sl->keys, &u, &at);
	if (hit >= 0) {
		/* the change binds again with it */
		if (!sl->set_ar)
			buf_wipe(&sl->secret);
		sl->cached = hit;
		if (hit)
			sl->duser = u;
		uv_timer_start(&sl->delay, settings_cached_cb, 0, 0);
		return;
	}
	sl->cached = -1;
	sl->dreq = dir_authenticate(sl->fe->dir, sl->user,
				    buf_ptr(&sl->secret), settings_auth_done,
				    sl);
	if (!sl->set_ar)
		buf_wipe(&sl->secret);
}

static void
settings_auth_start_cb(uv_timer_t *t)
{
	settings_auth_start(t->data);
}

/* Whether the form was posted from this page's own origin, or by a
 * client that does not say (no Origin, no Sec-Fetch-Site). */
static int
settings_same_origin(const struct frontend *fe, const struct http_request *req)
{
	if (strcasecmp(req->fetch_site, "cross-site") == 0)
		return 0;
	if (!req->has_origin)
		return 1;
	/* "null": an origin the browser withholds (a privacy setting, a
	   redirect); Sec-Fetch-Site, which pages cannot set, still tells */
	if (strcmp(req->origin, "null") == 0)
		return strcasecmp(req->fetch_site, "same-origin") == 0;
	if (http_origin_matches(req->origin, req->tls ? "https" : "http",
				req->host))
		return 1;
	return !req->tls && fe->cfg.http_plaintext_login &&
	       http_origin_matches(req->origin, "https", req->host);
}

static void
settings_post(struct frontend *fe, struct http_conn *hc,
	      struct http_request *req)
{
	char user[256], password[1024];
	if (!settings_same_origin(fe, req)) {
		char origin[96], site[48];
		log_info("http settings client=%s refused: form from another "
			 "site origin=\"%s\" sec_fetch_site=\"%s\"",
			 req->peer_name,
			 log_sanitize(origin, sizeof(origin), req->origin,
				      strlen(req->origin), 80),
			 log_sanitize(site, sizeof(site), req->fetch_site,
				      strlen(req->fetch_site), 32));
		settings_form_page(fe, hc, req, 403,
				   "Your password was not checked: the form "
				   "was sent from another site.  Sign in on "
				   "this page.",
				   "");
		return;
	}
	if (!settings_login_allowed(fe, req)) {
		log_info("http settings client=%s refused: password over "
			 "plain HTTP",
			 req->peer_name);
		settings_form_page(fe, hc, req, 403,
				   "Your password was not checked: it must "
				   "not travel unencrypted.",
				   "");
		return;
	}
	if (strncasecmp(req->content_type,
			"application/x-www-form-urlencoded", 33) != 0) {
		settings_form_page(fe, hc, req, 415,
				   "Send the form as "
				   "application/x-www-form-urlencoded.",
				   "");
		return;
	}
	const char *body = buf_used(&req->body) ? buf_ptr(&req->body) : "";
	size_t len = buf_used(&req->body);
	int hu = http_param(body, len, "user", user, sizeof(user));
	int hp = http_param(body, len, "password", password,
			    sizeof(password));
	if (hu < 0 || hp < 0) {
		OPENSSL_cleanse(password, sizeof(password));
		settings_form_page(fe, hc, req, 400,
				   "The form could not be read.", "");
		return;
	}
	if (hu == 0 || hp == 0 || user[0] == '\0' || password[0] == '\0') {
		OPENSSL_cleanse(password, sizeof(password));
		settings_form_page(fe, hc, req, 400,
				   "Enter your mail address and your password.",
				   hu == 1 ? user : "");
		return;
	}
	/* The name as the directory compares it, as for mail logins. */
	char name[sizeof(user)];
	if (client_login_name(user, name, sizeof(name)) < 0) {
		OPENSSL_cleanse(password, sizeof(password));
		settings_form_page(fe, hc, req, 400,
				   "Enter your mail address and your password.",
				   "");
		return;
	}
	memcpy(user, name, sizeof(user));
	if (client_privileged(fe, user)) {
		OPENSSL_cleanse(password, sizeof(password));
		log_info("http settings client=%s user=%s refused: privileged "
			 "account",
			 req->peer_name, user);
		frontend_metrics_login(fe, FM_PROTO_HTTP,
				       LOGIN_FAIL_PRIVILEGED);
		settings_form_page(fe, hc, req, 403,
				   "Anonymous, guest and administrator "
				   "accounts cannot use POP3/IMAP4.",
				   user);
		return;
	}
	struct settings_login *sl = calloc(1, sizeof(*sl));
	if (sl == NULL)
		abort();
	char action[16];
	if (http_param(body, len, "action", action, sizeof(action)) == 1 &&
	    strcmp(action, "auto-reply") == 0) {
		const char *msg;
		if (http_auto_reply_form(fe, body, len, &sl->ar_set, &msg) <
		    0) {
			OPENSSL_cleanse(password, sizeof(password));
			free(sl);
			settings_form_page(fe, hc, req, 400, msg, user);
			return;
		}
		sl->set_ar = 1;
	}
	sl->fe = fe;
	sl->hc = hc;
	sl->cached = -1;
	snprintf(sl->user, sizeof(sl->user), "%s", user);
	snprintf(sl->peer, sizeof(sl->peer), "%s", req->peer_name);
	uv_timer_init(fe->loop, &sl->delay);
	sl->delay.data = sl;
	const struct sockaddr *sa = (const struct sockaddr *)&req->peer;
	sl->trusted = policy_trusted(fe->policy, sa);
	policy_login_keys(fe->policy, sa, user, password, &sl->keys);
	buf_append(&sl->secret, password, strlen(password) + 1);
	OPENSSL_cleanse(password, sizeof(password));
	http_defer(hc, settings_login_cancel, sl);
	struct penalty_wait w;
	uint64_t delay = sl->trusted ? 0
				     : penalty_delay(fe->policy, &sl->keys, &w);
	if (delay > 0) {
		metrics_add(&fe->metrics.auth_penalties[w.address_delay >
							w.login_delay],
			    1);
		if (w.address_delay > w.login_delay)
			log_info("http settings client=%s user=%s auth "
				 "address penalty delay_ms=%llu "
				 "address_failures=%u failures=%u",
				 req->peer_name, sl->user,
				 (unsigned long long)delay, w.address_failures,
				 w.failures);
		else
			log_info("http settings client=%s user=%s auth "
				 "penalty delay_ms=%llu failures=%u",
				 req->peer_name, sl->user,
				 (unsigned long long)delay, w.failures);
		uv_timer_start(&sl->delay, settings_auth_start_cb, delay, 0);
		return;
	}
	settings_auth_start(sl);
}

void
http_settings_page(struct frontend *fe, struct http_conn *hc,
		   struct http_request *req)
{
	if (strcmp(req->method, "POST") == 0) {
		settings_post(fe, hc, req);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && !req->head) {
		static const char m[] = "Use GET or POST.\n";
		http_respond(hc, 405, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, "Allow: GET, HEAD, POST\r\n");
		return;
	}
	settings_form_page(fe, hc, req, 200, NULL, "");
}
