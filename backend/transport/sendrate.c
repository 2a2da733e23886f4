/* sendrate.c - transport.max_recipients_per_hour: how many recipients
 * each sender has submitted to within the last hour.
 *
 * A user's submissions all reach their own backend, so its count is
 * whole whatever frontend took them.  Twelve five-minute slots per
 * sender, the oldest dropped as time moves on: the hour is a sliding one
 * within five minutes.  Counts live in memory (a restart forgets them);
 * senders with nothing in the last hour are removed by the minute's
 * sweep, so the table holds the last hour's senders only.
 */
#include "backend/transport/sendrate.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 12
#define SLOT_MS (5 * 60 * 1000ULL)

struct sendrate {
	struct sendrate *next;
	uint64_t slot;            /* number of the newest slot counted */
	uint32_t count[SLOTS];    /* count[slot % SLOTS] */
	char mailbox_id[];
};

struct sendrate_table {
	struct sendrate **bucket;
	size_t nbuckets;          /* a power of two */
	size_t entries;
};

static uint64_t
sr_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Moves e's window to slot now, forgetting the slots that left it. */
static void
sr_advance(struct sendrate *e, uint64_t now)
{
	if (now <= e->slot)
		return;
	uint64_t gone = now - e->slot;
	if (gone >= SLOTS) {
		memset(e->count, 0, sizeof(e->count));
	} else {
		for (uint64_t i = 1; i <= gone; i++)
			e->count[(e->slot + i) % SLOTS] = 0;
	}
	e->slot = now;
}

static uint64_t
sr_total(const struct sendrate *e)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < SLOTS; i++)
		n += e->count[i];
	return n;
}

static void
sr_grow(struct sendrate_table *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : 256;
	struct sendrate **b = calloc(n, sizeof(*b));
	if (b == NULL)
		abort();
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct sendrate *e = t->bucket[i], *next; e != NULL;
		     e = next) {
			next = e->next;
			struct sendrate **head =
				&b[sr_hash(e->mailbox_id) & (n - 1)];
			e->next = *head;
			*head = e;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

int
sendrate_count(struct sendrate_table **tp, uint64_t limit,
	       const char *mailbox_id, unsigned n, uint64_t now_ms,
	       uint64_t *used_r)
{
	*used_r = 0;
	if (limit == 0)
		return 1;
	struct sendrate_table *t = *tp;
	if (t == NULL) {
		t = *tp = calloc(1, sizeof(*t));
		if (t == NULL)
			abort();
	}
	if (t->entries >= t->nbuckets)
		sr_grow(t);
	uint64_t slot = now_ms / SLOT_MS;
	struct sendrate **head =
		&t->bucket[sr_hash(mailbox_id) & (t->nbuckets - 1)];
	struct sendrate *e = *head;
	while (e != NULL && strcmp(e->mailbox_id, mailbox_id) != 0)
		e = e->next;
	if (e == NULL) {
		size_t len = strlen(mailbox_id);
		e = calloc(1, sizeof(*e) + len + 1);
		if (e == NULL)
			abort();
		memcpy(e->mailbox_id, mailbox_id, len + 1);
		e->slot = slot;
		e->next = *head;
		*head = e;
		t->entries++;
	}
	sr_advance(e, slot);
	uint64_t used = sr_total(e);
	*used_r = used;
	if (used + n > limit)
		return 0;
	e->count[slot % SLOTS] += n;
	*used_r = used + n;
	return 1;
}

size_t
sendrate_expire(struct sendrate_table *t, uint64_t now_ms)
{
	if (t == NULL)
		return 0;
	uint64_t slot = now_ms / SLOT_MS;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct sendrate **pp = &t->bucket[i]; *pp != NULL;) {
			struct sendrate *e = *pp;
			sr_advance(e, slot);
			if (sr_total(e) == 0) {
				*pp = e->next;
				free(e);
				t->entries--;
			} else {
				pp = &e->next;
			}
		}
	}
	return t->entries;
}

void
sendrate_table_free(struct sendrate_table **tp)
{
	struct sendrate_table *t = *tp;
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct sendrate *e = t->bucket[i], *next; e != NULL;
		     e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->bucket);
	free(t);
	*tp = NULL;
}
