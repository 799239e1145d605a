/*
 * secret.h - fixed-size containers for key material.
 *
 * Owns: the only way kmsfs holds a data key, master key or passphrase in
 * memory.  A struct secret lives on OpenSSL's secure heap (mlock'd, excluded
 * from core dumps when harden_process() ran first) and is wiped on free.
 * Must not know: where a key came from or what it protects.
 * Thread-safety: a secret is immutable after it was filled; sharing a
 * const pointer between threads is safe.  secret_new/secret_free are
 * thread-safe (the secure heap has its own lock).
 */
#ifndef KMSFS_SECRET_H
#define KMSFS_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_MAX 1024 /* longest passphrase or key we hold */

struct secret {
	size_t len;
	uint8_t bytes[SECRET_MAX];
};

/* Allocate a zeroed secret of len bytes (len <= SECRET_MAX).  Returns NULL
 * on ENOMEM or a bad length.  Release with secret_free(). */
struct secret *secret_new(size_t len);

/* Allocate a secret holding a copy of data[0..len). */
struct secret *secret_dup(const uint8_t *data, size_t len);

/* Fill with len random bytes from the OS CSPRNG.  Returns 0 or -EIO. */
int secret_random(struct secret **out, size_t len);

/* Wipe and free; accepts NULL. */
void secret_free(struct secret *s);

/* Constant-time equality (lengths compared too). */
int secret_equal(const struct secret *a, const struct secret *b);

/* Wipe an ordinary buffer (OPENSSL_cleanse). */
void secret_wipe(void *p, size_t len);

#endif
