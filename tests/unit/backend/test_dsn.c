/* test_dsn.c - delivery status notifications: NOTIFY, the report's
 * structure, RET and the return limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/transport/dsn.h"
#include "common/buf.h"
#include "common/config.h"

static const char MSG[] = "From: a@example.test\r\n"
			  "Subject: hello\r\n"
			  "\r\n"
			  "the body line\r\n";

static void
test_wanted(void **state)
{
	(void)state;
	assert_true(dsn_wanted("", 1));
	assert_false(dsn_wanted("", 0));
	assert_false(dsn_wanted("NEVER", 1));
	assert_true(dsn_wanted("SUCCESS,FAILURE", 1));
	assert_true(dsn_wanted("SUCCESS,FAILURE", 0));
	assert_true(dsn_wanted("success", 0));
	assert_false(dsn_wanted("DELAY", 1));
	assert_false(dsn_wanted("FAILURE", 0));
	assert_true(dsn_wanted("DELAY,FAILURE", 1));
	assert_true(dsn_wanted_delay(""));
	assert_true(dsn_wanted_delay("FAILURE,DELAY"));
	assert_false(dsn_wanted_delay("FAILURE"));
	assert_false(dsn_wanted_delay("NEVER"));
}

/* The report as a string (NUL-terminated copy); whole: the message is
 * marked to come back whole on a failure (a forward not kept). */
static char *
build_whole(struct config *cfg, const char *ret, const struct dsn_rcpt *r,
	    size_t n, int whole)
{
	struct dsn_msg m = {
	    .queue_id = "00000000000000AB",
	    .sender = "a@example.test",
	    .envid = "env\r\nid",
	    .ret = ret,
	    .whole = whole,
	    .arrival = 1795438032,
	    .data = MSG,
	    .len = sizeof(MSG) - 1,
	};
	struct buf out = BUF_INIT;
	dsn_build(cfg, &m, r, n, &out);
	char *s = strndup(buf_ptr(&out), buf_used(&out));
	buf_free(&out);
	assert_non_null(s);
	return s;
}

static char *
build(struct config *cfg, const char *ret, const struct dsn_rcpt *r, size_t n)
{
	return build_whole(cfg, ret, r, n, 0);
}

static const struct dsn_rcpt FAILED = {
	.address = "bad@remote.test",
	.orcpt = "rfc822;Bad@remote.test",
	.action = "failed",
	.code = 550,
	.status = "5.1.1",
	.text = "No such user",
	.remote = "mx.remote.test:25",
	.last_attempt = 1795438040,
};

static void
test_failed_full(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	config_set(&cfg, "transport", "hostname", "mx.example.test", NULL);
	char *s = build(&cfg, "", &FAILED, 1);
	assert_non_null(strstr(s, "From: Mail Delivery System "
				  "<MAILER-DAEMON@mx.example.test>\r\n"));
	assert_non_null(strstr(s, "To: <a@example.test>\r\n"));
	assert_non_null(strstr(s, "Subject: Undelivered Mail Returned to "
				  "Sender\r\n"));
	assert_non_null(strstr(s, "Content-Type: multipart/report; "
				  "report-type=delivery-status;\r\n"));
	assert_non_null(strstr(s, "\r\nReporting-MTA: dns; mx.example.test\r\n"
				  "X-Portico-Queue-ID: 00000000000000AB\r\n"
				  "Original-Envelope-Id: envid\r\n"
				  "Arrival-Date: "));
	assert_non_null(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; "
				  "bad@remote.test\r\n"
				  "Original-Recipient: rfc822;Bad@remote.test\r\n"
				  "Action: failed\r\n"
				  "Status: 5.1.1\r\n"
				  "Remote-MTA: dns; mx.remote.test\r\n"
				  "Diagnostic-Code: smtp; 550 5.1.1 No such "
				  "user\r\n"
				  "Last-Attempt-Date: "));
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n\r\n"));
	assert_non_null(strstr(s, MSG));
	/* Every part boundary, then the closing one, and nothing after. */
	const char *b = strstr(s, "boundary=\"");
	assert_non_null(b);
	b += 10;
	char boundary[128];
	size_t bl = strcspn(b, "\"");
	snprintf(boundary, sizeof(boundary), "\r\n--%.*s", (int)bl, b);
	unsigned parts = 0;
	for (const char *p = strstr(s, boundary); p != NULL;
	     p = strstr(p + 1, boundary))
		parts++;
	assert_int_equal(parts, 4);
	char closing[140];
	snprintf(closing, sizeof(closing), "%s--\r\n", boundary);
	assert_true(strlen(s) > strlen(closing));
	assert_string_equal(s + strlen(s) - strlen(closing), closing);
	free(s);
	config_free(&cfg);
}

static void
test_headers_only(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	char *s = build(&cfg, "HDRS", &FAILED, 1);
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\n"
				  "From: a@example.test\r\nSubject: hello\r\n"
				  "\r\n"));
	assert_null(strstr(s, "the body line"));
	free(s);
	/* Above the return limit: headers only too. */
	config_set(&cfg, "transport", "dsn_return_limit", "10", NULL);
	s = build(&cfg, "FULL", &FAILED, 1);
	assert_non_null(strstr(s, "text/rfc822-headers"));
	assert_null(strstr(s, "the body line"));
	free(s);
	/* ... unless the message is the only copy (a forward not kept):
	   a failure returns it whole, over the limit and under HDRS too */
	for (int i = 0; i < 2; i++) {
		s = build_whole(&cfg, i ? "HDRS" : "", &FAILED, 1, 1);
		assert_non_null(
		    strstr(s, "Content-Type: message/rfc822\r\n\r\n"));
		assert_non_null(strstr(s, MSG));
		free(s);
	}
	config_free(&cfg);
}

static void
test_success(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	struct dsn_rcpt ok = {
		.address = "b@example.test",
		.orcpt = "",
		.action = "delivered",
		.code = 250,
		.status = "2.0.0",
		.text = "Saved",
		.remote = "",
	};
	char *s = build(&cfg, "", &ok, 1);
	assert_non_null(strstr(s, "Subject: Successful Mail Delivery "
				  "Report\r\n"));
	assert_non_null(strstr(s, "Action: delivered\r\nStatus: 2.0.0\r\n"));
	assert_null(strstr(s, "Remote-MTA"));
	assert_null(strstr(s, "Original-Recipient"));
	/* RFC 3461 4.3: no failure, no RET: the header only. */
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\n"
				  "From: a@example.test\r\nSubject: hello\r\n"
				  "\r\n"));
	assert_null(strstr(s, "the body line"));
	free(s);
	/* RET=FULL asked for the message: it comes back. */
	s = build(&cfg, "FULL", &ok, 1);
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n\r\n"));
	assert_non_null(strstr(s, MSG));
	free(s);
	/* A failure beside the success: the message, as for a failure. */
	struct dsn_rcpt both[2] = {ok, FAILED};
	s = build(&cfg, "", both, 2);
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n\r\n"));
	assert_non_null(strstr(s, MSG));
	free(s);
	config_free(&cfg);
}

static void
test_delayed(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	struct dsn_rcpt late = {
		.address = "far@remote.test",
		.orcpt = "",
		.action = "delayed",
		.code = 451,
		.status = "4.4.1",
		.text = "No host reachable",
		.remote = "",
		.last_attempt = 1795438040,
		.will_retry_until = 1795870032,
	};
	char *s = build(&cfg, "FULL", &late, 1);
	assert_non_null(strstr(s, "Subject: Delayed Mail (still being "
				  "retried)\r\n"));
	assert_non_null(strstr(s, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(s, "\r\nWill-Retry-Until: "));
	/* The message is still on its way: only its header comes back. */
	assert_non_null(strstr(s, "text/rfc822-headers"));
	assert_null(strstr(s, "the body line"));
	free(s);
	/* so too for the only copy of a forward */
	s = build_whole(&cfg, "", &late, 1, 1);
	assert_non_null(strstr(s, "text/rfc822-headers"));
	assert_null(strstr(s, "the body line"));
	free(s);
	config_free(&cfg);
}

/* RFC 3464 2.3.5, 2.3.6: Remote-MTA names a host (an address is no DNS
 * name); "smtp;" diagnostics are what a remote MTA said. */
static void
test_remote_mta_and_diagnostic(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	struct dsn_rcpt r = FAILED;
	static const char *const addrs[] = {"192.0.2.1:25", "[2001:db8::1]:25",
					    "2001:db8::1:25", ":25"};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		r.remote = addrs[i];
		char *s = build(&cfg, "", &r, 1);
		assert_null(strstr(s, "Remote-MTA"));
		assert_non_null(strstr(s, "Status: 5.1.1\r\nDiagnostic-Code: "
					  "smtp; 550 5.1.1 No such user\r\n"));
		free(s);
	}
	/* failed here, nobody answered: our own words, no "smtp;" */
	struct dsn_rcpt local = {
		.address = "far@remote.test",
		.orcpt = "",
		.action = "failed",
		.code = 550,
		.status = "5.4.4",
		.text = "No route to remote recipients",
		.remote = "",
	};
	char *s = build(&cfg, "", &local, 1);
	assert_null(strstr(s, "Remote-MTA"));
	assert_null(strstr(s, "smtp;"));
	assert_non_null(strstr(s, "Status: 5.4.4\r\nDiagnostic-Code: "
				  "X-Portico; No route to remote "
				  "recipients\r\n"));
	free(s);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_failed_full),
		cmocka_unit_test(test_headers_only),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_remote_mta_and_diagnostic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
