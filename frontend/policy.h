/* policy.h - what every event loop of a frontend shares: connection
 * counts and limits, the authentication penalties and the authentication
 * cache, under one mutex.
 *
 * Tables are keyed by keyed hashes (lru.h) under a secret drawn at
 * startup: neither login names, addresses nor passwords are kept in
 * clear, and the cache can only answer for the exact login and password
 * it saw.  Times are monotonic milliseconds (lru_now()).
 */
#ifndef PORTICO_POLICY_H
#define PORTICO_POLICY_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/config.h"
#include "frontend/directory.h"
#include "frontend/lru.h"

/* New connections of an address (limits.connection_rate_per_address): a
 * leaky bucket of thousandths of a connection, emptied at the rate. */
struct conn_rate {
	uint64_t level; /* 1000 per connection */
	uint64_t at;    /* lru_now() of the last one */
};

struct policy {
	pthread_mutex_t lock;
	const struct config *cfg;    /* under lock: a reload swaps it */
	struct lru_keyer keyer;     /* the secret, drawn at startup */
	/* The network lists of the newest configuration, read without a
	   lock (an atomic pointer); a reload puts new ones in front and
	   the older stay, for readers still on them, until exit. */
	struct policy_nets {
		struct cidr_list trusted; /* frontend.trusted_networks */
		struct cidr_list proxy;   /* frontend.proxy_networks */
		struct cidr_list lmtp;    /* lmtp.trusted_networks */
		struct cidr_list metrics; /* http.metrics_networks */
		struct policy_nets *older;
	} * nets;
	unsigned ipv6_prefix;        /* limits.ipv6_prefix (fixed) */
	uint64_t connections;
	struct lru per_address;      /* unsigned count */
	struct lru conn_rate;        /* struct conn_rate, per address */
	struct lru per_user;         /* unsigned count */
	struct lru penalty;          /* struct penalty_entry */
	struct lru penalty_address;  /* unsigned failures */
	struct lru auth_cache;       /* struct auth_cache_entry */
	/* its successes by mailbox id (auth_cache.c): chains of entries,
	   as many as auth_cache has buckets */
	struct lru_entry **auth_ids;
	struct policy_backend *backends; /* the backends' entries */
};

/* A backend's LDAP entry as one loop last read it: every loop of the
 * process may use it while fresh (frontend.backend_cache_ttl), so one
 * lookup serves them all, and a loop that has not read it yet can still
 * route a login from the authentication cache while LDAP is away. */
struct policy_backend {
	struct dir_backend b;
	uint64_t at;                 /* lru_now() when read */
	struct policy_backend *next;
};

/* Keys computed outside the lock, once per login. */
struct policy_login_keys {
	unsigned char cache[LRU_KEY_SIZE];   /* login + password */
	unsigned char penalty[LRU_KEY_SIZE]; /* address + login */
	unsigned char password[LRU_KEY_SIZE];/* password (penalty repeats) */
	unsigned char address[LRU_KEY_SIZE]; /* address */
	unsigned char guess[LRU_KEY_SIZE];   /* password alone (entry
						repeats) */
};

/* policy.c */
int policy_create(struct policy *p, const struct config *cfg,
		  const char **error_r);
void policy_free(struct policy *p);
/* SIGHUP: limits, penalty and cache times from cfg from now on (cfg must
 * outlive the policy; network lists and table sizes stay). */
void policy_reload(struct policy *p, const struct config *cfg);
int policy_trusted(const struct policy *p, const struct sockaddr *sa);
/* http.metrics_networks: who may GET /metrics, /health, /sessions. */
int policy_metrics_allowed(const struct policy *p, const struct sockaddr *sa);
int policy_proxy_allowed(const struct policy *p, const struct sockaddr *sa);
int policy_lmtp_allowed(const struct policy *p, const struct sockaddr *sa);
/* The client's network as the counts of addresses see it, in out (16
 * bytes): the 4 bytes of an IPv4 address (an IPv4-mapped IPv6 one too),
 * the 16 of an IPv6 address with the bits past limits.ipv6_prefix
 * cleared.  Returns its length, 0 for other families. */
size_t policy_client_net(const struct policy *p, const struct sockaddr *sa,
			 unsigned char *out);
/* Fills keys for login (compared case-insensitively) and password from
 * the client address sa. */
void policy_login_keys(const struct policy *p, const struct sockaddr *sa,
		       const char *login, const char *password,
		       struct policy_login_keys *keys);

/* The entry read for backend b->id (replacing the one before). */
void policy_backend_put(struct policy *p, const struct dir_backend *b);
/* 0 with *b and its age in ms if an entry for id was read, else -1. */
int policy_backend_get(struct policy *p, const char *id,
		       struct dir_backend *b, uint64_t *age_r);

/* limits.c: each acquire returns 0 and counts, or -1 when the limit is
 * reached (nothing counted).  Releases undo one acquire. */
int limits_conn_acquire(struct policy *p);
void limits_conn_release(struct policy *p);
int limits_addr_acquire(struct policy *p, const struct sockaddr *sa);
/* A new connection from sa within limits.connection_rate_per_address:
 * 0 (counted), or -1.  now: lru_now(). */
int limits_rate_admit(struct policy *p, const struct sockaddr *sa,
		      uint64_t now);
void limits_addr_release(struct policy *p, const struct sockaddr *sa);
/* user: the account's DN (aliases count as one account). */
int limits_user_acquire(struct policy *p, const char *user);
void limits_user_release(struct policy *p, const char *user);

/* penalty.c: what a login waits before its credentials are checked. */
struct penalty_wait {
	unsigned failures;         /* of the pair, or of its entry if more */
	unsigned address_failures; /* counted from the client address */
	uint64_t login_delay;      /* ms, for failures */
	uint64_t address_delay;    /* ms, for address_failures beyond
				      limits.auth_address_failures */
};
/* The delay (ms) to apply before checking credentials: the larger of
 * the two in *w_r, which tells what is behind it. */
uint64_t penalty_delay(struct policy *p, const struct policy_login_keys *k,
		       struct penalty_wait *w_r);
/* Records the outcome: a failure with a password not just tried counts
 * once more for the pair and the address, and for the directory entry
 * u (the one the login found, NULL if none: unknown user, or an answer
 * from the authentication cache) or else the entry the pair found
 * before; a success forgets the pair and the entry u. */
void penalty_record(struct policy *p, const struct policy_login_keys *k,
		    int failed, const struct dir_user *u);

/* auth_cache.c: 1 with *user_r filled (success), 0 (failure), -1 (not
 * cached). */
int auth_cache_get(struct policy *p, const struct policy_login_keys *k,
		   struct dir_user *user_r, uint64_t *at_r);
/* The index of auth_cache by mailbox id (policy_create(),
 * policy_free()). */
void auth_cache_init(struct policy *p);
void auth_cache_free(struct policy *p);
/* ldap.cache_size changed at a reload: the least recent entries beyond
 * max go, and the index follows (p->lock held). */
void auth_cache_resize(struct policy *p, size_t max);
/* Removes every cached success of the accounts with these
 * porticoMailboxIds (a link's Forget frames: portico-admin kick); returns
 * how many.  Each id is looked up in the index by mailbox id: the work is
 * that of the entries removed, not of the whole cache (ids is sorted in
 * place). */
unsigned auth_cache_forget(struct policy *p, char **ids, size_t n);
/* The order of such a list (char * ids, case-insensitive), for qsort()
 * and bsearch(). */
int auth_cache_id_cmp(const void *a, const void *b);
/* Removes every cached success of an account on this backend (more
 * Forget frames before a link's Hello than are kept); returns how many. */
unsigned auth_cache_forget_backend(struct policy *p, const char *backend);
/* Caches a success (ok, with user) or a failure; a success of an account
 * whose porticoAccountState is not active is not cached. */
void auth_cache_put(struct policy *p, const struct policy_login_keys *k,
		    int ok, const struct dir_user *user);

#endif
