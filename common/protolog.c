/* protolog.c - protocol logging with secrets and message data left out. */
#include "common/protolog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define PROTOLOG_TAIL 32

static const char *protolog_names[] = {"imap", "pop3", "smtp", "lmtp"};
_Static_assert(sizeof(protolog_names) / sizeof(protolog_names[0]) ==
		       PROTOLOG_PROTO_COUNT,
	       "protocol names");

struct protolog *
protolog_new(enum protolog_proto proto, const char *session, size_t max)
{
	struct protolog *pl = calloc(1, sizeof(*pl));
	if (pl == NULL)
		abort();
	pl->proto = proto;
	snprintf(pl->session, sizeof(pl->session), "%s", session);
	pl->max = max;
	return pl;
}

void
protolog_free(struct protolog **pl)
{
	if (*pl == NULL)
		return;
	buf_free(&(*pl)->line);
	free(*pl);
	*pl = NULL;
}

static void
protolog_emit(const struct protolog *pl, const char *dir, const char *text,
	      size_t len)
{
	char esc[1024 * 4 + 8];
	size_t max = pl->max < 1024 ? pl->max : 1024;
	log_sanitize(esc, sizeof(esc), text, len, max);
	log_info("session=%s protocol=%s dir=%s line=\"%s\"", pl->session,
		 protolog_names[pl->proto], dir, esc);
}

/* The word at p[i..) up to a space, case-insensitively equal to name. */
static int
word_is(const char *p, size_t len, size_t i, const char *name)
{
	size_t n = strlen(name);
	return i + n <= len && strncasecmp(p + i, name, n) == 0 &&
	       (i + n == len || p[i + n] == ' ');
}

/* Index of the first word after the first space (IMAP: the command after
 * the tag), or len. */
static size_t
second_word(const char *p, size_t len)
{
	const char *sp = memchr(p, ' ', len);
	return sp == NULL ? len : (size_t)(sp - p) + 1;
}

/* A literal header "{n}", "{n+}" (after an optional '~') starting at
 * p[i] and ending its line: *n_r, and the index after its line end. */
static int
literal_header(const char *p, size_t len, size_t i, uint64_t *n_r,
	       size_t *data_r, size_t *close_r)
{
	if (i < len && p[i] == '~')
		i++;
	if (i >= len || p[i] != '{')
		return 0;
	size_t j = i + 1;
	uint64_t n = 0;
	if (j >= len || p[j] < '0' || p[j] > '9')
		return 0;
	while (j < len && p[j] >= '0' && p[j] <= '9') {
		if (n >= UINT64_MAX / 10)
			return 0;
		n = n * 10 + (uint64_t)(p[j] - '0');
		j++;
	}
	if (j < len && p[j] == '+')
		j++;
	if (j >= len || p[j] != '}')
		return 0;
	*close_r = j + 1;
	j++;
	if (j < len && p[j] == '\r')
		j++;
	if (j >= len || p[j] != '\n')
		return 0;
	*n_r = n;
	*data_r = j + 1;
	return 1;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Fail closed: among the first few words of a line, however separated
 * (tabs, runs of spaces, leading white space, a UID before the command),
 * a word naming a command that carries a secret; the index after it, or
 * 0.  IMAP: a tag, perhaps UID, then the command. */
static size_t
secret_word_end(enum protolog_proto proto, const char *p, size_t len)
{
	static const char *const imap[] = {"LOGIN", "AUTHENTICATE", NULL};
	static const char *const pop3[] = {"PASS", "APOP", "AUTH", NULL};
	static const char *const smtp[] = {"AUTH", NULL};
	const char *const *names = proto == PROTOLOG_IMAP   ? imap
				   : proto == PROTOLOG_POP3 ? pop3
							    : smtp;
	unsigned words = proto == PROTOLOG_IMAP ? 4 : 2;
	size_t i = 0;
	for (unsigned w = 0; w < words && i < len; w++) {
		while (i < len && is_ws(p[i]))
			i++;
		size_t start = i;
		while (i < len && !is_ws(p[i]))
			i++;
		for (const char *const *n = names; *n != NULL; n++)
			if (i - start == strlen(*n) &&
			    strncasecmp(p + start, *n, i - start) == 0)
				return i;
	}
	return 0;
}

void
protolog_render(enum protolog_proto proto, const char *p, size_t len,
		int sasl, size_t max, struct buf *out)
{
	if (sasl) {
		buf_append_str(out, PROTOLOG_REDACTED);
		return;
	}
	/* Arguments from token number cut on are secret (0: none). */
	unsigned cut = 0;
	if (proto == PROTOLOG_IMAP) {
		size_t w = second_word(p, len);
		if (word_is(p, len, w, "LOGIN") ||
		    word_is(p, len, w, "AUTHENTICATE"))
			cut = 3; /* tag LOGIN user | tag AUTHENTICATE mech */
	} else if (word_is(p, len, 0, "PASS")) {
		cut = proto == PROTOLOG_POP3 ? 1 : 0;
	} else if (word_is(p, len, 0, "APOP")) {
		cut = proto == PROTOLOG_POP3 ? 2 : 0;
	} else if (word_is(p, len, 0, "AUTH")) {
		cut = 2; /* AUTH mechanism | initial response */
	}
	/* Such a command in any other shape than the one read above (a
	   leading space, two spaces, a tab before the command word, UID
	   LOGIN) keeps nothing after its command word: the server refuses
	   the line, but the secret in it may be a real one. */
	size_t kw = secret_word_end(proto, p, len);
	if (kw != 0 && cut == 0) {
		buf_append(out, p, kw);
		buf_append(out, " ", 1);
		buf_append_str(out, PROTOLOG_REDACTED);
		return;
	}
	unsigned tokens = 0;
	int in_token = 0;
	size_t start = buf_used(out);
	size_t i = 0;
	while (i < len && buf_used(out) - start <= max) {
		char ch = p[i];
		if (is_ws(ch)) {
			/* a tab separates arguments here as the parsers may
			   take it: a password after one is still cut */
			in_token = 0;
			buf_append(out, " ", 1);
			i++;
			continue;
		}
		if (!in_token) {
			if (cut != 0 && tokens == cut) {
				buf_append_str(out, PROTOLOG_REDACTED);
				return;
			}
			tokens++;
			in_token = 1;
		}
		if (proto != PROTOLOG_IMAP) {
			buf_append(out, &ch, 1);
			i++;
			continue;
		}
		uint64_t n;
		size_t data, close;
		if (ch == '"') {
			buf_append(out, &ch, 1);
			for (i++; i < len; i++) {
				buf_append(out, p + i, 1);
				if (p[i] == '\\' && i + 1 < len) {
					buf_append(out, p + i + 1, 1);
					i++;
				} else if (p[i] == '"') {
					i++;
					break;
				}
			}
			continue;
		}
		if ((ch == '{' || ch == '~') &&
		    literal_header(p, len, i, &n, &data, &close)) {
			buf_append(out, p + i, close - i);
			buf_printf(out, "<%" PRIu64 " octets>", n);
			i = n > len - data ? len : data + (size_t)n;
			continue;
		}
		buf_append(out, &ch, 1);
		i++;
	}
}

void
protolog_command(struct protolog *pl, const char *cmd, size_t len, int sasl)
{
	if (pl == NULL)
		return;
	struct buf out = BUF_INIT;
	protolog_render(pl->proto, cmd, len, sasl, pl->max, &out);
	protolog_emit(pl, "in", buf_ptr(&out), buf_used(&out));
	buf_wipe(&out);
	if (pl->proto == PROTOLOG_POP3 && !sasl)
		pl->pop3_data_next = word_is(cmd, len, 0, "RETR") ||
				     word_is(cmd, len, 0, "TOP");
}

void
protolog_content(struct protolog *pl, size_t len, int end)
{
	if (pl == NULL)
		return;
	pl->data_octets += len;
	if (!end)
		return;
	log_info("session=%s protocol=%s dir=in data_octets=%" PRIu64,
		 pl->session, protolog_names[pl->proto], pl->data_octets);
	pl->data_octets = 0;
}

/* A complete output line (without its line end) in pl->line. */
static void
protolog_output_line(struct protolog *pl, const char *tail, size_t tail_len)
{
	const char *line = buf_ptr(&pl->line);
	size_t stored = buf_used(&pl->line);
	if (pl->pop3_data) {
		if (pl->line_len == 1 && line[0] == '.') {
			log_info("session=%s protocol=%s dir=out "
				 "data_octets=%" PRIu64,
				 pl->session, protolog_names[pl->proto],
				 pl->data_octets);
			pl->data_octets = 0;
			pl->pop3_data = 0;
			protolog_emit(pl, "out", ".", 1);
		} else {
			pl->data_octets += pl->line_len + 2;
		}
		return;
	}
	protolog_emit(pl, "out", line, stored);
	if (pl->proto == PROTOLOG_POP3 && pl->pop3_data_next) {
		pl->pop3_data_next = 0;
		pl->pop3_data = stored >= 3 && memcmp(line, "+OK", 3) == 0;
		pl->data_octets = 0;
		return;
	}
	if (pl->proto != PROTOLOG_IMAP || tail_len < 3 ||
	    tail[tail_len - 1] != '}')
		return;
	/* A line that ends with a literal header: its data follows. */
	size_t k = tail_len - 1;
	while (k > 0 && tail[k - 1] >= '0' && tail[k - 1] <= '9')
		k--;
	if (k == 0 || k == tail_len - 1 || tail[k - 1] != '{')
		return;
	uint64_t n = 0;
	for (size_t j = k; j < tail_len - 1 && n < UINT64_MAX / 10; j++)
		n = n * 10 + (uint64_t)(tail[j] - '0');
	pl->literal_left = n;
}

/* Keeps the last PROTOLOG_TAIL bytes of the output line. */
static void
protolog_tail(struct protolog *pl, const char *p, size_t n)
{
	if (n >= PROTOLOG_TAIL) {
		memcpy(pl->tail, p + n - PROTOLOG_TAIL, PROTOLOG_TAIL);
		pl->tail_len = PROTOLOG_TAIL;
		return;
	}
	size_t keep = PROTOLOG_TAIL - n;
	if (keep > pl->tail_len)
		keep = pl->tail_len;
	memmove(pl->tail, pl->tail + pl->tail_len - keep, keep);
	memcpy(pl->tail + keep, p, n);
	pl->tail_len = keep + n;
}

void
protolog_output(struct protolog *pl, const void *data, size_t len)
{
	if (pl == NULL)
		return;
	const char *p = data;
	while (len > 0) {
		if (pl->literal_left > 0) {
			size_t n = pl->literal_left < len ? (size_t)pl->literal_left
							  : len;
			pl->literal_left -= n;
			p += n;
			len -= n;
			continue;
		}
		const char *nl = memchr(p, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;
		size_t body = nl != NULL ? n - 1 : n;
		size_t have = buf_used(&pl->line);
		size_t keep = have < pl->max + 1 ? pl->max + 1 - have : 0;
		buf_append(&pl->line, p, body < keep ? body : keep);
		pl->line_len += body;
		protolog_tail(pl, p, body);
		p += n;
		len -= n;
		if (nl == NULL)
			return;
		if (pl->tail_len > 0 && pl->tail[pl->tail_len - 1] == '\r') {
			pl->tail_len--;
			if (buf_used(&pl->line) == pl->line_len)
				pl->line.len--;
			pl->line_len--;
		}
		protolog_output_line(pl, pl->tail, pl->tail_len);
		buf_reset(&pl->line);
		pl->line_len = 0;
		pl->tail_len = 0;
	}
}
