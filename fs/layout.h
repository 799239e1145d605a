/*
 * layout.h - which backup chain holds a path, and which names are
 * kmsfs's own.
 *
 * Owns: layout profiles (how a collection's directory tree maps onto
 * chains) and the name policy (hidden/reserved names).  Every question of
 * the form "which chain holds this path, and where is its ENCRYPTION-INFO"
 * is answered here, for the mount, the mount-time key check, add-kms, cat
 * and the configuration alike.  Paths are relative to the collection root,
 * '/'-separated, without a leading slash; "" is the root itself.  A
 * chain is named by its directory's path, which also holds the chain's
 * ENCRYPTION-INFO* files ("" for the collection root's own chain).
 *
 * Profiles: "toplevel" (default): every top-level directory is a chain,
 * files at the root belong to the root's chain.  A profile may send a
 * path to a chain that is not one of its ancestors (CockroachDB keeps
 * incrementals under incrementals/ with the full backup's key), so
 * callers ask for a path's chain rather than walking up to one.
 * Must not know: keys, FUSE, the file format.
 * Thread-safety: pure functions over const tables, except layout_chains
 * and layout_latest, which read the store (safe from any thread).
 */
#ifndef KMSFS_LAYOUT_H
#define KMSFS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

struct layout_profile;

/* Look up a profile by name; NULL selects the default.  Returns NULL for
 * an unknown name. */
const struct layout_profile *layout_find(const char *name);
const char *layout_name(const struct layout_profile *p);
const char *layout_description(const struct layout_profile *p);
/* The known profile names, for messages ("toplevel"). */
const char *layout_known(void);

/* Directories deeper than this never change the chain of what they
 * hold: everything below them is in their chain.  Lets the mount skip
 * building paths for deep entries. */
unsigned layout_depth(const struct layout_profile *p);

/* The chain that holds the entry at path (a directory when is_dir):
 * writes the chain directory's path to out ("" = the root's chain).
 * 0, or -ENAMETOOLONG when out is too small, -EINVAL for a path with
 * empty, "." or ".." components. */
int layout_chain_of(const struct layout_profile *p, const char *path,
		    bool is_dir, char *out, size_t outlen);

/* Does path name a chain directory itself (its own chain)? */
bool layout_is_chain_dir(const struct layout_profile *p, const char *path);

/* Every chain directory of the store at rootfd that holds an
 * ENCRYPTION-INFO, the root's chain ("") first, then the others sorted
 * by path.  *out is a NULL-terminated array of strings, freed with
 * layout_list_free.  0, -ENOMEM or -errno of reading the store. */
int layout_chains(const struct layout_profile *p, int rootfd, char ***out);
void layout_list_free(char **list); /* NULL ok */

/* The newest chain of the store (as CockroachDB's LATEST for the
 * profile: toplevel takes the chain whose ENCRYPTION-INFO is newest).
 * 0, -ENOENT when there is none, -ENAMETOOLONG, -errno. */
int layout_latest(const struct layout_profile *p, int rootfd, char *out,
		  size_t outlen);

/* Turn a user's chain argument ("nightly", "./nightly/", "/" or "." for
 * the root's chain) into a chain path.  0, -EINVAL for anything that is
 * not a chain directory under the profile (deeper paths, ".."). */
int layout_chain_arg(const struct layout_profile *p, const char *arg, char *out,
		     size_t outlen);

/* Names kmsfs keeps for itself in the backing store: ENCRYPTION-INFO*,
 * the key-check file, temporaries of crash-safe rewrites.  They are not
 * listed, cannot be looked up, created, renamed or removed through the
 * mount. */
bool layout_name_reserved(const char *name);

/* Name of the per-chain key verification file and the temp-file prefix. */
#define LAYOUT_KEYCHECK_NAME ".kmsfs-keycheck"
#define LAYOUT_TMP_PREFIX ".kmsfs-tmp-"

#endif
