/* dsn.h - delivery status notifications (RFC 3464, RFC 3461). */
#ifndef PORTICO_DSN_H
#define PORTICO_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

/* One recipient of the report. */
struct dsn_rcpt {
	const char *address;
	const char *orcpt;     /* "rfc822;addr" as submitted, or "" */
	const char *action;    /* "failed", "delayed", "delivered" or
				  "relayed" */
	uint32_t code;         /* the reply (0: none) */
	const char *status;    /* enhanced status code */
	const char *text;
	const char *remote;    /* "host:port" that answered, or "" */
	int64_t last_attempt;
	int64_t will_retry_until; /* delayed: when it will be given up */
};

/* What the report is about. */
struct dsn_msg {
	const char *queue_id;
	const char *sender;    /* the envelope sender: the report's To */
	const char *envid;     /* ENVID or "" */
	const char *ret;       /* "HDRS": headers only; else the message */
	int whole;             /* a failure returns the whole message,
				  whatever RET and the limit */
	int8_t eightbit;       /* the returned message has 8-bit content */
	int64_t arrival;
	const char *data;      /* the original message */
	size_t len;
};

/* Appends the whole report (headers, multipart/report with the text, the
 * message/delivery-status and the returned message or its headers) to
 * out.  The message goes back whole unless RET=HDRS, it is larger than
 * transport.dsn_return_limit, or the report has no failure (a delay
 * warning; a success report without RET=FULL): then only its header.  A
 * failure of a message marked whole returns it whole in any case. */
void dsn_build(const struct config *cfg, const struct dsn_msg *m,
	       const struct dsn_rcpt *r, size_t n, struct buf *out);

/* Whether NOTIFY asks for a report on this outcome (RFC 3461 4.1: an
 * empty NOTIFY means FAILURE; NEVER means none). */
int dsn_wanted(const char *notify, int failed);
/* Whether NOTIFY asks to hear of a delay (an empty NOTIFY is taken as
 * FAILURE,DELAY, which RFC 3461 4.1 allows). */
int dsn_wanted_delay(const char *notify);

#endif
