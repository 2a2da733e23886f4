/* imap.h - the backend's IMAP4 engine (post-login).
 *
 * One file per command family (imap_cmd_*.c); the session and the command
 * table are in imap_session.c.  The dispatcher checks the state a command
 * needs before its handler runs.
 */
#ifndef PORTICO_IMAP_H
#define PORTICO_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/arena.h"
#include "common/imap_parser.h"
#include "common/lineparse.h"

enum imap_state {
	IMAP_STATE_AUTHENTICATED,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
	IMAP_STATE_COUNT
};

/* What a command needs. */
enum imap_cmd_flags {
	IMAP_F_ANY = 0,
	IMAP_F_SELECTED = 1 << 0,   /* a mailbox must be selected */
	IMAP_F_NO_EXPUNGE = 1 << 1, /* no EXPUNGE responses (RFC 3501 7.4.1) */
	IMAP_F_NO_SYNC = 1 << 2,    /* no mailbox update before it runs */
};

struct imap_session {
	struct bsession *s;
	struct lp_reader lp;
	struct arena cmd_pool;
	enum imap_state state;
	uint64_t user_num;
	unsigned bad_commands;
	/* selected mailbox */
	char *mbox_name;
	struct store_mailbox_rec mbox;
	int readonly;
	uint32_t *uids; /* uids[seq - 1] */
	size_t count;
};

struct imap_cmd_ctx {
	struct imap_session *is;
	const char *tag;
	const char *name;
	const struct imap_arg *args; /* after the command name */
	unsigned argc;
	int uid;                     /* UID FETCH etc. */
};

typedef void imap_cmd_func(struct imap_cmd_ctx *cmd);

struct imap_cmd {
	const char *name;
	imap_cmd_func *func;
	unsigned flags;
};

/* Responses. */
void imap_tagged(struct imap_cmd_ctx *cmd, const char *status,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void imap_untagged(struct imap_session *is, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes an IMAP string: quoted when safe, literal otherwise. */
void imap_write_string(struct imap_session *is, const char *s, size_t len);
void imap_set_state(struct imap_session *is, enum imap_state state);
/* Reports other sessions' changes to the selected mailbox. */
void imap_sync(struct imap_session *is, int allow_expunge);

/* Sequence sets (imap_seqset.c). */
struct imap_range {
	uint32_t lo, hi;
};
/* Parses a sequence set; '*' is max.  Ranges are normalised (lo <= hi)
 * into an arena array. */
int imap_seqset_parse(const char *s, uint32_t max, struct arena *a,
		      struct imap_range **ranges_r, unsigned *count_r);
int imap_seqset_contains(const struct imap_range *r, unsigned n, uint32_t v);

/* Mailbox view helpers (imap_cmd_select.c). */
void imap_mailbox_close(struct imap_session *is);

/* Command handlers. */
imap_cmd_func imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
	imap_cmd_id;
imap_cmd_func imap_cmd_select, imap_cmd_examine, imap_cmd_close,
	imap_cmd_unselect;
imap_cmd_func imap_cmd_fetch;

/* Flags as an IMAP list, e.g. "\\Seen \\Flagged", into out. */
void imap_flags_format(uint32_t flags, char *out, size_t outsize);

#endif
