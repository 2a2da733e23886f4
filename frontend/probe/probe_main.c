/* probe_main.c - portico-probe: one connectivity probe from the command
 * line, the way operators test a frontend (or any IMAP4, POP3 or SMTP
 * submission server).
 *
 *   portico-probe --host H [--port P] --protocol imap|pop3|submission
 *                 --tls none|starttls|implicit --user U --password-file F
 *                 [--ca FILE | --no-verify] [--tls-name NAME] [--light]
 *                 [--timeout SECONDS] [--rcpt ADDR] [--helo NAME]
 *                 [--cleanup]
 *
 * Prints one line per step ("step=login ok 3.2 ms"), then "PASS ..." or
 * "FAIL step=... reason=\"...\"".  A host name's addresses are tried in
 * turn until one takes the connection ("connect to A failed (...);
 * trying B").  Exit status: 0 pass, 1 fail, 2 usage
 * or local set-up error (unreadable password file, CA, unknown host).
 */
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "frontend/probe/probe.h"

static void
usage(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, "portico-probe: %s\n", msg);
	fprintf(stderr,
		"usage: portico-probe --host HOST [--port PORT]\n"
		"         --protocol imap|pop3|submission\n"
		"         --tls none|starttls|implicit\n"
		"         --user USER --password-file FILE\n"
		"         [--ca FILE | --no-verify] [--tls-name NAME]\n"
		"         [--light] [--timeout SECONDS] [--rcpt ADDRESS]\n"
		"         [--helo NAME] [--cleanup]\n"
		"Logs in as USER (password: first line of FILE) and fetches\n"
		"the newest message (IMAP, POP3) or sends one to USER\n"
		"(submission); --light only logs in; --cleanup (IMAP) deletes\n"
		"probe messages (X-Portico-Probe) but the newest message.\n"
		"Exit status 0: PASS, 1: FAIL, 2: usage or local error.\n");
	exit(2);
}

/* The first line of path, without its line ending. */
static int
read_password(const char *path, char *out, size_t outsize)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fgets(out, (int)outsize, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int
default_port(enum probe_protocol p, enum probe_tls t)
{
	int implicit = t == PROBE_TLS_IMPLICIT;
	switch (p) {
	case PROBE_IMAP:
		return implicit ? 993 : 143;
	case PROBE_POP3:
		return implicit ? 995 : 110;
	case PROBE_SUBMISSION:
		return implicit ? 465 : 587;
	case PROBE_PROTOCOL_COUNT:
		break;
	}
	return 0;
}

/* One attempt's outcome, for main()'s choice of trying the next address. */
struct attempt {
	int status; /* 0 pass, 1 fail, 2 local error */
	int retry;  /* failed at connect, with another address left:
		       printed as one line, not as the verdict */
	char reason[PROBE_REASON_MAX];
};

static void
done(void *ctx, const struct probe_result *r)
{
	struct attempt *a = ctx;
	if (!r->pass && r->failed_step == PROBE_STEP_CONNECT && a->retry) {
		snprintf(a->reason, sizeof(a->reason), "%s", r->reason);
		a->status = 1;
		return;
	}
	a->retry = 0;
	for (unsigned i = 0; i < r->nsteps; i++) {
		const struct probe_step_result *s = &r->steps[i];
		printf("step=%s %s %.1f ms%s%s\n", probe_step_name(s->step),
		       s->ok ? "ok" : "FAIL", (double)s->us / 1000.0,
		       s->detail[0] ? " " : "", s->detail);
	}
	if (r->pass)
		printf("PASS total %.1f ms\n", (double)r->total_us / 1000.0);
	else
		printf("FAIL step=%s reason=\"%s\" total %.1f ms\n",
		       probe_step_name(r->failed_step), r->reason,
		       (double)r->total_us / 1000.0);
	fflush(stdout);
	a->status = r->pass ? 0 : 1;
}

/* "ADDRESS:PORT" ("[ADDRESS]:PORT" for IPv6) of sa. */
static void
addr_text(const struct sockaddr *sa, char *out, size_t outsize)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outsize, "?");
		return;
	}
	snprintf(out, outsize, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, serv);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"protocol", required_argument, NULL, 'P'},
		{"tls", required_argument, NULL, 't'},
		{"user", required_argument, NULL, 'u'},
		{"password-file", required_argument, NULL, 'f'},
		{"ca", required_argument, NULL, 'c'},
		{"no-verify", no_argument, NULL, 'k'},
		{"tls-name", required_argument, NULL, 'n'},
		{"light", no_argument, NULL, 'l'},
		{"timeout", required_argument, NULL, 'T'},
		{"rcpt", required_argument, NULL, 'r'},
		{"helo", required_argument, NULL, 'e'},
		{"cleanup", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *host = NULL, *user = NULL, *pwfile = NULL, *ca = NULL;
	const char *tls_name = NULL, *rcpt = NULL, *helo = NULL;
	enum probe_protocol protocol = PROBE_IMAP;
	enum probe_tls tls = PROBE_TLS_IMPLICIT;
	int have_protocol = 0, have_tls = 0, verify = 1, light = 0;
	int cleanup = 0;
	long port = 0;
	double timeout = 30;
	int opt;
	char *end;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = strtol(optarg, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535)
				usage("--port: expected 1..65535");
			break;
		case 'P':
			if (probe_protocol_parse(optarg, &protocol) < 0)
				usage("--protocol: expected imap, pop3 or "
				      "submission");
			have_protocol = 1;
			break;
		case 't':
			if (probe_tls_parse(optarg, &tls) < 0)
				usage("--tls: expected none, starttls or "
				      "implicit");
			have_tls = 1;
			break;
		case 'u':
			user = optarg;
			break;
		case 'f':
			pwfile = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'k':
			verify = 0;
			break;
		case 'n':
			tls_name = optarg;
			break;
		case 'l':
			light = 1;
			break;
		case 'T':
			timeout = strtod(optarg, &end);
			if (*end != '\0' || !(timeout > 0 && timeout <= 3600))
				usage("--timeout: expected seconds, 0 to "
				      "3600");
			break;
		case 'r':
			rcpt = optarg;
			break;
		case 'e':
			helo = optarg;
			break;
		case 'C':
			cleanup = 1;
			break;
		case 'h':
			usage(NULL);
			break;
		default:
			usage(NULL);
		}
	}
	if (optind != argc)
		usage("unexpected argument");
	if (host == NULL || user == NULL || pwfile == NULL)
		usage("--host, --user and --password-file are required");
	if (!have_protocol || !have_tls)
		usage("--protocol and --tls are required");
	if (port == 0)
		port = default_port(protocol, tls);

	char password[1024];
	if (read_password(pwfile, password, sizeof(password)) < 0) {
		fprintf(stderr, "portico-probe: cannot read %s\n", pwfile);
		return 2;
	}

	struct probe_opts o;
	memset(&o, 0, sizeof(o));
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%ld", port);
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai != 0 || ai == NULL) {
		fprintf(stderr, "portico-probe: %s: %s\n", host,
			gai_strerror(gai));
		return 2;
	}
	const char *err;
	SSL_CTX *ctx = NULL;
	if (tls != PROBE_TLS_NONE) {
		ctx = probe_ssl_ctx(ca, verify, &err);
		if (ctx == NULL) {
			fprintf(stderr, "portico-probe: %s\n", err);
			freeaddrinfo(ai);
			return 2;
		}
	}
	o.ssl_ctx = ctx;
	o.tls_name = verify ? (tls_name != NULL ? tls_name : host) : tls_name;
	o.protocol = protocol;
	o.tls = tls;
	o.user = user;
	o.password = password;
	o.rcpt = rcpt;
	o.helo = helo;
	o.tag = "portico-probe";
	o.light = light;
	o.cleanup = cleanup;

	printf("probe protocol=%s host=%s port=%ld tls=%s user=%s mode=%s\n",
	       probe_protocol_name(protocol), host, port, probe_tls_name(tls),
	       user, light ? "light" : "full");
	fflush(stdout);

	/* Each address the name resolves to, in getaddrinfo()'s order,
	   until one takes the connection (as mail clients do): the
	   verdict is that one's; a refused or unreachable address before
	   it gets a line of its own.  The timeout is for them all. */
	uv_loop_t loop;
	uv_loop_init(&loop);
	uint64_t start = uv_now(&loop);
	struct attempt a = {.status = 2};
	for (struct addrinfo *it = ai; it != NULL; it = it->ai_next) {
		if (it->ai_addrlen > sizeof(o.addr))
			continue;
		memset(&o.addr, 0, sizeof(o.addr));
		memcpy(&o.addr, it->ai_addr, it->ai_addrlen);
		uv_update_time(&loop);
		uint64_t spent = uv_now(&loop) - start;
		uint64_t total = (uint64_t)(timeout * 1000);
		o.timeout_ms = spent < total ? total - spent : 1;
		a.status = 2;
		a.retry = it->ai_next != NULL;
		struct probe *p = probe_start(&loop, &o, done, &a, &err);
		if (p == NULL) {
			fprintf(stderr, "portico-probe: %s\n", err);
			uv_run(&loop, UV_RUN_DEFAULT);
			a.status = 2;
			break;
		}
		uv_run(&loop, UV_RUN_DEFAULT);
		if (!a.retry)
			break;
		char here[NI_MAXHOST + NI_MAXSERV + 4];
		char next[NI_MAXHOST + NI_MAXSERV + 4];
		addr_text(it->ai_addr, here, sizeof(here));
		addr_text(it->ai_next->ai_addr, next, sizeof(next));
		printf("connect to %s failed (%s); trying %s\n", here, a.reason,
		       next);
		fflush(stdout);
	}
	OPENSSL_cleanse(password, sizeof(password));
	freeaddrinfo(ai);
	uv_loop_close(&loop);
	SSL_CTX_free(ctx);
	return a.status;
}
