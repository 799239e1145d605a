/*
 * keystore.h - data keys for backup chains, and the KMSes that wrap them.
 *
 * Owns: turning what the user configured (KMS URIs or a passphrase) into
 * chain data keys: creating a chain's key and its ENCRYPTION-INFO bytes,
 * unlocking a chain from the ENCRYPTION-INFO* files in its directory, and
 * adding a KMS to a chain (ENCRYPTION-INFO-N).  Dispatches to providers
 * through the scheme table (provider.h); callers never see a provider.
 * Must not know: FUSE, the file format, the collection layout.  Wrapped
 * blobs are opaque outside keystore/.
 * Thread-safety: a struct ks_keyring may be used from several threads at
 * once; calls into one KMS are serialised by a lock inside it.
 *
 * Error codes (negative errno): -EINVAL bad input or URI, -ENOTSUP scheme
 * known but not built, -ENOKEY no configured key matches the chain,
 * -EACCES KMS denied, -EAGAIN throttled, -ETIMEDOUT network, -EPROTO
 * malformed KMS reply or ENCRYPTION-INFO, -EBADMSG authentication failure,
 * -ENOENT no ENCRYPTION-INFO, -EIO local I/O.  Every failure is logged once
 * here with the (redacted) KMS name; callers only pass the code on.
 */
#ifndef KMSFS_KEYSTORE_H
#define KMSFS_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/secret.h"

#define KS_DATA_KEY_SIZE 32
#define KS_SALT_SIZE 16
#define KS_PBKDF2_ITER 64000
#define KS_ENCINFO_NAME "ENCRYPTION-INFO"

struct ks_kms;
struct ks_keyring;

/* --- KMS URIs -------------------------------------------------------- */

/* What a KMS URI holds that must not be given where other users can read
 * it (a command line: argv is visible in ps).  From the one list of
 * parameters in kmsuri.c. */
enum ks_uri_exposure {
	KS_URI_SHOWABLE,      /* only parameters known to hold no secret */
	KS_URI_UNKNOWN_PARAM, /* a parameter no KMS takes: maybe a misspelt
				 credential */
	KS_URI_CREDENTIALS,   /* a credential parameter, or a password */
};

/* Classify uri by its raw text (it need not parse).  Logs nothing. */
enum ks_uri_exposure ks_uri_exposure(const char *uri);

/* --- single KMS ------------------------------------------------------ */

/* Parse uri and open its provider (no network I/O).  -EINVAL (message
 * logged, naming the problem and never the credentials), -ENOTSUP. */
int ks_kms_open(const char *uri, struct ks_kms **out);
void ks_kms_free(struct ks_kms *k);
/* The URI with every credential parameter replaced by "redacted". */
const char *ks_kms_name(const struct ks_kms *k);
/* CockroachDB's MasterKeyID for this URI (spec §3.4). */
const char *ks_kms_key_id(const struct ks_kms *k);
/* raw SHA-256 of the master key ID: the ENCRYPTION-INFO map key. */
void ks_kms_map_key(const struct ks_kms *k, uint8_t out[32]);
/* Wrap a data key; blob_out receives the opaque bytes to store. */
int ks_kms_wrap(struct ks_kms *k, const struct secret *dk, struct buf *out);
/* Unwrap; *dk_out is a new 32-byte secret on success. */
int ks_kms_unwrap(struct ks_kms *k, const uint8_t *blob, size_t len,
		  struct secret **dk_out);

/* PBKDF2-HMAC-SHA256(pass, salt, 64000) -> 32 bytes (CockroachDB's
 * GenerateKey).  0 or -EIO. */
int ks_derive_passphrase(const uint8_t *pass, size_t passlen,
			 const uint8_t *salt, size_t saltlen,
			 struct secret **key_out);

/* Create a local master key file for file:///path URIs: 32 random bytes,
 * mode 0600, O_EXCL (never overwrites: -EEXIST), fsync'd. */
int ks_local_keygen(const char *path);

/* --- keyring: what the user configured ------------------------------- */

int ks_keyring_new(struct ks_keyring **out);
void ks_keyring_free(struct ks_keyring *r); /* wipes; accepts NULL */
/* Add a KMS by URI (ks_kms_open errors).  A keyring holds KMSes or a
 * passphrase, never both (-EINVAL). */
int ks_keyring_add_kms(struct ks_keyring *r, const char *uri);
/* Add every non-empty, non-# line of a file as a URI.  The file must be
 * owned by us and not readable by group/others (-EPERM, logged). */
int ks_keyring_add_kms_file(struct ks_keyring *r, const char *path);
int ks_keyring_set_passphrase(struct ks_keyring *r, const uint8_t *p,
			      size_t len);
/*
 * Where this user's known-keys record is (see "Key trust" below; NULL:
 * none) and whether a chain key that is not in it may be recorded and
 * used on first use (accept_new: `mount --accept-new-keys`).  The file
 * is read when first needed.  0 or -ENOMEM.
 */
int ks_keyring_set_known(struct ks_keyring *r, const char *path,
			 bool accept_new);
bool ks_keyring_empty(const struct ks_keyring *r);
bool ks_keyring_is_passphrase(const struct ks_keyring *r);
size_t ks_keyring_kms_count(const struct ks_keyring *r);
struct ks_kms *ks_keyring_kms(const struct ks_keyring *r, size_t i);

/* --- chains ---------------------------------------------------------- */

/* Make the material for a new chain: a fresh random 32-byte data key
 * wrapped by every KMS of the keyring (or a fresh 16-byte salt and the
 * PBKDF2 key), and the ENCRYPTION-INFO bytes that record it.  If any wrap
 * fails nothing is returned.  *dk_out: new secret; encinfo_out: filled. */
int ks_chain_create(struct ks_keyring *r, struct secret **dk_out,
		    struct buf *encinfo_out);

/* Write a new chain's ENCRYPTION-INFO into dirfd (O_EXCL, fsync'd, then
 * the directory fsync'd).  -EEXIST if one is there already. */
int ks_chain_write_encinfo(int dirfd, const struct buf *encinfo);

/*
 * Key trust.  Whoever can write the store can add or replace
 * ENCRYPTION-INFO* files, and for a cloud KMS can wrap a key of their
 * choosing (Azure needs only the key's public half; AWS and GCP the
 * Encrypt permission).  So a chain's key is used only when
 *  1. every ENCRYPTION-INFO* file of the chain that the keyring can
 *     unwrap yields the same key (and with a passphrase, every salt is
 *     the same), and
 *  2. the key is established: unwrapped from at least one file by a KMS
 *     whose wraps only the holder of its secret can make (file:// keys),
 *     or derived from the passphrase (the caller checks it against data
 *     sealed under it), or recorded in the known-keys file, which is
 *     kept outside the store: written when this user creates a chain or
 *     adds a KMS to it (ks_chain_record, ks_chain_add_kms), or on first
 *     use when accept_new is set, unless the record names the chain's
 *     directory with another key.
 * A refusal is -EKEYREJECTED with one log line naming the chain (label)
 * and its files.
 */

/* Unlock a chain from the ENCRYPTION-INFO* files in dirfd (label names
 * it in log lines): KMS entries matched by map key, in each file the
 * configured KMSes tried until one unwraps (file:// keys first, KMSes
 * that just failed to answer last); every file is read, newest first,
 * and must agree (key trust, above).  -ENOENT when there is no
 * ENCRYPTION-INFO, -ENOKEY when no configured key matches, -EKEYREJECTED,
 * else the last KMS error.  With a passphrase the key is derived from the
 * salt (a wrong passphrase is not detectable here: the caller verifies
 * the key). */
int ks_chain_unlock(struct ks_keyring *r, int dirfd, const char *label,
		    struct secret **dk_out);

/* What ks_chain_unlock_memo remembers of a chain between attempts: the
 * error of a refusal that the bytes of its ENCRYPTION-INFO* files alone
 * decide, with a signature of those files taken before reading them: for
 * each name its device, inode, mode, size, mtime and ctime (fstatat, no
 * read), and the same of the known-keys file, whose changes can lift a
 * key trust refusal.  The caller keeps one per chain, zero-initialised,
 * serialises the attempts that use it and never looks inside.  Nothing in
 * it is secret. */
struct ks_chain_memo {
	uint8_t sig[32]; /* SHA-256 over the stats, in listing order */
	int err;	 /* the refusal; 0: nothing remembered */
	bool dir_only;	 /* too many files to list: sig is the directory's */
};

/* As ks_chain_unlock, but a retry whose signature equals the remembered
 * one returns the remembered error at once, reading no ENCRYPTION-INFO
 * file (one debug line).  Remembered (for the same bytes, the answer
 * cannot change): -EKEYREJECTED (files disagree, key trust refused),
 * -ENOKEY (no configured key has an entry) and -EPROTO (malformed, over
 * a cap) when no KMS failed to answer and no file failed to read; a
 * KMS error (-ETIMEDOUT, -EACCES, -EAGAIN, -EIO, ...), -EIO, -ENOMEM and
 * -ENOENT are not: the next attempt reads the files again.  A set whose
 * ctime is within a second of now is not remembered either (timestamps
 * are coarse: it may change again unseen).  memo NULL: ks_chain_unlock. */
int ks_chain_unlock_memo(struct ks_keyring *r, int dirfd, const char *label,
			 struct ks_chain_memo *memo, struct secret **dk_out);

/* Record dk, the key of the chain in dirfd that this process made (or
 * established), in the known-keys file, when the keyring has a KMS whose
 * wraps others can make; else nothing to do.  0, or -errno (logged:
 * callers must not use a key a later mount could not establish). */
int ks_chain_record(struct ks_keyring *r, int dirfd, const char *label,
		    const struct secret *dk);

/* Does every KMS of the keyring have an entry in one ENCRYPTION-INFO* of
 * dirfd?  (CockroachDB refuses to write into a chain otherwise.)  Returns
 * 0, -ENOKEY (naming the first missing KMS in the log), -ENOENT, -EPROTO.
 * Always 0 for a passphrase keyring. */
int ks_chain_check_writable(struct ks_keyring *r, int dirfd);

/* ALTER BACKUP ... ADD NEW_KMS: unlock with old_keys (as
 * ks_chain_unlock: the key must be trusted), wrap with each KMS of
 * new_keys, record the key (ks_chain_record, with new_keys' record, else
 * old_keys'), write ENCRYPTION-INFO-<count+1> holding only the new
 * entries.  Never rewrites or deletes a file.  name_out (may be NULL)
 * receives the file name written. */
int ks_chain_add_kms(struct ks_keyring *old_keys, struct ks_keyring *new_keys,
		     int dirfd, struct buf *name_out);

/* --- describing a chain (kmsfs show) --------------------------------- */

/* One ENCRYPTION-INFO* file as SHOW-like tools present it. */
struct ks_encinfo_desc {
	char *name;
	int err;	 /* 0, or why it could not be read (-EPROTO, ...) */
	bool passphrase; /* has a salt, no map entries */
	size_t n;	 /* map entries */
	uint8_t (*map_key)[32];	   /* n of them, in file order */
	const struct ks_kms **kms; /* n: the configured KMS whose master
				      key ID hashes to it, or NULL */
};

struct ks_chain_desc {
	struct ks_encinfo_desc *files; /* listing order */
	size_t n;
};

/* Read every ENCRYPTION-INFO* of dirfd without unwrapping anything;
 * entries are matched against the KMSes of r (NULL: none).  0, -ENOENT
 * (no file), -ENOMEM, -EIO.  Release with ks_chain_desc_release. */
int ks_chain_describe(int dirfd, const struct ks_keyring *r,
		      struct ks_chain_desc *out);
void ks_chain_desc_release(struct ks_chain_desc *d);

/* Is this directory entry name one of a chain's ENCRYPTION-INFO files? */
bool ks_is_encinfo_name(const char *name);

#endif
