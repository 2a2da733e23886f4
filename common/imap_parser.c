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

static int
parse_atom(struct parser *ps, struct imap_arg *arg)
{
	const char *start = ps->p;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '[') {
			/* A section such as BODY[HEADER.FIELDS (A B)]: spaces
			   and parentheses are part of the atom up to the
			   closing bracket. */
			const char *close = memchr(ps->p, ']',
						   (size_t)(ps->end - ps->p));
			if (close == NULL)
				return fail(ps, "Missing ']'");
			for (const char *q = ps->p; q < close; q++) {
				if ((unsigned char)*q < 0x20 || *q == 0x7f ||
				    *q == '{')
					return fail(ps, "Invalid section");
			}
			ps->p = close + 1;
			continue;
		}
		if (!is_atom_char(c) && c != '{')
			break;
		if (c == '{') {
			/* '{' only starts a literal at an argument's start;
			   inside an atom it ends it. */
			break;
		}
		ps->p++;
	}
	if (ps->p == start)
		return fail(ps, "Invalid characters in atom");
	arg->type = IMAP_ARG_ATOM;
	arg->len = (size_t)(ps->p - start);
	arg->str = arena_strndup(ps->a, start, arg->len);
	return 0;
}

static int
parse_quoted(struct parser *ps, struct imap_arg *arg)
{
	ps->p++; /* opening quote */
	const char *start = ps->p;
	size_t n = 0;
	int escapes = 0;
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
			escapes++;
		}
		ps->p++;
		n++;
	}
	if (ps->p >= ps->end)
		return fail(ps, "Missing '\"'");
	char *s = arena_alloc(ps->a, n + 1);
	size_t o = 0;
	for (const char *q = start; q < ps->p; q++) {
		if (*q == '\\')
			q++;
		s[o++] = *q;
	}
	s[o] = '\0';
	ps->p++; /* closing quote */
	arg->type = IMAP_ARG_STRING;
	arg->str = s;
	arg->len = o;
	(void)escapes;
	return 0;
}

static int
parse_literal(struct parser *ps, struct imap_arg *arg)
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
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = literal8;
	arg->len = (size_t)size;
	arg->str = arena_strndup(ps->a, ps->p, arg->len);
	if (!literal8 && memchr(arg->str, '\0', arg->len) != NULL)
		return fail(ps, "NUL byte in literal");
	ps->p += size;
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
	       (arg->type == IMAP_ARG_LITERAL && !arg->literal8);
}

int
imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_STRING || arg->type == IMAP_ARG_LITERAL ||
	       imap_arg_is_nil(arg);
}
