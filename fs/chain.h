/*
 * chain.h - which backup chain an entry belongs to, and which names are
 * kmsfs's own.
 *
 * Owns: layout profiles (how the directory tree maps onto chains) and the
 * name policy (hidden/reserved names).  A profile answers one question at
 * lookup time: does this directory start a new chain?  Entries that do
 * not start one inherit their parent's chain; the collection root has
 * the collection chain.  The "toplevel" profile makes every top-level
 * directory a chain.  A later profile ("cockroach": full backups at
 * YYYY/MM/DD-HHMMSS.ss, incrementals under incrementals/) plugs in here.
 * Must not know: keys, FUSE, the file format.
 * Thread-safety: pure functions over const tables.
 */
#ifndef KMSFS_CHAIN_H
#define KMSFS_CHAIN_H

#include <stdbool.h>

struct chain_profile {
	const char *name;
	const char *description;
	/* depth: of the directory itself (a child of the root has depth 1) */
	bool (*starts_chain)(unsigned depth, const char *name);
};

/* Look up a profile by name; NULL selects the default.  Returns NULL for
 * an unknown name. */
const struct chain_profile *chain_profile_find(const char *name);

/* Names kmsfs keeps for itself in the backing store: ENCRYPTION-INFO*,
 * the key-check file, temporaries of crash-safe rewrites.  They are not
 * listed, cannot be looked up, created, renamed or removed through the
 * mount. */
bool chain_name_reserved(const char *name);

/* Name of the per-chain key verification file and the temp-file prefix. */
#define CHAIN_KEYCHECK_NAME ".kmsfs-keycheck"
#define CHAIN_TMP_PREFIX ".kmsfs-tmp-"
#define CHAIN_LOCK_NAME ".kmsfs-lock" /* fs/storelock.h, at the root */

#endif
