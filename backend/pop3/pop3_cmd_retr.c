/* pop3_cmd_retr.c - RETR: the message, dot-stuffed (RFC 1939 3). */
#include "backend/pop3/pop3.h"

#include <string.h>

#include "common/log.h"

/* Writes data with every line starting with '.' doubled, bare LF turned
 * into CRLF, and a final line end guaranteed. */
static void
pop3_write_stuffed(struct bsession *s, const char *data, size_t len)
{
	size_t start = 0;
	int bol = 1;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (bol && c == '.') {
			session_write(s, data + start, i - start);
			session_write(s, ".", 1);
			start = i;
		}
		if (c == '\n' && (i == 0 || data[i - 1] != '\r')) {
			session_write(s, data + start, i - start);
			session_write(s, "\r", 1);
			start = i;
		}
		bol = c == '\n';
	}
	session_write(s, data + start, len - start);
	if (len > 0 && data[len - 1] != '\n')
		session_write(s, "\r\n", 2);
}

void
pop3_cmd_retr(struct pop3_session *ps, const char *args)
{
	const struct pop3_msg *m = pop3_msg_arg(ps, args);
	if (m == NULL)
		return;
	struct store *st = ps->s->be->store;
	MDB_txn *txn = NULL;
	const char *err, *data;
	size_t len;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_body_get(st, txn, m->body_id, &data, &len, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", ps->s->id, err);
		session_printf(ps->s, "-ERR [SYS/TEMP] Mail store error\r\n");
		return;
	}
	session_printf(ps->s, "+OK %llu octets\r\n",
		       (unsigned long long)m->size);
	pop3_write_stuffed(ps->s, data, len);
	session_write(ps->s, ".\r\n", 3);
	store_read_end(&txn);
}
