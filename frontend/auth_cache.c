/* auth_cache.c - authentication results, keyed by a keyed hash of login
 * and password.  Successes live ldap.cache_ttl, failures
 * ldap.cache_negative_ttl; temporary failures are never cached. */
#include "frontend/auth_cache.h"

#include <stdlib.h>
#include <strings.h>

#include "frontend/policy.h"

int
auth_cache_get(struct policy *p, const struct policy_login_keys *k,
	       struct dir_user *user_r)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	struct lru_entry *e = lru_get(&p->auth_cache, k->cache, lru_now());
	if (e != NULL) {
		struct auth_cache_entry *ce = lru_payload(e);
		rc = ce->ok;
		if (ce->ok)
			*user_r = ce->user;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
auth_cache_put(struct policy *p, const struct policy_login_keys *k, int ok,
	       const struct dir_user *user)
{
	/* An account that is not active (disabled, moving) is asked of LDAP
	   at each login: `portico-admin enable` applies at once. */
	if (ok && user->account_state[0] != '\0' &&
	    strcasecmp(user->account_state, "active") != 0)
		return;
	uint64_t now = lru_now();
	pthread_mutex_lock(&p->lock);
	const struct config *cfg = p->cfg;
	int64_t ttl = ok ? cfg->ldap_cache_ttl : cfg->ldap_cache_negative_ttl;
	if (ttl <= 0) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	struct lru_entry *e = lru_put(&p->auth_cache, k->cache, now);
	if (e != NULL) {
		struct auth_cache_entry *ce = lru_payload(e);
		ce->ok = ok;
		if (ok)
			ce->user = *user;
		e->expires = now + (uint64_t)ttl * 1000;
	}
	pthread_mutex_unlock(&p->lock);
}

int
auth_cache_id_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

unsigned
auth_cache_forget(struct policy *p, char **ids, size_t n)
{
	unsigned count = 0;
	if (n == 0)
		return 0;
	qsort(ids, n, sizeof(*ids), auth_cache_id_cmp);
	pthread_mutex_lock(&p->lock);
	for (struct lru_entry *e = p->auth_cache.head, *next; e != NULL;
	     e = next) {
		next = e->next;
		struct auth_cache_entry *ce = lru_payload(e);
		const char *id = ce->user.mailbox_id;
		if (ce->ok &&
		    bsearch(&id, ids, n, sizeof(*ids), auth_cache_id_cmp)) {
			lru_del(&p->auth_cache, e);
			count++;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return count;
}

unsigned
auth_cache_forget_backend(struct policy *p, const char *backend)
{
	unsigned count = 0;
	pthread_mutex_lock(&p->lock);
	for (struct lru_entry *e = p->auth_cache.head, *next; e != NULL;
	     e = next) {
		next = e->next;
		struct auth_cache_entry *ce = lru_payload(e);
		if (ce->ok &&
		    strcasecmp(ce->user.mailbox_server, backend) == 0) {
			lru_del(&p->auth_cache, e);
			count++;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return count;
}
