/* store_writer.c - the writer thread: group commit.
 *
 * Operations queue up while a commit is in progress; the thread then runs
 * all of them in one write transaction, each inside a nested transaction
 * so that a failing operation is undone alone, and commits once (one
 * fsync for the whole batch).  Completions go back to the loop through a
 * uv_async handle and run there in submission order.
 */
#include "backend/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_req {
	store_op_fn *op;
	void *args;
	store_done_fn *done;
	void *ctx;
	int rc;
	char err[STORE_ERR_SIZE];
	struct store_req *next;
};

struct store_writer {
	struct store *st;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_req *queue, **queue_tail; /* waiting for the thread */
	struct store_req *done, **done_tail;   /* waiting for the loop */
	uv_async_t async;
	int stopping;
	uint64_t commits;
	uint64_t last_batch;
};

static void
req_set_all(struct store_req *batch, int rc, const char *err)
{
	for (struct store_req *r = batch; r != NULL; r = r->next) {
		if (r->rc == 0) {
			r->rc = rc;
			snprintf(r->err, sizeof(r->err), "%s", err);
		}
	}
}

static void
run_batch(struct store *st, struct store_req *batch)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		char msg[STORE_ERR_SIZE];
		snprintf(msg, sizeof(msg), "write transaction: %s",
			 store_strerror(rc));
		req_set_all(batch, STORE_ERR_INTERNAL, msg);
		return;
	}
	for (struct store_req *r = batch; r != NULL; r = r->next) {
		MDB_txn *child;
		rc = mdb_txn_begin(st->env, txn, 0, &child);
		if (rc != 0) {
			r->rc = STORE_ERR_INTERNAL;
			snprintf(r->err, sizeof(r->err), "%s",
				 store_strerror(rc));
			continue;
		}
		r->err[0] = '\0';
		r->rc = r->op(st, child, r->args, r->err);
		if (r->rc == 0)
			rc = mdb_txn_commit(child);
		else
			mdb_txn_abort(child);
		if (r->rc == 0 && rc != 0) {
			r->rc = rc == MDB_MAP_FULL ? STORE_ERR_FULL
						   : STORE_ERR_INTERNAL;
			snprintf(r->err, sizeof(r->err), "%s",
				 store_strerror(rc));
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		char msg[STORE_ERR_SIZE];
		snprintf(msg, sizeof(msg), "commit: %s", store_strerror(rc));
		req_set_all(batch, rc == MDB_MAP_FULL ? STORE_ERR_FULL
						      : STORE_ERR_INTERNAL,
			    msg);
		/* Operations that had succeeded are undone too. */
		for (struct store_req *r = batch; r != NULL; r = r->next)
			if (r->rc == 0)
				r->rc = STORE_ERR_INTERNAL;
	}
}

static void *
writer_main(void *arg)
{
	struct store_writer *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->queue == NULL && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->queue == NULL && w->stopping)
			break;
		struct store_req *batch = w->queue;
		w->queue = NULL;
		w->queue_tail = &w->queue;
		pthread_mutex_unlock(&w->lock);

		uint64_t n = 0;
		for (struct store_req *r = batch; r != NULL; r = r->next)
			n++;
		run_batch(w->st, batch);

		pthread_mutex_lock(&w->lock);
		w->commits++;
		w->last_batch = n;
		*w->done_tail = batch;
		while (*w->done_tail != NULL)
			w->done_tail = &(*w->done_tail)->next;
		uv_async_send(&w->async);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void
writer_deliver(uv_async_t *h)
{
	struct store_writer *w = h->data;
	pthread_mutex_lock(&w->lock);
	struct store_req *done = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->lock);
	while (done != NULL) {
		struct store_req *r = done;
		done = r->next;
		r->done(r->ctx, r->rc, r->err);
		free(r);
	}
}

int
store_writer_start(struct store *st, uv_loop_t *loop, const char **error_r)
{
	struct store_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	w->st = st;
	w->queue_tail = &w->queue;
	w->done_tail = &w->done;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (uv_async_init(loop, &w->async, writer_deliver) < 0) {
		*error_r = "cannot create the writer's async handle";
		free(w);
		return -1;
	}
	w->async.data = w;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		*error_r = "cannot start the writer thread";
		uv_close((uv_handle_t *)&w->async, NULL);
		return -1;
	}
	st->writer = w;
	return 0;
}

static void
writer_async_closed(uv_handle_t *h)
{
	free(h->data);
}

void
store_writer_stop(struct store *st)
{
	struct store_writer *w = st->writer;
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	/* Deliver what finished; the loop may not run again. */
	writer_deliver(&w->async);
	st->writer = NULL;
	if (!uv_is_closing((uv_handle_t *)&w->async))
		uv_close((uv_handle_t *)&w->async, writer_async_closed);
}

void
store_submit(struct store *st, store_op_fn *op, void *args,
	     store_done_fn *done, void *ctx)
{
	struct store_writer *w = st->writer;
	struct store_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->op = op;
	r->args = args;
	r->done = done;
	r->ctx = ctx;
	if (w == NULL) {
		/* No thread (tools): run at once; done still runs after the
		   commit. */
		r->rc = store_run(st, op, args, r->err);
		done(ctx, r->rc, r->err);
		free(r);
		return;
	}
	pthread_mutex_lock(&w->lock);
	*w->queue_tail = r;
	w->queue_tail = &r->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
store_run(struct store *st, store_op_fn *op, void *args, char *err)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "write transaction: %s",
			 store_strerror(rc));
		return STORE_ERR_INTERNAL;
	}
	err[0] = '\0';
	int res = op(st, txn, args, err);
	if (res != 0) {
		mdb_txn_abort(txn);
		return res;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "commit: %s", store_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	return 0;
}

uint64_t
store_commits(const struct store *st)
{
	return st->writer ? st->writer->commits : 0;
}
