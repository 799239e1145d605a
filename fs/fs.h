/*
 * fs.h - the kmsfs filesystem as the rest of the program sees it.
 *
 * Owns: mounting and serving a backing directory as a plaintext view
 * (kfs_mount), and the FUSE-free reader used by `kmsfs cat`.
 * Must not know: how options were parsed or where keys came from (it
 * gets a ready struct ks_keyring).
 * Thread-safety: kfs_mount is called once per process.
 */
#ifndef KMSFS_FS_H
#define KMSFS_FS_H

#include <stdbool.h>

#include "../keystore/keystore.h"

struct kfs_options {
	const char *backing;	 /* backing directory (must exist) */
	const char *mountpoint;	 /* where to mount */
	struct ks_keyring *keys; /* caller keeps ownership */
	const char *fuse_opts;	 /* comma-separated -o list, or NULL */
	const char *profile;	 /* chain layout profile, NULL = "toplevel" */
	bool foreground;	 /* -f: no daemon, log to stderr */
	bool fuse_debug;	 /* -d: libfuse request tracing */
	bool single_thread;	 /* -s */
	bool nonempty;		 /* -o nonempty: may hide a directory's files */
	bool allow_v1; /* read v1 files (CockroachDB <= 21.1), never write */
	unsigned read_ahead_kb; /* the mount's read-ahead; 0: the kernel's */
};

/* Check the keys against the backing store, mount, daemonize (unless
 * foreground) once the mount is ready, and serve until unmounted.
 * Refuses (before any key is used) a mount point that is already a mount
 * point (a live one, or a dead FUSE mount left by a crash), a non-empty
 * one unless o->nonempty, and a store another kmsfs process has mounted
 * (fs/storelock.h).
 * Returns a process exit status: 0 after a clean unmount, 1 when the
 * store cannot be unlocked, is in use, the mount point is refused or
 * mounting failed (one line logged), 2 for bad options. */
int kfs_mount(const struct kfs_options *o);

/* Decrypt the file at path (relative to backing, '/'-separated) to out_fd
 * without mounting, with the mount's checks (allow_v1: read v1 files).
 * Returns 0 or a negative errno (logged). */
int kfs_cat(const char *backing, struct ks_keyring *keys, const char *profile,
	    const char *path, bool allow_v1, int out_fd);

#endif
