/* autoexpunge.c - messages in \Trash and \Junk folders (RFC 6154) go
 * backend.trash_lifetime and backend.junk_lifetime after they reached the
 * folder (their SAVEDATE, RFC 8514), as mail users expect of a server
 * that empties its wastebaskets.
 *
 * Every backend.autoexpunge_interval a sweep runs.  A thread of libuv's
 * pool reads, in one read transaction (the store is MDB_NOTLS), every
 * folder with either special-use whose lifetime is set, and collects the
 * UIDs saved before the cutoff.  Back on the loop, each folder's UIDs go
 * to the store writer as EXPUNGEs of at most AUTOEXPUNGE_CHUNK messages
 * (store_op_expunge: a new modseq, expunge records for QRESYNC, the quota
 * freed), and the folder's sessions are told, as after a client's
 * EXPUNGE: IDLE sees `* N EXPUNGE` or VANISHED at once, others at their
 * next command.  One sweep at a time; the next is armed when the last
 * commit of this one is done, with the interval then in force (a reload
 * that shortens it also brings the next sweep forward).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "common/log.h"

/* UIDs expunged in one store operation (one transaction's share). */
#define AUTOEXPUNGE_CHUNK 1000

struct ax_folder {
	uint64_t mbox_id;
	enum store_special_use su;
	uint32_t *uids;
	size_t n;
};

struct ax_op {
	struct autoexpunge *ax;
	struct ax_folder *f;
	struct store_expunge_args a;
};

struct autoexpunge {
	struct backend *be;
	uv_timer_t timer;
	uv_work_t work;
	int stopping;
	/* this sweep: the cutoffs (unix time; 0: that folder kind is off),
	   what the scan found, and the store operations still out */
	int64_t cut[STORE_SU_COUNT];
	struct ax_folder *folders;
	size_t n, cap;
	char scan_error[160];
	size_t ops_out;
	uint64_t removed;
	uint64_t removed_total; /* metrics */
};

/* -- the scan, on a thread of the pool ------------------------------------ */

struct ax_scan {
	struct autoexpunge *ax;
	MDB_txn *txn;
	const char *error;
};

static int
scan_mailbox(void *ctx, const void *key, size_t klen, const void *val,
	     size_t vlen)
{
	struct ax_scan *sc = ctx;
	struct autoexpunge *ax = sc->ax;
	struct store_mailbox_rec r;
	if (vlen != sizeof(r))
		return 0; /* check's business, not ours */
	memcpy(&r, val, sizeof(r));
	if (r.special_use >= STORE_SU_COUNT || ax->cut[r.special_use] == 0 ||
	    r.noselect || r.messages == 0)
		return 0;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	if (store_messages_list(ax->be->store, sc->txn, r.mbox_id, &msgs, &n,
				&sc->error) < 0)
		return 1;
	struct ax_folder f = {r.mbox_id, r.special_use, NULL, 0};
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].rec.savedate >= ax->cut[r.special_use])
			continue;
		if (f.uids == NULL &&
		    (f.uids = malloc(n * sizeof(*f.uids))) == NULL)
			abort();
		f.uids[f.n++] = msgs[i].uid;
	}
	free(msgs);
	if (f.n == 0)
		return 0;
	if (ax->n == ax->cap) {
		ax->cap = ax->cap ? ax->cap * 2 : 16;
		ax->folders = realloc(ax->folders,
				      ax->cap * sizeof(*ax->folders));
		if (ax->folders == NULL)
			abort();
	}
	ax->folders[ax->n++] = f;
	return 0;
}

static void
scan_work(uv_work_t *w)
{
	struct autoexpunge *ax = w->data;
	struct ax_scan sc = {ax, NULL, NULL};
	if (store_read_begin(ax->be->store, &sc.txn, &sc.error) == 0 &&
	    store_walk(ax->be->store, sc.txn, "mailboxes", NULL, 0,
		       scan_mailbox, &sc, &sc.error) < 0 &&
	    sc.error == NULL)
		sc.error = "the walk stopped";
	store_read_end(&sc.txn);
	if (sc.error != NULL)
		snprintf(ax->scan_error, sizeof(ax->scan_error), "%s",
			 sc.error);
}

/* -- the expunges, on the loop ---------------------------------------------*/

static void sweep_arm(struct autoexpunge *ax);

static void
sweep_free(struct autoexpunge *ax)
{
	for (size_t i = 0; i < ax->n; i++)
		free(ax->folders[i].uids);
	free(ax->folders);
	ax->folders = NULL;
	ax->n = ax->cap = 0;
}

static void
sweep_done(struct autoexpunge *ax)
{
	if (ax->removed > 0 || ax->scan_error[0] != '\0')
		log_info("autoexpunge folders=%zu messages=%llu%s%s%s", ax->n,
			 (unsigned long long)ax->removed,
			 ax->scan_error[0] ? " error=\"" : "", ax->scan_error,
			 ax->scan_error[0] ? "\"" : "");
	sweep_free(ax);
	sweep_arm(ax);
}

static void
op_done(void *ctx, int rc, const char *err)
{
	struct ax_op *op = ctx;
	struct autoexpunge *ax = op->ax;
	if (rc != 0) {
		log_error("autoexpunge mailbox=%llu error=\"%s\"",
			  (unsigned long long)op->f->mbox_id, err);
	} else if (op->a.removed > 0) {
		ax->removed += op->a.removed;
		ax->removed_total += op->a.removed;
		backend_mailbox_changed(ax->be, op->f->mbox_id);
	}
	free(op);
	if (--ax->ops_out == 0)
		sweep_done(ax);
}

static void
scan_done(uv_work_t *w, int status)
{
	struct autoexpunge *ax = w->data;
	if (ax->stopping || status != 0) {
		sweep_free(ax);
		return;
	}
	ax->removed = 0;
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < ax->n; i++) {
		struct ax_folder *f = &ax->folders[i];
		for (size_t off = 0; off < f->n; off += AUTOEXPUNGE_CHUNK) {
			struct ax_op *op = calloc(1, sizeof(*op));
			if (op == NULL)
				abort();
			op->ax = ax;
			op->f = f;
			op->a.mbox_id = f->mbox_id;
			op->a.uids = f->uids + off;
			op->a.n = f->n - off < AUTOEXPUNGE_CHUNK
				      ? f->n - off
				      : AUTOEXPUNGE_CHUNK;
			op->a.now = now;
			ax->ops_out++;
			store_submit(ax->be->store, store_op_expunge, &op->a,
				     op_done, op);
		}
	}
	if (ax->ops_out == 0)
		sweep_done(ax);
}

static void
sweep_start(uv_timer_t *t)
{
	struct autoexpunge *ax = t->data;
	const struct config *cfg = &ax->be->cfg;
	int64_t now = (int64_t)time(NULL);
	memset(ax->cut, 0, sizeof(ax->cut));
	if (cfg->backend_trash_lifetime > 0)
		ax->cut[STORE_SU_TRASH] = now - cfg->backend_trash_lifetime;
	if (cfg->backend_junk_lifetime > 0)
		ax->cut[STORE_SU_JUNK] = now - cfg->backend_junk_lifetime;
	if (ax->cut[STORE_SU_TRASH] == 0 && ax->cut[STORE_SU_JUNK] == 0) {
		sweep_arm(ax); /* off: look again after the interval */
		return;
	}
	ax->scan_error[0] = '\0';
	ax->work.data = ax;
	if (uv_queue_work(ax->be->loop, &ax->work, scan_work, scan_done) != 0)
		sweep_arm(ax);
}

static void
sweep_arm(struct autoexpunge *ax)
{
	if (ax->stopping)
		return;
	int64_t every = ax->be->cfg.backend_autoexpunge_interval;
	uv_timer_start(&ax->timer, sweep_start,
		       (uint64_t)(every > 0 ? every : 1) * 1000, 0);
}

int
autoexpunge_start(struct backend *be)
{
	struct autoexpunge *ax = calloc(1, sizeof(*ax));
	if (ax == NULL)
		abort();
	ax->be = be;
	uv_timer_init(be->loop, &ax->timer);
	ax->timer.data = ax;
	be->autoexpunge = ax;
	sweep_arm(ax);
	return 0;
}

void
autoexpunge_reload(struct backend *be)
{
	struct autoexpunge *ax = be->autoexpunge;
	/* (between sweeps only: one running arms the next when done) */
	if (ax != NULL && !ax->stopping &&
	    uv_is_active((uv_handle_t *)&ax->timer)) {
		uint64_t every =
		    (uint64_t)be->cfg.backend_autoexpunge_interval * 1000;
		if (uv_timer_get_due_in(&ax->timer) > every)
			uv_timer_start(&ax->timer, sweep_start, every, 0);
	}
}

void
autoexpunge_stop(struct backend *be)
{
	struct autoexpunge *ax = be->autoexpunge;
	if (ax == NULL || ax->stopping)
		return;
	ax->stopping = 1;
	uv_close((uv_handle_t *)&ax->timer, NULL);
}

uint64_t
autoexpunge_removed(const struct backend *be)
{
	return be->autoexpunge != NULL ? be->autoexpunge->removed_total : 0;
}

void
autoexpunge_free(struct backend *be)
{
	if (be->autoexpunge == NULL)
		return;
	sweep_free(be->autoexpunge);
	free(be->autoexpunge);
	be->autoexpunge = NULL;
}
