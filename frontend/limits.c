/* limits.c - connection counts: overall, per client address, per user. */
#include "frontend/policy.h"

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

int
limits_conn_acquire(struct policy *p)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	if (p->connections < (uint64_t)p->cfg->limits_max_connections) {
		p->connections++;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
limits_conn_release(struct policy *p)
{
	pthread_mutex_lock(&p->lock);
	p->connections--;
	pthread_mutex_unlock(&p->lock);
}

static void
addr_key(const struct policy *p, const struct sockaddr *sa,
	 unsigned char *key)
{
	unsigned char net[16];
	size_t len = policy_client_net(p, sa, net);
	lru_key(&p->keyer, "address", key, net, len, NULL);
}

static void
user_key(const struct policy *p, const char *user, unsigned char *key)
{
	char lower[512];
	size_t n = strlen(user);
	if (n >= sizeof(lower))
		n = sizeof(lower) - 1;
	for (size_t i = 0; i < n; i++) {
		char ch = user[i];
		lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
	}
	lru_key(&p->keyer, "user", key, lower, n, NULL);
}

/* max_field: offsetof() the limit in struct config, read under the lock
 * (a reload swaps p->cfg). */
static int
count_acquire(struct policy *p, struct lru *t, const unsigned char *key,
	      size_t max_field)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	int64_t max = *(const int64_t *)((const char *)p->cfg + max_field);
	struct lru_entry *e = lru_put(t, key, 0);
	unsigned *n = e ? lru_payload(e) : NULL;
	if (n != NULL && *n < (uint64_t)max) {
		(*n)++;
		rc = 0;
	} else if (n != NULL && *n == 0) {
		lru_del(t, e);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void
count_release(struct policy *p, struct lru *t, const unsigned char *key)
{
	pthread_mutex_lock(&p->lock);
	struct lru_entry *e = lru_get(t, key, 0);
	if (e != NULL) {
		unsigned *n = lru_payload(e);
		if (*n <= 1)
			lru_del(t, e);
		else
			(*n)--;
	}
	pthread_mutex_unlock(&p->lock);
}

int
limits_rate_admit(struct policy *p, const struct sockaddr *sa, uint64_t now)
{
	unsigned char key[LRU_KEY_SIZE];
	addr_key(p, sa, key);
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	uint64_t rate = (uint64_t)p->cfg->limits_connection_rate_per_address;
	struct lru_entry *e = rate != 0 ? lru_put(&p->conn_rate, key, now)
					: NULL;
	if (e != NULL) {
		struct conn_rate *r = lru_payload(e);
		/* rate per minute: rate / 60 thousandths per ms */
		uint64_t gone = now > r->at ? (now - r->at) * rate / 60 : 0;
		r->level = gone < r->level ? r->level - gone : 0;
		r->at = now;
		if (r->level + 1000 > rate * 1000)
			rc = -1;
		else
			r->level += 1000;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int
limits_addr_acquire(struct policy *p, const struct sockaddr *sa)
{
	unsigned char key[LRU_KEY_SIZE];
	addr_key(p, sa, key);
	return count_acquire(p, &p->per_address, key,
			     offsetof(struct config,
				      limits_max_connections_per_address));
}

void
limits_addr_release(struct policy *p, const struct sockaddr *sa)
{
	unsigned char key[LRU_KEY_SIZE];
	addr_key(p, sa, key);
	count_release(p, &p->per_address, key);
}

int
limits_user_acquire(struct policy *p, const char *user)
{
	unsigned char key[LRU_KEY_SIZE];
	user_key(p, user, key);
	return count_acquire(p, &p->per_user, key,
			     offsetof(struct config,
				      limits_max_connections_per_user));
}

void
limits_user_release(struct policy *p, const char *user)
{
	unsigned char key[LRU_KEY_SIZE];
	user_key(p, user, key);
	count_release(p, &p->per_user, key);
}
