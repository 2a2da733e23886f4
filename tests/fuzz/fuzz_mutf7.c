/* fuzz_mutf7.c - mailbox names: modified UTF-7 and the name checks
 * (backend/imap/imap_mutf7.c).
 *
 * The input is used three ways:
 *   - as a name a client sent in modified UTF-7: when it decodes, the
 *     result is valid UTF-8, and encoding it then decoding again gives the
 *     same UTF-8 (the encoding need not be the client's, which may split
 *     runs);
 *   - as UTF-8: when valid, encoding gives printable ASCII that decodes
 *     back to exactly the input;
 *   - as a name for imap_name_check(), which must never read past it
 *     (ASan, exact-size heap copy) and must accept only names without NUL,
 *     control bytes, empty levels, "." or "..". */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which, then abort (libFuzzer saves the input). */
#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

/* The bytes of b; never NULL (an empty buf has no data at all). */
static const char *
ptr(const struct buf *b)
{
	return buf_used(b) > 0 ? buf_ptr(b) : "";
}

static int
same(const struct buf *a, const char *s, size_t n)
{
	return buf_used(a) == n && (n == 0 || memcmp(ptr(a), s, n) == 0);
}

static void
check_name(const char *name, size_t len)
{
	const char *err = imap_name_check(name, len);
	if (err != NULL)
		return;
	if (len == 0 || len > 400 || memchr(name, '\0', len) != NULL ||
	    name[0] == '/' || name[len - 1] == '/')
		FAIL();
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/') {
			unsigned char c = (unsigned char)name[i];
			if (c < 0x20 || c == 0x7f)
				FAIL();
			continue;
		}
		size_t n = i - start;
		if (n == 0 || (n == 1 && name[start] == '.') ||
		    (n == 2 && memcmp(name + start, "..", 2) == 0))
			FAIL();
		start = i + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	/* An exact-size copy so that ASan sees any read past the end. */
	char *in = malloc(size ? size : 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);

	/* Modified UTF-7 from a client. */
	struct buf u8 = BUF_INIT, m7 = BUF_INIT, again = BUF_INIT;
	if (imap_mutf7_to_utf8(in, size, &u8) == 0) {
		if (!imap_utf8_valid(ptr(&u8), buf_used(&u8)))
			FAIL();
		imap_utf8_to_mutf7(ptr(&u8), buf_used(&u8), &m7);
		if (imap_mutf7_to_utf8(ptr(&m7), buf_used(&m7), &again) !=
			    0 ||
		    !same(&again, ptr(&u8), buf_used(&u8)))
			FAIL();
		char *copy = malloc(buf_used(&u8) ? buf_used(&u8) : 1);
		if (copy == NULL)
			abort();
		if (buf_used(&u8) > 0)
			memcpy(copy, ptr(&u8), buf_used(&u8));
		check_name(copy, buf_used(&u8));
		free(copy);
	}
	buf_free(&u8);
	buf_free(&m7);
	buf_free(&again);

	/* UTF-8 to modified UTF-7 and back. */
	if (imap_utf8_valid(in, size)) {
		struct buf enc = BUF_INIT, dec = BUF_INIT;
		imap_utf8_to_mutf7(in, size, &enc);
		for (size_t i = 0; i < buf_used(&enc); i++) {
			unsigned char c = (unsigned char)ptr(&enc)[i];
			if (c < 0x20 || c > 0x7e)
				FAIL();
		}
		if (imap_mutf7_to_utf8(ptr(&enc), buf_used(&enc), &dec) !=
			    0 ||
		    !same(&dec, in, size))
			FAIL();
		buf_free(&enc);
		buf_free(&dec);
	} else {
		/* Invalid UTF-8 is still encoded (as U+FFFD), never a
		   crash. */
		struct buf enc = BUF_INIT;
		imap_utf8_to_mutf7(in, size, &enc);
		buf_free(&enc);
	}

	check_name(in, size);
	free(in);
	return 0;
}
