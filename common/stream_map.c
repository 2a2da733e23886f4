/* stream_map.c - see stream_map.h. */
#include "common/stream_map.h"

#include <stdlib.h>

static size_t
slot_of(const struct stream_map *m, uint32_t stream)
{
	/* Fibonacci hashing: stream ids are mostly consecutive. */
	return (size_t)((stream * 2654435769u) & (uint32_t)(m->cap - 1));
}

void *
stream_map_get(const struct stream_map *m, uint32_t stream)
{
	if (m->cap == 0 || stream == 0)
		return NULL;
	for (size_t i = slot_of(m, stream);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == stream)
			return m->vals[i];
		if (m->keys[i] == 0)
			return NULL;
	}
}

static void
grow(struct stream_map *m)
{
	struct stream_map n = {NULL, NULL, m->cap ? m->cap * 2 : 16, 0};
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (n.keys == NULL || n.vals == NULL)
		abort();
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] != 0)
			stream_map_put(&n, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = n;
}

void
stream_map_put(struct stream_map *m, uint32_t stream, void *val)
{
	if (stream == 0 || val == NULL)
		abort();
	if ((m->count + 1) * 2 > m->cap)
		grow(m);
	size_t i = slot_of(m, stream);
	while (m->keys[i] != 0 && m->keys[i] != stream)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == 0)
		m->count++;
	m->keys[i] = stream;
	m->vals[i] = val;
}

void *
stream_map_del(struct stream_map *m, uint32_t stream)
{
	if (m->cap == 0 || stream == 0)
		return NULL;
	size_t mask = m->cap - 1, i = slot_of(m, stream);
	while (m->keys[i] != stream) {
		if (m->keys[i] == 0)
			return NULL;
		i = (i + 1) & mask;
	}
	void *val = m->vals[i];
	m->count--;
	/* Backward shift: move up every entry of the run after the hole
	   that may live there, so that lookups never meet a false end. */
	for (size_t j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
		size_t home = slot_of(m, m->keys[j]);
		/* The entry at j may fill the hole at i when its home slot
		   is no nearer to j than the hole is. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->vals[i] = NULL;
	return val;
}

void
stream_map_free(struct stream_map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct stream_map)STREAM_MAP_INIT;
}
