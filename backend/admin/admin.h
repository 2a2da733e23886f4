/* admin.h - portico-admin: the command families (backend/admin/) and
 * what the dispatcher (backend/admin.c) hands them.
 *
 * A command gets the words after its name and returns the process's exit
 * status (0 done, 1 failed with a message on stderr, others as the
 * command documents), or ADMIN_USAGE for arguments it does not take: the
 * dispatcher then prints the usage and exits 2.
 */
#ifndef PORTICO_ADMIN_H
#define PORTICO_ADMIN_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <ldap.h>

#include "backend/store/store.h"
#include "common/config.h"

#define ADMIN_USAGE (-1)

struct admin {
	const char *config_path; /* -c FILE; NULL when not given */
	struct config cfg;       /* FILE over the defaults */
	struct store *st;        /* open for commands that need the store */
};

typedef int admin_cmd_fn(struct admin *a, int argc, char **argv);

/* users: the mailboxes of a backend's store and the accounts in LDAP */
admin_cmd_fn admin_users_provision;
admin_cmd_fn admin_users_remove;
admin_cmd_fn admin_users_disable;
admin_cmd_fn admin_users_enable;
admin_cmd_fn admin_users_kick;
admin_cmd_fn admin_users_show;
admin_cmd_fn admin_auto_reply; /* admin_auto_reply.c */
admin_cmd_fn admin_forward;    /* admin_forward.c */
/* Every folder and message of mailbox_id, in one transaction: 0 (said on
 * stdout), or 1 after saying why. */
int admin_remove_mailbox(struct admin *a, const char *mailbox_id);
/* The same as a store operation (args: struct admin_remove_args), for
 * callers that do more in its transaction; what it removed is counted. */
struct admin_remove_args {
	const char *mailbox_id;
	unsigned long folders, messages, bodies;
};
store_op_fn admin_remove_op;
/* move: the steps of a move to another backend in one command
 * (admin_move.c) */
admin_cmd_fn admin_move;

/* store: a mailbox's contents */
admin_cmd_fn admin_store_import;
admin_cmd_fn admin_store_list;
admin_cmd_fn admin_store_show;
admin_cmd_fn admin_store_quota;
admin_cmd_fn admin_store_accounts;
admin_cmd_fn admin_store_export;
admin_cmd_fn admin_store_expunge;
admin_cmd_fn admin_check;
/* An IMAP keyword the store takes (admin_store.c). */
int admin_keyword_ok(const char *k);
/* account: one account's whole mail as a stream (admin_account.c) */
int admin_account_export(struct admin *a, const char *mailbox_id,
			 const char *path);
/* The same stream into an open file (what: its name in messages; sync:
 * fsync it): 0, or 1 after saying why.  The caller closes f. */
int admin_account_export_file(struct admin *a, const char *mailbox_id, FILE *f,
			      const char *what, int sync);
/* under: NULL fills an account that never had mail with the account as
 * it was; a folder name puts the stream's folders below it in an account
 * that has mail, with new UIDs (a restore). */
int admin_account_import(struct admin *a, const char *mailbox_id,
			 const char *path, const char *under);
/* The import from an open stream (what: its name in messages). */
int admin_account_import_file(struct admin *a, const char *mailbox_id, FILE *f,
			      const char *what, const char *under);
/* Where export and import --account write what they say (NULL: stderr;
 * the fuzz target sends it elsewhere). */
extern FILE *admin_account_msgs;

/* queue/deliver: the transport */
admin_cmd_fn admin_queue;
admin_cmd_fn admin_deliver;

/* settings */
admin_cmd_fn admin_settings;
admin_cmd_fn admin_dns_srv;
admin_cmd_fn admin_config_reference;

/* directory: the deployment seen from a frontend's configuration */
admin_cmd_fn admin_backends;
admin_cmd_fn admin_sessions;

/* An account's entry in the directory (admin_users.c). */
struct admin_account {
	char dn[1024];
	char id[128];    /* porticoMailboxId */
	char server[64]; /* porticoMailboxServer */
	char state[80];  /* porticoAccountState ("": active) */
};
/* The one porticoUser entry whose uid or mail is address, under
 * ldap.base_dn: 0, or 1 after saying why (cmd names the command). */
int admin_account_find(struct admin *a, LDAP *ld, const char *cmd,
		       const char *address, struct admin_account *acct);
/* porticoAccountState from `from` ("": none) to `to`, and
 * porticoMailboxServer unless server is NULL, in one modify that holds
 * only while the state is still `from`: 0; 2 when it is not (another
 * changed it since it was read), 1 for another failure; both said. */
int admin_account_swap(LDAP *ld, const char *cmd, const char *dn,
		       const char *from, const char *to, const char *server);
/* Whether id can name a backend (letters, digits, '.', '_', '-'; under
 * 64). */
int admin_backend_id_ok(const char *id);
/* Whether ldap.backends_dn (when set) lacks a porticoBackend of that id
 * (said on stderr), so that a typo does not leave an account on a backend
 * nobody can reach. */
int admin_backend_unknown(struct admin *a, LDAP *ld, const char *cmd,
			  const char *server);
/* The first line of pwfile into out: 0, or 1 after saying why (a file
 * that cannot be read, an empty password). */
int admin_read_password(const char *cmd, const char *pwfile, char *out,
			size_t size);
/* Connects to ldap.uris and binds as dn (simple bind); -1 after printing
 * why. */
int admin_ldap_open(const struct config *cfg, const char *dn,
		    const char *password, LDAP **ld_r);
/* The entry dn with attrs (NULL-terminated) as the directory has it now
 * (after a change): the result to ldap_msgfree() and its entry in
 * *entry_r, or NULL after saying why (cmd: the command's name). */
LDAPMessage *admin_ldap_read(const struct config *cfg, LDAP *ld,
			     const char *cmd, const char *dn,
			     const char *const *attrs, LDAPMessage **entry_r);
/* The first value of attr ("" if none), cut to outsize. */
void admin_ldap_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out,
		      size_t outsize);
/* A blocking TCP connection to "host:port" (a wildcard host means the
 * loopback address) with send/receive timeouts; -1 and why. */
int admin_connect(const char *addr, int64_t timeout_s, char *why,
		  size_t whysize);
struct buf;
/* One HTTP/1.1 request without a body (method GET or POST) to addr
 * (over TLS verified with tls.ca_file when tls), bounded by
 * http.request_timeout: 0 with the status and body, or -1 after printing
 * why. */
int admin_http(const struct config *cfg, const char *addr, int tls,
	       const char *method, const char *path, int *status_r,
	       struct buf *body);
/* admin_http() to backend.http_listen (cmd names the command in the
 * message when it is not set): path, with ?mailbox=MAILBOX_ID (&mailbox=
 * when path has a query) percent-encoded when mailbox_id is not NULL. */
int admin_backend_http(struct admin *a, const char *cmd, const char *method,
		       const char *path, const char *mailbox_id, int *status_r,
		       struct buf *body);

#endif
