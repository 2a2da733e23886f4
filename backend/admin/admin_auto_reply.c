/* admin_auto_reply.c - portico-admin auto-reply: an account's automatic
 * reply (out of office) set, switched off or shown in the directory, for
 * a helpdesk acting for a user who is away already.  The same four
 * attributes the settings page writes (docs/TRANSPORT.md, "Automatic
 * replies"), with the operator's directory account. */
#include "backend/admin/admin.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ldap.h>

#include "common/smtp_parser.h"

/* The schema's bound of porticoAutoReplySubject, in characters. */
#define AR_SUBJECT_CHARS 256

static const char *const ar_attrs[] = {
    "porticoAutoReplyText", "porticoAutoReplySubject", "porticoAutoReplyStart",
    "porticoAutoReplyEnd"};

/* "YYYY-MM-DD" to the GeneralizedTime of the start of that day (UTC), or
 * of the next one (next): 0, or -1. */
static int
day_gt(const char *s, int next, char out[20], time_t *t_r)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0' || strlen(s) != 10)
		return -1;
	int mday = tm.tm_mday, mon = tm.tm_mon;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != mday || tm.tm_mon != mon)
		return -1; /* 2026-02-30 */
	t += next ? 86400 : 0;
	struct tm g;
	gmtime_r(&t, &g);
	strftime(out, 20, "%Y%m%d%H%M%SZ", &g);
	*t_r = t;
	return 0;
}

/* The text of a file: UTF-8, no NUL, at most max bytes, not blank. */
static char *
read_text(const char *path, size_t max, const char **why_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		*why_r = "cannot be read";
		return NULL;
	}
	char *t = malloc(max + 2);
	if (t == NULL)
		abort();
	size_t n = fread(t, 1, max + 1, f);
	int err = ferror(f);
	fclose(f);
	t[n] = '\0';
	*why_r = err       ? "cannot be read"
		 : n > max ? "is longer than lmtp.auto_reply_max_size"
		 : memchr(t, '\0', n) ? "holds a NUL byte"
		 : !smtp_utf8_valid((const unsigned char *)t, n)
		     ? "is not UTF-8"
		 : strspn(t, " \t\r\n") == n ? "is empty"
					     : NULL;
	if (*why_r != NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static void
show(LDAP *ld, LDAPMessage *e, const char *address)
{
	char text[64], subject[1100], start[32], end[32];
	admin_ldap_value(ld, e, ar_attrs[0], text, sizeof(text));
	admin_ldap_value(ld, e, ar_attrs[1], subject, sizeof(subject));
	admin_ldap_value(ld, e, ar_attrs[2], start, sizeof(start));
	admin_ldap_value(ld, e, ar_attrs[3], end, sizeof(end));
	if (text[0] == '\0') {
		printf("%s: automatic reply off\n", address);
		return;
	}
	printf("%s: automatic reply on%s%s%s%s, subject %s\n", address,
	       start[0] ? " from " : "", start, end[0] ? " until " : "", end,
	       subject[0] ? subject : "\"Auto: \" and the original's");
}

/* auto-reply ADDRESS --bind-dn DN --password-file FILE [--off |
 * --text-file FILE [--subject TEXT] [--from DAY] [--until DAY]] */
int
admin_auto_reply(struct admin *a, int argc, char **argv)
{
	const char *bind_dn = NULL, *pwfile = NULL, *text_file = NULL,
		   *subject = "", *from = NULL, *until = NULL;
	int off = 0;
	if (argc < 1)
		return ADMIN_USAGE;
	const char *address = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--off") == 0) {
			off = 1;
			continue;
		}
		if (i + 1 >= argc)
			return ADMIN_USAGE;
		const char *v = argv[++i];
		if (strcmp(argv[i - 1], "--bind-dn") == 0)
			bind_dn = v;
		else if (strcmp(argv[i - 1], "--password-file") == 0)
			pwfile = v;
		else if (strcmp(argv[i - 1], "--text-file") == 0)
			text_file = v;
		else if (strcmp(argv[i - 1], "--subject") == 0)
			subject = v;
		else if (strcmp(argv[i - 1], "--from") == 0)
			from = v;
		else if (strcmp(argv[i - 1], "--until") == 0)
			until = v;
		else
			return ADMIN_USAGE;
	}
	if (off && (text_file != NULL || subject[0] != '\0' || from != NULL ||
		    until != NULL))
		return ADMIN_USAGE;
	int change = off || text_file != NULL;
	if (!change && (subject[0] != '\0' || from != NULL || until != NULL)) {
		fprintf(stderr, "portico-admin: auto-reply: --subject, --from "
				"and --until go with --text-file\n");
		return 2;
	}
	if (bind_dn == NULL || pwfile == NULL) {
		fprintf(stderr, "portico-admin: auto-reply: --bind-dn DN and "
				"--password-file FILE name the directory "
				"account that may change users\n");
		return 2;
	}
	char gstart[20] = "", gend[20] = "";
	time_t ts = 0, te = 0;
	if ((from != NULL && day_gt(from, 0, gstart, &ts) < 0) ||
	    (until != NULL && day_gt(until, 1, gend, &te) < 0)) {
		fprintf(stderr, "portico-admin: auto-reply: --from and --until "
				"are days, YYYY-MM-DD (UTC)\n");
		return 2;
	}
	if (until != NULL && from != NULL && te <= ts) {
		fprintf(stderr, "portico-admin: auto-reply: --until comes "
				"before --from\n");
		return 2;
	}
	if (until != NULL && te <= time(NULL)) {
		fprintf(stderr,
			"portico-admin: auto-reply: --until %s is "
			"over already\n",
			until);
		return 2;
	}
	size_t chars = 0;
	for (const char *p = subject; *p != '\0'; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	if (chars > AR_SUBJECT_CHARS || strpbrk(subject, "\r\n") != NULL ||
	    !smtp_utf8_valid((const unsigned char *)subject, strlen(subject))) {
		fprintf(stderr,
			"portico-admin: auto-reply: --subject is one "
			"line of UTF-8, at most %d characters\n",
			AR_SUBJECT_CHARS);
		return 2;
	}
	if (a->cfg.ldap_base_dn[0] == '\0') {
		fprintf(stderr,
			"portico-admin: auto-reply: ldap.base_dn is not "
			"set in %s (give a frontend's "
			"configuration)\n",
			a->config_path);
		return 1;
	}
	char *text = NULL;
	if (text_file != NULL) {
		const char *why;
		text = read_text(text_file,
				 (size_t)a->cfg.lmtp_auto_reply_max_size, &why);
		if (text == NULL) {
			fprintf(stderr, "portico-admin: auto-reply: %s %s\n",
				text_file, why);
			return 2;
		}
	}
	char password[1024];
	if (admin_read_password("auto-reply", pwfile, password,
				sizeof(password))) {
		free(text);
		return 1;
	}
	LDAP *ld;
	int rc = admin_ldap_open(&a->cfg, bind_dn, password, &ld);
	explicit_bzero(password, sizeof(password));
	if (rc < 0) {
		free(text);
		return 1;
	}
	struct admin_account acct;
	int ret = 1;
	if (admin_account_find(a, ld, "auto-reply", address, &acct) != 0)
		goto done;
	if (change) {
		const char *vals[4] = {text, subject, gstart, gend};
		struct berval bv[4], *bvp[4][2];
		LDAPMod mods[4], *modp[5];
		for (int i = 0; i < 4; i++) {
			mods[i].mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
			mods[i].mod_type = (char *)(uintptr_t)ar_attrs[i];
			bv[i].bv_val = (char *)(uintptr_t)(vals[i] ? vals[i]
								   : "");
			bv[i].bv_len = strlen(bv[i].bv_val);
			bvp[i][0] = &bv[i];
			bvp[i][1] = NULL;
			/* no value: the attribute goes */
			mods[i].mod_bvalues = bv[i].bv_len > 0 ? bvp[i] : NULL;
			modp[i] = &mods[i];
		}
		modp[4] = NULL;
		rc = ldap_modify_ext_s(ld, acct.dn, modp, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			fprintf(stderr,
				"portico-admin: auto-reply: modify %s: %s\n",
				acct.dn, ldap_err2string(rc));
			goto done;
		}
	}
	/* what the directory has now */
	const char *const attrs[] = {ar_attrs[0], ar_attrs[1], ar_attrs[2],
				     ar_attrs[3], NULL};
	LDAPMessage *e, *res = admin_ldap_read(&a->cfg, ld, "auto-reply",
					       acct.dn, attrs, &e);
	if (res != NULL) {
		show(ld, e, address);
		ret = 0;
		ldap_msgfree(res);
	}
done:
	ldap_unbind_ext_s(ld, NULL, NULL);
	free(text);
	return ret;
}
