/*
 * passphrase.c - the passphrase scheme: CockroachDB's GenerateKey.
 *
 * PBKDF2-HMAC-SHA256 with 64000 iterations and a 32-byte output (spec
 * §1.4), computed straight into a secret so the key never sits in an
 * ordinary buffer.  The passphrase is the raw bytes the user gave.
 */
#include "keystore.h"

#include <errno.h>
#include <limits.h>

#include <openssl/evp.h>

int ks_derive_passphrase(const uint8_t *pass, size_t passlen,
			 const uint8_t *salt, size_t saltlen,
			 struct secret **key_out)
{
	static const uint8_t empty[1];
	struct secret *key;

	*key_out = NULL;
	if (passlen > INT_MAX || saltlen > INT_MAX)
		return -EINVAL;
	key = secret_new(KS_DATA_KEY_SIZE);
	if (!key)
		return -ENOMEM;
	/* OpenSSL wants non-NULL pointers even for empty inputs. */
	if (PKCS5_PBKDF2_HMAC(passlen ? (const char *)pass
				      : (const char *)empty,
			      (int)passlen, saltlen ? salt : empty,
			      (int)saltlen, KS_PBKDF2_ITER, EVP_sha256(),
			      KS_DATA_KEY_SIZE, key->bytes) != 1) {
		secret_free(key);
		return -EIO;
	}
	*key_out = key;
	return 0;
}
