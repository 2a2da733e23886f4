/* mime_private.h - shared between the files of backend/mime/ only.
 *
 * Two representations:
 *  - the parse tree (struct mime_ptree), built by mime_parse_tree() in a
 *    temporary arena, mutable, pointer-based;
 *  - the blob (mime_cache.c), compact, position independent, little-endian
 *    32-bit words; struct mime_msg is a validated view over it and every
 *    output function reads only the blob.
 */
#ifndef PORTICO_MIME_PRIVATE_H
#define PORTICO_MIME_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/mime/mime.h"
#include "common/arena.h"
#include "common/buf.h"

/* A byte string; p == NULL means absent (NIL). */
struct mstr {
	const char *p;
	size_t len;
};

struct mkv {
	struct mstr name, value;
};

/* An address of an envelope list, Dovecot's encoding of groups: a group
 * starts with mailbox = group name and domain absent, and ends with all
 * four absent. */
struct maddr {
	struct mstr name, route, mailbox, domain;
};

struct maddrs {
	struct maddr *v;
	uint32_t n, cap;
};

enum mime_env_addr {
	ENV_FROM,
	ENV_SENDER,
	ENV_REPLY_TO,
	ENV_TO,
	ENV_CC,
	ENV_BCC,
	ENV_ADDR_COUNT
};

struct menv {
	struct mstr date, subject, message_id, in_reply_to;
	struct maddrs addr[ENV_ADDR_COUNT];
};

struct mpart {
	uint32_t idx, parent, depth;
	struct mpart *parent_p, *child, *last_child, *next;
	unsigned int flags;
	size_t hdr_off, body_off, end;
	uint64_t lf0, bare0; /* counters at body_off, while open */
	uint32_t lines, bare_lf;
	int seen_ct;
	unsigned int eoh_nl; /* octets of the blank line ending the header */

	struct mstr type, subtype, cte, id, desc, md5, disp, loc;
	struct mkv *ct_params, *disp_params;
	uint32_t n_ct_params, n_disp_params;
	struct mstr *langs;
	uint32_t nlangs;
	struct mstr boundary;
	struct menv *env; /* root and children of message parts */
};

struct mime_ptree {
	struct mpart **parts; /* in message order */
	uint32_t nparts, cap;
	size_t msg_size;
};

/* mime_parse.c: builds the tree of msg in a (which also holds every
 * string of it). */
void mime_parse_tree(struct arena *a, const char *msg, size_t len,
		     struct mime_ptree *tree_r);

/* mime_cache.c: appends the blob of tree to out.  Returns -1 if a table
 * outgrows 32-bit offsets. */
int mime_cache_compile(const struct mime_ptree *tree, struct buf *out);

/* -- rfc822 / MIME header value parsing (mime_rfc822.c) ------------------- */

/* Scratch buffers, reused across calls; mime_rfc822_free() releases them. */
struct mime_rfc822 {
	struct arena *a;
	struct buf tmp, key, val, comment;
};

void mime_rfc822_init(struct mime_rfc822 *r, struct arena *a);
void mime_rfc822_free(struct mime_rfc822 *r);
/* Content-Type value: type and subtype (as written) and the parameters
 * (RFC 2231 merged).  Returns -1 if the type itself was broken (type and
 * subtype hold what could be read, no parameters), -2 if it was broken
 * before any '/', else 0. */
int mime_rfc822_content_type(struct mime_rfc822 *r, const char *v, size_t len,
			     struct mstr *type_r, struct mstr *subtype_r,
			     struct mkv **params_r, uint32_t *nparams_r);
/* Content-Disposition: the token and its parameters; -1 if unreadable. */
int mime_rfc822_disposition(struct mime_rfc822 *r, const char *v, size_t len,
			    struct mstr *disp_r, struct mkv **params_r,
			    uint32_t *nparams_r);
/* Content-Transfer-Encoding token; -1 if not exactly one token. */
int mime_rfc822_cte(struct mime_rfc822 *r, const char *v, size_t len,
		    struct mstr *cte_r);
/* Content-Language list. */
void mime_rfc822_languages(struct mime_rfc822 *r, const char *v, size_t len,
			   struct mstr **langs_r, uint32_t *nlangs_r);
/* An address-list header, Dovecot's message_address_parse() with
 * FILL_MISSING; at most MIME_MAX_ADDRESSES entries. */
void mime_rfc822_addresses(struct mime_rfc822 *r, const char *v, size_t len,
			   struct maddrs *addrs_r);

/* -- the blob (mime_cache.c) ---------------------------------------------- */

#define MIME_BLOB_MAGIC "PMIM"
#define MIME_BLOB_HDR 40

/* Words of a part record. */
enum {
	P_PARENT,
	P_CHILD,
	P_NEXT,
	P_FLAGS,
	P_HDR_OFF,
	P_BODY_OFF,
	P_END,
	P_BARE_LF,
	P_LINES,
	P_TYPE,
	P_SUBTYPE,
	P_CT_PARAMS,
	P_CT_NPARAMS,
	P_CTE,
	P_ID,
	P_DESC,
	P_MD5,
	P_DISP,
	P_DISP_PARAMS,
	P_DISP_NPARAMS,
	P_LANGS,
	P_NLANGS,
	P_LOCATION,
	P_ENV,
	P_DEPTH,
	P_WORDS
};

/* Words of an envelope record: four strings, then (first, count) of each
 * address list in enum mime_env_addr order. */
enum {
	E_DATE,
	E_SUBJECT,
	E_MESSAGE_ID,
	E_IN_REPLY_TO,
	E_ADDRS,
	E_WORDS = E_ADDRS + 2 * ENV_ADDR_COUNT
};

/* Words of an address record. */
enum { A_NAME, A_ROUTE, A_MAILBOX, A_DOMAIN, A_WORDS };

struct mime_msg {
	const unsigned char *blob;
	size_t blob_len;
	uint32_t msg_size, nparts, nenvs, naddrs, nrefs, strtab_len;
	const unsigned char *parts, *envs, *addrs, *refs, *strtab;
};

static inline uint32_t
mime_rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint32_t
mime_pw(const struct mime_msg *m, uint32_t part, unsigned int word)
{
	return mime_rd32(m->parts + ((size_t)part * P_WORDS + word) * 4);
}

static inline uint32_t
mime_ew(const struct mime_msg *m, uint32_t env, unsigned int word)
{
	return mime_rd32(m->envs + ((size_t)env * E_WORDS + word) * 4);
}

static inline uint32_t
mime_aw(const struct mime_msg *m, uint32_t addr, unsigned int word)
{
	return mime_rd32(m->addrs + ((size_t)addr * A_WORDS + word) * 4);
}

static inline uint32_t
mime_ref(const struct mime_msg *m, uint32_t i)
{
	return mime_rd32(m->refs + (size_t)i * 4);
}

/* String of a (validated) reference: NULL for 0. */
static inline const char *
mime_str(const struct mime_msg *m, uint32_t ref, size_t *len_r)
{
	if (ref == 0) {
		*len_r = 0;
		return NULL;
	}
	const unsigned char *p = m->strtab + (ref - 1);
	*len_r = mime_rd32(p);
	return (const char *)p + 4;
}

/* Octets of part's body as sent (bare LF counted twice). */
static inline uint64_t
mime_body_size(const struct mime_msg *m, uint32_t part)
{
	return (uint64_t)(mime_pw(m, part, P_END) -
			  mime_pw(m, part, P_BODY_OFF)) +
	       mime_pw(m, part, P_BARE_LF);
}

#endif
