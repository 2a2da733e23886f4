/* cidr.h - lists of networks ("127.0.0.0/8 10.1.2.3 ::1/128") and the
 * test whether an address belongs to one of them.
 *
 * Used for the frontend's trusted networks and the networks allowed to
 * send a PROXY protocol header.  A list is parsed once at startup (or
 * reload) and read without locks afterwards.
 */
#ifndef PORTICO_CIDR_H
#define PORTICO_CIDR_H

#include <stddef.h>
#include <sys/socket.h>

#define CIDR_MAX 64

struct cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network bytes, masked */
	unsigned bits;           /* prefix length */
};

struct cidr_list {
	struct cidr nets[CIDR_MAX];
	unsigned n;
};

/* Parses a list separated by spaces or commas; an address without
 * "/bits" is a single host.  Returns -1 with a message in *error_r
 * (static storage) on a malformed entry or more than CIDR_MAX. */
int cidr_list_parse(const char *text, struct cidr_list *list,
		    const char **error_r);
/* Whether sa (AF_INET or AF_INET6; IPv4-mapped IPv6 counts as IPv4)
 * lies in one of the networks. */
int cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa);

#endif
