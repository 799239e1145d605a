/*
 * ops_dir.c - FUSE handlers for directory listings (kmsfs's own names
 * hidden), statfs, extended attributes (passed through) and access.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include "ops_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include <sys/statvfs.h>
#include <sys/xattr.h>

struct dirhandle {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

/* --- directories ------------------------------------------------------- */

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirhandle *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd =
	    openat(node(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, e);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

/* Add one entry to a readdir(plus) reply.  Returns the bytes used, 0 when
 * the buffer is full (the entry is not consumed), or a negative errno. */
static long add_entry(fuse_req_t req, fuse_ino_t ino, struct dirent *de,
		      off_t next, char *p, size_t rem, bool plus)
{
	struct fuse_entry_param e = {0};
	bool dots =
	    strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	size_t n;
	int r;

	if (!plus) {
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
		return (long)fuse_add_direntry(req, p, rem, de->d_name, &e.attr,
					       next);
	}
	if (dots) {
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
	} else {
		r = do_lookup(req, ino, de->d_name, &e);
		if (r)
			return r == -ENOENT ? 1 : r; /* raced away: skip */
	}
	n = fuse_add_direntry_plus(req, p, rem, de->d_name, &e, next);
	if (n > rem && e.ino) /* did not fit: undo the lookup */
		inode_forget(kfs_of(req), node(req, e.ino), 1);
	return (long)n;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t offset, struct fuse_file_info *fi, bool plus)
{
	struct dirhandle *d = (struct dirhandle *)(uintptr_t)fi->fh;
	char *buf = calloc(1, size), *p = buf;
	size_t rem = size;
	long n;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		if (chain_name_reserved(d->entry->d_name)) {
			n = 1;
		} else {
			n = add_entry(req, ino, d->entry, telldir(d->dp), p,
				      rem, plus);
			if (n < 0) {
				err = narrow((int)n);
				break;
			}
			if ((size_t)n > rem)
				break;
			if (n > 1 || !plus) {
				p += n;
				rem -= (size_t)n;
			}
		}
		d->entry = NULL;
		d->offset = telldir(d->dp);
	}
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, offset, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, offset, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirhandle *d = (struct dirhandle *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	struct dirhandle *d = (struct dirhandle *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);

	(void)ino;
	fuse_reply_err(req,
		       (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

/* --- filesystem-wide, xattrs, access ---------------------------------- */

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(node(req, ino)->fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* Extended attributes pass through (the O_PATH fd via /proc); symlinks
 * have none, as on most Linux filesystems for user.* attributes. */
static int xattr_path(fuse_req_t req, fuse_ino_t ino, char *buf, size_t len)
{
	struct kinode *in = node(req, ino);

	if (in->type == S_IFLNK)
		return -ENOTSUP;
	procpath(buf, len, in->fd);
	return 0;
}

static void reply_xattr(fuse_req_t req, size_t size, const char *val, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, val, (size_t)n);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char proc[64], *val = size ? malloc(size) : NULL;
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (r || (size && !val))
		reply_err(req, r ? r : -ENOMEM);
	else
		reply_xattr(req, size, val, getxattr(proc, name, val, size));
	free(val);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char proc[64], *val = size ? malloc(size) : NULL;
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (r || (size && !val))
		reply_err(req, r ? r : -ENOMEM);
	else
		reply_xattr(req, size, val, listxattr(proc, val, size));
	free(val);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	char proc[64];
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (!r && setxattr(proc, name, value, size, flags) < 0)
		r = -errno;
	reply_err(req, r);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char proc[64];
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (!r && removexattr(proc, name) < 0)
		r = -errno;
	reply_err(req, r);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	char proc[64];

	procpath(proc, sizeof(proc), node(req, ino)->fd);
	fuse_reply_err(req, access(proc, mask) < 0 ? errno : 0);
}
