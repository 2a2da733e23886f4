/* admin_store.c - portico-admin's mailbox commands: import (an mbox
 * file, a single message or a Maildir with its flags and keywords),
 * export (mboxrd, or a Maildir with flags and keywords), list and show.
 *
 * The store is opened directly; LMDB lets this run beside the backend.
 * Imports write through store_run() (one transaction per batch); export,
 * list and show read one snapshot.
 *
 * mboxrd (export, and import of an mbox file): each message starts with
 * "From SENDER DATE" (DATE as asctime(3) in UTC: the internal date), its
 * lines end in LF, a line of the message that matches ^>*From  gets one
 * more '>' (import takes it off again), and an empty line follows each
 * message.  A message that does not end in a line end gets one.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/admin/admin.h"
#include "backend/mime/mime.h"
#include "common/buf.h"
#include "common/config.h"

static int
read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(out, tmp, n);
	int err = ferror(f);
	fclose(f);
	return err ? -1 : 0;
}

/* "From sender Thu Nov 23 08:00:00 2026": the date after the sender. */
static int64_t
mbox_from_date(const char *line, size_t len)
{
	char tmp[256];
	if (len >= sizeof(tmp))
		return 0;
	memcpy(tmp, line, len);
	tmp[len] = '\0';
	char *p = strchr(tmp + 5, ' ');
	if (p == NULL)
		return 0;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	char *end = strptime(p + 1, "%a %b %d %H:%M:%S %Y", &tm);
	if (end == NULL)
		return 0;
	return (int64_t)timegm(&tm);
}

/* Keywords a Maildir can name: the letters a-z, each a line of its
 * dovecot-keywords file ("0 $Junk"). */
#define MAILDIR_KEYWORDS 26

/* Messages are imported in batches: one transaction (one fsync) per
 * IMPORT_BATCH messages or IMPORT_BATCH_BYTES. */
#define IMPORT_BATCH 1000
#define IMPORT_BATCH_BYTES (64u << 20)

struct importer {
	struct store *st;
	uint64_t user_num;
	const char *mbox;
	struct buf msgs[IMPORT_BATCH];
	int64_t dates[IMPORT_BATCH];
	uint32_t flags[IMPORT_BATCH];
	/* Maildir keywords (letters a-z of dovecot-keywords) */
	const char *keywords[IMPORT_BATCH][MAILDIR_KEYWORDS];
	unsigned nkeywords[IMPORT_BATCH];
	/* A moved mailbox keeping its UIDs (keep.uidvalidity nonzero):
	   each message's UID, and the mailbox's numbers for the store */
	uint32_t uids[IMPORT_BATCH];
	uint32_t next_uid; /* of the message import_one() queues */
	struct keep_uids {
		uint32_t uidvalidity, uidnext;
		uint64_t modseq;
	} keep;
	int final; /* the last flush: UIDNEXT goes with it */
	size_t n, bytes;
	unsigned total;
};

static int
import_flush(struct importer *im)
{
	if (im->n == 0 && !(im->keep.uidvalidity != 0 && im->final))
		return 0;
	/* (the last batch of a kept-UID import may be empty) */
	struct store_new_msg *nm = calloc(im->n + 1, sizeof(*nm));
	struct buf *meta = calloc(im->n + 1, sizeof(*meta));
	if (nm == NULL || meta == NULL)
		abort();
	for (size_t i = 0; i < im->n; i++) {
		nm[i].data = buf_ptr(&im->msgs[i]);
		nm[i].len = buf_used(&im->msgs[i]);
		nm[i].internaldate = im->dates[i];
		nm[i].flags = im->flags[i];
		nm[i].keywords = im->keywords[i];
		nm[i].nkeywords = im->nkeywords[i];
		nm[i].uid = im->uids[i];
		/* The MIME structure is computed once, at import. */
		if (mime_cache_build(nm[i].data, nm[i].len, &meta[i]) == 0) {
			nm[i].meta = buf_ptr(&meta[i]);
			nm[i].metalen = buf_used(&meta[i]);
		}
	}
	struct store_append_args a = {
	    .user_num = im->user_num,
	    .mailbox = im->mbox,
	    .msgs = nm,
	    .n = im->n,
	    .keep_uidvalidity = im->keep.uidvalidity,
	    .keep_uidnext = im->final ? im->keep.uidnext : 0,
	    .keep_modseq = im->keep.modseq,
	};
	char ebuf[STORE_ERR_SIZE];
	int rc = store_run(im->st, store_op_append, &a, ebuf);
	for (size_t i = 0; i < im->n; i++)
		buf_free(&meta[i]);
	free(meta);
	free(nm);
	for (size_t i = 0; i < im->n; i++)
		buf_free(&im->msgs[i]);
	if (rc != 0) {
		fprintf(stderr, "portico-admin: import: %s\n", ebuf);
		im->n = 0;
		return -1;
	}
	im->total += (unsigned)im->n;
	im->n = 0;
	im->bytes = 0;
	return 0;
}

/* Queues one message with CRLF line ends; mboxrd unescaping when
 * from_mbox ('>From ' lines lose one '>'). */
static int
import_one(struct importer *im, const char *data, size_t len, int from_mbox,
	   int64_t date, uint32_t flags, const char *const *keywords,
	   unsigned nkeywords)
{
	struct buf *msg = &im->msgs[im->n];
	memset(msg, 0, sizeof(*msg));
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t lend = end;
		if (lend > i && data[lend - 1] == '\r')
			lend--;
		const char *line = data + i;
		size_t llen = lend - i;
		if (from_mbox && llen >= 6 && line[0] == '>') {
			size_t q = 0;
			while (q < llen && line[q] == '>')
				q++;
			if (llen - q >= 5 && memcmp(line + q, "From ", 5) == 0) {
				line++;
				llen--;
			}
		}
		buf_append(msg, line, llen);
		if (nl != NULL)
			buf_append(msg, "\r\n", 2);
		i = nl ? end + 1 : len;
	}
	if (from_mbox) {
		/* The blank line before the next "From " belongs to the
		   mbox format, not to the message. */
		if (buf_used(msg) >= 4 &&
		    memcmp(buf_ptr(msg) + buf_used(msg) - 4, "\r\n\r\n", 4) ==
			    0)
			msg->len -= 2;
	}
	if (buf_used(msg) == 0) {
		buf_free(msg);
		return 0; /* nothing to store */
	}
	im->dates[im->n] = date ? date : (int64_t)time(NULL);
	im->flags[im->n] = flags;
	im->uids[im->n] = im->next_uid;
	for (unsigned k = 0; k < nkeywords; k++)
		im->keywords[im->n][k] = keywords[k];
	im->nkeywords[im->n] = nkeywords;
	im->bytes += buf_used(msg);
	im->n++;
	if (im->n == IMPORT_BATCH || im->bytes >= IMPORT_BATCH_BYTES)
		return import_flush(im);
	return 0;
}

/* -- Maildir ---------------------------------------------------------------
 *
 * The messages of DIR/cur and DIR/new, oldest file first (modification
 * time, then name): the internal date is the file's modification time,
 * the flags those of the ":2," info suffix (S seen, R answered, F
 * flagged, T deleted, D draft; other letters, such as Dovecot's keyword
 * letters, are left out).  Subfolders (Maildir++ ".name") are not
 * walked: import each into its mailbox with --mailbox. */

struct maildir_file {
	char *path;
	const char *name;
	int64_t mtime;
	uint32_t uid; /* from the name export --maildir gives, or 0 */
};

static int
maildir_uid_cmp(const void *x, const void *y)
{
	const struct maildir_file *a = x, *b = y;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* "DATE.P<uidvalidity>U<uid>.portico...", as export --maildir names a
 * message: the UID when the UIDVALIDITY is v, else 0. */
static uint32_t
maildir_name_uid(const char *name, uint32_t v)
{
	const char *p = strchr(name, '.');
	if (p == NULL || p[1] != 'P')
		return 0;
	p += 2;
	uint64_t n[2] = {0, 0};
	for (int i = 0; i < 2; i++) {
		const char *start = p;
		while (*p >= '0' && *p <= '9' && n[i] <= 0xffffffffULL)
			n[i] = n[i] * 10 + (uint64_t)(*p++ - '0');
		if (p == start || n[i] == 0 || n[i] >= 0xffffffffULL ||
		    *p != (i == 0 ? 'U' : '.'))
			return 0;
		p++;
	}
	return n[0] == v ? (uint32_t)n[1] : 0;
}

/* DIR/portico-mailbox, which export --maildir writes: "uidvalidity V",
 * "uidnext N", "highestmodseq M" lines.  0 with all three, else -1. */
static int
maildir_keep_read(const char *dir, struct keep_uids *k)
{
	char path[4096], key[32];
	unsigned long long v;
	snprintf(path, sizeof(path), "%s/portico-mailbox", dir);
	FILE *f = fopen(path, "r");
	memset(k, 0, sizeof(*k));
	if (f == NULL)
		return -1;
	while (fscanf(f, "%31s %llu", key, &v) == 2) {
		if (strcmp(key, "uidvalidity") == 0 && v < 0xffffffffULL)
			k->uidvalidity = (uint32_t)v;
		else if (strcmp(key, "uidnext") == 0 && v <= 0xffffffffULL)
			k->uidnext = (uint32_t)v;
		else if (strcmp(key, "highestmodseq") == 0)
			k->modseq = v;
	}
	fclose(f);
	if (k->uidvalidity == 0 || k->uidnext == 0) {
		memset(k, 0, sizeof(*k));
		return -1;
	}
	return 0;
}

static int
maildir_cmp(const void *x, const void *y)
{
	const struct maildir_file *a = x, *b = y;
	if (a->mtime != b->mtime)
		return a->mtime < b->mtime ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* The flags of a file name's ":2," suffix, and its keywords: the
 * letters a-z that kw (from dovecot-keywords) names. */
static uint32_t
maildir_flags(const char *name, char *const kw[MAILDIR_KEYWORDS],
	      const char **keywords_r, unsigned *nkeywords_r)
{
	const char *info = strstr(name, ":2,");
	uint32_t f = 0;
	*nkeywords_r = 0;
	if (info == NULL)
		return 0;
	for (const char *p = info + 3; *p != '\0'; p++) {
		switch (*p) {
		case 'S': f |= STORE_F_SEEN; break;
		case 'R': f |= STORE_F_ANSWERED; break;
		case 'F': f |= STORE_F_FLAGGED; break;
		case 'T': f |= STORE_F_DELETED; break;
		case 'D': f |= STORE_F_DRAFT; break;
		default:
			if (*p >= 'a' && *p <= 'z' && kw[*p - 'a'] != NULL &&
			    *nkeywords_r < MAILDIR_KEYWORDS)
				keywords_r[(*nkeywords_r)++] = kw[*p - 'a'];
			break;
		}
	}
	return f;
}

/* An IMAP keyword (RFC 3501 flag-keyword: an atom, not a \flag) the
 * store takes (at most 250 octets). */
int
admin_keyword_ok(const char *k)
{
	if (*k == '\0' || strlen(k) > 250)
		return 0;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return 0;
	return 1;
}

/* DIR/dovecot-keywords: "N name" lines, N 0-25 naming the letter 'a' + N
 * (Dovecot's Maildir keywords, and what export --maildir writes); a name
 * that is no IMAP keyword is left out. */
static void
maildir_keywords_read(const char *dir, char *kw[MAILDIR_KEYWORDS])
{
	char path[4096], line[1024];
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		line[strcspn(line, "\r\n")] = '\0';
		long n = strtol(line, &end, 10);
		if (end == line || *end != ' ' || n < 0 ||
		    n >= MAILDIR_KEYWORDS || !admin_keyword_ok(end + 1) ||
		    kw[n] != NULL)
			continue;
		kw[n] = strdup(end + 1);
		if (kw[n] == NULL)
			abort();
	}
	fclose(f);
}

/* pristine: the folder never had a message (a moved mailbox's UIDs
 * can be kept, when DIR says what they were). */
static int
import_maildir(struct store *st, uint64_t user_num, const char *dir,
	       const char *mbox, int pristine)
{
	static const char *const subs[] = {"cur", "new"};
	struct maildir_file *files = NULL;
	size_t n = 0, cap = 0;
	int found = 0, rc = 0;
	for (size_t s = 0; s < 2 && rc == 0; s++) {
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", dir, subs[s]);
		DIR *d = opendir(sub);
		if (d == NULL) {
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "portico-admin: %s: %s\n", sub,
				strerror(errno));
			rc = -1;
			break;
		}
		found++;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			struct stat sb;
			char *p;
			if (asprintf(&p, "%s/%s", sub, de->d_name) < 0)
				abort();
			if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode)) {
				free(p);
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				files = realloc(files, cap * sizeof(*files));
				if (files == NULL)
					abort();
			}
			files[n].path = p;
			files[n].name = p + strlen(sub) + 1;
			files[n].mtime = (int64_t)sb.st_mtime;
			files[n].uid = 0;
			n++;
		}
		closedir(d);
	}
	if (rc == 0 && found == 0) {
		fprintf(stderr, "portico-admin: import: %s is a directory "
				"without cur/ or new/: not a Maildir\n",
			dir);
		rc = -1;
	}
	struct importer *im = calloc(1, sizeof(*im));
	if (im == NULL)
		abort();
	im->st = st;
	im->user_num = user_num;
	im->mbox = mbox;
	char *kw[MAILDIR_KEYWORDS] = {NULL};
	maildir_keywords_read(dir, kw);
	/* A folder written by export --maildir keeps its UIDVALIDITY and
	   UIDs (POP3 UIDLs too) when every message names its UID. */
	if (maildir_keep_read(dir, &im->keep) == 0) {
		int all = 1;
		for (size_t i = 0; i < n; i++) {
			files[i].uid = maildir_name_uid(files[i].name,
							im->keep.uidvalidity);
			if (files[i].uid == 0 ||
			    files[i].uid >= im->keep.uidnext)
				all = 0;
		}
		if (!pristine || !all) {
			fprintf(stderr,
				"portico-admin: import: %s: new UIDs (%s)\n",
				mbox,
				!pristine ? "the folder has had messages"
					  : "not every message names its UID");
			memset(&im->keep, 0, sizeof(im->keep));
			for (size_t i = 0; i < n; i++)
				files[i].uid = 0;
		}
	}
	if (n > 1)
		qsort(files, n, sizeof(*files),
		      im->keep.uidvalidity ? maildir_uid_cmp : maildir_cmp);
	for (size_t i = 1; im->keep.uidvalidity && i < n && rc == 0; i++)
		if (files[i].uid == files[i - 1].uid) {
			fprintf(stderr,
				"portico-admin: import: %s and %s: "
				"the same UID\n",
				files[i - 1].path, files[i].path);
			rc = -1;
		}
	for (size_t i = 0; i < n && rc == 0; i++) {
		im->next_uid = files[i].uid;
		struct buf data = BUF_INIT;
		const char *keywords[MAILDIR_KEYWORDS];
		unsigned nkeywords;
		if (read_file(files[i].path, &data) < 0) {
			fprintf(stderr, "portico-admin: %s: %s\n",
				files[i].path, strerror(errno));
			rc = -1;
		} else {
			uint32_t flags = maildir_flags(files[i].name, kw,
						       keywords, &nkeywords);
			rc = import_one(im, buf_ptr(&data), buf_used(&data), 0,
					files[i].mtime, flags, keywords,
					nkeywords);
		}
		buf_free(&data);
	}
	im->final = 1;
	if (rc == 0)
		rc = import_flush(im);
	for (size_t i = 0; i < im->n; i++) /* not stored after an error */
		buf_free(&im->msgs[i]);
	for (size_t i = 0; i < n; i++)
		free(files[i].path);
	if (rc == 0 && im->keep.uidvalidity != 0)
		fprintf(stderr, "kept UIDVALIDITY %u and the UIDs of %s\n",
			im->keep.uidvalidity, mbox);
	free(files);
	for (unsigned k = 0; k < MAILDIR_KEYWORDS; k++)
		free(kw[k]);
	if (rc == 0)
		printf("imported %u\n", im->total);
	free(im);
	return rc == 0 ? 0 : 1;
}

static int
import_file(struct store *st, const char *mailbox_id, const char *path,
	    const char *mbox)
{
	struct buf file = BUF_INIT;
	const char *err;
	MDB_txn *txn = NULL;
	struct store_user_rec u;
	if (store_read_begin(st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: import: %s\n", err);
		return 1;
	}
	int rc = store_user_get(st, txn, mailbox_id, &u, &err);
	struct store_mailbox_rec mb = {0};
	int have = rc != 0 ? -1
			   : store_mailbox_get(st, txn, u.user_num, mbox, &mb,
					       &err);
	store_read_end(&txn);
	if (rc != 0 || have < 0) {
		fprintf(stderr, "portico-admin: import: %s\n",
			rc > 0 ? "no such mailbox id in this store" : err);
		return 1;
	}
	if (have > 0) {
		/* A folder the account does not have yet (a move from
		   another backend): created and subscribed. */
		char ebuf[STORE_ERR_SIZE];
		struct store_mailbox_args ma = {
		    .user_num = u.user_num, .name = mbox, .subscribe = 1};
		if (store_run(st, store_op_mailbox_create, &ma, ebuf) != 0 ||
		    store_run(st, store_op_subscribe, &ma, ebuf) != 0) {
			fprintf(stderr,
				"portico-admin: import: create %s: %s\n", mbox,
				ebuf);
			return 1;
		}
		fprintf(stderr, "created mailbox %s\n", mbox);
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return import_maildir(
		    st, u.user_num, path, mbox,
		    have > 0 || (mb.uidnext == 1 && mb.messages == 0));
	if (read_file(path, &file) < 0) {
		fprintf(stderr, "portico-admin: %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	struct importer *im = calloc(1, sizeof(*im));
	if (im == NULL)
		abort();
	im->st = st;
	im->user_num = u.user_num;
	im->mbox = mbox;
	const char *d = buf_ptr(&file);
	size_t len = buf_used(&file);
	rc = 0;
	if (len >= 5 && memcmp(d, "From ", 5) == 0) {
		/* mbox: messages start at "From " lines. */
		size_t start = 0;
		while (start < len && rc == 0) {
			const char *nl = memchr(d + start, '\n', len - start);
			if (nl == NULL)
				break;
			size_t body = (size_t)(nl - d) + 1;
			int64_t date = mbox_from_date(d + start,
						      body - 1 - start);
			size_t next = body, end = len;
			while (next < len) {
				if (len - next >= 5 &&
				    memcmp(d + next, "From ", 5) == 0 &&
				    next > 0 && d[next - 1] == '\n') {
					end = next;
					break;
				}
				const char *n2 = memchr(d + next, '\n',
							len - next);
				if (n2 == NULL) {
					next = len;
					break;
				}
				next = (size_t)(n2 - d) + 1;
			}
			if (next >= len)
				end = len;
			rc = import_one(im, d + body, end - body, 1, date, 0,
					NULL, 0);
			start = end;
		}
	} else {
		rc = import_one(im, d, len, 0, 0, 0, NULL, 0);
	}
	if (rc == 0)
		rc = import_flush(im);
	buf_free(&file);
	if (rc == 0)
		printf("imported %u\n", im->total);
	free(im);
	return rc == 0 ? 0 : 1;
}

static int
list_mailboxes(struct store *st, const char *mailbox_id)
{
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	struct store_mailbox_info *list;
	size_t n;
	if (store_read_begin(st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: %s\n", err);
		return 1;
	}
	int rc = store_user_get(st, txn, mailbox_id, &u, &err);
	if (rc != 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: %s\n",
			rc > 0 ? "no such mailbox id in this store" : err);
		return 1;
	}
	if (store_mailboxes_list(st, txn, u.user_num, &list, &n, &err) < 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: %s\n", err);
		return 1;
	}
	store_read_end(&txn);
	printf("%-24s %10s %10s %12s %s\n", "mailbox", "messages", "unseen",
	       "bytes", "special-use");
	for (size_t i = 0; i < n; i++)
		printf("%-24s %10u %10u %12llu %s\n", list[i].name,
		       list[i].rec.messages, list[i].rec.unseen,
		       (unsigned long long)list[i].rec.size,
		       store_special_use_name(list[i].rec.special_use));
	store_mailboxes_free(list, n);
	return 0;
}

/* import MAILBOX_ID FILE [--mailbox NAME], or MAILBOX_ID --account FILE */
int
admin_store_import(struct admin *a, int argc, char **argv)
{
	const char *mbox = "INBOX";
	if (argc >= 2 && strcmp(argv[1], "--account") == 0) {
		if (argc == 3)
			return admin_account_import(a, argv[0], argv[2], NULL);
		if (argc == 5 && strcmp(argv[3], "--under") == 0)
			return admin_account_import(a, argv[0], argv[2],
						    argv[4]);
		return ADMIN_USAGE;
	}
	if (argc == 4 && strcmp(argv[2], "--mailbox") == 0)
		mbox = argv[3];
	else if (argc != 2)
		return ADMIN_USAGE;
	return import_file(a->st, argv[0], argv[1], mbox);
}

/* list MAILBOX_ID */
int
admin_store_list(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return ADMIN_USAGE;
	return list_mailboxes(a->st, argv[0]);
}

/* -- export ------------------------------------------------------------------*/

/* The envelope sender for the From_ line: Return-Path, else the address
 * of From:, else MAILER-DAEMON; one word without spaces. */
static void
export_sender(const char *msg, size_t len, char *out, size_t outsize)
{
	snprintf(out, outsize, "MAILER-DAEMON");
	const char *hend = memmem(msg, len, "\r\n\r\n", 4);
	size_t hlen = hend ? (size_t)(hend - msg) + 2 : len;
	static const char *const names[] = {"Return-Path:", "From:"};
	for (int k = 0; k < 2; k++) {
		size_t nl = strlen(names[k]);
		for (size_t i = 0; i + nl <= hlen;) {
			const char *eol = memchr(msg + i, '\n', hlen - i);
			size_t le = eol ? (size_t)(eol - msg) : hlen;
			if (le - i > nl && strncasecmp(msg + i, names[k], nl) ==
						   0) {
				char v[512];
				size_t vl = le - i - nl;
				if (vl >= sizeof(v))
					vl = sizeof(v) - 1;
				memcpy(v, msg + i + nl, vl);
				v[vl] = '\0';
				char *lt = strchr(v, '<'), *gt;
				char *a = lt ? lt + 1 : v;
				if (lt && (gt = strchr(a, '>')) != NULL)
					*gt = '\0';
				a += strspn(a, " \t");
				a[strcspn(a, " \t\r\n")] = '\0';
				if (a[0] != '\0' && strchr(a, '@') != NULL) {
					snprintf(out, outsize, "%s", a);
					return;
				}
				if (k == 0 && lt != NULL && a[0] == '\0')
					return; /* <>: MAILER-DAEMON */
				break;
			}
			i = le + 1;
		}
	}
}

/* One message in mboxrd form. */
static void
export_message(FILE *out, const char *msg, size_t len, int64_t date)
{
	char sender[512], when[64];
	time_t t = (time_t)date;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
	export_sender(msg, len, sender, sizeof(sender));
	fprintf(out, "From %s %s\n", sender, when);
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - msg) : len;
		size_t lend = end;
		if (nl != NULL && lend > i && msg[lend - 1] == '\r')
			lend--;
		size_t q = i;
		while (q < lend && msg[q] == '>')
			q++;
		if (lend - q >= 5 && memcmp(msg + q, "From ", 5) == 0)
			fputc('>', out);
		fwrite(msg + i, 1, lend - i, out);
		fputc('\n', out);
		i = nl ? end + 1 : len;
	}
	fputc('\n', out);
}

/* -- export as a Maildir ----------------------------------------------------
 *
 * DIR (made here; it must not exist) with cur/, new/ and tmp/, a file per
 * message in cur/ holding its octets as stored, its modification time the
 * internal date, its name "DATE.P<uidvalidity>U<uid>.portico:2,FLAGS":
 * D F R S T for \Draft \Flagged \Answered \Seen \Deleted and a letter
 * a-z per keyword, which DIR/dovecot-keywords names ("0 $Junk"), as
 * Dovecot writes them.  import reads it back with flags and keywords. */

struct maildir_out {
	const char *dir;
	char *kw[MAILDIR_KEYWORDS]; /* the mailbox's keywords by bit */
	unsigned dropped;           /* keywords beyond the letters */
};

static int
maildir_out_open(struct maildir_out *o, const char *names, size_t len,
		 const struct store_mailbox_rec *mb)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	char path[4096];
	if (mkdir(o->dir, 0700) < 0) {
		fprintf(stderr, "portico-admin: export: %s: %s\n", o->dir,
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", o->dir, subs[i]);
		if (mkdir(path, 0700) < 0) {
			fprintf(stderr, "portico-admin: export: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
	}
	/* what import needs to keep the UIDs */
	snprintf(path, sizeof(path), "%s/portico-mailbox", o->dir);
	FILE *f = fopen(path, "w");
	if (f == NULL ||
	    fprintf(f, "uidvalidity %u\nuidnext %u\nhighestmodseq %llu\n",
		    mb->uidvalidity, mb->uidnext,
		    (unsigned long long)mb->highestmodseq) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "portico-admin: export: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/dovecot-keywords", o->dir);
	f = NULL;
	unsigned k = 0;
	for (size_t off = 0; off < len; k++) {
		const char *name = names + off;
		size_t n = strnlen(name, len - off);
		off += n + 1;
		if (k >= MAILDIR_KEYWORDS) {
			o->dropped++;
			continue;
		}
		o->kw[k] = strndup(name, n);
		if (o->kw[k] == NULL)
			abort();
		if (f == NULL && (f = fopen(path, "w")) == NULL) {
			fprintf(stderr, "portico-admin: export: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		fprintf(f, "%u %s\n", k, o->kw[k]);
	}
	if (f != NULL && fclose(f) != 0) {
		fprintf(stderr, "portico-admin: export: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int
maildir_out_message(struct maildir_out *o, uint32_t uidvalidity,
		    const struct store_msg *m, const char *data, size_t len)
{
	char info[8 + MAILDIR_KEYWORDS], tmp[4096], cur[4096], name[128];
	size_t i = 0;
	uint32_t f = m->rec.flags;
	/* the letters in ASCII order, as the Maildir convention wants */
	if (f & STORE_F_DRAFT)
		info[i++] = 'D';
	if (f & STORE_F_FLAGGED)
		info[i++] = 'F';
	if (f & STORE_F_ANSWERED)
		info[i++] = 'R';
	if (f & STORE_F_SEEN)
		info[i++] = 'S';
	if (f & STORE_F_DELETED)
		info[i++] = 'T';
	for (unsigned k = 0; k < MAILDIR_KEYWORDS; k++)
		if (o->kw[k] != NULL && (m->rec.keywords & (1ull << k)))
			info[i++] = (char)('a' + k);
	info[i] = '\0';
	snprintf(name, sizeof(name), "%lld.P%uU%u.portico",
		 (long long)m->rec.internaldate, uidvalidity, m->uid);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", o->dir, name);
	snprintf(cur, sizeof(cur), "%s/cur/%s:2,%s", o->dir, name, info);
	FILE *out = fopen(tmp, "w");
	int ok = out != NULL && fwrite(data, 1, len, out) == len;
	if (out != NULL && fclose(out) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "portico-admin: export: %s: %s\n", tmp,
			strerror(errno));
		return -1;
	}
	struct timespec ts[2] = {{(time_t)m->rec.internaldate, 0},
				 {(time_t)m->rec.internaldate, 0}};
	if (utimensat(AT_FDCWD, tmp, ts, 0) < 0 || rename(tmp, cur) < 0) {
		fprintf(stderr, "portico-admin: export: %s: %s\n", cur,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* export MAILBOX_ID [--mailbox NAME] [--maildir DIR]: mboxrd to stdout,
 * or a Maildir; export MAILBOX_ID --account FILE: the whole account */
int
admin_store_export(struct admin *a, int argc, char **argv)
{
	const char *name = "INBOX";
	struct maildir_out md = {NULL, {NULL}, 0};
	if (argc < 1 || argc % 2 != 1)
		return ADMIN_USAGE;
	if (argc == 3 && strcmp(argv[1], "--account") == 0)
		return admin_account_export(a, argv[0], argv[2]);
	for (int i = 1; i < argc; i += 2) {
		if (strcmp(argv[i], "--mailbox") == 0)
			name = argv[i + 1];
		else if (strcmp(argv[i], "--maildir") == 0)
			md.dir = argv[i + 1];
		else
			return ADMIN_USAGE;
	}
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	struct store_mailbox_rec mb;
	if (store_read_begin(a->st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: export: %s\n", err);
		return 1;
	}
	int rc = store_user_get(a->st, txn, argv[0], &u, &err);
	if (rc == 0)
		rc = store_mailbox_get(a->st, txn, u.user_num, name, &mb, &err);
	if (rc != 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: export: %s\n",
			rc < 0 ? err
			       : "no such mailbox id in this store, or no such "
				 "mailbox");
		return 1;
	}
	struct store_msg *msgs = NULL;
	size_t n = 0;
	if (store_messages_list(a->st, txn, mb.mbox_id, &msgs, &n, &err) < 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: export: %s\n", err);
		return 1;
	}
	rc = 0;
	if (md.dir != NULL) {
		const char *names = NULL;
		size_t nlen = 0;
		if (store_keywords_get(a->st, txn, mb.mbox_id, &names, &nlen,
				       &err) < 0) {
			fprintf(stderr, "portico-admin: export: %s\n", err);
			rc = 1;
		} else if (maildir_out_open(&md, names, nlen, &mb) < 0) {
			rc = 1;
		}
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *data;
		size_t len;
		if (store_body_get(a->st, txn, msgs[i].rec.body_id, &data, &len,
				   &err) < 0) {
			fprintf(stderr, "portico-admin: export: uid %u: %s\n",
				msgs[i].uid, err);
			rc = 1;
			break;
		}
		if (md.dir == NULL)
			export_message(stdout, data, len,
				       msgs[i].rec.internaldate);
		else if (maildir_out_message(&md, mb.uidvalidity, &msgs[i],
					     data, len) < 0)
			rc = 1;
	}
	store_read_end(&txn);
	free(msgs);
	for (unsigned k = 0; k < MAILDIR_KEYWORDS; k++)
		free(md.kw[k]);
	if (md.dir != NULL) {
		if (md.dropped > 0)
			fprintf(stderr,
				"portico-admin: export: %u keywords "
				"beyond the 26 Maildir letters left "
				"out\n",
				md.dropped);
		if (rc == 0)
			fprintf(stderr,
				"exported %zu messages of %s %s to "
				"%s\n",
				n, argv[0], name, md.dir);
		return rc;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "portico-admin: export: writing: %s\n",
			strerror(errno));
		return 1;
	}
	if (rc == 0)
		fprintf(stderr, "exported %zu messages of %s %s\n", n, argv[0],
			name);
	return rc;
}

/* -- show ------------------------------------------------------------------*/

static void
quota_line(const char *what, uint64_t used, uint64_t limit, const char *unit)
{
	printf("quota-%-9s %llu%s", what, (unsigned long long)used, unit);
	if (limit == 0)
		printf(", no limit\n");
	else
		printf(" of %llu%s (%.1f%%)\n", (unsigned long long)limit,
		       unit, 100.0 * (double)used / (double)limit);
}

/* The limits in force (*q) and the user's record (*own, when it has one)
 * over the backend's (backend.quota_storage, backend.quota_messages of
 * the configuration given); 1 a record, 0 none, -1 error. */
static int
user_quota(struct admin *a, MDB_txn *txn, uint64_t user_num,
	   struct store_quota *q, struct store_quota *own, const char **err)
{
	q->storage = (uint64_t)a->cfg.backend_quota_storage;
	q->messages = (uint64_t)a->cfg.backend_quota_messages;
	q->source = STORE_QUOTA_NONE;
	int rc = store_quota_own(a->st, txn, user_num, own, err);
	if (rc == 1) {
		if (own->storage != STORE_QUOTA_BACKEND)
			q->storage = own->storage;
		if (own->messages != STORE_QUOTA_BACKEND)
			q->messages = own->messages;
		q->source = own->source;
	}
	return rc;
}

static void
quota_lines(uint64_t used, uint64_t nmsgs, const struct store_quota *q,
	    const struct store_quota *own)
{
	static const char *const whose[] = {
		[STORE_QUOTA_NONE] = "the backend's (backend.quota_storage, "
				     "backend.quota_messages)",
		[STORE_QUOTA_ADMIN] = "the user's own (portico-admin quota)",
		[STORE_QUOTA_DIRECTORY] = "the directory's (porticoQuotaStorage, "
					  "porticoQuotaMessages)",
	};
	quota_line("storage", used, q->storage, " bytes");
	quota_line("messages", nmsgs, q->messages, "");
	printf("quota-limits    %s", q->source <= STORE_QUOTA_DIRECTORY
					     ? whose[q->source]
					     : "of an unknown source");
	if (q->source != STORE_QUOTA_NONE &&
	    own->storage == STORE_QUOTA_BACKEND)
		printf("; storage: the backend's");
	if (q->source != STORE_QUOTA_NONE &&
	    own->messages == STORE_QUOTA_BACKEND)
		printf("; messages: the backend's");
	printf("\n");
}

/* show MAILBOX_ID: the account's folders with their counts and sizes,
 * and its quota. */
int
admin_store_show(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return ADMIN_USAGE;
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	struct store_mailbox_info *list = NULL;
	size_t n = 0;
	uint64_t used = 0, nmsgs = 0;
	char **subs = NULL;
	size_t nsubs = 0;
	struct store_quota q, own;
	int64_t last = 0;
	int have_last = 0, have_warned = 0, have_replied = 0;
	unsigned warned = 0;
	uint8_t *replied = NULL;
	size_t replied_len = 0;
	if (store_read_begin(a->st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: show: %s\n", err);
		return 1;
	}
	int rc = store_user_get(a->st, txn, argv[0], &u, &err);
	if (rc == 0 &&
	    (store_mailboxes_list(a->st, txn, u.user_num, &list, &n, &err) <
		 0 ||
	     store_usage_get(a->st, txn, u.user_num, &used, &nmsgs, &err) < 0 ||
	     store_subscriptions(a->st, txn, u.user_num, &subs, &nsubs, &err) <
		 0 ||
	     user_quota(a, txn, u.user_num, &q, &own, &err) < 0 ||
	     (have_last = store_last_login_get(a->st, txn, u.user_num, &last,
					       &err)) < 0 ||
	     (have_warned = store_quota_warned_get(a->st, txn, u.user_num,
						   &warned, &err)) < 0 ||
	     (have_replied = store_auto_reply_get(
		  a->st, txn, u.user_num, &replied, &replied_len, &err)) < 0))
		rc = -1;
	store_read_end(&txn);
	if (rc != 0) {
		fprintf(stderr, "portico-admin: show: %s\n",
			rc > 0 ? "no such mailbox id in this store" : err);
		store_mailboxes_free(list, n);
		free(replied);
		return 1;
	}
	char created[64];
	time_t t = (time_t)u.created;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("mailbox-id %s\ncreated    %s\n", argv[0], created);
	if (have_last) {
		t = (time_t)last;
		gmtime_r(&t, &tm);
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S UTC",
			 &tm);
	}
	printf("last-login %s\n", have_last ? created : "-");
	printf("%-24s %10s %10s %12s %-11s %s\n", "folder", "messages",
	       "unseen", "bytes", "special-use", "subscribed");
	uint64_t tm_msgs = 0, tm_unseen = 0, tm_size = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_mailbox_rec *r = &list[i].rec;
		int sub = 0;
		for (size_t k = 0; k < nsubs && !sub; k++)
			sub = strcmp(subs[k], list[i].name) == 0;
		const char *su = store_special_use_name(r->special_use);
		printf("%-24s %10u %10u %12llu %-11s %s\n", list[i].name,
		       r->messages, r->unseen, (unsigned long long)r->size,
		       su && su[0] ? su : "-", sub ? "yes" : "no");
		tm_msgs += r->messages;
		tm_unseen += r->unseen;
		tm_size += r->size;
	}
	printf("%-24s %10llu %10llu %12llu\n", "total",
	       (unsigned long long)tm_msgs, (unsigned long long)tm_unseen,
	       (unsigned long long)tm_size);
	quota_lines(used, nmsgs, &q, &own);
	/* backend.quota_warnings: the level the user was last told of */
	if (have_warned)
		printf("quota-warned    %u%%\n", warned);
	else
		printf("quota-warned    -\n");
	/* the senders the automatic reply answered, the last one's time */
	if (have_replied && replied_len >= STORE_AUTO_REPLY_ENTRY) {
		size_t ne = replied_len / STORE_AUTO_REPLY_ENTRY;
		const uint8_t *p = replied + (ne - 1) * STORE_AUTO_REPLY_ENTRY;
		uint64_t at = 0;
		for (int b = 0; b < 8; b++)
			at = at << 8 | p[8 + b];
		t = (time_t)at;
		gmtime_r(&t, &tm);
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S UTC",
			 &tm);
		printf("auto-replied    %zu sender%s, the last at %s\n", ne,
		       ne == 1 ? "" : "s", created);
	} else {
		printf("auto-replied    -\n");
	}
	free(replied);
	store_mailboxes_free(list, n);
	store_names_free(subs, nsubs);
	return 0;
}

/* quota MAILBOX_ID [STORAGE MESSAGES | --default]: shows the user's
 * limits and usage; sets limits of its own (STORAGE a size such as 2G,
 * MESSAGES a count, 0 for no limit, "default" for the backend's), or
 * gives it the backend's again.  They apply to its next APPEND, COPY or
 * delivery, sessions open or not. */
int
admin_store_quota(struct admin *a, int argc, char **argv)
{
	if (argc < 1)
		return ADMIN_USAGE;
	struct store_quota_set_args qa = {.mailbox_id = argv[0],
					  .source = STORE_QUOTA_ADMIN};
	char ebuf[STORE_ERR_SIZE];
	if (argc == 2 && strcmp(argv[1], "--default") == 0) {
		qa.clear = 1;
	} else if (argc == 3) {
		char *end;
		errno = 0;
		unsigned long long m = strtoull(argv[2], &end, 10);
		int m_bad = errno != 0 || end == argv[2] || *end != '\0' ||
			    argv[2][0] == '-' || m == STORE_QUOTA_BACKEND;
		int sdef = strcmp(argv[1], "default") == 0;
		int mdef = strcmp(argv[2], "default") == 0;
		if (sdef)
			qa.q.storage = STORE_QUOTA_BACKEND;
		if (sdef && mdef) {
			qa.clear = 1;
		} else if (!sdef &&
			   (config_parse_size(argv[1], &qa.q.storage) < 0 ||
			    qa.q.storage == STORE_QUOTA_BACKEND)) {
			fprintf(stderr, "portico-admin: quota: storage '%s': "
					"a size such as 500M or 2G (0: no "
					"limit)\n",
				argv[1]);
			return 1;
		}
		if (!mdef && m_bad) {
			fprintf(stderr, "portico-admin: quota: messages '%s': "
					"a count (0: no limit)\n",
				argv[2]);
			return 1;
		}
		qa.q.messages = mdef ? STORE_QUOTA_BACKEND : m;
	} else if (argc != 1) {
		return ADMIN_USAGE;
	}
	if (argc > 1 && store_run(a->st, store_op_quota_set, &qa, ebuf) != 0) {
		fprintf(stderr, "portico-admin: quota %s: %s\n", argv[0], ebuf);
		return 1;
	}
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	struct store_quota q, own;
	uint64_t used = 0, nmsgs = 0;
	if (store_read_begin(a->st, &txn, &err) < 0) {
		fprintf(stderr, "portico-admin: quota: %s\n", err);
		return 1;
	}
	int rc = store_user_get(a->st, txn, argv[0], &u, &err);
	if (rc == 0 &&
	    (store_usage_get(a->st, txn, u.user_num, &used, &nmsgs, &err) <
		     0 ||
	     user_quota(a, txn, u.user_num, &q, &own, &err) < 0))
		rc = -1;
	store_read_end(&txn);
	if (rc != 0) {
		fprintf(stderr, "portico-admin: quota: %s\n",
			rc > 0 ? "no such mailbox id in this store" : err);
		return 1;
	}
	quota_lines(used, nmsgs, &q, &own);
	return 0;
}

/* -- expunge ---------------------------------------------------------------*/

/* UIDs expunged in one transaction. */
#define EXPUNGE_CHUNK 1000

/* Which messages of a folder expunge removes. */
struct expunge_crit {
	enum { EX_ALL, EX_SAVED, EX_BEFORE, EX_MSGID } kind;
	int64_t cut;      /* EX_SAVED, EX_BEFORE: unix time */
	char msgid[1000]; /* EX_MSGID: "<...>" */
};

/* The message's first Message-ID field is want (white space around it
 * aside). */
static int
message_id_is(const char *data, size_t len, const char *want)
{
	size_t pos = 0, wlen = strlen(want);
	struct mime_hfield f;
	size_t hl = mime_header_len(data, len);
	while (mime_header_next(data, hl, &pos, &f)) {
		if (!mime_hfield_is(&f, "Message-ID"))
			continue;
		const char *v = f.val;
		size_t n = f.vlen;
		while (n > 0 && strchr(" \t\r\n", v[0]) != NULL)
			v++, n--;
		while (n > 0 && strchr(" \t\r\n", v[n - 1]) != NULL)
			n--;
		return n == wlen && memcmp(v, want, n) == 0;
	}
	return 0;
}

/* The folder's messages that c selects, expunged in transactions of
 * EXPUNGE_CHUNK: 0 (*removed_r of them), or -1 after saying why. */
static int
expunge_folder(struct admin *a, const char *id, const char *name,
	       uint64_t mbox_id, const struct expunge_crit *c,
	       size_t *removed_r)
{
	MDB_txn *txn = NULL;
	const char *err;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	*removed_r = 0;
	if (store_read_begin(a->st, &txn, &err) < 0 ||
	    store_messages_list(a->st, txn, mbox_id, &msgs, &n, &err) < 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: expunge: %s %s: %s\n", id, name,
			err);
		return -1;
	}
	uint32_t *uids = malloc((n ? n : 1) * sizeof(*uids));
	if (uids == NULL)
		abort();
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct store_msg_rec *r = &msgs[i].rec;
		int take = c->kind == EX_ALL;
		if (c->kind == EX_SAVED || c->kind == EX_BEFORE)
			take = (c->kind == EX_SAVED ? r->savedate
						    : r->internaldate) < c->cut;
		if (c->kind == EX_MSGID) {
			const char *data;
			size_t len;
			if (store_body_get(a->st, txn, r->body_id, &data, &len,
					   &err) < 0) {
				fprintf(stderr,
					"portico-admin: expunge: %s %s: "
					"%s\n",
					id, name, err);
				rc = -1;
				break;
			}
			take = message_id_is(data, len, c->msgid);
		}
		if (take)
			uids[k++] = msgs[i].uid;
	}
	store_read_end(&txn);
	free(msgs);
	char ebuf[STORE_ERR_SIZE];
	int64_t now = (int64_t)time(NULL);
	for (size_t off = 0; off < k && rc == 0; off += EXPUNGE_CHUNK) {
		struct store_expunge_args ea = {
		    .mbox_id = mbox_id,
		    .uids = uids + off,
		    .n = k - off < EXPUNGE_CHUNK ? k - off : EXPUNGE_CHUNK,
		    .now = now,
		};
		if (store_run(a->st, store_op_expunge, &ea, ebuf) != 0) {
			fprintf(stderr,
				"portico-admin: expunge: %s %s: %s (%zu "
				"expunged before)\n",
				id, name, ebuf, *removed_r);
			rc = -1;
		} else {
			*removed_r += ea.removed;
		}
	}
	free(uids);
	return rc;
}

static int
account_ids_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)v;
	(void)vl;
	struct buf *ids = ctx;
	buf_append(ids, k, kl);
	buf_append(ids, "", 1);
	return 0;
}

/* expunge (MAILBOX_ID | --every-account) --mailbox NAME|'*' (--all |
 * --saved-before AGE | --before AGE | --message-id ID): removes the
 * folder's messages (every folder's with '*'), of one account or of every
 * account of the store: all of them, those that reached it (SAVEDATE) or
 * whose internal date is more than AGE (a time such as 30d) ago, or those
 * whose Message-ID is ID (a message sent to many, taken back from all).
 * Open sessions see them go as after a client's EXPUNGE (IDLE within
 * backend.external_change_interval). */
int
admin_store_expunge(struct admin *a, int argc, char **argv)
{
	if (argc < 1)
		return ADMIN_USAGE;
	int every = strcmp(argv[0], "--every-account") == 0;
	const char *id = every ? NULL : argv[0], *name = NULL;
	struct expunge_crit c = {.kind = EX_ALL};
	int have = 0;
	int64_t now = (int64_t)time(NULL);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--mailbox") == 0 && i + 1 < argc &&
		    name == NULL) {
			name = argv[++i];
		} else if (strcmp(o, "--all") == 0 && !have) {
			have = 1;
		} else if ((strcmp(o, "--saved-before") == 0 ||
			    strcmp(o, "--before") == 0) &&
			   i + 1 < argc && !have) {
			int64_t age;
			c.kind = o[2] == 's' ? EX_SAVED : EX_BEFORE;
			if (config_parse_time(argv[++i], &age) < 0 ||
			    age <= 0) {
				fprintf(stderr,
					"portico-admin: expunge: '%s': a time "
					"such as 30d, 12h or 90m\n",
					argv[i]);
				return 1;
			}
			c.cut = now - age;
			have = 1;
		} else if (strcmp(o, "--message-id") == 0 && i + 1 < argc &&
			   !have) {
			const char *m = argv[++i];
			size_t ml = strlen(m);
			int bracketed = ml >= 2 && m[0] == '<' &&
					m[ml - 1] == '>';
			if (ml == 0 || ml + 3 > sizeof(c.msgid) ||
			    strpbrk(m, " \t\r\n") != NULL) {
				fprintf(stderr,
					"portico-admin: expunge: '%s': a "
					"Message-ID such as "
					"<id@example.com>\n",
					m);
				return 1;
			}
			snprintf(c.msgid, sizeof(c.msgid), "%s%s%s",
				 bracketed ? "" : "<", m, bracketed ? "" : ">");
			c.kind = EX_MSGID;
			have = 1;
		} else {
			return ADMIN_USAGE;
		}
	}
	if (name == NULL || !have)
		return ADMIN_USAGE;
	int all_folders = strcmp(name, "*") == 0;
	/* the accounts: one, or every one of the store */
	struct buf ids = BUF_INIT;
	MDB_txn *txn = NULL;
	const char *err;
	if (every) {
		if (store_read_begin(a->st, &txn, &err) < 0 ||
		    store_walk(a->st, txn, "users", NULL, 0, account_ids_fn,
			       &ids, &err) < 0) {
			store_read_end(&txn);
			fprintf(stderr, "portico-admin: expunge: %s\n", err);
			buf_free(&ids);
			return 1;
		}
		store_read_end(&txn);
	} else {
		buf_append(&ids, id, strlen(id) + 1);
	}
	size_t total = 0, folders = 0, accounts = 0, removed;
	int failed = 0;
	for (const char *p = buf_ptr(&ids), *end = p + buf_used(&ids);
	     p < end && !failed; p += strlen(p) + 1) {
		struct store_user_rec u;
		struct store_mailbox_info *list = NULL;
		size_t n = 0;
		if (store_read_begin(a->st, &txn, &err) < 0) {
			fprintf(stderr, "portico-admin: expunge: %s\n", err);
			failed = 1;
			break;
		}
		int rc = store_user_get(a->st, txn, p, &u, &err);
		if (rc == 0 && all_folders) {
			rc = store_mailboxes_list(a->st, txn, u.user_num, &list,
						  &n, &err);
		} else if (rc == 0) {
			list = calloc(1, sizeof(*list));
			if (list == NULL || (list->name = strdup(name)) == NULL)
				abort();
			n = 1;
			rc = store_mailbox_get(a->st, txn, u.user_num, name,
					       &list->rec, &err);
		}
		store_read_end(&txn);
		if (rc != 0 && (rc < 0 || !every)) {
			fprintf(stderr, "portico-admin: expunge: %s\n",
				rc < 0 ? err
				       : "no such mailbox id in this store, or "
					 "no such mailbox");
			store_mailboxes_free(list, n);
			failed = 1;
			break;
		}
		if (rc == 0)
			accounts++;
		for (size_t i = 0; rc == 0 && i < n && !failed; i++) {
			if (expunge_folder(a, p, list[i].name,
					   list[i].rec.mbox_id, &c,
					   &removed) < 0) {
				failed = 1;
				break;
			}
			folders++;
			total += removed;
			if (removed > 0 || (!every && !all_folders))
				printf("expunged %zu messages of %s %s\n",
				       removed, p, list[i].name);
		}
		store_mailboxes_free(list, n);
	}
	buf_free(&ids);
	if (!failed && (every || all_folders))
		printf("expunged %zu messages in %zu folders of %zu "
		       "account%s\n",
		       total, folders, accounts, accounts == 1 ? "" : "s");
	return failed;
}

/* accounts [--over PERCENT] [--inactive AGE]: every account of the store
 * with what it holds and its limits (each account's own, else the
 * backend's), how much of the nearer limit it uses, and when it last
 * logged in (backend.last_login_interval); --over: only those at PERCENT
 * or more of a limit (to warn before they are full); --inactive: only
 * those without a login for AGE (or none recorded). */
int
admin_store_accounts(struct admin *a, int argc, char **argv)
{
	double over = -1;
	int64_t idle = -1;
	for (int i = 0; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--over") == 0 && i + 1 < argc &&
		    over < 0) {
			over = strtod(argv[++i], &end);
			if (end == argv[i] || *end != '\0' || !(over >= 0)) {
				fprintf(stderr,
					"portico-admin: accounts: --over '%s': "
					"a percentage such as 90\n",
					argv[i]);
				return 1;
			}
		} else if (strcmp(argv[i], "--inactive") == 0 && i + 1 < argc &&
			   idle < 0) {
			if (config_parse_time(argv[++i], &idle) < 0 ||
			    idle <= 0) {
				fprintf(stderr,
					"portico-admin: accounts: --inactive "
					"'%s': a time such as 90d\n",
					argv[i]);
				return 1;
			}
		} else {
			return ADMIN_USAGE;
		}
	}
	int64_t now = (int64_t)time(NULL);
	struct buf ids = BUF_INIT;
	MDB_txn *txn = NULL;
	const char *err;
	if (store_read_begin(a->st, &txn, &err) < 0 ||
	    store_walk(a->st, txn, "users", NULL, 0, account_ids_fn, &ids,
		       &err) < 0) {
		store_read_end(&txn);
		fprintf(stderr, "portico-admin: accounts: %s\n", err);
		buf_free(&ids);
		return 1;
	}
	printf("%-32s %10s %14s %14s %10s %6s %s\n", "mailbox-id", "messages",
	       "bytes", "storage-limit", "msg-limit", "use", "last-login");
	uint64_t n = 0, all_msgs = 0, all_bytes = 0;
	int rc = 0;
	for (const char *p = buf_ptr(&ids), *end = p + buf_used(&ids);
	     p < end && rc == 0; p += strlen(p) + 1) {
		struct store_user_rec u;
		struct store_quota q, own;
		uint64_t used = 0, msgs = 0;
		int64_t last = 0;
		int have_last = 0;
		if (store_user_get(a->st, txn, p, &u, &err) != 0 ||
		    store_usage_get(a->st, txn, u.user_num, &used, &msgs,
				    &err) < 0 ||
		    user_quota(a, txn, u.user_num, &q, &own, &err) < 0 ||
		    (have_last = store_last_login_get(a->st, txn, u.user_num,
						      &last, &err)) < 0) {
			fprintf(stderr, "portico-admin: accounts: %s: %s\n", p,
				err);
			rc = 1;
			break;
		}
		double use = -1;
		if (q.storage > 0)
			use = 100.0 * (double)used / (double)q.storage;
		if (q.messages > 0 &&
		    100.0 * (double)msgs / (double)q.messages > use)
			use = 100.0 * (double)msgs / (double)q.messages;
		if (over >= 0 && use < over)
			continue;
		if (idle >= 0 && have_last && now - last < idle)
			continue;
		char pct[16] = "-", when[32] = "-";
		if (use >= 0)
			snprintf(pct, sizeof(pct), "%.1f%%", use);
		if (have_last) {
			time_t t = (time_t)last;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		printf("%-32s %10" PRIu64 " %14" PRIu64 " %14" PRIu64
		       " %10" PRIu64 " %6s %s\n",
		       p, msgs, used, q.storage, q.messages, pct, when);
		n++;
		all_msgs += msgs;
		all_bytes += used;
	}
	store_read_end(&txn);
	buf_free(&ids);
	if (rc == 0)
		printf("%" PRIu64 " account%s, %" PRIu64 " messages, %" PRIu64
		       " bytes\n",
		       n, n == 1 ? "" : "s", all_msgs, all_bytes);
	return rc;
}
