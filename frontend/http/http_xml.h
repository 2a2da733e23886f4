/* http_xml.h - the text of one element of a small XML document. */
#ifndef PORTICO_HTTP_XML_H
#define PORTICO_HTTP_XML_H

#include <stddef.h>

/* The trimmed text of the first element of xml[0..len) whose local name
 * is name (any namespace prefix), with the predefined entities and
 * numeric references of printable ASCII decoded, into out (NUL
 * terminated).  1: found, 0: absent, -1: malformed or longer than
 * outsize - 1.  Reads nothing beyond len. */
int http_xml_element(const char *xml, size_t len, const char *name,
		     char *out, size_t outsize);

#endif
