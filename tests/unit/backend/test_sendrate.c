/* test_sendrate.c - transport.max_recipients_per_hour's counts: the
 * limit, the sliding hour in five-minute steps, senders apart, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "backend/transport/sendrate.h"

#define MIN (60 * 1000ULL)

static void
test_limit_and_hour(void **state)
{
	(void)state;
	struct sendrate_table *t = NULL;
	uint64_t used;
	uint64_t t0 = 1000 * 60 * MIN; /* any time */
	assert_int_equal(sendrate_count(&t, 5, "a", 3, t0, &used), 1);
	assert_int_equal(used, 3);
	/* 3 + 3 > 5: refused, nothing counted */
	assert_int_equal(sendrate_count(&t, 5, "a", 3, t0 + 1 * MIN, &used),
			 0);
	assert_int_equal(used, 3);
	/* another sender has a count of its own */
	assert_int_equal(sendrate_count(&t, 5, "b", 5, t0 + 1 * MIN, &used),
			 1);
	assert_int_equal(used, 5);
	/* up to the limit exactly */
	assert_int_equal(sendrate_count(&t, 5, "a", 2, t0 + 30 * MIN, &used),
			 1);
	assert_int_equal(used, 5);
	assert_int_equal(sendrate_count(&t, 5, "a", 1, t0 + 59 * MIN, &used),
			 0);
	/* an hour on (and a five-minute step): the first 3 have left the
	   window, the 2 of minute 30 not */
	assert_int_equal(sendrate_count(&t, 5, "a", 3, t0 + 65 * MIN, &used),
			 1);
	assert_int_equal(used, 5);
	/* two hours on: nothing left */
	assert_int_equal(sendrate_count(&t, 5, "a", 0, t0 + 200 * MIN, &used),
			 1);
	assert_int_equal(used, 0);
	/* a submission larger than the limit never passes */
	assert_int_equal(sendrate_count(&t, 5, "c", 6, t0, &used), 0);
	sendrate_table_free(&t);
	assert_null(t);
}

static void
test_no_limit(void **state)
{
	(void)state;
	struct sendrate_table *t = NULL;
	uint64_t used = 7;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sendrate_count(&t, 0, "a", 1000, 0, &used),
				 1);
	assert_int_equal(used, 0);
	assert_null(t); /* nothing kept */
}

static void
test_expire_and_many_senders(void **state)
{
	(void)state;
	struct sendrate_table *t = NULL;
	uint64_t used;
	char id[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "mbox%d", i);
		assert_int_equal(
			sendrate_count(&t, 10, id, 1, (uint64_t)i * 100, &used),
			1);
		assert_int_equal(used, 1);
	}
	/* every one found again after the table grew */
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "mbox%d", i);
		assert_int_equal(sendrate_count(&t, 10, id, 0, 10 * MIN, &used),
				 1);
		assert_int_equal(used, 1);
	}
	assert_int_equal(sendrate_expire(t, 30 * MIN), 5000);
	assert_int_equal(sendrate_expire(t, 120 * MIN), 0);
	assert_int_equal(sendrate_count(&t, 10, "mbox1", 0, 120 * MIN, &used),
			 1);
	assert_int_equal(used, 0);
	sendrate_table_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_and_hour),
		cmocka_unit_test(test_no_limit),
		cmocka_unit_test(test_expire_and_many_senders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
