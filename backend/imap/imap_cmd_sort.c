/* imap_cmd_sort.c - SORT and THREAD (RFC 5256), their UID forms, and the
 * DISPLAYFROM and DISPLAYTO sort keys (RFC 5957).
 *
 * Both run the search criteria through imap_search_run() (one read
 * transaction, the work bounded by limits.search_max_bytes) and read what
 * they need of each match from its envelope: the MIME structure stored at
 * delivery, or a parse of the header when none was stored.  THREAD
 * REFERENCES also reads the References field.
 *
 * Strings compare as i;unicode-casemap (imap_casefold(), then octets); an
 * absent field is the empty string, which sorts first.  Dates are sent
 * dates (RFC 5256 2.2): the Date field in UTC, INTERNALDATE when it is
 * missing or unreadable.  Ties go to the lower sequence number.
 *
 * The thread trees are walked without recursion: a chain of References
 * may be as long as the mailbox. */
#include "backend/imap/imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/mime/mime.h"
#include "common/log.h"

/* -- shared: base subject, addresses, dates ------------------------------- */

/* subj-blob at s[i..e): "[" *BLOBCHAR "]" *WSP; its end, or 0. */
static size_t
blob_end(const char *s, size_t i, size_t e)
{
	if (i >= e || s[i] != '[')
		return 0;
	for (size_t j = i + 1; j < e; j++) {
		if (s[j] == '[')
			return 0;
		if (s[j] == ']') {
			for (j++; j < e && s[j] == ' ';)
				j++;
			return j;
		}
	}
	return 0;
}

/* subj-refwd: ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; its end, or 0. */
static size_t
refwd_end(const char *s, size_t i, size_t e)
{
	size_t j;
	if (e - i >= 2 && strncasecmp(s + i, "re", 2) == 0) {
		j = i + 2;
	} else if (e - i >= 2 && strncasecmp(s + i, "fw", 2) == 0) {
		j = i + 2;
		if (j < e && (s[j] == 'd' || s[j] == 'D'))
			j++;
	} else {
		return 0;
	}
	while (j < e && s[j] == ' ')
		j++;
	size_t b = blob_end(s, j, e);
	if (b != 0)
		j = b;
	return j < e && s[j] == ':' ? j + 1 : 0;
}

/* The base subject (RFC 5256 2.1) of a Subject value as written, folded
 * for comparison, onto out; 1 if the extraction removed a subj-refwd, a
 * "(fwd)" trailer or a subj-fwd-hdr and subj-fwd-trl (a reply or a
 * forward, for THREAD=REFERENCES), else 0. */
static int
base_subject(const char *subject, struct buf *tmp, struct buf *out)
{
	int reply = 0;
	buf_reset(tmp);
	if (subject == NULL)
		return 0;
	/* (1) encoded words decoded; tabs and line breaks made spaces, runs
	   of spaces one space */
	mime_decode_header(subject, strlen(subject), tmp);
	char *s = buf_ptr(tmp);
	size_t n = 0;
	for (size_t k = 0; k < buf_used(tmp); k++) {
		char c = s[k];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = c;
	}
	size_t i = 0, e = n;
	for (;;) {
		/* (2) subj-trailer: "(fwd)" / WSP */
		while (e > i) {
			if (s[e - 1] == ' ') {
				e--;
			} else if (e - i >= 5 &&
				   strncasecmp(s + e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				reply = 1;
			} else {
				break;
			}
		}
		int found;
		do {
			found = 0;
			/* (3) subj-leader: (*subj-blob subj-refwd) / WSP */
			for (;;) {
				if (i < e && s[i] == ' ') {
					i++;
					found = 1;
					continue;
				}
				size_t j = i, b;
				while ((b = blob_end(s, j, e)) != 0)
					j = b;
				size_t r = refwd_end(s, j, e);
				if (r == 0)
					break;
				i = r;
				reply = 1;
				found = 1;
			}
			/* (4) a subj-blob, if subj-base is left */
			size_t b = blob_end(s, i, e);
			if (b != 0 && b < e) {
				i = b;
				found = 1;
			}
		} while (found); /* (5) */
		/* (6) subj-fwd-hdr and subj-fwd-trl */
		if (e - i >= 6 && strncasecmp(s + i, "[fwd:", 5) == 0 &&
		    s[e - 1] == ']') {
			i += 5;
			e--;
			reply = 1;
			continue;
		}
		break;
	}
	imap_casefold(s + i, e - i, out);
	return reply;
}

/* The sent date of RFC 5256 2.2. */
static int64_t
sent_date(const struct imap_envelope *env, const struct imap_msg *m)
{
	int64_t utc, day;
	if (env->date != NULL && imap_date_parse(env->date, &utc, &day) == 0)
		return utc;
	return imap_msg_rec(m)->internaldate;
}

struct sstr {
	const char *s;
	size_t len;
};

static struct sstr
keep(struct imap_cmd_ctx *cmd, const struct buf *b)
{
	struct sstr r = {"", buf_used(b)};
	if (r.len > 0)
		r.s = arena_strndup(&cmd->is->cmd_pool, buf_ptr(b), r.len);
	return r;
}

static int
sstr_cmp(const struct sstr *a, const struct sstr *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->s, b->s, n) : 0;
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* RFC 5957: the display name (decoded), else mailbox@host. */
static void
display_name(const struct imap_env_addr *a, struct buf *tmp, struct buf *out)
{
	buf_reset(tmp);
	if (a->name != NULL)
		mime_decode_header(a->name, strlen(a->name), tmp);
	size_t i = 0;
	while (i < buf_used(tmp) && buf_ptr(tmp)[i] == ' ')
		i++;
	if (i < buf_used(tmp)) {
		imap_casefold(buf_ptr(tmp) + i, buf_used(tmp) - i, out);
		return;
	}
	if (a->mailbox == NULL)
		return;
	buf_reset(tmp);
	buf_append_str(tmp, a->mailbox);
	if (a->host != NULL) {
		buf_append(tmp, "@", 1);
		buf_append_str(tmp, a->host);
	}
	imap_casefold(buf_ptr(tmp), buf_used(tmp), out);
}

static int
cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* -- SORT ------------------------------------------------------------------ */

enum sort_key {
	SORT_ARRIVAL,
	SORT_CC,
	SORT_DATE,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
	SORT_DISPLAYFROM,
	SORT_DISPLAYTO,
	SORT_KEY_COUNT
};

static const char *const sort_key_names[] = {
	"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
	"DISPLAYFROM", "DISPLAYTO"};
_Static_assert(sizeof(sort_key_names) / sizeof(sort_key_names[0]) ==
		       SORT_KEY_COUNT,
	       "sort key names");

/* More criteria than keys can only repeat one. */
#define SORT_MAX_CRITERIA (2 * SORT_KEY_COUNT)

struct sort_item {
	uint32_t seq, id;
	uint64_t size;
	int64_t arrival, date;
	struct sstr str[SORT_KEY_COUNT];
};

struct sort_ctx {
	struct imap_cmd_ctx *cmd;
	struct {
		enum sort_key key;
		int reverse;
	} crit[SORT_MAX_CRITERIA];
	unsigned ncrit;
	unsigned need; /* 1 << enum sort_key */
	struct sort_item *items;
	size_t n, cap;
	struct buf tmp, fold;
};

static int
sort_hit(struct imap_msg *m, void *vctx)
{
	struct sort_ctx *c = vctx;
	const struct store_msg_rec *rec = imap_msg_rec(m);
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->items = realloc(c->items, c->cap * sizeof(*c->items));
		if (c->items == NULL)
			abort();
	}
	struct sort_item *it = &c->items[c->n];
	memset(it, 0, sizeof(*it));
	it->seq = imap_msg_seq(m);
	it->id = c->cmd->uid ? imap_msg_uid(m) : it->seq;
	it->size = rec->size;
	it->arrival = rec->internaldate;
	if (c->need & ~(1u << SORT_ARRIVAL | 1u << SORT_SIZE)) {
		const struct imap_envelope *env = imap_msg_envelope(m);
		if (env == NULL)
			return -1;
		it->date = sent_date(env, m);
		for (unsigned k = 0; k < SORT_KEY_COUNT; k++) {
			const struct imap_env_addr *a = NULL;
			if (!(c->need & (1u << k)))
				continue;
			buf_reset(&c->fold);
			switch ((enum sort_key)k) {
			case SORT_ARRIVAL:
			case SORT_DATE:
			case SORT_SIZE:
				continue;
			case SORT_CC:
				a = &env->cc;
				break;
			case SORT_FROM:
				a = &env->from;
				break;
			case SORT_TO:
				a = &env->to;
				break;
			case SORT_SUBJECT:
				base_subject(env->subject, &c->tmp, &c->fold);
				break;
			case SORT_DISPLAYFROM:
				display_name(&env->from, &c->tmp, &c->fold);
				break;
			case SORT_DISPLAYTO:
				display_name(&env->to, &c->tmp, &c->fold);
				break;
			case SORT_KEY_COUNT:
				abort();
			}
			/* RFC 5256: the addr-mailbox of the first address */
			if (a != NULL && a->mailbox != NULL)
				imap_casefold(a->mailbox, strlen(a->mailbox),
					      &c->fold);
			it->str[k] = keep(c->cmd, &c->fold);
		}
	}
	c->n++;
	return 0;
}

static int
sort_cmp(const void *va, const void *vb, void *vctx)
{
	const struct sort_item *a = va, *b = vb;
	const struct sort_ctx *c = vctx;
	for (unsigned i = 0; i < c->ncrit; i++) {
		enum sort_key k = c->crit[i].key;
		int r = 0;
		switch (k) {
		case SORT_ARRIVAL:
			r = cmp_i64(a->arrival, b->arrival);
			break;
		case SORT_DATE:
			r = cmp_i64(a->date, b->date);
			break;
		case SORT_SIZE:
			r = a->size < b->size ? -1 : a->size > b->size;
			break;
		case SORT_CC:
		case SORT_FROM:
		case SORT_SUBJECT:
		case SORT_TO:
		case SORT_DISPLAYFROM:
		case SORT_DISPLAYTO:
			r = sstr_cmp(&a->str[k], &b->str[k]);
			break;
		case SORT_KEY_COUNT:
			abort();
		}
		if (r != 0)
			return c->crit[i].reverse ? -r : r;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Parses "(criteria)" into c; -1 after a tagged BAD. */
static int
sort_criteria(struct sort_ctx *c, const struct imap_arg *list)
{
	if (list->type != IMAP_ARG_LIST || list->count == 0) {
		imap_tagged(c->cmd, "BAD", "Expected a list of sort criteria");
		return -1;
	}
	int reverse = 0;
	for (unsigned i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_is_atom(a, "REVERSE")) {
			reverse = 1;
			continue;
		}
		unsigned k;
		for (k = 0; k < SORT_KEY_COUNT; k++)
			if (imap_arg_is_atom(a, sort_key_names[k]))
				break;
		if (k == SORT_KEY_COUNT) {
			imap_tagged(c->cmd, "BAD", "Unknown sort criterion");
			return -1;
		}
		if (c->ncrit == SORT_MAX_CRITERIA) {
			imap_tagged(c->cmd, "BAD", "Too many sort criteria");
			return -1;
		}
		c->crit[c->ncrit].key = (enum sort_key)k;
		c->crit[c->ncrit++].reverse = reverse;
		c->need |= 1u << k;
		reverse = 0;
	}
	if (reverse) {
		imap_tagged(c->cmd, "BAD", "REVERSE must precede a criterion");
		return -1;
	}
	return 0;
}

/* SORT (RFC 5256), and with RETURN (...) ESORT (RFC 5267): the answer
 * is then an ESEARCH in the sort's order, and SAVE makes the matches $
 * (RFC 5182). */
void
imap_cmd_sort(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct sort_ctx c = {.cmd = cmd};
	unsigned ret;
	int pos = imap_search_return(cmd, &ret);
	if (pos < 0)
		return;
	if (pos > 0 &&
	    (!imap_offers(is, "ESORT") ||
	     ((ret & IMAP_RET_SAVE) && !imap_offers(is, "SEARCHRES")))) {
		imap_tagged(cmd, "BAD",
			    "SORT expects (criteria) charset "
			    "search-criteria");
		return;
	}
	unsigned argc = cmd->argc - (unsigned)pos;
	const struct imap_arg *args = cmd->args + pos;
	if (argc < 3) {
		imap_tagged(cmd, "BAD",
			    "SORT expects (criteria) charset "
			    "search-criteria");
		return;
	}
	if (sort_criteria(&c, &args[0]) < 0)
		return;
	if (imap_search_charset(cmd, &args[1]) < 0) {
		if (ret & IMAP_RET_SAVE)
			imap_search_save(is, 0, NULL, 0);
		return;
	}
	struct imap_search *s = imap_search_parse(cmd, args + 2, argc - 2);
	if (s == NULL)
		return;
	int rc = imap_search_run(s, sort_hit, &c);
	buf_free(&c.tmp);
	buf_free(&c.fold);
	if (rc < 0) {
		free(c.items);
		if (ret & IMAP_RET_SAVE)
			imap_search_save(is, 0, NULL, 0);
		return;
	}
	if (c.n > 1)
		qsort_r(c.items, c.n, sizeof(*c.items), sort_cmp, &c);
	uint64_t modseq = imap_search_modseq(s);
	struct buf out = BUF_INIT;
	if (pos > 0) {
		uint32_t *ids = malloc((c.n ? c.n : 1) * sizeof(*ids));
		if (ids == NULL)
			abort();
		for (size_t i = 0; i < c.n; i++)
			ids[i] = c.items[i].id;
		if (ret != IMAP_RET_SAVE)
			imap_esearch_line(cmd, ret, ids, c.n, modseq, &out);
		if (ret & IMAP_RET_SAVE) {
			/* $ holds UIDs */
			for (size_t i = 0; i < c.n && !cmd->uid; i++)
				ids[i] = is->uids[c.items[i].seq - 1];
			imap_search_save(is, ret, ids, c.n);
		} else {
			free(ids);
		}
	} else {
		buf_append_str(&out, "* SORT");
		for (size_t i = 0; i < c.n; i++) {
			buf_append(&out, " ", 1);
			buf_append_uint(&out, c.items[i].id);
		}
		if (modseq > 0)
			buf_printf(&out, " (MODSEQ %llu)",
				   (unsigned long long)modseq);
		buf_append(&out, "\r\n", 2);
	}
	session_write(is->s, buf_ptr(&out), buf_used(&out));
	buf_free(&out);
	free(c.items);
	imap_tagged(cmd, "OK", "%sSORT completed", cmd->uid ? "UID " : "");
}

/* -- THREAD ------------------------------------------------------------------ */

struct titem {
	uint32_t seq, id;
	int64_t date;
	struct sstr subj; /* base subject, folded */
	int reply;        /* a reply or forward, by its subject */
	const char *msgid;
	const char **refs;
	unsigned nrefs;
};

struct tnode {
	const char *key; /* message id; NULL for a node of its own */
	struct tnode *parent, *child, *next;
	struct tnode *hnext; /* hash chain */
	struct titem *msg;   /* NULL: a dummy */
	int gone;            /* merged away from the root (step 5) */
};

struct thread_ctx {
	struct imap_cmd_ctx *cmd;
	struct imap_search *s;
	int references;
	struct titem *items;
	size_t n, cap;
	struct buf tmp, fold, id;
	const char **refv;
	size_t caprefv;
	/* REFERENCES */
	struct tnode **nodes; /* every node, the root and dummies included */
	size_t nnodes, capnodes;
	struct tnode **buckets; /* message id -> node */
	size_t nbuckets, nhashed;
	struct tnode **order, **stack; /* walks, nnodes each */
	int over;
};

/* The next valid msg-id of *pp, normalized (RFC 5256: quoting does not
 * matter; quotes, white space and comments outside quotes are dropped)
 * into out; 0 when there is none left. */
static int
msgid_next(const char **pp, struct buf *out)
{
	const char *p = *pp;
	while ((p = strchr(p, '<')) != NULL) {
		const char *q = p + 1;
		int ats = 0, ok = 0;
		size_t at = 0;
		buf_reset(out);
		while (*q != '\0' && *q != '<') {
			if (*q == '>') {
				ok = 1;
				break;
			}
			if (*q == '"') {
				for (q++; *q != '\0' && *q != '"'; q++) {
					if (*q == '\\' && q[1] != '\0')
						q++;
					buf_append(out, q, 1);
				}
				if (*q != '\0')
					q++;
				continue;
			}
			if (*q == '(') {
				int depth = 0;
				for (; *q != '\0'; q++) {
					if (*q == '\\' && q[1] != '\0')
						q++;
					else if (*q == '(')
						depth++;
					else if (*q == ')' && --depth == 0) {
						q++;
						break;
					}
				}
				continue;
			}
			if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
				if (*q == '@') {
					ats++;
					at = buf_used(out);
				}
				buf_append(out, q, 1);
			}
			q++;
		}
		if (ok && ats == 1 && at > 0 && at + 1 < buf_used(out)) {
			*pp = q + 1;
			return 1;
		}
		if (*q == '\0')
			break;
		p = q;
	}
	return 0;
}

static int
thread_hit(struct imap_msg *m, void *vctx)
{
	struct thread_ctx *t = vctx;
	struct arena *a = &t->cmd->is->cmd_pool;
	const struct imap_envelope *env = imap_msg_envelope(m);
	if (env == NULL)
		return -1;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->items = realloc(t->items, t->cap * sizeof(*t->items));
		if (t->items == NULL)
			abort();
	}
	struct titem *it = &t->items[t->n];
	memset(it, 0, sizeof(*it));
	it->seq = imap_msg_seq(m);
	it->id = t->cmd->uid ? imap_msg_uid(m) : it->seq;
	it->date = sent_date(env, m);
	buf_reset(&t->fold);
	it->reply = base_subject(env->subject, &t->tmp, &t->fold);
	it->subj = keep(t->cmd, &t->fold);
	if (t->references) {
		const char *p = env->message_id;
		if (p != NULL && msgid_next(&p, &t->id))
			it->msgid = arena_strndup(a, buf_ptr(&t->id),
						  buf_used(&t->id));
		/* References, else the first msg-id of In-Reply-To */
		int over;
		const char *refs = imap_msg_header(m, "References", &over);
		if (refs == NULL && over)
			return -1;
		size_t nr = 0;
		for (p = refs; p != NULL && msgid_next(&p, &t->id);) {
			if (nr == t->caprefv) {
				t->caprefv = t->caprefv ? t->caprefv * 2 : 16;
				t->refv = realloc(t->refv, t->caprefv *
								   sizeof(*t->refv));
				if (t->refv == NULL)
					abort();
			}
			t->refv[nr++] = arena_strndup(a, buf_ptr(&t->id),
						      buf_used(&t->id));
		}
		p = env->in_reply_to;
		if (nr == 0 && p != NULL && msgid_next(&p, &t->id)) {
			it->refs = arena_alloc(a, sizeof(*it->refs));
			it->refs[0] = arena_strndup(a, buf_ptr(&t->id),
						    buf_used(&t->id));
			it->nrefs = 1;
		} else if (nr > 0) {
			it->refs = arena_alloc(a, nr * sizeof(*it->refs));
			memcpy(it->refs, t->refv, nr * sizeof(*it->refs));
			it->nrefs = (unsigned)nr;
		}
	}
	t->n++;
	return 0;
}

static const struct titem *
first_msg(const struct tnode *n)
{
	while (n->msg == NULL && n->child != NULL)
		n = n->child;
	return n->msg;
}

/* Sent date, then sequence number; a dummy by its first child. */
static int
tnode_cmp(const void *va, const void *vb)
{
	const struct titem *a = first_msg(*(struct tnode *const *)va);
	const struct titem *b = first_msg(*(struct tnode *const *)vb);
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	int r = cmp_i64(a->date, b->date);
	if (r != 0)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static struct tnode *
tnode_new(struct thread_ctx *t, const char *key)
{
	struct tnode *n = arena_zalloc(&t->cmd->is->cmd_pool, sizeof(*n));
	n->key = key;
	if (t->nnodes == t->capnodes) {
		t->capnodes = t->capnodes ? t->capnodes * 2 : 256;
		t->nodes = realloc(t->nodes, t->capnodes * sizeof(*t->nodes));
		if (t->nodes == NULL)
			abort();
	}
	t->nodes[t->nnodes++] = n;
	return n;
}

static size_t
id_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* The node of a message id, made (a dummy) if there is none yet. */
static struct tnode *
tnode_get(struct thread_ctx *t, const char *id)
{
	if (t->nhashed >= t->nbuckets) {
		size_t nb = t->nbuckets ? t->nbuckets * 2 : 1024;
		struct tnode **b = calloc(nb, sizeof(*b));
		if (b == NULL)
			abort();
		for (size_t i = 0; i < t->nbuckets; i++) {
			for (struct tnode *n = t->buckets[i], *next; n != NULL;
			     n = next) {
				next = n->hnext;
				size_t h = id_hash(n->key) & (nb - 1);
				n->hnext = b[h];
				b[h] = n;
			}
		}
		free(t->buckets);
		t->buckets = b;
		t->nbuckets = nb;
	}
	size_t h = id_hash(id) & (t->nbuckets - 1);
	for (struct tnode *n = t->buckets[h]; n != NULL; n = n->hnext)
		if (strcmp(n->key, id) == 0) /* case-sensitive */
			return n;
	struct tnode *n = tnode_new(t, id);
	n->hnext = t->buckets[h];
	t->buckets[h] = n;
	t->nhashed++;
	return n;
}

/* Whether a is b or below it (linking b under a would make a loop); the
 * steps count against the budget. */
static int
is_below(struct thread_ctx *t, const struct tnode *a, const struct tnode *b)
{
	uint64_t steps = 0;
	int below = 0;
	for (const struct tnode *x = a; x != NULL; x = x->parent) {
		steps++;
		if (x == b) {
			below = 1;
			break;
		}
	}
	if (imap_search_charge(t->s, steps) < 0)
		t->over = 1;
	return below;
}

/* The nodes under root, root included, each after all of its
 * descendants; into t->order, returning how many. */
static size_t
postorder(struct thread_ctx *t, struct tnode *root)
{
	size_t sp = 0, k = 0;
	t->order = realloc(t->order, t->nnodes * sizeof(*t->order));
	t->stack = realloc(t->stack, t->nnodes * sizeof(*t->stack));
	if (t->order == NULL || t->stack == NULL)
		abort();
	t->stack[sp++] = root;
	while (sp > 0) {
		struct tnode *n = t->stack[--sp];
		t->order[k++] = n;
		for (struct tnode *c = n->child; c != NULL; c = c->next)
			t->stack[sp++] = c;
	}
	for (size_t i = 0; i < k / 2; i++) {
		struct tnode *x = t->order[i];
		t->order[i] = t->order[k - 1 - i];
		t->order[k - 1 - i] = x;
	}
	return k;
}

/* Sorts the children of n by sent date (t->stack as scratch: only
 * between walks). */
static void
sort_children(struct thread_ctx *t, struct tnode *n, struct tnode **v)
{
	size_t k = 0;
	for (struct tnode *c = n->child; c != NULL; c = c->next)
		v[k++] = c;
	if (k < 2)
		return;
	qsort(v, k, sizeof(*v), tnode_cmp);
	for (size_t i = 0; i + 1 < k; i++)
		v[i]->next = v[i + 1];
	v[k - 1]->next = NULL;
	n->child = v[0];
}

/* Step 3 for the children of n, whose own children are done. */
static void
prune(struct tnode *n, int is_root)
{
	struct tnode *c = n->child, *next, **tail = &n->child;
	for (; c != NULL; c = next) {
		next = c->next;
		if (c->msg == NULL) {
			if (c->child == NULL)
				continue; /* a dummy without children */
			if (!is_root || c->child->next == NULL) {
				/* promoted: spliced among its siblings */
				struct tnode *g = c->child;
				*tail = g;
				for (; g != NULL; g = g->next) {
					g->parent = n;
					tail = &g->next;
				}
				continue;
			}
		}
		*tail = c;
		tail = &c->next;
	}
	*tail = NULL;
}

/* A subject table entry (step 5). */
struct tsubj {
	struct sstr key;
	struct tnode *node;
	struct tsubj *next;
};

static const struct sstr *
thread_subject(const struct tnode *n)
{
	const struct titem *m = n->msg ? n->msg
				       : (n->child ? n->child->msg : NULL);
	return m != NULL ? &m->subj : NULL;
}

static struct tsubj *
subj_find(struct tsubj **tab, size_t nb, const struct sstr *k, int add,
	  struct arena *a)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < k->len; i++)
		h = (h ^ (unsigned char)k->s[i]) * 1099511628211ULL;
	struct tsubj **b = &tab[h & (nb - 1)];
	for (struct tsubj *e = *b; e != NULL; e = e->next)
		if (sstr_cmp(&e->key, k) == 0)
			return e;
	if (!add)
		return NULL;
	struct tsubj *e = arena_zalloc(a, sizeof(*e));
	e->key = *k;
	e->next = *b;
	*b = e;
	return e;
}

static void
child_prepend(struct tnode *parent, struct tnode *c)
{
	c->parent = parent;
	c->next = parent->child;
	parent->child = c;
}

/* Step 5: threads of the root with the same base subject gathered. */
static void
merge_subjects(struct thread_ctx *t, struct tnode *root)
{
	struct arena *a = &t->cmd->is->cmd_pool;
	size_t k = 0, nb = 64;
	for (struct tnode *c = root->child; c != NULL; c = c->next)
		k++;
	while (nb < k)
		nb *= 2;
	struct tsubj **tab = calloc(nb, sizeof(*tab));
	struct tnode **v = malloc((k ? k : 1) * sizeof(*v));
	/* thread subjects as they were before any merge */
	const struct sstr **ts = malloc((k ? k : 1) * sizeof(*ts));
	if (tab == NULL || v == NULL || ts == NULL)
		abort();
	k = 0;
	for (struct tnode *c = root->child; c != NULL; c = c->next) {
		ts[k] = thread_subject(c);
		v[k++] = c;
	}
	/* (B) one message per base subject */
	for (size_t i = 0; i < k; i++) {
		struct tnode *c = v[i];
		const struct sstr *subj = ts[i];
		if (subj == NULL || subj->len == 0)
			continue;
		struct tsubj *e = subj_find(tab, nb, subj, 1, a);
		if (e->node == NULL)
			e->node = c;
		else if (e->node->msg != NULL &&
			 (c->msg == NULL ||
			  (e->node->msg->reply && !c->msg->reply)))
			e->node = c;
	}
	/* (C) merge */
	struct tnode *added = NULL;
	for (size_t i = 0; i < k; i++) {
		struct tnode *c = v[i];
		const struct sstr *subj = ts[i];
		if (c->gone || subj == NULL || subj->len == 0)
			continue;
		struct tsubj *e = subj_find(tab, nb, subj, 0, a);
		struct tnode *m = e->node;
		if (m == c)
			continue;
		c->gone = 1;
		if (m->msg == NULL && c->msg == NULL) {
			for (struct tnode *g = c->child, *next; g != NULL;
			     g = next) {
				next = g->next;
				child_prepend(m, g);
			}
		} else if (m->msg == NULL ||
			   (c->msg != NULL && c->msg->reply &&
			    !m->msg->reply)) {
			child_prepend(m, c);
		} else {
			struct tnode *d = tnode_new(t, NULL);
			m->gone = 1;
			d->next = added;
			added = d;
			m->next = NULL;
			child_prepend(d, m);
			child_prepend(d, c);
			e->node = d;
		}
	}
	/* the root's children: those left, and the new dummies */
	struct tnode **tail = &root->child;
	for (size_t i = 0; i < k; i++) {
		if (v[i]->gone)
			continue;
		*tail = v[i];
		tail = &v[i]->next;
	}
	for (struct tnode *d = added, *next; d != NULL; d = next) {
		next = d->next;
		d->parent = root;
		*tail = d;
		tail = &d->next;
	}
	*tail = NULL;
	free(tab);
	free(v);
	free(ts);
}

/* THREAD=REFERENCES (RFC 5256 3); the root's children are the threads.
 * NULL when the budget ran out. */
static struct tnode *
thread_references(struct thread_ctx *t)
{
	struct tnode *root = tnode_new(t, NULL);
	/* (1) links from the references */
	for (size_t i = 0; i < t->n && !t->over; i++) {
		struct titem *it = &t->items[i];
		struct tnode *self = NULL;
		if (it->msgid != NULL) {
			self = tnode_get(t, it->msgid);
			if (self->msg != NULL)
				self = NULL; /* a duplicate: an id of its own */
		}
		if (self == NULL)
			self = tnode_new(t, NULL);
		self->msg = it;
		struct tnode *prev = NULL;
		for (unsigned r = 0; r < it->nrefs && !t->over; r++) {
			struct tnode *cur = tnode_get(t, it->refs[r]);
			/* (A) an existing parent is kept (References may
			   have been truncated); no loops */
			if (prev != NULL && cur->parent == NULL &&
			    !is_below(t, prev, cur))
				cur->parent = prev;
			prev = cur;
		}
		/* (B) the last reference is the parent */
		self->parent = NULL;
		if (prev != NULL && !is_below(t, prev, self))
			self->parent = prev;
	}
	if (t->over)
		return NULL;
	/* (2) the parentless under the root; children lists from the
	   parent links */
	for (size_t i = t->nnodes; i-- > 1;) {
		struct tnode *n = t->nodes[i];
		child_prepend(n->parent ? n->parent : root, n);
	}
	/* (3) dummies pruned, each node after its descendants */
	size_t k = postorder(t, root);
	for (size_t i = 0; i < k; i++)
		prune(t->order[i], t->order[i] == root);
	/* (4) the root's children by date, a dummy by its first child */
	for (struct tnode *c = root->child; c != NULL; c = c->next)
		if (c->msg == NULL)
			sort_children(t, c, t->stack);
	sort_children(t, root, t->stack);
	/* (5) same base subject */
	merge_subjects(t, root);
	/* (6) every set of siblings by date, the deepest first */
	k = postorder(t, root);
	struct tnode **v = malloc(k * sizeof(*v));
	if (v == NULL)
		abort();
	for (size_t i = 0; i < k; i++)
		sort_children(t, t->order[i], v);
	free(v);
	return root;
}

/* Writes the threads under root: "(a b (c d)(e))" ... */
static void
thread_write(struct thread_ctx *t, struct tnode *root, struct buf *out)
{
	size_t depth = 0;
	postorder(t, root); /* sizes t->stack */
	struct tnode **st = t->stack;
	st[depth++] = root->child;
	while (depth > 0) {
		struct tnode *c = st[depth - 1];
		if (c == NULL) {
			if (--depth > 0) {
				buf_append(out, ")", 1);
				st[depth - 1] = st[depth - 1]->next;
			}
			continue;
		}
		/* c and its chain of only children */
		buf_append(out, "(", 1);
		struct tnode *x = c;
		int first = 1;
		for (;;) {
			if (x->msg != NULL) {
				buf_printf(out, first ? "%u" : " %u",
					   x->msg->id);
				first = 0;
			}
			if (x->child == NULL || x->child->next != NULL)
				break;
			x = x->child;
		}
		if (x->child == NULL) {
			buf_append(out, ")", 1);
			st[depth - 1] = c->next;
			continue;
		}
		if (!first)
			buf_append(out, " ", 1);
		st[depth++] = x->child;
	}
}

static int
osubj_cmp(const void *va, const void *vb)
{
	const struct titem *a = *(struct titem *const *)va;
	const struct titem *b = *(struct titem *const *)vb;
	int r = sstr_cmp(&a->subj, &b->subj);
	if (r == 0)
		r = cmp_i64(a->date, b->date);
	if (r == 0)
		r = a->seq < b->seq ? -1 : a->seq > b->seq;
	return r;
}

struct othread {
	struct titem **v;
	size_t n;
};

static int
othread_cmp(const void *va, const void *vb)
{
	const struct titem *a = ((const struct othread *)va)->v[0];
	const struct titem *b = ((const struct othread *)vb)->v[0];
	int r = cmp_i64(a->date, b->date);
	return r != 0 ? r : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

/* THREAD=ORDEREDSUBJECT (RFC 5256 3): by base subject, then date; a
 * thread's first message is the parent of all the others. */
static void
thread_orderedsubject(struct thread_ctx *t, struct buf *out)
{
	if (t->n == 0)
		return;
	struct titem **v = malloc(t->n * sizeof(*v));
	struct othread *th = malloc(t->n * sizeof(*th));
	if (v == NULL || th == NULL)
		abort();
	for (size_t i = 0; i < t->n; i++)
		v[i] = &t->items[i];
	qsort(v, t->n, sizeof(*v), osubj_cmp);
	size_t nth = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (i == 0 || sstr_cmp(&v[i]->subj, &v[i - 1]->subj) != 0)
			th[nth++] = (struct othread){&v[i], 0};
		th[nth - 1].n++;
	}
	qsort(th, nth, sizeof(*th), othread_cmp);
	for (size_t i = 0; i < nth; i++) {
		buf_printf(out, "(%u", th[i].v[0]->id);
		if (th[i].n == 2)
			buf_printf(out, " %u", th[i].v[1]->id);
		else if (th[i].n > 2) {
			buf_append(out, " ", 1);
			for (size_t j = 1; j < th[i].n; j++)
				buf_printf(out, "(%u)", th[i].v[j]->id);
		}
		buf_append(out, ")", 1);
	}
	free(v);
	free(th);
}

void
imap_cmd_thread(struct imap_cmd_ctx *cmd)
{
	struct thread_ctx t = {.cmd = cmd};
	if (cmd->argc < 3) {
		imap_tagged(cmd, "BAD", "THREAD expects algorithm charset "
					"search-criteria");
		return;
	}
	if (imap_arg_is_atom(&cmd->args[0], "REFERENCES")) {
		t.references = 1;
	} else if (!imap_arg_is_atom(&cmd->args[0], "ORDEREDSUBJECT")) {
		imap_tagged(cmd, "BAD", "Unknown threading algorithm");
		return;
	}
	if (imap_search_charset(cmd, &cmd->args[1]) < 0)
		return;
	t.s = imap_search_parse(cmd, cmd->args + 2, cmd->argc - 2);
	if (t.s == NULL)
		return;
	int rc = imap_search_run(t.s, thread_hit, &t);
	struct buf out = BUF_INIT;
	if (rc == 0) {
		buf_append_str(&out, "* THREAD ");
		if (!t.references) {
			thread_orderedsubject(&t, &out);
		} else {
			struct tnode *root = thread_references(&t);
			if (root == NULL) {
				imap_search_limit_reply(t.s);
				rc = -1;
			} else {
				thread_write(&t, root, &out);
			}
		}
	}
	if (rc == 0) {
		if (buf_ptr(&out)[buf_used(&out) - 1] == ' ')
			out.len--; /* no threads: "* THREAD" */
		buf_append(&out, "\r\n", 2);
		session_write(cmd->is->s, buf_ptr(&out), buf_used(&out));
		imap_tagged(cmd, "OK", "%sTHREAD completed",
			    cmd->uid ? "UID " : "");
	}
	buf_free(&out);
	buf_free(&t.tmp);
	buf_free(&t.fold);
	buf_free(&t.id);
	free(t.items);
	free(t.refv);
	free(t.nodes);
	free(t.buckets);
	free(t.order);
	free(t.stack);
}
