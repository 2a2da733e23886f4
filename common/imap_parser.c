/* imap_parser.c - IMAP argument parser (RFC 3501 section 9 syntax). */
#include "common/imap_parser.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

struct parser {
	const char *p, *end;
	struct arena *a;
	const struct imap_parse_limits *lim;
	unsigned nargs;
	const char *error;
};

/* Collects arguments of one level before they are copied into an array. */
struct arg_list {
	struct imap_arg *v;
	unsigned n, cap;
};

static int parse_list_items(struct parser *ps, unsigned depth, int closing,
			    struct arg_list *out);

static int
fail(struct parser *ps, const char *msg)
{
	if (ps->error == NULL)
		ps->error = msg;
	return -1;
}

static struct imap_arg *
list_push(struct parser *ps, struct arg_list *l)
{
	if (++ps->nargs > ps->lim->max_args) {
		fail(ps, "[LIMIT] Too many arguments");
		return NULL;
	}
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 8;
		struct imap_arg *v = arena_alloc(ps->a, cap * sizeof(*v));
		if (l->n > 0)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	struct imap_arg *arg = &l->v[l->n++];
	memset(arg, 0, sizeof(*arg));
	return arg;
}

static int
is_atom_char(unsigned char c)
{
	/* ATOM-CHAR, plus list-wildcards and resp-specials, which handlers
	   accept where the grammar allows them. */
	if (c <= 0x20 || c == 0x7f)
		return 0;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* Output of scan_atom(): with out NULL only counts the octets. */
struct emit {
	char *out;
	size_t n;
	int section; /* the atom holds a section */
};

static void
put(struct emit *e, const char *p, size_t len)
{
	if (e->out != NULL)
		memcpy(e->out + e->n, p, len);
	e->n += len;
}

/* A quoted string at ps->p ('"'): leaves ps->p after it, with its content
 * (escapes still in it) in [*start_r, *start_r + *len_r). */
static int
read_quoted(struct parser *ps, const char **start_r, size_t *len_r)
{
	ps->p++; /* opening quote */
	const char *start = ps->p;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '\r' || c == '\n')
			return fail(ps, "Line end in quoted string");
		if (c == '\\') {
			if (ps->p + 1 >= ps->end ||
			    (ps->p[1] != '"' && ps->p[1] != '\\'))
				return fail(ps, "Invalid escape in quoted "
						"string");
			ps->p++;
		}
		ps->p++;
	}
	if (ps->p >= ps->end)
		return fail(ps, "Missing '\"'");
	*start_r = start;
	*len_r = (size_t)(ps->p - start);
	ps->p++; /* closing quote */
	return 0;
}

/* A literal at ps->p ('{' or '~{'): leaves ps->p after its octets, which
 * are [*data_r, *data_r + *len_r), not copied. */
static int
read_literal(struct parser *ps, const char **data_r, size_t *len_r,
	     int *literal8_r)
{
	int literal8 = 0;
	if (*ps->p == '~') {
		literal8 = 1;
		ps->p++;
		if (ps->p >= ps->end || *ps->p != '{')
			return fail(ps, "Invalid literal");
	}
	ps->p++; /* { */
	uint64_t size = 0;
	const char *digits = ps->p;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		unsigned d = (unsigned)(*ps->p - '0');
		if (size > (UINT64_MAX - d) / 10)
			return fail(ps, "[TOOBIG] Literal too large");
		size = size * 10 + d;
		ps->p++;
	}
	if (ps->p == digits)
		return fail(ps, "Invalid literal size");
	if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
		ps->p++;
	if (ps->p >= ps->end || *ps->p != '}')
		return fail(ps, "Invalid literal");
	ps->p++;
	/* lineparse put CRLF after every literal header it accepted. */
	if (ps->end - ps->p < 2 || ps->p[0] != '\r' || ps->p[1] != '\n')
		return fail(ps, "Literal must end the line");
	ps->p += 2;
	if ((uint64_t)(ps->end - ps->p) < size)
		return fail(ps, "Literal shorter than announced");
	*data_r = ps->p;
	*len_r = (size_t)size;
	*literal8_r = literal8;
	ps->p += size;
	return 0;
}

/* ATOM-CHAR of RFC 3501 9 (no list-wildcards, no resp-specials). */
static int
is_strict_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Puts one name of a section's list ([s, s + len), with quoted-string
 * escapes in it when escaped): as an atom when it can be one, quoted
 * otherwise, so that the section stays valid IMAP when FETCH echoes it.
 * A header field name is printable US-ASCII (RFC 5322 2.2): controls and
 * 8-bit octets are refused, the rest (a space, a quote) only matches no
 * field. */
static int
put_name(struct parser *ps, struct emit *e, const char *s, size_t len,
	 int escaped)
{
	int atom = len > 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (escaped && c == '\\')
			c = (unsigned char)s[++i];
		if (c < 0x20 || c >= 0x7f)
			return fail(ps, "Invalid header field name");
		if (!is_strict_atom_char(c))
			atom = 0;
	}
	if (atom) {
		put(e, s, len);
		return 0;
	}
	put(e, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (escaped && s[i] == '\\')
			i++;
		if (s[i] == '"' || s[i] == '\\')
			put(e, "\\", 1);
		put(e, &s[i], 1);
	}
	put(e, "\"", 1);
	return 0;
}

/* The names of a list in a section (RFC 3501 header-list: astrings), from
 * after its '(' up to and with its ')', one space apart. */
static int
scan_names(struct parser *ps, struct emit *e)
{
	for (unsigned n = 0;; n++) {
		while (ps->p < ps->end && *ps->p == ' ')
			ps->p++;
		if (ps->p >= ps->end)
			return fail(ps, "Missing ']'");
		if (*ps->p == ')') {
			put(e, ps->p++, 1);
			return 0;
		}
		if (n > 0)
			put(e, " ", 1);
		unsigned char c = (unsigned char)*ps->p;
		const char *s = ps->p;
		size_t len;
		int escaped = 0, literal8 = 0;
		if (c == '"') {
			if (read_quoted(ps, &s, &len) < 0)
				return -1;
			escaped = 1;
		} else if (c == '{' || (c == '~' && ps->p + 1 < ps->end &&
					ps->p[1] == '{')) {
			if (read_literal(ps, &s, &len, &literal8) < 0)
				return -1;
			if (literal8)
				return fail(ps, "Invalid header field name");
		} else {
			while (ps->p < ps->end &&
			       is_atom_char((unsigned char)*ps->p))
				ps->p++;
			len = (size_t)(ps->p - s);
			if (len == 0)
				return fail(ps, "Invalid section");
		}
		if (put_name(ps, e, s, len, escaped) < 0)
			return -1;
		if (ps->p < ps->end && *ps->p != ' ' && *ps->p != ')')
			return fail(ps, "Invalid section");
	}
}

/* A section such as [HEADER.FIELDS (A B)], from its '[' up to and with its
 * ']': spaces and parentheses are part of the atom.  The names of a list
 * in it may be atoms, quoted strings or literals (astrings); they are put
 * as scan_names() says.  The text between the brackets, so rewritten, is
 * at most lim->max_section octets. */
static int
scan_section(struct parser *ps, struct emit *e)
{
	size_t start = e->n;
	e->section = 1;
	put(e, ps->p++, 1); /* [ */
	while (ps->p < ps->end && *ps->p != ']') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20 || c == 0x7f || c == '{')
			return fail(ps, "Invalid section");
		put(e, ps->p++, 1);
		if (c == '(' && scan_names(ps, e) < 0)
			return -1;
	}
	if (ps->p >= ps->end)
		return fail(ps, "Missing ']'");
	if (e->n - start - 1 > ps->lim->max_section)
		return fail(ps, "[LIMIT] Section too long");
	put(e, ps->p++, 1); /* ] */
	return 0;
}

static int
scan_atom(struct parser *ps, struct emit *e)
{
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '[') {
			if (scan_section(ps, e) < 0)
				return -1;
			continue;
		}
		/* '{' only starts a literal at an argument's start; inside
		   an atom it ends it. */
		if (!is_atom_char(c))
			break;
		put(e, ps->p++, 1);
	}
	return 0;
}

static int
parse_atom(struct parser *ps, struct imap_arg *arg)
{
	const char *start = ps->p;
	struct emit e = {NULL, 0, 0};
	if (scan_atom(ps, &e) < 0)
		return -1;
	if (e.n == 0)
		return fail(ps, "Invalid characters in atom");
	arg->type = IMAP_ARG_ATOM;
	arg->len = e.n;
	if (!e.section) {
		arg->str = arena_strndup(ps->a, start, arg->len);
		return 0;
	}
	/* Again, to write the section as it was counted. */
	char *s = arena_alloc(ps->a, e.n + 1);
	e = (struct emit){s, 0, 0};
	ps->p = start;
	if (scan_atom(ps, &e) < 0)
		return -1;
	s[e.n] = '\0';
	arg->str = s;
	return 0;
}

static int
parse_quoted(struct parser *ps, struct imap_arg *arg)
{
	const char *start;
	size_t n;
	if (read_quoted(ps, &start, &n) < 0)
		return -1;
	char *s = arena_alloc(ps->a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (start[i] == '\\')
			i++;
		s[o++] = start[i];
	}
	s[o] = '\0';
	arg->type = IMAP_ARG_STRING;
	arg->str = s;
	arg->len = o;
	return 0;
}

static int
parse_literal(struct parser *ps, struct imap_arg *arg)
{
	const char *data;
	size_t len;
	int literal8;
	if (read_literal(ps, &data, &len, &literal8) < 0)
		return -1;
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = literal8;
	arg->len = len;
	arg->borrowed = ps->lim->borrow_min != 0 && len >= ps->lim->borrow_min;
	arg->str = arg->borrowed ? data : arena_strndup(ps->a, data, len);
	if (!literal8 && memchr(arg->str, '\0', arg->len) != NULL)
		return fail(ps, "NUL byte in literal");
	return 0;
}

static int
parse_one(struct parser *ps, unsigned depth, struct arg_list *out)
{
	unsigned char c = (unsigned char)*ps->p;
	struct imap_arg *arg = list_push(ps, out);
	if (arg == NULL)
		return -1;
	if (c == '"')
		return parse_quoted(ps, arg);
	if (c == '{' || c == '~') {
		if (c == '~' && (ps->p + 1 >= ps->end || ps->p[1] != '{'))
			return parse_atom(ps, arg);
		return parse_literal(ps, arg);
	}
	if (c == '(') {
		if (depth + 1 > ps->lim->max_depth)
			return fail(ps, "[LIMIT] Too deeply nested");
		ps->p++;
		struct arg_list sub = {NULL, 0, 0};
		if (parse_list_items(ps, depth + 1, 1, &sub) < 0)
			return -1;
		/* out->v may have moved while the sublist was parsed?  No:
		   sublists use their own arg_list; arg still points into
		   out->v, which only grows in list_push above. */
		arg->type = IMAP_ARG_LIST;
		arg->list = sub.v;
		arg->count = sub.n;
		return 0;
	}
	if (c == ')')
		return fail(ps, "Unexpected ')'");
	return parse_atom(ps, arg);
}

static int
parse_list_items(struct parser *ps, unsigned depth, int closing,
		 struct arg_list *out)
{
	int first = 1;
	for (;;) {
		if (ps->p >= ps->end) {
			if (closing)
				return fail(ps, "Missing ')'");
			return 0;
		}
		if (closing && *ps->p == ')') {
			ps->p++;
			return 0;
		}
		if (!first) {
			if (*ps->p != ' ')
				return fail(ps, "Missing space between "
						"arguments");
			ps->p++;
			if (ps->p >= ps->end)
				return fail(ps, "Unexpected end of command");
		}
		first = 0;
		if (*ps->p == ' ')
			return fail(ps, "Double space");
		if (parse_one(ps, depth, out) < 0)
			return -1;
	}
}

int
imap_parse(const char *cmd, size_t len, struct arena *a,
	   const struct imap_parse_limits *lim, struct imap_arg **args_r,
	   unsigned *count_r, const char **error_r)
{
	struct parser ps = {cmd, cmd + len, a, lim, 0, NULL};
	struct arg_list top = {NULL, 0, 0};
	if (len == 0) {
		*error_r = "Empty command";
		return -1;
	}
	if (parse_list_items(&ps, 0, 0, &top) < 0) {
		*error_r = ps.error;
		return -1;
	}
	*args_r = top.v;
	*count_r = top.n;
	return 0;
}

int
imap_arg_is_atom(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}

int
imap_arg_is_nil(const struct imap_arg *arg)
{
	return imap_arg_is_atom(arg, "NIL");
}

int
imap_arg_is_astring(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING ||
	       (arg->type == IMAP_ARG_LITERAL && !arg->literal8 &&
		!arg->borrowed);
}

int
imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_STRING ||
	       (arg->type == IMAP_ARG_LITERAL && !arg->borrowed) ||
	       imap_arg_is_nil(arg);
}

/* The value of key in an ID list, or NULL. */
static const struct imap_arg *
id_value(const struct imap_arg *list, const char *key)
{
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return NULL;
	for (unsigned i = 0; i + 1 < list->count; i += 2) {
		const struct imap_arg *k = &list->list[i],
				      *v = &list->list[i + 1];
		if (!imap_arg_is_string(k) || imap_arg_is_nil(k) ||
		    !imap_arg_is_string(v) || imap_arg_is_nil(v))
			continue;
		if (k->len == strlen(key) &&
		    strncasecmp(k->str, key, k->len) == 0)
			return v;
	}
	return NULL;
}

static size_t
id_copy(char *out, size_t room, const struct imap_arg *v)
{
	size_t n = 0;
	for (size_t i = 0; i < v->len && n + 1 < room; i++) {
		unsigned char ch = (unsigned char)v->str[i];
		out[n++] = ch >= 32 && ch < 127 ? (char)ch : '?';
	}
	out[n] = '\0';
	return n;
}

int
imap_id_client(const struct imap_arg *list, char *out, size_t outsize)
{
	const struct imap_arg *name = id_value(list, "name");
	const struct imap_arg *version = id_value(list, "version");
	if (outsize == 0)
		return 0;
	out[0] = '\0';
	if (name == NULL || name->len == 0)
		return 0;
	size_t n = id_copy(out, outsize, name);
	if (version != NULL && version->len > 0 && n + 2 < outsize) {
		out[n++] = '/';
		id_copy(out + n, outsize - n, version);
	}
	return 1;
}
