/* http_sessions.c - GET /sessions: the frontend's client connections, on
 * every event loop, for `portico-admin sessions`.  Restricted like
 * /metrics to http.metrics_networks.
 *
 * A loop's clients are its thread's alone: the loop that took the
 * request never reads another loop's list.  It posts the request to every
 * loop (itself included) through that loop's uv_async; each loop writes
 * its own clients into its slot of the request and counts down; the last
 * one hands the request back to the asking loop, which answers.  A loop
 * that is stopping answers for itself with nothing.
 *
 * The answer is text/plain, a header line and then one line per
 * connection, fields separated by tabs:
 *
 *   id protocol user client backend state age worker
 *
 * user is the login name given (empty before one), backend the user's
 * mailbox server once the directory named it, age whole seconds since
 * the connection was accepted; an empty field is "-".  Bytes outside
 * printable ASCII, tab and backslash in user are written as \xHH.
 */
#include "frontend/http/http_routes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

struct sessions_req;

/* One loop's part of a request. */
struct sessions_slot {
	struct sessions_req *req;
	struct sessions_slot *next; /* in the loop's todo list */
	struct buf out;
};

struct sessions_req {
	struct frontend *origin;    /* the loop that answers */
	struct http_conn *hc;       /* origin's only; NULL once gone */
	pthread_mutex_t lock;
	unsigned pending;           /* loops yet to write their slot */
	struct sessions_req *next;  /* in origin's done list */
	unsigned nslots;
	struct sessions_slot slots[];
};

/* Per loop. */
struct http_sessions {
	struct frontend *fe;
	uv_async_t async;
	pthread_mutex_t lock;       /* closed, todo, done */
	int closed;
	struct sessions_slot *todo; /* parts to write on this loop */
	struct sessions_req *done;  /* requests this loop answers */
};

static void
sessions_req_free(struct sessions_req *r)
{
	for (unsigned i = 0; i < r->nslots; i++)
		buf_free(&r->slots[i].out);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* A slot is written (any loop): the last one hands r to its origin. */
static void
sessions_slot_done(struct sessions_req *r)
{
	pthread_mutex_lock(&r->lock);
	int last = --r->pending == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	struct http_sessions *o = r->origin->sessions;
	pthread_mutex_lock(&o->lock);
	if (o->closed) {
		/* Stopping: its connections are gone (hc cancelled). */
		pthread_mutex_unlock(&o->lock);
		sessions_req_free(r);
		return;
	}
	r->next = o->done;
	o->done = r;
	uv_async_send(&o->async);
	pthread_mutex_unlock(&o->lock);
}

static void
sessions_field(struct buf *b, const char *s)
{
	if (*s == '\0') {
		buf_append(b, "-", 1);
		return;
	}
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x21 || ch > 0x7e || ch == '\\')
			buf_printf(b, "\\x%02x", ch);
		else
			buf_append(b, s, 1);
	}
}

/* This loop's clients, one line each. */
static void
sessions_write(struct frontend *fe, struct buf *b)
{
	uint64_t now = uv_hrtime();
	for (const struct client *c = fe->clients; c != NULL; c = c->next) {
		buf_printf(b, "%s\t%s\t", c->id, c->proto->name);
		sessions_field(b, c->user);
		buf_append(b, "\t", 1);
		sessions_field(b, c->peer);
		buf_append(b, "\t", 1);
		sessions_field(b, c->duser.mailbox_server);
		const char *doing = c->state == CLIENT_LOCAL &&
					    c->proto->doing != NULL
					? c->proto->doing(c)
					: NULL;
		buf_printf(
		    b, "\t%s%s%s\t%llu\t%u\n",
		    frontend_metrics_state_name(c->state),
		    doing != NULL ? ":" : "", doing != NULL ? doing : "",
		    (unsigned long long)(now > c->t_accept
					     ? (now - c->t_accept) / 1000000000u
					     : 0),
		    fe->index);
	}
}

static void
sessions_answer(struct sessions_req *r)
{
	if (r->hc != NULL) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "id\tprotocol\tuser\tclient\tbackend\tstate\t"
			       "age\tworker\n");
		for (unsigned i = 0; i < r->nslots; i++)
			buf_append(&b, buf_ptr(&r->slots[i].out),
				   buf_used(&r->slots[i].out));
		http_respond(r->hc, 200, "text/plain; charset=utf-8",
			     buf_ptr(&b), buf_used(&b), NULL);
		buf_free(&b);
	}
	sessions_req_free(r);
}

static void
sessions_wakeup(uv_async_t *h)
{
	struct http_sessions *s = h->data;
	pthread_mutex_lock(&s->lock);
	struct sessions_slot *todo = s->todo;
	struct sessions_req *done = s->done;
	s->todo = NULL;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	while (todo != NULL) {
		struct sessions_slot *slot = todo;
		todo = slot->next;
		sessions_write(s->fe, &slot->out);
		sessions_slot_done(slot->req);
	}
	while (done != NULL) {
		struct sessions_req *r = done;
		done = r->next;
		sessions_answer(r);
	}
}

static void
sessions_cancel(void *arg)
{
	struct sessions_req *r = arg;
	r->hc = NULL;
}

void
http_sessions(struct frontend *fe, struct http_conn *hc,
	      struct http_request *req)
{
	if (!http_management_allowed(fe, hc, req))
		return;
	unsigned n = fe->nworkers;
	struct sessions_req *r =
		calloc(1, sizeof(*r) + n * sizeof(r->slots[0]));
	if (r == NULL)
		abort();
	r->origin = fe;
	r->hc = hc;
	r->nslots = n;
	r->pending = n;
	pthread_mutex_init(&r->lock, NULL);
	http_defer(hc, sessions_cancel, r);
	for (unsigned i = 0; i < n; i++) {
		struct sessions_slot *slot = &r->slots[i];
		struct http_sessions *s = fe->workers[i].sessions;
		slot->req = r;
		pthread_mutex_lock(&s->lock);
		if (s->closed) {
			pthread_mutex_unlock(&s->lock);
			sessions_slot_done(r);
			continue;
		}
		slot->next = s->todo;
		s->todo = slot;
		uv_async_send(&s->async);
		pthread_mutex_unlock(&s->lock);
	}
}

int
http_sessions_start(struct frontend *fe)
{
	struct http_sessions *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->fe = fe;
	pthread_mutex_init(&s->lock, NULL);
	uv_async_init(fe->loop, &s->async, sessions_wakeup);
	s->async.data = s;
	fe->sessions = s;
	return 0;
}

/* In the loop's thread, after its HTTP connections are gone: what is
 * queued here is answered with nothing (parts) or dropped (requests
 * whose connection is gone), and nothing more is queued. */
void
http_sessions_stop(struct frontend *fe)
{
	struct http_sessions *s = fe->sessions;
	if (s == NULL || s->closed)
		return;
	pthread_mutex_lock(&s->lock);
	s->closed = 1;
	struct sessions_slot *todo = s->todo;
	struct sessions_req *done = s->done;
	s->todo = NULL;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	while (todo != NULL) {
		struct sessions_slot *slot = todo;
		todo = slot->next;
		sessions_slot_done(slot->req);
	}
	while (done != NULL) {
		struct sessions_req *r = done;
		done = r->next;
		sessions_req_free(r);
	}
	uv_close((uv_handle_t *)&s->async, NULL);
}

void
http_sessions_free(struct frontend *fe)
{
	struct http_sessions *s = fe->sessions;
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
	fe->sessions = NULL;
}
