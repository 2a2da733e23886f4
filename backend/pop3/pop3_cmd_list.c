/* pop3_cmd_list.c - STAT, LIST, UIDL, NOOP, CAPA. */
#include "backend/pop3/pop3.h"

#include <stdio.h>
#include <string.h>

void
pop3_cmd_stat(struct pop3_session *ps, const char *args)
{
	if (args != NULL) {
		session_printf(ps->s, "-ERR STAT takes no arguments.\r\n");
		return;
	}
	size_t n = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < ps->count; i++) {
		if (!ps->msgs[i].deleted) {
			n++;
			total += ps->msgs[i].size;
		}
	}
	session_printf(ps->s, "+OK %zu %llu\r\n", n,
		       (unsigned long long)total);
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
	session_printf(ps->s, "+OK Scan list follows.\r\n");
	for (size_t i = 0; i < ps->count; i++)
		if (!ps->msgs[i].deleted)
			session_printf(ps->s, "%zu %llu\r\n", i + 1,
				       (unsigned long long)ps->msgs[i].size);
	session_write(ps->s, ".\r\n", 3);
}

/* A message's UIDL: the INBOX's UIDVALIDITY and the message's UID, which
 * never change for a stored message, whatever IMAP does beside. */
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
	session_printf(ps->s, "+OK Unique-ID list follows.\r\n");
	for (size_t i = 0; i < ps->count; i++)
		if (!ps->msgs[i].deleted)
			session_printf(ps->s, "%zu %08x%08x\r\n", i + 1,
				       ps->uidvalidity, ps->msgs[i].uid);
	session_write(ps->s, ".\r\n", 3);
}

void
pop3_cmd_noop(struct pop3_session *ps, const char *args)
{
	if (args != NULL) {
		session_printf(ps->s, "-ERR NOOP takes no arguments.\r\n");
		return;
	}
	session_printf(ps->s, "+OK\r\n");
}

void
pop3_cmd_capa(struct pop3_session *ps, const char *args)
{
	const struct config *cfg = &ps->s->be->cfg;
	char expire[32];
	if (ps->expire_days < 0)
		snprintf(expire, sizeof(expire), "NEVER");
	else
		snprintf(expire, sizeof(expire), "%d", ps->expire_days);
	session_printf(ps->s,
		       "+OK Capability list follows.\r\n"
		       "CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
		       "PIPELINING\r\nEXPIRE %s\r\nLOGIN-DELAY %lld\r\n"
		       "IMPLEMENTATION Portico\r\n.\r\n",
		       expire, (long long)cfg->pop3_login_delay);
}
