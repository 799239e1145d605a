/*
 * ops.h - the FUSE low-level operations table of kmsfs.
 *
 * Owns: translating FUSE requests into calls on the inode table, the
 * open-file layer and the key cache, and narrowing kmsfs's error codes to
 * what the kernel understands (-ENOKEY -> EACCES, -EBADMSG -> EIO, ...).
 * The only file that includes <fuse_lowlevel.h>; kfs_mount (fs.h) lives
 * here too.
 * Thread-safety: handlers run on libfuse's worker threads.
 */
#ifndef KMSFS_OPS_H
#define KMSFS_OPS_H

#include "fs.h"

#endif
