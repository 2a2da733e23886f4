/* http_mobileconfig.c - a configuration profile for Apple's Mail (iOS,
 * iPadOS, macOS), which reads neither autoconfig nor autodiscover: one
 * com.apple.mail.managed payload, from the external connection settings
 * that apply to every site, as autoconfig gives them, or those of the
 * user's site (site=N, which the settings page adds when that site has
 * entries of its own).
 *
 * GET /mail/apple.mobileconfig?emailaddress=ADDR[&protocol=pop3][&site=N]
 *
 * IMAP when it is offered (POP3 with protocol=pop3, or when IMAP is
 * not), SMTP submission for the outgoing server; of each protocol's
 * entries the first with implicit TLS, else the first with STARTTLS,
 * else the first.  The user name is ADDR and no password is in the
 * profile: the device asks for it.  Like autoconfig, nothing about the
 * account is looked up.  The identifiers are derived from global.name
 * and ADDR, so that a profile downloaded again replaces the one
 * installed.  The profile is signed (CMS, DER) with the certificate the
 * frontend shows for the request's host name, as SNI would pick it, so
 * that a device that trusts that certificate calls the profile verified.
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/tls.h"

#include "frontend/frontend.h"

/* The entry a device should use: of site's own entries when it has any
 * (site 0: none asked for), else of those for every site; implicit TLS,
 * else STARTTLS, else any; NULL when the protocol has none. */
static const struct connset_entry *
profile_entry(const struct connset *set, int site)
{
	const struct connset_entry *best = NULL;
	for (int pass = site != 0 ? 0 : 1; pass < 2 && best == NULL; pass++)
		for (unsigned i = 0; i < set->n; i++) {
			const struct connset_entry *e = &set->e[i];
			if (e->site != (pass == 0 ? site : 0))
				continue;
			if (best == NULL || e->enc < best->enc)
				best = e;
		}
	return best;
}

int
http_mobileconfig_site(const struct frontend *fe, int site)
{
	static const enum connset_proto protos[] = {CONNSET_IMAP, CONNSET_POP3,
						    CONNSET_SMTP};
	for (unsigned p = 0; site != 0 && p < 3; p++) {
		const struct connset *set = http_public_settings(fe, protos[p]);
		for (unsigned i = 0; i < set->n; i++)
			if (set->e[i].site == site)
				return 1;
	}
	return 0;
}

static void
plist_string(struct buf *b, const char *key, const char *value)
{
	buf_printf(b, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
	http_escape(b, value);
	buf_append_str(b, "</string>\n");
}

/* A UUID (RFC 4122 form, version 5 bits) from SHA-256 of what names it. */
static void
profile_uuid(const char *a, const char *b, const char *what, char out[37])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	struct buf in = BUF_INIT;
	buf_append(&in, a, strlen(a) + 1);
	buf_append(&in, b, strlen(b) + 1);
	buf_append_str(&in, what);
	SHA256((const unsigned char *)buf_ptr(&in), buf_used(&in), h);
	buf_free(&in);
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		 "%02X%02X%02X%02X%02X%02X",
		 h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9],
		 h[10], h[11], h[12], h[13], h[14], h[15]);
}

static void
profile_server(struct buf *b, const char *dir, const struct connset_entry *e,
	       const char *addr)
{
	buf_printf(b,
		   "\t\t\t<key>%sMailServerAuthentication</key>\n"
		   "\t\t\t<string>EmailAuthPassword</string>\n",
		   dir);
	buf_printf(b, "\t\t\t<key>%sMailServerHostName</key>\n\t\t\t<string>",
		   dir);
	http_escape(b, e->host);
	buf_printf(b,
		   "</string>\n"
		   "\t\t\t<key>%sMailServerPortNumber</key>\n"
		   "\t\t\t<integer>%u</integer>\n"
		   "\t\t\t<key>%sMailServerUseSSL</key>\n"
		   "\t\t\t<%s/>\n",
		   dir, e->port, dir,
		   e->enc == CONNSET_NONE ? "false" : "true");
	buf_printf(b, "\t\t\t<key>%sMailServerUsername</key>\n\t\t\t<string>",
		   dir);
	http_escape(b, addr);
	buf_append_str(b, "</string>\n");
}

/* The profile signed with the certificate (and its chain) shown for
 * host: 0 and the DER in out, or -1. */
static int
profile_sign(struct frontend *fe, const char *host, const struct buf *in,
	     struct buf *out)
{
	size_t hl = host[0] == '[' ? 0 : strcspn(host, ":");
	SSL_CTX *ctx = fe->tls != NULL ? tls_server_for_name(fe->tls, host, hl)
				       : NULL;
	X509 *cert = ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;
	EVP_PKEY *key = ctx != NULL ? SSL_CTX_get0_privatekey(ctx) : NULL;
	if (cert == NULL || key == NULL)
		return -1;
	STACK_OF(X509) *chain = NULL;
	SSL_CTX_get0_chain_certs(ctx, &chain);
	BIO *bin = BIO_new_mem_buf(buf_ptr(in), (int)buf_used(in));
	BIO *bout = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = bin != NULL && bout != NULL
				   ? CMS_sign(cert, key, chain, bin,
					      CMS_BINARY | CMS_NOSMIMECAP)
				   : NULL;
	int rc = -1;
	BUF_MEM *m;
	if (cms != NULL && i2d_CMS_bio(bout, cms) == 1 &&
	    BIO_get_mem_ptr(bout, &m) == 1) {
		buf_append(out, m->data, m->length);
		rc = 0;
	}
	CMS_ContentInfo_free(cms);
	BIO_free(bin);
	BIO_free(bout);
	return rc;
}

void
http_mobileconfig(struct frontend *fe, struct http_conn *hc,
		  struct http_request *req)
{
	if (!http_get_only(hc, req))
		return;
	char addr[256], proto[16] = "", site_s[8] = "";
	int found = http_param(req->query, strlen(req->query), "emailaddress",
			       addr, sizeof(addr));
	int pfound = http_param(req->query, strlen(req->query), "protocol",
				proto, sizeof(proto));
	int sfound = http_param(req->query, strlen(req->query), "site", site_s,
				sizeof(site_s));
	int site = 0;
	for (const char *p = site_s; sfound == 1 && *p != '\0'; p++)
		site = *p >= '0' && *p <= '9' && site <= 65535
			   ? site * 10 + (*p - '0')
			   : 100000;
	if (sfound < 0 || (sfound == 1 && (site < 1 || site > 65535))) {
		static const char m[] = "site is a site number (1-65535).\n";
		http_respond(hc, 400, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return;
	}
	if (found != 1 || !http_mail_address_valid(addr, NULL)) {
		static const char m[] = "Give emailaddress=ADDRESS.\n";
		http_respond(hc, 400, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return;
	}
	if (pfound < 0 || (pfound == 1 && strcmp(proto, "imap") != 0 &&
			   strcmp(proto, "pop3") != 0)) {
		static const char m[] = "protocol is imap or pop3.\n";
		http_respond(hc, 400, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return;
	}
	const struct connset_entry *imap = profile_entry(
	    http_public_settings(fe, CONNSET_IMAP), site);
	const struct connset_entry *pop3 = profile_entry(
	    http_public_settings(fe, CONNSET_POP3), site);
	const struct connset_entry *smtp = profile_entry(
	    http_public_settings(fe, CONNSET_SMTP), site);
	int use_pop3 = strcmp(proto, "pop3") == 0 || imap == NULL;
	const struct connset_entry *in = use_pop3 ? pop3 : imap;
	if (in == NULL || (strcmp(proto, "imap") == 0 && imap == NULL)) {
		static const char m[] = "That protocol is not offered here.\n";
		http_respond(hc, 404, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return;
	}
	const char *name = fe->cfg.global_name;
	char uuid[37], account_uuid[37];
	profile_uuid(name, addr, "profile", uuid);
	profile_uuid(name, addr, "account", account_uuid);
	struct buf b = BUF_INIT;
	buf_append_str(&b,
		       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		       "<plist version=\"1.0\">\n<dict>\n"
		       "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	plist_string(&b, "EmailAccountDescription", fe->cfg.http_display_name);
	plist_string(&b, "EmailAccountType",
		     use_pop3 ? "EmailTypePOP" : "EmailTypeIMAP");
	plist_string(&b, "EmailAddress", addr);
	profile_server(&b, "Incoming", in, addr);
	if (smtp != NULL) {
		profile_server(&b, "Outgoing", smtp, addr);
		buf_append_str(
		    &b, "\t\t\t<key>OutgoingPasswordSameAsIncomingPassword"
			"</key>\n\t\t\t<true/>\n");
	}
	plist_string(&b, "PayloadDisplayName", addr);
	buf_append_str(&b, "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>"
			   "mail.account.");
	buf_append_str(&b, account_uuid);
	buf_append_str(&b, "</string>\n"
			   "\t\t\t<key>PayloadType</key>\n"
			   "\t\t\t<string>com.apple.mail.managed</string>\n");
	plist_string(&b, "PayloadUUID", account_uuid);
	buf_append_str(&b, "\t\t\t<key>PayloadVersion</key>\n"
			   "\t\t\t<integer>1</integer>\n"
			   "\t\t</dict>\n\t</array>\n");
	buf_append_str(&b, "\t<key>PayloadDisplayName</key>\n\t<string>");
	http_escape(&b, fe->cfg.http_display_name);
	buf_append_str(&b, "</string>\n\t<key>PayloadIdentifier</key>\n"
			   "\t<string>mail.profile.");
	buf_append_str(&b, uuid);
	buf_append_str(&b, "</string>\n"
			   "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
			   "\t<key>PayloadType</key>\n"
			   "\t<string>Configuration</string>\n"
			   "\t<key>PayloadUUID</key>\n\t<string>");
	buf_append_str(&b, uuid);
	buf_append_str(&b,
		       "</string>\n"
		       "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
		       "</dict>\n</plist>\n");
	struct buf signed_der = BUF_INIT;
	int sign = profile_sign(fe, req->host, &b, &signed_der) == 0;
	if (!sign)
		log_error("http mobileconfig not signed: %s", tls_last_error());
	const struct buf *body = sign ? &signed_der : &b;
	http_respond(hc, 200, "application/x-apple-aspen-config", buf_ptr(body),
		     buf_used(body),
		     "Content-Disposition: attachment; "
		     "filename=\"mail.mobileconfig\"\r\n");
	buf_free(&signed_der);
	buf_free(&b);
}
