/* fuzz_config.c - the configuration reader (common/config.c over inih).
 *
 * The input is an INI file, handed to config_load() through a memfd so
 * that the real file path (fopen, inih's line reader, the long-line
 * guard) runs.  Whatever the file, config_load() returns 0 or -1 with a
 * message; after a load, successful or not, every setting is still inside
 * its range from settings.def and every text setting is a string (a
 * failed load may have applied the lines before the bad one, as the
 * daemons never use such a config).  The file is loaded twice into the
 * same config, as a reload would, and freed: LeakSanitizer sees a text
 * setting that is replaced without being freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which, then abort (libFuzzer saves the input). */
#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

static void
check_ranges(const struct config *cfg)
{
#define CHECK_STR(f, mn, mx)                                                   \
	do {                                                                   \
		if ((f) == NULL)                                               \
			FAIL();                                      \
		(void)strlen(f);                                               \
	} while (0)
#define CHECK_INT(f, mn, mx)                                                   \
	do {                                                                   \
		if ((int64_t)(f) < (int64_t)(mn) ||                            \
		    (int64_t)(f) > (int64_t)(mx))                              \
			FAIL();                                      \
	} while (0)
#define CHECK_SIZE(f, mn, mx)                                                  \
	do {                                                                   \
		if ((f) < (uint64_t)(mn) || (f) > (uint64_t)(mx))              \
			FAIL();                                      \
	} while (0)
#define CHECK_TIME CHECK_INT
#define CHECK_BOOL(f, mn, mx)                                                  \
	do {                                                                   \
		if ((f) != 0 && (f) != 1)                                      \
			FAIL();                                      \
	} while (0)
#define SETTING(sec, name, type, def, min, max, doc)                           \
	CHECK_##type(cfg->sec##_##name, min, max);
#include "common/settings.def"
#undef SETTING
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (size > 65536)
		return 0;
	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		if (fd < 0)
			FAIL();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		FAIL();

	struct config cfg;
	config_defaults(&cfg);
	check_ranges(&cfg);
	for (int round = 0; round < 2; round++) {
		const char *err = NULL;
		int rc = config_load(&cfg, path, &err);
		if (rc != 0 && (rc != -1 || err == NULL || err[0] == '\0'))
			FAIL();
		check_ranges(&cfg);
	}
	config_free(&cfg);

	/* The value parsers alone, on the input as one string. */
	char s[64];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	uint64_t u;
	int64_t t;
	if (config_parse_size(s, &u) == 0 && (s[0] < '0' || s[0] > '9'))
		FAIL();
	if (config_parse_time(s, &t) == 0 && t < 0)
		FAIL();
	return 0;
}
