/* mime_preview.c - the preview of a message (IMAP PREVIEW, RFC 8970):
 * the start of its text, as a mail client shows it under the subject.
 *
 * The text is that of the first text/plain part that is not an
 * attachment, else of the first text/html one, leaving out what is inside
 * an attached message: its transfer encoding and charset decoded to
 * UTF-8, quoted lines ("> ...") and a signature ("-- " and what follows)
 * of plain text left out, HTML's tags, style and script dropped and its
 * common entities decoded, every run of white space made one space, and
 * cut at MIME_PREVIEW_CHARS characters.  At most MIME_PREVIEW_SCAN octets
 * of the part are read.
 */
#include "backend/mime/mime.h"

#include <string.h>
#include <strings.h>

#include "common/buf.h"

/* Octets of the part read for a preview (before decoding). */
#define MIME_PREVIEW_SCAN 16384

/* Whether part idx lies inside an attached message (message/rfc822). */
static int
inside_message(const struct mime_msg *m, uint32_t idx)
{
	struct mime_part_info p;
	if (mime_part_get(m, idx, &p) < 0)
		return 1;
	while (p.parent != MIME_NONE) {
		uint32_t up = p.parent;
		if (mime_part_get(m, up, &p) < 0)
			return 1;
		if (p.flags & MIME_PART_MESSAGE)
			return 1;
	}
	return 0;
}

/* The first leaf text part of subtype sub that is no attachment, or
 * MIME_NONE. */
static uint32_t
find_text(const struct mime_msg *m, const char *sub)
{
	uint32_t n = mime_part_count(m);
	for (uint32_t i = 0; i < n; i++) {
		struct mime_part_info p;
		if (mime_part_get(m, i, &p) < 0 ||
		    !(p.flags & MIME_PART_TEXT) ||
		    (p.flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)))
			continue;
		const char *subtype = p.subtype != NULL ? p.subtype : "plain";
		if (strcasecmp(subtype, sub) != 0)
			continue;
		if (p.disposition != NULL &&
		    strncasecmp(p.disposition, "attachment", 10) == 0)
			continue;
		if (inside_message(m, i))
			continue;
		return i;
	}
	return MIME_NONE;
}

/* Appends c, a UTF-8 byte, collapsing white space; *space: the last one
 * written was a space (or nothing yet was). */
static void
put(struct buf *out, unsigned char c, int *space)
{
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v') {
		if (!*space)
			buf_append(out, " ", 1);
		*space = 1;
		return;
	}
	if (c < 0x20 || c == 0x7f)
		return;
	buf_append(out, (const char *)&c, 1);
	*space = 0;
}

/* Plain text without quoted lines and what follows a signature line. */
static void
plain_text(const char *p, size_t len, struct buf *out)
{
	int space = 1;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - p) : len;
		size_t lend = end > i && p[end - 1] == '\r' ? end - 1 : end;
		const char *line = p + i;
		size_t ll = lend - i;
		if (ll == 3 && memcmp(line, "-- ", 3) == 0)
			break; /* a signature follows (RFC 3676 4.3) */
		size_t lead = 0;
		while (lead < ll && (line[lead] == ' ' || line[lead] == '\t'))
			lead++;
		if (!(lead < ll && line[lead] == '>')) {
			for (size_t k = 0; k < ll; k++)
				put(out, (unsigned char)line[k], &space);
			put(out, '\n', &space);
		}
		i = nl != NULL ? end + 1 : len;
	}
}

static const struct {
	const char *name;
	const char *text;
} entities[] = {
    {"amp", "&"},  {"lt", "<"},   {"gt", ">"},  {"quot", "\""},
    {"apos", "'"}, {"nbsp", " "}, {"#39", "'"}, {"#160", " "},
};

/* HTML without its tags, comments, style and script. */
static void
html_text(const char *p, size_t len, struct buf *out)
{
	int space = 1;
	size_t i = 0;
	while (i < len) {
		if (p[i] == '<') {
			const char *skip_to = ">";
			if (len - i >= 4 && memcmp(p + i, "<!--", 4) == 0)
				skip_to = "-->";
			else if (len - i >= 6 &&
				 strncasecmp(p + i, "<style", 6) == 0)
				skip_to = "</style>";
			else if (len - i >= 7 &&
				 strncasecmp(p + i, "<script", 7) == 0)
				skip_to = "</script>";
			size_t sl = strlen(skip_to), k = i + 1;
			while (k + sl <= len &&
			       strncasecmp(p + k, skip_to, sl) != 0)
				k++;
			i = k + sl <= len ? k + sl : len;
			put(out, ' ', &space);
			continue;
		}
		if (p[i] == '&') {
			size_t k = i + 1;
			while (k < len && k - i <= 6 && p[k] != ';')
				k++;
			int done = 0;
			for (size_t e = 0;
			     k < len && p[k] == ';' &&
			     e < sizeof(entities) / sizeof(entities[0]);
			     e++) {
				size_t n = strlen(entities[e].name);
				if (k - i - 1 == n &&
				    strncasecmp(p + i + 1, entities[e].name,
						n) == 0) {
					put(out,
					    (unsigned char)entities[e].text[0],
					    &space);
					i = k + 1;
					done = 1;
					break;
				}
			}
			if (done)
				continue;
		}
		put(out, (unsigned char)p[i], &space);
		i++;
	}
}

void
mime_preview(const struct mime_msg *m, const char *msg, size_t len,
	     struct buf *out)
{
	int html = 0;
	uint32_t idx = find_text(m, "plain");
	if (idx == MIME_NONE) {
		idx = find_text(m, "html");
		html = 1;
	}
	struct mime_part_info p;
	if (idx == MIME_NONE || mime_part_get(m, idx, &p) < 0 ||
	    p.body_off > len)
		return;
	size_t n = p.body_len;
	if (n > len - p.body_off)
		n = len - p.body_off;
	if (n > MIME_PREVIEW_SCAN)
		n = MIME_PREVIEW_SCAN;
	const char *raw = msg + p.body_off;
	struct buf dec = BUF_INIT, utf8 = BUF_INIT, text = BUF_INIT;
	if (p.cte != NULL && strcasecmp(p.cte, "base64") == 0) {
		mime_decode_base64(raw, n, &dec);
	} else if (p.cte != NULL &&
		   strcasecmp(p.cte, "quoted-printable") == 0) {
		mime_decode_qp(raw, n, &dec);
	} else {
		buf_append(&dec, raw, n);
	}
	if (buf_used(&dec) == 0) { /* (and no NULL to the decoders) */
		buf_free(&dec);
		return;
	}
	const char *cs = mime_part_param(m, idx, "charset", 0);
	if (mime_decode_charset(cs != NULL ? cs : "us-ascii", buf_ptr(&dec),
				buf_used(&dec), &utf8) < 0)
		mime_decode_charset("utf-8", buf_ptr(&dec), buf_used(&dec),
				    &utf8);
	if (html)
		html_text(buf_ptr(&utf8), buf_used(&utf8), &text);
	else
		plain_text(buf_ptr(&utf8), buf_used(&utf8), &text);
	/* MIME_PREVIEW_CHARS characters, whole ones, without the spaces
	   around them */
	const unsigned char *t = (const unsigned char *)buf_ptr(&text);
	size_t tl = buf_used(&text), start = 0, end = 0, chars = 0;
	while (start < tl && t[start] == ' ')
		start++;
	for (size_t k = start; k < tl; k++) {
		if ((t[k] & 0xc0) != 0x80) {
			if (chars == MIME_PREVIEW_CHARS)
				break;
			chars++;
		}
		end = k + 1;
	}
	while (end > start && t[end - 1] == ' ')
		end--;
	if (end > start)
		buf_append(out, (const char *)t + start, end - start);
	buf_free(&dec);
	buf_free(&utf8);
	buf_free(&text);
}
