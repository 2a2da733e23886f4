/* ldap_escape.c - LDAP values: RFC 4515 escaping for search filters,
 * GeneralizedTime (RFC 4517) read and written. */
#include "frontend/directory.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

int
ldap_filter_escape(const char *in, size_t len, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		/* RFC 4515 3: NUL ( ) * \ must be escaped; control bytes
		   are escaped too so that logs and filters stay plain. */
		if (c == 0 || c == '(' || c == ')' || c == '*' || c == '\\' ||
		    c < 0x20 || c == 0x7f) {
			if (o + 3 >= outsize)
				return -1;
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (o + 1 >= outsize)
				return -1;
			out[o++] = (char)c;
		}
	}
	if (o >= outsize)
		return -1;
	out[o] = '\0';
	return 0;
}

/* LDAP GeneralizedTime (RFC 4517 3.3.13): YYYYMMDDHH[MM[SS]][(.|,)frac]
 * then Z or +/-HH[MM]; 0 with the unix time, or -1. */
int
dir_generalized_time(const char *s, size_t len, int64_t *t_r)
{
	int v[6] = {0, 0, 0, 0, 0, 0};
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	size_t i = 0;
	for (unsigned k = 0; k < 6; k++) {
		if (k >= 4 && (i >= len || !isdigit((unsigned char)s[i])))
			break;
		for (int w = 0; w < width[k]; w++, i++) {
			if (i >= len || !isdigit((unsigned char)s[i]))
				return -1;
			v[k] = v[k] * 10 + (s[i] - '0');
		}
	}
	if (i < len && (s[i] == '.' || s[i] == ',')) {
		size_t j = ++i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == j)
			return -1;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	int64_t off = 0;
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i + 3 <= len && (s[i] == '+' || s[i] == '-') &&
		   isdigit((unsigned char)s[i + 1]) &&
		   isdigit((unsigned char)s[i + 2])) {
		int sign = s[i] == '-' ? -1 : 1;
		int hh = (s[i + 1] - '0') * 10 + (s[i + 2] - '0'), mm = 0;
		i += 3;
		if (i + 2 <= len && isdigit((unsigned char)s[i]) &&
		    isdigit((unsigned char)s[i + 1])) {
			mm = (s[i] - '0') * 10 + (s[i + 1] - '0');
			i += 2;
		}
		if (hh > 23 || mm > 59)
			return -1;
		off = sign * (hh * 3600 + mm * 60);
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	/* days from the civil date (no time zone lock, no library) */
	int y = v[0] - (v[1] <= 2), m = v[1];
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + v[2] - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	*t_r = days * 86400 + v[3] * 3600 + v[4] * 60 + v[5] - off;
	return 0;
}

void
dir_time_format(int64_t t, int day, char *out, size_t outsize)
{
	out[0] = '\0';
	if (t == 0)
		return;
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return;
	if ((day ? strftime(out, outsize, "%Y-%m-%d", &tm)
		 : strftime(out, outsize, "%Y%m%d%H%M%SZ", &tm)) == 0)
		out[0] = '\0';
}
