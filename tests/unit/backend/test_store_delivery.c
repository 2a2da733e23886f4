/* test_store_delivery.c - delivery records: recorded once, found by the
 * same id, mailbox and address only, expired in time order in batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/store/store.h"

struct rec_args {
	const char *id, *mbox, *addr;
	int64_t when;
};

static int
rec_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct rec_args *a = vargs;
	uint8_t key[STORE_DELIVERY_KEY];
	store_delivery_key(a->id, a->mbox, a->addr, key);
	return store_delivery_record(st, txn, key, a->when);
}

static void
record(struct store *st, const char *id, const char *mbox, const char *addr,
       int64_t when)
{
	char err[STORE_ERR_SIZE];
	struct rec_args a = {id, mbox, addr, when};
	assert_int_equal(store_run(st, rec_op, &a, err), 0);
}

static int
seen(struct store *st, const char *id, const char *mbox, const char *addr)
{
	MDB_txn *txn;
	const char *err;
	uint8_t key[STORE_DELIVERY_KEY];
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	store_delivery_key(id, mbox, addr, key);
	int rc = store_delivery_seen(st, txn, key, &err);
	store_read_end(&txn);
	assert_true(rc == 0 || rc == 1);
	return rc == 0;
}

static int64_t
count(struct store *st)
{
	MDB_txn *txn;
	const char *err;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	int64_t n = store_delivery_count(st, txn);
	store_read_end(&txn);
	return n;
}

static struct store *
open_store(char *dir, size_t size)
{
	struct store *st;
	const char *err;
	snprintf(dir, size, "/tmp/portico-test-delivery-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (store_open(dir, 64 << 20, &st, &err) != 0)
		fail_msg("store_open: %s", err);
	return st;
}

static void
remove_store(struct store **st, const char *dir)
{
	char path[512];
	store_close(st);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

static void
test_record_and_find(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	assert_false(seen(st, "be1.0001.100", "m1", "a@x.example"));
	record(st, "be1.0001.100", "m1", "a@x.example", 1000);
	assert_true(seen(st, "be1.0001.100", "m1", "a@x.example"));
	/* Another id, mailbox or address is another delivery. */
	assert_false(seen(st, "be1.0002.100", "m1", "a@x.example"));
	assert_false(seen(st, "be1.0001.100", "m2", "a@x.example"));
	assert_false(seen(st, "be1.0001.100", "m1", "b@x.example"));
	/* The parts are kept apart: "a" "bc" is not "ab" "c". */
	record(st, "a", "bc", "z", 1000);
	assert_false(seen(st, "ab", "c", "z"));
	/* Recording twice keeps one record. */
	record(st, "be1.0001.100", "m1", "a@x.example", 2000);
	assert_int_equal(count(st), 2);
	remove_store(&st, dir);
}

static void
test_prune_in_batches(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	char id[32];
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "be.%04d.1", i);
		record(st, id, "m", "a@x.example", 1000 + i);
	}
	char err[STORE_ERR_SIZE];
	/* Before 1020: 20 records, removed 8 at a time. */
	struct store_delivery_prune_args p = {.before = 1020, .max = 8};
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 8);
	assert_true(p.more_out);
	assert_int_equal(count(st), 17);
	assert_false(seen(st, "be.0000.1", "m", "a@x.example"));
	assert_false(seen(st, "be.0007.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0008.1", "m", "a@x.example"));
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 8);
	assert_true(p.more_out);
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 4);
	assert_false(p.more_out);
	assert_int_equal(count(st), 5);
	assert_false(seen(st, "be.0019.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0020.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0024.1", "m", "a@x.example"));
	/* Nothing older left: nothing removed. */
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 0);
	assert_false(p.more_out);
	assert_int_equal(count(st), 5);
	remove_store(&st, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_and_find),
		cmocka_unit_test(test_prune_in_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
