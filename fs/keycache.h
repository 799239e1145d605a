/*
 * keycache.h - backup chains and their unwrapped data keys, per mount.
 *
 * Owns: one struct chain per chain directory (identified by the backing
 * directory's device and inode number, so renaming a chain keeps its key),
 * unlocking a chain's key once per mount from its ENCRYPTION-INFO files,
 * verifying the key against the chain's files (a wrong passphrase derives
 * a key too), creating the material of new chains, and wiping every key
 * when the cache is freed.  Keys live in struct cf_key (secure heap).
 * Must not know: FUSE, inodes, open files.
 * Thread-safety: all functions may be called from any thread; a chain's
 * key, once returned, stays valid until keycache_free().
 *
 * Memory: a key takes 32 bytes of the secure heap (lib/harden.h: 1 MiB,
 * mlock'd) and about 200 bytes of ordinary heap with its chain; chains are
 * kept until keycache_free (open files may hold their keys), removed ones
 * included.  At most KEYCACHE_MAX_KEYS keys are held (512 KiB of the
 * secure heap): past that, unlocking or creating a chain fails with
 * -ENOMEM and a log line saying so.
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

/* The chain whose directory is dirfd (any fd of it, O_PATH is fine).
 * label names it in logs ("" or "/" for the collection root).  The chain
 * stays valid until keycache_free; no reference counting needed.
 * Returns 0, -ENOMEM or -errno of fstat/open. */
int keycache_chain(struct keycache *kc, int dirfd, const char *label,
		   struct chain **out);

/* Key to read the chain's files.  Unlocks on first use.  -ENOKEY (no
 * ENCRYPTION-INFO, no matching KMS, or the key does not decrypt the
 * chain's files), or a KMS error (-EACCES, -ETIMEDOUT, ...).  Failures are
 * remembered for a few seconds so a dead KMS is not hammered. */
int keycache_key_read(struct keycache *kc, struct chain *c,
		      const struct cf_key **out);

/* Key to write into the chain.  A directory with no ENCRYPTION-INFO gets
 * fresh chain material first.  With KMS keys, refuses (-ENOKEY, logged
 * once naming the KMS and pointing to add-kms) when a configured KMS has
 * no entry in the chain's ENCRYPTION-INFO, as CockroachDB does. */
int keycache_key_write(struct keycache *kc, struct chain *c,
		       const struct cf_key **out);

/* Make a new chain's key and write ENCRYPTION-INFO (and the key-check
 * file) into its directory.  -EEXIST if it already has one. */
int keycache_chain_create(struct keycache *kc, struct chain *c);

/* The chain's directory was removed: forget it so a new directory that
 * reuses its inode number starts afresh (the key stays valid for open
 * files until keycache_free). */
void keycache_chain_removed(struct keycache *kc, struct chain *c);

const char *keycache_chain_label(const struct chain *c);

/* Mount-time check: try each chain of the store that has an
 * ENCRYPTION-INFO (layout_chains: the root's first) until one unlocks.
 * 0 if one did or no chain exists; else the error of the last attempt,
 * with a user-facing line logged. */
int keycache_check_store(struct keycache *kc,
			 const struct layout_profile *layout, int rootfd);

#endif
