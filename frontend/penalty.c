/* penalty.c - authentication penalty per (client address, login).
 *
 * After n failures the next check of that pair waits
 * auth_penalty * 2^(n-1), at most auth_penalty_max.  A failure with the
 * password of the pair's previous failure does not count again (a client
 * retrying a stored wrong password is not an attacker guessing); other
 * logins from the same address keep their own count.  Trusted networks
 * never get here (the caller checks). */
#include "frontend/penalty.h"

#include <string.h>

#include "frontend/policy.h"

uint64_t
penalty_delay(struct policy *p, const struct policy_login_keys *k,
	      unsigned *failures_r)
{
	uint64_t delay = 0;
	*failures_r = 0;
	pthread_mutex_lock(&p->lock);
	const struct config *cfg = p->cfg;
	if (cfg->limits_auth_penalty == 0) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	struct lru_entry *e = lru_get(&p->penalty, k->penalty, lru_now());
	if (e != NULL) {
		struct penalty_entry *pe = lru_payload(e);
		*failures_r = pe->failures;
		if (pe->failures > 0) {
			uint64_t max = (uint64_t)cfg->limits_auth_penalty_max *
				       1000;
			delay = (uint64_t)cfg->limits_auth_penalty * 1000;
			for (unsigned i = 1; i < pe->failures && delay < max;
			     i++)
				delay *= 2;
			if (delay > max)
				delay = max;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return delay;
}

void
penalty_record(struct policy *p, const struct policy_login_keys *k,
	       int failed)
{
	uint64_t now = lru_now();
	pthread_mutex_lock(&p->lock);
	const struct config *cfg = p->cfg;
	struct lru_entry *e = lru_get(&p->penalty, k->penalty, now);
	if (!failed) {
		if (e != NULL)
			lru_del(&p->penalty, e);
	} else if (cfg->limits_auth_penalty > 0) {
		if (e == NULL)
			e = lru_put(&p->penalty, k->penalty, now);
		struct penalty_entry *pe = lru_payload(e);
		if (pe->failures == 0 ||
		    memcmp(pe->last_password, k->password,
			   sizeof(pe->last_password)) != 0) {
			if (pe->failures < 64)
				pe->failures++;
			memcpy(pe->last_password, k->password,
			       sizeof(pe->last_password));
		}
		e->expires = now + (uint64_t)cfg->limits_auth_penalty_expire *
					   1000;
	}
	pthread_mutex_unlock(&p->lock);
}
