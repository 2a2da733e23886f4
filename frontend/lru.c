/* lru.c - bounded keyed tables for the frontend's shared state. */
#include "frontend/lru.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <uv.h>

/* Buckets for max entries: a power of two, at least 64. */
static size_t
lru_nbuckets(size_t max)
{
	size_t n = 64;
	while (n < max && n < ((size_t)1 << 24))
		n *= 2;
	return n;
}

void
lru_init(struct lru *t, size_t max, size_t payload)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	t->payload = payload;
	t->nbuckets = lru_nbuckets(max);
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL)
		abort();
}

static size_t
lru_bucket(const struct lru *t, const unsigned char *key)
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (t->nbuckets - 1));
}

static void
lru_unlink(struct lru *t, struct lru_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_front(struct lru *t, struct lru_entry *e)
{
	e->prev = NULL;
	e->next = t->head;
	if (t->head != NULL)
		t->head->prev = e;
	t->head = e;
	if (t->tail == NULL)
		t->tail = e;
}

void
lru_del(struct lru *t, struct lru_entry *e)
{
	if (t->on_remove != NULL)
		t->on_remove(t->on_remove_arg, e);
	struct lru_entry **pp = &t->buckets[lru_bucket(t, e->key)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e)
		*pp = e->hnext;
	lru_unlink(t, e);
	t->count--;
	OPENSSL_cleanse(e, sizeof(*e) + t->payload);
	free(e);
}

int
lru_resize(struct lru *t, size_t max)
{
	t->max = max;
	while (t->count > max && t->tail != NULL)
		lru_del(t, t->tail);
	size_t n = lru_nbuckets(max);
	if (n == t->nbuckets)
		return 0;
	struct lru_entry **b = calloc(n, sizeof(*b));
	if (b == NULL)
		abort();
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	for (struct lru_entry *e = t->head; e != NULL; e = e->next) {
		size_t i = lru_bucket(t, e->key);
		e->hnext = b[i];
		b[i] = e;
	}
	return 1;
}

void
lru_free(struct lru *t)
{
	while (t->head != NULL)
		lru_del(t, t->head);
	free(t->buckets);
	t->buckets = NULL;
}

struct lru_entry *
lru_get(struct lru *t, const unsigned char *key, uint64_t now)
{
	if (t->buckets == NULL)
		return NULL;
	struct lru_entry *e = t->buckets[lru_bucket(t, key)];
	while (e != NULL && memcmp(e->key, key, LRU_KEY_SIZE) != 0)
		e = e->hnext;
	if (e == NULL)
		return NULL;
	if (e->expires != 0 && now >= e->expires) {
		lru_del(t, e);
		return NULL;
	}
	lru_unlink(t, e);
	lru_push_front(t, e);
	return e;
}

struct lru_entry *
lru_put(struct lru *t, const unsigned char *key, uint64_t now)
{
	if (t->max == 0)
		return NULL;
	struct lru_entry *e = lru_get(t, key, now);
	if (e != NULL)
		return e;
	while (t->count >= t->max && t->tail != NULL)
		lru_del(t, t->tail);
	e = calloc(1, sizeof(*e) + t->payload);
	if (e == NULL)
		abort();
	memcpy(e->key, key, LRU_KEY_SIZE);
	size_t b = lru_bucket(t, key);
	e->hnext = t->buckets[b];
	t->buckets[b] = e;
	lru_push_front(t, e);
	t->count++;
	return e;
}

int
lru_keyer_init(struct lru_keyer *k, const unsigned char *secret,
	       size_t secret_len)
{
	k->base = NULL;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		return -1;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (ctx == NULL)
		return -1;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(ctx, secret, secret_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return -1;
	}
	k->base = ctx;
	return 0;
}

void
lru_keyer_free(struct lru_keyer *k)
{
	EVP_MAC_CTX_free(k->base); /* wipes the key */
	k->base = NULL;
}

static void
mac_update(EVP_MAC_CTX *ctx, const void *data, size_t len)
{
	if (EVP_MAC_update(ctx, data, len) != 1)
		abort();
}

void
lru_key(const struct lru_keyer *k, const char *domain, unsigned char *out,
	...)
{
	/* Copying the keyed context only reads it (and takes references):
	   safe from every loop at once. */
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->base);
	if (ctx == NULL)
		abort();
	mac_update(ctx, domain, strlen(domain) + 1);
	va_list ap;
	va_start(ap, out);
	for (;;) {
		const void *p = va_arg(ap, const void *);
		if (p == NULL)
			break;
		size_t len = va_arg(ap, size_t);
		unsigned char prefix[4] = {
			(unsigned char)(len >> 24), (unsigned char)(len >> 16),
			(unsigned char)(len >> 8), (unsigned char)len};
		mac_update(ctx, prefix, sizeof(prefix));
		mac_update(ctx, p, len);
	}
	va_end(ap);
	size_t outlen = 0;
	if (EVP_MAC_final(ctx, out, &outlen, LRU_KEY_SIZE) != 1 ||
	    outlen != LRU_KEY_SIZE)
		abort();
	EVP_MAC_CTX_free(ctx); /* wipes the state */
}

uint64_t
lru_now(void)
{
	return uv_hrtime() / 1000000;
}
