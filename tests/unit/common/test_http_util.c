/* test_http_util.c - form/query parameters, escaping and origins for
 * HTTP handlers. */
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

static void
test_origin(void **state)
{
	(void)state;
	/* the same origin, the default port written or not */
	assert_true(http_origin_matches("https://mail.example.test", "https",
					"mail.example.test"));
	assert_true(http_origin_matches("https://mail.example.test:443",
					"https", "mail.example.test"));
	assert_true(http_origin_matches("https://mail.example.test", "https",
					"mail.example.test:443"));
	assert_true(http_origin_matches("HTTPS://Mail.Example.Test:8443",
					"https", "mail.example.test:8443"));
	assert_true(http_origin_matches("http://127.0.0.1:8080", "http",
					"127.0.0.1:8080"));
	assert_true(http_origin_matches("http://mail.example.test:80", "http",
					"mail.example.test"));
	assert_true(
	    http_origin_matches("https://[::1]:8443", "https", "[::1]:8443"));
	assert_true(http_origin_matches("https://[::1]", "https", "[::1]:443"));
	/* another scheme, host or port */
	assert_false(http_origin_matches("http://mail.example.test", "https",
					 "mail.example.test"));
	assert_false(http_origin_matches("https://mail.example.test", "http",
					 "mail.example.test"));
	assert_false(http_origin_matches("https://evil.example", "https",
					 "mail.example.test"));
	assert_false(http_origin_matches("https://mail.example.test.evil",
					 "https", "mail.example.test"));
	assert_false(http_origin_matches("https://mail.example.tes", "https",
					 "mail.example.test"));
	assert_false(http_origin_matches("https://mail.example.test:8443",
					 "https", "mail.example.test"));
	assert_false(http_origin_matches("https://mail.example.test", "https",
					 "mail.example.test:8443"));
	assert_false(
	    http_origin_matches("https://[::1]:8443", "https", "[::2]:8443"));
	/* what a browser sends for sandboxed or local pages, and junk */
	assert_false(http_origin_matches("null", "https", "mail.example.test"));
	assert_false(http_origin_matches("", "https", "mail.example.test"));
	assert_false(http_origin_matches("https://", "https", ""));
	assert_false(http_origin_matches("https://a", "https", ""));
	assert_false(http_origin_matches("https://a/", "https", "a"));
	assert_false(http_origin_matches("https://u@a", "https", "a"));
	assert_false(http_origin_matches("https:/a", "https", "a"));
	assert_false(http_origin_matches("https://a:", "https", "a:x"));
	assert_false(
	    http_origin_matches("https://a:99999", "https", "a:99999"));
	assert_false(http_origin_matches("https://a:000443", "https", "a"));
	assert_false(http_origin_matches("https://[::1", "https", "[::1"));
	assert_false(http_origin_matches("https://[::1]x", "https", "[::1]x"));
	assert_false(http_origin_matches("https://a:b:1", "https", "a:b:1"));
	assert_false(http_origin_matches("ftp://a", "ftp", "a"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_param_errors),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
