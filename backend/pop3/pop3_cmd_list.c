/* pop3_cmd_list.c - STAT, LIST, UIDL, NOOP, QUIT. */
#include "backend/pop3/pop3.h"

#include <string.h>

void
pop3_cmd_stat(struct pop3_session *ps, const char *args)
{
	if (args != NULL) {
		session_printf(ps->s, "-ERR STAT takes no arguments\r\n");
		return;
	}
	session_printf(ps->s, "+OK %zu %llu\r\n", ps->count,
		       (unsigned long long)ps->total);
}

void
pop3_cmd_list(struct pop3_session *ps, const char *args)
{
	if (args != NULL) {
		const struct pop3_msg *m = pop3_msg_arg(ps, args);
		if (m != NULL)
			session_printf(ps->s, "+OK %zu %llu\r\n",
				       (size_t)(m - ps->msgs) + 1,
				       (unsigned long long)m->size);
		return;
	}
	session_printf(ps->s, "+OK %zu messages (%llu octets)\r\n", ps->count,
		       (unsigned long long)ps->total);
	for (size_t i = 0; i < ps->count; i++)
		session_printf(ps->s, "%zu %llu\r\n", i + 1,
			       (unsigned long long)ps->msgs[i].size);
	session_write(ps->s, ".\r\n", 3);
}

/* A message's UIDL: the INBOX's UIDVALIDITY and the message's UID, which
 * never change for a stored message. */
void
pop3_cmd_uidl(struct pop3_session *ps, const char *args)
{
	if (args != NULL) {
		const struct pop3_msg *m = pop3_msg_arg(ps, args);
		if (m != NULL)
			session_printf(ps->s, "+OK %zu %08x%08x\r\n",
				       (size_t)(m - ps->msgs) + 1,
				       ps->uidvalidity, m->uid);
		return;
	}
	session_printf(ps->s, "+OK\r\n");
	for (size_t i = 0; i < ps->count; i++)
		session_printf(ps->s, "%zu %08x%08x\r\n", i + 1,
			       ps->uidvalidity, ps->msgs[i].uid);
	session_write(ps->s, ".\r\n", 3);
}

void
pop3_cmd_noop(struct pop3_session *ps, const char *args)
{
	session_printf(ps->s, "+OK\r\n");
}

void
pop3_cmd_quit(struct pop3_session *ps, const char *args)
{
	session_printf(ps->s, "+OK Logging out\r\n");
	session_end(ps->s, "quit");
}
