/*
 * inode.h - the inode table over the backing directory, and how code
 * reaches an inode's backing object.
 *
 * Owns: one struct kinode per backing object the kernel knows (keyed by
 * st_dev/st_ino), lookup counts, each inode's chain and file kind, stat
 * with plaintext sizes, the shared open-file state of regular files
 * (struct kfile, or struct pfile for the kinds that are not encrypted:
 * fs/kind.h), and the inodes' backing fds.  Names (the last known parent
 * and entry name of each inode) belong to fs/ns.c.
 * Must not know: FUSE request/reply types (fs/ops*.c translate).
 * Thread-safety: see the lock order in fs/kfs.h.  The table has one
 * mutex; each inode has its own mutex for its open state; the fds of all
 * inodes are under kfs.fd_lock (fs/inode_fd.c), a leaf lock.
 *
 * Backing fds (design, measured in README "Scale"): an inode does not
 * keep an fd for its lifetime (that tied the number of files the kernel
 * may cache to RLIMIT_NOFILE: at the limit every operation failed with
 * EMFILE).  It keeps the backing object's file handle
 * (name_to_handle_at: 8 to 40 bytes) and an O_PATH fd only while an
 * operation uses it, while the file is open, or while it is among the
 * most recently used ones (an LRU of at most a quarter of the open file
 * limit, see inode_fd.c).  An evicted fd is reopened by handle
 * (open_by_handle_at on the backing root, which needs
 * CAP_DAC_READ_SEARCH).  Where handles do not work (no capability, a
 * backing file system without export support, an object on another
 * mount below the root) the inode keeps its fd for its lifetime as
 * before: the mount then holds as many files as the open file limit.
 * Memory per cached inode: about 320 bytes of daemon heap (struct kinode,
 * its name, its handle; see README); fds: at most the LRU's size plus
 * two per open file.
 */
#ifndef KMSFS_INODE_H
#define KMSFS_INODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "file.h"
#include "keycache.h"

struct kfs;
struct kind_ck;
struct kind_file;
struct pfile;

struct file_handle;

struct kinode {
	struct kinode *hnext;
	dev_t dev; /* of the backing object (table lock) */
	ino_t ino;

	/* Backing fd, under kfs.fd_lock: use inode_fd_get/inode_fd_put. */
	int fd;			 /* O_PATH|O_NOFOLLOW, or -1 when closed */
	unsigned fd_users;	 /* inode_fd_get holders and open files */
	struct kinode *lru_prev; /* in the cache of idle fds when fd >= 0 */
	struct kinode *lru_next; /* and fd_users == 0 and fh != NULL */
	struct file_handle *fh;	 /* NULL: fd is kept for good */

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
	/* What the kernel cached of the file's plaintext is its content: no
	 * writable open since a read-only one invalidated the kernel's
	 * cache with no writer in the kfile's life (see inode_open_file) */
	bool kcache_ok;
	bool opened;	   /* ever: its data may have changed since lookup */
	unsigned nwriters; /* writable opens */
	/* reads' chunks handed to the kernel's cache (inode_share_begin):
	 * wgen changes as each writer comes and goes; sharing counts the
	 * stores in flight */
	atomic_uint wgen;
	atomic_uint sharing;
	/* kmsfs removed the name itself (a new file a full disk left with
	 * nothing valid): not found once no handle is open (ns.c sets it
	 * under ns_lock, readers hold lock) */
	atomic_bool removed;
	/* may carry set-ID bits or file capabilities (fs/attr.h) */
	atomic_bool privs;
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
 * closing it on last release).  out->keep_cache is true for a read-only
 * open of an encrypted file whose kernel page cache is still valid:
 * kmsfs is the only writer of its store, every change of a file's data
 * comes with a writable open (writes, truncation by name, failed
 * sessions that fall back to the committed version), which makes the
 * next read-only open drop the kernel's cache; only a read-only open
 * while no writer has joined the file's kfile marks it valid again.
 * datafd (may be NULL): a writable fd of the file that ns_create left
 * open; taken (set to -1) when it serves as the new kfile's. */
int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    int *datafd, struct kind_file *out);
/* writable: as the open's flags were. */
int inode_release_file(struct kfs *fs, struct kinode *in, bool writable);

/* A read may hand the whole chunk it decrypted to the kernel's page
 * cache (fs/ops_file.c), but must never put older bytes over what a
 * writer put there: on a write the kernel changes its cached pages
 * itself, before kmsfs hears of it.  inode_data_gen is taken before the
 * read; inode_share_begin, after it, is true (and pins in) only if no
 * writer had in open at any time since, and writable opens then wait in
 * inode_open_file until inode_share_end.  It is also false while
 * KFS_SHARE_MAX stores are in flight in the mount (a store waits for
 * pages the kernel holds locked for a read in flight, which only
 * another thread can serve), and while another thread holds in->lock. */
#define KFS_SHARE_MAX 2
unsigned inode_data_gen(struct kinode *in);
bool inode_share_begin(struct kfs *fs, struct kinode *in, unsigned gen);
void inode_share_end(struct kfs *fs, struct kinode *in);
/* A writer's close(2) (FUSE flush) of f, an open file of in: with one
 * handle open (the usual last close) the file is finished now, so that
 * nothing kmsfs does to its directory (a journal removed, a temporary
 * renamed) happens after close(2) returns, where it would undo times a
 * copier sets on the directory next (cp -a, tar, rsync -a); with more,
 * or when the handle's file is written between several of its closes
 * (kind_file_closers: `{ a; b; } >file`, where finishing at each close
 * would make the next writer rewrite all of it), it is checkpointed
 * (kind_file_sync) and the release finishes it.  Errors as
 * kind_file_commit. */
int inode_flush_file(struct kfs *fs, struct kinode *in,
		     const struct kind_file *f);
/* utimensat on a regular file's backing file (tv as utimensat's), and
 * on its open kfile, which sets them again after its own writes. */
int inode_set_times(struct kinode *in, const struct timespec tv[2]);

/* Point in at the backing file newfd (any fd of it) after a rename over
 * its old one.  0 or -errno.  An fd of in that is open keeps its number
 * (dup3 onto it), so a thread using it sees the old or the new file,
 * never a closed or reused number. */
int inode_repoint(struct kfs *fs, struct kinode *in, int newfd);

/* --- backing fds (fs/inode_fd.c) --------------------------------------
 * Every use of an inode's backing object goes through these.  They may be
 * called under any lock of fs/kfs.h (they take only kfs.fd_lock, a leaf)
 * and from any thread.  When the process is out of fds they close the
 * idle cached ones and try once more; if that fails too, they log one
 * line (rate-limited: a burst of failures is summed up) and return
 * -EMFILE or -ENFILE: the one operation fails, the mount goes on. */

/* An O_PATH|O_NOFOLLOW fd of in's backing object, valid (never closed or
 * reused) until the matching inode_fd_put.  Reopens an evicted fd by
 * file handle.  fd >= 0, or -errno (-ESTALE: the object is gone, e.g.
 * deleted while no longer open). */
int inode_fd_get(struct kfs *fs, struct kinode *in);
void inode_fd_put(struct kfs *fs, struct kinode *in);
/* A new fd of in's backing object opened with flags (O_RDONLY, O_RDWR,
 * O_RDONLY|O_DIRECTORY; O_CLOEXEC is added), owned by the caller.
 * -errno as inode_fd_get and as open(2). */
int inode_reopen(struct kfs *fs, struct kinode *in, int flags);
/* openat(dirfd, name, flags | O_CLOEXEC, mode) with the same handling of
 * the fd limit.  fd or -errno. */
int inode_openat(struct kfs *fs, int dirfd, const char *name, int flags,
		 mode_t mode);

/* For fs/inode.c only.  inode_fds_init: set up fd handling for a new
 * filesystem (probe file handles on the backing root, size the cache).
 * inode_fd_offer: give in the O_PATH fd a lookup opened (taken over);
 * fresh for an inode not yet in the table, which also gets its handle.
 * inode_fd_drop: close in's fd and free its handle (in is being freed).
 * inode_fd_replace: in's backing object is now the one of the O_PATH fd
 * (taken over): dup3 onto in's open fd, or install it; new handle. */
int inode_fds_init(struct kfs *fs);
void inode_fds_release(struct kfs *fs); /* reports unlogged failures */
void inode_fd_offer(struct kfs *fs, struct kinode *in, int fd, bool fresh);
void inode_fd_drop(struct kfs *fs, struct kinode *in);
int inode_fd_replace(struct kfs *fs, struct kinode *in, int fd);

#endif
