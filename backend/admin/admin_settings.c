/* admin_settings.c - portico-admin's configuration commands: settings
 * show / set (a daemon's INI file), config-reference (docs/CONFIG.md),
 * dns-srv (SRV records for the connection settings).
 *
 * Every setting is a row of common/settings.def; this file reads the
 * same rows for the names, types and defaults, and validates new values
 * with config_set(), the parser the daemons use, then the whole new file
 * with the daemon's own check (portico-backend or portico-frontend -t).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ini.h>

#include "backend/admin/admin.h"
#include "common/buf.h"
#include "common/connset.h"

enum admin_type { A_STR, A_INT, A_SIZE, A_TIME, A_BOOL };

struct admin_setting {
	const char *section;
	const char *name;
	enum admin_type type;
	size_t offset;
};

/* clang-format off */
static const struct admin_setting admin_settings_table[] = {
#define SETTING(sec, nm, ty, df, mn, mx, dc) \
	{ #sec, #nm, A_##ty, offsetof(struct config, sec##_##nm) },
#include "common/settings.def"
#undef SETTING
};
/* clang-format on */

#define N_SETTINGS (sizeof(admin_settings_table) / sizeof(admin_settings_table[0]))

/* The value of s in cfg, as the file would say it. */
static void
setting_format(const struct config *cfg, const struct admin_setting *s,
	       char *out, size_t outsize)
{
	const char *field = (const char *)cfg + s->offset;
	int64_t iv;
	uint64_t uv;
	switch (s->type) {
	case A_STR:
		snprintf(out, outsize, "%s", *(char *const *)field);
		if (strstr(s->name, "password") != NULL && out[0] != '\0')
			snprintf(out, outsize, "(hidden)");
		return;
	case A_BOOL:
		snprintf(out, outsize, "%s", *(const int *)field ? "yes" : "no");
		return;
	case A_INT:
		memcpy(&iv, field, sizeof(iv));
		snprintf(out, outsize, "%" PRId64, iv);
		return;
	case A_SIZE:
		memcpy(&uv, field, sizeof(uv));
		if (uv != 0 && uv % (1ULL << 30) == 0)
			snprintf(out, outsize, "%" PRIu64 "G", uv >> 30);
		else if (uv != 0 && uv % (1ULL << 20) == 0)
			snprintf(out, outsize, "%" PRIu64 "M", uv >> 20);
		else if (uv != 0 && uv % 1024 == 0)
			snprintf(out, outsize, "%" PRIu64 "k", uv >> 10);
		else
			snprintf(out, outsize, "%" PRIu64, uv);
		return;
	case A_TIME:
		memcpy(&iv, field, sizeof(iv));
		if (iv != 0 && iv % 86400 == 0)
			snprintf(out, outsize, "%" PRId64 "d", iv / 86400);
		else if (iv != 0 && iv % 3600 == 0)
			snprintf(out, outsize, "%" PRId64 "h", iv / 3600);
		else if (iv != 0 && iv % 60 == 0)
			snprintf(out, outsize, "%" PRId64 "m", iv / 60);
		else
			snprintf(out, outsize, "%" PRId64 "s", iv);
		return;
	}
}

/* The settings a file sets: "section.name" strings. */
struct file_keys {
	char **keys;
	size_t n, cap;
};

static int
file_keys_fn(void *user, const char *section, const char *name,
	     const char *value)
{
	struct file_keys *fk = user;
	if (fk->n == fk->cap) {
		fk->cap = fk->cap ? fk->cap * 2 : 64;
		fk->keys = realloc(fk->keys, fk->cap * sizeof(*fk->keys));
		if (fk->keys == NULL)
			abort();
	}
	if (asprintf(&fk->keys[fk->n], "%s.%s", section, name) < 0)
		abort();
	fk->n++;
	return 1;
}

static int
file_keys_has(const struct file_keys *fk, const char *section,
	      const char *name)
{
	char key[256];
	snprintf(key, sizeof(key), "%s.%s", section, name);
	for (size_t i = 0; i < fk->n; i++)
		if (strcmp(fk->keys[i], key) == 0)
			return 1;
	return 0;
}

static void
file_keys_free(struct file_keys *fk)
{
	for (size_t i = 0; i < fk->n; i++)
		free(fk->keys[i]);
	free(fk->keys);
}

/* settings show [--changed] [SECTION|SECTION.NAME]: one line per
 * setting, "section.name = value", then after "  ; " where it comes
 * from: "set (default X)" or "default". */
static int
settings_show(struct admin *a, int argc, char **argv)
{
	int changed = 0;
	const char *filter = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--changed") == 0)
			changed = 1;
		else if (filter == NULL && argv[i][0] != '-')
			filter = argv[i];
		else
			return ADMIN_USAGE;
	}
	struct file_keys fk = {NULL, 0, 0};
	if (ini_parse(a->config_path, file_keys_fn, &fk) != 0) {
		/* config_load() read it: only a race gets here. */
		fprintf(stderr, "portico-admin: settings: cannot read %s\n",
			a->config_path);
		file_keys_free(&fk);
		return 1;
	}
	struct config def;
	config_defaults(&def);
	unsigned shown = 0;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct admin_setting *s = &admin_settings_table[i];
		char full[256];
		snprintf(full, sizeof(full), "%s.%s", s->section, s->name);
		if (filter != NULL && strcmp(filter, s->section) != 0 &&
		    strcmp(filter, full) != 0)
			continue;
		int set = file_keys_has(&fk, s->section, s->name);
		if (changed && !set)
			continue;
		char value[1024], dvalue[1024], line[1400];
		setting_format(&a->cfg, s, value, sizeof(value));
		setting_format(&def, s, dvalue, sizeof(dvalue));
		snprintf(line, sizeof(line), "%s = %s", full, value);
		if (set)
			printf("%-56s  ; set (default \"%s\")\n", line, dvalue);
		else
			printf("%-56s  ; default\n", line);
		shown++;
	}
	config_free(&def);
	file_keys_free(&fk);
	if (filter != NULL && shown == 0 && !changed) {
		fprintf(stderr, "portico-admin: settings: no setting or "
				"section %s\n",
			filter);
		return 1;
	}
	return 0;
}

/* -- settings set -----------------------------------------------------------*/

struct assignment {
	char section[64];
	char name[128];
	const char *value;
	int done;
};

/* The key of an INI line "  name = value" / "name: value" into out; 0
 * when the line is no assignment. */
static int
line_key(const char *line, size_t len, char *out, size_t outsize)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == ';' || line[i] == '#' || line[i] == '[')
		return 0;
	size_t k = i;
	while (k < len && line[k] != '=' && line[k] != ':')
		k++;
	if (k == len)
		return 0;
	size_t e = k;
	while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	if (e - i >= outsize)
		return 0;
	memcpy(out, line + i, e - i);
	out[e - i] = '\0';
	return 1;
}

/* A section header "[name]" into out; 0 when the line is none. */
static int
line_section(const char *line, size_t len, char *out, size_t outsize)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] != '[')
		return 0;
	const char *rb = memchr(line + i, ']', len - i);
	if (rb == NULL)
		return 0;
	size_t n = (size_t)(rb - line) - i - 1;
	while (n > 0 && line[i + 1] == ' ')
		i++, n--;
	while (n > 0 && line[i + n] == ' ')
		n--;
	if (n >= outsize)
		n = outsize - 1;
	memcpy(out, line + i + 1, n);
	out[n] = '\0';
	return 1;
}

/* The file with each assignment applied: a key present in its section
 * gets the new value (its indentation and inline comment kept), one that
 * is not is added after the last line of its section (or in a new
 * section at the end).  Every other line is kept as it was. */
static void
rewrite(const char *d, size_t len, struct assignment *as, size_t nas,
	struct buf *out)
{
	char section[64] = "";
	/* End (offset) of the last non-empty line of each section seen. */
	size_t *sec_end = calloc(nas, sizeof(*sec_end));
	int *sec_seen = calloc(nas, sizeof(*sec_seen));
	if (sec_end == NULL || sec_seen == NULL)
		abort();
	struct buf body = BUF_INIT;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(d + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - d) + 1 : len;
		const char *line = d + i;
		size_t ll = end - i;
		char key[128];
		line_section(line, ll, section, sizeof(section));
		int replaced = 0;
		if (line_key(line, ll, key, sizeof(key))) {
			for (size_t k = 0; k < nas; k++) {
				if (strcmp(as[k].section, section) != 0 ||
				    strcmp(as[k].name, key) != 0)
					continue;
				size_t ind = strspn(line, " \t");
				if (ind > ll)
					ind = ll;
				/* an inline comment: " ;" after the value */
				const char *eq = line + ind + strcspn(line + ind, "=:");
				const char *cm = NULL;
				for (const char *p = eq; p + 1 < line + ll; p++)
					if ((*p == ' ' || *p == '\t') &&
					    p[1] == ';') {
						cm = p;
						break;
					}
				buf_append(&body, line, ind);
				buf_printf(&body, "%s = %s", key, as[k].value);
				if (cm != NULL) {
					size_t cl = (size_t)(line + ll - cm);
					while (cl > 0 && (cm[cl - 1] == '\n' ||
							  cm[cl - 1] == '\r'))
						cl--;
					buf_append(&body, cm, cl);
				}
				buf_append(&body, "\n", 1);
				as[k].done = 1;
				replaced = 1;
				break;
			}
		}
		if (!replaced) {
			buf_append(&body, line, ll);
			if (nl == NULL)
				buf_append(&body, "\n", 1);
		}
		/* Where a new key of this section would go. */
		size_t nonblank = 0;
		while (nonblank < ll && strchr(" \t\r\n", line[nonblank]))
			nonblank++;
		for (size_t k = 0; k < nas; k++)
			if (strcmp(as[k].section, section) == 0 &&
			    nonblank < ll) {
				sec_seen[k] = 1;
				sec_end[k] = buf_used(&body);
			}
		i = end;
	}
	/* Keys to add inside an existing section, last position first so
	   that earlier offsets stay right. */
	struct buf tail = BUF_INIT;
	size_t cut = buf_used(&body);
	for (;;) {
		size_t best = (size_t)-1;
		for (size_t k = 0; k < nas; k++)
			if (!as[k].done && sec_seen[k] &&
			    (best == (size_t)-1 || sec_end[k] > sec_end[best]))
				best = k;
		if (best == (size_t)-1)
			break;
		size_t at = sec_end[best];
		struct buf add = BUF_INIT;
		for (size_t k = 0; k < nas; k++)
			if (!as[k].done && sec_seen[k] && sec_end[k] == at) {
				buf_printf(&add, "%s = %s\n", as[k].name,
					   as[k].value);
				as[k].done = 1;
			}
		struct buf rest = BUF_INIT;
		buf_append(&rest, buf_ptr(&add), buf_used(&add));
		buf_append(&rest, buf_ptr(&body) + at, cut - at);
		buf_append(&rest, buf_ptr(&tail), buf_used(&tail));
		buf_free(&tail);
		tail = rest;
		cut = at;
		buf_free(&add);
	}
	buf_append(out, buf_ptr(&body), cut);
	buf_append(out, buf_ptr(&tail), buf_used(&tail));
	buf_free(&tail);
	buf_free(&body);
	/* New sections at the end. */
	for (size_t k = 0; k < nas; k++) {
		if (as[k].done)
			continue;
		buf_printf(out, "\n[%s]\n", as[k].section);
		for (size_t j = k; j < nas; j++)
			if (!as[j].done &&
			    strcmp(as[j].section, as[k].section) == 0) {
				buf_printf(out, "%s = %s\n", as[j].name,
					   as[j].value);
				as[j].done = 1;
			}
	}
	free(sec_end);
	free(sec_seen);
}

static int
write_atomically(const char *path, const struct buf *data, char *tmp,
		 size_t tmpsize)
{
	struct stat sb;
	mode_t mode = 0600;
	if (stat(path, &sb) == 0)
		mode = sb.st_mode & 07777;
	snprintf(tmp, tmpsize, "%s.portico-admin.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < buf_used(data)) {
		ssize_t w = write(fd, buf_ptr(data) + off, buf_used(data) - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Runs "DAEMON -t -c path" (the daemon installed beside portico-admin):
 * what the daemon checks beyond each value's syntax and range (a
 * setting's allowed words, addresses, networks, settings that must agree)
 * at a start or a reload.  0: passed, or no such daemon beside us (the
 * check is skipped, *skipped_r set); -1: refused (its message on
 * stderr). */
static int
daemon_check(const char *daemon, const char *path, int *skipped_r)
{
	char self[4096], bin[4200];
	*skipped_r = 1;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 0;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	snprintf(bin, sizeof(bin), "%s/%s", self, daemon);
	if (access(bin, X_OK) != 0)
		return 0;
	*skipped_r = 0;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* its "configuration OK" is not ours to print */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execl(bin, daemon, "-t", "-c", path, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* settings set SECTION.NAME=VALUE... [--reload PIDFILE] */
static int
settings_set(struct admin *a, int argc, char **argv)
{
	const char *pidfile = NULL;
	struct assignment *as = calloc((size_t)argc + 1, sizeof(*as));
	size_t nas = 0;
	const char *err;
	int rc = 1;
	if (as == NULL)
		abort();
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--reload") == 0 && i + 1 < argc) {
			pidfile = argv[++i];
			continue;
		}
		char *eq = strchr(argv[i], '=');
		char *dot = eq ? memchr(argv[i], '.', (size_t)(eq - argv[i]))
			       : NULL;
		if (eq == NULL || dot == NULL || dot == argv[i] ||
		    dot + 1 == eq || (size_t)(dot - argv[i]) >= 64 ||
		    (size_t)(eq - dot - 1) >= 128) {
			fprintf(stderr, "portico-admin: settings set: \"%s\": "
					"expected section.name=value\n",
				argv[i]);
			free(as);
			return 2;
		}
		struct assignment *x = &as[nas++];
		memcpy(x->section, argv[i], (size_t)(dot - argv[i]));
		memcpy(x->name, dot + 1, (size_t)(eq - dot - 1));
		x->value = eq + 1;
		if (strpbrk(x->value, "\r\n") != NULL ||
		    x->value[0] == ' ' || x->value[0] == '\t' ||
		    (x->value[0] != '\0' &&
		     strchr(" \t", x->value[strlen(x->value) - 1]) != NULL)) {
			fprintf(stderr, "portico-admin: settings set: %s.%s: "
					"a value is one line without leading "
					"or trailing blanks\n",
				x->section, x->name);
			free(as);
			return 1;
		}
		/* The daemons' parser decides. */
		if (config_set(&a->cfg, x->section, x->name, x->value, &err) <
		    0) {
			fprintf(stderr, "portico-admin: settings set: %s\n",
				err);
			free(as);
			return 1;
		}
	}
	if (nas == 0) {
		free(as);
		return ADMIN_USAGE;
	}
	struct buf file = BUF_INIT, out = BUF_INIT;
	FILE *f = fopen(a->config_path, "rb");
	if (f == NULL) {
		fprintf(stderr, "portico-admin: %s: %s\n", a->config_path,
			strerror(errno));
		goto done;
	}
	char tmpb[65536];
	size_t r;
	while ((r = fread(tmpb, 1, sizeof(tmpb), f)) > 0)
		buf_append(&file, tmpb, r);
	fclose(f);
	rewrite(buf_ptr(&file), buf_used(&file), as, nas, &out);
	char tmp[4096];
	if (write_atomically(a->config_path, &out, tmp, sizeof(tmp)) < 0) {
		fprintf(stderr, "portico-admin: settings set: writing next to "
				"%s: %s\n",
			a->config_path, strerror(errno));
		goto done;
	}
	/* The new file as the daemon will read it. */
	struct config check;
	config_defaults(&check);
	if (config_load(&check, tmp, &err) < 0) {
		fprintf(stderr, "portico-admin: settings set: the new file "
				"does not load (%s); %s left as it was\n",
			err, a->config_path);
		config_free(&check);
		unlink(tmp);
		goto done;
	}
	/* A backend's file names the backend (backend.id); any other is a
	   frontend's. */
	const char *daemon = check.backend_id[0] != '\0' ? "portico-backend"
						       : "portico-frontend";
	config_free(&check);
	int skipped;
	if (daemon_check(daemon, tmp, &skipped) < 0) {
		fprintf(stderr, "portico-admin: settings set: %s -t refuses "
				"the new file; %s left as it was\n",
			daemon, a->config_path);
		unlink(tmp);
		goto done;
	}
	if (skipped)
		fprintf(stderr, "portico-admin: settings set: %s is not "
				"installed beside portico-admin: the new file "
				"is checked value by value only\n",
			daemon);
	if (rename(tmp, a->config_path) < 0) {
		fprintf(stderr, "portico-admin: settings set: %s: %s\n",
			a->config_path, strerror(errno));
		unlink(tmp);
		goto done;
	}
	for (size_t k = 0; k < nas; k++)
		printf("%s.%s = %s\n", as[k].section, as[k].name,
		       as[k].value);
	rc = 0;
	if (pidfile != NULL) {
		FILE *pf = fopen(pidfile, "r");
		long pid = 0;
		if (pf == NULL || fscanf(pf, "%ld", &pid) != 1 || pid <= 1) {
			fprintf(stderr, "portico-admin: settings set: %s: no "
					"process id in it (file written, not "
					"reloaded)\n",
				pidfile);
			rc = 1;
		} else if (kill((pid_t)pid, SIGHUP) < 0) {
			fprintf(stderr, "portico-admin: settings set: SIGHUP "
					"to %ld: %s (file written, not "
					"reloaded)\n",
				pid, strerror(errno));
			rc = 1;
		} else {
			printf("reload: SIGHUP sent to %ld\n", pid);
		}
		if (pf != NULL)
			fclose(pf);
	}
done:
	buf_free(&file);
	buf_free(&out);
	free(as);
	return rc;
}

/* settings show ... | settings set ... */
int
admin_settings(struct admin *a, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "show") == 0)
		return settings_show(a, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "set") == 0)
		return settings_set(a, argc - 1, argv + 1);
	return ADMIN_USAGE;
}

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
