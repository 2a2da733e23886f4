/* admin_queue.c - portico-admin's transport commands: queue (list the
 * transport queue; flush: attempt now; delete: drop messages, without a
 * report), deliver (local delivery of a message from stdin).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/admin/admin.h"
#include "backend/transport/queue.h"
#include "backend/transport/transport.h"
#include "common/buf.h"
#include "common/smtp_parser.h"
#include "queue.pb-c.h"

static uint64_t
get64(const void *p)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static const char *
rcpt_state_name(int st)
{
	switch (st) {
	case PORTICO__RCPT_STATE__RCPT_PENDING:
		return "pending";
	case PORTICO__RCPT_STATE__RCPT_DELIVERED:
		return "delivered";
	case PORTICO__RCPT_STATE__RCPT_RELAYED:
		return "relayed";
	case PORTICO__RCPT_STATE__RCPT_FAILED:
		return "failed";
	}
	return "?";
}

static void
age_text(int64_t secs, char *out, size_t outsize)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(out, outsize, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(out, outsize, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		snprintf(out, outsize, "%lldh", (long long)secs / 3600);
	else
		snprintf(out, outsize, "%lldd", (long long)secs / 86400);
}

static int
queue_list_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	unsigned *n = ctx;
	Portico__QueueEntry *qe = portico__queue_entry__unpack(NULL, vl, v);
	char qid[32], age[32], next[32];
	queue_id_format(kl == 8 ? get64(k) : 0, qid, sizeof(qid));
	if (qe == NULL) {
		printf("%s (corrupt entry)\n", qid);
		return 0;
	}
	int64_t now = (int64_t)time(NULL);
	age_text(now - qe->arrival, age, sizeof(age));
	age_text(qe->next_attempt - now, next, sizeof(next));
	printf("%s age=%s attempts=%u next=%s from=<%s> user=%s\n", qid, age,
	       qe->attempts, next, qe->mail_from, qe->user);
	for (size_t i = 0; i < qe->n_rcpt; i++) {
		const Portico__QueueRcpt *r = qe->rcpt[i];
		printf("  <%s> %s", r->address, rcpt_state_name(r->state));
		if (r->code != 0 || r->text[0] != '\0')
			printf(" %u %s %s", r->code, r->status, r->text);
		if (r->remote[0] != '\0')
			printf(" (%s)", r->remote);
		printf("\n");
	}
	portico__queue_entry__free_unpacked(qe, NULL);
	(*n)++;
	return 0;
}

/* The transport queue: one line per message, one per recipient. */
static int
queue_list(struct store *st)
{
	MDB_txn *txn;
	const char *err;
	unsigned n = 0;
	if (store_read_begin(st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: queue: %s\n", err);
		return 1;
	}
	int rc = store_walk(st, txn, "queue", NULL, 0, queue_list_fn, &n,
			    &err);
	store_read_end(&txn);
	if (rc < 0) {
		fprintf(stderr, "portico-admin: queue: %s\n", err);
		return 1;
	}
	printf("%u queued\n", n);
	return 0;
}

/* Local delivery of a message read from stdin into the INBOX of each
 * mailbox, as the LMTP path does it (Return-Path, Received, quota):
 * one reply line per recipient; exit 0 when all were delivered, 75
 * (EX_TEMPFAIL) when one failed temporarily, 1 otherwise. */
static int
deliver_stdin(struct store *st, const struct config *cfg, const char *from,
	      char **ids, int n)
{
	struct buf in = BUF_INIT, msg = BUF_INIT, meta = BUF_INIT;
	char tmp[65536];
	size_t r;
	while ((r = fread(tmp, 1, sizeof(tmp), stdin)) > 0) {
		/* Line ends as LMTP delivers them: CRLF. */
		for (size_t i = 0; i < r; i++) {
			if (tmp[i] == '\n' &&
			    (buf_used(&in) == 0 ||
			     buf_ptr(&in)[buf_used(&in) - 1] != '\r'))
				buf_append(&in, "\r", 1);
			buf_append(&in, &tmp[i], 1);
		}
		if (buf_used(&in) > cfg->transport_max_message_size) {
			fprintf(stderr, "portico-admin: deliver: message "
					"larger than transport.max_message_size\n");
			buf_free(&in);
			return 1;
		}
	}
	if (buf_used(&in) == 0) {
		fprintf(stderr, "portico-admin: deliver: empty message\n");
		return 1;
	}
	deliver_build(cfg, from, "localhost", "127.0.0.1", "local",
		      "portico-admin", n == 1 ? ids[0] : NULL, buf_ptr(&in),
		      buf_used(&in), &msg, &meta);
	buf_free(&in);
	struct deliver_args a = {0};
	a.msg.data = buf_ptr(&msg);
	a.msg.len = buf_used(&msg);
	a.msg.meta = buf_used(&meta) ? buf_ptr(&meta) : NULL;
	a.msg.metalen = buf_used(&meta);
	a.rcpt = calloc((size_t)n, sizeof(*a.rcpt));
	if (a.rcpt == NULL)
		abort();
	a.n = (size_t)n;
	for (int i = 0; i < n; i++)
		a.rcpt[i].mailbox_id = ids[i];
	a.quota_storage = cfg->backend_quota_storage;
	a.quota_messages = cfg->backend_quota_messages;
	char ebuf[STORE_ERR_SIZE];
	int rc = store_run(st, deliver_op, &a, ebuf), ret = 0;
	for (int i = 0; i < n; i++) {
		uint32_t code;
		const char *status, *text;
		deliver_reply(cfg, rc != 0 ? rc : a.rcpt[i].rc,
			      rc != 0 ? ebuf : a.rcpt[i].err, &code, &status,
			      &text);
		printf("%s: %u %s %s\n", ids[i], code, status, text);
		if (code >= 500)
			ret = 1;
		else if (code >= 400 && ret == 0)
			ret = 75;
	}
	free(a.rcpt);
	buf_free(&msg);
	buf_free(&meta);
	return ret;
}

static int
queue_del_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	const uint64_t *id = vargs;
	const void *v;
	size_t vl;
	const char *e;
	int rc = store_queue_get(st, txn, *id, &v, &vl, &e);
	if (rc != 0) {
		snprintf(err, STORE_ERR_SIZE, "%s",
			 rc > 0 ? "not in the queue" : e);
		return rc > 0 ? STORE_ERR_NONEXISTENT : STORE_ERR_INTERNAL;
	}
	if ((rc = store_queue_del(st, txn, *id)) != 0) {
		snprintf(err, STORE_ERR_SIZE, "%s", mdb_strerror(rc));
		return STORE_ERR_INTERNAL;
	}
	return 0;
}

/* One request to the running backend: 0 it did it (its answer printed),
 * 1 it did not (said why). */
static int
queue_ask(struct admin *a, const char *cmd, const char *path)
{
	struct buf body = BUF_INIT;
	int status = 0, rc = 1;
	if (admin_backend_http(a, cmd, "POST", path, NULL, &status, &body) ==
	    0) {
		FILE *out = status == 200 ? stdout : stderr;
		fprintf(out, "%s%.*s", status == 200 ? "" : "portico-admin: ",
			(int)buf_used(&body), buf_ptr(&body));
		rc = status == 200 ? 0 : 1;
	}
	buf_free(&body);
	return rc;
}

/* queue delete --user LOGIN: the ids of the entries LOGIN submitted. */
struct user_ids {
	const char *user;
	struct buf ids; /* uint64_t each */
};

static int
user_ids_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct user_ids *u = ctx;
	Portico__QueueEntry *qe = portico__queue_entry__unpack(NULL, vl, v);
	if (qe != NULL && kl == 8 && strcasecmp(qe->user, u->user) == 0) {
		uint64_t id = get64(k);
		buf_append(&u->ids, &id, sizeof(id));
	}
	if (qe != NULL)
		portico__queue_entry__free_unpacked(qe, NULL);
	return 0;
}

/* queue [flush [QUEUE_ID...] | delete QUEUE_ID...|--user LOGIN]: flush
 * and delete go through the running backend (its queue runner holds the
 * schedule, and an attempt may be under way); with no backend on the
 * store, delete works on the store itself and flush has nothing to do.
 * --user: every message LOGIN submitted (a compromised account's). */
int
admin_queue(struct admin *a, int argc, char **argv)
{
	if (argc == 0)
		return queue_list(a->st);
	int flush = strcmp(argv[0], "flush") == 0;
	if ((!flush && strcmp(argv[0], "delete") != 0) || (!flush && argc < 2))
		return ADMIN_USAGE;
	const char *cmd = flush ? "queue flush" : "queue delete", *err;
	struct user_ids sel = {NULL, BUF_INIT};
	if (!flush && strcmp(argv[1], "--user") == 0) {
		if (argc != 3)
			return ADMIN_USAGE;
		MDB_txn *txn;
		sel.user = argv[2];
		if (store_read_begin(a->st, &txn, &err) < 0 ||
		    store_walk(a->st, txn, "queue", NULL, 0, user_ids_fn, &sel,
			       &err) < 0) {
			store_read_end(&txn);
			fprintf(stderr, "portico-admin: %s: %s\n", cmd, err);
			buf_free(&sel.ids);
			return 1;
		}
		store_read_end(&txn);
	} else {
		for (int i = 1; i < argc; i++) {
			uint64_t id;
			if (queue_id_parse(argv[i], &id) < 0) {
				fprintf(
				    stderr,
				    "portico-admin: %s: %s: not a queue id "
				    "(16 hex digits, as queue lists them)\n",
				    cmd, argv[i]);
				buf_free(&sel.ids);
				return 1;
			}
			buf_append(&sel.ids, &id, sizeof(id));
		}
	}
	long pid = 0;
	int owned = store_owner(a->cfg.backend_store_dir, &pid, &err);
	if (owned < 0) {
		fprintf(stderr, "portico-admin: %s: %s\n", cmd, err);
		buf_free(&sel.ids);
		return 1;
	}
	int failed = 0;
	if (owned == 0 && flush) {
		fprintf(stderr,
			"portico-admin: queue flush: no backend has %s: its "
			"queue runs when the backend starts\n",
			a->cfg.backend_store_dir);
		buf_free(&sel.ids);
		return 1;
	}
	if (flush && argc == 1)
		return queue_ask(a, cmd, "/queue/flush");
	size_t n = buf_used(&sel.ids) / sizeof(uint64_t);
	for (size_t i = 0; i < n; i++) {
		uint64_t id;
		char qid[32], path[64], ebuf[STORE_ERR_SIZE];
		memcpy(&id, (const char *)buf_ptr(&sel.ids) + i * sizeof(id),
		       sizeof(id));
		queue_id_format(id, qid, sizeof(qid));
		if (owned) {
			snprintf(path, sizeof(path), "/queue/%s?id=%s",
				 flush ? "flush" : "delete", qid);
			failed |= queue_ask(a, cmd, path);
		} else if (store_run(a->st, queue_del_op, &id, ebuf) != 0) {
			fprintf(stderr, "portico-admin: %s: %s\n", qid, ebuf);
			failed = 1;
		} else {
			printf("deleted %s\n", qid);
		}
	}
	if (sel.user != NULL)
		printf("%zu queued message%s of %s\n", n, n == 1 ? "" : "s",
		       sel.user);
	buf_free(&sel.ids);
	return failed;
}

/* deliver [--from ADDR] MAILBOX_ID... < MESSAGE
 *
 * ADDR is the envelope sender, an RFC 5321 reverse-path as MAIL FROM
 * takes it (SMTPUTF8 allowed): "<>" or "" for the null sender, else
 * local-part@domain, with or without its angle brackets.  Anything else
 * exits 1 before the message is read. */
int
admin_deliver(struct admin *a, int argc, char **argv)
{
	char from[SMTP_MAX_PATH + 1] = "";
	if (argc >= 1 && strcmp(argv[0], "--from") == 0) {
		if (argc < 3)
			return ADMIN_USAGE;
		char path[SMTP_MAX_PATH + 3];
		const char *arg = argv[1];
		if (arg[0] != '<') {
			snprintf(path, sizeof(path), "<%s>", arg);
			arg = path;
		}
		if (strlen(argv[1]) > SMTP_MAX_PATH ||
		    smtp_parse_reverse_path(arg, 1, from, sizeof(from)) < 0) {
			fprintf(stderr,
				"portico-admin: deliver: --from: not a "
				"reverse-path (<> for the null sender, or "
				"local-part@domain, at most %d octets with "
				"the brackets)\n",
				SMTP_MAX_PATH);
			return 1;
		}
		argc -= 2;
		argv += 2;
	}
	if (argc < 1)
		return ADMIN_USAGE;
	return deliver_stdin(a->st, &a->cfg, from, argv, argc);
}
