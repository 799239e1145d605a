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
 * files at the root belong to the root's chain.  "crdb": CockroachDB's
 * collections (spec 4): a full backup's directory YYYY/MM/DD-HHMMSS.ss
 * (or one user-named top-level directory) is a chain, and
 * incrementals/<full>/... and <full>/<inc>/... (pre-22.1) use its key;
 * LATEST, metadata/ and BACKUP-LOCK-* stay plaintext.  A profile may send a
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

/* Does the directory at path (relative to rootfd) hold an ENCRYPTION-INFO
 * (a regular file, not followed if a link)? */
bool layout_has_encinfo(int rootfd, const char *path);

/* Does path name a chain directory itself (its own chain)? */
bool layout_is_chain_dir(const struct layout_profile *p, const char *path);

/* Every chain directory of the store at rootfd that holds an
 * ENCRYPTION-INFO, the root's chain ("") first, then the others sorted
 * by path.  *out is a NULL-terminated array of strings, freed with
 * layout_list_free.  0, -ENOMEM or -errno of reading the store. */
int layout_chains(const struct layout_profile *p, int rootfd, char ***out);
void layout_list_free(char **list); /* NULL ok */
/* The same, with every directory the profile makes a chain, whether it
 * has an ENCRYPTION-INFO or not (the root only when it has one). */
int layout_chain_dirs(const struct layout_profile *p, int rootfd, char ***out);

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

/* How a regular file is stored. */
enum layout_kind {
	LAYOUT_ENCRYPTED, /* the chain's key, CockroachDB's format */
	LAYOUT_PLAINTEXT, /* as written (LATEST, metadata/, BACKUP-LOCK-*) */
	LAYOUT_CHECKSUM,  /* X-CHECKSUM: over X's stored bytes on the store,
			     over its plaintext through the mount */
};

/* The kind of the regular file at path.  A name "<final><digits>.tmp"
 * (CockroachDB's local storage writes through such a temporary, then
 * renames it) is judged as <final>, so the rename keeps it right.
 * toplevel: everything is encrypted.  crdb: spec 4.3. */
enum layout_kind layout_file_kind(const struct layout_profile *p,
				  const char *path);

/* Does the profile store some files other than encrypted (so that
 * callers must ask layout_file_kind)?  toplevel: no.  crdb: yes. */
bool layout_has_kinds(const struct layout_profile *p);

/* The name of the file a checksum file covers: "X" for "X-CHECKSUM" and
 * its temporaries "X-CHECKSUM<digits>.tmp".  name is one path component.
 * 0, -EINVAL when name is not a checksum file's, -ENAMETOOLONG. */
int layout_checksummed(const char *name, char *out, size_t outlen);

/* The profile a store looks like: crdb for a CockroachDB collection
 * (metadata/latest/, a root LATEST, incrementals/, or a
 * YYYY/MM/DD-HHMMSS.ss directory), else the default. */
const struct layout_profile *layout_detect(int rootfd);
/* name given: layout_find(name); NULL: layout_detect(rootfd). */
const struct layout_profile *layout_resolve(const char *name, int rootfd);

/* Names kmsfs keeps for itself in the backing store: ENCRYPTION-INFO*,
 * the key-check file, temporaries of crash-safe rewrites.  They are not
 * listed, cannot be looked up, created, renamed or removed through the
 * mount. */
bool layout_name_reserved(const char *name);

/* Name of the per-chain key verification file and the temp-file prefix. */
#define LAYOUT_KEYCHECK_NAME ".kmsfs-keycheck"
#define LAYOUT_TMP_PREFIX ".kmsfs-tmp-"
#define LAYOUT_LOCK_NAME ".kmsfs-lock" /* fs/storelock.h, at the root */

#endif
