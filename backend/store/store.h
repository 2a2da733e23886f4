/* store.h - the backend's mail store in one LMDB environment.
 *
 * Schema (named databases; integers in keys are big-endian so that LMDB's
 * byte order is numeric order):
 *
 *   meta       "version" -> u32; "next_mbox" -> u64; "next_body" -> u64
 *   users      porticoMailboxId (text) -> struct store_user_rec
 *   mailboxes  user_num u64 | name (UTF-8) -> struct store_mailbox_rec
 *   mboxids    mbox_id u64 -> the mailbox's key in mailboxes
 *   messages   mbox_id u64 | uid u32 -> struct store_msg_rec
 *   bodies     body_id u64 -> the message bytes, CRLF line ends
 *   bodyrefs   body_id u64 -> u32 reference count
 *   expunged   mbox_id u64 | uid u32 -> modseq u64 of the expunge (for
 *              VANISHED)
 *   bodyhash   SHA-256 of the bytes -> body_id u64 (single instance:
 *              a message delivered to many mailboxes is stored once)
 *
 * Readers use their own read-only transactions and never wait for a
 * writer.  Every write function commits (and so is durable) before it
 * returns.
 *
 * Return values: 0 success, 1 not found (where noted), -1 error with a
 * message in *error_r (static storage, valid until the next call).
 */
#ifndef PORTICO_STORE_H
#define PORTICO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#define STORE_SCHEMA_VERSION 1

/* System flags (RFC 3501 2.3.2). */
enum store_flag {
	STORE_F_SEEN = 1 << 0,
	STORE_F_ANSWERED = 1 << 1,
	STORE_F_FLAGGED = 1 << 2,
	STORE_F_DELETED = 1 << 3,
	STORE_F_DRAFT = 1 << 4,
};

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
	uint32_t subscribed;
};

struct store_msg_rec {
	uint64_t body_id;
	uint64_t size;
	int64_t internaldate; /* unix time */
	uint64_t modseq;
	uint32_t flags;
	uint32_t pop3_retrieved; /* unix time of the first POP3 download, or 0 */
};

/* One message as listed for a session. */
struct store_msg {
	uint32_t uid;
	struct store_msg_rec rec;
};

struct store;

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
/* Lists the messages of a mailbox in UID order into a malloc'd array. */
int store_messages_list(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			struct store_msg **msgs_r, size_t *count_r,
			const char **error_r);
/* One message record; 0 found, 1 expunged. */
int store_message_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		      uint32_t uid, struct store_msg_rec *r,
		      const char **error_r);
/* The bytes of a body; valid until the transaction ends. */
int store_body_get(struct store *st, MDB_txn *txn, uint64_t body_id,
		   const char **data_r, size_t *len_r, const char **error_r);

/* Creates the user's record and the standard folders (INBOX, Sent,
 * Drafts, Trash, Junk, Archive).  Provisioning an existing user is a
 * no-op that succeeds. */
int store_provision(struct store *st, const char *mailbox_id,
		    const char **error_r);
/* Appends a message (bytes must already use CRLF line ends). */
int store_append(struct store *st, const char *mailbox_id,
		 const char *mbox_name, const void *data, size_t len,
		 uint32_t flags, int64_t internaldate, uint32_t *uid_r,
		 const char **error_r);
/* Adds flags to one message; bumps its modseq when something changed. */
int store_flags_add(struct store *st, uint64_t mbox_id, uint32_t uid,
		    uint32_t flags, const char **error_r);

/* Removes messages in one transaction: counters, body references and
 * expunge records are updated together.  UIDs already gone are skipped.
 * retrieved (may be NULL, nretrieved entries) are marked as downloaded by
 * POP3 at time now in the same transaction. */
int store_expunge(struct store *st, uint64_t mbox_id, const uint32_t *uids,
		  size_t n, const uint32_t *retrieved, size_t nretrieved,
		  int64_t now, const char **error_r);

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

#endif
