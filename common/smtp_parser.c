/* smtp_parser.c - SMTP/LMTP command arguments and message content. */
#include "common/smtp_parser.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
static const char *smtp_verb_names[] = {
	"HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
	"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "",
};
/* clang-format on */
_Static_assert(sizeof(smtp_verb_names) / sizeof(smtp_verb_names[0]) ==
		       SMTP_VERB_COUNT,
	       "smtp verb names");

const char *
smtp_verb_name(enum smtp_verb verb)
{
	return smtp_verb_names[verb];
}

static void
smtp_err(struct smtp_reply *r, unsigned code, const char *status,
	 const char *text)
{
	r->code = code;
	r->status = status;
	r->text = text;
}

enum smtp_verb
smtp_parse_verb(const char *line, size_t len, const char **args_r)
{
	size_t n = 0;
	while (n < len && line[n] != ' ')
		n++;
	*args_r = n < len ? line + n + 1 : line + len;
	if (n == 4 && len >= 10 && strncasecmp(line, "MAIL FROM:", 10) == 0) {
		*args_r = line + 10;
		return SMTP_MAIL;
	}
	if (n == 4 && len >= 8 && strncasecmp(line, "RCPT TO:", 8) == 0) {
		*args_r = line + 8;
		return SMTP_RCPT;
	}
	for (int v = 0; v < SMTP_UNKNOWN; v++) {
		if (v == SMTP_MAIL || v == SMTP_RCPT)
			continue;
		if (strlen(smtp_verb_names[v]) == n &&
		    strncasecmp(line, smtp_verb_names[v], n) == 0)
			return (enum smtp_verb)v;
	}
	/* "MAIL" / "RCPT" without FROM:/TO: is a syntax error of a known
	   command. */
	if (n == 4 && strncasecmp(line, "MAIL", 4) == 0)
		return SMTP_MAIL;
	if (n == 4 && strncasecmp(line, "RCPT", 4) == 0)
		return SMTP_RCPT;
	return SMTP_UNKNOWN;
}

/* -- paths ----------------------------------------------------------------*/

static int
is_atext(unsigned char ch, int utf8)
{
	if (ch >= 0x80)
		return utf8;
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL && ch != '\0';
}

static int
is_let_dig(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

int
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Domain (RFC 5321 4.1.2): sub-domains of let-dig and hyphens, or an
 * address literal in brackets.  UTF-8 labels only with SMTPUTF8. */
static int
domain_valid(const char *d, size_t len, int utf8)
{
	if (len == 0 || len > 255)
		return 0;
	if (d[0] == '[') {
		if (d[len - 1] != ']' || len < 3)
			return 0;
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char ch = (unsigned char)d[i];
			if (ch < 33 || ch > 126 || ch == '[' || ch == ']' ||
			    ch == '\\')
				return 0;
		}
		return 1;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)d[i];
		if (ch == '.') {
			if (label == 0 || d[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (ch == '-') {
			if (label == 0)
				return 0;
		} else if (!is_let_dig(ch) && !(utf8 && ch >= 0x80)) {
			return 0;
		}
		if (++label > 63)
			return 0;
	}
	return label > 0 && d[len - 1] != '-';
}

/* Mailbox (local-part "@" domain), RFC 5321 4.1.2 / RFC 6531 3.3. */
static int
mailbox_valid(const char *m, size_t len, int utf8)
{
	const char *at = NULL;
	size_t i = 0;
	if (len > 0 && m[0] == '"') {
		/* Quoted-string local part. */
		for (i = 1; i < len; i++) {
			unsigned char ch = (unsigned char)m[i];
			if (ch == '\\') {
				if (++i >= len || (unsigned char)m[i] < 32 ||
				    (unsigned char)m[i] > 126)
					return 0;
				continue;
			}
			if (ch == '"')
				break;
			if (ch >= 0x80 ? !utf8 : (ch < 32 || ch > 126))
				return 0;
		}
		if (i >= len || i + 1 >= len || m[i + 1] != '@')
			return 0;
		at = m + i + 1;
	} else {
		int prev_dot = 1;
		for (i = 0; i < len && m[i] != '@'; i++) {
			unsigned char ch = (unsigned char)m[i];
			if (ch == '.') {
				if (prev_dot)
					return 0;
				prev_dot = 1;
				continue;
			}
			if (!is_atext(ch, utf8))
				return 0;
			prev_dot = 0;
		}
		if (i >= len || prev_dot)
			return 0;
		at = m + i;
	}
	if ((size_t)(at - m) > 64)
		return 0;
	if (utf8 && !smtp_utf8_valid((const unsigned char *)m, len))
		return 0;
	return domain_valid(at + 1, len - (size_t)(at + 1 - m), utf8);
}

/* Takes "<path>" from *p into out (without brackets or a source route)
 * and moves *p past it.  Returns 0, or -1 for a syntax error. */
static int
parse_path(const char **p, char *out, size_t outsize, int utf8, int null_ok,
	   int postmaster_ok)
{
	const char *s = *p;
	if (*s != '<')
		return -1;
	const char *end = strchr(s, '>');
	if (end == NULL)
		return -1;
	size_t total = (size_t)(end - s) + 1;
	if (total > SMTP_MAX_PATH)
		return -1;
	const char *a = s + 1;
	size_t len = (size_t)(end - a);
	/* A quoted local part may hold '>': find the real end. */
	if (len > 0 && a[0] == '"') {
		const char *q = a + 1;
		while (*q != '\0' && *q != '"') {
			if (*q == '\\' && q[1] != '\0')
				q++;
			q++;
		}
		if (*q != '"')
			return -1;
		end = strchr(q, '>');
		if (end == NULL || (size_t)(end - s) + 1 > SMTP_MAX_PATH)
			return -1;
		len = (size_t)(end - a);
	}
	/* Source route (RFC 5321 4.1.2, C.): accepted and ignored. */
	if (len > 0 && a[0] == '@') {
		const char *colon = memchr(a, ':', len);
		if (colon == NULL)
			return -1;
		for (const char *r = a; r < colon;) {
			if (*r != '@')
				return -1;
			const char *comma = memchr(r, ',', (size_t)(colon - r));
			const char *dend = comma ? comma : colon;
			if (!domain_valid(r + 1, (size_t)(dend - r - 1), utf8))
				return -1;
			r = comma ? comma + 1 : colon;
		}
		len -= (size_t)(colon + 1 - a);
		a = colon + 1;
	}
	if (len == 0) {
		if (!null_ok)
			return -1;
	} else if (!mailbox_valid(a, len, utf8) &&
		   !(postmaster_ok && len == 10 &&
		     strncasecmp(a, "postmaster", 10) == 0)) {
		return -1;
	}
	if (len >= outsize)
		return -1;
	memcpy(out, a, len);
	out[len] = '\0';
	*p = end + 1;
	return 0;
}

/* -- parameters -----------------------------------------------------------*/

struct smtp_param {
	const char *key;
	size_t klen;
	const char *value; /* NULL: no "=" */
	size_t vlen;
};

/* Splits " KEY[=VALUE]..." after a path.  Returns the count, or -1. */
static int
split_params(const char *s, struct smtp_param *params, int utf8)
{
	int n = 0;
	while (*s != '\0') {
		if (*s != ' ')
			return -1;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (n >= SMTP_MAX_PARAMS)
			return -2;
		struct smtp_param *pm = &params[n++];
		pm->key = s;
		while (is_let_dig((unsigned char)*s) ||
		       (*s == '-' && s != pm->key))
			s++;
		pm->klen = (size_t)(s - pm->key);
		pm->value = NULL;
		pm->vlen = 0;
		if (pm->klen == 0)
			return -1;
		if (*s == '=') {
			pm->value = ++s;
			while (*s != '\0' && *s != ' ') {
				unsigned char ch = (unsigned char)*s;
				if (ch == '=' || ch < 33 || ch == 127 ||
				    (ch >= 0x80 && !utf8))
					return -1;
				s++;
			}
			pm->vlen = (size_t)(s - pm->value);
			if (pm->vlen == 0)
				return -1;
		}
	}
	return n;
}

static int
key_is(const struct smtp_param *p, const char *key)
{
	return p->klen == strlen(key) && strncasecmp(p->key, key, p->klen) == 0;
}

static int
value_is(const struct smtp_param *p, const char *v)
{
	return p->value != NULL && p->vlen == strlen(v) &&
	       strncasecmp(p->value, v, p->vlen) == 0;
}

static int
delivery_id_valid(const char *v, size_t len)
{
	if (v == NULL || len == 0 || len > SMTP_MAX_DELIVERY_ID)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1; /* xtext uses upper case hex only */
}

/* xtext (RFC 3461 4): "+XX" for the bytes outside 33..126 and '+', '='.
 * Decodes into out; -1 if malformed or too long. */
static int
xtext_decode(const char *v, size_t len, char *out, size_t outsize)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch == '+') {
			int h, l;
			if (i + 2 >= len)
				return -1;
			h = hexval(v[i + 1]);
			l = hexval(v[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			ch = (unsigned char)(h * 16 + l);
			i += 2;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			return -1;
		}
		if (o + 1 >= outsize)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

static int
parse_uint(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		unsigned d = (unsigned)(v[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* Whether the line holds any byte >= 0x80 outside what SMTPUTF8
 * allows. */
static int
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* SMTPUTF8 must be given on MAIL for a UTF-8 path (RFC 6531 3.4). */
static int
mail_wants_utf8(const char *args)
{
	const char *p = strchr(args, '>');
	if (p == NULL)
		return 0;
	for (p++; *p != '\0'; p++) {
		if (*p == ' ' && strncasecmp(p + 1, "SMTPUTF8", 8) == 0 &&
		    (p[9] == '\0' || p[9] == ' '))
			return 1;
	}
	return 0;
}

int
smtp_parse_mail(const char *args, const struct smtp_offer *offer,
		struct smtp_mail *m, struct smtp_reply *err)
{
	memset(m, 0, sizeof(*m));
	const char *p = args;
	int utf8 = offer->smtputf8 && mail_wants_utf8(args);
	if (*p == ' ')
		p++; /* "MAIL FROM: <a>" is common enough to allow */
	if (*p != '<') {
		smtp_err(err, 501, "5.5.4",
			 "Syntax: MAIL FROM:<address> [parameters]");
		return -1;
	}
	if (!utf8 && has_8bit(args)) {
		smtp_err(err, 553, "5.6.7",
			 "Non-ASCII address without SMTPUTF8");
		return -1;
	}
	if (parse_path(&p, m->path, sizeof(m->path), utf8, 1, 0) < 0) {
		smtp_err(err, 553, "5.1.7", "Invalid sender address");
		return -1;
	}
	if (m->path[0] == '\0' && !offer->null_path_ok) {
		smtp_err(err, 553, "5.7.1",
			 "The null sender is not allowed here");
		return -1;
	}
	struct smtp_param pm[SMTP_MAX_PARAMS];
	int n = split_params(p, pm, utf8);
	if (n == -2) {
		smtp_err(err, 555, "5.5.4", "Too many parameters");
		return -1;
	}
	if (n < 0) {
		smtp_err(err, 501, "5.5.4", "Invalid parameter syntax");
		return -1;
	}
	unsigned seen = 0;
	enum { P_SIZE = 1, P_BODY = 2, P_UTF8 = 4, P_RET = 8, P_ENVID = 16,
	       P_AUTH = 32, P_DELIVERY_ID = 64 };
	for (int i = 0; i < n; i++) {
		unsigned bit;
		if (key_is(&pm[i], "SIZE") && offer->max_size > 0) {
			bit = P_SIZE;
			if (parse_uint(pm[i].value, pm[i].vlen, &m->size) < 0) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid SIZE parameter");
				return -1;
			}
		} else if (key_is(&pm[i], "BODY") && offer->eightbit) {
			bit = P_BODY;
			if (value_is(&pm[i], "7BIT")) {
				m->body = SMTP_BODY_7BIT;
			} else if (value_is(&pm[i], "8BITMIME")) {
				m->body = SMTP_BODY_8BITMIME;
			} else {
				smtp_err(err, 555, "5.5.4",
					 "Unsupported BODY type");
				return -1;
			}
		} else if (key_is(&pm[i], "SMTPUTF8") && offer->smtputf8) {
			bit = P_UTF8;
			if (pm[i].value != NULL) {
				smtp_err(err, 501, "5.5.4",
					 "SMTPUTF8 takes no value");
				return -1;
			}
			m->smtputf8 = 1;
		} else if (key_is(&pm[i], "RET") && offer->dsn) {
			bit = P_RET;
			if (value_is(&pm[i], "FULL")) {
				snprintf(m->ret, sizeof(m->ret), "FULL");
			} else if (value_is(&pm[i], "HDRS")) {
				snprintf(m->ret, sizeof(m->ret), "HDRS");
			} else {
				smtp_err(err, 501, "5.5.4",
					 "RET must be FULL or HDRS");
				return -1;
			}
		} else if (key_is(&pm[i], "ENVID") && offer->dsn) {
			bit = P_ENVID;
			if (pm[i].value == NULL ||
			    xtext_decode(pm[i].value, pm[i].vlen, m->envid,
					 sizeof(m->envid)) < 0) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid ENVID parameter");
				return -1;
			}
		} else if (key_is(&pm[i], "AUTH") && offer->auth) {
			/* RFC 4954 5: the identity that submitted the
			   message elsewhere; a submission server trusts
			   only its own login and ignores it. */
			bit = P_AUTH;
			char tmp[SMTP_MAX_PATH + 1];
			if (pm[i].value == NULL ||
			    (!value_is(&pm[i], "<>") &&
			     xtext_decode(pm[i].value, pm[i].vlen, tmp,
					  sizeof(tmp)) < 0)) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid AUTH parameter");
				return -1;
			}
		} else if (key_is(&pm[i], "XDELIVERYID") && offer->lmtp) {
			bit = P_DELIVERY_ID;
			if (!delivery_id_valid(pm[i].value, pm[i].vlen)) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid XDELIVERYID parameter");
				return -1;
			}
			memcpy(m->delivery_id, pm[i].value, pm[i].vlen);
			m->delivery_id[pm[i].vlen] = '\0';
		} else {
			smtp_err(err, 555, "5.5.4", "Unsupported parameter");
			return -1;
		}
		if (seen & bit) {
			smtp_err(err, 501, "5.5.4", "Duplicate parameter");
			return -1;
		}
		seen |= bit;
	}
	if (offer->max_size > 0 && m->size > offer->max_size) {
		smtp_err(err, 552, "5.3.4",
			 "Message size exceeds the fixed maximum");
		return -1;
	}
	return 0;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461
 * 4.1), normalised to upper case. */
static int
parse_notify(const struct smtp_param *p, char *out, size_t outsize)
{
	if (p->value == NULL)
		return -1;
	static const char *words[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
	unsigned seen = 0;
	const char *s = p->value, *end = p->value + p->vlen;
	out[0] = '\0';
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = (size_t)((comma ? comma : end) - s);
		int w = -1;
		for (int i = 0; i < 4; i++)
			if (strlen(words[i]) == len &&
			    strncasecmp(s, words[i], len) == 0)
				w = i;
		if (w < 0 || (seen & (1u << w)))
			return -1;
		seen |= 1u << w;
		if (out[0] != '\0')
			strncat(out, ",", outsize - strlen(out) - 1);
		strncat(out, words[w], outsize - strlen(out) - 1);
		s += len;
		if (comma != NULL) {
			s++;
			if (s == end)
				return -1;
		}
	}
	/* NEVER stands alone. */
	if ((seen & 1u) && seen != 1u)
		return -1;
	return seen != 0 ? 0 : -1;
}

int
smtp_parse_rcpt(const char *args, const struct smtp_offer *offer,
		struct smtp_rcpt *r, struct smtp_reply *err)
{
	memset(r, 0, sizeof(*r));
	const char *p = args;
	int utf8 = offer->smtputf8;
	if (*p == ' ')
		p++;
	if (*p != '<') {
		smtp_err(err, 501, "5.5.4",
			 "Syntax: RCPT TO:<address> [parameters]");
		return -1;
	}
	if (parse_path(&p, r->path, sizeof(r->path), utf8, 0, 1) < 0) {
		smtp_err(err, 553, "5.1.3", "Invalid recipient address");
		return -1;
	}
	struct smtp_param pm[SMTP_MAX_PARAMS];
	int n = split_params(p, pm, utf8);
	if (n == -2) {
		smtp_err(err, 555, "5.5.4", "Too many parameters");
		return -1;
	}
	if (n < 0) {
		smtp_err(err, 501, "5.5.4", "Invalid parameter syntax");
		return -1;
	}
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		unsigned bit;
		if (key_is(&pm[i], "NOTIFY") && offer->dsn) {
			bit = 1;
			if (parse_notify(&pm[i], r->notify, sizeof(r->notify)) <
			    0) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid NOTIFY parameter");
				return -1;
			}
		} else if (key_is(&pm[i], "ORCPT") && offer->dsn) {
			bit = 2;
			const char *semi = pm[i].value
						   ? memchr(pm[i].value, ';',
							    pm[i].vlen)
						   : NULL;
			if (semi == NULL || semi == pm[i].value ||
			    xtext_decode(pm[i].value, pm[i].vlen, r->orcpt,
					 sizeof(r->orcpt)) < 0) {
				smtp_err(err, 501, "5.5.4",
					 "Invalid ORCPT parameter");
				return -1;
			}
		} else {
			smtp_err(err, 555, "5.5.4", "Unsupported parameter");
			return -1;
		}
		if (seen & bit) {
			smtp_err(err, 501, "5.5.4", "Duplicate parameter");
			return -1;
		}
		seen |= bit;
	}
	return 0;
}

int
smtp_parse_reverse_path(const char *path, int utf8, char *out, size_t outsize)
{
	const char *p = path;
	if (!utf8 && has_8bit(path))
		return -1;
	if (parse_path(&p, out, outsize, utf8, 1, 0) < 0 || *p != '\0')
		return -1;
	return 0;
}

int
smtp_parse_bdat(const char *args, uint64_t *size_r, int *last_r,
		struct smtp_reply *err)
{
	const char *sp = strchr(args, ' ');
	size_t len = sp ? (size_t)(sp - args) : strlen(args);
	*last_r = 0;
	if (parse_uint(args, len, size_r) < 0) {
		smtp_err(err, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
		return -1;
	}
	if (sp != NULL) {
		if (strcasecmp(sp + 1, "LAST") != 0) {
			smtp_err(err, 501, "5.5.4",
				 "Syntax: BDAT chunk-size [LAST]");
			return -1;
		}
		*last_r = 1;
	}
	return 0;
}

int
smtp_addr_equal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* -- content --------------------------------------------------------------*/

enum {
	D_BOL,    /* at the start of a line */
	D_TEXT,   /* inside a line */
	D_CR,     /* a CR is held back */
	D_DOT,    /* "." at the start of a line is held back */
	D_DOTCR,  /* "." CR at the start of a line is held back */
};

void
smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->state = D_BOL;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, char *out,
	       size_t outsize, size_t *outlen_r)
{
	size_t i = 0, o = 0;
	int dot = d->mode == SMTP_DATA_DOT;
	while (i < len && o + 2 <= outsize && !d->ended) {
		char ch = in[i++];
		switch (d->state) {
		case D_BOL:
			if (ch == '.' && dot) {
				d->state = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			/* Dot-stuffing: the first dot of a line goes. */
			if (ch == '\r') {
				d->state = D_DOTCR;
				continue;
			}
			d->state = D_TEXT;
			break;
		case D_DOTCR:
			if (ch == '\n') {
				d->ended = 1;
				continue;
			}
			d->bare_cr++;
			out[o++] = '\r';
			d->state = D_TEXT;
			break;
		case D_CR:
			if (ch == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->state = D_BOL;
				continue;
			}
			d->bare_cr++;
			out[o++] = '\r';
			d->state = D_TEXT;
			break;
		case D_TEXT:
			break;
		}
		/* ch as text inside a line. */
		if (ch == '\r') {
			d->state = D_CR;
			continue;
		}
		if (ch == '\n')
			d->bare_lf++; /* data, never a line end */
		else if (ch == '\0')
			d->nul++;
		out[o++] = ch;
		d->state = D_TEXT;
	}
	d->size += o;
	*outlen_r = o;
	return i;
}

size_t
smtp_data_finish(struct smtp_data *d, char *out)
{
	if (d->state == D_CR) {
		d->bare_cr++;
		out[0] = '\r';
		d->size++;
		d->state = D_TEXT;
		return 1;
	}
	return 0;
}
