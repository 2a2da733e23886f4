/* lru.c - bounded keyed tables for the frontend's shared state. */
#include "frontend/lru.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <uv.h>

void
lru_init(struct lru *t, size_t max, size_t payload)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	t->payload = payload;
	size_t n = 64;
	while (n < max && n < ((size_t)1 << 24))
		n *= 2;
	t->nbuckets = n;
	t->buckets = calloc(n, sizeof(*t->buckets));
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

void
lru_key(const unsigned char *secret, size_t secret_len, const char *domain,
	unsigned char *out, ...)
{
	va_list ap, ap2;
	size_t total = strlen(domain) + 1;
	va_start(ap, out);
	va_copy(ap2, ap);
	for (;;) {
		const void *p = va_arg(ap, const void *);
		if (p == NULL)
			break;
		total += 4 + va_arg(ap, size_t);
	}
	va_end(ap);
	unsigned char *msg = malloc(total);
	if (msg == NULL)
		abort();
	size_t used = strlen(domain) + 1;
	memcpy(msg, domain, used);
	for (;;) {
		const void *p = va_arg(ap2, const void *);
		if (p == NULL)
			break;
		size_t len = va_arg(ap2, size_t);
		msg[used++] = (unsigned char)(len >> 24);
		msg[used++] = (unsigned char)(len >> 16);
		msg[used++] = (unsigned char)(len >> 8);
		msg[used++] = (unsigned char)len;
		memcpy(msg + used, p, len);
		used += len;
	}
	va_end(ap2);
	unsigned int outlen = LRU_KEY_SIZE;
	HMAC(EVP_sha256(), secret, (int)secret_len, msg, used, out, &outlen);
	OPENSSL_cleanse(msg, used);
	free(msg);
}

uint64_t
lru_now(void)
{
	return uv_hrtime() / 1000000;
}
