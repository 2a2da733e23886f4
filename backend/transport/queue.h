/* queue.h - the transport queue: accepted submissions until every
 * recipient is delivered or has failed.
 *
 * Records (store.h, databases "queue" and "queuemsg"): a packed
 * portico.QueueEntry (proto/queue.proto) per message - envelope, DSN
 * parameters, per-recipient state and last reply, attempts and the time
 * of the next one - and the message bytes.  Every change of state is a
 * store operation through the writer thread, durable before it counts:
 *   - a submission is answered 250 only after its entry is committed;
 *   - a recipient the next hop accepted is marked in the commit that
 *     follows its reply, before anything else happens to that entry, so
 *     a restart never sends it again (only a crash between the reply and
 *     that commit can, as with any MTA);
 *   - the last recipient settled, the entry goes in the same transaction
 *     as the delivery status notification into the sender's INBOX.
 * At start the runner reads every entry and schedules it.
 */
#ifndef PORTICO_QUEUE_H
#define PORTICO_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/transport/relay.h"

/* Queueing one submission (a store operation). */
struct queue_add_args {
	uint8_t *entry;       /* packed QueueEntry, id filled in by the op */
	size_t entry_len;
	struct Portico__QueueEntry *qe;
	const char *data;
	size_t len;
	/* out */
	uint64_t id_out;
};
void queue_add_prepare(struct queue_add_args *a, const Portico__Submit *sub,
		       const char *user, const char *data, size_t len);
store_op_fn queue_add_op;
void queue_add_release(struct queue_add_args *a);
/* Whether address goes by LMTP (its domain in transport.local_domains,
 * or none), not to the smarthost. */
int queue_is_local(const struct config *cfg, const char *address);

/* "0000000000000012" */
void queue_id_format(uint64_t id, char *out, size_t outsize);

/* The runner: reads the queue and schedules every entry. */
int queue_start(struct backend *be, const char **error_r);
/* A reload: a changed transport.smarthost_tls or smarthost_ca_file applies
 * to the attempts that start from now (one that does not load is logged
 * and the old stays). */
void queue_reload(struct backend *be);
/* transport.smarthost_tls by name: 0, or -1 for none of none, may,
 * encrypt, verify. */
int transport_tls_parse(const char *mode, enum relay_tls *tls_r);
/* Interrupts the deliveries in progress (what the next hop already
 * accepted is still recorded). */
void queue_stop(struct backend *be);
/* After the loop's last run. */
void queue_free(struct backend *be);
/* An entry was just queued: attempt it now. */
void queue_kick(struct backend *be, uint64_t id);

/* portico-admin queue flush and delete, through the backend's HTTP.  The
 * messages named (all, or the one of id) that wait for a later attempt
 * are due now: how many, or for one that could not be, QUEUE_UNDER_WAY
 * (an attempt runs), QUEUE_NONE (not in the queue) or QUEUE_CORRUPT (an
 * entry that does not parse, left alone). */
#define QUEUE_UNDER_WAY (-1)
#define QUEUE_NONE (-2)
#define QUEUE_CORRUPT (-3)
int queue_flush(struct backend *be, uint64_t id, int all);
/* The message and its entry go, in one transaction, without a report to
 * its sender: done(ctx, rc, under_way, err) once that is durable (rc 0)
 * or failed (the message stays queued); 0, or at once QUEUE_NONE (done
 * is not called).  An attempt under way on it (under_way) goes on with
 * its copy of the message, to the recipients it is sending to, and then
 * writes nothing: no new state, no report. */
int queue_delete(struct backend *be, uint64_t id,
		 void (*done)(void *ctx, int rc, int under_way,
			      const char *err),
		 void *ctx);
/* "0000000000000012" (case and leading zeros as they come): 0, or -1. */
int queue_id_parse(const char *s, uint64_t *id_r);

/* Messages in the queue and the arrival time (Unix seconds) of the
 * oldest, 0 when it is empty. */
void queue_metrics(struct backend *be, uint64_t *messages, int64_t *oldest);

#endif
