/*
 * keycache.h - backup chains and their unwrapped data keys, per mount.
 *
 * Owns: one struct chain per chain directory (identified by the backing
 * directory's device and inode number, so renaming a chain keeps its key),
 * unlocking a chain's key once per mount from its ENCRYPTION-INFO files
 * (ks_chain_unlock, with its key trust rules), verifying the key against
 * the chain's own files (a wrong passphrase derives a key too), creating
 * the material of new chains, and wiping every key when the cache is
 * freed.  Keys live in struct cf_key (secure heap).
 * Rules for an untrusted store: a chain directory that holds encrypted
 * files but no ENCRYPTION-INFO has lost its key: its files give -EIO, it
 * is reported once, and it is never given a new key.  A passphrase that
 * keycache_check_store could not check against any chain is used to
 * read, never to create a chain or to write, until some chain's files
 * check it.
 * Must not know: FUSE, inodes, open files.
 * Thread-safety: all functions may be called from any thread; a chain's
 * key, once returned, stays valid until keycache_free().
 *
 * Memory: a key takes 32 bytes of the secure heap (lib/harden.h: 1 MiB,
 * mlock'd) and about 200 bytes of ordinary heap with its chain, and each
 * chain holds an open directory descriptor; chains are kept until
 * keycache_free (open files may hold their keys), removed ones included.
 * At most KEYCACHE_MAX_KEYS keys are held (512 KiB of the secure heap):
 * past that, unlocking or creating a chain fails with -ENOMEM and a log
 * line saying so.
 */
#ifndef KMSFS_KEYCACHE_H
#define KMSFS_KEYCACHE_H

#include <stdbool.h>

#include "../keystore/keystore.h"
#include "cformat.h"
#include "layout.h"

#define KEYCACHE_MAX_KEYS 16384

struct chain;
struct keycache;

/* keys: kept by the caller, must outlive the cache. */
int keycache_new(struct ks_keyring *keys, struct keycache **out);
void keycache_free(struct keycache *kc); /* wipes every key; NULL ok */

/* How long a failed unlock, or a refusal to write, is answered from memory
 * before it is tried again (default 5 seconds; tests set 0).  Call before
 * the cache is shared between threads. */
void keycache_set_retry_seconds(struct keycache *kc, int seconds);

/* The chain whose directory is dirfd (any fd of it, O_PATH is fine).
 * label names it in logs ("" or "/" for the collection root, whose chain
 * is only the files directly in it: those alone check its key).  The chain
 * stays valid until keycache_free; no reference counting needed.
 * Returns 0, -ENOMEM or -errno of fstat/open. */
int keycache_chain(struct keycache *kc, int dirfd, const char *label,
		   struct chain **out);

/* Key to read the chain's files.  Unlocks on first use.  -ENOKEY (no
 * ENCRYPTION-INFO, no matching KMS, a key refused by key trust, or the key
 * does not decrypt the chain's files), -EIO (encrypted files but no
 * ENCRYPTION-INFO), -ENOMEM (KEYCACHE_MAX_KEYS reached: logged), or a KMS
 * error (-EACCES, -ETIMEDOUT, ...).  Failures are remembered for a few
 * seconds so a dead KMS is not hammered; a retry after that reads no
 * ENCRYPTION-INFO file again when the failure was one their bytes alone
 * decide and none of them changed (ks_chain_unlock_memo). */
int keycache_key_read(struct keycache *kc, struct chain *c,
		      const struct cf_key **out);

/* Key to write into the chain.  A directory with no ENCRYPTION-INFO and
 * no encrypted file gets fresh chain material first (one with encrypted
 * files: -EIO).  With KMS keys, refuses (-ENOKEY, logged once naming the
 * KMS and pointing to add-kms) when a configured KMS has no entry in the
 * chain's ENCRYPTION-INFO, as CockroachDB does; with an unchecked
 * passphrase, refuses (-ENOKEY, logged) a chain its files did not check.
 * Otherwise as keycache_key_read. */
int keycache_key_write(struct keycache *kc, struct chain *c,
		       const struct cf_key **out);

/* Make a new chain's key, record it in the known-keys file when the keys
 * need that (ks_chain_record), and write ENCRYPTION-INFO and the key-check
 * file into its directory.  -EEXIST if it already has one, -ENOKEY (logged)
 * with an unchecked passphrase, or the error of a failed wrap or record. */
int keycache_chain_create(struct keycache *kc, struct chain *c);

/* The chain's directory was removed: forget it so a new directory that
 * reuses its inode number starts afresh (the key stays valid for open
 * files until keycache_free). */
void keycache_chain_removed(struct keycache *kc, struct chain *c);

const char *keycache_chain_label(const struct chain *c);

/* Mount-time check.  Reports (logs) every chain directory that lost its
 * ENCRYPTION-INFO, then tries each chain of the store that has one
 * (layout_chains: the root's first) until one proves the keys right: a
 * KMS unwrapped its key (even one key trust then refused), or its files
 * checked the passphrase.  0 if one did or no chain exists; 0 too, with a
 * warning and the passphrase marked unchecked, when no chain failed but
 * none had anything to check it against; else the error of the last
 * attempt, with a user-facing line logged. */
int keycache_check_store(struct keycache *kc,
			 const struct layout_profile *layout, int rootfd);

#endif
