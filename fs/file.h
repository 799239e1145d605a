/*
 * file.h - one open backing file: plaintext reads and writes over the
 * CockroachDB v2 format, without ever sealing a chunk twice under one IV.
 *
 * Owns: the state shared by every open handle of one file.  Writes form a
 * session.  A session writes chunks strictly in order: chunk `frontier` is
 * held in memory (the tail) and sealed only when a write moves past it or
 * the session commits; O(chunk) memory per file.  A brand-new file is
 * written in place.  Any change to data that is already sealed
 * (overwrite, append after the final chunk was sealed, truncation) writes
 * a complete new version under a fresh random IV into a temporary file
 * beside it, re-encrypting unchanged data on the way, then fsyncs and
 * renames it over the old one (struct kfile_host does the naming), so a
 * crash leaves the old or the new version, never a mix.  Reads see the
 * session's content (sealed part, tail, old version beyond).
 * Must not know: FUSE, names, chains, KMSes.
 * Thread-safety: every function may be called concurrently on one kfile;
 * an internal rwlock makes each call atomic (readers in parallel when no
 * session is open).
 */
#ifndef KMSFS_FILE_H
#define KMSFS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cformat.h"

/* How a kfile reaches the directory entry of its backing file. */
struct kfile_host {
	void *ctx;
	/* Create an empty temporary file beside the backing file, O_RDWR.
	 * name receives its name (for replace/discard). */
	int (*mktemp)(void *ctx, int *fd_out, char *name, size_t namelen);
	/* Rename the temporary over the backing file.  -ENOTSUP when that
	 * would be wrong (several hard links, name unknown): the caller
	 * then copies the new version into the old inode instead. */
	int (*replace)(void *ctx, const char *tmpname, int tmpfd);
	/* Remove a temporary that will not be used. */
	void (*discard)(void *ctx, const char *tmpname);
};

struct kfile;

/* The largest plaintext size of a file: 16 TiB - 4 GiB, so that its
 * ciphertext fits in ext4's largest file (16 TiB - 4 KiB with 4 KiB
 * blocks).  A write or truncation past it fails with -EFBIG, as on ext4,
 * before anything is written. */
#define KFILE_MAX_SIZE ((UINT64_C(1) << 44) - (UINT64_C(1) << 32))

/* Take over fd (O_RDWR when writable, else O_RDONLY) of a backing file.
 * key and host must outlive the kfile; label names the file in logs.
 * A backing file of 0 bytes is taken as a new file (fresh); anything
 * else must carry a v1/v2 header, otherwise reads fail with -EBADMSG
 * (logged once) while a truncation to 0 still works.  -ENOMEM, -errno. */
int kfile_open(int fd, bool writable, const struct cf_key *key,
	       const struct kfile_host *host, const char *label,
	       struct kfile **out);
/* Close without committing (call kfile_commit first). NULL ok. */
void kfile_close(struct kfile *kf);
/* Was the file opened (or upgraded) for writing? */
bool kfile_writable(struct kfile *kf);
/* Give a read-only kfile a writable fd (taken over). */
void kfile_set_writable_fd(struct kfile *kf, int fd);
/* Start a new empty file's session now, so that closing it without a
 * write still leaves a valid empty ciphertext. */
int kfile_begin_new(struct kfile *kf);

/* Plaintext size, including an open session. */
uint64_t kfile_size(struct kfile *kf);

/* Read up to len bytes at off.  *got < len only at end of file.
 * -EBADMSG: a chunk failed authentication or the file is truncated
 * (logged with the chunk index); -EIO: backing read error. */
int kfile_read(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got);
/* Write len bytes at off (holes read as zeros).  -EBADF when the file
 * was opened read-only, -EIO/-ENOSPC from the backing store, -EBADMSG
 * when data that must be re-encrypted fails authentication.  Extending
 * a file (write or truncate) seals every chunk up to the new end, as
 * ciphertext has no holes: past KFILE_MAX_SIZE it fails with -EFBIG, and
 * an extension whose ciphertext exceeds the backing store's free space
 * fails with -ENOSPC, both before anything is written. */
int kfile_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off);
int kfile_truncate(struct kfile *kf, uint64_t size);
/* Seal and publish an open session (flush, fsync, release); with sync,
 * also make it durable.  No-op without a session (but sync still syncs). */
int kfile_commit(struct kfile *kf, bool sync);

/* Plaintext size shown by stat for a backing file of cipher bytes not
 * open through a kfile.  An impossible size (a file cut at a chunk
 * boundary) shows one byte past its last whole chunk, so that a reader
 * reaches the damage and gets EIO instead of a silently short file. */
uint64_t kfile_stat_size(uint64_t cipher);

#endif
