/* test_stream_map.c - the link's stream table against a plain array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/stream_map.h"

#define KEYS 5000

static void
check_all(const struct stream_map *m, void *const *ref, const uint32_t *keys)
{
	size_t n = 0;
	for (size_t i = 0; i < KEYS; i++) {
		assert_ptr_equal(stream_map_get(m, keys[i]), ref[i]);
		n += ref[i] != NULL;
	}
	assert_int_equal(m->count, n);
	assert_true(m->count * 2 <= m->cap);
}

/* Random puts and deletes over consecutive ids (what links use), ids that
 * collide in the table (multiples of its size) and random ones. */
static void
run(const uint32_t *keys)
{
	static void *ref[KEYS];
	static char tokens[KEYS];
	struct stream_map m = STREAM_MAP_INIT;
	for (size_t i = 0; i < KEYS; i++)
		ref[i] = NULL;
	srand(7);
	for (int round = 0; round < 200000; round++) {
		size_t i = (size_t)rand() % KEYS;
		if (rand() % 3 != 0) {
			stream_map_put(&m, keys[i], &tokens[i]);
			ref[i] = &tokens[i];
		} else {
			assert_ptr_equal(stream_map_del(&m, keys[i]), ref[i]);
			ref[i] = NULL;
		}
		if (round % 20000 == 0)
			check_all(&m, ref, keys);
	}
	check_all(&m, ref, keys);
	for (size_t i = 0; i < KEYS; i++)
		if (ref[i] != NULL)
			assert_ptr_equal(stream_map_del(&m, keys[i]), ref[i]);
	assert_int_equal(m.count, 0);
	for (size_t i = 0; i < KEYS; i++)
		assert_null(stream_map_get(&m, keys[i]));
	stream_map_free(&m);
}

static void
test_consecutive(void **state)
{
	static uint32_t keys[KEYS];
	for (uint32_t i = 0; i < KEYS; i++)
		keys[i] = i + 1;
	run(keys);
}

static void
test_colliding(void **state)
{
	static uint32_t keys[KEYS];
	for (uint32_t i = 0; i < KEYS; i++)
		keys[i] = (i + 1) * 16384;
	run(keys);
}

static void
test_random(void **state)
{
	static uint32_t keys[KEYS];
	srand(11);
	for (uint32_t i = 0; i < KEYS; i++) {
		uint32_t k;
		int dup;
		do {
			k = (uint32_t)rand() * 2654435761u | 1;
			dup = 0;
			for (uint32_t j = 0; j < i && !dup; j++)
				dup = keys[j] == k;
		} while (dup);
		keys[i] = k;
	}
	run(keys);
}

static void
test_edges(void **state)
{
	struct stream_map m = STREAM_MAP_INIT;
	int a, b;
	assert_null(stream_map_get(&m, 1));
	assert_null(stream_map_del(&m, 1));
	assert_null(stream_map_get(&m, 0));
	stream_map_put(&m, 0xffffffffu, &a);
	stream_map_put(&m, 0xffffffffu, &b); /* replaces */
	assert_int_equal(m.count, 1);
	assert_ptr_equal(stream_map_get(&m, 0xffffffffu), &b);
	assert_null(stream_map_del(&m, 2));
	assert_ptr_equal(stream_map_del(&m, 0xffffffffu), &b);
	assert_int_equal(m.count, 0);
	stream_map_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consecutive),
		cmocka_unit_test(test_colliding),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
