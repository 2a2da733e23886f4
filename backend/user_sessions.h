/* user_sessions.h - sessions per account on this backend
 * (backend.max_sessions_per_user).
 *
 * A frontend counts the sessions of an account that it carries itself
 * (limits.max_connections_per_user); the account's backend sees them all,
 * through every frontend, and is where one limit holds for the account.
 * Keyed by the directory's mailbox id; one thread (the backend's loop).
 */
#ifndef PORTICO_USER_SESSIONS_H
#define PORTICO_USER_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

struct user_count;

struct user_sessions {
	struct user_count **buckets;
	size_t nbuckets;  /* a power of two, or 0 */
	size_t accounts;  /* with at least one session */
	uint64_t refused; /* acquires over the limit (metrics) */
};

/* Counts a session of mailbox_id: 0, or -1 (nothing counted) when the
 * account has max already (max 0: no limit). */
int user_sessions_acquire(struct user_sessions *t, const char *mailbox_id,
			  uint64_t max);
/* Undoes one acquire. */
void user_sessions_release(struct user_sessions *t, const char *mailbox_id);
/* Sessions of mailbox_id now. */
unsigned user_sessions_count(const struct user_sessions *t,
			     const char *mailbox_id);
void user_sessions_free(struct user_sessions *t);

#endif
