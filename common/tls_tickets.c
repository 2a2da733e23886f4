/* tls_tickets.c - session-ticket keys: the key file, and the callback that
 * seals and opens tickets with them (AES-256-CBC and HMAC-SHA256, the
 * construction OpenSSL uses with its own keys). */
#include "common/tls_tickets.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/hex.h"

struct tls_ticket_key {
	unsigned char name[TLS_TICKET_NAME_LEN];
	unsigned char hmac[32];
	unsigned char aes[32];
};
_Static_assert(sizeof(struct tls_ticket_key) == TLS_TICKET_KEY_LEN,
	       "a key is its 80 bytes");

struct tls_tickets {
	int refs;
	unsigned count;
	EVP_CIPHER *cipher; /* fetched once, not per ticket */
	struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
};

static struct tls_tickets *
tls_tickets_new(const char **error_r)
{
	struct tls_tickets *k = calloc(1, sizeof(*k));
	if (k == NULL)
		abort();
	k->refs = 1;
	k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (k->cipher == NULL) {
		free(k);
		*error_r = "AES-256-CBC is not available";
		return NULL;
	}
	return k;
}

/* One key line (without its line ending and surrounding blanks). */
static int
tls_ticket_key_parse(const char *line, size_t len, struct tls_ticket_key *key)
{
	unsigned char *out = (unsigned char *)key;
	if (len != TLS_TICKET_KEY_HEX)
		return -1;
	for (size_t i = 0; i < TLS_TICKET_KEY_LEN; i++) {
		int hi = hex_digit((unsigned char)line[2 * i]);
		int lo = hex_digit((unsigned char)line[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int
tls_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

struct tls_tickets *
tls_tickets_parse(const char *text, size_t len, const char **error_r)
{
	static _Thread_local char msg[160];
	struct tls_tickets *k = tls_tickets_new(error_r);
	if (k == NULL)
		return NULL;
	unsigned lineno = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		const char *next = nl != NULL ? nl + 1 : end;
		lineno++;
		while (p < eol && tls_blank(*p))
			p++;
		while (eol > p && tls_blank(eol[-1]))
			eol--;
		if (p == eol || *p == '#') {
			p = next;
			continue;
		}
		if (k->count == TLS_TICKET_KEYS_MAX) {
			snprintf(msg, sizeof(msg), "line %u: more than %d keys",
				 lineno, TLS_TICKET_KEYS_MAX);
			goto fail;
		}
		struct tls_ticket_key *key = &k->keys[k->count];
		if (tls_ticket_key_parse(p, (size_t)(eol - p), key) < 0) {
			snprintf(msg, sizeof(msg),
				 "line %u: a key is %d hexadecimal digits "
				 "(openssl rand -hex %d)",
				 lineno, TLS_TICKET_KEY_HEX,
				 TLS_TICKET_KEY_LEN);
			goto fail;
		}
		for (unsigned i = 0; i < k->count; i++) {
			if (memcmp(k->keys[i].name, key->name,
				   sizeof(key->name)) == 0) {
				snprintf(msg, sizeof(msg),
					 "line %u: the name (first 16 bytes) "
					 "of an earlier key",
					 lineno);
				goto fail;
			}
		}
		k->count++;
		p = next;
	}
	if (k->count == 0) {
		snprintf(msg, sizeof(msg), "no keys");
		goto fail;
	}
	return k;
fail:
	*error_r = msg;
	tls_tickets_unref(&k);
	return NULL;
}

struct tls_tickets *
tls_tickets_load(const char *path, const char **error_r)
{
	static _Thread_local char msg[600];
	const char *err = NULL;
	char *text = NULL;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = strerror(errno);
	} else if (!S_ISREG(st.st_mode)) {
		err = "not a regular file";
	} else if (st.st_size > TLS_TICKET_FILE_MAX) {
		err = "larger than 64 KiB";
	} else {
		text = malloc((size_t)st.st_size + 1);
		if (text == NULL)
			abort();
		n = read(fd, text, (size_t)st.st_size + 1);
		if (n < 0)
			err = strerror(errno);
		else if (n > st.st_size)
			err = "changed while read";
	}
	if (fd >= 0)
		close(fd);
	struct tls_tickets *k = NULL;
	if (err == NULL)
		k = tls_tickets_parse(text, (size_t)n, &err);
	if (text != NULL) {
		OPENSSL_cleanse(text, (size_t)st.st_size + 1);
		free(text);
	}
	if (k == NULL) {
		snprintf(msg, sizeof(msg), "ticket keys %s: %s", path, err);
		*error_r = msg;
	}
	return k;
}

struct tls_tickets *
tls_tickets_random(const char **error_r)
{
	struct tls_tickets *k = tls_tickets_new(error_r);
	if (k == NULL)
		return NULL;
	if (RAND_bytes((unsigned char *)&k->keys[0], TLS_TICKET_KEY_LEN) != 1) {
		*error_r = "no random bytes for a ticket key";
		tls_tickets_unref(&k);
		return NULL;
	}
	k->count = 1;
	return k;
}

unsigned
tls_tickets_count(const struct tls_tickets *k)
{
	return k->count;
}

const unsigned char *
tls_tickets_name(const struct tls_tickets *k, unsigned i)
{
	return k->keys[i].name;
}

struct tls_tickets *
tls_tickets_ref(struct tls_tickets *k)
{
	__atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

void
tls_tickets_unref(struct tls_tickets **kp)
{
	struct tls_tickets *k = *kp;
	*kp = NULL;
	if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	EVP_CIPHER_free(k->cipher);
	OPENSSL_cleanse(k->keys, sizeof(k->keys));
	free(k);
}

/* ---- the callback ---------------------------------------------------- */

static int tls_tickets_index = -1;
static pthread_once_t tls_tickets_once = PTHREAD_ONCE_INIT;

static void
tls_tickets_index_init(void)
{
	tls_tickets_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tls_tickets_index < 0)
		abort();
}

/* OpenSSL's contract (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): sealing,
 * 1 with name, iv, cipher and MAC set; opening, 0 for a name we do not
 * have (the ticket is ignored: a full handshake), 1 for the current key,
 * 2 for an older one (the client gets a ticket under the current key);
 * negative on failure. */
static int
tls_tickets_cb(SSL *ssl, unsigned char name[TLS_TICKET_NAME_LEN],
	       unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
	       int enc)
{
	/* Every context of a certificate set carries the same keys, so the
	 * one an SNI name switched to will do. */
	struct tls_tickets *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
						    tls_tickets_index);
	if (k == NULL)
		return -1;
	const struct tls_ticket_key *key = NULL;
	int rc = 1;
	if (enc) {
		key = &k->keys[0];
		int ivlen = EVP_CIPHER_get_iv_length(k->cipher);
		if (RAND_bytes(iv, ivlen) != 1)
			return -1;
		memcpy(name, key->name, TLS_TICKET_NAME_LEN);
		if (EVP_EncryptInit_ex2(cctx, k->cipher, key->aes, iv, NULL) !=
		    1)
			return -1;
	} else {
		for (unsigned i = 0; i < k->count && key == NULL; i++) {
			if (memcmp(k->keys[i].name, name,
				   TLS_TICKET_NAME_LEN) == 0) {
				key = &k->keys[i];
				rc = i == 0 ? 1 : 2;
			}
		}
		if (key == NULL)
			return 0;
		if (EVP_DecryptInit_ex2(cctx, k->cipher, key->aes, iv, NULL) !=
		    1)
			return -1;
	}
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(
		OSSL_MAC_PARAM_KEY, (void *)key->hmac, sizeof(key->hmac)),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
					     (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return rc;
}

void
tls_tickets_use(SSL_CTX *ctx, struct tls_tickets *k)
{
	pthread_once(&tls_tickets_once, tls_tickets_index_init);
	SSL_CTX_set_ex_data(ctx, tls_tickets_index, k);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb);
}
