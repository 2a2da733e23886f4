/* fuzz_ldap_escape.c - RFC 4515 value escaping (frontend/ldap_escape.c).
 *
 * The first byte picks the size of the output buffer (sometimes too
 * small); the rest is a login as a client might send it.  With room enough
 * (3 bytes per input byte and the NUL) escaping must succeed; whenever it
 * succeeds the output is terminated inside the buffer, holds no bare
 * ( ) * or NUL, every backslash starts a two-digit hex escape, and
 * unescaping gives the input back.  Too little room is an error, never a
 * write past the buffer (ASan watches the exact-size heap copy).  The
 * whole input is also read as a GeneralizedTime, which must write back
 * to itself in time. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "frontend/directory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which, then abort (libFuzzer saves the input). */
#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

/* The input as a GeneralizedTime (porticoAutoReplyStart/End): whatever
 * parses is written back as one, which parses to the same time. */
static void
check_time(const char *in, size_t len)
{
	int64_t t, t2;
	char out[20];
	/* years 1970 to 9999: four digits as strftime writes them */
	if (dir_generalized_time(in, len, &t) < 0 || t <= 0 ||
	    t >= INT64_C(253402300800))
		return;
	dir_time_format(t, 0, out, sizeof(out));
	if (out[0] == '\0')
		FAIL();
	if (dir_generalized_time(out, strlen(out), &t2) < 0 || t2 != t)
		FAIL();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	check_time((const char *)data, size);
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	size_t need = 3 * len + 1;
	/* Sizes around the input's length, and the worst case. */
	size_t outsize;
	switch (data[0] % 4) {
	case 0:
		outsize = need;
		break;
	case 1:
		outsize = len + data[0] / 4;
		break;
	case 2:
		outsize = data[0] / 4;
		break;
	default:
		outsize = need + data[0];
		break;
	}
	char *out = malloc(outsize ? outsize : 1);
	if (out == NULL)
		return 0;
	int rc = ldap_filter_escape(in, len, out, outsize);
	if (rc != 0 && rc != -1)
		FAIL();
	if (rc < 0 && outsize >= need)
		FAIL();
	if (rc == 0) {
		char *nul = memchr(out, '\0', outsize);
		if (nul == NULL)
			FAIL();
		size_t olen = (size_t)(nul - out);
		char *back = malloc(len ? len : 1);
		if (back == NULL)
			abort();
		size_t b = 0;
		for (size_t i = 0; i < olen; i++) {
			char c = out[i];
			if (c == '(' || c == ')' || c == '*')
				FAIL();
			if (c == '\\') {
				if (i + 2 >= olen + 1)
					FAIL();
				int hi = hex_digit(out[i + 1]),
				    lo = hex_digit(out[i + 2]);
				if (hi < 0 || lo < 0)
					FAIL();
				c = (char)(hi << 4 | lo);
				i += 2;
			}
			if (b >= len)
				FAIL();
			back[b++] = c;
		}
		if (b != len || (len > 0 && memcmp(back, in, len) != 0))
			FAIL();
		free(back);
	}
	free(out);
	return 0;
}
