/* imap_park.c - IMAP sessions parked at the frontend (link version 5;
 * proto/link.proto "Parked IMAP sessions").
 *
 * A session in IDLE that its backend parks is held here as the bytes of
 * its state and a watch of its mailbox on the link: the client keeps its
 * connection (and TLS) and hears IDLE's keepalive from the frontend
 * (imap.idle_notify_interval).  Anything the client sends, or a change of
 * the mailbox (the watch closes with "park:changed"), takes the session up
 * again on the backend: Open with resume on a new stream, and the client's
 * bytes (its DONE) follow once it is Opened.  When the link goes (a backend
 * restart) the client stays; the link timer connects again and the watch
 * is made anew (link_pool.c).
 */
#include "frontend/frontend.h"

#include <string.h>

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
	c->parked = 1;
	c->watching = 1;
	metrics_add(&c->fe->metrics.parked, 1);
	uint64_t every = (uint64_t)c->fe->cfg.imap_idle_notify_interval * 1000;
	if (every > 0)
		uv_timer_start(&c->delay, park_keepalive_cb, every, every);
	log_info("session=%s user=%s parked bytes=%zu", c->id, c->user,
		 p->state.len);
	return 1;
}

void
client_park_clear(struct client *c)
{
	if (!c->parked)
		return;
	c->parked = 0;
	c->watching = 0;
	metrics_sub(&c->fe->metrics.parked, 1);
	buf_free(&c->park_state);
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
	link_pool_resume(c);
}

void
client_park_closed(struct client *c, const char *reason)
{
	if (strcmp(reason, "park:changed") == 0) {
		client_park_revive(c);
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
	if (!c->parked || c->reviving || c->state != CLIENT_RELAY ||
	    c->login_at > at)
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
