/* penalty.h - the entries of the authentication penalty tables. */
#ifndef PORTICO_PENALTY_H
#define PORTICO_PENALTY_H

#include "frontend/lru.h"

/* The failures of an (address, login) pair, or of an (address, directory
 * entry): the entry's count is charged by every login name that found
 * the entry, so a user's uid and mail addresses share it. */
struct penalty_entry {
	unsigned failures;
	/* A pair: entry holds the key of the (address, directory entry)
	   its login found at its last failure. */
	int linked;
	/* The password of the last failure that counted: the pair's
	   login + password key, or, for an entry, the password alone (the
	   same guess under another spelling of the name). */
	unsigned char last_password[LRU_KEY_SIZE];
	unsigned char entry[LRU_KEY_SIZE];
};

#endif
