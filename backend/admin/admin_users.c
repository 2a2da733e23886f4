/* admin_users.c - portico-admin's account commands: provision a
 * mailbox in a backend's store.
 */
#include <stdio.h>

#include "backend/admin/admin.h"

/* provision MAILBOX_ID: the user and the standard folders (an existing
 * user is left as it is). */
int
admin_users_provision(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return ADMIN_USAGE;
	struct store_provision_args pa = {argv[0]};
	char ebuf[STORE_ERR_SIZE];
	if (store_run(a->st, store_op_provision, &pa, ebuf) != 0) {
		fprintf(stderr, "portico-admin: provision: %s\n", ebuf);
		return 1;
	}
	printf("provisioned %s\n", argv[0]);
	return 0;
}
