/* cidr.c - network lists. */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char cidr_error[160];

static void
cidr_mask(struct cidr *n)
{
	unsigned len = n->family == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < len; i++) {
		unsigned keep = n->bits > i * 8 ? n->bits - i * 8 : 0;
		if (keep >= 8)
			continue;
		n->addr[i] &= (unsigned char)(0xff00 >> keep);
	}
}

static int
cidr_parse_one(const char *tok, struct cidr *n)
{
	char host[64];
	const char *slash = strchr(tok, '/');
	size_t hl = slash ? (size_t)(slash - tok) : strlen(tok);
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, tok, hl);
	host[hl] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, host, n->addr) == 1) {
		n->family = AF_INET;
		n->bits = 32;
	} else if (inet_pton(AF_INET6, host, n->addr) == 1) {
		n->family = AF_INET6;
		n->bits = 128;
	} else {
		return -1;
	}
	if (slash != NULL) {
		char *end;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		unsigned long b = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || b > n->bits)
			return -1;
		n->bits = (unsigned)b;
	}
	cidr_mask(n);
	return 0;
}

int
cidr_list_parse(const char *text, struct cidr_list *list,
		const char **error_r)
{
	char tok[128];
	const char *p = text;
	list->n = 0;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		size_t len = strcspn(p, " ,\t");
		if (len >= sizeof(tok) || list->n == CIDR_MAX) {
			snprintf(cidr_error, sizeof(cidr_error),
				 len >= sizeof(tok) ? "network too long"
						    : "more than %d networks",
				 CIDR_MAX);
			*error_r = cidr_error;
			return -1;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		if (cidr_parse_one(tok, &list->nets[list->n]) < 0) {
			snprintf(cidr_error, sizeof(cidr_error),
				 "invalid network \"%.64s\" (expected "
				 "address or address/bits)",
				 tok);
			*error_r = cidr_error;
			return -1;
		}
		list->n++;
		p += len;
	}
}

static int
cidr_match_one(const struct cidr *n, int family, const unsigned char *addr)
{
	if (n->family != family)
		return 0;
	unsigned full = n->bits / 8, rest = n->bits % 8;
	if (memcmp(n->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff00 >> rest);
	return (addr[full] & mask) == n->addr[full];
}

int
cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa)
{
	int family;
	const unsigned char *addr;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)
			       ->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			addr = a6->s6_addr + 12;
		} else {
			family = AF_INET6;
			addr = a6->s6_addr;
		}
	} else {
		return 0;
	}
	for (unsigned i = 0; i < list->n; i++)
		if (cidr_match_one(&list->nets[i], family, addr))
			return 1;
	return 0;
}
