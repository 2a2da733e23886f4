/* directory.c - asynchronous LDAP for authentication and routing.
 *
 * Connections are this loop's own: a non-blocking socket connected here,
 * then handed to libldap (ldap_init_fd), whose results are read when the
 * socket is readable.  TLS (ldaps://, or StartTLS with ldap.starttls) is
 * OpenSSL's, its handshake driven by the same poll handle; once it is
 * done a Sockbuf I/O layer of ours (LBER_SBIOD_LEVEL_TRANSPORT) carries
 * libldap's reads and writes through the SSL object, so nothing blocks
 * the loop and the directory's certificate is verified as every other
 * peer's is (ldap.tls_ca_file, the URI's host name or address). */
#include "frontend/directory.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldap.h>
#include <openldap.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/smtp_parser.h"

#define DIR_SWEEP_MS 100
#define DIR_MAX_URIS 8
#define DIR_MAX_AUTH 256 /* ldap.auth_connections' maximum */

enum ldc_state {
	LDC_DOWN,
	LDC_CONNECTING,
	LDC_STARTTLS, /* StartTLS request sent, its answer awaited */
	LDC_TLS,      /* TLS handshake */
	LDC_BINDING,
	LDC_READY,
	LDC_CLOSING,
	LDC_STATE_COUNT
};

static const char *ldc_state_names[] = {
    "down", "connecting", "starttls", "tls", "binding", "ready", "closing"};
_Static_assert(sizeof(ldc_state_names) / sizeof(ldc_state_names[0]) ==
		       LDC_STATE_COUNT,
	       "ldap connection state names");

/* LDC_WRITE: the users' own changes (the settings page's automatic
 * reply), on ldap.write_uris when set. */
enum ldc_role { LDC_SEARCH, LDC_AUTH, LDC_WRITE };

enum req_kind { REQ_AUTH, REQ_BACKEND, REQ_ADDRESS };

enum req_phase {
	PH_SEARCH_QUEUED,
	PH_SEARCHING,
	PH_BIND_QUEUED,
	PH_BINDING,
	PH_MODIFYING, /* the user's own change, bound as the user */
	PH_DONE,
};

struct ldap_uri {
	char *uri;
	char host[256]; /* as the URI names it: what its certificate names */
	int ldaps;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct ldconn {
	struct directory *d;
	enum ldc_role role;
	enum ldc_state state;
	unsigned index;
	LDAP *ld;
	int fd;
	SSL *ssl; /* ldaps:// or StartTLS */
	uv_poll_t poll;
	unsigned uri_idx;
	unsigned tried;        /* URIs tried since the last success */
	uint64_t retry_at;     /* ms, loop time */
	uint64_t deadline;     /* connect/bind deadline */
	int bind_msgid;        /* service bind */
	struct dir_req *busy;  /* auth connections: the bind in flight */
	int stale; /* made before a reload changed the directory's address
		      or credentials: renewed once idle (dir_reconfigure) */
};

struct dir_req {
	struct directory *d;
	enum req_kind kind;
	enum req_phase phase;
	char filter[2048];
	const char *base;
	struct buf password;
	struct dir_user user;
	int want_auto_reply; /* dir_lookup_recipient */
	struct dir_auto_reply ar;
	struct dir_forward fw;
	/* dir_authenticate_auto_reply: the change to make once bound as
	   the user (ar's text "" removes the automatic reply) */
	int set_auto_reply;
	char start[20], end[20]; /* GeneralizedTime of ar's, "" none */
	struct dir_backend be;
	dir_auth_cb *auth_cb;
	dir_backend_cb *be_cb;
	void *ctx;
	int cancelled;
	uint64_t deadline;
	struct ldconn *conn;
	int msgid;
	enum dir_result result;
	char why[128];
	struct dir_req *prev, *next;
};

/* The directory's servers, resolved, with the TLS context they need: made
 * once per process, at start and at a reload that changes them, outside
 * the event loops (a name lookup can take seconds), and shared by every
 * loop's directory; never changed once made. */
struct dir_target {
	atomic_uint refs;
	struct ldap_uri uris[DIR_MAX_URIS];
	unsigned n;
	/* ldap.write_uris (wn 0: the users' changes go to uris) */
	struct ldap_uri wuris[DIR_MAX_URIS];
	unsigned wn;
	SSL_CTX *tls_ctx; /* when a URI or ldap.starttls needs TLS */
	/* the settings it was made from */
	char *conf_uris, *conf_wuris, *conf_ca;
	int conf_starttls;
};

struct directory {
	uv_loop_t *loop;
	const struct config *cfg;
	struct dir_target *t; /* the process's, as this loop took it */
	struct ldconn search;
	struct ldconn write; /* LDC_WRITE, made when a change comes */
	struct ldconn *auth; /* DIR_MAX_AUTH of them, made once */
	unsigned nauth;      /* ldap.auth_connections: those that take binds */
	unsigned nauth_made; /* the most nauth has been: those that may be
				open (a reload that lowers nauth closes the
				rest once idle) */
	struct dir_req *reqs;  /* live requests */
	struct dir_req *done;  /* finished, callbacks pending */
	uv_timer_t sweep;
	uv_timer_t done_timer;
	/* the credentials the connections were made with (the snapshot's
	   strings, which outlive the loop): a reload that changes one
	   renews them, as does a new target */
	const char *conf_bind_dn, *conf_bind_pw;
	const char *conf_priv; /* ldap.privileged_attribute */
	int shut;
	const char *user_attrs[16];
	const char *rcpt_attrs[24]; /* user_attrs, the automatic reply's and
				     forwarding's */
	char priv_attr[128];    /* ldap.privileged_attribute, split */
	char priv_value[512];
};

static void dir_pump(struct directory *d);
static void dir_renew_stale(struct directory *d);
static int priv_split(const char *pa, char *attr, size_t attr_size, char *value,
		      size_t value_size, const char **error_r);
static void ldc_fail(struct ldconn *lc, const char *why);

/* The URIs lc connects to: ldap.write_uris for the write connection when
 * set, else ldap.uris. */
static const struct ldap_uri *
ldc_uris(const struct ldconn *lc, unsigned *n_r)
{
	const struct dir_target *t = lc->d->t;
	if (lc->role == LDC_WRITE && t->wn > 0) {
		*n_r = t->wn;
		return t->wuris;
	}
	*n_r = t->n;
	return t->uris;
}

static const struct ldap_uri *
ldc_uri(const struct ldconn *lc)
{
	unsigned n;
	const struct ldap_uri *u = ldc_uris(lc, &n);
	return &u[lc->uri_idx < n ? lc->uri_idx : 0];
}

static const char *
ldc_role_name(const struct ldconn *lc)
{
	return lc->role == LDC_SEARCH ? "search"
	       : lc->role == LDC_AUTH ? "auth"
				      : "write";
}

/* Every connection of d: the search one, the auth ones ever made, the
 * write one. */
static unsigned
dir_nconns(const struct directory *d)
{
	return d->nauth_made + 2;
}

static struct ldconn *
dir_conn(struct directory *d, unsigned i)
{
	return i == 0 ? &d->search
	       : i <= d->nauth_made ? &d->auth[i - 1]
				    : &d->write;
}

/* -- requests -------------------------------------------------------------*/

static void
req_unlink(struct dir_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		r->d->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void
dir_run_done(uv_timer_t *t)
{
	struct directory *d = t->data;
	while (d->done != NULL) {
		struct dir_req *r = d->done;
		d->done = r->next;
		if (!r->cancelled) {
			const char *why = r->why[0] ? r->why : NULL;
			/* A failed bind: the entry was found (dn). */
			int found = r->result == DIR_OK ||
				    (r->result == DIR_FAIL &&
				     r->kind == REQ_AUTH &&
				     r->user.dn[0] != '\0');
			if (r->kind == REQ_AUTH || r->kind == REQ_ADDRESS)
				r->auth_cb(r->ctx, r->result,
					   found ? &r->user : NULL, why);
			else
				r->be_cb(r->ctx, r->result,
					 r->result == DIR_OK ? &r->be : NULL,
					 why);
		}
		buf_wipe(&r->password);
		free(r->ar.text);
		free(r->ar.subject);
		for (size_t i = 0; i < r->fw.n; i++)
			free(r->fw.to[i]);
		free(r->fw.to);
		free(r);
	}
}

/* Finishes r; its callback runs from the loop, never from the caller. */
static void
req_complete(struct dir_req *r, enum dir_result res, const char *why)
{
	if (r->phase == PH_DONE)
		return;
	if (r->conn != NULL && r->conn->busy == r)
		r->conn->busy = NULL;
	r->conn = NULL;
	r->phase = PH_DONE;
	r->result = res;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	buf_wipe(&r->password);
	req_unlink(r);
	r->next = r->d->done;
	r->d->done = r;
	uv_timer_start(&r->d->done_timer, dir_run_done, 0, 0);
}

/* -- connections ----------------------------------------------------------*/

static void
ldc_set_state(struct ldconn *lc, enum ldc_state state)
{
	if (lc->state == state)
		return;
	log_debug("ldap conn=%s%u uri=%s %s -> %s",
		  ldc_role_name(lc), lc->index,
		  ldc_uri(lc)->uri, ldc_state_names[lc->state],
		  ldc_state_names[state]);
	lc->state = state;
}

static void
ldc_poll_closed(uv_handle_t *h)
{
	struct ldconn *lc = h->data;
	if (lc->ld != NULL) {
		ldap_unbind_ext(lc->ld, NULL, NULL); /* closes the socket */
		lc->ld = NULL;
	} else if (lc->fd >= 0) {
		close(lc->fd);
	}
	SSL_free(lc->ssl);
	lc->ssl = NULL;
	lc->fd = -1;
	ldc_set_state(lc, LDC_DOWN);
	dir_pump(lc->d);
}

/* Fails every request using lc and closes it.  The next URI is tried at
 * once unless all were tried; then after retry_interval. */
static void
ldc_fail(struct ldconn *lc, const char *why)
{
	struct directory *d = lc->d;
	if (lc->state == LDC_CLOSING || lc->state == LDC_DOWN)
		return;
	log_warn("ldap uri=%s error=\"%s\"", ldc_uri(lc)->uri, why);
	for (struct dir_req *r = d->reqs, *next; r != NULL; r = next) {
		next = r->next;
		if (r->conn == lc)
			req_complete(r, DIR_TEMPFAIL, "directory unavailable");
	}
	lc->busy = NULL;
	lc->tried++;
	unsigned nuris;
	ldc_uris(lc, &nuris);
	lc->uri_idx = (lc->uri_idx + 1) % nuris;
	if (lc->tried >= nuris) {
		lc->retry_at = uv_now(d->loop) +
			       (uint64_t)d->cfg->ldap_retry_interval * 1000;
		lc->tried = 0;
	} else {
		lc->retry_at = 0;
	}
	ldc_set_state(lc, LDC_CLOSING);
	uv_poll_stop(&lc->poll);
	uv_close((uv_handle_t *)&lc->poll, ldc_poll_closed);
}

static void ldc_on_poll(uv_poll_t *h, int status, int events);

static void
ldc_ready(struct ldconn *lc)
{
	lc->tried = 0;
	ldc_set_state(lc, LDC_READY);
	log_info("ldap uri=%s conn=%s%u connected%s%s",
		 ldc_uri(lc)->uri,
		 ldc_role_name(lc), lc->index,
		 lc->ssl != NULL ? " tls=" : "",
		 lc->ssl != NULL ? SSL_get_version(lc->ssl) : "");
	dir_pump(lc->d);
}

/* -- TLS ------------------------------------------------------------------*/

/* libldap's reads and writes through the connection's SSL object (the
 * layer's private pointer), above its TCP layer, which is then unused. */
static int
sbio_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
	sbiod->sbiod_pvt = arg;
	return 0;
}

static int
sbio_remove(Sockbuf_IO_Desc *sbiod)
{
	sbiod->sbiod_pvt = NULL;
	return 0;
}

static int
sbio_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
	SSL *ssl = sbiod->sbiod_pvt;
	/* records already decrypted wait in OpenSSL, not in the socket */
	if (opt == LBER_SB_OPT_DATA_READY && ssl != NULL &&
	    SSL_pending(ssl) > 0)
		return 1;
	return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

/* An SSL_read/SSL_write result as read(2)/write(2) would give it. */
static ber_slen_t
sbio_result(SSL *ssl, int n)
{
	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EWOULDBLOCK;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		errno = ECONNRESET;
		return -1;
	}
}

static ber_slen_t
sbio_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	SSL *ssl = sbiod->sbiod_pvt;
	if (len > INT32_MAX)
		len = INT32_MAX;
	return sbio_result(ssl, SSL_read(ssl, buf, (int)len));
}

static ber_slen_t
sbio_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	SSL *ssl = sbiod->sbiod_pvt;
	if (len > INT32_MAX)
		len = INT32_MAX;
	return sbio_result(ssl, SSL_write(ssl, buf, (int)len));
}

static int
sbio_close(Sockbuf_IO_Desc *sbiod)
{
	SSL *ssl = sbiod->sbiod_pvt;
	if (ssl != NULL && SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl); /* close_notify, if it fits */
	ERR_clear_error();
	return 0;
}

static Sockbuf_IO sbio_tls = {
    sbio_setup, sbio_remove, sbio_ctrl, sbio_read, sbio_write, sbio_close,
};

static void ldc_handshake(struct ldconn *lc);
static void ldc_established(struct ldconn *lc);

/* Gives the connected socket to libldap. */
static int
ldc_init_ld(struct ldconn *lc)
{
	int rc = ldap_init_fd(lc->fd, LDAP_PROTO_TCP, ldc_uri(lc)->uri,
			      &lc->ld);
	if (rc != LDAP_SUCCESS) {
		ldc_fail(lc, ldap_err2string(rc));
		return -1;
	}
	int version = LDAP_VERSION3;
	ldap_set_option(lc->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(lc->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	return 0;
}

/* Starts TLS on the connected socket (ldaps://, or StartTLS accepted). */
static void
ldc_tls_start(struct ldconn *lc)
{
	const struct ldap_uri *u = ldc_uri(lc);
	lc->ssl = SSL_new(lc->d->t->tls_ctx);
	if (lc->ssl == NULL || SSL_set_fd(lc->ssl, lc->fd) != 1) {
		ERR_clear_error();
		ldc_fail(lc, "TLS setup failed");
		return;
	}
	X509_VERIFY_PARAM *vp = SSL_get0_param(lc->ssl);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) != 1) {
		/* a name, not an address: checked, and sent as SNI */
		ERR_clear_error();
		if (SSL_set1_host(lc->ssl, u->host) != 1 ||
		    SSL_set_tlsext_host_name(lc->ssl, u->host) != 1) {
			ERR_clear_error();
			ldc_fail(lc, "TLS setup failed");
			return;
		}
	}
	SSL_set_connect_state(lc->ssl);
	ldc_set_state(lc, LDC_TLS);
	ldc_handshake(lc);
}

static void
ldc_handshake(struct ldconn *lc)
{
	int rc = SSL_do_handshake(lc->ssl);
	if (rc == 1) {
		if (lc->ld == NULL && ldc_init_ld(lc) < 0)
			return;
		Sockbuf *sb = NULL;
		if (ldap_get_option(lc->ld, LDAP_OPT_SOCKBUF, &sb) !=
			LDAP_OPT_SUCCESS ||
		    sb == NULL ||
		    ber_sockbuf_add_io(sb, &sbio_tls,
				       LBER_SBIOD_LEVEL_TRANSPORT,
				       lc->ssl) != 0) {
			ldc_fail(lc, "TLS setup failed");
			return;
		}
		ldc_established(lc);
		return;
	}
	int err = SSL_get_error(lc->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		uv_poll_start(&lc->poll, UV_READABLE, ldc_on_poll);
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		uv_poll_start(&lc->poll, UV_WRITABLE, ldc_on_poll);
		return;
	}
	char why[300];
	long v = SSL_get_verify_result(lc->ssl);
	unsigned long e = ERR_peek_error();
	if (v != X509_V_OK)
		snprintf(why, sizeof(why), "TLS: certificate of %s: %s",
			 ldc_uri(lc)->host,
			 X509_verify_cert_error_string(v));
	else if (e != 0)
		snprintf(why, sizeof(why), "TLS handshake: %s",
			 ERR_reason_error_string(e) ? ERR_reason_error_string(e)
						    : "error");
	else
		snprintf(why, sizeof(why), "TLS handshake: %s",
			 err == SSL_ERROR_SYSCALL && errno != 0
			     ? strerror(errno)
			     : "connection closed");
	ERR_clear_error();
	ldc_fail(lc, why);
}

/* The connection carries LDAP (TLS if it was asked for): the service
 * bind, or ready. */
static void
ldc_established(struct ldconn *lc)
{
	struct directory *d = lc->d;
	uv_poll_start(&lc->poll, UV_READABLE, ldc_on_poll);
	if (lc->role == LDC_SEARCH && d->cfg->ldap_bind_dn[0] != '\0') {
		struct berval cred;
		cred.bv_val = d->cfg->ldap_bind_password;
		cred.bv_len = strlen(cred.bv_val);
		int rc = ldap_sasl_bind(lc->ld, d->cfg->ldap_bind_dn,
					LDAP_SASL_SIMPLE, &cred, NULL, NULL,
					&lc->bind_msgid);
		if (rc != LDAP_SUCCESS) {
			ldc_fail(lc, ldap_err2string(rc));
			return;
		}
		ldc_set_state(lc, LDC_BINDING);
		return;
	}
	ldc_ready(lc);
}

static void
ldc_connected(struct ldconn *lc)
{
	struct directory *d = lc->d;
	const struct ldap_uri *u = ldc_uri(lc);
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(lc->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		ldc_fail(lc, strerror(err));
		return;
	}
	if (u->ldaps) {
		ldc_tls_start(lc);
		return;
	}
	if (ldc_init_ld(lc) < 0)
		return;
	if (d->cfg->ldap_starttls) {
		int rc = ldap_start_tls(lc->ld, NULL, NULL, &lc->bind_msgid);
		if (rc != LDAP_SUCCESS) {
			ldc_fail(lc, ldap_err2string(rc));
			return;
		}
		ldc_set_state(lc, LDC_STARTTLS);
		uv_poll_start(&lc->poll, UV_READABLE, ldc_on_poll);
		return;
	}
	ldc_established(lc);
}

static void
ldc_connect(struct ldconn *lc)
{
	struct directory *d = lc->d;
	const struct ldap_uri *u = ldc_uri(lc);
	lc->fd = socket(u->addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lc->fd < 0) {
		log_error("ldap socket error=\"%s\"", strerror(errno));
		lc->retry_at = uv_now(d->loop) +
			       (uint64_t)d->cfg->ldap_retry_interval * 1000;
		return;
	}
	uv_poll_init_socket(d->loop, &lc->poll, lc->fd);
	lc->poll.data = lc;
	lc->deadline = uv_now(d->loop) + (uint64_t)d->cfg->ldap_timeout * 1000;
	ldc_set_state(lc, LDC_CONNECTING);
	if (connect(lc->fd, (const struct sockaddr *)&u->addr, u->addrlen) <
		    0 &&
	    errno != EINPROGRESS) {
		ldc_fail(lc, strerror(errno));
		return;
	}
	uv_poll_start(&lc->poll, UV_WRITABLE, ldc_on_poll);
}

static void
ldc_attrs(LDAP *ld, LDAPMessage *e, const char *attr, char *out,
	  size_t outsize)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	out[0] = '\0';
	if (vals == NULL)
		return;
	if (vals[0] != NULL)
		snprintf(out, outsize, "%.*s", (int)vals[0]->bv_len,
			 vals[0]->bv_val);
	ldap_value_free_len(vals);
}

static int
ldc_bool_attr(LDAP *ld, LDAPMessage *e, const char *attr, int def)
{
	char v[16];
	ldc_attrs(ld, e, attr, v, sizeof(v));
	if (v[0] == '\0')
		return def;
	return strcasecmp(v, "TRUE") == 0;
}

/* An unsigned integer attribute: 1 and *v when the entry has a valid one,
 * 0 when it has none; a value that is not one is logged and ignored. */
static int
ldc_u64_attr(LDAP *ld, LDAPMessage *e, const char *dn, const char *attr,
	     uint64_t *v)
{
	char s[32], *end;
	ldc_attrs(ld, e, attr, s, sizeof(s));
	if (s[0] == '\0')
		return 0;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0) {
		log_warn("ldap dn=\"%s\" %s=\"%s\": not a count, ignored", dn,
			 attr, s);
		return 0;
	}
	*v = n;
	return 1;
}

/* porticoImapCapabilityOff: each value an IMAP capability name (letters,
 * digits, "=", "+", "-", "."), put in upper case into out, separated by
 * spaces; a value that is not one is logged and ignored. */
static void
ldc_caps_off(LDAP *ld, LDAPMessage *e, const char *dn, char *out,
	     size_t outsize)
{
	struct berval **v = ldap_get_values_len(ld, e,
						"porticoImapCapabilityOff");
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		size_t n = v[i]->bv_len;
		int ok = n > 0 && n < 64;
		for (size_t k = 0; ok && k < n; k++) {
			unsigned char ch = (unsigned char)v[i]->bv_val[k];
			ok = (ch >= 'A' && ch <= 'Z') ||
			     (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') ||
			     (ch != 0 && strchr("=+-.", ch) != NULL);
		}
		if (!ok) {
			log_warn("ldap dn=\"%s\" porticoImapCapabilityOff: "
				 "not a capability name, ignored",
				 dn);
			continue;
		}
		if (used + n + 2 > outsize)
			break;
		if (used > 0)
			out[used++] = ' ';
		for (size_t k = 0; k < n; k++)
			out[used++] = (char)toupper(
			    (unsigned char)v[i]->bv_val[k]);
		out[used] = '\0';
	}
	ldap_value_free_len(v);
}

/* One value of attr, UTF-8, at most max bytes, into a new string: 1, 0
 * when the entry has none, -1 with *off_r when it is not one. */
static int
ldc_text_attr(LDAP *ld, LDAPMessage *e, const char *attr, size_t max,
	      char **out_r, const char **off_r)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	int rc = 0;
	*out_r = NULL;
	if (vals != NULL && vals[0] != NULL && vals[0]->bv_len > 0) {
		size_t n = vals[0]->bv_len;
		if (n > max) {
			*off_r = "longer than lmtp.auto_reply_max_size";
			rc = -1;
		} else if (memchr(vals[0]->bv_val, '\0', n) != NULL ||
			   !smtp_utf8_valid(
				   (const unsigned char *)vals[0]->bv_val, n)) {
			*off_r = "not UTF-8";
			rc = -1;
		} else {
			*out_r = malloc(n + 1);
			if (*out_r == NULL)
				abort();
			memcpy(*out_r, vals[0]->bv_val, n);
			(*out_r)[n] = '\0';
			rc = 1;
		}
	}
	ldap_value_free_len(vals);
	return rc;
}

static int
ldc_time_attr(LDAP *ld, LDAPMessage *e, const char *attr, int64_t *t_r)
{
	char v[64];
	ldc_attrs(ld, e, attr, v, sizeof(v));
	*t_r = 0;
	return v[0] == '\0' ? 0 : dir_generalized_time(v, strlen(v), t_r);
}

/* porticoAutoReply*: r->user.auto_reply when the entry has a text. */
static void
ldc_auto_reply(struct ldconn *lc, LDAPMessage *e, struct dir_req *r)
{
	struct dir_auto_reply *ar = &r->ar;
	size_t max = (size_t)lc->d->cfg->lmtp_auto_reply_max_size;
	if (max == 0)
		return;
	int rc = ldc_text_attr(lc->ld, e, "porticoAutoReplyText", max,
			       &ar->text, &ar->off);
	if (rc == 0)
		return;
	if (rc < 0 && (ar->text = strdup("")) == NULL)
		abort();
	const char *why;
	if (ar->off == NULL &&
	    ldc_text_attr(lc->ld, e, "porticoAutoReplySubject",
			  DIR_AUTO_REPLY_SUBJECT_MAX, &ar->subject, &why) < 0)
		ar->off = "a porticoAutoReplySubject over 1024 bytes or not "
			  "UTF-8";
	if (ar->subject == NULL && (ar->subject = strdup("")) == NULL)
		abort();
	if (ar->off == NULL &&
	    (ldc_time_attr(lc->ld, e, "porticoAutoReplyStart", &ar->start) <
		     0 ||
	     ldc_time_attr(lc->ld, e, "porticoAutoReplyEnd", &ar->end) < 0))
		ar->off = "a start or end that is not a GeneralizedTime";
	r->user.auto_reply = ar;
}

/* porticoForwardAddress, porticoForwardKeep: r->user.forward when the
 * entry has an address. */
static void
ldc_forward(struct ldconn *lc, LDAPMessage *e, struct dir_req *r)
{
	struct dir_forward *fw = &r->fw;
	size_t max = (size_t)lc->d->cfg->lmtp_forward_max_addresses;
	if (max == 0)
		return;
	struct berval **v = ldap_get_values_len(lc->ld, e,
						"porticoForwardAddress");
	size_t n = 0;
	while (v != NULL && v[n] != NULL)
		n++;
	if (n == 0) {
		ldap_value_free_len(v);
		return;
	}
	fw->keep = 1;
	char keep[8];
	ldc_attrs(lc->ld, e, "porticoForwardKeep", keep, sizeof(keep));
	if (strcasecmp(keep, "FALSE") == 0)
		fw->keep = 0;
	if (n > max) {
		fw->off = "more porticoForwardAddress values than "
			  "lmtp.forward_max_addresses";
		n = 0;
	}
	fw->to = calloc(n + 1, sizeof(*fw->to));
	if (fw->to == NULL)
		abort();
	for (size_t i = 0; i < n && fw->off == NULL; i++) {
		/* checked as MAIL FROM's path is, UTF-8 allowed */
		char path[SMTP_MAX_PATH + 3], addr[SMTP_MAX_PATH + 1];
		if (v[i]->bv_len > SMTP_MAX_PATH ||
		    memchr(v[i]->bv_val, '\0', v[i]->bv_len) != NULL) {
			fw->off = "a porticoForwardAddress that is not an "
				  "address";
			break;
		}
		snprintf(path, sizeof(path), "<%.*s>", (int)v[i]->bv_len,
			 v[i]->bv_val);
		if (smtp_parse_reverse_path(path, 1, addr, sizeof(addr)) < 0 ||
		    addr[0] == '\0') {
			fw->off = "a porticoForwardAddress that is not an "
				  "address";
			break;
		}
		if ((fw->to[fw->n++] = strdup(addr)) == NULL)
			abort();
	}
	ldap_value_free_len(v);
	r->user.forward = fw;
}

/* A copy of the entry's addresses (dir_user's list) into *addresses_r,
 * with a pointer to each. */
static void
addresses_copy(const struct dir_user *u, char **addresses_r, char ***v_r,
	       size_t *n_r)
{
	size_t n = 0, k = 0;
	while (u->addresses[n] != '\0') {
		n += strlen(u->addresses + n) + 1;
		k++;
	}
	if ((*addresses_r = malloc(n + 1)) == NULL ||
	    (*v_r = calloc(k + 1, sizeof(char *))) == NULL)
		abort();
	memcpy(*addresses_r, u->addresses, n + 1);
	*n_r = 0;
	for (char *p = *addresses_r; *p != '\0'; p += strlen(p) + 1)
		(*v_r)[(*n_r)++] = p;
}

struct dir_forward *
dir_forward_copy(const struct dir_user *u)
{
	const struct dir_forward *fw = u->forward;
	if (fw == NULL)
		return NULL;
	struct dir_forward *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->to = calloc(fw->n + 1, sizeof(*c->to))) == NULL)
		abort();
	for (c->n = 0; c->n < fw->n; c->n++)
		if ((c->to[c->n] = strdup(fw->to[c->n])) == NULL)
			abort();
	c->keep = fw->keep;
	c->off = fw->off;
	addresses_copy(u, &c->addresses, &c->address_v, &c->naddresses);
	return c;
}

void
dir_forward_free(struct dir_forward **fwp)
{
	struct dir_forward *fw = *fwp;
	*fwp = NULL;
	if (fw == NULL)
		return;
	for (size_t i = 0; i < fw->n; i++)
		free(fw->to[i]);
	free(fw->to);
	free(fw->addresses);
	free(fw->address_v);
	free(fw);
}

struct dir_auto_reply *
dir_auto_reply_copy(const struct dir_user *u)
{
	const struct dir_auto_reply *ar = u->auto_reply;
	if (ar == NULL)
		return NULL;
	struct dir_auto_reply *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->text = strdup(ar->text)) == NULL ||
	    (c->subject = strdup(ar->subject)) == NULL)
		abort();
	addresses_copy(u, &c->addresses, &c->address_v, &c->naddresses);
	c->start = ar->start;
	c->end = ar->end;
	c->off = ar->off;
	return c;
}

void
dir_auto_reply_free(struct dir_auto_reply **arp)
{
	struct dir_auto_reply *ar = *arp;
	*arp = NULL;
	if (ar == NULL)
		return;
	free(ar->text);
	free(ar->subject);
	free(ar->addresses);
	free(ar->address_v);
	free(ar);
}

static void
ldc_search_done(struct ldconn *lc, struct dir_req *r, LDAPMessage *res)
{
	int err = LDAP_OTHER;
	char *errmsg = NULL;
	LDAPMessage *last = NULL;
	for (LDAPMessage *m = ldap_first_message(lc->ld, res); m != NULL;
	     m = ldap_next_message(lc->ld, m))
		if (ldap_msgtype(m) == LDAP_RES_SEARCH_RESULT)
			last = m;
	if (last != NULL)
		ldap_parse_result(lc->ld, last, &err, NULL, &errmsg, NULL,
				  NULL, 0);
	if (err != LDAP_SUCCESS) {
		char why[160];
		snprintf(why, sizeof(why), "search failed: %s",
			 ldap_err2string(err));
		ldap_memfree(errmsg);
		req_complete(r, err == LDAP_NO_SUCH_OBJECT ? DIR_FAIL
							   : DIR_TEMPFAIL,
			     why);
		return;
	}
	ldap_memfree(errmsg);
	int n = ldap_count_entries(lc->ld, res);
	if (n == 0) {
		req_complete(r, DIR_FAIL,
			     r->kind == REQ_BACKEND ? "unknown backend"
						    : "unknown user");
		return;
	}
	if (n > 1) {
		req_complete(r, DIR_FAIL, "ambiguous name");
		return;
	}
	LDAPMessage *e = ldap_first_entry(lc->ld, res);
	if (r->kind == REQ_BACKEND) {
		char site[16];
		ldc_attrs(lc->ld, e, "porticoSite", site, sizeof(site));
		ldc_attrs(lc->ld, e, "porticoLinkAddress",
			  r->be.link_address, sizeof(r->be.link_address));
		r->be.site = atoi(site);
		if (r->be.link_address[0] == '\0') {
			req_complete(r, DIR_TEMPFAIL,
				     "backend entry has no link address");
			return;
		}
		req_complete(r, DIR_OK, NULL);
		return;
	}
	char *dn = ldap_get_dn(lc->ld, e);
	if (dn == NULL) {
		req_complete(r, DIR_TEMPFAIL, "entry without DN");
		return;
	}
	snprintf(r->user.dn, sizeof(r->user.dn), "%s", dn);
	ldap_memfree(dn);
	ldc_attrs(lc->ld, e, "uid", r->user.uid, sizeof(r->user.uid));
	ldc_attrs(lc->ld, e, "mail", r->user.mail, sizeof(r->user.mail));
	ldc_attrs(lc->ld, e, "porticoMailboxServer", r->user.mailbox_server,
		  sizeof(r->user.mailbox_server));
	ldc_attrs(lc->ld, e, "porticoMailboxId", r->user.mailbox_id,
		  sizeof(r->user.mailbox_id));
	ldc_attrs(lc->ld, e, "porticoAccountState", r->user.account_state,
		  sizeof(r->user.account_state));
	r->user.imap_enabled = ldc_bool_attr(lc->ld, e, "porticoImapEnabled",
					     1);
	r->user.pop3_enabled = ldc_bool_attr(lc->ld, e, "porticoPop3Enabled",
					     1);
	r->user.smtp_enabled = ldc_bool_attr(lc->ld, e, "porticoSmtpEnabled",
					     1);
	r->user.quota_storage_set =
		ldc_u64_attr(lc->ld, e, r->user.dn, "porticoQuotaStorage",
			     &r->user.quota_storage);
	r->user.quota_messages_set =
		ldc_u64_attr(lc->ld, e, r->user.dn, "porticoQuotaMessages",
			     &r->user.quota_messages);
	ldc_caps_off(lc->ld, e, r->user.dn, r->user.imap_caps_off,
		     sizeof(r->user.imap_caps_off));
	struct berval **mails = ldap_get_values_len(lc->ld, e, "mail");
	size_t used = 0;
	for (size_t i = 0; mails != NULL && mails[i] != NULL; i++) {
		size_t vlen = mails[i]->bv_len;
		if (vlen == 0 || memchr(mails[i]->bv_val, '\0', vlen) != NULL ||
		    used + vlen + 2 > sizeof(r->user.addresses))
			continue;
		memcpy(r->user.addresses + used, mails[i]->bv_val, vlen);
		used += vlen;
		r->user.addresses[used++] = '\0';
	}
	r->user.addresses[used] = '\0';
	if (mails != NULL)
		ldap_value_free_len(mails);
	r->user.privileged = 0;
	if (r->d->priv_attr[0] != '\0') {
		struct berval **vals = ldap_get_values_len(lc->ld, e,
							   r->d->priv_attr);
		size_t want = strlen(r->d->priv_value);
		for (size_t i = 0; vals != NULL && vals[i] != NULL; i++)
			if (vals[i]->bv_len == want &&
			    strncasecmp(vals[i]->bv_val, r->d->priv_value,
					want) == 0)
				r->user.privileged = 1;
		ldap_value_free_len(vals);
	}
	if (r->kind == REQ_ADDRESS) {
		if (r->want_auto_reply) {
			ldc_auto_reply(lc, e, r);
			ldc_forward(lc, e, r);
		}
		req_complete(r, DIR_OK, NULL);
		return;
	}
	r->conn = NULL;
	r->phase = PH_BIND_QUEUED;
	dir_pump(r->d);
}

/* Bound as the user: its automatic reply set, or removed, in one modify
 * on this connection, with the user's own rights (the directory's access
 * rules say what a user may change). */
static void
req_start_modify(struct ldconn *lc, struct dir_req *r)
{
	static const char *const names[] = {
	    "porticoAutoReplyText", "porticoAutoReplySubject",
	    "porticoAutoReplyStart", "porticoAutoReplyEnd"};
	const char *vals[4] = {r->ar.text, r->ar.subject, r->start, r->end};
	struct berval bv[4], *bvp[4][2];
	LDAPMod mods[4], *modp[5];
	int on = r->ar.text[0] != '\0';
	for (int i = 0; i < 4; i++) {
		mods[i].mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
		mods[i].mod_type = (char *)(uintptr_t)names[i];
		bv[i].bv_val = (char *)(uintptr_t)vals[i];
		bv[i].bv_len = strlen(vals[i]);
		bvp[i][0] = &bv[i];
		bvp[i][1] = NULL;
		/* a replace without values removes the attribute, and is no
		   error when the entry has none */
		mods[i].mod_bvalues = on && bv[i].bv_len > 0 ? bvp[i] : NULL;
		modp[i] = &mods[i];
	}
	modp[4] = NULL;
	int rc = ldap_modify_ext(lc->ld, r->user.dn, modp, NULL, NULL,
				 &r->msgid);
	if (rc != LDAP_SUCCESS) {
		req_complete(r, DIR_OK, "the directory could not be reached");
		ldc_fail(lc, ldap_err2string(rc));
		return;
	}
	lc->busy = r;
	r->phase = PH_MODIFYING;
}

static void
ldc_modify_done(struct ldconn *lc, struct dir_req *r, LDAPMessage *res)
{
	int err = LDAP_OTHER;
	char *errmsg = NULL;
	ldap_parse_result(lc->ld, res, &err, NULL, &errmsg, NULL, NULL, 0);
	ldap_memfree(errmsg);
	lc->busy = NULL;
	if (err == LDAP_SUCCESS) {
		req_complete(r, DIR_OK, NULL);
	} else {
		char why[160];
		snprintf(why, sizeof(why), "%s",
			 err == LDAP_INSUFFICIENT_ACCESS
				 ? "the directory does not let the account "
				   "change its automatic reply"
			 : err == LDAP_UNWILLING_TO_PERFORM ||
				 err == LDAP_REFERRAL
				 ? "the directory server here takes no "
				   "changes (a read-only replica)"
				 : ldap_err2string(err));
		req_complete(r, DIR_OK, why);
	}
	dir_pump(lc->d);
}

static void
ldc_bind_done(struct ldconn *lc, struct dir_req *r, LDAPMessage *res)
{
	int err = LDAP_OTHER;
	char *errmsg = NULL;
	ldap_parse_result(lc->ld, res, &err, NULL, &errmsg, NULL, NULL, 0);
	ldap_memfree(errmsg);
	lc->busy = NULL;
	switch (err) {
	case LDAP_SUCCESS:
		if (r->set_auto_reply && !r->cancelled) {
			req_start_modify(lc, r);
			return;
		}
		req_complete(r, DIR_OK, NULL);
		break;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_UNWILLING_TO_PERFORM:
		req_complete(r, DIR_FAIL, "invalid credentials");
		break;
	default: {
		char why[128];
		snprintf(why, sizeof(why), "bind failed: %s",
			 ldap_err2string(err));
		req_complete(r, DIR_TEMPFAIL, why);
		break;
	}
	}
	dir_pump(lc->d);
}

static void
ldc_result(struct ldconn *lc, LDAPMessage *res)
{
	int msgid = ldap_msgid(res);
	if (lc->state == LDC_STARTTLS && msgid == lc->bind_msgid) {
		int err = LDAP_OTHER;
		char *errmsg = NULL;
		ldap_parse_result(lc->ld, res, &err, NULL, &errmsg, NULL, NULL,
				  0);
		if (err != LDAP_SUCCESS) {
			char why[300];
			snprintf(why, sizeof(why),
				 "StartTLS refused (ldap.starttls): %s%s%s",
				 ldap_err2string(err),
				 errmsg && errmsg[0] ? ": " : "",
				 errmsg ? errmsg : "");
			ldap_memfree(errmsg);
			ldc_fail(lc, why);
			return;
		}
		ldap_memfree(errmsg);
		ldc_tls_start(lc);
		return;
	}
	if (lc->state == LDC_BINDING && msgid == lc->bind_msgid) {
		int err = LDAP_OTHER;
		char *errmsg = NULL;
		ldap_parse_result(lc->ld, res, &err, NULL, &errmsg, NULL,
				  NULL, 0);
		ldap_memfree(errmsg);
		if (err != LDAP_SUCCESS) {
			char why[160];
			snprintf(why, sizeof(why),
				 "service account bind failed: %s",
				 ldap_err2string(err));
			ldc_fail(lc, why);
			return;
		}
		ldc_ready(lc);
		return;
	}
	for (struct dir_req *r = lc->d->reqs; r != NULL; r = r->next) {
		if (r->conn != lc || r->msgid != msgid)
			continue;
		if (r->phase == PH_SEARCHING)
			ldc_search_done(lc, r, res);
		else if (r->phase == PH_BINDING)
			ldc_bind_done(lc, r, res);
		else if (r->phase == PH_MODIFYING)
			ldc_modify_done(lc, r, res);
		return;
	}
	/* Abandoned or timed out: nothing waits for it. */
}

static void
ldc_on_poll(uv_poll_t *h, int status, int events)
{
	struct ldconn *lc = h->data;
	(void)events;
	if (lc->state == LDC_CLOSING || lc->state == LDC_DOWN)
		return;
	if (status < 0) {
		/* libuv reports a socket error (POLLERR: a refused connect,
		   a reset) as UV_EBADF; the socket knows what it was */
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(lc->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
		    err != 0)
			ldc_fail(lc, strerror(err));
		else
			ldc_fail(lc, uv_strerror(status));
		return;
	}
	if (lc->state == LDC_CONNECTING) {
		ldc_connected(lc);
		return;
	}
	if (lc->state == LDC_TLS) {
		ldc_handshake(lc);
		return;
	}
	for (;;) {
		struct timeval zero = {0, 0};
		LDAPMessage *res = NULL;
		int rc = ldap_result(lc->ld, LDAP_RES_ANY, LDAP_MSG_ALL, &zero,
				     &res);
		if (rc == 0)
			return;
		if (rc < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(lc->ld, LDAP_OPT_RESULT_CODE, &err);
			ldap_msgfree(res);
			ldc_fail(lc, ldap_err2string(err));
			return;
		}
		ldc_result(lc, res);
		ldap_msgfree(res);
		if (lc->state == LDC_CLOSING || lc->state == LDC_DOWN ||
		    lc->state == LDC_TLS)
			return;
	}
}

/* -- scheduling -----------------------------------------------------------*/

/* clang-format off */
static const char *user_attrs[] = {
	"uid", "mail", "porticoMailboxServer", "porticoMailboxId",
	"porticoAccountState", "porticoImapEnabled", "porticoPop3Enabled",
	"porticoSmtpEnabled", "porticoQuotaStorage", "porticoQuotaMessages",
	"porticoImapCapabilityOff", NULL,
};
/* clang-format on */
/* what an LMTP recipient's lookup asks for beside user_attrs: its
 * automatic reply and its forwarding */
static const char *rcpt_extra_attrs[] = {
    "porticoAutoReplyText",
    "porticoAutoReplySubject",
    "porticoAutoReplyStart",
    "porticoAutoReplyEnd",
    "porticoForwardAddress",
    "porticoForwardKeep",
    NULL,
};
static const char *backend_attrs[] = {"porticoSite", "porticoLinkAddress",
				      NULL};

static void
req_start_search(struct ldconn *lc, struct dir_req *r)
{
	struct timeval tv = {(time_t)lc->d->cfg->ldap_timeout, 0};
	int rc = ldap_search_ext(lc->ld, r->base, LDAP_SCOPE_SUBTREE,
				 r->filter,
				 (char **)(uintptr_t)(r->kind == REQ_BACKEND
							      ? backend_attrs
						      : r->want_auto_reply
							      ? lc->d->rcpt_attrs
							      : lc->d->user_attrs),
				 0, NULL, NULL, &tv, 2, &r->msgid);
	if (rc != LDAP_SUCCESS) {
		ldc_fail(lc, ldap_err2string(rc));
		req_complete(r, DIR_TEMPFAIL, "directory unavailable");
		return;
	}
	r->conn = lc;
	r->phase = PH_SEARCHING;
}

static void
req_start_bind(struct ldconn *lc, struct dir_req *r)
{
	struct berval cred;
	cred.bv_val = buf_ptr(&r->password);
	cred.bv_len = buf_used(&r->password);
	int rc = ldap_sasl_bind(lc->ld, r->user.dn, LDAP_SASL_SIMPLE, &cred,
				NULL, NULL, &r->msgid);
	buf_wipe(&r->password);
	if (rc != LDAP_SUCCESS) {
		req_complete(r, DIR_TEMPFAIL, "directory unavailable");
		ldc_fail(lc, ldap_err2string(rc));
		return;
	}
	r->conn = lc;
	lc->busy = r;
	r->phase = PH_BINDING;
}

/* Starts a connection if it is down and due; returns whether the
 * connection can be waited for. */
static int
ldc_usable(struct ldconn *lc)
{
	if (lc->state != LDC_DOWN)
		return 1;
	if (uv_now(lc->d->loop) < lc->retry_at)
		return 0;
	ldc_connect(lc);
	return lc->state != LDC_DOWN && lc->state != LDC_CLOSING;
}

static void
dir_pump(struct directory *d)
{
	/* A connection made before a reload changed the directory takes no
	   new work: once idle it is made again (dir_reconfigure()). */
	dir_renew_stale(d);
	for (struct dir_req *r = d->reqs, *next; r != NULL; r = next) {
		next = r->next;
		if (r->phase == PH_SEARCH_QUEUED) {
			struct ldconn *lc = &d->search;
			if (lc->state == LDC_READY && !lc->stale)
				req_start_search(lc, r);
			else if (lc->state != LDC_CLOSING && !ldc_usable(lc))
				req_complete(r, DIR_TEMPFAIL,
					     "directory unavailable");
		} else if (r->phase == PH_BIND_QUEUED && r->set_auto_reply &&
			   d->t->wn > 0) {
			/* a change: on the connection to ldap.write_uris */
			struct ldconn *lc = &d->write;
			if (lc->state == LDC_READY && lc->busy == NULL &&
			    !lc->stale)
				req_start_bind(lc, r);
			else if (lc->state != LDC_CLOSING && !ldc_usable(lc))
				req_complete(r, DIR_TEMPFAIL,
					     "directory unavailable");
		} else if (r->phase == PH_BIND_QUEUED) {
			struct ldconn *idle = NULL;
			int waitable = 0;
			for (unsigned i = 0; i < d->nauth; i++) {
				struct ldconn *lc = &d->auth[i];
				if (lc->state == LDC_READY &&
				    lc->busy == NULL && !lc->stale) {
					idle = lc;
					break;
				}
				if (lc->state == LDC_CLOSING ||
				    lc->state == LDC_CONNECTING ||
				    lc->state == LDC_STARTTLS ||
				    lc->state == LDC_TLS ||
				    lc->state == LDC_READY)
					waitable = 1;
			}
			if (idle != NULL) {
				req_start_bind(idle, r);
				continue;
			}
			if (!waitable) {
				for (unsigned i = 0; i < d->nauth; i++)
					if (ldc_usable(&d->auth[i]))
						waitable = 1;
			}
			if (!waitable)
				req_complete(r, DIR_TEMPFAIL,
					     "directory unavailable");
		}
	}
	/* Completing requests above may have freed none; the list is
	   walked with next saved, and req_complete only moves r to the
	   done list. */
}

static void
dir_sweep(uv_timer_t *t)
{
	struct directory *d = t->data;
	uint64_t now = uv_now(d->loop);
	for (struct dir_req *r = d->reqs, *next; r != NULL; r = next) {
		next = r->next;
		if (now < r->deadline)
			continue;
		struct ldconn *lc = r->conn;
		if (lc != NULL && lc->ld != NULL &&
		    (r->phase == PH_SEARCHING || r->phase == PH_BINDING ||
		     r->phase == PH_MODIFYING)) {
			ldap_abandon_ext(lc->ld, r->msgid, NULL, NULL);
			if (r->phase != PH_SEARCHING) {
				/* A bind left in flight makes the connection
				   useless: start it afresh. */
				req_complete(r, DIR_TEMPFAIL,
					     "directory timeout");
				ldc_fail(lc, "bind timeout");
				continue;
			}
		}
		req_complete(r, DIR_TEMPFAIL, "directory timeout");
	}
	for (unsigned i = 0; i < dir_nconns(d); i++) {
		struct ldconn *lc = dir_conn(d, i);
		if ((lc->state == LDC_CONNECTING || lc->state == LDC_STARTTLS ||
		     lc->state == LDC_TLS || lc->state == LDC_BINDING) &&
		    now >= lc->deadline)
			ldc_fail(lc, lc->state == LDC_TLS
					 ? "TLS handshake timeout"
					 : "connect timeout");
	}
	dir_renew_stale(d);
}

static struct dir_req *
req_new(struct directory *d, enum req_kind kind, void *ctx)
{
	struct dir_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->d = d;
	r->kind = kind;
	r->ctx = ctx;
	r->phase = PH_SEARCH_QUEUED;
	r->deadline = uv_now(d->loop) + (uint64_t)d->cfg->ldap_timeout * 1000;
	r->next = d->reqs;
	if (d->reqs != NULL)
		d->reqs->prev = r;
	d->reqs = r;
	return r;
}

struct dir_req *
dir_authenticate(struct directory *d, const char *login, const char *password,
		 dir_auth_cb *cb, void *ctx)
{
	struct dir_req *r = req_new(d, REQ_AUTH, ctx);
	char esc[800];
	r->auth_cb = cb;
	r->base = d->cfg->ldap_base_dn;
	if (password[0] == '\0') {
		/* An empty password would be an unauthenticated bind
		   (RFC 4513 5.1.2), which LDAP servers accept. */
		req_complete(r, DIR_FAIL, "empty password");
		return r;
	}
	if (login[0] == '\0' ||
	    ldap_filter_escape(login, strlen(login), esc, sizeof(esc)) < 0) {
		req_complete(r, DIR_FAIL, "invalid login name");
		return r;
	}
	snprintf(r->filter, sizeof(r->filter),
		 "(&(objectClass=porticoUser)(|(uid=%s)(mail=%s)))", esc, esc);
	buf_append(&r->password, password, strlen(password));
	dir_pump(d);
	return r;
}

struct dir_req *
dir_authenticate_auto_reply(struct directory *d, const char *login,
			    const char *password,
			    const struct dir_auto_reply *set, dir_auth_cb *cb,
			    void *ctx)
{
	struct dir_req *r = dir_authenticate(d, login, password, cb, ctx);
	if (r->phase == PH_DONE)
		return r;
	r->set_auto_reply = 1;
	if ((r->ar.text = strdup(set->text)) == NULL ||
	    (r->ar.subject = strdup(set->subject)) == NULL)
		abort();
	dir_time_format(set->start, 0, r->start, sizeof(r->start));
	dir_time_format(set->end, 0, r->end, sizeof(r->end));
	return r;
}

/* r searches for entries of objectclass whose attr is value (escaped,
 * RFC 4515); an empty value, or one too long, completes r with DIR_FAIL
 * and invalid. */
static struct dir_req *
req_search_for(struct dir_req *r, const char *objectclass, const char *attr,
	       const char *value, const char *invalid)
{
	char esc[800];
	if (value[0] == '\0' ||
	    ldap_filter_escape(value, strlen(value), esc, sizeof(esc)) < 0) {
		req_complete(r, DIR_FAIL, invalid);
		return r;
	}
	snprintf(r->filter, sizeof(r->filter), "(&(objectClass=%s)(%s=%s))",
		 objectclass, attr, esc);
	dir_pump(r->d);
	return r;
}

struct dir_req *
dir_lookup_address(struct directory *d, const char *address, dir_auth_cb *cb,
		   void *ctx)
{
	struct dir_req *r = req_new(d, REQ_ADDRESS, ctx);
	r->auth_cb = cb;
	r->base = d->cfg->ldap_base_dn;
	return req_search_for(r, "porticoUser", "mail", address,
			      "invalid address");
}

struct dir_req *
dir_lookup_recipient(struct directory *d, const char *address,
		     dir_auth_cb *cb, void *ctx)
{
	struct dir_req *r = req_new(d, REQ_ADDRESS, ctx);
	r->auth_cb = cb;
	r->base = d->cfg->ldap_base_dn;
	r->want_auto_reply = 1;
	return req_search_for(r, "porticoUser", "mail", address,
			      "invalid address");
}

int
dir_user_has_address(const struct dir_user *u, const char *address)
{
	for (const char *p = u->addresses; *p != '\0'; p += strlen(p) + 1)
		if (strcasecmp(p, address) == 0)
			return 1;
	return 0;
}

struct dir_req *
dir_lookup_backend(struct directory *d, const char *id, dir_backend_cb *cb,
		   void *ctx)
{
	struct dir_req *r = req_new(d, REQ_BACKEND, ctx);
	r->be_cb = cb;
	r->base = d->cfg->ldap_backends_dn;
	snprintf(r->be.id, sizeof(r->be.id), "%s", id);
	return req_search_for(r, "porticoBackend", "cn", id,
			      "invalid backend id");
}

void
dir_cancel(struct dir_req *r)
{
	if (r == NULL)
		return;
	r->cancelled = 1;
	if (r->phase != PH_DONE) {
		if (r->phase == PH_SEARCHING && r->conn != NULL &&
		    r->conn->ld != NULL)
			ldap_abandon_ext(r->conn->ld, r->msgid, NULL, NULL);
		/* A bind in flight is left to finish: its connection stays
		   busy until the answer arrives. */
		if (r->phase == PH_BINDING || r->phase == PH_MODIFYING) {
			r->cancelled = 1;
			return;
		}
		req_complete(r, DIR_TEMPFAIL, "cancelled");
	}
}

/* -- setup ----------------------------------------------------------------*/

/* One URI of setting (ldap.uris, ldap.write_uris); resolved unless only
 * its form is checked. */
static int
dir_parse_uri(struct ldap_uri *u, const char *setting, const char *uri,
	      int resolve, const char **error_r)
{
	static _Thread_local char err[300];
	LDAPURLDesc *lud = NULL;
	if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS) {
		snprintf(err, sizeof(err), "%s: invalid LDAP URI '%s'", setting,
			 uri);
		*error_r = err;
		return -1;
	}
	u->ldaps = strcasecmp(lud->lud_scheme, "ldaps") == 0;
	if (!u->ldaps && strcasecmp(lud->lud_scheme, "ldap") != 0) {
		snprintf(err, sizeof(err),
			 "%s: '%s': only ldap:// and ldaps:// URIs are "
			 "supported",
			 setting, uri);
		ldap_free_urldesc(lud);
		*error_r = err;
		return -1;
	}
	const char *host = lud->lud_host && lud->lud_host[0] ? lud->lud_host
							      : "127.0.0.1";
	if (strlen(host) >= sizeof(u->host)) {
		snprintf(err, sizeof(err),
			 "%s: '%s': host name too long", setting, uri);
		ldap_free_urldesc(lud);
		*error_r = err;
		return -1;
	}
	snprintf(u->host, sizeof(u->host), "%s", host);
	if (!resolve) {
		ldap_free_urldesc(lud);
		u->uri = NULL;
		return 0;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d",
		 lud->lud_port ? lud->lud_port
		 : u->ldaps    ? 636
			       : 389);
	struct addrinfo hints = {0}, *ai;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, sizeof(err), "%s: '%s': %s", setting, uri,
			 gai_strerror(rc));
		ldap_free_urldesc(lud);
		*error_r = err;
		return -1;
	}
	memcpy(&u->addr, ai->ai_addr, ai->ai_addrlen);
	u->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	ldap_free_urldesc(lud);
	u->uri = strdup(uri);
	if (u->uri == NULL)
		abort();
	return 0;
}

/* The client context of ldaps:// and StartTLS: TLS 1.2 or later, the
 * directory's certificate verified against ldap.tls_ca_file (or the
 * system's store). */
static int
dir_tls_ctx_new(const char *ca, SSL_CTX **ctx_r, const char **error_r)
{
	static _Thread_local char err[600];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = "ldap: TLS context failed";
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	int ok = ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
			       : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		unsigned long e = ERR_get_error();
		snprintf(err, sizeof(err), "ldap.tls_ca_file \"%s\": %s", ca,
			 e ? ERR_reason_error_string(e) : "cannot be read");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		*error_r = err;
		return -1;
	}
	*ctx_r = ctx;
	return 0;
}

/* ldap.uris into uris[] (*n_r of them), each resolved; with the TLS
 * context they need (NULL when none), made with ldap.tls_ca_file.  With
 * !resolve only the URIs' form is checked (no name looked up, no file
 * read). */
/* The URIs of one setting (space- or comma-separated) into uris. */
static int
dir_parse_list(const char *list_s, const char *setting, struct ldap_uri *uris,
	       unsigned *n_r, int resolve, const char **error_r)
{
	static _Thread_local char err[96];
	unsigned n = 0;
	char *list = strdup(list_s), *save = NULL;
	if (list == NULL)
		abort();
	int rc = 0;
	for (char *tok = strtok_r(list, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		if (n == DIR_MAX_URIS) {
			snprintf(err, sizeof(err), "%s: too many LDAP URIs",
				 setting);
			*error_r = err;
			rc = -1;
			break;
		}
		if (dir_parse_uri(&uris[n], setting, tok, resolve, error_r) < 0) {
			rc = -1;
			break;
		}
		n++;
	}
	free(list);
	if (rc < 0) {
		for (unsigned i = 0; i < n; i++)
			free(uris[i].uri);
		n = 0;
	}
	*n_r = n;
	return rc;
}

static void
dir_free_list(struct ldap_uri *uris, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		free(uris[i].uri);
	*n = 0;
}

/* ldap.uris and ldap.write_uris, and the TLS context they need. */
static int
dir_load(const struct config *cfg, struct dir_target *t, int resolve,
	 const char **error_r)
{
	t->tls_ctx = NULL;
	if (dir_parse_list(cfg->ldap_uris, "ldap.uris", t->uris, &t->n,
			   resolve, error_r) < 0)
		return -1;
	if (t->n == 0) {
		*error_r = "ldap.uris is empty";
		return -1;
	}
	if (dir_parse_list(cfg->ldap_write_uris, "ldap.write_uris", t->wuris,
			   &t->wn, resolve, error_r) < 0) {
		dir_free_list(t->uris, &t->n);
		return -1;
	}
	int need_tls = cfg->ldap_starttls;
	for (unsigned i = 0; i < t->n; i++)
		need_tls |= t->uris[i].ldaps;
	for (unsigned i = 0; i < t->wn; i++)
		need_tls |= t->wuris[i].ldaps;
	if (need_tls && resolve &&
	    dir_tls_ctx_new(cfg->ldap_tls_ca_file, &t->tls_ctx, error_r) < 0) {
		dir_free_list(t->uris, &t->n);
		dir_free_list(t->wuris, &t->wn);
		return -1;
	}
	return 0;
}

int
dir_config_check(const struct config *cfg, const char **error_r)
{
	struct dir_target *t = calloc(1, sizeof(*t));
	char attr[128], value[512]; /* as struct directory has them */
	if (t == NULL)
		abort();
	int rc = priv_split(cfg->ldap_privileged_attribute, attr, sizeof(attr),
			    value, sizeof(value), error_r) < 0 ||
			 dir_load(cfg, t, 0, error_r) < 0
		     ? -1
		     : 0;
	dir_free_list(t->uris, &t->n);
	dir_free_list(t->wuris, &t->wn);
	SSL_CTX_free(t->tls_ctx);
	free(t);
	return rc;
}

/* Binds carry users' passwords: said once per process for a directory
 * reached in clear over the network. */
static void
dir_warn_cleartext(const struct directory *d)
{
	static atomic_int warned;
	if (d->cfg->ldap_starttls)
		return;
	for (unsigned i = 0; i < d->t->n + d->t->wn; i++) {
		const struct ldap_uri *u = i < d->t->n
						   ? &d->t->uris[i]
						   : &d->t->wuris[i - d->t->n];
		int loopback =
		    (u->addr.ss_family == AF_INET &&
		     (ntohl(((const struct sockaddr_in *)&u->addr)
				->sin_addr.s_addr) >>
		      24) == 127) ||
		    (u->addr.ss_family == AF_INET6 &&
		     IN6_IS_ADDR_LOOPBACK(
			 &((const struct sockaddr_in6 *)&u->addr)->sin6_addr));
		if (!u->ldaps && !loopback && atomic_exchange(&warned, 1) == 0)
			log_warn("ldap uri=%s is neither ldaps:// nor "
				 "ldap.starttls: users' passwords cross the "
				 "network in clear",
				 u->uri);
	}
}

/* ldap.privileged_attribute: the attribute asked for with every user's
 * entry, and the value that marks a privileged account. */
static int
priv_split(const char *pa, char *attr, size_t attr_size, char *value,
	   size_t value_size, const char **error_r)
{
	attr[0] = value[0] = '\0';
	if (pa[0] == '\0')
		return 0;
	const char *eq = strchr(pa, '=');
	if (eq == NULL || eq == pa || eq[1] == '\0' ||
	    (size_t)(eq - pa) >= attr_size || strlen(eq + 1) >= value_size) {
		*error_r =
		    "ldap.privileged_attribute: expected attribute=value";
		return -1;
	}
	memcpy(attr, pa, (size_t)(eq - pa));
	attr[eq - pa] = '\0';
	snprintf(value, value_size, "%s", eq + 1);
	return 0;
}

static int
dir_priv_apply(struct directory *d, const char **error_r)
{
	char attr[sizeof(d->priv_attr)], value[sizeof(d->priv_value)];
	/* a value that does not split leaves the one in force */
	if (priv_split(d->cfg->ldap_privileged_attribute, attr, sizeof(attr),
		       value, sizeof(value), error_r) < 0)
		return -1;
	memcpy(d->priv_attr, attr, sizeof(attr));
	memcpy(d->priv_value, value, sizeof(value));
	unsigned na = 0;
	for (; user_attrs[na] != NULL; na++)
		d->user_attrs[na] = user_attrs[na];
	if (d->priv_attr[0] != '\0')
		d->user_attrs[na++] = d->priv_attr;
	d->user_attrs[na] = NULL;
	memcpy(d->rcpt_attrs, d->user_attrs, na * sizeof(*d->user_attrs));
	for (unsigned i = 0; rcpt_extra_attrs[i] != NULL; i++)
		d->rcpt_attrs[na++] = rcpt_extra_attrs[i];
	d->rcpt_attrs[na] = NULL;
	d->conf_priv = d->cfg->ldap_privileged_attribute;
	return 0;
}

static void
dir_conf_keep(struct directory *d)
{
	d->conf_bind_dn = d->cfg->ldap_bind_dn;
	d->conf_bind_pw = d->cfg->ldap_bind_password;
}

struct dir_target *
dir_target_load(const struct config *cfg, const char **error_r)
{
	struct dir_target *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	if (dir_load(cfg, t, 1, error_r) < 0) {
		free(t);
		return NULL;
	}
	t->conf_uris = strdup(cfg->ldap_uris);
	t->conf_wuris = strdup(cfg->ldap_write_uris);
	t->conf_ca = strdup(cfg->ldap_tls_ca_file);
	if (t->conf_uris == NULL || t->conf_wuris == NULL ||
	    t->conf_ca == NULL)
		abort();
	t->conf_starttls = cfg->ldap_starttls;
	atomic_init(&t->refs, 1);
	return t;
}

int
dir_target_matches(const struct dir_target *t, const struct config *cfg)
{
	return strcmp(t->conf_uris, cfg->ldap_uris) == 0 &&
	       strcmp(t->conf_wuris, cfg->ldap_write_uris) == 0 &&
	       strcmp(t->conf_ca, cfg->ldap_tls_ca_file) == 0 &&
	       t->conf_starttls == cfg->ldap_starttls;
}

struct dir_target *
dir_target_ref(struct dir_target *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void
dir_target_unref(struct dir_target **tp)
{
	struct dir_target *t = *tp;
	*tp = NULL;
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	dir_free_list(t->uris, &t->n);
	dir_free_list(t->wuris, &t->wn);
	SSL_CTX_free(t->tls_ctx);
	free(t->conf_uris);
	free(t->conf_wuris);
	free(t->conf_ca);
	free(t);
}

static unsigned
dir_auth_wanted(const struct config *cfg)
{
	int64_t n = cfg->ldap_auth_connections;
	return n < 1 ? 1 : n > DIR_MAX_AUTH ? DIR_MAX_AUTH : (unsigned)n;
}

int
dir_create(uv_loop_t *loop, const struct config *cfg, struct dir_target *target,
	   struct directory **dir_r, const char **error_r)
{
	struct directory *d = calloc(1, sizeof(*d));
	if (d == NULL)
		abort();
	d->loop = loop;
	d->cfg = cfg;
	d->t = dir_target_ref(target);
	dir_conf_keep(d);
	dir_warn_cleartext(d);
	if (dir_priv_apply(d, error_r) < 0)
		goto fail;
	d->search.d = d;
	d->search.role = LDC_SEARCH;
	d->search.fd = -1;
	d->write.d = d;
	d->write.role = LDC_WRITE;
	d->write.fd = -1;
	/* all that ldap.auth_connections may ask for at a reload: a
	   connection's poll handle never moves */
	d->auth = calloc(DIR_MAX_AUTH, sizeof(*d->auth));
	if (d->auth == NULL)
		abort();
	for (unsigned i = 0; i < DIR_MAX_AUTH; i++) {
		d->auth[i].d = d;
		d->auth[i].role = LDC_AUTH;
		d->auth[i].index = i;
		d->auth[i].fd = -1;
	}
	d->nauth = d->nauth_made = dir_auth_wanted(cfg);
	uv_timer_init(loop, &d->sweep);
	uv_timer_init(loop, &d->done_timer);
	d->sweep.data = d->done_timer.data = d;
	uv_timer_start(&d->sweep, dir_sweep, DIR_SWEEP_MS, DIR_SWEEP_MS);
	uv_unref((uv_handle_t *)&d->sweep);
	/* Connect the search connection early so the first login is fast. */
	ldc_connect(&d->search);
	*dir_r = d;
	return 0;
fail:
	dir_target_unref(&d->t);
	free(d);
	return -1;
}

/* -- reload -----------------------------------------------------------------*/

static int
ldc_in_use(const struct ldconn *lc)
{
	if (lc->busy != NULL)
		return 1;
	for (const struct dir_req *r = lc->d->reqs; r != NULL; r = r->next)
		if (r->conn == lc)
			return 1;
	return 0;
}

/* Stale connections with nothing in flight close, to be made again with
 * the directory's new address or credentials by the next request. */
static void
dir_renew_stale(struct directory *d)
{
	for (unsigned i = 0; i < dir_nconns(d); i++) {
		struct ldconn *lc = dir_conn(d, i);
		if (!lc->stale || ldc_in_use(lc))
			continue;
		lc->stale = 0;
		if (lc->state == LDC_DOWN || lc->state == LDC_CLOSING)
			continue;
		ldc_set_state(lc, LDC_CLOSING);
		uv_poll_stop(&lc->poll);
		lc->retry_at = 0;
		uv_close((uv_handle_t *)&lc->poll, ldc_poll_closed);
	}
}

static int
conf_same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void
dir_reconfigure(struct directory *d, struct dir_target *target)
{
	if (d == NULL)
		return;
	const struct config *cfg = d->cfg;
	const char *err;
	unsigned want = dir_auth_wanted(cfg);
	if (!d->shut && want != d->nauth) {
		/* binds go to the first want connections from now; the
		   others close once their bind in flight has ended */
		log_info("ldap reload: auth_connections=%u (were %u)", want,
			 d->nauth);
		for (unsigned i = want; i < d->nauth_made; i++) {
			struct ldconn *lc = &d->auth[i];
			if (lc->state != LDC_DOWN && lc->state != LDC_CLOSING)
				lc->stale = 1;
		}
		d->nauth = want;
		if (want > d->nauth_made)
			d->nauth_made = want;
		dir_pump(d); /* closes the idle ones, binds what waited */
	}
	if (!d->shut &&
	    !conf_same(cfg->ldap_privileged_attribute, d->conf_priv)) {
		/* the searches sent from now ask for the new attribute */
		if (dir_priv_apply(d, &err) < 0)
			log_error("ldap reload: %s", err); /* checked before */
		else
			log_info("ldap reload: privileged_attribute=\"%s\"",
				 cfg->ldap_privileged_attribute);
	}
	int new_target = target != NULL && target != d->t;
	if (d->shut ||
	    (!new_target && conf_same(cfg->ldap_bind_dn, d->conf_bind_dn) &&
	     conf_same(cfg->ldap_bind_password, d->conf_bind_pw)))
		return;
	if (new_target) {
		/* an SSL object keeps the context it was made with */
		dir_target_unref(&d->t);
		d->t = dir_target_ref(target);
	}
	dir_conf_keep(d);
	dir_warn_cleartext(d);
	for (unsigned i = 0; i < dir_nconns(d); i++) {
		struct ldconn *lc = dir_conn(d, i);
		lc->uri_idx = 0;
		lc->tried = 0;
		lc->retry_at = 0;
		lc->stale = lc->state != LDC_DOWN && lc->state != LDC_CLOSING;
	}
	log_info("ldap reload: uris=\"%s\": connections made again once "
		 "idle",
		 cfg->ldap_uris);
	dir_renew_stale(d);
}

static void
ldc_shutdown(struct ldconn *lc)
{
	if (lc->state == LDC_DOWN || lc->state == LDC_CLOSING)
		return;
	ldc_set_state(lc, LDC_CLOSING);
	uv_poll_stop(&lc->poll);
	lc->retry_at = UINT64_MAX;
	uv_close((uv_handle_t *)&lc->poll, ldc_poll_closed);
}

void
dir_shutdown(struct directory *d)
{
	if (d == NULL || d->shut)
		return;
	d->shut = 1;
	/* Callers cancel their requests first; drop what is left. */
	while (d->reqs != NULL)
		req_complete(d->reqs, DIR_TEMPFAIL, "shutting down");
	for (unsigned i = 0; i < dir_nconns(d); i++)
		ldc_shutdown(dir_conn(d, i));
	uv_close((uv_handle_t *)&d->sweep, NULL);
	uv_close((uv_handle_t *)&d->done_timer, NULL);
}

void
dir_free(struct directory **dp)
{
	struct directory *d = *dp;
	if (d == NULL)
		return;
	dir_run_done(&d->done_timer); /* frees finished requests */
	dir_target_unref(&d->t);
	free(d->auth);
	free(d);
	*dp = NULL;
}
