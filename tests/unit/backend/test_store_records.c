/* test_store_records.c - the store's bookkeeping records.  Delivery
 * records: recorded once, found by the same id, mailbox and address only,
 * expired in time order in batches.  Expunge records: by modseq, the
 * latest max_expunge_records per mailbox, "not exact" before the oldest
 * kept; schema 2's records converted on open.  The external generation:
 * advanced by each commit of an external handle (portico-admin), in the
 * same transaction, and by nothing else.  The owner lock: one claim of a
 * store at a time, its pid told without taking it, free again once its
 * descriptor closes.  The senders an automatic reply answered, merged at
 * an import: of each sender the later entry, the newest max. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/store/store.h"
#include "tests/unit/backend/store_tmp.h"

struct rec_args {
	const char *id, *mbox, *addr;
	int64_t when;
};

static int
rec_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct rec_args *a = vargs;
	uint8_t key[STORE_DELIVERY_KEY];
	store_delivery_key(a->id, a->mbox, a->addr, key);
	return store_delivery_record(st, txn, key, a->when);
}

static void
record(struct store *st, const char *id, const char *mbox, const char *addr,
       int64_t when)
{
	char err[STORE_ERR_SIZE];
	struct rec_args a = {id, mbox, addr, when};
	assert_int_equal(store_run(st, rec_op, &a, err), 0);
}

static int
seen(struct store *st, const char *id, const char *mbox, const char *addr)
{
	MDB_txn *txn;
	const char *err;
	uint8_t key[STORE_DELIVERY_KEY];
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	store_delivery_key(id, mbox, addr, key);
	int rc = store_delivery_seen(st, txn, key, &err);
	store_read_end(&txn);
	assert_true(rc == 0 || rc == 1);
	return rc == 0;
}

static int64_t
count(struct store *st)
{
	MDB_txn *txn;
	const char *err;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	int64_t n = store_delivery_count(st, txn);
	store_read_end(&txn);
	return n;
}

static void
test_record_and_find(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	assert_false(seen(st, "be1.0001.100", "m1", "a@x.example"));
	record(st, "be1.0001.100", "m1", "a@x.example", 1000);
	assert_true(seen(st, "be1.0001.100", "m1", "a@x.example"));
	/* Another id, mailbox or address is another delivery. */
	assert_false(seen(st, "be1.0002.100", "m1", "a@x.example"));
	assert_false(seen(st, "be1.0001.100", "m2", "a@x.example"));
	assert_false(seen(st, "be1.0001.100", "m1", "b@x.example"));
	/* The parts are kept apart: "a" "bc" is not "ab" "c". */
	record(st, "a", "bc", "z", 1000);
	assert_false(seen(st, "ab", "c", "z"));
	/* Recording twice keeps one record. */
	record(st, "be1.0001.100", "m1", "a@x.example", 2000);
	assert_int_equal(count(st), 2);
	remove_store(&st, dir);
}

static void
test_prune_in_batches(void **state)
{
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	char id[32];
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "be.%04d.1", i);
		record(st, id, "m", "a@x.example", 1000 + i);
	}
	char err[STORE_ERR_SIZE];
	/* Before 1020: 20 records, removed 8 at a time. */
	struct store_delivery_prune_args p = {.before = 1020, .max = 8};
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 8);
	assert_true(p.more_out);
	assert_int_equal(count(st), 17);
	assert_false(seen(st, "be.0000.1", "m", "a@x.example"));
	assert_false(seen(st, "be.0007.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0008.1", "m", "a@x.example"));
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 8);
	assert_true(p.more_out);
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 4);
	assert_false(p.more_out);
	assert_int_equal(count(st), 5);
	assert_false(seen(st, "be.0019.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0020.1", "m", "a@x.example"));
	assert_true(seen(st, "be.0024.1", "m", "a@x.example"));
	/* Nothing older left: nothing removed. */
	assert_int_equal(store_run(st, store_op_delivery_prune, &p, err), 0);
	assert_int_equal(p.removed_out, 0);
	assert_false(p.more_out);
	assert_int_equal(count(st), 5);
	remove_store(&st, dir);
}

struct exp_args {
	uint64_t mbox;
	uint32_t uid;
	uint64_t modseq;
};

static int
exp_op(struct store *st, MDB_txn *txn, void *vargs, char *err)
{
	struct exp_args *a = vargs;
	return store_expunged_add(st, txn, a->mbox, a->uid, a->modseq);
}

static void
expunge(struct store *st, uint64_t mbox, uint32_t uid, uint64_t modseq)
{
	char err[STORE_ERR_SIZE];
	struct exp_args a = {mbox, uid, modseq};
	assert_int_equal(store_run(st, exp_op, &a, err), 0);
}

/* "uid,uid,..." of what vanished since modseq; *exact_r as returned. */
static void
vanished(struct store *st, uint64_t mbox, uint64_t since, char *out,
	 size_t outsize, int *exact_r)
{
	MDB_txn *txn;
	const char *err;
	uint32_t *uids;
	size_t n;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	assert_int_equal(store_vanished_since(st, txn, mbox, since, &uids, &n,
					      exact_r, &err),
			 0);
	store_read_end(&txn);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), outsize - strlen(out), "%s%u",
			 i ? "," : "", uids[i]);
	free(uids);
}

static void
test_expunge_records_bounded(void **state)
{
	char dir[64], got[256];
	int exact;
	struct store *st = open_store(dir, sizeof(dir));
	store_set_max_expunge_records(st, 4);
	/* Mailbox 7: UIDs expunged out of UID order, modseqs 10..15. */
	uint32_t uids[] = {9, 2, 5, 1, 8, 3};
	for (int i = 0; i < 6; i++)
		expunge(st, 7, uids[i], 10 + (uint64_t)i);
	/* Mailbox 8, next to it, keeps its own. */
	expunge(st, 8, 4, 11);
	/* The latest four kept (modseqs 12..15: UIDs 5, 1, 8, 3), sorted. */
	vanished(st, 7, 11, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "1,3,5,8");
	vanished(st, 7, 13, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "3,8");
	vanished(st, 7, 15, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "");
	/* Since before the dropped ones: what is kept, and not exact. */
	vanished(st, 7, 10, got, sizeof(got), &exact);
	assert_false(exact);
	assert_string_equal(got, "1,3,5,8");
	vanished(st, 7, 0, got, sizeof(got), &exact);
	assert_false(exact);
	vanished(st, 8, 0, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "4");
	/* A mailbox without expunges. */
	vanished(st, 9, 0, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "");
	remove_store(&st, dir);
}

static void
test_schema_2_converted(void **state)
{
	char dir[64], got[256];
	int exact;
	struct store *st = open_store(dir, sizeof(dir));
	store_close(&st);
	/* Make it a schema 2 store with two old-style records. */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, exp;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "expunged", 0, &exp), 0);
	uint32_t ver = 2;
	MDB_val k = {7, "version"}, v = {sizeof(ver), &ver};
	assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	struct {
		uint32_t uid;
		uint64_t modseq;
	} old[] = {{6, 40}, {2, 41}};
	for (int i = 0; i < 2; i++) {
		uint8_t key[12] = {0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,
				   (uint8_t)old[i].uid};
		MDB_val ok = {12, key}, ov = {8, &old[i].modseq};
		assert_int_equal(mdb_put(txn, exp, &ok, &ov, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	const char *err;
	if (store_open(dir, 64 << 20, &st, &err) != 0)
		fail_msg("store_open: %s", err);
	vanished(st, 3, 39, got, sizeof(got), &exact);
	assert_true(exact);
	assert_string_equal(got, "2,6");
	vanished(st, 3, 40, got, sizeof(got), &exact);
	assert_string_equal(got, "2");
	store_set_max_expunge_records(st, 2);
	expunge(st, 3, 9, 42);
	vanished(st, 3, 39, got, sizeof(got), &exact);
	assert_false(exact);
	assert_string_equal(got, "2,9");
	remove_store(&st, dir);
}

static uint64_t
external_gen(struct store *st)
{
	MDB_txn *txn;
	const char *err;
	uint64_t gen = 99;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	assert_int_equal(store_external_generation(st, txn, &gen, &err), 0);
	store_read_end(&txn);
	return gen;
}

static int
fail_op(struct store *st, MDB_txn *txn, void *args, char *err)
{
	(void)rec_op(st, txn, args, err);
	snprintf(err, STORE_ERR_SIZE, "refused");
	return STORE_ERR_INTERNAL;
}

/* The record's STORE_F_CRLF: set at APPEND exactly for messages with no
 * bare LF, whose size is then their length; kept through STORE (even
 * one that names every bit) and COPY; never shown as an IMAP flag bit. */
static struct store_msg_rec
msg_rec(struct store *st, uint64_t mbox, uint32_t uid)
{
	MDB_txn *txn;
	const char *err;
	struct store_msg_rec r;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	assert_int_equal(store_message_get(st, txn, mbox, uid, &r, &err), 0);
	store_read_end(&txn);
	return r;
}

static void
test_crlf_flag(void **state)
{
	char dir[64], err[STORE_ERR_SIZE];
	const char *e;
	struct store *st = open_store(dir, sizeof(dir));
	struct store_provision_args pa = {"crlf-user"};
	assert_int_equal(store_run(st, store_op_provision, &pa, err), 0);
	MDB_txn *txn;
	struct store_user_rec u;
	struct store_mailbox_rec arch;
	assert_int_equal(store_read_begin(st, &txn, &e), 0);
	assert_int_equal(store_user_get(st, txn, "crlf-user", &u, &e), 0);
	assert_int_equal(
	    store_mailbox_get(st, txn, u.user_num, "Archive", &arch, &e), 0);
	store_read_end(&txn);

	static const char crlf[] = "Subject: a\r\n\r\nbody\r\n";
	static const char bare[] = "Subject: b\n\r\nbody\r\n";
	static const char end_lf[] = "Subject: c\r\n\r\nbody\n";
	struct store_new_msg nm[] = {
	    {crlf, sizeof(crlf) - 1, STORE_F_SEEN, NULL, 0, 0, NULL, 0},
	    {bare, sizeof(bare) - 1, 0, NULL, 0, 0, NULL, 0},
	    {end_lf, sizeof(end_lf) - 1, 0, NULL, 0, 0, NULL, 0},
	    {"", 0, 0, NULL, 0, 0, NULL, 0},
	    /* a client cannot set it */
	    {crlf, sizeof(crlf) - 1, 0xffffffffu, NULL, 0, 0, NULL, 0},
	    {bare, sizeof(bare) - 1, 0xffffffffu, NULL, 0, 0, NULL, 0},
	};
	struct store_append_args aa = {0};
	aa.user_num = u.user_num;
	aa.mailbox = "INBOX";
	aa.msgs = nm;
	aa.n = 6;
	assert_int_equal(store_run(st, store_op_append, &aa, err), 0);
	uint64_t inbox = aa.mbox_id_out;
	const int want[] = {1, 0, 0, 1, 1, 0};
	for (uint32_t i = 0; i < 6; i++) {
		struct store_msg_rec r = msg_rec(st, inbox, aa.first_uid + i);
		assert_int_equal(!!(r.flags & STORE_F_CRLF), want[i]);
		assert_int_equal(r.flags & ~(STORE_F_SYSTEM | STORE_F_CRLF), 0);
		if (want[i])
			assert_int_equal(r.size, nm[i].len);
		else
			assert_int_equal(r.size, nm[i].len + 1);
	}
	assert_int_equal(msg_rec(st, inbox, aa.first_uid + 4).flags,
			 STORE_F_SYSTEM | STORE_F_CRLF);

	/* STORE of every mode keeps it and changes the IMAP flags only */
	uint32_t uids[] = {aa.first_uid, aa.first_uid + 1};
	uint64_t modseq[2];
	uint8_t failed[2];
	const enum store_flags_mode modes[] = {
	    STORE_FLAGS_SET, STORE_FLAGS_REMOVE, STORE_FLAGS_ADD,
	    STORE_FLAGS_SET};
	const uint32_t fl[] = {STORE_F_FLAGGED, 0xffffffffu, 0xffffffffu, 0};
	const uint32_t after[] = {STORE_F_FLAGGED, 0, STORE_F_SYSTEM, 0};
	for (int k = 0; k < 4; k++) {
		struct store_flags_args fa = {0};
		fa.mbox_id = inbox;
		fa.uids = uids;
		fa.n = 2;
		fa.mode = modes[k];
		fa.flags = fl[k];
		fa.modseq = modseq;
		fa.failed = failed;
		assert_int_equal(store_run(st, store_op_flags, &fa, err), 0);
		assert_int_equal(msg_rec(st, inbox, uids[0]).flags,
				 after[k] | STORE_F_CRLF);
		assert_int_equal(msg_rec(st, inbox, uids[1]).flags, after[k]);
	}

	/* COPY keeps it with the body */
	uint32_t dst[2];
	struct store_copy_args ca = {0};
	ca.src_mbox = inbox;
	ca.dst_mbox = arch.mbox_id;
	ca.uids = uids;
	ca.n = 2;
	ca.dst_uids = dst;
	assert_int_equal(store_run(st, store_op_copy, &ca, err), 0);
	assert_true(msg_rec(st, arch.mbox_id, dst[0]).flags & STORE_F_CRLF);
	assert_false(msg_rec(st, arch.mbox_id, dst[1]).flags & STORE_F_CRLF);
	remove_store(&st, dir);
}

/* The import of a moved mailbox keeping its UIDs: an unused mailbox takes
 * the UIDVALIDITY, the given UIDs, a HIGHESTMODSEQ above the old one with
 * the expunge floor at it, and the UIDNEXT with the last batch; a used
 * one, or a UID below the UIDNEXT, is refused and nothing changes. */
static void
test_keep_uids(void **state)
{
	(void)state;
	char dir[64], err[STORE_ERR_SIZE];
	const char *e;
	struct store *st = open_store(dir, sizeof(dir));
	struct store_provision_args pa = {"moved-user"};
	assert_int_equal(store_run(st, store_op_provision, &pa, err), 0);
	MDB_txn *txn;
	struct store_user_rec u;
	assert_int_equal(store_read_begin(st, &txn, &e), 0);
	assert_int_equal(store_user_get(st, txn, "moved-user", &u, &e), 0);
	store_read_end(&txn);

	static const char msg[] = "Subject: kept\r\n\r\nbody\r\n";
	struct store_new_msg nm[2] = {{0}, {0}};
	for (int i = 0; i < 2; i++) {
		nm[i].data = msg;
		nm[i].len = sizeof(msg) - 1;
	}
	nm[0].uid = 7;
	nm[1].uid = 12;
	struct store_append_args aa = {0};
	aa.user_num = u.user_num;
	aa.mailbox = "Archive";
	aa.msgs = nm;
	aa.n = 2;
	aa.keep_uidvalidity = 1234567;
	aa.keep_modseq = 500;
	/* a first batch: UIDNEXT not yet */
	assert_int_equal(store_run(st, store_op_append, &aa, err), 0);
	assert_int_equal(aa.uidvalidity, 1234567);
	assert_int_equal(aa.first_uid, 7);
	uint64_t mbox = aa.mbox_id_out;
	assert_int_equal(msg_rec(st, mbox, 7).modseq, 501);
	assert_int_equal(msg_rec(st, mbox, 12).modseq, 502);
	/* the last batch, empty, brings UIDNEXT */
	aa.n = 0;
	aa.keep_uidnext = 20;
	assert_int_equal(store_run(st, store_op_append, &aa, err), 0);
	struct store_mailbox_rec mb;
	assert_int_equal(store_read_begin(st, &txn, &e), 0);
	assert_int_equal(
	    store_mailbox_get(st, txn, u.user_num, "Archive", &mb, &e), 0);
	uint32_t *gone;
	size_t ngone;
	int exact;
	assert_int_equal(
	    store_vanished_since(st, txn, mbox, 499, &gone, &ngone, &exact, &e),
	    0);
	free(gone);
	assert_false(exact); /* older than the move: not known exactly */
	assert_int_equal(
	    store_vanished_since(st, txn, mbox, 502, &gone, &ngone, &exact, &e),
	    0);
	free(gone);
	assert_true(exact);
	store_read_end(&txn);
	assert_int_equal(mb.uidvalidity, 1234567);
	assert_int_equal(mb.uidnext, 20);
	assert_int_equal(mb.highestmodseq, 502);
	assert_int_equal(mb.messages, 2);

	/* a UID below UIDNEXT: refused */
	aa.n = 1;
	aa.keep_uidnext = 0;
	nm[0].uid = 19;
	assert_int_equal(store_run(st, store_op_append, &aa, err),
			 STORE_ERR_CANNOT);
	/* another UIDVALIDITY on a mailbox that has had messages: refused */
	nm[0].uid = 25;
	aa.keep_uidvalidity = 99;
	assert_int_equal(store_run(st, store_op_append, &aa, err),
			 STORE_ERR_CANNOT);
	assert_int_equal(store_read_begin(st, &txn, &e), 0);
	assert_int_equal(
	    store_mailbox_get(st, txn, u.user_num, "Archive", &mb, &e), 0);
	store_read_end(&txn);
	assert_int_equal(mb.uidvalidity, 1234567);
	assert_int_equal(mb.uidnext, 20);
	assert_int_equal(mb.messages, 2);
	/* and an ordinary APPEND goes on from UIDNEXT */
	struct store_append_args plain = {0};
	plain.user_num = u.user_num;
	plain.mailbox = "Archive";
	plain.msgs = nm;
	plain.n = 1;
	nm[0].uid = 0;
	assert_int_equal(store_run(st, store_op_append, &plain, err), 0);
	assert_int_equal(plain.first_uid, 20);
	remove_store(&st, dir);
}

static void
test_external_generation(void **state)
{
	char dir[64], err[STORE_ERR_SIZE];
	struct store *st = open_store(dir, sizeof(dir));
	/* The backend's own writes leave it alone. */
	assert_int_equal(external_gen(st), 0);
	record(st, "be1.0001.100", "m1", "a@x.example", 1000);
	assert_int_equal(external_gen(st), 0);
	/* Each commit of an external handle advances it. */
	store_set_external(st);
	record(st, "be1.0002.100", "m1", "a@x.example", 1000);
	assert_int_equal(external_gen(st), 1);
	record(st, "be1.0003.100", "m1", "a@x.example", 1000);
	assert_int_equal(external_gen(st), 2);
	/* A failed operation commits nothing, the generation neither. */
	struct rec_args a = {"be1.0004.100", "m1", "a@x.example", 1000};
	assert_int_equal(store_run(st, fail_op, &a, err), STORE_ERR_INTERNAL);
	assert_int_equal(external_gen(st), 2);
	assert_false(seen(st, "be1.0004.100", "m1", "a@x.example"));
	remove_store(&st, dir);
}

static void
test_claim(void **state)
{
	(void)state;
	char dir[64];
	struct store *st = open_store(dir, sizeof(dir));
	const char *err = NULL;
	long pid = 0;
	assert_int_equal(store_owner(dir, &pid, &err), 0); /* no lock file */
	int fd = store_claim(dir, &err);
	assert_true(fd >= 0);
	assert_int_equal(store_owner(dir, &pid, &err), 1);
	assert_int_equal(pid, (long)getpid());
	/* a second claim, even of this process, is refused, and says whose */
	assert_int_equal(store_claim(dir, &err), -1);
	char want[256];
	snprintf(want, sizeof(want),
		 "%s is in use by another backend (pid %ld): a store has one "
		 "backend",
		 dir, (long)getpid());
	assert_string_equal(err, want);
	/* the owner's pid stays in the file */
	assert_int_equal(store_owner(dir, &pid, &err), 1);
	assert_int_equal(pid, (long)getpid());
	close(fd);
	assert_int_equal(store_owner(dir, &pid, &err), 0);
	fd = store_claim(dir, &err);
	assert_true(fd >= 0);
	close(fd);
	/* a store directory not there yet is made */
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/new", dir);
	fd = store_claim(sub, &err);
	assert_true(fd >= 0);
	close(fd);
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", sub, STORE_OWNER_FILE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
	remove_store(&st, dir);
}

/* The senders an automatic reply answered, "h@t,h@t" (h the first byte
 * of the hash), as the account's record has them; "" none. */
static void
replied(struct store *st, const char *mailbox_id, char *out, size_t outsize)
{
	MDB_txn *txn;
	const char *err;
	struct store_user_rec u;
	uint8_t *data = NULL;
	size_t len = 0;
	assert_int_equal(store_read_begin(st, &txn, &err), 0);
	assert_int_equal(store_user_get(st, txn, mailbox_id, &u, &err), 0);
	int rc = store_auto_reply_get(st, txn, u.user_num, &data, &len, &err);
	store_read_end(&txn);
	assert_true(rc == 0 || rc == 1);
	out[0] = '\0';
	for (size_t i = 0; i + STORE_AUTO_REPLY_ENTRY <= len;
	     i += STORE_AUTO_REPLY_ENTRY) {
		uint64_t t = 0;
		for (int b = 0; b < 8; b++)
			t = t << 8 | data[i + 8 + b];
		snprintf(out + strlen(out), outsize - strlen(out), "%s%c@%llu",
			 i ? "," : "", data[i], (unsigned long long)t);
	}
	free(data);
}

/* Entries "h@t" (h a letter: the hash is h and seven zeros). */
static size_t
entries(uint8_t *out, const char *const *list)
{
	size_t n = 0;
	for (; list[n] != NULL; n++) {
		uint8_t *e = out + n * STORE_AUTO_REPLY_ENTRY;
		memset(e, 0, STORE_AUTO_REPLY_ENTRY);
		e[0] = (uint8_t)list[n][0];
		uint64_t t = strtoull(list[n] + 2, NULL, 10);
		for (int b = 0; b < 8; b++)
			e[8 + b] = (uint8_t)(t >> (56 - 8 * b));
	}
	return n * STORE_AUTO_REPLY_ENTRY;
}

/* An imported record merged into the account's: of each sender the later
 * entry, in time order, the newest max; a record not of whole entries
 * refused, the account's left as it was. */
static void
test_auto_replied_merge(void **state)
{
	(void)state;
	char dir[64], err[STORE_ERR_SIZE], got[256];
	struct store *st = open_store(dir, sizeof(dir));
	struct store_provision_args pa = {"merge-account"};
	assert_int_equal(store_run(st, store_op_provision, &pa, err), 0);
	uint8_t buf[8 * STORE_AUTO_REPLY_ENTRY];
	static const char *const first[] = {"a@100", "b@50", "a@200", "c@300",
					    NULL};
	struct store_auto_replied_args ra = {"merge-account", buf,
					     entries(buf, first), 3};
	assert_int_equal(store_run(st, store_op_auto_replied, &ra, err), 0);
	replied(st, "merge-account", got, sizeof(got));
	assert_string_equal(got, "b@50,a@200,c@300");
	/* b again, later; d new: the newest three */
	static const char *const second[] = {"d@250", "b@400", NULL};
	ra.len = entries(buf, second);
	assert_int_equal(store_run(st, store_op_auto_replied, &ra, err), 0);
	replied(st, "merge-account", got, sizeof(got));
	assert_string_equal(got, "d@250,c@300,b@400");
	/* an older entry of a sender answered since changes nothing */
	static const char *const older[] = {"c@10", NULL};
	ra.len = entries(buf, older);
	assert_int_equal(store_run(st, store_op_auto_replied, &ra, err), 0);
	replied(st, "merge-account", got, sizeof(got));
	assert_string_equal(got, "d@250,c@300,b@400");
	/* not whole entries; no such account */
	ra.len = STORE_AUTO_REPLY_ENTRY + 4;
	assert_int_equal(store_run(st, store_op_auto_replied, &ra, err),
			 STORE_ERR_CANNOT);
	replied(st, "merge-account", got, sizeof(got));
	assert_string_equal(got, "d@250,c@300,b@400");
	ra.mailbox_id = "no-such-account";
	ra.len = entries(buf, older);
	assert_int_equal(store_run(st, store_op_auto_replied, &ra, err),
			 STORE_ERR_NONEXISTENT);
	remove_store(&st, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record_and_find),
	    cmocka_unit_test(test_prune_in_batches),
	    cmocka_unit_test(test_expunge_records_bounded),
	    cmocka_unit_test(test_schema_2_converted),
	    cmocka_unit_test(test_external_generation),
	    cmocka_unit_test(test_crlf_flag),
	    cmocka_unit_test(test_keep_uids),
	    cmocka_unit_test(test_claim),
	    cmocka_unit_test(test_auto_replied_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
