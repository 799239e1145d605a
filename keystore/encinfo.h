/*
 * encinfo.h - CockroachDB's EncryptionInfo message and the ENCRYPTION-INFO*
 * files of a chain directory (spec §2).  Private to keystore/.
 *
 * Owns: the protobuf wire format of EncryptionInfo (scheme = 1, salt = 2,
 * map<string, bytes> = 3 whose keys are raw SHA-256 digests, so they are
 * handled as bytes, never as text), and listing, reading and writing the
 * versioned files through a directory fd.
 * Must not know: what a KMS is, how keys are derived, FUSE.
 * Nothing here is secret: ENCRYPTION-INFO is stored in plaintext.
 * Thread-safety: a struct encinfo has one owner; the file functions only
 * use the *at() calls on the fd they are given and may run concurrently.
 */
#ifndef KMSFS_ENCINFO_H
#define KMSFS_ENCINFO_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

#define ENCINFO_PREFIX "ENCRYPTION-INFO"
/* Limits on what the store may hand us, each far above real use: a chain
 * lists one map entry per KMS (CockroachDB backups name a handful), and
 * even 1024 entries of the largest real kind (a 32-byte key and a 512-byte
 * RSA-4096 blob) fit in ENCINFO_FILE_MAX.  Each ALTER BACKUP ... ADD
 * NEW_KMS adds one file; the file cap bounds what one unlock may read. */
#define ENCINFO_FILE_MAX (1u << 20) /* bytes per file; larger: refused */
#define ENCINFO_MAX_FILES 256	    /* per chain directory */
#define ENCINFO_MAX_ENTRIES 1024    /* map entries per message */

struct encinfo_entry {
	uint8_t *key; /* map key: SHA-256 of a master key ID (32 bytes) */
	size_t keylen;
	uint8_t *val; /* the wrapped data key, opaque */
	size_t vallen;
};

/* Entries keep their insertion (or wire) order; the encoder writes them in
 * that order.  Go's map order is random, so no reader depends on it. */
struct encinfo {
	uint64_t scheme; /* always 0 (AES256GCM) in practice */
	uint8_t *salt;	 /* NULL when saltlen == 0 */
	size_t saltlen;
	struct encinfo_entry *entries;
	size_t n;
	size_t cap;
};

void encinfo_init(struct encinfo *ei);
/* Free everything and re-init; accepts an initialised empty struct. */
void encinfo_release(struct encinfo *ei);
/* Replace the salt.  0 or -ENOMEM. */
int encinfo_set_salt(struct encinfo *ei, const uint8_t *salt, size_t len);
/* Add a map entry, or replace the value of an existing key in place (a
 * proto map holds each key once).  0, -ENOMEM, or -E2BIG when adding a
 * key would make more than ENCINFO_MAX_ENTRIES. */
int encinfo_put(struct encinfo *ei, const uint8_t *key, size_t keylen,
		const uint8_t *val, size_t vallen);
/* The entry with this key, or NULL. */
const struct encinfo_entry *encinfo_get(const struct encinfo *ei,
					const uint8_t *key, size_t keylen);

/* Append the wire bytes to out: field 1 only when non-zero, field 2 only
 * when non-empty, then one field-3 entry per map entry in order (key and
 * value both written).  0, -ENOMEM or -E2BIG. */
int encinfo_encode(const struct encinfo *ei, struct buf *out);
/* Strict decode into an initialised, empty ei, in time linear in len
 * (duplicate keys are found by sorting, O(n log n) in the entries).
 * Unknown fields are skipped by wire type; wrong wire types for known
 * fields, truncation, overlong varints and field number 0 give -EPROTO;
 * more than ENCINFO_MAX_ENTRIES map records on the wire (repeated keys
 * count) give -E2BIG.  ei is released on any error.  A key repeated in the
 * map keeps its first position and last value, like Go.  -ENOMEM. */
int encinfo_decode(const uint8_t *p, size_t len, struct encinfo *ei);

/* --- files ---------------------------------------------------------- */

struct encinfo_names {
	char **v; /* sorted bytewise, as a lexicographic listing */
	size_t n;
};

/* Every non-directory entry of dirfd whose name starts with
 * "ENCRYPTION-INFO" (case-sensitive).  Readers walk the list from last to
 * first (newest first, CockroachDB's way; note "-10" sorts before "-2").
 * 0, -EIO (logged), -ENOMEM, -EPROTO (more than ENCINFO_MAX_FILES). */
int encinfo_list(int dirfd, struct encinfo_names *out);
void encinfo_names_release(struct encinfo_names *names);

/* Read and decode one file (regular, at most ENCINFO_FILE_MAX bytes) into
 * an initialised, empty ei.  0, -ENOENT, -EIO, -EPROTO (malformed, or over
 * ENCINFO_FILE_MAX or ENCINFO_MAX_ENTRIES: the log line names the file and
 * the limit; callers need only "this file is unusable"), -ENOMEM. */
int encinfo_read(int dirfd, const char *name, struct encinfo *ei);

/* Create name in dirfd with O_EXCL, write, fsync the file and then the
 * directory.  A partly written file is removed again.  0, -EEXIST, -EIO
 * (logged), -EINVAL (a name with '/'). */
int encinfo_write(int dirfd, const char *name, const uint8_t *p, size_t len);

/* The name to write next when count files exist: "ENCRYPTION-INFO" for 0,
 * else "ENCRYPTION-INFO-<count+1>" (ALTER BACKUP ... ADD NEW_KMS).
 * Appends to out.  0, -ENOMEM, -E2BIG (also, logged, when count is
 * ENCINFO_MAX_FILES already: a file more could not be listed). */
int encinfo_next_name(size_t count, struct buf *out);

#endif
