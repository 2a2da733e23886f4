/* admin_users.c - portico-admin's account commands: a mailbox in a
 * backend's store (provision, remove), the account's state in LDAP
 * (disable, enable) and its open sessions (kick).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <openssl/sha.h>

#include "backend/admin/admin.h"
#include "backend/store/store_int.h"
#include "common/buf.h"

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

/* -- remove -----------------------------------------------------------------
 *
 * One transaction: every folder of the user with its messages, modseq
 * index, expunge records and keywords, the subscriptions, the usage
 * record and the user record; each message gives back its body
 * reference, and a body nobody else points at goes with its hash and
 * structure (the same bookkeeping as an expunge). */

/* Deletes every record of dbi whose key starts with prefix. */
static int
del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	for (;;) {
		MDB_val k = {plen, (void *)(uintptr_t)prefix}, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size < plen ||
		    memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* One reference less on a body; the last one removes it. */
static int
body_unref(struct store *st, MDB_txn *txn, uint64_t body_id,
	   unsigned long *freed)
{
	uint8_t key[8];
	uint32_t refs;
	be64(key, body_id);
	MDB_val k = {8, key}, v;
	int rc = mdb_get(txn, st->bodyrefs, &k, &v);
	if (rc != 0 || v.mv_size != sizeof(refs))
		return rc ? rc : MDB_CORRUPTED;
	memcpy(&refs, v.mv_data, sizeof(refs));
	if (refs > 1) {
		refs--;
		v.mv_size = sizeof(refs);
		v.mv_data = &refs;
		return mdb_put(txn, st->bodyrefs, &k, &v, 0);
	}
	MDB_val b;
	if ((rc = mdb_get(txn, st->bodies, &k, &b)) != 0)
		return rc;
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256(b.mv_data, b.mv_size, hash);
	MDB_val hk = {sizeof(hash), hash};
	rc = mdb_del(txn, st->bodyhash, &hk, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, st->bodymeta, &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, st->bodies, &k, NULL);
	if (rc == 0)
		rc = mdb_del(txn, st->bodyrefs, &k, NULL);
	if (rc == 0)
		(*freed)++;
	return rc;
}

static int
remove_mailbox(struct store *st, MDB_txn *txn, uint64_t mbox_id,
	       struct admin_remove_args *ra)
{
	uint8_t idkey[8];
	be64(idkey, mbox_id);
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->messages, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {8, idkey}, v;
	/* Body ids first: the cursor must not see the bodies change. */
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size == 12 && memcmp(k.mv_data, idkey, 8) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_msg_rec m;
		if (v.mv_size != sizeof(m)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&m, v.mv_data, sizeof(m));
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			ids = realloc(ids, cap * sizeof(*ids));
			if (ids == NULL)
				abort();
		}
		ids[n++] = m.body_id;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(ids);
		return rc;
	}
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = body_unref(st, txn, ids[i], &ra->bodies);
	free(ids);
	ra->messages += n;
	if (rc == 0)
		rc = del_prefix(txn, st->messages, idkey, 8);
	if (rc == 0)
		rc = del_prefix(txn, st->modseqs, idkey, 8);
	if (rc == 0)
		rc = del_prefix(txn, st->expunged, idkey, 8);
	MDB_val ik = {8, idkey};
	if (rc == 0) {
		rc = mdb_del(txn, st->keywords, &ik, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0) {
		rc = mdb_del(txn, st->mboxids, &ik, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	return rc;
}

int
admin_remove_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct admin_remove_args *ra = vargs;
	MDB_val uk = {strlen(ra->mailbox_id), (void *)(uintptr_t)ra->mailbox_id};
	MDB_val v;
	struct store_user_rec u;
	int rc = mdb_get(txn, st->users, &uk, &v);
	if (rc == MDB_NOTFOUND) {
		snprintf(err, STORE_ERR_SIZE, "no such mailbox id in this store");
		return STORE_ERR_NONEXISTENT;
	}
	if (rc == 0 && v.mv_size != sizeof(u))
		rc = MDB_CORRUPTED;
	if (rc != 0)
		goto fail;
	memcpy(&u, v.mv_data, sizeof(u));
	uint8_t up[8];
	be64(up, u.user_num);
	/* The user's folders: their ids first, then each one's records. */
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(txn, st->mailboxes, &cur)) != 0)
		goto fail;
	uint64_t *mboxes = NULL;
	size_t n = 0, cap = 0;
	MDB_val k = {8, up};
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, up, 8) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_mailbox_rec r;
		if (v.mv_size != sizeof(r)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&r, v.mv_data, sizeof(r));
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			mboxes = realloc(mboxes, cap * sizeof(*mboxes));
			if (mboxes == NULL)
				abort();
		}
		mboxes[n++] = r.mbox_id;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = remove_mailbox(st, txn, mboxes[i], ra);
	free(mboxes);
	ra->folders = n;
	if (rc == 0)
		rc = del_prefix(txn, st->mailboxes, up, 8);
	if (rc == 0)
		rc = del_prefix(txn, st->subs, up, 8);
	if (rc == 0) {
		uint8_t key[9] = {'u'};
		be64(key + 1, u.user_num);
		MDB_val mk = {9, key};
		rc = mdb_del(txn, st->meta, &mk, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		rc = store_quota_del(st, txn, u.user_num);
	if (rc == 0)
		rc = store_last_login_del(st, txn, u.user_num);
	if (rc == 0)
		rc = store_quota_warned_del(st, txn, u.user_num);
	if (rc == 0)
		rc = store_auto_reply_del(st, txn, u.user_num);
	if (rc == 0)
		rc = mdb_del(txn, st->users, &uk, NULL);
	if (rc == 0)
		return 0;
fail:
	snprintf(err, STORE_ERR_SIZE, "remove: %s", store_strerror(rc));
	return rc == MDB_MAP_FULL ? STORE_ERR_FULL : STORE_ERR_INTERNAL;
}

/* remove MAILBOX_ID --yes */
int
admin_users_remove(struct admin *a, int argc, char **argv)
{
	if (argc == 1) {
		fprintf(stderr, "portico-admin: remove deletes every folder "
				"and message of %s for good; add --yes to do "
				"it\n",
			argv[0]);
		return 1;
	}
	if (argc != 2 || strcmp(argv[1], "--yes") != 0)
		return ADMIN_USAGE;
	return admin_remove_mailbox(a, argv[0]);
}

int
admin_remove_mailbox(struct admin *a, const char *mailbox_id)
{
	struct admin_remove_args ra = {mailbox_id, 0, 0, 0};
	char ebuf[STORE_ERR_SIZE];
	if (store_run(a->st, admin_remove_op, &ra, ebuf) != 0) {
		fprintf(stderr, "portico-admin: remove %s: %s\n", mailbox_id,
			ebuf);
		return 1;
	}
	printf("removed %s: %lu folders, %lu messages, %lu bodies freed\n",
	       mailbox_id, ra.folders, ra.messages, ra.bodies);
	return 0;
}

/* -- disable, enable: porticoAccountState in LDAP --------------------------*/

/* RFC 4515: a value inside a search filter. */
static void
filter_escape(const char *in, char *out, size_t outsize)
{
	size_t o = 0;
	for (; *in != '\0' && o + 4 < outsize; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' ||
		    ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, outsize - o, "\\%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

int
admin_backend_id_ok(const char *id)
{
	return id[0] != '\0' && strlen(id) < 64 &&
	       strspn(id,
		      "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(id);
}

int
admin_backend_unknown(struct admin *a, LDAP *ld, const char *cmd,
		      const char *server)
{
	if (a->cfg.ldap_backends_dn[0] == '\0')
		return 0;
	char filter[160];
	snprintf(filter, sizeof(filter),
		 "(&(objectClass=porticoBackend)(cn=%s))",
		 server); /* checked: no filter metacharacters */
	char *attrs[] = {"1.1", NULL};
	struct timeval tv = {(time_t)a->cfg.ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, a->cfg.ldap_backends_dn,
				   LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL,
				   NULL, &tv, 0, &res);
	int count = rc == LDAP_SUCCESS ? ldap_count_entries(ld, res) : 0;
	ldap_msgfree(res);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: %s: search under %s: %s\n", cmd,
			a->cfg.ldap_backends_dn, ldap_err2string(rc));
		return 1;
	}
	if (count == 0) {
		fprintf(stderr,
			"portico-admin: %s: no backend %s under %s "
			"(portico-admin backends lists them)\n",
			cmd, server, a->cfg.ldap_backends_dn);
		return 1;
	}
	return 0;
}

int
admin_read_password(const char *cmd, const char *pwfile, char *out, size_t size)
{
	FILE *f = fopen(pwfile, "r");
	if (f == NULL) {
		fprintf(stderr, "portico-admin: %s: %s\n", pwfile,
			strerror(errno));
		return 1;
	}
	if (fgets(out, (int)size, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	if (out[0] == '\0') {
		fprintf(stderr, "portico-admin: %s: empty password\n", pwfile);
		return 1;
	}
	return 0;
}

int
admin_account_find(struct admin *a, LDAP *ld, const char *cmd,
		   const char *address, struct admin_account *acct)
{
	char esc[1100], filter[2400];
	filter_escape(address, esc, sizeof(esc));
	snprintf(filter, sizeof(filter),
		 "(&(objectClass=porticoUser)(|(uid=%s)(mail=%s)))", esc, esc);
	char *attrs[] = {"porticoAccountState", "porticoMailboxId",
			 "porticoMailboxServer", NULL};
	struct timeval tv = {(time_t)a->cfg.ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int ret = 1;
	int rc = ldap_search_ext_s(ld, a->cfg.ldap_base_dn, LDAP_SCOPE_SUBTREE,
				   filter, attrs, 0, NULL, NULL, &tv, 0, &res);
	int count = rc == LDAP_SUCCESS ? ldap_count_entries(ld, res) : 0;
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: %s: search: %s\n", cmd,
			ldap_err2string(rc));
	} else if (count != 1) {
		fprintf(stderr, "portico-admin: %s: %s matches %d users\n", cmd,
			address, count);
	} else {
		LDAPMessage *e = ldap_first_entry(ld, res);
		char *dn = ldap_get_dn(ld, e);
		if (dn == NULL || strlen(dn) >= sizeof(acct->dn)) {
			fprintf(stderr,
				"portico-admin: %s: the entry of %s "
				"has no usable DN\n",
				cmd, address);
		} else {
			snprintf(acct->dn, sizeof(acct->dn), "%s", dn);
			admin_ldap_value(ld, e, "porticoAccountState",
					 acct->state, sizeof(acct->state));
			admin_ldap_value(ld, e, "porticoMailboxServer",
					 acct->server, sizeof(acct->server));
			admin_ldap_value(ld, e, "porticoMailboxId", acct->id,
					 sizeof(acct->id));
			ret = 0;
		}
		ldap_memfree(dn);
	}
	ldap_msgfree(res);
	return ret;
}

/* porticoAccountState, and porticoMailboxServer unless server is NULL, in
 * one modify (whatever they were): 0, or 1 after saying why. */
static int
admin_account_set(LDAP *ld, const char *cmd, const char *dn, const char *state,
		  const char *server)
{
	char *vals[] = {(char *)(uintptr_t)state, NULL};
	char *svals[] = {(char *)(uintptr_t)server, NULL};
	LDAPMod mod = {
	    LDAP_MOD_REPLACE, "porticoAccountState", {.modv_strvals = vals}};
	LDAPMod smod = {
	    LDAP_MOD_REPLACE, "porticoMailboxServer", {.modv_strvals = svals}};
	/* one modify: the entry is never active on the old backend after
	   a move, nor on the new one before it */
	LDAPMod *mods[] = {&mod, server != NULL ? &smod : NULL, NULL};
	int rc = ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: %s: modify %s: %s\n", cmd, dn,
			ldap_err2string(rc));
		return 1;
	}
	return 0;
}

int
admin_account_swap(LDAP *ld, const char *cmd, const char *dn, const char *from,
		   const char *to, const char *server)
{
	char *fvals[] = {(char *)(uintptr_t)from, NULL};
	char *tvals[] = {(char *)(uintptr_t)to, NULL};
	char *svals[] = {(char *)(uintptr_t)server, NULL};
	LDAPMod del = {
	    LDAP_MOD_DELETE, "porticoAccountState", {.modv_strvals = fvals}};
	LDAPMod add = {
	    LDAP_MOD_ADD, "porticoAccountState", {.modv_strvals = tvals}};
	LDAPMod smod = {
	    LDAP_MOD_REPLACE, "porticoMailboxServer", {.modv_strvals = svals}};
	/* the delete of the value read fails when another has changed it
	   since: a modify is atomic, so two moves cannot both start, and a
	   state an operator set meanwhile is never overwritten; with no
	   value read, the add fails when one has come */
	LDAPMod *mods[4];
	size_t n = 0;
	if (from[0] != '\0')
		mods[n++] = &del;
	mods[n++] = &add;
	if (server != NULL)
		mods[n++] = &smod;
	mods[n] = NULL;
	int rc = ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
	if (rc == LDAP_NO_SUCH_ATTRIBUTE || rc == LDAP_TYPE_OR_VALUE_EXISTS) {
		fprintf(stderr,
			"portico-admin: %s: porticoAccountState of %s is no "
			"longer %s: changed by another meanwhile\n",
			cmd, dn, from[0] ? from : "unset");
		return 2;
	}
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: %s: modify %s: %s\n", cmd, dn,
			ldap_err2string(rc));
		return 1;
	}
	return 0;
}

static int
set_account_state(struct admin *a, const char *cmd, int argc, char **argv,
		  const char *state)
{
	const char *bind_dn = NULL, *pwfile = NULL, *server = NULL;
	if (argc < 1)
		return ADMIN_USAGE;
	const char *address = argv[0];
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return ADMIN_USAGE;
		if (strcmp(argv[i], "--bind-dn") == 0)
			bind_dn = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			pwfile = argv[i + 1];
		else if (strcmp(argv[i], "--state") == 0 &&
			 strcmp(cmd, "disable") == 0)
			state = argv[i + 1];
		else if (strcmp(argv[i], "--server") == 0 &&
			 strcmp(cmd, "enable") == 0)
			server = argv[i + 1];
		else
			return ADMIN_USAGE;
	}
	if (server != NULL && !admin_backend_id_ok(server)) {
		fprintf(stderr, "portico-admin: enable: --server names a "
				"backend by its id (letters, digits, '.', '_', "
				"'-'; under 64)\n");
		return 2;
	}
	if (bind_dn == NULL || pwfile == NULL) {
		fprintf(stderr, "portico-admin: %s: --bind-dn DN and "
				"--password-file FILE name the directory "
				"account that may change users\n",
			cmd);
		return 2;
	}
	if (state[0] == '\0' || strlen(state) > 64 ||
	    (strcmp(cmd, "disable") == 0 && strcasecmp(state, "active") == 0)) {
		fprintf(stderr, "portico-admin: disable: --state must be a "
				"word other than active (disabled, locked, "
				"...)\n");
		return 2;
	}
	if (a->cfg.ldap_base_dn[0] == '\0') {
		fprintf(stderr, "portico-admin: %s: ldap.base_dn is not set in "
				"%s (give a frontend's configuration)\n",
			cmd, a->config_path);
		return 1;
	}
	char password[1024];
	if (admin_read_password(cmd, pwfile, password, sizeof(password)))
		return 1;
	LDAP *ld;
	int rc = admin_ldap_open(&a->cfg, bind_dn, password, &ld);
	explicit_bzero(password, sizeof(password));
	if (rc < 0)
		return 1;
	struct admin_account acct;
	int ret = 1;
	if ((server == NULL || !admin_backend_unknown(a, ld, cmd, server)) &&
	    admin_account_find(a, ld, cmd, address, &acct) == 0 &&
	    admin_account_set(ld, cmd, acct.dn, state, server) == 0) {
		printf("%s: porticoAccountState %s -> %s (%s)\n", address,
		       acct.state[0] ? acct.state : "(none: active)", state,
		       acct.dn);
		if (server != NULL)
			printf("%s: porticoMailboxServer %s -> %s\n", address,
			       acct.server[0] ? acct.server : "(none)", server);
		/* What the sessions already open need: a kick on the
		   account's backend. */
		if (strcmp(cmd, "disable") == 0 && acct.id[0] != '\0')
			printf("%s: sessions already open go on; end them "
			       "with portico-admin -c BACKEND.ini kick %s "
			       "(backend %s)\n",
			       address, acct.id, acct.server);
		ret = 0;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}

/* disable ADDRESS --bind-dn DN --password-file FILE [--state STATE] */
int
admin_users_disable(struct admin *a, int argc, char **argv)
{
	return set_account_state(a, "disable", argc, argv, "disabled");
}

/* enable ADDRESS --bind-dn DN --password-file FILE [--server BACKEND]:
 * --server names the backend the account is on from now (the last step
 * of a move), in the same modify. */
int
admin_users_enable(struct admin *a, int argc, char **argv)
{
	return set_account_state(a, "enable", argc, argv, "active");
}

/* kick MAILBOX_ID [--park]: the backend (POST /kick on
 * backend.http_listen) ends the mailbox's IMAP and POP3 sessions,
 * whatever frontend carries them; --park (the account moves to another
 * backend): its IMAP sessions in IDLE or between commands are parked at
 * their frontends, which take them to the backend the directory names
 * once it is active. */
int
admin_users_kick(struct admin *a, int argc, char **argv)
{
	int park = argc == 2 && strcmp(argv[1], "--park") == 0;
	if ((argc != 1 && !park) || argv[0][0] == '\0')
		return ADMIN_USAGE;
	struct buf body = BUF_INIT;
	int status = 0, rc = 1;
	unsigned n, links;
	if (admin_backend_http(a, "kick", "POST",
			       park ? "/kick?park=1" : "/kick", argv[0],
			       &status, &body) == 0) {
		buf_append(&body, "", 1);
		if (status == 200 &&
		    sscanf(buf_ptr(&body), "sessions %u links %u", &n,
			   &links) == 2) {
			printf("kicked %s: %u session%s %s, cached logins "
			       "forgotten on %u frontend link%s\n",
			       argv[0], n, n == 1 ? "" : "s",
			       park ? "ended or parked (those in IDLE or "
				      "between commands)"
				    : "ended",
			       links, links == 1 ? "" : "s");
			rc = 0;
		} else {
			fprintf(stderr,
				"portico-admin: kick: the backend answered "
				"%d: %s",
				status, buf_ptr(&body));
		}
	}
	buf_free(&body);
	return rc;
}

/* -- user: an account as a login sees it ----------------------------------*/

/* Every value of attr, separated by spaces, into out (what fits). */
static void
ldap_values(LDAP *ld, LDAPMessage *e, const char *attr, char *out,
	    size_t outsize)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		int n = snprintf(out + used, outsize - used, "%s%.*s",
				 used ? " " : "", (int)v[i]->bv_len,
				 v[i]->bv_val);
		if (n < 0 || (size_t)n >= outsize - used)
			break;
		used += (size_t)n;
	}
	ldap_value_free_len(v);
}

/* Whether e has attr=value (ldap.privileged_attribute). */
static int
ldap_has_value(LDAP *ld, LDAPMessage *e, const char *attr, const char *value)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	int found = 0;
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		if (v[i]->bv_len == strlen(value) &&
		    strncasecmp(v[i]->bv_val, value, v[i]->bv_len) == 0)
			found = 1;
	ldap_value_free_len(v);
	return found;
}

/* The backend an entry names: "ID (site N, link ADDRESS)". */
static void
backend_line(struct admin *a, LDAP *ld, const char *id, char *out,
	     size_t outsize)
{
	char esc[200], filter[300], site[32], addr[160];
	filter_escape(id, esc, sizeof(esc));
	snprintf(filter, sizeof(filter),
		 "(&(objectClass=porticoBackend)(cn=%s))", esc);
	char *attrs[] = {"porticoSite", "porticoLinkAddress", NULL};
	struct timeval tv = {(time_t)a->cfg.ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int rc = a->cfg.ldap_backends_dn[0] == '\0'
		     ? LDAP_NO_SUCH_OBJECT
		     : ldap_search_ext_s(ld, a->cfg.ldap_backends_dn,
					 LDAP_SCOPE_SUBTREE, filter, attrs, 0,
					 NULL, NULL, &tv, 0, &res);
	LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
	if (e == NULL) {
		snprintf(out, outsize,
			 "%s (no such backend under "
			 "ldap.backends_dn: logins fail)",
			 id);
	} else {
		admin_ldap_value(ld, e, "porticoSite", site, sizeof(site));
		admin_ldap_value(ld, e, "porticoLinkAddress", addr,
				 sizeof(addr));
		snprintf(out, outsize, "%s (site %s, link %s)", id, site, addr);
	}
	ldap_msgfree(res);
}

/* user ADDRESS: the account's entry as a frontend's login finds it (the
 * frontend's search account, ldap.bind_dn, and its filter), the backend
 * it routes to, and whether the directory would let it log in.  Exit 0
 * when one entry matches, 1 otherwise. */
int
admin_users_show(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return ADMIN_USAGE;
	const struct config *cfg = &a->cfg;
	if (cfg->ldap_base_dn[0] == '\0') {
		fprintf(stderr,
			"portico-admin: user: ldap.base_dn is not set in "
			"%s (give a frontend's configuration)\n",
			a->config_path);
		return 1;
	}
	LDAP *ld;
	if (admin_ldap_open(cfg, cfg->ldap_bind_dn, cfg->ldap_bind_password,
			    &ld) < 0)
		return 1;
	char esc[1100], filter[2400];
	filter_escape(argv[0], esc, sizeof(esc));
	snprintf(filter, sizeof(filter),
		 "(&(objectClass=porticoUser)(|(uid=%s)(mail=%s)))", esc, esc);
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	LDAPMessage *res = NULL;
	int rc = ldap_search_ext_s(ld, cfg->ldap_base_dn, LDAP_SCOPE_SUBTREE,
				   filter, NULL, 0, NULL, NULL, &tv, 0, &res);
	int count = rc == LDAP_SUCCESS ? ldap_count_entries(ld, res) : 0;
	int ret = 1;
	if (rc != LDAP_SUCCESS) {
		fprintf(stderr, "portico-admin: user: search: %s\n",
			ldap_err2string(rc));
	} else if (count != 1) {
		fprintf(stderr, "portico-admin: user: %s matches %d users%s\n",
			argv[0], count,
			count > 1 ? " (a login of it is refused)" : "");
	} else {
		LDAPMessage *e = ldap_first_entry(ld, res);
		char *dn = ldap_get_dn(ld, e);
		char uid[256], mail[1024], id[128], server[64], state[80],
		    imap[16], pop3[16], smtp[16], qs[32], qm[32], caps[256],
		    backend[400], mail1[256];
		admin_ldap_value(ld, e, "uid", uid, sizeof(uid));
		admin_ldap_value(ld, e, "mail", mail1, sizeof(mail1));
		ldap_values(ld, e, "mail", mail, sizeof(mail));
		admin_ldap_value(ld, e, "porticoMailboxId", id, sizeof(id));
		admin_ldap_value(ld, e, "porticoMailboxServer", server,
				 sizeof(server));
		admin_ldap_value(ld, e, "porticoAccountState", state,
				 sizeof(state));
		admin_ldap_value(ld, e, "porticoImapEnabled", imap,
				 sizeof(imap));
		admin_ldap_value(ld, e, "porticoPop3Enabled", pop3,
				 sizeof(pop3));
		admin_ldap_value(ld, e, "porticoSmtpEnabled", smtp,
				 sizeof(smtp));
		admin_ldap_value(ld, e, "porticoQuotaStorage", qs, sizeof(qs));
		admin_ldap_value(ld, e, "porticoQuotaMessages", qm, sizeof(qm));
		ldap_values(ld, e, "porticoImapCapabilityOff", caps,
			    sizeof(caps));
		backend_line(a, ld, server, backend, sizeof(backend));
		int privileged = 0;
		const char *pa = cfg->ldap_privileged_attribute;
		const char *eq = strchr(pa, '=');
		if (eq != NULL && eq > pa) {
			char attr[128];
			snprintf(attr, sizeof(attr), "%.*s", (int)(eq - pa),
				 pa);
			privileged = ldap_has_value(ld, e, attr, eq + 1);
		}
		const char *active = state[0] == '\0' ||
					     strcasecmp(state, "active") == 0
					 ? "yes"
					 : "no";
		printf("dn            %s\n", dn != NULL ? dn : "");
		printf("uid           %s\n", uid);
		printf("mail          %s\n", mail);
		printf("mailbox-id    %s\n", id);
		printf("backend       %s\n", backend);
		printf("state         %s\n", state[0] ? state : "active");
		printf("imap          %s\n",
		       strcmp(imap, "FALSE") ? "yes" : "no");
		printf("pop3          %s\n",
		       strcmp(pop3, "FALSE") ? "yes" : "no");
		printf("smtp          %s\n",
		       strcmp(smtp, "FALSE") ? "yes" : "no");
		printf("quota-storage %s\n", qs[0] ? qs : "the backend's");
		printf("quota-messages %s\n", qm[0] ? qm : "the backend's");
		printf("imap-off      %s\n", caps[0] ? caps : "-");
		char ar[16], ar_start[32], ar_end[32];
		admin_ldap_value(ld, e, "porticoAutoReplyText", ar, sizeof(ar));
		admin_ldap_value(ld, e, "porticoAutoReplyStart", ar_start,
				 sizeof(ar_start));
		admin_ldap_value(ld, e, "porticoAutoReplyEnd", ar_end,
				 sizeof(ar_end));
		printf("auto-reply    %s%s%s%s%s\n", ar[0] ? "on" : "off",
		       ar[0] && ar_start[0] ? " from " : "",
		       ar[0] ? ar_start : "", ar[0] && ar_end[0] ? " until " : "",
		       ar[0] ? ar_end : "");
		char fw[1100], fw_keep[16];
		ldap_values(ld, e, "porticoForwardAddress", fw, sizeof(fw));
		admin_ldap_value(ld, e, "porticoForwardKeep", fw_keep,
				 sizeof(fw_keep));
		if (fw[0] != '\0')
			printf("forward       to %s (%s)\n", fw,
			       strcasecmp(fw_keep, "FALSE") == 0
				   ? "no copy kept"
				   : "a copy kept");
		else
			printf("forward       -\n");
		/* as the frontend's client_entry_refused() */
		const char *listed =
		    uid[0] && config_account_listed(
				  cfg->frontend_refused_accounts, uid)
			? uid
		    : mail1[0] && config_account_listed(
				      cfg->frontend_refused_accounts, mail1)
			? mail1
			: NULL;
		if (privileged)
			printf("login         refused: privileged (%s)\n", pa);
		else if (listed != NULL)
			printf("login         refused: %s is in "
			       "frontend.refused_accounts\n",
			       listed);
		else if (strcmp(active, "yes") != 0)
			printf(
			    "login         refused: porticoAccountState %s%s\n",
			    state,
			    strcasecmp(state, "moving") == 0
				? " (mail for it deferred)"
				: " (mail for it refused)");
		else
			printf("login         allowed by the directory\n");
		ldap_memfree(dn);
		ret = 0;
	}
	ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}
