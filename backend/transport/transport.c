/* transport.c - Submit and Deliver streams on the link.
 *
 * The envelope comes in the stream's first frame, the message in Data
 * frames (credit returned as it is buffered), then End; the answer is one
 * Result frame, sent only after the store committed what it accepts.
 */
#include "backend/transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/transport/queue.h"
#include "backend/transport/sendrate.h"
#include "common/log.h"
#include "common/smtp_parser.h"

enum tstream_kind { TSTREAM_DELIVER, TSTREAM_SUBMIT };

struct tstream {
	enum tstream_kind kind;
	Portico__Deliver *deliver; /* deep copies of the envelope */
	Portico__Submit *submit;
	struct buf data;           /* the message so far */
	int too_big;               /* beyond transport.max_message_size */
	int ended;
	/* Deliver, once End arrived */
	struct buf msg, meta;
	struct deliver_args args;
	/* Submit */
	struct queue_add_args qargs;
};

static struct tstream *
ts_of(struct bsession *s)
{
	return s->state;
}

int
transport_open(struct bsession *s, const Portico__Frame *f,
	       const char **code_r, const char **reason_r, int *temporary_r)
{
	struct tstream *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	uint8_t *packed;
	size_t rcpts;
	const char *sid;
	if (f->body_case == PORTICO__FRAME__BODY_DELIVER) {
		t->kind = TSTREAM_DELIVER;
		size_t n = portico__deliver__get_packed_size(f->deliver);
		packed = malloc(n ? n : 1);
		if (packed == NULL)
			abort();
		portico__deliver__pack(f->deliver, packed);
		t->deliver = portico__deliver__unpack(NULL, n, packed);
		free(packed);
		if (t->deliver == NULL)
			abort();
		rcpts = t->deliver->n_rcpt;
		sid = t->deliver->session_id;
		s->send_credit = t->deliver->window;
		for (size_t i = 0; i < rcpts; i++) {
			if (t->deliver->rcpt[i]->mailbox_id[0] == '\0') {
				*code_r = "CLIENTBUG";
				*reason_r = "Deliver without a mailbox id";
				*temporary_r = 0;
				goto fail;
			}
		}
		for (size_t i = 0; i < rcpts; i++) {
			const Portico__Recipient *r = t->deliver->rcpt[i];
			if (strlen(r->auto_reply_text) > AUTO_REPLY_TEXT_MAX ||
			    strlen(r->auto_reply_subject) >
				    AUTO_REPLY_SUBJECT_MAX ||
			    r->n_own_address > AUTO_REPLY_ADDRESSES_MAX) {
				*code_r = "CLIENTBUG";
				*reason_r = "automatic reply beyond its "
					    "bounds";
				*temporary_r = 0;
				goto fail;
			}
			int bad = r->n_forward_to > FORWARD_ADDRESSES_MAX;
			for (size_t k = 0; !bad && k < r->n_forward_to; k++)
				bad = strlen(r->forward_to[k]) >
					  SMTP_MAX_PATH ||
				      strchr(r->forward_to[k], '@') == NULL;
			if (bad) {
				*code_r = "CLIENTBUG";
				*reason_r = "forward addresses beyond their "
					    "bounds";
				*temporary_r = 0;
				goto fail;
			}
		}
		if (strlen(t->deliver->delivery_id) > SMTP_MAX_DELIVERY_ID) {
			*code_r = "CLIENTBUG";
			*reason_r = "delivery id too long";
			*temporary_r = 0;
			goto fail;
		}
		snprintf(s->user, sizeof(s->user), "%s",
			 rcpts > 0 ? t->deliver->rcpt[0]->address : "");
	} else {
		t->kind = TSTREAM_SUBMIT;
		size_t n = portico__submit__get_packed_size(f->submit);
		packed = malloc(n ? n : 1);
		if (packed == NULL)
			abort();
		portico__submit__pack(f->submit, packed);
		t->submit = portico__submit__unpack(NULL, n, packed);
		free(packed);
		if (t->submit == NULL)
			abort();
		rcpts = t->submit->n_rcpt;
		sid = t->submit->session_id;
		s->send_credit = t->submit->window;
		snprintf(s->user, sizeof(s->user), "%s", t->submit->user);
		snprintf(s->mailbox_id, sizeof(s->mailbox_id), "%s",
			 t->submit->mailbox_id);
		if (t->submit->mailbox_id[0] == '\0') {
			*code_r = "CLIENTBUG";
			*reason_r = "Submit without the sender's mailbox id";
			*temporary_r = 0;
			goto fail;
		}
	}
	snprintf(s->id, sizeof(s->id), "%s", sid);
	if (rcpts > (size_t)s->be->cfg.transport_max_recipients) {
		*code_r = "LIMIT";
		*reason_r = "Too many recipients";
		*temporary_r = 0;
		goto fail;
	}
	if (rcpts == 0) {
		*code_r = "CLIENTBUG";
		*reason_r = "no recipients";
		*temporary_r = 0;
		goto fail;
	}
	s->state = t;
	return 0;
fail:
	if (t->deliver != NULL)
		portico__deliver__free_unpacked(t->deliver, NULL);
	if (t->submit != NULL)
		portico__submit__free_unpacked(t->submit, NULL);
	free(t);
	return -1;
}

static void
tstream_input(struct bsession *s)
{
	struct tstream *t = ts_of(s);
	size_t n = buf_used(&s->in);
	if (n == 0)
		return;
	if (!t->ended && !t->too_big) {
		if (buf_used(&t->data) + n >
		    s->be->cfg.transport_max_message_size) {
			t->too_big = 1;
			buf_free(&t->data);
		} else {
			buf_append(&t->data, buf_ptr(&s->in), n);
		}
	}
	buf_consume(&s->in, n);
	session_consumed(s, n);
}

static void
send_replies(struct bsession *s, Portico__Reply *replies, size_t n,
	     const char *queue_id)
{
	Portico__Result r = PORTICO__RESULT__INIT;
	Portico__Reply **rp = calloc(n, sizeof(*rp));
	if (rp == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		rp[i] = &replies[i];
	r.n_reply = n;
	r.reply = rp;
	r.queue_id = (char *)(uintptr_t)(queue_id ? queue_id : "");
	session_result(s, &r);
	free(rp);
}

/* One reply for every recipient (a failure before the store). */
static void
reply_all(struct bsession *s, size_t n, uint32_t code, const char *status,
	  const char *text)
{
	Portico__Reply *rep = calloc(n, sizeof(*rep));
	if (rep == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		portico__reply__init(&rep[i]);
		rep[i].code = code;
		rep[i].status = (char *)(uintptr_t)status;
		rep[i].text = (char *)(uintptr_t)text;
	}
	send_replies(s, rep, n, NULL);
	free(rep);
}

static void
deliver_done(void *ctx, int rc, const char *err)
{
	struct bsession *s = ctx;
	struct tstream *t = ts_of(s);
	const struct config *cfg = &s->be->cfg;
	size_t n = t->args.n;
	Portico__Reply *rep = calloc(n, sizeof(*rep));
	char (*texts)[STORE_ERR_SIZE + 64] = calloc(n, sizeof(*texts));
	if (rep == NULL || texts == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct deliver_rcpt *r = &t->args.rcpt[i];
		const Portico__Recipient *pr = t->deliver->rcpt[i];
		int res = rc != 0 ? rc : r->rc;
		const char *text, *status;
		uint32_t code;
		deliver_reply(cfg, res, rc != 0 ? err : r->err, &code, &status,
			      &text);
		portico__reply__init(&rep[i]);
		rep[i].code = code;
		rep[i].status = (char *)(uintptr_t)status;
		/* The frontend puts "<address>" before the text. */
		if (res == 0 && r->duplicate)
			snprintf(texts[i], sizeof(texts[i]),
				 "%s Already delivered",
				 t->deliver->delivery_id);
		else if (code == 250)
			snprintf(texts[i], sizeof(texts[i]), "%s %s", s->id,
				 text);
		else
			snprintf(texts[i], sizeof(texts[i]), "%s", text);
		rep[i].text = texts[i];
		const char *did = t->deliver->delivery_id;
		log_info("session=%s deliver to=<%s> mailbox=%s size=%zu "
			 "status=%u %s%s%s%s%s%s%s",
			 s->id, pr->address, pr->mailbox_id,
			 buf_used(&t->msg), code, status,
			 res != 0 ? " error=" : "", res != 0 ? text : "",
			 did[0] ? " delivery=" : "", did,
			 r->duplicate ? " duplicate" : "",
			 r->same_as ? " same_mailbox" : "");
		if (res == 0 && !r->duplicate && !r->same_as && r->mbox_id != 0)
			backend_mailbox_changed(s->be, r->mbox_id);
		uint64_t qid;
		const char *to;
		if (res == 0 && auto_reply_queued(r->auto_reply, &qid, &to)) {
			char q[32];
			queue_id_format(qid, q, sizeof(q));
			log_info("session=%s auto-reply queue=%s to=<%s> "
				 "for=<%s>",
				 s->id, q, to, pr->address);
			s->be->auto_replies++;
			queue_kick(s->be, qid);
		}
		size_t nfw;
		if (res == 0 && forward_queued(r->forward, &qid, &nfw)) {
			char q[32];
			queue_id_format(qid, q, sizeof(q));
			log_info("session=%s forward queue=%s addresses=%zu "
				 "for=<%s> %s",
				 s->id, q, nfw, pr->address,
				 r->mbox_id != 0 ? "kept" : "not kept");
			s->be->forwards++;
			queue_kick(s->be, qid);
		}
	}
	send_replies(s, rep, n, NULL);
	free(texts);
	free(rep);
}

static void
deliver_end(struct bsession *s, struct tstream *t)
{
	const Portico__Deliver *d = t->deliver;
	const struct config *cfg = &s->be->cfg;
	deliver_build(cfg, d->mail_from, session_link_name(s),
		      d->client_addr, "LMTP", s->id,
		      d->n_rcpt == 1 ? d->rcpt[0]->address : NULL,
		      buf_ptr(&t->data), buf_used(&t->data), &t->msg,
		      &t->meta);
	buf_free(&t->data);
	t->args.msg.data = buf_ptr(&t->msg);
	t->args.msg.len = buf_used(&t->msg);
	t->args.msg.meta = buf_used(&t->meta) > 0 ? buf_ptr(&t->meta) : NULL;
	t->args.msg.metalen = buf_used(&t->meta);
	t->args.n = d->n_rcpt;
	t->args.rcpt = calloc(d->n_rcpt, sizeof(*t->args.rcpt));
	if (t->args.rcpt == NULL)
		abort();
	for (size_t i = 0; i < d->n_rcpt; i++) {
		const Portico__Recipient *pr = d->rcpt[i];
		t->args.rcpt[i].mailbox_id = pr->mailbox_id;
		t->args.rcpt[i].address = pr->address;
		t->args.rcpt[i].quota_known = pr->quota_known;
		t->args.rcpt[i].quota = store_quota_directory(
			pr->quota_storage_set, pr->quota_storage,
			pr->quota_messages_set, pr->quota_messages);
		const char *why;
		t->args.rcpt[i].auto_reply =
			auto_reply_prepare(cfg, d, pr, buf_ptr(&t->msg),
					   buf_used(&t->msg), &why);
		if (why != NULL)
			log_info("session=%s auto-reply for=<%s> none: %s",
				 s->id, pr->address, why);
		t->args.rcpt[i].forward = forward_prepare(
		    cfg, d, pr, buf_ptr(&t->msg), buf_used(&t->msg), &why);
		if (why != NULL)
			log_info("session=%s forward for=<%s> none (kept): %s",
				 s->id, pr->address, why);
		size_t left = forward_remote_left_out(t->args.rcpt[i].forward);
		if (left > 0)
			log_info("session=%s forward for=<%s>: %zu remote "
				 "address%s left out (transport.forward_remote "
				 "off)",
				 s->id, pr->address, left,
				 left == 1 ? "" : "es");
	}
	t->args.delivery_id = d->delivery_id;
	t->args.quota_storage = cfg->backend_quota_storage;
	t->args.quota_messages = cfg->backend_quota_messages;
	session_store(s, deliver_op, &t->args, deliver_done, s, NULL);
}

static void
submit_done(void *ctx, int rc, const char *err)
{
	struct bsession *s = ctx;
	struct tstream *t = ts_of(s);
	char qid[32], text[128];
	Portico__Reply rep = PORTICO__REPLY__INIT;
	if (rc == 0) {
		queue_id_format(t->qargs.id_out, qid, sizeof(qid));
		snprintf(text, sizeof(text), "Ok: queued as %s", qid);
		rep.code = 250;
		rep.status = "2.0.0";
		rep.text = text;
		log_info("session=%s user=%s queued=%s from=<%s> rcpts=%zu "
			 "size=%zu",
			 s->id, s->user, qid, t->submit->mail_from,
			 t->submit->n_rcpt, t->qargs.len);
	} else {
		qid[0] = '\0';
		rep.code = rc == STORE_ERR_FULL ? 452 : 451;
		rep.status = rc == STORE_ERR_FULL ? "4.3.1" : "4.3.0";
		rep.text = rc == STORE_ERR_FULL ? "Insufficient system storage"
						: "Temporary internal error";
		log_warn("session=%s user=%s queueing failed error=\"%s\"",
			 s->id, s->user, err);
	}
	send_replies(s, &rep, 1, qid);
	if (rc == 0)
		queue_kick(s->be, t->qargs.id_out);
}

static void
submit_end(struct bsession *s, struct tstream *t)
{
	uint64_t used;
	struct backend *be = s->be;
	if (!sendrate_count(&be->sendrate,
			    (uint64_t)be->cfg.transport_max_recipients_per_hour,
			    s->mailbox_id, (unsigned)t->submit->n_rcpt,
			    uv_now(be->loop), &used)) {
		/* a temporary refusal: the client keeps the message and
		   tries later, when the hour has moved on */
		char text[160];
		snprintf(
		    text, sizeof(text),
		    "Sending limit reached (%lld recipients an hour); "
		    "try again later",
		    (long long)s->be->cfg.transport_max_recipients_per_hour);
		Portico__Reply rep = PORTICO__REPLY__INIT;
		rep.code = 450;
		rep.status = "4.7.1";
		rep.text = text;
		log_warn(
		    "session=%s user=%s submission refused: %zu recipients "
		    "with %llu in the last hour over "
		    "transport.max_recipients_per_hour=%lld",
		    s->id, s->user, t->submit->n_rcpt, (unsigned long long)used,
		    (long long)s->be->cfg.transport_max_recipients_per_hour);
		send_replies(s, &rep, 1, NULL);
		return;
	}
	/* The MSA completes the message before it is queued, so that the
	   copies delivered and relayed all carry the same Date: and
	   Message-ID: (RFC 6409 8.2, 8.3). */
	struct buf fixed = BUF_INIT;
	if (transport_submission_fields(&s->be->cfg, buf_ptr(&t->data),
					buf_used(&t->data), &fixed)) {
		buf_free(&t->data);
		t->data = fixed;
	}
	queue_add_prepare(&t->qargs, t->submit, s->user,
			  buf_ptr(&t->data), buf_used(&t->data));
	session_store(s, queue_add_op, &t->qargs, submit_done, s, NULL);
	/* an account that only sends (a device, an application) is in use
	   too: portico-admin accounts --inactive must not find it */
	backend_last_login(be, s->mailbox_id, s->id);
}

/* Received: fields in the message's header (RFC 5321 6.3: a loop shows
 * as a growing number of them). */
static unsigned
count_hops(const char *p, size_t len)
{
	unsigned n = 0;
	size_t i = 0;
	while (i < len) {
		if (p[i] == '\r' || p[i] == '\n')
			break; /* the empty line: end of the header */
		if (len - i >= 9 && strncasecmp(p + i, "Received:", 9) == 0)
			n++;
		const char *nl = memchr(p + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - p) + 1;
	}
	return n;
}

static void
tstream_end(struct bsession *s)
{
	struct tstream *t = ts_of(s);
	if (t->ended) {
		log_warn("session=%s End after End", s->id);
		return; /* the first one's answer is on its way */
	}
	t->ended = 1;
	size_t n = t->kind == TSTREAM_DELIVER ? t->deliver->n_rcpt : 1;
	if (t->too_big) {
		reply_all(s, n, 552, "5.3.4", "Message too big for system");
		return;
	}
	if (buf_used(&t->data) == 0) {
		reply_all(s, n, 554, "5.6.0", "Empty message");
		return;
	}
	if (count_hops(buf_ptr(&t->data), buf_used(&t->data)) >
	    (unsigned)s->be->cfg.transport_max_hops) {
		log_warn("session=%s too many hops: refused", s->id);
		reply_all(s, n, 554, "5.4.6", "Too many hops (a mail loop?)");
		return;
	}
	if (t->kind == TSTREAM_DELIVER)
		deliver_end(s, t);
	else
		submit_end(s, t);
}

static void
tstream_free(struct bsession *s)
{
	struct tstream *t = ts_of(s);
	if (t == NULL)
		return;
	buf_free(&t->data);
	buf_free(&t->msg);
	buf_free(&t->meta);
	for (size_t i = 0; t->args.rcpt != NULL && i < t->args.n; i++) {
		auto_reply_free(&t->args.rcpt[i].auto_reply);
		forward_free(&t->args.rcpt[i].forward);
	}
	free(t->args.rcpt);
	queue_add_release(&t->qargs);
	if (t->deliver != NULL)
		portico__deliver__free_unpacked(t->deliver, NULL);
	if (t->submit != NULL)
		portico__submit__free_unpacked(t->submit, NULL);
	free(t);
	s->state = NULL;
}

static int
tstream_open_unused(struct bsession *s, const Portico__Open *o,
		    const char **code_r, const char **reason_r)
{
	*code_r = "CLIENTBUG";
	*reason_r = "not a session protocol";
	return -1;
}

const struct session_engine transport_engine = {
	.name = "transport",
	.open = tstream_open_unused,
	.input = tstream_input,
	.free = tstream_free,
	.end = tstream_end,
};
