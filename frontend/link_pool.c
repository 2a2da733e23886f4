/* link_pool.c - links to backends and the routing of sessions onto them.
 *
 * One link per backend, multiplexing every session to it.  A backend is
 * found through its LDAP entry (site, link address), cached for
 * frontend.backend_cache_ttl.  A link that fails gives its sessions a
 * clean "unavailable" answer and is reconnected by the next login: at
 * once if it was up, after frontend.link_retry_interval if it failed to
 * come up.
 *
 * Frames for a link collect in its output buffer and leave in one write
 * per loop iteration (the loop's idle handle runs before the next poll
 * and stops itself): the commands of every client read in one iteration,
 * and what the frames of one read from the backend answer (credit,
 * closes), go to the backend together.
 *
 * A backend can hang with its connections up (a stopped process, a loop
 * stuck on a disk): once a second the loop's link timer pings the links
 * that have been quiet for frontend.link_ping_interval and gives up those
 * that brought nothing, not even a Pong or the TLS handshake and Hello of
 * a new connection, for frontend.link_timeout.  Such a link waits out
 * frontend.link_retry_interval before the next try, as one that failed to
 * come up does.
 */
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "common/link.h"
#include "common/stream_map.h"
#include "common/log.h"

#define FLINK_FORGETS_MAX 100000

enum flink_state {
	FLINK_DOWN,
	FLINK_CONNECTING,
	FLINK_READY,
	FLINK_CLOSING,
	FLINK_STATE_COUNT
};

static const char *flink_state_names[] = {"down", "connecting", "ready",
					  "closing"};
_Static_assert(sizeof(flink_state_names) / sizeof(flink_state_names[0]) ==
		       FLINK_STATE_COUNT,
	       "link state names");

struct flink {
	struct frontend *fe;
	char id[64];
	char address[128];
	int site;
	uint64_t info_at;        /* when the LDAP entry was read (ms) */
	struct dir_req *lookup;  /* backend lookup in flight */
	enum flink_state state;
	uint64_t retry_at;
	struct conn *conn;       /* allocated per connection attempt */
	struct buf in;
	uint32_t next_stream;
	uint64_t rx_at;   /* connection made, or bytes last read (ms) */
	uint64_t ping_at; /* last Ping sent, 0: none since rx_at */
	uint64_t ping_seq;
	int can_ping; /* the backend's Hello: link version >= 2 */
	/* Forget frames before the Hello (the kicks the backend remembers):
	   applied together when it comes; beyond FLINK_FORGETS_MAX, every
	   cached login of the backend's accounts is forgotten instead. */
	struct kick_note *forgets;
	size_t nforgets, forgets_room;
	int forget_all;
	char *imap_caps;
	struct client *streams;  /* sessions opened or opening */
	struct stream_map smap;  /* stream id -> client, looked up per frame */
	/* Frames to send, written before the loop's next poll
	   (link_pool_flush_cb()). */
	struct buf wout;
	struct client *waiting;  /* waiting for the link or the lookup */
	/* parked IMAP sessions whose watch went with the link (a backend
	   restart): watched again once it is back, which the link timer
	   brings about */
	struct client *parked;
	int can_park; /* the backend's Hello: link version >= 5 */
	struct xfer *xstreams;   /* mail transport streams, opened */
	struct xfer *xwaiting;   /* waiting for the link or the lookup */
	struct flink *next;
};

/* One message on its own stream (Submit or Deliver, then Data... End,
 * answered by Result). */
struct xfer {
	struct flink *link;
	uint32_t stream;
	struct buf request;      /* the packed Frame to open with */
	const struct xfer_ops *ops;
	void *ctx;
	int answered;            /* Result received */
	/* the mailbox id of the cached login that let the submission in
	   (empty: LDAP's answer, or LMTP): a Forget of it refuses the
	   submission while it waits for the link */
	char cached_login[128];
	struct xfer *next;
};

static void xfer_fail_list(struct xfer **head, const char *why);
static void xfer_unlink(struct xfer **head, struct xfer *x);
static void xfer_send_open(struct flink *l, struct xfer *x);
static void xfer_attach(struct flink *l, struct xfer *x);
static void xfer_frame(struct flink *l, Portico__Frame *f);

static void flink_fail(struct flink *l, const char *why);
static void flink_rewatch(struct flink *l);
static void flink_parked_reconnect(struct frontend *fe);
static int flink_route(struct flink *l);
static void flink_lookup(struct flink *l);
static void flink_attach(struct flink *l, struct client *c);
static void flink_lost(struct flink *l, const char *why, int retry_later);
static void link_pool_flush_cb(uv_idle_t *h);

static void
flink_set_state(struct flink *l, enum flink_state state)
{
	if (l->state == state)
		return;
	log_debug("link backend=%s %s -> %s", l->id,
		  flink_state_names[l->state], flink_state_names[state]);
	if (state == FLINK_READY)
		metrics_add(&l->fe->metrics.links_ready, 1);
	else if (l->state == FLINK_READY)
		metrics_sub(&l->fe->metrics.links_ready, 1);
	l->state = state;
}

/* Queues bytes for the link, to leave with the loop iteration's others. */
static void
flink_queue(struct flink *l, const void *data, size_t len)
{
	buf_append(&l->wout, data, len);
	uv_idle_t *flush = &l->fe->link_flush;
	if (!uv_is_active((uv_handle_t *)flush) &&
	    !uv_is_closing((uv_handle_t *)flush))
		uv_idle_start(flush, link_pool_flush_cb);
}

static void
flink_flush(struct flink *l)
{
	if (buf_used(&l->wout) == 0)
		return;
	if (l->conn != NULL && !l->conn->closing) {
		metrics_add(&l->fe->metrics.link_writes, 1);
		conn_write(l->conn, buf_ptr(&l->wout), buf_used(&l->wout));
	}
	buf_reset(&l->wout);
}

static void
link_pool_flush_cb(uv_idle_t *h)
{
	struct frontend *fe = h->data;
	uv_idle_stop(h);
	/* a failing write fails its link (and that link's sessions) only */
	for (struct flink *l = fe->links; l != NULL; l = l->next)
		flink_flush(l);
}

/* A session's frame (b, freed): only on a link that is up. */
static void
flink_write(struct flink *l, struct buf *b)
{
	if (l->conn != NULL && l->state == FLINK_READY)
		flink_queue(l, buf_ptr(b), buf_used(b));
	buf_free(b);
}

/* A frame of the link's own (Hello) or one opening a stream. */
static void
flink_send(struct flink *l, const Portico__Frame *f)
{
	if (l->conn == NULL)
		return;
	struct buf b = BUF_INIT;
	link_frame_pack(f, &b);
	flink_queue(l, buf_ptr(&b), buf_used(&b));
	buf_free(&b);
}

static void
list_remove(struct client **head, struct client *c)
{
	for (struct client **pp = head; *pp != NULL; pp = &(*pp)->link_next) {
		if (*pp == c) {
			*pp = c->link_next;
			c->link_next = NULL;
			return;
		}
	}
}

static struct client *
flink_stream(struct flink *l, uint32_t stream)
{
	return stream_map_get(&l->smap, stream);
}

static void
flink_stream_add(struct flink *l, struct client *c)
{
	c->link_prev = NULL;
	c->link_next = l->streams;
	if (l->streams != NULL)
		l->streams->link_prev = c;
	l->streams = c;
	stream_map_put(&l->smap, c->stream, c);
}

static void
flink_stream_remove(struct flink *l, struct client *c)
{
	if (stream_map_get(&l->smap, c->stream) != c)
		return;
	stream_map_del(&l->smap, c->stream);
	if (c->link_prev != NULL)
		c->link_prev->link_next = c->link_next;
	else
		l->streams = c->link_next;
	if (c->link_next != NULL)
		c->link_next->link_prev = c->link_prev;
	c->link_prev = c->link_next = NULL;
}

/* Transport streams are few (a message each, while it is sent): a list. */
static struct xfer *
flink_xfer(struct flink *l, uint32_t stream)
{
	for (struct xfer *x = l->xstreams; x != NULL; x = x->next)
		if (x->stream == stream)
			return x;
	return NULL;
}

static uint32_t
flink_new_stream(struct flink *l)
{
	do {
		if (++l->next_stream == 0)
			l->next_stream = 1;
	} while (flink_stream(l, l->next_stream) != NULL ||
		 flink_xfer(l, l->next_stream) != NULL);
	return l->next_stream;
}

static void
flink_send_open(struct flink *l, struct client *c)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Open o = PORTICO__OPEN__INIT;
	char tls[128];
	c->stream = flink_new_stream(l);
	flink_stream_add(l, c);
	frontend_metrics_phase(c, FM_PHASE_ROUTE);
	conn_tls_desc(&c->conn, tls, sizeof(tls));
	o.protocol = c->protocol == CLIENT_IMAP ? PORTICO__PROTOCOL__PROTOCOL_IMAP
						: PORTICO__PROTOCOL__PROTOCOL_POP3;
	o.user = c->user;
	o.mailbox_id = c->duser.mailbox_id;
	o.client_addr = c->peer;
	o.tls = c->tls;
	o.tls_cipher = tls;
	o.session_id = c->id;
	o.tag = c->tag;
	o.window = (uint32_t)l->fe->cfg.limits_link_window;
	c->recv_window = o.window;
	c->recv_uncredited = 0;
	o.quota_known = 1;
	o.quota_storage_set = c->duser.quota_storage_set;
	o.quota_storage = c->duser.quota_storage;
	o.quota_messages_set = c->duser.quota_messages_set;
	o.quota_messages = c->duser.quota_messages;
	if (c->protocol == CLIENT_IMAP) {
		o.imap_capabilities_off = c->duser.imap_caps_off;
		o.client_id = c->client_id;
	}
	if (c->reviving) {
		o.resume.data = (uint8_t *)buf_ptr(&c->park_state);
		o.resume.len = buf_used(&c->park_state);
	} else {
		/* a kick since then refuses it (link_server.c) */
		uint64_t now = lru_now();
		o.auth_age_ms = now > c->auth_at ? now - c->auth_at : 0;
	}
	c->sent_total = 0;
	f.stream = c->stream;
	f.body_case = PORTICO__FRAME__BODY_OPEN;
	f.open = &o;
	flink_send(l, &f);
}

/* Every session of the wait list (chained through link_next) fails to
 * open: its login gets a temporary failure.  Returns how many. */
static unsigned
clients_fail_list(struct client **head, const char *why)
{
	unsigned n = 0;
	while (*head != NULL) {
		struct client *c = *head;
		*head = c->link_next;
		c->link_next = NULL;
		c->link = NULL;
		client_link_closed(c, why, 1);
		n++;
	}
	return n;
}

static void
flink_forgets_clear(struct flink *l)
{
	for (size_t i = 0; i < l->nforgets; i++)
		free(l->forgets[i].mailbox_id);
	free(l->forgets);
	l->forgets = NULL;
	l->nforgets = l->forgets_room = 0;
	l->forget_all = 0;
}

/* Whether id (a cached login's mailbox id, empty: none) is among ids
 * (sorted by auth_cache_forget()), or all. */
static int
forget_match(const char *id, char **ids, size_t n, int all)
{
	return id[0] != '\0' &&
	       (all || bsearch(&id, ids, n, sizeof(*ids), auth_cache_id_cmp));
}

/* Forgets the cached logins of the accounts kicked (every account of the
 * backend if all), and refuses what such a login let in that waits for
 * this link: sessions (a temporary login failure) and submissions (a
 * temporary failure of the message), so that the client's next try asks
 * LDAP; then the accounts' SMTP submission sessions that logged in before
 * the kick end, on every loop (kick.c). */
static void
flink_forget(struct flink *l, struct kick_note *notes, size_t n, int all)
{
	char **ids = NULL;
	if (!all && n > 0) {
		if ((ids = malloc(n * sizeof(*ids))) == NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			ids[i] = notes[i].mailbox_id;
	}
	unsigned cached = all ? auth_cache_forget_backend(l->fe->policy, l->id)
			      : auth_cache_forget(l->fe->policy, ids, n);
	/* Taken off the lists first: the callbacks may change them. */
	struct client *refused = NULL;
	for (struct client *c = l->waiting, *next; c != NULL; c = next) {
		next = c->link_next;
		if (c->login_cached &&
		    forget_match(c->duser.mailbox_id, ids, n, all)) {
			list_remove(&l->waiting, c);
			c->link_next = refused;
			refused = c;
		}
	}
	struct xfer *xrefused = NULL;
	for (struct xfer *x = l->xwaiting, *next; x != NULL; x = next) {
		next = x->next;
		if (forget_match(x->cached_login, ids, n, all)) {
			xfer_unlink(&l->xwaiting, x);
			x->next = xrefused;
			xrefused = x;
		}
	}
	unsigned nrefused = clients_fail_list(&refused,
					      "cached login forgotten");
	for (struct xfer *x = xrefused; x != NULL; x = x->next)
		nrefused++;
	xfer_fail_list(&xrefused, "cached login forgotten");
	free(ids);
	kick_sessions(l->fe, l->id, notes, n, all);
	if (n == 1 && !all)
		log_info("link backend=%s forget mailbox=%s cached=%u "
			 "waiting=%u",
			 l->id, notes[0].mailbox_id, cached, nrefused);
	else if (all)
		log_info("link backend=%s forget mailboxes=all cached=%u "
			 "waiting=%u",
			 l->id, cached, nrefused);
	else
		log_info("link backend=%s forget mailboxes=%zu cached=%u "
			 "waiting=%u",
			 l->id, n, cached, nrefused);
}

/* A Forget frame: applied at once on a link that is up, collected before
 * its Hello.  The kick was made age_ms ago (one the backend remembered). */
static void
flink_forget_frame(struct flink *l, const char *mailbox_id, uint64_t age_ms)
{
	uint64_t now = uv_hrtime() / 1000000;
	struct kick_note note = {
	    .mailbox_id = (char *)(uintptr_t)mailbox_id,
	    .at = now > age_ms ? now - age_ms : 1,
	};
	if (l->state == FLINK_READY) {
		flink_forget(l, &note, 1, 0);
		return;
	}
	if (l->forget_all)
		return;
	if (l->nforgets >= FLINK_FORGETS_MAX) {
		flink_forgets_clear(l);
		l->forget_all = 1;
		return;
	}
	if (l->nforgets == l->forgets_room) {
		size_t room = l->forgets_room ? 2 * l->forgets_room : 16;
		struct kick_note *v = realloc(l->forgets, room * sizeof(*v));
		if (v == NULL)
			abort();
		l->forgets = v;
		l->forgets_room = room;
	}
	if ((note.mailbox_id = strdup(mailbox_id)) == NULL)
		abort();
	l->forgets[l->nforgets++] = note;
}

/* -- frames from the backend ----------------------------------------------*/

static void
flink_frame(struct flink *l, Portico__Frame *f)
{
	struct client *c;
	if (f->body_case == PORTICO__FRAME__BODY_HELLO) {
		if (strcmp(f->hello->role, "backend") != 0) {
			flink_fail(l, "peer is not a backend");
			return;
		}
		free(l->imap_caps);
		l->imap_caps = strdup(f->hello->imap_capabilities);
		l->can_ping = link_version_number(f->hello->version) >= 2;
		l->can_park = link_version_number(f->hello->version) >= 5;
		log_info(
		    "link backend=%s address=%s version=%s ready forgets=%zu",
		    l->id, l->address, f->hello->version,
		    l->forget_all ? (size_t)FLINK_FORGETS_MAX : l->nforgets);
		if (l->nforgets > 0 || l->forget_all)
			flink_forget(l, l->forgets, l->nforgets, l->forget_all);
		flink_forgets_clear(l);
		flink_set_state(l, FLINK_READY);
		while (l->waiting != NULL) {
			c = l->waiting;
			l->waiting = c->link_next;
			c->link_next = NULL;
			flink_send_open(l, c);
		}
		while (l->xwaiting != NULL) {
			struct xfer *x = l->xwaiting;
			l->xwaiting = x->next;
			xfer_send_open(l, x);
		}
		flink_rewatch(l);
		return;
	}
	if (f->stream == 0 && f->body_case == PORTICO__FRAME__BODY_FORGET) {
		flink_forget_frame(l, f->forget->mailbox_id, f->forget->age_ms);
		return;
	}
	if (l->state != FLINK_READY) {
		flink_fail(l, "frame before hello");
		return;
	}
	if (f->stream == 0) {
		if (f->body_case == PORTICO__FRAME__BODY_PING) {
			struct buf b = BUF_INIT;
			link_send_ping(&b, f->ping->seq, 1);
			flink_queue(l, buf_ptr(&b), buf_used(&b));
			buf_free(&b);
			return;
		}
		if (f->body_case == PORTICO__FRAME__BODY_PONG)
			return; /* it was read: rx_at has moved */
	}
	c = flink_stream(l, f->stream);
	if (c == NULL) {
		xfer_frame(l, f);
		return;
	}
	switch (f->body_case) {
	case PORTICO__FRAME__BODY_OPENED:
		client_link_opened(c, f->opened->window);
		return;
	case PORTICO__FRAME__BODY_REFUSED:
		flink_stream_remove(l, c);
		if (!c->reviving) /* a parked session may wait for it */
			c->link = NULL;
		client_link_refused(c, f->refused->code, f->refused->reason);
		return;
	case PORTICO__FRAME__BODY_DATA:
		client_link_data(c, f->data->data.data, f->data->data.len);
		return;
	case PORTICO__FRAME__BODY_CREDIT:
		client_link_credit(c, f->credit->bytes);
		return;
	case PORTICO__FRAME__BODY_CLOSE:
		flink_stream_remove(l, c);
		if (c->parked && c->watching) {
			c->watching = 0;
			if (strcmp(f->close->reason, "park:draining") == 0) {
				/* watched again when the backend is back */
				c->link_next = l->parked;
				l->parked = c;
				return;
			}
			client_park_closed(c, f->close->reason);
			return;
		}
		if (c->relocating) /* its watch, which a move closed */
			return;
		c->link = NULL;
		client_link_closed(c, "session ended", 0);
		return;
	case PORTICO__FRAME__BODY_PARK:
		if (l->can_park && client_link_park(c, f->park))
			link_pool_send_parked(c);
		return;
	case PORTICO__FRAME__BODY_HELLO:
	case PORTICO__FRAME__BODY_OPEN:
	case PORTICO__FRAME__BODY_SUBMIT:
	case PORTICO__FRAME__BODY_DELIVER:
	case PORTICO__FRAME__BODY_END:
	case PORTICO__FRAME__BODY_RESULT:
	case PORTICO__FRAME__BODY_DRAIN:
	case PORTICO__FRAME__BODY_PING:
	case PORTICO__FRAME__BODY_PONG:
	case PORTICO__FRAME__BODY_FORGET:
	case PORTICO__FRAME__BODY_WATCH:
	case PORTICO__FRAME__BODY_PARKED:
	case PORTICO__FRAME__BODY__NOT_SET:
	case _PORTICO__FRAME__BODY__CASE_IS_INT_SIZE:
		break;
	}
	flink_fail(l, "unexpected frame");
}

/* The clients that answers of this read went to: their records leave now,
 * one write each (client_link_data corks them). */
static void
link_pool_uncork(struct frontend *fe)
{
	while (fe->corked != NULL) {
		struct client *c = fe->corked;
		fe->corked = c->cork_next;
		c->cork_next = NULL;
		conn_uncork(&c->conn);
	}
}

static void
flink_read(struct conn *conn, const char *data, size_t len)
{
	struct flink *l = conn->data;
	struct frontend *fe = l->fe;
	l->rx_at = uv_now(fe->loop);
	l->ping_at = 0;
	buf_append(&l->in, data, len);
	while (l->conn == conn && !conn->closing) {
		Portico__Frame *f = NULL;
		const char *err;
		int rc = link_frame_next(&l->in, fe->cfg.limits_link_max_frame,
					 &f, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			flink_fail(l, err);
			break;
		}
		flink_frame(l, f);
		link_frame_free(&f);
	}
	link_pool_uncork(fe);
}

static void
flink_conn_closed(struct conn *conn)
{
	free(conn);
}

/* Fails every session on the link and closes it. */
static void
flink_fail(struct flink *l, const char *why)
{
	flink_lost(l, why, 0);
}

/* flink_fail(); retry_later: wait out frontend.link_retry_interval even if
 * the link was up (it hung rather than went away). */
static void
flink_lost(struct flink *l, const char *why, int retry_later)
{
	if (l->conn == NULL)
		return;
	log_warn("link backend=%s address=%s lost: %s", l->id, l->address,
		 why);
	struct conn *conn = l->conn;
	l->conn = NULL;
	conn->data = l; /* callbacks below ignore it: l->conn != conn */
	if (!conn->closing)
		conn_abort(conn);
	/* A link that was up is tried again by the next login at once (the
	 * backend restarting is back within a moment); one that failed to
	 * come up waits for the retry interval. */
	int was_ready = l->state == FLINK_READY && !retry_later;
	flink_set_state(l, FLINK_DOWN);
	flink_forgets_clear(l);
	l->retry_at = was_ready ? 0
				: uv_now(l->fe->loop) +
					  (uint64_t)l->fe->cfg
							  .frontend_link_retry_interval *
						  1000;
	buf_reset(&l->in);
	buf_reset(&l->wout); /* frames of the lost connection's streams */
	while (l->streams != NULL) {
		struct client *c = l->streams;
		flink_stream_remove(l, c);
		if (c->parked && (c->watching || c->reviving)) {
			/* the client stays; its watch (or the session it
			   asked for, within frontend.link_timeout) comes
			   back with the link */
			c->watching = 0;
			c->link_next = l->parked;
			l->parked = c;
			if (c->reviving)
				client_park_wait(c);
			continue;
		}
		c->link = NULL;
		client_link_closed(c, "backend link lost", 1);
	}
	clients_fail_list(&l->waiting, "backend link lost");
	xfer_fail_list(&l->xstreams, "backend link lost");
	xfer_fail_list(&l->xwaiting, "backend link lost");
}

static void
flink_error(struct conn *conn, const char *why)
{
	struct flink *l = conn->data;
	if (l->conn == conn)
		flink_fail(l, why);
}

static void
flink_tls_ready(struct conn *conn)
{
	struct flink *l = conn->data;
	X509 *cert = SSL_get1_peer_certificate(conn->ssl);
	char cn[128] = "";
	if (cert != NULL) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					  NID_commonName, cn, sizeof(cn));
		X509_free(cert);
	}
	char want[96];
	snprintf(want, sizeof(want), "backend:%s", l->id);
	if (strcmp(cn, want) != 0) {
		char why[300];
		snprintf(why, sizeof(why),
			 "certificate names \"%s\", expected \"%s\"", cn, want);
		flink_fail(l, why);
	}
}

static const struct conn_ops flink_conn_ops = {
	.read = flink_read,
	.error = flink_error,
	.tls_ready = flink_tls_ready,
	.closed = flink_conn_closed,
};

static void
flink_connected(struct conn *conn, int status)
{
	struct flink *l = conn->data;
	if (l->conn != conn)
		return;
	if (status < 0) {
		flink_fail(l, uv_strerror(status));
		return;
	}
	char host[128];
	snprintf(host, sizeof(host), "%s", l->address);
	char *colon = strrchr(host, ':');
	if (colon != NULL)
		*colon = '\0';
	if (conn_start_tls(conn, l->fe->link_ctx, 0, host) < 0) {
		flink_fail(l, "TLS setup failed");
		return;
	}
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Hello h = PORTICO__HELLO__INIT;
	h.role = "frontend";
	h.name = l->fe->cfg.global_name;
	h.version = LINK_VERSION;
	h.site = (uint32_t)l->fe->cfg.global_site;
	f.stream = 0;
	f.body_case = PORTICO__FRAME__BODY_HELLO;
	f.hello = &h;
	flink_send(l, &f);
	conn_read_start(conn);
}

static void
flink_connect(struct flink *l)
{
	struct sockaddr_storage ss;
	const char *err;
	if (conn_parse_addr(l->address, &ss, &err) < 0) {
		log_error("link backend=%s address=\"%s\" error=\"%s\"", l->id,
			  l->address, err);
		l->retry_at = uv_now(l->fe->loop) +
			      (uint64_t)l->fe->cfg.frontend_link_retry_interval *
				      1000;
		return;
	}
	struct conn *conn = malloc(sizeof(*conn));
	if (conn == NULL)
		abort();
	if (conn_init(l->fe->loop, conn, &flink_conn_ops, l) < 0) {
		free(conn);
		return;
	}
	l->conn = conn;
	buf_reset(&l->in);
	l->rx_at = uv_now(l->fe->loop);
	l->ping_at = 0;
	l->can_ping = 0;
	flink_set_state(l, FLINK_CONNECTING);
	int rc = conn_connect(conn, (struct sockaddr *)&ss, flink_connected);
	if (rc < 0)
		flink_fail(l, uv_strerror(rc));
}

/* -- routing --------------------------------------------------------------*/

static struct flink *
flink_find(struct frontend *fe, const char *id)
{
	for (struct flink *l = fe->links; l != NULL; l = l->next)
		if (strcmp(l->id, id) == 0)
			return l;
	return NULL;
}

/* Puts c on the link: opens at once, waits, or refuses. */
static void
flink_attach(struct flink *l, struct client *c)
{
	c->link = l;
	switch (l->state) {
	case FLINK_READY:
		flink_send_open(l, c);
		return;
	case FLINK_CONNECTING:
		c->link_next = l->waiting;
		l->waiting = c;
		return;
	case FLINK_DOWN:
	case FLINK_CLOSING:
		if (uv_now(l->fe->loop) < l->retry_at) {
			c->link = NULL;
			client_link_closed(c, "backend unavailable", 1);
			return;
		}
		c->link_next = l->waiting;
		l->waiting = c;
		flink_connect(l);
		return;
	case FLINK_STATE_COUNT:
		abort();
	}
}

static void
flink_lookup_done(void *ctx, enum dir_result res, const struct dir_backend *b,
		  const char *why)
{
	struct flink *l = ctx;
	l->lookup = NULL;
	struct client *waiting = l->waiting;
	l->waiting = NULL;
	if (res != DIR_OK) {
		log_warn("backend=%s lookup failed: %s", l->id,
			 why ? why : "?");
		clients_fail_list(&waiting, "backend lookup failed");
		xfer_fail_list(&l->xwaiting, "backend lookup failed");
		return;
	}
	l->info_at = uv_now(l->fe->loop);
	l->site = b->site;
	policy_backend_put(l->fe->policy, b);
	if (strcmp(l->address, b->link_address) != 0) {
		if (l->address[0] != '\0')
			log_info("backend=%s moved %s -> %s", l->id,
				 l->address, b->link_address);
		snprintf(l->address, sizeof(l->address), "%s",
			 b->link_address);
		if (l->conn != NULL)
			flink_fail(l, "backend address changed");
		l->retry_at = 0;
	}
	while (waiting != NULL) {
		struct client *c = waiting;
		waiting = c->link_next;
		c->link_next = NULL;
		flink_attach(l, c);
	}
	struct xfer *xw = l->xwaiting;
	l->xwaiting = NULL;
	while (xw != NULL) {
		struct xfer *x = xw;
		xw = x->next;
		x->next = NULL;
		xfer_attach(l, x);
	}
}

/* The link to backend id, created on first use. */
static struct flink *
flink_get(struct frontend *fe, const char *id)
{
	struct flink *l = flink_find(fe, id);
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			abort();
		l->fe = fe;
		snprintf(l->id, sizeof(l->id), "%s", id);
		l->next = fe->links;
		fe->links = l;
	}
	return l;
}

/* frontend.backend_cache_ttl in ms. */
static uint64_t
flink_ttl(const struct flink *l)
{
	return (uint64_t)l->fe->cfg.frontend_backend_cache_ttl * 1000;
}

/* Whether the backend's entry was read within frontend.backend_cache_ttl. */
static int
flink_fresh(struct flink *l)
{
	return l->address[0] != '\0' &&
	       uv_now(l->fe->loop) - l->info_at < flink_ttl(l);
}

/* Whether the backend's entry may be used without waiting for it to be
 * read again: fresh, or older (up to twice the time) while the link is up,
 * which keeps serving while the entry is re-read (flink_route()). */
static int
flink_usable(struct flink *l)
{
	uint64_t ttl = flink_ttl(l);
	return flink_fresh(l) ||
	       (l->state == FLINK_READY && l->address[0] != '\0' && ttl > 0 &&
		uv_now(l->fe->loop) - l->info_at < 2 * ttl);
}

static void
flink_lookup(struct flink *l)
{
	if (l->lookup == NULL)
		l->lookup = dir_lookup_backend(l->fe->dir, l->id,
					       flink_lookup_done, l);
}

/* Takes the entry another loop read, if it is fresh and names the address
 * this link has (or the link has none yet). */
static void
flink_adopt_shared(struct flink *l)
{
	struct frontend *fe = l->fe;
	struct dir_backend b;
	uint64_t age;
	if (policy_backend_get(fe->policy, l->id, &b, &age) < 0 ||
	    age >= flink_ttl(l))
		return;
	if (l->address[0] != '\0' && strcmp(l->address, b.link_address) != 0)
		return; /* moved: the lookup handles the change */
	uint64_t now = uv_now(fe->loop);
	uint64_t at = now > age ? now - age : 0;
	if (l->address[0] != '\0' && at <= l->info_at)
		return;
	snprintf(l->address, sizeof(l->address), "%s", b.link_address);
	l->site = b.site;
	l->info_at = at;
}

/* Whether a session may go onto l now: its entry is fresh (its own, or
 * one another loop read), or past its time on a link that is up, which
 * serves while the entry is read again in the background. */
static int
flink_route(struct flink *l)
{
	if (!flink_fresh(l))
		flink_adopt_shared(l);
	if (flink_fresh(l))
		return 1;
	if (!flink_usable(l))
		return 0;
	flink_lookup(l);
	return 1;
}

void
link_pool_open(struct frontend *fe, struct client *c)
{
	struct flink *l = flink_get(fe, c->duser.mailbox_server);
	if (flink_route(l)) {
		flink_attach(l, c);
		return;
	}
	c->link = l;
	c->link_next = l->waiting;
	l->waiting = c;
	flink_lookup(l);
}

void
link_pool_detach(struct client *c)
{
	struct flink *l = c->link;
	if (l == NULL)
		return;
	int open = c->stream != 0 && flink_stream(l, c->stream) == c;
	if (open) {
		flink_stream_remove(l, c);
		struct buf b = BUF_INIT;
		link_send_close(&b, c->stream, "client gone");
		flink_write(l, &b);
	} else {
		list_remove(&l->waiting, c);
		list_remove(&l->parked, c);
	}
	c->link = NULL;
}

void
link_pool_send_data(struct client *c, const void *data, size_t len)
{
	if (c->link == NULL)
		return;
	struct buf b = BUF_INIT;
	link_send_data(&b, c->stream, data, len);
	flink_write(c->link, &b);
	c->sent_total += len;
}

void
link_pool_send_credit(struct client *c, uint32_t bytes)
{
	if (c->link == NULL || bytes == 0)
		return;
	struct buf b = BUF_INIT;
	link_send_credit(&b, c->stream, bytes);
	flink_write(c->link, &b);
}

void
link_pool_send_drain(struct client *c)
{
	if (c->link == NULL || c->state != CLIENT_RELAY)
		return;
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Drain d = PORTICO__DRAIN__INIT;
	f.stream = c->stream;
	f.body_case = PORTICO__FRAME__BODY_DRAIN;
	f.drain = &d;
	struct buf b = BUF_INIT;
	link_frame_pack(&f, &b);
	flink_write(c->link, &b);
}

/* -- parked IMAP sessions (link version 5) ------------------------------*/

void
link_pool_send_parked(struct client *c)
{
	if (c->link == NULL)
		return;
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Parked p = PORTICO__PARKED__INIT;
	f.stream = c->stream;
	f.body_case = PORTICO__FRAME__BODY_PARKED;
	f.parked = &p;
	flink_send(c->link, &f);
}

static void
flink_send_watch(struct flink *l, struct client *c)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Watch w = PORTICO__WATCH__INIT;
	c->stream = flink_new_stream(l);
	flink_stream_add(l, c);
	c->watching = 1;
	w.mailbox_id = c->duser.mailbox_id;
	w.mbox_id = c->park_mbox;
	w.modseq = c->park_modseq;
	w.session_id = c->id;
	w.mbox_name = c->park_name != NULL ? c->park_name : "";
	w.uidvalidity = c->park_uidvalidity;
	w.user = c->user;
	w.client_addr = c->peer;
	f.stream = c->stream;
	f.body_case = PORTICO__FRAME__BODY_WATCH;
	f.watch = &w;
	flink_send(l, &f);
}

/* The link is back: the parked sessions whose watch went with it watch
 * again (a backend that no longer parks: they are taken up again, which
 * it refuses or answers). */
static void
flink_rewatch(struct flink *l)
{
	struct client *list = l->parked;
	l->parked = NULL;
	while (list != NULL) {
		struct client *c = list;
		list = c->link_next;
		c->link_next = NULL;
		if (c->reviving) {
			flink_send_open(l, c);
			continue;
		}
		if (l->can_park) {
			flink_send_watch(l, c);
			continue;
		}
		client_park_revive(c);
	}
}

/* Links that went down under parked sessions are connected again by the
 * link timer (nothing else would: their clients say nothing), once
 * frontend.link_retry_interval allows. */
static void
flink_parked_reconnect(struct frontend *fe)
{
	uint64_t now = uv_now(fe->loop);
	for (struct flink *l = fe->links; l != NULL; l = l->next) {
		if (l->parked == NULL || l->state != FLINK_DOWN ||
		    now < l->retry_at)
			continue;
		if (flink_route(l))
			flink_connect(l);
		else
			flink_lookup(l); /* the next tick connects */
	}
}

void
link_pool_unwatch(struct client *c)
{
	struct flink *l = c->link;
	if (l == NULL)
		return;
	if (c->watching && flink_stream(l, c->stream) == c) {
		flink_stream_remove(l, c);
		struct buf b = BUF_INIT;
		link_send_close(&b, c->stream, "client active");
		flink_write(l, &b);
	}
	c->watching = 0;
	list_remove(&l->parked, c);
}

void
link_pool_resume(struct client *c)
{
	struct flink *l = c->link;
	if (l == NULL) {
		client_link_closed(c, "backend unavailable", 1);
		return;
	}
	if (l->state == FLINK_READY && flink_route(l)) {
		flink_send_open(l, c);
		return;
	}
	link_pool_resume_later(c);
}

void
link_pool_rehome(struct client *c, const char *backend)
{
	link_pool_unwatch(c);
	struct flink *l = flink_get(c->fe, backend);
	c->link = l;
	if (c->reviving) {
		link_pool_resume(c);
		return;
	}
	if (l->state == FLINK_READY && l->can_park && flink_route(l)) {
		flink_send_watch(l, c);
		return;
	}
	c->link_next = l->parked;
	l->parked = c;
	flink_parked_reconnect(l->fe);
}

void
link_pool_resume_later(struct client *c)
{
	struct flink *l = c->link;
	/* the backend is away (restarting): the client's command waits for
	   it on the parked list, which the link's Hello takes up */
	c->link_next = l->parked;
	l->parked = c;
	client_park_wait(c);
	flink_parked_reconnect(l->fe);
}

void
link_pool_stop(struct frontend *fe)
{
	if (!uv_is_closing((uv_handle_t *)&fe->link_timer))
		uv_close((uv_handle_t *)&fe->link_timer, NULL);
	for (struct flink *l = fe->links; l != NULL; l = l->next) {
		if (l->lookup != NULL) {
			dir_cancel(l->lookup);
			l->lookup = NULL;
		}
		if (l->conn != NULL) {
			flink_flush(l); /* the Close frames of the sessions */
			struct conn *conn = l->conn;
			l->conn = NULL;
			conn_close(conn);
		}
	}
}

/* Once a second: pings for quiet links, and the end of hung ones. */
static void
link_pool_tick(uv_timer_t *t)
{
	struct frontend *fe = t->data;
	flink_parked_reconnect(fe);
	client_park_relocate_tick(fe);
	uint64_t timeout = (uint64_t)fe->cfg.frontend_link_timeout * 1000;
	if (timeout == 0)
		return;
	uint64_t interval = (uint64_t)fe->cfg.frontend_link_ping_interval *
			    1000;
	if (interval > timeout / 2)
		interval = timeout / 2;
	uint64_t now = uv_now(fe->loop);
	/* A tick a second late or more: this loop was held up (a stopped
	   process, a paused machine), and what the backends sent meanwhile
	   waits unread in the sockets; the next tick judges. */
	int late = fe->link_tick_at != 0 && now - fe->link_tick_at >= 2000;
	fe->link_tick_at = now;
	for (struct flink *l = fe->links; l != NULL; l = l->next) {
		if (l->conn == NULL || l->conn->closing)
			continue;
		uint64_t quiet = now - l->rx_at;
		if (l->state == FLINK_READY && !l->can_ping)
			continue; /* an older backend: no Pong to wait for */
		if (quiet >= timeout && !late) {
			char why[96];
			snprintf(why, sizeof(why),
				 "%s for %llu s (frontend.link_timeout)",
				 l->state == FLINK_READY
				     ? "nothing from the backend"
				     : "no TLS handshake and Hello",
				 (unsigned long long)(quiet / 1000));
			metrics_add(&fe->metrics.link_timeouts, 1);
			flink_lost(l, why, 1);
			continue;
		}
		if (l->state == FLINK_READY && quiet >= interval &&
		    (l->ping_at == 0 || now - l->ping_at >= interval)) {
			struct buf b = BUF_INIT;
			link_send_ping(&b, ++l->ping_seq, 0);
			flink_queue(l, buf_ptr(&b), buf_used(&b));
			buf_free(&b);
			l->ping_at = now;
			metrics_add(&fe->metrics.link_pings, 1);
		}
	}
}

void
link_pool_init(struct frontend *fe)
{
	uv_idle_init(fe->loop, &fe->link_flush);
	fe->link_flush.data = fe;
	uv_timer_init(fe->loop, &fe->link_timer);
	fe->link_timer.data = fe;
	uv_timer_start(&fe->link_timer, link_pool_tick, 1000, 1000);
	uv_unref((uv_handle_t *)&fe->link_timer);
}

void
link_pool_free(struct frontend *fe)
{
	while (fe->links != NULL) {
		struct flink *l = fe->links;
		fe->links = l->next;
		buf_free(&l->in);
		buf_free(&l->wout);
		free(l->imap_caps);
		flink_forgets_clear(l);
		stream_map_free(&l->smap);
		free(l);
	}
}

/* Whether cap (an IMAP capability) is in the post-login list of every
 * backend whose link said hello; true while none has. */
int
link_pool_backends_offer(struct frontend *fe, const char *cap)
{
	size_t n = strlen(cap);
	for (struct flink *l = fe->links; l != NULL; l = l->next) {
		if (l->imap_caps == NULL)
			continue;
		int found = 0;
		for (const char *p = l->imap_caps; *p != '\0';) {
			while (*p == ' ')
				p++;
			size_t len = strcspn(p, " ");
			if (len == n && strncasecmp(p, cap, n) == 0)
				found = 1;
			p += len;
		}
		if (!found)
			return 0;
	}
	return 1;
}

/* -- mail transport streams -----------------------------------------------*/

static void
xfer_unlink(struct xfer **head, struct xfer *x)
{
	for (struct xfer **pp = head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			x->next = NULL;
			return;
		}
	}
}

/* Every stream of the list fails: its owner hears why, then x is its
 * owner's to close. */
static void
xfer_fail_list(struct xfer **head, const char *why)
{
	while (*head != NULL) {
		struct xfer *x = *head;
		*head = x->next;
		x->next = NULL;
		x->link = NULL;
		if (!x->answered)
			x->ops->failed(x->ctx, why);
	}
}

static void
xfer_send_open(struct flink *l, struct xfer *x)
{
	Portico__Frame *f = portico__frame__unpack(
		NULL, buf_used(&x->request), (const uint8_t *)buf_ptr(&x->request));
	if (f == NULL)
		abort(); /* packed by us */
	x->stream = flink_new_stream(l);
	f->stream = x->stream;
	x->next = l->xstreams;
	l->xstreams = x;
	flink_send(l, f);
	portico__frame__free_unpacked(f, NULL);
	buf_wipe(&x->request);
}

static void
xfer_attach(struct flink *l, struct xfer *x)
{
	x->link = l;
	switch (l->state) {
	case FLINK_READY:
		xfer_send_open(l, x);
		return;
	case FLINK_CONNECTING:
		x->next = l->xwaiting;
		l->xwaiting = x;
		return;
	case FLINK_DOWN:
	case FLINK_CLOSING:
		if (uv_now(l->fe->loop) < l->retry_at) {
			x->link = NULL;
			x->ops->failed(x->ctx, "backend unavailable");
			return;
		}
		x->next = l->xwaiting;
		l->xwaiting = x;
		flink_connect(l);
		return;
	case FLINK_STATE_COUNT:
		abort();
	}
}

/* A frame for a stream that is not a client session. */
static void
xfer_frame(struct flink *l, Portico__Frame *f)
{
	struct xfer *x = flink_xfer(l, f->stream);
	if (x == NULL)
		return; /* closed by its owner; our Close is on the way */
	switch (f->body_case) {
	case PORTICO__FRAME__BODY_OPENED:
		x->ops->opened(x->ctx, f->opened->window);
		return;
	case PORTICO__FRAME__BODY_CREDIT:
		x->ops->credit(x->ctx, f->credit->bytes);
		return;
	case PORTICO__FRAME__BODY_REFUSED: {
		xfer_unlink(&l->xstreams, x);
		x->link = NULL;
		char why[300];
		snprintf(why, sizeof(why), "%s %s", f->refused->code,
			 f->refused->reason);
		x->ops->failed(x->ctx, why);
		return;
	}
	case PORTICO__FRAME__BODY_RESULT:
		if (x->answered) {
			flink_fail(l, "second result on a stream");
			return;
		}
		x->answered = 1;
		x->ops->result(x->ctx, f->result);
		return;
	case PORTICO__FRAME__BODY_CLOSE:
		xfer_unlink(&l->xstreams, x);
		x->link = NULL;
		if (!x->answered)
			x->ops->failed(x->ctx, f->close->reason[0]
						       ? f->close->reason
						       : "closed by the backend");
		return;
	case PORTICO__FRAME__BODY_DATA:
	case PORTICO__FRAME__BODY_HELLO:
	case PORTICO__FRAME__BODY_OPEN:
	case PORTICO__FRAME__BODY_SUBMIT:
	case PORTICO__FRAME__BODY_DELIVER:
	case PORTICO__FRAME__BODY_END:
	case PORTICO__FRAME__BODY_DRAIN:
	case PORTICO__FRAME__BODY_PING:
	case PORTICO__FRAME__BODY_PONG:
	case PORTICO__FRAME__BODY_PARK:
	case PORTICO__FRAME__BODY_WATCH:
	case PORTICO__FRAME__BODY_PARKED:
	case PORTICO__FRAME__BODY_FORGET:
	case PORTICO__FRAME__BODY__NOT_SET:
	case _PORTICO__FRAME__BODY__CASE_IS_INT_SIZE:
		break;
	}
	flink_fail(l, "unexpected frame on a transport stream");
}

struct xfer *
link_pool_xfer_open(struct frontend *fe, const char *backend,
		    const Portico__Frame *f, const struct xfer_ops *ops,
		    void *ctx, const char *cached_login)
{
	struct xfer *x = calloc(1, sizeof(*x));
	if (x == NULL)
		abort();
	x->ops = ops;
	x->ctx = ctx;
	if (cached_login != NULL)
		snprintf(x->cached_login, sizeof(x->cached_login), "%s",
			 cached_login);
	size_t n = portico__frame__get_packed_size(f);
	portico__frame__pack(f, (uint8_t *)buf_reserve(&x->request, n));
	buf_commit(&x->request, n);
	struct flink *l = flink_get(fe, backend);
	if (flink_route(l)) {
		if ((l->state == FLINK_DOWN || l->state == FLINK_CLOSING) &&
		    uv_now(fe->loop) < l->retry_at) {
			buf_free(&x->request);
			free(x);
			return NULL; /* failed recently: not before the retry */
		}
		xfer_attach(l, x);
		return x;
	}
	x->link = l;
	x->next = l->xwaiting;
	l->xwaiting = x;
	flink_lookup(l);
	return x;
}

void
link_pool_xfer_data(struct xfer *x, const void *data, size_t len)
{
	if (x->link == NULL || x->stream == 0)
		return;
	struct buf b = BUF_INIT;
	link_send_data(&b, x->stream, data, len);
	flink_write(x->link, &b);
}

void
link_pool_xfer_end(struct xfer *x)
{
	if (x->link == NULL || x->stream == 0)
		return;
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__End e = PORTICO__END__INIT;
	f.stream = x->stream;
	f.body_case = PORTICO__FRAME__BODY_END;
	f.end = &e;
	struct buf b = BUF_INIT;
	link_frame_pack(&f, &b);
	flink_write(x->link, &b);
}

void
link_pool_xfer_close(struct xfer **xp)
{
	struct xfer *x = *xp;
	if (x == NULL)
		return;
	*xp = NULL;
	struct flink *l = x->link;
	if (l != NULL) {
		if (x->stream != 0 && flink_xfer(l, x->stream) == x) {
			xfer_unlink(&l->xstreams, x);
			struct buf b = BUF_INIT;
			link_send_close(&b, x->stream,
					x->answered ? "done" : "aborted");
			flink_write(l, &b);
		} else {
			xfer_unlink(&l->xwaiting, x);
		}
	}
	buf_wipe(&x->request);
	free(x);
}
