/* backend.h - the backend daemon: link server, session host, store. */
#ifndef PORTICO_BACKEND_H
#define PORTICO_BACKEND_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "backend/store/store.h"
#include "backend/user_sessions.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/conn.h"
#include "common/lineparse.h"
#include "link.pb-c.h"

struct blink;
struct bsession;
struct config_snap;
struct protolog;
struct direct_conn;
struct direct_listener;
struct pop3_session;
struct pop3_login;
struct transport;

/* The codes of the link's Refused frames, counted apart (metrics); the
 * last counts any other. */
#define BACKEND_REFUSE_CODES 8
extern const char *const backend_refuse_codes[BACKEND_REFUSE_CODES];

struct backend {
	uv_loop_t *loop;
	struct config cfg;     /* = snap->cfg; a reload (SIGHUP) replaces it */
	struct config_snap *snap; /* the newest; older ones stay until exit */
	const char *config_path;
	struct store *store;
	SSL_CTX *link_ctx;
	uv_tcp_t *link_listener; /* NULL once closed (a drain) */
	uv_signal_t sigterm, sigint, sighup;
	/* SIGTERM: no new links or sessions; sessions end at their next
	   command boundary, the rest at drain_until (loop ms). */
	int draining;
	uv_timer_t drain_timer;
	uint64_t drain_until;
	/* backend.external_change_interval: the store's external generation
	   (store_set_external()) last seen */
	uv_timer_t external_timer;
	uint64_t external_gen;
	uv_timer_t tick_timer; /* engines' tick(), once a second */
	uint64_t link_tick_at; /* its last run, for backend.link_timeout */
	uint64_t link_timeouts; /* links closed by it (metrics) */
	/* backend_mailbox_changed(): mailboxes changed since the last
	   notification pass, which runs from an idle handle once the
	   callback that changed them has sent its own answer. */
	uv_idle_t notify_idle;
	int notify_ready;      /* notify_idle initialised */
	unsigned nchanged;     /* ids in changed[]; any: BACKEND_MBOX_ANY */
	uint64_t changed[16];
	struct blink *links;   /* live links */
	/* link_server_cork(): frames for every link collect and go out in
	   one write per link at link_server_uncork() */
	int links_corked;
	uint64_t link_writes;  /* writes to links (metrics) */
	uint64_t link_credits; /* Credit frames sent (metrics) */
	uint64_t kicked;       /* sessions ended by kick (metrics) */
	uint64_t quota_warnings; /* stored (metrics, quota_warning.c) */
	uint64_t auto_replies;   /* queued (metrics, auto_reply.c) */
	uint64_t forwards;       /* queued (metrics, forward.c) */
	uint64_t park_offers;  /* Parks sent (metrics) */
	uint64_t parked;       /* IMAP sessions parked (metrics) */
	uint64_t resumed;      /* ... and taken up again */
	/* streams refused, by code (metrics): backend_refuse_codes[] */
	uint64_t refused[BACKEND_REFUSE_CODES];
	uint64_t parked_trimmed;         /* parked at the last malloc_trim() */
	struct autoexpunge *autoexpunge; /* autoexpunge.c */
	/* The accounts kick named within backend.kick_memory, oldest first
	   (at most backend.kick_memory_entries): a frontend that links
	   later, which may have had no link at the kick, is told to forget
	   their cached logins before its first session.  Also in the
	   store, which a restart reads back (link_server_kicks_load). */
	struct kick_memo *kicks;
	size_t nkicks, kicks_room;
	/* The literals of the IMAP commands being read, all sessions
	   together (backend.max_command_memory) */
	struct lp_budget cmd_budget;
	/* IMAP and POP3 sessions by account, whatever frontend carries them
	   (backend.max_sessions_per_user) */
	struct user_sessions user_sessions;
	/* Sessions of links waiting for a mailbox's changes (IDLE on it),
	   by mailbox id, chained through bsession.watch_next: a change is
	   shown to its mailbox's watchers without a look at every other
	   session (backend_watch()). */
	struct bsession **watch;
	size_t watch_buckets; /* a power of two, 0 before the first */
	size_t watchers;
	/* engine notify() calls (metrics): [0] a mailbox's watchers, [1]
	   passes over every session (BACKEND_MBOX_ANY) */
	uint64_t notified[2];
	struct pop3_session *pop3_sessions; /* maildrops locked by POP3 */
	struct pop3_login *pop3_logins;     /* last login per maildrop */
	struct transport *transport;        /* queue runner (transport/) */
	struct sendrate_table *sendrate;    /* transport/sendrate.c */
	uint64_t sendrate_swept_at;         /* loop ms */
	struct direct_listener *direct;     /* direct.c, tests only */
	unsigned sessions;     /* live sessions */
	struct backend_http *http; /* backend_http.c: /metrics, /health */
	int imap_rev2;         /* IMAP4rev2 offered (all its parts built) */
};

/* backend_http.c: the metrics and health listener (backend.http_listen,
 * off when empty) and the session counts it reports. */
int backend_http_start(struct backend *be, const char **error_r);
/* A reload: the http.* sizes, timeouts and counts apply from now on; a
 * new backend.http_listen is listened on instead of the old one (0), or
 * -1 after logging why the old one stays. */
int backend_http_reload(struct backend *be, const char *old_listen);
void backend_http_stop(struct backend *be);
void backend_http_free(struct backend *be);
void backend_metrics_session(struct backend *be, const char *protocol);
/* imap_session.c: commands by name and result. */
struct buf;
void imap_metrics_write(struct buf *b);
/* pop3_session.c: the same for POP3 (+OK: OK, -ERR: ERR). */
void pop3_metrics_write(struct buf *b);

/* A protocol engine hosted for one stream (IMAP, POP3). */
struct session_engine {
	const char *name;
	/* Creates the engine's state and queues its first response.  On
	   failure returns -1 with an RFC 5530 / RFC 3206 code and a reason
	   for the frontend to pass on. */
	int (*open)(struct bsession *s, const Portico__Open *open,
		    const char **code_r, const char **reason_r);
	/* Processes the input in s->in as far as it can. */
	void (*input)(struct bsession *s);
	/* Releases the engine's state. */
	void (*free)(struct bsession *s);
	/* Optional: mbox_id changed (another session's write). */
	void (*notify)(struct bsession *s, uint64_t mbox_id);
	/* Transport streams: the frontend sent End (the message is
	   complete in what input() has seen). */
	void (*end)(struct bsession *s);
	/* Optional: the backend (be->draining) or the session's frontend
	   (s->draining) is stopping.  Between commands (or in IDLE) the
	   engine says goodbye and ends the session now, else after the
	   command in progress (it checks session_draining() itself);
	   force: now, whatever it is doing. */
	void (*shutdown)(struct bsession *s, int force);
	/* Optional: about once a second (now: loop ms), for what is due by
	   time (IDLE's keepalive); output is flushed after it. */
	void (*tick)(struct bsession *s, uint64_t now);
	/* Optional: the frontend took the Park the engine sent
	   (session_park()): 1 with the mailbox to watch and its modseq if
	   the engine is still parking (the session then becomes a watch),
	   0 if it went on meanwhile. */
	int (*parked)(struct bsession *s, uint64_t *mbox_id_r,
		      uint64_t *modseq_r);
};

struct bsession {
	struct backend *be;
	struct blink *link;       /* NULL for a direct session */
	struct direct_conn *direct; /* direct.c: the client's socket */
	uint32_t stream;
	char id[64];              /* the frontend's session id */
	char user[256];
	char mailbox_id[256];
	char client[64];          /* the mail client's address (Open) */
	int64_t opened_at;        /* unix time */
	int counted;              /* in be->user_sessions */
	struct buf in;            /* received, not yet processed */
	struct buf out;           /* produced, waiting for credit */
	uint64_t send_credit;     /* bytes the frontend accepts now */
	uint64_t window;          /* our receive window */
	uint64_t unacked_in;      /* processed, not yet credited */
	int ending;               /* engine finished: flush then close */
	int in_input;             /* engine->input() is running */
	int waiting;              /* a store operation is in flight: no
				     further input is processed */
	unsigned pending_ops;     /* store operations not yet completed */
	int dead;                 /* closed while operations were pending */
	int draining;             /* the frontend is stopping (Drain) */
	int kicked;               /* portico-admin kick: ends as when
				     draining, with a goodbye of its own */
	int moving;               /* portico-admin kick --park: an IMAP
				     session in IDLE is parked and its watch
				     closed with "park:moved"; others end
				     as kicked */
	struct z_stream_s *zin;   /* COMPRESS=DEFLATE (RFC 4978): inflate */
	struct z_stream_s *zout;  /* ... and deflate */
	int zdirty;               /* deflated output not yet flushed */
	const struct session_engine *engine;
	void *state;
	struct protolog *plog;    /* log.protocol_*: NULL when off */
	struct bsession *next;    /* in link's list */
	struct bsession *prev;
	/* backend_watch(): the mailbox whose changes it waits for */
	int watching;
	uint64_t watch_mbox;
	struct bsession *watch_next, *watch_prev;
	uint64_t in_total;        /* stream bytes received (Park) */
	/* the reason its Close gives (NULL: none), e.g. "park:changed" */
	const char *close_reason;
};

/* A protocol engine may implement notify(): a mailbox it shows changed. */

extern const struct session_engine imap_engine;
extern const struct session_engine pop3_engine;

/* Whether the session should end at its next command boundary. */
static inline int
session_draining(const struct bsession *s)
{
	return s->draining || s->kicked || s->moving || s->be->draining;
}

/* Queues output for the client. */
void session_write(struct bsession *s, const void *data, size_t len);
/* A string, and a number in decimal: what answers are mostly made of,
 * without printf's format parsing. */
void session_puts(struct bsession *s, const char *str);
void session_put_uint(struct bsession *s, uint64_t v);
void session_printf(struct bsession *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void session_vprintf(struct bsession *s, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Engines stop producing while this is true and continue from
 * engine->input() when credit arrives. */
int session_output_full(const struct bsession *s);
/* Input bytes the engine has finished with (returns link credit). */
void session_consumed(struct bsession *s, size_t n);
/* Ends the session once its output is sent. */
void session_end(struct bsession *s, const char *reason);
/* Runs a store operation for the session: input processing pauses until
 * done(ctx, ...) has run (after the commit, on the loop), then resumes.
 * done is not called if the session went away meanwhile.  free_ctx (may
 * be NULL) releases ctx afterwards in both cases; op_args must live as
 * long as ctx. */
void session_store(struct bsession *s, store_op_fn *op, void *op_args,
		   store_done_fn *done, void *ctx,
		   void (*free_ctx)(void *ctx));
/* Starts DEFLATE in both directions: what was written before stays
 * plain, input not yet processed is inflated (RFC 4978). */
int session_compress_start(struct bsession *s);
/* Transport streams: sends the Result frame, then ends the stream. */
void session_result(struct bsession *s, const Portico__Result *r);
/* Tells sessions with mailbox mbox_id selected that it changed: at once
 * without a loop (portico-admin), else once the current callback has
 * returned, so that the session that made the change answers first and
 * changes made together are shown in one pass over the sessions. */
void backend_mailbox_changed(struct backend *be, uint64_t mbox_id);
/* mbox_id of backend_mailbox_changed() for every mailbox: each session
 * looks at its own (a change by another process, portico-admin). */
#define BACKEND_MBOX_ANY UINT64_MAX

/* The account's last use, for portico-admin accounts (link_server.c):
 * written when the time recorded is older than
 * backend.last_login_interval; nothing waits for it. */
void backend_last_login(struct backend *be, const char *mailbox_id,
			const char *session_id);

/* Quota warnings (quota_warning.c): backend.quota_warnings parsed into
 * levels (ascending, each once); -1 with a message naming the setting. */
#define QUOTA_WARNING_LEVELS 8
int quota_warnings_parse(const char *s, unsigned levels[QUOTA_WARNING_LEVELS],
			 unsigned *n_r, const char **error_r);
int quota_warning_from_check(const char *from, const char **error_r);
/* backend.quota_warning_file read and checked: *out_r (malloc'd, CRLF
 * lines; NULL for "") and its length, *typed_r whether it has a
 * Content-Type; -1 with a message naming the setting. */
int quota_warning_file_load(const char *path, char **out_r, size_t *len_r,
			    int *typed_r, const char **error_r);
/* Before the store's writer starts: the store warns with the settings
 * of be->cfg; after a reload, with the new ones.  _hook, once the writer
 * runs: sessions of an INBOX that received a warning hear of it. */
void quota_warnings_start(struct backend *be);
void quota_warnings_hook(struct backend *be);
void quota_warnings_reload(const struct config *cfg);
void quota_warnings_free(void);

/* Messages of \Trash and \Junk folders past backend.trash_lifetime and
 * backend.junk_lifetime go (autoexpunge.c). */
int autoexpunge_start(struct backend *be);
void autoexpunge_stop(struct backend *be);
/* After a reload: the next look within the interval now in force. */
void autoexpunge_reload(struct backend *be);
void autoexpunge_free(struct backend *be);
/* Messages it expunged since the start (metrics). */
uint64_t autoexpunge_removed(const struct backend *be);

/* The frontend's Hello name on the session's link (for Received:). */
const char *session_link_name(const struct bsession *s);

/* Parked IMAP sessions (link version 5, proto/link.proto "Parked IMAP
 * sessions").  Whether the session can be parked now: its frontend
 * takes Park, nothing is in flight, buffered or compressed, neither
 * frontend nor kick is ending it.  What the session wrote is sent first,
 * as far as the frontend's credit allows (the last command's answer
 * comes before the Park). */
int session_can_park(struct bsession *s);
/* Sends Park with state[0..len) (an ImapPark); the engine holds its
 * output until the frontend answers Parked (engine->parked(); the engine
 * state is then freed and the stream becomes a watch of the mailbox,
 * park.c) or sends more input (the engine goes on). */
void session_park(struct bsession *s, const void *state, size_t len,
		  uint64_t mbox_id, uint64_t modseq, const char *mbox_name,
		  uint32_t uidvalidity, int between_commands);
/* park.c: the watch engine of a parked session's stream.  Closes it with
 * "park:changed" once mbox_id's HIGHESTMODSEQ is not modseq (or it is
 * gone), "park:draining" when the backend stops, "park:kicked" at a
 * kick. */
void park_watch_start(struct bsession *s, uint64_t mbox_id, uint64_t modseq);
/* Ends the watch with reason (its Close goes at the next flush). */
void park_watch_end(struct bsession *s, const char *reason);
/* Whether s is such a watch. */
int park_is_watch(const struct bsession *s);

/* Session host (link_server.c).  Runs the engine over s->in, returns
 * the consumed input's credit and sends the output; may free s. */
void session_run(struct bsession *s);
/* Frees s now, or when its pending store operations complete. */
void session_free(struct bsession *s);

/* Link server (link_server.c). */
int link_server_start(struct backend *be, const char **error_r);
/* A reload that moved backend.link_listen: the listener at the new
 * address replaces the old one (links up stay), 0; or -1 after logging
 * why the old one stays. */
int link_server_move(struct backend *be, const char *old_listen);
void link_server_stop(struct backend *be);
/* Frames sent to any link between the two calls go out together, one
 * write per link, at the last uncork (a batch of store completions). */
void link_server_cork(struct backend *be);
void link_server_uncork(struct backend *be);
/* SIGTERM: closes the listener (links up stay) and asks every session's
 * engine to end (shutdown(s, force)). */
void link_server_drain(struct backend *be, int force);
/* portico-admin kick: tells every linked frontend (link version 3) to
 * forget its cached logins of mailbox_id (*links_r: how many links), and
 * ends every IMAP and POP3 session of mailbox_id through any frontend,
 * as draining does (between commands, in IDLE or with a command line
 * withheld now, else after the command in progress), with "Session ended
 * by an administrator".  park (kick --park, an account moving to another
 * backend): an IMAP session in IDLE is parked at its frontend instead,
 * and the watches of parked sessions close with "park:moved", after
 * which the frontends are told to forget.  Returns how many sessions. */
unsigned link_server_kick(struct backend *be, const char *mailbox_id,
			  unsigned *links_r, int park);
/* What kick remembers of an account (backend.kick_memory). */
struct kick_memo {
	char mailbox_id[128];
	int64_t at; /* wall clock, ms since the epoch */
};
/* After link_server_kick(): the record of what kick remembers of it,
 * for store_submit(store_op_kick_put), which also trims what is past
 * backend.kick_memory and backend.kick_memory_entries (put->mailbox_id
 * points into the memory, which moves: copy it); 0 when kick remembers
 * nothing (backend.kick_memory or kick_memory_entries 0). */
int link_server_kick_record(struct backend *be, const char *mailbox_id,
			    struct store_kick_put_args *put);
/* At start, before the store's writer: what kick remembered before the
 * restart, within backend.kick_memory (older records are removed). */
int link_server_kicks_load(struct backend *be, const char **error_r);
/* Frees what kick remembers. */
void link_server_kicks_free(struct backend *be);
/* GET /sessions (portico-admin sessions): a line per IMAP and POP3
 * session through a link (of mailbox_id only, unless NULL), tab
 * separated: session, protocol, user, mailbox id, frontend, client,
 * age in seconds. */
void link_server_sessions(struct backend *be, const char *mailbox_id,
			  struct buf *out);
/* The session waits for changes of mbox_id (an IMAP session in IDLE on
 * its selected mailbox): notify() is called for that mailbox's changes
 * (and for BACKEND_MBOX_ANY), not for others'.  A session of a link that
 * is not watching gets no notify() but for BACKEND_MBOX_ANY; direct
 * sessions (tests) get every change as before.  backend_unwatch() ends
 * it; session_free() does too. */
void backend_watch(struct bsession *s, uint64_t mbox_id);
void backend_unwatch(struct bsession *s);
void backend_watch_free(struct backend *be);
/* Runs every session's engine tick() (the backend's tick timer), after
 * the links' Pings and backend.link_timeout. */
void link_server_tick(struct backend *be, uint64_t now);

/* Direct IMAP listener for benchmarks and tests (direct.c); off unless
 * backend.direct_imap_listen is set, loopback only. */
/* Checks the settings (loopback, password) before anything starts. */
int direct_check_config(const struct config *cfg, const char **error_r);
int direct_start(struct backend *be, const char **error_r);
void direct_stop(struct backend *be);
void direct_free(struct backend *be);
/* Sends a direct session's output as far as the socket takes it. */
void direct_session_flush(struct bsession *s);
void direct_mailbox_changed(struct backend *be, uint64_t mbox_id);
void direct_tick(struct backend *be, uint64_t now);
/* Capabilities a logged-in IMAP client is offered (after _init). */
void backend_imap_capabilities_init(const struct config *cfg);
/* Checks imap.client_capabilities_off's syntax (the configuration's
 * check; imap_caps.c). */
int imap_caps_rules_check(const char *rules, const char **error_r);
const char *backend_imap_capabilities(void);
/* The largest message APPEND takes (APPENDLIMIT, RFC 7889): one literal
 * (limits.max_literal_size) within one command (limits.max_command_size,
 * whose command line may be limits.max_line long). */
uint64_t backend_imap_append_limit(const struct config *cfg);

#endif
