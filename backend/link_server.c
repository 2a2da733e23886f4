/* link_server.c - accepts frontends' links and hosts their sessions.
 *
 * One link carries many sessions, each a stream.  Per stream and per
 * direction the receiver grants a window of bytes (Open.window,
 * Opened.window) and returns credit as it consumes (once half of the
 * window is used), so one slow client never stalls the others on the
 * link.  Frames go out corked: those made while reading one batch of
 * frames, during one notification pass or for one batch of store
 * completions leave in one write per link.
 */
#include "backend/backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>

#include <openssl/x509.h>
#include <zlib.h>

#include "backend/transport/transport.h"
#include "common/link.h"
#include "common/metrics.h"
#include "common/stream_map.h"
#include "common/log.h"
#include "common/protolog.h"

static void session_quota_sync(struct bsession *s, const Portico__Open *o);
static void session_last_login(struct bsession *s, const Portico__Open *o);

#define LINK_DATA_CHUNK 65536
/* sessions parked between two malloc_trim() calls */
#define PARK_TRIM_EVERY 64

struct blink {
	struct backend *be;
	struct conn conn;
	struct buf in;
	char peer[64];
	char name[128];      /* frontend's Hello name */
	int hello;           /* Hello received */
	struct bsession *sessions;   /* every session, for iteration */
	struct stream_map streams;   /* stream id -> session, per frame */
	/* While corked, frames collect in wout and go out in one write:
	   a batch of frames read, or a change shown to many sessions. */
	int corked;
	struct buf wout;
	/* backend.link_timeout: a frontend that has gone (its machine, its
	   loop) is found by the Pings it leaves unanswered */
	uint64_t rx_at;   /* accepted, or bytes last read (loop ms) */
	uint64_t ping_at; /* last Ping sent, 0: none since rx_at */
	uint64_t ping_seq;
	int can_ping; /* the frontend's Hello: link version >= 2 */
	int can_forget; /* ... >= 3 */
	int can_forget_early; /* ... >= 4: Forget before our Hello */
	int can_park; /* ... >= 5: Park, Watch, Open.resume */
	struct blink *next;
};


static void
blink_send_buf(struct blink *l, struct buf *b)
{
	if (l->corked || l->be->links_corked) {
		buf_append(&l->wout, buf_ptr(b), buf_used(b));
	} else {
		metrics_add(&l->be->link_writes, 1);
		conn_write(&l->conn, buf_ptr(b), buf_used(b));
	}
	buf_free(b);
}

static void
blink_send(struct blink *l, const Portico__Frame *f)
{
	struct buf out = BUF_INIT;
	link_frame_pack(f, &out);
	blink_send_buf(l, &out);
}

static void
blink_cork(struct blink *l)
{
	l->corked++;
}

static void
blink_uncork(struct blink *l)
{
	if (--l->corked > 0 || l->be->links_corked)
		return;
	if (buf_used(&l->wout) > 0 && !l->conn.closing) {
		metrics_add(&l->be->link_writes, 1);
		conn_write(&l->conn, buf_ptr(&l->wout), buf_used(&l->wout));
	}
	buf_reset(&l->wout);
}

void
link_server_cork(struct backend *be)
{
	be->links_corked++;
}

void
link_server_uncork(struct backend *be)
{
	if (--be->links_corked > 0)
		return;
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		l->corked++;
		blink_uncork(l);
	}
}

/* -- sessions -------------------------------------------------------------*/

static struct bsession *
blink_find(struct blink *l, uint32_t stream)
{
	return stream_map_get(&l->streams, stream);
}

static void
session_link(struct blink *l, struct bsession *s)
{
	s->prev = NULL;
	s->next = l->sessions;
	if (l->sessions != NULL)
		l->sessions->prev = s;
	l->sessions = s;
	stream_map_put(&l->streams, s->stream, s);
}

static void
session_unlink(struct bsession *s)
{
	struct blink *l = s->link;
	if (stream_map_get(&l->streams, s->stream) != s)
		return; /* not linked */
	stream_map_del(&l->streams, s->stream);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		l->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

/* Deflates len bytes (or flushes with Z_SYNC_FLUSH when data is NULL)
 * into s->out. */
static void
session_deflate(struct bsession *s, const void *data, size_t len)
{
	z_stream *z = s->zout;
	int flush = data == NULL ? Z_SYNC_FLUSH : Z_NO_FLUSH;
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	do {
		char *p = buf_reserve(&s->out, 16384);
		z->next_out = (Bytef *)p;
		z->avail_out = 16384;
		deflate(z, flush);
		buf_commit(&s->out, 16384 - z->avail_out);
	} while (z->avail_in > 0 || z->avail_out == 0);
	s->zdirty = data != NULL;
}

/* Inflates wire bytes into s->in; -1 on a corrupt stream. */
static int
session_inflate(struct bsession *s, const void *data, size_t len)
{
	z_stream *z = s->zin;
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	while (z->avail_in > 0) {
		char *p = buf_reserve(&s->in, 16384);
		z->next_out = (Bytef *)p;
		z->avail_out = 16384;
		int rc = inflate(z, Z_SYNC_FLUSH);
		buf_commit(&s->in, 16384 - z->avail_out);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		if (rc == Z_BUF_ERROR && z->avail_out != 0)
			break;
		/* A decompression bomb is cut off by the input limit. */
		if (buf_used(&s->in) > s->window * 8)
			return -1;
	}
	return 0;
}

int
session_compress_start(struct bsession *s)
{
	if (s->zin != NULL)
		return -1;
	s->zin = calloc(1, sizeof(z_stream));
	s->zout = calloc(1, sizeof(z_stream));
	if (s->zin == NULL || s->zout == NULL)
		abort();
	if (inflateInit2(s->zin, -15) != Z_OK ||
	    deflateInit2(s->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	/* What the client sent after the COMPRESS command is compressed. */
	struct buf rest = s->in;
	memset(&s->in, 0, sizeof(s->in));
	s->unacked_in += buf_used(&rest);
	int rc = session_inflate(s, buf_ptr(&rest), buf_used(&rest));
	buf_free(&rest);
	return rc;
}

static void
session_flush(struct bsession *s)
{
	if (s->link == NULL) {
		direct_session_flush(s);
		return;
	}
	struct buf frames = BUF_INIT;
	if (s->zout != NULL && s->zdirty)
		session_deflate(s, NULL, 0);
	while (buf_used(&s->out) > 0 && s->send_credit > 0) {
		size_t n = buf_used(&s->out);
		if (n > s->send_credit)
			n = (size_t)s->send_credit;
		if (n > LINK_DATA_CHUNK)
			n = LINK_DATA_CHUNK;
		link_send_data(&frames, s->stream, buf_ptr(&s->out), n);
		buf_consume(&s->out, n);
		s->send_credit -= n;
	}
	if (s->ending && buf_used(&s->out) == 0) {
		link_send_close(&frames, s->stream,
				s->close_reason != NULL ? s->close_reason : "");
		blink_send_buf(s->link, &frames);
		log_info("session=%s stream=%u closed", s->id, s->stream);
		session_unlink(s);
		session_free(s);
		return;
	}
	if (buf_used(&frames) > 0)
		blink_send_buf(s->link, &frames);
	else
		buf_free(&frames);
}

void
session_write(struct bsession *s, const void *data, size_t len)
{
	protolog_output(s->plog, data, len);
	if (s->zout != NULL) {
		if (len > 0)
			session_deflate(s, data, len);
		return;
	}
	buf_append(&s->out, data, len);
}

void
session_puts(struct bsession *s, const char *str)
{
	session_write(s, str, strlen(str));
}

void
session_put_uint(struct bsession *s, uint64_t v)
{
	char digits[20];
	session_write(s, digits, buf_format_uint(digits, v));
}

void
session_vprintf(struct bsession *s, const char *fmt, va_list ap)
{
	if (s->zout != NULL || s->plog != NULL) {
		struct buf tmp = BUF_INIT;
		buf_vprintf(&tmp, fmt, ap);
		session_write(s, buf_ptr(&tmp), buf_used(&tmp));
		buf_free(&tmp);
	} else {
		buf_vprintf(&s->out, fmt, ap);
	}
}

void
session_printf(struct bsession *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	session_vprintf(s, fmt, ap);
	va_end(ap);
}

int
session_output_full(const struct bsession *s)
{
	return buf_used(&s->out) > s->window;
}

void
session_consumed(struct bsession *s, size_t n)
{
	/* Compressed sessions return credit for wire bytes on arrival. */
	if (s->zin == NULL)
		s->unacked_in += n;
}

void
session_end(struct bsession *s, const char *reason)
{
	if (!s->ending)
		log_debug("session=%s ending reason=%s", s->id, reason);
	s->ending = 1;
}

void
session_free(struct bsession *s)
{
	if (s->counted) {
		/* gone for the account, whatever still refers to it */
		user_sessions_release(&s->be->user_sessions, s->mailbox_id);
		s->counted = 0;
	}
	if (s->pending_ops > 0) {
		/* A store operation still refers to it: free on its
		   completion. */
		s->dead = 1;
		return;
	}
	if (s->engine != NULL && s->engine->free != NULL)
		s->engine->free(s);
	backend_unwatch(s);
	buf_wipe(&s->in);
	buf_free(&s->out);
	protolog_free(&s->plog);
	if (s->zin != NULL) {
		inflateEnd(s->zin);
		deflateEnd(s->zout);
		free(s->zin);
		free(s->zout);
	}
	s->be->sessions--;
	free(s);
}

void
session_run(struct bsession *s)
{
	if (!s->ending && !s->in_input && !s->waiting) {
		s->in_input = 1;
		s->engine->input(s);
		s->in_input = 0;
	}
	/* Credit goes back once the frontend has used half of the window
	   (bytes consumed and bytes still buffered here): not a Credit frame
	   of its own after every command whose answer waits for the store.
	   A frontend out of credit has used all of it, so it always gets
	   back what has been consumed, as before. */
	size_t used = s->unacked_in + (s->zin == NULL ? buf_used(&s->in) : 0);
	if (s->link != NULL && s->unacked_in > 0 && !s->ending &&
	    used >= s->window / 2) {
		struct buf frames = BUF_INIT;
		link_send_credit(&frames, s->stream, (uint32_t)s->unacked_in);
		metrics_add(&s->be->link_credits, 1);
		s->unacked_in = 0;
		blink_send_buf(s->link, &frames);
	}
	session_flush(s);
}

struct session_op {
	struct bsession *s;
	store_done_fn *done;
	void *ctx;
	void (*free_ctx)(void *ctx);
};

static void
session_op_done(void *ctx, int rc, const char *err)
{
	struct session_op *op = ctx;
	struct bsession *s = op->s;
	s->pending_ops--;
	if (s->dead) {
		if (op->free_ctx != NULL)
			op->free_ctx(op->ctx);
		free(op);
		if (s->pending_ops == 0)
			session_free(s);
		return;
	}
	s->waiting = 0;
	op->done(op->ctx, rc, err);
	if (op->free_ctx != NULL)
		op->free_ctx(op->ctx);
	free(op);
	session_run(s);
}

void
session_store(struct bsession *s, store_op_fn *fn, void *op_args,
	      store_done_fn *done, void *ctx, void (*free_ctx)(void *ctx))
{
	struct session_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	op->s = s;
	op->done = done;
	op->ctx = ctx;
	op->free_ctx = free_ctx;
	s->pending_ops++;
	s->waiting = 1;
	store_submit(s->be->store, fn, op_args, session_op_done, op);
}

void
session_result(struct bsession *s, const Portico__Result *r)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	f.stream = s->stream;
	f.body_case = PORTICO__FRAME__BODY_RESULT;
	f.result = (Portico__Result *)(uintptr_t)r;
	blink_send(s->link, &f);
	session_end(s, "result sent");
}

const char *
session_link_name(const struct bsession *s)
{
	return s->link->name;
}

/* -- watchers ---------------------------------------------------------------*/

static size_t
watch_bucket(const struct backend *be, uint64_t mbox_id)
{
	/* Fibonacci hashing: mailbox ids are sequential */
	return (size_t)((mbox_id * 0x9E3779B97F4A7C15ULL) >> 32) &
	       (be->watch_buckets - 1);
}

static void
watch_link(struct backend *be, struct bsession *s)
{
	struct bsession **head = &be->watch[watch_bucket(be, s->watch_mbox)];
	s->watch_prev = NULL;
	s->watch_next = *head;
	if (*head != NULL)
		(*head)->watch_prev = s;
	*head = s;
}

/* Twice as many buckets (at least 64) once watchers outnumber them. */
static void
watch_grow(struct backend *be)
{
	size_t old = be->watch_buckets;
	struct bsession **was = be->watch;
	be->watch_buckets = old == 0 ? 64 : old * 2;
	be->watch = calloc(be->watch_buckets, sizeof(*be->watch));
	if (be->watch == NULL)
		abort();
	for (size_t i = 0; i < old; i++) {
		for (struct bsession *s = was[i], *next; s != NULL; s = next) {
			next = s->watch_next;
			watch_link(be, s);
		}
	}
	free(was);
}

void
backend_watch(struct bsession *s, uint64_t mbox_id)
{
	struct backend *be = s->be;
	if (s->link == NULL)
		return; /* direct sessions hear of every change */
	backend_unwatch(s);
	if (be->watchers >= be->watch_buckets)
		watch_grow(be);
	s->watching = 1;
	s->watch_mbox = mbox_id;
	watch_link(be, s);
	be->watchers++;
}

void
backend_unwatch(struct bsession *s)
{
	struct backend *be = s->be;
	if (!s->watching)
		return;
	if (s->watch_prev != NULL)
		s->watch_prev->watch_next = s->watch_next;
	else
		be->watch[watch_bucket(be, s->watch_mbox)] = s->watch_next;
	if (s->watch_next != NULL)
		s->watch_next->watch_prev = s->watch_prev;
	s->watch_next = s->watch_prev = NULL;
	s->watching = 0;
	be->watchers--;
}

void
backend_watch_free(struct backend *be)
{
	free(be->watch);
	be->watch = NULL;
	be->watch_buckets = be->watchers = 0;
}

/* all: a pass over every session (BACKEND_MBOX_ANY), else over the
 * watchers of the mailboxes in ids. */
static void
notify_session(struct bsession *s, const uint64_t *ids, unsigned n, int all)
{
	for (unsigned i = 0; i < n; i++) {
		metrics_add(&s->be->notified[all], 1);
		s->engine->notify(s, ids[i]);
	}
	session_flush(s); /* may free s */
}

/* Shows changes to the sessions waiting for them: the watchers of each
 * mailbox in ids, or, for BACKEND_MBOX_ANY (another process wrote to
 * the store), every session.  What it sends to one link leaves in one
 * write. */
static void
notify_pass(struct backend *be, const uint64_t *ids, unsigned n)
{
	int any = 0;
	for (unsigned i = 0; i < n; i++)
		any |= ids[i] == BACKEND_MBOX_ANY;
	for (struct blink *l = be->links; l != NULL; l = l->next)
		blink_cork(l);
	if (any) {
		for (struct blink *l = be->links; l != NULL; l = l->next) {
			for (struct bsession *s = l->sessions, *next; s != NULL;
			     s = next) {
				next = s->next;
				if (s->engine->notify == NULL || s->dead ||
				    s->ending)
					continue;
				notify_session(s, ids, n, 1);
			}
		}
	} else if (be->watchers > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct bsession *s =
			    be->watch[watch_bucket(be, ids[i])];
			for (struct bsession *next; s != NULL; s = next) {
				next = s->watch_next;
				if (s->watch_mbox != ids[i] ||
				    s->engine->notify == NULL || s->dead ||
				    s->ending)
					continue;
				notify_session(s, &ids[i], 1, 0);
			}
		}
	}
	for (struct blink *l = be->links; l != NULL; l = l->next)
		blink_uncork(l);
	for (unsigned i = 0; i < n; i++)
		direct_mailbox_changed(be, ids[i]);
}

static void
notify_run(uv_idle_t *h)
{
	struct backend *be = h->data;
	uint64_t ids[sizeof(be->changed) / sizeof(be->changed[0])];
	unsigned n = be->nchanged;
	memcpy(ids, be->changed, n * sizeof(ids[0]));
	be->nchanged = 0;
	uv_idle_stop(h);
	notify_pass(be, ids, n);
}

void
backend_mailbox_changed(struct backend *be, uint64_t mbox_id)
{
	if (be->loop == NULL || (be->notify_ready &&
	    uv_is_closing((uv_handle_t *)&be->notify_idle))) {
		notify_pass(be, &mbox_id, 1);
		return;
	}
	if (!be->notify_ready) {
		uv_idle_init(be->loop, &be->notify_idle);
		be->notify_idle.data = be;
		be->notify_ready = 1;
	}
	const unsigned max = sizeof(be->changed) / sizeof(be->changed[0]);
	unsigned i;
	for (i = 0; i < be->nchanged; i++)
		if (be->changed[i] == mbox_id ||
		    be->changed[i] == BACKEND_MBOX_ANY)
			break;
	if (i == be->nchanged) {
		if (mbox_id == BACKEND_MBOX_ANY || be->nchanged == max) {
			/* every session looks at its own mailbox */
			be->changed[0] = BACKEND_MBOX_ANY;
			be->nchanged = 1;
		} else {
			be->changed[be->nchanged++] = mbox_id;
		}
	}
	if (!uv_is_active((uv_handle_t *)&be->notify_idle))
		uv_idle_start(&be->notify_idle, notify_run);
}

const char *const backend_refuse_codes[BACKEND_REFUSE_CODES] = {
    "UNAVAILABLE", "CLIENTBUG", "SERVERBUG",   "LIMIT",
    "IN-USE",      "SYS/TEMP",  "LOGIN-DELAY", "other"};

static void
blink_refuse(struct blink *l, uint32_t stream, const char *code,
	     const char *reason, int temporary)
{
	unsigned k = 0;
	while (k < BACKEND_REFUSE_CODES - 1 &&
	       strcmp(backend_refuse_codes[k], code) != 0)
		k++;
	metrics_add(&l->be->refused[k], 1);
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Refused r = PORTICO__REFUSED__INIT;
	r.code = (char *)(uintptr_t)code;
	r.reason = (char *)(uintptr_t)reason;
	r.temporary = temporary;
	f.stream = stream;
	f.body_case = PORTICO__FRAME__BODY_REFUSED;
	f.refused = &r;
	blink_send(l, &f);
}

/* A session of the link on stream, not yet linked nor counted. */
static struct bsession *
session_new(struct blink *l, uint32_t stream, const char *id, const char *user,
	    const char *mailbox_id, const char *client)
{
	struct bsession *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->be = l->be;
	s->link = l;
	s->stream = stream;
	s->window = l->be->cfg.limits_link_window;
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->user, sizeof(s->user), "%s", user);
	snprintf(s->mailbox_id, sizeof(s->mailbox_id), "%s", mailbox_id);
	snprintf(s->client, sizeof(s->client), "%s", client);
	s->opened_at = (int64_t)time(NULL);
	return s;
}

static int kicked_since_login(const struct backend *be, const char *mailbox_id,
			      uint64_t auth_age_ms);

static void
blink_open(struct blink *l, uint32_t stream, const Portico__Open *o)
{
	const struct session_engine *engine;
	switch (o->protocol) {
	case PORTICO__PROTOCOL__PROTOCOL_IMAP:
		engine = &imap_engine;
		break;
	case PORTICO__PROTOCOL__PROTOCOL_POP3:
		engine = &pop3_engine;
		break;
	default:
		blink_refuse(l, stream, "CLIENTBUG", "unknown protocol", 0);
		return;
	}
	if (stream == 0 || blink_find(l, stream) != NULL) {
		blink_refuse(l, stream, "CLIENTBUG", "stream in use", 0);
		return;
	}
	if (l->be->draining) {
		blink_refuse(l, stream, "UNAVAILABLE", "Server shutting down",
			     1);
		return;
	}
	if (o->resume.len == 0 &&
	    kicked_since_login(l->be, o->mailbox_id, o->auth_age_ms)) {
		/* checked by the directory before the account was kicked
		   (and perhaps disabled): the next try asks it again */
		log_warn("session=%s user=%s mailbox=%s open refused: the "
			 "login was checked %llu ms ago, before a kick",
			 o->session_id, o->user, o->mailbox_id,
			 (unsigned long long)o->auth_age_ms);
		blink_refuse(l, stream, "UNAVAILABLE",
			     "Sessions ended by an administrator; log in "
			     "again",
			     1);
		return;
	}
	struct bsession *s = session_new(l, stream, o->session_id, o->user,
					 o->mailbox_id, o->client_addr);
	s->engine = engine;
	s->send_credit = o->window;
	/* A parked session taken up again had its place while parked (its
	   watch counted): never refused for the limit. */
	uint64_t max = o->resume.len > 0
			   ? 0
			   : (uint64_t)l->be->cfg.backend_max_sessions_per_user;
	if (user_sessions_acquire(&l->be->user_sessions, s->mailbox_id, max) <
	    0) {
		log_warn("session=%s user=%s mailbox=%s open refused: "
			 "%llu sessions of the account already "
			 "(backend.max_sessions_per_user)",
			 s->id, s->user, s->mailbox_id,
			 (unsigned long long)max);
		blink_refuse(l, stream, "LIMIT",
			     "Too many sessions for this account", 1);
		free(s);
		return;
	}
	s->counted = 1;
	l->be->sessions++;
	const char *code = "UNAVAILABLE", *reason = "internal error";
	if (engine->open(s, o, &code, &reason) < 0) {
		log_warn("session=%s user=%s mailbox=%s open refused code=%s "
			 "reason=\"%s\"",
			 s->id, s->user, s->mailbox_id, code, reason);
		blink_refuse(l, stream, code, reason, 1);
		/* the engine frees what its open made before it failed (an
		   IMAP session whose parked state was refused) */
		session_free(s);
		return;
	}
	session_quota_sync(s, o);
	session_last_login(s, o);
	session_link(l, s);
	backend_metrics_session(l->be, engine->name);
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Opened op = PORTICO__OPENED__INIT;
	op.window = (uint32_t)s->window;
	f.stream = stream;
	f.body_case = PORTICO__FRAME__BODY_OPENED;
	f.opened = &op;
	blink_send(l, &f);
	log_info("session=%s stream=%u user=%s protocol=%s client=%s opened",
		 s->id, stream, s->user, engine->name, o->client_addr);
	session_run(s);
}

/* -- parked IMAP sessions (link version 5) ------------------------------*/

int
session_can_park(struct bsession *s)
{
	/* not ending: session_flush() does not free it */
	if (s->link != NULL && !s->ending && !s->dead && buf_used(&s->out) > 0)
		session_flush(s);
	return s->link != NULL && s->link->can_park && !s->ending &&
	       !s->dead && !s->waiting && s->pending_ops == 0 &&
	       s->zin == NULL && buf_used(&s->in) == 0 &&
	       buf_used(&s->out) == 0 && !s->draining && !s->kicked;
}

void
session_park(struct bsession *s, const void *state, size_t len,
	     uint64_t mbox_id, uint64_t modseq, const char *mbox_name,
	     uint32_t uidvalidity, int between_commands)
{
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Park p = PORTICO__PARK__INIT;
	p.state.data = (uint8_t *)(uintptr_t)state;
	p.state.len = len;
	p.mbox_id = mbox_id;
	p.modseq = modseq;
	f.stream = s->stream;
	f.body_case = PORTICO__FRAME__BODY_PARK;
	f.park = &p;
	p.received = s->in_total;
	p.mbox_name = (char *)(uintptr_t)(mbox_name != NULL ? mbox_name : "");
	p.uidvalidity = uidvalidity;
	p.moving = s->moving;
	p.between_commands = between_commands;
	blink_send(s->link, &f);
	metrics_add(&s->be->park_offers, 1);
	log_debug("session=%s stream=%u park offered bytes=%zu%s", s->id,
		  s->stream, len, between_commands ? " between commands" : "");
}

/* Parked: the frontend has the session; what stays is a watch of its
 * mailbox, which still counts for backend.max_sessions_per_user (the
 * session is the account's all the same, and taking it up again must not
 * find its place taken). */
static void
session_parked(struct bsession *s)
{
	struct backend *be = s->be;
	uint64_t mbox_id, modseq;
	if (s->ending || s->engine->parked == NULL ||
	    !s->engine->parked(s, &mbox_id, &modseq))
		return;
	log_info("session=%s stream=%u user=%s parked", s->id, s->stream,
		 s->user);
	s->engine->free(s);
	backend_unwatch(s);
	protolog_free(&s->plog);
	buf_free(&s->in);
	buf_free(&s->out);
	metrics_add(&be->parked, 1);
	park_watch_start(s, mbox_id, modseq);
	session_flush(s); /* may free s */
}

/* Watch: a parked session's watch again, on a new stream (the link was
 * lost, the backend restarted). */
static void
blink_watch(struct blink *l, uint32_t stream, const Portico__Watch *w)
{
	if (stream == 0 || blink_find(l, stream) != NULL) {
		log_warn("link peer=%s watch on a stream in use", l->peer);
		conn_close(&l->conn);
		return;
	}
	struct bsession *s = session_new(l, stream, w->session_id, w->user,
					 w->mailbox_id, w->client_addr);
	/* counted as the parked session it is, whatever the limit: the
	   account had the session before */
	user_sessions_acquire(&l->be->user_sessions, s->mailbox_id, 0);
	s->counted = 1;
	l->be->sessions++;
	session_link(l, s);
	log_debug("session=%s stream=%u watch mbox=%llu modseq=%llu", s->id,
		  stream, (unsigned long long)w->mbox_id,
		  (unsigned long long)w->modseq);
	/* the account and the mailbox by name: after a move the ids are
	   this store's */
	uint64_t mbox_id = w->mbox_id;
	const char *why = NULL;
	struct store_user_rec u;
	struct store_mailbox_rec mb;
	MDB_txn *txn;
	const char *err;
	if (store_read_begin(l->be->store, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		why = "park:changed"; /* the session, taken up, says more */
	} else {
		int rc = store_user_get(l->be->store, txn, s->mailbox_id, &u,
					&err);
		if (rc > 0)
			why = "park:moved";
		else if (rc == 0 && w->mbox_name[0] != '\0') {
			rc = store_mailbox_get(l->be->store, txn, u.user_num,
					       w->mbox_name, &mb, &err);
			if (rc == 0 && mb.uidvalidity == w->uidvalidity)
				mbox_id = mb.mbox_id;
			else
				why = "park:changed";
		}
		if (rc < 0) {
			log_error("session=%s store error=\"%s\"", s->id, err);
			why = "park:changed";
		}
		store_read_end(&txn);
	}
	park_watch_start(s, why != NULL ? 0 : mbox_id, w->modseq);
	if (why != NULL)
		park_watch_end(s, why);
	session_flush(s); /* may free s */
}

/* The directory's quota, read by the frontend at login, becomes the
 * user's own limits in the store: written only when it changed, and an
 * entry without one removes a record the directory set (one set with
 * portico-admin quota stays; store_op_quota_set).  The session's first
 * command waits for the commit, so that it already sees the new limits. */
struct quota_sync {
	struct store_quota_set_args a;
	char mailbox_id[256];
	char session[64];
};

static const char *
quota_limit_str(uint64_t v, char *buf, size_t size)
{
	if (v == STORE_QUOTA_BACKEND)
		return "backend";
	snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

static void
quota_sync_free(void *ctx)
{
	free(ctx);
}

static void
quota_sync_done(void *ctx, int rc, const char *err)
{
	struct quota_sync *q = ctx;
	char s1[24], s2[24];
	if (rc != 0)
		log_error("session=%s mailbox=%s quota from the directory not "
			  "kept error=\"%s\"",
			  q->session, q->mailbox_id, err);
	else if (q->a.changed_out)
		log_info("session=%s mailbox=%s quota from the directory "
			 "storage=%s messages=%s",
			 q->session, q->mailbox_id,
			 quota_limit_str(q->a.q.storage, s1, sizeof(s1)),
			 quota_limit_str(q->a.q.messages, s2, sizeof(s2)));
}

static void
quota_sync_detached(void *ctx, int rc, const char *err)
{
	quota_sync_done(ctx, rc, err);
	quota_sync_free(ctx);
}

static void
session_quota_sync(struct bsession *s, const Portico__Open *o)
{
	if (!o->quota_known)
		return;
	struct store_quota want = store_quota_directory(
		o->quota_storage_set, o->quota_storage, o->quota_messages_set,
		o->quota_messages);
	struct store *st = s->be->store;
	struct store_user_rec u;
	struct store_quota have;
	MDB_txn *txn;
	const char *err;
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		return;
	}
	int rc = store_user_get(st, txn, s->mailbox_id, &u, &err);
	int own = rc == 0 ? store_quota_own(st, txn, u.user_num, &have, &err)
			  : -1;
	store_read_end(&txn);
	if (own < 0)
		return; /* no such user (the open failed) or a store error */
	struct quota_sync *q = calloc(1, sizeof(*q));
	if (q == NULL)
		abort();
	q->a.source = STORE_QUOTA_DIRECTORY;
	q->a.q = want;
	if (store_quota_change(own == 1 ? &have : NULL, &q->a) == 0) {
		free(q); /* only a change is written */
		return;
	}
	snprintf(q->mailbox_id, sizeof(q->mailbox_id), "%s", s->mailbox_id);
	snprintf(q->session, sizeof(q->session), "%s", s->id);
	q->a.mailbox_id = q->mailbox_id;
	if (s->pending_ops == 0)
		session_store(s, store_op_quota_set, &q->a, quota_sync_done, q,
			      quota_sync_free);
	else
		store_submit(st, store_op_quota_set, &q->a,
			     quota_sync_detached, q);
}

/* The account's last login in the store, for portico-admin accounts: a
 * new session (not a parked one taken up) and a message submitted write
 * the time when the one recorded is older than
 * backend.last_login_interval (0: never).  Nothing waits for the write. */
struct last_login {
	struct store_last_login_args a;
	char mailbox_id[256];
};

static void
last_login_done(void *ctx, int rc, const char *err)
{
	struct last_login *ll = ctx;
	if (rc != 0)
		log_warn("mailbox=%s last login not kept error=\"%s\"",
			 ll->mailbox_id, err);
	free(ll);
}

void
backend_last_login(struct backend *be, const char *mailbox_id,
		   const char *session_id)
{
	int64_t every = (int64_t)be->cfg.backend_last_login_interval;
	if (every <= 0)
		return;
	struct store *st = be->store;
	struct store_user_rec u;
	MDB_txn *txn;
	const char *err;
	int64_t last = 0, now = (int64_t)time(NULL);
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", session_id, err);
		return;
	}
	int rc = store_user_get(st, txn, mailbox_id, &u, &err);
	int have = rc == 0
		       ? store_last_login_get(st, txn, u.user_num, &last, &err)
		       : -1;
	store_read_end(&txn);
	if (have < 0 || (have == 1 && last <= now && now - last < every))
		return;
	struct last_login *ll = calloc(1, sizeof(*ll));
	if (ll == NULL)
		abort();
	snprintf(ll->mailbox_id, sizeof(ll->mailbox_id), "%s", mailbox_id);
	ll->a.mailbox_id = ll->mailbox_id;
	ll->a.when = now;
	store_submit(st, store_op_last_login, &ll->a, last_login_done, ll);
}

static void
session_last_login(struct bsession *s, const Portico__Open *o)
{
	if (o->resume.len == 0)
		backend_last_login(s->be, s->mailbox_id, s->id);
}

/* Submit or Deliver: a stream that carries one message. */
static void
blink_transport(struct blink *l, const Portico__Frame *f)
{
	uint32_t stream = f->stream;
	if (stream == 0 || blink_find(l, stream) != NULL) {
		blink_refuse(l, stream, "CLIENTBUG", "stream in use", 0);
		return;
	}
	if (l->be->draining) {
		blink_refuse(l, stream, "UNAVAILABLE", "Server shutting down",
			     1);
		return;
	}
	/* transport_open() names it */
	struct bsession *s = session_new(l, stream, "", "", "", "");
	s->engine = &transport_engine;
	l->be->sessions++;
	const char *code = "UNAVAILABLE", *reason = "internal error";
	int temporary = 1;
	if (transport_open(s, f, &code, &reason, &temporary) < 0) {
		log_warn("session=%s stream=%u transport refused code=%s "
			 "reason=\"%s\"",
			 s->id, stream, code, reason);
		blink_refuse(l, stream, code, reason, temporary);
		s->engine = NULL;
		session_free(s);
		return;
	}
	session_link(l, s);
	Portico__Frame of = PORTICO__FRAME__INIT;
	Portico__Opened op = PORTICO__OPENED__INIT;
	op.window = (uint32_t)s->window;
	of.stream = stream;
	of.body_case = PORTICO__FRAME__BODY_OPENED;
	of.opened = &op;
	blink_send(l, &of);
}

/* The wall clock in ms since the epoch: what kick remembers outlives the
 * process. */
static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kicks made before this are past backend.kick_memory. */
static int64_t
kicks_horizon(const struct backend *be, int64_t now)
{
	return now - (int64_t)be->cfg.backend_kick_memory * 1000;
}

/* Drops what kick remembers past backend.kick_memory. */
static void
kicks_prune(struct backend *be)
{
	int64_t horizon = kicks_horizon(be, wall_ms());
	size_t old = 0;
	while (old < be->nkicks && be->kicks[old].at <= horizon)
		old++;
	if (old == 0)
		return;
	memmove(be->kicks, be->kicks + old,
		(be->nkicks - old) * sizeof(be->kicks[0]));
	be->nkicks -= old;
}

static void
kicks_append(struct backend *be, const char *mailbox_id, int64_t at)
{
	if (be->nkicks == be->kicks_room) {
		size_t room = be->kicks_room ? 2 * be->kicks_room : 16;
		struct kick_memo *k = realloc(be->kicks, room * sizeof(*k));
		if (k == NULL)
			abort();
		be->kicks = k;
		be->kicks_room = room;
	}
	struct kick_memo *k = &be->kicks[be->nkicks++];
	snprintf(k->mailbox_id, sizeof(k->mailbox_id), "%s", mailbox_id);
	k->at = at;
}

/* Whether mailbox_id was kicked after the login whose password the
 * directory said good auth_age_ms ago (0: not said; always no).  The
 * kicks are in the order they were made: only those since the login are
 * looked at. */
static int
kicked_since_login(const struct backend *be, const char *mailbox_id,
		   uint64_t auth_age_ms)
{
	if (auth_age_ms == 0 || be->nkicks == 0)
		return 0;
	int64_t login = wall_ms() - (int64_t)auth_age_ms;
	for (size_t i = be->nkicks; i-- > 0 && be->kicks[i].at > login;)
		if (strcasecmp(be->kicks[i].mailbox_id, mailbox_id) == 0)
			return 1;
	return 0;
}

/* Remembers that kick named mailbox_id (once: a second kick moves it to
 * the end). */
static void
kicks_remember(struct backend *be, const char *mailbox_id)
{
	size_t max = (size_t)be->cfg.backend_kick_memory_entries;
	kicks_prune(be);
	for (size_t i = 0; i < be->nkicks; i++) {
		if (strcasecmp(be->kicks[i].mailbox_id, mailbox_id) != 0)
			continue;
		memmove(be->kicks + i, be->kicks + i + 1,
			(be->nkicks - i - 1) * sizeof(be->kicks[0]));
		be->nkicks--;
		break;
	}
	if (be->cfg.backend_kick_memory == 0 || max == 0)
		return;
	if (be->nkicks >= max) {
		/* a tenth more than needed, as in the store: the list moves
		   once every tenth of max kicks, not at each */
		size_t drop = be->nkicks - max + 1 + max / 10;
		if (drop > be->nkicks)
			drop = be->nkicks;
		log_warn("kick memory full (backend.kick_memory_entries=%zu): "
			 "forgetting the oldest %zu",
			 max, drop);
		memmove(be->kicks, be->kicks + drop,
			(be->nkicks - drop) * sizeof(be->kicks[0]));
		be->nkicks -= drop;
	}
	kicks_append(be, mailbox_id, wall_ms());
}

int
link_server_kick_record(struct backend *be, const char *mailbox_id,
			struct store_kick_put_args *put)
{
	const struct kick_memo *k = be->nkicks > 0 ? &be->kicks[be->nkicks - 1]
						   : NULL;
	if (k == NULL || strcmp(k->mailbox_id, mailbox_id) != 0)
		return 0;
	put->mailbox_id = k->mailbox_id;
	put->when = k->at;
	put->before = kicks_horizon(be, k->at);
	put->max = (size_t)be->cfg.backend_kick_memory_entries;
	return 1;
}

static void
kicks_load_one(void *ctx, const char *mailbox_id, int64_t when)
{
	kicks_append(ctx, mailbox_id, when);
}

static int
kick_memo_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct kick_memo *)a)->at,
		y = ((const struct kick_memo *)b)->at;
	return (x > y) - (x < y);
}

int
link_server_kicks_load(struct backend *be, const char **error_r)
{
	MDB_txn *txn;
	if (store_read_begin(be->store, &txn, error_r) < 0)
		return -1;
	int rc = store_kicks_list(be->store, txn, kicks_load_one, be, error_r);
	store_read_end(&txn);
	if (rc < 0)
		return -1;
	size_t found = be->nkicks;
	if (be->nkicks > 1)
		qsort(be->kicks, be->nkicks, sizeof(be->kicks[0]),
		      kick_memo_cmp);
	kicks_prune(be);
	size_t max = (size_t)be->cfg.backend_kick_memory_entries;
	if (be->nkicks > max) {
		size_t drop = be->nkicks - max;
		memmove(be->kicks, be->kicks + drop,
			max * sizeof(be->kicks[0]));
		be->nkicks = max;
	}
	if (be->nkicks < found) {
		static char err[STORE_ERR_SIZE];
		struct store_kicks_trim_args ta = {
		    .before = kicks_horizon(be, wall_ms()), .max = max};
		if (store_run(be->store, store_op_kicks_trim, &ta, err) != 0) {
			*error_r = err;
			return -1;
		}
	}
	log_info("kick memory: %zu accounts remembered, %zu past "
		 "backend.kick_memory or its entries",
		 be->nkicks, found - be->nkicks);
	return 0;
}

void
link_server_kicks_free(struct backend *be)
{
	free(be->kicks);
	be->kicks = NULL;
	be->nkicks = be->kicks_room = 0;
}

static void
blink_hello(struct blink *l, const Portico__Hello *h)
{
	snprintf(l->name, sizeof(l->name), "%s", h->name);
	l->hello = 1;
	l->can_ping = link_version_number(h->version) >= 2;
	l->can_forget = link_version_number(h->version) >= 3;
	l->can_forget_early = link_version_number(h->version) >= 4;
	l->can_park = link_version_number(h->version) >= 5;
	/* Before the Hello, so that no session opens from a cached login
	   that a kick while this frontend had no link should have ended
	   (a frontend of link version 4 takes Forget before Hello; an
	   older one would close the link on it). */
	size_t forgets = 0;
	if (l->can_forget_early) {
		kicks_prune(l->be);
		int64_t now = wall_ms();
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < l->be->nkicks; i++) {
			int64_t age = now - l->be->kicks[i].at;
			link_send_forget(&b, l->be->kicks[i].mailbox_id,
					 age > 0 ? (uint64_t)age : 0);
		}
		forgets = l->be->nkicks;
		if (forgets > 0)
			blink_send_buf(l, &b);
		else
			buf_free(&b);
	}
	Portico__Frame f = PORTICO__FRAME__INIT;
	Portico__Hello me = PORTICO__HELLO__INIT;
	me.role = "backend";
	me.name = l->be->cfg.backend_id;
	me.version = LINK_VERSION;
	me.site = (uint32_t)l->be->cfg.global_site;
	me.imap_capabilities = (char *)(uintptr_t)backend_imap_capabilities();
	f.stream = 0;
	f.body_case = PORTICO__FRAME__BODY_HELLO;
	f.hello = &me;
	blink_send(l, &f);
	log_info("link peer=%s frontend=%s version=%s ready forgets=%zu",
		 l->peer, l->name, h->version, forgets);
}

static void
blink_frame(struct blink *l, Portico__Frame *f)
{
	struct bsession *s;
	if (!l->hello && f->body_case != PORTICO__FRAME__BODY_HELLO) {
		log_warn("link peer=%s frame before hello", l->peer);
		conn_close(&l->conn);
		return;
	}
	switch (f->body_case) {
	case PORTICO__FRAME__BODY_HELLO:
		blink_hello(l, f->hello);
		return;
	case PORTICO__FRAME__BODY_OPEN:
		blink_open(l, f->stream, f->open);
		return;
	case PORTICO__FRAME__BODY_DATA:
		s = blink_find(l, f->stream);
		if (s == NULL)
			return; /* raced with a close */
		if (buf_used(&s->in) + f->data->data.len >
		    s->window + LINK_DATA_CHUNK) {
			log_warn("session=%s frontend overran the window",
				 s->id);
			session_end(s, "window overrun");
			session_flush(s);
			return;
		}
		if (s->zin != NULL) {
			s->unacked_in += f->data->data.len;
			if (session_inflate(s, f->data->data.data,
					    f->data->data.len) < 0) {
				log_warn("session=%s bad compressed input",
					 s->id);
				session_end(s, "bad compressed input");
				session_flush(s);
				return;
			}
		} else {
			buf_append(&s->in, f->data->data.data,
				   f->data->data.len);
		}
		s->in_total += f->data->data.len;
		session_run(s);
		return;
	case PORTICO__FRAME__BODY_CREDIT:
		s = blink_find(l, f->stream);
		if (s == NULL)
			return;
		s->send_credit += f->credit->bytes;
		session_flush(s);
		/* session_flush may have freed s when it was ending. */
		s = blink_find(l, f->stream);
		if (s != NULL && !session_output_full(s))
			session_run(s);
		return;
	case PORTICO__FRAME__BODY_CLOSE:
		s = blink_find(l, f->stream);
		if (s == NULL)
			return;
		log_info("session=%s stream=%u closed by frontend", s->id,
			 s->stream);
		session_unlink(s);
		session_free(s);
		return;
	case PORTICO__FRAME__BODY_DRAIN:
		s = blink_find(l, f->stream);
		if (s == NULL || s->ending)
			return;
		log_debug("session=%s stream=%u frontend draining", s->id,
			  s->stream);
		s->draining = 1;
		if (s->engine->shutdown != NULL) {
			s->engine->shutdown(s, 0);
			if (s->ending)
				session_run(s); /* may free s */
		}
		return;
	case PORTICO__FRAME__BODY_SUBMIT:
	case PORTICO__FRAME__BODY_DELIVER:
		blink_transport(l, f);
		return;
	case PORTICO__FRAME__BODY_END:
		s = blink_find(l, f->stream);
		if (s == NULL)
			return;
		if (s->engine->end == NULL || s->ending) {
			log_warn("session=%s unexpected End", s->id);
			session_end(s, "unexpected End");
			session_flush(s);
			return;
		}
		s->engine->end(s);
		session_run(s);
		return;
	case PORTICO__FRAME__BODY_PING:
		/* the frontend checks that this loop runs: answered now */
		if (f->stream == 0) {
			struct buf b = BUF_INIT;
			link_send_ping(&b, f->ping->seq, 1);
			blink_send_buf(l, &b);
			return;
		}
		break;
	case PORTICO__FRAME__BODY_PONG:
		if (f->stream == 0)
			return;
		break;
	case PORTICO__FRAME__BODY_WATCH:
		if (!l->can_park)
			break;
		blink_watch(l, f->stream, f->watch);
		return;
	case PORTICO__FRAME__BODY_PARKED:
		if (!l->can_park)
			break;
		s = blink_find(l, f->stream);
		if (s != NULL)
			session_parked(s);
		return;
	case PORTICO__FRAME__BODY_OPENED:
	case PORTICO__FRAME__BODY_REFUSED:
	case PORTICO__FRAME__BODY_RESULT:
	case PORTICO__FRAME__BODY_FORGET:
	case PORTICO__FRAME__BODY_PARK:
	case PORTICO__FRAME__BODY__NOT_SET:
	case _PORTICO__FRAME__BODY__CASE_IS_INT_SIZE:
		break;
	}
	log_warn("link peer=%s unexpected frame type=%d", l->peer,
		 (int)f->body_case);
	conn_close(&l->conn);
}

static void
blink_read(struct conn *c, const char *data, size_t len)
{
	struct blink *l = c->data;
	l->rx_at = uv_now(l->be->loop);
	l->ping_at = 0;
	buf_append(&l->in, data, len);
	blink_cork(l);
	for (;;) {
		Portico__Frame *f = NULL;
		const char *err;
		int rc = link_frame_next(&l->in,
					 l->be->cfg.limits_link_max_frame, &f,
					 &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			log_warn("link peer=%s error=\"%s\"", l->peer, err);
			blink_uncork(l);
			conn_close(&l->conn);
			return;
		}
		blink_frame(l, f);
		link_frame_free(&f);
		if (l->conn.closing)
			break;
	}
	blink_uncork(l);
}

static void
blink_drop_sessions(struct blink *l)
{
	while (l->sessions != NULL) {
		struct bsession *s = l->sessions;
		l->sessions = s->next;
		session_free(s);
	}
	stream_map_free(&l->streams);
}

static void
blink_error(struct conn *c, const char *why)
{
	struct blink *l = c->data;
	log_info("link peer=%s frontend=%s closed: %s", l->peer, l->name, why);
}

static void
blink_tls_ready(struct conn *c)
{
	struct blink *l = c->data;
	X509 *cert = SSL_get1_peer_certificate(c->ssl);
	char cn[128] = "?";
	if (cert != NULL) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					  NID_commonName, cn, sizeof(cn));
		X509_free(cert);
	}
	log_info("link peer=%s cert=\"%s\" tls=%s", l->peer, cn,
		 SSL_get_version(c->ssl));
}

static void
blink_closed(struct conn *c)
{
	struct blink *l = c->data;
	blink_drop_sessions(l);
	struct blink **pp = &l->be->links;
	while (*pp != NULL && *pp != l)
		pp = &(*pp)->next;
	if (*pp == l)
		*pp = l->next;
	buf_free(&l->in);
	buf_free(&l->wout);
	free(l);
}

static const struct conn_ops blink_ops = {
	.read = blink_read,
	.error = blink_error,
	.tls_ready = blink_tls_ready,
	.closed = blink_closed,
};

static void
link_on_connection(uv_stream_t *server, int status)
{
	struct backend *be = server->data;
	if (status < 0) {
		log_warn("link accept error=\"%s\"", uv_strerror(status));
		return;
	}
	struct blink *l = calloc(1, sizeof(*l));
	if (l == NULL)
		abort();
	l->be = be;
	if (conn_init(be->loop, &l->conn, &blink_ops, l) < 0) {
		free(l);
		return;
	}
	l->next = be->links;
	be->links = l;
	l->rx_at = uv_now(be->loop);
	if (conn_accept(server, &l->conn) < 0 ||
	    conn_start_tls(&l->conn, be->link_ctx, 1, NULL) < 0) {
		conn_abort(&l->conn);
		return;
	}
	conn_peer_name(&l->conn, l->peer, sizeof(l->peer));
	conn_read_start(&l->conn);
}

static void
link_server_cork_cb(void *arg)
{
	link_server_cork(arg);
}

static void
link_server_uncork_cb(void *arg)
{
	link_server_uncork(arg);
}

static void
link_listener_freed(uv_handle_t *h)
{
	free(h);
}

static void
link_listener_close(struct backend *be)
{
	if (be->link_listener == NULL)
		return;
	uv_close((uv_handle_t *)be->link_listener, link_listener_freed);
	be->link_listener = NULL;
}

/* The link listener on fd (conn_listen_socket()'s): 0, or -1 with why. */
static int
link_listener_open(struct backend *be, int fd, const char **error_r)
{
	uv_tcp_t *t = malloc(sizeof(*t));
	if (t == NULL)
		abort();
	uv_tcp_init(be->loop, t);
	t->data = be;
	int rc = uv_tcp_open(t, fd);
	if (rc < 0)
		close(fd); /* not the handle's */
	else
		rc = uv_listen((uv_stream_t *)t, 511, link_on_connection);
	if (rc < 0) {
		*error_r = uv_strerror(rc);
		uv_close((uv_handle_t *)t, link_listener_freed);
		return -1;
	}
	be->link_listener = t;
	return 0;
}

int
link_server_start(struct backend *be, const char **error_r)
{
	store_writer_batch_hooks(be->store, link_server_cork_cb,
				 link_server_uncork_cb, be);
	/* the port is this backend's alone: a second backend started on
	   the same configuration fails here */
	int fd = conn_listen_socket(be->cfg.backend_link_listen, 0, error_r);
	return fd < 0 ? -1 : link_listener_open(be, fd, error_r);
}

int
link_server_move(struct backend *be, const char *old_listen)
{
	const char *err;
	int fd = conn_listen_socket(be->cfg.backend_link_listen, 0, &err);
	uv_tcp_t *old = be->link_listener;
	be->link_listener = NULL;
	if (fd < 0 || link_listener_open(be, fd, &err) < 0) {
		be->link_listener = old;
		log_error("reload: backend.link_listen kept at %s: %s: %s",
			  old_listen, be->cfg.backend_link_listen, err);
		return -1;
	}
	if (old != NULL)
		uv_close((uv_handle_t *)old, link_listener_freed);
	log_info("reload: backend.link_listen: no longer listening on %s",
		 old_listen);
	log_info("listening protocol=link address=%s",
		 be->cfg.backend_link_listen);
	return 0;
}

void
link_server_drain(struct backend *be, int force)
{
	link_listener_close(be);
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		for (struct bsession *s = l->sessions, *next; s != NULL;
		     s = next) {
			next = s->next;
			if (s->engine == NULL || s->engine->shutdown == NULL ||
			    s->ending)
				continue;
			s->engine->shutdown(s, force);
			if (s->ending)
				session_run(s); /* may free s */
		}
	}
}

/* The frontends forget the account's cached logins (and end its SMTP
 * submission sessions). */
static void
kick_forget(struct backend *be, const char *mailbox_id, unsigned *links_r)
{
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		if (!l->hello || !l->can_forget || l->conn.closing)
			continue;
		struct buf b = BUF_INIT;
		link_send_forget(&b, mailbox_id, 0);
		blink_send_buf(l, &b);
		(*links_r)++;
	}
}

unsigned
link_server_kick(struct backend *be, const char *mailbox_id, unsigned *links_r,
		 int park)
{
	unsigned n = 0;
	*links_r = 0;
	kicks_remember(be, mailbox_id);
	/* The frontends first: a client that reconnects at once after its
	   BYE finds no cached login.  When the account moves, after the
	   sessions: a frontend would end a parked session on the Forget
	   unless it has heard "park:moved" first (the frames of one link
	   leave together, in this order). */
	if (!park)
		kick_forget(be, mailbox_id, links_r);
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		blink_cork(l);
		for (struct bsession *s = l->sessions, *next; s != NULL;
		     s = next) {
			next = s->next;
			if (s->engine == NULL || s->engine->shutdown == NULL ||
			    s->ending || s->kicked || s->moving ||
			    strcasecmp(s->mailbox_id, mailbox_id) != 0)
				continue;
			log_info("session=%s user=%s kicked%s", s->id, s->user,
				 park ? " (moving)" : "");
			if (park &&
			    (s->engine == &imap_engine || park_is_watch(s)))
				s->moving = 1;
			else
				s->kicked = 1;
			n++;
			s->engine->shutdown(s, 0);
			if (s->ending)
				session_run(s); /* may free s */
		}
		blink_uncork(l);
	}
	if (park)
		kick_forget(be, mailbox_id, links_r);
	be->kicked += n;
	return n;
}

void
link_server_sessions(struct backend *be, const char *mailbox_id,
		     struct buf *out)
{
	int64_t now = (int64_t)time(NULL);
	buf_append_str(out, "session\tprotocol\tuser\tmailbox-id\tfrontend\t"
			    "client\tage\n");
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		for (struct bsession *s = l->sessions; s != NULL; s = s->next) {
			if (s->engine == NULL || s->engine->shutdown == NULL ||
			    (mailbox_id != NULL &&
			     strcasecmp(s->mailbox_id, mailbox_id) != 0))
				continue;
			buf_printf(out, "%s\t%s\t%s\t%s\t%s\t%s\t%lld\n", s->id,
				   s->engine->name, s->user, s->mailbox_id,
				   l->name, s->client,
				   (long long)(now > s->opened_at
						   ? now - s->opened_at
						   : 0));
		}
	}
}

/* backend.link_timeout: a link that brought nothing (no frame, no Pong,
 * or no TLS handshake and Hello when it was made) for that long is
 * closed and its sessions end: their frontend, or its machine, has gone,
 * and what they hold (a POP3 maildrop's lock) is free for the user's
 * next login through another.  Quiet links are pinged first
 * (backend.link_ping_interval, at most half the timeout), frontends of
 * link version 2 or later only. */
static void
link_server_check_links(struct backend *be, uint64_t now)
{
	uint64_t timeout = (uint64_t)be->cfg.backend_link_timeout * 1000;
	/* A tick a second late or more: this loop was held up, and what
	   the frontends sent meanwhile is unread; the next tick judges. */
	int late = be->link_tick_at != 0 && now - be->link_tick_at >= 2000;
	be->link_tick_at = now;
	if (timeout == 0)
		return;
	uint64_t interval = (uint64_t)be->cfg.backend_link_ping_interval * 1000;
	if (interval > timeout / 2)
		interval = timeout / 2;
	for (struct blink *l = be->links, *next; l != NULL; l = next) {
		next = l->next;
		if (l->conn.closing || (l->hello && !l->can_ping))
			continue;
		uint64_t quiet = now - l->rx_at;
		if (quiet >= timeout && !late) {
			log_warn("link peer=%s frontend=%s lost: %s for %llu s "
				 "(backend.link_timeout)",
				 l->peer, l->hello ? l->name : "-",
				 l->hello ? "nothing from the frontend"
					  : "no TLS handshake and Hello",
				 (unsigned long long)(quiet / 1000));
			metrics_add(&be->link_timeouts, 1);
			conn_abort(&l->conn);
			continue;
		}
		if (l->hello && quiet >= interval &&
		    (l->ping_at == 0 || now - l->ping_at >= interval)) {
			struct buf b = BUF_INIT;
			link_send_ping(&b, ++l->ping_seq, 0);
			blink_send_buf(l, &b);
			l->ping_at = now;
		}
	}
}

void
link_server_tick(struct backend *be, uint64_t now)
{
	link_server_check_links(be, now);
	for (struct blink *l = be->links; l != NULL; l = l->next) {
		blink_cork(l);
		for (struct bsession *s = l->sessions, *next; s != NULL;
		     s = next) {
			next = s->next;
			if (s->engine == NULL || s->engine->tick == NULL ||
			    s->dead || s->ending)
				continue;
			s->engine->tick(s, now);
			session_flush(s); /* may free s */
		}
		blink_uncork(l);
	}
	/* What parked sessions freed goes back to the system, not only to
	   malloc's free lists: the point of parking is a backend that
	   holds no memory for its idle clients.  malloc_trim() walks the
	   heap, so it runs once a tick at most, after many parks. */
	if (be->parked - be->parked_trimmed >= PARK_TRIM_EVERY) {
		be->parked_trimmed = be->parked;
		malloc_trim(0);
	}
}

void
link_server_stop(struct backend *be)
{
	link_listener_close(be);
	for (struct blink *l = be->links; l != NULL; l = l->next)
		conn_close(&l->conn);
}
