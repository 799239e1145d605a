/*
 * ops_dir.c - FUSE handlers for directory listings (fs/dir.c hides
 * kmsfs's own names), statfs, extended attributes and access (fs/attr.c).
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

#include "attr.h"
#include "dir.h"

static struct kdir *dirh(struct fuse_file_info *fi)
{
	return (struct kdir *)(uintptr_t)fi->fh;
}

/* --- directories ------------------------------------------------------- */

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kdir *d;
	int r = kdir_open(node(req, ino), &d);

	if (r) {
		reply_err(req, r);
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
	struct kdir *d = dirh(fi);
	char *buf = calloc(1, size), *p = buf;
	struct dirent *de;
	size_t rem = size;
	off_t next;
	long n;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	kdir_seek(d, offset);
	for (;;) {
		err = narrow(kdir_peek(d, &de, &next));
		if (err || !de)
			break;
		n = add_entry(req, ino, de, next, p, rem, plus);
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
		kdir_consume(d);
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
	(void)ino;
	kdir_close(dirh(fi));
	fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, kdir_fsync(dirh(fi), datasync));
}

/* --- filesystem-wide, xattrs, access ---------------------------------- */

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int r = attr_statfs(node(req, ino), &sv);

	if (r)
		reply_err(req, r);
	else
		fuse_reply_statfs(req, &sv);
}

/* size 0 asks for the length only. */
static void reply_xattr(fuse_req_t req, size_t size, const char *val, ssize_t n)
{
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, val, (size_t)n);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *val = size ? malloc(size) : NULL;

	if (size && !val)
		reply_err(req, -ENOMEM);
	else
		reply_xattr(req, size, val,
			    attr_getxattr(node(req, ino), name, val, size));
	free(val);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *val = size ? malloc(size) : NULL;

	if (size && !val)
		reply_err(req, -ENOMEM);
	else
		reply_xattr(req, size, val,
			    attr_listxattr(node(req, ino), val, size));
	free(val);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	reply_err(req, attr_setxattr(node(req, ino), name, value, size, flags));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_err(req, attr_removexattr(node(req, ino), name));
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	reply_err(req, attr_access(node(req, ino), mask));
}
