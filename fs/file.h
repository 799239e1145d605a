/*
 * file.h - one open backing file: plaintext reads and writes over the
 * CockroachDB v2 format, without ever sealing a chunk twice under one IV.
 *
 * Owns: the state shared by every open handle of one file.  Writes form a
 * session that writes one new version under a fresh IV.  Chunks are
 * sealed strictly in order: chunk `frontier` is held in memory (the tail)
 * and sealed only when a write moves past it or the file is finished
 * (kfile_commit, at the last close); O(chunk) memory per file.
 *  - A brand-new file is written in place.  Any change to data that is
 *    already sealed (overwrite, truncation, append to a finished file)
 *    writes the new version into a temporary beside it, re-encrypting
 *    unchanged data on the way, and (synced first) renames it over the
 *    old one (struct kfile_host does the naming), so a crash leaves the
 *    old or the new version, never a mix.
 *  - kfile_sync (flush, fsync) seals every complete chunk and keeps the
 *    unfinished last chunk in the file's journal (fs/journal.h) under a
 *    fresh nonce per record, never under the file's IV; a temporary is
 *    renamed into place then.  The session goes on in place, so
 *    appends after an fsync cost what they append.  Until it is
 *    finished, the file's header carries CF_V2_OPEN, not CockroachDB's
 *    version 2.  (A flush of a file still under 64 KiB with no journal
 *    yet finishes it instead: cheaper for small files.)
 *  - Crashes: a finished file is a complete CockroachDB file.  A file
 *    that was being written (CF_V2_OPEN) reads as its complete chunks
 *    plus the journal's last record, i.e. what it held at its last flush
 *    or fsync (complete chunks written after that record supersede it;
 *    the end is then unknown and a read there gives -EBADMSG); with no
 *    journal, as its complete chunks and then -EBADMSG.  The first write
 *    to such a file starts a new version (fs/recover.h finishes them at
 *    mount).  A temporary is never the only copy of a committed version.
 *  - Failures: any failed seal, read of old data, write, sync or rename
 *    ends the session, so nothing is sealed twice under its IV and the
 *    next write starts a new version under a fresh IV.  A rewrite's
 *    temporary is dropped (the file keeps its committed version); a file
 *    written in place keeps its complete chunks and the tail (journal),
 *    else its last record, else is left a valid empty file.  The file
 *    stays readable; the error is reported by the failing call and once
 *    more by the next kfile_sync or kfile_commit.
 * Reads see the session's content (sealed part, tail, old version beyond).
 * Reads of part of a chunk, outside a session, keep up to 4 decrypted
 * chunks of the file (256 KiB, allocated on the first such read), so
 * that small reads decrypt each chunk once; every write, truncation,
 * sync and commit drops them, and they are wiped then and at close.
 * Must not know: FUSE, names, chains, KMSes.
 * Thread-safety: every function may be called concurrently on one kfile;
 * an internal rwlock makes each call atomic (readers share it, also while
 * a write session is open; writers take it alone).
 */
#ifndef KMSFS_FILE_H
#define KMSFS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
	/* A new O_RDONLY|O_DIRECTORY descriptor of the directory that holds
	 * the file's name (its journal lives there), or -ENOENT when no name
	 * is known (an unlinked file: nothing to recover it by), -errno. */
	int (*dirfd)(void *ctx);
	/* Remove the file's name if it still names this file (a new file
	 * that a full disk left with no valid content at all).  -errno. */
	int (*remove)(void *ctx);
};

struct kfile;

/* The largest plaintext size of a file: 16 TiB - 4 GiB, so that its
 * ciphertext fits in ext4's largest file (16 TiB - 4 KiB with 4 KiB
 * blocks).  A write or truncation past it fails with -EFBIG, as on ext4,
 * before anything is written. */
#define KFILE_MAX_SIZE ((UINT64_C(1) << 44) - (UINT64_C(1) << 32))

#define KFILE_WRITABLE 1u /* fd is O_RDWR: writes allowed */
#define KFILE_NEW 2u	  /* the caller just created the (empty) file */
#define KFILE_ALLOW_V1                                                         \
	4u /* read v1 files (CockroachDB <= 21.1), never write                 \
	    */

/* Take over fd (O_RDWR with KFILE_WRITABLE, else O_RDONLY) of a backing
 * file.  A v1 file is damaged unless KFILE_ALLOW_V1 (logged, naming the
 * option); allowed, it is read with bounded memory (cf_v1_open) and
 * writes to it fail with -EROFS.  key and host must outlive the kfile; label
 * names the file in logs.  A backing file of 0 bytes is written in place as a
 * new file. A damaged file (0 bytes but not KFILE_NEW, no 'encrypt' header, a
 * v1 file that fails authentication) gives -EBADMSG (logged): at open when
 * read-only, else on every read (its size shows as at least 1 byte, so
 * that no reader takes it for an empty file), while a truncation to 0
 * still replaces it.  With key NULL (no key for its chain), a file that
 * is ciphertext gives -ENOKEY; its header is read once.  Also -ENOMEM,
 * -errno. */
int kfile_open(int fd, unsigned flags, const struct cf_key *key,
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

/* Does the backing file still wait to be finished (CF_V2_OPEN: it was
 * being written when kmsfs stopped, or a write to it failed)? */
bool kfile_unfinished(struct kfile *kf);

/* Was the file written again after a kfile_commit that left data in it,
 * while this kfile stayed open?  Then it is written between several
 * closes of one open file (the shell's `{ a; b; } >file`, a writer that
 * forks writers, a dup closed), and finishing it at each of them would
 * rewrite all of it for the next writer: the caller should then
 * checkpoint at a close (kfile_sync) and finish at the last one. */
bool kfile_closers(struct kfile *kf);

/* Times set on the open file (tv as for utimensat; UTIME_NOW and
 * UTIME_OMIT allowed), which the caller also sets on the backing file:
 * kept and set again after kmsfs's own later writes to the backing file
 * (a flush, the last close), so that they survive close as on ext4.  A
 * later write or truncation forgets the mtime (it changes the file). */
void kfile_set_times(struct kfile *kf, const struct timespec tv[2]);

/* Plaintext size, including an open session. */
uint64_t kfile_size(struct kfile *kf);

/* A chunk of the committed version that a read authenticated and
 * decrypted whole but returned only part of: its plaintext offset, its
 * bytes (the reading thread's scratch, valid until that thread reads
 * again) and its length; len 0 when there is none. */
struct kfile_chunk {
	uint64_t off;
	uint8_t *pt;
	size_t len;
};

/* Read up to len bytes at off.  *got < len only at end of file.
 * -EBADMSG: a chunk failed authentication or the file is truncated
 * (logged with the chunk index); -EIO: backing read error.  fresh (may
 * be NULL): the last such chunk of a read that succeeded. */
int kfile_read(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got, struct kfile_chunk *fresh);
/* Write len bytes at off (holes read as zeros).  -EBADF when the file
 * was opened read-only, -EIO/-ENOSPC from the backing store, -EBADMSG
 * when data that must be re-encrypted fails authentication; each of
 * these (but -EBADF) ends the session as described above.  Extending a
 * file (write or truncate) seals every chunk up to the new end, as
 * ciphertext has no holes: past KFILE_MAX_SIZE it fails with -EFBIG, and
 * an extension whose ciphertext exceeds the backing store's free space
 * fails with -ENOSPC, both before anything is written (and without
 * ending the session). */
int kfile_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off);
int kfile_truncate(struct kfile *kf, uint64_t size);
/* Checkpoint an open session (flush: durable false; fsync: true): every
 * complete chunk sealed, the unfinished one recorded in the journal, a
 * temporary renamed into place; with durable, all of it synced.  The
 * session stays open.  Without a session, durable syncs the file.
 * Returns this call's error, else that of a session that failed since
 * the last report (once), else 0. */
int kfile_sync(struct kfile *kf, bool durable);
/* Finish an open session (last close, truncation by name): final chunk
 * sealed, CF_V2 written, put in place, journal removed.  Not synced.
 * Errors as kfile_sync. */
int kfile_commit(struct kfile *kf);

/* Plaintext size shown by stat for a backing file of cipher bytes not
 * open through a kfile.  An impossible size (a file cut at a chunk
 * boundary) shows one byte past its last whole chunk, so that a reader
 * reaches the damage and gets EIO instead of a silently short file. */
uint64_t kfile_stat_size(uint64_t cipher);
/* The same for a backing file whose header's version byte is version
 * (0: no 'encrypt' header; cipher >= 36): v1 has its own formula, a
 * file that is not ciphertext never shows 0 bytes (a reader must reach
 * the EIO), an unfinished one shows one byte past its complete chunks
 * (its open kfile knows the rest). */
uint64_t kfile_stat_size_of(uint64_t cipher, int version);

#endif
