/* imap_caps.c - the capabilities an IMAP session offers.
 *
 * The backend's list (backend_imap_capabilities_init), less what is
 * switched off for the session: by the account (porticoImapCapabilityOff,
 * which the frontend passes in Open) and by the client it runs
 * (imap.client_capabilities_off, matched against the name and version its
 * ID gives, before login through the frontend, or after).  A session
 * neither advertises what is off nor takes its commands (the dispatch in
 * imap_session.c asks imap_offers()).
 */
#include "backend/imap/imap.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static char imap_caps[512];

void
backend_imap_capabilities_init(const struct config *cfg)
{
	snprintf(
	    imap_caps, sizeof(imap_caps),
	    "IMAP4rev1 IMAP4rev2 %s ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS "
	    "MOVE REPLACE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE "
	    "LIST-EXTENDED "
	    "LIST-STATUS MULTIAPPEND STATUS=SIZE CONDSTORE QRESYNC "
	    "OBJECTID SAVEDATE PREVIEW WITHIN ESEARCH SEARCHRES SORT "
	    "SORT=DISPLAY ESORT I18NLEVEL=1 "
	    "THREAD=ORDEREDSUBJECT THREAD=REFERENCES COMPRESS=DEFLATE "
	    "QUOTA "
	    "QUOTA=RES-STORAGE "
	    "QUOTA=RES-MESSAGE UTF8=ACCEPT BINARY APPENDLIMIT=%llu",
	    cfg->limits_literal_plus ? "LITERAL+" : "LITERAL-",
	    (unsigned long long)backend_imap_append_limit(cfg));
}

const char *
backend_imap_capabilities(void)
{
	return imap_caps;
}

const char *
imap_capabilities(const struct imap_session *is)
{
	return is->caps != NULL ? is->caps : imap_caps;
}

/* Whether the token tok (len bytes) is name, or a variant "name=...". */
static int
cap_matches(const char *tok, size_t len, const char *name, size_t n)
{
	return len >= n && strncasecmp(tok, name, n) == 0 &&
	       (len == n || tok[n] == '=');
}

int
imap_offers(const struct imap_session *is, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = imap_capabilities(is); *p != '\0';) {
		size_t len = strcspn(p, " ");
		if (cap_matches(p, len, name, n))
			return 1;
		p += len;
		p += strspn(p, " ");
	}
	return 0;
}

/* What an extension needs: switched off, it takes these with it. */
static const struct {
	const char *name, *takes;
} cap_needs[] = {
    {"CONDSTORE", "QRESYNC"},
    {"SORT", "ESORT"},    /* SORT's RETURN */
    {"ESEARCH", "ESORT"}, /* answered with ESEARCH */
};

/* Whether the off list (names separated by spaces) takes the token: a
 * name takes its variants (THREAD both THREAD=..., QUOTA the
 * QUOTA=RES-...) and what needs it (cap_needs), and IMAP4rev1 stays. */
static int
cap_off(const char *off, const char *tok, size_t len)
{
	if (len == 9 && strncasecmp(tok, "IMAP4rev1", 9) == 0)
		return 0;
	for (const char *q = off; *q != '\0';) {
		q += strspn(q, " ");
		size_t n = strcspn(q, " ");
		if (n > 0 && cap_matches(tok, len, q, n))
			return 1;
		for (size_t i = 0;
		     n > 0 && i < sizeof(cap_needs) / sizeof(cap_needs[0]); i++)
			if (strlen(cap_needs[i].name) == n &&
			    strncasecmp(q, cap_needs[i].name, n) == 0 &&
			    cap_matches(tok, len, cap_needs[i].takes,
					strlen(cap_needs[i].takes)))
				return 1;
		q += n;
	}
	return 0;
}

/* The backend's capabilities less what off takes, malloc'd; NULL when
 * off takes none of them. */
static char *
caps_without(const char *off)
{
	struct buf b = BUF_INIT;
	int dropped = 0;
	for (const char *p = imap_caps; *p != '\0';) {
		size_t len = strcspn(p, " ");
		if (cap_off(off, p, len)) {
			dropped = 1;
		} else {
			if (buf_used(&b) > 0)
				buf_append(&b, " ", 1);
			buf_append(&b, p, len);
		}
		p += len;
		p += strspn(p, " ");
	}
	if (!dropped) {
		buf_free(&b);
		return NULL;
	}
	buf_append(&b, "", 1);
	char *out = strdup(buf_ptr(&b));
	buf_free(&b);
	if (out == NULL)
		abort();
	return out;
}

/* imap.client_capabilities_off: "PATTERN: NAME NAME; PATTERN: NAME ...".
 * Calls fn for each rule (pattern and names NUL-terminated copies); -1
 * with *error_r on a rule without ":" or a pattern or a name, or a name
 * that is none. */
typedef void rule_fn(void *ctx, const char *pattern, const char *names);

static int
rules_walk(const char *rules, rule_fn *fn, void *ctx, const char **error_r)
{
	static char msg[160];
	for (const char *p = rules; *p != '\0';) {
		size_t len = strcspn(p, ";");
		char rule[512], *colon;
		if (len >= sizeof(rule)) {
			*error_r =
			    "imap.client_capabilities_off: a rule longer "
			    "than 511 characters";
			return -1;
		}
		memcpy(rule, p, len);
		rule[len] = '\0';
		p += len + (p[len] == ';');
		char *r = rule + strspn(rule, " \t");
		if (*r == '\0')
			continue; /* an empty rule: "a: B;" */
		char shown[64];
		snprintf(shown, sizeof(shown), "%s", r);
		if ((colon = strchr(r, ':')) == NULL) {
			snprintf(msg, sizeof(msg),
				 "imap.client_capabilities_off: '%s': "
				 "PATTERN: NAME ... expected",
				 shown);
			*error_r = msg;
			return -1;
		}
		char *end = colon;
		while (end > r && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		char *names = colon + 1;
		names += strspn(names, " \t");
		int ok = *r != '\0' && *names != '\0';
		for (const char *c = names; ok && *c != '\0'; c++)
			ok = (*c >= 'A' && *c <= 'Z') ||
			     (*c >= 'a' && *c <= 'z') ||
			     (*c >= '0' && *c <= '9') || strchr("=+-. \t", *c);
		if (!ok) {
			snprintf(msg, sizeof(msg),
				 "imap.client_capabilities_off: '%s': a "
				 "pattern and capability names expected",
				 shown);
			*error_r = msg;
			return -1;
		}
		if (fn != NULL)
			fn(ctx, r, names);
	}
	return 0;
}

int
imap_caps_rules_check(const char *rules, const char **error_r)
{
	return rules_walk(rules, NULL, NULL, error_r);
}

struct rule_match {
	const char *client;
	struct buf *off;
};

static void
rule_match(void *ctx, const char *pattern, const char *names)
{
	struct rule_match *m = ctx;
	if (fnmatch(pattern, m->client, FNM_CASEFOLD) != 0)
		return;
	for (const char *q = names; *q != '\0';) {
		q += strspn(q, " \t");
		size_t n = strcspn(q, " \t");
		if (n > 0) {
			if (buf_used(m->off) > 0)
				buf_append(m->off, " ", 1);
			buf_append(m->off, q, n);
		}
		q += n;
	}
}

void
imap_caps_apply(struct imap_session *is, const char *account_off,
		const char *client)
{
	if (account_off != is->caps_off_account) {
		free(is->caps_off_account);
		is->caps_off_account = NULL;
		if (account_off != NULL && account_off[0] != '\0' &&
		    (is->caps_off_account = strdup(account_off)) == NULL)
			abort();
	}
	if (client != is->client_id)
		snprintf(is->client_id, sizeof(is->client_id), "%s",
			 client != NULL ? client : "");
	struct buf off = BUF_INIT;
	if (is->caps_off_account != NULL)
		buf_append_str(&off, is->caps_off_account);
	size_t own = buf_used(&off);
	if (client != NULL && client[0] != '\0') {
		const struct config *cfg = &is->s->be->cfg;
		struct rule_match m = {client, &off};
		const char *err;
		if (rules_walk(cfg->imap_client_capabilities_off, rule_match,
			       &m, &err) < 0)
			log_error("session=%s %s", is->s->id, err);
	}
	buf_append(&off, "", 1);
	free(is->caps);
	is->caps = caps_without(buf_ptr(&off));
	if (buf_used(&off) > 1)
		log_info("session=%s client=\"%s\" capabilities off: %s%s%s",
			 is->s->id, client != NULL ? client : "", buf_ptr(&off),
			 buf_used(&off) - 1 > own && own > 0
			     ? " (account and client)"
			 : own > 0 ? " (account)"
				   : " (client)",
			 is->caps == NULL ? ", none of them offered" : "");
	buf_free(&off);
}
