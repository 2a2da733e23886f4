/* relay.h - an SMTP or LMTP client for one message to one next hop.
 *
 * One relay carries one message to the first host of a list that
 * answers: greeting, EHLO (LHLO for LMTP), STARTTLS when offered or
 * required (then EHLO again), MAIL FROM with the parameters the server
 * offers (SIZE, BODY, SMTPUTF8, RET/ENVID and NOTIFY/ORCPT with DSN,
 * XDELIVERYID from a Portico LMTP server),
 * one RCPT per recipient, DATA with dot-stuffing, QUIT.  Commands go one
 * at a time.  Every recipient ends with a reply: the server's (RCPT, or
 * the final reply of DATA - per recipient under LMTP) or one made up for
 * a failure on our side (connection, timeout, TLS: 4.4.x).
 */
#ifndef PORTICO_RELAY_H
#define PORTICO_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

enum relay_tls {
	RELAY_TLS_NONE,    /* never STARTTLS */
	RELAY_TLS_MAY,     /* STARTTLS when offered, certificate unchecked */
	RELAY_TLS_ENCRYPT, /* STARTTLS required, certificate unchecked */
	RELAY_TLS_VERIFY,  /* STARTTLS required, certificate verified */
};

struct relay_rcpt {
	const char *address;
	const char *notify;   /* DSN NOTIFY or "" */
	const char *orcpt;    /* DSN ORCPT or "" */
	/* out: the reply about this recipient */
	uint32_t code;
	char status[16];
	char text[512];
};

struct relay_req {
	int lmtp;
	const char *hosts;    /* "host:port ..." tried in order */
	const char *helo;     /* our name */
	enum relay_tls tls;
	SSL_CTX *tls_ctx;     /* for STARTTLS (NULL: TLS never used) */
	int64_t timeout_ms;   /* per reply */
	const char *mail_from;
	const char *envid, *ret, *body;
	int smtputf8;
	/* LMTP: sent as XDELIVERYID= when the server offers it (NULL: no) */
	const char *delivery_id;
	const char *data;     /* the message, CRLF lines */
	size_t len;
	struct relay_rcpt *rcpt;
	size_t n;
	const char *log_id;   /* queue id, for logs */
	/* Runs once every recipient has its reply and the connection is
	   gone.  remote: "host:port" that answered, or "". */
	void (*done)(struct relay_req *r);
	void *ctx;
	char remote[280];
	int tls_used;
	int dsn_offered;      /* the server took NOTIFY/RET (DSN extension) */
	struct relay *relay;  /* internal */
};

/* Starts the delivery; done runs later (never from inside this call). */
void relay_start(uv_loop_t *loop, struct relay_req *r);
/* Stops at once: recipients without a reply get a temporary failure;
 * done still runs (from the loop). */
void relay_abort(struct relay_req *r);

#endif
