/* penalty.h - the entry of the authentication penalty table. */
#ifndef PORTICO_PENALTY_H
#define PORTICO_PENALTY_H

#include "frontend/lru.h"

struct penalty_entry {
	unsigned failures;
	unsigned char last_password[LRU_KEY_SIZE];
};

#endif
