/* http_routes.h - what a frontend serves over HTTP(S): autoconfig,
 * autodiscover, the settings page, metrics and health.
 *
 * Every worker loop has its own HTTP server (SO_REUSEPORT listeners on
 * http.listen and http.tls_listen).  Handlers answer from the loop that
 * accepted the request; a sign-in on the settings page goes through that
 * loop's directory connections like an IMAP login.
 */
#ifndef PORTICO_HTTP_ROUTES_H
#define PORTICO_HTTP_ROUTES_H

#include "common/buf.h"
#include "common/connset.h"
#include "common/http.h"

struct frontend;

/* Starts this loop's HTTP server and its listeners (none configured: a
 * server with none, for a reload to give it some).  Returns -1 after
 * logging the error. */
int http_routes_start(struct frontend *fe);
/* A reload: the http.* sizes, timeouts, counts and hsts_max_age of
 * fe->cfg apply. */
void http_routes_apply(struct frontend *fe);
/* A reload moved http.listen (tls 0) or http.tls_listen (tls 1): the
 * listener closes, and listens on fd (bound to addr) when fd >= 0. */
void http_routes_move(struct frontend *fe, int tls, int fd, const char *addr);
void http_routes_stop(struct frontend *fe);
void http_routes_free(struct frontend *fe);

/* Handlers (one file each). */
void http_autoconfig(struct frontend *fe, struct http_conn *hc,
		     struct http_request *req);
void http_autodiscover(struct frontend *fe, struct http_conn *hc,
		       struct http_request *req);
void http_settings_page(struct frontend *fe, struct http_conn *hc,
			struct http_request *req);
void http_mobileconfig(struct frontend *fe, struct http_conn *hc,
		       struct http_request *req);
/* GET or HEAD from http.metrics_networks (for /metrics and /sessions):
 * 1, else 0 after answering 405 or 403. */
int http_management_allowed(struct frontend *fe, struct http_conn *hc,
			    const struct http_request *req);
void http_metrics(struct frontend *fe, struct http_conn *hc,
		  struct http_request *req);
void http_health(struct frontend *fe, struct http_conn *hc,
		 struct http_request *req);
/* GET /sessions (http_sessions.c): every loop's client connections. */
void http_sessions(struct frontend *fe, struct http_conn *hc,
		   struct http_request *req);
/* The loop's part of /sessions: started with its HTTP listeners, stopped
 * after them (in its thread), freed after its loop has ended. */
int http_sessions_start(struct frontend *fe);
void http_sessions_stop(struct frontend *fe);
void http_sessions_free(struct frontend *fe);

/* The settings page's automatic reply (http_auto_reply.c): the section
 * of a signed-in user's page, with the entry's ar (NULL: none) and a
 * message (NULL: none; saved: it says the change was made); login goes
 * into the form.  The form posted into
 * set (text and subject allocated; text "" when switched off): 0, or -1
 * with a message for the user. */
struct dir_auto_reply;
void http_auto_reply_section(struct buf *b, const char *login,
			     const struct dir_auto_reply *ar,
			     const char *message, int saved);
int http_auto_reply_form(const struct frontend *fe, const char *body,
			 size_t len, struct dir_auto_reply *set,
			 const char **message_r);

/* Whether the public settings have entries of their own for site (the
 * settings page then names it in the link to the Apple profile). */
int http_mobileconfig_site(const struct frontend *fe, int site);

/* A GET or HEAD: 1, else 0 after answering 405. */
int http_get_only(struct http_conn *hc, const struct http_request *req);
/* Whether a mail address is plausible enough to echo in settings
 * (local@domain, printable, bounded); *domain_r points into it. */
int http_mail_address_valid(const char *addr, const char **domain_r);
/* The settings shown without signing in: a protocol's external entries
 * that apply to every site, when the protocol is offered. */
const struct connset *http_public_settings(const struct frontend *fe,
					   enum connset_proto p);

#endif
