/* probe.h - connectivity probes: one mail session as an operator's
 * monitoring would run it, each step timed, with a verdict.
 *
 * A probe connects to a frontend (or any IMAP4, POP3 or submission
 * server), optionally starts TLS (implicit, or STARTTLS/STLS), reads the
 * greeting, logs in as a test account and then:
 *
 *   imap        SELECT INBOX, FETCH (BODY.PEEK[]) of the newest message
 *               (none in an empty INBOX: still a pass), with cleanup the
 *               deletion of older probe messages (UID SEARCH HEADER
 *               X-Portico-Probe, UID STORE \Deleted, UID EXPUNGE), LOGOUT
 *   pop3        USER/PASS, STAT, TOP of the newest message (TOP, not RETR:
 *               nothing is marked as downloaded), QUIT
 *   submission  EHLO, AUTH PLAIN, MAIL, RCPT, DATA of a small message to
 *               the account itself (header X-Portico-Probe), QUIT
 *
 * In light mode only the login is made, then LOGOUT/QUIT.  Every step
 * is recorded with its duration; the first one that fails ends the probe
 * and its verdict holds the server's reply (sanitized) or the local
 * error.  The whole probe is bounded by a timeout.
 *
 * Everything runs on one libuv loop, asynchronously; the probe needs
 * nothing of the frontend (the portico-probe CLI links it alone).
 */
#ifndef PORTICO_PROBE_H
#define PORTICO_PROBE_H

#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

enum probe_protocol {
	PROBE_IMAP,
	PROBE_POP3,
	PROBE_SUBMISSION,
	PROBE_PROTOCOL_COUNT
};

enum probe_tls {
	PROBE_TLS_NONE,
	PROBE_TLS_STARTTLS, /* STARTTLS, STLS for POP3 */
	PROBE_TLS_IMPLICIT,
	PROBE_TLS_COUNT
};

enum probe_step {
	PROBE_STEP_CONNECT,  /* TCP connection */
	PROBE_STEP_TLS,      /* TLS handshake (implicit or after STARTTLS) */
	PROBE_STEP_GREETING, /* the server's first reply */
	PROBE_STEP_EHLO,     /* submission: EHLO (again after STARTTLS) */
	PROBE_STEP_STARTTLS, /* STARTTLS / STLS command and its reply */
	PROBE_STEP_LOGIN,    /* LOGIN / USER+PASS / AUTH PLAIN */
	PROBE_STEP_SELECT,   /* imap: SELECT INBOX */
	PROBE_STEP_FETCH,    /* imap: FETCH of the newest message */
	PROBE_STEP_STAT,     /* pop3: STAT */
	PROBE_STEP_TOP,      /* pop3: TOP of the newest message */
	PROBE_STEP_MAIL,     /* submission: MAIL FROM */
	PROBE_STEP_RCPT,     /* submission: RCPT TO */
	PROBE_STEP_DATA,     /* submission: DATA, message, final reply */
	PROBE_STEP_CLEANUP,  /* imap: older probe messages deleted */
	PROBE_STEP_LOGOUT,   /* LOGOUT / QUIT */
	PROBE_STEP_COUNT
};

/* What to probe.  Strings are copied by probe_start(). */
struct probe_opts {
	struct sockaddr_storage addr; /* where to connect */
	const char *tls_name;  /* SNI and name checked (NULL: neither) */
	SSL_CTX *ssl_ctx;      /* from probe_ssl_ctx(); needed unless
				  tls is PROBE_TLS_NONE */
	enum probe_protocol protocol;
	enum probe_tls tls;
	const char *user;
	const char *password;
	const char *rcpt;      /* submission recipient (NULL: user) */
	const char *helo;      /* EHLO name (NULL: "portico-probe") */
	const char *tag;       /* X-Portico-Probe value (NULL: "cli") */
	int light;             /* log in and out only */
	int cleanup;           /* imap: delete probe messages (those with
				  X-Portico-Probe) but the newest message,
				  at most PROBE_CLEANUP_MAX a time */
	uint64_t timeout_ms;   /* the whole probe */
};

#define PROBE_MAX_STEPS 16
#define PROBE_CLEANUP_MAX 1000
#define PROBE_REASON_MAX 256

struct probe_step_result {
	enum probe_step step;
	int ok;
	uint64_t us;           /* duration in microseconds */
	char detail[96];       /* "3 messages", "1234 octets" ... */
};

struct probe_result {
	int pass;
	enum probe_step failed_step; /* when !pass */
	char reason[PROBE_REASON_MAX]; /* when !pass: reply or error */
	struct probe_step_result steps[PROBE_MAX_STEPS];
	unsigned nsteps;
	uint64_t total_us;
};

struct probe;

/* The verdict; r is valid only during the call.  The probe is gone
 * afterwards (its handles close by themselves). */
typedef void probe_done_cb(void *ctx, const struct probe_result *r);

/* Starts a probe on loop.  cb runs later from the loop, never from
 * inside this call, exactly once unless probe_cancel() comes first.
 * Returns NULL only when o is unusable (*error_r says why). */
struct probe *probe_start(uv_loop_t *loop, const struct probe_opts *o,
			  probe_done_cb *cb, void *ctx, const char **error_r);
/* Stops *p at once: its callback will not run.  Sets *p to NULL. */
void probe_cancel(struct probe **p);

/* A TLS client context for probes: TLS 1.2+, the peer verified against
 * ca_file (NULL or "": the system's CAs) unless verify is 0. */
SSL_CTX *probe_ssl_ctx(const char *ca_file, int verify,
		       const char **error_r);

const char *probe_step_name(enum probe_step s);
const char *probe_protocol_name(enum probe_protocol p);
const char *probe_tls_name(enum probe_tls t);
/* "imap", "pop3", "submission" (also "smtp") -> protocol; -1 if none. */
int probe_protocol_parse(const char *s, enum probe_protocol *p_r);
/* "none", "starttls" (also "stls"), "implicit" (also "ssl") -> mode. */
int probe_tls_parse(const char *s, enum probe_tls *t_r);

#endif
