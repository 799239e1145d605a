/*
 * ops.c - FUSE low-level handlers for names and attributes (lookup,
 * mkdir, rename, setattr, ...), the shared helpers, and the operations
 * table.
 *
 * Design: passthrough_ll style (inode table over O_PATH fds).  Every
 * handler translates its arguments, calls the FUSE-free core (fs/ns.c
 * for names, fs/attr.c for attributes, fs/inode.c for the table) and
 * narrows the error for the kernel; the policy lives in the core.  The
 * kernel does permission checks (default_permissions).
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
#include "ns.h"

struct kfs *kfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

struct kinode *node(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return kfs_of(req)->root;
	return (struct kinode *)(uintptr_t)ino;
}

struct handle *hnd(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* kmsfs codes -> what a caller of read(2)/open(2) can act on. */
int narrow(int r)
{
	switch (r) {
	case -ENOKEY:
		return EACCES;
	case -EBADMSG:
	case -EPROTO:
	case -ETIMEDOUT:
	case -EAGAIN:
		return EIO;
	default:
		return -r;
	}
}

void req_cred(fuse_req_t req, struct kcred *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	out->uid = ctx->uid;
	out->gid = ctx->gid;
}

void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, r ? narrow(r) : 0);
}

int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
	      struct fuse_entry_param *e)
{
	struct kinode *in;
	int r;

	memset(e, 0, sizeof(*e));
	r = inode_lookup(kfs_of(req), node(req, parent), name, &e->attr, &in);
	if (r)
		return r;
	e->ino = (uintptr_t)in;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	return 0;
}

/* lookup, and the reply of every operation that makes a name. */
static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(req, parent, name, &e);

	if (r)
		reply_err(req, r);
	else
		fuse_reply_entry(req, &e);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* The kernel applies the caller's umask to the modes it sends (no
	 * FUSE_CAP_DONT_MASK): the daemon's own must not apply again. */
	umask(0);
	/* Big requests: 64 KiB chunks, and fewer round trips. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* writes must reach us */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* The daemon writes as root, which never clears set-user-ID bits:
	 * the kernel clears them for the caller on write, truncate and
	 * chown (it then sends a mode change), except on the writes of a
	 * write-only handle (op_write in ops_file.c) -- unless ops_io.c
	 * claims FUSE_HANDLE_KILLPRIV_V2, and kill_privs does it all. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(kfs_of(req), node(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(kfs_of(req), node(req, forgets[i].ino),
			     forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int r = inode_stat(kfs_of(req), node(req, ino), &st);

	(void)fi;
	if (r)
		reply_err(req, r);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

/* struct stat + FUSE_SET_ATTR_* -> the core's struct kattr. */
static void to_kattr(const struct stat *attr, int valid, struct kattr *a)
{
	static const struct {
		int fuse;
		unsigned k;
	} map[] = {
	    {FUSE_SET_ATTR_MODE, KATTR_MODE},
	    {FUSE_SET_ATTR_UID, KATTR_UID},
	    {FUSE_SET_ATTR_GID, KATTR_GID},
	    {FUSE_SET_ATTR_SIZE, KATTR_SIZE},
	    {FUSE_SET_ATTR_ATIME, KATTR_ATIME},
	    {FUSE_SET_ATTR_MTIME, KATTR_MTIME},
	    {FUSE_SET_ATTR_ATIME_NOW, KATTR_ATIME_NOW},
	    {FUSE_SET_ATTR_MTIME_NOW, KATTR_MTIME_NOW},
	};

	a->valid = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fuse)
			a->valid |= map[i].k;
	a->mode = attr->st_mode;
	a->uid = attr->st_uid;
	a->gid = attr->st_gid;
	a->size = (uint64_t)attr->st_size;
	a->atime = attr->st_atim;
	a->mtime = attr->st_mtim;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	const struct kind_file *f =
	    fi && hnd(fi)->writable ? &hnd(fi)->f : NULL;
	struct kinode *in = node(req, ino);
	struct kattr a;
	int r;

	to_kattr(attr, valid, &a);
	r = kfs_of(req)->killpriv && (a.valid & KATTR_SIZE)
		? kill_privs(req, ino, in)
		: 0;
	if (!r)
		r = attr_set(kfs_of(req), in, f, &a);
	/* The backing store's chown, made as root, removed set-user-ID, and
	 * set-group-ID with group execute; a caller without CAP_FSETID
	 * loses it also outside the file's group. */
	if (!r && kfs_of(req)->killpriv &&
	    (!a.valid || (a.valid & (KATTR_UID | KATTR_GID))))
		r = kill_privs(req, ino, in);
	if (r)
		reply_err(req, r);
	else
		op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	int r = attr_readlink(node(req, ino), buf, sizeof(buf));

	if (r)
		reply_err(req, r);
	else
		fuse_reply_readlink(req, buf);
}

/* The reply of every operation that makes a name. */
static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name,
		       int r)
{
	if (r)
		reply_err(req, r);
	else
		op_lookup(req, parent, name);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct kcred who;

	req_cred(req, &who);
	reply_made(
	    req, parent, name,
	    ns_mknod(kfs_of(req), node(req, parent), name, mode, rdev, &who));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct kcred who;

	req_cred(req, &who);
	reply_made(req, parent, name,
		   ns_mkdir(kfs_of(req), node(req, parent), name, mode, &who));
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct kcred who;

	req_cred(req, &who);
	reply_made(
	    req, parent, name,
	    ns_symlink(kfs_of(req), node(req, parent), name, link, &who));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	reply_made(req, newparent, newname,
		   ns_link(kfs_of(req), node(req, ino), node(req, newparent),
			   newname));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, ns_unlink(kfs_of(req), node(req, parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, ns_rmdir(kfs_of(req), node(req, parent), name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	reply_err(req, ns_rename(kfs_of(req), node(req, parent), name,
				 node(req, newparent), newname, flags));
}

const struct fuse_lowlevel_ops kmsfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .fallocate = op_fallocate,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
};
