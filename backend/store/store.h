/* store.h - the backend's mail store in one LMDB environment.
 *
 * Schema (named databases; integers in keys are big-endian so that LMDB's
 * byte order is numeric order):
 *
 *   meta       "version" -> u32; counters "next_user", "next_mbox",
 *              "next_body" -> u64; per user "u" | user_num -> its usage
 *              and "q" | user_num -> its own quota (store_quota_own());
 *              "l" | user_num -> i64 its last login (store_last_login_get());
 *              "w" | user_num -> u32 the quota warning level it was last
 *              told of (store_quota_warned_get());
 *              "external_generation" -> u64 (store_set_external())
 *   users      porticoMailboxId (text) -> struct store_user_rec
 *   mailboxes  user_num u64 | name (UTF-8, "/" separated)
 *              -> struct store_mailbox_rec
 *   mboxids    mbox_id u64 -> the mailbox's key in mailboxes
 *   subs       user_num u64 | name -> "" (subscriptions, RFC 3501 LSUB;
 *              may name mailboxes that do not exist)
 *   messages   mbox_id u64 | uid u32 -> struct store_msg_rec
 *   modseqs    mbox_id u64 | modseq u64 -> uid u32: the last change of
 *              every message, so CHANGEDSINCE never scans a mailbox
 *   expunged   mbox_id u64 | modseq u64 | uid u32 -> "": what was
 *              expunged at which modseq (VANISHED, RFC 7162), the latest
 *              backend.max_expunge_records per mailbox; and mbox_id u64 |
 *              0 u64 -> floor u64 | count u64, the records kept and the
 *              highest modseq of those dropped (store_expunged.c).
 *              Schema 2 had mbox_id | uid -> modseq; store_open()
 *              converts it.
 *   keywords   mbox_id u64 -> keyword names, NUL-separated; a message's
 *              keywords are bits of store_msg_rec.keywords
 *   bodies     body_id u64 -> the message bytes
 *   bodymeta   body_id u64 -> the parsed MIME structure (computed once,
 *              at delivery or APPEND)
 *   bodyrefs   body_id u64 -> u32 reference count
 *   bodyhash   SHA-256 of the bytes -> body_id u64 (single instance:
 *              a message delivered to many mailboxes is stored once)
 *   queue      queue_id u64 -> the transport queue entry: envelope and
 *              per-recipient state, a packed portico.QueueEntry
 *              (proto/queue.proto; backend/transport/queue.h)
 *   queuemsg   queue_id u64 -> the queued message's bytes
 *   deliveries SHA-256 of delivery id | NUL | mailbox id | NUL | address
 *              -> i64 unix time it was stored (store_delivery.c): the
 *              local deliveries made under a sender's delivery id, so
 *              that a retry of one already stored is not stored twice
 *   deliveryage time i64 | that hash -> "": the same records in the
 *              order they expire (transport.delivery_id_lifetime)
 *
 * meta also holds "next_queue" (u64), the next queue id.  Every queue
 * entry has its queuemsg record and the other way round; an entry has at
 * least one recipient still pending (an entry whose recipients are all
 * delivered or failed is removed in the transaction that settles the
 * last one, its delivery status notification included).
 *
 * Counters (messages, unseen, size, highestmodseq) of a mailbox and the
 * user's totals change in the same transaction as the messages.
 *
 * Readers use their own read-only transactions and never wait for the
 * writer.  Writes go through store_submit(): one writer thread runs every
 * pending operation in one transaction (each in a nested transaction of
 * its own, so one failing operation does not undo the others) and commits
 * once, so many sessions share one fsync; callbacks run on the loop after
 * the commit, when the change is durable.
 *
 * Return values: 0 success, 1 not found (where noted), -1 error with a
 * message in *error_r (static storage, valid until the next call).
 */
#ifndef PORTICO_STORE_H
#define PORTICO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <uv.h>

#define STORE_SCHEMA_VERSION 3
#define STORE_MAX_KEYWORDS 64

/* System flags (RFC 3501 2.3.2). */
enum store_flag {
	STORE_F_SEEN = 1 << 0,
	STORE_F_ANSWERED = 1 << 1,
	STORE_F_FLAGGED = 1 << 2,
	STORE_F_DELETED = 1 << 3,
	STORE_F_DRAFT = 1 << 4,
};
/* Not an IMAP flag: the record's own knowledge that the stored octets
 * have no bare LF, so FETCH sends them as they are without looking.  Set
 * at APPEND (and kept by COPY and STORE); records stored before it lack
 * it and are looked at. */
#define STORE_F_CRLF (1u << 31)
#define STORE_F_SYSTEM                                                         \
	(STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DELETED | \
	 STORE_F_DRAFT)

/* Special-use attributes (RFC 6154). */
enum store_special_use {
	STORE_SU_NONE = 0,
	STORE_SU_SENT,
	STORE_SU_DRAFTS,
	STORE_SU_TRASH,
	STORE_SU_JUNK,
	STORE_SU_ARCHIVE,
	STORE_SU_COUNT
};

struct store_user_rec {
	uint32_t version;
	uint32_t state;      /* 0 active */
	uint64_t user_num;
	int64_t created;
	uint64_t total_size;
	uint64_t total_messages;
};

struct store_mailbox_rec {
	uint64_t mbox_id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t size;        /* sum of message sizes */
	uint32_t special_use;
	uint32_t noselect;    /* deleted but has children (RFC 3501 6.3.4) */
	int64_t created;
};

struct store_msg_rec {
	uint64_t body_id;
	uint64_t size;
	int64_t internaldate; /* unix time */
	int64_t savedate;     /* when it reached this mailbox (RFC 8514) */
	uint64_t modseq;
	uint64_t keywords;    /* bits into the mailbox's keyword names */
	uint32_t flags;
	uint32_t pop3_retrieved; /* unix time of the first POP3 download, or 0 */
};

/* One message as listed for a session. */
struct store_msg {
	uint32_t uid;
	struct store_msg_rec rec;
};

struct store;
struct buf;

/* One backend per store: the backend claims its store directory before it
 * opens it, for as long as it runs (the descriptor, or -1 after saying
 * why: another backend has it, and its pid; STORE_CLAIM_NO_LOCKS, said
 * why, on a file system without locks, where the backend goes on
 * unclaimed); store_owner() tells whether a backend has it now, without
 * taking it (1 and its pid, 0 none, -1). */
#define STORE_OWNER_FILE "backend.lock"
#define STORE_CLAIM_NO_LOCKS (-2)
int store_claim(const char *dir, const char **error_r);
int store_owner(const char *dir, long *pid_r, const char **error_r);
int store_open(const char *dir, uint64_t map_size, struct store **st_r,
	       const char **error_r);
void store_close(struct store **st);

/* Read transactions: cheap, never block on writers. */
int store_read_begin(struct store *st, MDB_txn **txn_r, const char **error_r);
void store_read_end(MDB_txn **txn);

/* 0 found, 1 not provisioned. */
int store_user_get(struct store *st, MDB_txn *txn, const char *mailbox_id,
		   struct store_user_rec *r, const char **error_r);
/* 0 found, 1 no such mailbox. */
int store_mailbox_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		      const char *name, struct store_mailbox_rec *r,
		      const char **error_r);
/* The mailbox record by id; 0 found, 1 deleted. */
int store_mailbox_get_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			    struct store_mailbox_rec *r, const char **error_r);
/* Whose mailbox mbox_id is and its name now (NUL-terminated into name,
 * the store's key limit: 511 octets); 0 found, 1 deleted. */
int store_mailbox_name_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			     uint64_t *user_num_r, char *name, size_t size,
			     const char **error_r);
/* Lists the messages of a mailbox in UID order into a malloc'd array. */
int store_messages_list(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			struct store_msg **msgs_r, size_t *count_r,
			const char **error_r);
/* One message record; 0 found, 1 expunged. */
int store_message_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		      uint32_t uid, struct store_msg_rec *r,
		      const char **error_r);
/* The records of one mailbox's messages read with one cursor: asked for
 * in ascending UID order (as a session's view and a UID set are), each
 * read steps forward from the last instead of searching the tree from
 * its root; any other order still works (a search).  Answers are those
 * of store_message_get.  Close before or after the transaction ends. */
struct store_msg_reader {
	MDB_cursor *cur;
	uint64_t mbox_id;
	int state;       /* what the cursor is at (store.c) */
	uint32_t at_uid; /* the message it is at, or the first UID known
			    to have no message from there on */
};
int store_msg_reader_open(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			  struct store_msg_reader *r, const char **error_r);
/* 0 found, 1 expunged (or never there). */
int store_msg_reader_get(struct store_msg_reader *r, uint32_t uid,
			 struct store_msg_rec *rec, const char **error_r);
void store_msg_reader_close(struct store_msg_reader *r);
/* The bytes of a body; valid until the transaction ends. */
int store_body_get(struct store *st, MDB_txn *txn, uint64_t body_id,
		   const char **data_r, size_t *len_r, const char **error_r);



/* Mailbox names of a user with their records, in name order. */
struct store_mailbox_info {
	char *name;
	struct store_mailbox_rec rec;
};
int store_mailboxes_list(struct store *st, MDB_txn *txn, uint64_t user_num,
			 struct store_mailbox_info **list_r, size_t *count_r,
			 const char **error_r);
void store_mailboxes_free(struct store_mailbox_info *list, size_t count);

const char *store_special_use_name(enum store_special_use su);

/* The keyword names of a mailbox, NUL-separated in *names_r (valid until
 * the transaction ends); 0 with *len_r = 0 when it has none. */
int store_keywords_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		       const char **names_r, size_t *len_r,
		       const char **error_r);
/* The parsed MIME structure of a body (valid until the transaction
 * ends); 1 if none was stored. */
int store_bodymeta_get(struct store *st, MDB_txn *txn, uint64_t body_id,
		       const void **data_r, size_t *len_r,
		       const char **error_r);
/* UIDs changed after modseq, in modseq order (CONDSTORE/QRESYNC), into a
 * malloc'd array. */
int store_changed_since(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			uint64_t modseq, uint32_t **uids_r, size_t *count_r,
			const char **error_r);
/* UIDs expunged after modseq, ascending, into a malloc'd array.
 * *exact_r is 0 when records after modseq were dropped (beyond
 * backend.max_expunge_records): the list is then incomplete, and the
 * caller reports every UID that is no longer there instead. */
int store_vanished_since(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			 uint64_t modseq, uint32_t **uids_r, size_t *count_r,
			 int *exact_r, const char **error_r);
/* Records one expunge (inside an operation; an LMDB code), dropping the
 * mailbox's oldest beyond the limit. */
int store_expunged_add(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		       uint32_t uid, uint64_t modseq);
/* Raises the mailbox's floor (inside an operation; an LMDB code): a
 * client that asks what vanished since an older modseq is told every UID
 * no longer there. */
int store_expunged_raise_floor(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			       uint64_t floor);
/* Puts back a mailbox's records as another store had them (inside an
 * operation; an LMDB code): that floor, lower than the one there if need
 * be, and the n pairs (beyond backend.max_expunge_records the oldest go
 * and raise it, as always). */
int store_expunged_restore(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			   const uint32_t *uids, const uint64_t *modseqs,
			   size_t n, uint64_t floor);
/* Expunge records kept per mailbox (backend.max_expunge_records);
 * unlimited until set. */
void store_set_max_expunge_records(struct store *st, uint64_t max);
/* Schema 2 -> 3 (store_open()). */
int store_expunged_migrate(struct store *st, MDB_txn *txn);
/* Calls fn for every record of the named database (a name of the schema
 * above: "users", "messages", "bodies" ...) whose key starts with prefix
 * (plen 0: every record), in key order; key and value are valid until the
 * transaction ends.  fn returns 0 to go on, anything else to stop.  For
 * consistency checks (portico-admin check); sessions use the typed reads.
 * -1 with *error_r on an unknown name or an LMDB error. */
typedef int store_walk_fn(void *ctx, const void *key, size_t klen,
			  const void *val, size_t vlen);
int store_walk(struct store *st, MDB_txn *txn, const char *db,
	       const void *prefix, size_t plen, store_walk_fn *fn, void *ctx,
	       const char **error_r);
/* What a user's messages take (quota): bytes and messages. */
/* A user's own quota, set by portico-admin quota or taken over from the
 * directory at login (porticoQuotaStorage, porticoQuotaMessages): in meta
 * under "q" | user_num -> storage u64 | messages u64 | source u64, 0
 * meaning no limit and STORE_QUOTA_BACKEND the backend's limit for that
 * resource.  A user without one has the backend's (backend.quota_storage,
 * backend.quota_messages): every quota check (APPEND, COPY, delivery)
 * looks for it first. */
#define STORE_QUOTA_BACKEND UINT64_MAX
enum store_quota_source {
	STORE_QUOTA_NONE = 0,      /* the backend's */
	STORE_QUOTA_ADMIN = 1,     /* portico-admin quota */
	STORE_QUOTA_DIRECTORY = 2, /* the LDAP entry, at login */
};
struct store_quota {
	uint64_t storage;  /* bytes */
	uint64_t messages;
	uint64_t source;   /* enum store_quota_source */
};
/* The user's record as stored: 1 found, 0 none, -1 a store error. */
int store_quota_own(struct store *st, MDB_txn *txn, uint64_t user_num,
		    struct store_quota *q_r, const char **error_r);
/* The limits in force: *q_r holds the backend's on entry and gets the
 * user's own where it has them (q_r->source says whose); 1 when it has a
 * record, 0 when not, -1 on a store error. */
int store_quota_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		    struct store_quota *q_r, const char **error_r);
struct store_quota_set_args {
	const char *mailbox_id;
	/* STORE_QUOTA_ADMIN: q becomes the user's record (clear: none);
	   STORE_QUOTA_DIRECTORY: the same with the directory's values, or,
	   when the entry has neither (both STORE_QUOTA_BACKEND), a record the
	   directory set goes and one portico-admin set stays. */
	uint64_t source;
	int clear;
	struct store_quota q;
	int changed_out;   /* the record was written or removed */
};
/* Sets (or clears) the limits of mailbox_id's user. */
int store_op_quota_set(struct store *st, MDB_txn *txn, void *args,
		       char *err);
/* What store_op_quota_set() would do to a user whose record is have
 * (NULL: none): 0 nothing, 1 write a->q, -1 remove the record. */
int store_quota_change(const struct store_quota *have,
		       const struct store_quota_set_args *a);
/* The directory's attributes as a record's limits: a resource not given
 * is STORE_QUOTA_BACKEND (a value of exactly that is taken as one less). */
struct store_quota store_quota_directory(int storage_set, uint64_t storage,
					 int messages_set, uint64_t messages);
/* Removes the user's own limits (removal of the user). */
int store_quota_del(struct store *st, MDB_txn *txn, uint64_t user_num);
/* When the user last logged in (IMAP or POP3; unix time), as the backend
 * records it (backend.last_login_interval): 1 and *t_r, 0 none, -1 a
 * store error. */
int store_last_login_get(struct store *st, MDB_txn *txn, uint64_t user_num,
			 int64_t *t_r, const char **error_r);
struct store_last_login_args {
	const char *mailbox_id;
	int64_t when;
};
/* store_op_last_login (below the writer's types) records it. */
int store_last_login_del(struct store *st, MDB_txn *txn, uint64_t user_num);
int store_usage_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		    uint64_t *size_r, uint64_t *messages_r,
		    const char **error_r);
/* Subscribed names of a user, in name order (malloc'd strings). */
int store_subscriptions(struct store *st, MDB_txn *txn, uint64_t user_num,
			char ***names_r, size_t *count_r, const char **error_r);
void store_names_free(char **names, size_t count);

/* -- writes -----------------------------------------------------------------
 *
 * An operation runs inside a transaction it does not own.  It returns 0,
 * or an error code from enum store_result with a message in err (size
 * STORE_ERR_SIZE); the operation's changes are then undone. */

enum store_result {
	STORE_OK = 0,
	STORE_ERR_INTERNAL = -1,   /* LMDB or I/O error */
	STORE_ERR_NONEXISTENT = -2,/* mailbox or user does not exist */
	STORE_ERR_EXISTS = -3,     /* mailbox name taken */
	STORE_ERR_QUOTA = -4,      /* over quota */
	STORE_ERR_LIMIT = -5,      /* a store limit (keywords, name length) */
	STORE_ERR_CANNOT = -6,     /* not allowed (delete INBOX ...) */
	STORE_ERR_FULL = -7,       /* the map or the disk is full */
};

#define STORE_ERR_SIZE 256

typedef int store_op_fn(struct store *st, MDB_txn *txn, void *args,
			char *err);
/* Runs after the commit, on the loop; rc is the operation's result. */
typedef void store_done_fn(void *ctx, int rc, const char *err);

/* Starts the writer thread; completions are delivered on loop. */
int store_writer_start(struct store *st, uv_loop_t *loop,
		       const char **error_r);
/* Finishes what is queued and stops the thread. */
void store_writer_stop(struct store *st);
/* begin and end run on the loop around each batch of completions (after
 * store_writer_start()): the backend sends their answers together. */
typedef void store_batch_fn(void *arg);
void store_writer_batch_hooks(struct store *st, store_batch_fn *begin,
			      store_batch_fn *end, void *arg);
/* fn(arg, mbox_id) runs on the loop after each batch of completions for
 * every mailbox an operation changed beyond what its caller knows of (a
 * quota warning stored into an INBOX), so that its sessions hear of it. */
typedef void store_changed_fn(void *arg, uint64_t mbox_id);
void store_writer_changed_hook(struct store *st, store_changed_fn *fn,
			       void *arg);
/* Queues op; done runs once it is durable (or failed).  args must live
 * until then. */
void store_submit(struct store *st, store_op_fn *op, void *args,
		  store_done_fn *done, void *ctx);
/* Runs op in a transaction of its own now (admin tool). */
int store_run(struct store *st, store_op_fn *op, void *args, char *err);
/* Marks the handle as another process writing beside a running backend
 * (portico-admin): each of its commits also advances the store's external
 * generation, in the same transaction, which the backend watches
 * (store_external_generation()) to wake its sessions in IDLE. */
void store_set_external(struct store *st);
/* The external generation: 0 until the first external commit. */
int store_external_generation(struct store *st, MDB_txn *txn,
			      uint64_t *gen_r, const char **error_r);
/* Runs op inside txn in a nested transaction, from another operation: a
 * failure undoes op's changes alone and leaves txn usable. */
int store_nested(struct store *st, MDB_txn *txn, store_op_fn *op, void *args,
		 char *err);
/* Commits in the last writer batch, for metrics and tests. */
uint64_t store_commits(const struct store *st);
/* Adds the writer's histograms (any thread): the time of each batch's
 * transaction, commit included, and the operations per commit. */
struct metrics_hist;
void store_writer_metrics(const struct store *st, struct metrics_hist *txn_r,
			  struct metrics_hist *batch_r);

/* The transport queue (store_queue.c): raw records, the format is the
 * transport's.  Reads: 0, 1 not found, -1 with *error_r.  Writes run
 * inside an operation and return an LMDB code. */
int store_queue_get(struct store *st, MDB_txn *txn, uint64_t id,
		    const void **entry_r, size_t *len_r, const char **error_r);
int store_queue_msg_get(struct store *st, MDB_txn *txn, uint64_t id,
			const char **data_r, size_t *len_r,
			const char **error_r);
int store_queue_next_id(struct store *st, MDB_txn *txn, uint64_t *id_r);
int store_queue_put(struct store *st, MDB_txn *txn, uint64_t id,
		    const void *entry, size_t len);
int store_queue_msg_put(struct store *st, MDB_txn *txn, uint64_t id,
			const void *data, size_t len);
/* Removes the entry and its message. */
int store_queue_del(struct store *st, MDB_txn *txn, uint64_t id);

/* Delivery records (store_delivery.c): which recipients a sender's
 * delivery id already reached.  store_delivery_key() makes the record's
 * key; _seen() is 0 when recorded, 1 when not, -1 with *error_r;
 * _record() returns an LMDB code and runs inside an operation. */
#define STORE_DELIVERY_KEY 32
void store_delivery_key(const char *delivery_id, const char *mailbox_id,
			const char *address, uint8_t key[STORE_DELIVERY_KEY]);
int store_delivery_seen(struct store *st, MDB_txn *txn,
			const uint8_t key[STORE_DELIVERY_KEY],
			const char **error_r);
int store_delivery_record(struct store *st, MDB_txn *txn,
			  const uint8_t key[STORE_DELIVERY_KEY], int64_t when);
/* Removes up to max records stored before `before`; more_out says
 * whether older ones are left. */
struct store_delivery_prune_args {
	int64_t before;
	size_t max;
	size_t removed_out;
	int more_out;
};
store_op_fn store_op_delivery_prune;
/* struct store_last_login_args: the account's last login (an account
 * removed meanwhile: nothing). */
store_op_fn store_op_last_login;
/* Records kept (for metrics and tests); -1 on error. */
int64_t store_delivery_count(struct store *st, MDB_txn *txn);
/* Kick records (store_kicks.c): the accounts portico-admin kick named
 * and when (wall clock, ms since the epoch), one record per account, so
 * that a restarted backend still names them to the frontends whose links
 * come up (backend.kick_memory).  put records one, or moves its time; when
 * that makes more than max, the oldest go down to nine tenths of max,
 * with those made before `before`. */
struct store_kick_put_args {
	const char *mailbox_id;
	int64_t when;
	int64_t before;
	size_t max;
};
store_op_fn store_op_kick_put;
/* Removes the records made before `before` and the oldest beyond max
 * (at start: what the backend no longer remembers). */
struct store_kicks_trim_args {
	int64_t before;
	size_t max;
	size_t removed_out;
};
store_op_fn store_op_kicks_trim;
/* Calls fn for each record, in no order; -1 with *error_r. */
typedef void store_kick_fn(void *ctx, const char *mailbox_id, int64_t when);
int store_kicks_list(struct store *st, MDB_txn *txn, store_kick_fn *fn,
		     void *ctx, const char **error_r);

/* Bytes of the map in use (pages up to the last one used, free pages
 * among them included) and the map size. */
void store_usage(struct store *st, uint64_t *used_r, uint64_t *map_r);

/* Operations (store_ops.c).  In/out fields are documented per struct. */

/* Creates the user and the standard folders; an existing user is left as
 * it is. */
struct store_provision_args {
	const char *mailbox_id;
	int created_out; /* 1: it was not there before */
};
store_op_fn store_op_provision;

struct store_new_msg {
	const char *data;     /* the message, as the client sent it */
	size_t len;
	uint32_t flags;
	const char *const *keywords;
	unsigned nkeywords;
	int64_t internaldate;
	const void *meta;     /* parsed MIME structure, may be NULL */
	size_t metalen;
	/* 0: the mailbox's next UID; else this one (the import of a moved
	   mailbox keeping its UIDs: ascending, at least the UIDNEXT) */
	uint32_t uid;
	/* A whole account's import (admin_account.c) keeps these; 0: a new
	   modseq, now, never retrieved.  A given modseq is the message's
	   own: two messages of a mailbox cannot share one. */
	uint64_t modseq;
	int64_t savedate;
	uint32_t pop3_retrieved;
};

/* Octets of a message as FETCH and RETR send it (bare LFs go out as
 * CRLF): the size a message is stored with (RFC822.SIZE, the quota).
 * Messages stored before this rule carry their raw length. */
uint64_t store_sent_size(const char *p, size_t len);

/* Appends msgs to one mailbox, all or none (MULTIAPPEND). */
struct store_append_args {
	uint64_t user_num;
	const char *mailbox;           /* name, or NULL to use mbox_id */
	uint64_t mbox_id;
	const struct store_new_msg *msgs;
	size_t n;
	uint64_t quota_storage;        /* bytes per user, 0: none */
	uint64_t quota_messages;       /* messages per user, 0: none */
	/* The import of a moved mailbox keeping its UIDs (keep_uidvalidity
	   nonzero; its messages name their UIDs): a mailbox that never had
	   a message takes this UIDVALIDITY (one that has it goes on, any
	   other is refused), its HIGHESTMODSEQ is raised to keep_modseq and
	   the expunge records' floor with it (a client's older modseq is
	   told every UID that is gone), and UIDNEXT to keep_uidnext after
	   the messages (0: not yet: more batches follow). */
	uint32_t keep_uidvalidity, keep_uidnext;
	uint64_t keep_modseq;
	/* A whole account's import (keep_expunged set): with the last batch
	   (keep_uidnext set), the folder's expunge records as they were,
	   UIDs and modseqs pairwise, and their floor instead of the one
	   raised to HIGHESTMODSEQ. */
	int keep_expunged;
	const uint32_t *expunged_uids;
	const uint64_t *expunged_modseqs;
	size_t nexpunged;
	uint64_t expunged_floor;
	/* Stored whatever the quota (a delivery status notification): no
	   limit refuses it, and it brings no quota warning. */
	int unlimited;
	/* out */
	uint32_t uidvalidity;
	uint32_t first_uid; /* uids are first_uid .. +n-1, or
			       the first of the given ones */
	uint64_t mbox_id_out;
};
store_op_fn store_op_append;

/* Quota warnings (backend.quota_warnings).  After an operation that
 * adds to an account (APPEND, COPY, a delivery; not the import of a
 * whole account, nor one stored unlimited), the store finds the highest
 * warning level its use has reached: percent of the nearer limit, its
 * own or the backend's.  Above the level it last warned of, build()
 * writes the warning, which goes into the account's INBOX in the same
 * transaction, outside the quota, and the level is recorded; below it,
 * the level recorded comes down, so that the next crossing warns again.
 * level() and build() run in the writer's thread. */
struct store_quota_warning {
	uint64_t user_num;
	unsigned percent, level;
	uint64_t size, messages; /* in use, the warning not counted */
	uint64_t qsize, qmsgs;   /* the limits, 0 none */
};
struct store_quota_warner {
	/* the highest level at or below percent, 0 none */
	unsigned (*level)(void *ctx, unsigned percent);
	/* the message, with its MIME structure (mime_cache_build) */
	void (*build)(void *ctx, const struct store_quota_warning *w,
		      struct buf *msg, struct buf *meta);
	void *ctx;
};
/* Set once, before the writer starts; NULL (tools): no warnings. */
void store_quota_warner_set(struct store *st,
			    const struct store_quota_warner *w);
/* The level last warned of: 1 and *level_r, 0 none, -1 a store error. */
int store_quota_warned_get(struct store *st, MDB_txn *txn, uint64_t user_num,
			   unsigned *level_r, const char **error_r);
int store_quota_warned_del(struct store *st, MDB_txn *txn, uint64_t user_num);
/* The senders an account's automatic reply went to ('r' | user_num in
 * meta: 16 bytes each, 8 of a hash of the address and 8 of the time,
 * oldest first).  Whether sender_hash is due a reply at now: 1, and the
 * record notes it (entries older than interval go; beyond max entries the
 * oldest), 0 one went within interval (nothing written), or an MDB error
 * (negative: -1 when the record is of a size not a multiple of 16). */
#define STORE_AUTO_REPLY_ENTRY 16
int store_auto_reply_due(struct store *st, MDB_txn *txn, uint64_t user_num,
			 const uint8_t sender_hash[8], int64_t now,
			 int64_t interval, unsigned max);
int store_auto_reply_del(struct store *st, MDB_txn *txn, uint64_t user_num);
/* The record itself, a copy into *data_r (*len_r bytes; free() it): 1,
 * 0 none, -1 a store error (a record not a list of entries too). */
int store_auto_reply_get(struct store *st, MDB_txn *txn, uint64_t user_num,
			 uint8_t **data_r, size_t *len_r, const char **error_r);
/* store_op_auto_replied merges entries into the record of mailbox_id (the
 * import of a whole account): of each sender the later entry, oldest
 * first, the newest max (0: all). */
struct store_auto_replied_args {
	const char *mailbox_id;
	const uint8_t *entries;
	size_t len; /* a multiple of STORE_AUTO_REPLY_ENTRY */
	unsigned max;
};
int store_op_auto_replied(struct store *st, MDB_txn *txn, void *vargs,
			  char *err);
/* store_op_quota_warned sets it (the import of a whole account; levels
 * above 1000 are taken as 1000). */
struct store_quota_warned_args {
	const char *mailbox_id;
	unsigned level;
};
int store_op_quota_warned(struct store *st, MDB_txn *txn, void *vargs,
			  char *err);

enum store_flags_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* Changes flags and keywords of messages (STORE). */
struct store_flags_args {
	uint64_t mbox_id;
	const uint32_t *uids;
	size_t n;
	enum store_flags_mode mode;
	uint32_t flags;
	const char *const *keywords;
	unsigned nkeywords;
	int conditional;               /* UNCHANGEDSINCE given */
	uint64_t unchangedsince;
	/* out, n entries each (allocated by the caller) */
	uint64_t *modseq;              /* new modseq; 0 expunged */
	uint8_t *failed;               /* 1: modified since unchangedsince */
};
store_op_fn store_op_flags;

/* Removes messages (EXPUNGE, POP3 UPDATE).  retrieved: messages POP3
 * downloaded, stamped with now. */
struct store_expunge_args {
	uint64_t mbox_id;
	const uint32_t *uids;
	size_t n;
	const uint32_t *retrieved;
	size_t nretrieved;
	int64_t now;
	/* out */
	size_t removed;
};
store_op_fn store_op_expunge;

/* Copies (or moves) messages to another mailbox of the same user. */
struct store_copy_args {
	uint64_t src_mbox;
	uint64_t dst_mbox;
	const uint32_t *uids;
	size_t n;
	int move;
	uint64_t quota_storage, quota_messages;
	/* out: dst_uids has n entries (allocated by the caller); 0 where
	   the source was already expunged */
	uint32_t *dst_uids;
	uint32_t dst_uidvalidity;
};
store_op_fn store_op_copy;

/* Mailbox management. */
struct store_mailbox_args {
	uint64_t user_num;
	const char *name;
	const char *new_name;          /* rename */
	enum store_special_use special_use; /* create */
	int subscribe;                 /* subscribe: 1 on, 0 off */
	uint64_t mbox_id_out;          /* create: the new mailbox's id */
	uint64_t mbox_id_gone;         /* delete: the mailbox emptied */
};
store_op_fn store_op_mailbox_create;
/* A folder as it was on the backend a whole account comes from
 * (portico-admin import --account): created with its parents when
 * absent; one that exists must never have had a message (refused
 * otherwise).  It takes special_use, noselect, uidvalidity, created and
 * the keyword table (names NUL-separated, bit 0 first) as given; UIDNEXT
 * and HIGHESTMODSEQ come with its messages (store_append_args keep_*),
 * or, for a noselect folder (which has none), from here. */
struct store_folder_restore_args {
	uint64_t user_num;
	const char *name;
	enum store_special_use special_use;
	int noselect;
	uint32_t uidvalidity;
	uint32_t uidnext;       /* noselect only */
	uint64_t highestmodseq; /* noselect only */
	int64_t created;
	const char *keywords;
	size_t keywords_len;
	uint64_t mbox_id_out;
};
store_op_fn store_op_folder_restore;
store_op_fn store_op_mailbox_delete;
store_op_fn store_op_mailbox_rename;
store_op_fn store_op_subscribe;

#endif
