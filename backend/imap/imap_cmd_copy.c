/* imap_cmd_copy.c - COPY and MOVE (RFC 6851), with COPYUID (UIDPLUS). */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct copy_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_copy_args a;
};

/* "1:3,7" from a sorted list of UIDs, skipping zeros (in source order). */
static void
uid_list(struct buf *b, const uint32_t *src, const uint32_t *dst, size_t n,
	 int want_dst)
{
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		if (dst[i] == 0)
			continue;
		buf_printf(b, "%s%u", first ? "" : ",", want_dst ? dst[i] : src[i]);
		first = 0;
	}
}

static void
copy_done(void *ctx, int rc, const char *err)
{
	struct copy_ctx *cc = ctx;
	struct imap_cmd_ctx *cmd = cc->cmd;
	struct imap_session *is = cmd->is;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	backend_mailbox_changed(is->s->be, cc->a.dst_mbox);
	struct buf src = BUF_INIT, dst = BUF_INIT;
	uid_list(&src, cc->a.uids, cc->a.dst_uids, cc->a.n, 0);
	uid_list(&dst, cc->a.uids, cc->a.dst_uids, cc->a.n, 1);
	int any = buf_used(&src) > 0;
	buf_append(&src, "", 1);
	buf_append(&dst, "", 1);
	if (cc->a.move) {
		backend_mailbox_changed(is->s->be, cc->a.src_mbox);
		if (any)
			imap_untagged(is, "OK [COPYUID %u %s %s] Moved",
				      cc->a.dst_uidvalidity, buf_ptr(&src),
				      buf_ptr(&dst));
		imap_sync(is, 1);
		imap_tagged(cmd, "OK", "%sMOVE completed",
			    cmd->uid ? "UID " : "");
	} else {
		if (cc->a.dst_mbox == is->mbox.mbox_id)
			imap_sync(is, 1);
		if (any)
			imap_tagged(cmd, "OK", "[COPYUID %u %s %s] %sCOPY "
					       "completed",
				    cc->a.dst_uidvalidity, buf_ptr(&src),
				    buf_ptr(&dst), cmd->uid ? "UID " : "");
		else
			imap_tagged(cmd, "OK", "%sCOPY completed",
				    cmd->uid ? "UID " : "");
	}
	buf_free(&src);
	buf_free(&dst);
}

static void
copy_or_move(struct imap_cmd_ctx *cmd, int move)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	struct arena *a = &is->cmd_pool;
	if (cmd->argc != 2 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(cmd, "BAD", "Expected a sequence set and a "
					"mailbox");
		return;
	}
	uint32_t *uids;
	size_t n;
	if (imap_set_uids(cmd, cmd->args[0].str, &uids, &n) < 0)
		return;
	const char *name = imap_mailbox_arg(cmd, &cmd->args[1]);
	if (name == NULL)
		return;
	if (move && is->readonly) {
		imap_tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	MDB_txn *txn = NULL;
	const char *err;
	struct store_mailbox_rec dst;
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	int rc = store_mailbox_get(st, txn, is->user_num, name, &dst, &err);
	store_read_end(&txn);
	if (rc != 0 || dst.noselect) {
		if (rc < 0) {
			log_error("session=%s store error=\"%s\"", is->s->id,
				  err);
			imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		} else {
			imap_tagged(cmd, "NO", "[TRYCREATE] No such mailbox");
		}
		return;
	}
	if (n == 0) {
		imap_tagged(cmd, "OK", "%s%s completed", cmd->uid ? "UID " : "",
			    move ? "MOVE" : "COPY");
		return;
	}
	struct copy_ctx *cc = arena_zalloc(a, sizeof(*cc));
	cc->cmd = imap_cmd_keep(cmd);
	cc->a.src_mbox = is->mbox.mbox_id;
	cc->a.dst_mbox = dst.mbox_id;
	cc->a.uids = uids;
	cc->a.n = n;
	cc->a.move = move;
	cc->a.quota_storage = is->s->be->cfg.backend_quota_storage;
	cc->a.quota_messages = is->s->be->cfg.backend_quota_messages;
	cc->a.dst_uids = arena_zalloc(a, n * sizeof(uint32_t));
	session_store(is->s, store_op_copy, &cc->a, copy_done, cc, NULL);
}

void
imap_cmd_copy(struct imap_cmd_ctx *cmd)
{
	copy_or_move(cmd, 0);
}

void
imap_cmd_move(struct imap_cmd_ctx *cmd)
{
	copy_or_move(cmd, 1);
}
