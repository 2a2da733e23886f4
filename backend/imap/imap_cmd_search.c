/* imap_cmd_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051
 * 6.4.4), and the message access that SORT and THREAD share.
 *
 * The criteria are compiled into a tree once, then evaluated for each
 * message of the view in one read transaction; nesting is bounded by the
 * parser (limits.max_nesting) and here (64 levels).
 *
 * Text keys match case-insensitively on decoded text: both the needle and
 * the text are folded with imap_casefold() (i;unicode-casemap, RFC 5051),
 * then the needle is looked for as a substring.
 *  - FROM, TO, CC, BCC, SUBJECT and HEADER look at every field of that
 *    name in the message header, unfolded and with RFC 2047 encoded words
 *    decoded to UTF-8 (mime_decode_header()).  Address fields are matched
 *    whole, so display names and addresses both match.
 *  - BODY looks at the text parts (text/..., or no Content-Type) of the
 *    message and of the messages nested in it, each decoded from base64 or
 *    quoted-printable and converted from its charset to UTF-8 (unlabelled
 *    8-bit text: UTF-8 when valid, else Windows-1252), and at the headers
 *    of nested messages.  Parts that are not text are not searched.
 *  - TEXT looks at all that and at the message header, both as written
 *    and decoded.
 * The MIME structure is the one stored at delivery (bodymeta), or a parse
 * of the message when none was stored.
 *
 * Work is bounded: each command may read and decode at most
 * limits.search_max_bytes of messages (a header counts once per message,
 * a parse of a message without stored structure counts its size, a
 * decoded part its encoded size); beyond, it ends with NO [LIMIT].  A
 * search that needs no message text (flags, sizes, dates of arrival, sets)
 * reads only the message records. */
#define _XOPEN_SOURCE 700
#include "backend/imap/imap.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/mime/mime.h"
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
	const char *fold;      /* text keys: str folded (imap_casefold) */
	size_t flen;
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

/* Folds the needle of a text key once, for every message. */
static void
fold_needle(struct sparse *p, struct snode *n)
{
	struct buf b = BUF_INIT;
	imap_casefold(n->str, strlen(n->str), &b);
	n->flen = buf_used(&b);
	n->fold = arena_strndup(&p->cmd->is->cmd_pool,
				n->flen ? buf_ptr(&b) : "", n->flen);
	buf_free(&b);
}

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
			fold_needle(p, n);
			goto done;
		}
	}
	if (strcasecmp(k, "HEADER") == 0) {
		n = node(p, SK_HEADER);
		if ((n->field = next_string(p)) == NULL ||
		    (n->str = next_string(p)) == NULL)
			return NULL;
		fold_needle(p, n);
	} else if (strcasecmp(k, "BODY") == 0 || strcasecmp(k, "TEXT") == 0) {
		n = node(p, k[0] == 'B' || k[0] == 'b' ? SK_BODY : SK_TEXT);
		if ((n->str = next_string(p)) == NULL)
			return NULL;
		fold_needle(p, n);
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

/* -- dates --------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Skips white space and (nested) comments. */
static const char *
skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		int depth = 0;
		while (*p != '\0') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
			p++;
		}
	}
}

/* Up to max digits; -1 if none. */
static int
read_num(const char **pp, int max, int *digits_r)
{
	const char *p = *pp;
	int v = 0, n = 0;
	while (n < max && *p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n == 0)
		return -1;
	*pp = p;
	if (digits_r != NULL)
		*digits_r = n;
	return v;
}

int
imap_date_parse(const char *s, int64_t *utc_r, int64_t *day_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"UT", 0},   {"GMT", 0},  {"Z", 0},    {"EST", -5},
		     {"EDT", -4}, {"CST", -6}, {"CDT", -5}, {"MST", -7},
		     {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
	const char *p = skip_cfws(s);
	/* [day-of-week ","] */
	if (isalpha((unsigned char)*p)) {
		while (isalpha((unsigned char)*p))
			p++;
		p = skip_cfws(p);
		if (*p == ',')
			p = skip_cfws(p + 1);
	}
	int day = read_num(&p, 2, NULL), ndig;
	if (day < 1 || day > 31)
		return -1;
	p = skip_cfws(p);
	if (*p == '-')
		p++;
	char mon[4] = {0};
	for (int i = 0; i < 3; i++) {
		if (!isalpha((unsigned char)p[i]))
			return -1;
		mon[i] = (char)tolower((unsigned char)p[i]);
	}
	const char *mp = strstr(months, mon);
	if (mp == NULL || (mp - months) % 3 != 0)
		return -1;
	unsigned month = (unsigned)(mp - months) / 3 + 1;
	p += 3;
	while (isalpha((unsigned char)*p))
		p++;
	p = skip_cfws(p);
	if (*p == '-')
		p++;
	int year = read_num(&p, 4, &ndig);
	if (year < 0)
		return -1;
	if (ndig == 2)
		year += year < 50 ? 2000 : 1900; /* RFC 5322 4.3 */
	else if (ndig == 3)
		year += 1900;
	if (day > 28) {
		static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30,
						      31, 31, 30, 31, 30, 31};
		int leap = (year % 4 == 0 && year % 100 != 0) ||
			   year % 400 == 0;
		if (day > mdays[month - 1] || (month == 2 && day == 29 && !leap))
			return -1;
	}
	int64_t days = days_from_civil(year, month, (unsigned)day);
	*day_r = days * 86400;
	*utc_r = *day_r;
	/* time: hour ":" minute [":" second]; a bad one is 00:00:00 */
	p = skip_cfws(p);
	int hh = read_num(&p, 2, NULL), mm = -1, ss = 0;
	if (hh >= 0 && *p == ':') {
		p++;
		mm = read_num(&p, 2, NULL);
		if (mm >= 0 && *p == ':') {
			p++;
			ss = read_num(&p, 2, NULL);
		}
	}
	if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return 0;
	int64_t t = *day_r + hh * 3600 + mm * 60 + ss;
	/* zone: ("+" / "-") 4DIGIT, or an obsolete name; a bad one is UTC */
	p = skip_cfws(p);
	int off = 0;
	if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1])) {
		const char *z = p + 1;
		int v = read_num(&z, 4, &ndig);
		if (ndig == 4 && v % 100 < 60)
			off = (*p == '-' ? -1 : 1) * ((v / 100) * 3600 +
						      (v % 100) * 60);
	} else if (isalpha((unsigned char)*p)) {
		char z[4];
		size_t n = 0;
		while (isalpha((unsigned char)p[n]) && n < 4)
			n++;
		if (n < 4) {
			for (size_t i = 0; i < n; i++)
				z[i] = (char)toupper((unsigned char)p[i]);
			z[n] = '\0';
			for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]);
			     i++)
				if (strcmp(z, zones[i].name) == 0)
					off = zones[i].hours * 3600;
		}
	}
	*utc_r = t - off;
	return 0;
}

/* -- messages ------------------------------------------------------------ */

struct imap_search {
	struct imap_cmd_ctx *cmd;
	struct snode *root;
	int modseq_used;
	uint64_t maxmodseq;
	uint64_t budget; /* units left */
	int over;        /* the budget ran out */
	int error;       /* a store error was logged */
	struct store *st;
	MDB_txn *txn;
	const char *kwnames;
	size_t kwlen;
	struct arena pool; /* one message's, cleared between messages */
	struct buf tmp, tmp2, fold, htext, btext;
};

struct imap_msg {
	struct imap_search *s;
	uint32_t seq, uid;
	struct store_msg_rec rec;
	const char *data; /* the bytes, loaded on demand */
	size_t len;
	size_t hlen;      /* header, up to the blank line */
	int loaded;       /* 0 not yet, 1 loaded, -1 failed */
	int hdr_charged;
	struct mime_msg *mime; /* whole message */
	int mime_state;
	struct imap_envelope env;
	int env_state;
	int htext_state, btext_state; /* folded texts in s->htext, s->btext */
	int64_t sent_day;
	int sent_state;
};

int
imap_search_charge(struct imap_search *s, uint64_t n)
{
	if (s->over || n > s->budget) {
		s->over = 1;
		s->budget = 0;
		return -1;
	}
	s->budget -= n;
	return 0;
}

void
imap_search_limit_reply(struct imap_search *s)
{
	imap_tagged(s->cmd, "NO",
		    "[LIMIT] %s would read more than %llu bytes of messages",
		    s->cmd->name,
		    (unsigned long long)s->cmd->is->s->be->cfg
			    .limits_search_max_bytes);
}

uint32_t
imap_msg_seq(const struct imap_msg *m)
{
	return m->seq;
}

uint32_t
imap_msg_uid(const struct imap_msg *m)
{
	return m->uid;
}

const struct store_msg_rec *
imap_msg_rec(const struct imap_msg *m)
{
	return &m->rec;
}

static int
msg_load(struct imap_msg *m)
{
	if (m->loaded)
		return m->loaded > 0;
	m->loaded = -1;
	const char *err;
	if (store_body_get(m->s->st, m->s->txn, m->rec.body_id, &m->data,
			   &m->len, &err) < 0) {
		log_error("session=%s store error=\"%s\"", m->s->cmd->is->s->id,
			  err);
		m->s->error = 1;
		return 0;
	}
	m->hlen = mime_header_len(m->data, m->len);
	m->loaded = 1;
	return 1;
}

/* The bytes, with the header charged once. */
static int
msg_header_load(struct imap_msg *m)
{
	if (!msg_load(m))
		return 0;
	if (!m->hdr_charged) {
		if (imap_search_charge(m->s, m->hlen) < 0)
			return 0;
		m->hdr_charged = 1;
	}
	return 1;
}

/* The stored MIME structure, into m->mime; 0 if there is none. */
static int
msg_mime_cached(struct imap_msg *m)
{
	const void *blob;
	size_t blen;
	const char *err;
	int rc = store_bodymeta_get(m->s->st, m->s->txn, m->rec.body_id, &blob,
				    &blen, &err);
	if (rc < 0)
		log_error("session=%s store error=\"%s\"", m->s->cmd->is->s->id,
			  err);
	if (rc != 0)
		return 0;
	if (mime_cache_load(&m->s->pool, blob, blen, m->len, &m->mime, &err) <
	    0) {
		log_warn("session=%s uid=%u bodymeta refused: %s",
			 m->s->cmd->is->s->id, m->uid, err);
		m->mime = NULL;
		return 0;
	}
	return 1;
}

static struct mime_msg *
msg_mime(struct imap_msg *m)
{
	if (m->mime_state)
		return m->mime;
	m->mime_state = 1;
	if (!msg_load(m) || msg_mime_cached(m))
		return m->mime;
	const char *err;
	if (imap_search_charge(m->s, m->len) < 0 ||
	    mime_parse(&m->s->pool, m->data, m->len, &m->mime, &err) < 0)
		m->mime = NULL;
	return m->mime;
}

const char *
imap_msg_header(struct imap_msg *m, const char *name, int *over_r)
{
	*over_r = 0;
	if (!msg_header_load(m)) {
		*over_r = m->s->over || m->s->error;
		return NULL;
	}
	size_t pos = 0;
	struct mime_hfield f;
	while (mime_header_next(m->data, m->hlen, &pos, &f)) {
		if (!mime_hfield_is(&f, name))
			continue;
		char *v = arena_alloc(&m->s->pool, f.vlen + 1);
		size_t n = 0;
		for (size_t i = 0; i < f.vlen; i++)
			if (f.val[i] != '\r' && f.val[i] != '\n')
				v[n++] = f.val[i];
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		v[n] = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		return v;
	}
	return NULL;
}

/* Decoded, folded value of a field into s->fold. */
static void
fold_field(struct imap_search *s, const struct mime_hfield *f)
{
	buf_reset(&s->tmp);
	buf_reset(&s->fold);
	mime_decode_header(f->val, f->vlen, &s->tmp);
	imap_casefold(buf_ptr(&s->tmp), buf_used(&s->tmp), &s->fold);
}

static int
fold_contains(const struct buf *b, const struct snode *n)
{
	if (n->flen == 0)
		return 1;
	return buf_used(b) >= n->flen &&
	       memmem(buf_ptr(b), buf_used(b), n->fold, n->flen) != NULL;
}

static int
match_header(struct imap_msg *m, const struct snode *n)
{
	if (!msg_header_load(m))
		return 0;
	size_t pos = 0;
	struct mime_hfield f;
	while (mime_header_next(m->data, m->hlen, &pos, &f)) {
		if (!mime_hfield_is(&f, n->field))
			continue;
		if (n->flen == 0)
			return 1;
		fold_field(m->s, &f);
		if (fold_contains(&m->s->fold, n))
			return 1;
	}
	return 0;
}

/* Appends a header block to out, decoded and folded field by field. */
static void
fold_header_fields(struct imap_search *s, const char *h, size_t len,
		   struct buf *out)
{
	size_t pos = 0;
	struct mime_hfield f;
	while (mime_header_next(h, len, &pos, &f)) {
		fold_field(s, &f);
		imap_casefold(f.name, f.nlen, out);
		buf_append(out, ": ", 2);
		buf_append(out, buf_ptr(&s->fold), buf_used(&s->fold));
		buf_append(out, "\n", 1);
	}
}

/* TEXT's view of the header: as written, then decoded. */
static int
htext_load(struct imap_msg *m)
{
	struct imap_search *s = m->s;
	if (m->htext_state)
		return m->htext_state > 0;
	m->htext_state = -1;
	if (!msg_header_load(m))
		return 0;
	buf_reset(&s->htext);
	imap_casefold(m->data, m->hlen, &s->htext);
	buf_append(&s->htext, "\n", 1);
	fold_header_fields(s, m->data, m->hlen, &s->htext);
	m->htext_state = 1;
	return 1;
}

static int
token_is(const char *v, const char *word)
{
	if (v == NULL)
		return 0;
	while (*v == ' ' || *v == '\t' || *v == '"')
		v++;
	size_t n = strlen(word);
	if (strncasecmp(v, word, n) != 0)
		return 0;
	for (v += n; *v != '\0'; v++)
		if (*v != ' ' && *v != '\t' && *v != '"')
			return 0;
	return 1;
}

/* One text part, decoded to UTF-8 and folded onto s->btext. */
static int
btext_part(struct imap_msg *m, const struct mime_part_info *pi, uint32_t idx)
{
	struct imap_search *s = m->s;
	if (imap_search_charge(s, pi->body_len) < 0)
		return -1;
	const char *body = m->data + pi->body_off;
	struct buf *text = &s->tmp;
	buf_reset(&s->tmp);
	if (token_is(pi->cte, "base64"))
		mime_decode_base64(body, pi->body_len, &s->tmp);
	else if (token_is(pi->cte, "quoted-printable"))
		mime_decode_qp(body, pi->body_len, &s->tmp);
	else
		buf_append(&s->tmp, body, pi->body_len);
	const char *cs = mime_part_param(m->mime, idx, "charset", 0);
	int utf8 = token_is(cs, "utf-8") || token_is(cs, "utf8");
	int ascii = cs == NULL || token_is(cs, "us-ascii") || *cs == '\0';
	if (ascii && !imap_utf8_valid(buf_ptr(&s->tmp), buf_used(&s->tmp)))
		cs = "windows-1252";
	else if (ascii)
		utf8 = 1;
	if (!utf8) {
		buf_reset(&s->tmp2);
		if (mime_decode_charset(cs, buf_ptr(&s->tmp), buf_used(&s->tmp),
					&s->tmp2) == 0)
			text = &s->tmp2;
	}
	imap_casefold(buf_ptr(text), buf_used(text), &s->btext);
	buf_append(&s->btext, "\n", 1);
	return 0;
}

/* BODY's view: text parts and nested headers, decoded and folded. */
static int
btext_load(struct imap_msg *m)
{
	struct imap_search *s = m->s;
	if (m->btext_state)
		return m->btext_state > 0;
	m->btext_state = -1;
	struct mime_msg *mm = msg_mime(m);
	if (mm == NULL)
		return 0;
	buf_reset(&s->btext);
	uint32_t n = mime_part_count(mm);
	for (uint32_t idx = 0; idx < n; idx++) {
		struct mime_part_info pi, parent;
		if (mime_part_get(mm, idx, &pi) < 0)
			break;
		if (pi.parent != MIME_NONE &&
		    mime_part_get(mm, pi.parent, &parent) == 0 &&
		    (parent.flags & MIME_PART_MESSAGE)) {
			/* a nested message: its header is body text */
			if (imap_search_charge(s, pi.hdr_len) < 0)
				return 0;
			fold_header_fields(s, m->data + pi.hdr_off, pi.hdr_len,
					   &s->btext);
		}
		if (pi.flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE) ||
		    !(pi.flags & MIME_PART_TEXT))
			continue;
		if (btext_part(m, &pi, idx) < 0)
			return 0;
	}
	m->btext_state = 1;
	return 1;
}

static int64_t
sent_day(struct imap_msg *m)
{
	if (m->sent_state)
		return m->sent_day;
	m->sent_state = 1;
	m->sent_day = -1;
	int over;
	const char *v = imap_msg_header(m, "Date", &over);
	int64_t utc, day;
	if (v != NULL && imap_date_parse(v, &utc, &day) == 0)
		m->sent_day = day;
	return m->sent_day;
}

/* -- ENVELOPE text, read back ---------------------------------------------- */

struct envrd {
	const char *p, *end;
	struct arena *a;
};

static void
env_space(struct envrd *r)
{
	while (r->p < r->end && *r->p == ' ')
		r->p++;
}

/* An nstring into *s_r (NULL for NIL); -1 on a syntax error. */
static int
env_nstring(struct envrd *r, const char **s_r)
{
	env_space(r);
	if (r->end - r->p >= 3 && memcmp(r->p, "NIL", 3) == 0) {
		r->p += 3;
		*s_r = NULL;
		return 0;
	}
	if (r->p < r->end && *r->p == '"') {
		char *v = arena_alloc(r->a, (size_t)(r->end - r->p));
		size_t n = 0;
		for (r->p++; r->p < r->end && *r->p != '"'; r->p++) {
			if (*r->p == '\\' && r->p + 1 < r->end)
				r->p++;
			v[n++] = *r->p;
		}
		if (r->p >= r->end)
			return -1;
		r->p++;
		v[n] = '\0';
		*s_r = v;
		return 0;
	}
	if (r->p < r->end && *r->p == '{') {
		char *e;
		unsigned long long n = strtoull(r->p + 1, &e, 10);
		if (e >= r->end || *e != '}' || (size_t)(r->end - e) < 3 ||
		    n > (unsigned long long)(r->end - e - 3))
			return -1;
		r->p = e + 3; /* "}\r\n" */
		*s_r = arena_strndup(r->a, r->p, (size_t)n);
		r->p += n;
		return 0;
	}
	return -1;
}

static int
env_char(struct envrd *r, char c)
{
	env_space(r);
	if (r->p >= r->end || *r->p != c)
		return -1;
	r->p++;
	return 0;
}

/* An address list, keeping its first address. */
static int
env_addrs(struct envrd *r, struct imap_env_addr *first)
{
	memset(first, 0, sizeof(*first));
	env_space(r);
	if (r->end - r->p >= 3 && memcmp(r->p, "NIL", 3) == 0) {
		r->p += 3;
		return 0;
	}
	if (env_char(r, '(') < 0)
		return -1;
	for (int i = 0;; i++) {
		env_space(r);
		if (r->p < r->end && *r->p == ')') {
			r->p++;
			return 0;
		}
		struct imap_env_addr a;
		const char *adl;
		if (env_char(r, '(') < 0 || env_nstring(r, &a.name) < 0 ||
		    env_nstring(r, &adl) < 0 || env_nstring(r, &a.mailbox) < 0 ||
		    env_nstring(r, &a.host) < 0 || env_char(r, ')') < 0)
			return -1;
		if (i == 0)
			*first = a;
	}
}

static int
env_parse(const char *text, size_t len, struct arena *a,
	  struct imap_envelope *e)
{
	struct envrd r = {text, text + len, a};
	struct imap_env_addr skip;
	memset(e, 0, sizeof(*e));
	if (env_char(&r, '(') < 0 || env_nstring(&r, &e->date) < 0 ||
	    env_nstring(&r, &e->subject) < 0 || env_addrs(&r, &e->from) < 0 ||
	    env_addrs(&r, &skip) < 0 || env_addrs(&r, &skip) < 0 ||
	    env_addrs(&r, &e->to) < 0 || env_addrs(&r, &e->cc) < 0 ||
	    env_addrs(&r, &skip) < 0 || env_nstring(&r, &e->in_reply_to) < 0 ||
	    env_nstring(&r, &e->message_id) < 0 || env_char(&r, ')') < 0) {
		memset(e, 0, sizeof(*e));
		return -1;
	}
	return 0;
}

const struct imap_envelope *
imap_msg_envelope(struct imap_msg *m)
{
	struct imap_search *s = m->s;
	if (m->env_state)
		return m->env_state > 0 ? &m->env : NULL;
	m->env_state = -1;
	if (!msg_load(m))
		return NULL;
	struct mime_msg *mm = m->mime;
	if (mm == NULL && !m->mime_state && msg_mime_cached(m)) {
		m->mime_state = 1;
		mm = m->mime;
	}
	if (mm == NULL) {
		/* The envelope is the header's: parse only that. */
		const char *err;
		if (!msg_header_load(m) ||
		    mime_parse(&s->pool, m->data, m->hlen, &mm, &err) < 0)
			return NULL;
	}
	buf_reset(&s->tmp);
	mime_imap_envelope(mm, &s->tmp);
	if (imap_search_charge(s, buf_used(&s->tmp)) < 0)
		return NULL;
	if (env_parse(buf_ptr(&s->tmp), buf_used(&s->tmp), &s->pool,
		      &m->env) < 0)
		log_warn("session=%s uid=%u unreadable envelope",
			 s->cmd->is->s->id, m->uid);
	m->env_state = 1;
	return &m->env;
}

/* -- evaluation -----------------------------------------------------------*/

static int64_t
day_of(int64_t t)
{
	return t - ((t % 86400) + 86400) % 86400;
}

static int
keyword_set(const struct imap_msg *m, const char *kw)
{
	size_t off = 0;
	for (unsigned b = 0; b < STORE_MAX_KEYWORDS && off < m->s->kwlen;
	     b++) {
		const char *name = m->s->kwnames + off;
		if (strcasecmp(name, kw) == 0)
			return (m->rec.keywords >> b) & 1;
		off += strlen(name) + 1;
	}
	return 0;
}

static int
eval(const struct snode *n, struct imap_msg *m)
{
	int64_t d;
	if (m->s->over || m->s->error)
		return 0;
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
		return (m->rec.flags & n->flag) != 0;
	case SK_FLAG_UNSET:
		return (m->rec.flags & n->flag) == 0;
	case SK_KEYWORD:
		return keyword_set(m, n->str);
	case SK_UNKEYWORD:
		return !keyword_set(m, n->str);
	case SK_LARGER:
		return m->rec.size > n->number;
	case SK_SMALLER:
		return m->rec.size < n->number;
	case SK_BEFORE:
		return day_of(m->rec.internaldate) < n->date;
	case SK_ON:
		return day_of(m->rec.internaldate) == n->date;
	case SK_SINCE:
		return day_of(m->rec.internaldate) >= n->date;
	case SK_SENTBEFORE:
		d = sent_day(m);
		return d != -1 && d < n->date;
	case SK_SENTON:
		d = sent_day(m);
		return d != -1 && d == n->date;
	case SK_SENTSINCE:
		d = sent_day(m);
		return d != -1 && d >= n->date;
	case SK_HEADER:
		return match_header(m, n);
	case SK_BODY:
		return btext_load(m) && fold_contains(&m->s->btext, n);
	case SK_TEXT:
		return (htext_load(m) && fold_contains(&m->s->htext, n)) ||
		       (btext_load(m) && fold_contains(&m->s->btext, n));
	case SK_SEQSET:
		return imap_seqset_contains(n->ranges, n->nranges, m->seq);
	case SK_UIDSET:
		return imap_seqset_contains(n->ranges, n->nranges, m->uid);
	case SK_MODSEQ:
		return m->rec.modseq >= n->number;
	case SK_SAVEDBEFORE:
		return day_of(m->rec.savedate) < n->date;
	case SK_SAVEDON:
		return day_of(m->rec.savedate) == n->date;
	case SK_SAVEDSINCE:
		return day_of(m->rec.savedate) >= n->date;
	case SK_OLDER:
		return m->rec.internaldate <= n->date - (int64_t)n->number;
	case SK_YOUNGER:
		return m->rec.internaldate >= n->date - (int64_t)n->number;
	case SK_EMAILID:
		return m->rec.body_id == n->number;
	case SK_SAVED:
		for (size_t i = 0; i < m->s->cmd->is->nsaved; i++)
			if (m->s->cmd->is->saved[i] == m->uid)
				return 1;
		return 0;
	case SK_COUNT:
		break;
	}
	abort();
}

/* -- the search API ---------------------------------------------------------*/

int
imap_search_charset(struct imap_cmd_ctx *cmd, const struct imap_arg *arg)
{
	if (!imap_arg_is_astring(arg) || imap_arg_is_nil(arg) ||
	    (strcasecmp(arg->str, "UTF-8") != 0 &&
	     strcasecmp(arg->str, "US-ASCII") != 0)) {
		imap_tagged(cmd, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
				       "Unsupported charset");
		return -1;
	}
	return 0;
}

struct imap_search *
imap_search_parse(struct imap_cmd_ctx *cmd, const struct imap_arg *args,
		  unsigned argc)
{
	struct sparse p = {cmd, args, argc, 0, NULL, 0, 0};
	if (argc == 0) {
		imap_tagged(cmd, "BAD", "Missing search criteria");
		return NULL;
	}
	struct snode *root = parse_list(&p, args, argc);
	if (root == NULL) {
		imap_tagged(cmd, "BAD", "%s",
			    p.error ? p.error : "Invalid search");
		return NULL;
	}
	struct imap_search *s = arena_zalloc(&cmd->is->cmd_pool, sizeof(*s));
	s->cmd = cmd;
	s->root = root;
	s->modseq_used = p.modseq_used;
	return s;
}

uint64_t
imap_search_modseq(const struct imap_search *s)
{
	return s->modseq_used ? s->maxmodseq : 0;
}

int
imap_search_run(struct imap_search *s, imap_search_hit_fn *fn, void *ctx)
{
	struct imap_session *is = s->cmd->is;
	const char *err;
	s->st = is->s->be->store;
	s->budget = is->s->be->cfg.limits_search_max_bytes;
	s->over = s->error = 0;
	s->maxmodseq = 0;
	if (store_read_begin(s->st, &s->txn, &err) < 0 ||
	    store_keywords_get(s->st, s->txn, is->mbox.mbox_id, &s->kwnames,
			       &s->kwlen, &err) < 0) {
		store_read_end(&s->txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(s->cmd, "NO", "[SERVERBUG] Mail store error");
		return -1;
	}
	struct store_msg_reader rd;
	if (store_msg_reader_open(s->st, s->txn, is->mbox.mbox_id, &rd, &err) <
	    0) {
		store_read_end(&s->txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(s->cmd, "NO", "[SERVERBUG] Mail store error");
		return -1;
	}
	arena_init(&s->pool, 65536);
	for (size_t i = 0; i < is->count && !s->over && !s->error; i++) {
		struct imap_msg m = {.s = s,
				     .seq = (uint32_t)i + 1,
				     .uid = is->uids[i]};
		/* Expunged by another session since the view was made: no
		   longer matches anything. */
		if (store_msg_reader_get(&rd, is->uids[i], &m.rec, &err) != 0)
			continue;
		if (eval(s->root, &m) && !s->over && !s->error) {
			if (m.rec.modseq > s->maxmodseq)
				s->maxmodseq = m.rec.modseq;
			if (fn(&m, ctx) < 0 && !s->over)
				s->error = 1;
		}
		arena_clear(&s->pool);
	}
	store_msg_reader_close(&rd);
	store_read_end(&s->txn);
	arena_free(&s->pool);
	buf_free(&s->tmp);
	buf_free(&s->tmp2);
	buf_free(&s->fold);
	buf_free(&s->htext);
	buf_free(&s->btext);
	if (s->over) {
		imap_search_limit_reply(s);
		return -1;
	}
	if (s->error) {
		imap_tagged(s->cmd, "NO", "[SERVERBUG] Mail store error");
		return -1;
	}
	return 0;
}

/* -- SEARCH -------------------------------------------------------------- */

struct search_hits {
	int uid;
	uint32_t *ids, *uids;
	size_t n, cap;
};

static int
search_hit(struct imap_msg *m, void *ctx)
{
	struct search_hits *h = ctx;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 256;
		h->ids = realloc(h->ids, h->cap * sizeof(*h->ids));
		h->uids = realloc(h->uids, h->cap * sizeof(*h->uids));
		if (h->ids == NULL || h->uids == NULL)
			abort();
	}
	h->ids[h->n] = h->uid ? m->uid : m->seq;
	h->uids[h->n++] = m->uid;
	return 0;
}

/* RFC 5182 2.1: a SEARCH ... SAVE that fails (NO) leaves $ empty. */
static void
search_save_failed(struct imap_session *is, int save)
{
	if (!save)
		return;
	free(is->saved);
	is->saved = NULL;
	is->nsaved = 0;
}

int
imap_search_return(struct imap_cmd_ctx *cmd, unsigned *ret_r)
{
	*ret_r = 0;
	if (cmd->argc < 2 || !imap_arg_is_atom(&cmd->args[0], "RETURN"))
		return 0;
	const struct imap_arg *r = &cmd->args[1];
	if (r->type != IMAP_ARG_LIST) {
		imap_tagged(cmd, "BAD", "RETURN expects a list");
		return -1;
	}
	unsigned ret = 0;
	for (unsigned i = 0; i < r->count; i++) {
		if (imap_arg_is_atom(&r->list[i], "MIN"))
			ret |= IMAP_RET_MIN;
		else if (imap_arg_is_atom(&r->list[i], "MAX"))
			ret |= IMAP_RET_MAX;
		else if (imap_arg_is_atom(&r->list[i], "ALL"))
			ret |= IMAP_RET_ALL;
		else if (imap_arg_is_atom(&r->list[i], "COUNT"))
			ret |= IMAP_RET_COUNT;
		else if (imap_arg_is_atom(&r->list[i], "SAVE"))
			ret |= IMAP_RET_SAVE;
		else {
			imap_tagged(cmd, "BAD", "Unknown RETURN option");
			return -1;
		}
	}
	*ret_r = ret != 0 ? ret : IMAP_RET_ALL;
	return 2;
}

void
imap_esearch_line(struct imap_cmd_ctx *cmd, unsigned ret, const uint32_t *ids,
		  size_t n, uint64_t modseq, struct buf *out)
{
	buf_printf(out, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
		   cmd->uid ? " UID" : "");
	if ((ret & IMAP_RET_MIN) && n > 0)
		buf_printf(out, " MIN %u", ids[0]);
	if ((ret & IMAP_RET_MAX) && n > 0)
		buf_printf(out, " MAX %u", ids[n - 1]);
	if (ret & IMAP_RET_COUNT)
		buf_printf(out, " COUNT %zu", n);
	if ((ret & IMAP_RET_ALL) && n > 0) {
		/* runs only where the order ascends by one: SORT's order
		   stays as it is (RFC 5267 3.2) */
		buf_append_str(out, " ALL ");
		imap_uid_set_format(ids, n, out);
	}
	if (modseq > 0)
		buf_printf(out, " MODSEQ %llu", (unsigned long long)modseq);
	buf_append(out, "\r\n", 2);
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void
imap_search_save(struct imap_session *is, unsigned ret, uint32_t *uids,
		 size_t n)
{
	free(is->saved);
	if ((ret & (IMAP_RET_MIN | IMAP_RET_MAX)) &&
	    !(ret & (IMAP_RET_ALL | IMAP_RET_COUNT)) && n > 0) {
		/* RFC 5182 2.4: with MIN and/or MAX alone, $ is the
		   message(s) they name. */
		size_t k = 0;
		uint32_t last = uids[n - 1];
		if (ret & IMAP_RET_MIN)
			uids[k++] = uids[0];
		if ((ret & IMAP_RET_MAX) && (k == 0 || n > 1))
			uids[k++] = last;
		n = k;
	}
	/* a set: ascending, whatever order SORT gave it */
	if (n > 1)
		qsort(uids, n, sizeof(*uids), uid_cmp);
	is->saved = uids;
	is->nsaved = n;
}

void
imap_cmd_search(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	/* ESEARCH (RFC 4731) and SEARCHRES (RFC 5182): RETURN (...) */
	unsigned ret;
	int pos = imap_search_return(cmd, &ret);
	if (pos < 0)
		return;
	/* RETURN is ESEARCH's (IMAP4rev2's once enabled), SAVE SEARCHRES's:
	   switched off for the session, the syntax goes with them */
	if (pos > 0 &&
	    (((ret & ~IMAP_RET_SAVE) != 0 &&
	      !(is->enabled & IMAP_ENABLE_REV2) &&
	      !imap_offers(is, "ESEARCH")) ||
	     ((ret & IMAP_RET_SAVE) && !imap_offers(is, "SEARCHRES")))) {
		imap_tagged(cmd, "BAD",
			    "SEARCH expects [CHARSET charset] "
			    "search-criteria");
		return;
	}
	int esearch = pos > 0 && ret != IMAP_RET_SAVE;
	if (cmd->argc >= (unsigned)pos + 2 &&
	    imap_arg_is_atom(&cmd->args[pos], "CHARSET")) {
		if (imap_search_charset(cmd, &cmd->args[pos + 1]) < 0) {
			search_save_failed(is, ret & IMAP_RET_SAVE);
			return;
		}
		pos += 2;
	}
	if (ret == 0 && (is->enabled & IMAP_ENABLE_REV2)) {
		/* IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 6.4.4). */
		ret = IMAP_RET_ALL;
		esearch = 1;
	}
	struct imap_search *s = imap_search_parse(cmd, cmd->args + pos,
						  cmd->argc - (unsigned)pos);
	if (s == NULL)
		return;
	struct search_hits h = {cmd->uid, NULL, NULL, 0, 0};
	if (imap_search_run(s, search_hit, &h) < 0) {
		free(h.ids);
		free(h.uids);
		search_save_failed(is, ret & IMAP_RET_SAVE);
		return;
	}
	uint32_t *hits = h.ids;
	size_t nhits = h.n;
	uint64_t maxmodseq = imap_search_modseq(s);
	if (ret & IMAP_RET_SAVE) {
		imap_search_save(is, ret, h.uids, nhits);
		h.uids = NULL;
	}
	struct buf out = BUF_INIT;
	if (esearch) {
		imap_esearch_line(cmd, ret, hits, nhits, maxmodseq, &out);
	} else if (!(ret & IMAP_RET_SAVE)) {
		buf_append_str(&out, "* SEARCH");
		for (size_t i = 0; i < nhits; i++) {
			buf_append(&out, " ", 1);
			buf_append_uint(&out, hits[i]);
		}
		if (maxmodseq > 0)
			buf_printf(&out, " (MODSEQ %llu)",
				   (unsigned long long)maxmodseq);
		buf_append(&out, "\r\n", 2);
	}
	free(h.ids);
	free(h.uids);
	session_write(is->s, buf_ptr(&out), buf_used(&out));
	buf_free(&out);
	imap_tagged(cmd, "OK", "%sSEARCH completed", cmd->uid ? "UID " : "");
}
