/*
 * show.h - a collection as `kmsfs show` presents it: its layout profile,
 * LATEST, and every chain with its layers (full backup and incrementals,
 * end times from the folder names), file counts, plaintext and stored
 * bytes, ENCRYPTION-INFO files and, given keys, whether they unlock it.
 *
 * Owns: walking the store read-only.  Nothing is decrypted: plaintext
 * sizes follow from ciphertext sizes (v2).  Keys, when given, are used
 * only to unwrap and verify each chain's key.
 * Must not know: how the result is printed (src/cmd_show.c).
 * Thread-safety: one call per struct; no shared state.
 */
#ifndef KMSFS_SHOW_H
#define KMSFS_SHOW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../keystore/keystore.h"
#include "layout.h"

struct show_layer {
	char *path;	/* relative to the store */
	bool full;	/* the full backup, else an incremental */
	char end[32];	/* "2023-07-14 21:14:06.03", "" when unknown */
	uint64_t files; /* regular files, kmsfs's own not counted */
	uint64_t plain_bytes, stored_bytes;
};

struct show_chain {
	char *path; /* the chain directory ("" = the collection root) */
	struct show_layer *layers;
	size_t nlayers;
	struct ks_chain_desc encinfo;
	int unlock; /* keys given: 0 unlocked, or -errno; else 1 */
};

struct show_collection {
	const struct layout_profile *layout;
	char latest[4096]; /* "" when none */
	struct show_chain *chains;
	size_t n;
};

/* Called for every regular file of a chain's layers (path relative to
 * the store), and for every leftover temporary (.kmsfs-tmp-*, whose
 * base name says so; not counted in the layer).  Non-zero stops the
 * walk and is returned. */
typedef int (*show_file_fn)(void *ctx, const struct show_layer *layer,
			    const char *path, const struct stat *st);

/* Fill c->layers for the chain c->path (as show_collect does), calling
 * fn (may be NULL) on the way.  0, -ENOMEM, -errno of the store. */
int show_chain_files(const struct layout_profile *lp, int rootfd,
		     struct show_chain *c, show_file_fn fn, void *ctx);

/* Describe the store at backing.  profile NULL: detected.  keys may be
 * NULL (nothing is unwrapped).  0, -EINVAL (unknown profile), -ENOMEM,
 * -errno of the store (logged). */
int show_collect(const char *backing, const char *profile,
		 struct ks_keyring *keys, struct show_collection *out);
void show_release(struct show_collection *c);

#endif
