/*
 * cformat.c - CockroachDB's encrypted-file format: header, AES-256-GCM
 * chunk seal/open, size mapping and the streaming encrypt/decrypt helpers.
 *
 * A struct cf_key holds the 32 key bytes (their own 32-byte block of the
 * secure heap, not a 1 KiB struct secret: a mount holds one key per
 * chain, thousands of them), a cipher fetched once and a small pool of
 * keyed EVP_CIPHER_CTXs: a seal or open takes one (its key schedule made
 * once, only the nonce set per chunk), so threads share a key with no
 * lock held while they work, and the data path neither allocates nor
 * expands the key per chunk.  The pool is freed, and its key schedules
 * cleansed, with the key.  Chunks are sealed and opened in place by the
 * stream helpers (GCM allows in == out).
 */
#include "cformat.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../lib/buf.h"
#include "../lib/fdio.h"
#include "../lib/log.h"

/* EVP takes int lengths: feed a large v1 body in steps of this size. */
#define GCM_STEP (1u << 30)
#define SHA_LEN 32

/* Idle keyed contexts of one key: [0] decrypt, [1] encrypt. */
struct ctx_ent {
	EVP_CIPHER_CTX *ctx;
	struct ctx_ent *next;
};

struct ctx_pool {
	pthread_mutex_t lock;
	struct ctx_ent *idle[2];
};

struct cf_key {
	uint8_t *key;	       /* CF_KEY_SIZE bytes, OPENSSL_secure_malloc */
	EVP_CIPHER *cipher;    /* AES-256-GCM */
	EVP_CIPHER *ctr;       /* AES-256-CTR: GCM's key stream, for v1 reads */
	struct ctx_pool *pool; /* mutable through a const key: a cache */
};

int cf_key_new(const struct secret *key, struct cf_key **out)
{
	struct cf_key *k;

	*out = NULL;
	if (!key || key->len != CF_KEY_SIZE)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->key = OPENSSL_secure_malloc(CF_KEY_SIZE);
	if (k->key)
		memcpy(k->key, key->bytes, CF_KEY_SIZE);
	k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	k->ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
	k->pool = calloc(1, sizeof(*k->pool));
	if (k->pool)
		pthread_mutex_init(&k->pool->lock, NULL);
	if (!k->key || !k->cipher || !k->ctr || !k->pool) {
		cf_key_free(k);
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

void cf_key_free(struct cf_key *k)
{
	if (!k)
		return;
	if (k->key)
		OPENSSL_secure_clear_free(k->key, CF_KEY_SIZE);
	if (k->pool) {
		for (int i = 0; i < 2; i++) {
			while (k->pool->idle[i]) {
				struct ctx_ent *e = k->pool->idle[i];

				k->pool->idle[i] = e->next;
				EVP_CIPHER_CTX_free(e->ctx); /* cleanses */
				free(e);
			}
		}
		pthread_mutex_destroy(&k->pool->lock);
		free(k->pool);
	}
	EVP_CIPHER_free(k->cipher);
	EVP_CIPHER_free(k->ctr);
	free(k);
}

uint64_t cf_cipher_size(uint64_t plain)
{
	return CF_HEADER_SIZE + plain + CF_TAG_SIZE * cf_chunk_count(plain);
}

int cf_plain_size(uint64_t cipher, uint64_t *plain_out)
{
	uint64_t s;

	/* Checked first so that N < 20 cannot underflow s. */
	if (cipher < CF_HEADER_SIZE + CF_TAG_SIZE)
		return -EBADMSG;
	s = cipher - CF_HEADER_SIZE;
	if (s % CF_CHUNK_CT_SIZE < CF_TAG_SIZE)
		return -EBADMSG;
	*plain_out = s - CF_TAG_SIZE * (s / CF_CHUNK_CT_SIZE + 1);
	return 0;
}

uint64_t cf_chunk_count(uint64_t plain)
{
	return plain / CF_CHUNK_SIZE + 1;
}

void cf_header_build(const uint8_t iv[CF_IV_SIZE], uint8_t out[CF_HEADER_SIZE])
{
	memcpy(out, CF_PREAMBLE, CF_PREAMBLE_LEN);
	out[CF_PREAMBLE_LEN] = CF_V2;
	memcpy(out + CF_PREAMBLE_LEN + 1, iv, CF_IV_SIZE);
}

int cf_header_parse(const uint8_t *buf, size_t len, int *version_out,
		    uint8_t iv_out[CF_IV_SIZE])
{
	int version;

	/* Same order of checks as CockroachDB: preamble, length, version. */
	if (len < CF_PREAMBLE_LEN || memcmp(buf, CF_PREAMBLE, CF_PREAMBLE_LEN))
		return -EBADMSG;
	if (len < CF_HEADER_SIZE)
		return -EPROTO;
	version = buf[CF_VERSION_OFFSET];
	if (version != CF_V1 && version != CF_V2 && version != CF_V2_OPEN)
		return -ENOTSUP;
	*version_out = version;
	memcpy(iv_out, buf + CF_PREAMBLE_LEN + 1, CF_IV_SIZE);
	return 0;
}

int cf_iv_random(uint8_t iv_out[CF_IV_SIZE])
{
	return RAND_bytes(iv_out, CF_IV_SIZE) == 1 ? 0 : -EIO;
}

void cf_chunk_nonce(const uint8_t iv[CF_IV_SIZE], uint64_t idx,
		    uint8_t nonce_out[CF_IV_SIZE])
{
	uint64_t ctr = 0;
	int i;

	/* Bytes [4..12) are a big-endian counter that wraps mod 2^64 and
	 * never carries into bytes [0..4) (CockroachDB's chunkIV). */
	for (i = 4; i < CF_IV_SIZE; i++)
		ctr = ctr << 8 | iv[i];
	ctr += idx;
	memcpy(nonce_out, iv, 4);
	for (i = CF_IV_SIZE - 1; i >= 4; i--) {
		nonce_out[i] = (uint8_t)ctr;
		ctr >>= 8;
	}
}

static int gcm_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len,
		      uint8_t *out)
{
	while (len) {
		int n = len > GCM_STEP ? (int)GCM_STEP : (int)len;
		int outl;

		if (EVP_CipherUpdate(ctx, out, &outl, in, n) != 1 || outl != n)
			return -EIO;
		in += n;
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

/* What one GCM message authenticates besides its text. */
struct aad {
	const uint8_t *p;
	size_t len;
};

/* A context of k for enc, its key schedule made: from the pool, else new
 * (NULL: out of memory, or OpenSSL refused the key). */
static struct ctx_ent *ctx_take(const struct cf_key *k, int enc)
{
	struct ctx_pool *p = k->pool;
	struct ctx_ent *e;

	pthread_mutex_lock(&p->lock);
	e = p->idle[enc];
	if (e)
		p->idle[enc] = e->next;
	pthread_mutex_unlock(&p->lock);
	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (e)
		e->ctx = EVP_CIPHER_CTX_new();
	if (e && e->ctx &&
	    EVP_CipherInit_ex2(e->ctx, k->cipher, k->key, NULL, enc, NULL) == 1)
		return e;
	if (e)
		EVP_CIPHER_CTX_free(e->ctx);
	free(e);
	return NULL;
}

static void ctx_give(const struct cf_key *k, int enc, struct ctx_ent *e)
{
	struct ctx_pool *p = k->pool;

	pthread_mutex_lock(&p->lock);
	e->next = p->idle[enc];
	p->idle[enc] = e;
	pthread_mutex_unlock(&p->lock);
}

/*
 * One GCM message.  enc: tag receives the tag; otherwise tag is checked
 * and out is wiped when it does not match, so that no caller can use
 * unauthenticated plaintext by mistake.  A pooled context gets only the
 * nonce: that starts a new message under the key it holds.
 */
static int gcm_crypt(const struct cf_key *k, const uint8_t nonce[CF_IV_SIZE],
		     int enc, struct aad aad, const uint8_t *in, size_t len,
		     uint8_t *out, uint8_t tag[CF_TAG_SIZE])
{
	uint8_t fin[EVP_MAX_BLOCK_LENGTH];
	struct ctx_ent *e;
	EVP_CIPHER_CTX *ctx;
	int outl, r = -EIO;

	enc = enc ? 1 : 0;
	e = ctx_take(k, enc);
	if (!e) {
		if (!enc)
			secret_wipe(out, len);
		return -ENOMEM;
	}
	ctx = e->ctx;
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc, NULL) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CF_TAG_SIZE,
					tag) != 1)
		goto out;
	if (aad.len &&
	    (aad.len > INT_MAX ||
	     EVP_CipherUpdate(ctx, NULL, &outl, aad.p, (int)aad.len) != 1))
		goto out;
	r = gcm_update(ctx, in, len, out);
	if (r)
		goto out;
	if (EVP_CipherFinal_ex(ctx, fin, &outl) != 1) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, CF_TAG_SIZE,
				       tag) != 1)
		r = -EIO;
out:
	if (r && !enc)
		secret_wipe(out, len);
	ctx_give(k, enc, e);
	return r;
}

static const struct aad no_aad = {NULL, 0};

int cf_seal_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		  uint64_t idx, const uint8_t *plain, size_t len, uint8_t *out)
{
	uint8_t nonce[CF_IV_SIZE];

	if (len > CF_CHUNK_SIZE)
		return -EINVAL;
	cf_chunk_nonce(iv, idx, nonce);
	return gcm_crypt(k, nonce, 1, no_aad, plain, len, out, out + len);
}

int cf_open_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		  uint64_t idx, const uint8_t *ct, size_t ctlen,
		  uint8_t *plain_out)
{
	uint8_t nonce[CF_IV_SIZE], tag[CF_TAG_SIZE];

	/* Fewer bytes than a tag: the chunk was cut (CockroachDB reports
	 * the same "failed to decrypt" for it). */
	if (ctlen < CF_TAG_SIZE)
		return -EBADMSG;
	if (ctlen > CF_CHUNK_CT_SIZE)
		return -EINVAL;
	/* Copy the tag first: plain_out may alias ct (in-place open). */
	memcpy(tag, ct + ctlen - CF_TAG_SIZE, CF_TAG_SIZE);
	cf_chunk_nonce(iv, idx, nonce);
	return gcm_crypt(k, nonce, 0, no_aad, ct, ctlen - CF_TAG_SIZE,
			 plain_out, tag);
}

int cf_seal_record(const struct cf_key *k, const uint8_t nonce[CF_IV_SIZE],
		   const uint8_t *aad, size_t aadlen, const uint8_t *plain,
		   size_t len, uint8_t *out)
{
	struct aad a = {aad, aadlen};

	if (len > CF_CHUNK_SIZE)
		return -EINVAL;
	return gcm_crypt(k, nonce, 1, a, plain, len, out, out + len);
}

int cf_open_record(const struct cf_key *k, const uint8_t nonce[CF_IV_SIZE],
		   const uint8_t *aad, size_t aadlen, const uint8_t *ct,
		   size_t ctlen, uint8_t *plain_out)
{
	struct aad a = {aad, aadlen};
	uint8_t tag[CF_TAG_SIZE];

	if (ctlen < CF_TAG_SIZE)
		return -EBADMSG;
	if (ctlen > CF_CHUNK_CT_SIZE)
		return -EINVAL;
	memcpy(tag, ct + ctlen - CF_TAG_SIZE, CF_TAG_SIZE);
	return gcm_crypt(k, nonce, 0, a, ct, ctlen - CF_TAG_SIZE, plain_out,
			 tag);
}

int cf_open_v1(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
	       const uint8_t *body, size_t bodylen, uint8_t *plain_out)
{
	uint8_t tag[CF_TAG_SIZE];

	if (bodylen < CF_TAG_SIZE)
		return -EBADMSG;
	memcpy(tag, body + bodylen - CF_TAG_SIZE, CF_TAG_SIZE);
	return gcm_crypt(k, iv, 0, no_aad, body, bodylen - CF_TAG_SIZE,
			 plain_out, tag);
}

/* --- v1 with bounded memory ---------------------------------------------- */

struct cf_v1 {
	uint8_t iv[CF_IV_SIZE];
	uint64_t size;		  /* plaintext bytes */
	uint8_t (*hash)[SHA_LEN]; /* of each 64 KiB of ciphertext */
};

static int sha256(const uint8_t *p, size_t len, uint8_t out[SHA_LEN])
{
	unsigned n = 0;

	return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 &&
		       n == SHA_LEN
		   ? 0
		   : -EIO;
}

/* The whole body of fd through GCM (its plaintext thrown away in buf,
 * CF_CHUNK_SIZE bytes), each piece hashed on the way; then the tag. */
static int v1_check(const struct cf_key *k, int fd, struct cf_v1 *v,
		    uint8_t *buf)
{
	uint8_t tag[CF_TAG_SIZE], fin[EVP_MAX_BLOCK_LENGTH];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint64_t off = 0, i = 0;
	size_t n, got;
	int outl, r = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (EVP_CipherInit_ex2(ctx, k->cipher, k->key, v->iv, 0, NULL) != 1)
		goto out;
	for (; off < v->size; off += n, i++) {
		n = (size_t)(v->size - off < CF_CHUNK_SIZE ? v->size - off
							   : CF_CHUNK_SIZE);
		r = fdio_read_full(fd, buf, n, CF_HEADER_SIZE + (off_t)off,
				   &got)
			? -EIO
		    : got != n ? -EBADMSG
			       : sha256(buf, n, v->hash[i]);
		if (!r)
			r = gcm_update(ctx, buf, n, buf);
		if (r)
			goto out;
	}
	r = fdio_read_full(fd, tag, sizeof(tag), CF_HEADER_SIZE + (off_t)off,
			   &got)
		? -EIO
	    : got != sizeof(tag) ? -EBADMSG
				 : 0;
	if (!r && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CF_TAG_SIZE,
				      tag) != 1)
		r = -EIO;
	if (!r && EVP_CipherFinal_ex(ctx, fin, &outl) != 1)
		r = -EBADMSG;
out:
	secret_wipe(buf, CF_CHUNK_SIZE);
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int cf_v1_open(const struct cf_key *k, int fd, uint64_t cipher,
	       const uint8_t iv[CF_IV_SIZE], struct cf_v1 **out)
{
	struct cf_v1 *v;
	uint8_t *buf;
	uint64_t n;
	int r;

	*out = NULL;
	if (cipher < CF_HEADER_SIZE + CF_TAG_SIZE)
		return -EBADMSG;
	if (cipher - CF_HEADER_SIZE - CF_TAG_SIZE > CF_V1_MAX)
		return -EFBIG;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v->iv, iv, CF_IV_SIZE);
	v->size = cipher - CF_HEADER_SIZE - CF_TAG_SIZE;
	n = (v->size + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE;
	v->hash = malloc(n ? (size_t)n * SHA_LEN : 1);
	buf = malloc(CF_CHUNK_SIZE);
	r = v->hash && buf ? v1_check(k, fd, v, buf) : -ENOMEM;
	free(buf);
	if (r) {
		cf_v1_free(v);
		return r;
	}
	*out = v;
	return 0;
}

void cf_v1_free(struct cf_v1 *v)
{
	if (!v)
		return;
	free(v->hash);
	free(v);
}

uint64_t cf_v1_size(const struct cf_v1 *v)
{
	return v->size;
}

int cf_v1_read(const struct cf_key *k, const struct cf_v1 *v, int fd,
	       uint64_t idx, uint8_t *ct, uint8_t *out, size_t *len)
{
	uint64_t start = idx * CF_CHUNK_SIZE, block = start / 16 + 2;
	uint8_t h[SHA_LEN], ctr[16];
	EVP_CIPHER_CTX *ctx;
	size_t got;
	int r;

	*len = start < v->size
		   ? (size_t)(v->size - start < CF_CHUNK_SIZE ? v->size - start
							      : CF_CHUNK_SIZE)
		   : 0;
	if (!*len)
		return 0;
	if (fdio_read_full(fd, ct, *len, CF_HEADER_SIZE + (off_t)start, &got))
		return -EIO;
	if (got != *len || sha256(ct, *len, h) != 0 ||
	    CRYPTO_memcmp(h, v->hash[idx], SHA_LEN) != 0)
		return -EBADMSG;
	/* GCM with a 96-bit IV: the data's counter blocks are IV | 2, 3,
	 * ...; CF_V1_MAX keeps the 32-bit counter from wrapping. */
	memcpy(ctr, v->iv, CF_IV_SIZE);
	for (int i = 15; i >= CF_IV_SIZE; i--, block >>= 8)
		ctr[i] = (uint8_t)block;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	r = EVP_CipherInit_ex2(ctx, k->ctr, k->key, ctr, 0, NULL) == 1
		? gcm_update(ctx, ct, *len, out)
		: -EIO;
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

/* The stream helpers report any descriptor failure as -EIO. */
static int read_full(int fd, uint8_t *p, size_t len, size_t *got_out)
{
	return fdio_read_full(fd, p, len, -1, got_out) ? -EIO : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	return fdio_write_all(fd, p, len, -1) ? -EIO : 0;
}

int cf_encrypt_fd(const struct cf_key *k, int in_fd, int out_fd)
{
	uint8_t iv[CF_IV_SIZE], hdr[CF_HEADER_SIZE];
	uint8_t *chunk = NULL;
	uint64_t idx;
	size_t got;
	int r;

	r = cf_iv_random(iv);
	if (r)
		return r;
	cf_header_build(iv, hdr);
	r = write_all(out_fd, hdr, sizeof(hdr));
	if (r)
		return r;
	chunk = malloc(CF_CHUNK_CT_SIZE);
	if (!chunk)
		return -ENOMEM;
	/* A full chunk is sealed at once; the loop ends with the first
	 * short one, which is empty when the input is a multiple of 64 KiB
	 * (including 0): readers rely on it to detect truncation. */
	for (idx = 0;; idx++) {
		r = read_full(in_fd, chunk, CF_CHUNK_SIZE, &got);
		if (r)
			goto out;
		r = cf_seal_chunk(k, iv, idx, chunk, got, chunk);
		if (r)
			goto out;
		r = write_all(out_fd, chunk, got + CF_TAG_SIZE);
		if (r || got < CF_CHUNK_SIZE)
			goto out;
	}
out:
	secret_wipe(chunk, CF_CHUNK_CT_SIZE);
	free(chunk);
	return r;
}

static int decrypt_v2(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		      int in_fd, int out_fd)
{
	uint8_t *chunk;
	uint64_t idx;
	size_t got;
	int r;

	chunk = malloc(CF_CHUNK_CT_SIZE);
	if (!chunk)
		return -ENOMEM;
	/* A short read means EOF (read_full), so the first short chunk is
	 * the last one and nothing can follow it.  A file cut at a chunk
	 * boundary ends with a full chunk and then reads 0 bytes here. */
	for (idx = 0;; idx++) {
		r = read_full(in_fd, chunk, CF_CHUNK_CT_SIZE, &got);
		if (r)
			goto out;
		if (got < CF_TAG_SIZE) {
			log_debug("chunk %" PRIu64 ": file truncated (%zu "
				  "bytes, final chunk missing)",
				  idx, got);
			r = -EBADMSG;
			goto out;
		}
		r = cf_open_chunk(k, iv, idx, chunk, got, chunk);
		if (r) {
			log_debug("chunk %" PRIu64 ": authentication failed",
				  idx);
			goto out;
		}
		r = write_all(out_fd, chunk, got - CF_TAG_SIZE);
		if (r || got < CF_CHUNK_CT_SIZE)
			goto out;
	}
out:
	secret_wipe(chunk, CF_CHUNK_CT_SIZE);
	free(chunk);
	return r;
}

/* From a pipe: one GCM message, held whole up to CF_V1_PIPE_MAX. */
static int decrypt_v1_pipe(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
			   int in_fd, int out_fd)
{
	struct buf body;
	int r;

	/* Secret flag: growth and release wipe the plaintext. */
	buf_init_secret(&body, CF_V1_PIPE_MAX + CF_TAG_SIZE);
	r = buf_read_fd(&body, in_fd);
	if (r) {
		r = r == -ENOMEM ? -ENOMEM : r == -E2BIG ? -EFBIG : -EIO;
		goto out;
	}
	r = cf_open_v1(k, iv, body.data, body.len, body.data);
	if (r)
		goto out;
	r = write_all(out_fd, body.data, body.len - CF_TAG_SIZE);
out:
	buf_release(&body);
	return r;
}

/* From a file (read from its start): authenticated first, then read. */
static int decrypt_v1(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		      int in_fd, int out_fd)
{
	uint8_t *ct = NULL, *pt = NULL;
	struct cf_v1 *v = NULL;
	struct stat st;
	size_t len = 1;
	int r;

	if (fstat(in_fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    lseek(in_fd, 0, SEEK_CUR) != CF_HEADER_SIZE)
		return decrypt_v1_pipe(k, iv, in_fd, out_fd);
	r = cf_v1_open(k, in_fd, (uint64_t)st.st_size, iv, &v);
	ct = malloc(CF_CHUNK_SIZE);
	pt = malloc(CF_CHUNK_SIZE);
	if (!r && (!ct || !pt))
		r = -ENOMEM;
	for (uint64_t i = 0; !r && len; i++) {
		r = cf_v1_read(k, v, in_fd, i, ct, pt, &len);
		if (!r)
			r = write_all(out_fd, pt, len);
	}
	if (pt)
		secret_wipe(pt, CF_CHUNK_SIZE);
	free(pt);
	free(ct);
	cf_v1_free(v);
	return r;
}

int cf_decrypt_fd(const struct cf_key *k, int in_fd, int out_fd, unsigned flags)
{
	uint8_t hdr[CF_HEADER_SIZE], iv[CF_IV_SIZE];
	size_t got;
	int version, r;

	r = read_full(in_fd, hdr, sizeof(hdr), &got);
	if (r)
		return r;
	r = cf_header_parse(hdr, got, &version, iv);
	if (r)
		return r;
	if (version == CF_V2_OPEN)
		return -ENOTSUP; /* unfinished: only a kfile can read it */
	if (version == CF_V1 && !(flags & CF_ALLOW_V1))
		return -EPROTONOSUPPORT;
	if (version == CF_V1)
		return decrypt_v1(k, iv, in_fd, out_fd);
	return decrypt_v2(k, iv, in_fd, out_fd);
}

const char *cf_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EBADMSG:
		/* One code for three causes (see cf_header_parse and
		 * cf_decrypt_fd): keep CockroachDB's wording first. */
		return "failed to decrypt — maybe incorrect key (or the file "
		       "is truncated, damaged, or does not appear to be "
		       "encrypted)";
	case -EPROTO:
		return "invalid encryption header";
	case -ENOTSUP:
		return "unexpected encryption scheme/config version";
	case -EPROTONOSUPPORT:
		return "a v1 file (CockroachDB 21.1 or older), refused unless "
		       "--allow-v1 is given (it is then read, never written)";
	case -EFBIG:
		return "v1 file too large to authenticate (over 64 MiB from a "
		       "pipe, 64 GiB from a file)";
	case -EINVAL:
		return "invalid argument to the encryption layer (key must "
		       "be 32 bytes, chunks at most 64 KiB)";
	case -ENOMEM:
		return "out of memory";
	case -EIO:
		return "I/O or crypto library error while encrypting or "
		       "decrypting";
	default:
		return "unknown encryption error";
	}
}
