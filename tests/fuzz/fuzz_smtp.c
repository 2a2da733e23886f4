/* fuzz_smtp.c - SMTP/LMTP command parsing and message content decoding
 * (common/smtp_parser.c).
 *
 * The first byte chooses what is fuzzed:
 *   even: the rest is command lines separated by CR LF; each is parsed as
 *         the server would (verb, then MAIL/RCPT/BDAT arguments) under an
 *         offer chosen by the second byte.  Every answer must be well
 *         formed: a parsed path fits SMTP_MAX_PATH and holds no control
 *         character (quoted local parts and address literals may hold
 *         brackets and spaces), a refusal has a 4xx/5xx code, an
 *         enhanced status "c.s.d" of the same class and a one-line text.
 *         MAIL arguments that smtp_parse_reverse_path() takes alone are
 *         taken by MAIL FROM too, with the same path.
 *   odd:  the rest is message content, decoded in DOT mode (DATA) or
 *         COUNTED mode (BDAT), chosen by bit 1, once in one piece and once
 *         in chunks and output room from the second byte.  Both must give
 *         the same bytes and counts.  COUNTED output is the input exactly.
 *         When the input has no bare CR or LF, DOT output must equal a
 *         plain reference: CR LF lines, "." alone ends, a leading dot goes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

static void
check_reply(const struct smtp_reply *r)
{
	if (r->status == NULL || r->text == NULL)
		FAIL();
	if (r->code < 400 || r->code > 599)
		FAIL();
	const char *s = r->status;
	if (strlen(s) < 5 || s[0] != (char)('0' + r->code / 100) ||
	    s[1] != '.')
		FAIL();
	for (const char *p = r->text; *p; p++)
		if (*p == '\r' || *p == '\n')
			FAIL();
}

static void
check_path(const char *path)
{
	size_t n = strnlen(path, SMTP_MAX_PATH + 1);
	if (n > SMTP_MAX_PATH)
		FAIL();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f)
			FAIL();
	}
}

static void
fuzz_commands(uint8_t sel, const char *in, size_t len)
{
	struct smtp_offer offer = {
		.max_size = (sel & 1) ? 10485760 : 0,
		.smtputf8 = (sel >> 1) & 1,
		.dsn = (sel >> 2) & 1,
		.eightbit = (sel >> 3) & 1,
		.auth = (sel >> 4) & 1,
		.null_path_ok = (sel >> 5) & 1,
		.lmtp = (sel >> 6) & 1,
	};
	size_t pos = 0;
	while (pos <= len) {
		const char *end = memmem(in + pos, len - pos, "\r\n", 2);
		size_t n = end ? (size_t)(end - (in + pos)) : len - pos;
		char *line = malloc(n + 1);
		if (line == NULL)
			abort();
		memcpy(line, in + pos, n);
		line[n] = '\0';
		size_t clen = strlen(line); /* the reader refuses NULs */
		const char *args = NULL;
		enum smtp_verb v = smtp_parse_verb(line, clen, &args);
		if (v >= SMTP_VERB_COUNT || args == NULL ||
		    args < line || args > line + clen)
			FAIL();
		if (smtp_verb_name(v) == NULL)
			FAIL();
		struct smtp_reply err = {0};
		char rp[SMTP_MAX_PATH + 1];
		if (v == SMTP_MAIL &&
		    smtp_parse_reverse_path(args, 0, rp, sizeof(rp)) == 0) {
			struct smtp_offer plain = {.null_path_ok = 1};
			struct smtp_mail m;
			check_path(rp);
			if (smtp_parse_mail(args, &plain, &m, &err) != 0 ||
			    strcmp(m.path, rp) != 0)
				FAIL();
		}
		if (v == SMTP_MAIL) {
			struct smtp_mail m;
			if (smtp_parse_mail(args, &offer, &m, &err) == 0) {
				check_path(m.path);
				if (m.path[0] == '\0' && !offer.null_path_ok)
					FAIL();
				if (m.size != 0 && offer.max_size != 0 &&
				    m.size > offer.max_size)
					FAIL();
				if (m.smtputf8 && !offer.smtputf8)
					FAIL();
				if (strnlen(m.envid, SMTP_MAX_ENVID + 1) >
				    SMTP_MAX_ENVID)
					FAIL();
				if ((m.ret[0] || m.envid[0]) && !offer.dsn)
					FAIL();
				/* XDELIVERYID: LMTP only, 1-64 of A-Z a-z
				   0-9 . - _ */
				size_t dl = strnlen(m.delivery_id,
						    SMTP_MAX_DELIVERY_ID + 1);
				if (dl > SMTP_MAX_DELIVERY_ID ||
				    (dl > 0 && !offer.lmtp) ||
				    strspn(m.delivery_id,
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "abcdefghijklmnopqrstuvwxyz"
					   "0123456789.-_") != dl)
					FAIL();
			} else {
				check_reply(&err);
			}
		} else if (v == SMTP_RCPT) {
			struct smtp_rcpt r;
			if (smtp_parse_rcpt(args, &offer, &r, &err) == 0) {
				check_path(r.path);
				if (r.path[0] == '\0')
					FAIL();
				if ((r.notify[0] || r.orcpt[0]) && !offer.dsn)
					FAIL();
				if (strnlen(r.orcpt, SMTP_MAX_ORCPT + 1) >
				    SMTP_MAX_ORCPT)
					FAIL();
			} else {
				check_reply(&err);
			}
		} else if (v == SMTP_BDAT) {
			uint64_t sz;
			int last;
			if (smtp_parse_bdat(args, &sz, &last, &err) != 0)
				check_reply(&err);
			else if (last != 0 && last != 1)
				FAIL();
		}
		free(line);
		if (end == NULL)
			break;
		pos += n + 2;
	}
}

struct decoded {
	struct buf out;
	size_t used;
	int ended;
	uint64_t bare_cr, bare_lf, size;
};

/* Decodes in: chunk 0 means in one piece with ample room, otherwise input
 * chunks cycle 1..chunk and the room cycles 2..room. */
static void
decode(enum smtp_data_mode mode, const char *in, size_t len, unsigned chunk,
       unsigned room, struct decoded *r)
{
	struct smtp_data d;
	smtp_data_init(&d, mode);
	char out[300];
	size_t off = 0, step = 1, rstep = 2, stuck = 0;
	r->out = (struct buf)BUF_INIT;
	while (off < len && !d.ended) {
		size_t n = chunk == 0 ? len - off : step;
		if (n > len - off)
			n = len - off;
		size_t osz = chunk == 0 ? sizeof(out) : rstep;
		if (chunk != 0) {
			step = step % chunk + 1;
			rstep = rstep % room + 2;
		}
		size_t o = 0;
		size_t used = smtp_data_feed(&d, in + off, n, out, osz, &o);
		if (used > n || o > osz)
			FAIL();
		buf_append(&r->out, out, o);
		off += used;
		if (used == 0 && o == 0 && ++stuck > 4)
			FAIL(); /* room for two bytes always makes progress */
		if (used != 0 || o != 0)
			stuck = 0;
	}
	if (d.size != buf_used(&r->out)) /* size counts what feed made */
		FAIL();
	if (mode == SMTP_DATA_COUNTED) {
		size_t o = smtp_data_finish(&d, out);
		if (o > 1)
			FAIL();
		buf_append(&r->out, out, o);
	}
	r->used = off;
	r->ended = d.ended;
	r->bare_cr = d.bare_cr;
	r->bare_lf = d.bare_lf;
	r->size = d.size;
}

static int
has_bare(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\r' && (i + 1 >= len || in[i + 1] != '\n'))
			return 1;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return 1;
	}
	return 0;
}

/* DOT mode on input without bare CR/LF: the lines as RFC 5321 4.5.2 has
 * them.  Returns whether the end line was found; *used_r is how much of
 * the input that took. */
static int
reference_dot(const char *in, size_t len, struct buf *out, size_t *used_r)
{
	size_t pos = 0;
	while (pos < len) {
		const char *e = memmem(in + pos, len - pos, "\r\n", 2);
		if (e == NULL) {
			/* an unfinished last line: decoded as far as it goes */
			size_t n = len - pos;
			const char *l = in + pos;
			if (n > 0 && l[0] == '.') {
				l++;
				n--;
			}
			buf_append(out, l, n);
			*used_r = len;
			return 0;
		}
		size_t n = (size_t)(e - (in + pos));
		const char *l = in + pos;
		if (n == 1 && l[0] == '.') {
			*used_r = pos + 3;
			return 1;
		}
		if (n > 0 && l[0] == '.') {
			l++;
			n--;
		}
		buf_append(out, l, n);
		buf_append(out, "\r\n", 2);
		pos += (size_t)(e - (in + pos)) + 2;
	}
	*used_r = len;
	return 0;
}

static void
fuzz_content(uint8_t mode_sel, uint8_t sel, const char *in, size_t len)
{
	enum smtp_data_mode mode = (mode_sel & 2) ? SMTP_DATA_COUNTED
						  : SMTP_DATA_DOT;
	struct decoded whole, parts;
	decode(mode, in, len, 0, 0, &whole);
	decode(mode, in, len, (sel & 15) + 1, (sel >> 4) + 1, &parts);
	if (whole.used != parts.used || whole.ended != parts.ended ||
	    whole.bare_cr != parts.bare_cr || whole.bare_lf != parts.bare_lf)
		FAIL();
	/* A CR held back at the end of input shows only in a later call:
	   compare what both produced. */
	size_t n = buf_used(&whole.out) < buf_used(&parts.out)
			   ? buf_used(&whole.out)
			   : buf_used(&parts.out);
	if (n > 0 && memcmp(buf_ptr(&whole.out), buf_ptr(&parts.out), n) != 0)
		FAIL();
	if (mode == SMTP_DATA_COUNTED) {
		if (whole.ended || whole.used != len)
			FAIL();
		if (buf_used(&whole.out) != len ||
		    (len > 0 && memcmp(buf_ptr(&whole.out), in, len) != 0))
			FAIL();
	} else if (!has_bare(in, len)) {
		if (whole.bare_cr != 0 || whole.bare_lf != 0)
			FAIL();
		struct buf ref = BUF_INIT;
		size_t used = 0;
		int ended = reference_dot(in, len, &ref, &used);
		if (ended != whole.ended)
			FAIL();
		if (ended) {
			if (used != whole.used ||
			    buf_used(&ref) != buf_used(&whole.out) ||
			    (buf_used(&ref) > 0 &&
			     memcmp(buf_ptr(&ref), buf_ptr(&whole.out),
				    buf_used(&ref)) != 0))
				FAIL();
		} else {
			/* the decoder may hold back a CR or a line's first
			   dot; everything it produced matches */
			if (buf_used(&whole.out) > buf_used(&ref) ||
			    (buf_used(&whole.out) > 0 &&
			     memcmp(buf_ptr(&ref), buf_ptr(&whole.out),
				    buf_used(&whole.out)) != 0))
				FAIL();
		}
		buf_free(&ref);
	}
	buf_free(&whole.out);
	buf_free(&parts.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 65536)
		return 0;
	const char *in = (const char *)data + 2;
	size_t len = size - 2;
	if ((data[0] & 1) == 0)
		fuzz_commands(data[1], in, len);
	else
		fuzz_content(data[0], data[1], in, len);
	return 0;
}
