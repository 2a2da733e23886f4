/* dsn.c - delivery status notifications: multipart/report (RFC 6522)
 * with a message/delivery-status part (RFC 3464). */
#include "backend/transport/dsn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "backend/transport/transport.h"

int
dsn_wanted(const char *notify, int failed)
{
	if (notify == NULL || notify[0] == '\0')
		return failed;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", notify);
	for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(w, "NEVER") == 0)
			return 0;
		if (failed && strcasecmp(w, "FAILURE") == 0)
			return 1;
		if (!failed && strcasecmp(w, "SUCCESS") == 0)
			return 1;
	}
	return 0;
}

int
dsn_wanted_delay(const char *notify)
{
	if (notify == NULL || notify[0] == '\0')
		return 1;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", notify);
	for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save))
		if (strcasecmp(w, "DELAY") == 0)
			return 1;
	return 0;
}

/* Copies s into out, printable ASCII only (fields of the report). */
static void
field(char *out, size_t outsize, const char *s)
{
	size_t o = 0;
	for (; s != NULL && *s != '\0' && o + 1 < outsize; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

/* The host of a "host:port" into out, if it is a name: 0 for an IPv4 or
 * IPv6 address (bracketed or not). */
static int
remote_name(char *out, size_t outsize, const char *hostport)
{
	field(out, outsize, hostport);
	char *colon = strrchr(out, ':');
	if (colon == NULL || strchr(out, ':') != colon)
		return 0; /* IPv6: "[::1]:25", "::1:25" */
	*colon = '\0';
	unsigned char bin[4];
	return out[0] != '\0' && out[0] != '[' &&
	       inet_pton(AF_INET, out, bin) != 1;
}

/* The header of the message: up to and including the empty line. */
static size_t
header_len(const char *data, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] == '\n' && data[i + 1] == '\n')
			return i + 2;
		if (i + 3 < len && memcmp(data + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	}
	return len;
}

void
dsn_build(const struct config *cfg, const struct dsn_msg *m,
	  const struct dsn_rcpt *r, size_t n, struct buf *out)
{
	const char *host = transport_hostname(cfg);
	char date[64], arrival[64], boundary[96], sender[512], tmp[600];
	unsigned char rnd[8];
	int failed = 0, delayed = 0;
	for (size_t i = 0; i < n; i++) {
		failed |= strcmp(r[i].action, "failed") == 0;
		delayed |= strcmp(r[i].action, "delayed") == 0;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(boundary, sizeof(boundary),
		 "=_portico_%s_%02x%02x%02x%02x%02x%02x%02x%02x", m->queue_id,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	int64_t now = (int64_t)time(NULL);
	transport_date(now, date, sizeof(date));
	transport_date(m->arrival, arrival, sizeof(arrival));
	field(sender, sizeof(sender), m->sender);

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
		   host);
	buf_printf(out, "To: <%s>\r\n", sender);
	buf_printf(out, "Subject: %s\r\n",
		   failed    ? "Undelivered Mail Returned to Sender"
		   : delayed ? "Delayed Mail (still being retried)"
			     : "Successful Mail Delivery Report");
	buf_printf(out, "Date: %s\r\n", date);
	buf_printf(out, "Message-ID: <dsn.%s.%lld@%s>\r\n", m->queue_id,
		   (long long)now, host);
	buf_printf(out, "Auto-Submitted: auto-replied\r\n");
	buf_printf(out, "MIME-Version: 1.0\r\n");
	buf_printf(out, "Content-Type: multipart/report; "
			"report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
		   boundary);
	buf_printf(out, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	/* 1: for people */
	buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
			"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		   boundary);
	buf_printf(out, "This is the mail system at host %s.\r\n\r\n", host);
	if (failed)
		buf_printf(out,
			   "I'm sorry to have to inform you that your message "
			   "could not\r\nbe delivered to one or more "
			   "recipients. It's attached below.\r\n\r\n");
	else if (delayed)
		buf_printf(out, "Your message could not be delivered yet to "
				"the recipient(s)\r\nlisted below; delivery "
				"will be tried again. No action is\r\nneeded "
				"on your part.\r\n\r\n");
	else
		buf_printf(out, "Your message was successfully delivered to "
				"the destination(s)\r\nlisted below.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		char addr[512], text[600];
		field(addr, sizeof(addr), r[i].address);
		field(text, sizeof(text), r[i].text);
		if (r[i].code != 0)
			buf_printf(out, "<%s>: %s: %u %s %s\r\n", addr,
				   r[i].action, r[i].code, r[i].status, text);
		else
			buf_printf(out, "<%s>: %s: %s %s\r\n", addr,
				   r[i].action, r[i].status, text);
	}
	buf_printf(out, "\r\n");

	/* 2: for programs (RFC 3464 2.2, 2.3) */
	buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
			"Content-Type: message/delivery-status\r\n\r\n",
		   boundary);
	buf_printf(out, "Reporting-MTA: dns; %s\r\n", host);
	buf_printf(out, "X-Portico-Queue-ID: %s\r\n", m->queue_id);
	if (m->envid != NULL && m->envid[0] != '\0') {
		field(tmp, sizeof(tmp), m->envid);
		buf_printf(out, "Original-Envelope-Id: %s\r\n", tmp);
	}
	buf_printf(out, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < n; i++) {
		char addr[512], text[600], remote[300], last[64];
		field(addr, sizeof(addr), r[i].address);
		field(text, sizeof(text), r[i].text);
		buf_printf(out, "\r\nFinal-Recipient: rfc822; %s\r\n", addr);
		if (r[i].orcpt != NULL && strchr(r[i].orcpt, ';') != NULL) {
			field(tmp, sizeof(tmp), r[i].orcpt);
			buf_printf(out, "Original-Recipient: %s\r\n", tmp);
		}
		buf_printf(out, "Action: %s\r\n", r[i].action);
		buf_printf(out, "Status: %s\r\n", r[i].status);
		/* RFC 3464 2.3.5: the MTA that answered, by its DNS name;
		   a host given as an address has none to write. */
		int answered = r[i].remote != NULL && r[i].remote[0] != '\0';
		if (answered &&
		    remote_name(remote, sizeof(remote), r[i].remote))
			buf_printf(out, "Remote-MTA: dns; %s\r\n", remote);
		/* RFC 3464 2.3.6: "smtp;" is what that MTA said; a failure
		   found here (no route, no connection) is ours to word. */
		if (r[i].code != 0 && answered)
			buf_printf(out, "Diagnostic-Code: smtp; %u %s %s\r\n",
				   r[i].code, r[i].status, text);
		else if (text[0] != '\0')
			buf_printf(out, "Diagnostic-Code: X-Portico; %s\r\n",
				   text);
		if (r[i].last_attempt != 0) {
			transport_date(r[i].last_attempt, last, sizeof(last));
			buf_printf(out, "Last-Attempt-Date: %s\r\n", last);
		}
		if (r[i].will_retry_until != 0) {
			transport_date(r[i].will_retry_until, last,
				       sizeof(last));
			buf_printf(out, "Will-Retry-Until: %s\r\n", last);
		}
	}
	buf_printf(out, "\r\n");

	/* 3: the message, or its header */
	/* A report of no failure returns only the header: a delay warning
	   (the message itself is still on its way), and a success report
	   unless RET=FULL asked for the message (RFC 3461 4.3: it SHOULD
	   then be the header only). */
	int no_ret = m->ret == NULL || m->ret[0] == '\0';
	int headers_only = (m->ret != NULL &&
			    strcasecmp(m->ret, "HDRS") == 0) ||
			   m->len > cfg->transport_dsn_return_limit ||
			   (!failed && (delayed || no_ret));
	if (failed && m->whole)
		headers_only = 0; /* the only copy there is */
	size_t len = headers_only ? header_len(m->data, m->len) : m->len;
	buf_printf(out, "--%s\r\n", boundary);
	if (headers_only)
		buf_printf(out, "Content-Description: Undelivered Message "
				"Headers\r\nContent-Type: "
				"text/rfc822-headers\r\n");
	else
		buf_printf(out, "Content-Description: %s Message\r\n"
				"Content-Type: message/rfc822\r\n",
			   failed ? "Undelivered" : "Delivered");
	if (m->eightbit)
		buf_printf(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_printf(out, "\r\n");
	buf_append(out, m->data, len);
	if (len > 0 && m->data[len - 1] != '\n')
		buf_printf(out, "\r\n");
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}
