/* forward.c - forwarding: a recipient whose directory entry has
 * porticoForwardAddress values has each message delivered to it sent on
 * to them.
 *
 * The frontend's LMTP reads the entry and hands the addresses on with the
 * recipient (proto/link.proto, Recipient).  Here, before the delivery's
 * store operation, the copy is built: the message as delivered (its
 * Received: line, so that the hops of a loop add up), without the
 * Return-Path: of the final delivery, and with "Delivered-To: <address>"
 * on top.  A message whose header already has a Delivered-To: naming one
 * of the account's addresses came round a forwarding loop and is not
 * forwarded again (Postfix's local(8) does the same); nor is a message
 * marked as spam, nor to the account's own addresses.  In the delivery's
 * transaction (forward_queue, from deliver_op) the copy joins the queue
 * from the account's address, so that failures come back to its INBOX
 * as reports and the next hop sees a sender of the account's domain.
 * Delivered and forwarded are one commit: a crash never forwards twice,
 * and a forward is never lost. */
#include "backend/transport/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/mime/mime.h"
#include "backend/transport/queue.h"
#include "common/smtp_parser.h"
#include "queue.pb-c.h"

struct forward {
	int keep;
	size_t remote_left_out; /* transport.forward_remote off */
	char *user; /* the recipient's address */
	char **to;  /* where it goes, each once */
	size_t n;
	Portico__Submit sub;
	Portico__Recipient *rcpt; /* n of them */
	Portico__Recipient **rcptv;
	struct buf msg;
	struct queue_add_args q;
	/* out */
	int queued;
	uint64_t queue_id;
};

/* Whether addr (local@domain, NUL-terminated) is mbox@dom, without
 * regard to case. */
static int
fw_addr_is(const char *addr, const char *mbox, size_t ml, const char *dom,
	   size_t dl)
{
	const char *at = strrchr(addr, '@');
	return at != NULL && (size_t)(at - addr) == ml &&
	       strlen(at + 1) == dl && strncasecmp(addr, mbox, ml) == 0 &&
	       strncasecmp(at + 1, dom, dl) == 0;
}

/* Whether a is the recipient's address or one of the entry's. */
static int
fw_own(const Portico__Recipient *r, const char *a)
{
	if (strcasecmp(a, r->address) == 0)
		return 1;
	for (size_t i = 0; i < r->n_own_address; i++)
		if (strcasecmp(a, r->own_address[i]) == 0)
			return 1;
	return 0;
}

struct fw_scan {
	const Portico__Recipient *r;
	const char *why;
};

static void
fw_delivered_to(void *ctx, const char *mbox, size_t ml, const char *dom,
		size_t dl)
{
	struct fw_scan *sc = ctx;
	if (sc->why != NULL)
		return;
	int own = fw_addr_is(sc->r->address, mbox, ml, dom, dl);
	for (size_t i = 0; !own && i < sc->r->n_own_address; i++)
		own = fw_addr_is(sc->r->own_address[i], mbox, ml, dom, dl);
	if (own)
		sc->why = "a forwarding loop (Delivered-To: names the account)";
}

/* The first word of a field's value is "yes", without regard to case. */
static int
fw_yes(const char *v, size_t len)
{
	size_t i = 0;
	while (i < len &&
	       (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	return len - i >= 3 && strncasecmp(v + i, "yes", 3) == 0 &&
	       (len - i == 3 || strchr(" \t\r\n;,(", v[i + 3]) != NULL);
}

static void
fw_scan_header(struct fw_scan *sc, const char *msg, size_t len)
{
	size_t hlen = mime_header_len(msg, len), pos = 0;
	struct mime_hfield f;
	while (sc->why == NULL && mime_header_next(msg, hlen, &pos, &f)) {
		if (mime_hfield_is(&f, "Delivered-To"))
			mime_address_each(f.val, f.vlen, fw_delivered_to, sc);
		else if ((mime_hfield_is(&f, "X-Spam-Flag") ||
			  mime_hfield_is(&f, "X-Spam-Status")) &&
			 fw_yes(f.val, f.vlen))
			sc->why = "marked as spam";
	}
}

static int
fw_ascii(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 0;
	return 1;
}

struct forward *
forward_prepare(const struct config *cfg, const Portico__Deliver *d,
		const Portico__Recipient *r, const char *msg, size_t len,
		const char **why_r)
{
	*why_r = NULL;
	if (r->n_forward_to == 0)
		return NULL;
	/* the message as delivered, without its Return-Path: */
	if (len >= 12 && strncasecmp(msg, "Return-Path:", 12) == 0) {
		const char *nl = memchr(msg, '\n', len);
		size_t skip = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		msg += skip;
		len -= skip;
	}
	struct fw_scan sc = {r, NULL};
	fw_scan_header(&sc, msg, len);
	if (sc.why != NULL) {
		*why_r = sc.why;
		return NULL;
	}
	struct forward *fw = calloc(1, sizeof(*fw));
	if (fw == NULL ||
	    (fw->to = calloc(r->n_forward_to, sizeof(*fw->to))) == NULL ||
	    (fw->user = strdup(r->address)) == NULL)
		abort();
	int utf8 = d->smtputf8 || !fw_ascii(r->address, strlen(r->address));
	size_t remote = 0;
	for (size_t i = 0; i < r->n_forward_to; i++) {
		const char *a = r->forward_to[i];
		if (!cfg->transport_forward_remote && !queue_is_local(cfg, a)) {
			remote++;
			continue;
		}
		int again = fw_own(r, a);
		for (size_t k = 0; !again && k < fw->n; k++)
			again = strcasecmp(fw->to[k], a) == 0;
		if (again)
			continue;
		if ((fw->to[fw->n++] = strdup(a)) == NULL)
			abort();
		utf8 |= !fw_ascii(a, strlen(a));
	}
	if (fw->n == 0) {
		forward_free(&fw);
		*why_r = remote > 0 ? "every forward address is remote, and "
				      "transport.forward_remote is off"
				    : "every forward address is the account's "
				      "own";
		return NULL;
	}
	fw->remote_left_out = remote;
	fw->keep = r->forward_keep;
	char clean[SMTP_MAX_PATH + 1];
	transport_clean(clean, sizeof(clean), r->address);
	buf_printf(&fw->msg, "Delivered-To: %s\r\n", clean);
	buf_append(&fw->msg, msg, len);
	fw->rcpt = calloc(fw->n, sizeof(*fw->rcpt));
	fw->rcptv = calloc(fw->n, sizeof(*fw->rcptv));
	if (fw->rcpt == NULL || fw->rcptv == NULL)
		abort();
	for (size_t i = 0; i < fw->n; i++) {
		portico__recipient__init(&fw->rcpt[i]);
		fw->rcpt[i].address = fw->to[i];
		fw->rcptv[i] = &fw->rcpt[i];
	}
	portico__submit__init(&fw->sub);
	fw->sub.user = fw->user;
	fw->sub.mailbox_id = r->mailbox_id;
	fw->sub.mail_from = fw->user;
	fw->sub.n_rcpt = fw->n;
	fw->sub.rcpt = fw->rcptv;
	fw->sub.client_addr = (char *)"";
	fw->sub.session_id = d->session_id;
	fw->sub.body = (char *)(fw_ascii(msg, len) ? "7BIT" : "8BITMIME");
	fw->sub.smtputf8 = utf8;
	queue_add_prepare(&fw->q, &fw->sub, fw->user, buf_ptr(&fw->msg),
			  buf_used(&fw->msg));
	/* not kept: a report of its failure is the only copy left */
	fw->q.qe->return_whole = !fw->keep;
	return fw;
}

int
forward_keep(const struct forward *fw)
{
	return fw == NULL || fw->keep;
}

int
forward_queue(struct store *st, MDB_txn *txn, struct forward *fw, char *err)
{
	int rc = queue_add_op(st, txn, &fw->q, err);
	if (rc != 0)
		return rc;
	fw->queued = 1;
	fw->queue_id = fw->q.id_out;
	return 0;
}

size_t
forward_remote_left_out(const struct forward *fw)
{
	return fw != NULL ? fw->remote_left_out : 0;
}

int
forward_queued(const struct forward *fw, uint64_t *id_r, size_t *n_r)
{
	if (fw == NULL || !fw->queued)
		return 0;
	*id_r = fw->queue_id;
	*n_r = fw->n;
	return 1;
}

const char *
forward_message(const struct forward *fw, size_t *len_r)
{
	*len_r = buf_used(&fw->msg);
	return buf_ptr(&fw->msg);
}

void
forward_free(struct forward **fwp)
{
	struct forward *fw = *fwp;
	*fwp = NULL;
	if (fw == NULL)
		return;
	queue_add_release(&fw->q);
	buf_free(&fw->msg);
	for (size_t i = 0; i < fw->n; i++)
		free(fw->to[i]);
	free(fw->to);
	free(fw->rcpt);
	free(fw->rcptv);
	free(fw->user);
	free(fw);
}
