/*
 * attr.h - attributes of an entry: setattr (mode, owner, plaintext size,
 * times), readlink, extended attributes, access, statfs.
 *
 * Owns: mapping attribute changes onto the backing object (through its
 * O_PATH fd) and size changes onto the open-file layer.  Extended
 * attributes pass through unencrypted (the README says so); symlinks
 * have none, as on most Linux filesystems for user.* attributes.
 * Must not know: FUSE (fs/ops*.c translates struct stat + flags into a
 * struct kattr).
 * Thread-safety: any thread; size changes take the inode's open-file
 * lock through fs/inode.c.
 */
#ifndef KMSFS_ATTR_H
#define KMSFS_ATTR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "kfs.h"
#include "kind.h"

enum {
	KATTR_MODE = 1u << 0,
	KATTR_UID = 1u << 1,
	KATTR_GID = 1u << 2,
	KATTR_SIZE = 1u << 3,
	KATTR_ATIME = 1u << 4, /* atime, or now with KATTR_ATIME_NOW */
	KATTR_MTIME = 1u << 5,
	KATTR_ATIME_NOW = 1u << 6,
	KATTR_MTIME_NOW = 1u << 7,
};

struct kattr {
	unsigned valid; /* KATTR_* */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size; /* plaintext */
	struct timespec atime, mtime;
};

/* Apply a's changes in the order chmod, chown, size, times.  f: the
 * caller's writable open file of in, or NULL (a size change then opens
 * and commits the file itself).  A size change also sets mtime (and so
 * ctime) to now unless a sets mtime; no change at all (chown to -1, -1)
 * updates ctime.  -EISDIR / -EINVAL for a size change
 * on a directory / other non-regular entry, -EFBIG past KFILE_MAX_SIZE,
 * else -errno of the store or of fs/file.c. */
int attr_set(struct kfs *fs, struct kinode *in, const struct kind_file *f,
	     const struct kattr *a);

/* Change the size only (ftruncate, open with O_TRUNC, fallocate), through
 * f as attr_set. */
int attr_truncate(struct kfs *fs, struct kinode *in, const struct kind_file *f,
		  uint64_t size);

/* Writes that bypass the kernel's page cache (a write-only handle, see
 * fs/ops_file.c) must do what the kernel does ahead of a cached write
 * (file_remove_privs).
 *
 * attr_privs: 1 if in carries a set-ID bit or file capabilities, 0 if
 * not, -errno.  in->privs is set when it answers 1, and by a chmod that
 * sets a set-ID bit or a setxattr of capabilities.
 *
 * attr_kill_privs: remove the file capabilities, and the set-ID bits a
 * writer without CAP_FSETID loses: set-user-ID, and set-group-ID unless
 * the group has no execute and the writer is in it (groups: its group
 * and supplementary groups).  FUSE does not say whether the writer holds
 * CAP_FSETID: uid 0 stands for it. */
int attr_privs(struct kinode *in);
int attr_kill_privs(struct kinode *in, uid_t uid, const gid_t *groups,
		    size_t ngroups);

/* readlink into buf (NUL-terminated).  -ENAMETOOLONG if it does not fit. */
int attr_readlink(struct kinode *in, char *buf, size_t len);
int attr_statfs(struct kinode *in, struct statvfs *out);
int attr_access(struct kinode *in, int mask);

/* Extended attributes: byte counts as getxattr(2) and friends, or -errno
 * (-ENOTSUP on symlinks). */
ssize_t attr_getxattr(struct kinode *in, const char *name, void *val,
		      size_t size);
ssize_t attr_listxattr(struct kinode *in, char *list, size_t size);
int attr_setxattr(struct kinode *in, const char *name, const void *val,
		  size_t size, int flags);
int attr_removexattr(struct kinode *in, const char *name);

#endif
