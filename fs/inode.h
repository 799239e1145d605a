/*
 * inode.h - the inode table over the backing directory's file descriptors.
 *
 * Owns: one struct kinode per backing object the kernel knows (keyed by
 * st_dev/st_ino, holding an O_PATH fd, as libfuse's passthrough_ll does),
 * lookup counts, each inode's chain and file kind, stat with plaintext
 * sizes, and the shared open-file state of regular files (struct kfile,
 * or struct pfile for the kinds that are not encrypted: fs/kind.h).  Names (the
 * last known parent and entry name of each inode) belong to fs/ns.c.
 * Must not know: FUSE request/reply types (fs/ops*.c translate).
 * Thread-safety: see the lock order in fs/kfs.h.  The table has one
 * mutex; each inode has its own mutex for its open state.
 */
#ifndef KMSFS_INODE_H
#define KMSFS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "file.h"
#include "keycache.h"

struct kfs;
struct kind_ck;
struct kind_file;
struct pfile;

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

	pthread_mutex_t lock; /* kf, pf, ck, nopen */
	struct kfile *kf;
	struct pfile *pf;   /* instead of kf: plaintext, checksum (fs/kind.c) */
	struct kind_ck *ck; /* a checksum file's state */
	enum layout_kind kind; /* of a regular file */
	bool ck_pending;       /* new file, checksum not settled (ck_lock) */
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

/* Look up name in parent (fstatat), finding or adding its inode and
 * taking one kernel reference.  -ENOENT for reserved names. */
int inode_lookup(struct kfs *fs, struct kinode *parent, const char *name,
		 struct stat *st, struct kinode **out);
/* Drop n kernel references; frees when none and not pinned. */
void inode_forget(struct kfs *fs, struct kinode *in, uint64_t n);
void inode_unpin(struct kfs *fs, struct kinode *in);

/* stat of the backing object with st_size as the plaintext size. */
int inode_stat(struct kfs *fs, struct kinode *in, struct stat *st);

/* Take / drop an internal reference (not the kernel's). */
void inode_pin(struct kfs *fs, struct kinode *in);
/* The inode of a backing object, pinned (inode_unpin), or NULL. */
struct kinode *inode_find(struct kfs *fs, dev_t dev, ino_t ino);

/* Open-file state: attach (creating the kfile, or pfile for the kinds
 * that are not encrypted, on first open) and detach (committing and
 * closing it on last release). */
int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    struct kind_file *out);
int inode_release_file(struct kfs *fs, struct kinode *in);

/* Point in at the backing file newfd (any fd of it) after a rename over
 * its old one.  0 or -errno; in->fd keeps its number. */
int inode_repoint(struct kfs *fs, struct kinode *in, int newfd);

#endif
