/*
 * ops.c - FUSE low-level handlers for names (lookup, mkdir, rename, ...),
 * the shared helpers, and the operations table.
 *
 * Design: passthrough_ll style (inode table over O_PATH fds).  Regular
 * file data goes through struct kfile; everything else (directories,
 * symlinks, FIFOs, metadata, xattrs) passes through to the backing store.
 * The kernel does permission checks (default_permissions).
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

void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, r ? narrow(r) : 0);
}

void procpath(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
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
	/* Big requests: 64 KiB chunks, and fewer round trips. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* writes must reach us */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
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

/* Truncate a regular file, through its open handle or a temporary one. */
static int set_size(struct kfs *fs, struct kinode *in,
		    struct fuse_file_info *fi, off_t size)
{
	struct kfile *kf;
	int r;

	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (fi && hnd(fi)->writable)
		return kfile_truncate(hnd(fi)->kf, (uint64_t)size);
	r = inode_open_file(fs, in, O_RDWR, false, &kf);
	if (r)
		return r;
	r = kfile_truncate(kf, (uint64_t)size);
	if (!r)
		r = kfile_commit(kf);
	inode_release_file(fs, in);
	return r;
}

static int set_times(struct kinode *in, const struct stat *attr, int valid)
{
	struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	char proc[64];
	int r;

	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
	if (in->type == S_IFREG)
		return inode_set_times(in, tv); /* also on its open file */
	if (in->type == S_IFLNK) {
		r = utimensat(in->fd, "", tv, AT_EMPTY_PATH);
	} else {
		procpath(proc, sizeof(proc), in->fd);
		r = utimensat(AT_FDCWD, proc, tv, 0);
	}
	return r < 0 ? -errno : 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct kinode *in = node(req, ino);
	char proc[64];
	int r = 0;

	procpath(proc, sizeof(proc), in->fd);
	if ((valid & FUSE_SET_ATTR_MODE) && chmod(proc, attr->st_mode) < 0)
		r = -errno;
	if (!r && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid =
		    valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid =
		    valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
	}
	if (!r && (valid & FUSE_SET_ATTR_SIZE))
		r = set_size(kfs_of(req), in, fi, attr->st_size);
	if (!r && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			    FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		r = set_times(in, attr, valid);
	if (r) {
		reply_err(req, r);
		return;
	}
	op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(node(req, ino)->fd, "", buf, sizeof(buf));

	if (n < 0 || n == (ssize_t)sizeof(buf)) {
		fuse_reply_err(req, n < 0 ? errno : ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* Write a valid empty ciphertext (header + empty final chunk). */
static int make_empty(struct kfs *fs, struct kinode *parent, const char *name,
		      mode_t mode)
{
	const struct cf_key *key;
	uint8_t buf[CF_HEADER_SIZE + CF_TAG_SIZE], iv[CF_IV_SIZE];
	int fd, r;

	r = keycache_key_write(fs->kc, parent->chain, &key);
	if (!r)
		r = cf_iv_random(iv);
	if (r)
		return r;
	cf_header_build(iv, buf);
	r = cf_seal_chunk(key, iv, 0, iv, 0, buf + CF_HEADER_SIZE);
	if (r)
		return r;
	fd = openat(parent->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    mode);
	if (fd < 0)
		return -errno;
	r = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) ? 0 : -EIO;
	close(fd);
	if (r)
		unlinkat(parent->fd, name, 0);
	return r;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct kinode *p = node(req, parent);
	int r = 0;

	if (chain_name_reserved(name))
		r = -EPERM;
	else if (S_ISREG(mode))
		r = make_empty(kfs_of(req), p, name, mode & 07777);
	else if (S_ISFIFO(mode) || S_ISSOCK(mode))
		r = mknodat(p->fd, name, mode, rdev) < 0 ? -errno : 0;
	else
		r = -EPERM; /* no device nodes in a backup store */
	if (r)
		reply_err(req, r);
	else
		op_lookup(req, parent, name);
}

/* A new directory that starts a chain gets its key and ENCRYPTION-INFO
 * now; if that fails the directory is removed again. */
static int start_chain(struct kfs *fs, struct kinode *parent, const char *name)
{
	struct chain *c;
	int fd, r;

	if (!fs->profile->starts_chain(parent->depth + 1, name))
		return 0;
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : inode_chain_at(fs, parent, name, fd, true, &c);
	if (fd >= 0)
		close(fd);
	if (!r)
		r = keycache_chain_create(fs->kc, c);
	if (r) {
		log_err("mkdir %s: could not create the chain's key: %s", name,
			strerror(narrow(r)));
		unlinkat(parent->fd, name, AT_REMOVEDIR);
	}
	return r;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct kinode *p = node(req, parent);
	int r = 0;

	if (chain_name_reserved(name))
		r = -EPERM;
	else if (mkdirat(p->fd, name, mode) < 0)
		r = -errno;
	else
		r = start_chain(kfs_of(req), p, name);
	if (r)
		reply_err(req, r);
	else
		op_lookup(req, parent, name);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct kinode *p = node(req, parent);

	if (chain_name_reserved(name))
		reply_err(req, -EPERM);
	else if (symlinkat(link, p->fd, name) < 0)
		fuse_reply_err(req, errno);
	else
		op_lookup(req, parent, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct kinode *in = node(req, ino), *np = node(req, newparent);
	struct kfs *fs = kfs_of(req);
	char proc[64];
	int r = 0;

	procpath(proc, sizeof(proc), in->fd);
	if (chain_name_reserved(newname))
		r = -EPERM;
	else if (in->chain != np->chain)
		r = -EXDEV; /* the data is sealed under another chain's key */
	if (!r) {
		pthread_mutex_lock(&fs->ns_lock);
		if (linkat(AT_FDCWD, proc, np->fd, newname, AT_SYMLINK_FOLLOW) <
		    0)
			r = -errno;
		pthread_mutex_unlock(&fs->ns_lock);
	}
	if (r)
		reply_err(req, r);
	else
		op_lookup(req, newparent, newname);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kinode *p = node(req, parent);
	struct kfs *fs = kfs_of(req);
	struct stat st;
	int r = 0;

	if (chain_name_reserved(name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&fs->ns_lock);
	if (fstatat(p->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    unlinkat(p->fd, name, 0) < 0)
		r = -errno;
	pthread_mutex_unlock(&fs->ns_lock);
	if (!r)
		inode_name_gone(fs, st.st_dev, st.st_ino, p, name);
	reply_err(req, r);
}

/* Entries of a directory that are not kmsfs's own: 0 empty, 1 not. */
static int dir_has_user_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!r && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !chain_name_reserved(de->d_name))
			r = 1;
	}
	if (!r) {
		rewinddir(d);
		while ((de = readdir(d))) {
			if (chain_name_reserved(de->d_name))
				unlinkat(dirfd, de->d_name, 0);
		}
	}
	closedir(d);
	return r;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kinode *p = node(req, parent);
	struct kfs *fs = kfs_of(req);
	struct chain *c = NULL;
	struct stat st;
	int r, fd;

	if (chain_name_reserved(name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pthread_mutex_lock(&fs->ns_lock);
	fd = openat(p->fd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : dir_has_user_entries(fd);
	if (r == 1)
		r = -ENOTEMPTY;
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r && fs->profile->starts_chain(p->depth + 1, name))
		r = keycache_chain(fs->kc, fd, name, &c);
	if (!r && unlinkat(p->fd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	pthread_mutex_unlock(&fs->ns_lock);
	if (fd >= 0)
		close(fd);
	if (!r && c)
		keycache_chain_removed(fs->kc, c);
	if (!r)
		inode_name_gone(fs, st.st_dev, st.st_ino, p, name);
	reply_err(req, r);
}

/* Would moving the entry at (op, name) to (np, newname) change the key
 * its data is sealed under?  Then the move would make it unreadable. */
static int check_move(struct kfs *fs, struct kinode *op, const char *name,
		      struct kinode *np, const char *newname, struct stat *st)
{
	struct chain *from, *to;
	int fd, r;

	fd = openat(op->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = fstat(fd, st) < 0 ? -errno : 0;
	if (!r)
		r = inode_chain_at(fs, op, name, fd, S_ISDIR(st->st_mode),
				   &from);
	if (!r)
		r = inode_chain_at(fs, np, newname, fd, S_ISDIR(st->st_mode),
				   &to);
	close(fd);
	if (!r && from != to)
		r = -EXDEV;
	return r;
}

static int do_rename(struct kfs *fs, struct kinode *op, const char *name,
		     struct kinode *np, const char *newname, unsigned flags)
{
	struct stat src, dst;
	bool had_dst;
	int r;

	r = check_move(fs, op, name, np, newname, &src);
	if (r)
		return r;
	had_dst = fstatat(np->fd, newname, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (had_dst && (flags & RENAME_EXCHANGE)) {
		r = check_move(fs, np, newname, op, name, &dst);
		if (r)
			return r;
	}
	pthread_mutex_lock(&fs->ns_lock);
	r = renameat2(op->fd, name, np->fd, newname, flags) < 0 ? -errno : 0;
	pthread_mutex_unlock(&fs->ns_lock);
	if (r)
		return r;
	if (had_dst && !(flags & RENAME_EXCHANGE))
		inode_name_gone(fs, dst.st_dev, dst.st_ino, np, newname);
	if (had_dst && (flags & RENAME_EXCHANGE)) {
		struct kinode *other = inode_find(fs, dst.st_dev, dst.st_ino);

		if (other) {
			inode_set_name(fs, other, op, name);
			inode_unpin(fs, other);
		}
	}
	{
		struct kinode *moved = inode_find(fs, src.st_dev, src.st_ino);

		if (moved) {
			moved->depth = np->depth + 1;
			inode_set_name(fs, moved, np, newname);
			inode_unpin(fs, moved);
		}
	}
	return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	int r;

	if (chain_name_reserved(name) || chain_name_reserved(newname))
		r = -EPERM;
	else if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		r = -EINVAL;
	else
		r = do_rename(kfs_of(req), node(req, parent), name,
			      node(req, newparent), newname, flags);
	reply_err(req, r);
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
