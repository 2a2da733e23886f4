/* store_queue.c - the transport queue's records in the store. */
#include "backend/store/store_int.h"

#include <stdio.h>
#include <string.h>

static char queue_error[256];

static int
get_rec(MDB_txn *txn, MDB_dbi dbi, uint64_t id, const void **data_r,
	size_t *len_r, const char **error_r)
{
	uint8_t key[8];
	be64(key, id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0) {
		snprintf(queue_error, sizeof(queue_error), "queue: %s",
			 store_strerror(rc));
		*error_r = queue_error;
		return -1;
	}
	*data_r = v.mv_data;
	*len_r = v.mv_size;
	return 0;
}

int
store_queue_get(struct store *st, MDB_txn *txn, uint64_t id,
		const void **entry_r, size_t *len_r, const char **error_r)
{
	return get_rec(txn, st->queue, id, entry_r, len_r, error_r);
}

int
store_queue_msg_get(struct store *st, MDB_txn *txn, uint64_t id,
		    const char **data_r, size_t *len_r, const char **error_r)
{
	const void *d;
	int rc = get_rec(txn, st->queuemsg, id, &d, len_r, error_r);
	if (rc == 0)
		*data_r = d;
	return rc;
}

int
store_queue_next_id(struct store *st, MDB_txn *txn, uint64_t *id_r)
{
	static const char name[] = "next_queue";
	MDB_val k = {sizeof(name) - 1, (void *)(uintptr_t)name}, v;
	uint64_t next = 1;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(next))
		memcpy(&next, v.mv_data, sizeof(next));
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*id_r = next++;
	v.mv_size = sizeof(next);
	v.mv_data = &next;
	return mdb_put(txn, st->meta, &k, &v, 0);
}

static int
put_rec(MDB_txn *txn, MDB_dbi dbi, uint64_t id, const void *data,
	size_t len)
{
	uint8_t key[8];
	be64(key, id);
	MDB_val k = {8, key}, v = {len, NULL};
	int rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
	if (rc == 0 && len > 0)
		memcpy(v.mv_data, data, len);
	return rc;
}

int
store_queue_put(struct store *st, MDB_txn *txn, uint64_t id,
		const void *entry, size_t len)
{
	return put_rec(txn, st->queue, id, entry, len);
}

int
store_queue_msg_put(struct store *st, MDB_txn *txn, uint64_t id,
		    const void *data, size_t len)
{
	return put_rec(txn, st->queuemsg, id, data, len);
}

int
store_queue_del(struct store *st, MDB_txn *txn, uint64_t id)
{
	uint8_t key[8];
	be64(key, id);
	MDB_val k = {8, key};
	int rc = mdb_del(txn, st->queue, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rc = mdb_del(txn, st->queuemsg, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
