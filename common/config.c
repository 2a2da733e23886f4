/* config.c - settings table, INI parsing with inih. */
#include "common/config.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum setting_type { T_STR, T_INT, T_SIZE, T_TIME, T_BOOL };

struct setting {
	const char *section;
	const char *name;
	enum setting_type type;
	const char *def;
	int64_t min, max;
	const char *doc;
	size_t offset;
};

/* clang-format off */
static const struct setting settings[] = {
#define SETTING(sec, nm, ty, df, mn, mx, dc) \
	{ #sec, #nm, T_##ty, df, mn, mx, dc, offsetof(struct config, sec##_##nm) },
#include "common/settings.def"
#undef SETTING
};
/* clang-format on */

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static char config_error[512];

int
config_parse_size(const char *s, uint64_t *r)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	uint64_t mul = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mul = 1024, end++;
		break;
	case 'm': case 'M':
		mul = 1024 * 1024, end++;
		break;
	case 'g': case 'G':
		mul = 1024ULL * 1024 * 1024, end++;
		break;
	default:
		return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*r = v * mul;
	return 0;
}

int
config_parse_time(const char *s, int64_t *r)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	int64_t mul = 1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > INT64_MAX / mul)
		return -1;
	*r = v * mul;
	return 0;
}

static int
setting_store(struct config *cfg, const struct setting *s, const char *value,
	      const char **error_r)
{
	char *field = (char *)cfg + s->offset;
	int64_t iv = 0;
	uint64_t uv = 0;
	char *end;

	switch (s->type) {
	case T_STR: {
		char *copy = strdup(value);
		if (copy == NULL)
			abort();
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case T_BOOL:
		if (strcasecmp(value, "yes") == 0 ||
		    strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(int *)field = 1;
		else if (strcasecmp(value, "no") == 0 ||
			 strcasecmp(value, "false") == 0 ||
			 strcmp(value, "0") == 0)
			*(int *)field = 0;
		else
			goto bad;
		return 0;
	case T_INT:
		errno = 0;
		iv = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			goto bad;
		break;
	case T_TIME:
		if (config_parse_time(value, &iv) < 0)
			goto bad;
		break;
	case T_SIZE:
		if (config_parse_size(value, &uv) < 0)
			goto bad;
		if (uv > (uint64_t)INT64_MAX)
			goto range;
		iv = (int64_t)uv;
		break;
	}
	if (iv < s->min || iv > s->max)
		goto range;
	if (s->type == T_SIZE)
		*(uint64_t *)field = (uint64_t)iv;
	else
		*(int64_t *)field = iv;
	return 0;
bad:
	snprintf(config_error, sizeof(config_error),
		 "%s.%s: invalid value '%s'", s->section, s->name, value);
	*error_r = config_error;
	return -1;
range:
	snprintf(config_error, sizeof(config_error),
		 "%s.%s: '%s' is outside %" PRId64 "..%" PRId64, s->section,
		 s->name, value, s->min, s->max);
	*error_r = config_error;
	return -1;
}

void
config_defaults(struct config *cfg)
{
	const char *err;
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (setting_store(cfg, &settings[i], settings[i].def, &err) < 0)
			abort(); /* the table itself is wrong */
	}
}

int
config_set(struct config *cfg, const char *section, const char *name,
	   const char *value, const char **error_r)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (strcmp(settings[i].section, section) == 0 &&
		    strcmp(settings[i].name, name) == 0)
			return setting_store(cfg, &settings[i], value, error_r);
	}
	snprintf(config_error, sizeof(config_error), "unknown setting %s.%s",
		 section, name);
	*error_r = config_error;
	return -1;
}

struct load_ctx {
	struct config *cfg;
	const char *error;
	int line;      /* of error */
	FILE *file;
	int lines;     /* read so far: the one inih is parsing */
	int too_long;  /* line that did not fit inih's buffer, or 0 */
};

static int
config_ini_handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct load_ctx *ctx = user;
	if (ctx->error != NULL)
		return 0;
	if (config_set(ctx->cfg, section, name, value, &ctx->error) < 0) {
		ctx->line = ctx->lines;
		return 0;
	}
	return 1;
}

/* inih reads lines into a fixed buffer and parses the rest of a longer
 * line as a line of its own; stop at such a line instead. */
static char *
config_ini_reader(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	if (ctx->too_long || fgets(str, num, ctx->file) == NULL)
		return NULL;
	ctx->lines++;
	size_t n = strlen(str);
	if (n > 0 && str[n - 1] != '\n') {
		int c = getc(ctx->file);
		if (c != EOF && c != '\n') {
			ctx->too_long = ctx->lines;
			return NULL;
		}
	}
	return str;
}

int
config_load(struct config *cfg, const char *path, const char **error_r)
{
	struct load_ctx ctx = {cfg, NULL, 0, NULL, 0, 0};
	ctx.file = fopen(path, "r");
	if (ctx.file == NULL) {
		snprintf(config_error, sizeof(config_error),
			 "%s: cannot open: %s", path, strerror(errno));
		*error_r = config_error;
		return -1;
	}
	int rc = ini_parse_stream(config_ini_reader, &ctx, config_ini_handler,
				  &ctx);
	fclose(ctx.file);
	if (rc == 0 && ctx.too_long) {
		snprintf(config_error, sizeof(config_error),
			 "%s:%d: line too long", path, ctx.too_long);
		*error_r = config_error;
		return -1;
	}
	if (rc != 0) {
		/* inih gives the first bad line; the handler's error may
		   come from a later one. */
		if (ctx.error != NULL && ctx.line == rc) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s", ctx.error);
			snprintf(config_error, sizeof(config_error),
				 "%s:%d: %s", path, rc, msg);
		} else {
			snprintf(config_error, sizeof(config_error),
				 "%s:%d: syntax error", path, rc);
		}
		*error_r = config_error;
		return -1;
	}
	return 0;
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (settings[i].type == T_STR) {
			char **f = (char **)((char *)cfg + settings[i].offset);
			free(*f);
			*f = NULL;
		}
	}
}

void
config_write_reference(FILE *out)
{
	static const char *type_names[] = {"text", "integer", "size", "time",
					   "yes/no"};
	const char *section = "";
	fprintf(out, "# Configuration reference\n\n"
		     "Generated from `common/settings.def` by "
		     "`portico-admin config-reference`; do not edit.\n\n"
		     "All daemons read one INI file (`-c FILE`).  Sizes take "
		     "the suffixes k, M and G; times s, m, h and d.\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (strcmp(section, s->section) != 0) {
			section = s->section;
			fprintf(out, "\n## [%s]\n\n", section);
			fprintf(out, "| setting | type | default | range | "
				     "meaning |\n|---|---|---|---|---|\n");
		}
		char range[64] = "";
		if (s->type == T_INT || s->type == T_SIZE || s->type == T_TIME)
			snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64,
				 s->min, s->max);
		fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", s->name,
			type_names[s->type], s->def, range, s->doc);
	}
}

int
config_account_listed(const char *list, const char *name)
{
	const char *at = strchr(name, '@');
	size_t local = at ? (size_t)(at - name) : strlen(name);
	size_t nlen = strlen(name);
	for (const char *p = list; *p != '\0';) {
		p += strspn(p, " ,");
		size_t len = strcspn(p, " ,");
		if (len == 0)
			break;
		if (len == nlen && strncasecmp(p, name, len) == 0)
			return 1;
		if (memchr(p, '@', len) == NULL && len == local &&
		    strncasecmp(p, name, local) == 0)
			return 1;
		p += len;
	}
	return 0;
}
