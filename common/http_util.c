/* http_util.c - what HTTP handlers share and tests link alone: form and
 * query parameters, escaping, origins. */
#include "common/http.h"

#include <string.h>
#include <strings.h>

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

/* host [":" port] (RFC 3986 3.2.2-3, an IPv6 host in brackets) into the
 * host and the port, def when there is none.  -1 when malformed. */
static int
origin_authority(const char *a, size_t len, long def, const char **host_r,
		 size_t *hostlen_r, long *port_r)
{
	const char *end = a + len, *colon = NULL;
	if (len > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', len);
		if (close == NULL)
			return -1;
		if (close + 1 < end) {
			if (close[1] != ':')
				return -1;
			colon = close + 1;
		}
	} else {
		colon = memchr(a, ':', len);
	}
	const char *hend = colon ? colon : end;
	if (hend == a)
		return -1;
	for (const char *p = a; p < hend; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("/?#@\\", *p) != NULL || (*p == ':' && a[0] != '['))
			return -1;
	long port = def;
	if (colon != NULL && colon + 1 < end) {
		if (end - (colon + 1) > 5)
			return -1;
		port = 0;
		for (const char *p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			port = port * 10 + (*p - '0');
		}
		if (port > 65535)
			return -1;
	}
	*host_r = a;
	*hostlen_r = (size_t)(hend - a);
	*port_r = port;
	return 0;
}

int
http_origin_matches(const char *origin, const char *scheme, const char *host)
{
	long def = strcasecmp(scheme, "https") == 0  ? 443
		   : strcasecmp(scheme, "http") == 0 ? 80
						     : -1;
	size_t slen = strlen(scheme);
	if (def < 0 || strncasecmp(origin, scheme, slen) != 0 ||
	    strncmp(origin + slen, "://", 3) != 0)
		return 0;
	const char *oa = origin + slen + 3;
	const char *oh, *hh;
	size_t ohlen, hhlen;
	long oport, hport;
	if (origin_authority(oa, strlen(oa), def, &oh, &ohlen, &oport) < 0 ||
	    origin_authority(host, strlen(host), def, &hh, &hhlen, &hport) < 0)
		return 0;
	return ohlen == hhlen && strncasecmp(oh, hh, ohlen) == 0 &&
	       oport == hport;
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

