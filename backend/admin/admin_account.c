/* admin_account.c - export --account and import --account: one account's
 * whole mail as one stream (proto/account.proto), so that a mailbox moves
 * to another backend with one pipe:
 *
 *   portico-admin -c OLD.ini export ID --account - |
 *       ssh NEWHOST portico-admin -c NEW.ini import ID --account -
 *
 * Export reads everything in one read transaction (a consistent copy while
 * the backend runs): every folder with its special-use, UIDVALIDITY,
 * UIDNEXT, HIGHESTMODSEQ, keyword table and expunge records (QRESYNC),
 * every message with its UID, flags, keywords, internal date, save date,
 * modseq, POP3 retrieval time and octets, the subscriptions and the
 * account's own quota.
 *
 * Import fills an account that has never had mail (provisioned here when
 * absent): each folder as it was, the messages in batches (one commit each,
 * as the other imports), then, once the end record's counts and SHA-256
 * agree with what was read, the subscriptions, the quota and the removal
 * of provisioned folders the account did not have.  A stream that is cut
 * short or damaged stops the import with exit status 1, and what it stored
 * goes again: the account is as it was before (absent, or provisioned and
 * empty), ready for the next try, unless mail came into it meanwhile (it
 * is then incomplete, to be removed and imported again, as said).  So does
 * an import stopped by SIGINT, SIGTERM or SIGHUP (an operator's ^C, a
 * shutdown, the ssh session of a move gone): it takes back what it stored,
 * then dies of the signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "account.pb-c.h"
#include "backend/admin/admin.h"
#include "backend/imap/imap.h"
#include "backend/mime/mime.h"
#include "common/buf.h"

FILE *admin_account_msgs;
#define MSGS (admin_account_msgs != NULL ? admin_account_msgs : stderr)

#define ACCOUNT_MAGIC "PORTICO-ACCOUNT 1\n"
/* A folder name below import --under's (the store's keys hold less). */
#define ACCOUNT_MAX_NAME 512
#define ACCOUNT_VERSION 1
/* A record is read whole: one larger than this (a message of more than
 * a gigabyte, or a damaged length) is refused. */
#define ACCOUNT_MAX_RECORD (1u << 30)
/* Messages go into the store in batches, as with the other imports. */
#define ACCOUNT_BATCH 1000
#define ACCOUNT_BATCH_BYTES (64u << 20)

static void
be32_put(uint8_t p[4], uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static enum store_special_use
special_use_parse(const char *s)
{
	for (int su = 0; su < STORE_SU_COUNT; su++)
		if (strcmp(store_special_use_name(su), s) == 0)
			return su;
	return STORE_SU_COUNT;
}

/* -- export ------------------------------------------------------------- */

struct acct_out {
	FILE *f;
	EVP_MD_CTX *sha;
	int failed;
};

static void
out_record(struct acct_out *o, const Portico__AccountRecord *r)
{
	size_t n = portico__account_record__get_packed_size(r);
	uint8_t *p = malloc(n + 4);
	if (p == NULL)
		abort();
	be32_put(p, (uint32_t)n);
	portico__account_record__pack(r, p + 4);
	if (r->record_case != PORTICO__ACCOUNT_RECORD__RECORD_END)
		EVP_DigestUpdate(o->sha, p, n + 4);
	if (fwrite(p, 1, n + 4, o->f) != n + 4)
		o->failed = 1;
	free(p);
}

/* The folder's keyword table as a list (pointers into names). */
static size_t
keywords_split(const char *names, size_t len, char **out)
{
	size_t k = 0;
	for (size_t off = 0; off < len && k < STORE_MAX_KEYWORDS; k++) {
		out[k] = (char *)(uintptr_t)(names + off);
		off += strnlen(names + off, len - off) + 1;
	}
	return k;
}

/* A folder's expunge records (store_walk of "expunged" under its id). */
struct expunged_list {
	uint32_t *uids;
	uint64_t *modseqs;
	size_t n, cap;
	uint64_t floor;
};

static uint64_t
get_be64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
expunged_walk(void *ctx, const void *key, size_t klen, const void *val,
	      size_t vlen)
{
	struct expunged_list *e = ctx;
	const uint8_t *k = key;
	if (klen == 16 && vlen == 16) { /* the bookkeeping: floor | count */
		e->floor = get_be64_at(val);
		return 0;
	}
	if (klen != 20)
		return 0;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->uids = realloc(e->uids, e->cap * sizeof(*e->uids));
		e->modseqs = realloc(e->modseqs, e->cap * sizeof(*e->modseqs));
		if (e->uids == NULL || e->modseqs == NULL)
			abort();
	}
	e->modseqs[e->n] = get_be64_at(k + 8);
	e->uids[e->n++] = (uint32_t)k[16] << 24 | (uint32_t)k[17] << 16 |
			  (uint32_t)k[18] << 8 | k[19];
	return 0;
}

/* Writes the account; counts in *folders_r and *messages_r. */
static int
export_account(struct store *st, MDB_txn *txn, const char *mailbox_id,
	       const char *backend_id, struct acct_out *o, size_t *folders_r,
	       uint64_t *messages_r)
{
	const char *err;
	struct store_user_rec u;
	struct store_quota q;
	char **subs = NULL;
	size_t nsubs = 0, nfolders = 0;
	struct store_mailbox_info *list = NULL;
	int rc = store_user_get(st, txn, mailbox_id, &u, &err);
	if (rc != 0) {
		fprintf(MSGS, "portico-admin: export: %s\n",
			rc < 0 ? err : "no such mailbox id in this store");
		return -1;
	}
	int has_quota = store_quota_own(st, txn, u.user_num, &q, &err);
	int64_t last_login = 0;
	unsigned warned = 0;
	uint8_t *replied = NULL;
	size_t replied_len = 0;
	if (has_quota < 0 ||
	    store_last_login_get(st, txn, u.user_num, &last_login, &err) < 0 ||
	    store_quota_warned_get(st, txn, u.user_num, &warned, &err) < 0 ||
	    store_auto_reply_get(st, txn, u.user_num, &replied, &replied_len,
				 &err) < 0 ||
	    store_subscriptions(st, txn, u.user_num, &subs, &nsubs, &err) < 0 ||
	    store_mailboxes_list(st, txn, u.user_num, &list, &nfolders, &err) <
		0) {
		fprintf(MSGS, "portico-admin: export: %s\n", err);
		store_names_free(subs, nsubs);
		free(replied);
		return -1;
	}
	Portico__AccountHeader h = PORTICO__ACCOUNT_HEADER__INIT;
	h.version = ACCOUNT_VERSION;
	h.mailbox_id = (char *)(uintptr_t)mailbox_id;
	h.backend = (char *)(uintptr_t)backend_id;
	h.exported = (int64_t)time(NULL);
	if (has_quota == 1) {
		h.has_quota = 1;
		h.quota_storage = q.storage;
		h.quota_messages = q.messages;
		h.quota_source = (uint32_t)q.source;
	}
	h.n_subscriptions = nsubs;
	h.subscriptions = subs;
	h.last_login = last_login;
	h.quota_warned = warned;
	h.auto_replied.data = replied;
	h.auto_replied.len = replied_len;
	Portico__AccountRecord r = PORTICO__ACCOUNT_RECORD__INIT;
	r.record_case = PORTICO__ACCOUNT_RECORD__RECORD_HEADER;
	r.header = &h;
	out_record(o, &r);
	store_names_free(subs, nsubs);
	free(replied);

	uint64_t total = 0;
	rc = 0;
	for (size_t i = 0; i < nfolders && rc == 0 && !o->failed; i++) {
		const struct store_mailbox_rec *mb = &list[i].rec;
		const char *names = NULL;
		size_t nlen = 0;
		char *kw[STORE_MAX_KEYWORDS];
		struct store_msg *msgs = NULL;
		size_t n = 0;
		if (store_keywords_get(st, txn, mb->mbox_id, &names, &nlen,
				       &err) < 0 ||
		    store_messages_list(st, txn, mb->mbox_id, &msgs, &n, &err) <
			0) {
			fprintf(MSGS, "portico-admin: export: %s: %s\n",
				list[i].name, err);
			rc = -1;
			break;
		}
		Portico__AccountFolder f = PORTICO__ACCOUNT_FOLDER__INIT;
		f.name = list[i].name;
		f.special_use = (char *)(uintptr_t)store_special_use_name(
		    mb->special_use);
		f.noselect = mb->noselect != 0;
		f.uidvalidity = mb->uidvalidity;
		f.uidnext = mb->uidnext;
		f.highestmodseq = mb->highestmodseq;
		f.created = mb->created;
		f.n_keywords = keywords_split(names, nlen, kw);
		f.keywords = kw;
		f.messages = (uint32_t)n;
		struct expunged_list ex = {NULL, NULL, 0, 0, 0};
		uint8_t prefix[8];
		for (int b = 0; b < 8; b++)
			prefix[b] = (uint8_t)(mb->mbox_id >> (56 - 8 * b));
		if (store_walk(st, txn, "expunged", prefix, sizeof(prefix),
			       expunged_walk, &ex, &err) < 0) {
			fprintf(MSGS, "portico-admin: export: %s: %s\n",
				list[i].name, err);
			free(msgs);
			rc = -1;
			break;
		}
		f.n_expunged_uids = f.n_expunged_modseqs = ex.n;
		f.expunged_uids = ex.uids;
		f.expunged_modseqs = ex.modseqs;
		f.expunged_floor = ex.floor;
		r.record_case = PORTICO__ACCOUNT_RECORD__RECORD_FOLDER;
		r.folder = &f;
		out_record(o, &r);
		free(ex.uids);
		free(ex.modseqs);
		for (size_t m = 0; m < n && !o->failed; m++) {
			const struct store_msg_rec *mr = &msgs[m].rec;
			const char *data;
			size_t len;
			if (store_body_get(st, txn, mr->body_id, &data, &len,
					   &err) < 0) {
				fprintf(MSGS,
					"portico-admin: export: %s uid %u: "
					"%s\n",
					list[i].name, msgs[m].uid, err);
				rc = -1;
				break;
			}
			Portico__AccountMessage am =
			    PORTICO__ACCOUNT_MESSAGE__INIT;
			am.uid = msgs[m].uid;
			am.flags = mr->flags & STORE_F_SYSTEM;
			am.keywords = mr->keywords;
			am.internaldate = mr->internaldate;
			am.savedate = mr->savedate;
			am.modseq = mr->modseq;
			am.pop3_retrieved = mr->pop3_retrieved;
			am.body.data = (uint8_t *)(uintptr_t)data;
			am.body.len = len;
			r.record_case = PORTICO__ACCOUNT_RECORD__RECORD_MESSAGE;
			r.message = &am;
			out_record(o, &r);
			total++;
		}
		free(msgs);
	}
	store_mailboxes_free(list, nfolders);
	if (rc != 0)
		return -1;
	uint8_t digest[SHA256_DIGEST_LENGTH];
	EVP_DigestFinal_ex(o->sha, digest, NULL);
	Portico__AccountEnd e = PORTICO__ACCOUNT_END__INIT;
	e.folders = (uint32_t)nfolders;
	e.messages = total;
	e.sha256.data = digest;
	e.sha256.len = sizeof(digest);
	r.record_case = PORTICO__ACCOUNT_RECORD__RECORD_END;
	r.end = &e;
	out_record(o, &r);
	*folders_r = nfolders;
	*messages_r = total;
	return 0;
}

int
admin_account_export_file(struct admin *a, const char *mailbox_id, FILE *f,
			  const char *what, int sync)
{
	struct acct_out o = {f, NULL, 0};
	if ((o.sha = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(o.sha, EVP_sha256(), NULL) != 1)
		abort();
	if (fwrite(ACCOUNT_MAGIC, 1, sizeof(ACCOUNT_MAGIC) - 1, o.f) !=
	    sizeof(ACCOUNT_MAGIC) - 1)
		o.failed = 1;
	EVP_DigestUpdate(o.sha, ACCOUNT_MAGIC, sizeof(ACCOUNT_MAGIC) - 1);
	MDB_txn *txn = NULL;
	const char *err;
	size_t folders = 0;
	uint64_t messages = 0;
	int rc = -1;
	if (store_read_begin(a->st, &txn, &err) < 0) {
		fprintf(MSGS, "portico-admin: export: %s\n", err);
	} else {
		rc = export_account(a->st, txn, mailbox_id, a->cfg.backend_id,
				    &o, &folders, &messages);
		store_read_end(&txn);
	}
	if (fflush(o.f) != 0 || ferror(o.f) || (sync && fsync(fileno(o.f)) < 0))
		o.failed = 1;
	if (o.failed)
		fprintf(MSGS, "portico-admin: export: writing %s: %s\n", what,
			strerror(errno));
	EVP_MD_CTX_free(o.sha);
	if (rc != 0 || o.failed)
		return 1;
	fprintf(MSGS, "exported %llu messages in %zu folders of %s to %s\n",
		(unsigned long long)messages, folders, mailbox_id, what);
	return 0;
}

/* export MAILBOX_ID --account FILE|-: FILE is made here (it must not
 * exist); "-" is the standard output. */
int
admin_account_export(struct admin *a, const char *mailbox_id, const char *path)
{
	if (strcmp(path, "-") == 0)
		return admin_account_export_file(a, mailbox_id, stdout,
						 "the standard output", 0);
	FILE *f = NULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(MSGS, "portico-admin: export: %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	int rc = admin_account_export_file(a, mailbox_id, f, path, 1);
	if (fclose(f) != 0 && rc == 0) {
		fprintf(MSGS, "portico-admin: export: %s: %s\n", path,
			strerror(errno));
		rc = 1;
	}
	if (rc != 0)
		unlink(path);
	return rc;
}

/* -- import ------------------------------------------------------------- */

struct acct_in {
	FILE *f;
	const char *what; /* the file's name, for messages */
	EVP_MD_CTX *sha;
	uint64_t offset;
};

/* The signal that stops an import (import_signals_catch), or 0. */
static volatile sig_atomic_t import_stop;
static const int import_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define IMPORT_NSIGNALS (sizeof(import_signals) / sizeof(import_signals[0]))

static void
import_on_signal(int sig)
{
	import_stop = sig;
}

/* While an import runs, these signals stop it at the next record (a read
 * waiting on a pipe returns: no SA_RESTART), so that what it stored can
 * be taken back first; one the process was started ignoring (nohup) stays
 * ignored. */
static void
import_signals_catch(struct sigaction old[IMPORT_NSIGNALS])
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = import_on_signal;
	sigemptyset(&sa.sa_mask);
	import_stop = 0;
	for (size_t i = 0; i < IMPORT_NSIGNALS; i++) {
		sigaction(import_signals[i], NULL, &old[i]);
		if (old[i].sa_handler != SIG_IGN)
			sigaction(import_signals[i], &sa, NULL);
	}
}

/* The handlers as they were; a signal that stopped the import (failed:
 * one that came once it had all it needed lets it end as it did) is
 * raised again, to end the process as it would have without them. */
static void
import_signals_restore(const struct sigaction old[IMPORT_NSIGNALS], int failed)
{
	for (size_t i = 0; i < IMPORT_NSIGNALS; i++)
		sigaction(import_signals[i], &old[i], NULL);
	if (failed && import_stop != 0) {
		fflush(NULL);
		raise(import_stop);
	}
}

/* 1 and says so if a signal stopped the import. */
static int
in_stopped(const struct acct_in *in)
{
	if (import_stop == 0)
		return 0;
	fprintf(MSGS, "portico-admin: import: %s: stopped by %s at byte %llu\n",
		in->what,
		import_stop == SIGINT    ? "SIGINT"
		: import_stop == SIGTERM ? "SIGTERM"
					 : "SIGHUP",
		(unsigned long long)in->offset);
	return 1;
}

/* The next record; 0 read, 1 the stream ended at a record's boundary,
 * -1 after saying why.  Every record but the end goes into the running
 * digest. */
static int
in_record(struct acct_in *in, Portico__AccountRecord **r_out)
{
	uint8_t len4[4];
	if (in_stopped(in))
		return -1;
	size_t got = fread(len4, 1, 4, in->f);
	if (got != 4 && in_stopped(in))
		return -1;
	if (got == 0 && feof(in->f))
		return 1;
	if (got != 4) {
		fprintf(MSGS, "portico-admin: import: %s: %s at byte %llu\n",
			in->what, ferror(in->f) ? strerror(errno) : "cut short",
			(unsigned long long)in->offset);
		return -1;
	}
	uint32_t n = (uint32_t)len4[0] << 24 | (uint32_t)len4[1] << 16 |
		     (uint32_t)len4[2] << 8 | len4[3];
	if (n > ACCOUNT_MAX_RECORD) {
		fprintf(MSGS,
			"portico-admin: import: %s: a record of %u bytes at "
			"byte %llu: damaged\n",
			in->what, n, (unsigned long long)in->offset);
		return -1;
	}
	uint8_t *p = malloc(n ? n : 1);
	if (p == NULL)
		abort();
	if (fread(p, 1, n, in->f) != n) {
		if (in_stopped(in)) {
			free(p);
			return -1;
		}
		fprintf(MSGS,
			"portico-admin: import: %s: %s inside the record at "
			"byte %llu\n",
			in->what, ferror(in->f) ? strerror(errno) : "cut short",
			(unsigned long long)in->offset);
		free(p);
		return -1;
	}
	*r_out = portico__account_record__unpack(NULL, n, p);
	if (*r_out != NULL &&
	    (*r_out)->record_case != PORTICO__ACCOUNT_RECORD__RECORD_END) {
		EVP_DigestUpdate(in->sha, len4, 4);
		EVP_DigestUpdate(in->sha, p, n);
	}
	free(p);
	if (*r_out == NULL ||
	    (*r_out)->record_case == PORTICO__ACCOUNT_RECORD__RECORD__NOT_SET) {
		fprintf(MSGS,
			"portico-admin: import: %s: the record at byte %llu "
			"does not decode: damaged\n",
			in->what, (unsigned long long)in->offset);
		if (*r_out != NULL)
			portico__account_record__free_unpacked(*r_out, NULL);
		*r_out = NULL;
		return -1;
	}
	in->offset += 4 + (uint64_t)n;
	return 0;
}

/* The folder being imported and its batch of messages. */
struct acct_folder {
	Portico__AccountRecord *rec; /* its folder record */
	uint64_t mbox_id;
	uint32_t left; /* message records still to come */
	uint32_t last_uid;
	Portico__AccountRecord *batch[ACCOUNT_BATCH];
	size_t n, bytes;
};

struct acct_import {
	struct store *st;
	uint64_t user_num;
	/* import --under NAME: the folders go below NAME in an account that
	   has mail, the messages with new UIDs (a restore from a backup) */
	const char *under;
	struct acct_folder fo;
	char **names; /* the folders of the stream */
	size_t nnames, names_cap;
	uint64_t messages;
	/* an account that never had mail: what a failed import stored goes
	   again (created: it was not there before) */
	int filling, created;
	struct buf before; /* its folders' names then, each ending in NUL */
	unsigned auto_reply_max; /* transport.auto_reply_senders */
};

static void
batch_free(struct acct_folder *fo)
{
	for (size_t i = 0; i < fo->n; i++)
		portico__account_record__free_unpacked(fo->batch[i], NULL);
	fo->n = 0;
	fo->bytes = 0;
}

/* Stores the batch; final: the folder's last (UIDNEXT goes with it). */
static int
batch_flush(struct acct_import *im, int final)
{
	struct acct_folder *fo = &im->fo;
	const Portico__AccountFolder *f = fo->rec->folder;
	if (fo->n == 0 && !final)
		return 0;
	struct store_new_msg *nm = calloc(fo->n + 1, sizeof(*nm));
	struct buf *meta = calloc(fo->n + 1, sizeof(*meta));
	const char **kwp = calloc(fo->n * STORE_MAX_KEYWORDS + 1, sizeof(*kwp));
	if (nm == NULL || meta == NULL || kwp == NULL)
		abort();
	for (size_t i = 0; i < fo->n; i++) {
		const Portico__AccountMessage *m = fo->batch[i]->message;
		const char **kw = kwp + i * STORE_MAX_KEYWORDS;
		unsigned nk = 0;
		for (size_t b = 0; b < f->n_keywords; b++)
			if (m->keywords & (1ull << b))
				kw[nk++] = f->keywords[b];
		nm[i].data = (const char *)m->body.data;
		nm[i].len = m->body.len;
		nm[i].flags = m->flags;
		nm[i].keywords = kw;
		nm[i].nkeywords = nk;
		nm[i].internaldate = m->internaldate;
		nm[i].uid = m->uid;
		nm[i].modseq = m->modseq;
		nm[i].savedate = m->savedate;
		nm[i].pop3_retrieved = (uint32_t)m->pop3_retrieved;
		if (mime_cache_build(nm[i].data, nm[i].len, &meta[i]) == 0) {
			nm[i].meta = buf_ptr(&meta[i]);
			nm[i].metalen = buf_used(&meta[i]);
		}
	}
	/* import --under: into a folder that may have mail, with that
	   folder's own UIDs, modseqs and save dates (flags, keywords and
	   internal dates as they were) */
	int keep = im->under == NULL;
	struct store_append_args a = {
	    .user_num = im->user_num,
	    .mbox_id = fo->mbox_id,
	    .msgs = nm,
	    .n = fo->n,
	    .keep_uidvalidity = keep ? f->uidvalidity : 0,
	    .keep_uidnext = keep && final ? f->uidnext : 0,
	    .keep_modseq = keep ? f->highestmodseq : 0,
	    .keep_expunged = keep,
	    .expunged_uids = f->expunged_uids,
	    .expunged_modseqs = f->expunged_modseqs,
	    .nexpunged = f->n_expunged_uids,
	    .expunged_floor = f->expunged_floor,
	};
	for (size_t i = 0; !keep && i < fo->n; i++) {
		nm[i].uid = 0;
		nm[i].modseq = 0;
		nm[i].savedate = 0;
		nm[i].pop3_retrieved = 0;
	}
	char ebuf[STORE_ERR_SIZE];
	int rc = keep || fo->n > 0
		     ? store_run(im->st, store_op_append, &a, ebuf)
		     : 0;
	for (size_t i = 0; i < fo->n; i++)
		buf_free(&meta[i]);
	free(meta);
	free(nm);
	free(kwp);
	if (rc != 0) {
		fprintf(MSGS, "portico-admin: import: %s: %s\n", f->name, ebuf);
		batch_free(fo);
		return -1;
	}
	im->messages += fo->n;
	batch_free(fo);
	return 0;
}

/* After an error: what is held goes, unstored. */
static void
folder_drop(struct acct_import *im)
{
	batch_free(&im->fo);
	if (im->fo.rec != NULL)
		portico__account_record__free_unpacked(im->fo.rec, NULL);
	im->fo.rec = NULL;
}

/* The folder whose messages have all come: its last batch. */
static int
folder_finish(struct acct_import *im)
{
	struct acct_folder *fo = &im->fo;
	if (fo->rec == NULL)
		return 0;
	int rc = 0;
	if (fo->left != 0) {
		fprintf(MSGS,
			"portico-admin: import: %s: %u messages missing: "
			"damaged\n",
			fo->rec->folder->name, fo->left);
		rc = -1;
	} else if (!fo->rec->folder->noselect) {
		rc = batch_flush(im, 1);
	}
	batch_free(fo);
	portico__account_record__free_unpacked(fo->rec, NULL);
	fo->rec = NULL;
	return rc;
}

static void
names_add(struct acct_import *im, const char *name)
{
	if (im->nnames == im->names_cap) {
		im->names_cap = im->names_cap ? im->names_cap * 2 : 16;
		im->names = realloc(im->names,
				    im->names_cap * sizeof(*im->names));
		if (im->names == NULL)
			abort();
	}
	if ((im->names[im->nnames++] = strdup(name)) == NULL)
		abort();
}

/* import --under: the folder as UNDER/NAME, made when absent (a folder
 * kept only for its children needs no folder of its own there). */
static int
folder_start_under(struct acct_import *im, Portico__AccountRecord *r)
{
	const Portico__AccountFolder *f = r->folder;
	char name[ACCOUNT_MAX_NAME];
	int n = snprintf(name, sizeof(name), "%s/%s", im->under, f->name);
	const char *why = n < 0 || (size_t)n >= sizeof(name) - 8
			      ? "name too long"
			      : imap_name_check(name, (size_t)n);
	uint64_t mbox_id = 0;
	char ebuf[STORE_ERR_SIZE];
	if (why == NULL && !f->noselect) {
		struct store_mailbox_args ma = {.user_num = im->user_num,
						.name = name};
		int rc = store_run(im->st, store_op_mailbox_create, &ma, ebuf);
		mbox_id = ma.mbox_id_out;
		if (rc == STORE_ERR_EXISTS) {
			MDB_txn *txn = NULL;
			const char *err;
			struct store_mailbox_rec mb;
			rc = store_read_begin(im->st, &txn, &err) < 0
				 ? -1
				 : store_mailbox_get(im->st, txn, im->user_num,
						     name, &mb, &err);
			store_read_end(&txn);
			mbox_id = mb.mbox_id;
			if (rc != 0)
				snprintf(ebuf, sizeof(ebuf), "%s",
					 rc < 0 ? err : "vanished");
		}
		if (rc != 0)
			why = ebuf;
	}
	if (why != NULL) {
		fprintf(MSGS, "portico-admin: import: folder \"%s\": %s\n",
			name, why);
		portico__account_record__free_unpacked(r, NULL);
		return -1;
	}
	names_add(im, f->name);
	im->fo.rec = r;
	im->fo.mbox_id = mbox_id;
	im->fo.left = f->messages;
	im->fo.last_uid = 0;
	return 0;
}

static int
folder_start(struct acct_import *im, Portico__AccountRecord *r)
{
	const Portico__AccountFolder *f = r->folder;
	const char *why = imap_name_check(f->name, strlen(f->name));
	enum store_special_use su = special_use_parse(f->special_use);
	if (why == NULL &&
	    (f->uidvalidity == 0 || f->uidnext == 0 || f->highestmodseq == 0))
		why = "no UIDVALIDITY, UIDNEXT or HIGHESTMODSEQ";
	if (why == NULL && su == STORE_SU_COUNT)
		why = "unknown special-use";
	if (why == NULL && f->n_keywords > STORE_MAX_KEYWORDS)
		why = "too many keywords";
	if (why == NULL && f->noselect && f->messages != 0)
		why = "messages in a folder that cannot hold any";
	if (why == NULL && f->n_expunged_uids != f->n_expunged_modseqs)
		why = "expunge records without their modseqs";
	for (size_t i = 0; why == NULL && i < f->n_expunged_uids; i++)
		if (f->expunged_uids[i] == 0 ||
		    f->expunged_uids[i] >= f->uidnext ||
		    f->expunged_modseqs[i] == 0 ||
		    f->expunged_modseqs[i] > f->highestmodseq)
			why = "an expunge record beyond the UIDNEXT or the "
			      "HIGHESTMODSEQ";
	if (why == NULL && f->expunged_floor > f->highestmodseq)
		why = "expunge records' floor above the HIGHESTMODSEQ";
	if (why == NULL && im->nnames > 0 &&
	    strcmp(im->names[im->nnames - 1], f->name) >= 0)
		why = "folders not in name order, or one twice";
	struct buf kw = BUF_INIT;
	for (size_t i = 0; why == NULL && i < f->n_keywords; i++) {
		if (!admin_keyword_ok(f->keywords[i]))
			why = "a keyword that is no IMAP keyword";
		buf_append(&kw, f->keywords[i], strlen(f->keywords[i]) + 1);
	}
	if (why != NULL) {
		fprintf(MSGS, "portico-admin: import: folder \"%s\": %s\n",
			f->name, why);
		buf_free(&kw);
		portico__account_record__free_unpacked(r, NULL);
		return -1;
	}
	if (im->under != NULL) {
		buf_free(&kw);
		return folder_start_under(im, r);
	}
	struct store_folder_restore_args a = {
	    .user_num = im->user_num,
	    .name = f->name,
	    .special_use = su,
	    .noselect = f->noselect,
	    .uidvalidity = f->uidvalidity,
	    .uidnext = f->uidnext,
	    .highestmodseq = f->highestmodseq,
	    .created = f->created,
	    .keywords = buf_ptr(&kw),
	    .keywords_len = buf_used(&kw),
	};
	char ebuf[STORE_ERR_SIZE];
	int rc = store_run(im->st, store_op_folder_restore, &a, ebuf);
	buf_free(&kw);
	if (rc != 0) {
		fprintf(MSGS, "portico-admin: import: %s: %s\n", f->name, ebuf);
		portico__account_record__free_unpacked(r, NULL);
		return -1;
	}
	names_add(im, f->name);
	im->fo.rec = r;
	im->fo.mbox_id = a.mbox_id_out;
	im->fo.left = f->messages;
	im->fo.last_uid = 0;
	return 0;
}

static int
message_add(struct acct_import *im, Portico__AccountRecord *r)
{
	struct acct_folder *fo = &im->fo;
	const Portico__AccountMessage *m = r->message;
	const char *why = NULL;
	if (fo->rec == NULL || fo->left == 0)
		why = "a message where none was announced";
	else if (m->uid <= fo->last_uid || m->uid >= fo->rec->folder->uidnext)
		why = "a UID out of order or at least the UIDNEXT";
	else if (m->body.len == 0)
		why = "an empty message (APPEND refuses them too)";
	else if (m->flags & ~(uint32_t)STORE_F_SYSTEM)
		why = "unknown flags";
	else if (fo->rec->folder->n_keywords < 64 &&
		 m->keywords >> fo->rec->folder->n_keywords != 0)
		why = "a keyword the folder does not name";
	else if (m->modseq == 0 || m->modseq > fo->rec->folder->highestmodseq)
		why = "a modseq above the folder's HIGHESTMODSEQ";
	else if (m->pop3_retrieved < 0 || m->pop3_retrieved > UINT32_MAX)
		why = "a POP3 retrieval time out of range";
	if (why != NULL) {
		fprintf(MSGS, "portico-admin: import: %s uid %u: %s\n",
			fo->rec != NULL ? fo->rec->folder->name : "-", m->uid,
			why);
		portico__account_record__free_unpacked(r, NULL);
		return -1;
	}
	fo->left--;
	fo->last_uid = m->uid;
	fo->batch[fo->n++] = r;
	fo->bytes += m->body.len;
	if (fo->n == ACCOUNT_BATCH || fo->bytes >= ACCOUNT_BATCH_BYTES)
		return batch_flush(im, 0);
	return 0;
}

static int
name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Whether name is in names, sorted by strcmp(). */
static int
names_has(char **names, size_t n, const char *name)
{
	return n > 0 &&
	       bsearch(&name, names, n, sizeof(*names), name_cmp) != NULL;
}

/* After a whole stream: the subscriptions as they were, the quota, and
 * the provisioned folders the account did not have. */
static int
account_finish(struct acct_import *im, const Portico__AccountHeader *h,
	       const char *mailbox_id)
{
	char ebuf[STORE_ERR_SIZE];
	const char *err;
	MDB_txn *txn = NULL;
	char **subs = NULL;
	size_t nsubs = 0, nlist = 0;
	struct store_mailbox_info *list = NULL;
	int64_t last_login = 0;
	if (store_read_begin(im->st, &txn, &err) < 0 ||
	    store_last_login_get(im->st, txn, im->user_num, &last_login,
				 &err) < 0 ||
	    store_subscriptions(im->st, txn, im->user_num, &subs, &nsubs,
				&err) < 0 ||
	    store_mailboxes_list(im->st, txn, im->user_num, &list, &nlist,
				 &err) < 0) {
		store_read_end(&txn);
		store_names_free(subs, nsubs);
		fprintf(MSGS, "portico-admin: import: %s\n", err);
		return -1;
	}
	store_read_end(&txn);
	/* (the store lists both in name order, as the stream's folders
	   come; the stream's subscriptions are sorted here) */
	size_t nwant = h->n_subscriptions;
	char **want = malloc((nwant ? nwant : 1) * sizeof(*want));
	if (want == NULL)
		abort();
	if (nwant > 0)
		memcpy(want, h->subscriptions, nwant * sizeof(*want));
	if (nwant > 1)
		qsort(want, nwant, sizeof(*want), name_cmp);
	int rc = 0;
	struct store_mailbox_args ma = {.user_num = im->user_num};
	for (size_t i = 0; i < nsubs && rc == 0; i++) {
		if (names_has(want, nwant, subs[i]))
			continue;
		ma.name = subs[i];
		ma.subscribe = 0;
		rc = store_run(im->st, store_op_subscribe, &ma, ebuf);
	}
	for (size_t i = 0; i < h->n_subscriptions && rc == 0; i++) {
		if (names_has(subs, nsubs, h->subscriptions[i]))
			continue;
		if (imap_name_check(h->subscriptions[i],
				    strlen(h->subscriptions[i])) != NULL)
			continue; /* not a name this backend takes */
		ma.name = h->subscriptions[i];
		ma.subscribe = 1;
		rc = store_run(im->st, store_op_subscribe, &ma, ebuf);
	}
	/* children first: the list is in name order */
	for (size_t i = nlist; i-- > 0 && rc == 0;) {
		if (names_has(im->names, im->nnames, list[i].name))
			continue;
		ma.name = list[i].name;
		rc = store_run(im->st, store_op_mailbox_delete, &ma, ebuf);
		if (rc == 0)
			fprintf(MSGS, "removed mailbox %s, which %s lacks\n",
				list[i].name, h->mailbox_id);
	}
	free(want);
	store_names_free(subs, nsubs);
	store_mailboxes_free(list, nlist);
	if (rc == 0) {
		struct store_quota_set_args qa = {
		    .mailbox_id = mailbox_id,
		    .source = h->has_quota ? h->quota_source
					   : STORE_QUOTA_ADMIN,
		    .clear = !h->has_quota,
		    .q = {h->quota_storage, h->quota_messages, h->quota_source},
		};
		if (h->has_quota && qa.source != STORE_QUOTA_ADMIN &&
		    qa.source != STORE_QUOTA_DIRECTORY) {
			fprintf(MSGS, "portico-admin: import: unknown quota "
				      "source; the backend's limits apply\n");
			qa.source = STORE_QUOTA_ADMIN;
			qa.clear = 1;
		}
		rc = store_run(im->st, store_op_quota_set, &qa, ebuf);
	}
	/* the stream's last login, unless the account here has a later
	   one (a login during an incremental move) */
	if (rc == 0 && h->last_login > last_login) {
		struct store_last_login_args la = {mailbox_id, h->last_login};
		rc = store_run(im->st, store_op_last_login, &la, ebuf);
	}
	if (rc == 0 && h->quota_warned > 0) {
		struct store_quota_warned_args wa = {mailbox_id,
						     h->quota_warned};
		rc = store_run(im->st, store_op_quota_warned, &wa, ebuf);
	}
	/* the senders the automatic reply answered, so that none is
	   answered again within transport.auto_reply_interval */
	if (rc == 0 && h->auto_replied.len % STORE_AUTO_REPLY_ENTRY != 0) {
		fprintf(MSGS, "portico-admin: import: the senders answered "
			      "by the automatic reply are not a list of "
			      "entries; not taken\n");
	} else if (rc == 0 && h->auto_replied.len > 0) {
		struct store_auto_replied_args ra = {
		    mailbox_id, h->auto_replied.data, h->auto_replied.len,
		    im->auto_reply_max};
		rc = store_run(im->st, store_op_auto_replied, &ra, ebuf);
	}
	if (rc != 0) {
		fprintf(MSGS, "portico-admin: import: %s\n", ebuf);
		return -1;
	}
	return 0;
}

/* The folders' names, each ending in NUL, into out. */
static void
folder_names(const struct store_mailbox_info *list, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++)
		buf_append(out, list[i].name, strlen(list[i].name) + 1);
}

/* The account must never have had mail: 0 (its folders' names into
 * before), or -1 after saying why. */
static int
account_pristine(struct store *st, const char *mailbox_id, uint64_t *user_num_r,
		 struct buf *before)
{
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;
	if (store_read_begin(st, &txn, &err) < 0 ||
	    store_user_get(st, txn, mailbox_id, &u, &err) != 0 ||
	    store_mailboxes_list(st, txn, u.user_num, &list, &n, &err) < 0) {
		store_read_end(&txn);
		fprintf(MSGS, "portico-admin: import: %s\n", err);
		return -1;
	}
	store_read_end(&txn);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (list[i].rec.uidnext != 1 || list[i].rec.messages != 0) {
			fprintf(MSGS,
				"portico-admin: import: %s has had mail "
				"(%s): --account fills an account that "
				"never had any\n",
				mailbox_id, list[i].name);
			rc = -1;
		}
	folder_names(list, n, before);
	store_mailboxes_free(list, n);
	*user_num_r = u.user_num;
	return rc;
}

/* A failed import into an account that never had mail: the account as it
 * was before (absent, or provisioned: the standard folders, empty), in one
 * transaction, if it holds only the messages the import stored; one
 * delivered meanwhile, or folders of its own before, keep it as it is. */
struct rollback_args {
	const char *mailbox_id;
	uint64_t stored;
	int created;
	const struct buf *before;
};

static int
rollback_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct rollback_args *ra = vargs;
	struct store_user_rec u;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;
	const char *e = "no such mailbox id in this store";
	int rc = store_user_get(st, txn, ra->mailbox_id, &u, &e);
	if (rc != 0 ||
	    store_mailboxes_list(st, txn, u.user_num, &list, &n, &e) < 0) {
		snprintf(err, STORE_ERR_SIZE, "%s", e);
		return STORE_ERR_INTERNAL;
	}
	uint64_t held = 0;
	for (size_t i = 0; i < n; i++)
		held += list[i].rec.messages;
	store_mailboxes_free(list, n);
	if (held != ra->stored) {
		snprintf(err, STORE_ERR_SIZE,
			 "it holds %llu messages, the import stored %llu: "
			 "others came meanwhile",
			 (unsigned long long)held,
			 (unsigned long long)ra->stored);
		return STORE_ERR_CANNOT;
	}
	struct admin_remove_args rm = {ra->mailbox_id, 0, 0, 0};
	if ((rc = admin_remove_op(st, txn, &rm, err)) != 0 || ra->created)
		return rc;
	struct store_provision_args pa = {ra->mailbox_id, 0};
	if ((rc = store_op_provision(st, txn, &pa, err)) != 0)
		return rc;
	/* provisioned again: the folders it had, or it stays as it is */
	if (store_user_get(st, txn, ra->mailbox_id, &u, &e) != 0 ||
	    store_mailboxes_list(st, txn, u.user_num, &list, &n, &e) < 0) {
		snprintf(err, STORE_ERR_SIZE, "%s", e);
		return STORE_ERR_INTERNAL;
	}
	struct buf now = BUF_INIT;
	folder_names(list, n, &now);
	store_mailboxes_free(list, n);
	int same = buf_used(&now) == buf_used(ra->before) &&
		   (buf_used(&now) == 0 ||
		    memcmp(buf_ptr(&now), buf_ptr(ra->before),
			   buf_used(&now)) == 0);
	buf_free(&now);
	if (!same) {
		snprintf(err, STORE_ERR_SIZE,
			 "it had folders other than the standard ones "
			 "before");
		return STORE_ERR_CANNOT;
	}
	return 0;
}

/* 0: the account is as it was; -1 after saying why it is not. */
static int
import_rollback(struct acct_import *im, const char *mailbox_id)
{
	struct rollback_args ra = {mailbox_id, im->messages, im->created,
				   &im->before};
	char ebuf[STORE_ERR_SIZE];
	if (store_run(im->st, rollback_op, &ra, ebuf) != 0) {
		fprintf(MSGS,
			"portico-admin: import: what was stored could not "
			"be taken back: %s\n",
			ebuf);
		return -1;
	}
	fprintf(MSGS,
		"portico-admin: import: nothing of it kept: the %llu "
		"messages in %zu folders stored are removed again, and %s is "
		"as it was before (%s)\n",
		(unsigned long long)im->messages, im->nnames, mailbox_id,
		im->created ? "not in this store" : "provisioned, no mail");
	return 0;
}

/* import --under: the account must be there; its number. */
static int
account_existing(struct store *st, const char *mailbox_id, uint64_t *user_num_r)
{
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	int rc = store_read_begin(st, &txn, &err) < 0
		     ? -1
		     : store_user_get(st, txn, mailbox_id, &u, &err);
	store_read_end(&txn);
	if (rc != 0) {
		fprintf(MSGS, "portico-admin: import: %s\n",
			rc < 0 ? err : "no such mailbox id in this store");
		return -1;
	}
	*user_num_r = u.user_num;
	return 0;
}

/* import --under: the folders made below it are subscribed. */
static int
account_finish_under(struct acct_import *im)
{
	char ebuf[STORE_ERR_SIZE];
	int rc = 0;
	for (size_t i = 0; i < im->nnames && rc == 0; i++) {
		char name[ACCOUNT_MAX_NAME];
		snprintf(name, sizeof(name), "%s/%s", im->under, im->names[i]);
		struct store_mailbox_args ma = {
		    .user_num = im->user_num, .name = name, .subscribe = 1};
		rc = store_run(im->st, store_op_subscribe, &ma, ebuf);
	}
	if (rc != 0)
		fprintf(MSGS, "portico-admin: import: %s\n", ebuf);
	return rc == 0 ? 0 : -1;
}

static int
import_stream(struct store *st, const char *mailbox_id, struct acct_in *in,
	      const char *under, unsigned auto_reply_max)
{
	char magic[sizeof(ACCOUNT_MAGIC) - 1];
	if (fread(magic, 1, sizeof(magic), in->f) != sizeof(magic) ||
	    memcmp(magic, ACCOUNT_MAGIC, sizeof(magic)) != 0) {
		fprintf(MSGS,
			"portico-admin: import: %s is not an account stream "
			"(export --account writes one)\n",
			in->what);
		return -1;
	}
	if ((in->sha = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(in->sha, EVP_sha256(), NULL) != 1)
		abort();
	EVP_DigestUpdate(in->sha, magic, sizeof(magic));
	in->offset = sizeof(magic);
	Portico__AccountRecord *hr = NULL, *r = NULL;
	int rc = in_record(in, &hr);
	if (rc == 0 &&
	    hr->record_case != PORTICO__ACCOUNT_RECORD__RECORD_HEADER)
		rc = 2;
	if (rc == 0 && hr->header->version != ACCOUNT_VERSION)
		rc = 3;
	if (rc != 0) {
		if (rc > 0)
			fprintf(MSGS, "portico-admin: import: %s: %s\n",
				in->what,
				rc == 3 ? "a version of the format this "
					  "portico-admin does not read"
					: "no header: damaged");
		if (hr != NULL)
			portico__account_record__free_unpacked(hr, NULL);
		return -1;
	}
	const Portico__AccountHeader *h = hr->header;
	struct store_provision_args pa = {mailbox_id};
	char ebuf[STORE_ERR_SIZE];
	struct acct_import *im = calloc(1, sizeof(*im));
	if (im == NULL)
		abort();
	im->st = st;
	im->under = under;
	im->auto_reply_max = auto_reply_max;
	if (under != NULL) {
		rc = account_existing(st, mailbox_id, &im->user_num);
	} else if (store_run(st, store_op_provision, &pa, ebuf) != 0) {
		fprintf(MSGS, "portico-admin: import: %s\n", ebuf);
		rc = -1;
	} else {
		im->created = pa.created_out;
		rc = account_pristine(st, mailbox_id, &im->user_num,
				      &im->before);
		im->filling = rc == 0;
	}
	int ended = 0;
	while (rc == 0 && !ended) {
		if ((rc = in_record(in, &r)) != 0)
			break;
		switch (r->record_case) {
		case PORTICO__ACCOUNT_RECORD__RECORD_FOLDER:
			if ((rc = folder_finish(im)) == 0)
				rc = folder_start(im, r);
			else
				portico__account_record__free_unpacked(r, NULL);
			break;
		case PORTICO__ACCOUNT_RECORD__RECORD_MESSAGE:
			rc = message_add(im, r);
			break;
		case PORTICO__ACCOUNT_RECORD__RECORD_END:
			ended = 1;
			break;
		default:
			fprintf(MSGS,
				"portico-admin: import: %s: a second header "
				"at byte %llu: damaged\n",
				in->what, (unsigned long long)in->offset);
			portico__account_record__free_unpacked(r, NULL);
			rc = -1;
			break;
		}
	}
	if (rc == 1) {
		fprintf(MSGS,
			"portico-admin: import: %s: cut short: it ends "
			"before its end record\n",
			in->what);
		rc = -1;
	}
	if (rc == 0)
		rc = folder_finish(im);
	else
		folder_drop(im);
	if (rc == 0) {
		const Portico__AccountEnd *e = r->end;
		uint8_t digest[SHA256_DIGEST_LENGTH];
		EVP_DigestFinal_ex(in->sha, digest, NULL);
		if (e->folders != im->nnames || e->messages != im->messages ||
		    e->sha256.len != sizeof(digest) ||
		    memcmp(e->sha256.data, digest, sizeof(digest)) != 0) {
			fprintf(MSGS,
				"portico-admin: import: %s: damaged: its end "
				"record does not match what came before "
				"it\n",
				in->what);
			rc = -1;
		} else if (fgetc(in->f) != EOF) {
			fprintf(MSGS,
				"portico-admin: import: %s: bytes after the "
				"end record\n",
				in->what);
			rc = -1;
		}
	}
	if (rc == 0)
		rc = under != NULL ? account_finish_under(im)
				   : account_finish(im, h, mailbox_id);
	if (r != NULL && ended)
		portico__account_record__free_unpacked(r, NULL);
	/* what a failed import stored goes again (said there) */
	int kept = rc != 0 && (im->messages > 0 || im->nnames > 0);
	if (rc != 0 && im->filling && (kept || im->created) &&
	    import_rollback(im, mailbox_id) == 0)
		kept = 0;
	if (kept && under != NULL)
		fprintf(MSGS,
			"portico-admin: import: %llu messages in %zu folders "
			"were stored below %s\n",
			(unsigned long long)im->messages, im->nnames, under);
	else if (kept)
		fprintf(MSGS,
			"portico-admin: import: %llu messages in %zu folders "
			"were stored: %s is incomplete; remove it "
			"(portico-admin remove %s --yes) and import again\n",
			(unsigned long long)im->messages, im->nnames,
			mailbox_id, mailbox_id);
	if (rc == 0) {
		printf("imported %llu messages in %zu folders%s%s\n",
		       (unsigned long long)im->messages, im->nnames,
		       under != NULL ? " below " : "",
		       under != NULL ? under : "");
		if (strcmp(h->mailbox_id, mailbox_id) != 0)
			fprintf(MSGS, "(exported as %s)\n", h->mailbox_id);
	}
	for (size_t i = 0; i < im->nnames; i++)
		free(im->names[i]);
	free(im->names);
	buf_free(&im->before);
	free(im);
	portico__account_record__free_unpacked(hr, NULL);
	return rc;
}

int
admin_account_import_file(struct admin *a, const char *mailbox_id, FILE *f,
			  const char *what, const char *under)
{
	struct acct_in in = {f, what, NULL, 0};
	struct sigaction old[IMPORT_NSIGNALS];
	import_signals_catch(old);
	int rc = import_stream(a->st, mailbox_id, &in, under,
			       (unsigned)a->cfg.transport_auto_reply_senders);
	EVP_MD_CTX_free(in.sha);
	import_signals_restore(old, rc != 0);
	return rc == 0 ? 0 : 1;
}

/* import MAILBOX_ID --account FILE|- ("-": the standard input) */
int
admin_account_import(struct admin *a, const char *mailbox_id, const char *path,
		     const char *under)
{
	if (under != NULL) {
		/* a folder name of the account's, no wildcards */
		const char *why = imap_name_check(under, strlen(under));
		if (why == NULL && (strpbrk(under, "%*") != NULL ||
				    strcasecmp(under, "INBOX") == 0))
			why = "not a name for a new folder";
		if (why != NULL) {
			fprintf(MSGS,
				"portico-admin: import: --under \"%s\": "
				"%s\n",
				under, why);
			return 1;
		}
	}
	if (strcmp(path, "-") == 0)
		return admin_account_import_file(a, mailbox_id, stdin,
						 "the standard input", under);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(MSGS, "portico-admin: import: %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	int rc = admin_account_import_file(a, mailbox_id, f, path, under);
	fclose(f);
	return rc;
}
