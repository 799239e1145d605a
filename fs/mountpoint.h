/*
 * mountpoint.h - is this directory a safe place to mount a store?
 *
 * Owns: the refusal rules for a mount point and their messages: already a
 * mount point (a live mount of anything: stacking would hide it, or put
 * two kmsfs daemons on top of each other), a dead FUSE mount left by a
 * crashed daemon (it says what to run), not a directory, and not empty
 * (the mount would hide its files) unless the caller allows that
 * (`-o nonempty`; libfuse 3 no longer checks this itself).
 * Must not know: FUSE, keys, the store.
 * Thread-safety: reentrant.
 */
#ifndef KMSFS_MOUNTPOINT_H
#define KMSFS_MOUNTPOINT_H

#include <stdbool.h>

/* Check path (absolute and canonical, as realpath() gives it) before
 * mounting on it.  Returns 0 if it is fine, else one line is logged and:
 * -ENOTCONN a dead FUSE mount (stat fails with ENOTCONN or ECONNABORTED),
 * -EBUSY already a mount point (in /proc/self/mountinfo, or on another
 * device than its parent), -ENOTDIR not a directory, -ENOTEMPTY has
 * entries and !nonempty, or the -errno of a failed stat/readdir. */
int mountpoint_check(const char *path, bool nonempty);

/* Set the kernel's read-ahead window (KiB) of the kmsfs mount on path
 * (sysfs: /sys/class/bdi/<its device>/read_ahead_kb).  FUSE mounts start
 * at 128 KiB, and the kernel lowers the window to what the daemon's
 * answer to FUSE_INIT allows, so this is for after that answer.  0, or
 * -ENOENT (no kmsfs mount on path), -errno of the write (-EACCES when
 * not root).  Nothing logged. */
int mountpoint_set_readahead(const char *path, unsigned kb);

#endif
