/* imap_casefold.c - the i;unicode-casemap comparator (RFC 5051) that
 * SEARCH, SORT and THREAD compare text with (I18NLEVEL=1, RFC 5255).
 *
 * Each character becomes its titlecase (Unicode's simple mapping), then
 * its compatibility decomposition, applied until nothing decomposes
 * (NFKD), each resulting character titlecased again: "ǆ", "Ǆ" and "ǅ"
 * fold alike, "ﬁ" becomes "FI", "Ａ" becomes "A", "é" becomes "E" and the
 * combining acute accent.  The tables are libunistring's (the Unicode
 * version of the system's libunistring).  ASCII, most of any text, is
 * folded here without a call; bytes that are not UTF-8 pass through as
 * they are, so that a needle still finds them.
 */
#include <string.h>

#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "backend/imap/imap.h"
#include "common/buf.h"

/* What one character may fold to, at most (U+FDFA decomposes into 18
 * characters; a deeper chain is cut there). */
#define FOLD_MAX_BYTES 256
#define FOLD_MAX_DEPTH 8

/* c titlecased and decomposed, as UTF-8 at w[*o], below FOLD_MAX_BYTES. */
static void
fold_char(ucs4_t c, char *w, size_t *o, int depth)
{
	ucs4_t t = uc_totitle(c);
	ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
	int tag;
	int n = depth < FOLD_MAX_DEPTH ? uc_decomposition(t, &tag, d) : -1;
	if (n <= 0) {
		if (*o + 6 <= FOLD_MAX_BYTES) {
			int l = u8_uctomb((uint8_t *)w + *o, t, 6);
			if (l > 0)
				*o += (size_t)l;
		}
		return;
	}
	for (int i = 0; i < n; i++)
		fold_char(d[i], w, o, depth + 1);
}

void
imap_casefold(const char *in, size_t len, struct buf *out)
{
	const uint8_t *p = (const uint8_t *)in;
	size_t i = 0;
	while (i < len) {
		/* a run of ASCII, folded in place */
		size_t run = 0;
		while (i + run < len && p[i + run] < 0x80)
			run++;
		if (run > 0) {
			char *w = buf_reserve(out, run);
			for (size_t k = 0; k < run; k++) {
				uint8_t c = p[i + k];
				w[k] = c >= 'a' && c <= 'z' ? (char)(c - 32)
							    : (char)c;
			}
			buf_commit(out, run);
			i += run;
			continue;
		}
		ucs4_t c;
		int l = u8_mbtoucr(&c, p + i, len - i);
		if (l <= 0) {
			/* not UTF-8: the byte as it is */
			buf_append(out, (const char *)p + i, 1);
			i++;
			continue;
		}
		char *w = buf_reserve(out, FOLD_MAX_BYTES);
		size_t o = 0;
		fold_char(c, w, &o, 0);
		buf_commit(out, o);
		i += (size_t)l;
	}
}
