/* test_config_reload.c - what a reload may change: fixed settings keep
 * their running value, the others change and are counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config_reload.h"
#include "common/log.h"

static void
set(struct config *cfg, const char *section, const char *name,
    const char *value)
{
	const char *err;
	assert_int_equal(config_set(cfg, section, name, value, &err), 0);
}

static void
test_fixed(void **state)
{
	/* listeners move at a reload, but the direct IMAP one of tests */
	assert_false(config_setting_fixed("frontend", "imap_listen"));
	assert_false(config_setting_fixed("frontend", "lmtp_listen"));
	assert_true(config_setting_fixed("frontend", "workers"));
	assert_false(config_setting_fixed("http", "listen"));
	assert_false(config_setting_fixed("http", "tls_listen"));
	assert_false(config_setting_fixed("backend", "link_listen"));
	assert_false(config_setting_fixed("backend", "http_listen"));
	assert_true(config_setting_fixed("backend", "direct_imap_listen"));
	assert_true(config_setting_fixed("backend", "store_dir"));
	assert_true(config_setting_fixed("connection", "imap_external"));
	assert_false(config_setting_fixed("ldap", "auth_connections"));
	assert_false(config_setting_fixed("ldap", "cache_size"));
	assert_false(config_setting_fixed("limits", "auth_penalty_entries"));
	assert_true(config_setting_fixed("limits", "ipv6_prefix"));
	assert_false(config_setting_fixed("ldap", "base_dn"));
	assert_false(config_setting_fixed("ldap", "privileged_attribute"));
	/* the directory's address and credentials apply live */
	assert_false(config_setting_fixed("ldap", "uris"));
	assert_false(config_setting_fixed("ldap", "bind_password"));
	assert_false(config_setting_fixed("ldap", "tls_ca_file"));
	assert_false(config_setting_fixed("limits", "max_connections"));
	assert_false(config_setting_fixed("frontend", "imap_login_type"));
	assert_false(config_setting_fixed("log", "protocol_imap"));
	assert_false(config_setting_fixed("tls", "cert_file"));
	assert_false(config_setting_fixed("frontend", "imap"));
	/* the probes' rounds are set up at start; each reads these */
	assert_true(config_setting_fixed("probe", "interval"));
	assert_true(config_setting_fixed("probe", "users"));
	assert_true(config_setting_fixed("probe", "protocols"));
	assert_true(config_setting_fixed("probe", "ca_file"));
	assert_false(config_setting_fixed("probe", "password_file"));
	assert_false(config_setting_fixed("probe", "timeout"));
	assert_false(config_setting_fixed("probe", "light"));
}

static void
test_merge(void **state)
{
	struct config old, cfg;
	config_defaults(&old);
	config_defaults(&cfg);
	set(&old, "backend", "direct_imap_listen", "127.0.0.1:80");
	set(&cfg, "backend", "direct_imap_listen", "127.0.0.1:8080");
	set(&cfg, "backend", "store_map_size", "2G");
	set(&cfg, "limits", "max_connections_per_address", "7");
	set(&cfg, "frontend", "imap_login_type", "plaintext");
	set(&cfg, "log", "protocol_pop3", "yes");
	assert_int_equal(config_reload_merge(&old, &cfg), 3);
	assert_string_equal(cfg.backend_direct_imap_listen, "127.0.0.1:80");
	assert_int_equal(cfg.backend_store_map_size, old.backend_store_map_size);
	assert_int_equal(cfg.limits_max_connections_per_address, 7);
	assert_string_equal(cfg.frontend_imap_login_type, "plaintext");
	assert_int_equal(cfg.log_protocol_pop3, 1);
	/* nothing changed: nothing counted */
	assert_int_equal(config_reload_merge(&cfg, &cfg), 0);
	config_free(&old);
	config_free(&cfg);
}

static void
test_snap_load(void **state)
{
	char path[] = "/tmp/test_config_reload_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char good[] = "[limits]\nmax_connections = 5\n";
	assert_int_equal(write(fd, good, sizeof(good) - 1), sizeof(good) - 1);
	close(fd);
	const char *err = NULL;
	struct config_snap *s = config_snap_load(path, 2, &err);
	assert_non_null(s);
	assert_int_equal(s->generation, 2);
	assert_int_equal(s->cfg.limits_max_connections, 5);
	FILE *f = fopen(path, "a");
	fputs("max_connections = many\n", f);
	fclose(f);
	struct config_snap *bad = config_snap_load(path, 3, &err);
	assert_null(bad);
	assert_non_null(strstr(err, "limits.max_connections: invalid value "
				    "'many'"));
	s->older = config_snap_load("/dev/null", 1, &err);
	assert_non_null(s->older);
	config_snap_free_all(&s);
	assert_null(s);
	unlink(path);
}

int
main(void)
{
	log_init("test", LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_snap_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
