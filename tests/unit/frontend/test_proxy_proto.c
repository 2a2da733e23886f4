/* test_proxy_proto.c - the PROXY protocol header parser (common/).
 *
 * check() feeds every header one byte at a time: each strict prefix must
 * be PROXY_MORE (or, for invalid input, PROXY_ERROR no later than the
 * whole), and the whole input must give the expected result, with any
 * bytes after the header left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/proxy_proto.h"

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Feeds data[0..len) growing by one byte; returns the final status.  A
 * prefix shorter than hdr_len must not be DONE. */
static enum proxy_status
feed(const void *data, size_t len, struct proxy_hdr *h, size_t *used,
     const char **err)
{
	enum proxy_status st = PROXY_MORE;
	for (size_t n = 1; n <= len; n++) {
		/* A copy of exactly n bytes, so ASan sees any over-read. */
		unsigned char *copy = malloc(n);
		memcpy(copy, data, n);
		st = proxy_parse(copy, n, h, used, err);
		free(copy);
		if (st != PROXY_MORE)
			return st;
	}
	return st;
}

static void
check_done(const void *data, size_t len, size_t hdr_len,
	   struct proxy_hdr *h)
{
	size_t used = 0;
	const char *err = NULL;
	assert_int_equal(feed(data, len, h, &used, &err), PROXY_DONE);
	assert_int_equal(used, hdr_len);
	/* Whole, with trailing bytes: the same. */
	unsigned char *more = malloc(len + 5);
	memcpy(more, data, len);
	memcpy(more + len, "a1 X\n", 5);
	struct proxy_hdr h2;
	assert_int_equal(proxy_parse(more, len + 5, &h2, &used, &err),
			 PROXY_DONE);
	assert_int_equal(used, hdr_len);
	free(more);
}

static void
check_error(const void *data, size_t len)
{
	struct proxy_hdr h;
	size_t used = 0;
	const char *err = NULL;
	assert_int_equal(feed(data, len, &h, &used, &err), PROXY_ERROR);
	assert_non_null(err);
}

static void
assert_v4(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char text[INET_ADDRSTRLEN];
	assert_int_equal(sin->sin_family, AF_INET);
	inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	assert_string_equal(text, ip);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void
assert_v6(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char text[INET6_ADDRSTRLEN];
	assert_int_equal(sin6->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	assert_string_equal(text, ip);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void
test_v1_tcp4(void **state)
{
	const char *s = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 993\r\n";
	struct proxy_hdr h;
	check_done(s, strlen(s), strlen(s), &h);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_v4(&h.src, "192.0.2.7", 56324);
	assert_v4(&h.dst, "198.51.100.1", 993);
}

static void
test_v1_tcp6(void **state)
{
	const char *s = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
	struct proxy_hdr h;
	check_done(s, strlen(s), strlen(s), &h);
	assert_v6(&h.src, "2001:db8::1", 65535);
	assert_v6(&h.dst, "2001:db8::2", 0);
}

static void
test_v1_unknown(void **state)
{
	const char *s = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	struct proxy_hdr h;
	check_done(s, strlen(s), strlen(s), &h);
	assert_true(h.local);
	const char *bare = "PROXY UNKNOWN\r\n";
	check_done(bare, strlen(bare), strlen(bare), &h);
	assert_true(h.local);
}

static void
test_v1_longest(void **state)
{
	/* 107 bytes exactly is allowed. */
	const char *s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
			"65535\r\n";
	assert_int_equal(strlen(s), 104);
	struct proxy_hdr h;
	check_done(s, strlen(s), strlen(s), &h);
	char buf[200];
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + 105, "\r\n", 2);
	check_done(buf, 107, 107, &h);
	/* 108 is not. */
	memcpy(buf + 105, "xx\r\n", 4);
	check_error(buf, 109);
	/* Nor a line that never ends. */
	memset(buf + 14, 'x', sizeof(buf) - 14);
	check_error(buf, sizeof(buf));
}

static void
test_v1_invalid(void **state)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 993\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 993\rX",
		"PROXY TCP4 192.0.2.7  198.51.100.1 56324 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 993 \r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 993 7\r\n",
		"PROXY TCP4 192.0.2.777 198.51.100.1 56324 993\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.1 56324 993\r\n",
		"PROXY TCP6 192.0.2.7 198.51.100.1 56324 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 0993 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 -1 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 +1 993\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 993\r\n",
		"PROXY tcp4 192.0.2.7 198.51.100.1 1 993\r\n",
		"PROXY \r\n",
		"PROXY  TCP4 192.0.2.7 198.51.100.1 1 993\r\n",
		"PROXY TCP4 192.0.2.7\t198.51.100.1 1 993\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 99\xff\r\n",
		"PROXX TCP4 192.0.2.7 198.51.100.1 1 993\r\n",
		"proxy TCP4 192.0.2.7 198.51.100.1 1 993\r\n",
		"a1 LOGIN alice secret\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_error(bad[i], strlen(bad[i]));
	check_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n", 33);
}

/* A v2 header: command, family/protocol, address block, extra TLV bytes. */
static size_t
v2(unsigned char *out, unsigned cmd, unsigned fam, const void *addrs,
   size_t alen, size_t extra)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)(0x20 | cmd);
	out[13] = (unsigned char)fam;
	size_t body = alen + extra;
	out[14] = (unsigned char)(body >> 8);
	out[15] = (unsigned char)body;
	memcpy(out + 16, addrs, alen);
	memset(out + 16 + alen, 0x04, extra);
	return 16 + body;
}

static void
test_v2_tcp4(void **state)
{
	unsigned char a[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04,
			       0x03, 0xe1};
	unsigned char buf[PROXY_MAX_HEADER];
	struct proxy_hdr h;
	size_t n = v2(buf, 1, 0x11, a, sizeof(a), 0);
	check_done(buf, n, n, &h);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	assert_v4(&h.src, "192.0.2.7", 0xdc04);
	assert_v4(&h.dst, "198.51.100.1", 993);
	/* With TLVs after the addresses (skipped). */
	n = v2(buf, 1, 0x11, a, sizeof(a), 40);
	check_done(buf, n, n, &h);
	assert_v4(&h.src, "192.0.2.7", 0xdc04);
}

static void
test_v2_tcp6(void **state)
{
	unsigned char a[36] = {0};
	a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[15] = 1;
	a[16] = 0x20, a[17] = 0x01, a[18] = 0x0d, a[19] = 0xb8, a[31] = 2;
	a[32] = 0x01, a[33] = 0x00, a[34] = 0x00, a[35] = 0x6e;
	unsigned char buf[PROXY_MAX_HEADER];
	struct proxy_hdr h;
	size_t n = v2(buf, 1, 0x21, a, sizeof(a), 0);
	check_done(buf, n, n, &h);
	assert_v6(&h.src, "2001:db8::1", 256);
	assert_v6(&h.dst, "2001:db8::2", 110);
}

static void
test_v2_local_and_unspec(void **state)
{
	unsigned char buf[PROXY_MAX_HEADER];
	struct proxy_hdr h;
	/* LOCAL (health checks) with no addresses. */
	size_t n = v2(buf, 0, 0x00, "", 0, 0);
	check_done(buf, n, n, &h);
	assert_true(h.local);
	/* PROXY over UNSPEC, UDP or UNIX: the connection's own address. */
	unsigned char unix_addrs[216] = {0};
	n = v2(buf, 1, 0x31, unix_addrs, sizeof(unix_addrs), 0);
	check_done(buf, n, n, &h);
	assert_true(h.local);
	unsigned char a[12] = {0};
	n = v2(buf, 1, 0x12, a, sizeof(a), 0);
	check_done(buf, n, n, &h);
	assert_true(h.local);
}

static void
test_v2_invalid(void **state)
{
	unsigned char a[36] = {0};
	unsigned char buf[PROXY_MAX_HEADER + 64];
	/* Address block shorter than the family needs. */
	size_t n = v2(buf, 1, 0x11, a, 11, 0);
	check_error(buf, n);
	n = v2(buf, 1, 0x21, a, 35, 0);
	check_error(buf, n);
	/* Unknown command, version, family. */
	n = v2(buf, 2, 0x11, a, 12, 0);
	check_error(buf, n);
	n = v2(buf, 1, 0x11, a, 12, 0);
	buf[12] = 0x11;
	check_error(buf, n);
	n = v2(buf, 1, 0x41, a, 12, 0);
	check_error(buf, n);
	n = v2(buf, 1, 0x13, a, 12, 0);
	check_error(buf, n);
	/* Longer than we accept: refused from the length field on. */
	n = v2(buf, 1, 0x11, a, 12, 0);
	buf[14] = 0xff;
	buf[15] = 0xff;
	check_error(buf, 16);
	n = v2(buf, 1, 0x11, a, 12, PROXY_MAX_HEADER - 16 - 12 + 1);
	check_error(buf, 16);
	/* The longest accepted. */
	struct proxy_hdr h;
	n = v2(buf, 1, 0x11, a, 12, PROXY_MAX_HEADER - 16 - 12);
	check_done(buf, n, PROXY_MAX_HEADER, &h);
	/* A damaged signature. */
	for (size_t i = 0; i < 12; i++) {
		n = v2(buf, 1, 0x11, a, 12, 0);
		buf[i] ^= 0x20;
		check_error(buf, n);
	}
}

static void
test_signature(void **state)
{
	assert_true(proxy_signature("PROXY TCP4", 10));
	assert_true(proxy_signature("PROX", 4));
	assert_true(proxy_signature(sig, 12));
	assert_true(proxy_signature(sig, 5));
	assert_false(proxy_signature("a1 LOGIN", 8));
	assert_false(proxy_signature("PROXZ", 5));
	assert_false(proxy_signature("\x16\x03\x01", 3));
	assert_false(proxy_signature("", 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_longest),
		cmocka_unit_test(test_v1_invalid),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local_and_unspec),
		cmocka_unit_test(test_v2_invalid),
		cmocka_unit_test(test_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
