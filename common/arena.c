/* arena.c - bump allocator. */
#include "common/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	max_align_t data[];
};

#define ALIGN (sizeof(max_align_t))

void
arena_init(struct arena *a, size_t block_size)
{
	a->head = NULL;
	a->block_size = block_size ? block_size : 4096;
	a->total = 0;
	a->secret = 0;
}

static struct arena_block *
arena_new_block(struct arena *a, size_t n)
{
	size_t size = n > a->block_size ? n : a->block_size;
	struct arena_block *b = malloc(sizeof(*b) + size);
	if (b == NULL)
		abort();
	b->size = size;
	b->used = 0;
	return b;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (n > ((size_t)-1) / 2)
		abort();
	n = (n + ALIGN - 1) & ~(ALIGN - 1);
	struct arena_block *b = a->head;
	if (b == NULL || b->size - b->used < n) {
		struct arena_block *nb = arena_new_block(a, n);
		if (b != NULL && n > a->block_size) {
			/* Keep the current block in front for small
			   allocations. */
			nb->next = b->next;
			b->next = nb;
			nb->used = n;
			a->total += n;
			return (char *)nb->data;
		}
		nb->next = b;
		a->head = nb;
		b = nb;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	a->total += n;
	return p;
}

void *
arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void
arena_release(struct arena *a, struct arena_block *b)
{
	while (b != NULL) {
		struct arena_block *next = b->next;
		if (a->secret)
			OPENSSL_cleanse(b->data, b->size);
		free(b);
		b = next;
	}
}

void
arena_clear(struct arena *a)
{
	struct arena_block *b = a->head;
	if (b == NULL)
		return;
	/* Keep one block of the standard size, if any. */
	struct arena_block *keep = NULL, **pp = &a->head;
	while (*pp != NULL) {
		if ((*pp)->size == a->block_size) {
			keep = *pp;
			*pp = keep->next;
			break;
		}
		pp = &(*pp)->next;
	}
	arena_release(a, a->head);
	a->head = keep;
	if (keep != NULL) {
		if (a->secret)
			OPENSSL_cleanse(keep->data, keep->used);
		keep->next = NULL;
		keep->used = 0;
	}
	a->total = 0;
}

void
arena_free(struct arena *a)
{
	arena_release(a, a->head);
	a->head = NULL;
	a->total = 0;
}
