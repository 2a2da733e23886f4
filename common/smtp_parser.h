/* smtp_parser.h - SMTP and LMTP commands and message content (RFC 5321,
 * RFC 2033, RFC 1870, RFC 6152, RFC 6531, RFC 3461, RFC 3030).
 *
 * Command lines come from the line reader (lineparse.h, LP_MODE_LINE)
 * without their line end.  smtp_parse_verb() names the command;
 * smtp_parse_mail() and smtp_parse_rcpt() take the rest of a MAIL or RCPT
 * line apart: the path, validated, and each ESMTP parameter, checked
 * against what the server offers.  Every failure fills a struct
 * smtp_reply with the reply code, the enhanced status code (RFC 3463) and
 * a text safe to send.
 *
 * struct smtp_data decodes message content as it streams in, never
 * holding more than one byte back:
 *
 *   SMTP_DATA_DOT     DATA: dot-terminated, dot-unstuffed; only
 *                     CR LF "." CR LF ends the message.
 *   SMTP_DATA_COUNTED BDAT: the caller feeds exactly the chunk's bytes.
 *
 * In both, only CR LF ends a line: a CR not followed by LF or an LF not
 * preceded by CR is passed through as data, never taken for a line end,
 * and counted in bare_cr / bare_lf so that the caller refuses the message
 * (RFC 5321 2.3.8; the "\n.\n", "\r.\r" and "\n.\r\n" smuggling forms
 * cannot end a message).  NUL bytes are passed through and counted in nul
 * for the same reason: no mail line may hold one (RFC 5322 2.1, RFC 6152
 * 3), IMAP cannot serve one in a literal (RFC 3501 4.3), and BINARYMIME
 * is not offered.
 */
#ifndef PORTICO_SMTP_PARSER_H
#define PORTICO_SMTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets, brackets included. */
#define SMTP_MAX_PATH 256
/* RFC 3461 4.4: ENVID is at most 100 characters (xtext decoded). */
#define SMTP_MAX_ENVID 100
#define SMTP_MAX_ORCPT 500
/* LMTP MAIL parameter XDELIVERYID (Portico's queue to a Portico LMTP
 * server): 1 to 64 of A-Z a-z 0-9 . - _ */
#define SMTP_MAX_DELIVERY_ID 64
/* Parameters accepted on one MAIL or RCPT line. */
#define SMTP_MAX_PARAMS 16

enum smtp_verb {
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_LHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_STARTTLS,
	SMTP_AUTH,
	SMTP_UNKNOWN,
	SMTP_VERB_COUNT
};

struct smtp_reply {
	unsigned code;      /* 501, 553, 555 ... */
	const char *status; /* "5.5.4" */
	const char *text;
};

/* What the server offers (parameters beyond are refused). */
struct smtp_offer {
	uint64_t max_size;  /* SIZE limit (0: no SIZE parameter) */
	unsigned smtputf8 : 1;
	unsigned dsn : 1;
	unsigned eightbit : 1;
	unsigned auth : 1;  /* the AUTH= parameter of MAIL (RFC 4954) */
	unsigned null_path_ok : 1; /* MAIL FROM:<> allowed */
	unsigned lmtp : 1;  /* LMTP: XDELIVERYID is offered */
};

enum smtp_body {
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_COUNT
};

struct smtp_mail {
	char path[SMTP_MAX_PATH + 1]; /* without <> and source route; "" */
	uint64_t size;                /* SIZE=, 0 if absent */
	enum smtp_body body;
	unsigned smtputf8 : 1;
	char ret[8];                  /* "FULL", "HDRS" or "" */
	char envid[SMTP_MAX_ENVID + 1]; /* xtext decoded */
	char delivery_id[SMTP_MAX_DELIVERY_ID + 1]; /* LMTP; "" if none */
};

struct smtp_rcpt {
	char path[SMTP_MAX_PATH + 1];
	char notify[40];              /* "NEVER" or e.g. "SUCCESS,FAILURE" */
	char orcpt[SMTP_MAX_ORCPT + 1]; /* "rfc822;addr", xtext decoded */
};

enum smtp_data_mode {
	SMTP_DATA_DOT,
	SMTP_DATA_COUNTED,
	SMTP_DATA_MODE_COUNT
};

struct smtp_data {
	enum smtp_data_mode mode;
	int state;          /* where in a line we are */
	int ended;          /* DOT: the final "." CR LF was seen */
	uint64_t bare_cr;
	uint64_t bare_lf;
	uint64_t nul;       /* NUL bytes (passed through, counted) */
	uint64_t size;      /* bytes produced */
};

/* The command verb at the start of line (case-insensitive) and where its
 * arguments begin (*args_r: after one space, "" when none).  MAIL and
 * RCPT are recognised by "MAIL FROM:" / "RCPT TO:", their arguments then
 * begin at the path. */
enum smtp_verb smtp_parse_verb(const char *line, size_t len,
			       const char **args_r);
/* The verb's name, upper case ("MAIL"). */
const char *smtp_verb_name(enum smtp_verb verb);

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates) in
 * s[0..len). */
int smtp_utf8_valid(const unsigned char *s, size_t len);

/* The arguments of MAIL FROM: / RCPT TO: (NUL-terminated, as given after
 * the colon).  0 on success; -1 with *err_r filled. */
int smtp_parse_mail(const char *args, const struct smtp_offer *offer,
		    struct smtp_mail *mail_r, struct smtp_reply *err_r);
int smtp_parse_rcpt(const char *args, const struct smtp_offer *offer,
		    struct smtp_rcpt *rcpt_r, struct smtp_reply *err_r);
/* A reverse-path alone ("<>" or "<local-part@domain>", NUL-terminated,
 * nothing after the '>'), checked as MAIL FROM checks its path; UTF-8 in
 * it only when utf8 (SMTPUTF8).  0 with the address (without brackets or
 * a source route, "" for the null sender) in out, of outsize octets
 * (SMTP_MAX_PATH + 1 holds any); -1 when it is not one. */
int smtp_parse_reverse_path(const char *path, int utf8, char *out,
			    size_t outsize);
/* BDAT chunk-size [LAST]. */
int smtp_parse_bdat(const char *args, uint64_t *size_r, int *last_r,
		    struct smtp_reply *err_r);
/* Whether addr (local@domain) has domain as its domain, ignoring case. */
int smtp_addr_equal(const char *a, const char *b);

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode);
/* Decodes up to len bytes of in into out (room for outsize bytes,
 * outsize >= 2) and returns how many bytes of in were used; *outlen_r says
 * how many were written.  DOT mode stops right after the final "." CR LF
 * and sets d->ended. */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
		      char *out, size_t outsize, size_t *outlen_r);
/* COUNTED mode, after the last chunk: writes a CR held back (a bare CR at
 * the very end) into out (room for 1) and returns the bytes written. */
size_t smtp_data_finish(struct smtp_data *d, char *out);

#endif
