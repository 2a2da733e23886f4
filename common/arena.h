/* arena.h - bump allocator for per-command and per-session memory.
 *
 * Everything allocated from an arena lives until arena_clear() or
 * arena_free().  Blocks are chained; a request larger than the block size
 * gets its own block.  Allocation failure aborts.
 */
#ifndef PORTICO_ARENA_H
#define PORTICO_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t block_size;
	size_t total;      /* bytes handed out since the last clear */
	int secret;        /* wipe on clear/free */
};

void arena_init(struct arena *a, size_t block_size);
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
/* Copies n bytes and adds a NUL after them. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Frees all but the first block, which is reset for reuse. */
void arena_clear(struct arena *a);
void arena_free(struct arena *a);

#endif
