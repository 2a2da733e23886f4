/* admin_settings.c - portico-admin's configuration commands:
 * config-reference (docs/CONFIG.md), dns-srv (SRV records for the
 * connection settings).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/admin/admin.h"
#include "common/connset.h"

/* dns-srv DOMAIN [--ttl SECONDS]: the SRV records (RFC 6186, RFC 8314)
 * for the external connection settings of a frontend's configuration. */
static int
dns_srv(struct config *cfg, int argc, char **argv)
{
	const char *err;
	long ttl = 3600;
	char *end = NULL;
	if (argc == 3 && strcmp(argv[1], "--ttl") == 0)
		ttl = strtol(argv[2], &end, 10);
	if ((argc != 1 && argc != 3) || (argc == 3 && end == NULL) ||
	    (end != NULL && (*end != '\0' || ttl < 0 || ttl > 2147483647L))) {
		return ADMIN_USAGE;
	}
	if (argv[0][0] == '\0' || argv[0][0] == '.' ||
	    strspn(argv[0], "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
		    strlen(argv[0])) {
		fprintf(stderr, "portico-admin: dns-srv: invalid domain\n");
		return 2;
	}
	struct connsets sets;
	if (connsets_load(cfg, &sets, &err) < 0) {
		fprintf(stderr, "portico-admin: %s\n", err);
		return 1;
	}
	int offered[CONNSET_PROTO_COUNT] = {cfg->frontend_imap_enabled,
					     cfg->frontend_pop3_enabled, 1};
	connsets_write_srv(&sets, offered, argv[0], ttl, stdout);
	return 0;
}

/* dns-srv DOMAIN [--ttl SECONDS] */
int
admin_dns_srv(struct admin *a, int argc, char **argv)
{
	if (argc < 1)
		return ADMIN_USAGE;
	return dns_srv(&a->cfg, argc, argv);
}

/* config-reference */
int
admin_config_reference(struct admin *a, int argc, char **argv)
{
	config_write_reference(stdout);
	return 0;
}
