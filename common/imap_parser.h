/* imap_parser.h - IMAP command arguments from a command read by lineparse.
 *
 * imap_parse() turns one complete command (as returned by lp_command())
 * into a tree of arguments allocated in an arena.  It checks the syntax of
 * atoms, quoted strings, literals and parenthesised lists, and bounds the
 * nesting depth and the number of arguments.  What a command means is left
 * to its handler.
 *
 * A section such as BODY[HEADER.FIELDS (A B)]<0.10> is part of its atom.
 * The names in its list are astrings (RFC 3501 header-fld-name): in the
 * atom each is written as an atom, or as a quoted string where an atom
 * cannot hold it, whether the client sent an atom, a quoted string or a
 * literal; so the atom only holds atoms and quoted strings and is valid
 * IMAP to echo.  A name with a control or an 8-bit octet is an error.
 */
#ifndef PORTICO_IMAP_PARSER_H
#define PORTICO_IMAP_PARSER_H

#include <stddef.h>

#include "common/arena.h"

enum imap_arg_type {
	IMAP_ARG_ATOM,    /* also NIL, numbers, sequence sets, flags */
	IMAP_ARG_STRING,  /* quoted string */
	IMAP_ARG_LITERAL, /* {n}, {n+}, ~{n} */
	IMAP_ARG_LIST,    /* ( ... ) */
	IMAP_ARG_TYPE_COUNT
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;       /* NUL-terminated copy (atoms, strings,
				  literals: may hold NULs in literal8) */
	size_t len;
	int literal8;          /* ~{n} */
	int borrowed;          /* a literal left where it was read: str
				  points into the command, is not
				  NUL-terminated and is no astring */
	struct imap_arg *list; /* IMAP_ARG_LIST: children */
	unsigned count;
};

struct imap_parse_limits {
	unsigned max_depth;
	unsigned max_args; /* in the whole command */
	size_t max_section; /* octets between a section's brackets, as
			       written in its atom (literals included):
			       limits.max_line after login */
	size_t borrow_min;  /* literals of at least this many octets are
			       not copied (borrowed: the command must
			       outlive the arguments); 0: all copied */
};

/* Parses cmd[0..len) (no final CRLF).  On success returns 0 with the
 * top-level arguments in *args_r (tag and command name first).  On error
 * returns -1 and a message safe to send in *error_r. */
int imap_parse(const char *cmd, size_t len, struct arena *a,
	       const struct imap_parse_limits *lim, struct imap_arg **args_r,
	       unsigned *count_r, const char **error_r);

/* Helpers for handlers. */
int imap_arg_is_atom(const struct imap_arg *arg, const char *word);
int imap_arg_is_nil(const struct imap_arg *arg);
/* atom, quoted string or literal (RFC 3501 astring); NIL is a string. */
int imap_arg_is_astring(const struct imap_arg *arg);
/* quoted string, literal or NIL (RFC 3501 nstring). */
int imap_arg_is_string(const struct imap_arg *arg);
/* The client an ID list (RFC 2971 "key" "value" pairs) names: its "name"
 * value, and "/" and its "version" value when it has one, in out, bytes
 * outside printable ASCII as '?'; 1, or 0 (out "") when the list has no
 * name. */
int imap_id_client(const struct imap_arg *list, char *out, size_t outsize);

#endif
