/* test_casefold.c - imap_casefold(), the i;unicode-casemap comparator of
 * RFC 5051 that SEARCH, SORT and THREAD use: titlecase, then NFKD, each
 * result titlecased again, in every script (not only those below U+0500),
 * outside the BMP too; bytes that are not UTF-8 pass through; folding
 * twice changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/imap/imap.h"
#include "common/buf.h"

static char *
fold(const char *s, size_t len)
{
	struct buf b = BUF_INIT;
	imap_casefold(s, len, &b);
	char *r = malloc(buf_used(&b) + 1);
	assert_non_null(r);
	if (buf_used(&b) > 0)
		memcpy(r, buf_ptr(&b), buf_used(&b));
	r[buf_used(&b)] = '\0';
	buf_free(&b);
	return r;
}

static void
folds_to(const char *in, const char *want)
{
	char *got = fold(in, strlen(in));
	if (strcmp(got, want) != 0)
		fail_msg("fold(\"%s\") = \"%s\", want \"%s\"", in, got, want);
	/* folding what is folded changes nothing */
	char *again = fold(got, strlen(got));
	assert_string_equal(again, got);
	free(again);
	free(got);
}

static void
same(const char *a, const char *b)
{
	char *fa = fold(a, strlen(a)), *fb = fold(b, strlen(b));
	if (strcmp(fa, fb) != 0)
		fail_msg("\"%s\" and \"%s\" fold apart: \"%s\" / \"%s\"", a, b,
			 fa, fb);
	free(fa);
	free(fb);
}

static void
test_ascii(void **state)
{
	folds_to("", "");
	folds_to("Hello, World! 0-9 [a~z]", "HELLO, WORLD! 0-9 [A~Z]");
}

static void
test_latin_greek_cyrillic(void **state)
{
	/* é and É: E and the combining acute accent */
	folds_to("\xc3\xa9", "E\xcc\x81");
	same("caf\xc3\xa9", "CAF\xc3\x89");
	/* ß has no simple titlecase of its own and stays */
	folds_to("Stra\xc3\x9f"
		 "e",
		 "STRA\xc3\x9f"
		 "E");
	/* σ, ς and Σ */
	same("\xcf\x83", "\xcf\x82");
	same("\xcf\x83", "\xce\xa3");
	/* ё: Е and the combining diaeresis */
	folds_to("\xd1\x91", "\xd0\x95\xcc\x88");
	same("\xd0\xbc\xd0\xb8\xd1\x80", "\xd0\x9c\xd0\x98\xd0\xa0"); /* мир */
	/* ǆ, ǅ and Ǆ: D, Z and the combining caron */
	folds_to("\xc7\x86", "DZ\xcc\x8c");
	same("\xc7\x84", "\xc7\x85");
}

static void
test_other_scripts(void **state)
{
	/* Armenian (beyond the old table): հայ / ՀԱՅ */
	same("\xd5\xb0\xd5\xa1\xd5\xb5", "\xd5\x80\xd4\xb1\xd5\x85");
	/* Cherokee small letters fold to the capitals */
	same("\xea\xad\xb0", "\xe1\x8e\xa0"); /* ꭰ / Ꭰ */
	/* Glagolitic */
	same("\xe2\xb0\xb0", "\xe2\xb0\x80"); /* ⰰ / Ⰰ */
	/* Deseret, outside the BMP: 𐐨 / 𐐀 */
	same("\xf0\x90\x90\xa8", "\xf0\x90\x90\x80");
	/* compatibility forms: the ligature fi, fullwidth letters, whose
	   decompositions are titlecased again */
	folds_to("\xef\xac\x81", "FI");
	folds_to("\xef\xbc\xa1\xef\xbd\x82", "AB"); /* Ａｂ */
	/* a Hangul syllable: its jamo (한) */
	folds_to("\xed\x95\x9c", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
	/* what does not change: CJK, digits of other scripts stay apart */
	folds_to("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87");
}

/* A text much longer than a chunk, with characters that grow and shrink
 * across the chunks' edges, folds as its pieces do. */
static void
test_long_text(void **state)
{
	const char *piece = "x\xef\xb7\xba\xef\xbc\xa1\xd1\x91";
	char *one = fold(piece, strlen(piece));
	struct buf in = BUF_INIT, want = BUF_INIT;
	for (int i = 0; i < 5000; i++) {
		buf_append(&in, piece, strlen(piece));
		buf_append(&want, one, strlen(one));
	}
	struct buf got = BUF_INIT;
	imap_casefold(buf_ptr(&in), buf_used(&in), &got);
	assert_int_equal(buf_used(&got), buf_used(&want));
	assert_memory_equal(buf_ptr(&got), buf_ptr(&want), buf_used(&want));
	buf_free(&in);
	buf_free(&want);
	buf_free(&got);
	free(one);
}

static void
test_long_decomposition(void **state)
{
	/* U+FDFA: eighteen characters, as NFKD has them */
	char *f = fold("\xef\xb7\xba", 3);
	size_t chars = 0;
	for (const char *p = f; *p != '\0'; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	assert_int_equal(chars, 18);
	free(f);
}

/* Every character of the BMP (the table's) and a sample beyond: folding
 * what is folded changes nothing, and a character folds as it does
 * between ASCII letters (a chunk's edges change nothing). */
static void
test_every_bmp_character(void **state)
{
	for (unsigned c = 0x80; c < 0x11000; c += c < 0x10000 ? 1 : 97) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		char u[8];
		size_t n = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
		if (n == 2) {
			u[0] = (char)(0xc0 | c >> 6);
			u[1] = (char)(0x80 | (c & 0x3f));
		} else if (n == 3) {
			u[0] = (char)(0xe0 | c >> 12);
			u[1] = (char)(0x80 | (c >> 6 & 0x3f));
			u[2] = (char)(0x80 | (c & 0x3f));
		} else {
			u[0] = (char)(0xf0 | c >> 18);
			u[1] = (char)(0x80 | (c >> 12 & 0x3f));
			u[2] = (char)(0x80 | (c >> 6 & 0x3f));
			u[3] = (char)(0x80 | (c & 0x3f));
		}
		char *f = fold(u, n);
		char *again = fold(f, strlen(f));
		if (strcmp(f, again) != 0)
			fail_msg("U+%04X: folding twice changed it", c);
		char wrapped[16];
		snprintf(wrapped, sizeof(wrapped), "a%.*sb", (int)n, u);
		char *w = fold(wrapped, strlen(wrapped));
		assert_true(strlen(w) == strlen(f) + 2);
		assert_memory_equal(w + 1, f, strlen(f));
		free(w);
		free(again);
		free(f);
	}
}

static void
test_not_utf8(void **state)
{
	/* stray and cut bytes pass through; what follows still folds */
	char *f = fold("\xff\xfe"
		       "a\xc3",
		       4);
	assert_memory_equal(f,
			    "\xff\xfe"
			    "A\xc3",
			    5);
	free(f);
	f = fold("a\x00"
		 "b",
		 3);
	assert_memory_equal(f,
			    "A\x00"
			    "B",
			    3);
	free(f);
	/* an encoded surrogate is no character, nor an overlong form */
	f = fold("\xed\xa0\x80x", 4);
	assert_memory_equal(f, "\xed\xa0\x80X", 4);
	free(f);
	f = fold("\xe0\x81\xa1\xc1\xa1", 5);
	assert_memory_equal(f, "\xe0\x81\xa1\xc1\xa1", 5);
	free(f);
	/* a character cut at the end */
	f = fold("\xd0\xb8\xd0", 3);
	assert_memory_equal(f, "\xd0\x98\xd0", 3);
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ascii),
	    cmocka_unit_test(test_latin_greek_cyrillic),
	    cmocka_unit_test(test_other_scripts),
	    cmocka_unit_test(test_long_decomposition),
	    cmocka_unit_test(test_long_text),
	    cmocka_unit_test(test_every_bmp_character),
	    cmocka_unit_test(test_not_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
