/* config_reload.c - configuration snapshots and what SIGHUP may change. */
#include "common/config_reload.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum field_type { F_STR, F_INT, F_SIZE, F_TIME, F_BOOL };

struct field {
	const char *section;
	const char *name;
	enum field_type type;
	size_t offset;
};

/* clang-format off */
static const struct field fields[] = {
#define SETTING(sec, nm, ty, df, mn, mx, dc) \
	{ #sec, #nm, F_##ty, offsetof(struct config, sec##_##nm) },
#include "common/settings.def"
#undef SETTING
};

/* Settings read once at start: the direct IMAP listener of benchmarks
 * (every other listener moves at a reload), event loops, the store, the
 * link's certificates, the IPv6 prefix the per-address tables
 * are keyed by, the command limits the link handshake announced, and the
 * scheduled probes' rounds (their password file, steps and timeout are
 * read at each round).  (The
 * network lists apply live: the frontend's policy parses them again at
 * each reload and resizes its caches; so do the directory's address,
 * credentials, connection count and privileged attribute,
 * dir_reconfigure(), and its trees, read at each search.) */
static const char *fixed[] = {
	"global.name", "global.site",
	"tls.ca_file", "tls.link_cert_file", "tls.link_key_file",
	"frontend.workers",
	"backend.id", "backend.store_dir", "backend.store_map_size",
	"backend.max_command_memory",
	"backend.direct_imap_listen", "backend.direct_imap_password",
	"limits.literal_plus", "limits.max_literal_size",
	"limits.max_command_size", "limits.max_line",
	"limits.ipv6_prefix",
	"connection.*",
	"probe.interval", "probe.users", "probe.protocols", "probe.ca_file",
};
/* clang-format on */

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

struct config_snap *
config_snap_load(const char *path, unsigned generation, const char **error_r)
{
	struct config_snap *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	config_defaults(&s->cfg);
	if (config_load(&s->cfg, path, error_r) < 0) {
		config_free(&s->cfg);
		free(s);
		return NULL;
	}
	s->generation = generation;
	return s;
}

void
config_snap_free_all(struct config_snap **snap)
{
	struct config_snap *s = *snap;
	while (s != NULL) {
		struct config_snap *older = s->older;
		config_free(&s->cfg);
		free(s);
		s = older;
	}
	*snap = NULL;
}

int
config_setting_fixed(const char *section, const char *name)
{
	size_t sl = strlen(section);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		const char *f = fixed[i];
		if (strncmp(f, section, sl) != 0 || f[sl] != '.')
			continue;
		if (strcmp(f + sl + 1, "*") == 0 ||
		    strcmp(f + sl + 1, name) == 0)
			return 1;
	}
	return 0;
}

static int
field_equal(const struct field *f, const struct config *a,
	    const struct config *b)
{
	const char *pa = (const char *)a + f->offset;
	const char *pb = (const char *)b + f->offset;
	switch (f->type) {
	case F_STR:
		return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
	case F_INT:
	case F_TIME:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case F_SIZE:
		return *(const uint64_t *)pa == *(const uint64_t *)pb;
	case F_BOOL:
		return *(const int *)pa == *(const int *)pb;
	}
	return 0;
}

static void
field_copy(const struct field *f, struct config *to,
	   const struct config *from)
{
	char *pt = (char *)to + f->offset;
	const char *pf = (const char *)from + f->offset;
	switch (f->type) {
	case F_STR: {
		char *copy = strdup(*(char *const *)pf);
		if (copy == NULL)
			abort();
		free(*(char **)pt);
		*(char **)pt = copy;
		return;
	}
	case F_INT:
	case F_TIME:
		*(int64_t *)pt = *(const int64_t *)pf;
		return;
	case F_SIZE:
		*(uint64_t *)pt = *(const uint64_t *)pf;
		return;
	case F_BOOL:
		*(int *)pt = *(const int *)pf;
		return;
	}
}

unsigned
config_reload_merge(const struct config *old, struct config *cfg)
{
	unsigned live = 0;
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		if (field_equal(f, old, cfg))
			continue;
		if (config_setting_fixed(f->section, f->name)) {
			log_warn("reload: setting=%s.%s changed but takes "
				 "effect only at start; old value kept",
				 f->section, f->name);
			field_copy(f, cfg, old);
			continue;
		}
		/* Values may be secrets (ldap.bind_password is fixed, but
		   log no value at all). */
		log_info("reload: setting=%s.%s changed", f->section,
			 f->name);
		live++;
	}
	return live;
}

int
config_reload(struct config_snap **cur, const char *path,
	      int (*check)(const struct config *cfg, const char **error_r),
	      unsigned *live)
{
	const char *err;
	struct config_snap *snap =
		config_snap_load(path, (*cur)->generation + 1, &err);
	if (snap == NULL) {
		log_error("reload: configuration kept, error=\"%s\"", err);
		return -1;
	}
	if (check(&snap->cfg, &err) < 0) {
		log_error("reload: configuration kept, error=\"%s\"", err);
		config_snap_free_all(&snap);
		return -1;
	}
	*live = config_reload_merge(&(*cur)->cfg, &snap->cfg);
	snap->older = *cur;
	*cur = snap;
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(snap->cfg.global_log_level, &level);
	log_set_level(level);
	return 0;
}
