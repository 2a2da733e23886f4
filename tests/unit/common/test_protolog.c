/* test_protolog.c - what the protocol log shows: secrets redacted, literal
 * and message data by their size, cut lines; fed whole and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/protolog.h"

static void
expect_render(enum protolog_proto proto, const char *cmd, size_t len,
	      int sasl, const char *want)
{
	struct buf out = BUF_INIT;
	protolog_render(proto, cmd, len, sasl, 256, &out);
	buf_append(&out, "", 1);
	assert_string_equal(buf_ptr(&out), want);
	buf_free(&out);
}

#define RENDER(proto, cmd, want) \
	expect_render(proto, cmd, sizeof(cmd) - 1, 0, want)

static void
test_imap_login(void **state)
{
	RENDER(PROTOLOG_IMAP, "a1 LOGIN alice s3cret", "a1 LOGIN alice <redacted>");
	RENDER(PROTOLOG_IMAP, "a1 login \"alice\" \"s3 cret\"",
	       "a1 login \"alice\" <redacted>");
	RENDER(PROTOLOG_IMAP, "a1 LOGIN {5}\r\nalice {6+}\r\ns3cret",
	       "a1 LOGIN {5}<5 octets> <redacted>");
	/* a quoted user name with a space and an escaped quote */
	RENDER(PROTOLOG_IMAP, "a1 LOGIN \"a \\\" b\" s3cret",
	       "a1 LOGIN \"a \\\" b\" <redacted>");
	RENDER(PROTOLOG_IMAP, "a2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA==",
	       "a2 AUTHENTICATE PLAIN <redacted>");
	RENDER(PROTOLOG_IMAP, "a2 AUTHENTICATE PLAIN", "a2 AUTHENTICATE PLAIN");
	expect_render(PROTOLOG_IMAP, "AGFsaWNlAHMzY3JldA==", 20, 1,
		      "<redacted>");
	/* not LOGIN: nothing redacted, literals by their size */
	RENDER(PROTOLOG_IMAP, "a3 APPEND INBOX (\\Seen) ~{12}\r\nHello world!",
	       "a3 APPEND INBOX (\\Seen) ~{12}<12 octets>");
	RENDER(PROTOLOG_IMAP, "a4 LOGINX alice s3cret", "a4 LOGINX alice s3cret");
	/* a literal header that lies about its size */
	RENDER(PROTOLOG_IMAP, "a5 X {99}\r\nab", "a5 X {99}<99 octets>");
}

static void
test_line_protocols(void **state)
{
	RENDER(PROTOLOG_POP3, "USER alice", "USER alice");
	RENDER(PROTOLOG_POP3, "PASS s3 cret", "PASS <redacted>");
	RENDER(PROTOLOG_POP3, "pass s3cret", "pass <redacted>");
	RENDER(PROTOLOG_POP3, "APOP alice c4c9334bac560ecc979e58001b3e22fb",
	       "APOP alice <redacted>");
	RENDER(PROTOLOG_POP3, "AUTH PLAIN AGFsaWNlAHMzY3JldA==",
	       "AUTH PLAIN <redacted>");
	RENDER(PROTOLOG_POP3, "RETR {5}", "RETR {5}");
	RENDER(PROTOLOG_SMTP, "AUTH LOGIN YWxpY2U=", "AUTH LOGIN <redacted>");
	RENDER(PROTOLOG_SMTP, "AUTH PLAIN", "AUTH PLAIN");
	RENDER(PROTOLOG_SMTP, "MAIL FROM:<a@b> SIZE=10",
	       "MAIL FROM:<a@b> SIZE=10");
	/* PASS means nothing in SMTP */
	RENDER(PROTOLOG_SMTP, "PASS x", "PASS x");
}

/* Malformed shapes of secret-bearing commands, refused by the servers,
 * keep nothing after the command word (or the argument before a tab). */
static void
test_malformed_secrets(void **state)
{
	RENDER(PROTOLOG_IMAP, "a LOGIN u@e.test\tLeak22",
	       "a LOGIN u@e.test <redacted>");
	RENDER(PROTOLOG_IMAP, " a LOGIN u@e.test Leak24", " a LOGIN <redacted>");
	RENDER(PROTOLOG_IMAP, "a  LOGIN u@e.test Leak25", "a  LOGIN <redacted>");
	RENDER(PROTOLOG_IMAP, "a UID LOGIN u Leak26", "a UID LOGIN <redacted>");
	RENDER(PROTOLOG_IMAP, "a\tlogin u Leak27", "a\tlogin <redacted>");
	RENDER(PROTOLOG_IMAP, "a AUTHENTICATE\tPLAIN AGFsaWNlAHMzY3JldA==",
	       "a AUTHENTICATE <redacted>");
	RENDER(PROTOLOG_POP3, "PASS\tLeak30", "PASS <redacted>");
	RENDER(PROTOLOG_POP3, " PASS Leak32", " PASS <redacted>");
	RENDER(PROTOLOG_POP3, "APOP  alice c4c9334b", "APOP  alice <redacted>");
	RENDER(PROTOLOG_SMTP, "AUTH\tPLAIN AGFsaWNlAHMzY3JldA==",
	       "AUTH <redacted>");
	RENDER(PROTOLOG_SMTP, "AUTH PLAIN\tAGFsaWNlAHMzY3JldA==",
	       "AUTH PLAIN <redacted>");
	RENDER(PROTOLOG_LMTP, "  auth plain AGFsaWNl", "  auth <redacted>");
	/* other commands are left alone */
	RENDER(PROTOLOG_IMAP, "a SELECT\tINBOX", "a SELECT INBOX");
	RENDER(PROTOLOG_POP3, "USER\talice", "USER alice");
}

/* The log goes to stderr: capture it in a file. */
static FILE *capture;
static int saved_stderr;

static void
capture_start(void)
{
	fflush(stderr);
	capture = tmpfile();
	assert_non_null(capture);
	saved_stderr = dup(2);
	dup2(fileno(capture), 2);
}

static char *
capture_end(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	long n = ftell(capture);
	if (n < 0)
		n = 0;
	char *text = calloc(1, (size_t)n + 1);
	rewind(capture);
	size_t got = fread(text, 1, (size_t)n, capture);
	text[got] = '\0';
	fclose(capture);
	return text;
}

static void
feed(struct protolog *pl, const char *s, int bytewise)
{
	size_t n = strlen(s);
	if (!bytewise) {
		protolog_output(pl, s, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		protolog_output(pl, s + i, 1);
}

static void
test_output(void **state)
{
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		capture_start();
		struct protolog *pl = protolog_new(PROTOLOG_IMAP, "s1", 256);
		feed(pl,
		     "* 1 FETCH (BODY[] {16}\r\nSECRET-MESSAGE\r\n)\r\n"
		     "a OK done\r\n",
		     bytewise);
		protolog_free(&pl);
		pl = protolog_new(PROTOLOG_POP3, "s2", 8);
		protolog_command(pl, "RETR 1", 6, 0);
		feed(pl, "+OK 20 octets\r\nSECRET-LINE\r\n..dot\r\n.\r\n+OK\r\n",
		     bytewise);
		protolog_free(&pl);
		char *log = capture_end();
		assert_null(strstr(log, "SECRET"));
		assert_non_null(strstr(log, "session=s1 protocol=imap dir=out "
					    "line=\"* 1 FETCH (BODY[] {16}\""));
		assert_non_null(strstr(log, "session=s1 protocol=imap dir=out "
					    "line=\")\""));
		assert_non_null(strstr(log, "line=\"a OK done\""));
		assert_non_null(strstr(log, "session=s2 protocol=pop3 dir=in "
					    "line=\"RETR 1\""));
		/* cut after 8 characters */
		assert_non_null(strstr(log, "dir=out line=\"+OK 20 o...\""));
		assert_non_null(strstr(log, "dir=out data_octets=20"));
		assert_non_null(strstr(log, "dir=out line=\".\""));
		assert_non_null(strstr(log, "dir=out line=\"+OK\""));
		free(log);
	}
}

int
main(void)
{
	log_init("test", LOG_LEVEL_INFO);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_login),
		cmocka_unit_test(test_line_protocols),
		cmocka_unit_test(test_malformed_secrets),
		cmocka_unit_test(test_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
