/* imap_cmd_idle.c - IDLE (RFC 2177): changes to the selected mailbox are
 * pushed as they are committed by any session of this backend. */
#include "backend/imap/imap.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void
imap_cmd_idle(struct imap_cmd_ctx *cmd)
{
	struct imap_session *is = cmd->is;
	if (cmd->argc != 0) {
		imap_tagged(cmd, "BAD", "IDLE takes no arguments");
		return;
	}
	snprintf(is->idle_tag, sizeof(is->idle_tag), "%s", cmd->tag);
	is->idling = 1;
	session_printf(is->s, "+ idling\r\n");
}

void
imap_idle_line(struct imap_session *is, const char *line, size_t len)
{
	is->idling = 0;
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		imap_sync(is, 1);
		session_printf(is->s, "%s OK IDLE terminated\r\n",
			       is->idle_tag);
		return;
	}
	session_printf(is->s, "%s BAD Expected DONE\r\n", is->idle_tag);
}
