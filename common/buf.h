/* buf.h - growable byte buffer with a read offset.
 *
 * A buf owns its memory.  Bytes are appended at the end and consumed from
 * the front; consumption only moves an offset, and the storage is compacted
 * lazily when more room is needed.  Allocation failure aborts: a server that
 * cannot allocate a few kilobytes cannot do anything useful either.
 */
#ifndef PORTICO_BUF_H
#define PORTICO_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
	char *data;  /* storage */
	size_t off;  /* first unconsumed byte */
	size_t len;  /* end of valid bytes (off <= len <= cap) */
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0, 0 }

/* Unconsumed bytes and their count. */
static inline char *
buf_ptr(const struct buf *b)
{
	/* NULL + 0 is undefined behaviour: an empty, never allocated
	   buffer has no unconsumed bytes at NULL. */
	return b->data == NULL ? NULL : b->data + b->off;
}

static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Makes room for at least n more bytes; returns where they go. */
char *buf_reserve(struct buf *b, size_t n);
/* Marks n bytes after buf_reserve() as written. */
void buf_commit(struct buf *b, size_t n);
void buf_append_grow(struct buf *b, const void *data, size_t n);
/* Inline while the bytes fit (answers are built of many small pieces). */
static inline void
buf_append(struct buf *b, const void *data, size_t n)
{
	if (n - 1 < b->cap - b->len) { /* 0 < n <= room */
		memcpy(b->data + b->len, data, n);
		b->len += n;
	} else if (n != 0) {
		buf_append_grow(b, data, n);
	}
}
void buf_append_str(struct buf *b, const char *s);
/* v in decimal into out (no NUL); returns the number of digits. */
size_t buf_format_uint(char out[20], uint64_t v);
void buf_append_uint(struct buf *b, uint64_t v);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer, keeping the storage. */
void buf_reset(struct buf *b);
/* Releases the storage; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Like buf_free(), but overwrites the bytes first (secrets). */
void buf_wipe(struct buf *b);

#endif
