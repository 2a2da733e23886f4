/* test_lru.c - bounded keyed tables (frontend/lru.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frontend/lru.h"

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

static void
key(const char *text, unsigned char *out)
{
	lru_key(secret, sizeof(secret), "test", out, text, strlen(text),
		NULL);
}

static void
test_keys_are_length_prefixed(void **state)
{
	unsigned char a[LRU_KEY_SIZE], b[LRU_KEY_SIZE], c[LRU_KEY_SIZE];
	lru_key(secret, sizeof(secret), "d", a, "ab", (size_t)2, "c",
		(size_t)1, NULL);
	lru_key(secret, sizeof(secret), "d", b, "a", (size_t)1, "bc",
		(size_t)2, NULL);
	lru_key(secret, sizeof(secret), "e", c, "ab", (size_t)2, "c",
		(size_t)1, NULL);
	assert_memory_not_equal(a, b, LRU_KEY_SIZE);
	assert_memory_not_equal(a, c, LRU_KEY_SIZE);
	/* Long parts are hashed whole, never cut. */
	char big1[5000], big2[5000];
	memset(big1, 'x', sizeof(big1));
	memcpy(big2, big1, sizeof(big2));
	big2[4999] = 'y';
	lru_key(secret, sizeof(secret), "d", a, big1, sizeof(big1), NULL);
	lru_key(secret, sizeof(secret), "d", b, big2, sizeof(big2), NULL);
	assert_memory_not_equal(a, b, LRU_KEY_SIZE);
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
		cmocka_unit_test(test_keys_are_length_prefixed),
		cmocka_unit_test(test_put_get_evict),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_zero_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
