/* imap_cmd_append.c - APPEND with MULTIAPPEND (RFC 3502) and UIDPLUS
 * (RFC 4315): all messages or none, durable before the tagged OK; and
 * REPLACE (RFC 8508): an APPEND and the expunge of the message it
 * replaces, in one transaction. */
#define _XOPEN_SOURCE 700
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/mime/mime.h"
#include "common/log.h"

struct append_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_append_args a;
	struct store_new_msg *msgs;
};

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time), day may be
 * space-padded. */
static int
parse_date_time(const char *s, int64_t *r)
{
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int day, year, hh, mm, ss, zone;
	char m[4], sign;
	if (strlen(s) != 26 ||
	    sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, m, &year, &hh, &mm,
		   &ss, &sign, &zone) != 8)
		return -1;
	int month = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(m, mon[i]) == 0)
			month = i;
	if (month < 0 || day < 1 || day > 31 || year < 1900 || hh > 23 ||
	    mm > 59 || ss > 60 || (sign != '+' && sign != '-') || zone > 1400 ||
	    zone % 100 > 59)
		return -1;
	struct tm tm = {0};
	tm.tm_mday = day;
	tm.tm_mon = month;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*r = sign == '+' ? t - off : t + off;
	return 0;
}

static void
append_done(void *ctx, int rc, const char *err)
{
	struct append_ctx *ac = ctx;
	struct imap_cmd_ctx *cmd = ac->cmd;
	struct imap_session *is = cmd->is;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	backend_mailbox_changed(is->s->be, ac->a.mbox_id_out);
	if (is->state == IMAP_STATE_SELECTED &&
	    is->mbox.mbox_id == ac->a.mbox_id_out)
		imap_sync(is, 1);
	if (ac->a.n == 1)
		imap_tagged(cmd, "OK", "[APPENDUID %u %u] APPEND completed",
			    ac->a.uidvalidity, ac->a.first_uid);
	else
		imap_tagged(cmd, "OK", "[APPENDUID %u %u:%u] APPEND completed",
			    ac->a.uidvalidity, ac->a.first_uid,
			    ac->a.first_uid + (uint32_t)ac->a.n - 1);
}

/* One message of APPEND or REPLACE from args[*i]: [flag-list]
 * [date-time] literal (or RFC 6855's UTF8 (literal)), parsed into m with
 * its MIME structure; *i past it.  -1 after a tagged answer. */
static int
message_arg(struct imap_cmd_ctx *cmd, unsigned *i, uint64_t limit,
	    struct store_new_msg *m)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	if (*i < cmd->argc && cmd->args[*i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(cmd, &cmd->args[*i], &m->flags,
				     (const char ***)&m->keywords,
				     &m->nkeywords) < 0)
			return -1;
		(*i)++;
	}
	if (*i < cmd->argc && cmd->args[*i].type == IMAP_ARG_STRING) {
		if (parse_date_time(cmd->args[*i].str, &m->internaldate) < 0) {
			imap_tagged(cmd, "BAD", "Invalid date-time");
			return -1;
		}
		(*i)++;
	}
	const struct imap_arg *data = *i < cmd->argc ? &cmd->args[*i] : NULL;
	if (data != NULL && imap_arg_is_atom(data, "UTF8") &&
	    (is->enabled & IMAP_ENABLE_UTF8) && *i + 1 < cmd->argc &&
	    cmd->args[*i + 1].type == IMAP_ARG_LIST &&
	    cmd->args[*i + 1].count == 1 &&
	    cmd->args[*i + 1].list[0].type == IMAP_ARG_LITERAL) {
		/* RFC 6855 4: APPEND ... UTF8 (~{n}...) */
		(*i)++;
		data = &cmd->args[*i].list[0];
	}
	if (data == NULL || data->type != IMAP_ARG_LITERAL) {
		imap_tagged(cmd, "BAD", "%s expects the message as a literal",
			    cmd->name);
		return -1;
	}
	if (data->len == 0) {
		imap_tagged(cmd, "NO",
			    "[CANNOT] Empty messages cannot be "
			    "stored");
		return -1;
	}
	if (data->len > limit) {
		imap_tagged(cmd, "NO",
			    "[TOOBIG] Message larger than "
			    "APPENDLIMIT");
		return -1;
	}
	m->data = data->str;
	m->len = data->len;
	/* Parsed once, here: FETCH never parses it again. */
	struct buf meta = BUF_INIT;
	if (mime_cache_build(m->data, m->len, &meta) == 0) {
		void *copy = arena_alloc(a, buf_used(&meta));
		memcpy(copy, buf_ptr(&meta), buf_used(&meta));
		m->meta = copy;
		m->metalen = buf_used(&meta);
	}
	buf_free(&meta);
	(*i)++;
	return 0;
}

void
imap_cmd_append(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	if (cmd->argc < 2) {
		imap_tagged(cmd, "BAD", "APPEND expects a mailbox and a "
					"message");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	struct append_ctx *ac = arena_zalloc(a, sizeof(*ac));
	ac->msgs = arena_zalloc(a, cmd->argc * sizeof(*ac->msgs));
	size_t n = 0;
	uint64_t limit = backend_imap_append_limit(&is->s->be->cfg);
	for (unsigned i = 1; i < cmd->argc; n++)
		if (message_arg(cmd, &i, limit, &ac->msgs[n]) < 0)
			return;
	ac->cmd = imap_cmd_keep(cmd);
	ac->a.user_num = is->user_num;
	ac->a.mailbox = name;
	ac->a.msgs = ac->msgs;
	ac->a.n = n;
	ac->a.quota_storage = is->s->be->cfg.backend_quota_storage;
	ac->a.quota_messages = is->s->be->cfg.backend_quota_messages;
	session_store(is->s, store_op_append, &ac->a, append_done, ac, NULL);
}

/* -- REPLACE ----------------------------------------------------------------
 * The replaced message goes first, in the same transaction: the new one
 * is held against the quota without the old (a draft saved again near
 * the limit), and if the APPEND fails (no such mailbox, the quota, a
 * store error), the old message stays. */

struct replace_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_expunge_args x;
	struct store_append_args a;
	struct store_new_msg msg;
	uint32_t uid;
};

static int
replace_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct replace_ctx *rc = vargs;
	int r = store_op_expunge(st, txn, &rc->x, err);
	if (r != 0)
		return r;
	if (rc->x.removed == 0) {
		snprintf(err, STORE_ERR_SIZE,
			 "[EXPUNGEISSUED] The message to "
			 "replace was expunged meanwhile");
		return STORE_ERR_CANNOT;
	}
	return store_op_append(st, txn, &rc->a, err);
}

static void
replace_done(void *ctx, int rc, const char *err)
{
	struct replace_ctx *r = ctx;
	struct imap_cmd_ctx *cmd = r->cmd;
	struct imap_session *is = cmd->is;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	backend_mailbox_changed(is->s->be, r->x.mbox_id);
	if (r->a.mbox_id_out != r->x.mbox_id)
		backend_mailbox_changed(is->s->be, r->a.mbox_id_out);
	/* the tagged answer is the expunge's (RFC 8508 3.3): APPENDUID
	   comes before it, untagged, as MOVE's COPYUID does */
	imap_untagged(is, "OK [APPENDUID %u %u] Replacement Message ID",
		      r->a.uidvalidity, r->a.first_uid);
	imap_sync(is, 1);
	imap_tagged(cmd, "OK", "%sREPLACE completed", cmd->uid ? "UID " : "");
}

void
imap_cmd_replace(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	if (cmd->argc < 3 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (strspn(cmd->args[0].str, "0123456789") !=
		 strlen(cmd->args[0].str) &&
	     strcmp(cmd->args[0].str, "*") != 0)) {
		imap_tagged(cmd, "BAD",
			    "%sREPLACE expects a message %s, a "
			    "mailbox and a message",
			    cmd->uid ? "UID " : "",
			    cmd->uid ? "UID" : "sequence number");
		return;
	}
	uint32_t *uids;
	size_t n;
	if (imap_set_uids(cmd, cmd->args[0].str, &uids, &n) < 0)
		return;
	if (n != 1) {
		imap_tagged(cmd, "NO",
			    "[NONEXISTENT] No such message to "
			    "replace");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[1]);
	if (name == NULL)
		return;
	struct replace_ctx *r = arena_zalloc(&is->cmd_pool, sizeof(*r));
	unsigned i = 2;
	if (message_arg(cmd, &i, backend_imap_append_limit(&is->s->be->cfg),
			&r->msg) < 0)
		return;
	if (i != cmd->argc) {
		imap_tagged(cmd, "BAD", "REPLACE takes one message");
		return;
	}
	if (is->readonly) {
		imap_tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	r->cmd = imap_cmd_keep(cmd);
	r->uid = uids[0];
	r->x.mbox_id = is->mbox.mbox_id;
	r->x.uids = &r->uid;
	r->x.n = 1;
	r->x.now = (int64_t)time(NULL);
	r->a.user_num = is->user_num;
	r->a.mailbox = name;
	r->a.msgs = &r->msg;
	r->a.n = 1;
	r->a.quota_storage = is->s->be->cfg.backend_quota_storage;
	r->a.quota_messages = is->s->be->cfg.backend_quota_messages;
	session_store(is->s, replace_op, r, replace_done, r, NULL);
}
