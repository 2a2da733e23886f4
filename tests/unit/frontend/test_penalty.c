/* test_penalty.c - authentication penalties per (address, login), per
 * (address, directory entry) and per address (frontend/penalty.c), and
 * what a client address is to them and to the connection counts (an
 * IPv6 network, limits.ipv6_prefix). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
	    config_set(&f.cfg, "limits", "max_connections_per_address", "2",
		       &err) < 0 ||
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

/* addr as a socket address: IPv6 if it has a colon. */
static const struct sockaddr *
sockaddr_of(const char *addr, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
				 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

static void
keys(struct fixture *f, const char *addr, const char *login,
     const char *password, struct policy_login_keys *k)
{
	struct sockaddr_storage ss;
	policy_login_keys(&f->p, sockaddr_of(addr, &ss), login, password, k);
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

static void
test_client_net(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage ss;
	unsigned char out[16];
	static const unsigned char v4[] = {192, 0, 2, 7};
	/* IPv4, and IPv4-mapped IPv6, one by one */
	assert_int_equal(
	    policy_client_net(&f->p, sockaddr_of("192.0.2.7", &ss), out), 4);
	assert_memory_equal(out, v4, 4);
	assert_int_equal(
	    policy_client_net(&f->p, sockaddr_of("::ffff:192.0.2.7", &ss), out),
	    4);
	assert_memory_equal(out, v4, 4);
	/* IPv6: the first limits.ipv6_prefix bits (64 by default) */
	assert_int_equal(f->p.ipv6_prefix, 64);
	static const struct {
		unsigned prefix;
		const char *addr, *net;
	} cases[] = {
	    {64, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
	    {64, "2001:db8:1:2::", "2001:db8:1:2::"},
	    {48, "2001:db8:1:2:3:4:5:6", "2001:db8:1::"},
	    {56, "2001:db8:1:2ff:3:4:5:6", "2001:db8:1:200::"},
	    {60, "2001:db8:1:2ff:3:4:5:6", "2001:db8:1:2f0::"},
	    {127, "2001:db8::ff", "2001:db8::fe"},
	    {128, "2001:db8::ff", "2001:db8::ff"},
	    {16, "2001:db8::ff", "2001::"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct in6_addr want;
		f->p.ipv6_prefix = cases[i].prefix;
		assert_int_equal(
		    policy_client_net(&f->p, sockaddr_of(cases[i].addr, &ss),
				      out),
		    16);
		assert_int_equal(inet_pton(AF_INET6, cases[i].net, &want), 1);
		assert_memory_equal(out, want.s6_addr, 16);
	}
	f->p.ipv6_prefix = 64;
}

static void
test_ipv6_network_is_one_client(void **state)
{
	struct fixture *f = *state;
	struct penalty_wait w;
	struct sockaddr_storage ss;
	/* A sprayer drawing a new address of its /64 for every guess is
	   still one address to the count. */
	failed(f, "2001:db8:5:6::1", "user0", "Summer2024", NULL);
	failed(f, "2001:db8:5:6::2", "user1", "Summer2024", NULL);
	failed(f, "2001:db8:5:6:a:b:c:d", "user2", "Summer2024", NULL);
	failed(f, "2001:db8:5:6:ffff::9", "user3", "Summer2024", NULL);
	assert_int_equal(delay(f, "2001:db8:5:6:1::1", "fresh", &w), 1000);
	assert_int_equal(w.address_failures, 4);
	/* and so for its pairs: a login tried again from another address
	   of the network waits for its earlier failure */
	assert_int_equal(delay(f, "2001:db8:5:6:2::2", "user0", &w), 1000);
	assert_int_equal(w.failures, 1);
	/* The next /64 is another client. */
	assert_int_equal(delay(f, "2001:db8:5:7::1", "fresh", &w), 0);
	assert_int_equal(w.address_failures, 0);
	/* An IPv4 client seen through an IPv6 socket is the IPv4 client. */
	for (int i = 0; i < 4; i++) {
		char login[32];
		snprintf(login, sizeof(login), "v4user%d", i);
		failed(f, "::ffff:192.0.2.30", login, "Summer2024", NULL);
	}
	assert_int_equal(delay(f, "192.0.2.30", "fresh", &w), 1000);
	assert_int_equal(delay(f, "192.0.2.31", "fresh", &w), 0);
	/* Connections per address count the network too (2 here). */
	assert_int_equal(
	    limits_addr_acquire(&f->p, sockaddr_of("2001:db8:9:9::1", &ss)), 0);
	assert_int_equal(
	    limits_addr_acquire(&f->p, sockaddr_of("2001:db8:9:9::2", &ss)), 0);
	assert_int_equal(
	    limits_addr_acquire(&f->p, sockaddr_of("2001:db8:9:9::3", &ss)),
	    -1);
	assert_int_equal(
	    limits_addr_acquire(&f->p, sockaddr_of("2001:db8:9:a::3", &ss)), 0);
	limits_addr_release(&f->p, sockaddr_of("2001:db8:9:9::1", &ss));
	assert_int_equal(
	    limits_addr_acquire(&f->p, sockaddr_of("2001:db8:9:9::3", &ss)), 0);
}

static int
admit(struct fixture *f, const char *addr, uint64_t now)
{
	struct sockaddr_storage ss;
	return limits_rate_admit(&f->p, sockaddr_of(addr, &ss), now);
}

static void
test_connection_rate(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	assert_int_equal(config_set(&f->cfg, "limits",
				    "connection_rate_per_address", "3", &err),
			 0);
	uint64_t t = 1000000;
	/* three at once, then one per 20 s (3 a minute) */
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit(f, "198.51.100.1", t), 0);
	assert_int_equal(admit(f, "198.51.100.1", t), -1);
	assert_int_equal(admit(f, "198.51.100.1", t + 19000), -1);
	assert_int_equal(admit(f, "198.51.100.1", t + 20000), 0);
	assert_int_equal(admit(f, "198.51.100.1", t + 20000), -1);
	/* refused attempts do not add: 40 s later, two fit */
	assert_int_equal(admit(f, "198.51.100.1", t + 60000), 0);
	assert_int_equal(admit(f, "198.51.100.1", t + 60000), 0);
	assert_int_equal(admit(f, "198.51.100.1", t + 60000), -1);
	/* a minute of quiet: the whole burst again, no more */
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit(f, "198.51.100.1", t + 600000), 0);
	assert_int_equal(admit(f, "198.51.100.1", t + 600000), -1);
	/* another address is not concerned; an IPv6 network is one */
	assert_int_equal(admit(f, "198.51.100.2", t), 0);
	for (int i = 0; i < 3; i++) {
		char a[64];
		snprintf(a, sizeof(a), "2001:db8:77:1::%d", i + 1);
		assert_int_equal(admit(f, a, t), 0);
	}
	assert_int_equal(admit(f, "2001:db8:77:1:ffff::1", t), -1);
	assert_int_equal(admit(f, "2001:db8:77:2::1", t), 0);
	/* 0: no limit */
	assert_int_equal(config_set(&f->cfg, "limits",
				    "connection_rate_per_address", "0", &err),
			 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(admit(f, "198.51.100.1", t + 600000), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spraying_slows_the_address),
	    cmocka_unit_test(test_client_net),
	    cmocka_unit_test(test_ipv6_network_is_one_client),
	    cmocka_unit_test(test_connection_rate),
	    cmocka_unit_test(test_repeats_and_successes),
	    cmocka_unit_test(test_address_count_off),
	    cmocka_unit_test(test_spellings_of_one_entry_share_a_count),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
