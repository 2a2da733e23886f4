/* test_imap_parser.c - IMAP arguments from commands as lineparse gives
 * them, and one test that runs the two together byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/imap_parser.h"
#include "common/lineparse.h"

static const struct imap_parse_limits test_limits = {
	.max_depth = 4,
	.max_args = 32,
	.max_section = 64,
};

struct fixture {
	struct arena a;
	struct imap_arg *args;
	unsigned count;
	const char *error;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	arena_init(&f->a, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	arena_free(&f->a);
	free(f);
	return 0;
}

static int
parse_lim(struct fixture *f, const char *cmd, size_t len,
	  const struct imap_parse_limits *lim)
{
	f->args = NULL;
	f->count = 0;
	f->error = NULL;
	return imap_parse(cmd, len, &f->a, lim, &f->args, &f->count,
			  &f->error);
}

/* Parses a string literal (sizeof, so it may hold NULs) and expects
 * success with count top-level arguments. */
#define PARSE_OK(f, s, n)                                                   \
	do {                                                                \
		int rc_ = parse_lim(f, s, sizeof(s) - 1, &test_limits);     \
		if (rc_ != 0)                                               \
			fail_msg("parse of \"%s\" failed: %s", s, f->error); \
		assert_int_equal(f->count, n);                              \
	} while (0)

#define PARSE_FAIL(f, s, err)                                               \
	do {                                                                \
		assert_int_equal(parse_lim(f, s, sizeof(s) - 1, &test_limits), \
				 -1);                                       \
		assert_non_null(f->error);                                  \
		assert_string_equal(f->error, err);                         \
	} while (0)

static void
assert_arg(const struct imap_arg *arg, enum imap_arg_type type,
	   const char *str, size_t len)
{
	assert_int_equal(arg->type, type);
	assert_int_equal(arg->len, len);
	assert_non_null(arg->str);
	assert_memory_equal(arg->str, str, len);
	/* Every copy is NUL-terminated. */
	assert_int_equal(arg->str[len], '\0');
}

#define ATOM(arg, s) assert_arg(arg, IMAP_ARG_ATOM, s, sizeof(s) - 1)
#define STRING(arg, s) assert_arg(arg, IMAP_ARG_STRING, s, sizeof(s) - 1)
#define LITERAL(arg, s) assert_arg(arg, IMAP_ARG_LITERAL, s, sizeof(s) - 1)

static void
assert_list(const struct imap_arg *arg, unsigned count)
{
	assert_int_equal(arg->type, IMAP_ARG_LIST);
	assert_int_equal(arg->count, count);
	if (count > 0)
		assert_non_null(arg->list);
}

/* -- atoms and strings ---------------------------------------------------- */

static void
test_atoms(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a1 NOOP", 2);
	ATOM(&f->args[0], "a1");
	ATOM(&f->args[1], "NOOP");
	assert_int_equal(f->args[0].literal8, 0);
	assert_null(f->args[0].list);

	PARSE_OK(f, "a STORE 1:3,5,7:* +FLAGS.SILENT \\Seen", 5);
	ATOM(&f->args[2], "1:3,5,7:*");
	ATOM(&f->args[3], "+FLAGS.SILENT");
	ATOM(&f->args[4], "\\Seen");

	PARSE_OK(f, "a LIST \"\" %/*] ~x ~", 6);
	STRING(&f->args[2], "");
	ATOM(&f->args[3], "%/*]");
	ATOM(&f->args[4], "~x");
	ATOM(&f->args[5], "~");

	PARSE_OK(f, "x", 1);
	ATOM(&f->args[0], "x");
}

static void
test_atom_stops_at_specials(void **state)
{
	struct fixture *f = *state;
	PARSE_FAIL(f, "a X ab(c", "Missing space between arguments");
	PARSE_FAIL(f, "a X ab\"c\"", "Missing space between arguments");
	PARSE_FAIL(f, "a X ab{1}\r\nc", "Missing space between arguments");
	PARSE_FAIL(f, "a X ab)", "Missing space between arguments");
	PARSE_FAIL(f, "a X ab\tc", "Missing space between arguments");
	PARSE_FAIL(f, "a X \x7f", "Invalid characters in atom");
	PARSE_FAIL(f, "a X \x01", "Invalid characters in atom");
	PARSE_FAIL(f, "\r\n", "Invalid characters in atom");
}

static void
test_quoted(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a LOGIN \"bob\" \"p\\\"w\\\\d\"", 4);
	STRING(&f->args[2], "bob");
	STRING(&f->args[3], "p\"w\\d");

	PARSE_OK(f, "a X \"\" \"\\\\\" \"\\\"\" \"a b (c) {5}\"", 6);
	STRING(&f->args[2], "");
	STRING(&f->args[3], "\\");
	STRING(&f->args[4], "\"");
	STRING(&f->args[5], "a b (c) {5}");

	/* A quoted string is a string, even if it says NIL. */
	PARSE_OK(f, "\"NIL\"", 1);
	STRING(&f->args[0], "NIL");
}

static void
test_quoted_errors(void **state)
{
	struct fixture *f = *state;
	PARSE_FAIL(f, "a X \"a\\b\"", "Invalid escape in quoted string");
	PARSE_FAIL(f, "a X \"a\\\"", "Missing '\"'");
	PARSE_FAIL(f, "a X \"a\\", "Invalid escape in quoted string");
	PARSE_FAIL(f, "a X \"\\n\"", "Invalid escape in quoted string");
	PARSE_FAIL(f, "a X \"abc", "Missing '\"'");
	PARSE_FAIL(f, "a X \"", "Missing '\"'");
	PARSE_FAIL(f, "a X \"a\r\nb\"", "Line end in quoted string");
	PARSE_FAIL(f, "a X \"a\rb\"", "Line end in quoted string");
	PARSE_FAIL(f, "a X \"a\"b", "Missing space between arguments");
	PARSE_FAIL(f, "a X \"a\"\"b\"", "Missing space between arguments");
}

/* -- literals ------------------------------------------------------------- */

static void
test_literals(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a LOGIN {3}\r\nbob {6+}\r\np w\r\n\"", 4);
	LITERAL(&f->args[2], "bob");
	LITERAL(&f->args[3], "p w\r\n\"");
	assert_int_equal(f->args[2].literal8, 0);

	PARSE_OK(f, "a X {3-}\r\nabc {0}\r\n", 4);
	LITERAL(&f->args[2], "abc");
	LITERAL(&f->args[3], "");

	/* A literal followed by more arguments on the next line. */
	PARSE_OK(f, "a X {2}\r\n() \"q\" z", 5);
	LITERAL(&f->args[2], "()");
	STRING(&f->args[3], "q");
	ATOM(&f->args[4], "z");
}

static void
test_literal8(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a APPEND INBOX ~{3}\r\na\0b", 4);
	LITERAL(&f->args[3], "a\0b");
	assert_int_equal(f->args[3].literal8, 1);

	PARSE_OK(f, "a APPEND INBOX ~{4+}\r\n\0\0\0\0", 4);
	LITERAL(&f->args[3], "\0\0\0\0");
	assert_int_equal(f->args[3].literal8, 1);

	/* NUL is allowed in literal8 only. */
	PARSE_FAIL(f, "a APPEND INBOX {3}\r\na\0b", "NUL byte in literal");
}

static void
test_literal_errors(void **state)
{
	struct fixture *f = *state;
	PARSE_FAIL(f, "a X {5}\r\nabcd", "Literal shorter than announced");
	PARSE_FAIL(f, "a X {5}", "Literal must end the line");
	PARSE_FAIL(f, "a X {5}\n12345", "Literal must end the line");
	PARSE_FAIL(f, "a X {5}\r", "Literal must end the line");
	PARSE_FAIL(f, "a X {5} abc", "Literal must end the line");
	PARSE_FAIL(f, "a X {}\r\n", "Invalid literal size");
	PARSE_FAIL(f, "a X {+}\r\n", "Invalid literal size");
	PARSE_FAIL(f, "a X {", "Invalid literal size");
	PARSE_FAIL(f, "a X {5", "Invalid literal");
	PARSE_FAIL(f, "a X {5x}\r\nabcde", "Invalid literal");
	PARSE_FAIL(f, "a X {5++}\r\nabcde", "Invalid literal");
	PARSE_FAIL(f, "a X ~{}\r\n", "Invalid literal size");
	PARSE_FAIL(f, "a X ~{", "Invalid literal size");
	PARSE_FAIL(f, "a X {99999999999999999999}\r\n",
		   "[TOOBIG] Literal too large");
	PARSE_FAIL(f, "a X {18446744073709551615}\r\nabc",
		   "Literal shorter than announced");
	PARSE_FAIL(f, "a X {1}\r\nab", "Missing space between arguments");
}

/* -- lists and sections --------------------------------------------------- */

static void
test_nested_lists(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a X (1 (2 \"s\" (3)) () {1}\r\nL)", 3);
	const struct imap_arg *l = &f->args[2];
	assert_list(l, 4);
	ATOM(&l->list[0], "1");
	assert_list(&l->list[1], 3);
	ATOM(&l->list[1].list[0], "2");
	STRING(&l->list[1].list[1], "s");
	assert_list(&l->list[1].list[2], 1);
	ATOM(&l->list[1].list[2].list[0], "3");
	assert_list(&l->list[2], 0);
	LITERAL(&l->list[3], "L");

	/* Lists side by side, and at the top. */
	PARSE_OK(f, "(a) (b c)", 2);
	assert_list(&f->args[0], 1);
	assert_list(&f->args[1], 2);
	ATOM(&f->args[1].list[1], "c");
}

static void
test_long_list(void **state)
{
	/* Enough items to make the argument arrays grow several times. */
	struct fixture *f = *state;
	char cmd[256];
	size_t n = (size_t)snprintf(cmd, sizeof(cmd), "a X (");
	for (int i = 0; i < 28; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s%d",
				      i ? " " : "", i);
	n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, ")");
	assert_int_equal(parse_lim(f, cmd, n, &test_limits), 0);
	assert_int_equal(f->count, 3);
	assert_list(&f->args[2], 28);
	for (unsigned i = 0; i < 28; i++) {
		char want[8];
		snprintf(want, sizeof(want), "%u", i);
		assert_string_equal(f->args[2].list[i].str, want);
	}
}

/* borrow_min: literals of that size or more point into the command (no
 * copy, no NUL after them) and are no astrings; smaller ones are copied;
 * the NUL check holds for both. */
static void
test_borrowed_literals(void **state)
{
	struct fixture *f = *state;
	struct imap_parse_limits lim = test_limits;
	lim.borrow_min = 5;
	static const char cmd[] = "a APPEND x (\\Seen) {5}\r\nhello {4}\r\n"
				  "abcd";
	assert_int_equal(parse_lim(f, cmd, sizeof(cmd) - 1, &lim), 0);
	assert_int_equal(f->count, 6);
	const struct imap_arg *big = &f->args[4], *small = &f->args[5];
	assert_int_equal(big->type, IMAP_ARG_LITERAL);
	assert_true(big->borrowed);
	assert_ptr_equal(big->str, strstr(cmd, "hello"));
	assert_int_equal(big->len, 5);
	assert_false(imap_arg_is_astring(big));
	assert_false(imap_arg_is_string(big));
	assert_false(small->borrowed);
	assert_true(small->str < cmd || small->str >= cmd + sizeof(cmd));
	assert_string_equal(small->str, "abcd");
	assert_true(imap_arg_is_astring(small));
	assert_true(imap_arg_is_string(small));
	/* 0: nothing borrowed */
	lim.borrow_min = 0;
	assert_int_equal(parse_lim(f, cmd, sizeof(cmd) - 1, &lim), 0);
	assert_false(f->args[4].borrowed);
	assert_string_equal(f->args[4].str, "hello");
	assert_true(imap_arg_is_astring(&f->args[4]));
	/* a NUL in a borrowed literal is refused as in a copied one */
	lim.borrow_min = 1;
	static const char nul[] = "a APPEND x {3}\r\na\0b";
	assert_int_equal(parse_lim(f, nul, sizeof(nul) - 1, &lim), -1);
	assert_string_equal(f->error, "NUL byte in literal");
}

static void
test_section_atom(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f,
		 "a FETCH 1 (BODY[HEADER.FIELDS (From To)]<0.100> "
		 "BODY.PEEK[] FLAGS)",
		 4);
	const struct imap_arg *l = &f->args[3];
	assert_list(l, 3);
	ATOM(&l->list[0], "BODY[HEADER.FIELDS (From To)]<0.100>");
	ATOM(&l->list[1], "BODY.PEEK[]");
	ATOM(&l->list[2], "FLAGS");

	PARSE_OK(f, "a FETCH 1 BODY.PEEK[]", 4);
	ATOM(&f->args[3], "BODY.PEEK[]");

	PARSE_OK(f, "a FETCH 1 BODY[1.2.MIME] BINARY.PEEK[1]<0.5>", 5);
	ATOM(&f->args[3], "BODY[1.2.MIME]");
	ATOM(&f->args[4], "BINARY.PEEK[1]<0.5>");

	/* A bracket without its pair, or with what a section cannot hold. */
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER", "Missing ']'");
	PARSE_FAIL(f, "a FETCH 1 (BODY[HEADER.FIELDS (From))",
		   "Missing ']'");
	PARSE_FAIL(f, "a FETCH 1 BODY[{3}\r\nabc]", "Invalid section");
	PARSE_FAIL(f, "a FETCH 1 BODY[A\r\nB]", "Invalid section");
	PARSE_FAIL(f, "a FETCH 1 BODY[A\x7f]", "Invalid section");
	PARSE_FAIL(f, "a FETCH 1 BODY[]x(", "Missing space between arguments");
}

/* The names of a section's list are astrings: quoted strings and literals
 * are written into the atom as atoms, or quoted where an atom cannot hold
 * them. */
static void
test_section_names(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "a FETCH 1 BODY[HEADER.FIELDS (\"Subject\" {2}\r\nTo)]", 4);
	ATOM(&f->args[3], "BODY[HEADER.FIELDS (Subject To)]");
	/* a literal may hold what ends a section or an atom */
	PARSE_OK(f,
		 "a FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT ( {4+}\r\na]b) "
		 "\"x\\\\y\"  {5}\r\nq\"r s  \"\")]<0.10> UID)",
		 4);
	assert_list(&f->args[3], 2);
	ATOM(&f->args[3].list[0],
	     "BODY.PEEK[HEADER.FIELDS.NOT (\"a]b)\" \"x\\\\y\" "
	     "\"q\\\"r s\" \"\")]<0.10>");
	ATOM(&f->args[3].list[1], "UID");
	/* atoms stay as they are, but for what ATOM-CHAR excludes */
	PARSE_OK(f, "a FETCH 1 BODY[1.HEADER.FIELDS (X-a%b X-c\\d)]", 4);
	ATOM(&f->args[3], "BODY[1.HEADER.FIELDS (\"X-a%b\" \"X-c\\\\d\")]");

	/* what no header field name holds, and what no astring is */
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS ({3}\r\na\r\n)]",
		   "Invalid header field name");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS ({1}\r\n\0)]",
		   "Invalid header field name");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS (\"\xc3\xa4\")]",
		   "Invalid header field name");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS (\xc3\xa4)]",
		   "Invalid header field name");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS (~{1}\r\na)]",
		   "Invalid header field name");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS (\"a\"b)]",
		   "Invalid section");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS ((a))]", "Invalid section");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS (\"a)]", "Missing '\"'");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS ({5}\r\na)]",
		   "Literal shorter than announced");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS ({1}\r\na", "Missing ']'");
	PARSE_FAIL(f, "a FETCH 1 BODY[HEADER.FIELDS {1}\r\na]",
		   "Invalid section");

	/* max_section (64 here) bounds the text between the brackets as it
	   is written, literals included */
	PARSE_OK(f,
		 "a FETCH 1 BODY[HEADER.FIELDS ({48}\r\n"
		 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv)]",
		 4);
	assert_int_equal(f->args[3].len, 5 + 64 + 1);
	PARSE_FAIL(f,
		   "a FETCH 1 BODY[HEADER.FIELDS ({49}\r\n"
		   "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw)]",
		   "[LIMIT] Section too long");
	/* a quoted name counts with its quotes */
	PARSE_FAIL(f,
		   "a FETCH 1 BODY[HEADER.FIELDS ({47}\r\n"
		   "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrst )]",
		   "[LIMIT] Section too long");
}

static void
test_depth_limit(void **state)
{
	struct fixture *f = *state;
	/* max_depth is 4. */
	PARSE_OK(f, "a X ((((x))))", 3);
	assert_list(f->args[2].list[0].list[0].list, 1);
	PARSE_FAIL(f, "a X (((((x)))))", "[LIMIT] Too deeply nested");
	PARSE_FAIL(f, "a X (a (b (c (d (e)))))", "[LIMIT] Too deeply nested");
	/* Width is not depth. */
	PARSE_OK(f, "a X (()) (()) ((((y))))", 5);

	/* Far too deep: refused at the limit, not after recursing. */
	char cmd[10000];
	memset(cmd, '(', sizeof(cmd));
	assert_int_equal(parse_lim(f, cmd, sizeof(cmd), &test_limits), -1);
	assert_string_equal(f->error, "[LIMIT] Too deeply nested");

	static const struct imap_parse_limits flat = { 0, 32 };
	assert_int_equal(parse_lim(f, "a X ()", 6, &flat), -1);
	assert_string_equal(f->error, "[LIMIT] Too deeply nested");
	assert_int_equal(parse_lim(f, "a X y", 5, &flat), 0);
}

static void
test_args_limit(void **state)
{
	struct fixture *f = *state;
	static const struct imap_parse_limits lim = { 4, 6 };
	assert_int_equal(parse_lim(f, "a X 1 2 3 4", 11, &lim), 0);
	assert_int_equal(f->count, 6);
	assert_int_equal(parse_lim(f, "a X 1 2 3 4 5", 13, &lim), -1);
	assert_string_equal(f->error, "[LIMIT] Too many arguments");
	/* Arguments inside lists count, and so do the lists. */
	assert_int_equal(parse_lim(f, "a X (1 2) 3", 11, &lim), 0);
	assert_int_equal(parse_lim(f, "a X (1 (2)) 3", 13, &lim), -1);
	assert_string_equal(f->error, "[LIMIT] Too many arguments");
	assert_int_equal(parse_lim(f, "a X (1 2 3 4 5)", 15, &lim), -1);
	assert_string_equal(f->error, "[LIMIT] Too many arguments");
}

static void
test_spaces(void **state)
{
	struct fixture *f = *state;
	PARSE_FAIL(f, "a  NOOP", "Double space");
	PARSE_FAIL(f, " a NOOP", "Double space");
	PARSE_FAIL(f, "a X ( 1)", "Double space");
	PARSE_FAIL(f, "a X (1  2)", "Double space");
	PARSE_FAIL(f, "a NOOP ", "Unexpected end of command");
	PARSE_FAIL(f, "a X (1 )", "Unexpected ')'");
	PARSE_FAIL(f, " ", "Double space");
}

static void
test_unbalanced(void **state)
{
	struct fixture *f = *state;
	PARSE_FAIL(f, "a X (1 2", "Missing ')'");
	PARSE_FAIL(f, "a X (", "Missing ')'");
	PARSE_FAIL(f, "a X ((1) 2", "Missing ')'");
	PARSE_FAIL(f, "a X )", "Unexpected ')'");
	PARSE_FAIL(f, ")", "Unexpected ')'");
	PARSE_FAIL(f, "a X 1)", "Missing space between arguments");
	PARSE_FAIL(f, "a X (1))", "Missing space between arguments");
	PARSE_FAIL(f, "a X (1)(2)", "Missing space between arguments");
}

static void
test_empty(void **state)
{
	struct fixture *f = *state;
	f->error = NULL;
	assert_int_equal(imap_parse("", 0, &f->a, &test_limits, &f->args,
				    &f->count, &f->error),
			 -1);
	assert_string_equal(f->error, "Empty command");
	/* Only the given length is parsed. */
	PARSE_OK(f, "a NOOP", 2);
	assert_int_equal(parse_lim(f, "a NOOP junk(", 6, &test_limits), 0);
	assert_int_equal(f->count, 2);
	ATOM(&f->args[1], "NOOP");
}

static void
test_helpers(void **state)
{
	struct fixture *f = *state;
	PARSE_OK(f, "NIL nil Nil \"NIL\" {3}\r\nNIL () atom ~{1}\r\nx NILS", 9);
	const struct imap_arg *a = f->args;

	assert_true(imap_arg_is_nil(&a[0]));
	assert_true(imap_arg_is_nil(&a[1]));
	assert_true(imap_arg_is_nil(&a[2]));
	assert_false(imap_arg_is_nil(&a[3])); /* "NIL" */
	assert_false(imap_arg_is_nil(&a[4])); /* {3} NIL */
	assert_false(imap_arg_is_nil(&a[5])); /* () */
	assert_false(imap_arg_is_nil(&a[6]));
	assert_false(imap_arg_is_nil(&a[8])); /* NILS */

	assert_true(imap_arg_is_atom(&a[6], "ATOM"));
	assert_true(imap_arg_is_atom(&a[6], "atom"));
	assert_false(imap_arg_is_atom(&a[6], "ato"));
	assert_false(imap_arg_is_atom(&a[3], "NIL"));
	assert_false(imap_arg_is_atom(&a[5], ""));

	/* astring: atom, quoted or literal (not literal8). */
	assert_true(imap_arg_is_astring(&a[0]));
	assert_true(imap_arg_is_astring(&a[3]));
	assert_true(imap_arg_is_astring(&a[4]));
	assert_false(imap_arg_is_astring(&a[5]));
	assert_true(imap_arg_is_astring(&a[6]));
	assert_false(imap_arg_is_astring(&a[7]));

	/* nstring: quoted, literal or NIL. */
	assert_true(imap_arg_is_string(&a[0]));
	assert_true(imap_arg_is_string(&a[3]));
	assert_true(imap_arg_is_string(&a[4]));
	assert_false(imap_arg_is_string(&a[5]));
	assert_false(imap_arg_is_string(&a[6]));
	assert_false(imap_arg_is_string(&a[8]));
}

/* -- lineparse and imap_parse together ------------------------------------ */

static const struct lp_limits lp_lim = {
	.max_line = 100,
	.max_literal = 50,
	.max_command = 300,
	.max_literals = 4,
};

/* What one command of the stream must give: lineparse's statuses before
 * it, and imap_parse()'s verdict on it. */
struct step {
	unsigned continues;  /* LP_CONTINUE before the command */
	enum lp_status st;   /* LP_COMMAND or LP_ERROR */
	const char *error;   /* imap_parse() error, NULL if it parses */
	unsigned count;      /* top-level arguments */
};

static const char stream[] =
	"a1 LOGIN {3}\r\nbob {5+}\r\np\"w d\r\n"
	"a2 SELECT \"Sent Items\"\n"
	"a3 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n"
	"a4 APPEND INBOX (\\Seen) ~{4}\r\nx\0y\n\r\n"
	"a5 NOOP  x\r\n"
	"a6 SEARCH (OR (FROM \"a\" TO {1}\r\nb)\r\n"
	"a7 NO\0OP\r\n"
	"a8 LOGIN \"x{5}\r\n"
	"a9 ID NIL\r\n"
	"a10 FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\nSubject \"To\")]\r\n";

static const struct step steps[] = {
	{ 1, LP_COMMAND, NULL, 4 },
	{ 0, LP_COMMAND, NULL, 3 },
	{ 0, LP_COMMAND, NULL, 4 },
	{ 1, LP_COMMAND, NULL, 5 },
	{ 0, LP_COMMAND, "Double space", 0 },
	{ 1, LP_COMMAND, "Missing ')'", 0 },
	{ 0, LP_ERROR, NULL, 0 },
	{ 0, LP_COMMAND, "Missing '\"'", 0 },
	{ 0, LP_COMMAND, NULL, 3 },
	{ 1, LP_COMMAND, NULL, 4 },
};

/* Checks the arguments of some steps. */
static void
check_args(unsigned step, const struct imap_arg *args)
{
	switch (step) {
	case 0:
		ATOM(&args[0], "a1");
		LITERAL(&args[2], "bob");
		LITERAL(&args[3], "p\"w d");
		break;
	case 1:
		STRING(&args[2], "Sent Items");
		break;
	case 2:
		assert_list(&args[3], 2);
		ATOM(&args[3].list[1],
		     "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>");
		break;
	case 3:
		assert_list(&args[3], 1);
		ATOM(&args[3].list[0], "\\Seen");
		LITERAL(&args[4], "x\0y\n");
		assert_int_equal(args[4].literal8, 1);
		break;
	case 8:
		assert_true(imap_arg_is_nil(&args[2]));
		break;
	case 9:
		ATOM(&args[3], "BODY.PEEK[HEADER.FIELDS (Subject To)]");
		break;
	}
}

/* Feeds the stream in pieces of chunk bytes (0: whole). */
static void
run_stream(struct arena *a, size_t chunk)
{
	struct lp_reader r;
	size_t pos = 0, len = sizeof(stream) - 1;
	unsigned step = 0, continues = 0;

	lp_init(&r, LP_MODE_IMAP, &lp_lim);
	while (pos < len) {
		size_t n = len - pos, consumed;
		if (chunk > 0 && n > chunk)
			n = chunk;
		enum lp_status st = lp_feed(&r, stream + pos, n, &consumed);
		pos += consumed;
		if (st == LP_MORE)
			continue;
		if (st == LP_CONTINUE) {
			continues++;
			continue;
		}
		assert_true(step < sizeof(steps) / sizeof(steps[0]));
		const struct step *s = &steps[step];
		assert_int_equal(st, s->st);
		assert_int_equal(continues, s->continues);
		if (st == LP_COMMAND) {
			size_t clen;
			const char *cmd = lp_command(&r, &clen);
			struct imap_arg *args = NULL;
			unsigned count = 0;
			const char *error = NULL;
			int rc = imap_parse(cmd, clen, a, &test_limits, &args,
					    &count, &error);
			if (s->error == NULL) {
				if (rc != 0)
					fail_msg("step %u: %s", step, error);
				assert_int_equal(count, s->count);
				check_args(step, args);
			} else {
				assert_int_equal(rc, -1);
				assert_string_equal(error, s->error);
			}
		}
		arena_clear(a);
		lp_next(&r);
		step++;
		continues = 0;
	}
	assert_int_equal(step, sizeof(steps) / sizeof(steps[0]));
	lp_free(&r);
}

static void
test_with_lineparse(void **state)
{
	struct fixture *f = *state;
	run_stream(&f->a, 0);
	run_stream(&f->a, 1);
	run_stream(&f->a, 2);
	run_stream(&f->a, 7);
}

/* The client an ID list names (imap.client_capabilities_off). */
static void
test_id_client(void **state)
{
	struct fixture *f = *state;
	char out[32];
	PARSE_OK(f,
		 "a ID (\"NAME\" \"Foo Mail\" \"os\" NIL "
		 "\"version\" {5}\r\n1.2\x01x)",
		 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 1);
	assert_string_equal(out, "Foo Mail/1.2?x");
	/* no version; a long name cut to what fits */
	PARSE_OK(f,
		 "a ID (\"name\" \"A client with a very long name "
		 "indeed\")",
		 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 1);
	assert_string_equal(out, "A client with a very long name ");
	/* no name (NIL, absent), NIL instead of a list, an odd list */
	PARSE_OK(f, "a ID (\"name\" NIL \"version\" \"1\")", 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 0);
	assert_string_equal(out, "");
	PARSE_OK(f, "a ID NIL", 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 0);
	PARSE_OK(f, "a ID (\"name\")", 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 0);
	/* a name with no room for the version */
	PARSE_OK(f,
		 "a ID (\"version\" \"9\" \"name\" "
		 "\"0123456789012345678901234567890\")",
		 3);
	assert_int_equal(imap_id_client(&f->args[2], out, sizeof(out)), 1);
	assert_string_equal(out, "0123456789012345678901234567890");
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_atoms),          T(test_atom_stops_at_specials),
	    T(test_quoted),         T(test_quoted_errors),
	    T(test_literals),       T(test_literal8),
	    T(test_literal_errors), T(test_nested_lists),
	    T(test_long_list),      T(test_borrowed_literals),
	    T(test_section_atom),   T(test_section_names),
	    T(test_depth_limit),    T(test_args_limit),
	    T(test_spaces),         T(test_unbalanced),
	    T(test_empty),          T(test_helpers),
	    T(test_with_lineparse), T(test_id_client),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
