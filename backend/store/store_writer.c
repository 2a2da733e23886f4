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

#include <uv.h>

#include "common/metrics.h"

struct store_req {
	store_op_fn *op;
	void *args;
	store_done_fn *done;
	void *ctx;
	int rc;
	int active;           /* runs in the current round */
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
	store_batch_fn *batch_begin, *batch_end; /* around completions */
	void *batch_arg;
	store_changed_fn *changed_fn;
	void *changed_arg;
	/* mailboxes operations changed beyond their callers' knowledge:
	   noted by the thread during a batch, then handed to the loop */
	uint64_t *noted, *changed;
	size_t nnoted, notedcap, nchanged, changedcap;
	int stopping;
	uint64_t commits;
	uint64_t last_batch;
	/* written by the writer thread only (common/metrics.h) */
	struct metrics_hist txn_us;  /* one batch: its transaction */
	struct metrics_hist batch;   /* operations per commit */
};

/* Commits a transaction that only bumps a counter: LMDB reuses the pages
 * a commit freed only from the second transaction after it. */
static int
advance_txnid(struct store *st)
{
	MDB_txn *txn;
	static const char key[] = "writer_generation";
	uint64_t gen = 0;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0)
		return rc;
	MDB_val k = {sizeof(key) - 1, (void *)(uintptr_t)key}, v;
	if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == sizeof(gen))
		memcpy(&gen, v.mv_data, sizeof(gen));
	gen++;
	v.mv_size = sizeof(gen);
	v.mv_data = &gen;
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

static int
full_or_internal(int rc)
{
	return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
}

/* Runs the active operations of a batch in one transaction, each in a
 * nested one; a failed commit fails every active operation. */
static void
run_batch_once(struct store *st, struct store_req *batch)
{
	MDB_txn *txn;
	char msg[STORE_ERR_SIZE];
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "write transaction: %s",
			 store_strerror(rc));
		for (struct store_req *r = batch; r != NULL; r = r->next)
			if (r->active) {
				r->rc = STORE_ERR_INTERNAL;
				snprintf(r->err, sizeof(r->err), "%s", msg);
			}
		return;
	}
	for (struct store_req *r = batch; r != NULL; r = r->next) {
		MDB_txn *child;
		if (!r->active)
			continue;
		rc = mdb_txn_begin(st->env, txn, 0, &child);
		if (rc != 0) {
			r->rc = full_or_internal(rc);
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
			r->rc = full_or_internal(rc);
			snprintf(r->err, sizeof(r->err), "%s",
				 store_strerror(rc));
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		/* Nothing of this transaction is stored. */
		snprintf(msg, sizeof(msg), "commit: %s", store_strerror(rc));
		for (struct store_req *r = batch; r != NULL; r = r->next) {
			if (!r->active)
				continue;
			r->rc = full_or_internal(rc);
			snprintf(r->err, sizeof(r->err), "%s", msg);
		}
	}
}

/* Runs the batch; operations that found the map full are tried once more
 * after the pages freed by recent commits (an EXPUNGE, say) have become
 * reusable. */
static void
run_batch(struct store *st, struct store_req *batch)
{
	int full = 0;
	for (struct store_req *r = batch; r != NULL; r = r->next)
		r->active = 1;
	run_batch_once(st, batch);
	for (struct store_req *r = batch; r != NULL; r = r->next) {
		r->active = r->rc == STORE_ERR_FULL;
		full |= r->active;
	}
	if (!full || advance_txnid(st) != 0)
		return;
	run_batch_once(st, batch);
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
		uint64_t t0 = uv_hrtime();
		run_batch(w->st, batch);
		metrics_observe(&w->txn_us, (uv_hrtime() - t0) / 1000);
		metrics_observe_in(&w->batch, metrics_bucket_size, n);

		pthread_mutex_lock(&w->lock);
		w->commits++;
		w->last_batch = n;
		for (size_t i = 0; i < w->nnoted; i++) {
			if (w->nchanged == w->changedcap) {
				w->changedcap = w->changedcap
						    ? 2 * w->changedcap
						    : 16;
				w->changed = realloc(w->changed,
						     w->changedcap *
							 sizeof(*w->changed));
				if (w->changed == NULL)
					abort();
			}
			w->changed[w->nchanged++] = w->noted[i];
		}
		w->nnoted = 0;
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
	uint64_t *changed = w->changed;
	size_t nchanged = w->nchanged;
	w->changed = NULL;
	w->nchanged = w->changedcap = 0;
	pthread_mutex_unlock(&w->lock);
	if (done == NULL && nchanged == 0)
		return;
	if (w->batch_begin != NULL)
		w->batch_begin(w->batch_arg);
	while (done != NULL) {
		struct store_req *r = done;
		done = r->next;
		r->done(r->ctx, r->rc, r->err);
		free(r);
	}
	/* (a mailbox of an operation undone is said too: its sessions
	   look and find nothing new) */
	for (size_t i = 0; i < nchanged && w->changed_fn != NULL; i++)
		w->changed_fn(w->changed_arg, changed[i]);
	free(changed);
	if (w->batch_end != NULL)
		w->batch_end(w->batch_arg);
}

void
store_writer_changed_hook(struct store *st, store_changed_fn *fn, void *arg)
{
	struct store_writer *w = st->writer;
	if (w == NULL)
		return;
	w->changed_fn = fn;
	w->changed_arg = arg;
}

void
store_note_changed(struct store *st, uint64_t mbox_id)
{
	struct store_writer *w = st->writer;
	/* only the writer's thread runs operations while there is one;
	   without one (tools) no session is there to tell */
	if (w == NULL || !pthread_equal(pthread_self(), w->thread))
		return;
	if (w->nnoted == w->notedcap) {
		w->notedcap = w->notedcap ? 2 * w->notedcap : 16;
		w->noted = realloc(w->noted, w->notedcap * sizeof(*w->noted));
		if (w->noted == NULL)
			abort();
	}
	w->noted[w->nnoted++] = mbox_id;
}

void
store_writer_batch_hooks(struct store *st, store_batch_fn *begin,
			 store_batch_fn *end, void *arg)
{
	struct store_writer *w = st->writer;
	if (w == NULL)
		return;
	w->batch_begin = begin;
	w->batch_end = end;
	w->batch_arg = arg;
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
	struct store_writer *w = h->data;
	free(w->noted);
	free(w->changed);
	free(w);
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

static const char external_key[] = "external_generation";

void
store_set_external(struct store *st)
{
	st->external = 1;
}

int
store_external_generation(struct store *st, MDB_txn *txn, uint64_t *gen_r,
			  const char **error_r)
{
	MDB_val k = {sizeof(external_key) - 1,
		     (void *)(uintptr_t)external_key},
		v;
	*gen_r = 0;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0 || v.mv_size != sizeof(*gen_r)) {
		*error_r = rc != 0 ? store_strerror(rc)
				   : "external generation: bad record";
		return -1;
	}
	memcpy(gen_r, v.mv_data, sizeof(*gen_r));
	return 0;
}

/* Advances the external generation inside txn (an external handle's). */
static int
bump_external(struct store *st, MDB_txn *txn)
{
	uint64_t gen;
	const char *err;
	if (store_external_generation(st, txn, &gen, &err) < 0)
		return MDB_CORRUPTED;
	gen++;
	MDB_val k = {sizeof(external_key) - 1,
		     (void *)(uintptr_t)external_key},
		v = {sizeof(gen), &gen};
	return mdb_put(txn, st->meta, &k, &v, 0);
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
	if (st->external && (rc = bump_external(st, txn)) != 0) {
		mdb_txn_abort(txn);
		snprintf(err, STORE_ERR_SIZE, "external generation: %s",
			 store_strerror(rc));
		return full_or_internal(rc);
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "commit: %s", store_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	return 0;
}

int
store_nested(struct store *st, MDB_txn *txn, store_op_fn *op, void *args,
	     char *err)
{
	MDB_txn *child;
	int rc = mdb_txn_begin(st->env, txn, 0, &child);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "nested transaction: %s",
			 store_strerror(rc));
		return full_or_internal(rc);
	}
	err[0] = '\0';
	int res = op(st, child, args, err);
	if (res != 0) {
		mdb_txn_abort(child);
		return res;
	}
	if ((rc = mdb_txn_commit(child)) != 0) {
		snprintf(err, STORE_ERR_SIZE, "nested commit: %s",
			 store_strerror(rc));
		return full_or_internal(rc);
	}
	return 0;
}

void
store_writer_metrics(const struct store *st, struct metrics_hist *txn_r,
		     struct metrics_hist *batch_r)
{
	if (st->writer == NULL)
		return;
	metrics_hist_sum(txn_r, &st->writer->txn_us);
	metrics_hist_sum(batch_r, &st->writer->batch);
}

uint64_t
store_commits(const struct store *st)
{
	return st->writer ? st->writer->commits : 0;
}
