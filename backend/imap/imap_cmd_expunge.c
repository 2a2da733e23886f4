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

void
imap_cmd_expunge(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	struct arena *a = &is->cmd_pool;
	uint32_t *cand = NULL;
	size_t ncand = 0;
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
	/* The \Deleted messages among the candidates, as stored now. */
	MDB_txn *txn = NULL;
	const char *err;
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	uint32_t *gone = arena_alloc(a, (ncand ? ncand : 1) * sizeof(*gone));
	size_t n = 0;
	for (size_t i = 0; i < ncand; i++) {
		struct store_msg_rec m;
		if (store_message_get(st, txn, is->mbox.mbox_id, cand[i], &m,
				      &err) == 0 &&
		    (m.flags & STORE_F_DELETED))
			gone[n++] = cand[i];
	}
	store_read_end(&txn);
	struct expunge_ctx *ec = arena_zalloc(a, sizeof(*ec));
	ec->cmd = imap_cmd_keep(cmd);
	ec->a.mbox_id = is->mbox.mbox_id;
	ec->a.uids = gone;
	ec->a.n = n;
	session_store(is->s, store_op_expunge, &ec->a, expunge_done, ec, NULL);
}
