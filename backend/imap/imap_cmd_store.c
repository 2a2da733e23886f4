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
	int gone = 0; /* a message of the view was expunged by another */
	for (size_t i = 0; i < sc->a.n; i++) {
		long idx = imap_uid_index(is, sc->a.uids[i]);
		struct store_msg_rec m;
		if (idx >= 0 && sc->a.modseq[i] == 0)
			gone = 1;
		if (idx < 0 || sc->a.modseq[i] == 0 || sc->a.failed[i])
			continue;
		imap_own_change(is, sc->a.uids[i], sc->a.modseq[i]);
		if (store_message_get(st, txn, is->mbox.mbox_id, sc->a.uids[i],
				      &m, &e) != 0)
			continue;
		/* .SILENT still reports what others changed meanwhile; here
		   the answer is simply omitted, but for UNCHANGEDSINCE's
		   MODSEQ (RFC 7162 3.1.3: sent even with .SILENT). */
		if (sc->silent && !sc->a.conditional)
			continue;
		session_printf(is->s, "* %ld FETCH (", idx + 1);
		if (cmd->uid)
			session_printf(is->s, "UID %u ", sc->a.uids[i]);
		if (sc->silent) {
			session_printf(is->s, "MODSEQ (%llu))\r\n",
				       (unsigned long long)m.modseq);
			continue;
		}
		session_printf(is->s, "FLAGS ");
		imap_write_flags(is, m.flags, m.keywords, kwnames, kwlen);
		if (is->enabled & IMAP_ENABLE_CONDSTORE)
			session_printf(is->s, " MODSEQ (%llu)",
				       (unsigned long long)m.modseq);
		session_write(is->s, ")\r\n", 3);
	}
	store_read_end(&txn);
	/* RFC 7162 3.1.3: what UNCHANGEDSINCE kept from changing. */
	struct buf mod = BUF_INIT;
	uint32_t *failed = malloc((sc->a.n ? sc->a.n : 1) * sizeof(*failed));
	size_t nf = 0;
	if (failed == NULL)
		abort();
	for (size_t i = 0; i < sc->a.n; i++) {
		if (!sc->a.failed[i])
			continue;
		long idx = imap_uid_index(is, sc->a.uids[i]);
		if (cmd->uid)
			failed[nf++] = sc->a.uids[i];
		else if (idx >= 0)
			failed[nf++] = (uint32_t)idx + 1;
	}
	if (nf > 0) {
		imap_uid_set_format(failed, nf, &mod);
		buf_append(&mod, "", 1);
		imap_tagged(cmd, "OK", "[MODIFIED %s] Conditional %sSTORE "
				       "failed",
			    buf_ptr(&mod), cmd->uid ? "UID " : "");
	} else {
		imap_tagged(cmd, "OK", "%s%sSTORE completed",
			    gone ? "[EXPUNGEISSUED] Some messages were "
				   "expunged; "
				 : "",
			    cmd->uid ? "UID " : "");
	}
	free(failed);
	buf_free(&mod);
}

void
imap_cmd_store(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct arena *a = &is->cmd_pool;
	struct store_ctx *sc = arena_zalloc(a, sizeof(*sc));
	const struct imap_arg *args = cmd->args;
	unsigned argc = cmd->argc;
	if (argc == 4 && args[1].type == IMAP_ARG_LIST) {
		/* RFC 7162: (UNCHANGEDSINCE modseq) */
		const struct imap_arg *mod = &args[1];
		char *end;
		if (mod->count != 2 ||
		    !imap_arg_is_atom(&mod->list[0], "UNCHANGEDSINCE") ||
		    mod->list[1].type != IMAP_ARG_ATOM) {
			imap_tagged(cmd, "BAD", "Invalid STORE modifier");
			return;
		}
		sc->a.unchangedsince = strtoull(mod->list[1].str, &end, 10);
		if (*end != '\0' || mod->list[1].str[0] == '\0') {
			imap_tagged(cmd, "BAD", "Invalid UNCHANGEDSINCE");
			return;
		}
		sc->a.conditional = 1;
		is->enabled |= IMAP_ENABLE_CONDSTORE;
		argc = 3;
		struct imap_arg *shifted = arena_alloc(a, 3 * sizeof(*shifted));
		shifted[0] = args[0];
		shifted[1] = args[2];
		shifted[2] = args[3];
		args = shifted;
	}
	if (argc != 3 || args[0].type != IMAP_ARG_ATOM ||
	    args[1].type != IMAP_ARG_ATOM) {
		imap_tagged(cmd, "BAD", "STORE expects a set, an item and "
					"flags");
		return;
	}
	const char *item = args[1].str;
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
	if (imap_flags_parse(cmd, &args[2], &sc->a.flags,
			     (const char ***)&sc->a.keywords,
			     &sc->a.nkeywords) < 0)
		return;
	uint32_t *uids;
	size_t n;
	if (imap_set_uids(cmd, args[0].str, &uids, &n) < 0)
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
