/*
 * journal.h - the tail journal of a file being written: its unfinished
 * last chunk, sealed under a fresh random IV at every flush and fsync.
 *
 * Owns: the journal file's format.  A journal belongs to one version of
 * one file (its name and every record carry that version's IV) and holds
 * records (k, seq, bytes): "chunks 0..k-1 of the file are complete in the
 * backing file, and chunk k holds these bytes".  Two slots are written
 * alternately (record seq goes to slot seq % 2), so a crash while one is
 * written leaves the other; readers take the authentic record with the
 * highest seq.  Each record is one GCM message under its own random
 * nonce, with its header as associated data (cf_seal_record), so no
 * chunk nonce of the file is ever used for it.
 *
 *   slot j at offset j * JNL_SLOT:
 *   "kmsfsJ1\0" | nonce (12) | file IV (12) | k (u64 LE) | seq (u64 LE) |
 *   len (u32 LE) | 0 (4) | ciphertext (len) | tag (16)
 *
 * Must not know: names of the file it belongs to, FUSE, chains.
 * Thread-safety: reentrant; the caller serializes writes to one journal.
 */
#ifndef KMSFS_JOURNAL_H
#define KMSFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cformat.h"
#include "layout.h"

#define JNL_PREFIX LAYOUT_TMP_PREFIX "journal-"
#define JNL_NAME_SIZE (sizeof(JNL_PREFIX) + 2 * CF_IV_SIZE)
#define JNL_HDR_SIZE 56
#define JNL_SLOT 69632 /* 17 pages: header + 64 KiB + tag fit */
/* Scratch space a caller lends for one record. */
#define JNL_BUF_SIZE (JNL_HDR_SIZE + CF_CHUNK_CT_SIZE)

/* The journal's name for the file version with IV iv:
 * ".kmsfs-tmp-journal-" and the IV in hex. */
void jnl_name(const uint8_t iv[CF_IV_SIZE], char out[JNL_NAME_SIZE]);
/* The IV a journal name stands for: 0, or -EINVAL (not such a name). */
int jnl_name_iv(const char *name, uint8_t iv_out[CF_IV_SIZE]);

/* Write record (k, seq, data[0..len)) into slot seq % 2 of fd, under a
 * fresh nonce.  len <= CF_CHUNK_SIZE; buf holds JNL_BUF_SIZE bytes.
 * Returns 0, -ENOSPC, -EIO (write or crypto failure), -EINVAL. */
int jnl_write(int fd, const struct cf_key *key,
	      const uint8_t file_iv[CF_IV_SIZE], uint64_t k, uint64_t seq,
	      const uint8_t *data, size_t len, uint8_t *buf);

/* The newest authentic record of file_iv in fd: fills *k, *seq, and
 * data[0..*len) (data holds CF_CHUNK_SIZE bytes).  Returns 0, -ENOENT (no
 * authentic record: never written, torn, damaged, another file's) or
 * -EIO (read error). */
int jnl_read(int fd, const struct cf_key *key,
	     const uint8_t file_iv[CF_IV_SIZE], uint64_t *k, uint64_t *seq,
	     uint8_t *data, size_t *len, uint8_t *buf);

#endif
