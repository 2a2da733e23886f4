/* test_conn.c - the address strings of connections: conn_addr_name()'s
 * "ip:port" as an RFC 5321 4.1.3 address literal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/conn.h"

static void
literal(const char *name, int rc, const char *want)
{
	char out[64];
	assert_int_equal(conn_addr_literal(name, out, sizeof(out)), rc);
	assert_string_equal(out, want);
}

static void
test_addr_literal(void **state)
{
	(void)state;
	literal("192.0.2.1:587", 0, "[192.0.2.1]");
	literal("127.0.0.1", 0, "[127.0.0.1]"); /* no port */
	/* conn_addr_name() writes IPv6 without brackets: the last colon
	   is the port's */
	literal("2001:db8::1:40001", 0, "[IPv6:2001:db8::1]");
	literal("::1:25", 0, "[IPv6:::1]");
	literal("::ffff:192.0.2.7:25", 0, "[IPv6:::ffff:192.0.2.7]");
	literal("[2001:db8::2]:587", 0, "[IPv6:2001:db8::2]");
	/* not an address: never copied into a header */
	literal("?:0", -1, "unknown");
	literal("", -1, "unknown");
	literal("mx.example:25", -1, "unknown");
	literal("1.2.3.4\r\nX-Evil: 1:25", -1, "unknown");
	literal("[::1", -1, "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_literal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
