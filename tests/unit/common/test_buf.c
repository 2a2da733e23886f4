/* test_buf.c - numbers in decimal (buf_format_uint, buf_append_uint) the
 * way printf writes them, at the edges of their lengths. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void
test_format_uint(void **state)
{
	const uint64_t vals[] = {0,	     1,		 9,
				 10,	     99,	 100,
				 4294967295u, 4294967296u, 10000000000000000000u,
				 UINT64_MAX};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char want[32], got[21];
		snprintf(want, sizeof(want), "%" PRIu64, vals[i]);
		size_t n = buf_format_uint(got, vals[i]);
		assert_int_equal(n, strlen(want));
		got[n] = '\0';
		assert_string_equal(got, want);
	}
}

static void
test_append_uint(void **state)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "* ");
	buf_append_uint(&b, 42);
	buf_append_str(&b, " FETCH (UID ");
	buf_append_uint(&b, UINT64_MAX);
	buf_append_str(&b, ")");
	buf_append(&b, "", 1);
	assert_string_equal(buf_ptr(&b),
			    "* 42 FETCH (UID 18446744073709551615)");
	/* many in a row: room made each time */
	buf_reset(&b);
	for (uint64_t v = 0; v < 5000; v++)
		buf_append_uint(&b, v);
	char want[32];
	size_t len = 0;
	for (uint64_t v = 0; v < 5000; v++)
		len += (size_t)snprintf(want, sizeof(want), "%" PRIu64, v);
	assert_int_equal(buf_used(&b), len);
	assert_memory_equal(buf_ptr(&b) + buf_used(&b) - 4, "4999", 4);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_uint),
		cmocka_unit_test(test_append_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
