/* http_autodiscover.c - Outlook's POX autodiscover (MS-OXDSCLI):
 * POST /autodiscover/autodiscover.xml with the user's EMailAddress,
 * answered with one Protocol entry per external setting (POP3, IMAP,
 * SMTP when advertised) that applies to every site.
 *
 * The request is read with a small bounded scanner: the body is limited
 * by http.max_body_size, only the text of the EMailAddress and
 * AcceptableResponseSchema elements is taken, entities are decoded and
 * anything odd is refused with 400.
 */
#include "frontend/http/http_routes.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "frontend/frontend.h"

#define AUTODISCOVER_RESPONSE_NS                                             \
	"http://schemas.microsoft.com/exchange/autodiscover/responseschema/" \
	"2006"
#define AUTODISCOVER_OUTLOOK_NS                                  \
	"http://schemas.microsoft.com/exchange/autodiscover/outlook/" \
	"responseschema/2006a"

/* Decodes the five predefined entities and numeric references of ASCII
 * characters; -1 on anything else. */
static int
autodiscover_unescape(const char *s, size_t len, char *out, size_t outsize)
{
	static const struct {
		const char *name;
		char ch;
	} ents[] = {{"amp;", '&'},  {"lt;", '<'},   {"gt;", '>'},
		    {"quot;", '"'}, {"apos;", '\''}};
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '&') {
			size_t j, rest = len - i - 1;
			for (j = 0; j < sizeof(ents) / sizeof(ents[0]); j++) {
				size_t n = strlen(ents[j].name);
				if (rest >= n &&
				    memcmp(s + i + 1, ents[j].name, n) == 0) {
					ch = ents[j].ch;
					i += n;
					break;
				}
			}
			if (j == sizeof(ents) / sizeof(ents[0])) {
				unsigned v = 0;
				size_t k = i + 1;
				if (k >= len || s[k] != '#')
					return -1;
				for (k++; k < len && s[k] >= '0' && s[k] <= '9' &&
					  v < 1000;
				     k++)
					v = v * 10 + (unsigned)(s[k] - '0');
				if (k >= len || s[k] != ';' || v == 0 ||
				    v > 126)
					return -1;
				ch = (char)v;
				i = k;
			}
		}
		if (o + 1 >= outsize)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

/* The trimmed text of the first element whose local name is name (any
 * namespace prefix).  1: found, 0: absent, -1: malformed or too long. */
static int
autodiscover_element(const char *xml, size_t len, const char *name,
		     char *out, size_t outsize)
{
	size_t nlen = strlen(name);
	const char *p = xml, *end = xml + len;
	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		p++;
		if (p >= end)
			return -1;
		if (*p == '/' || *p == '?' || *p == '!')
			continue;
		const char *n = p;
		while (p < end && *p != '>' && *p != '/' && *p != ' ' &&
		       *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		const char *colon = memchr(n, ':', (size_t)(p - n));
		const char *local = colon ? colon + 1 : n;
		if ((size_t)(p - local) != nlen || memcmp(local, name, nlen) != 0)
			continue;
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (gt == NULL)
			return -1;
		if (gt[-1] == '/') {
			if (outsize == 0)
				return -1;
			out[0] = '\0';
			return 1;
		}
		const char *text = gt + 1;
		const char *lt = memchr(text, '<', (size_t)(end - text));
		if (lt == NULL)
			return -1;
		while (text < lt && (*text == ' ' || *text == '\t' ||
				     *text == '\r' || *text == '\n'))
			text++;
		while (lt > text && (lt[-1] == ' ' || lt[-1] == '\t' ||
				     lt[-1] == '\r' || lt[-1] == '\n'))
			lt--;
		if (autodiscover_unescape(text, (size_t)(lt - text), out,
					  outsize) < 0)
			return -1;
		return 1;
	}
	return 0;
}

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
	    autodiscover_element(xml, len, "Autodiscover", schema,
				 sizeof(schema)) == 0) {
		autodiscover_error(hc, 400, 600, "Invalid Request");
		return;
	}
	int found = autodiscover_element(xml, len, "EMailAddress", addr,
					 sizeof(addr));
	if (found <= 0 || !http_mail_address_valid(addr, NULL)) {
		autodiscover_error(hc, 400, 600, "Invalid Request");
		return;
	}
	found = autodiscover_element(xml, len, "AcceptableResponseSchema",
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
