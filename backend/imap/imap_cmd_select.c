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
	is->mbox_name = NULL;
	is->uids = NULL;
	is->count = 0;
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
		int n = snprintf(out + o, outsize - o, "%s%s", o ? " " : "",
				 names[i].name);
		if (n < 0 || (size_t)n >= outsize - o)
			break;
		o += (size_t)n;
	}
}

/* Mailbox names are case-sensitive except INBOX (RFC 3501 5.1). */
static const char *
imap_mailbox_name(const struct imap_arg *arg)
{
	if (!imap_arg_is_astring(arg))
		return NULL;
	if (strcasecmp(arg->str, "INBOX") == 0)
		return "INBOX";
	return arg->str;
}

static void
imap_select(struct imap_cmd_ctx *cmd, int readonly)
{
	struct imap_session *is = cmd->is;
	struct store *st = is->s->be->store;
	if (cmd->argc != 1) {
		imap_tagged(cmd, "BAD", "Expected one mailbox name");
		return;
	}
	const char *name = imap_mailbox_name(&cmd->args[0]);
	if (name == NULL || strlen(name) != cmd->args[0].len) {
		imap_tagged(cmd, "BAD", "Invalid mailbox name");
		return;
	}
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
	imap_untagged(is, "0 RECENT");
	imap_untagged(is, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
			  "\\Draft)");
	imap_untagged(is, "OK [PERMANENTFLAGS (%s)] Flags permitted",
		      readonly ? ""
			       : "\\Answered \\Flagged \\Deleted \\Seen "
				 "\\Draft");
	if (first_unseen != 0)
		imap_untagged(is, "OK [UNSEEN %u] First unseen", first_unseen);
	imap_untagged(is, "OK [UIDVALIDITY %u] UIDs valid", mb.uidvalidity);
	imap_untagged(is, "OK [UIDNEXT %u] Predicted next UID", mb.uidnext);
	imap_set_state(is, IMAP_STATE_SELECTED);
	imap_tagged(cmd, "OK", "[%s] %s completed",
		    readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "EXAMINE" : "SELECT");
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

void
imap_cmd_close(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "CLOSE takes no arguments");
		return;
	}
	/* Expunging \Deleted messages on CLOSE arrives with EXPUNGE. */
	imap_mailbox_close(cmd->is);
	imap_tagged(cmd, "OK", "CLOSE completed");
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
