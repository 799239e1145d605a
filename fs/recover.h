/*
 * recover.h - the backing store after an unclean stop (kill -9, a crash,
 * a power cut): what interrupted writes left beside the files.
 *
 * Owns: the sweep at mount, over the whole store, one log line per file
 * it touches.
 *  - Rewrite temporaries (".kmsfs-tmp-" and 16 hex digits) are removed.
 *    A temporary is never the only copy of a committed version: it is
 *    synced before it is renamed over its file, and once renamed it has
 *    no temporary name left.  (A file with several links gets the new
 *    version copied into its inode instead, from a complete, synced
 *    temporary; a stop during that copy damages the file: documented.)
 *  - Journals (".kmsfs-tmp-journal-" and a file IV, fs/journal.h) belong
 *    to a file that was being written.  With a key cache, such a file is
 *    finished (rewritten as a complete CockroachDB file under a fresh IV,
 *    keeping its mode, owner, times and extended attributes) and its
 *    journal goes; without one, or without its chain's key, the journal
 *    stays (the file reads through it).  A journal whose file is finished
 *    already, or that is not found beside it, is removed.
 * Must not know: FUSE.
 * Thread-safety: run before the store is served; not concurrently with
 * anything else on it.
 */
#ifndef KMSFS_RECOVER_H
#define KMSFS_RECOVER_H

#include "layout.h"
#include "keycache.h"

struct recover_stats {
	unsigned removed;  /* temporaries and stale journals removed */
	unsigned finished; /* interrupted files finished */
	unsigned kept;	   /* journals kept (no key, or finishing failed) */
};

/* Sweep the store whose root directory is rootfd (any fd of it).  kc
 * (may be NULL: nothing is finished) gives chain keys; prof says which
 * directories are chains.  Returns 0 (problems with single entries are
 * logged and skipped) or -errno when the root cannot be read. */
int recover_store(int rootfd, const struct layout_profile *prof,
		  struct keycache *kc, struct recover_stats *out);

#endif
