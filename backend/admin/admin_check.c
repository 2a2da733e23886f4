/* admin_check.c - portico-admin check: the store's invariants.
 *
 * check exits 0 when the store is consistent, 1 when it found a violation
 * (each printed on a line of its own, starting with VIOLATION) or could
 * not read the store.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "backend/admin/admin.h"
#include "backend/transport/queue.h"
#include "queue.pb-c.h"

/* -- check: the store's invariants -----------------------------------------
 *
 * One read transaction, so the check sees one committed state even while
 * the backend runs.  For each user (one, or every one with --all), each
 * mailbox: UIDs in 1 .. uidnext-1 and increasing; the messages, unseen and
 * size counters equal to what the messages hold; no modseq above
 * highestmodseq, and the modseq index holding one entry per message that
 * names it, and nothing else; expunge records only for UIDs that are
 * gone; keyword bits only for keywords the mailbox has; a \Noselect
 * mailbox empty; the mailbox id mapped back to the mailbox.  Each body a
 * message points at exists, is as long as the message record says, is
 * found by its hash, and has a reference count equal to the number of
 * messages (in the whole store) pointing at it.  The user's usage record
 * equals the sum over the mailboxes.  With --all also every record that
 * belongs to nothing: bodies no message points at, reference counts,
 * structures and hashes of missing bodies, messages, index, expunge and
 * keyword records of missing mailboxes, mailboxes of missing users. */

#define CHECK_MAX_REPORTS 1000
/* Keys and the values copied here are at most LMDB's 511-byte key limit
 * (mboxids values are mailbox keys). */
#define CHECK_MAX_KEY 511

struct u64s {
	uint64_t *v;
	size_t n, cap;
};

struct check {
	struct store *st;
	MDB_txn *txn;
	int all;
	int failed; /* an LMDB error inside a walk (reported) */
	unsigned long violations;
	unsigned long users, mailboxes, messages, bodies;
	uint64_t next_user, next_mbox, next_body; /* 0: no counter yet */
	struct u64s refs;      /* body_id of every message in the store */
	struct u64s mboxes;    /* ids of the mailboxes checked */
	struct u64s user_nums; /* of the users checked */
	struct u64s my_bodies; /* bodies the checked messages point at */
	struct u64s body_ids;  /* --all: every body */
	struct u64s queue_ids; /* --all: every queue entry */
	uint64_t next_queue;
	uint64_t deliveries, deliveryage; /* --all: record counts */
	char where[600];       /* what is being checked, for the report */
};

static void check_violation(struct check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
check_violation(struct check *c, const char *fmt, ...)
{
	va_list ap;
	if (++c->violations > CHECK_MAX_REPORTS)
		return;
	printf("VIOLATION %s%s", c->where, c->where[0] ? ": " : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static uint64_t
get64(const void *p)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static uint32_t
get32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
u64s_add(struct u64s *a, uint64_t v)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		if (a->v == NULL)
			abort();
	}
	a->v[a->n++] = v;
}

static int
u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void
u64s_sort(struct u64s *a)
{
	if (a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), u64_cmp);
}

/* How many times v occurs in the sorted array a. */
static size_t
u64s_count(const struct u64s *a, uint64_t v)
{
	size_t lo = 0, hi = a->n, n = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->v[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + n < a->n && a->v[lo + n] == v)
		n++;
	return n;
}

static void
u64s_free(struct u64s *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static int
check_walk(struct check *c, const char *db, const void *prefix, size_t plen,
	   store_walk_fn *fn, void *ctx)
{
	const char *err;
	if (store_walk(c->st, c->txn, db, prefix, plen, fn, ctx, &err) < 0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return -1;
	}
	return 0;
}

/* The value of the one record whose key is exactly key[0..klen). */
struct exact {
	size_t klen;
	int found;
	size_t vlen;
	uint8_t v[CHECK_MAX_KEY + 1];
};

static int
exact_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct exact *e = ctx;
	if (kl != e->klen)
		return 0;
	e->found = 1;
	e->vlen = vl;
	memcpy(e->v, v, vl < sizeof(e->v) ? vl : sizeof(e->v));
	return 1;
}

static int
check_get(struct check *c, const char *db, const void *key, size_t klen,
	  struct exact *e)
{
	memset(e, 0, sizeof(*e));
	e->klen = klen;
	return check_walk(c, db, key, klen, exact_fn, e);
}

static uint64_t
check_counter(struct check *c, const char *name)
{
	struct exact e;
	uint64_t v = 0;
	if (check_get(c, "meta", name, strlen(name), &e) == 0 && e.found &&
	    e.vlen == sizeof(v))
		memcpy(&v, e.v, sizeof(v));
	return v;
}

/* Every message of the store: the body references. */
static int
all_messages_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	struct store_msg_rec m;
	if (kl != 12 || vl != sizeof(m)) {
		check_violation(c, "messages: a record with a %zu-byte key "
				   "and a %zu-byte value",
				kl, vl);
		return 0;
	}
	memcpy(&m, v, sizeof(m));
	u64s_add(&c->refs, m.body_id);
	return 0;
}

struct pair {
	uint64_t key; /* modseq, or uid */
	uint64_t val; /* uid, or modseq */
};

struct pairs {
	struct check *c;
	const char *db;
	size_t klen, vlen;
	struct pair *p;
	size_t n, cap;
};

/* modseqs: mbox | modseq -> uid (host order); expunged: mbox | modseq |
 * uid -> "" (its bookkeeping record, mbox | 0, is check_expunged()'s):
 * key uid and modseq as val for both. */
static int
pairs_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct pairs *ps = ctx;
	if (ps->klen == 20 && kl == 16)
		return 0;
	if (kl != ps->klen || vl != ps->vlen) {
		check_violation(ps->c, "%s: a record with a %zu-byte key and "
				       "a %zu-byte value",
				ps->db, kl, vl);
		return 0;
	}
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 64;
		ps->p = realloc(ps->p, ps->cap * sizeof(*ps->p));
		if (ps->p == NULL)
			abort();
	}
	struct pair *p = &ps->p[ps->n++];
	if (kl == 16) {
		uint32_t uid;
		memcpy(&uid, v, 4);
		p->key = get64((const uint8_t *)k + 8);
		p->val = uid;
	} else {
		p->key = get32((const uint8_t *)k + 16);
		p->val = get64((const uint8_t *)k + 8);
	}
	return 0;
}

static const struct store_msg *
find_uid(const struct store_msg *msgs, size_t n, uint64_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (msgs[mid].uid == uid)
			return &msgs[mid];
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct pair *
find_pair(const struct pair *p, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p[mid].key == key)
			return &p[mid];
		if (p[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
check_mailbox(struct check *c, const char *user, uint64_t user_num,
	      const struct store_mailbox_info *mi, uint64_t *size_sum,
	      uint64_t *msgs_sum)
{
	const struct store_mailbox_rec *r = &mi->rec;
	const char *err;
	snprintf(c->where, sizeof(c->where), "user=%s mailbox=%s", user,
		 mi->name);
	c->mailboxes++;
	u64s_add(&c->mboxes, r->mbox_id);
	if (c->next_mbox != 0 && r->mbox_id >= c->next_mbox)
		check_violation(c, "mailbox id %llu is not below the next id "
				   "%llu",
				(unsigned long long)r->mbox_id,
				(unsigned long long)c->next_mbox);

	/* mboxids: the id leads back to this mailbox. */
	uint8_t idkey[8], mkey[CHECK_MAX_KEY + 1];
	size_t nlen = strlen(mi->name);
	put64(idkey, r->mbox_id);
	put64(mkey, user_num);
	memcpy(mkey + 8, mi->name, nlen < CHECK_MAX_KEY - 8 ? nlen
							    : CHECK_MAX_KEY - 8);
	struct exact e;
	if (check_get(c, "mboxids", idkey, 8, &e) < 0)
		return -1;
	if (!e.found)
		check_violation(c, "mailbox id %llu has no mboxids entry",
				(unsigned long long)r->mbox_id);
	else if (e.vlen != nlen + 8 || memcmp(e.v, mkey, nlen + 8) != 0)
		check_violation(c, "mboxids entry of mailbox id %llu names "
				   "another mailbox",
				(unsigned long long)r->mbox_id);

	/* Keyword names: NUL-terminated, at most STORE_MAX_KEYWORDS. */
	const char *kw;
	size_t kwlen, nkw = 0;
	if (store_keywords_get(c->st, c->txn, r->mbox_id, &kw, &kwlen, &err) <
	    0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < kwlen; i++)
		nkw += kw[i] == '\0';
	if (kwlen > 0 && kw[kwlen - 1] != '\0')
		check_violation(c, "keyword table not NUL-terminated");
	if (nkw > STORE_MAX_KEYWORDS)
		check_violation(c, "%zu keywords, more than %d", nkw,
				STORE_MAX_KEYWORDS);
	uint64_t kwmask = nkw >= 64 ? ~0ULL : (1ULL << nkw) - 1;

	struct store_msg *msgs;
	size_t n;
	if (store_messages_list(c->st, c->txn, r->mbox_id, &msgs, &n, &err) <
	    0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return -1;
	}
	uint64_t size = 0;
	uint32_t unseen = 0, prev = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_msg *m = &msgs[i];
		c->messages++;
		if (m->uid == 0 || m->uid >= r->uidnext)
			check_violation(c, "uid %u is not in 1..uidnext-1 "
					   "(uidnext %u)",
					m->uid, r->uidnext);
		if (i > 0 && m->uid <= prev)
			check_violation(c, "uid %u follows uid %u", m->uid,
					prev);
		prev = m->uid;
		if (m->rec.modseq == 0 || m->rec.modseq > r->highestmodseq)
			check_violation(c, "uid %u has modseq %llu, "
					   "highestmodseq is %llu",
					m->uid,
					(unsigned long long)m->rec.modseq,
					(unsigned long long)r->highestmodseq);
		if (m->rec.keywords & ~kwmask)
			check_violation(c, "uid %u has keyword bits %#llx, the "
					   "mailbox has %zu keywords",
					m->uid,
					(unsigned long long)m->rec.keywords,
					nkw);
		const char *data;
		size_t len;
		if (store_body_get(c->st, c->txn, m->rec.body_id, &data, &len,
				   &err) < 0)
			check_violation(c, "uid %u: body %llu is missing",
					m->uid,
					(unsigned long long)m->rec.body_id);
		else if (m->rec.size != store_sent_size(data, len) &&
			 m->rec.size != len) /* stored before the rule */
			check_violation(c, "uid %u: size %llu but body %llu "
					   "has %zu bytes",
					m->uid, (unsigned long long)m->rec.size,
					(unsigned long long)m->rec.body_id,
					len);
		else if ((m->rec.flags & STORE_F_CRLF) &&
			 (m->rec.size != len ||
			  store_sent_size(data, len) != len))
			check_violation(c,
					"uid %u: marked as having no bare "
					"LF, but body %llu has some",
					m->uid,
					(unsigned long long)m->rec.body_id);
		if (m->rec.flags & ~(STORE_F_SYSTEM | STORE_F_CRLF))
			check_violation(c, "uid %u has unknown flag bits %#x",
					m->uid, m->rec.flags);
		u64s_add(&c->my_bodies, m->rec.body_id);
		size += m->rec.size;
		unseen += !(m->rec.flags & STORE_F_SEEN);
	}
	if (r->messages != n)
		check_violation(c, "messages counter %u, the mailbox holds "
				   "%zu",
				r->messages, n);
	if (r->unseen != unseen)
		check_violation(c, "unseen counter %u, %u messages are "
				   "unseen",
				r->unseen, unseen);
	if (r->size != size)
		check_violation(c, "size counter %llu, the messages take "
				   "%llu bytes",
				(unsigned long long)r->size,
				(unsigned long long)size);
	if (r->noselect && n > 0)
		check_violation(c, "\\Noselect mailbox holds %zu messages", n);
	*size_sum += size;
	*msgs_sum += n;

	/* The modseq index: one entry per message, naming it. */
	struct pairs ix = {c, "modseqs", 16, 4, NULL, 0, 0};
	struct pairs ex = {c, "expunged", 20, 0, NULL, 0, 0};
	if (check_walk(c, "modseqs", idkey, 8, pairs_fn, &ix) < 0 ||
	    check_walk(c, "expunged", idkey, 8, pairs_fn, &ex) < 0) {
		free(ix.p);
		free(ex.p);
		free(msgs);
		return -1;
	}
	for (size_t i = 0; i < ix.n; i++) {
		const struct pair *p = &ix.p[i];
		const struct store_msg *m = find_uid(msgs, n, p->val);
		if (p->key > r->highestmodseq)
			check_violation(c, "modseq index entry %llu is above "
					   "highestmodseq %llu",
					(unsigned long long)p->key,
					(unsigned long long)r->highestmodseq);
		if (m == NULL)
			check_violation(c, "modseq index entry %llu names uid "
					   "%llu, which is not in the mailbox",
					(unsigned long long)p->key,
					(unsigned long long)p->val);
		else if (m->rec.modseq != p->key)
			check_violation(c, "modseq index entry %llu names uid "
					   "%u, whose modseq is %llu",
					(unsigned long long)p->key, m->uid,
					(unsigned long long)m->rec.modseq);
	}
	for (size_t i = 0; i < n; i++) {
		const struct pair *p = find_pair(ix.p, ix.n, msgs[i].rec.modseq);
		if (p == NULL)
			check_violation(c, "uid %u (modseq %llu) has no "
					   "modseq index entry",
					msgs[i].uid,
					(unsigned long long)msgs[i].rec.modseq);
		else if (p->val != msgs[i].uid)
			check_violation(c, "uid %u (modseq %llu) is not in the "
					   "modseq index: the entry names uid "
					   "%llu",
					msgs[i].uid,
					(unsigned long long)msgs[i].rec.modseq,
					(unsigned long long)p->val);
	}
	/* Expunge records: UIDs that were given out and are gone. */
	for (size_t i = 0; i < ex.n; i++) {
		const struct pair *p = &ex.p[i];
		if (p->key == 0 || p->key >= r->uidnext)
			check_violation(c, "expunge record for uid %llu, "
					   "uidnext is %u",
					(unsigned long long)p->key,
					r->uidnext);
		if (find_uid(msgs, n, p->key) != NULL)
			check_violation(c, "uid %llu is both present and "
					   "expunged",
					(unsigned long long)p->key);
		if (p->val > r->highestmodseq)
			check_violation(c, "uid %llu expunged at modseq %llu, "
					   "above highestmodseq %llu",
					(unsigned long long)p->key,
					(unsigned long long)p->val,
					(unsigned long long)r->highestmodseq);
	}
	free(ix.p);
	free(ex.p);
	free(msgs);
	return 0;
}

static int
check_user(struct check *c, const char *user,
	   const struct store_user_rec *u)
{
	const char *err;
	struct store_mailbox_info *list;
	size_t n;
	snprintf(c->where, sizeof(c->where), "user=%s", user);
	c->users++;
	u64s_add(&c->user_nums, u->user_num);
	if (c->next_user != 0 && u->user_num >= c->next_user)
		check_violation(c, "user number %llu is not below the next "
				   "number %llu",
				(unsigned long long)u->user_num,
				(unsigned long long)c->next_user);
	if (store_mailboxes_list(c->st, c->txn, u->user_num, &list, &n,
				 &err) < 0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return -1;
	}
	uint64_t size = 0, msgs = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = check_mailbox(c, user, u->user_num, &list[i], &size,
				   &msgs);
	store_mailboxes_free(list, n);
	if (rc < 0)
		return -1;
	snprintf(c->where, sizeof(c->where), "user=%s", user);
	uint64_t usize, umsgs;
	if (store_usage_get(c->st, c->txn, u->user_num, &usize, &umsgs,
			    &err) < 0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return -1;
	}
	if (usize != size || umsgs != msgs)
		check_violation(c, "usage record says %llu messages, %llu "
				   "bytes; the mailboxes hold %llu, %llu",
				(unsigned long long)umsgs,
				(unsigned long long)usize,
				(unsigned long long)msgs,
				(unsigned long long)size);
	struct store_quota q;
	int qrc = store_quota_own(c->st, c->txn, u->user_num, &q, &err);
	if (qrc < 0)
		check_violation(c, "quota record: %s", err);
	else if (qrc == 1 && q.source != STORE_QUOTA_ADMIN &&
		 q.source != STORE_QUOTA_DIRECTORY)
		check_violation(c, "quota record of unknown source %llu",
				(unsigned long long)q.source);
	return 0;
}

/* Quota ("q"), last login ("l"), quota warning ("w") and automatic reply
 * ("r") records (| user_num in meta) of users that are not there, or cut
 * short. */
static int
user_meta_orphan_fn(void *ctx, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	struct check *c = ctx;
	if (kl != 9)
		return 0; /* another meta record starting with that letter */
	char kind = *(const char *)k;
	const char *what = kind == 'q'   ? "quota"
			   : kind == 'l' ? "last login"
			   : kind == 'w' ? "quota warning"
					 : "automatic reply";
	uint64_t user_num = get64((const uint8_t *)k + 1);
	if ((kind == 'l' && vl != 8) || (kind == 'w' && vl != 4) ||
	    (kind == 'r' && (vl == 0 || vl % STORE_AUTO_REPLY_ENTRY != 0))) {
		c->where[0] = '\0';
		check_violation(c, "%s record of user number %llu of %zu bytes",
				what, (unsigned long long)user_num, vl);
	}
	(void)v;
	if (u64s_count(&c->user_nums, user_num) == 0) {
		c->where[0] = '\0';
		check_violation(c,
				"%s record of user number %llu, which "
				"does not exist",
				what, (unsigned long long)user_num);
	}
	return 0;
}

/* One body: found by its hash, counted right, below the next id. */
static int
check_body(struct check *c, uint64_t id, const void *data, size_t len)
{
	snprintf(c->where, sizeof(c->where), "body=%llu",
		 (unsigned long long)id);
	c->bodies++;
	uint8_t key[8];
	put64(key, id);
	size_t count = u64s_count(&c->refs, id);
	struct exact e;
	if (check_get(c, "bodyrefs", key, 8, &e) < 0)
		return -1;
	uint32_t refs = 0;
	if (!e.found)
		check_violation(c, "no reference count (%zu messages point "
				   "at it)",
				count);
	else if (e.vlen != sizeof(refs))
		check_violation(c, "reference count of %zu bytes", e.vlen);
	else {
		memcpy(&refs, e.v, sizeof(refs));
		if (refs != count)
			check_violation(c, "reference count %u, %zu messages "
					   "point at it",
					refs, count);
	}
	if (count == 0)
		check_violation(c, "orphan body: no message points at it");
	if (c->next_body != 0 && id >= c->next_body)
		check_violation(c, "body id is not below the next id %llu",
				(unsigned long long)c->next_body);
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256(data, len, hash);
	if (check_get(c, "bodyhash", hash, sizeof(hash), &e) < 0)
		return -1;
	if (!e.found)
		check_violation(c, "no bodyhash entry");
	else if (e.vlen != 8 || memcmp(e.v, key, 8) != 0)
		check_violation(c, "its bodyhash entry names another body");
	return 0;
}

static int
all_bodies_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	if (kl != 8) {
		c->where[0] = '\0';
		check_violation(c, "bodies: a record with a %zu-byte key", kl);
		return 0;
	}
	u64s_add(&c->body_ids, get64(k));
	if (check_body(c, get64(k), v, vl) < 0) {
		c->failed = 1;
		return 1;
	}
	return 0;
}

/* Records keyed by an 8-byte id that must name something in set. */
struct owned {
	struct check *c;
	const char *db;
	const char *what; /* "mailbox", "user", "body" */
	const struct u64s *set;
	uint64_t last;    /* last id reported, to report each once */
	int reported;
};

static int
owned_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct owned *o = ctx;
	o->c->where[0] = '\0';
	if (kl < 8) {
		check_violation(o->c, "%s: a record with a %zu-byte key",
				o->db, kl);
		return 0;
	}
	uint64_t id = get64(k);
	if (u64s_count(o->set, id) > 0 || (o->reported && o->last == id))
		return 0;
	o->last = id;
	o->reported = 1;
	check_violation(o->c, "%s: records of %s %llu, which does not exist",
			o->db, o->what, (unsigned long long)id);
	return 0;
}

/* bodyhash: SHA-256 -> body id (big-endian) of an existing body with
 * those bytes. */
static int
bodyhash_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	c->where[0] = '\0';
	if (kl != SHA256_DIGEST_LENGTH || vl != 8) {
		check_violation(c, "bodyhash: a record with a %zu-byte key and "
				   "a %zu-byte value",
				kl, vl);
		return 0;
	}
	uint64_t id = get64(v);
	const char *data, *err;
	size_t len;
	if (u64s_count(&c->body_ids, id) == 0 ||
	    store_body_get(c->st, c->txn, id, &data, &len, &err) < 0) {
		check_violation(c, "bodyhash: entry for body %llu, which does "
				   "not exist",
				(unsigned long long)id);
		return 0;
	}
	uint8_t hash[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)data, len, hash);
	if (memcmp(hash, k, sizeof(hash)) != 0)
		check_violation(c, "bodyhash: an entry for body %llu under "
				   "another hash",
				(unsigned long long)id);
	return 0;
}

struct users_list {
	char **ids;
	struct store_user_rec *recs;
	size_t n, cap;
	struct check *c;
};

static int
users_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct users_list *l = ctx;
	if (vl != sizeof(struct store_user_rec)) {
		snprintf(l->c->where, sizeof(l->c->where), "user=%.*s",
			 (int)(kl < 256 ? kl : 256), (const char *)k);
		check_violation(l->c, "user record of %zu bytes", vl);
		return 0;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->ids = realloc(l->ids, l->cap * sizeof(*l->ids));
		l->recs = realloc(l->recs, l->cap * sizeof(*l->recs));
		if (l->ids == NULL || l->recs == NULL)
			abort();
	}
	l->ids[l->n] = strndup(k, kl);
	if (l->ids[l->n] == NULL)
		abort();
	memcpy(&l->recs[l->n], v, vl);
	l->n++;
	return 0;
}

/* A transport queue entry (queue.h): it parses, names itself, has
 * recipients of which one at least is pending, and its message. */
static int
queue_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	if (kl != 8) {
		check_violation(c, "queue: a record with a %zu-byte key", kl);
		return 0;
	}
	uint64_t id = get64(k);
	char qid[32];
	queue_id_format(id, qid, sizeof(qid));
	snprintf(c->where, sizeof(c->where), "queue %s", qid);
	u64s_add(&c->queue_ids, id);
	Portico__QueueEntry *qe = portico__queue_entry__unpack(NULL, vl, v);
	if (qe == NULL) {
		check_violation(c, "the entry does not parse");
		return 0;
	}
	if (qe->id != id)
		check_violation(c, "the entry says it is %016llX",
				(unsigned long long)qe->id);
	if (c->next_queue == 0 || id >= c->next_queue)
		check_violation(c, "id not below the next_queue counter (%llu)",
				(unsigned long long)c->next_queue);
	if (qe->n_rcpt == 0)
		check_violation(c, "no recipients");
	size_t pending = 0;
	for (size_t i = 0; i < qe->n_rcpt; i++) {
		int st = qe->rcpt[i]->state;
		if (st == PORTICO__RCPT_STATE__RCPT_PENDING)
			pending++;
		else if (st != PORTICO__RCPT_STATE__RCPT_DELIVERED &&
			 st != PORTICO__RCPT_STATE__RCPT_RELAYED &&
			 st != PORTICO__RCPT_STATE__RCPT_FAILED)
			check_violation(c, "recipient %zu has state %d", i, st);
	}
	if (qe->n_rcpt > 0 && pending == 0)
		check_violation(c, "every recipient is settled but the entry "
				   "is still queued");
	if (qe->mailbox_id[0] == '\0')
		check_violation(c, "no sender mailbox id");
	portico__queue_entry__free_unpacked(qe, NULL);
	struct exact e;
	if (check_get(c, "queuemsg", k, 8, &e) < 0)
		return 1;
	if (!e.found)
		check_violation(c, "no message (queuemsg)");
	return 0;
}

static int
queuemsg_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	c->where[0] = '\0';
	if (kl != 8) {
		check_violation(c, "queuemsg: a record with a %zu-byte key",
				kl);
		return 0;
	}
	if (u64s_count(&c->queue_ids, get64(k)) == 0)
		check_violation(c, "queuemsg %016llX: no queue entry",
				(unsigned long long)get64(k));
	return 0;
}

static int
check_queue(struct check *c)
{
	c->next_queue = check_counter(c, "next_queue");
	if (check_walk(c, "queue", NULL, 0, queue_fn, c) < 0)
		return -1;
	u64s_sort(&c->queue_ids);
	return check_walk(c, "queuemsg", NULL, 0, queuemsg_fn, c);
}

/* Expunge records (store_expunged.c): per mailbox a bookkeeping record
 * first, then one per expunge, as many as it says. */
struct exp_walk {
	struct check *c;
	uint64_t mbox, said, seen;
	int have_meta;
};

static void
exp_mailbox_done(struct exp_walk *w)
{
	if (w->mbox == 0)
		return;
	snprintf(w->c->where, sizeof(w->c->where), "mailbox %llu",
		 (unsigned long long)w->mbox);
	if (!w->have_meta)
		check_violation(w->c, "expunged: %llu records without their "
				      "bookkeeping record",
				(unsigned long long)w->seen);
	else if (w->said != w->seen)
		check_violation(w->c, "expunged: %llu records, the bookkeeping "
				      "says %llu",
				(unsigned long long)w->seen,
				(unsigned long long)w->said);
}

static int
expunged_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct exp_walk *w = ctx;
	if (kl != 16 && kl != 20) {
		w->c->where[0] = '\0';
		check_violation(w->c, "expunged: a record with a %zu-byte key",
				kl);
		return 0;
	}
	uint64_t mbox = get64(k);
	if (mbox != w->mbox) {
		exp_mailbox_done(w);
		w->mbox = mbox;
		w->have_meta = 0;
		w->said = w->seen = 0;
	}
	if (kl == 16) {
		if (get64((const uint8_t *)k + 8) != 0 || vl != 16)
			check_violation(w->c, "expunged: a malformed "
					      "bookkeeping record");
		else
			w->said = get64((const uint8_t *)v + 8);
		w->have_meta = 1;
	} else {
		w->seen++;
	}
	return 0;
}

static int
check_expunged(struct check *c)
{
	struct exp_walk w = {.c = c};
	if (check_walk(c, "expunged", NULL, 0, expunged_fn, &w) < 0)
		return -1;
	exp_mailbox_done(&w);
	return 0;
}

/* Delivery records: each one has its expiry record with the same time,
 * and the other way round. */
static int
deliveries_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	c->where[0] = '\0';
	c->deliveries++;
	if (kl != STORE_DELIVERY_KEY || vl != 8) {
		check_violation(c, "deliveries: a record with a %zu-byte key "
				   "and a %zu-byte value",
				kl, vl);
		return 0;
	}
	uint8_t age[8 + STORE_DELIVERY_KEY];
	memcpy(age, v, 8);
	memcpy(age + 8, k, STORE_DELIVERY_KEY);
	struct exact e;
	if (check_get(c, "deliveryage", age, sizeof(age), &e) < 0)
		return 1;
	if (!e.found)
		check_violation(c, "deliveries: a record without its "
				   "deliveryage record");
	return 0;
}

static int
deliveryage_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	c->where[0] = '\0';
	c->deliveryage++;
	if (kl != 8 + STORE_DELIVERY_KEY)
		check_violation(c, "deliveryage: a record with a %zu-byte key",
				kl);
	return 0;
}

static int
check_deliveries(struct check *c)
{
	if (check_walk(c, "deliveries", NULL, 0, deliveries_fn, c) < 0 ||
	    check_walk(c, "deliveryage", NULL, 0, deliveryage_fn, c) < 0)
		return -1;
	if (c->deliveries != c->deliveryage)
		check_violation(c, "%llu delivery records but %llu deliveryage "
				   "records",
				(unsigned long long)c->deliveries,
				(unsigned long long)c->deliveryage);
	return 0;
}

/* Kick records (store_kicks.c): a mailbox id in lower case, its time. */
static int
kicks_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct check *c = ctx;
	c->where[0] = '\0';
	const unsigned char *p = k;
	int bad = kl == 0 || kl > 127;
	for (size_t i = 0; i < kl && !bad; i++)
		bad = p[i] <= ' ' || p[i] >= 0x7f ||
		      (p[i] >= 'A' && p[i] <= 'Z');
	if (bad || vl != 8)
		check_violation(c,
				"kicks: a record with a %zu-byte key that "
				"is not a mailbox id in lower case, or a "
				"%zu-byte value",
				kl, vl);
	return 0;
}

/* The orphan checks of --all, once every user has been checked. */
static int
check_orphans(struct check *c)
{
	u64s_sort(&c->mboxes);
	u64s_sort(&c->user_nums);
	c->where[0] = '\0';
	for (size_t i = 1; i < c->user_nums.n; i++)
		if (c->user_nums.v[i] == c->user_nums.v[i - 1])
			check_violation(c, "two users have number %llu",
					(unsigned long long)c->user_nums.v[i]);
	for (size_t i = 1; i < c->mboxes.n; i++)
		if (c->mboxes.v[i] == c->mboxes.v[i - 1])
			check_violation(c, "two mailboxes have id %llu",
					(unsigned long long)c->mboxes.v[i]);
	/* Bodies: each one, then what points at bodies. */
	if (check_walk(c, "bodies", NULL, 0, all_bodies_fn, c) < 0 ||
	    c->failed)
		return -1;
	u64s_sort(&c->body_ids);
	struct owned o[] = {
		{c, "messages", "mailbox", &c->mboxes, 0, 0},
		{c, "modseqs", "mailbox", &c->mboxes, 0, 0},
		{c, "expunged", "mailbox", &c->mboxes, 0, 0},
		{c, "keywords", "mailbox", &c->mboxes, 0, 0},
		{c, "mboxids", "mailbox", &c->mboxes, 0, 0},
		{c, "mailboxes", "user", &c->user_nums, 0, 0},
		{c, "subs", "user", &c->user_nums, 0, 0},
		{c, "bodyrefs", "body", &c->body_ids, 0, 0},
		{c, "bodymeta", "body", &c->body_ids, 0, 0},
	};
	for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++)
		if (check_walk(c, o[i].db, NULL, 0, owned_fn, &o[i]) < 0)
			return -1;
	if (check_walk(c, "bodyhash", NULL, 0, bodyhash_fn, c) < 0)
		return -1;
	if (check_deliveries(c) < 0 ||
	    check_walk(c, "kicks", NULL, 0, kicks_fn, c) < 0 ||
	    check_expunged(c) < 0 ||
	    check_walk(c, "meta", "q", 1, user_meta_orphan_fn, c) < 0 ||
	    check_walk(c, "meta", "l", 1, user_meta_orphan_fn, c) < 0 ||
	    check_walk(c, "meta", "w", 1, user_meta_orphan_fn, c) < 0 ||
	    check_walk(c, "meta", "r", 1, user_meta_orphan_fn, c) < 0)
		return -1;
	return check_queue(c);
}

static int
check_store(struct store *st, const char *mailbox_id)
{
	struct check c;
	const char *err;
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.all = mailbox_id == NULL;
	if (store_read_begin(st, &c.txn, &err) < 0) {
		fprintf(stderr, "portico-admin: check: %s\n", err);
		return 1;
	}
	int rc = -1;
	c.next_user = check_counter(&c, "next_user");
	c.next_mbox = check_counter(&c, "next_mbox");
	c.next_body = check_counter(&c, "next_body");
	if (check_walk(&c, "messages", NULL, 0, all_messages_fn, &c) < 0)
		goto out;
	u64s_sort(&c.refs);
	struct users_list users = {NULL, NULL, 0, 0, &c};
	if (c.all) {
		if (check_walk(&c, "users", NULL, 0, users_fn, &users) < 0)
			goto out_users;
	} else {
		struct store_user_rec u;
		int r = store_user_get(st, c.txn, mailbox_id, &u, &err);
		if (r != 0) {
			fprintf(stderr, "portico-admin: check: %s\n",
				r > 0 ? "no such mailbox id in this store"
				      : err);
			goto out_users;
		}
		users_fn(&users, mailbox_id, strlen(mailbox_id), &u,
			 sizeof(u));
	}
	for (size_t i = 0; i < users.n; i++)
		if (check_user(&c, users.ids[i], &users.recs[i]) < 0)
			goto out_users;
	if (c.all) {
		if (check_orphans(&c) < 0)
			goto out_users;
	} else {
		/* The bodies this user's messages point at. */
		u64s_sort(&c.my_bodies);
		for (size_t i = 0; i < c.my_bodies.n; i++) {
			uint64_t id = c.my_bodies.v[i];
			const char *data;
			size_t len;
			if (i > 0 && c.my_bodies.v[i - 1] == id)
				continue;
			if (store_body_get(st, c.txn, id, &data, &len, &err) ==
				    0 &&
			    check_body(&c, id, data, len) < 0)
				goto out_users;
		}
	}
	rc = 0;
out_users:
	for (size_t i = 0; i < users.n; i++)
		free(users.ids[i]);
	free(users.ids);
	free(users.recs);
out:
	store_read_end(&c.txn);
	u64s_free(&c.refs);
	u64s_free(&c.mboxes);
	u64s_free(&c.user_nums);
	u64s_free(&c.my_bodies);
	u64s_free(&c.body_ids);
	u64s_free(&c.queue_ids);
	if (rc < 0)
		return 1;
	if (c.violations > CHECK_MAX_REPORTS)
		printf("... %lu more violations not shown\n",
		       c.violations - CHECK_MAX_REPORTS);
	printf("checked %lu users, %lu mailboxes, %lu messages, %lu bodies: "
	       "%s",
	       c.users, c.mailboxes, c.messages, c.bodies,
	       c.violations == 0 ? "consistent\n" : "");
	if (c.violations != 0)
		printf("%lu violations\n", c.violations);
	return c.violations == 0 ? 0 : 1;
}

/* check MAILBOX_ID|--all */
int
admin_check(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return ADMIN_USAGE;
	return check_store(a->st, strcmp(argv[0], "--all") == 0 ? NULL
							       : argv[0]);
}
