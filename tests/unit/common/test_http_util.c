/* test_http_util.c - form/query parameters and escaping for HTTP
 * handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/http.h"

static int
param(const char *q, const char *name, char *out, size_t outsize)
{
	return http_param(q, strlen(q), name, out, outsize);
}

static void
test_params(void **state)
{
	(void)state;
	char v[32];
	assert_int_equal(param("a=1&user=jo%40x.test&b", "user", v, sizeof(v)),
			 1);
	assert_string_equal(v, "jo@x.test");
	assert_int_equal(param("a=1&b", "b", v, sizeof(v)), 1);
	assert_string_equal(v, "");
	assert_int_equal(param("a=x+y%2Bz", "a", v, sizeof(v)), 1);
	assert_string_equal(v, "x y+z");
	assert_int_equal(param("us%65r=k", "user", v, sizeof(v)), 1);
	assert_string_equal(v, "k");
	assert_int_equal(param("a=1", "user", v, sizeof(v)), 0);
	assert_int_equal(param("", "user", v, sizeof(v)), 0);
	/* the first occurrence wins */
	assert_int_equal(param("a=1&a=2", "a", v, sizeof(v)), 1);
	assert_string_equal(v, "1");
}

static void
test_param_errors(void **state)
{
	(void)state;
	char v[8];
	assert_int_equal(param("a=%zz", "a", v, sizeof(v)), -1);
	assert_int_equal(param("a=%4", "a", v, sizeof(v)), -1);
	assert_int_equal(param("a=%", "a", v, sizeof(v)), -1);
	assert_int_equal(param("a=%00", "a", v, sizeof(v)), -1);
	assert_int_equal(param("a=1234567", "a", v, sizeof(v)), 1);
	assert_int_equal(param("a=12345678", "a", v, sizeof(v)), -1);
	/* a bounded read of a buffer that is not NUL-terminated */
	char raw[6] = {'a', '=', '1', '%', '4', '1'};
	assert_int_equal(http_param(raw, 5, "a", v, sizeof(v)), -1);
	assert_int_equal(http_param(raw, 6, "a", v, sizeof(v)), 1);
	assert_string_equal(v, "1A");
}

static void
test_escape(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	http_escape(&b, "<a href=\"x\">O'Neil & co</a>");
	buf_append(&b, "", 1);
	assert_string_equal(buf_ptr(&b), "&lt;a href=&quot;x&quot;&gt;O&#39;"
					 "Neil &amp; co&lt;/a&gt;");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_param_errors),
		cmocka_unit_test(test_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
