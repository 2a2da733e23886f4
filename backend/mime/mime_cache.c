/* mime_cache.c - the blob: compiling a parse tree, validating a blob.
 *
 * Layout (every integer a little-endian u32, version 2):
 *
 *   header, 40 octets:
 *     "PMIM", u16 version, u16 header size (40), blob length,
 *     message length, parts, envelopes, addresses, refs, string table
 *     length, checksum of all octets after the header: CRC-32 (zlib's)
 *     in version 2, FNV-1a 32 in version 1 (stored before; still read)
 *   parts      P_WORDS words each, in message order (0 = the message)
 *   envelopes  E_WORDS words each
 *   addresses  A_WORDS words each
 *   refs       one word each: string refs of parameter lists (name, value
 *              pairs) and language lists
 *   strings    u32 length, the octets, NUL; a string ref is its offset + 1,
 *              0 meaning absent
 *
 * Tree words: parent (MIME_NONE for part 0), first child, next sibling;
 * children and siblings come later in the table than their parent and
 * previous sibling, so walking the tree always ends.  mime_cache_load()
 * checks all of it, so readers index without further checks.
 */
#include "backend/mime/mime_private.h"

#include <string.h>

#include <zlib.h>

struct cbuf {
	struct buf parts, envs, addrs, refs, strs;
	uint32_t nenvs, naddrs, nrefs;
	int overflow;
};

static void
w32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8),
			       (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24) };
	buf_append(b, x, 4);
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* Appends all of from (buf_ptr() of a never used buf is NULL + 0). */
static void
append_buf(struct buf *out, const struct buf *from)
{
	if (buf_used(from) > 0)
		buf_append(out, buf_ptr(from), buf_used(from));
}

static uint32_t
fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* The checksum of a version's blob over the octets after the header:
 * version 1's FNV-1a takes a multiply per octet, version 2's CRC-32 a few
 * octets per cycle (it is computed on every load). */
static uint32_t
blob_checksum(unsigned version, const unsigned char *p, size_t n)
{
	if (version == 1)
		return fnv1a(p, n);
	return (uint32_t)crc32_z(0, p, n);
}

uint32_t
mime_cache_checksum(const void *blob, size_t blob_len)
{
	const unsigned char *b = blob;
	if (blob_len < MIME_BLOB_HDR)
		return 0;
	return blob_checksum((unsigned)(b[4] | b[5] << 8), b + MIME_BLOB_HDR,
			     blob_len - MIME_BLOB_HDR);
}

static uint32_t
cstr(struct cbuf *cb, const struct mstr *s)
{
	if (s->p == NULL)
		return 0;
	size_t off = buf_used(&cb->strs);
	if (s->len > UINT32_MAX / 2 || off + s->len + 6 > UINT32_MAX / 2) {
		cb->overflow = 1;
		return 0;
	}
	w32(&cb->strs, (uint32_t)s->len);
	buf_append(&cb->strs, s->p, s->len);
	buf_append(&cb->strs, "", 1);
	return (uint32_t)off + 1;
}

static uint32_t
cparams(struct cbuf *cb, const struct mkv *kv, uint32_t n)
{
	uint32_t first = cb->nrefs;
	for (uint32_t i = 0; i < n; i++) {
		w32(&cb->refs, cstr(cb, &kv[i].name));
		w32(&cb->refs, cstr(cb, &kv[i].value));
	}
	cb->nrefs += 2 * n;
	return first;
}

static uint32_t
cenv(struct cbuf *cb, const struct menv *e)
{
	uint32_t words[E_WORDS];
	words[E_DATE] = cstr(cb, &e->date);
	words[E_SUBJECT] = cstr(cb, &e->subject);
	words[E_MESSAGE_ID] = cstr(cb, &e->message_id);
	words[E_IN_REPLY_TO] = cstr(cb, &e->in_reply_to);
	for (int f = 0; f < ENV_ADDR_COUNT; f++) {
		const struct maddrs *l = &e->addr[f];
		words[E_ADDRS + 2 * f] = cb->naddrs;
		words[E_ADDRS + 2 * f + 1] = l->n;
		for (uint32_t i = 0; i < l->n; i++) {
			w32(&cb->addrs, cstr(cb, &l->v[i].name));
			w32(&cb->addrs, cstr(cb, &l->v[i].route));
			w32(&cb->addrs, cstr(cb, &l->v[i].mailbox));
			w32(&cb->addrs, cstr(cb, &l->v[i].domain));
		}
		cb->naddrs += l->n;
	}
	for (int i = 0; i < E_WORDS; i++)
		w32(&cb->envs, words[i]);
	return cb->nenvs++;
}

static void
cpart(struct cbuf *cb, const struct mpart *p)
{
	uint32_t w[P_WORDS];
	w[P_PARENT] = p->parent;
	w[P_CHILD] = p->child != NULL ? p->child->idx : MIME_NONE;
	w[P_NEXT] = p->next != NULL ? p->next->idx : MIME_NONE;
	w[P_FLAGS] = p->flags;
	w[P_HDR_OFF] = (uint32_t)p->hdr_off;
	w[P_BODY_OFF] = (uint32_t)p->body_off;
	w[P_END] = (uint32_t)p->end;
	w[P_BARE_LF] = p->bare_lf;
	w[P_LINES] = p->lines;
	w[P_TYPE] = cstr(cb, &p->type);
	w[P_SUBTYPE] = cstr(cb, &p->subtype);
	w[P_CT_NPARAMS] = p->n_ct_params;
	w[P_CT_PARAMS] = cparams(cb, p->ct_params, p->n_ct_params);
	w[P_CTE] = cstr(cb, &p->cte);
	w[P_ID] = cstr(cb, &p->id);
	w[P_DESC] = cstr(cb, &p->desc);
	w[P_MD5] = cstr(cb, &p->md5);
	w[P_DISP] = cstr(cb, &p->disp);
	w[P_DISP_NPARAMS] = p->n_disp_params;
	w[P_DISP_PARAMS] = cparams(cb, p->disp_params, p->n_disp_params);
	w[P_NLANGS] = p->nlangs;
	w[P_LANGS] = cb->nrefs;
	for (uint32_t i = 0; i < p->nlangs; i++)
		w32(&cb->refs, cstr(cb, &p->langs[i]));
	cb->nrefs += p->nlangs;
	w[P_LOCATION] = cstr(cb, &p->loc);
	w[P_ENV] = p->env != NULL ? cenv(cb, p->env) : MIME_NONE;
	w[P_DEPTH] = p->depth;
	for (int i = 0; i < P_WORDS; i++)
		w32(&cb->parts, w[i]);
}

int
mime_cache_compile(const struct mime_ptree *tree, struct buf *out)
{
	struct cbuf cb;
	struct buf empty = BUF_INIT;
	memset(&cb, 0, sizeof(cb));
	cb.parts = cb.envs = cb.addrs = cb.refs = cb.strs = empty;

	for (uint32_t i = 0; i < tree->nparts; i++)
		cpart(&cb, tree->parts[i]);

	size_t total = MIME_BLOB_HDR + buf_used(&cb.parts) +
		       buf_used(&cb.envs) + buf_used(&cb.addrs) +
		       buf_used(&cb.refs) + buf_used(&cb.strs);
	int ret = -1;
	if (!cb.overflow && total <= UINT32_MAX / 2 &&
	    tree->msg_size <= MIME_MAX_MESSAGE_SIZE) {
		size_t start = buf_used(out);
		unsigned char *h = (unsigned char *)buf_reserve(
			out, MIME_BLOB_HDR);
		memset(h, 0, MIME_BLOB_HDR);
		buf_commit(out, MIME_BLOB_HDR);
		append_buf(out, &cb.parts);
		append_buf(out, &cb.envs);
		append_buf(out, &cb.addrs);
		append_buf(out, &cb.refs);
		append_buf(out, &cb.strs);
		h = (unsigned char *)buf_ptr(out) + start;
		memcpy(h, MIME_BLOB_MAGIC, 4);
		h[4] = MIME_CACHE_VERSION & 0xff;
		h[5] = MIME_CACHE_VERSION >> 8;
		h[6] = MIME_BLOB_HDR;
		h[7] = 0;
		put32(h + 8, (uint32_t)total);
		put32(h + 12, (uint32_t)tree->msg_size);
		put32(h + 16, tree->nparts);
		put32(h + 20, cb.nenvs);
		put32(h + 24, cb.naddrs);
		put32(h + 28, cb.nrefs);
		put32(h + 32, (uint32_t)buf_used(&cb.strs));
		put32(h + 36,
		      blob_checksum(MIME_CACHE_VERSION, h + MIME_BLOB_HDR,
				    total - MIME_BLOB_HDR));
		ret = 0;
	}
	buf_free(&cb.parts);
	buf_free(&cb.envs);
	buf_free(&cb.addrs);
	buf_free(&cb.refs);
	buf_free(&cb.strs);
	return ret;
}

int
mime_cache_build(const char *msg, size_t len, struct buf *out)
{
	struct arena a;
	struct mime_ptree tree;
	if (len > MIME_MAX_MESSAGE_SIZE)
		return -1;
	arena_init(&a, 16384);
	mime_parse_tree(&a, msg, len, &tree);
	int ret = mime_cache_compile(&tree, out);
	arena_free(&a);
	return ret;
}

/* -- validation --------------------------------------------------------------- */

static int
str_ok(const struct mime_msg *m, uint32_t ref)
{
	if (ref == 0)
		return 1;
	uint64_t off = (uint64_t)ref - 1;
	if (off + 4 > m->strtab_len)
		return 0;
	uint64_t len = mime_rd32(m->strtab + off);
	if (off + 4 + len + 1 > m->strtab_len)
		return 0;
	return m->strtab[off + 4 + len] == '\0';
}

static int
refs_ok(const struct mime_msg *m, uint32_t first, uint32_t n, uint32_t per)
{
	if ((uint64_t)first + (uint64_t)n * per > m->nrefs)
		return 0;
	for (uint64_t i = 0; i < (uint64_t)n * per; i++)
		if (!str_ok(m, mime_ref(m, first + (uint32_t)i)))
			return 0;
	return 1;
}

static const char *
env_check(const struct mime_msg *m, uint32_t e)
{
	for (int w = E_DATE; w < E_ADDRS; w++)
		if (!str_ok(m, mime_ew(m, e, w)))
			return "bad envelope string";
	for (int f = 0; f < ENV_ADDR_COUNT; f++) {
		uint32_t first = mime_ew(m, e, E_ADDRS + 2 * f);
		uint32_t n = mime_ew(m, e, E_ADDRS + 2 * f + 1);
		if ((uint64_t)first + n > m->naddrs)
			return "bad address range";
	}
	return NULL;
}

static const char *
part_check(const struct mime_msg *m, uint32_t i, uint8_t *depth)
{
	uint32_t parent = mime_pw(m, i, P_PARENT);
	uint32_t child = mime_pw(m, i, P_CHILD);
	uint32_t next = mime_pw(m, i, P_NEXT);
	uint32_t flags = mime_pw(m, i, P_FLAGS);

	if (i == 0) {
		if (parent != MIME_NONE || next != MIME_NONE)
			return "bad root";
		depth[0] = 0;
	} else {
		if (parent >= i)
			return "bad parent";
		if (depth[parent] + 1 >= MIME_MAX_DEPTH)
			return "tree too deep";
		depth[i] = (uint8_t)(depth[parent] + 1);
	}
	if (mime_pw(m, i, P_DEPTH) != depth[i])
		return "bad depth";
	if (child != MIME_NONE &&
	    (child <= i || child >= m->nparts ||
	     mime_pw(m, child, P_PARENT) != i))
		return "bad child";
	if (next != MIME_NONE &&
	    (next <= i || next >= m->nparts ||
	     mime_pw(m, next, P_PARENT) != parent))
		return "bad sibling";

	int multipart = (flags & MIME_PART_MULTIPART) != 0;
	int message = (flags & MIME_PART_MESSAGE) != 0;
	if (multipart && message)
		return "bad flags";
	if (message) {
		if (child == MIME_NONE || mime_pw(m, child, P_NEXT) !=
						  MIME_NONE ||
		    mime_pw(m, child, P_ENV) == MIME_NONE)
			return "bad message part";
	} else if (!multipart && child != MIME_NONE) {
		return "leaf with children";
	}
	if (i == 0 && mime_pw(m, 0, P_ENV) == MIME_NONE)
		return "root without envelope";

	uint32_t h = mime_pw(m, i, P_HDR_OFF), b = mime_pw(m, i, P_BODY_OFF),
		 e = mime_pw(m, i, P_END);
	if (h > b || b > e || e > m->msg_size)
		return "bad offsets";
	if (mime_pw(m, i, P_BARE_LF) > e - b || mime_pw(m, i, P_LINES) > e - b)
		return "bad line counts";

	static const int strs[] = { P_TYPE, P_SUBTYPE, P_CTE,  P_ID,
				    P_DESC, P_MD5,     P_DISP, P_LOCATION };
	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		if (!str_ok(m, mime_pw(m, i, strs[k])))
			return "bad string";
	if (!refs_ok(m, mime_pw(m, i, P_CT_PARAMS),
		     mime_pw(m, i, P_CT_NPARAMS), 2) ||
	    !refs_ok(m, mime_pw(m, i, P_DISP_PARAMS),
		     mime_pw(m, i, P_DISP_NPARAMS), 2) ||
	    !refs_ok(m, mime_pw(m, i, P_LANGS), mime_pw(m, i, P_NLANGS), 1))
		return "bad parameter list";
	if (mime_pw(m, i, P_TYPE) != 0 && mime_pw(m, i, P_SUBTYPE) == 0)
		return "type without subtype";
	uint32_t env = mime_pw(m, i, P_ENV);
	if (env != MIME_NONE && env >= m->nenvs)
		return "bad envelope index";
	return NULL;
}

int
mime_cache_load(struct arena *a, const void *blob, size_t blob_len,
		size_t msg_len, struct mime_msg **msg_r, const char **error_r)
{
	const unsigned char *b = blob;
	struct mime_msg m;

	*msg_r = NULL;
	if (blob == NULL || blob_len < MIME_BLOB_HDR ||
	    memcmp(b, MIME_BLOB_MAGIC, 4) != 0) {
		*error_r = "MIME cache: not a MIME cache blob";
		return -1;
	}
	unsigned version = (unsigned)(b[4] | b[5] << 8);
	if ((version != MIME_CACHE_VERSION && version != 1) ||
	    (b[6] | b[7] << 8) != MIME_BLOB_HDR) {
		*error_r = "MIME cache: unsupported version";
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.blob = b;
	m.blob_len = blob_len;
	m.msg_size = mime_rd32(b + 12);
	m.nparts = mime_rd32(b + 16);
	m.nenvs = mime_rd32(b + 20);
	m.naddrs = mime_rd32(b + 24);
	m.nrefs = mime_rd32(b + 28);
	m.strtab_len = mime_rd32(b + 32);

	uint64_t want = MIME_BLOB_HDR + (uint64_t)m.nparts * P_WORDS * 4 +
			(uint64_t)m.nenvs * E_WORDS * 4 +
			(uint64_t)m.naddrs * A_WORDS * 4 +
			(uint64_t)m.nrefs * 4 + m.strtab_len;
	if (mime_rd32(b + 8) != blob_len || want != blob_len) {
		*error_r = "MIME cache: truncated or bad sizes";
		return -1;
	}
	if (m.msg_size != msg_len) {
		*error_r = "MIME cache: built for another message";
		return -1;
	}
	if (m.nparts == 0 || m.nparts > MIME_MAX_PARTS ||
	    m.nenvs > m.nparts) {
		*error_r = "MIME cache: bad part count";
		return -1;
	}
	if (mime_rd32(b + 36) != blob_checksum(version, b + MIME_BLOB_HDR,
					       blob_len - MIME_BLOB_HDR)) {
		*error_r = "MIME cache: checksum mismatch";
		return -1;
	}
	m.parts = b + MIME_BLOB_HDR;
	m.envs = m.parts + (size_t)m.nparts * P_WORDS * 4;
	m.addrs = m.envs + (size_t)m.nenvs * E_WORDS * 4;
	m.refs = m.addrs + (size_t)m.naddrs * A_WORDS * 4;
	m.strtab = m.refs + (size_t)m.nrefs * 4;

	for (uint32_t i = 0; i < m.naddrs; i++)
		for (int w = 0; w < A_WORDS; w++)
			if (!str_ok(&m, mime_aw(&m, i, w))) {
				*error_r = "MIME cache: bad address string";
				return -1;
			}
	for (uint32_t i = 0; i < m.nenvs; i++) {
		const char *err = env_check(&m, i);
		if (err != NULL) {
			*error_r = "MIME cache: bad envelope";
			return -1;
		}
	}
	uint8_t *depth = arena_alloc(a, m.nparts);
	for (uint32_t i = 0; i < m.nparts; i++) {
		if (part_check(&m, i, depth) != NULL) {
			*error_r = "MIME cache: bad part record";
			return -1;
		}
	}

	struct mime_msg *mm = arena_alloc(a, sizeof(*mm));
	*mm = m;
	*msg_r = mm;
	return 0;
}
