/* loadgen.c - load generator for the benchmarks (tests/bench/bench.py).
 *
 * One libuv loop drives many concurrent mail clients against one server
 * (Portico's frontend, Dovecot, or anything speaking IMAP4/POP3), with
 * implicit TLS or without, and reports per-operation rates and latency
 * percentiles as one JSON object on stdout (a human summary goes to
 * stderr).  TLS runs over memory BIOs through common/conn.c, exactly as
 * the daemons do it.
 *
 * Clients are closed loops: each sends its next command as soon as the
 * previous one is answered.  bench.py shares the clients of a closed-loop
 * run among several processes (--client-base numbers them as one set) and
 * merges their output, of which each operation's histogram is part.  With
 * --rate, sessions instead start at that many per second, evenly spaced,
 * whatever the server's speed (an open loop, for latency at a given load rather
 * than at saturation): --clients is then how many may be under way at once, and
 * a start that finds none free waits for one; "start-lag" is how late each
 * start was against its schedule, so a server that cannot keep up shows there
 * and not as a lower rate with good latencies.  Latencies go into log-linear
 * histograms (HDR-style: 256 exact values, then 128 sub-buckets per power of
 * two, under 0.8% error) so memory stays bounded whatever the run length.
 * Operations that complete during the warm-up are not counted.  With
 * --resume each client offers, on its next connection, the TLS session
 * (the server's tickets) of its last one, as mail clients do when they
 * reconnect; the output counts the measured handshakes and those that
 * resumed.
 *
 * Workloads (--workload):
 *   imap-mixed       one full session per connection, in the proportions
 *                    of imaptest's defaults: LOGIN, LIST 50%, STATUS 50%,
 *                    SELECT, FETCH (headers of a window), FETCH BODY[] of
 *                    one message, STORE flags 50%, STORE \Deleted, EXPUNGE,
 *                    APPEND, LOGOUT
 *   imap-mixed-stay  the same commands, clients stay logged in (commands/s)
 *   imap-fetch       read-heavy: a window of headers then three whole
 *                    messages, over and over, on a large mailbox
 *   imap-append      write-heavy: APPEND after APPEND
 *   pop3-download    USER/PASS, STAT, LIST, RETR of every message, QUIT
 *   login-storm      connect, LOGIN, LOGOUT, close
 *   hop-latency      LOGIN once, then SELECT INBOX + FETCH n BODY.PEEK[]
 *                    over and over; the pair's time is "select-fetch"
 *                    (bench.py runs it through a frontend or proxy and
 *                    directly against the backend, and subtracts)
 *   ldap-bind        LDAP simple binds as the users, back to back, one
 *                    connection per client (--port is the directory's,
 *                    --ldap-dn the DN format): what the directory alone
 *                    can do, for login-storm to be compared with
 *   idle-hold        N connections SELECT and IDLE on one mailbox; the
 *                    memory of the server's processes (--mem-pid and
 *                    their descendants, from /proc) before and after, then
 *                    K deliveries (APPEND by another client) and the time
 *                    until every watcher has seen the EXISTS
 *   smtp-submit      one message per connection, as a mail client
 *                    sends it: greeting, EHLO, AUTH PLAIN (login),
 *                    MAIL FROM (the user), RCPT TO (the user: local
 *                    delivery), DATA and the message (--append-size),
 *                    QUIT; "submit" is MAIL FROM to the reply after the
 *                    data (the message accepted, i.e. queued durably).
 *                    Not measured: the time until the message reaches
 *                    the mailbox (delivery from the queue).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ldap.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/conn.h"
#include "common/log.h"

/* ---- latency histograms ----------------------------------------------- */

#define HIST_SUB_BITS 8
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_HALF (HIST_SUB / 2)
#define HIST_LEVELS 40
#define HIST_BUCKETS (HIST_SUB + HIST_HALF * HIST_LEVELS)

struct hist {
	uint64_t count, sum, min, max; /* nanoseconds */
	uint32_t b[HIST_BUCKETS];
};

static unsigned
hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - (HIST_SUB_BITS - 1);
	if (shift > HIST_LEVELS)
		return HIST_BUCKETS - 1;
	return HIST_SUB + (shift - 1) * HIST_HALF +
	       (unsigned)((v >> shift) - HIST_HALF);
}

/* The middle of bucket i. */
static uint64_t
hist_value(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned shift = (i - HIST_SUB) / HIST_HALF + 1;
	uint64_t sub = (i - HIST_SUB) % HIST_HALF + HIST_HALF;
	return (sub << shift) + ((UINT64_C(1) << shift) >> 1);
}

static void
hist_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->b[hist_index(v)]++;
}

/* Percentile p (0..1) in milliseconds. */
static double
hist_pct_ms(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	double exact = p * (double)h->count;
	uint64_t want = (uint64_t)exact;
	if ((double)want < exact)
		want++;
	if (want < 1)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want) {
			uint64_t v = hist_value(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return (double)v / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---- operations --------------------------------------------------------- */

enum op {
	OP_NONE = -1,
	OP_CONNECT, /* TCP connect + TLS handshake + greeting */
	OP_LOGIN,
	OP_LIST,
	OP_STATUS,
	OP_SELECT,
	OP_FETCH,
	OP_FETCH_BODY,
	OP_STORE,
	OP_DELETE,
	OP_EXPUNGE,
	OP_APPEND,
	OP_IDLE,
	OP_LOGOUT,
	OP_STAT,
	OP_RETR,
	OP_QUIT,
	OP_EHLO,
	OP_MAIL,
	OP_RCPT,
	OP_DATA,
	OP_SESSION,
	OP_SELECT_FETCH,
	OP_DELIVERY_ALL,
	OP_DELIVERY_EACH,
	OP_DELIVERY_AFTER_OK,
	OP_SUBMIT, /* smtp-submit: MAIL FROM to the reply after the data */
	OP_START_LAG, /* --rate: a session's start behind its schedule */
	OP_COMMAND, /* every command above, together */
	OP_COUNT
};

#define OP_FIRST_COMMAND OP_LOGIN
#define OP_LAST_COMMAND OP_DATA

static const char *const op_names[OP_COUNT] = {
	"connect", "login",  "list",	 "status",	 "select",
	"fetch",   "fetch-body", "store", "delete",	 "expunge",
	"append",  "idle",   "logout",	 "stat",	 "retr",
	"quit",	   "ehlo", "mail", "rcpt", "data", "session", "select-fetch", "delivery-all", "delivery-each",
	"delivery-after-ok", "submit", "start-lag", "all-commands",
};

struct opstat {
	struct hist h;
	uint64_t errors;
	uint64_t bytes;
};

static struct opstat stats[OP_COUNT];

/* ---- configuration ------------------------------------------------------ */

enum proto { P_IMAP, P_POP3, P_SMTP, P_LDAP };

struct client;

struct workload {
	const char *name;
	enum proto proto;
	void (*step)(struct client *c, int ok);
	int stay; /* imap-mixed: stay logged in */
	const char *unsupported;
};

#define MAX_MEM_PIDS 16

static struct {
	const char *host;
	int port;
	int tls;
	const char *ca;
	const char *sni;
	int resume; /* offer each client's last TLS session again */
	const struct workload *wl;
	int clients;
	double rate; /* sessions started per second; 0: closed loops */
	double duration, warmup, timeout;
	const char *user_fmt, *pass_fmt;
	int nusers, user_base;
	int client_base;     /* --client-base: index of client 0 */
	int idle_conns, deliveries, connect_parallel;
	double delivery_timeout;
	int fetch_window, append_size;
	int mem_pids[MAX_MEM_PIDS];
	int n_mem_pids;
	const char *label;
	const char *ldap_dn;
} cfg = {
	.host = "127.0.0.1",
	.sni = "localhost",
	.clients = 16,
	.duration = 10,
	.warmup = 1,
	.timeout = 600,
	.user_fmt = "bench%d@example.test",
	.pass_fmt = "bench-password",
	.nusers = 1,
	.idle_conns = 100,
	.deliveries = 10,
	.connect_parallel = 64,
	.delivery_timeout = 10,
	.fetch_window = 20,
	.append_size = 4096,
	.label = "",
	.ldap_dn = "uid=bench%d@example.test,ou=people,dc=example,dc=test",
};

/* ---- run state ---------------------------------------------------------- */

static uv_loop_t *loop;
static SSL_CTX *tls_ctx;
static struct sockaddr_storage target;
static uint64_t t_start, t_measure, t_stop;
static int measuring, stopping, timed_out;
static uint64_t bytes_in;   /* while measuring */
static uint64_t conn_errors;
static uint64_t tls_handshakes, tls_resumed; /* measured ones */
static char first_error[256];
static uv_timer_t stop_timer, hard_timer, idle_timer, pace_timer;

static uint64_t
now_ns(void)
{
	return uv_hrtime();
}

static void
note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
note_error(const char *fmt, ...)
{
	if (first_error[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(first_error, sizeof(first_error), fmt, ap);
	va_end(ap);
}

static void
record(int op, uint64_t dt, int ok, uint64_t bytes)
{
	if (op < 0 || !measuring)
		return;
	int cmd = op >= OP_FIRST_COMMAND && op <= OP_LAST_COMMAND;
	if (ok) {
		hist_add(&stats[op].h, dt);
		stats[op].bytes += bytes;
		if (cmd)
			hist_add(&stats[OP_COMMAND].h, dt);
	} else {
		stats[op].errors++;
		if (cmd)
			stats[OP_COMMAND].errors++;
	}
}

/* ---- clients ------------------------------------------------------------ */

#define LINE_KEEP 512  /* bytes of a response line kept for parsing */
#define LINE_HEAD 384  /* kept from the start of an overlong line */

enum wait { W_NONE, W_GREETING, W_TAG, W_POP, W_POP_MULTI, W_SMTP };

struct client {
	struct conn conn; /* first: the conn callbacks cast back */
	uv_timer_t timer;
	struct client *next_free; /* --rate: waiting for its next start */
	int id;
	int user;
	uint64_t rng;
	int open;     /* conn initialised and not yet closed */
	int failed;   /* idle-hold: gave up */
	/* reader */
	char line[LINE_KEEP];
	size_t ll;
	uint64_t literal_left;
	int line_cont; /* the next line continues a response (after literal) */
	/* command in flight */
	enum wait waiting;
	int op;
	uint64_t t0, bytes;
	unsigned tagn;
	char tag[16];
	size_t taglen;
	const char *lit; /* literal to send on the continuation request */
	size_t litlen;
	int step;
	uint64_t session_t0;
	uint64_t t_pair; /* hop-latency: SELECT sent */
	/* IMAP */
	uint32_t exists;
	int deleted;
	int idling;
	uint32_t idle_exists;
	int reached;
	/* POP3 */
	unsigned pop_msgs, pop_i;
	int pop_multi_wanted;
	uint64_t t_user;
	/* APPEND message */
	char *msg;
	size_t msgcap;
	SSL_SESSION *tls_session; /* --resume: offered on the next connect */
};

static struct client *clients;
static int nclients;

static uint64_t
rnd(struct client *c)
{
	/* xorshift64* */
	uint64_t x = c->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * UINT64_C(2685821657736338717);
}

static int
chance(struct client *c, unsigned percent)
{
	return rnd(c) % 100 < percent;
}

static void
user_name(struct client *c, char *out, size_t size, int pass)
{
	const char *fmt = pass ? cfg.pass_fmt : cfg.user_fmt;
	/* The formats come from the command line and take at most one %d
	 * (checked in main). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(out, size, fmt, cfg.user_base + c->user);
#pragma GCC diagnostic pop
}

static void client_connect(struct client *c);
static void client_finish_session(struct client *c);

static void
begin_cmd(struct client *c, int op, enum wait w)
{
	c->op = op;
	c->t0 = now_ns();
	c->bytes = 0;
	c->waiting = w;
}

static void
send_line(struct client *c, const char *line, size_t n)
{
	conn_write(&c->conn, line, n);
}

static void imap_cmd(struct client *c, int op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
imap_cmd(struct client *c, int op, const char *fmt, ...)
{
	char line[1024];
	c->tagn++;
	int n = snprintf(line, sizeof(line), "a%u ", c->tagn);
	memcpy(c->tag, line, (size_t)n);
	c->taglen = (size_t)n;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= sizeof(line) - (size_t)n - 2)
		abort();
	n += m;
	line[n++] = '\r';
	line[n++] = '\n';
	begin_cmd(c, op, W_TAG);
	send_line(c, line, (size_t)n);
}

/* Builds a message of about size bytes in c->msg; returns its length. */
static size_t
make_message(struct client *c, size_t size)
{
	if (c->msgcap < size + 1024) {
		c->msgcap = size + 1024;
		c->msg = realloc(c->msg, c->msgcap);
		if (c->msg == NULL)
			abort();
	}
	char user[256];
	user_name(c, user, sizeof(user), 0);
	uint64_t r = rnd(c);
	int n = snprintf(c->msg, c->msgcap,
			 "From: Load Generator <loadgen@example.test>\r\n"
			 "To: <%s>\r\n"
			 "Subject: loadgen %d %" PRIu64 "\r\n"
			 "Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n"
			 "Message-ID: <%d.%" PRIx64 "@loadgen.example.test>\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=us-ascii\r\n"
			 "\r\n",
			 user, c->id, r % 100000, c->id, r);
	size_t len = (size_t)n;
	static const char words[] =
		"the quick brown fox jumps over the lazy dog while a load "
		"generator appends another message to the mailbox of ";
	while (len + 80 < size) {
		size_t off = (size_t)(rnd(c) % 40);
		memcpy(c->msg + len, words + off, 70);
		len += 70;
		c->msg[len++] = '\r';
		c->msg[len++] = '\n';
	}
	memcpy(c->msg + len, "-- \r\nloadgen\r\n", 14);
	len += 14;
	return len;
}

static void
imap_append(struct client *c, int op)
{
	size_t avg = (size_t)cfg.append_size;
	size_t size = avg / 2 + (size_t)(rnd(c) % (avg + 1));
	size_t len = make_message(c, size);
	c->lit = c->msg;
	c->litlen = len;
	imap_cmd(c, op, "APPEND INBOX {%zu}", len);
}

static void
imap_login(struct client *c)
{
	char u[256], p[256];
	user_name(c, u, sizeof(u), 0);
	user_name(c, p, sizeof(p), 1);
	imap_cmd(c, OP_LOGIN, "LOGIN \"%s\" \"%s\"", u, p);
}

static void pop_cmd(struct client *c, int op, int multi, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
pop_cmd(struct client *c, int op, int multi, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		abort();
	line[n++] = '\r';
	line[n++] = '\n';
	begin_cmd(c, op, W_POP);
	c->pop_multi_wanted = multi;
	send_line(c, line, (size_t)n);
}

/* A reply arrived: record it and let the workload go on. */
static void
finish_cmd(struct client *c, int ok)
{
	uint64_t dt = now_ns() - c->t0;
	c->waiting = W_NONE;
	record(c->op, dt, ok, c->bytes);
	if (stopping)
		return;
	cfg.wl->step(c, ok);
}

/* The connection is of no further use (end of session). */
static void
client_drop(struct client *c)
{
	if (!c->open)
		return;
	/* --resume: the session (with the tickets the server sent) is
	   offered on the client's next connection, as a mail client does */
	if (cfg.resume && c->conn.ssl != NULL && !c->conn.handshaking) {
		SSL_SESSION *s = SSL_get1_session(c->conn.ssl);
		if (s != NULL && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(c->tls_session);
			c->tls_session = s;
		} else {
			SSL_SESSION_free(s);
		}
	}
	conn_close(&c->conn);
}

/* The connection is of no further use after a failure: the next one
 * comes after a pause. */
static void
client_fail(struct client *c)
{
	c->failed = 1;
	client_drop(c);
}

/* ---- IMAP workloads ----------------------------------------------------- */

enum mixed_state {
	M_GREETING,
	M_LOGIN,
	M_LIST,
	M_STATUS,
	M_SELECT,
	M_FETCH,
	M_FETCH2,
	M_STORE,
	M_DELETE,
	M_EXPUNGE,
	M_APPEND,
	M_LOGOUT,
	M_END
};

static uint32_t
pick_msg(struct client *c)
{
	return 1 + (uint32_t)(rnd(c) % c->exists);
}

/* Sends the command of state st; 0 when the state is skipped. */
static int
mixed_send(struct client *c, int st)
{
	switch (st) {
	case M_LOGIN:
		imap_login(c);
		return 1;
	case M_LIST:
		if (!chance(c, 50))
			return 0;
		imap_cmd(c, OP_LIST, "LIST \"\" \"*\"");
		return 1;
	case M_STATUS:
		if (!chance(c, 50))
			return 0;
		imap_cmd(c, OP_STATUS, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
		return 1;
	case M_SELECT:
		c->exists = 0;
		c->deleted = 0;
		imap_cmd(c, OP_SELECT, "SELECT INBOX");
		return 1;
	case M_FETCH: {
		if (c->exists == 0)
			return 0;
		uint32_t w = (uint32_t)cfg.fetch_window;
		uint32_t lo = 1, hi = c->exists;
		if (c->exists > w) {
			lo = 1 + (uint32_t)(rnd(c) % (c->exists - w + 1));
			hi = lo + w - 1;
		}
		imap_cmd(c, OP_FETCH,
			 "FETCH %u:%u (UID FLAGS RFC822.SIZE INTERNALDATE "
			 "ENVELOPE)",
			 lo, hi);
		return 1;
	}
	case M_FETCH2:
		if (c->exists == 0)
			return 0;
		imap_cmd(c, OP_FETCH_BODY, "FETCH %u BODY.PEEK[]", pick_msg(c));
		return 1;
	case M_STORE:
		if (c->exists == 0 || !chance(c, 50))
			return 0;
		imap_cmd(c, OP_STORE, "STORE %u %cFLAGS (\\Flagged)",
			 pick_msg(c), chance(c, 50) ? '+' : '-');
		return 1;
	case M_DELETE:
		if (c->exists == 0)
			return 0;
		imap_cmd(c, OP_DELETE, "STORE %u +FLAGS.SILENT (\\Deleted)",
			 pick_msg(c));
		return 1;
	case M_EXPUNGE:
		if (!c->deleted)
			return 0;
		imap_cmd(c, OP_EXPUNGE, "EXPUNGE");
		return 1;
	case M_APPEND:
		imap_append(c, OP_APPEND);
		return 1;
	case M_LOGOUT:
		imap_cmd(c, OP_LOGOUT, "LOGOUT");
		return 1;
	}
	return 0;
}

static void
mixed_step(struct client *c, int ok)
{
	if (!ok && (c->op == OP_CONNECT || c->op == OP_LOGIN ||
		    c->op == OP_SELECT)) {
		client_fail(c);
		return;
	}
	if (c->op == OP_DELETE && ok)
		c->deleted = 1;
	if (c->op == OP_LOGOUT) {
		if (ok)
			client_finish_session(c);
		client_drop(c);
		return;
	}
	for (;;) {
		c->step++;
		if (cfg.wl->stay && c->step == M_LOGOUT)
			c->step = M_LIST;
		if (c->step >= M_END)
			return;
		if (mixed_send(c, c->step))
			return;
	}
}

static void
fetch_step(struct client *c, int ok)
{
	if (!ok && (c->op == OP_CONNECT || c->op == OP_LOGIN ||
		    c->op == OP_SELECT)) {
		client_fail(c);
		return;
	}
	switch (c->op) {
	case OP_CONNECT:
		imap_login(c);
		return;
	case OP_LOGIN:
		imap_cmd(c, OP_SELECT, "SELECT INBOX");
		c->step = 0;
		return;
	default:
		break;
	}
	if (c->exists == 0) {
		note_error("imap-fetch: empty mailbox");
		client_fail(c);
		return;
	}
	/* one window of headers, then three whole messages */
	if (c->step++ % 4 == 0) {
		uint32_t w = (uint32_t)cfg.fetch_window;
		uint32_t lo = 1, hi = c->exists;
		if (c->exists > w) {
			lo = 1 + (uint32_t)(rnd(c) % (c->exists - w + 1));
			hi = lo + w - 1;
		}
		imap_cmd(c, OP_FETCH,
			 "FETCH %u:%u (UID FLAGS RFC822.SIZE INTERNALDATE "
			 "BODY.PEEK[HEADER])",
			 lo, hi);
	} else {
		imap_cmd(c, OP_FETCH_BODY, "FETCH %u BODY.PEEK[]", pick_msg(c));
	}
}

static void
append_step(struct client *c, int ok)
{
	if (!ok && (c->op == OP_CONNECT || c->op == OP_LOGIN)) {
		client_fail(c);
		return;
	}
	if (c->op == OP_CONNECT) {
		imap_login(c);
		return;
	}
	imap_append(c, OP_APPEND);
}

static void
storm_step(struct client *c, int ok)
{
	if (!ok) {
		client_fail(c);
		return;
	}
	switch (c->op) {
	case OP_CONNECT:
		imap_login(c);
		return;
	case OP_LOGIN:
		imap_cmd(c, OP_LOGOUT, "LOGOUT");
		return;
	default:
		client_finish_session(c);
		client_drop(c);
		return;
	}
}

static void
hop_step(struct client *c, int ok)
{
	if (!ok) {
		client_fail(c);
		return;
	}
	switch (c->op) {
	case OP_CONNECT:
		imap_login(c);
		return;
	case OP_SELECT:
		if (c->exists == 0) {
			note_error("hop-latency: empty mailbox");
			client_fail(c);
			return;
		}
		imap_cmd(c, OP_FETCH_BODY, "FETCH %u BODY.PEEK[]", pick_msg(c));
		return;
	case OP_FETCH_BODY:
		record(OP_SELECT_FETCH, now_ns() - c->t_pair, 1, 0);
		break;
	default: /* LOGIN */
		break;
	}
	c->exists = 0;
	imap_cmd(c, OP_SELECT, "SELECT INBOX");
	c->t_pair = c->t0;
}

/* ---- ldap-bind ---------------------------------------------------------- */

struct ldapc {
	LDAP *ld;
	uv_poll_t poll;
	int polling;
	int msgid;
	int user;
	uint64_t t0;
};

static struct ldapc *ldapcs;

static int
ldap_send(struct ldapc *l)
{
	char dn[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(dn, sizeof(dn), cfg.ldap_dn, cfg.user_base + l->user);
	char pw[256];
	snprintf(pw, sizeof(pw), cfg.pass_fmt, cfg.user_base + l->user);
#pragma GCC diagnostic pop
	struct berval cred = {(ber_len_t)strlen(pw), pw};
	l->t0 = now_ns();
	int rc = ldap_sasl_bind(l->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL,
				NULL, &l->msgid);
	if (rc != LDAP_SUCCESS) {
		note_error("ldap bind: %s", ldap_err2string(rc));
		record(OP_LOGIN, 0, 0, 0);
		if (measuring)
			conn_errors++;
		return -1;
	}
	return 0;
}

static void
ldap_on_poll(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct ldapc *l = p->data;
	if (status < 0) {
		note_error("ldap poll: %s", uv_strerror(status));
		uv_poll_stop(p);
		return;
	}
	for (;;) {
		struct timeval zero = {0, 0};
		LDAPMessage *msg = NULL;
		int rc = ldap_result(l->ld, l->msgid, LDAP_MSG_ALL, &zero, &msg);
		if (rc == 0)
			return;
		if (rc < 0) {
			int err = 0;
			ldap_get_option(l->ld, LDAP_OPT_RESULT_CODE, &err);
			note_error("ldap result: %s", ldap_err2string(err));
			record(OP_LOGIN, 0, 0, 0);
			if (measuring)
				conn_errors++;
			uv_poll_stop(p);
			return;
		}
		int err = LDAP_OTHER;
		if (ldap_parse_result(l->ld, msg, &err, NULL, NULL, NULL, NULL,
				      1) != LDAP_SUCCESS)
			err = LDAP_OTHER;
		record(OP_LOGIN, now_ns() - l->t0, err == LDAP_SUCCESS, 0);
		if (err != LDAP_SUCCESS)
			note_error("ldap bind: %s", ldap_err2string(err));
		if (stopping)
			return;
		l->user = (l->user + cfg.clients) % cfg.nusers;
		if (ldap_send(l) < 0) {
			uv_poll_stop(p);
			return;
		}
	}
}

static void
ldap_clients_start(void)
{
	char uri[300];
	snprintf(uri, sizeof(uri), "ldap://%s:%d/", cfg.host, cfg.port);
	ldapcs = calloc((size_t)cfg.clients, sizeof(*ldapcs));
	if (ldapcs == NULL)
		abort();
	for (int i = 0; i < cfg.clients; i++) {
		struct ldapc *l = &ldapcs[i];
		l->user = (cfg.client_base + i) % cfg.nusers;
		int version = LDAP_VERSION3;
		if (ldap_initialize(&l->ld, uri) != LDAP_SUCCESS) {
			note_error("ldap_initialize %s failed", uri);
			continue;
		}
		ldap_set_option(l->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
		/* the first bind connects (blocking, on loopback) */
		if (ldap_send(l) < 0)
			continue;
		int fd = -1;
		if (ldap_get_option(l->ld, LDAP_OPT_DESC, &fd) !=
			    LDAP_OPT_SUCCESS ||
		    fd < 0) {
			note_error("ldap: no descriptor");
			continue;
		}
		uv_poll_init(loop, &l->poll, fd);
		l->poll.data = l;
		l->polling = 1;
		uv_poll_start(&l->poll, UV_READABLE, ldap_on_poll);
	}
}

/* ---- idle-hold ---------------------------------------------------------- */

static int idle_ready, idle_failed, idle_started;
static int idle_delivery;     /* deliveries done */
static int idle_reached;      /* watchers that saw the current one */
static uint64_t idle_t_append, idle_t_ok, idle_t_all;
static int idle_in_delivery;
static struct client *appender;

struct memsum {
	unsigned procs;
	uint64_t rss_kb, pss_kb;
	uint64_t ticks;
	struct {
		char name[32];
		unsigned n;
		uint64_t rss_kb, pss_kb;
	} by[32];
	unsigned nby;
};

static struct memsum mem_before, mem_after, cpu_start, cpu_stop;
static struct rusage self_start;
static int mem_measured;

static void mem_measure(struct memsum *m);
static void proc_measure(struct memsum *m, int with_mem);
static void finish_run(void);
static void idle_next_delivery(uv_timer_t *t);
static void idle_start_more(void);

static void
idle_watcher_done(struct client *c, int ready)
{
	if (ready)
		idle_ready++;
	else
		idle_failed++;
	if (idle_ready + idle_failed == cfg.idle_conns) {
		fprintf(stderr, "loadgen: %d watchers in IDLE (%d failed) "
			"after %.1f s\n", idle_ready, idle_failed,
			(double)(now_ns() - t_start) / 1e9);
		/* let the servers settle, then measure and deliver */
		uv_timer_start(&idle_timer, idle_next_delivery, 1000, 0);
	} else {
		idle_start_more();
	}
}

static void
idle_start_more(void)
{
	while (idle_started < cfg.idle_conns &&
	       idle_started - idle_ready - idle_failed <
		       cfg.connect_parallel) {
		client_connect(&clients[idle_started++]);
	}
}

static void
idle_deliver_done(void)
{
	uint64_t t = now_ns();
	record(OP_DELIVERY_ALL, t - idle_t_append, 1, 0);
	idle_t_all = t;
	if (idle_t_ok != 0)
		record(OP_DELIVERY_AFTER_OK, t > idle_t_ok ? t - idle_t_ok : 0,
		       1, 0);
	idle_in_delivery = 0;
	idle_delivery++;
	uv_timer_start(&idle_timer, idle_next_delivery, 200, 0);
}

static void
idle_delivery_timeout(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "loadgen: delivery %d reached %d of %d watchers in "
		"%.1f s\n", idle_delivery + 1, idle_reached, idle_ready,
		cfg.delivery_timeout);
	note_error("delivery %d reached %d of %d watchers", idle_delivery + 1,
		   idle_reached, idle_ready);
	record(OP_DELIVERY_ALL, 0, 0, 0);
	idle_in_delivery = 0;
	idle_delivery++;
	/* a watcher that never saw it is no longer counted as ready */
	uv_timer_start(&idle_timer, idle_next_delivery, 200, 0);
}

static void
idle_next_delivery(uv_timer_t *t)
{
	(void)t;
	if (!mem_measured) {
		mem_measure(&mem_after);
		mem_measured = 1;
	}
	if (idle_delivery >= cfg.deliveries || idle_ready == 0 ||
	    appender->failed) {
		finish_run();
		return;
	}
	for (int i = 0; i < cfg.idle_conns; i++)
		clients[i].reached = 0;
	idle_reached = 0;
	idle_in_delivery = 1;
	idle_t_ok = 0;
	idle_t_all = 0;
	imap_append(appender, OP_APPEND);
	idle_t_append = appender->t0;
	uv_timer_start(&idle_timer, idle_delivery_timeout,
		       (uint64_t)(cfg.delivery_timeout * 1000), 0);
}

/* A watcher saw "* n EXISTS" while idling. */
static void
idle_exists(struct client *c, uint32_t n)
{
	if (n <= c->idle_exists)
		return;
	c->idle_exists = n;
	if (!idle_in_delivery || c->reached)
		return;
	c->reached = 1;
	record(OP_DELIVERY_EACH, now_ns() - idle_t_append, 1, 0);
	if (++idle_reached == idle_ready) {
		uv_timer_stop(&idle_timer);
		idle_deliver_done();
	}
}

/* IDLE's continuation request arrived. */
static void
idle_continuation(struct client *c)
{
	uint64_t dt = now_ns() - c->t0;
	record(OP_IDLE, dt, 1, 0);
	c->idling = 1;
	c->idle_exists = c->exists;
	c->waiting = W_TAG; /* the tagged reply only comes after DONE */
	idle_watcher_done(c, 1);
}

static void
idle_step(struct client *c, int ok)
{
	if (c == appender) {
		if (c->op == OP_APPEND) {
			if (!ok) {
				note_error("idle-hold: APPEND failed");
				c->failed = 1;
			}
			idle_t_ok = now_ns();
			/* every watcher saw it before the OK came */
			if (ok && idle_t_all != 0)
				record(OP_DELIVERY_AFTER_OK, 0, 1, 0);
			return;
		}
		if (!ok) {
			note_error("idle-hold: the appender could not log in");
			c->failed = 1;
			client_drop(c);
			finish_run();
			return;
		}
		if (c->op == OP_CONNECT) {
			imap_login(c);
			return;
		}
		/* logged in: start the watchers */
		idle_start_more();
		return;
	}
	if (!ok) {
		c->failed = 1;
		client_drop(c);
		idle_watcher_done(c, 0);
		return;
	}
	switch (c->op) {
	case OP_CONNECT:
		imap_login(c);
		return;
	case OP_LOGIN:
		imap_cmd(c, OP_SELECT, "SELECT INBOX");
		return;
	case OP_SELECT:
		imap_cmd(c, OP_IDLE, "IDLE");
		return;
	default:
		return;
	}
}

/* ---- POP3 ---------------------------------------------------------------- */

enum pop_state { PS_USER = 1, PS_PASS, PS_STAT, PS_LIST, PS_RETR, PS_QUIT };

static void
pop3_step(struct client *c, int ok)
{
	if (!ok) {
		client_fail(c);
		return;
	}
	char u[256];
	switch (c->step) {
	case 0: /* greeting */
		user_name(c, u, sizeof(u), 0);
		c->step = PS_USER;
		pop_cmd(c, OP_NONE, 0, "USER %s", u);
		c->t_user = c->t0;
		return;
	case PS_USER:
		user_name(c, u, sizeof(u), 1);
		c->step = PS_PASS;
		pop_cmd(c, OP_LOGIN, 0, "PASS %s", u);
		c->t0 = c->t_user;
		return;
	case PS_PASS:
		c->step = PS_STAT;
		pop_cmd(c, OP_STAT, 0, "STAT");
		return;
	case PS_STAT:
		c->step = PS_LIST;
		pop_cmd(c, OP_LIST, 1, "LIST");
		c->pop_i = 0;
		return;
	case PS_LIST:
	case PS_RETR:
		if (c->pop_i < c->pop_msgs) {
			c->step = PS_RETR;
			c->pop_i++;
			pop_cmd(c, OP_RETR, 1, "RETR %u", c->pop_i);
			return;
		}
		c->step = PS_QUIT;
		pop_cmd(c, OP_QUIT, 0, "QUIT");
		return;
	case PS_QUIT:
		client_finish_session(c);
		client_drop(c);
		return;
	}
}

/* ---- SMTP ------------------------------------------------------------------- */

enum smtp_state { SS_EHLO = 1, SS_AUTH, SS_MAIL, SS_RCPT, SS_DATA,
		  SS_BODY, SS_QUIT };

static void smtp_cmd(struct client *c, int op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
smtp_cmd(struct client *c, int op, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		abort();
	line[n++] = '\r';
	line[n++] = '\n';
	begin_cmd(c, op, W_SMTP);
	send_line(c, line, (size_t)n);
}

static size_t
base64(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static void
smtp_step(struct client *c, int ok)
{
	if (!ok) {
		client_fail(c);
		return;
	}
	char u[256], p[256];
	switch (c->step) {
	case 0: /* greeting */
		c->step = SS_EHLO;
		smtp_cmd(c, OP_EHLO, "EHLO loadgen.example.test");
		return;
	case SS_EHLO: {
		unsigned char raw[520];
		char b64[700];
		user_name(c, u, sizeof(u), 0);
		user_name(c, p, sizeof(p), 1);
		int n = snprintf((char *)raw, sizeof(raw), "%c%s%c%s", 0, u, 0,
				 p);
		base64(raw, (size_t)n, b64);
		c->step = SS_AUTH;
		smtp_cmd(c, OP_LOGIN, "AUTH PLAIN %s", b64);
		return;
	}
	case SS_AUTH:
		user_name(c, u, sizeof(u), 0);
		c->step = SS_MAIL;
		smtp_cmd(c, OP_MAIL, "MAIL FROM:<%s>", u);
		c->t_pair = c->t0;
		return;
	case SS_MAIL:
		user_name(c, u, sizeof(u), 0);
		c->step = SS_RCPT;
		smtp_cmd(c, OP_RCPT, "RCPT TO:<%s>", u);
		return;
	case SS_RCPT:
		c->step = SS_DATA;
		smtp_cmd(c, OP_NONE, "DATA");
		c->t_user = c->t0;
		return;
	case SS_DATA: { /* 354: the message, then the dot */
		size_t avg = (size_t)cfg.append_size;
		size_t size = avg / 2 + (size_t)(rnd(c) % (avg + 1));
		size_t len = make_message(c, size);
		c->step = SS_BODY;
		begin_cmd(c, OP_DATA, W_SMTP);
		c->t0 = c->t_user;
		conn_write(&c->conn, c->msg, len);
		conn_write(&c->conn, ".\r\n", 3);
		return;
	}
	case SS_BODY:
		record(OP_SUBMIT, now_ns() - c->t_pair, 1, 0);
		c->step = SS_QUIT;
		smtp_cmd(c, OP_QUIT, "QUIT");
		return;
	case SS_QUIT:
		client_finish_session(c);
		client_drop(c);
		return;
	}
}

/* Reply lines are "NNN-text" (more follow) or "NNN text" (last). */
static void
smtp_line(struct client *c, const char *l, size_t n)
{
	if (c->waiting == W_NONE || n < 3 || !isdigit((unsigned char)l[0]))
		return;
	if (n > 3 && l[3] == '-')
		return;
	int ok = l[0] == '2' || l[0] == '3';
	if (!ok)
		note_error("%s: %.200s",
			   c->op >= 0 ? op_names[c->op] : "DATA", l);
	finish_cmd(c, ok);
}

/* ---- response reader ---------------------------------------------------- */

/* n if the line ends with a literal announcement "{n}" (or "~{n}"), else
 * -1. */
static int64_t
literal_at_end(const char *l, size_t n)
{
	if (n < 3 || l[n - 1] != '}')
		return -1;
	size_t i = n - 2;
	uint64_t v = 0, mul = 1;
	while (i > 0 && isdigit((unsigned char)l[i])) {
		v += (uint64_t)(l[i] - '0') * mul;
		mul *= 10;
		i--;
	}
	if (l[i] != '{' || i == n - 2)
		return -1;
	return (int64_t)v;
}

static uint32_t
parse_u32(const char *p, const char **end)
{
	uint32_t v = 0;
	while (isdigit((unsigned char)*p))
		v = v * 10 + (uint32_t)(*p++ - '0');
	*end = p;
	return v;
}

static void
imap_line(struct client *c, char *l, size_t n)
{
	int64_t lit = literal_at_end(l, n);
	int was_cont = c->line_cont;
	c->line_cont = lit >= 0;
	if (lit > 0)
		c->literal_left = (uint64_t)lit;
	if (was_cont)
		return;
	l[n] = '\0';
	if (c->waiting == W_GREETING) {
		finish_cmd(c, strncmp(l, "* OK", 4) == 0);
		return;
	}
	if (l[0] == '+') {
		if (c->lit != NULL) {
			conn_write(&c->conn, c->lit, c->litlen);
			conn_write(&c->conn, "\r\n", 2);
			c->lit = NULL;
		} else if (c->op == OP_IDLE && !c->idling) {
			idle_continuation(c);
		}
		return;
	}
	if (l[0] == '*' && l[1] == ' ') {
		if (isdigit((unsigned char)l[2])) {
			const char *e;
			uint32_t num = parse_u32(l + 2, &e);
			if (strncmp(e, " EXISTS", 7) == 0) {
				c->exists = num;
				if (c->idling)
					idle_exists(c, num);
			} else if (strncmp(e, " EXPUNGE", 8) == 0) {
				if (c->exists > 0)
					c->exists--;
			}
		} else if (strncmp(l, "* BYE", 5) == 0 && c->op != OP_LOGOUT) {
			note_error("server said: %.200s", l);
		}
		return;
	}
	if (c->waiting == W_TAG && n > c->taglen &&
	    memcmp(l, c->tag, c->taglen) == 0) {
		int ok = strncmp(l + c->taglen, "OK", 2) == 0;
		if (!ok)
			note_error("%s: %.200s", op_names[c->op], l);
		c->lit = NULL;
		finish_cmd(c, ok);
	}
}

static void
pop3_line(struct client *c, char *l, size_t n)
{
	l[n] = '\0';
	if (c->waiting == W_POP_MULTI) {
		if (n == 1 && l[0] == '.')
			finish_cmd(c, 1);
		return;
	}
	int ok = strncmp(l, "+OK", 3) == 0;
	if (c->waiting == W_GREETING) {
		finish_cmd(c, ok);
		return;
	}
	if (c->waiting != W_POP)
		return;
	if (!ok)
		note_error("%s: %.200s", c->op >= 0 ? op_names[c->op] : "USER",
			   l);
	if (ok && c->op == OP_STAT) {
		const char *e;
		c->pop_msgs = parse_u32(l + 4, &e);
	}
	if (ok && c->pop_multi_wanted) {
		c->waiting = W_POP_MULTI;
		return;
	}
	finish_cmd(c, ok);
}

static void
line_append(struct client *c, const char *p, size_t n)
{
	while (n > 0) {
		if (c->ll == LINE_KEEP - 1) {
			/* keep the head and a sliding tail */
			size_t tail = LINE_KEEP - 1 - LINE_HEAD;
			memmove(c->line + LINE_HEAD, c->line + LINE_HEAD + tail / 2,
				tail - tail / 2);
			c->ll = LINE_HEAD + (tail - tail / 2);
		}
		size_t room = LINE_KEEP - 1 - c->ll;
		size_t k = n < room ? n : room;
		memcpy(c->line + c->ll, p, k);
		c->ll += k;
		p += k;
		n -= k;
	}
}

static void
on_read(struct conn *conn, const char *data, size_t len)
{
	struct client *c = (struct client *)conn;
	c->bytes += len;
	if (measuring)
		bytes_in += len;
	while (len > 0 && !c->conn.closing) {
		if (c->literal_left > 0) {
			size_t k = len < c->literal_left ? len
							  : (size_t)c->literal_left;
			c->literal_left -= k;
			data += k;
			len -= k;
			continue;
		}
		const char *nl = memchr(data, '\n', len);
		size_t take = nl != NULL ? (size_t)(nl - data) + 1 : len;
		line_append(c, data, take);
		data += take;
		len -= take;
		if (nl == NULL)
			break;
		size_t n = c->ll;
		c->ll = 0;
		while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r'))
			n--;
		switch (cfg.wl->proto) {
		case P_IMAP:
			imap_line(c, c->line, n);
			break;
		case P_POP3:
			c->line[n] = '\0';
			pop3_line(c, c->line, n);
			break;
		case P_SMTP:
			smtp_line(c, c->line, n);
			break;
		case P_LDAP:
			abort();
		}
	}
}

/* ---- connection life ----------------------------------------------------- */

static void
client_finish_session(struct client *c)
{
	record(OP_SESSION, now_ns() - c->session_t0, 1, 0);
}

static void
on_error(struct conn *conn, const char *why)
{
	struct client *c = (struct client *)conn;
	if (stopping)
		return;
	if (measuring)
		conn_errors++;
	note_error("connection: %s", why);
	if (c->waiting != W_NONE)
		record(c->op, 0, 0, 0);
	c->waiting = W_NONE;
	if (cfg.wl->step == idle_step && !c->failed) {
		c->failed = 1;
		if (c == appender) {
			finish_run();
		} else if (!c->idling) {
			idle_watcher_done(c, 0);
		} else {
			idle_ready--;
			idle_failed++;
		}
	}
}

/* ---- --rate: sessions started on a schedule ------------------------------ */

static struct client *free_clients;
static uint64_t pace_next, pace_interval; /* ns */

/* Starts every session that is due, as long as clients are free; a start
 * that finds none stays due (and late) until one is. */
static void
pace_run(void)
{
	uint64_t now = now_ns();
	while (!stopping && pace_next <= now && free_clients != NULL) {
		struct client *c = free_clients;
		free_clients = c->next_free;
		record(OP_START_LAG, now - pace_next, 1, 0);
		pace_next += pace_interval;
		client_connect(c);
	}
}

static void
pace_cb(uv_timer_t *t)
{
	(void)t;
	pace_run();
}

static void
pace_free(struct client *c)
{
	c->next_free = free_clients;
	free_clients = c;
	pace_run();
}

/* The client's next session: at once, or when the schedule says. */
static void
client_next(struct client *c)
{
	if (cfg.rate > 0)
		pace_free(c);
	else
		client_connect(c);
}

static void
retry_cb(uv_timer_t *t)
{
	client_next(t->data);
}

static void
on_closed(struct conn *conn)
{
	struct client *c = (struct client *)conn;
	c->open = 0;
	if (stopping || cfg.wl->step == idle_step)
		return;
	/* next session; after a failure, a short pause */
	if (c->failed) {
		c->failed = 0;
		uv_timer_start(&c->timer, retry_cb, 20, 0);
	} else {
		client_next(c);
	}
}

/* The first connection's TLS version and cipher, for the report. */
static char tls_desc[128];

static void
on_tls_ready(struct conn *conn)
{
	if (tls_desc[0] == '\0')
		conn_tls_desc(conn, tls_desc, sizeof(tls_desc));
	if (measuring) {
		tls_handshakes++;
		tls_resumed += SSL_session_reused(conn->ssl) ? 1 : 0;
	}
}

static const struct conn_ops client_ops = {
	.read = on_read,
	.tls_ready = on_tls_ready,
	.error = on_error,
	.closed = on_closed,
};

static void
on_connect(struct conn *conn, int status)
{
	struct client *c = (struct client *)conn;
	if (status < 0) {
		if (measuring)
			conn_errors++;
		note_error("connect: %s", uv_strerror(status));
		record(OP_CONNECT, 0, 0, 0);
		if (cfg.wl->step == idle_step) {
			c->failed = 1;
			if (c == appender)
				finish_run();
			else
				idle_watcher_done(c, 0);
		} else {
			c->failed = 1;
		}
		conn_abort(&c->conn);
		return;
	}
	if (conn_read_start(&c->conn) < 0 ||
	    (cfg.tls &&
	     conn_start_tls_resume(&c->conn, tls_ctx, cfg.sni,
				   cfg.resume ? c->tls_session : NULL) < 0)) {
		c->failed = 1;
		conn_abort(&c->conn);
	}
}

static void
client_connect(struct client *c)
{
	if (stopping)
		return;
	c->ll = 0;
	c->literal_left = 0;
	c->line_cont = 0;
	c->lit = NULL;
	c->step = 0;
	c->exists = 0;
	c->idling = 0;
	c->failed = 0;
	c->tagn = 0;
	c->session_t0 = now_ns();
	begin_cmd(c, OP_CONNECT, W_GREETING);
	c->t0 = c->session_t0;
	if (conn_init(loop, &c->conn, &client_ops, c) < 0) {
		note_error("conn_init failed");
		c->failed = 1;
		uv_timer_start(&c->timer, retry_cb, 100, 0);
		return;
	}
	c->open = 1;
	int rc = conn_connect(&c->conn, (struct sockaddr *)&target, on_connect);
	if (rc < 0) {
		note_error("connect: %s", uv_strerror(rc));
		c->failed = 1;
		conn_abort(&c->conn);
	}
}

/* ---- memory of the server's processes (/proc) ----------------------------- */

struct procent {
	int pid, ppid;
	char comm[32];
	uint64_t ticks; /* utime + stime + cutime + cstime */
};

static int
procent_cmp(const void *a, const void *b)
{
	const struct procent *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int
read_stat(int pid, struct procent *e)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *lp = strchr(buf, '(');
	char *rp = strrchr(buf, ')');
	if (lp == NULL || rp == NULL || rp < lp)
		return -1;
	size_t cl = (size_t)(rp - lp - 1);
	if (cl >= sizeof(e->comm))
		cl = sizeof(e->comm) - 1;
	memcpy(e->comm, lp + 1, cl);
	e->comm[cl] = '\0';
	char state;
	unsigned long ut, st;
	long cut, cst;
	if (sscanf(rp + 1,
		   " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
		   &state, &e->ppid, &ut, &st, &cut, &cst) != 6)
		return -1;
	e->ticks = (uint64_t)ut + st + (uint64_t)(cut > 0 ? cut : 0) +
		   (uint64_t)(cst > 0 ? cst : 0);
	e->pid = pid;
	return 0;
}

static void
read_smaps(int pid, uint64_t *rss, uint64_t *pss)
{
	char path[64], line[256];
	*rss = *pss = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			unsigned long long v;
			if (sscanf(line, "Rss: %llu kB", &v) == 1)
				*rss = v;
			else if (sscanf(line, "Pss: %llu kB", &v) == 1)
				*pss = v;
		}
		fclose(f);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long v;
		if (sscanf(line, "VmRSS: %llu kB", &v) == 1)
			*rss = *pss = v;
	}
	fclose(f);
}

/* Sums the memory and CPU time of the --mem-pid processes and all their
 * descendants (CPU only when !with_mem). */
static void
proc_measure(struct memsum *m, int with_mem)
{
	memset(m, 0, sizeof(*m));
	if (cfg.n_mem_pids == 0)
		return;
	size_t n = 0, cap = 1024;
	struct procent *v = malloc(cap * sizeof(*v));
	DIR *d = opendir("/proc");
	if (v == NULL || d == NULL)
		abort();
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		if (read_stat(atoi(de->d_name), &v[n]) == 0)
			n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), procent_cmp);
	for (size_t i = 0; i < n; i++) {
		int included = 0;
		struct procent *e = &v[i];
		for (int depth = 0; e != NULL && depth < 64 && !included;
		     depth++) {
			for (int k = 0; k < cfg.n_mem_pids; k++)
				if (e->pid == cfg.mem_pids[k])
					included = 1;
			struct procent key = {.pid = e->ppid};
			e = e->ppid > 0 ? bsearch(&key, v, n, sizeof(*v),
						  procent_cmp)
					: NULL;
		}
		if (!included)
			continue;
		m->ticks += v[i].ticks;
		if (!with_mem) {
			m->procs++;
			continue;
		}
		uint64_t rss, pss;
		read_smaps(v[i].pid, &rss, &pss);
		m->procs++;
		m->rss_kb += rss;
		m->pss_kb += pss;
		unsigned j;
		for (j = 0; j < m->nby; j++)
			if (strcmp(m->by[j].name, v[i].comm) == 0)
				break;
		if (j == m->nby && m->nby < 32) {
			snprintf(m->by[j].name, sizeof(m->by[j].name), "%s",
				 v[i].comm);
			m->nby++;
		}
		if (j < m->nby) {
			m->by[j].n++;
			m->by[j].rss_kb += rss;
			m->by[j].pss_kb += pss;
		}
	}
	free(v);
}

static void
mem_measure(struct memsum *m)
{
	proc_measure(m, 1);
}

/* ---- output ------------------------------------------------------------- */

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void
json_mem(FILE *f, const char *name, const struct memsum *m)
{
	fprintf(f, "\"%s\": {\"procs\": %u, \"rss_kb\": %" PRIu64
		   ", \"pss_kb\": %" PRIu64 ", \"by_process\": [",
		name, m->procs, m->rss_kb, m->pss_kb);
	for (unsigned j = 0; j < m->nby; j++) {
		fprintf(f, "%s{\"name\": ", j ? ", " : "");
		json_str(f, m->by[j].name);
		fprintf(f, ", \"count\": %u, \"rss_kb\": %" PRIu64
			   ", \"pss_kb\": %" PRIu64 "}",
			m->by[j].n, m->by[j].rss_kb, m->by[j].pss_kb);
	}
	fprintf(f, "]}");
}

static void
report(void)
{
	double secs = (double)(t_stop - t_measure) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	uint64_t commands = stats[OP_COMMAND].h.count;
	struct rusage self;
	getrusage(RUSAGE_SELF, &self);
	double self_cpu =
		(double)(self.ru_utime.tv_sec - self_start.ru_utime.tv_sec) +
		(double)(self.ru_stime.tv_sec - self_start.ru_stime.tv_sec) +
		(double)(self.ru_utime.tv_usec - self_start.ru_utime.tv_usec) /
			1e6 +
		(double)(self.ru_stime.tv_usec - self_start.ru_stime.tv_usec) /
			1e6;
	double server_cpu = -1;
	if (cfg.n_mem_pids > 0 && cpu_stop.ticks >= cpu_start.ticks)
		server_cpu = (double)(cpu_stop.ticks - cpu_start.ticks) /
			     (double)sysconf(_SC_CLK_TCK);
	FILE *f = stdout;
	fprintf(f, "{\"workload\": ");
	json_str(f, cfg.wl->name);
	fprintf(f, ", \"label\": ");
	json_str(f, cfg.label);
	fprintf(f, ", \"host\": ");
	json_str(f, cfg.host);
	fprintf(f, ", \"port\": %d, \"tls\": %s, \"clients\": %d, "
		   "\"seconds\": %.3f, \"commands\": %" PRIu64
		   ", \"commands_per_s\": %.1f, \"bytes_in\": %" PRIu64
		   ", \"bytes_in_per_s\": %.1f, \"connection_errors\": %" PRIu64
		   ", \"timed_out\": %s, \"first_error\": ",
		cfg.port, cfg.tls ? "true" : "false",
		cfg.wl->step == idle_step ? cfg.idle_conns : cfg.clients, secs,
		commands, (double)commands / secs, bytes_in,
		(double)bytes_in / secs, conn_errors,
		timed_out ? "true" : "false");
	json_str(f, first_error);
	fprintf(f, ", \"tls_cipher\": ");
	json_str(f, tls_desc);
	fprintf(f, ", \"loadgen_cpu_s\": %.3f, \"server_cpu_s\": %.3f",
		self_cpu, server_cpu);
	fprintf(f,
		", \"tls_resume\": %s, \"tls_handshakes\": %" PRIu64
		", \"tls_resumed\": %" PRIu64,
		cfg.resume ? "true" : "false", tls_handshakes, tls_resumed);
	fprintf(f, ", \"ops\": {");
	int first = 1;
	for (int op = 0; op < OP_COUNT; op++) {
		struct opstat *s = &stats[op];
		if (s->h.count == 0 && s->errors == 0)
			continue;
		fprintf(f, "%s\"%s\": {\"count\": %" PRIu64
			   ", \"errors\": %" PRIu64 ", \"per_s\": %.2f, "
			   "\"p50_ms\": %.3f, \"p99_ms\": %.3f, "
			   "\"p999_ms\": %.3f, \"max_ms\": %.3f, "
			   "\"mean_ms\": %.3f, \"bytes\": %" PRIu64,
			first ? "" : ", ", op_names[op], s->h.count, s->errors,
			(double)s->h.count / secs, hist_pct_ms(&s->h, 0.5),
			hist_pct_ms(&s->h, 0.99), hist_pct_ms(&s->h, 0.999),
			(double)s->h.max / 1e6,
			s->h.count ? (double)s->h.sum / (double)s->h.count / 1e6
				   : 0.0,
			s->bytes);
		/* the histogram itself, for merging the output of several
		   processes: [bucket value in ns, count] */
		fprintf(f, ", \"min_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64
			   ", \"hist\": [", s->h.min, s->h.max);
		int hfirst = 1;
		for (unsigned i = 0; i < HIST_BUCKETS; i++) {
			if (s->h.b[i] == 0)
				continue;
			fprintf(f, "%s[%" PRIu64 ", %u]", hfirst ? "" : ", ",
				hist_value(i), s->h.b[i]);
			hfirst = 0;
		}
		fprintf(f, "]}");
		first = 0;
	}
	fprintf(f, "}");
	if (cfg.wl->step == idle_step) {
		fprintf(f, ", \"idle\": {\"watchers\": %d, \"ready\": %d, "
			   "\"failed\": %d, \"deliveries\": %d}",
			cfg.idle_conns, idle_ready, idle_failed, idle_delivery);
	}
	if (cfg.n_mem_pids > 0) {
		if (!mem_measured)
			mem_measure(&mem_after);
		int conns = cfg.wl->step == idle_step ? idle_ready
						       : cfg.clients;
		fprintf(f, ", \"memory\": {");
		json_mem(f, "before", &mem_before);
		fprintf(f, ", ");
		json_mem(f, "after", &mem_after);
		double d_rss = (double)mem_after.rss_kb - (double)mem_before.rss_kb;
		double d_pss = (double)mem_after.pss_kb - (double)mem_before.pss_kb;
		fprintf(f, ", \"connections\": %d, \"per_conn_rss_kb\": %.1f, "
			   "\"per_conn_pss_kb\": %.1f, \"total_per_conn_rss_kb\": "
			   "%.1f, \"total_per_conn_pss_kb\": %.1f}",
			conns, conns ? d_rss / conns : 0.0,
			conns ? d_pss / conns : 0.0,
			conns ? (double)mem_after.rss_kb / conns : 0.0,
			conns ? (double)mem_after.pss_kb / conns : 0.0);
	}
	fprintf(f, "}\n");
	fflush(f);

	/* the human summary */
	fprintf(stderr, "%s%s%s%s on %s:%d, %.1f s: %.0f commands/s, "
		"%.2f MB/s in, %" PRIu64 " connection errors, CPU %.2f s "
		"(server) %.2f s (loadgen)%s%s\n",
		cfg.wl->name, cfg.label[0] ? " " : "", cfg.label,
		cfg.tls ? " (TLS)" : "", cfg.host, cfg.port, secs,
		(double)commands / secs, (double)bytes_in / secs / 1e6,
		conn_errors, server_cpu, self_cpu,
		first_error[0] ? "; first error: " : "", first_error);
	fprintf(stderr, "  %-18s %9s %7s %10s %9s %9s %9s\n", "operation",
		"count", "errors", "per s", "p50 ms", "p99 ms", "p999 ms");
	for (int op = 0; op < OP_COUNT; op++) {
		struct opstat *s = &stats[op];
		if (s->h.count == 0 && s->errors == 0)
			continue;
		fprintf(stderr,
			"  %-18s %9" PRIu64 " %7" PRIu64
			" %10.1f %9.3f %9.3f %9.3f\n",
			op_names[op], s->h.count, s->errors,
			(double)s->h.count / secs, hist_pct_ms(&s->h, 0.5),
			hist_pct_ms(&s->h, 0.99), hist_pct_ms(&s->h, 0.999));
	}
	if (cfg.n_mem_pids > 0)
		fprintf(stderr, "  memory: %u processes, RSS %" PRIu64
			" -> %" PRIu64 " kB, PSS %" PRIu64 " -> %" PRIu64
			" kB\n",
			mem_after.procs, mem_before.rss_kb, mem_after.rss_kb,
			mem_before.pss_kb, mem_after.pss_kb);
}

static void
finish_run(void)
{
	if (stopping)
		return;
	stopping = 1;
	t_stop = now_ns();
	if (cfg.n_mem_pids > 0)
		proc_measure(&cpu_stop, 0);
	report();
	/* no orderly teardown: the servers see the connections drop */
	fflush(NULL);
	_exit(0);
}

static void
on_stop(uv_timer_t *t)
{
	(void)t;
	finish_run();
}

static void
on_hard_timeout(uv_timer_t *t)
{
	(void)t;
	note_error("run stopped after --timeout %.0f s", cfg.timeout);
	if (!measuring) {
		measuring = 1;
		t_measure = t_start;
	}
	timed_out = 1;
	stopping = 1;
	t_stop = now_ns();
	if (cfg.n_mem_pids > 0)
		proc_measure(&cpu_stop, 0);
	report();
	fflush(NULL);
	_exit(1);
}

static void
on_warm(uv_timer_t *t)
{
	(void)t;
	measuring = 1;
	t_measure = now_ns();
	getrusage(RUSAGE_SELF, &self_start);
	if (cfg.n_mem_pids > 0)
		proc_measure(&cpu_start, 0);
	uv_timer_start(&stop_timer, on_stop, (uint64_t)(cfg.duration * 1000),
		       0);
}

/* ---- main ---------------------------------------------------------------- */

static const struct workload workloads[] = {
	{"imap-mixed", P_IMAP, mixed_step, 0, NULL},
	{"imap-mixed-stay", P_IMAP, mixed_step, 1, NULL},
	{"imap-fetch", P_IMAP, fetch_step, 0, NULL},
	{"imap-append", P_IMAP, append_step, 0, NULL},
	{"pop3-download", P_POP3, pop3_step, 0, NULL},
	{"login-storm", P_IMAP, storm_step, 0, NULL},
	{"idle-hold", P_IMAP, idle_step, 0, NULL},
	{"hop-latency", P_IMAP, hop_step, 0, NULL},
	{"ldap-bind", P_LDAP, NULL, 0, NULL},
	{"smtp-submit", P_SMTP, smtp_step, 0, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --port N --workload NAME [options]\n"
		"  --host ADDR          server address (127.0.0.1)\n"
		"  --port N             server port\n"
		"  --tls                implicit TLS (IMAPS/POP3S)\n"
		"  --ca FILE            CA to verify the server with (TLS)\n"
		"  --sni NAME           name sent and verified (localhost)\n"
		"  --resume             each client offers the TLS session of\n"
		"                       its last connection (tickets)\n"
		"  --workload NAME      imap-mixed imap-mixed-stay imap-fetch\n"
		"                       imap-append pop3-download login-storm\n"
		"                       idle-hold hop-latency ldap-bind\n"
		"                       smtp-submit\n"
		"  --clients N          concurrent clients (16)\n"
		"  --rate R             start R sessions a second (open loop;\n"
		"                       --clients at most at once)\n"
		"  --duration S         measured seconds (10)\n"
		"  --warmup S           seconds before measuring (1)\n"
		"  --timeout S          hard limit of the whole run (600)\n"
		"  --user FMT           login, one %%d for the user number\n"
		"                       (bench%%d@example.test)\n"
		"  --password FMT       password, may use %%d (bench-password)\n"
		"  --users N            users, client i uses user i %% N (1)\n"
		"  --user-base N        number of the first user (0)\n"
		"  --client-base N      client 0 counts as client N for\n"
		"                       --users (one of several processes)\n"
		"  --fetch-window N     messages per header FETCH (20)\n"
		"  --append-size N      mean APPEND size in bytes (4096)\n"
		"  --idle-conns N       idle-hold: watchers (100)\n"
		"  --deliveries N       idle-hold: deliveries timed (10)\n"
		"  --delivery-timeout S idle-hold: wait per delivery (10)\n"
		"  --connect-parallel N idle-hold: logins in flight (64)\n"
		"  --mem-pid PID        measure PID and descendants (repeat)\n"
		"  --ldap-dn FMT        ldap-bind: DN, one %%d for the user\n"
		"                       number (uid=bench%%d@example.test,\n"
		"                       ou=people,dc=example,dc=test)\n"
		"  --label TEXT         copied into the JSON output\n");
}

static int
check_fmt(const char *fmt)
{
	int conversions = 0;
	for (const char *p = fmt; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
			continue;
		}
		if (p[1] != 'd')
			return -1;
		conversions++;
	}
	return conversions <= 1 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_TLS,
		O_CA,
		O_SNI,
		O_RESUME,
		O_WORKLOAD,
		O_CLIENTS,
		O_RATE,
		O_DURATION,
		O_WARMUP,
		O_TIMEOUT,
		O_USER,
		O_PASS,
		O_USERS,
		O_USER_BASE,
		O_CLIENT_BASE,
		O_FETCH_WINDOW,
		O_APPEND_SIZE,
		O_IDLE_CONNS,
		O_DELIVERIES,
		O_DELIVERY_TIMEOUT,
		O_CONNECT_PARALLEL,
		O_MEM_PID,
		O_LABEL,
		O_LDAP_DN,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"host", required_argument, NULL, O_HOST},
	    {"port", required_argument, NULL, O_PORT},
	    {"tls", no_argument, NULL, O_TLS},
	    {"ca", required_argument, NULL, O_CA},
	    {"sni", required_argument, NULL, O_SNI},
	    {"resume", no_argument, NULL, O_RESUME},
	    {"workload", required_argument, NULL, O_WORKLOAD},
	    {"clients", required_argument, NULL, O_CLIENTS},
	    {"rate", required_argument, NULL, O_RATE},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"user", required_argument, NULL, O_USER},
	    {"password", required_argument, NULL, O_PASS},
	    {"users", required_argument, NULL, O_USERS},
	    {"user-base", required_argument, NULL, O_USER_BASE},
	    {"client-base", required_argument, NULL, O_CLIENT_BASE},
	    {"fetch-window", required_argument, NULL, O_FETCH_WINDOW},
	    {"append-size", required_argument, NULL, O_APPEND_SIZE},
	    {"idle-conns", required_argument, NULL, O_IDLE_CONNS},
	    {"deliveries", required_argument, NULL, O_DELIVERIES},
	    {"delivery-timeout", required_argument, NULL, O_DELIVERY_TIMEOUT},
	    {"connect-parallel", required_argument, NULL, O_CONNECT_PARALLEL},
	    {"mem-pid", required_argument, NULL, O_MEM_PID},
	    {"label", required_argument, NULL, O_LABEL},
	    {"ldap-dn", required_argument, NULL, O_LDAP_DN},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *wname = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case O_HOST: cfg.host = optarg; break;
		case O_PORT: cfg.port = atoi(optarg); break;
		case O_TLS: cfg.tls = 1; break;
		case O_CA: cfg.ca = optarg; break;
		case O_SNI: cfg.sni = optarg; break;
		case O_RESUME:
			cfg.resume = 1;
			break;
		case O_WORKLOAD: wname = optarg; break;
		case O_CLIENTS: cfg.clients = atoi(optarg); break;
		case O_RATE: cfg.rate = atof(optarg); break;
		case O_DURATION: cfg.duration = atof(optarg); break;
		case O_WARMUP: cfg.warmup = atof(optarg); break;
		case O_TIMEOUT: cfg.timeout = atof(optarg); break;
		case O_USER: cfg.user_fmt = optarg; break;
		case O_PASS: cfg.pass_fmt = optarg; break;
		case O_USERS: cfg.nusers = atoi(optarg); break;
		case O_USER_BASE: cfg.user_base = atoi(optarg); break;
		case O_CLIENT_BASE: cfg.client_base = atoi(optarg); break;
		case O_FETCH_WINDOW: cfg.fetch_window = atoi(optarg); break;
		case O_APPEND_SIZE: cfg.append_size = atoi(optarg); break;
		case O_IDLE_CONNS: cfg.idle_conns = atoi(optarg); break;
		case O_DELIVERIES: cfg.deliveries = atoi(optarg); break;
		case O_DELIVERY_TIMEOUT:
			cfg.delivery_timeout = atof(optarg);
			break;
		case O_CONNECT_PARALLEL:
			cfg.connect_parallel = atoi(optarg);
			break;
		case O_MEM_PID:
			if (cfg.n_mem_pids == MAX_MEM_PIDS) {
				fprintf(stderr, "loadgen: too many --mem-pid\n");
				return 2;
			}
			cfg.mem_pids[cfg.n_mem_pids++] = atoi(optarg);
			break;
		case O_LABEL: cfg.label = optarg; break;
		case O_LDAP_DN: cfg.ldap_dn = optarg; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	for (size_t i = 0; wname != NULL &&
			   i < sizeof(workloads) / sizeof(workloads[0]);
	     i++)
		if (strcmp(workloads[i].name, wname) == 0)
			cfg.wl = &workloads[i];
	if (cfg.wl == NULL || cfg.port <= 0 || cfg.port > 65535 ||
	    cfg.clients < 1 || cfg.nusers < 1 || cfg.duration <= 0 ||
	    cfg.idle_conns < 1 || cfg.fetch_window < 1 ||
	    cfg.append_size < 256 || cfg.connect_parallel < 1 ||
	    check_fmt(cfg.user_fmt) < 0 || check_fmt(cfg.pass_fmt) < 0 ||
	    check_fmt(cfg.ldap_dn) < 0) {
		usage(stderr);
		return 2;
	}
	/* a schedule of sessions: for the workloads whose sessions end */
	if (!(cfg.rate >= 0 && cfg.rate <= 1e6) ||
	    (cfg.rate > 0 && cfg.wl->step != storm_step &&
	     cfg.wl->step != pop3_step && cfg.wl->step != smtp_step &&
	     !(cfg.wl->step == mixed_step && !cfg.wl->stay))) {
		fprintf(stderr, "loadgen: --rate is for login-storm, "
				"imap-mixed, pop3-download and smtp-submit\n");
		return 2;
	}
	if (cfg.wl->unsupported != NULL) {
		fprintf(stderr, "loadgen: %s: %s\n", cfg.wl->name,
			cfg.wl->unsupported);
		printf("{\"workload\": ");
		json_str(stdout, cfg.wl->name);
		printf(", \"label\": ");
		json_str(stdout, cfg.label);
		printf(", \"unsupported\": ");
		json_str(stdout, cfg.wl->unsupported);
		printf("}\n");
		return 0;
	}
	log_init("loadgen", LOG_LEVEL_WARN);
	char addr[300];
	snprintf(addr, sizeof(addr), "%s:%d", cfg.host, cfg.port);
	const char *err;
	if (conn_parse_addr(addr, &target, &err) < 0) {
		fprintf(stderr, "loadgen: %s: %s\n", addr, err);
		return 2;
	}
	/* many connections: as many descriptors as allowed */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (cfg.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (tls_ctx == NULL)
			abort();
		SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
		/* One TLS 1.3 suite, so that every server runs the same
		   cipher whatever its preference (Portico prefers its own
		   order, Dovecot the client's): AES-128-GCM, the cipher of the
		   reference figure (openssl speed -evp aes-128-gcm) */
		SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256");
		if (cfg.ca != NULL) {
			if (SSL_CTX_load_verify_locations(tls_ctx, cfg.ca,
							  NULL) != 1) {
				fprintf(stderr, "loadgen: cannot load %s\n",
					cfg.ca);
				return 2;
			}
			SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
		}
	}
	loop = uv_default_loop();
	uv_timer_init(loop, &stop_timer);
	uv_timer_init(loop, &hard_timer);
	uv_timer_init(loop, &idle_timer);

	int is_idle = cfg.wl->step == idle_step;
	if (cfg.wl->proto == P_LDAP) {
		signal(SIGPIPE, SIG_IGN);
		t_start = now_ns();
		uv_timer_start(&hard_timer, on_hard_timeout,
			       (uint64_t)(cfg.timeout * 1000), 0);
		if (cfg.n_mem_pids > 0)
			mem_measure(&mem_before);
		ldap_clients_start();
		if (cfg.warmup > 0)
			uv_timer_start(&idle_timer, on_warm,
				       (uint64_t)(cfg.warmup * 1000), 0);
		else
			on_warm(NULL);
		uv_run(loop, UV_RUN_DEFAULT);
		finish_run();
		return 0;
	}
	nclients = is_idle ? cfg.idle_conns + 1 : cfg.clients;
	clients = calloc((size_t)nclients, sizeof(*clients));
	if (clients == NULL)
		abort();
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		c->id = i;
		c->user = is_idle ? 0 : (cfg.client_base + i) % cfg.nusers;
		c->rng = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(i + 1);
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
	}
	signal(SIGPIPE, SIG_IGN);
	t_start = now_ns();
	uv_timer_start(&hard_timer, on_hard_timeout,
		       (uint64_t)(cfg.timeout * 1000), 0);
	if (is_idle) {
		mem_measure(&mem_before);
		cpu_start = mem_before;
		getrusage(RUSAGE_SELF, &self_start);
		measuring = 1;
		t_measure = t_start;
		appender = &clients[cfg.idle_conns];
		client_connect(appender);
	} else {
		if (cfg.n_mem_pids > 0)
			mem_measure(&mem_before);
		if (cfg.rate > 0) {
			pace_interval = (uint64_t)(1e9 / cfg.rate);
			if (pace_interval == 0)
				pace_interval = 1;
			pace_next = now_ns();
			for (int i = nclients - 1; i >= 0; i--) {
				clients[i].next_free = free_clients;
				free_clients = &clients[i];
			}
			uv_timer_init(loop, &pace_timer);
			uv_timer_start(&pace_timer, pace_cb, 1, 1);
			pace_run();
		} else {
			for (int i = 0; i < nclients; i++)
				client_connect(&clients[i]);
		}
		if (cfg.warmup > 0)
			uv_timer_start(&idle_timer, on_warm,
				       (uint64_t)(cfg.warmup * 1000), 0);
		else
			on_warm(NULL);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	finish_run();
	return 0;
}
