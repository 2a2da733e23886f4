/* mime_section.c - BODY[section] and BINARY[part] contents.
 *
 * Part numbers follow RFC 3501 6.4.5: the parts of a multipart are 1, 2,
 * ...; a part that is not multipart has only part 1, itself (so part 1 of a
 * one-part message is its body); the parts of a message/rfc822 part are
 * those of the message it holds.  HEADER, TEXT and HEADER.FIELDS apply to
 * the message itself or to a message/rfc822 part, MIME to any part.
 */
#include "backend/mime/mime_private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Part numbers beyond this many cannot name an existing part (the tree is
 * at most MIME_MAX_DEPTH deep and a message/rfc822 level adds one number). */
#define SECTION_MAX_PATH (2 * MIME_MAX_DEPTH + 2)

enum sec_text {
	SEC_BODY, /* no section-text: the body (or the whole message) */
	SEC_HEADER,
	SEC_TEXT,
	SEC_MIME,
	SEC_FIELDS,
	SEC_FIELDS_NOT,
	SEC_TEXT_COUNT
};

struct mime_spec {
	uint32_t path[SECTION_MAX_PATH];
	unsigned int npath;
	int too_long; /* more numbers than any part can have */
	enum sec_text text;
	struct mstr *names; /* HEADER.FIELDS list */
	unsigned int nnames;
};

struct builder {
	struct arena *a;
	const char *msg;
	size_t msg_len;
	struct mime_section *sec;
	unsigned int cap;
	unsigned opts; /* MIME_SEC_CRLF */
};

static int
in_msg(const struct builder *b, const char *p, size_t len)
{
	uintptr_t m = (uintptr_t)b->msg, q = (uintptr_t)p;
	return q >= m && q - m <= b->msg_len && len <= b->msg_len - (q - m);
}

/* -- chunks ---------------------------------------------------------------- */

static void
chunk(struct builder *b, const char *p, size_t len)
{
	struct mime_section *s = b->sec;
	if (len == 0)
		return;
	if (s->nchunks > 0) {
		struct mime_chunk *last = &s->chunks[s->nchunks - 1];
		if (in_msg(b, last->data, last->len) && in_msg(b, p, len) &&
		    (uintptr_t)last->data + last->len == (uintptr_t)p) {
			/* contiguous in the message */
			last->len += len;
			s->size += len;
			return;
		}
	}
	if (s->nchunks == b->cap) {
		unsigned int ncap = b->cap ? b->cap * 2 : 8;
		struct mime_chunk *v = arena_alloc(b->a, ncap * sizeof(*v));
		if (s->nchunks > 0)
			memcpy(v, s->chunks, s->nchunks * sizeof(*v));
		s->chunks = v;
		b->cap = ncap;
	}
	s->chunks[s->nchunks].data = p;
	s->chunks[s->nchunks].len = len;
	s->nchunks++;
	s->size += len;
}

/* Message octets [off, off + len), bare LFs sent as CRLF. */
static void
range(struct builder *b, size_t off, size_t len)
{
	if (len == 0)
		return;
	const char *p = b->msg + off;
	if (b->opts & MIME_SEC_CRLF) {
		chunk(b, p, len);
		return;
	}
	size_t bare = 0;
	const char *q = memchr(p, '\n', len);
	while (q != NULL) {
		if (q == p || q[-1] != '\r')
			bare++;
		q++;
		q = memchr(q, '\n', len - (size_t)(q - p));
	}
	if (bare == 0) {
		chunk(b, p, len);
		return;
	}
	char *out = arena_alloc(b->a, len + bare);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = p[i];
	}
	chunk(b, out, o);
}

static void
crlf(struct builder *b)
{
	static const char nl[] = "\r\n";
	chunk(b, nl, 2);
}

/* -- section specs ------------------------------------------------------------ */

static int
kw(const char **p, const char *end, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(end - *p) < n || strncasecmp(*p, word, n) != 0)
		return 0;
	*p += n;
	return 1;
}

/* Field names compare case-insensitively, shorter first on a tie. */
static inline int
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
ci_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++) {
		int ca = ascii_lower((unsigned char)a[i]);
		int cb = ascii_lower((unsigned char)b[i]);
		if (ca != cb)
			return ca - cb;
	}
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int
name_cmp(const void *x, const void *y)
{
	const struct mstr *a = x, *b = y;
	return ci_cmp(a->p, a->len, b->p, b->len);
}

/* Is [name, name + len) in the sorted list? */
static int
name_listed(const struct mime_spec *sp, const char *name, size_t len)
{
	size_t lo = 0, hi = sp->nnames;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = ci_cmp(name, len, sp->names[mid].p,
			       sp->names[mid].len);
		if (d == 0)
			return 1;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/* " (A B ...)" up to the end of the spec. */
static int
parse_list(struct arena *a, const char *p, const char *end,
	   struct mime_spec *sp)
{
	if (p >= end || *p != ' ')
		return -1;
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '(' || end[-1] != ')')
		return -1;
	p++;
	end--;
	/* at most one name per two octets of the list, and all names fit
	   in one copy of it */
	size_t max = (size_t)(end - p) / 2 + 1;
	sp->names = arena_alloc(a, max * sizeof(*sp->names));
	sp->nnames = 0;
	char *store = arena_alloc(a, (size_t)(end - p) + 1);
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		char *name = store;
		size_t n = 0;
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				name[n++] = *p;
			}
			if (p >= end)
				return -1;
			p++;
		} else {
			while (p < end && *p != ' ' && *p != '(' &&
			       *p != ')' && *p != '"' && *p != '{' &&
			       (unsigned char)*p > 0x20 &&
			       (unsigned char)*p < 0x7f)
				name[n++] = *p++;
			if (n == 0)
				return -1;
		}
		if (p < end && *p != ' ')
			return -1;
		store += n;
		if (sp->nnames < max) {
			sp->names[sp->nnames].p = name;
			sp->names[sp->nnames].len = n;
			sp->nnames++;
		}
	}
	if (sp->nnames == 0)
		return -1;
	qsort(sp->names, sp->nnames, sizeof(*sp->names), name_cmp);
	return 0;
}

/* Part numbers: nz-number *("." nz-number), leaving *pp after them (and
 * after the dot before a section-text). */
static int
parse_path(const char **pp, const char *end, struct mime_spec *sp)
{
	const char *p = *pp;
	while (p < end && *p >= '0' && *p <= '9') {
		if (*p == '0')
			return -1; /* nz-number */
		uint32_t n = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			uint32_t d = (uint32_t)(*p - '0');
			n = n > (UINT32_MAX - d) / 10 ? UINT32_MAX : n * 10 + d;
			p++;
		}
		if (sp->npath < SECTION_MAX_PATH)
			sp->path[sp->npath++] = n;
		else
			sp->too_long = 1;
		if (p == end)
			break;
		if (*p != '.' || p + 1 == end)
			return -1;
		p++;
		if (*p < '0' || *p > '9')
			break;
	}
	*pp = p;
	return 0;
}

static int
parse_spec(struct arena *a, const char *spec, size_t len, struct mime_spec *sp)
{
	const char *p = spec, *end = spec + len;
	memset(sp, 0, sizeof(*sp));
	if (parse_path(&p, end, sp) < 0)
		return -1;
	sp->text = SEC_BODY;
	if (p == end)
		return 0;
	if (kw(&p, end, "HEADER.FIELDS.NOT")) {
		sp->text = SEC_FIELDS_NOT;
		return parse_list(a, p, end, sp);
	}
	if (kw(&p, end, "HEADER.FIELDS")) {
		sp->text = SEC_FIELDS;
		return parse_list(a, p, end, sp);
	}
	if (kw(&p, end, "HEADER"))
		sp->text = SEC_HEADER;
	else if (kw(&p, end, "TEXT"))
		sp->text = SEC_TEXT;
	else if (sp->npath > 0 && kw(&p, end, "MIME"))
		sp->text = SEC_MIME;
	else
		return -1;
	return p == end ? 0 : -1;
}

/* The part a path names, or MIME_NONE. */
static uint32_t
find_part(const struct mime_msg *m, const struct mime_spec *sp)
{
	uint32_t part = 0;
	if (sp->too_long)
		return MIME_NONE;
	for (unsigned int k = 0; k < sp->npath; k++) {
		uint32_t n = sp->path[k];
		if (mime_pw(m, part, P_FLAGS) & MIME_PART_MULTIPART) {
			uint32_t c = mime_pw(m, part, P_CHILD);
			while (c != MIME_NONE && n > 1) {
				c = mime_pw(m, c, P_NEXT);
				n--;
			}
			part = c;
		} else if (n != 1) {
			part = MIME_NONE;
		}
		if (part == MIME_NONE)
			return MIME_NONE;
		/* more numbers: they count inside the encapsulated message */
		if (k + 1 < sp->npath &&
		    (mime_pw(m, part, P_FLAGS) & MIME_PART_MESSAGE))
			part = mime_pw(m, part, P_CHILD);
	}
	return part;
}

/* Header fields of part's header, those named in the list (or not). */
static void
fields(struct builder *b, const struct mime_msg *m, uint32_t part,
       const struct mime_spec *sp, int want)
{
	const char *msg = b->msg;
	size_t at = mime_pw(m, part, P_HDR_OFF);
	size_t end = mime_pw(m, part, P_BODY_OFF);

	while (at < end) {
		if (msg[at] == '\n' ||
		    (msg[at] == '\r' && at + 1 < end && msg[at + 1] == '\n'))
			break; /* the blank line */
		size_t fstart = at, nend = SIZE_MAX;
		for (;;) {
			const char *lf = memchr(msg + at, '\n', end - at);
			size_t e = lf != NULL ? (size_t)(lf - msg) : end;
			if (nend == SIZE_MAX) {
				const char *colon =
					memchr(msg + at, ':', e - at);
				if (colon != NULL) {
					nend = (size_t)(colon - msg);
					while (nend > fstart &&
					       (msg[nend - 1] == ' ' ||
						msg[nend - 1] == '\t'))
						nend--;
				} else {
					nend = e > at && msg[e - 1] == '\r' ?
						       e - 1 :
						       e;
				}
			}
			at = lf != NULL ? e + 1 : end;
			if (at >= end || (msg[at] != ' ' && msg[at] != '\t'))
				break;
		}
		if (name_listed(sp, msg + fstart, nend - fstart) == want) {
			range(b, fstart, at - fstart);
			if (msg[at - 1] != '\n')
				crlf(b);
		}
	}
	crlf(b);
}

int
mime_spec_parse(struct arena *a, const char *spec, size_t spec_len,
		struct mime_spec **spec_r, const char **error_r)
{
	struct mime_spec *sp = arena_alloc(a, sizeof(*sp));
	if (parse_spec(a, spec, spec_len, sp) < 0) {
		*error_r = "Invalid BODY[<section>]";
		return MIME_ERR_SYNTAX;
	}
	*spec_r = sp;
	return MIME_OK;
}

int
mime_section_fetch(const struct mime_msg *m, const char *msg,
		   size_t msg_len, const char *spec, size_t spec_len,
		   struct arena *a, struct mime_section *sec_r,
		   const char **error_r)
{
	struct mime_spec *sp;
	memset(sec_r, 0, sizeof(*sec_r));
	if (msg_len != m->msg_size) {
		*error_r = "message does not match its MIME structure";
		return MIME_ERR_MESSAGE;
	}
	int rc = mime_spec_parse(a, spec, spec_len, &sp, error_r);
	if (rc != MIME_OK)
		return rc;
	return mime_section_fetch_parsed(m, msg, msg_len, sp, 0, a, sec_r,
					 error_r);
}

int
mime_spec_whole(const struct mime_spec *spec)
{
	return spec->npath == 0 && spec->text == SEC_BODY;
}

void
mime_section_whole(const char *msg, size_t msg_len, unsigned opts,
		   struct arena *a, struct mime_section *sec_r)
{
	struct builder b = {a, msg, msg_len, sec_r, 0, opts};
	memset(sec_r, 0, sizeof(*sec_r));
	range(&b, 0, msg_len);
}

int
mime_section_fetch_parsed(const struct mime_msg *m, const char *msg,
			  size_t msg_len, const struct mime_spec *spec,
			  unsigned opts, struct arena *a,
			  struct mime_section *sec_r, const char **error_r)
{
	const struct mime_spec *sp = spec;
	struct builder b = {a, msg, msg_len, sec_r, 0, opts};

	memset(sec_r, 0, sizeof(*sec_r));
	if (msg_len != m->msg_size) {
		*error_r = "message does not match its MIME structure";
		return MIME_ERR_MESSAGE;
	}
	if (sp->npath == 0 && sp->text == SEC_BODY) {
		range(&b, 0, msg_len);
		return MIME_OK;
	}
	uint32_t part = find_part(m, sp);
	if (part == MIME_NONE)
		return MIME_OK; /* no such part: empty */

	if (sp->npath == 0) {
		/* HEADER, TEXT, HEADER.FIELDS of the message itself */
	} else if (sp->text == SEC_BODY) {
		uint32_t off = mime_pw(m, part, P_BODY_OFF);
		range(&b, off, mime_pw(m, part, P_END) - off);
		return MIME_OK;
	} else if (sp->text == SEC_MIME) {
		uint32_t off = mime_pw(m, part, P_HDR_OFF);
		range(&b, off, mime_pw(m, part, P_BODY_OFF) - off);
		return MIME_OK;
	} else if (mime_pw(m, part, P_FLAGS) & MIME_PART_MESSAGE) {
		part = mime_pw(m, part, P_CHILD);
	} else {
		return MIME_OK; /* HEADER/TEXT of a non-message part */
	}

	switch (sp->text) {
	case SEC_HEADER: {
		uint32_t off = mime_pw(m, part, P_HDR_OFF);
		range(&b, off, mime_pw(m, part, P_BODY_OFF) - off);
		break;
	}
	case SEC_TEXT: {
		uint32_t off = mime_pw(m, part, P_BODY_OFF);
		range(&b, off, mime_pw(m, part, P_END) - off);
		break;
	}
	case SEC_FIELDS:
		fields(&b, m, part, sp, 1);
		break;
	case SEC_FIELDS_NOT:
		fields(&b, m, part, sp, 0);
		break;
	case SEC_BODY:
	case SEC_MIME:
	case SEC_TEXT_COUNT:
		break;
	}
	return MIME_OK;
}

/* -- BINARY ----------------------------------------------------------------- */

enum cte_kind { CTE_IDENTITY, CTE_BASE64, CTE_QP, CTE_UNKNOWN };

static enum cte_kind
cte_kind(const struct mime_msg *m, uint32_t part)
{
	size_t len;
	const char *cte = mime_str(m, mime_pw(m, part, P_CTE), &len);
	if (cte == NULL || strcasecmp(cte, "7bit") == 0 ||
	    strcasecmp(cte, "8bit") == 0 || strcasecmp(cte, "binary") == 0)
		return CTE_IDENTITY;
	if (strcasecmp(cte, "base64") == 0)
		return CTE_BASE64;
	if (strcasecmp(cte, "quoted-printable") == 0)
		return CTE_QP;
	return CTE_UNKNOWN;
}

int
mime_section_binary(const struct mime_msg *m, const char *msg,
		    size_t msg_len, const char *part_spec, size_t part_len,
		    struct arena *a, struct mime_section *sec_r,
		    const char **error_r)
{
	struct mime_spec sp;
	struct builder b = {a, msg, msg_len, sec_r, 0, 0};
	const char *p = part_spec, *end = part_spec + part_len;

	memset(sec_r, 0, sizeof(*sec_r));
	if (msg_len != m->msg_size) {
		*error_r = "message does not match its MIME structure";
		return MIME_ERR_MESSAGE;
	}
	memset(&sp, 0, sizeof(sp));
	if (parse_path(&p, end, &sp) < 0 || p != end) {
		*error_r = "Invalid BINARY[<part>]";
		return MIME_ERR_SYNTAX;
	}
	if (sp.npath == 0) {
		range(&b, 0, msg_len);
		return MIME_OK;
	}
	uint32_t part = find_part(m, &sp);
	if (part == MIME_NONE)
		return MIME_OK;

	uint32_t off = mime_pw(m, part, P_BODY_OFF);
	uint32_t len = mime_pw(m, part, P_END) - off;
	enum cte_kind kind = cte_kind(m, part);
	switch (kind) {
	case CTE_IDENTITY:
		range(&b, off, len);
		return MIME_OK;
	case CTE_BASE64:
	case CTE_QP: {
		struct buf tmp = BUF_INIT;
		if (kind == CTE_BASE64)
			mime_decode_base64(msg + off, len, &tmp);
		else
			mime_decode_qp(msg + off, len, &tmp);
		size_t n = buf_used(&tmp);
		if (n > 0) {
			char *copy = arena_alloc(a, n);
			memcpy(copy, buf_ptr(&tmp), n);
			chunk(&b, copy, n);
		}
		buf_free(&tmp);
		return MIME_OK;
	}
	case CTE_UNKNOWN:
		break;
	}
	*error_r = "Unknown Content-Transfer-Encoding";
	return MIME_ERR_UNKNOWN_CTE;
}

void
mime_section_copy(const struct mime_section *sec, uint64_t off,
		  uint64_t count, struct buf *out)
{
	for (unsigned int i = 0; i < sec->nchunks && count > 0; i++) {
		const struct mime_chunk *c = &sec->chunks[i];
		if (off >= c->len) {
			off -= c->len;
			continue;
		}
		uint64_t n = c->len - off;
		if (n > count)
			n = count;
		buf_append(out, c->data + off, (size_t)n);
		count -= n;
		off = 0;
	}
}
