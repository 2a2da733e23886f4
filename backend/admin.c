/* admin.c - portico-admin: the operator's tool.  This file is the
 * dispatcher: it reads -c FILE, opens the backend's store for the
 * commands that need it and runs one command of the table below.  The
 * commands live in backend/admin/, one file per family (admin.h).
 *
 * The store is opened directly; LMDB lets this run beside the backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/admin/admin.h"

enum {
	ADMIN_F_STORE = 1 << 0,    /* opens the backend's store */
	ADMIN_F_NOCONFIG = 1 << 1, /* takes no -c FILE */
};

struct admin_cmd {
	const char *name;
	admin_cmd_fn *fn;
	unsigned flags;
	const char *ini;   /* the file -c names, for the usage */
	const char *args;
};

/* clang-format off */
static const struct admin_cmd admin_cmds[] = {
	{ "settings",         admin_settings,         0,
	  "FILE.ini", "show [--changed] [SECTION|SECTION.NAME]" },
	{ "settings",         admin_settings,         0,
	  "FILE.ini", "set SECTION.NAME=VALUE... [--reload PIDFILE]" },
	{ "backends",         admin_backends,         0,
	  "FRONTEND.ini", "" },
	{ "sessions",         admin_sessions,         0,
	  "FRONTEND.ini", "" },
	{ "sessions",         admin_sessions,         0,
	  "BACKEND.ini", "[MAILBOX_ID]" },
	{ "user",             admin_users_show,       0,
	  "FRONTEND.ini", "ADDRESS" },
	{ "disable",          admin_users_disable,    0,
	  "FRONTEND.ini", "ADDRESS --bind-dn DN --password-file FILE "
	  "[--state STATE]" },
	{ "enable",           admin_users_enable,     0,
	  "FRONTEND.ini", "ADDRESS --bind-dn DN --password-file FILE "
	  "[--server BACKEND]" },
	{ "auto-reply",       admin_auto_reply,       0,
	  "FRONTEND.ini", "ADDRESS --bind-dn DN --password-file FILE "
	  "[--off | --text-file FILE [--subject TEXT] [--from DAY] "
	  "[--until DAY]]" },
	{ "forward",          admin_forward,          0,
	  "FRONTEND.ini", "ADDRESS --bind-dn DN --password-file FILE "
	  "[--off | --to ADDRESS [--to ADDRESS]... [--no-keep]]" },
	{ "kick",             admin_users_kick,       0,
	  "BACKEND.ini", "MAILBOX_ID [--park]" },
	{ "move",             admin_move,             ADMIN_F_STORE,
	  "BACKEND.ini", "ADDRESS --to BACKEND --via COMMAND --bind-dn DN "
	  "--password-file FILE [--directory FRONTEND.ini] [--offline]" },
	{ "provision",        admin_users_provision,  ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID" },
	{ "remove",           admin_users_remove,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID --yes" },
	{ "show",             admin_store_show,       ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID" },
	{ "list",             admin_store_list,       ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID" },
	{ "quota",            admin_store_quota,      ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID [STORAGE MESSAGES|--default]" },
	{ "accounts",         admin_store_accounts,   ADMIN_F_STORE,
	  "BACKEND.ini", "[--over PERCENT] [--inactive AGE]" },
	{ "import",           admin_store_import,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID FILE|MAILDIR [--mailbox NAME]" },
	{ "import",           admin_store_import,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID --account FILE|- [--under FOLDER]" },
	{ "export",           admin_store_export,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID [--mailbox NAME] > FILE.mbox" },
	{ "export",           admin_store_export,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID [--mailbox NAME] --maildir DIR" },
	{ "export",           admin_store_export,     ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID --account FILE|-" },
	{ "expunge",          admin_store_expunge,    ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID|--every-account --mailbox NAME|'*' "
	  "--all|--saved-before AGE|--before AGE|--message-id ID" },
	{ "check",            admin_check,            ADMIN_F_STORE,
	  "BACKEND.ini", "MAILBOX_ID|--all" },
	{ "queue",            admin_queue,            ADMIN_F_STORE,
	  "BACKEND.ini", "[flush [QUEUE_ID...] | delete QUEUE_ID...|--user LOGIN]" },
	{ "deliver",          admin_deliver,          ADMIN_F_STORE,
	  "BACKEND.ini", "[--from ADDR] MAILBOX_ID... < MESSAGE" },
	{ "dns-srv",          admin_dns_srv,          0,
	  "FRONTEND.ini", "DOMAIN [--ttl SECONDS]" },
	{ "config-reference", admin_config_reference, ADMIN_F_NOCONFIG,
	  NULL, "" },
};
/* clang-format on */

#define N_CMDS (sizeof(admin_cmds) / sizeof(admin_cmds[0]))

static void
usage(void)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		const struct admin_cmd *c = &admin_cmds[i];
		fprintf(stderr, "%s portico-admin ",
			i == 0 ? "usage:" : "      ");
		if (c->ini != NULL)
			fprintf(stderr, "-c %s ", c->ini);
		fprintf(stderr, "%s%s%s\n", c->name, c->args[0] ? " " : "",
			c->args);
	}
	exit(2);
}

int
main(int argc, char **argv)
{
	struct admin a;
	const char *err;
	int i = 1;
	memset(&a, 0, sizeof(a));
	if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
		a.config_path = argv[2];
		i = 3;
	}
	if (i >= argc)
		usage();
	const struct admin_cmd *cmd = NULL;
	for (size_t k = 0; k < N_CMDS && cmd == NULL; k++)
		if (strcmp(admin_cmds[k].name, argv[i]) == 0)
			cmd = &admin_cmds[k];
	if (cmd == NULL ||
	    (a.config_path == NULL && !(cmd->flags & ADMIN_F_NOCONFIG)))
		usage();
	i++;
	config_defaults(&a.cfg);
	if (a.config_path != NULL &&
	    config_load(&a.cfg, a.config_path, &err) < 0) {
		fprintf(stderr, "portico-admin: %s\n", err);
		config_free(&a.cfg);
		return 1;
	}
	if ((cmd->flags & ADMIN_F_STORE) &&
	    store_open(a.cfg.backend_store_dir, a.cfg.backend_store_map_size,
		       &a.st, &err) < 0) {
		fprintf(stderr, "portico-admin: store: %s\n", err);
		config_free(&a.cfg);
		return 1;
	}
	if (a.st != NULL)
		store_set_external(a.st);
	if (a.st != NULL)
		store_set_max_expunge_records(
			a.st, (uint64_t)a.cfg.backend_max_expunge_records);
	int rc = cmd->fn(&a, argc - i, argv + i);
	if (a.st != NULL)
		store_close(&a.st);
	config_free(&a.cfg);
	if (rc == ADMIN_USAGE)
		usage();
	return rc;
}
