/*
 * cformat.h - CockroachDB's encrypted-file format (v1 read, v2 read/write).
 *
 * Owns: the 20-byte header ("encrypt" | version | 12-byte IV), 64 KiB
 * chunks sealed with AES-256-GCM (no AAD) under nonce = IV with bytes
 * [4..12) read big-endian plus the chunk index (mod 2^64, no carry into
 * bytes [0..4)), the mandatory short final chunk, and the mapping between
 * ciphertext and plaintext sizes.  See shared/spec/cockroach-interop.md §1.
 * Must not know: files, FUSE, KMSes or where the key came from.
 * Thread-safety: every function is reentrant; a struct cf_key may be
 * shared by threads (it holds the key bytes, a fetched cipher and a
 * locked pool of contexts keyed with it, freed and cleansed with it).
 */
#ifndef KMSFS_CFORMAT_H
#define KMSFS_CFORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/secret.h"

#define CF_PREAMBLE "encrypt"
#define CF_PREAMBLE_LEN 7
#define CF_HEADER_SIZE 20
#define CF_IV_SIZE 12
#define CF_TAG_SIZE 16
#define CF_KEY_SIZE 32
#define CF_CHUNK_SIZE 65536u
#define CF_CHUNK_CT_SIZE (CF_CHUNK_SIZE + CF_TAG_SIZE) /* 65552 */
#define CF_V1 1
#define CF_V2 2
/* kmsfs's mark on a v2 file it has not finished writing (not
 * CockroachDB's): v2's layout without the final chunk, the unfinished
 * last chunk kept elsewhere (fs/journal.h).  CockroachDB refuses the
 * unknown version, so an unfinished file never passes for a complete one.
 * Byte CF_VERSION_OFFSET of the header. */
#define CF_V2_OPEN 0x82
#define CF_VERSION_OFFSET CF_PREAMBLE_LEN

/* A prepared AES-256-GCM key.  Created from a 32-byte secret. */
struct cf_key;

/* Returns 0, -EINVAL (key not 32 bytes) or -ENOMEM.  The key bytes are
 * copied into a 32-byte block of the secure heap (the only secure memory
 * a cf_key takes); the caller keeps ownership of key. */
int cf_key_new(const struct secret *key, struct cf_key **out);
void cf_key_free(struct cf_key *k); /* wipes; accepts NULL */

/* Ciphertext size of a v2 file holding plain bytes. */
uint64_t cf_cipher_size(uint64_t plain);

/* Plaintext size of a v2 file of cipher bytes.  Returns 0, or -EBADMSG
 * when no v2 writer can produce that size (shorter than header + tag, or
 * (cipher-20) mod 65552 in [0,16)). */
int cf_plain_size(uint64_t cipher, uint64_t *plain_out);

/* Number of chunks (including the final short one) for plain bytes. */
uint64_t cf_chunk_count(uint64_t plain);

/* Build a v2 header with the given IV. */
void cf_header_build(const uint8_t iv[CF_IV_SIZE], uint8_t out[CF_HEADER_SIZE]);

/* Parse a header.  len is how many bytes buf holds (may be < 20).
 * Returns 0 and fills version (CF_V1, CF_V2 or CF_V2_OPEN)/iv, or
 * -EBADMSG (no preamble: "does not appear to be encrypted"), -EPROTO
 * (preamble ok but shorter than 20 bytes: "invalid encryption header"),
 * -ENOTSUP (unknown version). */
int cf_header_parse(const uint8_t *buf, size_t len, int *version_out,
		    uint8_t iv_out[CF_IV_SIZE]);

/* Fresh random IV from the CSPRNG; -EIO if it fails. */
int cf_iv_random(uint8_t iv_out[CF_IV_SIZE]);

/* Nonce of chunk idx. */
void cf_chunk_nonce(const uint8_t iv[CF_IV_SIZE], uint64_t idx,
		    uint8_t nonce_out[CF_IV_SIZE]);

/* Seal plain[0..len) (len <= CF_CHUNK_SIZE) as chunk idx into out, which
 * must hold len + CF_TAG_SIZE bytes.  Returns 0 or -EIO (OpenSSL failure),
 * -EINVAL (len too big). */
int cf_seal_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		  uint64_t idx, const uint8_t *plain, size_t len, uint8_t *out);

/* Open chunk idx: ct[0..ctlen) with ctlen in [16, CF_CHUNK_CT_SIZE];
 * writes ctlen - 16 bytes to plain_out.  Returns 0, -EBADMSG
 * (authentication failed, or ctlen < 16: truncated) or -EINVAL. */
int cf_open_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
		  uint64_t idx, const uint8_t *ct, size_t ctlen,
		  uint8_t *plain_out);

/* kmsfs's own sealed record (not CockroachDB's format; fs/journal.c):
 * one GCM message under nonce, which must be a fresh random IV, that also
 * authenticates aad[0..aadlen).  len <= CF_CHUNK_SIZE; out holds len +
 * CF_TAG_SIZE bytes.  Returns 0, -EINVAL or -EIO. */
int cf_seal_record(const struct cf_key *k, const uint8_t nonce[CF_IV_SIZE],
		   const uint8_t *aad, size_t aadlen, const uint8_t *plain,
		   size_t len, uint8_t *out);
/* Open such a record: ct[0..ctlen) is the ciphertext and its tag; writes
 * ctlen - 16 bytes to plain_out.  0, -EBADMSG or -EINVAL. */
int cf_open_record(const struct cf_key *k, const uint8_t nonce[CF_IV_SIZE],
		   const uint8_t *aad, size_t aadlen, const uint8_t *ct,
		   size_t ctlen, uint8_t *plain_out);

/* v1: one GCM message over the whole body.  body is everything after the
 * 20-byte header; writes bodylen - 16 bytes to plain_out. 0 / -EBADMSG. */
int cf_open_v1(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
	       const uint8_t *body, size_t bodylen, uint8_t *plain_out);

/*
 * v1 with bounded memory.  A v1 body is one GCM message: nothing of it is
 * authentic before its end.  cf_v1_open reads the whole body once,
 * streaming, checks the tag and keeps a SHA-256 of every 64 KiB of
 * ciphertext (32 bytes each); cf_v1_read then reads one such piece,
 * refuses it unless it hashes to what was authenticated (a file changed
 * after the check), and decrypts it with GCM's own counter (AES-CTR).
 * Limits: CF_V1_MAX plaintext bytes (GCM's 32-bit block counter).
 */
#define CF_V1_MAX (((uint64_t)1 << 32) - 2) * 16
struct cf_v1;
/* fd: the whole file (header included), cipher bytes long, its header
 * parsed already (iv).  Returns 0, -EBADMSG (authentication failed,
 * truncated), -EFBIG (over CF_V1_MAX), -EIO, -ENOMEM. */
int cf_v1_open(const struct cf_key *k, int fd, uint64_t cipher,
	       const uint8_t iv[CF_IV_SIZE], struct cf_v1 **out);
void cf_v1_free(struct cf_v1 *v); /* NULL ok */
uint64_t cf_v1_size(const struct cf_v1 *v);
/* Plaintext bytes [idx * 64 KiB, +64 KiB) into out (*len bytes: fewer at
 * the end, 0 past it); ct is CF_CHUNK_SIZE bytes of scratch.  0,
 * -EBADMSG (the ciphertext changed since cf_v1_open), -EIO. */
int cf_v1_read(const struct cf_key *k, const struct cf_v1 *v, int fd,
	       uint64_t idx, uint8_t *ct, uint8_t *out, size_t *len);

/* Stream helpers for the encrypt/decrypt/cat commands.  Encrypt reads
 * in_fd to EOF and writes a v2 file under a fresh IV to out_fd.  Decrypt
 * reads a v2 file (v1 too with CF_ALLOW_V1) from in_fd and writes the
 * plaintext to out_fd, failing with -EBADMSG on tampering or truncation
 * (plaintext already written for earlier, authentic chunks is not
 * retracted: callers that need all-or-nothing write to a temporary file;
 * no v1 plaintext is written before the whole file is authenticated).
 * -EIO on read/write errors, -EPROTO/-ENOTSUP for header problems as
 * cf_header_parse, -EPROTONOSUPPORT for a v1 file without CF_ALLOW_V1,
 * -EFBIG for a v1 file over CF_V1_PIPE_MAX read from a pipe (it must be
 * held whole there; from a file, see cf_v1_open).  Memory is O(chunk). */
#define CF_ALLOW_V1 1u
#define CF_V1_PIPE_MAX (64u << 20)
int cf_encrypt_fd(const struct cf_key *k, int in_fd, int out_fd);
int cf_decrypt_fd(const struct cf_key *k, int in_fd, int out_fd,
		  unsigned flags);

/* One-line description of a cformat error code, CockroachDB's wording
 * where it has one ("failed to decrypt — maybe incorrect key", ...). */
const char *cf_strerror(int err);

#endif
