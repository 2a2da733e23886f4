/* imap_cmd_expunge.c - EXPUNGE and UID EXPUNGE (UIDPLUS). */
#include "backend/imap/imap.h"

#include <stdlib.h>

#include "common/log.h"

struct expunge_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_expunge_args a;
};

static void
expunge_done(void *ctx, int rc, const char *err)
{
	struct expunge_ctx *ec = ctx;
	struct imap_cmd_ctx *cmd = ec->cmd;
	struct imap_session *is = cmd->is;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	if (ec->a.removed > 0)
		backend_mailbox_changed(is->s->be, ec->a.mbox_id);
	imap_sync(is, 1);
	imap_tagged(cmd, "OK", "%sEXPUNGE completed", cmd->uid ? "UID " : "");
}

/* The \Deleted messages among cand[] (ascending UIDs), as stored now,
 * into *gone_r (the command's pool); -1 after answering a store error. */
int
imap_deleted_among(struct imap_cmd_ctx *cmd, const uint32_t *cand, size_t ncand,
		   uint32_t **gone_r, size_t *n_r)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	MDB_txn *txn = NULL;
	struct store_msg_reader rd;
	const char *err;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_msg_reader_open(st, txn, is->mbox.mbox_id, &rd, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return -1;
	}
	uint32_t *gone = arena_alloc(&is->cmd_pool,
				     (ncand ? ncand : 1) * sizeof(*gone));
	size_t n = 0;
	for (size_t i = 0; i < ncand; i++) {
		struct store_msg_rec m;
		if (store_msg_reader_get(&rd, cand[i], &m, &err) == 0 &&
		    (m.flags & STORE_F_DELETED))
			gone[n++] = cand[i];
	}
	store_msg_reader_close(&rd);
	store_read_end(&txn);
	*gone_r = gone;
	*n_r = n;
	return 0;
}

void
imap_cmd_expunge(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	uint32_t *cand = NULL, *gone;
	size_t ncand = 0, n;
	if (cmd->uid) {
		if (cmd->argc != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
			imap_tagged(cmd, "BAD", "UID EXPUNGE expects a UID set");
			return;
		}
		if (imap_set_uids(cmd, cmd->args[0].str, &cand, &ncand) < 0)
			return;
	} else {
		if (cmd->argc != 0) {
			imap_tagged(cmd, "BAD", "EXPUNGE takes no arguments");
			return;
		}
		cand = is->uids;
		ncand = is->count;
	}
	if (is->readonly) {
		imap_tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_deleted_among(cmd, cand, ncand, &gone, &n) < 0)
		return;
	if (n == 0) {
		/* Nothing to remove: no transaction to wait for. */
		imap_sync(is, 1);
		if (is->state != IMAP_STATE_SELECTED)
			return; /* the mailbox went away: BYE said */
		imap_tagged(cmd, "OK", "%sEXPUNGE completed",
			    cmd->uid ? "UID " : "");
		return;
	}
	struct expunge_ctx *ec = arena_zalloc(&is->cmd_pool, sizeof(*ec));
	ec->cmd = imap_cmd_keep(cmd);
	ec->a.mbox_id = is->mbox.mbox_id;
	ec->a.uids = gone;
	ec->a.n = n;
	session_store(is->s, store_op_expunge, &ec->a, expunge_done, ec, NULL);
}
