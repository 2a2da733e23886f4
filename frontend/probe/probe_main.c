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
 * "FAIL step=... reason=\"...\"".  Exit status: 0 pass, 1 fail, 2 usage
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

static void
done(void *ctx, const struct probe_result *r)
{
	int *status = ctx;
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
	*status = r->pass ? 0 : 1;
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
	memcpy(&o.addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);

	const char *err;
	SSL_CTX *ctx = NULL;
	if (tls != PROBE_TLS_NONE) {
		ctx = probe_ssl_ctx(ca, verify, &err);
		if (ctx == NULL) {
			fprintf(stderr, "portico-probe: %s\n", err);
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
	o.timeout_ms = (uint64_t)(timeout * 1000);

	printf("probe protocol=%s host=%s port=%ld tls=%s user=%s mode=%s\n",
	       probe_protocol_name(protocol), host, port, probe_tls_name(tls),
	       user, light ? "light" : "full");
	fflush(stdout);

	uv_loop_t loop;
	uv_loop_init(&loop);
	int status = 2;
	struct probe *p = probe_start(&loop, &o, done, &status, &err);
	OPENSSL_cleanse(password, sizeof(password));
	if (p == NULL) {
		fprintf(stderr, "portico-probe: %s\n", err);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		SSL_CTX_free(ctx);
		return 2;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	SSL_CTX_free(ctx);
	return status;
}
