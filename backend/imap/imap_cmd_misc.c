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
	imap_untagged(cmd->is, "CAPABILITY %s", backend_imap_capabilities());
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
	imap_untagged(cmd->is, "ID (\"name\" \"Portico\" \"vendor\" "
			       "\"Portico\")");
	imap_tagged(cmd, "OK", "ID completed");
}
