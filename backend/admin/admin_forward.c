/* admin_forward.c - portico-admin forward: where an account's mail is
 * forwarded, set, switched off or shown in the directory
 * (porticoForwardAddress, porticoForwardKeep; docs/TRANSPORT.md,
 * "Forwarding"), with the operator's directory account. */
#include "backend/admin/admin.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include "common/smtp_parser.h"

/* The most --to a command takes: lmtp.forward_max_addresses' maximum. */
#define FW_MAX 64

static void
show(LDAP *ld, LDAPMessage *e, const char *address)
{
	struct berval **v = ldap_get_values_len(ld, e, "porticoForwardAddress");
	char keep[16];
	admin_ldap_value(ld, e, "porticoForwardKeep", keep, sizeof(keep));
	if (v == NULL || v[0] == NULL) {
		printf("%s: not forwarded\n", address);
		ldap_value_free_len(v);
		return;
	}
	printf("%s: forwarded to", address);
	for (size_t i = 0; v[i] != NULL; i++)
		printf("%s %.*s", i ? "," : "", (int)v[i]->bv_len,
		       v[i]->bv_val);
	printf(" (%s)\n",
	       strcasecmp(keep, "FALSE") == 0 ? "no copy kept" : "a copy kept");
	ldap_value_free_len(v);
}

/* forward ADDRESS --bind-dn DN --password-file FILE [--off | --to ADDR
 * [--to ADDR]... [--no-keep]] */
int
admin_forward(struct admin *a, int argc, char **argv)
{
	const char *bind_dn = NULL, *pwfile = NULL;
	char *to[FW_MAX];
	size_t nto = 0;
	int off = 0, no_keep = 0, ret = 2;
	if (argc < 1)
		return ADMIN_USAGE;
	const char *address = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--off") == 0) {
			off = 1;
			continue;
		}
		if (strcmp(argv[i], "--no-keep") == 0) {
			no_keep = 1;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		const char *v = argv[++i];
		if (strcmp(argv[i - 1], "--bind-dn") == 0) {
			bind_dn = v;
		} else if (strcmp(argv[i - 1], "--password-file") == 0) {
			pwfile = v;
		} else if (strcmp(argv[i - 1], "--to") == 0) {
			char path[SMTP_MAX_PATH + 3], addr[SMTP_MAX_PATH + 1];
			if (strlen(v) > SMTP_MAX_PATH ||
			    (snprintf(path, sizeof(path), "<%s>", v),
			     smtp_parse_reverse_path(path, 1, addr,
						     sizeof(addr)) < 0) ||
			    addr[0] == '\0') {
				fprintf(stderr,
					"portico-admin: forward: --to %s is "
					"not an address (local-part@domain)\n",
					v);
				goto out;
			}
			if (strcasecmp(addr, address) == 0) {
				fprintf(stderr,
					"portico-admin: forward: --to "
					"%s is the account itself\n",
					v);
				goto out;
			}
			for (size_t k = 0; k < nto; k++)
				if (strcasecmp(to[k], addr) == 0) {
					fprintf(stderr,
						"portico-admin: forward: --to "
						"%s given twice\n",
						v);
					goto out;
				}
			if (nto == FW_MAX ||
			    nto >= (size_t)a->cfg.lmtp_forward_max_addresses) {
				fprintf(stderr,
					"portico-admin: forward: more --to "
					"than lmtp.forward_max_addresses "
					"(%lld)\n",
					(long long)
					    a->cfg.lmtp_forward_max_addresses);
				goto out;
			}
			if ((to[nto++] = strdup(addr)) == NULL)
				abort();
		} else {
			goto usage;
		}
	}
	if (off && (nto > 0 || no_keep))
		goto usage;
	if (no_keep && nto == 0) {
		fprintf(stderr, "portico-admin: forward: --no-keep goes with "
				"--to\n");
		goto out;
	}
	if (bind_dn == NULL || pwfile == NULL) {
		fprintf(stderr, "portico-admin: forward: --bind-dn DN and "
				"--password-file FILE name the directory "
				"account that may change users\n");
		goto out;
	}
	ret = 1;
	if (a->cfg.ldap_base_dn[0] == '\0') {
		fprintf(stderr,
			"portico-admin: forward: ldap.base_dn is not set in "
			"%s (give a frontend's configuration)\n",
			a->config_path);
		goto out;
	}
	char password[1024];
	if (admin_read_password("forward", pwfile, password, sizeof(password)))
		goto out;
	LDAP *ld;
	int rc = admin_ldap_open(&a->cfg, bind_dn, password, &ld);
	explicit_bzero(password, sizeof(password));
	if (rc < 0)
		goto out;
	struct admin_account acct;
	if (admin_account_find(a, ld, "forward", address, &acct) != 0)
		goto done;
	if (off || nto > 0) {
		/* both in one modify: the addresses, and FALSE or none */
		struct berval bv[FW_MAX], *bvp[FW_MAX + 1];
		for (size_t i = 0; i < nto; i++) {
			bv[i].bv_val = to[i];
			bv[i].bv_len = strlen(to[i]);
			bvp[i] = &bv[i];
		}
		bvp[nto] = NULL;
		struct berval kv = {5, (char *)(uintptr_t) "FALSE"},
			      *kvp[2] = {&kv, NULL};
		LDAPMod mods[2] = {
		    {LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
		     (char *)(uintptr_t) "porticoForwardAddress",
		     {.modv_bvals = nto > 0 ? bvp : NULL}},
		    {LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
		     (char *)(uintptr_t) "porticoForwardKeep",
		     {.modv_bvals = no_keep ? kvp : NULL}},
		};
		LDAPMod *modp[3] = {&mods[0], &mods[1], NULL};
		rc = ldap_modify_ext_s(ld, acct.dn, modp, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			fprintf(stderr,
				"portico-admin: forward: modify %s: %s\n",
				acct.dn, ldap_err2string(rc));
			goto done;
		}
	}
	/* what the directory has now */
	static const char *const attrs[] = {"porticoForwardAddress",
					    "porticoForwardKeep", NULL};
	LDAPMessage *e, *res = admin_ldap_read(&a->cfg, ld, "forward",
					       acct.dn, attrs, &e);
	if (res != NULL) {
		show(ld, e, address);
		ret = 0;
		ldap_msgfree(res);
	}
done:
	ldap_unbind_ext_s(ld, NULL, NULL);
out:
	for (size_t i = 0; i < nto; i++)
		free(to[i]);
	return ret;
usage:
	for (size_t i = 0; i < nto; i++)
		free(to[i]);
	return ADMIN_USAGE;
}
