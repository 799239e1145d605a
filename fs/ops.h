/*
 * ops.h - the FUSE front end of kmsfs: kfs_mount (fs.h) and the
 * low-level operations table (fs/ops_int.h, private to fs/ops*.c).
 *
 * Owns: translating FUSE requests into calls on the FUSE-free core
 * (fs/ns.h, fs/attr.h, fs/dir.h, fs/inode.h, fs/file.h) and narrowing
 * kmsfs's error codes to what the kernel understands (-ENOKEY -> EACCES,
 * -EBADMSG -> EIO, ...).  fs/ops*.c are the only files that include
 * <fuse_lowlevel.h>.
 * Thread-safety: handlers run on libfuse's worker threads.
 */
#ifndef KMSFS_OPS_H
#define KMSFS_OPS_H

#include "fs.h"

#endif
