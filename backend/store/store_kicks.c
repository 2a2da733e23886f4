/* store_kicks.c - kick records: the accounts portico-admin kick named and
 * when, kept across restarts of the backend for backend.kick_memory.  One
 * record per account, keyed by its mailbox id in lower case (the backend
 * compares them without case), its value the time (8 bytes, big-endian,
 * ms since the epoch).  Kicks are an operator's acts, a few at a time:
 * the records are few (at most backend.kick_memory_entries), and trimming,
 * which reads every record's time, runs once per tenth of them. */
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

static int
when_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t
rec_when(const MDB_val *v)
{
	return v->mv_size == 8 ? (int64_t)get_be64(v->mv_data) : 0;
}

/* Removes the records made before `before` and the oldest beyond keep;
 * *removed_r: how many.  Two passes: the times alone (8 bytes a record)
 * give the newest time to remove; then the keys of the records to remove
 * are collected and deleted. */
static int
kicks_trim(struct store *st, MDB_txn *txn, int64_t before, size_t keep,
	   size_t *removed_r, char *err)
{
	MDB_stat stat;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int64_t *whens = NULL;
	struct {
		size_t len;
		char key[127];
	} *drop = NULL;
	size_t n = 0, ndrop = 0;
	*removed_r = 0;
	int rc = mdb_stat(txn, st->kicks, &stat);
	if (rc != 0 || stat.ms_entries == 0)
		goto out;
	if ((whens = malloc(stat.ms_entries * sizeof(*whens))) == NULL)
		abort();
	if ((rc = mdb_cursor_open(txn, st->kicks, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     rc == 0 && n < stat.ms_entries;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		whens[n++] = rec_when(&v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	/* removed: every time up to cut (the newest one beyond keep), and
	   those before `before` */
	int64_t cut = INT64_MIN;
	if (n > keep) {
		qsort(whens, n, sizeof(*whens), when_cmp);
		cut = whens[n - keep - 1];
	}
	size_t room = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int64_t when = rec_when(&v);
		if (when >= before && when > cut)
			continue;
		if (ndrop == room) {
			room = room ? 2 * room : 64;
			if ((drop = realloc(drop, room * sizeof(*drop))) ==
			    NULL)
				abort();
		}
		drop[ndrop].len = k.mv_size < 127 ? k.mv_size : 127;
		memcpy(drop[ndrop].key, k.mv_data, drop[ndrop].len);
		ndrop++;
	}
	if (rc != MDB_NOTFOUND)
		goto out;
	rc = 0;
	mdb_cursor_close(cur);
	cur = NULL;
	for (size_t i = 0; i < ndrop && rc == 0; i++) {
		MDB_val dk = {drop[i].len, drop[i].key};
		rc = mdb_del(txn, st->kicks, &dk, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		*removed_r = ndrop;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	free(whens);
	free(drop);
	return rc == 0 ? 0 : kicks_fail(err, rc);
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
	/* over max: down to nine tenths of it, so that the records are
	   read once every tenth of max kicks, not at each */
	size_t removed;
	if (stat.ms_entries > a->max)
		return kicks_trim(st, txn, a->before, a->max - a->max / 10,
				  &removed, err);
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
		fn(ctx, id, rec_when(&v));
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
