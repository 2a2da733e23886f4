/* ldap_escape.c - RFC 4515 value escaping for search filters. */
#include "frontend/directory.h"

#include <stddef.h>

int
ldap_filter_escape(const char *in, size_t len, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		/* RFC 4515 3: NUL ( ) * \ must be escaped; control bytes
		   are escaped too so that logs and filters stay plain. */
		if (c == 0 || c == '(' || c == ')' || c == '*' || c == '\\' ||
		    c < 0x20 || c == 0x7f) {
			if (o + 3 >= outsize)
				return -1;
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = (char)c;
		}
	}
	if (o >= outsize)
		return -1;
	out[o] = '\0';
	return 0;
}
