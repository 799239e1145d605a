/*
 * plainfile.h - open files that are not encrypted: plaintext files and
 * checksum files (CockroachDB's X-CHECKSUM), and the checksum mapping.
 *
 * Owns: struct pfile, the open-file state of a file the layout stores as
 * it is (LATEST, metadata/, BACKUP-LOCK-*: reads, writes, truncation and
 * sizes pass straight through to the backing file) or as a checksum, and
 * the rule that maps a checksum file's stored bytes to what the mount
 * shows.
 *
 * The checksum rule.  CockroachDB stores next to an encrypted X a file
 * X-CHECKSUM holding SHA-256(stored bytes of X)[:4] (call it S) and checks
 * it before decrypting X; a writer above the mount writes
 * SHA-256(plaintext of X)[:4] (call it P).  A checksum file of exactly 4
 * bytes is mapped by the involution f: f(P) = S, f(S) = P, f(c) = c for
 * every other c: the store holds f(shown) and the mount shows f(stored).
 * So a right checksum written through the mount (P) is stored right for
 * CockroachDB (S), and a wrong one stays wrong on both sides (a c that is
 * not P is never stored as S).  f is the identity (a "basis" that is off)
 * when X is missing, is not a regular file, is not encrypted (P = S), is
 * empty or is not a complete authentic ciphertext (a file being written),
 * and for checksum files of any size other than 4.  Whoever changes X
 * keeps the shown value (fs/kind.c): it reads it under the old basis and
 * stores it again under the new one.
 *
 * Must not know: inodes, names beyond one directory entry, FUSE, where
 * keys come from.  The basis of an open checksum file comes from its host
 * (struct pfile_host), which also serialises it against changes of X.
 * Thread-safety: every pfile function may be called concurrently on one
 * pfile (an internal rwlock; a checksum file's operations also run under
 * the host's lock).  pfile_basis_at and pfile_ck_map are reentrant.
 */
#ifndef KMSFS_PLAINFILE_H
#define KMSFS_PLAINFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cformat.h"
#include "layout.h"

#define PF_CK_SIZE 4 /* bytes of a CockroachDB checksum */

/* How a checksum file's bytes map: on = false is the identity. */
struct pf_basis {
	bool on;
	uint8_t p[PF_CK_SIZE]; /* SHA-256(plaintext of X)[:4] */
	uint8_t s[PF_CK_SIZE]; /* SHA-256(stored bytes of X)[:4] */
};

/* The basis for a checksum file whose X is xname in dirfd (any fd of the
 * directory), X being of kind xkind and sealed under key (NULL when no
 * key is at hand).  Reads and, when X is encrypted, decrypts all of X.
 * 0 (out->on tells whether it maps), -ENOKEY when X is a present
 * encrypted file and key is NULL, -ENOMEM, -EIO (read error). */
int pfile_basis_at(int dirfd, const char *xname, enum layout_kind xkind,
		   const struct cf_key *key, struct pf_basis *out);

/* out = f(in) under b (in == out allowed). */
void pfile_ck_map(const struct pf_basis *b, const uint8_t in[PF_CK_SIZE],
		  uint8_t out[PF_CK_SIZE]);

/* What an open checksum file asks its owner. */
struct pfile_host {
	void *ctx;
	/* Take the lock that keeps X and the checksum's stored bytes
	 * together (no basis change until end).  May fail (-errno). */
	int (*begin)(void *ctx);
	/* The current basis; called between begin and end, at most once
	 * per operation, only when the file is or becomes 4 bytes long. */
	int (*basis)(void *ctx, struct pf_basis *out);
	void (*end)(void *ctx);
};

struct pfile;

/* Take over fd (O_RDWR when writable, else O_RDONLY) of a backing file.
 * host: NULL for a plaintext file, else the checksum file's host, which
 * must outlive the pfile.  label names the file in logs.  -ENOMEM. */
int pfile_open(int fd, bool writable, const struct pfile_host *host,
	       const char *label, struct pfile **out);
void pfile_close(struct pfile *pf); /* NULL ok */
bool pfile_writable(struct pfile *pf);
/* Give a read-only pfile a writable fd (taken over). */
void pfile_set_writable_fd(struct pfile *pf, int fd);

/* Size as shown (that of the backing file: the mapping keeps sizes). */
uint64_t pfile_size(struct pfile *pf);
/* As kfile_read/kfile_write/kfile_truncate (fs/file.h): -EBADF on a
 * read-only pfile, -EIO/-ENOSPC from the store, and the host's errors
 * (-ENOKEY: X is encrypted and its chain's key is not available). */
int pfile_read(struct pfile *pf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got);
int pfile_write(struct pfile *pf, const uint8_t *buf, size_t len, uint64_t off);
int pfile_truncate(struct pfile *pf, uint64_t size);
/* Everything is written through at once; with sync, make it durable.
 * 0 or -EIO. */
int pfile_commit(struct pfile *pf, bool sync);

#endif
