/* auth_cache.h - the entry of the authentication cache. */
#ifndef PORTICO_AUTH_CACHE_H
#define PORTICO_AUTH_CACHE_H

#include "frontend/directory.h"

struct auth_cache_entry {
	int ok;
	uint64_t at;          /* lru_now() ms when the directory answered */
	struct dir_user user; /* when ok */
	/* a success in the index by mailbox id (policy's auth_ids), which a
	   kick's Forget looks up: the next entry of its chain, and the
	   pointer to this one (NULL: not in the index) */
	struct lru_entry *id_next;
	struct lru_entry **id_pprev;
};

#endif
