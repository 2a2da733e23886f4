/* admin_store.c - portico-admin's mailbox commands: import, list.
 *
 * The store is opened directly; LMDB lets this run beside the backend.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/admin/admin.h"
#include "backend/mime/mime.h"
#include "common/buf.h"

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
	size_t n, bytes;
	unsigned total;
};

static int
import_flush(struct importer *im)
{
	if (im->n == 0)
		return 0;
	struct store_new_msg *nm = calloc(im->n, sizeof(*nm));
	struct buf *meta = calloc(im->n, sizeof(*meta));
	if (nm == NULL || meta == NULL)
		abort();
	for (size_t i = 0; i < im->n; i++) {
		nm[i].data = buf_ptr(&im->msgs[i]);
		nm[i].len = buf_used(&im->msgs[i]);
		nm[i].internaldate = im->dates[i];
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
	   int64_t date)
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
	im->bytes += buf_used(msg);
	im->n++;
	if (im->n == IMPORT_BATCH || im->bytes >= IMPORT_BATCH_BYTES)
		return import_flush(im);
	return 0;
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
	store_read_end(&txn);
	if (rc != 0) {
		fprintf(stderr, "portico-admin: import: %s\n",
			rc > 0 ? "no such mailbox id in this store" : err);
		return 1;
	}
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
			rc = import_one(im, d + body, end - body, 1, date);
			start = end;
		}
	} else {
		rc = import_one(im, d, len, 0, 0);
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

/* import MAILBOX_ID FILE [--mailbox NAME] */
int
admin_store_import(struct admin *a, int argc, char **argv)
{
	const char *mbox = "INBOX";
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
