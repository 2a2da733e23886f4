/* fuzz_proxy.c - the PROXY protocol header parser.
 *
 * Every prefix of the input is parsed, as a frontend does while bytes
 * arrive: a prefix may only be MORE until the parser decides, the
 * decision never changes once taken, and a header never claims more
 * bytes than it was given or than PROXY_MAX_HEADER. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * PROXY_MAX_HEADER)
		size = 2 * PROXY_MAX_HEADER;
	enum proxy_status first = PROXY_MORE;
	size_t first_used = 0;
	for (size_t n = 1; n <= size; n++) {
		uint8_t *copy = malloc(n);
		if (copy == NULL)
			return 0;
		memcpy(copy, data, n);
		struct proxy_hdr h;
		size_t used = 0;
		const char *err = NULL;
		enum proxy_status st = proxy_parse(copy, n, &h, &used, &err);
		free(copy);
		if (st == PROXY_ERROR && err == NULL)
			__builtin_trap();
		if (st == PROXY_DONE &&
		    (used > n || used > PROXY_MAX_HEADER || used == 0))
			__builtin_trap();
		if (first == PROXY_MORE) {
			first = st;
			first_used = used;
		} else if (st != first ||
			   (st == PROXY_DONE && used != first_used)) {
			__builtin_trap();
		}
		if (st != PROXY_MORE && n > PROXY_MAX_HEADER + 1)
			break;
	}
	(void)proxy_signature(data, size);
	return 0;
}
