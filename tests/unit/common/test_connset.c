/* test_connset.c - host:port:SSL|TLS| connection settings and the SRV
 * records made of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/connset.h"

static void
test_parse_forms(void **state)
{
	(void)state;
	struct connset set;
	const char *err = NULL;
	assert_int_equal(connset_parse(" imap.example.com:993:SSL, "
				       "imap.example.com:143:tls,mail:110: "
				       "2=imap2.example.com:143:TLS",
				       &set, &err),
			 0);
	assert_int_equal(set.n, 4);
	assert_string_equal(set.e[0].host, "imap.example.com");
	assert_int_equal(set.e[0].port, 993);
	assert_int_equal(set.e[0].enc, CONNSET_SSL);
	assert_int_equal(set.e[0].site, 0);
	assert_int_equal(set.e[1].enc, CONNSET_TLS);
	assert_int_equal(set.e[2].enc, CONNSET_NONE);
	assert_string_equal(set.e[2].host, "mail");
	assert_int_equal(set.e[3].site, 2);
	assert_string_equal(set.e[3].host, "imap2.example.com");
	assert_int_equal(connset_parse("", &set, &err), 0);
	assert_int_equal(set.n, 0);
	assert_string_equal(connset_enc_label(CONNSET_SSL), "SSL/TLS");
	assert_string_equal(connset_enc_label(CONNSET_TLS), "STARTTLS");
	assert_string_equal(connset_enc_setting(CONNSET_NONE), "");
}

static void
test_parse_errors(void **state)
{
	(void)state;
	static const char *bad[] = {
		"imap.example.com",         "imap.example.com:993",
		"imap.example.com:0:SSL",   "imap.example.com:65536:SSL",
		"imap.example.com:99x:SSL", "imap.example.com::SSL",
		"imap.example.com:993:TLS1", ":993:SSL",
		"-imap:993:SSL",            "im_ap:993:SSL",
		"a..b:993:SSL",             "0=imap:993:SSL",
		"70000=imap:993:SSL",       "x=imap:993:SSL",
		"[::1]:993:SSL",            "imap:993:SSL:extra",
		"imap:18446744073709551617:SSL",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct connset set;
		const char *err = NULL;
		if (connset_parse(bad[i], &set, &err) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(err);
	}
	/* a 64-character label is too long, 63 is fine */
	char host[80];
	memset(host, 'a', 64);
	strcpy(host + 64, ":1:");
	struct connset set;
	const char *err;
	assert_int_equal(connset_parse(host, &set, &err), -1);
	memmove(host, host + 1, strlen(host));
	assert_int_equal(connset_parse(host, &set, &err), 0);
	/* at most CONNSET_MAX entries */
	char many[512] = "";
	for (int i = 0; i <= CONNSET_MAX; i++)
		strcat(many, "h:1:SSL ");
	assert_int_equal(connset_parse(many, &set, &err), -1);
}

static void
test_load_names_the_setting(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	const char *err = NULL;
	assert_int_equal(config_set(&cfg, "connection", "pop3_external",
				    "pop.example.com:995:SSX", &err),
			 0);
	struct connsets sets;
	assert_int_equal(connsets_load(&cfg, &sets, &err), -1);
	assert_non_null(strstr(err, "connection.pop3_external"));
	config_free(&cfg);
}

static void
test_srv_records(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	const char *err = NULL;
	assert_int_equal(config_set(&cfg, "connection", "imap_external",
				    "imap.example.com:143:TLS, "
				    "imap.example.com:993:SSL, "
				    "3=imap3.example.com:993:SSL",
				    &err),
			 0);
	assert_int_equal(config_set(&cfg, "connection", "smtp_external",
				    "smtp.example.com:587:TLS", &err),
			 0);
	struct connsets sets;
	assert_int_equal(connsets_load(&cfg, &sets, &err), 0);
	int offered[CONNSET_PROTO_COUNT] = {1, 0, 1};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	connsets_write_srv(&sets, offered, "example.com", 300, f);
	fclose(f);
	/* SMTP not advertised: no submission records; POP3 not offered:
	   nothing; site entries never */
	assert_string_equal(out,
			    "_imaps._tcp.example.com.\t300\tIN\tSRV\t10 1 993 "
			    "imap.example.com.\n"
			    "_imap._tcp.example.com.\t300\tIN\tSRV\t0 1 143 "
			    "imap.example.com.\n");
	free(out);
	sets.smtp_advertised = 1;
	offered[CONNSET_POP3] = 1;
	f = open_memstream(&out, &len);
	connsets_write_srv(&sets, offered, "example.com.", 300, f);
	fclose(f);
	assert_non_null(strstr(out, "_pop3s._tcp.example.com.\t300\tIN\tSRV\t"
				    "0 0 0 .\n"));
	assert_non_null(strstr(out, "_submissions._tcp.example.com.\t300\tIN\t"
				    "SRV\t0 0 0 .\n"));
	assert_non_null(strstr(out, "_submission._tcp.example.com.\t300\tIN\t"
				    "SRV\t0 1 587 smtp.example.com.\n"));
	assert_null(strstr(out, "example.com.."));
	free(out);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_load_names_the_setting),
		cmocka_unit_test(test_srv_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
