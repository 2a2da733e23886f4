/* connset.h - connection settings advertised to users, in the form mail
 * operators know: "host:port:SSL" (implicit TLS), "host:port:TLS"
 * (STARTTLS) or "host:port:" (no encryption).
 *
 * A setting holds a list separated by commas or spaces; an entry may
 * start with "SITE=" to apply only to users whose mailbox lives in that
 * site ("2=imap.site2.example.com:993:SSL").  Entries without a site
 * apply to everyone and are the only ones shown without signing in
 * (autoconfig, autodiscover, DNS SRV records).
 */
#ifndef PORTICO_CONNSET_H
#define PORTICO_CONNSET_H

#include <stdio.h>

#include "common/config.h"

#define CONNSET_MAX 8
#define CONNSET_HOST_MAX 254

enum connset_enc {
	CONNSET_SSL,  /* implicit TLS */
	CONNSET_TLS,  /* STARTTLS */
	CONNSET_NONE, /* no encryption */
	CONNSET_ENC_COUNT
};

enum connset_proto {
	CONNSET_IMAP,
	CONNSET_POP3,
	CONNSET_SMTP,
	CONNSET_PROTO_COUNT
};

struct connset_entry {
	char host[CONNSET_HOST_MAX + 1];
	unsigned port;
	enum connset_enc enc;
	int site; /* 0: every site */
};

struct connset {
	struct connset_entry e[CONNSET_MAX];
	unsigned n;
};

/* Every protocol's internal and external settings of a configuration. */
struct connsets {
	struct connset internal[CONNSET_PROTO_COUNT];
	struct connset external[CONNSET_PROTO_COUNT];
	int smtp_advertised; /* connection.smtp_advertise */
};

/* Parses one setting.  Returns -1 with a message in *error_r (static
 * storage) on a malformed entry or more than CONNSET_MAX. */
int connset_parse(const char *text, struct connset *set,
		  const char **error_r);
/* Parses the [connection] settings of cfg; error_r names the setting. */
int connsets_load(const struct config *cfg, struct connsets *sets,
		  const char **error_r);
/* Whether a protocol is shown to users at all (SMTP only when
 * advertised). */
int connsets_shown(const struct connsets *sets, enum connset_proto p);

/* Writes the DNS SRV records of RFC 6186 (and RFC 8314's
 * _submissions) for the external settings that apply to every site, as
 * zone file lines for domain with the given TTL: _imaps/_imap, _pop3s/
 * _pop3 and, when advertised, _submissions/_submission.  Priorities
 * follow the order of the entries (the first is preferred).  A service
 * of an offered protocol without any entry gets the "not offered"
 * record of RFC 6186 section 4 (target ".").  offered[p]: whether the
 * deployment offers protocol p at all. */
void connsets_write_srv(const struct connsets *sets, const int *offered,
			const char *domain, long ttl, FILE *out);

/* "SSL", "TLS" or "" as in the settings. */
const char *connset_enc_setting(enum connset_enc enc);
/* For people: "SSL/TLS", "STARTTLS", "None". */
const char *connset_enc_label(enum connset_enc enc);
/* "IMAP", "POP3", "SMTP". */
const char *connset_proto_name(enum connset_proto p);

#endif
