/*
 * secret.c - key containers on OpenSSL's secure heap.
 *
 * The secure heap is set up by harden_process(); when it is not (unit
 * tests), OPENSSL_secure_zalloc falls back to the ordinary heap, and the
 * wipe-on-free contract still holds.
 */
#include "secret.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

struct secret *secret_new(size_t len)
{
	struct secret *s;

	if (len > SECRET_MAX)
		return NULL;
	s = OPENSSL_secure_zalloc(sizeof(*s));
	if (!s)
		return NULL;
	s->len = len;
	return s;
}

struct secret *secret_dup(const uint8_t *data, size_t len)
{
	struct secret *s = secret_new(len);

	if (s && len)
		memcpy(s->bytes, data, len);
	return s;
}

int secret_random(struct secret **out, size_t len)
{
	struct secret *s = secret_new(len);

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (RAND_priv_bytes(s->bytes, (int)len) != 1) {
		secret_free(s);
		return -EIO;
	}
	*out = s;
	return 0;
}

void secret_free(struct secret *s)
{
	if (!s)
		return;
	OPENSSL_secure_clear_free(s, sizeof(*s));
}

int secret_equal(const struct secret *a, const struct secret *b)
{
	if (a->len != b->len)
		return 0;
	return CRYPTO_memcmp(a->bytes, b->bytes, a->len) == 0;
}

void secret_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}
