/* test_ldap_escape.c - RFC 4515 escaping of filter values. */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metacharacters),
		cmocka_unit_test(test_output_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
