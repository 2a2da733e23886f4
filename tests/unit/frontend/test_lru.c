/* test_lru.c - bounded keyed tables (frontend/lru.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "frontend/lru.h"

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

static struct lru_keyer keyer;

static int
setup_keyer(void **state)
{
	return lru_keyer_init(&keyer, secret, sizeof(secret));
}

static int
teardown_keyer(void **state)
{
	lru_keyer_free(&keyer);
	return 0;
}

static void
key(const char *text, unsigned char *out)
{
	lru_key(&keyer, "test", out, text, strlen(text),
		NULL);
}

static void
test_keys_are_length_prefixed(void **state)
{
	unsigned char a[LRU_KEY_SIZE], b[LRU_KEY_SIZE], c[LRU_KEY_SIZE];
	lru_key(&keyer, "d", a, "ab", (size_t)2, "c",
		(size_t)1, NULL);
	lru_key(&keyer, "d", b, "a", (size_t)1, "bc",
		(size_t)2, NULL);
	lru_key(&keyer, "e", c, "ab", (size_t)2, "c",
		(size_t)1, NULL);
	assert_memory_not_equal(a, b, LRU_KEY_SIZE);
	assert_memory_not_equal(a, c, LRU_KEY_SIZE);
	/* Long parts are hashed whole, never cut. */
	char big1[5000], big2[5000];
	memset(big1, 'x', sizeof(big1));
	memcpy(big2, big1, sizeof(big2));
	big2[4999] = 'y';
	lru_key(&keyer, "d", a, big1, sizeof(big1), NULL);
	lru_key(&keyer, "d", b, big2, sizeof(big2), NULL);
	assert_memory_not_equal(a, b, LRU_KEY_SIZE);
}

/* A key is HMAC-SHA256(secret, domain NUL, then each part as a 4-byte
 * big-endian length and its bytes): the value Python's hmac gives. */
static void
test_key_is_hmac_sha256(void **state)
{
	static const unsigned char want[LRU_KEY_SIZE] = {
		0x38, 0x01, 0x1d, 0xd9, 0xc8, 0xa3, 0x73, 0x39,
		0x89, 0x18, 0xbd, 0xb8, 0x8a, 0x59, 0x57, 0x34,
		0xd1, 0x5b, 0x30, 0x30, 0x60, 0xe1, 0xa7, 0xd6,
		0x0e, 0xd3, 0xa3, 0xb5, 0x7c, 0x53, 0x55, 0x77};
	unsigned char got[LRU_KEY_SIZE];
	key("abc", got);
	assert_memory_equal(got, want, LRU_KEY_SIZE);
	/* the prepared context is copied, never consumed */
	key("abc", got);
	assert_memory_equal(got, want, LRU_KEY_SIZE);
}

static void
test_put_get_evict(void **state)
{
	struct lru t;
	lru_init(&t, 3, sizeof(int));
	unsigned char k[5][LRU_KEY_SIZE];
	const char *names[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++)
		key(names[i], k[i]);
	for (int i = 0; i < 3; i++)
		*(int *)lru_payload(lru_put(&t, k[i], 0)) = i + 1;
	/* a is used: b is now the least recent and goes first. */
	assert_int_equal(*(int *)lru_payload(lru_get(&t, k[0], 0)), 1);
	lru_put(&t, k[3], 0);
	assert_int_equal(t.count, 3);
	assert_null(lru_get(&t, k[1], 0));
	assert_non_null(lru_get(&t, k[0], 0));
	assert_non_null(lru_get(&t, k[2], 0));
	/* An existing key is returned, not duplicated. */
	assert_int_equal(*(int *)lru_payload(lru_put(&t, k[2], 0)), 3);
	assert_int_equal(t.count, 3);
	lru_del(&t, lru_get(&t, k[2], 0));
	assert_int_equal(t.count, 2);
	lru_free(&t);
}

static void
test_expiry(void **state)
{
	struct lru t;
	lru_init(&t, 10, 0);
	unsigned char k[LRU_KEY_SIZE];
	key("x", k);
	lru_put(&t, k, 100)->expires = 200;
	assert_non_null(lru_get(&t, k, 199));
	assert_null(lru_get(&t, k, 200));
	assert_int_equal(t.count, 0);
	lru_free(&t);
}

static int removed;

static void
count_removed(void *arg, struct lru_entry *e)
{
	removed++;
}

/* A new size: the least recent entries beyond it go (through on_remove),
 * the rest stay reachable however the buckets change. */
static void
test_resize(void **state)
{
	struct lru t;
	lru_init(&t, 100, sizeof(int));
	t.on_remove = count_removed;
	removed = 0;
	unsigned char k[300][LRU_KEY_SIZE];
	char name[16];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		key(name, k[i]);
	}
	for (int i = 0; i < 100; i++)
		*(int *)lru_payload(lru_put(&t, k[i], 0)) = i;
	/* to 1000: 1024 buckets, every entry found again */
	assert_int_equal(lru_resize(&t, 1000), 1);
	assert_int_equal(t.nbuckets, 1024);
	assert_int_equal(removed, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(*(int *)lru_payload(lru_get(&t, k[i], 0)), i);
	for (int i = 100; i < 300; i++)
		*(int *)lru_payload(lru_put(&t, k[i], 0)) = i;
	assert_int_equal(t.count, 300);
	/* k0 made the most recent: it stays when the table shrinks to 10 */
	assert_non_null(lru_get(&t, k[0], 0));
	assert_int_equal(lru_resize(&t, 10), 1);
	assert_int_equal(t.nbuckets, 64);
	assert_int_equal(t.count, 10);
	assert_int_equal(removed, 290);
	assert_int_equal(*(int *)lru_payload(lru_get(&t, k[0], 0)), 0);
	for (int i = 291; i < 300; i++)
		assert_int_equal(*(int *)lru_payload(lru_get(&t, k[i], 0)), i);
	assert_null(lru_get(&t, k[290], 0));
	assert_null(lru_get(&t, k[1], 0));
	/* the same buckets: said so; 0 empties it */
	assert_int_equal(lru_resize(&t, 20), 0);
	assert_int_equal(lru_resize(&t, 0), 0);
	assert_int_equal(t.count, 0);
	assert_null(lru_put(&t, k[0], 0));
	assert_int_equal(lru_resize(&t, 5), 0);
	assert_non_null(lru_put(&t, k[0], 0));
	lru_free(&t);
}

static void
test_zero_size(void **state)
{
	struct lru t;
	lru_init(&t, 0, 8);
	unsigned char k[LRU_KEY_SIZE];
	key("x", k);
	assert_null(lru_put(&t, k, 0));
	assert_null(lru_get(&t, k, 0));
	lru_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_is_hmac_sha256),
	    cmocka_unit_test(test_keys_are_length_prefixed),
	    cmocka_unit_test(test_put_get_evict),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_resize),
	    cmocka_unit_test(test_zero_size),
	};
	return cmocka_run_group_tests(tests, setup_keyer, teardown_keyer);
}
