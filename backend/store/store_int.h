/* store_int.h - what the store's files share; not for callers. */
#ifndef PORTICO_STORE_INT_H
#define PORTICO_STORE_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include <uv.h>

#include "backend/store/store.h"

struct store_writer;

struct store {
	MDB_env *env;
	MDB_dbi meta, users, mailboxes, mboxids, messages, modseqs, expunged,
	    bodies, bodyrefs, bodyhash, bodymeta, keywords, subs, queue,
	    queuemsg, deliveries, deliveryage, kicks;
	uint64_t max_expunge_records; /* per mailbox (store_expunged.c) */
	int external; /* portico-admin beside the backend (store_set_external) */
	struct store_writer *writer;
	const struct store_quota_warner *warner;
};

/* From an operation in the writer's thread: mbox_id changed beyond what
 * the operation's caller knows (store_writer_changed_hook()). */
void store_note_changed(struct store *st, uint64_t mbox_id);

static inline void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void
be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Deletes the cursor's record and moves to the one after it: the move's
 * code (MDB_NOTFOUND past the end), or the deletion's if it failed. */
static inline int
store_cursor_del_next(MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
	int rc = mdb_cursor_del(cur, 0);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_get(cur, k, v, MDB_GET_CURRENT);
	if (rc == MDB_NOTFOUND || rc == EINVAL)
		rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
	return rc;
}

/* Key of a mailbox: user_num | name; 0 if the name is too long. */
size_t store_mailbox_key(uint8_t *out, size_t outsize, uint64_t user_num,
			 const char *name);
/* Message text for an MDB or errno code. */
const char *store_strerror(int rc);

#define STORE_MAX_KEY 511

#endif
