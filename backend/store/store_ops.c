/* store_ops.c - every change to the store, as operations that run inside a
 * transaction owned by the writer (store_writer.c). */
#include "backend/store/store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/buf.h"

static int op_fail(char *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
op_fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, STORE_ERR_SIZE, fmt, ap);
	va_end(ap);
	return code;
}

/* An LMDB error as an operation result. */
static int
op_mdb(char *err, const char *what, int rc)
{
	int code = rc == MDB_MAP_FULL || rc == ENOSPC ? STORE_ERR_FULL
						      : STORE_ERR_INTERNAL;
	return op_fail(err, code, "%s: %s", what, store_strerror(rc));
}

static int
meta_next(struct store *st, MDB_txn *txn, const char *counter, uint64_t *r)
{
	MDB_val k = {strlen(counter), (void *)(uintptr_t)counter}, v;
	uint64_t next = 1;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(next))
		memcpy(&next, v.mv_data, sizeof(next));
	else if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	*r = next;
	next++;
	v.mv_size = sizeof(next);
	v.mv_data = &next;
	return mdb_put(txn, st->meta, &k, &v, 0);
}

/* -- per-user usage (quota), in meta under "u" | user_num -----------------*/

struct usage {
	uint64_t size;
	uint64_t messages;
};

static int
usage_get(struct store *st, MDB_txn *txn, uint64_t user_num, struct usage *u)
{
	uint8_t key[9] = {'u'};
	be64(key + 1, user_num);
	MDB_val k = {9, key}, v;
	int rc = mdb_get(txn, st->meta, &k, &v);
	memset(u, 0, sizeof(*u));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*u))
		return MDB_CORRUPTED;
	memcpy(u, v.mv_data, sizeof(*u));
	return 0;
}

static int
usage_add(struct store *st, MDB_txn *txn, uint64_t user_num, int64_t dsize,
	  int64_t dmsgs)
{
	struct usage u;
	int rc = usage_get(st, txn, user_num, &u);
	if (rc != 0)
		return rc;
	u.size = dsize < 0 && (uint64_t)-dsize > u.size ? 0 : u.size + (uint64_t)dsize;
	u.messages = dmsgs < 0 && (uint64_t)-dmsgs > u.messages
			     ? 0
			     : u.messages + (uint64_t)dmsgs;
	uint8_t key[9] = {'u'};
	be64(key + 1, user_num);
	MDB_val k = {9, key}, v = {sizeof(u), &u};
	return mdb_put(txn, st->meta, &k, &v, 0);
}

/* -- mailboxes ------------------------------------------------------------*/

struct mbox {
	uint8_t key[STORE_MAX_KEY + 1];
	MDB_val k;
	struct store_mailbox_rec rec;
	uint64_t user_num;
};

static int
mbox_load_key(struct store *st, MDB_txn *txn, struct mbox *m)
{
	MDB_val v;
	int rc = mdb_get(txn, st->mailboxes, &m->k, &v);
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(m->rec))
		return MDB_CORRUPTED;
	memcpy(&m->rec, v.mv_data, sizeof(m->rec));
	m->user_num = get_be64(m->key);
	return 0;
}

static int
mbox_by_name(struct store *st, MDB_txn *txn, uint64_t user_num,
	     const char *name, struct mbox *m)
{
	size_t klen = store_mailbox_key(m->key, sizeof(m->key), user_num, name);
	if (klen == 0)
		return MDB_NOTFOUND;
	m->k.mv_size = klen;
	m->k.mv_data = m->key;
	return mbox_load_key(st, txn, m);
}

static int
mbox_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id, struct mbox *m)
{
	uint8_t idkey[8];
	be64(idkey, mbox_id);
	MDB_val ik = {8, idkey}, mk;
	int rc = mdb_get(txn, st->mboxids, &ik, &mk);
	if (rc != 0)
		return rc;
	if (mk.mv_size > sizeof(m->key))
		return MDB_CORRUPTED;
	memcpy(m->key, mk.mv_data, mk.mv_size);
	m->k.mv_size = mk.mv_size;
	m->k.mv_data = m->key;
	return mbox_load_key(st, txn, m);
}

static int
mbox_save(struct store *st, MDB_txn *txn, struct mbox *m)
{
	MDB_val v = {sizeof(m->rec), &m->rec};
	return mdb_put(txn, st->mailboxes, &m->k, &v, 0);
}

static int
mbox_create(struct store *st, MDB_txn *txn, uint64_t user_num,
	    const char *name, enum store_special_use su, struct mbox *m)
{
	size_t klen = store_mailbox_key(m->key, sizeof(m->key), user_num, name);
	if (klen == 0)
		return EINVAL;
	m->k.mv_size = klen;
	m->k.mv_data = m->key;
	m->user_num = user_num;
	memset(&m->rec, 0, sizeof(m->rec));
	int rc = meta_next(st, txn, "next_mbox", &m->rec.mbox_id);
	if (rc != 0)
		return rc;
	/* UIDVALIDITY: creation time, made unique by the mailbox counter. */
	m->rec.uidvalidity = (uint32_t)time(NULL) + (uint32_t)(m->rec.mbox_id % 100000);
	if (m->rec.uidvalidity == 0)
		m->rec.uidvalidity = 1;
	m->rec.uidnext = 1;
	m->rec.highestmodseq = 1;
	m->rec.special_use = su;
	m->rec.created = (int64_t)time(NULL);
	MDB_val v = {sizeof(m->rec), &m->rec};
	if ((rc = mdb_put(txn, st->mailboxes, &m->k, &v, MDB_NOOVERWRITE)) != 0)
		return rc;
	uint8_t idkey[8];
	be64(idkey, m->rec.mbox_id);
	MDB_val ik = {8, idkey};
	return mdb_put(txn, st->mboxids, &ik, &m->k, 0);
}

/* -- keywords -------------------------------------------------------------*/

/* Bits of the named keywords in the mailbox's table; unknown names are
 * added when create is set (else ignored). */
static int
kw_resolve(struct store *st, MDB_txn *txn, uint64_t mbox_id,
	   const char *const *names, unsigned n, int create, uint64_t *mask_r,
	   char *err)
{
	uint8_t key[8];
	be64(key, mbox_id);
	MDB_val k = {8, key}, v;
	char table[STORE_MAX_KEYWORDS * 256];
	size_t tlen = 0;
	int rc = mdb_get(txn, st->keywords, &k, &v);
	if (rc == 0) {
		if (v.mv_size > sizeof(table))
			return op_mdb(err, "keywords", MDB_CORRUPTED);
		memcpy(table, v.mv_data, v.mv_size);
		tlen = v.mv_size;
	} else if (rc != MDB_NOTFOUND) {
		return op_mdb(err, "keywords", rc);
	}
	uint64_t mask = 0;
	int changed = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t off = 0;
		unsigned idx = 0;
		int found = 0;
		while (off < tlen) {
			size_t l = strlen(table + off);
			if (strcasecmp(table + off, names[i]) == 0) {
				found = 1;
				break;
			}
			off += l + 1;
			idx++;
		}
		if (!found) {
			if (!create)
				continue;
			size_t l = strlen(names[i]);
			if (idx >= STORE_MAX_KEYWORDS || l == 0 || l > 250 ||
			    tlen + l + 1 > sizeof(table))
				return op_fail(err, STORE_ERR_LIMIT,
					       "[LIMIT] Too many keywords in "
					       "this mailbox");
			memcpy(table + tlen, names[i], l + 1);
			tlen += l + 1;
			changed = 1;
		}
		mask |= 1ULL << idx;
	}
	if (changed) {
		v.mv_size = tlen;
		v.mv_data = table;
		if ((rc = mdb_put(txn, st->keywords, &k, &v, 0)) != 0)
			return op_mdb(err, "keywords", rc);
	}
	*mask_r = mask;
	return 0;
}

/* -- messages -------------------------------------------------------------*/

static void
msg_key(uint8_t key[12], uint64_t mbox_id, uint32_t uid)
{
	be64(key, mbox_id);
	be32(key + 8, uid);
}

static int
msg_get(struct store *st, MDB_txn *txn, uint64_t mbox_id, uint32_t uid,
	struct store_msg_rec *m)
{
	uint8_t key[12];
	msg_key(key, mbox_id, uid);
	MDB_val k = {12, key}, v;
	int rc = mdb_get(txn, st->messages, &k, &v);
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*m))
		return MDB_CORRUPTED;
	memcpy(m, v.mv_data, sizeof(*m));
	return 0;
}

/* Writes a message record and keeps the modseq index in step. */
static int
msg_put(struct store *st, MDB_txn *txn, uint64_t mbox_id, uint32_t uid,
	const struct store_msg_rec *old, const struct store_msg_rec *m)
{
	uint8_t key[12], mk[16];
	int rc;
	msg_key(key, mbox_id, uid);
	MDB_val k = {12, key}, v = {sizeof(*m), (void *)(uintptr_t)m};
	if ((rc = mdb_put(txn, st->messages, &k, &v, 0)) != 0)
		return rc;
	be64(mk, mbox_id);
	if (old != NULL) {
		be64(mk + 8, old->modseq);
		MDB_val ok = {16, mk};
		rc = mdb_del(txn, st->modseqs, &ok, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	be64(mk + 8, m->modseq);
	MDB_val nk = {16, mk}, nv = {4, &uid};
	return mdb_put(txn, st->modseqs, &nk, &nv, 0);
}

static int
body_ref(struct store *st, MDB_txn *txn, uint64_t body_id, int delta)
{
	uint8_t key[8];
	uint32_t refs;
	be64(key, body_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->bodyrefs, &k, &v);
	if (rc != 0 || v.mv_size != sizeof(refs))
		return rc ? rc : MDB_CORRUPTED;
	memcpy(&refs, v.mv_data, sizeof(refs));
	if (delta > 0 || refs > 1) {
		refs = delta > 0 ? refs + 1 : refs - 1;
		v.mv_size = sizeof(refs);
		v.mv_data = &refs;
		return mdb_put(txn, st->bodyrefs, &k, &v, 0);
	}
	/* The last reference: the bytes, the hash and the structure go. */
	MDB_val b;
	if ((rc = mdb_get(txn, st->bodies, &k, &b)) != 0)
		return rc;
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256(b.mv_data, b.mv_size, hash);
	MDB_val hk = {sizeof(hash), hash};
	rc = mdb_del(txn, st->bodyhash, &hk, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rc = mdb_del(txn, st->bodymeta, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_del(txn, st->bodies, &k, NULL)) != 0)
		return rc;
	return mdb_del(txn, st->bodyrefs, &k, NULL);
}

/* Stores the bytes once: the same bytes already there get one more
 * reference. */
static int
body_put(struct store *st, MDB_txn *txn, const struct store_new_msg *nm,
	 uint64_t *body_id_r)
{
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)nm->data, nm->len, hash);
	MDB_val hk = {sizeof(hash), hash}, hv;
	uint8_t idkey[8];
	int rc = mdb_get(txn, st->bodyhash, &hk, &hv);
	if (rc == 0 && hv.mv_size == 8) {
		*body_id_r = get_be64(hv.mv_data);
		return body_ref(st, txn, *body_id_r, 1);
	}
	if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	uint64_t id;
	if ((rc = meta_next(st, txn, "next_body", &id)) != 0)
		return rc;
	be64(idkey, id);
	MDB_val k = {8, idkey}, v = {nm->len, NULL};
	rc = mdb_put(txn, st->bodies, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	if (nm->len > 0)
		memcpy(v.mv_data, nm->data, nm->len);
	uint32_t refs = 1;
	MDB_val rv = {sizeof(refs), &refs};
	if ((rc = mdb_put(txn, st->bodyrefs, &k, &rv, 0)) != 0)
		return rc;
	MDB_val idv = {8, idkey};
	if ((rc = mdb_put(txn, st->bodyhash, &hk, &idv, 0)) != 0)
		return rc;
	if (nm->meta != NULL) {
		MDB_val mv = {nm->metalen, (void *)(uintptr_t)nm->meta};
		if ((rc = mdb_put(txn, st->bodymeta, &k, &mv, 0)) != 0)
			return rc;
	}
	*body_id_r = id;
	return 0;
}

/* Removes one message from a mailbox: record, index, body reference,
 * counters (in m->rec, saved by the caller) and an expunge record. */
static int
msg_remove(struct store *st, MDB_txn *txn, struct mbox *mb, uint32_t uid,
	   const struct store_msg_rec *m, uint64_t modseq)
{
	uint8_t key[12], mk[16];
	int rc;
	msg_key(key, mb->rec.mbox_id, uid);
	MDB_val k = {12, key};
	if ((rc = mdb_del(txn, st->messages, &k, NULL)) != 0)
		return rc;
	be64(mk, mb->rec.mbox_id);
	be64(mk + 8, m->modseq);
	MDB_val ok = {16, mk};
	rc = mdb_del(txn, st->modseqs, &ok, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = body_ref(st, txn, m->body_id, -1)) != 0)
		return rc;
	if ((rc = store_expunged_add(st, txn, mb->rec.mbox_id, uid, modseq)) !=
	    0)
		return rc;
	if (mb->rec.messages > 0)
		mb->rec.messages--;
	if (!(m->flags & STORE_F_SEEN) && mb->rec.unseen > 0)
		mb->rec.unseen--;
	mb->rec.size = mb->rec.size >= m->size ? mb->rec.size - m->size : 0;
	return usage_add(st, txn, mb->user_num, -(int64_t)m->size, -1);
}

/* A user's record in meta: kind ('q' quota, 'l' last login, 'w' quota
 * warning level, 'r' senders answered by the automatic reply) |
 * user_num. */
static void
user_meta_key(uint8_t key[9], char kind, uint64_t user_num)
{
	key[0] = (uint8_t)kind;
	be64(key + 1, user_num);
}

static int
user_meta_del(struct store *st, MDB_txn *txn, char kind, uint64_t user_num)
{
	uint8_t key[9];
	user_meta_key(key, kind, user_num);
	MDB_val k = {9, key};
	int rc = mdb_del(txn, st->meta, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A user's record of size bytes into *v: 1, 0 none, -1 a store error
 * (one of another size too). */
static int
user_meta_get(struct store *st, MDB_txn *txn, char kind, uint64_t user_num,
	      size_t size, MDB_val *v, const char **error_r)
{
	uint8_t key[9];
	user_meta_key(key, kind, user_num);
	MDB_val k = {9, key};
	int rc = mdb_get(txn, st->meta, &k, v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && v->mv_size != size)
		rc = MDB_CORRUPTED;
	if (rc != 0) {
		*error_r = store_strerror(rc);
		return -1;
	}
	return 1;
}

/* The user's own limits: 0 found, MDB_NOTFOUND, or an error. */
static int
quota_own(struct store *st, MDB_txn *txn, uint64_t user_num,
	  struct store_quota *q)
{
	uint8_t key[9];
	user_meta_key(key, 'q', user_num);
	MDB_val k = {9, key}, v;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc != 0)
		return rc;
	if (v.mv_size != 24)
		return MDB_CORRUPTED;
	q->storage = get_be64(v.mv_data);
	q->messages = get_be64((const uint8_t *)v.mv_data + 8);
	q->source = get_be64((const uint8_t *)v.mv_data + 16);
	return 0;
}

int
store_quota_own(struct store *st, MDB_txn *txn, uint64_t user_num,
		struct store_quota *q_r, const char **error_r)
{
	int rc = quota_own(st, txn, user_num, q_r);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		*error_r = store_strerror(rc);
		return -1;
	}
	return 1;
}

/* The limits in force: def's, overridden by own's where it has them. */
static void
quota_apply(struct store_quota *def, const struct store_quota *own)
{
	if (own->storage != STORE_QUOTA_BACKEND)
		def->storage = own->storage;
	if (own->messages != STORE_QUOTA_BACKEND)
		def->messages = own->messages;
	def->source = own->source;
}

int
store_quota_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		struct store_quota *q_r, const char **error_r)
{
	struct store_quota own;
	int rc = store_quota_own(st, txn, user_num, &own, error_r);
	q_r->source = STORE_QUOTA_NONE;
	if (rc == 1)
		quota_apply(q_r, &own);
	return rc;
}

int
store_quota_del(struct store *st, MDB_txn *txn, uint64_t user_num)
{
	return user_meta_del(st, txn, 'q', user_num);
}

int
store_last_login_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		     int64_t *t_r, const char **error_r)
{
	MDB_val v;
	int rc = user_meta_get(st, txn, 'l', user_num, 8, &v, error_r);
	if (rc == 1)
		*t_r = (int64_t)get_be64(v.mv_data);
	return rc;
}

int
store_op_last_login(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_last_login_args *a = vargs;
	struct store_user_rec u;
	const char *e;
	int rc = store_user_get(st, txn, a->mailbox_id, &u, &e);
	if (rc != 0)
		return rc > 0 ? 0 : op_fail(err, STORE_ERR_INTERNAL, "%s", e);
	uint8_t key[9], val[8];
	user_meta_key(key, 'l', u.user_num);
	be64(val, (uint64_t)a->when);
	MDB_val k = {9, key}, v = {sizeof(val), val};
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0)
		return op_mdb(err, "last login", rc);
	return 0;
}

int
store_last_login_del(struct store *st, MDB_txn *txn, uint64_t user_num)
{
	return user_meta_del(st, txn, 'l', user_num);
}

int
store_quota_change(const struct store_quota *have,
		   const struct store_quota_set_args *a)
{
	if (a->source == STORE_QUOTA_DIRECTORY &&
	    a->q.storage == STORE_QUOTA_BACKEND &&
	    a->q.messages == STORE_QUOTA_BACKEND)
		/* the entry has no quota: the directory's record goes */
		return have != NULL && have->source == STORE_QUOTA_DIRECTORY
			       ? -1
			       : 0;
	if (a->clear)
		return have != NULL ? -1 : 0;
	if (have != NULL && have->storage == a->q.storage &&
	    have->messages == a->q.messages && have->source == a->source)
		return 0;
	return 1;
}

int
store_op_quota_set(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_quota_set_args *a = vargs;
	MDB_val uk = {strlen(a->mailbox_id), (void *)(uintptr_t)a->mailbox_id};
	MDB_val v;
	struct store_user_rec u;
	struct store_quota old;
	a->changed_out = 0;
	int rc = mdb_get(txn, st->users, &uk, &v);
	if (rc == MDB_NOTFOUND)
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "no such mailbox id in this store");
	if (rc == 0 && v.mv_size != sizeof(u))
		rc = MDB_CORRUPTED;
	if (rc != 0)
		return op_mdb(err, "quota", rc);
	memcpy(&u, v.mv_data, sizeof(u));
	rc = quota_own(st, txn, u.user_num, &old);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return op_mdb(err, "quota", rc);
	int change = store_quota_change(rc == 0 ? &old : NULL, a);
	if (change == 0)
		return 0;
	if (change < 0) {
		if ((rc = store_quota_del(st, txn, u.user_num)) != 0)
			return op_mdb(err, "quota", rc);
		a->changed_out = 1;
		return 0;
	}
	uint8_t key[9], val[24];
	user_meta_key(key, 'q', u.user_num);
	be64(val, a->q.storage);
	be64(val + 8, a->q.messages);
	be64(val + 16, a->source);
	MDB_val k = {9, key};
	v.mv_size = sizeof(val);
	v.mv_data = val;
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0)
		return op_mdb(err, "quota", rc);
	a->changed_out = 1;
	return 0;
}

struct store_quota
store_quota_directory(int storage_set, uint64_t storage, int messages_set,
		      uint64_t messages)
{
	struct store_quota q = {STORE_QUOTA_BACKEND, STORE_QUOTA_BACKEND,
				STORE_QUOTA_DIRECTORY};
	if (storage_set)
		q.storage = storage == STORE_QUOTA_BACKEND ? storage - 1
							   : storage;
	if (messages_set)
		q.messages = messages == STORE_QUOTA_BACKEND ? messages - 1
							     : messages;
	return q;
}

/* qsize, qmsgs: the backend's limits, for a user without its own. */
static int
quota_check(struct store *st, MDB_txn *txn, uint64_t user_num,
	    uint64_t add_size, uint64_t add_msgs, uint64_t qsize,
	    uint64_t qmsgs, char *err)
{
	struct usage u;
	struct store_quota own, q = {qsize, qmsgs, STORE_QUOTA_NONE};
	int rc = quota_own(st, txn, user_num, &own);
	if (rc == 0) {
		quota_apply(&q, &own);
		qsize = q.storage;
		qmsgs = q.messages;
	} else if (rc != MDB_NOTFOUND) {
		return op_mdb(err, "quota", rc);
	}
	if (qsize == 0 && qmsgs == 0)
		return 0;
	if ((rc = usage_get(st, txn, user_num, &u)) != 0)
		return op_mdb(err, "usage", rc);
	if (qsize != 0 && u.size + add_size > qsize)
		return op_fail(err, STORE_ERR_QUOTA,
			       "[OVERQUOTA] Storage quota exceeded");
	if (qmsgs != 0 && u.messages + add_msgs > qmsgs)
		return op_fail(err, STORE_ERR_QUOTA,
			       "[OVERQUOTA] Message quota exceeded");
	return 0;
}

/* The user record of mailbox_id: 0, or an operation's failure. */
static int
op_user(struct store *st, MDB_txn *txn, const char *mailbox_id,
	struct store_user_rec *u, char *err)
{
	const char *e;
	int rc = store_user_get(st, txn, mailbox_id, u, &e);
	if (rc == 0)
		return 0;
	return op_fail(err,
		       rc > 0 ? STORE_ERR_NONEXISTENT : STORE_ERR_INTERNAL,
		       "%s", rc > 0 ? "no such mailbox id" : e);
}

/* -- quota warnings -------------------------------------------------------*/

void
store_quota_warner_set(struct store *st, const struct store_quota_warner *w)
{
	st->warner = w;
}

int
store_quota_warned_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		       unsigned *level_r, const char **error_r)
{
	MDB_val v;
	int rc = user_meta_get(st, txn, 'w', user_num, 4, &v, error_r);
	if (rc == 1)
		*level_r = get_be32(v.mv_data);
	return rc;
}

int
store_quota_warned_del(struct store *st, MDB_txn *txn, uint64_t user_num)
{
	return user_meta_del(st, txn, 'w', user_num);
}

int
store_auto_reply_due(struct store *st, MDB_txn *txn, uint64_t user_num,
		     const uint8_t sender_hash[8], int64_t now,
		     int64_t interval, unsigned max)
{
	enum { E = STORE_AUTO_REPLY_ENTRY };
	uint8_t key[9];
	user_meta_key(key, 'r', user_num);
	MDB_val k = {9, key}, v = {0, NULL};
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		v.mv_size = 0;
	else if (rc != 0)
		return rc;
	else if (v.mv_size % E != 0)
		return -1;
	size_t n = v.mv_size / E, kept = 0;
	uint8_t *out = malloc((n + 1) * E);
	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = (const uint8_t *)v.mv_data + i * E;
		int64_t t = (int64_t)get_be64(e + 8);
		int recent = t <= now && now - t < interval;
		if (memcmp(e, sender_hash, 8) == 0 && recent) {
			free(out);
			return 0;
		}
		if (recent && memcmp(e, sender_hash, 8) != 0)
			memcpy(out + kept++ * E, e, E);
	}
	memcpy(out + kept * E, sender_hash, 8);
	be64(out + kept * E + 8, (uint64_t)now);
	kept++;
	size_t skip = kept > max ? kept - max : 0;
	MDB_val nv = {(kept - skip) * E, out + skip * E};
	rc = mdb_put(txn, st->meta, &k, &nv, 0);
	free(out);
	return rc != 0 ? rc : 1;
}

int
store_auto_reply_del(struct store *st, MDB_txn *txn, uint64_t user_num)
{
	return user_meta_del(st, txn, 'r', user_num);
}

int
store_auto_reply_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		     uint8_t **data_r, size_t *len_r, const char **error_r)
{
	uint8_t key[9];
	user_meta_key(key, 'r', user_num);
	MDB_val k = {9, key}, v;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && v.mv_size % STORE_AUTO_REPLY_ENTRY != 0)
		rc = MDB_CORRUPTED;
	if (rc != 0) {
		*error_r = store_strerror(rc);
		return -1;
	}
	*data_r = malloc(v.mv_size ? v.mv_size : 1);
	if (*data_r == NULL)
		abort();
	memcpy(*data_r, v.mv_data, v.mv_size);
	*len_r = v.mv_size;
	return 1;
}

/* entries by sender, then time; and by time, then sender */
static int
auto_reply_by_sender(const void *x, const void *y)
{
	int c = memcmp(x, y, 8);
	if (c != 0)
		return c;
	uint64_t a = get_be64((const uint8_t *)x + 8);
	uint64_t b = get_be64((const uint8_t *)y + 8);
	return a < b ? -1 : a > b;
}

static int
auto_reply_by_time(const void *x, const void *y)
{
	uint64_t a = get_be64((const uint8_t *)x + 8);
	uint64_t b = get_be64((const uint8_t *)y + 8);
	if (a != b)
		return a < b ? -1 : 1;
	return memcmp(x, y, 8);
}

int
store_op_auto_replied(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	enum { E = STORE_AUTO_REPLY_ENTRY };
	struct store_auto_replied_args *a = vargs;
	struct store_user_rec u;
	int rc = op_user(st, txn, a->mailbox_id, &u, err);
	if (rc != 0)
		return rc;
	if (a->len % E != 0)
		return op_fail(err, STORE_ERR_CANNOT,
			       "automatic reply record: not a list of entries");
	uint8_t key[9];
	user_meta_key(key, 'r', u.user_num);
	MDB_val k = {9, key}, v = {0, NULL};
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		v.mv_size = 0;
	else if (rc != 0)
		return op_mdb(err, "automatic reply record", rc);
	else if (v.mv_size % E != 0)
		return op_fail(err, STORE_ERR_INTERNAL,
			       "automatic reply record: not a list of entries");
	/* both lists, then of each sender its latest entry, oldest first */
	size_t n = v.mv_size / E + a->len / E;
	uint8_t *all = malloc(n ? n * E : 1);
	if (all == NULL)
		abort();
	if (v.mv_size > 0)
		memcpy(all, v.mv_data, v.mv_size);
	if (a->len > 0)
		memcpy(all + v.mv_size, a->entries, a->len);
	qsort(all, n, E, auto_reply_by_sender);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (i + 1 == n ||
		    memcmp(all + i * E, all + (i + 1) * E, 8) != 0)
			memmove(all + kept++ * E, all + i * E, E);
	qsort(all, kept, E, auto_reply_by_time);
	size_t keep = a->max > 0 && kept > a->max ? a->max : kept;
	if (keep == 0) {
		free(all);
		rc = user_meta_del(st, txn, 'r', u.user_num);
		return rc != 0 ? op_mdb(err, "automatic reply record", rc) : 0;
	}
	MDB_val nv = {keep * E, all + (kept - keep) * E};
	rc = mdb_put(txn, st->meta, &k, &nv, 0);
	free(all);
	return rc != 0 ? op_mdb(err, "automatic reply record", rc) : 0;
}

static int
quota_warned_put(struct store *st, MDB_txn *txn, uint64_t user_num,
		 unsigned level)
{
	uint8_t key[9], val[4];
	user_meta_key(key, 'w', user_num);
	be32(val, level);
	MDB_val k = {9, key}, v = {sizeof(val), val};
	return mdb_put(txn, st->meta, &k, &v, 0);
}

int
store_op_quota_warned(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_quota_warned_args *a = vargs;
	struct store_user_rec u;
	int rc = op_user(st, txn, a->mailbox_id, &u, err);
	if (rc != 0)
		return rc;
	rc = a->level == 0
		 ? user_meta_del(st, txn, 'w', u.user_num)
		 : quota_warned_put(st, txn, u.user_num,
				    a->level > 1000 ? 1000 : a->level);
	return rc != 0 ? op_mdb(err, "quota warning", rc) : 0;
}

static int append_sized(struct store *st, MDB_txn *txn,
			struct store_append_args *a, const uint64_t *sizes,
			uint64_t *user_num_r, char *err);

static unsigned
percent_of(uint64_t used, uint64_t limit)
{
	uint64_t p = used > UINT64_MAX / 100 ? 1000 : used * 100 / limit;
	return p > 1000 ? 1000 : (unsigned)p;
}

/* After an operation added add_size bytes and add_msgs messages to
 * user_num's mailboxes (qsize, qmsgs: the backend's limits), in its
 * transaction: store_quota_warner.  The level recorded comes down to
 * that of the use before the operation (what was removed since is not
 * watched), so that a level crossed anew warns anew. */
static int
quota_warn(struct store *st, MDB_txn *txn, uint64_t user_num, uint64_t qsize,
	   uint64_t qmsgs, uint64_t add_size, uint64_t add_msgs, char *err)
{
	const struct store_quota_warner *w = st->warner;
	if (w == NULL || w->level(w->ctx, 1000) == 0)
		return 0; /* no levels */
	struct store_quota q = {qsize, qmsgs, STORE_QUOTA_NONE}, own;
	int rc = quota_own(st, txn, user_num, &own);
	if (rc == 0)
		quota_apply(&q, &own);
	else if (rc != MDB_NOTFOUND)
		return op_mdb(err, "quota warning", rc);
	struct usage u;
	if ((rc = usage_get(st, txn, user_num, &u)) != 0)
		return op_mdb(err, "quota warning", rc);
	if (q.storage == 0 && q.messages == 0)
		return 0; /* (a record left from a limit since lifted stays) */
	unsigned pct = 0, before = 0;
	uint64_t size0 = u.size > add_size ? u.size - add_size : 0;
	uint64_t msgs0 = u.messages > add_msgs ? u.messages - add_msgs : 0;
	if (q.storage != 0) {
		pct = percent_of(u.size, q.storage);
		before = percent_of(size0, q.storage);
	}
	if (q.messages != 0) {
		if (percent_of(u.messages, q.messages) > pct)
			pct = percent_of(u.messages, q.messages);
		if (percent_of(msgs0, q.messages) > before)
			before = percent_of(msgs0, q.messages);
	}
	unsigned level = w->level(w->ctx, pct);
	unsigned level0 = w->level(w->ctx, before);
	unsigned had = 0, warned;
	const char *e;
	/* (a record cut short is written again) */
	int have = store_quota_warned_get(st, txn, user_num, &had, &e) == 1;
	warned = have ? had : 0;
	if (warned > level0)
		warned = level0;
	if (level <= warned)
		level = warned;
	else {
		struct store_quota_warning qw = {
		    user_num,   pct,       level,     u.size,
		    u.messages, q.storage, q.messages};
		struct buf msg = BUF_INIT, meta = BUF_INIT;
		w->build(w->ctx, &qw, &msg, &meta);
		struct store_new_msg nm = {
		    .data = buf_ptr(&msg),
		    .len = buf_used(&msg),
		    .meta = buf_used(&meta) ? buf_ptr(&meta) : NULL,
		    .metalen = buf_used(&meta),
		};
		struct store_append_args aa = {.user_num = user_num,
					       .mailbox = "INBOX",
					       .msgs = &nm,
					       .n = 1,
					       .unlimited = 1};
		uint64_t size = store_sent_size(nm.data, nm.len), un;
		rc = append_sized(st, txn, &aa, &size, &un, err);
		buf_free(&msg);
		buf_free(&meta);
		if (rc == STORE_ERR_INTERNAL || rc == STORE_ERR_FULL)
			return rc;
		if (rc != 0)
			return 0; /* no INBOX, no UIDs left: not warned */
		store_note_changed(st, aa.mbox_id_out);
	}
	if ((have && had == level) || (!have && level == 0))
		return 0;
	rc = level == 0 ? user_meta_del(st, txn, 'w', user_num)
			: quota_warned_put(st, txn, user_num, level);
	return rc != 0 ? op_mdb(err, "quota warning", rc) : 0;
}

/* -- operations -----------------------------------------------------------*/

static const struct {
	const char *name;
	enum store_special_use su;
} standard_folders[] = {
	{"INBOX", STORE_SU_NONE},    {"Sent", STORE_SU_SENT},
	{"Drafts", STORE_SU_DRAFTS}, {"Trash", STORE_SU_TRASH},
	{"Junk", STORE_SU_JUNK},     {"Archive", STORE_SU_ARCHIVE},
};

int
store_op_provision(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_provision_args *a = vargs;
	struct store_user_rec u;
	size_t idlen = strlen(a->mailbox_id);
	if (idlen == 0 || idlen > 255)
		return op_fail(err, STORE_ERR_LIMIT, "invalid mailbox id");
	MDB_val k = {idlen, (void *)(uintptr_t)a->mailbox_id}, v;
	int rc = mdb_get(txn, st->users, &k, &v);
	if (rc == 0)
		return 0;
	if (rc != MDB_NOTFOUND)
		return op_mdb(err, "user", rc);
	memset(&u, 0, sizeof(u));
	u.version = 1;
	u.created = (int64_t)time(NULL);
	if ((rc = meta_next(st, txn, "next_user", &u.user_num)) != 0)
		return op_mdb(err, "provision", rc);
	v.mv_size = sizeof(u);
	v.mv_data = &u;
	if ((rc = mdb_put(txn, st->users, &k, &v, MDB_NOOVERWRITE)) != 0)
		return op_mdb(err, "provision", rc);
	for (size_t i = 0;
	     i < sizeof(standard_folders) / sizeof(standard_folders[0]); i++) {
		struct mbox m;
		rc = mbox_create(st, txn, u.user_num, standard_folders[i].name,
				 standard_folders[i].su, &m);
		if (rc != 0)
			return op_mdb(err, "provision", rc);
		uint8_t sk[STORE_MAX_KEY + 1];
		size_t sl = store_mailbox_key(sk, sizeof(sk), u.user_num,
					      standard_folders[i].name);
		MDB_val skv = {sl, sk}, empty = {0, ""};
		if ((rc = mdb_put(txn, st->subs, &skv, &empty, 0)) != 0)
			return op_mdb(err, "provision", rc);
	}
	a->created_out = 1;
	return 0;
}

uint64_t
store_sent_size(const char *p, size_t len)
{
	uint64_t n = len;
	const char *end = p + len, *q = len ? memchr(p, '\n', len) : NULL;
	while (q != NULL) {
		if (q == p || q[-1] != '\r')
			n++;
		q++;
		q = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
	}
	return n;
}

/* A message's own modseq, given by the import of a whole account: free
 * in the mailbox, and HIGHESTMODSEQ at least it. */
static int
modseq_given(struct store *st, MDB_txn *txn, struct mbox *mb, uint64_t modseq,
	     char *err)
{
	uint8_t mk[16];
	be64(mk, mb->rec.mbox_id);
	be64(mk + 8, modseq);
	MDB_val k = {16, mk}, v;
	int rc = mdb_get(txn, st->modseqs, &k, &v);
	if (rc == 0)
		return op_fail(err, STORE_ERR_CANNOT,
			       "[CANNOT] Two messages with modseq %llu",
			       (unsigned long long)modseq);
	if (rc != MDB_NOTFOUND)
		return op_mdb(err, "append", rc);
	if (modseq > mb->rec.highestmodseq)
		mb->rec.highestmodseq = modseq;
	return 0;
}

/* store_op_append with each message's size as sent (sizes[]) known. */
static int
append_sized(struct store *st, MDB_txn *txn, struct store_append_args *a,
	     const uint64_t *sizes, uint64_t *user_num_r, char *err)
{
	struct mbox mb;
	int rc = a->mailbox != NULL
			 ? mbox_by_name(st, txn, a->user_num, a->mailbox, &mb)
			 : mbox_by_id(st, txn, a->mbox_id, &mb);
	if (rc == MDB_NOTFOUND || (rc == 0 && mb.rec.noselect))
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[TRYCREATE] No such mailbox");
	if (rc != 0)
		return op_mdb(err, "append", rc);
	uint64_t total = 0;
	for (size_t i = 0; i < a->n; i++)
		total += sizes[i];
	if (!a->unlimited &&
	    (rc = quota_check(st, txn, mb.user_num, total, a->n,
			      a->quota_storage, a->quota_messages, err)) != 0)
		return rc;
	*user_num_r = mb.user_num;
	if ((uint64_t)mb.rec.uidnext + a->n > 0xffffffffULL)
		return op_fail(err, STORE_ERR_LIMIT,
			       "[LIMIT] Mailbox has run out of UIDs");
	if (a->keep_uidvalidity != 0) {
		if (mb.rec.uidvalidity != a->keep_uidvalidity) {
			if (mb.rec.uidnext != 1 || mb.rec.messages != 0)
				return op_fail(err, STORE_ERR_CANNOT,
					       "[CANNOT] The mailbox has had "
					       "messages: its UIDs cannot be "
					       "those of another");
			mb.rec.uidvalidity = a->keep_uidvalidity;
		}
		if (mb.rec.highestmodseq < a->keep_modseq)
			mb.rec.highestmodseq = a->keep_modseq;
		if ((rc = store_expunged_raise_floor(
			 st, txn, mb.rec.mbox_id, mb.rec.highestmodseq)) != 0)
			return op_mdb(err, "append", rc);
	}
	int64_t now = (int64_t)time(NULL);
	a->first_uid = a->n > 0 && a->msgs[0].uid != 0 ? a->msgs[0].uid
						       : mb.rec.uidnext;
	for (size_t i = 0; i < a->n; i++) {
		const struct store_new_msg *nm = &a->msgs[i];
		struct store_msg_rec m = {0};
		if ((rc = kw_resolve(st, txn, mb.rec.mbox_id, nm->keywords,
				     nm->nkeywords, 1, &m.keywords, err)) != 0)
			return rc;
		if ((rc = body_put(st, txn, nm, &m.body_id)) != 0)
			return op_mdb(err, "append", rc);
		m.size = sizes[i];
		m.internaldate = nm->internaldate ? nm->internaldate : now;
		m.savedate = nm->savedate ? nm->savedate : now;
		m.pop3_retrieved = nm->pop3_retrieved;
		/* Every message gets a modseq of its own: the index is keyed
		   by (mailbox, modseq). */
		if (nm->modseq == 0)
			m.modseq = ++mb.rec.highestmodseq;
		else if ((rc = modseq_given(st, txn, &mb, nm->modseq, err)) !=
			 0)
			return rc;
		else
			m.modseq = nm->modseq;
		m.flags = nm->flags & STORE_F_SYSTEM;
		if (sizes[i] == nm->len)
			m.flags |= STORE_F_CRLF;
		if (nm->uid != 0 &&
		    (nm->uid < mb.rec.uidnext || nm->uid == 0xffffffffU))
			return op_fail(err, STORE_ERR_CANNOT,
				       "[CANNOT] A given UID below the "
				       "mailbox's UIDNEXT");
		if (nm->uid != 0)
			mb.rec.uidnext = nm->uid;
		uint32_t uid = mb.rec.uidnext++;
		if ((rc = msg_put(st, txn, mb.rec.mbox_id, uid, NULL, &m)) != 0)
			return op_mdb(err, "append", rc);
		mb.rec.messages++;
		if (!(m.flags & STORE_F_SEEN))
			mb.rec.unseen++;
		mb.rec.size += m.size;
	}
	if (a->keep_uidvalidity != 0 && a->keep_uidnext > mb.rec.uidnext)
		mb.rec.uidnext = a->keep_uidnext;
	if (a->keep_uidvalidity != 0 && a->keep_uidnext != 0 &&
	    a->keep_expunged) {
		for (size_t i = 0; i < a->nexpunged; i++) {
			struct store_msg_rec m;
			if (a->expunged_uids[i] == 0 ||
			    a->expunged_uids[i] >= mb.rec.uidnext ||
			    a->expunged_modseqs[i] == 0 ||
			    a->expunged_modseqs[i] > mb.rec.highestmodseq)
				return op_fail(err, STORE_ERR_CANNOT,
					       "[CANNOT] An expunge record "
					       "beyond UIDNEXT or "
					       "HIGHESTMODSEQ");
			rc = msg_get(st, txn, mb.rec.mbox_id,
				     a->expunged_uids[i], &m);
			if (rc == 0)
				return op_fail(err, STORE_ERR_CANNOT,
					       "[CANNOT] UID %u is both there "
					       "and expunged",
					       a->expunged_uids[i]);
			if (rc != MDB_NOTFOUND)
				return op_mdb(err, "append", rc);
		}
		if ((rc = store_expunged_restore(
			 st, txn, mb.rec.mbox_id, a->expunged_uids,
			 a->expunged_modseqs, a->nexpunged,
			 a->expunged_floor)) != 0)
			return op_mdb(err, "append", rc);
	}
	if ((rc = mbox_save(st, txn, &mb)) != 0 ||
	    (rc = usage_add(st, txn, mb.user_num, (int64_t)total,
			    (int64_t)a->n)) != 0)
		return op_mdb(err, "append", rc);
	a->uidvalidity = mb.rec.uidvalidity;
	a->mbox_id_out = mb.rec.mbox_id;
	return 0;
}

int
store_op_append(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_append_args *a = vargs;
	/* Each message is scanned once, for the quota and its record. */
	uint64_t one[8] = {0},
		 *sizes = a->n <= 8 ? one : malloc(a->n * sizeof(*sizes));
	if (sizes == NULL)
		abort();
	for (size_t i = 0; i < a->n; i++)
		sizes[i] = store_sent_size(a->msgs[i].data, a->msgs[i].len);
	uint64_t user_num = 0, total = 0;
	for (size_t i = 0; i < a->n; i++)
		total += sizes[i];
	int rc = append_sized(st, txn, a, sizes, &user_num, err);
	if (sizes != one)
		free(sizes);
	if (rc == 0 && !a->unlimited && a->keep_uidvalidity == 0)
		rc = quota_warn(st, txn, user_num, a->quota_storage,
				a->quota_messages, total, a->n, err);
	return rc;
}

int
store_op_flags(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_flags_args *a = vargs;
	struct mbox mb;
	int rc = mbox_by_id(st, txn, a->mbox_id, &mb);
	if (rc == MDB_NOTFOUND)
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[NONEXISTENT] Mailbox was deleted");
	if (rc != 0)
		return op_mdb(err, "store", rc);
	uint64_t kw = 0;
	if ((rc = kw_resolve(st, txn, a->mbox_id, a->keywords, a->nkeywords,
			     a->mode != STORE_FLAGS_REMOVE, &kw, err)) != 0)
		return rc;
	int changed = 0;
	uint32_t flags = a->flags & STORE_F_SYSTEM;
	for (size_t i = 0; i < a->n; i++) {
		struct store_msg_rec m, old;
		a->modseq[i] = 0;
		a->failed[i] = 0;
		rc = msg_get(st, txn, a->mbox_id, a->uids[i], &m);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return op_mdb(err, "store", rc);
		if (a->conditional && m.modseq > a->unchangedsince) {
			a->failed[i] = 1;
			a->modseq[i] = m.modseq;
			continue;
		}
		old = m;
		switch (a->mode) {
		case STORE_FLAGS_SET:
			m.flags = (m.flags & ~STORE_F_SYSTEM) | flags;
			m.keywords = kw;
			break;
		case STORE_FLAGS_ADD:
			m.flags |= flags;
			m.keywords |= kw;
			break;
		case STORE_FLAGS_REMOVE:
			m.flags &= ~flags;
			m.keywords &= ~kw;
			break;
		}
		if (m.flags == old.flags && m.keywords == old.keywords) {
			a->modseq[i] = m.modseq;
			continue;
		}
		if ((old.flags & STORE_F_SEEN) && !(m.flags & STORE_F_SEEN))
			mb.rec.unseen++;
		else if (!(old.flags & STORE_F_SEEN) &&
			 (m.flags & STORE_F_SEEN) && mb.rec.unseen > 0)
			mb.rec.unseen--;
		m.modseq = ++mb.rec.highestmodseq;
		if ((rc = msg_put(st, txn, a->mbox_id, a->uids[i], &old, &m)) !=
		    0)
			return op_mdb(err, "store", rc);
		a->modseq[i] = m.modseq;
		changed = 1;
	}
	if (changed) {
		if ((rc = mbox_save(st, txn, &mb)) != 0)
			return op_mdb(err, "store", rc);
	}
	return 0;
}

int
store_op_expunge(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_expunge_args *a = vargs;
	struct mbox mb;
	int rc = mbox_by_id(st, txn, a->mbox_id, &mb);
	if (rc == MDB_NOTFOUND)
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[NONEXISTENT] Mailbox was deleted");
	if (rc != 0)
		return op_mdb(err, "expunge", rc);
	uint64_t modseq = mb.rec.highestmodseq + 1;
	int changed = 0;
	for (size_t i = 0; i < a->nretrieved; i++) {
		struct store_msg_rec m;
		rc = msg_get(st, txn, a->mbox_id, a->retrieved[i], &m);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return op_mdb(err, "expunge", rc);
		if (m.pop3_retrieved != 0)
			continue;
		/* A download is not a change a client sees: modseq kept. */
		m.pop3_retrieved = (uint32_t)a->now;
		uint8_t key[12];
		msg_key(key, a->mbox_id, a->retrieved[i]);
		MDB_val k = {12, key}, v = {sizeof(m), &m};
		if ((rc = mdb_put(txn, st->messages, &k, &v, 0)) != 0)
			return op_mdb(err, "expunge", rc);
	}
	a->removed = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct store_msg_rec m;
		rc = msg_get(st, txn, a->mbox_id, a->uids[i], &m);
		if (rc == MDB_NOTFOUND)
			continue; /* someone else was first */
		if (rc != 0)
			return op_mdb(err, "expunge", rc);
		if ((rc = msg_remove(st, txn, &mb, a->uids[i], &m, modseq)) != 0)
			return op_mdb(err, "expunge", rc);
		a->removed++;
		changed = 1;
	}
	if (changed) {
		mb.rec.highestmodseq = modseq;
		if ((rc = mbox_save(st, txn, &mb)) != 0)
			return op_mdb(err, "expunge", rc);
	}
	return 0;
}

int
store_op_copy(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_copy_args *a = vargs;
	struct mbox src, dst;
	int rc = mbox_by_id(st, txn, a->src_mbox, &src);
	if (rc == MDB_NOTFOUND)
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[NONEXISTENT] Mailbox was deleted");
	if (rc != 0)
		return op_mdb(err, "copy", rc);
	rc = mbox_by_id(st, txn, a->dst_mbox, &dst);
	if (rc == MDB_NOTFOUND || (rc == 0 && dst.rec.noselect))
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[TRYCREATE] No such mailbox");
	if (rc != 0)
		return op_mdb(err, "copy", rc);
	if (dst.user_num != src.user_num)
		return op_fail(err, STORE_ERR_CANNOT, "[CANNOT] Not your mailbox");
	if (a->src_mbox == a->dst_mbox && a->move)
		return op_fail(err, STORE_ERR_CANNOT,
			       "[CANNOT] Cannot move into the same mailbox");
	/* Quota counts copies: a move frees what it adds. */
	uint64_t add = 0, addn = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct store_msg_rec m;
		if (msg_get(st, txn, a->src_mbox, a->uids[i], &m) == 0) {
			add += m.size;
			addn++;
		}
	}
	if (!a->move &&
	    (rc = quota_check(st, txn, src.user_num, add, addn,
			      a->quota_storage, a->quota_messages, err)) != 0)
		return rc;
	if ((uint64_t)dst.rec.uidnext + a->n > 0xffffffffULL)
		return op_fail(err, STORE_ERR_LIMIT,
			       "[LIMIT] Mailbox has run out of UIDs");
	/* Keyword bits are per mailbox: translate names. */
	const char *snames = "";
	size_t slen = 0;
	{
		uint8_t key[8];
		be64(key, a->src_mbox);
		MDB_val k = {8, key}, v;
		rc = mdb_get(txn, st->keywords, &k, &v);
		if (rc == 0) {
			snames = v.mv_data;
			slen = v.mv_size;
		} else if (rc != MDB_NOTFOUND) {
			return op_mdb(err, "copy", rc);
		}
	}
	const char *names[STORE_MAX_KEYWORDS];
	char namebuf[STORE_MAX_KEYWORDS * 256];
	unsigned nnames = 0;
	if (slen > sizeof(namebuf))
		return op_mdb(err, "copy", MDB_CORRUPTED);
	memcpy(namebuf, snames, slen);
	for (size_t off = 0; off < slen && nnames < STORE_MAX_KEYWORDS;) {
		names[nnames++] = namebuf + off;
		off += strlen(namebuf + off) + 1;
	}
	int64_t now = (int64_t)time(NULL);
	uint64_t smodseq = src.rec.highestmodseq + 1;
	int src_changed = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct store_msg_rec m;
		a->dst_uids[i] = 0;
		rc = msg_get(st, txn, a->src_mbox, a->uids[i], &m);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return op_mdb(err, "copy", rc);
		struct store_msg_rec c = m;
		const char *kwn[STORE_MAX_KEYWORDS];
		unsigned nk = 0;
		for (unsigned b = 0; b < nnames; b++)
			if (m.keywords & (1ULL << b))
				kwn[nk++] = names[b];
		if ((rc = kw_resolve(st, txn, a->dst_mbox, kwn, nk, 1,
				     &c.keywords, err)) != 0)
			return rc;
		c.modseq = ++dst.rec.highestmodseq;
		c.savedate = now;
		c.pop3_retrieved = 0;
		uint32_t uid = dst.rec.uidnext++;
		if ((rc = body_ref(st, txn, m.body_id, 1)) != 0 ||
		    (rc = msg_put(st, txn, a->dst_mbox, uid, NULL, &c)) != 0)
			return op_mdb(err, "copy", rc);
		dst.rec.messages++;
		if (!(c.flags & STORE_F_SEEN))
			dst.rec.unseen++;
		dst.rec.size += c.size;
		if ((rc = usage_add(st, txn, dst.user_num, (int64_t)c.size,
				    1)) != 0)
			return op_mdb(err, "copy", rc);
		a->dst_uids[i] = uid;
		if (a->move) {
			if ((rc = msg_remove(st, txn, &src, a->uids[i], &m,
					     smodseq)) != 0)
				return op_mdb(err, "move", rc);
			src_changed = 1;
		}
	}
	if (src_changed) {
		src.rec.highestmodseq = smodseq;
		if ((rc = mbox_save(st, txn, &src)) != 0)
			return op_mdb(err, "move", rc);
	}
	if ((rc = mbox_save(st, txn, &dst)) != 0)
		return op_mdb(err, "copy", rc);
	a->dst_uidvalidity = dst.rec.uidvalidity;
	/* (a move adds nothing) */
	return quota_warn(st, txn, dst.user_num, a->quota_storage,
			  a->quota_messages, a->move ? 0 : add,
			  a->move ? 0 : addn, err);
}

/* Creates the missing superiors of name ("a/b/c": "a", "a/b"). */
static int
create_parents(struct store *st, MDB_txn *txn, uint64_t user_num,
	       const char *name)
{
	char buf[STORE_MAX_KEY + 1];
	snprintf(buf, sizeof(buf), "%s", name);
	for (char *p = strchr(buf, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		struct mbox m;
		int rc = mbox_by_name(st, txn, user_num, buf, &m);
		if (rc == MDB_NOTFOUND)
			rc = mbox_create(st, txn, user_num, buf, STORE_SU_NONE,
					 &m);
		if (rc != 0)
			return rc;
		*p = '/';
	}
	return 0;
}

int
store_op_mailbox_create(struct store *st, MDB_txn *txn, void *vargs,
			char *err)
{
	struct store_mailbox_args *a = vargs;
	struct mbox m;
	if (strlen(a->name) + 8 > STORE_MAX_KEY)
		return op_fail(err, STORE_ERR_LIMIT, "[LIMIT] Name too long");
	int rc = mbox_by_name(st, txn, a->user_num, a->name, &m);
	if (rc == 0 && !m.rec.noselect)
		return op_fail(err, STORE_ERR_EXISTS,
			       "[ALREADYEXISTS] Mailbox already exists");
	if (rc == 0) {
		/* A deleted parent kept for its children comes back. */
		m.rec.noselect = 0;
		m.rec.special_use = a->special_use;
		if ((rc = mbox_save(st, txn, &m)) != 0)
			return op_mdb(err, "create", rc);
		a->mbox_id_out = m.rec.mbox_id;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return op_mdb(err, "create", rc);
	if ((rc = create_parents(st, txn, a->user_num, a->name)) != 0 ||
	    (rc = mbox_create(st, txn, a->user_num, a->name, a->special_use,
			      &m)) != 0)
		return op_mdb(err, "create", rc);
	a->mbox_id_out = m.rec.mbox_id;
	return 0;
}

int
store_op_folder_restore(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_folder_restore_args *a = vargs;
	struct mbox m;
	if (strlen(a->name) + 8 > STORE_MAX_KEY)
		return op_fail(err, STORE_ERR_LIMIT, "[LIMIT] Name too long");
	if (a->special_use >= STORE_SU_COUNT || a->uidvalidity == 0 ||
	    a->keywords_len > STORE_MAX_KEYWORDS * 256)
		return op_fail(err, STORE_ERR_LIMIT, "invalid folder");
	int rc = mbox_by_name(st, txn, a->user_num, a->name, &m);
	if (rc == MDB_NOTFOUND) {
		if ((rc = create_parents(st, txn, a->user_num, a->name)) != 0 ||
		    (rc = mbox_create(st, txn, a->user_num, a->name,
				      a->special_use, &m)) != 0)
			return op_mdb(err, "restore", rc);
	} else if (rc != 0) {
		return op_mdb(err, "restore", rc);
	} else if (m.rec.uidnext != 1 || m.rec.messages != 0) {
		return op_fail(err, STORE_ERR_CANNOT,
			       "[CANNOT] %s has had messages", a->name);
	}
	m.rec.special_use = a->special_use;
	m.rec.noselect = a->noselect != 0;
	m.rec.uidvalidity = a->uidvalidity;
	if (a->noselect && a->uidnext > m.rec.uidnext)
		m.rec.uidnext = a->uidnext;
	if (a->noselect && a->highestmodseq > m.rec.highestmodseq)
		m.rec.highestmodseq = a->highestmodseq;
	if (a->created != 0)
		m.rec.created = a->created;
	uint8_t key[8];
	be64(key, m.rec.mbox_id);
	MDB_val k = {8, key}, v = {a->keywords_len, (void *)a->keywords};
	rc = a->keywords_len > 0 ? mdb_put(txn, st->keywords, &k, &v, 0)
				 : mdb_del(txn, st->keywords, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return op_mdb(err, "restore", rc);
	if ((rc = mbox_save(st, txn, &m)) != 0)
		return op_mdb(err, "restore", rc);
	a->mbox_id_out = m.rec.mbox_id;
	return 0;
}

/* Whether name has inferiors ("name/..."). */
static int
has_children(struct store *st, MDB_txn *txn, const struct mbox *m, int *r)
{
	MDB_cursor *cur;
	uint8_t prefix[STORE_MAX_KEY + 2];
	size_t plen = m->k.mv_size;
	memcpy(prefix, m->key, plen);
	prefix[plen++] = '/';
	int rc = mdb_cursor_open(txn, st->mailboxes, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {plen, prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	*r = rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes every message of a mailbox. */
static int
empty_mailbox(struct store *st, MDB_txn *txn, struct mbox *m)
{
	MDB_cursor *cur;
	uint8_t prefix[8];
	be64(prefix, m->rec.mbox_id);
	uint64_t modseq = ++m->rec.highestmodseq;
	for (;;) {
		int rc = mdb_cursor_open(txn, st->messages, &cur);
		if (rc != 0)
			return rc;
		MDB_val k = {8, prefix}, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || k.mv_size != 12 ||
		    memcmp(k.mv_data, prefix, 8) != 0) {
			mdb_cursor_close(cur);
			return 0;
		}
		if (rc != 0 || v.mv_size != sizeof(struct store_msg_rec)) {
			mdb_cursor_close(cur);
			return rc ? rc : MDB_CORRUPTED;
		}
		struct store_msg_rec msg;
		memcpy(&msg, v.mv_data, sizeof(msg));
		uint32_t uid = get_be32((const uint8_t *)k.mv_data + 8);
		mdb_cursor_close(cur);
		if ((rc = msg_remove(st, txn, m, uid, &msg, modseq)) != 0)
			return rc;
	}
}

/* Deletes every key of dbi that starts with the 8-byte id. */
static int
del_prefix(struct store *st, MDB_txn *txn, MDB_dbi dbi, uint64_t id)
{
	(void)st;
	MDB_cursor *cur;
	uint8_t prefix[8];
	be64(prefix, id);
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {8, prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, prefix, 8) == 0)
		rc = store_cursor_del_next(cur, &k, &v);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_op_mailbox_delete(struct store *st, MDB_txn *txn, void *vargs,
			char *err)
{
	struct store_mailbox_args *a = vargs;
	struct mbox m;
	if (strcmp(a->name, "INBOX") == 0)
		return op_fail(err, STORE_ERR_CANNOT,
			       "[CANNOT] INBOX cannot be deleted");
	int rc = mbox_by_name(st, txn, a->user_num, a->name, &m);
	if (rc == MDB_NOTFOUND)
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[NONEXISTENT] No such mailbox");
	if (rc != 0)
		return op_mdb(err, "delete", rc);
	int children = 0;
	if ((rc = has_children(st, txn, &m, &children)) != 0)
		return op_mdb(err, "delete", rc);
	if (children && m.rec.noselect)
		return op_fail(err, STORE_ERR_CANNOT,
			       "[HASCHILDREN] Mailbox has inferior names");
	if ((rc = empty_mailbox(st, txn, &m)) != 0)
		return op_mdb(err, "delete", rc);
	a->mbox_id_gone = m.rec.mbox_id;
	if (children) {
		/* RFC 3501 6.3.4: the name stays, \Noselect, for its
		   children. */
		m.rec.noselect = 1;
		m.rec.special_use = STORE_SU_NONE;
		if ((rc = mbox_save(st, txn, &m)) != 0)
			return op_mdb(err, "delete", rc);
		return 0;
	}
	uint8_t idkey[8];
	be64(idkey, m.rec.mbox_id);
	MDB_val ik = {8, idkey};
	if ((rc = mdb_del(txn, st->mailboxes, &m.k, NULL)) != 0 ||
	    (rc = mdb_del(txn, st->mboxids, &ik, NULL)) != 0)
		return op_mdb(err, "delete", rc);
	rc = mdb_del(txn, st->keywords, &ik, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return op_mdb(err, "delete", rc);
	if ((rc = del_prefix(st, txn, st->expunged, m.rec.mbox_id)) != 0 ||
	    (rc = del_prefix(st, txn, st->modseqs, m.rec.mbox_id)) != 0)
		return op_mdb(err, "delete", rc);
	return 0;
}

/* Moves one mailbox record to a new name, keeping its id and UIDVALIDITY
 * (RFC 3501 6.3.5). */
static int
rekey(struct store *st, MDB_txn *txn, struct mbox *m, uint64_t user_num,
      const char *new_name)
{
	uint8_t nk[STORE_MAX_KEY + 1];
	size_t nl = store_mailbox_key(nk, sizeof(nk), user_num, new_name);
	if (nl == 0)
		return EINVAL;
	MDB_val k = {nl, nk}, v = {sizeof(m->rec), &m->rec};
	int rc = mdb_put(txn, st->mailboxes, &k, &v, MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	if ((rc = mdb_del(txn, st->mailboxes, &m->k, NULL)) != 0)
		return rc;
	uint8_t idkey[8];
	be64(idkey, m->rec.mbox_id);
	MDB_val ik = {8, idkey};
	return mdb_put(txn, st->mboxids, &ik, &k, 0);
}

int
store_op_mailbox_rename(struct store *st, MDB_txn *txn, void *vargs,
			char *err)
{
	struct store_mailbox_args *a = vargs;
	struct mbox from, to;
	if (strlen(a->new_name) + 8 > STORE_MAX_KEY)
		return op_fail(err, STORE_ERR_LIMIT, "[LIMIT] Name too long");
	int rc = mbox_by_name(st, txn, a->user_num, a->name, &from);
	if (rc == MDB_NOTFOUND || (rc == 0 && from.rec.noselect &&
				   strcmp(a->name, "INBOX") == 0))
		return op_fail(err, STORE_ERR_NONEXISTENT,
			       "[NONEXISTENT] No such mailbox");
	if (rc != 0)
		return op_mdb(err, "rename", rc);
	rc = mbox_by_name(st, txn, a->user_num, a->new_name, &to);
	if (rc == 0)
		return op_fail(err, STORE_ERR_EXISTS,
			       "[ALREADYEXISTS] Target mailbox exists");
	if (rc != MDB_NOTFOUND)
		return op_mdb(err, "rename", rc);
	size_t oldlen = strlen(a->name);
	if (strncmp(a->new_name, a->name, oldlen) == 0 &&
	    a->new_name[oldlen] == '/')
		return op_fail(err, STORE_ERR_CANNOT,
			       "[CANNOT] Cannot move a mailbox into itself");
	if ((rc = create_parents(st, txn, a->user_num, a->new_name)) != 0)
		return op_mdb(err, "rename", rc);
	if (strcmp(a->name, "INBOX") == 0) {
		/* RFC 3501: INBOX's messages move to the new name and INBOX
		   stays, empty. */
		if ((rc = mbox_create(st, txn, a->user_num, a->new_name,
				      STORE_SU_NONE, &to)) != 0)
			return op_mdb(err, "rename", rc);
		struct store_msg *msgs;
		size_t n;
		const char *e;
		if (store_messages_list(st, txn, from.rec.mbox_id, &msgs, &n,
					&e) < 0)
			return op_fail(err, STORE_ERR_INTERNAL, "%s", e);
		uint32_t *uids = malloc((n ? n : 1) * sizeof(*uids));
		uint32_t *dst = malloc((n ? n : 1) * sizeof(*dst));
		if (uids == NULL || dst == NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			uids[i] = msgs[i].uid;
		free(msgs);
		struct store_copy_args c = {
			.src_mbox = from.rec.mbox_id,
			.dst_mbox = to.rec.mbox_id,
			.uids = uids,
			.n = n,
			.move = 1,
			.dst_uids = dst,
		};
		rc = store_op_copy(st, txn, &c, err);
		free(uids);
		free(dst);
		return rc;
	}
	/* The mailbox and its inferiors, collected first: re-keying while a
	   cursor walks the same range would be unsafe. */
	struct store_mailbox_info *list;
	size_t n;
	const char *e;
	if (store_mailboxes_list(st, txn, a->user_num, &list, &n, &e) < 0)
		return op_fail(err, STORE_ERR_INTERNAL, "%s", e);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *nm = list[i].name;
		if (strcmp(nm, a->name) != 0 &&
		    !(strncmp(nm, a->name, oldlen) == 0 && nm[oldlen] == '/'))
			continue;
		char target[STORE_MAX_KEY + 1];
		int tl = snprintf(target, sizeof(target), "%s%s", a->new_name,
				  nm + oldlen);
		if (tl < 0 || (size_t)tl + 8 > STORE_MAX_KEY) {
			store_mailboxes_free(list, n);
			return op_fail(err, STORE_ERR_LIMIT,
				       "[LIMIT] Name too long");
		}
		struct mbox m;
		if ((rc = mbox_by_name(st, txn, a->user_num, nm, &m)) == 0)
			rc = rekey(st, txn, &m, a->user_num, target);
	}
	store_mailboxes_free(list, n);
	if (rc != 0)
		return op_mdb(err, "rename", rc);
	return 0;
}

int
store_op_subscribe(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_mailbox_args *a = vargs;
	uint8_t key[STORE_MAX_KEY + 1];
	size_t kl = store_mailbox_key(key, sizeof(key), a->user_num, a->name);
	if (kl == 0)
		return op_fail(err, STORE_ERR_LIMIT, "[LIMIT] Name too long");
	MDB_val k = {kl, key}, v = {0, ""};
	int rc = a->subscribe ? mdb_put(txn, st->subs, &k, &v, 0)
			      : mdb_del(txn, st->subs, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return op_mdb(err, "subscribe", rc);
	return 0;
}
