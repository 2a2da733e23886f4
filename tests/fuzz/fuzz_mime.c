/* fuzz_mime.c - libFuzzer target for backend/mime.
 *
 * An input is a message: it is parsed, ENVELOPE, BODY and BODYSTRUCTURE
 * are written (and must be well-formed IMAP), every part is fetched with
 * every section form and as BINARY, the header decoder runs on the whole
 * input, and the cache is built, loaded and must answer exactly like the
 * direct parse.
 *
 * An input starting with "PMIM" is a cache blob instead: its checksum is
 * fixed up (so that mutations reach the structural checks) and it is
 * loaded against a message of the length it names; whatever loads must
 * give well-formed answers and safe sections.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* -- a minimal IMAP syntax check --------------------------------------------- */

static size_t
value_len(const char *s, size_t len, unsigned int depth)
{
	size_t i = 0;
	if (len == 0 || depth > 4 * MIME_MAX_DEPTH)
		return 0;
	if (s[0] == '(') {
		for (i = 1;;) {
			if (i >= len)
				return 0;
			if (s[i] == ')')
				return i + 1;
			size_t n = value_len(s + i, len - i, depth + 1);
			if (n == 0)
				return 0;
			i += n;
			/* values are separated by one space, except that
			   the parts of a multipart follow each other */
			if (i < len && s[i] == ' ')
				i++;
			else if (i < len && s[i] != ')' &&
				 !(s[i] == '(' && s[i - 1] == ')'))
				return 0;
		}
	}
	if (s[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (i + 1 >= len || (s[i + 1] != '"' &&
						     s[i + 1] != '\\'))
					return 0;
				i++;
			} else if (c == '"') {
				return i + 1;
			} else if (c == '\r' || c == '\n' || c == 0 ||
				   c >= 0x80) {
				return 0;
			}
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

static void
check_list(const struct buf *b, const char *what)
{
	const char *p = buf_used(b) > 0 ? buf_ptr(b) : "";
	if (buf_used(b) == 0 || p[0] != '(' ||
	    value_len(p, buf_used(b), 0) != buf_used(b)) {
		fprintf(stderr, "malformed %s: %.*s\n", what,
			(int)buf_used(b), p);
		abort();
	}
}

/* -- answers ------------------------------------------------------------------ */

static void
answers(const struct mime_msg *m, struct buf *out)
{
	struct buf tmp = BUF_INIT;
	mime_imap_envelope(m, &tmp);
	check_list(&tmp, "ENVELOPE");
	buf_append(out, buf_ptr(&tmp), buf_used(&tmp));
	buf_reset(&tmp);
	mime_imap_body(m, &tmp);
	check_list(&tmp, "BODY");
	buf_append(out, buf_ptr(&tmp), buf_used(&tmp));
	buf_reset(&tmp);
	mime_imap_bodystructure(m, &tmp);
	check_list(&tmp, "BODYSTRUCTURE");
	buf_append(out, buf_ptr(&tmp), buf_used(&tmp));
	buf_free(&tmp);
}

/* The section path of a part, as numbers "1.2.3" (empty for the message
 * and for what a message/rfc822 part holds directly). */
static void
part_path(const struct mime_msg *m, uint32_t idx, char *out, size_t outlen)
{
	uint32_t nums[4 * MIME_MAX_DEPTH];
	unsigned int n = 0;
	struct mime_part_info pi, qi;
	(void)mime_part_get(m, idx, &pi);
	while (pi.parent != MIME_NONE && n < sizeof(nums) / sizeof(nums[0])) {
		(void)mime_part_get(m, pi.parent, &qi);
		if (qi.flags & MIME_PART_MULTIPART) {
			uint32_t k = 1, c = qi.first_child;
			while (c != idx && c != MIME_NONE) {
				struct mime_part_info ci;
				(void)mime_part_get(m, c, &ci);
				c = ci.next;
				k++;
			}
			nums[n++] = k;
		}
		idx = pi.parent;
		pi = qi;
	}
	size_t o = 0;
	out[0] = '\0';
	while (n > 0 && o + 12 < outlen) {
		o += (size_t)snprintf(out + o, outlen - o, o > 0 ? ".%u" : "%u",
				      nums[--n]);
	}
}

static void
sections(const struct mime_msg *m, const char *msg, size_t len,
	 struct arena *a, struct buf *out)
{
	static const char *const texts[] = {
		"", ".MIME", ".HEADER", ".TEXT", ".1",
		".HEADER.FIELDS (Subject From content-type)",
		".HEADER.FIELDS.NOT (Subject \"X\")",
	};
	static const char *const top[] = {
		"", "HEADER", "TEXT", "HEADER.FIELDS (To)",
		"HEADER.FIELDS.NOT (To Cc)", "1", "2", "1.1", "2.1", "1.2.3",
	};
	char path[1024], spec[1200];
	struct mime_section sec;
	const char *error;

	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		if (mime_section_fetch(m, msg, len, top[i], strlen(top[i]), a,
				       &sec, &error) != MIME_OK)
			abort();
		mime_section_copy(&sec, 0, UINT64_MAX, out);
		mime_section_copy(&sec, 1, 3, out);
	}
	/* at most a few hundred parts: every one of them costs a walk */
	uint32_t n = mime_part_count(m);
	if (n > 300)
		n = 300;
	for (uint32_t p = 1; p < n; p++) {
		part_path(m, p, path, sizeof(path));
		if (path[0] == '\0')
			continue;
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			int len_spec = snprintf(spec, sizeof(spec), "%s%s",
						path, texts[i]);
			int ret = mime_section_fetch(m, msg, len, spec,
						     (size_t)len_spec, a, &sec,
						     &error);
			if (ret != MIME_OK)
				abort();
			mime_section_copy(&sec, 0, UINT64_MAX, out);
		}
		int ret = mime_section_binary(m, msg, len, path, strlen(path),
					      a, &sec, &error);
		if (ret == MIME_OK)
			mime_section_copy(&sec, 0, UINT64_MAX, out);
		else if (ret != MIME_ERR_UNKNOWN_CTE)
			abort();
	}
}

/* A preview (PREVIEW, RFC 8970): UTF-8 without control characters, no
 * space at either end nor two in a row, at most MIME_PREVIEW_CHARS
 * characters. */
static void
check_preview(const struct mime_msg *m, const char *msg, size_t len,
	      struct buf *out)
{
	size_t before = buf_used(out);
	mime_preview(m, msg, len, out);
	const unsigned char *p = (const unsigned char *)buf_ptr(out) + before;
	size_t n = buf_used(out) - before, chars = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t w = c < 0x80         ? 1
			   : (c >> 5) == 6  ? 2
			   : (c >> 4) == 14 ? 3
			   : (c >> 3) == 30 ? 4
					    : 0;
		if (w == 0 || i + w > n || c < 0x20 || c == 0x7f)
			abort();
		for (size_t k = 1; k < w; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				abort();
		if (c == ' ' && (i == 0 || i + 1 == n || p[i + 1] == ' '))
			abort();
		chars++;
		i += w;
	}
	if (chars > MIME_PREVIEW_CHARS)
		abort();
}

static void
fuzz_message(const char *msg, size_t len)
{
	struct arena a;
	struct mime_msg *m, *c;
	const char *error;
	struct buf direct = BUF_INIT, cached = BUF_INIT, blob = BUF_INIT;

	arena_init(&a, 0);
	if (mime_parse(&a, msg, len, &m, &error) < 0)
		abort();
	answers(m, &direct);
	sections(m, msg, len, &a, &direct);

	if (mime_cache_build(msg, len, &blob) < 0)
		abort();
	if (mime_cache_load(&a, buf_ptr(&blob), buf_used(&blob), len, &c,
			    &error) < 0)
		abort();
	answers(c, &cached);
	sections(c, msg, len, &a, &cached);
	check_preview(m, msg, len, &direct);
	check_preview(c, msg, len, &cached);
	if (buf_used(&direct) != buf_used(&cached) ||
	    (buf_used(&direct) > 0 &&
	     memcmp(buf_ptr(&direct), buf_ptr(&cached), buf_used(&direct))))
		abort(); /* the cache must answer like the parse */

	buf_reset(&direct);
	mime_decode_header(msg, len, &direct);
	mime_decode_base64(msg, len, &direct);
	mime_decode_qp(msg, len, &direct);
	(void)mime_decode_param(msg, len, &direct);

	buf_free(&direct);
	buf_free(&cached);
	buf_free(&blob);
	arena_free(&a);
}

static void
fuzz_blob(const uint8_t *data, size_t size)
{
	struct arena a;
	struct mime_msg *m;
	const char *error;
	if (size < 40)
		return;
	uint32_t msg_size = (uint32_t)data[12] | (uint32_t)data[13] << 8 |
			    (uint32_t)data[14] << 16 |
			    (uint32_t)data[15] << 24;
	if (msg_size > 1 << 20)
		return;
	unsigned char *b = malloc(size);
	char *msg = malloc(msg_size + 1);
	if (b == NULL || msg == NULL)
		abort();
	memcpy(b, data, size);
	uint32_t h = mime_cache_checksum(b, size);
	b[36] = (unsigned char)h;
	b[37] = (unsigned char)(h >> 8);
	b[38] = (unsigned char)(h >> 16);
	b[39] = (unsigned char)(h >> 24);
	/* some message: lines and headers so sections have work to do */
	for (uint32_t i = 0; i < msg_size; i++)
		msg[i] = "Subject: x\r\n\n--b\r"[i % 18];

	arena_init(&a, 0);
	if (mime_cache_load(&a, b, size, msg_size, &m, &error) == 0) {
		struct buf out = BUF_INIT;
		answers(m, &out);
		sections(m, msg, msg_size, &a, &out);
		buf_free(&out);
	}
	arena_free(&a);
	free(msg);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 4 && memcmp(data, "PMIM", 4) == 0)
		fuzz_blob(data, size);
	else
		fuzz_message((const char *)data, size);
	return 0;
}
