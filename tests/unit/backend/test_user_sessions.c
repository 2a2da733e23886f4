/* test_user_sessions.c - sessions per account (backend/user_sessions.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backend/user_sessions.h"

static void
test_limit_per_account(void **state)
{
	(void)state;
	struct user_sessions t;
	memset(&t, 0, sizeof(t));
	assert_int_equal(user_sessions_count(&t, "alice"), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(user_sessions_acquire(&t, "alice", 3), 0);
	assert_int_equal(user_sessions_acquire(&t, "alice", 3), -1);
	assert_int_equal(user_sessions_count(&t, "alice"), 3);
	assert_int_equal(t.refused, 1);
	/* another account is not concerned, nor a longer or shorter id */
	assert_int_equal(user_sessions_acquire(&t, "bob", 3), 0);
	assert_int_equal(user_sessions_acquire(&t, "alice2", 3), 0);
	assert_int_equal(user_sessions_acquire(&t, "alic", 3), 0);
	assert_int_equal(t.accounts, 4);
	/* a release makes room for one */
	user_sessions_release(&t, "alice");
	assert_int_equal(user_sessions_acquire(&t, "alice", 3), 0);
	assert_int_equal(user_sessions_acquire(&t, "alice", 3), -1);
	/* a limit lowered (reload): no new session until below it */
	assert_int_equal(user_sessions_acquire(&t, "alice", 2), -1);
	user_sessions_release(&t, "alice");
	assert_int_equal(user_sessions_acquire(&t, "alice", 2), -1);
	user_sessions_release(&t, "alice");
	assert_int_equal(user_sessions_acquire(&t, "alice", 2), 0);
	/* 0: no limit */
	for (int i = 0; i < 100; i++)
		assert_int_equal(user_sessions_acquire(&t, "alice", 0), 0);
	assert_int_equal(user_sessions_count(&t, "alice"), 102);
	/* the last release forgets the account; an unknown one is
	   ignored */
	for (int i = 0; i < 102; i++)
		user_sessions_release(&t, "alice");
	assert_int_equal(user_sessions_count(&t, "alice"), 0);
	assert_int_equal(t.accounts, 3);
	user_sessions_release(&t, "nobody");
	assert_int_equal(t.accounts, 3);
	user_sessions_free(&t);
	assert_int_equal(t.accounts, 0);
	assert_null(t.buckets);
}

static void
test_many_accounts(void **state)
{
	(void)state;
	struct user_sessions t;
	memset(&t, 0, sizeof(t));
	char id[32];
	/* the table grows past its first buckets without losing counts */
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		assert_int_equal(user_sessions_acquire(&t, id, 2), 0);
		if (i % 2 == 0)
			assert_int_equal(user_sessions_acquire(&t, id, 2), 0);
	}
	assert_int_equal(t.accounts, 5000);
	assert_true(t.nbuckets >= 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		assert_int_equal(user_sessions_count(&t, id), i % 2 == 0 ? 2 : 1);
		assert_int_equal(user_sessions_acquire(&t, id, 2),
				 i % 2 == 0 ? -1 : 0);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "user-%d", i);
		user_sessions_release(&t, id);
		user_sessions_release(&t, id);
	}
	assert_int_equal(t.accounts, 0);
	user_sessions_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_per_account),
		cmocka_unit_test(test_many_accounts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
