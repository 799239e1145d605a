/*
 * ops.c - FUSE low-level handlers: thin translations onto fs/ core.
 *
 * Design: passthrough_ll style (inode table over O_PATH fds).  Regular
 * file data goes through struct kfile; everything else (directories,
 * symlinks, FIFOs, metadata, xattrs) passes through to the backing store.
 * The kernel does permission checks (default_permissions).
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../src/log.h"
#include "inode.h"

#define TIMEOUT 1.0

struct handle {
	struct kinode *in;
	struct kfile *kf;
	bool writable;
};

struct dirhandle {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

static struct kfs *kfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct kinode *node(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return kfs_of(req)->root;
	return (struct kinode *)(uintptr_t)ino;
}

static struct handle *hnd(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* kmsfs codes -> what a caller of read(2)/open(2) can act on. */
static int narrow(int r)
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

static void reply_err(fuse_req_t req, int r)
{
	fuse_reply_err(req, r ? narrow(r) : 0);
}

static void procpath(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
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

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(req, parent, name, &e);

	if (r)
		reply_err(req, r);
	else
		fuse_reply_entry(req, &e);
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
		r = kfile_commit(kf, false);
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
		uid_t uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

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

/* Reply with the entry just made by a namespace operation. */
static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = do_lookup(req, parent, name, &e);

	if (r)
		reply_err(req, r);
	else
		fuse_reply_entry(req, &e);
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
		reply_made(req, parent, name);
}

/* A new directory that starts a chain gets its key and ENCRYPTION-INFO
 * now; if that fails the directory is removed again. */
static int start_chain(struct kfs *fs, struct kinode *parent, const char *name)
{
	struct chain *c;
	int r;

	if (!fs->profile->starts_chain(parent->depth + 1, name))
		return 0;
	r = inode_child_chain(fs, parent, name, true, &c);
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
		reply_made(req, parent, name);
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
		reply_made(req, parent, name);
}

/* The chain an existing entry (fd) would have under parent/name. */
static int chain_at(struct kfs *fs, struct kinode *parent, const char *name,
		    int fd, bool is_dir, struct chain **out)
{
	if (is_dir && fs->profile->starts_chain(parent->depth + 1, name))
		return keycache_chain(fs->kc, fd, name, out);
	*out = parent->chain;
	return 0;
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
		reply_made(req, newparent, newname);
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
	fd = openat(p->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
		r = chain_at(fs, op, name, fd, S_ISDIR(st->st_mode), &from);
	if (!r)
		r = chain_at(fs, np, newname, fd, S_ISDIR(st->st_mode), &to);
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

/* --- regular files ---------------------------------------------------- */

static int open_handle(struct kfs *fs, struct kinode *in,
		       struct fuse_file_info *fi, bool fresh)
{
	struct handle *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->in = in;
	h->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	r = inode_open_file(fs, in, fi->flags, fresh, &h->kf);
	if (r) {
		free(h);
		return r;
	}
	if (h->writable && (fi->flags & O_TRUNC))
		r = kfile_truncate(h->kf, 0);
	if (r) {
		inode_release_file(fs, in);
		free(h);
		return r;
	}
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kinode *in = node(req, ino);
	int r;

	if (in->type != S_IFREG)
		r = -EINVAL;
	else
		r = open_handle(kfs_of(req), in, fi, false);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct kinode *p = node(req, parent);
	struct kfs *fs = kfs_of(req);
	const struct cf_key *key;
	struct fuse_entry_param e;
	int r, fd;

	if (chain_name_reserved(name)) {
		reply_err(req, -EPERM);
		return;
	}
	/* No key, no file: fail before anything reaches the store. */
	r = keycache_key_write(fs->kc, p->chain, &key);
	if (r) {
		reply_err(req, r);
		return;
	}
	fd = openat(p->fd, name,
		    O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC |
			    (fi->flags & O_EXCL),
		    mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	close(fd);
	r = do_lookup(req, parent, name, &e);
	if (!r) {
		r = open_handle(fs, node(req, e.ino), fi, true);
		if (!r)
			r = inode_stat(fs, node(req, e.ino), &e.attr);
		if (r)
			inode_forget(fs, node(req, e.ino), 1);
	}
	if (r)
		reply_err(req, r);
	else
		fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	uint8_t *buf = malloc(size ? size : 1);
	size_t got = 0;
	int r;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = kfile_read(hnd(fi)->kf, buf, size, (uint64_t)off, &got);
	if (r && got == 0)
		reply_err(req, r);
	else
		fuse_reply_buf(req, (const char *)buf, got);
	secret_wipe(buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	int r;

	(void)ino;
	if (!hnd(fi)->writable)
		r = -EBADF;
	else
		r = kfile_write(hnd(fi)->kf, (const uint8_t *)buf, size,
				(uint64_t)off);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* Only a writer's close publishes: a reader closing must not cut a
	 * streaming writer's session (that would force a re-encryption). */
	reply_err(req, hnd(fi)->writable ? kfile_commit(hnd(fi)->kf, false) : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct handle *h = hnd(fi);
	int r;

	(void)ino;
	r = inode_release_file(kfs_of(req), h->in);
	free(h);
	reply_err(req, r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	reply_err(req, kfile_commit(hnd(fi)->kf, true));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t off, off_t len, struct fuse_file_info *fi)
{
	struct kfile *kf = hnd(fi)->kf;
	uint64_t end = (uint64_t)off + (uint64_t)len;
	int r = 0;

	(void)ino;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		r = -EOPNOTSUPP; /* no holes to punch in sealed chunks */
	else if (!hnd(fi)->writable)
		r = -EBADF;
	else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > kfile_size(kf))
		r = kfile_truncate(kf, end);
	reply_err(req, r);
}

/* --- directories ------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dirhandle *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(node(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
	bool dots = strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0;
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

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t offset, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, offset, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t offset, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, offset, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dirhandle *d = (struct dirhandle *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct dirhandle *d = (struct dirhandle *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno
								       : 0);
}

/* --- filesystem-wide, xattrs, access ---------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
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

static void reply_xattr(fuse_req_t req, size_t size, const char *val,
			ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, val, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char proc[64], *val = size ? malloc(size) : NULL;
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (r || (size && !val))
		reply_err(req, r ? r : -ENOMEM);
	else
		reply_xattr(req, size, val, getxattr(proc, name, val, size));
	free(val);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char proc[64], *val = size ? malloc(size) : NULL;
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (r || (size && !val))
		reply_err(req, r ? r : -ENOMEM);
	else
		reply_xattr(req, size, val, listxattr(proc, val, size));
	free(val);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	char proc[64];
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (!r && setxattr(proc, name, value, size, flags) < 0)
		r = -errno;
	reply_err(req, r);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char proc[64];
	int r = xattr_path(req, ino, proc, sizeof(proc));

	if (!r && removexattr(proc, name) < 0)
		r = -errno;
	reply_err(req, r);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	char proc[64];

	procpath(proc, sizeof(proc), node(req, ino)->fd);
	fuse_reply_err(req, access(proc, mask) < 0 ? errno : 0);
}

static const struct fuse_lowlevel_ops kmsfs_ops = {
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

/* --- mounting ---------------------------------------------------------- */

static int build_args(const struct kfs_options *o, struct fuse_args *args)
{
	char opts[PATH_MAX + 128];
	int r = 0;

	/* Kernel permission checks on our attributes; no allow_other
	 * unless the user asks for it with -o. */
	snprintf(opts, sizeof(opts),
		 "default_permissions,subtype=kmsfs,fsname=%s",
		 strchr(o->backing, ',') ? "kmsfs" : o->backing);
	r |= fuse_opt_add_arg(args, "kmsfs");
	r |= fuse_opt_add_arg(args, "-o");
	r |= fuse_opt_add_arg(args, opts);
	if (o->fuse_opts && *o->fuse_opts) {
		r |= fuse_opt_add_arg(args, "-o");
		r |= fuse_opt_add_arg(args, o->fuse_opts);
	}
	if (o->fuse_debug)
		r |= fuse_opt_add_arg(args, "-d");
	return r ? -ENOMEM : 0;
}

static int serve(struct fuse_session *se, const struct kfs_options *o)
{
	struct fuse_loop_config *cfg;
	int r;

	if (o->single_thread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, 10);
	fuse_loop_cfg_set_max_threads(cfg, 64);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

static int check_dirs(const struct kfs_options *o)
{
	struct stat st;

	if (stat(o->backing, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err("backing store %s is not a directory", o->backing);
		return 2;
	}
	if (stat(o->mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err("mount point %s is not a directory", o->mountpoint);
		return 2;
	}
	return 0;
}

int kfs_mount(const struct kfs_options *o)
{
	const struct chain_profile *prof = chain_profile_find(o->profile);
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct kfs *fs = NULL;
	int status = 1, r;

	if (!prof) {
		log_err("unknown layout profile '%s' (known: toplevel)",
			o->profile);
		return 2;
	}
	status = check_dirs(o);
	if (status)
		return status;
	status = 1;
	if (kfs_new(o->backing, o->keys, prof, &fs))
		goto out;
	if (keycache_check_store(fs->kc, fs->rootfd))
		goto out;
	if (build_args(o, &args))
		goto out;
	se = fuse_session_new(&args, &kmsfs_ops, sizeof(kmsfs_ops), fs);
	if (!se) {
		log_err("invalid FUSE options: %s", o->fuse_opts ? o->fuse_opts
								 : "");
		status = 2;
		goto out;
	}
	if (fuse_set_signal_handlers(se) || fuse_session_mount(se, o->mountpoint)) {
		log_err("cannot mount on %s", o->mountpoint);
		goto out;
	}
	if (!o->foreground) {
		fuse_daemonize(0);
		log_use_syslog(true);
	}
	log_info("mounted %s on %s", o->backing, o->mountpoint);
	r = serve(se, o);
	fuse_session_unmount(se);
	log_info("unmounted %s; keys wiped", o->mountpoint);
	status = r < 0 ? 1 : 0;
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	kfs_free(fs);
	return status;
}
