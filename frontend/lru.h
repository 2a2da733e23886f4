/* lru.h - a bounded table of fixed-size entries keyed by a keyed hash.
 *
 * Keys are 32-byte HMAC-SHA256 values computed with lru_key() under a
 * per-process random secret, so the table never holds the text it is
 * keyed on (a password, a login name) and a client cannot choose keys
 * that collide.  When the table is full the least recently used entry
 * goes.  Entries carry an expiry time (ms, monotonic; 0: none) that
 * lru_get() honours.
 *
 * Not thread-safe: the owner locks (struct fe_shared's mutex).
 */
#ifndef PORTICO_LRU_H
#define PORTICO_LRU_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define LRU_KEY_SIZE 32

struct lru_entry {
	unsigned char key[LRU_KEY_SIZE];
	uint64_t expires;
	struct lru_entry *hnext;       /* hash chain */
	struct lru_entry *prev, *next; /* recency, most recent first */
	/* payload follows: lru_payload() */
};

struct lru {
	struct lru_entry **buckets;
	size_t nbuckets;
	size_t count, max;
	size_t payload;
	struct lru_entry *head, *tail;
	/* Called with each entry about to leave the table (evicted,
	   expired, deleted, freed), before its payload is wiped: the owner
	   keeps an index of its own in step (optional; set after
	   lru_init()). */
	void (*on_remove)(void *arg, struct lru_entry *e);
	void *on_remove_arg;
};

/* max: most entries kept (0: the table stays empty); payload: bytes of
 * the value stored with each key (zeroed on insert). */
void lru_init(struct lru *t, size_t max, size_t payload);
/* A new max: the least recent entries beyond it go (on_remove is called
 * for each), and the buckets follow the new size.  1 when the buckets
 * changed (an owner's index by bucket count must follow), else 0. */
int lru_resize(struct lru *t, size_t max);
/* Frees every entry (payloads are wiped first). */
void lru_free(struct lru *t);
/* The live entry for key, made most recent; NULL when absent or
 * expired (an expired entry is removed). now: ms. */
struct lru_entry *lru_get(struct lru *t, const unsigned char *key,
			  uint64_t now);
/* The entry for key, created (payload zeroed, expires 0) if absent,
 * evicting the least recent one if the table is full.  NULL only when
 * max is 0. */
struct lru_entry *lru_put(struct lru *t, const unsigned char *key,
			  uint64_t now);
void lru_del(struct lru *t, struct lru_entry *e);

static inline void *
lru_payload(struct lru_entry *e)
{
	return e + 1;
}

/* The secret of lru_key(), prepared once: an HMAC-SHA256 context with
 * the key set, which every lru_key() copies (no algorithm lookup and no
 * key schedule per key).  Read-only after lru_keyer_init(): every event
 * loop may use it at once. */
struct lru_keyer {
	EVP_MAC_CTX *base;
};

/* -1 if OpenSSL cannot provide HMAC-SHA256.  The caller may wipe secret
 * afterwards. */
int lru_keyer_init(struct lru_keyer *k, const unsigned char *secret,
		   size_t secret_len);
void lru_keyer_free(struct lru_keyer *k);

/* HMAC-SHA256 under the keyer's secret over the domain name and each part
 * (length prefixed, so ("ab","c") and ("a","bc") differ).  Parts end with
 * a NULL pointer: lru_key(k, "auth", out, p1, len1, p2, len2, NULL). */
void lru_key(const struct lru_keyer *k, const char *domain,
	     unsigned char *out, ...);

/* Monotonic milliseconds (shared by every loop). */
uint64_t lru_now(void);

#endif
