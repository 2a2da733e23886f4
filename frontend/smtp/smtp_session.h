/* smtp_session.h - SMTP submission (RFC 6409, RFC 8314) and LMTP
 * (RFC 2033) served by the frontend itself.
 *
 * One struct smtp_session per connection, shared by both protocols:
 *
 *   smtp_session.c   greeting, command table and dispatch, EHLO/HELO,
 *                    STARTTLS, RSET, NOOP, QUIT, VRFY, HELP, errors
 *   smtp_auth.c      AUTH PLAIN / LOGIN through the frontend's login
 *   smtp_mail.c      MAIL and RCPT with their parameters; LMTP
 *                    recipients looked up in the directory
 *   smtp_data.c      DATA and BDAT: content streamed to the backends
 *                    (Submit / Deliver streams on the link), replies
 *                    from their Result
 *   lmtp/lmtp_session.c  LHLO, trusted networks, the LMTP table
 *
 * The transaction moves through these states (smtp_set_state() logs each
 * change):
 *
 *   IDLE     no transaction: MAIL starts one
 *   MAIL     MAIL accepted, no recipient yet
 *   RCPT     at least one recipient accepted
 *   CONTENT  reading DATA content, or a BDAT chunk
 *   CHUNKS   between BDAT chunks
 *   RESULT   content complete, waiting for the backends' Result
 *
 * While a command waits (directory, backend) c->hold keeps the next
 * pipelined command in the input buffer; replies go out in order.
 */
#ifndef PORTICO_SMTP_SESSION_H
#define PORTICO_SMTP_SESSION_H

#include "common/smtp_parser.h"
#include "frontend/frontend.h"

enum smtp_state {
	SMTP_S_IDLE,
	SMTP_S_MAIL,
	SMTP_S_RCPT,
	SMTP_S_CONTENT,
	SMTP_S_CHUNKS,
	SMTP_S_RESULT,
	SMTP_S_COUNT
};

/* Why content was refused while it streamed. */
enum smtp_content_error {
	SMTP_CE_NONE,
	SMTP_CE_SIZE,    /* over smtp.max_message_size */
	SMTP_CE_BARE,    /* bare CR or LF */
	SMTP_CE_NUL,     /* a NUL byte */
	SMTP_CE_DISCARD, /* BDAT outside a transaction: bytes dropped */
	SMTP_CE_COUNT
};

struct smtp_recipient {
	struct smtp_rcpt rcpt;
	char backend[64];         /* LMTP: the recipient's backend */
	char mailbox_id[128];     /* LMTP: its porticoMailboxId */
	/* LMTP: its quota in the directory (struct dir_user's) */
	int quota_storage_set, quota_messages_set;
	uint64_t quota_storage, quota_messages;
	struct dir_auto_reply *auto_reply; /* LMTP: its automatic reply */
	struct dir_forward *forward;       /* LMTP: where it is forwarded */
	unsigned target;          /* index in targets */
	unsigned code;            /* LMTP: the reply after the content */
	char status[16];
	char text[200];
};

/* One backend receiving the message (submission: the sender's; LMTP:
 * one per recipients' backend). */
struct smtp_target {
	struct smtp_session *s;
	char backend[64];
	struct xfer *x;
	uint64_t credit;          /* bytes we may still send */
	uint64_t sent;            /* content bytes sent (absolute) */
	unsigned opened : 1;
	unsigned end_sent : 1;
	unsigned done : 1;        /* Result received or failed */
	unsigned failed : 1;
	char why[160];
};

struct smtp_session {
	struct client *c;
	unsigned lmtp : 1;
	unsigned esmtp : 1;       /* EHLO/LHLO (not HELO) */
	unsigned authenticated : 1;
	unsigned greeted : 1;     /* the greeting (220 or 554) was sent */
	unsigned kicked : 1;      /* portico-admin kick: ends after the
				     reply the message waits for */
	uint64_t login_at;        /* AUTH succeeded (uv_hrtime() in ms) */
	enum smtp_state state;
	char helo[256];           /* "" until HELO/EHLO/LHLO */
	unsigned errors;

	/* the transaction */
	struct smtp_mail mail;
	struct smtp_recipient *rcpts;
	unsigned nrcpt;
	unsigned rcpt_cap;
	struct dir_req *lookup;   /* LMTP: RCPT waiting for the directory */
	struct smtp_rcpt pending_rcpt;

	/* content */
	int bdat;                 /* the transaction uses BDAT */
	uint64_t chunk_left;      /* BDAT: bytes of the chunk still to read */
	uint64_t chunk_octets;    /* BDAT: sizes of the chunks so far */
	int chunk_last;
	struct smtp_data data;
	enum smtp_content_error error;
	struct smtp_target *targets;
	unsigned ntargets;
	struct buf pending;       /* content not yet sent to every target */
	uint64_t pending_base;    /* absolute offset of pending's first byte */
	uint64_t content_size;    /* client bytes after decoding */
	int flow_hold;            /* holding input: targets are slow */
};

static inline struct smtp_session *
smtp_session(struct client *c)
{
	return c->smtp;
}

/* smtp_session.c */
void smtp_set_state(struct smtp_session *s, enum smtp_state state);
/* Sends "code status text" (one line); "code text" when status is NULL
 * (RFC 2034 4: the greeting and the HELO/EHLO replies have no enhanced
 * status code). */
void smtp_reply(struct smtp_session *s, unsigned code, const char *status,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A failed command: counts towards smtp.max_errors (closing the
 * connection at the limit) after the reply was sent.  Returns 0 when
 * the connection was closed. */
int smtp_count_error(struct smtp_session *s);
/* Forgets the transaction (RSET, after the result). */
void smtp_reset_transaction(struct smtp_session *s);
struct smtp_session *smtp_session_new(struct client *c, int lmtp);
/* The session of c, made if the connection ends before its greeting. */
struct smtp_session *smtp_session_any(struct client *c);
/* EHLO, HELO, LHLO: a new greeting (esmtp: the extensions listed). */
void smtp_hello(struct smtp_session *s, const char *args, int esmtp);
void smtp_session_command(struct client *c, const char *line, size_t len);
void smtp_session_input_error(struct client *c, const char *line,
			      size_t len, const char *msg, int fatal);
void smtp_session_detach(struct client *c);
void smtp_session_free(struct client *c);
void smtp_session_timeout(struct client *c);
void smtp_session_bye(struct client *c, const char *msg);
/* What MAIL and RCPT accept on this session. */
void smtp_offer(const struct smtp_session *s, struct smtp_offer *o);

/* Command handlers: args after the verb (NUL-terminated). */
void smtp_cmd_ehlo(struct smtp_session *s, const char *args);
void smtp_cmd_helo(struct smtp_session *s, const char *args);
void smtp_cmd_starttls(struct smtp_session *s, const char *args);
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_cmd_mail(struct smtp_session *s, const char *args);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args);
void smtp_cmd_data(struct smtp_session *s, const char *args);
void smtp_cmd_bdat(struct smtp_session *s, const char *args);

/* smtp_mail.c: a printable copy of an address (UTF-8 and quoted local
 * parts with controls made safe) for replies and logs; returns out. */
const char *smtp_addr_print(const char *addr, char *out, size_t outsize);

/* smtp_auth.c */
void smtp_auth_response(struct smtp_session *s, const char *line,
			size_t len);
void smtp_auth_failed(struct client *c, enum login_failure why,
		      const char *msg);
void smtp_auth_logged_in(struct client *c);

/* smtp_data.c */
void smtp_data_content(struct client *c);
/* Frees the targets and their streams. */
void smtp_data_abort(struct smtp_session *s);
/* The goodbye of a session portico-admin kick ended (421), and the
 * connection closes. */
void smtp_session_kicked_bye(struct smtp_session *s);

/* lmtp_session.c */
void lmtp_cmd_lhlo(struct smtp_session *s, const char *args);

#endif
