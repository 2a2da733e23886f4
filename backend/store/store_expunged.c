/* store_expunged.c - expunge records (QRESYNC, RFC 7162): what left each
 * mailbox at which modseq, in modseq order, at most
 * store->max_expunge_records per mailbox.
 *
 *   mbox u64 | modseq u64 | uid u32 -> ""   one expunged message
 *   mbox u64 | 0 u64 -> floor u64 | count u64
 *                                           the mailbox's bookkeeping: the
 *                                           records it holds, and the
 *                                           highest modseq of those removed
 *                                           to stay within the limit
 *
 * A client asking what vanished since a modseq below the floor gets an
 * answer that may say more than what changed (the caller reports every
 * UID no longer there: RFC 7162 allows VANISHED (EARLIER) to name UIDs
 * the client already knows are gone). */
#include "backend/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exp_meta {
	uint64_t floor, count;
};

static int
meta_get(struct store *st, MDB_txn *txn, uint64_t mbox_id,
	 struct exp_meta *m)
{
	uint8_t key[16];
	be64(key, mbox_id);
	be64(key + 8, 0);
	MDB_val k = {16, key}, v;
	memset(m, 0, sizeof(*m));
	int rc = mdb_get(txn, st->expunged, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size != 16)
		return MDB_CORRUPTED;
	m->floor = get_be64(v.mv_data);
	m->count = get_be64((const uint8_t *)v.mv_data + 8);
	return 0;
}

static int
meta_put(struct store *st, MDB_txn *txn, uint64_t mbox_id,
	 const struct exp_meta *m)
{
	uint8_t key[16], val[16];
	be64(key, mbox_id);
	be64(key + 8, 0);
	be64(val, m->floor);
	be64(val + 8, m->count);
	MDB_val k = {16, key}, v = {16, val};
	return mdb_put(txn, st->expunged, &k, &v, 0);
}

/* Removes the oldest records of the mailbox until at most max are left. */
static int
trim(struct store *st, MDB_txn *txn, uint64_t mbox_id, struct exp_meta *m,
     uint64_t max)
{
	MDB_cursor *cur;
	uint8_t start[16];
	be64(start, mbox_id);
	be64(start + 8, 1);
	int rc = mdb_cursor_open(txn, st->expunged, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {16, start}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && m->count > max) {
		if (k.mv_size != 20 || get_be64(k.mv_data) != mbox_id) {
			m->count = max; /* fewer than counted: believe them */
			break;
		}
		uint64_t ms = get_be64((const uint8_t *)k.mv_data + 8);
		rc = store_cursor_del_next(cur, &k, &v);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break; /* the operation fails: counts do not matter */
		if (ms > m->floor)
			m->floor = ms;
		m->count--;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_expunged_add(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		   uint32_t uid, uint64_t modseq)
{
	uint8_t key[20];
	be64(key, mbox_id);
	be64(key + 8, modseq);
	be32(key + 16, uid);
	MDB_val k = {20, key}, v = {0, ""};
	struct exp_meta m;
	int rc = meta_get(st, txn, mbox_id, &m);
	if (rc != 0)
		return rc;
	if ((rc = mdb_put(txn, st->expunged, &k, &v, MDB_NOOVERWRITE)) != 0 &&
	    rc != MDB_KEYEXIST)
		return rc;
	if (rc == 0)
		m.count++;
	uint64_t max = __atomic_load_n(&st->max_expunge_records,
				       __ATOMIC_RELAXED);
	if (m.count > max && (rc = trim(st, txn, mbox_id, &m, max)) != 0)
		return rc;
	return meta_put(st, txn, mbox_id, &m);
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int
store_vanished_since(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		     uint64_t modseq, uint32_t **uids_r, size_t *count_r,
		     int *exact_r, const char **error_r)
{
	static char verr[128];
	struct exp_meta m;
	MDB_cursor *cur;
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	*uids_r = NULL;
	*count_r = 0;
	int rc = meta_get(st, txn, mbox_id, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, st->expunged, &cur);
	if (rc != 0)
		goto fail;
	*exact_r = modseq >= m.floor;
	uint8_t start[16];
	be64(start, mbox_id);
	be64(start + 8, modseq + 1);
	MDB_val k = {16, start}, d;
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 20 && get_be64(k.mv_data) == mbox_id) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		v[n++] = get_be32((const uint8_t *)k.mv_data + 16);
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(v);
		goto fail;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), uid_cmp);
	*uids_r = v;
	*count_r = n;
	return 0;
fail:
	snprintf(verr, sizeof(verr), "expunge records: %s",
		 store_strerror(rc));
	*error_r = verr;
	return -1;
}

void
store_set_max_expunge_records(struct store *st, uint64_t max)
{
	__atomic_store_n(&st->max_expunge_records, max, __ATOMIC_RELAXED);
}

/* Schema 2 -> 3: expunge records were mbox | uid -> modseq. */
int
store_expunged_migrate(struct store *st, MDB_txn *txn)
{
	MDB_cursor *cur;
	struct old {
		uint64_t mbox, modseq;
		uint32_t uid;
	} *recs = NULL;
	size_t n = 0, cap = 0;
	int rc = mdb_cursor_open(txn, st->expunged, &cur);
	if (rc != 0)
		return rc;
	MDB_val k, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size == 12 && v.mv_size == 8) {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				recs = realloc(recs, cap * sizeof(*recs));
				if (recs == NULL)
					abort();
			}
			recs[n].mbox = get_be64(k.mv_data);
			recs[n].uid = get_be32((const uint8_t *)k.mv_data + 8);
			memcpy(&recs[n].modseq, v.mv_data, 8);
			n++;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		free(recs);
		return rc;
	}
	rc = mdb_drop(txn, st->expunged, 0);
	uint64_t keep = st->max_expunge_records;
	st->max_expunge_records = UINT64_MAX; /* trimmed on the next expunge */
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_expunged_add(st, txn, recs[i].mbox, recs[i].uid,
					recs[i].modseq);
	st->max_expunge_records = keep;
	free(recs);
	return rc;
}

int
store_expunged_raise_floor(struct store *st, MDB_txn *txn, uint64_t mbox_id,
			   uint64_t floor)
{
	struct exp_meta m;
	int rc = meta_get(st, txn, mbox_id, &m);
	if (rc != 0 || m.floor >= floor)
		return rc;
	m.floor = floor;
	return meta_put(st, txn, mbox_id, &m);
}

int
store_expunged_restore(struct store *st, MDB_txn *txn, uint64_t mbox_id,
		       const uint32_t *uids, const uint64_t *modseqs, size_t n,
		       uint64_t floor)
{
	/* The floor first: records dropped beyond the limit raise it. */
	struct exp_meta m;
	int rc = meta_get(st, txn, mbox_id, &m);
	if (rc != 0)
		return rc;
	m.floor = floor;
	if ((rc = meta_put(st, txn, mbox_id, &m)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_expunged_add(st, txn, mbox_id, uids[i], modseqs[i]);
	return rc;
}
