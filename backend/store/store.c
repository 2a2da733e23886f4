/* store.c - LMDB mail store. */
#include "backend/store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/sha.h>

struct store {
	MDB_env *env;
	MDB_dbi meta, users, mailboxes, mboxids, messages, bodies, bodyrefs,
	    bodyhash, expunged;
};

static char store_error[512];

static const char *
store_fail(const char *what, int rc)
{
	snprintf(store_error, sizeof(store_error), "%s: %s", what,
		 rc > 0 && rc < 200 ? strerror(rc) : mdb_strerror(rc));
	return store_error;
}

static const char *special_use_names[] = {
	"", "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive",
};
_Static_assert(sizeof(special_use_names) / sizeof(special_use_names[0]) ==
		       STORE_SU_COUNT,
	       "special-use names");

const char *
store_special_use_name(enum store_special_use su)
{
	return su < STORE_SU_COUNT ? special_use_names[su] : "";
}

static void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

int
store_open(const char *dir, uint64_t map_size, struct store **st_r,
	   const char **error_r)
{
	struct store *st = calloc(1, sizeof(*st));
	MDB_txn *txn = NULL;
	int rc;
	if (st == NULL)
		abort();
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = store_fail(dir, errno);
		free(st);
		return -1;
	}
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, 1024)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, map_size)) != 0) {
		*error_r = store_fail("mdb_env_create", rc);
		goto fail;
	}
	rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		*error_r = store_fail(dir, rc);
		goto fail;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
		*error_r = store_fail("mdb_txn_begin", rc);
		goto fail;
	}
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = {
		{"meta", &st->meta},           {"users", &st->users},
		{"mailboxes", &st->mailboxes}, {"mboxids", &st->mboxids},
		{"messages", &st->messages},
		{"bodies", &st->bodies},       {"bodyrefs", &st->bodyrefs},
		{"bodyhash", &st->bodyhash},   {"expunged", &st->expunged},
	};
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
		if (rc != 0) {
			*error_r = store_fail(dbs[i].name, rc);
			goto fail;
		}
	}
	MDB_val k = {7, "version"}, v;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		uint32_t ver = STORE_SCHEMA_VERSION;
		v.mv_size = sizeof(ver);
		v.mv_data = &ver;
		rc = mdb_put(txn, st->meta, &k, &v, 0);
	} else if (rc == 0) {
		uint32_t ver;
		if (v.mv_size != sizeof(ver)) {
			*error_r = "store: corrupt schema version";
			goto fail;
		}
		memcpy(&ver, v.mv_data, sizeof(ver));
		if (ver != STORE_SCHEMA_VERSION) {
			snprintf(store_error, sizeof(store_error),
				 "store: schema version %u, expected %u", ver,
				 STORE_SCHEMA_VERSION);
			*error_r = store_error;
			goto fail;
		}
	}
	if (rc != 0) {
		*error_r = store_fail("schema version", rc);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		*error_r = store_fail("mdb_txn_commit", rc);
		goto fail;
	}
	*st_r = st;
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(st->env);
	free(st);
	return -1;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st);
	*stp = NULL;
}

int
store_read_begin(struct store *st, MDB_txn **txn_r, const char **error_r)
{
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn_r);
	if (rc != 0) {
		*error_r = store_fail("read transaction", rc);
		return -1;
	}
	return 0;
}

void
store_read_end(MDB_txn **txn)
{
	if (*txn != NULL)
		mdb_txn_abort(*txn);
	*txn = NULL;
}

int
store_user_get(struct store *st, MDB_txn *txn, const char *mailbox_id,
	       struct store_user_rec *r, const char **error_r)
{
	MDB_val k = {strlen(mailbox_id), (void *)(uintptr_t)mailbox_id}, v;
	int rc = mdb_get(txn, st->users, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != sizeof(*r)) {
		*error_r = store_fail("user record", rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	memcpy(r, v.mv_data, sizeof(*r));
	return 0;
}

/* Key of a mailbox: user_num | name. */
static size_t
mailbox_key(uint8_t *out, size_t outsize, uint64_t user_num, const char *name)
{
	size_t n = strlen(name);
	if (n + 8 > outsize)
		return 0;
	be64(out, user_num);
	memcpy(out + 8, name, n);
	return n + 8;
}

int
store_mailbox_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		  const char *name, struct store_mailbox_rec *r,
		  const char **error_r)
{
	uint8_t key[512];
	size_t klen = mailbox_key(key, sizeof(key), user_num, name);
	if (klen == 0)
		return 1;
	MDB_val k = {klen, key}, v;
	int rc = mdb_get(txn, st->mailboxes, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != sizeof(*r)) {
		*error_r = store_fail("mailbox record", rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	memcpy(r, v.mv_data, sizeof(*r));
	return 0;
}

int
store_mailboxes_list(struct store *st, MDB_txn *txn, uint64_t user_num,
		     struct store_mailbox_info **list_r, size_t *count_r,
		     const char **error_r)
{
	MDB_cursor *cur;
	uint8_t prefix[8];
	be64(prefix, user_num);
	int rc = mdb_cursor_open(txn, st->mailboxes, &cur);
	if (rc != 0) {
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	struct store_mailbox_info *list = NULL;
	size_t n = 0, cap = 0;
	MDB_val k = {8, prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, prefix, 8) == 0) {
		if (v.mv_size != sizeof(struct store_mailbox_rec)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			list = realloc(list, cap * sizeof(*list));
			if (list == NULL)
				abort();
		}
		list[n].name = strndup((const char *)k.mv_data + 8,
				       k.mv_size - 8);
		if (list[n].name == NULL)
			abort();
		memcpy(&list[n].rec, v.mv_data, sizeof(list[n].rec));
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_mailboxes_free(list, n);
		*error_r = store_fail("mailbox list", rc);
		return -1;
	}
	*list_r = list;
	*count_r = n;
	return 0;
}

void
store_mailboxes_free(struct store_mailbox_info *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i].name);
	free(list);
}

int
store_messages_list(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		    struct store_msg **msgs_r, size_t *count_r,
		    const char **error_r)
{
	MDB_cursor *cur;
	uint8_t prefix[8];
	be64(prefix, mbox_id);
	int rc = mdb_cursor_open(txn, st->messages, &cur);
	if (rc != 0) {
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	struct store_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	MDB_val k = {8, prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 12 &&
	       memcmp(k.mv_data, prefix, 8) == 0) {
		if (v.mv_size != sizeof(struct store_msg_rec)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			msgs = realloc(msgs, cap * sizeof(*msgs));
			if (msgs == NULL)
				abort();
		}
		msgs[n].uid = get_be32((const uint8_t *)k.mv_data + 8);
		memcpy(&msgs[n].rec, v.mv_data, sizeof(msgs[n].rec));
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(msgs);
		*error_r = store_fail("message list", rc);
		return -1;
	}
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

int
store_message_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		  uint32_t uid, struct store_msg_rec *r, const char **error_r)
{
	uint8_t key[12];
	be64(key, mbox_id);
	be32(key + 8, uid);
	MDB_val k = {12, key}, v;
	int rc = mdb_get(txn, st->messages, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != sizeof(*r)) {
		*error_r = store_fail("message record", rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	memcpy(r, v.mv_data, sizeof(*r));
	return 0;
}

int
store_body_get(struct store *st, MDB_txn *txn, uint64_t body_id,
	       const char **data_r, size_t *len_r, const char **error_r)
{
	uint8_t key[8];
	be64(key, body_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->bodies, &k, &v);
	if (rc != 0) {
		*error_r = store_fail("message body", rc);
		return -1;
	}
	*data_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

/* -- writes ---------------------------------------------------------------*/

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

static const struct {
	const char *name;
	enum store_special_use su;
} standard_folders[] = {
	{"INBOX", STORE_SU_NONE},    {"Sent", STORE_SU_SENT},
	{"Drafts", STORE_SU_DRAFTS}, {"Trash", STORE_SU_TRASH},
	{"Junk", STORE_SU_JUNK},     {"Archive", STORE_SU_ARCHIVE},
};

static int
mailbox_create(struct store *st, MDB_txn *txn, uint64_t user_num,
	       const char *name, enum store_special_use su)
{
	uint8_t key[512];
	size_t klen = mailbox_key(key, sizeof(key), user_num, name);
	if (klen == 0)
		return EINVAL;
	struct store_mailbox_rec rec = {0};
	int rc = meta_next(st, txn, "next_mbox", &rec.mbox_id);
	if (rc != 0)
		return rc;
	/* UIDVALIDITY: creation time, made unique by the mailbox counter. */
	rec.uidvalidity = (uint32_t)time(NULL) + (uint32_t)(rec.mbox_id % 1000);
	rec.uidnext = 1;
	rec.highestmodseq = 1;
	rec.special_use = su;
	rec.subscribed = 1;
	MDB_val k = {klen, key}, v = {sizeof(rec), &rec};
	rc = mdb_put(txn, st->mailboxes, &k, &v, MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	uint8_t idkey[8];
	be64(idkey, rec.mbox_id);
	MDB_val ik = {8, idkey};
	return mdb_put(txn, st->mboxids, &ik, &k, MDB_NOOVERWRITE);
}

int
store_provision(struct store *st, const char *mailbox_id,
		const char **error_r)
{
	MDB_txn *txn;
	struct store_user_rec u;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		*error_r = store_fail("write transaction", rc);
		return -1;
	}
	if (mailbox_id[0] == '\0' || strlen(mailbox_id) > 255) {
		mdb_txn_abort(txn);
		*error_r = "invalid mailbox id";
		return -1;
	}
	rc = store_user_get(st, txn, mailbox_id, &u, error_r);
	if (rc == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	memset(&u, 0, sizeof(u));
	u.version = 1;
	u.created = (int64_t)time(NULL);
	rc = meta_next(st, txn, "next_user", &u.user_num);
	if (rc == 0) {
		MDB_val k = {strlen(mailbox_id), (void *)(uintptr_t)mailbox_id};
		MDB_val v = {sizeof(u), &u};
		rc = mdb_put(txn, st->users, &k, &v, MDB_NOOVERWRITE);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(standard_folders) /
						   sizeof(standard_folders[0]);
	     i++)
		rc = mailbox_create(st, txn, u.user_num,
				    standard_folders[i].name,
				    standard_folders[i].su);
	if (rc != 0) {
		mdb_txn_abort(txn);
		*error_r = store_fail("provision", rc);
		return -1;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		*error_r = store_fail("commit", rc);
		return -1;
	}
	return 0;
}

/* Stores the bytes once: returns the existing body with one more
 * reference when the same bytes are already there. */
static int
body_put(struct store *st, MDB_txn *txn, const void *data, size_t len,
	 uint64_t *body_id_r)
{
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256(data, len, hash);
	MDB_val hk = {sizeof(hash), hash}, hv;
	uint8_t idkey[8];
	uint32_t refs;
	int rc = mdb_get(txn, st->bodyhash, &hk, &hv);
	if (rc == 0 && hv.mv_size == 8) {
		uint64_t id = get_be64(hv.mv_data);
		be64(idkey, id);
		MDB_val rk = {8, idkey}, rv;
		rc = mdb_get(txn, st->bodyrefs, &rk, &rv);
		if (rc != 0 || rv.mv_size != sizeof(refs))
			return rc ? rc : MDB_CORRUPTED;
		memcpy(&refs, rv.mv_data, sizeof(refs));
		refs++;
		rv.mv_size = sizeof(refs);
		rv.mv_data = &refs;
		rc = mdb_put(txn, st->bodyrefs, &rk, &rv, 0);
		*body_id_r = id;
		return rc;
	}
	if (rc != MDB_NOTFOUND && rc != 0)
		return rc;
	uint64_t id;
	if ((rc = meta_next(st, txn, "next_body", &id)) != 0)
		return rc;
	be64(idkey, id);
	MDB_val k = {8, idkey}, v = {len, NULL};
	rc = mdb_put(txn, st->bodies, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
	if (rc != 0)
		return rc;
	memcpy(v.mv_data, data, len);
	refs = 1;
	MDB_val rv = {sizeof(refs), &refs};
	if ((rc = mdb_put(txn, st->bodyrefs, &k, &rv, 0)) != 0)
		return rc;
	MDB_val idv = {8, idkey};
	if ((rc = mdb_put(txn, st->bodyhash, &hk, &idv, 0)) != 0)
		return rc;
	*body_id_r = id;
	return 0;
}

int
store_append(struct store *st, const char *mailbox_id, const char *mbox_name,
	     const void *data, size_t len, uint32_t flags,
	     int64_t internaldate, uint32_t *uid_r, const char **error_r)
{
	MDB_txn *txn;
	struct store_user_rec u;
	struct store_mailbox_rec mb;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		*error_r = store_fail("write transaction", rc);
		return -1;
	}
	rc = store_user_get(st, txn, mailbox_id, &u, error_r);
	if (rc != 0) {
		mdb_txn_abort(txn);
		if (rc > 0)
			*error_r = "no such user in this store";
		return -1;
	}
	rc = store_mailbox_get(st, txn, u.user_num, mbox_name, &mb, error_r);
	if (rc != 0) {
		mdb_txn_abort(txn);
		if (rc > 0)
			*error_r = "no such mailbox";
		return -1;
	}
	struct store_msg_rec m = {0};
	rc = body_put(st, txn, data, len, &m.body_id);
	if (rc != 0)
		goto fail;
	uint32_t uid = mb.uidnext++;
	m.size = len;
	m.internaldate = internaldate;
	m.flags = flags;
	m.modseq = ++mb.highestmodseq;
	mb.messages++;
	if (!(flags & STORE_F_SEEN))
		mb.unseen++;
	mb.size += len;
	uint8_t key[12];
	be64(key, mb.mbox_id);
	be32(key + 8, uid);
	MDB_val k = {12, key}, v = {sizeof(m), &m};
	if ((rc = mdb_put(txn, st->messages, &k, &v, MDB_NOOVERWRITE)) != 0)
		goto fail;
	uint8_t mkey[512];
	size_t mklen = mailbox_key(mkey, sizeof(mkey), u.user_num, mbox_name);
	MDB_val mk = {mklen, mkey}, mv = {sizeof(mb), &mb};
	if ((rc = mdb_put(txn, st->mailboxes, &mk, &mv, 0)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		*error_r = store_fail("commit", rc);
		return -1;
	}
	*uid_r = uid;
	return 0;
fail:
	mdb_txn_abort(txn);
	*error_r = store_fail("append", rc);
	return -1;
}

int
store_flags_add(struct store *st, uint64_t mbox_id, uint32_t uid,
		uint32_t flags, const char **error_r)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		*error_r = store_fail("write transaction", rc);
		return -1;
	}
	uint8_t key[12];
	be64(key, mbox_id);
	be32(key + 8, uid);
	MDB_val k = {12, key}, v;
	struct store_msg_rec m;
	rc = mdb_get(txn, st->messages, &k, &v);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0; /* expunged meanwhile */
	}
	if (rc != 0 || v.mv_size != sizeof(m))
		goto fail;
	memcpy(&m, v.mv_data, sizeof(m));
	if ((m.flags & flags) == flags) {
		mdb_txn_abort(txn);
		return 0;
	}
	/* The mailbox record holds highestmodseq and the unseen count. */
	uint8_t idkey[8], mkey[512];
	be64(idkey, mbox_id);
	MDB_val ik = {8, idkey}, mk, mv;
	struct store_mailbox_rec mb;
	if ((rc = mdb_get(txn, st->mboxids, &ik, &mk)) != 0)
		goto fail;
	if (mk.mv_size > sizeof(mkey)) {
		rc = MDB_CORRUPTED;
		goto fail;
	}
	memcpy(mkey, mk.mv_data, mk.mv_size);
	mk.mv_data = mkey;
	if ((rc = mdb_get(txn, st->mailboxes, &mk, &mv)) != 0)
		goto fail;
	if (mv.mv_size != sizeof(mb)) {
		rc = MDB_CORRUPTED;
		goto fail;
	}
	memcpy(&mb, mv.mv_data, sizeof(mb));
	if ((flags & STORE_F_SEEN) && !(m.flags & STORE_F_SEEN) &&
	    mb.unseen > 0)
		mb.unseen--;
	m.flags |= flags;
	m.modseq = ++mb.highestmodseq;
	mv.mv_size = sizeof(mb);
	mv.mv_data = &mb;
	if ((rc = mdb_put(txn, st->mailboxes, &mk, &mv, 0)) != 0)
		goto fail;
	v.mv_size = sizeof(m);
	v.mv_data = &m;
	if ((rc = mdb_put(txn, st->messages, &k, &v, 0)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		*error_r = store_fail("commit", rc);
		return -1;
	}
	return 0;
fail:
	mdb_txn_abort(txn);
	*error_r = store_fail("store flags", rc ? rc : MDB_CORRUPTED);
	return -1;
}

/* Drops one reference to a body; the last one removes the bytes and the
 * hash entry. */
static int
body_unref(struct store *st, MDB_txn *txn, uint64_t body_id)
{
	uint8_t key[8];
	uint32_t refs;
	be64(key, body_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->bodyrefs, &k, &v);
	if (rc != 0 || v.mv_size != sizeof(refs))
		return rc ? rc : MDB_CORRUPTED;
	memcpy(&refs, v.mv_data, sizeof(refs));
	if (refs > 1) {
		refs--;
		v.mv_size = sizeof(refs);
		v.mv_data = &refs;
		return mdb_put(txn, st->bodyrefs, &k, &v, 0);
	}
	MDB_val b;
	if ((rc = mdb_get(txn, st->bodies, &k, &b)) != 0)
		return rc;
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256(b.mv_data, b.mv_size, hash);
	MDB_val hk = {sizeof(hash), hash};
	rc = mdb_del(txn, st->bodyhash, &hk, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_del(txn, st->bodies, &k, NULL)) != 0)
		return rc;
	return mdb_del(txn, st->bodyrefs, &k, NULL);
}

/* Reads the mailbox record of mbox_id and its key (into keybuf). */
static int
mailbox_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
	      uint8_t *keybuf, size_t keysize, MDB_val *key_r,
	      struct store_mailbox_rec *mb)
{
	uint8_t idkey[8];
	be64(idkey, mbox_id);
	MDB_val ik = {8, idkey}, mk, mv;
	int rc = mdb_get(txn, st->mboxids, &ik, &mk);
	if (rc != 0)
		return rc;
	if (mk.mv_size > keysize)
		return MDB_CORRUPTED;
	memcpy(keybuf, mk.mv_data, mk.mv_size);
	key_r->mv_size = mk.mv_size;
	key_r->mv_data = keybuf;
	if ((rc = mdb_get(txn, st->mailboxes, key_r, &mv)) != 0)
		return rc;
	if (mv.mv_size != sizeof(*mb))
		return MDB_CORRUPTED;
	memcpy(mb, mv.mv_data, sizeof(*mb));
	return 0;
}

int
store_expunge(struct store *st, uint64_t mbox_id, const uint32_t *uids,
	      size_t n, const uint32_t *retrieved, size_t nretrieved,
	      int64_t now, const char **error_r)
{
	MDB_txn *txn;
	uint8_t mkey[512];
	MDB_val mk;
	struct store_mailbox_rec mb;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		*error_r = store_fail("write transaction", rc);
		return -1;
	}
	if ((rc = mailbox_by_id(st, txn, mbox_id, mkey, sizeof(mkey), &mk,
				&mb)) != 0)
		goto fail;
	uint64_t modseq = ++mb.highestmodseq;
	for (size_t i = 0; i < nretrieved; i++) {
		uint8_t key[12];
		struct store_msg_rec m;
		be64(key, mbox_id);
		be32(key + 8, retrieved[i]);
		MDB_val k = {12, key}, v;
		rc = mdb_get(txn, st->messages, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0 || v.mv_size != sizeof(m)) {
			rc = rc ? rc : MDB_CORRUPTED;
			goto fail;
		}
		memcpy(&m, v.mv_data, sizeof(m));
		if (m.pop3_retrieved != 0)
			continue;
		m.pop3_retrieved = (uint32_t)now;
		v.mv_size = sizeof(m);
		v.mv_data = &m;
		if ((rc = mdb_put(txn, st->messages, &k, &v, 0)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t key[12];
		struct store_msg_rec m;
		be64(key, mbox_id);
		be32(key + 8, uids[i]);
		MDB_val k = {12, key}, v;
		rc = mdb_get(txn, st->messages, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue; /* expunged by someone else first */
		if (rc != 0 || v.mv_size != sizeof(m)) {
			rc = rc ? rc : MDB_CORRUPTED;
			goto fail;
		}
		memcpy(&m, v.mv_data, sizeof(m));
		if ((rc = mdb_del(txn, st->messages, &k, NULL)) != 0)
			goto fail;
		if ((rc = body_unref(st, txn, m.body_id)) != 0)
			goto fail;
		MDB_val ev = {sizeof(modseq), &modseq};
		if ((rc = mdb_put(txn, st->expunged, &k, &ev, 0)) != 0)
			goto fail;
		if (mb.messages > 0)
			mb.messages--;
		if (!(m.flags & STORE_F_SEEN) && mb.unseen > 0)
			mb.unseen--;
		mb.size = mb.size >= m.size ? mb.size - m.size : 0;
	}
	MDB_val mv = {sizeof(mb), &mb};
	if ((rc = mdb_put(txn, st->mailboxes, &mk, &mv, 0)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		*error_r = store_fail("commit", rc);
		return -1;
	}
	return 0;
fail:
	mdb_txn_abort(txn);
	*error_r = store_fail("expunge", rc);
	return -1;
}

int
store_mailbox_get_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			struct store_mailbox_rec *r, const char **error_r)
{
	uint8_t key[512];
	MDB_val k;
	int rc = mailbox_by_id(st, txn, mbox_id, key, sizeof(key), &k, r);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0) {
		*error_r = store_fail("mailbox record", rc);
		return -1;
	}
	return 0;
}
