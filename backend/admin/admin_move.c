/* admin_move.c - portico-admin move: an account to another backend in one
 * command, run beside the backend it is on (docs/OPERATIONS.md, "Moving
 * a mailbox to another backend").
 *
 * The steps are those of the procedure by hand: the entry says "moving"
 * (no new logins; mail for it deferred), the backend parks or ends the
 * account's sessions (kick --park), the account's stream goes to the new
 * backend's import through the operator's command (ssh, or a local
 * portico-admin), then one modify names the new backend and makes the
 * entry active again (the parked sessions follow), and the account is
 * removed here.  Whatever fails before that modify puts the entry back as
 * it was, so the account stays where it was and its parked sessions come
 * back to it; nothing is removed here unless the new backend has said
 * its import is complete.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/admin/admin.h"
#include "common/buf.h"

struct move_opts {
	const char *address, *to, *via, *bind_dn, *pwfile, *directory;
	int offline; /* the backend is stopped: no kick */
};

/* Whether the id can go unquoted through a remote shell (ssh joins its
 * arguments into one command line for the other side's shell). */
static int
id_shell_safe(const char *id)
{
	return id[0] != '\0' && id[0] != '-' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyz"
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+=-") ==
		   strlen(id);
}

/* A new LDAP connection as the operator's account (one per step: the
 * export between two steps may take longer than the directory keeps an
 * idle connection). */
static LDAP *
move_ldap(struct admin *dir, const struct move_opts *o)
{
	char password[1024];
	if (admin_read_password("move", o->pwfile, password, sizeof(password)))
		return NULL;
	LDAP *ld;
	int rc = admin_ldap_open(&dir->cfg, o->bind_dn, password, &ld);
	explicit_bzero(password, sizeof(password));
	return rc < 0 ? NULL : ld;
}

/* The entry as it was before the move: active (or the state it had) on
 * the backend it is on, unless another has changed it since. */
static void
move_undo(struct admin *dir, const struct move_opts *o,
	  const struct admin_account *acct, const char *why)
{
	const char *state = acct->state[0] ? acct->state : "active";
	if (strcasecmp(state, "moving") == 0)
		state = "active"; /* a move cut short before this one */
	LDAP *ld = move_ldap(dir, o);
	int rc = ld != NULL ? admin_account_swap(ld, "move", acct->dn, "moving",
						 state, NULL)
			    : 1;
	if (rc == 0)
		fprintf(stderr,
			"portico-admin: move: %s; %s stays on %s "
			"(porticoAccountState %s again)\n",
			why, o->address, acct->server, state);
	else if (rc == 2)
		fprintf(stderr,
			"portico-admin: move: %s; %s stays on %s, its entry "
			"as the other change left it\n",
			why, o->address, acct->server);
	else
		fprintf(stderr,
			"portico-admin: move: %s, and the entry could not be "
			"put back: portico-admin -c FRONTEND.ini enable %s "
			"... makes it active on %s again\n",
			why, o->address, acct->server);
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
}

/* The account's stream into `VIA import ID --account -`. */
static int
move_copy(struct admin *a, const struct move_opts *o, const char *id)
{
	struct buf cmd = BUF_INIT;
	buf_printf(&cmd, "%s import %s --account -", o->via, id);
	buf_append(&cmd, "", 1);
	/* an import that fails early must not take this process with it:
	   the write fails instead, and the entry is put back */
	signal(SIGPIPE, SIG_IGN);
	fflush(stdout);
	FILE *p = popen(buf_ptr(&cmd), "w");
	if (p == NULL) {
		fprintf(stderr, "portico-admin: move: %s: %s\n", buf_ptr(&cmd),
			strerror(errno));
		buf_free(&cmd);
		return 1;
	}
	int rc = admin_account_export_file(a, id, p, buf_ptr(&cmd), 0);
	int status = pclose(p);
	if (status == -1) {
		fprintf(stderr, "portico-admin: move: %s: %s\n", buf_ptr(&cmd),
			strerror(errno));
		rc = 1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			fprintf(stderr,
				"portico-admin: move: %s: exit status %d\n",
				buf_ptr(&cmd), WEXITSTATUS(status));
		else
			fprintf(stderr,
				"portico-admin: move: %s: killed by signal "
				"%d\n",
				buf_ptr(&cmd),
				WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		rc = 1;
	}
	buf_free(&cmd);
	return rc;
}

static int
move_run(struct admin *a, struct admin *dir, const struct move_opts *o)
{
	const char *here = a->cfg.backend_id;
	if (here[0] == '\0') {
		fprintf(stderr,
			"portico-admin: move: backend.id is not set in "
			"%s (give the configuration of the backend the "
			"account is on)\n",
			a->config_path);
		return 1;
	}
	if (dir->cfg.ldap_base_dn[0] == '\0') {
		fprintf(stderr,
			"portico-admin: move: ldap.base_dn is not set "
			"in %s (--directory FRONTEND.ini gives the "
			"directory's settings)\n",
			dir->config_path);
		return 1;
	}
	if (o->offline) {
		/* the store must not change behind the copy: no backend may
		   have it, nor anything answer where the backend would */
		const char *addr = a->cfg.backend_http_listen, *err;
		char why[256];
		long pid = 0;
		int owned = store_owner(a->cfg.backend_store_dir, &pid, &err);
		if (owned != 0) {
			if (owned < 0)
				fprintf(stderr, "portico-admin: move: %s\n",
					err);
			else
				fprintf(stderr,
					"portico-admin: move: --offline, but a "
					"backend (pid %ld) has %s: it runs "
					"(leave --offline out)\n",
					pid, a->cfg.backend_store_dir);
			return 1;
		}
		int fd = addr[0] == '\0'
			     ? -1
			     : admin_connect(addr, 2, why, sizeof(why));
		if (fd >= 0) {
			close(fd);
			fprintf(stderr,
				"portico-admin: move: --offline, but the "
				"backend answers on %s: it runs (leave "
				"--offline out)\n",
				addr);
			return 1;
		}
	}
	LDAP *ld = move_ldap(dir, o);
	if (ld == NULL)
		return 1;
	struct admin_account acct;
	int bad = admin_backend_unknown(dir, ld, "move", o->to) ||
		  admin_account_find(dir, ld, "move", o->address, &acct);
	if (!bad && strcasecmp(acct.server, here) != 0) {
		fprintf(stderr,
			"portico-admin: move: %s is on backend %s, not on "
			"this one (%s)\n",
			o->address, acct.server[0] ? acct.server : "(none)",
			here);
		bad = 1;
	} else if (!bad && strcasecmp(o->to, here) == 0) {
		fprintf(stderr, "portico-admin: move: %s is on %s already\n",
			o->address, here);
		bad = 1;
	} else if (!bad && acct.state[0] != '\0' &&
		   strcasecmp(acct.state, "active") != 0 &&
		   strcasecmp(acct.state, "moving") != 0) {
		fprintf(stderr,
			"portico-admin: move: %s is %s: enable it first, "
			"or move it step by step\n",
			o->address, acct.state);
		bad = 1;
	} else if (!bad && !id_shell_safe(acct.id)) {
		fprintf(stderr,
			"portico-admin: move: the mailbox id \"%s\" cannot "
			"be given to a shell as it is: move it step by "
			"step\n",
			acct.id);
		bad = 1;
	}
	/* 1. no new logins, mail deferred; only if the state is still the
	   one read (one move at a time) */
	if (!bad && admin_account_swap(ld, "move", acct.dn, acct.state,
				       "moving", NULL) != 0)
		bad = 1;
	ldap_unbind_ext_s(ld, NULL, NULL);
	if (bad)
		return 1;
	printf("%s: porticoAccountState %s -> moving (%s)\n", o->address,
	       acct.state[0] ? acct.state : "(none: active)", acct.dn);
	/* 2. the sessions here: parked (IMAP in IDLE or between commands) or
	   ended */
	char *kick_argv[] = {acct.id, "--park", NULL};
	if (o->offline)
		printf("%s: the backend is stopped: no sessions to end "
		       "(--offline)\n",
		       o->address);
	else if (admin_users_kick(a, 2, kick_argv) != 0) {
		move_undo(dir, o, &acct, "the kick failed");
		return 1;
	}
	/* 3. the account, as it is now, into the new backend's store */
	if (move_copy(a, o, acct.id) != 0) {
		move_undo(dir, o, &acct, "the copy failed");
		fprintf(stderr,
			"portico-admin: move: %s's import takes back what it "
			"stored of %s unless it says %s is incomplete: then "
			"remove it there (portico-admin -c BACKEND.ini remove "
			"%s --yes) before moving it again\n",
			o->to, acct.id, acct.id, acct.id);
		return 1;
	}
	/* 4. the new backend, active: one modify, if the entry still says
	   moving */
	ld = move_ldap(dir, o);
	int rc = ld != NULL ? admin_account_swap(ld, "move", acct.dn, "moving",
						 "active", o->to)
			    : 1;
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	if (rc == 2) {
		fprintf(stderr,
			"portico-admin: move: the entry was changed during "
			"the copy: it still names %s, which keeps the account; "
			"%s holds a copy (portico-admin -c BACKEND.ini remove "
			"%s --yes there, or finish with enable --server %s and "
			"remove here)\n",
			here, o->to, acct.id, o->to);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr,
			"portico-admin: move: %s holds the account, but its "
			"entry still says moving on %s: portico-admin -c "
			"FRONTEND.ini enable %s --server %s ... finishes the "
			"move, then portico-admin -c BACKEND.ini remove %s "
			"--yes here\n",
			o->to, here, o->address, o->to, acct.id);
		return 1;
	}
	printf("%s: porticoAccountState moving -> active, "
	       "porticoMailboxServer %s -> %s\n",
	       o->address, here, o->to);
	/* 5. nothing of it left here */
	if (admin_remove_mailbox(a, acct.id) != 0) {
		fprintf(stderr,
			"portico-admin: move: %s is on %s now; its copy here "
			"is left: portico-admin -c BACKEND.ini remove %s "
			"--yes\n",
			o->address, o->to, acct.id);
		return 1;
	}
	printf("moved %s (%s) from %s to %s\n", o->address, acct.id, here,
	       o->to);
	return 0;
}

/* move ADDRESS --to BACKEND --via COMMAND --bind-dn DN --password-file
 * FILE [--directory FRONTEND.ini] [--offline], with -c the configuration
 * of the backend the account is on (--offline: stopped, so there is no
 * kick; nothing may answer on its backend.http_listen).  COMMAND runs an
 * account import on the new backend once it is given "import ID --account -"
 * (`ssh HOST portico-admin -c /etc/portico/backend.ini`). */
int
admin_move(struct admin *a, int argc, char **argv)
{
	struct move_opts o = {0};
	if (argc < 1 || argv[0][0] == '-')
		return ADMIN_USAGE;
	o.address = argv[0];
	for (int i = 1; i < argc; i += 2) {
		if (strcmp(argv[i], "--offline") == 0) {
			o.offline = 1;
			i--;
			continue;
		}
		if (i + 1 >= argc)
			return ADMIN_USAGE;
		if (strcmp(argv[i], "--to") == 0)
			o.to = argv[i + 1];
		else if (strcmp(argv[i], "--via") == 0)
			o.via = argv[i + 1];
		else if (strcmp(argv[i], "--bind-dn") == 0)
			o.bind_dn = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			o.pwfile = argv[i + 1];
		else if (strcmp(argv[i], "--directory") == 0)
			o.directory = argv[i + 1];
		else
			return ADMIN_USAGE;
	}
	if (o.to == NULL || o.via == NULL || o.via[0] == '\0' ||
	    o.bind_dn == NULL || o.pwfile == NULL)
		return ADMIN_USAGE;
	if (!admin_backend_id_ok(o.to)) {
		fprintf(stderr, "portico-admin: move: --to names a backend by "
				"its id (letters, digits, '.', '_', '-'; under "
				"64)\n");
		return 2;
	}
	/* the directory's settings: a frontend's file, or this one */
	struct admin dir;
	memset(&dir, 0, sizeof(dir));
	struct admin *d = a;
	if (o.directory != NULL) {
		const char *err;
		dir.config_path = o.directory;
		config_defaults(&dir.cfg);
		if (config_load(&dir.cfg, o.directory, &err) < 0) {
			fprintf(stderr, "portico-admin: %s\n", err);
			config_free(&dir.cfg);
			return 1;
		}
		d = &dir;
	}
	int rc = move_run(a, d, &o);
	if (d == &dir)
		config_free(&dir.cfg);
	return rc;
}
