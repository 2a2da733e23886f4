/* connset.c - parsing of host:port:SSL|TLS| connection settings. */
#include "common/connset.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *enc_settings[] = {"SSL", "TLS", ""};
static const char *enc_labels[] = {"SSL/TLS", "STARTTLS", "None"};
_Static_assert(sizeof(enc_settings) / sizeof(enc_settings[0]) ==
		       CONNSET_ENC_COUNT,
	       "encryption names");
_Static_assert(sizeof(enc_labels) / sizeof(enc_labels[0]) ==
		       CONNSET_ENC_COUNT,
	       "encryption labels");

static const char *proto_names[] = {"IMAP", "POP3", "SMTP"};
_Static_assert(sizeof(proto_names) / sizeof(proto_names[0]) ==
		       CONNSET_PROTO_COUNT,
	       "protocol names");

const char *
connset_enc_setting(enum connset_enc enc)
{
	return enc_settings[enc];
}

const char *
connset_enc_label(enum connset_enc enc)
{
	return enc_labels[enc];
}

const char *
connset_proto_name(enum connset_proto p)
{
	return proto_names[p];
}

/* A DNS name (letters, digits, '-', '.', labels of 1..63) or an IPv4
 * address; IPv6 literals are not accepted (clients' settings want
 * names). */
static int
host_valid(const char *h, size_t len)
{
	if (len == 0 || len > CONNSET_HOST_MAX || h[0] == '.' || h[0] == '-')
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

static int
entry_parse(const char *s, size_t len, struct connset_entry *e,
	    const char **error_r)
{
	static char msg[160];
	memset(e, 0, sizeof(*e));
	const char *eq = memchr(s, '=', len);
	if (eq != NULL) {
		long site = 0;
		for (const char *p = s; p < eq; p++) {
			if (!isdigit((unsigned char)*p) || site > 65535) {
				site = -1;
				break;
			}
			site = site * 10 + (*p - '0');
		}
		if (eq == s || site < 1 || site > 65535) {
			snprintf(msg, sizeof(msg),
				 "\"%.*s\": the site before '=' must be a "
				 "number 1..65535",
				 (int)(len > 80 ? 80 : len), s);
			*error_r = msg;
			return -1;
		}
		e->site = (int)site;
		len -= (size_t)(eq + 1 - s);
		s = eq + 1;
	}
	const char *c1 = memchr(s, ':', len);
	const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - s))
			    : NULL;
	if (c1 == NULL || c2 == NULL) {
		snprintf(msg, sizeof(msg),
			 "\"%.*s\": expected host:port:SSL, host:port:TLS or "
			 "host:port:",
			 (int)(len > 80 ? 80 : len), s);
		*error_r = msg;
		return -1;
	}
	if (!host_valid(s, (size_t)(c1 - s))) {
		snprintf(msg, sizeof(msg), "\"%.*s\": invalid host name",
			 (int)(c1 - s > 80 ? 80 : c1 - s), s);
		*error_r = msg;
		return -1;
	}
	memcpy(e->host, s, (size_t)(c1 - s));
	e->host[c1 - s] = '\0';
	unsigned long port = 0;
	size_t plen = (size_t)(c2 - c1 - 1);
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)c1[1 + i]) || port > 65535) {
			port = 0;
			break;
		}
		port = port * 10 + (unsigned long)(c1[1 + i] - '0');
	}
	if (plen == 0 || port < 1 || port > 65535) {
		snprintf(msg, sizeof(msg), "%s: port must be 1..65535",
			 e->host);
		*error_r = msg;
		return -1;
	}
	e->port = (unsigned)port;
	size_t elen = len - (size_t)(c2 + 1 - s);
	const char *enc = c2 + 1;
	if (elen == 0)
		e->enc = CONNSET_NONE;
	else if (elen == 3 && strncasecmp(enc, "SSL", 3) == 0)
		e->enc = CONNSET_SSL;
	else if (elen == 3 && strncasecmp(enc, "TLS", 3) == 0)
		e->enc = CONNSET_TLS;
	else {
		snprintf(msg, sizeof(msg),
			 "%s:%u: encryption must be SSL, TLS or empty",
			 e->host, e->port);
		*error_r = msg;
		return -1;
	}
	return 0;
}

int
connset_parse(const char *text, struct connset *set, const char **error_r)
{
	set->n = 0;
	const char *p = text;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		size_t len = strcspn(p, " ,\t");
		if (set->n == CONNSET_MAX) {
			*error_r = "too many entries (at most 8)";
			return -1;
		}
		if (entry_parse(p, len, &set->e[set->n], error_r) < 0)
			return -1;
		set->n++;
		p += len;
	}
}

int
connsets_load(const struct config *cfg, struct connsets *sets,
	      const char **error_r)
{
	static char msg[256];
	const struct {
		const char *name;
		const char *value;
		struct connset *set;
	} rows[] = {
		{"imap_internal", cfg->connection_imap_internal,
		 &sets->internal[CONNSET_IMAP]},
		{"imap_external", cfg->connection_imap_external,
		 &sets->external[CONNSET_IMAP]},
		{"pop3_internal", cfg->connection_pop3_internal,
		 &sets->internal[CONNSET_POP3]},
		{"pop3_external", cfg->connection_pop3_external,
		 &sets->external[CONNSET_POP3]},
		{"smtp_internal", cfg->connection_smtp_internal,
		 &sets->internal[CONNSET_SMTP]},
		{"smtp_external", cfg->connection_smtp_external,
		 &sets->external[CONNSET_SMTP]},
	};
	memset(sets, 0, sizeof(*sets));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *err;
		if (connset_parse(rows[i].value, rows[i].set, &err) < 0) {
			snprintf(msg, sizeof(msg), "connection.%s: %s",
				 rows[i].name, err);
			*error_r = msg;
			return -1;
		}
	}
	sets->smtp_advertised = cfg->connection_smtp_advertise;
	return 0;
}

int
connsets_shown(const struct connsets *sets, enum connset_proto p)
{
	return p != CONNSET_SMTP || sets->smtp_advertised;
}

/* RFC 6186 services: the implicit TLS one, then the other (STARTTLS or
 * none). */
static const char *srv_services[CONNSET_PROTO_COUNT][2] = {
	{"_imaps", "_imap"},
	{"_pop3s", "_pop3"},
	{"_submissions", "_submission"},
};

void
connsets_write_srv(const struct connsets *sets, const int *offered,
		   const char *domain, long ttl, FILE *out)
{
	size_t dl = strlen(domain);
	const char *dot = dl > 0 && domain[dl - 1] == '.' ? "" : ".";
	for (int p = 0; p < CONNSET_PROTO_COUNT; p++) {
		if (!connsets_shown(sets, p))
			continue;
		const struct connset *set = &sets->external[p];
		for (int implicit = 1; implicit >= 0; implicit--) {
			const char *svc = srv_services[p][implicit ? 0 : 1];
			unsigned n = 0;
			for (unsigned i = 0; i < set->n; i++) {
				const struct connset_entry *e = &set->e[i];
				if (e->site != 0 ||
				    (e->enc == CONNSET_SSL) != implicit)
					continue;
				fprintf(out,
					"%s._tcp.%s%s\t%ld\tIN\tSRV\t%u 1 %u "
					"%s.\n",
					svc, domain, dot, ttl, i * 10, e->port,
					e->host);
				n++;
			}
			if (n == 0 && offered[p])
				fprintf(out,
					"%s._tcp.%s%s\t%ld\tIN\tSRV\t0 0 0 .\n",
					svc, domain, dot, ttl);
		}
	}
}
