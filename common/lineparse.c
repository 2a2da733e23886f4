/* lineparse.c - bounded line and literal reader. */
#include "common/lineparse.h"

#include <stdio.h>
#include <string.h>

void
lp_init(struct lp_reader *r, enum lp_mode mode, const struct lp_limits *lim)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->lim = *lim;
}

void
lp_set_mode(struct lp_reader *r, enum lp_mode mode)
{
	r->mode = mode;
}

void
lp_set_limits(struct lp_reader *r, const struct lp_limits *lim)
{
	r->lim = *lim;
}

static void
lp_release(struct lp_reader *r)
{
	if (r->budget != NULL)
		r->budget->used -= r->reserved;
	r->reserved = 0;
}

void
lp_free(struct lp_reader *r)
{
	lp_release(r);
	buf_wipe(&r->cmd);
}

void
lp_set_budget(struct lp_reader *r, struct lp_budget *budget)
{
	lp_release(r);
	r->budget = budget;
}

static void
lp_clear_command(struct lp_reader *r)
{
	lp_release(r);
	if (r->cmd.cap > LP_KEEP_SIZE)
		buf_free(&r->cmd);
	else
		buf_reset(&r->cmd);
	r->line_start = 0;
	r->literal_left = 0;
	r->literals = 0;
	r->in_quote = r->escaped = 0;
	r->done = 0;
	r->error = NULL;
	r->temporary = 0;
}

void
lp_next(struct lp_reader *r)
{
	int skipping = r->skipping;
	lp_clear_command(r);
	r->skipping = skipping;
}

const char *
lp_hold_command(struct lp_reader *r, struct lp_held *h)
{
	lp_held_release(h);
	/* The NUL after the command: a borrowed literal used as a C string
	   by mistake ends there, not beyond the buffer. */
	*buf_reserve(&r->cmd, 1) = '\0';
	h->buf = r->cmd;
	h->budget = r->budget;
	h->reserved = r->reserved;
	r->cmd = (struct buf)BUF_INIT;
	r->reserved = 0;
	return buf_used(&h->buf) > 0 ? buf_ptr(&h->buf) : "";
}

void
lp_held_release(struct lp_held *h)
{
	if (h->budget != NULL)
		h->budget->used -= h->reserved;
	h->budget = NULL;
	h->reserved = 0;
	buf_free(&h->buf);
}

void
lp_reset(struct lp_reader *r)
{
	lp_clear_command(r);
	r->skipping = 0;
}

const char *
lp_command(const struct lp_reader *r, size_t *len_r)
{
	*len_r = buf_used(&r->cmd);
	return *len_r > 0 ? buf_ptr(&r->cmd) : ""; /* data may be NULL */
}

const char *
lp_error(const struct lp_reader *r)
{
	return r->error != NULL ? r->error : "Invalid command";
}

int
lp_error_temporary(const struct lp_reader *r)
{
	return r->temporary;
}

const char *
lp_error_text(const char *msg)
{
	const char *end = msg[0] == '[' ? strchr(msg, ']') : NULL;
	if (end == NULL)
		return msg;
	end++;
	while (*end == ' ')
		end++;
	return *end != '\0' ? end : msg;
}

/* While a bad line is skipped, r->skipping also says whether the line so
 * far ends like a non-synchronizing literal header: "+}" or "-}", maybe
 * followed by a CR.  The literal would follow at once and must not be read
 * as commands, so such a line closes the connection (nginx checks the
 * same).  The state depends on the last three bytes only. */
enum { SKIP_NONE, SKIP_PLAIN, SKIP_SIGN, SKIP_BRACE, SKIP_BRACE_CR };

static int
lp_skip_scan(const struct lp_reader *r, int st, const char *p, size_t n)
{
	if (r->mode != LP_MODE_IMAP)
		return SKIP_PLAIN;
	for (size_t i = n > 3 ? n - 3 : 0; i < n; i++) {
		if (p[i] == '+' || p[i] == '-')
			st = SKIP_SIGN;
		else if (p[i] == '}' && st == SKIP_SIGN)
			st = SKIP_BRACE;
		else if (p[i] == '\r' && st == SKIP_BRACE)
			st = SKIP_BRACE_CR;
		else
			st = SKIP_PLAIN;
	}
	return st;
}

static int
lp_skip_nonsync(int st)
{
	return st == SKIP_BRACE || st == SKIP_BRACE_CR;
}

/* Reports err.  A line that has not ended yet is skipped up to its end;
 * one that has ended like a non-synchronizing literal header is fatal. */
static enum lp_status
lp_fail(struct lp_reader *r, const char *err, int line_ended)
{
	size_t n = buf_used(&r->cmd) - r->line_start;
	int st = SKIP_PLAIN;
	if (n > 0)
		st = lp_skip_scan(r, st, buf_ptr(&r->cmd) + r->line_start, n);

	r->error = err;
	r->skipping = line_ended ? SKIP_NONE : st;
	r->in_quote = r->escaped = 0;
	r->literal_left = 0;
	if (line_ended && lp_skip_nonsync(st))
		return LP_FATAL;
	return LP_ERROR;
}

/* Looks for a literal header at the end of the line line[0..len):
 * "{digits}" "{digits+}" or "~{digits}" (the ~ is just left in the line).
 * Returns 1 with *size_r and *sync_r when found, 0 when not, -1 when the
 * number is too large to represent. */
static int
lp_literal_header(const char *line, size_t len, uint64_t *size_r,
		  int *sync_r)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t end = len - 1;
	int sync = 1;
	if (line[end - 1] == '+' || line[end - 1] == '-') {
		/* LITERAL+ / LITERAL- (RFC 7888) both mean non-sync. */
		sync = 0;
		end--;
	}
	*sync_r = sync; /* also when the size overflows */
	size_t start = end;
	while (start > 0 && line[start - 1] >= '0' && line[start - 1] <= '9')
		start--;
	if (start == end || start == 0 || line[start - 1] != '{')
		return 0;
	uint64_t v = 0;
	for (size_t i = start; i < end; i++) {
		unsigned d = (unsigned)(line[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*size_r = v;
	return 1;
}

/* Handles the end of a line in IMAP mode: either a literal follows, or the
 * command is complete. */
static enum lp_status
lp_imap_line_end(struct lp_reader *r)
{
	size_t len = buf_used(&r->cmd) - r->line_start;
	uint64_t size = 0;
	int sync = 1;

	if (r->in_quote) {
		r->in_quote = r->escaped = 0;
		return LP_COMMAND; /* the parser reports the open quote */
	}
	if (len == 0)
		return LP_COMMAND; /* and cmd.data may still be NULL */
	const char *line = r->cmd.data + r->cmd.off + r->line_start;
	int rc = lp_literal_header(line, len, &size, &sync);
	if (rc == 0)
		return LP_COMMAND;
	/* The command grows by the header's line end and the literal. */
	if (rc < 0 || size > r->lim.max_literal ||
	    size > r->lim.max_command ||
	    buf_used(&r->cmd) + 2 > r->lim.max_command - size) {
		r->error = "[TOOBIG] Literal too large";
		r->literal_left = 0;
		if (!sync)
			return LP_FATAL;
		return LP_ERROR;
	}
	if (!sync && r->lim.max_nonsync != 0 && size > r->lim.max_nonsync) {
		r->error = "[TOOBIG] Non-synchronizing literals are limited to "
			   "4096 octets (LITERAL-)";
		r->literal_left = 0;
		return LP_FATAL;
	}
	if (++r->literals > r->lim.max_literals) {
		r->error = "[LIMIT] Too many literals";
		return sync ? LP_ERROR : LP_FATAL;
	}
	if (r->budget != NULL && r->budget->max != 0 &&
	    size > r->budget->max - r->budget->used) {
		r->budget->refused++;
		r->error = "[UNAVAILABLE] Server busy with other large "
			   "commands, try again later";
		r->temporary = 1;
		r->literal_left = 0;
		return sync ? LP_ERROR : LP_FATAL;
	}
	if (r->budget != NULL) {
		r->budget->used += size;
		r->reserved += size;
	}
	/* Keep the line end after the header: the parser expects it.  Room
	   for the literal and a short line after it is made at once: a
	   large literal is not copied from buffer to buffer as it grows, and
	   its buffer is its size, not the next power of two. */
	buf_reserve(&r->cmd, 2 + size + 256);
	buf_append(&r->cmd, "\r\n", 2);
	r->literal_left = size;
	r->line_start = buf_used(&r->cmd) + size;
	if (size == 0 && !sync)
		return LP_MORE;
	return sync ? LP_CONTINUE : LP_MORE;
}

enum lp_status
lp_feed(struct lp_reader *r, const char *data, size_t len, size_t *consumed_r)
{
	size_t i = 0;
	*consumed_r = 0;

	while (i < len) {
		if (r->skipping) {
			const char *nl = memchr(data + i, '\n', len - i);
			size_t end = nl != NULL ? (size_t)(nl - data) : len;
			r->skipping = lp_skip_scan(r, r->skipping, data + i,
						   end - i);
			if (nl == NULL) {
				i = len;
				break;
			}
			i = end + 1;
			if (lp_skip_nonsync(r->skipping)) {
				r->skipping = SKIP_NONE;
				r->error = "Invalid command ended in a "
					   "non-synchronizing literal";
				*consumed_r = i;
				return LP_FATAL;
			}
			r->skipping = SKIP_NONE;
			continue;
		}
		if (r->literal_left > 0) {
			size_t n = len - i;
			if (n > r->literal_left)
				n = (size_t)r->literal_left;
			buf_append(&r->cmd, data + i, n);
			r->literal_left -= n;
			i += n;
			continue;
		}
		/* Line bytes: scan up to the line end or the limits. */
		size_t line_len = buf_used(&r->cmd) - r->line_start;
		size_t start = i;
		while (i < len) {
			unsigned char c = (unsigned char)data[i];
			if (c == '\n')
				break;
			if (c == '\0') {
				buf_append(&r->cmd, data + start, i - start);
				*consumed_r = i + 1;
				lp_fail(r, "NUL byte in command", 0);
				r->skipping = SKIP_PLAIN; /* the NUL is last */
				return LP_ERROR;
			}
			if (r->mode == LP_MODE_IMAP) {
				if (r->escaped)
					r->escaped = 0;
				else if (r->in_quote && c == '\\')
					r->escaped = 1;
				else if (c == '"')
					r->in_quote = !r->in_quote;
			}
			i++;
			if (line_len + (i - start) > r->lim.max_line + 1 ||
			    buf_used(&r->cmd) + (i - start) >
				    r->lim.max_command + 1) {
				buf_append(&r->cmd, data + start, i - start);
				*consumed_r = i;
				return lp_fail(r, "[TOOBIG] Command line too "
						  "long", 0);
			}
		}
		buf_append(&r->cmd, data + start, i - start);
		if (i == len)
			break;
		i++; /* the LF */
		/* Strip the CR of CRLF. */
		size_t used = buf_used(&r->cmd);
		if (used > r->line_start && r->cmd.data[r->cmd.len - 1] == '\r')
			r->cmd.len--;
		if (buf_used(&r->cmd) - r->line_start > r->lim.max_line ||
		    buf_used(&r->cmd) > r->lim.max_command) {
			*consumed_r = i;
			return lp_fail(r, "[TOOBIG] Command line too long", 1);
		}
		*consumed_r = i;
		if (r->mode == LP_MODE_LINE)
			return LP_COMMAND;
		enum lp_status st = lp_imap_line_end(r);
		if (st == LP_ERROR) {
			r->skipping = 0; /* the line has ended */
			return st;
		}
		if (st != LP_MORE)
			return st;
	}
	*consumed_r = i;
	return LP_MORE;
}

static int
lp_tag_char(unsigned char c)
{
	/* ASTRING-CHAR minus '+' (RFC 3501 tag). */
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\+", c) == NULL;
}

char *
lp_tag(const char *cmd, size_t len, char *out, size_t outsize)
{
	size_t n = 0;
	while (n < len && lp_tag_char((unsigned char)cmd[n]))
		n++;
	if (n == 0 || n >= outsize || (n < len && cmd[n] != ' ')) {
		snprintf(out, outsize, "*");
		return out;
	}
	memcpy(out, cmd, n);
	out[n] = '\0';
	return out;
}
