/* imap_casefold.c - the i;unicode-casemap comparator (RFC 5051) that
 * SEARCH, SORT and THREAD compare text with (I18NLEVEL=1, RFC 5255).
 *
 * Each character becomes its titlecase (Unicode's simple mapping), then
 * its compatibility decomposition, applied until nothing decomposes
 * (NFKD), each resulting character titlecased again: "ǆ", "Ǆ" and "ǅ"
 * fold alike, "ﬁ" becomes "FI", "Ａ" becomes "A", "é" becomes "E" and the
 * combining acute accent.  The mappings are libunistring's (the Unicode
 * version of the system's libunistring).
 *
 * SEARCH folds every message text it looks at, so the common cases cost
 * a table look-up: ASCII is folded in the loop, and what each character
 * of the BMP folds to is worked out once per process (a few milliseconds
 * at the first search; about 400 KB) with "as it is" for most; only
 * characters beyond the BMP ask libunistring each time.  Bytes that are
 * not UTF-8 pass through as they are, so that a needle still finds them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "backend/imap/imap.h"
#include "common/buf.h"

/* What one character may fold to, at most (U+FDFA decomposes into 18
 * characters, 54 bytes; a longer or deeper chain is cut there). */
#define FOLD_MAX_BYTES 250
#define FOLD_MAX_DEPTH 8

/* c titlecased and decomposed, as UTF-8 at w[*o] (w: FOLD_MAX_BYTES). */
static void
fold_char(ucs4_t c, uint8_t *w, size_t *o, int depth)
{
	ucs4_t t = uc_totitle(c);
	ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
	int tag;
	int n = depth < FOLD_MAX_DEPTH ? uc_decomposition(t, &tag, d) : -1;
	if (n <= 0) {
		if (*o + 6 <= FOLD_MAX_BYTES) {
			int l = u8_uctomb(w + *o, t, 6);
			if (l > 0)
				*o += (size_t)l;
		}
		return;
	}
	for (int i = 0; i < n; i++)
		fold_char(d[i], w, o, depth + 1);
}

/* The BMP's folds: 0 for a character that folds to itself, else its
 * fold's offset in bmp_pool << 8 | its length; and a bit for each
 * character that folds to itself (8 KB, looked at first). */
static uint32_t *bmp_fold;
static uint64_t bmp_same[0x10000 / 64];
static uint8_t *bmp_pool;
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void
bmp_init(void)
{
	struct buf pool = BUF_INIT;
	bmp_fold = calloc(0x10000, sizeof(*bmp_fold));
	if (bmp_fold == NULL)
		abort();
	for (ucs4_t c = 0x80; c < 0x10000; c++) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue; /* surrogates: no characters */
		uint8_t w[FOLD_MAX_BYTES], self[6];
		size_t o = 0;
		fold_char(c, w, &o, 0);
		int l = u8_uctomb(self, c, sizeof(self));
		if (l > 0 && (size_t)l == o && memcmp(w, self, o) == 0) {
			bmp_same[c / 64] |= 1ull << (c % 64);
			continue;
		}
		bmp_fold[c] = (uint32_t)buf_used(&pool) << 8 | (uint32_t)o;
		buf_append(&pool, (const char *)w, o);
	}
	/* kept for the process's life */
	bmp_pool = (uint8_t *)buf_ptr(&pool);
}

/* The ASCII at p[0..n) into w, up to the first byte that is not: how
 * many.  Eight at a time: a byte's high bit after adding 0x1f says it is
 * 'a' or above, after adding 0x05 that it is above 'z' (no byte below
 * 0x80 carries into the next). */
static size_t
fold_ascii(const uint8_t *p, size_t n, uint8_t *w)
{
	const uint64_t high = 0x8080808080808080ull;
	size_t k = 0;
	for (; k + 8 <= n; k += 8) {
		uint64_t x;
		memcpy(&x, p + k, 8);
		if (x & high)
			break;
		uint64_t lower = (x + 0x1f1f1f1f1f1f1f1full) &
				 ~(x + 0x0505050505050505ull) & high;
		x -= lower >> 2;
		memcpy(w + k, &x, 8);
	}
	for (; k < n && p[k] < 0x80; k++)
		w[k] = (uint8_t)(p[k] - (((unsigned)(p[k] - 'a') < 26u) << 5));
	return k;
}

void
imap_casefold(const char *in, size_t len, struct buf *out)
{
	pthread_once(&bmp_once, bmp_init);
	const uint8_t *p = (const uint8_t *)in;
	size_t i = 0;
	while (i < len) {
		/* room for a chunk of ASCII, and for one character's fold
		   beyond it: a chunk ends where its room does */
		size_t chunk = len - i < 4096 ? len - i : 4096;
		size_t room = chunk + FOLD_MAX_BYTES;
		uint8_t *w = (uint8_t *)buf_reserve(out, room);
		size_t o = 0, end = i + chunk;
		while (i < end && o + FOLD_MAX_BYTES < room) {
			uint8_t c = p[i];
			if (c < 0x80) {
				/* a run of ASCII, as far as the room goes */
				size_t left = room - o - FOLD_MAX_BYTES;
				size_t k = fold_ascii(
				    p + i, end - i < left ? end - i : left,
				    w + o);
				i += k;
				o += k;
				continue;
			}
			ucs4_t cp = 0;
			int l = 0;
			if (c >= 0xc2 && c <= 0xdf && i + 1 < len &&
			    (p[i + 1] & 0xc0) == 0x80) {
				cp = (ucs4_t)(c & 0x1f) << 6 |
				     (p[i + 1] & 0x3f);
				l = 2;
			} else if (c >= 0xe0 && c <= 0xef && i + 2 < len &&
				   (p[i + 1] & 0xc0) == 0x80 &&
				   (p[i + 2] & 0xc0) == 0x80) {
				cp = (ucs4_t)(c & 0x0f) << 12 |
				     (ucs4_t)(p[i + 1] & 0x3f) << 6 |
				     (p[i + 2] & 0x3f);
				/* overlong forms and surrogates: below */
				l = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)
					? 3
					: 0;
			}
			if (l > 0) {
				if (bmp_same[cp / 64] & 1ull << (cp % 64)) {
					w[o] = c;
					w[o + 1] = p[i + 1];
					if (l == 3)
						w[o + 2] = p[i + 2];
					o += (size_t)l;
				} else {
					uint32_t e = bmp_fold[cp];
					memcpy(w + o, bmp_pool + (e >> 8),
					       e & 0xff);
					o += e & 0xff;
				}
				i += (size_t)l;
				continue;
			}
			l = u8_mbtoucr(&cp, p + i, len - i);
			if (l <= 0) {
				w[o++] = c; /* not UTF-8: as it is */
				i++;
				continue;
			}
			size_t fo = 0;
			fold_char(cp, w + o, &fo, 0);
			o += fo;
			i += (size_t)l;
		}
		buf_commit(out, o);
	}
}
