/* smtp_data.c - DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030): the message
 * streams to the backends as it arrives, never held whole.
 *
 * Submission sends one Submit to the sender's backend; LMTP one Deliver
 * to each backend holding recipients (in parallel).  Content is decoded
 * (dot-unstuffed, strict CR LF) into s->pending and sent to each target
 * within its credit window; while a target lags by limits.link_window
 * bytes the client's input waits (c->hold).  Content with a bare CR or
 * LF or a NUL, or larger than smtp.max_message_size, aborts the streams (Close
 * instead of End: nothing is queued) and the rest is read and dropped.
 * At the end each target gets End, and the client hears 250 only from the
 * backend's Result, sent once the message is durable there.
 */
#include "frontend/smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define SMTP_DECODE_CHUNK 16384
#define SMTP_SEND_CHUNK 65536

static void smtp_data_check_done(struct smtp_session *s, int resume);

/* Copies a reply text from a backend, printable ASCII only. */
static void
smtp_text_copy(char *out, size_t outsize, const char *in)
{
	size_t o = 0;
	for (; in != NULL && *in != '\0' && o + 1 < outsize; in++)
		out[o++] = (*in >= 32 && *in < 127) ? *in : ' ';
	out[o] = '\0';
}

/* A backend's reply, checked before a client sees it. */
static void
smtp_take_reply(const Portico__Reply *r, unsigned *code, char *status,
		size_t ssize, char *text, size_t tsize)
{
	unsigned cls = r->code / 100;
	const char *st = r->status;
	int ok = r->code >= 200 && r->code <= 599 && cls != 3 && st != NULL &&
		 strlen(st) >= 5 && strlen(st) < ssize &&
		 (unsigned)(st[0] - '0') == cls && st[1] == '.';
	for (const char *p = st; ok && *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			ok = 0;
	if (!ok) {
		*code = 451;
		snprintf(status, ssize, "4.3.0");
		snprintf(text, tsize, "Invalid reply from the mailbox server");
		return;
	}
	*code = r->code;
	snprintf(status, ssize, "%s", st);
	smtp_text_copy(text, tsize, r->text);
	if (text[0] == '\0')
		snprintf(text, tsize, "%s", cls == 2 ? "OK" : "Failed");
}

/* -- streaming to the targets ---------------------------------------------*/

static int
target_live(const struct smtp_target *t)
{
	return t->x != NULL && !t->done;
}

static void
target_fail(struct smtp_target *t, const char *why)
{
	t->done = 1;
	t->failed = 1;
	snprintf(t->why, sizeof(t->why), "%s", why);
}

/* Sends what each target may take, ends the targets that have it all
 * once the content is complete, drops what every target has, and holds
 * the client's input while a target lags by more than the window. */
static void
smtp_flush(struct smtp_session *s)
{
	uint64_t end = s->pending_base + buf_used(&s->pending);
	uint64_t min_sent = end;
	for (unsigned i = 0; i < s->ntargets; i++) {
		struct smtp_target *t = &s->targets[i];
		if (!target_live(t))
			continue;
		while (t->opened && t->credit > 0 && t->sent < end) {
			uint64_t n = end - t->sent;
			if (n > t->credit)
				n = t->credit;
			if (n > SMTP_SEND_CHUNK)
				n = SMTP_SEND_CHUNK;
			link_pool_xfer_data(t->x,
					    buf_ptr(&s->pending) +
						    (t->sent - s->pending_base),
					    (size_t)n);
			t->sent += n;
			t->credit -= n;
		}
		if (s->state == SMTP_S_RESULT && t->opened && t->sent == end &&
		    !t->end_sent) {
			link_pool_xfer_end(t->x);
			t->end_sent = 1;
		}
		if (t->sent < min_sent)
			min_sent = t->sent;
	}
	buf_consume(&s->pending, (size_t)(min_sent - s->pending_base));
	s->pending_base = min_sent;
	uint64_t window = s->c->fe->cfg.limits_link_window;
	if (buf_used(&s->pending) >= window && s->state == SMTP_S_CONTENT) {
		s->flow_hold = 1;
		s->c->hold = 1;
	}
}

/* After a target moved (opened, credit): maybe let the client go on. */
static void
smtp_target_progress(struct smtp_session *s)
{
	smtp_flush(s);
	if (s->flow_hold &&
	    buf_used(&s->pending) < s->c->fe->cfg.limits_link_window) {
		s->flow_hold = 0;
		s->c->hold = 0;
		client_resume(s->c);
		return;
	}
	smtp_data_check_done(s, 1);
}

static void
target_opened(void *ctx, uint32_t window)
{
	struct smtp_target *t = ctx;
	t->opened = 1;
	t->credit += window;
	smtp_target_progress(t->s);
}

static void
target_credit(void *ctx, uint32_t bytes)
{
	struct smtp_target *t = ctx;
	t->credit += bytes;
	smtp_target_progress(t->s);
}

static void
target_result(void *ctx, const Portico__Result *r)
{
	struct smtp_target *t = ctx;
	struct smtp_session *s = t->s;
	unsigned idx = (unsigned)(t - s->targets);
	if (!t->end_sent) {
		/* An answer before the whole message: only a refusal makes
		   sense. */
		int all_fail = r->n_reply > 0;
		for (size_t i = 0; i < r->n_reply; i++)
			if (r->reply[i]->code < 400)
				all_fail = 0;
		if (!all_fail) {
			log_warn("session=%s backend=%s result before the end "
				 "of the message",
				 s->c->id, t->backend);
			target_fail(t, "result before the end of the message");
			smtp_data_check_done(s, 1);
			return;
		}
	}
	size_t k = 0;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		struct smtp_recipient *e = &s->rcpts[i];
		if (e->target != idx)
			continue;
		if (!s->lmtp) {
			/* Submit: one reply for the message. */
			if (r->n_reply == 1)
				smtp_take_reply(r->reply[0], &e->code,
						e->status, sizeof(e->status),
						e->text, sizeof(e->text));
			break;
		}
		if (k < r->n_reply)
			smtp_take_reply(r->reply[k], &e->code, e->status,
					sizeof(e->status), e->text,
					sizeof(e->text));
		k++;
	}
	if ((!s->lmtp && r->n_reply != 1) || (s->lmtp && k != r->n_reply)) {
		log_warn("session=%s backend=%s result with %zu replies",
			 s->c->id, t->backend, r->n_reply);
		target_fail(t, "invalid result");
	} else {
		t->done = 1;
		log_info("session=%s backend=%s result queue_id=%s", s->c->id,
			 t->backend, r->queue_id);
	}
	smtp_data_check_done(s, 1);
}

static void
target_failed(void *ctx, const char *why)
{
	struct smtp_target *t = ctx;
	log_warn("session=%s backend=%s message not accepted: %s",
		 t->s->c->id, t->backend, why);
	target_fail(t, why);
	smtp_target_progress(t->s);
}

static const struct xfer_ops smtp_target_ops = {
	.opened = target_opened,
	.credit = target_credit,
	.result = target_result,
	.failed = target_failed,
};

void
smtp_data_abort(struct smtp_session *s)
{
	for (unsigned i = 0; i < s->ntargets; i++)
		link_pool_xfer_close(&s->targets[i].x);
	free(s->targets);
	s->targets = NULL;
	s->ntargets = 0;
	buf_free(&s->pending);
	s->pending_base = 0;
	if (s->flow_hold) {
		s->flow_hold = 0;
		s->c->hold = 0;
	}
}

/* The Received: header of a submission (RFC 5321 4.4, RFC 3848). */
static void
smtp_received(struct smtp_session *s, struct buf *out)
{
	struct client *c = s->c;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	static const char *days[] = {"Sun", "Mon", "Tue", "Wed",
				     "Thu", "Fri", "Sat"};
	static const char *months[] = {"Jan", "Feb", "Mar", "Apr",
				       "May", "Jun", "Jul", "Aug",
				       "Sep", "Oct", "Nov", "Dec"};
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	/* RFC 3848, RFC 6531 protocol types: AUTH needs EHLO, so always
	   ESMTP and authenticated. */
	const char *with = c->tls ? "ESMTPSA" : "ESMTPA";
	if (s->mail.smtputf8)
		with = c->tls ? "UTF8SMTPSA" : "UTF8SMTPA";
	/* TCP-info is an address literal, "[192.0.2.1]" (RFC 5321 4.4),
	   as the backend's Received: of a delivery has it. */
	char addr[INET6_ADDRSTRLEN + 8];
	conn_addr_literal(c->peer, addr, sizeof(addr));
	buf_printf(out,
		   "Received: from %s (%s)\r\n\tby %s (Portico) with %s id "
		   "%s;\r\n\t%s\r\n",
		   s->helo, addr, c->fe->cfg.global_name, with, c->id, date);
}

static const char *
smtp_body_name(enum smtp_body b)
{
	return b == SMTP_BODY_8BITMIME ? "8BITMIME" : "7BIT";
}

/* LMTP: the recipient's automatic reply into its Deliver fields, within
 * *budget bytes of the frame (half of limits.link_max_frame for the
 * automatic replies of one Deliver: a frame over the limit would end the
 * link); beyond it the recipient gets no reply, said in the log. */
static void
smtp_auto_reply_fields(const struct smtp_session *s, Portico__Recipient *r,
		       const struct dir_auto_reply *ar, size_t *budget)
{
	if (ar == NULL || ar->off != NULL)
		return;
	size_t need = strlen(ar->text) + strlen(ar->subject) + 64;
	for (size_t i = 0; i < ar->naddresses; i++)
		need += strlen(ar->address_v[i]) + 4;
	if (need > *budget) {
		log_warn("session=%s rcpt=<%s> automatic reply off: the "
			 "automatic replies of this delivery's recipients are "
			 "more than half of limits.link_max_frame",
			 s->c->id, r->address);
		return;
	}
	*budget -= need;
	r->auto_reply_text = ar->text;
	r->auto_reply_subject = ar->subject;
	r->auto_reply_start = ar->start;
	r->auto_reply_end = ar->end;
	r->n_own_address = ar->naddresses;
	r->own_address = ar->address_v;
}

/* LMTP: where the recipient's mail is forwarded, into its Deliver fields,
 * within the same *budget; beyond it its mail is not forwarded but kept,
 * said in the log. */
static void
smtp_forward_fields(const struct smtp_session *s, Portico__Recipient *r,
		    const struct dir_forward *fw, size_t *budget)
{
	if (fw == NULL || fw->off != NULL || fw->n == 0)
		return;
	size_t need = 64;
	for (size_t i = 0; i < fw->n; i++)
		need += strlen(fw->to[i]) + 4;
	if (r->n_own_address == 0)
		for (size_t i = 0; i < fw->naddresses; i++)
			need += strlen(fw->address_v[i]) + 4;
	if (need > *budget) {
		log_warn("session=%s rcpt=<%s> forwarding off (mail kept): "
			 "the automatic replies and forwards of this "
			 "delivery's recipients are more than half of "
			 "limits.link_max_frame",
			 s->c->id, r->address);
		return;
	}
	*budget -= need;
	r->n_forward_to = fw->n;
	r->forward_to = fw->to;
	r->forward_keep = fw->keep;
	if (r->n_own_address == 0) {
		r->n_own_address = fw->naddresses;
		r->own_address = fw->address_v;
	}
}

static unsigned
smtp_target_for(struct smtp_session *s, const char *backend)
{
	for (unsigned i = 0; i < s->ntargets; i++)
		if (strcmp(s->targets[i].backend, backend) == 0)
			return i;
	struct smtp_target *t = &s->targets[s->ntargets];
	memset(t, 0, sizeof(*t));
	t->s = s;
	snprintf(t->backend, sizeof(t->backend), "%s", backend);
	return s->ntargets++;
}

/* Opens the streams for the message: Submit to the sender's backend, or a
 * Deliver per recipients' backend. */
static void
smtp_content_begin(struct smtp_session *s)
{
	struct client *c = s->c;
	const struct config *cfg = &c->fe->cfg;
	s->targets = calloc(s->nrcpt ? s->nrcpt : 1, sizeof(*s->targets));
	if (s->targets == NULL)
		abort();
	s->ntargets = 0;
	if (!s->lmtp) {
		smtp_target_for(s, c->duser.mailbox_server);
	} else {
		for (unsigned i = 0; i < s->nrcpt; i++)
			s->rcpts[i].target = smtp_target_for(s,
							     s->rcpts[i].backend);
	}
	Portico__Recipient *rv = calloc(s->nrcpt, sizeof(*rv));
	Portico__Recipient **rp = calloc(s->nrcpt, sizeof(*rp));
	if (rv == NULL || rp == NULL)
		abort();
	for (unsigned ti = 0; ti < s->ntargets; ti++) {
		struct smtp_target *t = &s->targets[ti];
		size_t n = 0;
		size_t ar_budget = (size_t)c->fe->cfg.limits_link_max_frame / 2;
		for (unsigned i = 0; i < s->nrcpt; i++) {
			struct smtp_recipient *e = &s->rcpts[i];
			if (e->target != ti)
				continue;
			portico__recipient__init(&rv[n]);
			rv[n].address = e->rcpt.path;
			rv[n].mailbox_id = e->mailbox_id;
			rv[n].notify = e->rcpt.notify;
			rv[n].orcpt = e->rcpt.orcpt;
			if (s->lmtp) {
				rv[n].quota_known = 1;
				rv[n].quota_storage_set = e->quota_storage_set;
				rv[n].quota_storage = e->quota_storage;
				rv[n].quota_messages_set =
					e->quota_messages_set;
				rv[n].quota_messages = e->quota_messages;
				smtp_auto_reply_fields(s, &rv[n],
						       e->auto_reply,
						       &ar_budget);
				smtp_forward_fields(s, &rv[n], e->forward,
						    &ar_budget);
			}
			rp[n] = &rv[n];
			n++;
		}
		Portico__Frame f = PORTICO__FRAME__INIT;
		Portico__Submit sub = PORTICO__SUBMIT__INIT;
		Portico__Deliver del = PORTICO__DELIVER__INIT;
		if (!s->lmtp) {
			sub.user = c->user;
			sub.mailbox_id = c->duser.mailbox_id;
			sub.mail_from = s->mail.path;
			sub.n_rcpt = n;
			sub.rcpt = rp;
			sub.client_addr = c->peer;
			sub.session_id = c->id;
			sub.size = s->mail.size;
			sub.body = (char *)smtp_body_name(s->mail.body);
			sub.smtputf8 = s->mail.smtputf8;
			sub.envid = s->mail.envid;
			sub.ret = s->mail.ret;
			sub.window = (uint32_t)cfg->limits_link_window;
			f.body_case = PORTICO__FRAME__BODY_SUBMIT;
			f.submit = &sub;
		} else {
			del.mail_from = s->mail.path;
			del.n_rcpt = n;
			del.rcpt = rp;
			del.client_addr = c->peer;
			del.session_id = c->id;
			del.size = s->mail.size;
			del.window = (uint32_t)cfg->limits_link_window;
			del.delivery_id = s->mail.delivery_id;
			del.smtputf8 = s->mail.smtputf8;
			f.body_case = PORTICO__FRAME__BODY_DELIVER;
			f.deliver = &del;
		}
		struct xfer *x = link_pool_xfer_open(
		    c->fe, t->backend, &f, &smtp_target_ops, t,
		    s->lmtp || !c->login_cached ? NULL : c->duser.mailbox_id);
		if (x == NULL) {
			target_fail(t, "backend unavailable");
			continue;
		}
		t->x = x;
	}
	free(rp);
	free(rv);
	s->pending_base = 0;
	buf_reset(&s->pending);
	/* LMTP: the backend's delivery adds the Received line of this
	   hop. */
	if (!s->lmtp)
		smtp_received(s, &s->pending);
	s->content_size = 0;
	s->error = SMTP_CE_NONE;
}

/* -- replies --------------------------------------------------------------*/

/* The reply for a recipient whose target did not answer. */
static void
smtp_target_reply(const struct smtp_target *t, unsigned *code, char *status,
		  size_t ssize, char *text, size_t tsize)
{
	*code = 451;
	snprintf(status, ssize, "4.4.1");
	snprintf(text, tsize, "Mailbox server unavailable; try again later");
	(void)t;
}

/* Once the content is complete and every target answered: the replies,
 * and the transaction ends. */
static void
smtp_data_check_done(struct smtp_session *s, int resume)
{
	if (s->state != SMTP_S_RESULT)
		return;
	for (unsigned i = 0; i < s->ntargets; i++)
		if (!s->targets[i].done)
			return;
	struct client *c = s->c;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		struct smtp_recipient *e = &s->rcpts[i];
		struct smtp_target *t = &s->targets[e->target];
		if (t->failed || e->code == 0)
			smtp_target_reply(t, &e->code, e->status,
					  sizeof(e->status), e->text,
					  sizeof(e->text));
		if (s->lmtp) {
			char pa[80];
			smtp_addr_print(e->rcpt.path, pa, sizeof(pa));
			smtp_reply(s, e->code, e->status, "<%s> %s", pa,
				   e->text);
			log_info("session=%s rcpt=<%s> backend=%s reply=%u",
				 c->id, pa, t->backend, e->code);
		}
	}
	if (!s->lmtp) {
		struct smtp_recipient *e = &s->rcpts[0];
		char from[SMTP_MAX_PATH + 1];
		smtp_addr_print(s->mail.path, from, sizeof(from));
		smtp_reply(s, e->code, e->status, "%s", e->text);
		log_info("session=%s user=%s from=<%s> rcpts=%u size=%llu "
			 "reply=%u",
			 c->id, c->user, from, s->nrcpt,
			 (unsigned long long)s->content_size, e->code);
	}
	smtp_reset_transaction(s);
	c->hold = 0;
	if (s->kicked) {
		smtp_session_kicked_bye(s);
		return;
	}
	if (resume)
		client_resume(c);
}

/* The content was refused while it streamed: the reply for it (one per
 * recipient on LMTP), and the transaction ends. */
static void
smtp_content_refused(struct smtp_session *s)
{
	unsigned code;
	const char *status, *text;
	switch (s->error) {
	case SMTP_CE_SIZE:
		code = 552;
		status = "5.3.4";
		text = "Message size exceeds the fixed maximum";
		break;
	case SMTP_CE_BARE:
		code = 550;
		status = "5.6.2";
		text = "Bare CR or LF in the message; lines must end with CR "
		       "LF (RFC 5321 2.3.8)";
		break;
	case SMTP_CE_NUL:
		code = 550;
		status = "5.6.0";
		text = "Message contains NUL characters";
		break;
	case SMTP_CE_DISCARD:
		code = 503;
		status = "5.5.1";
		text = "No valid recipients; data discarded";
		break;
	case SMTP_CE_NONE:
	case SMTP_CE_COUNT:
	default:
		abort();
	}
	log_info("session=%s message refused: %u %s %s", s->c->id, code,
		 status, text);
	unsigned n = s->lmtp && s->error != SMTP_CE_DISCARD ? s->nrcpt : 1;
	for (unsigned i = 0; i < n; i++)
		smtp_reply(s, code, status, "%s", text);
	smtp_reset_transaction(s);
}

/* -- content --------------------------------------------------------------*/

static void
smtp_content_error(struct smtp_session *s, enum smtp_content_error e)
{
	s->error = e;
	/* The streams go (Close, never End): nothing is queued. */
	for (unsigned i = 0; i < s->ntargets; i++)
		link_pool_xfer_close(&s->targets[i].x);
	buf_reset(&s->pending);
	if (s->flow_hold) {
		s->flow_hold = 0;
		s->c->hold = 0;
	}
}

/* The message content is complete (final dot, BDAT LAST). */
static void
smtp_content_end(struct smtp_session *s)
{
	s->c->raw = 0;
	if (s->error != SMTP_CE_NONE) {
		smtp_content_refused(s);
		return;
	}
	smtp_set_state(s, SMTP_S_RESULT);
	s->c->hold = 1;
	smtp_flush(s);
	smtp_data_check_done(s, 0);
}

/* A BDAT chunk other than the last is in (RFC 3030 2: a reply each). */
static void
smtp_chunk_done(struct smtp_session *s)
{
	s->c->raw = 0;
	if (s->error != SMTP_CE_NONE) {
		smtp_content_refused(s);
		return;
	}
	smtp_set_state(s, SMTP_S_CHUNKS);
	smtp_reply(s, 250, "2.0.0", "%llu octets received",
		   (unsigned long long)s->chunk_octets);
}

void
smtp_data_content(struct client *c)
{
	struct smtp_session *s = smtp_session(c);
	char out[SMTP_DECODE_CHUNK];
	size_t len = buf_used(&c->in), olen = 0;
	if (s->bdat && len > s->chunk_left)
		len = (size_t)s->chunk_left;
	size_t used = smtp_data_feed(&s->data, buf_ptr(&c->in), len, out,
				     sizeof(out), &olen);
	buf_consume(&c->in, used);
	if (s->bdat) {
		s->chunk_left -= used;
		if (s->chunk_left == 0 && s->chunk_last)
			olen += smtp_data_finish(&s->data, out + olen);
	}
	s->content_size += olen;
	if (s->error == SMTP_CE_NONE) {
		if (s->data.bare_cr > 0 || s->data.bare_lf > 0)
			smtp_content_error(s, SMTP_CE_BARE);
		else if (s->data.nul > 0)
			smtp_content_error(s, SMTP_CE_NUL);
		else if (s->content_size > c->fe->cfg.smtp_max_message_size)
			smtp_content_error(s, SMTP_CE_SIZE);
	}
	if (s->error == SMTP_CE_NONE && olen > 0) {
		buf_append(&s->pending, out, olen);
		smtp_flush(s);
	}
	if (!s->bdat) {
		if (s->data.ended)
			smtp_content_end(s);
		return;
	}
	if (s->chunk_left > 0)
		return;
	if (s->chunk_last) {
		smtp_content_end(s);
		return;
	}
	smtp_chunk_done(s);
}

void
smtp_cmd_data(struct smtp_session *s, const char *args)
{
	if (s->state == SMTP_S_MAIL) {
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		smtp_count_error(s);
		return;
	}
	if (s->state == SMTP_S_CHUNKS) {
		smtp_reply(s, 503, "5.5.1", "DATA is not allowed after BDAT");
		smtp_count_error(s);
		return;
	}
	if (s->state != SMTP_S_RCPT) {
		smtp_reply(s, 503, "5.5.1", "Need MAIL and RCPT commands");
		smtp_count_error(s);
		return;
	}
	smtp_data_init(&s->data, SMTP_DATA_DOT);
	s->bdat = 0;
	smtp_content_begin(s);
	smtp_set_state(s, SMTP_S_CONTENT);
	s->c->raw = 1;
	smtp_reply(s, 354, "2.0.0", "Send the message; end with <CR><LF>.<CR><LF>");
}

void
smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	struct client *c = s->c;
	uint64_t size;
	int last;
	struct smtp_reply err;
	if (smtp_parse_bdat(args, &size, &last, &err) < 0) {
		/* How many bytes follow is unknown: they cannot be told
		   from commands any more. */
		smtp_reply(s, 421, "4.5.4", "%s; closing the connection",
			   err.text);
		client_close(c, "invalid BDAT");
		return;
	}
	if (s->state == SMTP_S_RCPT) {
		smtp_data_init(&s->data, SMTP_DATA_COUNTED);
		s->bdat = 1;
		smtp_content_begin(s);
	} else if (s->state != SMTP_S_CHUNKS) {
		/* The chunk is read and dropped, then refused. */
		smtp_data_init(&s->data, SMTP_DATA_COUNTED);
		s->bdat = 1;
		s->error = SMTP_CE_DISCARD;
	}
	if (s->state != SMTP_S_CHUNKS)
		s->chunk_octets = 0;
	s->chunk_octets = size > UINT64_MAX - s->chunk_octets
				  ? UINT64_MAX
				  : s->chunk_octets + size;
	smtp_set_state(s, SMTP_S_CONTENT);
	s->chunk_left = size;
	s->chunk_last = last;
	if (size > 0) {
		c->raw = 1;
		return;
	}
	if (last) {
		size_t n = smtp_data_finish(&s->data, (char[1]){0});
		if (n > 0 && s->error == SMTP_CE_NONE)
			smtp_content_error(s, SMTP_CE_BARE);
		smtp_content_end(s);
		return;
	}
	smtp_chunk_done(s);
}
