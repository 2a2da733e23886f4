/* mime_parse.c - one forward pass over a message, building the part tree.
 *
 * Follows Dovecot's message-parser: a header ends at an empty line, at the
 * end of the input or at a line that is a boundary of an enclosing
 * multipart; a body ends before the [CR]LF that precedes a boundary line of
 * any enclosing multipart (the innermost match wins, boundaries match as
 * prefixes, the longest one preferred); "--boundary--" closes its
 * multipart, whose epilogue runs to the next outer boundary; a missing
 * final boundary closes everything at the end of the input.
 */
#include "backend/mime/mime_private.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

struct bnd {
	struct bnd *next; /* outer */
	struct mpart *part;
	const char *str;
	size_t len;
};

struct pctx {
	struct arena *a;
	const unsigned char *m;
	size_t len;
	struct mime_ptree *tree;
	struct mime_rfc822 r;
	struct buf val; /* unfolded header value */
	struct bnd *bstack;
	int to_eof; /* the part limit was reached: no more structure */

	/* running counts of LF and bare LF before position cpos */
	size_t cpos;
	uint64_t clf, cbare;
};

/* -- line counters ---------------------------------------------------------- */

static int
is_bare_lf(const struct pctx *c, size_t i)
{
	return c->m[i] == '\n' && (i == 0 || c->m[i - 1] != '\r');
}

/* Moves the counters to pos (positions mostly only grow, so the total work
 * is about one pass). */
static void
count_to(struct pctx *c, size_t pos)
{
	while (c->cpos < pos) {
		const unsigned char *lf =
			memchr(c->m + c->cpos, '\n', pos - c->cpos);
		if (lf == NULL) {
			c->cpos = pos;
			break;
		}
		size_t i = (size_t)(lf - c->m);
		c->clf++;
		if (is_bare_lf(c, i))
			c->cbare++;
		c->cpos = i + 1;
	}
	while (c->cpos > pos) {
		c->cpos--;
		if (c->m[c->cpos] == '\n') {
			c->clf--;
			if (is_bare_lf(c, c->cpos))
				c->cbare--;
		}
	}
}

/* -- parts ------------------------------------------------------------------ */

static struct mpart *
part_new(struct pctx *c, struct mpart *parent, size_t hdr_off)
{
	struct mime_ptree *t = c->tree;
	assert(t->nparts < MIME_MAX_PARTS);
	if (t->nparts == t->cap) {
		uint32_t ncap = t->cap ? t->cap * 2 : 16;
		struct mpart **v = arena_alloc(c->a, ncap * sizeof(*v));
		if (t->nparts > 0)
			memcpy(v, t->parts, t->nparts * sizeof(*v));
		t->parts = v;
		t->cap = ncap;
	}
	struct mpart *p = arena_zalloc(c->a, sizeof(*p));
	p->idx = t->nparts;
	t->parts[t->nparts++] = p;
	p->hdr_off = p->body_off = p->end = hdr_off;
	p->parent_p = parent;
	if (parent != NULL) {
		p->parent = parent->idx;
		p->depth = parent->depth + 1;
		if (parent->last_child != NULL)
			parent->last_child->next = p;
		else
			parent->child = p;
		parent->last_child = p;
		if (parent->flags & MIME_PART_MULTIPART)
			p->flags |= MIME_PART_IS_MIME;
		if (parent->flags & MIME_PART_MESSAGE)
			p->env = arena_zalloc(c->a, sizeof(*p->env));
	} else {
		p->parent = MIME_NONE;
		p->env = arena_zalloc(c->a, sizeof(*p->env));
	}
	/* the part reaching the limit takes the rest of the message */
	if (t->nparts >= MIME_MAX_PARTS) {
		p->flags |= MIME_PART_OVERFLOW;
		c->to_eof = 1;
	}
	return p;
}

static void
part_body_start(struct pctx *c, struct mpart *p, size_t body_off)
{
	p->body_off = p->end = body_off;
	count_to(c, body_off);
	p->lf0 = c->clf;
	p->bare0 = c->cbare;
}

static void
part_finish(struct pctx *c, struct mpart *p, size_t end)
{
	if (end < p->body_off)
		end = p->body_off;
	p->end = end;
	count_to(c, end);
	p->lines = (uint32_t)(c->clf - p->lf0);
	p->bare_lf = (uint32_t)(c->cbare - p->bare0);
}

/* -- boundaries ------------------------------------------------------------- */

/* Is the line at s a boundary line of an enclosing multipart?  Sets *b_r and
 * *epilogue_r ("--boundary--"). */
static int
boundary_at(const struct pctx *c, size_t s, struct bnd **b_r,
	    int *epilogue_r)
{
	if (c->bstack == NULL || c->to_eof)
		return 0;
	if (c->len - s < 2 || c->m[s] != '-' || c->m[s + 1] != '-')
		return 0;
	const unsigned char *d = c->m + s + 2;
	size_t avail = c->len - s - 2;
	const unsigned char *lf = memchr(d, '\n', avail);
	size_t line = lf != NULL ? (size_t)(lf - d) : avail;
	size_t find = line;
	if (lf != NULL) {
		if (find > 0 && d[find - 1] == '\r')
			find--;
		if (find > 2 && d[find - 1] == '-' && d[find - 2] == '-')
			find -= 2;
	}
	struct bnd *best = NULL;
	for (struct bnd *b = c->bstack; b != NULL; b = b->next) {
		if (b->len <= find && memcmp(b->str, d, b->len) == 0 &&
		    (best == NULL || best->len < b->len)) {
			best = b;
			if (best->len == find)
				break;
		}
	}
	if (best == NULL)
		return 0;
	*b_r = best;
	*epilogue_r = line >= best->len + 2 && d[best->len] == '-' &&
		      d[best->len + 1] == '-';
	return 1;
}

/* Finds the next boundary line at or after pos (pos is a line start).
 * Sets *s_r to the line and *body_end_r to where the body before it ends. */
static int
boundary_next(const struct pctx *c, size_t pos, struct bnd **b_r,
	      int *epilogue_r, size_t *s_r, size_t *body_end_r)
{
	if (c->bstack == NULL || c->to_eof)
		return 0;
	if (boundary_at(c, pos, b_r, epilogue_r)) {
		*s_r = *body_end_r = pos;
		return 1;
	}
	size_t p = pos;
	while (p < c->len) {
		const unsigned char *lf = memchr(c->m + p, '\n', c->len - p);
		if (lf == NULL)
			return 0;
		size_t q = (size_t)(lf - c->m);
		if (boundary_at(c, q + 1, b_r, epilogue_r)) {
			*s_r = q + 1;
			*body_end_r = q > pos && c->m[q - 1] == '\r' ? q - 1 : q;
			return 1;
		}
		p = q + 1;
	}
	return 0;
}

/* -- header fields ---------------------------------------------------------- */

/* The unfolded value the way Dovecot's header parser gives it with
 * SKIP_INITIAL_LWSP | DROP_CR: blanks after the colon skipped (but one, if
 * there is nothing else), lines joined with "\n", NUL as U+FFFD. */
static void
field_value(struct pctx *c, size_t vstart, size_t fend)
{
	struct buf *v = &c->val;
	buf_reset(v);
	size_t p = vstart;
	int first = 1;
	while (p < fend) {
		const unsigned char *lf = memchr(c->m + p, '\n', fend - p);
		size_t e = lf != NULL ? (size_t)(lf - c->m) : fend;
		size_t next = lf != NULL ? e + 1 : fend;
		if (lf != NULL && e > p && c->m[e - 1] == '\r')
			e--;
		size_t s = p;
		if (first) {
			while (s < e && (c->m[s] == ' ' || c->m[s] == '\t'))
				s++;
			if (s == e && e > p)
				s = p + 1;
		} else {
			buf_append(v, "\n", 1);
		}
		for (size_t i = s; i < e; i++) {
			if (c->m[i] == '\0')
				buf_append(v, "\xef\xbf\xbd", 3);
			else
				buf_append(v, c->m + i, 1);
		}
		first = 0;
		p = next;
	}
}

static const char *
vptr(const struct pctx *c)
{
	return c->val.data != NULL ? c->val.data + c->val.off : "";
}

static struct mstr
vcopy(struct pctx *c)
{
	struct mstr s;
	s.len = buf_used(&c->val);
	s.p = arena_strndup(c->a, vptr(c), s.len);
	return s;
}

static int
name_is(const unsigned char *n, size_t len, const char *want)
{
	return strlen(want) == len &&
	       strncasecmp((const char *)n, want, len) == 0;
}

static int
is_lwsp(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

static void
ctype_flags(struct mpart *p, int slash)
{
	const struct mstr *t = &p->type, *s = &p->subtype;
	if (t->len == 7 && strncasecmp(t->p, "message", 7) == 0 &&
	    ((s->len == 6 && strncasecmp(s->p, "rfc822", 6) == 0) ||
	     (s->len == 6 && strncasecmp(s->p, "global", 6) == 0))) {
		p->flags |= MIME_PART_MESSAGE;
		if (strncasecmp(s->p, "global", 6) == 0)
			p->flags |= MIME_PART_GLOBAL;
	} else if (t->len == 4 && strncasecmp(t->p, "text", 4) == 0) {
		p->flags |= MIME_PART_TEXT;
	} else if (t->len == 9 && strncasecmp(t->p, "multipart", 9) == 0 &&
		   slash) {
		p->flags |= MIME_PART_MULTIPART;
		if (s->len == 6 && strncasecmp(s->p, "digest", 6) == 0)
			p->flags |= MIME_PART_DIGEST;
	}
}

static void
field_content(struct pctx *c, struct mpart *p, const unsigned char *n,
	      size_t nlen)
{
	const char *v = vptr(c);
	size_t vlen = buf_used(&c->val);

	if (name_is(n, nlen, "Content-Type")) {
		p->flags |= MIME_PART_IS_MIME;
		if (p->seen_ct)
			return;
		p->seen_ct = 1;
		int ret = mime_rfc822_content_type(&c->r, v, vlen, &p->type,
						   &p->subtype, &p->ct_params,
						   &p->n_ct_params);
		ctype_flags(p, ret != -2);
		if (ret < 0 || !(p->flags & MIME_PART_MULTIPART))
			return;
		for (uint32_t i = 0; i < p->n_ct_params; i++) {
			const struct mkv *kv = &p->ct_params[i];
			if (kv->name.len == 8 &&
			    strncasecmp(kv->name.p, "boundary", 8) == 0) {
				p->boundary = kv->value;
				if (p->boundary.len > MIME_BOUNDARY_MAX)
					p->boundary.len = MIME_BOUNDARY_MAX;
				break;
			}
		}
	} else if (name_is(n, nlen, "Content-Transfer-Encoding")) {
		if (p->cte.p == NULL)
			(void)mime_rfc822_cte(&c->r, v, vlen, &p->cte);
	} else if (name_is(n, nlen, "Content-ID")) {
		if (p->id.p == NULL)
			p->id = vcopy(c);
	} else if (name_is(n, nlen, "Content-Description")) {
		if (p->desc.p == NULL)
			p->desc = vcopy(c);
	} else if (name_is(n, nlen, "Content-MD5")) {
		if (p->md5.p == NULL)
			p->md5 = vcopy(c);
	} else if (name_is(n, nlen, "Content-Location")) {
		if (p->loc.p == NULL)
			p->loc = vcopy(c);
	} else if (name_is(n, nlen, "Content-Language")) {
		if (p->langs == NULL)
			mime_rfc822_languages(&c->r, v, vlen, &p->langs,
					      &p->nlangs);
	} else if (name_is(n, nlen, "Content-Disposition")) {
		/* Dovecot takes a later one while none had parameters */
		if (p->n_disp_params == 0)
			(void)mime_rfc822_disposition(&c->r, v, vlen, &p->disp,
						      &p->disp_params,
						      &p->n_disp_params);
	}
}

static void
field_envelope(struct pctx *c, struct menv *e, const unsigned char *n,
	       size_t nlen)
{
	static const char *const addr_names[ENV_ADDR_COUNT] = {
		"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	};
	_Static_assert(sizeof(addr_names) / sizeof(addr_names[0]) ==
			       ENV_ADDR_COUNT,
		       "one name per address field");
	const char *v = vptr(c);
	size_t vlen = buf_used(&c->val);

	/* the last of repeated fields wins, as in Dovecot */
	if (name_is(n, nlen, "Date")) {
		e->date = vcopy(c);
	} else if (name_is(n, nlen, "Subject")) {
		e->subject = vcopy(c);
	} else if (name_is(n, nlen, "Message-ID")) {
		e->message_id = vcopy(c);
	} else if (name_is(n, nlen, "In-Reply-To")) {
		e->in_reply_to = vcopy(c);
	} else {
		for (int i = 0; i < ENV_ADDR_COUNT; i++) {
			if (name_is(n, nlen, addr_names[i])) {
				memset(&e->addr[i], 0, sizeof(e->addr[i]));
				mime_rfc822_addresses(&c->r, v, vlen,
						      &e->addr[i]);
				break;
			}
		}
	}
}

static int
envelope_field(const unsigned char *n, size_t nlen)
{
	static const char *const names[] = {
		"Date", "Subject", "Message-ID", "In-Reply-To", "From",
		"Sender", "Reply-To", "To", "Cc", "Bcc",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_is(n, nlen, names[i]))
			return 1;
	return 0;
}

/* One field [fstart, fend): name up to the colon of its first line, blanks
 * before the colon dropped; a line without colon is all name. */
static void
field(struct pctx *c, struct mpart *p, size_t fstart, size_t fend)
{
	const unsigned char *m = c->m;
	size_t i = fstart, colon = SIZE_MAX;
	for (; i < fend && m[i] != '\n'; i++) {
		if (m[i] == ':') {
			colon = i;
			break;
		}
	}
	size_t nend = colon;
	if (colon == SIZE_MAX) {
		/* no colon: the line is the name, the value is empty */
		nend = i;
		if (nend > fstart && m[nend - 1] == '\r')
			nend--;
	} else {
		while (nend > fstart && is_lwsp(m[nend - 1]))
			nend--;
	}
	const unsigned char *n = m + fstart;
	size_t nlen = nend - fstart;

	int content = nlen > 8 && strncasecmp((const char *)n, "Content-",
					      8) == 0;
	int env = p->env != NULL && envelope_field(n, nlen);
	if (name_is(n, nlen, "MIME-Version")) {
		p->flags |= MIME_PART_IS_MIME;
		return;
	}
	if (!content && !env)
		return;
	if (colon == SIZE_MAX)
		buf_reset(&c->val);
	else
		field_value(c, colon + 1, fend);
	if (content)
		field_content(c, p, n, nlen);
	if (env)
		field_envelope(c, p->env, n, nlen);
}

/* Parses the header of p from *pos.  Returns 1 if a boundary line ended it
 * (*b_r, *epi_r, *s_r set; the header's last newline belongs to the
 * boundary), else 0.  Sets p->body_off; *pos is where the body starts. */
static int
header(struct pctx *c, struct mpart *p, size_t *pos, struct bnd **b_r,
       int *epi_r, size_t *s_r)
{
	const unsigned char *m = c->m;
	size_t at = *pos, prev_nl = 0;
	p->hdr_off = at;
	while (at < c->len) {
		if (boundary_at(c, at, b_r, epi_r)) {
			*s_r = at;
			part_body_start(c, p, at - prev_nl);
			*pos = at;
			return 1;
		}
		if (m[at] == '\n') {
			at++;
			p->eoh_nl = 1;
			break;
		}
		if (m[at] == '\r' && at + 1 < c->len && m[at + 1] == '\n') {
			at += 2;
			p->eoh_nl = 2;
			break;
		}
		size_t fstart = at;
		for (;;) {
			const unsigned char *lf =
				memchr(m + at, '\n', c->len - at);
			if (lf == NULL) {
				at = c->len;
				prev_nl = 0;
				break;
			}
			size_t e = (size_t)(lf - m);
			prev_nl = e > at && m[e - 1] == '\r' ? 2 : 1;
			at = e + 1;
			if (at >= c->len || !is_lwsp(m[at]))
				break;
		}
		field(c, p, fstart, at);
	}
	part_body_start(c, p, at);
	*pos = at;
	return 0;
}

/* After the header: Content-* data apply only to MIME parts; what the part
 * defaults to. */
static void
header_done(struct mpart *p)
{
	if (!(p->flags & MIME_PART_IS_MIME)) {
		struct menv *env = p->env;
		unsigned int keep = p->flags & MIME_PART_OVERFLOW;
		uint32_t idx = p->idx, parent = p->parent, depth = p->depth;
		struct mpart *pp = p->parent_p;
		size_t h = p->hdr_off, b = p->body_off;
		uint64_t lf0 = p->lf0, bare0 = p->bare0;
		unsigned int eoh_nl = p->eoh_nl;
		memset(p, 0, sizeof(*p));
		p->idx = idx;
		p->parent = parent;
		p->parent_p = pp;
		p->depth = depth;
		p->hdr_off = h;
		p->body_off = p->end = b;
		p->lf0 = lf0;
		p->bare0 = bare0;
		p->eoh_nl = eoh_nl;
		p->env = env;
		p->flags = keep;
	}
	if (!p->seen_ct || !(p->flags & MIME_PART_IS_MIME)) {
		if (p->parent_p != NULL &&
		    (p->parent_p->flags & MIME_PART_DIGEST))
			p->flags |= MIME_PART_MESSAGE;
		else
			p->flags |= MIME_PART_TEXT;
	}
	int can_nest = p->depth + 1 < MIME_MAX_DEPTH &&
		       !(p->flags & MIME_PART_OVERFLOW);
	if ((p->flags & MIME_PART_MULTIPART) && p->boundary.p != NULL &&
	    !can_nest) {
		p->flags &= ~(unsigned int)(MIME_PART_MULTIPART |
					    MIME_PART_DIGEST);
		p->flags |= MIME_PART_OVERFLOW;
	}
	if ((p->flags & MIME_PART_MESSAGE) && !can_nest) {
		p->flags &= ~(unsigned int)(MIME_PART_MESSAGE |
					    MIME_PART_GLOBAL);
		p->flags |= MIME_PART_OVERFLOW;
	}
}

/* A boundary line at s: closes the parts inside its multipart at body_end,
 * then either starts the next part (returned) or continues in the
 * multipart's epilogue (NULL).  *pos: after the boundary line. */
static struct mpart *
on_boundary(struct pctx *c, struct mpart **cur, struct bnd *b, int epilogue,
	    size_t s, size_t body_end, size_t *pos)
{
	while (*cur != b->part) {
		part_finish(c, *cur, body_end);
		*cur = (*cur)->parent_p;
	}
	c->bstack = epilogue ? b->next : b;
	const unsigned char *lf = memchr(c->m + s, '\n', c->len - s);
	*pos = lf != NULL ? (size_t)(lf - c->m) + 1 : c->len;
	if (c->to_eof || c->bstack == NULL || c->bstack->part != *cur)
		return NULL;
	return part_new(c, *cur, *pos);
}

void
mime_parse_tree(struct arena *a, const char *msg, size_t len,
		struct mime_ptree *tree_r)
{
	struct pctx c;
	struct buf empty = BUF_INIT;
	memset(&c, 0, sizeof(c));
	memset(tree_r, 0, sizeof(*tree_r));
	c.a = a;
	c.m = (const unsigned char *)msg;
	c.len = len;
	c.tree = tree_r;
	c.val = empty;
	tree_r->msg_size = len;
	mime_rfc822_init(&c.r, a);

	struct mpart *cur = part_new(&c, NULL, 0);
	size_t pos = 0;
	int in_header = 1, after_header = 0;
	for (;;) {
		struct bnd *b = NULL;
		int epi = 0;
		size_t s = 0, body_end = 0;

		if (in_header) {
			int hit = header(&c, cur, &pos, &b, &epi, &s);
			header_done(cur);
			if ((cur->flags & MIME_PART_MESSAGE) && !hit) {
				/* the encapsulated message starts here */
				cur = part_new(&c, cur, cur->body_off);
				continue;
			}
			if (hit && (cur->flags & MIME_PART_MESSAGE)) {
				/* a boundary cut the message part short: its
				   message is empty (text/plain) */
				cur = part_new(&c, cur, cur->body_off);
				part_body_start(&c, cur, cur->hdr_off);
				header_done(cur);
			}
			if (hit) {
				struct mpart *next = on_boundary(
					&c, &cur, b, epi, s, cur->body_off,
					&pos);
				if (next != NULL)
					cur = next;
				else
					in_header = 0;
				continue;
			}
			if ((cur->flags & MIME_PART_MULTIPART) &&
			    cur->boundary.p != NULL) {
				struct bnd *nb = arena_zalloc(a, sizeof(*nb));
				nb->part = cur;
				nb->str = cur->boundary.p;
				nb->len = cur->boundary.len;
				nb->next = c.bstack;
				c.bstack = nb;
			}
			in_header = 0;
			after_header = 1;
			continue;
		}

		int first = after_header;
		after_header = 0;
		if (!boundary_next(&c, pos, &b, &epi, &s, &body_end)) {
			/* everything still open ends with the message */
			for (; cur != NULL; cur = cur->parent_p)
				part_finish(&c, cur, len);
			break;
		}
		if (first && s == pos && b->part != cur && cur->eoh_nl > 0) {
			/* an enclosing boundary right after the blank line:
			   that newline is the boundary's, as in Dovecot */
			body_end = cur->body_off - cur->eoh_nl;
			part_body_start(&c, cur, body_end);
		}
		struct mpart *next =
			on_boundary(&c, &cur, b, epi, s, body_end, &pos);
		if (next != NULL) {
			cur = next;
			in_header = 1;
		}
	}
	mime_rfc822_free(&c.r);
	buf_free(&c.val);
}
