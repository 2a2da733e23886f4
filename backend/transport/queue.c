/* queue.c - the transport queue: durable entries and their runner. */
#include "backend/transport/queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/transport/transport.h"
#include "common/log.h"
#include "queue.pb-c.h"

void
queue_id_format(uint64_t id, char *out, size_t outsize)
{
	snprintf(out, outsize, "%016" PRIX64, id);
}

/* -- queueing a submission ------------------------------------------------*/

void
queue_add_prepare(struct queue_add_args *a, const Portico__Submit *sub,
		  const char *user, const char *data, size_t len)
{
	Portico__QueueEntry *qe = calloc(1, sizeof(*qe));
	if (qe == NULL)
		abort();
	portico__queue_entry__init(qe);
	qe->arrival = (int64_t)time(NULL);
	qe->user = (char *)(uintptr_t)user;
	qe->mailbox_id = sub->mailbox_id;
	qe->mail_from = sub->mail_from;
	qe->client_addr = sub->client_addr;
	qe->session_id = sub->session_id;
	qe->body = sub->body;
	qe->smtputf8 = sub->smtputf8;
	qe->envid = sub->envid;
	qe->ret = sub->ret;
	qe->next_attempt = qe->arrival;
	qe->n_rcpt = sub->n_rcpt;
	qe->rcpt = calloc(sub->n_rcpt, sizeof(*qe->rcpt));
	Portico__QueueRcpt *rs = calloc(sub->n_rcpt, sizeof(*rs));
	if (qe->rcpt == NULL || rs == NULL)
		abort();
	for (size_t i = 0; i < sub->n_rcpt; i++) {
		portico__queue_rcpt__init(&rs[i]);
		rs[i].address = sub->rcpt[i]->address;
		rs[i].notify = sub->rcpt[i]->notify;
		rs[i].orcpt = sub->rcpt[i]->orcpt;
		qe->rcpt[i] = &rs[i];
	}
	a->qe = qe;
	a->data = data;
	a->len = len;
}

void
queue_add_release(struct queue_add_args *a)
{
	if (a->qe != NULL) {
		if (a->qe->n_rcpt > 0)
			free(a->qe->rcpt[0]);
		free(a->qe->rcpt);
		free(a->qe);
		a->qe = NULL;
	}
	free(a->entry);
	a->entry = NULL;
}

int
queue_add_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct queue_add_args *a = vargs;
	uint64_t id;
	int rc = store_queue_next_id(st, txn, &id);
	if (rc == 0) {
		a->qe->id = id;
		free(a->entry);
		a->entry_len = portico__queue_entry__get_packed_size(a->qe);
		a->entry = malloc(a->entry_len ? a->entry_len : 1);
		if (a->entry == NULL)
			abort();
		portico__queue_entry__pack(a->qe, a->entry);
		rc = store_queue_put(st, txn, id, a->entry, a->entry_len);
	}
	if (rc == 0)
		rc = store_queue_msg_put(st, txn, id, a->data, a->len);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "queue: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
	}
	a->id_out = id;
	return 0;
}

/* -- the runner -------------------------------------------------------------*/

int
queue_start(struct backend *be, const char **error_r)
{
	(void)be;
	(void)error_r;
	return 0;
}

void
queue_stop(struct backend *be)
{
	(void)be;
}

void
queue_kick(struct backend *be, uint64_t id)
{
	(void)be;
	(void)id;
}
