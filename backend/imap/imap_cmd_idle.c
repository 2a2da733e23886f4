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
	is->idle_said_at = is->idle_since = uv_now(is->s->be->loop);
	/* others' commits to the selected mailbox are shown as they come */
	if (is->state == IMAP_STATE_SELECTED)
		backend_watch(is->s, is->mbox.mbox_id);
	session_printf(is->s, "+ idling\r\n");
}

/* imap.idle_notify_interval: a word now and then on a quiet IDLE, for
 * the middleboxes that forget silent connections (RFC 2177 leaves the
 * client 29 minutes between two IDLEs; NATs often forget sooner). */
void
imap_idle_tick(struct imap_session *is, uint64_t now)
{
	uint64_t every = (uint64_t)is->s->be->cfg.imap_idle_notify_interval *
			 1000;
	if (!is->idling || every == 0 || now - is->idle_said_at < every)
		return;
	is->idle_said_at = now;
	session_puts(is->s, "* OK Still here\r\n");
}

void
imap_idle_line(struct imap_session *is, const char *line, size_t len)
{
	is->idling = 0;
	backend_unwatch(is->s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		imap_sync(is, 1);
		session_printf(is->s, "%s OK IDLE terminated\r\n",
			       is->idle_tag);
		return;
	}
	session_printf(is->s, "%s BAD Expected DONE\r\n", is->idle_tag);
}
