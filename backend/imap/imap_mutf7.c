/* imap_mutf7.c - mailbox names: modified UTF-7 (RFC 3501 5.1.3) and the
 * checks every name passes before it reaches the store. */
#include "backend/imap/imap.h"

#include <string.h>

static const char mb64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
mb64_val(unsigned char c)
{
	const char *p = c ? strchr(mb64, c) : NULL;
	return p ? (int)(p - mb64) : -1;
}

static int
utf8_put(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		if (cp >= 0xd800 && cp < 0xe000)
			return -1;
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else if (cp < 0x110000) {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	} else {
		return -1;
	}
	buf_append(out, b, n);
	return 0;
}

int
imap_mutf7_to_utf8(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e)
			return -1; /* only printable ASCII in mUTF-7 */
		if (c != '&') {
			buf_append(out, &in[i], 1);
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			buf_append(out, "&", 1);
			i++;
			continue;
		}
		/* Base64 of UTF-16BE up to '-'. */
		uint32_t bits = 0, nbits = 0, high = 0;
		size_t start = i;
		while (i < len && in[i] != '-') {
			int v = mb64_val((unsigned char)in[i]);
			if (v < 0)
				return -1;
			i++;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				nbits -= 16;
				uint32_t u = (bits >> nbits) & 0xffff;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					u = 0x10000 + ((high - 0xd800) << 10) +
					    (u - 0xdc00);
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
					continue;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				}
				/* Printable ASCII must not be encoded. */
				if (u >= 0x20 && u <= 0x7e)
					return -1;
				if (utf8_put(out, u) < 0)
					return -1;
			}
		}
		if (i >= len || i == start || high != 0 || nbits >= 6 ||
		    (bits & ((1U << nbits) - 1)) != 0)
			return -1;
		i++; /* '-' */
	}
	return 0;
}

/* Decodes one UTF-8 sequence; -1 when invalid. */
static int
utf8_get(const unsigned char *p, size_t len, uint32_t *cp, size_t *n)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		*n = 1;
		return 0;
	}
	size_t need;
	uint32_t v, min;
	if ((p[0] & 0xe0) == 0xc0) {
		need = 2, v = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		need = 3, v = p[0] & 0x0f, min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		need = 4, v = p[0] & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len < need)
		return -1;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
		return -1;
	*cp = v;
	*n = need;
	return 0;
}

int
imap_utf8_valid(const char *in, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;
	while (i < len) {
		if (utf8_get((const unsigned char *)in + i, len - i, &cp, &n) <
		    0)
			return 0;
		i += n;
	}
	return 1;
}

void
imap_utf8_to_mutf7(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c <= 0x7e) {
			if (c == '&')
				buf_append(out, "&-", 2);
			else
				buf_append(out, &in[i], 1);
			i++;
			continue;
		}
		buf_append(out, "&", 1);
		uint32_t bits = 0, nbits = 0;
		while (i < len && ((unsigned char)in[i] < 0x20 ||
				   (unsigned char)in[i] > 0x7e)) {
			uint32_t cp;
			size_t n;
			if (utf8_get((const unsigned char *)in + i, len - i,
				     &cp, &n) < 0) {
				cp = 0xfffd;
				n = 1;
			}
			i += n;
			uint16_t units[2];
			int nu = 1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 + (cp >> 10));
				units[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < nu; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_append(out, &mb64[(bits >> nbits) & 63],
						   1);
				}
			}
		}
		if (nbits > 0)
			buf_append(out, &mb64[(bits << (6 - nbits)) & 63], 1);
		buf_append(out, "-", 1);
	}
}

const char *
imap_name_check(const char *name, size_t len)
{
	if (len == 0)
		return "Empty mailbox name";
	if (len > 400)
		return "[LIMIT] Mailbox name too long";
	if (memchr(name, '\0', len) != NULL)
		return "Invalid mailbox name";
	if (name[0] == '/' || name[len - 1] == '/')
		return "[CANNOT] Mailbox names cannot start or end with '/'";
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/') {
			unsigned char c = (unsigned char)name[i];
			if (c < 0x20 || c == 0x7f)
				return "[CANNOT] Control characters are not "
				       "allowed in mailbox names";
			continue;
		}
		size_t n = i - start;
		if (n == 0)
			return "[CANNOT] Empty hierarchy level in mailbox name";
		if ((n == 1 && name[start] == '.') ||
		    (n == 2 && name[start] == '.' && name[start + 1] == '.'))
			return "[CANNOT] '.' and '..' are not valid names";
		start = i + 1;
	}
	return NULL;
}
