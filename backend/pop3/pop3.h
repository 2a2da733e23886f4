/* pop3.h - the backend's POP3 engine (post-login, RFC 1939).
 *
 * The maildrop is the INBOX as it was at login: message numbers never move
 * during the session.
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
};

struct pop3_session {
	struct bsession *s;
	struct lp_reader lp;
	uint64_t mbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t count;
	uint64_t total;
	unsigned bad_commands;
};

typedef void pop3_cmd_func(struct pop3_session *ps, const char *args);

struct pop3_cmd {
	const char *name;
	pop3_cmd_func *func;
};

pop3_cmd_func pop3_cmd_stat, pop3_cmd_list, pop3_cmd_uidl, pop3_cmd_noop,
	pop3_cmd_quit;
pop3_cmd_func pop3_cmd_retr;

/* Parses a message number; returns the message or NULL after replying
 * with -ERR. */
const struct pop3_msg *pop3_msg_arg(struct pop3_session *ps, const char *arg);

#endif
