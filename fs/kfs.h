/*
 * kfs.h - the filesystem core as a whole: struct kfs, its lifecycle, and
 * the one lock order of the whole program.
 *
 * Owns: the backing root, the inode table (fs/inode.c), the namespace
 * lock (taken only in fs/ns.c), the key cache and the layout profile.
 * Must not know: FUSE (fs/ops*.c is the only FUSE code).
 *
 * Lock order (a thread holding one lock takes only locks further down):
 *   1. kinode.lock        an inode's open-file state (fs/inode.c)
 *   2. kfile lock         one open file's rwlock (fs/file.c)
 *   3. chain.lock         one chain's key state (fs/keycache.c); KMS calls
 *                         run under it, so it is never taken under 5-7
 *   4. keystore locks     provider credential caches (keystore/), leaves
 *   4b. kfs.ck_lock       checksum files' stored bytes (fs/kind.c); the
 *                         files they cover are read under it
 *   5. kfs.ns_lock        names and namespace changes (fs/ns.c)
 *   6. keycache.lock      the chain table (fs/keycache.c)
 *   7. kfs.table_lock     the inode table (fs/inode.c)
 *   8. kfs.fd_lock        inodes' backing fds and the cache of idle ones
 *                         (fs/inode_fd.c); a leaf: inode_fd_get may be
 *                         called under any of 1-7
 *   9. leaves taken under any of the above, holding nothing else: a
 *      kfile's chunk cache lock (fs/file_cache.c) and a key's pool of
 *      cipher contexts (fs/cformat.c, held for a pointer swap)
 * No lock is held across a FUSE reply.  Slow work (fsync, re-encryption,
 * KMS calls, xattr copies) never runs under 5-7.
 */
#ifndef KMSFS_KFS_H
#define KMSFS_KFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "inode.h"
#include "keycache.h"
#include "layout.h"

struct fuse_session;

struct kfs {
	int rootfd;  /* O_PATH of the backing root */
	int mountfd; /* O_RDONLY of it for open_by_handle_at; -1: no handles */
	int mount_id;
	struct kinode *root;
	struct keycache *kc;
	struct ks_keyring *keys;
	const struct layout_profile *layout;
	bool allow_v1; /* read v1 files (kfile: KFILE_ALLOW_V1) */
	pthread_mutex_t table_lock;
	pthread_mutex_t ns_lock; /* namespace changes */
	pthread_mutex_t ck_lock; /* checksum files (fs/kind.c) */
	struct kinode **buckets; /* grows to keep about one inode a bucket */
	size_t nbuckets;
	size_t count;

	pthread_mutex_t fd_lock;   /* fs/inode_fd.c: every kinode.fd */
	struct kinode *lru_head;   /* idle fds, most recently used first */
	struct kinode *lru_tail;   /* the next one to close */
	size_t fd_cached;	   /* inodes whose fd may be closed, open */
	size_t fd_cap;		   /* keep at most this many of them */
	unsigned long fd_limit;	   /* RLIMIT_NOFILE at mount time */
	long fd_log_at;		   /* when the limit was last logged (s) */
	unsigned long fd_log_skip; /* failures not logged since */

	struct fuse_session *se; /* for notifications (fs/ops_file.c) */
	bool write_direct;	 /* write-only handles bypass the page cache */
	bool share_reads;	 /* small reads fill the page cache (inode.h) */
	atomic_uint sharing;	 /* inode_share_begin: stores in flight */
	/* The daemon, not the kernel, removes set-ID bits and capabilities
	 * on write, truncate and chown (fs/ops_io.c). */
	atomic_bool killpriv;
};

/* Open the backing directory and set up the table and key cache.
 * -errno (logged). */
int kfs_new(const char *backing, struct ks_keyring *keys,
	    const struct layout_profile *layout, struct kfs **out);
void kfs_free(struct kfs *fs); /* wipes keys; NULL ok */

#endif
