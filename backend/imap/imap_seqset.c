/* imap_seqset.c - sequence sets (RFC 3501 sequence-set, RFC 9051). */
#include "backend/imap/imap.h"

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
		if (j > i)
			buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}
