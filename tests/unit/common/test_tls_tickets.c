/* test_tls_tickets.c - the session-ticket key file (common/tls_tickets.c).
 * Sealing and opening tickets with the keys: tests/e2e/test_tls_resumption.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tls_tickets.h"

/* 80 bytes as hex whose name (first 16 bytes) is sixteen times b. */
static void
key_hex(char out[TLS_TICKET_KEY_HEX + 1], unsigned char b)
{
	for (int i = 0; i < TLS_TICKET_KEY_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x",
			 i < TLS_TICKET_NAME_LEN ? b : (unsigned char)i);
}

static struct tls_tickets *
parse(const char *text, const char **error_r)
{
	*error_r = NULL;
	return tls_tickets_parse(text, strlen(text), error_r);
}

static void
test_keys_in_order_comments_and_blanks_skipped(void **state)
{
	char a[TLS_TICKET_KEY_HEX + 1], b[TLS_TICKET_KEY_HEX + 1];
	key_hex(a, 0xa1);
	key_hex(b, 0xB2);
	for (char *p = b; *p != '\0'; p++) /* upper case is fine too */
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	char text[600];
	snprintf(text, sizeof(text),
		 "# seals new tickets\r\n%s\r\n\n   \n  %s\t\n# the end", a, b);
	const char *err;
	struct tls_tickets *k = parse(text, &err);
	assert_non_null(k);
	assert_int_equal(tls_tickets_count(k), 2);
	unsigned char name[TLS_TICKET_NAME_LEN];
	memset(name, 0xa1, sizeof(name));
	assert_memory_equal(tls_tickets_name(k, 0), name, sizeof(name));
	memset(name, 0xb2, sizeof(name));
	assert_memory_equal(tls_tickets_name(k, 1), name, sizeof(name));
	struct tls_tickets *r = tls_tickets_ref(k);
	tls_tickets_unref(&k);
	assert_null(k);
	assert_int_equal(tls_tickets_count(r), 2);
	tls_tickets_unref(&r);
	/* the last line without a line ending */
	k = parse(a, &err);
	assert_non_null(k);
	assert_int_equal(tls_tickets_count(k), 1);
	tls_tickets_unref(&k);
}

static void
expect_error(const char *text, const char *message)
{
	const char *err;
	struct tls_tickets *k = parse(text, &err);
	assert_null(k);
	assert_non_null(err);
	assert_non_null(strstr(err, message));
}

static void
test_malformed_lines_are_named(void **state)
{
	char a[TLS_TICKET_KEY_HEX + 1], text[600];
	key_hex(a, 1);
	expect_error("", "no keys");
	expect_error("# only a comment\n\n", "no keys");
	/* one digit short, one too many, a non-hex digit */
	snprintf(text, sizeof(text), "\n%.*s\n", TLS_TICKET_KEY_HEX - 1, a);
	expect_error(text, "line 2: a key is 160 hexadecimal digits");
	snprintf(text, sizeof(text), "%s0\n", a);
	expect_error(text, "line 1: a key is 160");
	snprintf(text, sizeof(text), "%s\n%s\n", a, a);
	text[TLS_TICKET_KEY_HEX + 1 + 40] = 'g';
	expect_error(text, "line 2: a key is 160");
	/* base64 (`openssl rand -base64 80`) is not hex */
	expect_error("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN"
		     "7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n",
		     "line 1: a key is 160");
	/* a NUL inside the line */
	char nul[TLS_TICKET_KEY_HEX + 2];
	memcpy(nul, a, TLS_TICKET_KEY_HEX);
	nul[10] = '\0';
	nul[TLS_TICKET_KEY_HEX] = '\n';
	const char *err = NULL;
	assert_null(tls_tickets_parse(nul, TLS_TICKET_KEY_HEX + 1, &err));
	assert_non_null(strstr(err, "line 1"));
}

static void
test_repeated_names_and_too_many_keys(void **state)
{
	char a[TLS_TICKET_KEY_HEX + 1], b[TLS_TICKET_KEY_HEX + 1];
	char text[(TLS_TICKET_KEYS_MAX + 2) * (TLS_TICKET_KEY_HEX + 1) + 1];
	key_hex(a, 7);
	key_hex(b, 7);
	b[TLS_TICKET_KEY_HEX - 1] = b[TLS_TICKET_KEY_HEX - 1] == '0' ? '1'
								     : '0';
	snprintf(text, sizeof(text), "%s\n%s\n", a, b);
	expect_error(text, "line 2: the name (first 16 bytes) of an earlier");
	size_t off = 0;
	for (int i = 0; i < TLS_TICKET_KEYS_MAX; i++) {
		key_hex(a, (unsigned char)(i + 1));
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\n",
					a);
	}
	const char *err;
	struct tls_tickets *k = parse(text, &err);
	assert_non_null(k);
	assert_int_equal(tls_tickets_count(k), TLS_TICKET_KEYS_MAX);
	tls_tickets_unref(&k);
	key_hex(a, 0xff);
	snprintf(text + off, sizeof(text) - off, "%s\n", a);
	expect_error(text, "line 17: more than 16 keys");
}

static void
test_load_names_the_file(void **state)
{
	char path[] = "/tmp/test_tls_tickets.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char a[TLS_TICKET_KEY_HEX + 1];
	key_hex(a, 3);
	assert_int_equal(write(fd, a, TLS_TICKET_KEY_HEX), TLS_TICKET_KEY_HEX);
	close(fd);
	const char *err = NULL;
	struct tls_tickets *k = tls_tickets_load(path, &err);
	assert_non_null(k);
	assert_int_equal(tls_tickets_count(k), 1);
	tls_tickets_unref(&k);
	/* larger than TLS_TICKET_FILE_MAX */
	assert_int_equal(truncate(path, TLS_TICKET_FILE_MAX + 1), 0);
	assert_null(tls_tickets_load(path, &err));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "larger than"));
	unlink(path);
	assert_null(tls_tickets_load(path, &err));
	assert_non_null(strstr(err, "No such file"));
	assert_null(tls_tickets_load("/tmp", &err));
	assert_non_null(strstr(err, "not a regular file"));
}

static void
test_random_keys_differ(void **state)
{
	const char *err;
	struct tls_tickets *a = tls_tickets_random(&err);
	struct tls_tickets *b = tls_tickets_random(&err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(tls_tickets_count(a), 1);
	assert_memory_not_equal(tls_tickets_name(a, 0), tls_tickets_name(b, 0),
				TLS_TICKET_NAME_LEN);
	tls_tickets_unref(&a);
	tls_tickets_unref(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys_in_order_comments_and_blanks_skipped),
	    cmocka_unit_test(test_malformed_lines_are_named),
	    cmocka_unit_test(test_repeated_names_and_too_many_keys),
	    cmocka_unit_test(test_load_names_the_file),
	    cmocka_unit_test(test_random_keys_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
