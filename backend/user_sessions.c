/* user_sessions.c - sessions per account: a chained hash table of counts,
 * doubled when accounts outnumber its buckets. */
#include "backend/user_sessions.h"

#include <stdlib.h>
#include <string.h>

struct user_count {
	struct user_count *next;
	uint64_t hash;
	unsigned n;
	char id[]; /* the mailbox id */
};

/* FNV-1a: mailbox ids come from the directory, not from clients. */
static uint64_t
id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct user_count **
find(const struct user_sessions *t, const char *id, uint64_t h)
{
	if (t->nbuckets == 0)
		return NULL;
	struct user_count **pp = &t->buckets[h & (t->nbuckets - 1)];
	while (*pp != NULL &&
	       ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void
grow(struct user_sessions *t)
{
	size_t n = t->nbuckets == 0 ? 64 : t->nbuckets * 2;
	struct user_count **b = calloc(n, sizeof(*b));
	if (b == NULL)
		abort();
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct user_count *e = t->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

int
user_sessions_acquire(struct user_sessions *t, const char *mailbox_id,
		      uint64_t max)
{
	uint64_t h = id_hash(mailbox_id);
	struct user_count **pp = find(t, mailbox_id, h);
	if (pp != NULL && *pp != NULL) {
		if (max != 0 && (*pp)->n >= max) {
			t->refused++;
			return -1;
		}
		(*pp)->n++;
		return 0;
	}
	/* a first session always fits (max is at least 1 or 0) */
	if (t->accounts >= t->nbuckets)
		grow(t);
	pp = find(t, mailbox_id, h);
	size_t len = strlen(mailbox_id);
	struct user_count *e = malloc(sizeof(*e) + len + 1);
	if (e == NULL)
		abort();
	e->hash = h;
	e->n = 1;
	memcpy(e->id, mailbox_id, len + 1);
	e->next = NULL;
	*pp = e;
	t->accounts++;
	return 0;
}

void
user_sessions_release(struct user_sessions *t, const char *mailbox_id)
{
	struct user_count **pp = find(t, mailbox_id, id_hash(mailbox_id));
	if (pp == NULL || *pp == NULL)
		return;
	struct user_count *e = *pp;
	if (--e->n > 0)
		return;
	*pp = e->next;
	free(e);
	t->accounts--;
}

unsigned
user_sessions_count(const struct user_sessions *t, const char *mailbox_id)
{
	struct user_count **pp = find(t, mailbox_id, id_hash(mailbox_id));
	return pp != NULL && *pp != NULL ? (*pp)->n : 0;
}

void
user_sessions_free(struct user_sessions *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct user_count *e = t->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}
