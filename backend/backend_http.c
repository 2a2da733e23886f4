/* backend_http.c - the backend's metrics and health listener
 * (backend.http_listen, plain HTTP, off when empty).
 *
 * GET /metrics: sessions by protocol, live sessions, link writes and
 * credit frames, IMAP commands by name and result, the store writer's
 * transaction latency and operations per commit.  GET /health: 200 while the
 * store is open and the link listener accepts, with the counts.  POST
 * /kick?mailbox=ID (portico-admin kick, from http.metrics_networks): ends the
 * mailbox's sessions; GET /sessions[?mailbox=ID] (portico-admin sessions,
 * the same networks) lists them.  The session host runs on one loop, which is
 * the only writer of these counters; the store writer thread owns its
 * histograms (store_writer_metrics()).
 */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/transport/queue.h"
#include "common/cidr.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"

#define BACKEND_HTTP_PROTOCOLS 8

struct backend_http {
	struct http_server *srv;
	unsigned long connections;
	struct {
		const char *name; /* engine names are static */
		uint64_t opened;
	} sessions[BACKEND_HTTP_PROTOCOLS];
};

static struct backend_http *
backend_http_get(struct backend *be)
{
	if (be->http == NULL) {
		be->http = calloc(1, sizeof(*be->http));
		if (be->http == NULL)
			abort();
	}
	return be->http;
}

void
backend_metrics_session(struct backend *be, const char *protocol)
{
	struct backend_http *h = backend_http_get(be);
	for (unsigned i = 0; i < BACKEND_HTTP_PROTOCOLS; i++) {
		if (h->sessions[i].name == NULL)
			h->sessions[i].name = protocol;
		if (strcmp(h->sessions[i].name, protocol) == 0) {
			metrics_add(&h->sessions[i].opened, 1);
			return;
		}
	}
}

static void
backend_metrics_write(struct backend *be, struct buf *b)
{
	struct backend_http *h = be->http;
	char labels[96];
	metrics_family(b, "portico_backend_sessions_opened_total", "counter",
		       "Sessions opened for frontends, by protocol.");
	static const char *known[] = {"imap", "pop3"};
	for (unsigned k = 0; k < 2; k++) {
		uint64_t n = 0;
		for (unsigned i = 0; i < BACKEND_HTTP_PROTOCOLS; i++)
			if (h->sessions[i].name != NULL &&
			    strcmp(h->sessions[i].name, known[k]) == 0)
				n = metrics_get(&h->sessions[i].opened);
		snprintf(labels, sizeof(labels), "protocol=\"%s\"", known[k]);
		metrics_sample(b, "portico_backend_sessions_opened_total",
			       labels, n);
	}
	for (unsigned i = 0; i < BACKEND_HTTP_PROTOCOLS; i++) {
		const char *name = h->sessions[i].name;
		if (name == NULL || strcmp(name, "imap") == 0 ||
		    strcmp(name, "pop3") == 0)
			continue;
		snprintf(labels, sizeof(labels), "protocol=\"%s\"", name);
		metrics_sample(b, "portico_backend_sessions_opened_total",
			       labels, metrics_get(&h->sessions[i].opened));
	}
	metrics_family(b, "portico_backend_streams_refused_total", "counter",
		       "Sessions and transport streams the backend refused, "
		       "by the code of its answer (CLIENTBUG: a frontend's "
		       "request it cannot take, such as a parked state it did "
		       "not write).");
	for (unsigned k = 0; k < BACKEND_REFUSE_CODES; k++) {
		snprintf(labels, sizeof(labels), "code=\"%s\"",
			 backend_refuse_codes[k]);
		metrics_sample(b, "portico_backend_streams_refused_total",
			       labels, metrics_get(&be->refused[k]));
	}
	metrics_family(b, "portico_backend_sessions", "gauge",
		       "Sessions open now (every protocol and transport "
		       "stream).");
	metrics_sample(b, "portico_backend_sessions", NULL, be->sessions);
	metrics_family(b, "portico_backend_link_writes_total", "counter",
		       "Writes to frontends' links (frames made together go "
		       "out in one write).");
	metrics_sample(b, "portico_backend_link_writes_total", NULL,
		       metrics_get(&be->link_writes));
	metrics_family(b, "portico_backend_link_credit_frames_total",
		       "counter",
		       "Credit frames sent to frontends (one per half window "
		       "of a session's input consumed).");
	metrics_sample(b, "portico_backend_link_credit_frames_total", NULL,
		       metrics_get(&be->link_credits));
	metrics_family(b, "portico_backend_link_timeouts_total", "counter",
		       "Links from frontends closed after backend.link_timeout "
		       "without a frame.");
	metrics_sample(b, "portico_backend_link_timeouts_total", NULL,
		       metrics_get(&be->link_timeouts));
	metrics_family(b, "portico_backend_autoexpunged_messages_total",
		       "counter",
		       "Messages expunged from \\Trash and \\Junk folders "
		       "past backend.trash_lifetime or backend.junk_lifetime.");
	metrics_sample(b, "portico_backend_autoexpunged_messages_total", NULL,
		       autoexpunge_removed(be));
	metrics_family(b, "portico_backend_auto_replies_total", "counter",
		       "Automatic replies queued (porticoAutoReplyText).");
	metrics_sample(b, "portico_backend_auto_replies_total", NULL,
		       be->auto_replies);
	metrics_family(b, "portico_backend_forwards_total", "counter",
		       "Forwarded copies queued (porticoForwardAddress).");
	metrics_sample(b, "portico_backend_forwards_total", NULL, be->forwards);
	metrics_family(b, "portico_backend_quota_warnings_total", "counter",
		       "Quota warnings stored into users' INBOXes "
		       "(backend.quota_warnings).");
	metrics_sample(b, "portico_backend_quota_warnings_total", NULL,
		       be->quota_warnings);
	metrics_family(b, "portico_backend_user_session_refusals_total",
		       "counter",
		       "Sessions refused because their account had "
		       "backend.max_sessions_per_user open already.");
	metrics_sample(b, "portico_backend_user_session_refusals_total", NULL,
		       metrics_get(&be->user_sessions.refused));
	metrics_family(b, "portico_backend_command_memory_bytes", "gauge",
		       "Literal octets announced by the IMAP commands being "
		       "read, all sessions together (at most "
		       "backend.max_command_memory).");
	metrics_sample(b, "portico_backend_command_memory_bytes", NULL,
		       metrics_get(&be->cmd_budget.used));
	metrics_family(b, "portico_backend_command_memory_refusals_total",
		       "counter",
		       "Literals refused because backend.max_command_memory "
		       "was in use (NO [UNAVAILABLE], or BYE for a "
		       "non-synchronizing literal).");
	metrics_sample(b, "portico_backend_command_memory_refusals_total", NULL,
		       metrics_get(&be->cmd_budget.refused));
	metrics_family(b, "portico_backend_notified_total", "counter",
		       "Sessions shown a change, one per session and changed "
		       "mailbox: a commit's to the sessions in IDLE on its "
		       "mailbox (pass=\"mailbox\"), another process's "
		       "writes to every session (pass=\"all\").");
	metrics_sample(b, "portico_backend_notified_total", "pass=\"mailbox\"",
		       metrics_get(&be->notified[0]));
	metrics_sample(b, "portico_backend_notified_total", "pass=\"all\"",
		       metrics_get(&be->notified[1]));
	metrics_family(b, "portico_backend_commands_total", "counter",
		       "Commands answered, by protocol, name and result (IMAP: "
		       "the tagged OK, NO or BAD; POP3: OK or ERR).");
	imap_metrics_write(b);
	pop3_metrics_write(b);
	struct metrics_hist txn, batch;
	memset(&txn, 0, sizeof(txn));
	memset(&batch, 0, sizeof(batch));
	store_writer_metrics(be->store, &txn, &batch);
	metrics_family(b, "portico_backend_store_transaction_seconds",
		       "histogram",
		       "Time of each write transaction of the store writer "
		       "(a batch of operations, its commit and fsync "
		       "included).");
	metrics_hist_write(b, "portico_backend_store_transaction_seconds",
			   NULL, &txn);
	metrics_family(b, "portico_backend_store_commit_operations",
		       "histogram",
		       "Operations (APPEND, STORE, EXPUNGE, delivery...) "
		       "sharing one commit (group commit).");
	metrics_hist_write_in(b, "portico_backend_store_commit_operations",
			      NULL, &batch, metrics_bucket_size, 1);
	metrics_family(b, "portico_backend_kicked_sessions_total", "counter",
		       "IMAP and POP3 sessions ended by portico-admin kick.");
	metrics_sample(b, "portico_backend_kicked_sessions_total", NULL,
		       be->kicked);
	metrics_family(b, "portico_backend_park_offers_total", "counter",
		       "Parks offered to frontends; one the frontend did not "
		       "take (its client spoke at that moment) goes on here.");
	metrics_sample(b, "portico_backend_park_offers_total", NULL,
		       be->park_offers);
	metrics_family(b, "portico_backend_parked_sessions_total", "counter",
		       "IMAP sessions in IDLE parked at their frontend "
		       "(imap.park_after, or the backend stopping).");
	metrics_sample(b, "portico_backend_parked_sessions_total", NULL,
		       be->parked);
	metrics_family(b, "portico_backend_resumed_sessions_total", "counter",
		       "Parked IMAP sessions taken up again.");
	metrics_sample(b, "portico_backend_resumed_sessions_total", NULL,
		       be->resumed);
	metrics_family(b, "portico_backend_store_commits_total", "counter",
		       "Commits of the store writer.");
	metrics_sample(b, "portico_backend_store_commits_total", NULL,
		       store_commits(be->store));
	uint64_t used, map;
	store_usage(be->store, &used, &map);
	metrics_family(b, "portico_backend_store_used_bytes", "gauge",
		       "Bytes of the store's map in use (up to its last page "
		       "written, free pages among them included).");
	metrics_sample(b, "portico_backend_store_used_bytes", NULL, used);
	metrics_family(b, "portico_backend_store_map_bytes", "gauge",
		       "The store's map size (backend.store_map_size): the "
		       "most it can grow to.");
	metrics_sample(b, "portico_backend_store_map_bytes", NULL, map);
	MDB_txn *rtxn;
	const char *rerr;
	int64_t records = -1;
	if (store_read_begin(be->store, &rtxn, &rerr) == 0) {
		records = store_delivery_count(be->store, rtxn);
		store_read_end(&rtxn);
	}
	metrics_family(b, "portico_backend_delivery_records", "gauge",
		       "Local deliveries remembered by their delivery id "
		       "(transport.delivery_id_lifetime).");
	metrics_sample(b, "portico_backend_delivery_records", NULL,
		       records > 0 ? (uint64_t)records : 0);
	uint64_t queued;
	int64_t oldest;
	queue_metrics(be, &queued, &oldest);
	int64_t now = (int64_t)time(NULL);
	metrics_family(b, "portico_backend_queue_messages", "gauge",
		       "Messages in the transport queue (submitted, not yet "
		       "delivered, relayed or returned to their sender).");
	metrics_sample(b, "portico_backend_queue_messages", NULL, queued);
	metrics_family(b, "portico_backend_queue_oldest_seconds", "gauge",
		       "Age of the oldest message in the transport queue (0: "
		       "empty).");
	metrics_sample(b, "portico_backend_queue_oldest_seconds", NULL,
		       oldest > 0 && now > oldest ? (uint64_t)(now - oldest)
						  : 0);
}

static void
respond_text(struct http_conn *hc, int status, const char *text,
	     const char *headers)
{
	http_respond(hc, status, "text/plain; charset=utf-8", text,
		     strlen(text), headers);
}

/* The operator's requests (kick, sessions) come only from
 * http.metrics_networks, and never from a browser (a page elsewhere could
 * make one post here: no Origin, no Sec-Fetch-Site but "none"); 0 after
 * answering 403. */
static int
backend_http_management(struct backend *be, struct http_conn *hc,
			const struct http_request *req)
{
	struct cidr_list nets;
	const char *nerr;
	if (cidr_list_parse(be->cfg.http_metrics_networks, &nets, &nerr) < 0)
		nets.n = 0;
	int allowed = cidr_list_match(&nets,
				      (const struct sockaddr *)&req->peer);
	if (!allowed) {
		respond_text(hc, 403,
			     "Not from this address (http.metrics_networks).\n",
			     NULL);
		return 0;
	}
	if (req->has_origin ||
	    (req->fetch_site[0] != '\0' && strcmp(req->fetch_site, "none"))) {
		respond_text(hc, 403, "Not from a web page.\n", NULL);
		return 0;
	}
	return 1;
}

/* mailbox=ID of the query into id: 1, 0 when absent, -1 when it is no
 * mailbox id (an IA5 string: printable, no spaces, nothing that could
 * break a log line). */
static int
mailbox_param(const struct http_request *req, char *id, size_t size)
{
	int rc = http_param(req->query, strlen(req->query), "mailbox", id,
			    size);
	if (rc <= 0)
		return rc;
	if (id[0] == '\0')
		return -1;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return -1;
	return 1;
}

/* A kick's answer, once what kick remembers of it is in the store. */
struct kick_reply {
	struct http_conn *hc; /* NULL once the connection is gone */
	unsigned sessions, links;
	char mailbox_id[128];
	struct store_kick_put_args put;
};

static void
kick_reply_cancel(void *arg)
{
	struct kick_reply *r = arg;
	r->hc = NULL;
}

static void
kick_reply_answer(struct http_conn *hc, unsigned sessions, unsigned links)
{
	char m[64];
	snprintf(m, sizeof(m), "sessions %u\nlinks %u\n", sessions, links);
	respond_text(hc, 200, m, NULL);
}

static void
kick_stored(void *ctx, int rc, const char *err)
{
	struct kick_reply *r = ctx;
	if (rc != 0)
		log_error("kick mailbox=%s not stored error=\"%s\"",
			  r->put.mailbox_id, err);
	if (r->hc != NULL && rc == 0)
		kick_reply_answer(r->hc, r->sessions, r->links);
	else if (r->hc != NULL)
		respond_text(r->hc, 500,
			     "Sessions ended and frontends told, but the "
			     "kick was not stored (see the backend's log).\n",
			     NULL);
	free(r);
}

/* POST /kick?mailbox=ID (portico-admin kick): ends the mailbox's IMAP
 * and POP3 sessions and has the frontends forget its cached logins; the
 * answer comes once the kick is in the store, for backend.kick_memory
 * across a restart. */
static void
backend_http_kick(struct backend *be, struct http_conn *hc,
		  const struct http_request *req)
{
	if (strcmp(req->method, "POST") != 0) {
		respond_text(hc, 405, "Use POST.\n", "Allow: POST\r\n");
		return;
	}
	if (!backend_http_management(be, hc, req))
		return;
	char id[256];
	if (mailbox_param(req, id, sizeof(id)) != 1) {
		respond_text(hc, 400, "Give mailbox=ID.\n", NULL);
		return;
	}
	char park[8] = "";
	http_param(req->query, strlen(req->query), "park", park, sizeof(park));
	unsigned links;
	unsigned n = link_server_kick(be, id, &links, strcmp(park, "1") == 0);
	log_info("kick mailbox=%s sessions=%u links=%u%s peer=%s", id, n, links,
		 strcmp(park, "1") == 0 ? " park" : "", req->peer_name);
	struct kick_reply *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	if (!link_server_kick_record(be, id, &r->put)) {
		free(r);
		kick_reply_answer(hc, n, links);
		return;
	}
	/* the record outlives what kick remembers in memory, which moves */
	snprintf(r->mailbox_id, sizeof(r->mailbox_id), "%s", r->put.mailbox_id);
	r->put.mailbox_id = r->mailbox_id;
	r->hc = hc;
	r->sessions = n;
	r->links = links;
	http_defer(hc, kick_reply_cancel, r);
	store_submit(be->store, store_op_kick_put, &r->put, kick_stored, r);
}

/* POST /queue/flush[?id=QID] and POST /queue/delete?id=QID (portico-admin
 * queue flush, delete). */
struct queue_reply {
	struct http_conn *hc; /* NULL once the connection is gone */
	char qid[32];
};

static void
queue_reply_cancel(void *arg)
{
	struct queue_reply *r = arg;
	r->hc = NULL;
}

static void
queue_deleted(void *ctx, int rc, int under_way, const char *err)
{
	struct queue_reply *r = ctx;
	if (r->hc != NULL) {
		char m[STORE_ERR_SIZE + 64];
		if (rc == 0)
			snprintf(m, sizeof(m), "deleted %s%s\n", r->qid,
				 under_way ? " (the attempt under way ends "
					     "first)"
					   : "");
		else
			snprintf(m, sizeof(m), "%s: not deleted: %s\n", r->qid,
				 err);
		respond_text(r->hc, rc == 0 ? 200 : 500, m, NULL);
	}
	free(r);
}

static void
backend_http_queue(struct backend *be, struct http_conn *hc,
		   const struct http_request *req, int delete)
{
	if (strcmp(req->method, "POST") != 0) {
		respond_text(hc, 405, "Use POST.\n", "Allow: POST\r\n");
		return;
	}
	if (!backend_http_management(be, hc, req))
		return;
	char qid[32];
	uint64_t id = 0;
	int have = http_param(req->query, strlen(req->query), "id", qid,
			      sizeof(qid));
	if (have < 0 || (have > 0 && queue_id_parse(qid, &id) < 0) ||
	    (have == 0 && delete)) {
		respond_text(hc, 400, "Give id=QUEUE_ID (16 hex digits).\n",
			     NULL);
		return;
	}
	char m[128];
	if (have > 0)
		queue_id_format(id, qid, sizeof(qid));
	int rc;
	struct queue_reply *r = NULL;
	if (delete) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			abort();
		r->hc = hc;
		snprintf(r->qid, sizeof(r->qid), "%s", qid);
		rc = queue_delete(be, id, queue_deleted, r);
		if (rc == 0) {
			http_defer(hc, queue_reply_cancel, r);
			return;
		}
		free(r);
	} else {
		rc = queue_flush(be, id, have == 0);
		if (rc >= 0) {
			snprintf(m, sizeof(m), "flushed %d\n", rc);
			respond_text(hc, 200, m, NULL);
			return;
		}
	}
	snprintf(m, sizeof(m), "%s: %s\n", qid,
		 rc == QUEUE_UNDER_WAY
		     ? "an attempt is under way; try again when it ends"
		 : rc == QUEUE_CORRUPT ? "its entry does not parse"
				       : "not in the queue");
	respond_text(hc, rc == QUEUE_NONE ? 404 : 409, m, NULL);
}

/* GET /sessions[?mailbox=ID] (portico-admin sessions): the IMAP and
 * POP3 sessions, through every frontend. */
static void
backend_http_sessions(struct backend *be, struct http_conn *hc,
		      const struct http_request *req)
{
	if (!backend_http_management(be, hc, req))
		return;
	char id[256];
	int have = mailbox_param(req, id, sizeof(id));
	if (have < 0) {
		respond_text(hc, 400, "Give mailbox=ID.\n", NULL);
		return;
	}
	struct buf b = BUF_INIT;
	link_server_sessions(be, have ? id : NULL, &b);
	http_respond(hc, 200, "text/plain; charset=utf-8", buf_ptr(&b),
		     buf_used(&b), NULL);
	buf_free(&b);
}

static void
backend_http_handle(struct http_conn *hc, struct http_request *req,
		    void *ctx)
{
	struct backend *be = ctx;
	if (strcmp(req->path, "/kick") == 0) {
		backend_http_kick(be, hc, req);
		return;
	}
	if (strcmp(req->path, "/queue/flush") == 0 ||
	    strcmp(req->path, "/queue/delete") == 0) {
		backend_http_queue(be, hc, req,
				   strcmp(req->path, "/queue/delete") == 0);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && !req->head) {
		static const char m[] = "Use GET.\n";
		http_respond(hc, 405, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, "Allow: GET, HEAD\r\n");
		return;
	}
	struct buf b = BUF_INIT;
	if (strcmp(req->path, "/metrics") == 0) {
		backend_metrics_write(be, &b);
		http_respond(hc, 200,
			     "text/plain; version=0.0.4; charset=utf-8",
			     buf_ptr(&b), buf_used(&b), NULL);
	} else if (strcmp(req->path, "/sessions") == 0) {
		backend_http_sessions(be, hc, req);
	} else if (strcmp(req->path, "/health") == 0 ||
		   strcmp(req->path, "/health/imap") == 0 ||
		   strcmp(req->path, "/health/pop3") == 0) {
		int ok = be->store != NULL && be->link_listener != NULL;
		buf_printf(&b, "status %s\nstore %s\nlink %s\nsessions %u\n",
			   ok ? "ok" : "fail", be->store ? "ok" : "fail",
			   be->link_listener != NULL ? "ok"
						     : "fail not listening",
			   be->sessions);
		http_respond(hc, ok ? 200 : 503, "text/plain; charset=utf-8",
			     buf_ptr(&b), buf_used(&b), NULL);
	} else {
		static const char m[] = "Not found.\n";
		http_respond(hc, 404, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
	}
	buf_free(&b);
}

int
backend_http_start(struct backend *be, const char **error_r)
{
	const struct config *cfg = &be->cfg;
	struct backend_http *h = backend_http_get(be);
	struct http_server_conf conf = {
	    .connections = &h->connections,
	    .handler = backend_http_handle,
	    .ctx = be,
	};
	http_server_conf_settings(&conf, cfg);
	/* made with no listener too: a reload may give it one */
	h->srv = http_server_create(be->loop, &conf);
	if (cfg->backend_http_listen[0] == '\0')
		return 0;
	if (http_server_listen(h->srv, cfg->backend_http_listen, 0, error_r) <
	    0)
		return -1;
	log_info("listening protocol=http address=%s",
		 cfg->backend_http_listen);
	return 0;
}

int
backend_http_reload(struct backend *be, const char *old_listen)
{
	struct backend_http *h = be->http;
	if (h == NULL || h->srv == NULL)
		return 0;
	struct http_server_conf conf = {0};
	http_server_conf_settings(&conf, &be->cfg);
	http_server_set_limits(h->srv, &conf);
	const char *addr = be->cfg.backend_http_listen, *err = NULL;
	if (strcmp(addr, old_listen) == 0)
		return 0;
	int fd = addr[0] != '\0' ? conn_listen_socket(addr, 1, &err) : -1;
	if (addr[0] != '\0' && fd < 0) {
		log_error("reload: backend.http_listen kept at %s: %s: %s",
			  old_listen[0] != '\0' ? old_listen : "(none)", addr,
			  err);
		return -1;
	}
	http_server_unlisten(h->srv, 0);
	if (old_listen[0] != '\0')
		log_info("reload: backend.http_listen: no longer listening on "
			 "%s",
			 old_listen);
	if (fd < 0)
		return 0;
	if (http_server_listen_fd(h->srv, fd, 0, &err) < 0) {
		log_error("backend.http_listen=%s error=\"%s\"", addr, err);
		return 0; /* the old one is closed already */
	}
	log_info("listening protocol=http address=%s", addr);
	return 0;
}

void
backend_http_stop(struct backend *be)
{
	if (be->http != NULL && be->http->srv != NULL)
		http_server_stop(be->http->srv);
}

void
backend_http_free(struct backend *be)
{
	if (be->http == NULL)
		return;
	if (be->http->srv != NULL)
		http_server_free(&be->http->srv);
	free(be->http);
	be->http = NULL;
}
