/* config_reload.h - configuration snapshots for SIGHUP.
 *
 * A reload reads the file into a new snapshot; settings that only take
 * effect at start (listeners, workers, store, link certificates ...) keep
 * their running value, with a warning naming each one that changed.  A
 * snapshot is immutable once handed to an event loop.  Snapshots are kept
 * until the process exits (a few kilobytes each): code that took a string
 * from an older one (an LDAP request's base DN, say) never sees it freed.
 */
#ifndef PORTICO_CONFIG_RELOAD_H
#define PORTICO_CONFIG_RELOAD_H

#include "common/config.h"

struct config_snap {
	struct config cfg;
	unsigned generation;       /* 1: the configuration at start */
	struct config_snap *older;
};

/* Defaults, then path.  NULL with a message in *error_r when the file
 * does not parse (the message names the line and the setting). */
struct config_snap *config_snap_load(const char *path, unsigned generation,
				     const char **error_r);
/* Frees snap and every older one. */
void config_snap_free_all(struct config_snap **snap);

/* Whether section.name only takes effect at start. */
int config_setting_fixed(const char *section, const char *name);
/* For a reload from old to cfg: each fixed setting that differs gets its
 * old value back and a warning; each other change is logged.  Returns the
 * number of settings that change live. */
unsigned config_reload_merge(const struct config *old, struct config *cfg);

/* SIGHUP's common part: reads path into the next snapshot, checks it with
 * check (the daemon's own validation), merges it over *cur and makes it
 * the current one, the log level included.  Returns 0 with the number of
 * settings changed live in *live, or -1 after logging why the running
 * configuration is kept. */
int config_reload(struct config_snap **cur, const char *path,
		  int (*check)(const struct config *cfg, const char **error_r),
		  unsigned *live);

#endif
