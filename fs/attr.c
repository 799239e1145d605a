/*
 * attr.c - attribute changes and passthrough attribute reads.
 *
 * The backing object is reached through /proc/self/fd/N of its O_PATH fd
 * (chmod, xattrs and access take no O_PATH fd directly), as libfuse's
 * passthrough_ll does.
 */
#include "attr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void procpath(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Truncate a regular file, through the caller's handle or a temporary
 * one. */
static int set_size(struct kfs *fs, struct kinode *in, struct kfile *kf,
		    uint64_t size)
{
	int r;

	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (kf)
		return kfile_truncate(kf, size);
	r = inode_open_file(fs, in, O_RDWR, false, &kf);
	if (r)
		return r;
	r = kfile_truncate(kf, size);
	if (!r)
		r = kfile_commit(kf, false);
	inode_release_file(fs, in);
	return r;
}

static int set_times(struct kinode *in, const struct kattr *a)
{
	struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	char proc[64];
	int r;

	if (a->valid & KATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (a->valid & KATTR_ATIME)
		tv[0] = a->atime;
	if (a->valid & KATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (a->valid & KATTR_MTIME)
		tv[1] = a->mtime;
	if (in->type == S_IFLNK) {
		r = utimensat(in->fd, "", tv, AT_EMPTY_PATH);
	} else {
		procpath(proc, sizeof(proc), in->fd);
		r = utimensat(AT_FDCWD, proc, tv, 0);
	}
	return r < 0 ? -errno : 0;
}

static int set_owner(struct kinode *in, const struct kattr *a)
{
	uid_t uid = a->valid & KATTR_UID ? a->uid : (uid_t)-1;
	gid_t gid = a->valid & KATTR_GID ? a->gid : (gid_t)-1;

	return fchownat(in->fd, "", uid, gid,
			AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
		   ? -errno
		   : 0;
}

int attr_truncate(struct kfs *fs, struct kinode *in, struct kfile *kf,
		  uint64_t size)
{
	struct kattr a = {.valid = KATTR_SIZE, .size = size};

	return attr_set(fs, in, kf, &a);
}

int attr_set(struct kfs *fs, struct kinode *in, struct kfile *kf,
	     const struct kattr *in_a)
{
	unsigned times =
	    KATTR_ATIME | KATTR_MTIME | KATTR_ATIME_NOW | KATTR_MTIME_NOW;
	struct kattr now = *in_a, *a = &now;
	char proc[64];
	int r = 0;

	/* A truncation marks mtime and ctime for update, as on ext4 (also
	 * when the size stays): the kernel asks for it on truncate(2) only,
	 * not on ftruncate(2) or O_TRUNC.  Now, not when the new version is
	 * committed, so that the reply carries it. */
	if ((a->valid & KATTR_SIZE) &&
	    !(a->valid & (KATTR_MTIME | KATTR_MTIME_NOW)))
		a->valid |= KATTR_MTIME_NOW;

	/* chown(f, -1, -1) reaches us as a change of nothing; ext4 still
	 * updates ctime, and so does chown(-1, -1) on the backing object. */
	if (!a->valid)
		return set_owner(in, a);
	procpath(proc, sizeof(proc), in->fd);
	if ((a->valid & KATTR_MODE) && chmod(proc, a->mode) < 0)
		r = -errno;
	if (!r && (a->valid & (KATTR_UID | KATTR_GID)))
		r = set_owner(in, a);
	if (!r && (a->valid & KATTR_SIZE))
		r = set_size(fs, in, kf, a->size);
	if (!r && (a->valid & times))
		r = set_times(in, a);
	return r;
}

int attr_readlink(struct kinode *in, char *buf, size_t len)
{
	ssize_t n = readlinkat(in->fd, "", buf, len);

	if (n < 0)
		return -errno;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int attr_statfs(struct kinode *in, struct statvfs *out)
{
	return fstatvfs(in->fd, out) < 0 ? -errno : 0;
}

int attr_access(struct kinode *in, int mask)
{
	char proc[64];

	procpath(proc, sizeof(proc), in->fd);
	return access(proc, mask) < 0 ? -errno : 0;
}

static int xattr_path(struct kinode *in, char *buf, size_t len)
{
	if (in->type == S_IFLNK)
		return -ENOTSUP;
	procpath(buf, len, in->fd);
	return 0;
}

static ssize_t neg_errno(ssize_t n)
{
	return n < 0 ? -errno : n;
}

ssize_t attr_getxattr(struct kinode *in, const char *name, void *val,
		      size_t size)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	return r ? r : neg_errno(getxattr(proc, name, val, size));
}

ssize_t attr_listxattr(struct kinode *in, char *list, size_t size)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	return r ? r : neg_errno(listxattr(proc, list, size));
}

int attr_setxattr(struct kinode *in, const char *name, const void *val,
		  size_t size, int flags)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	return r ? r : (int)neg_errno(setxattr(proc, name, val, size, flags));
}

int attr_removexattr(struct kinode *in, const char *name)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	return r ? r : (int)neg_errno(removexattr(proc, name));
}
