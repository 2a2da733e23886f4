/* mime_rfc822.c - RFC 5322 / RFC 2045 / RFC 2231 header value parsing.
 *
 * The tokenizer functions return -1 for an error, 0 at the end of the
 * input and 1 when more input follows, like Dovecot's rfc822-parser, whose
 * behaviour on broken input the address and parameter parsers reproduce so
 * that ENVELOPE and BODYSTRUCTURE come out the same.
 */
#include "backend/mime/mime_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char mime_empty[] = "";

struct rp {
	const unsigned char *p, *end;
	struct buf *comment; /* receives the last comment, or NULL */
};

static const char *
bdata(const struct buf *b)
{
	return b->data != NULL ? b->data + b->off : mime_empty;
}

static struct mstr
rstr(struct mime_rfc822 *r, const char *p, size_t len)
{
	struct mstr s;
	s.p = len == 0 ? mime_empty : arena_strndup(r->a, p, len);
	s.len = len;
	return s;
}

static struct mstr
rbuf(struct mime_rfc822 *r, const struct buf *b)
{
	return rstr(r, bdata(b), buf_used(b));
}

static struct mstr
rconst(const char *s)
{
	struct mstr m = { s, strlen(s) };
	return m;
}

static void
rp_init(struct rp *rp, const char *v, size_t len, struct buf *comment)
{
	rp->p = (const unsigned char *)v;
	rp->end = rp->p + len;
	rp->comment = comment;
}

static int
rp_more(const struct rp *rp)
{
	return rp->p < rp->end ? 1 : 0;
}

/* Current byte, or -1 at the end. */
static int
rp_c(const struct rp *rp)
{
	return rp->p < rp->end ? *rp->p : -1;
}

/* atext of RFC 5322, 8-bit bytes included. */
static int
is_atext(int c)
{
	if (c < 0)
		return 0;
	if (c >= 0x80)
		return 1;
	if (c <= 0x20 || c == 0x7f)
		return 0;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* MIME token characters (atext without / = ?, with '.'). */
static int
is_token(int c)
{
	if (c == '.')
		return 1;
	return is_atext(c) && c != '/' && c != '=' && c != '?';
}

static void
app(struct buf *b, const unsigned char *from, const unsigned char *to)
{
	buf_append(b, from, (size_t)(to - from));
}

static int
rp_skip_comment(struct rp *rp)
{
	int level = 1;
	if (rp->comment != NULL)
		buf_reset(rp->comment);
	const unsigned char *start = ++rp->p;
	for (; rp->p < rp->end; rp->p++) {
		switch (*rp->p) {
		case '(':
			level++;
			break;
		case ')':
			if (--level == 0) {
				if (rp->comment != NULL)
					app(rp->comment, start, rp->p);
				rp->p++;
				return rp_more(rp);
			}
			break;
		case '\\':
			if (rp->comment != NULL)
				app(rp->comment, start, rp->p);
			start = rp->p + 1;
			rp->p++;
			if (rp->p >= rp->end)
				return -1;
			break;
		default:
			break;
		}
	}
	return -1; /* missing ')' */
}

static int
rp_skip_lwsp(struct rp *rp)
{
	while (rp->p < rp->end) {
		unsigned char c = *rp->p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			rp->p++;
			continue;
		}
		if (c != '(')
			break;
		if (rp_skip_comment(rp) < 0)
			return -1;
	}
	return rp_more(rp);
}

static int
rp_atom(struct rp *rp, struct buf *out)
{
	if (!is_atext(rp_c(rp)))
		return -1;
	const unsigned char *start = rp->p++;
	while (rp->p < rp->end && is_atext(*rp->p))
		rp->p++;
	app(out, start, rp->p);
	return rp->p < rp->end ? rp_skip_lwsp(rp) : 0;
}

static int
rp_dot_atom(struct rp *rp, struct buf *out)
{
	int ret;
	if (!is_atext(rp_c(rp)))
		return -1;
	const unsigned char *start = rp->p++;
	while (rp->p < rp->end) {
		if (is_atext(*rp->p)) {
			rp->p++;
			continue;
		}
		app(out, start, rp->p);
		if ((ret = rp_skip_lwsp(rp)) <= 0)
			return ret;
		if (*rp->p != '.')
			return 1;
		rp->p++;
		buf_append(out, ".", 1);
		if ((ret = rp_skip_lwsp(rp)) <= 0)
			return ret;
		start = rp->p;
	}
	app(out, start, rp->p);
	return 0;
}

static int
rp_token(struct rp *rp, struct buf *out)
{
	const unsigned char *start = rp->p;
	while (rp->p < rp->end && is_token(*rp->p))
		rp->p++;
	app(out, start, rp->p);
	return rp->p < rp->end ? rp_skip_lwsp(rp) : 0;
}

/* At '"': the unescaped content, folding (CR)LF removed. */
static int
rp_quoted(struct rp *rp, struct buf *out)
{
	const unsigned char *start = ++rp->p;
	for (; rp->p < rp->end; rp->p++) {
		switch (*rp->p) {
		case '"':
			app(out, start, rp->p);
			rp->p++;
			return rp_skip_lwsp(rp);
		case '\n': {
			const unsigned char *e = rp->p;
			if (e > start && e[-1] == '\r')
				e--;
			app(out, start, e);
			start = rp->p + 1;
			break;
		}
		case '\\':
			rp->p++;
			if (rp->p >= rp->end)
				return -1;
			app(out, start, rp->p - 1);
			start = rp->p;
			break;
		default:
			break;
		}
	}
	return -1; /* missing '"' */
}

static int
rp_atom_or_dot(struct rp *rp, struct buf *out)
{
	const unsigned char *start = rp->p;
	while (rp->p < rp->end && (is_atext(*rp->p) || *rp->p == '.'))
		rp->p++;
	app(out, start, rp->p);
	return rp->p < rp->end ? rp_skip_lwsp(rp) : 0;
}

/* phrase = 1*word / obs-phrase; words joined with one space. */
static int
rp_phrase(struct rp *rp, struct buf *out)
{
	int ret;
	if (rp->p >= rp->end)
		return 0;
	if (*rp->p == '.')
		return -1;
	for (;;) {
		if (*rp->p == '"')
			ret = rp_quoted(rp, out);
		else
			ret = rp_atom_or_dot(rp, out);
		if (ret <= 0)
			return ret;
		int c = *rp->p;
		if (!is_atext(c) && c != '"' && c != '.')
			break;
		buf_append(out, " ", 1);
	}
	return rp_skip_lwsp(rp);
}

/* At '[': the literal, brackets and escapes kept. */
static int
rp_domain_literal(struct rp *rp, struct buf *out)
{
	const unsigned char *start = rp->p;
	for (; rp->p < rp->end; rp->p++) {
		if (*rp->p == '\\') {
			rp->p++;
			if (rp->p >= rp->end)
				break;
		} else if (*rp->p == ']') {
			rp->p++;
			app(out, start, rp->p);
			return rp_skip_lwsp(rp);
		}
	}
	return -1;
}

/* At '@'. */
static int
rp_domain(struct rp *rp, struct buf *out)
{
	rp->p++;
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	if (*rp->p == '[')
		return rp_domain_literal(rp, out);
	return rp_dot_atom(rp, out);
}

/* "type/subtype" into out. */
static int
rp_content_type(struct rp *rp, struct buf *out)
{
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	if (rp_token(rp, out) <= 0)
		return -1;
	if (*rp->p != '/')
		return -1;
	rp->p++;
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	buf_append(out, "/", 1);
	return rp_token(rp, out);
}

/* One "; key=value": 1, 0 at the end, -1 broken. */
static int
rp_param(struct rp *rp, struct buf *key, struct buf *val)
{
	int ret;
	buf_reset(key);
	buf_reset(val);
	if (rp->p >= rp->end)
		return 0;
	if (*rp->p != ';')
		return -1;
	rp->p++;
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	if (rp_token(rp, key) <= 0)
		return -1;
	if (*rp->p != '=')
		return -1;
	rp->p++;
	if ((ret = rp_skip_lwsp(rp)) <= 0) {
		/* no value */
	} else if (*rp->p == '"') {
		ret = rp_quoted(rp, val);
	} else if (*rp->p == '=') {
		/* broken input like name==?utf-8?b?...?= */
		while (rp->p < rp->end && *rp->p != ';' && *rp->p != ' ' &&
		       *rp->p != '\t' && *rp->p != '\r' && *rp->p != '\n')
			buf_append(val, rp->p++, 1);
	} else {
		ret = rp_token(rp, val);
	}
	return ret < 0 ? -1 : 1;
}

/* -- parameters with RFC 2231 continuations -------------------------------- */

struct p2231 {
	struct mstr key, value;
	uint32_t idx, order;
	int extended;
};

/* Growable arrays in the arena; n is bounded by the input length. */
static void *
grow(struct arena *a, void *v, uint32_t n, uint32_t *cap, size_t elsize)
{
	if (n < *cap)
		return v;
	uint32_t ncap = *cap ? *cap * 2 : 8;
	void *nv = arena_alloc(a, (size_t)ncap * elsize);
	if (n > 0)
		memcpy(nv, v, (size_t)n * elsize);
	*cap = ncap;
	return nv;
}

static int
mstr_cmp(const struct mstr *a, const struct mstr *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int d = n > 0 ? memcmp(a->p, b->p, n) : 0;
	if (d != 0)
		return d;
	return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static int
mstr_casecmp(const struct mstr *a, const struct mstr *b)
{
	return a->len == b->len &&
	       (a->len == 0 || strncasecmp(a->p, b->p, a->len) == 0);
}

static int
p2231_cmp(const void *x, const void *y)
{
	const struct p2231 *a = x, *b = y;
	int d = mstr_cmp(&a->key, &b->key);
	if (d != 0)
		return d;
	if (a->idx != b->idx)
		return a->idx < b->idx ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static void
params_parse(struct mime_rfc822 *r, struct rp *rp, struct mkv **params_r,
	     uint32_t *n_r)
{
	struct mkv *res = NULL;
	struct p2231 *ext = NULL;
	uint32_t nres = 0, capres = 0, next = 0, capext = 0;
	int ret;

	while ((ret = rp_param(rp, &r->key, &r->val)) != 0) {
		if (ret < 0) {
			/* skip the junk and try again */
			if (rp->p >= rp->end)
				break;
			rp->p++;
			continue;
		}
		const char *k = bdata(&r->key);
		size_t klen = buf_used(&r->key);
		const char *star = memchr(k, '*', klen);
		if (star != NULL) {
			const char *q = star, *kend = k + klen;
			uint32_t idx = 0;
			int extended = 0;
			if (q + 1 < kend) {
				q++;
				while (q < kend && *q >= '0' && *q <= '9') {
					if (idx < 100000000)
						idx = idx * 10 + (uint32_t)(*q - '0');
					q++;
				}
			}
			if (q < kend && *q == '*') {
				extended = 1;
				q++;
			}
			if (q == kend) {
				ext = grow(r->a, ext, next, &capext,
					   sizeof(*ext));
				ext[next].key = rstr(r, k, (size_t)(star - k));
				ext[next].value = rbuf(r, &r->val);
				ext[next].idx = idx;
				ext[next].order = next;
				ext[next].extended = extended;
				next++;
				continue;
			}
		}
		res = grow(r->a, res, nres, &capres, sizeof(*res));
		res[nres].name = rbuf(r, &r->key);
		res[nres].value = rbuf(r, &r->val);
		nres++;
	}

	if (next > 0)
		qsort(ext, next, sizeof(*ext), p2231_cmp);
	for (uint32_t i = 0, j; i < next; i = j) {
		int ok = 1, have_ext = 0;
		uint32_t want = 0;
		for (j = i; j < next; j++) {
			if (!mstr_casecmp(&ext[i].key, &ext[j].key))
				break;
			if (ext[j].idx != want)
				ok = 0;
			if (ext[j].extended)
				have_ext = 1;
			want++;
		}
		if (!ok) {
			/* indexes missing: not RFC 2231 after all */
			for (uint32_t k = i; k < j; k++) {
				char *key = arena_printf(
					r->a, ext[k].extended ? "%.*s*%u*" :
								"%.*s*%u",
					(int)ext[k].key.len, ext[k].key.p,
					ext[k].idx);
				res = grow(r->a, res, nres, &capres,
					   sizeof(*res));
				res[nres].name.p = key;
				res[nres].name.len = strlen(key);
				res[nres].value = ext[k].value;
				nres++;
			}
			continue;
		}
		buf_reset(&r->tmp);
		if (!ext[i].extended && have_ext)
			buf_append(&r->tmp, "''", 2);
		for (uint32_t k = i; k < j; k++) {
			const struct mstr *v = &ext[k].value;
			if (ext[k].extended || !have_ext) {
				buf_append(&r->tmp, v->p, v->len);
				continue;
			}
			for (size_t n = 0; n < v->len; n++) {
				if (v->p[n] == '%')
					buf_append(&r->tmp, "%25", 3);
				else
					buf_append(&r->tmp, v->p + n, 1);
			}
		}
		res = grow(r->a, res, nres, &capres, sizeof(*res));
		if (have_ext) {
			char *key = arena_printf(r->a, "%.*s*",
						 (int)ext[i].key.len,
						 ext[i].key.p);
			res[nres].name.p = key;
			res[nres].name.len = strlen(key);
		} else {
			res[nres].name = ext[i].key;
		}
		res[nres].value = rbuf(r, &r->tmp);
		nres++;
	}
	*params_r = res;
	*n_r = nres;
}

void
mime_rfc822_init(struct mime_rfc822 *r, struct arena *a)
{
	struct buf empty = BUF_INIT;
	r->a = a;
	r->tmp = r->key = r->val = r->comment = empty;
}

void
mime_rfc822_free(struct mime_rfc822 *r)
{
	buf_free(&r->tmp);
	buf_free(&r->key);
	buf_free(&r->val);
	buf_free(&r->comment);
}

int
mime_rfc822_content_type(struct mime_rfc822 *r, const char *v, size_t len,
			 struct mstr *type_r, struct mstr *subtype_r,
			 struct mkv **params_r, uint32_t *nparams_r)
{
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	*params_r = NULL;
	*nparams_r = 0;

	(void)rp_skip_lwsp(&rp);
	buf_reset(&r->tmp);
	int ret = rp_content_type(&rp, &r->tmp);
	const char *s = bdata(&r->tmp);
	size_t n = buf_used(&r->tmp);
	const char *slash = memchr(s, '/', n);
	if (slash != NULL) {
		*type_r = rstr(r, s, (size_t)(slash - s));
		*subtype_r = rstr(r, slash + 1, n - (size_t)(slash - s) - 1);
	} else {
		*type_r = rstr(r, s, n);
		*subtype_r = rstr(r, s, 0);
	}
	if (ret < 0)
		return slash != NULL ? -1 : -2;
	params_parse(r, &rp, params_r, nparams_r);
	return 0;
}

int
mime_rfc822_disposition(struct mime_rfc822 *r, const char *v, size_t len,
			struct mstr *disp_r, struct mkv **params_r,
			uint32_t *nparams_r)
{
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	*params_r = NULL;
	*nparams_r = 0;
	(void)rp_skip_lwsp(&rp);
	buf_reset(&r->tmp);
	if (rp_token(&rp, &r->tmp) < 0)
		return -1;
	*disp_r = rbuf(r, &r->tmp);
	params_parse(r, &rp, params_r, nparams_r);
	return 0;
}

int
mime_rfc822_cte(struct mime_rfc822 *r, const char *v, size_t len,
		struct mstr *cte_r)
{
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	(void)rp_skip_lwsp(&rp);
	buf_reset(&r->tmp);
	if (rp_token(&rp, &r->tmp) < 0 || rp_skip_lwsp(&rp) != 0 ||
	    buf_used(&r->tmp) == 0)
		return -1;
	*cte_r = rbuf(r, &r->tmp);
	return 0;
}

void
mime_rfc822_languages(struct mime_rfc822 *r, const char *v, size_t len,
		      struct mstr **langs_r, uint32_t *nlangs_r)
{
	struct rp rp;
	struct mstr *langs = NULL;
	uint32_t n = 0, cap = 0;

	rp_init(&rp, v, len, NULL);
	(void)rp_skip_lwsp(&rp);
	buf_reset(&r->tmp);
	while (rp_atom(&rp, &r->tmp) >= 0) {
		langs = grow(r->a, langs, n, &cap, sizeof(*langs));
		langs[n++] = rbuf(r, &r->tmp);
		buf_reset(&r->tmp);
		if (rp.p >= rp.end || *rp.p != ',')
			break;
		rp.p++;
		(void)rp_skip_lwsp(&rp);
	}
	*langs_r = langs;
	*nlangs_r = n;
}

/* -- address lists ---------------------------------------------------------- */

struct actx {
	struct mime_rfc822 *r;
	struct rp rp;
	struct maddr addr; /* being built */
	int invalid;       /* addr-spec found broken (Dovecot's
			      invalid_syntax, as far as it matters) */
	struct maddrs *out;
};

static void
a_add(struct actx *c)
{
	struct maddrs *o = c->out;
	if (o->n < MIME_MAX_ADDRESSES) {
		o->v = grow(c->r->a, o->v, o->n, &o->cap, sizeof(*o->v));
		o->v[o->n++] = c->addr;
	}
	memset(&c->addr, 0, sizeof(c->addr));
	c->invalid = 0;
}

static void
a_add_fixed(struct actx *c)
{
	if (c->addr.mailbox.p == NULL)
		c->addr.mailbox = rconst("MISSING_MAILBOX");
	if (c->addr.domain.p == NULL || c->addr.domain.len == 0)
		c->addr.domain = rconst("MISSING_DOMAIN");
	a_add(c);
}

static int
a_local_part(struct actx *c)
{
	int ret;
	struct buf *s = &c->r->tmp;
	buf_reset(s);
	if (rp_c(&c->rp) == '"')
		ret = rp_quoted(&c->rp, s);
	else
		ret = rp_dot_atom(&c->rp, s);
	if (ret < 0)
		return -1;
	c->addr.mailbox = rbuf(c->r, s);
	return ret;
}

static int
a_domain(struct actx *c)
{
	int ret;
	struct buf *s = &c->r->tmp;
	buf_reset(s);
	if ((ret = rp_domain(&c->rp, s)) < 0)
		return -1;
	c->addr.domain = rbuf(c->r, s);
	return ret;
}

/* obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain) */
static int
a_route(struct actx *c)
{
	int ret;
	struct buf *s = &c->r->tmp;
	buf_reset(s);
	for (;;) {
		if (c->rp.p >= c->rp.end)
			return 0;
		if (*c->rp.p != '@')
			break;
		if (buf_used(s) > 0)
			buf_append(s, ",", 1);
		buf_append(s, "@", 1);
		if ((ret = rp_domain(&c->rp, s)) <= 0)
			return ret;
		while (rp_skip_lwsp(&c->rp) > 0 && *c->rp.p == ',')
			c->rp.p++;
	}
	c->addr.route = rbuf(c->r, s);
	return 1;
}

/* "<" [ "@" route ":" ] local-part "@" domain ">" */
static int
a_angle(struct actx *c)
{
	c->rp.p++; /* '<' */
	if (rp_skip_lwsp(&c->rp) <= 0)
		return -1;
	if (*c->rp.p == '@') {
		if (a_route(c) > 0 && *c->rp.p == ':') {
			c->rp.p++;
		} else {
			c->addr.route = rconst("INVALID_ROUTE");
			if (c->rp.p >= c->rp.end)
				return -1;
		}
		if (rp_skip_lwsp(&c->rp) <= 0)
			return -1;
	}
	if (*c->rp.p != '>') {
		if (a_local_part(c) <= 0)
			return -1;
		if (*c->rp.p == '@' && a_domain(c) <= 0)
			return -1;
	}
	if (*c->rp.p != '>')
		return -1;
	c->rp.p++;
	return rp_skip_lwsp(&c->rp);
}

/* name-addr = [display-name] angle-addr */
static int
a_name_addr(struct actx *c)
{
	struct buf *s = &c->r->tmp;
	buf_reset(s);
	if (rp_phrase(&c->rp, s) <= 0 || *c->rp.p != '<')
		return -1;
	if (buf_used(s) > 0)
		c->addr.name = rbuf(c->r, s);
	if (a_angle(c) < 0)
		c->addr.domain = rconst("SYNTAX_ERROR");
	return rp_more(&c->rp);
}

/* addr-spec = local-part "@" domain, with a trailing (comment) as name */
static int
a_addr_spec(struct actx *c)
{
	int ret, ret2 = -2;
	struct buf *s = &c->r->tmp;

	buf_reset(&c->r->comment);
	int quoted = rp_c(&c->rp) == '"';
	ret = a_local_part(c);
	if (ret <= 0)
		c->invalid = 1;
	if (ret != 0 && c->rp.p < c->rp.end && *c->rp.p == '@') {
		ret2 = a_domain(c);
		if (ret2 <= 0)
			ret = ret2;
	}
	if (buf_used(&c->r->comment) > 0) {
		c->addr.name = rbuf(c->r, &c->r->comment);
	} else if (ret2 == -2) {
		/* "user" alone is a mailbox; followed by more words it
		   was a display name */
		buf_append(s, " ", 1);
		size_t before = buf_used(s);
		(void)rp_phrase(&c->rp, s);
		if (buf_used(s) != before) {
			c->addr.mailbox.p = NULL;
			c->addr.mailbox.len = 0;
			c->addr.name = rbuf(c->r, s);
		} else if (!quoted) {
			c->addr.domain = rconst("");
		}
		c->invalid = 1;
		ret = -1;
	}
	return ret;
}

/* mailbox = name-addr / addr-spec */
static int
a_mailbox(struct actx *c)
{
	const unsigned char *start = c->rp.p;
	int ret = a_name_addr(c);
	if (ret < 0) {
		c->rp.p = start;
		ret = a_addr_spec(c);
		if (c->invalid && c->addr.name.p == NULL &&
		    c->addr.mailbox.p != NULL && c->addr.domain.p == NULL) {
			c->addr.name = c->addr.mailbox;
			c->addr.mailbox.p = NULL;
			c->addr.mailbox.len = 0;
		}
	}
	a_add_fixed(c);
	return ret;
}

/* group = display-name ":" [mailbox-list / CFWS] ";" [CFWS] */
static int
a_group(struct actx *c)
{
	int ret;
	struct buf *s = &c->r->tmp;
	buf_reset(s);
	if (rp_phrase(&c->rp, s) <= 0 || *c->rp.p != ':')
		return -1;
	/* a group from here on, whatever follows */
	c->rp.p++;
	ret = rp_skip_lwsp(&c->rp);
	c->addr.mailbox = rbuf(c->r, s);
	a_add(c);

	if (ret > 0 && *c->rp.p != ';') {
		for (;;) {
			(void)a_mailbox(c);
			if (c->rp.p >= c->rp.end || *c->rp.p != ',')
				break;
			c->rp.p++;
			if (rp_skip_lwsp(&c->rp) <= 0) {
				ret = -1;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (c->rp.p >= c->rp.end || *c->rp.p != ';') {
			ret = -1;
		} else {
			c->rp.p++;
			ret = rp_skip_lwsp(&c->rp);
		}
	}
	a_add(c); /* end of group */
	return ret == 0 ? 0 : 1;
}

static int
a_address(struct actx *c)
{
	const unsigned char *start = c->rp.p;
	int ret = a_group(c);
	if (ret < 0) {
		c->rp.p = start;
		ret = a_mailbox(c);
	}
	return ret;
}

void
mime_rfc822_addresses(struct mime_rfc822 *r, const char *v, size_t len,
		      struct maddrs *addrs_r)
{
	struct actx c;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.out = addrs_r;
	addrs_r->n = 0;
	rp_init(&c.rp, v, len, &r->comment);

	if (rp_skip_lwsp(&c.rp) <= 0)
		return; /* no addresses */
	for (uint32_t left = MIME_MAX_ADDRESSES; left > 0; left--) {
		if (a_address(&c) == 0)
			break;
		if (c.rp.p >= c.rp.end || *c.rp.p != ',')
			break;
		c.rp.p++;
		int ret = rp_skip_lwsp(&c.rp);
		if (ret <= 0) {
			if (ret < 0)
				a_add_fixed(&c); /* ends with garbage */
			break;
		}
	}
}

void
mime_address_each(const char *v, size_t len,
		  void (*fn)(void *ctx, const char *mailbox, size_t mlen,
			     const char *domain, size_t dlen),
		  void *ctx)
{
	struct arena a;
	struct mime_rfc822 r;
	struct maddrs addrs;
	memset(&addrs, 0, sizeof(addrs));
	arena_init(&a, 1024);
	mime_rfc822_init(&r, &a);
	mime_rfc822_addresses(&r, v, len, &addrs);
	for (uint32_t i = 0; i < addrs.n; i++) {
		const struct maddr *m = &addrs.v[i];
		/* a group's start and end have no domain */
		if (m->mailbox.p != NULL && m->domain.p != NULL &&
		    m->domain.len > 0)
			fn(ctx, m->mailbox.p, m->mailbox.len, m->domain.p,
			   m->domain.len);
	}
	mime_rfc822_free(&r);
	arena_free(&a);
}
