/* imap_cmd_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4).
 *
 * The criteria are compiled into a tree once, then evaluated for each
 * message of the view; nesting is bounded by limits.max_nesting (the
 * parser's bound).  Text keys match case-insensitively on header values
 * (unfolded) and on the raw body. */
#define _XOPEN_SOURCE 700
#include "backend/imap/imap.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

enum skey {
	SK_ALL,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG_SET,    /* flag set */
	SK_FLAG_UNSET,
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_NONE,        /* RECENT: never */
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,
	SK_BODY,
	SK_TEXT,
	SK_SEQSET,
	SK_UIDSET,
	SK_MODSEQ,
	SK_SAVEDBEFORE,
	SK_SAVEDON,
	SK_SAVEDSINCE,
	SK_OLDER,
	SK_YOUNGER,
	SK_EMAILID,
	SK_SAVED,
	SK_COUNT
};

struct snode {
	enum skey key;
	uint32_t flag;
	uint64_t number;
	int64_t date;          /* day start, UTC */
	const char *field;     /* HEADER: field name */
	const char *str;
	struct imap_range *ranges;
	unsigned nranges;
	struct snode *a, *b;   /* AND: list via b chain; OR/NOT children */
	struct snode *next;    /* AND children */
};

struct sparse {
	struct imap_cmd_ctx *cmd;
	const struct imap_arg *args;
	unsigned argc, pos;
	const char *error;
	unsigned depth;
	int modseq_used;
};

static struct snode *parse_key(struct sparse *p);

static struct snode *
node(struct sparse *p, enum skey key)
{
	struct snode *n = arena_zalloc(&p->cmd->is->cmd_pool, sizeof(*n));
	n->key = key;
	return n;
}

static const struct imap_arg *
next_arg(struct sparse *p)
{
	if (p->pos >= p->argc) {
		p->error = "Missing search argument";
		return NULL;
	}
	return &p->args[p->pos++];
}

static const char *
next_string(struct sparse *p)
{
	const struct imap_arg *a = next_arg(p);
	if (a == NULL)
		return NULL;
	if (!imap_arg_is_astring(a)) {
		p->error = "Expected a string";
		return NULL;
	}
	return a->str;
}

static int
parse_date(const char *s, int64_t *r)
{
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int day, year;
	char m[4];
	char extra;
	if (sscanf(s, "%2d-%3s-%4d%c", &day, m, &year, &extra) != 3)
		return -1;
	for (int i = 0; i < 12; i++) {
		if (strcasecmp(m, mon[i]) == 0) {
			struct tm tm = {0};
			if (day < 1 || day > 31 || year < 1900)
				return -1;
			tm.tm_mday = day;
			tm.tm_mon = i;
			tm.tm_year = year - 1900;
			*r = (int64_t)timegm(&tm);
			return 0;
		}
	}
	return -1;
}

static const struct {
	const char *name;
	enum skey key;
	uint32_t flag;
} simple_keys[] = {
	{"ALL", SK_ALL, 0},
	{"ANSWERED", SK_FLAG_SET, STORE_F_ANSWERED},
	{"DELETED", SK_FLAG_SET, STORE_F_DELETED},
	{"DRAFT", SK_FLAG_SET, STORE_F_DRAFT},
	{"FLAGGED", SK_FLAG_SET, STORE_F_FLAGGED},
	{"SEEN", SK_FLAG_SET, STORE_F_SEEN},
	{"UNANSWERED", SK_FLAG_UNSET, STORE_F_ANSWERED},
	{"UNDELETED", SK_FLAG_UNSET, STORE_F_DELETED},
	{"UNDRAFT", SK_FLAG_UNSET, STORE_F_DRAFT},
	{"UNFLAGGED", SK_FLAG_UNSET, STORE_F_FLAGGED},
	{"UNSEEN", SK_FLAG_UNSET, STORE_F_SEEN},
	/* No message is \Recent in this server (RFC 9051 drops it). */
	{"RECENT", SK_NONE, 0},
	{"NEW", SK_NONE, 0},
	{"OLD", SK_ALL, 0},
};

static const struct {
	const char *name;
	const char *field;
} header_keys[] = {
	{"FROM", "From"}, {"TO", "To"},   {"CC", "Cc"},
	{"BCC", "Bcc"},   {"SUBJECT", "Subject"},
};

static struct snode *
parse_list(struct sparse *p, const struct imap_arg *args, unsigned argc)
{
	struct sparse sub = *p;
	sub.args = args;
	sub.argc = argc;
	sub.pos = 0;
	struct snode *and = node(p, SK_AND), **tail = &and->a;
	while (sub.pos < sub.argc) {
		struct snode *k = parse_key(&sub);
		if (k == NULL) {
			p->error = sub.error;
			return NULL;
		}
		*tail = k;
		tail = &k->next;
	}
	p->modseq_used |= sub.modseq_used;
	if (and->a == NULL) {
		p->error = "Empty search list";
		return NULL;
	}
	return and;
}

static struct snode *
parse_key(struct sparse *p)
{
	const struct imap_arg *a = next_arg(p);
	if (a == NULL)
		return NULL;
	if (++p->depth > 64) {
		p->error = "[LIMIT] Search criteria nested too deeply";
		return NULL;
	}
	struct snode *n = NULL;
	if (a->type == IMAP_ARG_LIST) {
		n = parse_list(p, a->list, a->count);
		p->depth--;
		return n;
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "Invalid search key";
		return NULL;
	}
	const char *k = a->str;
	for (size_t i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]);
	     i++) {
		if (strcasecmp(k, simple_keys[i].name) == 0) {
			n = node(p, simple_keys[i].key);
			n->flag = simple_keys[i].flag;
			goto done;
		}
	}
	for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]);
	     i++) {
		if (strcasecmp(k, header_keys[i].name) == 0) {
			n = node(p, SK_HEADER);
			n->field = header_keys[i].field;
			if ((n->str = next_string(p)) == NULL)
				return NULL;
			goto done;
		}
	}
	if (strcasecmp(k, "HEADER") == 0) {
		n = node(p, SK_HEADER);
		if ((n->field = next_string(p)) == NULL ||
		    (n->str = next_string(p)) == NULL)
			return NULL;
	} else if (strcasecmp(k, "BODY") == 0 || strcasecmp(k, "TEXT") == 0) {
		n = node(p, k[0] == 'B' || k[0] == 'b' ? SK_BODY : SK_TEXT);
		if ((n->str = next_string(p)) == NULL)
			return NULL;
	} else if (strcasecmp(k, "KEYWORD") == 0 ||
		   strcasecmp(k, "UNKEYWORD") == 0) {
		n = node(p, k[0] == 'K' || k[0] == 'k' ? SK_KEYWORD
						       : SK_UNKEYWORD);
		if ((n->str = next_string(p)) == NULL)
			return NULL;
	} else if (strcasecmp(k, "LARGER") == 0 ||
		   strcasecmp(k, "SMALLER") == 0) {
		n = node(p, k[0] == 'L' || k[0] == 'l' ? SK_LARGER : SK_SMALLER);
		const char *v = next_string(p);
		char *end;
		if (v == NULL)
			return NULL;
		n->number = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end != '\0') {
			p->error = "Invalid number";
			return NULL;
		}
	} else if (strcasecmp(k, "BEFORE") == 0 || strcasecmp(k, "ON") == 0 ||
		   strcasecmp(k, "SINCE") == 0 ||
		   strcasecmp(k, "SENTBEFORE") == 0 ||
		   strcasecmp(k, "SENTON") == 0 ||
		   strcasecmp(k, "SENTSINCE") == 0 ||
		   strcasecmp(k, "SAVEDBEFORE") == 0 ||
		   strcasecmp(k, "SAVEDON") == 0 ||
		   strcasecmp(k, "SAVEDSINCE") == 0) {
		static const struct {
			const char *name;
			enum skey key;
		} dk[] = {{"BEFORE", SK_BEFORE},         {"ON", SK_ON},
			  {"SINCE", SK_SINCE},           {"SENTBEFORE", SK_SENTBEFORE},
			  {"SENTON", SK_SENTON},         {"SENTSINCE", SK_SENTSINCE},
			  {"SAVEDBEFORE", SK_SAVEDBEFORE}, {"SAVEDON", SK_SAVEDON},
			  {"SAVEDSINCE", SK_SAVEDSINCE}};
		for (size_t i = 0; i < sizeof(dk) / sizeof(dk[0]); i++)
			if (strcasecmp(k, dk[i].name) == 0)
				n = node(p, dk[i].key);
		const char *v = next_string(p);
		if (v == NULL)
			return NULL;
		if (parse_date(v, &n->date) < 0) {
			p->error = "Invalid date";
			return NULL;
		}
	} else if (strcasecmp(k, "NOT") == 0) {
		n = node(p, SK_NOT);
		if ((n->a = parse_key(p)) == NULL)
			return NULL;
	} else if (strcasecmp(k, "OR") == 0) {
		n = node(p, SK_OR);
		if ((n->a = parse_key(p)) == NULL ||
		    (n->b = parse_key(p)) == NULL)
			return NULL;
	} else if (strcmp(k, "$") == 0) {
		n = node(p, SK_SAVED);
	} else if (strcasecmp(k, "SAVEDATESUPPORTED") == 0) {
		n = node(p, SK_ALL); /* every mailbox keeps save dates */
	} else if (strcasecmp(k, "OLDER") == 0 ||
		   strcasecmp(k, "YOUNGER") == 0) {
		/* RFC 5032 WITHIN: seconds against the internal date. */
		n = node(p, k[0] == 'O' || k[0] == 'o' ? SK_OLDER : SK_YOUNGER);
		const char *v = next_string(p);
		char *end;
		if (v == NULL)
			return NULL;
		n->number = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end != '\0' ||
		    n->number == 0) {
			p->error = "Invalid interval";
			return NULL;
		}
		n->date = (int64_t)time(NULL);
	} else if (strcasecmp(k, "EMAILID") == 0 ||
		   strcasecmp(k, "THREADID") == 0) {
		int email = k[0] == 'E' || k[0] == 'e';
		const char *v = next_string(p);
		if (v == NULL)
			return NULL;
		n = node(p, email ? SK_EMAILID : SK_NONE);
		char *end;
		if (email) {
			if (v[0] != 'M' || strlen(v) != 17) {
				n->key = SK_NONE;
			} else {
				n->number = strtoull(v + 1, &end, 16);
				if (*end != '\0')
					n->key = SK_NONE;
			}
		}
	} else if (strcasecmp(k, "MODSEQ") == 0) {
		/* RFC 7162 3.1.5: MODSEQ [entry-name entry-type] modseq */
		n = node(p, SK_MODSEQ);
		const char *v = next_string(p);
		if (v == NULL)
			return NULL;
		if (v[0] == '"' || !isdigit((unsigned char)v[0])) {
			/* entry name and type: skip both */
			if (next_string(p) == NULL ||
			    (v = next_string(p)) == NULL)
				return NULL;
		}
		char *end;
		n->number = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end != '\0') {
			p->error = "Invalid MODSEQ";
			return NULL;
		}
		p->cmd->is->enabled |= IMAP_ENABLE_CONDSTORE;
		p->modseq_used = 1;
	} else if (strcasecmp(k, "UID") == 0) {
		n = node(p, SK_UIDSET);
		const char *v = next_string(p);
		struct imap_session *is = p->cmd->is;
		uint32_t max = is->count ? is->uids[is->count - 1] : 0;
		if (v == NULL)
			return NULL;
		if (imap_seqset_parse(v, max, &is->cmd_pool, &n->ranges,
				      &n->nranges) < 0) {
			p->error = "Invalid UID set";
			return NULL;
		}
	} else if (isdigit((unsigned char)k[0]) || k[0] == '*') {
		n = node(p, SK_SEQSET);
		struct imap_session *is = p->cmd->is;
		if (imap_seqset_parse(k, (uint32_t)is->count, &is->cmd_pool,
				      &n->ranges, &n->nranges) < 0) {
			p->error = "Invalid sequence set";
			return NULL;
		}
	} else {
		p->error = "Unknown search key";
		return NULL;
	}
done:
	p->depth--;
	return n;
}

/* -- evaluation -----------------------------------------------------------*/

struct smsg {
	struct imap_session *is;
	uint32_t seq, uid;
	const struct store_msg_rec *rec;
	const char *body;       /* loaded on demand */
	size_t blen;
	size_t hlen;
	int loaded;
	int64_t sent;           /* Date: header, -1 unknown */
	int sent_parsed;
	struct store *st;
	MDB_txn *txn;
	const char *kwnames;
	size_t kwlen;
	int error;
};

static int
load_body(struct smsg *m)
{
	if (m->loaded)
		return m->body != NULL;
	m->loaded = 1;
	const char *err;
	if (store_body_get(m->st, m->txn, m->rec->body_id, &m->body, &m->blen,
			   &err) < 0) {
		m->error = 1;
		m->body = NULL;
		return 0;
	}
	m->hlen = m->blen;
	for (size_t i = 0; i + 1 < m->blen; i++) {
		if (m->body[i] == '\n' &&
		    (m->body[i + 1] == '\n' ||
		     (m->body[i + 1] == '\r' && i + 2 < m->blen &&
		      m->body[i + 2] == '\n'))) {
			m->hlen = i + 1;
			break;
		}
	}
	return 1;
}

static int
contains_ci(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);
	if (nlen == 0)
		return 1;
	if (nlen > hlen)
		return 0;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return 1;
	return 0;
}

/* Calls fn for each value of header field (unfolded into a buffer). */
static int
header_match(struct smsg *m, const char *field, const char *needle)
{
	if (!load_body(m))
		return 0;
	size_t flen = strlen(field);
	const char *h = m->body;
	size_t i = 0;
	struct buf v = BUF_INIT;
	int found = 0;
	while (i < m->hlen && !found) {
		size_t start = i;
		for (;;) {
			const char *nl = memchr(h + i, '\n', m->hlen - i);
			i = nl ? (size_t)(nl - h) + 1 : m->hlen;
			if (i >= m->hlen || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		if (i - start > flen && h[start + flen] == ':' &&
		    strncasecmp(h + start, field, flen) == 0) {
			buf_reset(&v);
			for (size_t j = start + flen + 1; j < i; j++)
				if (h[j] != '\r' && h[j] != '\n')
					buf_append(&v, &h[j], 1);
			found = contains_ci(buf_ptr(&v), buf_used(&v), needle);
		}
	}
	buf_free(&v);
	return found;
}

static int64_t
sent_date(struct smsg *m)
{
	if (m->sent_parsed)
		return m->sent;
	m->sent_parsed = 1;
	m->sent = -1;
	if (!load_body(m))
		return -1;
	const char *h = m->body;
	for (size_t i = 0; i + 5 < m->hlen;) {
		if ((i == 0 || h[i - 1] == '\n') &&
		    strncasecmp(h + i, "Date:", 5) == 0) {
			char tmp[128];
			size_t j = i + 5, k = 0;
			while (j < m->hlen && h[j] != '\r' && h[j] != '\n' &&
			       k + 1 < sizeof(tmp))
				tmp[k++] = h[j++];
			tmp[k] = '\0';
			struct tm tm = {0};
			const char *s = tmp;
			while (*s == ' ' || *s == '\t')
				s++;
			const char *e = strptime(s, "%a, %d %b %Y", &tm);
			if (e == NULL)
				e = strptime(s, "%d %b %Y", &tm);
			if (e != NULL)
				m->sent = (int64_t)timegm(&tm);
			return m->sent;
		}
		const char *nl = memchr(h + i, '\n', m->hlen - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - h) + 1;
	}
	return -1;
}

static int64_t
day_of(int64_t t)
{
	return t - ((t % 86400) + 86400) % 86400;
}

static int
keyword_set(const struct smsg *m, const char *kw)
{
	size_t off = 0;
	for (unsigned b = 0; b < STORE_MAX_KEYWORDS && off < m->kwlen; b++) {
		const char *name = m->kwnames + off;
		if (strcasecmp(name, kw) == 0)
			return (m->rec->keywords >> b) & 1;
		off += strlen(name) + 1;
	}
	return 0;
}

static int
eval(const struct snode *n, struct smsg *m)
{
	int64_t d;
	switch (n->key) {
	case SK_ALL:
		return 1;
	case SK_NONE:
		return 0;
	case SK_AND:
		for (const struct snode *c = n->a; c != NULL; c = c->next)
			if (!eval(c, m))
				return 0;
		return 1;
	case SK_OR:
		return eval(n->a, m) || eval(n->b, m);
	case SK_NOT:
		return !eval(n->a, m);
	case SK_FLAG_SET:
		return (m->rec->flags & n->flag) != 0;
	case SK_FLAG_UNSET:
		return (m->rec->flags & n->flag) == 0;
	case SK_KEYWORD:
		return keyword_set(m, n->str);
	case SK_UNKEYWORD:
		return !keyword_set(m, n->str);
	case SK_LARGER:
		return m->rec->size > n->number;
	case SK_SMALLER:
		return m->rec->size < n->number;
	case SK_BEFORE:
		return day_of(m->rec->internaldate) < n->date;
	case SK_ON:
		return day_of(m->rec->internaldate) == n->date;
	case SK_SINCE:
		return day_of(m->rec->internaldate) >= n->date;
	case SK_SENTBEFORE:
		d = sent_date(m);
		return d >= 0 && day_of(d) < n->date;
	case SK_SENTON:
		d = sent_date(m);
		return d >= 0 && day_of(d) == n->date;
	case SK_SENTSINCE:
		d = sent_date(m);
		return d >= 0 && day_of(d) >= n->date;
	case SK_HEADER:
		return header_match(m, n->field, n->str);
	case SK_BODY:
		return load_body(m) && contains_ci(m->body + m->hlen,
						   m->blen - m->hlen, n->str);
	case SK_TEXT:
		return load_body(m) && contains_ci(m->body, m->blen, n->str);
	case SK_SEQSET:
		return imap_seqset_contains(n->ranges, n->nranges, m->seq);
	case SK_UIDSET:
		return imap_seqset_contains(n->ranges, n->nranges, m->uid);
	case SK_MODSEQ:
		return m->rec->modseq >= n->number;
	case SK_SAVEDBEFORE:
		return day_of(m->rec->savedate) < n->date;
	case SK_SAVEDON:
		return day_of(m->rec->savedate) == n->date;
	case SK_SAVEDSINCE:
		return day_of(m->rec->savedate) >= n->date;
	case SK_OLDER:
		return m->rec->internaldate <= n->date - (int64_t)n->number;
	case SK_YOUNGER:
		return m->rec->internaldate >= n->date - (int64_t)n->number;
	case SK_EMAILID:
		return m->rec->body_id == n->number;
	case SK_SAVED:
		for (size_t i = 0; i < m->is->nsaved; i++)
			if (m->is->saved[i] == m->uid)
				return 1;
		return 0;
	case SK_COUNT:
		break;
	}
	abort();
}

void
imap_cmd_search(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	struct sparse p = {cmd, cmd->args, cmd->argc, 0, NULL, 0, 0};
	/* ESEARCH (RFC 4731) and SEARCHRES (RFC 5182): RETURN (...) */
	enum { R_MIN = 1, R_MAX = 2, R_ALL = 4, R_COUNT = 8, R_SAVE = 16 };
	unsigned ret = 0;
	int esearch = 0;
	if (cmd->argc >= 2 && imap_arg_is_atom(&cmd->args[0], "RETURN")) {
		const struct imap_arg *r = &cmd->args[1];
		if (r->type != IMAP_ARG_LIST) {
			imap_tagged(cmd, "BAD", "RETURN expects a list");
			return;
		}
		for (unsigned i = 0; i < r->count; i++) {
			if (imap_arg_is_atom(&r->list[i], "MIN"))
				ret |= R_MIN;
			else if (imap_arg_is_atom(&r->list[i], "MAX"))
				ret |= R_MAX;
			else if (imap_arg_is_atom(&r->list[i], "ALL"))
				ret |= R_ALL;
			else if (imap_arg_is_atom(&r->list[i], "COUNT"))
				ret |= R_COUNT;
			else if (imap_arg_is_atom(&r->list[i], "SAVE"))
				ret |= R_SAVE;
			else {
				imap_tagged(cmd, "BAD", "Unknown RETURN option");
				return;
			}
		}
		if (ret == 0)
			ret = R_ALL;
		esearch = ret != R_SAVE;
		p.pos = 2;
	}
	if (cmd->argc >= p.pos + 2 &&
	    imap_arg_is_atom(&cmd->args[p.pos], "CHARSET")) {
		const char *cs = cmd->args[p.pos + 1].str;
		if (!imap_arg_is_astring(&cmd->args[p.pos + 1]) ||
		    (strcasecmp(cs, "UTF-8") != 0 &&
		     strcasecmp(cs, "US-ASCII") != 0)) {
			imap_tagged(cmd, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
					       "Unsupported charset");
			return;
		}
		p.pos += 2;
	}
	if (ret == 0 && (is->enabled & IMAP_ENABLE_REV2)) {
		/* IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 6.4.4). */
		ret = R_ALL;
		esearch = 1;
	}
	if (p.pos >= p.argc) {
		imap_tagged(cmd, "BAD", "Missing search criteria");
		return;
	}
	struct snode *root = parse_list(&p, p.args + p.pos, p.argc - p.pos);
	if (root == NULL) {
		imap_tagged(cmd, "BAD", "%s", p.error ? p.error : "Invalid search");
		return;
	}
	MDB_txn *txn = NULL;
	const char *err, *kwnames;
	size_t kwlen;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_keywords_get(st, txn, is->mbox.mbox_id, &kwnames, &kwlen,
			       &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	uint64_t maxmodseq = 0;
	uint32_t *hits = malloc((is->count ? is->count : 1) * sizeof(*hits));
	uint32_t *hit_uids = malloc((is->count ? is->count : 1) *
				    sizeof(*hit_uids));
	size_t nhits = 0;
	if (hits == NULL || hit_uids == NULL)
		abort();
	for (size_t i = 0; i < is->count; i++) {
		struct store_msg_rec rec;
		int rc = store_message_get(st, txn, is->mbox.mbox_id,
					   is->uids[i], &rec, &err);
		if (rc != 0)
			continue;
		struct smsg m = {.is = is,
				 .seq = (uint32_t)i + 1,
				 .uid = is->uids[i],
				 .rec = &rec,
				 .st = st,
				 .txn = txn,
				 .kwnames = kwnames,
				 .kwlen = kwlen};
		if (eval(root, &m)) {
			hits[nhits] = cmd->uid ? m.uid : m.seq;
			hit_uids[nhits++] = m.uid;
			if (rec.modseq > maxmodseq)
				maxmodseq = rec.modseq;
		}
	}
	store_read_end(&txn);
	if (ret & R_SAVE) {
		free(is->saved);
		is->saved = hit_uids;
		is->nsaved = nhits;
		hit_uids = NULL;
	}
	struct buf out = BUF_INIT;
	if (esearch) {
		buf_printf(&out, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
			   cmd->uid ? " UID" : "");
		if ((ret & R_MIN) && nhits > 0)
			buf_printf(&out, " MIN %u", hits[0]);
		if ((ret & R_MAX) && nhits > 0)
			buf_printf(&out, " MAX %u", hits[nhits - 1]);
		if (ret & R_COUNT)
			buf_printf(&out, " COUNT %zu", nhits);
		if ((ret & R_ALL) && nhits > 0) {
			buf_append_str(&out, " ALL ");
			imap_uid_set_format(hits, nhits, &out);
		}
		if (p.modseq_used && maxmodseq > 0)
			buf_printf(&out, " MODSEQ %llu",
				   (unsigned long long)maxmodseq);
		buf_append(&out, "\r\n", 2);
	} else if (!(ret & R_SAVE)) {
		buf_append_str(&out, "* SEARCH");
		for (size_t i = 0; i < nhits; i++)
			buf_printf(&out, " %u", hits[i]);
		if (p.modseq_used && maxmodseq > 0)
			buf_printf(&out, " (MODSEQ %llu)",
				   (unsigned long long)maxmodseq);
		buf_append(&out, "\r\n", 2);
	}
	free(hits);
	free(hit_uids);
	session_write(is->s, buf_ptr(&out), buf_used(&out));
	buf_free(&out);
	imap_tagged(cmd, "OK", "%sSEARCH completed", cmd->uid ? "UID " : "");
}
