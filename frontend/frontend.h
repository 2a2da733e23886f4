/* frontend.h - the frontend daemon: listeners, pre-login protocols,
 * directory, link pool, relay.
 *
 * A client connection moves through these states (client_set_state()
 * logs each change):
 *
 *   PRELOGIN  greeting sent; CAPABILITY/STARTTLS/LOGIN... handled here
 *   AUTH      waiting for the directory (LDAP search + bind)
 *   OPENING   waiting for the backend to open the session
 *   RELAY     bytes flow both ways between the client and the backend
 *   LOCAL     the frontend serves the session itself (SMTP submission
 *             after AUTH, LMTP): no login deadline, smtp.timeout
 *   CLOSING   the connection is being closed
 */
#ifndef PORTICO_FRONTEND_H
#define PORTICO_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/connset.h"
#include "common/conn.h"
#include "common/lineparse.h"
#include "common/metrics.h"
#include "common/tls.h"
#include "frontend/directory.h"
#include "frontend/policy.h"
#include "link.pb-c.h"

struct client;
struct config_snap;
struct flink;
struct protolog;
struct smtp_session;
struct http_server;
struct http_sessions;
struct fe_kicks;

enum client_state {
	CLIENT_PRELOGIN,
	CLIENT_AUTH,
	CLIENT_OPENING,
	CLIENT_RELAY,
	CLIENT_LOCAL,
	CLIENT_CLOSING,
	CLIENT_STATE_COUNT
};

enum client_protocol {
	CLIENT_IMAP,
	CLIENT_POP3,
	CLIENT_SUBMISSION, /* SMTP submission (587 STARTTLS, 465 TLS) */
	CLIENT_LMTP,
	CLIENT_PROTOCOL_COUNT
};

/* Why a login did not lead to a session. */
enum login_failure {
	LOGIN_FAIL_CREDENTIALS, /* unknown user or wrong password */
	LOGIN_FAIL_TEMPORARY,   /* directory or backend unavailable */
	LOGIN_FAIL_DISABLED,    /* account or protocol switched off */
	LOGIN_FAIL_PRIVILEGED,  /* anonymous/guest/administrator */
	LOGIN_FAIL_LIMIT,       /* too many sessions for the account */
	LOGIN_FAILURE_COUNT
};

/* Metrics of one event loop (frontend_metrics.c; its thread is the only
 * writer, a scrape sums every loop's).  Protocols: the client protocols,
 * then the settings page (FM_PROTO_HTTP). */
#define FM_PROTO_HTTP CLIENT_PROTOCOL_COUNT
#define FM_PROTOS (CLIENT_PROTOCOL_COUNT + 1)
#define FM_LOGIN_OK LOGIN_FAILURE_COUNT
#define FM_LOGIN_RESULTS (LOGIN_FAILURE_COUNT + 1)

enum fm_phase {
	FM_PHASE_TLS,         /* TLS handshake */
	FM_PHASE_CREDENTIALS, /* connected (TLS done) -> credentials sent */
	FM_PHASE_LDAP,        /* directory search + bind as the user */
	FM_PHASE_ROUTE,       /* authenticated -> session asked of backend */
	FM_PHASE_BACKEND,     /* asked -> backend session ready */
	FM_PHASE_TOTAL,       /* accepted -> backend session ready */
	FM_PHASE_COUNT
};

enum fm_ldap_error {
	FM_LDAP_UNAVAILABLE,
	FM_LDAP_TIMEOUT,
	FM_LDAP_ERROR_COUNT
};

struct frontend_metrics {
	uint64_t accepted[FM_PROTOS];
	uint64_t connections[FM_PROTOS][CLIENT_STATE_COUNT]; /* gauge */
	uint64_t logins[FM_PROTOS][FM_LOGIN_RESULTS];
	struct metrics_hist phase[FM_PROTOS][FM_PHASE_COUNT];
	uint64_t ldap_errors[FM_LDAP_ERROR_COUNT];
	/* logins held back by the brute-force penalty: [0] their (address,
	   login) or directory entry's count, [1] their address's */
	uint64_t auth_penalties[2];
	/* connections closed by limits.connection_rate_per_address */
	uint64_t rate_refused;
	uint64_t tls_handshakes[FM_PROTOS][2]; /* [1]: session resumed */
	uint64_t link_sessions;            /* opened on a backend */
	uint64_t link_writes;              /* writes to the links */
	uint64_t link_pings;               /* Pings sent to quiet links */
	uint64_t link_timeouts;            /* links given up as hung */
	uint64_t client_writes;            /* writes to mail clients */
	uint64_t kicked;                   /* sessions ended by kick */
	uint64_t link_bytes_to_backend;
	uint64_t link_bytes_from_backend;
	uint64_t parked;                   /* gauge: IMAP sessions parked */
	uint64_t park_revivals;            /* parked sessions taken up */
	uint64_t links_ready;              /* gauge */
	const char *protocol_name[FM_PROTOS];
};

/* The protocol side of a client before login, one per protocol dir. */
struct client_proto {
	const char *name;
	enum lp_mode mode;
	void (*greet)(struct client *c);
	/* One complete command line (LP_COMMAND). */
	void (*command)(struct client *c, const char *line, size_t len);
	/* A line the reader refused (LP_ERROR / LP_FATAL). */
	void (*input_error)(struct client *c, const char *line, size_t len,
			    const char *msg, int fatal);
	/* A sync literal was accepted (IMAP). */
	void (*continuation)(struct client *c);
	void (*login_failed)(struct client *c, enum login_failure why,
			     const char *msg);
	/* Relay lost its backend, or the server is stopping. */
	void (*bye_unavailable)(struct client *c, const char *msg);
	void (*timeout)(struct client *c);
	/* limits.login_deadline ran out before authentication (optional;
	   timeout is used without it). */
	void (*login_expired)(struct client *c);
	/* Protocols the frontend serves itself (SMTP submission): the
	   login succeeded; no backend session is opened. */
	void (*logged_in)(struct client *c);
	/* While c->raw: take message content from c->in (some of it, or
	   set c->hold). */
	void (*content)(struct client *c);
	/* portico-admin kick named the account of c's login, at (uv_hrtime()
	   in ms): a session the frontend serves itself (SMTP submission)
	   that logged in before then ends; 1 if it does (optional: the
	   backend ends the sessions it runs). */
	int (*kick)(struct client *c, uint64_t at);
	/* What a session the frontend serves itself is doing, for
	   portico-admin sessions (optional; SMTP: idle, mail, rcpt, content,
	   chunks, result). */
	const char *(*doing)(const struct client *c);
	/* The connection ends: cancel what is pending (optional). */
	void (*detach)(struct client *c);
	/* The client is freed (optional). */
	void (*free)(struct client *c);
};

extern const struct client_proto imap_login_proto;
extern const struct client_proto pop3_login_proto;
extern const struct client_proto smtp_session_proto;
extern const struct client_proto lmtp_session_proto;

/* One per event loop (frontend.workers of them, one thread each, with
 * SO_REUSEPORT listeners): its own listeners, clients, directory
 * connections and link pool.  cfg is a read-only copy of the process's
 * configuration (strings shared); link_ctx and policy are shared by every
 * loop; tls is this loop's reference to the current certificate set. */
struct listener;
struct probe_sched;

/* The listen settings: the mail protocols' (frontend.imap_listen ...
 * lmtp_listen), then http.listen and http.tls_listen. */
#define FRONTEND_MAIL_LISTENERS 7
#define FRONTEND_MAX_LISTENERS 9
#define FRONTEND_LISTEN_SAME (-1)
#define FRONTEND_LISTEN_CLOSE (-2)

struct frontend {
	unsigned index;         /* worker number, for logs */
	uv_loop_t *loop;
	struct config cfg;
	struct tls_server *tls; /* certificates for mail clients (SIGHUP
				   swaps in a new set) */
	SSL_CTX *link_ctx;    /* client certificate for links */
	struct directory *dir;
	struct policy *policy;  /* shared by every loop of the process */
	struct flink *links;
	uv_idle_t link_flush;   /* writes the links' queued frames */
	uv_timer_t link_timer;  /* pings quiet links, ends hung ones */
	uint64_t link_tick_at;  /* the link timer's last run (loop ms) */
	/* clients whose answers from a link read wait corked, to leave in
	   one write each once the read is processed (link_pool.c) */
	struct client *corked;
	struct client *clients;
	unsigned nclients;
	/* one slot per mail listen setting (frontend.imap_listen, ...):
	   NULL when it is empty (the HTTP ones are http's) */
	struct listener *listeners[FRONTEND_MAIL_LISTENERS];
	/* Wakes the loop from the main thread: stop, drain, new
	   configuration, new certificates. */
	uv_async_t wakeup;
	pthread_mutex_t wake_lock;
	int stop_requested;          /* under wake_lock */
	int drain_requested;         /* under wake_lock */
	const struct config_snap *new_cfg; /* under wake_lock: to apply */
	struct tls_server *new_tls;  /* under wake_lock: to swap in */
	struct dir_target *new_dir;  /* under wake_lock: the directory's
					servers at a reload */
	/* under wake_lock: at a reload that moved a listener, the socket
	   bound for its slot, FRONTEND_LISTEN_CLOSE when the setting is
	   empty now, FRONTEND_LISTEN_SAME otherwise */
	int new_listen[FRONTEND_MAX_LISTENERS];
	unsigned cfg_generation;     /* of the snapshot cfg was copied from */
	unsigned *reloads_applied;   /* the process's count (atomic) */
	uv_async_t *done;            /* the process's: this loop ended */
	unsigned *done_count;        /* ... and how many did (atomic) */
	pthread_t thread;
	int stopping;
	/* SIGTERM: listeners closed, sessions finishing until drain_until
	   (loop time, ms; frontend.shutdown_grace) */
	int draining;
	uv_timer_t drain_timer;
	uint64_t drain_until;
	/* HTTP(S): autoconfig, autodiscover, settings page (http/) */
	struct http_server *http;
	const struct connsets *connsets; /* the process's, read-only */
	unsigned long *http_connections; /* the process's count (atomic) */
	struct http_sessions *sessions;     /* GET /sessions (http/) */
	struct frontend *workers;        /* every loop of the process */
	unsigned nworkers;
	struct frontend_metrics metrics;
	/* scheduled connectivity probes (probe/): first loop only */
	struct probe_sched *probe;
	/* kicks another loop's link heard of, for this loop's sessions
	   (kick.c) */
	struct fe_kicks *kicks;
	/* parked sessions whose account is moving (frontend/imap/
	   imap_park.c), looked up once a second by the link timer */
	struct client *relocating;
};

struct client {
	struct frontend *fe;
	const struct client_proto *proto;
	enum client_protocol protocol;
	struct conn conn;
	uv_timer_t idle;
	uv_timer_t delay;       /* penalty wait; cached answers */
	unsigned handles;       /* uv handles still open (idle, delay) */
	uint64_t login_by;      /* loop time (ms) limits.login_deadline ends */
	enum client_state state;
	char id[24];
	char peer[64];          /* the client: "ip:port" (after PROXY) */
	struct sockaddr_storage addr;
	struct tls_server *tls_certs; /* the set this client's TLS uses */
	const char *refuse;     /* connection refused by a limit: why */
	unsigned implicit_tls : 1;
	unsigned tls : 1;
	unsigned input_paused : 1;
	unsigned proxy_wait : 1;   /* a PROXY header must come first */
	unsigned first_read : 1;   /* nothing received yet */
	unsigned trusted : 1;      /* in frontend.trusted_networks */
	unsigned counted_conn : 1; /* limits acquired, to release */
	unsigned counted_addr : 1;
	unsigned counted_user : 1;
	unsigned hold : 1;         /* commands wait (SMTP: the backend) */
	unsigned raw : 1;          /* input is message content */
	unsigned drain_sent : 1;   /* Drain sent to the backend session */
	/* IMAP session parked here (Park, link version 5): the backend
	   keeps a watch of its mailbox on c->stream while watching, none
	   while the link is down (the link's parked list) */
	unsigned parked : 1;
	unsigned watching : 1;
	unsigned reviving : 1;     /* Open with resume sent */
	unsigned relocating : 1;   /* "park:moved": reading the account's
				      entry for the backend it moved to */
	struct lp_reader lp;
	struct buf in;
	unsigned bad_commands;
	int cmd_bad; /* the command being run was answered BAD / -ERR */
	struct smtp_session *smtp; /* SMTP submission and LMTP state */
	struct protolog *plog;     /* log.protocol_*: NULL when off */

	/* login in progress */
	char tag[128];          /* IMAP tag of LOGIN/AUTHENTICATE */
	char client_id[96];     /* IMAP: "name/version" of an ID before
				   login (imap.client_capabilities_off) */
	char user[256];
	struct buf secret;      /* password, wiped after use */
	int sasl_wait;          /* waiting for a SASL response line */
	int sasl_step;          /* enum sasl_step of the mechanism running */
	struct dir_req *dreq;
	struct dir_user duser;
	struct policy_login_keys keys;
	int cached;             /* auth cache answer: 1 ok, 0 fail, -1 none */
	int login_cached;       /* the login was let in by the cache */
	uint64_t auth_at;       /* lru_now() ms of the directory's answer
				   (a cached one's: when it was given) */
	char fail_code[32];     /* backend's refusal code (IN-USE ...) */
	uint64_t t_accept;      /* uv_hrtime(): for login phase metrics */
	uint64_t t_mark;        /* start of the current phase */
	uint64_t t_tls;         /* TLS handshake started */

	/* relay */
	struct flink *link;
	uint32_t stream;
	uint64_t send_credit;   /* bytes the backend accepts now */
	uint64_t recv_uncredited; /* bytes written to the client, not yet
				     credited back */
	uint64_t recv_window;   /* the window granted in Open */
	struct client *link_next; /* in the link's stream or wait list */
	struct client *cork_next; /* in fe->corked */
	struct client *link_prev; /* in the stream list */
	uint64_t sent_total;    /* stream bytes sent to the backend */
	uint64_t login_at;      /* its backend session opened (uv_hrtime()
				   in ms), for kicks */
	struct buf park_state;  /* Park.state, for Open.resume */
	uint64_t park_mbox, park_modseq;
	char *park_name; /* the selected mailbox (NULL: none) */
	uint32_t park_uidvalidity;
	uint64_t reloc_since, reloc_next_at; /* loop ms */
	struct client *reloc_next;           /* in fe->relocating */

	struct client *prev, *next; /* all clients */
};

/* client.c */
void client_accept(struct frontend *fe, uv_stream_t *server,
		   enum client_protocol protocol, int implicit_tls);
void client_set_state(struct client *c, enum client_state state);
void client_printf(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void client_close(struct client *c, const char *reason);
/* Writes to the client (protocol logged; not for relayed bytes). */
void client_write(struct client *c, const void *data, size_t len);
/* The frontend is draining (SIGTERM): a client between commands before
 * login (or in an SMTP session between transactions) is told goodbye and
 * closed now; others are checked again after each command. */
void client_drain(struct client *c);
/* The command being run is invalid (IMAP BAD, a POP3 -ERR for a command
 * or its arguments): it counts towards limits.max_bad_commands. */
void client_bad_command(struct client *c);
/* The idle timer for the connection's state: before login
 * limits.prelogin_timeout within limits.login_deadline (only the deadline
 * while the server has the login), after it the session's timeout. */
void client_timer_reset(struct client *c);
/* STARTTLS/STLS: after the positive reply, discard buffered input,
 * forget the login name and any login made before TLS, and start the
 * handshake (the protocol forgets its own state: HELO, AUTH). */
void client_start_tls(struct client *c);
/* Credentials complete: directory, policy, routing, backend session. */
void client_login(struct client *c, const char *user, const char *password);
/* frontend_metrics.c: the events counted (the loop's own counters). */
void frontend_metrics_accept(struct client *c);
void frontend_metrics_state(struct client *c, enum client_state to);
void frontend_metrics_closed(struct client *c);
/* Observes the phase that ends now and starts the next one. */
void frontend_metrics_phase(struct client *c, enum fm_phase phase);
void frontend_metrics_login(struct frontend *fe, unsigned protocol,
			    unsigned result);
void frontend_metrics_ldap_error(struct frontend *fe, const char *why);
const char *frontend_metrics_state_name(enum client_state s);
const char *frontend_metrics_login_name(unsigned result);

/* Whether a login name is one of frontend.refused_accounts. */
int client_privileged(const struct frontend *fe, const char *user);
/* Whether a directory entry may not use mail: the directory says so
 * (ldap.privileged_attribute), or its uid or address is one of
 * frontend.refused_accounts, however the login name was spelled. */
int client_entry_refused(const struct frontend *fe, const struct dir_user *u);
/* The login name as the directory compares it (RFC 4518 2.6.1: white
 * space around it dropped, runs within it one space) into out; -1 when
 * nothing is left, it holds a control character or it does not fit. */
int client_login_name(const char *in, char *out, size_t outsize);
/* Whether plain-text credentials are acceptable on this connection. */
int client_plaintext_allowed(const struct client *c);
/* Link callbacks (link_pool.c -> client.c). */
void client_link_opened(struct client *c, uint32_t window);
void client_link_refused(struct client *c, const char *code,
			 const char *reason);
void client_link_data(struct client *c, const void *data, size_t len);
void client_link_credit(struct client *c, uint32_t bytes);
void client_link_closed(struct client *c, const char *reason, int lost);

/* Parked IMAP sessions (frontend/imap/imap_park.c).  Park arrived on
 * c's stream: 1 if c takes it (nothing sent the backend had not read,
 * not stopping), and the caller answers Parked. */
int client_link_park(struct client *c, const Portico__Park *p);
/* The watch of a parked session closed with reason ("park:changed",
 * "park:kicked"; the link has let go of the stream, c->link stays). */
void client_park_closed(struct client *c, const char *reason);
/* The session goes back to the backend (Open with resume). */
void client_park_revive(struct client *c);
/* The frontend stops: a parked client is told goodbye and closed. */
void client_park_drain(struct client *c);
/* portico-admin kick named the account of a parked session (Forget, at:
 * uv_hrtime() in ms): one that logged in before then is told goodbye and
 * closed (its backend, which ends the others, has only a watch of it, or
 * nothing when the link was down at the kick); 1 if it was. */
int client_park_kick(struct client *c, uint64_t at);
/* A parked session taken up waits for its backend to be back, within
 * frontend.link_timeout. */
void client_park_wait(struct client *c);
/* Its account moves to another backend ("park:moved", Park.moving):
 * the entry is read once a second (client_park_relocate_tick()) until it
 * is active and names the backend, where the session is watched (or
 * taken up, if the client spoke meanwhile), within imap.park_move_wait. */
void client_park_relocate(struct client *c);
void client_park_relocate_tick(struct frontend *fe);
/* c leaves the parked state (revived, closed). */
void client_park_clear(struct client *c);

/* Resumes command processing after c->hold is cleared. */
void client_resume(struct client *c);

/* link_pool.c */
/* The loop's handle that writes queued frames (before any other call). */
void link_pool_init(struct frontend *fe);
/* Opens a backend session for c (c->duser names the backend).  The
 * answer comes through client_link_opened()/client_link_refused(). */
void link_pool_open(struct frontend *fe, struct client *c);
/* c goes away: forget its stream (sends Close when open). */
void link_pool_detach(struct client *c);
void link_pool_send_data(struct client *c, const void *data, size_t len);
void link_pool_send_credit(struct client *c, uint32_t bytes);
/* The frontend is draining: the backend ends c's session at its next
 * command boundary with the protocol's goodbye (Drain frame). */
void link_pool_send_drain(struct client *c);
/* A parked session: Parked (the Park is taken); its watch let go (Close
 * on its stream, or off the link's parked list); its session asked for
 * again on c->link (Open with resume). */
void link_pool_send_parked(struct client *c);
void link_pool_unwatch(struct client *c);
void link_pool_resume(struct client *c);
/* The same once the link is back (the backend refused it while
 * stopping). */
void link_pool_resume_later(struct client *c);
/* c's session now lives on backend id: its watch there (or the session
 * taken up, when c->reviving). */
void link_pool_rehome(struct client *c, const char *backend);
/* Whether every backend seen so far offers the IMAP capability cap after
 * login (pre-login lists stay a subset of post-login ones). */
int link_pool_backends_offer(struct frontend *fe, const char *cap);
void link_pool_stop(struct frontend *fe);

/* Mail transport: one message on a stream of its own to a backend
 * (proto/link.proto, "Mail transport").  request holds Submit or Deliver
 * (its stream is set here).  The callbacks run from the loop, never from
 * inside these calls; after failed() or result() no other runs but
 * credit.  link_pool_xfer_open() returns NULL when the backend's link
 * failed recently (retry pending). */
struct xfer;
struct xfer_ops {
	void (*opened)(void *ctx, uint32_t window);
	void (*credit)(void *ctx, uint32_t bytes);
	void (*result)(void *ctx, const Portico__Result *r);
	/* No Result will come (refused, link lost, backend unknown). */
	void (*failed)(void *ctx, const char *why);
};
/* cached_login: the mailbox id of the account whose cached login let the
 * submission in (NULL: none), which a Forget refuses (link_pool.c). */
struct xfer *link_pool_xfer_open(struct frontend *fe, const char *backend,
				 const Portico__Frame *request,
				 const struct xfer_ops *ops, void *ctx,
				 const char *cached_login);
void link_pool_xfer_data(struct xfer *x, const void *data, size_t len);
void link_pool_xfer_end(struct xfer *x);
/* Forgets *x (Close to the backend if it was open); no callback runs
 * after. */
void link_pool_xfer_close(struct xfer **x);
/* After the loop has ended. */
void link_pool_free(struct frontend *fe);

/* kick.c: portico-admin kick reaching the sessions the frontend serves
 * itself, on every loop.  A kicked account: its mailbox id and when the
 * kick was made (uv_hrtime() in ms). */
struct kick_note {
	char *mailbox_id;
	uint64_t at;
};
/* The loop's handle for kicks from other loops (before the loop runs). */
void kick_start(struct frontend *fe);
/* The backend named these accounts in Forget frames (all: every account
 * of backend, when there were too many to keep): their sessions on every
 * loop of the process that logged in before the kick end.  notes may be
 * reordered; they stay the caller's. */
void kick_sessions(struct frontend *fe, const char *backend,
		   struct kick_note *notes, size_t n, int all);
/* In the loop's thread, when it stops: nothing more is taken. */
void kick_stop(struct frontend *fe);
/* After the loop has ended. */
void kick_free(struct frontend *fe);

/* SASL (RFC 4422) for AUTHENTICATE / AUTH: PLAIN (RFC 4616) and LOGIN.
 * client_sasl_start() begins a mechanism with an optional initial
 * response (ir NULL: none); client_sasl_step() takes each response line.
 * SASL_CONTINUE: send *challenge_r (base64) as a continuation and wait
 * for the next line; SASL_OK: the login has started. */
enum {
	SASL_OK = 0,
	SASL_CONTINUE = 1,
	SASL_MALFORMED = -1,
	SASL_AUTHZ = -2,
	SASL_UNSUPPORTED = -3,
	SASL_CANCELLED = -4,
};
int client_sasl_start(struct client *c, const char *mech, const char *ir,
		      size_t irlen, const char **challenge_r);
int client_sasl_step(struct client *c, const char *resp, size_t len,
		     const char **challenge_r);
/* Mechanisms offered now ("PLAIN LOGIN"). */
const char *client_sasl_mechanisms(void);

/* base64 (RFC 4648) for SASL, in client.c. */
int base64_decode(const char *in, size_t len, struct buf *out);
void base64_encode(const void *in, size_t len, struct buf *out);

#endif
