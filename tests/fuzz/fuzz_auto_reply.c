/* fuzz_auto_reply.c - the automatic reply (backend/transport/auto_reply.c).
 *
 * An input is a message as a sender's MTA may deliver it; the first line
 * (up to LF) is the envelope sender (one MAIL FROM would take).  The recipient
 * has an automatic reply whose Subject is empty (so the original's is taken
 * over) and two addresses.  Whatever the message, a reply that is built must be
 * a well-formed message: header lines of printable ASCII within 998 characters,
 * CRLF line ends only, an empty line, a body within 998 characters a line;
 * From: one of the recipient's addresses; In-Reply-To: and References: only
 * with angle-bracketed ids.  No reply comes without its reason, nor a reason
 * with a reply.
 *
 * The recipient also forwards its mail to an address of its own (in
 * another case) and to one elsewhere: a copy that is built goes to the one
 * elsewhere only and is "Delivered-To: " the recipient, then the message
 * as given without a first Return-Path: line; no copy comes without its
 * reason, nor a reason with a copy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/transport/transport.h"
#include "common/smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void check_forward(const Portico__Deliver *d, Portico__Recipient *r,
			  const char *msg, size_t len);

#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),    \
	 abort())

/* utf8: the sender is not ASCII (SMTPUTF8), so To: may not be either
 * (RFC 6532). */
static void
check_message(const char *m, size_t len, int utf8)
{
	const char *end = memmem(m, len, "\r\n\r\n", 4);
	if (end == NULL)
		FAIL();
	size_t hlen = (size_t)(end - m) + 2;
	int from_ok = 0;
	for (size_t i = 0, line = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c == '\n' && (i == 0 || m[i - 1] != '\r'))
			FAIL();
		if (c == '\r' && (i + 1 >= len || m[i + 1] != '\n'))
			FAIL();
		if (c == '\r' || c == '\n') {
			line = 0;
			continue;
		}
		if (++line > 998)
			FAIL();
		if (i < hlen &&
		    (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) &&
		    c != '\t')
			FAIL();
	}
	for (const char *p = m; p < m + hlen;) {
		const char *e = memmem(p, (size_t)(m + hlen - p), "\r\n", 2);
		size_t n = (size_t)(e - p);
		if (n > 6 && strncmp(p, "From: ", 6) == 0) {
			static const char a[] = "<a@example.test>",
					  b[] = "<bob@example.test>";
			if (!((n == 6 + sizeof(a) - 1 &&
			       memcmp(p + 6, a, sizeof(a) - 1) == 0) ||
			      (n == 6 + sizeof(b) - 1 &&
			       memcmp(p + 6, b, sizeof(b) - 1) == 0)))
				FAIL();
			from_ok = 1;
		}
		if ((n > 13 && strncmp(p, "In-Reply-To: ", 13) == 0) &&
		    (p[13] != '<' || p[n - 1] != '>'))
			FAIL();
		if ((n > 12 && strncmp(p, "References: ", 12) == 0) &&
		    p[12] != '<')
			FAIL();
		p = e + 2;
	}
	if (!from_ok)
		FAIL();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static int init;
	if (!init) {
		config_defaults(&cfg);
		init = 1;
	}
	if (size > 65536)
		return 0;
	const char *nl = memchr(data, '\n', size);
	if (nl == NULL)
		return 0;
	size_t flen = (size_t)(nl - (const char *)data);
	if (flen > 300 || memchr(data, '\0', flen) != NULL)
		return 0;
	/* as the frontend's MAIL FROM takes it */
	char path[304], from[SMTP_MAX_PATH + 1];
	path[0] = '<';
	memcpy(path + 1, data, flen);
	memcpy(path + 1 + flen, ">", 2);
	if (smtp_parse_reverse_path(path, 1, from, sizeof(from)) < 0)
		return 0;
	int utf8 = 0;
	for (const char *p = from; *p != '\0'; p++)
		utf8 |= (unsigned char)*p >= 0x80;
	const char *msg = nl + 1;
	size_t len = size - flen - 1;

	char *own[] = {(char *)"a@example.test", (char *)"bob@example.test"};
	Portico__Recipient r = PORTICO__RECIPIENT__INIT;
	r.address = own[0];
	r.mailbox_id = (char *)"0123456789abcdef";
	r.auto_reply_text = (char *)"Away.\nBack on Monday,\xc3\xa4.";
	r.auto_reply_subject = (char *)"";
	r.n_own_address = 2;
	r.own_address = own;
	Portico__Recipient *rv[1] = {&r};
	Portico__Deliver d = PORTICO__DELIVER__INIT;
	d.mail_from = from;
	d.n_rcpt = 1;
	d.rcpt = rv;
	d.session_id = (char *)"fuzz";

	check_forward(&d, &r, msg, len);
	r.n_forward_to = 0;
	const char *why;
	struct auto_reply *ar = auto_reply_prepare(&cfg, &d, &r, msg, len,
						   &why);
	if (ar == NULL) {
		if (why == NULL)
			FAIL();
		return 0;
	}
	if (why != NULL)
		FAIL();
	size_t mlen;
	const char *m = auto_reply_message(ar, &mlen);
	check_message(m, mlen, utf8);
	auto_reply_free(&ar);
	return 0;
}

static void
check_forward(const Portico__Deliver *d, Portico__Recipient *r, const char *msg,
	      size_t len)
{
	char *to[] = {(char *)"A@Example.Test", (char *)"far@remote.test"};
	r->n_forward_to = 2;
	r->forward_to = to;
	const char *why;
	static struct config cfg;
	static int init;
	if (!init) {
		config_defaults(&cfg);
		init = 1;
	}
	struct forward *fw = forward_prepare(&cfg, d, r, msg, len, &why);
	if (fw == NULL) {
		if (why == NULL)
			FAIL();
		return;
	}
	if (why != NULL)
		FAIL();
	uint64_t id;
	size_t n;
	if (forward_queued(fw, &id, &n)) /* not before the store's op */
		FAIL();
	if (len >= 12 && strncasecmp(msg, "Return-Path:", 12) == 0) {
		const char *nl = memchr(msg, '\n', len);
		size_t skip = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		msg += skip;
		len -= skip;
	}
	static const char top[] = "Delivered-To: a@example.test\r\n";
	size_t flen;
	const char *f = forward_message(fw, &flen);
	if (flen != sizeof(top) - 1 + len ||
	    memcmp(f, top, sizeof(top) - 1) != 0 ||
	    (len > 0 && memcmp(f + sizeof(top) - 1, msg, len) != 0))
		FAIL();
	forward_free(&fw);
}
