/* test_cidr.c - network lists (common/cidr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/cidr.h"

static int
match(const struct cidr_list *l, const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return cidr_list_match(l, (struct sockaddr *)&ss);
}

static void
test_match(void **state)
{
	struct cidr_list l;
	const char *err = NULL;
	assert_int_equal(cidr_list_parse("10.0.0.0/8, 192.0.2.7 "
					 "2001:db8::/33,127.0.0.1/31",
					 &l, &err),
			 0);
	assert_int_equal(l.n, 4);
	assert_true(match(&l, "10.255.1.2"));
	assert_false(match(&l, "11.0.0.1"));
	assert_true(match(&l, "192.0.2.7"));
	assert_false(match(&l, "192.0.2.8"));
	assert_true(match(&l, "2001:db8:7fff::1"));
	assert_false(match(&l, "2001:db8:8000::1"));
	assert_true(match(&l, "127.0.0.0"));
	assert_true(match(&l, "127.0.0.1"));
	assert_false(match(&l, "127.0.0.2"));
	/* IPv4-mapped IPv6 counts as IPv4. */
	assert_true(match(&l, "::ffff:10.1.2.3"));
	assert_false(match(&l, "::ffff:11.1.2.3"));
}

static void
test_host_bits_are_masked(void **state)
{
	struct cidr_list l;
	const char *err = NULL;
	assert_int_equal(cidr_list_parse("192.0.2.77/28 ::/0", &l, &err), 0);
	assert_true(match(&l, "192.0.2.64"));
	assert_true(match(&l, "192.0.2.79"));
	assert_false(match(&l, "192.0.2.80"));
	assert_true(match(&l, "2001:db8::1"));
	assert_false(match(&l, "192.0.3.1"));
}

static void
test_empty_and_errors(void **state)
{
	struct cidr_list l;
	const char *err = NULL;
	assert_int_equal(cidr_list_parse("", &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_false(match(&l, "127.0.0.1"));
	static const char *bad[] = {
		"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x",
		"host.example", "10.0.0.0/8/8", "/8", "10.0.0.0/-1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(cidr_list_parse(bad[i], &l, &err), -1);
		assert_non_null(err);
	}
	char many[CIDR_MAX * 12 + 20] = "";
	for (int i = 0; i <= CIDR_MAX; i++)
		strcat(many, "10.0.0.1 ");
	assert_int_equal(cidr_list_parse(many, &l, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_host_bits_are_masked),
		cmocka_unit_test(test_empty_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
