/* log.h - key=value logging to stderr.
 *
 * Every line: "<time> <level> <daemon> <message>" where the message is a
 * run of key=value pairs.  Text that came from a client goes through
 * log_sanitize() first.  Passwords never reach this module.
 */
#ifndef PORTICO_LOG_H
#define PORTICO_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_COUNT
};

void log_init(const char *daemon, enum log_level level);
/* Changes the least severe level logged (any thread, e.g. a reload). */
void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *level_r);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Writes at most max visible characters of in[0..len) into out (size
 * outsize), escaping control and non-ASCII bytes as \xHH and quotes and
 * backslashes with a backslash; appends "..." when cut.  Returns out. */
char *log_sanitize(char *out, size_t outsize, const char *in, size_t len,
		   size_t max);

#endif
