/* imap_cmd_misc.c - CAPABILITY, NOOP, LOGOUT, ID. */
#include "backend/imap/imap.h"

#include "common/log.h"

void
imap_cmd_capability(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "CAPABILITY takes no arguments");
		return;
	}
	imap_untagged(cmd->is, "CAPABILITY %s", imap_capabilities(cmd->is));
	imap_tagged(cmd, "OK", "Capability completed");
}

void
imap_cmd_noop(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "NOOP takes no arguments");
		return;
	}
	imap_tagged(cmd, "OK", "NOOP completed");
}

void
imap_cmd_logout(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(cmd->is, "BYE Logging out");
	imap_tagged(cmd, "OK", "Logout completed");
	imap_set_state(cmd->is, IMAP_STATE_LOGOUT);
	session_end(cmd->is->s, "logout");
}

void
imap_cmd_id(struct imap_cmd_ctx *cmd)
{
	/* RFC 2971: ID ( "key" "value" ... ) or ID NIL. */
	if (cmd->argc != 1 ||
	    (!imap_arg_is_nil(&cmd->args[0]) &&
	     cmd->args[0].type != IMAP_ARG_LIST)) {
		imap_tagged(cmd, "BAD", "ID takes a list or NIL");
		return;
	}
	const struct imap_arg *l = &cmd->args[0];
	if (l->type == IMAP_ARG_LIST) {
		if (l->count % 2 != 0 || l->count > 60) {
			imap_tagged(cmd, "BAD", "Invalid ID list");
			return;
		}
		for (unsigned i = 0; i < l->count; i++) {
			if (!imap_arg_is_string(&l->list[i])) {
				imap_tagged(cmd, "BAD", "Invalid ID list");
				return;
			}
		}
	}
	/* a client imap.client_capabilities_off names: what it may use
	   from here on */
	char client[96];
	if (imap_id_client(l, client, sizeof(client)))
		imap_caps_apply(cmd->is, cmd->is->caps_off_account, client);
	imap_untagged(cmd->is, "ID (\"name\" \"Portico\" \"vendor\" "
			       "\"Portico\")");
	imap_tagged(cmd, "OK", "ID completed");
}

void
imap_cmd_enable(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc == 0) {
		imap_tagged(cmd, "BAD", "ENABLE expects capabilities");
		return;
	}
	for (unsigned i = 0; i < cmd->argc; i++) {
		if (cmd->args[i].type != IMAP_ARG_ATOM) {
			imap_tagged(cmd, "BAD", "Invalid capability");
			return;
		}
	}
	/* RFC 5161 3: unknown names are ignored; ENABLED lists what this
	   command newly enabled. */
	struct imap_session *is = cmd->is;
	struct buf b = BUF_INIT;
	buf_append_str(&b, "ENABLED");
	for (unsigned i = 0; i < cmd->argc; i++) {
		const struct imap_arg *a = &cmd->args[i];
		unsigned bit = 0;
		const char *name = NULL;
		if (imap_arg_is_atom(a, "CONDSTORE")) {
			bit = IMAP_ENABLE_CONDSTORE;
			name = "CONDSTORE";
		} else if (imap_arg_is_atom(a, "QRESYNC")) {
			bit = IMAP_ENABLE_QRESYNC | IMAP_ENABLE_CONDSTORE;
			name = "QRESYNC";
		} else if (imap_arg_is_atom(a, "UTF8=ACCEPT")) {
			bit = IMAP_ENABLE_UTF8;
			name = "UTF8=ACCEPT";
		} else if (imap_arg_is_atom(a, "IMAP4rev2") &&
			   is->s->be->imap_rev2) {
			bit = IMAP_ENABLE_REV2 | IMAP_ENABLE_UTF8;
			name = "IMAP4rev2";
		}
		if (bit == 0 || (is->enabled & bit) == bit ||
		    !imap_offers(is, name))
			continue;
		is->enabled |= bit;
		buf_printf(&b, " %s", name);
	}
	buf_append(&b, "", 1);
	imap_untagged(is, "%s", buf_ptr(&b));
	buf_free(&b);
	imap_tagged(cmd, "OK", "ENABLE completed");
}

void
imap_cmd_namespace(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "NAMESPACE takes no arguments");
		return;
	}
	/* Personal folders only: no shared or public namespaces. */
	imap_untagged(cmd->is, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(cmd, "OK", "NAMESPACE completed");
}

void
imap_cmd_check(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "CHECK takes no arguments");
		return;
	}
	/* Every change is durable when its command completes. */
	imap_tagged(cmd, "OK", "CHECK completed");
}

void
imap_cmd_compress(struct imap_cmd_ctx *cmd)
{
	if (cmd->argc != 1 || !imap_arg_is_atom(&cmd->args[0], "DEFLATE")) {
		imap_tagged(cmd, "BAD", "Only COMPRESS DEFLATE is supported");
		return;
	}
	if (cmd->is->s->zin != NULL) {
		imap_tagged(cmd, "NO", "[COMPRESSIONACTIVE] DEFLATE is "
				       "already active");
		return;
	}
	imap_tagged(cmd, "OK", "DEFLATE active");
	if (session_compress_start(cmd->is->s) < 0) {
		imap_untagged(cmd->is, "BYE Invalid compressed data");
		session_end(cmd->is->s, "bad compressed input");
	}
}
