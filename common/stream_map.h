/* stream_map.h - link stream id -> session, in O(1).
 *
 * A link multiplexes every session of a frontend-backend pair; each frame
 * names its stream, so the lookup runs once per frame and must not depend
 * on how many sessions share the link (thousands in IDLE on one link are
 * normal).  Open addressing with linear probing and backward-shift
 * deletion (no tombstones); the table doubles at half load.  Stream 0 is
 * the link's own and is never stored.
 */
#ifndef PORTICO_STREAM_MAP_H
#define PORTICO_STREAM_MAP_H

#include <stddef.h>
#include <stdint.h>

struct stream_map {
	uint32_t *keys;  /* 0: empty slot */
	void **vals;
	size_t cap;      /* a power of two, or 0 */
	size_t count;
};

#define STREAM_MAP_INIT { NULL, NULL, 0, 0 }

/* The value of stream, or NULL. */
void *stream_map_get(const struct stream_map *m, uint32_t stream);
/* Stores val (not NULL) for stream (not 0), replacing any value. */
void stream_map_put(struct stream_map *m, uint32_t stream, void *val);
/* Removes stream; returns its value, or NULL if it was not there. */
void *stream_map_del(struct stream_map *m, uint32_t stream);
void stream_map_free(struct stream_map *m);

#endif
