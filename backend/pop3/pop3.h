/* pop3.h - the backend's POP3 engine (post-login, RFC 1939, RFC 2449).
 *
 * The maildrop is the INBOX as it was at login: message numbers never move
 * during the session.  DELE only marks; QUIT removes every marked message
 * in one durable transaction; a session that ends any other way changes
 * nothing.  One POP3 session per maildrop at a time (-ERR [IN-USE]).
 */
#ifndef PORTICO_POP3_H
#define PORTICO_POP3_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

struct pop3_msg {
	uint32_t uid;
	uint64_t size;
	uint64_t body_id;
	int64_t internaldate;
	uint32_t pop3_retrieved; /* stored first-download time */
	unsigned deleted : 1;
	unsigned retrieved : 1;  /* fully downloaded in this session */
};

/* A message being sent (RETR, TOP): streamed from the store as the
 * client's window allows, never copied whole. */
struct pop3_stream {
	MDB_txn *txn;       /* keeps data valid */
	const char *data;
	size_t len, pos;
	int bol;            /* at the beginning of a line */
	int prev_cr;
};

struct pop3_session {
	struct bsession *s;
	struct lp_reader lp;
	uint64_t mbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t count;
	int expire_days;     /* -1: never */
	struct pop3_stream stream;
	int streaming;
	unsigned bad_commands;
	struct pop3_session *next_locked; /* backend's lock list */
};

struct pop3_login {
	char mailbox_id[256];
	uint64_t at_ms;
	struct pop3_login *next;
};

typedef void pop3_cmd_func(struct pop3_session *ps, const char *args);

/* pop3_session.c: counts a command's reply for /metrics. */
void pop3_cmd_result(const char *name, int ok);

struct pop3_cmd {
	const char *name;
	pop3_cmd_func *func;
};

pop3_cmd_func pop3_cmd_stat, pop3_cmd_list, pop3_cmd_uidl, pop3_cmd_noop,
	pop3_cmd_capa;
pop3_cmd_func pop3_cmd_retr, pop3_cmd_top;
pop3_cmd_func pop3_cmd_dele, pop3_cmd_rset, pop3_cmd_quit;

/* Parses a message number; returns the message or NULL after replying
 * with -ERR (no such message, or marked as deleted). */
struct pop3_msg *pop3_msg_arg(struct pop3_session *ps, const char *arg);
/* Sends more of the current RETR/TOP; returns 1 while unfinished. */
int pop3_stream_pump(struct pop3_session *ps);
void pop3_stream_end(struct pop3_session *ps);

#endif
