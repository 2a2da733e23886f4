/* deliver.c - local delivery: a message into recipients' INBOXes. */
#include "backend/transport/transport.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/mime/mime.h"
#include "common/conn.h"
#include "common/log.h"

void
deliver_build(const struct config *cfg, const char *mail_from,
	      const char *from_host, const char *client_addr,
	      const char *with, const char *id, const char *rcpt,
	      const char *data, size_t len, struct buf *msg_r,
	      struct buf *meta_r)
{
	char from[512], fhost[256], addr[128], sid[128], to[512], date[64];
	transport_clean(from, sizeof(from), mail_from);
	transport_clean(fhost, sizeof(fhost), from_host);
	transport_clean(sid, sizeof(sid), id);
	transport_date((int64_t)time(NULL), date, sizeof(date));
	/* "ip:port" -> "[ip]", "[IPv6:ip]" (RFC 5321 4.4 TCP-info) */
	conn_addr_literal(client_addr, addr, sizeof(addr));
	buf_printf(msg_r, "Return-Path: <%s>\r\n", from);
	buf_printf(msg_r,
		   "Received: from %s (%s)\r\n\tby %s (Portico) "
		   "with %s id %s",
		   fhost[0] != '\0' ? fhost : "unknown", addr,
		   transport_hostname(cfg), with, sid[0] ? sid : "-");
	if (rcpt != NULL) {
		transport_clean(to, sizeof(to), rcpt);
		buf_printf(msg_r, "\r\n\tfor <%s>", to);
	}
	buf_printf(msg_r, ";\r\n\t%s\r\n", date);
	buf_append(msg_r, data, len);
	buf_reset(meta_r);
	mime_cache_build(buf_ptr(msg_r), buf_used(msg_r), meta_r);
}

struct ar_nested {
	uint64_t user_num;
	struct auto_reply *ar;
};

static int
ar_nested_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct ar_nested *an = vargs;
	return auto_reply_queue(st, txn, an->user_num, an->ar, err);
}

static int
fw_nested_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	return forward_queue(st, txn, vargs, err);
}

/* The recipient's forward, in a nested transaction of its own: 1
 * queued, 0 not (logged; the message is kept). */
static int
deliver_forward(struct store *st, MDB_txn *txn, struct deliver_rcpt *r)
{
	char e2[STORE_ERR_SIZE];
	if (store_nested(st, txn, fw_nested_op, r->forward, e2) == 0)
		return 1;
	log_error("forward for <%s> not queued: %s; the message is kept",
		  r->address ? r->address : "", e2);
	return 0;
}

int
deliver_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct deliver_args *a = vargs;
	int keyed = a->delivery_id != NULL && a->delivery_id[0] != '\0';
	for (size_t i = 0; i < a->n; i++) {
		struct deliver_rcpt *r = &a->rcpt[i];
		struct store_user_rec u;
		uint8_t key[STORE_DELIVERY_KEY];
		const char *e;
		r->mbox_id = 0;
		r->duplicate = 0;
		r->same_as = 0;
		if (keyed) {
			store_delivery_key(a->delivery_id, r->mailbox_id,
					   r->address ? r->address : "", key);
			int seen = store_delivery_seen(st, txn, key, &e);
			if (seen < 0) {
				snprintf(err, STORE_ERR_SIZE, "%s", e);
				return STORE_ERR_INTERNAL;
			}
			if (seen == 0) {
				r->rc = STORE_OK;
				r->duplicate = 1;
				continue;
			}
		}
		/* Two addresses of one mailbox (the user and an alias, or
		   the same address twice): one copy, as Postfix's local and
		   Dovecot's LMTP do; each recipient still has its reply. */
		size_t j = 0;
		while (j < i && (strcmp(a->rcpt[j].mailbox_id,
					r->mailbox_id) != 0 ||
				 a->rcpt[j].rc != STORE_OK))
			j++;
		if (j < i) {
			int rc;
			r->rc = STORE_OK;
			r->mbox_id = a->rcpt[j].mbox_id;
			r->same_as = j + 1;
			if (keyed && (rc = store_delivery_record(
					      st, txn, key,
					      (int64_t)time(NULL))) != 0) {
				snprintf(err, STORE_ERR_SIZE, "deliveries: %s",
					 mdb_strerror(rc));
				return rc == MDB_MAP_FULL ? STORE_ERR_FULL
							  : STORE_ERR_INTERNAL;
			}
			continue;
		}
		int rc = store_user_get(st, txn, r->mailbox_id, &u, &e);
		if (rc == 0 && r->quota_known) {
			/* the directory's quota first, as at a login */
			struct store_quota_set_args qa = {
				.mailbox_id = r->mailbox_id,
				.source = STORE_QUOTA_DIRECTORY,
				.q = r->quota,
			};
			if ((rc = store_nested(st, txn, store_op_quota_set, &qa,
					       err)) != 0)
				return rc;
		}
		if (rc != 0) {
			r->rc = rc > 0 ? STORE_ERR_NONEXISTENT
				       : STORE_ERR_INTERNAL;
			snprintf(r->err, sizeof(r->err), "%s",
				 rc > 0 ? "Mailbox not provisioned on this "
					  "server"
					: e);
			continue;
		}
		struct store_append_args aa = {
		    .user_num = u.user_num,
		    .mailbox = "INBOX",
		    .msgs = &a->msg,
		    .n = 1,
		    .quota_storage = a->quota_storage,
		    .quota_messages = a->quota_messages,
		    .unlimited = a->unlimited,
		};
		/* Forwarded without a copy kept: stored only when the
		   forward cannot be queued (mail is never lost). */
		if (r->forward != NULL && !forward_keep(r->forward) &&
		    deliver_forward(st, txn, r)) {
			r->rc = STORE_OK;
		} else {
			r->rc = store_nested(st, txn, store_op_append, &aa,
					     r->err);
			if (r->rc != 0)
				continue;
			r->mbox_id = aa.mbox_id_out;
			if (r->forward != NULL && forward_keep(r->forward))
				deliver_forward(st, txn, r);
		}
		/* A reply that cannot be queued costs the delivery nothing
		   (its own nested transaction, undone alone). */
		if (r->auto_reply != NULL) {
			struct ar_nested an = {u.user_num, r->auto_reply};
			char e2[STORE_ERR_SIZE];
			if (store_nested(st, txn, ar_nested_op, &an, e2) != 0)
				log_error("automatic reply for <%s> not "
					  "queued: %s",
					  r->address ? r->address : "", e2);
		}
		/* In the transaction that stored it: a retry after a crash
		   that lost our reply finds the record. */
		if (keyed && (rc = store_delivery_record(st, txn, key,
							 (int64_t)time(NULL))) !=
				     0) {
			snprintf(err, STORE_ERR_SIZE, "deliveries: %s",
				 mdb_strerror(rc));
			return rc == MDB_MAP_FULL ? STORE_ERR_FULL
						  : STORE_ERR_INTERNAL;
		}
	}
	return 0;
}

void
deliver_reply(const struct config *cfg, int rc, const char *err,
	      uint32_t *code_r, const char **status_r, const char **text_r)
{
	int permanent = strcasecmp(cfg->transport_quota_failure,
				   "permanent") == 0;
	switch (rc) {
	case STORE_OK:
		*code_r = 250;
		*status_r = "2.0.0";
		*text_r = "Saved";
		return;
	case STORE_ERR_QUOTA:
		*code_r = permanent ? 552 : 452;
		*status_r = permanent ? "5.2.2" : "4.2.2";
		*text_r = "Mailbox is full (quota exceeded)";
		return;
	case STORE_ERR_FULL:
		*code_r = 452;
		*status_r = "4.3.1";
		*text_r = "Insufficient system storage";
		return;
	case STORE_ERR_NONEXISTENT:
		*code_r = 451;
		*status_r = "4.3.0";
		*text_r = err[0] != '\0' ? err : "Mailbox not available";
		return;
	}
	*code_r = 451;
	*status_r = "4.3.0";
	*text_r = "Temporary internal error";
}
