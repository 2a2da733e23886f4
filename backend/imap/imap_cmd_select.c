/* imap_cmd_select.c - SELECT, EXAMINE, CLOSE, UNSELECT. */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

void
imap_mailbox_close(struct imap_session *is)
{
	free(is->mbox_name);
	free(is->uids);
	free(is->saved);
	is->saved = NULL;
	is->nsaved = 0;
	is->nown = 0;
	is->mbox_name = NULL;
	is->uids = NULL;
	is->count = 0;
	is->withheld = 0;
	if (is->state == IMAP_STATE_SELECTED)
		imap_set_state(is, IMAP_STATE_AUTHENTICATED);
}

void
imap_flags_format(uint32_t flags, char *out, size_t outsize)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{STORE_F_SEEN, "\\Seen"},         {STORE_F_ANSWERED, "\\Answered"},
		{STORE_F_FLAGGED, "\\Flagged"},   {STORE_F_DELETED, "\\Deleted"},
		{STORE_F_DRAFT, "\\Draft"},
	};
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		size_t l = strlen(names[i].name);
		if (o + (o > 0) + l >= outsize)
			break;
		if (o > 0)
			out[o++] = ' ';
		memcpy(out + o, names[i].name, l + 1);
		o += l;
	}
}

static void
imap_select(struct imap_cmd_ctx *cmd, int readonly)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	/* RFC 7162: (CONDSTORE) or (QRESYNC (uidvalidity modseq
	   [known-uids [seq-match]])) */
	int qresync = 0;
	uint32_t q_uidvalidity = 0;
	uint64_t q_modseq = 0;
	struct imap_range *q_known = NULL;
	unsigned q_nknown = 0;
	if (cmd->argc == 2 && cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *p = &cmd->args[1];
		for (unsigned i = 0; i < p->count; i++) {
			if (imap_arg_is_atom(&p->list[i], "CONDSTORE")) {
				is->enabled |= IMAP_ENABLE_CONDSTORE;
				continue;
			}
			if (!imap_arg_is_atom(&p->list[i], "QRESYNC") ||
			    i + 1 >= p->count ||
			    p->list[i + 1].type != IMAP_ARG_LIST ||
			    !(is->enabled & IMAP_ENABLE_QRESYNC)) {
				imap_tagged(cmd, "BAD", "Invalid SELECT "
							"parameters");
				return;
			}
			const struct imap_arg *q = &p->list[++i];
			char *end1, *end2;
			if (q->count < 2 || q->list[0].type != IMAP_ARG_ATOM ||
			    q->list[1].type != IMAP_ARG_ATOM) {
				imap_tagged(cmd, "BAD", "Invalid QRESYNC "
							"parameters");
				return;
			}
			q_uidvalidity = (uint32_t)strtoul(q->list[0].str,
							  &end1, 10);
			q_modseq = strtoull(q->list[1].str, &end2, 10);
			if (*end1 != '\0' || *end2 != '\0' ||
			    q_uidvalidity == 0 || q_modseq == 0 ||
			    (q->count >= 3 &&
			     (q->list[2].type != IMAP_ARG_ATOM ||
			      imap_seqset_parse(q->list[2].str, 0xffffffffU,
						&is->cmd_pool, &q_known,
						&q_nknown) < 0))) {
				imap_tagged(cmd, "BAD", "Invalid QRESYNC "
							"parameters");
				return;
			}
			qresync = 1;
		}
	} else if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "Expected one mailbox name");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	/* A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1). */
	int was_selected = is->state == IMAP_STATE_SELECTED;
	imap_mailbox_close(is);
	if (was_selected)
		imap_untagged(is, "OK [CLOSED] Previous mailbox closed");

	MDB_txn *txn;
	const char *err;
	struct store_mailbox_rec mb;
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	int rc = store_mailbox_get(st, txn, is->user_num, name, &mb, &err);
	if (rc == 0 && mb.noselect)
		rc = 1;
	if (rc != 0) {
		store_read_end(&txn);
		if (rc < 0) {
			log_error("session=%s store error=\"%s\"", is->s->id,
				  err);
			imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		} else {
			imap_tagged(cmd, "NO", "[NONEXISTENT] No such mailbox");
		}
		return;
	}
	struct store_msg *msgs;
	size_t n;
	if (store_messages_list(st, txn, mb.mbox_id, &msgs, &n, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	store_read_end(&txn);

	is->uids = malloc((n ? n : 1) * sizeof(*is->uids));
	if (is->uids == NULL)
		abort();
	uint32_t first_unseen = 0;
	for (size_t i = 0; i < n; i++) {
		is->uids[i] = msgs[i].uid;
		if (first_unseen == 0 && !(msgs[i].rec.flags & STORE_F_SEEN))
			first_unseen = (uint32_t)i + 1;
	}
	free(msgs);
	is->count = n;
	is->mbox = mb;
	is->mbox_name = strdup(name);
	if (is->mbox_name == NULL)
		abort();
	is->readonly = readonly;

	imap_untagged(is, "%zu EXISTS", n);
	if (!(is->enabled & IMAP_ENABLE_REV2)) {
		imap_untagged(is, "0 RECENT");
	} else {
		/* RFC 9051 6.3.2: the mailbox's name as the server spells it,
		   with its special use. */
		session_printf(is->s, "* LIST (%s) \"/\" ",
			       mb.special_use != STORE_SU_NONE
				   ? store_special_use_name(mb.special_use)
				   : "");
		imap_write_mailbox(is, is->mbox_name);
		session_write(is->s, "\r\n", 2);
	}
	const char *kwnames = "";
	size_t kwlen = 0;
	if (store_read_begin(st, &txn, &err) == 0) {
		if (store_keywords_get(st, txn, mb.mbox_id, &kwnames, &kwlen,
				       &err) < 0)
			kwlen = 0;
	}
	struct buf kw = BUF_INIT;
	for (size_t off = 0; off < kwlen;) {
		size_t l = strnlen(kwnames + off, kwlen - off);
		buf_printf(&kw, " %.*s", (int)l, kwnames + off);
		off += l + 1;
	}
	buf_append(&kw, "", 1);
	store_read_end(&txn);
	imap_untagged(is, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
			  "\\Draft%s)",
		      buf_ptr(&kw));
	imap_untagged(is, "OK [PERMANENTFLAGS (%s%s)] Flags permitted",
		      readonly ? ""
			       : "\\Answered \\Flagged \\Deleted \\Seen "
				 "\\Draft \\*",
		      readonly ? "" : buf_ptr(&kw));
	buf_free(&kw);
	if (first_unseen != 0)
		imap_untagged(is, "OK [UNSEEN %u] First unseen", first_unseen);
	imap_untagged(is, "OK [UIDVALIDITY %u] UIDs valid", mb.uidvalidity);
	imap_untagged(is, "OK [UIDNEXT %u] Predicted next UID", mb.uidnext);
	imap_untagged(is, "OK [MAILBOXID (F%016llx)] Ok",
		      (unsigned long long)mb.mbox_id);
	/* RFC 7162 3.1.2.1: with every successful SELECT and EXAMINE, the
	   client's CONDSTORE enabled or not. */
	imap_untagged(is, "OK [HIGHESTMODSEQ %llu] Highest",
		      (unsigned long long)mb.highestmodseq);
	if (qresync && q_uidvalidity == mb.uidvalidity)
		imap_qresync_report(is, q_modseq, q_known, q_nknown);
	imap_set_state(is, IMAP_STATE_SELECTED);
	imap_tagged(cmd, "OK", "[%s] %s completed",
		    readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "EXAMINE" : "SELECT");
}

/* QRESYNC (RFC 7162 3.2.5): what changed since the client's modseq,
 * right after the SELECT responses. */
void
imap_qresync_report(struct imap_session *is, uint64_t modseq,
		    const struct imap_range *known, unsigned nknown)
{
	struct store *st = is->s->be->store;
	MDB_txn *txn = NULL;
	const char *err, *kwnames;
	size_t kwlen;
	uint32_t *gone = NULL, *changed = NULL;
	size_t ngone = 0, nchanged = 0;
	int exact = 1;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_vanished_since(st, txn, is->mbox.mbox_id, modseq, &gone,
				 &ngone, &exact, &err) < 0 ||
	    store_changed_since(st, txn, is->mbox.mbox_id, modseq, &changed,
				&nchanged, &err) < 0 ||
	    store_keywords_get(st, txn, is->mbox.mbox_id, &kwnames, &kwlen,
			       &err) < 0) {
		store_read_end(&txn);
		free(gone);
		free(changed);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		return;
	}
	size_t k = 0;
	if (!exact) {
		/* Expunges before the oldest record kept: every UID (of
		   known-uids, if given) that is not here. */
		struct buf b = BUF_INIT;
		if (imap_uid_set_absent(known, nknown, is->mbox.uidnext,
					is->uids, is->count, &b) > 0) {
			buf_append(&b, "", 1);
			imap_untagged(is, "VANISHED (EARLIER) %s",
				      buf_ptr(&b));
		}
		buf_free(&b);
		ngone = 0;
	}
	for (size_t i = 0; i < ngone; i++)
		if (known == NULL || imap_seqset_contains(known, nknown, gone[i]))
			gone[k++] = gone[i];
	if (k > 0) {
		struct buf b = BUF_INIT;
		imap_uid_set_format(gone, k, &b);
		buf_append(&b, "", 1);
		imap_untagged(is, "VANISHED (EARLIER) %s", buf_ptr(&b));
		buf_free(&b);
	}
	for (size_t i = 0; i < nchanged; i++) {
		long idx = imap_uid_index(is, changed[i]);
		struct store_msg_rec m;
		if (idx < 0 || store_message_get(st, txn, is->mbox.mbox_id,
						 changed[i], &m, &err) != 0)
			continue;
		session_printf(is->s, "* %ld FETCH (UID %u FLAGS ", idx + 1,
			       changed[i]);
		imap_write_flags(is, m.flags, m.keywords, kwnames, kwlen);
		session_printf(is->s, " MODSEQ (%llu))\r\n",
			       (unsigned long long)m.modseq);
	}
	store_read_end(&txn);
	free(gone);
	free(changed);
}

void
imap_cmd_select(struct imap_cmd_ctx *cmd)
{
	imap_select(cmd, 0);
}

void
imap_cmd_examine(struct imap_cmd_ctx *cmd)
{
	imap_select(cmd, 1);
}

struct close_ctx {
	struct imap_cmd_ctx *cmd;
	struct store_expunge_args a;
};

static void
close_done(void *ctx, int rc, const char *err)
{
	struct close_ctx *cc = ctx;
	struct imap_session *is = cc->cmd->is;
	if (rc != 0) {
		imap_store_failed(cc->cmd, rc, err);
		return;
	}
	if (cc->a.removed > 0)
		backend_mailbox_changed(is->s->be, cc->a.mbox_id);
	imap_mailbox_close(is);
	imap_tagged(cc->cmd, "OK", "CLOSE completed");
}

void
imap_cmd_close(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "CLOSE takes no arguments");
		return;
	}
	if (is->readonly) {
		imap_mailbox_close(is);
		imap_tagged(cmd, "OK", "CLOSE completed");
		return;
	}
	/* CLOSE removes every \Deleted message of the mailbox silently
	   (RFC 3501 6.4.2), those other sessions added since this one
	   looked included. */
	struct store *st = is->s->be->store;
	MDB_txn *txn = NULL;
	const char *err;
	struct store_msg *msgs = NULL;
	size_t nmsgs = 0, n = 0;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_messages_list(st, txn, is->mbox.mbox_id, &msgs, &nmsgs,
				&err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	store_read_end(&txn);
	uint32_t *gone = arena_alloc(&is->cmd_pool,
				     (nmsgs ? nmsgs : 1) * sizeof(*gone));
	for (size_t i = 0; i < nmsgs; i++)
		if (msgs[i].rec.flags & STORE_F_DELETED)
			gone[n++] = msgs[i].uid;
	free(msgs);
	if (n == 0) {
		imap_mailbox_close(is);
		imap_tagged(cmd, "OK", "CLOSE completed");
		return;
	}
	struct close_ctx *cc = arena_zalloc(&is->cmd_pool, sizeof(*cc));
	cc->cmd = imap_cmd_keep(cmd);
	cc->a.mbox_id = is->mbox.mbox_id;
	cc->a.uids = gone;
	cc->a.n = n;
	session_store(is->s, store_op_expunge, &cc->a, close_done, cc, NULL);
}

void
imap_cmd_unselect(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "UNSELECT takes no arguments");
		return;
	}
	imap_mailbox_close(cmd->is);
	imap_tagged(cmd, "OK", "UNSELECT completed");
}

static const char *status_items[] = {
	"MESSAGES", "RECENT",        "UIDNEXT",   "UIDVALIDITY", "UNSEEN",
	"SIZE",     "HIGHESTMODSEQ", "MAILBOXID", "APPENDLIMIT",
	"DELETED",  "DELETED-STORAGE",
};

/* DELETED and DELETED-STORAGE (RFC 9051, RFC 9208) need the messages. */
static void
status_deleted(struct imap_session *is, uint64_t mbox_id, uint32_t *count_r,
	       uint64_t *size_r)
{
	struct store *st = is->s->be->store;
	MDB_txn *txn = NULL;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	const char *err;
	*count_r = 0;
	*size_r = 0;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_messages_list(st, txn, mbox_id, &msgs, &n, &err) < 0) {
		store_read_end(&txn);
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		return;
	}
	store_read_end(&txn);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].rec.flags & STORE_F_DELETED) {
			(*count_r)++;
			*size_r += msgs[i].rec.size;
		}
	}
	free(msgs);
}

int
imap_status_items_valid(const struct imap_arg *list)
{
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return 0;
	for (unsigned i = 0; i < list->count; i++) {
		int ok = 0;
		for (size_t k = 0;
		     k < sizeof(status_items) / sizeof(status_items[0]); k++)
			if (imap_arg_is_atom(&list->list[i], status_items[k]))
				ok = 1;
		if (!ok)
			return 0;
	}
	return 1;
}

void
imap_status_write(struct imap_session *is, const char *name,
		  const struct imap_arg *list,
		  const struct store_mailbox_rec *mb)
{
	session_printf(is->s, "* STATUS ");
	imap_write_mailbox(is, name);
	session_write(is->s, " (", 2);
	for (unsigned i = 0; i < list->count; i++) {
		const struct imap_arg *it = &list->list[i];
		const char *sep = i ? " " : "";
		if (imap_arg_is_atom(it, "MESSAGES"))
			session_printf(is->s, "%sMESSAGES %u", sep, mb->messages);
		else if (imap_arg_is_atom(it, "RECENT"))
			session_printf(is->s, "%sRECENT 0", sep);
		else if (imap_arg_is_atom(it, "UIDNEXT"))
			session_printf(is->s, "%sUIDNEXT %u", sep, mb->uidnext);
		else if (imap_arg_is_atom(it, "UIDVALIDITY"))
			session_printf(is->s, "%sUIDVALIDITY %u", sep,
				       mb->uidvalidity);
		else if (imap_arg_is_atom(it, "UNSEEN"))
			session_printf(is->s, "%sUNSEEN %u", sep, mb->unseen);
		else if (imap_arg_is_atom(it, "HIGHESTMODSEQ"))
			session_printf(is->s, "%sHIGHESTMODSEQ %llu", sep,
				       (unsigned long long)mb->highestmodseq);
		else if (imap_arg_is_atom(it, "MAILBOXID"))
			session_printf(is->s, "%sMAILBOXID (F%016llx)", sep,
				       (unsigned long long)mb->mbox_id);
		else if (imap_arg_is_atom(it, "DELETED") ||
			 imap_arg_is_atom(it, "DELETED-STORAGE")) {
			uint32_t dc;
			uint64_t ds;
			status_deleted(is, mb->mbox_id, &dc, &ds);
			if (imap_arg_is_atom(it, "DELETED"))
				session_printf(is->s, "%sDELETED %u", sep, dc);
			else
				session_printf(is->s, "%sDELETED-STORAGE %llu",
					       sep,
					       (unsigned long long)(ds + 1023) /
						       1024);
		} else if (imap_arg_is_atom(it, "APPENDLIMIT"))
			session_printf(
			    is->s, "%sAPPENDLIMIT %llu", sep,
			    (unsigned long long)backend_imap_append_limit(
				&is->s->be->cfg));
		else
			session_printf(is->s, "%sSIZE %llu", sep,
				       (unsigned long long)mb->size);
	}
	session_write(is->s, ")\r\n", 3);
}

void
imap_cmd_status(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	if (cmd->argc != 2 || !imap_status_items_valid(&cmd->args[1])) {
		imap_tagged(cmd, "BAD", "STATUS expects a mailbox and known "
					"items");
		return;
	}
	const char *name = imap_mailbox_arg(cmd, &cmd->args[0]);
	if (name == NULL)
		return;
	MDB_txn *txn = NULL;
	const char *err;
	struct store_mailbox_rec mb;
	if (store_read_begin(st, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", is->s->id, err);
		imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		return;
	}
	int rc = store_mailbox_get(st, txn, is->user_num, name, &mb, &err);
	store_read_end(&txn);
	if (rc != 0 || mb.noselect) {
		if (rc < 0) {
			log_error("session=%s store error=\"%s\"", is->s->id,
				  err);
			imap_tagged(cmd, "NO", "[SERVERBUG] Mail store error");
		} else {
			imap_tagged(cmd, "NO", "[NONEXISTENT] No such mailbox");
		}
		return;
	}
	imap_status_write(is, name, &cmd->args[1], &mb);
	imap_tagged(cmd, "OK", "STATUS completed");
}
