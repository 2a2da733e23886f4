/* imap_cmd_quota.c - QUOTA (RFC 9208): one quota root per user, with
 * STORAGE and MESSAGE resources; limits are the operator's to set (the
 * user's own, portico-admin quota, else the backend's). */
#include "backend/imap/imap.h"

#include <string.h>
#include <strings.h>

#include "common/log.h"

#define QUOTA_ROOT "User quota"

static int
quota_write(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	const struct config *cfg = &is->s->be->cfg;
	MDB_txn *txn = NULL;
	const char *err;
	uint64_t size, msgs;
	struct store_quota q = {(uint64_t)cfg->backend_quota_storage,
				(uint64_t)cfg->backend_quota_messages};
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_usage_get(st, txn, is->user_num, &size, &msgs, &err) < 0 ||
	    store_quota_get(st, txn, is->user_num, &q, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return -1;
	}
	store_read_end(&txn);
	struct buf b = BUF_INIT;
	if (q.storage > 0)
		buf_printf(&b, "STORAGE %llu %llu",
			   (unsigned long long)((size + 1023) / 1024),
			   (unsigned long long)(q.storage / 1024));
	if (q.messages > 0)
		buf_printf(&b, "%sMESSAGE %llu %llu", buf_used(&b) ? " " : "",
			   (unsigned long long)msgs,
			   (unsigned long long)q.messages);
	buf_append(&b, "", 1);
	imap_untagged(is, "QUOTA \"%s\" (%s)", QUOTA_ROOT, buf_ptr(&b));
	buf_free(&b);
	return 0;
}

void
imap_cmd_getquotaroot(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "GETQUOTAROOT expects a mailbox");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	session_printf(cmd->is->s, "* QUOTAROOT ");
	imap_write_mailbox(cmd->is, name);
	session_printf(cmd->is->s, " \"%s\"\r\n", QUOTA_ROOT);
	if (quota_write(cmd) == 0)
		imap_tagged(cmd, "OK", "GETQUOTAROOT completed");
}

void
imap_cmd_getquota(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 1 || !imap_arg_is_astring(&cmd->args[0])) {
		imap_tagged(cmd, "BAD", "GETQUOTA expects a quota root");
		return;
	}
	if (strcmp(cmd->args[0].str, QUOTA_ROOT) != 0) {
		imap_tagged(cmd, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	if (quota_write(cmd) == 0)
		imap_tagged(cmd, "OK", "GETQUOTA completed");
}

void
imap_cmd_setquota(struct imap_cmd_ctx *cmd)
{
	imap_tagged(cmd, "NO", "[NOPERM] Quotas are set by the operator");
}
