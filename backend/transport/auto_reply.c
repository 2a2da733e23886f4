/* auto_reply.c - the automatic reply (out of office) of a recipient whose
 * directory entry has one (porticoAutoReplyText ...), by RFC 3834's rules.
 *
 * The frontend's LMTP reads the entry and hands the text on with the
 * recipient (proto/link.proto, Recipient).  Here, before the delivery's
 * store operation, the message is looked at: a reply goes only to a
 * message sent to the user (one of its addresses in To: or Cc:) by a
 * person (no Auto-Submitted:, no mailing list, no bulk, no spam, no null
 * or daemon sender), and the reply is built.  In the delivery's own
 * transaction (auto_reply_queue, from deliver_op) the sender is checked
 * against the senders answered within transport.auto_reply_interval and
 * the reply joins the queue, which sends it from the null sender (RFC
 * 3834 3.3) like any submitted message.  Delivered and answered are one
 * commit: a crash never answers twice, and an answer is never lost. */
#include "backend/transport/transport.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "backend/mime/mime.h"
#include "backend/transport/queue.h"
#include "common/log.h"

/* Longest Subject, In-Reply-To and References text taken over (a
 * header line stays within 998 characters). */
#define AR_FIELD_MAX 900

struct auto_reply {
	uint8_t sender_hash[8];
	int64_t now;
	int64_t interval;
	unsigned max;
	char *to;   /* the sender, as in MAIL FROM */
	char *user; /* the recipient's address */
	Portico__Submit sub;
	Portico__Recipient rcpt;
	Portico__Recipient *rcptv[1];
	struct buf msg;
	struct queue_add_args q;
	/* out */
	int queued;
	uint64_t queue_id;
};

/* What the message's header says about it. */
struct ar_scan {
	const Portico__Recipient *r;
	const char *why; /* no reply: why */
	char from[320];  /* the address of r it was sent to */
	const char *subject, *msgid, *refs;
	size_t subject_len, msgid_len, refs_len;
};

/* The first word of a field's value, lower case ("no" of "No (x)"). */
static void
ar_token(const char *v, size_t len, char *out, size_t outsize)
{
	size_t i = 0, o = 0;
	while (i < len &&
	       (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < len && o + 1 < outsize; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == ';' || c == '(' || c == ',' || isspace(c))
			break;
		out[o++] = (char)tolower(c);
	}
	out[o] = '\0';
}

static void
ar_addr_found(void *ctx, const char *mbox, size_t ml, const char *dom,
	      size_t dl)
{
	struct ar_scan *sc = ctx;
	if (sc->from[0] != '\0')
		return;
	for (size_t i = 0; i < sc->r->n_own_address; i++) {
		const char *a = sc->r->own_address[i];
		const char *at = strrchr(a, '@');
		if (at == NULL || (size_t)(at - a) != ml ||
		    strlen(at + 1) != dl || strncasecmp(a, mbox, ml) != 0 ||
		    strncasecmp(at + 1, dom, dl) != 0)
			continue;
		snprintf(sc->from, sizeof(sc->from), "%s", a);
		return;
	}
}

/* Whether the value v names, among comma- or space-separated words, one
 * of the words of list (lower case, NUL-separated). */
static int
ar_has_word(const char *v, size_t len, const char *const *list)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ',' || isspace((unsigned char)v[i])))
			i++;
		size_t j = i;
		while (j < len && v[j] != ',' && !isspace((unsigned char)v[j]))
			j++;
		for (const char *const *w = list; *w != NULL; w++)
			if (strlen(*w) == j - i &&
			    strncasecmp(*w, v + i, j - i) == 0)
				return 1;
		i = j;
	}
	return 0;
}

/* The local part of a sender address that is a program's, not a
 * person's (RFC 3834 2, as Sieve implementations read it). */
static int
ar_daemon_sender(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);
	static const char *const names[] = {"mailer-daemon", "listserv",
					    "majordomo", NULL};
	for (const char *const *w = names; *w != NULL; w++)
		if (strlen(*w) == n && strncasecmp(*w, addr, n) == 0)
			return 1;
	if (n >= 6 && strncasecmp(addr, "owner-", 6) == 0)
		return 1;
	if (n >= 8 && strncasecmp(addr + n - 8, "-request", 8) == 0)
		return 1;
	return 0;
}

static void
ar_scan_header(struct ar_scan *sc, const char *msg, size_t len)
{
	static const char *const suppress[] = {"all", "oof", NULL};
	size_t hlen = mime_header_len(msg, len), pos = 0;
	struct mime_hfield f;
	char tok[32];
	while (sc->why == NULL && mime_header_next(msg, hlen, &pos, &f)) {
		if (mime_hfield_is(&f, "Auto-Submitted")) {
			ar_token(f.val, f.vlen, tok, sizeof(tok));
			if (strcmp(tok, "no") != 0)
				sc->why = "Auto-Submitted";
		} else if (mime_hfield_is(&f, "List-Id") ||
			   mime_hfield_is(&f, "List-Post")) {
			sc->why = "mailing list";
		} else if (mime_hfield_is(&f, "Precedence")) {
			ar_token(f.val, f.vlen, tok, sizeof(tok));
			if (strcmp(tok, "bulk") == 0 ||
			    strcmp(tok, "list") == 0 ||
			    strcmp(tok, "junk") == 0)
				sc->why = "Precedence";
		} else if (mime_hfield_is(&f, "X-Spam-Flag") ||
			   mime_hfield_is(&f, "X-Spam-Status")) {
			/* SpamAssassin's verdict: a forged sender is
			   likely, and the reply would be backscatter */
			ar_token(f.val, f.vlen, tok, sizeof(tok));
			if (strcmp(tok, "yes") == 0)
				sc->why = "marked as spam";
		} else if (mime_hfield_is(&f, "X-Auto-Response-Suppress")) {
			if (ar_has_word(f.val, f.vlen, suppress))
				sc->why = "X-Auto-Response-Suppress";
		} else if (mime_hfield_is(&f, "To") ||
			   mime_hfield_is(&f, "Cc") ||
			   mime_hfield_is(&f, "Bcc") ||
			   mime_hfield_is(&f, "Resent-To") ||
			   mime_hfield_is(&f, "Resent-Cc") ||
			   mime_hfield_is(&f, "Resent-Bcc")) {
			if (sc->from[0] == '\0')
				mime_address_each(f.val, f.vlen, ar_addr_found,
						  sc);
		} else if (mime_hfield_is(&f, "Subject") &&
			   sc->subject == NULL) {
			sc->subject = f.val;
			sc->subject_len = f.vlen;
		} else if (mime_hfield_is(&f, "Message-ID") &&
			   sc->msgid == NULL) {
			sc->msgid = f.val;
			sc->msgid_len = f.vlen;
		} else if (mime_hfield_is(&f, "References") &&
			   sc->refs == NULL) {
			sc->refs = f.val;
			sc->refs_len = f.vlen;
		}
	}
	if (sc->why == NULL && sc->from[0] == '\0')
		sc->why = "not sent to the account's address (To:, Cc:)";
}

/* v[0..len) unfolded, without control characters and outer blanks,
 * cut between characters to fit out (NUL-terminated); its length. */
static size_t
ar_unfold(const char *v, size_t len, char *out, size_t outsize)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < outsize; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '\t')
			c = ' ';
		if (c < 0x20 || c == 0x7f || (c == ' ' && n == 0))
			continue;
		out[n++] = (char)c;
	}
	/* cut short within a character: that character goes */
	if (n + 1 >= outsize)
		while (n > 0 && ((unsigned char)out[n - 1] & 0x80) != 0) {
			unsigned char c = (unsigned char)out[--n];
			if ((c & 0xc0) == 0xc0)
				break;
		}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return n;
}

static int
ar_ascii(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 0;
	return 1;
}

/* A message-id list (References:, Message-ID:) as it may be written
 * again: printable ASCII from a '<' to a '>'. */
static int
ar_ids_ok(const char *p, size_t len)
{
	if (len < 2 || p[0] != '<' || p[len - 1] != '>')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

/* The reply's text: line ends made CRLF. */
static void
ar_text_crlf(const char *t, struct buf *out)
{
	for (; *t != '\0'; t++) {
		if (*t == '\r')
			continue;
		if (*t == '\n')
			buf_append(out, "\r", 1);
		buf_append(out, t, 1);
	}
	if (buf_used(out) < 2 ||
	    memcmp(buf_ptr(out) + buf_used(out) - 2, "\r\n", 2) != 0)
		buf_append(out, "\r\n", 2);
}

static void
ar_build(struct auto_reply *ar, const struct config *cfg,
	 const Portico__Recipient *r, const struct ar_scan *sc)
{
	struct buf *m = &ar->msg;
	struct buf body = BUF_INIT;
	char date[64], to[320], subj[AR_FIELD_MAX], id[AR_FIELD_MAX],
	    refs[AR_FIELD_MAX];
	size_t n;
	uint8_t rnd[8];
	transport_date(ar->now, date, sizeof(date));
	transport_clean(to, sizeof(to), ar->to);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	buf_printf(m, "From: <%s>\r\n", sc->from);
	buf_printf(m, "To: <%s>\r\n", to);
	if (r->auto_reply_subject[0] != '\0') {
		n = ar_unfold(r->auto_reply_subject,
			      strlen(r->auto_reply_subject), subj,
			      sizeof(subj));
	} else if (sc->subject != NULL) {
		memcpy(subj, "Auto: ", 6);
		n = 6 + ar_unfold(sc->subject, sc->subject_len, subj + 6,
				  sizeof(subj) - 6);
	} else {
		n = (size_t)snprintf(subj, sizeof(subj), "Auto reply");
	}
	if (ar_ascii(subj, n))
		buf_printf(m, "Subject: %s\r\n", subj);
	else
		transport_field_encoded(m, "Subject", subj, n);
	buf_printf(m, "Date: %s\r\n", date);
	buf_printf(m,
		   "Message-ID: <auto.%lld.%02x%02x%02x%02x%02x%02x%02x%02x@"
		   "%s>\r\n",
		   (long long)ar->now, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		   rnd[5], rnd[6], rnd[7], transport_hostname(cfg));
	n = sc->msgid != NULL
		? ar_unfold(sc->msgid, sc->msgid_len, id, sizeof(id))
		: 0;
	if (ar_ids_ok(id, n)) {
		size_t rn = sc->refs != NULL ? ar_unfold(sc->refs, sc->refs_len,
							 refs, sizeof(refs))
					     : 0;
		buf_printf(m, "In-Reply-To: %s\r\n", id);
		if (ar_ids_ok(refs, rn))
			buf_printf(m, "References: %s\r\n %s\r\n", refs, id);
		else
			buf_printf(m, "References: %s\r\n", id);
	}
	buf_printf(m, "Auto-Submitted: auto-replied\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\n");
	ar_text_crlf(r->auto_reply_text, &body);
	int plain = ar_ascii(buf_ptr(&body), buf_used(&body));
	for (size_t i = 0, line = 0; plain && i < buf_used(&body); i++)
		if (buf_ptr(&body)[i] == '\n')
			line = 0;
		else if (++line > 998)
			plain = 0;
	if (plain) {
		buf_printf(m, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		buf_append(m, buf_ptr(&body), buf_used(&body));
	} else {
		buf_printf(m, "Content-Transfer-Encoding: base64\r\n\r\n");
		const unsigned char *p = (const unsigned char *)buf_ptr(&body);
		for (size_t i = 0; i < buf_used(&body); i += 57) {
			size_t k = buf_used(&body) - i < 57
				       ? buf_used(&body) - i
				       : 57;
			unsigned char enc[80];
			int el = EVP_EncodeBlock(enc, p + i, (int)k);
			buf_append(m, enc, (size_t)el);
			buf_append(m, "\r\n", 2);
		}
	}
	buf_free(&body);
}

struct auto_reply *
auto_reply_prepare(const struct config *cfg, const Portico__Deliver *d,
		   const Portico__Recipient *r, const char *msg, size_t len,
		   const char **why_r)
{
	int64_t now = (int64_t)time(NULL);
	struct ar_scan sc;
	memset(&sc, 0, sizeof(sc));
	sc.r = r;
	*why_r = NULL;
	if (r->auto_reply_text[0] == '\0')
		return NULL;
	if (r->auto_reply_start != 0 && now < r->auto_reply_start)
		sc.why = "before porticoAutoReplyStart";
	else if (r->auto_reply_end != 0 && now >= r->auto_reply_end)
		sc.why = "after porticoAutoReplyEnd";
	else if (d->mail_from[0] == '\0')
		sc.why = "null sender";
	else if (ar_daemon_sender(d->mail_from))
		sc.why = "sender is a program";
	for (size_t i = 0; sc.why == NULL && i < r->n_own_address; i++)
		if (strcasecmp(r->own_address[i], d->mail_from) == 0)
			sc.why = "sender is the account";
	if (sc.why == NULL)
		ar_scan_header(&sc, msg, len);
	if (sc.why != NULL) {
		*why_r = sc.why;
		return NULL;
	}
	struct auto_reply *ar = calloc(1, sizeof(*ar));
	if (ar == NULL || (ar->to = strdup(d->mail_from)) == NULL ||
	    (ar->user = strdup(sc.from)) == NULL)
		abort();
	ar->now = now;
	ar->interval = cfg->transport_auto_reply_interval;
	ar->max = (unsigned)cfg->transport_auto_reply_senders;
	/* the sender, without regard to case */
	char lower[512];
	size_t n = 0;
	for (const char *p = d->mail_from; *p != '\0' && n + 1 < sizeof(lower);
	     p++)
		lower[n++] = (char)tolower((unsigned char)*p);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(lower, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		abort();
	memcpy(ar->sender_hash, md, sizeof(ar->sender_hash));
	ar_build(ar, cfg, r, &sc);
	portico__submit__init(&ar->sub);
	portico__recipient__init(&ar->rcpt);
	ar->rcpt.address = ar->to;
	ar->rcptv[0] = &ar->rcpt;
	ar->sub.user = ar->user;
	ar->sub.mailbox_id = r->mailbox_id;
	ar->sub.mail_from = (char *)"";
	ar->sub.n_rcpt = 1;
	ar->sub.rcpt = ar->rcptv;
	ar->sub.client_addr = (char *)"";
	ar->sub.session_id = d->session_id;
	ar->sub.body = (char *)"7BIT";
	ar->sub.smtputf8 = !ar_ascii(ar->to, strlen(ar->to));
	queue_add_prepare(&ar->q, &ar->sub, ar->user, buf_ptr(&ar->msg),
			  buf_used(&ar->msg));
	return ar;
}

int
auto_reply_queue(struct store *st, MDB_txn *txn, uint64_t user_num,
		 struct auto_reply *ar, char *err)
{
	int rc = store_auto_reply_due(st, txn, user_num, ar->sender_hash,
				      ar->now, ar->interval, ar->max);
	if (rc == 0)
		return 0;
	if (rc != 1) {
		snprintf(err, STORE_ERR_SIZE, "automatic reply record: %s",
			 rc == -1 ? "not a list of entries" : mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	if ((rc = queue_add_op(st, txn, &ar->q, err)) != 0)
		return rc;
	ar->queued = 1;
	ar->queue_id = ar->q.id_out;
	return 0;
}

int
auto_reply_queued(const struct auto_reply *ar, uint64_t *id_r,
		  const char **to_r)
{
	if (ar == NULL || !ar->queued)
		return 0;
	*id_r = ar->queue_id;
	*to_r = ar->to;
	return 1;
}

const char *
auto_reply_message(const struct auto_reply *ar, size_t *len_r)
{
	*len_r = buf_used(&ar->msg);
	return buf_ptr(&ar->msg);
}

void
auto_reply_free(struct auto_reply **arp)
{
	struct auto_reply *ar = *arp;
	*arp = NULL;
	if (ar == NULL)
		return;
	queue_add_release(&ar->q);
	buf_free(&ar->msg);
	free(ar->to);
	free(ar->user);
	free(ar);
}
