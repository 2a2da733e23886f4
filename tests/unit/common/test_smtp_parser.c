/* test_smtp_parser.c - SMTP verbs, MAIL/RCPT paths and parameters, BDAT
 * arguments and the content decoder (dot-stuffing, strict CR LF). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/smtp_parser.h"

static const struct smtp_offer submission = {
	.max_size = 1000,
	.smtputf8 = 1,
	.dsn = 1,
	.eightbit = 1,
	.auth = 1,
	.null_path_ok = 0,
};

static const struct smtp_offer lmtp = {
	.max_size = 1000,
	.smtputf8 = 1,
	.dsn = 1,
	.eightbit = 1,
	.null_path_ok = 1,
	.lmtp = 1,
};

static enum smtp_verb
verb(const char *line, const char **args)
{
	return smtp_parse_verb(line, strlen(line), args);
}

static void
test_verbs(void **state)
{
	const char *a;
	assert_int_equal(verb("EHLO client.example", &a), SMTP_EHLO);
	assert_string_equal(a, "client.example");
	assert_int_equal(verb("ehlo", &a), SMTP_EHLO);
	assert_string_equal(a, "");
	assert_int_equal(verb("MAIL FROM:<a@b.c> SIZE=10", &a), SMTP_MAIL);
	assert_string_equal(a, "<a@b.c> SIZE=10");
	assert_int_equal(verb("mail from:<>", &a), SMTP_MAIL);
	assert_string_equal(a, "<>");
	assert_int_equal(verb("RCPT TO:<x@y.z>", &a), SMTP_RCPT);
	assert_string_equal(a, "<x@y.z>");
	assert_int_equal(verb("MAIL <a@b.c>", &a), SMTP_MAIL);
	assert_int_equal(verb("BDAT 10 LAST", &a), SMTP_BDAT);
	assert_string_equal(a, "10 LAST");
	assert_int_equal(verb("StartTLS", &a), SMTP_STARTTLS);
	assert_int_equal(verb("LHLO x", &a), SMTP_LHLO);
	assert_int_equal(verb("MAILX", &a), SMTP_UNKNOWN);
	assert_int_equal(verb("", &a), SMTP_UNKNOWN);
	assert_string_equal(smtp_verb_name(SMTP_QUIT), "QUIT");
}

static void
mail_ok(const char *args, const struct smtp_offer *o, struct smtp_mail *m)
{
	struct smtp_reply err = {0};
	if (smtp_parse_mail(args, o, m, &err) != 0)
		fail_msg("MAIL %s: %u %s %s", args, err.code, err.status,
			 err.text);
}

static void
mail_bad(const char *args, const struct smtp_offer *o, unsigned code,
	 const char *status)
{
	struct smtp_mail m;
	struct smtp_reply err = {0};
	if (smtp_parse_mail(args, o, &m, &err) == 0)
		fail_msg("MAIL %s accepted", args);
	if (err.code != code || strcmp(err.status, status) != 0)
		fail_msg("MAIL %s: %u %s, expected %u %s", args, err.code,
			 err.status, code, status);
}

static void
test_mail(void **state)
{
	struct smtp_mail m;
	mail_ok("<alice@example.org>", &submission, &m);
	assert_string_equal(m.path, "alice@example.org");
	assert_int_equal(m.size, 0);
	assert_int_equal(m.body, SMTP_BODY_7BIT);
	mail_ok(" <alice@example.org>", &submission, &m);
	mail_ok("<a.b+c@[127.0.0.1]> SIZE=1000 BODY=8BITMIME RET=HDRS "
		"ENVID=x+2By",
		&submission, &m);
	assert_string_equal(m.path, "a.b+c@[127.0.0.1]");
	assert_int_equal(m.size, 1000);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_string_equal(m.ret, "HDRS");
	assert_string_equal(m.envid, "x+y");
	mail_ok("<@relay.example,@r2.example:bob@example.org>", &submission,
		&m);
	assert_string_equal(m.path, "bob@example.org");
	mail_ok("<\"john doe\"@example.org>", &submission, &m);
	assert_string_equal(m.path, "\"john doe\"@example.org");
	mail_ok("<\"a>b\"@example.org>", &submission, &m);
	assert_string_equal(m.path, "\"a>b\"@example.org");
	mail_ok("<j\xc3\xb6rg@example.org> SMTPUTF8", &submission, &m);
	assert_true(m.smtputf8);
	mail_ok("<a@b.example> AUTH=<>", &submission, &m);
	mail_ok("<>", &lmtp, &m);
	assert_string_equal(m.path, "");

	mail_bad("<>", &submission, 553, "5.7.1");
	mail_bad("alice@example.org", &submission, 501, "5.5.4");
	mail_bad("<alice@example.org", &submission, 553, "5.1.7");
	mail_bad("<alice>", &submission, 553, "5.1.7");
	mail_bad("<a..b@example.org>", &submission, 553, "5.1.7");
	mail_bad("<.a@example.org>", &submission, 553, "5.1.7");
	mail_bad("<a@-example.org>", &submission, 553, "5.1.7");
	mail_bad("<a@example..org>", &submission, 553, "5.1.7");
	mail_bad("<a b@example.org>", &submission, 553, "5.1.7");
	mail_bad("<j\xc3\xb6rg@example.org>", &submission, 553, "5.6.7");
	mail_bad("<j\xc3@example.org> SMTPUTF8", &submission, 553, "5.1.7");
	mail_bad("<a@b.example> SIZE=1001", &submission, 552, "5.3.4");
	mail_bad("<a@b.example> SIZE=99999999999999999999999", &submission,
		 501, "5.5.4");
	mail_bad("<a@b.example> SIZE=", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> SIZE=1x", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> SIZE=1 SIZE=2", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> BODY=BINARYMIME", &submission, 555, "5.5.4");
	mail_bad("<a@b.example> RET=ALL", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> ENVID=a+zz", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> ENVID=a+4", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> FOO=bar", &submission, 555, "5.5.4");
	mail_bad("<a@b.example> SMTPUTF8=yes", &submission, 501, "5.5.4");
	mail_bad("<a@b.example>SIZE=1", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> =1", &submission, 501, "5.5.4");
	mail_bad("<a@b.example> AUTH=<>", &lmtp, 555, "5.5.4");
	/* XDELIVERYID: LMTP only, 1 to 64 of A-Z a-z 0-9 . - _ */
	mail_ok("<a@b.example> XDELIVERYID=be_1.00000000000000A2.1795000000",
		&lmtp, &m);
	assert_string_equal(m.delivery_id, "be_1.00000000000000A2.1795000000");
	mail_ok("<a@b.example>", &lmtp, &m);
	assert_string_equal(m.delivery_id, "");
	char id64[100] = "<a@b.example> XDELIVERYID=";
	memset(id64 + strlen(id64), 'x', 64);
	mail_ok(id64, &lmtp, &m);
	assert_int_equal(strlen(m.delivery_id), 64);
	strcat(id64, "x");
	mail_bad(id64, &lmtp, 501, "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID=", &lmtp, 501, "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID", &lmtp, 501, "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID=a/b", &lmtp, 501, "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID=a+2Bb", &lmtp, 501, "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID=a XDELIVERYID=b", &lmtp, 501,
		 "5.5.4");
	mail_bad("<a@b.example> XDELIVERYID=a", &submission, 555, "5.5.4");
	/* A path over 256 octets. */
	char big[400] = "<";
	memset(big + 1, 'a', 60);
	strcat(big, "@");
	for (int i = 0; i < 5; i++)
		strcat(big, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
	strcat(big, "example>");
	mail_bad(big, &submission, 553, "5.1.7");
	/* Too many parameters. */
	char many[600] = "<a@b.example>";
	for (int i = 0; i < SMTP_MAX_PARAMS + 1; i++)
		strcat(many, " RET=FULL");
	mail_bad(many, &submission, 555, "5.5.4");
}

static void
test_rcpt(void **state)
{
	struct smtp_rcpt r;
	struct smtp_reply err;
	assert_int_equal(smtp_parse_rcpt("<bob@example.org> NOTIFY=success,"
					 "FAILURE ORCPT=rfc822;bob+40example"
					 ".org",
					 &submission, &r, &err),
			 0);
	assert_string_equal(r.path, "bob@example.org");
	assert_string_equal(r.notify, "SUCCESS,FAILURE");
	assert_string_equal(r.orcpt, "rfc822;bob@example.org");
	assert_int_equal(smtp_parse_rcpt("<Postmaster>", &submission, &r,
					 &err),
			 0);
	assert_string_equal(r.path, "Postmaster");
	assert_int_equal(smtp_parse_rcpt("<x@y.example> NOTIFY=NEVER",
					 &submission, &r, &err),
			 0);
	assert_string_equal(r.notify, "NEVER");

	static const char *bad[] = {
		"<>",
		"bob@example.org",
		"<bob>",
		"<x@y.example> NOTIFY=NEVER,SUCCESS",
		"<x@y.example> NOTIFY=SUCCESS,SUCCESS",
		"<x@y.example> NOTIFY=SUCCESS,",
		"<x@y.example> NOTIFY=SOMETIMES",
		"<x@y.example> NOTIFY",
		"<x@y.example> ORCPT=bob@example.org",
		"<x@y.example> ORCPT=;bob",
		"<x@y.example> NOTIFY=NEVER NOTIFY=NEVER",
		"<x@y.example> SIZE=10",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_parse_rcpt(bad[i], &submission, &r, &err) == 0)
			fail_msg("RCPT %s accepted", bad[i]);
}

/* A reverse-path alone, as portico-admin deliver --from takes it: the
 * path of MAIL FROM, nothing before or after it. */
static void
test_reverse_path(void **state)
{
	char out[SMTP_MAX_PATH + 1];
	assert_int_equal(
	    smtp_parse_reverse_path("<a.b+c@example.org>", 0, out, sizeof(out)),
	    0);
	assert_string_equal(out, "a.b+c@example.org");
	assert_int_equal(smtp_parse_reverse_path("<>", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(smtp_parse_reverse_path("<@r.example:b@[10.0.0.1]>", 0,
						 out, sizeof(out)),
			 0);
	assert_string_equal(out, "b@[10.0.0.1]");
	assert_int_equal(smtp_parse_reverse_path("<\"a>b\"@example.org>", 0,
						 out, sizeof(out)),
			 0);
	assert_string_equal(out, "\"a>b\"@example.org");
	assert_int_equal(smtp_parse_reverse_path("<j\xc3\xb6rg@example.org>", 1,
						 out, sizeof(out)),
			 0);
	assert_string_equal(out, "j\xc3\xb6rg@example.org");

	static const char *const bad[] = {
		"", "a@example.org", "<a@example.org", "<a@example.org> ",
		"<a@example.org> SIZE=10", " <a@example.org>", "<<>>",
		"<a@example.org>>", "<a b@example.org>", "<a..b@example.org>",
		"<a@-example.org>", "<alice>", "<postmaster>",
		"<a@example.org>\r\nX: y", "<j\xc3@example.org>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_parse_reverse_path(bad[i], 1, out, sizeof(out)) == 0)
			fail_msg("reverse-path %s accepted", bad[i]);
	/* UTF-8 only when asked for */
	assert_int_equal(smtp_parse_reverse_path("<j\xc3\xb6rg@example.org>", 0,
						 out, sizeof(out)),
			 -1);
	/* as long as a path may be, and one octet more */
	char big[SMTP_MAX_PATH + 2] = "<";
	memset(big + 1, 'a', 64);
	strcpy(big + 65, "@");
	while (strlen(big) < SMTP_MAX_PATH - 1 - 50)
		strcat(big,
		       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
	while (strlen(big) < SMTP_MAX_PATH - 1)
		strcat(big, "c");
	strcat(big, ">");
	assert_int_equal(strlen(big), SMTP_MAX_PATH);
	assert_int_equal(smtp_parse_reverse_path(big, 0, out, sizeof(out)), 0);
	big[SMTP_MAX_PATH - 1] = 'c';
	strcpy(big + SMTP_MAX_PATH, ">");
	assert_int_equal(smtp_parse_reverse_path(big, 0, out, sizeof(out)), -1);
}

static void
test_bdat(void **state)
{
	uint64_t n;
	int last;
	struct smtp_reply err;
	assert_int_equal(smtp_parse_bdat("100", &n, &last, &err), 0);
	assert_int_equal(n, 100);
	assert_false(last);
	assert_int_equal(smtp_parse_bdat("0 last", &n, &last, &err), 0);
	assert_int_equal(n, 0);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("", &n, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("-1", &n, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("10 LASTX", &n, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("10  LAST", &n, &last, &err), -1);
	assert_int_equal(smtp_parse_bdat("18446744073709551616", &n, &last,
					 &err),
			 -1);
	assert_int_equal(err.code, 501);
	assert_true(smtp_addr_equal("Alice@Example.ORG", "alice@example.org"));
	assert_false(smtp_addr_equal("alice@example.org", "alice@example.or"));
}

/* The decoded content and flags of in, fed in pieces of step bytes
 * (0: whole) through an output buffer of outsize. */
struct decoded {
	char out[512];
	size_t outlen;
	size_t used;
	int ended;
	uint64_t bare_cr, bare_lf, nul;
};

static void
decode(enum smtp_data_mode mode, const char *in, size_t len, size_t step,
       size_t outsize, struct decoded *r)
{
	struct smtp_data d;
	smtp_data_init(&d, mode);
	memset(r, 0, sizeof(*r));
	size_t pos = 0;
	while (pos < len && !d.ended) {
		size_t n = step ? step : len - pos;
		if (n > len - pos)
			n = len - pos;
		char tmp[512];
		size_t olen = 0;
		size_t used = smtp_data_feed(&d, in + pos, n, tmp, outsize,
					     &olen);
		assert_true(olen <= outsize);
		memcpy(r->out + r->outlen, tmp, olen);
		r->outlen += olen;
		pos += used;
		assert_true(used > 0 || d.ended);
	}
	if (mode == SMTP_DATA_COUNTED)
		r->outlen += smtp_data_finish(&d, r->out + r->outlen);
	r->used = pos;
	r->ended = d.ended;
	r->bare_cr = d.bare_cr;
	r->bare_lf = d.bare_lf;
	r->nul = d.nul;
	assert_int_equal(d.size, r->outlen);
}

/* Same result whole, byte by byte, in pieces of 3, through a 2-byte
 * output buffer. */
static void
check_data(enum smtp_data_mode mode, const char *in, size_t len,
	   const char *want, size_t wantlen, size_t used, int ended,
	   uint64_t bare_cr, uint64_t bare_lf)
{
	static const size_t steps[] = {0, 1, 3};
	static const size_t outs[] = {512, 2, 5};
	for (size_t s = 0; s < 3; s++) {
		for (size_t o = 0; o < 3; o++) {
			struct decoded r;
			decode(mode, in, len, steps[s], outs[o], &r);
			assert_int_equal(r.outlen, wantlen);
			assert_memory_equal(r.out, want, wantlen);
			assert_int_equal(r.used, used);
			assert_int_equal(r.ended, ended);
			assert_int_equal(r.bare_cr, bare_cr);
			assert_int_equal(r.bare_lf, bare_lf);
		}
	}
}

#define DOT(in, want, used, ended, cr, lf)                                   \
	check_data(SMTP_DATA_DOT, in, sizeof(in) - 1, want, sizeof(want) - 1, \
		   used, ended, cr, lf)

static void
test_data_dot(void **state)
{
	/* A plain message; what follows the end is left. */
	DOT("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
	    "Subject: x\r\n\r\nhello\r\n", 24, 1, 0, 0);
	/* Empty message. */
	DOT(".\r\n", "", 3, 1, 0, 0);
	/* Dot-unstuffing. */
	DOT("..\r\n...x\r\n.\r\n", ".\r\n..x\r\n", 13, 1, 0, 0);
	/* A dot inside a line is text. */
	DOT("a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n", 11, 1, 0, 0);
	/* The smuggling forms never end the message. */
	DOT("a\n.\nMAIL FROM:<x@y.z>\r\n.\r\n",
	    "a\n.\nMAIL FROM:<x@y.z>\r\n", 26, 1, 0, 2);
	DOT("a\r.\rMAIL FROM:<x@y.z>\r\n.\r\n",
	    "a\r.\rMAIL FROM:<x@y.z>\r\n", 26, 1, 2, 0);
	DOT("a\n.\r\nMAIL FROM:<x@y.z>\r\n.\r\n",
	    "a\n.\r\nMAIL FROM:<x@y.z>\r\n", 27, 1, 0, 1);
	DOT("a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 11, 1, 0, 1);
	DOT("a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 11, 1, 1, 0);
	DOT("a\r\n.\r\rb\r\n.\r\n", "a\r\n\r\rb\r\n", 12, 1, 2, 0);
	DOT("a\r\r\n.\r\n", "a\r\r\n", 7, 1, 1, 0);
	/* Not ended: everything used, the CR held back. */
	DOT("abc\r", "abc", 4, 0, 0, 0);
	DOT("abc\r\n.", "abc\r\n", 6, 0, 0, 0);
	DOT("abc\r\n.\r", "abc\r\n", 7, 0, 0, 0);
	DOT("\n.\n", "\n.\n", 3, 0, 0, 2);
}

#define CNT(in, want, cr, lf)                                                \
	check_data(SMTP_DATA_COUNTED, in, sizeof(in) - 1, want,              \
		   sizeof(want) - 1, sizeof(in) - 1, 0, cr, lf)

static void
test_data_counted(void **state)
{
	CNT("a\r\n.\r\n..\r\n", "a\r\n.\r\n..\r\n", 0, 0);
	CNT("a\nb\r", "a\nb\r", 1, 1);
	CNT("a\r\rb", "a\r\rb", 2, 0);
	CNT("", "", 0, 0);
}

/* NUL bytes are data, passed through and counted (the caller refuses
 * the message), in every position and both modes. */
static void
test_data_nul(void **state)
{
	static const char dot[] = "\0a\r\nb\0\0c\r\n.\0\r\n\r\n.\r\nX";
	static const char counted[] = "a\0\r\n\0";
	struct decoded r;
	for (size_t step = 0; step < 3; step++) {
		decode(SMTP_DATA_DOT, dot, sizeof(dot) - 1, step, 512, &r);
		assert_int_equal(r.nul, 4);
		assert_int_equal(r.ended, 1);
		assert_int_equal(r.used, sizeof(dot) - 2); /* X left */
		assert_int_equal(r.outlen, sizeof(dot) - 1 - 1 - 3 - 1);
		assert_int_equal(r.bare_cr + r.bare_lf, 0);
		decode(SMTP_DATA_COUNTED, counted, sizeof(counted) - 1, step,
		       512, &r);
		assert_int_equal(r.nul, 2);
		assert_int_equal(r.outlen, sizeof(counted) - 1);
	}
	/* a message without NUL counts none */
	decode(SMTP_DATA_DOT, "a\r\n.\r\n", 6, 0, 512, &r);
	assert_int_equal(r.nul, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_reverse_path),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_data_dot),
		cmocka_unit_test(test_data_counted),
		cmocka_unit_test(test_data_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
