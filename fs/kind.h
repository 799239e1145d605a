/*
 * kind.h - the kinds of the mount's files: which are encrypted, which
 * pass through as plaintext, which are checksums, and keeping every
 * checksum file right while the files it covers come and go.
 *
 * Owns: each inode's kind (from the layout: layout_file_kind), the open
 * file of any kind (struct kind_file: a struct kfile for encrypted files,
 * a struct pfile for plaintext and checksum files), kfs.ck_lock, and the
 * coherence of checksum files (see fs/plainfile.h for the mapping):
 *   - a checksum file written through the mount is stored mapped against
 *     its X as X is at that moment (fs/plainfile.c, under ck_lock);
 *   - every namespace change that changes what X is (rename, exchange,
 *     unlink and link of X or of the checksum file, the rename of a
 *     re-encrypted version over X) reads what each affected checksum file
 *     shows before the change and stores it again under the new X after
 *     it (kind_fix_begin/kind_fix_end around the change, under ck_lock),
 *     so CockroachDB's order (X through X<digits>.tmp and a rename, then
 *     X-CHECKSUM the same way), the reverse order, and rewrites of either
 *     all leave X-CHECKSUM = SHA-256(stored X)[:4] on the store when the
 *     mount shows SHA-256(plaintext X)[:4];
 *   - a new X written in place (created through the mount) has no old
 *     version: a checksum stored while it was being written holds what it
 *     shows; when the new X is first committed, a sibling checksum equal
 *     to SHA-256(plaintext X)[:4] is stored as SHA-256(stored X)[:4]
 *     (kind_settle).
 * Renames and links that would change a file's kind fail with EXDEV (the
 * caller copies, as for a move across chains).
 * Known limit: a re-encrypted X with several hard links is copied back
 * in place (fs/file.c) without a rename: its checksum is not re-mapped.
 *
 * Must not know: FUSE.
 * Thread-safety: any thread.  ck_lock sits between the keystore locks
 * and ns_lock in the lock order (fs/kfs.h): keys are looked up before it
 * is taken, names under it; the files covered by checksums are read and
 * decrypted under it, so checksum work is serialised per mount (checksum
 * files are few and small; their X are manifests).
 */
#ifndef KMSFS_KIND_H
#define KMSFS_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "file.h"
#include "kfs.h"
#include "plainfile.h"

/* The kind a regular file named name in parent has (LAYOUT_ENCRYPTED
 * when the profile has a single kind or the path is unknown). */
enum layout_kind kind_at(struct kfs *fs, struct kinode *parent,
			 const char *name);

/* --- open files of any kind ------------------------------------------ */

/* One open regular file: kf for encrypted files, else pf.  keep_cache:
 * what the kernel cached of the file is still its content (see
 * inode_open_file). */
struct kind_file {
	struct kfile *kf;
	struct pfile *pf;
	bool keep_cache;
};

/* Does in have open-file state good for writable (in->lock held)? */
bool kind_file_ready(struct kinode *in, bool writable);
/* Attach the pfile of a plaintext or checksum inode (in->lock held):
 * creates it or gives it a writable fd.  -errno of opening the backing
 * file, -ENOMEM. */
int kind_attach(struct kfs *fs, struct kinode *in, bool writable);
/* An encrypted inode was attached: remember a new file (backing file of
 * 0 bytes) opened for writing, for kind_settle. */
void kind_attached(struct kfs *fs, struct kinode *in, bool writable);
/* The last handle went (in->lock held): commit, settle and close
 * whatever is open.  Returns the commit's error. */
int kind_release(struct kfs *fs, struct kinode *in);
/* Free the open-file state of an inode being destroyed. */
void kind_detach(struct kinode *in);

/* The open file's operations, as kfile_* / pfile_* (fs/file.h,
 * fs/plainfile.h).  kind_file_commit finishes the file (kfile_commit),
 * kind_file_sync checkpoints it (kfile_sync: flush, fsync); both settle a
 * new X's checksum once X is finished. */
int kind_file_read(const struct kind_file *f, uint8_t *buf, size_t len,
		   uint64_t off, size_t *got, struct kfile_chunk *fresh);
int kind_file_write(const struct kind_file *f, const uint8_t *buf, size_t len,
		    uint64_t off);
int kind_file_truncate(const struct kind_file *f, uint64_t size);
uint64_t kind_file_size(const struct kind_file *f);
int kind_file_commit(struct kfs *fs, struct kinode *in,
		     const struct kind_file *f);
int kind_file_sync(struct kfs *fs, struct kinode *in, const struct kind_file *f,
		   bool durable);
/* Written between several closes of one open file (kfile_closers)? */
bool kind_file_closers(const struct kind_file *f);

/* After a commit of the encrypted inode in: if it was new, store a
 * sibling checksum that shows SHA-256(its plaintext)[:4] as
 * SHA-256(its stored bytes)[:4].  Never fails (logs). */
void kind_settle(struct kfs *fs, struct kinode *in);

/* --- namespace changes -------------------------------------------------- */

enum kind_op {
	KIND_RENAME,   /* a in pa moves to b in pb (replacing b) */
	KIND_EXCHANGE, /* a and b swap */
	KIND_UNLINK,   /* a in pa goes */
	KIND_LINK,     /* b in pb appears (pa, a unused) */
};

#define KIND_FIX_MAX 4

struct kind_fix {
	bool locked;
	int n;
	struct kinode *pa, *pb, *pinned;
	const struct cf_key *ka, *kb;
	struct kind_fix_item {
		int fd;
		uint8_t shown[PF_CK_SIZE];
		struct kinode *dir; /* where it is after the change */
		char name[256];
	} item[KIND_FIX_MAX];
};

/* Before a namespace change (no lock held): take ck_lock and read what
 * the affected checksum files show.  Never fails: a checksum file whose
 * X cannot be read (no key) is left as it is. */
void kind_fix_begin(struct kfs *fs, struct kind_fix *fx, enum kind_op op,
		    struct kinode *pa, const char *a, struct kinode *pb,
		    const char *b);
/* Before a re-encrypted version of in is renamed over it. */
void kind_fix_begin_replace(struct kfs *fs, struct kind_fix *fx,
			    struct kinode *in);
/* After the change (done or failed): store each shown value again under
 * the new X, release ck_lock. */
void kind_fix_end(struct kfs *fs, struct kind_fix *fx);

#endif
