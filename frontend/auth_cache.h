/* auth_cache.h - the entry of the authentication cache. */
#ifndef PORTICO_AUTH_CACHE_H
#define PORTICO_AUTH_CACHE_H

#include "frontend/directory.h"

struct auth_cache_entry {
	int ok;
	struct dir_user user; /* when ok */
};

#endif
