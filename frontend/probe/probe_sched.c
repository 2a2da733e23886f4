/* probe_sched.c - scheduled connectivity probes of a frontend's own
 * listeners (probe_sched.h), their log lines and their metrics. */
#include "frontend/probe/probe_sched.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "frontend/frontend.h"
#include "frontend/probe/probe.h"

#define PROBE_SCHED_MAX_USERS 1024
#define PROBE_SCHED_FIRST_MS 1000 /* first round after start */

/* Where a protocol is probed: the frontend's first listener of it. */
struct probe_target {
	enum probe_protocol protocol;
	enum probe_tls tls;
	struct sockaddr_storage addr;
	char host[128]; /* the listener's host, for the certificate check */
};

/* The last probe of one account over one protocol. */
struct probe_stat {
	int known;               /* has run */
	int success;
	enum probe_step failed_step;
	uint64_t step_us[PROBE_STEP_COUNT];
	unsigned steps_run;      /* bit per step */
	uint64_t total_us;
	int64_t last_run;        /* Unix time */
	char backend[64];        /* the account's backend, "" unknown */
};

struct probe_sched {
	struct frontend *fe;
	uv_timer_t timer;
	int timer_open;
	int stopping;
	SSL_CTX *ssl_ctx;
	char **users;
	unsigned nusers;
	struct probe_target targets[PROBE_PROTOCOL_COUNT];
	unsigned ntargets;
	/* probe.protocols, in its order: those of them with a listener are
	   the targets, again at each reload that moves listeners */
	enum probe_protocol wanted[PROBE_PROTOCOL_COUNT];
	unsigned nwanted;
	uint64_t interval_ms;

	/* the round in progress (loop only) */
	uint64_t round_start;    /* loop time, ms */
	unsigned cur_user, cur_target;
	struct probe_target cur; /* the probe's in flight */
	int looked_up;
	char backend[64];        /* of cur_user, from the directory */
	struct probe *probe;
	struct dir_req *dreq;
	struct buf passwords;    /* the password file, wiped after a round */

	/* results: written by the loop, read by scrapes, under lock */
	pthread_mutex_t lock;
	struct probe_stat *stats; /* nusers x PROBE_PROTOCOL_COUNT */
	uint64_t runs[PROBE_PROTOCOL_COUNT][2]; /* [fail, pass] */
};

static void sched_next(struct probe_sched *s);

/* -- set-up ----------------------------------------------------------------*/

/* The listener address setting host:port as a target; a wildcard host
 * becomes the loopback address of its family. */
static int
target_set(struct probe_target *t, enum probe_protocol protocol,
	   const char *listen, enum probe_tls tls, const char **error_r)
{
	if (conn_parse_addr(listen, &t->addr, error_r) < 0)
		return -1;
	const char *colon = strrchr(listen, ':');
	size_t hl = (size_t)(colon - listen);
	if (hl >= sizeof(t->host))
		hl = sizeof(t->host) - 1;
	memcpy(t->host, listen, hl);
	t->host[hl] = '\0';
	if (t->host[0] == '[') {
		memmove(t->host, t->host + 1, strlen(t->host));
		t->host[strcspn(t->host, "]")] = '\0';
	}
	if (t->addr.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			snprintf(t->host, sizeof(t->host), "localhost");
		}
	} else if (t->addr.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
			sin6->sin6_addr = in6addr_loopback;
			snprintf(t->host, sizeof(t->host), "localhost");
		}
	}
	t->protocol = protocol;
	t->tls = tls;
	return 0;
}

/* The first listener of protocol in cfg (the plain one, with STARTTLS,
 * before the implicit TLS one): its address, or NULL when there is none
 * or the protocol is switched off (said in *why_r). */
static const char *
target_listener(const struct config *cfg, enum probe_protocol protocol,
		enum probe_tls *tls_r, const char **why_r)
{
	const char *plain = "", *implicit = "";
	int enabled = 1;
	switch (protocol) {
	case PROBE_IMAP:
		plain = cfg->frontend_imap_listen;
		implicit = cfg->frontend_imaps_listen;
		enabled = cfg->frontend_imap_enabled;
		break;
	case PROBE_POP3:
		plain = cfg->frontend_pop3_listen;
		implicit = cfg->frontend_pop3s_listen;
		enabled = cfg->frontend_pop3_enabled;
		break;
	case PROBE_SUBMISSION:
		plain = cfg->frontend_submission_listen;
		implicit = cfg->frontend_submissions_listen;
		enabled = cfg->frontend_smtp_enabled;
		break;
	case PROBE_PROTOCOL_COUNT:
		abort();
	}
	if (!enabled || (plain[0] == '\0' && implicit[0] == '\0')) {
		*why_r = enabled ? "no listener" : "switched off";
		return NULL;
	}
	*tls_r = plain[0] != '\0' ? PROBE_TLS_STARTTLS : PROBE_TLS_IMPLICIT;
	return plain[0] != '\0' ? plain : implicit;
}

/* The protocol's target, when it has a listener: 0 (none is no error). */
static int
target_find(struct probe_sched *s, enum probe_protocol protocol,
	    const char **error_r)
{
	enum probe_tls tls;
	const char *why;
	const char *listen = target_listener(&s->fe->cfg, protocol, &tls, &why);
	if (listen == NULL) {
		log_warn("probe protocol=%s skipped: %s",
			 probe_protocol_name(protocol), why);
		return 0;
	}
	if (target_set(&s->targets[s->ntargets], protocol, listen, tls,
		       error_r) < 0)
		return -1;
	s->ntargets++;
	return 0;
}

void
probe_sched_listeners_moved(struct frontend *fe)
{
	struct probe_sched *s = fe->probe;
	if (s == NULL || s->stopping)
		return;
	struct probe_target targets[PROBE_PROTOCOL_COUNT];
	unsigned n = 0;
	for (unsigned i = 0; i < s->nwanted; i++) {
		enum probe_protocol p = s->wanted[i];
		const char *why;
		enum probe_tls tls;
		const char *listen = target_listener(&fe->cfg, p, &tls, &why);
		if (listen == NULL ||
		    target_set(&targets[n], p, listen, tls, &why) < 0) {
			log_warn("probe protocol=%s skipped since the reload: "
				 "%s",
				 probe_protocol_name(p),
				 listen == NULL ? why : "listener address");
			continue;
		}
		n++;
	}
	/* a probe in flight keeps its own copy (s->cur) */
	pthread_mutex_lock(&s->lock);
	memcpy(s->targets, targets, n * sizeof(targets[0]));
	s->ntargets = n;
	pthread_mutex_unlock(&s->lock);
	log_info("probe targets=%u after the reload", n);
}

static void
sched_free_users(struct probe_sched *s)
{
	for (unsigned i = 0; i < s->nusers; i++)
		free(s->users[i]);
	free(s->users);
	s->users = NULL;
	s->nusers = 0;
}

static void sched_timer(uv_timer_t *t);

/* The words of a probe setting (space, tab or comma separated). */
static unsigned
sched_words(const char *list, char ***words_r)
{
	char *copy = strdup(list);
	char **words = calloc(PROBE_SCHED_MAX_USERS + 1, sizeof(*words));
	if (copy == NULL || words == NULL)
		abort();
	unsigned n = 0;
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t,", &save); w != NULL;
	     w = strtok_r(NULL, " \t,", &save)) {
		if (n == PROBE_SCHED_MAX_USERS + 1)
			break;
		words[n] = strdup(w);
		if (words[n] == NULL)
			abort();
		n++;
	}
	free(copy);
	*words_r = words;
	return n;
}

static void
sched_words_free(char ***words, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free((*words)[i]);
	free(*words);
	*words = NULL;
}

int
probe_sched_check(const struct config *cfg, const char **error_r)
{
	static _Thread_local char err[300];
	if (cfg->probe_interval == 0)
		return 0;
	char **words;
	unsigned n = sched_words(cfg->probe_users, &words);
	sched_words_free(&words, n);
	if (n == 0) {
		*error_r = "probe.users: empty, but probe.interval is set";
		return -1;
	}
	if (n > PROBE_SCHED_MAX_USERS) {
		snprintf(err, sizeof(err),
			 "probe.users: more than %d accounts",
			 PROBE_SCHED_MAX_USERS);
		*error_r = err;
		return -1;
	}
	if (cfg->probe_password_file[0] == '\0') {
		*error_r = "probe.password_file: empty, but probe.interval is "
			   "set";
		return -1;
	}
	n = sched_words(cfg->probe_protocols, &words);
	int rc = n == 0 ? -1 : 0;
	if (n == 0)
		*error_r = "probe.protocols: empty, but probe.interval is set";
	for (unsigned i = 0; i < n && rc == 0; i++) {
		enum probe_protocol p;
		if (probe_protocol_parse(words[i], &p) < 0) {
			snprintf(err, sizeof(err),
				 "probe.protocols: unknown protocol '%.40s' "
				 "(imap, pop3, submission)",
				 words[i]);
			*error_r = err;
			rc = -1;
		}
	}
	sched_words_free(&words, n);
	return rc;
}

int
probe_sched_start(struct frontend *fe, const char **error_r)
{
	static _Thread_local char err[300];
	const struct config *cfg = &fe->cfg;
	fe->probe = NULL;
	if (cfg->probe_interval == 0)
		return 0;
	if (probe_sched_check(cfg, error_r) < 0)
		return -1;
	struct probe_sched *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->fe = fe;
	s->interval_ms = (uint64_t)cfg->probe_interval * 1000;
	pthread_mutex_init(&s->lock, NULL);
	s->nusers = sched_words(cfg->probe_users, &s->users);

	char **words;
	unsigned n = sched_words(cfg->probe_protocols, &words);
	unsigned seen = 0;
	for (unsigned i = 0; i < n; i++) {
		enum probe_protocol p;
		const char *e;
		if (probe_protocol_parse(words[i], &p) < 0 ||
		    (seen & (1u << p)))
			continue;
		seen |= 1u << p;
		s->wanted[s->nwanted++] = p;
		if (target_find(s, p, &e) < 0) {
			snprintf(err, sizeof(err), "probe %s: listener: %s",
				 probe_protocol_name(p), e);
			sched_words_free(&words, n);
			goto fail;
		}
	}
	sched_words_free(&words, n);
	if (s->ntargets == 0) {
		snprintf(err, sizeof(err),
			 "probe.protocols: no listener to probe");
		goto fail;
	}
	const char *e;
	s->ssl_ctx = probe_ssl_ctx(cfg->probe_ca_file,
				   cfg->probe_ca_file[0] != '\0', &e);
	if (s->ssl_ctx == NULL) {
		snprintf(err, sizeof(err), "probe.ca_file: %s", e);
		goto fail;
	}
	s->stats = calloc((size_t)s->nusers * PROBE_PROTOCOL_COUNT,
			  sizeof(*s->stats));
	if (s->stats == NULL)
		abort();
	uv_timer_init(fe->loop, &s->timer);
	s->timer.data = s;
	s->timer_open = 1;
	uint64_t first = s->interval_ms < PROBE_SCHED_FIRST_MS
				 ? s->interval_ms
				 : PROBE_SCHED_FIRST_MS;
	uv_timer_start(&s->timer, sched_timer, first, 0);
	fe->probe = s;
	log_info("probe interval=%llds users=%u protocols=%u light=%s",
		 (long long)cfg->probe_interval, s->nusers, s->ntargets,
		 cfg->probe_light ? "yes" : "no");
	return 0;
fail:
	sched_free_users(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*error_r = err;
	return -1;
}

/* -- passwords ---------------------------------------------------------------*/

/* Reads probe.password_file into s->passwords (NUL-terminated lines). */
static int
passwords_read(struct probe_sched *s)
{
	buf_wipe(&s->passwords);
	FILE *f = fopen(s->fe->cfg.probe_password_file, "r");
	if (f == NULL)
		return -1;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0 &&
	       buf_used(&s->passwords) < 1048576)
		buf_append(&s->passwords, tmp, n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	fclose(f);
	buf_append(&s->passwords, "\n", 2); /* newline and NUL */
	return 0;
}

/* user's password: the rest of the line "USER PASSWORD", else the first
 * line not naming an account of probe.users (a shared password).  The
 * result is copied into out.  -1 if there is none. */
static int
password_for(struct probe_sched *s, const char *user, char *out,
	     size_t outsize)
{
	const char *shared = NULL;
	size_t shared_len = 0;
	const char *p = buf_ptr(&s->passwords);
	const char *end = p != NULL ? p + buf_used(&s->passwords) : NULL;
	while (p != NULL && p < end && *p != '\0') {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		size_t l = len;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		size_t w = 0;
		while (w < l && p[w] != ' ' && p[w] != '\t')
			w++;
		int names_user = 0;
		for (unsigned i = 0; i < s->nusers; i++)
			if (strlen(s->users[i]) == w &&
			    strncasecmp(s->users[i], p, w) == 0)
				names_user = 1;
		if (names_user && w < l && strlen(user) == w &&
		    strncasecmp(user, p, w) == 0) {
			const char *pw = p + w + 1;
			size_t pl = l - w - 1;
			if (pl >= outsize)
				return -1;
			memcpy(out, pw, pl);
			out[pl] = '\0';
			return 0;
		}
		if (!names_user && shared == NULL && l > 0) {
			shared = p;
			shared_len = l;
		}
		p += len + 1;
	}
	if (shared == NULL || shared_len >= outsize)
		return -1;
	memcpy(out, shared, shared_len);
	out[shared_len] = '\0';
	return 0;
}

/* -- rounds ------------------------------------------------------------------*/

static void
sched_timer(uv_timer_t *t)
{
	struct probe_sched *s = t->data;
	if (s->stopping)
		return;
	s->round_start = uv_now(s->fe->loop);
	s->cur_user = 0;
	s->cur_target = 0;
	s->looked_up = 0;
	if (passwords_read(s) < 0)
		log_error("probe password_file=%s error=\"cannot read\"",
			  s->fe->cfg.probe_password_file);
	sched_next(s);
}

static void
sched_round_end(struct probe_sched *s)
{
	buf_wipe(&s->passwords);
	uint64_t now = uv_now(s->fe->loop);
	uint64_t spent = now - s->round_start;
	uint64_t wait = spent < s->interval_ms ? s->interval_ms - spent : 0;
	uv_timer_start(&s->timer, sched_timer, wait, 0);
}

static struct probe_stat *
sched_stat(struct probe_sched *s, unsigned user, enum probe_protocol p)
{
	return &s->stats[(size_t)user * PROBE_PROTOCOL_COUNT + p];
}

static void
sched_record(struct probe_sched *s, const struct probe_target *t,
	     const struct probe_result *r)
{
	const char *user = s->users[s->cur_user];
	pthread_mutex_lock(&s->lock);
	struct probe_stat *st = sched_stat(s, s->cur_user, t->protocol);
	st->known = 1;
	st->success = r->pass;
	st->failed_step = r->failed_step;
	memset(st->step_us, 0, sizeof(st->step_us));
	st->steps_run = 0;
	for (unsigned i = 0; i < r->nsteps; i++) {
		st->step_us[r->steps[i].step] += r->steps[i].us;
		st->steps_run |= 1u << r->steps[i].step;
	}
	st->total_us = r->total_us;
	st->last_run = (int64_t)time(NULL);
	snprintf(st->backend, sizeof(st->backend), "%s", s->backend);
	s->runs[t->protocol][r->pass ? 1 : 0]++;
	pthread_mutex_unlock(&s->lock);

	char steps[512];
	size_t o = 0;
	steps[0] = '\0';
	for (unsigned i = 0; i < r->nsteps && o < sizeof(steps); i++)
		o += (size_t)snprintf(steps + o, sizeof(steps) - o, "%s%s:%.1f",
				      i ? "," : "",
				      probe_step_name(r->steps[i].step),
				      (double)r->steps[i].us / 1000.0);
	if (r->pass)
		log_info("probe protocol=%s tls=%s user=%s backend=%s "
			 "result=pass duration_ms=%.1f steps_ms=%s",
			 probe_protocol_name(t->protocol),
			 probe_tls_name(t->tls), user,
			 s->backend[0] ? s->backend : "-",
			 (double)r->total_us / 1000.0, steps);
	else
		log_warn("probe protocol=%s tls=%s user=%s backend=%s "
			 "result=fail step=%s reason=\"%s\" duration_ms=%.1f "
			 "steps_ms=%s",
			 probe_protocol_name(t->protocol),
			 probe_tls_name(t->tls), user,
			 s->backend[0] ? s->backend : "-",
			 probe_step_name(r->failed_step), r->reason,
			 (double)r->total_us / 1000.0, steps);
}

static void
sched_probe_done(void *ctx, const struct probe_result *r)
{
	struct probe_sched *s = ctx;
	s->probe = NULL;
	sched_record(s, &s->cur, r);
	s->cur_target++;
	sched_next(s);
}

static void
sched_lookup_done(void *ctx, enum dir_result res, const struct dir_user *u,
		  const char *why)
{
	struct probe_sched *s = ctx;
	s->dreq = NULL;
	s->looked_up = 1;
	if (res == DIR_OK)
		snprintf(s->backend, sizeof(s->backend), "%s",
			 u->mailbox_server);
	/* otherwise the backend the last lookup found, if any */
	sched_next(s);
}

/* A probe that could not start: recorded as a failed connect. */
static void
sched_fail_now(struct probe_sched *s, const struct probe_target *t,
	       const char *why)
{
	struct probe_result r;
	memset(&r, 0, sizeof(r));
	r.failed_step = PROBE_STEP_CONNECT;
	snprintf(r.reason, sizeof(r.reason), "%s", why);
	sched_record(s, t, &r);
}

static void
sched_next(struct probe_sched *s)
{
	while (!s->stopping) {
		if (s->cur_user >= s->nusers) {
			sched_round_end(s);
			return;
		}
		const char *user = s->users[s->cur_user];
		if (!s->looked_up) {
			/* keep the backend of the account's last result */
			pthread_mutex_lock(&s->lock);
			const struct probe_stat *st = NULL;
			for (unsigned i = 0; i < PROBE_PROTOCOL_COUNT; i++) {
				const struct probe_stat *c =
					sched_stat(s, s->cur_user, i);
				if (c->known && c->backend[0])
					st = c;
			}
			snprintf(s->backend, sizeof(s->backend), "%s",
				 st != NULL ? st->backend : "");
			pthread_mutex_unlock(&s->lock);
			s->dreq = dir_lookup_address(s->fe->dir, user,
						     sched_lookup_done, s);
			return;
		}
		if (s->cur_target >= s->ntargets) {
			s->cur_user++;
			s->cur_target = 0;
			s->looked_up = 0;
			continue;
		}
		s->cur = s->targets[s->cur_target];
		const struct probe_target *t = &s->cur;
		char password[1024];
		if (password_for(s, user, password, sizeof(password)) < 0) {
			sched_fail_now(s, t, "no password in "
					     "probe.password_file");
			s->cur_target++;
			continue;
		}
		const struct config *cfg = &s->fe->cfg;
		struct probe_opts o;
		memset(&o, 0, sizeof(o));
		o.addr = t->addr;
		o.tls_name = cfg->probe_ca_file[0] != '\0' ? t->host : NULL;
		o.ssl_ctx = s->ssl_ctx;
		o.protocol = t->protocol;
		o.tls = t->tls;
		o.user = user;
		o.password = password;
		o.helo = cfg->global_name;
		o.tag = cfg->global_name;
		o.light = cfg->probe_light;
		o.cleanup = cfg->probe_cleanup;
		o.timeout_ms = (uint64_t)cfg->probe_timeout * 1000;
		const char *err;
		s->probe = probe_start(s->fe->loop, &o, sched_probe_done, s,
				       &err);
		OPENSSL_cleanse(password, sizeof(password));
		if (s->probe != NULL)
			return;
		sched_fail_now(s, t, err);
		s->cur_target++;
	}
}

void
probe_sched_stop(struct frontend *fe)
{
	struct probe_sched *s = fe->probe;
	if (s == NULL || s->stopping)
		return;
	s->stopping = 1;
	probe_cancel(&s->probe);
	if (s->dreq != NULL) {
		dir_cancel(s->dreq);
		s->dreq = NULL;
	}
	if (s->timer_open) {
		uv_timer_stop(&s->timer);
		uv_close((uv_handle_t *)&s->timer, NULL);
		s->timer_open = 0;
	}
	buf_wipe(&s->passwords);
}

void
probe_sched_free(struct frontend *fe)
{
	struct probe_sched *s = fe->probe;
	if (s == NULL)
		return;
	fe->probe = NULL;
	buf_wipe(&s->passwords);
	SSL_CTX_free(s->ssl_ctx);
	sched_free_users(s);
	free(s->stats);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* -- metrics -----------------------------------------------------------------*/

/* A label value escaped for the text format (\, " and newlines). */
static void
label_escape(const char *in, char *out, size_t outsize)
{
	size_t o = 0;
	for (; *in != '\0' && o + 3 < outsize; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

void
probe_sched_metrics(const struct frontend *fe, struct buf *b)
{
	if (fe->workers == NULL || fe->nworkers == 0)
		return;
	struct probe_sched *s = fe->workers[0].probe;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	char user[520], backend[140];
	buf_printf(b, "# HELP portico_probe_success Whether the last "
		      "connectivity probe of the account over the protocol "
		      "passed (1) or failed (0).\n"
		      "# TYPE portico_probe_success gauge\n");
	for (unsigned u = 0; u < s->nusers; u++) {
		label_escape(s->users[u], user, sizeof(user));
		for (unsigned i = 0; i < s->ntargets; i++) {
			const struct probe_stat *st =
				sched_stat(s, u, s->targets[i].protocol);
			if (!st->known)
				continue;
			label_escape(st->backend, backend, sizeof(backend));
			buf_printf(b,
				   "portico_probe_success{protocol=\"%s\","
				   "user=\"%s\",backend=\"%s\"} %d\n",
				   probe_protocol_name(s->targets[i].protocol),
				   user, backend, st->success ? 1 : 0);
		}
	}
	buf_printf(b, "# HELP portico_probe_duration_seconds Duration of each "
		      "step of the last probe of the account over the "
		      "protocol, and of the whole probe (step=\"total\").\n"
		      "# TYPE portico_probe_duration_seconds gauge\n");
	for (unsigned u = 0; u < s->nusers; u++) {
		label_escape(s->users[u], user, sizeof(user));
		for (unsigned i = 0; i < s->ntargets; i++) {
			enum probe_protocol p = s->targets[i].protocol;
			const struct probe_stat *st = sched_stat(s, u, p);
			if (!st->known)
				continue;
			for (unsigned k = 0; k < PROBE_STEP_COUNT; k++) {
				if (!(st->steps_run & (1u << k)))
					continue;
				buf_printf(b,
					   "portico_probe_duration_seconds{"
					   "protocol=\"%s\",user=\"%s\","
					   "step=\"%s\"} %.6f\n",
					   probe_protocol_name(p), user,
					   probe_step_name(k),
					   (double)st->step_us[k] / 1e6);
			}
			buf_printf(b,
				   "portico_probe_duration_seconds{protocol="
				   "\"%s\",user=\"%s\",step=\"total\"} %.6f\n",
				   probe_protocol_name(p), user,
				   (double)st->total_us / 1e6);
		}
	}
	buf_printf(b, "# HELP portico_probe_last_run_timestamp_seconds When "
		      "the last probe of the account over the protocol "
		      "ended (Unix time).\n"
		      "# TYPE portico_probe_last_run_timestamp_seconds gauge\n");
	for (unsigned u = 0; u < s->nusers; u++) {
		label_escape(s->users[u], user, sizeof(user));
		for (unsigned i = 0; i < s->ntargets; i++) {
			enum probe_protocol p = s->targets[i].protocol;
			const struct probe_stat *st = sched_stat(s, u, p);
			if (st->known)
				buf_printf(b,
					   "portico_probe_last_run_timestamp_"
					   "seconds{protocol=\"%s\",user=\"%s\"}"
					   " %" PRId64 "\n",
					   probe_protocol_name(p), user,
					   st->last_run);
		}
	}
	buf_printf(b, "# HELP portico_probe_runs_total Connectivity probes "
		      "run, by protocol and result.\n"
		      "# TYPE portico_probe_runs_total counter\n");
	for (unsigned i = 0; i < s->ntargets; i++) {
		enum probe_protocol p = s->targets[i].protocol;
		buf_printf(b,
			   "portico_probe_runs_total{protocol=\"%s\","
			   "result=\"pass\"} %" PRIu64 "\n"
			   "portico_probe_runs_total{protocol=\"%s\","
			   "result=\"fail\"} %" PRIu64 "\n",
			   probe_protocol_name(p), s->runs[p][1],
			   probe_protocol_name(p), s->runs[p][0]);
	}
	pthread_mutex_unlock(&s->lock);
}
