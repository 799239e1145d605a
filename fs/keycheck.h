/*
 * keycheck.h - what a chain's own files say about a key.  Private to
 * fs/keycache.c.
 *
 * Owns: the key-check file (LAYOUT_KEYCHECK_NAME: a v2 file sealing a
 * fixed text, written when kmsfs creates a chain), the search for a
 * sample of a chain's encrypted files that the chain's key must open
 * (chains written by CockroachDB have no key-check file), and telling
 * whether a directory holds encrypted files at all.
 * Which files are a chain's: everything below its directory, except for
 * the collection root, whose chain holds only the files directly in it
 * (the directories below the root are, or hold, other chains).
 * Reserved names (layout_name_reserved) are never samples.  Searches are
 * bounded: at most KEYCHECK_MAX_SAMPLES files read for a sample (64 KiB
 * each) or KEYCHECK_MAX_FILES opened to look for encrypted ones (7 bytes
 * each), KEYCHECK_MAX_ENTRIES directory entries, KEYCHECK_MAX_DEPTH
 * levels below the chain.
 * Must not know: where keys come from, FUSE, the key cache.
 * Thread-safety: reentrant; only *at() calls on the given directory fd.
 */
#ifndef KMSFS_KEYCHECK_H
#define KMSFS_KEYCHECK_H

#include <stdbool.h>

#include "cformat.h"

#define KEYCHECK_MAX_SAMPLES 64
#define KEYCHECK_MAX_FILES 4096
#define KEYCHECK_MAX_ENTRIES 1000000
#define KEYCHECK_MAX_DEPTH 3

/* Does key open the chain in dirfd?  The key-check file decides when it
 * is there and readable; else the first encrypted file found in the
 * chain (chunk 0 of a v2 file).  0: it opens; -EBADMSG: it does not (a
 * wrong key); -ENODATA: nothing to check against (no key-check file, no
 * encrypted v2 file within the bounds); -ENOMEM. */
int keycheck_verify(int dirfd, bool root, const struct cf_key *key);

/* Write the key-check file for key into dirfd through a temporary and a
 * rename, replacing a stale one (call it only when the chain's
 * ENCRYPTION-INFO was just written), then fsync the directory.  0 or
 * -errno. */
int keycheck_write(int dirfd, const struct cf_key *key);

/* Does the chain in dirfd hold an encrypted file (one that starts with
 * CockroachDB's preamble)?  1 yes, 0 no, -ERANGE when the bounds were
 * reached before it could tell, or -errno of opening the directory. */
int keycheck_holds_encrypted(int dirfd, bool root);

#endif
