/* auth_cache.c - authentication results, keyed by a keyed hash of login
 * and password.  Successes live ldap.cache_ttl, failures
 * ldap.cache_negative_ttl; temporary failures are never cached. */
#include "frontend/auth_cache.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

#include "frontend/policy.h"

/* -- the index by mailbox id ----------------------------------------------*/

/* The chain of mailbox id (compared without case: FNV-1a of its lower
 * case). */
static struct lru_entry **
auth_ids_chain(struct policy *p, const char *id)
{
	uint64_t h = 14695981039346656037u;
	for (; *id != '\0'; id++) {
		h ^= (unsigned char)tolower((unsigned char)*id);
		h *= 1099511628211u;
	}
	return &p->auth_ids[h & (p->auth_cache.nbuckets - 1)];
}

static void
auth_ids_unlink(struct auth_cache_entry *ce)
{
	if (ce->id_pprev == NULL)
		return;
	*ce->id_pprev = ce->id_next;
	if (ce->id_next != NULL) {
		struct auth_cache_entry *n = lru_payload(ce->id_next);
		n->id_pprev = ce->id_pprev;
	}
	ce->id_next = NULL;
	ce->id_pprev = NULL;
}

static void
auth_ids_link(struct policy *p, struct lru_entry *e)
{
	struct auth_cache_entry *ce = lru_payload(e);
	struct lru_entry **chain = auth_ids_chain(p, ce->user.mailbox_id);
	ce->id_next = *chain;
	ce->id_pprev = chain;
	if (*chain != NULL) {
		struct auth_cache_entry *n = lru_payload(*chain);
		n->id_pprev = &ce->id_next;
	}
	*chain = e;
}

static void
auth_ids_on_remove(void *arg, struct lru_entry *e)
{
	(void)arg;
	auth_ids_unlink(lru_payload(e));
}

void
auth_cache_init(struct policy *p)
{
	p->auth_ids = calloc(p->auth_cache.nbuckets, sizeof(*p->auth_ids));
	if (p->auth_ids == NULL)
		abort();
	p->auth_cache.on_remove = auth_ids_on_remove;
	p->auth_cache.on_remove_arg = p;
}

void
auth_cache_resize(struct policy *p, size_t max)
{
	/* (the caller holds p->lock) */
	if (!lru_resize(&p->auth_cache, max))
		return;
	free(p->auth_ids);
	p->auth_ids = calloc(p->auth_cache.nbuckets, sizeof(*p->auth_ids));
	if (p->auth_ids == NULL)
		abort();
	for (struct lru_entry *e = p->auth_cache.head; e != NULL; e = e->next) {
		struct auth_cache_entry *ce = lru_payload(e);
		if (ce->id_pprev == NULL)
			continue; /* a failure, or no mailbox id */
		ce->id_pprev = NULL;
		ce->id_next = NULL;
		auth_ids_link(p, e);
	}
}

void
auth_cache_free(struct policy *p)
{
	free(p->auth_ids);
	p->auth_ids = NULL;
}

/* -- the cache ------------------------------------------------------------*/

int
auth_cache_get(struct policy *p, const struct policy_login_keys *k,
	       struct dir_user *user_r, uint64_t *at_r)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	struct lru_entry *e = lru_get(&p->auth_cache, k->cache, lru_now());
	if (e != NULL) {
		struct auth_cache_entry *ce = lru_payload(e);
		rc = ce->ok;
		if (ce->ok)
			*user_r = ce->user;
		*at_r = ce->at;
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
		auth_ids_unlink(ce);
		ce->ok = ok;
		ce->at = now;
		if (ok) {
			ce->user = *user;
			if (user->mailbox_id[0] != '\0')
				auth_ids_link(p, e);
		}
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
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcasecmp(ids[i - 1], ids[i]) == 0)
			continue;
		struct lru_entry *e = *auth_ids_chain(p, ids[i]), *next;
		for (; e != NULL; e = next) {
			struct auth_cache_entry *ce = lru_payload(e);
			next = ce->id_next;
			if (strcasecmp(ce->user.mailbox_id, ids[i]) == 0) {
				lru_del(&p->auth_cache, e);
				count++;
			}
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
