/*
 * verify.h - check a backing store without writing to it (`kmsfs
 * verify`): every chunk of every encrypted file authenticated with its
 * chain's key (truncation included), every -CHECKSUM compared with the
 * stored bytes it covers, encrypted files where plaintext is expected
 * and the reverse, chains without ENCRYPTION-INFO, leftover temporaries.
 *
 * Owns: the parallel read of the store (one thread per core by default)
 * and the list of problems found.  Never opens anything for writing.
 * Must not know: how the result is printed (src/cmd_verify.c).
 * Thread-safety: one verify_run at a time per struct verify_report.
 */
#ifndef KMSFS_VERIFY_H
#define KMSFS_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "../keystore/keystore.h"

struct verify_opts {
	const char *backing;
	const char *profile;	 /* NULL: detected */
	const char *target;	 /* a chain, "LATEST", or NULL for all */
	struct ks_keyring *keys; /* to unlock the chains */
	unsigned threads;	 /* 0: one per online core */
	bool allow_v1;		 /* authenticate v1 files, as a mount would */
	/* called about twice a second from one thread while running */
	void (*progress)(void *ctx, uint64_t bytes, uint64_t total_bytes,
			 uint64_t files, uint64_t total_files);
	void *progress_ctx;
};

struct verify_problem {
	char *path; /* relative to the store ("/" for the root) */
	char *what; /* one line */
};

struct verify_report {
	uint64_t files, bytes; /* checked */
	uint64_t chains;
	double seconds;
	struct verify_problem *problems;
	size_t nproblems;
};

/* Check what o names.  0 when the check ran (problems, if any, are in
 * the report), -EINVAL for an unknown profile or a target that is no
 * chain (logged), -ENOENT (no LATEST, no chain), -ENOMEM, -errno of the
 * store (logged). */
int verify_run(const struct verify_opts *o, struct verify_report *out);
void verify_report_release(struct verify_report *r);

#endif
