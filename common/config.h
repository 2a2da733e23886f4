/* config.h - the daemons' configuration (INI file, parsed by inih).
 *
 * Every setting is a row of settings.def; struct config has one field per
 * row, named <section>_<name>.  STR fields are never NULL.
 */
#ifndef PORTICO_CONFIG_H
#define PORTICO_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef char *config_STR;
typedef int64_t config_INT;
typedef uint64_t config_SIZE;
typedef int64_t config_TIME; /* seconds */
typedef int config_BOOL;

struct config {
#define SETTING(sec, name, type, def, min, max, doc) config_##type sec##_##name;
#include "common/settings.def"
#undef SETTING
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);
/* Reads path over the defaults.  On error returns -1 and a message in
 * error_r (static storage, valid until the next call). */
int config_load(struct config *cfg, const char *path, const char **error_r);
/* Parses one value into its setting; used by config_load() and tests. */
int config_set(struct config *cfg, const char *section, const char *name,
	       const char *value, const char **error_r);
void config_free(struct config *cfg);
/* Writes the reference (Markdown) of every setting. */
void config_write_reference(FILE *out);

/* Value parsers, exported for tests. */
int config_parse_size(const char *s, uint64_t *r);
/* Whether login name is in list (frontend.refused_accounts: names
 * separated by spaces or commas, case-insensitive; a name without a
 * domain matches it with any domain). */
int config_account_listed(const char *list, const char *name);
int config_parse_time(const char *s, int64_t *r);

#endif
