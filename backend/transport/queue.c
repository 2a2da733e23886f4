/* queue.c - the transport queue: durable entries and their runner. */
#include "backend/transport/queue.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <strings.h>

#include "backend/transport/dsn.h"
#include "backend/transport/relay.h"
#include "backend/transport/transport.h"
#include "backend/mime/mime.h"
#include "common/log.h"
#include "common/smtp_parser.h"
#include "queue.pb-c.h"

void
queue_id_format(uint64_t id, char *out, size_t outsize)
{
	snprintf(out, outsize, "%016" PRIX64, id);
}

/* -- queueing a submission ------------------------------------------------*/

void
queue_add_prepare(struct queue_add_args *a, const Portico__Submit *sub,
		  const char *user, const char *data, size_t len)
{
	Portico__QueueEntry *qe = calloc(1, sizeof(*qe));
	if (qe == NULL)
		abort();
	portico__queue_entry__init(qe);
	qe->arrival = (int64_t)time(NULL);
	qe->user = (char *)(uintptr_t)user;
	qe->mailbox_id = sub->mailbox_id;
	qe->mail_from = sub->mail_from;
	qe->client_addr = sub->client_addr;
	qe->session_id = sub->session_id;
	qe->body = sub->body;
	qe->smtputf8 = sub->smtputf8;
	qe->envid = sub->envid;
	qe->ret = sub->ret;
	qe->next_attempt = qe->arrival;
	qe->n_rcpt = sub->n_rcpt;
	qe->rcpt = calloc(sub->n_rcpt, sizeof(*qe->rcpt));
	Portico__QueueRcpt *rs = calloc(sub->n_rcpt, sizeof(*rs));
	if (qe->rcpt == NULL || rs == NULL)
		abort();
	for (size_t i = 0; i < sub->n_rcpt; i++) {
		portico__queue_rcpt__init(&rs[i]);
		rs[i].address = sub->rcpt[i]->address;
		rs[i].notify = sub->rcpt[i]->notify;
		rs[i].orcpt = sub->rcpt[i]->orcpt;
		qe->rcpt[i] = &rs[i];
	}
	a->qe = qe;
	a->data = data;
	a->len = len;
}

void
queue_add_release(struct queue_add_args *a)
{
	if (a->qe != NULL) {
		if (a->qe->n_rcpt > 0)
			free(a->qe->rcpt[0]);
		free(a->qe->rcpt);
		free(a->qe);
		a->qe = NULL;
	}
	free(a->entry);
	a->entry = NULL;
}

int
queue_add_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct queue_add_args *a = vargs;
	uint64_t id;
	int rc = store_queue_next_id(st, txn, &id);
	if (rc == 0) {
		a->qe->id = id;
		free(a->entry);
		a->entry_len = portico__queue_entry__get_packed_size(a->qe);
		a->entry = malloc(a->entry_len ? a->entry_len : 1);
		if (a->entry == NULL)
			abort();
		portico__queue_entry__pack(a->qe, a->entry);
		rc = store_queue_put(st, txn, id, a->entry, a->entry_len);
	}
	if (rc == 0)
		rc = store_queue_msg_put(st, txn, id, a->data, a->len);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "queue: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	a->id_out = id;
	return 0;
}

/* -- the runner -------------------------------------------------------------
 *
 * Entries live on disk; in memory the runner keeps their ids and next
 * attempt times, those not under way in a binary heap ordered by next
 * attempt (so a queue of many messages, a smarthost down for a day,
 * costs O(log n) per submission and per attempt, never a scan).  An attempt reads the entry, sends its pending local
 * recipients to the LMTP servers and the others to the smarthost (two
 * relays at once), then settles: one store operation writes the new
 * state (or removes the entry) together with a DSN for recipients that
 * just failed (or succeeded, with NOTIFY=SUCCESS).
 */

enum { ROUTE_LMTP, ROUTE_SMARTHOST, ROUTE_COUNT };

struct qitem {
	uint64_t id;
	int64_t arrival;        /* when the message was accepted */
	int64_t next_attempt;
	int busy;               /* an attempt is under way: not in the heap */
};

struct route {
	struct relay_req req;
	struct relay_rcpt *rcpt;
	size_t *idx;          /* into the entry's recipients */
	size_t n;
};

struct attempt {
	struct transport *t;
	struct qitem *item;
	Portico__QueueEntry *qe;
	char *data;
	size_t len;
	char qid[32];
	uint8_t *was_pending;
	struct route routes[ROUTE_COUNT];
	int pending_routes;
	/* the settling operation */
	uint8_t *entry;
	size_t entry_len;
	int remove;
	struct buf dsn, dsn_meta;
	int dsn_rc;
	char dsn_err[STORE_ERR_SIZE];
	uint64_t dsn_mbox;
	char delivery_id[SMTP_MAX_DELIVERY_ID + 1];
	/* portico-admin queue delete came while it was under way: the
	   entry is gone from the store, and the attempt ends without
	   writing it again or reporting to the sender */
	int deleted;
	struct attempt *next;
};

/* Delivery records older than transport.delivery_id_lifetime go every
 * PRUNE_INTERVAL_MS, at most PRUNE_BATCH per transaction (the next batch
 * follows at once when more are due). */
#define PRUNE_INTERVAL_MS (10 * 60 * 1000)
#define PRUNE_BATCH 5000

struct transport {
	struct backend *be;
	uv_timer_t timer;
	struct qitem **heap;    /* the items not under way */
	size_t nheap, heapcap;
	size_t count;           /* every item, under way or not */
	uv_timer_t prune_timer;
	struct store_delivery_prune_args prune;
	int pruning;
	struct attempt *attempts;
	unsigned active;
	/* transport.smarthost_tls and smarthost_ca_file, as made from the
	   settings named (an attempt holds a reference to the context it
	   started with, so that a reload may replace it) */
	SSL_CTX *tls_ctx;
	enum relay_tls tls;
	char *conf_tls, *conf_ca;
	int stopping;
};

static void queue_schedule(struct transport *t);

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static int
heap_before(const struct qitem *a, const struct qitem *b)
{
	return a->next_attempt < b->next_attempt ||
	       (a->next_attempt == b->next_attempt && a->id < b->id);
}

static void
heap_push(struct transport *t, struct qitem *it)
{
	if (t->nheap == t->heapcap) {
		size_t cap = t->heapcap ? t->heapcap * 2 : 64;
		struct qitem **h = realloc(t->heap, cap * sizeof(*h));
		if (h == NULL)
			abort();
		t->heap = h;
		t->heapcap = cap;
	}
	size_t i = t->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!heap_before(it, t->heap[up]))
			break;
		t->heap[i] = t->heap[up];
		i = up;
	}
	t->heap[i] = it;
}

static struct qitem *
heap_pop(struct transport *t)
{
	struct qitem *top = t->heap[0], *last = t->heap[--t->nheap];
	size_t i = 0, n = t->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_before(t->heap[c + 1], t->heap[c]))
			c++;
		if (!heap_before(t->heap[c], last))
			break;
		t->heap[i] = t->heap[c];
		i = c;
	}
	if (n > 0)
		t->heap[i] = last;
	return top;
}

/* A new item, waiting in the heap.  Ids come from the store (the queue
 * at start, then each new submission): never one already here. */
static void
item_add(struct transport *t, uint64_t id, int64_t arrival,
	 int64_t next_attempt)
{
	struct qitem *it = calloc(1, sizeof(*it));
	if (it == NULL)
		abort();
	it->id = id;
	it->arrival = arrival;
	it->next_attempt = next_attempt;
	t->count++;
	heap_push(t, it);
}

/* Forgets an item that is not in the heap. */
static void
item_remove(struct transport *t, struct qitem *it)
{
	t->count--;
	free(it);
}

int
queue_is_local(const struct config *cfg, const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return 1; /* a bare local part: ours */
	const char *dom = at + 1;
	size_t dl = strlen(dom);
	const char *p = cfg->transport_local_domains;
	while (*p != '\0') {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n > 0 && n == dl && strncasecmp(p, dom, n) == 0)
			return 1;
		p += n;
	}
	return 0;
}

static void
attempt_free(struct attempt *a)
{
	struct transport *t = a->t;
	struct attempt **pp = &t->attempts;
	while (*pp != NULL && *pp != a)
		pp = &(*pp)->next;
	if (*pp == a)
		*pp = a->next;
	for (int i = 0; i < ROUTE_COUNT; i++) {
		free(a->routes[i].rcpt);
		free(a->routes[i].idx);
		SSL_CTX_free(a->routes[i].req.tls_ctx); /* its reference */
	}
	if (a->qe != NULL)
		portico__queue_entry__free_unpacked(a->qe, NULL);
	free(a->was_pending);
	free(a->data);
	free(a->entry);
	buf_free(&a->dsn);
	buf_free(&a->dsn_meta);
	free(a);
}

/* Sets a recipient's last reply (strings copied into the entry). */
static void
rcpt_set(Portico__QueueRcpt *r, uint32_t code, const char *status,
	 const char *text, const char *remote, int64_t when)
{
	if (r->status != NULL && r->status != protobuf_c_empty_string)
		free(r->status);
	if (r->text != NULL && r->text != protobuf_c_empty_string)
		free(r->text);
	if (r->remote != NULL && r->remote != protobuf_c_empty_string)
		free(r->remote);
	r->code = code;
	r->status = strdup(status);
	r->text = strdup(text);
	r->remote = strdup(remote);
	if (r->status == NULL || r->text == NULL || r->remote == NULL)
		abort();
	r->last_attempt = when;
}

static int
settle_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct attempt *a = vargs;
	int rc = a->remove ? store_queue_del(st, txn, a->qe->id)
			   : store_queue_put(st, txn, a->qe->id, a->entry,
					     a->entry_len);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "queue: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	a->dsn_mbox = 0;
	if (buf_used(&a->dsn) == 0)
		return 0;
	/* The notification goes into the sender's INBOX, whatever the
	   quota: it must not be lost. */
	struct deliver_rcpt dr = {.mailbox_id = a->qe->mailbox_id};
	struct deliver_args da = {
	    .msg = {.data = buf_ptr(&a->dsn),
		    .len = buf_used(&a->dsn),
		    .meta = buf_used(&a->dsn_meta) ? buf_ptr(&a->dsn_meta)
						   : NULL,
		    .metalen = buf_used(&a->dsn_meta)},
	    .rcpt = &dr,
	    .n = 1,
	    .unlimited = 1,
	};
	if ((rc = deliver_op(st, txn, &da, err)) != 0)
		return rc;
	a->dsn_rc = dr.rc;
	snprintf(a->dsn_err, sizeof(a->dsn_err), "%s", dr.err);
	a->dsn_mbox = dr.mbox_id;
	return 0;
}

static void
settle_done(void *ctx, int rc, const char *err)
{
	struct attempt *a = ctx;
	struct transport *t = a->t;
	struct qitem *it = a->item;
	if (rc != 0) {
		log_error("queue=%s state not saved error=\"%s\"", a->qid, err);
		it->next_attempt = now_s() + t->be->cfg.transport_retry_first;
	} else {
		if (buf_used(&a->dsn) > 0) {
			if (a->dsn_rc == 0) {
				log_info("queue=%s dsn to=<%s> mailbox=%s "
					 "stored",
					 a->qid, a->qe->mail_from,
					 a->qe->mailbox_id);
				backend_mailbox_changed(t->be, a->dsn_mbox);
			} else {
				log_error("queue=%s dsn to=<%s> mailbox=%s "
					  "lost error=\"%s\"",
					  a->qid, a->qe->mail_from,
					  a->qe->mailbox_id, a->dsn_err);
			}
		}
		it->next_attempt = a->qe->next_attempt;
	}
	it->busy = 0;
	if (rc == 0 && a->remove) {
		log_info("queue=%s removed", a->qid);
		item_remove(t, it);
	} else if (a->deleted) {
		/* deleted while this state was on its way to the store: the
		   deletion, queued after it, removes the entry */
		log_info("queue=%s attempt ended: deleted by portico-admin",
			 a->qid);
		item_remove(t, it);
	} else {
		heap_push(t, it);
	}
	t->active--;
	attempt_free(a);
	queue_schedule(t);
}

/* Every route has answered: the new state, durable, with its DSN. */
static void
attempt_settle(struct attempt *a)
{
	struct transport *t = a->t;
	const struct config *cfg = &t->be->cfg;
	Portico__QueueEntry *qe = a->qe;
	int64_t now = now_s();
	int64_t expires = qe->arrival + cfg->transport_max_queue_lifetime;
	size_t pending = 0;
	qe->attempts++;
	for (size_t i = 0; i < qe->n_rcpt; i++) {
		Portico__QueueRcpt *r = qe->rcpt[i];
		if (r->state != PORTICO__RCPT_STATE__RCPT_PENDING)
			continue;
		if (now >= expires) {
			char text[700];
			snprintf(text, sizeof(text),
				 "Message expired after %u attempts; last "
				 "error: %s",
				 qe->attempts, r->text);
			char *status = strdup(r->status[0] == '4' ? r->status
								  : "4.4.7");
			char *remote = strdup(r->remote);
			if (status == NULL || remote == NULL)
				abort();
			rcpt_set(r, r->code, status, text, remote,
				 r->last_attempt ? r->last_attempt : now);
			free(status);
			free(remote);
			r->state = PORTICO__RCPT_STATE__RCPT_FAILED;
			continue;
		}
		pending++;
	}
	/* Recipients settled by this attempt that want a report. */
	struct dsn_rcpt *dr = calloc(qe->n_rcpt, sizeof(*dr));
	if (dr == NULL)
		abort();
	size_t nd = 0;
	for (size_t i = 0; i < qe->n_rcpt; i++) {
		Portico__QueueRcpt *r = qe->rcpt[i];
		if (!a->was_pending[i] ||
		    r->state == PORTICO__RCPT_STATE__RCPT_PENDING)
			continue;
		int failed = r->state == PORTICO__RCPT_STATE__RCPT_FAILED;
		log_info("queue=%s to=<%s> %s remote=%s status=%u %s \"%s\"",
			 a->qid, r->address,
			 failed ? "failed"
			 : r->state == PORTICO__RCPT_STATE__RCPT_DELIVERED
				 ? "delivered"
				 : "relayed",
			 r->remote[0] ? r->remote : "-", r->code, r->status,
			 r->text);
		if (!dsn_wanted(r->notify, failed))
			continue;
		/* A relayed recipient's success is reported by the next
		   hop when it took NOTIFY. */
		if (r->state == PORTICO__RCPT_STATE__RCPT_RELAYED &&
		    a->routes[ROUTE_SMARTHOST].req.dsn_offered)
			continue;
		dr[nd].address = r->address;
		dr[nd].orcpt = r->orcpt;
		dr[nd].action =
			failed ? "failed"
			: r->state == PORTICO__RCPT_STATE__RCPT_DELIVERED
				? "delivered"
				: "relayed";
		dr[nd].code = r->code;
		dr[nd].status = r->status;
		dr[nd].text = r->text;
		dr[nd].remote = r->remote;
		dr[nd].last_attempt = r->last_attempt;
		nd++;
	}
	if (a->deleted) {
		free(dr);
		log_info("queue=%s attempt ended: deleted by portico-admin",
			 a->qid);
		item_remove(t, a->item);
		t->active--;
		attempt_free(a);
		queue_schedule(t);
		return;
	}
	/* Still pending after transport.delay_warning: the sender hears of
	   it once per recipient. */
	if (cfg->transport_delay_warning > 0 &&
	    now - qe->arrival >= cfg->transport_delay_warning) {
		for (size_t i = 0; i < qe->n_rcpt; i++) {
			Portico__QueueRcpt *r = qe->rcpt[i];
			if (r->state != PORTICO__RCPT_STATE__RCPT_PENDING ||
			    r->delay_notified)
				continue;
			r->delay_notified = 1;
			if (!dsn_wanted_delay(r->notify))
				continue;
			dr[nd].address = r->address;
			dr[nd].orcpt = r->orcpt;
			dr[nd].action = "delayed";
			dr[nd].code = r->code;
			dr[nd].status = r->status[0] == '4' ? r->status : "4.0.0";
			dr[nd].text = r->text;
			dr[nd].remote = r->remote;
			dr[nd].last_attempt = r->last_attempt;
			dr[nd].will_retry_until = expires;
			nd++;
			log_info("queue=%s to=<%s> delayed: sender told",
				 a->qid, r->address);
		}
	}
	/* Never a report about a report (null reverse-path). */
	if (nd > 0 && qe->mail_from[0] != '\0') {
		struct dsn_msg m = {
			.queue_id = a->qid,
			.sender = qe->mail_from,
			.envid = qe->envid,
			.ret = qe->ret,
			.whole = qe->return_whole,
			.eightbit = strcasecmp(qe->body, "8BITMIME") == 0,
			.arrival = qe->arrival,
			.data = a->data,
			.len = a->len,
		};
		/* Stored straight into the sender's INBOX, so with the
		   Return-Path final delivery adds (RFC 5321 4.4): null, a
		   report's reverse path (RFC 3461 6.2). */
		buf_printf(&a->dsn, "Return-Path: <>\r\n");
		dsn_build(cfg, &m, dr, nd, &a->dsn);
		mime_cache_build(buf_ptr(&a->dsn), buf_used(&a->dsn),
				 &a->dsn_meta);
	}
	free(dr);
	if (pending == 0) {
		a->remove = 1;
	} else {
		int64_t wait = cfg->transport_retry_first;
		for (uint32_t k = 1; k < qe->attempts && wait < cfg->transport_retry_max; k++)
			wait *= 2;
		if (wait > cfg->transport_retry_max)
			wait = cfg->transport_retry_max;
		qe->next_attempt = now + wait;
		if (qe->next_attempt > expires)
			qe->next_attempt = expires;
		a->entry_len = portico__queue_entry__get_packed_size(qe);
		a->entry = malloc(a->entry_len ? a->entry_len : 1);
		if (a->entry == NULL)
			abort();
		portico__queue_entry__pack(qe, a->entry);
		log_info("queue=%s deferred pending=%zu attempts=%u next=%llds",
			 a->qid, pending, qe->attempts,
			 (long long)(qe->next_attempt - now));
	}
	store_submit(t->be->store, settle_op, a, settle_done, a);
}

/* What one route settled is written at once, before the other route
 * ends (a smarthost may take minutes): a restart in between must not
 * send those recipients again. */
struct mark {
	uint64_t id;
	uint8_t *entry;
	size_t len;
	char qid[32];
};

static int
mark_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct mark *m = vargs;
	int rc = store_queue_put(st, txn, m->id, m->entry, m->len);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "queue: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	return 0;
}

static void
mark_done(void *ctx, int rc, const char *err)
{
	struct mark *m = ctx;
	if (rc != 0)
		log_error("queue=%s state not saved error=\"%s\"", m->qid,
			  err);
	free(m->entry);
	free(m);
}

static void
attempt_mark(struct attempt *a)
{
	if (a->deleted)
		return;
	struct mark *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	m->id = a->qe->id;
	snprintf(m->qid, sizeof(m->qid), "%s", a->qid);
	m->len = portico__queue_entry__get_packed_size(a->qe);
	m->entry = malloc(m->len ? m->len : 1);
	if (m->entry == NULL)
		abort();
	portico__queue_entry__pack(a->qe, m->entry);
	store_submit(a->t->be->store, mark_op, m, mark_done, m);
}

static void
route_done(struct relay_req *req)
{
	struct attempt *a = req->ctx;
	struct route *rt = NULL;
	int which = 0;
	for (int i = 0; i < ROUTE_COUNT; i++)
		if (&a->routes[i].req == req) {
			rt = &a->routes[i];
			which = i;
		}
	int64_t now = now_s();
	for (size_t k = 0; rt != NULL && k < rt->n; k++) {
		const struct relay_rcpt *rr = &rt->rcpt[k];
		Portico__QueueRcpt *r = a->qe->rcpt[rt->idx[k]];
		rcpt_set(r, rr->code, rr->status, rr->text, req->remote, now);
		if (rr->code >= 200 && rr->code < 300)
			r->state = which == ROUTE_LMTP
					   ? PORTICO__RCPT_STATE__RCPT_DELIVERED
					   : PORTICO__RCPT_STATE__RCPT_RELAYED;
		else if (rr->code >= 500)
			r->state = PORTICO__RCPT_STATE__RCPT_FAILED;
	}
	if (--a->pending_routes == 0)
		attempt_settle(a);
	else
		attempt_mark(a);
}

/* The id under which the recipient backends record this entry's local
 * deliveries: this backend's id, the queue id and the arrival time, the
 * same on every attempt (a store rebuilt from scratch reuses queue ids,
 * not their arrival times). */
static void
delivery_id(const struct config *cfg, const Portico__QueueEntry *qe,
	    char out[SMTP_MAX_DELIVERY_ID + 1])
{
	/* 26 + "." + 16 + "." + at most 20: within SMTP_MAX_DELIVERY_ID */
	char name[27];
	size_t n = 0;
	for (const char *p = cfg->backend_id; *p != '\0' && n + 1 < sizeof(name);
	     p++) {
		unsigned char c = (unsigned char)*p;
		name[n++] = isalnum(c) || c == '-' || c == '_' ? (char)c : '_';
	}
	name[n] = '\0';
	snprintf(out, SMTP_MAX_DELIVERY_ID + 1, "%s.%016" PRIX64 ".%lld",
		 n ? name : "portico", qe->id, (long long)qe->arrival);
}

/* Starts an attempt on an item taken from the heap: 1 under way, 0 not
 * started (next_attempt moved on: back to the heap), -1 the entry is
 * gone (the item freed). */
static int
attempt_start(struct transport *t, struct qitem *it)
{
	struct backend *be = t->be;
	const struct config *cfg = &be->cfg;
	MDB_txn *txn;
	const char *err;
	const void *ev;
	const char *mv;
	size_t el, ml;
	char qid[32];
	queue_id_format(it->id, qid, sizeof(qid));
	if (store_read_begin(be->store, &txn, &err) < 0) {
		log_error("queue=%s read error=\"%s\"", qid, err);
		it->next_attempt = now_s() + cfg->transport_retry_first;
		return 0;
	}
	int rc = store_queue_get(be->store, txn, it->id, &ev, &el, &err);
	if (rc == 0)
		rc = store_queue_msg_get(be->store, txn, it->id, &mv, &ml, &err);
	if (rc != 0) {
		store_read_end(&txn);
		if (rc > 0) {
			item_remove(t, it);
			return -1;
		}
		log_error("queue=%s read error=\"%s\"", qid, err);
		it->next_attempt = now_s() + cfg->transport_retry_first;
		return 0;
	}
	struct attempt *a = calloc(1, sizeof(*a));
	if (a == NULL)
		abort();
	a->t = t;
	a->item = it;
	snprintf(a->qid, sizeof(a->qid), "%s", qid);
	a->qe = portico__queue_entry__unpack(NULL, el, ev);
	a->data = malloc(ml ? ml : 1);
	if (a->data == NULL)
		abort();
	memcpy(a->data, mv, ml);
	a->len = ml;
	store_read_end(&txn);
	if (a->qe == NULL) {
		log_error("queue=%s corrupt entry: left alone", qid);
		it->next_attempt = INT64_MAX;
		free(a->data);
		free(a);
		return 0;
	}
	it->busy = 1;
	t->active++;
	a->next = t->attempts;
	t->attempts = a;
	Portico__QueueEntry *qe = a->qe;
	a->was_pending = calloc(qe->n_rcpt ? qe->n_rcpt : 1, 1);
	for (int i = 0; i < ROUTE_COUNT; i++) {
		a->routes[i].rcpt = calloc(qe->n_rcpt ? qe->n_rcpt : 1,
					   sizeof(struct relay_rcpt));
		a->routes[i].idx = calloc(qe->n_rcpt ? qe->n_rcpt : 1,
					  sizeof(size_t));
		if (a->routes[i].rcpt == NULL || a->routes[i].idx == NULL)
			abort();
	}
	if (a->was_pending == NULL)
		abort();
	for (size_t i = 0; i < qe->n_rcpt; i++) {
		Portico__QueueRcpt *r = qe->rcpt[i];
		if (r->state != PORTICO__RCPT_STATE__RCPT_PENDING)
			continue;
		a->was_pending[i] = 1;
		struct route *rt = &a->routes[queue_is_local(cfg, r->address)
						  ? ROUTE_LMTP
						  : ROUTE_SMARTHOST];
		rt->rcpt[rt->n].address = r->address;
		rt->rcpt[rt->n].notify = r->notify;
		rt->rcpt[rt->n].orcpt = r->orcpt;
		rt->idx[rt->n++] = i;
	}
	int64_t now = now_s();
	for (int i = 0; i < ROUTE_COUNT; i++) {
		struct route *rt = &a->routes[i];
		const char *hosts = i == ROUTE_LMTP ? cfg->transport_lmtp
						    : cfg->transport_smarthost;
		if (rt->n == 0)
			continue;
		if (hosts[0] == '\0') {
			/* Nowhere to send them: LMTP missing is a
			   configuration to fix (retry), no smarthost means
			   remote mail is not allowed (bounce). */
			for (size_t k = 0; k < rt->n; k++) {
				Portico__QueueRcpt *r = qe->rcpt[rt->idx[k]];
				if (i == ROUTE_LMTP) {
					rcpt_set(r, 451, "4.3.5",
						 "No LMTP server configured "
						 "(transport.lmtp)",
						 "", now);
				} else {
					rcpt_set(r, 550, "5.4.4",
						 "No route to remote "
						 "recipients (transport."
						 "smarthost is not set)",
						 "", now);
					r->state =
						PORTICO__RCPT_STATE__RCPT_FAILED;
				}
			}
			continue;
		}
		struct relay_req *q = &rt->req;
		q->lmtp = i == ROUTE_LMTP;
		q->hosts = hosts;
		q->helo = transport_hostname(cfg);
		q->tls = i == ROUTE_LMTP ? RELAY_TLS_NONE : t->tls;
		q->tls_ctx = i == ROUTE_LMTP ? NULL : t->tls_ctx;
		if (q->tls_ctx != NULL)
			SSL_CTX_up_ref(q->tls_ctx);
		q->timeout_ms = cfg->transport_timeout * 1000;
		q->mail_from = qe->mail_from;
		q->envid = qe->envid;
		q->ret = qe->ret;
		q->body = qe->body;
		q->smtputf8 = qe->smtputf8;
		if (i == ROUTE_LMTP) {
			delivery_id(cfg, qe, a->delivery_id);
			q->delivery_id = a->delivery_id;
		}
		q->data = a->data;
		q->len = a->len;
		q->rcpt = rt->rcpt;
		q->n = rt->n;
		q->log_id = a->qid;
		q->done = route_done;
		q->ctx = a;
		a->pending_routes++;
	}
	log_info("queue=%s attempt=%u local=%zu remote=%zu", a->qid,
		 qe->attempts + 1, a->routes[ROUTE_LMTP].n,
		 a->routes[ROUTE_SMARTHOST].n);
	if (a->pending_routes == 0) {
		attempt_settle(a);
		return 1;
	}
	for (int i = 0; i < ROUTE_COUNT; i++)
		if (a->routes[i].req.done != NULL)
			relay_start(be->loop, &a->routes[i].req);
	return 1;
}

static void
queue_timer(uv_timer_t *h)
{
	queue_schedule(h->data);
}

/* Starts what is due (within transport.concurrency) and sets the timer
 * for the next one. */
static void
queue_schedule(struct transport *t)
{
	if (t->stopping)
		return;
	int64_t now = now_s();
	while (t->nheap > 0 && t->heap[0]->next_attempt <= now &&
	       t->active < (unsigned)t->be->cfg.transport_concurrency) {
		struct qitem *it = heap_pop(t);
		if (attempt_start(t, it) == 0)
			heap_push(t, it);
	}
	/* What is due but found no free slot starts when an attempt
	   finishes (settle_done schedules again). */
	uv_timer_stop(&t->timer);
	int64_t next = t->nheap > 0 ? t->heap[0]->next_attempt : INT64_MAX;
	if (next == INT64_MAX || next <= now)
		return;
	uv_timer_start(&t->timer, queue_timer,
		       next > now ? (uint64_t)(next - now) * 1000 : 1000, 0);
}

static void prune_tick(uv_timer_t *h);

static void
prune_done(void *ctx, int rc, const char *err)
{
	struct transport *t = ctx;
	t->pruning = 0;
	if (rc != 0)
		log_error("deliveries: expired records not removed "
			  "error=\"%s\"",
			  err);
	else if (t->prune.removed_out > 0)
		log_info("deliveries: %zu expired records removed%s",
			 t->prune.removed_out,
			 t->prune.more_out ? ", more to go" : "");
	if (!t->stopping)
		uv_timer_start(&t->prune_timer, prune_tick,
			       rc == 0 && t->prune.more_out ? 10
							    : PRUNE_INTERVAL_MS,
			       0);
}

static void
prune_tick(uv_timer_t *h)
{
	struct transport *t = h->data;
	if (t->stopping || t->pruning)
		return;
	t->pruning = 1;
	t->prune.before = now_s() - t->be->cfg.transport_delivery_id_lifetime;
	t->prune.max = PRUNE_BATCH;
	store_submit(t->be->store, store_op_delivery_prune, &t->prune,
		     prune_done, t);
}

static int
load_fn(void *ctx, const void *key, size_t klen, const void *val,
	size_t vlen)
{
	struct transport *t = ctx;
	if (klen != 8)
		return 0;
	const uint8_t *k = key;
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id = id << 8 | k[i];
	Portico__QueueEntry *qe = portico__queue_entry__unpack(NULL, vlen, val);
	if (qe == NULL) {
		char qid[32];
		queue_id_format(id, qid, sizeof(qid));
		log_error("queue=%s corrupt entry: left alone", qid);
		return 0;
	}
	item_add(t, id, qe->arrival, qe->next_attempt);
	portico__queue_entry__free_unpacked(qe, NULL);
	return 0;
}

/* transport.smarthost_tls and smarthost_ca_file: the mode and the
 * context relays to the smarthost use (NULL for none): 0, or -1 with
 * why. */
static int
transport_tls_make(const struct config *cfg, enum relay_tls *tls_r,
		   SSL_CTX **ctx_r, const char **error_r)
{
	static char errbuf[256];
	const char *mode = cfg->transport_smarthost_tls;
	*ctx_r = NULL;
	if (transport_tls_parse(mode, tls_r) < 0) {
		*error_r = "transport.smarthost_tls must be none, may, "
			   "encrypt or verify";
		return -1;
	}
	if (*tls_r == RELAY_TLS_NONE)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		abort();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (*tls_r != RELAY_TLS_VERIFY) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		*ctx_r = ctx;
		return 0;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	const char *ca = cfg->transport_smarthost_ca_file;
	int ok = ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
			       : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		ERR_clear_error();
		snprintf(errbuf, sizeof(errbuf),
			 "transport.smarthost_ca_file: cannot load %s", ca);
		*error_r = errbuf;
		SSL_CTX_free(ctx);
		return -1;
	}
	*ctx_r = ctx;
	return 0;
}

int
transport_tls_parse(const char *mode, enum relay_tls *tls_r)
{
	static const struct {
		const char *name;
		enum relay_tls tls;
	} modes[] = {{"none", RELAY_TLS_NONE},
		     {"may", RELAY_TLS_MAY},
		     {"encrypt", RELAY_TLS_ENCRYPT},
		     {"verify", RELAY_TLS_VERIFY}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcasecmp(mode, modes[i].name) == 0) {
			*tls_r = modes[i].tls;
			return 0;
		}
	return -1;
}

static void
transport_tls_keep(struct transport *t, const struct config *cfg)
{
	free(t->conf_tls);
	free(t->conf_ca);
	t->conf_tls = strdup(cfg->transport_smarthost_tls);
	t->conf_ca = strdup(cfg->transport_smarthost_ca_file);
	if (t->conf_tls == NULL || t->conf_ca == NULL)
		abort();
}

void
queue_reload(struct backend *be)
{
	struct transport *t = be->transport;
	const struct config *cfg = &be->cfg;
	if (t == NULL ||
	    (strcmp(t->conf_tls, cfg->transport_smarthost_tls) == 0 &&
	     strcmp(t->conf_ca, cfg->transport_smarthost_ca_file) == 0))
		return;
	enum relay_tls tls;
	SSL_CTX *ctx;
	const char *err;
	if (transport_tls_make(cfg, &tls, &ctx, &err) < 0) {
		log_error("reload: %s; relays keep their TLS as it was", err);
		return;
	}
	/* attempts under way keep the context they took */
	SSL_CTX_free(t->tls_ctx);
	t->tls_ctx = ctx;
	t->tls = tls;
	transport_tls_keep(t, cfg);
	log_info("reload: transport smarthost_tls=%s ca_file=\"%s\"",
		 cfg->transport_smarthost_tls,
		 cfg->transport_smarthost_ca_file);
}

int
queue_start(struct backend *be, const char **error_r)
{
	const struct config *cfg = &be->cfg;
	struct transport *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	t->be = be;
	if (strcasecmp(cfg->transport_quota_failure, "temporary") != 0 &&
	    strcasecmp(cfg->transport_quota_failure, "permanent") != 0) {
		*error_r = "transport.quota_failure must be temporary or "
			   "permanent";
		free(t);
		return -1;
	}
	if (transport_tls_make(cfg, &t->tls, &t->tls_ctx, error_r) < 0) {
		free(t);
		return -1;
	}
	transport_tls_keep(t, cfg);
	MDB_txn *txn = NULL;
	if (store_read_begin(be->store, &txn, error_r) < 0 ||
	    store_walk(be->store, txn, "queue", NULL, 0, load_fn, t,
		       error_r) < 0) {
		if (txn != NULL)
			store_read_end(&txn);
		SSL_CTX_free(t->tls_ctx);
		free(t->conf_tls);
		free(t->conf_ca);
		free(t);
		return -1;
	}
	store_read_end(&txn);
	uv_timer_init(be->loop, &t->timer);
	t->timer.data = t;
	uv_timer_init(be->loop, &t->prune_timer);
	t->prune_timer.data = t;
	uv_timer_start(&t->prune_timer, prune_tick, 1000, 0);
	be->transport = t;
	log_info("queue entries=%zu lmtp=\"%s\" smarthost=\"%s\"", t->count,
		 cfg->transport_lmtp, cfg->transport_smarthost);
	queue_schedule(t);
	return 0;
}

void
queue_stop(struct backend *be)
{
	struct transport *t = be->transport;
	if (t == NULL || t->stopping)
		return;
	t->stopping = 1;
	uv_timer_stop(&t->timer);
	uv_timer_stop(&t->prune_timer);
	for (struct attempt *a = t->attempts; a != NULL; a = a->next)
		for (int i = 0; i < ROUTE_COUNT; i++)
			if (a->routes[i].req.relay != NULL)
				relay_abort(&a->routes[i].req);
}

void
queue_free(struct backend *be)
{
	struct transport *t = be->transport;
	if (t == NULL)
		return;
	while (t->attempts != NULL) {
		struct qitem *it = t->attempts->item;
		attempt_free(t->attempts);
		item_remove(t, it);
	}
	while (t->nheap > 0)
		item_remove(t, heap_pop(t));
	free(t->heap);
	SSL_CTX_free(t->tls_ctx);
	free(t->conf_tls);
	free(t->conf_ca);
	free(t);
	be->transport = NULL;
}

void
queue_kick(struct backend *be, uint64_t id)
{
	struct transport *t = be->transport;
	if (t == NULL)
		return;
	int64_t now = now_s();
	item_add(t, id, now, now);
	queue_schedule(t);
}

/* The heap in order again after a change of next_attempt or a removal. */
static void
heap_rebuild(struct transport *t)
{
	struct qitem **items = t->heap;
	size_t n = t->nheap;
	t->heap = NULL;
	t->nheap = t->heapcap = 0;
	for (size_t i = 0; i < n; i++)
		heap_push(t, items[i]);
	free(items);
}

static struct qitem *
waiting_find(struct transport *t, uint64_t id, size_t *at_r)
{
	for (size_t i = 0; i < t->nheap; i++)
		if (t->heap[i]->id == id) {
			*at_r = i;
			return t->heap[i];
		}
	return NULL;
}

/* The attempt under way on id, not one already deleted. */
static struct attempt *
attempt_of(const struct transport *t, uint64_t id)
{
	for (struct attempt *a = t->attempts; a != NULL; a = a->next)
		if (a->item->id == id && !a->deleted)
			return a;
	return NULL;
}

int
queue_flush(struct backend *be, uint64_t id, int all)
{
	struct transport *t = be->transport;
	if (t == NULL)
		return QUEUE_NONE;
	int64_t now = now_s();
	int n = 0;
	for (size_t i = 0; i < t->nheap; i++) {
		struct qitem *it = t->heap[i];
		if ((all || it->id == id) && it->next_attempt > now &&
		    it->next_attempt != INT64_MAX) {
			it->next_attempt = now;
			n++;
		}
	}
	if (!all && n == 0) {
		size_t at;
		if (waiting_find(t, id, &at) != NULL)
			return t->heap[at]->next_attempt == INT64_MAX
				   ? QUEUE_CORRUPT
				   : 0; /* due already */
		return attempt_of(t, id) != NULL ? QUEUE_UNDER_WAY : QUEUE_NONE;
	}
	if (n > 0) {
		log_info("queue flush=%s messages=%d", all ? "all" : "one", n);
		heap_rebuild(t);
		queue_schedule(t);
	}
	return n;
}

/* A deletion on its way to the store.  A waiting item is out of the
 * heap meanwhile, so that no attempt starts on it; for one under way
 * (it == NULL) the attempt goes on with its copy of the message and
 * writes nothing at its end. */
struct queue_del {
	struct transport *t;
	struct qitem *it;
	uint64_t id;
	int64_t arrival;
	char qid[32];
	void (*done)(void *ctx, int rc, int under_way, const char *err);
	void *ctx;
};

static int
del_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct queue_del *d = vargs;
	int rc = store_queue_del(st, txn, d->id);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "queue: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	return 0;
}

static void
del_done(void *ctx, int rc, const char *err)
{
	struct queue_del *d = ctx;
	struct transport *t = d->t;
	if (rc == 0) {
		log_info("queue=%s deleted by portico-admin%s", d->qid,
			 d->it == NULL ? "; the attempt under way ends first"
				       : "");
		if (d->it != NULL)
			item_remove(t, d->it);
	} else {
		log_error("queue=%s not deleted error=\"%s\"", d->qid, err);
		if (d->it != NULL) {
			heap_push(t, d->it);
		} else {
			/* still stored: the attempt, if it has not ended,
			   settles as usual; if it has, the entry waits for a
			   retry */
			struct attempt *a = NULL;
			for (a = t->attempts; a != NULL; a = a->next)
				if (a->item->id == d->id)
					break;
			if (a != NULL)
				a->deleted = 0;
			else
				item_add(t, d->id, d->arrival,
					 now_s() +
					     t->be->cfg.transport_retry_first);
		}
		queue_schedule(t);
	}
	d->done(d->ctx, rc, d->it == NULL, err);
	free(d);
}

int
queue_delete(struct backend *be, uint64_t id,
	     void (*done)(void *ctx, int rc, int under_way, const char *err),
	     void *ctx)
{
	struct transport *t = be->transport;
	if (t == NULL)
		return QUEUE_NONE;
	size_t at;
	struct qitem *it = waiting_find(t, id, &at);
	struct attempt *a = it == NULL ? attempt_of(t, id) : NULL;
	if (it == NULL && a == NULL)
		return QUEUE_NONE;
	struct queue_del *d = calloc(1, sizeof(*d));
	if (d == NULL)
		abort();
	if (it != NULL) {
		t->heap[at] = t->heap[--t->nheap];
		heap_rebuild(t);
		d->arrival = it->arrival;
	} else {
		a->deleted = 1;
		d->arrival = a->item->arrival;
	}
	d->t = t;
	d->it = it;
	d->id = id;
	queue_id_format(id, d->qid, sizeof(d->qid));
	d->done = done;
	d->ctx = ctx;
	store_submit(be->store, del_op, d, del_done, d);
	return 0;
}

int
queue_id_parse(const char *s, uint64_t *id_r)
{
	uint64_t v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int c = s[i], d = c >= '0' && c <= '9'   ? c - '0'
				  : c >= 'A' && c <= 'F' ? c - 'A' + 10
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
							 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*id_r = v;
	return 0;
}

void
queue_metrics(struct backend *be, uint64_t *messages, int64_t *oldest)
{
	struct transport *t = be->transport;
	*messages = 0;
	*oldest = 0;
	if (t == NULL)
		return;
	*messages = t->count;
	for (size_t i = 0; i < t->nheap; i++)
		if (*oldest == 0 || t->heap[i]->arrival < *oldest)
			*oldest = t->heap[i]->arrival;
	for (struct attempt *a = t->attempts; a != NULL; a = a->next)
		if (*oldest == 0 || a->item->arrival < *oldest)
			*oldest = a->item->arrival;
}
