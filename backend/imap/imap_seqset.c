/* imap_seqset.c - sequence sets (RFC 3501 sequence-set, RFC 9051). */
#include "backend/imap/imap.h"

#include <stdlib.h>
#include <string.h>

static int
seq_number(const char **pp, uint32_t max, uint32_t *r)
{
	const char *p = *pp;
	if (*p == '*') {
		*r = max;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > 0xffffffffULL)
			return -1;
		p++;
	}
	*r = (uint32_t)v;
	*pp = p;
	return 0;
}

int
imap_seqset_parse(const char *s, uint32_t max, struct arena *a,
		  struct imap_range **ranges_r, unsigned *count_r)
{
	unsigned n = 1;
	for (const char *p = s; *p != '\0'; p++)
		if (*p == ',')
			n++;
	if (n > 100000)
		return -1;
	struct imap_range *r = arena_alloc(a, n * sizeof(*r));
	unsigned i = 0;
	const char *p = s;
	for (;;) {
		uint32_t lo, hi;
		if (seq_number(&p, max, &lo) < 0)
			return -1;
		hi = lo;
		if (*p == ':') {
			p++;
			if (seq_number(&p, max, &hi) < 0)
				return -1;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		r[i].lo = lo;
		r[i].hi = hi;
		i++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	*ranges_r = r;
	*count_r = i;
	return 0;
}

int
imap_seqset_contains(const struct imap_range *r, unsigned n, uint32_t v)
{
	for (unsigned i = 0; i < n; i++)
		if (v >= r[i].lo && v <= r[i].hi)
			return 1;
	return 0;
}

/* Appends "1:3,7" for sorted uids to out. */
void
imap_uid_set_format(const uint32_t *uids, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			buf_append(out, ",", 1);
		buf_append_uint(out, uids[i]);
		if (j > i) {
			buf_append(out, ":", 1);
			buf_append_uint(out, uids[j]);
		}
		i = j + 1;
	}
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

size_t
imap_seqset_select(const struct imap_range *r, unsigned nr, int by_uid,
		   const uint32_t *uids, size_t n, struct arena *a,
		   uint32_t *out)
{
	if (nr == 0 || n == 0)
		return 0;
	struct imap_range *m = arena_alloc(a, nr * sizeof(*m));
	memcpy(m, r, nr * sizeof(*m));
	if (nr > 1)
		qsort(m, nr, sizeof(*m), range_cmp);
	size_t k = 0, pos = 0; /* members before pos are decided */
	for (unsigned i = 0; i < nr && pos < n; i++) {
		size_t from, to; /* [from, to) of the view */
		if (by_uid) {
			size_t lo = pos, hi = n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (uids[mid] < m[i].lo)
					lo = mid + 1;
				else
					hi = mid;
			}
			from = lo;
			to = from;
			while (to < n && uids[to] <= m[i].hi)
				to++;
		} else {
			if (m[i].hi == 0)
				continue;
			from = m[i].lo > 0 ? (size_t)m[i].lo - 1 : 0;
			to = m[i].hi < n ? (size_t)m[i].hi : n;
			if (from < pos)
				from = pos;
		}
		for (size_t j = from; j < to; j++)
			out[k++] = uids[j];
		if (to > pos)
			pos = to;
	}
	return k;
}

/* Appends one range to out, comma-separated. */
static void
range_out(struct buf *out, uint32_t lo, uint32_t hi, size_t *written)
{
	if ((*written)++ > 0)
		buf_append(out, ",", 1);
	buf_append_uint(out, lo);
	if (hi > lo) {
		buf_append(out, ":", 1);
		buf_append_uint(out, hi);
	}
}

size_t
imap_uid_set_absent(const struct imap_range *r, unsigned nr, uint32_t uidnext,
		    const uint32_t *uids, size_t n, struct buf *out)
{
	struct imap_range all = {1, UINT32_MAX}, *m;
	if (r == NULL) {
		r = &all;
		nr = 1;
	}
	if (uidnext <= 1 || nr == 0)
		return 0;
	m = malloc(nr * sizeof(*m));
	if (m == NULL)
		abort();
	memcpy(m, r, nr * sizeof(*m));
	qsort(m, nr, sizeof(*m), range_cmp);
	size_t written = 0;
	uint32_t top = uidnext - 1;
	uint32_t done = 0; /* every UID up to here is handled */
	for (unsigned i = 0; i < nr; i++) {
		uint32_t lo = m[i].lo > done ? m[i].lo : done + 1;
		uint32_t hi = m[i].hi < top ? m[i].hi : top;
		if (lo == 0)
			lo = 1;
		if (m[i].hi <= done || lo > hi)
			continue;
		/* The first UID present at or after lo. */
		size_t a = 0, b = n;
		while (a < b) {
			size_t mid = a + (b - a) / 2;
			if (uids[mid] < lo)
				a = mid + 1;
			else
				b = mid;
		}
		uint32_t cur = lo;
		for (size_t k = a; k < n && uids[k] <= hi; k++) {
			if (uids[k] > cur)
				range_out(out, cur, uids[k] - 1, &written);
			cur = uids[k] + 1;
		}
		if (cur <= hi && cur != 0)
			range_out(out, cur, hi, &written);
		done = hi;
		if (done == top)
			break;
	}
	free(m);
	return written;
}
