/* lineparse.h - the one reader of raw client bytes.
 *
 * A reader frames a byte stream into commands without ever holding more
 * than its limits allow.  Modes:
 *
 *   LP_MODE_LINE   one line per command (POP3, SMTP, SASL responses)
 *   LP_MODE_IMAP   a line that may continue through literals: {n}, {n+}
 *                  and ~{n} (RFC 3501, RFC 7888, RFC 3516)
 *
 * lp_feed() consumes bytes until something happens and says what:
 *
 *   LP_MORE      all input consumed, no command complete yet
 *   LP_COMMAND   a command is complete: lp_command() gives it, without the
 *                final line end; call lp_next() before feeding more
 *   LP_CONTINUE  a synchronizing literal was accepted: send the
 *                continuation request ("+ OK"), then feed on
 *   LP_ERROR     the command is invalid or too large; lp_error() has a
 *                message safe to send to the client.  The rest of the
 *                offending line is skipped.  Feed on after lp_next().
 *   LP_FATAL     as LP_ERROR, but the stream cannot be resynchronised
 *                (a non-synchronizing literal over the limit): answer and
 *                close the connection.
 *
 * A reader may share a budget (lp_set_budget()) with the other readers of
 * its process: the literals of the commands being read, counted at their
 * announced size from their header on, never exceed budget->max together.
 * A literal that would is refused like one over the limits: a
 * synchronizing one with LP_ERROR before the client sends it, a
 * non-synchronizing one with LP_FATAL.  A command's literals are given
 * back at lp_next()/lp_reset()/lp_free(), and so is its buffer when it
 * grew beyond LP_KEEP_SIZE: a session holds a large command's memory only
 * while it reads that command.  A command whose literals are used where
 * they were read (an APPEND stored from them, not from a copy) is moved
 * out of the reader with lp_hold_command(): its buffer, and its literals'
 * share of the budget, are then given back by lp_held_release() when the
 * command is done.
 *
 * Lines end with CRLF or a bare LF; the CR is stripped.  NUL is refused
 * outside literals.  The command buffer keeps literal headers and the line
 * ends that follow them, so imap_parse() sees the command as sent.
 */
#ifndef PORTICO_LINEPARSE_H
#define PORTICO_LINEPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum lp_mode {
	LP_MODE_LINE,
	LP_MODE_IMAP,
	LP_MODE_COUNT
};

enum lp_status {
	LP_MORE,
	LP_COMMAND,
	LP_CONTINUE,
	LP_ERROR,
	LP_FATAL,
	LP_STATUS_COUNT
};

struct lp_limits {
	size_t max_line;     /* one line, without its line end */
	size_t max_literal;  /* one literal */
	size_t max_command;  /* whole command, literals included */
	unsigned max_literals;
	/* LITERAL- (RFC 7888): the largest non-synchronizing literal; a
	   larger one is fatal.  0: up to max_literal (LITERAL+). */
	size_t max_nonsync;
};

/* Buffer capacity a reader keeps between commands. */
#define LP_KEEP_SIZE 65536

/* Literal bytes the readers sharing it may hold at once (one thread). */
struct lp_budget {
	uint64_t max;     /* 0: no cap */
	uint64_t used;    /* reserved by the commands being read */
	uint64_t refused; /* literals refused for it (metrics) */
};

struct lp_reader {
	enum lp_mode mode;
	struct lp_limits lim;
	struct buf cmd;          /* the command being read */
	size_t line_start;       /* offset in cmd of the current line */
	uint64_t literal_left;   /* literal bytes still to come */
	unsigned literals;       /* literals in this command */
	int in_quote, escaped;   /* quoted-string state of the line */
	int skipping;            /* discarding up to the next line end */
	int done;                /* a status other than MORE is pending */
	const char *error;
	int temporary;            /* the error is the budget's: try later */
	struct lp_budget *budget; /* NULL: none */
	uint64_t reserved;        /* of budget, by this command's literals */
};

void lp_init(struct lp_reader *r, enum lp_mode mode,
	     const struct lp_limits *lim);
void lp_set_mode(struct lp_reader *r, enum lp_mode mode);
void lp_set_limits(struct lp_reader *r, const struct lp_limits *lim);
void lp_free(struct lp_reader *r);
/* Shares budget (NULL: none) from the next literal on. */
void lp_set_budget(struct lp_reader *r, struct lp_budget *budget);

/* Consumes up to len bytes of data and returns a status; *consumed_r says
 * how many were used.  Bytes after a status other than LP_MORE are left
 * for the next call. */
enum lp_status lp_feed(struct lp_reader *r, const char *data, size_t len,
		       size_t *consumed_r);
/* The complete command (LP_COMMAND) or what was read of the bad one. */
const char *lp_command(const struct lp_reader *r, size_t *len_r);
const char *lp_error(const struct lp_reader *r);
/* Whether the error is a refusal for the budget (the same command may
 * succeed later: IMAP answers NO, not BAD). */
int lp_error_temporary(const struct lp_reader *r);
/* msg without the IMAP response code it may start with ("[TOOBIG]
 * Command line too long" -> "Command line too long"): POP3 (RFC 2449 8
 * has no such codes) and SMTP send only the text.  Points into msg. */
const char *lp_error_text(const char *msg);
/* Forgets the current command and error; ready for the next one. */
void lp_next(struct lp_reader *r);

/* A complete command moved out of its reader, with what its literals
 * reserved of the budget. */
struct lp_held {
	struct buf buf;
	struct lp_budget *budget;
	uint64_t reserved;
};

#define LP_HELD_INIT                                                           \
	{                                                                      \
		BUF_INIT, NULL, 0                                              \
	}

/* Moves the complete command (LP_COMMAND) into *h, whose command is
 * released first, and returns it (len as lp_command() says), followed by a
 * NUL that is not part of it.  The reader reads its next command into a
 * buffer of its own; the budget keeps counting this one's literals until
 * lp_held_release(). */
const char *lp_hold_command(struct lp_reader *r, struct lp_held *h);
/* Frees a held command and gives back its literals (none held: no-op). */
void lp_held_release(struct lp_held *h);
/* Forgets everything, including a line being skipped (after STARTTLS). */
void lp_reset(struct lp_reader *r);

/* Copies the IMAP tag at the start of cmd into out (size outsize) if it is
 * a valid tag; otherwise writes "*".  Returns out. */
char *lp_tag(const char *cmd, size_t len, char *out, size_t outsize);

#endif
