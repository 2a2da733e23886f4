/* proxy_proto.c - PROXY protocol v1 (text) and v2 (binary) headers. */
#include "common/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

static int
prefix_matches(const void *data, size_t len, const void *sig, size_t siglen)
{
	return memcmp(data, sig, len < siglen ? len : siglen) == 0;
}

int
proxy_signature(const void *data, size_t len)
{
	if (len == 0)
		return 0;
	return prefix_matches(data, len, v1_sig, 6) ||
	       prefix_matches(data, len, v2_sig, sizeof(v2_sig));
}

/* A decimal port: 1 to 5 digits, no leading zero, at most 65535. */
static int
v1_port(const char *s, size_t len, unsigned *port_r)
{
	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = v;
	return 0;
}

static int
v1_addr(int family, const char *s, size_t len, unsigned port,
	struct sockaddr_storage *ss)
{
	char text[INET6_ADDRSTRLEN + 1];
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? 0 : -1;
}

static enum proxy_status
v1_parse(const char *p, size_t len, struct proxy_hdr *hdr, size_t *used_r,
	 const char **error_r)
{
	size_t end = 0;
	size_t limit = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	for (; end < limit; end++) {
		unsigned char ch = (unsigned char)p[end];
		if (ch == '\r')
			break;
		if (ch < 0x20 || ch > 0x7e) {
			*error_r = "PROXY v1: invalid byte in header";
			return PROXY_ERROR;
		}
	}
	if (end == limit) {
		if (limit == PROXY_V1_MAX) {
			*error_r = "PROXY v1: header too long";
			return PROXY_ERROR;
		}
		return PROXY_MORE;
	}
	if (end + 2 > PROXY_V1_MAX) {
		*error_r = "PROXY v1: header too long";
		return PROXY_ERROR;
	}
	if (end + 1 >= len)
		return PROXY_MORE;
	if (p[end + 1] != '\n') {
		*error_r = "PROXY v1: CR not followed by LF";
		return PROXY_ERROR;
	}
	/* Fields: PROXY proto src dst sport dport, one space apart. */
	const char *f[6];
	size_t fl[6];
	unsigned n = 0;
	size_t i = 0;
	while (i < end) {
		size_t s = i;
		while (i < end && p[i] != ' ')
			i++;
		if (n == 6 || i == s) {
			*error_r = "PROXY v1: malformed header";
			return PROXY_ERROR;
		}
		f[n] = p + s;
		fl[n] = i - s;
		n++;
		if (i < end)
			i++; /* the space */
		if (i == end && p[i - 1] == ' ') {
			*error_r = "PROXY v1: malformed header";
			return PROXY_ERROR;
		}
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 1;
	*used_r = end + 2;
	if (n >= 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		hdr->local = 1;
		return PROXY_DONE;
	}
	int family;
	if (n >= 2 && fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (n >= 2 && fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else {
		*error_r = "PROXY v1: unknown protocol";
		return PROXY_ERROR;
	}
	unsigned sport, dport;
	if (n != 6 || v1_port(f[4], fl[4], &sport) < 0 ||
	    v1_port(f[5], fl[5], &dport) < 0 ||
	    v1_addr(family, f[2], fl[2], sport, &hdr->src) < 0 ||
	    v1_addr(family, f[3], fl[3], dport, &hdr->dst) < 0) {
		*error_r = "PROXY v1: invalid address or port";
		return PROXY_ERROR;
	}
	return PROXY_DONE;
}

static enum proxy_status
v2_parse(const unsigned char *p, size_t len, struct proxy_hdr *hdr,
	 size_t *used_r, const char **error_r)
{
	if (len < 16)
		return PROXY_MORE;
	unsigned ver = p[12] >> 4, cmd = p[12] & 0x0f;
	if (ver != 2) {
		*error_r = "PROXY v2: unsupported version";
		return PROXY_ERROR;
	}
	if (cmd > 1) {
		*error_r = "PROXY v2: unknown command";
		return PROXY_ERROR;
	}
	size_t body = ((size_t)p[14] << 8) | p[15];
	if (body > PROXY_MAX_HEADER - 16) {
		*error_r = "PROXY v2: header too long";
		return PROXY_ERROR;
	}
	if (len < 16 + body)
		return PROXY_MORE;
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 2;
	*used_r = 16 + body;
	unsigned fam = p[13] >> 4, proto = p[13] & 0x0f;
	if (fam > 3 || proto > 2) {
		*error_r = "PROXY v2: unknown address family";
		return PROXY_ERROR;
	}
	if (cmd == 0 || proto != 1 || (fam != 1 && fam != 2)) {
		/* LOCAL (health checks), or not TCP over IP: the
		   connection's own addresses stand. */
		hdr->local = 1;
		return PROXY_DONE;
	}
	const unsigned char *a = p + 16;
	if (fam == 1) {
		if (body < 12) {
			*error_r = "PROXY v2: address block too short";
			return PROXY_ERROR;
		}
		struct sockaddr_in *s = (struct sockaddr_in *)&hdr->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&hdr->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
	} else {
		if (body < 36) {
			*error_r = "PROXY v2: address block too short";
			return PROXY_ERROR;
		}
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&hdr->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&hdr->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
	}
	return PROXY_DONE;
}

enum proxy_status
proxy_parse(const void *data, size_t len, struct proxy_hdr *hdr,
	    size_t *used_r, const char **error_r)
{
	const unsigned char *p = data;
	if (len == 0)
		return PROXY_MORE;
	if (p[0] == 'P') {
		if (!prefix_matches(p, len, v1_sig, 6)) {
			*error_r = "not a PROXY protocol header";
			return PROXY_ERROR;
		}
		if (len < 6)
			return PROXY_MORE;
		return v1_parse(data, len, hdr, used_r, error_r);
	}
	if (!prefix_matches(p, len, v2_sig, sizeof(v2_sig))) {
		*error_r = "not a PROXY protocol header";
		return PROXY_ERROR;
	}
	return v2_parse(p, len, hdr, used_r, error_r);
}
