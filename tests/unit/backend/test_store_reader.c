/* test_store_reader.c - store_msg_reader against store_message_get: the
 * same answer and record for every UID asked, in ascending order (the
 * stepping path), in descending and random order (the searching path),
 * for mailboxes at the start, in the middle and at the end of the
 * messages table, empty ones, and UIDs at 0 and UINT32_MAX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/store/store_int.h"
#include "tests/unit/backend/store_tmp.h"

struct put_args {
	uint64_t mbox;
	const uint32_t *uids;
	size_t n;
};

/* Message records written straight into the table, each with fields
 * that tell it from the others. */
static int
put_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct put_args *a = vargs;
	for (size_t i = 0; i < a->n; i++) {
		uint8_t key[12];
		be64(key, a->mbox);
		be32(key + 8, a->uids[i]);
		struct store_msg_rec m;
		memset(&m, 0, sizeof(m));
		m.body_id = a->mbox * 1000003u + a->uids[i];
		m.size = a->uids[i];
		m.modseq = a->mbox;
		m.flags = a->uids[i] % 7;
		MDB_val k = {sizeof(key), key}, v = {sizeof(m), &m};
		int rc = mdb_put(txn, st->messages, &k, &v, 0);
		if (rc != 0) {
			snprintf(err, STORE_ERR_SIZE, "%s", mdb_strerror(rc));
			return STORE_ERR_INTERNAL;
		}
	}
	return 0;
}

static void
put(struct store *st, uint64_t mbox, const uint32_t *uids, size_t n)
{
	char err[STORE_ERR_SIZE];
	struct put_args a = {mbox, uids, n};
	assert_int_equal(store_run(st, put_op, &a, err), 0);
}

/* Asks the reader for each of uids[] in the order given, and checks each
 * answer and record against store_message_get.  Returns how many were
 * found. */
static size_t
check(struct store *st, uint64_t mbox, const uint32_t *uids, size_t n)
{
	MDB_txn *txn;
	const char *err;
	struct store_msg_reader r;
	size_t found = 0;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	assert_int_equal(store_msg_reader_open(st, txn, mbox, &r, &err), 0);
	for (size_t i = 0; i < n; i++) {
		struct store_msg_rec want, got;
		memset(&want, 0xaa, sizeof(want));
		memset(&got, 0x55, sizeof(got));
		int wrc = store_message_get(st, txn, mbox, uids[i], &want, &err);
		int grc = store_msg_reader_get(&r, uids[i], &got, &err);
		if (wrc != grc)
			fail_msg("mailbox %llu uid %u (#%zu): reader %d, "
				 "store_message_get %d",
				 (unsigned long long)mbox, uids[i], i, grc, wrc);
		if (wrc == 0) {
			assert_memory_equal(&want, &got, sizeof(want));
			found++;
		}
	}
	store_msg_reader_close(&r);
	store_read_end(&txn);
	return found;
}

static void
test_reader_orders(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	/* Mailbox 7 in the middle, 2 first, 9 last; 8 and 1 empty. */
	const uint32_t m2[] = {1, 4, 100};
	const uint32_t m7[] = {2, 3, 5, 8, 9, 20, 21, 1000};
	const uint32_t m9[] = {0, 1, UINT32_MAX};
	put(st, 2, m2, 3);
	put(st, 7, m7, 8);
	put(st, 9, m9, 3);
	/* Ascending: dense, with gaps, past the last, far past it. */
	const uint32_t up[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
			       20, 21, 22, 999, 1000, 1001, 5000,
			       UINT32_MAX};
	assert_int_equal(check(st, 7, up, sizeof(up) / sizeof(up[0])), 8);
	/* Only what is there, then only what is not. */
	assert_int_equal(check(st, 7, m7, 8), 8);
	const uint32_t absent[] = {1, 4, 6, 7, 10, 19, 22, 999, 1001};
	assert_int_equal(check(st, 7, absent, 9), 0);
	/* Descending, repeated and back and forth. */
	const uint32_t down[] = {1001, 1000, 21, 20, 9, 8, 5, 3, 2, 1};
	assert_int_equal(check(st, 7, down, 10), 8);
	const uint32_t mixed[] = {5, 5, 3, 1000, 2, 22, 21, 21, 9, 0, 8};
	assert_int_equal(check(st, 7, mixed, 11), 9);
	/* After the end, then before it again. */
	const uint32_t back[] = {1000, 1001, 2000, 21, 1000, 3000};
	assert_int_equal(check(st, 7, back, 6), 3);
	/* The first and the last mailbox of the table, UID 0 and the
	   largest. */
	assert_int_equal(check(st, 2, up, sizeof(up) / sizeof(up[0])), 2);
	assert_int_equal(check(st, 2, m2, 3), 3);
	assert_int_equal(check(st, 9, up, sizeof(up) / sizeof(up[0])), 3);
	const uint32_t ends[] = {UINT32_MAX, 0, UINT32_MAX - 1, UINT32_MAX};
	assert_int_equal(check(st, 9, ends, 4), 3);
	/* Empty mailboxes before, between and after. */
	assert_int_equal(check(st, 1, up, sizeof(up) / sizeof(up[0])), 0);
	assert_int_equal(check(st, 8, up, sizeof(up) / sizeof(up[0])), 0);
	assert_int_equal(check(st, 10, up, sizeof(up) / sizeof(up[0])), 0);
	remove_store(&st, dir);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void
test_reader_random(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	srandom(8);
	/* Three neighbouring mailboxes of random UIDs up to 600. */
	for (uint64_t mbox = 3; mbox <= 5; mbox++) {
		uint32_t uids[600];
		size_t n = 0;
		for (uint32_t u = 1; u <= 600; u++)
			if (random() % 3 == 0)
				uids[n++] = u;
		put(st, mbox, uids, n);
	}
	for (int round = 0; round < 200; round++) {
		uint32_t q[300];
		size_t n = 1 + (size_t)(random() % 300);
		for (size_t i = 0; i < n; i++)
			q[i] = (uint32_t)(random() % 700);
		/* Half the rounds sorted, as sessions ask. */
		if (round % 2 == 0)
			qsort(q, n, sizeof(q[0]), cmp_u32);
		check(st, 3 + (uint64_t)(round % 3), q, n);
	}
	remove_store(&st, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_orders),
		cmocka_unit_test(test_reader_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
