/* test_auth_cache.c - the authentication cache (frontend/auth_cache.c)
 * and its index by mailbox id, which a kick's Forget looks up: what it
 * removes, and that the index follows the entries the cache evicts,
 * replaces and deletes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
	if (config_set(&f.cfg, "ldap", "cache_size", "6", &err) < 0 ||
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
keys(struct fixture *f, const char *login, const char *password,
     struct policy_login_keys *k)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	policy_login_keys(&f->p, (const struct sockaddr *)&sin, login, password,
			  k);
}

/* Caches a success of login/password for the account id on backend. */
static void
ok(struct fixture *f, const char *login, const char *password, const char *id,
   const char *backend)
{
	struct policy_login_keys k;
	struct dir_user u;
	memset(&u, 0, sizeof(u));
	snprintf(u.uid, sizeof(u.uid), "%s", login);
	snprintf(u.mailbox_id, sizeof(u.mailbox_id), "%s", id);
	snprintf(u.mailbox_server, sizeof(u.mailbox_server), "%s", backend);
	snprintf(u.account_state, sizeof(u.account_state), "active");
	keys(f, login, password, &k);
	auth_cache_put(&f->p, &k, 1, &u);
}

/* What the cache answers for login/password: 1, 0 or -1. */
static int
get(struct fixture *f, const char *login, const char *password)
{
	struct policy_login_keys k;
	struct dir_user u;
	uint64_t at;
	keys(f, login, password, &k);
	return auth_cache_get(&f->p, &k, &u, &at);
}

static unsigned
forget(struct fixture *f, const char *a, const char *b)
{
	char *ids[2] = {(char *)(uintptr_t)a, (char *)(uintptr_t)b};
	return auth_cache_forget(&f->p, ids, b != NULL ? 2 : 1);
}

static void
test_forget_by_id(void **state)
{
	struct fixture *f = *state;
	ok(f, "ann", "pw1", "A1", "b1");
	ok(f, "ann@example.test", "pw1", "a1", "b1"); /* another spelling */
	ok(f, "bob", "pw", "b2", "b1");
	struct policy_login_keys k;
	keys(f, "cid", "wrong", &k);
	auth_cache_put(&f->p, &k, 0, NULL); /* a failure: no id */
	assert_int_equal(forget(f, "a1", NULL), 2);
	assert_int_equal(get(f, "ann", "pw1"), -1);
	assert_int_equal(get(f, "ann@example.test", "pw1"), -1);
	assert_int_equal(get(f, "bob", "pw"), 1);
	assert_int_equal(get(f, "cid", "wrong"), 0);
	assert_int_equal(forget(f, "a1", NULL), 0);
	/* one id twice, in two spellings: removed once */
	assert_int_equal(forget(f, "B2", "b2"), 1);
	assert_int_equal(get(f, "bob", "pw"), -1);
	assert_int_equal(forget(f, "nobody", NULL), 0);
}

static void
test_index_follows_the_cache(void **state)
{
	struct fixture *f = *state;
	/* a login cached again for another account (moved, or the name
	   given to another): the old id no longer finds it */
	ok(f, "dan", "pw", "d1", "b1");
	ok(f, "dan", "pw", "d2", "b2");
	assert_int_equal(forget(f, "d1", NULL), 0);
	assert_int_equal(get(f, "dan", "pw"), 1);
	/* a success replaced by a failure leaves the index */
	struct policy_login_keys k;
	keys(f, "dan", "pw", &k);
	auth_cache_put(&f->p, &k, 0, NULL);
	assert_int_equal(forget(f, "d2", NULL), 0);
	assert_int_equal(get(f, "dan", "pw"), 0);
	/* entries evicted by newer ones (cache_size 6) leave it too */
	char login[32], id[32];
	for (int i = 0; i < 20; i++) {
		snprintf(login, sizeof(login), "user%d", i);
		snprintf(id, sizeof(id), "e%d", i % 10);
		ok(f, login, "pw", id, "b1");
	}
	assert_int_equal(f->p.auth_cache.count, 6);
	unsigned total = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "E%d", i);
		total += forget(f, id, NULL);
	}
	assert_int_equal(total, 6);
	assert_int_equal(f->p.auth_cache.count, 0);
	for (int i = 0; i < 20; i++) {
		snprintf(login, sizeof(login), "user%d", i);
		assert_int_equal(get(f, login, "pw"), -1);
	}
	/* by backend: what the index holds goes with it */
	ok(f, "eve", "pw", "f1", "b1");
	ok(f, "fay", "pw", "f2", "b2");
	assert_int_equal(auth_cache_forget_backend(&f->p, "b1"), 1);
	assert_int_equal(forget(f, "f1", "f2"), 1);
	assert_int_equal(f->p.auth_cache.count, 0);
}

static void
test_inactive_account_not_cached(void **state)
{
	struct fixture *f = *state;
	struct policy_login_keys k;
	struct dir_user u;
	memset(&u, 0, sizeof(u));
	snprintf(u.mailbox_id, sizeof(u.mailbox_id), "g1");
	snprintf(u.account_state, sizeof(u.account_state), "disabled");
	keys(f, "gus", "pw", &k);
	auth_cache_put(&f->p, &k, 1, &u);
	assert_int_equal(get(f, "gus", "pw"), -1);
	assert_int_equal(forget(f, "g1", NULL), 0);
}

/* ldap.cache_size changed at a reload: the least recent entries go, and
 * the index by mailbox id still finds every one that stays. */
static void
test_resize_keeps_the_index(void **state)
{
	struct fixture *f = *state;
	char login[32], id[32];
	pthread_mutex_lock(&f->p.lock);
	auth_cache_resize(&f->p, 500);
	pthread_mutex_unlock(&f->p.lock);
	assert_int_equal(f->p.auth_cache.nbuckets, 512);
	for (int i = 0; i < 300; i++) {
		snprintf(login, sizeof(login), "user%d", i);
		snprintf(id, sizeof(id), "r%d", i);
		ok(f, login, "pw", id, "b1");
	}
	struct policy_login_keys k;
	keys(f, "bad", "pw", &k);
	auth_cache_put(&f->p, &k, 0, NULL); /* a failure: not indexed */
	assert_int_equal(f->p.auth_cache.count, 301);
	pthread_mutex_lock(&f->p.lock);
	auth_cache_resize(&f->p, 100); /* 128 buckets */
	pthread_mutex_unlock(&f->p.lock);
	assert_int_equal(f->p.auth_cache.count, 100);
	assert_int_equal(get(f, "bad", "pw"), 0);
	assert_int_equal(get(f, "user200", "pw"), -1); /* the least recent */
	unsigned total = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "R%d", i);
		total += forget(f, id, NULL);
	}
	assert_int_equal(total, 99);
	assert_int_equal(f->p.auth_cache.count, 1);
	/* grows again: still indexed */
	ok(f, "zed", "pw", "z1", "b1");
	pthread_mutex_lock(&f->p.lock);
	auth_cache_resize(&f->p, 5000);
	pthread_mutex_unlock(&f->p.lock);
	assert_int_equal(get(f, "zed", "pw"), 1);
	assert_int_equal(forget(f, "z1", NULL), 1);
	assert_int_equal(get(f, "bad", "pw"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_forget_by_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_follows_the_cache, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_inactive_account_not_cached,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resize_keeps_the_index, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
