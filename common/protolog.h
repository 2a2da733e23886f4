/* protolog.h - protocol logging: every command a client sends and every
 * response line it gets, one log line each (log.protocol_* settings).
 *
 *   session=ID protocol=imap dir=in line="a1 LOGIN alice <redacted>"
 *   session=ID protocol=imap dir=out line="a1 OK Logged in"
 *
 * What is never logged: passwords and SASL exchanges (LOGIN's password,
 * AUTHENTICATE / AUTH initial responses and continuation lines, POP3
 * PASS and the APOP digest all become PROTOLOG_REDACTED), literal and
 * message data (only their size: "{n}<n octets>", data_octets=N).  Lines
 * are cut to the session's max visible characters and escaped
 * (log_sanitize()).
 *
 * A protolog belongs to one session and one thread (its event loop).
 */
#ifndef PORTICO_PROTOLOG_H
#define PORTICO_PROTOLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PROTOLOG_REDACTED "<redacted>"

enum protolog_proto {
	PROTOLOG_IMAP,
	PROTOLOG_POP3,
	PROTOLOG_SMTP,
	PROTOLOG_LMTP,
	PROTOLOG_PROTO_COUNT
};

struct protolog {
	enum protolog_proto proto;
	char session[64];
	size_t max;            /* visible characters per logged line */
	struct buf line;       /* output line being assembled (capped) */
	size_t line_len;       /* its real length */
	uint64_t literal_left; /* IMAP output: literal bytes to pass over */
	uint64_t data_octets;  /* message data passed over so far */
	int pop3_data_next;    /* POP3: the next +OK starts message data */
	int pop3_data;         /* POP3: inside RETR/TOP message data */
	char tail[32];         /* the output line's last bytes */
	size_t tail_len;
};

/* NULL-safe: every function below does nothing when pl is NULL. */
struct protolog *protolog_new(enum protolog_proto proto, const char *session,
			      size_t max);
void protolog_free(struct protolog **pl);
/* One complete command as read (IMAP: with its literals).  sasl: the
 * line answers a SASL challenge (logged as PROTOLOG_REDACTED). */
void protolog_command(struct protolog *pl, const char *cmd, size_t len,
		      int sasl);
/* Message content taken from the client (SMTP DATA, BDAT chunks); the
 * total is logged when end is set. */
void protolog_content(struct protolog *pl, size_t len, int end);
/* Bytes written to the client, in order. */
void protolog_output(struct protolog *pl, const void *data, size_t len);

/* The command as it is logged, before escaping: literal data replaced by
 * its size, secrets by PROTOLOG_REDACTED; at most max bytes (plus "...")
 * into out.  Exported for tests. */
void protolog_render(enum protolog_proto proto, const char *cmd, size_t len,
		     int sasl, size_t max, struct buf *out);

#endif
