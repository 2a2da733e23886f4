/* fuzz_http_xml.c - what a frontend reads from HTTP request bodies: the
 * autodiscover XML scanner and form/query parameters.
 *
 * The input is copied to a buffer of its exact size (ASan sees any read
 * beyond it).  Answers are -1, 0 or 1, a value always fits its buffer,
 * and a found element's text holds no markup ("<" only from &lt;). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "frontend/http/http_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A decimal character reference to '<' (60), leading zeros allowed
 * (XML 1.0, 4.1: CharRef ::= '&#' [0-9]+ ';'). */
static int
has_ref_60(const char *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++) {
		if (p[i] != '&' || p[i + 1] != '#')
			continue;
		size_t k = i + 2;
		while (k < n && p[k] == '0')
			k++;
		if (n - k >= 3 && memcmp(p + k, "60;", 3) == 0)
			return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {"EMailAddress",
				      "AcceptableResponseSchema",
				      "Autodiscover", "user", "password"};
	if (size > 65536)
		size = 65536;
	char *copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char out[64];
		int rc = http_xml_element(copy, size, names[i], out,
					  sizeof(out));
		if (rc < -1 || rc > 1)
			abort();
		if (rc == 1 && strlen(out) >= sizeof(out))
			abort();
		if (rc == 1 && strchr(out, '<') != NULL &&
		    memmem(copy, size, "&lt;", 4) == NULL &&
		    !has_ref_60(copy, size))
			abort();
		rc = http_param(copy, size, names[i], out, sizeof(out));
		if (rc < -1 || rc > 1)
			abort();
		if (rc == 1 && strlen(out) >= sizeof(out))
			abort();
	}
	free(copy);
	return 0;
}
