/*
 * scratch.h - per-thread scratch buffers for the data path.
 *
 * Owns: one buffer per thread and slot, allocated at first use, grown when
 * a larger one is asked for, freed when the thread exits (or by
 * scratch_release).  A FUSE request then allocates nothing: a 1 MiB read
 * used to map and fault in fresh pages for every request.
 * Must not know: what the bytes are.  Callers keep only file data in them
 * (ciphertext, or plaintext the page cache holds as well), never keys.
 * Thread-safety: each thread sees only its own buffers; a buffer is valid
 * until the same thread asks for the same slot again.
 */
#ifndef KMSFS_SCRATCH_H
#define KMSFS_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

enum scratch_slot {
	SCRATCH_REPLY, /* a read request's reply (fs/ops_file.c) */
	SCRATCH_CT,    /* ciphertext read or written (fs/file*.c) */
	SCRATCH_PT,    /* one decrypted chunk (fs/file.c) */
	SCRATCH_N
};

/* This thread's buffer for slot, at least len bytes; NULL when out of
 * memory.  Its contents are whatever the thread left there. */
uint8_t *scratch_get(enum scratch_slot slot, size_t len);

/* Free this thread's buffers now (a thread that does not exit, such as a
 * command's main thread, before it returns). */
void scratch_release(void);

#endif
