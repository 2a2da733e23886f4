/* http_xml.c - the bounded XML scanner of autodiscover requests: the text
 * of one element, nothing else (no DTD, no entity beyond the predefined
 * ones and numeric ASCII references, no recursion). */
#include "frontend/http/http_xml.h"

#include <string.h>

/* Decodes the five predefined entities and numeric references of ASCII
 * characters; -1 on anything else. */
static int
http_xml_unescape(const char *s, size_t len, char *out, size_t outsize)
{
	static const struct {
		const char *name;
		char ch;
	} ents[] = {{"amp;", '&'},  {"lt;", '<'},   {"gt;", '>'},
		    {"quot;", '"'}, {"apos;", '\''}};
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '&') {
			size_t j, rest = len - i - 1;
			for (j = 0; j < sizeof(ents) / sizeof(ents[0]); j++) {
				size_t n = strlen(ents[j].name);
				if (rest >= n &&
				    memcmp(s + i + 1, ents[j].name, n) == 0) {
					ch = ents[j].ch;
					i += n;
					break;
				}
			}
			if (j == sizeof(ents) / sizeof(ents[0])) {
				unsigned v = 0;
				size_t k = i + 1;
				if (k >= len || s[k] != '#')
					return -1;
				for (k++; k < len && s[k] >= '0' && s[k] <= '9' &&
					  v < 1000;
				     k++)
					v = v * 10 + (unsigned)(s[k] - '0');
				if (k >= len || s[k] != ';' || v == 0 ||
				    v > 126)
					return -1;
				ch = (char)v;
				i = k;
			}
		}
		if (o + 1 >= outsize)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

/* The trimmed text of the first element whose local name is name (any
 * namespace prefix).  1: found, 0: absent, -1: malformed or too long. */
int
http_xml_element(const char *xml, size_t len, const char *name,
		     char *out, size_t outsize)
{
	size_t nlen = strlen(name);
	const char *p = xml, *end = xml + len;
	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		p++;
		if (p >= end)
			return -1;
		/* Comments and CDATA hold no markup (XML 1.0 2.5, 2.7): what
		   looks like an element inside them is none; a DTD is not
		   read at all. */
		static const struct {
			const char *open, *close;
		} skip[] = {{"!--", "-->"}, {"![CDATA[", "]]>"}, {"?", "?>"}};
		int skipped = 0;
		for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++) {
			size_t ol = strlen(skip[k].open);
			if ((size_t)(end - p) < ol ||
			    memcmp(p, skip[k].open, ol) != 0)
				continue;
			const char *c = memmem(p + ol, (size_t)(end - p - ol),
					       skip[k].close,
					       strlen(skip[k].close));
			if (c == NULL)
				return -1;
			p = c + strlen(skip[k].close);
			skipped = 1;
			break;
		}
		if (skipped)
			continue;
		if (*p == '!')
			return -1; /* <!DOCTYPE ...> and the like */
		if (*p == '/')
			continue;
		const char *n = p;
		while (p < end && *p != '>' && *p != '/' && *p != ' ' &&
		       *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		const char *colon = memchr(n, ':', (size_t)(p - n));
		const char *local = colon ? colon + 1 : n;
		if ((size_t)(p - local) != nlen || memcmp(local, name, nlen) != 0)
			continue;
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (gt == NULL)
			return -1;
		if (gt[-1] == '/') {
			if (outsize == 0)
				return -1;
			out[0] = '\0';
			return 1;
		}
		const char *text = gt + 1;
		const char *lt = memchr(text, '<', (size_t)(end - text));
		if (lt == NULL || (lt + 1 < end && lt[1] == '!'))
			return -1; /* text with a comment or CDATA in it */
		while (text < lt && (*text == ' ' || *text == '\t' ||
				     *text == '\r' || *text == '\n'))
			text++;
		while (lt > text && (lt[-1] == ' ' || lt[-1] == '\t' ||
				     lt[-1] == '\r' || lt[-1] == '\n'))
			lt--;
		if (http_xml_unescape(text, (size_t)(lt - text), out,
					  outsize) < 0)
			return -1;
		return 1;
	}
	return 0;
}
