/* pop3_cmd_dele.c - DELE, RSET and QUIT with the UPDATE state. */
#include "backend/pop3/pop3.h"

#include <stdlib.h>
#include <time.h>

#include "common/log.h"

void
pop3_cmd_dele(struct pop3_session *ps, const char *args)
{
	struct pop3_msg *m = pop3_msg_arg(ps, args);
	if (m == NULL)
		return;
	m->deleted = 1;
	session_printf(ps->s, "+OK Message %zu deleted.\r\n",
		       (size_t)(m - ps->msgs) + 1);
}

void
pop3_cmd_rset(struct pop3_session *ps, const char *args)
{
	size_t n = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < ps->count; i++) {
		ps->msgs[i].deleted = 0;
		n++;
		total += ps->msgs[i].size;
	}
	session_printf(ps->s, "+OK %zu messages (%llu octets).\r\n", n,
		       (unsigned long long)total);
}

/* UPDATE state: every DELE, and what the EXPIRE policy removes, in one
 * transaction that is durable before +OK. */
void
pop3_cmd_quit(struct pop3_session *ps, const char *args)
{
	int64_t now = (int64_t)time(NULL);
	uint32_t *gone = malloc((ps->count ? ps->count : 1) * sizeof(*gone));
	uint32_t *seen = malloc((ps->count ? ps->count : 1) * sizeof(*seen));
	size_t ngone = 0, nseen = 0;
	if (gone == NULL || seen == NULL)
		abort();
	for (size_t i = 0; i < ps->count; i++) {
		const struct pop3_msg *m = &ps->msgs[i];
		int expired = 0;
		if (ps->expire_days == 0 && m->retrieved)
			expired = 1;
		if (ps->expire_days > 0 && m->pop3_retrieved != 0 &&
		    now - (int64_t)m->pop3_retrieved >=
			    (int64_t)ps->expire_days * 86400)
			expired = 1;
		if (m->deleted || expired)
			gone[ngone++] = m->uid;
		else if (m->retrieved)
			seen[nseen++] = m->uid;
	}
	const char *err;
	int rc = 0;
	if (ngone > 0 || nseen > 0)
		rc = store_expunge(ps->s->be->store, ps->mbox_id, gone, ngone,
				   seen, nseen, now, &err);
	free(gone);
	free(seen);
	if (rc < 0) {
		log_error("session=%s store error=\"%s\"", ps->s->id, err);
		session_printf(ps->s, "-ERR [SYS/TEMP] Some deleted messages "
				      "were not removed.\r\n");
	} else {
		log_info("session=%s pop3 update removed=%zu", ps->s->id,
			 ngone);
		session_printf(ps->s, "+OK Logging out.\r\n");
	}
	session_end(ps->s, "quit");
}
