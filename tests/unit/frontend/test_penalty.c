/* test_penalty.c - authentication penalties per (address, login), per
 * (address, directory entry) and per address (frontend/penalty.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "frontend/policy.h"

struct fixture {
	struct config cfg;
	struct policy p;
};

static int
setup(void **state)
{
	static struct fixture f;
	const char *err = NULL;
	memset(&f, 0, sizeof(f));
	config_defaults(&f.cfg);
	if (config_set(&f.cfg, "limits", "auth_penalty", "1s", &err) < 0 ||
	    config_set(&f.cfg, "limits", "auth_penalty_max", "60s", &err) < 0 ||
	    config_set(&f.cfg, "limits", "auth_address_failures", "3", &err) <
		0 ||
	    policy_create(&f.p, &f.cfg, &err) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	policy_free(&f->p);
	config_free(&f->cfg);
	return 0;
}

static void
keys(struct fixture *f, const char *addr, const char *login,
     const char *password, struct policy_login_keys *k)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	policy_login_keys(&f->p, (struct sockaddr *)&sin, login, password, k);
}

/* A failed login of login with password from addr; the entry dn found
 * (NULL: none). */
static void
failed(struct fixture *f, const char *addr, const char *login,
       const char *password, const char *dn)
{
	struct policy_login_keys k;
	struct dir_user u;
	memset(&u, 0, sizeof(u));
	if (dn != NULL)
		snprintf(u.dn, sizeof(u.dn), "%s", dn);
	keys(f, addr, login, password, &k);
	penalty_record(&f->p, &k, 1, dn != NULL ? &u : NULL);
}

static void
succeeded(struct fixture *f, const char *addr, const char *login,
	  const char *password, const char *dn)
{
	struct policy_login_keys k;
	struct dir_user u;
	memset(&u, 0, sizeof(u));
	snprintf(u.dn, sizeof(u.dn), "%s", dn);
	keys(f, addr, login, password, &k);
	penalty_record(&f->p, &k, 0, &u);
}

static uint64_t
delay(struct fixture *f, const char *addr, const char *login,
      struct penalty_wait *w)
{
	struct policy_login_keys k;
	keys(f, addr, login, "any", &k);
	return penalty_delay(&f->p, &k, w);
}

static void
test_spraying_slows_the_address(void **state)
{
	struct fixture *f = *state;
	struct penalty_wait w;
	const char *a = "192.0.2.1";
	char login[32];
	for (int i = 0; i < 3; i++) {
		snprintf(login, sizeof(login), "user%d", i);
		failed(f, a, login, "Summer2024", NULL);
	}
	/* Three failures are allowed: a fresh login waits for nothing. */
	assert_int_equal(delay(f, a, "fresh", &w), 0);
	assert_int_equal(w.address_failures, 3);
	failed(f, a, "user3", "Summer2024", NULL);
	assert_int_equal(delay(f, a, "fresh", &w), 1000);
	assert_int_equal(w.address_delay, 1000);
	assert_int_equal(w.login_delay, 0);
	assert_int_equal(w.address_failures, 4);
	failed(f, a, "user4", "Summer2024", NULL);
	assert_int_equal(delay(f, a, "fresh", &w), 2000);
	/* A pair's failures count for it and for the address: the larger
	   delay applies. */
	failed(f, a, "user0", "w2", NULL);
	failed(f, a, "user0", "w3", NULL);
	failed(f, a, "user0", "w4", NULL);
	assert_int_equal(delay(f, a, "user0", &w), 16000);
	assert_int_equal(w.failures, 4);
	assert_int_equal(w.login_delay, 8000);
	assert_int_equal(w.address_failures, 8);
	assert_int_equal(w.address_delay, 16000);
	/* Another address is not concerned. */
	assert_int_equal(delay(f, "192.0.2.2", "fresh", &w), 0);
	assert_int_equal(w.address_failures, 0);
}

static void
test_repeats_and_successes(void **state)
{
	struct fixture *f = *state;
	struct penalty_wait w;
	const char *a = "192.0.2.3";
	/* A client retrying its stored wrong password counts once. */
	for (int i = 0; i < 10; i++)
		failed(f, a, "carol", "old", NULL);
	delay(f, a, "fresh", &w);
	assert_int_equal(w.address_failures, 1);
	failed(f, a, "dave", "x1", NULL);
	failed(f, a, "erin", "x1", NULL);
	failed(f, a, "frank", "x1", NULL);
	assert_int_equal(delay(f, a, "fresh", &w), 1000);
	/* A success forgets its pair, not the address's count. */
	succeeded(f, a, "carol", "right", "uid=carol,dc=test");
	assert_int_equal(delay(f, a, "carol", &w), 1000);
	assert_int_equal(w.failures, 0);
	assert_int_equal(w.address_failures, 4);
}

static void
test_address_count_off(void **state)
{
	struct fixture *f = *state;
	struct penalty_wait w;
	const char *err = NULL;
	const char *a = "192.0.2.4";
	assert_int_equal(
	    config_set(&f->cfg, "limits", "auth_address_failures", "0", &err),
	    0);
	char login[32];
	for (int i = 0; i < 20; i++) {
		snprintf(login, sizeof(login), "user%d", i);
		failed(f, a, login, "pw", NULL);
	}
	assert_int_equal(delay(f, a, "fresh", &w), 0);
	assert_int_equal(w.address_failures, 0);
	assert_int_equal(
	    config_set(&f->cfg, "limits", "auth_address_failures", "3", &err),
	    0);
}

static void
test_spellings_of_one_entry_share_a_count(void **state)
{
	struct fixture *f = *state;
	struct penalty_wait w;
	const char *a = "192.0.2.5";
	const char *dn = "uid=alice,ou=people,dc=test";
	const char *err = NULL;
	/* the address's own count aside */
	assert_int_equal(
	    config_set(&f->cfg, "limits", "auth_address_failures", "0", &err),
	    0);
	failed(f, a, "alice", "g1", dn);
	failed(f, a, "alice@example.test", "g2", dn);
	/* Each spelling has failed once; the entry twice. */
	assert_int_equal(delay(f, a, "alice", &w), 2000);
	assert_int_equal(w.failures, 2);
	assert_int_equal(delay(f, a, "alice@example.test", &w), 2000);
	/* A failure answered by the cache (no entry) charges the entry the
	   pair found before. */
	failed(f, a, "alice", "g3", NULL);
	assert_int_equal(delay(f, a, "alice@example.test", &w), 4000);
	assert_int_equal(w.failures, 3);
	/* The same password under another spelling is no new guess. */
	failed(f, a, "alice@example.test", "g3", dn);
	assert_int_equal(delay(f, a, "alice", &w), 4000);
	/* Two clients retrying their stored wrong passwords under the two
	   names count once each, however they alternate. */
	failed(f, a, "alice@example.test", "g2", dn);
	assert_int_equal(delay(f, a, "alice", &w), 8000);
	for (int i = 0; i < 3; i++) {
		failed(f, a, "alice", "g3", dn);
		failed(f, a, "alice@example.test", "g2", dn);
		failed(f, a, "alice", "g3", NULL);
	}
	assert_int_equal(delay(f, a, "alice", &w), 8000);
	assert_int_equal(w.failures, 4);
	/* Another entry from the address, and the entry from another
	   address, have counts of their own. */
	failed(f, a, "bob", "g1", "uid=bob,ou=people,dc=test");
	assert_int_equal(delay(f, a, "bob", &w), 1000);
	failed(f, "192.0.2.6", "alice", "g1", dn);
	assert_int_equal(delay(f, "192.0.2.6", "alice", &w), 1000);
	/* A success with either spelling forgets the entry's count. */
	succeeded(f, a, "alice", "right", dn);
	assert_int_equal(delay(f, a, "alice@example.test", &w), 4000);
	assert_int_equal(w.failures, 3); /* the pair's own */
	succeeded(f, a, "alice@example.test", "right", dn);
	assert_int_equal(delay(f, a, "alice", &w), 0);
	assert_int_equal(
	    config_set(&f->cfg, "limits", "auth_address_failures", "3", &err),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spraying_slows_the_address),
	    cmocka_unit_test(test_repeats_and_successes),
	    cmocka_unit_test(test_address_count_off),
	    cmocka_unit_test(test_spellings_of_one_entry_share_a_count),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
