/* directory.h - users and backends in LDAP, asynchronously on the loop.
 *
 * Authentication is a search as the service account (the login name is
 * escaped per RFC 4515, never a filter) followed by a simple bind as the
 * user's DN with the password, so the frontend never sees a hash.  Every
 * libldap call made here is non-blocking: sockets are connected by this
 * module and handed to libldap (ldap_init_fd), results are collected with
 * a zero timeout when the socket is readable.
 *
 * Several URIs may be configured; a connection that fails moves to the
 * next.  While every directory is down requests fail at once with
 * DIR_TEMPFAIL, and the next request after ldap.retry_interval tries
 * again.
 */
#ifndef PORTICO_DIRECTORY_H
#define PORTICO_DIRECTORY_H

#include <uv.h>

#include "common/config.h"

enum dir_result {
	DIR_OK,
	DIR_FAIL,     /* unknown user or wrong password */
	DIR_TEMPFAIL, /* directory unreachable, slow or misconfigured */
	DIR_RESULT_COUNT
};

struct dir_user {
	char dn[512];
	char uid[256];
	char mail[256];
	char mailbox_server[64];
	char mailbox_id[128];
	char account_state[32];
	/* Every value of mail (the address and its aliases), each ended by
	   a NUL, the list by an empty string; what fits. */
	char addresses[1024];
	int imap_enabled;
	int pop3_enabled;
	int smtp_enabled;
	int privileged;   /* carries ldap.privileged_attribute */
	/* porticoQuotaStorage, porticoQuotaMessages (0: no limit), each when
	   the entry has it; the backend takes them over at login */
	int quota_storage_set, quota_messages_set;
	uint64_t quota_storage, quota_messages;
	/* porticoImapCapabilityOff: IMAP capabilities switched off for the
	   account, upper case, separated by spaces; what fits */
	char imap_caps_off[128];
	/* Recipient lookups only (dir_lookup_recipient): the automatic
	   reply, NULL when the entry has none; valid during the callback
	   (dir_auto_reply_copy() keeps it). */
	const struct dir_auto_reply *auto_reply;
	/* ... and where its mail is forwarded, NULL when the entry has no
	   porticoForwardAddress (dir_forward_copy() keeps it). */
	const struct dir_forward *forward;
};

/* Where an account's mail is forwarded (porticoForwardAddress) and
 * whether the INBOX keeps a copy (porticoForwardKeep, TRUE when absent).
 * The backend queues the copy it forwards in the transaction that
 * delivers the message. */
struct dir_forward {
	char **to; /* the addresses, as in the directory */
	size_t n;
	int keep;
	/* Why the mail is not forwarded after all, though the entry has
	   addresses (more than lmtp.forward_max_addresses, one that is not
	   an address): NULL when it is on.  Such mail is kept. */
	const char *off;
	/* In a copy: the entry's addresses (dir_user's list), and a
	   pointer to each */
	char *addresses;
	char **address_v;
	size_t naddresses;
};
/* u's forwarding with its addresses, to keep: NULL when it has none. */
struct dir_forward *dir_forward_copy(const struct dir_user *u);
void dir_forward_free(struct dir_forward **fw);

/* An account's automatic reply (RFC 3834), from porticoAutoReplyText,
 * porticoAutoReplySubject, porticoAutoReplyStart and porticoAutoReplyEnd.
 * The backend decides at delivery whether a message gets it. */
struct dir_auto_reply {
	char *text;          /* UTF-8, as in the directory */
	char *subject;       /* "" none */
	int64_t start, end;  /* unix time, 0 none */
	/* Why there is none after all, though the entry has a text (over
	   lmtp.auto_reply_max_size, not UTF-8, a time that does not parse):
	   NULL when it is on. */
	const char *off;
	/* In a copy: the entry's addresses (dir_user's list), and a
	   pointer to each */
	char *addresses;
	char **address_v;
	size_t naddresses;
};
/* Longest porticoAutoReplySubject taken (the schema's bound is 256
 * characters). */
#define DIR_AUTO_REPLY_SUBJECT_MAX 1024
/* LDAP GeneralizedTime (RFC 4517 3.3.13) to unix time: 0, or -1.
 * (ldap_escape.c) */
int dir_generalized_time(const char *s, size_t len, int64_t *t_r);
/* Unix time t in UTC into out, as a GeneralizedTime
 * ("20261224000000Z"), or with day its day ("2026-12-24"); "" for 0.
 * (ldap_escape.c) */
void dir_time_format(int64_t t, int day, char *out, size_t outsize);
/* u's automatic reply with its addresses, to keep: NULL when it has
 * none. */
struct dir_auto_reply *dir_auto_reply_copy(const struct dir_user *u);
void dir_auto_reply_free(struct dir_auto_reply **ar);

struct dir_backend {
	char id[64];
	int site;
	char link_address[128];
};

struct directory;
struct dir_req;

/* user: the entry on DIR_OK; on DIR_FAIL of an authentication, the entry
 * whose bind failed (wrong password), NULL if none was found; else
 * NULL. */
typedef void dir_auth_cb(void *ctx, enum dir_result res,
			 const struct dir_user *user, const char *why);
typedef void dir_backend_cb(void *ctx, enum dir_result res,
			    const struct dir_backend *be, const char *why);

/* The directory's servers (ldap.uris, each name resolved) and the TLS
 * context ldap.tls_ca_file and ldap.starttls ask for: made once per
 * process, outside the event loops, and shared by every loop's directory
 * (reference counted; never changed once made).  NULL after saying why in
 * *error_r (a name that does not resolve, a CA file that does not load). */
struct dir_target;
struct dir_target *dir_target_load(const struct config *cfg,
				   const char **error_r);
/* Whether t was made from cfg's ldap.uris, tls_ca_file and starttls. */
int dir_target_matches(const struct dir_target *t, const struct config *cfg);
struct dir_target *dir_target_ref(struct dir_target *t);
void dir_target_unref(struct dir_target **t);

/* A loop's directory, on target (which it keeps a reference to). */
int dir_create(uv_loop_t *loop, const struct config *cfg,
	       struct dir_target *target, struct directory **dir_r,
	       const char **error_r);
/* Cancels what is pending and closes the connections (asynchronously). */
void dir_shutdown(struct directory *dir);
/* Whether cfg's ldap.uris are well-formed ldap:// or ldaps:// URIs (at
 * start, --check and before a reload is taken; names are resolved and
 * ldap.tls_ca_file read by dir_target_load()). */
int dir_config_check(const struct config *cfg, const char **error_r);
/* After a reload (target: the process's newest, NULL when none could be
 * made): on a new target, or when ldap.bind_dn or ldap.bind_password
 * changed, the connections are made again with them, each once nothing
 * is in flight on it; binds take the first ldap.auth_connections
 * connections, and any beyond close once idle. */
void dir_reconfigure(struct directory *dir, struct dir_target *target);
/* Frees the directory once the loop has closed its handles. */
void dir_free(struct directory **dir);

/* Starts an authentication.  The callback runs later, never from inside
 * this call.  Returns a handle for dir_cancel(). */
struct dir_req *dir_authenticate(struct directory *d, const char *login,
				 const char *password, dir_auth_cb *cb,
				 void *ctx);
/* An authentication that, once the password is right, changes the
 * account's automatic reply with the user's own rights (the settings
 * page): set's text, subject, start and end (0 none) replace the four
 * attributes, a text of "" removes them all.  The callback gets the
 * authentication's result; on DIR_OK, why is NULL when the change was
 * made, else why it was not (the directory's access rules, an error). */
struct dir_req *dir_authenticate_auto_reply(struct directory *d,
					    const char *login,
					    const char *password,
					    const struct dir_auto_reply *set,
					    dir_auth_cb *cb, void *ctx);
/* The user whose mail attribute (address or alias) is address, without
 * authenticating (LMTP recipients): DIR_FAIL if there is none. */
struct dir_req *dir_lookup_address(struct directory *d, const char *address,
				   dir_auth_cb *cb, void *ctx);
/* The same, for an LMTP recipient: the entry's automatic reply too. */
struct dir_req *dir_lookup_recipient(struct directory *d, const char *address,
				     dir_auth_cb *cb, void *ctx);
/* Whether address is one of u's addresses (case-insensitive). */
int dir_user_has_address(const struct dir_user *u, const char *address);
struct dir_req *dir_lookup_backend(struct directory *d, const char *id,
				   dir_backend_cb *cb, void *ctx);
/* The callback of r will not run. */
void dir_cancel(struct dir_req *r);

/* RFC 4515 escaping of a value for a search filter into out; returns -1
 * if out is too small. (ldap_escape.c) */
int ldap_filter_escape(const char *in, size_t len, char *out, size_t outsize);

#endif
