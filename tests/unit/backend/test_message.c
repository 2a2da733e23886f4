/* test_message.c - the Date: and Message-ID: a submission lacks (RFC 6409
 * 8.2, 8.3): found in any case, only in the header section, added once
 * after the trace fields. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/transport/transport.h"
#include "common/buf.h"
#include "common/config.h"

#define RCVD                                                                  \
	"Received: from c.example ([192.0.2.1])\r\n\tby s1f1 (Portico) with " \
	"ESMTPSA id x;\r\n\tMon, 7 Dec 2026 10:00:00 +0000\r\n"

/* The message after transport_submission_fields() (NUL-terminated), or
 * NULL when it left it alone. */
static char *
complete(const char *msg)
{
	struct config cfg;
	config_defaults(&cfg);
	config_set(&cfg, "transport", "hostname", "mx.example.test", NULL);
	struct buf out = BUF_INIT;
	char *s = NULL;
	if (transport_submission_fields(&cfg, msg, strlen(msg), &out)) {
		s = strndup(buf_ptr(&out), buf_used(&out));
		assert_non_null(s);
	}
	buf_free(&out);
	config_free(&cfg);
	return s;
}

/* s is prefix (as is), then what re (extended) matches whole. */
static void
assert_shape(const char *s, const char *prefix, const char *re)
{
	char whole[512];
	regex_t r;
	assert_int_equal(strncmp(s, prefix, strlen(prefix)), 0);
	snprintf(whole, sizeof(whole), "^%s$", re);
	assert_int_equal(regcomp(&r, whole, REG_EXTENDED), 0);
	int rc = regexec(&r, s + strlen(prefix), 0, NULL, 0);
	regfree(&r);
	if (rc != 0)
		fail_msg("%s\ndoes not match\n%s", s, whole);
}

#define DATE_RE "Date: [A-Z][a-z]{2}, [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} "    \
		"[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000\r\n"
#define MID_RE "Message-ID: <[0-9]{14}\\.[0-9a-f]{24}@mx\\.example\\.test>\r\n"

static void
test_both_added_after_trace(void **state)
{
	(void)state;
	char *s = complete(RCVD "From: a@example.test\r\nSubject: s\r\n\r\n"
				"Date: body\r\n");
	assert_non_null(s);
	assert_shape(s, RCVD, DATE_RE MID_RE "From: a@example\\.test\r\n"
				 "Subject: s\r\n\r\nDate: body\r\n");
	free(s);
	/* two messages, two ids */
	char *a = complete(RCVD "\r\nbody\r\n");
	char *b = complete(RCVD "\r\nbody\r\n");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, b);
	assert_shape(a, RCVD, DATE_RE MID_RE "\r\nbody\r\n");
	free(a);
	free(b);
}

static void
test_present_in_any_case(void **state)
{
	(void)state;
	/* both there: left alone */
	assert_null(complete(RCVD "date: Mon, 7 Dec 2026 09:00:00 +0100\r\n"
				  "MESSAGE-ID: <x@y>\r\n\r\nbody\r\n"));
	/* the obsolete form with a space before the colon counts */
	assert_null(complete(RCVD "Date : Mon, 7 Dec 2026 09:00:00 +0100\r\n"
				  "Message-Id:<x@y>\r\n\r\n"));
	/* one of them: only the other added */
	char *s = complete(RCVD "Message-Id: <x@y>\r\n\r\nb\r\n");
	assert_non_null(s);
	assert_shape(s, RCVD, DATE_RE "Message-Id: <x@y>\r\n\r\nb\r\n");
	free(s);
	s = complete(RCVD "DATE: Mon, 7 Dec 2026 09:00:00 +0100\r\n\r\n");
	assert_non_null(s);
	assert_shape(s, RCVD, MID_RE "DATE: Mon, 7 Dec 2026 09:00:00 \\+0100\r\n\r\n");
	free(s);
}

static void
test_only_the_header_section(void **state)
{
	(void)state;
	/* in the body, in a continuation line, in another field's name:
	   none of them counts */
	char *s = complete(RCVD "Subject: x\r\n Date: no\r\nResent-Date: no\r\n"
				"X-Message-ID: no\r\n\r\nDate: Mon, 7 Dec "
				"2026\r\nMessage-ID: <body@x>\r\n");
	assert_non_null(s);
	assert_shape(s, RCVD, DATE_RE MID_RE "Subject: x\r\n Date: no\r\n"
				 "Resent-Date: no\r\nX-Message-ID: no\r\n\r\n"
				 "Date: Mon, 7 Dec 2026\r\nMessage-ID: <body@x>\r\n");
	free(s);
}

static void
test_header_without_body(void **state)
{
	(void)state;
	/* no empty line, the last line unended: a line end first */
	char *s = complete("Received: from a\r\n\tby b; date\r\n"
			   "Return-Path: <x@y>\r\nReceived: from c");
	assert_non_null(s);
	assert_shape(s, "Received: from a\r\n\tby b; date\r\nReturn-Path: "
			"<x@y>\r\nReceived: from c\r\n",
		     DATE_RE MID_RE);
	free(s);
	s = complete("Subject: only\r\n");
	assert_non_null(s);
	assert_shape(s, "", DATE_RE MID_RE "Subject: only\r\n");
	free(s);
	s = complete("");
	assert_non_null(s);
	assert_shape(s, "", DATE_RE MID_RE);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_added_after_trace),
		cmocka_unit_test(test_present_in_any_case),
		cmocka_unit_test(test_only_the_header_section),
		cmocka_unit_test(test_header_without_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
