/* log.c - key=value logging. */
#include "common/log.h"
#include "common/utc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_names[] = {"debug", "info", "warn", "error"};
_Static_assert(sizeof(log_names) / sizeof(log_names[0]) == LOG_LEVEL_COUNT,
	       "log level names");

static char log_daemon[64] = "portico";
/* Read by every thread, changed by a reload: relaxed atomics. */
static int log_min = LOG_LEVEL_INFO;

void
log_init(const char *daemon, enum log_level level)
{
	snprintf(log_daemon, sizeof(log_daemon), "%s", daemon);
	__atomic_store_n(&log_min, (int)level, __ATOMIC_RELAXED);
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_min, (int)level, __ATOMIC_RELAXED);
}

int
log_level_parse(const char *s, enum log_level *level_r)
{
	for (int i = 0; i < LOG_LEVEL_COUNT; i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level < __atomic_load_n(&log_min, __ATOMIC_RELAXED))
		return;
	char line[2048];
	struct timespec ts;
	struct utc u; /* not gmtime_r(): it takes the time zone lock */
	clock_gettime(CLOCK_REALTIME, &ts);
	utc_from_unix(ts.tv_sec, &u);
	int n = snprintf(line, sizeof(line),
			 "%04lld-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
			 (long long)u.year, u.mon, u.mday, u.hour, u.min, u.sec,
			 ts.tv_nsec / 1000000, log_names[level], log_daemon);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

char *
log_sanitize(char *out, size_t outsize, const char *in, size_t len,
	     size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, shown = 0, i;
	if (outsize == 0)
		return out;
	for (i = 0; i < len && shown < max; i++, shown++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 >= outsize)
				break;
			out[o++] = (char)c;
		} else if (c == '"' || c == '\\') {
			if (o + 2 >= outsize)
				break;
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			if (o + 4 >= outsize)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (i < len && o + 3 < outsize) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
