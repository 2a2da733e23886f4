/* test_seqset.c - imap_seqset_select against a look at every member of
 * the view (imap_seqset_contains): the same members, in view order, each
 * once, by UID and by sequence number, for sets of overlapping, unordered,
 * reversed and '*' ranges over views with gaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/imap/imap.h"

/* What imap_set_uids() did before: every member, checked against every
 * range. */
static size_t
naive(const struct imap_range *r, unsigned nr, int by_uid,
      const uint32_t *uids, size_t n, uint32_t *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (imap_seqset_contains(r, nr, by_uid ? uids[i]
						       : (uint32_t)i + 1))
			out[k++] = uids[i];
	return k;
}

static void
check(const char *set, int by_uid, const uint32_t *uids, size_t n)
{
	struct arena a;
	arena_init(&a, 4096);
	struct imap_range *r;
	unsigned nr;
	uint32_t max = by_uid ? (n ? uids[n - 1] : 0) : (uint32_t)n;
	if (imap_seqset_parse(set, max, &a, &r, &nr) < 0)
		fail_msg("cannot parse %s", set);
	uint32_t *want = malloc((n ? n : 1) * sizeof(*want));
	uint32_t *got = malloc((n ? n : 1) * sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	size_t nw = naive(r, nr, by_uid, uids, n, want);
	size_t ng = imap_seqset_select(r, nr, by_uid, uids, n, &a, got);
	if (nw != ng || memcmp(want, got, nw * sizeof(*want)) != 0)
		fail_msg("%s %s over %zu members: %zu selected, want %zu", set,
			 by_uid ? "by UID" : "by number", n, ng, nw);
	free(want);
	free(got);
	arena_free(&a);
}

static void
test_select_cases(void **state)
{
	const uint32_t v[] = {2, 3, 5, 8, 9, 20, 21, 1000, 4294967295u};
	size_t n = sizeof(v) / sizeof(v[0]);
	static const char *const sets[] = {
		"1",	   "2",	      "4",	 "*",	      "1:*",
		"*:1",	   "3:9",     "9:3",	 "21,2,5",    "5,2:3,3",
		"1:4,2:6", "20:21,8", "999:1001", "1000:*", "4294967295",
		"6:7",	   "1,1,1",   "22:999",	 "2:2,3:3,4:4,5:5",
	};
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		check(sets[i], 1, v, n);
		check(sets[i], 1, v, 0);
	}
	/* by number: only sets within the view */
	static const char *const nums[] = {
		"1", "*", "1:*", "*:1", "3:5", "5:3", "9,1,5", "2:4,3:6",
		"1,1", "4:4,1:2", "8:9",
	};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		check(nums[i], 0, v, n);
	/* a large view asked for one member, the first and the last */
	uint32_t *big = malloc(100000 * sizeof(*big));
	assert_non_null(big);
	for (uint32_t i = 0; i < 100000; i++)
		big[i] = 3 * i + 1;
	check("150001", 1, big, 100000);
	check("150002", 1, big, 100000);
	check("1,*", 1, big, 100000);
	check("99999:100000,1", 0, big, 100000);
	free(big);
}

static void
test_select_random(void **state)
{
	srandom(5);
	for (int round = 0; round < 2000; round++) {
		uint32_t v[64];
		size_t n = (size_t)(random() % 64);
		uint32_t u = 0;
		for (size_t i = 0; i < n; i++)
			v[i] = u += 1 + (uint32_t)(random() % 4);
		char set[512];
		size_t o = 0;
		int parts = 1 + (int)(random() % 6);
		int by_uid = n == 0 || random() % 2;
		uint32_t top = by_uid ? u + 3 : (uint32_t)n;
		for (int p = 0; p < parts; p++) {
			uint32_t a = 1 + (uint32_t)(random() % (top ? top : 1));
			uint32_t b = 1 + (uint32_t)(random() % (top ? top : 1));
			o += (size_t)snprintf(set + o, sizeof(set) - o, "%s%u",
					      p ? "," : "", a);
			if (random() % 2)
				o += (size_t)snprintf(set + o, sizeof(set) - o,
						      ":%u", b);
			else if (random() % 4 == 0)
				o += (size_t)snprintf(set + o, sizeof(set) - o,
						      ":*");
		}
		check(set, by_uid, v, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_cases),
		cmocka_unit_test(test_select_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
