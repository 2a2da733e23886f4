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
	IMAP_F_SELECTED = 1 << 0, /* a mailbox must be selected */
	/* No EXPUNGE responses before it runs: RFC 3501 7.4.1 for FETCH,
	   STORE and SEARCH; COPY and MOVE read their set in the numbers the
	   client sent it in, and are told the expunges after (MOVE, COPY to
	   the selected mailbox) or at the next command. */
	IMAP_F_NO_EXPUNGE = 1 << 1,
	IMAP_F_NO_SYNC = 1 << 2, /* no mailbox update before it runs */
};

enum imap_enable {
	IMAP_ENABLE_CONDSTORE = 1 << 0,
	IMAP_ENABLE_QRESYNC = 1 << 1,
	IMAP_ENABLE_UTF8 = 1 << 2,
	IMAP_ENABLE_REV2 = 1 << 3,
};

/* A command of this many octets or more keeps its buffer, and its
 * literals of this size or more are used in place (APPEND's messages). */
#define IMAP_BORROW_MIN ((size_t)1 << 20)

struct imap_session {
	struct bsession *s;
	struct lp_reader lp;
	struct arena cmd_pool; /* the running command's memory */
	struct lp_held held;   /* the running command as read, when its
				  literals are used in place */
	enum imap_state state;
	uint64_t user_num;
	unsigned bad_commands;
	unsigned enabled;         /* enum imap_enable */
	int idling;               /* IDLE: waiting for DONE */
	char idle_tag[128];
	uint64_t idle_said_at; /* IDLE: its last word (loop ms) */
	/* selected mailbox */
	char *mbox_name;
	struct store_mailbox_rec mbox;
	int readonly;
	uint32_t *uids; /* uids[seq - 1] */
	size_t count;
	/* Others' expunges not yet reported (not allowed during the
	   command): mbox.highestmodseq stays below them meanwhile. */
	int withheld;
	/* Flag changes this session made and already reported: not echoed
	   by imap_sync(). */
	uint32_t *saved;          /* SEARCHRES: UIDs of SEARCH ... SAVE */
	size_t nsaved;
	struct imap_own {
		uint32_t uid;
		uint64_t modseq;
	} *own;
	size_t nown, capown;
	/* The capabilities this session offers when the account has some
	   switched off (porticoImapCapabilityOff, Open's
	   imap_capabilities_off); NULL: the backend's. */
	char *caps;
	char *caps_off_account; /* the account's list, as Open gave it */
	char client_id[96];     /* the client's ID, "name/version" ("") */
	/* IDLE: when it began or last showed a change (loop ms), for
	   imap.park_after */
	uint64_t idle_since;
	/* Between commands: its last input or completion (loop ms), for
	   imap.park_after */
	uint64_t active_at;
	/* Park sent, Parked awaited: changes wait (the watch that follows
	   finds them), input from the frontend calls it off */
	int parking;
};

/* What the account (account_off: names separated by spaces, NULL or "":
 * none) and imap.client_capabilities_off for the client (client: its ID's
 * "name/version", NULL or "": not known) switch off for the session
 * (imap_caps.c): at open, and again when a later ID names the client. */
void imap_caps_apply(struct imap_session *is, const char *account_off,
		     const char *client);
/* The session's capabilities: backend_imap_capabilities() less what the
 * account or its client has switched off. */
const char *imap_capabilities(const struct imap_session *is);
/* Whether the session offers capability name, or a variant of it
 * ("THREAD" for THREAD=REFERENCES). */
int imap_offers(const struct imap_session *is, const char *name);

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
	/* the capability the command belongs to (NULL: IMAP4rev1's): a
	   session that does not offer it takes the command as unknown */
	const char *cap;
};

/* Responses. */
void imap_tagged(struct imap_cmd_ctx *cmd, const char *status,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void imap_untagged(struct imap_session *is, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes an IMAP string: quoted when safe, literal otherwise. */
void imap_write_string(struct imap_session *is, const char *s, size_t len);
void imap_set_state(struct imap_session *is, enum imap_state state);
/* Remembers a flag change of this session (not to be echoed). */
void imap_own_change(struct imap_session *is, uint32_t uid, uint64_t modseq);
/* "1:3,7" for sorted uids. */
void imap_uid_set_format(const uint32_t *uids, size_t n, struct buf *out);
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
/* The members of a view uids[0..n) (ascending) that ranges name, by UID
 * (by_uid) or by sequence number (index + 1), into out (room for n):
 * ascending, each once; returns how many.  A search per range, not a
 * look at every member. */
size_t imap_seqset_select(const struct imap_range *r, unsigned nr, int by_uid,
			  const uint32_t *uids, size_t n, struct arena *a,
			  uint32_t *out);
/* Appends the UIDs of ranges (NULL: every UID) below uidnext that are not
 * among the sorted uids[0..n) to out, as a UID set; returns the number of
 * ranges written (0: none absent). */
size_t imap_uid_set_absent(const struct imap_range *ranges, unsigned nranges,
			   uint32_t uidnext, const uint32_t *uids, size_t n,
			   struct buf *out);

/* STATUS items (imap_cmd_select.c), shared with LIST-STATUS. */
int imap_status_items_valid(const struct imap_arg *list);
void imap_status_write(struct imap_session *is, const char *name,
		       const struct imap_arg *list,
		       const struct store_mailbox_rec *mb);
/* Mailbox view helpers (imap_cmd_select.c). */
void imap_qresync_report(struct imap_session *is, uint64_t modseq,
			 const struct imap_range *known, unsigned nknown);
void imap_mailbox_close(struct imap_session *is);

/* Mailbox names (imap_mutf7.c). */
int imap_mutf7_to_utf8(const char *in, size_t len, struct buf *out);
void imap_utf8_to_mutf7(const char *in, size_t len, struct buf *out);
int imap_utf8_valid(const char *in, size_t len);
/* NULL when name (UTF-8) is acceptable, else a message for NO. */
const char *imap_name_check(const char *name, size_t len);

/* The store name of a mailbox argument (INBOX case-folded, modified
 * UTF-7 decoded unless UTF8=ACCEPT is enabled), in the command's arena;
 * NULL after a tagged BAD/NO was sent. */
const char *imap_mailbox_arg(struct imap_cmd_ctx *cmd,
			     const struct imap_arg *arg);
/* Writes a mailbox name as an IMAP string, encoded for this client. */
void imap_write_mailbox(struct imap_session *is, const char *name);
/* The UIDs a sequence set names (cmd->uid: a UID set) among the selected
 * mailbox's messages, in the command's arena; -1 after a tagged BAD. */
int imap_set_uids(struct imap_cmd_ctx *cmd, const char *set,
		  uint32_t **uids_r, size_t *n_r);
/* Index of uid in the view, or -1. */
long imap_uid_index(const struct imap_session *is, uint32_t uid);
/* The tagged answer to a failed store operation. */
void imap_store_failed(struct imap_cmd_ctx *cmd, int rc, const char *err);
/* Parses a flag list (or single flag) into system flags and keywords in
 * the arena; -1 after a tagged BAD. */
int imap_flags_parse(struct imap_cmd_ctx *cmd, const struct imap_arg *arg,
		     uint32_t *flags_r, const char ***keywords_r,
		     unsigned *nkeywords_r);
/* Writes "(\Seen kw ...)" for a message. */
void imap_write_flags(struct imap_session *is, uint32_t flags,
		      uint64_t keywords, const char *names, size_t nameslen);
/* Copies cmd (tag) so an asynchronous completion can answer it. */
struct imap_cmd_ctx *imap_cmd_keep(struct imap_cmd_ctx *cmd);

/* Command handlers. */
imap_cmd_func imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
	imap_cmd_id, imap_cmd_enable, imap_cmd_namespace, imap_cmd_check,
	imap_cmd_compress;
imap_cmd_func imap_cmd_select, imap_cmd_examine, imap_cmd_close,
	imap_cmd_unselect, imap_cmd_status;
imap_cmd_func imap_cmd_fetch;
imap_cmd_func imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list,
	imap_cmd_lsub;
imap_cmd_func imap_cmd_append, imap_cmd_replace;
imap_cmd_func imap_cmd_store;
imap_cmd_func imap_cmd_copy, imap_cmd_move;
imap_cmd_func imap_cmd_expunge;
/* The \Deleted messages among cand[] (ascending UIDs) as stored now, into
 * *gone_r (the command's pool); -1 after answering a store error. */
int imap_deleted_among(struct imap_cmd_ctx *cmd, const uint32_t *cand,
		       size_t ncand, uint32_t **gone_r, size_t *n_r);
imap_cmd_func imap_cmd_idle;
imap_cmd_func imap_cmd_search;
imap_cmd_func imap_cmd_sort, imap_cmd_thread;
imap_cmd_func imap_cmd_getquotaroot, imap_cmd_getquota, imap_cmd_setquota;

/* -- SEARCH criteria and message access, shared with SORT and THREAD
 * (imap_cmd_search.c).  A search runs in one read transaction; what it
 * reads and decodes of the messages is counted against
 * limits.search_max_bytes. */
struct imap_search;
struct imap_msg;

/* "CHARSET x" of SEARCH, or the charset argument of SORT and THREAD:
 * 0 if UTF-8 or US-ASCII, -1 after a tagged NO [BADCHARSET]. */
int imap_search_charset(struct imap_cmd_ctx *cmd, const struct imap_arg *arg);
/* Compiles the criteria args[0..argc) (an implicit AND) in the command's
 * arena; NULL after a tagged BAD. */
struct imap_search *imap_search_parse(struct imap_cmd_ctx *cmd,
				      const struct imap_arg *args,
				      unsigned argc);
/* Called for each matching message, in sequence order; returns 0 to go
 * on, -1 to stop (the budget ran out while it read the message). */
typedef int imap_search_hit_fn(struct imap_msg *m, void *ctx);
/* Evaluates the criteria over the selected mailbox.  Returns 0, or -1
 * after a tagged NO ([LIMIT] when the budget ran out, [SERVERBUG] on a
 * store error). */
int imap_search_run(struct imap_search *s, imap_search_hit_fn *fn,
		    void *ctx);
/* ESEARCH's RETURN options (RFC 4731; SAVE: RFC 5182), of SEARCH and,
 * with ESORT (RFC 5267), of SORT. */
enum {
	IMAP_RET_MIN = 1,
	IMAP_RET_MAX = 2,
	IMAP_RET_ALL = 4,
	IMAP_RET_COUNT = 8,
	IMAP_RET_SAVE = 16,
};
/* "RETURN (...)" as the command's first arguments: the options in *ret_r
 * (ALL for an empty list) and 2, the arguments it took; 0 and *ret_r 0
 * when the command does not start with RETURN; -1 after a tagged BAD. */
int imap_search_return(struct imap_cmd_ctx *cmd, unsigned *ret_r);
/* The ESEARCH response for ids[0..n), in the order given (MIN the first,
 * MAX the last: SORT's order for ESORT), into out. */
void imap_esearch_line(struct imap_cmd_ctx *cmd, unsigned ret,
		       const uint32_t *ids, size_t n, uint64_t modseq,
		       struct buf *out);
/* SAVE: uids[0..n) (malloc'd, taken) become $ (RFC 5182), as a set; with
 * MIN and/or MAX alone, the messages they name. */
void imap_search_save(struct imap_session *is, unsigned ret, uint32_t *uids,
		      size_t n);
/* Highest MODSEQ among the matches when the criteria used MODSEQ
 * (RFC 7162 3.1.5), else 0. */
uint64_t imap_search_modseq(const struct imap_search *s);
/* Takes n units from the budget; -1 (and later NO [LIMIT]) if it ran
 * out. */
int imap_search_charge(struct imap_search *s, uint64_t n);
/* The tagged NO [LIMIT] of a search whose budget ran out. */
void imap_search_limit_reply(struct imap_search *s);

uint32_t imap_msg_seq(const struct imap_msg *m);
uint32_t imap_msg_uid(const struct imap_msg *m);
const struct store_msg_rec *imap_msg_rec(const struct imap_msg *m);

/* The first address of an ENVELOPE address list: NULL fields are NIL. */
struct imap_env_addr {
	const char *name, *mailbox, *host;
};
/* What SORT and THREAD read of a message: ENVELOPE strings as in the
 * message (encoded words not decoded), NUL-terminated, NULL for NIL. */
struct imap_envelope {
	const char *date, *subject, *in_reply_to, *message_id;
	struct imap_env_addr from, to, cc;
};
/* The envelope of m, from the MIME structure stored at delivery (or from
 * a parse of the header when none was stored); valid until the hit
 * function returns.  NULL when the budget ran out. */
const struct imap_envelope *imap_msg_envelope(struct imap_msg *m);
/* The first field name of the message header, unfolded, as in the
 * message; NULL if absent or when the budget ran out (*over_r set). */
const char *imap_msg_header(struct imap_msg *m, const char *name,
			    int *over_r);

/* Appends in[0..len) (UTF-8) folded for comparison, i;unicode-casemap
 * (RFC 5051; imap_casefold.c): each character replaced by its titlecase,
 * then its compatibility decomposition (NFKD), each character of which
 * is titlecased again; bytes that are not UTF-8 pass through.  Two
 * strings are equal under the comparator when their folded forms are;
 * SEARCH matches a folded needle inside a folded text. */
void imap_casefold(const char *in, size_t len, struct buf *out);
/* RFC 5322 date-time (obsolete forms and comments accepted).  Returns 0
 * with the time in UTC (zone applied; a bad zone is UTC, a bad time
 * 00:00:00) and the calendar day as written at 00:00 UTC (SEARCH SENT*),
 * or -1 if no date can be read. */
int imap_date_parse(const char *s, int64_t *utc_r, int64_t *day_r);

/* No command read in part or running: IDLE, or between two commands. */
int imap_between_commands(const struct imap_session *is);
/* Parking (imap_park.c, link version 5): a session in IDLE or between
 * commands with nothing in flight is offered to its frontend as an
 * ImapPark (session_park()).  Returns 1 when it was (is->parking), 0 when
 * it cannot be parked now. */
int imap_park(struct imap_session *is);
/* engine->parked(): the frontend took it. */
int imap_parked(struct bsession *s, uint64_t *mbox_id_r, uint64_t *modseq_r);
/* Open.resume: the parked session as it was, then what changed since, as
 * IDLE shows it.  -1 with a code and reason when it cannot be. */
int imap_resume(struct imap_session *is, const Portico__Open *o,
		const char **code_r, const char **reason_r);

/* IDLE: a line received while idling (imap_cmd_idle.c). */
void imap_idle_line(struct imap_session *is, const char *line, size_t len);
/* IDLE: the keepalive, if one is due (imap.idle_notify_interval). */
void imap_idle_tick(struct imap_session *is, uint64_t now);

/* Flags as an IMAP list, e.g. "\\Seen \\Flagged", into out. */
void imap_flags_format(uint32_t flags, char *out, size_t outsize);

#endif
