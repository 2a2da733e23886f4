/* mime_decode.c - base64, quoted-printable, charsets, RFC 2047, RFC 2231.
 *
 * Lenient on input (mail is often broken), strict on output: everything
 * that claims to be UTF-8 is valid UTF-8.
 */
#include "backend/mime/mime_private.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "common/hex.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void
mime_decode_base64(const char *in, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=') {
			/* padding ends a group; a new one may follow */
			acc = 0;
			bits = 0;
			continue;
		}
		int v = b64val(c);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			unsigned char byte = (unsigned char)(acc >> bits);
			buf_append(out, &byte, 1);
			acc &= (1u << bits) - 1;
		}
	}
}

/* "=XX" and literal octets of in[0..len), no line breaks inside. */
static void
qp_line(const char *in, size_t len, struct buf *out)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '=')
			continue;
		int hi = i + 1 < len ? hex_digit((unsigned char)in[i + 1]) : -1;
		int lo = i + 2 < len ? hex_digit((unsigned char)in[i + 2]) : -1;
		if (hi < 0 || lo < 0)
			continue; /* malformed: kept as it is */
		buf_append(out, in + start, i - start);
		unsigned char byte = (unsigned char)(hi << 4 | lo);
		buf_append(out, &byte, 1);
		i += 2;
		start = i + 1;
	}
	buf_append(out, in + start, len - start);
}

void
mime_decode_qp(const char *in, size_t len, struct buf *out)
{
	size_t p = 0;
	while (p < len) {
		const char *lf = memchr(in + p, '\n', len - p);
		size_t e = lf != NULL ? (size_t)(lf - in) : len;
		size_t le = e;
		if (lf != NULL && le > p && in[le - 1] == '\r')
			le--;
		while (le > p && (in[le - 1] == ' ' || in[le - 1] == '\t'))
			le--;
		int soft = le > p && in[le - 1] == '=';
		if (soft)
			le--;
		qp_line(in + p, le - p, out);
		if (lf != NULL && !soft)
			buf_append(out, "\r\n", 2);
		p = lf != NULL ? e + 1 : len;
	}
}

/* -- UTF-8 and charsets --------------------------------------------------------- */

/* Appends s[0..len), each octet that does not start a valid UTF-8 sequence
 * replaced by U+FFFD. */
static void
utf8_append(struct buf *out, const unsigned char *s, size_t len)
{
	size_t i = 0, start = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		i += n + 1;
		continue;
	bad:
		buf_append(out, s + start, i - start);
		buf_append(out, replacement, 3);
		i++;
		start = i;
	}
	buf_append(out, s + start, len - start);
}

static int
is_utf8_name(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 ||
	       strcasecmp(cs, "ascii") == 0;
}

/* Only plain charset names reach iconv_open() (no "//TRANSLIT" tricks). */
static int
name_ok(const char *cs)
{
	size_t n = strlen(cs);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cs[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("-_.:+", c) != NULL))
			return 0;
	}
	return 1;
}

static int
charset_known(const char *cs)
{
	if (is_utf8_name(cs))
		return 1;
	if (!name_ok(cs))
		return 0;
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}

int
mime_decode_charset(const char *charset, const char *in, size_t len,
		    struct buf *out)
{
	if (is_utf8_name(charset)) {
		utf8_append(out, (const unsigned char *)in, len);
		return 0;
	}
	if (!name_ok(charset))
		return -1;
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return -1;

	char *ip = (char *)(uintptr_t)in;
	size_t il = len;
	while (il > 0) {
		size_t room = il < 1024 ? il * 4 + 16 : 4096;
		char *op = buf_reserve(out, room), *o0 = op;
		size_t ol = room;
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		buf_commit(out, (size_t)(op - o0));
		if (r != (size_t)-1)
			continue;
		if (errno == E2BIG)
			continue;
		buf_append(out, replacement, 3);
		if (errno != EILSEQ)
			break; /* EINVAL: incomplete sequence at the end */
		ip++;
		il--;
	}
	char *op = buf_reserve(out, 64), *o0 = op;
	size_t ol = 64;
	(void)iconv(cd, NULL, NULL, &op, &ol);
	buf_commit(out, (size_t)(op - o0));
	iconv_close(cd);
	return 0;
}

/* -- RFC 2047 ------------------------------------------------------------------- */

struct eword {
	char charset[65];
	char enc;
	const char *text;
	size_t tlen;
	size_t end; /* after "?=" */
};

/* A run [from, to) of encoded-text octets known to hold no "?=": a word
 * whose text starts inside it cannot end, which keeps adversarial input
 * ("=?a?Q?x=?a?Q?x...") linear. */
struct dead {
	size_t from, to;
};

/* "=?charset?E?text?=" at in[i]; the charset's RFC 2231 *language dropped. */
static int
eword_parse(const char *in, size_t len, size_t i, struct eword *w,
	    struct dead *dead)
{
	if (len - i < 8 || in[i] != '=' || in[i + 1] != '?')
		return 0;
	size_t p = i + 2, cs = p;
	while (p < len && in[p] != '?') {
		unsigned char c = (unsigned char)in[p];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
		p++;
	}
	size_t cslen = p - cs;
	if (cslen == 0 || p + 3 >= len)
		return 0;
	char enc = in[p + 1];
	if ((enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q') ||
	    in[p + 2] != '?')
		return 0;
	size_t t = p + 3, q = t;
	if (t >= dead->from && t < dead->to)
		return 0;
	while (q + 1 < len && !(in[q] == '?' && in[q + 1] == '=')) {
		unsigned char c = (unsigned char)in[q];
		if (c <= 0x20 || c >= 0x7f)
			break;
		q++;
	}
	if (q + 1 >= len || in[q] != '?' || in[q + 1] != '=') {
		dead->from = t;
		dead->to = q;
		return 0;
	}
	const char *star = memchr(in + cs, '*', cslen);
	if (star != NULL)
		cslen = (size_t)(star - (in + cs));
	if (cslen == 0 || cslen >= sizeof(w->charset))
		return 0;
	memcpy(w->charset, in + cs, cslen);
	w->charset[cslen] = '\0';
	w->enc = (char)(enc == 'b' ? 'B' : enc == 'q' ? 'Q' : enc);
	w->text = in + t;
	w->tlen = q - t;
	w->end = q + 2;
	return 1;
}

static void
eword_decode(const struct eword *w, struct buf *out)
{
	if (w->enc == 'B') {
		mime_decode_base64(w->text, w->tlen, out);
		return;
	}
	for (size_t i = 0; i < w->tlen; i++) {
		char c = w->text[i];
		if (c == '_') {
			buf_append(out, " ", 1);
		} else if (c == '=' && i + 2 < w->tlen &&
			   hex_digit((unsigned char)w->text[i + 1]) >= 0 &&
			   hex_digit((unsigned char)w->text[i + 2]) >= 0) {
			const unsigned char *h =
				(const unsigned char *)w->text + i + 1;
			unsigned char b =
				(unsigned char)(hex_digit(h[0]) << 4 |
						hex_digit(h[1]));
			buf_append(out, &b, 1);
			i += 2;
		} else {
			buf_append(out, &c, 1);
		}
	}
}

struct hdec {
	struct buf *out;
	char pend_cs[65]; /* charset of the pending octets, "" if none */
	struct buf pend;
	char known_cs[65]; /* last charset tested, and the answer */
	int known;
	struct dead dead;
};

static int
hdec_known(struct hdec *h, const char *cs)
{
	if (strcasecmp(h->known_cs, cs) != 0) {
		memcpy(h->known_cs, cs, strlen(cs) + 1);
		h->known = charset_known(cs);
	}
	return h->known;
}

static void
hdec_flush(struct hdec *h)
{
	if (h->pend_cs[0] == '\0')
		return;
	const char *p = h->pend.data != NULL ? buf_ptr(&h->pend) : "";
	if (mime_decode_charset(h->pend_cs, p, buf_used(&h->pend), h->out) <
	    0)
		utf8_append(h->out, (const unsigned char *)p,
			    buf_used(&h->pend));
	buf_reset(&h->pend);
	h->pend_cs[0] = '\0';
}

static int
at_known_eword(struct hdec *h, const char *in, size_t len, size_t i,
	       struct eword *w)
{
	return i + 1 < len && in[i] == '=' && in[i + 1] == '?' &&
	       eword_parse(in, len, i, w, &h->dead) &&
	       hdec_known(h, w->charset);
}

void
mime_decode_header(const char *in, size_t len, struct buf *out)
{
	struct hdec h;
	struct buf empty = BUF_INIT;
	struct eword w;
	memset(&h, 0, sizeof(h));
	h.out = out;
	h.pend = empty;

	size_t i = 0;
	while (i < len) {
		if (at_known_eword(&h, in, len, i, &w)) {
			if (h.pend_cs[0] != '\0' &&
			    strcasecmp(h.pend_cs, w.charset) != 0)
				hdec_flush(&h);
			if (h.pend_cs[0] == '\0')
				memcpy(h.pend_cs, w.charset,
				       strlen(w.charset) + 1);
			eword_decode(&w, &h.pend);
			i = w.end;
			/* white space between two encoded-words goes */
			size_t j = i;
			while (j < len && (in[j] == ' ' || in[j] == '\t' ||
					   in[j] == '\r' || in[j] == '\n'))
				j++;
			if (j > i && at_known_eword(&h, in, len, j, &w))
				i = j;
			continue;
		}
		hdec_flush(&h);
		if (in[i] == '\r' || in[i] == '\n') {
			i++; /* unfolding */
			continue;
		}
		size_t k = i + 1;
		while (k < len && in[k] != '=' && in[k] != '\r' && in[k] != '\n')
			k++;
		utf8_append(out, (const unsigned char *)in + i, k - i);
		i = k;
	}
	hdec_flush(&h);
	buf_free(&h.pend);
}

/* -- RFC 2231 ------------------------------------------------------------------- */

int
mime_decode_param(const char *value, size_t len, struct buf *out)
{
	const char *q1 = memchr(value, '\'', len);
	if (q1 == NULL)
		return -1;
	const char *q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - value));
	if (q2 == NULL)
		return -1;
	char cs[65];
	size_t cslen = (size_t)(q1 - value);
	if (cslen >= sizeof(cs))
		return -1;
	memcpy(cs, value, cslen);
	cs[cslen] = '\0';
	if (cslen == 0)
		memcpy(cs, "us-ascii", 9);

	struct buf tmp = BUF_INIT;
	const char *p = q2 + 1, *end = value + len;
	for (; p < end; p++) {
		int hi, lo;
		if (*p == '%' && end - p >= 3 &&
		    (hi = hex_digit((unsigned char)p[1])) >= 0 &&
		    (lo = hex_digit((unsigned char)p[2])) >= 0) {
			unsigned char b = (unsigned char)(hi << 4 | lo);
			buf_append(&tmp, &b, 1);
			p += 2;
		} else {
			buf_append(&tmp, p, 1);
		}
	}
	int ret = mime_decode_charset(cs, tmp.data != NULL ? buf_ptr(&tmp) : "",
				      buf_used(&tmp), out);
	buf_free(&tmp);
	return ret;
}
