/* proxy_proto.h - the PROXY protocol header (HAProxy, versions 1 and 2),
 * as sent by a load balancer at the start of a connection to pass on the
 * client's real address.
 *
 * proxy_parse() is given every byte received so far and says whether the
 * header is complete, needs more, or is invalid; it keeps no state and
 * reads at most PROXY_MAX_HEADER bytes, so a caller buffers at most that
 * much.  Whether to accept a header at all is the caller's business
 * (only from trusted networks).
 */
#ifndef PORTICO_PROXY_PROTO_H
#define PORTICO_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

/* v1: 107 bytes at most (spec); v2: 16 + addresses + TLVs, which we bound
 * here (HAProxy sends well under this unless told to add large TLVs). */
#define PROXY_V1_MAX 107
#define PROXY_MAX_HEADER 1024

enum proxy_status {
	PROXY_MORE,  /* valid so far, incomplete */
	PROXY_DONE,  /* complete: *used_r bytes form the header */
	PROXY_ERROR, /* not a valid header: *error_r says why */
	PROXY_STATUS_COUNT
};

struct proxy_hdr {
	int version;                 /* 1 or 2 */
	int local;                   /* v2 LOCAL, v1 UNKNOWN, or a family
					without addresses: keep the
					connection's own addresses */
	struct sockaddr_storage src; /* the client, unless local */
	struct sockaddr_storage dst; /* the address it connected to */
};

enum proxy_status proxy_parse(const void *data, size_t len,
			      struct proxy_hdr *hdr, size_t *used_r,
			      const char **error_r);
/* Whether data (len >= 1) is the beginning of a PROXY header of either
 * version: used to refuse headers from untrusted addresses. */
int proxy_signature(const void *data, size_t len);

#endif
