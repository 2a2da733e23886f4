/* fuzz_account.c - portico-admin import --account against a real store.
 *
 * Once, at start: a store in a fresh temporary directory.  Then each input
 * is an account stream (proto/account.proto: "PORTICO-ACCOUNT 1\n" and
 * length-prefixed records), imported into one account as `portico-admin
 * import ID --account FILE` does, whatever it holds: cut short, damaged,
 * records out of order, impossible UIDs, modseqs, keywords, names.
 *
 * An input that starts with '!' is the stream without its end record (and
 * without the '!'): the target adds an end record that matches it, with
 * the counts of its folder and message records and its digest, so that
 * what a whole stream reaches (subscriptions, quota, the folders it
 * lacks) is fuzzed too; one that starts with '+' (before any '!') is
 * imported --under a folder into an account provisioned first.
 *
 * Properties: the import never crashes or leaks; whether it succeeds or
 * stops halfway, the store stays consistent (`portico-admin check --all`
 * finds nothing); one that fails, not --under, leaves no account (it was
 * not there before: what was stored is taken back); the account then
 * goes (`remove`), and the store is consistent again with nothing of it
 * left.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "account.pb-c.h"
#include "backend/admin/admin.h"
#include "backend/store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FAIL()                                                                 \
	(fflush(stdout),                                                       \
	 fprintf(stderr, "%s:%d: property violated\n", __FILE__, __LINE__),   \
	 abort())

static struct admin adm;
static char dir[] = "/tmp/fuzz-account-XXXXXX";

static void
cleanup(void)
{
	store_close(&adm.st);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *err;
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	config_defaults(&adm.cfg);
	if (store_open(dir, 1ull << 30, &adm.st, &err) < 0) {
		fprintf(stderr, "store: %s\n", err);
		exit(1);
	}
	atexit(cleanup);
	/* what the commands print is not the fuzzer's business, unless
	   FUZZ_VERBOSE is set (to see why a property failed) */
	if (getenv("FUZZ_VERBOSE") != NULL)
		return 0;
	admin_account_msgs = fopen("/dev/null", "w");
	if (admin_account_msgs == NULL || freopen("/dev/null", "w", stdout) ==
					      NULL) {
		perror("/dev/null");
		exit(1);
	}
	return 0;
}

static int
check_all(void)
{
	char all[] = "--all";
	char *argv[] = {all, NULL};
	return admin_check(&adm, 1, argv);
}

/* data (a stream without its end) with a matching end record, in a
 * malloc'd buffer. */
static uint8_t *
with_end(const uint8_t *data, size_t size, size_t *size_r)
{
	const size_t magic = sizeof("PORTICO-ACCOUNT 1\n") - 1;
	Portico__AccountEnd e = PORTICO__ACCOUNT_END__INIT;
	for (size_t off = magic; off + 4 <= size;) {
		uint32_t n = (uint32_t)data[off] << 24 |
			     (uint32_t)data[off + 1] << 16 |
			     (uint32_t)data[off + 2] << 8 | data[off + 3];
		if (n > size - off - 4)
			break;
		Portico__AccountRecord *r =
		    portico__account_record__unpack(NULL, n, data + off + 4);
		if (r != NULL) {
			e.folders += r->record_case ==
				     PORTICO__ACCOUNT_RECORD__RECORD_FOLDER;
			e.messages += r->record_case ==
				      PORTICO__ACCOUNT_RECORD__RECORD_MESSAGE;
			portico__account_record__free_unpacked(r, NULL);
		}
		off += 4 + (size_t)n;
	}
	uint8_t digest[SHA256_DIGEST_LENGTH];
	SHA256(data, size, digest);
	e.sha256.data = digest;
	e.sha256.len = sizeof(digest);
	Portico__AccountRecord r = PORTICO__ACCOUNT_RECORD__INIT;
	r.record_case = PORTICO__ACCOUNT_RECORD__RECORD_END;
	r.end = &e;
	size_t n = portico__account_record__get_packed_size(&r);
	uint8_t *out = malloc(size + 4 + n);
	if (out == NULL)
		abort();
	memcpy(out, data, size);
	out[size] = (uint8_t)(n >> 24);
	out[size + 1] = (uint8_t)(n >> 16);
	out[size + 2] = (uint8_t)(n >> 8);
	out[size + 3] = (uint8_t)n;
	portico__account_record__pack(&r, out + size + 4);
	*size_r = size + 4 + n;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *whole = NULL;
	const char *under = NULL;
	if (size > 0 && data[0] == '+') {
		under = "Restored/x";
		data++;
		size--;
	}
	if (size > 0 && data[0] == '!')
		data = whole = with_end(data + 1, size - 1, &size);
	if (size == 0)
		return 0; /* fmemopen takes no empty buffer */
	if (under != NULL) {
		/* import --under into an account that exists */
		struct store_provision_args pa = {"fuzz", 0};
		char ebuf[STORE_ERR_SIZE];
		if (store_run(adm.st, store_op_provision, &pa, ebuf) != 0)
			abort();
	}
	FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (f == NULL)
		abort();
	int failed = admin_account_import_file(&adm, "fuzz", f, "input", under);
	fclose(f);
	free(whole);
	if (check_all() != 0)
		FAIL();
	MDB_txn *txn = NULL;
	const char *err;
	struct store_user_rec u;
	int rc = -1;
	if (store_read_begin(adm.st, &txn, &err) == 0)
		rc = store_user_get(adm.st, txn, "fuzz", &u, &err);
	store_read_end(&txn);
	if (rc < 0)
		abort();
	/* a failed import into an account not there before takes back
	   everything: the account is not there again */
	if (failed && under == NULL && rc != 1)
		FAIL();
	if (rc == 1)
		return 0; /* nothing to remove */
	char id[] = "fuzz", yes[] = "--yes";
	char *argv[] = {id, yes, NULL};
	if (admin_users_remove(&adm, 2, argv) != 0 || check_all() != 0)
		FAIL();
	if (store_read_begin(adm.st, &txn, &err) < 0)
		abort();
	rc = store_user_get(adm.st, txn, "fuzz", &u, &err);
	store_read_end(&txn);
	if (rc != 1)
		FAIL();
	return 0;
}
