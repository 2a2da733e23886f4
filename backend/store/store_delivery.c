/* store_delivery.c - delivery records: the recipients a sender's delivery
 * id already reached, and their expiry in time order. */
#include "backend/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static char delivery_error[256];

void
store_delivery_key(const char *delivery_id, const char *mailbox_id,
		   const char *address, uint8_t key[STORE_DELIVERY_KEY])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, delivery_id, strlen(delivery_id) + 1) != 1 ||
	    EVP_DigestUpdate(c, mailbox_id, strlen(mailbox_id) + 1) != 1 ||
	    EVP_DigestUpdate(c, address, strlen(address)) != 1 ||
	    EVP_DigestFinal_ex(c, key, NULL) != 1)
		abort();
	EVP_MD_CTX_free(c);
}

int
store_delivery_seen(struct store *st, MDB_txn *txn,
		    const uint8_t key[STORE_DELIVERY_KEY], const char **error_r)
{
	MDB_val k = {STORE_DELIVERY_KEY, (void *)(uintptr_t)key}, v;
	int rc = mdb_get(txn, st->deliveries, &k, &v);
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return 1;
	snprintf(delivery_error, sizeof(delivery_error), "deliveries: %s",
		 store_strerror(rc));
	*error_r = delivery_error;
	return -1;
}

int
store_delivery_record(struct store *st, MDB_txn *txn,
		      const uint8_t key[STORE_DELIVERY_KEY], int64_t when)
{
	uint8_t t[8], age[8 + STORE_DELIVERY_KEY];
	be64(t, (uint64_t)when);
	memcpy(age, t, 8);
	memcpy(age + 8, key, STORE_DELIVERY_KEY);
	MDB_val k = {STORE_DELIVERY_KEY, (void *)(uintptr_t)key},
		v = {8, t};
	int rc = mdb_put(txn, st->deliveries, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return 0;
	if (rc != 0)
		return rc;
	MDB_val ak = {sizeof(age), age}, av = {0, ""};
	return mdb_put(txn, st->deliveryage, &ak, &av, 0);
}

int
store_op_delivery_prune(struct store *st, MDB_txn *txn, void *vargs,
			char *err)
{
	struct store_delivery_prune_args *a = vargs;
	MDB_cursor *cur;
	MDB_val k, v;
	a->removed_out = 0;
	a->more_out = 0;
	int rc = mdb_cursor_open(txn, st->deliveryage, &cur);
	if (rc != 0)
		goto fail;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		if (k.mv_size != 8 + STORE_DELIVERY_KEY ||
		    (int64_t)get_be64(k.mv_data) >= a->before)
			break;
		if (a->removed_out == a->max) {
			a->more_out = 1;
			break;
		}
		MDB_val dk = {STORE_DELIVERY_KEY, (uint8_t *)k.mv_data + 8};
		rc = mdb_del(txn, st->deliveries, &dk, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		a->removed_out++;
	}
	mdb_cursor_close(cur);
	if (rc == 0 || rc == MDB_NOTFOUND)
		return 0;
fail:
	snprintf(err, STORE_ERR_SIZE, "deliveries: %s", store_strerror(rc));
	return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
}

int64_t
store_delivery_count(struct store *st, MDB_txn *txn)
{
	MDB_stat s;
	if (mdb_stat(txn, st->deliveries, &s) != 0)
		return -1;
	return (int64_t)s.ms_entries;
}

void
store_usage(struct store *st, uint64_t *used_r, uint64_t *map_r)
{
	MDB_envinfo info;
	MDB_stat stat;
	*used_r = *map_r = 0;
	if (mdb_env_info(st->env, &info) != 0 ||
	    mdb_env_stat(st->env, &stat) != 0)
		return;
	*used_r = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
	*map_r = info.me_mapsize;
}
