/*
 * dir.h - reading a directory of the store as the mount shows it.
 *
 * Owns: directory streams over the backing directory with kmsfs's own
 * names (layout_name_reserved) left out, and their offsets.
 * Must not know: FUSE (fs/ops_dir.c packs the entries into replies).
 * Thread-safety: one struct kdir is used by one thread at a time (the
 * kernel serialises readdir on an open directory).
 */
#ifndef KMSFS_DIR_H
#define KMSFS_DIR_H

#include <dirent.h>
#include <stdbool.h>
#include <sys/types.h>

#include "kfs.h"

struct kdir;

/* Open the directory in for reading.  0, -ENOMEM or -errno. */
int kdir_open(struct kinode *in, struct kdir **out);
void kdir_close(struct kdir *d); /* NULL ok */

/* Continue at off (an offset given out by kdir_peek), if it is not where
 * the stream is. */
void kdir_seek(struct kdir *d, off_t off);
/* The next entry the mount shows, without consuming it (the caller may
 * find its reply full); *de_out NULL at the end.  *next_out: the offset
 * after it.  0 or -errno. */
int kdir_peek(struct kdir *d, struct dirent **de_out, off_t *next_out);
/* Consume the entry kdir_peek gave. */
void kdir_consume(struct kdir *d);
int kdir_fsync(struct kdir *d, bool datasync);

#endif
