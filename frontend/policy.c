/* policy.c - the frontend's shared state: setup and keys. */
#include "frontend/policy.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "frontend/auth_cache.h"
#include "frontend/penalty.h"

/* The configuration's network lists, or NULL with *error_r. */
static struct policy_nets *
nets_parse(const struct config *cfg, const char **error_r)
{
	struct policy_nets *n = calloc(1, sizeof(*n));
	if (n == NULL)
		abort();
	if (cidr_list_parse(cfg->frontend_trusted_networks, &n->trusted,
			    error_r) < 0 ||
	    cidr_list_parse(cfg->frontend_proxy_networks, &n->proxy, error_r) <
		0 ||
	    cidr_list_parse(cfg->lmtp_trusted_networks, &n->lmtp, error_r) <
		0 ||
	    cidr_list_parse(cfg->http_metrics_networks, &n->metrics, error_r) <
		0) {
		free(n);
		return NULL;
	}
	return n;
}

static const struct policy_nets *
nets_now(const struct policy *p)
{
	return __atomic_load_n(&p->nets, __ATOMIC_ACQUIRE);
}

int
policy_create(struct policy *p, const struct config *cfg,
	      const char **error_r)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->ipv6_prefix = (unsigned)cfg->limits_ipv6_prefix;
	if ((p->nets = nets_parse(cfg, error_r)) == NULL)
		return -1;
	unsigned char secret[32];
	if (RAND_bytes(secret, sizeof(secret)) != 1) {
		*error_r = "no random bytes for the policy key";
		return -1;
	}
	int rc = lru_keyer_init(&p->keyer, secret, sizeof(secret));
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc < 0) {
		*error_r = "no HMAC-SHA256 for the policy key";
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	size_t conns = (size_t)cfg->limits_max_connections;
	lru_init(&p->per_address, conns, sizeof(unsigned));
	lru_init(&p->conn_rate, conns, sizeof(struct conn_rate));
	lru_init(&p->per_user, conns, sizeof(unsigned));
	lru_init(&p->penalty, (size_t)cfg->limits_auth_penalty_entries,
		 sizeof(struct penalty_entry));
	lru_init(&p->penalty_address, (size_t)cfg->limits_auth_penalty_entries,
		 sizeof(unsigned));
	lru_init(&p->auth_cache, (size_t)cfg->ldap_cache_size,
		 sizeof(struct auth_cache_entry));
	auth_cache_init(p);
	return 0;
}

void
policy_free(struct policy *p)
{
	lru_free(&p->per_address);
	lru_free(&p->conn_rate);
	lru_free(&p->per_user);
	lru_free(&p->penalty);
	lru_free(&p->penalty_address);
	lru_free(&p->auth_cache);
	auth_cache_free(p);
	while (p->backends != NULL) {
		struct policy_backend *e = p->backends;
		p->backends = e->next;
		free(e);
	}
	while (p->nets != NULL) {
		struct policy_nets *n = p->nets;
		p->nets = n->older;
		free(n);
	}
	pthread_mutex_destroy(&p->lock);
	lru_keyer_free(&p->keyer);
}

void
policy_reload(struct policy *p, const struct config *cfg)
{
	pthread_mutex_lock(&p->lock);
	p->cfg = cfg;
	/* Connection counts are never evicted by a lower limit. */
	size_t conns = (size_t)cfg->limits_max_connections;
	if (conns > p->per_address.max)
		lru_resize(&p->per_address, conns);
	if (conns > p->conn_rate.max)
		lru_resize(&p->conn_rate, conns);
	if (conns > p->per_user.max)
		lru_resize(&p->per_user, conns);
	/* The caches and the remembered failures follow their sizes, the
	   least recent entries going first. */
	if ((size_t)cfg->ldap_cache_size != p->auth_cache.max)
		auth_cache_resize(p, (size_t)cfg->ldap_cache_size);
	size_t pen = (size_t)cfg->limits_auth_penalty_entries;
	if (pen != p->penalty.max) {
		lru_resize(&p->penalty, pen);
		lru_resize(&p->penalty_address, pen);
	}
	/* (the lists were checked with the file: frontend_config_check) */
	const char *err;
	struct policy_nets *n = nets_parse(cfg, &err);
	if (n != NULL) {
		n->older = p->nets;
		__atomic_store_n(&p->nets, n, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&p->lock);
}

void
policy_backend_put(struct policy *p, const struct dir_backend *b)
{
	pthread_mutex_lock(&p->lock);
	struct policy_backend *e = p->backends;
	while (e != NULL && strcmp(e->b.id, b->id) != 0)
		e = e->next;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			abort();
		e->next = p->backends;
		p->backends = e;
	}
	e->b = *b;
	e->at = lru_now();
	pthread_mutex_unlock(&p->lock);
}

int
policy_backend_get(struct policy *p, const char *id, struct dir_backend *b,
		   uint64_t *age_r)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	for (struct policy_backend *e = p->backends; e != NULL; e = e->next) {
		if (strcmp(e->b.id, id) == 0) {
			*b = e->b;
			uint64_t now = lru_now();
			*age_r = now > e->at ? now - e->at : 0;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int
policy_trusted(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(&nets_now(p)->trusted, sa);
}

int
policy_proxy_allowed(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(&nets_now(p)->proxy, sa);
}

int
policy_lmtp_allowed(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(&nets_now(p)->lmtp, sa);
}

int
policy_metrics_allowed(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(&nets_now(p)->metrics, sa);
}

size_t
policy_client_net(const struct policy *p, const struct sockaddr *sa,
		  unsigned char *out)
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	const struct in6_addr *a =
	    &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(out, &a->s6_addr[12], 4);
		return 4;
	}
	memcpy(out, a->s6_addr, 16);
	unsigned bits = p->ipv6_prefix < 128 ? p->ipv6_prefix : 128;
	for (unsigned i = 0; i < 16; i++) {
		if (bits >= 8 * (i + 1))
			continue;
		unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
		out[i] &= (unsigned char)(0xff00u >> keep);
	}
	return 16;
}

void
policy_login_keys(const struct policy *p, const struct sockaddr *sa,
		  const char *login, const char *password,
		  struct policy_login_keys *keys)
{
	char lower[256];
	size_t n = strlen(login);
	if (n >= sizeof(lower))
		n = sizeof(lower) - 1;
	for (size_t i = 0; i < n; i++) {
		char ch = login[i];
		lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
	}
	lower[n] = '\0';
	unsigned char addr[16];
	size_t alen = policy_client_net(p, sa, addr);
	size_t plen = strlen(password);
	lru_key(&p->keyer, "auth", keys->cache, lower, n,
		password, plen, NULL);
	lru_key(&p->keyer, "penalty", keys->penalty, addr,
		alen, lower, n, NULL);
	lru_key(&p->keyer, "password", keys->password,
		lower, n, password, plen, NULL);
	lru_key(&p->keyer, "penalty-address", keys->address, addr, alen, NULL);
	lru_key(&p->keyer, "guess", keys->guess, password, plen, NULL);
	OPENSSL_cleanse(lower, sizeof(lower));
}
