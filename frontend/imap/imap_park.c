/* imap_park.c - IMAP sessions parked at the frontend (link version 5;
 * proto/link.proto "Parked IMAP sessions").
 *
 * A session in IDLE that its backend parks is held here as the bytes of
 * its state and a watch of its mailbox on the link: the client keeps its
 * connection (and TLS) and hears IDLE's keepalive from the frontend
 * (imap.idle_notify_interval).  A session parked between commands
 * (Park.between_commands) hears nothing and its watch has no mailbox: its
 * next command takes it up.  Anything the client sends, or a change of
 * the mailbox (the watch closes with "park:changed"), takes the session up
 * again on the backend: Open with resume on a new stream, and the client's
 * bytes (its DONE) follow once it is Opened.  When the link goes (a backend
 * restart) the client stays; the link timer connects again and the watch
 * is made anew (link_pool.c).
 *
 * An account that moves to another backend (portico-admin kick --park)
 * has its watches closed with "park:moved": the frontend reads its entry
 * once a second until it is active again and names its backend, and
 * watches the mailbox there, by name and UIDVALIDITY, which the move
 * keeps with the UIDs and modseqs (export and import --account).
 */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static const char park_keepalive[] = "* OK Still here\r\n";

static void
park_keepalive_cb(uv_timer_t *t)
{
	struct client *c = t->data;
	if (c->parked && !c->reviving && c->state == CLIENT_RELAY)
		client_write(c, park_keepalive, sizeof(park_keepalive) - 1);
}

int
client_link_park(struct client *c, const Portico__Park *p)
{
	/* what the client sent since is on its way to the session: it
	   goes on there */
	if (c->protocol != CLIENT_IMAP || c->state != CLIENT_RELAY ||
	    c->parked || c->reviving || c->fe->draining || c->drain_sent ||
	    c->sent_total != p->received || buf_used(&c->in) > 0)
		return 0;
	buf_reset(&c->park_state);
	buf_append(&c->park_state, p->state.data, p->state.len);
	c->park_mbox = p->mbox_id;
	c->park_modseq = p->modseq;
	free(c->park_name);
	c->park_name = NULL;
	if (p->mbox_name[0] != '\0' &&
	    (c->park_name = strdup(p->mbox_name)) == NULL)
		abort();
	c->park_uidvalidity = p->uidvalidity;
	c->parked = 1;
	c->watching = 1;
	metrics_add(&c->fe->metrics.parked, 1);
	uint64_t every = (uint64_t)c->fe->cfg.imap_idle_notify_interval * 1000;
	if (every > 0 && !p->between_commands)
		uv_timer_start(&c->delay, park_keepalive_cb, every, every);
	log_info("session=%s user=%s parked bytes=%zu%s", c->id, c->user,
		 p->state.len, p->between_commands ? " between commands" : "");
	if (p->moving)
		client_park_relocate(c);
	return 1;
}

static void
relocate_unlink(struct client *c)
{
	for (struct client **pp = &c->fe->relocating; *pp != NULL;
	     pp = &(*pp)->reloc_next) {
		if (*pp == c) {
			*pp = c->reloc_next;
			break;
		}
	}
	c->reloc_next = NULL;
	c->relocating = 0;
}

void
client_park_relocate(struct client *c)
{
	if (c->relocating || !c->parked)
		return;
	c->relocating = 1;
	c->reloc_since = c->reloc_next_at = uv_now(c->fe->loop);
	c->reloc_next = c->fe->relocating;
	c->fe->relocating = c;
	log_info("session=%s user=%s backend=%s parked session moving", c->id,
		 c->user, c->duser.mailbox_server);
}

static void
relocate_end(struct client *c, const char *why)
{
	log_warn("session=%s user=%s parked session not moved: %s", c->id,
		 c->user, why);
	relocate_unlink(c);
	c->proto->bye_unavailable(c, "Mailbox server unavailable");
	client_close(c, "not moved");
}

static void
relocate_looked_up(void *ctx, enum dir_result res, const struct dir_user *u,
		   const char *why)
{
	struct client *c = ctx;
	c->dreq = NULL;
	if (!c->relocating || c->state != CLIENT_RELAY)
		return;
	if (res == DIR_TEMPFAIL)
		return; /* the next tick asks again */
	if (res != DIR_OK ||
	    strcasecmp(u->mailbox_id, c->duser.mailbox_id) != 0) {
		relocate_end(c, res != DIR_OK ? (why ? why : "no entry")
					      : "another mailbox id");
		return;
	}
	int active = u->account_state[0] == '\0' ||
		     strcasecmp(u->account_state, "active") == 0;
	if (!active && strcasecmp(u->account_state, "moving") == 0)
		return; /* not yet */
	if (!active || !u->imap_enabled || client_entry_refused(c->fe, u)) {
		relocate_end(c, "the account may no longer log in");
		return;
	}
	if (u->mailbox_server[0] == '\0') {
		relocate_end(c, "the entry names no backend");
		return;
	}
	log_info("session=%s user=%s parked session moved backend=%s -> %s",
		 c->id, c->user, c->duser.mailbox_server, u->mailbox_server);
	snprintf(c->duser.mailbox_server, sizeof(c->duser.mailbox_server), "%s",
		 u->mailbox_server);
	relocate_unlink(c);
	link_pool_rehome(c, u->mailbox_server);
}

void
client_park_relocate_tick(struct frontend *fe)
{
	uint64_t now = uv_now(fe->loop);
	uint64_t wait = (uint64_t)fe->cfg.imap_park_move_wait * 1000;
	for (struct client *c = fe->relocating, *next; c != NULL; c = next) {
		next = c->reloc_next;
		if (c->dreq != NULL || c->state != CLIENT_RELAY)
			continue;
		if (now - c->reloc_since >= wait) {
			relocate_end(c,
				     "still moving after imap.park_move_wait");
			continue;
		}
		if (now < c->reloc_next_at)
			continue;
		c->reloc_next_at = now + 1000;
		c->dreq = dir_lookup_address(
		    fe->dir, c->duser.mail[0] ? c->duser.mail : c->user,
		    relocate_looked_up, c);
	}
}

void
client_park_clear(struct client *c)
{
	if (!c->parked)
		return;
	if (c->relocating)
		relocate_unlink(c);
	c->parked = 0;
	c->watching = 0;
	metrics_sub(&c->fe->metrics.parked, 1);
	buf_free(&c->park_state);
	free(c->park_name);
	c->park_name = NULL;
	uv_timer_stop(&c->delay);
}

static void
park_wait_expired(uv_timer_t *t)
{
	struct client *c = t->data;
	if (!c->reviving || c->state != CLIENT_RELAY)
		return;
	log_warn("session=%s user=%s backend=%s still away after "
		 "frontend.link_timeout: parked session ended",
		 c->id, c->user, c->duser.mailbox_server);
	if (c->relocating)
		relocate_unlink(c);
	link_pool_unwatch(c);
	c->reviving = 0;
	c->proto->bye_unavailable(c, "Mailbox server unavailable");
	client_close(c, "backend unavailable");
}

void
client_park_wait(struct client *c)
{
	uint64_t ms = (uint64_t)c->fe->cfg.frontend_link_timeout * 1000;
	if (ms > 0 && !uv_is_active((uv_handle_t *)&c->delay))
		uv_timer_start(&c->delay, park_wait_expired, ms, 0);
}

void
client_park_revive(struct client *c)
{
	if (!c->parked || c->reviving || c->state != CLIENT_RELAY)
		return;
	c->reviving = 1;
	uv_timer_stop(&c->delay);
	link_pool_unwatch(c);
	/* the client's bytes wait for Opened */
	c->send_credit = 0;
	metrics_add(&c->fe->metrics.park_revivals, 1);
	log_info("session=%s user=%s taken up again", c->id, c->user);
	if (c->relocating) {
		/* on the backend the account moves to, once it is known */
		client_park_wait(c);
		return;
	}
	link_pool_resume(c);
}

void
client_park_closed(struct client *c, const char *reason)
{
	if (strcmp(reason, "park:changed") == 0) {
		client_park_revive(c);
		return;
	}
	if (strcmp(reason, "park:moved") == 0) {
		client_park_relocate(c);
		return;
	}
	c->link = NULL;
	if (strcmp(reason, "park:kicked") == 0) {
		client_printf(c, "* BYE Session ended by an administrator\r\n");
		client_close(c, "kicked");
		return;
	}
	client_link_closed(c, "session ended", 0);
}

int
client_park_kick(struct client *c, uint64_t at)
{
	if (!c->parked || c->reviving || c->relocating ||
	    c->state != CLIENT_RELAY || c->login_at > at)
		return 0;
	log_info("session=%s user=%s kicked while parked", c->id, c->user);
	client_printf(c, "* BYE Session ended by an administrator\r\n");
	client_close(c, "kicked");
	return 1;
}

void
client_park_drain(struct client *c)
{
	c->proto->bye_unavailable(c, "Server shutting down.");
	client_close(c, "shutdown");
}
