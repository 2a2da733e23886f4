/* imap_cmd_store.c - STORE and UID STORE: flags and keywords, durable
 * before the tagged OK. */
#include "backend/imap/imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

struct store_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_flags_args a;
	int silent;
};

static void
store_done(void *ctx, int rc, const char *err)
{
	struct store_ctx *sc = ctx;
	struct imap_cmd_ctx *cmd = sc->cmd;
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	if (rc != 0) {
		imap_store_failed(cmd, rc, err);
		return;
	}
	backend_mailbox_changed(is->s->be, is->mbox.mbox_id);
	MDB_txn *txn = NULL;
	const char *e, *kwnames;
	size_t kwlen;
	if (store_read_begin(st, &txn, &e) < 0 ||
	    store_keywords_get(st, txn, is->mbox.mbox_id, &kwnames, &kwlen,
			       &e) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, e);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	for (size_t i = 0; i < sc->a.n; i++) {
		long idx = imap_uid_index(is, sc->a.uids[i]);
		struct store_msg_rec m;
		if (idx < 0 || sc->a.modseq[i] == 0 || sc->a.failed[i])
			continue;
		imap_own_change(is, sc->a.uids[i], sc->a.modseq[i]);
		if (store_message_get(st, txn, is->mbox.mbox_id, sc->a.uids[i],
				      &m, &e) != 0)
			continue;
		/* .SILENT still reports what others changed meanwhile; here
		   the answer is simply omitted. */
		if (sc->silent)
			continue;
		session_printf(is->s, "* %ld FETCH (", idx + 1);
		if (cmd->uid)
			session_printf(is->s, "UID %u ", sc->a.uids[i]);
		session_printf(is->s, "FLAGS ");
		imap_write_flags(is, m.flags, m.keywords, kwnames, kwlen);
		session_write(is->s, ")\r\n", 3);
	}
	store_read_end(&txn);
	imap_tagged(cmd, "OK", "%sSTORE completed", cmd->uid ? "UID " : "");
}

void
imap_cmd_store(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	if (cmd->argc != 3 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    cmd->args[1].type != IMAP_ARG_ATOM) {
		imap_tagged(cmd, "BAD", "STORE expects a set, an item and "
					"flags");
		return;
	}
	struct store_ctx *sc = arena_zalloc(a, sizeof(*sc));
	const char *item = cmd->args[1].str;
	if (*item == '+') {
		sc->a.mode = STORE_FLAGS_ADD;
		item++;
	} else if (*item == '-') {
		sc->a.mode = STORE_FLAGS_REMOVE;
		item++;
	} else {
		sc->a.mode = STORE_FLAGS_SET;
	}
	if (strcasecmp(item, "FLAGS.SILENT") == 0)
		sc->silent = 1;
	else if (strcasecmp(item, "FLAGS") != 0) {
		imap_tagged(cmd, "BAD", "Invalid STORE item");
		return;
	}
	if (imap_flags_parse(cmd, &cmd->args[2], &sc->a.flags,
			     (const char ***)&sc->a.keywords,
			     &sc->a.nkeywords) < 0)
		return;
	uint32_t *uids;
	size_t n;
	if (imap_set_uids(cmd, cmd->args[0].str, &uids, &n) < 0)
		return;
	if (is->readonly) {
		imap_tagged(cmd, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (n == 0) {
		imap_tagged(cmd, "OK", "%sSTORE completed",
			    cmd->uid ? "UID " : "");
		return;
	}
	sc->cmd = imap_cmd_keep(cmd);
	sc->a.mbox_id = is->mbox.mbox_id;
	sc->a.uids = uids;
	sc->a.n = n;
	sc->a.modseq = arena_alloc(a, n * sizeof(uint64_t));
	sc->a.failed = arena_alloc(a, n);
	session_store(is->s, store_op_flags, &sc->a, store_done, sc, NULL);
}
