/* test_mime.c - MIME parsing, ENVELOPE/BODY/BODYSTRUCTURE, sections,
 * BINARY, decoders and the MIME cache.
 *
 * Expected IMAP strings are written by hand from the RFC 3501 grammar and
 * Dovecot's conventions (charset us-ascii added to text parts, "7bit" when
 * no Content-Transfer-Encoding, Sender/Reply-To default to From, sizes
 * with CRLF line ends); the "dovecot_*" vectors are Dovecot's own test
 * messages with the answers its test suite expects.  Every message is also
 * run through the cache (build, load) and must give the same answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/mime/mime.h"

#define S(lit) lit, sizeof(lit) - 1

/* -- helpers ---------------------------------------------------------------- */

struct t {
	struct arena a;
};

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	arena_init(&t->a, 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;
	arena_free(&t->a);
	free(t);
	return 0;
}

/* Bytes of b; "" rather than NULL + 0 when it never held anything. */
static const char *
bp(const struct buf *b)
{
	return b->data != NULL ? buf_ptr(b) : "";
}

static int
same(const struct buf *b, const char *want, size_t want_len)
{
	return buf_used(b) == want_len &&
	       (want_len == 0 || memcmp(bp(b), want, want_len) == 0);
}

/* One IMAP value (list, NIL, number, quoted string, literal) at s: its
 * length, or 0 if malformed.  *depth_r receives the deepest list nesting. */
static size_t
imap_value(const char *s, size_t len, int depth, int *depth_r)
{
	size_t i = 0;
	if (len == 0)
		return 0;
	if (depth > *depth_r)
		*depth_r = depth;
	if (s[0] == '(') {
		i = 1;
		for (;;) {
			if (i >= len)
				return 0;
			if (s[i] == ')')
				return i + 1;
			size_t n = imap_value(s + i, len - i, depth + 1,
					      depth_r);
			if (n == 0)
				return 0;
			i += n;
			if (i < len && s[i] == ' ')
				i++;
		}
	}
	if (s[0] == '"') {
		for (i = 1; i < len; i++) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				return i + 1;
			else if (s[i] == '\r' || s[i] == '\n')
				return 0;
		}
		return 0;
	}
	if (s[0] == '{') {
		size_t n = 0;
		for (i = 1; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			n = n * 10 + (size_t)(s[i] - '0');
		if (i + 3 > len || s[i] != '}' || s[i + 1] != '\r' ||
		    s[i + 2] != '\n' || len - i - 3 < n)
			return 0;
		return i + 3 + n;
	}
	if (len >= 3 && memcmp(s, "NIL", 3) == 0)
		return 3;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* The output is exactly one well-formed parenthesized list. */
static int
well_formed(const struct buf *b, int *depth_r)
{
	int depth = 0;
	size_t n = imap_value(bp(b), buf_used(b), 1, &depth);
	if (depth_r != NULL)
		*depth_r = depth;
	return n > 0 && n == buf_used(b) && bp(b)[0] == '(';
}

enum out_kind { OUT_ENVELOPE, OUT_BODY, OUT_BODYSTRUCTURE };

static void
out_write(const struct mime_msg *m, enum out_kind k, struct buf *b)
{
	switch (k) {
	case OUT_ENVELOPE:
		mime_imap_envelope(m, b);
		break;
	case OUT_BODY:
		mime_imap_body(m, b);
		break;
	case OUT_BODYSTRUCTURE:
		mime_imap_bodystructure(m, b);
		break;
	}
}

static void
assert_buf(const struct buf *b, const char *want, size_t want_len)
{
	if (!same(b, want, want_len)) {
		print_error("got:  %.*s\nwant: %.*s\n", (int)buf_used(b),
			    bp(b), (int)want_len, want);
		fail();
	}
}

/* Parses msg both directly and through the cache; the two must agree. */
static struct mime_msg *
parse2(struct t *t, const char *msg, size_t len, struct mime_msg **cached_r)
{
	struct mime_msg *m, *c;
	const char *error = NULL;
	assert_int_equal(mime_parse(&t->a, msg, len, &m, &error), 0);

	struct buf blob = BUF_INIT;
	assert_int_equal(mime_cache_build(msg, len, &blob), 0);
	char *copy = arena_alloc(&t->a, buf_used(&blob));
	memcpy(copy, buf_ptr(&blob), buf_used(&blob));
	assert_int_equal(mime_cache_load(&t->a, copy, buf_used(&blob), len,
					 &c, &error),
			 0);
	size_t direct_len;
	const void *direct = mime_blob(m, &direct_len);
	assert_int_equal(direct_len, buf_used(&blob));
	assert_memory_equal(direct, buf_ptr(&blob), direct_len);
	buf_free(&blob);
	if (cached_r != NULL)
		*cached_r = c;
	return m;
}

static void
check_out(struct t *t, const char *msg, size_t len, enum out_kind k,
	  const char *want, size_t want_len)
{
	struct mime_msg *c, *m = parse2(t, msg, len, &c);
	struct buf b1 = BUF_INIT, b2 = BUF_INIT;
	out_write(m, k, &b1);
	out_write(c, k, &b2);
	assert_buf(&b1, want, want_len);
	assert_buf(&b2, want, want_len);
	assert_true(well_formed(&b1, NULL));
	buf_free(&b1);
	buf_free(&b2);
}

#define CHECK_OUT(t, msg, k, want) check_out(t, S(msg), k, S(want))

static void
section_bytes(struct t *t, const struct mime_msg *m, const char *msg,
	      size_t len, const char *spec, struct buf *out)
{
	struct mime_section sec;
	const char *error = NULL;
	int ret = mime_section_fetch(m, msg, len, spec, strlen(spec), &t->a,
				     &sec, &error);
	if (ret != MIME_OK) {
		print_error("BODY[%s]: %d %s\n", spec, ret, error);
		fail();
	}
	mime_section_copy(&sec, 0, UINT64_MAX, out);
	assert_int_equal(sec.size, buf_used(out));
}

static void
check_section(struct t *t, const char *msg, size_t len, const char *spec,
	      const char *want, size_t want_len)
{
	struct mime_msg *c, *m = parse2(t, msg, len, &c);
	struct buf b1 = BUF_INIT, b2 = BUF_INIT;
	section_bytes(t, m, msg, len, spec, &b1);
	section_bytes(t, c, msg, len, spec, &b2);
	if (!same(&b1, want, want_len)) {
		print_error("BODY[%s]\n", spec);
		assert_buf(&b1, want, want_len);
	}
	assert_buf(&b2, want, want_len);
	/* The spec parsed once, used for both structures (a FETCH of many
	   messages) */
	struct mime_spec *ps;
	const char *error = NULL;
	assert_int_equal(
	    mime_spec_parse(&t->a, spec, strlen(spec), &ps, &error), MIME_OK);
	const struct mime_msg *both[] = {m, c};
	for (int i = 0; i < 2; i++) {
		struct mime_section sec;
		struct buf b3 = BUF_INIT;
		assert_int_equal(mime_section_fetch_parsed(both[i], msg, len,
							   ps, 0, &t->a, &sec,
							   &error),
				 MIME_OK);
		mime_section_copy(&sec, 0, UINT64_MAX, &b3);
		assert_buf(&b3, want, want_len);
		buf_free(&b3);
	}
	/* A message without bare LFs, known to be so (MIME_SEC_CRLF), gives
	   the same octets without being looked at; a whole-message spec
	   needs no structure. */
	int crlf = 1;
	for (size_t i = 0; i < len; i++)
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			crlf = 0;
	unsigned opts[] = {0, MIME_SEC_CRLF};
	for (int o = 0; o < 1 + crlf; o++) {
		struct mime_section sec;
		struct buf b4 = BUF_INIT;
		assert_int_equal(mime_section_fetch_parsed(m, msg, len, ps,
							   opts[o], &t->a, &sec,
							   &error),
				 MIME_OK);
		mime_section_copy(&sec, 0, UINT64_MAX, &b4);
		assert_buf(&b4, want, want_len);
		buf_reset(&b4);
		if (mime_spec_whole(ps)) {
			mime_section_whole(msg, len, opts[o], &t->a, &sec);
			mime_section_copy(&sec, 0, UINT64_MAX, &b4);
			assert_buf(&b4, want, want_len);
		}
		buf_free(&b4);
	}
	assert_int_equal(mime_spec_whole(ps), spec[0] == '\0');
	buf_free(&b1);
	buf_free(&b2);
}

#define CHECK_SECTION(t, msg, spec, want)                                  \
	check_section(t, S(msg), spec, S(want))

/* -- test messages ------------------------------------------------------------ */

/* RFC 3501's example message. */
static const char msg_simple[] =
	"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
	"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	"Subject: afternoon meeting\r\n"
	"To: mooch@owatagu.siam.edu.example\r\n"
	"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	"\r\n"
	"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

/* multipart/alternative inside multipart/mixed, with an attachment. */
static const char msg_mixed[] =
	"From: \"Doe, John\" <john@example.com>\r\n"
	"To: Mary Smith <mary@example.net>\r\n"
	"Subject: =?utf-8?q?Caf=C3=A9?= menu\r\n"
	"Date: Tue, 1 Apr 2025 10:00:00 +0000\r\n"
	"Message-ID: <menu@example.com>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"This is a multi-part message.\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Caf=C3=A9 today=\r\n"
	", tomorrow too.\r\n"
	"--inner\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"\r\n"
	"<p>Caf\xc3\xa9</p>\r\n"
	"--inner--\r\n"
	"\r\n"
	"--outer\r\n"
	"Content-Type: application/pdf; name=\"menu.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=\"menu.pdf\"\r\n"
	"\r\n"
	"JVBERi0xLjQKJcTl8uXrCg==\r\n"
	"--outer--\r\n";

/* A forwarded message/rfc822 with its own multipart. */
#define FWD_EMB_HDR                                                       \
	"From: carol@example.com\r\n"                                    \
	"Subject: report\r\n"                                            \
	"Message-ID: <r1@example.com>\r\n"                               \
	"MIME-Version: 1.0\r\n"                                          \
	"Content-Type: multipart/mixed; boundary=\"b2\"\r\n"             \
	"\r\n"
#define FWD_EMB_BODY                                                      \
	"--b2\r\n"                                                       \
	"Content-Type: text/plain; charset=iso-8859-1\r\n"               \
	"Content-Transfer-Encoding: quoted-printable\r\n"                \
	"\r\n"                                                           \
	"Gr=FC=DFe\r\n"                                                  \
	"--b2\r\n"                                                       \
	"Content-Type: image/png\r\n"                                    \
	"Content-Transfer-Encoding: base64\r\n"                          \
	"Content-ID: <img1>\r\n"                                         \
	"\r\n"                                                           \
	"iVBORw0KGgo=\r\n"                                               \
	"--b2--"
static const char msg_fwd[] =
	"From: alice@example.org\r\n"
	"To: bob@example.org\r\n"
	"Subject: Fwd: report\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	"\r\n"
	"--b1\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"See below.\r\n"
	"--b1\r\n"
	"Content-Type: message/rfc822\r\n"
	"Content-Description: forwarded\r\n"
	"\r\n" FWD_EMB_HDR FWD_EMB_BODY "\r\n"
	"--b1--\r\n";

/* Part 2 ends before the CRLF that precedes "--b1--".  That CRLF also ends
 * the "--b2--" line, and Dovecot counts it in the inner multipart (its
 * empty epilogue), so the message part is FWD_EMB_HDR FWD_EMB_BODY CRLF:
 * 359 octets, 18 lines. */
#define FWD_PART2 FWD_EMB_HDR FWD_EMB_BODY "\r\n"

static const char bs_fwd[] =
	"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 "
	"0 NIL NIL NIL NIL)"
	"(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 359 "
	"(NIL \"report\" ((NIL NIL \"carol\" \"example.com\")) "
	"((NIL NIL \"carol\" \"example.com\")) "
	"((NIL NIL \"carol\" \"example.com\")) NIL NIL NIL NIL "
	"\"<r1@example.com>\") "
	"((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
	"\"quoted-printable\" 9 0 NIL NIL NIL NIL)"
	"(\"image\" \"png\" NIL \"<img1>\" NIL \"base64\" 12 NIL NIL NIL "
	"NIL) \"mixed\" (\"boundary\" \"b2\") NIL NIL NIL) 18 NIL NIL NIL "
	"NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)";

/* -- ENVELOPE / BODY / BODYSTRUCTURE ------------------------------------------ */

static void
test_simple(void **state)
{
	struct t *t = *state;
	CHECK_OUT(t, msg_simple, OUT_ENVELOPE,
		  "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" "
		  "\"afternoon meeting\" "
		  "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		  "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		  "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
		  "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) "
		  "NIL NIL NIL \"<B27397-0100000@Blurdybloop.example>\")");
	CHECK_OUT(t, msg_simple, OUT_BODYSTRUCTURE,
		  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
		  "\"7bit\" 55 1 NIL NIL NIL NIL)");
	CHECK_OUT(t, msg_simple, OUT_BODY,
		  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
		  "\"7bit\" 55 1)");
}

static void
test_mixed_alternative(void **state)
{
	struct t *t = *state;
	CHECK_OUT(t, msg_mixed, OUT_ENVELOPE,
		  "(\"Tue, 1 Apr 2025 10:00:00 +0000\" "
		  "\"=?utf-8?q?Caf=C3=A9?= menu\" "
		  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
		  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
		  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
		  "((\"Mary Smith\" NIL \"mary\" \"example.net\")) "
		  "NIL NIL NIL \"<menu@example.com>\")");
	CHECK_OUT(t, msg_mixed, OUT_BODYSTRUCTURE,
		  "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
		  "\"quoted-printable\" 33 1 NIL NIL NIL NIL)"
		  "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
		  "12 0 NIL NIL NIL NIL) \"alternative\" "
		  "(\"boundary\" \"inner\") NIL NIL NIL)"
		  "(\"application\" \"pdf\" (\"name\" \"menu.pdf\") NIL NIL "
		  "\"base64\" 24 NIL (\"attachment\" (\"filename\" "
		  "\"menu.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"outer\") "
		  "NIL NIL NIL)");
	CHECK_OUT(t, msg_mixed, OUT_BODY,
		  "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
		  "\"quoted-printable\" 33 1)"
		  "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
		  "12 0) \"alternative\")"
		  "(\"application\" \"pdf\" (\"name\" \"menu.pdf\") NIL NIL "
		  "\"base64\" 24) \"mixed\")");

	/* the part table, as SEARCH sees it */
	struct mime_msg *m = parse2(t, S(msg_mixed), NULL);
	struct mime_part_info pi;
	assert_int_equal(mime_part_count(m), 5);
	assert_int_equal(mime_part_get(m, 2, &pi), 0);
	assert_int_equal(pi.parent, 1);
	assert_int_equal(pi.depth, 2);
	assert_string_equal(pi.type, "text");
	assert_string_equal(pi.subtype, "plain");
	assert_string_equal(pi.cte, "quoted-printable");
	assert_int_equal(pi.body_len, 33);
	assert_string_equal(mime_part_param(m, 2, "CHARSET", 0), "utf-8");
	assert_string_equal(mime_part_param(m, 4, "filename", 1), "menu.pdf");
	assert_null(mime_part_param(m, 4, "filename", 0));
	assert_int_equal(mime_part_get(m, 5, &pi), -1);
	assert_int_equal(mime_part_get(m, 0, &pi), 0);
	assert_true(pi.flags & MIME_PART_MULTIPART);
	assert_int_equal(pi.next, MIME_NONE);
}

static void
test_rfc822_attachment(void **state)
{
	struct t *t = *state;
	CHECK_OUT(t, msg_fwd, OUT_BODYSTRUCTURE, bs_fwd);
	CHECK_OUT(t, msg_fwd, OUT_ENVELOPE,
		  "(NIL \"Fwd: report\" ((NIL NIL \"alice\" \"example.org\")) "
		  "((NIL NIL \"alice\" \"example.org\")) "
		  "((NIL NIL \"alice\" \"example.org\")) "
		  "((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL NIL)");
	CHECK_OUT(t, msg_fwd, OUT_BODY,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 10 0)"
		  "(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 359 "
		  "(NIL \"report\" ((NIL NIL \"carol\" \"example.com\")) "
		  "((NIL NIL \"carol\" \"example.com\")) "
		  "((NIL NIL \"carol\" \"example.com\")) NIL NIL NIL NIL "
		  "\"<r1@example.com>\") "
		  "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
		  "\"quoted-printable\" 9 0)"
		  "(\"image\" \"png\" NIL \"<img1>\" NIL \"base64\" 12) "
		  "\"mixed\") 18) \"mixed\")");

	/* message/global is encapsulated the same way (RFC 9051) */
	CHECK_OUT(t,
		  "Content-Type: message/global\r\n\r\n"
		  "Subject: inner\r\n\r\nhi\r\n",
		  OUT_BODYSTRUCTURE,
		  "(\"message\" \"global\" NIL NIL NIL \"7bit\" 22 (NIL "
		  "\"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" "
		  "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1 "
		  "NIL NIL NIL NIL) 3 NIL NIL NIL NIL)");
}

static void
test_rfc2231(void **state)
{
	struct t *t = *state;
	CHECK_OUT(t,
		  "MIME-Version: 1.0\r\n"
		  "Content-Type: application/x-stuff;\r\n"
		  " title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
		  " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n"
		  " title*2=\"isn't it!\"\r\n"
		  "Content-Disposition: attachment;\r\n"
		  " filename*=utf-8''%E2%82%AC%20rates.txt\r\n"
		  "\r\n"
		  "data\r\n",
		  OUT_BODYSTRUCTURE,
		  "(\"application\" \"x-stuff\" (\"title*\" "
		  "\"us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A"
		  "%2A%20isn't it!\") NIL NIL \"7bit\" 6 NIL (\"attachment\" "
		  "(\"filename*\" \"utf-8''%E2%82%AC%20rates.txt\")) NIL NIL)");
	/* plain continuations are joined; with an index missing they are
	   not RFC 2231 after all; a non-extended part of an extended value
	   gets its '%' escaped */
	CHECK_OUT(t,
		  "Content-Type: text/plain; name*0=\"foo\"; name*1=bar;\r\n"
		  " x*0=a; x*2=c; y*0*=utf-8''%41; y*1=\"50%\"; charset=utf-8\r\n"
		  "\r\n",
		  OUT_BODYSTRUCTURE,
		  "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"name\" "
		  "\"foobar\" \"x*0\" \"a\" \"x*2\" \"c\" \"y*\" "
		  "\"utf-8''%4150%25\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");

	struct buf b = BUF_INIT;
	assert_int_equal(mime_decode_param(S("us-ascii'en'This%20is%20even"
					     "%20more%20%2A%2A%2Afun%2A%2A"
					     "%2A%20isn't it!"),
					   &b),
			 0);
	assert_buf(&b, S("This is even more ***fun*** isn't it!"));
	buf_reset(&b);
	assert_int_equal(
		mime_decode_param(S("utf-8''%E2%82%AC%20rates.txt"), &b), 0);
	assert_buf(&b, S("\xe2\x82\xac rates.txt"));
	buf_reset(&b);
	assert_int_equal(mime_decode_param(S("iso-8859-1'fr'caf%E9"), &b),
			 0);
	assert_buf(&b, S("caf\xc3\xa9"));
	buf_reset(&b);
	assert_int_equal(mime_decode_param(S("plain value"), &b), -1);
	assert_int_equal(mime_decode_param(S("x-nonexistent''abc"), &b), -1);
	assert_int_equal(buf_used(&b), 0);
	buf_free(&b);
}

static void
test_addresses(void **state)
{
	struct t *t = *state;
	/* groups, quoted names with specials, comments as names, an
	   address header that is not an address, white space in Subject */
	CHECK_OUT(t,
		  "From: \"Smith, Jane Q.\" <jane@example.com>\r\n"
		  "To: undisclosed-recipients:;\r\n"
		  "Cc: Team: \"Bob \\\"the builder\\\" Jones\" "
		  "<bob@example.com>,\r\n"
		  "  (comment) ann@example.com (Ann B);\r\n"
		  "Bcc: just a name, <@r1,@r2:x@y>, broken@\r\n"
		  "Subject:   lots   of\r\n    space  \r\n"
		  "In-Reply-To:\r\n"
		  "\r\n",
		  OUT_ENVELOPE,
		  "(NIL {13}\r\nlots of space "
		  "((\"Smith, Jane Q.\" NIL \"jane\" \"example.com\")) "
		  "((\"Smith, Jane Q.\" NIL \"jane\" \"example.com\")) "
		  "((\"Smith, Jane Q.\" NIL \"jane\" \"example.com\")) "
		  "((NIL NIL \"undisclosed-recipients\" NIL)"
		  "(NIL NIL NIL NIL)) "
		  "((NIL NIL \"Team\" NIL)"
		  "({23}\r\nBob \"the builder\" Jones NIL \"bob\" "
		  "\"example.com\")"
		  "(\"Ann B\" NIL \"ann\" \"example.com\")(NIL NIL NIL NIL)) "
		  "((\"just a name\" NIL \"MISSING_MAILBOX\" "
		  "\"MISSING_DOMAIN\")"
		  "(NIL \"@r1,@r2\" \"x\" \"y\")"
		  "(NIL NIL \"broken\" \"MISSING_DOMAIN\")) "
		  "\"\" NIL)");
	/* Dovecot's envelope vectors */
	CHECK_OUT(t,
		  "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
		  "From: user@domain (Real Name)\n"
		  "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
		  "Cc: group:;, group2: (foo) ;\n"
		  "\n"
		  "body\n",
		  OUT_ENVELOPE,
		  "(\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")"
		  "(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)"
		  "(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")"
		  "(NIL NIL NIL NIL)) "
		  "((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)"
		  "(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)");
	CHECK_OUT(t,
		  "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
		  "From: user@domain (Real Name)\n"
		  "Sender: \n"
		  "Reply-To: \n"
		  "\n"
		  "body\n",
		  OUT_ENVELOPE,
		  "(\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "((\"Real Name\" NIL \"user\" \"domain\")) "
		  "NIL NIL NIL NIL NIL)");
	CHECK_OUT(t,
		  "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
		  "From: <@route:user@domain>\n"
		  "\n"
		  "body\n",
		  OUT_ENVELOPE,
		  "(\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL "
		  "((NIL \"@route\" \"user\" \"domain\")) "
		  "((NIL \"@route\" \"user\" \"domain\")) "
		  "((NIL \"@route\" \"user\" \"domain\")) "
		  "NIL NIL NIL NIL NIL)");
	/* 8-bit values are literals; the last Subject wins; the date,
	   In-Reply-To and Message-ID are unfolded (RFC 5322 2.2.3) and
	   trimmed */
	CHECK_OUT(t,
		  "Subject: first\r\n"
		  "Subject: d\xc3\xa9j\xc3\xa0 vu\r\n"
		  "Message-ID: <a@b>\r\n <c@d>\r\n"
		  "\r\n",
		  OUT_ENVELOPE,
		  "(NIL {9}\r\nd\xc3\xa9j\xc3\xa0 vu NIL NIL NIL NIL NIL "
		  "NIL NIL \"<a@b> <c@d>\")");
	CHECK_OUT(t,
		  "Date: Mon, 7 Feb 1994\r\n 21:52:25 -0800\r\n"
		  "In-Reply-To:\r\n <a@x>\r\n\t<b@x>\r\n"
		  "Message-ID:\r\n <folded@x.org>  \r\n"
		  "\r\n",
		  OUT_ENVELOPE,
		  "(\"Mon, 7 Feb 1994 21:52:25 -0800\" NIL NIL NIL NIL NIL NIL "
		  "NIL \"<a@x>\t<b@x>\" \"<folded@x.org>\")");
}

static void
test_dovecot_vectors(void **state)
{
	struct t *t = *state;
	/* from Dovecot's test-imap-bodystructure.c */
	CHECK_OUT(t,
		  "From: user@domain.org\n"
		  "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
		  "Mime-Version: 1.0\n"
		  "Content-Type: multipart/mixed; boundary=\"foo\n"
		  " bar\"\n"
		  "\n"
		  "Root MIME prologue\n"
		  "\n"
		  "--foo bar\n"
		  "Content-Type: text/x-myown; charset=us-ascii; "
		  "foo=\"quoted\\\"string\"\n"
		  "Content-ID: <foo@example.com>\n"
		  "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
		  "Content-Disposition: inline; foo=bar\n"
		  "Content-Description: hellodescription\n"
		  "Content-Language: en, fi, se\n"
		  "Content-Location: http://example.com/test.txt\n"
		  "\n"
		  "hello\n"
		  "\n"
		  "--foo bar\n"
		  "Content-Type: message/rfc822\n"
		  "\n"
		  "From: sub@domain.org\n"
		  "To: sub-to1@domain.org, sub-to2@domain.org\n"
		  "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
		  "Subject: submsg\n"
		  "Content-Type: multipart/alternative; boundary=\"sub1\"\n"
		  "\n"
		  "Sub MIME prologue\n"
		  "--sub1\n"
		  "Content-Type: text/html\n"
		  "Content-Transfer-Encoding: 8bit\n"
		  "\n"
		  "<p>Hello world</p>\n"
		  "\n"
		  "--sub1\n"
		  "Content-Type: text/plain\n"
		  "Content-Transfer-Encoding: ?invalid\n"
		  "\n"
		  "Hello another world\n"
		  "\n"
		  "--sub1--\n"
		  "Sub MIME epilogue\n"
		  "\n"
		  "--foo bar--\n"
		  "Root MIME epilogue\n",
		  OUT_BODYSTRUCTURE,
		  "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" "
		  "\"quoted\\\"string\") \"<foo@example.com>\" "
		  "\"hellodescription\" \"7bit\" 7 1 "
		  "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" (\"foo\" \"bar\")) "
		  "(\"en\" \"fi\" \"se\") \"http://example.com/test.txt\")"
		  "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 412 "
		  "(\"Sun, 12 Aug 2012 12:34:56 +0300\" \"submsg\" "
		  "((NIL NIL \"sub\" \"domain.org\")) "
		  "((NIL NIL \"sub\" \"domain.org\")) "
		  "((NIL NIL \"sub\" \"domain.org\")) "
		  "((NIL NIL \"sub-to1\" \"domain.org\")"
		  "(NIL NIL \"sub-to2\" \"domain.org\")) NIL NIL NIL NIL) "
		  "((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"8bit\" 20 1 NIL NIL NIL NIL)"
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 21 1 NIL NIL NIL NIL) \"alternative\" "
		  "(\"boundary\" \"sub1\") NIL NIL NIL) 21 NIL NIL NIL NIL) "
		  "\"mixed\" (\"boundary\" \"foo bar\") NIL NIL NIL)");
	CHECK_OUT(t,
		  "From: user@domain.org\n"
		  "Date: Sat, 24 Mar 2017 23:00:00 +0200\n"
		  "Mime-Version: 1.0\n"
		  "Content-Type: text/plain; charset=utf-8\n"
		  "Content-Transfer-Encoding: 8bit\n"
		  "\n"
		  "body\n"
		  "\n",
		  OUT_BODYSTRUCTURE,
		  "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" "
		  "8 2 NIL NIL NIL NIL)");
	/* no Mime-Version, no Content-Type: Content-* headers ignored */
	CHECK_OUT(t,
		  "Content-Transfer-Encoding: base64\r\n"
		  "Content-ID: <x>\r\n\r\nabc\r\n",
		  OUT_BODY,
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 5 1)");
	/* multipart/digest: parts without Content-Type are messages */
	CHECK_OUT(t,
		  "Content-Type: multipart/digest; boundary=d\r\n\r\n"
		  "--d\r\n\r\nSubject: one\r\n\r\n1\r\n"
		  "--d--\r\n",
		  OUT_BODY,
		  "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 17 (NIL "
		  "\"one\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" "
		  "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) "
		  "2) \"digest\")");
}

/* Dovecot's test-message-parser.c vectors: header and body octets and body
 * lines of every part, in message order. */
struct pvec {
	const char *msg;
	unsigned int nparts;
	uint32_t hdr[5], body[5], lines[5];
};

static void
test_dovecot_parser_vectors(void **state)
{
	struct t *t = *state;
	static const struct pvec v[] = {
		/* duplicate boundary */
		{ "Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\n"
		  "Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\n"
		  "Content-Type: text/plain\n\nbody\n",
		  3, { 45, 45, 26 }, { 84, 35, 5 }, { 7, 4, 1 } },
		/* truncated MIME headers */
		{ "Content-Type: multipart/mixed; boundary=\":foo\"\n\n"
		  "--:foo\n--:foo\nContent-Type: text/plain\n--:foo\n"
		  "Content-Type: text/plain\r\n--:foo\n"
		  "Content-Type: text/html\n--:foo--\n",
		  5, { 48, 0, 24, 24, 23 }, { 112, 0, 0, 0, 0 },
		  { 8, 0, 0, 0, 0 } },
		/* truncated MIME headers 2: the blank line is the boundary's */
		{ "Content-Type: multipart/mixed; boundary=\"ab\"\n\n--ab\n"
		  "Content-Type: multipart/mixed; boundary=\"a\"\n\n--ab\n"
		  "Content-Type: text/plain\n\n--a\n\n",
		  3, { 46, 44, 26 }, { 86, 0, 5 }, { 8, 0, 2 } },
		/* continuing truncated boundary */
		{ "Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\n"
		  "Content-Type: multipart/mixed; boundary=\"ab\"\n"
		  "MIME-Version: 1.0\n--ab\nContent-Type: text/plain\n\n"
		  "--ab--\n--a--\n\n",
		  4, { 45, 62, 25, 0 }, { 112, 0, 0, 0 }, { 9, 0, 0, 0 } },
		/* continuing boundary, reversed */
		{ "Content-Type: multipart/mixed; boundary=\"ab\"\n\n--ab\n"
		  "Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\n"
		  "Content-Type: text/plain\n\nbody\n--ab\n"
		  "Content-Type: text/html\n\nbody2\n",
		  4, { 46, 45, 26, 25 }, { 121, 34, 4, 6 }, { 11, 3, 0, 1 } },
		/* empty multipart */
		{ "Content-Type: multipart/mixed; boundary=\"ab\"\n\nbody\n", 1,
		  { 46 }, { 5 }, { 1 } },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct mime_msg *m = parse2(t, v[i].msg, strlen(v[i].msg),
					    NULL);
		assert_int_equal(mime_part_count(m), v[i].nparts);
		for (uint32_t k = 0; k < v[i].nparts; k++) {
			struct mime_part_info pi;
			assert_int_equal(mime_part_get(m, k, &pi), 0);
			if (pi.hdr_len != v[i].hdr[k] ||
			    pi.body_len != v[i].body[k] ||
			    pi.body_lines != v[i].lines[k]) {
				print_error("vector %zu part %u: %zu/%zu/%u\n",
					    i, k, pi.hdr_len, pi.body_len,
					    pi.body_lines);
				fail();
			}
		}
	}
}

/* -- broken MIME -------------------------------------------------------------- */

static void
test_missing_boundary(void **state)
{
	struct t *t = *state;
	static const char msg[] = "Content-Type: multipart/mixed\r\n"
				  "\r\n"
				  "--x\r\n"
				  "Content-Type: text/html\r\n"
				  "\r\n"
				  "junk\r\n";
	CHECK_OUT(t, msg, OUT_BODYSTRUCTURE,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)");
	CHECK_SECTION(t, msg, "1", "");
	CHECK_SECTION(t, msg, "TEXT",
		      "--x\r\nContent-Type: text/html\r\n\r\njunk\r\n");
	/* boundary never found: the preamble is all there is */
	CHECK_OUT(t,
		  "Content-Type: multipart/mixed; boundary=nope\r\n\r\n"
		  "--other\r\n\r\nx\r\n",
		  OUT_BODY,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 0 0) \"mixed\")");
	/* junk headers, lines without colon, broken Content-Type */
	CHECK_OUT(t,
		  "this is no header\r\n"
		  ": empty name\r\n"
		  "Content-Type: ; charset=x\r\n"
		  "\r\nbody\r\n",
		  OUT_BODYSTRUCTURE,
		  "(\"\" \"\" NIL NIL NIL \"7bit\" 6 NIL NIL NIL NIL)");
	CHECK_OUT(t, "Content-Type: text\r\n\r\nbody\r\n", OUT_BODY,
		  "(\"text\" \"\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
		  "6 1)");
}

static void
test_truncated_multipart(void **state)
{
	struct t *t = *state;
	static const char msg[] = "Content-Type: multipart/mixed; boundary=zz\r\n"
				  "\r\n"
				  "--zz\r\n"
				  "Content-Type: text/plain\r\n"
				  "\r\n"
				  "first\r\n"
				  "--zz\r\n"
				  "Content-Type: text/html\r\n"
				  "\r\n"
				  "<b>cut";
	CHECK_OUT(t, msg, OUT_BODYSTRUCTURE,
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 5 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
		  "\"us-ascii\") NIL NIL \"7bit\" 6 0 NIL NIL NIL NIL) \"mixed\" "
		  "(\"boundary\" \"zz\") NIL NIL NIL)");
	CHECK_SECTION(t, msg, "2", "<b>cut");
	/* cut inside a part's header */
	CHECK_OUT(t,
		  "Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
		  "--zz\r\nContent-Type: text/pl",
		  OUT_BODY,
		  "((\"text\" \"pl\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 0 0) \"mixed\")");
	/* an outer boundary closes the inner multipart */
	CHECK_OUT(t,
		  "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		  "--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\n\r\ninner\r\n"
		  "--a\r\n\r\nsecond\r\n--a--\r\n",
		  OUT_BODY,
		  "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 5 0) \"mixed\")(\"text\" \"plain\" (\"charset\" "
		  "\"us-ascii\") NIL NIL \"7bit\" 6 0) \"mixed\")");
}

static void
test_deep_nesting(void **state)
{
	struct t *t = *state;
	struct buf msg = BUF_INIT, out = BUF_INIT;
	int depth;

	for (int i = 0; i < 150; i++)
		buf_printf(&msg,
			   "Content-Type: multipart/mixed; boundary=b%03d\r\n"
			   "\r\n--b%03d\r\n",
			   i, i);
	buf_append_str(&msg, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	struct mime_msg *m = parse2(t, buf_ptr(&msg), buf_used(&msg), NULL);
	assert_int_equal(mime_part_count(m), MIME_MAX_DEPTH);
	struct mime_part_info pi;
	assert_int_equal(mime_part_get(m, MIME_MAX_DEPTH - 1, &pi), 0);
	assert_int_equal(pi.depth, MIME_MAX_DEPTH - 1);
	assert_true(pi.flags & MIME_PART_OVERFLOW);
	assert_false(pi.flags & MIME_PART_MULTIPART);
	mime_imap_bodystructure(m, &out);
	assert_true(well_formed(&out, &depth));
	/* one list per level, then the leaf's fields and its parameters */
	assert_int_equal(depth, MIME_MAX_DEPTH + 2);
	/* the part we did not open is a text/plain leaf */
	assert_non_null(strstr(buf_ptr(&out), "((\"text\" \"plain\" "
					      "(\"charset\" \"us-ascii\") "
					      "NIL NIL \"7bit\""));

	/* the same with message/rfc822 */
	buf_reset(&msg);
	buf_reset(&out);
	for (int i = 0; i < 150; i++)
		buf_append_str(&msg, "Content-Type: message/rfc822\r\n\r\n");
	buf_append_str(&msg, "Subject: deep\r\n\r\ndeep\r\n");
	m = parse2(t, buf_ptr(&msg), buf_used(&msg), NULL);
	assert_int_equal(mime_part_count(m), MIME_MAX_DEPTH);
	mime_imap_bodystructure(m, &out);
	assert_true(well_formed(&out, &depth));
	buf_free(&msg);
	buf_free(&out);
}

static void
test_many_parts(void **state)
{
	struct t *t = *state;
	struct buf msg = BUF_INIT, out = BUF_INIT;
	buf_append_str(&msg,
		       "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	for (int i = 0; i < MIME_MAX_PARTS + 2000; i++)
		buf_printf(&msg, "--x\r\n\r\n%d\r\n", i);
	buf_append_str(&msg, "--x--\r\n");
	struct mime_msg *m = parse2(t, buf_ptr(&msg), buf_used(&msg), NULL);
	assert_int_equal(mime_part_count(m), MIME_MAX_PARTS);
	struct mime_part_info pi;
	assert_int_equal(mime_part_get(m, MIME_MAX_PARTS - 1, &pi), 0);
	assert_true(pi.flags & MIME_PART_OVERFLOW);
	/* the last part takes the rest of the message */
	assert_int_equal(pi.body_off + pi.body_len, buf_used(&msg));
	mime_imap_bodystructure(m, &out);
	assert_true(well_formed(&out, NULL));
	buf_free(&msg);
	buf_free(&out);
}

static void
test_bare_lf(void **state)
{
	struct t *t = *state;
	/* the same message with LF only: same sizes, same octets sent */
	struct buf lf = BUF_INIT;
	for (size_t i = 0; i < sizeof(msg_fwd) - 1; i++)
		if (msg_fwd[i] != '\r')
			buf_append(&lf, msg_fwd + i, 1);
	const char *lmsg = buf_ptr(&lf);
	size_t llen = buf_used(&lf);
	check_out(t, lmsg, llen, OUT_BODYSTRUCTURE, S(bs_fwd));

	static const char *const specs[] = {
		"",	  "HEADER", "TEXT", "1",	 "1.MIME", "2",
		"2.MIME", "2.HEADER", "2.TEXT", "2.1", "2.2.MIME",
		"HEADER.FIELDS (To)",
	};
	struct mime_msg *mc = parse2(t, S(msg_fwd), NULL);
	struct mime_msg *ml = parse2(t, lmsg, llen, NULL);
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct buf a = BUF_INIT, b = BUF_INIT;
		section_bytes(t, mc, msg_fwd, sizeof(msg_fwd) - 1, specs[i],
			      &a);
		section_bytes(t, ml, lmsg, llen, specs[i], &b);
		assert_buf(&b, bp(&a), buf_used(&a));
		buf_free(&a);
		buf_free(&b);
	}
	/* The whole message without its structure: CRLF too */
	struct mime_section sec;
	struct buf w = BUF_INIT;
	mime_section_whole(lmsg, llen, 0, &t->a, &sec);
	mime_section_copy(&sec, 0, UINT64_MAX, &w);
	assert_buf(&w, msg_fwd, sizeof(msg_fwd) - 1);
	assert_int_equal(sec.size, sizeof(msg_fwd) - 1);
	buf_free(&w);
	buf_free(&lf);
}

static void
test_empty_and_header_only(void **state)
{
	struct t *t = *state;
	check_out(t, "", 0, OUT_ENVELOPE,
		  S("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"));
	check_out(t, "", 0, OUT_BODYSTRUCTURE,
		  S("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		    "\"7bit\" 0 0 NIL NIL NIL NIL)"));
	check_section(t, "", 0, "", S(""));
	check_section(t, "", 0, "HEADER", S(""));
	check_section(t, "", 0, "TEXT", S(""));
	check_section(t, "", 0, "1", S(""));
	check_section(t, "", 0, "HEADER.FIELDS (Subject)", S("\r\n"));

	static const char hdr[] = "Subject: hi\r\nFrom: a@b.c";
	CHECK_OUT(t, hdr, OUT_BODY,
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 0 0)");
	CHECK_OUT(t, hdr, OUT_ENVELOPE,
		  "(NIL \"hi\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" "
		  "\"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)");
	CHECK_SECTION(t, hdr, "HEADER", "Subject: hi\r\nFrom: a@b.c");
	CHECK_SECTION(t, hdr, "TEXT", "");
	CHECK_SECTION(t, hdr, "HEADER.FIELDS (FROM)", "From: a@b.c\r\n\r\n");
	CHECK_SECTION(t, "Subject: hi\r\n\r\n", "1", "");
}

/* -- sections ----------------------------------------------------------------- */

static void
test_sections(void **state)
{
	struct t *t = *state;
	CHECK_SECTION(t, msg_fwd, "", msg_fwd);
	CHECK_SECTION(t, msg_fwd, "HEADER",
		      "From: alice@example.org\r\n"
		      "To: bob@example.org\r\n"
		      "Subject: Fwd: report\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		      "\r\n");
	CHECK_SECTION(t, msg_fwd, "HEADER.FIELDS (Subject TO)",
		      "To: bob@example.org\r\nSubject: Fwd: report\r\n\r\n");
	CHECK_SECTION(t, msg_fwd,
		      "header.fields.not (Subject To MIME-Version "
		      "\"Content-Type\")",
		      "From: alice@example.org\r\n\r\n");
	CHECK_SECTION(t, msg_fwd, "HEADER.FIELDS (X-None)", "\r\n");
	CHECK_SECTION(t, msg_fwd, "1", "See below.");
	CHECK_SECTION(t, msg_fwd, "1.MIME", "Content-Type: text/plain\r\n\r\n");
	CHECK_SECTION(t, msg_fwd, "1.1", "See below.");
	CHECK_SECTION(t, msg_fwd, "1.2", "");
	CHECK_SECTION(t, msg_fwd, "1.HEADER", "");
	CHECK_SECTION(t, msg_fwd, "2", FWD_PART2);
	CHECK_SECTION(t, msg_fwd, "2.MIME",
		      "Content-Type: message/rfc822\r\n"
		      "Content-Description: forwarded\r\n\r\n");
	CHECK_SECTION(t, msg_fwd, "2.HEADER", FWD_EMB_HDR);
	CHECK_SECTION(t, msg_fwd, "2.TEXT", FWD_EMB_BODY "\r\n");
	CHECK_SECTION(t, msg_fwd, "2.HEADER.FIELDS (Subject message-id)",
		      "Subject: report\r\nMessage-ID: <r1@example.com>\r\n"
		      "\r\n");
	CHECK_SECTION(t, msg_fwd, "2.1", "Gr=FC=DFe");
	CHECK_SECTION(t, msg_fwd, "2.1.1", "Gr=FC=DFe");
	CHECK_SECTION(t, msg_fwd, "2.1.MIME",
		      "Content-Type: text/plain; charset=iso-8859-1\r\n"
		      "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	CHECK_SECTION(t, msg_fwd, "2.1.HEADER", "");
	CHECK_SECTION(t, msg_fwd, "2.1.TEXT", "");
	CHECK_SECTION(t, msg_fwd, "2.2", "iVBORw0KGgo=");
	CHECK_SECTION(t, msg_fwd, "2.3", "");
	CHECK_SECTION(t, msg_fwd, "3", "");
	CHECK_SECTION(t, msg_fwd, "3.TEXT", "");
	CHECK_SECTION(t, msg_fwd, "4.1.HEADER.FIELDS (Subject)", "");
	CHECK_SECTION(t, msg_fwd, "99999999999999999999", "");

	/* nested multiparts */
	CHECK_SECTION(t, msg_mixed, "1.1",
		      "Caf=C3=A9 today=\r\n, tomorrow too.");
	CHECK_SECTION(t, msg_mixed, "1.2", "<p>Caf\xc3\xa9</p>");
	CHECK_SECTION(t, msg_mixed, "1.2.MIME",
		      "Content-Type: text/html; charset=utf-8\r\n\r\n");
	CHECK_SECTION(t, msg_mixed, "1.MIME",
		      "Content-Type: multipart/alternative; boundary=inner"
		      "\r\n\r\n");
	CHECK_SECTION(t, msg_mixed, "2.HEADER", "");
	CHECK_SECTION(t, msg_mixed, "1.3", "");

	/* a one-part message: part 1 is its body */
	CHECK_SECTION(t, msg_simple, "1",
		      "Hello Joe, do you think we can meet at 3:30 "
		      "tomorrow?\r\n");
	CHECK_SECTION(t, msg_simple, "TEXT",
		      "Hello Joe, do you think we can meet at 3:30 "
		      "tomorrow?\r\n");
	CHECK_SECTION(t, msg_simple, "2", "");
	/* a message that is itself message/rfc822 */
	static const char wrapped[] = "Content-Type: message/rfc822\r\n\r\n"
				      "Subject: in\r\n\r\nbody\r\n";
	CHECK_SECTION(t, wrapped, "1", "Subject: in\r\n\r\nbody\r\n");
	CHECK_SECTION(t, wrapped, "1.1", "body\r\n");
	CHECK_SECTION(t, wrapped, "1.HEADER", "Subject: in\r\n\r\n");
	CHECK_SECTION(t, wrapped, "1.TEXT", "body\r\n");

	/* partial fetches */
	struct mime_msg *m = parse2(t, S(msg_fwd), NULL);
	struct mime_section sec;
	const char *error;
	struct buf b = BUF_INIT;
	assert_int_equal(mime_section_fetch(m, S(msg_fwd), S("2.HEADER"),
					    &t->a, &sec, &error),
			 MIME_OK);
	mime_section_copy(&sec, 3, 5, &b);
	assert_buf(&b, S("m: ca"));
	buf_reset(&b);
	mime_section_copy(&sec, sec.size - 2, 100, &b);
	assert_buf(&b, S("\r\n"));
	buf_reset(&b);
	mime_section_copy(&sec, sec.size + 10, 100, &b);
	assert_int_equal(buf_used(&b), 0);
	buf_free(&b);
}

/* A long HEADER.FIELDS list costs neither quadratic memory nor time. */
static void
test_section_long_list(void **state)
{
	struct t *t = *state;
	struct buf spec = BUF_INIT, out = BUF_INIT;
	buf_append_str(&spec, "HEADER.FIELDS (");
	for (int i = 0; i < 20000; i++)
		buf_printf(&spec, "X-Field-%d ", i);
	buf_append_str(&spec, "subject)");
	struct mime_msg *m = parse2(t, S(msg_fwd), NULL);
	struct mime_section sec;
	const char *error;
	size_t before = t->a.total;
	assert_int_equal(mime_section_fetch(m, S(msg_fwd), buf_ptr(&spec),
					    buf_used(&spec), &t->a, &sec,
					    &error),
			 MIME_OK);
	/* linear: the names, one copy of them, the chunks */
	assert_true(t->a.total - before < 16 * buf_used(&spec) + 65536);
	mime_section_copy(&sec, 0, UINT64_MAX, &out);
	assert_buf(&out, S("Subject: Fwd: report\r\n\r\n"));
	buf_free(&spec);
	buf_free(&out);
}

static void
test_section_errors(void **state)
{
	struct t *t = *state;
	static const char *const bad[] = {
		"0",	 "01",	 "1.",	       "1..2",	 ".1",
		"FOO",	 "MIME", "1.FOO",      "HEADER.FIELDS",
		"HEADER.FIELDS ()", "HEADER.FIELDS (a",
		"HEADER.FIELDS.NOT", "TEXT.1", "1.MIME.1", "HEADERX",
		"1 ", "1.2.3.MIMEX",
	};
	struct mime_msg *m = parse2(t, S(msg_fwd), NULL);
	struct mime_section sec;
	const char *error;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		int ret = mime_section_fetch(m, S(msg_fwd), bad[i],
					     strlen(bad[i]), &t->a, &sec,
					     &error);
		if (ret != MIME_ERR_SYNTAX) {
			print_error("BODY[%s] accepted\n", bad[i]);
			fail();
		}
		assert_non_null(error);
	}
	/* the message must be the one the structure was built from */
	assert_int_equal(mime_section_fetch(m, msg_fwd, 10, S("1"), &t->a,
					    &sec, &error),
			 MIME_ERR_MESSAGE);
}

/* -- BINARY -------------------------------------------------------------------- */

static void
check_binary(struct t *t, const char *msg, size_t len, const char *part,
	     int want_ret, const char *want, size_t want_len)
{
	struct mime_msg *c, *m = parse2(t, msg, len, &c);
	struct mime_msg *both[2] = { m, c };
	for (int k = 0; k < 2; k++) {
		struct mime_section sec;
		const char *error = NULL;
		struct buf b = BUF_INIT;
		int ret = mime_section_binary(both[k], msg, len, part,
					      strlen(part), &t->a, &sec,
					      &error);
		assert_int_equal(ret, want_ret);
		if (ret == MIME_OK) {
			mime_section_copy(&sec, 0, UINT64_MAX, &b);
			assert_buf(&b, want, want_len);
			assert_int_equal(sec.size, want_len);
		} else {
			assert_non_null(error);
		}
		buf_free(&b);
	}
}

static void
test_binary(void **state)
{
	struct t *t = *state;
	check_binary(t, S(msg_mixed), "1.1", MIME_OK,
		     S("Caf\xc3\xa9 today, tomorrow too."));
	check_binary(t, S(msg_mixed), "1.2", MIME_OK,
		     S("<p>Caf\xc3\xa9</p>"));
	check_binary(t, S(msg_mixed), "2", MIME_OK,
		     S("%PDF-1.4\n%\xc4\xe5\xf2\xe5\xeb\n"));
	check_binary(t, S(msg_fwd), "2.2", MIME_OK,
		     S("\x89PNG\r\n\x1a\n"));
	check_binary(t, S(msg_fwd), "2.1", MIME_OK, S("Gr\xfc\xdf" "e"));
	check_binary(t, S(msg_fwd), "", MIME_OK, S(msg_fwd));
	check_binary(t, S(msg_fwd), "7", MIME_OK, S(""));
	check_binary(t, S(msg_fwd), "1.MIME", MIME_ERR_SYNTAX, S(""));
	check_binary(t, S(msg_fwd), "x", MIME_ERR_SYNTAX, S(""));
	check_binary(t,
		     S("Content-Type: text/plain\r\n"
		       "Content-Transfer-Encoding: x-uuencode\r\n\r\n"
		       "begin 644 x\r\n"),
		     "1", MIME_ERR_UNKNOWN_CTE, S(""));
	check_binary(t,
		     S("Content-Type: text/plain\r\n"
		       "Content-Transfer-Encoding: BINARY\r\n\r\n"
		       "raw\nbytes\r\n"),
		     "1", MIME_OK, S("raw\r\nbytes\r\n"));
}

/* -- decoders -------------------------------------------------------------------- */

static void
check_header(const char *in, size_t len, const char *want, size_t want_len)
{
	struct buf b = BUF_INIT;
	mime_decode_header(in, len, &b);
	assert_buf(&b, want, want_len);
	buf_free(&b);
}

static void
test_decode_header(void **state)
{
	(void)state;
	check_header(S("=?utf-8?q?Caf=C3=A9?= menu"), S("Caf\xc3\xa9 menu"));
	check_header(S("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=  c"),
		     S("ab  c"));
	check_header(S("=?utf-8?B?w6k=?="), S("\xc3\xa9"));
	/* a character split across two adjacent words */
	check_header(S("=?utf-8?B?4oI=?=\r\n =?UTF-8?B?rA==?="),
		     S("\xe2\x82\xac"));
	check_header(S("=?utf-8?q?a_b?="), S("a b"));
	check_header(S("=?windows-1252?q?=80?="), S("\xe2\x82\xac"));
	check_header(S("=?iso-8859-1*fr?q?caf=E9?="), S("caf\xc3\xa9"));
	check_header(S("x =?koi8-r?B?8NLJ18XU?= y"),
		     S("x \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 y"));
	/* unknown charsets and malformed words stay as they are */
	check_header(S("=?x-unknown-cs?Q?abc?= z"),
		     S("=?x-unknown-cs?Q?abc?= z"));
	check_header(S("=?utf-8//TRANSLIT?Q?abc?="),
		     S("=?utf-8//TRANSLIT?Q?abc?="));
	check_header(S("plain =?bad"), S("plain =?bad"));
	check_header(S("=?utf-8?X?abc?="), S("=?utf-8?X?abc?="));
	/* unfolding; invalid UTF-8 outside words */
	check_header(S("a\r\n b"), S("a b"));
	check_header(S("bad \xff byte"), S("bad \xef\xbf\xbd byte"));
	check_header(S("=?utf-8?q?=FF?="), S("\xef\xbf\xbd"));

	/* many starts of words that never end: linear, not quadratic */
	struct buf in = BUF_INIT;
	for (int i = 0; i < 150000; i++)
		buf_append_str(&in, "=?utf-8?Q?x");
	check_header(buf_ptr(&in), buf_used(&in), buf_ptr(&in),
		     buf_used(&in));
	buf_free(&in);
}

static void
test_decode_body(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mime_decode_base64(S("SGVs\r\nbG8=\r\n"), &b);
	assert_buf(&b, S("Hello"));
	buf_reset(&b);
	mime_decode_base64(S("Y*W=\r\n"), &b); /* junk skipped */
	assert_buf(&b, S("a"));
	buf_reset(&b);
	mime_decode_qp(S("a=3Db \r\nsoft=\r\nbreak=  \r\n=XY=4\r\nend"), &b);
	assert_buf(&b, S("a=b\r\nsoftbreak=XY=4\r\nend"));
	buf_reset(&b);
	mime_decode_qp(S("lf only\nnext=0d=0A"), &b);
	assert_buf(&b, S("lf only\r\nnext\r\n"));
	buf_reset(&b);
	assert_int_equal(mime_decode_charset("ISO-8859-15", S("\xa4"), &b), 0);
	assert_buf(&b, S("\xe2\x82\xac"));
	buf_reset(&b);
	assert_int_equal(mime_decode_charset("utf-8", S("ok\xc0\xaf"), &b), 0);
	assert_buf(&b, S("ok\xef\xbf\xbd\xef\xbf\xbd"));
	buf_reset(&b);
	assert_int_equal(mime_decode_charset("no-such-charset", S("x"), &b),
			 -1);
	assert_int_equal(buf_used(&b), 0);
	buf_free(&b);
}

/* -- the cache ------------------------------------------------------------------ */

static uint32_t
fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void
test_cache_round_trip(void **state)
{
	struct t *t = *state;
	static const struct {
		const char *msg;
		size_t len;
	} msgs[] = {
		{ S(msg_simple) },
		{ S(msg_mixed) },
		{ S(msg_fwd) },
		{ S("") },
		{ S("Subject: only a header") },
	};
	static const char *const specs[] = {
		"",	  "HEADER", "TEXT", "1",   "1.MIME", "1.1",    "1.2",
		"2",	  "2.MIME", "2.HEADER", "2.TEXT", "2.1",    "2.2",
		"2.1.MIME", "HEADER.FIELDS (From To)",
		"2.HEADER.FIELDS.NOT (From)",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct mime_msg *c, *m = parse2(t, msgs[i].msg, msgs[i].len,
						&c);
		for (int k = OUT_ENVELOPE; k <= OUT_BODYSTRUCTURE; k++) {
			struct buf a = BUF_INIT, b = BUF_INIT;
			out_write(m, (enum out_kind)k, &a);
			out_write(c, (enum out_kind)k, &b);
			assert_buf(&b, bp(&a), buf_used(&a));
			buf_free(&a);
			buf_free(&b);
		}
		for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
			struct buf a = BUF_INIT, b = BUF_INIT;
			section_bytes(t, m, msgs[i].msg, msgs[i].len, specs[s],
				      &a);
			section_bytes(t, c, msgs[i].msg, msgs[i].len, specs[s],
				      &b);
			assert_buf(&b, bp(&a), buf_used(&a));
			buf_free(&a);
			buf_free(&b);
		}
	}
}

static int
load(struct t *t, const unsigned char *blob, size_t len, size_t msg_len)
{
	struct mime_msg *m = (struct mime_msg *)1;
	const char *error = NULL;
	int ret = mime_cache_load(&t->a, blob, len, msg_len, &m, &error);
	if (ret < 0) {
		assert_null(m);
		assert_non_null(error);
	}
	return ret;
}

static void
test_cache_corrupt(void **state)
{
	struct t *t = *state;
	struct buf blob = BUF_INIT;
	assert_int_equal(mime_cache_build(S(msg_fwd), &blob), 0);
	size_t len = buf_used(&blob);
	unsigned char *b = malloc(len);
	assert_non_null(b);
	memcpy(b, buf_ptr(&blob), len);
	buf_free(&blob);

	assert_int_equal(load(t, b, len, sizeof(msg_fwd) - 1), 0);
	/* another message's length */
	assert_int_equal(load(t, b, len, sizeof(msg_fwd)), -1);
	assert_int_equal(load(t, NULL, 0, 0), -1);
	/* every truncation */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(load(t, b, n, sizeof(msg_fwd) - 1), -1);
	/* every single octet changed */
	for (size_t i = 0; i < len; i++) {
		for (unsigned int x = 1; x < 256; x <<= 1) {
			b[i] ^= (unsigned char)x;
			assert_int_equal(load(t, b, len, sizeof(msg_fwd) - 1),
					 -1);
			b[i] ^= (unsigned char)x;
		}
	}
	/* a newer version */
	b[4]++;
	assert_int_equal(load(t, b, len, sizeof(msg_fwd) - 1), -1);
	b[4]--;

	/* consistent checksum, broken structure: each word of each record
	   (parts, envelopes, addresses, refs) set to values that point
	   anywhere; the load must refuse or give a view whose output is
	   still well-formed */
	unsigned char *c = malloc(len);
	assert_non_null(c);
	static const uint32_t evil[] = { 0,	     1,		 2,
					 3,	     7,		 100,
					 0x7fffffff, 0xfffffffe, 0xffffffff };
	size_t words_end = len - get32(b + 32);
	size_t loaded = 0;
	for (size_t off = 40; off + 4 <= words_end; off += 4) {
		for (size_t e = 0; e < sizeof(evil) / sizeof(evil[0]); e++) {
			memcpy(c, b, len);
			put32(c + off, evil[e]);
			put32(c + 36, mime_cache_checksum(c, len));
			struct mime_msg *m;
			const char *error;
			if (mime_cache_load(&t->a, c, len, sizeof(msg_fwd) - 1,
					    &m, &error) < 0)
				continue;
			loaded++;
			struct buf o = BUF_INIT;
			mime_imap_bodystructure(m, &o);
			assert_true(well_formed(&o, NULL));
			buf_reset(&o);
			mime_imap_envelope(m, &o);
			assert_true(well_formed(&o, NULL));
			struct mime_section sec;
			(void)mime_section_fetch(m, S(msg_fwd), S("2.1.MIME"),
						 &t->a, &sec, &error);
			(void)mime_section_fetch(
				m, S(msg_fwd), S("2.HEADER.FIELDS (From)"),
				&t->a, &sec, &error);
			(void)mime_section_binary(m, S(msg_fwd), S("2.2"),
						  &t->a, &sec, &error);
			buf_free(&o);
		}
		arena_clear(&t->a);
	}
	/* some of the changed blobs are still consistent and were used */
	assert_true(loaded > 0);
	free(c);
	free(b);
}

/* Blobs of version 1 (an FNV-1a checksum), as stores written before
 * version 2 hold them, load and answer as the same blob of version 2. */
static void
test_cache_version_1(void **state)
{
	struct t *t = *state;
	static const char *const specs[] = {"", "1", "2.MIME", "2.1",
					    "2.HEADER.FIELDS (From)"};
	struct buf blob = BUF_INIT;
	assert_int_equal(mime_cache_build(S(msg_fwd), &blob), 0);
	size_t len = buf_used(&blob);
	unsigned char *v2 = malloc(len), *v1 = malloc(len);
	assert_non_null(v2);
	assert_non_null(v1);
	memcpy(v2, buf_ptr(&blob), len);
	buf_free(&blob);
	assert_int_equal(v2[4] | v2[5] << 8, MIME_CACHE_VERSION);
	assert_int_equal(get32(v2 + 36), mime_cache_checksum(v2, len));
	memcpy(v1, v2, len);
	v1[4] = 1;
	v1[5] = 0;
	/* version 1 with version 2's checksum: refused */
	assert_int_equal(load(t, v1, len, sizeof(msg_fwd) - 1), -1);
	put32(v1 + 36, fnv1a(v1 + 40, len - 40));
	assert_int_equal(get32(v1 + 36), mime_cache_checksum(v1, len));
	struct mime_msg *m1, *m2;
	const char *error;
	assert_int_equal(
	    mime_cache_load(&t->a, v1, len, sizeof(msg_fwd) - 1, &m1, &error),
	    0);
	assert_int_equal(
	    mime_cache_load(&t->a, v2, len, sizeof(msg_fwd) - 1, &m2, &error),
	    0);
	for (int k = OUT_ENVELOPE; k <= OUT_BODYSTRUCTURE; k++) {
		struct buf a = BUF_INIT, b = BUF_INIT;
		out_write(m1, (enum out_kind)k, &a);
		out_write(m2, (enum out_kind)k, &b);
		assert_true(buf_used(&a) > 0);
		assert_buf(&a, bp(&b), buf_used(&b));
		buf_free(&a);
		buf_free(&b);
	}
	for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
		struct buf a = BUF_INIT, b = BUF_INIT;
		section_bytes(t, m1, S(msg_fwd), specs[s], &a);
		section_bytes(t, m2, S(msg_fwd), specs[s], &b);
		assert_buf(&a, bp(&b), buf_used(&b));
		buf_free(&a);
		buf_free(&b);
	}
	free(v1);
	free(v2);
}

/* Every prefix of a message parses into a consistent structure. */
static void
test_prefixes(void **state)
{
	struct t *t = *state;
	static const char *const specs[] = { "1", "2", "2.MIME", "2.1",
					     "2.HEADER.FIELDS (Subject)" };
	for (size_t n = 0; n <= sizeof(msg_fwd) - 1; n++) {
		struct mime_msg *m = parse2(t, msg_fwd, n, NULL);
		struct buf o = BUF_INIT;
		mime_imap_bodystructure(m, &o);
		assert_true(well_formed(&o, NULL));
		buf_reset(&o);
		mime_imap_envelope(m, &o);
		assert_true(well_formed(&o, NULL));
		for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
			buf_reset(&o);
			section_bytes(t, m, msg_fwd, n, specs[s], &o);
		}
		buf_free(&o);
		arena_clear(&t->a);
	}
}

/* -- IMAP strings ----------------------------------------------------------------- */

static void
test_imap_strings(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mime_imap_nstring(&b, NULL, 0);
	buf_append(&b, " ", 1);
	mime_imap_string(&b, S("a \"b\" \\"));
	buf_append(&b, " ", 1);
	mime_imap_string(&b, S("\"\"\"\"\""));
	buf_append(&b, " ", 1);
	mime_imap_string(&b, S("line\r\nbreak"));
	buf_append(&b, " ", 1);
	mime_imap_string(&b, S("8\xc3\xa9"));
	assert_buf(&b, S("NIL \"a \\\"b\\\" \\\\\" {5}\r\n\"\"\"\"\" "
			 "{11}\r\nline\r\nbreak {3}\r\n8\xc3\xa9"));
	buf_reset(&b);
	char *big = malloc(MIME_QUOTED_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', MIME_QUOTED_MAX + 1);
	mime_imap_string(&b, big, MIME_QUOTED_MAX);
	assert_int_equal(buf_used(&b), MIME_QUOTED_MAX + 2);
	buf_reset(&b);
	mime_imap_string(&b, big, MIME_QUOTED_MAX + 1);
	assert_memory_equal(buf_ptr(&b), "{4097}\r\n", 8);
	free(big);
	buf_free(&b);
}

/* The header alone, field by field: its length however it ends, folded
 * values kept whole, lines that are no field skipped. */
static void
test_header_fields(void **state)
{
	(void)state;
	assert_int_equal(mime_header_len(S("A: 1\r\nB: 2\r\n\r\nbody")), 12);
	assert_int_equal(mime_header_len(S("A: 1\nB: 2\n\nbody\n\n")), 10);
	assert_int_equal(mime_header_len(S("\r\nbody")), 0);
	assert_int_equal(mime_header_len(S("\nbody")), 0);
	assert_int_equal(mime_header_len(S("A: 1\r\nno end")), 12);
	assert_int_equal(mime_header_len(S("")), 0);
	static const char h[] = "Subject: one\r\n"
				"no field here\r\n"
				"Message-ID :\r\n <a@b>\r\n\t(c)\r\n"
				"X:\r\n"
				"Last: end";
	size_t pos = 0;
	struct mime_hfield f;
	assert_int_equal(mime_header_next(h, sizeof(h) - 1, &pos, &f), 1);
	assert_true(mime_hfield_is(&f, "subject"));
	assert_memory_equal(f.val, " one", f.vlen);
	assert_int_equal(f.vlen, 4);
	assert_int_equal(mime_header_next(h, sizeof(h) - 1, &pos, &f), 1);
	assert_true(mime_hfield_is(&f, "MESSAGE-ID"));
	assert_false(mime_hfield_is(&f, "Message-I"));
	assert_int_equal(f.vlen, 14);
	assert_memory_equal(f.val, "\r\n <a@b>\r\n\t(c)", 14);
	assert_int_equal(mime_header_next(h, sizeof(h) - 1, &pos, &f), 1);
	assert_true(mime_hfield_is(&f, "X"));
	assert_int_equal(f.vlen, 0);
	assert_int_equal(mime_header_next(h, sizeof(h) - 1, &pos, &f), 1);
	assert_true(mime_hfield_is(&f, "Last"));
	assert_memory_equal(f.val, " end", 4);
	assert_int_equal(mime_header_next(h, sizeof(h) - 1, &pos, &f), 0);
	assert_int_equal(pos, sizeof(h) - 1);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_simple),
	    T(test_mixed_alternative),
	    T(test_rfc822_attachment),
	    T(test_rfc2231),
	    T(test_addresses),
	    T(test_dovecot_vectors),
	    T(test_dovecot_parser_vectors),
	    T(test_missing_boundary),
	    T(test_truncated_multipart),
	    T(test_deep_nesting),
	    T(test_many_parts),
	    T(test_bare_lf),
	    T(test_empty_and_header_only),
	    T(test_sections),
	    T(test_section_long_list),
	    T(test_section_errors),
	    T(test_binary),
	    T(test_decode_header),
	    T(test_decode_body),
	    T(test_cache_round_trip),
	    T(test_cache_corrupt),
	    T(test_cache_version_1),
	    T(test_prefixes),
	    T(test_imap_strings),
	    T(test_header_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
