/* test_lineparse.c - the bounded line and literal reader.
 *
 * Most tests describe an input and the exact events it must produce, and
 * check_input() feeds it whole, one byte at a time and split at every
 * position: all of them must give the same events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/lineparse.h"

/* Error messages of lineparse.c, spelled out so that a change is seen. */
#define E_LINE "[TOOBIG] Command line too long"
#define E_LITERAL "[TOOBIG] Literal too large"
#define E_LITERALS "[LIMIT] Too many literals"
#define E_NUL "NUL byte in command"
#define E_NONSYNC "Invalid command ended in a non-synchronizing literal"

static const struct lp_limits test_limits = {
	.max_line = 64,
	.max_literal = 32,
	.max_command = 128,
	.max_literals = 3,
};

/* One expected event.  text/len for LP_COMMAND, err for LP_ERROR and
 * LP_FATAL. */
struct ev {
	enum lp_status st;
	const char *text;
	size_t len;
	const char *err;
};

#define CMD(s) { LP_COMMAND, s, sizeof(s) - 1, NULL }
#define CONT { LP_CONTINUE, NULL, 0, NULL }
#define ERR(e) { LP_ERROR, NULL, 0, e }
#define FATAL(e) { LP_FATAL, NULL, 0, e }
#define NEV(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_EVENTS 16

/* One event as seen. */
struct seen {
	enum lp_status st;
	char *text;
	size_t len;
	const char *err;
};

struct run {
	struct seen ev[MAX_EVENTS];
	size_t n;
	int pending; /* bytes of an unfinished command are held */
};

static void
run_free(struct run *run)
{
	for (size_t i = 0; i < run->n; i++)
		free(run->ev[i].text);
	run->n = 0;
}

/* Feeds in[0..len) as the pieces that end at the offsets cuts[0..ncuts)
 * (the last piece ends at len), reacting to each status as a server
 * would: lp_next() after LP_COMMAND and LP_ERROR, nothing after
 * LP_CONTINUE, stop at LP_FATAL. */
static void
run_pieces(enum lp_mode mode, const struct lp_limits *lim, const char *in,
	   size_t len, const size_t *cuts, size_t ncuts, struct run *run)
{
	struct lp_reader r;
	size_t pos = 0, piece_end, ci = 0;

	memset(run, 0, sizeof(*run));
	lp_init(&r, mode, lim);
	while (pos < len) {
		piece_end = ci < ncuts ? cuts[ci] : len;
		if (pos >= piece_end) {
			ci++;
			continue;
		}
		size_t consumed = 12345;
		enum lp_status st =
			lp_feed(&r, in + pos, piece_end - pos, &consumed);
		assert_true(consumed <= piece_end - pos);
		pos += consumed;
		if (st == LP_MORE) {
			/* MORE means everything was used. */
			assert_int_equal(pos, piece_end);
			continue;
		}
		assert_true(consumed > 0);
		assert_true(run->n < MAX_EVENTS);
		struct seen *s = &run->ev[run->n++];
		s->st = st;
		if (st == LP_COMMAND) {
			const char *c = lp_command(&r, &s->len);
			s->text = malloc(s->len + 1);
			assert_non_null(s->text);
			if (s->len > 0)
				memcpy(s->text, c, s->len);
			s->text[s->len] = '\0';
			/* No command is ever larger than the limit. */
			assert_true(s->len <= lim->max_command);
		}
		if (st == LP_ERROR || st == LP_FATAL) {
			s->err = lp_error(&r);
			assert_non_null(s->err);
		}
		if (st == LP_FATAL)
			break;
		if (st == LP_COMMAND || st == LP_ERROR)
			lp_next(&r);
	}
	size_t left;
	lp_command(&r, &left);
	run->pending = left > 0;
	lp_free(&r);
}

static void
assert_run_matches(const struct run *run, const struct ev *want, size_t n,
		   const char *how)
{
	if (run->n != n)
		fail_msg("%s: %zu events, expected %zu", how, run->n, n);
	for (size_t i = 0; i < n; i++) {
		const struct seen *s = &run->ev[i];
		if (s->st != want[i].st)
			fail_msg("%s: event %zu is status %d, expected %d", how,
				 i, (int)s->st, (int)want[i].st);
		if (want[i].st == LP_COMMAND) {
			assert_int_equal(s->len, want[i].len);
			assert_memory_equal(s->text, want[i].text, want[i].len);
		}
		if (want[i].err != NULL)
			assert_string_equal(s->err, want[i].err);
	}
}

/* Feeds in whole, one byte at a time and split in two at every offset;
 * every way must give exactly the events in want. */
static void
check_input_lim(enum lp_mode mode, const struct lp_limits *lim,
		const char *in, size_t len, const struct ev *want, size_t n)
{
	struct run whole, run;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	assert_non_null(cuts);

	run_pieces(mode, lim, in, len, NULL, 0, &whole);
	assert_run_matches(&whole, want, n, "whole");

	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_pieces(mode, lim, in, len, cuts, len, &run);
	assert_run_matches(&run, want, n, "byte by byte");
	assert_int_equal(run.pending, whole.pending);
	run_free(&run);

	for (size_t at = 1; at < len; at++) {
		cuts[0] = at;
		run_pieces(mode, lim, in, len, cuts, 1, &run);
		assert_run_matches(&run, want, n, "split");
		assert_int_equal(run.pending, whole.pending);
		run_free(&run);
	}
	run_free(&whole);
	free(cuts);
}

#define CHECK(mode, in, want) \
	check_input_lim(mode, &test_limits, in, sizeof(in) - 1, want, NEV(want))
#define CHECK_LIM(mode, lim, in, want) \
	check_input_lim(mode, lim, in, sizeof(in) - 1, want, NEV(want))

/* -- line mode ------------------------------------------------------------ */

static void
test_line_mode_crlf_and_lf(void **state)
{
	static const struct ev want[] = {
		CMD("USER bob"), CMD("PASS x y"), CMD(""), CMD("QUIT"),
	};
	CHECK(LP_MODE_LINE, "USER bob\r\nPASS x y\n\r\nQUIT\r\n", want);
}

static void
test_line_mode_no_literals(void **state)
{
	/* {5} is just text in line mode, and quotes mean nothing. */
	static const struct ev want[] = {
		CMD("a {5}"), CMD("b \"{1}"), CMD("c"),
	};
	CHECK(LP_MODE_LINE, "a {5}\r\nb \"{1}\r\nc\r\n", want);
}

static void
test_line_mode_partial_line_pending(void **state)
{
	static const struct ev want[] = { CMD("AUTH PLAIN") };
	CHECK(LP_MODE_LINE, "AUTH PLAIN\r\ndGVzdAB0", want);

	struct run run;
	run_pieces(LP_MODE_LINE, &test_limits, "AUTH PLAIN\r\ndGVzdAB0", 20,
		   NULL, 0, &run);
	assert_true(run.pending);
	run_free(&run);
}

static void
test_line_mode_bare_cr_kept(void **state)
{
	/* Only the CR right before the LF is a line end. */
	static const struct ev want[] = { CMD("a\rb"), CMD("c\r") };
	CHECK(LP_MODE_LINE, "a\rb\r\nc\r\r\n", want);
}

static void
test_line_mode_too_long(void **state)
{
	static const struct ev want[] = {
		ERR(E_LINE), CMD("NOOP"),
	};
	CHECK(LP_MODE_LINE,
	      "USER 0123456789012345678901234567890123456789"
	      "012345678901234567890123456789\r\nNOOP\r\n",
	      want);
}

/* -- IMAP mode: lines ------------------------------------------------------ */

static void
test_imap_crlf_and_lf(void **state)
{
	static const struct ev want[] = {
		CMD("a1 NOOP"), CMD("a2 CAPABILITY"),
	};
	CHECK(LP_MODE_IMAP, "a1 NOOP\r\na2 CAPABILITY\n", want);
}

static void
test_imap_empty_lines(void **state)
{
	static const struct ev want[] = { CMD(""), CMD(""), CMD("a NOOP") };
	CHECK(LP_MODE_IMAP, "\r\n\na NOOP\r\n", want);
	CHECK(LP_MODE_IMAP, "\n\r\na NOOP\r\n", want);
	CHECK(LP_MODE_LINE, "\n\r\na NOOP\r\n", want);
}

static void
test_imap_pipelined(void **state)
{
	static const char in[] =
		"a NOOP\r\nb CAPABILITY\nc LOGIN {3+}\r\nbob pw\r\n"
		"d LOGOUT\r\n";
	static const struct ev want[] = {
		CMD("a NOOP"), CMD("b CAPABILITY"),
		CMD("c LOGIN {3+}\r\nbob pw"), CMD("d LOGOUT"),
	};
	CHECK(LP_MODE_IMAP, in, want);

	/* Fed in one call, each status consumes exactly its command. */
	struct lp_reader r;
	size_t pos = 0, consumed, len;
	static const size_t ends[] = { 8, 21, 43, 53 };
	lp_init(&r, LP_MODE_IMAP, &test_limits);
	for (size_t i = 0; i < NEV(ends); i++) {
		assert_int_equal(lp_feed(&r, in + pos, sizeof(in) - 1 - pos,
					 &consumed),
				 LP_COMMAND);
		pos += consumed;
		assert_int_equal(pos, ends[i]);
		lp_command(&r, &len);
		lp_next(&r);
	}
	assert_int_equal(pos, sizeof(in) - 1);
	assert_int_equal(lp_feed(&r, in + pos, 0, &consumed), LP_MORE);
	assert_int_equal(consumed, 0);
	lp_free(&r);
}

static void
test_imap_too_long_line_skipped(void **state)
{
	static const struct ev want[] = { ERR(E_LINE), CMD("b NOOP") };
	CHECK(LP_MODE_IMAP,
	      "a LOGIN 0123456789012345678901234567890123456789"
	      "0123456789012345678901234567890123456789 x\r\nb NOOP\r\n",
	      want);
}

static void
test_imap_line_length_boundary(void **state)
{
	/* 64 bytes: the limit, with CRLF or LF. */
	static const struct ev ok[] = {
		CMD("a NOOP 6789012345678901234567890123456789012345678901234"
		    "56789012"),
		CMD("b NOOP 6789012345678901234567890123456789012345678901234"
		    "56789012"),
	};
	CHECK(LP_MODE_IMAP,
	      "a NOOP 6789012345678901234567890123456789012345678901234"
	      "56789012\r\n"
	      "b NOOP 6789012345678901234567890123456789012345678901234"
	      "56789012\n",
	      ok);
	/* 65 bytes: too long, whatever the line end. */
	static const struct ev bad[] = { ERR(E_LINE), ERR(E_LINE), CMD("c") };
	CHECK(LP_MODE_IMAP,
	      "a NOOP 6789012345678901234567890123456789012345678901234"
	      "567890123\r\n"
	      "b NOOP 6789012345678901234567890123456789012345678901234"
	      "567890123\n"
	      "c\r\n",
	      bad);
}

static void
test_imap_nul_in_line(void **state)
{
	static const char in[] = "a NO\0OP x\r\nb NOOP\r\n";
	static const struct ev want[] = { ERR(E_NUL), CMD("b NOOP") };
	check_input_lim(LP_MODE_IMAP, &test_limits, in, sizeof(in) - 1, want,
			NEV(want));
	check_input_lim(LP_MODE_LINE, &test_limits, in, sizeof(in) - 1, want,
			NEV(want));
}

static void
test_imap_nul_at_line_end(void **state)
{
	static const char in[] = "a NOOP\0\r\nb NOOP\r\n";
	static const struct ev want[] = { ERR(E_NUL), CMD("b NOOP") };
	check_input_lim(LP_MODE_IMAP, &test_limits, in, sizeof(in) - 1, want,
			NEV(want));
}

/* -- IMAP mode: literals -------------------------------------------------- */

static void
test_literal_sync(void **state)
{
	static const char in[] = "a LOGIN {5}\r\nhello pw\r\nb NOOP\r\n";
	static const struct ev want[] = {
		CONT, CMD("a LOGIN {5}\r\nhello pw"), CMD("b NOOP"),
	};
	CHECK(LP_MODE_IMAP, in, want);

	/* The continuation comes right after the header's line end, before
	   any literal byte is used. */
	struct lp_reader r;
	size_t consumed, len;
	lp_init(&r, LP_MODE_IMAP, &test_limits);
	assert_int_equal(lp_feed(&r, in, sizeof(in) - 1, &consumed),
			 LP_CONTINUE);
	assert_int_equal(consumed, 13);
	const char *c = lp_command(&r, &len);
	assert_int_equal(len, 13);
	assert_memory_equal(c, "a LOGIN {5}\r\n", 13);
	lp_free(&r);
}

static void
test_literal_sync_lf_only(void **state)
{
	/* The header's line end is stored as CRLF whatever was sent. */
	static const struct ev want[] = {
		CONT, CMD("a LOGIN {5}\r\nhello pw"),
	};
	CHECK(LP_MODE_IMAP, "a LOGIN {5}\nhello pw\n", want);
}

static void
test_literal_nonsync(void **state)
{
	static const struct ev plus[] = {
		CMD("a LOGIN {5+}\r\nhello pw"), CMD("b NOOP"),
	};
	CHECK(LP_MODE_IMAP, "a LOGIN {5+}\r\nhello pw\r\nb NOOP\r\n", plus);
	static const struct ev minus[] = {
		CMD("a LOGIN {5-}\r\nhello pw"), CMD("b NOOP"),
	};
	CHECK(LP_MODE_IMAP, "a LOGIN {5-}\r\nhello pw\r\nb NOOP\r\n", minus);
}

static void
test_literal_bytes_are_opaque(void **state)
{
	/* Line ends, quotes, NULs and headers inside a literal are data. */
	static const char in[] =
		"a APPEND x {12}\r\n\"\r\n\n{1}\r\n\0\\\" y\r\n";
	static const struct ev want[] = {
		CONT, CMD("a APPEND x {12}\r\n\"\r\n\n{1}\r\n\0\\\" y"),
	};
	check_input_lim(LP_MODE_IMAP, &test_limits, in, sizeof(in) - 1, want,
			NEV(want));
}

static void
test_literal8(void **state)
{
	static const char in[] = "a APPEND INBOX ~{3}\r\na\0b\r\n";
	static const struct ev want[] = {
		CONT, CMD("a APPEND INBOX ~{3}\r\na\0b"),
	};
	check_input_lim(LP_MODE_IMAP, &test_limits, in, sizeof(in) - 1, want,
			NEV(want));
	static const char in2[] = "a APPEND INBOX ~{3+}\r\n\0\0\0\r\n";
	static const struct ev want2[] = {
		CMD("a APPEND INBOX ~{3+}\r\n\0\0\0"),
	};
	check_input_lim(LP_MODE_IMAP, &test_limits, in2, sizeof(in2) - 1,
			want2, NEV(want2));
}

static void
test_literal_ending_in_cr(void **state)
{
	/* A CR that is the literal's last byte is not the line end's CR. */
	static const struct ev crlf[] = { CONT, CMD("a X {1}\r\n\r") };
	CHECK(LP_MODE_IMAP, "a X {1}\r\n\r\r\n", crlf);
	static const struct ev lf[] = { CONT, CMD("a X {1}\r\n\r") };
	CHECK(LP_MODE_IMAP, "a X {1}\r\n\r\n", lf);
}

static void
test_literal_zero(void **state)
{
	static const struct ev sync[] = { CONT, CMD("a X {0}\r\n") };
	CHECK(LP_MODE_IMAP, "a X {0}\r\n\r\n", sync);
	static const struct ev nonsync[] = { CMD("a X {0+}\r\n y"),
					     CMD("b") };
	CHECK(LP_MODE_IMAP, "a X {0+}\r\n y\r\nb\r\n", nonsync);
}

static void
test_literal_several(void **state)
{
	static const struct ev want[] = {
		CONT, CONT, CMD("a LOGIN {3}\r\nbob {4}\r\npass"),
	};
	CHECK(LP_MODE_IMAP, "a LOGIN {3}\r\nbob {4}\r\npass\r\n", want);
}

static void
test_not_literal_headers(void **state)
{
	/* None of these lines ends in a literal header. */
	static const struct ev want[] = {
		CMD("a X {5"), CMD("a X 5}"), CMD("a X {}"), CMD("a X {+}"),
		CMD("a X {5a}"), CMD("a X {5} "), CMD("}"), CMD("{5+"),
		CMD("a X {5++}"),
	};
	CHECK(LP_MODE_IMAP,
	      "a X {5\r\na X 5}\r\na X {}\r\na X {+}\r\na X {5a}\r\n"
	      "a X {5} \r\n}\r\n{5+\r\na X {5++}\r\n",
	      want);
}

static void
test_literal_header_in_quotes(void **state)
{
	static const struct ev closed[] = { CMD("a LOGIN \"x{5}\"") };
	CHECK(LP_MODE_IMAP, "a LOGIN \"x{5}\"\r\n", closed);

	/* An unterminated quoted string: the header is inside it. */
	static const struct ev open[] = { CMD("a LOGIN \"x {5}"),
					  CMD("hello") };
	CHECK(LP_MODE_IMAP, "a LOGIN \"x {5}\r\nhello\r\n", open);

	/* An escaped quote does not end the string... */
	static const struct ev esc[] = { CMD("a LOGIN \"x\\\" {5}"),
					 CMD("hello") };
	CHECK(LP_MODE_IMAP, "a LOGIN \"x\\\" {5}\r\nhello\r\n", esc);

	/* ...but an escaped backslash does, and then {5} is a literal. */
	static const struct ev bs[] = { CONT,
					CMD("a LOGIN \"x\\\\\" {5}\r\nhello") };
	CHECK(LP_MODE_IMAP, "a LOGIN \"x\\\\\" {5}\r\nhello\r\n", bs);

	/* Quote state ends with the command. */
	static const struct ev next[] = { CMD("a \"x"), CONT,
					  CMD("b X {1}\r\n\"") };
	CHECK(LP_MODE_IMAP, "a \"x\r\nb X {1}\r\n\"\r\n", next);
}

static void
test_literal_too_big(void **state)
{
	/* max_literal is 32. */
	static const struct ev ok[] = {
		CMD("a X {32+}\r\n01234567890123456789012345678901"),
	};
	CHECK(LP_MODE_IMAP,
	      "a X {32+}\r\n01234567890123456789012345678901\r\n", ok);

	static const struct ev sync[] = { ERR(E_LITERAL), CMD("b NOOP") };
	CHECK(LP_MODE_IMAP, "a APPEND x {33}\r\nb NOOP\r\n", sync);

	static const struct ev nonsync[] = { FATAL(E_LITERAL) };
	CHECK(LP_MODE_IMAP, "a APPEND x {33+}\r\n0123456789\r\nb NOOP\r\n",
	      nonsync);
	CHECK(LP_MODE_IMAP, "a APPEND x {33-}\r\n0123456789\r\nb NOOP\r\n",
	      nonsync);
	CHECK(LP_MODE_IMAP, "a APPEND x ~{33+}\r\n0123456789\r\n", nonsync);
}

static void
test_literal_size_overflow(void **state)
{
	static const struct ev sync[] = { ERR(E_LITERAL), CMD("b NOOP") };
	CHECK(LP_MODE_IMAP, "a X {99999999999999999999}\r\nb NOOP\r\n", sync);
	CHECK(LP_MODE_IMAP, "a X {18446744073709551616}\r\nb NOOP\r\n", sync);
	CHECK(LP_MODE_IMAP, "a X {18446744073709551615}\r\nb NOOP\r\n", sync);

	static const struct ev nonsync[] = { FATAL(E_LITERAL) };
	CHECK(LP_MODE_IMAP, "a X {99999999999999999999+}\r\nb NOOP\r\n",
	      nonsync);
}

static void
test_literal_leading_zeros(void **state)
{
	/* Fits max_line: {0005} is a literal of 5. */
	static const struct ev want[] = { CONT, CMD("a X {0005}\r\nhello") };
	CHECK(LP_MODE_IMAP, "a X {0005}\r\nhello\r\n", want);
}

static void
test_too_many_literals(void **state)
{
	/* max_literals is 3. */
	static const struct ev three[] = {
		CMD("a X {1+}\r\nA {1+}\r\nB {1+}\r\nC"),
	};
	CHECK(LP_MODE_IMAP, "a X {1+}\r\nA {1+}\r\nB {1+}\r\nC\r\n", three);

	static const struct ev nonsync[] = { FATAL(E_LITERALS) };
	CHECK(LP_MODE_IMAP,
	      "a X {1+}\r\nA {1+}\r\nB {1+}\r\nC {1+}\r\nD\r\nb NOOP\r\n",
	      nonsync);

	/* A client refused a synchronizing literal does not send it. */
	static const struct ev sync[] = {
		CONT, CONT, CONT, ERR(E_LITERALS), CMD("b NOOP"),
	};
	CHECK(LP_MODE_IMAP,
	      "a X {1}\r\nA {1}\r\nB {1}\r\nC {1}\r\nb NOOP\r\n", sync);

	/* The count starts again with each command. */
	static const struct ev again[] = {
		CMD("a X {1+}\r\nA {1+}\r\nB {1+}\r\nC"),
		CMD("b X {1+}\r\nA {1+}\r\nB {1+}\r\nC"),
	};
	CHECK(LP_MODE_IMAP,
	      "a X {1+}\r\nA {1+}\r\nB {1+}\r\nC\r\n"
	      "b X {1+}\r\nA {1+}\r\nB {1+}\r\nC\r\n",
	      again);
}

static const struct lp_limits command_limits = {
	.max_line = 64,
	.max_literal = 32,
	.max_command = 100,
	.max_literals = 10,
};

static void
test_command_too_big_through_literals(void **state)
{
	/* Three literals of 30: 10 + 30 + 7 + 30 + 5 = 82 bytes before the
	   third header's line end; the third literal would make 114. */
	static const struct ev sync[] = {
		CONT, CONT, ERR(E_LITERAL), CMD("b NOOP"),
	};
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30}\r\n012345678901234567890123456789 {30}\r\n"
		  "012345678901234567890123456789 {30}\r\n"
		  "b NOOP\r\n",
		  sync);
	static const struct ev nonsync[] = { FATAL(E_LITERAL) };
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789\r\n",
		  nonsync);
}

/* LITERAL- (RFC 7888): non-synchronizing literals up to 4096 octets;
 * synchronizing ones keep the usual limit. */
static void
test_literal_minus(void **state)
{
	static const struct lp_limits minus = {
		.max_line = 1024,
		.max_literal = 8192,
		.max_command = 16384,
		.max_literals = 10,
		.max_nonsync = 4096,
	};
	static const struct ev small[] = {CMD("a LOGIN {3-}\r\nabc {1+}\r\nx")};
	CHECK_LIM(LP_MODE_IMAP, &minus, "a LOGIN {3-}\r\nabc {1+}\r\nx\r\n",
		  small);
	static const struct ev big[] = {FATAL(
		"[TOOBIG] Non-synchronizing literals are limited to 4096 "
		"octets (LITERAL-)")};
	CHECK_LIM(LP_MODE_IMAP, &minus, "a APPEND INBOX {4097+}\r\nxyz", big);
	static const struct ev sync[] = {CONT};
	CHECK_LIM(LP_MODE_IMAP, &minus, "a APPEND INBOX {4097}\r\n", sync);
}

static void
test_command_size_boundary(void **state)
{
	/* "a X {30+}\r\n" is 11 bytes, "<30> {30+}\r\n" 38: after two
	   literals 11 + 38 + 30 = 79, and a line of 21 reaches the limit of
	   100 exactly. */
	static const struct ev ok[] = {
		CMD("a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		    "012345678901234567890123456789 01234567890123456789"),
	};
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789 01234567890123456789\r\n",
		  ok);
	/* One byte more, with CRLF or LF: too big. */
	static const struct ev bad[] = { ERR(E_LINE), CMD("b") };
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789 01234567890123456789x\r\n"
		  "b\r\n",
		  bad);
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789 01234567890123456789x\n"
		  "b\r\n",
		  bad);
}

static void
test_command_size_literal_boundary(void **state)
{
	/* A literal header is accepted only if the command, with the
	   header's line end and the literal, still fits: "a X {30+}\r\n"
	   + 30 + " {24+}\r\n" = 49 bytes, and 49 + 24 = 73... */
	static const struct lp_limits lim = {
		.max_line = 64, .max_literal = 32, .max_command = 49 + 24,
		.max_literals = 10,
	};
	static const struct ev ok[] = {
		CMD("a X {30+}\r\n012345678901234567890123456789 {24+}\r\n"
		    "012345678901234567890123"),
	};
	CHECK_LIM(LP_MODE_IMAP, &lim,
		  "a X {30+}\r\n012345678901234567890123456789 {24+}\r\n"
		  "012345678901234567890123\r\n",
		  ok);
	/* ...and {25+} makes 74. */
	static const struct ev bad[] = { FATAL(E_LITERAL) };
	CHECK_LIM(LP_MODE_IMAP, &lim,
		  "a X {30+}\r\n012345678901234567890123456789 {25+}\r\n"
		  "0123456789012345678901234\r\n",
		  bad);
	/* The same with synchronizing literals, one byte shorter each. */
	static const struct ev oksync[] = {
		CONT, CONT,
		CMD("a X {30}\r\n012345678901234567890123456789 {26}\r\n"
		    "01234567890123456789012345"),
	};
	CHECK_LIM(LP_MODE_IMAP, &lim,
		  "a X {30}\r\n012345678901234567890123456789 {26}\r\n"
		  "01234567890123456789012345\r\n",
		  oksync);
	static const struct ev badsync[] = { CONT, ERR(E_LITERAL), CMD("b") };
	CHECK_LIM(LP_MODE_IMAP, &lim,
		  "a X {30}\r\n012345678901234567890123456789 {27}\r\nb\r\n",
		  badsync);
}

/* A bad line that ends in a non-synchronizing literal: the literal's bytes
 * follow at once and must never be read as commands. */
static void
test_bad_line_with_nonsync_literal(void **state)
{
	/* Too long, noticed in the middle of the line. */
	static const struct ev toolong[] = { ERR(E_LINE), FATAL(E_NONSYNC) };
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10+}\r\nb LOGOUT\r\n\r\n",
	      toolong);
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 ~{10-}\nb LOGOUT\r\n\r\n",
	      toolong);
	/* Too long by one byte, noticed at the line end: fatal at once. */
	static const struct ev atend[] = { FATAL(E_LINE) };
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 012345678901234567890123456789012345678901234567"
	      " {10+}\nb LOGOUT\r\n\r\n",
	      atend);
	/* Too big a command, noticed at the line end. */
	CHECK_LIM(LP_MODE_IMAP, &command_limits,
		  "a X {30+}\r\n012345678901234567890123456789 {30+}\r\n"
		  "012345678901234567890123456789 01234567890123456{1+}\n"
		  "b LOGOUT\r\n\r\n",
		  atend);
	/* The header's last byte is the one over the limit. */
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 012345678901234567890123456789012345678901234567"
	      " {10+}\r\nb LOGOUT\r\n\r\n",
	      toolong);
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 0123456789012345678901234567890123456789012345678"
	      " {10+}\r\nb LOGOUT\r\n\r\n",
	      toolong);
	/* A NUL in the line. */
	static const struct ev nul[] = { ERR(E_NUL), FATAL(E_NONSYNC) };
	CHECK(LP_MODE_IMAP, "a APPEND x\0 {10+}\r\nb LOGOUT\r\n\r\n", nul);

	/* Synchronizing: the client waits for "+" and never gets it. */
	static const struct ev sync[] = { ERR(E_LINE), CMD("b NOOP") };
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10}\r\nb NOOP\r\n",
	      sync);
	/* Skipped lines that merely contain braces are harmless. */
	static const struct ev other[] = { ERR(E_LINE), CMD("b NOOP") };
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10+} x\r\nb NOOP\r\n",
	      other);
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10}+\r\nb NOOP\r\n",
	      other);
	CHECK(LP_MODE_IMAP,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10+}\r\r\nb NOOP\r\n",
	      other);
	/* Line mode has no literals. */
	static const struct ev line[] = { ERR(E_LINE), CMD("b LOGOUT") };
	CHECK(LP_MODE_LINE,
	      "a APPEND x 01234567890123456789012345678901234567890123456789"
	      "0123456789 {10+}\r\nb LOGOUT\r\n",
	      line);
}

/* -- lp_reset, lp_next, lp_tag -------------------------------------------- */

static enum lp_status
feed_str(struct lp_reader *r, const char *s, size_t *consumed_r)
{
	return lp_feed(r, s, strlen(s), consumed_r);
}

static void
assert_command(const struct lp_reader *r, const char *want)
{
	size_t len;
	const char *c = lp_command(r, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(c, want, len);
}

static void
test_reset_discards_partial_line(void **state)
{
	struct lp_reader r;
	size_t consumed;
	lp_init(&r, LP_MODE_IMAP, &test_limits);

	assert_int_equal(feed_str(&r, "a NOO", &consumed), LP_MORE);
	assert_int_equal(consumed, 5);
	lp_reset(&r);
	assert_int_equal(feed_str(&r, "b NOOP\r\n", &consumed), LP_COMMAND);
	assert_int_equal(consumed, 8);
	assert_command(&r, "b NOOP");
	lp_next(&r);

	/* In the middle of a literal. */
	assert_int_equal(feed_str(&r, "a X {5+}\r\nab", &consumed), LP_MORE);
	lp_reset(&r);
	assert_int_equal(feed_str(&r, "c NOOP\r\n", &consumed), LP_COMMAND);
	assert_command(&r, "c NOOP");
	lp_next(&r);

	/* In an open quoted string: the quote is forgotten too. */
	assert_int_equal(feed_str(&r, "a \"x", &consumed), LP_MORE);
	lp_reset(&r);
	assert_int_equal(feed_str(&r, "d X {1}\r\n", &consumed), LP_CONTINUE);
	assert_int_equal(feed_str(&r, "!\r\n", &consumed), LP_COMMAND);
	assert_command(&r, "d X {1}\r\n!");
	lp_next(&r);

	/* While skipping an over-long line. */
	assert_int_equal(feed_str(&r, "a 0123456789012345678901234567890123"
				      "456789012345678901234567890123456789",
				  &consumed),
			 LP_ERROR);
	assert_string_equal(lp_error(&r), E_LINE);
	lp_reset(&r);
	assert_int_equal(feed_str(&r, "e NOOP\r\n", &consumed), LP_COMMAND);
	assert_command(&r, "e NOOP");
	lp_free(&r);
}

static void
test_next_keeps_skipping(void **state)
{
	struct lp_reader r;
	size_t consumed;
	lp_init(&r, LP_MODE_LINE, &test_limits);
	assert_int_equal(feed_str(&r, "a 0123456789012345678901234567890123"
				      "456789012345678901234567890123456789",
				  &consumed),
			 LP_ERROR);
	/* The error stops at the first byte over the limit + the CR. */
	assert_int_equal(consumed, 66);
	lp_next(&r);
	assert_int_equal(feed_str(&r, "more junk", &consumed), LP_MORE);
	assert_int_equal(consumed, 9);
	assert_int_equal(feed_str(&r, "x\r\nf NOOP\r\n", &consumed),
			 LP_COMMAND);
	assert_int_equal(consumed, 11);
	assert_command(&r, "f NOOP");
	lp_free(&r);
}

static void
test_error_default_message(void **state)
{
	struct lp_reader r;
	lp_init(&r, LP_MODE_IMAP, &test_limits);
	assert_string_equal(lp_error(&r), "Invalid command");
	lp_free(&r);
}

static void
test_error_text(void **state)
{
	/* POP3 and SMTP send the text without IMAP's response code. */
	assert_string_equal(lp_error_text("[TOOBIG] Command line too long"),
			    "Command line too long");
	assert_string_equal(lp_error_text("[LIMIT] Too many literals"),
			    "Too many literals");
	assert_string_equal(lp_error_text("NUL byte in command"),
			    "NUL byte in command");
	/* nothing after the code, or no closing bracket: left whole */
	assert_string_equal(lp_error_text("[TOOBIG]"), "[TOOBIG]");
	assert_string_equal(lp_error_text("[TOOBIG "), "[TOOBIG ");
	assert_string_equal(lp_error_text(""), "");
}

static void
test_set_limits(void **state)
{
	/* Limits tighten after a command (pre-login -> post-login). */
	struct lp_reader r;
	size_t consumed;
	struct lp_limits small = test_limits;
	small.max_line = 8;
	lp_init(&r, LP_MODE_IMAP, &test_limits);
	assert_int_equal(feed_str(&r, "a 345678901\r\n", &consumed),
			 LP_COMMAND);
	lp_next(&r);
	lp_set_limits(&r, &small);
	assert_int_equal(feed_str(&r, "a 345678901\r\n", &consumed), LP_ERROR);
	/* Stopped at the 10th byte (max_line + 1 for a CR). */
	assert_int_equal(consumed, 10);
	lp_next(&r);
	assert_int_equal(feed_str(&r, "1\r\n", &consumed), LP_MORE);
	assert_int_equal(consumed, 3);
	assert_int_equal(feed_str(&r, "a 345678\r\n", &consumed), LP_COMMAND);
	lp_next(&r);
	lp_set_mode(&r, LP_MODE_LINE);
	assert_int_equal(feed_str(&r, "a {1}\r\n", &consumed), LP_COMMAND);
	assert_command(&r, "a {1}");
	lp_free(&r);
}

static void
test_tag(void **state)
{
	char out[16];
	static const struct {
		const char *cmd, *tag;
	} cases[] = {
		{ "a1 NOOP", "a1" },
		{ "A.b-c_d] NOOP", "A.b-c_d]" },
		{ "tag", "tag" },
		{ "x", "x" },
		{ "123456789012345 NOOP", "123456789012345" },
		/* Too long for out. */
		{ "1234567890123456 NOOP", "*" },
		{ "", "*" },
		{ " a NOOP", "*" },
		{ "a+ NOOP", "*" },
		{ "+ NOOP", "*" },
		{ "a* NOOP", "*" },
		{ "a% NOOP", "*" },
		{ "a( NOOP", "*" },
		{ "a) NOOP", "*" },
		{ "a{ NOOP", "*" },
		{ "a\" NOOP", "*" },
		{ "a\\ NOOP", "*" },
		{ "a\tNOOP", "*" },
		{ "a\x7f NOOP", "*" },
		{ "a\xc3\xa9 NOOP", "*" },
		{ "a\r", "*" },
	};
	for (size_t i = 0; i < NEV(cases); i++) {
		memset(out, 'Z', sizeof(out));
		char *r = lp_tag(cases[i].cmd, strlen(cases[i].cmd), out,
				 sizeof(out));
		assert_ptr_equal(r, out);
		if (strcmp(out, cases[i].tag) != 0)
			fail_msg("lp_tag(\"%s\") = \"%s\", expected \"%s\"",
				 cases[i].cmd, out, cases[i].tag);
	}
	/* Only len bytes are looked at. */
	assert_string_equal(lp_tag("abc def", 2, out, sizeof(out)), "ab");
	assert_string_equal(lp_tag("abc(def", 3, out, sizeof(out)), "abc");
	/* A NUL inside len is not a tag character. */
	assert_string_equal(lp_tag("ab\0 x", 5, out, sizeof(out)), "*");
	/* The smallest useful buffer. */
	char two[2];
	assert_string_equal(lp_tag("a NOOP", 6, two, sizeof(two)), "a");
	assert_string_equal(lp_tag("ab NOOP", 7, two, sizeof(two)), "*");
}

/* Feeds the whole of in (a string) and returns the status. */
static enum lp_status
feed_all(struct lp_reader *r, const char *in)
{
	size_t used = 0;
	enum lp_status st = feed_str(r, in, &used);
	assert_int_equal(used, strlen(in));
	return st;
}

#define E_BUDGET                                                               \
	"[UNAVAILABLE] Server busy with other large commands, "                \
	"try again later"

static void
test_budget_shared(void **state)
{
	(void)state;
	struct lp_budget budget = {.max = 40};
	struct lp_reader a, b;
	lp_init(&a, LP_MODE_IMAP, &test_limits);
	lp_init(&b, LP_MODE_IMAP, &test_limits);
	lp_set_budget(&a, &budget);
	lp_set_budget(&b, &budget);

	/* a's literal is counted at its announced size, before its octets. */
	assert_int_equal(feed_all(&a, "1 APPEND x {30}\r\n"), LP_CONTINUE);
	assert_int_equal(budget.used, 30);
	/* b's does not fit beside it: refused before the client sends it,
	   as a temporary error; nothing of b's is counted. */
	assert_int_equal(feed_all(&b, "2 APPEND x {11}\r\n"), LP_ERROR);
	assert_string_equal(lp_error(&b), E_BUDGET);
	assert_true(lp_error_temporary(&b));
	assert_int_equal(budget.used, 30);
	assert_int_equal(budget.refused, 1);
	lp_next(&b);
	assert_false(lp_error_temporary(&b));
	/* What fits beside it is taken, a zero-length literal always. */
	assert_int_equal(feed_all(&b, "3 APPEND x {10}\r\n"), LP_CONTINUE);
	assert_int_equal(budget.used, 40);
	assert_int_equal(feed_all(&b, "0123456789 {0}\r\n"), LP_CONTINUE);
	assert_int_equal(feed_all(&b, "\r\n"), LP_COMMAND);
	/* A command's literals are given back when it is done with. */
	lp_next(&b);
	assert_int_equal(budget.used, 30);
	/* A non-synchronizing literal over the budget cannot be refused
	   before it arrives: fatal. */
	assert_int_equal(feed_all(&b, "4 APPEND x {11+}\r\n"), LP_FATAL);
	assert_string_equal(lp_error(&b), E_BUDGET);
	assert_int_equal(budget.refused, 2);
	lp_reset(&b);
	/* The reader being freed mid-literal (a session ending) gives its
	   part back. */
	assert_int_equal(feed_all(&a, "0123456789"), LP_MORE);
	lp_free(&a);
	assert_int_equal(budget.used, 0);
	assert_int_equal(feed_all(&b, "5 APPEND x {11+}\r\n0123456789a\r\n"),
			 LP_COMMAND);
	assert_int_equal(budget.used, 11);
	lp_reset(&b);
	assert_int_equal(budget.used, 0);
	/* Detaching the budget gives back what the reader holds of it. */
	assert_int_equal(feed_all(&b, "6 APPEND x {7}\r\n"), LP_CONTINUE);
	assert_int_equal(budget.used, 7);
	lp_set_budget(&b, NULL);
	assert_int_equal(budget.used, 0);
	lp_free(&b);

	/* max 0: no cap, but still counted. */
	struct lp_budget open = {.max = 0};
	lp_init(&a, LP_MODE_IMAP, &test_limits);
	lp_set_budget(&a, &open);
	assert_int_equal(feed_all(&a, "7 APPEND x {32}\r\n"), LP_CONTINUE);
	assert_int_equal(open.used, 32);
	lp_free(&a);
	assert_int_equal(open.used, 0);
	assert_int_equal(open.refused, 0);
}

static void
test_large_command_buffer_released(void **state)
{
	(void)state;
	struct lp_limits lim = test_limits;
	lim.max_literal = lim.max_command = 4 * LP_KEEP_SIZE;
	struct lp_reader r;
	lp_init(&r, LP_MODE_IMAP, &lim);
	/* A small command's buffer is kept for the next. */
	assert_int_equal(feed_all(&r, "1 NOOP\r\n"), LP_COMMAND);
	lp_next(&r);
	assert_true(r.cmd.cap > 0 && r.cmd.cap <= LP_KEEP_SIZE);
	/* A large one's is not: a session holds it only while reading it. */
	size_t n = 2 * LP_KEEP_SIZE;
	char *lit = malloc(n);
	assert_non_null(lit);
	memset(lit, 'x', n);
	char head[64];
	snprintf(head, sizeof(head), "2 APPEND x {%zu+}\r\n", n);
	assert_int_equal(feed_all(&r, head), LP_MORE);
	size_t used;
	assert_int_equal(lp_feed(&r, lit, n, &used), LP_MORE);
	assert_int_equal(used, n);
	assert_int_equal(feed_all(&r, "\r\n"), LP_COMMAND);
	assert_true(r.cmd.cap >= n);
	lp_next(&r);
	assert_int_equal(r.cmd.cap, 0);
	assert_int_equal(buf_used(&r.cmd), 0);
	/* and the reader goes on as before */
	assert_int_equal(feed_all(&r, "3 NOOP\r\n"), LP_COMMAND);
	assert_command(&r, "3 NOOP");
	lp_free(&r);
	free(lit);
}

/* A command moved out of its reader keeps its literals counted until it
 * is released; the reader goes on with a buffer of its own. */
static void
test_hold_command(void **state)
{
	(void)state;
	struct lp_budget budget = {.max = 40};
	struct lp_reader r;
	struct lp_held h = LP_HELD_INIT;
	lp_init(&r, LP_MODE_IMAP, &test_limits);
	lp_set_budget(&r, &budget);
	/* Releasing nothing is harmless. */
	lp_held_release(&h);

	assert_int_equal(feed_all(&r, "1 APPEND x {10}\r\n"), LP_CONTINUE);
	assert_int_equal(feed_all(&r, "0123456789 more\r\n"), LP_COMMAND);
	const char *reader_copy = buf_ptr(&r.cmd);
	size_t len;
	lp_command(&r, &len);
	const char *cmd = lp_hold_command(&r, &h);
	/* The same octets, not a copy, with a NUL after them. */
	assert_int_equal(buf_used(&h.buf), len);
	assert_true(cmd == reader_copy || r.cmd.data == NULL);
	assert_memory_equal(cmd, "1 APPEND x {10}\r\n0123456789 more", len);
	assert_int_equal(cmd[len], '\0');
	/* The reader has nothing left of it... */
	assert_null(r.cmd.data);
	assert_int_equal(r.reserved, 0);
	lp_next(&r);
	/* ...but the budget still counts its literal. */
	assert_int_equal(budget.used, 10);
	assert_int_equal(feed_all(&r, "2 APPEND x {31}\r\n"), LP_ERROR);
	assert_string_equal(lp_error(&r), E_BUDGET);
	lp_next(&r);
	/* The reader reads the next command while this one is held. */
	assert_int_equal(feed_all(&r, "3 APPEND x {30}\r\n"), LP_CONTINUE);
	assert_int_equal(budget.used, 40);
	assert_int_equal(feed_all(&r, "012345678901234567890123456789\r\n"),
			 LP_COMMAND);
	assert_memory_equal(cmd, "1 APPEND x {10}\r\n0123456789 more", len);
	/* Holding the next one releases the first. */
	cmd = lp_hold_command(&r, &h);
	assert_int_equal(budget.used, 30);
	assert_int_equal(strncmp(cmd, "3 APPEND x {30}\r\n", 17), 0);
	lp_next(&r);
	lp_held_release(&h);
	assert_int_equal(budget.used, 0);
	assert_null(h.buf.data);
	lp_held_release(&h);
	assert_int_equal(budget.used, 0);
	/* An empty command is "" with no buffer. */
	assert_int_equal(feed_all(&r, "\r\n"), LP_COMMAND);
	assert_string_equal(lp_hold_command(&r, &h), "");
	lp_next(&r);
	lp_held_release(&h);
	/* Released after its reader is gone (a session freed while its
	   command was stored), the budget still comes back. */
	assert_int_equal(feed_all(&r, "4 APPEND x {5+}\r\nabcde\r\n"),
			 LP_COMMAND);
	lp_hold_command(&r, &h);
	lp_free(&r);
	assert_int_equal(budget.used, 5);
	lp_held_release(&h);
	assert_int_equal(budget.used, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_mode_crlf_and_lf),
		cmocka_unit_test(test_line_mode_no_literals),
		cmocka_unit_test(test_line_mode_partial_line_pending),
		cmocka_unit_test(test_line_mode_bare_cr_kept),
		cmocka_unit_test(test_line_mode_too_long),
		cmocka_unit_test(test_imap_crlf_and_lf),
		cmocka_unit_test(test_imap_empty_lines),
		cmocka_unit_test(test_imap_pipelined),
		cmocka_unit_test(test_imap_too_long_line_skipped),
		cmocka_unit_test(test_imap_line_length_boundary),
		cmocka_unit_test(test_imap_nul_in_line),
		cmocka_unit_test(test_imap_nul_at_line_end),
		cmocka_unit_test(test_literal_sync),
		cmocka_unit_test(test_literal_sync_lf_only),
		cmocka_unit_test(test_literal_nonsync),
		cmocka_unit_test(test_literal_bytes_are_opaque),
		cmocka_unit_test(test_literal8),
		cmocka_unit_test(test_literal_ending_in_cr),
		cmocka_unit_test(test_literal_zero),
		cmocka_unit_test(test_literal_several),
		cmocka_unit_test(test_not_literal_headers),
		cmocka_unit_test(test_literal_header_in_quotes),
		cmocka_unit_test(test_literal_too_big),
		cmocka_unit_test(test_literal_size_overflow),
		cmocka_unit_test(test_literal_leading_zeros),
		cmocka_unit_test(test_too_many_literals),
		cmocka_unit_test(test_command_too_big_through_literals),
		cmocka_unit_test(test_literal_minus),
		cmocka_unit_test(test_command_size_boundary),
		cmocka_unit_test(test_command_size_literal_boundary),
		cmocka_unit_test(test_bad_line_with_nonsync_literal),
		cmocka_unit_test(test_reset_discards_partial_line),
		cmocka_unit_test(test_next_keeps_skipping),
		cmocka_unit_test(test_error_default_message),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_set_limits),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_budget_shared),
		cmocka_unit_test(test_large_command_buffer_released),
		cmocka_unit_test(test_hold_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
