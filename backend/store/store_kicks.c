/* store_kicks.c - kick records: the accounts portico-admin kick named and
 * when, kept across restarts of the backend for backend.kick_memory.  One
 * record per account, keyed by its mailbox id in lower case (the backend
 * compares them without case), its value the time (8 bytes, big-endian,
 * ms since the epoch).  Kicks are an operator's acts, a few at a time:
 * the records are few (at most backend.kick_memory_entries) and trimming
 * reads them all. */
#include "backend/store/store_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char kicks_error[256];

/* The key of mailbox_id: lower case, at most 127 bytes. */
static size_t
kick_key(const char *mailbox_id, char key[128])
{
	size_t n = 0;
	for (; mailbox_id[n] != '\0' && n < 127; n++)
		key[n] = (char)tolower((unsigned char)mailbox_id[n]);
	key[n] = '\0';
	return n;
}

static int
kicks_fail(char *err, int rc)
{
	snprintf(err, STORE_ERR_SIZE, "kicks: %s", store_strerror(rc));
	return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
}

struct kick_rec {
	int64_t when;
	size_t klen;
	char key[128];
};

static int
kick_rec_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct kick_rec *)a)->when,
		y = ((const struct kick_rec *)b)->when;
	return (x > y) - (x < y);
}

/* Removes the records made before `before` and the oldest beyond max;
 * *removed_r: how many. */
static int
kicks_trim(struct store *st, MDB_txn *txn, int64_t before, size_t max,
	   size_t *removed_r, char *err)
{
	MDB_stat stat;
	int rc = mdb_stat(txn, st->kicks, &stat);
	if (rc != 0)
		return kicks_fail(err, rc);
	*removed_r = 0;
	size_t n = 0, cap = stat.ms_entries;
	if (cap == 0)
		return 0;
	struct kick_rec *recs = malloc(cap * sizeof(*recs));
	if (recs == NULL)
		abort();
	MDB_cursor *cur;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(txn, st->kicks, &cur)) != 0) {
		free(recs);
		return kicks_fail(err, rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct kick_rec *r = &recs[n++];
		r->when = v.mv_size == 8 ? (int64_t)get_be64(v.mv_data) : 0;
		r->klen = k.mv_size < 127 ? k.mv_size : 127;
		memcpy(r->key, k.mv_data, r->klen);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(recs);
		return kicks_fail(err, rc);
	}
	qsort(recs, n, sizeof(*recs), kick_rec_cmp);
	size_t drop = 0;
	while (drop < n && (recs[drop].when < before || n - drop > max))
		drop++;
	for (size_t i = 0; i < drop; i++) {
		MDB_val dk = {recs[i].klen, recs[i].key};
		rc = mdb_del(txn, st->kicks, &dk, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			free(recs);
			return kicks_fail(err, rc);
		}
	}
	free(recs);
	*removed_r = drop;
	return 0;
}

int
store_op_kick_put(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_kick_put_args *a = vargs;
	char key[128];
	uint8_t t[8];
	be64(t, (uint64_t)a->when);
	MDB_val k = {kick_key(a->mailbox_id, key), key}, v = {8, t};
	int rc = mdb_put(txn, st->kicks, &k, &v, 0);
	if (rc != 0)
		return kicks_fail(err, rc);
	MDB_stat stat;
	if ((rc = mdb_stat(txn, st->kicks, &stat)) != 0)
		return kicks_fail(err, rc);
	size_t removed;
	if (stat.ms_entries > a->max)
		return kicks_trim(st, txn, a->before, a->max, &removed, err);
	return 0;
}

int
store_op_kicks_trim(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct store_kicks_trim_args *a = vargs;
	return kicks_trim(st, txn, a->before, a->max, &a->removed_out, err);
}

int
store_kicks_list(struct store *st, MDB_txn *txn, store_kick_fn *fn,
		 void *ctx, const char **error_r)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, st->kicks, &cur);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char id[128];
		size_t n = k.mv_size < 127 ? k.mv_size : 127;
		memcpy(id, k.mv_data, n);
		id[n] = '\0';
		fn(ctx, id, v.mv_size == 8 ? (int64_t)get_be64(v.mv_data) : 0);
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	snprintf(kicks_error, sizeof(kicks_error), "kicks: %s",
		 store_strerror(rc));
	*error_r = kicks_error;
	return -1;
}
