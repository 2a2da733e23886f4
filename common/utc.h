/* utc.h - the UTC calendar date and time of a Unix time, computed (days
 * to civil date, proleptic Gregorian) without gmtime_r(), which takes
 * glibc's time zone lock on every call; and IMAP's date-time of it. */
#ifndef PORTICO_UTC_H
#define PORTICO_UTC_H

#include <stddef.h>
#include <stdint.h>

struct utc {
	int64_t year;
	int mon;  /* 1-12 */
	int mday; /* 1-31 */
	int hour, min, sec;
};

static inline void
utc_from_unix(int64_t t, struct utc *u)
{
	int64_t days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	u->hour = (int)(secs / 3600);
	u->min = (int)(secs / 60 % 60);
	u->sec = (int)(secs % 60);
	/* days since 0000-03-01 in 400-year eras (H. Hinnant's civil_from_days) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;                              /* 0..146096 */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);       /* 0..365 */
	int64_t mp = (5 * doy + 2) / 153;                            /* 0..11 */
	u->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	u->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	u->year = yoe + era * 400 + (u->mon <= 2);
}

/* IMAP's date-time (RFC 3501) without the quotes, "06-Dec-2026 10:16:00
 * +0000", into out; returns its length (26), or 0 for a year outside
 * 0-9999 (the caller formats those some other way). */
static inline size_t
utc_imap_date_time(int64_t t, char out[26])
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct utc u;
	utc_from_unix(t, &u);
	if (u.year < 0 || u.year > 9999)
		return 0;
	char *p = out;
	*p++ = (char)('0' + u.mday / 10);
	*p++ = (char)('0' + u.mday % 10);
	*p++ = '-';
	for (int i = 0; i < 3; i++)
		*p++ = mon[(u.mon - 1) * 3 + i];
	*p++ = '-';
	int y = (int)u.year;
	*p++ = (char)('0' + y / 1000);
	*p++ = (char)('0' + y / 100 % 10);
	*p++ = (char)('0' + y / 10 % 10);
	*p++ = (char)('0' + y % 10);
	*p++ = ' ';
	const int hms[3] = {u.hour, u.min, u.sec};
	for (int i = 0; i < 3; i++) {
		*p++ = (char)('0' + hms[i] / 10);
		*p++ = (char)('0' + hms[i] % 10);
		*p++ = i < 2 ? ':' : ' ';
	}
	for (const char *z = "+0000"; *z != '\0'; z++)
		*p++ = *z;
	return (size_t)(p - out);
}

#endif
