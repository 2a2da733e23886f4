/* store_tmp.h - a store in a fresh directory under /tmp for a unit test,
 * and its removal. */
#ifndef PORTICO_TEST_STORE_TMP_H
#define PORTICO_TEST_STORE_TMP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend/store/store.h"

static struct store *
open_store(char *dir, size_t size)
{
	struct store *st;
	const char *err;
	snprintf(dir, size, "/tmp/portico-test-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (store_open(dir, 64 << 20, &st, &err) != 0)
		fail_msg("store_open: %s", err);
	return st;
}

static void
remove_store(struct store **st, const char *dir)
{
	char path[512];
	store_close(st);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_OWNER_FILE);
	unlink(path);
	rmdir(dir);
}

#endif
