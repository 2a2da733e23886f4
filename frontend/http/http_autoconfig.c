/* http_autoconfig.c - Thunderbird's autoconfig file (config-v1.1.xml),
 * from the external connection settings that apply to every site.
 *
 * GET /mail/config-v1.1.xml?emailaddress=ADDR and
 * GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDR.
 * The address only names the domain; nothing about the account is
 * looked up (the answer is the same for every user, known or not).
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "frontend/frontend.h"

static const char *
autoconfig_socket_type(enum connset_enc enc)
{
	switch (enc) {
	case CONNSET_SSL:
		return "SSL";
	case CONNSET_TLS:
		return "STARTTLS";
	case CONNSET_NONE:
		return "plain";
	case CONNSET_ENC_COUNT:
		break;
	}
	return "plain";
}

static void
autoconfig_servers(struct buf *b, const struct connset *set,
		   const char *element, const char *type)
{
	for (unsigned i = 0; i < set->n; i++) {
		const struct connset_entry *e = &set->e[i];
		if (e->site != 0)
			continue;
		buf_printf(b, "    <%s type=\"%s\">\n", element, type);
		buf_append_str(b, "      <hostname>");
		http_escape(b, e->host);
		buf_printf(b,
			   "</hostname>\n"
			   "      <port>%u</port>\n"
			   "      <socketType>%s</socketType>\n"
			   "      <authentication>password-cleartext"
			   "</authentication>\n"
			   "      <username>%%EMAILADDRESS%%</username>\n"
			   "    </%s>\n",
			   e->port, autoconfig_socket_type(e->enc), element);
	}
}

/* The domain from the Host header: "autoconfig.example.com:8080" ->
 * "example.com". */
static void
autoconfig_host_domain(const char *host, char *out, size_t outsize)
{
	if (strncasecmp(host, "autoconfig.", 11) == 0)
		host += 11;
	size_t len = strcspn(host, ":");
	if (len >= outsize)
		len = 0;
	memcpy(out, host, len);
	out[len] = '\0';
	char probe[300];
	snprintf(probe, sizeof(probe), "x@%s", out);
	if (!http_mail_address_valid(probe, NULL))
		out[0] = '\0';
}

void
http_autoconfig(struct frontend *fe, struct http_conn *hc,
		struct http_request *req)
{
	if (!http_get_only(hc, req))
		return;
	char addr[256], domain[256];
	const char *dom = NULL;
	int found = http_param(req->query, strlen(req->query), "emailaddress",
			       addr, sizeof(addr));
	if (found < 0 || (found == 1 && !http_mail_address_valid(addr, &dom))) {
		static const char m[] = "Invalid emailaddress.\n";
		http_respond(hc, 400, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, NULL);
		return;
	}
	if (dom != NULL)
		snprintf(domain, sizeof(domain), "%s", dom);
	else
		autoconfig_host_domain(req->host, domain, sizeof(domain));
	const struct connset *imap = http_public_settings(fe, CONNSET_IMAP);
	const struct connset *pop3 = http_public_settings(fe, CONNSET_POP3);
	const struct connset *smtp = http_public_settings(fe, CONNSET_SMTP);
	struct buf b = BUF_INIT;
	buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<clientConfig version=\"1.1\">\n"
			   "  <emailProvider id=\"");
	http_escape(&b, domain[0] ? domain : fe->cfg.global_name);
	buf_append_str(&b, "\">\n");
	if (domain[0] != '\0') {
		buf_append_str(&b, "    <domain>");
		http_escape(&b, domain);
		buf_append_str(&b, "</domain>\n");
	}
	buf_append_str(&b, "    <displayName>");
	http_escape(&b, fe->cfg.http_display_name);
	buf_append_str(&b, "</displayName>\n    <displayShortName>");
	http_escape(&b, fe->cfg.http_display_name);
	buf_append_str(&b, "</displayShortName>\n");
	autoconfig_servers(&b, imap, "incomingServer", "imap");
	autoconfig_servers(&b, pop3, "incomingServer", "pop3");
	autoconfig_servers(&b, smtp, "outgoingServer", "smtp");
	buf_append_str(&b, "  </emailProvider>\n</clientConfig>\n");
	http_respond(hc, 200, "application/xml; charset=utf-8", buf_ptr(&b),
		     buf_used(&b), NULL);
	buf_free(&b);
}
