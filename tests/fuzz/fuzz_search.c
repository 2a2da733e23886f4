/* fuzz_search.c - IMAP SEARCH: criteria parsing and evaluation against a
 * real store.
 *
 * Once, at start: a store in a fresh temporary directory, one user, and
 * an INBOX of messages chosen to reach every part of the evaluator
 * (multipart, base64, quoted-printable, encoded words in several
 * charsets, a message/rfc822 inside, broken MIME, flags and keywords,
 * internal and sent dates, sizes).  Then each input is the text after
 * "a UID SEARCH " (literals allowed: it goes through the bounded reader
 * first), evaluated by imap_cmd_search() exactly as a session does.
 *
 * Properties: exactly one tagged answer; on OK, the untagged SEARCH lists
 * UIDs of the mailbox, ascending, each once; and when both X and
 * "NOT (X)" are answered OK, their results are complementary.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/imap/imap.h"
#include "backend/mime/mime.h"
#include "backend/store/store.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/imap_parser.h"
#include "common/lineparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL()                                                                 \
	(fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

/* -- what the search code needs of a session ------------------------------ */

void
session_write(struct bsession *s, const void *data, size_t len)
{
	buf_append(&s->out, data, len);
}

void
session_vprintf(struct bsession *s, const char *fmt, va_list ap)
{
	buf_vprintf(&s->out, fmt, ap);
}

void
session_printf(struct bsession *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
}

void
imap_tagged(struct imap_cmd_ctx *cmd, const char *status, const char *fmt,
	    ...)
{
	struct bsession *s = cmd->is->s;
	va_list ap;
	session_printf(s, "%s %s ", cmd->tag, status);
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	session_write(s, "\r\n", 2);
}

/* Every capability is offered (none switched off for the session). */
int
imap_offers(const struct imap_session *is, const char *name)
{
	return 1;
}

/* -- the mailbox ----------------------------------------------------------- */

static const char *const messages[] = {
	"From: Alice Example <alice@example.org>\r\n"
	"To: Bob <bob@example.net>, carol@example.com\r\n"
	"Cc: \"Dave, Jr.\" <dave@example.org>\r\n"
	"Subject: Quarterly report\r\n"
	"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
	"Message-ID: <one@example.org>\r\n"
	"\r\n"
	"Plain body with the word budget in it.\r\n",

	"From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.de>\r\n"
	"To: alice@example.org\r\n"
	"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
	"Date: Tue, 10 Nov 2026 23:59:59 -0800\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
	"\r\n"
	"--b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Sch=C3=B6ne Gr=C3=BC=C3=9Fe, caf=C3=A9 =\r\n"
	"soft break\r\n"
	"--b1\r\n"
	"Content-Type: text/html; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PHA+R3L832UgYXVzIEvWbG48L3A+\r\n"
	"--b1--\r\n",

	"From: list@example.com\r\n"
	"Subject: Re: [list] Fwd: nested\r\n"
	"Date: 1 Jan 2026 00:00:00 GMT\r\n"
	"In-Reply-To: <one@example.org>\r\n"
	"References: <one@example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=outer\r\n"
	"\r\n"
	"preamble\r\n"
	"--outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"see attached\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.com\r\n"
	"Subject: inner subject\r\n"
	"Content-Type: text/plain; charset=koi8-r\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"\xf0\xd2\xc9\xd7\xc5\xd4 nested hello\r\n"
	"--outer\r\n"
	"Content-Type: application/octet-stream; name=x.bin\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"AAECAwQFBgcICQ==\r\n"
	"--outer--\r\n"
	"epilogue\r\n",

	"Subject: broken\r\n"
	"Content-Type: multipart/mixed; boundary=\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Date: not a date\r\n"
	"\r\n"
	"!!!! not base64 ====\r\n"
	"--\r\n",

	"From: <>\r\n"
	"To: undisclosed-recipients:;\r\n"
	"Subject: =?utf-8?q?=E2=9C=93_check?= and =?bogus?x?y?= tail\r\n"
	"X-Priority: 1\r\n"
	"\r\n",

	"Bcc: secret@example.org\r\n"
	"Subject: big\r\n"
	"\r\n"
	"0123456789012345678901234567890123456789012345678901234567890\r\n"
	"0123456789012345678901234567890123456789012345678901234567890\r\n"
	"0123456789012345678901234567890123456789012345678901234567890\r\n"
	"0123456789012345678901234567890123456789012345678901234567890\r\n",
};

#define NMSG (sizeof(messages) / sizeof(messages[0]))

static const uint32_t msg_flags[NMSG] = {
	0, STORE_F_SEEN, STORE_F_SEEN | STORE_F_ANSWERED,
	STORE_F_FLAGGED | STORE_F_DELETED, STORE_F_DRAFT, 0};
static const char *const kw_a[] = {"$Forwarded", "Work"};
static const char *const kw_b[] = {"work"};
static const int64_t dates[NMSG] = {1767225600, 1772442000, 1778000000,
				    1780000000, 1790000000, 1795000000};

static struct backend be;
static struct bsession sess;
static struct imap_session is;
static uint32_t uids[NMSG];

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_search: %s: %s\n", what, err);
	exit(1);
}

static char store_dir[64];

/* LMDB keeps its files open to the end: they go at exit. */
static void
remove_store(void)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/data.mdb", store_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", store_dir);
	unlink(path);
	rmdir(store_dir);
}

static void
setup(void)
{
	char dir[] = "/tmp/fuzz_search.XXXXXX";
	const char *err;
	char ebuf[STORE_ERR_SIZE];
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", "failed");
	config_defaults(&be.cfg);
	if (store_open(dir, 64 << 20, &be.store, &err) < 0)
		die("store_open", err);
	struct store_provision_args pa = {"fuzz"};
	if (store_run(be.store, store_op_provision, &pa, ebuf) != 0)
		die("provision", ebuf);
	MDB_txn *txn;
	struct store_user_rec user;
	if (store_read_begin(be.store, &txn, &err) < 0 ||
	    store_user_get(be.store, txn, "fuzz", &user, &err) != 0)
		die("user", "not found");
	store_read_end(&txn);

	struct store_new_msg nm[NMSG];
	struct buf meta[NMSG];
	memset(nm, 0, sizeof(nm));
	for (size_t i = 0; i < NMSG; i++) {
		meta[i] = (struct buf)BUF_INIT;
		nm[i].data = messages[i];
		nm[i].len = strlen(messages[i]);
		nm[i].flags = msg_flags[i];
		nm[i].internaldate = dates[i];
		if (i == 0) {
			nm[i].keywords = kw_a;
			nm[i].nkeywords = 2;
		} else if (i == 2) {
			nm[i].keywords = kw_b;
			nm[i].nkeywords = 1;
		}
		/* Half with the structure cached, half parsed on demand. */
		if (i % 2 == 0 &&
		    mime_cache_build(nm[i].data, nm[i].len, &meta[i]) == 0) {
			nm[i].meta = buf_ptr(&meta[i]);
			nm[i].metalen = buf_used(&meta[i]);
		}
	}
	struct store_append_args a = {.user_num = user.user_num,
				      .mailbox = "INBOX",
				      .msgs = nm,
				      .n = NMSG};
	if (store_run(be.store, store_op_append, &a, ebuf) != 0)
		die("append", ebuf);
	for (size_t i = 0; i < NMSG; i++) {
		buf_free(&meta[i]);
		uids[i] = a.first_uid + (uint32_t)i;
	}

	sess.be = &be;
	snprintf(sess.id, sizeof(sess.id), "fuzz");
	is.s = &sess;
	is.state = IMAP_STATE_SELECTED;
	is.user_num = user.user_num;
	if (store_read_begin(be.store, &txn, &err) < 0 ||
	    store_mailbox_get(be.store, txn, user.user_num, "INBOX", &is.mbox,
			      &err) != 0)
		die("INBOX", "not found");
	store_read_end(&txn);
	is.uids = uids;
	is.count = NMSG;
	arena_init(&is.cmd_pool, 4096);
	snprintf(store_dir, sizeof(store_dir), "%s", dir);
	atexit(remove_store);
}

/* -- one search -------------------------------------------------------------- */

/* Runs "a UID SEARCH <criteria>" and returns 1 on OK with the UIDs found
 * (a bit per message), 0 otherwise. */
static int
run_search(const char *criteria, size_t clen, unsigned *found)
{
	struct buf line = BUF_INIT;
	buf_append(&line, "a UID SEARCH ", 13);
	buf_append(&line, criteria, clen);
	buf_append(&line, "\r\n", 2);
	struct lp_limits lim = {8192, 65536, 65536, 16};
	struct lp_reader r;
	lp_init(&r, LP_MODE_IMAP, &lim);
	size_t pos = 0, len = buf_used(&line);
	int ok = 0;
	*found = 0;
	while (pos < len) {
		size_t used;
		enum lp_status st = lp_feed(&r, buf_ptr(&line) + pos,
					    len - pos, &used);
		pos += used;
		if (st == LP_MORE || st == LP_CONTINUE)
			continue;
		if (st != LP_COMMAND)
			break;
		size_t clen2;
		const char *cmdline = lp_command(&r, &clen2);
		struct imap_parse_limits plim = {
			(unsigned)be.cfg.limits_max_nesting, 100000,
			be.cfg.limits_max_line};
		struct imap_arg *args;
		unsigned argc;
		const char *err;
		arena_clear(&is.cmd_pool);
		if (imap_parse(cmdline, clen2, &is.cmd_pool, &plim, &args,
			       &argc, &err) < 0 ||
		    argc < 3)
			break;
		struct imap_cmd_ctx cmd = {&is, "a", "SEARCH", args + 3,
					   argc - 3, 1};
		sess.out = (struct buf)BUF_INIT;
		imap_cmd_search(&cmd);
		/* exactly one tagged line, the last */
		const char *o = buf_ptr(&sess.out);
		size_t olen = buf_used(&sess.out);
		if (olen < 2 || o[olen - 2] != '\r' || o[olen - 1] != '\n')
			FAIL();
		size_t start = 0;
		unsigned tagged = 0;
		for (size_t i = 0; i + 1 < olen; i++) {
			if (o[i] != '\r' || o[i + 1] != '\n')
				continue;
			const char *l = o + start;
			size_t ll = i - start;
			if (ll >= 2 && l[0] == 'a' && l[1] == ' ') {
				tagged++;
				if (i + 2 != olen)
					FAIL();
				ok = ll >= 4 && memcmp(l, "a OK", 4) == 0;
			} else if (ll >= 8 && memcmp(l, "* SEARCH", 8) == 0) {
				uint32_t prev = 0;
				const char *p = l + 8, *e = l + ll;
				while (p < e) {
					if (*p != ' ')
						FAIL();
					/* CONDSTORE: "(MODSEQ n)" closes it */
					if ((size_t)(e - p) > 9 &&
					    memcmp(p, " (MODSEQ ", 9) == 0) {
						if (e[-1] != ')' || *found == 0)
							FAIL();
						break;
					}
					char *q;
					unsigned long u = strtoul(p + 1, &q, 10);
					if (q == p + 1 || u <= prev)
						FAIL();
					prev = (uint32_t)u;
					size_t k = 0;
					while (k < NMSG && uids[k] != u)
						k++;
					if (k == NMSG)
						FAIL();
					*found |= 1u << k;
					p = q;
				}
			} else if (!(ll >= 2 && l[0] == '*' && l[1] == ' ')) {
				FAIL();
			}
			start = i + 2;
		}
		if (tagged != 1)
			FAIL();
		buf_free(&sess.out);
		break;
	}
	lp_free(&r);
	buf_free(&line);
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		setup();
		ready = 1;
	}
	if (size > 4096)
		return 0;
	unsigned a, b;
	int ok = run_search((const char *)data, size, &a);
	if (!ok) {
		free(is.saved);
		is.saved = NULL;
		is.nsaved = 0;
		return 0;
	}
	struct buf neg = BUF_INIT;
	buf_append(&neg, "NOT (", 5);
	buf_append(&neg, data, size);
	buf_append(&neg, ")", 1);
	if (run_search(buf_ptr(&neg), buf_used(&neg), &b)) {
		if ((a & b) != 0 || (a | b) != (1u << NMSG) - 1)
			FAIL();
	}
	buf_free(&neg);
	/* SEARCH RETURN (SAVE) leaves a result: the next input starts
	   afresh. */
	free(is.saved);
	is.saved = NULL;
	is.nsaved = 0;
	return 0;
}
