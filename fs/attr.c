/*
 * attr.c - attribute changes and passthrough attribute reads.
 *
 * The backing object is reached through /proc/self/fd/N of its O_PATH fd
 * (chmod, xattrs and access take no O_PATH fd directly), as libfuse's
 * passthrough_ll does; the fd is held from inode_fd_get to inode_fd_put.
 */
#include "attr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR_CAPS "security.capability"

static void procpath(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Truncate a regular file, through the caller's handle or a temporary
 * one. */
static int set_size(struct kfs *fs, struct kinode *in,
		    const struct kind_file *f, uint64_t size)
{
	struct kind_file own;
	int r;

	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (f)
		return kind_file_truncate(f, size);
	r = inode_open_file(fs, in, O_RDWR, false, NULL, &own);
	if (r)
		return r;
	r = kind_file_truncate(&own, size);
	if (!r)
		r = kind_file_commit(fs, in, &own);
	inode_release_file(fs, in, true);
	return r;
}

static int set_times(struct kinode *in, const struct kattr *a)
{
	struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	char proc[64];
	int r, fd;

	if (a->valid & KATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (a->valid & KATTR_ATIME)
		tv[0] = a->atime;
	if (a->valid & KATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (a->valid & KATTR_MTIME)
		tv[1] = a->mtime;
	if (in->type == S_IFREG)
		return inode_set_times(in, tv); /* also on its open file */
	fd = inode_fd_get(in->fs, in);
	if (fd < 0)
		return fd;
	if (in->type == S_IFLNK) {
		r = utimensat(fd, "", tv, AT_EMPTY_PATH);
	} else {
		procpath(proc, sizeof(proc), fd);
		r = utimensat(AT_FDCWD, proc, tv, 0);
	}
	r = r < 0 ? -errno : 0;
	inode_fd_put(in->fs, in);
	return r;
}

static int set_owner(struct kinode *in, const struct kattr *a)
{
	uid_t uid = a->valid & KATTR_UID ? a->uid : (uid_t)-1;
	gid_t gid = a->valid & KATTR_GID ? a->gid : (gid_t)-1;
	int fd = inode_fd_get(in->fs, in), r;

	if (fd < 0)
		return fd;
	r = fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
		? -errno
		: 0;
	inode_fd_put(in->fs, in);
	return r;
}

int attr_truncate(struct kfs *fs, struct kinode *in, const struct kind_file *f,
		  uint64_t size)
{
	struct kattr a = {.valid = KATTR_SIZE, .size = size};

	return attr_set(fs, in, f, &a);
}

int attr_set(struct kfs *fs, struct kinode *in, const struct kind_file *f,
	     const struct kattr *in_a)
{
	unsigned times =
	    KATTR_ATIME | KATTR_MTIME | KATTR_ATIME_NOW | KATTR_MTIME_NOW;
	struct kattr now = *in_a, *a = &now;
	char proc[64];
	int r = 0, fd;

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
	if (a->valid & KATTR_MODE) {
		fd = inode_fd_get(fs, in);
		if (fd < 0)
			return fd;
		procpath(proc, sizeof(proc), fd);
		if (chmod(proc, a->mode) < 0)
			r = -errno;
		else if (a->mode & (S_ISUID | S_ISGID))
			atomic_store(&in->privs, true);
		inode_fd_put(fs, in);
	}
	if (!r && (a->valid & (KATTR_UID | KATTR_GID)))
		r = set_owner(in, a);
	if (!r && (a->valid & KATTR_SIZE))
		r = set_size(fs, in, f, a->size);
	if (!r && (a->valid & times))
		r = set_times(in, a);
	return r;
}

int attr_readlink(struct kinode *in, char *buf, size_t len)
{
	int fd = inode_fd_get(in->fs, in);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = readlinkat(fd, "", buf, len);
	n = n < 0 ? -errno : n;
	inode_fd_put(in->fs, in);
	if (n < 0)
		return (int)n;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int attr_statfs(struct kinode *in, struct statvfs *out)
{
	int fd = inode_fd_get(in->fs, in), r;

	if (fd < 0)
		return fd;
	r = fstatvfs(fd, out) < 0 ? -errno : 0;
	inode_fd_put(in->fs, in);
	return r;
}

/* /proc/self/fd path of in's fd, held until path_put. */
static int path_get(struct kinode *in, char *buf, size_t len)
{
	int fd = inode_fd_get(in->fs, in);

	if (fd < 0)
		return fd;
	procpath(buf, len, fd);
	return 0;
}

static void path_put(struct kinode *in)
{
	inode_fd_put(in->fs, in);
}

static bool member(gid_t gid, const gid_t *groups, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int attr_privs(struct kinode *in)
{
	char proc[64];
	struct stat st;
	int r = path_get(in, proc, sizeof(proc));

	if (r)
		return r;
	if (stat(proc, &st) < 0)
		r = -errno;
	else if (st.st_mode & (S_ISUID | S_ISGID))
		r = 1;
	else if (getxattr(proc, XATTR_CAPS, NULL, 0) >= 0)
		r = 1;
	else if (errno != ENODATA && errno != ENOTSUP)
		r = -errno;
	path_put(in);
	if (r > 0)
		atomic_store(&in->privs, true);
	return r;
}

int attr_kill_privs(struct kinode *in, uid_t uid, const gid_t *groups,
		    size_t ngroups)
{
	char proc[64];
	struct stat st;
	mode_t kill = 0;
	int r = path_get(in, proc, sizeof(proc));

	if (r)
		return r;
	if (stat(proc, &st) < 0) {
		r = -errno;
		goto out;
	}
	/* As setattr_should_drop_suidgid, uid 0 standing for CAP_FSETID. */
	if (uid != 0) {
		kill = st.st_mode & S_ISUID;
		if ((st.st_mode & S_ISGID) &&
		    ((st.st_mode & S_IXGRP) ||
		     !member(st.st_gid, groups, ngroups)))
			kill |= S_ISGID;
	}
	if (kill && chmod(proc, st.st_mode & 07777 & ~kill) < 0)
		r = -errno;
	else if (removexattr(proc, XATTR_CAPS) < 0 && errno != ENODATA &&
		 errno != ENOTSUP)
		r = -errno;
out:
	path_put(in);
	return r;
}

int attr_access(struct kinode *in, int mask)
{
	char proc[64];
	int r = path_get(in, proc, sizeof(proc));

	if (r)
		return r;
	r = access(proc, mask) < 0 ? -errno : 0;
	path_put(in);
	return r;
}

static int xattr_path(struct kinode *in, char *buf, size_t len)
{
	if (in->type == S_IFLNK)
		return -ENOTSUP;
	return path_get(in, buf, len);
}

static ssize_t neg_errno(ssize_t n)
{
	return n < 0 ? -errno : n;
}

ssize_t attr_getxattr(struct kinode *in, const char *name, void *val,
		      size_t size)
{
	char proc[64];
	ssize_t r = xattr_path(in, proc, sizeof(proc));

	if (r)
		return r;
	r = neg_errno(getxattr(proc, name, val, size));
	path_put(in);
	return r;
}

ssize_t attr_listxattr(struct kinode *in, char *list, size_t size)
{
	char proc[64];
	ssize_t r = xattr_path(in, proc, sizeof(proc));

	if (r)
		return r;
	r = neg_errno(listxattr(proc, list, size));
	path_put(in);
	return r;
}

int attr_setxattr(struct kinode *in, const char *name, const void *val,
		  size_t size, int flags)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	if (r)
		return r;
	r = (int)neg_errno(setxattr(proc, name, val, size, flags));
	path_put(in);
	if (!r && !strcmp(name, XATTR_CAPS))
		atomic_store(&in->privs, true);
	return r;
}

int attr_removexattr(struct kinode *in, const char *name)
{
	char proc[64];
	int r = xattr_path(in, proc, sizeof(proc));

	if (r)
		return r;
	r = (int)neg_errno(removexattr(proc, name));
	path_put(in);
	return r;
}
