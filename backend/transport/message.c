/* message.c - header fields and dates of the messages the transport
 * writes (Received:, delivery status notifications). */
#include "backend/transport/transport.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *
transport_hostname(const struct config *cfg)
{
	static char host[256];
	if (cfg->transport_hostname[0] != '\0')
		return cfg->transport_hostname;
	if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	return host;
}

void
transport_date(int64_t t, char *out, size_t outsize)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	snprintf(out, outsize, "%s, %d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
transport_clean(char *out, size_t outsize, const char *s)
{
	size_t o = 0;
	for (; *s != '\0' && o + 1 < outsize; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			continue;
		out[o++] = (char)c;
	}
	out[o] = '\0';
}
