/* penalty.c - authentication penalty per (client address, login), per
 * (client address, directory entry) and per client address.
 *
 * After n failures the next check of that pair waits
 * auth_penalty * 2^(n-1), at most auth_penalty_max.  A failure with the
 * password of the pair's previous failure does not count again (a client
 * retrying a stored wrong password is not an attacker guessing); other
 * logins from the same address keep their own count.
 *
 * A failure whose login found a directory entry (the bind failed) also
 * counts for the (address, entry), and the pair remembers the entry: the
 * next attempt with that login waits for whichever count is higher.  So
 * a user's uid and mail addresses share one count once each has failed
 * from the address; the first attempt with a login not seen failing
 * cannot be related to its entry before the directory is asked.  The
 * entry counts only what its pair counted, and not the password of its
 * own previous failure whatever login carried it (two clients retrying
 * stored wrong passwords under two names do not add up).
 *
 * Every failure a pair counts also counts for its address.  Beyond
 * auth_address_failures of them (0: never) every login from the address
 * waits as a pair would for the failures beyond that number, so one
 * password tried on many logins (spraying) is slowed too.  A success
 * forgets its pair and entry, not the address's count: a sprayer that
 * knows one account's password could reset it otherwise.
 *
 * Trusted networks never get here (the caller checks). */
#include "frontend/penalty.h"

#include <limits.h>
#include <string.h>

#include "frontend/policy.h"

/* The delay after n counted failures (ms). */
static uint64_t
penalty_for(const struct config *cfg, unsigned n)
{
	if (n == 0)
		return 0;
	uint64_t max = (uint64_t)cfg->limits_auth_penalty_max * 1000;
	uint64_t delay = (uint64_t)cfg->limits_auth_penalty * 1000;
	for (unsigned i = 1; i < n && delay < max; i++)
		delay *= 2;
	return delay > max ? max : delay;
}

uint64_t
penalty_delay(struct policy *p, const struct policy_login_keys *k,
	      struct penalty_wait *w_r)
{
	memset(w_r, 0, sizeof(*w_r));
	uint64_t now = lru_now();
	pthread_mutex_lock(&p->lock);
	const struct config *cfg = p->cfg;
	if (cfg->limits_auth_penalty == 0) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	struct lru_entry *e = lru_get(&p->penalty, k->penalty, now);
	if (e != NULL) {
		struct penalty_entry *pe = lru_payload(e);
		w_r->failures = pe->failures;
		if (pe->linked) {
			unsigned char entry[LRU_KEY_SIZE];
			memcpy(entry, pe->entry, sizeof(entry));
			e = lru_get(&p->penalty, entry, now);
			if (e != NULL) {
				pe = lru_payload(e);
				if (pe->failures > w_r->failures)
					w_r->failures = pe->failures;
			}
		}
	}
	w_r->login_delay = penalty_for(cfg, w_r->failures);
	unsigned threshold = (unsigned)cfg->limits_auth_address_failures;
	if (threshold > 0) {
		e = lru_get(&p->penalty_address, k->address, now);
		if (e != NULL)
			w_r->address_failures = *(unsigned *)lru_payload(e);
		if (w_r->address_failures > threshold)
			w_r->address_delay = penalty_for(
			    cfg, w_r->address_failures - threshold);
	}
	pthread_mutex_unlock(&p->lock);
	return w_r->login_delay > w_r->address_delay ? w_r->login_delay
						     : w_r->address_delay;
}

/* One more failure of pe with password key pw, unless pw is the one of
 * its last counted failure; 1 if it counted. */
static int
penalty_count(struct penalty_entry *pe, const unsigned char *pw)
{
	if (pe->failures > 0 &&
	    memcmp(pe->last_password, pw, sizeof(pe->last_password)) == 0)
		return 0;
	if (pe->failures < 64)
		pe->failures++;
	memcpy(pe->last_password, pw, sizeof(pe->last_password));
	return 1;
}

void
penalty_record(struct policy *p, const struct policy_login_keys *k, int failed,
	       const struct dir_user *u)
{
	unsigned char entry[LRU_KEY_SIZE];
	int known = u != NULL && u->dn[0] != '\0';
	if (known)
		lru_key(&p->keyer, "penalty-entry", entry, k->address,
			(size_t)LRU_KEY_SIZE, u->dn, strlen(u->dn), NULL);
	uint64_t now = lru_now();
	pthread_mutex_lock(&p->lock);
	const struct config *cfg = p->cfg;
	uint64_t expires = now +
			   (uint64_t)cfg->limits_auth_penalty_expire * 1000;
	struct lru_entry *e = lru_get(&p->penalty, k->penalty, now);
	if (!failed) {
		if (e != NULL)
			lru_del(&p->penalty, e);
		if (known && (e = lru_get(&p->penalty, entry, now)) != NULL)
			lru_del(&p->penalty, e);
	} else if (cfg->limits_auth_penalty > 0) {
		if (e == NULL)
			e = lru_put(&p->penalty, k->penalty, now);
		struct penalty_entry *pe = lru_payload(e);
		int counted = penalty_count(pe, k->password);
		e->expires = expires;
		if (known) {
			pe->linked = 1;
			memcpy(pe->entry, entry, sizeof(entry));
		} else if (pe->linked) {
			/* No entry this time (an answer from the cache): the
			   one the login found last. */
			memcpy(entry, pe->entry, sizeof(entry));
			known = 1;
		}
		/* pe is not used below: putting the entry may evict it. */
		if (known && counted) {
			e = lru_get(&p->penalty, entry, now);
			if (e == NULL)
				e = lru_put(&p->penalty, entry, now);
			penalty_count(lru_payload(e), k->guess);
			e->expires = expires;
		}
		if (counted && cfg->limits_auth_address_failures > 0) {
			e = lru_get(&p->penalty_address, k->address, now);
			if (e == NULL)
				e = lru_put(&p->penalty_address, k->address,
					    now);
			unsigned *n = lru_payload(e);
			if (*n < UINT_MAX)
				(*n)++;
			e->expires = expires;
		}
	}
	pthread_mutex_unlock(&p->lock);
}
