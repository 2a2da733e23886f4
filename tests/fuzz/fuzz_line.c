/* fuzz_line.c - the bounded reader in line mode (POP3, SMTP, SASL).
 *
 * The first three bytes choose the limits and a chunking seed; the rest is
 * the client's byte stream.  It is read twice: in one piece, and in chunks
 * whose sizes come from the seed (one byte at a time included).  Both
 * readings must report the same sequence of commands and errors, every
 * command must fit max_line and hold no line feed and no NUL, and the
 * reader must never stop consuming. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/lineparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which, then abort (libFuzzer saves the input). */
#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

/* One event: status, and the command or the error text. */
static void
record(struct buf *log, enum lp_status st, const char *s, size_t n)
{
	uint8_t hdr[5] = {(uint8_t)st, (uint8_t)(n >> 24), (uint8_t)(n >> 16),
			  (uint8_t)(n >> 8), (uint8_t)n};
	buf_append(log, hdr, sizeof(hdr));
	buf_append(log, s, n);
}

static void
check_command(const struct lp_limits *lim, const char *cmd, size_t len)
{
	if (len > lim->max_line || len > lim->max_command)
		FAIL();
	if (memchr(cmd, '\n', len) != NULL || memchr(cmd, '\0', len) != NULL)
		FAIL();
}

/* Reads data through a fresh reader in chunks; chunk 0 means everything at
 * once, otherwise sizes cycle through 1 .. chunk. */
static void
run(const struct lp_limits *lim, const char *data, size_t size,
    unsigned chunk, struct buf *log)
{
	struct lp_reader r;
	lp_init(&r, LP_MODE_LINE, lim);
	size_t off = 0, step = 1;
	unsigned stuck = 0;
	while (off < size) {
		size_t n = chunk == 0 ? size - off : step;
		if (n > size - off)
			n = size - off;
		if (chunk != 0)
			step = step % chunk + 1;
		size_t pos = 0;
		while (pos < n) {
			size_t used = 0;
			enum lp_status st = lp_feed(&r, data + off + pos,
						    n - pos, &used);
			if (used > n - pos)
				FAIL();
			pos += used;
			size_t len;
			const char *cmd = lp_command(&r, &len);
			if (len > lim->max_command + 2)
				FAIL();
			switch (st) {
			case LP_MORE:
				if (pos != n)
					FAIL();
				break;
			case LP_COMMAND:
				check_command(lim, cmd, len);
				record(log, st, cmd, len);
				lp_next(&r);
				break;
			case LP_ERROR: {
				const char *e = lp_error(&r);
				record(log, st, e, strlen(e));
				lp_next(&r);
				break;
			}
			case LP_CONTINUE:
			case LP_FATAL:
			case LP_STATUS_COUNT:
				/* No literals in line mode. */
				FAIL();
			}
			/* A status that consumes nothing twice in a row
			   would never end. */
			stuck = used == 0 ? stuck + 1 : 0;
			if (stuck > 2)
				FAIL();
		}
		off += n;
	}
	lp_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > 65536)
		return 0;
	struct lp_limits lim = {
		.max_line = (size_t)data[0] % 96 + 1,
		.max_command = (size_t)data[1] % 128 + 1,
		.max_literal = 0,
		.max_literals = 0,
	};
	unsigned chunk = data[2] % 17 + 1;
	data += 3;
	size -= 3;

	struct buf whole = BUF_INIT, chunked = BUF_INIT;
	run(&lim, (const char *)data, size, 0, &whole);
	run(&lim, (const char *)data, size, chunk, &chunked);
	if (buf_used(&whole) != buf_used(&chunked) ||
	    (buf_used(&whole) > 0 &&
	     memcmp(buf_ptr(&whole), buf_ptr(&chunked), buf_used(&whole)) != 0))
		FAIL();
	buf_free(&whole);
	buf_free(&chunked);
	return 0;
}
