/* store.c - LMDB mail store. */
#include "backend/store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

static char store_error[512];

const char *
store_strerror(int rc)
{
	return rc > 0 && rc < 200 ? strerror(rc) : mdb_strerror(rc);
}

static const char *
store_fail(const char *what, int rc)
{
	snprintf(store_error, sizeof(store_error), "%.384s: %s", what,
		 store_strerror(rc));
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

/* The owner lock: an open-file-description lock (not lost when another
 * descriptor of the file closes, nor shared with a child) on
 * STORE_OWNER_FILE, which holds the owner's pid for the message of the
 * next one. */
static int
owner_path(const char *dir, char path[PATH_MAX], const char **error_r)
{
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", dir, STORE_OWNER_FILE) >=
	    PATH_MAX) {
		*error_r = "store: the directory's name is too long";
		return -1;
	}
	return 0;
}

static long
owner_pid(int fd)
{
	char b[24];
	ssize_t n = pread(fd, b, sizeof(b) - 1, 0);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	return strtol(b, NULL, 10);
}

int
store_claim(const char *dir, const char **error_r)
{
	char path[PATH_MAX];
	if (owner_path(dir, path, error_r) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = store_fail(dir, errno);
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = store_fail(path, errno);
		return -1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == ENOLCK || errno == EINVAL || errno == EOPNOTSUPP) {
			/* a file system without locks (NFS mounted nolock) */
			snprintf(store_error, sizeof(store_error),
				 "%.300s: %s: one backend per store is not "
				 "enforced here",
				 path, strerror(errno));
			*error_r = store_error;
			close(fd);
			return STORE_CLAIM_NO_LOCKS;
		}
		if (errno == EAGAIN || errno == EACCES) {
			snprintf(store_error, sizeof(store_error),
				 "%s is in use by another backend (pid %ld): "
				 "a store has one backend",
				 dir, owner_pid(fd));
			*error_r = store_error;
		} else {
			*error_r = store_fail(path, errno);
		}
		close(fd);
		return -1;
	}
	char b[24];
	int n = snprintf(b, sizeof(b), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, b, (size_t)n, 0) != n) {
		*error_r = store_fail(path, errno);
		close(fd);
		return -1;
	}
	return fd;
}

int
store_owner(const char *dir, long *pid_r, const char **error_r)
{
	char path[PATH_MAX];
	if (owner_path(dir, path, error_r) < 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		*error_r = store_fail(path, errno);
		return -1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int rc = fcntl(fd, F_OFD_GETLK, &fl);
	if (rc < 0)
		*error_r = store_fail(path, errno);
	else if (fl.l_type == F_UNLCK)
		rc = 0;
	else {
		*pid_r = owner_pid(fd);
		rc = 1;
	}
	close(fd);
	return rc;
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
	st->max_expunge_records = UINT64_MAX;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = store_fail(dir, errno);
		free(st);
		return -1;
	}
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 32)) != 0 ||
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
		{"messages", &st->messages},   {"modseqs", &st->modseqs},
		{"bodymeta", &st->bodymeta},   {"keywords", &st->keywords},
		{"subs", &st->subs},
		{"bodies", &st->bodies},       {"bodyrefs", &st->bodyrefs},
		{"bodyhash", &st->bodyhash},   {"expunged", &st->expunged},
		{"queue", &st->queue},         {"queuemsg", &st->queuemsg},
		{"deliveries", &st->deliveries},
		{"deliveryage", &st->deliveryage},
		{"kicks", &st->kicks},
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
		if (ver == 2) {
			/* Expunge records by modseq (store_expunged.c). */
			rc = store_expunged_migrate(st, txn);
			if (rc != 0) {
				*error_r = store_fail("schema 2 -> 3", rc);
				goto fail;
			}
			ver = STORE_SCHEMA_VERSION;
			v.mv_size = sizeof(ver);
			v.mv_data = &ver;
			rc = mdb_put(txn, st->meta, &k, &v, 0);
		} else if (ver != STORE_SCHEMA_VERSION) {
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
	store_writer_stop(st);
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

size_t
store_mailbox_key(uint8_t *out, size_t outsize, uint64_t user_num,
		  const char *name)
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
	uint8_t key[STORE_MAX_KEY + 1];
	size_t klen = store_mailbox_key(key, sizeof(key), user_num, name);
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

/* store_msg_reader states: not placed yet; at message at_uid of the
 * mailbox; no message of the mailbox from UID at_uid on. */
enum { READER_NONE, READER_AT, READER_END };

int
store_msg_reader_open(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		      struct store_msg_reader *r, const char **error_r)
{
	int rc = mdb_cursor_open(txn, st->messages, &r->cur);
	if (rc != 0) {
		r->cur = NULL;
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	r->mbox_id = mbox_id;
	r->state = READER_NONE;
	r->at_uid = 0;
	return 0;
}

/* Where the cursor landed (rc of mdb_cursor_get): at a message of the
 * mailbox, or past its last one (from UID past on there is none). */
static int
reader_landed(struct store_msg_reader *r, int rc, const MDB_val *k,
	      const MDB_val *v, uint32_t uid, uint32_t past,
	      struct store_msg_rec *rec, const char **error_r)
{
	uint8_t prefix[8];
	be64(prefix, r->mbox_id);
	if (rc == MDB_NOTFOUND ||
	    (rc == 0 &&
	     (k->mv_size != 12 || memcmp(k->mv_data, prefix, 8) != 0))) {
		r->state = READER_END;
		r->at_uid = past;
		return 1;
	}
	if (rc != 0 || v->mv_size != sizeof(*rec)) {
		r->state = READER_NONE;
		*error_r = store_fail("message record",
				      rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	r->state = READER_AT;
	r->at_uid = get_be32((const uint8_t *)k->mv_data + 8);
	if (r->at_uid != uid)
		return 1;
	memcpy(rec, v->mv_data, sizeof(*rec));
	return 0;
}

int
store_msg_reader_get(struct store_msg_reader *r, uint32_t uid,
		     struct store_msg_rec *rec, const char **error_r)
{
	MDB_val k, v;
	int rc;
	if (r->state == READER_END && uid >= r->at_uid)
		return 1;
	if (r->state == READER_AT && uid == r->at_uid) {
		rc = mdb_cursor_get(r->cur, &k, &v, MDB_GET_CURRENT);
		return reader_landed(r, rc, &k, &v, uid, uid, rec, error_r);
	}
	if (r->state == READER_AT && uid > r->at_uid) {
		/* The next message is most often the one asked for; if it
		   is beyond it, the one asked for is not there. */
		uint32_t from = r->at_uid + 1;
		rc = mdb_cursor_get(r->cur, &k, &v, MDB_NEXT);
		rc = reader_landed(r, rc, &k, &v, uid, from, rec, error_r);
		if (rc <= 0 || r->state == READER_END || r->at_uid > uid)
			return rc;
	}
	uint8_t key[12];
	be64(key, r->mbox_id);
	be32(key + 8, uid);
	k.mv_size = sizeof(key);
	k.mv_data = key;
	rc = mdb_cursor_get(r->cur, &k, &v, MDB_SET_RANGE);
	return reader_landed(r, rc, &k, &v, uid, uid, rec, error_r);
}

void
store_msg_reader_close(struct store_msg_reader *r)
{
	if (r->cur != NULL)
		mdb_cursor_close(r->cur);
	r->cur = NULL;
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

/* -- more reads -----------------------------------------------------------*/

int
store_mailbox_get_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			struct store_mailbox_rec *r, const char **error_r)
{
	uint8_t idkey[8];
	be64(idkey, mbox_id);
	MDB_val ik = {8, idkey}, mk, mv;
	int rc = mdb_get(txn, st->mboxids, &ik, &mk);
	if (rc == 0)
		rc = mdb_get(txn, st->mailboxes, &mk, &mv);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || mv.mv_size != sizeof(*r)) {
		*error_r = store_fail("mailbox record", rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	memcpy(r, mv.mv_data, sizeof(*r));
	return 0;
}

int
store_mailbox_name_by_id(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			 uint64_t *user_num_r, char *name, size_t size,
			 const char **error_r)
{
	uint8_t idkey[8];
	be64(idkey, mbox_id);
	MDB_val ik = {8, idkey}, mk;
	int rc = mdb_get(txn, st->mboxids, &ik, &mk);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || mk.mv_size < 8 || mk.mv_size - 8 >= size) {
		*error_r = store_fail("mailbox id", rc ? rc : MDB_CORRUPTED);
		return -1;
	}
	const uint8_t *k = mk.mv_data;
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | k[i];
	*user_num_r = u;
	memcpy(name, k + 8, mk.mv_size - 8);
	name[mk.mv_size - 8] = '\0';
	return 0;
}

int
store_keywords_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		   const char **names_r, size_t *len_r, const char **error_r)
{
	uint8_t key[8];
	be64(key, mbox_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->keywords, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*names_r = "";
		*len_r = 0;
		return 0;
	}
	if (rc != 0) {
		*error_r = store_fail("keywords", rc);
		return -1;
	}
	*names_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

int
store_bodymeta_get(struct store *st, MDB_txn *txn, uint64_t body_id,
		   const void **data_r, size_t *len_r, const char **error_r)
{
	uint8_t key[8];
	be64(key, body_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->bodymeta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0) {
		*error_r = store_fail("body structure", rc);
		return -1;
	}
	*data_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

/* UIDs changed after modseq, from modseqs: mbox | modseq -> uid. */
int
store_changed_since(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		    uint64_t modseq, uint32_t **uids_r, size_t *count_r,
		    const char **error_r)
{
	MDB_cursor *cur;
	uint8_t start[16];
	be64(start, mbox_id);
	be64(start + 8, modseq + 1);
	int rc = mdb_cursor_open(txn, st->modseqs, &cur);
	if (rc != 0) {
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	MDB_val k = {16, start}, d;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 12 &&
	       get_be64(k.mv_data) == mbox_id) {
		if (d.mv_size != 4) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		memcpy(&v[n++], d.mv_data, 4);
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(v);
		*error_r = store_fail("index scan", rc);
		return -1;
	}
	*uids_r = v;
	*count_r = n;
	return 0;
}

int
store_subscriptions(struct store *st, MDB_txn *txn, uint64_t user_num,
		    char ***names_r, size_t *count_r, const char **error_r)
{
	MDB_cursor *cur;
	uint8_t prefix[8];
	be64(prefix, user_num);
	int rc = mdb_cursor_open(txn, st->subs, &cur);
	if (rc != 0) {
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	MDB_val k = {8, prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, prefix, 8) == 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				abort();
		}
		names[n] = strndup((const char *)k.mv_data + 8, k.mv_size - 8);
		if (names[n] == NULL)
			abort();
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_names_free(names, n);
		*error_r = store_fail("subscriptions", rc);
		return -1;
	}
	*names_r = names;
	*count_r = n;
	return 0;
}

void
store_names_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int
store_usage_get(struct store *st, MDB_txn *txn, uint64_t user_num,
		uint64_t *size_r, uint64_t *messages_r, const char **error_r)
{
	uint8_t key[9] = {'u'};
	uint64_t u[2] = {0, 0};
	be64(key + 1, user_num);
	MDB_val k = {9, key}, v;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(u))
		memcpy(u, v.mv_data, sizeof(u));
	else if (rc != MDB_NOTFOUND && rc != 0) {
		*error_r = store_fail("usage", rc);
		return -1;
	}
	*size_r = u[0];
	*messages_r = u[1];
	return 0;
}

int
store_walk(struct store *st, MDB_txn *txn, const char *db, const void *prefix,
	   size_t plen, store_walk_fn *fn, void *ctx, const char **error_r)
{
	const struct {
		const char *name;
		MDB_dbi dbi;
	} dbs[] = {
		{"meta", st->meta},           {"users", st->users},
		{"mailboxes", st->mailboxes}, {"mboxids", st->mboxids},
		{"subs", st->subs},           {"messages", st->messages},
		{"modseqs", st->modseqs},     {"expunged", st->expunged},
		{"keywords", st->keywords},   {"bodies", st->bodies},
		{"bodymeta", st->bodymeta},   {"bodyrefs", st->bodyrefs},
		{"bodyhash", st->bodyhash},   {"queue", st->queue},
		{"queuemsg", st->queuemsg},   {"deliveries", st->deliveries},
		{"deliveryage", st->deliveryage},
		{"kicks", st->kicks},
	};
	size_t i = 0;
	while (i < sizeof(dbs) / sizeof(dbs[0]) && strcmp(dbs[i].name, db) != 0)
		i++;
	if (i == sizeof(dbs) / sizeof(dbs[0])) {
		snprintf(store_error, sizeof(store_error),
			 "store: no database named %s", db);
		*error_r = store_error;
		return -1;
	}
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbs[i].dbi, &cur);
	if (rc != 0) {
		*error_r = store_fail("cursor", rc);
		return -1;
	}
	MDB_val k = {plen, (void *)(uintptr_t)prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0 && k.mv_size >= plen &&
	       (plen == 0 || memcmp(k.mv_data, prefix, plen) == 0)) {
		if (fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		*error_r = store_fail(db, rc);
		return -1;
	}
	return 0;
}
