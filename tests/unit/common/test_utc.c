/* test_utc.c - utc_from_unix and utc_imap_date_time against gmtime_r and
 * strftime: every day from year 1 to 9999 at one instant, random instants
 * (negative ones too), and the edges of days, months and leap years. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/utc.h"

static void
check(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	assert_non_null(gmtime_r(&tt, &tm));
	struct utc u;
	utc_from_unix(t, &u);
	if (u.year != tm.tm_year + 1900LL || u.mon != tm.tm_mon + 1 ||
	    u.mday != tm.tm_mday || u.hour != tm.tm_hour ||
	    u.min != tm.tm_min || u.sec != tm.tm_sec)
		fail_msg("%lld: %lld-%d-%d %d:%d:%d, gmtime %d-%d-%d "
			 "%d:%d:%d",
			 (long long)t, (long long)u.year, u.mon, u.mday, u.hour,
			 u.min, u.sec, tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	char want[64], got[27];
	size_t n = utc_imap_date_time(t, got);
	if (u.year < 0 || u.year > 9999) {
		assert_int_equal(n, 0);
		return;
	}
	/* the C locale's %b: English month names; the year with four
	   digits (%Y does not pad) */
	char day[16], tod[32];
	strftime(day, sizeof(day), "%d-%b-", &tm);
	strftime(tod, sizeof(tod), " %H:%M:%S +0000", &tm);
	snprintf(want, sizeof(want), "%s%04lld%s", day, (long long)u.year,
		 tod);
	assert_int_equal(n, 26);
	got[n] = '\0';
	assert_string_equal(got, want);
}

static void
test_days(void **state)
{
	/* 0001-01-01 to 9999-12-31, one instant a day, moving through the
	   day */
	for (int64_t d = -719162; d <= 2932896; d++)
		check(d * 86400 + (d * 3607) % 86400);
}

static void
test_edges(void **state)
{
	const int64_t t[] = {
		0,	     -1,	 86399,	      86400,	   -86400,
		-86401,	     951782399,	 951782400,   951868800,   4107542399,
		4107542400,  1798761599, 1798761600,  253402300799,
		253402300800, -62135596800, -62135596801, -62167219200,
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		check(t[i]);
	char out[27];
	/* year 10000 and year -1: not IMAP's four digits */
	assert_int_equal(utc_imap_date_time(253402300800, out), 0);
	assert_int_equal(utc_imap_date_time(-62167219201, out), 0);
	assert_int_equal(utc_imap_date_time(1796552160, out), 26);
	assert_memory_equal(out, "06-Dec-2026 10:16:00 +0000", 26);
}

static void
test_random(void **state)
{
	srandom(11);
	for (int i = 0; i < 200000; i++) {
		int64_t t = ((int64_t)random() << 8 | (random() & 0xff)) %
			    253402300800;
		check(random() % 4 == 0 ? -(t % 62135596800) : t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
