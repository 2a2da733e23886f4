/* http_util.c - what HTTP handlers share and tests link alone: form and
 * query parameters, escaping. */
#include "common/http.h"

#include <string.h>

#include "common/hex.h"

/* Decodes src[0..len) into out; -1 when malformed or too long. */
static int
param_decode(const char *src, size_t len, char *out, size_t outsize)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)src[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = hex_digit(src[i + 1]);
			int lo = hex_digit(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch == 0 || o + 1 >= outsize)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

int
http_param(const char *params, size_t len, const char *name, char *out,
	   size_t outsize)
{
	size_t nlen = strlen(name);
	const char *p = params, *end = params + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		char key[64];
		if ((size_t)(kend - p) < sizeof(key) &&
		    param_decode(p, (size_t)(kend - p), key, sizeof(key)) == 0 &&
		    strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
			if (eq == NULL) {
				if (outsize == 0)
					return -1;
				out[0] = '\0';
				return 1;
			}
			if (param_decode(eq + 1, (size_t)(stop - eq - 1), out,
					 outsize) < 0)
				return -1;
			return 1;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

void
http_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default: buf_append(b, s, 1); break;
		}
	}
}

