/* transport.h - the backend's mail transport.
 *
 * Messages arrive on link streams of their own (proto/link.proto, "Mail
 * transport"):
 *   Deliver (the frontend's LMTP): the message goes into the INBOX of each
 *     recipient, all on this backend, one reply per recipient, sent once
 *     the store has committed (deliver.c);
 *   Submit (the frontend's submission service): the message and its
 *     envelope go into the transport queue (queue.c), durable before the
 *     250 reply; the queue runner then delivers local recipients through
 *     the frontends' LMTP and relays the others to the smarthost
 *     (relay.c), retrying on temporary failures, and returns a delivery
 *     status notification (dsn.c) into the sender's INBOX when a
 *     recipient finally fails.
 */
#ifndef PORTICO_TRANSPORT_H
#define PORTICO_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/buf.h"

/* The engine of transport streams (input gathers the message, end
 * delivers or queues it). */
extern const struct session_engine transport_engine;

/* Starts a transport stream from a Submit or Deliver frame.  -1 with a
 * code, reason and temporariness for the Refused frame. */
int transport_open(struct bsession *s, const Portico__Frame *f,
		   const char **code_r, const char **reason_r,
		   int *temporary_r);

/* This backend's name for Received:, EHLO and DSNs. */
const char *transport_hostname(const struct config *cfg);
/* "Mon, 23 Nov 2026 12:30:00 +0000" (RFC 5322 date-time) into out. */
void transport_date(int64_t t, char *out, size_t outsize);
/* "Name: " and the text v[0..len) (UTF-8, not ASCII) as RFC 2047
 * encoded words (base64), each within 75 characters, one per line, not
 * split within a character: what every client reads, where raw UTF-8
 * (RFC 6532) is not. */
void transport_field_encoded(struct buf *out, const char *name, const char *v,
			     size_t len);
/* Copies s into out without control characters (header values built
 * from envelope fields). */
void transport_clean(char *out, size_t outsize, const char *s);
/* RFC 6409 8.2 and 8.3: a submitted message whose header section (up to
 * the first empty line) has no Date: or no Message-ID: (field names in
 * any case) gets them, "Date: <now>" and "Message-ID: <time.random@
 * transport_hostname()>", after the trace fields on top of it (the
 * frontend's Received:).  Returns 1 with the whole new message in out,
 * 0 (out untouched) when both are there. */
int transport_submission_fields(const struct config *cfg, const char *data,
				size_t len, struct buf *out);

/* -- local delivery (deliver.c) ------------------------------------------ */

/* -- automatic replies (auto_reply.c) ------------------------------------ */

/* Bounds of the Deliver fields (a frame beyond them is refused): the
 * largest lmtp.auto_reply_max_size, the frontend's subject bound, the
 * addresses a directory entry's list holds. */
#define AUTO_REPLY_TEXT_MAX 1048576
#define AUTO_REPLY_SUBJECT_MAX 1024
#define AUTO_REPLY_ADDRESSES_MAX 512

struct auto_reply;
/* The reply recipient r's automatic reply owes the message msg[0..len)
 * of d, built and ready to queue; NULL when it owes none (r has none, or
 * *why_r, RFC 3834's reasons: not now, a null or program sender, the
 * account itself, Auto-Submitted:, a list, bulk, not sent to one of the
 * account's addresses). */
struct auto_reply *auto_reply_prepare(const struct config *cfg,
				      const Portico__Deliver *d,
				      const Portico__Recipient *r,
				      const char *msg, size_t len,
				      const char **why_r);
/* In the delivery's transaction, once the message is stored for the
 * user: the reply joins the queue unless this sender had one within
 * transport.auto_reply_interval.  0 (queued or not), or a store error. */
int auto_reply_queue(struct store *st, MDB_txn *txn, uint64_t user_num,
		     struct auto_reply *ar, char *err);
/* After the commit: 1 with its queue id and addressee when it was
 * queued. */
int auto_reply_queued(const struct auto_reply *ar, uint64_t *id_r,
		      const char **to_r);
/* The reply as it will be queued (tests, fuzzing). */
const char *auto_reply_message(const struct auto_reply *ar, size_t *len_r);
void auto_reply_free(struct auto_reply **ar);

/* -- forwarding (forward.c) --------------------------------------------- */

/* Bounds of the Deliver fields (a frame beyond them is refused): the
 * largest lmtp.forward_max_addresses. */
#define FORWARD_ADDRESSES_MAX 64

struct forward;
/* The copy recipient r's forwarding (its forward_to) sends on of the
 * message msg[0..len) of d as stored, built and ready to queue; NULL
 * when there is none: r has no forwarding, or *why_r (a forwarding loop,
 * marked as spam, only the account's own addresses, only remote ones
 * with transport.forward_remote off). */
struct forward *forward_prepare(const struct config *cfg,
				const Portico__Deliver *d,
				const Portico__Recipient *r, const char *msg,
				size_t len, const char **why_r);
/* The remote addresses left out of the copy (transport.forward_remote
 * off). */
size_t forward_remote_left_out(const struct forward *fw);
/* Whether the INBOX keeps the message too (1 for NULL). */
int forward_keep(const struct forward *fw);
/* In the delivery's transaction: the copy joins the queue.  0, or a
 * store error. */
int forward_queue(struct store *st, MDB_txn *txn, struct forward *fw,
		  char *err);
/* After the commit: 1 with its queue id and its number of addresses
 * when it was queued. */
int forward_queued(const struct forward *fw, uint64_t *id_r, size_t *n_r);
/* The copy as it will be queued (tests, fuzzing). */
const char *forward_message(const struct forward *fw, size_t *len_r);
void forward_free(struct forward **fw);

struct deliver_rcpt {
	const char *mailbox_id;
	const char *address;        /* for the delivery record */
	/* the directory's quota for it (LMTP), kept as the user's own
	   limits before the message is stored; quota_known 0: none given */
	int quota_known;
	struct store_quota quota;
	/* the reply the account's automatic reply owes (NULL: none), queued
	   in the transaction that stores the message */
	struct auto_reply *auto_reply;
	/* the copy its forwarding sends on (NULL: none), queued in the same
	   transaction; unless it keeps a copy, the message is stored only
	   when the copy cannot be queued */
	struct forward *forward;
	/* out */
	int rc;                     /* enum store_result */
	char err[STORE_ERR_SIZE];
	uint64_t mbox_id;           /* the INBOX it reached; 0 forwarded
				       only */
	int duplicate;              /* already stored under delivery_id */
	size_t same_as;             /* 1 + the earlier recipient of the same
				       mailbox whose copy it shares; 0: none */
};

/* One message into the INBOX of each recipient: one body for all, each
 * recipient in a nested transaction of its own (one over quota does not
 * stop the others).  The operation itself fails only when the store
 * does. */
struct deliver_args {
	struct store_new_msg msg;
	struct deliver_rcpt *rcpt;
	size_t n;
	uint64_t quota_storage, quota_messages;
	/* The sender's delivery id, or NULL/"": each recipient stored is
	   recorded under it in the same transaction, and one already
	   recorded is not stored again (rc 0, duplicate set). */
	const char *delivery_id;
	/* stored whatever the quota (a report to a sender) */
	int unlimited;
};
store_op_fn deliver_op;

/* The message as stored: Return-Path and Received: (this hop) before the
 * bytes received, with the MIME structure parsed once into meta.  rcpt
 * goes into "for <...>" when there is exactly one recipient (the body
 * then stays shareable between the recipients of one delivery). */
void deliver_build(const struct config *cfg, const char *mail_from,
		   const char *from_host, const char *client_addr,
		   const char *with, const char *id, const char *rcpt,
		   const char *data, size_t len, struct buf *msg_r,
		   struct buf *meta_r);

/* The SMTP reply for one recipient's result (250, 452/552 for quota per
 * transport.quota_failure, 451 ...). */
void deliver_reply(const struct config *cfg, int rc, const char *err,
		   uint32_t *code_r, const char **status_r,
		   const char **text_r);

#endif
