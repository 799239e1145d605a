/*
 * ops_file.c - FUSE handlers for regular file data: open, create, read,
 * write, flush, release, fsync, fallocate, all over struct kfile.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include "ops_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/scratch.h"
#include "attr.h"
#include "ns.h"

/* --- regular files ---------------------------------------------------- */

/* made: the lookup's attributes of the file when this open's create
 * made it, else NULL; datafd: see inode_open_file. */
static int open_handle(fuse_req_t req, fuse_ino_t ino, struct kinode *in,
		       struct fuse_file_info *fi, const struct stat *made,
		       int *datafd)
{
	struct kfs *fs = kfs_of(req);
	struct handle *h = calloc(1, sizeof(*h));
	bool kept = datafd && *datafd >= 0;
	int r, privs = 0;

	if (!h)
		return -ENOMEM;
	h->in = in;
	h->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	r = inode_open_file(fs, in, fi->flags, made != NULL, datafd, &h->f);
	if (r) {
		free(h);
		return r;
	}
	/* Known to be the empty file the create made, with no capabilities,
	 * only when the open took the create's fd: it checked that fd is
	 * in's (another file may have been renamed onto the name since). */
	if (!kept || *datafd >= 0)
		made = NULL;
	/* Whether a writer's changes must remove set-ID bits or capabilities
	 * (kill_privs); in->privs keeps a yes, and a failure counts as one. */
	if (made)
		privs = (made->st_mode & (S_ISUID | S_ISGID)) != 0;
	else if (h->writable)
		privs = attr_privs(in);
	if (privs)
		atomic_store(&in->privs, true);
	/* The kernel leaves an open's O_TRUNC to us (FUSE_ATOMIC_O_TRUNC),
	 * with what a truncation removes. */
	if (h->writable && (fi->flags & O_TRUNC) && !made) {
		r = kill_privs(req, ino, in);
		if (!r)
			r = attr_truncate(fs, in, &h->f, 0);
	}
	if (r) {
		inode_release_file(fs, in, h->writable);
		free(h);
		return r;
	}
	/* A write-only handle writes past the kernel's page cache
	 * (FOPEN_DIRECT_IO): it cannot read, so it loses nothing, and the
	 * kernel then neither copies each write into its cache nor asks for
	 * security.capability ahead of each write (a round trip each) to
	 * remove set-ID bits and capabilities (file_remove_privs).  A file
	 * that has any keeps the cached path, where they go as on any
	 * filesystem (by the kernel, or kill_privs with fs->killpriv);
	 * op_write removes those set while the handle is open.  Not when
	 * single-threaded: op_write's page
	 * invalidation may wait for a read that only another thread can
	 * serve. */
	if (fs->write_direct && (fi->flags & O_ACCMODE) == O_WRONLY &&
	    privs == 0)
		h->direct = true;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = h->f.keep_cache;
	fi->direct_io = h->direct;
	return 0;
}

static int close_handle(struct kfs *fs, struct fuse_file_info *fi)
{
	struct handle *h = hnd(fi);
	int r = inode_release_file(fs, h->in, h->writable);

	free(h);
	return r;
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kinode *in = node(req, ino);
	int r;

	if (in->type != S_IFREG)
		r = -EINVAL;
	else
		r = open_handle(req, ino, in, fi, NULL, NULL);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_open(req, fi);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	struct kinode *in = NULL, *dir = node(req, parent);
	struct fuse_entry_param e;
	struct kcred who;
	bool created;
	int r, datafd = -1;

	req_cred(req, &who);
	r = ns_create(fs, dir, name, mode, fi->flags, &who, &created, &datafd);
	if (r) {
		reply_err(req, r);
		return;
	}
	r = do_lookup(req, parent, name, &e);
	if (!r) {
		in = node(req, e.ino);
		r = open_handle(req, e.ino, in, fi, created ? &e.attr : NULL,
				&datafd);
	}
	if (datafd >= 0)
		close(datafd);
	/* A file this call made is as the lookup saw it (O_TRUNC has nothing
	 * to cut and its times are those of its making); but it is empty:
	 * the lookup found an empty backing file, which an encrypted file
	 * shows as 1 byte (damaged) until it is finished, and the kernel
	 * keeps the size it is told here. */
	if (!r && !created) {
		r = inode_stat(fs, in, &e.attr);
		if (r)
			close_handle(fs, fi);
	} else if (!r) {
		e.attr.st_size = 0;
	}
	if (r) {
		/* A failed create leaves no name behind. */
		if (created)
			ns_create_undo(fs, dir, name, in);
		if (in)
			inode_forget(fs, in, 1);
		reply_err(req, r);
		return;
	}
	fuse_reply_create(req, &e, fi);
}

/* The whole of a chunk a read decrypted, into the kernel's page cache,
 * so that the next small reads in it are served there, without a round
 * trip and a decryption each (fio's 4 KiB random reads of a cold file:
 * 1.6 times as many per second).  It is plaintext of the committed
 * version that authenticated, as a read of it returns; inode_share_begin
 * (fs/inode.h) keeps it from racing a writer.  After the reply, under no
 * kmsfs lock: the kernel locks the pages of a read until its reply, and
 * other reads' pages until another thread serves them. */
static void share_chunk(struct kfs *fs, fuse_ino_t ino,
			const struct kfile_chunk *c)
{
	struct fuse_bufvec v = FUSE_BUFVEC_INIT(c->len);

	v.buf[0].mem = c->pt;
	/* An error (the kernel dropped the inode) costs only the gain. */
	(void)fuse_lowlevel_notify_store(fs->se, ino, (off_t)c->off, &v, 0);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct kfs *fs = kfs_of(req);
	struct handle *h = hnd(fi);
	struct kinode *in = h->in;
	/* This thread's reply buffer: fuse_reply_buf has written it out to
	 * the kernel before the thread takes its next request. */
	uint8_t *buf = scratch_get(SCRATCH_REPLY, size);
	struct kfile_chunk fresh = {0};
	/* Only small reads share their chunk: the kernel reads a stream
	 * ahead in larger requests, which cover their chunks, and pages of
	 * the next request are locked while it waits.  A writer's handle
	 * fills the cache itself. */
	bool share =
	    fs->share_reads && !h->writable && h->f.kf && size < CF_CHUNK_SIZE;
	unsigned gen = share ? inode_data_gen(in) : 0;
	size_t got = 0;
	int r;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = kind_file_read(&h->f, buf, size, (uint64_t)off, &got,
			   share ? &fresh : NULL);
	share = !r && fresh.len && inode_share_begin(fs, in, gen);
	/* Never a partial reply on error: FUSE takes a short read as end
	 * of file, which would turn a damaged tail into a silently short
	 * copy. */
	if (r)
		reply_err(req, r);
	else
		fuse_reply_buf(req, (const char *)buf, got);
	if (share) {
		share_chunk(fs, ino, &fresh);
		inode_share_end(fs, in);
	}
}

int kill_privs(fuse_req_t req, fuse_ino_t ino, struct kinode *in)
{
	gid_t groups[65];
	int n, r;

	if (in->type != S_IFREG || !atomic_load(&in->privs))
		return 0;
	n = fuse_req_getgroups(req, 64, groups + 1);
	groups[0] = fuse_req_ctx(req)->gid;
	/* unknown supplementary groups: the set-group-ID bit goes */
	if (n < 0)
		n = 0;
	r = attr_kill_privs(in, fuse_req_ctx(req)->uid, groups,
			    (size_t)(n < 64 ? n : 64) + 1);
	/* The kernel may hold the old mode (attributes only: a write holds
	 * the pages it is writing locked). */
	fuse_lowlevel_notify_inval_inode(kfs_of(req)->se, ino, -1, 0);
	return r;
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct handle *h = hnd(fi);
	int r = 0;

	if (!h->writable)
		r = -EBADF;
	/* What the kernel leaves to us: on a write-only handle, privileges
	 * set since the open (attr_privs); with fs->killpriv, all. */
	else if (h->direct || atomic_load(&kfs_of(req)->killpriv))
		r = kill_privs(req, ino, h->in);
	if (!r)
		r = kind_file_write(&h->f, (const uint8_t *)buf, size,
				    (uint64_t)off);
	/* Another handle, or a mapping that outlived its handle, may hold
	 * pages of the range in the kernel's cache: drop them, as a local
	 * filesystem does after an O_DIRECT write (Linux 6.6 and later also
	 * drop them before it; a read between the two may cache old bytes
	 * again).  Not under any kmsfs lock: the kernel waits for pages
	 * under a read, which another thread serves (see open_handle). */
	if (h->direct)
		fuse_lowlevel_notify_inval_inode(
		    kfs_of(req)->se, ino, r ? 0 : off, r ? 0 : (off_t)size);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* A writer's close finishes or checkpoints the file (see
	 * inode_flush_file); a reader's close touches nothing. */
	reply_err(req,
		  hnd(fi)->writable
		      ? inode_flush_file(kfs_of(req), hnd(fi)->in, &hnd(fi)->f)
		      : 0);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, close_handle(kfs_of(req), fi));
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	reply_err(req,
		  kind_file_sync(kfs_of(req), hnd(fi)->in, &hnd(fi)->f, true));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		  off_t len, struct fuse_file_info *fi)
{
	const struct kind_file *f = &hnd(fi)->f;
	uint64_t end = (uint64_t)off + (uint64_t)len;
	int r = 0;

	if (mode & ~FALLOC_FL_KEEP_SIZE)
		r = -EOPNOTSUPP; /* no holes to punch in sealed chunks */
	else if (!hnd(fi)->writable)
		r = -EBADF;
	else if (atomic_load(&kfs_of(req)->killpriv))
		r = kill_privs(req, ino, hnd(fi)->in);
	if (!r && !(mode & FALLOC_FL_KEEP_SIZE) && end > kind_file_size(f))
		r = attr_truncate(kfs_of(req), hnd(fi)->in, f, end);
	reply_err(req, r);
}
