/* http_autodiscover.c - Outlook's POX autodiscover (MS-OXDSCLI):
 * POST /autodiscover/autodiscover.xml with the user's EMailAddress,
 * answered with one Protocol entry per external setting (POP3, IMAP,
 * SMTP when advertised) that applies to every site.
 *
 * The request is read with a small bounded scanner (http_xml.c): the body
 * is limited by http.max_body_size, only the text of the EMailAddress and
 * AcceptableResponseSchema elements is taken, entities are decoded and
 * anything odd is refused with 400.
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "frontend/frontend.h"
#include "frontend/http/http_xml.h"

#define AUTODISCOVER_RESPONSE_NS                                             \
	"http://schemas.microsoft.com/exchange/autodiscover/responseschema/" \
	"2006"
#define AUTODISCOVER_OUTLOOK_NS                                  \
	"http://schemas.microsoft.com/exchange/autodiscover/outlook/" \
	"responseschema/2006a"

static void
autodiscover_error(struct http_conn *hc, int status, int code,
		   const char *message)
{
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		   "<Autodiscover xmlns=\"" AUTODISCOVER_RESPONSE_NS "\">\n"
		   "  <Response>\n"
		   "    <Error>\n"
		   "      <ErrorCode>%d</ErrorCode>\n"
		   "      <Message>%s</Message>\n"
		   "      <DebugData />\n"
		   "    </Error>\n"
		   "  </Response>\n"
		   "</Autodiscover>\n",
		   code, message);
	http_respond(hc, status, "application/xml; charset=utf-8", buf_ptr(&b),
		     buf_used(&b), NULL);
	buf_free(&b);
}

static void
autodiscover_protocols(struct buf *b, const struct connset *set,
		       const char *type, const char *login)
{
	for (unsigned i = 0; i < set->n; i++) {
		const struct connset_entry *e = &set->e[i];
		if (e->site != 0)
			continue;
		buf_printf(b, "      <Protocol>\n        <Type>%s</Type>\n"
			      "        <Server>",
			   type);
		http_escape(b, e->host);
		buf_printf(b,
			   "</Server>\n"
			   "        <Port>%u</Port>\n"
			   "        <DomainRequired>off</DomainRequired>\n"
			   "        <LoginName>",
			   e->port);
		http_escape(b, login);
		buf_printf(b,
			   "</LoginName>\n"
			   "        <SPA>off</SPA>\n"
			   "        <SSL>%s</SSL>\n"
			   "        <Encryption>%s</Encryption>\n"
			   "        <AuthRequired>on</AuthRequired>\n"
			   "      </Protocol>\n",
			   e->enc == CONNSET_NONE ? "off" : "on",
			   e->enc == CONNSET_SSL   ? "SSL"
			   : e->enc == CONNSET_TLS ? "TLS"
						   : "None");
	}
}

void
http_autodiscover(struct frontend *fe, struct http_conn *hc,
		  struct http_request *req)
{
	if (strcmp(req->method, "POST") != 0) {
		static const char m[] = "Use POST with an autodiscover "
					"request.\n";
		http_respond(hc, 405, "text/plain; charset=utf-8", m,
			     sizeof(m) - 1, "Allow: POST\r\n");
		return;
	}
	char addr[256], schema[256];
	const char *xml = buf_ptr(&req->body);
	size_t len = buf_used(&req->body);
	if (len == 0 || memchr(xml, '\0', len) != NULL ||
	    http_xml_element(xml, len, "Autodiscover", schema,
				 sizeof(schema)) == 0) {
		autodiscover_error(hc, 400, 600, "Invalid Request");
		return;
	}
	int found = http_xml_element(xml, len, "EMailAddress", addr,
					 sizeof(addr));
	if (found <= 0 || !http_mail_address_valid(addr, NULL)) {
		autodiscover_error(hc, 400, 600, "Invalid Request");
		return;
	}
	found = http_xml_element(xml, len, "AcceptableResponseSchema",
				     schema, sizeof(schema));
	if (found < 0 ||
	    (found == 1 && strcmp(schema, AUTODISCOVER_OUTLOOK_NS) != 0)) {
		autodiscover_error(hc, 400, 601,
				   "Provider is not available");
		return;
	}
	struct buf b = BUF_INIT;
	buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			   "<Autodiscover xmlns=\"" AUTODISCOVER_RESPONSE_NS
			   "\">\n"
			   "  <Response xmlns=\"" AUTODISCOVER_OUTLOOK_NS
			   "\">\n"
			   "    <User>\n      <DisplayName>");
	http_escape(&b, addr);
	buf_append_str(&b, "</DisplayName>\n    </User>\n"
			   "    <Account>\n"
			   "      <AccountType>email</AccountType>\n"
			   "      <Action>settings</Action>\n");
	autodiscover_protocols(&b, http_public_settings(fe, CONNSET_IMAP),
			       "IMAP", addr);
	autodiscover_protocols(&b, http_public_settings(fe, CONNSET_POP3),
			       "POP3", addr);
	autodiscover_protocols(&b, http_public_settings(fe, CONNSET_SMTP),
			       "SMTP", addr);
	buf_append_str(&b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	http_respond(hc, 200, "application/xml; charset=utf-8", buf_ptr(&b),
		     buf_used(&b), NULL);
	buf_free(&b);
}
