/* fuzz_imap_parser.c - the bounded reader and the IMAP argument parser.
 *
 * The input is split by its first byte into chunks of varying size, fed
 * through lineparse in IMAP mode (literals, continuations, errors) and
 * every complete command through imap_parse(), as the backend does.  The
 * reader shares a budget (its size from the first byte too) with a second
 * reader holding part of it: the budget is never exceeded, and everything
 * taken from it comes back, also from commands held beyond the reader
 * with their large literals borrowed (not copied) by the parser.  Every
 * list is also read as an ID list (the client's name and version). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/imap_parser.h"
#include "common/lineparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An atom with a section, as the parser wrote it, parses again to
 * itself: FETCH echoes it to the client as valid IMAP. */
static void
check_section(const struct imap_arg *arg, struct arena *a,
	      const struct imap_parse_limits *plim)
{
	struct imap_arg *again;
	unsigned n;
	const char *err;
	if (memchr(arg->str, '[', arg->len) == NULL)
		return;
	if (imap_parse(arg->str, arg->len, a, plim, &again, &n, &err) != 0 ||
	    n != 1 || again[0].type != IMAP_ARG_ATOM ||
	    again[0].len != arg->len ||
	    memcmp(again[0].str, arg->str, arg->len) != 0)
		__builtin_trap();
}

/* The command a borrowed literal points into (held by the caller). */
static const char *held_cmd;
static size_t held_len;

static void
borrowed_ok(const struct imap_arg *arg, const struct imap_parse_limits *plim)
{
	if (arg->type != IMAP_ARG_LITERAL || plim->borrow_min == 0 ||
	    arg->len < plim->borrow_min || held_cmd == NULL ||
	    arg->str < held_cmd || arg->str + arg->len > held_cmd + held_len ||
	    imap_arg_is_astring(arg))
		__builtin_trap();
}

/* Every list read as an ID list (imap_id_client): printable ASCII,
 * terminated within the buffer, empty without a name; a buffer of any
 * size (down to one byte) holds a prefix of what a large one holds. */
static void
id_client_ok(const struct imap_arg *list)
{
	char big[256], small[8];
	int found = imap_id_client(list, big, sizeof(big));
	size_t len = strnlen(big, sizeof(big));
	if (len == sizeof(big) || (!found && len != 0))
		__builtin_trap();
	for (size_t i = 0; i < len; i++)
		if (big[i] < 32 || big[i] > 126)
			__builtin_trap();
	for (size_t size = 1; size <= sizeof(small); size++) {
		if (imap_id_client(list, small, size) != found ||
		    strnlen(small, size) == size ||
		    strncmp(small, big, strlen(small)) != 0)
			__builtin_trap();
	}
}

static void
walk(const struct imap_arg *args, unsigned n, unsigned depth, struct arena *a,
     const struct imap_parse_limits *plim)
{
	for (unsigned i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			id_client_ok(&args[i]);
		if (args[i].type == IMAP_ARG_LIST)
			walk(args[i].list, args[i].count, depth + 1, a, plim);
		else if (args[i].borrowed)
			borrowed_ok(&args[i], plim);
		else if (args[i].str[args[i].len] != '\0')
			__builtin_trap();
		else if (args[i].type == IMAP_ARG_ATOM)
			check_section(&args[i], a, plim);
		(void)imap_arg_is_nil(&args[i]);
		(void)imap_arg_is_astring(&args[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = (data[0] % 64) + 1;
	data++;
	size--;
	struct lp_limits lim = {1024, 4096, 8192, 16};
	struct lp_reader r;
	struct arena a;
	struct imap_parse_limits plim = {16, 1000, 1024};
	struct lp_budget budget = {.max = (uint64_t)(data[-1] >> 6) * 1500};
	struct lp_reader other;
	lp_init(&r, LP_MODE_IMAP, &lim);
	lp_init(&other, LP_MODE_IMAP, &lim);
	lp_set_budget(&r, &budget);
	lp_set_budget(&other, &budget);
	size_t used0;
	(void)lp_feed(&other, "x APPEND a {700}\r\n", 18, &used0);
	/* Commands of 64 octets or more are held and their literals of 64
	   or more borrowed, as the backend does from 1 MiB. */
	struct lp_held held = LP_HELD_INIT;
	arena_init(&a, 1024);
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		size_t pos = 0;
		while (pos < n) {
			size_t used;
			enum lp_status st = lp_feed(&r, (const char *)data + off +
							       pos,
						    n - pos, &used);
			pos += used;
			size_t len;
			const char *cmd = lp_command(&r, &len);
			if (len > lim.max_command)
				__builtin_trap();
			if (budget.max != 0 && budget.used > budget.max)
				__builtin_trap();
			if (budget.used !=
			    r.reserved + other.reserved + held.reserved)
				__builtin_trap();
			if (st == LP_COMMAND) {
				struct imap_arg *args;
				unsigned argc;
				const char *err;
				plim.borrow_min = 0;
				held_cmd = NULL;
				if (len >= 64) {
					cmd = lp_hold_command(&r, &held);
					if (cmd[len] != '\0')
						__builtin_trap();
					plim.borrow_min = 64;
					held_cmd = cmd;
					held_len = len;
				}
				if (imap_parse(cmd, len, &a, &plim, &args, &argc,
					       &err) == 0)
					walk(args, argc, 0, &a, &plim);
				arena_clear(&a);
				lp_next(&r);
				if (held_cmd != NULL && (data[off] & 1))
					lp_held_release(&held);
			} else if (st == LP_ERROR) {
				lp_next(&r);
			} else if (st == LP_FATAL) {
				goto done;
			} else if (st == LP_MORE) {
				break;
			}
		}
		off += n;
	}
done:
	arena_free(&a);
	lp_free(&r);
	lp_free(&other);
	lp_held_release(&held);
	if (budget.used != 0)
		__builtin_trap();
	return 0;
}
