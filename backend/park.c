/* park.c - the watch that stays of a parked IMAP session.
 *
 * A session in IDLE parked at its frontend (session_park(), link version
 * 5) leaves nothing here but this: its stream, waiting for a change of
 * the mailbox the session had selected (one parked between commands
 * watches none: it only waits for a kick, a move or a stop).  The change (or
 * the mailbox's removal) closes the stream with "park:changed", and the
 * frontend takes the session up again (Open.resume) to show it.  A backend that
 * stops closes its watches with "park:draining": the frontend keeps its clients
 * and watches again once the backend is back.  No input is taken.
 */
#include "backend/backend.h"

#include <stdlib.h>

#include "common/log.h"

struct park_watch {
	uint64_t mbox_id; /* 0: none selected */
	uint64_t modseq;
};

void
park_watch_end(struct bsession *s, const char *reason)
{
	if (s->ending)
		return;
	s->close_reason = reason;
	session_end(s, reason);
}

/* Whether the mailbox moved on from what the session showed. */
static void
park_check(struct bsession *s)
{
	struct park_watch *w = s->state;
	struct store_mailbox_rec mb;
	MDB_txn *txn;
	const char *err;
	if (w->mbox_id == 0 || s->ending)
		return;
	if (store_read_begin(s->be->store, &txn, &err) < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		return;
	}
	int rc = store_mailbox_get_by_id(s->be->store, txn, w->mbox_id, &mb,
					 &err);
	store_read_end(&txn);
	if (rc < 0) {
		log_error("session=%s store error=\"%s\"", s->id, err);
		return;
	}
	if (rc > 0 || mb.noselect || mb.highestmodseq != w->modseq)
		park_watch_end(s, "park:changed");
}

static int
park_open(struct bsession *s, const Portico__Open *o, const char **code_r,
	  const char **reason_r)
{
	(void)s;
	(void)o;
	*code_r = "CLIENTBUG";
	*reason_r = "not a session";
	return -1;
}

static void
park_input(struct bsession *s)
{
	/* a watch reads nothing: what a frontend sends is dropped */
	session_consumed(s, buf_used(&s->in));
	buf_reset(&s->in);
}

static void
park_free(struct bsession *s)
{
	free(s->state);
	s->state = NULL;
}

static void
park_notify(struct bsession *s, uint64_t mbox_id)
{
	struct park_watch *w = s->state;
	if (mbox_id == BACKEND_MBOX_ANY || mbox_id == w->mbox_id)
		park_check(s);
}

static void
park_shutdown(struct bsession *s, int force)
{
	(void)force;
	park_watch_end(s, s->moving   ? "park:moved"
			  : s->kicked ? "park:kicked"
				      : "park:draining");
}

static const struct session_engine park_engine = {
    .name = "imap-parked",
    .open = park_open,
    .input = park_input,
    .free = park_free,
    .notify = park_notify,
    .shutdown = park_shutdown,
};

void
park_watch_start(struct bsession *s, uint64_t mbox_id, uint64_t modseq)
{
	struct park_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	w->mbox_id = mbox_id;
	w->modseq = modseq;
	s->engine = &park_engine;
	s->state = w;
	if (mbox_id != 0)
		backend_watch(s, mbox_id);
	/* a change between the session's last look and now */
	park_check(s);
	if (s->moving)
		park_watch_end(s, "park:moved");
	else if (s->be->draining && !s->ending)
		park_watch_end(s, "park:draining");
}

int
park_is_watch(const struct bsession *s)
{
	return s->engine == &park_engine;
}
