/* pop3_session.c - POP3 session on the backend: maildrop, lock, input. */
#include "backend/pop3/pop3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/protolog.h"

/* clang-format off */
static const struct pop3_cmd pop3_cmds[] = {
	{ "STAT", pop3_cmd_stat },
	{ "LIST", pop3_cmd_list },
	{ "UIDL", pop3_cmd_uidl },
	{ "RETR", pop3_cmd_retr },
	{ "TOP",  pop3_cmd_top },
	{ "DELE", pop3_cmd_dele },
	{ "RSET", pop3_cmd_rset },
	{ "NOOP", pop3_cmd_noop },
	{ "CAPA", pop3_cmd_capa },
	{ "QUIT", pop3_cmd_quit },
};
/* clang-format on */

struct pop3_msg *
pop3_msg_arg(struct pop3_session *ps, const char *arg)
{
	char *end;
	if (arg == NULL || !isdigit((unsigned char)arg[0])) {
		session_printf(ps->s, "-ERR Message number required.\r\n");
		return NULL;
	}
	unsigned long n = strtoul(arg, &end, 10);
	if (*end != '\0' || n == 0 || n > ps->count) {
		session_printf(ps->s, "-ERR No such message.\r\n");
		return NULL;
	}
	if (ps->msgs[n - 1].deleted) {
		session_printf(ps->s, "-ERR Message %lu is marked as "
				      "deleted.\r\n",
			       n);
		return NULL;
	}
	return &ps->msgs[n - 1];
}

/* Commands by name and result, for /metrics (the loop's thread only). */
static uint64_t pop3_cmd_counts[sizeof(pop3_cmds) / sizeof(pop3_cmds[0])][2];

void
pop3_cmd_result(const char *name, int ok)
{
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (strcmp(pop3_cmds[i].name, name) == 0)
			metrics_add(&pop3_cmd_counts[i][ok ? 0 : 1], 1);
}

void
pop3_metrics_write(struct buf *b)
{
	char labels[96];
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		for (int r = 0; r < 2; r++) {
			uint64_t n = metrics_get(&pop3_cmd_counts[i][r]);
			if (n == 0)
				continue;
			snprintf(labels, sizeof(labels),
				 "protocol=\"pop3\",command=\"%s\",result=\"%s\"",
				 pop3_cmds[i].name, r == 0 ? "OK" : "ERR");
			metrics_sample(b, "portico_backend_commands_total",
				       labels, n);
		}
}

static void
pop3_bad(struct pop3_session *ps, const char *msg)
{
	session_printf(ps->s, "-ERR %s\r\n", msg);
	if (++ps->bad_commands >=
	    (unsigned)ps->s->be->cfg.limits_max_bad_commands) {
		session_printf(ps->s, "-ERR Too many invalid commands.\r\n");
		session_end(ps->s, "too many invalid commands");
	}
}

static void
pop3_dispatch(struct pop3_session *ps, char *line, size_t len)
{
	char *sp = memchr(line, ' ', len);
	const char *args = NULL;
	if (sp != NULL) {
		*sp = '\0';
		args = sp + 1;
	}
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++) {
		if (strcasecmp(pop3_cmds[i].name, line) == 0) {
			/* A reply written now is counted now; QUIT's comes
			   after the store has committed (pop3_cmd_dele.c). */
			size_t before = buf_used(&ps->s->out);
			pop3_cmds[i].func(ps, args);
			if (buf_used(&ps->s->out) > before)
				pop3_cmd_result(pop3_cmds[i].name,
						buf_ptr(&ps->s->out)[before] ==
							'+');
			return;
		}
	}
	if (strcasecmp(line, "USER") == 0 || strcasecmp(line, "PASS") == 0 ||
	    strcasecmp(line, "AUTH") == 0 || strcasecmp(line, "APOP") == 0 ||
	    strcasecmp(line, "STLS") == 0)
		pop3_bad(ps, "Already authenticated.");
	else
		pop3_bad(ps, "Unknown command.");
}

/* No command read in part, running or sending a message. */
static int
pop3_between_commands(const struct pop3_session *ps)
{
	return !ps->streaming && !ps->s->waiting &&
	       buf_used(&ps->lp.cmd) == 0;
}

/* A session that ends without QUIT changes nothing (RFC 1939 6). */
static void
pop3_shutdown(struct bsession *s, int force)
{
	struct pop3_session *ps = s->state;
	/* A kick does not wait for a command line the client withholds,
	   only for a command being run or a message being sent. */
	if (ps == NULL || s->ending ||
	    (!force && !pop3_between_commands(ps) &&
	     !(s->kicked && !ps->streaming && !s->waiting)))
		return;
	if (s->kicked)
		session_printf(s,
			       "-ERR Session ended by an administrator.\r\n");
	else
		session_printf(s, "-ERR [SYS/TEMP] Server shutting down.\r\n");
	session_end(s, s->kicked ? "kicked" : "shutdown");
}

static void
pop3_input(struct bsession *s)
{
	struct pop3_session *ps = s->state;
	if (session_draining(s))
		pop3_shutdown(s, 0);
	while (!s->ending && !session_output_full(s)) {
		if (ps->streaming) {
			if (pop3_stream_pump(ps))
				return; /* continues when credit arrives */
			if (session_draining(s))
				pop3_shutdown(s, 0);
			continue;
		}
		if (buf_used(&s->in) == 0)
			return;
		size_t used, len;
		enum lp_status st = lp_feed(&ps->lp, buf_ptr(&s->in),
					    buf_used(&s->in), &used);
		buf_consume(&s->in, used);
		session_consumed(s, used);
		switch (st) {
		case LP_MORE:
			return;
		case LP_COMMAND: {
			const char *line = lp_command(&ps->lp, &len);
			protolog_command(s->plog, line, len, 0);
			char *copy = strndup(line, len);
			if (copy == NULL)
				abort();
			pop3_dispatch(ps, copy, len);
			free(copy);
			lp_next(&ps->lp);
			if (session_draining(s))
				pop3_shutdown(s, 0);
			continue;
		}
		case LP_ERROR:
		case LP_FATAL: {
			const char *line = lp_command(&ps->lp, &len);
			protolog_command(s->plog, line, len, 0);
		}
			/* without IMAP's response code ([TOOBIG]): POP3
			   has no such code (RFC 2449 8) */
			pop3_bad(ps, lp_error_text(lp_error(&ps->lp)));
			lp_next(&ps->lp);
			continue;
		case LP_CONTINUE:
		case LP_STATUS_COUNT:
			abort();
		}
	}
}

static int
pop3_expire_days(const char *setting)
{
	if (strcasecmp(setting, "never") == 0)
		return -1;
	char *end;
	long v = strtol(setting, &end, 10);
	if (end == setting || *end != '\0' || v < 0 || v > 100000)
		return -1;
	return (int)v;
}

static struct pop3_login *
pop3_login_find(struct backend *be, const char *mailbox_id)
{
	for (struct pop3_login *l = be->pop3_logins; l != NULL; l = l->next)
		if (strcmp(l->mailbox_id, mailbox_id) == 0)
			return l;
	return NULL;
}

static int
pop3_open(struct bsession *s, const Portico__Open *o, const char **code_r,
	  const char **reason_r)
{
	struct backend *be = s->be;
	struct store *st = be->store;
	const struct config *cfg = &be->cfg;
	struct store_user_rec u;
	struct store_mailbox_rec mb;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	MDB_txn *txn = NULL;
	const char *err;
	int rc;

	for (struct pop3_session *p = be->pop3_sessions; p != NULL;
	     p = p->next_locked) {
		if (strcmp(p->s->mailbox_id, s->mailbox_id) == 0) {
			*code_r = "IN-USE";
			*reason_r = "Mailbox is in use by another POP3 session.";
			return -1;
		}
	}
	struct pop3_login *last = pop3_login_find(be, s->mailbox_id);
	uint64_t now_ms = uv_now(be->loop);
	if (last != NULL && cfg->pop3_login_delay > 0 &&
	    now_ms - last->at_ms < (uint64_t)cfg->pop3_login_delay * 1000) {
		*code_r = "LOGIN-DELAY";
		*reason_r = "Minimum time between logins has not passed.";
		return -1;
	}

	*code_r = "SYS/TEMP";
	*reason_r = "Mail store error.";
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		return -1;
	}
	rc = store_user_get(st, txn, s->mailbox_id, &u, &err);
	if (rc == 0)
		rc = store_mailbox_get(st, txn, u.user_num, "INBOX", &mb, &err);
	if (rc == 0)
		rc = store_messages_list(st, txn, mb.mbox_id, &msgs, &n, &err);
	store_read_end(&txn);
	if (rc != 0) {
		if (rc < 0)
			log_error("session=%s store error=\"%s\"", s->id, err);
		else
			*reason_r = "Mailbox not provisioned on this server.";
		return -1;
	}
	struct pop3_session *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		abort();
	ps->s = s;
	if (cfg->log_protocol_pop3)
		s->plog = protolog_new(PROTOLOG_POP3, s->id,
				       (size_t)cfg->log_protocol_max_line);
	ps->mbox_id = mb.mbox_id;
	ps->uidvalidity = mb.uidvalidity;
	ps->expire_days = pop3_expire_days(cfg->pop3_expire);
	ps->msgs = calloc(n ? n : 1, sizeof(*ps->msgs));
	if (ps->msgs == NULL)
		abort();
	int newest_first = strcasecmp(cfg->pop3_message_order,
				      "newest_first") == 0;
	for (size_t i = 0; i < n; i++) {
		struct pop3_msg *m = &ps->msgs[newest_first ? n - 1 - i : i];
		m->uid = msgs[i].uid;
		m->size = msgs[i].rec.size;
		m->body_id = msgs[i].rec.body_id;
		m->internaldate = msgs[i].rec.internaldate;
		m->pop3_retrieved = msgs[i].rec.pop3_retrieved;
	}
	ps->count = n;
	free(msgs);
	size_t max = cfg->pop3_max_command_size;
	struct lp_limits lim = {max, 0, max, 0};
	lp_init(&ps->lp, LP_MODE_LINE, &lim);
	s->state = ps;
	ps->next_locked = be->pop3_sessions;
	be->pop3_sessions = ps;
	if (last == NULL) {
		last = calloc(1, sizeof(*last));
		if (last == NULL)
			abort();
		snprintf(last->mailbox_id, sizeof(last->mailbox_id), "%s",
			 s->mailbox_id);
		last->next = be->pop3_logins;
		be->pop3_logins = last;
	}
	last->at_ms = now_ms;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += ps->msgs[i].size;
	session_printf(s, "+OK Logged in, %zu messages (%llu octets).\r\n",
		       ps->count, (unsigned long long)total);
	return 0;
}

static void
pop3_free(struct bsession *s)
{
	struct pop3_session *ps = s->state;
	if (ps == NULL)
		return;
	pop3_stream_end(ps);
	struct pop3_session **pp = &s->be->pop3_sessions;
	while (*pp != NULL && *pp != ps)
		pp = &(*pp)->next_locked;
	if (*pp == ps)
		*pp = ps->next_locked;
	lp_free(&ps->lp);
	free(ps->msgs);
	free(ps);
	s->state = NULL;
}

const struct session_engine pop3_engine = {
	.name = "pop3",
	.open = pop3_open,
	.input = pop3_input,
	.free = pop3_free,
	.shutdown = pop3_shutdown,
};
