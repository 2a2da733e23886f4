/* test_conn.c - the address strings of connections: conn_addr_name()'s
 * "ip:port" or "[ipv6]:port", and either as an RFC 5321 4.1.3 address
 * literal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	/* without brackets the last colon is the port's */
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

static void
name(const char *addr, int port, const char *want)
{
	struct sockaddr_storage ss;
	char out[64];
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
				 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
	conn_addr_name((struct sockaddr *)&ss, out, sizeof(out));
	assert_string_equal(out, want);
	/* and what it writes is read back as the same address */
	char lit[64], back[64];
	assert_int_equal(conn_addr_literal(out, lit, sizeof(lit)), 0);
	snprintf(back, sizeof(back), "[%s%s]",
		 strchr(addr, ':') != NULL ? "IPv6:" : "", addr);
	assert_string_equal(lit, back);
}

static void
test_addr_name(void **state)
{
	(void)state;
	name("192.0.2.1", 587, "192.0.2.1:587");
	name("2001:db8::1", 40001, "[2001:db8::1]:40001");
	name("::1", 25, "[::1]:25");
	name("::ffff:192.0.2.7", 993, "[::ffff:192.0.2.7]:993");
	struct sockaddr_storage none;
	memset(&none, 0, sizeof(none));
	none.ss_family = AF_UNSPEC;
	char out[64];
	conn_addr_name((struct sockaddr *)&none, out, sizeof(out));
	assert_string_equal(out, "?:0");
}

/* conn_listen_socket(): bound sockets that share their port with one
 * another (one per event loop), not with a socket that does not share,
 * nor one that does not share with another; refusals say why. */
static void
test_listen_socket(void **state)
{
	(void)state;
	const char *err = NULL;
	int a = conn_listen_socket("127.0.0.1:0", 1, &err);
	assert_true(a >= 0);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(a, (struct sockaddr *)&sin, &len), 0);
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	int b = conn_listen_socket(addr, 1, &err);
	assert_true(b >= 0);
	assert_int_equal(listen(a, 8), 0);
	assert_int_equal(listen(b, 8), 0);
	close(a);
	close(b);
	/* a port held by a socket that does not share it */
	int held = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = 0;
	assert_int_equal(bind(held, (struct sockaddr *)&sin, sizeof(sin)), 0);
	len = sizeof(sin);
	assert_int_equal(getsockname(held, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(listen(held, 8), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	err = NULL;
	assert_int_equal(conn_listen_socket(addr, 1, &err), -1);
	assert_string_equal(err, "Address already in use");
	close(held);
	assert_int_equal(conn_listen_socket("example.org:25", 1, &err), -1);
	assert_string_equal(err, "host must be a numeric address or localhost");
	assert_int_equal(conn_listen_socket("127.0.0.1", 1, &err), -1);
	assert_string_equal(err, "expected host:port");
	/* a port that is one socket's alone: no second, sharing or not */
	int own = conn_listen_socket("127.0.0.1:0", 0, &err);
	assert_true(own >= 0);
	len = sizeof(sin);
	assert_int_equal(getsockname(own, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(listen(own, 8), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(conn_listen_socket(addr, 0, &err), -1);
	assert_string_equal(err, "Address already in use");
	assert_int_equal(conn_listen_socket(addr, 1, &err), -1);
	close(own);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_literal),
	    cmocka_unit_test(test_addr_name),
	    cmocka_unit_test(test_listen_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
