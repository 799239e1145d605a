/*
 * inode.h - the inode table over the backing directory's file descriptors.
 *
 * Owns: one struct kinode per backing object the kernel knows (keyed by
 * st_dev/st_ino, holding an O_PATH fd, as libfuse's passthrough_ll does),
 * lookup counts, each inode's chain, its last known name (parent inode +
 * entry name, needed to rename a re-encrypted version over it), and the
 * shared open-file state (struct kfile) of regular files.
 * Must not know: FUSE request/reply types (fs/ops.c translates).
 * Thread-safety: the table has one mutex; each inode has its own mutex
 * for its open state; names are under the filesystem's namespace lock.
 * Lock order: inode lock -> kfile lock -> ns_lock -> table_lock.  Renames,
 * unlinks and the rename of a re-encrypted version take the filesystem's
 * namespace lock so a name cannot move between check and use.
 */
#ifndef KMSFS_INODE_H
#define KMSFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "chain.h"
#include "file.h"
#include "keycache.h"

struct kinode {
	struct kinode *hnext;
	dev_t dev;
	ino_t ino;
	int fd;		/* O_PATH|O_NOFOLLOW */
	mode_t type;	/* S_IFMT bits */
	unsigned depth; /* 0 = root */
	struct chain *chain;
	uint64_t nlookup; /* kernel references (table lock) */
	unsigned pins;	  /* internal references (table lock) */

	/* last known name, under fs->ns_lock */
	struct kinode *parent; /* pinned; NULL when name unknown */
	char *name;

	pthread_mutex_t lock; /* kf, nopen */
	struct kfile *kf;
	unsigned nopen;
	struct kfile_host host;
	int tmp_dirfd; /* directory of the temporary of a rewrite */
	/* format version of the backing file, valid while its size and
	 * mtime are unchanged (v1 files need another size formula) */
	int hdr_version;
	off_t hdr_size;
	struct timespec hdr_mtime;
	struct kfs *fs;
};

struct kfs {
	int rootfd; /* O_PATH of the backing root */
	struct kinode *root;
	struct keycache *kc;
	struct ks_keyring *keys;
	const struct chain_profile *profile;
	bool allow_v1; /* read v1 files (kfile: KFILE_ALLOW_V1) */
	pthread_mutex_t table_lock;
	pthread_mutex_t ns_lock; /* namespace changes */
	struct kinode **buckets;
	size_t nbuckets;
	size_t count;
};

/* Open the backing directory and set up the table and key cache.
 * -errno (logged). */
int kfs_new(const char *backing, struct ks_keyring *keys,
	    const struct chain_profile *profile, struct kfs **out);
void kfs_free(struct kfs *fs); /* wipes keys; NULL ok */

/* Look up name in parent (fstatat), finding or adding its inode and
 * taking one kernel reference.  -ENOENT for reserved names. */
int inode_lookup(struct kfs *fs, struct kinode *parent, const char *name,
		 struct stat *st, struct kinode **out);
/* Drop n kernel references; frees when none and not pinned. */
void inode_forget(struct kfs *fs, struct kinode *in, uint64_t n);
/* Drop a reference taken by inode_find. */
void inode_unpin(struct kfs *fs, struct kinode *in);

/* stat of the backing object with st_size as the plaintext size. */
int inode_stat(struct kfs *fs, struct kinode *in, struct stat *st);

/* The chain the entry fd would belong to under the name name in parent
 * (its own, if the profile makes it a chain; else the parent's). */
int inode_chain_at(struct kfs *fs, struct kinode *parent, const char *name,
		   int fd, bool is_dir, struct chain **out);

/* Record that name in parent is (now) a name of in; NULL parent forgets. */
void inode_set_name(struct kfs *fs, struct kinode *in, struct kinode *parent,
		    const char *name);
/* After an unlink/rmdir/rename away of parent/name: forget that name in
 * whichever inode carries it (dev/ino given). */
void inode_name_gone(struct kfs *fs, dev_t dev, ino_t ino,
		     struct kinode *parent, const char *name);
/* The inode of a backing object, pinned (inode_unpin), or NULL. */
struct kinode *inode_find(struct kfs *fs, dev_t dev, ino_t ino);

/* Open-file state: attach (creating the kfile on first open) and detach
 * (committing and closing it on last release). */
int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    struct kfile **out);
int inode_release_file(struct kfs *fs, struct kinode *in);
/* utimensat on a regular file's backing file (tv as utimensat's), and
 * on its open kfile, which sets them again after its own writes. */
int inode_set_times(struct kinode *in, const struct timespec tv[2]);

#endif
