/*
 * ops_int.h - what the fs/ops*.c files share.  Private to them.
 *
 * The FUSE front end is split by what a handler touches: ops.c
 * (names: lookup, mkdir, rename, ...), ops_file.c (regular file data),
 * ops_dir.c (directory listing, xattrs, statfs), ops_mount.c (session
 * setup), ops_io.c (its reads and writes of /dev/fuse).  These are the
 * only files that include <fuse_lowlevel.h>.
 */
#ifndef KMSFS_OPS_INT_H
#define KMSFS_OPS_INT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "kfs.h"
#include "kind.h"
#include "ns.h"
#include "ops.h"

#define TIMEOUT 1.0

/* One open regular file (fi->fh). */
struct handle {
	struct kinode *in;
	struct kind_file f; /* encrypted, plaintext or checksum */
	bool writable;
	bool direct; /* past the kernel's page cache (open_handle) */
};

struct kfs *kfs_of(fuse_req_t req);
struct kinode *node(fuse_req_t req, fuse_ino_t ino);
struct handle *hnd(struct fuse_file_info *fi);
/* kmsfs error codes -> errno for the kernel (-ENOKEY -> EACCES, ...). */
int narrow(int r);
void reply_err(fuse_req_t req, int r);
/* The caller of req, to whom a new entry belongs. */
void req_cred(fuse_req_t req, struct kcred *out);
int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
	      struct fuse_entry_param *e);

extern const struct fuse_lowlevel_ops kmsfs_ops;

/* After fuse_session_mount: read and write /dev/fuse through ops_io.c,
 * which claims FUSE_HANDLE_KILLPRIV_V2 (kfs.killpriv) and, once FUSE_INIT
 * is answered, sets the read-ahead window of the mount on mountpoint
 * (which must outlive the session) to read_ahead_kb KiB (0: the kernel's
 * stays).  0 or -errno. */
int ops_io_setup(struct fuse_session *se, const char *mountpoint,
		 unsigned read_ahead_kb);
/* Remove what a change by req's caller takes from in (attr_kill_privs):
 * capabilities, and the set-ID bits a caller without CAP_FSETID loses.
 * Nothing to do unless in->privs.  Drops the kernel's attributes of ino
 * after a change. */
int kill_privs(fuse_req_t req, fuse_ino_t ino, struct kinode *in);

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		  off_t len, struct fuse_file_info *fi);
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		struct fuse_file_info *fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void op_access(fuse_req_t req, fuse_ino_t ino, int mask);

#endif
