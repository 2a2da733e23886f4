/* pop3_cmd_retr.c - RETR and TOP: messages streamed from the store,
 * dot-stuffed, with CRLF line ends (RFC 1939 3). */
#include "backend/pop3/pop3.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define POP3_STREAM_CHUNK 32768

void
pop3_stream_end(struct pop3_session *ps)
{
	store_read_end(&ps->stream.txn);
	memset(&ps->stream, 0, sizeof(ps->stream));
	ps->streaming = 0;
}

/* Converts one chunk: a '.' at the start of a line is doubled, a bare LF
 * becomes CRLF.  Lines are found with memchr; what lies between the
 * insertions goes out in one write. */
static void
stream_chunk(struct bsession *s, struct pop3_stream *st, size_t n)
{
	const char *p = st->data + st->pos;
	size_t i = 0, start = 0;
	while (i < n) {
		if (st->bol && p[i] == '.') {
			session_write(s, p + start, i - start);
			session_write(s, ".", 1);
			start = i;
		}
		const char *nl = memchr(p + i, '\n', n - i);
		if (nl == NULL) {
			st->bol = 0;
			st->prev_cr = p[n - 1] == '\r';
			break;
		}
		size_t j = (size_t)(nl - p);
		/* the byte before the LF may be the previous chunk's last */
		int cr = j > 0 ? p[j - 1] == '\r' : st->prev_cr;
		if (!cr) {
			session_write(s, p + start, j - start);
			session_write(s, "\r", 1);
			start = j;
		}
		i = j + 1;
		st->bol = 1;
		st->prev_cr = 0;
	}
	session_write(s, p + start, n - start);
	st->pos += n;
}

int
pop3_stream_pump(struct pop3_session *ps)
{
	struct pop3_stream *st = &ps->stream;
	while (st->pos < st->len) {
		if (session_output_full(ps->s))
			return 1;
		size_t n = st->len - st->pos;
		if (n > POP3_STREAM_CHUNK)
			n = POP3_STREAM_CHUNK;
		stream_chunk(ps->s, st, n);
	}
	if (st->len > 0 && !st->bol)
		session_write(ps->s, "\r\n", 2);
	session_write(ps->s, ".\r\n", 3);
	pop3_stream_end(ps);
	return 0;
}

/* Starts sending len bytes of the message; returns -1 after -ERR. */
static int
stream_begin(struct pop3_session *ps, const struct pop3_msg *m,
	     const char **data_r, size_t *len_r)
{
	struct store *st = ps->s->be->store;
	struct store_msg_rec rec;
	const char *err;
	int rc = store_read_begin(st, &ps->stream.txn, &err);
	if (rc == 0)
		rc = store_message_get(st, ps->stream.txn, ps->mbox_id, m->uid,
				       &rec, &err);
	if (rc == 1) {
		/* Expunged by an IMAP session since the login: gone for
		   good, not a store failure (no [SYS/TEMP]: trying again
		   will not bring it back).  Its body may live on in
		   another mailbox; it is not this message any more. */
		pop3_stream_end(ps);
		log_info("session=%s pop3 uid=%u removed by another session",
			 ps->s->id, m->uid);
		session_printf(ps->s, "-ERR Message was removed by another "
				      "session.\r\n");
		return -1;
	}
	if (rc < 0 || store_body_get(st, ps->stream.txn, m->body_id, data_r,
				     len_r, &err) < 0) {
		pop3_stream_end(ps);
		log_error("session=%s store error=\"%s\"", ps->s->id, err);
		session_printf(ps->s, "-ERR [SYS/TEMP] Mail store error.\r\n");
		return -1;
	}
	ps->stream.data = *data_r;
	ps->stream.bol = 1;
	ps->streaming = 1;
	return 0;
}

void
pop3_cmd_retr(struct pop3_session *ps, const char *args)
{
	struct pop3_msg *m = pop3_msg_arg(ps, args);
	const char *data;
	size_t len;
	if (m == NULL || stream_begin(ps, m, &data, &len) < 0)
		return;
	ps->stream.len = len;
	m->retrieved = 1;
	session_printf(ps->s, "+OK %llu octets\r\n",
		       (unsigned long long)m->size);
	pop3_stream_pump(ps);
}

/* Length of the header, its blank line and the first `lines` body lines. */
static size_t
top_length(const char *d, size_t len, unsigned long lines)
{
	size_t i = 0;
	/* The header ends at the first empty line. */
	while (i < len) {
		const char *nl = memchr(d + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - d) + 1 : len;
		size_t l = end - i;
		i = end;
		if (l == 1 || (l == 2 && d[end - 2] == '\r'))
			break;
	}
	while (i < len && lines > 0) {
		const char *nl = memchr(d + i, '\n', len - i);
		i = nl ? (size_t)(nl - d) + 1 : len;
		lines--;
	}
	return i;
}

void
pop3_cmd_top(struct pop3_session *ps, const char *args)
{
	char num[32];
	const char *sp = args ? strchr(args, ' ') : NULL;
	if (sp == NULL || (size_t)(sp - args) >= sizeof(num)) {
		session_printf(ps->s, "-ERR TOP expects a message number and "
				      "a line count.\r\n");
		return;
	}
	memcpy(num, args, (size_t)(sp - args));
	num[sp - args] = '\0';
	char *end;
	if (sp[1] < '0' || sp[1] > '9') {
		session_printf(ps->s, "-ERR Invalid line count.\r\n");
		return;
	}
	unsigned long lines = strtoul(sp + 1, &end, 10);
	if (*end != '\0') {
		session_printf(ps->s, "-ERR Invalid line count.\r\n");
		return;
	}
	struct pop3_msg *m = pop3_msg_arg(ps, num);
	const char *data;
	size_t len;
	if (m == NULL || stream_begin(ps, m, &data, &len) < 0)
		return;
	ps->stream.len = top_length(data, len, lines);
	session_printf(ps->s, "+OK Top of message follows.\r\n");
	pop3_stream_pump(ps);
}
