/* test_config.c - settings table, value parsers and INI loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"

/* -- temporary INI files -------------------------------------------------- */

struct tmpini {
	char path[256];
	struct config cfg;
	const char *error;
};

static int
setup(void **state)
{
	struct tmpini *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	const char *dir = getenv("TMPDIR");
	snprintf(t->path, sizeof(t->path), "%s/portico-test-XXXXXX.ini",
		 dir != NULL && *dir != '\0' ? dir : "/tmp");
	int fd = mkstemps(t->path, 4);
	if (fd < 0) {
		free(t);
		return -1;
	}
	close(fd);
	config_defaults(&t->cfg);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmpini *t = *state;
	unlink(t->path);
	config_free(&t->cfg);
	free(t);
	return 0;
}

/* Writes text to the file and loads it over the defaults. */
static int
load(struct tmpini *t, const char *text)
{
	FILE *f = fopen(t->path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	config_free(&t->cfg);
	config_defaults(&t->cfg);
	t->error = NULL;
	return config_load(&t->cfg, t->path, &t->error);
}

/* Expects loading text to fail with "<path>:<line>: <msg>". */
static void
load_fails(struct tmpini *t, const char *text, int line, const char *msg)
{
	char want[512];
	assert_int_equal(load(t, text), -1);
	assert_non_null(t->error);
	snprintf(want, sizeof(want), "%s:%d: %s", t->path, line, msg);
	assert_string_equal(t->error, want);
}

/* -- defaults ------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct tmpini *t = *state;
	struct config *c = &t->cfg;

	assert_string_equal(c->global_name, "portico");
	assert_int_equal(c->global_site, 1);
	assert_string_equal(c->global_log_level, "info");
	assert_string_equal(c->ldap_uris, "ldap://127.0.0.1/");
	assert_int_equal(c->ldap_timeout, 5);
	assert_int_equal(c->ldap_retry_interval, 1);
	assert_string_equal(c->frontend_imap_login_type, "secure");
	assert_int_equal(c->frontend_backend_cache_ttl, 60);
	assert_int_equal(c->backend_store_map_size, 1024ULL * 1024 * 1024);
	assert_int_equal(c->limits_prelogin_timeout, 60);
	assert_int_equal(c->limits_session_timeout, 30 * 60);
	assert_int_equal(c->limits_prelogin_max_line, 8 * 1024);
	assert_int_equal(c->limits_max_line, 64 * 1024);
	assert_int_equal(c->limits_max_command_size, 65 * 1024 * 1024);
	assert_int_equal(c->limits_max_literal_size, 64 * 1024 * 1024);
	assert_int_equal(c->limits_max_nesting, 32);
	assert_int_equal(c->limits_max_bad_commands, 10);
	assert_int_equal(c->limits_link_window, 256 * 1024);
	assert_int_equal(c->limits_link_max_frame, 1024 * 1024);
}

/* Every row of the table: STR fields are never NULL and hold the default;
 * every default is accepted again by config_set(). */
static void
check_STR(struct config *c, char *const *field, const char *sec,
	  const char *name, const char *def, int64_t min, int64_t max)
{
	assert_non_null(*field);
	assert_string_equal(*field, def);
}

static void
check_number(struct config *c, const char *sec, const char *name,
	     const char *def, int64_t min, int64_t max)
{
	const char *err = NULL;
	assert_true(min <= max);
	if (config_set(c, sec, name, def, &err) != 0)
		fail_msg("%s.%s: default: %s", sec, name, err);
}

static int
in_range_u64(uint64_t v, uint64_t min, uint64_t max)
{
	return v >= min && v <= max;
}

#define check_INT(c, field, sec, name, def, min, max) \
	do { \
		assert_true(*(field) >= (min) && *(field) <= (max)); \
		check_number(c, sec, name, def, min, max); \
	} while (0)
#define check_TIME check_INT
#define check_SIZE(c, field, sec, name, def, min, max) \
	do { \
		assert_true(in_range_u64(*(field), (uint64_t)(min), \
					 (uint64_t)(max))); \
		check_number(c, sec, name, def, min, max); \
	} while (0)

static void
check_BOOL(struct config *c, const int *field, const char *sec,
	   const char *name, const char *def, int64_t min, int64_t max)
{
	const char *err = NULL;
	assert_true(*field == 0 || *field == 1);
	if (config_set(c, sec, name, def, &err) != 0)
		fail_msg("%s.%s: default: %s", sec, name, err);
}

static void
test_every_setting(void **state)
{
	struct tmpini *t = *state;
	struct config *c = &t->cfg;
	unsigned n = 0;
#define SETTING(sec, name, type, def, min, max, doc) \
	check_##type(c, &c->sec##_##name, #sec, #name, def, min, max); \
	n++;
#include "common/settings.def"
#undef SETTING
	assert_true(n > 30);
}

/* -- value parsers -------------------------------------------------------- */

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "0", 0 },
		{ "10", 10 },
		{ "64k", 64 * 1024 },
		{ "64K", 64 * 1024 },
		{ "64kB", 64 * 1024 },
		{ "1M", 1024 * 1024 },
		{ "1m", 1024 * 1024 },
		{ "1MB", 1024 * 1024 },
		{ "2G", 2ULL * 1024 * 1024 * 1024 },
		{ "2g", 2ULL * 1024 * 1024 * 1024 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183G", UINT64_MAX - (1024ULL * 1024 * 1024 - 1) },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 12345;
		if (config_parse_size(ok[i].s, &v) != 0)
			fail_msg("size \"%s\" refused", ok[i].s);
		assert_int_equal(v, ok[i].v);
	}
	static const char *const bad[] = {
		"", "k", "-1", "+1", " 1", "1 ", "1 k", "1.5M", "1T", "1kk",
		"1kBB", "1Mi", "0x10", "18446744073709551616",
		"17179869184G", "99999999999999999999k", "1e3",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		if (config_parse_size(bad[i], &v) != -1)
			fail_msg("size \"%s\" accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
}

static void
test_parse_time(void **state)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {
		{ "0", 0 },
		{ "45", 45 },
		{ "30s", 30 },
		{ "5m", 300 },
		{ "1h", 3600 },
		{ "2d", 2 * 86400 },
		{ "9223372036854775807", INT64_MAX },
		{ "9223372036854775807s", INT64_MAX },
		{ "106751991167300d", 106751991167300LL * 86400 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t v = 12345;
		if (config_parse_time(ok[i].s, &v) != 0)
			fail_msg("time \"%s\" refused", ok[i].s);
		assert_int_equal(v, ok[i].v);
	}
	static const char *const bad[] = {
		"", "s", "-5", "+5", " 5", "5 ", "5x", "5ms", "5ss", "1.5h",
		"5 m", "5M", "5H", "9223372036854775808",
		"106751991167301d", "9223372036854775807m",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = 12345;
		if (config_parse_time(bad[i], &v) != -1)
			fail_msg("time \"%s\" accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
}

/* -- config_set ----------------------------------------------------------- */

static void
set_fails(struct config *c, const char *sec, const char *name,
	  const char *value, const char *msg)
{
	const char *err = NULL;
	assert_int_equal(config_set(c, sec, name, value, &err), -1);
	assert_non_null(err);
	assert_string_equal(err, msg);
}

static void
test_set(void **state)
{
	struct tmpini *t = *state;
	struct config *c = &t->cfg;
	const char *err = NULL;

	assert_int_equal(config_set(c, "limits", "max_line", "1M", &err), 0);
	assert_int_equal(c->limits_max_line, 1024 * 1024);
	assert_int_equal(config_set(c, "limits", "max_line", "1024", &err), 0);
	assert_int_equal(c->limits_max_line, 1024);
	assert_int_equal(config_set(c, "limits", "max_line", "16M", &err), 0);
	assert_int_equal(c->limits_max_line, 16 * 1024 * 1024);
	assert_int_equal(config_set(c, "ldap", "timeout", "5m", &err), 0);
	assert_int_equal(c->ldap_timeout, 300);
	assert_int_equal(config_set(c, "global", "site", "65535", &err), 0);
	assert_int_equal(c->global_site, 65535);
	assert_int_equal(config_set(c, "global", "name", "", &err), 0);
	assert_string_equal(c->global_name, "");
	assert_int_equal(config_set(c, "backend", "store_map_size", "1024G",
				    &err),
			 0);
	assert_int_equal(c->backend_store_map_size, 1ULL << 40);

	/* Out of range, either side. */
	set_fails(c, "limits", "max_line", "1023",
		  "limits.max_line: '1023' is outside 1024..16777216");
	set_fails(c, "limits", "max_line", "16385k",
		  "limits.max_line: '16385k' is outside 1024..16777216");
	set_fails(c, "limits", "max_line", "18446744073709551615",
		  "limits.max_line: '18446744073709551615' is outside "
		  "1024..16777216");
	set_fails(c, "global", "site", "0",
		  "global.site: '0' is outside 1..65535");
	set_fails(c, "global", "site", "-1",
		  "global.site: '-1' is outside 1..65535");
	set_fails(c, "ldap", "timeout", "301",
		  "ldap.timeout: '301' is outside 1..300");
	set_fails(c, "ldap", "timeout", "0s",
		  "ldap.timeout: '0s' is outside 1..300");
	set_fails(c, "limits", "session_timeout", "59s",
		  "limits.session_timeout: '59s' is outside 60..86400");
	set_fails(c, "backend", "store_map_size", "1025G",
		  "backend.store_map_size: '1025G' is outside "
		  "1048576..1099511627776");

	/* Malformed. */
	set_fails(c, "limits", "max_line", "64q",
		  "limits.max_line: invalid value '64q'");
	set_fails(c, "limits", "max_line", "",
		  "limits.max_line: invalid value ''");
	set_fails(c, "global", "site", "1x",
		  "global.site: invalid value '1x'");
	set_fails(c, "global", "site", "",
		  "global.site: invalid value ''");
	set_fails(c, "global", "site", "99999999999999999999",
		  "global.site: invalid value '99999999999999999999'");
	set_fails(c, "ldap", "timeout", "5 minutes",
		  "ldap.timeout: invalid value '5 minutes'");

	/* Unknown. */
	set_fails(c, "limits", "max_lines", "1",
		  "unknown setting limits.max_lines");
	set_fails(c, "limit", "max_line", "1",
		  "unknown setting limit.max_line");
	set_fails(c, "", "name", "x", "unknown setting .name");
	set_fails(c, "Global", "name", "x", "unknown setting Global.name");

	/* A refused value leaves the old one. */
	assert_int_equal(c->limits_max_line, 16 * 1024 * 1024);
	assert_int_equal(c->global_site, 65535);
	assert_int_equal(c->ldap_timeout, 300);
}

/* -- config_load ---------------------------------------------------------- */

static void
test_load_overrides(void **state)
{
	struct tmpini *t = *state;
	int rc = load(t, "; Portico test configuration\n"
			 "# another comment\n"
			 "\n"
			 "[global]\n"
			 "name = edge-1\n"
			 "site=7\n"
			 "\n"
			 "[ldap]\n"
			 "uris = ldaps://a.example/ ldaps://b.example/\n"
			 "timeout = 30s\n"
			 "retry_interval = 5m ; inline comment\n"
			 "\n"
			 "[limits]\n"
			 "max_line = 128k\n"
			 "max_command_size = 2M\n"
			 "session_timeout = 1h\n"
			 "prelogin_timeout = 90\n"
			 "[backend]\n"
			 "store_map_size = 2G\n"
			 "store_dir = /var/lib/portico\n");
	if (rc != 0)
		fail_msg("%s", t->error);
	struct config *c = &t->cfg;
	assert_string_equal(c->global_name, "edge-1");
	assert_int_equal(c->global_site, 7);
	assert_string_equal(c->ldap_uris,
			    "ldaps://a.example/ ldaps://b.example/");
	assert_int_equal(c->ldap_timeout, 30);
	assert_int_equal(c->ldap_retry_interval, 300);
	assert_int_equal(c->limits_max_line, 128 * 1024);
	assert_int_equal(c->limits_max_command_size, 2 * 1024 * 1024);
	assert_int_equal(c->limits_session_timeout, 3600);
	assert_int_equal(c->limits_prelogin_timeout, 90);
	assert_int_equal(c->backend_store_map_size,
			 2ULL * 1024 * 1024 * 1024);
	assert_string_equal(c->backend_store_dir, "/var/lib/portico");
	/* What the file does not name keeps its default. */
	assert_string_equal(c->global_log_level, "info");
	assert_int_equal(c->limits_max_literal_size, 64 * 1024 * 1024);
	assert_int_equal(c->limits_prelogin_max_line, 8 * 1024);
	assert_string_equal(c->tls_cert_file, "");

	/* An empty file is all defaults. */
	assert_int_equal(load(t, ""), 0);
	assert_string_equal(t->cfg.global_name, "portico");
	assert_int_equal(t->cfg.limits_max_line, 64 * 1024);
}

static void
test_load_errors(void **state)
{
	struct tmpini *t = *state;
	load_fails(t, "[limits]\nmax_nesting = 8\nmax_line = 64q\n", 3,
		   "limits.max_line: invalid value '64q'");
	load_fails(t, "[limits]\n\n\n\nmax_line = 512\n", 5,
		   "limits.max_line: '512' is outside 1024..16777216");
	load_fails(t, "[global]\nsite = 70000\n", 2,
		   "global.site: '70000' is outside 1..65535");
	load_fails(t, "[ldap]\ntimeout = 1x\n", 2,
		   "ldap.timeout: invalid value '1x'");
	load_fails(t, "[limits]\nmax_line = 64k\nmax_lines = 64k\n", 3,
		   "unknown setting limits.max_lines");
	load_fails(t, "[global]\nname = a\n[bogus]\nname = b\n", 4,
		   "unknown setting bogus.name");
	load_fails(t, "site = 2\n", 1, "unknown setting .site");
	load_fails(t, "[global]\nthis line has no equals sign\n", 2,
		   "syntax error");
	load_fails(t, "[global\nname = x\n", 1, "syntax error");
	/* The first error is the one reported. */
	load_fails(t,
		   "[global]\nsite = 0\nsite = 1x\n[limits]\nmax_line = 1\n",
		   2, "global.site: '0' is outside 1..65535");
	load_fails(t, "[global]\nnonsense\nsite = 0\n", 2, "syntax error");
}

static void
test_load_long_line(void **state)
{
	/* inih reads lines into a fixed buffer and takes what does not fit
	   for the next line; a long list of URIs must not be cut (here the
	   cut falls on a space, which inih reads as a continuation line). */
	struct tmpini *t = *state;
	char uris[1024], text[1200];
	size_t n = 0;
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(uris + n, sizeof(uris) - n, "%s%s",
				      i ? " " : "",
				      "ldaps://directory.example.org/");
	for (size_t cut = 150; cut < 250; cut++) {
		/* Move a space onto each position around inih's limit. */
		memset(uris, 'x', cut);
		uris[cut] = ' ';
		snprintf(text, sizeof(text), "[ldap]\nuris = %s\ntimeout = 9\n",
			 uris);
		int rc = load(t, text);
		if (rc == 0) {
			assert_string_equal(t->cfg.ldap_uris, uris);
			assert_int_equal(t->cfg.ldap_timeout, 9);
		} else {
			char want[512];
			snprintf(want, sizeof(want), "%s:2: line too long",
				 t->path);
			assert_string_equal(t->error, want);
		}
	}
	/* Short enough lines load whole. */
	assert_int_equal(load(t, "[ldap]\nuris = ldap://a/ ldap://b/\n"), 0);
	assert_string_equal(t->cfg.ldap_uris, "ldap://a/ ldap://b/");
}

static void
test_load_missing_file(void **state)
{
	struct tmpini *t = *state;
	char path[300], want[400];
	snprintf(path, sizeof(path), "%s.missing", t->path);
	t->error = NULL;
	assert_int_equal(config_load(&t->cfg, path, &t->error), -1);
	snprintf(want, sizeof(want),
		 "%s: cannot open: No such file or directory", path);
	assert_non_null(t->error);
	assert_string_equal(t->error, want);
	/* The defaults are untouched. */
	assert_string_equal(t->cfg.global_name, "portico");
}

/* -- reference ------------------------------------------------------------ */

static void
test_reference(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	config_write_reference(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(text);

	static const char *const sections[] = {
		"global", "tls", "ldap", "frontend", "backend", "limits",
	};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		char head[64];
		snprintf(head, sizeof(head), "\n## [%s]\n", sections[i]);
		const char *p = strstr(text, head);
		if (p == NULL)
			fail_msg("no section %s", sections[i]);
		/* Once only. */
		assert_null(strstr(p + 1, head));
	}
	/* Every setting has its row, with its type, default and range. */
#define SETTING(sec, name, type, def, min, max, doc) \
	assert_non_null(strstr(text, "| `" #name "` | "));
#include "common/settings.def"
#undef SETTING
	assert_non_null(strstr(text, "| `max_line` | size | `64k` | "
				     "1024..16777216 | "));
	assert_non_null(strstr(text, "| `timeout` | time | `5s` | 1..300 | "));
	assert_non_null(strstr(text, "| `site` | integer | `1` | 1..65535 | "));
	assert_non_null(strstr(text, "| `name` | text | `portico` |  | "));
	free(text);
}

/* frontend.refused_accounts, as the frontend and portico-admin user
 * match login names against it. */
static void
test_account_listed(void **state)
{
	(void)state;
	const char *list = "anonymous guest, admin  root@example.org,,";
	assert_true(config_account_listed(list, "guest"));
	assert_true(config_account_listed(list, "GUEST@example.com"));
	assert_true(config_account_listed(list, "Admin@anything.test"));
	assert_true(config_account_listed(list, "root@EXAMPLE.org"));
	assert_false(config_account_listed(list, "root@example.com"));
	assert_false(config_account_listed(list, "root"));
	assert_false(config_account_listed(list, "guests"));
	assert_false(config_account_listed(list, "gues"));
	assert_false(config_account_listed(list, "alice@example.org"));
	assert_false(config_account_listed(list, ""));
	assert_false(config_account_listed("", "guest"));
	assert_false(config_account_listed(" , ", "guest"));
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_defaults),
	    T(test_every_setting),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_account_listed),
	    T(test_set),
	    T(test_load_overrides),
	    T(test_load_errors),
	    T(test_load_long_line),
	    T(test_load_missing_file),
	    cmocka_unit_test(test_reference),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
