/* kick.c - portico-admin kick reaching the sessions a frontend serves
 * itself.  An SMTP submission session lives in the frontend alone once
 * logged in and opens a link only for each message, so the backend's
 * kick, which ends the IMAP and POP3 sessions it runs, cannot end it; the
 * Forget frames that make the frontends forget the account's cached
 * logins end such sessions here.
 *
 * The frames arrive on one loop's link to the account's backend; another
 * loop may have sessions of the account and no link to that backend at
 * all.  The loop that hears them ends its own sessions at once and posts
 * a copy of the list to every other loop through that loop's uv_async (as
 * GET /sessions does, http/http_sessions.c); each ends its own.  A loop
 * that is stopping takes nothing more: its sessions are ending anyway.
 *
 * Each note says when the kick was made: a session that logged in after
 * it (the account enabled again, a new password) is not ended by a kick
 * the backend remembered and sent when a link came up later.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "frontend/frontend.h"

/* A list posted to another loop: one allocation, the ids after the
 * notes. */
struct kick_msg {
	struct kick_msg *next;
	char backend[64];
	int all;
	size_t n;
	struct kick_note notes[];
};

/* Per loop. */
struct fe_kicks {
	struct frontend *fe;
	uv_async_t async;
	pthread_mutex_t lock; /* closed, todo */
	int closed;
	struct kick_msg *todo;
};

static int
note_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct kick_note *)a)->mailbox_id,
			  ((const struct kick_note *)b)->mailbox_id);
}

/* When the account of id was kicked last (notes sorted by note_cmp; a
 * list may name one twice); 0: not named. */
static uint64_t
note_find(const char *id, const struct kick_note *notes, size_t n)
{
	if (n == 0)
		return 0;
	struct kick_note key = {.mailbox_id = (char *)(uintptr_t)id};
	const struct kick_note *k = bsearch(&key, notes, n, sizeof(*notes),
					    note_cmp);
	if (k == NULL)
		return 0;
	uint64_t at = k->at;
	for (const struct kick_note *p = k; p > notes && !note_cmp(p - 1, k);)
		if ((--p)->at > at)
			at = p->at;
	for (const struct kick_note *p = k + 1;
	     p < notes + n && !note_cmp(p, k); p++)
		if (p->at > at)
			at = p->at;
	return at;
}

/* This loop's sessions of the accounts named (notes sorted). */
static void
kick_apply(struct frontend *fe, const char *backend,
	   const struct kick_note *notes, size_t n, int all)
{
	unsigned ended = 0;
	for (struct client *c = fe->clients, *next; c != NULL; c = next) {
		next = c->next;
		if (c->proto->kick == NULL || c->state == CLIENT_CLOSING ||
		    c->duser.mailbox_id[0] == '\0')
			continue;
		/* a parked IMAP session is the concern of the backend it is
		   on: not of the one its account left (kick --park, whose
		   Forget that backend remembers) */
		if (c->protocol == CLIENT_IMAP &&
		    strcasecmp(c->duser.mailbox_server, backend) != 0)
			continue;
		uint64_t at;
		if (all)
			at = strcasecmp(c->duser.mailbox_server, backend) == 0
				 ? UINT64_MAX
				 : 0;
		else
			at = note_find(c->duser.mailbox_id, notes, n);
		if (at != 0 && c->proto->kick(c, at))
			ended++;
	}
	metrics_add(&fe->metrics.kicked, ended);
	if (ended > 0 && all)
		log_info("kick backend=%s worker=%u mailboxes=all sessions=%u",
			 backend, fe->index, ended);
	else if (ended > 0)
		log_info("kick backend=%s worker=%u mailboxes=%zu sessions=%u",
			 backend, fe->index, n, ended);
}

void
kick_sessions(struct frontend *fe, const char *backend, struct kick_note *notes,
	      size_t n, int all)
{
	if (all)
		n = 0;
	if (n > 1)
		qsort(notes, n, sizeof(*notes), note_cmp);
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += strlen(notes[i].mailbox_id) + 1;
	for (unsigned w = 0; w < fe->nworkers; w++) {
		struct fe_kicks *k = fe->workers[w].kicks;
		if (&fe->workers[w] == fe || k == NULL)
			continue;
		struct kick_msg *m = malloc(sizeof(*m) +
					    n * sizeof(m->notes[0]) + bytes);
		if (m == NULL)
			abort();
		snprintf(m->backend, sizeof(m->backend), "%s", backend);
		m->all = all;
		m->n = n;
		char *p = (char *)(m->notes + n);
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(notes[i].mailbox_id) + 1;
			memcpy(p, notes[i].mailbox_id, len);
			m->notes[i].mailbox_id = p;
			m->notes[i].at = notes[i].at;
			p += len;
		}
		pthread_mutex_lock(&k->lock);
		if (k->closed) {
			pthread_mutex_unlock(&k->lock);
			free(m);
			continue;
		}
		m->next = k->todo;
		k->todo = m;
		uv_async_send(&k->async);
		pthread_mutex_unlock(&k->lock);
	}
	kick_apply(fe, backend, notes, n, all);
}

/* Takes what other loops posted: applied (apply), or dropped; close:
 * nothing more is taken. */
static void
kick_take(struct fe_kicks *k, int apply, int close)
{
	pthread_mutex_lock(&k->lock);
	struct kick_msg *todo = k->todo;
	k->todo = NULL;
	if (close)
		k->closed = 1;
	pthread_mutex_unlock(&k->lock);
	while (todo != NULL) {
		struct kick_msg *m = todo;
		todo = m->next;
		if (apply)
			kick_apply(k->fe, m->backend, m->notes, m->n, m->all);
		free(m);
	}
}

static void
kick_wakeup(uv_async_t *h)
{
	kick_take(h->data, 1, 0);
}

void
kick_start(struct frontend *fe)
{
	struct fe_kicks *k = calloc(1, sizeof(*k));
	if (k == NULL)
		abort();
	k->fe = fe;
	pthread_mutex_init(&k->lock, NULL);
	uv_async_init(fe->loop, &k->async, kick_wakeup);
	k->async.data = k;
	fe->kicks = k;
}

void
kick_stop(struct frontend *fe)
{
	struct fe_kicks *k = fe->kicks;
	if (k == NULL || k->closed)
		return;
	kick_take(k, 0, 1);
	uv_close((uv_handle_t *)&k->async, NULL);
}

void
kick_free(struct frontend *fe)
{
	struct fe_kicks *k = fe->kicks;
	if (k == NULL)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
	fe->kicks = NULL;
}
