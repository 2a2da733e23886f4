/* test_ldap_escape.c - RFC 4515 escaping of filter values, RFC 4517
 * GeneralizedTime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frontend/directory.h"

static void
check(const char *in, size_t len, const char *want)
{
	char out[256];
	assert_int_equal(ldap_filter_escape(in, len, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_metacharacters(void **state)
{
	check("alice@example.test", 18, "alice@example.test");
	check("*", 1, "\\2a");
	check("a*)(uid=*", 9, "a\\2a\\29\\28uid=\\2a");
	check("back\\slash", 10, "back\\5cslash");
	check("nul\0*", 5, "nul\\00\\2a");
	check("tab\tcr\r", 7, "tab\\09cr\\0d");
	check("", 0, "");
	/* UTF-8 passes as is. */
	check("j\xc3\xb6rg", 5, "j\xc3\xb6rg");
}

static void
test_output_bound(void **state)
{
	char out[8];
	assert_int_equal(ldap_filter_escape("abcdefg", 7, out, sizeof(out)),
			 0);
	assert_int_equal(ldap_filter_escape("abcdefgh", 8, out, sizeof(out)),
			 -1);
	assert_int_equal(ldap_filter_escape("ab**", 4, out, sizeof(out)), -1);
	assert_int_equal(ldap_filter_escape("ab*", 3, out, sizeof(out)), 0);
	assert_string_equal(out, "ab\\2a");
	assert_int_equal(ldap_filter_escape("x", 1, out, 1), -1);
}

static int64_t
gt(const char *s)
{
	int64_t t = -12345;
	if (dir_generalized_time(s, strlen(s), &t) < 0)
		return -1;
	return t;
}

static void
test_generalized_time(void **state)
{
	/* date(1) -u -d '2026-12-07 22:23:56' +%s */
	assert_int_equal(gt("20261207222356Z"), 1796682236);
	assert_int_equal(gt("19700101000000Z"), 0);
	assert_int_equal(gt("20000229120000Z"), 951825600);
	assert_int_equal(gt("2000022912Z"), 951825600);
	assert_int_equal(gt("200002291230Z"), 951825600 + 1800);
	assert_int_equal(gt("20000229120000.5Z"), 951825600);
	assert_int_equal(gt("20000229120000,25Z"), 951825600);
	assert_int_equal(gt("20000229140000+0200"), 951825600);
	assert_int_equal(gt("20000229070000-05"), 951825600);
	assert_int_equal(gt("19691231235958Z"), -2);
	/* not one */
	assert_int_equal(gt("20261207222356"), -1);   /* no zone */
	assert_int_equal(gt("2026120722Z1"), -1);     /* trailing */
	assert_int_equal(gt("20261307222356Z"), -1);  /* month 13 */
	assert_int_equal(gt("20261200222356Z"), -1);  /* day 0 */
	assert_int_equal(gt("20261207242356Z"), -1);  /* hour 24 */
	assert_int_equal(gt("202612072Z"), -1);       /* hour cut */
	assert_int_equal(gt("20261207222356.Z"), -1); /* empty fraction */
	assert_int_equal(gt("20261207222356+2400"), -1);
	assert_int_equal(gt(""), -1);
	assert_int_equal(gt("tomorrow"), -1);
	/* and back */
	char out[20];
	dir_time_format(1796682236, 0, out, sizeof(out));
	assert_string_equal(out, "20261207222356Z");
	dir_time_format(1796682236, 1, out, sizeof(out));
	assert_string_equal(out, "2026-12-07");
	dir_time_format(0, 0, out, sizeof(out));
	assert_string_equal(out, "");
	dir_time_format(951825600, 1, out, 8); /* no room */
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metacharacters),
		cmocka_unit_test(test_output_bound),
		cmocka_unit_test(test_generalized_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
