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

struct pop3_update {
	struct pop3_session *ps;
	struct store_expunge_args a;
	uint32_t *gone, *seen;
};

static void
pop3_update_free(void *arg)
{
	struct pop3_update *u = arg;
	free(u->gone);
	free(u->seen);
	free(u);
}

static void
pop3_update_done(void *arg, int rc, const char *err)
{
	struct pop3_update *u = arg;
	struct pop3_session *ps = u->ps;
	if (rc != 0) {
		log_error("session=%s store error=\"%s\"", ps->s->id, err);
		session_printf(ps->s, "-ERR [SYS/TEMP] Some deleted messages "
				      "were not removed.\r\n");
		pop3_cmd_result("QUIT", 0);
	} else {
		log_info("session=%s pop3 update removed=%zu", ps->s->id,
			 u->a.removed);
		session_printf(ps->s, "+OK Logging out.\r\n");
		pop3_cmd_result("QUIT", 1);
		if (u->a.removed > 0)
			backend_mailbox_changed(ps->s->be, ps->mbox_id);
	}
	session_end(ps->s, "quit");
}

/* UPDATE state: every DELE, and what the EXPIRE policy removes, in one
 * transaction that is durable before +OK. */
void
pop3_cmd_quit(struct pop3_session *ps, const char *args)
{
	int64_t now = (int64_t)time(NULL);
	struct pop3_update *u = calloc(1, sizeof(*u));
	if (u == NULL)
		abort();
	u->ps = ps;
	u->gone = malloc((ps->count ? ps->count : 1) * sizeof(*u->gone));
	u->seen = malloc((ps->count ? ps->count : 1) * sizeof(*u->seen));
	if (u->gone == NULL || u->seen == NULL)
		abort();
	size_t ngone = 0, nseen = 0;
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
			u->gone[ngone++] = m->uid;
		else if (m->retrieved)
			u->seen[nseen++] = m->uid;
	}
	if (ngone == 0 && nseen == 0) {
		session_printf(ps->s, "+OK Logging out.\r\n");
		session_end(ps->s, "quit");
		pop3_update_free(u);
		return;
	}
	u->a.mbox_id = ps->mbox_id;
	u->a.uids = u->gone;
	u->a.n = ngone;
	u->a.retrieved = u->seen;
	u->a.nretrieved = nseen;
	u->a.now = now;
	session_store(ps->s, store_op_expunge, &u->a, pop3_update_done, u,
		      pop3_update_free);
}
