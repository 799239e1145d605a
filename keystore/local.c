/*
 * local.c - the file:///abs/path provider: a master key in a local file.
 *
 * For tests, air-gapped setups and as a second KMS beside a cloud one.
 * The key file holds exactly 32 raw bytes, owned by us with mode 0600; it
 * is read once at open into a secret.  Wrapping is AES-256-GCM:
 *   blob = 0x01 || nonce(12, random) || ciphertext(32) || tag(16)
 * with the master key ID as AAD.  A random nonce is safe here: one master
 * key wraps few data keys, far below GCM's 2^32 random-nonce bound.
 * The master key ID is derived from the key itself (an HMAC, so it does
 * not reveal the key), so moving or copying the file keeps the chain's
 * ENCRYPTION-INFO map key valid.
 */
#include "provider.h"
#include "keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "../lib/fdio.h"
#include "../lib/hex.h"
#include "../lib/log.h"
#include "../lib/privfile.h"

#define LOCAL_KEY_SIZE 32
#define LOCAL_VERSION 0x01
#define LOCAL_NONCE 12
#define LOCAL_TAG 16
#define LOCAL_BLOB (1 + LOCAL_NONCE + KS_DATA_KEY_SIZE + LOCAL_TAG)
#define LOCAL_ID_PREFIX "kmsfs-local:"
#define LOCAL_ID_INFO "kmsfs local master key id v1"
#define LOCAL_ID_BYTES 16

struct local_state {
	struct secret *key;
	char id[sizeof(LOCAL_ID_PREFIX) + 2 * LOCAL_ID_BYTES];
};

static int load_key(const char *path, struct secret **out)
{
	char why[PRIVFILE_WHY_MAX];
	int r = privfile_read_secret(path, LOCAL_KEY_SIZE, out, why);

	if (r == -EFBIG || (!r && (*out)->len != LOCAL_KEY_SIZE)) {
		log_err("local master key %s must hold exactly %d bytes: "
			"create one with kmsfs keygen",
			path, LOCAL_KEY_SIZE);
		if (!r)
			secret_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	if (r)
		log_err("local master key %s: %s", path, why);
	return r;
}

static int make_id(struct local_state *st)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (!HMAC(EVP_sha256(), st->key->bytes, (int)st->key->len,
		  (const uint8_t *)LOCAL_ID_INFO, strlen(LOCAL_ID_INFO), md,
		  &mdlen))
		return -EIO;
	memcpy(st->id, LOCAL_ID_PREFIX, strlen(LOCAL_ID_PREFIX));
	hex_encode(md, LOCAL_ID_BYTES, st->id + strlen(LOCAL_ID_PREFIX));
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

static void local_free(void *state)
{
	struct local_state *st = state;

	if (!st)
		return;
	secret_free(st->key);
	free(st);
}

static int local_open(struct kmsuri *u, void **state_out)
{
	struct local_state *st;
	int r;

	if (*u->host || u->path[0] != '/') {
		log_err(
		    "invalid KMS URI %s: a local key needs file:///absolute/"
		    "path (no host, absolute path)",
		    u->redacted);
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	r = load_key(u->path, &st->key);
	if (!r)
		r = make_id(st);
	if (r) {
		local_free(st);
		return r;
	}
	*state_out = st;
	return 0;
}

static const char *local_key_id(void *state)
{
	return ((struct local_state *)state)->id;
}

static int gcm_init(EVP_CIPHER_CTX *c, const struct local_state *st,
		    const uint8_t *nonce, int enc)
{
	int n;

	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, st->key->bytes, nonce,
			      enc) != 1)
		return -EIO;
	if (EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)st->id,
			     (int)strlen(st->id)) != 1)
		return -EIO;
	return 0;
}

static int local_wrap(void *state, const struct secret *dk, struct buf *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t blob[LOCAL_BLOB];
	uint8_t *ct = blob + 1 + LOCAL_NONCE;
	int n, r = -EIO;

	blob[0] = LOCAL_VERSION;
	if (!c || dk->len != KS_DATA_KEY_SIZE ||
	    RAND_bytes(blob + 1, LOCAL_NONCE) != 1)
		goto out;
	if (gcm_init(c, state, blob + 1, 1) ||
	    EVP_EncryptUpdate(c, ct, &n, dk->bytes, (int)dk->len) != 1 ||
	    EVP_EncryptFinal_ex(c, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, LOCAL_TAG,
				ct + KS_DATA_KEY_SIZE) != 1)
		goto out;
	r = buf_add(out, blob, sizeof(blob));
out:
	EVP_CIPHER_CTX_free(c);
	return r;
}

static int local_unwrap(void *state, const uint8_t *blob, size_t len,
			struct secret **dk_out)
{
	const uint8_t *ct = blob + 1 + LOCAL_NONCE;
	EVP_CIPHER_CTX *c = NULL;
	struct secret *dk = NULL;
	int n, r = -EPROTO;

	if (len != LOCAL_BLOB || blob[0] != LOCAL_VERSION)
		goto out;
	r = -ENOMEM;
	dk = secret_new(KS_DATA_KEY_SIZE);
	c = EVP_CIPHER_CTX_new();
	if (!dk || !c)
		goto out;
	r = -EIO;
	if (gcm_init(c, state, blob + 1, 0) ||
	    EVP_DecryptUpdate(c, dk->bytes, &n, ct, KS_DATA_KEY_SIZE) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, LOCAL_TAG,
				(void *)(ct + KS_DATA_KEY_SIZE)) != 1)
		goto out;
	r = -EBADMSG;
	if (EVP_DecryptFinal_ex(c, dk->bytes + n, &n) != 1)
		goto out;
	*dk_out = dk;
	dk = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	secret_free(dk);
	return r;
}

const struct ks_provider ks_provider_local = {
    .scheme = "file",
    .aliases = NULL,
    .built = true,
    .build_hint = NULL,
    .open = local_open,
    .master_key_id = local_key_id,
    .wrap = local_wrap,
    .unwrap = local_unwrap,
    .free = local_free,
};

/* --- keygen -------------------------------------------------------------- */

static int write_key(int fd, const struct secret *key)
{
	int r;

	if (fchmod(fd, 0600) < 0)
		return -errno;
	r = fdio_write_all(fd, key->bytes, key->len, -1);
	if (r)
		return r;
	return fsync(fd) < 0 ? -errno : 0;
}

static int fsync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

int ks_local_keygen(const char *path)
{
	struct secret *key = NULL;
	int fd, r;

	r = secret_random(&key, LOCAL_KEY_SIZE);
	if (r)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			log_err("%s exists already: a master key is never "
				"overwritten; choose another path",
				path);
		else
			log_err("cannot create %s: %s", path, strerror(-r));
		goto out;
	}
	r = write_key(fd, key);
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r)
		r = fsync_parent(path);
	if (r) {
		log_err("cannot write master key %s: %s", path, strerror(-r));
		unlink(path);
		r = -EIO;
	}
out:
	secret_free(key);
	return r;
}
